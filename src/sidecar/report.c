
/*
 * What --listen serves, pure (report.h): the state each step leaves,
 * as Prometheus text and as the rollout page's JSON.
 */


#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "report.h"
#include "stats.h"


typedef struct {
    char               *p;
    size_t              len;
    size_t              cap;
    int                 failed;
} cs_text_t;


static void cs_report_clear_samples(cs_report_t *r, size_t stage);
static void cs_text(cs_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void cs_text_label(cs_text_t *t, const char *s);
static void cs_text_float(cs_text_t *t, double v);
static void cs_family(cs_text_t *t, const char *name, const char *type,
    const char *help);
static void cs_series(cs_text_t *t, const cs_report_t *r, const char *name,
    const char *label, const char *value);
static void cs_metrics_rollout(cs_text_t *t, const cs_report_t *r);
static json_t *cs_json_rollout(const cs_report_t *r);
static json_t *cs_json_judgement(const cs_report_t *r);
static json_t *cs_json_samples(const cs_report_t *r);
static json_t *cs_json_pair_real(double stable, double canary);
static json_t *cs_json_pair_int(uint64_t stable, uint64_t canary);
static json_t *cs_json_real(double v);
static double cs_hold_elapsed(const cs_report_t *r);
static char *cs_utf8(const char *s);
static size_t cs_utf8_char(const unsigned char *p);
static json_t *cs_json_text(const char *s);


/* the operations the sidecar writes: counted from 0 */
static const char  *cs_report_ops[] = {
    NGX_HTTP_CANARY_OP_STARTED, NGX_HTTP_CANARY_OP_CANARY_DONE,
    NGX_HTTP_CANARY_OP_PROMOTED, NGX_HTTP_CANARY_OP_AWAITING,
    NGX_HTTP_CANARY_OP_COMPLETE, NGX_HTTP_CANARY_OP_VIOLATION,
    NGX_HTTP_CANARY_OP_ROLLBACK, NGX_HTTP_CANARY_OP_PAUSED,
    NGX_HTTP_CANARY_OP_HALTED, NGX_HTTP_CANARY_OP_HALT_CLEARED
};


int
cs_report_init(cs_report_t *r, const char *split, const char *id,
    const cs_plan_t *plan, int dry_run, const cs_notify_counts_t *notify)
{
    size_t  i;

    memset(r, 0, sizeof(cs_report_t));

    r->split = split;
    r->id = id;
    r->plan = plan;
    r->dry_run = dry_run;
    r->notify = notify;
    r->every = 1;
    cs_rollout_init(&r->ro);

    for (i = 0; i < sizeof(cs_report_ops) / sizeof(char *); i++) {
        snprintf(r->ops[i], sizeof(r->ops[i]), "%s", cs_report_ops[i]);
    }

    r->nops = i;

    r->samples = calloc(CS_REPORT_SAMPLES, sizeof(cs_sample_t));

    return r->samples ? 0 : -1;
}


void
cs_report_free(cs_report_t *r)
{
    size_t  i;

    for (i = 0; i < r->nreceipts; i++) {
        free(r->receipts[i]);
        r->receipts[i] = NULL;
    }

    r->nreceipts = 0;

    free(r->samples);
    r->samples = NULL;
}


void
cs_report_written(cs_report_t *r, const char *op)
{
    size_t  i;

    for (i = 0; i < r->nops; i++) {
        if (strcmp(r->ops[i], op) == 0) {
            break;
        }
    }

    if (i == r->nops && r->nops < CS_REPORT_OPS) {
        snprintf(r->ops[i], sizeof(r->ops[i]), "%s", op);
        r->nops++;
    }

    if (i < r->nops) {
        r->op_counts[i]++;
    }
}


void
cs_report_receipts(cs_report_t *r, char **list, size_t n,
    uint64_t generation)
{
    size_t  i;

    for (i = 0; i < r->nreceipts; i++) {
        free(r->receipts[i]);
    }

    for (i = 0; i < n && i < CS_REPORT_RECEIPTS; i++) {
        r->receipts[i] = list[i];
    }

    for ( /* void */ ; i < n; i++) {
        free(list[i]);
    }

    r->nreceipts = n < CS_REPORT_RECEIPTS ? n : CS_REPORT_RECEIPTS;
    r->receipts_read = 1;
    r->receipts_generation = generation;
}


void
cs_report_decision(cs_report_t *r, int64_t now, const cs_rollout_t *ro,
    const cs_decision_t *d)
{
    r->known = 1;
    r->now = now;
    r->ro = *ro;
    snprintf(r->reason, sizeof(r->reason), "%s%s%s", d->note,
             d->note[0] && d->reason[0] ? "; " : "", d->reason);

    if (d->has_judgement) {
        r->judged = 1;
        r->judged_at = now;
        r->judged_stage = ro->stage;
        r->j = d->j;
    }
}


/*
 * The samples are the current stage's: a new stage starts them over.
 * Past CS_REPORT_SAMPLES, every other one goes and a sample is kept
 * every 2nd step (then 4th, ...): the whole stage, coarser.
 */

void
cs_report_sample(cs_report_t *r, int64_t now, size_t stage,
    const cs_metrics_t *m)
{
    size_t              i;
    double              bad;
    cs_sample_t        *s;
    const cs_window_t  *w;

    if (r->samples == NULL) {
        return;
    }

    if (stage != r->sample_stage || r->nsamples == 0) {
        cs_report_clear_samples(r, stage);
    }

    if (++r->skipped < r->every) {
        return;
    }

    r->skipped = 0;

    if (r->nsamples == CS_REPORT_SAMPLES) {
        for (i = 0; i < CS_REPORT_SAMPLES / 2; i++) {
            r->samples[i] = r->samples[2 * i + 1];
        }

        r->nsamples = CS_REPORT_SAMPLES / 2;
        r->every *= 2;
    }

    s = &r->samples[r->nsamples++];
    s->at = now;

    for (i = 0; i < 2; i++) {
        w = &m->v[i];
        bad = (double) (w->errors_5xx + w->upstream_errors);

        s->requests[i] = w->requests;
        s->error_pct[i] = w->requests ? 100 * bad / w->requests : 0;
        s->p50_ms[i] = cs_hist_quantile_ms(w->counts, 0.5);
        s->p95_ms[i] = cs_hist_quantile_ms(w->counts, 0.95);
        s->p99_ms[i] = cs_hist_quantile_ms(w->counts, 0.99);
    }
}


static void
cs_report_clear_samples(cs_report_t *r, size_t stage)
{
    r->nsamples = 0;
    r->sample_stage = stage;
    r->every = 1;
    r->skipped = 0;
}


/* ---- /metrics ---------------------------------------------------------- */

char *
cs_report_metrics(const cs_report_t *r, size_t *len)
{
    size_t      i;
    char        label[96];
    cs_text_t   t;

    memset(&t, 0, sizeof(cs_text_t));

    cs_family(&t, "canary_sidecar_info", "gauge",
              "This sidecar: the split it rolls out and its --id (1).");
    cs_text(&t, "canary_sidecar_info{split=");
    cs_text_label(&t, r->split);
    cs_text(&t, ",id=");
    cs_text_label(&t, r->id);
    cs_text(&t, ",dry_run=\"%d\"} 1\n", r->dry_run);

    cs_family(&t, "canary_sidecar_leader", "gauge",
              "1 while this sidecar holds the split's lease (acts).");
    cs_series(&t, r, "canary_sidecar_leader", NULL, r->leader ? "1" : "0");

    cs_family(&t, "canary_sidecar_steps_total", "counter",
              "Steps of the loop (one each interval).");
    snprintf(label, sizeof(label), "%llu", (unsigned long long) r->steps);
    cs_series(&t, r, "canary_sidecar_steps_total", NULL, label);

    cs_family(&t, "canary_sidecar_last_step_timestamp_seconds", "gauge",
              "When the last step ended (unix time).");
    cs_series(&t, r, "canary_sidecar_last_step_timestamp_seconds", NULL,
              NULL);
    cs_text_float(&t, (double) r->step_at / 1000);

    cs_family(&t, "canary_sidecar_last_step_duration_seconds", "gauge",
              "How long the last step took.");
    cs_series(&t, r, "canary_sidecar_last_step_duration_seconds", NULL,
              NULL);
    cs_text_float(&t, r->step_ms / 1000);

    cs_family(&t, "canary_sidecar_redis_up", "gauge",
              "1 when the last step reached Redis.");
    cs_series(&t, r, "canary_sidecar_redis_up", NULL,
              r->redis_ok ? "1" : "0");

    cs_family(&t, "canary_sidecar_nginx_answered", "gauge",
              "nginx that answered at the last reading of the fleet.");
    snprintf(label, sizeof(label), "%zu", r->answered);
    cs_series(&t, r, "canary_sidecar_nginx_answered", NULL, label);

    cs_family(&t, "canary_sidecar_nginx_asked", "gauge",
              "nginx asked at the last reading of the fleet.");
    snprintf(label, sizeof(label), "%zu", r->asked);
    cs_series(&t, r, "canary_sidecar_nginx_asked", NULL, label);

    cs_family(&t, "canary_sidecar_status_fetch_errors_total", "counter",
              "Readings of an nginx that failed: a --status URL that did "
              "not answer, or a node record that could not be read.");
    snprintf(label, sizeof(label), "%llu",
             (unsigned long long) r->fetch_errors);
    cs_series(&t, r, "canary_sidecar_status_fetch_errors_total", NULL,
              label);

    cs_family(&t, "canary_sidecar_redis_errors_total", "counter",
              "Steps that failed on Redis (unreachable, an error reply, "
              "a timeout).");
    snprintf(label, sizeof(label), "%llu",
             (unsigned long long) r->redis_errors);
    cs_series(&t, r, "canary_sidecar_redis_errors_total", NULL, label);

    cs_family(&t, "canary_sidecar_decisions_total", "counter",
              "Receipts this process wrote, by operation.");

    for (i = 0; i < r->nops; i++) {
        cs_text(&t, "canary_sidecar_decisions_total{split=");
        cs_text_label(&t, r->split);
        cs_text(&t, ",operation=");
        cs_text_label(&t, r->ops[i]);
        cs_text(&t, "} %llu\n", (unsigned long long) r->op_counts[i]);
    }

    cs_family(&t, "canary_sidecar_notifications_total", "counter",
              "Notifications delivered (sent) or given up (failed).");
    snprintf(label, sizeof(label), "%llu",
             (unsigned long long) (r->notify ? r->notify->sent : 0));
    cs_series(&t, r, "canary_sidecar_notifications_total",
              "result=\"sent\"", label);
    snprintf(label, sizeof(label), "%llu",
             (unsigned long long) (r->notify ? r->notify->failed : 0));
    cs_series(&t, r, "canary_sidecar_notifications_total",
              "result=\"failed\"", label);

    if (r->known && r->ro.stage < r->plan->nstages) {
        cs_metrics_rollout(&t, r);
    }

    if (t.failed) {
        free(t.p);
        return NULL;
    }

    *len = t.len;

    return t.p;
}


/* the rollout as the last step left it: only once one was read */

static void
cs_metrics_rollout(cs_text_t *t, const cs_report_t *r)
{
    size_t              i, k;
    char                buf[64];
    const cs_stage_t   *st;
    const cs_check_t   *c;

    st = &r->plan->stages[r->ro.stage];

    cs_family(t, "canary_sidecar_stage", "gauge",
              "The rollout's stage: its index in the plan, its name as "
              "a label.");
    cs_text(t, "canary_sidecar_stage{split=");
    cs_text_label(t, r->split);
    cs_text(t, ",stage=");
    cs_text_label(t, st->name);
    cs_text(t, "} %zu\n", r->ro.stage);

    cs_family(t, "canary_sidecar_weight_percent", "gauge",
              "The split's weight as the sidecar last wrote or read it.");
    cs_series(t, r, "canary_sidecar_weight_percent", NULL, NULL);
    cs_text_float(t, (double) r->ro.weight / 100);

    cs_family(t, "canary_sidecar_rollout_status", "gauge",
              "1 for the rollout's status, 0 for the others.");

    for (i = CS_STATUS_NEW; i <= CS_STATUS_ROLLED_BACK; i++) {
        snprintf(buf, sizeof(buf), "status=\"%s\"",
                 cs_status_name((cs_status_e) i));
        cs_series(t, r, "canary_sidecar_rollout_status", buf,
                  r->ro.status == (cs_status_e) i ? "1" : "0");
    }

    cs_family(t, "canary_sidecar_hold_elapsed_seconds", "gauge",
              "Time at the stage since it (or its hold) started.");
    cs_series(t, r, "canary_sidecar_hold_elapsed_seconds", NULL, NULL);
    cs_text_float(t, cs_hold_elapsed(r));

    cs_family(t, "canary_sidecar_hold_required_seconds", "gauge",
              "The stage's hold, from the plan.");
    cs_series(t, r, "canary_sidecar_hold_required_seconds", NULL, NULL);
    cs_text_float(t, (double) st->hold / 1000);

    if (!r->judged) {
        return;
    }

    cs_family(t, "canary_sidecar_check_status", "gauge",
              "1 for each check's verdict at the last judgement, 0 for "
              "the others.");

    for (i = 0; i < CS_CHECKS; i++) {
        for (k = CS_PASS; k <= CS_NO_DATA; k++) {
            cs_text(t, "canary_sidecar_check_status{split=");
            cs_text_label(t, r->split);
            cs_text(t, ",check=");
            cs_text_label(t, cs_check_name(i));
            cs_text(t, ",status=");
            cs_text_label(t, cs_verdict_name((cs_verdict_e) k));
            cs_text(t, "} %d\n", r->j.checks[i].status == (cs_verdict_e) k);
        }
    }

    cs_family(t, "canary_sidecar_check_p_value", "gauge",
              "Each check's always-valid p-value over the stage.");

    for (i = 0; i < CS_CHECKS; i++) {
        c = &r->j.checks[i];
        cs_text(t, "canary_sidecar_check_p_value{split=");
        cs_text_label(t, r->split);
        cs_text(t, ",check=");
        cs_text_label(t, cs_check_name(i));
        cs_text(t, "} ");
        cs_text_float(t, c->p_value);
    }

    cs_family(t, "canary_sidecar_check_alpha", "gauge",
              "What each check's p-value must be under to fail it.");

    for (i = 0; i < CS_CHECKS; i++) {
        c = &r->j.checks[i];
        cs_text(t, "canary_sidecar_check_alpha{split=");
        cs_text_label(t, r->split);
        cs_text(t, ",check=");
        cs_text_label(t, cs_check_name(i));
        cs_text(t, "} ");
        cs_text_float(t, c->alpha);
    }

    cs_family(t, "canary_sidecar_stage_requests", "gauge",
              "Requests of each variant over the stage, as judged last.");
    snprintf(buf, sizeof(buf), "%llu",
             (unsigned long long) r->j.requests[CS_STABLE]);
    cs_series(t, r, "canary_sidecar_stage_requests", "variant=\"stable\"",
              buf);
    snprintf(buf, sizeof(buf), "%llu",
             (unsigned long long) r->j.requests[CS_CANARY]);
    cs_series(t, r, "canary_sidecar_stage_requests", "variant=\"canary\"",
              buf);

    cs_family(t, "canary_sidecar_stage_errors", "gauge",
              "Errors (5xx and upstream) of each variant over the stage, "
              "as judged last.");
    snprintf(buf, sizeof(buf), "%llu",
             (unsigned long long) r->j.errors[CS_STABLE]);
    cs_series(t, r, "canary_sidecar_stage_errors", "variant=\"stable\"",
              buf);
    snprintf(buf, sizeof(buf), "%llu",
             (unsigned long long) r->j.errors[CS_CANARY]);
    cs_series(t, r, "canary_sidecar_stage_errors", "variant=\"canary\"",
              buf);
}


static double
cs_hold_elapsed(const cs_report_t *r)
{
    if (r->ro.stage_started == 0) {
        return 0;
    }

    return (double) cs_elapsed(r->now, r->ro.stage_started) / 1000;
}


static void
cs_family(cs_text_t *t, const char *name, const char *type,
    const char *help)
{
    cs_text(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}


/* NAME{split="..."[,label]} value, or without the value (and newline)
 * when it is NULL: a float follows */

static void
cs_series(cs_text_t *t, const cs_report_t *r, const char *name,
    const char *label, const char *value)
{
    cs_text(t, "%s{split=", name);
    cs_text_label(t, r->split);

    if (label) {
        cs_text(t, ",%s", label);
    }

    if (value) {
        cs_text(t, "} %s\n", value);

    } else {
        cs_text(t, "} ");
    }
}


static void
cs_text(cs_text_t *t, const char *fmt, ...)
{
    int       n;
    char     *p;
    size_t    cap;
    va_list   args;

    if (t->failed) {
        return;
    }

    for ( ;; ) {
        va_start(args, fmt);
        n = vsnprintf(t->p ? t->p + t->len : NULL,
                      t->p ? t->cap - t->len : 0, fmt, args);
        va_end(args);

        if (n < 0) {
            t->failed = 1;
            return;
        }

        if (t->p && t->len + n < t->cap) {
            t->len += n;
            return;
        }

        cap = t->cap ? 2 * t->cap : 4096;

        while (cap <= t->len + n) {
            cap *= 2;
        }

        p = realloc(t->p, cap);
        if (p == NULL) {
            t->failed = 1;
            return;
        }

        t->p = p;
        t->cap = cap;
    }
}


/* a label value in quotes, with \ " and newline escaped */

static void
cs_text_label(cs_text_t *t, const char *s)
{
    cs_text(t, "\"");

    for ( /* void */ ; *s; s++) {
        if (*s == '\\' || *s == '"') {
            cs_text(t, "\\%c", *s);

        } else if (*s == '\n') {
            cs_text(t, "\\n");

        } else {
            cs_text(t, "%c", *s);
        }
    }

    cs_text(t, "\"");
}


static void
cs_text_float(cs_text_t *t, double v)
{
    if (isnan(v)) {
        cs_text(t, "NaN\n");

    } else if (isinf(v)) {
        cs_text(t, "%cInf\n", v > 0 ? '+' : '-');

    } else {
        cs_text(t, "%.15g\n", v);
    }
}


/* ---- the rollout page's JSON ------------------------------------------- */

char *
cs_report_json(const cs_report_t *r, size_t *len)
{
    char         *s;
    size_t        i;
    json_t       *root, *stages, *receipts, *ops, *o;
    json_error_t  e;

    root = json_object();
    if (root == NULL) {
        return NULL;
    }

    json_object_set_new(root, "split", cs_json_text(r->split));
    json_object_set_new(root, "id", cs_json_text(r->id));
    json_object_set_new(root, "dry_run", json_boolean(r->dry_run));
    json_object_set_new(root, "leader", json_boolean(r->leader));
    json_object_set_new(root, "holder", cs_json_text(r->holder));
    json_object_set_new(root, "interval_seconds",
                        json_real((double) r->plan->interval / 1000));
    json_object_set_new(root, "steps", json_integer((json_int_t) r->steps));
    json_object_set_new(root, "step_at",
                        json_real((double) r->step_at / 1000));
    json_object_set_new(root, "step_seconds", json_real(r->step_ms / 1000));
    json_object_set_new(root, "redis_ok", json_boolean(r->redis_ok));
    json_object_set_new(root, "redis_error", cs_json_text(r->redis_err));
    json_object_set_new(root, "nginx",
                        json_pack("{s:I,s:I}",
                                  "answered", (json_int_t) r->answered,
                                  "asked", (json_int_t) r->asked));

    stages = json_array();

    for (i = 0; stages && i < r->plan->nstages; i++) {
        json_array_append_new(stages,
            json_pack("{s:s,s:f,s:f,s:b}",
                      "name", r->plan->stages[i].name,
                      "weight", (double) r->plan->stages[i].weight / 100,
                      "hold_seconds",
                      (double) r->plan->stages[i].hold / 1000,
                      "manual", r->plan->stages[i].manual));
    }

    json_object_set_new(root, "stages", stages);
    json_object_set_new(root, "rollout", cs_json_rollout(r));
    json_object_set_new(root, "judgement", cs_json_judgement(r));
    json_object_set_new(root, "samples", cs_json_samples(r));

    ops = json_object();

    for (i = 0; ops && i < r->nops; i++) {
        json_object_set_new(ops, r->ops[i],
                            json_integer((json_int_t) r->op_counts[i]));
    }

    json_object_set_new(root, "decisions", ops);
    json_object_set_new(root, "counters",
        json_pack("{s:I,s:I,s:I,s:I}",
                  "status_fetch_errors", (json_int_t) r->fetch_errors,
                  "redis_errors", (json_int_t) r->redis_errors,
                  "notifications_sent",
                  (json_int_t) (r->notify ? r->notify->sent : 0),
                  "notifications_failed",
                  (json_int_t) (r->notify ? r->notify->failed : 0)));

    /* the receipts are anyone's text in Redis: one that is not a JSON
     * object is left out, the others written anew (bytes that are not
     * UTF-8 as U+FFFD: a receipt is not lost for a name in Latin-1) */
    receipts = json_array();

    for (i = 0; receipts && i < r->nreceipts; i++) {
        s = cs_utf8(r->receipts[i]);
        o = s ? json_loads(s, 0, &e) : NULL;
        free(s);

        if (o && json_is_object(o)) {
            json_array_append_new(receipts, o);

        } else {
            json_decref(o);
        }
    }

    json_object_set_new(root, "receipts", receipts);

    s = json_dumps(root, JSON_COMPACT);
    json_decref(root);

    if (s) {
        *len = strlen(s);
    }

    return s;
}


static json_t *
cs_json_rollout(const cs_report_t *r)
{
    const cs_stage_t  *st;

    if (!r->known || r->ro.stage >= r->plan->nstages) {
        return json_null();
    }

    st = &r->plan->stages[r->ro.stage];

    /* who stopped it, the nodes that lag and the reason hold text from
     * Redis (any client's "updated_by") and may be cut in the middle
     * of a character: not always UTF-8 */
    return json_pack("{s:s,s:I,s:s,s:f,s:f,s:f,s:f,s:o,s:o,s:o,s:f,s:o}",
        "status", cs_status_name(r->ro.status),
        "stage", (json_int_t) r->ro.stage,
        "stage_name", st->name,
        "weight", (double) r->ro.weight / 100,
        "hold_elapsed_seconds", cs_hold_elapsed(r),
        "hold_required_seconds", (double) st->hold / 1000,
        "stage_started", (double) r->ro.stage_started / 1000,
        "stopped_by", cs_json_text(r->ro.stopped_by),
        "last_receipt", cs_json_text(r->ro.last_receipt),
        "lagging", cs_json_text(r->ro.lagging),
        "violation_since", (double) r->ro.violation_since / 1000,
        "reason", cs_json_text(r->reason));
}


static json_t *
cs_json_judgement(const cs_report_t *r)
{
    size_t             i;
    json_t            *o, *checks;
    const cs_check_t  *c;

    if (!r->judged) {
        return json_null();
    }

    checks = json_array();

    for (i = 0; checks && i < CS_CHECKS; i++) {
        c = &r->j.checks[i];

        json_array_append_new(checks,
            json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o}",
                      "name", cs_check_name(i),
                      "status", cs_verdict_name(c->status),
                      "baseline", cs_json_real(c->baseline),
                      "canary", cs_json_real(c->canary),
                      "threshold", cs_json_real(c->threshold),
                      "p_value", cs_json_real(c->p_value),
                      "alpha", cs_json_real(c->alpha),
                      "events", cs_json_pair_int(c->events[CS_STABLE],
                                                 c->events[CS_CANARY])));
    }

    o = json_pack("{s:f,s:I,s:o,s:o,s:o,s:o,s:o,s:b,s:b,s:b}",
        "at", (double) r->judged_at / 1000,
        "stage", (json_int_t) r->judged_stage,
        "checks", checks,
        "requests", cs_json_pair_int(r->j.requests[CS_STABLE],
                                     r->j.requests[CS_CANARY]),
        "errors", cs_json_pair_int(r->j.errors[CS_STABLE],
                                   r->j.errors[CS_CANARY]),
        "error_percent", cs_json_pair_real(r->j.error_pct[CS_STABLE],
                                           r->j.error_pct[CS_CANARY]),
        "p99_ms", cs_json_pair_real(r->j.p99_ms[CS_STABLE],
                                    r->j.p99_ms[CS_CANARY]),
        "enough", r->j.enough,
        "critical", r->j.critical,
        "violation", r->j.violation);

    return o ? o : json_null();
}


