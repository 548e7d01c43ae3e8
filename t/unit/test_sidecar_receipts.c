
/*
 * canary-sidecar receipts (the governor runbook's fields) and reading
 * the split's hash and the sidecar's own state as Redis returns them.
 */


#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include <jansson.h>

#include "receipts.h"
#include "redis.h"


/* Redis' clock in the state tests: a minute after the stage started */
#define NOW  (1795314065123LL + 60000)


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


/* a rollback at 20%: 5% errors vs 0.2% */

static void
cs_rollback(cs_decision_t *d)
{
    size_t           b;
    cs_metrics_t     m;
    cs_rollout_t     ro;
    cs_split_view_t  view;

    cs_metrics_init(&m);
    m.instances = 2;
    m.asked = 2;
    m.window_seconds = 30;
    m.v[CS_STABLE].requests = 5000;
    m.v[CS_STABLE].errors_5xx = 10;
    m.v[CS_CANARY].requests = 1000;
    m.v[CS_CANARY].errors_5xx = 40;
    m.v[CS_CANARY].upstream_errors = 10;

    for (b = 100; b < 110; b++) {
        m.v[CS_STABLE].counts[b] = 500;
        m.v[CS_CANARY].counts[b] = 100;
    }

    /* the stage has seen just this much */
    m.delta[CS_STABLE] = m.v[CS_STABLE];
    m.delta[CS_CANARY] = m.v[CS_CANARY];
    m.has_delta = 1;

    cs_rollout_init(&ro);
    ro.status = CS_STATUS_RUNNING;
    ro.stage = 2;
    ro.weight = 2000;
    ro.generation = 6;
    ro.seen = 6;
    ro.violation_since = 1;

    memset(&view, 0, sizeof(cs_split_view_t));
    view.exists = 1;
    view.has_weight = 1;
    view.weight = 2000;
    view.generation = 6;
    strcpy(view.state, "running");

    cs_decide(&plan, &view, &ro, &m, 3600 * 1000, d);

    ck_assert_int_eq(d->action, CS_ACT_ROLLBACK);
}


START_TEST(test_receipt_fields)
{
    char              id[CS_UUID_LEN + 1], *s;
    json_t           *r, *c;
    json_error_t      jerr;
    cs_decision_t     d;
    cs_receipt_ctx_t  ctx;

    cs_rollback(&d);

    memset(&ctx, 0, sizeof(cs_receipt_ctx_t));
    ctx.split = "api";
    ctx.by = "sidecar-a";
    ctx.now = 1795314065000LL;
    ctx.decision_ms = 3.25;
    ctx.generation = 7;

    s = cs_receipt_json(&plan, &d, 1, &ctx, id);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(strchr(s, '\n'));

    r = json_loads(s, 0, &jerr);
    ck_assert_msg(r != NULL, "%s: %s", s, jerr.text);

    ck_assert_str_eq(json_string_value(json_object_get(r, "receipt_id")),
                     id);
    ck_assert_str_eq(json_string_value(json_object_get(r, "timestamp")),
                     "2026-11-22T02:21:05Z");
    ck_assert_str_eq(json_string_value(json_object_get(r, "operation")),
                     "rollback_executed");
    ck_assert_str_eq(json_string_value(json_object_get(r, "split")), "api");
    ck_assert_str_eq(json_string_value(json_object_get(r, "from_stage")),
                     "20_percent");
    ck_assert_str_eq(json_string_value(json_object_get(r, "to_stage")),
                     "20_percent");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "from_weight")),
                     20);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "to_weight")),
                     0);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "generation")),
                     7);
    ck_assert_str_eq(json_string_value(json_object_get(r, "by")),
                     "sidecar-a");
    ck_assert_int_eq(json_integer_value(json_object_get(r,
                                                        "window_seconds")),
                     30);
    ck_assert_double_eq(json_number_value(json_object_get(r, "decision_ms")),
                        3.25);
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(r, "requests"), "canary")), 1000);
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(r, "errors"), "canary")), 50);
    ck_assert_msg(strstr(json_string_value(json_object_get(r, "reason")),
                         "ROLLBACK") != NULL, "%s", s);

    c = json_object_get(json_object_get(r, "sli_checks"),
                        "error_rate_percent");
    ck_assert_str_eq(json_string_value(json_object_get(c, "status")),
                     "FAIL");
    ck_assert_double_eq_tol(json_number_value(json_object_get(c, "canary")),
                            5, 1e-9);
    ck_assert_double_eq_tol(json_number_value(json_object_get(c,
                                                              "baseline")),
                            0.2, 1e-9);
    ck_assert_double_eq_tol(json_number_value(json_object_get(c,
                                                              "threshold")),
                            0.4, 1e-9);
    ck_assert(json_number_value(json_object_get(c, "p_value")) < 1e-10);

    c = json_object_get(json_object_get(r, "sli_checks"), "latency_p99_ms");
    ck_assert_str_eq(json_string_value(json_object_get(c, "status")),
                     "PASS");

    c = json_object_get(json_object_get(r, "sli_checks"),
                        "availability_percent");
    ck_assert_double_eq_tol(json_number_value(json_object_get(c, "canary")),
                            95, 1e-9);
    ck_assert_double_eq_tol(json_number_value(json_object_get(c,
                                                              "threshold")),
                            99.9, 1e-9);

    json_decref(r);
    free(s);

    /* the first of the two: sli_violation_detected, its own id */
    s = cs_receipt_json(&plan, &d, 0, &ctx, id);
    ck_assert_ptr_nonnull(strstr(s, "\"operation\":"
                                    "\"sli_violation_detected\""));
    free(s);
}
END_TEST


