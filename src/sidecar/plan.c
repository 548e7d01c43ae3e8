
/*
 * The rollout plan: JSON (jansson), validation, defaults.  Every error
 * names its place: "stages[2].weight", "slo", "the top level".
 */


#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "plan.h"
#include "ngx_http_canary_parse.h"


#define CS_DURATION_MAX   (30LL * 86400 * 1000)


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
static int cs_plan_slo(cs_plan_ctx_t *ctx, cs_plan_t *plan, json_t *slo);
static int cs_plan_pins(cs_plan_ctx_t *ctx, cs_plan_t *plan, json_t *pins);
static int cs_plan_duration(cs_plan_ctx_t *ctx, json_t *v, const char *where,
    int64_t min, int64_t max, int64_t *ms);
static int cs_plan_number(cs_plan_ctx_t *ctx, json_t *v, const char *where,
    double min, double max, int min_open, double *out);
static int cs_plan_add_pin(cs_plan_t *plan, const char *pin);
static int cs_plan_release(cs_plan_ctx_t *ctx, cs_plan_t *plan,
    json_t *release);


static const char  *cs_plan_top_fields[] = {
    "pins", "stages", "slo", "interval", "violation_for", "on_violation",
    "window", "lag", "lag_hold",
    "release",
    NULL
};

static const char  *cs_plan_release_fields[] = {
    "stable", "canary", NULL
};

static const char  *cs_plan_stage_fields[] = {
    "name", "weight", "hold", "manual", NULL
};

static const char  *cs_plan_slo_fields[] = {
    "latency_p99_ratio_max", "latency_p99_min_delta_ms",
    "error_rate_ratio_max", "error_rate_max", "availability_min",
    "min_requests", "confidence", NULL
};


/* the governor runbook: one pinned test tenant, then 5, 20, 50, 100 */

static const cs_stage_t  cs_plan_default_stages[] = {
    { "canary",      0,     30 * 60 * 1000, 0 },
    { "5_percent",   500,   30 * 60 * 1000, 0 },
    { "20_percent",  2000,  60 * 60 * 1000, 0 },
    { "50_percent",  5000,  60 * 60 * 1000, 0 },
    { "100_percent", 10000, 0,              1 }
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

    if (v != NULL && cs_plan_slo(&ctx, plan, v) != 0) {
        goto failed;
    }

    v = json_object_get(root, "pins");

    if (v != NULL && cs_plan_pins(&ctx, plan, v) != 0) {
        goto failed;
    }

    v = json_object_get(root, "interval");

    if (v != NULL
        && cs_plan_duration(&ctx, v, "interval", 100, 3600 * 1000,
                            &plan->interval) != 0)
    {
        goto failed;
    }

    v = json_object_get(root, "violation_for");

    if (v != NULL
        && cs_plan_duration(&ctx, v, "violation_for", 0, 86400 * 1000,
                            &plan->violation_for) != 0)
    {
        goto failed;
    }

    v = json_object_get(root, "window");

    if (v != NULL) {
        if (cs_plan_duration(&ctx, v, "window", 1000, CS_WINDOW_MAX,
                             &plan->window) != 0)
        {
            goto failed;
        }

        if (plan->window % 1000) {
            cs_plan_error(&ctx, "window: whole seconds, 1s to 60s");
            goto failed;
        }
    }

    v = json_object_get(root, "lag");

    if (v != NULL
        && cs_plan_duration(&ctx, v, "lag", 100, 3600 * 1000, &plan->lag)
           != 0)
    {
        goto failed;
    }

    v = json_object_get(root, "lag_hold");

    if (v != NULL
        && cs_plan_duration(&ctx, v, "lag_hold", 100, 86400 * 1000,
                            &plan->lag_hold) != 0)
    {
        goto failed;
    }

    if (plan->lag_hold < plan->lag) {
        cs_plan_error(&ctx, "lag_hold: shorter than lag");
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
            cs_plan_error(&ctx, "on_violation: \"rollback\" or \"pause\"");
            goto failed;
        }
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
    size_t  i;

    for (i = 0; i < plan->npins; i++) {
        free(plan->pins[i]);
    }

    free(plan->pins);

    plan->pins = NULL;
    plan->npins = 0;
}


