
/*
 * The shared zone: one slot per split, found by name, so that a reload
 * keeps every split's weights (and counters) while splits may be added.
 *
 * Two steps, because nginx initialises zones before it knows whether a
 * reload will go through (a listen may still fail): the zone's init only
 * finds or allocates slots; nginx.conf values are written into them in
 * ngx_http_canary_zone_commit(), from init_module, once it has.
 *
 * A removed split's slot is freed only when no process that may still
 * write into it lives.  Old workers live as long as their requests do
 * (websockets, long polls, slow uploads: there may be no
 * worker_shutdown_timeout), and they count each request into its
 * split's slot when it ends; their syncing worker may write too.  Each
 * worker says in the zone which configuration it runs, by its slot in
 * ngx_processes[]; the master, which alone frees slots (in the zone's
 * init, on reload), knows which of its children are alive.  A child it
 * cannot match (one that has not written yet) may run any configuration:
 * nothing is freed then.  That is exact, needs no check on the request
 * path, and cannot be fooled by a reused pid, which an incarnation
 * stamp checked before each write (a race between the check and the
 * write) or kill(pid, 0) (a reused pid) could be.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_canary_module.h"


static ngx_http_canary_shm_split_t *ngx_http_canary_zone_find(
    ngx_http_canary_shm_t *sh, ngx_str_t *name);
static ngx_uint_t ngx_http_canary_zone_oldest(ngx_http_canary_shm_t *sh);
static ngx_uint_t ngx_http_canary_zone_reclaim(
    ngx_http_canary_main_conf_t *cmcf);
static ngx_int_t ngx_http_canary_zone_attach(ngx_shm_zone_t *shm_zone,
    ngx_http_canary_main_conf_t *cmcf, ngx_http_canary_split_t *split,
    ngx_uint_t kept);
static void ngx_http_canary_zone_conf(ngx_http_canary_main_conf_t *cmcf,
    ngx_http_canary_split_t *split, ngx_http_canary_shm_split_t *shs,
    ngx_uint_t fresh, ngx_log_t *log);
static ngx_shm_zone_t *ngx_http_canary_zone_old(ngx_shm_zone_t *shm_zone);


/*
 * What the slab allocator needs for nsplits: its own header page, a page
 * descriptor per page, whole pages for the zone's header and for each
 * split slot, and a page of small allocations.
 */

size_t
ngx_http_canary_zone_size_needed(ngx_uint_t nsplits)
{
    size_t  pages, need;

    pages = (sizeof(ngx_http_canary_shm_split_t) + ngx_pagesize - 1)
            / ngx_pagesize;

    pages = nsplits * pages + 1
            + (sizeof(ngx_http_canary_shm_t) + ngx_pagesize - 1)
              / ngx_pagesize;

    need = 2 * ngx_pagesize + pages * (ngx_pagesize + 64);

    return ngx_max(need, 8 * ngx_pagesize);
}


