
/*
 * The receipts of a rollback, gradual or not: detected_at,
 * rollback_duration_ms and failed_checks from the violation the rollback
 * acted on, to its last step (each step restarts violation_since), and
 * rollbacks_triggered counting it once, also when an operator paused the
 * walk before it ended.
 */


#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include <jansson.h>

#include "analysis.h"
#include "receipts.h"


#define S         1000LL                        /* ms */
#define T0        (1700000000LL * 1000)         /* a start time */

#define PLAN                                                                  \
    "{\"violation_for\": \"5s\", \"pins\": [\"t1\"],"                         \
    " \"rollback\": {\"steps\": [20, 5, 0], \"step_hold\": \"10s\"},"         \
    " \"stages\": [{\"name\": \"a\", \"weight\": 10, \"hold\": \"1h\"},"      \
    "              {\"name\": \"b\", \"weight\": 50, \"hold\": \"1h\"},"      \
    "              {\"name\": \"c\", \"weight\": 100, \"hold\": 0}]}"


static cs_plan_t  plan;


static void
cs_setup(void)
{
    char  err[512];

    ck_assert_msg(cs_plan_parse(&plan, PLAN, strlen(PLAN), "plan.json", err,
                                sizeof(err)) == 0, "%s", err);
}


static void
cs_teardown(void)
{
    cs_plan_free(&plan);
}


static size_t
cs_bucket(double latency_ms)
{
    size_t    b;
    uint64_t  us;

    us = (uint64_t) (latency_ms * 1000);

    for (b = 0; b < CS_HIST_BUCKETS - 1
                && ngx_http_canary_hist_upper(b) <= us; b++)
    {
        /* void */
    }

    return b;
}


/* stable: sn requests, se errors; canary: cn, ce; all at 50 ms */

static void
cs_metrics(cs_metrics_t *m, uint64_t sn, uint64_t se, uint64_t cn,
    uint64_t ce)
{
    cs_metrics_init(m);

    m->v[CS_STABLE].requests = sn;
    m->v[CS_STABLE].errors_5xx = se;
    m->v[CS_STABLE].counts[cs_bucket(50)] = sn;
    m->v[CS_CANARY].requests = cn;
    m->v[CS_CANARY].errors_5xx = ce;
    m->v[CS_CANARY].counts[cs_bucket(50)] = cn;

    m->delta[CS_STABLE] = m->v[CS_STABLE];
    m->delta[CS_CANARY] = m->v[CS_CANARY];
    m->has_delta = 1;

    m->instances = 1;
    m->asked = 1;
    m->window_seconds = 30;
    m->generation_min = 7;
}


/* running at 50%, a violation of error_rate since T0 */

static void
cs_state(cs_rollout_t *ro, cs_split_view_t *view)
{
    cs_rollout_init(ro);

    ro->status = CS_STATUS_RUNNING;
    ro->stage = 1;
    ro->stage_started = T0 - 600 * S;
    ro->weight = 5000;
    ro->generation = 7;
    ro->seen = 7;
    ro->rollout_started = T0 - 3600 * S;
    ro->violation_since = T0;

    memset(view, 0, sizeof(cs_split_view_t));
    view->exists = 1;
    view->has_weight = 1;
    view->weight = 5000;
    view->enabled = -1;
    view->generation = 7;
    strcpy(view->state, "running");
    strcpy(view->updated_by, "sidecar-a");
}


static void
cs_written(const cs_decision_t *d, cs_rollout_t *ro, cs_split_view_t *view)
{
    *ro = d->next;
    view->generation = d->next.generation;

    if (d->set_weight) {
        view->weight = d->weight;
    }

    if (d->state) {
        strcpy(view->state, d->state);
    }
}


/* the decision's receipt op, as the sidecar writes it */

