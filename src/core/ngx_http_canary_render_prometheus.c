
/*
 * /canary_status?format=prometheus: text exposition format 0.0.4.
 *
 * Histograms expose every fourth bound of the zone's layout (four per
 * power of two, about 19% apart): cumulative buckets may skip bounds,
 * and the series stay few.  The JSON keeps the full resolution.
 */


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
                ngx_http_canary_out_printf(out, "canary_requests_total");
                ngx_http_canary_prom_labels(out, s,
                                            ngx_http_canary_prom_variants[v]);
                ngx_http_canary_out_printf(out, ",code=\"%zuxx\"} %llu\n",
                    c + 1, (unsigned long long) vr->responses[c]);
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
            ngx_http_canary_out_printf(out, "canary_upstream_errors_total");
            ngx_http_canary_prom_labels(out, s,
                                        ngx_http_canary_prom_variants[v]);
            ngx_http_canary_out_printf(out, "} %llu\n",
                (unsigned long long) s->variants[v].upstream_errors);
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
        ngx_http_canary_out_printf(out, "canary_redis_connected %d\n",
                                   rep->redis.connected ? 1 : 0);

        ngx_http_canary_prom_family(out,
            "canary_redis_last_sync_timestamp_seconds", "gauge",
            "When the weights were last read from Redis (0: never).");
        ngx_http_canary_out_printf(out,
            "canary_redis_last_sync_timestamp_seconds %lld\n",
            (long long) rep->redis.last_sync);
    }

    ngx_http_canary_prom_family(out, "canary_zone_size_bytes", "gauge",
        "Size of the canary shared memory zone.");
    ngx_http_canary_out_printf(out, "canary_zone_size_bytes %zu\n",
                               rep->zone_size);

    ngx_http_canary_prom_family(out, "canary_zone_used_bytes", "gauge",
        "Bytes of the canary shared memory zone in use.");
    ngx_http_canary_out_printf(out, "canary_zone_used_bytes %zu\n",
                               rep->zone_used);
}


static void
ngx_http_canary_prom_family(ngx_http_canary_out_t *out, const char *name,
    const char *type, const char *help)
{
    ngx_http_canary_out_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
                               name, help, name, type);
}


/* opens the label set: the caller adds labels and the closing brace */

static void
ngx_http_canary_prom_labels(ngx_http_canary_out_t *out,
    const ngx_http_canary_split_report_t *s, const char *variant)
{
    ngx_http_canary_out_printf(out, "{split=\"");
    ngx_http_canary_out_label_value(out, s->name.data, s->name.len);
    ngx_http_canary_out_printf(out, "\"");

    if (variant) {
        ngx_http_canary_out_printf(out, ",variant=\"%s\"", variant);
    }
}


static void
ngx_http_canary_prom_histogram(ngx_http_canary_out_t *out, const char *name,
    const ngx_http_canary_report_t *rep, int upstream)
{
    size_t                                 i, v, b;
    uint64_t                               cum, le;
    const ngx_http_canary_hist_t          *h;
    const ngx_http_canary_split_report_t  *s;

    ngx_http_canary_prom_family(out, name, "histogram",
        upstream ? "Upstream response time of routed requests."
                 : "Request time of routed requests, as nginx measures it.");

    for (i = 0; i < rep->nsplits; i++) {
        s = &rep->splits[i];

        for (v = 0; v < 2; v++) {
            h = upstream ? &s->variants[v].upstream_latency
                         : &s->variants[v].latency;
            cum = 0;

            for (b = 0; b < NGX_HTTP_CANARY_HIST_BUCKETS - 1; b++) {
                cum += h->counts[b];

                if (b % NGX_HTTP_CANARY_PROM_STEP) {
                    continue;
                }

                le = ngx_http_canary_hist_upper(b);

                ngx_http_canary_out_printf(out, "%s_bucket", name);
                ngx_http_canary_prom_labels(out, s,
                                            ngx_http_canary_prom_variants[v]);
                ngx_http_canary_out_printf(out,
                    ",le=\"%llu.%06llu\"} %llu\n",
                    (unsigned long long) le / 1000000,
                    (unsigned long long) le % 1000000,
                    (unsigned long long) cum);
            }

            ngx_http_canary_out_printf(out, "%s_bucket", name);
            ngx_http_canary_prom_labels(out, s,
                                        ngx_http_canary_prom_variants[v]);
            ngx_http_canary_out_printf(out, ",le=\"+Inf\"} %llu\n",
                                       (unsigned long long) h->count);

            ngx_http_canary_out_printf(out, "%s_sum", name);
            ngx_http_canary_prom_labels(out, s,
                                        ngx_http_canary_prom_variants[v]);
            ngx_http_canary_out_printf(out, "} %llu.%06llu\n",
                (unsigned long long) h->sum_us / 1000000,
                (unsigned long long) h->sum_us % 1000000);

            ngx_http_canary_out_printf(out, "%s_count", name);
            ngx_http_canary_prom_labels(out, s,
                                        ngx_http_canary_prom_variants[v]);
            ngx_http_canary_out_printf(out, "} %llu\n",
                                       (unsigned long long) h->count);
        }
    }
}


