
/*
 * canary-sidecar decisions on synthetic windows: promotion after the
 * hold, violations held for violation_for then rolled back, critical
 * breaches at once, trickles never judged, outages halted, latency by
 * p99 and slow requests, manual gates, and what operators' writes do.
 */


#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "analysis.h"


#define S         1000LL                        /* ms */
#define T0        (1700000000LL * 1000)         /* a start time */


static cs_plan_t  plan;


static void
cs_setup(void)
{
    ck_assert_int_eq(cs_plan_default(&plan), 0);
}


static void
cs_teardown(void)
{
    cs_plan_free(&plan);
}


/* n requests around latency_ms (60/30/10% in three buckets) */

static void
cs_window(cs_window_t *w, uint64_t n, uint64_t errors, double latency_ms)
{
    uint64_t  us;
    size_t    b;

    memset(w, 0, sizeof(cs_window_t));

    w->requests = n;
    w->errors_5xx = errors;

    us = (uint64_t) (latency_ms * 1000);

    for (b = 0; b < CS_HIST_BUCKETS - 1 && ngx_http_canary_hist_upper(b) <= us; b++) {
        /* void */
    }

    w->counts[b] += n * 6 / 10;
    w->counts[b + 1] += n * 3 / 10;
    w->counts[b + 2] += n - n * 6 / 10 - n * 3 / 10;
}


static void
cs_metrics(cs_metrics_t *m, uint64_t sn, uint64_t se, double sl,
    uint64_t cn, uint64_t ce, double cl)
{
    cs_metrics_init(m);

    cs_window(&m->v[CS_STABLE], sn, se, sl);
    cs_window(&m->v[CS_CANARY], cn, ce, cl);

    /* the same requests are new to the stage: a judgement over a stage
     * that has seen just this much */
    m->delta[CS_STABLE] = m->v[CS_STABLE];
    m->delta[CS_CANARY] = m->v[CS_CANARY];
    m->has_delta = 1;

    m->instances = 1;
    m->asked = 1;
    m->window_seconds = 30;
    m->generation_min = 7;
}


static void
cs_healthy(cs_metrics_t *m)
{
    cs_metrics(m, 5000, 10, 50, 1000, 2, 50);
}


/* so much more traffic that an earlier burst of canary errors is
 * within the margin over the stage: 0.2% on stable, 0.1% on canary */

static void
cs_diluted(cs_metrics_t *m)
{
    cs_metrics(m, 500000, 1000, 50, 100000, 100, 50);
}


/* the sidecar at stage, written generation 7, nobody else since */

static void
cs_state(cs_rollout_t *ro, cs_split_view_t *view, size_t stage,
    cs_status_e status)
{
    cs_rollout_init(ro);

    ro->status = status;
    ro->stage = stage;
    ro->stage_started = T0;
    ro->weight = plan.stages[stage].weight;
    ro->generation = 7;
    ro->seen = 7;

    memset(view, 0, sizeof(cs_split_view_t));
    view->exists = 1;
    view->has_weight = 1;
    view->weight = ro->weight;
    view->enabled = -1;
    view->generation = 7;
    strcpy(view->state, cs_status_name(status));
    strcpy(view->updated_by, "sidecar-a");
}


/* someone else wrote generation 8 */

static void
cs_operator(cs_split_view_t *view, const char *state)
{
    view->generation = 8;
    strcpy(view->state, state);
    strcpy(view->updated_by, "canary-ctl:ops");
}


START_TEST(test_new_rollout_starts_with_pins)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_state(&ro, &view, 0, CS_STATUS_RUNNING);
    cs_rollout_init(&ro);
    view.weight = 5000;
    view.generation = 3;
    view.state[0] = '\0';          /* never rolled out */

    /* an nginx answered; the first reading has nothing new yet */
    cs_metrics(&m, 0, 0, 1, 0, 0, 1);
    m.has_delta = 0;

    cs_decide(&plan, &view, &ro, &m, T0, &d);

    ck_assert_int_eq(d.action, CS_ACT_START);
    ck_assert_uint_eq(d.nops, 1);
    ck_assert_str_eq(d.ops[0], "rollout_started");
    ck_assert_str_eq(d.state, "running");
    ck_assert_int_eq(d.set_weight, 1);
    ck_assert_uint_eq(d.weight, 0);
    ck_assert_uint_eq(d.from_weight, 5000);
    ck_assert_int_eq(d.from_stage, -1);
    ck_assert_int_eq(d.to_stage, 0);
    ck_assert_int_eq(d.pins, 1);
    ck_assert_int_eq(d.next.status, CS_STATUS_RUNNING);
    ck_assert_int_eq(d.next.stage_started, T0);
    ck_assert_uint_eq(d.next.generation, 4);
    ck_assert_uint_eq(d.next.seen, 4);
}
END_TEST


/*
 * Only a split that was never rolled out, or that an operator reset, is
 * rolled out: never over a rollback, a trip, a finished rollout nobody
 * acknowledged, the kill switch, or without any nginx answering.
 */

