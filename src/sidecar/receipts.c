
/*
 * Receipts as JSON (jansson) and the receipts file.
 */


#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "receipts.h"


static json_t *cs_receipt_shadow(const cs_judgement_t *j);
static json_t *cs_receipt_evidence(const cs_plan_t *plan,
    const cs_decision_t *d);
static json_t *cs_receipt_number(double v);
static json_t *cs_receipt_weight(uint32_t weight);
static json_t *cs_receipt_checks(const cs_decision_t *d);
static void cs_receipt_rollout(json_t *r, const cs_plan_t *plan,
    const cs_decision_t *d, size_t op, const cs_receipt_ctx_t *ctx);
static json_t *cs_receipt_release(const cs_plan_t *plan);
static json_t *cs_receipt_failed_checks(const cs_decision_t *d,
    uint32_t kept);
static json_t *cs_receipt_summary(const cs_decision_t *d,
    const cs_receipt_ctx_t *ctx);
static int cs_receipt_stage_entry(json_t *e);


char *
cs_receipt_json(const cs_plan_t *plan, const cs_decision_t *d, size_t op,
    const cs_receipt_ctx_t *ctx, char id[CS_UUID_LEN + 1])
{
    char                   ts[32];
    char                  *out;
    json_t                *r;
    const cs_judgement_t  *j;

    if (ctx->receipt_id) {
        snprintf(id, CS_UUID_LEN + 1, "%s", ctx->receipt_id);

    } else {
        cs_uuid(id);
    }

    cs_iso8601(ctx->now, ts, sizeof(ts));

    j = &d->j;

    r = json_object();
    if (r == NULL) {
        return NULL;
    }

    json_object_set_new(r, NGX_HTTP_CANARY_RECEIPT_ID, json_string(id));
    json_object_set_new(r, NGX_HTTP_CANARY_RECEIPT_TIMESTAMP,
                        json_string(ts));
    json_object_set_new(r, NGX_HTTP_CANARY_RECEIPT_OPERATION,
                        json_string(d->ops[op]));
    json_object_set_new(r, NGX_HTTP_CANARY_RECEIPT_SPLIT,
                        json_string(ctx->split));

    json_object_set_new(r, "from_stage", d->from_stage < 0 ? json_null()
                        : json_string(plan->stages[d->from_stage].name));
    json_object_set_new(r, "to_stage",
                        json_string(plan->stages[d->to_stage].name));
    json_object_set_new(r, NGX_HTTP_CANARY_RECEIPT_FROM_WEIGHT,
                        cs_receipt_weight(d->from_weight));
    json_object_set_new(r, NGX_HTTP_CANARY_RECEIPT_TO_WEIGHT,
                        cs_receipt_weight(d->to_weight));
    json_object_set_new(r, NGX_HTTP_CANARY_FIELD_STATE, json_string(d->state));

    json_object_set_new(r, "sli_checks", cs_receipt_checks(d));

    json_object_set_new(r, "requests",
        json_pack("{s:I,s:I}",
                  "stable", (json_int_t) j->requests[CS_STABLE],
                  "canary", (json_int_t) j->requests[CS_CANARY]));
    json_object_set_new(r, "errors",
        json_pack("{s:I,s:I}",
                  "stable", (json_int_t) j->errors[CS_STABLE],
                  "canary", (json_int_t) j->errors[CS_CANARY]));
    json_object_set_new(r, "evidence", cs_receipt_evidence(plan, d));
    json_object_set_new(r, "window_seconds",
                        json_integer(d->has_judgement ? j->window_seconds
                                     : plan->window / 1000));
    json_object_set_new(r, "nginx",
        json_pack("{s:I,s:I}", "answered", (json_int_t) j->instances,
                  "asked", (json_int_t) j->asked));
    json_object_set_new(r, NGX_HTTP_CANARY_RECEIPT_REASON,
                        json_string(d->reason));
    json_object_set_new(r, "decision_ms",
                        cs_receipt_number(round(ctx->decision_ms * 1000)
                                          / 1000));
    json_object_set_new(r, NGX_HTTP_CANARY_RECEIPT_GENERATION,
                        json_integer((json_int_t) ctx->generation));
    json_object_set_new(r, NGX_HTTP_CANARY_RECEIPT_BY, json_string(ctx->by));

    cs_receipt_rollout(r, plan, d, op, ctx);

    out = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(6)
                        | JSON_PRESERVE_ORDER);

    json_decref(r);

    return out;
}


