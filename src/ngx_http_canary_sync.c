
/*
 * Applying Redis to the zone.  The syncing worker validates every field
 * of <prefix><split> and its pin sets, writes what is good into the zone
 * and keeps the last good value of whatever is not.  Each rejected value
 * is logged once, not on every poll.  What the guard makes of a write is
 * handed to ngx_http_canary_guard.c; the connection is the Redis
 * adapter's (ngx_http_canary_redis.c), which calls this file.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>

#include "ngx_http_canary_module.h"


/* distinct bad values remembered per split, not logged again */
#define NGX_HTTP_CANARY_LOGGED   256

/* rejected fields logged in one read of a hash, the rest summed up */
#define NGX_HTTP_CANARY_LOG_MAX  64

/* replaced pin tables awaiting their readers */
#define NGX_HTTP_CANARY_RETIRED  4

/* a replaced pin table is freed only after readers are surely done */
#define NGX_HTTP_CANARY_RETIRE_AFTER  2000


typedef struct {
    uint32_t                      logged[NGX_HTTP_CANARY_LOGGED];
    ngx_uint_t                    next;
    ngx_uint_t                    rejected;     /* in the current read */
    ngx_uint_t                    more;         /* "more rejected" logged */
    uint64_t                      generation;   /* of the current read */
    unsigned                      fresh:1;      /* of a new Redis instance */

    /* the current read ends the trip, the rollback: once pins apply */
    unsigned                      rearm:1;
    unsigned                      lift_rollback:1;
} ngx_http_canary_sync_split_t;


typedef struct {
    ngx_http_canary_pins_t       *pins;
    ngx_msec_t                    since;
} ngx_http_canary_retired_t;


struct ngx_http_canary_sync_s {
    ngx_http_canary_main_conf_t  *cmcf;
    ngx_log_t                    *log;
    ngx_http_canary_sync_split_t *splits;
    ngx_http_canary_retired_t     retired[NGX_HTTP_CANARY_RETIRED];

    /* what could not be applied in the current read, for the adapter */
    u_char                        error[NGX_HTTP_CANARY_ERROR_LEN];
    size_t                        error_len;
};


static ngx_uint_t ngx_http_canary_sync_first_time(
    ngx_http_canary_sync_split_t *ss, const u_char *a, size_t alen,
    const u_char *b, size_t blen);
static u_char *ngx_http_canary_sync_escape(u_char *dst, const u_char *src,
    size_t n);
static void ngx_http_canary_sync_reject(ngx_http_canary_sync_t *sync,
    ngx_http_canary_split_t *split, ngx_uint_t index, const char *why,
    redisReply *field, redisReply *value);
static void ngx_http_canary_sync_failed(ngx_http_canary_sync_t *sync,
    const char *fmt, ...);
static void ngx_http_canary_sync_gone(ngx_http_canary_sync_t *sync,
    ngx_uint_t index);
static void ngx_http_canary_sync_parse(ngx_http_canary_sync_t *sync,
    ngx_uint_t index, redisReply *hash, ngx_http_canary_update_t *u);
static ngx_int_t ngx_http_canary_sync_generation(ngx_http_canary_sync_t *sync,
    ngx_uint_t index, ngx_http_canary_update_t *u);
static void ngx_http_canary_sync_values(ngx_http_canary_sync_t *sync,
    ngx_uint_t index, ngx_http_canary_update_t *u);
static void ngx_http_canary_sync_cohorts(ngx_http_canary_sync_t *sync,
    ngx_uint_t index, ngx_http_canary_update_t *u);
static ngx_uint_t ngx_http_canary_sync_unknown_cohort(
    ngx_http_canary_sync_t *sync, ngx_uint_t index, redisReply *field);
static void ngx_http_canary_sync_guard(ngx_http_canary_sync_t *sync,
    ngx_uint_t index, ngx_http_canary_update_t *u);
static void ngx_http_canary_sync_pins(ngx_http_canary_sync_t *sync,
    ngx_uint_t index, redisReply *sets[2]);
static void ngx_http_canary_sync_too_many(ngx_http_canary_sync_t *sync,
    ngx_uint_t index, size_t n);
static void ngx_http_canary_sync_publish(ngx_http_canary_sync_t *sync,
    ngx_http_canary_shm_split_t *shs, ngx_http_canary_pins_t *pins,
    size_t npins[2]);
