
/*
 * ngx_http_canary_module: per-tenant canary routing with shared-memory
 * weights.  Types shared by the files of the module.
 */


#ifndef _NGX_HTTP_CANARY_MODULE_H_INCLUDED_
#define _NGX_HTTP_CANARY_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <zlib.h>

/*
 * The module's own functions are hidden: a call between its files is
 * then a direct call, not one through the PLT.  nginx's dlsym() needs
 * only ngx_modules, ngx_module_names and ngx_module_order (in the
 * generated ngx_http_canary_module_modules.c, which does not include
 * this header) and the module struct stays visible too.  System
 * headers go above, so that libc and zlib are not declared hidden.
 */
#pragma GCC visibility push(hidden)

/* for a function declared outside this header */
#define NGX_HTTP_CANARY_HIDDEN  __attribute__((visibility("hidden")))

#include "ngx_http_canary_contract.h"
#include "ngx_http_canary_limits.h"
#include "ngx_http_canary_guard_rule.h"
#include "ngx_http_canary_hash.h"
#include "ngx_http_canary_histogram.h"
#include "ngx_http_canary_parse.h"
#include "ngx_http_canary_pins.h"
#include "ngx_http_canary_report.h"
#include "ngx_http_canary_shadow_body.h"


#define NGX_HTTP_CANARY_STABLE          0
#define NGX_HTTP_CANARY_CANARY          1
#define NGX_HTTP_CANARY_VARIANTS        2

/* one second per slot, a power of two above the 60s window */
#define NGX_HTTP_CANARY_WINDOW_SLOTS    64

/* bump when the layout of the shared zone changes */
#define NGX_HTTP_CANARY_ZONE_LAYOUT     10

/*
 * The guard's state, one word (guard_tripped): anything but ARMED sends
 * the split to stable.  See ngx_http_canary_guard.c for who moves it.
 */
#define NGX_HTTP_CANARY_GUARD_ARMED     0
#define NGX_HTTP_CANARY_GUARD_TRIPPING  1   /* its details being written */
#define NGX_HTTP_CANARY_GUARD_PENDING   2   /* to be written to Redis */
#define NGX_HTTP_CANARY_GUARD_WRITTEN   3   /* in Redis: guard_generation */


typedef enum {
    NGX_HTTP_CANARY_REASON_HASH = 0,
    NGX_HTTP_CANARY_REASON_RANDOM,
    NGX_HTTP_CANARY_REASON_HEADER,
    NGX_HTTP_CANARY_REASON_COOKIE,
    NGX_HTTP_CANARY_REASON_PIN,
    NGX_HTTP_CANARY_REASON_COHORT,
    NGX_HTTP_CANARY_REASON_DISABLED,
    NGX_HTTP_CANARY_REASON_GUARD,
    NGX_HTTP_CANARY_REASON_ROLLED_BACK
} ngx_http_canary_reason_e;


/* where the weights in the zone came from */
typedef enum {
    NGX_HTTP_CANARY_SOURCE_CONF = 0,
    NGX_HTTP_CANARY_SOURCE_REDIS
} ngx_http_canary_source_e;


/*
 * One cohort weight in the zone; the name is fixed at configuration.
 * requests and responses_5xx count, per variant, the requests this
 * cohort's weight decided (ctx->cohort), with atomic adds in the log
 * phase; a reload carries them with the name (zone.c).
 */
typedef struct {
    u_char                       name[NGX_HTTP_CANARY_NAME_LEN];
    size_t                       name_len;
    ngx_atomic_t                 weight;
    ngx_uint_t                   conf_weight;   /* in the last committed */

    ngx_atomic_t                 requests[NGX_HTTP_CANARY_VARIANTS];
    ngx_atomic_t                 responses_5xx[NGX_HTTP_CANARY_VARIANTS];
} ngx_http_canary_shm_cohort_t;


/*
 * Cumulative counters of one variant, updated with atomic adds in the
 * log phase, never under a lock.
 */