/*
 * What every writer's receipt says of the rollout (README, "Receipts"):
 * the release, the stage it was at and for how long, how far it got;
 * a violation's receipts when it was first confirmed and what failed;
 * the final one the summary of its stages.
 */

static void
cs_receipt_rollout(json_t *r, const cs_plan_t *plan, const cs_decision_t *d,
    size_t op, const cs_receipt_ctx_t *ctx)
{
    int                  stage;
    char                 ts[32];
    int64_t              at_stage, detected;
    uint32_t             failed;
    const cs_rollout_t  *ro, *nx;

    ro = ctx->before;
    nx = &d->next;

    json_object_set_new(r, "release", cs_receipt_release(plan));

    /* the stage it was at when it decided: the first at the start */
    stage = d->from_stage >= 0 ? d->from_stage : d->to_stage;
    at_stage = ro && ro->status != CS_STATUS_NEW && d->from_stage >= 0
               ? cs_elapsed(ctx->now, ro->stage_started) : 0;

    json_object_set_new(r, "stage",
                        json_string(plan->stages[stage].name));
    json_object_set_new(r, "duration_at_stage_seconds",
                        json_integer(at_stage / 1000));
    json_object_set_new(r, "stages_completed",
                        json_integer(nx->stages_completed));
    json_object_set_new(r, "rollout_elapsed_seconds",
                        nx->rollout_started
                        ? json_integer(cs_elapsed(ctx->now,
                                                  nx->rollout_started)
                                       / 1000)
                        : json_null());
    json_object_set_new(r, "rollbacks_triggered",
                        json_integer(nx->rollbacks));
    json_object_set_new(r, "evidence_key", ctx->evidence_key
                        ? json_string(ctx->evidence_key) : json_null());

    /* a rollback, each step of a gradual one to the last: what it acted
     * on, kept from its first step (a step restarts violation_since) */
    detected = d->action == CS_ACT_ROLLBACK
               || d->action == CS_ACT_ROLLBACK_STEP
               ? nx->rollback_detected : 0;
    failed = detected ? nx->rollback_failed : 0;

    if (detected == 0 && d->action == CS_ACT_PAUSE) {
        detected = nx->violation_since;
    }

    if (detected) {
        /* the write follows the decision's own time at once */
        json_object_set_new(r, "detected_at",
            json_string(cs_iso8601(detected, ts, sizeof(ts))));
        /* whole ms, an integer: JSON_REAL_PRECISION(6) would print
         * an hour's 3600002 as 3.6e+06 */
        json_object_set_new(r, "rollback_duration_ms",
            json_integer((json_int_t) llround((double) cs_elapsed(ctx->now,
                                                                  detected)
                                              + ctx->decision_ms)));
        json_object_set_new(r, "failed_checks",
                            cs_receipt_failed_checks(d, failed));
    }

    if (strcmp(d->ops[op], NGX_HTTP_CANARY_OP_COMPLETE) == 0) {
        json_object_set_new(r, "summary", cs_receipt_summary(d, ctx));
    }
}


static json_t *
cs_receipt_release(const cs_plan_t *plan)
{
    if (plan->release_canary[0] == '\0') {
        return json_null();
    }

    return json_pack("{s:s,s:s}", "stable", plan->release_stable,
                     "canary", plan->release_canary);
}


char *
cs_release_json(const cs_plan_t *plan)
{
    char    *out;
    json_t  *r;

    if (plan->release_canary[0] == '\0') {
        return NULL;
    }

    r = cs_receipt_release(plan);
    if (r == NULL) {
        return NULL;
    }

    out = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(r);

    return out;
}


/* the decision's failed checks, and those kept from the rollback's
 * first step (cs_failed_mask) */

