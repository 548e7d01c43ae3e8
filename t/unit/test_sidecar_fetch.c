
/*
 * canary-sidecar reading /canary_status: URLs, parsing, refusing what
 * does not fit, and adding a fleet up bucket by bucket.
 */


#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fetch.h"


static char  cs_err[512];


/* a status body as the module renders it (the parts the sidecar reads) */

static char *
cs_status(unsigned seconds, uint64_t sreq, uint64_t s5xx, uint64_t creq,
    uint64_t c5xx, uint64_t cup, size_t bucket, int tripped, int bad_le)
{
    int      v;
    char    *out;
    size_t   i;
    json_t  *root, *variants, *le, *counts, *var;

    variants = json_object();

    for (v = 0; v < 2; v++) {
        le = json_array();
        counts = json_array();

        for (i = 0; i < CS_HIST_BUCKETS; i++) {
            if (i == CS_HIST_BUCKETS - 1) {
                json_array_append_new(le, json_null());

            } else {
                json_array_append_new(le, json_real(
                    (double) cs_hist_upper(i) / 1000 * (bad_le ? 2 : 1)));
            }

            json_array_append_new(counts, json_integer(
                i == bucket + (size_t) v ? (json_int_t) (v ? creq : sreq)
                                         : 0));
        }

        var = json_pack("{s:{s:o},s:{s:I,s:I,s:I,s:I,s:o,s:f}}",
                        "latency", "le_ms", le,
                        "window", "seconds", (json_int_t) seconds,
                        "requests", (json_int_t) (v ? creq : sreq),
                        "5xx", (json_int_t) (v ? c5xx : s5xx),
                        "upstream_errors", (json_int_t) (v ? cup : 0),
                        "counts", counts, "p99_ms", 1.0);

        json_object_set_new(variants, v ? "canary" : "stable", var);
    }

    root = json_pack("{s:I,s:{s:{s:i,s:b,s:I,s:s,s:{s:b},s:o}}}",
                     "time", (json_int_t) 1,
                     "splits", "api",
                     "weight", 20, "enabled", 1,
                     "generation", (json_int_t) 5,
                     "state", "running",
                     "guard", "tripped", tripped,
                     "variants", variants);

    out = json_dumps(root, JSON_COMPACT);
    json_decref(root);

    return out;
}


START_TEST(test_url)
{
    char  *u;

    u = cs_fetch_url("http://10.0.0.1:8080/canary_status", "api", 30);
    ck_assert_str_eq(u, "http://10.0.0.1:8080/canary_status"
                     "?format=json&split=api&window=30");
    free(u);

    u = cs_fetch_url("http://h/st?token=x", "a.b", 5);
    ck_assert_str_eq(u, "http://h/st?token=x&format=json&split=a.b&window=5");
    free(u);
}
END_TEST


START_TEST(test_parse_one)
{
    char          *body;
    cs_metrics_t   m;

    body = cs_status(30, 1000, 3, 250, 4, 1, 100, 0, 0);

    ck_assert_msg(cs_fetch_parse(body, strlen(body), "api", &m, cs_err,
                                 sizeof(cs_err)) == 0, "%s", cs_err);

    ck_assert_uint_eq(m.instances, 1);
    ck_assert_uint_eq(m.window_seconds, 30);
    ck_assert_uint_eq(m.v[CS_STABLE].requests, 1000);
    ck_assert_uint_eq(m.v[CS_STABLE].errors_5xx, 3);
    ck_assert_uint_eq(m.v[CS_CANARY].requests, 250);
    ck_assert_uint_eq(m.v[CS_CANARY].errors_5xx, 4);
    ck_assert_uint_eq(m.v[CS_CANARY].upstream_errors, 1);
    ck_assert_uint_eq(m.v[CS_STABLE].counts[100], 1000);
    ck_assert_uint_eq(m.v[CS_CANARY].counts[101], 250);
    ck_assert_uint_eq(cs_hist_total(m.v[CS_CANARY].counts), 250);
    ck_assert_uint_eq(m.generation_min, 5);
    ck_assert_uint_eq(m.guard_tripped, 0);

    free(body);

    body = cs_status(30, 1, 0, 1, 0, 0, 3, 1, 0);
    ck_assert_int_eq(cs_fetch_parse(body, strlen(body), "api", &m, cs_err,
                                    sizeof(cs_err)), 0);
    ck_assert_uint_eq(m.guard_tripped, 1);
    free(body);
}
END_TEST


/* "\u0000" in a string (a Redis error the module shows) is valid JSON */

START_TEST(test_parse_takes_nul_in_strings)
{
    char          *body, *nul, *api;
    size_t         size;
    cs_metrics_t   m;

    body = cs_status(30, 1000, 3, 250, 4, 1, 100, 0, 0);
    api = strstr(body, "\"api\":{");
    ck_assert_ptr_nonnull(api);

    size = strlen(body) + 128;
    nul = malloc(size);
    ck_assert_ptr_nonnull(nul);

    snprintf(nul, size, "{\"redis\":{\"last_error\":\"ERR \\u0000x\"},"
             "%.*s\"updated_by\":\"ops\\u0000\",%s",
             (int) (api + 7 - body - 1), body + 1, api + 7);

    ck_assert_msg(cs_fetch_parse(nul, strlen(nul), "api", &m, cs_err,
                                 sizeof(cs_err)) == 0, "%s", cs_err);

    ck_assert_uint_eq(m.instances, 1);
    ck_assert_uint_eq(m.v[CS_STABLE].requests, 1000);
    ck_assert_uint_eq(m.v[CS_CANARY].counts[101], 250);
    ck_assert_uint_eq(m.generation_min, 5);

    free(nul);
    free(body);
}
END_TEST