START_TEST(test_start_only_from_ready_or_never)
{
    size_t           i;
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    static const char  *refused[] = {
        "guard_tripped", "rolled_back", "complete", "halted", "running",
        "paused"
    };

    cs_metrics(&m, 0, 0, 1, 0, 0, 1);
    m.has_delta = 0;

    for (i = 0; i < sizeof(refused) / sizeof(char *); i++) {
        cs_state(&ro, &view, 0, CS_STATUS_RUNNING);
        cs_rollout_init(&ro);
        strcpy(view.state, refused[i]);

        cs_decide(&plan, &view, &ro, &m, T0, &d);

        ck_assert_msg(d.action == CS_ACT_HOLD, "%s: %s", refused[i],
                      d.reason);
        ck_assert_msg(strstr(d.reason, refused[i]) != NULL
                      && strstr(d.reason, "canary-ctl reset") != NULL,
                      "%s", d.reason);

        /* why goes into the sidecar's state (status new), once */
        ck_assert_int_eq(d.dirty, 1);
        ck_assert_int_eq(d.next.status, CS_STATUS_NEW);
        ck_assert_str_eq(d.next.held, d.reason);

        ro = d.next;
        cs_decide(&plan, &view, &ro, &m, T0 + S, &d);
        ck_assert_int_eq(d.action, CS_ACT_HOLD);
        ck_assert_int_eq(d.dirty, 0);
    }

    cs_state(&ro, &view, 0, CS_STATUS_RUNNING);
    cs_rollout_init(&ro);
    strcpy(view.state, "ready");
    view.enabled = 0;
    cs_decide(&plan, &view, &ro, &m, T0, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "disabled") != NULL, "%s", d.reason);

    ck_assert_int_eq(d.dirty, 1);
    ck_assert_str_eq(d.next.held, d.reason);

    /* blind: nothing written, not even why */
    view.enabled = 1;
    cs_decide(&plan, &view, &ro, NULL, T0, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "no nginx") != NULL, "%s", d.reason);
    ck_assert_int_eq(d.dirty, 0);

    /* started over a state that said why it held: that goes */
    strcpy(ro.held, "not starting: the split is disabled");
    cs_decide(&plan, &view, &ro, &m, T0, &d);
    ck_assert_int_eq(d.action, CS_ACT_START);
    ck_assert_str_eq(d.next.held, "");
}
END_TEST


START_TEST(test_healthy_promotes_after_hold)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_healthy(&m);
    cs_state(&ro, &view, 0, CS_STATUS_RUNNING);

    /* 29 minutes into a 30 minute hold */
    cs_decide(&plan, &view, &ro, &m, T0 + 29 * 60 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "hold 29m/30m") != NULL, "%s", d.reason);
    ck_assert_int_eq(d.j.violation, 0);
    ck_assert_int_eq(d.j.checks[CS_CHECK_ERRORS].status, CS_PASS);
    ck_assert_int_eq(d.j.checks[CS_CHECK_LATENCY].status, CS_PASS);
    ck_assert_int_eq(d.j.checks[CS_CHECK_AVAILABILITY].status, CS_PASS);

    /* the hold passed: leave the canary stage */
    cs_decide(&plan, &view, &ro, &m, T0 + 30 * 60 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_PROMOTE);
    ck_assert_str_eq(d.ops[0], "canary_phase_complete");
    ck_assert_str_eq(d.state, "running");
    ck_assert_uint_eq(d.weight, 500);
    ck_assert_int_eq(d.from_stage, 0);
    ck_assert_int_eq(d.to_stage, 1);
    ck_assert_int_eq(d.next.stage, 1);
    ck_assert_int_eq(d.next.stage_started, T0 + 30 * 60 * S);
    ck_assert_uint_eq(d.next.weight, 500);
    ck_assert_uint_eq(d.next.generation, 8);

    /* a later stage: traffic_promoted */
    cs_state(&ro, &view, 1, CS_STATUS_RUNNING);
    cs_decide(&plan, &view, &ro, &m, T0 + 30 * 60 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_PROMOTE);
    ck_assert_str_eq(d.ops[0], "traffic_promoted");
    ck_assert_uint_eq(d.weight, 2000);
}
END_TEST


/*
 * Split verification: a node behind the split's generation for lag_hold
 * holds the promotion, with a reason naming it; lagging under lag_hold
 * only shows in the state; a violation still rolls back.
 */

START_TEST(test_lagging_node_holds_promotion)
{
    char             line[1024];
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_healthy(&m);
    cs_state(&ro, &view, 0, CS_STATUS_RUNNING);

    m.lagging = "web-3 at generation 6";
    m.lag_held = "web-3 at generation 6";
    m.lag_holding = 1;

    cs_decide(&plan, &view, &ro, &m, T0 + 30 * 60 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "hold: 1 nginx did not apply generation "
                         "7 for 30s or more: web-3 at generation 6") != NULL,
                  "%s", d.reason);
    ck_assert_str_eq(d.next.lagging, "web-3 at generation 6");
    ck_assert_int_eq(d.dirty, 1);

    cs_decision_line(&plan, "api", &ro, &d, line, sizeof(line));
    ck_assert_msg(strstr(line, "; lagging: web-3 at generation 6") != NULL,
                  "%s", line);

    /* lagging, not yet for lag_hold: promoted, and the state says it */
    m.lag_held = NULL;
    m.lag_holding = 0;

    cs_decide(&plan, &view, &ro, &m, T0 + 30 * 60 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_PROMOTE);
    ck_assert_str_eq(d.next.lagging, "web-3 at generation 6");

    /* it follows: the state forgets it */
    strcpy(ro.lagging, "web-3 at generation 6");
    m.lagging = NULL;

    cs_decide(&plan, &view, &ro, &m, T0 + 29 * 60 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_str_eq(d.next.lagging, "");
    ck_assert_int_eq(d.dirty, 1);

    /* a broken canary is rolled back whatever lags */
    cs_metrics(&m, 5000, 10, 50, 1000, 300, 50);
    m.lagging = "web-3 at generation 6";
    m.lag_held = "web-3 at generation 6";
    m.lag_holding = 1;

    cs_decide(&plan, &view, &ro, &m, T0 + 30 * 60 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_ROLLBACK);
}
END_TEST


