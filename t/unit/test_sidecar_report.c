
/*
 * What canary-sidecar --listen serves (report.c): the Prometheus text
 * of /metrics (HELP and TYPE for each family, _total on counters,
 * escaped labels, the rollout's values), the page's JSON, the samples
 * kept for its charts, and the answers of /healthz and /readyz.
 */


#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include <jansson.h>

#include "report.h"


#define NOW  1795314065123LL


static cs_plan_t           plan;
static cs_report_t         report;
static cs_notify_counts_t  notify;


static void
cs_setup(void)
{
    ck_assert_int_eq(cs_plan_default(&plan), 0);
    memset(&notify, 0, sizeof(notify));
    ck_assert_int_eq(cs_report_init(&report, "api", "sidecar-a", &plan, 0,
                                     &notify), 0);
}


static void
cs_teardown(void)
{
    cs_report_free(&report);
    cs_plan_free(&plan);
}


/* the value of one series, exactly as written; -1 when missing */

static double
cs_value(const char *text, const char *series)
{
    char        want[512];
    const char *p;

    snprintf(want, sizeof(want), "\n%s ", series);

    p = strstr(text, want);
    if (p == NULL) {
        return -1;
    }

    return strtod(p + strlen(want), NULL);
}


/*
 * Prometheus' text format as promtool checks it: each family's HELP
 * then TYPE before its samples, a sample's name its family's (counters
 * end in _total), no family twice, "name{labels} value" lines.
 */

