
/*
 * A node's record (ngx_http_canary_render_node()), rendered for every
 * split of a report filled with fuzz bytes (fuzz_report.h), by a node
 * whose name (valid node characters), pid and interval come from the
 * first bytes.
 *
 * Checked:
 *   - the output buffer, as for render_json (fuzz_render());
 *   - the record is JSON (jansson) with the contract's fields, in the
 *     contract's types, each the report's value: the split's name
 *     decodes to its bytes, the weight is the status page's, the sparse
 *     latency pairs are in bucket order, none zero, and give back the
 *     322 counts exactly;
 *   - a record of names up to 63 bytes is within
 *     NGX_HTTP_CANARY_NODE_RECORD_MAX (the counters below 2^48).
 */


#include <math.h>

#include <jansson.h>

#include "fuzz_report.h"
#include "ngx_http_canary_contract.h"


static ngx_http_canary_node_report_t          node;
static const ngx_http_canary_split_report_t  *split;


static void
render_one(ngx_http_canary_out_t *out, const ngx_http_canary_report_t *rep)
{
    (void) rep;

    ngx_http_canary_render_node(out, &node, split);
}


static json_t *
member(json_t *obj, const char *key)
{
    json_t  *v;

    fuzz_assert(json_is_object(obj), "not an object at \"%s\"", key);

    v = json_object_get(obj, key);

    fuzz_assert(v != NULL, "no \"%s\"", key);

    return v;
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


/* a JSON string of these bytes: a byte over 0x7f is its code point */
static void
check_string(json_t *v, const unsigned char *p, size_t len,
    const char *what)
{
    char    want[2 * 256 + 1];
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < 0x80) {
            want[n++] = (char) p[i];

        } else {
            want[n++] = (char) (0xc0 | (p[i] >> 6));
            want[n++] = (char) (0x80 | (p[i] & 0x3f));
        }
    }

    fuzz_assert(json_is_string(v) && json_string_length(v) == n
                && memcmp(json_string_value(v), want, n) == 0,
                "%s is not the report's", what);
}


static void
check_latency(json_t *v, const ngx_http_canary_hist_t *h, const char *side)
{
    char          *end;
    size_t         b, last;
    uint64_t       counts[NGX_HTTP_CANARY_HIST_BUCKETS], n;
    const char    *p;
    unsigned long  bucket;

    fuzz_assert(json_is_string(v), "%s latency is not a string", side);

    memset(counts, 0, sizeof(counts));
    p = json_string_value(v);
    last = (size_t) -1;

    while (*p) {
        bucket = strtoul(p, &end, 10);

        fuzz_assert(end != p && *end == ':'
                    && bucket < NGX_HTTP_CANARY_HIST_BUCKETS
                    && (last == (size_t) -1 || bucket > last),
                    "%s latency: a bad bucket at \"%.20s\"", side, p);

        p = end + 1;
        n = strtoull(p, &end, 10);

        fuzz_assert(end != p && n > 0 && (*end == ',' || *end == '\0'),
                    "%s latency: a bad count at \"%.20s\"", side, p);

        counts[bucket] = n;
        last = bucket;
        p = *end ? end + 1 : end;

        fuzz_assert(*end == '\0' || *p != '\0',
                    "%s latency: a trailing comma", side);
    }

    for (b = 0; b < NGX_HTTP_CANARY_HIST_BUCKETS; b++) {
        fuzz_assert(counts[b] == h->counts[b],
                    "%s latency: bucket %zu is %llu, not %llu", side, b,
                    (unsigned long long) counts[b],
                    (unsigned long long) h->counts[b]);
    }
}


static void
check_side(json_t *o, const ngx_http_canary_variant_report_t *v,
    const char *side)
{
    size_t   i;
    json_t  *a;

    check_uint(member(o, "requests"), v->requests, "requests");

    a = member(o, "responses");

    fuzz_assert(json_is_array(a) && json_array_size(a) == 5,
                "%s responses: not 5", side);

    for (i = 0; i < 5; i++) {
        check_uint(json_array_get(a, i), v->responses[i], "a response class");
    }

    check_uint(member(o, "upstream_errors"), v->upstream_errors,
               "upstream_errors");
    check_latency(member(o, "latency"), &v->latency, side);
    check_uint(member(o, "window_s"), v->window.seconds, "window_s");
    check_uint(member(o, "window_requests"), v->window.requests,
               "window_requests");

    fuzz_assert(json_object_size(o) == 6, "%s: %zu fields, not 6", side,
                json_object_size(o));
}



