
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
static void ngx_http_canary_node_bool(ngx_http_canary_out_t *out, int b);


void
ngx_http_canary_render_node(ngx_http_canary_out_t *out,
    const ngx_http_canary_node_report_t *node,
    const ngx_http_canary_split_report_t *s)
{
    size_t         n;
    unsigned char  weight[NGX_HTTP_CANARY_WEIGHT_LEN];

    n = ngx_http_canary_format_weight(weight, s->weight);

    ngx_http_canary_out_literal(out, "{\"v\":");
    ngx_http_canary_out_int(out, NGX_HTTP_CANARY_NODE_VERSION);
    ngx_http_canary_out_literal(out, ",\"node\":");
    ngx_http_canary_out_json_string(out, node->node.data, node->node.len);
    ngx_http_canary_out_literal(out, ",\"instance\":");
    ngx_http_canary_out_json_string(out, node->instance.data,
                                    node->instance.len);
    ngx_http_canary_out_literal(out, ",\"pid\":");
    ngx_http_canary_out_int(out, node->pid);
    ngx_http_canary_out_literal(out, ",\"split\":");
    ngx_http_canary_out_json_string(out, s->name.data, s->name.len);

    ngx_http_canary_out_literal(out, ",\"generation\":");
    ngx_http_canary_out_uint(out, s->generation);
    ngx_http_canary_out_literal(out, ",\"weight\":");
    ngx_http_canary_out_bytes(out, weight, n);
    ngx_http_canary_out_literal(out, ",\"enabled\":");
    ngx_http_canary_node_bool(out, s->enabled);
    ngx_http_canary_out_literal(out, ",\"guard_tripped\":");
    ngx_http_canary_node_bool(out, s->guard.tripped);
    ngx_http_canary_out_literal(out, ",\"created\":");
    ngx_http_canary_out_int(out, s->created);
    ngx_http_canary_out_literal(out, ",\"interval_ms\":");
    ngx_http_canary_out_uint(out, node->interval_ms);
    ngx_http_canary_out_literal(out,
        ",\"hist\":\"" NGX_HTTP_CANARY_NODE_HIST "\"");

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
        ngx_http_canary_out_literal(out, ",\"shadow\":{\"requests\":");
        ngx_http_canary_out_uint(out, s->shadow.requests);
        ngx_http_canary_out_literal(out, ",\"compared\":");
        ngx_http_canary_out_uint(out, s->shadow.compared);
        ngx_http_canary_out_literal(out, ",\"matched\":");
        ngx_http_canary_out_uint(out, s->shadow.matched);
        ngx_http_canary_out_literal(out, ",\"mismatched\":{\"status\":");
        ngx_http_canary_out_uint(out, s->shadow.mismatched_status);
        ngx_http_canary_out_literal(out, ",\"body\":");
        ngx_http_canary_out_uint(out, s->shadow.mismatched_body);
        ngx_http_canary_out_literal(out, "},\"canary_errors\":");
        ngx_http_canary_out_uint(out, s->shadow.canary_errors);
        ngx_http_canary_out_literal(out, ",\"timeouts\":");
        ngx_http_canary_out_uint(out, s->shadow.timeouts);
        ngx_http_canary_out_literal(out, ",\"skipped\":{\"method\":");
        ngx_http_canary_out_uint(out, s->shadow.skipped_method);
        ngx_http_canary_out_literal(out, ",\"body_too_large\":");
        ngx_http_canary_out_uint(out, s->shadow.skipped_body_too_large);
        ngx_http_canary_out_literal(out, ",\"in_flight\":");
        ngx_http_canary_out_uint(out, s->shadow.skipped_in_flight);
        ngx_http_canary_out_literal(out, ",\"stable_error\":");
        ngx_http_canary_out_uint(out, s->shadow.skipped_stable_error);
        ngx_http_canary_out_literal(out, "}}");
    }

    ngx_http_canary_out_literal(out, "}");
}


static void
ngx_http_canary_node_variant(ngx_http_canary_out_t *out, const char *name,
    const ngx_http_canary_variant_report_t *v)
{
    size_t  i, r, n;

    ngx_http_canary_out_literal(out, ",\"");
    ngx_http_canary_out_cstr(out, name);
    ngx_http_canary_out_literal(out, "\":{\"requests\":");
    ngx_http_canary_out_uint(out, v->requests);
    ngx_http_canary_out_literal(out, ",\"responses\":[");

    for (r = 0; r < 5; r++) {
        if (r) {
            ngx_http_canary_out_literal(out, ",");
        }

        ngx_http_canary_out_uint(out, v->responses[r]);
    }

    ngx_http_canary_out_literal(out, "],\"upstream_errors\":");
    ngx_http_canary_out_uint(out, v->upstream_errors);
    ngx_http_canary_out_literal(out, ",\"latency\":\"");

    /* only the buckets that hold requests: a few dozen of 322 */
    n = 0;

    for (i = 0; i < NGX_HTTP_CANARY_HIST_BUCKETS; i++) {
        if (v->latency.counts[i] == 0) {
            continue;
        }

        if (n++) {
            ngx_http_canary_out_literal(out, ",");
        }

        ngx_http_canary_out_uint(out, i);
        ngx_http_canary_out_literal(out, ":");
        ngx_http_canary_out_uint(out, v->latency.counts[i]);
    }

    ngx_http_canary_out_literal(out, "\",\"window_s\":");
    ngx_http_canary_out_uint(out, v->window.seconds);
    ngx_http_canary_out_literal(out, ",\"window_requests\":");
    ngx_http_canary_out_uint(out, v->window.requests);
    ngx_http_canary_out_literal(out, "}");
}


static void
ngx_http_canary_node_bool(ngx_http_canary_out_t *out, int b)
{
    if (b) {
        ngx_http_canary_out_literal(out, "true");

    } else {
        ngx_http_canary_out_literal(out, "false");
    }
}
