
/*
 * The sidecar reading one nginx's /canary_status: cs_fetch_parse() on
 * the body (a heap block of exactly its size, no terminating zero), then
 * what the sidecar does with it: the fleet sum (cs_metrics_add()) and
 * the judgement of canary against stable (cs_judge(), default plan), on
 * numbers that come from any nginx, or anything answering as one.
 *
 * Input: byte 0 is the length of the split name, byte 1 the size of the
 * error buffer, then the name, then the body.
 *
 * Checked: a refused body leaves a message (a C string within the
 * buffer); an accepted one is one instance with a window no longer
 * than it says, counts as read; the judgement's numbers are finite or
 * "no data", its p-values within 0..1; no undefined behaviour in the
 * statistics on any counts (UBSan).
 */


#include <math.h>

#include "fuzz_input.h"

#include "analysis.h"
#include "evidence.h"
#include "fetch.h"
#include "plan.h"


static cs_plan_t  fuzz_plan;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    if (cs_plan_default(&fuzz_plan) != 0) {
        abort();
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int              rc;
    char            *split, *err, line[1024];
    size_t           nlen, errlen, i;
    uint8_t         *body;
    cs_metrics_t     m, sum;
    cs_rollout_t     ro;
    cs_evidence_t    ev;
    cs_judgement_t   j;
    cs_decision_t    d;

    if (size < 2) {
        return 0;
    }

    nlen = data[0];
    errlen = 1 + data[1];

    if (nlen > size - 2) {
        nlen = size - 2;
    }

    split = fuzz_strdup(data + 2, nlen);
    body = fuzz_dup(data + 2 + nlen, size - 2 - nlen);
    err = malloc(errlen);

    if (err == NULL) {
        abort();
    }

    memset(err, 0x5a, errlen);

    rc = cs_fetch_parse((const char *) body, size - 2 - nlen, split, &m, err,
                        errlen);

    if (rc != 0) {
        fuzz_assert(rc == -1, "cs_fetch_parse returned %d", rc);
        fuzz_assert(strnlen(err, errlen) < errlen,
                    "the message is not a C string within %zu bytes",
                    errlen);
        goto done;
    }

    fuzz_assert(m.instances == 1 && m.asked == 0, "instances %zu",
                m.instances);

    /* a fleet of two such nginx */
    cs_metrics_init(&sum);
    cs_metrics_add(&sum, &m);
    cs_metrics_add(&sum, &m);

    fuzz_assert(sum.instances == 2 && sum.window_seconds == m.window_seconds
                && sum.generation_min == m.generation_min,
                "the sum of two of the same");

    for (i = 0; i < CS_HIST_BUCKETS; i++) {
        fuzz_assert(sum.v[1].counts[i] == 2 * m.v[1].counts[i],
                    "bucket %zu", i);
    }

    sum.asked = 2;

    /* the stage's first step: these requests are all its evidence; and
     * the hold is over, so its one fixed-horizon look runs too */
    sum.delta[CS_STABLE] = sum.v[CS_STABLE];
    sum.delta[CS_CANARY] = sum.v[CS_CANARY];
    sum.has_delta = 1;

    memset(&ev, 0, sizeof(ev));
    cs_evidence_add(&fuzz_plan, &ev, &sum);
    cs_judge(&fuzz_plan, &ev, &sum, 1, &j);

    for (i = 0; i < CS_CHECKS; i++) {
        if (j.checks[i].status == CS_NO_DATA) {
            continue;
        }

        fuzz_assert(j.checks[i].status == CS_PASS
                    || j.checks[i].status == CS_FAIL,
                    "check %zu status %d", i, j.checks[i].status);
        fuzz_assert(!isnan(j.checks[i].p_value)
                    && j.checks[i].p_value >= 0
                    && j.checks[i].p_value <= 1,
                    "check %s: p-value %g", cs_check_name(i),
                    j.checks[i].p_value);
    }

    /* a running rollout decided on these numbers, and its log line */
    cs_rollout_init(&ro);
    ro.status = CS_STATUS_RUNNING;
    ro.stage = 1;
    ro.weight = fuzz_plan.stages[1].weight;
    ro.stage_started = 1;

    {
        cs_split_view_t  view;

        memset(&view, 0, sizeof(view));
        view.exists = 1;
        view.has_weight = 1;
        view.weight = ro.weight;
        view.enabled = 1;
        view.generation = m.generation_min == UINT64_MAX
                          ? 1 : m.generation_min;

        cs_decide(&fuzz_plan, &view, &ro, &sum, 1000000, &d);
        cs_decision_line(&fuzz_plan, split, &ro, &d, line, sizeof(line));

        fuzz_assert(strnlen(line, sizeof(line)) < sizeof(line),
                    "the decision line is not a C string");
    }

done:

    free(err);
    free(body);
    free(split);

    return 0;
}
