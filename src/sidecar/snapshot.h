
/*
 * Evidence snapshots: at a decision that changes the weight, what it
 * decided on (the stage's counters and histograms of both variants, in
 * all and per nginx, and the checks with their p-values) as JSON,
 * compressed with zlib; stored in Redis with the decision (redis.c) and,
 * with --evidence-dir, as a file.
 */


#ifndef _CS_SNAPSHOT_H_INCLUDED_
#define _CS_SNAPSHOT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "analysis.h"


/* one nginx's requests over the stage, as this process read them */
typedef struct {
    char               *name;
    cs_window_t         v[2];               /* CS_STABLE, CS_CANARY */
} cs_stage_node_t;


typedef struct {
    cs_stage_node_t    *nodes;
    size_t              n;
    size_t              cap;
    int64_t             stage_started;      /* the stage they belong to */
    int64_t             since;              /* unix ms of the first step
                                               added: after a restart,
                                               later than the stage */
} cs_stage_nodes_t;


/* a new stage (or the first step of this process): nothing yet */
void cs_stage_nodes_reset(cs_stage_nodes_t *sn, int64_t stage_started,
    int64_t now);

/* adds one step's new requests of nginx "name" (2 windows); -1 without
 * memory */
int cs_stage_nodes_add(cs_stage_nodes_t *sn, const char *name,
    const cs_window_t *delta);

void cs_stage_nodes_free(cs_stage_nodes_t *sn);

/*
 * The snapshot of decision d (made on rollout ro) whose weight change's
 * receipt is "id", as zlib-compressed JSON: malloc()ed, its length in
 * *len; NULL without memory.  With json non-NULL, the JSON text too
 * (malloc()ed).
 */
unsigned char *cs_snapshot(const cs_plan_t *plan, const char *split,
    const cs_rollout_t *ro, const cs_decision_t *d, const char *id,
    int64_t now, const cs_stage_nodes_t *sn, size_t *len, char **json);

/* DIR/<id>.json.z, written whole (a temporary file renamed); 0, or -1
 * with the problem in err */
int cs_snapshot_file(const char *dir, const char *id,
    const unsigned char *p, size_t len, char *err, size_t errlen);


#endif /* _CS_SNAPSHOT_H_INCLUDED_ */