static void
check_shadow(json_t *o, const ngx_http_canary_shadow_report_t *sh)
{
    json_t  *m;

    check_uint(member(o, "requests"), sh->requests, "shadow requests");
    check_uint(member(o, "compared"), sh->compared, "shadow compared");
    check_uint(member(o, "matched"), sh->matched, "shadow matched");
    m = member(o, "mismatched");
    check_uint(member(m, "status"), sh->mismatched_status,
               "shadow mismatched.status");
    check_uint(member(m, "body"), sh->mismatched_body,
               "shadow mismatched.body");
    check_uint(member(o, "canary_errors"), sh->canary_errors,
               "shadow canary_errors");
    check_uint(member(o, "timeouts"), sh->timeouts, "shadow timeouts");
    m = member(o, "skipped");
    check_uint(member(m, "method"), sh->skipped_method,
               "shadow skipped.method");
    check_uint(member(m, "body_too_large"), sh->skipped_body_too_large,
               "shadow skipped.body_too_large");
    check_uint(member(m, "in_flight"), sh->skipped_in_flight,
               "shadow skipped.in_flight");
    check_uint(member(m, "stable_error"), sh->skipped_stable_error,
               "shadow skipped.stable_error");
    fuzz_assert(json_object_size(o) == 7, "shadow: %zu fields, not 7",
                json_object_size(o));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char            *out, name[NGX_HTTP_CANARY_NODE_LEN], inst[64];
    size_t           len, i, n;
    uint32_t         w;
    json_t          *root;
    json_error_t     jerr;
    fuzz_in_t        in;
    fuzz_report_t    fr;
    static const char  chars[] = "abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

    if (size < 2) {
        return 0;
    }

    fuzz_in_init(&in, data + 2, size - 2);

    /* the node: a valid name of 1 to 63 bytes, a pid, an interval */
    n = 1 + fuzz_in_u8(&in) % (NGX_HTTP_CANARY_NODE_LEN - 1);

    for (i = 0; i < n; i++) {
        name[i] = chars[fuzz_in_u8(&in) % (sizeof(chars) - 1)];
    }

    node.node.data = (const unsigned char *) name;
    node.node.len = n;
    node.pid = (int64_t) (uint32_t) fuzz_in_uint(&in, 4);
    node.interval_ms = fuzz_in_uint(&in, 4);

    snprintf(inst, sizeof(inst), "%u.%u", (unsigned) fuzz_in_uint(&in, 4),
             (unsigned) fuzz_in_uint(&in, 4));
    node.instance.data = (const unsigned char *) inst;
    node.instance.len = strlen(inst);

    fuzz_report_build(&fr, in.p, (size_t) (in.end - in.p));

    for (i = 0; i < fr.rep.nsplits; i++) {
        split = &fr.splits[i];

        out = fuzz_render(render_one, &fr.rep, (data[0] & 7) == 0,
                          (size_t) data[1] << 8 | data[0], &len);

        fuzz_assert(len <= NGX_HTTP_CANARY_NODE_RECORD_MAX,
                    "a record of %zu bytes", len);

        root = json_loadb(out, len, JSON_ALLOW_NUL, &jerr);

        fuzz_assert(root != NULL, "not JSON: line %d column %d: %s\n%s",
                    jerr.line, jerr.column, jerr.text, out);

        check_uint(member(root, "v"), NGX_HTTP_CANARY_NODE_VERSION, "v");
        check_string(member(root, "node"), node.node.data, node.node.len,
                     "node");
        check_string(member(root, "instance"), node.instance.data,
                     node.instance.len, "instance");
        check_uint(member(root, "pid"), (uint64_t) node.pid, "pid");
        check_string(member(root, "split"), split->name.data,
                     split->name.len, "split");
        check_uint(member(root, "generation"), split->generation,
                   "generation");

        w = split->weight > NGX_HTTP_CANARY_WEIGHT_MAX
            ? NGX_HTTP_CANARY_WEIGHT_MAX : split->weight;

        fuzz_assert(json_is_number(member(root, "weight"))
                    && llround(json_number_value(member(root, "weight"))
                               * 100) == (long long) w,
                    "weight is not %u hundredths", w);

        check_bool(member(root, "enabled"), split->enabled, "enabled");
        check_bool(member(root, "guard_tripped"), split->guard.tripped,
                   "guard_tripped");
        check_uint(member(root, "interval_ms"), node.interval_ms,
                   "interval_ms");

        fuzz_assert(json_is_integer(member(root, "created"))
                    && json_integer_value(member(root, "created"))
                       == (json_int_t) split->created, "created");
        fuzz_assert(json_is_string(member(root, "hist"))
                    && strcmp(json_string_value(member(root, "hist")),
                              NGX_HTTP_CANARY_NODE_HIST) == 0, "hist");

        check_side(member(root, "stable"), &split->variants[0], "stable");
        check_side(member(root, "canary"), &split->variants[1], "canary");

        /* "shadow" only with shadow in the split: its counters */
        if (split->shadow.configured) {
            check_shadow(member(root, "shadow"), &split->shadow);
        }

        fuzz_assert(json_object_size(root)
                    == 14 + (split->shadow.configured ? 1 : 0),
                    "%zu fields, not 14 (+ shadow)", json_object_size(root));

        json_decref(root);
        free(out);
    }

    fuzz_report_free(&fr);

    return 0;
}
