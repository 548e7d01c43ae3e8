
/*
 * A plan's cohort stages: "cohorts" maps parsed as the module's
 * weight.COHORT fields take them, a stage without one keeping the map of
 * the stage before, weight-0 stages that add cohorts, and every bad map
 * failing with a message that names the stage, the cohort and the value.
 */


#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "plan.h"


static char  cs_err[512];


static int
cs_parse(cs_plan_t *plan, const char *text)
{
    cs_err[0] = '\0';

    return cs_plan_parse(plan, text, strlen(text), "plan.json", cs_err,
                         sizeof(cs_err));
}


static void
cs_bad(const char *text, const char *w1, const char *w2)
{
    cs_plan_t  plan;

    ck_assert_msg(cs_parse(&plan, text) == -1, "accepted: %s", text);
    ck_assert_msg(strstr(cs_err, "plan.json: ") == cs_err, "%s", cs_err);
    ck_assert_msg(strstr(cs_err, w1) != NULL, "\"%s\" not in: %s", w1,
                  cs_err);
    ck_assert_msg(w2 == NULL || strstr(cs_err, w2) != NULL,
                  "\"%s\" not in: %s", w2, cs_err);
}


static const cs_cohort_t *
cs_find(const cs_plan_t *plan, size_t stage, const char *name)
{
    size_t  k;

    for (k = 0; k < plan->cohorts[stage].n; k++) {
        if (strcmp(plan->cohorts[stage].cohort[k].name, name) == 0) {
            return &plan->cohorts[stage].cohort[k];
        }
    }

    return NULL;
}


#define CS_LADDER                                                            \
    "{\"stages\":["                                                          \
    "{\"name\":\"internal\",\"weight\":0,\"cohorts\":{\"internal\":100},"    \
    "\"hold\":\"30m\"},"                                                     \
    "{\"name\":\"friendly\",\"weight\":0,"                                   \
    "\"cohorts\":{\"internal\":100,\"friendly\":100},\"hold\":\"1h\"},"      \
    "{\"name\":\"beta\",\"weight\":0,"                                       \
    "\"cohorts\":{\"internal\":100,\"friendly\":100,\"beta\":25.5},"         \
    "\"hold\":\"1h\"},"                                                      \
    "{\"name\":\"ga_5\",\"weight\":5,\"hold\":\"1h\"},"                      \
    "{\"name\":\"all\",\"weight\":100,\"hold\":\"0s\"}]}"


START_TEST(test_the_ladder_internal_friendly_beta_ga)
{
    cs_plan_t           plan;
    const cs_cohort_t  *c;

    ck_assert_msg(cs_parse(&plan, CS_LADDER) == 0, "%s", cs_err);
    ck_assert_uint_eq(plan.nstages, 5);

    ck_assert_int_eq(plan.cohorts[0].set, 1);
    ck_assert_uint_eq(plan.cohorts[0].n, 1);
    c = cs_find(&plan, 0, "internal");
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(c->weight, 10000);

    ck_assert_uint_eq(plan.cohorts[1].n, 2);
    ck_assert_uint_eq(cs_find(&plan, 1, "friendly")->weight, 10000);

    ck_assert_uint_eq(plan.cohorts[2].n, 3);
    ck_assert_uint_eq(cs_find(&plan, 2, "beta")->weight, 2550);

    /* no "cohorts": the map of the stage before, not written as new */
    ck_assert_int_eq(plan.cohorts[3].set, 0);
    ck_assert_uint_eq(plan.cohorts[3].n, 3);
    ck_assert_uint_eq(cs_find(&plan, 3, "beta")->weight, 2550);
    ck_assert_uint_eq(plan.cohorts[4].n, 3);

    ck_assert_int_eq(cs_plan_cohorts_route(&plan, 0), 1);
    ck_assert_int_eq(cs_plan_cohorts_grow(&plan, 1), 1);
    ck_assert_int_eq(cs_plan_cohorts_grow(&plan, 2), 1);
    ck_assert_int_eq(cs_plan_cohorts_grow(&plan, 3), 0);

    cs_plan_free(&plan);
}
END_TEST