static ngx_uint_t ngx_http_canary_sync_by_guard(
    ngx_http_canary_update_t *u);
static ngx_uint_t ngx_http_canary_sync_state_is(ngx_http_canary_update_t *u,
    const char *state, size_t len);
static void ngx_http_canary_sync_roll_back(ngx_http_canary_sync_t *sync,
    ngx_http_canary_split_t *split, ngx_http_canary_update_t *u);
static void ngx_http_canary_sync_lift(ngx_http_canary_sync_t *sync,
    ngx_uint_t index);


ngx_http_canary_sync_t *
ngx_http_canary_sync_create(ngx_cycle_t *cycle,
    ngx_http_canary_main_conf_t *cmcf)
{
    ngx_http_canary_sync_t  *sync;

    sync = ngx_pcalloc(cycle->pool, sizeof(ngx_http_canary_sync_t));
    if (sync == NULL) {
        return NULL;
    }

    sync->splits = ngx_pcalloc(cycle->pool, cmcf->splits.nelts
                                        * sizeof(ngx_http_canary_sync_split_t));
    if (sync->splits == NULL) {
        return NULL;
    }

    sync->cmcf = cmcf;
    sync->log = cycle->log;

    return sync;
}


/*
 * The next read of every split may bring any generation: Redis is
 * another instance (restarted, failed over) or one we cannot tell.
 */

void
ngx_http_canary_sync_new_instance(ngx_http_canary_sync_t *sync)
{
    ngx_uint_t  i;

    for (i = 0; i < sync->cmcf->splits.nelts; i++) {
        sync->splits[i].fresh = 1;
    }
}


/*
 * exec is the reply to the read of a split: its hash, then its canary and
 * stable pins, each set's members or, when there are too many, both
 * sets' sizes.  NGX_OK: applied; NGX_ERROR: not an answer of Redis;
 * NGX_DECLINED: Redis answered with an error for this split (a key of
 * another type); NGX_DONE: a newer configuration's worker owns the zone.
 * error: what the Redis adapter should report, if anything (NGX_OK too:
 * pins that do not fit).
 */