typedef struct {
    ngx_atomic_t                 requests;
    ngx_atomic_t                 responses[5];  /* 1xx .. 5xx */
    ngx_atomic_t                 upstream_errors;

    ngx_atomic_t                 latency_sum_us;
    ngx_atomic_t                 latency[NGX_HTTP_CANARY_HIST_BUCKETS];

    ngx_atomic_t                 upstream_count;
    ngx_atomic_t                 upstream_sum_us;
    ngx_atomic_t                 upstream_latency[NGX_HTTP_CANARY_HIST_BUCKETS];
} ngx_http_canary_shm_stats_t;


/*
 * The low 32 bits of the cumulative counters at one second.  A window is
 * "now minus the snapshot N seconds ago", exact in modular arithmetic as
 * long as fewer than 2^32 requests pass in one window; the same structure
 * holds it (ngx_http_canary_window()).
 */
typedef struct {
    uint32_t                     requests;
    uint32_t                     responses_5xx;
    uint32_t                     upstream_errors;
    uint32_t                     latency[NGX_HTTP_CANARY_HIST_BUCKETS];
} ngx_http_canary_shm_snap_variant_t;


typedef struct {
    ngx_atomic_t                 sec;           /* 0 while being written */
    ngx_http_canary_shm_snap_variant_t  v[NGX_HTTP_CANARY_VARIANTS];
} ngx_http_canary_shm_snap_t;


/*
 * One mismatch of shadow traffic, in a ring of the last 16.  at is 0
 * while the slot is written: a reader copies the slot and keeps it only
 * when at is not 0 and did not move meanwhile.
 */
typedef struct {
    ngx_atomic_t                 at;
    u_char                       uri[NGX_HTTP_CANARY_SHADOW_URI_LEN];
    ngx_atomic_t                 uri_len;
    ngx_atomic_t                 stable_status;
    ngx_atomic_t                 canary_status;
    ngx_atomic_t                 stable_bytes;
    ngx_atomic_t                 canary_bytes;
} ngx_http_canary_shm_example_t;


/*
 * A split's shadow traffic (ngx_http_canary_shadow.c): the percent in
 * force (nginx.conf's, or Redis's field "shadow"), counters updated with
 * atomic adds, and the last mismatches.
 */
typedef struct {
    ngx_atomic_t                 percent;       /* hundredths */
    ngx_atomic_t                 redis;         /* percent from Redis */

    ngx_atomic_t                 requests;
    ngx_atomic_t                 compared;
    ngx_atomic_t                 matched;
    ngx_atomic_t                 mismatched_status;
    ngx_atomic_t                 mismatched_body;
    ngx_atomic_t                 canary_errors;
    ngx_atomic_t                 timeouts;
    ngx_atomic_t                 skipped_method;
    ngx_atomic_t                 skipped_body_too_large;
    ngx_atomic_t                 skipped_in_flight;
    ngx_atomic_t                 skipped_stable_error;

    ngx_atomic_t                 next;          /* examples written */
    ngx_http_canary_shm_example_t
                                 examples[NGX_HTTP_CANARY_SHADOW_EXAMPLES];
} ngx_http_canary_shm_shadow_t;


/*
 * A split's state in shared memory.  Workers read it on every request
 * without a lock, so what a reader may see depends on the field:
 *
 *   - name, name_len, created: written once, when the slot is made, before
 *     any worker can find it; never torn.
 *   - weight, enabled, generation, source, rolled_back, the guard's
 *     state, npins[], every counter: one aligned word each, read
 *     whole; but two of them read one after the other may come from two
 *     different writes (a weight of one generation, enabled of the next).
 *   - state, updated_by, updated_at, guard_reason: bytes and a length;
 *     the writer sets the length to 0 while it changes the bytes.  A
 *     reader must copy, then check that the length did not move (the
 *     status page does); a request never reads them.
 *   - pins: replaced as a whole, under the pins_seq seqlock (below).
 *   - guard_window[], guard_seen, guard_since: several words written by
 *     the trip after the state word; a status read during a trip may mix
 *     them.  Only the status page reads them.
 *   - cohorts[] and ncohorts: the names are compared byte by byte on
 *     every request, and a reload rewrites them in place (the list may
 *     change, they are matched by name): a request during the commit may
 *     match no cohort, or a name half rewritten, and route by the split's
 *     weight or a neighbour's for that once.  The weights are words.
 *   - conf_weight, seen: the master's, under the slab mutex.
 *   - window[]: a snapshot's sec is 0 while it is written; readers copy
 *     a slot and check that its sec did not move.
 */
