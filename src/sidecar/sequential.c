
/*
 * Always-valid tests: the mixture likelihood ratio of sequential.h, and
 * the exact binomial tail for the one fixed-horizon look of a stage.
 */


#include <math.h>
#include <string.h>

#include "sequential.h"
#include "stats.h"


#define CS_BETA_ITER_MAX    100000
#define CS_BETA_EPS         1e-15
#define CS_BETA_TINY        1e-300


static double cs_beta_cf(double a, double b, double x);
static double cs_beta_reg(double a, double b, double x);
static double cs_lentz(double *c, double *d, double aa);


/*
 * The alternatives: ratios of the canary's bad-event rate to stable's,
 * from the smallest a plan's margin usually allows (2x) to the 40x of a
 * canary that fails most requests.  Log-spaced, so that any true ratio
 * in range is within a factor of about 1.5 of one of them, and equally
 * weighted: the mixture pays log(8) = 2.1 nats for not knowing which.
 */

const double  cs_seq_theta[CS_SEQ_GRID] = {
    2, 3, 4.5, 7, 10, 15, 25, 40
};


void
cs_seq_init(cs_seq_t *s)
{
    memset(s, 0, sizeof(cs_seq_t));
}


void
cs_seq_update(cs_seq_t *s, uint64_t x_stable, uint64_t n_stable,
    uint64_t x_canary, uint64_t n_canary)
{
    size_t  i;
    double  share, theta, x, phi, lm;

    if (x_stable > n_stable) {
        x_stable = n_stable;
    }

    if (x_canary > n_canary) {
        x_canary = n_canary;
    }

    /* the inflation known before this interval's events */
    phi = cs_seq_phi(s);

    s->events[0] += x_stable;
    s->events[1] += x_canary;
    s->requests[0] += n_stable;
    s->requests[1] += n_canary;

    if (n_stable == 0 || n_canary == 0 || x_stable + x_canary == 0) {
        return;
    }

    share = (double) n_canary / ((double) n_canary + (double) n_stable);
    x = (double) (x_stable + x_canary);

    s->strat[0] += (double) x_canary;
    s->strat[1] += x * share;
    s->strat[2] += x * share * (1 - share);

    /*
     * log of pi1^xc (1 - pi1)^xs / (s^xc (1 - s)^xs), which simplifies
     * to xc log(theta) - (xc + xs) log(1 + (theta - 1) s)
     */

    for (i = 0; i < CS_SEQ_GRID; i++) {
        theta = cs_seq_theta[i];
        s->log_lr[i] += ((double) x_canary * log(theta)
                         - x * log1p((theta - 1) * share)) / phi;
    }

    lm = cs_seq_log_m(s);

    if (lm > s->log_m_max) {
        s->log_m_max = lm;
    }
}


void
cs_seq_observe(cs_seq_t *s, uint64_t x_stable, uint64_t n_stable)
{
    if (n_stable == 0) {
        return;
    }

    if (x_stable > n_stable) {
        x_stable = n_stable;
    }

    s->intervals++;
    s->sq += (double) x_stable * (double) x_stable / (double) n_stable;
}


double
cs_seq_stratified_p(const cs_seq_t *s)
{
    double  sd;

    if (s->strat[2] <= 0) {
        return 1;
    }

    sd = sqrt(s->strat[2] * cs_seq_phi(s));

    return cs_normal_sf((s->strat[0] - s->strat[1] - 0.5) / sd);
}


/*
 * Pearson's statistic over the intervals, sum (x - p n)^2 / (p n) with
 * p = E / N, is (N / E) sum x^2 / n - E; over its degrees of freedom it
 * estimates the variance inflation.
 */

double
cs_seq_phi(const cs_seq_t *s)
{
    double  e, n, phi;

    if (s->intervals < CS_SEQ_PHI_INTERVALS
        || s->events[0] < CS_SEQ_PHI_EVENTS)
    {
        return 1;
    }

    e = (double) s->events[0];
    n = (double) s->requests[0];

    phi = (n / e * s->sq - e) / (double) (s->intervals - 1);

    return phi < 1 ? 1 : phi > CS_SEQ_PHI_MAX ? CS_SEQ_PHI_MAX : phi;
}


double
cs_seq_log_m(const cs_seq_t *s)
{
    size_t  i;
    double  max, sum;

    max = s->log_lr[0];

    for (i = 1; i < CS_SEQ_GRID; i++) {
        if (s->log_lr[i] > max) {
            max = s->log_lr[i];
        }
    }

    sum = 0;

    for (i = 0; i < CS_SEQ_GRID; i++) {
        sum += exp(s->log_lr[i] - max);
    }

    return max + log(sum / CS_SEQ_GRID);
}


double
cs_seq_p_value(const cs_seq_t *s)
{
    return s->log_m_max <= 0 ? 1 : exp(-s->log_m_max);
}


/*
 * The share test's alternatives, odds ratios over q's odds: the two-
 * sample grid starts at 2, a margin a plan sets; an absolute limit has
 * none, and with 2 as its nearest alternative the test never sees a
 * share under about 1.4 q's odds (0.585 over a p50 limit, 7% over a p95
 * one) however many requests.  From 1.05 it sees any share 2.5% over q
 * in time; the 5 more alternatives cost log(13/8) = 0.5 nats.
 */

#define CS_SEQ_SHARE_GRID  13