ngx_int_t
ngx_http_canary_sync_apply(ngx_http_canary_sync_t *sync, ngx_uint_t index,
    redisReply *exec, ngx_str_t *error)
{
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    redisReply                    *m, *sets[2];
    ngx_http_canary_update_t       u;
    ngx_http_canary_split_t      **splitp;
    ngx_http_canary_sync_split_t  *ss;

    splitp = sync->cmcf->splits.elts;
    ss = &sync->splits[index];

    sync->error_len = 0;
    error->data = sync->error;
    error->len = 0;

    /*
     * A reload committed a newer configuration: its syncing worker owns
     * the zone.  This one, until it exits, must not undo what the new
     * configuration changed (a rollback ended by removing canary_redis).
     */
    if (sync->cmcf->committed != sync->cmcf->sh->generation) {
        return NGX_DONE;
    }

    rc = NGX_OK;

    if (exec->type != REDIS_REPLY_ARRAY || exec->elements != 3) {
        ngx_http_canary_sync_failed(sync,
            "canary_redis: unexpected reply reading split \"%V\"",
            &splitp[index]->name);
        rc = NGX_ERROR;
        goto done;
    }

    /* the hash must be read; a pin set that cannot be is dealt with below */
    for (i = 0; i < 3; i++) {
        if (exec->element[i]->type != REDIS_REPLY_ARRAY
            && (i == 0 || (exec->element[i]->type != REDIS_REPLY_INTEGER
                           && exec->element[i]->type != REDIS_REPLY_ERROR)))
        {
            ngx_http_canary_sync_failed(sync,
                "canary_redis: split \"%V\": %*s",
                &splitp[index]->name,
                exec->element[i]->type == REDIS_REPLY_ERROR
                    ? ngx_min(exec->element[i]->len, 100) : 13,
                exec->element[i]->type == REDIS_REPLY_ERROR
                    ? exec->element[i]->str : "not an array");
            rc = NGX_DECLINED;
            goto done;
        }
    }

    ss->rejected = 0;
    ss->rearm = 0;
    ss->lift_rollback = 0;

    if (exec->element[0]->elements == 0) {
        ngx_http_canary_sync_gone(sync, index);

    } else {
        ngx_http_canary_sync_parse(sync, index, exec->element[0], &u);

        if (ngx_http_canary_sync_generation(sync, index, &u) == NGX_OK) {
            ngx_http_canary_sync_values(sync, index, &u);
            ngx_http_canary_sync_cohorts(sync, index, &u);
            ngx_http_canary_sync_guard(sync, index, &u);
        }
    }

    ss->fresh = 0;

    sets[NGX_HTTP_CANARY_CANARY] = exec->element[1];
    sets[NGX_HTTP_CANARY_STABLE] = exec->element[2];

    if (sets[0]->type == REDIS_REPLY_ERROR
        || sets[1]->type == REDIS_REPLY_ERROR)
    {
        /*
         * a pin set of another type (a hand-made SET of its key): the
         * hash still applies, a rollback too; the last good pins stay,
         * and a rollback is not lifted while the pins a reset removes
         * cannot be read
         */
        m = sets[0]->type == REDIS_REPLY_ERROR ? sets[0] : sets[1];
        ss->rejected++;
        ss->lift_rollback = 0;

        if (ngx_http_canary_sync_first_time(ss, (u_char *) "pinset", 6,
                                            (u_char *) m->str, m->len))
        {
            ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                          "canary_redis: split \"%V\": pins not read, "
                          "the last good ones stay: %*s",
                          &splitp[index]->name, ngx_min(m->len, 100),
                          m->str);
        }

    } else if (sets[0]->type == REDIS_REPLY_INTEGER
               || sets[1]->type == REDIS_REPLY_INTEGER)
    {
        /* too many: the sets' sizes came, not their members */
        ngx_http_canary_sync_too_many(sync, index,
                                      (size_t) (sets[0]->integer
                                                + sets[1]->integer));

    } else {
        ngx_http_canary_sync_pins(sync, index, sets);
    }

    /*
     * Only now, with the pins of the same read in force (a reset removes
     * the plan's), may the split leave stable.
     */
    ngx_http_canary_sync_lift(sync, index);

    /* the same hash read again says nothing new */
    if (ss->rejected > NGX_HTTP_CANARY_LOG_MAX && ss->rejected != ss->more) {
        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "canary_redis: split \"%V\": %ui more rejected "
                      "values not logged", &splitp[index]->name,
                      ss->rejected - NGX_HTTP_CANARY_LOG_MAX);
    }

    ss->more = ss->rejected;

    if (ss->rejected == 0) {
        /* all is well again: a bad value that comes back is logged again */
        ngx_memzero(ss->logged, sizeof(ss->logged));
    }

done:

    error->len = sync->error_len;

    return rc;
}


/*
 * No hash: Redis was flushed or restarted empty.  Writers start again
 * from generation 1, so forget the applied one (the weights stay), and
 * write a tripped guard there again.
 */

static void
ngx_http_canary_sync_gone(ngx_http_canary_sync_t *sync, ngx_uint_t index)
{
    ngx_http_canary_split_t      **splitp, *split;
    ngx_http_canary_shm_split_t   *shs;

    splitp = sync->cmcf->splits.elts;
    split = splitp[index];
    shs = split->sh;

    if (shs->generation) {
        ngx_log_error(NGX_LOG_NOTICE, sync->log, 0,
                      "canary_redis: split \"%V\": key \"%V%V\" is "
                      "gone, the weights in force stay and the next "
                      "write of any generation applies",
                      &split->name, &sync->cmcf->redis->prefix,
                      &split->name);
        shs->generation = 0;
    }

    ngx_http_canary_guard_unwritten(split);
}


/* every field validated; each bad one is refused and logged once */

