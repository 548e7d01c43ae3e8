
/*
 * The rollout plan: JSON (jansson), validation, defaults.  Every error
 * names its place: "stages[2].weight", "slo", "the top level".
 */


#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <jansson.h>

#include "plan.h"
#include "ngx_http_canary_parse.h"
#include "ngx_http_canary_histogram.h"


/*
 * An absolute latency limit's top: a request is counted over a limit
 * when its histogram bucket starts above it, and none but the overflow
 * bucket (67.1s and more) starts above 67108ms: a limit there could
 * never fail
 */
#define CS_LATENCY_LIMIT_MAX_MS                                               \
    ((double) ((((uint64_t) 1 << NGX_HTTP_CANARY_HIST_MAX_SHIFT) - 1) / 1000))


#define CS_DURATION_MAX   (30LL * 86400 * 1000)
#define CS_VALUE_TEXT     72        /* "...": 60 characters, quoted */


typedef struct {
    const char         *source;
    char               *err;
    size_t              errlen;
} cs_plan_ctx_t;


static void cs_plan_defaults(cs_plan_t *plan);
static int cs_plan_error(cs_plan_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int cs_plan_known(cs_plan_ctx_t *ctx, json_t *obj, const char *where,
    const char **names);
static int cs_plan_stages(cs_plan_ctx_t *ctx, cs_plan_t *plan,
    json_t *stages);
static int cs_plan_stage(cs_plan_ctx_t *ctx, cs_plan_t *plan, size_t i,
    json_t *st);
static int cs_plan_slo(cs_plan_ctx_t *ctx, cs_slo_t *s, json_t *slo,
    const char *where);
static int cs_plan_stage_slos(cs_plan_ctx_t *ctx, cs_plan_t *plan,
    json_t *stages);
static int cs_plan_triggers(cs_plan_ctx_t *ctx, cs_plan_t *plan,
    json_t *triggers);
static int cs_plan_rollback(cs_plan_ctx_t *ctx, cs_plan_t *plan,
    json_t *rollback);
static int cs_plan_pins(cs_plan_ctx_t *ctx, cs_plan_t *plan, json_t *pins);
static int cs_plan_duration(cs_plan_ctx_t *ctx, json_t *v, const char *where,
    int64_t min, int64_t max, int64_t *ms, char *said);
static int cs_plan_number(cs_plan_ctx_t *ctx, json_t *v, const char *where,
    double min, double max, int min_open, double *out);
static int cs_plan_add_pin(cs_plan_t *plan, const char *pin);
static char *cs_plan_value(json_t *v, char *buf, size_t size);
static size_t cs_utf8_len(const unsigned char *p);
static size_t cs_utf8_len_of(const unsigned char *p);
static int cs_plan_cohorts(cs_plan_ctx_t *ctx, cs_plan_t *plan, size_t i,
    json_t *map);
static int cs_plan_cohort_name(const char *name);
static const cs_cohort_t *cs_plan_cohort_find(const cs_cohorts_t *cs,
    const char *name);
static int cs_plan_notify(cs_plan_ctx_t *ctx, cs_plan_t *plan,
    json_t *notify);
static int cs_plan_notify_target(cs_plan_ctx_t *ctx, cs_notify_target_t *t,
    size_t i, json_t *o);
static int cs_plan_notify_url(cs_plan_ctx_t *ctx, size_t i, const char *s,
    size_t len);
static int cs_plan_notify_secret(cs_plan_ctx_t *ctx, cs_notify_target_t *t,
    size_t i, const char *path);
static int cs_plan_release(cs_plan_ctx_t *ctx, cs_plan_t *plan,
    json_t *release);


static const char  *cs_plan_top_fields[] = {
    "pins", "stages", "slo", "interval", "violation_for", "on_violation",
    "window", "lag", "lag_hold",
    "triggers", "rollback", "notify", "release",
    NULL
};

static const char  *cs_plan_release_fields[] = {
    "stable", "canary", NULL
};

static const char  *cs_plan_stage_fields[] = {
    "name", "weight", "hold", "manual",
    "slo", "cohorts",
    "shadow",
    NULL
};

static const char  *cs_plan_notify_fields[] = {
    "url", "format", "events", "secret_file", NULL
};


/* the sidecar's own operations (README, Receipts) */

const char  *cs_plan_notify_events[] = {
    "rollout_started", "canary_phase_complete", "traffic_promoted",
    "awaiting_resume", "deployment_complete", "sli_violation_detected",
    "rollback_executed", "rollout_paused", "rollout_halted", "halt_cleared",
    "rollback_step",
    NULL
};


/* those of the other writers: named, but never seen by the sidecar */

static const char  *cs_plan_other_events[] = {
    "weight_set", "canary-ctl set-weight",
    "split_enabled", "canary-ctl enable",
    "split_disabled", "canary-ctl disable",
    "rollout_resumed", "canary-ctl resume",
    "split_reset", "canary-ctl reset",
    "tenants_pinned", "canary-ctl pin",
    "tenants_unpinned", "canary-ctl unpin",
    "guard_tripped", "the module's guard",
    "cohort_weight_set", "canary-ctl cohort",
    "shadow_set", "canary-ctl shadow",
    NULL
};


static const char  *cs_plan_slo_fields[] = {
    "latency_p99_ratio_max", "latency_p99_min_delta_ms",
    "error_rate_ratio_max", "error_rate_max", "availability_min",
    "min_requests", "confidence",
    "latency_p50_max_ms", "latency_p95_max_ms", "latency_p99_max_ms",
    "latency_p95_ratio_max",
    "shadow_match_min", "shadow_min_compared",
    NULL
};


/* the keys of "triggers", in the order of CS_TRIGGER_* */

static const char  *cs_plan_trigger_names[] = {
    "error_rate", "availability", "latency_p99", "latency_p95",
    "latency_p50", NULL
};

static const char  *cs_plan_trigger_fields[] = {
    "act", "for", "then", NULL
};

static const char  *cs_plan_rollback_fields[] = {
    "steps", "step_hold", NULL
};


/* the governor runbook: one pinned test tenant, then 5, 20, 50, 100 */

static const cs_stage_t  cs_plan_default_stages[] = {
    { "canary",      0,     30 * 60 * 1000, 0, 0 },
    { "5_percent",   500,   30 * 60 * 1000, 0, 0 },
    { "20_percent",  2000,  60 * 60 * 1000, 0, 0 },
    { "50_percent",  5000,  60 * 60 * 1000, 0, 0 },
    { "100_percent", 10000, 0,              1, 0 }
};


static void
cs_plan_defaults(cs_plan_t *plan)
{
    memset(plan, 0, sizeof(cs_plan_t));

    plan->slo.latency_p99_ratio_max = 1.5;
    plan->slo.latency_p99_min_delta_ms = 5;
    plan->slo.error_rate_ratio_max = 2.0;
    plan->slo.error_rate_max = 5;
    plan->slo.availability_min = 99.9;
    plan->slo.min_requests = 50;
    plan->slo.confidence = 0.99;

    plan->interval = 1000;
    plan->violation_for = 5000;
    plan->window = 30000;
    plan->lag = 5000;
    plan->lag_hold = 30000;
    plan->on_violation = CS_ON_VIOLATION_ROLLBACK;
    plan->rollback_step_hold = 60000;
}


int
cs_plan_default(cs_plan_t *plan)
{
    cs_plan_defaults(plan);

    memcpy(plan->stages, cs_plan_default_stages,
           sizeof(cs_plan_default_stages));
    plan->nstages = sizeof(cs_plan_default_stages) / sizeof(cs_stage_t);

    return cs_plan_add_pin(plan, "test-tenant-abc123");
}


int
cs_plan_load(cs_plan_t *plan, const char *path, char *err, size_t errlen)
{
    int     rc;
    long    size;
    FILE   *f;
    char   *text;

    cs_plan_defaults(plan);

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        fclose(f);
        return -1;
    }

    if (size > 1024 * 1024) {
        snprintf(err, errlen, "%s: %ld bytes, a plan is at most 1MB", path,
                 size);
        fclose(f);
        return -1;
    }

    text = malloc((size_t) size + 1);
    if (text == NULL) {
        snprintf(err, errlen, "%s: no memory", path);
        fclose(f);
        return -1;
    }

    if (fread(text, 1, (size_t) size, f) != (size_t) size) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        free(text);
        fclose(f);
        return -1;
    }

    fclose(f);
    text[size] = '\0';

    rc = cs_plan_parse(plan, text, (size_t) size, path, err, errlen);

    free(text);

    return rc;
}


