
/*
 * The fleet in Redis: a node's record into metrics, and every way a
 * record can be wrong (refused with a reason, never a crash); the short
 * window the sidecar keeps of its own steps; split verification's
 * timing (lag.c).
 */


#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "fleet.h"
#include "lag.h"
#include "plan.h"


#define S         1000LL
#define T0        (1700000000LL * 1000)


static const char  *good_record =
    "{\"v\":1,\"node\":\"web-1\",\"instance\":\"1765100000.4242\","
    "\"pid\":4243,\"split\":\"api\",\"generation\":7,\"weight\":30,"
    "\"enabled\":true,\"guard_tripped\":false,\"created\":1765100000,"
    "\"interval_ms\":1000,\"hist\":\"us64x16x20\","
    "\"stable\":{\"requests\":2517,\"responses\":[0,2500,0,7,10],"
    "\"upstream_errors\":3,\"latency\":\"3:10,17:2500,40:7\","
    "\"window_s\":5,\"window_requests\":400},"
    "\"canary\":{\"requests\":100,\"responses\":[0,99,0,0,1],"
    "\"upstream_errors\":0,\"latency\":\"\",\"window_s\":5,"
    "\"window_requests\":20}}";


/* the good record with "from" replaced by "to" */

static char *
cs_record(const char *from, const char *to)
{
    static char  buf[65536];
    const char  *p;

    p = strstr(good_record, from);
    ck_assert_msg(p != NULL, "%s", from);

    snprintf(buf, sizeof(buf), "%.*s%s%s", (int) (p - good_record),
             good_record, to, p + strlen(from));

    return buf;
}


static cs_record_e
cs_parse(const char *name, const char *rec, cs_metrics_t *m, char *err)
{
    return cs_fleet_parse(name, strlen(name), rec, strlen(rec), "api", m,
                          err, 256);
}


START_TEST(test_record_read)
{
    char          err[256];
    cs_metrics_t  m;

    ck_assert_int_eq(cs_parse("web-1", good_record, &m, err), CS_RECORD_OK);

    ck_assert_uint_eq(m.total[CS_STABLE].requests, 2517);
    ck_assert_uint_eq(m.total[CS_STABLE].errors_5xx, 10);
    ck_assert_uint_eq(m.total[CS_STABLE].upstream_errors, 3);
    ck_assert_uint_eq(m.total[CS_STABLE].counts[3], 10);
    ck_assert_uint_eq(m.total[CS_STABLE].counts[17], 2500);
    ck_assert_uint_eq(m.total[CS_STABLE].counts[40], 7);
    ck_assert_uint_eq(m.total[CS_STABLE].counts[4], 0);
    ck_assert_uint_eq(m.total[CS_CANARY].requests, 100);
    ck_assert_uint_eq(m.total[CS_CANARY].errors_5xx, 1);
    ck_assert_int_eq(m.created, 1765100000);
    ck_assert_uint_eq(m.generation_min, 7);
    ck_assert_uint_eq(m.instances, 1);
    ck_assert_uint_eq(m.guard_tripped, 0);
    ck_assert_uint_eq(m.disabled, 0);

    /* the window is the sidecar's, not the record's */
    ck_assert_uint_eq(m.v[CS_STABLE].requests, 0);

    ck_assert_int_eq(cs_parse("web-1", cs_record("\"enabled\":true",
                                                 "\"enabled\":false"),
                              &m, err), CS_RECORD_OK);
    ck_assert_uint_eq(m.disabled, 1);

    ck_assert_int_eq(cs_parse("web-1",
                              cs_record("\"guard_tripped\":false",
                                        "\"guard_tripped\":true"),
                              &m, err), CS_RECORD_OK);
    ck_assert_uint_eq(m.guard_tripped, 1);

    /* the last bucket, and a count at the limit */
    ck_assert_int_eq(cs_parse("web-1", cs_record("40:7",
                                                 "321:281474976710656"),
                              &m, err), CS_RECORD_OK);
    ck_assert_uint_eq(m.total[CS_STABLE].counts[321], 1ULL << 48);
}
END_TEST


