
/*
 * Always-valid tests of canary against stable: pure, libm only.
 *
 * The judge looks every second for hours.  A fixed-horizon test (a
 * z-test, Mann-Whitney at p < 0.01) re-run that often fails a good
 * canary sooner or later ("peeking").  The tests here stay valid
 * however often they are read: the chance that the statistic EVER
 * crosses 1/alpha while the canary is no worse than stable is at most
 * alpha (Ville's inequality for a nonnegative supermartingale).
 *
 * The model, after Lindon and Malek, "Anytime-valid inference for
 * multinomial count data" (NeurIPS 2022), and Lindon, Sanden and
 * Shirikian, "Rapid regression detection in software deployments
 * through sequential testing" (KDD 2022, arXiv 2205.14762): bad events
 * (errors, slow requests) of each variant arrive as Poisson processes
 * at rate requests x p_variant.  Given the bad events of one interval,
 * the canary's share of them is binomial with
 *
 *     pi(theta) = theta s / (theta s + 1 - s),   theta = p_canary / p_stable
 *
 * where s is the canary's share of that interval's requests.  For each
 * alternative theta1 > 1 the product over intervals of the likelihood
 * ratio pi(theta1) : pi(1) is a martingale when theta = 1, and a
 * supermartingale for every theta <= 1 (a one-parameter exponential
 * family in logit pi, monotone in theta).  A mixture over a fixed grid
 * of theta1 is one too (Johari, Pekelis, Walsh, "Always valid
 * inference", 2017).  Conditioning on each interval's own share keeps
 * it exact when the canary's share of traffic drifts (tenants are
 * hashed, not requests), and it needs nothing but counts: no normal
 * approximation, and a stable side without errors gives no evidence
 * rather than a zero margin.
 */


#ifndef _CS_SEQUENTIAL_H_INCLUDED_
#define _CS_SEQUENTIAL_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* alternatives theta1 of the mixture: how many, and their values */
#define CS_SEQ_GRID         8


/*
 * Bad events that come in bursts (a client retrying a failing request,
 * a pause that slows a second's requests) are not independent: a burst
 * of c counts as c pieces of evidence where there is one.  Stable's own
 * events per interval show it: their variance over their mean (Pearson)
 * estimates the inflation phi, from the intervals before each one
 * (predictable), and each interval's log ratio is divided by it, as a
 * burst of c is then weighed as one (a tempered, "quasi" likelihood).
 * 1 until CS_SEQ_PHI_INTERVALS intervals with CS_SEQ_PHI_EVENTS stable
 * events have been seen; at most CS_SEQ_PHI_MAX.
 */
#define CS_SEQ_PHI_INTERVALS    30
#define CS_SEQ_PHI_EVENTS       10
#define CS_SEQ_PHI_MAX          20


typedef struct {
    double              log_lr[CS_SEQ_GRID];    /* per alternative */
    double              log_m_max;              /* the most log M was */
    uint64_t            events[2];              /* stable, canary */
    uint64_t            requests[2];            /* of the intervals used */
    uint64_t            intervals;              /* with stable requests */
    double              sq;                     /* their sum of x^2 / n */
    double              strat[3];               /* the canary's events,
                                                   their mean and variance
                                                   summed over strata */
} cs_seq_t;


extern const double  cs_seq_theta[CS_SEQ_GRID];


void cs_seq_init(cs_seq_t *s);

/*
 * One interval of one nginx (a stratum): bad events x and requests n of
 * each side.  An interval without requests on either side, or without
 * bad events, carries no evidence about the ratio and changes nothing
 * but the counts.
 */
void cs_seq_update(cs_seq_t *s, uint64_t x_stable, uint64_t n_stable,
    uint64_t x_canary, uint64_t n_canary);

/*
 * Stable's bad events and requests of one interval over the whole fleet,
 * for the overdispersion estimate (summed over nginx, whose rates may
 * differ: a sum of Poisson counts is Poisson, so only bursts show).
 */
void cs_seq_observe(cs_seq_t *s, uint64_t x_stable, uint64_t n_stable);

/*
 * The one look at the end of a hold, p-value of "the canary's rate is
 * above stable's" from the stage's strata (each nginx's each interval),
 * normal with a continuity correction, the variance inflated by phi:
 * unlike a test of the pooled counts, an nginx with more errors and more
 * canary traffic than another does not make the canary look worse.
 */
double cs_seq_stratified_p(const cs_seq_t *s);

/* the overdispersion of stable's bad events so far: 1 or more */
double cs_seq_phi(const cs_seq_t *s);

/* the mixture's log likelihood ratio, log M */
double cs_seq_log_m(const cs_seq_t *s);

/*
 * The always-valid p-value, min(1, 1 / max M so far): once M crossed
 * 1/alpha the evidence stands (Ville's bound is on the chance that M
 * EVER crosses), so a dip of M after a crossing, as a few good intervals
 * bring, does not clear a violation the evidence already showed.
 */
double cs_seq_p_value(const cs_seq_t *s);

/*
 * One sample against a fixed share: the always-valid p-value of "the
 * share of bad events among requests is at most q" after k bad events
 * in n requests (an absolute limit: latency_p95_max_ms = X says at most
 * 5% of requests are over X).  Under it each request is bad with chance
 * at most q; the likelihood ratio of the alternative q1 > q,
 *
 *     (q1 / q)^k ((1 - q1) / (1 - q))^(n - k),
 *
 * is a nonnegative supermartingale in the requests, and so is its
 * mixture over q1 = odds(q) x theta for theta from 1.05 to 40 (on the
 * odds scale so that q1 stays under 1; nearer 1 than the two-sample
 * grid, so that any share over q is seen in time).  Its value depends
 * on k and n only: no state.  Each log ratio is divided by phi (>= 1)
 * for bursts, as in cs_seq_update.
 * p = min(1, 1 / M).
 */
double cs_seq_share_p(uint64_t k, uint64_t n, double q, double phi);

/*
 * Exact binomial upper tail P(X >= k), X ~ Bin(n, p), by the
 * regularized incomplete beta function I_p(k, n - k + 1).
 */
double cs_binom_sf(uint64_t k, uint64_t n, double p);

/*
 * The fixed-horizon test of one look: given the bad events and requests
 * of each side over a whole stage, the exact conditional binomial
 * p-value of "the canary's rate is above stable's".
 */
double cs_conditional_p(uint64_t x_stable, uint64_t n_stable,
    uint64_t x_canary, uint64_t n_canary);

/*
 * The smallest ratio of canary's rate to stable's that a stage with
 * these requests would have shown at level alpha in the look above,
 * had the canary's bad events been as many as that ratio predicts;
 * stable's rate is its observed one (at least one event, so that a
 * clean stable side still gives a finite answer).  0 when not even
 * max_ratio would have been seen.
 */
double cs_detectable_ratio(uint64_t x_stable, uint64_t n_stable,
    uint64_t n_canary, double alpha, double max_ratio);


#endif /* _CS_SEQUENTIAL_H_INCLUDED_ */
