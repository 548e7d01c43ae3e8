
/*
 * /canary_status as JSON: the schema documented in README.md.
 */


#include <string.h>

#include "ngx_http_canary_parse.h"
#include "ngx_http_canary_report.h"


static void ngx_http_canary_json_redis(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep);
static void ngx_http_canary_json_split(ngx_http_canary_out_t *out,
    const ngx_http_canary_split_report_t *s);
static void ngx_http_canary_json_variant(ngx_http_canary_out_t *out,
    const ngx_http_canary_variant_report_t *v);
static void ngx_http_canary_json_hist(ngx_http_canary_out_t *out,
    const ngx_http_canary_hist_t *h);
static void ngx_http_canary_json_counts(ngx_http_canary_out_t *out,
    const uint64_t *counts);
static void ngx_http_canary_json_quantiles(ngx_http_canary_out_t *out,
    const ngx_http_canary_hist_t *h);
static void ngx_http_canary_json_guard(ngx_http_canary_out_t *out,
    const ngx_http_canary_guard_report_t *g);
static void ngx_http_canary_json_guard_sides(ngx_http_canary_out_t *out,
    const ngx_http_canary_guard_window_t *windows);
static void ngx_http_canary_json_weight(ngx_http_canary_out_t *out,
    uint32_t weight);
static void ngx_http_canary_json_cohort_traffic(ngx_http_canary_out_t *out,
    const ngx_http_canary_split_report_t *s);
static void ngx_http_canary_json_bool(ngx_http_canary_out_t *out, int b);
static void ngx_http_canary_json_le_ms(ngx_http_canary_out_t *out);
static void ngx_http_canary_json_bounds(ngx_http_canary_out_t *out);


static void ngx_http_canary_json_shadow(ngx_http_canary_out_t *out,
    const ngx_http_canary_shadow_report_t *sh);


static const char  *ngx_http_canary_json_variants[] = { "stable", "canary" };


size_t
ngx_http_canary_render_estimate(size_t nsplits)
{
    /*
     * four histograms of 322 buckets, each bound and count <= 24 bytes;
     * each cohort's name (escaped) and counters in both formats
     */
    return 4096 + nsplits * (4 * 2 * NGX_HTTP_CANARY_HIST_BUCKETS * 24
                             + 8192
                             + NGX_HTTP_CANARY_REPORT_COHORTS * 4096
                             + NGX_HTTP_CANARY_SHADOW_EXAMPLES
                               * (NGX_HTTP_CANARY_SHADOW_URI_LEN * 6 + 256));
}


void
ngx_http_canary_render_json(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep)
{
    size_t  i;

    ngx_http_canary_out_literal(out, "{\"time\":");
    ngx_http_canary_out_int(out, rep->now);
    ngx_http_canary_out_literal(out, ",");
    ngx_http_canary_json_redis(out, rep);
    ngx_http_canary_out_literal(out, ",\"zone\":{\"name\":");
    ngx_http_canary_out_json_string(out, rep->zone_name.data,
                                    rep->zone_name.len);
    ngx_http_canary_out_literal(out, ",\"size\":");
    ngx_http_canary_out_uint(out, rep->zone_size);
    ngx_http_canary_out_literal(out, ",\"used\":");
    ngx_http_canary_out_uint(out, rep->zone_used);
    ngx_http_canary_out_literal(out, "},\"splits\":{");

    for (i = 0; i < rep->nsplits; i++) {
        if (i) {
            ngx_http_canary_out_literal(out, ",");
        }

        ngx_http_canary_json_split(out, &rep->splits[i]);
    }

    ngx_http_canary_out_literal(out, "}}\n");
}


/* "redis": null without canary_redis */