static int
cs_plan_error(cs_plan_ctx_t *ctx, const char *fmt, ...)
{
    int      n;
    va_list  args;

    n = snprintf(ctx->err, ctx->errlen, "%s: ", ctx->source);

    if (n < 0 || (size_t) n >= ctx->errlen) {
        return -1;
    }

    va_start(args, fmt);
    vsnprintf(ctx->err + n, ctx->errlen - n, fmt, args);
    va_end(args);

    return -1;
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
        if (plan->stages[i].weight <= plan->stages[i - 1].weight) {
            return cs_plan_error(ctx, "stages[%zu].weight %g is not above "
                "stages[%zu].weight %g: weights must increase stage by "
                "stage", i, plan->stages[i].weight / 100.0, i - 1,
                plan->stages[i - 1].weight / 100.0);
        }

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

    if (cs_plan_duration(ctx, v, where, 0, CS_DURATION_MAX, &stage->hold)
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

    return 0;
}


static int
cs_plan_slo(cs_plan_ctx_t *ctx, cs_plan_t *plan, json_t *slo)
{
    double     d;
    json_t    *v;
    cs_slo_t  *s;

    s = &plan->slo;
    d = 0;

    if (!json_is_object(slo)) {
        return cs_plan_error(ctx, "\"slo\" is not an object");
    }

    if (cs_plan_known(ctx, slo, "slo", cs_plan_slo_fields) != 0) {
        return -1;
    }

    v = json_object_get(slo, "latency_p99_ratio_max");
    if (v && cs_plan_number(ctx, v, "slo.latency_p99_ratio_max", 0, 1000,
                            1, &s->latency_p99_ratio_max) != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "latency_p99_min_delta_ms");
    if (v && cs_plan_number(ctx, v, "slo.latency_p99_min_delta_ms", 0,
                            3600000, 0, &s->latency_p99_min_delta_ms) != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "error_rate_ratio_max");
    if (v && cs_plan_number(ctx, v, "slo.error_rate_ratio_max", 0, 1000,
                            1, &s->error_rate_ratio_max) != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "error_rate_max");
    if (v && cs_plan_number(ctx, v, "slo.error_rate_max (percent)", 0, 100,
                            1, &s->error_rate_max) != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "availability_min");
    if (v && cs_plan_number(ctx, v, "slo.availability_min (percent)", 0,
                            100, 0, &s->availability_min) != 0)
    {
        return -1;
    }

    v = json_object_get(slo, "confidence");
    if (v) {
        if (cs_plan_number(ctx, v, "slo.confidence", 0.5, 0.999999, 1,
                           &s->confidence) != 0)
        {
            return -1;
        }
    }

    v = json_object_get(slo, "min_requests");
    if (v) {
        if (cs_plan_number(ctx, v, "slo.min_requests", 1, 1e12, 0, &d)
            != 0)
        {
            return -1;
        }

        if (!json_is_integer(v)) {
            return cs_plan_error(ctx, "slo.min_requests: a whole number of "
                                 "requests");
        }

        s->min_requests = (uint64_t) d;
    }

    return 0;
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


static int
cs_plan_duration(cs_plan_ctx_t *ctx, json_t *v, const char *where,
    int64_t min, int64_t max, int64_t *ms)
{
    double       d;
    char         val[32], lo[32], hi[32];
    const char  *s;

    if (json_is_string(v)) {
        s = json_string_value(v);

        if (cs_duration_parse(s, ms) != 0) {
            return cs_plan_error(ctx, "%s: \"%.64s\" is not a duration "
                                 "(500ms, 30s, 30m, 1h, 1h30m or a number "
                                 "of seconds)", where, s);
        }

    } else if (json_is_number(v)) {
        d = json_number_value(v);

        if (!(d >= 0 && d <= (double) CS_DURATION_MAX / 1000)) {
            return cs_plan_error(ctx, "%s: %g is not a duration in "
                                 "seconds", where, d);
        }

        *ms = (int64_t) llround(d * 1000);

    } else {
        return cs_plan_error(ctx, "%s is not a duration (\"30s\", \"30m\" "
                             "or a number of seconds)", where);
    }

    if (*ms < min || *ms > max) {
        return cs_plan_error(ctx, "%s: %s is out of range %s to %s", where,
                             cs_duration_format(*ms, val, sizeof(val)),
                             cs_duration_format(min, lo, sizeof(lo)),
                             cs_duration_format(max, hi, sizeof(hi)));
    }

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
        return cs_plan_error(ctx, "%s: %g is out of range %s%g to %g",
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

    if (ms < 10000 && ms % 1000) {
        snprintf(buf, size, "%.1fs", ms / 1000.0);
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
