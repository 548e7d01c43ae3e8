
/*
 * Metrics: the log phase adds each routed request to its variant's
 * counters with a handful of atomic adds; a timer in every worker copies
 * the counters into a per-second ring once a second (the first worker
 * to get there wins), from which any window up to 60s is one subtraction.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_canary_module.h"


static ngx_int_t ngx_http_canary_log_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_canary_upstream_failed(ngx_http_request_t *r,
    ngx_uint_t status);
static void ngx_http_canary_record_upstream(ngx_http_request_t *r,
    ngx_http_canary_shm_stats_t *st);
/* not static: see its definition; hidden: no PLT */
NGX_HTTP_CANARY_HIDDEN
void ngx_http_canary_record_cohort(ngx_http_canary_ctx_t *ctx,
    ngx_uint_t status);
static ngx_http_canary_shm_cohort_t *ngx_http_canary_cohort_moved(
    ngx_http_canary_shm_split_t *shs, ngx_str_t *name);
static void ngx_http_canary_snapshot_split(ngx_http_canary_shm_split_t *shs,
    time_t now);
static void ngx_http_canary_report_redis(ngx_http_canary_main_conf_t *cmcf,
    ngx_http_canary_redis_report_t *rr);
static size_t ngx_http_canary_report_text(u_char *dst, size_t size,
    u_char *src, ngx_atomic_t *len);
static void ngx_http_canary_report_guard_now(ngx_http_canary_split_t *split,
    time_t now, ngx_http_canary_guard_report_t *gr);


