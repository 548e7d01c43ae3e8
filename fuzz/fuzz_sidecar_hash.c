
/*
 * The sidecar reading Redis: the split's hash (cs_view_from_hash()) and
 * its own state (cs_rollout_from_hash()), as HGETALL returns them, then
 * the decision made on them (cs_decide(), default plan) and its log
 * line.  Anything may sit in those keys: an operator's typo, another
 * tool, an older sidecar.
 *
 * Input: Redis protocol (RESP) bytes, read by hiredis' own reader as
 * the sidecar's connection reads them (limited as the sidecar limits
 * it, cs_redis_reader_limit(): "*800000000" must not allocate 6.4 GB):
 * the first reply is the split's hash, the second the sidecar's state;
 * a reply that is not an array, or that the reader refuses, is taken as
 * an empty hash.
 *
 * Checked: the view keeps its promises (weight 0..10000 or none,
 * enabled -1/0/1, texts are C strings within their arrays); a state is
 * accepted only with a known status ("new": nothing but why it holds,
 * a C string) and a stage of the plan, seen >= generation, times 0 up to
 * a day ahead of now; a refused
 * state leaves a message; the decision and its line on any of it, at
 * that now and at the extremes of time, are free of undefined behaviour
 * (UBSan: times of any value, stages and weights out of range).
 */


#include <hiredis/hiredis.h>

#include "fuzz_input.h"

#include "analysis.h"
#include "fetch.h"
#include "plan.h"
#include "redis.h"


/* Redis' clock when the state is read */
#define FUZZ_NOW  1800000000000LL


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
    int                 rc;
    char                err[256], warn[256], line[1024];
    void               *reply[2];
    size_t              i, k;
    int64_t             now;
    redisReply          empty, *hash[2];
    redisReader        *rr;
    cs_metrics_t        m;
    cs_rollout_t        ro;
    cs_decision_t       d;
    cs_split_view_t     view;
    cs_redis_reader_t   lim;

    static const int64_t  nows[] = {
        FUZZ_NOW, INT64_MIN, -1, 0, INT64_MAX
    };

    rr = redisReaderCreate();
    if (rr == NULL) {
        abort();
    }

    cs_redis_reader_limit(rr, &lim);

    memset(&empty, 0, sizeof(empty));
    empty.type = REDIS_REPLY_ARRAY;

    reply[0] = NULL;
    reply[1] = NULL;

    if (redisReaderFeed(rr, (const char *) data, size) == REDIS_OK) {
        for (i = 0; i < 2; i++) {
            if (redisReaderGetReply(rr, &reply[i]) != REDIS_OK) {
                reply[i] = NULL;
                break;
            }
        }
    }

    for (i = 0; i < 2; i++) {
        hash[i] = reply[i] != NULL
                  && ((redisReply *) reply[i])->type == REDIS_REPLY_ARRAY
                  ? reply[i] : &empty;
    }

    cs_view_from_hash(&view, hash[0]);

    fuzz_assert(!view.has_weight || view.weight <= CS_WEIGHT_MAX,
                "weight %u", view.weight);
    fuzz_assert(view.enabled >= -1 && view.enabled <= 1, "enabled %d",
                view.enabled);
    fuzz_assert(strnlen(view.state, sizeof(view.state)) < sizeof(view.state)
                && strnlen(view.updated_by, sizeof(view.updated_by))
                   < sizeof(view.updated_by), "texts");

    memset(err, 0x5a, sizeof(err));

    rc = cs_rollout_from_hash(&ro, &fuzz_plan, hash[1], FUZZ_NOW, err,
                              sizeof(err), warn, sizeof(warn));

    if (rc != 0) {
        fuzz_assert(rc == -1 && strnlen(err, sizeof(err)) < sizeof(err),
                    "a refused state: %d", rc);
        cs_rollout_init(&ro);

    } else if (hash[1]->elements && ro.status == CS_STATUS_NEW) {
        fuzz_assert(ro.stage == 0 && ro.generation == 0 && ro.seen == 0
                    && strnlen(ro.held, sizeof(ro.held)) < sizeof(ro.held),
                    "a state not started: stage %zu", ro.stage);

    } else if (hash[1]->elements) {
        fuzz_assert(ro.status > CS_STATUS_NEW
                    && ro.status <= CS_STATUS_ROLLED_BACK
                    && ro.stage < fuzz_plan.nstages
                    && ro.seen >= ro.generation,
                    "an accepted state: status %d stage %zu",
                    (int) ro.status, ro.stage);

        fuzz_assert(ro.stage_started >= 0
                    && ro.stage_started <= FUZZ_NOW + CS_REDIS_AHEAD_MAX
                    && ro.violation_since >= 0
                    && ro.violation_since <= FUZZ_NOW + CS_REDIS_AHEAD_MAX,
                    "an accepted state: stage_started %lld, "
                    "violation_since %lld", (long long) ro.stage_started,
                    (long long) ro.violation_since);
    }

    /* the decision without metrics, and with a quiet fleet */

    cs_metrics_init(&m);
    m.instances = 1;
    m.asked = 1;
    m.window_seconds = 30;
    m.generation_min = view.generation;
    m.v[0].requests = 1000;
    m.v[1].requests = 1000;
    m.v[0].counts[100] = 1000;
    m.v[1].counts[100] = 1000;

    /* the same requests new to the stage: evidence read from the state
     * (any text) goes on through the tests */
    m.delta[0] = m.v[0];
    m.delta[1] = m.v[1];
    m.has_delta = 1;

    /* at Redis' clock, and at any clock (a decision subtracts times) */
    for (k = 0; k < sizeof(nows) / sizeof(nows[0]); k++) {
        now = nows[k];

        (void) cs_window_seconds(&fuzz_plan, &ro, now);

        cs_decide(&fuzz_plan, &view, &ro, NULL, now, &d);
        cs_decision_line(&fuzz_plan, "api", &ro, &d, line, sizeof(line));

        cs_decide(&fuzz_plan, &view, &ro, &m, now, &d);
        cs_decision_line(&fuzz_plan, "api", &ro, &d, line, sizeof(line));

        fuzz_assert(strnlen(line, sizeof(line)) < sizeof(line), "the line");
    }

    for (i = 0; i < 2; i++) {
        if (reply[i]) {
            freeReplyObject(reply[i]);
        }
    }

    redisReaderFree(rr);

    return 0;
}
