
/*
 * Redis for canary-sidecar: hiredis' synchronous API with connect and
 * command timeouts.  The leader lease, reading the split and the
 * sidecar's state, and each decision's write as one MULTI/EXEC that
 * only happens if the split's generation is still the one decided on
 * and this sidecar still holds the lease (WATCH).
 *
 *   <prefix><split>            the split's hash (the module's contract)
 *   <prefix><split>:sidecar    the sidecar's own state
 *   <prefix><split>:leader     the lease: SET NX PX, renewed by script
 *   <prefix><split>:receipts   the receipts stream
 *   <prefix><split>:pin:canary, :pin:stable
 *   <prefix><split>:pin:plan   the tenants the plan pinned to canary
 *   <prefix><split>:evidence:<receipt_id>   a weight change's evidence
 *                              snapshot (zlib JSON, snapshot.c)
 *   <prefix><split>:evidence   their index: a sorted set, scored by the
 *                              receipt's stream time, to drop a snapshot
 *                              when the stream trimmed its receipt
 */


#ifndef _CS_REDIS_H_INCLUDED_
#define _CS_REDIS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "analysis.h"
#include "fleet.h"


#define CS_REDIS_OK         0
#define CS_REDIS_ERROR     -1
#define CS_REDIS_CONFLICT   1       /* nothing written: re-decide */
#define CS_REDIS_BAD_STATE -2       /* the state does not fit the plan */

/*
 * How far (ms) a time in the sidecar's state may be ahead of Redis'
 * clock: after a failover to a replica whose clock lags a little.
 */
#define CS_REDIS_AHEAD_MAX  (24 * 3600 * 1000LL)

/*
 * The array elements one reply may announce in all: hiredis allocates
 * an array's element vector as soon as it reads "*N" (8 bytes each),
 * and this sidecar's replies hold a few dozen.
 */
#define CS_REDIS_ELEMENTS_MAX  65536

/* --listen: a receipt longer than this is left off the rollout page */
#define CS_REDIS_RECEIPT_MAX   65536


/* hiredis' reply functions, createArray counting against the limit */
typedef struct {
    redisReplyObjectFunctions   fn;
    void                     *(*create_array)(const redisReadTask *task,
                                              int elements);
    size_t                      elements;   /* in the reply being read */
    int                         refused;
} cs_redis_reader_t;


/* a sentinel of --redis-sentinel */
typedef struct {
    char               *host;
    int                 port;
} cs_sentinel_t;


typedef struct {
    char               *host;               /* with sentinels: the master's */
    int                 port;
    char               *unix_path;
    char               *password;
    long                db;                 /* SELECTed when not 0 */
    long                timeout_ms;
    char               *id;
    char               *key;
    char               *sidecar_key;
    char               *leader_key;
    char               *receipts_key;
    char               *pin_keys[2];        /* CS_STABLE, CS_CANARY */
    char               *plan_pin_key;       /* the plan's own pins */
    char               *nodes_key;          /* the fleet's sorted set */
    char               *node_prefix;        /* a node's record: this and
                                               its name */
    int64_t             lease_ms;
    redisContext       *c;
    cs_redis_reader_t   reader;
    int                 leader;
    char                err[256];
    char                warn[256];          /* read, but with a problem */

    /* --redis-sentinel, --redis-master: asked at every connect */
    cs_sentinel_t      *sentinels;
    size_t              nsentinels;
    size_t              sentinel;           /* asked first: answered last */
    char               *master;
    int                 reask;              /* READONLY, LOADING: again */
    char                news[256];          /* the master found or moved */

    /* notify.c's counts, written into the state when not empty */
    char                notify[160];
    /*
     * The evidence snapshot the next cs_redis_write() stores in its
     * MULTI/EXEC (set by the caller, NULL: none): under
     * <key>:evidence:<evidence_id>, zlib bytes.
     */
    const char         *evidence_id;
    const unsigned char *evidence;
    size_t              evidence_len;
} cs_redis_t;


/*
 * Parses "HOST:PORT" or "unix:PATH" (NULL: cs_redis_sentinels() follows);
 * connects later; 0 or -1 and err
 */
int cs_redis_init(cs_redis_t *r, const char *address, const char *password,
    const char *prefix, const char *split, const char *id, int64_t lease_ms,
    char *err, size_t errlen);
void cs_redis_free(cs_redis_t *r);

