
/*
 * The fleet: every interval the syncing worker reports this nginx to
 * Redis, one record per split (ngx_http_canary_contract.h), so that the
 * sidecar and canary-ctl find every nginx without a list of URLs.  This
 * file makes the command (one EVAL for all splits) and reads its reply;
 * the connection is the Redis adapter's (ngx_http_canary_redis.c), which
 * calls this file.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>

#include "ngx_http_canary_module.h"


/* other instances a duplicate node name was logged for, not again */
#define NGX_HTTP_CANARY_FLEET_WARNED   16

/* "unix seconds.pid" */
#define NGX_HTTP_CANARY_INSTANCE_LEN   (NGX_TIME_T_LEN + 1 + NGX_INT64_LEN)

/* EVAL, the script, numkeys; node, instance, ttl */
#define NGX_HTTP_CANARY_FLEET_ARGS     6


typedef struct {
    u_char                        data[NGX_HTTP_CANARY_INSTANCE_LEN];
    size_t                        len;
} ngx_http_canary_fleet_instance_t;


struct ngx_http_canary_fleet_s {
    ngx_http_canary_main_conf_t  *cmcf;
    ngx_log_t                    *log;

    ngx_http_canary_node_report_t node;
    u_char                        instance[NGX_HTTP_CANARY_INSTANCE_LEN];
    u_char                        ttl[NGX_INT64_LEN];
    size_t                        ttl_len;
    u_char                        nkeys[NGX_INT_T_LEN];
    u_char                        pid[NGX_INT64_LEN];
    ngx_uint_t                    window;       /* seconds, for a rate */

    /* a split at a time, and the records of one round */
    ngx_http_canary_split_report_t *report;
    u_char                       *records;      /* nsplits x RECORD_MAX */
    ngx_str_t                    *keys;         /* record, nodes: a split */

    /* the command of the round: the splits in it, in the order sent */
    const char                  **argv;
    size_t                       *argvlen;
    ngx_uint_t                   *sent;
    size_t                       *reclen;
    ngx_uint_t                    nsent;

    /* per split: a round was written; a record too long was logged */
    u_char                       *written;
    u_char                       *too_long;

    ngx_http_canary_fleet_instance_t  warned[NGX_HTTP_CANARY_FLEET_WARNED];
    ngx_uint_t                    next_warned;

    u_char                        error[NGX_HTTP_CANARY_ERROR_LEN];
};


static void ngx_http_canary_fleet_other(ngx_http_canary_fleet_t *fleet,
    ngx_uint_t index, redisReply *other);


/*
 * Per split, KEYS: the record, the nodes set; ARGV: the node, the
 * instance, the ttl (ms), then a record per split.  The score is Redis'
 * time: the clocks of the nginx do not matter.  A live record of this
 * node name written by another instance is returned (its writer may be
 * this nginx before a restart, or another nginx with the same node=).
 * Members expired NGX_HTTP_CANARY_NODE_SILENT_MAX ago are removed: until
 * then an expired one is silent (cut from Redis?), not gone.
 * SET fails only for all splits at once (a replica's READONLY, OOM): it
 * ends the script with that error; an error of the set (a key of
 * another type) stays its split's.  Per split the reply holds that
 * instance or "", and the error or "".
 */

static const char  ngx_http_canary_fleet_script[] =
    "if redis.replicate_commands then redis.replicate_commands() end "
    "local function e(r) return type(r) == 'table' and r.err or nil end "
    "local t = redis.call('TIME') "
    "local now = t[1] * 1000 + math.floor(t[2] / 1000) "
    "local ttl = tonumber(ARGV[3]) "
    "local r = {} "
    "for i = 1, #KEYS / 2 do "
    "local k, z = KEYS[2 * i - 1], KEYS[2 * i] "
    "local o = redis.pcall('GET', k) "
    "local other = type(o) == 'string' "
    "and string.match(o, '\"instance\":\"([^\"]*)\"') or '' "
    "if other == ARGV[2] then other = '' end "
    "redis.call('SET', k, ARGV[3 + i], 'PX', ttl) "
    "local x = e(redis.pcall('ZADD', z, string.format('%.0f', now + ttl), "
    "ARGV[1])) "
    "or e(redis.pcall('ZREMRANGEBYSCORE', z, '-inf', "
    "'(' .. string.format('%.0f', now - "
    NGX_HTTP_CANARY_NODE_SILENT_TEXT "))) "
    "r[2 * i - 1] = other "
    "r[2 * i] = x or '' "
    "end "
    "return r";


/*
 * A graceful stop: this nginx leaves the fleet at once.  KEYS as above;
 * ARGV: the node, the pid of the syncing worker, the instance.  Only a
 * record this worker wrote goes: after a reload the new syncing
 * worker's stays, and another nginx's with this node name (in a
 * container its workers' pids may be the same) too.
 */