static json_t *
cs_receipt(const cs_decision_t *d, const cs_rollout_t *before, size_t op,
    int64_t now)
{
    char              id[CS_UUID_LEN + 1], *s;
    json_t           *r;
    json_error_t      jerr;
    cs_receipt_ctx_t  ctx;

    memset(&ctx, 0, sizeof(cs_receipt_ctx_t));
    ctx.split = "api";
    ctx.by = "sidecar-a";
    ctx.now = now;
    ctx.generation = 8;
    ctx.before = before;

    s = cs_receipt_json(&plan, d, op, &ctx, id);
    ck_assert_ptr_nonnull(s);

    r = json_loads(s, 0, &jerr);
    ck_assert_msg(r != NULL, "%s: %s", s, jerr.text);
    free(s);

    return r;
}


static void
cs_assert_rollback_fields(json_t *r, int64_t now)
{
    size_t   i;
    json_t  *f;

    ck_assert_msg(json_is_string(json_object_get(r, "detected_at")),
                  "%s: no detected_at", json_string_value(
                      json_object_get(r, "operation")));
    ck_assert_str_eq(json_string_value(json_object_get(r, "detected_at")),
                     "2023-11-14T22:13:20Z");
    ck_assert_int_eq(json_integer_value(json_object_get(r,
                         "rollback_duration_ms")), now - T0);

    /* the check that started the rollback, whatever failed since */
    f = json_object_get(r, "failed_checks");

    for (i = 0; i < json_array_size(f); i++) {
        if (strcmp(json_string_value(json_array_get(f, i)),
                   "error_rate_percent") == 0)
        {
            return;
        }
    }

    ck_abort_msg("no error_rate_percent in failed_checks");
}


START_TEST(test_every_step_of_a_walk_says_what_it_acts_on)
{
    json_t           *r;
    size_t            i;
    cs_metrics_t      m;
    cs_decision_t     d;
    cs_rollout_t      ro, before;
    cs_split_view_t   view;

    /* 5% errors on canary at 50%: the walk's first step, 20% */
    cs_metrics(&m, 5000, 10, 1000, 50);
    cs_state(&ro, &view);
    before = ro;
    cs_decide(&plan, &view, &ro, &m, T0 + 5 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_ROLLBACK_STEP);
    ck_assert_uint_eq(d.nops, 2);

    for (i = 0; i < d.nops; i++) {
        r = cs_receipt(&d, &before, i, T0 + 5 * S);
        cs_assert_rollback_fields(r, T0 + 5 * S);
        ck_assert_int_eq(json_integer_value(json_object_get(r,
                             "rollbacks_triggered")), 1);
        json_decref(r);
    }

    cs_written(&d, &ro, &view);

    /* the errors are gone; the walk goes on: 5%, then 0 */
    cs_metrics(&m, 5000, 10, 1000, 2);
    before = ro;
    cs_decide(&plan, &view, &ro, &m, T0 + 15 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_ROLLBACK_STEP);
    r = cs_receipt(&d, &before, 0, T0 + 15 * S);
    cs_assert_rollback_fields(r, T0 + 15 * S);
    json_decref(r);
    cs_written(&d, &ro, &view);

    before = ro;
    cs_decide(&plan, &view, &ro, &m, T0 + 25 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_ROLLBACK);
    ck_assert_str_eq(d.ops[0], "rollback_executed");

    r = cs_receipt(&d, &before, 0, T0 + 25 * S);
    cs_assert_rollback_fields(r, T0 + 25 * S);
    ck_assert_int_eq(json_integer_value(json_object_get(r,
                         "rollbacks_triggered")), 1);
    json_decref(r);
}
END_TEST


/* paused by an operator mid-walk, then critical: still one rollback */

