
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

    ngx_http_canary_out_printf(out, "{\"time\":%lld,",
                               (long long) rep->now);
    ngx_http_canary_json_redis(out, rep);
    ngx_http_canary_out_printf(out, ",\"zone\":{\"name\":");
    ngx_http_canary_out_json_string(out, rep->zone_name.data,
                                    rep->zone_name.len);
    ngx_http_canary_out_printf(out, ",\"size\":%zu,\"used\":%zu},"
                               "\"splits\":{", rep->zone_size,
                               rep->zone_used);

    for (i = 0; i < rep->nsplits; i++) {
        if (i) {
            ngx_http_canary_out_printf(out, ",");
        }

        ngx_http_canary_json_split(out, &rep->splits[i]);
    }

    ngx_http_canary_out_printf(out, "}}\n");
}


/* "redis": null without canary_redis */

static void
ngx_http_canary_json_redis(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep)
{
    const ngx_http_canary_redis_report_t  *r;

    r = &rep->redis;

    if (!r->configured) {
        ngx_http_canary_out_printf(out, "\"redis\":null");
        return;
    }

    ngx_http_canary_out_printf(out, "\"redis\":{\"address\":");
    ngx_http_canary_out_json_string(out, r->address.data, r->address.len);
    ngx_http_canary_out_printf(out, ",\"master\":");

    if (r->master.len) {
        ngx_http_canary_out_json_string(out, r->master.data, r->master.len);

    } else {
        ngx_http_canary_out_printf(out, "null");
    }

    ngx_http_canary_out_printf(out, ",\"prefix\":");
    ngx_http_canary_out_json_string(out, r->prefix.data, r->prefix.len);
    ngx_http_canary_out_printf(out, ",\"node\":");
    ngx_http_canary_out_json_string(out, r->node.data, r->node.len);
    ngx_http_canary_out_printf(out, ",\"connected\":%s,\"last_sync\":%lld,"
                               "\"stale_seconds\":",
                               r->connected ? "true" : "false",
                               (long long) r->last_sync);

    if (r->last_sync) {
        ngx_http_canary_out_printf(out, "%lld",
                                   (long long) (rep->now - r->last_sync));

    } else {
        ngx_http_canary_out_printf(out, "null");
    }

    ngx_http_canary_out_printf(out, ",\"last_error\":");

    if (r->error_len) {
        ngx_http_canary_out_json_string(out, r->error, r->error_len);

    } else {
        ngx_http_canary_out_printf(out, "null");
    }

    ngx_http_canary_out_printf(out, ",\"last_error_time\":%lld}",
                               (long long) r->error_time);
}