static json_t *
cs_receipt_failed_checks(const cs_decision_t *d, uint32_t kept)
{
    size_t    i;
    json_t   *a;
    uint32_t  mask;

    a = json_array();
    mask = kept | cs_failed_mask(&d->j);

    if (mask & CS_FAILED_CRITICAL) {
        json_array_append_new(a, json_string("critical_error_rate"));
    }

    for (i = 0; i < CS_CHECKS; i++) {
        if (mask & cs_failed_bit(i)) {
            json_array_append_new(a, json_string(cs_check_name(i)));
        }
    }

    return a;
}


static json_t *
cs_receipt_summary(const cs_decision_t *d, const cs_receipt_ctx_t *ctx)
{
    char          *text;
    size_t         i, len;
    json_t        *s, *stages;
    json_error_t   jerr;

    len = strlen(d->next.stages_log);
    text = malloc(len + 3);

    if (text == NULL) {
        return json_null();
    }

    text[0] = '[';
    memcpy(text + 1, d->next.stages_log, len);
    text[len + 1] = ']';
    text[len + 2] = '\0';

    stages = json_loads(text, 0, &jerr);
    free(text);

    /* the state is Redis', anyone may have written it: only entries of
     * this sidecar's shape (cs_stages_log_add) */
    for (i = 0; json_is_array(stages) && i < json_array_size(stages); ) {
        if (cs_receipt_stage_entry(json_array_get(stages, i))) {
            i++;

        } else {
            json_array_remove(stages, i);
        }
    }

    if (stages && !json_is_array(stages)) {
        json_decref(stages);
        stages = NULL;
    }

    s = json_object();
    json_object_set_new(s, "stages", stages ? stages : json_array());
    json_object_set_new(s, "total_duration_seconds",
                        d->next.rollout_started
                        ? json_integer(cs_elapsed(ctx->now,
                                                  d->next.rollout_started)
                                       / 1000)
                        : json_null());

    return s;
}


/* an entry of stages_log as cs_stages_log_add() writes it */

static int
cs_receipt_stage_entry(json_t *e)
{
    size_t       i, k;
    json_t      *v, *n;
    const char  *s, *key;

    static const char   iso[] = "dddd-dd-ddTdd:dd:ddZ";
    static const char  *figures[] = {
        "requests", "errors", "p99_ms", "p_values"
    };

    if (!json_is_object(e)) {
        return 0;
    }

    s = json_string_value(json_object_get(e, "name"));
    if (s == NULL || s[0] == '\0') {
        return 0;
    }

    v = json_object_get(e, "weight");
    if (!json_is_number(v) || json_number_value(v) < 0
        || json_number_value(v) > 100)
    {
        return 0;
    }

    /* ISO 8601 Z, to the second: "d" a digit */
    s = json_string_value(json_object_get(e, "started"));
    if (s == NULL || strlen(s) != sizeof(iso) - 1) {
        return 0;
    }

    for (i = 0; s[i]; i++) {
        if (iso[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != iso[i]) {
            return 0;
        }
    }

    v = json_object_get(e, "duration_seconds");
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return 0;
    }

    s = json_string_value(json_object_get(e, "result"));
    if (s == NULL || (strcmp(s, "promoted") != 0
                      && strcmp(s, "complete") != 0
                      && strcmp(s, "rolled_back") != 0))
    {
        return 0;
    }

    /* {"stable": N, "canary": N} (numbers or null), or null; p_values
     * an object of numbers or null */
    for (i = 0; i < sizeof(figures) / sizeof(figures[0]); i++) {
        v = json_object_get(e, figures[i]);

        if (json_is_null(v)) {
            continue;
        }

        if (!json_is_object(v)) {
            return 0;
        }

        if (i == 3) {
            json_object_foreach(v, key, n) {
                if (!json_is_number(n) && !json_is_null(n)) {
                    return 0;
                }
            }

            continue;
        }

        for (k = 0; k < 2; k++) {
            n = json_object_get(v, k ? "canary" : "stable");
            if (n == NULL || !(json_is_number(n) || json_is_null(n))) {
                return 0;
            }
        }
    }

    return 1;
}