static const char  ngx_http_canary_fleet_goodbye_script[] =
    "for i = 1, #KEYS / 2 do "
    "local k, z = KEYS[2 * i - 1], KEYS[2 * i] "
    "local o = redis.pcall('GET', k) "
    "if type(o) == 'string' "
    "and string.match(o, '\"pid\":(%d+)') == ARGV[2] "
    "and string.find(o, '\"instance\":\"' .. ARGV[3] .. '\"', 1, true) "
    "then "
    "redis.call('DEL', k) "
    "redis.pcall('ZREM', z, ARGV[1]) "
    "end "
    "end "
    "return 0";


ngx_http_canary_fleet_t *
ngx_http_canary_fleet_create(ngx_cycle_t *cycle,
    ngx_http_canary_main_conf_t *cmcf)
{
    u_char                        *p;
    size_t                         len;
    ngx_uint_t                     n, i;
    ngx_http_canary_fleet_t       *fleet;
    ngx_http_canary_split_t      **splitp;
    ngx_http_canary_redis_conf_t  *rc;

    rc = cmcf->redis;
    n = cmcf->splits.nelts;

    fleet = ngx_pcalloc(cycle->pool, sizeof(ngx_http_canary_fleet_t));
    if (fleet == NULL) {
        return NULL;
    }

    fleet->report = ngx_palloc(cycle->pool,
                               sizeof(ngx_http_canary_split_report_t));
    fleet->records = ngx_palloc(cycle->pool,
                                n * NGX_HTTP_CANARY_NODE_RECORD_MAX);
    fleet->keys = ngx_palloc(cycle->pool, 2 * n * sizeof(ngx_str_t));
    fleet->argv = ngx_palloc(cycle->pool,
                             (NGX_HTTP_CANARY_FLEET_ARGS + 3 * n)
                             * sizeof(char *));
    fleet->argvlen = ngx_palloc(cycle->pool,
                                (NGX_HTTP_CANARY_FLEET_ARGS + 3 * n)
                                * sizeof(size_t));
    fleet->sent = ngx_palloc(cycle->pool, n * sizeof(ngx_uint_t));
    fleet->reclen = ngx_palloc(cycle->pool, n * sizeof(size_t));
    fleet->written = ngx_pcalloc(cycle->pool, n);
    fleet->too_long = ngx_pcalloc(cycle->pool, n);

    if (fleet->report == NULL || fleet->records == NULL
        || fleet->keys == NULL || fleet->argv == NULL
        || fleet->argvlen == NULL || fleet->sent == NULL
        || fleet->reclen == NULL || fleet->written == NULL
        || fleet->too_long == NULL)
    {
        return NULL;
    }

    fleet->cmcf = cmcf;
    fleet->log = cycle->log;

    /*
     * One per master start, the same in every worker and across reloads:
     * made by the master with the zone.
     */
    p = ngx_sprintf(fleet->instance, "%T.%P", cmcf->sh->started,
                    cmcf->sh->master);

    fleet->node.node.data = rc->node.data;
    fleet->node.node.len = rc->node.len;
    fleet->node.instance.data = fleet->instance;
    fleet->node.instance.len = p - fleet->instance;
    fleet->node.pid = ngx_pid;
    fleet->node.interval_ms = rc->interval;

    p = ngx_sprintf(fleet->ttl, "%M",
                    (ngx_msec_t) (NGX_HTTP_CANARY_NODE_TTL_INTERVALS
                                  * rc->interval));
    fleet->ttl_len = p - fleet->ttl;

    /* the rate's window: the interval, in whole seconds */
    fleet->window = (rc->interval + 999) / 1000;
    fleet->window = ngx_max(fleet->window, 1);
    fleet->window = ngx_min(fleet->window, NGX_HTTP_CANARY_WINDOW_MAX);

    splitp = cmcf->splits.elts;

    for (i = 0; i < n; i++) {
        len = rc->prefix.len + splitp[i]->name.len;

        p = ngx_pnalloc(cycle->pool,
                        len + sizeof(NGX_HTTP_CANARY_KEY_NODE) - 1
                        + rc->node.len
                        + len + sizeof(NGX_HTTP_CANARY_KEY_NODES) - 1);
        if (p == NULL) {
            return NULL;
        }

        fleet->keys[2 * i].data = p;
        p = ngx_sprintf(p, "%V%V" NGX_HTTP_CANARY_KEY_NODE "%V",
                        &rc->prefix, &splitp[i]->name, &rc->node);
        fleet->keys[2 * i].len = p - fleet->keys[2 * i].data;

        fleet->keys[2 * i + 1].data = p;
        p = ngx_sprintf(p, "%V%V" NGX_HTTP_CANARY_KEY_NODES,
                        &rc->prefix, &splitp[i]->name);
        fleet->keys[2 * i + 1].len = p - fleet->keys[2 * i + 1].data;
    }

    return fleet;
}


