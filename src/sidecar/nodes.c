
/*
 * What is new from each nginx since its last reading, and the readings
 * as text:
 *
 *   URL CREATED NEWEST READ_AT s REQUESTS 5XX UPSTREAM BUCKET:COUNT,... c
 *   ... [i INSTANCE] [h SHADOW COUNTERS]
 *
 * one record per nginx, separated by ";" (a --status URL has neither
 * ";" nor spaces), in the format of evidence.c's variants; a node of the
 * fleet has the hex of its record's instance last.
 */


#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_canary_parse.h"

#include "evidence.h"
#include "nodes.h"


#define CS_NODE_LINE_MAX    (64 + 2 * 64 + 2 * CS_HIST_BUCKETS * 26 + 24    \
                             + CS_SHADOW_TEXT_MAX)


static int cs_window_went_down(const cs_window_t *now,
    const cs_window_t *last);
static void cs_window_sub(cs_window_t *out, const cs_window_t *a,
    const cs_window_t *b);
static const char *cs_node_parse(cs_node_t *node, const char *p);


int
cs_node_read(cs_node_t *node, const cs_metrics_t *m, int64_t now,
    cs_window_t *delta)
{
    int     rc;
    size_t  v;

    memset(delta, 0, 2 * sizeof(cs_window_t));
    memset(&node->shadow_new, 0, sizeof(cs_shadow_t));

    if (!node->seen) {
        rc = CS_NODE_FIRST;

    } else if ((m->created && node->created && m->created != node->created
                && (m->created <= node->newest
                    || m->created * 1000 + CS_NODE_SKEW_MS < node->read_at))
               || (m->instance && node->instance
                   && m->instance != node->instance
                   && m->created == node->created))
    {
        /* counters that started before the last reading, or a zone seen
         * at this address before, or another writer's that started with
         * them: not these */
        rc = CS_NODE_OTHER;

    } else if ((m->created && node->created && m->created != node->created)
               || cs_window_went_down(&m->total[0], &node->total[0])
               || cs_window_went_down(&m->total[1], &node->total[1]))
    {
        /* the old counters were read before they went: all is new */
        memcpy(delta, m->total, 2 * sizeof(cs_window_t));
        node->shadow_new = m->shadow_total;
        rc = CS_NODE_RESTARTED;

    } else {
        for (v = 0; v < 2; v++) {
            cs_window_sub(&delta[v], &m->total[v], &node->total[v]);
        }

        /*
         * shadow counters that went down alone (the shadow's block
         * started over): what they count now is new.  Not so after a
         * reading without them (null for a reload without "shadow": the
         * zone kept them): they are counted from this reading on, or a
         * past stage's comparisons were this one's.
         */
        if (!node->shadow_seen) {
            /* nothing new yet */

        } else if (cs_shadow_sub(&node->shadow_new, &m->shadow_total,
                                 &node->shadow))
        {
            node->shadow_new = m->shadow_total;
        }

        rc = CS_NODE_COUNTED;
    }

    node->seen = 1;
    node->created = m->created;
    node->read_at = now;
    node->instance = m->instance;

    if (m->created > node->newest) {
        node->newest = m->created;
    }
    memcpy(node->total, m->total, 2 * sizeof(cs_window_t));
    node->shadow = m->shadow_total;
    node->shadow_seen = m->shadow_seen != 0;

    return rc;
}


void
cs_nodes_sum(cs_node_t *nodes, const cs_metrics_t *readings,
    const int *answered, size_t n, int64_t now, cs_window_t *deltas,
    cs_metrics_t *sum, size_t *restarted, size_t *other)
{
    size_t        i;
    cs_window_t  *delta;

    cs_metrics_init(sum);
    sum->asked = n;
    sum->node_delta = deltas;
    sum->n_node = n;
    *restarted = 0;
    *other = 0;

    memset(deltas, 0, 2 * n * sizeof(cs_window_t));

    for (i = 0; i < n; i++) {
        delta = &deltas[2 * i];

        if (!answered[i]) {
            continue;
        }

        cs_metrics_add(sum, &readings[i]);

        switch (cs_node_read(&nodes[i], &readings[i], now, delta)) {

        case CS_NODE_FIRST:
            continue;

        case CS_NODE_OTHER:
            (*other)++;
            continue;

        case CS_NODE_RESTARTED:
            (*restarted)++;
            break;
        }

        cs_window_add(&sum->delta[0], &delta[0]);
        cs_window_add(&sum->delta[1], &delta[1]);
        cs_shadow_add(&sum->shadow_delta, &nodes[i].shadow_new);
        sum->has_delta = 1;
    }
}