START_TEST(test_error_violation_held_then_rollback)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    /* 5% errors on canary, 0.2% on stable */
    cs_metrics(&m, 5000, 10, 50, 1000, 50, 50);
    cs_state(&ro, &view, 2, CS_STATUS_RUNNING);

    cs_decide(&plan, &view, &ro, &m, T0 + S, &d);

    ck_assert_int_eq(d.j.checks[CS_CHECK_ERRORS].status, CS_FAIL);
    ck_assert_double_eq_tol(d.j.checks[CS_CHECK_ERRORS].canary, 5, 1e-9);
    ck_assert_double_eq_tol(d.j.checks[CS_CHECK_ERRORS].baseline, 0.2, 1e-9);
    ck_assert_double_eq_tol(d.j.checks[CS_CHECK_ERRORS].threshold, 0.4,
                            1e-9);
    ck_assert(d.j.checks[CS_CHECK_ERRORS].p_value < 1e-20);
    ck_assert_int_eq(d.j.checks[CS_CHECK_AVAILABILITY].status, CS_FAIL);
    ck_assert_int_eq(d.j.critical, 0);

    /* first seen: held, not yet acted on */
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_int_eq(d.dirty, 1);
    ck_assert_int_eq(d.next.violation_since, T0 + S);
    ck_assert_msg(strstr(d.reason, "VIOLATION error_rate_percent") != NULL,
                  "%s", d.reason);

    ro = d.next;
    cs_decide(&plan, &view, &ro, &m, T0 + 5 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_int_eq(d.next.violation_since, T0 + S);

    /* violation_for (5s) later: rollback */
    cs_decide(&plan, &view, &ro, &m, T0 + 6 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_ROLLBACK);
    ck_assert_uint_eq(d.nops, 2);
    ck_assert_str_eq(d.ops[0], "sli_violation_detected");
    ck_assert_str_eq(d.ops[1], "rollback_executed");
    ck_assert_str_eq(d.state, "rolled_back");
    ck_assert_int_eq(d.set_weight, 1);
    ck_assert_uint_eq(d.weight, 0);
    ck_assert_uint_eq(d.from_weight, 2000);
    ck_assert_uint_eq(d.to_weight, 0);
    ck_assert_int_eq(d.pins, -1);
    ck_assert_int_eq(d.next.status, CS_STATUS_ROLLED_BACK);

    /* and then nothing more */
    ro = d.next;
    view.generation = 8;
    cs_decide(&plan, &view, &ro, &m, T0 + 7 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_IDLE);
}
END_TEST


START_TEST(test_violation_that_clears_is_forgotten)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_metrics(&m, 5000, 10, 50, 1000, 50, 50);
    cs_state(&ro, &view, 1, CS_STATUS_RUNNING);

    cs_decide(&plan, &view, &ro, &m, T0 + S, &d);
    ck_assert_int_eq(d.next.violation_since, T0 + S);

    /* a hundred times as many requests, the canary no worse: over the
     * stage it is within the SLO's margin again */
    ro = d.next;
    cs_diluted(&m);
    cs_decide(&plan, &view, &ro, &m, T0 + 3 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_int_eq(d.next.violation_since, 0);
    ck_assert_int_eq(d.dirty, 1);
    ck_assert_msg(strstr(d.reason, "hold starts over") != NULL, "%s",
                  d.reason);
    ck_assert_int_eq(d.next.stage_started, T0 + 3 * S);
}
END_TEST


START_TEST(test_violation_at_the_end_of_the_hold_delays_promotion)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    /* stage 1 holds 30m: a violation shorter than violation_for at 29m */
    cs_state(&ro, &view, 1, CS_STATUS_RUNNING);
    cs_metrics(&m, 5000, 10, 50, 1000, 50, 50);
    cs_decide(&plan, &view, &ro, &m, T0 + 29 * 60 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_int_eq(d.j.violation, 1);

    /* it clears at 29m03s: no rollback, and no promotion at 30m */
    ro = d.next;
    cs_diluted(&m);
    cs_decide(&plan, &view, &ro, &m, T0 + (29 * 60 + 3) * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);

    ro = d.next;
    cs_decide(&plan, &view, &ro, &m, T0 + 30 * 60 * S, &d);
    ck_assert_msg(d.action == CS_ACT_HOLD, "promoted %s", d.reason);
    ck_assert_msg(strstr(d.reason, "hold 57s/30m") != NULL, "%s", d.reason);

    /* a whole clean hold later, it promotes */
    ro = d.next;
    cs_decide(&plan, &view, &ro, &m, T0 + (59 * 60 + 3) * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_PROMOTE);
}
END_TEST


