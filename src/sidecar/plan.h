
/*
 * The rollout plan: stages, SLOs and timings, from a JSON file or the
 * default (the governor runbook's).  Validation names the field and the
 * place of every problem.  Pure: no Redis, no HTTP.
 */


#ifndef _CS_PLAN_H_INCLUDED_
#define _CS_PLAN_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "ngx_http_canary_limits.h"


#define CS_STAGES_MAX         32
#define CS_STAGE_NAME_MAX     48
#define CS_PINS_MAX           1000

/* the plan's release names: printable ASCII, 1 to this many bytes */
#define CS_RELEASE_MAX        64

/* the module's: a pin key, a weight in hundredths of a percent, the
 * window it keeps (ms) */
#define CS_PIN_MAX            NGX_HTTP_CANARY_PIN_KEY_MAX
#define CS_WEIGHT_MAX         NGX_HTTP_CANARY_WEIGHT_MAX
#define CS_WINDOW_MAX         (NGX_HTTP_CANARY_WINDOW_MAX * 1000)

/* a canary error rate over this many times error_rate_max rolls back at
 * once, without waiting violation_for */
#define CS_CRITICAL_FACTOR    3


typedef enum {
    CS_ON_VIOLATION_ROLLBACK = 0,
    CS_ON_VIOLATION_PAUSE
} cs_on_violation_e;


/*
 * A stage's cohort weights (the module's weight.NAME fields): the full
 * map from that stage on.  A stage without "cohorts" keeps the map of
 * the stage before (set 0); a later map names every cohort of the one
 * before, none lower.  A cohort's name: 1 to NAME_LEN - 1 bytes, printable
 * ASCII without spaces.
 */
#define CS_COHORTS_MAX        NGX_HTTP_CANARY_COHORTS_MAX
#define CS_COHORT_NAME_MAX    (NGX_HTTP_CANARY_NAME_LEN - 1)

typedef struct {
    char                name[CS_COHORT_NAME_MAX + 1];
    uint32_t            weight;         /* hundredths of a percent */
} cs_cohort_t;


typedef struct {
    cs_cohort_t         cohort[CS_COHORTS_MAX];
    size_t              n;
    int                 set;            /* the stage has "cohorts" */
} cs_cohorts_t;


typedef struct {
    double              latency_p99_ratio_max;
    double              latency_p99_min_delta_ms;
    double              error_rate_ratio_max;
    double              error_rate_max;         /* percent */
    double              availability_min;       /* percent */
    uint64_t            min_requests;
    double              confidence;             /* of the one-sided tests */
    /* absolute limits and p95's ratio; 0: off */
    double              latency_p50_max_ms;
    double              latency_p95_max_ms;
    double              latency_p99_max_ms;
    double              latency_p95_ratio_max;
    /* a shadow stage's: the match rate over the stage (percent; 0: not
       judged) and the comparisons it needs (0: min_requests) */
    double              shadow_match_min;
    uint64_t            shadow_min_compared;
} cs_slo_t;


/* notify: where receipts are POSTed (notify.c delivers them) */

#define CS_NOTIFY_TARGETS_MAX 8
#define CS_NOTIFY_URL_MAX     2048
#define CS_NOTIFY_SECRET_MAX  4096

typedef enum {
    CS_NOTIFY_JSON = 0,
    CS_NOTIFY_SLACK
} cs_notify_format_e;


typedef struct {
    char               *url;
    cs_notify_format_e  format;
    char              **events;         /* operations; NULL: all */
    size_t              nevents;
    unsigned char      *secret;         /* secret_file's content, or NULL */
    size_t              secret_len;
} cs_notify_target_t;


typedef struct {
    char                name[CS_STAGE_NAME_MAX + 1];
    uint32_t            weight;         /* hundredths of a percent */
    int64_t             hold;           /* ms */
    int                 manual;
    uint32_t            shadow;         /* hundredths of a percent of
                                           stable's requests mirrored */
} cs_stage_t;


/*
 * Trigger tiers: what a failing check does.  The checks a trigger names
 * (the keys of "triggers"); latency_p95 and latency_p50 are both the
 * relative and the absolute checks of that quantile, latency_p99 too.
 */
enum {
    CS_TRIGGER_ERROR_RATE = 0,
    CS_TRIGGER_AVAILABILITY,
    CS_TRIGGER_LATENCY_P99,
    CS_TRIGGER_LATENCY_P95,
    CS_TRIGGER_LATENCY_P50,
    CS_TRIGGERS
};

typedef struct {
    int                 set;            /* 0: violation_for, on_violation */
    int                 instant;        /* 0: grace */
    int64_t             wait;           /* ms, grace's "for" */
    cs_on_violation_e   then;
} cs_trigger_t;


#define CS_ROLLBACK_STEPS_MAX  16
#define CS_DURATION_TEXT       32


