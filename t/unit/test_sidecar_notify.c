
/*
 * canary-sidecar notifications: the plan's "notify" (and each bad one
 * failing with its place), the backoff schedule, the signature, the
 * Slack text, the origin logged for a URL.  The deliveries themselves
 * are tested against a real receiver: t/sidecar_notify*.t.
 */


#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include <jansson.h>

#include "plan.h"
#include "notify.h"


static char  cs_err[512];
static char  cs_secret[64];


#define CS_STAGES                                                             \
    "\"stages\":[{\"name\":\"a\",\"weight\":0,\"hold\":\"1s\"},"              \
    "{\"name\":\"b\",\"weight\":100,\"hold\":\"0s\"}]"


static int
cs_parse(cs_plan_t *plan, const char *notify)
{
    char  text[4096];

    snprintf(text, sizeof(text), "{" CS_STAGES ",\"notify\":%s}", notify);

    cs_err[0] = '\0';

    return cs_plan_parse(plan, text, strlen(text), "plan.json", cs_err,
                         sizeof(cs_err));
}


static void
cs_bad(const char *notify, const char *w1, const char *w2)
{
    cs_plan_t  plan;

    ck_assert_msg(cs_parse(&plan, notify) == -1, "accepted: %s", notify);
    ck_assert_msg(strstr(cs_err, "plan.json: ") == cs_err, "%s", cs_err);
    ck_assert_msg(strstr(cs_err, w1) != NULL, "\"%s\" not in: %s", w1,
                  cs_err);
    ck_assert_msg(w2 == NULL || strstr(cs_err, w2) != NULL,
                  "\"%s\" not in: %s", w2, cs_err);
}


static void
cs_setup(void)
{
    int    fd;
    FILE  *f;

    snprintf(cs_secret, sizeof(cs_secret), "/tmp/cs-notify-XXXXXX");

    fd = mkstemp(cs_secret);
    ck_assert_int_ge(fd, 0);

    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs("Jefe\r\n", f);
    fclose(f);
}


static void
cs_teardown(void)
{
    unlink(cs_secret);
}


START_TEST(test_plan_notify)
{
    char       text[512];
    cs_plan_t  plan;

    snprintf(text, sizeof(text),
             "[{\"url\":\"https://hooks.example.com/x\",\"format\":\"slack\","
             "\"events\":[\"rollback_executed\",\"rollout_paused\"]},"
             "{\"url\":\"http://127.0.0.1:9/h\",\"secret_file\":\"%s\"}]",
             cs_secret);

    ck_assert_msg(cs_parse(&plan, text) == 0, "%s", cs_err);

    ck_assert_uint_eq(plan.nnotify, 2);
    ck_assert_str_eq(plan.notify[0].url, "https://hooks.example.com/x");
    ck_assert_int_eq(plan.notify[0].format, CS_NOTIFY_SLACK);
    ck_assert_uint_eq(plan.notify[0].nevents, 2);
    ck_assert_ptr_null(plan.notify[0].secret);

    ck_assert_int_eq(cs_notify_wants(&plan.notify[0], "rollback_executed"),
                     1);
    ck_assert_int_eq(cs_notify_wants(&plan.notify[0], "rollout_paused"), 1);
    ck_assert_int_eq(cs_notify_wants(&plan.notify[0], "traffic_promoted"),
                     0);

    /* json by default, every event, the secret without its line break */
    ck_assert_int_eq(plan.notify[1].format, CS_NOTIFY_JSON);
    ck_assert_ptr_null(plan.notify[1].events);
    ck_assert_int_eq(cs_notify_wants(&plan.notify[1], "rollout_halted"), 1);
    ck_assert_uint_eq(plan.notify[1].secret_len, 4);
    ck_assert_int_eq(memcmp(plan.notify[1].secret, "Jefe", 4), 0);

    cs_plan_free(&plan);
    ck_assert_uint_eq(plan.nnotify, 0);
    ck_assert_ptr_null(plan.notify);

    /* none: no receiver */
    ck_assert_msg(cs_parse(&plan, "[]") == 0, "%s", cs_err);
    ck_assert_uint_eq(plan.nnotify, 0);
    cs_plan_free(&plan);

    /* every operation the sidecar writes may be asked for */
    ck_assert_msg(cs_parse(&plan, "[{\"url\":\"http://h/\",\"events\":["
        "\"rollout_started\",\"canary_phase_complete\",\"traffic_promoted\","
        "\"awaiting_resume\",\"deployment_complete\","
        "\"sli_violation_detected\",\"rollback_executed\","
        "\"rollout_paused\",\"rollout_halted\",\"halt_cleared\"]}]") == 0,
        "%s", cs_err);
    ck_assert_uint_eq(plan.notify[0].nevents, 10);
    cs_plan_free(&plan);
}
END_TEST


