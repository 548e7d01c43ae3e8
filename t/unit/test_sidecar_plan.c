
/*
 * canary-sidecar plans: the default, a full plan, durations, weights,
 * and every bad plan failing with a message that names the problem.
 */


#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include "plan.h"


static char  cs_err[512];


static int
cs_parse(cs_plan_t *plan, const char *text)
{
    cs_err[0] = '\0';

    return cs_plan_parse(plan, text, strlen(text), "plan.json", cs_err,
                         sizeof(cs_err));
}


/* the plan fails, and the message has every one of the words */

static void
cs_bad(const char *text, const char *w1, const char *w2)
{
    cs_plan_t  plan;

    ck_assert_msg(cs_parse(&plan, text) == -1, "accepted: %s", text);
    ck_assert_msg(strstr(cs_err, "plan.json: ") == cs_err, "%s", cs_err);
    ck_assert_msg(strstr(cs_err, w1) != NULL, "\"%s\" not in: %s", w1,
                  cs_err);
    ck_assert_msg(w2 == NULL || strstr(cs_err, w2) != NULL,
                  "\"%s\" not in: %s", w2, cs_err);
}


#define CS_STAGE(name, weight, hold)                                          \
    "{\"name\":\"" name "\",\"weight\":" weight ",\"hold\":" hold "}"


START_TEST(test_default_plan_is_the_governors)
{
    cs_plan_t  plan;

    ck_assert_int_eq(cs_plan_default(&plan), 0);

    ck_assert_uint_eq(plan.nstages, 5);
    ck_assert_str_eq(plan.stages[0].name, "canary");
    ck_assert_uint_eq(plan.stages[0].weight, 0);
    ck_assert_int_eq(plan.stages[0].hold, 30 * 60 * 1000);
    ck_assert_str_eq(plan.stages[1].name, "5_percent");
    ck_assert_uint_eq(plan.stages[1].weight, 500);
    ck_assert_uint_eq(plan.stages[2].weight, 2000);
    ck_assert_int_eq(plan.stages[2].hold, 3600 * 1000);
    ck_assert_uint_eq(plan.stages[3].weight, 5000);
    ck_assert_uint_eq(plan.stages[4].weight, 10000);
    ck_assert_int_eq(plan.stages[4].hold, 0);
    ck_assert_int_eq(plan.stages[4].manual, 1);
    ck_assert_int_eq(plan.stages[3].manual, 0);

    ck_assert_uint_eq(plan.npins, 1);
    ck_assert_str_eq(plan.pins[0], "test-tenant-abc123");

    ck_assert_double_eq(plan.slo.latency_p99_ratio_max, 1.5);
    ck_assert_double_eq(plan.slo.error_rate_ratio_max, 2.0);
    ck_assert_double_eq(plan.slo.error_rate_max, 5);
    ck_assert_double_eq(plan.slo.availability_min, 99.9);
    ck_assert_uint_eq(plan.slo.min_requests, 50);
    ck_assert_double_eq(plan.slo.confidence, 0.99);

    ck_assert_int_eq(plan.interval, 1000);
    ck_assert_int_eq(plan.violation_for, 5000);
    ck_assert_int_eq(plan.window, 30000);
    ck_assert_int_eq(plan.on_violation, CS_ON_VIOLATION_ROLLBACK);

    cs_plan_free(&plan);
}
END_TEST


