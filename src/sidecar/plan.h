
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


typedef struct {
    char                name[CS_STAGE_NAME_MAX + 1];
    uint32_t            weight;         /* hundredths of a percent */
    int64_t             hold;           /* ms */
    int                 manual;
} cs_stage_t;


typedef struct {
    double              latency_p99_ratio_max;
    double              latency_p99_min_delta_ms;
    double              error_rate_ratio_max;
    double              error_rate_max;         /* percent */
    double              availability_min;       /* percent */
    uint64_t            min_requests;
    double              confidence;             /* of the one-sided tests */
} cs_slo_t;


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

    /* "release": {"stable", "canary"}: in every receipt; "" none */
    char                release_stable[CS_RELEASE_MAX + 1];
    char                release_canary[CS_RELEASE_MAX + 1];
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

/*
 * A duration as nginx writes them: "500ms", "30s", "30m", "1h", "1h30m",
 * "2d", a bare number of seconds; units in decreasing order, each once.
 * 0, or -1 when malformed or over 30 days.
 */
int cs_duration_parse(const char *s, int64_t *ms);

/* "1h30m", "12s", "1.5s", "250ms" into buf; returns buf */
char *cs_duration_format(int64_t ms, char *buf, size_t size);

/* weight in hundredths as the module writes it: "5", "20.5", "0.25" */
char *cs_weight_format(uint32_t weight, char *buf, size_t size);

/* the module's weight syntax: 0..100, at most two decimals; -1 if bad */
int64_t cs_weight_parse(const char *s, size_t len);


#endif /* _CS_PLAN_H_INCLUDED_ */