ngx_int_t
ngx_http_canary_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_canary_main_conf_t  *ocmcf = data;

    size_t                         len;
    ngx_uint_t                     i, kept;
    ngx_shm_zone_t                *oshm_zone;
    ngx_http_canary_split_t      **splitp;
    ngx_http_canary_main_conf_t   *cmcf;

    cmcf = shm_zone->data;
    cmcf->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (ocmcf) {
        /* a reload: the zone, and everything in it, is kept */
        cmcf->sh = ocmcf->sh;

    } else if (shm_zone->shm.exists) {
        cmcf->sh = cmcf->shpool->data;

    } else {
        oshm_zone = ngx_http_canary_zone_old(shm_zone);

        if (oshm_zone) {
            if (oshm_zone->shm.name.len != shm_zone->shm.name.len
                || ngx_strncmp(oshm_zone->shm.name.data,
                               shm_zone->shm.name.data,
                               shm_zone->shm.name.len) != 0)
            {
                cmcf->renamed_from = oshm_zone->shm.name;
                cmcf->resized_from = oshm_zone->shm.size;

            } else if (oshm_zone->shm.size != shm_zone->shm.size) {
                cmcf->resized_from = oshm_zone->shm.size;
            }
        }

        cmcf->sh = ngx_slab_calloc(cmcf->shpool,
                                   sizeof(ngx_http_canary_shm_t));
        if (cmcf->sh == NULL) {
            return NGX_ERROR;
        }

        cmcf->sh->layout = NGX_HTTP_CANARY_ZONE_LAYOUT;
        cmcf->sh->started = ngx_time();
        cmcf->sh->master = ngx_pid;
        ngx_queue_init(&cmcf->sh->splits);

        cmcf->shpool->data = cmcf->sh;

        len = sizeof(" in canary_zone \"\"") + shm_zone->shm.name.len;

        cmcf->shpool->log_ctx = ngx_slab_alloc(cmcf->shpool, len);
        if (cmcf->shpool->log_ctx == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(cmcf->shpool->log_ctx, " in canary_zone \"%V\"%Z",
                    &shm_zone->shm.name);
    }

    if (cmcf->sh->layout != NGX_HTTP_CANARY_ZONE_LAYOUT) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "canary_zone \"%V\" was created by another version "
                      "of the canary module (layout %ui, this one is %d): "
                      "restart nginx or use a new zone name",
                      &shm_zone->shm.name, cmcf->sh->layout,
                      NGX_HTTP_CANARY_ZONE_LAYOUT);
        return NGX_ERROR;
    }

    kept = ngx_http_canary_zone_reclaim(cmcf);

    splitp = cmcf->splits.elts;

    for (i = 0; i < cmcf->splits.nelts; i++) {
        if (ngx_http_canary_zone_attach(shm_zone, cmcf, splitp[i], kept)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A reload with another size or name gets a new zone (nginx reuses a
 * zone only with the same name and size), and every counter starts over:
 * the running cycle's canary_zone (one per cycle), if any, says which.
 * NULL: none.
 */

static ngx_shm_zone_t *
ngx_http_canary_zone_old(ngx_shm_zone_t *shm_zone)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_shm_zone_t   *oshm_zone;

    /* during the reload's ngx_init_cycle(), ngx_cycle is the old one */
    if (ngx_cycle == NULL || ngx_is_init_cycle(ngx_cycle)) {
        return NULL;
    }

    part = (ngx_list_part_t *) &ngx_cycle->shared_memory.part;
    oshm_zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            oshm_zone = part->elts;
            i = 0;
        }

        if (oshm_zone[i].tag == shm_zone->tag) {
            return &oshm_zone[i];
        }
    }
}


/*
 * The oldest configuration a live child of the master may run: a slot
 * that only configurations before it had is no longer used by anyone.
 */

static ngx_uint_t
ngx_http_canary_zone_oldest(ngx_http_canary_shm_t *sh)
{
    ngx_int_t                       i;
    ngx_uint_t                      oldest;
    ngx_http_canary_shm_process_t  *p;

    if (ngx_process != NGX_PROCESS_MASTER) {
        /*
         * Without a master (master_process off) the one process keeps
         * the requests of every configuration it ran: nothing committed
         * is freed.
         */
        return 0;
    }

    oldest = NGX_HTTP_CANARY_NO_REQUESTS;

    for (i = 0; i < ngx_last_process; i++) {

        /* a new binary's master (USR2) has zones of its own */
        if (ngx_processes[i].pid == -1 || ngx_processes[i].exited
            || ngx_processes[i].detached)
        {
            continue;
        }

        p = &sh->processes[i];

        if ((ngx_pid_t) p->pid != ngx_processes[i].pid) {
            /* not started far enough to say: it may run any of them */
            return 0;
        }

        ngx_memory_barrier();

        oldest = ngx_min(oldest, (ngx_uint_t) p->generation);
    }

    return oldest;
}


/*
 * Frees the slots of splits that the new configuration does not name and
 * that no live process may still use: slots of a refused reload (never
 * used at all), and slots whose last configuration is older than any a
 * live worker runs.  The running configuration's slots always stay: its
 * workers use them until the new ones take over.  Returns how many slots
 * stay that the new configuration does not name.
 */

