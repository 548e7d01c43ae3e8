
/*
 * The decision of one step.  Canary is always judged against stable,
 * never against a fixed number alone: a check fails only when the
 * canary is worse by the SLO's margin over the stage (effect size) AND
 * a one-sided test says it is worse at the plan's confidence
 * (significance), over the stage's evidence (evidence.c), with tests
 * that stay valid however often they are read (sequential.c):
 *
 *   errors        always-valid test of errors per request, and one
 *                 exact look at the end of the hold
 *   availability  the same significance, against availability_min
 *   latency       p99 ratio (and a minimum difference in ms), and the
 *                 always-valid test of requests over that bound
 *
 *   latency_p95   (when the SLO has latency_p95_ratio_max)
 *                 as latency, for stable's p95 x that ratio
 *   latency_pNN_max_ms
 *                 (each when set) absolute: the canary's share
 *                 of requests over the limit against the share the
 *                 quantile allows (5% for p95), a one-sample always-
 *                 valid test (cs_seq_share_p); the only checks not
 *                 against stable
 *
 * The SLO is the stage's (the plan's "slo" merged with the stage's).
 * Fewer than min_requests over the stage on either side: no judgement,
 * hold.  What must act at once is judged on the short window: both
 * sides over error_rate_max (an outage: halt), and the critical path.
 * A violation must last violation_for, unless critical.
 */


#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "analysis.h"


static void cs_decide_start(const cs_plan_t *plan,
    const cs_split_view_t *view, const cs_metrics_t *m, int64_t now,
    cs_decision_t *d);
static void cs_stage_restart(cs_rollout_t *nx, int64_t now);
static int cs_look_due(const cs_plan_t *plan, const cs_rollout_t *ro,
    int64_t now);
static void cs_decide_operator(const cs_plan_t *plan,
    const cs_split_view_t *view, const cs_rollout_t *ro, int64_t now,
    cs_decision_t *d);
static void cs_decide_judged(const cs_plan_t *plan,
    const cs_split_view_t *view, const cs_metrics_t *m, int64_t now,
    cs_decision_t *d);
static void cs_decide_violation(const cs_plan_t *plan,
    const cs_split_view_t *view, int64_t now, cs_decision_t *d);
static void cs_judge_max(const cs_slo_t *slo, const cs_evidence_t *ev,
    double max_ms, double q, double a, cs_check_t *c);
static void cs_judge_shadow(const cs_slo_t *slo, const cs_evidence_t *ev,
    double a, cs_judgement_t *j);
static void cs_decide_walk(const cs_plan_t *plan,
    const cs_split_view_t *view, const cs_metrics_t *m, int64_t now,
    cs_decision_t *d);
static void cs_rollback_to(const cs_plan_t *plan,
    const cs_split_view_t *view, uint32_t weight, int64_t now,
    cs_decision_t *d);
static uint32_t cs_rollback_next(const cs_plan_t *plan, uint32_t weight);
static void cs_decide_forward(const cs_plan_t *plan,
    const cs_split_view_t *view, int64_t now, cs_decision_t *d);
static void cs_write(cs_decision_t *d, const cs_split_view_t *view,
    cs_action_e action, const char *state);
static void cs_op(cs_decision_t *d, const char *op);
static void cs_failed_checks(const cs_plan_t *plan, const cs_judgement_t *j,
    char *buf, size_t size);
static size_t cs_check_evidence(char *buf, size_t size, size_t n,
    const cs_check_t *c, const cs_judgement_t *j);
