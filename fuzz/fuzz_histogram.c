
/*
 * The latency histogram: bucket of a value, bounds, quantiles.  Values
 * and counts come from the clock and the zone, and the sidecar computes
 * the same quantiles from counts it reads from any nginx.
 *
 * Input: byte 0 is a quantile (1..256)/256, then 8-byte values (each
 * lands in a bucket, which is checked) and 3-byte bucket indices with
 * 5-byte counts (a histogram).
 *
 * Checked: every value falls in the bucket whose bounds hold it (the
 * sidecar links the same code); a quantile is a bucket midpoint (or the
 * last bucket's lower bound) and grows with q; it is the rank's bucket
 * as a plain scan finds it, also when several are asked at once
 * (_quantiles, in any order).
 */


#include <math.h>

#include "fuzz_input.h"

#include "ngx_http_canary_histogram.h"


/* the definition, plainly: the bucket where the rank ceil(q * total) is */
static double
reference_quantile(const uint64_t *counts, double q)
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

    return (double) ngx_http_canary_hist_lower(i);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    size_t  i;

    (void) argc;
    (void) argv;

    for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS; i++) {
        fuzz_assert(ngx_http_canary_hist_lower(i)
                    < ngx_http_canary_hist_upper(i), "bucket %zu empty", i);
        fuzz_assert(i == 0 || ngx_http_canary_hist_lower(i)
                              == ngx_http_canary_hist_upper(i - 1),
                    "a gap before bucket %zu", i);
    }

    return 0;
}


static int
midpoint_or_last(double v)
{
    size_t  i;
    double  mid;

    if (v == 0) {
        return 1;
    }

    for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS - 1; i++) {
        mid = ((double) ngx_http_canary_hist_lower(i)
               + (double) ngx_http_canary_hist_upper(i)) / 2;

        if (v == mid) {
            return 1;
        }
    }

    return v == (double) ngx_http_canary_hist_lower(
                             NGX_HTTP_CANARY_HIST_BUCKETS - 1);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t     i, n, b;
    double     q, qs[5], all[5], v, alone, prev;
    uint64_t   us, counts[NGX_HTTP_CANARY_HIST_BUCKETS];
    fuzz_in_t  in;

    if (size < 1) {
        return 0;
    }

    fuzz_in_init(&in, data, size);

    q = (double) (fuzz_in_u8(&in) + 1) / 256;

    /* values: the first half of what is left */
    n = fuzz_in_left(&in) / 2 / 8;

    for (i = 0; i < n; i++) {
        us = fuzz_in_uint(&in, 8) >> (fuzz_in_u8(&in) % 64);
        b = ngx_http_canary_hist_index(us);

        fuzz_assert(b < NGX_HTTP_CANARY_HIST_BUCKETS
                    && ngx_http_canary_hist_lower(b) <= us
                    && (us < ngx_http_canary_hist_upper(b)
                        || b == NGX_HTTP_CANARY_HIST_BUCKETS - 1),
                    "%llu us in bucket %zu", (unsigned long long) us, b);
    }

    /* a histogram */
    memset(counts, 0, sizeof(counts));

    while (fuzz_in_left(&in) >= 8) {
        b = fuzz_in_uint(&in, 3) % NGX_HTTP_CANARY_HIST_BUCKETS;
        counts[b] += fuzz_in_uint(&in, 5);
    }

    qs[0] = 0.5;
    qs[1] = q < 0.95 ? q : 0.95;
    qs[2] = 0.95;
    qs[3] = 0.99;

    if (qs[1] < 0.5) {
        qs[1] = 0.5;
    }

    prev = -1;

    for (i = 0; i < 4; i++) {
        v = ngx_http_canary_hist_quantile(counts, qs[i]);

        fuzz_assert(midpoint_or_last(v), "q %g: %g is no bucket's midpoint",
                    qs[i], v);
        fuzz_assert(v >= prev, "q %g: %g, below %g", qs[i], v, prev);

        prev = v;
    }

    v = ngx_http_canary_hist_quantile(counts, q);

    fuzz_assert(midpoint_or_last(v), "q %g: %g", q, v);

    /* at once, q last (below the others or not): the plain scan's */
    qs[4] = q;

    ngx_http_canary_hist_quantiles(counts, qs, 5, all);

    for (i = 0; i < 5; i++) {
        v = reference_quantile(counts, qs[i]);
        alone = ngx_http_canary_hist_quantile(counts, qs[i]);

        fuzz_assert(all[i] == v && alone == v,
                    "q %g: %g at once, %g alone, %g by a plain scan", qs[i],
                    all[i], alone, v);
    }

    return 0;
}