START_TEST(test_both_under_availability_min_halts)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    /* 3% errors on both sides: under error_rate_max 5%, but 97% is far
     * under availability_min 99.9% on both: a shared problem */
    cs_metrics(&m, 5000, 150, 50, 1000, 30, 50);
    cs_state(&ro, &view, 2, CS_STATUS_RUNNING);

    cs_decide(&plan, &view, &ro, &m, T0 + 2 * 60 * 60 * S, &d);

    ck_assert_int_eq(d.j.degraded, 1);
    ck_assert_int_eq(d.j.outage, 1);
    ck_assert_int_eq(d.j.violation, 0);
    ck_assert_int_eq(d.action, CS_ACT_HALT);
    ck_assert_int_eq(d.set_weight, 0);
    ck_assert_msg(strstr(d.reason, "under availability_min") != NULL, "%s",
                  d.reason);

    /* one error each in a healthy window is chance, not a halt */
    cs_metrics(&m, 5000, 6, 50, 1000, 2, 50);
    cs_state(&ro, &view, 2, CS_STATUS_RUNNING);
    cs_decide(&plan, &view, &ro, &m, T0 + 2 * 60 * 60 * S, &d);
    ck_assert_int_eq(d.j.degraded, 0);
    ck_assert_int_eq(d.action, CS_ACT_PROMOTE);

    /* the canary worse than a degraded stable: its fault, a violation */
    cs_metrics(&m, 5000, 150, 50, 1000, 100, 50);
    cs_decide(&plan, &view, &ro, &m, T0 + 2 * 60 * 60 * S, &d);
    ck_assert_int_eq(d.j.degraded, 0);
    ck_assert_int_eq(d.j.violation, 1);
}
END_TEST


START_TEST(test_worse_but_not_significant_passes)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    /* 2/100 vs 5/1000: four times stable's rate, but 2 of 7 errors
     * where 0.64 were expected is not evidence (exact p = 0.14; both
     * over availability_min 99%: not a shared degradation either) */
    plan.slo.availability_min = 99;
    cs_metrics(&m, 1000, 5, 50, 100, 2, 50);
    cs_state(&ro, &view, 1, CS_STATUS_RUNNING);

    cs_decide(&plan, &view, &ro, &m, T0 + S, &d);

    ck_assert(d.j.checks[CS_CHECK_ERRORS].canary
              > 2 * d.j.checks[CS_CHECK_ERRORS].baseline);
    ck_assert(d.j.checks[CS_CHECK_ERRORS].p_value > 0.01);
    ck_assert_int_eq(d.j.checks[CS_CHECK_ERRORS].status, CS_PASS);
    ck_assert_int_eq(d.j.violation, 0);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
}
END_TEST


START_TEST(test_trickle_neither_promotes_nor_rolls_back)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    /* 20 canary requests, half of them errors, long after the hold */
    cs_metrics(&m, 5000, 0, 50, 20, 10, 900);
    cs_state(&ro, &view, 1, CS_STATUS_RUNNING);

    cs_decide(&plan, &view, &ro, &m, T0 + 10 * 3600 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_int_eq(d.j.enough, 0);
    ck_assert_int_eq(d.j.violation, 0);
    ck_assert_int_eq(d.j.critical, 0);
    ck_assert_int_eq(d.j.checks[CS_CHECK_ERRORS].status, CS_NO_DATA);
    ck_assert_int_eq(d.j.checks[CS_CHECK_LATENCY].status, CS_NO_DATA);
    ck_assert_int_eq(d.j.checks[CS_CHECK_AVAILABILITY].status, CS_NO_DATA);
    ck_assert_msg(strstr(d.reason, "too little traffic") != NULL, "%s",
                  d.reason);

    /* too little stable traffic is no better */
    cs_metrics(&m, 49, 0, 50, 5000, 0, 50);
    cs_decide(&plan, &view, &ro, &m, T0 + 10 * 3600 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);

    /* a pending violation is neither confirmed nor forgotten */
    ro.violation_since = T0;
    cs_metrics(&m, 5000, 0, 50, 20, 10, 50);
    cs_decide(&plan, &view, &ro, &m, T0 + 60 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_int_eq(d.next.violation_since, T0);
}
END_TEST


START_TEST(test_both_failing_halts_not_rollback)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    /* an outage: 30% errors on both sides */
    cs_metrics(&m, 5000, 1500, 50, 1000, 320, 50);
    cs_state(&ro, &view, 2, CS_STATUS_RUNNING);
    ro.violation_since = T0;

    cs_decide(&plan, &view, &ro, &m, T0 + 60 * S, &d);

    ck_assert_int_eq(d.j.outage, 1);
    ck_assert_int_eq(d.j.violation, 0);
    ck_assert_int_eq(d.action, CS_ACT_HALT);
    ck_assert_str_eq(d.ops[0], "rollout_halted");
    ck_assert_str_eq(d.state, "halted");
    ck_assert_int_eq(d.set_weight, 0);
    ck_assert_int_eq(d.next.status, CS_STATUS_HALTED);
    ck_assert_int_eq(d.next.violation_since, 0);

    /* halted: no second receipt while it lasts */
    ro = d.next;
    view.generation = 8;
    cs_decide(&plan, &view, &ro, &m, T0 + 120 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);

    /* it clears: judging again, the hold starts over */
    cs_healthy(&m);
    cs_decide(&plan, &view, &ro, &m, T0 + 180 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_UNHALT);
    ck_assert_str_eq(d.ops[0], "halt_cleared");
    ck_assert_str_eq(d.state, "running");
    ck_assert_int_eq(d.next.status, CS_STATUS_RUNNING);
    ck_assert_int_eq(d.next.stage_started, T0 + 180 * S);
    ck_assert_int_eq(d.next.stage, 2);
}
END_TEST