/* columns: {"at": [...], "stable": {"requests": [...], ...}, "canary"} */

static json_t *
cs_json_samples(const cs_report_t *r)
{
    size_t              i, v;
    json_t             *o, *at, *side, *col[5];
    const cs_sample_t  *s;

    static const char  *names[] = {
        "requests", "error_percent", "p50_ms", "p95_ms", "p99_ms"
    };
    static const char  *variants[] = { "stable", "canary" };

    o = json_object();
    at = json_array();

    if (o == NULL || at == NULL) {
        json_decref(o);
        json_decref(at);
        return json_null();
    }

    json_object_set_new(o, "stage", json_integer((json_int_t)
                                                 r->sample_stage));
    json_object_set_new(o, "every_steps", json_integer(r->every));

    for (i = 0; i < r->nsamples; i++) {
        json_array_append_new(at, json_real((double) r->samples[i].at
                                            / 1000));
    }

    json_object_set_new(o, "at", at);

    for (v = 0; v < 2; v++) {
        side = json_object();

        for (i = 0; i < 5; i++) {
            col[i] = json_array();
            json_object_set_new(side, names[i], col[i]);
        }

        for (i = 0; i < r->nsamples; i++) {
            s = &r->samples[i];
            json_array_append_new(col[0],
                                  json_integer((json_int_t) s->requests[v]));
            json_array_append_new(col[1], cs_json_real(s->error_pct[v]));
            json_array_append_new(col[2], cs_json_real(s->p50_ms[v]));
            json_array_append_new(col[3], cs_json_real(s->p95_ms[v]));
            json_array_append_new(col[4], cs_json_real(s->p99_ms[v]));
        }

        json_object_set_new(o, variants[v], side);
    }

    return o;
}