START_TEST(test_plan_notify_errors)
{
    char   text[512];
    FILE  *f;

    cs_bad("{}", "\"notify\" is not an array", NULL);
    cs_bad("[1]", "notify[0] is not an object", NULL);
    cs_bad("[{\"url\":\"http://h/\",\"secret\":\"x\"}]",
           "unknown field \"secret\" in notify[0]", NULL);
    cs_bad("[{\"format\":\"json\"}]", "notify[0].url is missing", NULL);
    cs_bad("[{\"url\":\"http://h/\"},{\"url\":\"ftp://h/x\"}]",
           "notify[1].url \"ftp://h/...\"", "http:// or https://");
    cs_bad("[{\"url\":\"https://\"}]", "notify[0].url", "with a host");
    cs_bad("[{\"url\":\"http://h/a b\"}]", "notify[0].url", "spaces");
    cs_bad("[{\"url\":\"http://h/\",\"format\":\"xml\"}]",
           "notify[0].format", "\"xml\" is not \"json\" or \"slack\"");
    cs_bad("[{\"url\":\"http://h/\",\"events\":\"rollback_executed\"}]",
           "notify[0].events is not a list", NULL);
    cs_bad("[{\"url\":\"http://h/\",\"events\":[]}]",
           "notify[0].events is not a list", NULL);
    cs_bad("[{\"url\":\"http://h/\",\"events\":[\"rollback_executed\","
           "\"rollback_done\"]}]",
           "notify[0].events[1]: unknown operation \"rollback_done\"",
           "rollout_started");
    cs_bad("[{\"url\":\"http://h/\",\"events\":[\"guard_tripped\"]}]",
           "notify[0].events[0]: \"guard_tripped\" is written by the "
           "module's guard", "not by canary-sidecar");
    cs_bad("[{\"url\":\"http://h/\",\"events\":[\"weight_set\"]}]",
           "\"weight_set\" is written by canary-ctl set-weight", NULL);
    cs_bad("[{\"url\":\"http://h/\",\"events\":[7]}]",
           "notify[0].events[0] is not a string", NULL);
    cs_bad("[{\"url\":\"http://h/\",\"secret_file\":"
           "\"/nonexistent/secret\"}]",
           "notify[0].secret_file /nonexistent/secret: ",
           "No such file or directory");
    cs_bad("[{\"url\":\"http://h/\",\"secret_file\":\"/tmp\"}]",
           "notify[0].secret_file /tmp: ", NULL);
    cs_bad("[{\"url\":\"http://h/\",\"secret_file\":\"\"}]",
           "notify[0].secret_file is not a file name", NULL);

    snprintf(text, sizeof(text), "[{\"url\":\"http://h/\","
             "\"secret_file\":\"%s\"}]", cs_secret);
    f = fopen(cs_secret, "w");
    ck_assert_ptr_nonnull(f);
    fputs("\n", f);
    fclose(f);
    cs_bad(text, "notify[0].secret_file", "empty");

    cs_bad("[{\"url\":\"http://1/\"},{\"url\":\"http://2/\"},"
           "{\"url\":\"http://3/\"},{\"url\":\"http://4/\"},"
           "{\"url\":\"http://5/\"},{\"url\":\"http://6/\"},"
           "{\"url\":\"http://7/\"},{\"url\":\"http://8/\"},"
           "{\"url\":\"http://9/\"}]", "notify: 9 receivers, at most 8",
           NULL);
}
END_TEST


/*
 * A URL libcurl cannot use is a plan error, not ten minutes of failed
 * deliveries at the first event; and a bad URL's error shows its scheme
 * and host only: not its password, not a Slack webhook's path.
 */

