
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
    size_t    i;
    uint64_t  total, rank, seen;

    total = 0;

    for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS; i++) {
        total += counts[i];
    }

    if (total == 0) {
        return 0;
    }

    rank = (uint64_t) ceil(q * (double) total);

    if (rank == 0) {
        rank = 1;
    }

    seen = 0;

    for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS - 1; i++) {
        seen += counts[i];

        if (seen >= rank) {
            return ((double) ngx_http_canary_hist_lower(i)
                    + (double) ngx_http_canary_hist_upper(i)) / 2;
        }
    }

    /* the overflow bucket has no upper bound: report its lower one */
    return (double) ngx_http_canary_hist_lower(i);
}