int
cs_plan_parse(cs_plan_t *plan, const char *text, size_t len,
    const char *source, char *err, size_t errlen)
{
    char            a[CS_VALUE_TEXT], b[CS_VALUE_TEXT];
    json_t         *root, *v;
    const char     *s;
    json_error_t    jerr;
    cs_plan_ctx_t   ctx;

    cs_plan_defaults(plan);

    ctx.source = source;
    ctx.err = err;
    ctx.errlen = errlen;

    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

    if (root == NULL) {
        return cs_plan_error(&ctx, "not JSON: line %d, column %d: %s",
                             jerr.line, jerr.column, jerr.text);
    }

    if (!json_is_object(root)) {
        json_decref(root);
        return cs_plan_error(&ctx, "a plan is a JSON object "
                             "{\"stages\": [...], ...}");
    }

    if (cs_plan_known(&ctx, root, "the top level", cs_plan_top_fields)
        != 0)
    {
        goto failed;
    }

    v = json_object_get(root, "stages");

    if (v == NULL) {
        cs_plan_error(&ctx, "\"stages\" is missing: a plan needs at least "
                      "one stage");
        goto failed;
    }

    if (cs_plan_stages(&ctx, plan, v) != 0) {
        goto failed;
    }

    v = json_object_get(root, "slo");

    if (v != NULL && cs_plan_slo(&ctx, &plan->slo, v, "slo") != 0) {
        goto failed;
    }

    if (cs_plan_stage_slos(&ctx, plan, json_object_get(root, "stages"))
        != 0)
    {
        goto failed;
    }

    v = json_object_get(root, "pins");

    if (v != NULL && cs_plan_pins(&ctx, plan, v) != 0) {
        goto failed;
    }

    v = json_object_get(root, "interval");

    if (v != NULL
        && cs_plan_duration(&ctx, v, "interval", 100, 3600 * 1000,
                            &plan->interval, plan->said.interval) != 0)
    {
        goto failed;
    }

    v = json_object_get(root, "violation_for");

    if (v != NULL
        && cs_plan_duration(&ctx, v, "violation_for", 0, 86400 * 1000,
                            &plan->violation_for,
                            plan->said.violation_for) != 0)
    {
        goto failed;
    }

    v = json_object_get(root, "window");

    if (v != NULL) {
        if (cs_plan_duration(&ctx, v, "window", 1000, CS_WINDOW_MAX,
                             &plan->window, plan->said.window) != 0)
        {
            goto failed;
        }

        if (plan->window % 1000) {
            cs_plan_error(&ctx, "window: %s is not whole seconds (1s to "
                          "60s)", plan->said.window);
            goto failed;
        }
    }

    v = json_object_get(root, "lag");

    if (v != NULL
        && cs_plan_duration(&ctx, v, "lag", 100, 3600 * 1000, &plan->lag,
                            plan->said.lag)
           != 0)
    {
        goto failed;
    }

    v = json_object_get(root, "lag_hold");

    if (v != NULL
        && cs_plan_duration(&ctx, v, "lag_hold", 100, 86400 * 1000,
                            &plan->lag_hold, plan->said.lag_hold) != 0)
    {
        goto failed;
    }

    if (plan->lag_hold < plan->lag) {
        cs_plan_error(&ctx, "lag_hold: %s is shorter than lag (%s)",
                      cs_duration_said(plan->said.lag_hold, plan->lag_hold,
                                       a, sizeof(a)),
                      cs_duration_said(plan->said.lag, plan->lag, b,
                                       sizeof(b)));
        goto failed;
    }

    v = json_object_get(root, "notify");

    if (v != NULL && cs_plan_notify(&ctx, plan, v) != 0) {
        goto failed;
    }

    v = json_object_get(root, "on_violation");

    if (v != NULL) {
        s = json_string_value(v);

        if (s != NULL && strcmp(s, "rollback") == 0) {
            plan->on_violation = CS_ON_VIOLATION_ROLLBACK;

        } else if (s != NULL && strcmp(s, "pause") == 0) {
            plan->on_violation = CS_ON_VIOLATION_PAUSE;

        } else {
            cs_plan_error(&ctx, "on_violation: %s is not \"rollback\" or "
                          "\"pause\"", cs_plan_value(v, a, sizeof(a)));
            goto failed;
        }
    }

    /* after violation_for and on_violation: a trigger's defaults */

    v = json_object_get(root, "triggers");

    if (v != NULL && cs_plan_triggers(&ctx, plan, v) != 0) {
        goto failed;
    }

    v = json_object_get(root, "rollback");

    if (v != NULL && cs_plan_rollback(&ctx, plan, v) != 0) {
        goto failed;
    }

    v = json_object_get(root, "release");

    if (v != NULL && cs_plan_release(&ctx, plan, v) != 0) {
        goto failed;
    }

    json_decref(root);

    return 0;

failed:

    json_decref(root);
    cs_plan_free(plan);

    return -1;
}


void
cs_plan_free(cs_plan_t *plan)
{
    size_t               i, k;
    cs_notify_target_t  *t;

    for (i = 0; i < plan->npins; i++) {
        free(plan->pins[i]);
    }

    free(plan->pins);

    plan->pins = NULL;
    plan->npins = 0;

    for (i = 0; i < plan->nnotify; i++) {
        t = &plan->notify[i];

        free(t->url);

        for (k = 0; k < t->nevents; k++) {
            free(t->events[k]);
        }

        free(t->events);

        if (t->secret) {
            memset(t->secret, 0, t->secret_len);
            free(t->secret);
        }
    }

    free(plan->notify);

    plan->notify = NULL;
    plan->nnotify = 0;
}


/*
 * The error echoes values from the plan: a control byte in one (a
 * newline) is escaped (cs_escape), so that the error stays one line of
 * the log and cannot forge another
 */

static int
cs_plan_error(cs_plan_ctx_t *ctx, const char *fmt, ...)
{
    int      n;
    char     msg[1024];
    va_list  args;

    n = snprintf(ctx->err, ctx->errlen, "%s: ", ctx->source);

    if (n < 0 || (size_t) n >= ctx->errlen) {
        return -1;
    }

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    cs_escape(ctx->err + n, ctx->errlen - n, msg);

    return -1;
}