typedef struct {
    ngx_queue_t                  queue;

    u_char                       name[NGX_HTTP_CANARY_NAME_LEN];
    size_t                       name_len;

    /* the last committed configuration that has this split; 0: none yet */
    ngx_uint_t                   seen;
    time_t                       created;       /* counters start here */

    ngx_atomic_t                 weight;        /* hundredths of percent */
    ngx_atomic_t                 enabled;
    ngx_atomic_t                 generation;
    ngx_atomic_t                 source;        /* weights from conf/redis */
    ngx_uint_t                   conf_weight;   /* in the last committed */

    /*
     * A reload changed a weight in nginx.conf and it overrode Redis's: a
     * Redis read applies weights again only once its generation is newer
     * than the one in force (a write after the operator's act).
     */
    ngx_atomic_t                 conf_override;

    u_char                       state[NGX_HTTP_CANARY_STATE_LEN];
    ngx_atomic_t                 state_len;
    u_char                       updated_by[NGX_HTTP_CANARY_STATE_LEN];
    ngx_atomic_t                 updated_by_len;
    u_char                       updated_at[NGX_HTTP_CANARY_STATE_LEN];
    ngx_atomic_t                 updated_at_len;

    /*
     * Pinned tenants, replaced as a whole by the syncing worker; readers
     * check that pins_seq did not move while they looked (a seqlock).
     */
    ngx_atomic_t                 pins_seq;
    ngx_http_canary_pins_t      *pins;
    ngx_atomic_t                 npins[NGX_HTTP_CANARY_VARIANTS];

    /*
     * State "rolled_back" in Redis: every request goes to stable, as for
     * a tripped guard, until a writer says another state (canary-ctl
     * reset).  Set by the syncing worker as it applies the state.
     */
    ngx_atomic_t                 rolled_back;

    /*
     * The in-proxy guard: once tripped, every worker sends the split to
     * stable until Redis brings a generation newer than guard_generation
     * (the one its own trip wrote) whose state is neither guard_tripped
     * nor rolled_back (canary-ctl reset), or a reload without Redis.
     * Written by ngx_http_canary_guard.c only.
     */
    ngx_atomic_t                 guard_tripped; /* NGX_HTTP_CANARY_GUARD_* */
    ngx_atomic_t                 guard_owner;   /* pid that holds TRIPPING */
    ngx_atomic_t                 guard_since;
    ngx_atomic_t                 guard_generation;
    ngx_atomic_t                 guard_armed_at;  /* windows start here */
    u_char                       guard_reason[NGX_HTTP_CANARY_REASON_LEN];
    ngx_atomic_t                 guard_reason_len;
    /* the windows it tripped on: stable, canary (none when followed) */
    ngx_atomic_t                 guard_seen;
    ngx_http_canary_guard_window_t  guard_window[NGX_HTTP_CANARY_VARIANTS];

    ngx_uint_t                   ncohorts;
    ngx_http_canary_shm_cohort_t cohorts[NGX_HTTP_CANARY_COHORTS_MAX];

    ngx_http_canary_shm_stats_t  stats[NGX_HTTP_CANARY_VARIANTS];

    ngx_atomic_t                 snap_sec;      /* last second snapshotted */
    ngx_http_canary_shm_snap_t   window[NGX_HTTP_CANARY_WINDOW_SLOTS];

    ngx_http_canary_shm_shadow_t shadow;
} ngx_http_canary_shm_split_t;


/* a guard trip as the Redis adapter writes it */
typedef struct {
    time_t                       since;
    size_t                       reason_len;
    u_char                       reason[NGX_HTTP_CANARY_REASON_LEN];
} ngx_http_canary_guard_trip_t;


/* what the syncing worker knows of Redis, for every worker's status page */
typedef struct {
    ngx_atomic_t                 connected;
    ngx_atomic_t                 last_sync;     /* time_t, 0: never */
    ngx_atomic_t                 error_time;
    ngx_atomic_t                 error_len;
    u_char                       error[NGX_HTTP_CANARY_ERROR_LEN];

    /* sentinel=: the master's address, as the syncing worker uses it */
    ngx_atomic_t                 address_len;
    u_char                       address[NGX_HTTP_CANARY_ADDRESS_LEN];
} ngx_http_canary_shm_redis_t;