static void
ngx_http_canary_json_split(ngx_http_canary_out_t *out,
    const ngx_http_canary_split_report_t *s)
{
    size_t  i;

    ngx_http_canary_out_json_string(out, s->name.data, s->name.len);
    ngx_http_canary_out_printf(out, ":{\"weight\":");
    ngx_http_canary_json_weight(out, s->weight);
    ngx_http_canary_out_printf(out, ",\"enabled\":%s,\"generation\":%llu,"
                               "\"created\":%lld,\"source\":\"%s\","
                               "\"state\":",
                               s->enabled ? "true" : "false",
                               (unsigned long long) s->generation,
                               (long long) s->created, s->source);
    ngx_http_canary_out_json_string(out, s->state, s->state_len);
    ngx_http_canary_out_printf(out, ",\"updated_by\":");
    ngx_http_canary_out_json_string(out, s->updated_by, s->updated_by_len);
    ngx_http_canary_out_printf(out, ",\"updated_at\":");
    ngx_http_canary_out_json_string(out, s->updated_at, s->updated_at_len);
    ngx_http_canary_out_printf(out, ",\"pins\":{\"stable\":%llu,"
                               "\"canary\":%llu}",
                               (unsigned long long) s->pins[0],
                               (unsigned long long) s->pins[1]);

    ngx_http_canary_out_printf(out, ",\"cohorts\":{");

    for (i = 0; i < s->ncohorts; i++) {
        if (i) {
            ngx_http_canary_out_printf(out, ",");
        }

        ngx_http_canary_out_json_string(out, s->cohorts[i].name.data,
                                        s->cohorts[i].name.len);
        ngx_http_canary_out_printf(out, ":");
        ngx_http_canary_json_weight(out, s->cohorts[i].weight);
    }

    ngx_http_canary_out_printf(out, "}");
    ngx_http_canary_json_cohort_traffic(out, s);

    ngx_http_canary_out_printf(out, ",\"guard\":{\"configured\":%s,"
                               "\"tripped\":%s,\"since\":%lld,\"reason\":",
                               s->guard.configured ? "true" : "false",
                               s->guard.tripped ? "true" : "false",
                               (long long) s->guard.since);
    ngx_http_canary_out_json_string(out, (const unsigned char *)
                                    s->guard.reason,
                                    strlen(s->guard.reason));

    if (s->guard.stays_until) {
        ngx_http_canary_out_printf(out, ",\"stays_until\":\"%s\"",
                                   s->guard.stays_until);

    } else {
        ngx_http_canary_out_printf(out, ",\"stays_until\":null");
    }

    ngx_http_canary_json_guard(out, &s->guard);

    ngx_http_canary_out_printf(out, "},\"variants\":{");

    for (i = 0; i < 2; i++) {
        ngx_http_canary_out_printf(out, "%s\"%s\":", i ? "," : "",
                                   ngx_http_canary_json_variants[i]);
        ngx_http_canary_json_variant(out, &s->variants[i]);
    }

    ngx_http_canary_out_printf(out, "}");
    ngx_http_canary_json_shadow(out, &s->shadow);
    ngx_http_canary_out_printf(out, "}");
}


static void
ngx_http_canary_json_variant(ngx_http_canary_out_t *out,
    const ngx_http_canary_variant_report_t *v)
{
    ngx_http_canary_out_printf(out, "{\"upstream\":");
    ngx_http_canary_out_json_string(out, v->upstream.data, v->upstream.len);

    ngx_http_canary_out_printf(out,
        ",\"requests\":%llu,\"responses\":{\"1xx\":%llu,\"2xx\":%llu,"
        "\"3xx\":%llu,\"4xx\":%llu,\"5xx\":%llu},\"upstream_errors\":%llu,"
        "\"latency\":",
        (unsigned long long) v->requests,
        (unsigned long long) v->responses[0],
        (unsigned long long) v->responses[1],
        (unsigned long long) v->responses[2],
        (unsigned long long) v->responses[3],
        (unsigned long long) v->responses[4],
        (unsigned long long) v->upstream_errors);

    ngx_http_canary_json_hist(out, &v->latency);

    ngx_http_canary_out_printf(out, ",\"upstream_latency\":");
    ngx_http_canary_json_hist(out, &v->upstream_latency);

    ngx_http_canary_out_printf(out,
        ",\"window\":{\"seconds\":%u,\"requests\":%llu,\"5xx\":%llu,"
        "\"upstream_errors\":%llu,",
        v->window.seconds,
        (unsigned long long) v->window.requests,
        (unsigned long long) v->window.responses_5xx,
        (unsigned long long) v->window.upstream_errors);

    ngx_http_canary_json_quantiles(out, &v->window.latency);

    ngx_http_canary_out_printf(out, ",");
    ngx_http_canary_json_counts(out, v->window.latency.counts);

    ngx_http_canary_out_printf(out, "}}");
}


/* le_ms ends with null: the last bucket has no upper bound (+Inf) */

