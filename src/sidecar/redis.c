
/*
 * Redis: lease, state, and each decision's write as one MULTI/EXEC.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "redis.h"
#include "receipts.h"


#define CS_RECEIPTS_MAXLEN  "10000"


typedef struct {
    char              **argv;
    size_t             *len;
    size_t              n;
    size_t              size;
    int                 failed;
} cs_args_t;


static void cs_args_add(cs_args_t *a, const char *s);
static void cs_args_addf(cs_args_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void cs_args_free(cs_args_t *a);
static void cs_args_addb(cs_args_t *a, const void *p, size_t len);
static void cs_redis_evidence_args(cs_redis_t *r, cs_args_t *a);
static redisReply *cs_redis_command(cs_redis_t *r, cs_args_t *a);
static int cs_redis_pipeline(cs_redis_t *r, cs_args_t *cmds, size_t n,
    redisReply **replies);
static int cs_redis_io_error(cs_redis_t *r, const char *what);
static int cs_redis_ask(cs_redis_t *r);
static void cs_redis_moved(cs_redis_t *r, const redisReply *reply);
static int cs_redis_fence(cs_redis_t *r, const char *watch_key,
    int check_generation, uint64_t expect);
static void cs_redis_state_args(cs_redis_t *r, cs_args_t *a,
    const cs_plan_t *plan, const cs_rollout_t *ro, const char *readings,
    int64_t now);
static int cs_redis_exec_result(cs_redis_t *r, redisReply *exec);
static char *cs_strcat3(const char *a, const char *b, const char *c);
static void *cs_redis_create_array(const redisReadTask *task, int elements);
static int cs_redis_time(const redisReply *t, int64_t *now);
static int cs_digits(const char *p, size_t len, size_t max, int64_t *value);
static int cs_state_trigger_since(const redisReply *v, int64_t now,
    int64_t *since, char *err, size_t errlen);
static int cs_state_time(const redisReply *v, const char *field,
    int64_t now, int64_t *t, char *err, size_t errlen);
static void cs_redis_later_cohorts_off(cs_args_t *a, const cs_plan_t *plan,
    const cs_cohorts_t *first);


/* renew the lease only while it still holds this id */
static const char  *cs_redis_renew_script =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";

/*
 * The split's live nodes (scored above Redis' TIME) and their records,
 * MGET by a thousand: a record over ARGV[3] bytes comes back as its
 * length, a name over 64 bytes cut there (it is not a node's anyway).
 */
static const char  *cs_redis_fleet_script =
    "local t = redis.call('time') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local names = redis.call('zrangebyscore', KEYS[1], "
    "string.format('(%.0f', now), '+inf', 'limit', 0, tonumber(ARGV[2])) "
    "local recs = {} "
    "local max = tonumber(ARGV[3]) "
    "for i = 1, #names, 1000 do "
    "local keys = {} "
    "for k = i, math.min(i + 999, #names) do "
    "keys[#keys + 1] = ARGV[1] .. names[k] end "
    "local got = redis.call('mget', unpack(keys)) "
    "for k = 1, #keys do "
    "local v = got[k] "
    "if v and #v > max then v = #v end "
    "recs[#recs + 1] = v end end "
    "local silent = redis.call('zrangebyscore', KEYS[1], "
    "string.format('%.0f', now - " NGX_HTTP_CANARY_NODE_SILENT_TEXT "), "
    "string.format('%.0f', now), 'limit', 0, tonumber(ARGV[2])) "
    "for _, l in ipairs({names, silent}) do "
    "for i = 1, #l do "
    "if #l[i] > 64 then l[i] = string.sub(l[i], 1, 64) end end end "
    "return {t[1], t[2], names, recs, silent}";

/*
 * An evidence snapshot, kept as long as its receipt: KEYS the snapshot,
 * the index, the receipts stream; ARGV the bytes, the snapshots' key
 * prefix.  Runs in the decision's MULTI after its XADD: the stream's
 * newest entry is the receipt, whose time scores the snapshot; those
 * scored before the stream's oldest entry lost their receipt to MAXLEN:
 * deleted.  It never fails the decision's EXEC: an index that is not a
 * sorted set (written by hand) only leaves old snapshots in place, and
 * it deletes only keys with the snapshots' prefix.
 */
static const char  *cs_redis_evidence_script =
    "redis.call('SET', KEYS[1], ARGV[1]) "
    "local function ms(e) "
    "  if type(e) == 'table' and e[1] then "
    "    return tonumber(string.match(e[1][1], '^(%d+)')) end end "
    "local t = ms(redis.pcall('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)) "
    "if type(redis.pcall('ZADD', KEYS[2], t or 0, KEYS[1])) ~= 'number' "
    "then return 0 end "
    "local f = ms(redis.pcall('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)) "
    "if not f then return 0 end "
    "local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. f) "
    "for _, k in ipairs(old) do "
    "  if string.sub(k, 1, #ARGV[2]) == ARGV[2] then "
    "    redis.call('DEL', k) end end "
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. f) "
    "return #old";

static const char  *cs_redis_release_script =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) end return 0";

/*
 * A rollback takes every cohort off the canary: each weight.COHORT field
 * of the split's hash to 0, the plan's and any an operator set, inside
 * the decision's MULTI (ARGV[1]: the field's prefix).
 */
static const char  *cs_redis_cohorts_off_script =
    "local h = redis.call('hgetall', KEYS[1]) "
    "local n = 0 "
    "for i = 1, #h, 2 do "
    "if string.sub(h[i], 1, #ARGV[1]) == ARGV[1] then "
    "redis.call('hset', KEYS[1], h[i], '0') n = n + 1 end end "
    "return n";


int
cs_redis_init(cs_redis_t *r, const char *address, const char *password,
    const char *prefix, const char *split, const char *id, int64_t lease_ms,
    char *err, size_t errlen)
{
    long         port;
    char        *end;
    const char  *colon;

    memset(r, 0, sizeof(cs_redis_t));

    if (address == NULL) {
        /* the sentinels give it */

    } else if (strncmp(address, "unix:", 5) == 0 && address[5]) {
        r->unix_path = strdup(address + 5);

    } else {
        colon = strrchr(address, ':');

        if (colon == NULL || colon == address) {
            snprintf(err, errlen, "--redis \"%s\": HOST:PORT or unix:PATH",
                     address);
            return -1;
        }

        port = strtol(colon + 1, &end, 10);

        if (*end || port < 1 || port > 65535) {
            snprintf(err, errlen, "--redis \"%s\": the port is not 1 to "
                     "65535", address);
            return -1;
        }

        if (address[0] == '[' && colon[-1] == ']') {
            r->host = strndup(address + 1, (size_t) (colon - address - 2));

        } else {
            r->host = strndup(address, (size_t) (colon - address));
        }

        r->port = (int) port;
    }

    r->password = password ? strdup(password) : NULL;
    r->id = strdup(id);
    r->timeout_ms = 1000;
    r->lease_ms = lease_ms;

    r->key = cs_strcat3(prefix, split, "");
    r->sidecar_key = cs_strcat3(prefix, split, NGX_HTTP_CANARY_KEY_SIDECAR);
    r->leader_key = cs_strcat3(prefix, split, NGX_HTTP_CANARY_KEY_LEADER);
    r->receipts_key = cs_strcat3(prefix, split,
                                 NGX_HTTP_CANARY_KEY_RECEIPTS);
    r->pin_keys[CS_STABLE] = cs_strcat3(prefix, split,
                                        NGX_HTTP_CANARY_KEY_PIN_STABLE);
    r->pin_keys[CS_CANARY] = cs_strcat3(prefix, split,
                                        NGX_HTTP_CANARY_KEY_PIN_CANARY);
    r->plan_pin_key = cs_strcat3(prefix, split, NGX_HTTP_CANARY_KEY_PIN_PLAN);
    r->nodes_key = cs_strcat3(prefix, split, NGX_HTTP_CANARY_KEY_NODES);
    r->node_prefix = cs_strcat3(prefix, split, NGX_HTTP_CANARY_KEY_NODE);

    if ((address && r->host == NULL && r->unix_path == NULL) || r->id == NULL
        || r->key == NULL || r->sidecar_key == NULL || r->leader_key == NULL
        || r->receipts_key == NULL || r->pin_keys[0] == NULL
        || r->pin_keys[1] == NULL || r->plan_pin_key == NULL
        || r->nodes_key == NULL || r->node_prefix == NULL
        || (password && r->password == NULL))
    {
        snprintf(err, errlen, "no memory");
        cs_redis_free(r);
        return -1;
    }

    return 0;
}