/* the rollout's fields, and a rollback's */

START_TEST(test_receipt_rollout_fields)
{
    char              id[CS_UUID_LEN + 1], *s;
    json_t           *r, *f;
    json_error_t      jerr;
    cs_decision_t     d;
    cs_receipt_ctx_t  ctx;

    cs_rollback(&d);

    memset(&ctx, 0, sizeof(cs_receipt_ctx_t));
    ctx.split = "api";
    ctx.by = "sidecar-a";
    ctx.now = 3600 * 1000;
    ctx.decision_ms = 3.25;
    ctx.generation = 7;
    ctx.receipt_id = "0b5e2f3c-1111-4222-8333-444455556666";
    ctx.evidence_key = "canary:api:evidence:0b5e2f3c-1111-4222-8333-"
                       "444455556666";

    strcpy(plan.release_stable, "v1.2.2");
    strcpy(plan.release_canary, "v1.2.3");

    s = cs_receipt_json(&plan, &d, 1, &ctx, id);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(id, ctx.receipt_id);

    r = json_loads(s, 0, &jerr);
    ck_assert_msg(r != NULL, "%s: %s", s, jerr.text);

    f = json_object_get(r, "release");
    ck_assert_str_eq(json_string_value(json_object_get(f, "stable")),
                     "v1.2.2");
    ck_assert_str_eq(json_string_value(json_object_get(f, "canary")),
                     "v1.2.3");
    ck_assert_str_eq(json_string_value(json_object_get(r, "stage")),
                     "20_percent");
    ck_assert_int_eq(json_integer_value(json_object_get(r,
                         "duration_at_stage_seconds")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r,
                         "rollbacks_triggered")), 1);
    ck_assert(json_is_integer(json_object_get(r, "stages_completed")));
    ck_assert(json_is_null(json_object_get(r, "rollout_elapsed_seconds")));
    ck_assert_str_eq(json_string_value(json_object_get(r, "evidence_key")),
                     ctx.evidence_key);

    /* violation_since 1 ms, the write at 1h + 3.25 ms */
    ck_assert_str_eq(json_string_value(json_object_get(r, "detected_at")),
                     "1970-01-01T00:00:00Z");
    ck_assert_double_eq(json_number_value(json_object_get(r,
                            "rollback_duration_ms")), 3600002);

    f = json_object_get(r, "failed_checks");
    ck_assert_uint_eq(json_array_size(f), 2);
    ck_assert_str_eq(json_string_value(json_array_get(f, 0)),
                     "error_rate_percent");
    ck_assert_str_eq(json_string_value(json_array_get(f, 1)),
                     "availability_percent");
    ck_assert_ptr_null(json_object_get(r, "summary"));

    json_decref(r);
    free(s);

    /* no release in the plan: null */
    plan.release_stable[0] = '\0';
    plan.release_canary[0] = '\0';
    ctx.evidence_key = NULL;

    s = cs_receipt_json(&plan, &d, 0, &ctx, id);
    ck_assert_ptr_nonnull(strstr(s, "\"release\":null"));
    ck_assert_ptr_nonnull(strstr(s, "\"evidence_key\":null"));
    free(s);
}
END_TEST


