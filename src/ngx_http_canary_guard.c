
/*
 * The in-proxy guard: each worker, once a tick (100ms), looks at each
 * guarded split's window in the zone; the first to see a limit broken
 * trips the split for every worker with one compare-and-swap.  Requests
 * read a single flag.  The worker that syncs Redis then writes the trip
 * there, so the fleet and the sidecar follow.
 *
 * This file is the only writer of the guard_* fields of the zone: a trip,
 * following another nginx's trip, a re-arm, a trip written to Redis or
 * waiting to be.  The Redis adapter picks up a trip to write with
 * ngx_http_canary_guard_to_write(); the sync calls the rest.
 *
 * The guard's state is one word, guard_tripped, moved only by
 * compare-and-swap or by the one process that holds it in a state no
 * one else moves it from:
 *
 *   ARMED -> TRIPPING      a worker's trip, or the syncing worker
 *                          following another nginx's trip (cas, after
 *                          its pid in guard_owner, also cas)
 *   TRIPPING -> PENDING    that worker, once the reason is written
 *   TRIPPING -> WRITTEN    the syncing worker, a followed trip filled in
 *   PENDING -> WRITTEN     the syncing worker: Redis has the trip as
 *                          guard_generation, stored before (cas)
 *   WRITTEN -> PENDING     the syncing worker: Redis lost it (cas)
 *   WRITTEN -> ARMED       the syncing worker: a newer generation than
 *                          guard_generation ends the incident (cas)
 *   any -> ARMED           a reload without Redis (cas)
 *   TRIPPING -> PENDING    any worker, when the process that held it
 *                          (guard_owner) is gone: a worker that died in
 *                          the middle of a trip would otherwise leave
 *                          the split on stable, unwritten, for good (cas)
 *
 * Only WRITTEN can be re-armed by Redis, and guard_generation is read
 * only in WRITTEN, so a sync that runs in the middle of a trip sees
 * TRIPPING or PENDING and leaves it: no interleaving re-arms a trip, as
 * one flag and a generation written after it could (a trip read as an
 * old one).  x86 and the barriers below keep the details of a trip
 * visible before the state that says they are there.
 *
 *     guard [error_rate=PERCENT] [upstream_errors=N] [latency_p99=TIME]
 *           [min_requests=N] [window=TIME];
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_canary_module.h"


static void ngx_http_canary_guard_split(ngx_http_canary_split_t *split,
    time_t now);
static ngx_uint_t ngx_http_canary_guard_gone(ngx_pid_t pid);
static ngx_int_t ngx_http_canary_guard_claim(
    ngx_http_canary_shm_split_t *shs);
static void ngx_http_canary_guard_orphan(ngx_http_canary_split_t *split,
    time_t now);
static void ngx_http_canary_guard_window(ngx_http_canary_shm_split_t *shs,
    ngx_uint_t variant, ngx_http_canary_shm_snap_t *base, ngx_uint_t p99,
    ngx_http_canary_guard_window_t *w);


char *
ngx_http_canary_guard_conf(ngx_conf_t *cf, ngx_http_canary_split_t *split)
{
    int32_t                          pct;
    ngx_int_t                        n;
    ngx_str_t                       *value, v;
    ngx_uint_t                       i;
    ngx_http_canary_guard_limits_t  *g;

    if (split->has_guard) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"guard\" is duplicate in canary_split \"%V\"",
                           &split->name);
        return NGX_CONF_ERROR;
    }

    g = &split->guard;
    g->min_requests = 20;
    g->window = 10;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        v.data = ngx_strlchr(value[i].data, value[i].data + value[i].len,
                             '=');
        if (v.data == NULL) {
            goto invalid;
        }

        v.data++;
        v.len = value[i].data + value[i].len - v.data;

#define ngx_http_canary_param_is(s)                                          \
    (ngx_strncmp(value[i].data, s "=", sizeof(s)) == 0)

        if (ngx_http_canary_param_is("error_rate")) {
            pct = ngx_http_canary_parse_weight(v.data, v.len);
            if (pct <= 0) {
                goto invalid;
            }

            g->error_rate = pct;

        } else if (ngx_http_canary_param_is("upstream_errors")) {
            n = ngx_atoi(v.data, v.len);
            if (n <= 0) {
                goto invalid;
            }

            g->upstream_errors = n;

        } else if (ngx_http_canary_param_is("latency_p99")) {
            n = ngx_parse_time(&v, 0);
            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            g->latency_p99_us = (uint64_t) n * 1000;

        } else if (ngx_http_canary_param_is("min_requests")) {
            n = ngx_atoi(v.data, v.len);
            if (n <= 0) {
                goto invalid;
            }

            g->min_requests = n;

        } else if (ngx_http_canary_param_is("window")) {
            n = ngx_parse_time(&v, 1);
            if (n == NGX_ERROR || n < 1 || n > NGX_HTTP_CANARY_WINDOW_MAX) {
                goto invalid;
            }

            g->window = n;

        } else {
            goto invalid;
        }

#undef ngx_http_canary_param_is
    }

    if (g->error_rate == 0 && g->upstream_errors == 0
        && g->latency_p99_us == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"guard\" in canary_split \"%V\" needs at least "
                           "one of error_rate=, upstream_errors=, "
                           "latency_p99=", &split->name);
        return NGX_CONF_ERROR;
    }

    split->has_guard = 1;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"guard\" parameter \"%V\" in canary_split "
                       "\"%V\"", &value[i], &split->name);
    return NGX_CONF_ERROR;
}


void
ngx_http_canary_guard_check(ngx_http_canary_main_conf_t *cmcf)
{
    time_t                     now;
    ngx_uint_t                 i;
    ngx_http_canary_split_t  **splitp;

    now = ngx_time();
    splitp = cmcf->splits.elts;

    for (i = 0; i < cmcf->splits.nelts; i++) {
        if (splitp[i]->sh->guard_tripped == NGX_HTTP_CANARY_GUARD_TRIPPING) {
            ngx_http_canary_guard_orphan(splitp[i], now);

        } else if (splitp[i]->has_guard && !splitp[i]->sh->guard_tripped) {
            ngx_http_canary_guard_split(splitp[i], now);
        }
    }
}


/* a process that held the guard and is no more */

