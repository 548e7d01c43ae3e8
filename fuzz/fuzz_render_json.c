
/*
 * /canary_status as JSON, rendered from a report filled with fuzz bytes
 * (fuzz_report.h: names and texts of any bytes, states, counters and
 * histograms).
 *
 * Checked:
 *   - the output buffer: the size counted is the size written, a short
 *     buffer gets a prefix and nothing past its end (fuzz_render());
 *   - the output is JSON (jansson, json_loadb; JSON_ALLOW_NUL, as "\u0000"
 *     is valid JSON) and says what the report says: every string decodes
 *     to its bytes (a byte over 0x7f as the code point of that value),
 *     every number is the report's, weights as "12.25", histograms of 322
 *     buckets with their bounds, the quantiles the module computes;
 *   - the sidecar reads it (cs_fetch_parse(), the code that adds up a
 *     fleet): for every split, the window counts and histogram, the
 *     generation, the guard and the kill switch come out as they went in,
 *     whatever the strings hold (a NUL byte, "\u0000", among them).
 */


#include <math.h>

#include <jansson.h>

#include "fuzz_report.h"
#include "fetch.h"


/* the UTF-8 that a JSON string of these bytes decodes to */
static size_t
decoded(const unsigned char *p, size_t len, char *out)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < 0x80) {
            out[n++] = (char) p[i];

        } else {
            out[n++] = (char) (0xc0 | (p[i] >> 6));
            out[n++] = (char) (0x80 | (p[i] & 0x3f));
        }
    }

    out[n] = '\0';

    return n;
}


static json_t *
member(json_t *obj, const char *key, const char *where)
{
    json_t  *v;

    fuzz_assert(json_is_object(obj), "%s is not an object", where);

    v = json_object_get(obj, key);

    fuzz_assert(v != NULL, "no \"%s\" in %s", key, where);

    return v;
}


static void
check_string(json_t *v, const unsigned char *p, size_t len,
    const char *what)
{
    char    want[2 * 256 + 1];
    size_t  n;

    n = decoded(p, len, want);

    fuzz_assert(json_is_string(v), "%s is not a string", what);
    fuzz_assert(json_string_length(v) == n
                && memcmp(json_string_value(v), want, n) == 0,
                "%s: %zu bytes, not the %zu of the report", what,
                json_string_length(v), n);
}


static void
check_uint(json_t *v, uint64_t want, const char *what)
{
    fuzz_assert(json_is_integer(v) && json_integer_value(v) >= 0
                && (uint64_t) json_integer_value(v) == want,
                "%s is not %llu", what, (unsigned long long) want);
}


static void
check_bool(json_t *v, int want, const char *what)
{
    fuzz_assert(json_is_boolean(v) && json_is_true(v) == !!want,
                "%s is not %s", what, want ? "true" : "false");
}


static void
check_weight(json_t *v, uint32_t w, const char *what)
{
    if (w > NGX_HTTP_CANARY_WEIGHT_MAX) {
        w = NGX_HTTP_CANARY_WEIGHT_MAX;
    }

    fuzz_assert(json_is_number(v)
                && llround(json_number_value(v) * 100) == (long long) w,
                "%s is not %u hundredths", what, w);
}


static void
check_ms(json_t *v, double want_us, const char *what)
{
    fuzz_assert(json_is_number(v)
                && fabs(json_number_value(v) - want_us / 1000) < 0.0006,
                "%s is %g, not %g", what, json_number_value(v),
                want_us / 1000);
}


static void
check_counts(json_t *a, const uint64_t *counts, const char *what)
{
    size_t  i;

    fuzz_assert(json_is_array(a)
                && json_array_size(a) == NGX_HTTP_CANARY_HIST_BUCKETS,
                "%s is not an array of %d counts", what,
                NGX_HTTP_CANARY_HIST_BUCKETS);

    for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS; i++) {
        check_uint(json_array_get(a, i), counts[i], what);
    }
}


static void
check_quantiles(json_t *o, const uint64_t *counts, const char *what)
{
    check_ms(member(o, "p50_ms", what),
             ngx_http_canary_hist_quantile(counts, 0.50), "p50_ms");
    check_ms(member(o, "p95_ms", what),
             ngx_http_canary_hist_quantile(counts, 0.95), "p95_ms");
    check_ms(member(o, "p99_ms", what),
             ngx_http_canary_hist_quantile(counts, 0.99), "p99_ms");
}