START_TEST(test_full_plan)
{
    cs_plan_t  plan;

    ck_assert_msg(cs_parse(&plan,
        "{\"pins\": [\"t1\", \"t2\"],"
        " \"stages\": ["
        "  {\"name\": \"canary\", \"weight\": 0, \"hold\": \"500ms\"},"
        "  {\"name\": \"half\", \"weight\": 0.25, \"hold\": 90},"
        "  {\"name\": \"some\", \"weight\": 12.5, \"hold\": \"1h30m\"},"
        "  {\"name\": \"all\", \"weight\": 100, \"hold\": 1.5,"
        "   \"manual\": true}],"
        " \"slo\": {\"latency_p99_ratio_max\": 2,"
        "   \"latency_p99_min_delta_ms\": 0,"
        "   \"error_rate_ratio_max\": 3, \"error_rate_max\": 1,"
        "   \"availability_min\": 99, \"min_requests\": 200,"
        "   \"confidence\": 0.999},"
        " \"interval\": \"2s\", \"violation_for\": 0,"
        " \"window\": \"60s\", \"on_violation\": \"pause\"}") == 0,
        "%s", cs_err);

    ck_assert_uint_eq(plan.nstages, 4);
    ck_assert_int_eq(plan.stages[0].hold, 500);
    ck_assert_uint_eq(plan.stages[1].weight, 25);
    ck_assert_int_eq(plan.stages[1].hold, 90000);
    ck_assert_uint_eq(plan.stages[2].weight, 1250);
    ck_assert_int_eq(plan.stages[2].hold, 5400000);
    ck_assert_int_eq(plan.stages[3].hold, 1500);
    ck_assert_int_eq(plan.stages[3].manual, 1);
    ck_assert_uint_eq(plan.npins, 2);
    ck_assert_str_eq(plan.pins[1], "t2");
    ck_assert_double_eq(plan.slo.latency_p99_ratio_max, 2);
    ck_assert_double_eq(plan.slo.latency_p99_min_delta_ms, 0);
    ck_assert_uint_eq(plan.slo.min_requests, 200);
    ck_assert_double_eq(plan.slo.confidence, 0.999);
    ck_assert_int_eq(plan.interval, 2000);
    ck_assert_int_eq(plan.violation_for, 0);
    ck_assert_int_eq(plan.window, 60000);
    ck_assert_int_eq(plan.on_violation, CS_ON_VIOLATION_PAUSE);

    /* echoed as written: "1h30m" and 90 (seconds), not one format */
    ck_assert_str_eq(plan.said.hold[0], "500ms");
    ck_assert_str_eq(plan.said.hold[1], "90s");
    ck_assert_str_eq(plan.said.hold[2], "1h30m");
    ck_assert_str_eq(plan.said.hold[3], "1.5s");
    ck_assert_str_eq(plan.said.interval, "2s");
    ck_assert_str_eq(plan.said.violation_for, "0s");
    ck_assert_str_eq(plan.said.window, "60s");
    ck_assert_str_eq(plan.said.lag, "");

    cs_plan_free(&plan);
}
END_TEST


START_TEST(test_unset_fields_take_defaults)
{
    cs_plan_t  plan;

    ck_assert_int_eq(cs_parse(&plan, "{\"stages\": ["
                              CS_STAGE("only", "10", "\"1m\"") "]}"), 0);

    ck_assert_uint_eq(plan.npins, 0);
    ck_assert_uint_eq(plan.slo.min_requests, 50);
    ck_assert_int_eq(plan.violation_for, 5000);
    ck_assert_int_eq(plan.window, 30000);
    ck_assert_int_eq(plan.stages[0].manual, 0);

    cs_plan_free(&plan);
}
END_TEST


/* JSON has no comments: fields named "//..." are, at every level */

START_TEST(test_comment_fields_are_ignored)
{
    cs_plan_t  plan;

    ck_assert_msg(cs_parse(&plan, "{\"//\": \"a plan\", \"//pins\": 1,"
                           " \"stages\": [{\"name\": \"a\", \"weight\": 10,"
                           " \"hold\": \"1m\", \"//\": {\"any\": [1]}}],"
                           " \"slo\": {\"//min_requests\": \"x\","
                           " \"min_requests\": 7}}") == 0, "%s", cs_err);

    ck_assert_uint_eq(plan.nstages, 1);
    ck_assert_uint_eq(plan.slo.min_requests, 7);
    cs_plan_free(&plan);

    /* one slash is a name like any other */
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "], \"/x\": 1}",
           "unknown field \"/x\"", "top level");
}
END_TEST


