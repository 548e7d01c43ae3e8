
/*
 * The latency histogram layout: fixed, documented and the same in every
 * nginx, so that histograms from a fleet add up bucket by bucket.
 *
 * Values are microseconds.  Bucket 0 holds [0, 64us); then every power
 * of two from 64us to 2^26us (67.1s) is cut into 16 linear sub-buckets,
 * each at most 1/16 (6.25%) of its lower bound wide, so the midpoint of
 * a bucket is within 3.2% of any value in it; the last bucket holds the
 * rest.  A value's bucket is found with one clz and a shift, no loop.
 *
 * Pure C: compiles without the nginx runtime.
 */


#ifndef _NGX_HTTP_CANARY_HISTOGRAM_H_INCLUDED_
#define _NGX_HTTP_CANARY_HISTOGRAM_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_CANARY_HIST_SUB_BITS   4
#define NGX_HTTP_CANARY_HIST_SUB        (1 << NGX_HTTP_CANARY_HIST_SUB_BITS)
#define NGX_HTTP_CANARY_HIST_MIN_SHIFT  6       /* 64us */
#define NGX_HTTP_CANARY_HIST_MAX_SHIFT  26      /* 67.1s */
#define NGX_HTTP_CANARY_HIST_OCTAVES                                          \
    (NGX_HTTP_CANARY_HIST_MAX_SHIFT - NGX_HTTP_CANARY_HIST_MIN_SHIFT)

/* 322: underflow, 20 octaves of 16, overflow */
#define NGX_HTTP_CANARY_HIST_BUCKETS                                          \
    (NGX_HTTP_CANARY_HIST_OCTAVES * NGX_HTTP_CANARY_HIST_SUB + 2)


static inline size_t
ngx_http_canary_hist_index(uint64_t us)
{
    unsigned  shift;

    if (us < (1 << NGX_HTTP_CANARY_HIST_MIN_SHIFT)) {
        return 0;
    }

    if (us >= (1 << NGX_HTTP_CANARY_HIST_MAX_SHIFT)) {
        return NGX_HTTP_CANARY_HIST_BUCKETS - 1;
    }

    shift = 63 - __builtin_clzll(us);

    return 1 + (shift - NGX_HTTP_CANARY_HIST_MIN_SHIFT)
               * NGX_HTTP_CANARY_HIST_SUB
           + ((us >> (shift - NGX_HTTP_CANARY_HIST_SUB_BITS))
              & (NGX_HTTP_CANARY_HIST_SUB - 1));
}


/* upper bound of bucket i in microseconds; UINT64_MAX for the last one */
uint64_t ngx_http_canary_hist_upper(size_t i);

/* lower bound of bucket i in microseconds */
uint64_t ngx_http_canary_hist_lower(size_t i);

/*
 * The q-quantile (0 < q <= 1) of a histogram, in microseconds, as the
 * midpoint of the bucket that holds the rank ceil(q * total); 0 when
 * the histogram is empty.
 */
double ngx_http_canary_hist_quantile(const uint64_t *counts, double q);

/* n quantiles at once, each as _quantile() gives it: one pass if qs grow */
void ngx_http_canary_hist_quantiles(const uint64_t *counts, const double *qs,
    size_t n, double *values);


#endif /* _NGX_HTTP_CANARY_HISTOGRAM_H_INCLUDED_ */
