
/*
 * The per-cohort counters as the status page renders them: JSON's
 * "cohort_traffic" array (nginx.conf's order, weight, per variant
 * requests and 5xx) and Prometheus' canary_cohort_* families, with a
 * cohort's name escaped as JSON and Prometheus label values need.
 */


#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "ngx_http_canary_report.h"


static ngx_http_canary_report_t         rep;
static ngx_http_canary_split_report_t  *split;


static void
setup(void)
{
    split = calloc(1, sizeof(ngx_http_canary_split_report_t));
    ck_assert_ptr_nonnull(split);

    memset(&rep, 0, sizeof(rep));
    rep.now = 1765100000;
    rep.nsplits = 1;
    rep.splits = split;

    split->name.data = (const unsigned char *) "api";
    split->name.len = 3;
    split->source = "redis";
    split->weight = 500;

    split->ncohorts = 2;
    split->cohorts[0].name.data = (const unsigned char *) "internal";
    split->cohorts[0].name.len = 8;
    split->cohorts[0].weight = 10000;
    split->cohorts[0].requests[1] = 12;
    split->cohorts[0].responses_5xx[1] = 3;

    /* a name nginx.conf accepts, with what both formats must escape */
    split->cohorts[1].name.data = (const unsigned char *) "be\"ta\\x";
    split->cohorts[1].name.len = 7;
    split->cohorts[1].weight = 25;
    split->cohorts[1].requests[0] = 7;
    split->cohorts[1].requests[1] = 18446744073709551615ULL;
}


static void
teardown(void)
{
    free(split);
}


/* the rendering, NUL-terminated, in a buffer of exactly its size */
static char *
render(void (*fn)(ngx_http_canary_out_t *,
    const ngx_http_canary_report_t *))
{
    char                   *buf;
    size_t                  len;
    ngx_http_canary_out_t   o;

    o.pos = NULL;
    o.end = NULL;
    o.need = 0;

    fn(&o, &rep);

    len = o.need;
    ck_assert_uint_le(len, ngx_http_canary_render_estimate(1));

    buf = malloc(len + 1);
    ck_assert_ptr_nonnull(buf);

    o.pos = (unsigned char *) buf;
    o.end = (unsigned char *) buf + len;
    o.need = 0;

    fn(&o, &rep);

    ck_assert_uint_eq(o.need, len);
    buf[len] = '\0';

    return buf;
}


START_TEST(json_has_each_cohort_with_its_counters_in_order)
{
    char  *text;

    text = render(ngx_http_canary_render_json);

    ck_assert_ptr_nonnull(strstr(text,
        "\"cohort_traffic\":["
        "{\"name\":\"internal\",\"weight\":100,"
        "\"stable\":{\"requests\":0,\"5xx\":0},"
        "\"canary\":{\"requests\":12,\"5xx\":3}},"
        "{\"name\":\"be\\\"ta\\\\x\",\"weight\":0.25,"
        "\"stable\":{\"requests\":7,\"5xx\":0},"
        "\"canary\":{\"requests\":18446744073709551615,\"5xx\":0}}],"));

    /* the weights' object stays as it was */
    ck_assert_ptr_nonnull(strstr(text,
        "\"cohorts\":{\"internal\":100,\"be\\\"ta\\\\x\":0.25},"));

    free(text);
}
END_TEST


START_TEST(json_without_cohorts_has_an_empty_array)
{
    char  *text;

    split->ncohorts = 0;

    text = render(ngx_http_canary_render_json);

    ck_assert_ptr_nonnull(strstr(text, "\"cohorts\":{},"
                                       "\"cohort_traffic\":[],"));
    free(text);
}
END_TEST


START_TEST(prometheus_has_a_sample_per_cohort_and_variant)
{
    char  *text;

    text = render(ngx_http_canary_render_prometheus);

    ck_assert_ptr_nonnull(strstr(text,
        "# TYPE canary_cohort_requests_total counter\n"));
    ck_assert_ptr_nonnull(strstr(text,
        "# TYPE canary_cohort_responses_5xx_total counter\n"));
    ck_assert_ptr_nonnull(strstr(text,
        "# TYPE canary_cohort_weight_percent gauge\n"));

    ck_assert_ptr_nonnull(strstr(text,
        "canary_cohort_weight_percent{split=\"api\",cohort=\"internal\"} "
        "100\n"));
    ck_assert_ptr_nonnull(strstr(text,
        "canary_cohort_requests_total{split=\"api\",variant=\"canary\","
        "cohort=\"internal\"} 12\n"));
    ck_assert_ptr_nonnull(strstr(text,
        "canary_cohort_requests_total{split=\"api\",variant=\"stable\","
        "cohort=\"internal\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(text,
        "canary_cohort_responses_5xx_total{split=\"api\",variant=\"canary\","
        "cohort=\"internal\"} 3\n"));

    /* label values escape \ and " */
    ck_assert_ptr_nonnull(strstr(text,
        "canary_cohort_requests_total{split=\"api\",variant=\"stable\","
        "cohort=\"be\\\"ta\\\\x\"} 7\n"));
    ck_assert_ptr_nonnull(strstr(text,
        "canary_cohort_weight_percent{split=\"api\",cohort=\"be\\\"ta\\\\x\"}"
        " 0.25\n"));

    free(text);
}
END_TEST


START_TEST(prometheus_without_cohorts_has_no_cohort_sample)
{
    char  *text;

    split->ncohorts = 0;

    text = render(ngx_http_canary_render_prometheus);

    ck_assert_ptr_null(strstr(text, "canary_cohort_requests_total{"));
    ck_assert_ptr_null(strstr(text, "canary_cohort_weight_percent{"));
    free(text);
}
END_TEST


UNIT_MAIN("render_cohorts", setup, teardown, 0)