void
cs_redis_free(cs_redis_t *r)
{
    cs_redis_close(r);

    free(r->host);
    free(r->unix_path);

    if (r->password) {
        memset(r->password, 0, strlen(r->password));
        free(r->password);
    }

    free(r->id);
    free(r->key);
    free(r->sidecar_key);
    free(r->leader_key);
    free(r->receipts_key);
    free(r->pin_keys[0]);
    free(r->pin_keys[1]);
    free(r->plan_pin_key);
    free(r->nodes_key);
    free(r->node_prefix);

    while (r->nsentinels) {
        free(r->sentinels[--r->nsentinels].host);
    }

    free(r->sentinels);
    free(r->master);

    memset(r, 0, sizeof(cs_redis_t));
}


int
cs_redis_sentinels(cs_redis_t *r, const char *list, const char *master,
    char *err, size_t errlen)
{
    long            port;
    char           *end, *colon;
    size_t          len;
    const char     *p, *comma;
    cs_sentinel_t  *s;

    for (p = list; ; p = comma + 1) {
        comma = strchr(p, ',');
        len = comma ? (size_t) (comma - p) : strlen(p);

        s = realloc(r->sentinels, (r->nsentinels + 1) * sizeof(cs_sentinel_t));
        if (s == NULL) {
            snprintf(err, errlen, "no memory");
            return -1;
        }

        r->sentinels = s;
        s = &s[r->nsentinels];

        s->host = strndup(p, len);
        if (s->host == NULL) {
            snprintf(err, errlen, "no memory");
            return -1;
        }

        r->nsentinels++;

        colon = strrchr(s->host, ':');
        port = colon ? strtol(colon + 1, &end, 10) : 0;

        if (colon == NULL || colon == s->host || colon[1] == '\0' || *end
            || port < 1 || port > 65535)
        {
            snprintf(err, errlen, "--redis-sentinel \"%.*s\": HOST:PORT, "
                     "the port 1 to 65535", (int) len, p);
            return -1;
        }

        *colon = '\0';
        s->port = (int) port;

        if (s->host[0] == '[' && colon[-1] == ']') {
            colon[-1] = '\0';
            memmove(s->host, s->host + 1, strlen(s->host));
        }

        if (comma == NULL) {
            break;
        }
    }

    r->master = strdup(master);
    if (r->master == NULL) {
        snprintf(err, errlen, "no memory");
        return -1;
    }

    return 0;
}


int
cs_redis_connect(cs_redis_t *r)
{
    redisReply      *reply;
    struct timeval   tv;

    if (r->c != NULL && r->reask) {
        cs_redis_close(r);
    }

    if (r->c != NULL) {
        return 0;
    }

    if (r->nsentinels && cs_redis_ask(r) != 0) {
        return -1;
    }

    tv.tv_sec = r->timeout_ms / 1000;
    tv.tv_usec = (r->timeout_ms % 1000) * 1000;

    if (r->unix_path) {
        r->c = redisConnectUnixWithTimeout(r->unix_path, tv);

    } else {
        r->c = redisConnectWithTimeout(r->host, r->port, tv);
    }

    if (r->c == NULL) {
        snprintf(r->err, sizeof(r->err), "cannot allocate a connection");
        return -1;
    }

    if (r->c->err) {
        return cs_redis_io_error(r, "connect");
    }

    cs_redis_reader_limit(r->c->reader, &r->reader);

    if (redisSetTimeout(r->c, tv) != REDIS_OK) {
        return cs_redis_io_error(r, "set timeout");
    }

    if (r->password) {
        reply = redisCommand(r->c, "AUTH %s", r->password);

        if (reply == NULL) {
            return cs_redis_io_error(r, "AUTH");
        }

        if (reply->type == REDIS_REPLY_ERROR) {
            snprintf(r->err, sizeof(r->err), "AUTH: %.200s", reply->str);
            freeReplyObject(reply);
            cs_redis_close(r);
            return -1;
        }

        freeReplyObject(reply);
    }

    if (r->db == 0) {
        return 0;
    }

    /* the database nginx reads: canary_redis db=N, canary-ctl --db N */
    reply = redisCommand(r->c, "SELECT %ld", r->db);

    if (reply == NULL) {
        return cs_redis_io_error(r, "SELECT");
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(r->err, sizeof(r->err), "SELECT %ld: %.200s", r->db,
                 reply->str);
        freeReplyObject(reply);
        cs_redis_close(r);
        return -1;
    }

    freeReplyObject(reply);

    return 0;
}


void
cs_redis_close(cs_redis_t *r)
{
    if (r->c) {
        redisFree(r->c);
        r->c = NULL;
    }
}


int
cs_redis_lead(cs_redis_t *r, char *holder, size_t size)
{
    int          rc;
    char         lease[32];
    cs_args_t    a;
    redisReply  *reply;

    snprintf(lease, sizeof(lease), "%lld", (long long) r->lease_ms);
    holder[0] = '\0';

    if (r->leader) {
        memset(&a, 0, sizeof(cs_args_t));
        cs_args_add(&a, "EVAL");
        cs_args_add(&a, cs_redis_renew_script);
        cs_args_add(&a, "1");
        cs_args_add(&a, r->leader_key);
        cs_args_add(&a, r->id);
        cs_args_add(&a, lease);

        reply = cs_redis_command(r, &a);
        cs_args_free(&a);

        if (reply == NULL) {
            return -1;
        }

        rc = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;

        if (reply->type == REDIS_REPLY_ERROR) {
            snprintf(r->err, sizeof(r->err), "renewing the lease: %.200s",
                     reply->str);
            freeReplyObject(reply);
            return -1;
        }

        freeReplyObject(reply);

        if (rc) {
            return 1;
        }

        r->leader = 0;
    }

    memset(&a, 0, sizeof(cs_args_t));
    cs_args_add(&a, "SET");
    cs_args_add(&a, r->leader_key);
    cs_args_add(&a, r->id);
    cs_args_add(&a, "NX");
    cs_args_add(&a, "PX");
    cs_args_add(&a, lease);

    reply = cs_redis_command(r, &a);
    cs_args_free(&a);

    if (reply == NULL) {
        return -1;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(r->err, sizeof(r->err), "taking the lease: %.200s",
                 reply->str);
        freeReplyObject(reply);
        return -1;
    }

    rc = reply->type == REDIS_REPLY_STATUS;
    freeReplyObject(reply);

    if (rc) {
        r->leader = 1;
        return 1;
    }

    reply = redisCommand(r->c, "GET %s", r->leader_key);

    if (reply == NULL) {
        return cs_redis_io_error(r, "GET");
    }

    if (reply->type == REDIS_REPLY_STRING) {
        snprintf(holder, size, "%.*s", (int) reply->len, reply->str);
    }

    freeReplyObject(reply);

    return 0;
}


