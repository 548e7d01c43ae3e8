
/*
 * canary-sidecar's always-valid tests: against values computed here
 * another way, the martingale identity that makes them valid, and by
 * simulation: a canary identical to stable, checked every 1, 5 or 30
 * seconds for an hour, fails no more often than alpha, while the
 * fixed-horizon z-test checked as often does.  Also the evidence kept
 * in Redis: written and read back the same, refused when malformed.
 */


#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "evidence.h"
#include "sequential.h"
#include "stats.h"


/* P(X >= k), X ~ Bin(n, p), by summing the terms in long double */

static double
cs_sum_sf(uint64_t k, uint64_t n, double p)
{
    uint64_t     j;
    long double  term, sum;

    /* the k-th term from the 0-th by ratios of successive terms */
    term = powl(1 - (long double) p, (long double) n);
    sum = 0;

    for (j = 0; j <= n; j++) {
        if (j >= k) {
            sum += term;
        }

        term *= (long double) (n - j) / (long double) (j + 1)
                * (long double) p / (1 - (long double) p);
    }

    return (double) sum;
}


START_TEST(test_binomial_tail_is_exact)
{
    size_t  i;

    static const struct {
        uint64_t  k, n;
        double    p;
    } cases[] = {
        { 9, 31, 0.1 }, { 1, 1, 0.078 }, { 0, 10, 0.5 }, { 11, 10, 0.5 },
        { 5, 100, 0.01 }, { 30, 400, 0.05 }, { 200, 1000, 0.2 },
        { 1, 1000, 0.0001 }, { 990, 1000, 0.99 }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double  want, got;

        want = cs_sum_sf(cases[i].k, cases[i].n, cases[i].p);
        got = cs_binom_sf(cases[i].k, cases[i].n, cases[i].p);

        ck_assert_msg(fabs(got - want) <= 1e-10 + 1e-9 * want,
                      "P(Bin(%llu, %g) >= %llu): %.15g, not %.15g",
                      (unsigned long long) cases[i].n, cases[i].p,
                      (unsigned long long) cases[i].k, got, want);
    }

    /* far in the tail, and a large n */
    ck_assert(cs_binom_sf(60, 1000000, 0.00001) < 1e-20);
    ck_assert_double_eq_tol(cs_binom_sf(5000, 1000000, 0.005),
                            cs_sum_sf(5000, 1000000, 0.005), 1e-9);
}
END_TEST


/*
 * The example: 1 error in 96 canary requests against 0 in 1,135
 * on stable was p = 0.00029 by the z-test with a zero margin; the one
 * error is canary's with probability 96 / 1231, its share of requests.
 */

START_TEST(test_clean_stable_is_no_evidence)
{
    cs_seq_t  s;

    ck_assert_double_eq_tol(cs_conditional_p(0, 1135, 1, 96),
                            96.0 / 1231, 1e-12);

    cs_seq_init(&s);
    cs_seq_update(&s, 0, 1135, 1, 96);
    ck_assert(cs_seq_p_value(&s) > 0.1);
}
END_TEST


/*
 * Once M crossed, the p-value keeps the crossing: good intervals after it
 * lower M, not the evidence the stage already had (Ville's bound is on
 * the chance that M ever crosses).
 */

START_TEST(test_p_value_keeps_the_most_evidence)
{
    int       i;
    double    p, lm;
    cs_seq_t  s;

    cs_seq_init(&s);
    ck_assert(cs_seq_p_value(&s) == 1);

    cs_seq_update(&s, 2, 900, 12, 100);
    p = cs_seq_p_value(&s);
    lm = cs_seq_log_m(&s);
    ck_assert(p < 1e-3);
    ck_assert_double_eq_tol(p, exp(-lm), 1e-12);

    /* the canary no worse for many intervals: M falls, p stays */
    for (i = 0; i < 50; i++) {
        cs_seq_update(&s, 9, 900, 1, 100);
    }

    ck_assert(cs_seq_log_m(&s) < lm - 1);
    ck_assert(cs_seq_p_value(&s) == p);
    ck_assert(s.log_m_max == lm);
}
END_TEST


