
/*
 * A node's record into metrics, the fleet's short window, and which
 * node problems were said already.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ngx_http_canary_contract.h"
#include "ngx_http_canary_limits.h"
#include "ngx_http_canary_parse.h"

#include "fleet.h"


/* unix seconds: beyond, not a time this sidecar can do arithmetic on */
#define CS_CREATED_MAX      100000000000LL


static cs_record_e cs_fleet_variant(json_t *var, const char *name,
    cs_window_t *w, char *err, size_t errlen);
static int cs_fleet_count(json_t *v, uint64_t *out);
static uint64_t cs_fleet_instance(const char *s, size_t len);
static cs_record_e cs_fleet_latency(const char *s, uint64_t *counts,
    char *err, size_t errlen);


static const char  *cs_record_reasons[] = {
    "ok",
    "not a valid node name (1 to 63 of A-Z a-z 0-9 . _ -)",
    "no record (expired, or not a string)",
    "record too large",
    "not valid JSON",
    "a record version this sidecar does not know",
    "another node's or split's record",
    "another histogram layout",
    "a field missing or of the wrong type",
    "latency is not bucket:count pairs in bucket order",
    "a count too large"
};


const char *
cs_record_reason(cs_record_e reason)
{
    return reason < CS_RECORDS ? cs_record_reasons[reason] : "?";
}


cs_record_e
cs_fleet_parse(const char *name, size_t name_len, const char *record,
    size_t len, const char *split, cs_metrics_t *m, char *err,
    size_t errlen)
{
    int            shadow;
    json_t        *root, *v;
    json_int_t     n;
    cs_record_e    rc;
    json_error_t   jerr;

    cs_metrics_init(m);
    err[0] = '\0';

    if (!ngx_http_canary_valid_node((const unsigned char *) name, name_len))
    {
        snprintf(err, errlen, "%s", cs_record_reasons[CS_RECORD_NAME]);
        return CS_RECORD_NAME;
    }

    if (len > NGX_HTTP_CANARY_NODE_RECORD_MAX) {
        snprintf(err, errlen, "record of %zu bytes, over %d", len,
                 NGX_HTTP_CANARY_NODE_RECORD_MAX);
        return CS_RECORD_TOO_LARGE;
    }

    root = json_loadb(record, len, 0, &jerr);

    if (root == NULL) {
        snprintf(err, errlen, "not valid JSON: column %d: %s", jerr.column,
                 jerr.text);
        return CS_RECORD_JSON;
    }

    if (!json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object");
        rc = CS_RECORD_JSON;
        goto done;
    }

    v = json_object_get(root, "v");

    if (!json_is_integer(v)
        || json_integer_value(v) != NGX_HTTP_CANARY_NODE_VERSION)
    {
        snprintf(err, errlen, "\"v\" is not %d", NGX_HTTP_CANARY_NODE_VERSION);
        rc = CS_RECORD_VERSION;
        goto done;
    }

    v = json_object_get(root, "node");

    if (!json_is_string(v) || json_string_length(v) != name_len
        || memcmp(json_string_value(v), name, name_len) != 0)
    {
        snprintf(err, errlen, "\"node\" is not \"%.*s\"", (int) name_len,
                 name);
        rc = CS_RECORD_OTHER;
        goto done;
    }

    v = json_object_get(root, "split");

    if (!json_is_string(v) || strcmp(json_string_value(v), split) != 0) {
        snprintf(err, errlen, "\"split\" is not \"%s\"", split);
        rc = CS_RECORD_OTHER;
        goto done;
    }

    v = json_object_get(root, "hist");

    if (!json_is_string(v)
        || strcmp(json_string_value(v), NGX_HTTP_CANARY_NODE_HIST) != 0)
    {
        snprintf(err, errlen, "\"hist\" is not \"%s\"",
                 NGX_HTTP_CANARY_NODE_HIST);
        rc = CS_RECORD_HIST;
        goto done;
    }

    rc = CS_RECORD_FIELD;

    v = json_object_get(root, "generation");

    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(err, errlen, "\"generation\" is not a count");
        goto done;
    }

    m->generation_min = (uint64_t) json_integer_value(v);

    v = json_object_get(root, "created");
    n = json_integer_value(v);

    if (!json_is_integer(v) || n < 0 || n > CS_CREATED_MAX) {
        snprintf(err, errlen, "\"created\" is not unix seconds");
        goto done;
    }

    m->created = (int64_t) n;

    v = json_object_get(root, "instance");

    if (!json_is_string(v) || json_string_length(v) == 0) {
        snprintf(err, errlen, "\"instance\" is not a string");
        goto done;
    }

    m->instance = cs_fleet_instance(json_string_value(v),
                                    json_string_length(v));

    v = json_object_get(root, "enabled");

    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "\"enabled\" is not true or false");
        goto done;
    }

    m->disabled = json_is_false(v);

    v = json_object_get(root, "guard_tripped");

    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "\"guard_tripped\" is not true or false");
        goto done;
    }

    m->guard_tripped = json_is_true(v);

    rc = cs_fleet_variant(json_object_get(root, NGX_HTTP_CANARY_SIDE_STABLE),
                          NGX_HTTP_CANARY_SIDE_STABLE, &m->total[CS_STABLE],
                          err, errlen);

    if (rc == CS_RECORD_OK) {
        rc = cs_fleet_variant(json_object_get(root,
                                              NGX_HTTP_CANARY_SIDE_CANARY),
                              NGX_HTTP_CANARY_SIDE_CANARY,
                              &m->total[CS_CANARY], err, errlen);
    }

    if (rc == CS_RECORD_OK) {
        /* absent without "shadow" in the split: all 0 */
        shadow = cs_fetch_shadow(json_object_get(root, "shadow"),
                                 &m->shadow_total, err, errlen);

        if (shadow == -1) {
            rc = CS_RECORD_FIELD;
            goto done;
        }

        m->shadow_seen = shadow == 0;
        m->instances = 1;
    }