static void
check_hist(json_t *o, const ngx_http_canary_hist_t *h, const char *what)
{
    size_t    i;
    json_t   *le;
    uint64_t  up;

    le = member(o, "le_ms", what);

    fuzz_assert(json_is_array(le)
                && json_array_size(le) == NGX_HTTP_CANARY_HIST_BUCKETS,
                "%s.le_ms is not %d bounds", what,
                NGX_HTTP_CANARY_HIST_BUCKETS);

    for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS; i++) {
        up = ngx_http_canary_hist_upper(i);

        if (up == UINT64_MAX) {
            fuzz_assert(json_is_null(json_array_get(le, i)),
                        "%s.le_ms[%zu] is not null", what, i);

        } else {
            check_ms(json_array_get(le, i), (double) up, "le_ms");
        }
    }

    check_counts(member(o, "counts", what), h->counts, what);
    check_uint(member(o, "count", what), h->count, "count");
    check_ms(member(o, "sum_ms", what), (double) h->sum_us, "sum_ms");
    check_quantiles(o, h->counts, what);
}


static void
check_variant(json_t *o, const ngx_http_canary_variant_report_t *v)
{
    size_t   i;
    json_t  *resp, *win;

    static const char  *classes[] = { "1xx", "2xx", "3xx", "4xx", "5xx" };

    check_string(member(o, "upstream", "variant"), v->upstream.data,
                 v->upstream.len, "upstream");
    check_uint(member(o, "requests", "variant"), v->requests, "requests");
    check_uint(member(o, "upstream_errors", "variant"), v->upstream_errors,
               "upstream_errors");

    resp = member(o, "responses", "variant");

    for (i = 0; i < 5; i++) {
        check_uint(member(resp, classes[i], "responses"), v->responses[i],
                   classes[i]);
    }

    check_hist(member(o, "latency", "variant"), &v->latency, "latency");
    check_hist(member(o, "upstream_latency", "variant"),
               &v->upstream_latency, "upstream_latency");

    win = member(o, "window", "variant");

    check_uint(member(win, "seconds", "window"), v->window.seconds,
               "window.seconds");
    check_uint(member(win, "requests", "window"), v->window.requests,
               "window.requests");
    check_uint(member(win, "5xx", "window"), v->window.responses_5xx,
               "window.5xx");
    check_uint(member(win, "upstream_errors", "window"),
               v->window.upstream_errors, "window.upstream_errors");
    check_counts(member(win, "counts", "window"), v->window.latency.counts,
                 "window.counts");
    check_quantiles(win, v->window.latency.counts, "window");
}


static void check_shadow(json_t *o,
    const ngx_http_canary_shadow_report_t *sh);


static void
check_split(json_t *o, const ngx_http_canary_split_report_t *s)
{
    char     name[2 * 64 + 1];
    size_t   c, n;
    json_t  *cohorts, *guard, *pins, *variants, *current;

    check_weight(member(o, "weight", "split"), s->weight, "weight");
    check_bool(member(o, "enabled", "split"), s->enabled, "enabled");
    check_uint(member(o, "generation", "split"), s->generation,
               "generation");
    check_string(member(o, "source", "split"),
                 (const unsigned char *) s->source, strlen(s->source),
                 "source");
    check_string(member(o, "state", "split"), s->state, s->state_len,
                 "state");
    check_string(member(o, "updated_by", "split"), s->updated_by,
                 s->updated_by_len, "updated_by");
    check_string(member(o, "updated_at", "split"), s->updated_at,
                 s->updated_at_len, "updated_at");

    pins = member(o, "pins", "split");
    check_uint(member(pins, "stable", "pins"), s->pins[0], "pins.stable");
    check_uint(member(pins, "canary", "pins"), s->pins[1], "pins.canary");

    cohorts = member(o, "cohorts", "split");

    fuzz_assert(json_is_object(cohorts)
                && json_object_size(cohorts) == s->ncohorts,
                "%zu cohorts, not %zu", json_object_size(cohorts),
                s->ncohorts);

    for (c = 0; c < s->ncohorts; c++) {
        n = decoded(s->cohorts[c].name.data, s->cohorts[c].name.len, name);
        check_weight(json_object_getn(cohorts, name, n),
                     s->cohorts[c].weight, "cohort weight");
    }

    guard = member(o, "guard", "split");
    check_bool(member(guard, "configured", "guard"), s->guard.configured,
               "guard.configured");
    check_bool(member(guard, "tripped", "guard"), s->guard.tripped,
               "guard.tripped");
    fuzz_assert(json_is_integer(member(guard, "since", "guard"))
                && json_integer_value(json_object_get(guard, "since"))
                   == (json_int_t) s->guard.since, "guard.since");
    check_string(member(guard, "reason", "guard"),
                 (const unsigned char *) s->guard.reason,
                 strlen(s->guard.reason), "guard.reason");

    /* the guard's own window now: null without a guard */
    current = member(guard, "current", "guard");

    if (!s->guard.configured) {
        fuzz_assert(json_is_null(current), "guard.current is not null");

    } else {
        check_uint(member(current, "seconds", "guard.current"),
                   s->guard.now_seconds, "guard.current.seconds");
        check_uint(member(member(current, "stable", "guard.current"),
                          "requests", "guard.current.stable"),
                   s->guard.now[0].requests, "guard.current requests");
        check_uint(member(member(current, "canary", "guard.current"),
                          "errors", "guard.current.canary"),
                   s->guard.now[1].errors, "guard.current errors");
    }

    variants = member(o, "variants", "split");

    fuzz_assert(json_object_size(variants) == 2, "not two variants");

    check_variant(member(variants, "stable", "variants"), &s->variants[0]);
    check_variant(member(variants, "canary", "variants"), &s->variants[1]);

    check_shadow(member(o, "shadow", "split"), &s->shadow);
}


