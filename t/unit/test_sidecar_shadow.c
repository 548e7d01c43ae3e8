
/*
 * canary-sidecar's shadow stage: the plan's fields, the judge's match
 * rate (PASS, FAIL by the always-valid share test, NO_DATA under
 * shadow_min_compared or without the evidence yet), promotion out of a
 * weight-0 shadow stage on the shadow's comparisons, and the shadow
 * counters' differences per nginx (a restart, a shadow block that
 * started over) and their text in the state.
 */


#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "analysis.h"
#include "fleet.h"
#include "nodes.h"


#define S         1000LL                        /* ms */
#define T0        (1700000000LL * 1000)         /* a start time */


static cs_plan_t  plan;


static const char  cs_text[] =
    "{\"stages\": ["
    " {\"name\": \"shadow\", \"weight\": 0, \"shadow\": 10, \"hold\": \"30m\","
    "  \"slo\": {\"shadow_match_min\": 99.9, \"shadow_min_compared\": 500}},"
    " {\"name\": \"5_percent\", \"weight\": 5, \"hold\": \"30m\"},"
    " {\"name\": \"100_percent\", \"weight\": 100, \"hold\": \"0s\"}],"
    " \"violation_for\": \"5s\"}";


static void
cs_setup(void)
{
    char  err[256];

    ck_assert_msg(cs_plan_parse(&plan, cs_text, sizeof(cs_text) - 1,
                                "plan.json", err, sizeof(err)) == 0,
                  "%s", err);
}


static void
cs_teardown(void)
{
    cs_plan_free(&plan);
}


/* stable's n requests, none to the canary (weight 0, no pins), and the
 * shadow's comparisons, all new to the stage */

static void
cs_metrics(cs_metrics_t *m, uint64_t n, uint64_t compared,
    uint64_t matched)
{
    size_t  b;

    cs_metrics_init(m);

    m->v[CS_STABLE].requests = n;
    b = 20;
    m->v[CS_STABLE].counts[b] = n;
    m->delta[CS_STABLE] = m->v[CS_STABLE];
    m->has_delta = 1;

    m->shadow_delta.requests = compared;
    m->shadow_delta.compared = compared;
    m->shadow_delta.matched = matched;
    m->shadow_delta.mismatched_body = compared - matched;
    m->shadow_seen = 1;

    m->instances = 1;
    m->asked = 1;
    m->window_seconds = 30;
    m->generation_min = 7;
}


static void
cs_state(cs_rollout_t *ro, cs_split_view_t *view, size_t stage)
{
    cs_rollout_init(ro);

    ro->status = CS_STATUS_RUNNING;
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
    strcpy(view->state, "running");
    strcpy(view->updated_by, "sidecar-a");
}


START_TEST(test_plan_fields)
{
    char        err[256];
    cs_plan_t   p;

    static const char  top[] =
        "{\"stages\": ["
        " {\"name\": \"s\", \"weight\": 0, \"shadow\": 12.5, \"hold\": \"1s\"},"
        " {\"name\": \"b\", \"weight\": 5, \"hold\": \"1s\"}],"
        " \"slo\": {\"shadow_match_min\": 99}}";

    ck_assert_int_eq(plan.shadow, 1);
    ck_assert_uint_eq(plan.stages[0].shadow, 1000);
    ck_assert_uint_eq(plan.stages[1].shadow, 0);
    ck_assert(cs_plan_stage_slo(&plan, 0)->shadow_match_min == 99.9);
    ck_assert_uint_eq(cs_plan_stage_slo(&plan, 0)->shadow_min_compared, 500);
    ck_assert(cs_plan_stage_slo(&plan, 1)->shadow_match_min == 0);

    /* the plan's shadow_match_min: for the stages that mirror only */
    ck_assert_msg(cs_plan_parse(&p, top, sizeof(top) - 1, "plan.json", err,
                                sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(p.stages[0].shadow, 1250);
    ck_assert(cs_plan_stage_slo(&p, 0)->shadow_match_min == 99);
    ck_assert(cs_plan_stage_slo(&p, 1)->shadow_match_min == 0);
    cs_plan_free(&p);

    /* a default plan has no shadow stage */
    ck_assert_int_eq(cs_plan_default(&p), 0);
    ck_assert_int_eq(p.shadow, 0);
    cs_plan_free(&p);
}
END_TEST


/* a matching canary: held for the hold, promoted after it, though no
 * user reached it (weight 0): the shadow's comparisons are its evidence */

START_TEST(test_matching_promotes_after_hold)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_metrics(&m, 20000, 2000, 2000);
    cs_state(&ro, &view, 0);

    cs_decide(&plan, &view, &ro, &m, T0 + 29 * 60 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "hold 29m/30m") != NULL, "%s", d.reason);
    ck_assert_int_eq(d.j.checks[CS_CHECK_SHADOW].status, CS_PASS);
    ck_assert(d.j.checks[CS_CHECK_SHADOW].canary == 100);
    ck_assert_int_eq(d.j.violation, 0);

    cs_decide(&plan, &view, &ro, &m, T0 + 30 * 60 * S, &d);
    ck_assert_msg(d.action == CS_ACT_PROMOTE, "%s", d.reason);
    ck_assert_uint_eq(d.weight, 500);
    ck_assert_uint_eq(d.judged.shadow.compared, 2000);
    ck_assert_uint_eq(d.j.shadow.compared, 2000);

    /* the next stage has no shadow check */
    cs_state(&ro, &view, 1);
    cs_decide(&plan, &view, &ro, &m, T0, &d);
    ck_assert_int_eq(d.j.checks[CS_CHECK_SHADOW].off, 1);
}
END_TEST