START_TEST(test_mixture_by_hand)
{
    size_t    i;
    double    s0, pi0, pi1, lr, sum, want;
    cs_seq_t  s;

    cs_seq_init(&s);
    cs_seq_update(&s, 1, 900, 3, 100);
    cs_seq_update(&s, 0, 0, 2, 10);         /* no stable: no evidence */
    cs_seq_update(&s, 0, 50, 0, 50);        /* no events: none either */

    ck_assert_uint_eq(s.events[1], 5);
    ck_assert_uint_eq(s.requests[0], 950);

    /* the binomial likelihood ratio written out, for each theta */
    s0 = 0.1;
    pi0 = s0;
    sum = 0;

    for (i = 0; i < CS_SEQ_GRID; i++) {
        pi1 = cs_seq_theta[i] * s0 / (cs_seq_theta[i] * s0 + 1 - s0);
        lr = pow(pi1 / pi0, 3) * pow((1 - pi1) / (1 - pi0), 1);

        ck_assert_double_eq_tol(s.log_lr[i], log(lr), 1e-12);
        sum += lr;
    }

    want = log(sum / CS_SEQ_GRID);

    ck_assert_double_eq_tol(cs_seq_log_m(&s), want, 1e-12);
    ck_assert_double_eq_tol(cs_seq_p_value(&s),
                            want > 0 ? exp(-want) : 1, 1e-12);
}
END_TEST


/*
 * Why the test is valid: when canary and stable fail alike, the
 * expected mixture ratio of an interval is exactly 1 whatever its share
 * and its number of bad events (a martingale), and below 1 when the
 * canary is better (a supermartingale).
 */

/* E[M] after one interval of n bad events, the canary's p of each */

static double
cs_expected_m(uint64_t n, double share, double p)
{
    double    e, pk;
    uint64_t  k;
    cs_seq_t  s;

    e = 0;

    for (k = 0; k <= n; k++) {
        pk = cs_sum_sf(k, n, p) - cs_sum_sf(k + 1, n, p);

        cs_seq_init(&s);
        cs_seq_update(&s, n - k, 1000000 - 1000000 * share, k,
                      1000000 * share);
        e += pk * exp(cs_seq_log_m(&s));
    }

    return e;
}


START_TEST(test_expected_ratio_is_one)
{
    size_t  i, x;
    double  share, e, pi;

    static const double  shares[] = { 0.01, 0.1, 0.5, 0.9 };
    static const size_t  events[] = { 1, 3, 12, 40 };

    for (i = 0; i < 4; i++) {
        for (x = 0; x < 4; x++) {
            share = shares[i];

            e = cs_expected_m(events[x], share, share);

            ck_assert_msg(fabs(e - 1) < 1e-9, "share %g, %zu events: "
                          "E[M] = %.12g", share, events[x], e);

            /* a canary that fails half as often as stable */
            pi = 0.5 * share / (0.5 * share + 1 - share);

            ck_assert(cs_expected_m(events[x], share, pi) < 1);
        }
    }
}
END_TEST


/* xorshift64*: the simulation's own, so that runs are repeatable */

static uint64_t  cs_rng = 88172645463325252ULL;


static double
cs_uniform(void)
{
    cs_rng ^= cs_rng >> 12;
    cs_rng ^= cs_rng << 25;
    cs_rng ^= cs_rng >> 27;

    return (double) ((cs_rng * 2685821657736338717ULL) >> 11) * 0x1.0p-53;
}


static uint64_t
cs_draw(uint64_t n, double p)
{
    uint64_t  i, x;

    x = 0;

    for (i = 0; i < n; i++) {
        x += cs_uniform() < p;
    }

    return x;
}


/*
 * An hour of a canary identical to stable: 20 requests a second, the
 * canary's share drifting between 10% and 30%, 1% errors on both.  The
 * tests are read every "every" seconds; how many of "runs" ever said
 * the canary is worse at alpha, by the always-valid p-value and by the
 * fixed-horizon z-test on the same cumulative counts.
 */

static uint64_t
cs_draw_errors(uint64_t n, double p, unsigned burst)
{
    uint64_t  x;

    /* bursts of "burst" errors on one side, as many errors on average */
    x = burst * cs_draw(n, p / burst);

    return x < n ? x : n;
}


