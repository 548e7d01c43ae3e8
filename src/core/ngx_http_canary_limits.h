
/*
 * The limits every part shares, defined once: the module (its zone,
 * nginx.conf, Redis), canary-sidecar, the unit tests and the fuzzers.
 * Plain C, no nginx types.  canary-ctl cannot include this file:
 * t/ctl_contract.t checks that its limits are these.
 */


#ifndef _NGX_HTTP_CANARY_LIMITS_H_INCLUDED_
#define _NGX_HTTP_CANARY_LIMITS_H_INCLUDED_


/* a split's or a cohort's name: 1 to NAME_LEN - 1 bytes */
#define NGX_HTTP_CANARY_NAME_LEN        64

/* state, updated_by and updated_at in the split's hash: 0 to STATE_LEN
 * printable bytes */
#define NGX_HTTP_CANARY_STATE_LEN       64

/* cohort weights (weight.NAME) of one split */
#define NGX_HTTP_CANARY_COHORTS_MAX     16

/* weights are kept in hundredths of a percent: 0 .. 10000 */
#define NGX_HTTP_CANARY_WEIGHT_MAX      10000

/* a pinned tenant: 1 to PIN_KEY_MAX bytes; pins of one split */
#define NGX_HTTP_CANARY_PIN_KEY_MAX     256
#define NGX_HTTP_CANARY_PINS_MAX        100000

/* the key prefix (canary_redis prefix=): 1 to PREFIX_LEN bytes */
#define NGX_HTTP_CANARY_PREFIX_LEN      64

/* a node's name (canary_redis node=): 1 to NODE_LEN - 1 bytes */
#define NGX_HTTP_CANARY_NODE_LEN        64

/* a node's record in Redis: at most this many bytes; a reader ignores
 * a longer one */
#define NGX_HTTP_CANARY_NODE_RECORD_MAX 16384

/* a node's record expires after this many of its writer's intervals */
#define NGX_HTTP_CANARY_NODE_TTL_INTERVALS  3

/*
 * A node whose record expired stays in the split's nodes set, silent,
 * this long (ms; the writers remove it after): it may be cut from Redis
 * and still serve.  One that stops gracefully removes itself at once.
 */
#define NGX_HTTP_CANARY_NODE_SILENT_MAX     300000
#define NGX_HTTP_CANARY_NODE_SILENT_TEXT    "300000"

/* the window the module keeps, seconds */
#define NGX_HTTP_CANARY_WINDOW_MAX      60

/* the last Redis error and a guard's reason, as the zone keeps them */
#define NGX_HTTP_CANARY_ERROR_LEN       128
#define NGX_HTTP_CANARY_REASON_LEN      192

/* the Redis master's "IP:PORT" the sentinels gave, as the zone keeps it */
#define NGX_HTTP_CANARY_ADDRESS_LEN     64


/* shadow traffic: mismatch examples kept per split, and their URIs */
#define NGX_HTTP_CANARY_SHADOW_EXAMPLES  16
#define NGX_HTTP_CANARY_SHADOW_URI_LEN   256


#endif /* _NGX_HTTP_CANARY_LIMITS_H_INCLUDED_ */