START_TEST(test_latency_shift_is_a_violation)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    /* canary 250ms, stable 50ms; no errors */
    cs_metrics(&m, 5000, 0, 50, 1000, 0, 250);
    cs_state(&ro, &view, 2, CS_STATUS_RUNNING);

    /* the first second gives stable's p99, the bound the next are held
     * against */
    cs_decide(&plan, &view, &ro, &m, T0 + S, &d);
    ck_assert_int_eq(d.j.checks[CS_CHECK_LATENCY].status, CS_PASS);
    ck_assert(d.j.checks[CS_CHECK_LATENCY].p_value == 1);

    ro = d.next;
    cs_decide(&plan, &view, &ro, &m, T0 + S, &d);

    ck_assert_int_eq(d.j.checks[CS_CHECK_LATENCY].status, CS_FAIL);
    ck_assert(d.j.checks[CS_CHECK_LATENCY].canary > 250);
    ck_assert(d.j.checks[CS_CHECK_LATENCY].baseline > 50);
    ck_assert(d.j.checks[CS_CHECK_LATENCY].baseline < 60);
    ck_assert_double_eq_tol(d.j.checks[CS_CHECK_LATENCY].threshold,
                            1.5 * d.j.checks[CS_CHECK_LATENCY].baseline,
                            1e-9);
    ck_assert(d.j.checks[CS_CHECK_LATENCY].p_value < 1e-10);
    ck_assert_int_eq(d.j.checks[CS_CHECK_ERRORS].status, CS_PASS);
    ck_assert_int_eq(d.j.violation, 1);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);

    ro = d.next;
    cs_decide(&plan, &view, &ro, &m, T0 + 6 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_ROLLBACK);
    ck_assert_msg(strstr(d.reason, "latency_p99_ms") != NULL, "%s",
                  d.reason);
}
END_TEST


START_TEST(test_latency_small_or_same_passes)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro, next;
    cs_split_view_t  view;

    cs_state(&ro, &view, 2, CS_STATUS_RUNNING);

    /* twice as slow, but by 1ms: under latency_p99_min_delta_ms */
    cs_metrics(&m, 5000, 0, 1, 1000, 0, 2);
    cs_decide(&plan, &view, &ro, &m, T0 + S, &d);
    ck_assert(d.j.checks[CS_CHECK_LATENCY].canary
              > 1.5 * d.j.checks[CS_CHECK_LATENCY].baseline);
    ck_assert_int_eq(d.j.checks[CS_CHECK_LATENCY].status, CS_PASS);

    /* 20% slower: under the ratio, none over the bound */
    cs_metrics(&m, 5000, 0, 100, 1000, 0, 120);
    cs_decide(&plan, &view, &ro, &m, T0 + S, &d);
    next = d.next;
    cs_decide(&plan, &view, &next, &m, T0 + 2 * S, &d);
    ck_assert(d.j.checks[CS_CHECK_LATENCY].canary
              < d.j.checks[CS_CHECK_LATENCY].threshold);
    ck_assert_uint_eq(d.j.checks[CS_CHECK_LATENCY].events[CS_CANARY], 0);
    ck_assert_int_eq(d.j.checks[CS_CHECK_LATENCY].status, CS_PASS);

    /* the same: no evidence at all */
    cs_metrics(&m, 5000, 0, 100, 1000, 0, 100);
    cs_decide(&plan, &view, &ro, &m, T0 + S, &d);
    next = d.next;
    cs_decide(&plan, &view, &next, &m, T0 + 2 * S, &d);
    ck_assert(d.j.checks[CS_CHECK_LATENCY].p_value == 1);
    ck_assert_int_eq(d.j.checks[CS_CHECK_LATENCY].status, CS_PASS);
}
END_TEST


START_TEST(test_critical_rolls_back_at_once)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    /* 20% > 3 x 5% on 100 canary requests */
    cs_metrics(&m, 5000, 5, 50, 100, 20, 50);
    cs_state(&ro, &view, 1, CS_STATUS_RUNNING);

    cs_decide(&plan, &view, &ro, &m, T0 + S, &d);

    ck_assert_int_eq(d.j.critical, 1);
    ck_assert_int_eq(d.action, CS_ACT_ROLLBACK);
    ck_assert_str_eq(d.ops[0], "sli_violation_detected");
    ck_assert_str_eq(d.ops[1], "rollback_executed");
    ck_assert_msg(strstr(d.reason, "critical") != NULL, "%s", d.reason);
    ck_assert_msg(strstr(d.reason, "at once") != NULL, "%s", d.reason);

    /* even while an operator has paused the rollout */
    cs_operator(&view, "paused");
    cs_decide(&plan, &view, &ro, &m, T0 + S, &d);
    ck_assert_int_eq(d.action, CS_ACT_ROLLBACK);
    ck_assert_uint_eq(d.next.generation, 9);
}
END_TEST