static void
ngx_http_canary_json_hist(ngx_http_canary_out_t *out,
    const ngx_http_canary_hist_t *h)
{
    size_t    i;
    uint64_t  le;

    ngx_http_canary_out_printf(out, "{\"le_ms\":[");

    for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS; i++) {
        le = ngx_http_canary_hist_upper(i);

        if (le == UINT64_MAX) {
            ngx_http_canary_out_printf(out, "%snull", i ? "," : "");

        } else {
            ngx_http_canary_out_printf(out, "%s%llu.%03llu", i ? "," : "",
                                       (unsigned long long) le / 1000,
                                       (unsigned long long) le % 1000);
        }
    }

    ngx_http_canary_out_printf(out, "],");
    ngx_http_canary_json_counts(out, h->counts);

    ngx_http_canary_out_printf(out, ",\"sum_ms\":%llu.%03llu,"
                               "\"count\":%llu,",
                               (unsigned long long) h->sum_us / 1000,
                               (unsigned long long) h->sum_us % 1000,
                               (unsigned long long) h->count);

    ngx_http_canary_json_quantiles(out, h);

    ngx_http_canary_out_printf(out, "}");
}


static void
ngx_http_canary_json_counts(ngx_http_canary_out_t *out,
    const uint64_t *counts)
{
    size_t  i;

    ngx_http_canary_out_printf(out, "\"counts\":[");

    for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS; i++) {
        ngx_http_canary_out_printf(out, "%s%llu", i ? "," : "",
                                   (unsigned long long) counts[i]);
    }

    ngx_http_canary_out_printf(out, "]");
}


static void
ngx_http_canary_json_quantiles(ngx_http_canary_out_t *out,
    const ngx_http_canary_hist_t *h)
{
    ngx_http_canary_out_printf(out,
        "\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f",
        ngx_http_canary_hist_quantile(h->counts, 0.50) / 1000,
        ngx_http_canary_hist_quantile(h->counts, 0.95) / 1000,
        ngx_http_canary_hist_quantile(h->counts, 0.99) / 1000);
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
        ngx_http_canary_out_printf(out, ",\"limits\":null");

    } else {
        ngx_http_canary_out_printf(out, ",\"limits\":{\"error_rate\":");

        if (l->error_rate) {
            ngx_http_canary_json_weight(out, l->error_rate);

        } else {
            ngx_http_canary_out_printf(out, "null");
        }

        ngx_http_canary_out_printf(out, l->upstream_errors
                                   ? ",\"upstream_errors\":%llu"
                                   : ",\"upstream_errors\":null",
                                   (unsigned long long) l->upstream_errors);

        if (l->latency_p99_us) {
            ngx_http_canary_out_printf(out, ",\"latency_p99_ms\":%.3f",
                                       (double) l->latency_p99_us / 1000);

        } else {
            ngx_http_canary_out_printf(out, ",\"latency_p99_ms\":null");
        }

        ngx_http_canary_out_printf(out, ",\"min_requests\":%llu,"
                                   "\"window_seconds\":%u}",
                                   (unsigned long long) l->min_requests,
                                   l->window);
    }

    if (!g->seen) {
        ngx_http_canary_out_printf(out, ",\"windows\":null");

    } else {
        ngx_http_canary_out_printf(out, ",\"windows\":{");
        ngx_http_canary_json_guard_sides(out, g->window);
        ngx_http_canary_out_printf(out, "}");
    }

    /* its own window now: the numbers its next check judges */
    if (!g->configured) {
        ngx_http_canary_out_printf(out, ",\"current\":null");
        return;
    }

    ngx_http_canary_out_printf(out, ",\"current\":{\"seconds\":%u,",
                               g->now_seconds);
    ngx_http_canary_json_guard_sides(out, g->now);
    ngx_http_canary_out_printf(out, "}");
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

        ngx_http_canary_out_printf(out, "%s\"%s\":{\"requests\":%llu,"
                                   "\"errors\":%llu,\"upstream_errors\":%llu,"
                                   "\"error_rate\":%.2f,\"p99_ms\":%.3f}",
                                   i ? "," : "",
                                   ngx_http_canary_json_variants[i],
                                   (unsigned long long) w->requests,
                                   (unsigned long long) w->errors,
                                   (unsigned long long) w->upstream_errors,
                                   w->requests
                                   ? 100.0 * (double) w->errors
                                     / (double) w->requests
                                   : 0.0,
                                   (double) w->p99_us / 1000);
    }
}