static void
ngx_http_canary_sync_parse(ngx_http_canary_sync_t *sync, ngx_uint_t index,
    redisReply *hash, ngx_http_canary_update_t *u)
{
    size_t                     i;
    ngx_http_canary_split_t  **splitp;
    ngx_http_canary_field_e    rc;

    splitp = sync->cmcf->splits.elts;

    ngx_memzero(u, sizeof(ngx_http_canary_update_t));

    for (i = 0; i + 1 < hash->elements; i += 2) {
        if (hash->element[i]->type != REDIS_REPLY_STRING
            || hash->element[i + 1]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        if (ngx_http_canary_sync_unknown_cohort(sync, index,
                                                hash->element[i]))
        {
            continue;
        }

        rc = ngx_http_canary_update_field(u,
                 (u_char *) hash->element[i]->str, hash->element[i]->len,
                 (u_char *) hash->element[i + 1]->str,
                 hash->element[i + 1]->len);

        if (rc != NGX_HTTP_CANARY_FIELD_OK) {
            ngx_http_canary_sync_reject(sync, splitp[index], index,
                rc == NGX_HTTP_CANARY_FIELD_UNKNOWN ? "unknown field"
                : rc == NGX_HTTP_CANARY_FIELD_TOO_MANY ? "too many cohorts"
                : "invalid value",
                hash->element[i], hash->element[i + 1]);
        }
    }
}


/* NGX_DECLINED: a stale write, nothing of it applies */

static ngx_int_t
ngx_http_canary_sync_generation(ngx_http_canary_sync_t *sync,
    ngx_uint_t index, ngx_http_canary_update_t *u)
{
    uint64_t                       gen;
    ngx_http_canary_split_t      **splitp, *split;
    ngx_http_canary_shm_split_t   *shs;
    ngx_http_canary_sync_split_t  *ss;

    splitp = sync->cmcf->splits.elts;
    split = splitp[index];
    shs = split->sh;
    ss = &sync->splits[index];

    gen = u->has_generation ? u->generation : 0;

    if (ss->fresh && gen < shs->generation) {
        /*
         * A new Redis: its writers started again from generation 1 (a
         * restart without persistence, a failover).  It is the one the
         * fleet reads now: follow it, or stay stuck until its generation
         * passes ours.  Bad fields were refused all the same.
         */
        ngx_log_error(NGX_LOG_NOTICE, sync->log, 0,
                      "canary_redis: split \"%V\": generation %uL of a "
                      "new Redis instance replaces %uA",
                      &split->name, gen, shs->generation);

        shs->generation = gen;
        ngx_http_canary_guard_unwritten(split);

    } else if (u->has_generation && u->generation < shs->generation) {
        ss->rejected++;

        if (ngx_http_canary_sync_first_time(ss, (u_char *) "stale", 5,
                (u_char *) &u->generation, sizeof(uint64_t)))
        {
            ngx_log_error(NGX_LOG_WARN, sync->log, 0,
                          "canary_redis: split \"%V\": ignored a stale "
                          "write, generation %uL is older than %uA",
                          &split->name, u->generation, shs->generation);
        }

        return NGX_DECLINED;
    }

    ss->generation = gen;

    return NGX_OK;
}


/*
 * A rollback sends everything to stable before its weight applies; any
 * other state lifts it once the pins of this read are in force.
 */

static void
ngx_http_canary_sync_values(ngx_http_canary_sync_t *sync, ngx_uint_t index,
    ngx_http_canary_update_t *u)
{
    ngx_uint_t                     rolled_back;
    ngx_http_canary_split_t      **splitp, *split;
    ngx_http_canary_shm_split_t   *shs;

    splitp = sync->cmcf->splits.elts;
    split = splitp[index];
    shs = split->sh;

    rolled_back = ngx_http_canary_sync_state_is(u,
                      NGX_HTTP_CANARY_STATE_ROLLED_BACK,
                      sizeof(NGX_HTTP_CANARY_STATE_ROLLED_BACK) - 1);

    if (rolled_back && !shs->rolled_back) {
        ngx_http_canary_sync_roll_back(sync, split, u);

    } else if (u->has_state && !rolled_back && shs->rolled_back) {
        sync->splits[index].lift_rollback = 1;
    }

    /*
     * A reload applied weights edited in nginx.conf over Redis's (zone.c):
     * they stand until a writer raises the generation; a re-read of the
     * one in force, or of a new instance's, does not undo them.
     */
    if (shs->conf_override) {
        if (u->has_generation && u->generation > shs->generation) {
            shs->conf_override = 0;

        } else {
            u->has_weight = 0;
            u->ncohorts = 0;
        }
    }

    if (u->has_weight) {
        shs->weight = u->weight;
        shs->source = NGX_HTTP_CANARY_SOURCE_REDIS;
    }

    if (u->has_enabled) {
        shs->enabled = u->enabled;
    }

    /* shadow traffic's percent; a hash without it leaves it as it is */
    if (u->has_shadow) {
        shs->shadow.percent = u->shadow;
        shs->shadow.redis = 1;
    }

    if (u->has_state) {
        ngx_http_canary_sync_text(shs->state, &shs->state_len,
                                  u->state, u->state_len);
    }

    if (u->has_updated_by) {
        ngx_http_canary_sync_text(shs->updated_by, &shs->updated_by_len,
                                  u->updated_by, u->updated_by_len);
    }

    if (u->has_updated_at) {
        ngx_http_canary_sync_text(shs->updated_at, &shs->updated_at_len,
                                  u->updated_at, u->updated_at_len);
    }

    if (u->has_generation) {
        shs->generation = u->generation;
    }
}


/*
 * cohort weights by name: only the cohorts nginx.conf has (the others
 * were ignored as the hash was parsed)
 */

static void
ngx_http_canary_sync_cohorts(ngx_http_canary_sync_t *sync, ngx_uint_t index,
    ngx_http_canary_update_t *u)
{
    size_t                         i, c;
    ngx_http_canary_split_t      **splitp, *split;
    ngx_http_canary_shm_split_t   *shs;

    splitp = sync->cmcf->splits.elts;
    split = splitp[index];
    shs = split->sh;

    for (i = 0; i < u->ncohorts; i++) {
        for (c = 0; c < shs->ncohorts; c++) {
            if (shs->cohorts[c].name_len == u->cohorts[i].len
                && ngx_memcmp(shs->cohorts[c].name, u->cohorts[i].name,
                              u->cohorts[i].len) == 0)
            {
                shs->cohorts[c].weight = u->cohorts[i].weight;
                break;
            }
        }
    }
}


/*
 * A weight.COHORT field of a cohort nginx.conf does not have (a typo of
 * canary-ctl cohort, one removed from nginx.conf; a rollback keeps them
 * at 0): ignored, and logged once, before the hash's fields are parsed,
 * so that however many there are they never take the place of one
 * nginx.conf has (the parse takes NGX_HTTP_CANARY_UPDATE_COHORTS).
 */

static ngx_uint_t
ngx_http_canary_sync_unknown_cohort(ngx_http_canary_sync_t *sync,
    ngx_uint_t index, redisReply *field)
{
    u_char                        *name, *p, esc[4 * 64 + 4];
    size_t                         c, len, n;
    ngx_http_canary_split_t      **splitp, *split;
    ngx_http_canary_shm_split_t   *shs;
    ngx_http_canary_sync_split_t  *ss;

    n = sizeof(NGX_HTTP_CANARY_FIELD_COHORT) - 1;

    if (field->len <= n
        || ngx_memcmp(field->str, NGX_HTTP_CANARY_FIELD_COHORT, n) != 0)
    {
        return 0;
    }

    splitp = sync->cmcf->splits.elts;
    split = splitp[index];
    shs = split->sh;
    ss = &sync->splits[index];

    name = (u_char *) field->str + n;
    len = field->len - n;

    for (c = 0; c < shs->ncohorts; c++) {
        if (shs->cohorts[c].name_len == len
            && ngx_memcmp(shs->cohorts[c].name, name, len) == 0)
        {
            return 0;
        }
    }

    if (ss->rejected++ >= NGX_HTTP_CANARY_LOG_MAX
        || !ngx_http_canary_sync_first_time(ss, name, len,
                                            (u_char *) "cohort", 6))
    {
        return 1;
    }

    p = ngx_http_canary_sync_escape(esc, name, len);

    ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                  "canary_redis: split \"%V\": ignored \"weight.%*s\"%s: "
                  "no such cohort_weight in nginx.conf",
                  &split->name, p - esc, esc, len > 64 ? "..." : "");

    return 1;
}