START_TEST(test_receipt_without_metrics)
{
    char              id[CS_UUID_LEN + 1], *s;
    cs_metrics_t      m;
    cs_decision_t     d;
    cs_rollout_t      ro;
    cs_split_view_t   view;
    cs_receipt_ctx_t  ctx;

    cs_rollout_init(&ro);
    memset(&view, 0, sizeof(cs_split_view_t));
    view.enabled = -1;

    /* an nginx answered (a rollout never starts blind), with nothing
     * judged yet */
    cs_metrics_init(&m);
    m.instances = 1;
    m.asked = 1;

    cs_decide(&plan, &view, &ro, &m, 1000, &d);
    ck_assert_int_eq(d.action, CS_ACT_START);

    memset(&ctx, 0, sizeof(cs_receipt_ctx_t));
    ctx.split = "api";
    ctx.by = "x";
    ctx.now = 0;
    ctx.decision_ms = 0;
    ctx.generation = 1;

    s = cs_receipt_json(&plan, &d, 0, &ctx, id);

    ck_assert_ptr_nonnull(strstr(s, "\"from_stage\":null"));
    ck_assert_ptr_nonnull(strstr(s, "\"to_stage\":\"canary\""));
    ck_assert_ptr_nonnull(strstr(s, "\"status\":\"NO_DATA\""));
    ck_assert_ptr_nonnull(strstr(s, "\"timestamp\":"
                                    "\"1970-01-01T00:00:00Z\""));
    free(s);
}
END_TEST


START_TEST(test_uuid)
{
    size_t  i;
    char    a[CS_UUID_LEN + 1], b[CS_UUID_LEN + 1];

    cs_uuid(a);
    cs_uuid(b);

    ck_assert_uint_eq(strlen(a), 36);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(a[14], '4');
    ck_assert_ptr_nonnull(strchr("89ab", a[19]));

    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            ck_assert_int_eq(a[i], '-');

        } else {
            ck_assert_ptr_nonnull(strchr("0123456789abcdef", a[i]));
        }
    }
}
END_TEST


START_TEST(test_receipts_file_appends_lines)
{
    FILE  *f;
    char   path[] = "/tmp/test-sidecar-receipts-XXXXXX", err[256];
    char   line[64], *r[2];
    int    fd, n;

    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);

    r[0] = "{\"a\":1}";
    r[1] = "{\"b\":2}";

    ck_assert_int_eq(cs_receipts_append(path, r, 2, err, sizeof(err)), 0);
    ck_assert_int_eq(cs_receipts_append(path, r, 1, err, sizeof(err)), 0);

    f = fopen(path, "r");
    n = 0;

    while (fgets(line, sizeof(line), f)) {
        ck_assert_str_eq(line, n == 1 ? "{\"b\":2}\n" : "{\"a\":1}\n");
        n++;
    }

    fclose(f);
    unlink(path);

    ck_assert_int_eq(n, 3);

    ck_assert_int_eq(cs_receipts_append("/nonexistent/dir/x", r, 1, err,
                                        sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/dir/x"));
}
END_TEST


/* HGETALL replies built by hand */

static redisReply *
cs_hash(const char **kv)
{
    size_t       i, n;
    redisReply  *r, *e;

    for (n = 0; kv[n]; n++) {
        /* void */
    }

    r = calloc(1, sizeof(redisReply));
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(redisReply *));

    for (i = 0; i < n; i++) {
        e = calloc(1, sizeof(redisReply));
        e->type = REDIS_REPLY_STRING;
        e->str = strdup(kv[i]);
        e->len = strlen(kv[i]);
        r->element[i] = e;
    }

    return r;
}