done:

    json_decref(root);

    if (rc != CS_RECORD_OK) {
        cs_metrics_init(m);
    }

    return rc;
}


static cs_record_e
cs_fleet_variant(json_t *var, const char *name, cs_window_t *w, char *err,
    size_t errlen)
{
    int      rc;
    json_t  *resp, *lat;

    if (!json_is_object(var)) {
        snprintf(err, errlen, "no \"%s\" object", name);
        return CS_RECORD_FIELD;
    }

    resp = json_object_get(var, "responses");
    lat = json_object_get(var, "latency");

    if (!json_is_array(resp) || json_array_size(resp) != 5
        || !json_is_string(lat))
    {
        snprintf(err, errlen, "%s: \"responses\" is not 5 counts or "
                 "\"latency\" not a string", name);
        return CS_RECORD_FIELD;
    }

    rc = cs_fleet_count(json_object_get(var, "requests"), &w->requests);

    if (rc == 0) {
        rc = cs_fleet_count(json_array_get(resp, 4), &w->errors_5xx);
    }

    if (rc == 0) {
        rc = cs_fleet_count(json_object_get(var, "upstream_errors"),
                            &w->upstream_errors);
    }

    if (rc == -1) {
        snprintf(err, errlen, "%s: \"requests\", \"responses\"[4] or "
                 "\"upstream_errors\" is not a count", name);
        return CS_RECORD_FIELD;
    }

    if (rc == -2) {
        snprintf(err, errlen, "%s: a count over %llu", name,
                 (unsigned long long) CS_FLEET_COUNT_MAX);
        return CS_RECORD_COUNT;
    }

    return cs_fleet_latency(json_string_value(lat), w->counts, err, errlen);
}


/* 0; -1 not a count; -2 too large */

static int
cs_fleet_count(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return -1;
    }

    if ((uint64_t) json_integer_value(v) > CS_FLEET_COUNT_MAX) {
        return -2;
    }

    *out = (uint64_t) json_integer_value(v);

    return 0;
}


/*
 * The nginx master that wrote a record, as a number the readings keep:
 * FNV-1a of "instance", never 0 (unknown).
 */

static uint64_t
cs_fleet_instance(const char *s, size_t len)
{
    size_t    i;
    uint64_t  h;

    h = 14695981039346656037ULL;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) s[i];
        h *= 1099511628211ULL;
    }

    return h ? h : 1;
}


/* "3:10,17:2500,40:7": buckets in increasing order; "" is none */

