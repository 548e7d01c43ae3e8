
/*
 * canary-sidecar reading /canary_status: URLs, parsing, refusing what
 * does not fit, and adding a fleet up bucket by bucket.
 */


#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include <jansson.h>

#include "fetch.h"
#include "nodes.h"

#include "ngx_http_canary_parse.h"
#include "ngx_http_canary_report.h"


/* Redis' clock at the readings: after every "created" below */
#define T  (1795320000LL * 1000)


static char  cs_err[512];


/*
 * A status body rendered by the module's own JSON renderer (linked in
 * below), so that the sidecar is tested against what nginx really
 * serves: one split "api", cumulative counters (total) and the window,
 * each variant's requests all in one bucket (canary's one further).
 */

static char *
cs_render(unsigned seconds, uint64_t sreq, uint64_t s5xx, uint64_t creq,
    uint64_t c5xx, uint64_t cup, size_t bucket, int tripped,
    uint64_t total_extra, time_t created)
{
    int                                v;
    char                              *out;
    size_t                             size;
    uint64_t                           req;
    ngx_http_canary_out_t              o;
    ngx_http_canary_report_t           rep;
    ngx_http_canary_split_report_t     sr;
    ngx_http_canary_variant_report_t  *vr;

    memset(&rep, 0, sizeof(rep));
    memset(&sr, 0, sizeof(sr));

    rep.now = 1;
    rep.zone_name.data = (const unsigned char *) "canary";
    rep.zone_name.len = 6;
    rep.nsplits = 1;
    rep.splits = &sr;

    sr.name.data = (const unsigned char *) "api";
    sr.name.len = 3;
    sr.weight = 2000;
    sr.enabled = 1;
    sr.generation = 5;
    sr.created = created;
    sr.source = "redis";
    memcpy(sr.state, "running", 7);
    sr.state_len = 7;
    sr.guard.tripped = tripped;

    for (v = 0; v < 2; v++) {
        vr = &sr.variants[v];
        req = v ? creq : sreq;

        vr->upstream.data = (const unsigned char *) (v ? "api_v2" : "api");
        vr->upstream.len = v ? 6 : 3;

        /* the totals: the window's requests and total_extra before it */
        vr->requests = req + total_extra;
        vr->responses[4] = v ? c5xx : s5xx;
        vr->responses[1] = vr->requests - vr->responses[4] - (v ? cup : 0);
        vr->upstream_errors = v ? cup : 0;
        vr->latency.counts[bucket + (size_t) v] = vr->requests;
        vr->latency.count = vr->requests;

        vr->window.seconds = seconds;
        vr->window.requests = req;
        vr->window.responses_5xx = v ? c5xx : s5xx;
        vr->window.upstream_errors = v ? cup : 0;
        vr->window.latency.counts[bucket + (size_t) v] = req;
        vr->window.latency.count = req;
    }

    size = ngx_http_canary_render_estimate(1);
    out = malloc(size + 1);
    ck_assert_ptr_nonnull(out);

    o.pos = (unsigned char *) out;
    o.end = o.pos + size;
    o.need = 0;

    ngx_http_canary_render_json(&o, &rep);

    /* need: the bytes of the whole rendering */
    ck_assert_uint_le(o.need, size);
    out[o.need] = '\0';

    return out;
}