void
cs_stages_log_add(const cs_plan_t *plan, const cs_rollout_t *ro,
    cs_decision_t *d, int64_t now)
{
    int                    last;
    char                   ts[32], *text, *next;
    size_t                 i, n, len;
    json_t                *e, *p;
    const cs_judgement_t  *j;

    if (ro->status == CS_STATUS_NEW || ro->stage >= plan->nstages
        || (d->action != CS_ACT_PROMOTE && d->action != CS_ACT_COMPLETE
            && d->action != CS_ACT_ROLLBACK))
    {
        return;
    }

    j = &d->j;

    /* a completion that enters the last stage, without a hold: it too */
    last = d->action == CS_ACT_COMPLETE && d->to_stage != (int) ro->stage;

    for (i = 0; i < (size_t) (last ? 2 : 1); i++) {
        e = json_object();
        n = i ? (size_t) d->to_stage : ro->stage;

        json_object_set_new(e, "name", json_string(plan->stages[n].name));
        json_object_set_new(e, "weight",
                            cs_receipt_weight(plan->stages[n].weight));
        json_object_set_new(e, "started",
            json_string(cs_iso8601(i ? now : ro->stage_started, ts,
                                   sizeof(ts))));
        json_object_set_new(e, "duration_seconds",
            json_integer(i ? 0 : cs_elapsed(now, ro->stage_started) / 1000));
        json_object_set_new(e, "result", json_string(
            d->action == CS_ACT_ROLLBACK ? "rolled_back"
            : d->action == CS_ACT_COMPLETE && (i || !last) ? "complete"
            : "promoted"));

        if (i || !d->has_judgement) {
            json_object_set_new(e, "requests", json_null());
            json_object_set_new(e, "errors", json_null());
            json_object_set_new(e, "p99_ms", json_null());
            json_object_set_new(e, "p_values", json_null());

        } else {
            json_object_set_new(e, "requests", json_pack("{s:I,s:I}",
                "stable", (json_int_t) j->requests[CS_STABLE],
                "canary", (json_int_t) j->requests[CS_CANARY]));
            json_object_set_new(e, "errors", json_pack("{s:I,s:I}",
                "stable", (json_int_t) j->errors[CS_STABLE],
                "canary", (json_int_t) j->errors[CS_CANARY]));
            p = json_object();
            json_object_set_new(p, "stable",
                                cs_receipt_number(j->p99_ms[CS_STABLE]));
            json_object_set_new(p, "canary",
                                cs_receipt_number(j->p99_ms[CS_CANARY]));
            json_object_set_new(e, "p99_ms", p);

            p = json_object();

            for (n = 0; n < CS_CHECKS; n++) {
                json_object_set_new(p, cs_check_name(n),
                    j->checks[n].status == CS_NO_DATA ? json_null()
                    : cs_receipt_number(j->checks[n].p_value));
            }

            json_object_set_new(e, "p_values", p);
        }

        text = json_dumps(e, JSON_COMPACT | JSON_REAL_PRECISION(6)
                             | JSON_PRESERVE_ORDER);
        json_decref(e);

        if (text == NULL) {
            return;
        }

        /*
         * Full (a rollout re-anchored by an operator over and over): the
         * oldest entries go, so that the summary still ends with how the
         * rollout ended.  Each entry starts with its name, of letters,
         * digits, "_", "-" and ".": "},{\"name\":" is a boundary.
         */
        len = strlen(d->next.stages_log);

        while (len && len + strlen(text) + 2 >= sizeof(d->next.stages_log)) {
            next = strstr(d->next.stages_log, "},{\"name\":");
            next = next ? next + 2 : d->next.stages_log + len;
            len -= (size_t) (next - d->next.stages_log);
            memmove(d->next.stages_log, next, len + 1);
        }

        if (len + strlen(text) + 2 < sizeof(d->next.stages_log)) {
            snprintf(d->next.stages_log + len,
                     sizeof(d->next.stages_log) - len, "%s%s",
                     len ? "," : "", text);
        }

        free(text);
    }
}


json_t *
cs_receipt_checks_json(const cs_decision_t *d)
{
    return cs_receipt_checks(d);
}