/*
 * A process of the master, by its slot in ngx_processes[]: the
 * configuration it runs, written by the process itself as it starts.
 * The master frees a removed split's slot only once no process that
 * may run a configuration with that split is alive (zone.c).
 */
typedef struct {
    ngx_atomic_t                 pid;
    ngx_atomic_t                 generation;
} ngx_http_canary_shm_process_t;

/* the generation of a process that serves no request (cache manager) */
#define NGX_HTTP_CANARY_NO_REQUESTS  ((ngx_atomic_uint_t) -1)


typedef struct {
    ngx_uint_t                   layout;
    ngx_uint_t                   generation;    /* committed configurations */
    /* the master that made the zone, and when: this nginx in the fleet */
    time_t                       started;
    ngx_pid_t                    master;
    ngx_queue_t                  splits;
    ngx_http_canary_shm_redis_t  redis;
    ngx_http_canary_shm_process_t  processes[NGX_MAX_PROCESSES];
} ngx_http_canary_shm_t;


typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    value;
    ngx_uint_t                   variant;
    ngx_array_t                 *from;          /* of ngx_cidr_t, or NULL */
} ngx_http_canary_override_t;


/*
 * What one pattern may cost on one header value, PCRE2's match limit
 * (steps of backtracking, 10,000,000 by default) and heap limit (KiB, for
 * the backtracking frames): a regex that backtracks catastrophically on a
 * hostile value stops there, as no match, instead of holding the worker
 */
#define NGX_HTTP_CANARY_PATTERN_MATCH_LIMIT  100000
#define NGX_HTTP_CANARY_PATTERN_HEAP_LIMIT   4096

/*
 * The match limit is counted afresh at each start position of an
 * unanchored regex ("\d*\d*x$" on 8 KB: 42 s, never stopped), so the
 * module's own copy of each regex has PCRE2's automatic callouts, and a
 * request's matches stop after that many in all: what a request's
 * patterns cost is then bounded whatever its lines and starts
 */
#define NGX_HTTP_CANARY_PATTERN_CALLOUTS     10000

/*
 * and the header lines of one request that the patterns are run on (a
 * regex per pattern of that header's name): a request with more lines
 * than that of the headers patterns match is hostile, or broken
 */
#define NGX_HTTP_CANARY_PATTERN_LINES_MAX    8


/*
 * override HEADER ~REGEX or ~*REGEX: apart from the exact overrides, so
 * that a split without patterns scans its headers as before
 */
typedef struct {
    ngx_str_t                    name;          /* lowercased */
    ngx_str_t                    value;         /* as written, with ~ */
    ngx_regex_t                 *regex;
#if (NGX_PCRE2)
    pcre2_code                  *code;          /* with auto callouts */
#endif
    ngx_uint_t                   variant;
    ngx_array_t                 *from;          /* of ngx_cidr_t, or NULL */
} ngx_http_canary_pattern_t;


typedef struct {
    ngx_str_t                    name;
    ngx_uint_t                   weight;        /* hundredths of percent */
} ngx_http_canary_cohort_t;


/* "shadow" and "shadow_ignore" of a canary_split */
typedef struct {
    ngx_uint_t                   percent;       /* hundredths of percent */
    ngx_uint_t                   methods;       /* NGX_HTTP_GET | ... */
    size_t                       max_body;
    ngx_msec_t                   timeout;
    ngx_array_t                 *ignore;        /* ngx_regex_t *, or NULL */
    unsigned                     configured:1;
    unsigned                     compare_body:1;
} ngx_http_canary_shadow_conf_t;


typedef struct ngx_http_canary_shadow_s  ngx_http_canary_shadow_t;


typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    upstream[NGX_HTTP_CANARY_VARIANTS];

    ngx_http_complex_value_t    *key;
    ngx_str_t                    key_header;    /* NAME of a $http_NAME key */
    ngx_uint_t                   key_index;     /* that variable's index */
    /*
     * NAME with "-" for "_", and the hash nginx gives a header of that
     * name (h->hash), when NAME is of [a-z0-9_] (else len 0, hash 0)
     */
    ngx_str_t                    key_dashed;
    ngx_uint_t                   key_hash;
    ngx_http_complex_value_t    *cohort;
    ngx_str_t                    salt;
    ngx_uint_t                   weight;        /* hundredths of percent */
    ngx_str_t                    cookie;
    ngx_array_t                 *cookie_from;   /* of ngx_cidr_t, or NULL */

    ngx_array_t                  overrides;     /* ngx_http_canary_override_t */
    /* bit len % 64 set for the length of each override's header name */
    uint64_t                     override_lens;
    /* and of "cookie" and the key header: the headers worth a look */
    uint64_t                     scan_lens;
    ngx_array_t                  cohorts;       /* ngx_http_canary_cohort_t */
    ngx_array_t                  patterns;      /* ngx_http_canary_pattern_t */

    ngx_http_canary_guard_limits_t  guard;

    unsigned                     defined:1;
    unsigned                     has_weight:1;
    unsigned                     has_guard:1;

    /* where a "canary" directive first used a split not yet defined */
    u_char                      *used_file;
    ngx_uint_t                   used_line;

    ngx_http_canary_shm_split_t *sh;

    ngx_http_canary_shadow_conf_t  shadow;
} ngx_http_canary_split_t;


/* a sentinel, resolved when the configuration is read */
typedef struct {
    ngx_str_t                    address;       /* as written */
    u_char                      *host;          /* an IP */
    ngx_int_t                    port;
} ngx_http_canary_sentinel_t;


typedef struct {
    ngx_str_t                    address;       /* as written; with
                                                   sentinel=: the master's
                                                   name */
    u_char                      *host;          /* an IP, or a unix path;
                                                   NULL with sentinel= */
    ngx_int_t                    port;          /* 0 for a unix socket */
    ngx_array_t                 *sentinels;     /* ngx_http_canary_sentinel_t,
                                                   or NULL */
    ngx_str_t                    master;        /* master=, with sentinel= */
    ngx_str_t                    node;          /* node=: this nginx in the
                                                   fleet's records */
    ngx_uint_t                   db;
    ngx_str_t                    password;      /* from password_file */
    ngx_str_t                    prefix;
    ngx_msec_t                   interval;
    ngx_msec_t                   timeout;
} ngx_http_canary_redis_conf_t;


typedef struct {
    ngx_shm_zone_t              *shm_zone;
    ngx_http_canary_shm_t       *sh;
    ngx_slab_pool_t             *shpool;
    ngx_uint_t                   committed;     /* its sh->generation */

    ngx_array_t                  splits;        /* ngx_http_canary_split_t * */
    /* the upstreams with canary_balancer, ngx_http_upstream_srv_conf_t * */
    ngx_array_t                  balancers;

    ngx_http_canary_redis_conf_t *redis;

    /* where the first "canary" directive is, for a missing canary_zone */
    u_char                      *used_file;
    ngx_uint_t                   used_line;
    /* a "canary SPLIT" in a server or location: decide in preaccess */
    ngx_uint_t                   preaccess;

    /* a reload resized the zone: the old size, for one notice */
    size_t                       resized_from;
    /* or renamed it: the old name (the old cycle's, alive till commit) */
    ngx_str_t                    renamed_from;
} ngx_http_canary_main_conf_t;


typedef struct {
    ngx_http_canary_split_t     *split;
    ngx_flag_t                   off;           /* "canary off" */
    ngx_flag_t                   status;
} ngx_http_canary_loc_conf_t;


/* the decision for one request */
typedef struct ngx_http_canary_ctx_s  ngx_http_canary_ctx_t;

struct ngx_http_canary_ctx_s {
    ngx_http_canary_split_t     *split;
    ngx_uint_t                   variant;
    ngx_http_canary_reason_e     reason;
    ngx_int_t                    bucket;        /* -1 when not hashed */
    ngx_uint_t                   weight;        /* weight applied */
    /*
     * the cohort whose weight decided, counted in the log phase if its
     * slot still has the name (a reload may give it another); or NULL
     */
    ngx_http_canary_shm_cohort_t *cohort;
    ngx_str_t                    cohort_name;
    /* the client address a from= was asked about, or NULL */
    struct sockaddr             *sockaddr;
    /*
     * a subrequest that decided for itself (under another split than its
     * request's), chained from its request's decision: found again after
     * an internal redirect of the subrequest, which clears its contexts
     */
    ngx_http_request_t          *request;
    ngx_http_canary_ctx_t       *next;
    unsigned                     balancer:1;    /* made by canary_balancer */
    unsigned                     upstream_read:1; /* $canary_upstream read */

