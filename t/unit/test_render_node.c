
/*
 * A node's record (ngx_http_canary_render_node()): the fields the fleet's
 * contract names, in its order, the histogram as sparse pairs, and a
 * worst case within NGX_HTTP_CANARY_NODE_RECORD_MAX.
 */


#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "ngx_http_canary_contract.h"
#include "ngx_http_canary_report.h"


static ngx_http_canary_split_report_t  *split;
static ngx_http_canary_node_report_t    node;


static void
setup(void)
{
    split = calloc(1, sizeof(ngx_http_canary_split_report_t));
    ck_assert_ptr_nonnull(split);

    split->name.data = (const unsigned char *) "api";
    split->name.len = 3;

    node.node.data = (const unsigned char *) "web-1";
    node.node.len = 5;
    node.instance.data = (const unsigned char *) "1765100000.4242";
    node.instance.len = 15;
    node.pid = 4243;
    node.interval_ms = 1000;
}


static void
teardown(void)
{
    free(split);
}


/* the record, NUL-terminated, in a buffer of exactly its size */
static char *
render(size_t *len)
{
    char                   *buf;
    ngx_http_canary_out_t   o;

    o.pos = NULL;
    o.end = NULL;
    o.need = 0;

    ngx_http_canary_render_node(&o, &node, split);

    buf = malloc(o.need + 1);
    ck_assert_ptr_nonnull(buf);

    *len = o.need;

    o.pos = (unsigned char *) buf;
    o.end = (unsigned char *) buf + *len;
    o.need = 0;

    ngx_http_canary_render_node(&o, &node, split);

    ck_assert_uint_eq(o.need, *len);
    ck_assert_ptr_eq(o.pos, buf + *len);

    buf[*len] = '\0';

    return buf;
}


START_TEST(a_record_says_what_the_contract_says)
{
    char    *rec;
    size_t   len;

    split->generation = 7;
    split->weight = 3000;
    split->enabled = 1;
    split->created = 1765100000;

    split->variants[0].requests = 2517;
    split->variants[0].responses[1] = 2500;
    split->variants[0].responses[4] = 10;
    split->variants[0].upstream_errors = 7;
    split->variants[0].latency.counts[3] = 10;
    split->variants[0].latency.counts[17] = 2500;
    split->variants[0].latency.counts[40] = 7;
    split->variants[0].window.seconds = 1;
    split->variants[0].window.requests = 42;

    split->variants[1].requests = 1;
    split->variants[1].responses[1] = 1;
    split->variants[1].latency.counts[0] = 1;
    split->variants[1].window.seconds = 1;
    split->variants[1].window.requests = 1;

    rec = render(&len);

    ck_assert_str_eq(rec,
        "{\"v\":1,\"node\":\"web-1\",\"instance\":\"1765100000.4242\","
        "\"pid\":4243,\"split\":\"api\",\"generation\":7,\"weight\":30,"
        "\"enabled\":true,\"guard_tripped\":false,\"created\":1765100000,"
        "\"interval_ms\":1000,\"hist\":\"us64x16x20\","
        "\"stable\":{\"requests\":2517,\"responses\":[0,2500,0,0,10],"
        "\"upstream_errors\":7,\"latency\":\"3:10,17:2500,40:7\","
        "\"window_s\":1,\"window_requests\":42},"
        "\"canary\":{\"requests\":1,\"responses\":[0,1,0,0,0],"
        "\"upstream_errors\":0,\"latency\":\"0:1\","
        "\"window_s\":1,\"window_requests\":1}}");

    free(rec);
}
END_TEST


START_TEST(weight_and_guard_as_the_status_page_prints_them)
{
    char    *rec;
    size_t   len;

    split->weight = 250;                /* 2.5% */
    split->enabled = 0;
    split->guard.tripped = 1;

    rec = render(&len);

    ck_assert_ptr_nonnull(strstr(rec, "\"weight\":2.5,\"enabled\":false,"
                                      "\"guard_tripped\":true,"));
    free(rec);

    split->weight = 1225;
    rec = render(&len);
    ck_assert_ptr_nonnull(strstr(rec, "\"weight\":12.25,"));
    free(rec);

    split->weight = 10000;
    rec = render(&len);
    ck_assert_ptr_nonnull(strstr(rec, "\"weight\":100,"));
    free(rec);

    split->weight = 0;
    rec = render(&len);
    ck_assert_ptr_nonnull(strstr(rec, "\"weight\":0,"));
    free(rec);
}
END_TEST


START_TEST(no_requests_no_pairs)
{
    char    *rec;
    size_t   len;

    rec = render(&len);

    ck_assert_ptr_nonnull(strstr(rec, "\"stable\":{\"requests\":0,"
                                      "\"responses\":[0,0,0,0,0],"
                                      "\"upstream_errors\":0,"
                                      "\"latency\":\"\","));
    free(rec);
}
END_TEST


