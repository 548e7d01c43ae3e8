
/*
 * /canary_status?format=prometheus: text exposition format 0.0.4.
 *
 * Histograms expose every fourth bound of the zone's layout (four per
 * power of two, about 19% apart): cumulative buckets may skip bounds,
 * and the series stay few.  The JSON keeps the full resolution.
 */


#include <string.h>

#include "ngx_http_canary_parse.h"
#include "ngx_http_canary_report.h"


#define NGX_HTTP_CANARY_PROM_STEP  4


static void ngx_http_canary_prom_shadow(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep);
static void ngx_http_canary_prom_family(ngx_http_canary_out_t *out,
    const char *name, const char *type, const char *help);
static void ngx_http_canary_prom_labels(ngx_http_canary_out_t *out,
    const ngx_http_canary_split_report_t *s, const char *variant);
static void ngx_http_canary_prom_histogram(ngx_http_canary_out_t *out,
    const char *name, const ngx_http_canary_report_t *rep, int upstream);
static void ngx_http_canary_prom_per_split(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep, const char *name,
    const char *help, int which);
static void ngx_http_canary_prom_cohorts(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep);
static void ngx_http_canary_prom_state(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep);
static void ngx_http_canary_prom_value(ngx_http_canary_out_t *out,
    uint64_t value);
static void ngx_http_canary_prom_flag(ngx_http_canary_out_t *out, int flag);
static void ngx_http_canary_prom_weight(ngx_http_canary_out_t *out,
    uint32_t weight);
static void ngx_http_canary_prom_le(ngx_http_canary_out_t *out, size_t b);


static const char  *ngx_http_canary_prom_variants[] = { "stable", "canary" };


void
ngx_http_canary_render_prometheus(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep)
{
    size_t                                   i, v, c;
    const ngx_http_canary_split_report_t    *s;
    const ngx_http_canary_variant_report_t  *vr;

    ngx_http_canary_prom_family(out, "canary_requests_total", "counter",
        "Requests routed by a split, by variant and response class "
        "(upstream failures are counted apart).");

    for (i = 0; i < rep->nsplits; i++) {
        s = &rep->splits[i];

        for (v = 0; v < 2; v++) {
            vr = &s->variants[v];

            for (c = 0; c < 5; c++) {
                ngx_http_canary_out_literal(out, "canary_requests_total");
                ngx_http_canary_prom_labels(out, s,
                                            ngx_http_canary_prom_variants[v]);
                ngx_http_canary_out_literal(out, ",code=\"");
                ngx_http_canary_out_uint(out, c + 1);
                ngx_http_canary_out_literal(out, "xx\"}");
                ngx_http_canary_prom_value(out, vr->responses[c]);
            }
        }
    }

    ngx_http_canary_prom_family(out, "canary_upstream_errors_total",
        "counter",
        "Upstream failures: connect errors, timeouts, no live upstream, "
        "502/503/504 made by nginx.");

    for (i = 0; i < rep->nsplits; i++) {
        s = &rep->splits[i];

        for (v = 0; v < 2; v++) {
            ngx_http_canary_out_literal(out, "canary_upstream_errors_total");
            ngx_http_canary_prom_labels(out, s,
                                        ngx_http_canary_prom_variants[v]);
            ngx_http_canary_out_literal(out, "}");
            ngx_http_canary_prom_value(out, s->variants[v].upstream_errors);
        }
    }

    ngx_http_canary_prom_histogram(out, "canary_request_duration_seconds",
                                   rep, 0);
    ngx_http_canary_prom_histogram(out, "canary_upstream_response_seconds",
                                   rep, 1);

    ngx_http_canary_prom_per_split(out, rep, "canary_weight_percent",
        "Percent of tenants routed to the canary.", 0);
    ngx_http_canary_prom_per_split(out, rep, "canary_enabled",
        "1 when the split is enabled, 0 when the kill switch is on.", 1);
    ngx_http_canary_prom_per_split(out, rep, "canary_generation",
        "Generation of the weights in force.", 2);
    ngx_http_canary_prom_per_split(out, rep, "canary_guard_tripped",
        "1 when the in-proxy guard has pulled the canary.", 3);
    ngx_http_canary_prom_per_split(out, rep, "canary_rolled_back",
        "1 while the split is rolled back (state rolled_back): every "
        "request goes to stable until canary-ctl reset.", 4);

    ngx_http_canary_prom_cohorts(out, rep);
    ngx_http_canary_prom_state(out, rep);
    ngx_http_canary_prom_shadow(out, rep);

    if (rep->redis.configured) {
        ngx_http_canary_prom_family(out, "canary_redis_connected", "gauge",
            "1 while the syncing worker has both Redis connections up.");
        ngx_http_canary_out_literal(out, "canary_redis_connected");
        ngx_http_canary_prom_flag(out, rep->redis.connected);

        ngx_http_canary_prom_family(out,
            "canary_redis_last_sync_timestamp_seconds", "gauge",
            "When the weights were last read from Redis (0: never).");
        ngx_http_canary_out_literal(out,
            "canary_redis_last_sync_timestamp_seconds ");
        ngx_http_canary_out_int(out, rep->redis.last_sync);
        ngx_http_canary_out_literal(out, "\n");
    }

    ngx_http_canary_prom_family(out, "canary_zone_size_bytes", "gauge",
        "Size of the canary shared memory zone.");
    ngx_http_canary_out_literal(out, "canary_zone_size_bytes");
    ngx_http_canary_prom_value(out, rep->zone_size);

    ngx_http_canary_prom_family(out, "canary_zone_used_bytes", "gauge",
        "Bytes of the canary shared memory zone in use.");
    ngx_http_canary_out_literal(out, "canary_zone_used_bytes");
    ngx_http_canary_prom_value(out, rep->zone_used);
}