static void
cs_aa(unsigned every, unsigned runs, double alpha, unsigned burst,
    unsigned *seq_alarms, unsigned *z_alarms)
{
    unsigned    run, t, seq_hit, z_hit;
    uint64_t    n[2], x[2], total_n[2], total_x[2], req, c;
    double      share;
    cs_seq_t    s;
    cs_ztest_t  z;

    *seq_alarms = 0;
    *z_alarms = 0;

    for (run = 0; run < runs; run++) {
        cs_seq_init(&s);
        memset(total_n, 0, sizeof(total_n));
        memset(total_x, 0, sizeof(total_x));
        memset(n, 0, sizeof(n));
        memset(x, 0, sizeof(x));
        seq_hit = 0;
        z_hit = 0;

        for (t = 1; t <= 3600; t++) {
            share = 0.2 + 0.1 * sin(t / 300.0 + run);
            req = 20;
            c = cs_draw(req, share);

            n[1] += c;
            n[0] += req - c;
            x[1] += cs_draw_errors(c, 0.01, burst);
            x[0] += cs_draw_errors(req - c, 0.01, burst);

            if (t % every) {
                continue;
            }

            cs_seq_update(&s, x[0], n[0], x[1], n[1]);
            cs_seq_observe(&s, x[0], n[0]);

            total_n[0] += n[0];
            total_n[1] += n[1];
            total_x[0] += x[0];
            total_x[1] += x[1];
            memset(n, 0, sizeof(n));
            memset(x, 0, sizeof(x));

            if (cs_seq_p_value(&s) < alpha) {
                seq_hit = 1;
            }

            cs_ztest_greater(total_x[1], total_n[1], total_x[0],
                             total_n[0], &z);

            if (z.p_value < alpha) {
                z_hit = 1;
            }
        }

        *seq_alarms += seq_hit;
        *z_alarms += z_hit;
    }
}


START_TEST(test_aa_false_alarms_whatever_the_interval)
{
    size_t    i;
    unsigned  seq, z, runs;
    double    alpha;

    static const unsigned  every[] = { 1, 5, 30 };

    runs = 400;
    alpha = 0.05;

    for (i = 0; i < 3; i++) {
        cs_aa(every[i], runs, alpha, 1, &seq, &z);

        ck_assert_msg(seq <= alpha * runs, "every %us: the always-valid "
                      "test failed %u of %u identical canaries (alpha "
                      "%g)", every[i], seq, runs, alpha);

        /* the fixed-horizon test, peeked at as often, fails far more:
         * what this test exists to catch */
        ck_assert_msg(z > 2 * alpha * runs, "every %us: the z-test "
                      "failed only %u of %u", every[i], z, runs);
    }
}
END_TEST


/*
 * Errors in bursts (a client retrying a failing request): stable's own
 * bursts show how much each burst inflates the evidence, so that the
 * test weighs a burst as one.  The estimate: about the burst size.
 */

START_TEST(test_burst_inflation_is_estimated)
{
    unsigned  i;
    uint64_t  x;
    cs_seq_t  s, t, u;

    cs_seq_init(&s);

    for (i = 0; i < 3600; i++) {
        x = cs_draw_errors(200, 0.02, 4);
        cs_seq_update(&s, x, 200, 0, 0);
        cs_seq_observe(&s, x, 200);
    }

    ck_assert_msg(cs_seq_phi(&s) > 3 && cs_seq_phi(&s) < 5, "phi %g",
                  cs_seq_phi(&s));

    /* independent errors: 1 */
    cs_seq_init(&s);

    for (i = 0; i < 3600; i++) {
        x = cs_draw_errors(200, 0.02, 1);
        cs_seq_update(&s, x, 200, 0, 0);
        cs_seq_observe(&s, x, 200);
    }

    ck_assert_msg(cs_seq_phi(&s) < 1.2, "phi %g", cs_seq_phi(&s));

    /* too little to tell yet: 1 */
    cs_seq_init(&s);
    cs_seq_update(&s, 8, 200, 0, 0);
    cs_seq_observe(&s, 8, 200);
    ck_assert(cs_seq_phi(&s) == 1);

    /* Pearson's statistic by hand: (N / E) sq - E over 999 intervals */
    s.intervals = 1000;
    s.events[0] = 300;
    s.requests[0] = 100000;
    s.sq = (3.0 * 999 + 300) * 300 / 100000;
    ck_assert_double_eq_tol(cs_seq_phi(&s), 3, 1e-9);

    /* a burst weighs as one: with phi 3, three canary errors in an
     * interval move each ratio a third of what they would */
    cs_seq_init(&t);
    cs_seq_update(&t, 0, 900, 3, 100);
    u = s;
    cs_seq_update(&u, 0, 900, 3, 100);

    for (i = 0; i < CS_SEQ_GRID; i++) {
        ck_assert_double_eq_tol(u.log_lr[i], t.log_lr[i] / 3, 1e-9);
    }
}
END_TEST