void
cs_redis_release(cs_redis_t *r)
{
    redisReply  *reply;

    if (!r->leader || r->c == NULL) {
        return;
    }

    r->leader = 0;

    reply = redisCommand(r->c, "EVAL %s 1 %s %s", cs_redis_release_script,
                         r->leader_key, r->id);

    if (reply) {
        freeReplyObject(reply);
    }
}


int
cs_redis_read(cs_redis_t *r, const cs_plan_t *plan, int64_t *now,
    cs_split_view_t *view, cs_rollout_t *ro, char **readings)
{
    int          rc;
    size_t       i;
    cs_args_t    cmds[5];
    redisReply  *replies[5], *exec, *t, *f, *v;

    *readings = NULL;

    memset(cmds, 0, sizeof(cmds));

    cs_args_add(&cmds[0], "MULTI");
    cs_args_add(&cmds[1], "TIME");
    cs_args_add(&cmds[2], "HGETALL");
    cs_args_add(&cmds[2], r->key);
    cs_args_add(&cmds[3], "HGETALL");
    cs_args_add(&cmds[3], r->sidecar_key);
    cs_args_add(&cmds[4], "EXEC");

    rc = cs_redis_pipeline(r, cmds, 5, replies);

    for (i = 0; i < 5; i++) {
        cs_args_free(&cmds[i]);
    }

    if (rc != 0) {
        return CS_REDIS_ERROR;
    }

    rc = CS_REDIS_ERROR;
    exec = replies[4];

    if (exec->type != REDIS_REPLY_ARRAY || exec->elements != 3
        || exec->element[0]->type != REDIS_REPLY_ARRAY
        || exec->element[0]->elements != 2
        || exec->element[1]->type != REDIS_REPLY_ARRAY
        || exec->element[2]->type != REDIS_REPLY_ARRAY)
    {
        snprintf(r->err, sizeof(r->err), "reading %s: %.200s", r->key,
                 exec->type == REDIS_REPLY_ERROR ? exec->str
                 : "unexpected reply (is it a hash?)");

        for (i = 0; i < 3 && exec->type == REDIS_REPLY_ARRAY
                    && i < exec->elements; i++)
        {
            if (exec->element[i]->type == REDIS_REPLY_ERROR) {
                snprintf(r->err, sizeof(r->err), "reading %s: %.200s",
                         r->key, exec->element[i]->str);
            }
        }

        goto done;
    }

    t = exec->element[0];

    if (cs_redis_time(t, now) != 0) {
        snprintf(r->err, sizeof(r->err), "TIME: not seconds and "
                 "microseconds (is this Redis?)");
        goto done;
    }

    cs_view_from_hash(view, exec->element[1]);

    if (cs_rollout_from_hash(ro, plan, exec->element[2], *now, r->err,
                             sizeof(r->err), r->warn, sizeof(r->warn))
        != 0)
    {
        rc = CS_REDIS_BAD_STATE;
        goto done;
    }

    /* each nginx's last reading, which the evidence was taken up to */
    for (i = 0; i + 1 < exec->element[2]->elements; i += 2) {
        f = exec->element[2]->element[i];
        v = exec->element[2]->element[i + 1];

        if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING
            && strcmp(f->str, "readings") == 0)
        {
            *readings = strdup(v->str);

            if (*readings == NULL) {
                snprintf(r->err, sizeof(r->err), "no memory");
                goto done;
            }
        }
    }

    rc = CS_REDIS_OK;

done:

    for (i = 0; i < 5; i++) {
        freeReplyObject(replies[i]);
    }

    return rc;
}


int
cs_redis_fleet(cs_redis_t *r, int64_t *now, redisReply **reply,
    const redisReply **names, const redisReply **records,
    const redisReply **silent)
{
    char          n[24], max[24];
    cs_args_t     a;
    redisReply   *rep;

    *reply = NULL;

    snprintf(n, sizeof(n), "%d", CS_FLEET_NODES_MAX);
    snprintf(max, sizeof(max), "%d", NGX_HTTP_CANARY_NODE_RECORD_MAX);

    memset(&a, 0, sizeof(cs_args_t));
    cs_args_add(&a, "EVAL");
    cs_args_add(&a, cs_redis_fleet_script);
    cs_args_add(&a, "1");
    cs_args_add(&a, r->nodes_key);
    cs_args_add(&a, r->node_prefix);
    cs_args_add(&a, n);
    cs_args_add(&a, max);

    rep = cs_redis_command(r, &a);
    cs_args_free(&a);

    if (rep == NULL) {
        return CS_REDIS_ERROR;
    }

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 5
        || rep->element[2]->type != REDIS_REPLY_ARRAY
        || rep->element[3]->type != REDIS_REPLY_ARRAY
        || rep->element[4]->type != REDIS_REPLY_ARRAY
        || rep->element[2]->elements != rep->element[3]->elements
        || cs_redis_time(rep, now) != 0)
    {
        snprintf(r->err, sizeof(r->err), "reading the fleet %s: %.200s",
                 r->nodes_key, rep->type == REDIS_REPLY_ERROR ? rep->str
                 : "unexpected reply (is it a sorted set?)");
        freeReplyObject(rep);
        return CS_REDIS_ERROR;
    }

    *reply = rep;
    *names = rep->element[2];
    *records = rep->element[3];
    *silent = rep->element[4];

    return CS_REDIS_OK;
}