START_TEST(test_record_refused)
{
    char          err[256], big[20000];
    size_t        i;
    cs_metrics_t  m;

    static const struct {
        const char   *from;
        const char   *to;
        cs_record_e   rc;
    } cases[] = {
        { "{\"v\":1", "[\"v\",1", CS_RECORD_JSON },
        { "\"v\":1", "\"v\":2", CS_RECORD_VERSION },
        { "\"v\":1,", "", CS_RECORD_VERSION },
        { "\"node\":\"web-1\"", "\"node\":\"web-2\"", CS_RECORD_OTHER },
        { "\"split\":\"api\"", "\"split\":\"web\"", CS_RECORD_OTHER },
        { "\"node\":\"web-1\"", "\"node\":\"web-1\\u0000\"",
          CS_RECORD_JSON },
        { "us64x16x20", "us32x16x20", CS_RECORD_HIST },
        { "\"generation\":7", "\"generation\":-1", CS_RECORD_FIELD },
        { "\"created\":1765100000", "\"created\":\"x\"", CS_RECORD_FIELD },
        { "\"instance\":\"1765100000.4242\"", "\"instance\":4242",
          CS_RECORD_FIELD },
        { "\"enabled\":true", "\"enabled\":1", CS_RECORD_FIELD },
        { "[0,2500,0,7,10]", "[0,2500,0,7]", CS_RECORD_FIELD },
        { "\"requests\":2517", "\"requests\":2517.5", CS_RECORD_FIELD },
        { "\"requests\":2517", "\"requests\":281474976710657",
          CS_RECORD_COUNT },
        { "\"requests\":2517", "\"requests\":99999999999999999999999",
          CS_RECORD_JSON },
        { "3:10,17:2500,40:7", "3:10,17:2500,322:7", CS_RECORD_LATENCY },
        { "3:10,17:2500,40:7", "3:10,99999999999999999999:1",
          CS_RECORD_LATENCY },
        { "3:10,17:2500,40:7", "17:2500,3:10", CS_RECORD_LATENCY },
        { "3:10,17:2500,40:7", "3:10,3:10", CS_RECORD_LATENCY },
        { "3:10,17:2500,40:7", "3:10,", CS_RECORD_LATENCY },
        { "3:10,17:2500,40:7", "3:", CS_RECORD_LATENCY },
        { "3:10,17:2500,40:7", "3:-1", CS_RECORD_LATENCY },
        { "3:10,17:2500,40:7", "a:1", CS_RECORD_LATENCY },
        { "3:10,17:2500,40:7", "3:99999999999999999999999",
          CS_RECORD_COUNT },
        { "\"latency\":\"\"", "\"latency\":[]", CS_RECORD_FIELD },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        m.instances = 7;

        ck_assert_msg(cs_parse("web-1", cs_record(cases[i].from,
                                                  cases[i].to), &m, err)
                      == cases[i].rc, "case %zu (%s): %s", i, cases[i].to,
                      err);
        ck_assert_msg(err[0] != '\0', "case %zu says why", i);
        ck_assert_uint_eq(m.instances, 0);
    }

    /* names */
    ck_assert_int_eq(cs_parse("", good_record, &m, err), CS_RECORD_NAME);
    ck_assert_int_eq(cs_parse("web 1", good_record, &m, err),
                     CS_RECORD_NAME);
    ck_assert_int_eq(cs_parse("web;1", good_record, &m, err),
                     CS_RECORD_NAME);
    memset(big, 'a', 64);
    big[64] = '\0';
    ck_assert_int_eq(cs_parse(big, good_record, &m, err), CS_RECORD_NAME);
    big[63] = '\0';
    ck_assert_int_eq(cs_parse(big, good_record, &m, err), CS_RECORD_OTHER);

    /* a record over 16384 bytes, whatever it holds */
    snprintf(big, sizeof(big), "%s%16384s", good_record, " ");
    ck_assert_int_eq(cs_parse("web-1", big, &m, err), CS_RECORD_TOO_LARGE);
    ck_assert_msg(strstr(err, "over 16384") != NULL, "%s", err);

    ck_assert_int_eq(cs_parse("web-1", "", &m, err), CS_RECORD_JSON);
    ck_assert_int_eq(cs_parse("web-1", "7", &m, err), CS_RECORD_JSON);
}
END_TEST


START_TEST(test_bad_logged_once)
{
    cs_fleet_logged_t  l;

    memset(&l, 0, sizeof(l));

    ck_assert_int_eq(cs_fleet_once(&l, "web-1", CS_RECORD_JSON), 1);
    ck_assert_int_eq(cs_fleet_once(&l, "web-1", CS_RECORD_JSON), 0);
    ck_assert_int_eq(cs_fleet_once(&l, "web-1", CS_RECORD_HIST), 1);
    ck_assert_int_eq(cs_fleet_once(&l, "web-2", CS_RECORD_JSON), 1);
    ck_assert_int_eq(cs_fleet_once(&l, "web-2", CS_RECORD_JSON), 0);

    cs_fleet_logged_free(&l);
}
END_TEST