static ngx_uint_t
ngx_http_canary_zone_reclaim(ngx_http_canary_main_conf_t *cmcf)
{
    ngx_uint_t                    kept, i, named, oldest;
    ngx_queue_t                  *q, *next;
    ngx_http_canary_shm_t        *sh;
    ngx_http_canary_split_t     **splitp;
    ngx_http_canary_shm_split_t  *shs;

    sh = cmcf->sh;
    splitp = cmcf->splits.elts;
    kept = 0;

    oldest = ngx_http_canary_zone_oldest(sh);

    ngx_shmtx_lock(&cmcf->shpool->mutex);

    for (q = ngx_queue_head(&sh->splits);
         q != ngx_queue_sentinel(&sh->splits);
         q = next)
    {
        next = ngx_queue_next(q);
        shs = ngx_queue_data(q, ngx_http_canary_shm_split_t, queue);

        named = 0;

        for (i = 0; i < cmcf->splits.nelts; i++) {
            if (shs->name_len == splitp[i]->name.len
                && ngx_memcmp(shs->name, splitp[i]->name.data,
                              shs->name_len) == 0)
            {
                named = 1;
                break;
            }
        }

        if (named) {
            continue;
        }

        if (shs->seen == 0
            || (shs->seen < sh->generation && shs->seen < oldest))
        {
            ngx_queue_remove(q);

            if (shs->pins) {
                ngx_slab_free_locked(cmcf->shpool, shs->pins);
            }

            ngx_slab_free_locked(cmcf->shpool, shs);
            continue;
        }

        kept++;
    }

    ngx_shmtx_unlock(&cmcf->shpool->mutex);

    return kept;
}


static ngx_http_canary_shm_split_t *
ngx_http_canary_zone_find(ngx_http_canary_shm_t *sh, ngx_str_t *name)
{
    ngx_queue_t                  *q;
    ngx_http_canary_shm_split_t  *shs;

    for (q = ngx_queue_head(&sh->splits);
         q != ngx_queue_sentinel(&sh->splits);
         q = ngx_queue_next(q))
    {
        shs = ngx_queue_data(q, ngx_http_canary_shm_split_t, queue);

        if (shs->name_len == name->len
            && ngx_memcmp(shs->name, name->data, name->len) == 0)
        {
            return shs;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_canary_zone_attach(ngx_shm_zone_t *shm_zone,
    ngx_http_canary_main_conf_t *cmcf, ngx_http_canary_split_t *split,
    ngx_uint_t kept)
{
    ngx_http_canary_shm_split_t  *shs;

    ngx_shmtx_lock(&cmcf->shpool->mutex);

    shs = ngx_http_canary_zone_find(cmcf->sh, &split->name);

    if (shs == NULL) {
        shs = ngx_slab_calloc_locked(cmcf->shpool,
                                     sizeof(ngx_http_canary_shm_split_t));
        if (shs == NULL) {
            ngx_shmtx_unlock(&cmcf->shpool->mutex);

            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "canary_zone \"%V\" is too small for "
                          "canary_split \"%V\": %uzk, at least %uzk needed "
                          "for %ui split%s and %ui kept for removed splits "
                          "whose old workers still run",
                          &shm_zone->shm.name, &split->name,
                          shm_zone->shm.size / 1024,
                          (ngx_http_canary_zone_size_needed(
                               cmcf->splits.nelts + kept) + 1023) / 1024,
                          cmcf->splits.nelts,
                          cmcf->splits.nelts == 1 ? "" : "s", kept);
            return NGX_ERROR;
        }

        ngx_memcpy(shs->name, split->name.data, split->name.len);
        shs->name_len = split->name.len;
        shs->enabled = 1;
        shs->created = ngx_time();

        ngx_queue_insert_tail(&cmcf->sh->splits, &shs->queue);
    }

    ngx_shmtx_unlock(&cmcf->shpool->mutex);

    split->sh = shs;

    return NGX_OK;
}


/* the reload went through: nginx.conf values take effect */

void
ngx_http_canary_zone_commit(ngx_http_canary_main_conf_t *cmcf, ngx_log_t *log)
{
    ngx_uint_t                 i, generation;
    ngx_http_canary_split_t  **splitp;

    ngx_shmtx_lock(&cmcf->shpool->mutex);

    generation = ++cmcf->sh->generation;
    cmcf->committed = generation;
    splitp = cmcf->splits.elts;

    for (i = 0; i < cmcf->splits.nelts; i++) {
        ngx_http_canary_zone_conf(cmcf, splitp[i], splitp[i]->sh,
                                  splitp[i]->sh->seen == 0, log);
        splitp[i]->sh->seen = generation;
    }

    ngx_shmtx_unlock(&cmcf->shpool->mutex);

    if (cmcf->renamed_from.len) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "canary_zone \"%V\" replaces \"%V\" (%uzk to %uzk): "
                      "counters reset (a new zone: every split's counters "
                      "and windows start from 0)",
                      &cmcf->shm_zone->shm.name, &cmcf->renamed_from,
                      cmcf->resized_from / 1024,
                      cmcf->shm_zone->shm.size / 1024);
        ngx_str_null(&cmcf->renamed_from);
        cmcf->resized_from = 0;

    } else if (cmcf->resized_from) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "canary_zone \"%V\" resized from %uzk to %uzk: "
                      "counters reset (a new zone: every split's counters "
                      "and windows start from 0)",
                      &cmcf->shm_zone->shm.name, cmcf->resized_from / 1024,
                      cmcf->shm_zone->shm.size / 1024);
        cmcf->resized_from = 0;
    }
}