START_TEST(test_split_hash)
{
    redisReply       *h;
    cs_split_view_t   v;

    static const char  *kv[] = {
        "weight", "20.5", "enabled", "0", "generation", "42",
        "state", "paused", "updated_by", "canary-ctl:ops",
        "updated_at", "2026-11-22T02:10:11Z", NULL
    };

    static const char  *none[] = { NULL };

    h = cs_hash(kv);
    cs_view_from_hash(&v, h);
    freeReplyObject(h);

    ck_assert_int_eq(v.exists, 1);
    ck_assert_int_eq(v.has_weight, 1);
    ck_assert_uint_eq(v.weight, 2050);
    ck_assert_int_eq(v.enabled, 0);
    ck_assert_uint_eq(v.generation, 42);
    ck_assert_str_eq(v.state, "paused");
    ck_assert_str_eq(v.updated_by, "canary-ctl:ops");

    h = cs_hash(none);
    cs_view_from_hash(&v, h);
    freeReplyObject(h);

    ck_assert_int_eq(v.exists, 0);
    ck_assert_int_eq(v.has_weight, 0);
    ck_assert_int_eq(v.enabled, -1);
    ck_assert_uint_eq(v.generation, 0);
}
END_TEST


START_TEST(test_sidecar_state)
{
    char           err[256], warn[256];
    redisReply    *h;
    cs_rollout_t   ro;

    static const char  *kv[] = {
        "status", "awaiting_resume", "stage", "3", "stage_name",
        "50_percent", "stage_started", "1795314065123", "weight", "50",
        "generation", "9", "seen", "11", "violation_since", "0",
        "approved", "-1", "last_receipt", "abc", "stopped_by", "",
        NULL
    };

    static const char  *moved[] = {
        "status", "running", "stage", "0", "stage_name", "20_percent",
        "generation", "3", "approved", "4", NULL
    };

    static const char  *gone[] = {
        "status", "running", "stage", "1", "stage_name", "7_percent",
        NULL
    };

    /* this version's: the rollout's own counts */
    static const char  *counted[] = {
        "status", "running", "stage", "3", "stage_name", "50_percent",
        "stage_started", "1795314065123", "rollout_started",
        "1795314000000", "stages_completed", "2", "rollbacks", "1",
        "stages_log", "{\"name\":\"canary\"}", NULL
    };

    static const char  *none[] = { NULL };

    /* a rollout that does not start: why it holds, nothing else */
    static const char  *held[] = {
        "status", "new", "stage", "0", "stage_name", "canary",
        "generation", "0", "seen", "0",
        "held", "not starting: the split is disabled (kill switch)",
        NULL
    };

    h = cs_hash(kv);
    ck_assert_int_eq(cs_rollout_from_hash(&ro, &plan, h, NOW, err,
                                          sizeof(err), warn, sizeof(warn)),
                     0);
    freeReplyObject(h);

    ck_assert_int_eq(ro.status, CS_STATUS_AWAITING_RESUME);
    ck_assert_uint_eq(ro.stage, 3);
    ck_assert_int_eq(ro.stage_started, 1795314065123LL);
    ck_assert_uint_eq(ro.weight, 5000);
    ck_assert_uint_eq(ro.generation, 9);
    ck_assert_uint_eq(ro.seen, 11);
    ck_assert_int_eq(ro.approved, -1);
    ck_assert_str_eq(ro.last_receipt, "abc");

    /* written by the version before: the stages before this one are
     * completed, the start and the rollbacks unknown */
    ck_assert_uint_eq(ro.stages_completed, 3);
    ck_assert_int_eq(ro.rollout_started, 0);
    ck_assert_uint_eq(ro.rollbacks, 0);
    ck_assert_str_eq(ro.stages_log, "");

    h = cs_hash(counted);
    ck_assert_int_eq(cs_rollout_from_hash(&ro, &plan, h, NOW, err,
                                          sizeof(err), warn, sizeof(warn)),
                     0);
    freeReplyObject(h);
    ck_assert_uint_eq(ro.stages_completed, 2);
    ck_assert_int_eq(ro.rollout_started, 1795314000000LL);
    ck_assert_uint_eq(ro.rollbacks, 1);
    ck_assert_str_eq(ro.stages_log, "{\"name\":\"canary\"}");

    /* the plan changed: the stage is found by its name */
    h = cs_hash(moved);
    ck_assert_int_eq(cs_rollout_from_hash(&ro, &plan, h, NOW, err,
                                          sizeof(err), warn, sizeof(warn)),
                     0);
    freeReplyObject(h);
    ck_assert_uint_eq(ro.stage, 2);
    ck_assert_int_eq(ro.approved, -1);
    ck_assert_uint_eq(ro.seen, 3);
    ck_assert_uint_eq(ro.stages_completed, 2);

    h = cs_hash(gone);
    ck_assert_int_eq(cs_rollout_from_hash(&ro, &plan, h, NOW, err,
                                          sizeof(err), warn, sizeof(warn)),
                     -1);
    freeReplyObject(h);
    ck_assert_ptr_nonnull(strstr(err, "\"7_percent\""));

    h = cs_hash(none);
    ck_assert_int_eq(cs_rollout_from_hash(&ro, &plan, h, NOW, err,
                                          sizeof(err), warn, sizeof(warn)),
                     0);
    freeReplyObject(h);
    ck_assert_int_eq(ro.status, CS_STATUS_NEW);
    ck_assert_str_eq(ro.held, "");

    h = cs_hash(held);
    ck_assert_int_eq(cs_rollout_from_hash(&ro, &plan, h, NOW, err,
                                          sizeof(err), warn, sizeof(warn)),
                     0);
    freeReplyObject(h);
    ck_assert_int_eq(ro.status, CS_STATUS_NEW);
    ck_assert_str_eq(ro.held,
                     "not starting: the split is disabled (kill switch)");
}
END_TEST