START_TEST(test_plans_without_cohorts_have_none)
{
    size_t     i;
    cs_plan_t  plan;

    ck_assert_int_eq(cs_plan_default(&plan), 0);

    for (i = 0; i < plan.nstages; i++) {
        ck_assert_uint_eq(plan.cohorts[i].n, 0);
        ck_assert_int_eq(cs_plan_cohorts_route(&plan, i), 0);
    }

    cs_plan_free(&plan);

    ck_assert_int_eq(cs_parse(&plan, "{\"stages\":["
        "{\"name\":\"a\",\"weight\":0,\"hold\":\"1m\"},"
        "{\"name\":\"b\",\"weight\":10,\"hold\":\"1m\"}]}"), 0);
    ck_assert_uint_eq(plan.cohorts[0].n, 0);
    ck_assert_uint_eq(plan.cohorts[1].n, 0);
    cs_plan_free(&plan);
}
END_TEST


START_TEST(test_a_raised_cohort_may_keep_the_weight)
{
    cs_plan_t  plan;

    /* the same cohorts, one raised: a stage of its own at weight 0 */
    ck_assert_msg(cs_parse(&plan, "{\"stages\":["
        "{\"name\":\"a\",\"weight\":0,\"cohorts\":{\"beta\":5},"
        "\"hold\":\"1m\"},"
        "{\"name\":\"b\",\"weight\":0,\"cohorts\":{\"beta\":25},"
        "\"hold\":\"1m\"},"
        "{\"name\":\"c\",\"weight\":0,\"cohorts\":{\"beta\":25,"
        "\"x.y-z_1\":0.01},\"hold\":\"1m\"}]}") == 0, "%s", cs_err);
    ck_assert_uint_eq(plan.cohorts[1].cohort[0].weight, 2500);
    ck_assert_uint_eq(plan.cohorts[2].cohort[1].weight, 1);

    /* a comment is no cohort */
    cs_plan_free(&plan);
    ck_assert_msg(cs_parse(&plan, "{\"stages\":["
        "{\"name\":\"a\",\"weight\":0,\"cohorts\":{\"beta\":5,"
        "\"//beta\":\"the opt-in programme\"},\"hold\":\"1m\"}]}") == 0,
        "%s", cs_err);
    ck_assert_uint_eq(plan.cohorts[0].n, 1);

    /* a cohort at 0 only routes nobody */
    ck_assert_int_eq(cs_plan_cohorts_route(&plan, 0), 1);
    cs_plan_free(&plan);

    ck_assert_int_eq(cs_parse(&plan, "{\"stages\":["
        "{\"name\":\"a\",\"weight\":0,\"cohorts\":{\"vip\":0},"
        "\"hold\":\"1m\"}]}"), 0);
    ck_assert_int_eq(cs_plan_cohorts_route(&plan, 0), 0);
    cs_plan_free(&plan);
}
END_TEST