START_TEST(test_bad_plans_name_the_problem)
{
    /* not JSON: jansson's line and column */
    cs_bad("{\"stages\": [\n  {\"name\": \"a\",}\n]}", "not JSON",
           "line 2, column");
    cs_bad("", "not JSON", NULL);
    cs_bad("[]", "JSON object", NULL);

    /* stages */
    cs_bad("{}", "\"stages\" is missing", NULL);
    cs_bad("{\"slo\": {}}", "\"stages\" is missing", NULL);
    cs_bad("{\"stages\": []}", "\"stages\" is empty", NULL);
    cs_bad("{\"stages\": {}}", "\"stages\" is not an array", NULL);
    cs_bad("{\"stages\": [1]}", "stages[0] is not an object", NULL);

    /* weights */
    cs_bad("{\"stages\": [" CS_STAGE("a", "150", "\"1s\"") "]}",
           "stages[0].weight", "150 is not a percent");
    cs_bad("{\"stages\": [" CS_STAGE("a", "-5", "\"1s\"") "]}",
           "stages[0].weight", "-5 is not a percent");
    cs_bad("{\"stages\": [" CS_STAGE("a", "\"5\"", "\"1s\"") "]}",
           "stages[0].weight is not a number", NULL);
    cs_bad("{\"stages\": [" CS_STAGE("a", "1.234", "\"1s\"") "]}",
           "stages[0].weight", "two decimals");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") ","
           CS_STAGE("b", "20", "\"1s\"") "," CS_STAGE("c", "20", "\"1s\"")
           "]}", "stages[2].weight 20 is not above stages[1].weight 20",
           "must increase");
    cs_bad("{\"stages\": [" CS_STAGE("a", "50", "\"1s\"") ","
           CS_STAGE("b", "5", "\"1s\"") "]}", "stages[1].weight 5",
           "must increase");
    cs_bad("{\"stages\": [{\"name\": \"a\", \"hold\": \"1s\"}]}",
           "stages[0].weight is missing", NULL);

    /* unknown fields: the field and where */
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "], \"extra\": 1}",
           "unknown field \"extra\"", "top level");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") ","
           "{\"name\": \"b\", \"weight\": 9, \"hold\": \"1s\", "
           "\"holdd\": \"2s\"}]}", "unknown field \"holdd\"", "stages[1]");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"slo\": {\"p99\": 2}}", "unknown field \"p99\"", "in slo");

    /* durations */
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"30 minutes\"") "]}",
           "stages[0].hold", "\"30 minutes\" is not a duration");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1m1h\"") "]}",
           "stages[0].hold", "not a duration");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "-1") "]}",
           "stages[0].hold", "not a duration");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "true") "]}",
           "stages[0].hold is not a duration", NULL);
    cs_bad("{\"stages\": [{\"name\": \"a\", \"weight\": 5}]}",
           "stages[0].hold is missing", NULL);
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"interval\": \"10ms\"}", "interval", "out of range");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"window\": \"90s\"}", "window",
           "90s is out of range 1s to 60s");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"window\": \"1m30s\"}", "window",
           "1m30s is out of range 1s to 60s");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"window\": 90}", "window", "90s is out of range 1s to 60s");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"window\": 1.5}", "window", "1.5s is not whole seconds");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"violation_for\": \"5x\"}", "violation_for",
           "not a duration");

    /* the rest */
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") ","
           CS_STAGE("a", "9", "\"1s\"") "]}", "stages[1].name \"a\"",
           "already");
    cs_bad("{\"stages\": [" CS_STAGE("a b", "5", "\"1s\"") "]}",
           "stages[0].name", "letters");
    cs_bad("{\"stages\": [{\"name\": \"a\", \"weight\": 5, \"hold\": "
           "\"1s\", \"manual\": true}]}", "stages[0].manual", NULL);
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"on_violation\": \"panic\"}",
           "on_violation: \"panic\" is not \"rollback\" or \"pause\"",
           NULL);
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"on_violation\": 1}",
           "on_violation: 1 is not \"rollback\" or \"pause\"", NULL);
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"lag\": \"10s\", \"lag_hold\": 5}",
           "lag_hold: 5s is shorter than lag (10s)", NULL);
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"slo\": {\"min_requests\": 0}}", "slo.min_requests",
           "out of range");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"slo\": {\"min_requests\": 2.5}}", "slo.min_requests",
           "whole");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"slo\": {\"error_rate_max\": 0}}", "slo.error_rate_max",
           "out of range");
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"slo\": {\"confidence\": 1}}", "slo.confidence", NULL);
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"pins\": [\"ok\", 5]}", "pins[1] is not a string", NULL);
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"pins\": \"t1\"}", "\"pins\" is not an array", NULL);
    cs_bad("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
           " \"stages\": []}", "not JSON", "duplicate");
}
END_TEST


