
/*
 * Fetching and adding up /canary_status of a fleet of nginx.
 */


#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "fetch.h"


#define CS_FETCH_BODY_MAX   (16 * 1024 * 1024)

/* unix seconds: beyond, not a time this sidecar can do arithmetic on */
#define CS_CREATED_MAX      100000000000ULL


typedef struct {
    char               *data;
    size_t              len;
    size_t              size;
    int                 too_big;
} cs_body_t;


static size_t cs_fetch_write(char *ptr, size_t size, size_t nmemb,
    void *userdata);
static int cs_fetch_variant(json_t *variants, const char *name,
    cs_window_t *w, cs_window_t *total, unsigned *seconds, char *err,
    size_t errlen);
static int cs_fetch_counts(json_t *counts, uint64_t *out);
static int cs_fetch_uint(json_t *obj, const char *key, uint64_t *out);
static int cs_fetch_shadow_count(json_t *obj, const char *key,
    uint64_t *out);
static void cs_fetch_append(char *err, size_t errlen, const char *name,
    const char *why);


char *
cs_fetch_url(const char *base, const char *split, unsigned window)
{
    char    *url;
    size_t   len;

    len = strlen(base) + strlen(split) + 64;

    url = malloc(len);
    if (url == NULL) {
        return NULL;
    }

    snprintf(url, len, "%s%sformat=json&split=%s&window=%u", base,
             strchr(base, '?') ? "&" : "?", split, window);

    return url;
}


void
cs_metrics_init(cs_metrics_t *m)
{
    memset(m, 0, sizeof(cs_metrics_t));
    m->generation_min = UINT64_MAX;
}


void
cs_window_add(cs_window_t *a, const cs_window_t *b)
{
    size_t  i;

    a->requests += b->requests;
    a->errors_5xx += b->errors_5xx;
    a->upstream_errors += b->upstream_errors;

    for (i = 0; i < CS_HIST_BUCKETS; i++) {
        a->counts[i] += b->counts[i];
    }
}


void
cs_shadow_add(cs_shadow_t *a, const cs_shadow_t *b)
{
    a->requests += b->requests;
    a->compared += b->compared;
    a->matched += b->matched;
    a->mismatched_status += b->mismatched_status;
    a->mismatched_body += b->mismatched_body;
    a->canary_errors += b->canary_errors;
    a->timeouts += b->timeouts;
    a->skipped += b->skipped;
}


int
cs_shadow_sub(cs_shadow_t *out, const cs_shadow_t *a, const cs_shadow_t *b)
{
    memset(out, 0, sizeof(cs_shadow_t));

    if (a->requests < b->requests || a->compared < b->compared
        || a->matched < b->matched
        || a->mismatched_status < b->mismatched_status
        || a->mismatched_body < b->mismatched_body
        || a->canary_errors < b->canary_errors
        || a->timeouts < b->timeouts || a->skipped < b->skipped)
    {
        return 1;
    }

    out->requests = a->requests - b->requests;
    out->compared = a->compared - b->compared;
    out->matched = a->matched - b->matched;
    out->mismatched_status = a->mismatched_status - b->mismatched_status;
    out->mismatched_body = a->mismatched_body - b->mismatched_body;
    out->canary_errors = a->canary_errors - b->canary_errors;
    out->timeouts = a->timeouts - b->timeouts;
    out->skipped = a->skipped - b->skipped;

    return 0;
}


void
cs_metrics_add(cs_metrics_t *sum, const cs_metrics_t *one)
{
    cs_window_add(&sum->v[0], &one->v[0]);
    cs_window_add(&sum->v[1], &one->v[1]);

    if (sum->instances == 0 || one->window_seconds < sum->window_seconds) {
        sum->window_seconds = one->window_seconds;
    }

    if (one->generation_min < sum->generation_min) {
        sum->generation_min = one->generation_min;
    }

    sum->instances += one->instances;
    sum->guard_tripped += one->guard_tripped;
    sum->disabled += one->disabled;
    sum->shadow_seen += one->shadow_seen;
}