json_t *
cs_receipt_shadow_json(const cs_decision_t *d)
{
    if (!d->has_judgement || d->j.checks[CS_CHECK_SHADOW].off) {
        return NULL;
    }

    return cs_receipt_shadow(&d->j);
}


static json_t *
cs_receipt_checks(const cs_decision_t *d)
{
    size_t             i;
    json_t            *checks, *c;
    const cs_check_t  *k;

    checks = json_object();

    for (i = 0; i < CS_CHECKS; i++) {
        k = &d->j.checks[i];

        /* the latency limits appear when the SLO has them */
        if (i > CS_CHECK_AVAILABILITY
            && (!d->has_judgement || k->off))
        {
            continue;
        }

        if (!d->has_judgement) {
            c = json_pack("{s:n,s:n,s:n,s:s,s:n}", "baseline", "canary",
                          "threshold", "status", "NO_DATA", "p_value");

        } else {
            c = json_object();
            json_object_set_new(c, "baseline", cs_receipt_number(k->baseline));
            json_object_set_new(c, "canary", cs_receipt_number(k->canary));
            json_object_set_new(c, "threshold",
                                cs_receipt_number(k->threshold));
            json_object_set_new(c, "status",
                                json_string(cs_verdict_name(k->status)));
            json_object_set_new(c, "p_value", cs_receipt_number(k->p_value));
            json_object_set_new(c, "alpha", cs_receipt_number(k->alpha));
            json_object_set_new(c, "look_p_value", k->look_p < 0
                                ? json_null()
                                : cs_receipt_number(k->look_p));
            json_object_set_new(c, "events",
                json_pack("{s:I,s:I}",
                          "stable", (json_int_t) k->events[CS_STABLE],
                          "canary", (json_int_t) k->events[CS_CANARY]));
        }

        json_object_set_new(checks, cs_check_name(i), c);
    }

    return checks;
}


/*
 * What the decision saw, over the stage: how strong a promotion was is
 * the smallest error regression the stage could have shown.
 */

static json_t *
cs_receipt_evidence(const cs_plan_t *plan, const cs_decision_t *d)
{
    char                   text[128];
    double                 ratio, margin;
    json_t                *e;
    const cs_slo_t        *slo;
    const cs_judgement_t  *j;

    if (!d->has_judgement) {
        return json_null();
    }

    j = &d->j;

    /* the SLO the stage was judged by: the plan's merged with its own */
    slo = cs_plan_stage_slo(plan, d->from_stage < 0 ? 0
                                  : (size_t) d->from_stage);

    ratio = cs_detectable_ratio(j->errors[CS_STABLE], j->requests[CS_STABLE],
                                j->requests[CS_CANARY],
                                j->alpha * CS_ALPHA_LOOK, 1000);

    /* and never under what the SLO's margin lets fail at all */
    margin = slo->error_rate_ratio_max;

    if (j->error_pct[CS_STABLE] > 0
        && slo->error_rate_max / j->error_pct[CS_STABLE] < margin)
    {
        margin = slo->error_rate_max / j->error_pct[CS_STABLE];
    }

    if (ratio > 0 && ratio < margin) {
        ratio = margin;
    }

    if (ratio > 0) {
        snprintf(text, sizeof(text), "could show an error rate >= %.1fx "
                 "stable's (its end-of-hold look, at %g%% confidence)",
                 ratio, 100 * slo->confidence);

    } else {
        snprintf(text, sizeof(text), "too few requests to catch an error "
                 "regression of under 1000x");
    }

    e = json_object();

    json_object_set_new(e, "over", json_string("stage"));
    json_object_set_new(e, "alpha", cs_receipt_number(j->alpha));
    json_object_set_new(e, "detectable_error_ratio",
                        ratio > 0 ? cs_receipt_number(ratio) : json_null());
    json_object_set_new(e, "detectable", json_string(text));
    json_object_set_new(e, "error_dispersion",
                        cs_receipt_number(j->error_phi));
    json_object_set_new(e, "latency_bound_ms",
                        j->slow_ms > 0 ? cs_receipt_number(j->slow_ms)
                                       : json_null());

    /* a shadow stage's comparisons, when its SLO judges them */
    if (!j->checks[CS_CHECK_SHADOW].off) {
        json_object_set_new(e, "shadow", cs_receipt_shadow(j));
    }

    return e;
}