/*
 * The round's command, for redisAsyncCommandArgv(): its argc, 0 when
 * there is nothing to report.  The pointers stay good until the next
 * round; hiredis copies the bytes as it queues the command.
 */

ngx_uint_t
ngx_http_canary_fleet_command(ngx_http_canary_fleet_t *fleet,
    const char ***argv, const size_t **argvlen)
{
    u_char                    *rec;
    time_t                     now;
    ngx_uint_t                 i, n, k, a;
    ngx_http_canary_out_t      out;
    ngx_http_canary_split_t  **splitp;

    splitp = fleet->cmcf->splits.elts;
    now = ngx_time();
    n = 0;

    for (i = 0; i < fleet->cmcf->splits.nelts; i++) {
        ngx_memzero(fleet->report, sizeof(ngx_http_canary_split_report_t));
        ngx_http_canary_report_split(splitp[i], fleet->window, now,
                                     fleet->report);

        rec = fleet->records + n * NGX_HTTP_CANARY_NODE_RECORD_MAX;

        out.pos = rec;
        out.end = rec + NGX_HTTP_CANARY_NODE_RECORD_MAX;
        out.need = 0;

        ngx_http_canary_render_node(&out, &fleet->node, fleet->report);

        /* cannot be: the counters would hold over 2^64 requests */
        if (out.need > NGX_HTTP_CANARY_NODE_RECORD_MAX) {
            if (!fleet->too_long[i]) {
                ngx_log_error(NGX_LOG_ERR, fleet->log, 0,
                              "canary_redis: the record of split \"%V\" "
                              "would be %uz bytes, over the %d a reader "
                              "takes: not reported", &splitp[i]->name,
                              out.need, NGX_HTTP_CANARY_NODE_RECORD_MAX);
                fleet->too_long[i] = 1;
            }

            continue;
        }

        fleet->sent[n] = i;
        fleet->reclen[n] = out.need;
        n++;
    }

    fleet->nsent = n;

    if (n == 0) {
        return 0;
    }

    fleet->argv[0] = "EVAL";
    fleet->argvlen[0] = sizeof("EVAL") - 1;
    fleet->argv[1] = ngx_http_canary_fleet_script;
    fleet->argvlen[1] = sizeof(ngx_http_canary_fleet_script) - 1;
    fleet->argv[2] = (const char *) fleet->nkeys;
    fleet->argvlen[2] = ngx_sprintf(fleet->nkeys, "%ui", 2 * n)
                        - fleet->nkeys;

    a = 3;

    for (k = 0; k < n; k++) {
        i = fleet->sent[k];

        fleet->argv[a] = (const char *) fleet->keys[2 * i].data;
        fleet->argvlen[a++] = fleet->keys[2 * i].len;
        fleet->argv[a] = (const char *) fleet->keys[2 * i + 1].data;
        fleet->argvlen[a++] = fleet->keys[2 * i + 1].len;
    }

    fleet->argv[a] = (const char *) fleet->node.node.data;
    fleet->argvlen[a++] = fleet->node.node.len;
    fleet->argv[a] = (const char *) fleet->node.instance.data;
    fleet->argvlen[a++] = fleet->node.instance.len;
    fleet->argv[a] = (const char *) fleet->ttl;
    fleet->argvlen[a++] = fleet->ttl_len;

    for (k = 0; k < n; k++) {
        fleet->argv[a] = (const char *)
                         (fleet->records + k * NGX_HTTP_CANARY_NODE_RECORD_MAX);
        fleet->argvlen[a++] = fleet->reclen[k];
    }

    *argv = fleet->argv;
    *argvlen = fleet->argvlen;

    return a;
}


/* the goodbye's command, like the round's */