int
cs_redis_write(cs_redis_t *r, const cs_plan_t *plan, const cs_decision_t *d,
    uint64_t expect, char *const *receipts, size_t nreceipts,
    const char *readings, int64_t now)
{
    int                  rc;
    char                 ts[32], w[16];
    size_t               i, n, ncmds;
    cs_args_t           *cmds;
    redisReply          *pub, **replies;
    const cs_cohorts_t  *cohorts;

    rc = cs_redis_fence(r, r->key, 1, expect);
    if (rc != CS_REDIS_OK) {
        return rc;
    }

    ncmds = 10 + nreceipts;
    cmds = calloc(ncmds, sizeof(cs_args_t));
    replies = calloc(ncmds, sizeof(redisReply *));

    if (cmds == NULL || replies == NULL) {
        free(cmds);
        free(replies);
        snprintf(r->err, sizeof(r->err), "no memory");
        cs_redis_close(r);
        return CS_REDIS_ERROR;
    }

    cs_iso8601(now, ts, sizeof(ts));

    n = 0;
    cs_args_add(&cmds[n++], "MULTI");

    cs_args_add(&cmds[n], "HINCRBY");
    cs_args_add(&cmds[n], r->key);
    cs_args_add(&cmds[n], NGX_HTTP_CANARY_FIELD_GENERATION);
    cs_args_add(&cmds[n++], "1");

    cs_args_add(&cmds[n], "HSET");
    cs_args_add(&cmds[n], r->key);

    if (d->set_weight) {
        cs_args_add(&cmds[n], NGX_HTTP_CANARY_FIELD_WEIGHT);
        cs_args_add(&cmds[n], cs_weight_format(d->weight, w, sizeof(w)));
    }

    /*
     * the stage's cohort weights go with its weight, in this HSET, when
     * the rollout enters a stage; never with a gradual rollback's step,
     * which lowers the weight and leaves the cohorts as they are (one an
     * operator took off the canary stays off)
     */
    if (d->set_weight
        && (d->action == CS_ACT_START || d->action == CS_ACT_PROMOTE
            || d->action == CS_ACT_COMPLETE)
        && d->to_stage >= 0 && (size_t) d->to_stage < plan->nstages)
    {
        cohorts = &plan->cohorts[d->to_stage];

        for (i = 0; i < cohorts->n; i++) {
            cs_args_addf(&cmds[n], "%s%s", NGX_HTTP_CANARY_FIELD_COHORT,
                         cohorts->cohort[i].name);
            cs_args_add(&cmds[n], cs_weight_format(cohorts->cohort[i].weight,
                                                   w, sizeof(w)));
        }

        if (d->action == CS_ACT_START) {
            cs_redis_later_cohorts_off(&cmds[n], plan, cohorts);
        }
    }

    /*
     * a plan with a shadow stage: the stage's shadow percent goes with
     * its weight, in this HSET (0 where a stage does not say it, so the
     * shadow ends with its stage), and a rollback ends it; a plan
     * without one leaves the field (nginx.conf's shadow) alone
     */
    if (plan->shadow && d->set_weight) {
        if ((d->action == CS_ACT_START || d->action == CS_ACT_PROMOTE
             || d->action == CS_ACT_COMPLETE)
            && d->to_stage >= 0 && (size_t) d->to_stage < plan->nstages)
        {
            cs_args_add(&cmds[n], NGX_HTTP_CANARY_FIELD_SHADOW);
            cs_args_add(&cmds[n],
                        cs_weight_format(plan->stages[d->to_stage].shadow,
                                         w, sizeof(w)));

        } else if (d->action == CS_ACT_ROLLBACK
                   || d->action == CS_ACT_ROLLBACK_STEP)
        {
            cs_args_add(&cmds[n], NGX_HTTP_CANARY_FIELD_SHADOW);
            cs_args_add(&cmds[n], "0");
        }
    }

    cs_args_add(&cmds[n], NGX_HTTP_CANARY_FIELD_STATE);
    cs_args_add(&cmds[n], d->state);
    cs_args_add(&cmds[n], NGX_HTTP_CANARY_FIELD_UPDATED_BY);
    cs_args_add(&cmds[n], r->id);
    cs_args_add(&cmds[n], NGX_HTTP_CANARY_FIELD_UPDATED_AT);
    cs_args_add(&cmds[n++], ts);

    if (d->set_weight && d->action == CS_ACT_ROLLBACK) {
        cs_args_add(&cmds[n], "EVAL");
        cs_args_add(&cmds[n], cs_redis_cohorts_off_script);
        cs_args_add(&cmds[n], "1");
        cs_args_add(&cmds[n], r->key);
        cs_args_add(&cmds[n++], NGX_HTTP_CANARY_FIELD_COHORT);
    }

    if (d->pins != 0 && plan->npins) {
        /* pinned test tenants: to canary when the rollout starts, off
         * it when it ends, so that every tenant follows the weight */
        cs_args_add(&cmds[n], d->pins > 0 ? "SADD" : "SREM");
        cs_args_add(&cmds[n], r->pin_keys[CS_CANARY]);

        for (i = 0; i < plan->npins; i++) {
            cs_args_add(&cmds[n], plan->pins[i]);
        }

        n++;

        /* which pins are the plan's: canary-ctl reset removes these and
         * leaves the operators' own */
        cs_args_add(&cmds[n], d->pins > 0 ? "SADD" : "SREM");
        cs_args_add(&cmds[n], r->plan_pin_key);

        for (i = 0; i < plan->npins; i++) {
            cs_args_add(&cmds[n], plan->pins[i]);
        }

        n++;

        if (d->pins > 0) {
            cs_args_add(&cmds[n], "SREM");
            cs_args_add(&cmds[n], r->pin_keys[CS_STABLE]);

            for (i = 0; i < plan->npins; i++) {
                cs_args_add(&cmds[n], plan->pins[i]);
            }

            n++;
        }
    }

    for (i = 0; i < nreceipts; i++) {
        cs_args_add(&cmds[n], "XADD");
        cs_args_add(&cmds[n], r->receipts_key);
        cs_args_add(&cmds[n], "MAXLEN");
        cs_args_add(&cmds[n], "~");
        cs_args_add(&cmds[n], CS_RECEIPTS_MAXLEN);
        cs_args_add(&cmds[n], "*");
        cs_args_add(&cmds[n], NGX_HTTP_CANARY_RECEIPT);
        cs_args_add(&cmds[n++], receipts[i]);
    }

    if (r->evidence && nreceipts) {
        cs_redis_evidence_args(r, &cmds[n++]);
    }

    cs_redis_state_args(r, &cmds[n++], plan, &d->next, readings, now);

    cs_args_add(&cmds[n++], "EXEC");

    rc = cs_redis_pipeline(r, cmds, n, replies);

    if (rc == 0) {
        rc = cs_redis_exec_result(r, replies[n - 1]);

        for (i = 0; i < n; i++) {
            freeReplyObject(replies[i]);
        }
    }

    for (i = 0; i < n; i++) {
        cs_args_free(&cmds[i]);
    }

    free(cmds);
    free(replies);

    if (rc != CS_REDIS_OK) {
        return rc;
    }

    /* the payload is not trusted: nginx re-reads the hash */
    pub = redisCommand(r->c, "PUBLISH %s %s", r->key, d->ops[d->nops - 1]);

    if (pub == NULL) {
        /* written; nginx picks it up at its next poll */
        cs_redis_io_error(r, "PUBLISH");

    } else {
        freeReplyObject(pub);
    }

    return CS_REDIS_OK;
}


int
cs_redis_save(cs_redis_t *r, const cs_plan_t *plan, const cs_rollout_t *ro,
    const char *readings, uint64_t expect, int64_t now)
{
    int          rc;
    size_t       i;
    cs_args_t    cmds[3];
    redisReply  *replies[3];

    /*
     * under the lease, and only while nobody wrote the split since it was
     * read: a canary-ctl reset in between deletes this state, which must
     * stay deleted
     */
    rc = cs_redis_fence(r, r->key, 1, expect);
    if (rc != CS_REDIS_OK) {
        return rc;
    }

    memset(cmds, 0, sizeof(cmds));

    cs_args_add(&cmds[0], "MULTI");
    cs_redis_state_args(r, &cmds[1], plan, ro, readings, now);
    cs_args_add(&cmds[2], "EXEC");

    rc = cs_redis_pipeline(r, cmds, 3, replies);

    for (i = 0; i < 3; i++) {
        cs_args_free(&cmds[i]);
    }

    if (rc != 0) {
        return CS_REDIS_ERROR;
    }

    rc = cs_redis_exec_result(r, replies[2]);

    for (i = 0; i < 3; i++) {
        freeReplyObject(replies[i]);
    }

    return rc;
}


/*
 * WATCH the lease (and the split), then check that this sidecar still
 * holds the lease and the split still has the generation decided on:
 * the EXEC that follows fails if either changes in between.
 */

