
/*
 * What --listen serves, pure: the sidecar's state as each step leaves
 * it (the rollout, the last judgement, counters, a bounded history of
 * per-step samples, the last receipts of the split's stream), and its
 * renderers:
 * Prometheus text for /metrics, JSON for the rollout page, the answers
 * of /healthz and /readyz.  No I/O: main.c fills it during a step,
 * listen.c serves it between steps.
 */


#ifndef _CS_REPORT_H_INCLUDED_
#define _CS_REPORT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "analysis.h"


#define CS_REPORT_SAMPLES     1024      /* per stage; then every 2nd */
#define CS_REPORT_RECEIPTS    64        /* the last of the stream */
#define CS_REPORT_OPS         32        /* receipt operations counted */
#define CS_REPORT_HEALTHY     3         /* intervals: the loop's pace */


/* notifications: main.c owns the counts, the notifier raises them */
typedef struct {
    uint64_t            sent;
    uint64_t            failed;
} cs_notify_counts_t;


/* one step's reading of the short window, both variants */
typedef struct {
    int64_t             at;                 /* unix ms (Redis' clock) */
    uint64_t            requests[2];
    double              error_pct[2];
    double              p50_ms[2];
    double              p95_ms[2];
    double              p99_ms[2];
} cs_sample_t;


typedef struct {
    const char         *split;
    const char         *id;
    const cs_plan_t    *plan;
    const cs_notify_counts_t  *notify;
    int                 dry_run;

    /* the loop */
    uint64_t            steps;
    int64_t             turned;             /* monotonic ms: the last
                                               step began */
    int64_t             step_at;            /* unix ms: it ended */
    double              step_ms;            /* it took */

    /* what the last step reached */
    int                 redis_ok;
    char                redis_err[384];
    size_t              answered;           /* nginx, at the last reading
                                               of the fleet */
    size_t              asked;
    int                 leader;
    char                holder[128];        /* standby: who leads */

    /* the rollout as the last step read or left it */
    int                 known;
    int64_t             now;                /* Redis' clock then */
    cs_rollout_t        ro;
    char                reason[800];
    int                 judged;             /* j holds a judgement */
    int64_t             judged_at;
    size_t              judged_stage;
    cs_judgement_t      j;

    /* counters */
    uint64_t            fetch_errors;
    uint64_t            redis_errors;
    char                ops[CS_REPORT_OPS][40];
    uint64_t            op_counts[CS_REPORT_OPS];
    size_t              nops;

    /* the current stage's samples: all of them, at most
       CS_REPORT_SAMPLES, every "every"th step once it had more */
    cs_sample_t        *samples;
    size_t              nsamples;
    size_t              sample_stage;
    unsigned            every;
    unsigned            skipped;

    /* the last receipts of the split's stream, oldest first, as read
       at the split's generation */
    char               *receipts[CS_REPORT_RECEIPTS];
    size_t              nreceipts;
    int                 receipts_read;
    uint64_t            receipts_generation;
} cs_report_t;


/* 0, or -1 without memory */
int cs_report_init(cs_report_t *r, const char *split, const char *id,
    const cs_plan_t *plan, int dry_run, const cs_notify_counts_t *notify);
void cs_report_free(cs_report_t *r);

/* a receipt this process wrote: its operation counted */
void cs_report_written(cs_report_t *r, const char *op);

/* the stream's last receipts (list: malloc()ed strings, taken over) */
void cs_report_receipts(cs_report_t *r, char **list, size_t n,
    uint64_t generation);

/* the decision of a step and the state it left */
void cs_report_decision(cs_report_t *r, int64_t now, const cs_rollout_t *ro,
    const cs_decision_t *d);

/* the short window a step read (m: summed over the fleet), at stage */
void cs_report_sample(cs_report_t *r, int64_t now, size_t stage,
    const cs_metrics_t *m);

/* Prometheus text, malloc()ed (NULL without memory) */
char *cs_report_metrics(const cs_report_t *r, size_t *len);

/* the rollout page's JSON, malloc()ed (NULL without memory) */
char *cs_report_json(const cs_report_t *r, size_t *len);

/*
 * /healthz: 1 when the loop turned within CS_REPORT_HEALTHY intervals
 * of mono (monotonic ms); /readyz: 1 when the last step reached Redis
 * and an nginx answered.  Why, one line, in buf either way.
 */
int cs_report_healthy(const cs_report_t *r, int64_t mono, char *buf,
    size_t size);
int cs_report_ready(const cs_report_t *r, char *buf, size_t size);


#endif /* _CS_REPORT_H_INCLUDED_ */
