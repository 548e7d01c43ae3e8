
/*
 * Which nodes lag the split's generation, and since when.
 */


#include <stdio.h>
#include <string.h>

#include "lag.h"


static void cs_lag_append(char *buf, size_t size, const char *name,
    uint64_t generation);


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
cs_lag_check(const cs_lag_t *lag, const cs_plan_t *plan,
    char *const *names, const cs_metrics_t *readings, const int *answered,
    size_t n, int64_t now, char *lagging, size_t size, char *held,
    size_t hsize, size_t *holding)
{
    size_t   i, k;
    int64_t  behind;

    lagging[0] = '\0';
    held[0] = '\0';
    *holding = 0;
    k = 0;

    for (i = 0; i < n; i++) {
        if (!answered[i] || readings[i].generation_min == UINT64_MAX) {
            continue;
        }

        behind = cs_lag_behind(lag, readings[i].generation_min, now);

        if (behind == 0 || behind < plan->lag) {
            continue;
        }

        cs_lag_append(lagging, size, names[i], readings[i].generation_min);
        k++;

        if (behind >= plan->lag_hold) {
            cs_lag_append(held, hsize, names[i],
                          readings[i].generation_min);
            (*holding)++;
        }
    }

    return k;
}


static void
cs_lag_append(char *buf, size_t size, const char *name,
    uint64_t generation)
{
    size_t  len;

    len = strlen(buf);

    if (len + 4 >= size || (len >= 3 && strcmp(buf + len - 3, "...") == 0))
    {
        return;
    }

    snprintf(buf + len, size - len, "%s%s at generation %llu",
             len ? ", " : "", name, (unsigned long long) generation);

    if (strlen(buf) + 1 >= size) {
        memcpy(buf + size - 4, "...", 4);
    }
}