/* a state whose times are not 0 to a day ahead is refused, by name */

START_TEST(test_sidecar_state_times_out_of_range_are_refused)
{
    char           err[256], warn[256];
    size_t         i;
    redisReply    *h;
    cs_rollout_t   ro;

    static const char  *kv[] = {
        "status", "running", "stage", "1", "stage_name", "5_percent",
        "stage_started", NULL, "violation_since", NULL, NULL
    };

    static const char  *bad[] = {
        "-9223372036854775808", "-1", "9223372036854775807",
        "99999999999999999999", "1795314065123x", " 1795314065123",
        "+1795314065123", "", "0x10", "1e12",
        "1795400525124",                /* a day and 1 ms ahead */
        NULL
    };

    static const char  *good[] = {
        "0", "1", "1795314065123", "1795400525123", NULL
    };

    for (i = 0; bad[i]; i++) {
        /* in either field, the other one good */
        kv[7] = bad[i];
        kv[9] = "0";
        h = cs_hash(kv);
        ck_assert_msg(cs_rollout_from_hash(&ro, &plan, h, NOW, err,
                                           sizeof(err), warn, sizeof(warn)) == -1,
                      "stage_started \"%s\" accepted", bad[i]);
        freeReplyObject(h);
        ck_assert_ptr_nonnull(strstr(err, "stage_started"));

        kv[7] = "1795314065123";
        kv[9] = bad[i];
        h = cs_hash(kv);
        ck_assert_msg(cs_rollout_from_hash(&ro, &plan, h, NOW, err,
                                           sizeof(err), warn, sizeof(warn)) == -1,
                      "violation_since \"%s\" accepted", bad[i]);
        freeReplyObject(h);
        ck_assert_ptr_nonnull(strstr(err, "violation_since"));
    }

    for (i = 0; good[i]; i++) {
        kv[7] = good[i];
        kv[9] = good[i];
        h = cs_hash(kv);
        ck_assert_msg(cs_rollout_from_hash(&ro, &plan, h, NOW, err,
                                           sizeof(err), warn, sizeof(warn)) == 0,
                      "\"%s\" refused: %s", good[i], err);
        freeReplyObject(h);
        ck_assert_int_eq(ro.stage_started, strtoll(good[i], NULL, 10));
        ck_assert_int_eq(ro.violation_since, ro.stage_started);
    }
}
END_TEST