START_TEST(test_parse_refuses)
{
    char          *body;
    cs_metrics_t   m;

    body = cs_status(30, 10, 0, 10, 0, 0, 3, 0, 0);

    ck_assert_int_eq(cs_fetch_parse(body, strlen(body), "web", &m, cs_err,
                                    sizeof(cs_err)), -1);
    ck_assert_msg(strstr(cs_err, "no split \"web\"") != NULL, "%s", cs_err);

    ck_assert_int_eq(cs_fetch_parse(body, 10, "api", &m, cs_err,
                                    sizeof(cs_err)), -1);
    ck_assert_msg(strstr(cs_err, "not JSON") != NULL, "%s", cs_err);

    free(body);

    /* a histogram cut another way cannot be added up */
    body = cs_status(30, 10, 0, 10, 0, 0, 3, 0, 1);
    ck_assert_int_eq(cs_fetch_parse(body, strlen(body), "api", &m, cs_err,
                                    sizeof(cs_err)), -1);
    ck_assert_msg(strstr(cs_err, "layout") != NULL, "%s", cs_err);
    free(body);

    body = "{\"splits\":{\"api\":{\"variants\":{\"stable\":{\"window\":"
           "{\"seconds\":1,\"requests\":-1,\"5xx\":0,"
           "\"upstream_errors\":0}}}}}}";
    ck_assert_int_eq(cs_fetch_parse(body, strlen(body), "api", &m, cs_err,
                                    sizeof(cs_err)), -1);
    ck_assert_msg(strstr(cs_err, "variants.stable.window") != NULL, "%s",
                  cs_err);
}
END_TEST


START_TEST(test_fleet_adds_up_bucket_by_bucket)
{
    char          *b1, *b2;
    cs_metrics_t   sum, one;

    b1 = cs_status(30, 1000, 3, 250, 4, 1, 100, 0, 0);
    b2 = cs_status(28, 500, 1, 100, 0, 2, 100, 1, 0);

    cs_metrics_init(&sum);

    ck_assert_int_eq(cs_fetch_parse(b1, strlen(b1), "api", &one, cs_err,
                                    sizeof(cs_err)), 0);
    cs_metrics_add(&sum, &one);
    ck_assert_int_eq(cs_fetch_parse(b2, strlen(b2), "api", &one, cs_err,
                                    sizeof(cs_err)), 0);
    cs_metrics_add(&sum, &one);

    ck_assert_uint_eq(sum.instances, 2);
    ck_assert_uint_eq(sum.window_seconds, 28);
    ck_assert_uint_eq(sum.v[CS_STABLE].requests, 1500);
    ck_assert_uint_eq(sum.v[CS_STABLE].errors_5xx, 4);
    ck_assert_uint_eq(sum.v[CS_CANARY].requests, 350);
    ck_assert_uint_eq(sum.v[CS_CANARY].upstream_errors, 3);
    ck_assert_uint_eq(sum.v[CS_STABLE].counts[100], 1500);
    ck_assert_uint_eq(sum.v[CS_CANARY].counts[101], 350);
    ck_assert_uint_eq(sum.guard_tripped, 1);

    free(b1);
    free(b2);
}
END_TEST


START_TEST(test_nobody_answers)
{
    char          *urls[2];
    size_t         n;
    cs_metrics_t   m;

    /* nothing listens on port 1 */
    urls[0] = "http://127.0.0.1:1/canary_status?format=json";
    urls[1] = "http://127.0.0.1:1/other";

    n = cs_fetch(urls, urls, 2, "api", 500, &m, cs_err, sizeof(cs_err));

    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(m.instances, 0);
    ck_assert_uint_eq(m.asked, 2);
    ck_assert_msg(strstr(cs_err, urls[0]) != NULL, "%s", cs_err);
    ck_assert_msg(strstr(cs_err, "; http://127.0.0.1:1/other") != NULL,
                  "%s", cs_err);
}
END_TEST


static Suite *
cs_fetch_suite(void)
{
    TCase  *tc;
    Suite  *s;

    s = suite_create("sidecar_fetch");
    tc = tcase_create("fetch");

    tcase_add_test(tc, test_url);
    tcase_add_test(tc, test_parse_one);
    tcase_add_test(tc, test_parse_takes_nul_in_strings);
    tcase_add_test(tc, test_parse_refuses);
    tcase_add_test(tc, test_fleet_adds_up_bucket_by_bucket);
    tcase_add_test(tc, test_nobody_answers);

    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    int       failed;
    SRunner  *sr;

    sr = srunner_create(cs_fetch_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