static const double  cs_seq_share_theta[CS_SEQ_SHARE_GRID] = {
    1.05, 1.1, 1.25, 1.5, 1.75, 2, 3, 4.5, 7, 10, 15, 25, 40
};


double
cs_seq_share_p(uint64_t k, uint64_t n, double q, double phi)
{
    size_t  i;
    double  odds, q1, lr[CS_SEQ_SHARE_GRID], max, sum, lm;

    if (n == 0 || k == 0 || !(q > 0 && q < 1)) {
        return 1;
    }

    if (k > n) {
        k = n;
    }

    if (phi < 1) {
        phi = 1;
    }

    odds = q / (1 - q);
    max = -HUGE_VAL;

    for (i = 0; i < CS_SEQ_SHARE_GRID; i++) {
        q1 = odds * cs_seq_share_theta[i]
             / (1 + odds * cs_seq_share_theta[i]);
        lr[i] = ((double) k * log(q1 / q)
                 + (double) (n - k) * log((1 - q1) / (1 - q))) / phi;

        if (lr[i] > max) {
            max = lr[i];
        }
    }

    sum = 0;

    for (i = 0; i < CS_SEQ_SHARE_GRID; i++) {
        sum += exp(lr[i] - max);
    }

    lm = max + log(sum / CS_SEQ_SHARE_GRID);

    return lm <= 0 ? 1 : exp(-lm);
}


double
cs_binom_sf(uint64_t k, uint64_t n, double p)
{
    if (k == 0) {
        return 1;
    }

    if (k > n || p <= 0) {
        return 0;
    }

    if (p >= 1) {
        return 1;
    }

    return cs_beta_reg((double) k, (double) (n - k + 1), p);
}


double
cs_conditional_p(uint64_t x_stable, uint64_t n_stable, uint64_t x_canary,
    uint64_t n_canary)
{
    double  share;

    if (n_stable == 0 || n_canary == 0) {
        return 1;
    }

    if (x_stable > n_stable) {
        x_stable = n_stable;
    }

    if (x_canary > n_canary) {
        x_canary = n_canary;
    }

    share = (double) n_canary / ((double) n_canary + (double) n_stable);

    return cs_binom_sf(x_canary, x_stable + x_canary, share);
}


double
cs_detectable_ratio(uint64_t x_stable, uint64_t n_stable, uint64_t n_canary,
    double alpha, double max_ratio)
{
    int       i;
    double    rate, lo, hi, mid;
    uint64_t  x;

    if (n_stable == 0 || n_canary == 0 || max_ratio <= 1) {
        return 0;
    }

    rate = (double) (x_stable ? x_stable : 1) / (double) n_stable;

    /* the canary's events a ratio predicts, at most all its requests */
#define cs_predicted(ratio)                                                   \
    (x = (uint64_t) ceil((ratio) * rate * (double) n_canary),                \
     x > n_canary ? n_canary : x)

    if (cs_conditional_p(x_stable, n_stable, cs_predicted(max_ratio),
                         n_canary) >= alpha)
    {
        return 0;
    }

    lo = 0;
    hi = log(max_ratio);

    for (i = 0; i < 40; i++) {
        mid = (lo + hi) / 2;

        if (cs_conditional_p(x_stable, n_stable, cs_predicted(exp(mid)),
                             n_canary) < alpha)
        {
            hi = mid;

        } else {
            lo = mid;
        }
    }

#undef cs_predicted

    return exp(hi);
}


/* I_x(a, b), the regularized incomplete beta function */

static double
cs_beta_reg(double a, double b, double x)
{
    double  front;

    if (x <= 0) {
        return 0;
    }

    if (x >= 1) {
        return 1;
    }

    front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x)
                + b * log1p(-x));

    /* the continued fraction converges fast below the mean */
    if (x < (a + 1) / (a + b + 2)) {
        return front * cs_beta_cf(a, b, x) / a;
    }

    return 1 - front * cs_beta_cf(b, a, 1 - x) / b;
}


/* the continued fraction of I_x(a, b), by the modified Lentz method */

static double
cs_beta_cf(double a, double b, double x)
{
    int     m;
    double  c, d, h, del;

    /* as if after a term 0 that leaves the first one d = 1 / (1 + aa) */
    c = 1 / CS_BETA_TINY;
    d = 1;
    h = 1;

    /* the first term, then two a step: the even and the odd one */
    h *= cs_lentz(&c, &d, -(a + b) * x / (a + 1));

    for (m = 1; m <= CS_BETA_ITER_MAX; m++) {
        h *= cs_lentz(&c, &d, m * (b - m) * x / ((a + 2 * m - 1)
                                                 * (a + 2 * m)));

        del = cs_lentz(&c, &d, -(a + m) * (a + b + m) * x
                                / ((a + 2 * m) * (a + 2 * m + 1)));
        h *= del;

        if (fabs(del - 1) < CS_BETA_EPS) {
            break;
        }
    }

    return h;
}


/* one term aa of the fraction: the factor it multiplies the value by */

static double
cs_lentz(double *c, double *d, double aa)
{
    *d = 1 + aa * *d;

    if (fabs(*d) < CS_BETA_TINY) {
        *d = CS_BETA_TINY;
    }

    *c = 1 + aa / *c;

    if (fabs(*c) < CS_BETA_TINY) {
        *c = CS_BETA_TINY;
    }

    *d = 1 / *d;

    return *d * *c;
}
