
/*
 * The decision, pure: from the fleet's summed metrics, the plan, the
 * rollout's state (the sidecar's own and the split's hash as read) and
 * the time, what to do and why, with the numbers.  No I/O: the caller
 * reads Redis and nginx, then writes what the decision says.
 */


#ifndef _CS_ANALYSIS_H_INCLUDED_
#define _CS_ANALYSIS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "ngx_http_canary_contract.h"
#include "ngx_http_canary_limits.h"

#include "plan.h"
#include "fetch.h"
#include "evidence.h"


typedef enum {
    CS_STATUS_NEW = 0,              /* no state yet: the rollout starts */
    CS_STATUS_RUNNING,
    CS_STATUS_AWAITING_RESUME,
    CS_STATUS_PAUSED,
    CS_STATUS_HALTED,
    CS_STATUS_COMPLETE,
    CS_STATUS_ROLLED_BACK,
    CS_STATUS_ROLLING_BACK          /* a gradual rollback walks down */
} cs_status_e;


/* the stages' figures the final receipt sums up, as JSON text: an entry
 * is up to some 600 bytes (a 48-byte name, 20-digit counts, 7 p-values),
 * CS_STAGES_MAX of them must fit (16384 kept 29 of 32) */
#define CS_STAGES_LOG_MAX   32768


/* the sidecar's own state: <prefix><split>:sidecar */
typedef struct {
    cs_status_e         status;
    size_t              stage;
    int64_t             stage_started;      /* unix ms */
    uint32_t            weight;             /* the split's, last known */
    uint64_t            generation;         /* the last the sidecar wrote */
    uint64_t            seen;               /* the last it accounted for */
    int64_t             violation_since;    /* unix ms; 0: none pending */
    int                 approved;           /* a manual stage resumed
                                               into; -1: none */
    char                last_receipt[40];
    char                stopped_by[192];
    char                held[384];          /* status new: why the rollout
                                               does not start */
    char                lagging[384];       /* the nodes that lag the
                                               split's generation */
    int                 walking;            /* a gradual rollback under
                                               way, kept while an
                                               operator pauses it */
    int64_t             trigger_since[CS_TRIGGERS];
                                            /* unix ms each trigger's
                                               checks fail since; 0 */
    cs_evidence_t       ev;

    /* for the receipts (receipts.c): how far the rollout got */
    int64_t             rollout_started;    /* unix ms; 0: unknown */
    uint32_t            stages_completed;
    uint32_t            rollbacks;          /* rollbacks to 0 seen */
    char                stages_log[CS_STAGES_LOG_MAX];
                                            /* each stage left: JSON
                                               objects, comma separated
                                               (the summary's stages) */
    int64_t             rollback_detected;  /* unix ms: the violation
                                               the rollback under way
                                               acts on (a walk restarts
                                               violation_since); 0 */
    uint32_t            rollback_failed;    /* its failed checks:
                                               cs_failed_bit(i) check i,
                                               CS_FAILED_CRITICAL the
                                               critical path */
} cs_rollout_t;


/* the split's hash <prefix><split> as read */
typedef struct {
    int                 exists;
    int                 has_weight;
    uint32_t            weight;
    int                 enabled;            /* 1, 0; -1: not set */
    uint64_t            generation;
    char                state[NGX_HTTP_CANARY_STATE_LEN + 1];
    char                updated_by[NGX_HTTP_CANARY_STATE_LEN + 1];
} cs_split_view_t;


enum {
    CS_CHECK_LATENCY = 0,
    CS_CHECK_ERRORS,
    CS_CHECK_AVAILABILITY,
    /* off (cs_check_t.off) unless the SLO sets them */
    CS_CHECK_LATENCY_P95,           /* relative, latency_p95_ratio_max */
    CS_CHECK_P50_MAX,               /* absolute, latency_p50_max_ms */
    CS_CHECK_P95_MAX,
    CS_CHECK_P99_MAX,
    /* a shadow stage's match rate, shadow_match_min; off unless the
       stage mirrors and its SLO sets it */
    CS_CHECK_SHADOW,
    CS_CHECKS
};


typedef enum {
    CS_PASS = 0,
    CS_FAIL,
    CS_NO_DATA
} cs_verdict_e;


typedef struct {
    double              baseline;           /* stable */
    double              canary;
    double              threshold;
    double              p_value;            /* always-valid, the stage's */
    double              alpha;              /* what p_value must be under */
    double              look_p;             /* the stage's fixed-horizon
                                               look; -1: none */
    uint64_t            events[2];          /* bad events over the stage */
    cs_verdict_e        status;
    int                 off;                /* not in the SLO: not judged,
                                               not in receipts */
} cs_check_t;


typedef struct {
    cs_check_t          checks[CS_CHECKS];
    uint64_t            requests[2];        /* over the stage */
    uint64_t            errors[2];
    double              error_pct[2];
    double              p99_ms[2];
    double              slow_ms;            /* latency's bad-event bound */
    double              alpha;              /* the stage's share of
                                               1 - confidence */
    double              error_phi;          /* errors' burstiness: 1 when
                                               independent */
    double              window_error_pct[2];    /* the short window */
    uint64_t            window_requests[2];
    unsigned            window_seconds;
    size_t              instances;
    size_t              asked;
    int                 enough;             /* both >= min_requests over
                                               the stage */
    int                 looked;             /* the look ran this step */
    int                 outage;             /* both sides failing */
    int                 degraded;           /* the outage: both under
                                               availability_min only */
    int                 critical;
    int                 violation;          /* a FAIL or critical */

    /* the shadow's comparisons over the stage (evidence.h) and the
       least the shadow check needs */
    cs_shadow_t         shadow;
    uint64_t            shadow_min_compared;
    size_t              shadow_nginx;       /* nginx that report their
                                               shadow this step */
} cs_judgement_t;