size_t
cs_escape(char *dst, size_t size, const char *src)
{
    size_t                k, n, i;
    const unsigned char  *p;

    k = 0;

    for (p = (const unsigned char *) src; *p && k + 5 <= size; p += n) {
        n = cs_utf8_len(p);

        if (n > 1 && k + n + 1 <= size) {
            /* UTF-8 as it is; no half of a character at a cut */
            memcpy(dst + k, p, n);
            k += n;

        } else if (n > 1) {
            break;

        } else if (*p >= 0x20 && *p < 0x7f) {
            dst[k++] = *p;
            n = 1;

        } else if (*p == '\n' || *p == '\r' || *p == '\t') {
            dst[k++] = '\\';
            dst[k++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
            n = 1;

        } else {
            /*
             * C0, DEL, a byte that is no UTF-8, or each byte of a C1 or
             * bidi control (n is 0 then: its length negated)
             */
            n = n ? 1 : cs_utf8_len_of(p);

            for (i = 0; i < n && k + 5 <= size; i++) {
                k += snprintf(dst + k, size - k, "\\x%02x", p[i]);
            }
        }
    }

    dst[k] = '\0';

    return k;
}


/*
 * The length of the UTF-8 character at p when it is valid and no control
 * a terminal acts on; 0 for a valid C1 (U+0080..U+009F) or bidi control
 * (U+200E, U+200F, U+202A..U+202E, U+2066..U+2069); 1 for an ASCII byte
 * and for a byte that starts no valid character (overlong, surrogate,
 * over U+10FFFF, cut short).
 */

static size_t
cs_utf8_len(const unsigned char *p)
{
    size_t         n, i;
    unsigned char  lo, hi;

    n = cs_utf8_len_of(p);

    if (n == 0) {
        return 1;
    }

    lo = 0x80;
    hi = 0xbf;

    if (p[0] == 0xe0) {
        lo = 0xa0;

    } else if (p[0] == 0xed) {
        hi = 0x9f;

    } else if (p[0] == 0xf0) {
        lo = 0x90;

    } else if (p[0] == 0xf4) {
        hi = 0x8f;
    }

    if (n > 1 && (p[1] < lo || p[1] > hi)) {
        return 1;
    }

    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 1;
        }
    }

    if ((p[0] == 0xc2 && p[1] <= 0x9f)
        || (p[0] == 0xe2 && p[1] == 0x80
            && (p[2] == 0x8e || p[2] == 0x8f
                || (p[2] >= 0xaa && p[2] <= 0xae)))
        || (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9))
    {
        return 0;
    }

    return n;
}


/* the length a lead byte says, 1 for ASCII, 0 for no lead byte */

static size_t
cs_utf8_len_of(const unsigned char *p)
{
    if (p[0] < 0x80) {
        return 1;
    }

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        return 2;
    }

    if (p[0] >= 0xe0 && p[0] <= 0xef) {
        return 3;
    }

    if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        return 4;
    }

    return 0;
}


static int
cs_plan_known(cs_plan_ctx_t *ctx, json_t *obj, const char *where,
    const char **names)
{
    size_t       i;
    json_t      *v;
    const char  *key;

    json_object_foreach(obj, key, v) {

        /* JSON has no comments: a field named "//..." is one */
        if (key[0] == '/' && key[1] == '/') {
            continue;
        }

        for (i = 0; names[i]; i++) {
            if (strcmp(key, names[i]) == 0) {
                break;
            }
        }

        if (names[i] == NULL) {
            return cs_plan_error(ctx, "unknown field \"%.64s\" in %s",
                                 key, where);
        }
    }

    return 0;
}


static int
cs_plan_stages(cs_plan_ctx_t *ctx, cs_plan_t *plan, json_t *stages)
{
    size_t  i, j;

    if (!json_is_array(stages)) {
        return cs_plan_error(ctx, "\"stages\" is not an array of stages");
    }

    if (json_array_size(stages) == 0) {
        return cs_plan_error(ctx, "\"stages\" is empty: a plan needs at "
                             "least one stage");
    }

    if (json_array_size(stages) > CS_STAGES_MAX) {
        return cs_plan_error(ctx, "%zu stages, at most %d",
                             json_array_size(stages), CS_STAGES_MAX);
    }

    for (i = 0; i < json_array_size(stages); i++) {
        if (cs_plan_stage(ctx, plan, i, json_array_get(stages, i)) != 0) {
            return -1;
        }

        plan->nstages++;
    }

    for (i = 1; i < plan->nstages; i++) {
        /* a cohort stage may keep the weight and add or raise cohorts */
        if (plan->stages[i].weight == plan->stages[i - 1].weight
            && cs_plan_cohorts_grow(plan, i))
        {
            goto names;
        }

        if (plan->stages[i].weight <= plan->stages[i - 1].weight) {
            return cs_plan_error(ctx, "stages[%zu].weight %g is not above "
                "stages[%zu].weight %g: weights must increase stage by "
                "stage (at an equal weight, its \"cohorts\" must add or "
                "raise a cohort)", i, plan->stages[i].weight / 100.0, i - 1,
                plan->stages[i - 1].weight / 100.0);
        }

    names:

        for (j = 0; j < i; j++) {
            if (strcmp(plan->stages[i].name, plan->stages[j].name) == 0) {
                return cs_plan_error(ctx, "stages[%zu].name \"%s\" is "
                                     "already the name of stages[%zu]",
                                     i, plan->stages[i].name, j);
            }
        }
    }

    if (plan->stages[0].manual) {
        return cs_plan_error(ctx, "stages[0].manual: the first stage starts "
                             "the rollout and cannot wait for a resume");
    }

    return 0;
}


static int
cs_plan_stage(cs_plan_ctx_t *ctx, cs_plan_t *plan, size_t i, json_t *st)
{
    char         where[64];
    size_t       k, len;
    double       w;
    json_t      *v;
    const char  *name;
    cs_stage_t  *stage;

    stage = &plan->stages[i];

    if (!json_is_object(st)) {
        return cs_plan_error(ctx, "stages[%zu] is not an object "
                             "{\"name\", \"weight\", \"hold\"}", i);
    }

    snprintf(where, sizeof(where), "stages[%zu]", i);

    if (cs_plan_known(ctx, st, where, cs_plan_stage_fields) != 0) {
        return -1;
    }

    v = json_object_get(st, "name");
    name = json_string_value(v);

    if (name == NULL) {
        return cs_plan_error(ctx, "stages[%zu].name is %s: a string",
                             i, v ? "not a string" : "missing");
    }

    len = strlen(name);

    if (len == 0 || len > CS_STAGE_NAME_MAX) {
        return cs_plan_error(ctx, "stages[%zu].name: 1 to %d characters",
                             i, CS_STAGE_NAME_MAX);
    }

    for (k = 0; k < len; k++) {
        if (!((name[k] >= 'a' && name[k] <= 'z')
              || (name[k] >= 'A' && name[k] <= 'Z')
              || (name[k] >= '0' && name[k] <= '9')
              || name[k] == '_' || name[k] == '-' || name[k] == '.'))
        {
            return cs_plan_error(ctx, "stages[%zu].name \"%.64s\": letters, "
                                 "digits, \"_\", \"-\" and \".\" only",
                                 i, name);
        }
    }

    memcpy(stage->name, name, len + 1);

    v = json_object_get(st, "weight");

    if (v == NULL) {
        return cs_plan_error(ctx, "stages[%zu].weight is missing", i);
    }

    if (!json_is_number(v)) {
        return cs_plan_error(ctx, "stages[%zu].weight is not a number "
                             "(a percent, 0 to 100)", i);
    }

    w = json_number_value(v);

    if (!(w >= 0 && w <= 100)) {
        return cs_plan_error(ctx, "stages[%zu].weight: %g is not a percent "
                             "0 to 100", i, w);
    }

    if (fabs(w * 100 - round(w * 100)) > 1e-6) {
        return cs_plan_error(ctx, "stages[%zu].weight: %g has more than "
                             "two decimals", i, w);
    }

    stage->weight = (uint32_t) round(w * 100);

    v = json_object_get(st, "hold");

    if (v == NULL) {
        return cs_plan_error(ctx, "stages[%zu].hold is missing (e.g. "
                             "\"30m\"; \"0s\" for none)", i);
    }

    snprintf(where, sizeof(where), "stages[%zu].hold", i);

    if (cs_plan_duration(ctx, v, where, 0, CS_DURATION_MAX, &stage->hold,
                         plan->said.hold[i])
        != 0)
    {
        return -1;
    }

    v = json_object_get(st, "manual");

    if (v != NULL) {
        if (!json_is_boolean(v)) {
            return cs_plan_error(ctx, "stages[%zu].manual is not true or "
                                 "false", i);
        }

        stage->manual = json_is_true(v);
    }

    if (cs_plan_cohorts(ctx, plan, i, json_object_get(st, "cohorts")) != 0)
    {
        return -1;
    }

    /* the module's shadow PERCENT: as weight */

    v = json_object_get(st, "shadow");

    if (v != NULL) {
        if (!json_is_number(v)) {
            return cs_plan_error(ctx, "stages[%zu].shadow is not a number "
                                 "(a percent of stable's requests "
                                 "mirrored to the canary, 0 to 100)", i);
        }

        w = json_number_value(v);

        if (!(w >= 0 && w <= 100)) {
            return cs_plan_error(ctx, "stages[%zu].shadow: %g is not a "
                                 "percent 0 to 100", i, w);
        }

        if (fabs(w * 100 - round(w * 100)) > 1e-6) {
            return cs_plan_error(ctx, "stages[%zu].shadow: %g has more "
                                 "than two decimals", i, w);
        }

        stage->shadow = (uint32_t) round(w * 100);
        plan->shadow = 1;
    }

    return 0;
}