static void
ngx_http_canary_json_weight(ngx_http_canary_out_t *out, uint32_t weight)
{
    size_t         n;
    unsigned char  buf[NGX_HTTP_CANARY_WEIGHT_LEN];

    n = ngx_http_canary_format_weight(buf, weight);

    ngx_http_canary_out_printf(out, "%.*s", (int) n, buf);
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

    ngx_http_canary_out_printf(out, ",\"cohort_traffic\":[");

    for (i = 0; i < s->ncohorts; i++) {
        c = &s->cohorts[i];

        ngx_http_canary_out_printf(out, "%s{\"name\":", i ? "," : "");
        ngx_http_canary_out_json_string(out, c->name.data, c->name.len);
        ngx_http_canary_out_printf(out, ",\"weight\":");
        ngx_http_canary_json_weight(out, c->weight);

        for (v = 0; v < 2; v++) {
            ngx_http_canary_out_printf(out,
                ",\"%s\":{\"requests\":%llu,\"5xx\":%llu}",
                ngx_http_canary_json_variants[v],
                (unsigned long long) c->requests[v],
                (unsigned long long) c->responses_5xx[v]);
        }

        ngx_http_canary_out_printf(out, "}");
    }

    ngx_http_canary_out_printf(out, "]");
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
        ngx_http_canary_out_printf(out, ",\"shadow\":null");
        return;
    }

    ngx_http_canary_out_printf(out, ",\"shadow\":{\"percent\":");
    ngx_http_canary_json_weight(out, sh->percent);
    ngx_http_canary_out_printf(out, ",\"requests\":%llu,\"compared\":%llu,"
                               "\"matched\":%llu,\"mismatched\":"
                               "{\"status\":%llu,\"body\":%llu},"
                               "\"canary_errors\":%llu,\"timeouts\":%llu,"
                               "\"skipped\":{\"method\":%llu,"
                               "\"body_too_large\":%llu,\"in_flight\":%llu,"
                               "\"stable_error\":%llu},"
                               "\"match_rate\":",
                               (unsigned long long) sh->requests,
                               (unsigned long long) sh->compared,
                               (unsigned long long) sh->matched,
                               (unsigned long long) sh->mismatched_status,
                               (unsigned long long) sh->mismatched_body,
                               (unsigned long long) sh->canary_errors,
                               (unsigned long long) sh->timeouts,
                               (unsigned long long) sh->skipped_method,
                               (unsigned long long)
                                   sh->skipped_body_too_large,
                               (unsigned long long) sh->skipped_in_flight,
                               (unsigned long long)
                                   sh->skipped_stable_error);

    if (sh->compared) {
        ngx_http_canary_out_printf(out, "%.3f",
                                   100.0 * (double) sh->matched
                                   / (double) sh->compared);

    } else {
        ngx_http_canary_out_printf(out, "null");
    }

    ngx_http_canary_out_printf(out, ",\"examples\":[");

    for (i = 0; i < sh->nexamples; i++) {
        e = &sh->examples[i];

        ngx_http_canary_out_printf(out, "%s{\"uri\":", i ? "," : "");
        ngx_http_canary_out_json_string(out, e->uri, e->uri_len);
        ngx_http_canary_out_printf(out, ",\"stable_status\":%u,"
                                   "\"canary_status\":%u,"
                                   "\"stable_bytes\":%llu,"
                                   "\"canary_bytes\":%llu,\"at\":%lld}",
                                   e->stable_status, e->canary_status,
                                   (unsigned long long) e->stable_bytes,
                                   (unsigned long long) e->canary_bytes,
                                   (long long) e->at);
    }

    ngx_http_canary_out_printf(out, "]}");
}