/*
 * What the write means for the guard: another nginx's guard wrote its
 * trip (follow it at once), or an operator or the sidecar wrote and the
 * state is no longer an incident (canary-ctl reset: the guard may re-arm
 * once the pins of this read are in force).  A write that leaves the
 * state saying guard_tripped or rolled_back re-arms nothing.
 */

static void
ngx_http_canary_sync_guard(ngx_http_canary_sync_t *sync, ngx_uint_t index,
    ngx_http_canary_update_t *u)
{
    ngx_uint_t                 tripped, by_guard;
    ngx_http_canary_split_t  **splitp;

    if (!u->has_generation) {
        return;
    }

    splitp = sync->cmcf->splits.elts;

    tripped = ngx_http_canary_sync_state_is(u,
                  NGX_HTTP_CANARY_STATE_GUARD_TRIPPED,
                  sizeof(NGX_HTTP_CANARY_STATE_GUARD_TRIPPED) - 1);
    by_guard = ngx_http_canary_sync_by_guard(u);

    if (tripped && by_guard) {
        ngx_http_canary_guard_follow(splitp[index], u->generation,
                                     u->updated_by, u->updated_by_len);

    } else if (!tripped && !by_guard
               && !ngx_http_canary_sync_state_is(u,
                      NGX_HTTP_CANARY_STATE_ROLLED_BACK,
                      sizeof(NGX_HTTP_CANARY_STATE_ROLLED_BACK) - 1))
    {
        sync->splits[index].rearm = 1;
    }
}


