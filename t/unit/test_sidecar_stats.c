
/*
 * canary-sidecar statistics against hand-computed values (its quantiles
 * are the module's own, src/core/ngx_http_canary_histogram.c).
 */


#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "stats.h"

#include "ngx_http_canary_histogram.h"


START_TEST(test_quantile_by_hand)
{
    uint64_t  counts[CS_HIST_BUCKETS];

    memset(counts, 0, sizeof(counts));

    /* 99 values in [1024us, 1088us), one in the overflow bucket */
    counts[ngx_http_canary_hist_index(1030)] = 99;
    counts[CS_HIST_BUCKETS - 1] = 1;

    /* rank 99 of 100: the midpoint 1056us */
    ck_assert_double_eq_tol(cs_hist_quantile_ms(counts, 0.99), 1.056, 1e-9);

    /* rank 100: the overflow bucket reports its lower bound, 2^26us */
    ck_assert_double_eq_tol(cs_hist_quantile_ms(counts, 1.0), 67108.864,
                            1e-6);
}
END_TEST


START_TEST(test_normal_tail)
{
    ck_assert_double_eq_tol(cs_normal_sf(0), 0.5, 1e-12);
    ck_assert_double_eq_tol(cs_normal_sf(1.959963985), 0.025, 1e-9);
    ck_assert_double_eq_tol(cs_normal_sf(2.326347874), 0.01, 1e-9);
    ck_assert_double_eq_tol(cs_normal_sf(-2.326347874), 0.99, 1e-9);
}
END_TEST


START_TEST(test_ztest_by_hand)
{
    cs_ztest_t  zt;

    /*
     * 50/1000 vs 10/5000: pooled 60/6000 = 0.01,
     * se = sqrt(0.01 * 0.99 * (1/1000 + 1/5000)) = 0.0034467,
     * z = (0.05 - 0.002) / se = 13.9262, p = 2.195e-44
     */
    cs_ztest_greater(50, 1000, 10, 5000, &zt);
    ck_assert_double_eq_tol(zt.z, 13.926212, 1e-5);
    ck_assert_double_eq_tol(zt.p_value / 2.1951367e-44, 1, 1e-4);

    /*
     * 12/200 vs 20/1000: pooled 32/1200, se = 0.0124793,
     * z = 0.04 / se = 3.2053, p = 0.000675
     */
    cs_ztest_greater(12, 200, 20, 1000, &zt);
    ck_assert_double_eq_tol(zt.z, 3.205304, 1e-5);
    ck_assert_double_eq_tol(zt.p_value, 0.00067460, 1e-7);

    /* 3/1000 vs 2/1000: z = 0.4478, p = 0.3272: no evidence */
    cs_ztest_greater(3, 1000, 2, 1000, &zt);
    ck_assert_double_eq_tol(zt.z, 0.447774, 1e-5);
    ck_assert_double_eq_tol(zt.p_value, 0.327158, 1e-5);

    /* the canary better: z < 0, p > 0.5 */
    cs_ztest_greater(2, 1000, 3, 1000, &zt);
    ck_assert(zt.z < 0);
    ck_assert(zt.p_value > 0.5);
}
END_TEST


START_TEST(test_ztest_degenerate)
{
    cs_ztest_t  zt;

    /* no errors anywhere, all errors everywhere, empty samples */
    cs_ztest_greater(0, 1000, 0, 1000, &zt);
    ck_assert_double_eq(zt.p_value, 1);
    ck_assert_double_eq(zt.z, 0);

    cs_ztest_greater(100, 100, 50, 50, &zt);
    ck_assert_double_eq(zt.p_value, 1);

    cs_ztest_greater(5, 0, 0, 100, &zt);
    ck_assert_double_eq(zt.p_value, 1);

    cs_ztest_greater(1, 100, 0, 0, &zt);
    ck_assert_double_eq(zt.p_value, 1);
}
END_TEST


UNIT_MAIN("sidecar_stats", NULL, NULL, 0)