START_TEST(test_on_violation_pause)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    plan.on_violation = CS_ON_VIOLATION_PAUSE;

    cs_metrics(&m, 5000, 10, 50, 1000, 50, 50);
    cs_state(&ro, &view, 2, CS_STATUS_RUNNING);
    ro.violation_since = T0;

    cs_decide(&plan, &view, &ro, &m, T0 + 5 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_PAUSE);
    ck_assert_str_eq(d.ops[0], "sli_violation_detected");
    ck_assert_str_eq(d.ops[1], "rollout_paused");
    ck_assert_str_eq(d.state, "paused");
    ck_assert_int_eq(d.set_weight, 0);
    ck_assert_int_eq(d.next.status, CS_STATUS_PAUSED);

    /* paused already: nothing more */
    ro = d.next;
    view.generation = 8;
    strcpy(view.state, "paused");
    cs_decide(&plan, &view, &ro, &m, T0 + 10 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
}
END_TEST


START_TEST(test_manual_stage_waits_for_resume)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_healthy(&m);
    cs_state(&ro, &view, 3, CS_STATUS_RUNNING);

    /* 50% held an hour; 100% is manual */
    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_AWAIT);
    ck_assert_str_eq(d.ops[0], "awaiting_resume");
    ck_assert_str_eq(d.state, "awaiting_resume");
    ck_assert_int_eq(d.set_weight, 0);
    ck_assert_int_eq(d.next.status, CS_STATUS_AWAITING_RESUME);

    ro = d.next;
    view.generation = 8;
    strcpy(view.state, "awaiting_resume");

    cs_decide(&plan, &view, &ro, &m, T0 + 7200 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "awaiting") != NULL, "%s", d.reason);

    /* canary-ctl resume: state running, generation 9 */
    view.generation = 9;
    strcpy(view.state, "running");
    strcpy(view.updated_by, "canary-ctl:ops");

    cs_decide(&plan, &view, &ro, &m, T0 + 7300 * S, &d);

    ck_assert_msg(strstr(d.note, "resumed by canary-ctl:ops") != NULL, "%s",
                  d.note);
    ck_assert_int_eq(d.action, CS_ACT_COMPLETE);
    ck_assert_str_eq(d.ops[0], "deployment_complete");
    ck_assert_str_eq(d.state, "complete");
    ck_assert_uint_eq(d.weight, 10000);
    ck_assert_int_eq(d.to_stage, 4);
    ck_assert_int_eq(d.pins, -1);
    ck_assert_int_eq(d.next.status, CS_STATUS_COMPLETE);
    ck_assert_uint_eq(d.next.generation, 10);
}
END_TEST


START_TEST(test_resume_before_the_gate_does_not_approve)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_healthy(&m);
    cs_state(&ro, &view, 3, CS_STATUS_PAUSED);
    strcpy(view.state, "paused");

    /* resumed 10 minutes into the hour of 50% */
    cs_operator(&view, "running");
    cs_decide(&plan, &view, &ro, &m, T0 + 600 * S, &d);

    ck_assert_int_eq(d.next.status, CS_STATUS_RUNNING);
    ck_assert_int_eq(d.next.approved, -1);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);

    /* so at the gate it still waits */
    ro = d.next;
    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_AWAIT);
}
END_TEST


START_TEST(test_operator_pause_holds_but_violations_act)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_healthy(&m);
    cs_state(&ro, &view, 1, CS_STATUS_RUNNING);
    cs_operator(&view, "paused");

    /* long past the hold: paused, no promotion */
    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_int_eq(d.next.status, CS_STATUS_PAUSED);
    ck_assert_uint_eq(d.next.seen, 8);
    ck_assert_uint_eq(d.next.generation, 7);
    ck_assert_int_eq(d.dirty, 1);
    ck_assert_msg(strstr(d.note, "paused by canary-ctl:ops") != NULL, "%s",
                  d.note);

    /* a violation while paused: still rolled back */
    ro = d.next;
    ro.violation_since = T0;
    cs_metrics(&m, 5000, 10, 50, 1000, 50, 50);
    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_ROLLBACK);

    /* resumed: on with the rollout */
    cs_healthy(&m);
    view.generation = 9;
    strcpy(view.state, "running");
    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);
    ck_assert_int_eq(d.next.status, CS_STATUS_RUNNING);
    ck_assert_int_eq(d.action, CS_ACT_PROMOTE);
}
END_TEST


START_TEST(test_operator_rollback_or_guard_stops)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_healthy(&m);
    cs_state(&ro, &view, 2, CS_STATUS_RUNNING);
    cs_operator(&view, "rolled_back");
    view.weight = 0;

    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_IDLE);
    ck_assert_int_eq(d.next.status, CS_STATUS_ROLLED_BACK);
    ck_assert_int_eq(d.dirty, 1);
    ck_assert_msg(strstr(d.next.stopped_by, "rolled_back by canary-ctl")
                  != NULL, "%s", d.next.stopped_by);

    cs_state(&ro, &view, 2, CS_STATUS_AWAITING_RESUME);
    cs_operator(&view, "guard_tripped");
    strcpy(view.updated_by, "nginx-guard");
    view.weight = 0;

    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_IDLE);
    ck_assert_int_eq(d.next.status, CS_STATUS_ROLLED_BACK);
    ck_assert_uint_eq(d.nops, 0);
}
END_TEST


