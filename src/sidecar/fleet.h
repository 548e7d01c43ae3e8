
/*
 * The fleet as it reports itself to Redis (README, "The fleet"): each
 * nginx's record of the split, <prefix><split>:node:NAME, read into the
 * cs_metrics_t a /canary_status page gives, and the short window the
 * outage rules look at, made of the sidecar's own steps since nginx
 * reports only cumulative counters there.  Pure: no I/O.
 */


#ifndef _CS_FLEET_H_INCLUDED_
#define _CS_FLEET_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "fetch.h"


/* the live nodes read in one step, at most */
#define CS_FLEET_NODES_MAX      10000

/*
 * A count over this is not one an nginx made (2^48 requests: nine years
 * at a million a second) and could overflow the fleet's sums.
 */
#define CS_FLEET_COUNT_MAX      (1ULL << 48)

/* the steps the short window remembers: 60s at the shortest interval */
#define CS_FLEET_STEPS          1024

/* a node that left is forgotten after this (ms) without a record */
#define CS_FLEET_FORGET_MS      (10 * 60 * 1000)

/* the node problems logged once each, at most */
#define CS_FLEET_LOGGED_MAX     4096


/* why a record is ignored; each is logged once per node */
typedef enum {
    CS_RECORD_OK = 0,
    CS_RECORD_NAME,                 /* not a valid node name */
    CS_RECORD_GONE,                 /* listed, but no record (expired,
                                       or not a string) */
    CS_RECORD_TOO_LARGE,
    CS_RECORD_JSON,
    CS_RECORD_VERSION,
    CS_RECORD_OTHER,                /* another node's or split's */
    CS_RECORD_HIST,                 /* another histogram layout */
    CS_RECORD_FIELD,                /* a field missing or of a wrong type */
    CS_RECORD_LATENCY,              /* latency is not bucket:count,... */
    CS_RECORD_COUNT,                /* a count over CS_FLEET_COUNT_MAX */
    CS_RECORDS
} cs_record_e;


/* one step's new requests of the fleet, for the short window */
typedef struct {
    int64_t             at;                 /* Redis' unix ms */
    int64_t             from;               /* the step before */
    uint64_t            requests[2];
    uint64_t            errors_5xx[2];
    uint64_t            upstream_errors[2];
} cs_fleet_step_t;


typedef struct {
    cs_fleet_step_t     steps[CS_FLEET_STEPS];
    size_t              head;               /* the next to write */
    size_t              n;
    int64_t             last;               /* the last step; 0: none */
} cs_fleet_window_t;


typedef struct {
    char              **keys;               /* "REASON NAME" */
    size_t              n;
    size_t              size;
} cs_fleet_logged_t;


/*
 * Node name's record (len bytes) of split into m (zeroed first): its
 * cumulative counters (m->total), "created", the generation it applies
 * (m->generation_min), guard and enabled; m->v stays empty (the window
 * is the sidecar's).  CS_RECORD_OK, or why not with the detail in err.
 */
cs_record_e cs_fleet_parse(const char *name, size_t name_len,
    const char *record, size_t len, const char *split, cs_metrics_t *m,
    char *err, size_t errlen);

/* "not valid JSON", ...: a reason in a few words */
const char *cs_record_reason(cs_record_e reason);

/*
 * The short window: a step's new requests (delta, 2 variants; NULL when
 * none could be taken) at now; and the sum of the steps within the last
 * "seconds" into m->v, with m->window_seconds the time they cover
 * (short after a start).
 */
void cs_fleet_window_add(cs_fleet_window_t *w, int64_t now,
    const cs_window_t *delta);
void cs_fleet_window_sum(const cs_fleet_window_t *w, int64_t now,
    unsigned seconds, cs_metrics_t *m);

/* 1 the first time a node has this problem (log it), 0 after */
int cs_fleet_once(cs_fleet_logged_t *l, const char *name,
    cs_record_e reason);
void cs_fleet_logged_free(cs_fleet_logged_t *l);


#endif /* _CS_FLEET_H_INCLUDED_ */