static ngx_uint_t
ngx_http_canary_sync_state_is(ngx_http_canary_update_t *u, const char *state,
    size_t len)
{
    return u->has_state && u->state_len == len
           && ngx_strncmp(u->state, state, len) == 0;
}


/* state rolled_back, written by canary-ctl rollback or the sidecar */

static void
ngx_http_canary_sync_roll_back(ngx_http_canary_sync_t *sync,
    ngx_http_canary_split_t *split, ngx_http_canary_update_t *u)
{
    u_char  *p, esc[4 * 64 + 4];

    split->sh->rolled_back = 1;
    ngx_memory_barrier();

    p = ngx_http_canary_sync_escape(esc, u->updated_by, u->updated_by_len);

    ngx_log_error(NGX_LOG_WARN, sync->log, 0,
                  "canary split \"%V\" rolled back by \"%*s\" "
                  "(generation %uL): every request goes to stable \"%V\" "
                  "until canary-ctl reset",
                  &split->name, p - esc, esc, u->generation,
                  &split->upstream[NGX_HTTP_CANARY_STABLE]);
}


/*
 * The read said the incident is over: the guard re-arms, the rollback
 * ends.  Called once the pins of the same read are in force.
 */

static void
ngx_http_canary_sync_lift(ngx_http_canary_sync_t *sync, ngx_uint_t index)
{
    ngx_http_canary_split_t      **splitp, *split;
    ngx_http_canary_shm_split_t   *shs;
    ngx_http_canary_sync_split_t  *ss;

    splitp = sync->cmcf->splits.elts;
    split = splitp[index];
    shs = split->sh;
    ss = &sync->splits[index];

    ngx_memory_barrier();

    if (ss->rearm) {
        ngx_http_canary_guard_rearm(split, ss->generation);
    }

    if (ss->lift_rollback && shs->rolled_back) {
        shs->rolled_back = 0;

        ngx_log_error(NGX_LOG_NOTICE, sync->log, 0,
                      "canary split \"%V\": the rollback ends with "
                      "generation %uL, routing by weight again",
                      &split->name, ss->generation);
    }

    ss->rearm = 0;
    ss->lift_rollback = 0;
}


/* written by a guard: updated_by "nginx-guard:HOST", as redis.c writes it */

static ngx_uint_t
ngx_http_canary_sync_by_guard(ngx_http_canary_update_t *u)
{
    size_t  n;

    n = sizeof(NGX_HTTP_CANARY_GUARD_WRITER) - 1;

    return u->has_updated_by && u->updated_by_len >= n
           && ngx_strncmp(u->updated_by, NGX_HTTP_CANARY_GUARD_WRITER, n) == 0;
}


/* free text fields: the length goes to 0 while the bytes change */

void
ngx_http_canary_sync_text(u_char *dst, ngx_atomic_t *len, const u_char *src,
    size_t n)
{
    if ((size_t) *len == n && ngx_memcmp(dst, src, n) == 0) {
        return;
    }

    *len = 0;
    ngx_memory_barrier();
    ngx_memcpy(dst, src, n);
    ngx_memory_barrier();
    *len = n;
}


static ngx_uint_t
ngx_http_canary_sync_first_time(ngx_http_canary_sync_split_t *ss,
    const u_char *a, size_t alen, const u_char *b, size_t blen)
{
    uint32_t    h;
    ngx_uint_t  i;

    h = ngx_http_canary_murmur2(a, alen, b, blen);

    for (i = 0; i < NGX_HTTP_CANARY_LOGGED; i++) {
        if (ss->logged[i] == h) {
            return 0;
        }
    }

    ss->logged[ss->next++ % NGX_HTTP_CANARY_LOGGED] = h;

    return 1;
}


/* bytes from Redis go to the log printable: no forged log lines */