/*
 * A plan's value echoed in its error is one line: a newline in it would
 * forge a log line ("...\n2026-... api ROLLBACK") for whoever reads the
 * log; control bytes are escaped, the rest echoed as written.
 */

/*
 * A number of seconds is echoed as the plan wrote it: a 14-day hold of
 * 1209600 is "1209600s", not "1.2096e+06s"
 */

START_TEST(test_numbers_of_seconds_said_as_written)
{
    cs_plan_t  plan;

    ck_assert_msg(cs_parse(&plan, "{\"stages\": ["
                           CS_STAGE("a", "5", "1209600") ","
                           CS_STAGE("b", "9", "2592000") ","
                           CS_STAGE("c", "20", "0.25") ","
                           CS_STAGE("d", "50", "604800") "],"
                           " \"violation_for\": 86400}") == 0,
                  "%s", cs_err);

    ck_assert_str_eq(plan.said.hold[0], "1209600s");
    ck_assert_str_eq(plan.said.hold[1], "2592000s");
    ck_assert_str_eq(plan.said.hold[2], "0.25s");
    ck_assert_str_eq(plan.said.hold[3], "604800s");
    ck_assert_str_eq(plan.said.violation_for, "86400s");
}
END_TEST


START_TEST(test_bad_values_echo_on_one_line)
{
    size_t       i;
    const char  *p;

    static const char  *plans[] = {
        "{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
        " \"on_violation\": \"rollback\\n2026-01-01T00:00:00Z api "
        "ROLLBACK\"}",
        "{\"stages\": [" CS_STAGE("a", "5", "\"1s\\r\\n2m\"") "]}",
        "{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
        " \"triggers\": {\"latency_p99\": {\"act\": \"now\\u001b[2J\"}}}",
        "{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "],"
        " \"triggers\": {\"latency\\np99\": {\"act\": \"grace\"}}}",
        NULL
    };

    for (i = 0; plans[i]; i++) {
        cs_bad(plans[i], "plan.json: ", NULL);

        for (p = cs_err; *p; p++) {
            ck_assert_msg((unsigned char) *p >= 0x20 && *p != 0x7f,
                          "byte 0x%02x at %zu of: %s", (unsigned char) *p,
                          (size_t) (p - cs_err), cs_err);
        }
    }

    cs_bad(plans[0], "on_violation: \"rollback\\n2026-01-01T00:00:00Z",
           NULL);
    cs_bad(plans[1], "\"1s\\r\\n2m\" is not a duration", NULL);
    cs_bad(plans[2], "\"now\\x1b[2J\" is not", NULL);
}
END_TEST


