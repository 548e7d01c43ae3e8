
/*
 * Receipts: one JSON object per decision the sidecar writes, in the
 * governor runbook's shape; to the split's stream (redis.c) and, with
 * --receipts FILE, appended to a file one line each.
 */


#ifndef _CS_RECEIPTS_H_INCLUDED_
#define _CS_RECEIPTS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "analysis.h"


#define CS_UUID_LEN  36


typedef struct {
    const char         *split;
    const char         *by;             /* the sidecar's id */
    int64_t             now;            /* unix ms */
    double              decision_ms;
    uint64_t            generation;     /* the one the write makes */
    const cs_rollout_t *before;         /* the rollout it decided on;
                                           NULL: unknown */
    const char         *evidence_key;   /* its evidence snapshot; NULL:
                                           none */
    const char         *receipt_id;     /* NULL: a fresh UUID */
} cs_receipt_ctx_t;


/*
 * The receipt of operation d->ops[op] as compact JSON (malloc()ed; NULL
 * without memory); its receipt_id, a fresh UUID, is copied to id.
 */
char *cs_receipt_json(const cs_plan_t *plan, const cs_decision_t *d,
    size_t op, const cs_receipt_ctx_t *ctx, char id[CS_UUID_LEN + 1]);

/* the plan's release as JSON {"stable":..,"canary":..}, malloc()ed;
 * NULL without one or without memory */
char *cs_release_json(const cs_plan_t *plan);

/*
 * The stage the decision leaves (a promotion, the completion, a
 * rollback), appended to d->next.stages_log for the final receipt's
 * summary: its name, weight, start, duration and figures.
 */
void cs_stages_log_add(const cs_plan_t *plan, const cs_rollout_t *ro,
    cs_decision_t *d, int64_t now);

/* the receipt's "sli_checks" object (a jansson json_t, new reference),
 * for the evidence snapshot */
struct json_t *cs_receipt_checks_json(const cs_decision_t *d);

/* a shadow stage's evidence over the fleet, as receipts' evidence.shadow
 * has it; NULL when the stage's SLO does not judge it */
struct json_t *cs_receipt_shadow_json(const cs_decision_t *d);

/* a random (version 4) UUID */
void cs_uuid(char out[CS_UUID_LEN + 1]);

/* "2026-11-22T02:10:11Z" */
char *cs_iso8601(int64_t ms, char *buf, size_t size);

/* appends each receipt as a line, with one write(2) each */
int cs_receipts_append(const char *path, char *const *receipts, size_t n,
    char *err, size_t errlen);


#endif /* _CS_RECEIPTS_H_INCLUDED_ */