typedef enum {
    CS_ACT_HOLD = 0,        /* nothing to write to the split */
    CS_ACT_IDLE,            /* the rollout is over: nothing to do */
    CS_ACT_START,
    CS_ACT_PROMOTE,
    CS_ACT_AWAIT,
    CS_ACT_COMPLETE,
    CS_ACT_ROLLBACK,
    CS_ACT_PAUSE,
    CS_ACT_HALT,
    CS_ACT_UNHALT,
    CS_ACT_ROLLBACK_STEP    /* a gradual rollback's step above 0 */
} cs_action_e;


typedef struct {
    cs_action_e         action;
    const char         *ops[2];             /* receipt operations */
    size_t              nops;
    const char         *state;              /* the split's new state */
    int                 set_weight;
    uint32_t            weight;
    int                 pins;               /* 1: pin the plan's tenants
                                               to canary; -1: unpin */
    int                 from_stage;         /* -1: none */
    int                 to_stage;
    uint32_t            from_weight;
    uint32_t            to_weight;
    int                 has_judgement;
    cs_judgement_t      j;
    cs_rollout_t        next;               /* the state after it */
    int                 dirty;              /* next differs: save it */
    char                reason[384];
    char                note[384];          /* what an operator did */
    cs_evidence_t       judged;             /* the evidence it decided
                                               on (the stage's, before a
                                               new stage clears next.ev) */
} cs_decision_t;


void cs_rollout_init(cs_rollout_t *ro);
const char *cs_status_name(cs_status_e status);
int cs_status_parse(const char *s, cs_status_e *status);
int cs_rollout_over(const cs_rollout_t *ro);

/* the action writes the split (weight, state, receipt, generation) */
int cs_action_writes(cs_action_e action);
const char *cs_verdict_name(cs_verdict_e v);
const char *cs_check_name(size_t check);
uint32_t cs_failed_mask(const cs_judgement_t *j);

/*
 * A check's bit in that mask, and the critical path's: bits 0-6 the
 * checks before the shadow's, bit 7 the critical path, as states saved
 * before the shadow check have them; the shadow check bit 8
 */
#define CS_FAILED_CRITICAL      (1u << CS_CHECK_SHADOW)
#define cs_failed_bit(check)                                                  \
    ((check) == CS_CHECK_SHADOW ? 1u << CS_CHECKS : 1u << (check))

/* the trigger (CS_TRIGGER_*) that acts for a check */
size_t cs_check_trigger(size_t check);

/* a trigger as it acts: the plan's, or violation_for and on_violation */
void cs_trigger_get(const cs_plan_t *plan, size_t trigger,
    cs_trigger_t *t);

/*
 * The checks of canary against stable over the stage's evidence; the
 * critical path and outages over the short window of m.  look: run the
 * stage's fixed-horizon look now (the hold has passed); its result is
 * kept in ev.
 */
void cs_judge(const cs_plan_t *plan, cs_evidence_t *ev,
    const cs_metrics_t *m, int look, cs_judgement_t *j);

/* the stage's share of 1 - confidence: split evenly over the stages
 * that compare the two sides (weight under 100%, or a hold) */
double cs_stage_alpha(const cs_plan_t *plan);

/*
 * The decision.  m is NULL when no nginx answered.  A decision that
 * writes the split expects to raise its generation from
 * view->generation to view->generation + 1 (the caller makes the write
 * conditional on that).
 */
void cs_decide(const cs_plan_t *plan, const cs_split_view_t *view,
    const cs_rollout_t *ro, const cs_metrics_t *m, int64_t now,
    cs_decision_t *d);

/*
 * now - since in ms, without overflow whatever the two hold (times come
 * from Redis): 0 when since is not before now, at most INT64_MAX.
 */
int64_t cs_elapsed(int64_t now, int64_t since);

/*
 * The window to judge over, in whole seconds: the plan's, but never
 * reaching back before the stage (or its hold) started, so that a stage
 * is judged on its own traffic and not on a mix from before a weight
 * change; at least 1.
 */
unsigned cs_window_seconds(const cs_plan_t *plan, const cs_rollout_t *ro,
    int64_t now);

/* the stage an operator's weight puts the rollout at: the last one
 * whose weight is at most that */
size_t cs_stage_for_weight(const cs_plan_t *plan, uint32_t weight);

/*
 * The log line of a decision, without the timestamp:
 * "api stage 20_percent (20%): hold 12s/60s; canary err 0.40% (n=250)
 *  vs stable 0.38% (n=1010); p99 12.1ms vs 11.9ms"
 */
void cs_decision_line(const cs_plan_t *plan, const char *split,
    const cs_rollout_t *ro, const cs_decision_t *d, char *buf,
    size_t size);


#endif /* _CS_ANALYSIS_H_INCLUDED_ */
