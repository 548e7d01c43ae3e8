
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
} cs_receipt_ctx_t;


/*
 * The receipt of operation d->ops[op] as compact JSON (malloc()ed; NULL
 * without memory); its receipt_id, a fresh UUID, is copied to id.
 */
char *cs_receipt_json(const cs_plan_t *plan, const cs_decision_t *d,
    size_t op, const cs_receipt_ctx_t *ctx, char id[CS_UUID_LEN + 1]);

/* a random (version 4) UUID */
void cs_uuid(char out[CS_UUID_LEN + 1]);

/* "2026-11-22T02:10:11Z" */
char *cs_iso8601(int64_t ms, char *buf, size_t size);

/* appends each receipt as a line, with one write(2) each */
int cs_receipts_append(const char *path, char *const *receipts, size_t n,
    char *err, size_t errlen);


#endif /* _CS_RECEIPTS_H_INCLUDED_ */