START_TEST(test_plan_file)
{
    FILE       *f;
    char        path[] = "/tmp/test-sidecar-plan-XXXXXX";
    int         fd;
    cs_plan_t   plan;

    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);

    f = fdopen(fd, "w");
    fputs("{\"stages\": [" CS_STAGE("a", "5", "\"1s\"") "], \"x\": 1}", f);
    fclose(f);

    ck_assert_int_eq(cs_plan_load(&plan, path, cs_err, sizeof(cs_err)), -1);
    ck_assert_msg(strstr(cs_err, path) == cs_err, "%s", cs_err);
    ck_assert_msg(strstr(cs_err, "unknown field \"x\"") != NULL, "%s",
                  cs_err);

    unlink(path);

    ck_assert_int_eq(cs_plan_load(&plan, path, cs_err, sizeof(cs_err)), -1);
    ck_assert_msg(strstr(cs_err, "No such file") != NULL, "%s", cs_err);
}
END_TEST


/* conf-examples/plan-default.json is the built-in default, spelled out */

START_TEST(test_example_plans)
{
    char       path[1024], *p;
    size_t     i;
    cs_plan_t  file, def;

    snprintf(path, sizeof(path), "%s", __FILE__);
    p = strstr(path, "t/unit/");
    ck_assert_ptr_nonnull(p);

    strcpy(p, "conf-examples/plan-default.json");
    ck_assert_msg(cs_plan_load(&file, path, cs_err, sizeof(cs_err)) == 0,
                  "%s", cs_err);
    ck_assert_int_eq(cs_plan_default(&def), 0);

    ck_assert_uint_eq(file.nstages, def.nstages);

    for (i = 0; i < def.nstages; i++) {
        ck_assert_str_eq(file.stages[i].name, def.stages[i].name);
        ck_assert_uint_eq(file.stages[i].weight, def.stages[i].weight);
        ck_assert_int_eq(file.stages[i].hold, def.stages[i].hold);
        ck_assert_int_eq(file.stages[i].manual, def.stages[i].manual);
    }

    ck_assert_uint_eq(file.npins, def.npins);
    ck_assert_str_eq(file.pins[0], def.pins[0]);
    ck_assert_mem_eq(&file.slo, &def.slo, sizeof(cs_slo_t));
    ck_assert_int_eq(file.interval, def.interval);
    ck_assert_int_eq(file.violation_for, def.violation_for);
    ck_assert_int_eq(file.window, def.window);
    ck_assert_int_eq(file.on_violation, def.on_violation);

    cs_plan_free(&file);
    cs_plan_free(&def);

    strcpy(p, "conf-examples/plan-staging-pause.json");
    ck_assert_msg(cs_plan_load(&file, path, cs_err, sizeof(cs_err)) == 0,
                  "%s", cs_err);
    ck_assert_int_eq(file.on_violation, CS_ON_VIOLATION_PAUSE);
    cs_plan_free(&file);
}
END_TEST