static void
cs_check_format(const char *text)
{
    char         family[128], type[32], name[128], *copy, *line, *save;
    size_t       n;
    const char  *brace;
    char         seen[64][128];
    size_t       nseen, i;

    copy = strdup(text);
    family[0] = '\0';
    type[0] = '\0';
    nseen = 0;

    ck_assert(text[strlen(text) - 1] == '\n');

    for (line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
    {
        if (strncmp(line, "# HELP ", 7) == 0) {
            ck_assert_int_eq(sscanf(line + 7, "%127s", family), 1);

            for (i = 0; i < nseen; i++) {
                ck_assert_msg(strcmp(seen[i], family) != 0,
                              "family %s twice", family);
            }

            ck_assert(nseen < 64);
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", family);
            type[0] = '\0';
            continue;
        }

        if (strncmp(line, "# TYPE ", 7) == 0) {
            ck_assert_int_eq(sscanf(line + 7, "%127s %31s", name, type), 2);
            ck_assert_str_eq(name, family);
            ck_assert(strcmp(type, "gauge") == 0
                      || strcmp(type, "counter") == 0);

            n = strlen(family);
            ck_assert_msg((strcmp(type, "counter") == 0)
                          == (n > 6 && strcmp(family + n - 6, "_total") == 0),
                          "%s: a counter ends in _total, only a counter",
                          family);
            continue;
        }

        ck_assert_msg(line[0] != '#', "a comment: %s", line);
        ck_assert_msg(type[0], "a sample before its TYPE: %s", line);

        brace = strchr(line, '{');
        ck_assert_msg(brace != NULL, "no labels: %s", line);
        ck_assert_int_eq((int) (brace - line), (int) strlen(family));
        ck_assert(strncmp(line, family, brace - line) == 0);
        ck_assert_msg(strstr(line, "} ") != NULL, "no value: %s", line);
    }

    free(copy);
}


static void
cs_running_at_20(cs_decision_t *d)
{
    memset(d, 0, sizeof(cs_decision_t));
    cs_rollout_init(&d->next);

    d->next.status = CS_STATUS_RUNNING;
    d->next.stage = 2;                          /* 20_percent, hold 1h */
    d->next.weight = 2000;
    d->next.stage_started = NOW - 12500;
    snprintf(d->reason, sizeof(d->reason), "hold 12s/1h");
}


START_TEST(test_metrics_before_a_rollout_is_read)
{
    char    *text;
    size_t   len;

    text = cs_report_metrics(&report, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(len, strlen(text));

    cs_check_format(text);

    ck_assert(strstr(text, "canary_sidecar_info{split=\"api\","
                     "id=\"sidecar-a\",dry_run=\"0\"} 1\n") != NULL);
    ck_assert(cs_value(text, "canary_sidecar_leader{split=\"api\"}") == 0);
    ck_assert(cs_value(text, "canary_sidecar_decisions_total{split=\"api\","
                       "operation=\"traffic_promoted\"}") == 0);
    ck_assert(cs_value(text, "canary_sidecar_notifications_total{split="
                       "\"api\",result=\"failed\"}") == 0);

    /* nothing of a rollout it has not read */
    ck_assert(strstr(text, "canary_sidecar_stage") == NULL);
    ck_assert(strstr(text, "canary_sidecar_weight_percent") == NULL);
    ck_assert(strstr(text, "canary_sidecar_check_") == NULL);

    free(text);
}
END_TEST


START_TEST(test_metrics_of_a_rollout)
{
    char          *text;
    size_t         len, i;
    cs_decision_t  d;

    cs_running_at_20(&d);
    cs_report_decision(&report, NOW, &d.next, &d);

    report.leader = 1;
    report.steps = 7;
    report.step_at = NOW;
    report.step_ms = 3;
    report.redis_ok = 1;
    report.answered = 2;
    report.asked = 3;
    report.fetch_errors = 4;
    report.redis_errors = 5;
    notify.sent = 6;

    text = cs_report_metrics(&report, &len);
    ck_assert_ptr_nonnull(text);
    cs_check_format(text);

    ck_assert(cs_value(text, "canary_sidecar_stage{split=\"api\","
                       "stage=\"20_percent\"}") == 2);
    ck_assert(cs_value(text, "canary_sidecar_weight_percent{split=\"api\"}")
              == 20);
    ck_assert(cs_value(text, "canary_sidecar_hold_elapsed_seconds{split="
                       "\"api\"}") == 12.5);
    ck_assert(cs_value(text, "canary_sidecar_hold_required_seconds{split="
                       "\"api\"}") == 3600);
    ck_assert(cs_value(text, "canary_sidecar_rollout_status{split=\"api\","
                       "status=\"running\"}") == 1);
    ck_assert(cs_value(text, "canary_sidecar_rollout_status{split=\"api\","
                       "status=\"rolled_back\"}") == 0);
    ck_assert(cs_value(text, "canary_sidecar_leader{split=\"api\"}") == 1);
    ck_assert(cs_value(text, "canary_sidecar_steps_total{split=\"api\"}")
              == 7);
    ck_assert(cs_value(text, "canary_sidecar_last_step_timestamp_seconds"
                       "{split=\"api\"}") == 1795314065.123);
    ck_assert(cs_value(text, "canary_sidecar_last_step_duration_seconds"
                       "{split=\"api\"}") == 0.003);
    ck_assert(cs_value(text, "canary_sidecar_nginx_answered{split=\"api\"}")
              == 2);
    ck_assert(cs_value(text, "canary_sidecar_status_fetch_errors_total"
                       "{split=\"api\"}") == 4);
    ck_assert(cs_value(text, "canary_sidecar_redis_errors_total"
                       "{split=\"api\"}") == 5);
    ck_assert(cs_value(text, "canary_sidecar_notifications_total{split="
                       "\"api\",result=\"sent\"}") == 6);

    /* every status is there, one of them 1 */
    for (i = CS_STATUS_NEW; i <= CS_STATUS_ROLLED_BACK; i++) {
        ck_assert(strstr(text, cs_status_name((cs_status_e) i)) != NULL);
    }

    /* not judged yet: no checks */
    ck_assert(strstr(text, "canary_sidecar_check_") == NULL);

    free(text);
}
END_TEST


START_TEST(test_metrics_of_the_checks)
{
    char          *text;
    size_t         len;
    cs_decision_t  d;

    cs_running_at_20(&d);
    d.has_judgement = 1;
    d.j.checks[CS_CHECK_ERRORS].status = CS_FAIL;
    d.j.checks[CS_CHECK_ERRORS].p_value = 6e-05;
    d.j.checks[CS_CHECK_ERRORS].alpha = 0.00125;
    d.j.checks[CS_CHECK_LATENCY].status = CS_PASS;
    d.j.checks[CS_CHECK_LATENCY].p_value = 1;
    d.j.checks[CS_CHECK_AVAILABILITY].status = CS_NO_DATA;
    d.j.checks[CS_CHECK_AVAILABILITY].p_value = NAN;
    d.j.requests[CS_STABLE] = 13628;
    d.j.requests[CS_CANARY] = 1574;
    d.j.errors[CS_CANARY] = 26;

    cs_report_decision(&report, NOW, &d.next, &d);

    text = cs_report_metrics(&report, &len);
    ck_assert_ptr_nonnull(text);
    cs_check_format(text);

    ck_assert(cs_value(text, "canary_sidecar_check_status{split=\"api\","
                       "check=\"error_rate_percent\",status=\"FAIL\"}") == 1);
    ck_assert(cs_value(text, "canary_sidecar_check_status{split=\"api\","
                       "check=\"error_rate_percent\",status=\"PASS\"}") == 0);
    ck_assert(cs_value(text, "canary_sidecar_check_status{split=\"api\","
                       "check=\"latency_p99_ms\",status=\"PASS\"}") == 1);
    ck_assert(cs_value(text, "canary_sidecar_check_status{split=\"api\","
                       "check=\"availability_percent\",status=\"NO_DATA\"}")
              == 1);
    ck_assert(cs_value(text, "canary_sidecar_check_p_value{split=\"api\","
                       "check=\"error_rate_percent\"}") == 6e-05);
    ck_assert(cs_value(text, "canary_sidecar_check_alpha{split=\"api\","
                       "check=\"error_rate_percent\"}") == 0.00125);

    /* Prometheus has NaN; JSON has null */
    ck_assert(strstr(text, "canary_sidecar_check_p_value{split=\"api\","
                     "check=\"availability_percent\"} NaN\n") != NULL);

    ck_assert(cs_value(text, "canary_sidecar_stage_requests{split=\"api\","
                       "variant=\"canary\"}") == 1574);
    ck_assert(cs_value(text, "canary_sidecar_stage_errors{split=\"api\","
                       "variant=\"canary\"}") == 26);

    free(text);
}
END_TEST


START_TEST(test_metrics_escape_labels)
{
    char          *text;
    size_t         len;
    cs_report_t    r;

    ck_assert_int_eq(cs_report_init(&r, "api", "a\"b\\c\nd", &plan, 1,
                                     NULL), 0);

    text = cs_report_metrics(&r, &len);
    ck_assert_ptr_nonnull(text);
    cs_check_format(text);

    ck_assert(strstr(text, "id=\"a\\\"b\\\\c\\nd\",dry_run=\"1\"} 1\n")
              != NULL);

    /* no notifier: 0 */
    ck_assert(cs_value(text, "canary_sidecar_notifications_total{split="
                       "\"api\",result=\"sent\"}") == 0);

    free(text);
    cs_report_free(&r);
}
END_TEST


START_TEST(test_decisions_counted)
{
    int      k;
    char    *text;
    size_t   len;

    cs_report_written(&report, NGX_HTTP_CANARY_OP_PROMOTED);
    cs_report_written(&report, NGX_HTTP_CANARY_OP_PROMOTED);
    cs_report_written(&report, "rollback_step");

    for (k = 0; k < 67; k++) {
        cs_report_written(&report, NGX_HTTP_CANARY_OP_VIOLATION);
    }

    text = cs_report_metrics(&report, &len);
    ck_assert_ptr_nonnull(text);
    cs_check_format(text);

    ck_assert(cs_value(text, "canary_sidecar_decisions_total{split=\"api\","
                       "operation=\"traffic_promoted\"}") == 2);
    ck_assert(cs_value(text, "canary_sidecar_decisions_total{split=\"api\","
                       "operation=\"sli_violation_detected\"}") == 67);
    ck_assert(cs_value(text, "canary_sidecar_decisions_total{split=\"api\","
                       "operation=\"deployment_complete\"}") == 0);
    /* an operation it did not know of is counted too */
    ck_assert(cs_value(text, "canary_sidecar_decisions_total{split=\"api\","
                       "operation=\"rollback_step\"}") == 1);
    free(text);
}
END_TEST


START_TEST(test_receipts_from_the_stream)
{
    int            k;
    char          *text, **list;
    size_t         len;
    json_t        *root, *receipts;
    json_error_t   e;

    /* what Redis had: anyone may have written any of it */
    list = calloc(70, sizeof(char *));

    for (k = 0; k < 70; k++) {
        list[k] = malloc(32);
        snprintf(list[k], 32, "{\"n\":%d}", k);
    }

    snprintf(list[1], 32, "not json");
    snprintf(list[2], 32, "[1,2]");
    snprintf(list[3], 32, "{\"n\":3");

    cs_report_receipts(&report, list, 70, 9);
    free(list);

    ck_assert_uint_eq(report.nreceipts, CS_REPORT_RECEIPTS);
    ck_assert_int_eq(report.receipts_read, 1);
    ck_assert_uint_eq(report.receipts_generation, 9);

    text = cs_report_json(&report, &len);
    ck_assert_ptr_nonnull(text);
    root = json_loads(text, 0, &e);
    ck_assert_ptr_nonnull(root);

    /* 64 kept, three of them not a JSON object: left out */
    receipts = json_object_get(root, "receipts");
    ck_assert_uint_eq(json_array_size(receipts), CS_REPORT_RECEIPTS - 3);
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_array_get(receipts, 0), "n")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_array_get(receipts, 1), "n")), 4);

    json_decref(root);
    free(text);

    /* read again: the old ones go */
    list = calloc(1, sizeof(char *));
    list[0] = strdup("{\"n\":100}");
    cs_report_receipts(&report, list, 1, 10);
    free(list);

    ck_assert_uint_eq(report.nreceipts, 1);
    ck_assert_str_eq(report.receipts[0], "{\"n\":100}");
}
END_TEST