/* under shadow_min_compared at the end of the hold: held, never promoted
 * and never failed, as the other checks with too little evidence */

START_TEST(test_too_few_compared_holds)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_metrics(&m, 20000, 499, 300);
    cs_state(&ro, &view, 0);

    cs_decide(&plan, &view, &ro, &m, T0 + 60 * 60 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_int_eq(d.j.checks[CS_CHECK_SHADOW].status, CS_NO_DATA);
    ck_assert_int_eq(d.j.violation, 0);
    ck_assert_msg(strstr(d.reason, "compared 499 responses, "
                         "shadow_min_compared 500") != NULL, "%s",
                  d.reason);
}
END_TEST


/* a clearly mismatching canary: FAIL, held violation_for, rolled back */

START_TEST(test_mismatching_rolls_back)
{
    char             line[2048];
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_metrics(&m, 20000, 1000, 950);
    cs_state(&ro, &view, 0);

    cs_decide(&plan, &view, &ro, &m, T0 + 60 * S, &d);
    ck_assert_int_eq(d.j.checks[CS_CHECK_SHADOW].status, CS_FAIL);
    ck_assert(d.j.checks[CS_CHECK_SHADOW].p_value
              < d.j.checks[CS_CHECK_SHADOW].alpha);
    ck_assert_int_eq(d.j.violation, 1);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_int_eq(d.next.violation_since, T0 + 60 * S);

    ro = d.next;
    cs_metrics(&m, 100, 0, 0);
    cs_decide(&plan, &view, &ro, &m, T0 + 65 * S, &d);
    ck_assert_msg(d.action == CS_ACT_ROLLBACK, "%s", d.reason);
    ck_assert_uint_eq(d.weight, 0);
    ck_assert_msg(strstr(d.reason, "shadow_match_percent 95.000% < 99.9% "
                         "(50 of 1000 compared mismatched: 0 status, 50 "
                         "body") != NULL, "%s", d.reason);
    ck_assert(cs_failed_mask(&d.j) & cs_failed_bit(CS_CHECK_SHADOW));
    ck_assert(!(cs_failed_mask(&d.j) & CS_FAILED_CRITICAL));

    cs_decision_line(&plan, "api", &ro, &d, line, sizeof(line));
    ck_assert_msg(strstr(line, "shadow 950/1000 matched, min 99.9%: FAIL")
                  != NULL, "%s", line);
}
END_TEST


/* a shadow violation that clears before violation_for: no rollback, the
 * hold starts over (as for the other checks), even at weight 0 */

