
/*
 * Split verification: does every nginx apply the generation of the
 * split that was written?  When the split's hash got each generation
 * (the sidecar's own writes, and the others' as first read), so that a
 * node reporting generation g is known to be behind since g + 1 was
 * written.  A node behind by plan->lag is lagging (logged, and in the
 * sidecar's state); by plan->lag_hold it holds the rollout: no
 * promotion until it follows or leaves (analysis.c).
 *
 * A node that stops answering may be cut from Redis or stuck, not
 * gone: it may still serve the old weight.  In fleet mode a node that
 * stops gracefully leaves the nodes set, and one whose record expired
 * stays in it, silent (cs_lag_silent()): a silent node behind the split
 * lags like any other, "(silent)", until it answers again or
 * CS_LAG_SILENT_MAX passes.  With --status nobody says goodbye: a node
 * that stops answering lags, silent, only if it answered at an older
 * generation after the newer one was written; one that stops answering
 * while it follows has left.  Pure: no I/O.
 */


#ifndef _CS_LAG_H_INCLUDED_
#define _CS_LAG_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "ngx_http_canary_limits.h"
#include "fetch.h"
#include "plan.h"


/* the generations whose time is remembered */
#define CS_LAG_HISTORY      64

/* a node silent this long is forgotten, lagging or not (ms): as long as
 * the nodes set keeps it */
#define CS_LAG_SILENT_MAX   NGX_HTTP_CANARY_NODE_SILENT_MAX


typedef struct {
    uint64_t            generation;
    int64_t             at;                 /* Redis' unix ms */
} cs_lag_gen_t;


/* a node as last seen answering */
typedef struct {
    char               *name;
    uint64_t            generation;
    int64_t             seen;               /* Redis' unix ms */
    unsigned            silent:1;           /* this step, fleet mode */
    unsigned            unknown:1;          /* silent, never seen answer */
} cs_lag_node_t;


typedef struct {
    cs_lag_gen_t        gens[CS_LAG_HISTORY];   /* oldest first */
    size_t              n;
    cs_lag_node_t      *nodes;
    size_t              nnodes;
    size_t              cap;
    int                 fleet;              /* the nodes set says who is
                                               silent */
} cs_lag_t;


/*
 * The split is at generation since "at" (or earlier): remembered when
 * it is new.  A generation lower than the last is a hash rewritten (or
 * another Redis): the history starts over.
 */
void cs_lag_generation(cs_lag_t *lag, uint64_t generation, int64_t at);

/* ms a node applying generation g has been behind at now; 0: it is not */
int64_t cs_lag_behind(const cs_lag_t *lag, uint64_t g, int64_t now);

/*
 * The nodes that answered (readings[i].generation_min, the generation
 * each applies) behind by plan->lag or more, and the silent ones, as
 * "NAME at generation N, NAME at generation N (silent), ..." in lagging
 * (a text that changes only with them), their number returned; those
 * behind by plan->lag_hold or more the same in held, their number in
 * *holding.  Texts too long end in "...".  Remembers who answered.
 */
size_t cs_lag_check(cs_lag_t *lag, const cs_plan_t *plan,
    char *const *names, const cs_metrics_t *readings, const int *answered,
    size_t n, int64_t now, char *lagging, size_t size, char *held,
    size_t hsize, size_t *holding);

/*
 * Fleet mode: a node in the nodes set whose record expired, this step.
 * One never seen answering (the sidecar restarted meanwhile) is at an
 * unknown generation: it may have missed any, so it holds from when it
 * is first noticed until it answers, leaves the set or CS_LAG_SILENT_MAX
 * passes.
 */
void cs_lag_silent(cs_lag_t *lag, const char *name, size_t len);

void cs_lag_free(cs_lag_t *lag);


#endif /* _CS_LAG_H_INCLUDED_ */