START_TEST(test_json_of_a_rollout)
{
    char          *text;
    size_t         len;
    json_t        *root, *ro, *j, *s;
    json_error_t   e;
    cs_decision_t  d;
    cs_metrics_t   m;

    cs_running_at_20(&d);
    d.has_judgement = 1;
    d.j.checks[CS_CHECK_AVAILABILITY].p_value = NAN;
    d.j.checks[CS_CHECK_ERRORS].p_value = 0.5;
    d.j.requests[CS_CANARY] = 10;

    cs_metrics_init(&m);
    m.v[CS_STABLE].requests = 100;
    m.v[CS_CANARY].requests = 20;
    m.v[CS_CANARY].errors_5xx = 1;

    cs_report_sample(&report, NOW - 1000, 2, &m);
    cs_report_sample(&report, NOW, 2, &m);
    cs_report_decision(&report, NOW, &d.next, &d);

    text = cs_report_json(&report, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(len, strlen(text));

    root = json_loads(text, 0, &e);
    ck_assert_msg(root != NULL, "%s: %s", e.text, text);

    ck_assert_str_eq(json_string_value(json_object_get(root, "split")),
                     "api");
    ck_assert_uint_eq(json_array_size(json_object_get(root, "stages")),
                      plan.nstages);

    ro = json_object_get(root, "rollout");
    ck_assert_str_eq(json_string_value(json_object_get(ro, "status")),
                     "running");
    ck_assert_str_eq(json_string_value(json_object_get(ro, "stage_name")),
                     "20_percent");
    ck_assert(json_real_value(json_object_get(ro, "weight")) == 20);
    ck_assert(json_real_value(json_object_get(ro, "hold_elapsed_seconds"))
              == 12.5);
    ck_assert_str_eq(json_string_value(json_object_get(ro, "reason")),
                     "hold 12s/1h");

    j = json_object_get(root, "judgement");
    ck_assert_uint_eq(json_array_size(json_object_get(j, "checks")),
                      CS_CHECKS);
    ck_assert(json_is_null(json_object_get(json_array_get(
        json_object_get(j, "checks"), CS_CHECK_AVAILABILITY), "p_value")));
    ck_assert(json_real_value(json_object_get(json_array_get(
        json_object_get(j, "checks"), CS_CHECK_ERRORS), "p_value")) == 0.5);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j,
                         "requests"), "canary")), 10);

    s = json_object_get(root, "samples");
    ck_assert_uint_eq(json_array_size(json_object_get(s, "at")), 2);
    ck_assert(json_real_value(json_array_get(json_object_get(json_object_get(
        s, "canary"), "error_percent"), 1)) == 5);
    ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(s,
                          "stable"), "p99_ms")), 2);

    json_decref(root);
    free(text);
}
END_TEST