static void
ngx_http_canary_prom_per_split(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep, const char *name, const char *help,
    int which)
{
    size_t                                 i, n;
    unsigned char                          buf[NGX_HTTP_CANARY_WEIGHT_LEN];
    const ngx_http_canary_split_report_t  *s;

    ngx_http_canary_prom_family(out, name, "gauge", help);

    for (i = 0; i < rep->nsplits; i++) {
        s = &rep->splits[i];

        ngx_http_canary_out_printf(out, "%s", name);
        ngx_http_canary_prom_labels(out, s, NULL);

        switch (which) {

        case 0:
            n = ngx_http_canary_format_weight(buf, s->weight);
            ngx_http_canary_out_printf(out, "} %.*s\n", (int) n, buf);
            break;

        case 1:
            ngx_http_canary_out_printf(out, "} %d\n", s->enabled ? 1 : 0);
            break;

        case 2:
            ngx_http_canary_out_printf(out, "} %llu\n",
                                       (unsigned long long) s->generation);
            break;

        case 3:
            ngx_http_canary_out_printf(out, "} %d\n",
                                       s->guard.tripped ? 1 : 0);
            break;

        default:
            ngx_http_canary_out_printf(out, "} %d\n",
                                       s->rolled_back ? 1 : 0);
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
    size_t                                  i, k, v, n, which;
    uint64_t                                value;
    unsigned char                           buf[NGX_HTTP_CANARY_WEIGHT_LEN];
    const char                             *name;
    const ngx_http_canary_cohort_report_t  *c;
    const ngx_http_canary_split_report_t   *s;

    ngx_http_canary_prom_family(out, "canary_cohort_weight_percent",
        "gauge", "Percent of a cohort's tenants routed to the canary.");

    for (i = 0; i < rep->nsplits; i++) {
        s = &rep->splits[i];

        for (k = 0; k < s->ncohorts; k++) {
            c = &s->cohorts[k];

            ngx_http_canary_out_printf(out, "canary_cohort_weight_percent");
            ngx_http_canary_prom_labels(out, s, NULL);
            ngx_http_canary_out_printf(out, ",cohort=\"");
            ngx_http_canary_out_label_value(out, c->name.data, c->name.len);
            n = ngx_http_canary_format_weight(buf, c->weight);
            ngx_http_canary_out_printf(out, "\"} %.*s\n", (int) n, buf);
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

                    ngx_http_canary_out_printf(out, "%s", name);
                    ngx_http_canary_prom_labels(out, s,
                                          ngx_http_canary_prom_variants[v]);
                    ngx_http_canary_out_printf(out, ",cohort=\"");
                    ngx_http_canary_out_label_value(out, c->name.data,
                                                    c->name.len);
                    ngx_http_canary_out_printf(out, "\"} %llu\n",
                                               (unsigned long long) value);
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

        ngx_http_canary_out_printf(out, "canary_split_info");
        ngx_http_canary_prom_labels(out, s, NULL);
        ngx_http_canary_out_printf(out, ",state=\"");
        ngx_http_canary_out_label_value(out, s->state, s->state_len);
        ngx_http_canary_out_printf(out, "\"} 1\n");
    }

    ngx_http_canary_prom_family(out, "canary_pinned_tenants", "gauge",
        "Tenants pinned to a variant (canary-ctl pin), as read from Redis.");

    for (i = 0; i < rep->nsplits; i++) {
        s = &rep->splits[i];

        for (v = 0; v < 2; v++) {
            ngx_http_canary_out_printf(out, "canary_pinned_tenants");
            ngx_http_canary_prom_labels(out, s,
                                        ngx_http_canary_prom_variants[v]);
            ngx_http_canary_out_printf(out, "} %llu\n",
                                       (unsigned long long) s->pins[v]);
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
    size_t                                  i, k, n;
    uint64_t                                value;
    unsigned char                           buf[NGX_HTTP_CANARY_WEIGHT_LEN];
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

            ngx_http_canary_out_printf(out, "%s", families[k].name);
            ngx_http_canary_prom_labels(out, &rep->splits[i], NULL);

            switch (k) {

            case 0:
                n = ngx_http_canary_format_weight(buf, sh->percent);
                ngx_http_canary_out_printf(out, "} %.*s\n", (int) n, buf);
                continue;

            case 3:
                ngx_http_canary_out_printf(out, ",kind=\"status\"} %llu\n",
                    (unsigned long long) sh->mismatched_status);
                ngx_http_canary_out_printf(out, "%s", families[k].name);
                ngx_http_canary_prom_labels(out, &rep->splits[i], NULL);
                ngx_http_canary_out_printf(out, ",kind=\"body\"} %llu\n",
                    (unsigned long long) sh->mismatched_body);
                continue;

            case 6:
                ngx_http_canary_out_printf(out, ",reason=\"method\"} %llu\n",
                    (unsigned long long) sh->skipped_method);
                ngx_http_canary_out_printf(out, "%s", families[k].name);
                ngx_http_canary_prom_labels(out, &rep->splits[i], NULL);
                ngx_http_canary_out_printf(out,
                    ",reason=\"body_too_large\"} %llu\n",
                    (unsigned long long) sh->skipped_body_too_large);
                ngx_http_canary_out_printf(out, "%s", families[k].name);
                ngx_http_canary_prom_labels(out, &rep->splits[i], NULL);
                ngx_http_canary_out_printf(out,
                    ",reason=\"in_flight\"} %llu\n",
                    (unsigned long long) sh->skipped_in_flight);
                ngx_http_canary_out_printf(out, "%s", families[k].name);
                ngx_http_canary_prom_labels(out, &rep->splits[i], NULL);
                ngx_http_canary_out_printf(out,
                    ",reason=\"stable_error\"} %llu\n",
                    (unsigned long long) sh->skipped_stable_error);
                continue;

            case 7:
                ngx_http_canary_out_printf(out, "} %.6f\n",
                                           (double) sh->matched
                                           / (double) sh->compared);
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

            ngx_http_canary_out_printf(out, "} %llu\n",
                                       (unsigned long long) value);
        }
    }
}