static void
ngx_http_canary_prom_family(ngx_http_canary_out_t *out, const char *name,
    const char *type, const char *help)
{
    ngx_http_canary_out_literal(out, "# HELP ");
    ngx_http_canary_out_cstr(out, name);
    ngx_http_canary_out_literal(out, " ");
    ngx_http_canary_out_cstr(out, help);
    ngx_http_canary_out_literal(out, "\n# TYPE ");
    ngx_http_canary_out_cstr(out, name);
    ngx_http_canary_out_literal(out, " ");
    ngx_http_canary_out_cstr(out, type);
    ngx_http_canary_out_literal(out, "\n");
}


/* " VALUE\n": a sample's value ends its line */

static void
ngx_http_canary_prom_value(ngx_http_canary_out_t *out, uint64_t value)
{
    ngx_http_canary_out_literal(out, " ");
    ngx_http_canary_out_uint(out, value);
    ngx_http_canary_out_literal(out, "\n");
}


static void
ngx_http_canary_prom_flag(ngx_http_canary_out_t *out, int flag)
{
    if (flag) {
        ngx_http_canary_out_literal(out, " 1\n");

    } else {
        ngx_http_canary_out_literal(out, " 0\n");
    }
}


static void
ngx_http_canary_prom_weight(ngx_http_canary_out_t *out, uint32_t weight)
{
    size_t         n;
    unsigned char  buf[NGX_HTTP_CANARY_WEIGHT_LEN];

    n = ngx_http_canary_format_weight(buf, weight);

    ngx_http_canary_out_literal(out, " ");
    ngx_http_canary_out_bytes(out, buf, n);
    ngx_http_canary_out_literal(out, "\n");
}


/* opens the label set: the caller adds labels and the closing brace */

static void
ngx_http_canary_prom_labels(ngx_http_canary_out_t *out,
    const ngx_http_canary_split_report_t *s, const char *variant)
{
    ngx_http_canary_out_literal(out, "{split=\"");
    ngx_http_canary_out_label_value(out, s->name.data, s->name.len);
    ngx_http_canary_out_literal(out, "\"");

    if (variant) {
        ngx_http_canary_out_literal(out, ",variant=\"");
        ngx_http_canary_out_cstr(out, variant);
        ngx_http_canary_out_literal(out, "\"");
    }
}