ngx_uint_t
ngx_http_canary_fleet_goodbye(ngx_http_canary_fleet_t *fleet,
    const char ***argv, const size_t **argvlen)
{
    ngx_uint_t  i, n, a;

    n = fleet->cmcf->splits.nelts;

    if (n == 0) {
        return 0;
    }

    fleet->argv[0] = "EVAL";
    fleet->argvlen[0] = sizeof("EVAL") - 1;
    fleet->argv[1] = ngx_http_canary_fleet_goodbye_script;
    fleet->argvlen[1] = sizeof(ngx_http_canary_fleet_goodbye_script) - 1;
    fleet->argv[2] = (const char *) fleet->nkeys;
    fleet->argvlen[2] = ngx_sprintf(fleet->nkeys, "%ui", 2 * n)
                        - fleet->nkeys;

    a = 3;

    for (i = 0; i < 2 * n; i++) {
        fleet->argv[a] = (const char *) fleet->keys[i].data;
        fleet->argvlen[a++] = fleet->keys[i].len;
    }

    fleet->argv[a] = (const char *) fleet->node.node.data;
    fleet->argvlen[a++] = fleet->node.node.len;
    fleet->argv[a] = (const char *) fleet->pid;
    fleet->argvlen[a++] = ngx_sprintf(fleet->pid, "%P", ngx_pid)
                          - fleet->pid;
    fleet->argv[a] = (const char *) fleet->node.instance.data;
    fleet->argvlen[a++] = fleet->node.instance.len;

    *argv = fleet->argv;
    *argvlen = fleet->argvlen;

    return a;
}


/*
 * The reply, an array (the adapter handles an error reply): per split
 * sent, another instance's live record it replaced (or ""), and an error
 * (or "").  NGX_ERROR: not such an array; NGX_OK otherwise.  error says
 * what failed, if anything.
 */

ngx_int_t
ngx_http_canary_fleet_reply(ngx_http_canary_fleet_t *fleet,
    redisReply *reply, ngx_str_t *error)
{
    u_char                    *p;
    ngx_uint_t                 k, i;
    redisReply                *other, *err;
    ngx_http_canary_split_t  **splitp;

    error->len = 0;
    error->data = fleet->error;

    if (reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2 * fleet->nsent)
    {
        p = ngx_snprintf(fleet->error, sizeof(fleet->error),
                         "an unexpected reply (type %d)", reply->type);
        error->len = p - fleet->error;
        return NGX_ERROR;
    }

    splitp = fleet->cmcf->splits.elts;

    for (k = 0; k < fleet->nsent; k++) {
        i = fleet->sent[k];
        other = reply->element[2 * k];
        err = reply->element[2 * k + 1];

        if (err->type == REDIS_REPLY_STRING && err->len) {
            /* one split's keys of another type: the others are written */
            p = ngx_snprintf(fleet->error, sizeof(fleet->error),
                             "split \"%V\": %*s", &splitp[i]->name,
                             ngx_min(err->len, 100), err->str);
            error->len = p - fleet->error;
            continue;
        }

        if (other->type == REDIS_REPLY_STRING && other->len) {
            ngx_http_canary_fleet_other(fleet, i, other);
        }

        fleet->written[i] = 1;
    }

    return NGX_OK;
}


/*
 * A live record of our node name from another instance.  Before our
 * first write of the split it is most likely this nginx before a
 * restart; after it, another nginx wrote the key since our last round:
 * two nginx report as one node, and their records overwrite each other.
 */

static void
ngx_http_canary_fleet_other(ngx_http_canary_fleet_t *fleet, ngx_uint_t index,
    redisReply *other)
{
    size_t                             len;
    u_char                            *p;
    ngx_str_t                          ours;
    ngx_uint_t                         i;
    ngx_http_canary_split_t          **splitp;
    ngx_http_canary_fleet_instance_t  *w;

    splitp = fleet->cmcf->splits.elts;
    ours.data = fleet->instance;
    ours.len = fleet->node.instance.len;

    /* the instance is another nginx's text: printable, bounded */
    len = ngx_min(other->len, NGX_HTTP_CANARY_INSTANCE_LEN);

    for (p = (u_char *) other->str; p < (u_char *) other->str + len; p++) {
        if (*p < 0x20 || *p >= 0x7f) {
            *p = '?';
        }
    }

    if (!fleet->written[index]) {
        ngx_log_error(NGX_LOG_INFO, fleet->log, 0,
                      "canary_redis: node \"%V\" of split \"%V\" replaces "
                      "the live record of instance %*s (this nginx before "
                      "a restart?)", &fleet->cmcf->redis->node,
                      &splitp[index]->name,
                      len, other->str);
        return;
    }

    for (i = 0; i < NGX_HTTP_CANARY_FLEET_WARNED; i++) {
        w = &fleet->warned[i];

        if (w->len == len && ngx_memcmp(w->data, other->str, len) == 0) {
            return;
        }
    }

    ngx_log_error(NGX_LOG_WARN, fleet->log, 0,
                  "canary_redis: two nginx report as node \"%V\" "
                  "(instances %V and %*s, split \"%V\"): their records "
                  "overwrite each other; give each its own "
                  "canary_redis node=", &fleet->cmcf->redis->node,
                  &ours, len, other->str,
                  &splitp[index]->name);

    w = &fleet->warned[fleet->next_warned++ % NGX_HTTP_CANARY_FLEET_WARNED];
    ngx_memcpy(w->data, other->str, len);
    w->len = len;
}
