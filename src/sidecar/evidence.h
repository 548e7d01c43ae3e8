
/*
 * What a stage is judged on: every request of the fleet since the stage
 * (or its hold) started, summed from what each step added (nodes.c),
 * and the always-valid tests over it.  Kept in the sidecar's state in
 * Redis, so that a restarted sidecar goes on with the same evidence.
 * Pure: no I/O.
 */


#ifndef _CS_EVIDENCE_H_INCLUDED_
#define _CS_EVIDENCE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "fetch.h"
#include "plan.h"
#include "sequential.h"


/*
 * How a stage's share of 1 - confidence is spent (a union bound: the
 * three together stay within it): the always-valid error test, which
 * acts as soon as a large regression shows; the one look at the end of
 * the hold, which has the most power for a moderate one (make
 * judge-bench measured the split); the always-valid latency test.
 */
#ifndef CS_ALPHA_ERRORS
#define CS_ALPHA_ERRORS         0.25
#define CS_ALPHA_LOOK           0.6
#define CS_ALPHA_LATENCY        0.15
#endif

/*
 * A stage whose SLO has shadow_match_min: this part of its share goes to
 * the shadow's test, the rest is split as above (a union bound still)
 */
#ifndef CS_ALPHA_SHADOW
#define CS_ALPHA_SHADOW         0.5
#endif

/* errors in the short window before it may say "outage" or "critical" */
#define CS_WINDOW_ERRORS_MIN    5

/* stable's requests over the stage before its p99 bounds latency */
#define CS_LATENCY_MIN_STABLE   100


typedef struct {
    cs_window_t         v[2];               /* CS_STABLE, CS_CANARY */
    cs_seq_t            errors;             /* errors: 5xx and upstream */
    cs_seq_t            latency;            /* requests over the bound */
    cs_seq_t            latency95;          /* over stable's p95 x
                                               latency_p95_ratio_max */
    cs_shadow_t         shadow;             /* the shadow's counters
                                               over the stage */
    int                 looked;             /* the stage's one fixed-
                                               horizon look: 0 not yet,
                                               1 passed, -1 failed */
    double              look_p;
} cs_evidence_t;


/*
 * Adds one step's new requests (m->delta) to the evidence, and to its
 * always-valid tests.
 */
void cs_evidence_add(const cs_plan_t *plan, cs_evidence_t *ev,
    const cs_metrics_t *m);

/* latency's bad-event bound in us from stable's stage histogram; 0:
 * too few requests yet */
uint64_t cs_slow_bound_us(const cs_plan_t *plan, const uint64_t *stable);

/* the same for p95 and latency_p95_ratio_max; 0: off or too few */
uint64_t cs_slow_bound95_us(const cs_plan_t *plan, const uint64_t *stable);

/*
 * The evidence as text for the sidecar's state, and back: malloc()ed
 * (NULL without memory); 0, or -1 with the problem in err when the text
 * is not evidence this sidecar wrote (the caller starts it over).
 */
char *cs_evidence_format(const cs_evidence_t *ev);
int cs_evidence_parse(cs_evidence_t *ev, const char *text, char *err,
    size_t errlen);

/*
 * One variant's counters as " TAG REQUESTS 5XX UPSTREAM BUCKET:COUNT,..."
 * appended at buf + n (returns the new n), and read back from p: the
 * position after it, or NULL when it is not that.
 */
size_t cs_window_format(char *buf, size_t size, size_t n, char tag,
    const cs_window_t *w);
const char *cs_window_parse(const char *p, char tag, cs_window_t *w);

/*
 * Shadow counters as " h REQUESTS COMPARED MATCHED STATUS BODY ERRORS
 * TIMEOUTS SKIPPED" (none when all are 0), and back from p (at " h "):
 * the position after it, or NULL.
 */
#define CS_SHADOW_TEXT_MAX      (4 + 8 * 21)

size_t cs_shadow_format(char *buf, size_t size, size_t n,
    const cs_shadow_t *sh);
const char *cs_shadow_parse(const char *p, cs_shadow_t *sh);


#endif /* _CS_EVIDENCE_H_INCLUDED_ */