/*
 * The end-of-hold look by strata: two nginx, canary as good as stable in
 * each, one with 4% errors and half its traffic on canary, the other
 * 0.1% and 5%.  Pooled, the canary is "worse" beyond any doubt; by
 * strata it is not.  A canary three times worse in each is seen either
 * way.
 */

START_TEST(test_stratified_look)
{
    int       k;
    cs_seq_t  s;

    for (k = 0; k < 2; k++) {
        cs_seq_init(&s);

        /* 30 intervals: A 40 errors of 1000, 20 on canary (x3: 30) */
        for (int i = 0; i < 30; i++) {
            cs_seq_update(&s, 20, 500, k ? 30 : 20, 500);
            cs_seq_update(&s, 1, 9500, k ? 3 : 0, 500);
        }

        if (k == 0) {
            ck_assert(cs_conditional_p(630, 15000 + 285000, 600,
                                       15000 + 15000) < 1e-6);
            ck_assert_msg(cs_seq_stratified_p(&s) > 0.3, "%g",
                          cs_seq_stratified_p(&s));

        } else {
            ck_assert_msg(cs_seq_stratified_p(&s) < 1e-6, "%g",
                          cs_seq_stratified_p(&s));
        }
    }
}
END_TEST


START_TEST(test_detectable_ratio)
{
    double  r;

    /* 4,320 stable requests with 22 errors, 480 canary: 2.5x to 3.5x */
    r = cs_detectable_ratio(22, 4320, 480, 0.003, 1000);
    ck_assert_msg(r > 2.5 && r < 3.5, "%g", r);

    /* more canary traffic: smaller regressions show */
    ck_assert(cs_detectable_ratio(22, 4320, 4800, 0.003, 1000) < r);

    /* a clean stable side still gives an answer */
    ck_assert(cs_detectable_ratio(0, 4320, 480, 0.003, 1000) > 0);

    /* three requests a side cannot show anything under 1000x */
    ck_assert(cs_detectable_ratio(0, 3, 3, 0.003, 1000) == 0);
}
END_TEST


START_TEST(test_evidence_round_trip)
{
    char           *text, err[256];
    size_t          i;
    cs_evidence_t   ev, back;

    memset(&ev, 0, sizeof(ev));

    ev.looked = -1;
    ev.look_p = 0.00123456789012345;
    ev.v[CS_STABLE].requests = 123456789012ULL;
    ev.v[CS_STABLE].errors_5xx = 12;
    ev.v[CS_CANARY].requests = 100;
    ev.v[CS_CANARY].upstream_errors = 3;
    ev.v[CS_STABLE].counts[0] = 1;
    ev.v[CS_STABLE].counts[CS_HIST_BUCKETS - 1] = 1ULL << 53;
    ev.v[CS_CANARY].counts[100] = 42;
    cs_seq_update(&ev.errors, 3, 1000, 7, 100);
    cs_seq_update(&ev.latency, 0, 1000, 9, 100);

    text = cs_evidence_format(&ev);
    ck_assert_ptr_nonnull(text);

    ck_assert_msg(cs_evidence_parse(&back, text, err, sizeof(err)) == 0,
                  "%s: %s", err, text);
    ck_assert_int_eq(memcmp(&ev.v, &back.v, sizeof(ev.v)), 0);
    ck_assert_int_eq(back.looked, -1);
    ck_assert(back.look_p == ev.look_p);

    for (i = 0; i < CS_SEQ_GRID; i++) {
        ck_assert(back.errors.log_lr[i] == ev.errors.log_lr[i]);
        ck_assert(back.latency.log_lr[i] == ev.latency.log_lr[i]);
    }

    ck_assert(ev.errors.log_m_max > 0);
    ck_assert(back.errors.log_m_max == ev.errors.log_m_max);
    ck_assert(back.latency.log_m_max == ev.latency.log_m_max);

    ck_assert_uint_eq(back.errors.events[1], 7);
    free(text);

    /* empty evidence, as a new stage has */
    memset(&ev, 0, sizeof(ev));
    text = cs_evidence_format(&ev);
    ck_assert_int_eq(cs_evidence_parse(&back, text, err, sizeof(err)), 0);
    ck_assert_int_eq(memcmp(&ev, &back, sizeof(ev)), 0);
    free(text);
}
END_TEST