START_TEST(test_operator_weight_reanchors)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_healthy(&m);
    cs_state(&ro, &view, 1, CS_STATUS_RUNNING);

    /* canary-ctl set-weight api 30 during the 5% stage */
    cs_operator(&view, "running");
    view.weight = 3000;

    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_int_eq(d.next.stage, 2);
    ck_assert_uint_eq(d.next.weight, 3000);
    ck_assert_int_eq(d.next.stage_started, T0 + 3600 * S);
    ck_assert_msg(strstr(d.note, "weight set to 30%") != NULL, "%s",
                  d.note);

    /* an hour later the next stage is 50%, from 30% */
    ro = d.next;
    cs_decide(&plan, &view, &ro, &m, T0 + 7200 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_PROMOTE);
    ck_assert_uint_eq(d.from_weight, 3000);
    ck_assert_uint_eq(d.weight, 5000);
    ck_assert_uint_eq(d.next.generation, 9);
}
END_TEST


START_TEST(test_pins_and_enabled_are_noted_only)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_healthy(&m);
    cs_state(&ro, &view, 1, CS_STATUS_RUNNING);
    cs_operator(&view, "running");

    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);

    ck_assert_int_eq(d.action, CS_ACT_PROMOTE);
    ck_assert_msg(strstr(d.note, "nothing to do") != NULL, "%s", d.note);

    /* the kill switch: hold */
    view.enabled = 0;
    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "disabled") != NULL, "%s", d.reason);

    /* or an nginx that says so */
    view.enabled = 1;
    m.disabled = 1;
    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "disabled") != NULL, "%s", d.reason);
}
END_TEST


START_TEST(test_never_promote_blind)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_state(&ro, &view, 1, CS_STATUS_RUNNING);

    cs_decide(&plan, &view, &ro, NULL, T0 + 3600 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_int_eq(d.has_judgement, 0);
    ck_assert_msg(strstr(d.reason, "blind") != NULL, "%s", d.reason);

    /* an nginx with its guard tripped: hold */
    cs_healthy(&m);
    m.guard_tripped = 1;
    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "guard") != NULL, "%s", d.reason);
}
END_TEST


START_TEST(test_odd_states_hold)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_healthy(&m);
    cs_state(&ro, &view, 1, CS_STATUS_RUNNING);

    view.generation = 3;
    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "went back") != NULL, "%s", d.reason);

    memset(&view, 0, sizeof(cs_split_view_t));
    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "gone") != NULL, "%s", d.reason);

    cs_state(&ro, &view, 4, CS_STATUS_COMPLETE);
    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_IDLE);
}
END_TEST


/*
 * Two nginx whose tenants differ: one fails 2% of requests on both
 * sides and sends half of them to canary, the other fails 0.1% and
 * sends 5%.  The canary is as good as stable in each; pooled over the
 * fleet it looks four times worse (Simpson).  The tests compare within
 * each nginx.
 */

START_TEST(test_fleet_is_compared_within_each_nginx)
{
    int              pooled, i;
    cs_window_t      nodes[4];
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    for (pooled = 0; pooled < 2; pooled++) {
        cs_state(&ro, &view, 3, CS_STATUS_RUNNING);

        for (i = 0; i < 60; i++) {
            cs_window(&nodes[0], 500, 10, 50);      /* A: stable */
            cs_window(&nodes[1], 500, 10, 50);      /* A: canary */
            cs_window(&nodes[2], 9500, 10, 50);     /* B: stable */
            cs_window(&nodes[3], 500, 0, 50);       /* B: canary */

            if (i % 2) {
                nodes[3].errors_5xx = 1;
            }

            cs_metrics(&m, 0, 0, 50, 0, 0, 50);
            cs_window_add(&m.delta[CS_STABLE], &nodes[0]);
            cs_window_add(&m.delta[CS_STABLE], &nodes[2]);
            cs_window_add(&m.delta[CS_CANARY], &nodes[1]);
            cs_window_add(&m.delta[CS_CANARY], &nodes[3]);
            m.v[CS_STABLE] = m.delta[CS_STABLE];
            m.v[CS_CANARY] = m.delta[CS_CANARY];

            if (!pooled) {
                m.node_delta = nodes;
                m.n_node = 2;
            }

            cs_decide(&plan, &view, &ro, &m, T0 + (i + 1) * S, &d);
            ro = d.next;
        }

        if (pooled) {
            /* what pooling would have concluded */
            ck_assert_int_eq(d.j.checks[CS_CHECK_ERRORS].status, CS_FAIL);

        } else {
            ck_assert_msg(d.j.checks[CS_CHECK_ERRORS].status == CS_PASS
                          && d.j.checks[CS_CHECK_ERRORS].p_value > 0.1,
                          "per nginx: %s, p %g",
                          cs_verdict_name(
                              d.j.checks[CS_CHECK_ERRORS].status),
                          d.j.checks[CS_CHECK_ERRORS].p_value);
        }
    }
}
END_TEST


START_TEST(test_stage_for_weight)
{
    ck_assert_uint_eq(cs_stage_for_weight(&plan, 0), 0);
    ck_assert_uint_eq(cs_stage_for_weight(&plan, 499), 0);
    ck_assert_uint_eq(cs_stage_for_weight(&plan, 500), 1);
    ck_assert_uint_eq(cs_stage_for_weight(&plan, 4999), 2);
    ck_assert_uint_eq(cs_stage_for_weight(&plan, 10000), 4);
}
END_TEST