size_t
cs_fetch(char *const *urls, char *const *names, size_t n, const char *split,
    long timeout_ms, cs_metrics_t *nodes, int *answered, char *err,
    size_t errlen)
{
    int            running, left;
    long           code;
    char           why[256];
    size_t         i, ok;
    CURL         **easy;
    CURLM         *multi;
    CURLMsg       *msg;
    CURLcode      *result, *res;
    cs_body_t     *bodies;

    err[0] = '\0';
    ok = 0;

    for (i = 0; i < n; i++) {
        answered[i] = 0;
    }

    easy = calloc(n, sizeof(CURL *));
    result = calloc(n, sizeof(CURLcode));
    bodies = calloc(n, sizeof(cs_body_t));
    multi = curl_multi_init();

    if (easy == NULL || result == NULL || bodies == NULL || multi == NULL) {
        snprintf(err, errlen, "no memory");
        goto done;
    }

    for (i = 0; i < n; i++) {
        result[i] = CURLE_FAILED_INIT;

        easy[i] = curl_easy_init();
        if (easy[i] == NULL) {
            continue;
        }

        curl_easy_setopt(easy[i], CURLOPT_URL, urls[i]);
        curl_easy_setopt(easy[i], CURLOPT_PRIVATE, (char *) &result[i]);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, cs_fetch_write);
        curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &bodies[i]);
        curl_easy_setopt(easy[i], CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy[i], CURLOPT_USERAGENT, "canary-sidecar");
#if LIBCURL_VERSION_NUM >= 0x075700
        /* a --status host whose DNS does not answer: the resolver's
         * thread ends on its own, the step does not wait for it
         * (as notify.c) */
        curl_easy_setopt(easy[i], CURLOPT_QUICK_EXIT, 1L);
#endif
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(easy[i], CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(easy[i], CURLOPT_PROTOCOLS,
                         (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif

        curl_multi_add_handle(multi, easy[i]);
    }

    running = 1;

    while (running) {
        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            break;
        }

        if (running && curl_multi_poll(multi, NULL, 0, 100, NULL)
                       != CURLM_OK)
        {
            break;
        }
    }

    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
                              (char **) &res) == CURLE_OK && res)
        {
            *res = msg->data.result;
        }
    }

    for (i = 0; i < n; i++) {
        if (easy[i] == NULL) {
            cs_fetch_append(err, errlen, names[i], "no memory");
            continue;
        }

        if (result[i] != CURLE_OK) {
            cs_fetch_append(err, errlen, names[i],
                            bodies[i].too_big ? "answer over 16MB"
                            : curl_easy_strerror(result[i]));
            continue;
        }

        code = 0;
        curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &code);

        if (code != 200) {
            snprintf(why, sizeof(why), "HTTP %ld %.120s", code,
                     bodies[i].data ? bodies[i].data : "");
            why[strcspn(why, "\r\n")] = '\0';
            cs_fetch_append(err, errlen, names[i], why);
            continue;
        }

        if (cs_fetch_parse(bodies[i].data ? bodies[i].data : "",
                           bodies[i].len, split, &nodes[i], why,
                           sizeof(why))
            != 0)
        {
            cs_fetch_append(err, errlen, names[i], why);
            continue;
        }

        answered[i] = 1;
        ok++;
    }

done:

    for (i = 0; easy && i < n; i++) {
        if (easy[i]) {
            if (multi) {
                curl_multi_remove_handle(multi, easy[i]);
            }

            curl_easy_cleanup(easy[i]);
        }

        free(bodies ? bodies[i].data : NULL);
    }

    if (multi) {
        curl_multi_cleanup(multi);
    }

    free(easy);
    free(result);
    free(bodies);

    return ok;
}


static size_t
cs_fetch_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    char       *p;
    size_t      n, want;
    cs_body_t  *b = userdata;

    n = size * nmemb;

    if (b->len + n + 1 > CS_FETCH_BODY_MAX) {
        b->too_big = 1;
        return 0;
    }

    if (b->len + n + 1 > b->size) {
        want = b->size ? b->size : 65536;

        while (want < b->len + n + 1) {
            want *= 2;
        }

        p = realloc(b->data, want);
        if (p == NULL) {
            return 0;
        }

        b->data = p;
        b->size = want;
    }

    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';

    return n;
}


static void
cs_fetch_append(char *err, size_t errlen, const char *name, const char *why)
{
    size_t  len;

    len = strlen(err);

    if (len && len + 2 < errlen) {
        memcpy(err + len, "; ", 3);
        len += 2;
    }

    if (len < errlen) {
        snprintf(err + len, errlen - len, "%s: %s", name, why);
    }
}