ngx_int_t
ngx_http_canary_init_metrics(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_canary_log_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_canary_log_handler(ngx_http_request_t *r)
{
    ngx_int_t                      ms;
    ngx_uint_t                     status;
    ngx_time_t                    *tp;
    ngx_atomic_int_t               us;
    ngx_http_canary_ctx_t         *ctx;
    ngx_http_canary_shm_stats_t   *st;

    /*
     * a client request is counted once, with what the client got: its
     * subrequests (auth_request, SSI, mirror) reach here too under
     * "log_subrequest on", and share its decision; one under another
     * split (an auth_request to a service with a rollout of its own)
     * decided for itself and is counted on that split
     */
    ctx = ngx_http_get_module_ctx(r, ngx_http_canary_module);

    /* what get_ctx() and own_ctx() return first, without the calls */
    if (ctx == NULL) {
        ctx = (r == r->main) ? ngx_http_canary_get_ctx(r)
                             : ngx_http_canary_own_ctx(r);
    }

    /* a shadow (ngx_http_canary_shadow.c) is no canary traffic */
    if (ctx == NULL || ctx->shadow) {
        return NGX_OK;
    }

    /*
     * The split's slot, even if a reload removed the split while this
     * request ran in an old worker: no slot is freed, nor given to
     * another split, while a worker of a configuration that had it lives
     * (zone.c).
     */
    st = &ctx->split->sh->stats[ctx->variant];

    (void) ngx_atomic_fetch_add(&st->requests, 1);

    status = r->err_status ? r->err_status : r->headers_out.status;

    if (ngx_http_canary_upstream_failed(r, status)) {
        (void) ngx_atomic_fetch_add(&st->upstream_errors, 1);

    } else if (status >= 100 && status < 600) {
        (void) ngx_atomic_fetch_add(&st->responses[status / 100 - 1], 1);
    }

    /*
     * the cohort whose weight decided ($canary_reason "cohort", or
     * "random" without a key): its slot is the split's, never freed,
     * but a reload that changed the cohorts may have given it to another
     * name while the request ran: then the name is looked up again (or
     * the request is not counted if the cohort is gone), never counted
     * on another cohort.  A 5xx here is any the client got, upstream
     * failures included.
     */
    if (ctx->cohort) {
        ngx_http_canary_record_cohort(ctx, status);
    }

    /* nginx keeps request times in milliseconds */
    tp = ngx_timeofday();

    ms = (ngx_int_t) ((tp->sec - r->start_sec) * 1000
                      + (tp->msec - r->start_msec));
    us = (ngx_atomic_int_t) ngx_max(ms, 0) * 1000;

    (void) ngx_atomic_fetch_add(&st->latency[ngx_http_canary_hist_index(us)],
                                1);
    (void) ngx_atomic_fetch_add(&st->latency_sum_us, us);

    ngx_http_canary_record_upstream(r, st);

    return NGX_OK;
}


/*
 * Not static, so that the compiler keeps it out of the log handler: a
 * request without a cohort pays one test.
 */

void
ngx_http_canary_record_cohort(ngx_http_canary_ctx_t *ctx, ngx_uint_t status)
{
    ngx_http_canary_shm_cohort_t  *shc;

    shc = ctx->cohort;

    if (shc->name_len != ctx->cohort_name.len
        || ngx_memcmp(shc->name, ctx->cohort_name.data, shc->name_len) != 0)
    {
        shc = ngx_http_canary_cohort_moved(ctx->split->sh,
                                           &ctx->cohort_name);
    }

    if (shc) {
        (void) ngx_atomic_fetch_add(&shc->requests[ctx->variant], 1);

        if (status >= 500 && status < 600) {
            (void) ngx_atomic_fetch_add(&shc->responses_5xx[ctx->variant],
                                        1);
        }
    }
}


/* a request's cohort after a reload moved it (rare): by its name */

static ngx_http_canary_shm_cohort_t *
ngx_http_canary_cohort_moved(ngx_http_canary_shm_split_t *shs,
    ngx_str_t *name)
{
    ngx_uint_t  i, n;

    n = ngx_min(shs->ncohorts, NGX_HTTP_CANARY_COHORTS_MAX);

    for (i = 0; i < n; i++) {
        if (shs->cohorts[i].name_len == name->len
            && ngx_memcmp(shs->cohorts[i].name, name->data, name->len) == 0)
        {
            return &shs->cohorts[i];
        }
    }

    return NULL;
}


/*
 * An upstream failure is a 502/503/504 that nginx made itself because
 * no upstream response header arrived: connect error, timeout, no live
 * upstream.  A 5xx the origin sent has a header time and is not one.
 */

static ngx_uint_t
ngx_http_canary_upstream_failed(ngx_http_request_t *r, ngx_uint_t status)
{
    ngx_http_upstream_state_t  *state;

    if (r->upstream_states && r->upstream_states->nelts) {
        state = r->upstream_states->elts;
        state = &state[r->upstream_states->nelts - 1];

        if (state->header_time != (ngx_msec_t) -1) {
            return 0;
        }

        /* the last try's own status: an error_page "=200" may hide it */

        if (state->status) {
            status = state->status;
        }
    }

    return status == NGX_HTTP_BAD_GATEWAY
           || status == NGX_HTTP_SERVICE_UNAVAILABLE
           || status == NGX_HTTP_GATEWAY_TIME_OUT;
}


static void
ngx_http_canary_record_upstream(ngx_http_request_t *r,
    ngx_http_canary_shm_stats_t *st)
{
    ngx_uint_t                  i, tries;
    ngx_atomic_int_t            us;
    ngx_http_upstream_state_t  *state;

    if (r->upstream_states == NULL || r->upstream_states->nelts == 0) {
        return;
    }

    state = r->upstream_states->elts;
    us = 0;
    tries = 0;

    /* all tries together, as $upstream_response_time lists them */
    for (i = 0; i < r->upstream_states->nelts; i++) {
        if (state[i].peer == NULL
            || state[i].response_time == (ngx_msec_t) -1)
        {
            continue;
        }

        us += (ngx_atomic_int_t) state[i].response_time * 1000;
        tries++;
    }

    if (tries == 0) {
        return;
    }

    (void) ngx_atomic_fetch_add(
                   &st->upstream_latency[ngx_http_canary_hist_index(us)], 1);
    (void) ngx_atomic_fetch_add(&st->upstream_sum_us, us);
    (void) ngx_atomic_fetch_add(&st->upstream_count, 1);
}


void
ngx_http_canary_snapshot(ngx_http_canary_main_conf_t *cmcf)
{
    time_t                     now;
    ngx_uint_t                 i;
    ngx_atomic_uint_t          last;
    ngx_http_canary_split_t  **splitp;

    now = ngx_time();
    splitp = cmcf->splits.elts;

    for (i = 0; i < cmcf->splits.nelts; i++) {
        last = splitp[i]->sh->snap_sec;

        /* one worker a second wins the slot */
        if ((time_t) last == now
            || !ngx_atomic_cmp_set(&splitp[i]->sh->snap_sec, last,
                                   (ngx_atomic_uint_t) now))
        {
            continue;
        }

        ngx_http_canary_snapshot_split(splitp[i]->sh, now);
    }
}


static void
ngx_http_canary_snapshot_split(ngx_http_canary_shm_split_t *shs, time_t now)
{
    ngx_uint_t                   v;
    ngx_http_canary_shm_snap_t  *slot;

    slot = &shs->window[now % NGX_HTTP_CANARY_WINDOW_SLOTS];

    /* readers skip a slot whose second is 0 or changed under them */
    slot->sec = 0;
    ngx_memory_barrier();

    for (v = 0; v < NGX_HTTP_CANARY_VARIANTS; v++) {
        ngx_http_canary_window(shs, v, NULL, &slot->v[v]);
    }

    ngx_memory_barrier();
    slot->sec = (ngx_atomic_uint_t) now;
}


/*
 * The snapshot a window of "seconds" starts from: the newest one taken
 * at or before now - seconds, else the oldest one there is; only ones
 * taken after the second not_before (0: no bound).  Copied out, so that a
 * writer taking the slot over cannot tear it.  NULL when the window goes
 * back to before the split's counters began (it starts at zero then), or
 * when there is no snapshot after not_before.
 */

ngx_http_canary_shm_snap_t *
ngx_http_canary_window_base(ngx_http_canary_shm_split_t *shs, time_t now,
    ngx_uint_t seconds, time_t not_before, ngx_http_canary_shm_snap_t *copy)
{
    time_t                       target, sec, best, oldest;
    ngx_uint_t                   i, pick, oldest_i, tries;
    ngx_http_canary_shm_snap_t  *slot;

    target = now - (time_t) seconds;

    if (not_before == 0 && shs->created >= target) {
        return NULL;
    }

    for (tries = 0; tries < 3; tries++) {

        best = 0;
        oldest = 0;
        pick = 0;
        oldest_i = 0;

        for (i = 0; i < NGX_HTTP_CANARY_WINDOW_SLOTS; i++) {
            sec = (time_t) shs->window[i].sec;

            if (sec == 0 || sec > now || (not_before && sec <= not_before)
                || sec <= now - NGX_HTTP_CANARY_WINDOW_SLOTS)
            {
                continue;
            }

            if (sec <= target && sec > best) {
                best = sec;
                pick = i;
            }

            if (oldest == 0 || sec < oldest) {
                oldest = sec;
                oldest_i = i;
            }
        }

        if (best == 0) {
            if (oldest == 0) {
                return NULL;
            }

            best = oldest;
            pick = oldest_i;
        }

        slot = &shs->window[pick];

        ngx_memcpy(copy, slot, sizeof(ngx_http_canary_shm_snap_t));
        ngx_memory_barrier();

        if ((time_t) copy->sec == best && (time_t) slot->sec == best) {
            return copy;
        }
    }

    return NULL;
}


/*
 * The counters of one variant in a window: the cumulative counters as
 * read now less the snapshot the window starts from (base NULL: since
 * the counters began), modulo 2^32, exact while fewer than 2^32 pass in
 * the window.  With base NULL it is what a snapshot keeps.
 */

void
ngx_http_canary_window(ngx_http_canary_shm_split_t *shs, ngx_uint_t variant,
    ngx_http_canary_shm_snap_t *base, ngx_http_canary_shm_snap_variant_t *w)
{
    ngx_uint_t                           b;
    ngx_http_canary_shm_stats_t         *st;
    ngx_http_canary_shm_snap_variant_t  *sv;

    st = &shs->stats[variant];
    sv = base ? &base->v[variant] : NULL;

    w->requests = (uint32_t) st->requests - (sv ? sv->requests : 0);
    w->responses_5xx = (uint32_t) st->responses[4]
                       - (sv ? sv->responses_5xx : 0);
    w->upstream_errors = (uint32_t) st->upstream_errors
                         - (sv ? sv->upstream_errors : 0);

    for (b = 0; b < NGX_HTTP_CANARY_HIST_BUCKETS; b++) {
        w->latency[b] = (uint32_t) st->latency[b]
                        - (sv ? sv->latency[b] : 0);
    }
}


ngx_int_t
ngx_http_canary_report(ngx_http_request_t *r,
    ngx_http_canary_main_conf_t *cmcf, ngx_str_t *name, ngx_uint_t window,
    ngx_http_canary_report_t *rep)
{
    time_t                     now;
    ngx_uint_t                 i, n;
    ngx_http_canary_split_t  **splitp;

    now = ngx_time();

    ngx_memzero(rep, sizeof(ngx_http_canary_report_t));

    rep->now = now;
    rep->zone_name.data = cmcf->shm_zone->shm.name.data;
    rep->zone_name.len = cmcf->shm_zone->shm.name.len;
    rep->zone_size = cmcf->shm_zone->shm.size;
    rep->zone_used = cmcf->shm_zone->shm.size
                     - cmcf->shpool->pfree * ngx_pagesize;

    if (cmcf->redis) {
        ngx_http_canary_report_redis(cmcf, &rep->redis);
    }

    splitp = cmcf->splits.elts;

    rep->splits = ngx_pcalloc(r->pool, cmcf->splits.nelts
                                   * sizeof(ngx_http_canary_split_report_t));
    if (rep->splits == NULL) {
        return NGX_ERROR;
    }

    n = 0;

    for (i = 0; i < cmcf->splits.nelts; i++) {
        if (name->len
            && (name->len != splitp[i]->name.len
                || ngx_strncmp(name->data, splitp[i]->name.data, name->len)
                   != 0))
        {
            continue;
        }

        ngx_http_canary_report_split(splitp[i], window, now,
                                     &rep->splits[n]);

        /* with Redis a trip is an incident, whatever nginx.conf says now */
        if (rep->splits[n].guard.tripped) {
            rep->splits[n].guard.stays_until = cmcf->redis
                                               ? "canary-ctl reset"
                                               : "reload";
        }

        n++;
    }

    rep->nsplits = n;

    return (name->len && n == 0) ? NGX_DECLINED : NGX_OK;
}


static void
ngx_http_canary_report_redis(ngx_http_canary_main_conf_t *cmcf,
    ngx_http_canary_redis_report_t *rr)
{
    size_t                        n;
    ngx_http_canary_shm_redis_t  *sr;

    sr = &cmcf->sh->redis;

    rr->configured = 1;
    rr->connected = sr->connected ? 1 : 0;
    rr->address.data = cmcf->redis->address.data;
    rr->address.len = cmcf->redis->address.len;
    rr->prefix.data = cmcf->redis->prefix.data;
    rr->prefix.len = cmcf->redis->prefix.len;
    rr->node.data = cmcf->redis->node.data;
    rr->node.len = cmcf->redis->node.len;
    rr->master.data = cmcf->redis->master.data;
    rr->master.len = cmcf->redis->master.len;

    /* sentinel=: the master's address, once the sentinels gave it */
    if (cmcf->redis->sentinels) {
        n = ngx_http_canary_report_text(rr->master_address,
                                        sizeof(rr->master_address),
                                        sr->address, &sr->address_len);
        if (n) {
            rr->address.data = rr->master_address;
            rr->address.len = n;
        }
    }
    rr->last_sync = (time_t) sr->last_sync;
    rr->error_time = (time_t) sr->error_time;
    rr->error_len = ngx_http_canary_report_text(rr->error, sizeof(rr->error),
                                                sr->error, &sr->error_len);
}


/* a text field the syncing worker may be rewriting: copy, then recheck */

static size_t
ngx_http_canary_report_text(u_char *dst, size_t size, u_char *src,
    ngx_atomic_t *len)
{
    size_t      n;
    ngx_uint_t  tries;

    for (tries = 0; tries < 3; tries++) {
        n = ngx_min((size_t) *len, size);
        ngx_memory_barrier();
        ngx_memcpy(dst, src, n);
        ngx_memory_barrier();

        if (n == ngx_min((size_t) *len, size)) {
            return n;
        }
    }

    return 0;
}


/* one split into a zeroed report: the status page's, a node record's */

void
ngx_http_canary_report_split(ngx_http_canary_split_t *split,
    ngx_uint_t window, time_t now, ngx_http_canary_split_report_t *sr)
{
    ngx_uint_t                          v, b;
    ngx_http_canary_shm_snap_t          base, *bp;
    ngx_http_canary_shm_split_t        *shs;
    ngx_http_canary_shm_stats_t        *st;
    ngx_http_canary_variant_report_t   *vr;
    ngx_http_canary_shm_snap_variant_t  w;

    shs = split->sh;

    sr->name.data = split->name.data;
    sr->name.len = split->name.len;
    sr->weight = (uint32_t) shs->weight;
    sr->enabled = shs->enabled ? 1 : 0;
    sr->generation = shs->generation;
    sr->created = shs->created;
    sr->source = shs->source == NGX_HTTP_CANARY_SOURCE_REDIS ? "redis"
                                                             : "conf";

    sr->state_len = ngx_http_canary_report_text(sr->state, sizeof(sr->state),
                                                shs->state, &shs->state_len);
    sr->updated_by_len = ngx_http_canary_report_text(sr->updated_by,
                             sizeof(sr->updated_by), shs->updated_by,
                             &shs->updated_by_len);
    sr->updated_at_len = ngx_http_canary_report_text(sr->updated_at,
                             sizeof(sr->updated_at), shs->updated_at,
                             &shs->updated_at_len);
    sr->pins[0] = shs->npins[0];
    sr->pins[1] = shs->npins[1];
    sr->rolled_back = shs->rolled_back ? 1 : 0;

    sr->guard.configured = split->has_guard;
    sr->guard.tripped = shs->guard_tripped ? 1 : 0;
    sr->guard.since = (time_t) shs->guard_since;
    sr->guard.limits = split->guard;
    sr->guard.seen = sr->guard.tripped && shs->guard_seen;

    if (sr->guard.seen) {
        sr->guard.window[0] = shs->guard_window[0];
        sr->guard.window[1] = shs->guard_window[1];
    }

    if (split->has_guard) {
        ngx_http_canary_report_guard_now(split, now, &sr->guard);
    }

    (void) ngx_http_canary_report_text((u_char *) sr->guard.reason,
                                       sizeof(sr->guard.reason) - 1,
                                       shs->guard_reason,
                                       &shs->guard_reason_len);

    ngx_http_canary_shadow_report(split, &sr->shadow);

    sr->ncohorts = ngx_min(shs->ncohorts, NGX_HTTP_CANARY_REPORT_COHORTS);

    for (v = 0; v < sr->ncohorts; v++) {
        sr->cohorts[v].name.data = shs->cohorts[v].name;
        sr->cohorts[v].name.len = shs->cohorts[v].name_len;
        sr->cohorts[v].weight = (uint32_t) shs->cohorts[v].weight;

        for (b = 0; b < NGX_HTTP_CANARY_VARIANTS; b++) {
            sr->cohorts[v].requests[b] = shs->cohorts[v].requests[b];
            sr->cohorts[v].responses_5xx[b] =
                                          shs->cohorts[v].responses_5xx[b];
        }
    }

    bp = ngx_http_canary_window_base(shs, now, window, 0, &base);

    for (v = 0; v < NGX_HTTP_CANARY_VARIANTS; v++) {
        st = &shs->stats[v];
        vr = &sr->variants[v];

        /* read before the counters, so that it is never more than they */
        ngx_http_canary_window(shs, v, bp, &w);

        vr->upstream.data = split->upstream[v].data;
        vr->upstream.len = split->upstream[v].len;

        vr->requests = st->requests;
        vr->upstream_errors = st->upstream_errors;

        for (b = 0; b < 5; b++) {
            vr->responses[b] = st->responses[b];
        }

        /*
         * workers add while we read: a histogram's count is the sum of
         * the buckets as read, never a counter read at another moment,
         * so that +Inf equals _count and no bucket exceeds it
         */
        for (b = 0; b < NGX_HTTP_CANARY_HIST_BUCKETS; b++) {
            vr->latency.counts[b] = st->latency[b];
            vr->latency.count += vr->latency.counts[b];

            vr->upstream_latency.counts[b] = st->upstream_latency[b];
            vr->upstream_latency.count += vr->upstream_latency.counts[b];
        }

        vr->latency.sum_us = st->latency_sum_us;
        vr->upstream_latency.sum_us = st->upstream_sum_us;

        vr->window.seconds = (unsigned) (now - (bp ? (time_t) bp->sec
                                                   : shs->created));
        vr->window.requests = w.requests;
        vr->window.responses_5xx = w.responses_5xx;
        vr->window.upstream_errors = w.upstream_errors;

        for (b = 0; b < NGX_HTTP_CANARY_HIST_BUCKETS; b++) {
            vr->window.latency.counts[b] = w.latency[b];
            vr->window.latency.count += w.latency[b];
        }
    }
}


/*
 * The guard's window as its next check counts it (its length, from its
 * re-arm on), so that the page never puts a rate of another window next
 * to the guard's state.
 */

static void
ngx_http_canary_report_guard_now(ngx_http_canary_split_t *split, time_t now,
    ngx_http_canary_guard_report_t *gr)
{
    time_t                               armed;
    ngx_uint_t                           v, b;
    uint64_t                             counts[NGX_HTTP_CANARY_HIST_BUCKETS];
    ngx_http_canary_shm_snap_t           base, *bp;
    ngx_http_canary_shm_split_t         *shs;
    ngx_http_canary_guard_window_t      *w;
    ngx_http_canary_shm_snap_variant_t   d;

    shs = split->sh;
    armed = (time_t) shs->guard_armed_at;

    bp = ngx_http_canary_window_base(shs, now, split->guard.window, armed,
                                     &base);

    /* re-armed this second: nothing counted yet */
    if (bp == NULL && armed) {
        return;
    }

    gr->now_seconds = (unsigned) (now - (bp ? (time_t) bp->sec
                                            : shs->created));

    for (v = 0; v < NGX_HTTP_CANARY_VARIANTS; v++) {
        w = &gr->now[v];

        ngx_http_canary_window(shs, v, bp, &d);

        w->requests = d.requests;
        w->upstream_errors = d.upstream_errors;
        w->errors = (uint64_t) d.upstream_errors + d.responses_5xx;

        for (b = 0; b < NGX_HTTP_CANARY_HIST_BUCKETS; b++) {
            counts[b] = d.latency[b];
        }

        w->p99_us = (uint64_t) ngx_http_canary_hist_quantile(counts, 0.99);
    }
}