START_TEST(test_cleared_violation_restarts_hold)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_metrics(&m, 20000, 1000, 950);
    cs_state(&ro, &view, 0);

    cs_decide(&plan, &view, &ro, &m, T0 + 60 * S, &d);
    ck_assert_int_eq(d.j.checks[CS_CHECK_SHADOW].status, CS_FAIL);

    /* 100,000 more, all matching: 99.95% over the stage */
    ro = d.next;
    cs_metrics(&m, 20000, 100000, 100000);
    cs_decide(&plan, &view, &ro, &m, T0 + 62 * S, &d);
    ck_assert_int_eq(d.j.checks[CS_CHECK_SHADOW].status, CS_PASS);
    ck_assert_msg(d.action == CS_ACT_HOLD, "%s", d.reason);
    ck_assert_msg(strstr(d.reason, "violation cleared") != NULL, "%s",
                  d.reason);
    ck_assert_int_eq(d.next.violation_since, 0);
    ck_assert_int_eq(d.next.stage_started, T0 + 62 * S);
}
END_TEST


/* just under the minimum, within chance: neither FAIL nor promoted */

START_TEST(test_just_under_is_not_yet_a_failure)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    /* 99.8% of 1000: two mismatches where one is allowed */
    cs_metrics(&m, 20000, 1000, 998);
    cs_state(&ro, &view, 0);

    cs_decide(&plan, &view, &ro, &m, T0 + 60 * 60 * S, &d);
    ck_assert_int_eq(d.j.checks[CS_CHECK_SHADOW].status, CS_NO_DATA);
    ck_assert_int_eq(d.j.violation, 0);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "not yet beyond chance") != NULL, "%s",
                  d.reason);

    /* at the minimum exactly: PASS */
    cs_metrics(&m, 20000, 1000, 999);
    cs_state(&ro, &view, 0);
    cs_decide(&plan, &view, &ro, &m, T0 + 60 * 60 * S, &d);
    ck_assert_int_eq(d.j.checks[CS_CHECK_SHADOW].status, CS_PASS);
    ck_assert_int_eq(d.action, CS_ACT_PROMOTE);
}
END_TEST


/* the always-valid test: a handful of mismatches never fails, however
 * often it is read; many do */

START_TEST(test_share_test_needs_evidence)
{
    uint64_t  n;
    double    p;

    /* q = 0.1%: 3 of 500 is 0.6%, p above any stage's alpha */
    p = cs_seq_share_p(3, 500, 0.001, 1);
    ck_assert_msg(p > 0.01, "p %g", p);

    /* 50 of 1000: certain */
    p = cs_seq_share_p(50, 1000, 0.001, 1);
    ck_assert_msg(p < 1e-10, "p %g", p);

    /* read at every comparison of a canary at the threshold: the
     * mixture stays away from small p (the bound is on ever crossing) */
    for (n = 1000; n <= 100000; n += 1000) {
        p = cs_seq_share_p(n / 1000, n, 0.001, 1);
        ck_assert_msg(p > 0.01, "n %llu p %g", (unsigned long long) n, p);
    }
}
END_TEST


/* shadow_match_min 100: one mismatch is certain evidence */

START_TEST(test_match_min_100)
{
    char             err[256];
    cs_plan_t        p;
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    static const char  text[] =
        "{\"stages\": ["
        " {\"name\": \"s\", \"weight\": 0, \"shadow\": 100, \"hold\": \"1m\","
        "  \"slo\": {\"shadow_match_min\": 100, \"shadow_min_compared\": 10}},"
        " {\"name\": \"b\", \"weight\": 5, \"hold\": \"1s\"}]}";

    ck_assert_msg(cs_plan_parse(&p, text, sizeof(text) - 1, "plan.json", err,
                                sizeof(err)) == 0, "%s", err);

    cs_metrics(&m, 1000, 10, 9);
    cs_state(&ro, &view, 0);
    cs_decide(&p, &view, &ro, &m, T0 + S, &d);
    ck_assert_int_eq(d.j.checks[CS_CHECK_SHADOW].status, CS_FAIL);

    cs_metrics(&m, 1000, 10, 10);
    cs_decide(&p, &view, &ro, &m, T0 + S, &d);
    ck_assert_int_eq(d.j.checks[CS_CHECK_SHADOW].status, CS_PASS);

    cs_plan_free(&p);
}
END_TEST


/* per nginx: differences, a restart, a shadow block that started over,
 * and the readings' text */

