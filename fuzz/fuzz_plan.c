
/*
 * The sidecar's plan file: cs_plan_parse() on the input as the file's
 * text (a heap block of exactly its size, no terminating zero), with an
 * error buffer whose size the first byte picks.  The durations of the
 * plan go through cs_duration_parse() too, on the input as a C string.
 *
 * Checked: a refused plan has a message (a C string within the buffer,
 * naming the source) and holds no memory; an accepted plan keeps every
 * promise of plan.h: 1 to 32 stages with names of 1 to 48 of
 * [A-Za-z0-9_.-], distinct, weights that increase and are 0..10000,
 * holds of 0 to 30 days, no manual first stage; at most 1000 pins of 1
 * to 256 bytes; the SLO, interval, violation_for and window in range.
 * Leaks are found by LeakSanitizer (cs_plan_free()).
 */


#include "fuzz_input.h"

#include "plan.h"


#define DAY_MS  (86400LL * 1000)


static int
name_ok(const char *s)
{
    size_t  i, len;

    len = strnlen(s, CS_STAGE_NAME_MAX + 1);

    if (len == 0 || len > CS_STAGE_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'
              || s[i] == '.'))
        {
            return 0;
        }
    }

    return 1;
}


static void
check_plan(const cs_plan_t *plan)
{
    size_t             i, j, len;
    const cs_slo_t    *s;

    fuzz_assert(plan->nstages >= 1 && plan->nstages <= CS_STAGES_MAX,
                "%zu stages", plan->nstages);
    fuzz_assert(!plan->stages[0].manual, "a manual first stage");

    for (i = 0; i < plan->nstages; i++) {
        fuzz_assert(name_ok(plan->stages[i].name), "stage %zu name", i);
        fuzz_assert(plan->stages[i].weight <= CS_WEIGHT_MAX,
                    "stage %zu weight %u", i, plan->stages[i].weight);
        fuzz_assert(plan->stages[i].hold >= 0
                    && plan->stages[i].hold <= 30 * DAY_MS,
                    "stage %zu hold %lld", i,
                    (long long) plan->stages[i].hold);

        for (j = 0; j < i; j++) {
            fuzz_assert(strcmp(plan->stages[i].name, plan->stages[j].name)
                        != 0, "stages %zu and %zu share a name", j, i);
            fuzz_assert(plan->stages[j].weight < plan->stages[i].weight,
                        "stage %zu weight does not increase", i);
        }
    }

    fuzz_assert(plan->npins <= CS_PINS_MAX, "%zu pins", plan->npins);

    for (i = 0; i < plan->npins; i++) {
        len = strlen(plan->pins[i]);
        fuzz_assert(len >= 1 && len <= CS_PIN_MAX, "pin %zu of %zu bytes",
                    i, len);
    }

    s = &plan->slo;

    fuzz_assert(s->latency_p99_ratio_max > 0
                && s->latency_p99_ratio_max <= 1000, "latency ratio");
    fuzz_assert(s->latency_p99_min_delta_ms >= 0
                && s->latency_p99_min_delta_ms <= 3600000, "latency delta");
    fuzz_assert(s->error_rate_ratio_max > 0
                && s->error_rate_ratio_max <= 1000, "error ratio");
    fuzz_assert(s->error_rate_max > 0 && s->error_rate_max <= 100,
                "error_rate_max");
    fuzz_assert(s->availability_min >= 0 && s->availability_min <= 100,
                "availability_min");
    fuzz_assert(s->min_requests >= 1 && s->min_requests <= 1000000000000ULL,
                "min_requests %llu", (unsigned long long) s->min_requests);
    fuzz_assert(s->confidence > 0.5 && s->confidence <= 0.999999,
                "confidence %g", s->confidence);

    fuzz_assert(plan->interval >= 100 && plan->interval <= 3600 * 1000,
                "interval %lld", (long long) plan->interval);
    fuzz_assert(plan->violation_for >= 0 && plan->violation_for <= DAY_MS,
                "violation_for %lld", (long long) plan->violation_for);
    fuzz_assert(plan->window >= 1000 && plan->window <= CS_WINDOW_MAX
                && plan->window % 1000 == 0, "window %lld",
                (long long) plan->window);
    fuzz_assert(plan->on_violation == CS_ON_VIOLATION_ROLLBACK
                || plan->on_violation == CS_ON_VIOLATION_PAUSE,
                "on_violation %d", plan->on_violation);
}


static void
check_duration(const uint8_t *data, size_t size)
{
    char     *s, *buf;
    size_t    bsz;
    int64_t   ms;

    s = fuzz_strdup(data, size);

    if (cs_duration_parse(s, &ms) == 0) {
        fuzz_assert(ms >= 0 && ms <= 30 * DAY_MS, "duration \"%s\" is %lld",
                    s, (long long) ms);

        /* the text of a duration in a buffer of any size: within it */
        for (bsz = 1; bsz <= 24; bsz++) {
            buf = malloc(bsz);
            if (buf == NULL) {
                abort();
            }

            cs_duration_format(ms, buf, bsz);
            fuzz_assert(strnlen(buf, bsz) < bsz, "not terminated");
            free(buf);
        }
    }

    free(s);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int         rc;
    char       *err;
    size_t      errlen;
    uint8_t    *text;
    cs_plan_t  *plan;

    if (size < 1) {
        return 0;
    }

    errlen = 1 + data[0] * 2;

    text = fuzz_dup(data + 1, size - 1);
    err = malloc(errlen);
    plan = malloc(sizeof(cs_plan_t));

    if (err == NULL || plan == NULL) {
        abort();
    }

    memset(err, 0x5a, errlen);

    rc = cs_plan_parse(plan, (const char *) text, size - 1, "fuzz", err,
                       errlen);

    if (rc == 0) {
        check_plan(plan);
        cs_plan_free(plan);

    } else {
        fuzz_assert(rc == -1, "cs_plan_parse returned %d", rc);
        fuzz_assert(strnlen(err, errlen) < errlen,
                    "the message is not a C string within %zu bytes",
                    errlen);
        fuzz_assert(errlen < 8 || strncmp(err, "fuzz: ", 6) == 0,
                    "the message does not name the source: %s", err);
        fuzz_assert(plan->pins == NULL && plan->npins == 0,
                    "a refused plan holds pins");
    }

    check_duration(data + 1, size - 1);

    free(plan);
    free(err);
    free(text);

    return 0;
}