START_TEST(test_a_paused_walk_ended_is_one_rollback)
{
    json_t           *r;
    cs_metrics_t      m;
    cs_decision_t     d;
    cs_rollout_t      ro, walking, before;
    cs_split_view_t   view, at;

    cs_metrics(&m, 5000, 10, 1000, 50);
    cs_state(&ro, &view);
    cs_decide(&plan, &view, &ro, &m, T0 + 5 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_ROLLBACK_STEP);
    cs_written(&d, &ro, &view);

    view.generation++;
    strcpy(view.state, "paused");
    strcpy(view.updated_by, "canary-ctl:ops");
    cs_metrics(&m, 5000, 10, 1000, 2);
    cs_decide(&plan, &view, &ro, &m, T0 + 6 * S, &d);
    ck_assert_int_eq(d.next.status, CS_STATUS_PAUSED);
    ro = d.next;
    walking = ro;
    at = view;

    /* the canary fails 20%: critical, to 0 at once */
    cs_metrics(&m, 5000, 5, 100, 20);
    before = ro;
    cs_decide(&plan, &view, &ro, &m, T0 + 7 * S, &d);
    ck_assert_int_eq(d.j.critical, 1);
    ck_assert_int_eq(d.action, CS_ACT_ROLLBACK);
    ck_assert_uint_eq(d.next.rollbacks, 1);

    r = cs_receipt(&d, &before, d.nops - 1, T0 + 7 * S);
    ck_assert_int_eq(json_integer_value(json_object_get(r,
                         "rollbacks_triggered")), 1);
    cs_assert_rollback_fields(r, T0 + 7 * S);
    json_decref(r);

    /* or the operator rolls it back by hand: the same one, ended */
    ro = walking;
    view = at;
    view.generation++;
    strcpy(view.state, "rolled_back");
    cs_metrics(&m, 5000, 10, 1000, 2);
    cs_decide(&plan, &view, &ro, &m, T0 + 7 * S, &d);
    ck_assert_int_eq(d.next.status, CS_STATUS_ROLLED_BACK);
    ck_assert_uint_eq(d.next.rollbacks, 1);
}
END_TEST


/*
 * An operator's weight moves the rollout to another stage: the stages
 * before it are the ones completed, so that the final receipt says all
 * of the plan's, not more (a walk back up counted its stages twice).
 */

START_TEST(test_an_operators_weight_sets_the_stages_completed)
{
    json_t           *r;
    cs_metrics_t      m;
    cs_decision_t     d;
    cs_rollout_t      ro, before;
    cs_split_view_t   view;

    cs_metrics(&m, 5000, 10, 1000, 2);
    cs_state(&ro, &view);
    ro.violation_since = 0;
    ro.stages_completed = 1;

    /* back to 10%, stage a */
    view.generation++;
    view.weight = 1000;
    strcpy(view.updated_by, "canary-ctl:ops");
    cs_decide(&plan, &view, &ro, &m, T0, &d);
    ck_assert_uint_eq(d.next.stage, 0);
    ck_assert_uint_eq(d.next.stages_completed, 0);
    ro = d.next;

    /* the walk up again: a, b, then c (hold 0) completes */
    cs_decide(&plan, &view, &ro, &m, T0 + 3600 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_PROMOTE);
    ck_assert_uint_eq(d.next.stages_completed, 1);
    cs_written(&d, &ro, &view);

    before = ro;
    cs_decide(&plan, &view, &ro, &m, T0 + 7200 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_COMPLETE);
    ck_assert_uint_eq(d.next.stages_completed, plan.nstages);

    r = cs_receipt(&d, &before, d.nops - 1, T0 + 7200 * S);
    ck_assert_str_eq(json_string_value(json_object_get(r, "operation")),
                     "deployment_complete");
    ck_assert_int_eq(json_integer_value(json_object_get(r,
                         "stages_completed")), plan.nstages);
    json_decref(r);

    /* up to 100% by hand from b: a and b are behind it, and c (hold 0)
     * completes at once: all three */
    cs_state(&ro, &view);
    ro.violation_since = 0;
    ro.stages_completed = 1;
    view.generation++;
    view.weight = 10000;
    strcpy(view.updated_by, "canary-ctl:ops");
    cs_decide(&plan, &view, &ro, &m, T0, &d);
    ck_assert_uint_eq(d.next.stage, 2);
    ck_assert_int_eq(d.action, CS_ACT_COMPLETE);
    ck_assert_uint_eq(d.next.stages_completed, plan.nstages);
}
END_TEST


UNIT_MAIN("sidecar_rollback_receipts", cs_setup, cs_teardown, 0)