START_TEST(test_nodes_shadow_deltas)
{
    char           *text, *names[2] = { "http://a/s", "http://b/s" };
    int             answered[2] = { 1, 1 };
    size_t          restarted, other;
    cs_node_t       nodes[2], back[2];
    cs_window_t     deltas[4];
    cs_metrics_t    r[2], sum;

    memset(nodes, 0, sizeof(nodes));
    cs_metrics_init(&r[0]);
    cs_metrics_init(&r[1]);
    r[0].instances = r[1].instances = 1;
    r[0].created = r[1].created = 1700000000;
    r[0].total[0].requests = r[1].total[0].requests = 100;
    r[0].shadow_seen = r[1].shadow_seen = 1;
    r[0].shadow_total.compared = 10;
    r[0].shadow_total.matched = 10;
    r[1].shadow_total.compared = 20;
    r[1].shadow_total.matched = 19;

    /* the first reading: nothing new */
    cs_nodes_sum(nodes, r, answered, 2, T0, deltas, &sum, &restarted,
                 &other);
    ck_assert_uint_eq(sum.shadow_delta.compared, 0);

    /* then what each added */
    r[0].shadow_total.compared = 15;
    r[0].shadow_total.matched = 15;
    r[1].shadow_total.compared = 30;
    r[1].shadow_total.matched = 27;
    cs_nodes_sum(nodes, r, answered, 2, T0 + S, deltas, &sum, &restarted,
                 &other);
    ck_assert_uint_eq(sum.shadow_delta.compared, 15);
    ck_assert_uint_eq(sum.shadow_delta.matched, 13);

    /* b's shadow counters start over alone: all they count is new */
    r[0].shadow_total.compared = 16;
    r[0].shadow_total.matched = 16;
    r[1].shadow_total.compared = 4;
    r[1].shadow_total.matched = 4;
    cs_nodes_sum(nodes, r, answered, 2, T0 + 2 * S, deltas, &sum,
                 &restarted, &other);
    ck_assert_uint_eq(sum.shadow_delta.compared, 5);
    ck_assert_uint_eq(sum.shadow_delta.matched, 5);

    /* a restarts (a newer zone): all its counters are new */
    r[0].created = 1700000100;
    r[0].shadow_total.compared = 3;
    r[0].shadow_total.matched = 2;
    cs_nodes_sum(nodes, r, answered, 2, 1700000101LL * 1000, deltas, &sum,
                 &restarted, &other);
    ck_assert_uint_eq(restarted, 1);
    ck_assert_uint_eq(sum.shadow_delta.compared, 3);
    ck_assert_uint_eq(sum.shadow_delta.matched, 2);

    /* the readings as text and back: the shadow's totals kept */
    text = cs_nodes_format(nodes, names, 2);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, " h 0 3 2 0 0 0 0 0") != NULL, "%s", text);
    ck_assert_uint_eq(cs_nodes_parse(back, names, 2, text), 0);
    ck_assert_uint_eq(back[0].shadow.compared, 3);
    ck_assert_uint_eq(back[1].shadow.compared, 4);
    free(text);

    /* an older sidecar's readings, without shadow: read, shadow 0 */
    ck_assert_uint_eq(cs_nodes_parse(back, names, 1,
                      "http://a/s 1700000000 1700000000 1 s 1 0 0 - "
                      "c 0 0 0 -"), 0);
    ck_assert_uint_eq(back[0].shadow.compared, 0);
}
END_TEST


START_TEST(test_evidence_text_keeps_shadow)
{
    char           *text, err[128];
    cs_evidence_t   ev, back;

    memset(&ev, 0, sizeof(ev));
    cs_seq_init(&ev.errors);
    cs_seq_init(&ev.latency);
    cs_seq_init(&ev.latency95);

    /* none: no " h" at all (an older sidecar reads it) */
    text = cs_evidence_format(&ev);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_null(strstr(text, " h "));
    ck_assert_int_eq(cs_evidence_parse(&back, text, err, sizeof(err)), 0);
    free(text);

    ev.shadow.requests = 110;
    ev.shadow.compared = 100;
    ev.shadow.matched = 97;
    ev.shadow.mismatched_status = 1;
    ev.shadow.mismatched_body = 2;
    ev.shadow.timeouts = 4;
    ev.shadow.skipped = 6;

    text = cs_evidence_format(&ev);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(cs_evidence_parse(&back, text, err, sizeof(err)) == 0,
                  "%s: %s", text, err);
    ck_assert(memcmp(&back.shadow, &ev.shadow, sizeof(cs_shadow_t)) == 0);
    free(text);

    /* more matched than compared: not this sidecar's */
    ck_assert_ptr_null(cs_shadow_parse(" h 1 2 3 0 0 0 0 0", &back.shadow));
}
END_TEST