START_TEST(test_plan_notify_url)
{
    size_t      i;
    cs_plan_t   plan;
    char        text[2200], url[2100];

    static const char  *bad[] = {
        "http://@/", "http://:80/", "http://[::1/", "http://h:99999/",
        "http://user:pw@/x", "https://?x", "http://#f", NULL
    };

    static const char  *good[] = {
        "http://h", "https://h?x", "http://127.0.0.1:9/h",
        "https://u:p@hooks.example.com:8443/a/b?c=d#e", "http://[::1]:9/",
        NULL
    };

    for (i = 0; bad[i]; i++) {
        snprintf(text, sizeof(text), "[{\"url\":\"%s\"}]", bad[i]);
        cs_bad(text, "notify[0].url", "with a host");
    }

    for (i = 0; good[i]; i++) {
        snprintf(text, sizeof(text), "[{\"url\":\"%s\"}]", good[i]);
        ck_assert_msg(cs_parse(&plan, text) == 0, "%s: %s", good[i], cs_err);
        cs_plan_free(&plan);
    }

    /* a space in a URL with a password, a line break after a webhook */
    cs_bad("[{\"url\":\"https://deploy:hunter2@hooks.example.com/a b\"}]",
           "notify[0].url \"https://hooks.example.com/...\"", "spaces");
    ck_assert_msg(strstr(cs_err, "hunter2") == NULL, "%s", cs_err);

    cs_bad("[{\"url\":\"https://hooks.slack.com/services/T0AAAAAAA/"
           "B0BBBBBBB/sEcReTtOkEn0123456789xyz\\n\"}]",
           "notify[0].url \"https://hooks.slack.com/...\"",
           "control character at byte 77");
    ck_assert_msg(strstr(cs_err, "B0BBBBBBB") == NULL
                  && strstr(cs_err, "sEcReT") == NULL, "%s", cs_err);

    cs_bad("[{\"url\":\"ftp://u:hunter2@h/x\"}]",
           "notify[0].url \"ftp://h/...\"", "http:// or https://");
    ck_assert_msg(strstr(cs_err, "hunter2") == NULL, "%s", cs_err);

    /* 2048 bytes is the most */
    memset(url, 'a', sizeof(url));
    memcpy(url, "http://h/", 9);
    url[2048] = '\0';
    snprintf(text, sizeof(text), "[{\"url\":\"%s\"}]", url);
    ck_assert_msg(cs_parse(&plan, text) == 0, "%s", cs_err);
    cs_plan_free(&plan);

    url[2048] = 'a';
    url[2049] = '\0';
    snprintf(text, sizeof(text), "[{\"url\":\"%s\"}]", url);
    cs_bad(text, "notify[0].url \"http://h/...\": 2049 bytes",
           "at most 2048");
}
END_TEST


static int64_t  cs_notify_last_attempt;


/* attempts until given up, each failing "takes" ms after it starts */

static unsigned
cs_notify_attempts(int64_t takes)
{
    int64_t   now, at;
    unsigned  a;

    now = 1000000;          /* the event */
    at = now;

    for (a = 1; a < 1000; a++) {
        cs_notify_last_attempt = at - 1000000;
        at = cs_notify_retry_at(1000000, at + takes, a);

        if (at < 0) {
            return a;
        }
    }

    return 0;
}


/* 1s, 2s, 4s ... 30s: 24 attempts in the 10 minutes */

START_TEST(test_backoff)
{
    int64_t   t;
    unsigned  a;

    ck_assert_int_eq(cs_notify_backoff(1), 0);
    ck_assert_int_eq(cs_notify_backoff(2), 1000);
    ck_assert_int_eq(cs_notify_backoff(3), 2000);
    ck_assert_int_eq(cs_notify_backoff(4), 4000);
    ck_assert_int_eq(cs_notify_backoff(5), 8000);
    ck_assert_int_eq(cs_notify_backoff(6), 16000);
    ck_assert_int_eq(cs_notify_backoff(7), 30000);
    ck_assert_int_eq(cs_notify_backoff(8), 30000);
    ck_assert_int_eq(cs_notify_backoff(1000), 30000);

    /* the attempts at 0, 1, 3, 7, 15, 31, 61s ... (t/sidecar_notify_down.t
     * brings its receiver back between 31 and 61) */
    t = 0;

    for (a = 2; a <= 7; a++) {
        t += cs_notify_backoff(a);
    }

    ck_assert_int_eq(t, 61000);

    for (a = 2, t = 0; t + cs_notify_backoff(a) <= CS_NOTIFY_GIVE_UP_MS;
         a++)
    {
        t += cs_notify_backoff(a);
    }

    ck_assert_uint_eq(a - 1, 24);

    /* a receiver that always fails at once: 24 attempts, the last at
     * 571s, then given up; one that takes 10s to fail each time (a
     * timeout) fewer */
    ck_assert_uint_eq(cs_notify_attempts(0), 24);
    ck_assert_int_eq(cs_notify_last_attempt, 571000);
    ck_assert_uint_eq(cs_notify_attempts(10000), 18);
    ck_assert_int_le(cs_notify_last_attempt, CS_NOTIFY_GIVE_UP_MS);

    /* an event older than 10 minutes is given up at its first failure */
    ck_assert_int_eq(cs_notify_retry_at(0, CS_NOTIFY_GIVE_UP_MS, 1), -1);
    ck_assert_int_eq(cs_notify_retry_at(0, 0, 1), 1000);
}
END_TEST