static char *
cs_status(unsigned seconds, uint64_t sreq, uint64_t s5xx, uint64_t creq,
    uint64_t c5xx, uint64_t cup, size_t bucket, int tripped, int bad_le)
{
    char    *body, *out;
    json_t  *root, *le;

    body = cs_render(seconds, sreq, s5xx, creq, c5xx, cup, bucket, tripped,
                     0, 0);

    if (!bad_le) {
        return body;
    }

    /* a histogram cut another way: what no module of this layout says */
    root = json_loads(body, 0, NULL);
    ck_assert_ptr_nonnull(root);
    free(body);

    le = json_object_get(json_object_get(json_object_get(json_object_get(
             json_object_get(json_object_get(root, "splits"), "api"),
             "variants"), "canary"), "latency"), "le_ms");
    ck_assert(json_is_array(le));
    json_array_set_new(le, 3, json_real(1.234));

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


START_TEST(test_totals_and_created)
{
    char          *body;
    cs_metrics_t   m;

    body = cs_render(30, 100, 2, 40, 1, 3, 90, 0, 1000, 1795310000);

    ck_assert_msg(cs_fetch_parse(body, strlen(body), "api", &m, cs_err,
                                 sizeof(cs_err)) == 0, "%s", cs_err);

    ck_assert_int_eq(m.created, 1795310000);
    ck_assert_uint_eq(m.v[CS_STABLE].requests, 100);
    ck_assert_uint_eq(m.total[CS_STABLE].requests, 1100);
    ck_assert_uint_eq(m.total[CS_STABLE].errors_5xx, 2);
    ck_assert_uint_eq(m.total[CS_CANARY].requests, 1040);
    ck_assert_uint_eq(m.total[CS_CANARY].errors_5xx, 1);
    ck_assert_uint_eq(m.total[CS_CANARY].upstream_errors, 3);
    ck_assert_uint_eq(m.total[CS_STABLE].counts[90], 1100);
    ck_assert_uint_eq(m.total[CS_CANARY].counts[91], 1040);
    ck_assert_uint_eq(cs_hist_total(m.total[CS_CANARY].counts), 1040);

    free(body);
}
END_TEST


/* one nginx read twice: the difference, bucket by bucket */

static void
cs_read(cs_metrics_t *m, uint64_t sreq, uint64_t creq, uint64_t c5xx,
    time_t created)
{
    char  *body;

    body = cs_render(30, sreq, 0, creq, c5xx, 0, 90, 0, 0, created);
    ck_assert_msg(cs_fetch_parse(body, strlen(body), "api", m, cs_err,
                                 sizeof(cs_err)) == 0, "%s", cs_err);
    free(body);
}


START_TEST(test_node_counts_what_is_new)
{
    cs_node_t      node;
    cs_window_t    d[2];
    cs_metrics_t   m;

    memset(&node, 0, sizeof(node));

    cs_read(&m, 1000, 100, 2, 1795310000);
    ck_assert_int_eq(cs_node_read(&node, &m, T, d), CS_NODE_FIRST);
    ck_assert_uint_eq(d[CS_CANARY].requests, 0);

    cs_read(&m, 1500, 160, 5, 1795310000);
    ck_assert_int_eq(cs_node_read(&node, &m, T, d), CS_NODE_COUNTED);
    ck_assert_uint_eq(d[CS_STABLE].requests, 500);
    ck_assert_uint_eq(d[CS_CANARY].requests, 60);
    ck_assert_uint_eq(d[CS_CANARY].errors_5xx, 3);
    ck_assert_uint_eq(d[CS_STABLE].counts[90], 500);
    ck_assert_uint_eq(d[CS_CANARY].counts[91], 60);
    ck_assert_uint_eq(cs_hist_total(d[CS_CANARY].counts), 60);
}
END_TEST


START_TEST(test_node_restart_counts_all_it_has)
{
    cs_node_t      node;
    cs_window_t    d[2];
    cs_metrics_t   m;

    memset(&node, 0, sizeof(node));

    cs_read(&m, 1000, 100, 2, 1795310000);
    (void) cs_node_read(&node, &m, T, d);

    /* restarted: a new zone, fewer requests than before */
    cs_read(&m, 30, 7, 1, T / 1000 + 1);
    ck_assert_int_eq(cs_node_read(&node, &m, T, d), CS_NODE_RESTARTED);
    ck_assert_uint_eq(d[CS_STABLE].requests, 30);
    ck_assert_uint_eq(d[CS_CANARY].requests, 7);
    ck_assert_uint_eq(d[CS_CANARY].errors_5xx, 1);

    /* a new zone that already counted more than the old one had: the
     * changed "created" says so, never a negative or doubled count */
    cs_read(&m, 2000, 300, 1, T / 1000 + 2);
    ck_assert_int_eq(cs_node_read(&node, &m, T, d), CS_NODE_RESTARTED);
    ck_assert_uint_eq(d[CS_STABLE].requests, 2000);

    /* an older module without "created": counters going down tell */
    cs_read(&m, 2100, 310, 1, 0);
    ck_assert_int_eq(cs_node_read(&node, &m, T, d), CS_NODE_COUNTED);
    ck_assert_uint_eq(d[CS_STABLE].requests, 100);

    cs_read(&m, 5, 1, 0, 0);
    ck_assert_int_eq(cs_node_read(&node, &m, T, d), CS_NODE_RESTARTED);
    ck_assert_uint_eq(d[CS_STABLE].requests, 5);
    ck_assert_uint_eq(d[CS_CANARY].requests, 1);
}
END_TEST


START_TEST(test_node_away_loses_nothing)
{
    int            answered[2];
    size_t         restarted, other;
    cs_window_t    deltas[4];
    cs_node_t      nodes[2];
    cs_metrics_t   r[2], sum;

    memset(nodes, 0, sizeof(nodes));

    cs_read(&r[0], 1000, 100, 0, 1795310000);
    cs_read(&r[1], 500, 50, 0, 1795310000);
    answered[0] = answered[1] = 1;
    cs_nodes_sum(nodes, r, answered, 2, T, deltas, &sum, &restarted,
                 &other);
    ck_assert_uint_eq(restarted, 0);
    ck_assert_int_eq(sum.has_delta, 0);
    ck_assert_uint_eq(sum.instances, 2);

    /* the second does not answer for a while; the first goes on */
    cs_read(&r[0], 1100, 110, 0, 1795310000);
    answered[1] = 0;
    cs_nodes_sum(nodes, r, answered, 2, T, deltas, &sum, &restarted,
                 &other);
    ck_assert_int_eq(sum.has_delta, 1);
    ck_assert_uint_eq(sum.instances, 1);
    ck_assert_uint_eq(sum.delta[CS_STABLE].requests, 100);

    /* back: what it counted meanwhile comes in whole */
    cs_read(&r[0], 1100, 110, 0, 1795310000);
    cs_read(&r[1], 900, 90, 0, 1795310000);
    answered[1] = 1;
    cs_nodes_sum(nodes, r, answered, 2, T, deltas, &sum, &restarted,
                 &other);
    ck_assert_uint_eq(sum.delta[CS_STABLE].requests, 400);
    ck_assert_uint_eq(sum.delta[CS_CANARY].requests, 40);
}
END_TEST


START_TEST(test_nodes_sum)
{
    int            answered[2];
    size_t         restarted, other;
    cs_window_t    deltas[4];
    cs_node_t      nodes[2];
    cs_metrics_t   r[2], sum;

    memset(nodes, 0, sizeof(nodes));
    answered[0] = answered[1] = 1;

    cs_read(&r[0], 1000, 100, 0, 1795310000);
    cs_read(&r[1], 500, 50, 0, 1795310000);
    cs_nodes_sum(nodes, r, answered, 2, T, deltas, &sum, &restarted,
                 &other);

    /* one goes on, the other restarted */
    cs_read(&r[0], 1200, 130, 4, 1795310000);
    cs_read(&r[1], 20, 2, 1, T / 1000 + 1);
    cs_nodes_sum(nodes, r, answered, 2, T, deltas, &sum, &restarted,
                 &other);
    ck_assert_uint_eq(restarted, 1);

    ck_assert_uint_eq(sum.delta[CS_STABLE].requests, 220);
    ck_assert_uint_eq(sum.delta[CS_CANARY].requests, 32);
    ck_assert_uint_eq(sum.delta[CS_CANARY].errors_5xx, 5);
    ck_assert_uint_eq(sum.delta[CS_CANARY].counts[91], 32);
    ck_assert_uint_eq(sum.v[CS_STABLE].requests, 1220);
    ck_assert_uint_eq(sum.asked, 2);
}
END_TEST


/*
 * A --status URL behind a load balancer: each step another nginx
 * answers.  Counters that started before the last reading are not new:
 * a starting point, never added (the lifetime of a pod is not a stage).
 */

START_TEST(test_node_other_nginx_is_not_added)
{
    cs_node_t      node;
    cs_window_t    d[2];
    cs_metrics_t   m;

    memset(&node, 0, sizeof(node));

    cs_read(&m, 50000, 5000, 20, 1795300000);
    (void) cs_node_read(&node, &m, T, d);

    cs_read(&m, 90000, 9000, 30, 1795200000);
    ck_assert_int_eq(cs_node_read(&node, &m, T + 1000, d), CS_NODE_OTHER);
    ck_assert_uint_eq(d[CS_STABLE].requests, 0);
    ck_assert_uint_eq(d[CS_CANARY].requests, 0);

    cs_read(&m, 50100, 5010, 20, 1795300000);
    ck_assert_int_eq(cs_node_read(&node, &m, T + 2000, d), CS_NODE_OTHER);
    ck_assert_uint_eq(d[CS_STABLE].requests, 0);

    /* a new pod behind the balancer once, then flipping: added at most
     * once, never again */
    cs_read(&m, 300, 30, 0, T / 1000 + 1);
    ck_assert_int_eq(cs_node_read(&node, &m, T + 2500, d),
                     CS_NODE_RESTARTED);
    cs_read(&m, 50200, 5020, 20, 1795300000);
    ck_assert_int_eq(cs_node_read(&node, &m, T + 2600, d), CS_NODE_OTHER);
    cs_read(&m, 400, 40, 0, T / 1000 + 1);
    ck_assert_int_eq(cs_node_read(&node, &m, T + 2700, d), CS_NODE_OTHER);
    ck_assert_uint_eq(d[CS_STABLE].requests, 0);

    /* one restarted after the last reading: its counts are all new */
    cs_read(&m, 10, 1, 0, T / 1000 + 3);
    ck_assert_int_eq(cs_node_read(&node, &m, T + 3000, d),
                     CS_NODE_RESTARTED);
    ck_assert_uint_eq(d[CS_STABLE].requests, 10);
}
END_TEST


/*
 * Two nginx with one node name, started in the same second: their
 * records flip, "created" the same; the writer ("instance") tells them
 * apart.  A restart (newer counters, another writer) still counts.
 */

START_TEST(test_node_two_writers_one_name)
{
    char          *text, *names[1];
    cs_node_t      node, back;
    cs_window_t    d[2];
    cs_metrics_t   m;

    memset(&node, 0, sizeof(node));

    cs_read(&m, 20, 10, 0, 1795300000);
    m.instance = 0xa;
    (void) cs_node_read(&node, &m, T, d);

    cs_read(&m, 60, 30, 0, 1795300000);
    m.instance = 0xb;
    ck_assert_int_eq(cs_node_read(&node, &m, T + 250, d), CS_NODE_OTHER);
    ck_assert_uint_eq(d[CS_STABLE].requests, 0);

    cs_read(&m, 20, 10, 0, 1795300000);
    m.instance = 0xa;
    ck_assert_int_eq(cs_node_read(&node, &m, T + 500, d), CS_NODE_OTHER);
    ck_assert_uint_eq(d[CS_STABLE].requests, 0);
    ck_assert_uint_eq(d[CS_CANARY].requests, 0);

    cs_read(&m, 25, 12, 0, 1795300000);
    m.instance = 0xa;
    ck_assert_int_eq(cs_node_read(&node, &m, T + 750, d), CS_NODE_COUNTED);
    ck_assert_uint_eq(d[CS_STABLE].requests, 5);

    /* the writer, kept with the readings */
    names[0] = "web-1";
    text = cs_nodes_format(&node, names, 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(cs_nodes_parse(&back, names, 1, text), 0);
    ck_assert_uint_eq(back.instance, 0xa);
    free(text);

    cs_read(&m, 3, 1, 0, T / 1000 + 1);
    m.instance = 0xc;
    ck_assert_int_eq(cs_node_read(&back, &m, T + 1000, d),
                     CS_NODE_RESTARTED);
    ck_assert_uint_eq(d[CS_STABLE].requests, 3);
}
END_TEST


START_TEST(test_readings_round_trip)
{
    char          *text, *names[3];
    size_t         bad;
    cs_node_t      nodes[3], back[3];
    cs_window_t    d[2];
    cs_metrics_t   m;

    names[0] = "http://10.0.0.1/canary_status";
    names[1] = "http://10.0.0.2/canary_status";
    names[2] = "http://10.0.0.3/canary_status";

    memset(nodes, 0, sizeof(nodes));

    cs_read(&m, 1000, 100, 3, 1795310000);
    (void) cs_node_read(&nodes[0], &m, T, d);
    cs_read(&m, 0, 0, 0, 0);
    (void) cs_node_read(&nodes[2], &m, T + 7, d);

    text = cs_nodes_format(nodes, names, 3);
    ck_assert_ptr_nonnull(text);

    memset(back, 0x5a, sizeof(back));
    ck_assert_uint_eq(cs_nodes_parse(back, names, 3, text), 0);
    ck_assert_int_eq(memcmp(back, nodes, sizeof(nodes)), 0);
    ck_assert_int_eq(back[1].seen, 0);

    /* another fleet's names, a broken line, a duplicate: skipped */
    names[0] = "http://10.0.0.9/canary_status";
    ck_assert_uint_eq(cs_nodes_parse(back, names, 3, text), 1);
    ck_assert_int_eq(back[0].seen, 0);
    ck_assert_int_eq(back[2].seen, 1);
    free(text);

    bad = cs_nodes_parse(back, names, 3, "http://10.0.0.3/canary_status "
                         "1 1 2 s 1 0 0 - c 1 0 0 -;"
                         "http://10.0.0.3/canary_status 1 1 2 s 1 0 0 - "
                         "c 1 0 0 -;"
                         "http://10.0.0.2/canary_status 1 1 2 s 1 0 0;"
                         "garbage;;");
    ck_assert_uint_eq(bad, 4);
    ck_assert_int_eq(back[2].seen, 1);
    ck_assert_int_eq(back[1].seen, 0);
    ck_assert_uint_eq(back[2].total[0].requests, 1);
}
END_TEST


START_TEST(test_nobody_answers)
{
    int            answered[2];
    char          *urls[2];
    size_t         n;
    cs_metrics_t   m[2];

    /* nothing listens on port 1 */
    urls[0] = "http://127.0.0.1:1/canary_status?format=json";
    urls[1] = "http://127.0.0.1:1/other";

    answered[0] = answered[1] = 1;

    n = cs_fetch(urls, urls, 2, "api", 500, m, answered, cs_err,
                 sizeof(cs_err));

    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(answered[0], 0);
    ck_assert_int_eq(answered[1], 0);
    ck_assert_msg(strstr(cs_err, urls[0]) != NULL, "%s", cs_err);
    ck_assert_msg(strstr(cs_err, "; http://127.0.0.1:1/other") != NULL,
                  "%s", cs_err);
}
END_TEST


UNIT_MAIN("sidecar_fetch", NULL, NULL, 0)