static void
ngx_http_canary_json_redis(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep)
{
    const ngx_http_canary_redis_report_t  *r;

    r = &rep->redis;

    if (!r->configured) {
        ngx_http_canary_out_literal(out, "\"redis\":null");
        return;
    }

    ngx_http_canary_out_literal(out, "\"redis\":{\"address\":");
    ngx_http_canary_out_json_string(out, r->address.data, r->address.len);
    ngx_http_canary_out_literal(out, ",\"master\":");

    if (r->master.len) {
        ngx_http_canary_out_json_string(out, r->master.data, r->master.len);

    } else {
        ngx_http_canary_out_literal(out, "null");
    }

    ngx_http_canary_out_literal(out, ",\"prefix\":");
    ngx_http_canary_out_json_string(out, r->prefix.data, r->prefix.len);
    ngx_http_canary_out_literal(out, ",\"node\":");
    ngx_http_canary_out_json_string(out, r->node.data, r->node.len);
    ngx_http_canary_out_literal(out, ",\"connected\":");
    ngx_http_canary_json_bool(out, r->connected);
    ngx_http_canary_out_literal(out, ",\"last_sync\":");
    ngx_http_canary_out_int(out, r->last_sync);
    ngx_http_canary_out_literal(out, ",\"stale_seconds\":");

    if (r->last_sync) {
        ngx_http_canary_out_int(out, (int64_t) (rep->now - r->last_sync));

    } else {
        ngx_http_canary_out_literal(out, "null");
    }

    ngx_http_canary_out_literal(out, ",\"last_error\":");

    if (r->error_len) {
        ngx_http_canary_out_json_string(out, r->error, r->error_len);

    } else {
        ngx_http_canary_out_literal(out, "null");
    }

    ngx_http_canary_out_literal(out, ",\"last_error_time\":");
    ngx_http_canary_out_int(out, r->error_time);
    ngx_http_canary_out_literal(out, "}");
}


static void
ngx_http_canary_json_split(ngx_http_canary_out_t *out,
    const ngx_http_canary_split_report_t *s)
{
    size_t  i;

    ngx_http_canary_out_json_string(out, s->name.data, s->name.len);
    ngx_http_canary_out_literal(out, ":{\"weight\":");
    ngx_http_canary_json_weight(out, s->weight);
    ngx_http_canary_out_literal(out, ",\"enabled\":");
    ngx_http_canary_json_bool(out, s->enabled);
    ngx_http_canary_out_literal(out, ",\"generation\":");
    ngx_http_canary_out_uint(out, s->generation);
    ngx_http_canary_out_literal(out, ",\"created\":");
    ngx_http_canary_out_int(out, s->created);
    ngx_http_canary_out_literal(out, ",\"source\":\"");
    ngx_http_canary_out_cstr(out, s->source);
    ngx_http_canary_out_literal(out, "\",\"state\":");
    ngx_http_canary_out_json_string(out, s->state, s->state_len);
    ngx_http_canary_out_literal(out, ",\"updated_by\":");
    ngx_http_canary_out_json_string(out, s->updated_by, s->updated_by_len);
    ngx_http_canary_out_literal(out, ",\"updated_at\":");
    ngx_http_canary_out_json_string(out, s->updated_at, s->updated_at_len);
    ngx_http_canary_out_literal(out, ",\"pins\":{\"stable\":");
    ngx_http_canary_out_uint(out, s->pins[0]);
    ngx_http_canary_out_literal(out, ",\"canary\":");
    ngx_http_canary_out_uint(out, s->pins[1]);
    ngx_http_canary_out_literal(out, "}");

    ngx_http_canary_out_literal(out, ",\"cohorts\":{");

    for (i = 0; i < s->ncohorts; i++) {
        if (i) {
            ngx_http_canary_out_literal(out, ",");
        }

        ngx_http_canary_out_json_string(out, s->cohorts[i].name.data,
                                        s->cohorts[i].name.len);
        ngx_http_canary_out_literal(out, ":");
        ngx_http_canary_json_weight(out, s->cohorts[i].weight);
    }

    ngx_http_canary_out_literal(out, "}");
    ngx_http_canary_json_cohort_traffic(out, s);

    ngx_http_canary_out_literal(out, ",\"guard\":{\"configured\":");
    ngx_http_canary_json_bool(out, s->guard.configured);
    ngx_http_canary_out_literal(out, ",\"tripped\":");
    ngx_http_canary_json_bool(out, s->guard.tripped);
    ngx_http_canary_out_literal(out, ",\"since\":");
    ngx_http_canary_out_int(out, s->guard.since);
    ngx_http_canary_out_literal(out, ",\"reason\":");
    ngx_http_canary_out_json_string(out, (const unsigned char *)
                                    s->guard.reason,
                                    strlen(s->guard.reason));

    if (s->guard.stays_until) {
        ngx_http_canary_out_literal(out, ",\"stays_until\":\"");
        ngx_http_canary_out_cstr(out, s->guard.stays_until);
        ngx_http_canary_out_literal(out, "\"");

    } else {
        ngx_http_canary_out_literal(out, ",\"stays_until\":null");
    }

    ngx_http_canary_json_guard(out, &s->guard);

    ngx_http_canary_out_literal(out, "},\"variants\":{");

    for (i = 0; i < 2; i++) {
        if (i) {
            ngx_http_canary_out_literal(out, ",");
        }

        ngx_http_canary_out_literal(out, "\"");
        ngx_http_canary_out_cstr(out, ngx_http_canary_json_variants[i]);
        ngx_http_canary_out_literal(out, "\":");
        ngx_http_canary_json_variant(out, &s->variants[i]);
    }

    ngx_http_canary_out_literal(out, "}");
    ngx_http_canary_json_shadow(out, &s->shadow);
    ngx_http_canary_out_literal(out, "}");
}