static int
cs_plan_slo(cs_plan_ctx_t *ctx, cs_slo_t *s, json_t *slo, const char *where)
{
    char     f[96];
    double   d;
    json_t  *v;

    d = 0;

    if (!json_is_object(slo)) {
        return cs_plan_error(ctx, "\"%s\" is not an object", where);
    }

    if (cs_plan_known(ctx, slo, where, cs_plan_slo_fields) != 0) {
        return -1;
    }

    v = json_object_get(slo, "latency_p99_ratio_max");
    snprintf(f, sizeof(f), "%s.latency_p99_ratio_max", where);
    if (v && cs_plan_number(ctx, v, f, 0, 1000, 1,
                            &s->latency_p99_ratio_max) != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "latency_p99_min_delta_ms");
    snprintf(f, sizeof(f), "%s.latency_p99_min_delta_ms", where);
    if (v && cs_plan_number(ctx, v, f, 0, 3600000, 0,
                            &s->latency_p99_min_delta_ms) != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "error_rate_ratio_max");
    snprintf(f, sizeof(f), "%s.error_rate_ratio_max", where);
    if (v && cs_plan_number(ctx, v, f, 0, 1000, 1,
                            &s->error_rate_ratio_max) != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "error_rate_max");
    snprintf(f, sizeof(f), "%s.error_rate_max (percent)", where);
    if (v && cs_plan_number(ctx, v, f, 0, 100, 1, &s->error_rate_max) != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "availability_min");
    snprintf(f, sizeof(f), "%s.availability_min (percent)", where);
    if (v && cs_plan_number(ctx, v, f, 0, 100, 0, &s->availability_min)
             != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "confidence");
    snprintf(f, sizeof(f), "%s.confidence", where);
    if (v) {
        if (cs_plan_number(ctx, v, f, 0.5, 0.999999, 1, &s->confidence)
            != 0)
        {
            return -1;
        }
    }

    v = json_object_get(slo, "min_requests");
    snprintf(f, sizeof(f), "%s.min_requests", where);
    if (v) {
        if (cs_plan_number(ctx, v, f, 1, 1e12, 0, &d) != 0) {
            return -1;
        }

        if (!json_is_integer(v)) {
            return cs_plan_error(ctx, "%s: a whole number of requests", f);
        }

        s->min_requests = (uint64_t) d;
    }

    /* absolute limits (ms, above 0; absent: off) */

    v = json_object_get(slo, "latency_p50_max_ms");
    snprintf(f, sizeof(f), "%s.latency_p50_max_ms", where);
    if (v && cs_plan_number(ctx, v, f, 0, CS_LATENCY_LIMIT_MAX_MS, 1,
                            &s->latency_p50_max_ms) != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "latency_p95_max_ms");
    snprintf(f, sizeof(f), "%s.latency_p95_max_ms", where);
    if (v && cs_plan_number(ctx, v, f, 0, CS_LATENCY_LIMIT_MAX_MS, 1,
                            &s->latency_p95_max_ms) != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "latency_p99_max_ms");
    snprintf(f, sizeof(f), "%s.latency_p99_max_ms", where);
    if (v && cs_plan_number(ctx, v, f, 0, CS_LATENCY_LIMIT_MAX_MS, 1,
                            &s->latency_p99_max_ms) != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "latency_p95_ratio_max");
    snprintf(f, sizeof(f), "%s.latency_p95_ratio_max", where);
    if (v && cs_plan_number(ctx, v, f, 0, 1000, 1,
                            &s->latency_p95_ratio_max) != 0)
    {
        return -1;
    }

    /* a shadow stage's match rate (percent) and comparisons */

    v = json_object_get(slo, "shadow_match_min");
    snprintf(f, sizeof(f), "%s.shadow_match_min (percent)", where);
    if (v && cs_plan_number(ctx, v, f, 0, 100, 1, &s->shadow_match_min)
             != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "shadow_min_compared");
    snprintf(f, sizeof(f), "%s.shadow_min_compared", where);
    if (v) {
        if (cs_plan_number(ctx, v, f, 1, 1e12, 0, &d) != 0) {
            return -1;
        }

        if (!json_is_integer(v)) {
            return cs_plan_error(ctx, "%s: a whole number of comparisons",
                                 f);
        }

        s->shadow_min_compared = (uint64_t) d;
    }

    return 0;
}


/* a stage's "slo" over the plan's, once the plan's is read */

static int
cs_plan_stage_slos(cs_plan_ctx_t *ctx, cs_plan_t *plan, json_t *stages)
{
    char     where[64];
    size_t   i;
    json_t  *v;

    for (i = 0; i < plan->nstages; i++) {
        v = json_object_get(json_array_get(stages, i), "slo");

        if (v == NULL) {
            continue;
        }

        snprintf(where, sizeof(where), "stages[%zu].slo", i);

        plan->stage_slo[i] = plan->slo;
        plan->stage_has_slo[i] = 1;

        if (cs_plan_slo(ctx, &plan->stage_slo[i], v, where) != 0) {
            return -1;
        }

        /* a match rate where nothing is mirrored could never be met */
        if (plan->stages[i].shadow == 0
            && (json_object_get(v, "shadow_match_min") != NULL
                || json_object_get(v, "shadow_min_compared") != NULL))
        {
            return cs_plan_error(ctx, "stages[%zu].slo.%s: stages[%zu] "
                                 "mirrors nothing (no \"shadow\" above 0): "
                                 "there is no match rate to judge", i,
                                 json_object_get(v, "shadow_match_min")
                                 ? "shadow_match_min"
                                 : "shadow_min_compared", i);
        }
    }

    if (plan->slo.shadow_match_min > 0 && !plan->shadow) {
        return cs_plan_error(ctx, "slo.shadow_match_min: no stage says "
                             "\"shadow\": there is no match rate to "
                             "judge");
    }

    /* the plan's shadow_match_min judges the stages that mirror only */
    for (i = 0; i < plan->nstages; i++) {
        if (plan->stages[i].shadow == 0 && plan->slo.shadow_match_min > 0) {
            if (!plan->stage_has_slo[i]) {
                plan->stage_slo[i] = plan->slo;
                plan->stage_has_slo[i] = 1;
            }

            plan->stage_slo[i].shadow_match_min = 0;
        }
    }

    /* at weight 100 stable serves nothing to mirror: never promoted */
    for (i = 0; i < plan->nstages; i++) {
        if (plan->stages[i].weight == 10000 && plan->stages[i].shadow > 0
            && cs_plan_stage_slo(plan, i)->shadow_match_min > 0)
        {
            v = json_object_get(json_array_get(stages, i), "slo");

            if (json_object_get(v, "shadow_match_min") != NULL) {
                snprintf(where, sizeof(where), "stages[%zu].", i);

            } else {
                where[0] = '\0';
            }

            return cs_plan_error(ctx, "%sslo.shadow_match_min: stages[%zu] "
                                 "has weight 100: stable serves nothing to "
                                 "mirror, its match rate could never be "
                                 "met", where, i);
        }
    }

    return 0;
}


