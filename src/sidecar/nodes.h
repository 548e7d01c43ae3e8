
/*
 * Each nginx's cumulative counters as last read, and what is new since:
 * the stage's evidence is the sum of these differences over the fleet.
 *
 * The readings are kept in the sidecar's state in Redis, written with
 * the evidence they were added to, so that whoever leads next (this
 * sidecar after a restart or a lost lease, another one, a --once run)
 * takes its differences from exactly where the evidence stopped:
 * nothing counted twice, nothing lost.
 *
 * An nginx whose counters went down, or whose "created" is newer than
 * the last reading and than any seen at its address before, was
 * restarted or got a new zone since: everything it counts now is new.
 * Any other change of "created" is another nginx answering at that
 * address (a load balancer in front of the fleet; one that flips back):
 * its counters are a new starting point, never added.  So is, in the
 * fleet, another writer ("instance") of counters that start in the same
 * second: two nginx with one node name, started together.
 * One that stops answering keeps its last reading, so that when it
 * answers again nothing it counted meanwhile is lost, unless a stage
 * starts meanwhile (its gap would belong to two stages): then it is
 * forgotten.  Pure: no I/O.
 */


#ifndef _CS_NODES_H_INCLUDED_
#define _CS_NODES_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "fetch.h"


/* how far nginx's clock may be behind Redis' for a restart to count */
#define CS_NODE_SKEW_MS     5000


typedef struct {
    int                 seen;
    int64_t             created;            /* unix s; 0 unknown */
    int64_t             newest;             /* the newest created seen */
    int64_t             read_at;            /* Redis' unix ms */
    uint64_t            instance;           /* the fleet: the record's
                                               writer (fleet.h); 0
                                               unknown */
    cs_window_t         total[2];
    cs_shadow_t         shadow;             /* its shadow counters */
    int                 shadow_seen;        /* the last reading had them
                                               (not null, not absent) */
    cs_shadow_t         shadow_new;         /* what the last reading
                                               added to them */
} cs_node_t;


enum {
    CS_NODE_FIRST = 0,          /* the first reading: nothing to add */
    CS_NODE_COUNTED,            /* delta: what is new since the last */
    CS_NODE_RESTARTED,          /* counters started over: delta is them */
    CS_NODE_OTHER               /* another nginx at this address */
};


/*
 * One nginx's reading m at now (Redis' clock, ms) against its last:
 * delta[v] gets what is new; the reading becomes the last.  Returns
 * CS_NODE_*.
 */
int cs_node_read(cs_node_t *node, const cs_metrics_t *m, int64_t now,
    cs_window_t *delta);

/*
 * Adds the readings of the nginx that answered into sum: their windows
 * (the short-window checks) and what is new since each one's last
 * reading (sum->delta; sum->has_delta once any nginx was read before),
 * and, per nginx, into deltas (2 n windows) which sum->node_delta then
 * points to: the tests compare canary with stable within each nginx.
 * restarted and other count those cases.
 */
void cs_nodes_sum(cs_node_t *nodes, const cs_metrics_t *readings,
    const int *answered, size_t n, int64_t now, cs_window_t *deltas,
    cs_metrics_t *sum, size_t *restarted, size_t *other);

/*
 * The readings as text for the sidecar's state (one record per nginx
 * read, named by its status URL), malloc()ed, NULL without memory; and
 * back into nodes (every node not in the text is forgotten; a line for
 * an unknown name, or that is not a reading, is skipped and counted in
 * the return).
 */
char *cs_nodes_format(const cs_node_t *nodes, char *const *names,
    size_t n);
size_t cs_nodes_parse(cs_node_t *nodes, char *const *names, size_t n,
    const char *text);

/*
 * The names in such a text that are node names (fleet mode), each
 * malloc()ed, in a malloc()ed array (*n of them); NULL with *n 0 when
 * there are none or without memory.
 */
char **cs_nodes_names(const char *text, size_t *n);


#endif /* _CS_NODES_H_INCLUDED_ */