/* null without "shadow"; the counters, and the examples' URIs as bytes */
static void
check_shadow(json_t *o, const ngx_http_canary_shadow_report_t *sh)
{
    size_t                                   i;
    json_t                                  *ex, *e, *rate;
    const ngx_http_canary_shadow_example_t  *x;

    if (!sh->configured) {
        fuzz_assert(json_is_null(o), "shadow is not null");
        return;
    }

    check_weight(member(o, "percent", "shadow"), sh->percent,
                 "shadow.percent");
    check_uint(member(o, "requests", "shadow"), sh->requests,
               "shadow.requests");
    check_uint(member(o, "compared", "shadow"), sh->compared,
               "shadow.compared");
    check_uint(member(o, "matched", "shadow"), sh->matched,
               "shadow.matched");
    check_uint(member(member(o, "mismatched", "shadow"), "status",
                      "mismatched"), sh->mismatched_status,
               "shadow.mismatched.status");
    check_uint(member(member(o, "mismatched", "shadow"), "body",
                      "mismatched"), sh->mismatched_body,
               "shadow.mismatched.body");
    check_uint(member(o, "canary_errors", "shadow"), sh->canary_errors,
               "shadow.canary_errors");
    check_uint(member(o, "timeouts", "shadow"), sh->timeouts,
               "shadow.timeouts");
    check_uint(member(member(o, "skipped", "shadow"), "in_flight",
                      "skipped"), sh->skipped_in_flight,
               "shadow.skipped.in_flight");
    check_uint(member(member(o, "skipped", "shadow"), "stable_error",
                      "skipped"), sh->skipped_stable_error,
               "shadow.skipped.stable_error");

    rate = member(o, "match_rate", "shadow");
    fuzz_assert(sh->compared ? json_is_number(rate) : json_is_null(rate),
                "shadow.match_rate");

    ex = member(o, "examples", "shadow");
    fuzz_assert(json_is_array(ex) && json_array_size(ex) == sh->nexamples,
                "shadow.examples: %zu, not %zu", json_array_size(ex),
                sh->nexamples);

    for (i = 0; i < sh->nexamples; i++) {
        x = &sh->examples[i];
        e = json_array_get(ex, i);

        check_string(member(e, "uri", "example"), x->uri, x->uri_len,
                     "example uri");
        check_uint(member(e, "stable_status", "example"), x->stable_status,
                   "example stable_status");
        check_uint(member(e, "canary_bytes", "example"), x->canary_bytes,
                   "example canary_bytes");
    }
}


static void
check_redis(json_t *o, const ngx_http_canary_report_t *rep)
{
    json_t                                *v;
    const ngx_http_canary_redis_report_t  *r;

    r = &rep->redis;

    if (!r->configured) {
        fuzz_assert(json_is_null(o), "redis is not null");
        return;
    }

    check_string(member(o, "address", "redis"), r->address.data,
                 r->address.len, "redis.address");
    check_string(member(o, "prefix", "redis"), r->prefix.data,
                 r->prefix.len, "redis.prefix");
    check_bool(member(o, "connected", "redis"), r->connected,
               "redis.connected");

    v = member(o, "stale_seconds", "redis");

    if (r->last_sync) {
        fuzz_assert(json_is_integer(v) && json_integer_value(v)
                    == (json_int_t) (rep->now - r->last_sync),
                    "redis.stale_seconds");

    } else {
        fuzz_assert(json_is_null(v), "redis.stale_seconds is not null");
    }

    v = member(o, "last_error", "redis");

    if (r->error_len) {
        check_string(v, r->error, r->error_len, "redis.last_error");

    } else {
        fuzz_assert(json_is_null(v), "redis.last_error is not null");
    }
}