static u_char *
ngx_http_canary_sync_escape(u_char *dst, const u_char *src, size_t n)
{
    size_t  i;

    static u_char  hex[] = "0123456789abcdef";

    for (i = 0; i < ngx_min(n, 64); i++) {
        if (src[i] < 0x20 || src[i] >= 0x7f || src[i] == '"'
            || src[i] == '\\')
        {
            *dst++ = '\\';
            *dst++ = 'x';
            *dst++ = hex[src[i] >> 4];
            *dst++ = hex[src[i] & 0xf];

        } else {
            *dst++ = src[i];
        }
    }

    return dst;
}


static void
ngx_http_canary_sync_reject(ngx_http_canary_sync_t *sync,
    ngx_http_canary_split_t *split, ngx_uint_t index, const char *why,
    redisReply *field, redisReply *value)
{
    u_char                        *f, *v;
    u_char                         fesc[4 * 64 + 4], vesc[4 * 64 + 4];
    ngx_http_canary_sync_split_t  *ss;

    ss = &sync->splits[index];

    if (ss->rejected++ >= NGX_HTTP_CANARY_LOG_MAX
        || !ngx_http_canary_sync_first_time(ss,
                                            (u_char *) field->str, field->len,
                                            (u_char *) value->str,
                                            value->len))
    {
        return;
    }

    /* a value may be a megabyte of anything: log its start, escaped */
    f = ngx_http_canary_sync_escape(fesc, (u_char *) field->str, field->len);
    v = ngx_http_canary_sync_escape(vesc, (u_char *) value->str, value->len);

    ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                  "canary_redis: split \"%V\": rejected field \"%*s\"%s "
                  "value \"%*s\"%s (%uz bytes) of key \"%V%V\": %s, "
                  "the last good value stays",
                  &split->name, f - fesc, fesc, field->len > 64 ? "..." : "",
                  v - vesc, vesc, value->len > 64 ? "..." : "", value->len,
                  &sync->cmcf->redis->prefix, &split->name, why);
}


static void
ngx_http_canary_sync_pins(ngx_http_canary_sync_t *sync, ngx_uint_t index,
    redisReply *sets[2])
{
    size_t                        i, n, keys, size, npins[2];
    ngx_uint_t                    v;
    redisReply                   *m;
    ngx_http_canary_pins_t       *pins;
    ngx_http_canary_split_t     **splitp, *split;
    ngx_http_canary_shm_split_t  *shs;

    splitp = sync->cmcf->splits.elts;
    split = splitp[index];
    shs = split->sh;

    n = 0;
    keys = 0;

    for (v = 0; v < 2; v++) {
        for (i = 0; i < sets[v]->elements; i++) {
            m = sets[v]->element[i];

            if (m->type != REDIS_REPLY_STRING || m->len == 0
                || m->len > NGX_HTTP_CANARY_PIN_KEY_MAX)
            {
                sync->splits[index].rejected++;

                if (m->type == REDIS_REPLY_STRING
                    && ngx_http_canary_sync_first_time(&sync->splits[index],
                           (u_char *) "pin", 3, (u_char *) m->str, m->len))
                {
                    ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                                  "canary_redis: split \"%V\": ignored a "
                                  "pinned tenant of %uz bytes: 1 to %d",
                                  &split->name, m->len,
                                  NGX_HTTP_CANARY_PIN_KEY_MAX);
                }

                continue;
            }

            n++;
            keys += m->len;
        }
    }

    if (n > NGX_HTTP_CANARY_PINS_MAX) {
        ngx_http_canary_sync_too_many(sync, index, n);
        return;
    }

    npins[0] = 0;
    npins[1] = 0;

    if (n == 0) {
        if (shs->pins) {
            ngx_http_canary_sync_publish(sync, shs, NULL, npins);
        }

        return;
    }

    size = ngx_http_canary_pins_size(n, keys);

    /*
     * Pins that do not fit are ours to report, once (the Redis adapter
     * logs each distinct error once): not the allocator's [crit] on
     * every poll.
     */
    ngx_shmtx_lock(&sync->cmcf->shpool->mutex);
    sync->cmcf->shpool->log_nomem = 0;
    pins = ngx_slab_alloc_locked(sync->cmcf->shpool, size);
    sync->cmcf->shpool->log_nomem = 1;
    ngx_shmtx_unlock(&sync->cmcf->shpool->mutex);

    if (pins == NULL) {
        ngx_http_canary_sync_failed(sync,
            "canary_redis: split \"%V\": no room for %uz pinned tenants "
            "(%uz bytes) in canary_zone \"%V\": the last good pins stay",
            &split->name, n, size, &sync->cmcf->shm_zone->shm.name);
        return;
    }

    ngx_http_canary_pins_init(pins, size, n);

    /* a tenant in both sets stays on canary: its first pin wins */
    for (v = 2; v-- > 0; /* void */) {
        for (i = 0; i < sets[v]->elements; i++) {
            m = sets[v]->element[i];

            if (m->type == REDIS_REPLY_STRING
                && ngx_http_canary_pins_add(pins, (u_char *) m->str, m->len,
                                            v) == 0)
            {
                npins[v]++;
            }
        }
    }

    if (shs->pins && shs->pins->size == pins->size
        && ngx_memcmp(shs->pins, pins, size) == 0)
    {
        /* the same pins as before: nothing to publish */
        ngx_slab_free(sync->cmcf->shpool, pins);
        return;
    }

    ngx_http_canary_sync_publish(sync, shs, pins, npins);
}