/* RFC 4231, test case 2; and an empty body */

START_TEST(test_signature)
{
    char  sig[CS_NOTIFY_SIG_LEN + 1];

    cs_notify_signature((const unsigned char *) "Jefe", 4,
                        "what do ya want for nothing?", 28, sig);

    ck_assert_str_eq(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f08"
                          "9d2739839dec58b964ec3843");

    cs_notify_signature((const unsigned char *) "key", 3, "", 0, sig);

    ck_assert_str_eq(sig, "sha256=5d5d139563c95b5967b9bd9a8c9b233a9dedb450"
                          "72794cd232dc1b74832607d0");
}
END_TEST


static const char  *cs_receipt =
    "{\"receipt_id\":\"5f0b8c1e-8d4a-4c59-9a43-0f4b1f6b2d7e\","
    "\"operation\":\"rollback_executed\",\"split\":\"api\","
    "\"from_stage\":\"20_percent\",\"to_stage\":\"20_percent\","
    "\"from_weight\":20,\"to_weight\":0,\"state\":\"rolled_back\","
    "\"sli_checks\":{\"latency_p99_ms\":{\"status\":\"PASS\",\"canary\":1,"
    "\"threshold\":6},\"error_rate_percent\":{\"status\":\"FAIL\","
    "\"canary\":1.65,\"threshold\":0.98}},"
    "\"reason\":\"ROLLBACK: error_rate_percent 1.65% > 0.98% <&>\"}";


static char *
cs_slack_text(const char *receipt)
{
    char        *body, *text;
    json_t      *j;

    body = cs_notify_slack(receipt);
    ck_assert_ptr_nonnull(body);

    j = json_loads(body, 0, NULL);
    free(body);

    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(json_object_size(j), 1);

    text = strdup(json_string_value(json_object_get(j, "text")));
    json_decref(j);

    ck_assert_ptr_nonnull(text);

    return text;
}


START_TEST(test_slack)
{
    char  *text;

    /* today's sidecar receipt: the FAIL checks, Slack's escapes */
    text = cs_slack_text(cs_receipt);

    ck_assert_str_eq(text,
        "*canary api*: rollback_executed\n"
        "stage: 20_percent\n"
        "weight: 20% -> 0%\n"
        "failed checks: error_rate_percent (canary 1.65, threshold 0.98)\n"
        "reason: ROLLBACK: error_rate_percent 1.65% &gt; 0.98% "
        "&lt;&amp;&gt;\n"
        "receipt: 5f0b8c1e-8d4a-4c59-9a43-0f4b1f6b2d7e");
    free(text);

    /* a receipt with release, stage and failed_checks: those */
    text = cs_slack_text(
        "{\"operation\":\"rollback_executed\",\"split\":\"api\","
        "\"release\":{\"stable\":\"v1.2.2\",\"canary\":\"v1.2.3\"},"
        "\"stage\":\"20_percent\",\"from_stage\":\"20_percent\","
        "\"to_stage\":\"20_percent\",\"from_weight\":20,\"to_weight\":0,"
        "\"failed_checks\":[\"latency_p95\",{\"check\":\"error_rate\"}],"
        "\"sli_checks\":{\"x\":{\"status\":\"FAIL\"}}}");

    ck_assert_str_eq(text,
        "*canary api*: rollback_executed\n"
        "release: v1.2.3 (canary), v1.2.2 (stable)\n"
        "stage: 20_percent\n"
        "weight: 20% -> 0%\n"
        "failed checks: latency_p95, error_rate");
    free(text);

    /* a receipt of few fields; weights of two decimals */
    text = cs_slack_text("{\"operation\":\"traffic_promoted\","
                         "\"split\":\"web\",\"from_stage\":\"a\","
                         "\"to_stage\":\"b\",\"from_weight\":0.25,"
                         "\"to_weight\":12.5,\"release\":\"v7\"}");

    ck_assert_str_eq(text,
        "*canary web*: traffic_promoted\n"
        "release: v7\n"
        "stage: a -> b\n"
        "weight: 0.25% -> 12.5%");
    free(text);

    /* a stage as an object with a name */
    text = cs_slack_text("{\"operation\":\"rollout_paused\","
                         "\"split\":\"web\",\"stage\":{\"name\":\"s1\","
                         "\"index\":1}}");

    ck_assert_str_eq(text, "*canary web*: rollout_paused\nstage: s1");
    free(text);

    ck_assert_ptr_null(cs_notify_slack("[1]"));
    ck_assert_ptr_null(cs_notify_slack("not json"));
}
END_TEST