static int
cs_redis_fence(cs_redis_t *r, const char *watch_key, int check_generation,
    uint64_t expect)
{
    int          ok;
    uint64_t     gen;
    redisReply  *reply;

    if (watch_key) {
        reply = redisCommand(r->c, "WATCH %s %s", r->leader_key, watch_key);

    } else {
        reply = redisCommand(r->c, "WATCH %s", r->leader_key);
    }

    if (reply == NULL) {
        return cs_redis_io_error(r, "WATCH");
    }

    freeReplyObject(reply);

    reply = redisCommand(r->c, "GET %s", r->leader_key);

    if (reply == NULL) {
        return cs_redis_io_error(r, "GET");
    }

    ok = reply->type == REDIS_REPLY_STRING && strlen(r->id) == reply->len
         && memcmp(reply->str, r->id, reply->len) == 0;

    freeReplyObject(reply);

    if (!ok) {
        r->leader = 0;
        snprintf(r->err, sizeof(r->err), "the lease %s is no longer ours",
                 r->leader_key);
        goto conflict;
    }

    if (!check_generation) {
        return CS_REDIS_OK;
    }

    reply = redisCommand(r->c, "HGET %s " NGX_HTTP_CANARY_FIELD_GENERATION,
                         r->key);

    if (reply == NULL) {
        return cs_redis_io_error(r, "HGET");
    }

    gen = reply->type == REDIS_REPLY_STRING
          ? strtoull(reply->str, NULL, 10) : 0;

    freeReplyObject(reply);

    if (gen != expect) {
        snprintf(r->err, sizeof(r->err), "generation changed from %llu to "
                 "%llu meanwhile", (unsigned long long) expect,
                 (unsigned long long) gen);
        goto conflict;
    }

    return CS_REDIS_OK;

conflict:

    reply = redisCommand(r->c, "UNWATCH");

    if (reply == NULL) {
        return cs_redis_io_error(r, "UNWATCH");
    }

    freeReplyObject(reply);

    return CS_REDIS_CONFLICT;
}


static int
cs_redis_exec_result(cs_redis_t *r, redisReply *exec)
{
    size_t  i;

    if (exec->type == REDIS_REPLY_NIL) {
        snprintf(r->err, sizeof(r->err), "the split or the lease changed "
                 "during the write: nothing written");
        return CS_REDIS_CONFLICT;
    }

    if (exec->type == REDIS_REPLY_ERROR) {
        snprintf(r->err, sizeof(r->err), "EXEC: %.200s", exec->str);
        return CS_REDIS_ERROR;
    }

    cs_redis_moved(r, exec);

    if (exec->type != REDIS_REPLY_ARRAY) {
        snprintf(r->err, sizeof(r->err), "EXEC: unexpected reply");
        return CS_REDIS_ERROR;
    }

    for (i = 0; i < exec->elements; i++) {
        if (exec->element[i]->type == REDIS_REPLY_ERROR) {
            snprintf(r->err, sizeof(r->err), "command %zu of the write: "
                     "%.200s", i + 1, exec->element[i]->str);
            return CS_REDIS_ERROR;
        }
    }

    return CS_REDIS_OK;
}


static void
cs_redis_evidence_args(cs_redis_t *r, cs_args_t *a)
{
    char  *key, *index;

    key = cs_strcat3(r->key, NGX_HTTP_CANARY_KEY_EVIDENCE, r->evidence_id);
    index = cs_strcat3(r->key, NGX_HTTP_CANARY_KEY_EVIDENCE_INDEX, "");

    if (key == NULL || index == NULL) {
        free(key);
        free(index);
        a->failed = 1;
        return;
    }

    cs_args_add(a, "EVAL");
    cs_args_add(a, cs_redis_evidence_script);
    cs_args_add(a, "3");
    cs_args_add(a, key);
    cs_args_add(a, index);
    cs_args_add(a, r->receipts_key);
    cs_args_addb(a, r->evidence, r->evidence_len);

    /* the prefix of every snapshot's key: the key without its id */
    key[strlen(key) - strlen(r->evidence_id)] = '\0';
    cs_args_add(a, key);

    free(key);
    free(index);
}


static void
cs_redis_state_args(cs_redis_t *r, cs_args_t *a, const cs_plan_t *plan,
    const cs_rollout_t *ro, const char *readings, int64_t now)
{
    char    ts[32], w[16], *ev, since[CS_TRIGGERS * 21];
    size_t  k, n;

    cs_args_add(a, "HSET");
    cs_args_add(a, r->sidecar_key);
    cs_args_add(a, "status");
    cs_args_add(a, cs_status_name(ro->status));
    cs_args_add(a, "stage");
    cs_args_addf(a, "%zu", ro->stage);
    cs_args_add(a, "stage_name");
    cs_args_add(a, plan->stages[ro->stage].name);
    cs_args_add(a, "stage_started");
    cs_args_addf(a, "%lld", (long long) ro->stage_started);
    cs_args_add(a, "weight");
    cs_args_add(a, cs_weight_format(ro->weight, w, sizeof(w)));
    cs_args_add(a, "generation");
    cs_args_addf(a, "%llu", (unsigned long long) ro->generation);
    cs_args_add(a, "seen");
    cs_args_addf(a, "%llu", (unsigned long long) ro->seen);
    cs_args_add(a, "violation_since");
    cs_args_addf(a, "%lld", (long long) ro->violation_since);
    cs_args_add(a, "approved");
    cs_args_addf(a, "%d", ro->approved);
    cs_args_add(a, "last_receipt");
    cs_args_add(a, ro->last_receipt);
    cs_args_add(a, "stopped_by");
    cs_args_add(a, ro->stopped_by);
    cs_args_add(a, "held");
    cs_args_add(a, ro->held);
    cs_args_add(a, "lagging");
    cs_args_add(a, ro->lagging);
    cs_args_add(a, "walking");
    cs_args_addf(a, "%d", ro->walking);
    cs_args_add(a, "trigger_since");

    for (k = 0, n = 0; k < CS_TRIGGERS; k++) {
        n += snprintf(since + n, sizeof(since) - n, "%s%lld", k ? "," : "",
                      (long long) ro->trigger_since[k]);
    }

    cs_args_add(a, since);
    cs_args_add(a, "by");
    cs_args_add(a, r->id);
    cs_args_add(a, "updated_at");
    cs_args_add(a, cs_iso8601(now, ts, sizeof(ts)));

    /* the stage's evidence, so that a restarted sidecar goes on with it */
    ev = cs_evidence_format(&ro->ev);

    if (ev == NULL) {
        a->failed = 1;
        return;
    }

    cs_args_add(a, "evidence");
    cs_args_add(a, ev);
    free(ev);

    /* for the receipts of every writer: canary-ctl's and the guard's
     * scripts read these (README, "Receipts") */
    cs_args_add(a, "rollout_started");
    cs_args_addf(a, "%lld", (long long) ro->rollout_started);
    cs_args_add(a, "stages_completed");
    cs_args_addf(a, "%u", ro->stages_completed);
    cs_args_add(a, "rollbacks");
    cs_args_addf(a, "%u", ro->rollbacks);
    cs_args_add(a, "stages_log");
    cs_args_add(a, ro->stages_log);
    cs_args_add(a, "rollback_detected");
    cs_args_addf(a, "%lld", (long long) ro->rollback_detected);
    cs_args_add(a, "rollback_failed");
    cs_args_addf(a, "%u", ro->rollback_failed);
    cs_args_add(a, "release");

    if (plan->release_canary[0]) {
        /* the names are printable ASCII: only " and \ to escape */
        ev = cs_release_json(plan);
        if (ev == NULL) {
            a->failed = 1;
            return;
        }

        cs_args_add(a, ev);
        free(ev);

    } else {
        cs_args_add(a, "");
    }

    if (readings) {
        cs_args_add(a, "readings");
        cs_args_add(a, readings);
    }

    if (r->notify[0]) {
        cs_args_add(a, "notify");
        cs_args_add(a, r->notify);
    }
}