static ngx_uint_t
ngx_http_canary_guard_gone(ngx_pid_t pid)
{
    return pid != 0 && pid != ngx_pid && kill(pid, 0) == -1
           && ngx_errno == NGX_ESRCH;
}


/*
 * ARMED -> TRIPPING, by the process that first claims guard_owner (its
 * pid, or one of a process that died holding it): so that whoever holds
 * TRIPPING is always known, also a moment after the swap.
 */

static ngx_int_t
ngx_http_canary_guard_claim(ngx_http_canary_shm_split_t *shs)
{
    ngx_pid_t  pid;

    pid = (ngx_pid_t) shs->guard_owner;

    if (pid != 0 && !ngx_http_canary_guard_gone(pid)) {
        return NGX_DECLINED;
    }

    if (!ngx_atomic_cmp_set(&shs->guard_owner, (ngx_atomic_uint_t) pid,
                            (ngx_atomic_uint_t) ngx_pid))
    {
        return NGX_DECLINED;
    }

    if (!ngx_atomic_cmp_set(&shs->guard_tripped, NGX_HTTP_CANARY_GUARD_ARMED,
                            NGX_HTTP_CANARY_GUARD_TRIPPING))
    {
        shs->guard_owner = 0;
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * TRIPPING lasts a few stores; its holder gone (a crash, an OOM kill in
 * between), the trip is finished here with what is known.
 */

static void
ngx_http_canary_guard_orphan(ngx_http_canary_split_t *split, time_t now)
{
    ngx_pid_t                     pid;
    ngx_http_canary_shm_split_t  *shs;

    static const char  why[] = "a worker exited while tripping the guard";

    shs = split->sh;
    pid = (ngx_pid_t) shs->guard_owner;

    if (!ngx_http_canary_guard_gone(pid)) {
        return;
    }

    if (!ngx_atomic_cmp_set(&shs->guard_owner, (ngx_atomic_uint_t) pid,
                            (ngx_atomic_uint_t) ngx_pid))
    {
        return;
    }

    if (shs->guard_since == 0) {
        shs->guard_since = (ngx_atomic_uint_t) now;
    }

    if (shs->guard_reason_len == 0) {
        ngx_memcpy(shs->guard_reason, why, sizeof(why) - 1);
        ngx_memory_barrier();
        shs->guard_reason_len = sizeof(why) - 1;
    }

    shs->guard_owner = 0;
    ngx_memory_barrier();

    if (ngx_atomic_cmp_set(&shs->guard_tripped,
                           NGX_HTTP_CANARY_GUARD_TRIPPING,
                           NGX_HTTP_CANARY_GUARD_PENDING))
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "canary guard of split \"%V\": process %P exited "
                      "in the middle of a trip; the trip is finished and "
                      "written by this worker", &split->name, pid);
    }
}