START_TEST(test_durations)
{
    int64_t  ms;
    char     buf[32];

    ck_assert_int_eq(cs_duration_parse("500ms", &ms), 0);
    ck_assert_int_eq(ms, 500);
    ck_assert_int_eq(cs_duration_parse("30s", &ms), 0);
    ck_assert_int_eq(ms, 30000);
    ck_assert_int_eq(cs_duration_parse("30m", &ms), 0);
    ck_assert_int_eq(ms, 1800000);
    ck_assert_int_eq(cs_duration_parse("1h", &ms), 0);
    ck_assert_int_eq(ms, 3600000);
    ck_assert_int_eq(cs_duration_parse("1h30m", &ms), 0);
    ck_assert_int_eq(ms, 5400000);
    ck_assert_int_eq(cs_duration_parse("1h 30m 5s", &ms), 0);
    ck_assert_int_eq(ms, 5405000);
    ck_assert_int_eq(cs_duration_parse("2d", &ms), 0);
    ck_assert_int_eq(ms, 172800000);
    ck_assert_int_eq(cs_duration_parse("45", &ms), 0);
    ck_assert_int_eq(ms, 45000);
    ck_assert_int_eq(cs_duration_parse("0s", &ms), 0);
    ck_assert_int_eq(ms, 0);
    ck_assert_int_eq(cs_duration_parse("1s500ms", &ms), 0);
    ck_assert_int_eq(ms, 1500);

    ck_assert_int_eq(cs_duration_parse("", &ms), -1);
    ck_assert_int_eq(cs_duration_parse("s", &ms), -1);
    ck_assert_int_eq(cs_duration_parse("1x", &ms), -1);
    ck_assert_int_eq(cs_duration_parse("1.5s", &ms), -1);
    ck_assert_int_eq(cs_duration_parse("5s1m", &ms), -1);
    ck_assert_int_eq(cs_duration_parse("1m1m", &ms), -1);
    ck_assert_int_eq(cs_duration_parse("-1s", &ms), -1);
    ck_assert_int_eq(cs_duration_parse(" 1s", &ms), -1);
    ck_assert_int_eq(cs_duration_parse("31d", &ms), -1);
    ck_assert_int_eq(cs_duration_parse("99999999999999999999s", &ms), -1);

    ck_assert_str_eq(cs_duration_format(0, buf, sizeof(buf)), "0s");
    ck_assert_str_eq(cs_duration_format(250, buf, sizeof(buf)), "250ms");
    ck_assert_str_eq(cs_duration_format(1500, buf, sizeof(buf)), "1.5s");
    /* one format: a tenth when there is one, never "3.0s" beside "3s" */
    ck_assert_str_eq(cs_duration_format(3040, buf, sizeof(buf)), "3s");
    ck_assert_str_eq(cs_duration_format(3000, buf, sizeof(buf)), "3s");
    ck_assert_str_eq(cs_duration_format(3999, buf, sizeof(buf)), "3.9s");
    ck_assert_str_eq(cs_duration_format(12000, buf, sizeof(buf)), "12s");
    ck_assert_str_eq(cs_duration_format(12999, buf, sizeof(buf)), "12s");
    ck_assert_str_eq(cs_duration_format(1800000, buf, sizeof(buf)), "30m");
    ck_assert_str_eq(cs_duration_format(5400000, buf, sizeof(buf)),
                     "1h30m");
    ck_assert_str_eq(cs_duration_format(3725000, buf, sizeof(buf)),
                     "1h2m5s");
}
END_TEST


START_TEST(test_weights)
{
    char  buf[16];

    ck_assert_str_eq(cs_weight_format(0, buf, sizeof(buf)), "0");
    ck_assert_str_eq(cs_weight_format(500, buf, sizeof(buf)), "5");
    ck_assert_str_eq(cs_weight_format(2050, buf, sizeof(buf)), "20.5");
    ck_assert_str_eq(cs_weight_format(25, buf, sizeof(buf)), "0.25");
    ck_assert_str_eq(cs_weight_format(1205, buf, sizeof(buf)), "12.05");
    ck_assert_str_eq(cs_weight_format(10000, buf, sizeof(buf)), "100");

    ck_assert_int_eq(cs_weight_parse("100", 3), 10000);
    ck_assert_int_eq(cs_weight_parse("20.5", 4), 2050);
    ck_assert_int_eq(cs_weight_parse("0.25", 4), 25);
    ck_assert_int_eq(cs_weight_parse("0", 1), 0);
    ck_assert_int_eq(cs_weight_parse("100.01", 6), -1);
    ck_assert_int_eq(cs_weight_parse("1.234", 5), -1);
    ck_assert_int_eq(cs_weight_parse("1.", 2), -1);
    ck_assert_int_eq(cs_weight_parse(".5", 2), -1);
    ck_assert_int_eq(cs_weight_parse("-1", 2), -1);
    ck_assert_int_eq(cs_weight_parse("", 0), -1);
}
END_TEST


#define CS_RELEASE_PLAN(release)                                              \
    "{\"stages\":[" CS_STAGE("a", "0", "\"1s\"") "],\"release\":" release "}"