static void
ngx_http_canary_json_variant(ngx_http_canary_out_t *out,
    const ngx_http_canary_variant_report_t *v)
{
    ngx_http_canary_out_literal(out, "{\"upstream\":");
    ngx_http_canary_out_json_string(out, v->upstream.data, v->upstream.len);

    ngx_http_canary_out_literal(out, ",\"requests\":");
    ngx_http_canary_out_uint(out, v->requests);
    ngx_http_canary_out_literal(out, ",\"responses\":{\"1xx\":");
    ngx_http_canary_out_uint(out, v->responses[0]);
    ngx_http_canary_out_literal(out, ",\"2xx\":");
    ngx_http_canary_out_uint(out, v->responses[1]);
    ngx_http_canary_out_literal(out, ",\"3xx\":");
    ngx_http_canary_out_uint(out, v->responses[2]);
    ngx_http_canary_out_literal(out, ",\"4xx\":");
    ngx_http_canary_out_uint(out, v->responses[3]);
    ngx_http_canary_out_literal(out, ",\"5xx\":");
    ngx_http_canary_out_uint(out, v->responses[4]);
    ngx_http_canary_out_literal(out, "},\"upstream_errors\":");
    ngx_http_canary_out_uint(out, v->upstream_errors);
    ngx_http_canary_out_literal(out, ",\"latency\":");

    ngx_http_canary_json_hist(out, &v->latency);

    ngx_http_canary_out_literal(out, ",\"upstream_latency\":");
    ngx_http_canary_json_hist(out, &v->upstream_latency);

    ngx_http_canary_out_literal(out, ",\"window\":{\"seconds\":");
    ngx_http_canary_out_uint(out, v->window.seconds);
    ngx_http_canary_out_literal(out, ",\"requests\":");
    ngx_http_canary_out_uint(out, v->window.requests);
    ngx_http_canary_out_literal(out, ",\"5xx\":");
    ngx_http_canary_out_uint(out, v->window.responses_5xx);
    ngx_http_canary_out_literal(out, ",\"upstream_errors\":");
    ngx_http_canary_out_uint(out, v->window.upstream_errors);
    ngx_http_canary_out_literal(out, ",");

    ngx_http_canary_json_quantiles(out, &v->window.latency);

    ngx_http_canary_out_literal(out, ",");
    ngx_http_canary_json_counts(out, v->window.latency.counts);

    ngx_http_canary_out_literal(out, "}}");
}


/* le_ms ends with null: the last bucket has no upper bound (+Inf) */

static void
ngx_http_canary_json_hist(ngx_http_canary_out_t *out,
    const ngx_http_canary_hist_t *h)
{
    ngx_http_canary_out_literal(out, "{\"le_ms\":[");
    ngx_http_canary_json_le_ms(out);
    ngx_http_canary_out_literal(out, "],");
    ngx_http_canary_json_counts(out, h->counts);

    ngx_http_canary_out_literal(out, ",\"sum_ms\":");
    ngx_http_canary_out_fixed(out, h->sum_us, 3);
    ngx_http_canary_out_literal(out, ",\"count\":");
    ngx_http_canary_out_uint(out, h->count);
    ngx_http_canary_out_literal(out, ",");

    ngx_http_canary_json_quantiles(out, h);

    ngx_http_canary_out_literal(out, "}");
}