START_TEST(test_evidence_refuses_what_it_did_not_write)
{
    char           err[256];
    size_t          i;
    cs_evidence_t   ev;

    /* the same empty evidence, broken one way at a time */
#define CS_E0  "e 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
#define CS_L0  " l 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
#define CS_V0  " s 0 0 0 - c 0 0 0 -"

    static const char  *bad[] = {
        "",
        "2 0 1 " CS_E0 CS_L0 CS_V0,                 /* another version */
        "3 0 1 " CS_E0 CS_L0 CS_V0 " extra",
        "3 0 1 e 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 inf" CS_L0 CS_V0,
        "3 0 1 " CS_E0 CS_L0 " s 0 0 0 322:1 c 0 0 0 -",
        "3 0 1 " CS_E0 CS_L0 " s 0 0 0 1:-1 c 0 0 0 -",
        "3 2 1 " CS_E0 CS_L0 CS_V0,
        "3 0 7 " CS_E0 CS_L0 CS_V0,
        "3 0 1 e 0 0 0 0 0 -1 0 0 0 0 0 0 0 0 0 0 0" CS_L0 CS_V0,
        "3 0 1 e 0 0 0 0 0 0 5 0 0 0 0 0 0 0 0 0 0" CS_L0 CS_V0,
        /* a likelihood ratio its counts cannot give (a sure rollback) */
        "3 0 1 e 0 0 0 0 0 0 0 0 0 1e299 0 0 0 0 0 0 0" CS_L0 CS_V0,
        /* ... or a test made blind for the stage */
        "3 0 1 e 0 0 10 10 0 0 0 0 0 -1e299 0 0 0 0 0 0 0" CS_L0 CS_V0,
        /* counts that would wrap, more errors than requests, a bucket
         * twice */
        "3 0 1 " CS_E0 CS_L0 " s 18446744073709551615 0 0 - c 0 0 0 -",
        "3 0 1 " CS_E0 CS_L0 " s 5 4 2 - c 0 0 0 -",
        "3 0 1 " CS_E0 CS_L0 " s 5 0 0 3:1,3:1 c 0 0 0 -",
        /* ends right after a variant's counts (the fuzzer found it read
         * past the end) */
        "3 0 1 " CS_E0 CS_L0 " s 0 0 0"
    };

    for (i = 0; i < sizeof(bad) / sizeof(char *); i++) {
        err[0] = '\0';
        ck_assert_msg(cs_evidence_parse(&ev, bad[i], err, sizeof(err))
                      == -1, "accepted \"%s\"", bad[i]);
        ck_assert_msg(strstr(err, "evidence: bad") != NULL, "%s", err);
        ck_assert_uint_eq(ev.v[0].requests, 0);
    }

    ck_assert_int_eq(cs_evidence_parse(&ev, "3 0 1 " CS_E0 CS_L0
                                       " s 5 0 0 3:5 c 0 0 0 -", err,
                                       sizeof(err)), 0);
    ck_assert_uint_eq(ev.v[0].counts[3], 5);
}
END_TEST


UNIT_MAIN("sidecar_sequential", NULL, NULL, 120)