START_TEST(test_release)
{
    cs_plan_t  plan;

    ck_assert_int_eq(cs_parse(&plan, CS_RELEASE_PLAN(
        "{\"stable\":\"v1.2.2\",\"canary\":\"v1.2.3 (build 7)\"}")), 0);
    ck_assert_str_eq(plan.release_stable, "v1.2.2");
    ck_assert_str_eq(plan.release_canary, "v1.2.3 (build 7)");
    cs_plan_free(&plan);

    /* none: empty, and receipts say null */
    ck_assert_int_eq(cs_parse(&plan, "{\"stages\":["
                              CS_STAGE("a", "0", "\"1s\"") "]}"), 0);
    ck_assert_str_eq(plan.release_canary, "");
    cs_plan_free(&plan);

    cs_bad(CS_RELEASE_PLAN("\"v1\""), "\"release\" is not an object",
           NULL);
    cs_bad(CS_RELEASE_PLAN("{\"stable\":\"v1\"}"), "release.canary",
           "missing");
    cs_bad(CS_RELEASE_PLAN("{\"stable\":1,\"canary\":\"v2\"}"),
           "release.stable", "not a string");
    cs_bad(CS_RELEASE_PLAN("{\"stable\":\"\",\"canary\":\"v2\"}"),
           "release.stable", "1 to 64");
    cs_bad(CS_RELEASE_PLAN("{\"stable\":\"v1\",\"canary\":\"v2\\n\"}"),
           "release.canary", "byte 3");
    cs_bad(CS_RELEASE_PLAN("{\"stable\":\"v1\",\"canary\":\"v\u00e9\"}"),
           "release.canary", "not printable ASCII");
    cs_bad(CS_RELEASE_PLAN("{\"stable\":\"v1\",\"canary\":\"v2\","
                           "\"version\":\"v3\"}"),
           "unknown field \"version\" in release", NULL);
    cs_bad(CS_RELEASE_PLAN("{\"stable\":\"v1\",\"canary\":\""
                           "0123456789012345678901234567890123456789"
                           "01234567890123456789012345\"}"),
           "release.canary", "1 to 64");
}
END_TEST


/*
 * cs_escape, for the log: a value from Redis (an updated_by) is UTF-8 or
 * bytes.  What a terminal tailing the log would act on, C1 controls
 * (U+009B is CSI in UTF-8) and bidi ones (U+202E), is escaped as C0 is,
 * so are bytes that are no UTF-8 (overlong, surrogates, 0xff); other
 * UTF-8 is kept, and a cut never leaves half a character.
 */

START_TEST(test_escape_c1_bidi_invalid)
{
    char    buf[64];
    size_t  n;

    cs_escape(buf, sizeof(buf), "caf\xc3\xa9 \xe2\x82\xac");
    ck_assert_str_eq(buf, "caf\xc3\xa9 \xe2\x82\xac");

    cs_escape(buf, sizeof(buf), "a\xc2\x9b" "2J b\xc2\x85" "c");
    ck_assert_str_eq(buf, "a\\xc2\\x9b" "2J b\\xc2\\x85" "c");

    cs_escape(buf, sizeof(buf), "x\xe2\x80\xae" "y\xe2\x81\xa6" "z"
              "\xe2\x80\x8e");
    ck_assert_str_eq(buf, "x\\xe2\\x80\\xae" "y\\xe2\\x81\\xa6" "z"
                     "\\xe2\\x80\\x8e");

    cs_escape(buf, sizeof(buf), "\xff \xc0\xaf \xed\xa0\x80 \xe2\x82");
    ck_assert_str_eq(buf, "\\xff \\xc0\\xaf \\xed\\xa0\\x80 \\xe2\\x82");

    /* "ab" then U+20AC (3 bytes): 5 bytes fit "ab" and no half of it */
    n = cs_escape(buf, 6, "ab\xe2\x82\xac");
    ck_assert_str_eq(buf, "ab");
    ck_assert_uint_eq(n, 2);

    n = cs_escape(buf, 6, "a\xe2\x82\xac");
    ck_assert_str_eq(buf, "a\xe2\x82\xac");
    ck_assert_uint_eq(n, 4);
}
END_TEST


UNIT_MAIN("sidecar_plan", NULL, NULL, 0)