/*
 * The bounds are the layout's, the same in every histogram: their text
 * is made once per process and copied (40 times in a scrape of 10 splits)
 */

static void
ngx_http_canary_json_le_ms(ngx_http_canary_out_t *out)
{
    ngx_http_canary_out_t  o;

    /* "67108.864," at most per bound */
    static unsigned char   text[NGX_HTTP_CANARY_HIST_BUCKETS * 10];
    static size_t          len;

    if (len == 0) {
        o.pos = text;
        o.end = text + sizeof(text);
        o.need = 0;

        ngx_http_canary_json_bounds(&o);

        if (o.need > sizeof(text)) {
            /* cannot be: the bounds are constants */
            ngx_http_canary_json_bounds(out);
            return;
        }

        len = o.need;
    }

    ngx_http_canary_out_bytes(out, text, len);
}


static void
ngx_http_canary_json_bounds(ngx_http_canary_out_t *out)
{
    size_t    i;
    uint64_t  le;

    for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS; i++) {
        if (i) {
            ngx_http_canary_out_literal(out, ",");
        }

        le = ngx_http_canary_hist_upper(i);

        if (le == UINT64_MAX) {
            ngx_http_canary_out_literal(out, "null");

        } else {
            ngx_http_canary_out_fixed(out, le, 3);
        }
    }
}


static void
ngx_http_canary_json_counts(ngx_http_canary_out_t *out,
    const uint64_t *counts)
{
    ngx_http_canary_out_literal(out, "\"counts\":[");
    ngx_http_canary_out_uints(out, counts, NGX_HTTP_CANARY_HIST_BUCKETS);
    ngx_http_canary_out_literal(out, "]");
}


static void
ngx_http_canary_json_quantiles(ngx_http_canary_out_t *out,
    const ngx_http_canary_hist_t *h)
{
    double  us[3];

    static const double  qs[3] = { 0.50, 0.95, 0.99 };

    ngx_http_canary_hist_quantiles(h->counts, qs, 3, us);

    ngx_http_canary_out_literal(out, "\"p50_ms\":");
    ngx_http_canary_out_double(out, us[0] / 1000, 3);
    ngx_http_canary_out_literal(out, ",\"p95_ms\":");
    ngx_http_canary_out_double(out, us[1] / 1000, 3);
    ngx_http_canary_out_literal(out, ",\"p99_ms\":");
    ngx_http_canary_out_double(out, us[2] / 1000, 3);
}


/*
 * The guard's limits (null: no such limit) and, when it tripped here, the
 * windows it tripped on; null when it did not, or followed another
 * nginx's trip from Redis.  "current": its window now (null: no guard).
 */

static void
ngx_http_canary_json_guard(ngx_http_canary_out_t *out,
    const ngx_http_canary_guard_report_t *g)
{
    const ngx_http_canary_guard_limits_t  *l;

    l = &g->limits;

    if (!g->configured) {
        ngx_http_canary_out_literal(out, ",\"limits\":null");

    } else {
        ngx_http_canary_out_literal(out, ",\"limits\":{\"error_rate\":");

        if (l->error_rate) {
            ngx_http_canary_json_weight(out, l->error_rate);

        } else {
            ngx_http_canary_out_literal(out, "null");
        }

        ngx_http_canary_out_literal(out, ",\"upstream_errors\":");

        if (l->upstream_errors) {
            ngx_http_canary_out_uint(out, l->upstream_errors);

        } else {
            ngx_http_canary_out_literal(out, "null");
        }

        if (l->latency_p99_us) {
            ngx_http_canary_out_literal(out, ",\"latency_p99_ms\":");
            ngx_http_canary_out_double(out,
                                       (double) l->latency_p99_us / 1000, 3);

        } else {
            ngx_http_canary_out_literal(out, ",\"latency_p99_ms\":null");
        }

        ngx_http_canary_out_literal(out, ",\"min_requests\":");
        ngx_http_canary_out_uint(out, l->min_requests);
        ngx_http_canary_out_literal(out, ",\"window_seconds\":");
        ngx_http_canary_out_uint(out, l->window);
        ngx_http_canary_out_literal(out, "}");
    }

    if (!g->seen) {
        ngx_http_canary_out_literal(out, ",\"windows\":null");

    } else {
        ngx_http_canary_out_literal(out, ",\"windows\":{");
        ngx_http_canary_json_guard_sides(out, g->window);
        ngx_http_canary_out_literal(out, "}");
    }

    /* its own window now: the numbers its next check judges */
    if (!g->configured) {
        ngx_http_canary_out_literal(out, ",\"current\":null");
        return;
    }

    ngx_http_canary_out_literal(out, ",\"current\":{\"seconds\":");
    ngx_http_canary_out_uint(out, g->now_seconds);
    ngx_http_canary_out_literal(out, ",");
    ngx_http_canary_json_guard_sides(out, g->now);
    ngx_http_canary_out_literal(out, "}");
}