static cs_record_e
cs_fleet_latency(const char *s, uint64_t *counts, char *err, size_t errlen)
{
    int          digits, first;
    uint64_t     b, c, last;
    const char  *p;

    memset(counts, 0, CS_HIST_BUCKETS * sizeof(uint64_t));

    p = s;
    last = 0;
    first = 1;

    while (*p) {
        b = 0;

        for (digits = 0; *p >= '0' && *p <= '9'; p++, digits++) {
            if (b < CS_HIST_BUCKETS) {
                b = b * 10 + (uint64_t) (*p - '0');
            }
        }

        if (digits == 0 || *p != ':') {
            goto bad;
        }

        if (b >= CS_HIST_BUCKETS || (!first && b <= last)) {
            snprintf(err, errlen, "latency: bucket %llu %s",
                     (unsigned long long) b, b >= CS_HIST_BUCKETS
                     ? "or more: out of range" : "out of order");
            return CS_RECORD_LATENCY;
        }

        c = 0;

        for (p++, digits = 0; *p >= '0' && *p <= '9'; p++, digits++) {
            c = c * 10 + (uint64_t) (*p - '0');

            if (c > CS_FLEET_COUNT_MAX) {
                snprintf(err, errlen, "latency: bucket %llu: a count over "
                         "%llu", (unsigned long long) b,
                         (unsigned long long) CS_FLEET_COUNT_MAX);
                return CS_RECORD_COUNT;
            }
        }

        if (digits == 0 || (*p != ',' && *p != '\0')) {
            goto bad;
        }

        counts[b] = c;
        last = b;
        first = 0;

        if (*p == ',') {
            p++;

            if (*p == '\0') {
                goto bad;
            }
        }
    }

    return CS_RECORD_OK;

bad:

    snprintf(err, errlen, "latency: not bucket:count at byte %zu",
             (size_t) (p - s));

    return CS_RECORD_LATENCY;
}


void
cs_fleet_window_add(cs_fleet_window_t *w, int64_t now,
    const cs_window_t *delta)
{
    size_t            v;
    cs_fleet_step_t  *st;

    if (delta && w->last && now > w->last) {
        st = &w->steps[w->head];
        w->head = (w->head + 1) % CS_FLEET_STEPS;

        if (w->n < CS_FLEET_STEPS) {
            w->n++;
        }

        st->at = now;
        st->from = w->last;

        for (v = 0; v < 2; v++) {
            st->requests[v] = delta[v].requests;
            st->errors_5xx[v] = delta[v].errors_5xx;
            st->upstream_errors[v] = delta[v].upstream_errors;
        }
    }

    if (now > w->last) {
        w->last = now;
    }
}


void
cs_fleet_window_sum(const cs_fleet_window_t *w, int64_t now,
    unsigned seconds, cs_metrics_t *m)
{
    size_t                  i, k, v;
    int64_t                 since, from;
    const cs_fleet_step_t  *st;

    memset(m->v, 0, sizeof(m->v));

    since = now - (int64_t) seconds * 1000;
    from = now;

    for (i = 0; i < w->n; i++) {
        k = (w->head + CS_FLEET_STEPS - 1 - i) % CS_FLEET_STEPS;
        st = &w->steps[k];

        /* a step counts if it ends within the window, and started no
         * more than a step's length before it */
        if (st->at <= since || st->at > now) {
            break;
        }

        for (v = 0; v < 2; v++) {
            m->v[v].requests += st->requests[v];
            m->v[v].errors_5xx += st->errors_5xx[v];
            m->v[v].upstream_errors += st->upstream_errors[v];
        }

        from = st->from;
    }

    if (from < since) {
        from = since;
    }

    m->window_seconds = (unsigned) ((now - from + 500) / 1000);
}


int
cs_fleet_once(cs_fleet_logged_t *l, const char *name, cs_record_e reason)
{
    char    key[96], **keys;
    size_t  i;

    snprintf(key, sizeof(key), "%d %.80s", (int) reason, name);

    for (i = 0; i < l->n; i++) {
        if (strcmp(l->keys[i], key) == 0) {
            return 0;
        }
    }

    if (l->n == CS_FLEET_LOGGED_MAX) {
        return 0;
    }

    if (l->n == l->size) {
        l->size = l->size ? 2 * l->size : 16;

        keys = realloc(l->keys, l->size * sizeof(char *));
        if (keys == NULL) {
            l->size = l->n;
            return 1;
        }

        l->keys = keys;
    }

    l->keys[l->n] = strdup(key);

    if (l->keys[l->n]) {
        l->n++;
    }

    return 1;
}


void
cs_fleet_logged_free(cs_fleet_logged_t *l)
{
    size_t  i;

    for (i = 0; i < l->n; i++) {
        free(l->keys[i]);
    }

    free(l->keys);
    memset(l, 0, sizeof(cs_fleet_logged_t));
}