/*
 * Text from Redis (who stopped the rollout: its "updated_by", as any
 * client wrote it; a note cut at its buffer in the middle of a UTF-8
 * character; a receipt written by hand) is not always UTF-8, which
 * JSON must be: such bytes become U+FFFD, and nothing is left out of
 * the page's JSON (before, the whole "rollout" and such receipts went).
 */

START_TEST(test_json_of_text_that_is_not_utf8)
{
    char          *text, **list;
    size_t         len;
    json_t        *root, *ro, *receipts;
    json_error_t   e;
    cs_decision_t  d;

    cs_running_at_20(&d);
    snprintf(d.next.stopped_by, sizeof(d.next.stopped_by),
             "state rolled_back by op\xe9 (generation 4)");
    /* "caf\xc3\xa9" cut after its first byte, then a stray \xff */
    snprintf(d.note, sizeof(d.note), "paused by caf\xc3");
    snprintf(d.reason, sizeof(d.reason), "\xff ok \xe2\x82\xac");
    cs_report_decision(&report, NOW, &d.next, &d);

    snprintf(report.holder, sizeof(report.holder), "b\xe9");
    snprintf(report.redis_err, sizeof(report.redis_err), "x\xc0\xafy");

    list = calloc(2, sizeof(char *));
    list[0] = strdup("{\"n\":0,\"reason\":\"caf\xe9 \xed\xa0\x80\"}");
    list[1] = strdup("{\"n\":1,\"by\":\"op\xc3\xa9\"}");
    cs_report_receipts(&report, list, 2, 3);
    free(list);

    text = cs_report_json(&report, &len);
    ck_assert_ptr_nonnull(text);

    root = json_loads(text, 0, &e);
    ck_assert_msg(root != NULL, "%s: %s", e.text, text);

    ro = json_object_get(root, "rollout");
    ck_assert_msg(json_is_object(ro), "rollout: %s", text);
    ck_assert_str_eq(json_string_value(json_object_get(ro, "stopped_by")),
                     "state rolled_back by op\xef\xbf\xbd (generation 4)");
    ck_assert_str_eq(json_string_value(json_object_get(ro, "reason")),
                     "paused by caf\xef\xbf\xbd; \xef\xbf\xbd ok "
                     "\xe2\x82\xac");
    ck_assert_str_eq(json_string_value(json_object_get(ro, "stage_name")),
                     "20_percent");
    ck_assert_str_eq(json_string_value(json_object_get(root, "holder")),
                     "b\xef\xbf\xbd");
    ck_assert_str_eq(json_string_value(json_object_get(root,
                                                       "redis_error")),
                     "x\xef\xbf\xbd\xef\xbf\xbdy");

    receipts = json_object_get(root, "receipts");
    ck_assert_uint_eq(json_array_size(receipts), 2);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(receipts, 0), "reason")),
                     "caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(receipts, 1), "by")),
                     "op\xc3\xa9");

    json_decref(root);
    free(text);
}
END_TEST