/* "stable":{...},"canary":{...}: the caller adds the braces */

static void
ngx_http_canary_json_guard_sides(ngx_http_canary_out_t *out,
    const ngx_http_canary_guard_window_t *windows)
{
    size_t                                 i;
    const ngx_http_canary_guard_window_t  *w;

    for (i = 0; i < 2; i++) {
        w = &windows[i];

        if (i) {
            ngx_http_canary_out_literal(out, ",");
        }

        ngx_http_canary_out_literal(out, "\"");
        ngx_http_canary_out_cstr(out, ngx_http_canary_json_variants[i]);
        ngx_http_canary_out_literal(out, "\":{\"requests\":");
        ngx_http_canary_out_uint(out, w->requests);
        ngx_http_canary_out_literal(out, ",\"errors\":");
        ngx_http_canary_out_uint(out, w->errors);
        ngx_http_canary_out_literal(out, ",\"upstream_errors\":");
        ngx_http_canary_out_uint(out, w->upstream_errors);
        ngx_http_canary_out_literal(out, ",\"error_rate\":");
        ngx_http_canary_out_double(out, w->requests
                                        ? 100.0 * (double) w->errors
                                          / (double) w->requests
                                        : 0.0, 2);
        ngx_http_canary_out_literal(out, ",\"p99_ms\":");
        ngx_http_canary_out_double(out, (double) w->p99_us / 1000, 3);
        ngx_http_canary_out_literal(out, "}");
    }
}


static void
ngx_http_canary_json_weight(ngx_http_canary_out_t *out, uint32_t weight)
{
    size_t         n;
    unsigned char  buf[NGX_HTTP_CANARY_WEIGHT_LEN];

    n = ngx_http_canary_format_weight(buf, weight);

    ngx_http_canary_out_bytes(out, buf, n);
}


static void
ngx_http_canary_json_bool(ngx_http_canary_out_t *out, int b)
{
    if (b) {
        ngx_http_canary_out_literal(out, "true");

    } else {
        ngx_http_canary_out_literal(out, "false");
    }
}


/*
 * "cohort_traffic": per cohort, in nginx.conf's order, its weight and the
 * requests its weight decided per variant
 */

static void
ngx_http_canary_json_cohort_traffic(ngx_http_canary_out_t *out,
    const ngx_http_canary_split_report_t *s)
{
    size_t                                  i, v;
    const ngx_http_canary_cohort_report_t  *c;

    ngx_http_canary_out_literal(out, ",\"cohort_traffic\":[");

    for (i = 0; i < s->ncohorts; i++) {
        c = &s->cohorts[i];

        if (i) {
            ngx_http_canary_out_literal(out, ",");
        }

        ngx_http_canary_out_literal(out, "{\"name\":");
        ngx_http_canary_out_json_string(out, c->name.data, c->name.len);
        ngx_http_canary_out_literal(out, ",\"weight\":");
        ngx_http_canary_json_weight(out, c->weight);

        for (v = 0; v < 2; v++) {
            ngx_http_canary_out_literal(out, ",\"");
            ngx_http_canary_out_cstr(out, ngx_http_canary_json_variants[v]);
            ngx_http_canary_out_literal(out, "\":{\"requests\":");
            ngx_http_canary_out_uint(out, c->requests[v]);
            ngx_http_canary_out_literal(out, ",\"5xx\":");
            ngx_http_canary_out_uint(out, c->responses_5xx[v]);
            ngx_http_canary_out_literal(out, "}");
        }

        ngx_http_canary_out_literal(out, "}");
    }

    ngx_http_canary_out_literal(out, "]");
}