static void
ngx_http_canary_prom_histogram(ngx_http_canary_out_t *out, const char *name,
    const ngx_http_canary_report_t *rep, int upstream)
{
    size_t                                 i, v, b, len;
    uint64_t                               cum;
    unsigned char                          series[512];
    ngx_http_canary_out_t                  so;
    const ngx_http_canary_hist_t          *h;
    const ngx_http_canary_split_report_t  *s;

    len = strlen(name);

    ngx_http_canary_prom_family(out, name, "histogram",
        upstream ? "Upstream response time of routed requests."
                 : "Request time of routed requests, as nginx measures it.");

    for (i = 0; i < rep->nsplits; i++) {
        s = &rep->splits[i];

        for (v = 0; v < 2; v++) {
            h = upstream ? &s->variants[v].upstream_latency
                         : &s->variants[v].latency;
            cum = 0;

            /* NAME_bucket{split="...",variant="...": once for 81 lines */
            so.pos = series;
            so.end = series + sizeof(series);
            so.need = 0;

            ngx_http_canary_out_bytes(&so, name, len);
            ngx_http_canary_out_literal(&so, "_bucket");
            ngx_http_canary_prom_labels(&so, s,
                                        ngx_http_canary_prom_variants[v]);

            for (b = 0; b < NGX_HTTP_CANARY_HIST_BUCKETS - 1; b++) {
                cum += h->counts[b];

                if (b % NGX_HTTP_CANARY_PROM_STEP) {
                    continue;
                }

                if (so.need <= sizeof(series)) {
                    ngx_http_canary_out_bytes(out, series, so.need);

                } else {
                    /* a name too long to keep aside: written each time */
                    ngx_http_canary_out_bytes(out, name, len);
                    ngx_http_canary_out_literal(out, "_bucket");
                    ngx_http_canary_prom_labels(out, s,
                                            ngx_http_canary_prom_variants[v]);
                }

                ngx_http_canary_out_literal(out, ",le=\"");
                ngx_http_canary_prom_le(out, b);
                ngx_http_canary_out_literal(out, "\"}");
                ngx_http_canary_prom_value(out, cum);
            }

            ngx_http_canary_out_bytes(out, name, len);
            ngx_http_canary_out_literal(out, "_bucket");
            ngx_http_canary_prom_labels(out, s,
                                        ngx_http_canary_prom_variants[v]);
            ngx_http_canary_out_literal(out, ",le=\"+Inf\"}");
            ngx_http_canary_prom_value(out, h->count);

            ngx_http_canary_out_bytes(out, name, len);
            ngx_http_canary_out_literal(out, "_sum");
            ngx_http_canary_prom_labels(out, s,
                                        ngx_http_canary_prom_variants[v]);
            ngx_http_canary_out_literal(out, "} ");
            ngx_http_canary_out_fixed(out, h->sum_us, 6);
            ngx_http_canary_out_literal(out, "\n");

            ngx_http_canary_out_bytes(out, name, len);
            ngx_http_canary_out_literal(out, "_count");
            ngx_http_canary_prom_labels(out, s,
                                        ngx_http_canary_prom_variants[v]);
            ngx_http_canary_out_literal(out, "}");
            ngx_http_canary_prom_value(out, h->count);
        }
    }
}


/*
 * Bucket b's upper bound in seconds ("%llu.%06llu"); the bounds are the
 * layout's, the same in every histogram: their text is made once per
 * process (3,240 lines of a page of 10 splits)
 */

static void
ngx_http_canary_prom_le(ngx_http_canary_out_t *out, size_t b)
{
    size_t                 i;
    ngx_http_canary_out_t  o;

    /* "67.108864" at most; len 0: not made yet */
    static unsigned char   text[NGX_HTTP_CANARY_HIST_BUCKETS
                                / NGX_HTTP_CANARY_PROM_STEP + 1][16];
    static unsigned char   len[NGX_HTTP_CANARY_HIST_BUCKETS
                               / NGX_HTTP_CANARY_PROM_STEP + 1];

    i = b / NGX_HTTP_CANARY_PROM_STEP;

    if (b % NGX_HTTP_CANARY_PROM_STEP == 0
        && i < sizeof(len) && len[i] == 0)
    {
        o.pos = text[i];
        o.end = text[i] + sizeof(text[i]);
        o.need = 0;

        ngx_http_canary_out_fixed(&o, ngx_http_canary_hist_upper(b), 6);

        /* cannot be longer: the bounds are constants */
        if (o.need <= sizeof(text[i])) {
            len[i] = (unsigned char) o.need;
        }
    }

    if (b % NGX_HTTP_CANARY_PROM_STEP == 0
        && i < sizeof(len) && len[i] != 0)
    {
        ngx_http_canary_out_bytes(out, text[i], len[i]);
        return;
    }

    ngx_http_canary_out_fixed(out, ngx_http_canary_hist_upper(b), 6);
}