START_TEST(test_samples_quantiles_and_bounds)
{
    size_t        i;
    cs_metrics_t  m;

    cs_metrics_init(&m);
    m.v[CS_STABLE].requests = 100;
    m.v[CS_STABLE].counts[40] = 100;
    m.v[CS_CANARY].requests = 100;
    m.v[CS_CANARY].counts[40] = 50;
    m.v[CS_CANARY].counts[120] = 50;

    cs_report_sample(&report, NOW, 1, &m);

    ck_assert_uint_eq(report.nsamples, 1);
    ck_assert(report.samples[0].p50_ms[CS_STABLE]
              == cs_hist_quantile_ms(m.v[CS_STABLE].counts, 0.5));
    ck_assert(report.samples[0].p50_ms[CS_CANARY]
              == report.samples[0].p50_ms[CS_STABLE]);
    ck_assert(report.samples[0].p95_ms[CS_CANARY]
              > report.samples[0].p95_ms[CS_STABLE]);
    ck_assert(report.samples[0].p99_ms[CS_CANARY]
              == cs_hist_quantile_ms(m.v[CS_CANARY].counts, 0.99));
    ck_assert(report.samples[0].error_pct[CS_CANARY] == 0);

    /* a full stage keeps every other sample, then one each 2 steps */
    for (i = 1; i < CS_REPORT_SAMPLES; i++) {
        cs_report_sample(&report, NOW + (int64_t) i, 1, &m);
    }

    ck_assert_uint_eq(report.nsamples, CS_REPORT_SAMPLES);

    cs_report_sample(&report, NOW + CS_REPORT_SAMPLES, 1, &m);
    ck_assert_uint_eq(report.nsamples, CS_REPORT_SAMPLES / 2 + 1);
    ck_assert_uint_eq(report.every, 2);
    ck_assert(report.samples[0].at == NOW + 1);
    ck_assert(report.samples[CS_REPORT_SAMPLES / 2].at
              == NOW + CS_REPORT_SAMPLES);

    cs_report_sample(&report, NOW + CS_REPORT_SAMPLES + 1, 1, &m);
    ck_assert_uint_eq(report.nsamples, CS_REPORT_SAMPLES / 2 + 1);
    cs_report_sample(&report, NOW + CS_REPORT_SAMPLES + 2, 1, &m);
    ck_assert_uint_eq(report.nsamples, CS_REPORT_SAMPLES / 2 + 2);

    /* a new stage starts them over */
    cs_report_sample(&report, NOW + 5000, 2, &m);
    ck_assert_uint_eq(report.nsamples, 1);
    ck_assert_uint_eq(report.every, 1);
    ck_assert_uint_eq(report.sample_stage, 2);
}
END_TEST


