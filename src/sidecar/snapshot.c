
/*
 * Evidence snapshots: JSON (jansson), zlib, the --evidence-dir file.
 */


#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <zlib.h>

#include "snapshot.h"
#include "receipts.h"


static json_t *cs_snapshot_side(const cs_window_t *w);
static json_t *cs_snapshot_number(double v);


void
cs_stage_nodes_reset(cs_stage_nodes_t *sn, int64_t stage_started,
    int64_t now)
{
    size_t  i;

    for (i = 0; i < sn->n; i++) {
        free(sn->nodes[i].name);
    }

    sn->n = 0;
    sn->stage_started = stage_started;
    sn->since = now;
}


int
cs_stage_nodes_add(cs_stage_nodes_t *sn, const char *name,
    const cs_window_t *delta)
{
    size_t            i;
    cs_stage_node_t  *p;

    for (i = 0; i < sn->n; i++) {
        if (strcmp(sn->nodes[i].name, name) == 0) {
            break;
        }
    }

    if (i == sn->n) {
        if (sn->n == sn->cap) {
            p = realloc(sn->nodes, (sn->cap ? 2 * sn->cap : 8)
                                   * sizeof(cs_stage_node_t));
            if (p == NULL) {
                return -1;
            }

            sn->nodes = p;
            sn->cap = sn->cap ? 2 * sn->cap : 8;
        }

        memset(&sn->nodes[i], 0, sizeof(cs_stage_node_t));

        sn->nodes[i].name = strdup(name);
        if (sn->nodes[i].name == NULL) {
            return -1;
        }

        sn->n++;
    }

    cs_window_add(&sn->nodes[i].v[CS_STABLE], &delta[CS_STABLE]);
    cs_window_add(&sn->nodes[i].v[CS_CANARY], &delta[CS_CANARY]);

    return 0;
}


void
cs_stage_nodes_free(cs_stage_nodes_t *sn)
{
    cs_stage_nodes_reset(sn, 0, 0);
    free(sn->nodes);
    sn->nodes = NULL;
    sn->cap = 0;
}


unsigned char *
cs_snapshot(const cs_plan_t *plan, const char *split, const cs_rollout_t *ro,
    const cs_decision_t *d, const char *id, int64_t now,
    const cs_stage_nodes_t *sn, size_t *len, char **json)
{
    int             rc;
    char            ts[32], *text, *release;
    size_t          i, tlen;
    uLongf          zlen;
    json_t         *s, *ops, *nodes, *node, *ev, *sh;
    unsigned char  *z;

    s = json_object();
    if (s == NULL) {
        return NULL;
    }

    json_object_set_new(s, "receipt_id", json_string(id));
    json_object_set_new(s, "split", json_string(split));
    json_object_set_new(s, "timestamp",
                        json_string(cs_iso8601(now, ts, sizeof(ts))));

    ops = json_array();

    for (i = 0; i < d->nops; i++) {
        json_array_append_new(ops, json_string(d->ops[i]));
    }

    json_object_set_new(s, "operations", ops);

    release = cs_release_json(plan);
    json_object_set_new(s, "release", release
                        ? json_loads(release, 0, NULL) : json_null());
    free(release);

    json_object_set_new(s, "stage", json_string(
        plan->stages[d->from_stage >= 0 ? d->from_stage : d->to_stage].name));
    json_object_set_new(s, "stage_started",
                        ro->status == CS_STATUS_NEW ? json_null()
                        : json_string(cs_iso8601(ro->stage_started, ts,
                                                 sizeof(ts))));
    json_object_set_new(s, "from_weight",
                        json_real(d->from_weight / 100.0));
    json_object_set_new(s, "to_weight", json_real(d->to_weight / 100.0));
    json_object_set_new(s, "reason", json_string(d->reason));
    json_object_set_new(s, "histogram_buckets",
                        json_integer(CS_HIST_BUCKETS));

    /* what the judge summed over the stage: the decision's evidence */
    if (d->has_judgement) {
        ev = json_object();
        json_object_set_new(ev, "stable",
                            cs_snapshot_side(&d->judged.v[CS_STABLE]));
        json_object_set_new(ev, "canary",
                            cs_snapshot_side(&d->judged.v[CS_CANARY]));
        json_object_set_new(s, "stage_evidence", ev);

    } else {
        json_object_set_new(s, "stage_evidence", json_null());
    }

    json_object_set_new(s, "requests",
        json_pack("{s:I,s:I}",
                  "stable", (json_int_t) d->j.requests[CS_STABLE],
                  "canary", (json_int_t) d->j.requests[CS_CANARY]));
    json_object_set_new(s, "errors",
        json_pack("{s:I,s:I}",
                  "stable", (json_int_t) d->j.errors[CS_STABLE],
                  "canary", (json_int_t) d->j.errors[CS_CANARY]));
    json_object_set_new(s, "checks", cs_receipt_checks_json(d));

    /* a shadow stage's comparisons, summed over the fleet */
    sh = cs_receipt_shadow_json(d);

    if (sh != NULL) {
        json_object_set_new(s, "shadow", sh);
    }

    /* per nginx: what this process read of the stage, since nodes_since */
    nodes = json_array();

    for (i = 0; sn && d->has_judgement && i < sn->n; i++) {
        node = json_object();
        json_object_set_new(node, "node", json_string(sn->nodes[i].name));
        json_object_set_new(node, "stable",
                            cs_snapshot_side(&sn->nodes[i].v[CS_STABLE]));
        json_object_set_new(node, "canary",
                            cs_snapshot_side(&sn->nodes[i].v[CS_CANARY]));
        json_array_append_new(nodes, node);
    }

    json_object_set_new(s, "nodes_since",
                        sn && d->has_judgement && sn->since
                        ? json_string(cs_iso8601(sn->since, ts, sizeof(ts)))
                        : json_null());
    json_object_set_new(s, "nodes", nodes);

    text = json_dumps(s, JSON_COMPACT | JSON_REAL_PRECISION(6)
                         | JSON_PRESERVE_ORDER);
    json_decref(s);

    if (text == NULL) {
        return NULL;
    }

    tlen = strlen(text);
    zlen = compressBound(tlen);

    z = malloc(zlen);
    if (z == NULL) {
        free(text);
        return NULL;
    }

    rc = compress2(z, &zlen, (const Bytef *) text, tlen, Z_BEST_COMPRESSION);

    if (rc != Z_OK) {
        free(text);
        free(z);
        return NULL;
    }

    if (json) {
        *json = text;

    } else {
        free(text);
    }

    *len = zlen;

    return z;
}