int
cs_fetch_parse(const char *body, size_t len, const char *split,
    cs_metrics_t *m, char *err, size_t errlen)
{
    int            rc, shadow;
    json_t        *root, *s, *v, *guard;
    uint64_t       gen;
    unsigned       sec[2];
    json_error_t   jerr;

    cs_metrics_init(m);

    /*
     * "\u0000" is valid JSON: a Redis error text the module shows may
     * hold one; no string here is used as a C string
     */
    root = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);

    if (root == NULL) {
        snprintf(err, errlen, "not JSON: line %d, column %d: %s",
                 jerr.line, jerr.column, jerr.text);
        return -1;
    }

    rc = -1;

    s = json_object_get(json_object_get(root, "splits"), split);

    if (!json_is_object(s)) {
        snprintf(err, errlen, "no split \"%s\" in the status", split);
        goto done;
    }

    v = json_object_get(s, "variants");

    if (cs_fetch_variant(v, "stable", &m->v[CS_STABLE],
                         &m->total[CS_STABLE], &sec[0], err, errlen) != 0
        || cs_fetch_variant(v, "canary", &m->v[CS_CANARY],
                            &m->total[CS_CANARY], &sec[1], err, errlen)
           != 0)
    {
        goto done;
    }

    /* absent from an older module: a restart shows as counters going
     * down instead */
    if (cs_fetch_uint(s, "created", &gen) == 0 && gen <= CS_CREATED_MAX) {
        m->created = (int64_t) gen;
    }

    m->window_seconds = sec[0] < sec[1] ? sec[0] : sec[1];

    if (cs_fetch_uint(s, "generation", &gen) == 0) {
        m->generation_min = gen;
    }

    guard = json_object_get(s, "guard");

    if (json_is_true(json_object_get(guard, "tripped"))) {
        m->guard_tripped = 1;
    }

    if (json_is_false(json_object_get(s, "enabled"))) {
        m->disabled = 1;
    }

    /* null, or absent from an older module: no shadow, all 0 */
    shadow = cs_fetch_shadow(json_object_get(s, "shadow"), &m->shadow_total,
                             err, errlen);

    if (shadow == -1) {
        goto done;
    }

    m->shadow_seen = shadow == 0;

    m->instances = 1;
    rc = 0;

done:

    json_decref(root);

    return rc;
}


static int
cs_fetch_variant(json_t *variants, const char *name, cs_window_t *w,
    cs_window_t *total, unsigned *seconds, char *err, size_t errlen)
{
    size_t     i;
    double     le;
    json_t    *var, *win, *lat, *bounds;
    uint64_t   sec;

    var = json_object_get(variants, name);
    win = json_object_get(var, "window");

    if (!json_is_object(win)) {
        snprintf(err, errlen, "no variants.%s.window in the status", name);
        return -1;
    }

    if (cs_fetch_uint(win, "seconds", &sec) != 0
        || cs_fetch_uint(win, "requests", &w->requests) != 0
        || cs_fetch_uint(win, "5xx", &w->errors_5xx) != 0
        || cs_fetch_uint(win, "upstream_errors", &w->upstream_errors) != 0)
    {
        snprintf(err, errlen, "variants.%s.window: seconds, requests, 5xx "
                 "or upstream_errors missing or not a count", name);
        return -1;
    }

    *seconds = (unsigned) sec;

    if (cs_fetch_counts(json_object_get(win, "counts"), w->counts) != 0) {
        snprintf(err, errlen, "variants.%s.window.counts is not an array "
                 "of %d counts", name, CS_HIST_BUCKETS);
        return -1;
    }

    /* the cumulative counters, which the stage's evidence is made of */

    lat = json_object_get(var, "latency");

    if (cs_fetch_uint(var, "requests", &total->requests) != 0
        || cs_fetch_uint(json_object_get(var, "responses"), "5xx",
                         &total->errors_5xx) != 0
        || cs_fetch_uint(var, "upstream_errors", &total->upstream_errors)
           != 0
        || cs_fetch_counts(json_object_get(lat, "counts"), total->counts)
           != 0)
    {
        snprintf(err, errlen, "variants.%s: requests, responses.5xx, "
                 "upstream_errors or latency.counts missing or not counts",
                 name);
        return -1;
    }

    /* the layout is fixed: refuse a histogram cut another way */
    bounds = json_object_get(lat, "le_ms");

    if (bounds == NULL) {
        return 0;
    }

    if (!json_is_array(bounds) || json_array_size(bounds) != CS_HIST_BUCKETS
        || !json_is_null(json_array_get(bounds, CS_HIST_BUCKETS - 1)))
    {
        snprintf(err, errlen, "variants.%s.latency.le_ms is not the "
                 "histogram layout this sidecar knows", name);
        return -1;
    }

    for (i = 0; i < CS_HIST_BUCKETS - 1; i++) {
        le = json_number_value(json_array_get(bounds, i));

        if (fabs(le * 1000 - (double) ngx_http_canary_hist_upper(i)) > 0.5) {
            snprintf(err, errlen, "variants.%s.latency.le_ms[%zu] is %g, "
                     "not %g: another histogram layout", name, i, le,
                     (double) ngx_http_canary_hist_upper(i) / 1000);
            return -1;
        }
    }

    return 0;
}