static void
ngx_http_canary_prom_per_split(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep, const char *name, const char *help,
    int which)
{
    size_t                                 i;
    const ngx_http_canary_split_report_t  *s;

    ngx_http_canary_prom_family(out, name, "gauge", help);

    for (i = 0; i < rep->nsplits; i++) {
        s = &rep->splits[i];

        ngx_http_canary_out_cstr(out, name);
        ngx_http_canary_prom_labels(out, s, NULL);
        ngx_http_canary_out_literal(out, "}");

        switch (which) {

        case 0:
            ngx_http_canary_prom_weight(out, s->weight);
            break;

        case 1:
            ngx_http_canary_prom_flag(out, s->enabled);
            break;

        case 2:
            ngx_http_canary_prom_value(out, s->generation);
            break;

        case 3:
            ngx_http_canary_prom_flag(out, s->guard.tripped);
            break;

        default:
            ngx_http_canary_prom_flag(out, s->rolled_back);
        }
    }
}


/*
 * Per cohort: its weight, and the requests its weight decided per
 * variant (which = 0: all, 1: those with a 5xx, upstream failures
 * included)
 */

static void
ngx_http_canary_prom_cohorts(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep)
{
    size_t                                  i, k, v, which;
    uint64_t                                value;
    const char                             *name;
    const ngx_http_canary_cohort_report_t  *c;
    const ngx_http_canary_split_report_t   *s;

    ngx_http_canary_prom_family(out, "canary_cohort_weight_percent",
        "gauge", "Percent of a cohort's tenants routed to the canary.");

    for (i = 0; i < rep->nsplits; i++) {
        s = &rep->splits[i];

        for (k = 0; k < s->ncohorts; k++) {
            c = &s->cohorts[k];

            ngx_http_canary_out_literal(out, "canary_cohort_weight_percent");
            ngx_http_canary_prom_labels(out, s, NULL);
            ngx_http_canary_out_literal(out, ",cohort=\"");
            ngx_http_canary_out_label_value(out, c->name.data, c->name.len);
            ngx_http_canary_out_literal(out, "\"}");
            ngx_http_canary_prom_weight(out, c->weight);
        }
    }

    for (which = 0; which < 2; which++) {
        name = which ? "canary_cohort_responses_5xx_total"
                     : "canary_cohort_requests_total";

        ngx_http_canary_prom_family(out, name, "counter",
            which ? "Responses with a 5xx status (upstream failures "
                    "included) to requests a cohort's weight routed."
                  : "Requests a cohort's weight routed, by variant.");

        for (i = 0; i < rep->nsplits; i++) {
            s = &rep->splits[i];

            for (k = 0; k < s->ncohorts; k++) {
                c = &s->cohorts[k];

                for (v = 0; v < 2; v++) {
                    value = which ? c->responses_5xx[v] : c->requests[v];

                    ngx_http_canary_out_cstr(out, name);
                    ngx_http_canary_prom_labels(out, s,
                                          ngx_http_canary_prom_variants[v]);
                    ngx_http_canary_out_literal(out, ",cohort=\"");
                    ngx_http_canary_out_label_value(out, c->name.data,
                                                    c->name.len);
                    ngx_http_canary_out_literal(out, "\"}");
                    ngx_http_canary_prom_value(out, value);
                }
            }
        }
    }
}


/*
 * The split's state as a label (canary_split_info, always 1: Grafana
 * shows "awaiting_resume", an alert can wait on "halted") and its pins
 */

static void
ngx_http_canary_prom_state(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep)
{
    size_t                                 i, v;
    const ngx_http_canary_split_report_t  *s;

    ngx_http_canary_prom_family(out, "canary_split_info", "gauge",
        "Always 1; state is the split's state from Redis (running, "
        "awaiting_resume, halted, rolled_back, ...), empty without one.");

    for (i = 0; i < rep->nsplits; i++) {
        s = &rep->splits[i];

        ngx_http_canary_out_literal(out, "canary_split_info");
        ngx_http_canary_prom_labels(out, s, NULL);
        ngx_http_canary_out_literal(out, ",state=\"");
        ngx_http_canary_out_label_value(out, s->state, s->state_len);
        ngx_http_canary_out_literal(out, "\"} 1\n");
    }

    ngx_http_canary_prom_family(out, "canary_pinned_tenants", "gauge",
        "Tenants pinned to a variant (canary-ctl pin), as read from Redis.");

    for (i = 0; i < rep->nsplits; i++) {
        s = &rep->splits[i];

        for (v = 0; v < 2; v++) {
            ngx_http_canary_out_literal(out, "canary_pinned_tenants");
            ngx_http_canary_prom_labels(out, s,
                                        ngx_http_canary_prom_variants[v]);
            ngx_http_canary_out_literal(out, "}");
            ngx_http_canary_prom_value(out, s->pins[v]);
        }
    }
}