/*
 * "shadow": null without "shadow" in the split; match_rate is a percent
 * (matched of compared), null while nothing was compared; examples
 * newest first
 */

static void
ngx_http_canary_json_shadow(ngx_http_canary_out_t *out,
    const ngx_http_canary_shadow_report_t *sh)
{
    size_t                                   i;
    const ngx_http_canary_shadow_example_t  *e;

    if (!sh->configured) {
        ngx_http_canary_out_literal(out, ",\"shadow\":null");
        return;
    }

    ngx_http_canary_out_literal(out, ",\"shadow\":{\"percent\":");
    ngx_http_canary_json_weight(out, sh->percent);
    ngx_http_canary_out_literal(out, ",\"requests\":");
    ngx_http_canary_out_uint(out, sh->requests);
    ngx_http_canary_out_literal(out, ",\"compared\":");
    ngx_http_canary_out_uint(out, sh->compared);
    ngx_http_canary_out_literal(out, ",\"matched\":");
    ngx_http_canary_out_uint(out, sh->matched);
    ngx_http_canary_out_literal(out, ",\"mismatched\":{\"status\":");
    ngx_http_canary_out_uint(out, sh->mismatched_status);
    ngx_http_canary_out_literal(out, ",\"body\":");
    ngx_http_canary_out_uint(out, sh->mismatched_body);
    ngx_http_canary_out_literal(out, "},\"canary_errors\":");
    ngx_http_canary_out_uint(out, sh->canary_errors);
    ngx_http_canary_out_literal(out, ",\"timeouts\":");
    ngx_http_canary_out_uint(out, sh->timeouts);
    ngx_http_canary_out_literal(out, ",\"skipped\":{\"method\":");
    ngx_http_canary_out_uint(out, sh->skipped_method);
    ngx_http_canary_out_literal(out, ",\"body_too_large\":");
    ngx_http_canary_out_uint(out, sh->skipped_body_too_large);
    ngx_http_canary_out_literal(out, ",\"in_flight\":");
    ngx_http_canary_out_uint(out, sh->skipped_in_flight);
    ngx_http_canary_out_literal(out, ",\"stable_error\":");
    ngx_http_canary_out_uint(out, sh->skipped_stable_error);
    ngx_http_canary_out_literal(out, "},\"match_rate\":");

    if (sh->compared) {
        ngx_http_canary_out_double(out, 100.0 * (double) sh->matched
                                        / (double) sh->compared, 3);

    } else {
        ngx_http_canary_out_literal(out, "null");
    }

    ngx_http_canary_out_literal(out, ",\"examples\":[");

    for (i = 0; i < sh->nexamples; i++) {
        e = &sh->examples[i];

        if (i) {
            ngx_http_canary_out_literal(out, ",");
        }

        ngx_http_canary_out_literal(out, "{\"uri\":");
        ngx_http_canary_out_json_string(out, e->uri, e->uri_len);
        ngx_http_canary_out_literal(out, ",\"stable_status\":");
        ngx_http_canary_out_uint(out, e->stable_status);
        ngx_http_canary_out_literal(out, ",\"canary_status\":");
        ngx_http_canary_out_uint(out, e->canary_status);
        ngx_http_canary_out_literal(out, ",\"stable_bytes\":");
        ngx_http_canary_out_uint(out, e->stable_bytes);
        ngx_http_canary_out_literal(out, ",\"canary_bytes\":");
        ngx_http_canary_out_uint(out, e->canary_bytes);
        ngx_http_canary_out_literal(out, ",\"at\":");
        ngx_http_canary_out_int(out, e->at);
        ngx_http_canary_out_literal(out, "}");
    }

    ngx_http_canary_out_literal(out, "]}");
}