/*
 * A process starts: it says which configuration it runs, in its slot of
 * ngx_processes[], before it takes any request.
 */

void
ngx_http_canary_zone_register(ngx_http_canary_main_conf_t *cmcf)
{
    ngx_http_canary_shm_process_t  *p;

    if (ngx_process_slot < 0 || ngx_process_slot >= NGX_MAX_PROCESSES) {
        return;
    }

    p = &cmcf->sh->processes[ngx_process_slot];

    p->generation = (ngx_process == NGX_PROCESS_WORKER
                     || ngx_process == NGX_PROCESS_SINGLE)
                    ? cmcf->committed : NGX_HTTP_CANARY_NO_REQUESTS;

    ngx_memory_barrier();

    p->pid = (ngx_atomic_uint_t) ngx_pid;
}


/*
 * nginx.conf values apply to a new slot; without Redis, nginx.conf is
 * the only source: they always apply, and the kill switch is on again.
 * With Redis, a reload applies a weight that nginx.conf changed since
 * the configuration before (an operator's explicit act: the kill switch
 * while Redis is down), which stands until Redis brings a newer
 * generation; an unchanged one applies while no Redis weight came.
 * Without Redis, a reload is also what re-arms a tripped guard and ends
 * a rollback: nobody else could.  With Redis both are incidents that stay
 * until a writer says so (canary-ctl reset), whatever the configuration
 * says now: a guard line removed keeps the trip it had.
 */