/* one side's counters, its quantiles, its histogram as [bucket, count]
 * pairs of the buckets that count */

static json_t *
cs_snapshot_side(const cs_window_t *w)
{
    size_t   i;
    json_t  *o, *h;

    o = json_object();

    json_object_set_new(o, "requests", json_integer(w->requests));
    json_object_set_new(o, "errors_5xx", json_integer(w->errors_5xx));
    json_object_set_new(o, "upstream_errors",
                        json_integer(w->upstream_errors));
    json_object_set_new(o, "p50_ms",
                        cs_snapshot_number(cs_hist_quantile_ms(w->counts,
                                                               0.50)));
    json_object_set_new(o, "p95_ms",
                        cs_snapshot_number(cs_hist_quantile_ms(w->counts,
                                                               0.95)));
    json_object_set_new(o, "p99_ms",
                        cs_snapshot_number(cs_hist_quantile_ms(w->counts,
                                                               0.99)));

    h = json_array();

    for (i = 0; i < CS_HIST_BUCKETS; i++) {
        if (w->counts[i]) {
            json_array_append_new(h, json_pack("[I,I]", (json_int_t) i,
                                               (json_int_t) w->counts[i]));
        }
    }

    json_object_set_new(o, "histogram", h);

    return o;
}


static json_t *
cs_snapshot_number(double v)
{
    if (!isfinite(v)) {
        return json_null();
    }

    return json_real(round(v * 1000) / 1000);
}


int
cs_snapshot_file(const char *dir, const char *id, const unsigned char *p,
    size_t len, char *err, size_t errlen)
{
    int      fd;
    char     path[4096], tmp[4096];
    ssize_t  w;

    snprintf(path, sizeof(path), "%s/%s.json.z", dir, id);
    snprintf(tmp, sizeof(tmp), "%s/.%s.json.z.tmp", dir, id);

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }

    w = write(fd, p, len);

    if (w != (ssize_t) len) {
        snprintf(err, errlen, "%s: %s", tmp,
                 w < 0 ? strerror(errno) : "short write");
        close(fd);
        unlink(tmp);
        return -1;
    }

    if (close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }

    return 0;
}