/* a split with "shadow": its counters last; none without */
START_TEST(shadow_counters_only_with_shadow)
{
    char    *rec;
    size_t   len;

    rec = render(&len);
    ck_assert_ptr_null(strstr(rec, "shadow"));
    free(rec);

    split->shadow.configured = 1;
    split->shadow.requests = 12;
    split->shadow.compared = 10;
    split->shadow.matched = 7;
    split->shadow.mismatched_status = 1;
    split->shadow.mismatched_body = 2;
    split->shadow.canary_errors = 3;
    split->shadow.timeouts = 4;
    split->shadow.skipped_method = 5;
    split->shadow.skipped_body_too_large = 6;
    split->shadow.skipped_in_flight = 18446744073709551615ULL;
    split->shadow.skipped_stable_error = 8;

    rec = render(&len);
    ck_assert_msg(strstr(rec, ",\"shadow\":{\"requests\":12,\"compared\":10,"
                         "\"matched\":7,\"mismatched\":{\"status\":1,"
                         "\"body\":2},\"canary_errors\":3,\"timeouts\":4,"
                         "\"skipped\":{\"method\":5,\"body_too_large\":6,"
                         "\"in_flight\":18446744073709551615,"
                         "\"stable_error\":8}}}") != NULL,
                  "%s", rec);
    free(rec);
}
END_TEST


START_TEST(the_first_and_last_buckets_in_order)
{
    char    *rec;
    size_t   len;

    split->variants[1].latency.counts[NGX_HTTP_CANARY_HIST_BUCKETS - 1] = 3;
    split->variants[1].latency.counts[0] = 1;
    split->variants[1].latency.counts[161] = UINT64_MAX;

    rec = render(&len);

    ck_assert_ptr_nonnull(strstr(rec, "\"latency\":\"0:1,"
                                      "161:18446744073709551615,321:3\""));
    free(rec);
}
END_TEST


START_TEST(names_are_json_strings)
{
    char    *rec;
    size_t   len;

    split->name.data = (const unsigned char *) "a\"b\\c\n";
    split->name.len = 6;

    rec = render(&len);

    ck_assert_ptr_nonnull(strstr(rec, "\"split\":\"a\\\"b\\\\c\\u000a\","));
    free(rec);
}
END_TEST


/*
 * The longest record there can be: names of 63 bytes, every counter and
 * time at its maximum, and every one of the 644 buckets holding requests.
 * Each request adds one to one bucket, so a side's buckets add up to at
 * most 2^64 - 1: spread evenly, each has 17 digits.
 */

START_TEST(the_worst_case_fits_the_contract)
{
    char                              *rec, name[64], inst[64];
    size_t                             len, v, i;
    ngx_http_canary_variant_report_t  *vr;

    memset(name, 'n', 63);
    snprintf(inst, sizeof(inst), "%llu.%llu",
             (unsigned long long) UINT64_MAX,
             (unsigned long long) UINT64_MAX);

    node.node.data = (const unsigned char *) name;
    node.node.len = 63;
    node.instance.data = (const unsigned char *) inst;
    node.instance.len = strlen(inst);
    node.pid = INT64_MAX;
    node.interval_ms = UINT64_MAX;

    split->name.data = (const unsigned char *) name;
    split->name.len = 63;
    split->generation = UINT64_MAX;
    split->weight = 9999;
    split->created = (time_t) INT64_MAX;

    for (v = 0; v < 2; v++) {
        vr = &split->variants[v];

        vr->requests = UINT64_MAX;
        vr->upstream_errors = UINT64_MAX;
        vr->window.seconds = (unsigned) -1;
        vr->window.requests = UINT64_MAX;

        for (i = 0; i < 5; i++) {
            vr->responses[i] = UINT64_MAX;
        }

        for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS; i++) {
            vr->latency.counts[i] = UINT64_MAX / NGX_HTTP_CANARY_HIST_BUCKETS;
        }
    }

    /* and a shadow with every counter at its widest */
    split->shadow.configured = 1;
    split->shadow.requests = UINT64_MAX;
    split->shadow.compared = UINT64_MAX;
    split->shadow.matched = UINT64_MAX;
    split->shadow.mismatched_status = UINT64_MAX;
    split->shadow.mismatched_body = UINT64_MAX;
    split->shadow.canary_errors = UINT64_MAX;
    split->shadow.timeouts = UINT64_MAX;
    split->shadow.skipped_method = UINT64_MAX;
    split->shadow.skipped_body_too_large = UINT64_MAX;
    split->shadow.skipped_in_flight = UINT64_MAX;
    split->shadow.skipped_stable_error = UINT64_MAX;

    rec = render(&len);

    fprintf(stderr, "# the worst record: %zu bytes\n", len);

    ck_assert_uint_le(len, NGX_HTTP_CANARY_NODE_RECORD_MAX);

    free(rec);
}
END_TEST


/* a side with traffic over all of the 1 ms .. 10 s range, per bucket */
START_TEST(a_busy_record_is_small)
{
    char    *rec;
    size_t   len, v, i;

    for (v = 0; v < 2; v++) {
        split->variants[v].requests = 1000000000;

        for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS; i++) {
            if (i >= 65 && i <= 225) {
                split->variants[v].latency.counts[i] = 1000000;
            }
        }
    }

    rec = render(&len);

    fprintf(stderr, "# a record with 161 buckets of a million a side: "
            "%zu bytes\n", len);

    ck_assert_uint_le(len, 8192);

    free(rec);
}
END_TEST


UNIT_MAIN("render_node", setup, teardown, 0)