/* a node record of split "api" with the shadow object SHADOW (or none) */

static const char  cs_record_head[] =
    "{\"v\":1,\"node\":\"web-1\",\"instance\":\"1765100000.4242\","
    "\"pid\":4243,\"split\":\"api\",\"generation\":7,\"weight\":0,"
    "\"enabled\":true,\"guard_tripped\":false,\"created\":1765100000,"
    "\"interval_ms\":1000,\"hist\":\"us64x16x20\","
    "\"stable\":{\"requests\":2517,\"responses\":[0,2517,0,0,0],"
    "\"upstream_errors\":0,\"latency\":\"17:2517\","
    "\"window_s\":5,\"window_requests\":400},"
    "\"canary\":{\"requests\":0,\"responses\":[0,0,0,0,0],"
    "\"upstream_errors\":0,\"latency\":\"\",\"window_s\":5,"
    "\"window_requests\":0}";


static cs_record_e
cs_record_shadow(const char *shadow, cs_metrics_t *m, char *err)
{
    char  rec[4096];

    snprintf(rec, sizeof(rec), "%s%s%s}", cs_record_head,
             shadow ? ",\"shadow\":" : "", shadow ? shadow : "");

    return cs_fleet_parse("web-1", 5, rec, strlen(rec), "api", m, err, 256);
}


#define CS_GOOD_SHADOW(compared, matched)                                     \
    "{\"requests\":" compared ",\"compared\":" compared ",\"matched\":"       \
    matched ",\"mismatched\":{\"status\":0,\"body\":0},\"canary_errors\":0,"  \
    "\"timeouts\":0,\"skipped\":{\"method\":0,\"body_too_large\":0,"          \
    "\"in_flight\":0}}"


/*
 * A node record whose shadow is not the module's (wrong type, a count
 * missing, negative, a fraction, a string, huge) is refused with a
 * reason naming "shadow", as a record with a bad "requests" is: read as
 * zeros, "compared" without "matched" was that many mismatches (a good
 * canary rolled back on one bad record), a huge "matched" a pass.
 */

START_TEST(test_hostile_record_shadow)
{
    char          err[256];
    size_t        i;
    cs_metrics_t  m;

    static const char  *bad[] = {
        "\"x\"",
        "[1,2]",
        "17",
        "{\"compared\":1000}",
        "{\"requests\":1000,\"compared\":1000,\"mismatched\":{\"status\":0,"
        "\"body\":0},\"canary_errors\":0,\"timeouts\":0}",
        CS_GOOD_SHADOW("-5", "0"),
        CS_GOOD_SHADOW("1000", "1.5e3"),
        CS_GOOD_SHADOW("1000", "\"1000\""),
        CS_GOOD_SHADOW("4611686018427387904", "4611686018427387904"),
        "{\"requests\":10,\"compared\":10,\"matched\":10,\"mismatched\":7,"
        "\"canary_errors\":0,\"timeouts\":0}",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(cs_record_shadow(bad[i], &m, err) != CS_RECORD_OK,
                      "shadow %s taken", bad[i]);
        ck_assert_msg(strstr(err, "shadow") != NULL, "%s: %s", bad[i],
                      err);
        ck_assert_uint_eq(m.shadow_total.compared, 0);
        ck_assert_uint_eq(m.instances, 0);
    }

    /* the module's own, none (a split without shadow) and null: read */
    ck_assert_int_eq(cs_record_shadow(CS_GOOD_SHADOW("1000", "990"), &m,
                                      err), CS_RECORD_OK);
    ck_assert_uint_eq(m.shadow_total.compared, 1000);
    ck_assert_uint_eq(m.shadow_total.matched, 990);
    ck_assert_int_eq(cs_record_shadow(NULL, &m, err), CS_RECORD_OK);
    ck_assert_uint_eq(m.shadow_total.compared, 0);
    ck_assert_int_eq(cs_record_shadow("null", &m, err), CS_RECORD_OK);
}
END_TEST