/*
 * "triggers": {"error_rate": {"act": "instant"},
 *              "latency_p95": {"act": "grace", "for": "5m",
 *                              "then": "pause"}}
 */

static int
cs_plan_triggers(cs_plan_ctx_t *ctx, cs_plan_t *plan, json_t *triggers)
{
    char           where[64], val[CS_VALUE_TEXT];
    size_t         i;
    json_t        *t, *v;
    const char    *key, *s;
    cs_trigger_t  *tr;

    if (!json_is_object(triggers)) {
        return cs_plan_error(ctx, "\"triggers\" is not an object "
                             "{\"CHECK\": {\"act\": ...}, ...}");
    }

    json_object_foreach(triggers, key, t) {

        if (key[0] == '/' && key[1] == '/') {
            continue;
        }

        for (i = 0; cs_plan_trigger_names[i]; i++) {
            if (strcmp(key, cs_plan_trigger_names[i]) == 0) {
                break;
            }
        }

        if (cs_plan_trigger_names[i] == NULL) {
            return cs_plan_error(ctx, "triggers: unknown check \"%.64s\" "
                                 "(error_rate, availability, latency_p99, "
                                 "latency_p95, latency_p50)", key);
        }

        snprintf(where, sizeof(where), "triggers.%s", key);

        if (!json_is_object(t)) {
            return cs_plan_error(ctx, "%s is not an object {\"act\": "
                                 "\"instant\" or \"grace\", ...}", where);
        }

        if (cs_plan_known(ctx, t, where, cs_plan_trigger_fields) != 0) {
            return -1;
        }

        tr = &plan->triggers[i];
        tr->set = 1;
        tr->wait = plan->violation_for;
        tr->then = plan->on_violation;

        v = json_object_get(t, "act");
        s = json_string_value(v);

        if (s != NULL && strcmp(s, "instant") == 0) {
            tr->instant = 1;

        } else if (s != NULL && strcmp(s, "grace") == 0) {
            tr->instant = 0;

        } else {
            return cs_plan_error(ctx, "%s.act: %s is not \"instant\" or "
                                 "\"grace\"", where,
                                 cs_plan_value(v, val, sizeof(val)));
        }

        v = json_object_get(t, "for");

        if (v != NULL) {
            if (tr->instant) {
                return cs_plan_error(ctx, "%s.for: an instant trigger acts "
                                     "at once; \"for\" is grace's", where);
            }

            snprintf(where, sizeof(where), "triggers.%s.for", key);

            if (cs_plan_duration(ctx, v, where, 0, 86400 * 1000, &tr->wait,
                                 plan->said.trigger_wait[i])
                != 0)
            {
                return -1;
            }

            snprintf(where, sizeof(where), "triggers.%s", key);
        }

        v = json_object_get(t, "then");

        if (v != NULL) {
            s = json_string_value(v);

            if (s != NULL && strcmp(s, "rollback") == 0) {
                tr->then = CS_ON_VIOLATION_ROLLBACK;

            } else if (s != NULL && strcmp(s, "pause") == 0) {
                tr->then = CS_ON_VIOLATION_PAUSE;

            } else {
                return cs_plan_error(ctx, "%s.then: %s is not \"rollback\" "
                                     "or \"pause\"", where,
                                     cs_plan_value(v, val, sizeof(val)));
            }
        }
    }

    return 0;
}


/* "rollback": {"steps": [20, 5, 0], "step_hold": "1m"} */

static int
cs_plan_rollback(cs_plan_ctx_t *ctx, cs_plan_t *plan, json_t *rollback)
{
    char     where[64];
    size_t   i, n;
    double   w;
    json_t  *steps, *v;

    if (!json_is_object(rollback)) {
        return cs_plan_error(ctx, "\"rollback\" is not an object "
                             "{\"steps\": [20, 5, 0], \"step_hold\": "
                             "\"1m\"}");
    }

    if (cs_plan_known(ctx, rollback, "rollback", cs_plan_rollback_fields)
        != 0)
    {
        return -1;
    }

    steps = json_object_get(rollback, "steps");

    if (steps == NULL || !json_is_array(steps)) {
        return cs_plan_error(ctx, "rollback.steps is %s: an array of "
                             "weights down to 0, e.g. [20, 5, 0]",
                             steps ? "not an array" : "missing");
    }

    n = json_array_size(steps);

    if (n == 0 || n > CS_ROLLBACK_STEPS_MAX) {
        return cs_plan_error(ctx, "rollback.steps: 1 to %d weights, %zu "
                             "given", CS_ROLLBACK_STEPS_MAX, n);
    }

    for (i = 0; i < n; i++) {
        v = json_array_get(steps, i);

        if (!json_is_number(v)) {
            return cs_plan_error(ctx, "rollback.steps[%zu] is not a number "
                                 "(a percent, 0 to 100)", i);
        }

        w = json_number_value(v);

        if (!(w >= 0 && w <= 100)) {
            return cs_plan_error(ctx, "rollback.steps[%zu]: %g is not a "
                                 "percent 0 to 100", i, w);
        }

        if (fabs(w * 100 - round(w * 100)) > 1e-6) {
            return cs_plan_error(ctx, "rollback.steps[%zu]: %g has more "
                                 "than two decimals", i, w);
        }

        plan->rollback_steps[i] = (uint32_t) round(w * 100);

        if (i > 0
            && plan->rollback_steps[i] >= plan->rollback_steps[i - 1])
        {
            return cs_plan_error(ctx, "rollback.steps[%zu] %g is not below "
                                 "rollback.steps[%zu] %g: a rollback walks "
                                 "down", i, w, i - 1,
                                 plan->rollback_steps[i - 1] / 100.0);
        }
    }

    if (plan->rollback_steps[n - 1] != 0) {
        return cs_plan_error(ctx, "rollback.steps[%zu]: %g; the last step "
                             "is 0 (everyone on stable)", n - 1,
                             plan->rollback_steps[n - 1] / 100.0);
    }

    plan->rollback_nsteps = n;

    v = json_object_get(rollback, "step_hold");

    if (v != NULL) {
        snprintf(where, sizeof(where), "rollback.step_hold");

        if (cs_plan_duration(ctx, v, where, 0, 86400 * 1000,
                             &plan->rollback_step_hold,
                             plan->said.rollback_step_hold) != 0)
        {
            return -1;
        }
    }

    return 0;
}


const cs_slo_t *
cs_plan_stage_slo(const cs_plan_t *plan, size_t stage)
{
    if (stage < plan->nstages && plan->stage_has_slo[stage]) {
        return &plan->stage_slo[stage];
    }

    return &plan->slo;
}


const char *
cs_trigger_name(size_t trigger)
{
    return cs_plan_trigger_names[trigger];
}


static int
cs_plan_pins(cs_plan_ctx_t *ctx, cs_plan_t *plan, json_t *pins)
{
    size_t       i, len;
    const char  *pin;

    if (!json_is_array(pins)) {
        return cs_plan_error(ctx, "\"pins\" is not an array of tenant keys");
    }

    if (json_array_size(pins) > CS_PINS_MAX) {
        return cs_plan_error(ctx, "%zu pins, at most %d",
                             json_array_size(pins), CS_PINS_MAX);
    }

    for (i = 0; i < json_array_size(pins); i++) {
        pin = json_string_value(json_array_get(pins, i));

        if (pin == NULL) {
            return cs_plan_error(ctx, "pins[%zu] is not a string", i);
        }

        len = json_string_length(json_array_get(pins, i));

        if (len == 0 || len > CS_PIN_MAX || strlen(pin) != len) {
            return cs_plan_error(ctx, "pins[%zu]: a tenant key of 1 to %d "
                                 "bytes", i, CS_PIN_MAX);
        }

        if (cs_plan_add_pin(plan, pin) != 0) {
            return cs_plan_error(ctx, "no memory");
        }
    }

    return 0;
}