static void cs_reason(cs_decision_t *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void cs_note(cs_decision_t *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static size_t cs_cat(char *buf, size_t size, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));


static const char  *cs_status_names[] = {
    "new", "running", "awaiting_resume", "paused", "halted", "complete",
    "rolled_back", "rolling_back"
};


void
cs_rollout_init(cs_rollout_t *ro)
{
    memset(ro, 0, sizeof(cs_rollout_t));
    ro->status = CS_STATUS_NEW;
    ro->approved = -1;
}


const char *
cs_status_name(cs_status_e status)
{
    return cs_status_names[status];
}


int
cs_status_parse(const char *s, cs_status_e *status)
{
    size_t  i;

    for (i = 0; i < sizeof(cs_status_names) / sizeof(char *); i++) {
        if (strcmp(s, cs_status_names[i]) == 0) {
            *status = (cs_status_e) i;
            return 0;
        }
    }

    return -1;
}


int
cs_rollout_over(const cs_rollout_t *ro)
{
    return ro->status == CS_STATUS_COMPLETE
           || ro->status == CS_STATUS_ROLLED_BACK;
}


int
cs_action_writes(cs_action_e action)
{
    return action != CS_ACT_HOLD && action != CS_ACT_IDLE;
}


const char *
cs_verdict_name(cs_verdict_e v)
{
    return v == CS_PASS ? "PASS" : v == CS_FAIL ? "FAIL" : "NO_DATA";
}


const char *
cs_check_name(size_t check)
{
    static const char  *names[] = {
        "latency_p99_ms", "error_rate_percent", "availability_percent",
        "latency_p95_ms", "latency_p50_max_ms", "latency_p95_max_ms",
        "latency_p99_max_ms", "shadow_match_percent"
    };

    return names[check];
}


/* the checks a judgement failed, as cs_rollout_t.rollback_failed has
 * them (cs_failed_bit, CS_FAILED_CRITICAL) */

uint32_t
cs_failed_mask(const cs_judgement_t *j)
{
    size_t    i;
    uint32_t  mask;

    mask = j->critical ? CS_FAILED_CRITICAL : 0;

    for (i = 0; i < CS_CHECKS; i++) {
        if (j->checks[i].status == CS_FAIL) {
            mask |= cs_failed_bit(i);
        }
    }

    return mask;
}


size_t
cs_check_trigger(size_t check)
{
    static const size_t  triggers[] = {
        CS_TRIGGER_LATENCY_P99, CS_TRIGGER_ERROR_RATE,
        CS_TRIGGER_AVAILABILITY, CS_TRIGGER_LATENCY_P95,
        CS_TRIGGER_LATENCY_P50, CS_TRIGGER_LATENCY_P95,
        CS_TRIGGER_LATENCY_P99,
        /* a canary that answers wrong fails as one that errs */
        CS_TRIGGER_ERROR_RATE
    };

    return triggers[check];
}


void
cs_trigger_get(const cs_plan_t *plan, size_t trigger, cs_trigger_t *t)
{
    if (plan->triggers[trigger].set) {
        *t = plan->triggers[trigger];
        return;
    }

    /* today's: every check waits violation_for, then on_violation */
    t->set = 0;
    t->instant = 0;
    t->wait = plan->violation_for;
    t->then = plan->on_violation;
}


int64_t
cs_elapsed(int64_t now, int64_t since)
{
    if (since >= now) {
        return 0;
    }

    /* now - since > INT64_MAX, written so as not to overflow */
    if (since < 0 && now > INT64_MAX + since) {
        return INT64_MAX;
    }

    return now - since;
}


unsigned
cs_window_seconds(const cs_plan_t *plan, const cs_rollout_t *ro,
    int64_t now)
{
    int64_t  w, elapsed;

    w = plan->window / 1000;

    if (ro->status == CS_STATUS_NEW || cs_rollout_over(ro)) {
        return (unsigned) w;
    }

    elapsed = cs_elapsed(now, ro->stage_started);

    if (elapsed < w * 1000) {
        w = elapsed / 1000;
    }

    return w < 1 ? 1 : (unsigned) w;
}


size_t
cs_stage_for_weight(const cs_plan_t *plan, uint32_t weight)
{
    size_t  i, k;

    k = 0;

    for (i = 0; i < plan->nstages; i++) {
        if (plan->stages[i].weight <= weight) {
            k = i;
        }
    }

    return k;
}


double
cs_stage_alpha(const cs_plan_t *plan)
{
    size_t  i, judged;

    judged = 0;

    /* at 100% only tenants pinned to stable are compared, for a hold */
    for (i = 0; i < plan->nstages; i++) {
        if (plan->stages[i].weight < CS_WEIGHT_MAX || plan->stages[i].hold) {
            judged++;
        }
    }

    return (1 - plan->slo.confidence) / (judged ? judged : 1);
}


void
cs_judge(const cs_plan_t *plan, cs_evidence_t *ev, const cs_metrics_t *m,
    int look, cs_judgement_t *j)
{
    int                 v, significant, nlat;
    double              alpha, a_errors, a_look, a_latency, ratio_bound,
                        p, phi, strat, a_shadow;
    uint64_t            bound, hist[2], win_errors[2];
    cs_check_t         *c;
    cs_ztest_t          zs, zc;
    const cs_slo_t     *slo;
    const cs_window_t  *w;

    slo = &plan->slo;

    memset(j, 0, sizeof(cs_judgement_t));

    alpha = cs_stage_alpha(plan);
    a_shadow = 0;

    if (slo->shadow_match_min > 0) {
        a_shadow = alpha * CS_ALPHA_SHADOW;
        alpha -= a_shadow;
    }

    a_errors = alpha * CS_ALPHA_ERRORS;
    a_look = alpha * CS_ALPHA_LOOK;
    a_latency = alpha * CS_ALPHA_LATENCY;

    /*
     * latency's share is split evenly between the latency checks the
     * SLO has (a union bound): p99's alone, as before, unless it sets
     * latency_p95_ratio_max or absolute limits
     */
    nlat = 1 + (slo->latency_p95_ratio_max > 0)
           + (slo->latency_p50_max_ms > 0) + (slo->latency_p95_max_ms > 0)
           + (slo->latency_p99_max_ms > 0);
    a_latency /= nlat;

    j->alpha = alpha;

    for (v = 0; v < 2; v++) {
        w = &ev->v[v];

        j->requests[v] = w->requests;
        j->errors[v] = w->errors_5xx + w->upstream_errors;

        if (j->errors[v] > j->requests[v]) {
            j->errors[v] = j->requests[v];
        }

        j->error_pct[v] = j->requests[v]
                          ? 100.0 * j->errors[v] / j->requests[v] : 0;
        j->p99_ms[v] = cs_hist_quantile_ms(w->counts, 0.99);
        hist[v] = cs_hist_total(w->counts);

        w = &m->v[v];

        j->window_requests[v] = w->requests;
        win_errors[v] = w->errors_5xx + w->upstream_errors;

        if (win_errors[v] > w->requests) {
            win_errors[v] = w->requests;
        }

        j->window_error_pct[v] = w->requests
                                 ? 100.0 * win_errors[v] / w->requests : 0;
    }

    j->window_seconds = m->window_seconds;
    j->instances = m->instances;
    j->asked = m->asked;
    j->shadow_nginx = m->shadow_seen;

    j->enough = j->requests[CS_STABLE] >= slo->min_requests
                && j->requests[CS_CANARY] >= slo->min_requests;

    /*
     * errors: significance from the stage's evidence, either the
     * always-valid test (acts whenever it crosses) or the one look at
     * the end of the hold; effect size from the stage's rates against
     * the SLO's margin
     */

    if (look && j->enough && !ev->looked) {
        /* errors that come in bursts weigh as the bursts they are */
        phi = cs_seq_phi(&ev->errors);

        ev->look_p = cs_conditional_p(
                         (uint64_t) (j->errors[CS_STABLE] / phi + 0.5),
                         j->requests[CS_STABLE],
                         (uint64_t) (j->errors[CS_CANARY] / phi + 0.5),
                         j->requests[CS_CANARY]);

        /*
         * exact on the pooled counts (small counts), and stratified by
         * nginx and interval (a fleet whose nginx differ, a share that
         * drifts with the error rate): the canary must be worse by both
         */
        strat = cs_seq_stratified_p(&ev->errors);

        if (strat > ev->look_p) {
            ev->look_p = strat;
        }
        ev->looked = ev->look_p < a_look ? -1 : 1;
        j->looked = 1;
    }

    /*
     * the p-value holds the strongest evidence the stage has seen; the
     * canary must also be worse than stable over the stage now, or a
     * burst long outweighed by good requests would still fail it
     */
    p = cs_seq_p_value(&ev->errors);
    significant = (p < a_errors || ev->looked < 0)
                  && j->error_pct[CS_CANARY] > j->error_pct[CS_STABLE];
    j->error_phi = cs_seq_phi(&ev->errors);

    ratio_bound = slo->error_rate_ratio_max * j->error_pct[CS_STABLE];

    c = &j->checks[CS_CHECK_ERRORS];
    c->baseline = j->error_pct[CS_STABLE];
    c->canary = j->error_pct[CS_CANARY];
    c->threshold = ratio_bound < slo->error_rate_max
                   ? ratio_bound : slo->error_rate_max;
    c->p_value = p;
    c->alpha = a_errors;
    c->look_p = ev->looked ? ev->look_p : -1;
    c->events[CS_STABLE] = j->errors[CS_STABLE];
    c->events[CS_CANARY] = j->errors[CS_CANARY];
    c->status = !j->enough ? CS_NO_DATA
                : significant && (c->canary > ratio_bound
                                  || c->canary > slo->error_rate_max)
                  ? CS_FAIL : CS_PASS;

    /* availability: under the minimum, and worse than stable as above */

    j->checks[CS_CHECK_AVAILABILITY] = *c;

    c = &j->checks[CS_CHECK_AVAILABILITY];
    c->baseline = 100 - j->error_pct[CS_STABLE];
    c->canary = 100 - j->error_pct[CS_CANARY];
    c->threshold = slo->availability_min;
    c->status = !j->enough ? CS_NO_DATA
                : significant && c->canary < slo->availability_min
                  ? CS_FAIL : CS_PASS;

    /*
     * latency: the share of requests over stable's p99 x the ratio (and
     * + min_delta_ms), canary's against stable's, by the always-valid
     * test; effect size: the stage's p99s
     */

    bound = cs_slow_bound_us(plan, ev->v[CS_STABLE].counts);

    c = &j->checks[CS_CHECK_LATENCY];
    c->baseline = j->p99_ms[CS_STABLE];
    c->canary = j->p99_ms[CS_CANARY];
    c->threshold = (double) bound / 1000;
    c->p_value = cs_seq_p_value(&ev->latency);
    c->alpha = a_latency;
    c->look_p = -1;
    c->events[CS_STABLE] = bound ? cs_hist_above(ev->v[CS_STABLE].counts,
                                                 bound) : 0;
    c->events[CS_CANARY] = bound ? cs_hist_above(ev->v[CS_CANARY].counts,
                                                 bound) : 0;
    c->status = bound == 0 || hist[CS_CANARY] < slo->min_requests
                ? CS_NO_DATA
                : c->canary > c->threshold && c->p_value < a_latency
                  ? CS_FAIL : CS_PASS;

    j->slow_ms = c->threshold;

    /* latency p95, relative: as p99's, over stable's p95 x the ratio */

    c = &j->checks[CS_CHECK_LATENCY_P95];
    c->look_p = -1;
    c->p_value = 1;
    c->alpha = a_latency;

    if (slo->latency_p95_ratio_max > 0) {
        bound = cs_slow_bound95_us(plan, ev->v[CS_STABLE].counts);

        c->baseline = cs_hist_quantile_ms(ev->v[CS_STABLE].counts, 0.95);
        c->canary = cs_hist_quantile_ms(ev->v[CS_CANARY].counts, 0.95);
        c->threshold = (double) bound / 1000;
        c->p_value = cs_seq_p_value(&ev->latency95);
        c->events[CS_STABLE] = bound ? cs_hist_above(
                                   ev->v[CS_STABLE].counts, bound) : 0;
        c->events[CS_CANARY] = bound ? cs_hist_above(
                                   ev->v[CS_CANARY].counts, bound) : 0;
        c->status = bound == 0 || hist[CS_CANARY] < slo->min_requests
                    ? CS_NO_DATA
                    : c->canary > c->threshold && c->p_value < a_latency
                      ? CS_FAIL : CS_PASS;

    } else {
        c->off = 1;
        c->status = CS_NO_DATA;
    }

    /* absolute limits: each quantile's share over its limit */

    cs_judge_max(slo, ev, slo->latency_p50_max_ms, 0.5, a_latency,
                 &j->checks[CS_CHECK_P50_MAX]);
    cs_judge_max(slo, ev, slo->latency_p95_max_ms, 0.05, a_latency,
                 &j->checks[CS_CHECK_P95_MAX]);
    cs_judge_max(slo, ev, slo->latency_p99_max_ms, 0.01, a_latency,
                 &j->checks[CS_CHECK_P99_MAX]);

    /* the shadow's match rate over the stage */

    cs_judge_shadow(slo, ev, a_shadow, j);

    /*
     * What must act at once is judged on the short window, as before, on
     * CS_WINDOW_ERRORS_MIN errors at least: read every second, one error
     * in six requests must not pass for a 16% error rate:
     * an outage (both sides over error_rate_max: halt, not the canary's
     * fault), and the critical path (the canary failing far over the
     * limit while stable is not).
     */

    j->outage = j->window_requests[CS_STABLE] >= slo->min_requests
                && j->window_requests[CS_CANARY] >= slo->min_requests
                && win_errors[CS_STABLE] >= CS_WINDOW_ERRORS_MIN
                && win_errors[CS_CANARY] >= CS_WINDOW_ERRORS_MIN
                && j->window_error_pct[CS_CANARY] > slo->error_rate_max
                && j->window_error_pct[CS_STABLE] > slo->error_rate_max;

    /*
     * Both sides under availability_min beyond chance, the canary not
     * worse than stable: a shared problem too, below error_rate_max.
     * Promoting through it would judge the canary on a sick baseline.
     */

    if (j->window_requests[CS_STABLE] >= slo->min_requests
        && j->window_requests[CS_CANARY] >= slo->min_requests
        && win_errors[CS_STABLE] >= CS_WINDOW_ERRORS_MIN
        && win_errors[CS_CANARY] >= CS_WINDOW_ERRORS_MIN
        && !j->outage
        && j->checks[CS_CHECK_AVAILABILITY].status != CS_FAIL)
    {
        cs_ztest_above(win_errors[CS_STABLE], j->window_requests[CS_STABLE],
                       1 - slo->availability_min / 100, &zs);
        cs_ztest_above(win_errors[CS_CANARY], j->window_requests[CS_CANARY],
                       1 - slo->availability_min / 100, &zc);

        j->degraded = zs.p_value < alpha && zc.p_value < alpha;
        j->outage = j->degraded;
    }

    j->critical = j->window_requests[CS_CANARY] >= slo->min_requests
                  && win_errors[CS_CANARY] >= CS_WINDOW_ERRORS_MIN
                  && j->window_error_pct[CS_CANARY]
                     > CS_CRITICAL_FACTOR * slo->error_rate_max
                  && !(j->window_requests[CS_STABLE] >= slo->min_requests
                       && j->window_error_pct[CS_STABLE]
                          > slo->error_rate_max);

    j->violation = !j->outage
                   && (j->critical
                       || j->checks[CS_CHECK_LATENCY].status == CS_FAIL
                       || j->checks[CS_CHECK_ERRORS].status == CS_FAIL
                       || j->checks[CS_CHECK_AVAILABILITY].status
                          == CS_FAIL
                       || j->checks[CS_CHECK_LATENCY_P95].status == CS_FAIL
                       || j->checks[CS_CHECK_P50_MAX].status == CS_FAIL
                       || j->checks[CS_CHECK_P95_MAX].status == CS_FAIL
                       || j->checks[CS_CHECK_P99_MAX].status == CS_FAIL
                       || j->checks[CS_CHECK_SHADOW].status == CS_FAIL);
}


/*
 * A shadow stage's match rate, "matched / compared >= shadow_match_min":
 * an absolute limit on the share q = 1 - shadow_match_min / 100 of
 * comparisons that mismatch, judged as the latency limits are: FAIL on
 * the effect (the stage's match rate under the minimum) and the
 * evidence (the always-valid p of "the mismatch share is at most q"
 * under a), never before shadow_min_compared comparisons (NO_DATA).
 * PASS needs both the comparisons and the rate; a rate under the
 * minimum without the evidence yet is NO_DATA: not a failure, not a
 * pass (promotion waits for one or the other).  Mismatches are taken as
 * independent (phi 1): each comparison is another request.  With
 * shadow_match_min 100 (q 0) one mismatch is certain evidence.
 */

static void
cs_judge_shadow(const cs_slo_t *slo, const cs_evidence_t *ev, double a,
    cs_judgement_t *j)
{
    uint64_t     n, k, min;
    cs_check_t  *c;

    c = &j->checks[CS_CHECK_SHADOW];

    j->shadow = ev->shadow;

    /* racy readings of two counters: never more matched than compared */
    if (j->shadow.matched > j->shadow.compared) {
        j->shadow.matched = j->shadow.compared;
    }

    min = slo->shadow_min_compared ? slo->shadow_min_compared
                                   : slo->min_requests;
    j->shadow_min_compared = min;

    c->look_p = -1;
    c->p_value = 1;
    c->alpha = a;

    if (slo->shadow_match_min <= 0) {
        c->off = 1;
        c->status = CS_NO_DATA;
        return;
    }

    n = j->shadow.compared;
    k = n - j->shadow.matched;

    c->baseline = 100;                  /* stable, against itself */
    c->canary = n ? 100.0 * (double) j->shadow.matched / (double) n : NAN;
    c->threshold = slo->shadow_match_min;
    c->events[CS_STABLE] = 0;
    c->events[CS_CANARY] = k;

    if (slo->shadow_match_min >= 100) {
        c->p_value = k ? 0 : 1;

    } else {
        c->p_value = cs_seq_share_p(k, n, 1 - slo->shadow_match_min / 100,
                                    1);
    }

    if (n < min) {
        c->status = CS_NO_DATA;

    } else if (c->canary < c->threshold) {
        c->status = c->p_value < a ? CS_FAIL : CS_NO_DATA;

    } else {
        c->status = CS_PASS;
    }
}


/*
 * An absolute limit, "pNN <= max_ms": at most a share q of requests
 * (0.05 for p95) over max_ms.  The histogram's buckets are ranges
 * (each 1/16 of its octave wide): only requests in buckets whose lower
 * bound is above max_ms (at max_ms + 1us or more) are counted as over
 * it, those certainly over; a bucket that straddles max_ms counts as
 * under.  The count is never more than the true one, so the test stays
 * valid (it may see a canary just over the limit late, never one under
 * it as over).  FAIL: the canary's pNN over the limit (effect) and the
 * always-valid p of its share under alpha (evidence): one slow request,
 * or a few, never fail it (after one request over, p is at least q).
 */

static void
cs_judge_max(const cs_slo_t *slo, const cs_evidence_t *ev, double max_ms,
    double q, double a, cs_check_t *c)
{
    uint64_t         n, k, bound;
    const uint64_t  *h;

    c->look_p = -1;
    c->p_value = 1;
    c->alpha = a;

    if (max_ms <= 0) {
        c->off = 1;
        c->status = CS_NO_DATA;
        return;
    }

    h = ev->v[CS_CANARY].counts;
    bound = (uint64_t) (max_ms * 1000) + 1;
    n = cs_hist_total(h);
    k = cs_hist_above(h, bound);

    c->baseline = cs_hist_quantile_ms(ev->v[CS_STABLE].counts, 1 - q);
    c->canary = cs_hist_quantile_ms(h, 1 - q);
    c->threshold = max_ms;
    c->events[CS_STABLE] = cs_hist_above(ev->v[CS_STABLE].counts, bound);
    c->events[CS_CANARY] = k;

    /* slow requests in bursts weigh as the bursts latency's test saw */
    c->p_value = cs_seq_share_p(k, n, q, cs_seq_phi(&ev->latency));

    c->status = n < slo->min_requests ? CS_NO_DATA
                : c->canary > max_ms && c->p_value < a ? CS_FAIL : CS_PASS;
}


void
cs_decide(const cs_plan_t *plan, const cs_split_view_t *view,
    const cs_rollout_t *ro, const cs_metrics_t *m, int64_t now,
    cs_decision_t *d)
{
    cs_plan_t  sp;

    /*
     * the stage's SLO (the plan's merged with the stage's) is the plan's
     * for everything below: the judge, the evidence's bounds, messages
     */
    if (ro->stage < plan->nstages && plan->stage_has_slo[ro->stage]) {
        sp = *plan;
        sp.slo = plan->stage_slo[ro->stage];
        plan = &sp;
    }

    memset(d, 0, sizeof(cs_decision_t));

    d->action = CS_ACT_HOLD;
    d->next = *ro;
    d->from_stage = (int) ro->stage;
    d->to_stage = (int) ro->stage;
    d->from_weight = ro->weight;
    d->to_weight = ro->weight;

    if (m == NULL || m->instances == 0) {
        m = NULL;
    }

    if (ro->status == CS_STATUS_NEW) {
        cs_decide_start(plan, view, m, now, d);

        /*
         * Not starting, with an nginx answering: why goes into the
         * sidecar's state (status "new"), written when it changes
         */
        if (d->action == CS_ACT_HOLD && m != NULL
            && strcmp(d->next.held, d->reason) != 0)
        {
            snprintf(d->next.held, sizeof(d->next.held), "%s", d->reason);
            d->dirty = 1;
        }

        return;
    }

    if (m != NULL && !cs_rollout_over(ro)
        && strcmp(d->next.lagging, m->lagging ? m->lagging : "") != 0)
    {
        /* the nodes that lag, in the state for operators */
        snprintf(d->next.lagging, sizeof(d->next.lagging), "%s",
                 m->lagging ? m->lagging : "");
        d->dirty = 1;
    }

    if (m != NULL && !cs_rollout_over(ro)) {
        /* the step's new requests belong to the stage they were made in,
         * whatever this decision does next */
        if (m->has_delta) {
            cs_evidence_add(plan, &d->next.ev, m);
            d->dirty = 1;
        }

        cs_judge(plan, &d->next.ev, m, cs_look_due(plan, ro, now), &d->j);
        d->has_judgement = 1;

        /* what the evidence snapshot of a weight change keeps */
        d->judged = d->next.ev;

        if (d->j.looked) {
            d->dirty = 1;
        }
    }

    if (cs_rollout_over(ro)) {
        d->action = CS_ACT_IDLE;
        cs_reason(d, "rollout %s%s%s: nothing to do",
                  cs_status_name(ro->status),
                  ro->stopped_by[0] ? ": " : "", ro->stopped_by);
        return;
    }

    if (!view->exists) {
        cs_reason(d, "hold: the split's hash is gone from Redis (flushed, "
                  "or restarted empty?); canary-ctl reset starts a new "
                  "rollout");
        return;
    }

    if (view->generation < ro->seen) {
        cs_reason(d, "hold: the split's generation went back from %llu "
                  "to %llu: someone rewrote the hash (Redis lost it?); "
                  "canary-ctl reset starts a new rollout",
                  (unsigned long long) ro->seen,
                  (unsigned long long) view->generation);
        return;
    }

    if (view->generation > ro->seen) {
        cs_decide_operator(plan, view, ro, now, d);

        if (cs_rollout_over(&d->next)) {
            d->action = CS_ACT_IDLE;
            cs_reason(d, "stopped: %s; not acting on this rollout any "
                      "more", d->next.stopped_by);
            return;
        }
    }

    if (d->next.status == CS_STATUS_ROLLING_BACK) {
        /* down, even blind: every step lowers the canary's share */
        cs_decide_walk(plan, view, m, now, d);
        return;
    }

    if (m == NULL) {
        cs_reason(d, "hold: no /canary_status answered; never promoting "
                  "blind");
        return;
    }

    cs_decide_judged(plan, view, m, now, d);
}


/*
 * A rollout starts only on a split that was never rolled out (no state)
 * or that an operator reset (state "ready"), is switched on, and that at
 * least one nginx reports: never over a rollback, a guard's trip or a
 * finished rollout that nobody acknowledged, never blind.
 */

static void
cs_decide_start(const cs_plan_t *plan, const cs_split_view_t *view,
    const cs_metrics_t *m, int64_t now, cs_decision_t *d)
{
    char                weight[16];
    cs_rollout_t       *nx;
    const cs_stage_t   *st;

    if (view->state[0]
        && strcmp(view->state, NGX_HTTP_CANARY_STATE_READY) != 0)
    {
        cs_reason(d, "not starting: the split's state is \"%s\"%s%s; "
                  "canary-ctl reset acknowledges it", view->state,
                  view->updated_by[0] ? " by " : "", view->updated_by);
        return;
    }

    if (view->enabled == 0) {
        cs_reason(d, "not starting: the split is disabled (kill switch); "
                  "canary-ctl enable first");
        return;
    }

    if (m == NULL) {
        cs_reason(d, "not starting: no nginx answered for this split");
        return;
    }

    if (m->guard_tripped || m->disabled) {
        cs_reason(d, "not starting: %s in %zu nginx",
                  m->guard_tripped ? "the guard tripped" : "the split is "
                  "disabled", m->guard_tripped ? m->guard_tripped
                                               : m->disabled);
        return;
    }

    st = &plan->stages[0];
    nx = &d->next;

    /* nothing judged yet, but the receipt says who answered */
    d->j.instances = m->instances;
    d->j.asked = m->asked;

    cs_write(d, view, CS_ACT_START, NGX_HTTP_CANARY_STATE_RUNNING);
    cs_op(d, NGX_HTTP_CANARY_OP_STARTED);

    d->from_stage = -1;
    d->to_stage = 0;
    d->from_weight = view->has_weight ? view->weight : 0;
    d->to_weight = st->weight;
    d->set_weight = 1;
    d->weight = st->weight;
    d->pins = plan->npins ? 1 : 0;

    nx->status = CS_STATUS_RUNNING;
    nx->stage = 0;
    cs_stage_restart(nx, now);
    nx->weight = st->weight;
    nx->approved = -1;
    nx->stopped_by[0] = '\0';
    nx->held[0] = '\0';

    nx->rollout_started = now;
    nx->stages_completed = 0;
    nx->rollbacks = 0;
    nx->stages_log[0] = '\0';
    nx->rollback_detected = 0;
    nx->rollback_failed = 0;
    nx->walking = 0;

    cs_reason(d, "start: stage %s (%s%%) with %zu pinned tenant%s on "
              "canary", st->name,
              cs_weight_format(st->weight, weight, sizeof(weight)),
              plan->npins, plan->npins == 1 ? "" : "s");
}


/* a stage, or its hold, starts: so does its evidence */

static void
cs_stage_restart(cs_rollout_t *nx, int64_t now)
{
    nx->stage_started = now;
    nx->violation_since = 0;
    memset(nx->trigger_since, 0, sizeof(nx->trigger_since));
    memset(&nx->ev, 0, sizeof(cs_evidence_t));
}


/*
 * The stage's one fixed-horizon look is due once its hold has passed
 * while running, the moment it would otherwise be promoted.
 */

static int
cs_look_due(const cs_plan_t *plan, const cs_rollout_t *ro, int64_t now)
{
    return ro->status == CS_STATUS_RUNNING && ro->stage < plan->nstages
           && cs_elapsed(now, ro->stage_started)
              >= plan->stages[ro->stage].hold;
}


/*
 * Someone else raised the generation: canary-ctl, the module's guard,
 * or a hand-written HSET.  What the sidecar does:
 *
 *   state rolled_back or guard_tripped   stop acting on this rollout
 *   state paused                         hold (violations still act)
 *   state running after paused,          continue; at a manual gate
 *     awaiting_resume or halted          whose hold passed, enter it
 *   weight other than the sidecar's      the operator's weight stands:
 *                                        the rollout is re-anchored at
 *                                        the last stage with a weight
 *                                        at most that, whose hold
 *                                        starts over; the next
 *                                        promotion goes above it
 *   anything else (pins, enabled)        noted; nothing changes
 */

static void
cs_decide_operator(const cs_plan_t *plan, const cs_split_view_t *view,
    const cs_rollout_t *ro, int64_t now, cs_decision_t *d)
{
    int                 changed;
    char                w[16];
    size_t              k;
    const char         *by;
    cs_rollout_t       *nx;
    const cs_stage_t   *st;

    nx = &d->next;
    nx->seen = view->generation;
    d->dirty = 1;

    by = view->updated_by[0] ? view->updated_by : "someone";
    changed = 0;

    if (strcmp(view->state, NGX_HTTP_CANARY_STATE_ROLLED_BACK) == 0
        || strcmp(view->state, NGX_HTTP_CANARY_STATE_GUARD_TRIPPED) == 0)
    {
        /* in the middle of a gradual rollback (walking, or paused by
         * an operator mid-walk): the same one, ended */
        if (nx->status != CS_STATUS_ROLLING_BACK && !nx->walking) {
            nx->rollbacks++;
        }

        nx->status = CS_STATUS_ROLLED_BACK;
        snprintf(nx->stopped_by, sizeof(nx->stopped_by),
                 "state %s by %s (generation %llu)", view->state, by,
                 (unsigned long long) view->generation);
        cs_note(d, "%s", nx->stopped_by);
        return;
    }

    if (strcmp(view->state, NGX_HTTP_CANARY_STATE_PAUSED) == 0) {
        if (nx->status != CS_STATUS_PAUSED) {
            nx->status = CS_STATUS_PAUSED;
            cs_note(d, "paused by %s", by);
            changed = 1;
        }

    } else if (strcmp(view->state, NGX_HTTP_CANARY_STATE_RUNNING) == 0
               && nx->status == CS_STATUS_PAUSED && nx->walking)
    {
        /* a gradual rollback paused: the decision was taken, it walks on
         * (never a rollout at a step's weight that promotes again) */
        nx->status = CS_STATUS_ROLLING_BACK;
        cs_note(d, "resumed by %s: the gradual rollback goes on from %s%%",
                by, cs_weight_format(nx->weight, w, sizeof(w)));
        changed = 1;

    } else if (strcmp(view->state, NGX_HTTP_CANARY_STATE_RUNNING) == 0
               && (nx->status == CS_STATUS_PAUSED
                   || nx->status == CS_STATUS_AWAITING_RESUME
                   || nx->status == CS_STATUS_HALTED))
    {
        nx->status = CS_STATUS_RUNNING;
        nx->violation_since = 0;
        memset(nx->trigger_since, 0, sizeof(nx->trigger_since));
        changed = 1;

        st = &plan->stages[nx->stage];

        if (nx->stage + 1 < plan->nstages
            && plan->stages[nx->stage + 1].manual
            && cs_elapsed(now, nx->stage_started) >= st->hold)
        {
            nx->approved = (int) nx->stage + 1;
            cs_note(d, "resumed by %s: may enter manual stage %s", by,
                    plan->stages[nx->stage + 1].name);

        } else {
            cs_note(d, "resumed by %s", by);
        }
    }

    if (view->has_weight && view->weight != ro->weight) {
        k = cs_stage_for_weight(plan, view->weight);

        /* the stages before it are behind the rollout now, no more, no
         * fewer: a walk up again must not count its stages twice */
        nx->stage = k;
        nx->stages_completed = (uint32_t) k;
        cs_stage_restart(nx, now);
        nx->weight = view->weight;
        nx->approved = -1;

        if (nx->status == CS_STATUS_AWAITING_RESUME) {
            nx->status = CS_STATUS_RUNNING;
        }

        cs_note(d, "%sweight set to %s%% by %s: at stage %s now, its hold "
                "starts over", changed ? "; " : "",
                cs_weight_format(view->weight, w, sizeof(w)), by,
                plan->stages[k].name);
        changed = 1;
    }

    if (!changed) {
        cs_note(d, "generation %llu by %s (state \"%s\"): nothing to do",
                (unsigned long long) view->generation, by, view->state);
    }
}


static void
cs_decide_judged(const cs_plan_t *plan, const cs_split_view_t *view,
    const cs_metrics_t *m, int64_t now, cs_decision_t *d)
{
    char                   a[24];
    int64_t                held;
    cs_rollout_t          *nx;
    const cs_judgement_t  *j;

    nx = &d->next;
    j = &d->j;

    if (j->outage) {
        if (nx->violation_since) {
            nx->violation_since = 0;
            memset(nx->trigger_since, 0, sizeof(nx->trigger_since));
            d->dirty = 1;
        }

        if (nx->status == CS_STATUS_RUNNING
            || nx->status == CS_STATUS_AWAITING_RESUME)
        {
            cs_write(d, view, CS_ACT_HALT, NGX_HTTP_CANARY_STATE_HALTED);
            cs_op(d, NGX_HTTP_CANARY_OP_HALTED);
            nx->status = CS_STATUS_HALTED;
            if (j->degraded) {
                cs_reason(d, "HALT: both variants under availability_min "
                          "%g%% over %us: canary %.2f%%, stable %.2f%%; a "
                          "shared problem, not the canary: no rollback, "
                          "no promotion", plan->slo.availability_min,
                          j->window_seconds,
                          100 - j->window_error_pct[CS_CANARY],
                          100 - j->window_error_pct[CS_STABLE]);
                return;
            }

            cs_reason(d, "HALT: both variants over error_rate_max %g%% "
                      "over %us: canary %.2f%%, stable %.2f%%; an outage, "
                      "not the canary: no rollback, no promotion",
                      plan->slo.error_rate_max, j->window_seconds,
                      j->window_error_pct[CS_CANARY],
                      j->window_error_pct[CS_STABLE]);
            return;
        }

        if (j->degraded) {
            cs_reason(d, "%s: both variants under availability_min %g%%",
                      cs_status_name(nx->status),
                      plan->slo.availability_min);
            return;
        }

        cs_reason(d, "%s: outage, both variants over error_rate_max %g%%",
                  cs_status_name(nx->status), plan->slo.error_rate_max);
        return;
    }

    if (nx->status == CS_STATUS_HALTED) {
        if (!j->enough) {
            cs_reason(d, "halted: too little traffic to see the outage "
                      "clear (min %llu requests each)",
                      (unsigned long long) plan->slo.min_requests);
            return;
        }

        cs_write(d, view, CS_ACT_UNHALT, NGX_HTTP_CANARY_STATE_RUNNING);
        cs_op(d, NGX_HTTP_CANARY_OP_HALT_CLEARED);
        nx->status = CS_STATUS_RUNNING;
        cs_stage_restart(nx, now);
        cs_reason(d, "outage over: error rates canary %.2f%%, stable "
                  "%.2f%%; judging again, the stage's hold starts over",
                  j->error_pct[CS_CANARY], j->error_pct[CS_STABLE]);
        return;
    }

    if (j->violation) {
        cs_decide_violation(plan, view, now, d);
        return;
    }

    /*
     * A violation that cleared before violation_for: no rollback, but the
     * stage's hold must pass with every check passing, so it starts over.
     */

    if ((j->enough || j->checks[CS_CHECK_SHADOW].status == CS_PASS)
        && nx->violation_since)
    {
        held = cs_elapsed(now, nx->violation_since);
        cs_stage_restart(nx, now);
        d->dirty = 1;

        cs_reason(d, "violation cleared after %s, every check PASS; the "
                  "stage's hold starts over",
                  cs_duration_format(held, a, sizeof(a)));
        return;
    }

    if (nx->status == CS_STATUS_PAUSED) {
        cs_reason(d, "paused: holding until canary-ctl resume");
        return;
    }

    if (nx->status == CS_STATUS_AWAITING_RESUME) {
        cs_reason(d, "awaiting canary-ctl resume to enter manual stage %s",
                  plan->stages[nx->stage + 1].name);
        return;
    }

    if (m->guard_tripped) {
        cs_reason(d, "hold: the guard tripped on %zu nginx",
                  m->guard_tripped);
        return;
    }

    if (view->enabled == 0 || m->disabled) {
        cs_reason(d, "hold: the split is disabled (kill switch)%s",
                  view->enabled == 0 ? "" : " in an nginx");
        return;
    }

    if (m->lag_holding) {
        cs_reason(d, "hold: %zu nginx did not apply generation %llu for "
                  "%s or more: %s; no promotion on a fleet that did not "
                  "follow, until they follow or leave", m->lag_holding,
                  (unsigned long long) view->generation,
                  cs_duration_said(plan->said.lag_hold, plan->lag_hold, a,
                                   sizeof(a)),
                  m->lag_held ? m->lag_held : "?");
        return;
    }

    cs_decide_forward(plan, view, now, d);
}


/*
 * A confirmed violation acts by its checks' triggers: an instant one at
 * once, a grace one once the violation lasted its "for"; then its
 * "then" (rollback, or pause).  Several due: a rollback wins over a
 * pause.  By default every check is grace with violation_for and
 * on_violation, as before triggers: violation_for counts from the
 * violation's start (violation_since, any check failing since then
 * without a break).  A trigger the plan sets counts its "for" from when
 * its own checks started failing (trigger_since).  The critical path
 * acts at once, with on_violation.  A rollback walks the plan's
 * "rollback" steps down, unless critical.
 */

static void
cs_decide_violation(const cs_plan_t *plan, const cs_split_view_t *view,
    int64_t now, cs_decision_t *d)
{
    char                   failed[256], a[24], b[24], when[64], by[64];
    int                    failing;
    size_t                 i, k, due_check;
    int64_t                held, wait, waited, t_held;
    uint32_t               step;
    cs_trigger_t           t;
    cs_rollout_t          *nx;
    cs_on_violation_e      then;
    const char            *wait_said;
    const cs_judgement_t  *j;

    nx = &d->next;
    j = &d->j;
    wait_said = NULL;

    cs_failed_checks(plan, j, failed, sizeof(failed));

    if (nx->violation_since == 0) {
        nx->violation_since = now;
        d->dirty = 1;
    }

    /*
     * a trigger the plan sets counts its "for" from when its own checks
     * started failing (trigger_since), not from another check's
     * violation: a check that fails 1s into a grace of 5 minutes must
     * not act because another failed 5 minutes ago
     */
    for (k = 0; k < CS_TRIGGERS; k++) {
        failing = 0;

        for (i = 0; i < CS_CHECKS; i++) {
            failing |= cs_check_trigger(i) == k
                       && j->checks[i].status == CS_FAIL;
        }

        if (failing && nx->trigger_since[k] == 0) {
            nx->trigger_since[k] = now;
            d->dirty = 1;

        } else if (!failing && nx->trigger_since[k] != 0) {
            nx->trigger_since[k] = 0;
            d->dirty = 1;
        }
    }

    /* which failing checks' triggers are due, and the shortest wait */
    then = CS_ON_VIOLATION_PAUSE;
    due_check = CS_CHECKS;
    wait = INT64_MAX;
    waited = 0;
    held = cs_elapsed(now, nx->violation_since);
    by[0] = '\0';

    for (i = 0; i < CS_CHECKS; i++) {
        if (j->checks[i].status != CS_FAIL) {
            continue;
        }

        cs_trigger_get(plan, cs_check_trigger(i), &t);

        /* unset: violation_for from the violation's start, as before */
        t_held = t.set ? cs_elapsed(now, nx->trigger_since[
                                             cs_check_trigger(i)])
                       : cs_elapsed(now, nx->violation_since);

        if (!t.instant && t_held < t.wait) {
            if (wait == INT64_MAX || t.wait - t_held < wait - waited) {
                wait = t.wait;
                waited = t_held;
                k = cs_check_trigger(i);
                wait_said = t.set && plan->said.trigger_wait[k][0]
                            ? plan->said.trigger_wait[k]
                            : plan->said.violation_for;
            }

            continue;
        }

        if (due_check == CS_CHECKS
            || (t.then == CS_ON_VIOLATION_ROLLBACK
                && then != CS_ON_VIOLATION_ROLLBACK))
        {
            due_check = i;
            then = t.then;
            held = t_held;

            if (t.set) {
                snprintf(by, sizeof(by), " (trigger %s %s)",
                         cs_trigger_name(cs_check_trigger(i)),
                         t.instant ? "instant" : "grace");
            } else {
                by[0] = '\0';
            }
        }
    }

    if (!j->critical && due_check == CS_CHECKS) {
        cs_reason(d, "VIOLATION %s for %s/%s", failed,
                  cs_duration_format(wait == INT64_MAX ? held : waited, a,
                                     sizeof(a)),
                  wait == INT64_MAX ? "0s"
                                    : cs_duration_said(wait_said, wait, b,
                                                       sizeof(b)));
        return;
    }

    if (j->critical) {
        snprintf(when, sizeof(when), "at once");
        then = plan->on_violation;
        by[0] = '\0';

    } else if (held == 0 && by[0]) {
        snprintf(when, sizeof(when), "at once");

    } else {
        snprintf(when, sizeof(when), "for %s",
                 cs_duration_format(held, a, sizeof(a)));
    }

    if (then == CS_ON_VIOLATION_PAUSE) {
        if (nx->status == CS_STATUS_PAUSED) {
            cs_reason(d, "VIOLATION %s %s; paused already", failed, when);
            return;
        }

        cs_write(d, view, CS_ACT_PAUSE, NGX_HTTP_CANARY_STATE_PAUSED);
        cs_op(d, NGX_HTTP_CANARY_OP_VIOLATION);
        cs_op(d, NGX_HTTP_CANARY_OP_PAUSED);
        nx->status = CS_STATUS_PAUSED;

        if (by[0]) {
            cs_reason(d, "PAUSE%s: %s %s", by, failed, when);
            return;
        }

        cs_reason(d, "PAUSE (on_violation pause): %s %s", failed, when);
        return;
    }

    if (nx->walking && !j->critical) {
        /* a walk paused by an operator: the violation goes on, so does
         * the walk, at its pace (step_hold from the last step) */
        nx->status = CS_STATUS_ROLLING_BACK;
        d->dirty = 1;
        cs_decide_walk(plan, view, NULL, now, d);
        return;
    }

    step = j->critical ? 0 : cs_rollback_next(plan, nx->weight);

    if (step > 0) {
        /* a gradual rollback's first step */
        cs_rollback_to(plan, view, step, now, d);
        cs_op(d, NGX_HTTP_CANARY_OP_VIOLATION);
        cs_op(d, NGX_HTTP_CANARY_OP_ROLLBACK_STEP);
        cs_reason(d, "ROLLING BACK%s: %s %s; to %s%%, then down the "
                  "rollback steps every %s", by, failed, when,
                  cs_weight_format(step, a, sizeof(a)),
                  cs_duration_said(plan->said.rollback_step_hold,
                                   plan->rollback_step_hold, b, sizeof(b)));
        return;
    }

    cs_rollback_to(plan, view, 0, now, d);
    cs_op(d, NGX_HTTP_CANARY_OP_VIOLATION);
    cs_op(d, NGX_HTTP_CANARY_OP_ROLLBACK);

    cs_reason(d, "ROLLBACK%s: %s %s", by, failed, when);
}


/*
 * Rolling back gradually (status rolling_back, the split's state
 * rolling_back): each step holds rollback.step_hold (from stage_started,
 * which each step restarts), then the next is written; the last, 0, is
 * the rollback proper (rolled_back, pins removed).  Whatever the step,
 * the critical path, an outage (both sides failing) and the guard send
 * it to 0 at once.  Violations that clear do not stop it: the decision
 * was taken.  Kept in the sidecar's state, so that a restarted sidecar
 * goes on walking.
 */

static void
cs_decide_walk(const cs_plan_t *plan, const cs_split_view_t *view,
    const cs_metrics_t *m, int64_t now, cs_decision_t *d)
{
    char                   failed[256], a[24], b[24], w[16], n[16];
    int64_t                held;
    uint32_t               step;
    cs_rollout_t          *nx;
    const cs_judgement_t  *j;

    nx = &d->next;
    j = &d->j;

    cs_weight_format(nx->weight, w, sizeof(w));

    if (m != NULL && (j->critical || j->outage || m->guard_tripped)) {
        failed[0] = '\0';

        if (j->critical) {
            cs_failed_checks(plan, j, failed, sizeof(failed));

        } else if (j->outage) {
            snprintf(failed, sizeof(failed), "outage: canary %.2f%% and "
                     "stable %.2f%% errors over %us",
                     j->window_error_pct[CS_CANARY],
                     j->window_error_pct[CS_STABLE], j->window_seconds);

        } else {
            snprintf(failed, sizeof(failed), "the guard tripped on %zu "
                     "nginx", m->guard_tripped);
        }

        cs_rollback_to(plan, view, 0, now, d);
        cs_op(d, NGX_HTTP_CANARY_OP_VIOLATION);
        cs_op(d, NGX_HTTP_CANARY_OP_ROLLBACK);
        cs_reason(d, "ROLLBACK at once from %s%% during the gradual "
                  "rollback: %s", w, failed);
        return;
    }

    held = cs_elapsed(now, nx->stage_started);
    step = cs_rollback_next(plan, nx->weight);

    if (held < plan->rollback_step_hold) {
        cs_reason(d, "rolling back: at %s%%, to %s%% after %s/%s", w,
                  cs_weight_format(step, n, sizeof(n)),
                  cs_duration_format(held, a, sizeof(a)),
                  cs_duration_said(plan->said.rollback_step_hold,
                                   plan->rollback_step_hold, b, sizeof(b)));
        return;
    }

    cs_rollback_to(plan, view, step, now, d);

    if (step > 0) {
        cs_op(d, NGX_HTTP_CANARY_OP_ROLLBACK_STEP);
        cs_reason(d, "ROLLING BACK: step from %s%% to %s%% after %s", w,
                  cs_weight_format(step, n, sizeof(n)),
                  cs_duration_format(held, a, sizeof(a)));
        return;
    }

    cs_op(d, NGX_HTTP_CANARY_OP_ROLLBACK);
    cs_reason(d, "ROLLBACK: the gradual rollback's last step, from %s%% "
              "to 0 after %s", w, cs_duration_format(held, a, sizeof(a)));
}


/* a write of the weight down: 0 is the rollback, above a step of it */

static void
cs_rollback_to(const cs_plan_t *plan, const cs_split_view_t *view,
    uint32_t weight, int64_t now, cs_decision_t *d)
{
    cs_rollout_t  *nx;

    nx = &d->next;

    /* one rollback, however many steps it walks down; what it acts on
     * is kept for its receipts to the last step (each step restarts the
     * stage's evidence, violation_since with it) */
    if (nx->status != CS_STATUS_ROLLING_BACK && !nx->walking) {
        nx->rollbacks++;
        nx->rollback_detected = nx->violation_since;
        nx->rollback_failed = 0;
    }

    if (nx->rollback_detected == 0) {
        nx->rollback_detected = nx->violation_since ? nx->violation_since
                                                    : now;
    }

    nx->rollback_failed |= cs_failed_mask(&d->j);

    d->set_weight = 1;
    d->weight = weight;
    d->to_weight = weight;
    nx->weight = weight;

    nx->walking = weight > 0;

    if (weight > 0) {
        cs_write(d, view, CS_ACT_ROLLBACK_STEP,
                 NGX_HTTP_CANARY_STATE_ROLLING_BACK);
        nx->status = CS_STATUS_ROLLING_BACK;
        cs_stage_restart(nx, now);
        return;
    }

    cs_write(d, view, CS_ACT_ROLLBACK, NGX_HTTP_CANARY_STATE_ROLLED_BACK);
    d->pins = plan->npins ? -1 : 0;
    nx->status = CS_STATUS_ROLLED_BACK;
    snprintf(nx->stopped_by, sizeof(nx->stopped_by),
             "rolled back by the sidecar");
}


/* the first of the plan's rollback steps under weight; 0: none */

static uint32_t
cs_rollback_next(const cs_plan_t *plan, uint32_t weight)
{
    size_t  i;

    for (i = 0; i < plan->rollback_nsteps; i++) {
        if (plan->rollback_steps[i] < weight) {
            return plan->rollback_steps[i];
        }
    }

    return 0;
}


static void
cs_decide_forward(const cs_plan_t *plan, const cs_split_view_t *view,
    int64_t now, cs_decision_t *d)
{
    char                a[24], b[24], w[16];
    int                 shadow_only;
    size_t              to, last;
    uint64_t            min;
    const char         *hold;
    const cs_check_t   *sh;
    int64_t             held;
    cs_rollout_t       *nx;
    const cs_stage_t   *st, *next;

    nx = &d->next;
    st = &plan->stages[nx->stage];
    last = plan->nstages - 1;
    held = cs_elapsed(now, nx->stage_started);

    /*
     * a shadow stage at weight 0 sends no user to the canary (no pins,
     * no cohorts): its shadow's comparisons are the canary's evidence,
     * stable's requests must still be enough
     */
    shadow_only = !d->j.checks[CS_CHECK_SHADOW].off && st->weight == 0
                  && plan->npins == 0 && !cs_plan_cohorts_route(plan,
                                                                nx->stage);

    /* the stage's min_requests, as j->enough has it */
    min = cs_plan_stage_slo(plan, nx->stage)->min_requests;

    if (!d->j.enough && nx->stage != last
        && !(shadow_only && d->j.requests[CS_STABLE] >= min))
    {
        cs_reason(d, "hold: too little traffic to judge (canary n=%llu, "
                  "stable n=%llu, min %llu each)",
                  (unsigned long long) d->j.requests[CS_CANARY],
                  (unsigned long long) d->j.requests[CS_STABLE],
                  (unsigned long long) min);
        return;
    }

    hold = cs_duration_said(plan->said.hold[nx->stage], st->hold, b,
                            sizeof(b));

    if (held < st->hold) {
        cs_reason(d, "hold %s/%s", cs_duration_format(held, a, sizeof(a)),
                  hold);
        return;
    }

    /* promotion out of a shadow stage needs its match rate (PASS) */
    sh = &d->j.checks[CS_CHECK_SHADOW];

    if (!sh->off && sh->status != CS_PASS) {
        /* nothing mirrored: the Redis field does nothing there */
        if (d->j.shadow.compared == 0 && d->j.shadow_nginx == 0) {
            cs_reason(d, "hold: no nginx reports a shadow for the split "
                      "(its canary_split in nginx.conf needs a \"shadow\" "
                      "directive, e.g. shadow 0;): nothing is compared "
                      "(hold %s passed)", hold);
            return;
        }

        if (d->j.shadow.compared < d->j.shadow_min_compared) {
            cs_reason(d, "hold: the shadow compared %llu responses, "
                      "shadow_min_compared %llu (hold %s passed; of %llu "
                      "mirrored: %llu canary errors, %llu timeouts, %llu "
                      "skipped)",
                      (unsigned long long) d->j.shadow.compared,
                      (unsigned long long) d->j.shadow_min_compared, hold,
                      (unsigned long long) d->j.shadow.requests,
                      (unsigned long long) d->j.shadow.canary_errors,
                      (unsigned long long) d->j.shadow.timeouts,
                      (unsigned long long) d->j.shadow.skipped);
            return;
        }

        cs_reason(d, "hold: shadow match rate %.3f%% < shadow_match_min "
                  "%g%% over %llu compared, not yet beyond chance "
                  "(always-valid p=%.2g, fails under %.2g)", sh->canary,
                  sh->threshold, (unsigned long long) d->j.shadow.compared,
                  sh->p_value, sh->alpha);
        return;
    }

    if (nx->stage == last) {
        cs_write(d, view, CS_ACT_COMPLETE, NGX_HTTP_CANARY_STATE_COMPLETE);
        cs_op(d, NGX_HTTP_CANARY_OP_COMPLETE);
        d->pins = plan->npins ? -1 : 0;
        nx->status = CS_STATUS_COMPLETE;
        nx->stages_completed++;
        cs_reason(d, "COMPLETE: hold %s at the last stage passed", hold);
        return;
    }

    to = nx->stage + 1;
    next = &plan->stages[to];

    if (next->manual && nx->approved != (int) to) {
        cs_write(d, view, CS_ACT_AWAIT, NGX_HTTP_CANARY_STATE_AWAITING);
        cs_op(d, NGX_HTTP_CANARY_OP_AWAITING);
        d->to_stage = (int) to;
        d->to_weight = next->weight;
        nx->status = CS_STATUS_AWAITING_RESUME;
        cs_reason(d, "hold %s passed, every check PASS; stage %s is "
                  "manual: awaiting canary-ctl resume", hold, next->name);
        return;
    }

    d->set_weight = 1;
    d->weight = next->weight;
    d->to_stage = (int) to;
    d->to_weight = next->weight;

    nx->stage = to;
    cs_stage_restart(nx, now);
    nx->weight = next->weight;
    nx->approved = -1;
    nx->stages_completed++;

    cs_weight_format(next->weight, w, sizeof(w));

    if (to == last && next->hold == 0) {
        cs_write(d, view, CS_ACT_COMPLETE, NGX_HTTP_CANARY_STATE_COMPLETE);
        cs_op(d, NGX_HTTP_CANARY_OP_COMPLETE);
        d->pins = plan->npins ? -1 : 0;
        nx->status = CS_STATUS_COMPLETE;
        nx->stages_completed++;     /* the last one, without a hold */
        cs_reason(d, "COMPLETE: hold %s passed, every check PASS; at "
                  "%s (%s%%)", hold, next->name, w);
        return;
    }

    cs_write(d, view, CS_ACT_PROMOTE, NGX_HTTP_CANARY_STATE_RUNNING);
    cs_op(d, d->from_stage == 0 ? NGX_HTTP_CANARY_OP_CANARY_DONE
                                : NGX_HTTP_CANARY_OP_PROMOTED);
    nx->status = CS_STATUS_RUNNING;
    cs_reason(d, "PROMOTE to %s (%s%%): hold %s passed, every check PASS",
              next->name, w, hold);
}


static void
cs_write(cs_decision_t *d, const cs_split_view_t *view, cs_action_e action,
    const char *state)
{
    d->action = action;
    d->state = state;
    d->next.generation = view->generation + 1;
    d->next.seen = view->generation + 1;
}


static void
cs_op(cs_decision_t *d, const char *op)
{
    d->ops[d->nops++] = op;
}


static void
cs_failed_checks(const cs_plan_t *plan, const cs_judgement_t *j, char *buf,
    size_t size)
{
    size_t             n, i;
    const cs_check_t  *c;

    n = 0;
    buf[0] = '\0';

    if (j->critical) {
        n = cs_cat(buf, size, n, "critical: canary error rate %.2f%% over "
                   "%us > %d x error_rate_max %g%%",
                   j->window_error_pct[CS_CANARY], j->window_seconds,
                   CS_CRITICAL_FACTOR, plan->slo.error_rate_max);
    }

    c = &j->checks[CS_CHECK_ERRORS];

    if (c->status == CS_FAIL) {
        n = cs_cat(buf, size, n, "%serror_rate_percent %.2f%% > %.2f%% "
                   "(stable %.2f%%; ", n ? ", " : "", c->canary,
                   c->threshold, c->baseline);
        n = cs_check_evidence(buf, size, n, c, j);
    }

    c = &j->checks[CS_CHECK_AVAILABILITY];

    if (c->status == CS_FAIL) {
        n = cs_cat(buf, size, n, "%savailability_percent %.2f%% < %g%% "
                   "(stable %.2f%%; ", n ? ", " : "", c->canary,
                   c->threshold, c->baseline);
        n = cs_check_evidence(buf, size, n, c, j);
    }

    c = &j->checks[CS_CHECK_LATENCY];

    if (c->status == CS_FAIL) {
        n = cs_cat(buf, size, n, "%slatency_p99_ms %.1fms > %.1fms "
                   "(stable %.1fms; over %.1fms: ", n ? ", " : "",
                   c->canary, c->threshold, c->baseline, c->threshold);
        n = cs_check_evidence(buf, size, n, c, j);
    }

    c = &j->checks[CS_CHECK_LATENCY_P95];

    if (c->status == CS_FAIL) {
        n = cs_cat(buf, size, n, "%slatency_p95_ms %.1fms > %.1fms "
                   "(stable %.1fms; over %.1fms: ", n ? ", " : "",
                   c->canary, c->threshold, c->baseline, c->threshold);
        n = cs_check_evidence(buf, size, n, c, j);
    }

    /* "latency_p95_max_ms 240.1ms > 200ms (canary 90 of 400 over it,
     *  5% allowed; always-valid p=0.0001 < 0.0004)" */

    for (i = CS_CHECK_P50_MAX; i <= CS_CHECK_P99_MAX; i++) {
        c = &j->checks[i];

        if (c->status != CS_FAIL) {
            continue;
        }

        n = cs_cat(buf, size, n, "%s%s %.1fms > %gms (canary %llu of %llu "
                   "over it, %d%% allowed; always-valid p=%.2g < %.2g)",
                   n ? ", " : "", cs_check_name(i), c->canary,
                   c->threshold, (unsigned long long) c->events[CS_CANARY],
                   (unsigned long long) j->requests[CS_CANARY],
                   i == CS_CHECK_P50_MAX ? 50 : i == CS_CHECK_P95_MAX ? 5
                                                                      : 1,
                   c->p_value, c->alpha);
    }

    /* "shadow_match_percent 80.000% < 99.9% (40 of 200 compared
     *  mismatched; always-valid p=1e-30 < 0.001)" */

    c = &j->checks[CS_CHECK_SHADOW];

    if (c->status == CS_FAIL) {
        n = cs_cat(buf, size, n, "%sshadow_match_percent %.3f%% < %g%% "
                   "(%llu of %llu compared mismatched: %llu status, %llu "
                   "body; always-valid p=%.2g < %.2g)", n ? ", " : "",
                   c->canary, c->threshold,
                   (unsigned long long) c->events[CS_CANARY],
                   (unsigned long long) j->shadow.compared,
                   (unsigned long long) j->shadow.mismatched_status,
                   (unsigned long long) j->shadow.mismatched_body,
                   c->p_value, c->alpha);
    }
}


/* "12 of 570 vs 35 of 7000 over the stage, always-valid p=0.0004)" */

static size_t
cs_check_evidence(char *buf, size_t size, size_t n, const cs_check_t *c,
    const cs_judgement_t *j)
{
    n = cs_cat(buf, size, n, "canary %llu of %llu vs stable %llu of %llu "
               "over the stage, ",
               (unsigned long long) c->events[CS_CANARY],
               (unsigned long long) j->requests[CS_CANARY],
               (unsigned long long) c->events[CS_STABLE],
               (unsigned long long) j->requests[CS_STABLE]);

    if (c->p_value < c->alpha || c->look_p < 0) {
        return cs_cat(buf, size, n, "always-valid p=%.2g < %.2g)",
                      c->p_value, c->alpha);
    }

    return cs_cat(buf, size, n, "end-of-hold exact p=%.2g < %.2g)",
                  c->look_p, j->alpha * CS_ALPHA_LOOK);
}


void
cs_decision_line(const cs_plan_t *plan, const char *split,
    const cs_rollout_t *ro, const cs_decision_t *d, char *buf, size_t size)
{
    char                   w[16];
    size_t                 n, i;
    const cs_judgement_t  *j;

    n = 0;

    if (ro->status == CS_STATUS_NEW || ro->stage >= plan->nstages) {
        n = cs_cat(buf, size, n, "%s: ", split);

    } else {
        n = cs_cat(buf, size, n, "%s stage %s (%s%%): ", split,
                   plan->stages[ro->stage].name,
                   cs_weight_format(ro->weight, w, sizeof(w)));
    }

    if (d->note[0]) {
        n = cs_cat(buf, size, n, "operator: %s; ", d->note);
    }

    n = cs_cat(buf, size, n, "%s", d->reason);

    if (!d->has_judgement) {
        return;
    }

    j = &d->j;

    n = cs_cat(buf, size, n, "; canary err %.2f%% (n=%llu) vs stable "
               "%.2f%% (n=%llu); p99 %.1fms vs %.1fms",
               j->error_pct[CS_CANARY],
               (unsigned long long) j->requests[CS_CANARY],
               j->error_pct[CS_STABLE],
               (unsigned long long) j->requests[CS_STABLE],
               j->p99_ms[CS_CANARY], j->p99_ms[CS_STABLE]);

    /* the latency limits, when the stage's SLO has them */

    if (!j->checks[CS_CHECK_LATENCY_P95].off) {
        n = cs_cat(buf, size, n, "; p95 %.1fms vs %.1fms (p=%.2g)",
                   j->checks[CS_CHECK_LATENCY_P95].canary,
                   j->checks[CS_CHECK_LATENCY_P95].baseline,
                   j->checks[CS_CHECK_LATENCY_P95].p_value);
    }

    for (i = CS_CHECK_P50_MAX; i <= CS_CHECK_P99_MAX; i++) {
        if (!j->checks[i].off) {
            n = cs_cat(buf, size, n, "; %s %g: canary %.1fms %s (p=%.2g)",
                       cs_check_name(i), j->checks[i].threshold,
                       j->checks[i].canary,
                       cs_verdict_name(j->checks[i].status),
                       j->checks[i].p_value);
        }
    }

    if (!j->checks[CS_CHECK_SHADOW].off) {
        n = cs_cat(buf, size, n, "; shadow %llu/%llu matched, min %g%%: "
                   "%s (p=%.2g)",
                   (unsigned long long) j->shadow.matched,
                   (unsigned long long) j->shadow.compared,
                   j->checks[CS_CHECK_SHADOW].threshold,
                   cs_verdict_name(j->checks[CS_CHECK_SHADOW].status),
                   j->checks[CS_CHECK_SHADOW].p_value);
    }

    if (j->asked > 1 || j->instances != j->asked) {
        n = cs_cat(buf, size, n, "; %zu/%zu nginx", j->instances,
                   j->asked);
    }

    if (d->next.lagging[0]) {
        (void) cs_cat(buf, size, n, "; lagging: %s", d->next.lagging);
    }
}


static void
cs_reason(cs_decision_t *d, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(d->reason, sizeof(d->reason), fmt, args);
    va_end(args);
}


static void
cs_note(cs_decision_t *d, const char *fmt, ...)
{
    size_t   n;
    va_list  args;

    n = strlen(d->note);

    if (n >= sizeof(d->note) - 1) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(d->note + n, sizeof(d->note) - n, fmt, args);
    va_end(args);
}


static size_t
cs_cat(char *buf, size_t size, size_t n, const char *fmt, ...)
{
    int      k;
    va_list  args;

    if (n >= size) {
        return n;
    }

    va_start(args, fmt);
    k = vsnprintf(buf + n, size - n, fmt, args);
    va_end(args);

    if (k < 0) {
        return n;
    }

    return n + (size_t) k < size ? n + (size_t) k : size - 1;
}