void
cs_view_from_hash(cs_split_view_t *view, const redisReply *hash)
{
    size_t              i;
    int64_t             w;
    const redisReply   *f, *v;

    memset(view, 0, sizeof(cs_split_view_t));
    view->enabled = -1;
    view->exists = hash->elements > 0;

    for (i = 0; i + 1 < hash->elements; i += 2) {
        f = hash->element[i];
        v = hash->element[i + 1];

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }

        if (strcmp(f->str, NGX_HTTP_CANARY_FIELD_WEIGHT) == 0) {
            w = cs_weight_parse(v->str, v->len);

            if (w >= 0) {
                view->weight = (uint32_t) w;
                view->has_weight = 1;
            }

        } else if (strcmp(f->str, NGX_HTTP_CANARY_FIELD_ENABLED) == 0) {
            view->enabled = strcmp(v->str, "0") == 0 ? 0
                            : strcmp(v->str, "1") == 0 ? 1 : -1;

        } else if (strcmp(f->str, NGX_HTTP_CANARY_FIELD_GENERATION) == 0) {
            view->generation = strtoull(v->str, NULL, 10);

        } else if (strcmp(f->str, NGX_HTTP_CANARY_FIELD_STATE) == 0) {
            snprintf(view->state, sizeof(view->state), "%s", v->str);

        } else if (strcmp(f->str, NGX_HTTP_CANARY_FIELD_UPDATED_BY) == 0) {
            snprintf(view->updated_by, sizeof(view->updated_by), "%s",
                     v->str);
        }
    }
}


int
cs_rollout_from_hash(cs_rollout_t *ro, const cs_plan_t *plan,
    const redisReply *hash, int64_t now, char *err, size_t errlen,
    char *warn, size_t warnlen)
{
    int                 has_trigger_since;
    size_t              i, k;
    int64_t             w;
    int                 completed;
    const char         *name, *status, *evidence, *held;
    const redisReply   *f, *v;

    cs_rollout_init(ro);
    completed = 0;
    has_trigger_since = 0;
    warn[0] = '\0';
    evidence = NULL;

    if (hash->elements == 0) {
        return 0;
    }

    name = NULL;
    status = NULL;
    held = NULL;

    for (i = 0; i + 1 < hash->elements; i += 2) {
        f = hash->element[i];
        v = hash->element[i + 1];

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }

        if (strcmp(f->str, "status") == 0) {
            status = v->str;

        } else if (strcmp(f->str, "stage") == 0) {
            ro->stage = (size_t) strtoull(v->str, NULL, 10);

        } else if (strcmp(f->str, "stage_name") == 0) {
            name = v->str;

        } else if (strcmp(f->str, "stage_started") == 0) {
            if (cs_state_time(v, f->str, now, &ro->stage_started, err,
                              errlen) != 0)
            {
                return -1;
            }

        } else if (strcmp(f->str, "weight") == 0) {
            w = cs_weight_parse(v->str, v->len);
            ro->weight = w < 0 ? 0 : (uint32_t) w;

        } else if (strcmp(f->str, "generation") == 0) {
            ro->generation = strtoull(v->str, NULL, 10);

        } else if (strcmp(f->str, "seen") == 0) {
            ro->seen = strtoull(v->str, NULL, 10);

        } else if (strcmp(f->str, "violation_since") == 0) {
            if (cs_state_time(v, f->str, now, &ro->violation_since, err,
                              errlen) != 0)
            {
                return -1;
            }

        } else if (strcmp(f->str, "approved") == 0) {
            ro->approved = (int) strtol(v->str, NULL, 10);

        } else if (strcmp(f->str, "last_receipt") == 0) {
            snprintf(ro->last_receipt, sizeof(ro->last_receipt), "%s",
                     v->str);

        } else if (strcmp(f->str, "stopped_by") == 0) {
            snprintf(ro->stopped_by, sizeof(ro->stopped_by), "%s", v->str);

        } else if (strcmp(f->str, "evidence") == 0) {
            evidence = v->str;

        } else if (strcmp(f->str, "held") == 0) {
            held = v->str;

        } else if (strcmp(f->str, "lagging") == 0) {
            snprintf(ro->lagging, sizeof(ro->lagging), "%s", v->str);

        } else if (strcmp(f->str, "rollout_started") == 0) {
            if (cs_state_time(v, f->str, now, &ro->rollout_started, err,
                              errlen) != 0)
            {
                return -1;
            }

        } else if (strcmp(f->str, "stages_completed") == 0) {
            ro->stages_completed = (uint32_t) strtoul(v->str, NULL, 10);
            completed = 1;

        } else if (strcmp(f->str, "rollbacks") == 0) {
            ro->rollbacks = (uint32_t) strtoul(v->str, NULL, 10);

        } else if (strcmp(f->str, "rollback_detected") == 0) {
            if (cs_state_time(v, f->str, now, &ro->rollback_detected, err,
                              errlen) != 0)
            {
                return -1;
            }

        } else if (strcmp(f->str, "rollback_failed") == 0) {
            ro->rollback_failed = (uint32_t) strtoul(v->str, NULL, 10)
                                  & ((2u << CS_CHECKS) - 1);

        } else if (strcmp(f->str, "stages_log") == 0) {
            /* text this sidecar wrote; cut, it would not be JSON */
            if (v->len < sizeof(ro->stages_log)) {
                memcpy(ro->stages_log, v->str, v->len + 1);
            }

        } else if (strcmp(f->str, "walking") == 0) {
            ro->walking = strcmp(v->str, "1") == 0;

        } else if (strcmp(f->str, "trigger_since") == 0) {
            if (cs_state_trigger_since(v, now, ro->trigger_since, err,
                                       errlen)
                != 0)
            {
                return -1;
            }

            has_trigger_since = 1;
        }
    }

    /* a state before trigger_since: each trigger since the violation */
    if (!has_trigger_since) {
        for (k = 0; k < CS_TRIGGERS; k++) {
            ro->trigger_since[k] = ro->violation_since;
        }
    }

    /* not started: only why it holds counts */
    if (status && strcmp(status, "new") == 0) {
        cs_rollout_init(ro);

        if (held) {
            snprintf(ro->held, sizeof(ro->held), "%s", held);
        }

        return 0;
    }

    /*
     * Evidence this sidecar cannot read (written by hand, or by another
     * version): the stage's evidence starts over, which only delays a
     * decision; the problem is said in warn.
     */
    if (evidence && cs_evidence_parse(&ro->ev, evidence, warn, warnlen)
                    != 0)
    {
        memset(&ro->ev, 0, sizeof(cs_evidence_t));
    }

    if (status == NULL || cs_status_parse(status, &ro->status) != 0) {
        snprintf(err, errlen, "the sidecar state has no valid status "
                 "(\"%.32s\")", status ? status : "");
        return -1;
    }

    /* a walk's state from before walking was kept */
    if (ro->status == CS_STATUS_ROLLING_BACK) {
        ro->walking = 1;
    }

    if (ro->seen < ro->generation) {
        ro->seen = ro->generation;
    }

    /* the plan may have changed since: the stage is known by its name */
    if (ro->stage < plan->nstages && name
        && strcmp(plan->stages[ro->stage].name, name) == 0)
    {
        goto found;
    }

    for (k = 0; name && k < plan->nstages; k++) {
        if (strcmp(plan->stages[k].name, name) == 0) {
            ro->stage = k;
            ro->approved = -1;
            goto found;
        }
    }

    snprintf(err, errlen, "the sidecar state is at stage \"%.64s\", which "
             "this plan does not have; delete the state to start a new "
             "rollout", name ? name : "");

    return -1;

found:

    /* a state of the version before: the stages before this one */
    if (!completed) {
        ro->stages_completed = (uint32_t) ro->stage;
    }

    return 0;
}


/*
 * A time of the state, unix ms: digits only, 0 (none) up to a day ahead
 * of Redis' clock.  Anything else is refused with the field and value:
 * decisions subtract these times from now.
 */