/* said: CS_DURATION_TEXT bytes, the duration as the plan wrote it */

static int
cs_plan_duration(cs_plan_ctx_t *ctx, json_t *v, const char *where,
    int64_t min, int64_t max, int64_t *ms, char *said)
{
    double       d;
    char         val[CS_DURATION_TEXT], lo[32], hi[32];
    const char  *s;

    if (json_is_string(v)) {
        s = json_string_value(v);

        if (cs_duration_parse(s, ms) != 0) {
            return cs_plan_error(ctx, "%s: \"%.64s\" is not a duration "
                                 "(500ms, 30s, 30m, 1h, 1h30m or a number "
                                 "of seconds)", where, s);
        }

        if (strlen(s) < sizeof(val)) {
            snprintf(val, sizeof(val), "%s", s);

        } else {
            cs_duration_format(*ms, val, sizeof(val));
        }

    } else if (json_is_number(v)) {
        d = json_number_value(v);

        if (!(d >= 0 && d <= (double) CS_DURATION_MAX / 1000)) {
            return cs_plan_error(ctx, "%s: %.15g is not a duration in "
                                 "seconds", where, d);
        }

        *ms = (int64_t) llround(d * 1000);

        /* a number of seconds: 90 is said 90s, 1209600 1209600s */
        snprintf(val, sizeof(val), "%.15gs", d);

    } else {
        return cs_plan_error(ctx, "%s is not a duration (\"30s\", \"30m\" "
                             "or a number of seconds)", where);
    }

    if (*ms < min || *ms > max) {
        cs_duration_format(min, lo, sizeof(lo));
        cs_duration_format(max, hi, sizeof(hi));

        if (max <= 60000 && max % 1000 == 0) {
            /* the window's 60s, not 1m */
            snprintf(hi, sizeof(hi), "%llds", (long long) max / 1000);
        }

        return cs_plan_error(ctx, "%s: %s is out of range %s to %s", where,
                             val, lo, hi);
    }

    memcpy(said, val, sizeof(val));

    return 0;
}


static int
cs_plan_number(cs_plan_ctx_t *ctx, json_t *v, const char *where,
    double min, double max, int min_open, double *out)
{
    double  d;

    if (!json_is_number(v)) {
        return cs_plan_error(ctx, "%s is not a number", where);
    }

    d = json_number_value(v);

    if (!(d <= max && (min_open ? d > min : d >= min))) {
        return cs_plan_error(ctx, "%s: %.15g is out of range %s%g to %g",
                             where, d, min_open ? "above " : "", min, max);
    }

    *out = d;

    return 0;
}


/*
 * "release": {"stable": "v1.2.2", "canary": "v1.2.3"}: both names,
 * printable ASCII, as every receipt and log line carries them
 */

static int
cs_plan_release(cs_plan_ctx_t *ctx, cs_plan_t *plan, json_t *release)
{
    size_t       i, k, len;
    char        *dst;
    json_t      *v;
    const char  *name, *s;

    if (!json_is_object(release)) {
        return cs_plan_error(ctx, "\"release\" is not an object "
                             "{\"stable\": \"v1.2.2\", \"canary\": "
                             "\"v1.2.3\"}");
    }

    if (cs_plan_known(ctx, release, "release", cs_plan_release_fields)
        != 0)
    {
        return -1;
    }

    for (i = 0; cs_plan_release_fields[i]; i++) {
        name = cs_plan_release_fields[i];
        dst = i == 0 ? plan->release_stable : plan->release_canary;

        v = json_object_get(release, name);
        s = json_string_value(v);

        if (s == NULL) {
            return cs_plan_error(ctx, "release.%s is %s: the version's "
                                 "name, a string", name,
                                 v ? "not a string" : "missing");
        }

        len = json_string_length(v);

        if (len == 0 || len > CS_RELEASE_MAX) {
            return cs_plan_error(ctx, "release.%s: \"%.64s\" is not 1 to "
                                 "%d characters", name, s, CS_RELEASE_MAX);
        }

        for (k = 0; k < len; k++) {
            if (s[k] < 0x20 || s[k] >= 0x7f) {
                return cs_plan_error(ctx, "release.%s: byte %zu of \"%.64s\" "
                                     "is not printable ASCII", name, k + 1,
                                     s);
            }
        }

        memcpy(dst, s, len + 1);
    }

    return 0;
}


static int
cs_plan_add_pin(cs_plan_t *plan, const char *pin)
{
    char  **pins;

    pins = realloc(plan->pins, (plan->npins + 1) * sizeof(char *));
    if (pins == NULL) {
        return -1;
    }

    plan->pins = pins;

    pins[plan->npins] = strdup(pin);
    if (pins[plan->npins] == NULL) {
        return -1;
    }

    plan->npins++;

    return 0;
}


/* "notify": [{"url", "format", "events", "secret_file"}, ...] */