static void
ngx_http_canary_guard_split(ngx_http_canary_split_t *split, time_t now)
{
    size_t                           len;
    ngx_http_canary_shm_snap_t       base, *bp;
    ngx_http_canary_shm_split_t     *shs;
    ngx_http_canary_guard_limits_t  *lim;
    ngx_http_canary_guard_window_t   sw, cw;
    char                             why[NGX_HTTP_CANARY_REASON_LEN];

    shs = split->sh;
    lim = &split->guard;

    /* after a re-arm, the failures that tripped it are not counted again */
    bp = ngx_http_canary_window_base(shs, now, lim->window,
                                     (time_t) shs->guard_armed_at, &base);

    if (bp == NULL && shs->guard_armed_at) {
        return;
    }

    ngx_http_canary_guard_window(shs, NGX_HTTP_CANARY_CANARY, bp,
                                 lim->latency_p99_us != 0, &cw);

    if (cw.requests < lim->min_requests) {
        return;
    }

    ngx_http_canary_guard_window(shs, NGX_HTTP_CANARY_STABLE, bp,
                                 lim->latency_p99_us != 0, &sw);

    if (!ngx_http_canary_guard_broken(lim, &sw, &cw, why, sizeof(why))) {
        return;
    }

    /* one worker wins the trip; the others see the state on their tick */
    if (ngx_http_canary_guard_claim(shs) != NGX_OK) {
        return;
    }

    len = ngx_strlen(why);

    shs->guard_since = (ngx_atomic_uint_t) now;
    shs->guard_window[NGX_HTTP_CANARY_STABLE] = sw;
    shs->guard_window[NGX_HTTP_CANARY_CANARY] = cw;
    shs->guard_seen = 1;
    shs->guard_reason_len = 0;
    ngx_memory_barrier();
    ngx_memcpy(shs->guard_reason, why, len);
    ngx_memory_barrier();
    shs->guard_reason_len = len;
    ngx_memory_barrier();

    /* a plain store: only this worker moves the state from TRIPPING */
    shs->guard_owner = 0;
    shs->guard_tripped = NGX_HTTP_CANARY_GUARD_PENDING;

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "canary guard tripped for split \"%V\": %s; "
                  "every request goes to stable \"%V\"",
                  &split->name, why,
                  &split->upstream[NGX_HTTP_CANARY_STABLE]);
}


static void
ngx_http_canary_guard_window(ngx_http_canary_shm_split_t *shs,
    ngx_uint_t variant, ngx_http_canary_shm_snap_t *base, ngx_uint_t p99,
    ngx_http_canary_guard_window_t *w)
{
    ngx_uint_t                          b;
    ngx_http_canary_shm_snap_variant_t  d;
    uint64_t                            counts[NGX_HTTP_CANARY_HIST_BUCKETS];

    /* the same window as on the status page */
    ngx_http_canary_window(shs, variant, base, &d);

    w->requests = d.requests;
    w->upstream_errors = d.upstream_errors;
    w->errors = (uint64_t) d.upstream_errors + d.responses_5xx;
    w->p99_us = 0;

    if (!p99) {
        return;
    }

    for (b = 0; b < NGX_HTTP_CANARY_HIST_BUCKETS; b++) {
        counts[b] = d.latency[b];
    }

    w->p99_us = (uint64_t) ngx_http_canary_hist_quantile(counts, 0.99);
}


/*
 * Another nginx's guard tripped and wrote it (by is its updated_by):
 * weight 0 alone would still send pinned tenants, overrides, cookies and
 * cohorts to the canary here, so trip as it did, all the way, until a
 * newer generation re-arms it.
 */

void
ngx_http_canary_guard_follow(ngx_http_canary_split_t *split,
    uint64_t generation, const u_char *by, size_t len)
{
    u_char                       *p, *last, ch;
    size_t                        i;
    ngx_http_canary_shm_split_t  *shs;

    shs = split->sh;

    if (ngx_http_canary_guard_claim(shs) != NGX_OK) {
        return;
    }

    shs->guard_seen = 0;
    shs->guard_generation = (ngx_atomic_uint_t) generation;
    shs->guard_since = (ngx_atomic_uint_t) ngx_time();
    shs->guard_reason_len = 0;
    ngx_memory_barrier();

    p = shs->guard_reason;
    last = p + NGX_HTTP_CANARY_REASON_LEN;

    p = ngx_slprintf(p, last, "tripped by ");

    /* the writer's name, plain bytes only: the reason goes into JSON */
    for (i = 0; i < len && p < last; i++) {
        ch = by[i];
        *p++ = ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
                || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-'
                || ch == '_' || ch == ':') ? ch : '?';
    }

    p = ngx_slprintf(p, last, " (generation %uL in Redis)", generation);

    ngx_memory_barrier();
    shs->guard_reason_len = p - shs->guard_reason;
    ngx_memory_barrier();

    /* in Redis already: not written again */
    shs->guard_owner = 0;
    shs->guard_tripped = NGX_HTTP_CANARY_GUARD_WRITTEN;

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "canary guard tripped for split \"%V\": %*s; every "
                  "request goes to stable \"%V\"",
                  &split->name, (size_t) shs->guard_reason_len,
                  shs->guard_reason,
                  &split->upstream[NGX_HTTP_CANARY_STABLE]);
}