static json_t *
cs_json_pair_real(double stable, double canary)
{
    return json_pack("{s:o,s:o}", "stable", cs_json_real(stable),
                     "canary", cs_json_real(canary));
}


static json_t *
cs_json_pair_int(uint64_t stable, uint64_t canary)
{
    return json_pack("{s:I,s:I}", "stable", (json_int_t) stable,
                     "canary", (json_int_t) canary);
}


/* JSON has no NaN nor infinity: null */

static json_t *
cs_json_real(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}


/* a JSON string of text that may not be UTF-8 (NULL without memory) */

static json_t *
cs_json_text(const char *s)
{
    char    *u;
    json_t  *v;

    u = cs_utf8(s);
    if (u == NULL) {
        return NULL;
    }

    v = json_string(u);
    free(u);

    return v;
}


/*
 * A copy of s with each byte that does not begin a well-formed UTF-8
 * character (a stray continuation byte, a character cut short, an
 * overlong form, a surrogate, over U+10FFFF) as U+FFFD; malloc()ed,
 * NULL without memory.
 */

static char *
cs_utf8(const char *s)
{
    char                 *u, *q;
    size_t                n;
    const unsigned char  *p;

    u = malloc(3 * strlen(s) + 1);
    if (u == NULL) {
        return NULL;
    }

    p = (const unsigned char *) s;
    q = u;

    while (*p) {
        n = cs_utf8_char(p);

        if (n == 0) {
            memcpy(q, "\xef\xbf\xbd", 3);
            q += 3;
            p++;
            continue;
        }

        memcpy(q, p, n);
        q += n;
        p += n;
    }

    *q = '\0';

    return u;
}


