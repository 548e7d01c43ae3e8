
/*
 * Bucket bounds and quantiles of the latency histogram.
 */


#include <math.h>

#include "ngx_http_canary_histogram.h"


uint64_t
ngx_http_canary_hist_lower(size_t i)
{
    size_t  octave, sub;

    if (i == 0) {
        return 0;
    }

    if (i >= NGX_HTTP_CANARY_HIST_BUCKETS - 1) {
        return (uint64_t) 1 << NGX_HTTP_CANARY_HIST_MAX_SHIFT;
    }

    octave = (i - 1) / NGX_HTTP_CANARY_HIST_SUB;
    sub = (i - 1) % NGX_HTTP_CANARY_HIST_SUB;

    return (uint64_t) (NGX_HTTP_CANARY_HIST_SUB + sub)
           << (octave + NGX_HTTP_CANARY_HIST_MIN_SHIFT
               - NGX_HTTP_CANARY_HIST_SUB_BITS);
}


uint64_t
ngx_http_canary_hist_upper(size_t i)
{
    if (i >= NGX_HTTP_CANARY_HIST_BUCKETS - 1) {
        return UINT64_MAX;
    }

    return ngx_http_canary_hist_lower(i + 1);
}


double
ngx_http_canary_hist_quantile(const uint64_t *counts, double q)
{
    double  v;

    ngx_http_canary_hist_quantiles(counts, &q, 1, &v);

    return v;
}


void
ngx_http_canary_hist_quantiles(const uint64_t *counts, const double *qs,
    size_t n, double *values)
{
    size_t    i, k;
    uint64_t  total, rank, last, seen;

    total = 0;

    for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS; i++) {
        total += counts[i];
    }

    i = 0;
    seen = 0;
    last = 0;

    for (k = 0; k < n; k++) {
        if (total == 0) {
            values[k] = 0;
            continue;
        }

        rank = (uint64_t) ceil(qs[k] * (double) total);

        if (rank == 0) {
            rank = 1;
        }

        /* a lower rank than the last: scan from the start again */
        if (rank < last) {
            i = 0;
            seen = 0;
        }

        last = rank;

        /* the first bucket where the requests seen reach the rank */
        while (i < NGX_HTTP_CANARY_HIST_BUCKETS - 1
               && seen + counts[i] < rank)
        {
            seen += counts[i];
            i++;
        }

        if (i < NGX_HTTP_CANARY_HIST_BUCKETS - 1) {
            values[k] = ((double) ngx_http_canary_hist_lower(i)
                         + (double) ngx_http_canary_hist_upper(i)) / 2;

        } else {
            /* the overflow bucket has no upper bound: its lower one */
            values[k] = (double) ngx_http_canary_hist_lower(i);
        }
    }
}
