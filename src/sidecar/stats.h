
/*
 * Pure statistics for canary-sidecar: quantiles of the module's latency
 * histogram (src/core/ngx_http_canary_histogram.c, linked in), the
 * normal tail, one- and two-proportion z-tests.  No I/O.
 */


#ifndef _CS_STATS_H_INCLUDED_
#define _CS_STATS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "ngx_http_canary_histogram.h"


/* the module's histogram, bucket by bucket: histograms of a fleet add up */
#define CS_HIST_BUCKETS     NGX_HTTP_CANARY_HIST_BUCKETS


typedef struct {
    double      z;
    double      p_value;        /* one-sided: the first is worse */
} cs_ztest_t;


uint64_t cs_hist_total(const uint64_t *counts);

/* the requests certainly over bound_us: in buckets that start at it or
 * above */
uint64_t cs_hist_above(const uint64_t *counts, uint64_t bound_us);

/*
 * The q-quantile (0 < q <= 1) in milliseconds, exactly as the module
 * computes it: the midpoint of the bucket holding rank ceil(q * total),
 * the lower bound of the overflow bucket; 0 for an empty histogram.
 */
double cs_hist_quantile_ms(const uint64_t *counts, double q);

/* P(Z > z) for a standard normal Z */
double cs_normal_sf(double z);

/*
 * Pooled two-proportion z-test, one-sided: is x1/n1 greater than x2/n2?
 * With no variance at all (no events, or only events, on both sides),
 * or an empty sample, z = 0 and p = 1: no evidence.
 */
void cs_ztest_greater(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2,
    cs_ztest_t *out);

/*
 * One-sample proportion z-test, one-sided: is x/n greater than rate
 * (0..1)?  With rate 0 any event is evidence (p = 0); with rate 1, or an
 * empty sample, none (p = 1).
 */
void cs_ztest_above(uint64_t x, uint64_t n, double rate, cs_ztest_t *out);


#endif /* _CS_STATS_H_INCLUDED_ */