static void
cs_delta(cs_window_t *d, uint64_t stable, uint64_t canary,
    uint64_t canary_5xx)
{
    memset(d, 0, 2 * sizeof(cs_window_t));

    d[CS_STABLE].requests = stable;
    d[CS_CANARY].requests = canary;
    d[CS_CANARY].errors_5xx = canary_5xx;
}


/* steps of 1s: the window sums the last ones, short after a start */

START_TEST(test_window_of_steps)
{
    int64_t             t;
    cs_window_t         d[2];
    cs_metrics_t        m;
    cs_fleet_window_t  *w;

    w = calloc(1, sizeof(cs_fleet_window_t));
    ck_assert_ptr_nonnull(w);

    /* the first reading: nothing new, nothing in the window */
    cs_fleet_window_add(w, T0, NULL);
    cs_fleet_window_sum(w, T0, 5, &m);
    ck_assert_uint_eq(m.v[CS_STABLE].requests, 0);
    ck_assert_uint_eq(m.window_seconds, 0);

    for (t = 1; t <= 3; t++) {
        cs_delta(d, 100, 10, t);
        cs_fleet_window_add(w, T0 + t * S, d);
    }

    cs_fleet_window_sum(w, T0 + 3 * S, 5, &m);
    ck_assert_uint_eq(m.v[CS_STABLE].requests, 300);
    ck_assert_uint_eq(m.v[CS_CANARY].requests, 30);
    ck_assert_uint_eq(m.v[CS_CANARY].errors_5xx, 6);
    ck_assert_uint_eq(m.window_seconds, 3);

    for (t = 4; t <= 10; t++) {
        cs_delta(d, 100, 10, 0);
        cs_fleet_window_add(w, T0 + t * S, d);
    }

    /* 6..10: five steps */
    cs_fleet_window_sum(w, T0 + 10 * S, 5, &m);
    ck_assert_uint_eq(m.v[CS_STABLE].requests, 500);
    ck_assert_uint_eq(m.v[CS_CANARY].errors_5xx, 0);
    ck_assert_uint_eq(m.window_seconds, 5);

    /* a step without readings leaves a gap the next one covers */
    cs_delta(d, 300, 30, 0);
    cs_fleet_window_add(w, T0 + 13 * S, d);
    cs_fleet_window_sum(w, T0 + 13 * S, 5, &m);
    ck_assert_uint_eq(m.v[CS_STABLE].requests, 300 + 200);
    ck_assert_uint_eq(m.window_seconds, 5);

    /* the ring wraps */
    for (t = 14; t < 14 + 3 * CS_FLEET_STEPS; t++) {
        cs_delta(d, 1, 1, 0);
        cs_fleet_window_add(w, T0 + t * S, d);
    }

    cs_fleet_window_sum(w, T0 + (t - 1) * S, 60, &m);
    ck_assert_uint_eq(m.v[CS_STABLE].requests, 60);

    free(w);
}
END_TEST