/* "shadow": {"compared", "matched", "mismatched": {"status", "body"},
 *  "canary_errors", "timeouts", "skipped", "match_rate", "threshold",
 *  "min_compared", "status", "p_value", "alpha"} */

static json_t *
cs_receipt_shadow(const cs_judgement_t *j)
{
    json_t             *sh;
    const cs_check_t   *c;
    const cs_shadow_t  *s;

    c = &j->checks[CS_CHECK_SHADOW];
    s = &j->shadow;

    sh = json_object();

    json_object_set_new(sh, "compared", json_integer(
                            (json_int_t) s->compared));
    json_object_set_new(sh, "matched", json_integer(
                            (json_int_t) s->matched));
    json_object_set_new(sh, "mismatched", json_pack("{s:I,s:I}",
                            "status", (json_int_t) s->mismatched_status,
                            "body", (json_int_t) s->mismatched_body));
    json_object_set_new(sh, "canary_errors", json_integer(
                            (json_int_t) s->canary_errors));
    json_object_set_new(sh, "timeouts", json_integer(
                            (json_int_t) s->timeouts));
    json_object_set_new(sh, "skipped", json_integer(
                            (json_int_t) s->skipped));
    json_object_set_new(sh, "match_rate", cs_receipt_number(c->canary));
    json_object_set_new(sh, "threshold", cs_receipt_number(c->threshold));
    json_object_set_new(sh, "min_compared", json_integer(
                            (json_int_t) j->shadow_min_compared));
    json_object_set_new(sh, "status",
                        json_string(cs_verdict_name(c->status)));
    json_object_set_new(sh, "p_value", cs_receipt_number(c->p_value));
    json_object_set_new(sh, "alpha", cs_receipt_number(c->alpha));

    return sh;
}


static json_t *
cs_receipt_number(double v)
{
    if (!isfinite(v)) {
        return json_null();
    }

    return json_real(v);
}


static json_t *
cs_receipt_weight(uint32_t weight)
{
    if (weight % 100 == 0) {
        return json_integer(weight / 100);
    }

    return json_real(weight / 100.0);
}


void
cs_uuid(char out[CS_UUID_LEN + 1])
{
    size_t          i, n;
    struct timespec ts;
    unsigned char   b[16];

    if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b)) {
        clock_gettime(CLOCK_REALTIME, &ts);
        srandom((unsigned) (ts.tv_nsec ^ ts.tv_sec ^ getpid()));

        for (i = 0; i < sizeof(b); i++) {
            b[i] = (unsigned char) random();
        }
    }

    b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);

    n = 0;

    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[n++] = '-';
        }

        out[n++] = "0123456789abcdef"[b[i] >> 4];
        out[n++] = "0123456789abcdef"[b[i] & 0x0f];
    }

    out[n] = '\0';
}


char *
cs_iso8601(int64_t ms, char *buf, size_t size)
{
    time_t     t;
    struct tm  tm;

    t = (time_t) (ms / 1000);
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);

    return buf;
}


int
cs_receipts_append(const char *path, char *const *receipts, size_t n,
    char *err, size_t errlen)
{
    int      fd, rc;
    char    *line;
    size_t   i, len;
    ssize_t  w;

    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }

    rc = 0;

    for (i = 0; i < n; i++) {
        len = strlen(receipts[i]);

        line = malloc(len + 1);
        if (line == NULL) {
            snprintf(err, errlen, "%s: no memory", path);
            rc = -1;
            break;
        }

        memcpy(line, receipts[i], len);
        line[len] = '\n';

        /* one write per line: concurrent appenders do not interleave */
        w = write(fd, line, len + 1);

        free(line);

        if (w != (ssize_t) (len + 1)) {
            snprintf(err, errlen, "%s: %s", path,
                     w < 0 ? strerror(errno) : "short write");
            rc = -1;
            break;
        }
    }

    if (close(fd) != 0 && rc == 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = -1;
    }

    return rc;
}