START_TEST(test_bad_cohorts_name_the_problem)
{
    cs_bad("{\"stages\":[{\"name\":\"a\",\"weight\":0,\"cohorts\":[1],"
           "\"hold\":\"1m\"}]}",
           "stages[0].cohorts is not an object", NULL);

    cs_bad("{\"stages\":[{\"name\":\"a\",\"weight\":0,"
           "\"cohorts\":{\"internal\":\"100\"},\"hold\":\"1m\"}]}",
           "stages[0].cohorts.internal is not a number", NULL);

    cs_bad("{\"stages\":[{\"name\":\"a\",\"weight\":0,"
           "\"cohorts\":{\"internal\":150},\"hold\":\"1m\"}]}",
           "stages[0].cohorts.internal: 150 is not a percent", NULL);

    cs_bad("{\"stages\":[{\"name\":\"a\",\"weight\":0,"
           "\"cohorts\":{\"internal\":-1},\"hold\":\"1m\"}]}",
           "stages[0].cohorts.internal: -1 is not a percent", NULL);

    cs_bad("{\"stages\":[{\"name\":\"a\",\"weight\":0,"
           "\"cohorts\":{\"internal\":0.125},\"hold\":\"1m\"}]}",
           "stages[0].cohorts.internal: 0.125 has more than two decimals",
           NULL);

    cs_bad("{\"stages\":[{\"name\":\"a\",\"weight\":0,"
           "\"cohorts\":{\"two words\":1},\"hold\":\"1m\"}]}",
           "stages[0].cohorts: \"two words\" is not a cohort name",
           "1 to 63 printable");

    cs_bad("{\"stages\":[{\"name\":\"a\",\"weight\":0,"
           "\"cohorts\":{\"\":1},\"hold\":\"1m\"}]}",
           "stages[0].cohorts: \"\" is not a cohort name", NULL);

    cs_bad("{\"stages\":[{\"name\":\"a\",\"weight\":0,\"cohorts\":{\""
           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
           "\":1},\"hold\":\"1m\"}]}",
           "is not a cohort name", "1 to 63");

    cs_bad("{\"stages\":[{\"name\":\"a\",\"weight\":0,\"cohorts\":{"
           "\"c1\":1,\"c2\":1,\"c3\":1,\"c4\":1,\"c5\":1,\"c6\":1,\"c7\":1,"
           "\"c8\":1,\"c9\":1,\"c10\":1,\"c11\":1,\"c12\":1,\"c13\":1,"
           "\"c14\":1,\"c15\":1,\"c16\":1,\"c17\":1},\"hold\":\"1m\"}]}",
           "stages[0].cohorts: more than 16 cohorts", NULL);

    cs_bad("{\"stages\":[{\"name\":\"a\",\"weight\":0,"
           "\"cohorts\":{\"a\":1,\"a\":2},\"hold\":\"1m\"}]}",
           "duplicate", NULL);

    /* a later map drops a cohort: it is the full map */
    cs_bad("{\"stages\":["
           "{\"name\":\"a\",\"weight\":0,\"cohorts\":{\"internal\":100},"
           "\"hold\":\"1m\"},"
           "{\"name\":\"b\",\"weight\":5,\"cohorts\":{\"friendly\":100},"
           "\"hold\":\"1m\"}]}",
           "stages[1].cohorts: \"internal\" of stages[0] is missing",
           "\"internal\": 100");

    /* nor lowers one */
    cs_bad("{\"stages\":["
           "{\"name\":\"a\",\"weight\":0,\"cohorts\":{\"internal\":100},"
           "\"hold\":\"1m\"},"
           "{\"name\":\"b\",\"weight\":5,\"cohorts\":{\"internal\":50},"
           "\"hold\":\"1m\"}]}",
           "stages[1].cohorts.internal: 50 is below 100 in stages[0]",
           NULL);

    /* an equal weight needs a cohort added or raised */
    cs_bad("{\"stages\":["
           "{\"name\":\"a\",\"weight\":0,\"cohorts\":{\"internal\":100},"
           "\"hold\":\"1m\"},"
           "{\"name\":\"b\",\"weight\":0,\"cohorts\":{\"internal\":100},"
           "\"hold\":\"1m\"}]}",
           "stages[1].weight 0 is not above stages[0].weight 0",
           "add or raise a cohort");

    cs_bad("{\"stages\":["
           "{\"name\":\"a\",\"weight\":0,\"cohorts\":{\"internal\":100},"
           "\"hold\":\"1m\"},"
           "{\"name\":\"b\",\"weight\":0,\"hold\":\"1m\"}]}",
           "stages[1].weight 0 is not above stages[0].weight 0", NULL);

    /* and a weight never goes down, cohorts or not */
    cs_bad("{\"stages\":["
           "{\"name\":\"a\",\"weight\":5,\"hold\":\"1m\"},"
           "{\"name\":\"b\",\"weight\":1,\"cohorts\":{\"internal\":100},"
           "\"hold\":\"1m\"}]}",
           "stages[1].weight 1 is not above stages[0].weight 5", NULL);
}
END_TEST


/* conf-examples/plan-cohorts.json: cohorts.conf's ladder */

START_TEST(test_example_cohort_plan)
{
    char       path[1024], *p;
    cs_plan_t  plan;

    snprintf(path, sizeof(path), "%s", __FILE__);
    p = strstr(path, "t/unit/");
    ck_assert_ptr_nonnull(p);
    strcpy(p, "conf-examples/plan-cohorts.json");

    ck_assert_msg(cs_plan_load(&plan, path, cs_err, sizeof(cs_err)) == 0,
                  "%s", cs_err);
    ck_assert_uint_eq(plan.nstages, 7);
    ck_assert_uint_eq(plan.cohorts[0].n, 1);
    ck_assert_uint_eq(cs_find(&plan, 1, "friendly")->weight, 2500);
    ck_assert_uint_eq(cs_find(&plan, 2, "beta")->weight, 2500);
    ck_assert_uint_eq(cs_find(&plan, 6, "beta")->weight, 10000);
    ck_assert_int_eq(plan.cohorts[6].set, 0);
    cs_plan_free(&plan);
}
END_TEST


UNIT_MAIN("sidecar_plan_cohorts", NULL, NULL, 0)