/*
 * An nginx that reported no shadow for a reading (the "shadow"
 * directive out of nginx.conf for a reload, then back: its counters
 * live in the zone across reloads), or whose shadow counters went down
 * while its other counters did not: what it reports next is not all
 * new to the stage.  Counting it was counting the comparisons of
 * earlier stages, earlier rollouts, in this stage.
 */

START_TEST(test_nodes_shadow_history_not_counted)
{
    char           *text, *names[1] = { "http://a/s" };
    int             answered[1] = { 1 };
    size_t          restarted, other;
    cs_node_t       nodes[1], back[1];
    cs_window_t     deltas[2];
    cs_metrics_t    r[1], sum;

    memset(nodes, 0, sizeof(nodes));
    cs_metrics_init(&r[0]);
    r[0].instances = 1;
    r[0].created = 1700000000;
    r[0].total[0].requests = 100;
    r[0].shadow_seen = 1;

    /* a past rollout's canary: 5000 comparisons, 2000 mismatched */
    r[0].shadow_total.compared = 5000;
    r[0].shadow_total.matched = 3000;
    cs_nodes_sum(nodes, r, answered, 1, T0, deltas, &sum, &restarted,
                 &other);
    ck_assert_uint_eq(sum.shadow_delta.compared, 0);

    /* a reading without shadow (null) */
    memset(&r[0].shadow_total, 0, sizeof(cs_shadow_t));
    r[0].shadow_seen = 0;
    r[0].total[0].requests = 110;
    cs_nodes_sum(nodes, r, answered, 1, T0 + S, deltas, &sum, &restarted,
                 &other);
    ck_assert_uint_eq(sum.shadow_delta.compared, 0);

    /* back: the first reading again, then only what is new */
    r[0].shadow_seen = 1;
    r[0].shadow_total.compared = 5000;
    r[0].shadow_total.matched = 3000;
    r[0].total[0].requests = 115;
    cs_nodes_sum(nodes, r, answered, 1, T0 + 2 * S, deltas, &sum,
                 &restarted, &other);
    ck_assert_msg(sum.shadow_delta.compared == 0,
                  "%llu compared counted in the stage, none were new",
                  (unsigned long long) sum.shadow_delta.compared);

    r[0].shadow_total.compared = 5100;
    r[0].shadow_total.matched = 3100;
    r[0].total[0].requests = 120;
    cs_nodes_sum(nodes, r, answered, 1, T0 + 3 * S, deltas, &sum,
                 &restarted, &other);
    ck_assert_uint_eq(restarted, 0);
    ck_assert_uint_eq(sum.shadow_delta.compared, 100);
    ck_assert_uint_eq(sum.shadow_delta.compared - sum.shadow_delta.matched,
                      0);

    /* seen, kept so in the state's text, at 0 too */
    text = cs_nodes_format(nodes, names, 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(cs_nodes_parse(back, names, 1, text), 0);
    ck_assert_int_eq(back[0].shadow_seen, 1);
    ck_assert_uint_eq(back[0].shadow.compared, 5100);
    free(text);

    memset(&nodes[0].shadow, 0, sizeof(cs_shadow_t));
    text = cs_nodes_format(nodes, names, 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, " h 0 0 0 0 0 0 0 0") != NULL, "%s", text);
    ck_assert_uint_eq(cs_nodes_parse(back, names, 1, text), 0);
    ck_assert_int_eq(back[0].shadow_seen, 1);
    free(text);
}
END_TEST


/*
 * A shadow stage on nginx whose canary_split has no "shadow" directive
 * (the Redis field does nothing there), or a canary that answers none
 * of the mirrored requests: nothing is ever compared and the stage
 * holds.  The hold says why, not only "compared 0".
 */