/*
 * Shadow traffic, for the splits with "shadow" (no family at all without
 * one); the match ratio only once something was compared
 */

static void
ngx_http_canary_prom_shadow(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep)
{
    size_t                                  i, k;
    uint64_t                                value;
    const ngx_http_canary_shadow_report_t  *sh;

    static const struct {
        const char  *name;
        const char  *type;
        const char  *help;
    } families[] = {
        { "canary_shadow_percent", "gauge",
          "Percent of the requests routed to stable also sent to the "
          "canary as shadows." },
        { "canary_shadow_requests_total", "counter",
          "Shadow requests sent to the canary." },
        { "canary_shadow_compared_total", "counter",
          "Shadows whose response was compared with stable's." },
        { "canary_shadow_mismatches_total", "counter",
          "Compared shadows that differed, by kind (status first)." },
        { "canary_shadow_canary_errors_total", "counter",
          "Shadows the canary gave no complete response to." },
        { "canary_shadow_timeouts_total", "counter",
          "Shadows ended at their timeout." },
        { "canary_shadow_skipped_total", "counter",
          "Shadows not sent (method, in_flight) or not compared "
          "(body_too_large, stable_error)." },
        { "canary_shadow_match_ratio", "gauge",
          "Matched of compared shadows, 0 to 1." }
    };

    for (i = 0; i < rep->nsplits; i++) {
        if (rep->splits[i].shadow.configured) {
            break;
        }
    }

    if (i == rep->nsplits) {
        return;
    }

    for (k = 0; k < sizeof(families) / sizeof(families[0]); k++) {

        ngx_http_canary_prom_family(out, families[k].name, families[k].type,
                                    families[k].help);

        for (i = 0; i < rep->nsplits; i++) {
            sh = &rep->splits[i].shadow;

            if (!sh->configured || (k == 7 && sh->compared == 0)) {
                continue;
            }

            ngx_http_canary_out_cstr(out, families[k].name);
            ngx_http_canary_prom_labels(out, &rep->splits[i], NULL);

            switch (k) {

            case 0:
                ngx_http_canary_out_literal(out, "}");
                ngx_http_canary_prom_weight(out, sh->percent);
                continue;

            case 3:
                ngx_http_canary_out_literal(out, ",kind=\"status\"}");
                ngx_http_canary_prom_value(out, sh->mismatched_status);
                ngx_http_canary_out_cstr(out, families[k].name);
                ngx_http_canary_prom_labels(out, &rep->splits[i], NULL);
                ngx_http_canary_out_literal(out, ",kind=\"body\"}");
                ngx_http_canary_prom_value(out, sh->mismatched_body);
                continue;

            case 6:
                ngx_http_canary_out_literal(out, ",reason=\"method\"}");
                ngx_http_canary_prom_value(out, sh->skipped_method);
                ngx_http_canary_out_cstr(out, families[k].name);
                ngx_http_canary_prom_labels(out, &rep->splits[i], NULL);
                ngx_http_canary_out_literal(out,
                                            ",reason=\"body_too_large\"}");
                ngx_http_canary_prom_value(out, sh->skipped_body_too_large);
                ngx_http_canary_out_cstr(out, families[k].name);
                ngx_http_canary_prom_labels(out, &rep->splits[i], NULL);
                ngx_http_canary_out_literal(out, ",reason=\"in_flight\"}");
                ngx_http_canary_prom_value(out, sh->skipped_in_flight);
                ngx_http_canary_out_cstr(out, families[k].name);
                ngx_http_canary_prom_labels(out, &rep->splits[i], NULL);
                ngx_http_canary_out_literal(out,
                                            ",reason=\"stable_error\"}");
                ngx_http_canary_prom_value(out, sh->skipped_stable_error);
                continue;

            case 7:
                ngx_http_canary_out_literal(out, "} ");
                ngx_http_canary_out_double(out, (double) sh->matched
                                                / (double) sh->compared, 6);
                ngx_http_canary_out_literal(out, "\n");
                continue;

            case 1:
                value = sh->requests;
                break;

            case 2:
                value = sh->compared;
                break;

            case 4:
                value = sh->canary_errors;
                break;

            default:
                value = sh->timeouts;
            }

            ngx_http_canary_out_literal(out, "}");
            ngx_http_canary_prom_value(out, value);
        }
    }
}