/* what hiredis reads "*N" into: the element vectors a reply may take */

static int
cs_read_reply(const char *resp, size_t len, int *refused)
{
    int                 rc;
    void               *reply;
    redisReader        *rr;
    cs_redis_reader_t   lim;

    rr = redisReaderCreate();
    ck_assert_ptr_nonnull(rr);
    cs_redis_reader_limit(rr, &lim);

    reply = NULL;
    rc = redisReaderFeed(rr, resp, len);

    if (rc == REDIS_OK) {
        rc = redisReaderGetReply(rr, &reply);
    }

    if (reply) {
        freeReplyObject(reply);
    }

    redisReaderFree(rr);

    *refused = lim.refused;

    return rc == REDIS_OK && reply != NULL ? 0 : -1;
}


START_TEST(test_redis_replies_of_huge_arrays_are_refused)
{
    int      refused;
    char    *resp;
    size_t   i, n;

    /* 6.4 GB of element vector, announced in 12 bytes */
    ck_assert_int_eq(cs_read_reply("*800000000\r\n", 12, &refused), -1);
    ck_assert_int_eq(refused, 1);

    /* the limit counts every array of a reply */
    ck_assert_int_eq(cs_read_reply("*2\r\n*1\r\n:1\r\n*65534\r\n", 20,
                                   &refused), -1);
    ck_assert_int_eq(refused, 1);

    /* a reply of the limit exactly, and an ordinary one */
    n = CS_REDIS_ELEMENTS_MAX;
    resp = malloc(16 + 4 * n);
    ck_assert_ptr_nonnull(resp);

    i = (size_t) sprintf(resp, "*%zu\r\n", n);

    while (n--) {
        memcpy(resp + i, ":1\r\n", 4);
        i += 4;
    }

    ck_assert_int_eq(cs_read_reply(resp, i, &refused), 0);
    ck_assert_int_eq(refused, 0);
    free(resp);

    ck_assert_int_eq(cs_read_reply("*2\r\n$1\r\na\r\n*1\r\n:1\r\n", 19,
                                   &refused), 0);
    ck_assert_int_eq(refused, 0);
}
END_TEST


/*
 * The summary of the longest plan: 32 stages of 48-character names,
 * every check judged, figures as large as they come.  Each entry is
 * about 560 bytes: the whole rollout is some 18 KB of stages_log.
 */