START_TEST(test_healthy_within_three_intervals)
{
    char  buf[256];

    /* the default plan: 1s interval */
    ck_assert_int_eq(cs_report_healthy(&report, 1000, buf, sizeof(buf)), 0);
    ck_assert(strncmp(buf, "stuck:", 6) == 0);

    report.steps = 1;
    report.turned = 10000;
    report.step_ms = 40;

    ck_assert_int_eq(cs_report_healthy(&report, 13000, buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "ok: the last step began 3s ago (within 3s); it "
                     "took 40ms\n");

    ck_assert_int_eq(cs_report_healthy(&report, 13001, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "stuck: the last step began more than 3s ago, "
                     "over 3 "
                     "intervals (3s); it took 40ms\n");
}
END_TEST


START_TEST(test_ready_needs_redis_and_an_nginx)
{
    char  buf[512];

    ck_assert_int_eq(cs_report_ready(&report, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "not ready: Redis: not reached yet; no nginx "
                     "answered (0 of 0) at the last reading of the fleet\n");

    report.redis_ok = 1;
    report.asked = 3;
    ck_assert_int_eq(cs_report_ready(&report, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "not ready: no nginx answered (0 of 3) at the "
                     "last reading of the fleet\n");

    report.answered = 1;
    ck_assert_int_eq(cs_report_ready(&report, buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "ready: Redis reached, 1 of 3 nginx answered\n");

    report.redis_ok = 0;
    snprintf(report.redis_err, sizeof(report.redis_err),
             "127.0.0.1:6379: connect: Connection refused");
    ck_assert_int_eq(cs_report_ready(&report, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "not ready: Redis: 127.0.0.1:6379: connect: "
                     "Connection refused\n");
}
END_TEST


UNIT_MAIN("sidecar_report", cs_setup, cs_teardown, 0)