/*
 * Redis says the incident is over (canary-ctl reset) as of generation:
 * the guard re-arms if that is newer than the write of its trip.  A trip
 * not yet written stays.
 */

void
ngx_http_canary_guard_rearm(ngx_http_canary_split_t *split,
    uint64_t generation)
{
    ngx_http_canary_shm_split_t  *shs;

    shs = split->sh;

    if (shs->guard_tripped != NGX_HTTP_CANARY_GUARD_WRITTEN
        || generation <= shs->guard_generation)
    {
        return;
    }

    shs->guard_armed_at = (ngx_atomic_uint_t) ngx_time();
    ngx_memory_barrier();

    if (!ngx_atomic_cmp_set(&shs->guard_tripped,
                            NGX_HTTP_CANARY_GUARD_WRITTEN,
                            NGX_HTTP_CANARY_GUARD_ARMED))
    {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "canary guard re-armed for split \"%V\" by "
                  "generation %uL", &split->name, generation);
}


/*
 * A reload without Redis re-arms the guard: nobody else could.  A worker
 * of the old configuration may be tripping it at this very moment: its
 * trip then stays, as one made just after the reload would.
 */

void
ngx_http_canary_guard_reload(ngx_http_canary_shm_split_t *shs)
{
    ngx_atomic_uint_t  state;

    for ( ;; ) {
        state = shs->guard_tripped;

        if (state == NGX_HTTP_CANARY_GUARD_ARMED) {
            return;
        }

        /* after a re-arm, the failures that tripped it count no more */
        shs->guard_armed_at = (ngx_atomic_uint_t) ngx_time();
        shs->guard_owner = 0;
        ngx_memory_barrier();

        if (ngx_atomic_cmp_set(&shs->guard_tripped, state,
                               NGX_HTTP_CANARY_GUARD_ARMED))
        {
            return;
        }
    }
}


/*
 * A trip waiting to be written to Redis, copied for the Redis adapter;
 * NGX_DECLINED: none.
 */

ngx_int_t
ngx_http_canary_guard_to_write(ngx_http_canary_split_t *split,
    ngx_http_canary_guard_trip_t *trip)
{
    ngx_http_canary_shm_split_t  *shs;

    shs = split->sh;

    if (shs->guard_tripped != NGX_HTTP_CANARY_GUARD_PENDING) {
        return NGX_DECLINED;
    }

    ngx_memory_barrier();

    trip->since = (time_t) shs->guard_since;
    trip->reason_len = ngx_min((size_t) shs->guard_reason_len,
                               NGX_HTTP_CANARY_REASON_LEN);
    ngx_memcpy(trip->reason, shs->guard_reason, trip->reason_len);

    return NGX_OK;
}


/* Redis has the trip as this generation: newer ones may re-arm it */

void
ngx_http_canary_guard_written(ngx_http_canary_split_t *split,
    uint64_t generation)
{
    ngx_http_canary_shm_split_t  *shs;

    shs = split->sh;

    if (shs->guard_tripped != NGX_HTTP_CANARY_GUARD_PENDING) {
        return;
    }

    shs->guard_generation = (ngx_atomic_uint_t) generation;
    ngx_memory_barrier();

    (void) ngx_atomic_cmp_set(&shs->guard_tripped,
                              NGX_HTTP_CANARY_GUARD_PENDING,
                              NGX_HTTP_CANARY_GUARD_WRITTEN);
}


/* a Redis without the trip (flushed, another instance): write it again */

void
ngx_http_canary_guard_unwritten(ngx_http_canary_split_t *split)
{
    ngx_http_canary_shm_split_t  *shs;

    shs = split->sh;

    (void) ngx_atomic_cmp_set(&shs->guard_tripped,
                              NGX_HTTP_CANARY_GUARD_WRITTEN,
                              NGX_HTTP_CANARY_GUARD_PENDING);
}