START_TEST(test_lag_since_the_generation_it_missed)
{
    int                 answered[3] = { 1, 1, 0 };
    char                lagging[128], held[128];
    char               *names[3] = { "web-1", "web-2", "web-3" };
    size_t              holding;
    cs_lag_t            lag;
    cs_plan_t           plan;
    cs_metrics_t        r[3];

    ck_assert_int_eq(cs_plan_default(&plan), 0);
    ck_assert_int_eq(plan.lag, 5 * S);
    ck_assert_int_eq(plan.lag_hold, 30 * S);

    memset(&lag, 0, sizeof(lag));
    ck_assert_int_eq(cs_lag_behind(&lag, 3, T0), 0);

    cs_lag_generation(&lag, 5, T0);
    cs_lag_generation(&lag, 5, T0 + 2 * S);         /* seen again */
    cs_lag_generation(&lag, 6, T0 + 10 * S);
    cs_lag_generation(&lag, 7, T0 + 20 * S);

    ck_assert_int_eq(cs_lag_behind(&lag, 7, T0 + 30 * S), 0);
    ck_assert_int_eq(cs_lag_behind(&lag, 8, T0 + 30 * S), 0);
    ck_assert_int_eq(cs_lag_behind(&lag, 6, T0 + 30 * S), 10 * S);
    ck_assert_int_eq(cs_lag_behind(&lag, 5, T0 + 30 * S), 20 * S);
    /* older than anything known: at least since the oldest */
    ck_assert_int_eq(cs_lag_behind(&lag, 1, T0 + 30 * S), 30 * S);

    cs_metrics_init(&r[0]);
    cs_metrics_init(&r[1]);
    cs_metrics_init(&r[2]);
    r[0].generation_min = 7;
    r[1].generation_min = 6;
    r[2].generation_min = 1;            /* did not answer: not judged */

    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 3,
                                   T0 + 24 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 0);
    ck_assert_str_eq(lagging, "");

    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 3,
                                   T0 + 25 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 1);
    ck_assert_str_eq(lagging, "web-2 at generation 6");
    ck_assert_str_eq(held, "");
    ck_assert_uint_eq(holding, 0);

    r[0].generation_min = 5;
    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 3,
                                   T0 + 45 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 2);
    ck_assert_str_eq(lagging, "web-1 at generation 5, web-2 at generation 6");
    ck_assert_str_eq(held, "web-1 at generation 5");
    ck_assert_uint_eq(holding, 1);

    /* a text too long ends in "..." */
    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 3,
                                   T0 + 50 * S, lagging, 30, held,
                                   sizeof(held), &holding), 2);
    ck_assert_msg(strlen(lagging) == 29
                  && strcmp(lagging + 26, "...") == 0, "%s", lagging);

    /* the hash rewritten lower: the history starts over */
    cs_lag_generation(&lag, 2, T0 + 60 * S);
    ck_assert_int_eq(cs_lag_behind(&lag, 5, T0 + 90 * S), 0);
    ck_assert_int_eq(cs_lag_behind(&lag, 1, T0 + 90 * S), 30 * S);

    /* many generations: the oldest forgotten, never a crash */
    for (holding = 3; holding < 3 + 2 * CS_LAG_HISTORY; holding++) {
        cs_lag_generation(&lag, holding, T0 + (int64_t) holding * S);
    }

    ck_assert_int_eq(cs_lag_behind(&lag, 0, T0 + 1000 * S),
                     (1000 - 3 - CS_LAG_HISTORY) * S);

    cs_lag_free(&lag);
    cs_plan_free(&plan);
}
END_TEST


/* cut from Redis while behind: lagging, silent; gone while following:
 * left */
START_TEST(test_lag_silent_node)
{
    int                 answered[3];
    char                lagging[160], held[160];
    char               *names[3] = { "web-1", "web-2", "web-3" };
    size_t              holding;
    cs_lag_t            lag;
    cs_plan_t           plan;
    cs_metrics_t        r[3];

    ck_assert_int_eq(cs_plan_default(&plan), 0);
    memset(&lag, 0, sizeof(lag));

    cs_metrics_init(&r[0]);
    cs_metrics_init(&r[1]);
    cs_metrics_init(&r[2]);

    /* all three at generation 5; web-3 answers, then leaves */
    cs_lag_generation(&lag, 5, T0);
    r[0].generation_min = 5;
    r[1].generation_min = 5;
    r[2].generation_min = 5;
    answered[0] = answered[1] = answered[2] = 1;

    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 3,
                                   T0 + 5 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 0);

    /* 6 written; web-1 answers once more at 5, then falls silent */
    cs_lag_generation(&lag, 6, T0 + 10 * S);
    r[1].generation_min = 6;
    answered[2] = 0;

    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 3,
                                   T0 + 11 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 0);

    answered[0] = 0;

    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 3,
                                   T0 + 16 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 1);
    ck_assert_str_eq(lagging, "web-1 at generation 5 (silent)");
    ck_assert_uint_eq(holding, 0);

    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 3,
                                   T0 + 41 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 1);
    ck_assert_str_eq(held, "web-1 at generation 5 (silent)");
    ck_assert_uint_eq(holding, 1);

    /* it answers again, following: nothing lags */
    answered[0] = 1;
    r[0].generation_min = 6;

    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 3,
                                   T0 + 42 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 0);

    /* silent again behind 7, then forgotten after CS_LAG_SILENT_MAX */
    cs_lag_generation(&lag, 7, T0 + 50 * S);

    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 3,
                                   T0 + 51 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 0);

    answered[0] = 0;
    answered[1] = 0;

    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 3,
                                   T0 + 90 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 2);
    ck_assert_uint_eq(holding, 2);

    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 3,
                                   T0 + 51 * S + CS_LAG_SILENT_MAX,
                                   lagging, sizeof(lagging), held,
                                   sizeof(held), &holding), 0);
    ck_assert_uint_eq(lag.nnodes, 0);

    cs_lag_free(&lag);
    cs_plan_free(&plan);
}
END_TEST