/* more pins than a split may have: refused, the last good pins stay */

static void
ngx_http_canary_sync_too_many(ngx_http_canary_sync_t *sync,
    ngx_uint_t index, size_t n)
{
    ngx_http_canary_split_t  **splitp;

    splitp = sync->cmcf->splits.elts;

    /* a refused value: what was logged is kept, not logged again */
    sync->splits[index].rejected++;

    if (ngx_http_canary_sync_first_time(&sync->splits[index],
            (u_char *) "pins", 4, (u_char *) &n, sizeof(size_t)))
    {
        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "canary_redis: split \"%V\": %uz pinned tenants, "
                      "at most %d: the last good pins stay",
                      &splitp[index]->name, n, NGX_HTTP_CANARY_PINS_MAX);
    }
}


static void
ngx_http_canary_sync_publish(ngx_http_canary_sync_t *sync,
    ngx_http_canary_shm_split_t *shs, ngx_http_canary_pins_t *pins,
    size_t npins[2])
{
    ngx_uint_t                  i, oldest;
    ngx_http_canary_retired_t  *r;

    r = NULL;
    oldest = 0;

    for (i = 0; i < NGX_HTTP_CANARY_RETIRED; i++) {
        if (sync->retired[i].pins == NULL) {
            r = &sync->retired[i];
            break;
        }

        if (sync->retired[i].since < sync->retired[oldest].since) {
            oldest = i;
        }
    }

    if (r == NULL) {
        r = &sync->retired[oldest];
        ngx_slab_free(sync->cmcf->shpool, r->pins);
    }

    r->pins = shs->pins;
    r->since = ngx_current_msec;

    (void) ngx_atomic_fetch_add(&shs->pins_seq, 1);
    ngx_memory_barrier();
    shs->pins = pins;
    ngx_memory_barrier();
    (void) ngx_atomic_fetch_add(&shs->pins_seq, 1);

    shs->npins[NGX_HTTP_CANARY_STABLE] = npins[NGX_HTTP_CANARY_STABLE];
    shs->npins[NGX_HTTP_CANARY_CANARY] = npins[NGX_HTTP_CANARY_CANARY];
}


/* frees what readers are done with; returns when the next is due, or 0 */

ngx_msec_t
ngx_http_canary_sync_retire(ngx_http_canary_sync_t *sync)
{
    ngx_uint_t  i;
    ngx_msec_t  age, left;

    left = 0;

    for (i = 0; i < NGX_HTTP_CANARY_RETIRED; i++) {
        if (sync->retired[i].pins == NULL) {
            continue;
        }

        age = ngx_current_msec - sync->retired[i].since;

        if (age >= NGX_HTTP_CANARY_RETIRE_AFTER) {
            ngx_slab_free(sync->cmcf->shpool, sync->retired[i].pins);
            sync->retired[i].pins = NULL;
            continue;
        }

        if (left == 0 || NGX_HTTP_CANARY_RETIRE_AFTER - age < left) {
            left = NGX_HTTP_CANARY_RETIRE_AFTER - age;
        }
    }

    return left;
}


/* what the Redis adapter reports of this read: log line and status */

static void
ngx_http_canary_sync_failed(ngx_http_canary_sync_t *sync, const char *fmt,
    ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(sync->error, sync->error + sizeof(sync->error), fmt,
                      args);
    va_end(args);

    sync->error_len = p - sync->error;
}