START_TEST(test_nothing_compared_says_why)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_metrics(&m, 20000, 0, 0);
    m.shadow_seen = 0;
    cs_state(&ro, &view, 0);

    cs_decide(&plan, &view, &ro, &m, T0 + 60 * 60 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "no nginx reports a shadow") != NULL
                  && strstr(d.reason, "\"shadow\" directive") != NULL,
                  "%s", d.reason);

    /* mirrored, the canary down: its errors and timeouts said */
    cs_metrics(&m, 20000, 0, 0);
    m.shadow_delta.requests = 900;
    m.shadow_delta.canary_errors = 700;
    m.shadow_delta.timeouts = 200;
    cs_state(&ro, &view, 0);

    cs_decide(&plan, &view, &ro, &m, T0 + 60 * 60 * S, &d);
    ck_assert_int_eq(d.action, CS_ACT_HOLD);
    ck_assert_msg(strstr(d.reason, "700 canary errors, 200 timeouts")
                  != NULL, "%s", d.reason);
}
END_TEST


/*
 * A stage at weight 100 sends stable nothing to mirror: a match rate
 * there is never met, the rollout held for ever at its last stage.  The
 * plan is refused, naming the field.  And a weight-0 shadow stage needs
 * stable's min_requests of its own SLO, as "enough" does, not the
 * plan's.
 */

START_TEST(test_shadow_edges)
{
    char             err[256];
    cs_plan_t        p;
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    static const char  last[] =
        "{\"stages\": ["
        " {\"name\": \"a\", \"weight\": 5, \"hold\": \"1s\"},"
        " {\"name\": \"b\", \"weight\": 100, \"shadow\": 10, \"hold\": \"0s\","
        "  \"slo\": {\"shadow_match_min\": 99}}]}";
    static const char  top[] =
        "{\"stages\": ["
        " {\"name\": \"a\", \"weight\": 0, \"shadow\": 10, \"hold\": \"1s\"},"
        " {\"name\": \"b\", \"weight\": 100, \"shadow\": 10,"
        "  \"hold\": \"0s\"}], \"slo\": {\"shadow_match_min\": 99}}";
    static const char  stage_min[] =
        "{\"stages\": ["
        " {\"name\": \"s\", \"weight\": 0, \"shadow\": 10, \"hold\": \"1s\","
        "  \"slo\": {\"shadow_match_min\": 99, \"shadow_min_compared\": 100,"
        "           \"min_requests\": 5000}},"
        " {\"name\": \"b\", \"weight\": 100, \"hold\": \"0s\"}],"
        " \"slo\": {\"min_requests\": 50}}";

    ck_assert_int_eq(cs_plan_parse(&p, last, sizeof(last) - 1, "plan.json",
                                   err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "stages[1].slo.shadow_match_min") != NULL
                  && strstr(err, "weight 100") != NULL, "%s", err);

    ck_assert_int_eq(cs_plan_parse(&p, top, sizeof(top) - 1, "plan.json",
                                   err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "slo.shadow_match_min") != NULL
                  && strstr(err, "stages[1]") != NULL
                  && strstr(err, "weight 100") != NULL, "%s", err);

    ck_assert_msg(cs_plan_parse(&p, stage_min, sizeof(stage_min) - 1,
                                "plan.json", err, sizeof(err)) == 0,
                  "%s", err);

    cs_metrics(&m, 1000, 1000, 1000);
    cs_rollout_init(&ro);
    ro.status = CS_STATUS_RUNNING;
    ro.stage = 0;
    ro.stage_started = T0;
    ro.generation = 7;
    ro.seen = 7;
    memset(&view, 0, sizeof(view));
    view.exists = 1;
    view.has_weight = 1;
    view.enabled = -1;
    view.generation = 7;
    strcpy(view.state, "running");
    strcpy(view.updated_by, "sidecar-a");

    cs_decide(&p, &view, &ro, &m, T0 + 60 * S, &d);
    ck_assert_int_eq(d.j.checks[CS_CHECK_SHADOW].status, CS_PASS);
    ck_assert_msg(d.action == CS_ACT_HOLD
                  && strstr(d.reason, "too little traffic") != NULL
                  && strstr(d.reason, "min 5000") != NULL,
                  "%d %s", d.action, d.reason);

    cs_plan_free(&p);
}
END_TEST


/*
 * The module adds to "compared" before "matched": a reading between the
 * two, at the stage's start, is the baseline; its comparison's "matched"
 * then lands in the stage without its "compared" (0 compared, 1 matched
 * after one step).  Such evidence was saved as text that the next
 * sidecar (a restart, a new leader) refused: the whole stage's evidence,
 * every check's, lost.
 */