/*
 * Instead of an address: "HOST:PORT[,HOST:PORT...]" and the master's
 * name; each connect asks them (SENTINEL get-master-addr-by-name), and a
 * connection error or a READONLY or LOADING reply makes the next connect
 * ask again.  0, or -1 and err.
 */
int cs_redis_sentinels(cs_redis_t *r, const char *list, const char *master,
    char *err, size_t errlen);

/*
 * Connects (and AUTHs) unless connected; 0, or -1 with r->err.  With
 * sentinels, r->news says once where the master was found, or moved.
 */
int cs_redis_connect(cs_redis_t *r);
void cs_redis_close(cs_redis_t *r);

/*
 * Takes the lease (SET NX PX) or renews it if it still holds this id
 * (compare-and-pexpire script): 1 leader, 0 another holds it (its id in
 * holder), -1 error.
 */
int cs_redis_lead(cs_redis_t *r, char *holder, size_t size);

/* gives the lease up if this id holds it */
void cs_redis_release(cs_redis_t *r);

/*
 * Redis' TIME (unix ms), the split's hash and the sidecar's state, in
 * one MULTI/EXEC; the nginx readings saved with the state in *readings
 * (malloc()ed; NULL when there are none).
 */
int cs_redis_read(cs_redis_t *r, const cs_plan_t *plan, int64_t *now,
    cs_split_view_t *view, cs_rollout_t *ro, char **readings);

/*
 * The split's live nodes and their records, in one EVAL: the members of
 * <prefix><split>:nodes scored above Redis' TIME (at most
 * CS_FLEET_NODES_MAX), and Redis' TIME in *now.  *reply (to free) holds
 * names and records, two arrays of one length: a record is a string,
 * the length (integer) of one over NGX_HTTP_CANARY_NODE_RECORD_MAX, or
 * nil when gone; and silent, the members whose record expired (within
 * NGX_HTTP_CANARY_NODE_SILENT_MAX); a name over 64 bytes is cut there.
 */
int cs_redis_fleet(cs_redis_t *r, int64_t *now, redisReply **reply,
    const redisReply **names, const redisReply **records,
    const redisReply **silent);

/*
 * The write of a decision: generation + 1, weight, state, updated_by,
 * updated_at, pins, receipts (XADD), the sidecar's state, then PUBLISH.
 * CS_REDIS_CONFLICT when the split's generation is no longer "expect"
 * or the lease is lost: nothing is written.
 */
int cs_redis_write(cs_redis_t *r, const cs_plan_t *plan,
    const cs_decision_t *d, uint64_t expect, char *const *receipts,
    size_t nreceipts, const char *readings, int64_t now);

/*
 * The sidecar's state alone (with the nginx readings its evidence was
 * taken up to, unless NULL), under the lease, and only if the split's
 * generation is still "expect" (CS_REDIS_CONFLICT otherwise).
 */
int cs_redis_save(cs_redis_t *r, const cs_plan_t *plan,
    const cs_rollout_t *ro, const char *readings, uint64_t expect,
    int64_t now);

/*
 * Limits a reader (a connection's, or one made alone) to replies of
 * CS_REDIS_ELEMENTS_MAX array elements in all: a reply that announces
 * more fails as hiredis fails without memory, and lim->refused is set.
 * lim must live as long as the reader.
 */
void cs_redis_reader_limit(redisReader *reader, cs_redis_reader_t *lim);

/*
 * --listen: the last n receipts of the split's stream, oldest first,
 * malloc()ed into out[0 .. *count - 1]; 0, or -1 with r->err.
 */
int cs_redis_receipts(cs_redis_t *r, size_t n, char **out, size_t *count);

/* pure: the hashes as HGETALL returns them */
void cs_view_from_hash(cs_split_view_t *view, const redisReply *hash);

/*
 * The sidecar's state; now is Redis' clock (unix ms): a state whose
 * times are not 0 to now + CS_REDIS_AHEAD_MAX is refused (-1 and err),
 * as one without a valid status or stage.  Status "new" (a rollout that
 * does not start) brings only why it holds ("held").  Evidence it cannot read
 * starts over, with the problem in warn (empty otherwise).
 */
int cs_rollout_from_hash(cs_rollout_t *ro, const cs_plan_t *plan,
    const redisReply *hash, int64_t now, char *err, size_t errlen,
    char *warn, size_t warnlen);


#endif /* _CS_REDIS_H_INCLUDED_ */
