
/*
 * What is new from each nginx since its last reading.
 */


#include <string.h>

#include "nodes.h"


static int cs_window_went_down(const cs_window_t *now,
    const cs_window_t *last);
static void cs_window_sub(cs_window_t *out, const cs_window_t *a,
    const cs_window_t *b);


int
cs_node_read(cs_node_t *node, const cs_metrics_t *m, cs_window_t *delta)
{
    int     rc;
    size_t  v;

    memset(delta, 0, 2 * sizeof(cs_window_t));

    if (!node->seen) {
        rc = CS_NODE_FIRST;

    } else if ((m->created && node->created && m->created != node->created)
               || cs_window_went_down(&m->total[0], &node->total[0])
               || cs_window_went_down(&m->total[1], &node->total[1]))
    {
        /* the old counters were read before they went: all is new */
        memcpy(delta, m->total, 2 * sizeof(cs_window_t));
        rc = CS_NODE_RESTARTED;

    } else {
        for (v = 0; v < 2; v++) {
            cs_window_sub(&delta[v], &m->total[v], &node->total[v]);
        }

        rc = CS_NODE_COUNTED;
    }

    node->seen = 1;
    node->created = m->created;
    memcpy(node->total, m->total, 2 * sizeof(cs_window_t));

    return rc;
}


size_t
cs_nodes_sum(cs_node_t *nodes, const cs_metrics_t *readings,
    const int *answered, size_t n, cs_metrics_t *sum)
{
    size_t       i, restarted;
    cs_window_t  delta[2];

    cs_metrics_init(sum);
    sum->asked = n;
    restarted = 0;

    for (i = 0; i < n; i++) {
        if (!answered[i]) {
            continue;
        }

        cs_metrics_add(sum, &readings[i]);

        switch (cs_node_read(&nodes[i], &readings[i], delta)) {

        case CS_NODE_FIRST:
            continue;

        case CS_NODE_RESTARTED:
            restarted++;
            break;
        }

        cs_window_add(&sum->delta[0], &delta[0]);
        cs_window_add(&sum->delta[1], &delta[1]);
        sum->has_delta = 1;
    }

    return restarted;
}


static int
cs_window_went_down(const cs_window_t *now, const cs_window_t *last)
{
    size_t  i;

    if (now->requests < last->requests
        || now->errors_5xx < last->errors_5xx
        || now->upstream_errors < last->upstream_errors)
    {
        return 1;
    }

    for (i = 0; i < CS_HIST_BUCKETS; i++) {
        if (now->counts[i] < last->counts[i]) {
            return 1;
        }
    }

    return 0;
}


static void
cs_window_sub(cs_window_t *out, const cs_window_t *a, const cs_window_t *b)
{
    size_t  i;

    out->requests = a->requests - b->requests;
    out->errors_5xx = a->errors_5xx - b->errors_5xx;
    out->upstream_errors = a->upstream_errors - b->upstream_errors;

    for (i = 0; i < CS_HIST_BUCKETS; i++) {
        out->counts[i] = a->counts[i] - b->counts[i];
    }
}