/* the plan's durations as it wrote them ("90s", not 1m30s); "": unset */
typedef struct {
    char                interval[CS_DURATION_TEXT];
    char                violation_for[CS_DURATION_TEXT];
    char                window[CS_DURATION_TEXT];
    char                lag[CS_DURATION_TEXT];
    char                lag_hold[CS_DURATION_TEXT];
    char                rollback_step_hold[CS_DURATION_TEXT];
    char                hold[CS_STAGES_MAX][CS_DURATION_TEXT];
    char                trigger_wait[CS_TRIGGERS][CS_DURATION_TEXT];
} cs_plan_said_t;


typedef struct {
    cs_stage_t          stages[CS_STAGES_MAX];
    size_t              nstages;
    char              **pins;
    size_t              npins;
    cs_slo_t            slo;
    int64_t             interval;               /* ms */
    int64_t             violation_for;          /* ms */
    int64_t             window;                 /* ms, whole seconds */
    int64_t             lag;                    /* ms: a node behind the
                                                   split's generation so
                                                   long lags */
    int64_t             lag_hold;               /* ms: so long, it holds
                                                   promotion */
    cs_on_violation_e   on_violation;
    /* per check (CS_TRIGGER_*); by default grace,
       violation_for, on_violation */
    cs_trigger_t        triggers[CS_TRIGGERS];
    /* a stage's "slo" merged over slo (stage_has_slo[i]), else slo */
    cs_slo_t            stage_slo[CS_STAGES_MAX];
    int                 stage_has_slo[CS_STAGES_MAX];
    /* gradual rollback: weights walked down to 0; nsteps 0: at once */
    uint32_t            rollback_steps[CS_ROLLBACK_STEPS_MAX];
    size_t              rollback_nsteps;
    int64_t             rollback_step_hold;     /* ms */

    /* cohorts[i]: the cohort weights of stages[i] */
    cs_cohorts_t        cohorts[CS_STAGES_MAX];
    cs_notify_target_t *notify;
    size_t              nnotify;

    /* "release": {"stable", "canary"}: in every receipt; "" none */
    char                release_stable[CS_RELEASE_MAX + 1];
    char                release_canary[CS_RELEASE_MAX + 1];

    cs_plan_said_t      said;                   /* durations as written */

    /* a stage says "shadow": every stage's write sets the split's
       field shadow (0 where a stage does not say it), a rollback too */
    int                 shadow;
} cs_plan_t;


/* the default plan; 0, or -1 without memory */
int cs_plan_default(cs_plan_t *plan);

/*
 * A plan from JSON text or a file: 0, or -1 with the problem in err
 * ("stages[2].weight: 150 is not a percent 0..100").  "source" names
 * the text in messages.  Unset fields take the default plan's values.
 */
int cs_plan_parse(cs_plan_t *plan, const char *text, size_t len,
    const char *source, char *err, size_t errlen);
int cs_plan_load(cs_plan_t *plan, const char *path, char *err,
    size_t errlen);

void cs_plan_free(cs_plan_t *plan);

/* the SLO a stage is judged by: the plan's, merged with the stage's */
const cs_slo_t *cs_plan_stage_slo(const cs_plan_t *plan, size_t stage);

/* a trigger's key in "triggers": "error_rate", ... */
const char *cs_trigger_name(size_t trigger);
/* the receipt operations a plan's notify events may name: those
 * canary-sidecar writes; NULL-terminated */
extern const char  *cs_plan_notify_events[];

/*
 * A duration as nginx writes them: "500ms", "30s", "30m", "1h", "1h30m",
 * "2d", a bare number of seconds; units in decreasing order, each once.
 * 0, or -1 when malformed or over 30 days.
 */
int cs_duration_parse(const char *s, int64_t *ms);

/*
 * src into dst (size bytes, at least 1) as one line of a log: a control
 * byte (a newline, ESC) as "\n", "\x1b", so that a value from a plan or
 * from Redis cannot break the line or forge another; so too each byte of
 * a C1 or bidi control in UTF-8 and each byte that is no UTF-8 ("\xc2\x9b",
 * "\xff"); cut where dst is full, never inside a character.  Returns the
 * length written.
 */
size_t cs_escape(char *dst, size_t size, const char *src);

/* "1h30m", "12s", "1.5s", "250ms" into buf; returns buf */
char *cs_duration_format(int64_t ms, char *buf, size_t size);

/*
 * A plan's duration for the log: as the plan wrote it (said), else
 * cs_duration_format(ms); returns said or buf
 */
const char *cs_duration_said(const char *said, int64_t ms, char *buf,
    size_t size);

/* weight in hundredths as the module writes it: "5", "20.5", "0.25" */
char *cs_weight_format(uint32_t weight, char *buf, size_t size);

/* the module's weight syntax: 0..100, at most two decimals; -1 if bad */
int64_t cs_weight_parse(const char *s, size_t len);

/*
 * Whether stages[i]'s cohorts add a cohort to, or raise one of, those of
 * stages[i - 1] (i > 0): then it may keep that stage's weight.
 */
int cs_plan_cohorts_grow(const cs_plan_t *plan, size_t i);

/* whether a cohort of stages[i] has a weight above 0 */
int cs_plan_cohorts_route(const cs_plan_t *plan, size_t i);


#endif /* _CS_PLAN_H_INCLUDED_ */