START_TEST(test_window_starts_with_the_stage)
{
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_state(&ro, &view, 2, CS_STATUS_RUNNING);

    /* the plan's 30s, but not before the stage started */
    ck_assert_uint_eq(cs_window_seconds(&plan, &ro, T0 + 3600 * S), 30);
    ck_assert_uint_eq(cs_window_seconds(&plan, &ro, T0 + 12500), 12);
    ck_assert_uint_eq(cs_window_seconds(&plan, &ro, T0 + 200), 1);
    ck_assert_uint_eq(cs_window_seconds(&plan, &ro, T0 - 5 * S), 1);

    /* a rollout not running has no stage to start at */
    cs_rollout_init(&ro);
    ck_assert_uint_eq(cs_window_seconds(&plan, &ro, T0), 30);
}
END_TEST


/* times of any value (UBSan builds catch an overflow here) */

START_TEST(test_elapsed_times_never_overflow)
{
    size_t           i, k;
    char             line[1024];
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    static const int64_t  t[] = {
        INT64_MIN, INT64_MIN + 1, -T0, -1, 0, 1, T0, INT64_MAX - 1,
        INT64_MAX
    };

    ck_assert_int_eq(cs_elapsed(T0 + 5 * S, T0), 5 * S);
    ck_assert_int_eq(cs_elapsed(T0, T0 + 5 * S), 0);
    ck_assert_int_eq(cs_elapsed(T0, T0), 0);
    ck_assert_int_eq(cs_elapsed(INT64_MAX, INT64_MIN), INT64_MAX);
    ck_assert_int_eq(cs_elapsed(0, INT64_MIN), INT64_MAX);
    ck_assert_int_eq(cs_elapsed(-1, INT64_MIN), INT64_MAX);
    ck_assert_int_eq(cs_elapsed(INT64_MIN, INT64_MAX), 0);
    ck_assert_int_eq(cs_elapsed(INT64_MAX, -1), INT64_MAX);
    ck_assert_int_eq(cs_elapsed(INT64_MAX - 1, -1), INT64_MAX);
    ck_assert_int_eq(cs_elapsed(INT64_MAX - 2, -1), INT64_MAX - 1);

    cs_metrics(&m, 1010, 4, 11, 250, 100, 11);

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        for (k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
            cs_state(&ro, &view, 2, CS_STATUS_RUNNING);
            ro.stage_started = t[i];
            ro.violation_since = t[i];

            (void) cs_window_seconds(&plan, &ro, t[k]);

            cs_decide(&plan, &view, &ro, &m, t[k], &d);
            cs_decision_line(&plan, "api", &ro, &d, line, sizeof(line));

            cs_decide(&plan, &view, &ro, NULL, t[k], &d);
            cs_decision_line(&plan, "api", &ro, &d, line, sizeof(line));
        }
    }

    /* a stage started in the future has been held for no time at all */
    cs_state(&ro, &view, 2, CS_STATUS_RUNNING);
    ro.stage_started = INT64_MIN;
    ck_assert_uint_eq(cs_window_seconds(&plan, &ro, T0), 30);
    ro.stage_started = INT64_MAX;
    ck_assert_uint_eq(cs_window_seconds(&plan, &ro, T0), 1);
}
END_TEST


START_TEST(test_log_line_has_the_numbers)
{
    char             line[1024];
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_metrics(&m, 1010, 4, 11, 250, 1, 11);
    cs_state(&ro, &view, 2, CS_STATUS_RUNNING);

    cs_decide(&plan, &view, &ro, &m, T0 + 12 * S, &d);
    cs_decision_line(&plan, "api", &ro, &d, line, sizeof(line));

    ck_assert_msg(strstr(line, "api stage 20_percent (20%): hold 12s/1h; "
                         "canary err 0.40% (n=250) vs stable 0.40% "
                         "(n=1010); p99 ") == line, "%s", line);
}
END_TEST



/*
 * The log's durations: the plan's as it wrote them ("90s", 300 seconds:
 * "300s"), what was measured in one format ("3s", never "3.0s")
 */

START_TEST(test_log_durations_as_written)
{
    char             err[256];
    cs_plan_t        p;
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    static const char  text[] =
        "{\"stages\": [{\"name\": \"a\", \"weight\": 0, \"hold\": \"90s\"},"
        " {\"name\": \"b\", \"weight\": 5, \"hold\": 300},"
        " {\"name\": \"c\", \"weight\": 100, \"hold\": \"0s\"}]}";

    ck_assert_msg(cs_plan_parse(&p, text, sizeof(text) - 1, "plan.json",
                                err, sizeof(err)) == 0, "%s", err);

    cs_healthy(&m);
    cs_state(&ro, &view, 0, CS_STATUS_RUNNING);
    ro.weight = 0;

    cs_decide(&p, &view, &ro, &m, T0 + 3040, &d);
    ck_assert_str_eq(d.reason, "hold 3s/90s");

    cs_decide(&p, &view, &ro, &m, T0 + 75 * S, &d);
    ck_assert_str_eq(d.reason, "hold 1m15s/90s");

    cs_decide(&p, &view, &ro, &m, T0 + 90 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_PROMOTE);
    ck_assert_msg(strstr(d.reason, "hold 90s passed") != NULL, "%s",
                  d.reason);

    ro.stage = 1;
    ro.weight = 500;
    view.weight = 500;

    cs_decide(&p, &view, &ro, &m, T0 + 3400, &d);
    ck_assert_str_eq(d.reason, "hold 3.4s/300s");

    cs_plan_free(&p);
}
END_TEST


UNIT_MAIN("sidecar_analysis", cs_setup, cs_teardown, 0)