static int
cs_plan_notify(cs_plan_ctx_t *ctx, cs_plan_t *plan, json_t *notify)
{
    size_t  i, n;

    if (!json_is_array(notify)) {
        return cs_plan_error(ctx, "\"notify\" is not an array of "
                             "{\"url\": ..., \"format\": ...}");
    }

    n = json_array_size(notify);

    if (n > CS_NOTIFY_TARGETS_MAX) {
        return cs_plan_error(ctx, "notify: %zu receivers, at most %d", n,
                             CS_NOTIFY_TARGETS_MAX);
    }

    if (n == 0) {
        return 0;
    }

    plan->notify = calloc(n, sizeof(cs_notify_target_t));
    if (plan->notify == NULL) {
        return cs_plan_error(ctx, "no memory");
    }

    for (i = 0; i < n; i++) {
        plan->nnotify++;

        if (cs_plan_notify_target(ctx, &plan->notify[i], i,
                                  json_array_get(notify, i))
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


static int
cs_plan_notify_target(cs_plan_ctx_t *ctx, cs_notify_target_t *t, size_t i,
    json_t *o)
{
    char         where[64], val[CS_VALUE_TEXT];
    size_t       k, j;
    json_t      *v, *ev;
    const char  *s;

    if (!json_is_object(o)) {
        return cs_plan_error(ctx, "notify[%zu] is not an object "
                             "{\"url\", \"format\", \"events\", "
                             "\"secret_file\"}", i);
    }

    snprintf(where, sizeof(where), "notify[%zu]", i);

    if (cs_plan_known(ctx, o, where, cs_plan_notify_fields) != 0) {
        return -1;
    }

    v = json_object_get(o, "url");
    s = json_string_value(v);

    if (s == NULL) {
        return cs_plan_error(ctx, "notify[%zu].url is %s: an http:// or "
                             "https:// URL", i,
                             v ? "not a string" : "missing");
    }

    if (cs_plan_notify_url(ctx, i, s, json_string_length(v)) != 0) {
        return -1;
    }

    t->url = strdup(s);
    if (t->url == NULL) {
        return cs_plan_error(ctx, "no memory");
    }

    v = json_object_get(o, "format");

    if (v != NULL) {
        s = json_string_value(v);

        if (s != NULL && strcmp(s, "json") == 0) {
            t->format = CS_NOTIFY_JSON;

        } else if (s != NULL && strcmp(s, "slack") == 0) {
            t->format = CS_NOTIFY_SLACK;

        } else {
            return cs_plan_error(ctx, "notify[%zu].format: %s is not "
                                 "\"json\" or \"slack\"", i,
                                 cs_plan_value(v, val, sizeof(val)));
        }
    }

    v = json_object_get(o, "events");

    if (v != NULL) {
        if (!json_is_array(v) || json_array_size(v) == 0) {
            return cs_plan_error(ctx, "notify[%zu].events is not a list of "
                                 "receipt operations (leave it out for "
                                 "all of them)", i);
        }

        t->events = calloc(json_array_size(v), sizeof(char *));
        if (t->events == NULL) {
            return cs_plan_error(ctx, "no memory");
        }

        json_array_foreach(v, k, ev) {
            s = json_string_value(ev);

            if (s == NULL) {
                return cs_plan_error(ctx, "notify[%zu].events[%zu] is not "
                                     "a string", i, k);
            }

            for (j = 0; cs_plan_notify_events[j]; j++) {
                if (strcmp(s, cs_plan_notify_events[j]) == 0) {
                    break;
                }
            }

            if (cs_plan_notify_events[j] == NULL) {
                for (j = 0; cs_plan_other_events[j]; j += 2) {
                    if (strcmp(s, cs_plan_other_events[j]) == 0) {
                        return cs_plan_error(ctx, "notify[%zu].events[%zu]: "
                            "\"%s\" is written by %s, not by "
                            "canary-sidecar, which notifies the receipts "
                            "it writes", i, k, s,
                            cs_plan_other_events[j + 1]);
                    }
                }

                return cs_plan_error(ctx, "notify[%zu].events[%zu]: "
                    "unknown operation \"%.64s\" (rollout_started, "
                    "canary_phase_complete, traffic_promoted, "
                    "awaiting_resume, deployment_complete, "
                    "sli_violation_detected, rollback_executed, "
                    "rollout_paused, rollout_halted, halt_cleared, "
                    "rollback_step)",
                    i, k, s);
            }

            t->events[k] = strdup(s);
            if (t->events[k] == NULL) {
                return cs_plan_error(ctx, "no memory");
            }

            t->nevents++;
        }
    }

    v = json_object_get(o, "secret_file");

    if (v != NULL) {
        s = json_string_value(v);

        if (s == NULL || *s == '\0') {
            return cs_plan_error(ctx, "notify[%zu].secret_file is not a "
                                 "file name", i);
        }

        if (cs_plan_notify_secret(ctx, t, i, s) != 0) {
            return -1;
        }
    }

    return 0;
}


/*
 * An http:// or https:// URL that libcurl parses, with a host.  A bad
 * one is named by its scheme and host only: its user:password@ and its
 * path (a Slack webhook's path is its secret) go nowhere, not even into
 * the plan error.
 */

static int
cs_plan_notify_url(cs_plan_ctx_t *ctx, size_t i, const char *s, size_t len)
{
    char        *host, shown[160];
    size_t       o, k, at;
    CURLU       *u;
    CURLUcode    rc;
    const char  *p;

    p = strstr(s, "://");
    o = p ? (size_t) (p + 3 - s) : 0;
    k = o + strcspn(s + o, "/?#");

    for (at = k; at > o && s[at - 1] != '@'; at--) { /* void */ }

    snprintf(shown, sizeof(shown), "%.*s%.*s%s", (int) (o < 16 ? o : 16), s,
             (int) (k - at < 128 ? k - at : 128), s + at,
             k < len ? "/..." : "");

    if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) {
        return cs_plan_error(ctx, "notify[%zu].url \"%s\": not an http:// "
                             "or https:// URL", i, shown);
    }

    if (len > CS_NOTIFY_URL_MAX) {
        return cs_plan_error(ctx, "notify[%zu].url \"%s\": %zu bytes, at "
                             "most %d", i, shown, len, CS_NOTIFY_URL_MAX);
    }

    for (k = 0; k < len; k++) {
        if ((unsigned char) s[k] <= 0x20 || s[k] == 0x7f) {
            return cs_plan_error(ctx, "notify[%zu].url \"%s\": a space or "
                                 "a control character at byte %zu (URLs "
                                 "are written without spaces: %%20)", i,
                                 shown, k);
        }
    }

    u = curl_url();
    if (u == NULL) {
        return cs_plan_error(ctx, "no memory");
    }

    host = NULL;
    rc = curl_url_set(u, CURLUPART_URL, s, 0);

    if (rc == CURLUE_OK) {
        rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    }

    curl_url_cleanup(u);

    if (rc != CURLUE_OK || host == NULL || host[0] == '\0') {
        curl_free(host);
        return cs_plan_error(ctx, "notify[%zu].url \"%s\": %s (an http:// "
                             "or https:// URL with a host)", i, shown,
                             rc != CURLUE_OK ? curl_url_strerror(rc)
                                             : "no host");
    }

    curl_free(host);

    return 0;
}


/* the whole file is the secret, but for a final line break */

static int
cs_plan_notify_secret(cs_plan_ctx_t *ctx, cs_notify_target_t *t, size_t i,
    const char *path)
{
    int          fd;
    ssize_t      n;
    struct stat  st;

    /* not blocked by a FIFO, nor a device */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd == -1) {
        return cs_plan_error(ctx, "notify[%zu].secret_file %s: %s", i, path,
                             strerror(errno));
    }

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cs_plan_error(ctx, "notify[%zu].secret_file %s: not a "
                             "regular file", i, path);
    }

    if (st.st_size > CS_NOTIFY_SECRET_MAX) {
        close(fd);
        return cs_plan_error(ctx, "notify[%zu].secret_file %s: over %d "
                             "bytes", i, path, CS_NOTIFY_SECRET_MAX);
    }

    t->secret = malloc(CS_NOTIFY_SECRET_MAX + 1);
    if (t->secret == NULL) {
        close(fd);
        return cs_plan_error(ctx, "no memory");
    }

    n = read(fd, t->secret, CS_NOTIFY_SECRET_MAX + 1);

    close(fd);

    if (n < 0) {
        return cs_plan_error(ctx, "notify[%zu].secret_file %s: %s", i, path,
                             strerror(errno));
    }

    t->secret_len = (size_t) n;         /* wiped by cs_plan_free() */

    if (n > CS_NOTIFY_SECRET_MAX) {
        return cs_plan_error(ctx, "notify[%zu].secret_file %s: over %d "
                             "bytes", i, path, CS_NOTIFY_SECRET_MAX);
    }

    if (n && t->secret[n - 1] == '\n') {
        n--;

        if (n && t->secret[n - 1] == '\r') {
            n--;
        }
    }

    if (n == 0) {
        return cs_plan_error(ctx, "notify[%zu].secret_file %s: empty", i,
                             path);
    }

    t->secret_len = (size_t) n;

    return 0;
}


int
cs_duration_parse(const char *s, int64_t *ms)
{
    int          unit, last, groups;
    int64_t      n, total, mul;
    const char  *p;

    /* units from the largest: d h m s ms; each at most once, in order */
    static const int64_t  muls[] = {
        86400 * 1000LL, 3600 * 1000LL, 60 * 1000LL, 1000LL, 1LL
    };

    p = s;
    total = 0;
    last = -1;
    groups = 0;

    while (*p) {
        if (*p == ' ' && groups) {
            p++;
            continue;
        }

        if (*p < '0' || *p > '9') {
            return -1;
        }

        n = 0;

        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (*p++ - '0');

            if (n > CS_DURATION_MAX) {
                return -1;
            }
        }

        switch (*p) {
        case 'd':
            unit = 0;
            p++;
            break;
        case 'h':
            unit = 1;
            p++;
            break;
        case 'm':
            if (p[1] == 's') {
                unit = 4;
                p += 2;

            } else {
                unit = 2;
                p++;
            }
            break;
        case 's':
            unit = 3;
            p++;
            break;
        case '\0':
        case ' ':
            unit = 3;       /* a bare number: seconds */
            break;
        default:
            return -1;
        }

        if (unit <= last) {
            return -1;
        }

        last = unit;
        mul = muls[unit];
        total += n * mul;
        groups++;

        if (total > CS_DURATION_MAX) {
            return -1;
        }
    }

    if (groups == 0) {
        return -1;
    }

    *ms = total;

    return 0;
}


