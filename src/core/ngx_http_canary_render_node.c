
/*
 * A node's record of one split, as the syncing worker writes it to Redis
 * every interval (ngx_http_canary_contract.h): one compact JSON object,
 * the cumulative counters of both sides with the request-time histogram
 * as sparse "bucket:count" pairs.
 */


#include "ngx_http_canary_contract.h"
#include "ngx_http_canary_parse.h"
#include "ngx_http_canary_report.h"


static void ngx_http_canary_node_variant(ngx_http_canary_out_t *out,
    const char *name, const ngx_http_canary_variant_report_t *v);


void
ngx_http_canary_render_node(ngx_http_canary_out_t *out,
    const ngx_http_canary_node_report_t *node,
    const ngx_http_canary_split_report_t *s)
{
    size_t         n;
    unsigned char  weight[NGX_HTTP_CANARY_WEIGHT_LEN];

    n = ngx_http_canary_format_weight(weight, s->weight);

    ngx_http_canary_out_printf(out, "{\"v\":%d,\"node\":",
                               NGX_HTTP_CANARY_NODE_VERSION);
    ngx_http_canary_out_json_string(out, node->node.data, node->node.len);
    ngx_http_canary_out_printf(out, ",\"instance\":");
    ngx_http_canary_out_json_string(out, node->instance.data,
                                    node->instance.len);
    ngx_http_canary_out_printf(out, ",\"pid\":%lld,\"split\":",
                               (long long) node->pid);
    ngx_http_canary_out_json_string(out, s->name.data, s->name.len);

    ngx_http_canary_out_printf(out,
        ",\"generation\":%llu,\"weight\":%.*s,\"enabled\":%s,"
        "\"guard_tripped\":%s,\"created\":%lld,\"interval_ms\":%llu,"
        "\"hist\":\"" NGX_HTTP_CANARY_NODE_HIST "\"",
        (unsigned long long) s->generation, (int) n, weight,
        s->enabled ? "true" : "false",
        s->guard.tripped ? "true" : "false",
        (long long) s->created,
        (unsigned long long) node->interval_ms);

    ngx_http_canary_node_variant(out, NGX_HTTP_CANARY_SIDE_STABLE,
                                 &s->variants[0]);
    ngx_http_canary_node_variant(out, NGX_HTTP_CANARY_SIDE_CANARY,
                                 &s->variants[1]);

    /*
     * a split with "shadow": its cumulative counters, as the status
     * JSON's splits.NAME.shadow has them, for the sidecar's shadow
     * stages in fleet mode; none without
     */
    if (s->shadow.configured) {
        ngx_http_canary_out_printf(out,
            ",\"shadow\":{\"requests\":%llu,\"compared\":%llu,"
            "\"matched\":%llu,\"mismatched\":{\"status\":%llu,"
            "\"body\":%llu},\"canary_errors\":%llu,\"timeouts\":%llu,"
            "\"skipped\":{\"method\":%llu,\"body_too_large\":%llu,"
            "\"in_flight\":%llu,\"stable_error\":%llu}}",
            (unsigned long long) s->shadow.requests,
            (unsigned long long) s->shadow.compared,
            (unsigned long long) s->shadow.matched,
            (unsigned long long) s->shadow.mismatched_status,
            (unsigned long long) s->shadow.mismatched_body,
            (unsigned long long) s->shadow.canary_errors,
            (unsigned long long) s->shadow.timeouts,
            (unsigned long long) s->shadow.skipped_method,
            (unsigned long long) s->shadow.skipped_body_too_large,
            (unsigned long long) s->shadow.skipped_in_flight,
            (unsigned long long) s->shadow.skipped_stable_error);
    }

    ngx_http_canary_out_printf(out, "}");
}


static void
ngx_http_canary_node_variant(ngx_http_canary_out_t *out, const char *name,
    const ngx_http_canary_variant_report_t *v)
{
    size_t       i;
    const char  *sep;

    ngx_http_canary_out_printf(out,
        ",\"%s\":{\"requests\":%llu,\"responses\":[%llu,%llu,%llu,%llu,"
        "%llu],\"upstream_errors\":%llu,\"latency\":\"",
        name,
        (unsigned long long) v->requests,
        (unsigned long long) v->responses[0],
        (unsigned long long) v->responses[1],
        (unsigned long long) v->responses[2],
        (unsigned long long) v->responses[3],
        (unsigned long long) v->responses[4],
        (unsigned long long) v->upstream_errors);

    /* only the buckets that hold requests: a few dozen of 322 */
    sep = "";

    for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS; i++) {
        if (v->latency.counts[i] == 0) {
            continue;
        }

        ngx_http_canary_out_printf(out, "%s%zu:%llu", sep, i,
                                   (unsigned long long) v->latency.counts[i]);
        sep = ",";
    }

    ngx_http_canary_out_printf(out, "\",\"window_s\":%u,"
                               "\"window_requests\":%llu}",
                               v->window.seconds,
                               (unsigned long long) v->window.requests);
}