/*
 * splits.NAME.shadow's cumulative counters: 1 none (absent, null: a
 * split without "shadow", an older module), 0 read, -1 not the module's
 * (not an object, a count missing, not a count, over
 * CS_SHADOW_COUNT_MAX) and err.  Read as zeros, such an object was a
 * stage's worth of counts: "compared" without "matched" as many
 * mismatches, and the next good reading all new.
 */

int
cs_fetch_shadow(json_t *sh, cs_shadow_t *out, char *err, size_t errlen)
{
    size_t       i;
    uint64_t     n;
    json_t      *o;
    const char  *bad;

    /* stable_error: an nginx before it has none */
    static const char  *skips[] = { "method", "body_too_large",
                                    "in_flight", "stable_error" };

    memset(out, 0, sizeof(cs_shadow_t));

    if (sh == NULL || json_is_null(sh)) {
        return 1;
    }

    if (!json_is_object(sh)) {
        snprintf(err, errlen, "\"shadow\" is not an object");
        return -1;
    }

    o = json_object_get(sh, "mismatched");

    bad = cs_fetch_shadow_count(sh, "requests", &out->requests)
          ? "requests"
          : cs_fetch_shadow_count(sh, "compared", &out->compared)
          ? "compared"
          : cs_fetch_shadow_count(sh, "matched", &out->matched)
          ? "matched"
          : cs_fetch_shadow_count(o, "status", &out->mismatched_status)
          ? "mismatched.status"
          : cs_fetch_shadow_count(o, "body", &out->mismatched_body)
          ? "mismatched.body"
          : cs_fetch_shadow_count(sh, "canary_errors", &out->canary_errors)
          ? "canary_errors"
          : cs_fetch_shadow_count(sh, "timeouts", &out->timeouts)
          ? "timeouts" : NULL;

    /* skipped is told, not judged: its counts may be absent */
    o = json_object_get(sh, "skipped");

    for (i = 0; bad == NULL && i < sizeof(skips) / sizeof(skips[0]); i++)
    {
        if (json_object_get(o, skips[i]) == NULL) {
            continue;
        }

        if (cs_fetch_shadow_count(o, skips[i], &n)) {
            bad = skips[i];
            break;
        }

        out->skipped += n;
    }

    if (bad != NULL) {
        memset(out, 0, sizeof(cs_shadow_t));
        snprintf(err, errlen, "\"shadow\": %s is not a count up to %llu",
                 bad, (unsigned long long) CS_SHADOW_COUNT_MAX);
        return -1;
    }

    /*
     * matched is never more than compared; the module adds to compared
     * first, and one comparison may end between the two reads: a count
     * beyond it is none
     */
    if (out->matched > out->compared) {
        out->matched = out->compared;
    }

    return 0;
}


/* 0, or 1: missing, not a count, over CS_SHADOW_COUNT_MAX */

static int
cs_fetch_shadow_count(json_t *obj, const char *key, uint64_t *out)
{
    if (cs_fetch_uint(obj, key, out) != 0 || *out > CS_SHADOW_COUNT_MAX) {
        *out = 0;
        return 1;
    }

    return 0;
}


static int
cs_fetch_counts(json_t *counts, uint64_t *out)
{
    size_t   i;
    json_t  *c;

    if (!json_is_array(counts) || json_array_size(counts) != CS_HIST_BUCKETS)
    {
        return -1;
    }

    for (i = 0; i < CS_HIST_BUCKETS; i++) {
        c = json_array_get(counts, i);

        if (!json_is_integer(c) || json_integer_value(c) < 0) {
            return -1;
        }

        out[i] = (uint64_t) json_integer_value(c);
    }

    return 0;
}


static int
cs_fetch_uint(json_t *obj, const char *key, uint64_t *out)
{
    json_t  *v;

    v = json_object_get(obj, key);

    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return -1;
    }

    *out = (uint64_t) json_integer_value(v);

    return 0;
}