char *
cs_duration_format(int64_t ms, char *buf, size_t size)
{
    int      n;
    int64_t  h, m, s;

    if (ms < 0) {
        ms = 0;
    }

    if (ms == 0) {
        snprintf(buf, size, "0s");
        return buf;
    }

    if (ms < 1000) {
        snprintf(buf, size, "%lldms", (long long) ms);
        return buf;
    }

    /* a tenth under 10s when there is one: "3s", "3.4s", never "3.0s" */

    if (ms < 10000 && ms % 1000 >= 100) {
        snprintf(buf, size, "%lld.%llds", (long long) (ms / 1000),
                 (long long) (ms % 1000 / 100));
        return buf;
    }

    h = ms / 3600000;
    m = ms / 60000 % 60;
    s = ms / 1000 % 60;

    n = 0;
    buf[0] = '\0';

    if (h) {
        n += snprintf(buf + n, size - n, "%lldh", (long long) h);
    }

    if (m && (size_t) n < size) {
        n += snprintf(buf + n, size - n, "%lldm", (long long) m);
    }

    if (s && (size_t) n < size) {
        snprintf(buf + n, size - n, "%llds", (long long) s);
    }

    return buf;
}


/*
 * A bad value as the plan wrote it, for its error: "rolback", 3, a list;
 * buf: CS_VALUE_TEXT bytes
 */

static char *
cs_plan_value(json_t *v, char *buf, size_t size)
{
    if (v == NULL) {
        snprintf(buf, size, "missing");

    } else if (json_is_string(v)) {
        snprintf(buf, size, "\"%.60s%s\"", json_string_value(v),
                 strlen(json_string_value(v)) > 60 ? "..." : "");

    } else if (json_is_number(v)) {
        snprintf(buf, size, "%.15g", json_number_value(v));

    } else if (json_is_boolean(v)) {
        snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");

    } else if (json_is_null(v)) {
        snprintf(buf, size, "null");

    } else {
        snprintf(buf, size, "%s", json_is_array(v) ? "a list" : "an object");
    }

    return buf;
}


const char *
cs_duration_said(const char *said, int64_t ms, char *buf, size_t size)
{
    if (said != NULL && said[0]) {
        return said;
    }

    return cs_duration_format(ms, buf, size);
}


/* one weight syntax for the module, canary-ctl and the sidecar */

char *
cs_weight_format(uint32_t weight, char *buf, size_t size)
{
    size_t         n;
    unsigned char  tmp[NGX_HTTP_CANARY_WEIGHT_LEN];

    n = ngx_http_canary_format_weight(tmp, weight);

    snprintf(buf, size, "%.*s", (int) n, tmp);

    return buf;
}


int64_t
cs_weight_parse(const char *s, size_t len)
{
    return ngx_http_canary_parse_weight((const unsigned char *) s, len);
}


/*
 * stages[i].cohorts: {"NAME": PERCENT, ...}, the full map of cohort
 * weights from this stage on; missing, the map of the stage before.
 * Stages are parsed in order: stages[i - 1]'s map is complete.
 */

static int
cs_plan_cohorts(cs_plan_ctx_t *ctx, cs_plan_t *plan, size_t i, json_t *map)
{
    double              w;
    size_t              k;
    json_t             *v;
    const char         *name;
    cs_cohort_t        *c;
    cs_cohorts_t       *cs;
    const cs_cohort_t  *prev;

    cs = &plan->cohorts[i];
    memset(cs, 0, sizeof(cs_cohorts_t));

    if (map == NULL) {
        if (i > 0) {
            *cs = plan->cohorts[i - 1];
            cs->set = 0;
        }

        return 0;
    }

    if (!json_is_object(map)) {
        return cs_plan_error(ctx, "stages[%zu].cohorts is not an object "
                             "{\"COHORT\": percent, ...}", i);
    }

    cs->set = 1;

    json_object_foreach(map, name, v) {
        /* a comment, as anywhere in a plan */
        if (strncmp(name, "//", 2) == 0) {
            continue;
        }

        if (cs->n == CS_COHORTS_MAX) {
            return cs_plan_error(ctx, "stages[%zu].cohorts: more than %d "
                                 "cohorts (the module's weight.COHORT "
                                 "fields)", i, CS_COHORTS_MAX);
        }

        if (!cs_plan_cohort_name(name)) {
            return cs_plan_error(ctx, "stages[%zu].cohorts: \"%.64s\" is "
                                 "not a cohort name: 1 to %d printable "
                                 "characters, no space", i, name,
                                 CS_COHORT_NAME_MAX);
        }

        if (!json_is_number(v)) {
            return cs_plan_error(ctx, "stages[%zu].cohorts.%s is not a "
                                 "number (a percent, 0 to 100)", i, name);
        }

        w = json_number_value(v);

        if (!(w >= 0 && w <= 100)) {
            return cs_plan_error(ctx, "stages[%zu].cohorts.%s: %g is not a "
                                 "percent 0 to 100", i, name, w);
        }

        if (fabs(w * 100 - round(w * 100)) > 1e-6) {
            return cs_plan_error(ctx, "stages[%zu].cohorts.%s: %g has more "
                                 "than two decimals", i, name, w);
        }

        c = &cs->cohort[cs->n++];
        memcpy(c->name, name, strlen(name) + 1);
        c->weight = (uint32_t) round(w * 100);

        if (i == 0) {
            continue;
        }

        prev = cs_plan_cohort_find(&plan->cohorts[i - 1], name);

        if (prev != NULL && c->weight < prev->weight) {
            return cs_plan_error(ctx, "stages[%zu].cohorts.%s: %g is below "
                                 "%g in stages[%zu]: a cohort's weight "
                                 "does not decrease stage by stage", i,
                                 name, c->weight / 100.0,
                                 prev->weight / 100.0, i - 1);
        }
    }

    if (i == 0) {
        return 0;
    }

    /* the map is the full map: one that drops a cohort is a mistake */

    for (k = 0; k < plan->cohorts[i - 1].n; k++) {
        prev = &plan->cohorts[i - 1].cohort[k];

        if (cs_plan_cohort_find(cs, prev->name) == NULL) {
            return cs_plan_error(ctx, "stages[%zu].cohorts: \"%s\" of "
                                 "stages[%zu] is missing: a stage's "
                                 "cohorts are the full map (keep it with "
                                 "\"%s\": %g)", i, prev->name, i - 1,
                                 prev->name, prev->weight / 100.0);
        }
    }

    return 0;
}


/* as the module's weight.NAME fields and canary-ctl cohort take them */

static int
cs_plan_cohort_name(const char *name)
{
    size_t  k, len;

    len = strlen(name);

    if (len == 0 || len > CS_COHORT_NAME_MAX) {
        return 0;
    }

    for (k = 0; k < len; k++) {
        if ((unsigned char) name[k] <= 0x20
            || (unsigned char) name[k] >= 0x7f)
        {
            return 0;
        }
    }

    return 1;
}


static const cs_cohort_t *
cs_plan_cohort_find(const cs_cohorts_t *cs, const char *name)
{
    size_t  k;

    for (k = 0; k < cs->n; k++) {
        if (strcmp(cs->cohort[k].name, name) == 0) {
            return &cs->cohort[k];
        }
    }

    return NULL;
}


int
cs_plan_cohorts_grow(const cs_plan_t *plan, size_t i)
{
    size_t              k;
    const cs_cohort_t  *c, *prev;

    if (i == 0 || !plan->cohorts[i].set) {
        return 0;
    }

    for (k = 0; k < plan->cohorts[i].n; k++) {
        c = &plan->cohorts[i].cohort[k];
        prev = cs_plan_cohort_find(&plan->cohorts[i - 1], c->name);

        if (prev == NULL || c->weight > prev->weight) {
            return 1;
        }
    }

    return 0;
}


int
cs_plan_cohorts_route(const cs_plan_t *plan, size_t i)
{
    size_t  k;

    for (k = 0; k < plan->cohorts[i].n; k++) {
        if (plan->cohorts[i].cohort[k].weight > 0) {
            return 1;
        }
    }

    return 0;
}
