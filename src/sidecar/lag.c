
/*
 * Which nodes lag the split's generation, and since when.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lag.h"


static void cs_lag_seen(cs_lag_t *lag, const char *name,
    uint64_t generation, int64_t now);
static cs_lag_node_t *cs_lag_add(cs_lag_t *lag, const char *name,
    size_t len);
static void cs_lag_append(char *buf, size_t size, const cs_lag_node_t *e,
    const char *suffix);


void
cs_lag_generation(cs_lag_t *lag, uint64_t generation, int64_t at)
{
    cs_lag_gen_t  *last;

    if (lag->n) {
        last = &lag->gens[lag->n - 1];

        if (generation == last->generation) {
            return;
        }

        if (generation < last->generation) {
            lag->n = 0;

        } else if (at < last->at) {
            at = last->at;
        }
    }

    if (lag->n == CS_LAG_HISTORY) {
        memmove(&lag->gens[0], &lag->gens[1],
                (CS_LAG_HISTORY - 1) * sizeof(cs_lag_gen_t));
        lag->n--;
    }

    lag->gens[lag->n].generation = generation;
    lag->gens[lag->n].at = at;
    lag->n++;
}


int64_t
cs_lag_behind(const cs_lag_t *lag, uint64_t g, int64_t now)
{
    size_t  i;

    if (lag->n == 0 || g >= lag->gens[lag->n - 1].generation) {
        return 0;
    }

    /* the oldest generation it has not applied; or, older than the
     * history, the oldest known: it is behind at least since then */
    for (i = 0; i + 1 < lag->n; i++) {
        if (lag->gens[i].generation > g) {
            break;
        }
    }

    return now > lag->gens[i].at ? now - lag->gens[i].at : 0;
}


size_t
cs_lag_check(cs_lag_t *lag, const cs_plan_t *plan,
    char *const *names, const cs_metrics_t *readings, const int *answered,
    size_t n, int64_t now, char *lagging, size_t size, char *held,
    size_t hsize, size_t *holding)
{
    size_t          i, k;
    int64_t         behind;
    uint64_t        g;
    const char     *suffix;
    cs_lag_node_t  *e;

    lagging[0] = '\0';
    held[0] = '\0';
    *holding = 0;
    k = 0;

    for (i = 0; i < n; i++) {
        if (answered[i] && readings[i].generation_min != UINT64_MAX) {
            cs_lag_seen(lag, names[i], readings[i].generation_min, now);
        }
    }

    /* those that answer now, then the silent ones, in the order seen */
    for (i = 0; i < lag->nnodes; /* void */ ) {
        e = &lag->nodes[i];
        g = e->generation;
        suffix = "";

        if (e->unknown && e->seen == 0) {
            /* first noticed now: forgotten CS_LAG_SILENT_MAX later */
            e->seen = now;
        }

        if (e->seen != now || e->unknown) {
            if (now - e->seen >= CS_LAG_SILENT_MAX
                || (lag->fleet && !e->silent))
            {
                /* forgotten; or, in fleet mode, left the nodes set */
                free(e->name);
                *e = lag->nodes[--lag->nnodes];
                continue;
            }

            e->silent = 0;
            i++;

            /* --status: it followed as long as it answered, it left */
            if (!lag->fleet && cs_lag_behind(lag, g, e->seen) == 0) {
                continue;
            }

            suffix = " (silent)";

        } else {
            e->silent = 0;
            i++;
        }

        if (e->unknown) {
            /* it may have missed any generation, since long ago */
            behind = (lag->n && lag->gens[lag->n - 1].generation)
                     ? INT64_MAX : 0;

        } else {
            behind = cs_lag_behind(lag, g, now);
        }

        if (behind == 0 || behind < plan->lag) {
            continue;
        }

        cs_lag_append(lagging, size, e, suffix);
        k++;

        if (behind >= plan->lag_hold) {
            cs_lag_append(held, hsize, e, suffix);
            (*holding)++;
        }
    }

    return k;
}


void
cs_lag_silent(cs_lag_t *lag, const char *name, size_t len)
{
    size_t          i;
    cs_lag_node_t  *e;

    for (i = 0; i < lag->nnodes; i++) {
        if (strlen(lag->nodes[i].name) == len
            && memcmp(lag->nodes[i].name, name, len) == 0)
        {
            lag->nodes[i].silent = 1;
            return;
        }
    }

    e = cs_lag_add(lag, name, len);

    if (e) {
        e->unknown = 1;
        e->silent = 1;
    }
}


void
cs_lag_free(cs_lag_t *lag)
{
    size_t  i;

    for (i = 0; i < lag->nnodes; i++) {
        free(lag->nodes[i].name);
    }

    free(lag->nodes);

    lag->nodes = NULL;
    lag->nnodes = 0;
    lag->cap = 0;
}


/* remembers a node that answers; without memory it is not remembered */

static void
cs_lag_seen(cs_lag_t *lag, const char *name, uint64_t generation,
    int64_t now)
{
    size_t          i;
    cs_lag_node_t  *e;

    e = NULL;

    for (i = 0; i < lag->nnodes; i++) {
        if (strcmp(lag->nodes[i].name, name) == 0) {
            e = &lag->nodes[i];
            break;
        }
    }

    if (e == NULL) {
        e = cs_lag_add(lag, name, strlen(name));
        if (e == NULL) {
            return;
        }
    }

    e->generation = generation;
    e->seen = now;
    e->unknown = 0;
}


/* a new node, not seen yet; NULL without memory */

static cs_lag_node_t *
cs_lag_add(cs_lag_t *lag, const char *name, size_t len)
{
    size_t          cap;
    cs_lag_node_t  *e;

    if (lag->nnodes == lag->cap) {
        cap = lag->cap ? 2 * lag->cap : 16;

        e = realloc(lag->nodes, cap * sizeof(cs_lag_node_t));
        if (e == NULL) {
            return NULL;
        }

        lag->nodes = e;
        lag->cap = cap;
    }

    e = &lag->nodes[lag->nnodes];

    e->name = strndup(name, len);
    if (e->name == NULL) {
        return NULL;
    }

    e->generation = 0;
    e->seen = 0;
    e->silent = 0;
    e->unknown = 0;
    lag->nnodes++;

    return e;
}


static void
cs_lag_append(char *buf, size_t size, const cs_lag_node_t *e,
    const char *suffix)
{
    size_t  len;

    len = strlen(buf);

    if (len + 4 >= size || (len >= 3 && strcmp(buf + len - 3, "...") == 0))
    {
        return;
    }

    if (e->unknown) {
        snprintf(buf + len, size - len, "%s%s at an unknown generation%s",
                 len ? ", " : "", e->name, suffix);

    } else {
        snprintf(buf + len, size - len, "%s%s at generation %llu%s",
                 len ? ", " : "", e->name,
                 (unsigned long long) e->generation, suffix);
    }

    if (strlen(buf) + 1 >= size) {
        memcpy(buf + size - 4, "...", 4);
    }
}