START_TEST(test_evidence_matched_over_compared)
{
    char           *text, err[128];
    cs_metrics_t    m;
    cs_evidence_t   ev, back;

    memset(&ev, 0, sizeof(ev));
    cs_seq_init(&ev.errors);
    cs_seq_init(&ev.latency);
    cs_seq_init(&ev.latency95);

    cs_metrics(&m, 100, 0, 0);
    m.shadow_delta.requests = 3;
    m.shadow_delta.matched = 1;
    cs_evidence_add(&plan, &ev, &m);

    ck_assert_uint_le(ev.shadow.matched, ev.shadow.compared);

    text = cs_evidence_format(&ev);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(cs_evidence_parse(&back, text, err, sizeof(err)) == 0,
                  "%s: %s", text, err);
    ck_assert_uint_eq(back.v[CS_STABLE].requests, 100);
    free(text);
}
END_TEST


/*
 * Stable's own 5xx are the module's to leave out (skipped.stable_error,
 * not compared): the sidecar excuses nothing.  Stable failing a fifth
 * of its requests does not hide the canary's own 500s (status
 * mismatches against a healthy stable), nor bodies that differ.
 */

START_TEST(test_canary_errors_fail_whatever_stable)
{
    cs_metrics_t     m;
    cs_decision_t    d;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_metrics(&m, 20000, 2000, 1900);
    m.shadow_delta.mismatched_body = 0;
    m.shadow_delta.mismatched_status = 100;
    m.delta[CS_STABLE].errors_5xx = 4000;
    cs_state(&ro, &view, 0);

    cs_decide(&plan, &view, &ro, &m, T0 + 30 * 60 * S, &d);
    ck_assert_int_eq(d.j.checks[CS_CHECK_SHADOW].status, CS_FAIL);
    ck_assert_uint_eq(d.j.checks[CS_CHECK_SHADOW].events[CS_CANARY], 100);
    ck_assert_msg(d.action != CS_ACT_PROMOTE, "%d %s", d.action, d.reason);

    cs_metrics(&m, 20000, 2000, 1900);
    m.delta[CS_STABLE].errors_5xx = 4000;
    cs_state(&ro, &view, 0);

    cs_decide(&plan, &view, &ro, &m, T0 + 30 * 60 * S, &d);
    ck_assert_int_eq(d.j.checks[CS_CHECK_SHADOW].status, CS_FAIL);
}
END_TEST


/*
 * skipped.stable_error (the module's pairs with a stable 5xx) is read
 * with the other skipped counts; a record without it (an nginx before
 * it) is read still, a bad one refused
 */

START_TEST(test_record_stable_error)
{
    char          err[256];
    cs_metrics_t  m;

    ck_assert_int_eq(cs_record_shadow(
        "{\"requests\":1000,\"compared\":800,\"matched\":800,"
        "\"mismatched\":{\"status\":0,\"body\":0},\"canary_errors\":0,"
        "\"timeouts\":0,\"skipped\":{\"method\":1,\"body_too_large\":2,"
        "\"in_flight\":3,\"stable_error\":200}}", &m, err), CS_RECORD_OK);
    ck_assert_uint_eq(m.shadow_total.compared, 800);
    ck_assert_uint_eq(m.shadow_total.matched, 800);
    ck_assert_uint_eq(m.shadow_total.skipped, 206);

    ck_assert_int_eq(cs_record_shadow(CS_GOOD_SHADOW("1000", "990"), &m,
                                      err), CS_RECORD_OK);
    ck_assert_uint_eq(m.shadow_total.compared, 1000);

    ck_assert_int_ne(cs_record_shadow(
        "{\"requests\":1000,\"compared\":800,\"matched\":800,"
        "\"mismatched\":{\"status\":0,\"body\":0},\"canary_errors\":0,"
        "\"timeouts\":0,\"skipped\":{\"stable_error\":-1}}", &m, err),
        CS_RECORD_OK);
    ck_assert_msg(strstr(err, "stable_error") != NULL, "%s", err);
}
END_TEST


UNIT_MAIN("sidecar_shadow", cs_setup, cs_teardown, 0)
