
/*
 * The fleet's metrics: GET /canary_status?format=json&split=&window= of
 * every nginx (libcurl, in parallel, short timeouts), parse (jansson),
 * and add up requests, errors and latency histograms bucket by bucket.
 */


#ifndef _CS_FETCH_H_INCLUDED_
#define _CS_FETCH_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "stats.h"


#define CS_STABLE             0
#define CS_CANARY             1


/* one variant over the window */
typedef struct {
    uint64_t            requests;
    uint64_t            errors_5xx;
    uint64_t            upstream_errors;
    uint64_t            counts[CS_HIST_BUCKETS];
} cs_window_t;


/* a split's shadow counters (the module's splits.NAME.shadow) */
typedef struct {
    uint64_t            requests;           /* mirrored */
    uint64_t            compared;
    uint64_t            matched;
    uint64_t            mismatched_status;
    uint64_t            mismatched_body;
    uint64_t            canary_errors;
    uint64_t            timeouts;
    uint64_t            skipped;            /* method, too large, bound */
} cs_shadow_t;


typedef struct {
    cs_window_t         v[2];               /* CS_STABLE, CS_CANARY */
    cs_window_t         total[2];           /* one nginx: its cumulative
                                               counters */
    int64_t             created;            /* one nginx: unix s its
                                               counters start; 0 unknown */
    uint64_t            instance;           /* one node of the fleet: its
                                               record's "instance", hashed;
                                               0 unknown */
    cs_window_t         delta[2];           /* the fleet: requests new
                                               since the previous step */
    int                 has_delta;
    cs_window_t        *node_delta;         /* the same per nginx: 2 a
                                               node, n_node of them; NULL:
                                               only the sum */
    size_t              n_node;
    unsigned            window_seconds;     /* the shortest of any nginx */
    size_t              instances;          /* answered and added up */
    size_t              asked;
    size_t              guard_tripped;      /* nginx with the guard on */
    size_t              disabled;           /* nginx with enabled false */
    uint64_t            generation_min;     /* lowest applied by any */
    const char         *lagging;            /* the fleet: nodes behind the
                                               split's generation for
                                               plan->lag (lag.h); NULL:
                                               none */
    const char         *lag_held;           /* those behind for
                                               plan->lag_hold: no
                                               promotion */
    size_t              lag_holding;

    cs_shadow_t         shadow_total;       /* one nginx: cumulative; 0
                                               without shadow */
    size_t              shadow_seen;        /* one nginx: 1 it reported
                                               its shadow; the fleet:
                                               the nginx that did */
    cs_shadow_t         shadow_delta;       /* the fleet: new since the
                                               previous step */
} cs_metrics_t;


/* the status URL with format=json&split=NAME&window=SECONDS appended;
 * malloc()ed, NULL without memory */
char *cs_fetch_url(const char *base, const char *split, unsigned window);

/*
 * GET every URL in parallel, each within timeout_ms (connect and
 * total), into nodes[i], answered[i] 1 for those read.  Returns the
 * number of nginx read; problems of the others, one "NAME: why" each,
 * in err.
 */
size_t cs_fetch(char *const *urls, char *const *names, size_t n,
    const char *split, long timeout_ms, cs_metrics_t *nodes, int *answered,
    char *err, size_t errlen);

/* one /canary_status JSON body into m (zeroed first); 0 or -1 and err */
int cs_fetch_parse(const char *body, size_t len, const char *split,
    cs_metrics_t *m, char *err, size_t errlen);

void cs_metrics_init(cs_metrics_t *m);

/* adds one nginx's window (not its totals) into a sum */
void cs_metrics_add(cs_metrics_t *sum, const cs_metrics_t *one);

/* a += b, variant by variant */
void cs_window_add(cs_window_t *a, const cs_window_t *b);

/* a shadow count beyond it is not the module's (as CS_FLEET_COUNT_MAX) */
#define CS_SHADOW_COUNT_MAX     (1ULL << 48)

/*
 * a split's "shadow" object (the status JSON's, a node record's) into
 * out: 0 read; 1 none (NULL, null: all 0); -1 not the module's (not an
 * object, a count missing or not one) and err, out all 0.  (a jansson
 * json_t)
 */
struct json_t;
int cs_fetch_shadow(struct json_t *sh, cs_shadow_t *out, char *err,
    size_t errlen);

/* a += b; a - b into out (0 and 1 when a counter of a is under b's) */
void cs_shadow_add(cs_shadow_t *a, const cs_shadow_t *b);
int cs_shadow_sub(cs_shadow_t *out, const cs_shadow_t *a,
    const cs_shadow_t *b);


#endif /* _CS_FETCH_H_INCLUDED_ */