static int
cs_state_time(const redisReply *v, const char *field, int64_t now,
    int64_t *t, char *err, size_t errlen)
{
    char    value[33];
    size_t  i, n;

    if (cs_digits(v->str, v->len, 18, t) == 0
        && cs_elapsed(*t, now) <= CS_REDIS_AHEAD_MAX)
    {
        return 0;
    }

    /* the value as it is, but on one line */
    n = v->len < sizeof(value) - 1 ? v->len : sizeof(value) - 1;

    for (i = 0; i < n; i++) {
        value[i] = v->str[i] >= 0x20 && v->str[i] < 0x7f ? v->str[i] : '?';
    }

    value[n] = '\0';

    snprintf(err, errlen, "the sidecar state's %s \"%s\" is not a time "
             "in unix ms up to a day ahead of Redis' clock; fix or delete "
             "the state", field, value);

    return -1;
}


/*
 * trigger_since: CS_TRIGGERS times of the state, "T,T,T,T,T", each as
 * cs_state_time wants it
 */

static int
cs_state_trigger_since(const redisReply *v, int64_t now, int64_t *since,
    char *err, size_t errlen)
{
    size_t       k;
    const char  *p, *end, *comma;
    redisReply   part;

    p = v->str;
    end = v->str + v->len;

    for (k = 0; k < CS_TRIGGERS; k++) {
        comma = memchr(p, ',', (size_t) (end - p));

        if ((comma == NULL) != (k == CS_TRIGGERS - 1)) {
            snprintf(err, errlen, "the sidecar state's trigger_since "
                     "\"%.64s\" is not %d times in unix ms separated by "
                     "commas; fix or delete the state", v->str,
                     CS_TRIGGERS);
            return -1;
        }

        memset(&part, 0, sizeof(redisReply));
        part.type = REDIS_REPLY_STRING;
        part.str = (char *) p;
        part.len = (size_t) ((comma ? comma : end) - p);

        if (cs_state_time(&part, "trigger_since", now, &since[k], err,
                          errlen)
            != 0)
        {
            return -1;
        }

        p = comma ? comma + 1 : end;
    }

    return 0;
}


/* Redis' TIME: seconds and microseconds, as unix ms */

static int
cs_redis_time(const redisReply *t, int64_t *now)
{
    int64_t  sec, usec;

    if (t->elements < 2
        || t->element[0]->type != REDIS_REPLY_STRING
        || t->element[1]->type != REDIS_REPLY_STRING
        || cs_digits(t->element[0]->str, t->element[0]->len, 12, &sec) != 0
        || cs_digits(t->element[1]->str, t->element[1]->len, 6, &usec)
           != 0)
    {
        return -1;
    }

    *now = sec * 1000 + usec / 1000;

    return 0;
}


/* 1 to max (at most 18) decimal digits, nothing else */

static int
cs_digits(const char *p, size_t len, size_t max, int64_t *value)
{
    size_t   i;
    int64_t  n;

    if (len == 0 || len > max) {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        n = n * 10 + (p[i] - '0');
    }

    *value = n;

    return 0;
}


void
cs_redis_reader_limit(redisReader *reader, cs_redis_reader_t *lim)
{
    lim->fn = *reader->fn;
    lim->create_array = reader->fn->createArray;
    lim->fn.createArray = cs_redis_create_array;
    lim->elements = 0;
    lim->refused = 0;

    reader->fn = &lim->fn;
    reader->privdata = lim;
}


static void *
cs_redis_create_array(const redisReadTask *task, int elements)
{
    cs_redis_reader_t  *lim;

    lim = task->privdata;

    /* the outermost array: a new reply */
    if (task->parent == NULL) {
        lim->elements = 0;
    }

    if (elements < 0
        || (size_t) elements > CS_REDIS_ELEMENTS_MAX - lim->elements)
    {
        /* hiredis takes NULL for no memory and fails the connection */
        lim->refused = 1;
        return NULL;
    }

    lim->elements += (size_t) elements;

    return lim->create_array(task, elements);
}


static redisReply *
cs_redis_command(cs_redis_t *r, cs_args_t *a)
{
    redisReply  *reply;

    if (a->failed) {
        snprintf(r->err, sizeof(r->err), "no memory");
        return NULL;
    }

    reply = redisCommandArgv(r->c, (int) a->n, (const char **) a->argv,
                             a->len);

    if (reply == NULL) {
        cs_redis_io_error(r, a->n ? a->argv[0] : "command");

    } else {
        cs_redis_moved(r, reply);
    }

    return reply;
}


/* all commands in one round trip; replies[] to free unless -1 */

static int
cs_redis_pipeline(cs_redis_t *r, cs_args_t *cmds, size_t n,
    redisReply **replies)
{
    size_t   i, k;
    void    *reply;

    for (i = 0; i < n; i++) {
        if (cmds[i].failed) {
            snprintf(r->err, sizeof(r->err), "no memory");
            return -1;
        }

        if (redisAppendCommandArgv(r->c, (int) cmds[i].n,
                                   (const char **) cmds[i].argv,
                                   cmds[i].len) != REDIS_OK)
        {
            return cs_redis_io_error(r, "pipeline");
        }
    }

    for (i = 0; i < n; i++) {
        if (redisGetReply(r->c, &reply) != REDIS_OK || reply == NULL) {
            for (k = 0; k < i; k++) {
                freeReplyObject(replies[k]);
            }

            return cs_redis_io_error(r, cmds[i].argv[0]);
        }

        replies[i] = reply;
        cs_redis_moved(r, reply);
    }

    return 0;
}


/*
 * The master as the sentinels say, the one that answered last first:
 * short timeouts, each sentinel once.
 */

static int
cs_redis_ask(cs_redis_t *r)
{
    int              port;
    char            *host, *p, *last;
    size_t           i, k;
    redisReply      *reply;
    redisContext    *c;
    cs_sentinel_t   *s;
    struct timeval   tv;

    tv.tv_sec = 0;
    tv.tv_usec = (r->timeout_ms < 500 ? r->timeout_ms : 500) * 1000;

    p = r->err;
    last = r->err + sizeof(r->err);
    p += snprintf(p, (size_t) (last - p), "no sentinel gave master %s:",
                  r->master);

    for (k = 0; k < r->nsentinels; k++) {
        i = (r->sentinel + k) % r->nsentinels;
        s = &r->sentinels[i];
        reply = NULL;

        c = redisConnectWithTimeout(s->host, s->port, tv);

        if (c && c->err == 0 && redisSetTimeout(c, tv) == REDIS_OK) {
            reply = redisCommand(c, "SENTINEL get-master-addr-by-name %s",
                                 r->master);
        }

        if (reply && reply->type == REDIS_REPLY_ARRAY
            && reply->elements == 2
            && reply->element[0]->type == REDIS_REPLY_STRING
            && reply->element[1]->type == REDIS_REPLY_STRING
            && (port = atoi(reply->element[1]->str)) > 0 && port <= 65535
            && (host = strdup(reply->element[0]->str)) != NULL)
        {
            if (r->host == NULL || strcmp(r->host, host) != 0
                || r->port != port)
            {
                snprintf(r->news, sizeof(r->news), "master %s %s %s:%d "
                         "(sentinel %s:%d)", r->master,
                         r->host ? "moved to" : "is at", host, port,
                         s->host, s->port);
            }

            free(r->host);
            r->host = host;
            r->port = port;
            r->sentinel = i;
            r->reask = 0;

            freeReplyObject(reply);
            redisFree(c);
            return 0;
        }

        if (p < last) {
            p += snprintf(p, (size_t) (last - p), " %s%s:%d: %.60s",
                          k ? "; " : "", s->host, s->port,
                          c == NULL ? "no memory"
                          : c->err ? c->errstr
                          : reply == NULL ? "no answer"
                          : reply->type == REDIS_REPLY_NIL
                          ? "does not know it"
                          : reply->type == REDIS_REPLY_ERROR ? reply->str
                          : "no address in its answer");
        }

        if (reply) {
            freeReplyObject(reply);
        }

        if (c) {
            redisFree(c);
        }
    }

    return -1;
}