/* the length of the well-formed character at p, 0 if there is none
 * (never reads past a NUL) */

static size_t
cs_utf8_char(const unsigned char *p)
{
    unsigned char  lo, hi;

    if (p[0] < 0x80) {
        return 1;
    }

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    }

    if (p[0] >= 0xe0 && p[0] <= 0xef) {
        lo = p[0] == 0xe0 ? 0xa0 : 0x80;
        hi = p[0] == 0xed ? 0x9f : 0xbf;

        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }

    if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        lo = p[0] == 0xf0 ? 0x90 : 0x80;
        hi = p[0] == 0xf4 ? 0x8f : 0xbf;

        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80
               && (p[3] & 0xc0) == 0x80 ? 4 : 0;
    }

    return 0;
}


/* ---- /healthz, /readyz ------------------------------------------------- */

int
cs_report_healthy(const cs_report_t *r, int64_t mono, char *buf,
    size_t size)
{
    char     a[24], b[24], c[24];
    int64_t  ago, limit;

    limit = CS_REPORT_HEALTHY * r->plan->interval;
    ago = mono - r->turned;

    cs_duration_format(ago, a, sizeof(a));
    cs_duration_format(limit, b, sizeof(b));
    cs_duration_format((int64_t) r->step_ms, c, sizeof(c));

    if (r->steps == 0 || ago > limit) {
        snprintf(buf, size, "stuck: the last step began %s%s ago, over %d "
                 "intervals (%s); it took %s\n",
                 strcmp(a, b) == 0 ? "more than " : "", a,
                 CS_REPORT_HEALTHY, b, c);
        return 0;
    }

    snprintf(buf, size, "ok: the last step began %s ago (within %s); it "
             "took %s\n", a, b, c);

    return 1;
}


int
cs_report_ready(const cs_report_t *r, char *buf, size_t size)
{
    int  n;

    if (r->redis_ok && r->answered) {
        snprintf(buf, size, "ready: Redis reached, %zu of %zu nginx "
                 "answered\n", r->answered, r->asked);
        return 1;
    }

    n = snprintf(buf, size, "not ready: ");

    if (!r->redis_ok && n > 0 && (size_t) n < size) {
        n += snprintf(buf + n, size - n, "Redis: %s%s",
                      r->redis_err[0] ? r->redis_err : "not reached yet",
                      r->answered ? "" : "; ");
    }

    if (r->answered == 0 && n > 0 && (size_t) n < size) {
        snprintf(buf + n, size - n, "no nginx answered (0 of %zu) at the "
                 "last reading of the fleet", r->asked);
    }

    n = strlen(buf);

    if ((size_t) n + 1 < size) {
        buf[n] = '\n';
        buf[n + 1] = '\0';
    }

    return 0;
}