START_TEST(test_summary_of_the_longest_plan)
{
    char              id[CS_UUID_LEN + 1], *s;
    size_t            i, k;
    json_t           *r, *st, *e;
    json_error_t      jerr;
    cs_rollout_t      ro;
    cs_decision_t     d;
    cs_receipt_ctx_t  ctx;

    cs_rollback(&d);

    plan.nstages = CS_STAGES_MAX;

    for (i = 0; i < CS_STAGES_MAX; i++) {
        snprintf(plan.stages[i].name, sizeof(plan.stages[i].name),
                 "stage_%02zu_%.*s", i, CS_STAGE_NAME_MAX - 9,
                 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
        plan.stages[i].weight = (uint32_t) (i * 312 + 1);
        plan.stages[i].hold = 86400 * 1000;
    }

    for (k = 0; k < CS_CHECKS; k++) {
        d.j.checks[k].status = CS_PASS;
        d.j.checks[k].p_value = 1.23456789e-05;
    }

    d.j.requests[CS_STABLE] = 12345678901234ULL;
    d.j.requests[CS_CANARY] = 12345678901234ULL;
    d.j.errors[CS_STABLE] = 1234567890123ULL;
    d.j.errors[CS_CANARY] = 1234567890123ULL;
    d.j.p99_ms[CS_STABLE] = 1.23456789e+06;
    d.j.p99_ms[CS_CANARY] = 1.23456789e+06;
    d.has_judgement = 1;
    d.next.stages_log[0] = '\0';

    cs_rollout_init(&ro);
    ro.status = CS_STATUS_RUNNING;

    /* promoted out of each stage but the last, which completes */
    for (i = 0; i < CS_STAGES_MAX; i++) {
        ro.stage = i;
        ro.stage_started = 1795314065123LL + (int64_t) i * 86400 * 1000;
        d.action = i + 1 < CS_STAGES_MAX ? CS_ACT_PROMOTE : CS_ACT_COMPLETE;
        d.to_stage = (int) (i + 1 < CS_STAGES_MAX ? i + 1 : i);
        cs_stages_log_add(&plan, &ro, &d, ro.stage_started + 86400 * 1000);
    }

    d.nops = 1;
    d.ops[0] = NGX_HTTP_CANARY_OP_COMPLETE;
    d.next.rollout_started = 1795314065123LL;

    memset(&ctx, 0, sizeof(cs_receipt_ctx_t));
    ctx.split = "api";
    ctx.by = "sidecar-a";
    ctx.now = 1795314065123LL + (int64_t) CS_STAGES_MAX * 86400 * 1000;
    ctx.generation = 40;

    s = cs_receipt_json(&plan, &d, 0, &ctx, id);
    ck_assert_ptr_nonnull(s);

    r = json_loads(s, 0, &jerr);
    ck_assert_msg(r != NULL, "%s", jerr.text);

    st = json_object_get(json_object_get(r, "summary"), "stages");
    ck_assert_msg(json_array_size(st) == CS_STAGES_MAX,
                  "%zu of %d stages in the summary (stages_log %zu bytes)",
                  json_array_size(st), CS_STAGES_MAX,
                  strlen(d.next.stages_log));

    e = json_array_get(st, CS_STAGES_MAX - 1);
    ck_assert_str_eq(json_string_value(json_object_get(e, "name")),
                     plan.stages[CS_STAGES_MAX - 1].name);
    ck_assert_str_eq(json_string_value(json_object_get(e, "result")),
                     "complete");

    json_decref(r);
    free(s);

    /* an operator who moved it back 40 times: the oldest entries go, the
     * summary still ends with the completion */
    for (i = 0; i < 40 + CS_STAGES_MAX; i++) {
        ro.stage = i < 40 ? 0 : i - 40;
        d.action = ro.stage + 1 < CS_STAGES_MAX ? CS_ACT_PROMOTE
                                                : CS_ACT_COMPLETE;
        d.to_stage = (int) (ro.stage + 1 < CS_STAGES_MAX ? ro.stage + 1
                                                         : ro.stage);
        cs_stages_log_add(&plan, &ro, &d, ro.stage_started + 1000);
    }

    s = cs_receipt_json(&plan, &d, 0, &ctx, id);
    r = json_loads(s, 0, &jerr);
    ck_assert_msg(r != NULL, "%s", jerr.text);

    st = json_object_get(json_object_get(r, "summary"), "stages");
    ck_assert_uint_ge(json_array_size(st), CS_STAGES_MAX);
    e = json_array_get(st, json_array_size(st) - 1);
    ck_assert_str_eq(json_string_value(json_object_get(e, "name")),
                     plan.stages[CS_STAGES_MAX - 1].name);
    ck_assert_str_eq(json_string_value(json_object_get(e, "result")),
                     "complete");
    e = json_array_get(st, json_array_size(st) - CS_STAGES_MAX);
    ck_assert_str_eq(json_string_value(json_object_get(e, "name")),
                     plan.stages[0].name);

    json_decref(r);
    free(s);
}
END_TEST


/* a stages_log written by someone else: only entries of its shape */

START_TEST(test_summary_of_a_hostile_stages_log)
{
    char              id[CS_UUID_LEN + 1], *s;
    size_t            i;
    json_t           *r, *st;
    json_error_t      jerr;
    cs_decision_t     d;
    cs_receipt_ctx_t  ctx;

    static const char  *logs[][2] = {
        { "1,\"s\",null,[],{\"name\":\"x\"},"
          "{\"name\":\"a\",\"weight\":5,\"started\":"
          "\"2026-11-22T02:10:11Z\",\"duration_seconds\":60,"
          "\"result\":\"promoted\",\"requests\":null,\"errors\":null,"
          "\"p99_ms\":{\"stable\":1.5,\"canary\":null},"
          "\"p_values\":{\"latency_p99_ms\":0.5}},"
          "{\"name\":\"b\",\"weight\":500,\"started\":"
          "\"2026-11-22T02:10:11Z\",\"duration_seconds\":60,"
          "\"result\":\"promoted\",\"requests\":null,\"errors\":null,"
          "\"p99_ms\":null,\"p_values\":null},"
          "{\"name\":\"c\",\"weight\":5,\"started\":\"yesterday at 5\","
          "\"duration_seconds\":60,\"result\":\"promoted\","
          "\"requests\":null,\"errors\":null,\"p99_ms\":null,"
          "\"p_values\":{\"x\":\"low\"}},"
          "{\"name\":\"d\",\"weight\":5,\"started\":"
          "\"2026-11-22T02:10:11Z\",\"duration_seconds\":-1,"
          "\"result\":\"promoted\",\"requests\":{\"stable\":\"7\"},"
          "\"errors\":null,\"p99_ms\":null,\"p_values\":null}", "a" },
        { "{\"name\":\"a\"}],\"x\":[1", "" },
        { "not json", "" },
    };

    cs_rollback(&d);
    d.nops = 1;
    d.ops[0] = NGX_HTTP_CANARY_OP_COMPLETE;

    memset(&ctx, 0, sizeof(cs_receipt_ctx_t));
    ctx.split = "api";
    ctx.by = "sidecar-a";
    ctx.now = 3600 * 1000;
    ctx.generation = 7;

    for (i = 0; i < sizeof(logs) / sizeof(logs[0]); i++) {
        snprintf(d.next.stages_log, sizeof(d.next.stages_log), "%s",
                 logs[i][0]);

        s = cs_receipt_json(&plan, &d, 0, &ctx, id);
        ck_assert_ptr_nonnull(s);
        r = json_loads(s, 0, &jerr);
        ck_assert_msg(r != NULL, "%s", jerr.text);

        st = json_object_get(json_object_get(r, "summary"), "stages");
        ck_assert(json_is_array(st));

        if (logs[i][1][0]) {
            ck_assert_msg(json_array_size(st) == 1, "%s", s);
            ck_assert_str_eq(json_string_value(json_object_get(
                json_array_get(st, 0), "name")), logs[i][1]);

        } else {
            ck_assert_msg(json_array_size(st) == 0, "%s", s);
        }

        json_decref(r);
        free(s);
    }
}
END_TEST


UNIT_MAIN("sidecar_receipts", cs_setup, cs_teardown, 0)