/* a master demoted (READONLY) or restarting (LOADING): ask again */

static void
cs_redis_moved(cs_redis_t *r, const redisReply *reply)
{
    size_t  i;

    if (r->nsentinels == 0) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR
        && (strncmp(reply->str, "READONLY", 8) == 0
            || strncmp(reply->str, "LOADING", 7) == 0))
    {
        r->reask = 1;
    }

    if (reply->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < reply->elements; i++) {
            cs_redis_moved(r, reply->element[i]);
        }
    }
}


static int
cs_redis_io_error(cs_redis_t *r, const char *what)
{
    if (r->c && r->c->err == REDIS_ERR_OOM && r->reader.refused) {
        snprintf(r->err, sizeof(r->err), "%s: a reply of more than %d "
                 "array elements, refused (is this Redis?)", what,
                 CS_REDIS_ELEMENTS_MAX);

    } else if (r->c && r->c->err == REDIS_ERR_IO && r->c->errstr[0]
        && strstr(r->c->errstr, "temporarily unavailable"))
    {
        /* hiredis' word for a command timeout (EAGAIN) */
        snprintf(r->err, sizeof(r->err), "%s: timed out after %ldms", what,
                 r->timeout_ms);

    } else {
        snprintf(r->err, sizeof(r->err), "%s: %s", what,
                 r->c && r->c->errstr[0] ? r->c->errstr
                 : "connection lost");
    }

    cs_redis_close(r);

    return CS_REDIS_ERROR;
}


static void
cs_args_add(cs_args_t *a, const char *s)
{
    char    **argv;
    size_t   *len;

    if (a->failed) {
        return;
    }

    if (a->n == a->size) {
        a->size = a->size ? a->size * 2 : 16;

        argv = realloc(a->argv, a->size * sizeof(char *));
        if (argv == NULL) {
            a->failed = 1;
            return;
        }

        a->argv = argv;

        len = realloc(a->len, a->size * sizeof(size_t));
        if (len == NULL) {
            a->failed = 1;
            return;
        }

        a->len = len;
    }

    a->argv[a->n] = strdup(s);

    if (a->argv[a->n] == NULL) {
        a->failed = 1;
        return;
    }

    a->len[a->n] = strlen(s);
    a->n++;
}


/*
 * never cut: a cohort's field ("weight." and up to 63 bytes) is longer
 * than the numbers this is mostly for
 */

static void
cs_args_addf(cs_args_t *a, const char *fmt, ...)
{
    int      n;
    char     buf[64], *p;
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    if (n < 0) {
        a->failed = 1;
        return;
    }

    if ((size_t) n < sizeof(buf)) {
        cs_args_add(a, buf);
        return;
    }

    p = malloc((size_t) n + 1);
    if (p == NULL) {
        a->failed = 1;
        return;
    }

    va_start(args, fmt);
    vsnprintf(p, (size_t) n + 1, fmt, args);
    va_end(args);

    cs_args_add(a, p);
    free(p);
}


static void
cs_args_free(cs_args_t *a)
{
    size_t  i;

    for (i = 0; i < a->n; i++) {
        free(a->argv[i]);
    }

    free(a->argv);
    free(a->len);

    memset(a, 0, sizeof(cs_args_t));
}


/* binary-safe: the evidence snapshot's zlib bytes */

static void
cs_args_addb(cs_args_t *a, const void *p, size_t len)
{
    char  *copy;

    cs_args_add(a, "");

    if (a->failed) {
        return;
    }

    copy = malloc(len ? len : 1);
    if (copy == NULL) {
        a->failed = 1;
        return;
    }

    memcpy(copy, p, len);
    free(a->argv[a->n - 1]);
    a->argv[a->n - 1] = copy;
    a->len[a->n - 1] = len;
}


static char *
cs_strcat3(const char *a, const char *b, const char *c)
{
    char    *s;
    size_t   la, lb, lc;

    la = strlen(a);
    lb = strlen(b);
    lc = strlen(c);

    s = malloc(la + lb + lc + 1);
    if (s == NULL) {
        return NULL;
    }

    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);

    return s;
}


/*
 * --listen: the last n receipts of the split's stream, oldest first,
 * for the rollout page (XREVRANGE ... COUNT n).  A receipt over
 * CS_REDIS_RECEIPT_MAX bytes, or an entry without one, is left out.
 */

int
cs_redis_receipts(cs_redis_t *r, size_t n, char **out, size_t *count)
{
    char               num[24];
    size_t             i, k, got;
    redisReply        *reply;
    const redisReply  *e, *f;

    *count = 0;

    if (r->c == NULL) {
        snprintf(r->err, sizeof(r->err), "not connected");
        return CS_REDIS_ERROR;
    }

    snprintf(num, sizeof(num), "%zu", n);

    reply = redisCommand(r->c, "XREVRANGE %s + - COUNT %s", r->receipts_key,
                         num);

    if (reply == NULL) {
        return cs_redis_io_error(r, "XREVRANGE");
    }

    cs_redis_moved(r, reply);

    if (reply->type != REDIS_REPLY_ARRAY) {
        snprintf(r->err, sizeof(r->err), "XREVRANGE %s: %.200s",
                 r->receipts_key, reply->type == REDIS_REPLY_ERROR
                                  ? reply->str : "not an array");
        freeReplyObject(reply);
        return CS_REDIS_ERROR;
    }

    got = 0;

    /* newest first: each to its place from the end */
    for (i = 0; i < reply->elements && i < n; i++) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
            || e->element[1]->type != REDIS_REPLY_ARRAY)
        {
            continue;
        }

        f = e->element[1];

        for (k = 0; k + 1 < f->elements; k += 2) {
            if (f->element[k]->type == REDIS_REPLY_STRING
                && strcmp(f->element[k]->str, "receipt") == 0
                && f->element[k + 1]->type == REDIS_REPLY_STRING
                && f->element[k + 1]->len <= CS_REDIS_RECEIPT_MAX)
            {
                out[n - 1 - got] = strndup(f->element[k + 1]->str,
                                           f->element[k + 1]->len);
                got += out[n - 1 - got] != NULL;
                break;
            }
        }
    }

    freeReplyObject(reply);

    /* to the front */
    memmove(out, out + n - got, got * sizeof(char *));
    *count = got;

    return CS_REDIS_OK;
}


/*
 * A rollout starts with the cohorts its later stages add off the canary
 * (0), not at what the rollout before (complete, then reset) or an
 * operator left in the hash: each comes on at its own stage.  The last
 * stage's map names every cohort of the plan (maps only grow).
 */

static void
cs_redis_later_cohorts_off(cs_args_t *a, const cs_plan_t *plan,
    const cs_cohorts_t *first)
{
    size_t              i, k;
    const cs_cohorts_t  *last;

    last = &plan->cohorts[plan->nstages - 1];

    for (i = 0; i < last->n; i++) {
        for (k = 0; k < first->n; k++) {
            if (strcmp(first->cohort[k].name, last->cohort[i].name) == 0) {
                break;
            }
        }

        if (k == first->n) {
            cs_args_addf(a, "%s%s", NGX_HTTP_CANARY_FIELD_COHORT,
                         last->cohort[i].name);
            cs_args_add(a, "0");
        }
    }
}