/* the sidecar adds this nginx up as it went in */
static void
check_sidecar(const char *json, size_t len,
    const ngx_http_canary_report_t *rep)
{
    int                                    rc;
    char                                   name[2 * 64 + 1], err[512];
    size_t                                 i, v, n;
    cs_metrics_t                           m;
    const ngx_http_canary_split_report_t  *s;

    /* each parse reads the whole document: the first and the last split */
    for (i = 0; i < rep->nsplits; i += rep->nsplits - 1 > i
                                        ? rep->nsplits - 1 - i : 1)
    {
        s = &rep->splits[i];
        n = decoded(s->name.data, s->name.len, name);

        if (strlen(name) != n) {
            /* a C string cannot name it: the sidecar's --split cannot */
            continue;
        }

        rc = cs_fetch_parse(json, len, name, &m, err, sizeof(err));

        fuzz_assert(rc == 0, "the sidecar cannot read split %zu: %s", i,
                    err);

        for (v = 0; v < 2; v++) {
            fuzz_assert(m.v[v].requests == s->variants[v].window.requests
                        && m.v[v].errors_5xx
                           == s->variants[v].window.responses_5xx
                        && m.v[v].upstream_errors
                           == s->variants[v].window.upstream_errors
                        && memcmp(m.v[v].counts,
                                  s->variants[v].window.latency.counts,
                                  sizeof(m.v[v].counts)) == 0,
                        "the sidecar read other window counts");
        }

        fuzz_assert(m.window_seconds
                    == (s->variants[0].window.seconds
                        < s->variants[1].window.seconds
                        ? s->variants[0].window.seconds
                        : s->variants[1].window.seconds),
                    "window seconds %u", m.window_seconds);
        fuzz_assert(m.generation_min == s->generation,
                    "the sidecar read generation %llu",
                    (unsigned long long) m.generation_min);
        fuzz_assert(m.guard_tripped == (size_t) s->guard.tripped
                    && m.disabled == (size_t) !s->enabled
                    && m.instances == 1, "guard, enabled or instances");
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           *out, name[2 * 64 + 1];
    size_t          len, i, n;
    json_t         *root, *splits, *zone;
    json_error_t    jerr;
    fuzz_report_t   fr;

    if (size < 2) {
        return 0;
    }

    fuzz_report_build(&fr, data + 2, size - 2);

    out = fuzz_render(ngx_http_canary_render_json, &fr.rep,
                      (data[0] & 7) == 0, (size_t) data[1] << 8 | data[0],
                      &len);

    root = json_loadb(out, len, JSON_ALLOW_NUL, &jerr);

    fuzz_assert(root != NULL, "not JSON: line %d column %d: %s\n%s",
                jerr.line, jerr.column, jerr.text, out);

    fuzz_assert(json_is_integer(member(root, "time", "the top"))
                && json_integer_value(json_object_get(root, "time"))
                   == (json_int_t) fr.rep.now, "time");

    check_redis(member(root, "redis", "the top"), &fr.rep);

    zone = member(root, "zone", "the top");
    check_string(member(zone, "name", "zone"), fr.rep.zone_name.data,
                 fr.rep.zone_name.len, "zone.name");
    check_uint(member(zone, "size", "zone"), fr.rep.zone_size, "zone.size");
    check_uint(member(zone, "used", "zone"), fr.rep.zone_used, "zone.used");

    splits = member(root, "splits", "the top");

    fuzz_assert(json_is_object(splits)
                && json_object_size(splits) == fr.rep.nsplits,
                "%zu splits, not %zu", json_object_size(splits),
                fr.rep.nsplits);

    for (i = 0; i < fr.rep.nsplits; i++) {
        n = decoded(fr.splits[i].name.data, fr.splits[i].name.len, name);
        check_split(json_object_getn(splits, name, n), &fr.splits[i]);
    }

    json_decref(root);

    check_sidecar(out, len, &fr.rep);

    free(out);
    fuzz_report_free(&fr);

    return 0;
}