    /*
     * shadow traffic (ngx_http_canary_shadow.c), bits of the same word:
     * the context keeps its size, and a request its instructions; the
     * comparison is found from the request's pool cleanup
     */
    unsigned                     shadow:1;      /* the shadow request */
    unsigned                     shadowed:1;    /* a shadow was sent */
    unsigned                     shadow_tried:1; /* decided once */
    unsigned                     shadow_https:1; /* its client's was TLS */
};


extern ngx_module_t  ngx_http_canary_module
    __attribute__((visibility("default")));


/* ngx_http_canary_module.c */
ngx_http_canary_split_t *ngx_http_canary_find_split(
    ngx_http_canary_main_conf_t *cmcf, ngx_str_t *name);
ngx_http_canary_split_t *ngx_http_canary_use_split(ngx_conf_t *cf,
    ngx_str_t *name);
ngx_http_upstream_srv_conf_t *ngx_http_canary_find_upstream(ngx_conf_t *cf,
    ngx_str_t *name);

/* ngx_http_canary_zone.c */
ngx_int_t ngx_http_canary_init_zone(ngx_shm_zone_t *shm_zone, void *data);
void ngx_http_canary_zone_commit(ngx_http_canary_main_conf_t *cmcf,
    ngx_log_t *log);
void ngx_http_canary_zone_register(ngx_http_canary_main_conf_t *cmcf);
size_t ngx_http_canary_zone_size_needed(ngx_uint_t nsplits);

/* ngx_http_canary_metrics.c */
ngx_int_t ngx_http_canary_init_metrics(ngx_conf_t *cf);
void ngx_http_canary_snapshot(ngx_http_canary_main_conf_t *cmcf);
ngx_http_canary_shm_snap_t *ngx_http_canary_window_base(
    ngx_http_canary_shm_split_t *shs, time_t now, ngx_uint_t seconds,
    time_t not_before, ngx_http_canary_shm_snap_t *copy);
void ngx_http_canary_window(ngx_http_canary_shm_split_t *shs,
    ngx_uint_t variant, ngx_http_canary_shm_snap_t *base,
    ngx_http_canary_shm_snap_variant_t *w);
ngx_int_t ngx_http_canary_report(ngx_http_request_t *r,
    ngx_http_canary_main_conf_t *cmcf, ngx_str_t *split, ngx_uint_t window,
    ngx_http_canary_report_t *rep);
void ngx_http_canary_report_split(ngx_http_canary_split_t *split,
    ngx_uint_t window, time_t now, ngx_http_canary_split_report_t *sr);

/* ngx_http_canary_guard.c */
char *ngx_http_canary_guard_conf(ngx_conf_t *cf,
    ngx_http_canary_split_t *split);
void ngx_http_canary_guard_check(ngx_http_canary_main_conf_t *cmcf);
void ngx_http_canary_guard_follow(ngx_http_canary_split_t *split,
    uint64_t generation, const u_char *by, size_t len);
void ngx_http_canary_guard_rearm(ngx_http_canary_split_t *split,
    uint64_t generation);
void ngx_http_canary_guard_reload(ngx_http_canary_shm_split_t *shs);
ngx_int_t ngx_http_canary_guard_to_write(ngx_http_canary_split_t *split,
    ngx_http_canary_guard_trip_t *trip);
void ngx_http_canary_guard_written(ngx_http_canary_split_t *split,
    uint64_t generation);
void ngx_http_canary_guard_unwritten(ngx_http_canary_split_t *split);

/* ngx_http_canary_redis.c */
char *ngx_http_canary_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_canary_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_canary_main_conf_t *cmcf);
void ngx_http_canary_redis_exit_process(void);
void ngx_http_canary_redis_tick(void);
/* hiredis' event hooks on an nginx connection (ev.data) */
void ngx_http_canary_redis_add_read(void *data);
void ngx_http_canary_redis_del_read(void *data);
void ngx_http_canary_redis_add_write(void *data);
void ngx_http_canary_redis_del_write(void *data);

