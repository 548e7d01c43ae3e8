
/*
 * Each nginx's cumulative counters as last read, and what is new since:
 * the stage's evidence is the sum of these differences over the fleet.
 * An nginx whose counters went down, or whose "created" changed, was
 * restarted or got a new zone: everything it counts now is new.  One
 * that stops answering keeps its last reading, so that when it answers
 * again nothing it counted meanwhile is lost; one that leaves simply
 * adds nothing more.  Pure: no I/O.
 */


#ifndef _CS_NODES_H_INCLUDED_
#define _CS_NODES_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "fetch.h"


typedef struct {
    int                 seen;
    int64_t             created;
    cs_window_t         total[2];
} cs_node_t;


enum {
    CS_NODE_FIRST = 0,          /* the first reading: nothing to add */
    CS_NODE_COUNTED,            /* delta: what is new since the last */
    CS_NODE_RESTARTED           /* counters started over: delta is them */
};


/*
 * One nginx's reading m against its last: delta[v] gets what is new;
 * the reading becomes the last.  Returns CS_NODE_*.
 */
int cs_node_read(cs_node_t *node, const cs_metrics_t *m,
    cs_window_t *delta);

/*
 * Adds the readings of the nginx that answered into sum: their windows
 * (the short-window checks) and what is new since each one's last
 * reading (sum->delta; sum->has_delta once any nginx was read before).
 * Returns how many of them restarted.
 */
size_t cs_nodes_sum(cs_node_t *nodes, const cs_metrics_t *readings,
    const int *answered, size_t n, cs_metrics_t *sum);


#endif /* _CS_NODES_H_INCLUDED_ */