START_TEST(test_url_origin)
{
    char  buf[128];

    ck_assert_str_eq(cs_notify_url_origin(
        "https://hooks.slack.com/services/T000/B000/XXXX", buf, sizeof(buf)),
        "https://hooks.slack.com");
    ck_assert_str_eq(cs_notify_url_origin("http://127.0.0.1:8080/h?k=v",
                                          buf, sizeof(buf)),
                     "http://127.0.0.1:8080");
    ck_assert_str_eq(cs_notify_url_origin("https://u:p@w@h.example:1?x",
                                          buf, sizeof(buf)),
                     "https://h.example:1");
    ck_assert_str_eq(cs_notify_url_origin("http://h", buf, sizeof(buf)),
                     "http://h");
}
END_TEST


START_TEST(test_stats)
{
    char               buf[160];
    cs_notify_stats_t  st;

    cs_notify_stats(NULL, &st);
    ck_assert_uint_eq(st.sent + st.failed + st.retries + st.queued, 0);

    st.sent = 5;
    st.failed = 1;
    st.retries = 12;
    st.queued = 3;

    ck_assert_str_eq(cs_notify_stats_format(&st, buf, sizeof(buf)),
        "{\"sent\":5,\"failed\":1,\"retries\":12,\"queued\":3}");
}
END_TEST


/*
 * The queue, without a loop to drive it: receipts of the operations a
 * receiver asked for are queued, 256 at most (then the oldest goes, and
 * counts as failed); at exit what is left is given up.
 */

START_TEST(test_queue)
{
    char               receipt[256];
    size_t             i;
    cs_plan_t          plan;
    cs_notify_t       *n;
    cs_notify_stats_t  st;

    ck_assert_msg(cs_parse(&plan, "[{\"url\":\"http://127.0.0.1:9/x\","
                           "\"events\":[\"rollback_executed\"]}]") == 0,
                  "%s", cs_err);

    n = cs_notify_create(&plan, "api", cs_err, sizeof(cs_err));
    ck_assert_ptr_nonnull(n);

    cs_notify_receipt(n, "{\"receipt_id\":\"r\",\"operation\":"
                         "\"traffic_promoted\",\"split\":\"api\"}");
    cs_notify_stats(n, &st);
    ck_assert_uint_eq(st.queued, 0);

    for (i = 0; i < CS_NOTIFY_QUEUE_MAX + 44; i++) {
        snprintf(receipt, sizeof(receipt), "{\"receipt_id\":\"r%zu\","
                 "\"operation\":\"rollback_executed\",\"split\":"
                 "\"api\"}", i);
        cs_notify_receipt(n, receipt);
    }

    cs_notify_stats(n, &st);
    ck_assert_uint_eq(st.queued, CS_NOTIFY_QUEUE_MAX);
    ck_assert_uint_eq(st.failed, 44);
    ck_assert_uint_eq(st.sent, 0);

    cs_notify_finish(n, 0);

    cs_notify_stats(n, &st);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.failed, CS_NOTIFY_QUEUE_MAX + 44);

    cs_notify_destroy(n);
    cs_plan_free(&plan);

    /* no receiver: nothing to do, and no error */
    ck_assert_msg(cs_parse(&plan, "[]") == 0, "%s", cs_err);
    ck_assert_ptr_null(cs_notify_create(&plan, "api", cs_err,
                                        sizeof(cs_err)));
    ck_assert_str_eq(cs_err, "");
    cs_plan_free(&plan);
}
END_TEST


UNIT_MAIN("sidecar_notify", cs_setup, cs_teardown, 0)