/* fleet mode: the nodes set says who is silent; the others left */
START_TEST(test_lag_silent_in_the_nodes_set)
{
    int                 answered[2] = { 1, 1 };
    char                lagging[160], held[160];
    char               *names[2] = { "web-1", "web-2" };
    size_t              holding;
    cs_lag_t            lag;
    cs_plan_t           plan;
    cs_metrics_t        r[2];

    ck_assert_int_eq(cs_plan_default(&plan), 0);
    memset(&lag, 0, sizeof(lag));
    lag.fleet = 1;

    cs_metrics_init(&r[0]);
    cs_metrics_init(&r[1]);
    r[0].generation_min = 5;
    r[1].generation_min = 5;

    cs_lag_generation(&lag, 5, T0);
    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 2,
                                   T0 + 1 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 0);

    /* both stop answering before 6 is written: web-1 is silent (its
     * record expired), web-2 said goodbye */
    answered[0] = answered[1] = 0;
    cs_lag_generation(&lag, 6, T0 + 10 * S);

    cs_lag_silent(&lag, "web-1", 5);
    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 2,
                                   T0 + 12 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 0);
    ck_assert_uint_eq(lag.nnodes, 1);

    cs_lag_silent(&lag, "web-1", 5);
    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 2,
                                   T0 + 41 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 1);
    ck_assert_str_eq(lagging, "web-1 at generation 5 (silent)");
    ck_assert_str_eq(held, "web-1 at generation 5 (silent)");

    /* no longer in the set: gone */
    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 2,
                                   T0 + 42 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 0);
    ck_assert_uint_eq(lag.nnodes, 0);

    cs_lag_free(&lag);
    cs_plan_free(&plan);
}
END_TEST


/*
 * Fleet mode, a sidecar restarted while web-2 is silent: it never saw
 * web-2 answer, and web-2 is behind every generation it knows.
 */
START_TEST(test_lag_silent_unknown_generation)
{
    int                 answered[1] = { 1 };
    char                lagging[160], held[160];
    char               *names[1] = { "web-1" };
    size_t              holding;
    cs_lag_t            lag;
    cs_plan_t           plan;
    cs_metrics_t        r[1];

    ck_assert_int_eq(cs_plan_default(&plan), 0);
    memset(&lag, 0, sizeof(lag));
    lag.fleet = 1;

    cs_metrics_init(&r[0]);
    r[0].generation_min = 7;

    cs_lag_generation(&lag, 7, T0);

    cs_lag_silent(&lag, "web-2", 5);
    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 1,
                                   T0 + 1 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 1);
    ck_assert_str_eq(lagging, "web-2 at an unknown generation (silent)");
    ck_assert_uint_eq(holding, 1);

    cs_lag_silent(&lag, "web-2", 5);
    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 1,
                                   T0 + 31 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 1);
    ck_assert_uint_eq(holding, 1);
    ck_assert_str_eq(held, "web-2 at an unknown generation (silent)");

    /* it answers: its generation is known, it follows */
    r[0].generation_min = 7;
    names[0] = "web-2";
    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 1,
                                   T0 + 32 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 0);

    /* silent again: at generation 7, which it applies */
    answered[0] = 0;
    cs_lag_silent(&lag, "web-2", 5);
    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 1,
                                   T0 + 33 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 0);
    ck_assert_uint_eq(lag.nnodes, 1);

    /* out of the nodes set: gone */
    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 1,
                                   T0 + 34 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 0);
    ck_assert_uint_eq(lag.nnodes, 0);

    /* noticed silent, never in the set again: forgotten at once */
    cs_lag_silent(&lag, "web-3", 5);
    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 1,
                                   T0 + 35 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 1);
    ck_assert_uint_eq(cs_lag_check(&lag, &plan, names, r, answered, 1,
                                   T0 + 36 * S, lagging, sizeof(lagging),
                                   held, sizeof(held), &holding), 0);
    ck_assert_uint_eq(lag.nnodes, 0);

    cs_lag_free(&lag);
    cs_plan_free(&plan);
}
END_TEST


UNIT_MAIN("sidecar_fleet", NULL, NULL, 0)
