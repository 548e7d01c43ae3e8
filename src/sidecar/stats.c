
/*
 * Pure statistics: histogram quantiles as the module has them, the
 * normal tail, one- and two-proportion z-tests (the latter kept as the
 * fixed-horizon test the sequential tests are measured against).
 */


#include <math.h>

#include "stats.h"


uint64_t
cs_hist_total(const uint64_t *counts)
{
    size_t    i;
    uint64_t  total;

    total = 0;

    for (i = 0; i < CS_HIST_BUCKETS; i++) {
        total += counts[i];
    }

    return total;
}


uint64_t
cs_hist_above(const uint64_t *counts, uint64_t bound_us)
{
    size_t    i;
    uint64_t  n;

    n = 0;

    for (i = CS_HIST_BUCKETS; i-- > 0; ) {
        if (ngx_http_canary_hist_lower(i) < bound_us) {
            break;
        }

        n += counts[i];
    }

    return n;
}


double
cs_hist_quantile_ms(const uint64_t *counts, double q)
{
    return ngx_http_canary_hist_quantile(counts, q) / 1000;
}


double
cs_normal_sf(double z)
{
    return 0.5 * erfc(z / sqrt(2.0));
}


void
cs_ztest_greater(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2,
    cs_ztest_t *out)
{
    double  p1, p2, pooled, se;

    out->z = 0;
    out->p_value = 1;

    if (n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2) {
        return;
    }

    p1 = (double) x1 / (double) n1;
    p2 = (double) x2 / (double) n2;
    pooled = (double) (x1 + x2) / (double) (n1 + n2);

    se = sqrt(pooled * (1 - pooled) * (1 / (double) n1 + 1 / (double) n2));

    if (!(se > 0)) {
        return;
    }

    out->z = (p1 - p2) / se;
    out->p_value = cs_normal_sf(out->z);
}


void
cs_ztest_above(uint64_t x, uint64_t n, double rate, cs_ztest_t *out)
{
    double  se;

    out->z = 0;
    out->p_value = 1;

    if (n == 0 || x > n || !(rate < 1)) {
        return;
    }

    if (!(rate > 0)) {
        out->p_value = x ? 0 : 1;
        return;
    }

    se = sqrt(rate * (1 - rate) / (double) n);

    out->z = ((double) x / (double) n - rate) / se;
    out->p_value = cs_normal_sf(out->z);
}