char *
cs_nodes_format(const cs_node_t *nodes, char *const *names, size_t n)
{
    char    *buf;
    size_t   i, len, size, mark;

    size = 1;

    for (i = 0; i < n; i++) {
        size += strlen(names[i]) + CS_NODE_LINE_MAX;
    }

    buf = malloc(size);
    if (buf == NULL) {
        return NULL;
    }

    len = 0;
    buf[0] = '\0';

    for (i = 0; i < n; i++) {
        if (!nodes[i].seen) {
            continue;
        }

        len += (size_t) snprintf(buf + len, size - len,
                                 "%s%s %lld %lld %lld", len ? ";" : "",
                                 names[i], (long long) nodes[i].created,
                                 (long long) nodes[i].newest,
                                 (long long) nodes[i].read_at);
        len = cs_window_format(buf, size, len, 's', &nodes[i].total[0]);
        len = cs_window_format(buf, size, len, 'c', &nodes[i].total[1]);

        if (nodes[i].instance) {
            len += (size_t) snprintf(buf + len, size - len, " i %llx",
                                     (unsigned long long) nodes[i].instance);
        }

        /* seen at 0: "h" all the same, the next reading is counted */
        mark = len;
        len = cs_shadow_format(buf, size, len, &nodes[i].shadow);

        if (nodes[i].shadow_seen && len == mark) {
            len += (size_t) snprintf(buf + len, size - len,
                                     " h 0 0 0 0 0 0 0 0");
        }
    }

    return buf;
}


size_t
cs_nodes_parse(cs_node_t *nodes, char *const *names, size_t n,
    const char *text)
{
    size_t       i, len, bad, max;
    cs_node_t    node;
    const char  *p, *end, *sp;

    memset(nodes, 0, n * sizeof(cs_node_t));
    bad = 0;

    /* more than this fleet's records can take: not its readings */
    max = 0;

    for (i = 0; i < n; i++) {
        max += strlen(names[i]) + CS_NODE_LINE_MAX;
    }

    if (strlen(text) > max) {
        return 1;
    }

    for (p = text; p && *p; p = end ? end + 1 : NULL) {
        end = strchr(p, ';');
        sp = memchr(p, ' ', end ? (size_t) (end - p) : strlen(p));

        if (sp == NULL) {
            bad++;
            continue;
        }

        len = (size_t) (sp - p);

        for (i = 0; i < n; i++) {
            if (strlen(names[i]) == len && memcmp(names[i], p, len) == 0) {
                break;
            }
        }

        if (i == n || nodes[i].seen) {
            bad++;
            continue;
        }

        sp = cs_node_parse(&node, sp);

        if (sp == NULL || (*sp != '\0' && *sp != ';')) {
            bad++;
            continue;
        }

        nodes[i] = node;
    }

    return bad;
}


char **
cs_nodes_names(const char *text, size_t *n)
{
    char        **names, **a;
    size_t        len, size;
    const char   *p, *end, *sp;

    *n = 0;
    names = NULL;
    size = 0;

    for (p = text; p && *p; p = end ? end + 1 : NULL) {
        end = strchr(p, ';');
        sp = memchr(p, ' ', end ? (size_t) (end - p) : strlen(p));

        if (sp == NULL) {
            continue;
        }

        len = (size_t) (sp - p);

        if (!ngx_http_canary_valid_node((const unsigned char *) p, len)) {
            continue;
        }

        if (*n == size) {
            size = size ? 2 * size : 16;

            a = realloc(names, size * sizeof(char *));
            if (a == NULL) {
                break;
            }

            names = a;
        }

        names[*n] = strndup(p, len);

        if (names[*n] == NULL) {
            break;
        }

        (*n)++;
    }

    if (*n == 0) {
        free(names);
        return NULL;
    }

    return names;
}


/*
 * " CREATED NEWEST READ_AT s ... c ... [i INSTANCE]" into node (seen);
 * NULL if it is not
 */

static const char *
cs_node_parse(cs_node_t *node, const char *p)
{
    char  *end;

    memset(node, 0, sizeof(cs_node_t));

    if (p[0] != ' ' || p[1] < '0' || p[1] > '9') {
        return NULL;
    }

    errno = 0;
    node->created = strtoll(p + 1, &end, 10);

    if (errno || *end != ' ' || end[1] < '0' || end[1] > '9') {
        return NULL;
    }

    node->newest = strtoll(end + 1, &end, 10);

    if (errno || *end != ' ' || end[1] < '0' || end[1] > '9') {
        return NULL;
    }

    node->read_at = strtoll(end + 1, &end, 10);

    if (errno) {
        return NULL;
    }

    p = cs_window_parse(end, 's', &node->total[0]);

    if (p) {
        p = cs_window_parse(p, 'c', &node->total[1]);
    }

    if (p && p[0] == ' ' && p[1] == 'i' && p[2] == ' ') {
        /* the fleet's: which nginx wrote the record read */
        errno = 0;
        node->instance = strtoull(p + 3, &end, 16);

        p = (errno || end == p + 3 || !isxdigit((unsigned char) p[3]))
            ? NULL : end;
    }

    if (p && p[0] == ' ' && p[1] == 'h' && p[2] == ' ') {
        p = cs_shadow_parse(p, &node->shadow);
        node->shadow_seen = p != NULL;
    }

    node->seen = p != NULL;

    return p;
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