/* ngx_http_canary_sentinel.c */
typedef struct ngx_http_canary_sentinels_s  ngx_http_canary_sentinels_t;

/*
 * The master's address (an IP, NUL-terminated, and a port), and which
 * sentinel said it; host NULL: none answered, "via" says why.
 */
typedef void (*ngx_http_canary_master_pt)(void *data, u_char *host,
    ngx_int_t port, u_char *via, size_t len);

ngx_http_canary_sentinels_t *ngx_http_canary_sentinels_create(
    ngx_cycle_t *cycle, ngx_http_canary_redis_conf_t *rc,
    ngx_http_canary_master_pt handler, void *data);
void ngx_http_canary_sentinels_ask(ngx_http_canary_sentinels_t *sn);
void ngx_http_canary_sentinels_close(ngx_http_canary_sentinels_t *sn);

/* ngx_http_canary_sync.c */
typedef struct ngx_http_canary_sync_s  ngx_http_canary_sync_t;
struct redisReply;

ngx_http_canary_sync_t *ngx_http_canary_sync_create(ngx_cycle_t *cycle,
    ngx_http_canary_main_conf_t *cmcf);
void ngx_http_canary_sync_new_instance(ngx_http_canary_sync_t *sync);
ngx_int_t ngx_http_canary_sync_apply(ngx_http_canary_sync_t *sync,
    ngx_uint_t index, struct redisReply *exec, ngx_str_t *error);
ngx_msec_t ngx_http_canary_sync_retire(ngx_http_canary_sync_t *sync);
void ngx_http_canary_sync_text(u_char *dst, ngx_atomic_t *len,
    const u_char *src, size_t n);

/* ngx_http_canary_fleet.c */
typedef struct ngx_http_canary_fleet_s  ngx_http_canary_fleet_t;

ngx_http_canary_fleet_t *ngx_http_canary_fleet_create(ngx_cycle_t *cycle,
    ngx_http_canary_main_conf_t *cmcf);
ngx_uint_t ngx_http_canary_fleet_command(ngx_http_canary_fleet_t *fleet,
    const char ***argv, const size_t **argvlen);
ngx_uint_t ngx_http_canary_fleet_goodbye(ngx_http_canary_fleet_t *fleet,
    const char ***argv, const size_t **argvlen);
ngx_int_t ngx_http_canary_fleet_reply(ngx_http_canary_fleet_t *fleet,
    struct redisReply *reply, ngx_str_t *error);

/* ngx_http_canary_status.c */
char *ngx_http_canary_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_canary_route.c */
ngx_int_t ngx_http_canary_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_canary_init_route(ngx_conf_t *cf);
void ngx_http_canary_init_key_headers(ngx_cycle_t *cycle,
    ngx_http_canary_main_conf_t *cmcf);
ngx_http_canary_ctx_t *ngx_http_canary_get_ctx(ngx_http_request_t *r);
ngx_http_canary_ctx_t *ngx_http_canary_own_ctx(ngx_http_request_t *r);
ngx_http_canary_ctx_t *ngx_http_canary_decide(ngx_http_request_t *r);
ngx_http_canary_ctx_t *ngx_http_canary_decide_split(ngx_http_request_t *r,
    ngx_http_canary_split_t *split);
void ngx_http_canary_set_ctx(ngx_http_request_t *r,
    ngx_http_canary_ctx_t *ctx);

/* ngx_http_canary_shadow.c */
char *ngx_http_canary_shadow_conf(ngx_conf_t *cf,
    ngx_http_canary_split_t *split);
char *ngx_http_canary_shadow_ignore_conf(ngx_conf_t *cf,
    ngx_http_canary_split_t *split);
ngx_int_t ngx_http_canary_shadow_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_canary_shadow_init(ngx_conf_t *cf,
    ngx_http_canary_main_conf_t *cmcf);
void ngx_http_canary_shadow_report(ngx_http_canary_split_t *split,
    ngx_http_canary_shadow_report_t *rep);

/* ngx_http_canary_balancer.c */
char *ngx_http_canary_balancer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#pragma GCC visibility pop


#endif /* _NGX_HTTP_CANARY_MODULE_H_INCLUDED_ */