static void
ngx_http_canary_zone_conf(ngx_http_canary_main_conf_t *cmcf,
    ngx_http_canary_split_t *split, ngx_http_canary_shm_split_t *shs,
    ngx_uint_t fresh, ngx_log_t *log)
{
    ngx_uint_t                     i, j, w, redis, keep, same, edited;
    ngx_http_canary_cohort_t      *cohort;
    ngx_http_canary_shm_cohort_t  *shc, *prev,
                                   old[NGX_HTTP_CANARY_COHORTS_MAX];

    if (cmcf->redis == NULL && (shs->guard_tripped || shs->rolled_back)) {
        /* a state read from Redis before would no longer be true */
        shs->state_len = 0;
        shs->rolled_back = 0;
        ngx_http_canary_guard_reload(shs);
    }

    if (cmcf->redis == NULL) {
        shs->enabled = 1;
        shs->conf_override = 0;
    }

    /* the weights in force came from Redis, which stays the source */
    redis = !fresh && cmcf->redis
            && shs->source == NGX_HTTP_CANARY_SOURCE_REDIS;

    if (!redis || split->weight != shs->conf_weight) {

        if (redis) {
            w = shs->weight;

            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "canary split \"%V\": weight %ui.%02ui%% edited "
                          "in nginx.conf replaces %ui.%02ui%% from Redis "
                          "(generation %uA) until Redis brings a newer one",
                          &split->name, split->weight / 100,
                          split->weight % 100, w / 100, w % 100,
                          shs->generation);

            shs->conf_override = 1;
        }

        shs->weight = split->weight;
        shs->source = NGX_HTTP_CANARY_SOURCE_CONF;
    }

    shs->conf_weight = split->weight;

    /* shadow: nginx.conf's percent, unless Redis's field "shadow" set it */
    if (fresh || cmcf->redis == NULL || !shs->shadow.redis) {
        shs->shadow.percent = split->shadow.percent;
        shs->shadow.redis = 0;
    }

    /*
     * cohorts are matched by name: the list may change across reloads;
     * with Redis, one unchanged in nginx.conf keeps the value in force
     * (Redis's, or an edit that stands), whatever the weight's source.
     * Its counters go with the name, with or without Redis; one new in
     * nginx.conf starts at 0.  An add to one that changes slots, landing
     * while it moves (a request that ends during the commit), may be
     * lost: such commits are rare, and a later request finds its cohort
     * by name (metrics.c).
     */

    keep = !fresh && cmcf->redis;

    ngx_memcpy(old, shs->cohorts, sizeof(old));

    cohort = split->cohorts.elts;

    for (i = 0; i < split->cohorts.nelts; i++) {
        shc = &shs->cohorts[i];

        prev = NULL;
        edited = 0;

        for (j = 0; !fresh && j < shs->ncohorts; j++) {
            if (old[j].name_len == cohort[i].name.len
                && ngx_memcmp(old[j].name, cohort[i].name.data,
                              cohort[i].name.len) == 0)
            {
                prev = &old[j];
                break;
            }
        }

        /*
         * One still in its slot is left in place: old workers go on
         * routing by its weight and adding to its counters meanwhile
         * (written aside and back, they would read nginx.conf's weight
         * for a moment, and their adds would be lost).  Into a slot that
         * changes hands, the name goes last: until then no request finds
         * the slot by it.
         */
        same = (prev == &old[i]);

        if (!same) {
            shc->name_len = 0;

            for (j = 0; j < NGX_HTTP_CANARY_VARIANTS; j++) {
                shc->requests[j] = prev ? prev->requests[j] : 0;
                shc->responses_5xx[j] = prev ? prev->responses_5xx[j] : 0;
            }
        }

        if (prev == NULL || !keep) {
            shc->weight = cohort[i].weight;

        } else if (prev->conf_weight == cohort[i].weight) {
            /* unchanged in nginx.conf: Redis's stays */
            if (!same) {
                shc->weight = prev->weight;
            }

        } else {
            shc->weight = cohort[i].weight;
            edited = 1;
        }

        shc->conf_weight = cohort[i].weight;

        if (!same) {
            ngx_memcpy(shc->name, cohort[i].name.data, cohort[i].name.len);
            ngx_memory_barrier();
            shc->name_len = cohort[i].name.len;
        }

        if (!edited) {
            continue;
        }

        w = prev->weight;

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "canary split \"%V\": cohort_weight \"%V\" "
                      "%ui.%02ui%% edited in nginx.conf replaces "
                      "%ui.%02ui%% in force (generation %uA) until "
                      "Redis brings a newer one",
                      &split->name, &cohort[i].name, cohort[i].weight / 100,
                      cohort[i].weight % 100, w / 100, w % 100,
                      shs->generation);

        shs->conf_override = 1;
    }

    /*
     * a slot past the list keeps no name: a request an old worker decided
     * in it then finds its cohort by name, not the slot's stale one
     */
    for (i = split->cohorts.nelts; i < NGX_HTTP_CANARY_COHORTS_MAX; i++) {
        shs->cohorts[i].name_len = 0;
    }

    shs->ncohorts = split->cohorts.nelts;
}
