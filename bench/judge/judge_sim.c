
/*
 * judge-sim: whole rollouts in simulated time, judged by the sidecar's
 * own decision code (src/sidecar/analysis.c, linked in as it is; built
 * with -DJUDGE_LANDED against the analysis code as landed before the
 * stage-evidence judge, taken from git history, for comparison).
 *
 * Each simulated second: requests of each variant (Poisson, the
 * canary's share drifting as tenants' traffic does), errors (binomial),
 * latencies (log-normal, whole milliseconds as nginx measures them,
 * into the module's histogram buckets); then one cs_decide() on the
 * window and, for the new judge, on the second's new requests, exactly
 * as canary-sidecar does with an interval of 1s.  Weight changes take
 * effect the next second.
 *
 *   judge-sim [--rate R] [--hold SECONDS|default] [--rollouts N]
 *             [--seed S] [--error-ratio X] [--p99-ratio X]
 *             [--base-error P] [--pinned-share P] [--availability-min A]
 *             [--plan FILE] [--errors random|exact] [--burst C]
 *
 * prints one line of "key=value" results.
 */


#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "ngx_http_canary_histogram.h"


#define SIM_MS_MAX          20000           /* latencies simulated */
#define SIM_WINDOW_SLOTS    64
#define SIM_MEDIAN_MS       20.0
#define SIM_SIGMA           0.5
#define SIM_DRIFT           0.3             /* +-30% share over 10 min */
#define SIM_DRIFT_PERIOD    600.0
#define SIM_ONE_BY_ONE      256             /* requests drawn singly */


typedef struct {
    uint64_t            s[4];
} sim_rng_t;


/* a latency distribution as bucket probabilities, the heavy ones first */
typedef struct {
    size_t              n;
    size_t              bucket[CS_HIST_BUCKETS];
    double              p[CS_HIST_BUCKETS];
    double              cut[CS_HIST_BUCKETS];   /* Walker's alias table */
    size_t              alias[CS_HIST_BUCKETS];
} sim_latency_t;


typedef struct {
    double              rate;
    int64_t             hold;               /* ms; -1: the plan's */
    long                rollouts;
    uint64_t            seed;
    double              error_ratio;
    double              p99_ratio;
    double              base_error;
    double              pinned_share;
    double              availability_min;
    const char         *plan;
    int                 exact_errors;       /* every 1/p-th request */
    double              burst;              /* mean errors in a burst */
} sim_options_t;


typedef struct {
    long                rolled_back;
    long                halted;
    long                completed;
    long                stalled;
    long                caught_at_stage[CS_STAGES_MAX];
    double              max_weight_sum;
    double              exposure_sum;       /* canary share x seconds */
    double              canary_requests_sum;
    double              seconds_sum;        /* to the rollback */
} sim_result_t;


static uint64_t sim_next(sim_rng_t *r);
static double sim_uniform(sim_rng_t *r);
static double sim_normal(sim_rng_t *r);
static uint64_t sim_poisson(sim_rng_t *r, double mean);
static uint64_t sim_binomial(sim_rng_t *r, uint64_t n, double p);
static void sim_latency_init(sim_latency_t *lat, double sigma);
static void sim_fill(sim_rng_t *r, const sim_latency_t *lat, uint64_t n,
    double error, cs_window_t *w);
static size_t sim_bucket(uint64_t us);
static uint64_t sim_bursts(sim_rng_t *r, uint64_t n, double p, double mean);
static void sim_window_add(cs_window_t *a, const cs_window_t *b, int sign);
static int sim_rollout(const cs_plan_t *plan, const sim_options_t *o,
    sim_rng_t *r, const sim_latency_t *lat, double *out);
static int sim_options(sim_options_t *o, int argc, char **argv);


static cs_window_t  sim_ring[SIM_WINDOW_SLOTS][2];


int
main(int argc, char **argv)
{
    int             rc;
    long            i;
    char            err[512];
    double          out[5], p99[2];
    size_t          k;
    cs_plan_t       plan;
    sim_rng_t       r;
    sim_result_t    res;
    sim_options_t   o;
    sim_latency_t   lat[2];

    if (sim_options(&o, argc, argv) != 0) {
        return 2;
    }

    if (o.plan) {
        if (cs_plan_load(&plan, o.plan, err, sizeof(err)) != 0) {
            fprintf(stderr, "judge-sim: %s\n", err);
            return 2;
        }

    } else if (cs_plan_default(&plan) != 0) {
        return 1;
    }

    plan.slo.availability_min = o.availability_min;

    if (o.hold >= 0) {
        for (k = 0; k < plan.nstages; k++) {
            if (plan.stages[k].hold) {
                plan.stages[k].hold = o.hold;
            }
        }
    }

    sim_latency_init(&lat[0], SIM_SIGMA);

    /* the canary's p99 x p99_ratio at the same median: a longer tail */
    sim_latency_init(&lat[1], SIM_SIGMA + log(o.p99_ratio) / 2.326);

    p99[0] = SIM_MEDIAN_MS * exp(2.326 * SIM_SIGMA);
    p99[1] = p99[0] * o.p99_ratio;

    memset(&res, 0, sizeof(res));

    r.s[0] = o.seed ^ 0x9e3779b97f4a7c15ULL;
    r.s[1] = o.seed * 0xbf58476d1ce4e5b9ULL + 1;
    r.s[2] = 0x94d049bb133111ebULL;
    r.s[3] = o.seed + 0x2545f4914f6cdd1dULL;

    for (i = 0; i < 16; i++) {
        (void) sim_next(&r);
    }

    for (i = 0; i < o.rollouts; i++) {
        memset(out, 0, sizeof(out));
        rc = sim_rollout(&plan, &o, &r, lat, out);

        switch (rc) {
        case CS_ACT_ROLLBACK:
            res.rolled_back++;
            res.caught_at_stage[(size_t) out[0]]++;
            res.seconds_sum += out[4];
            res.exposure_sum += out[2];
            res.canary_requests_sum += out[3];
            break;
        case CS_ACT_HALT:
            res.halted++;
            break;
        case CS_ACT_COMPLETE:
            res.completed++;
            break;
        default:
            res.stalled++;
        }

        res.max_weight_sum += out[1];
    }

    printf("judge=%s rate=%g hold=%lld rollouts=%ld error_ratio=%g "
           "p99_ratio=%g base_error=%g p99_ms=%.1f/%.1f "
           "rolled_back=%ld halted=%ld completed=%ld stalled=%ld "
           "mean_max_weight=%.2f",
#ifdef JUDGE_LANDED
           "landed",
#else
           "stage",
#endif
           o.rate, (long long) o.hold, o.rollouts, o.error_ratio,
           o.p99_ratio, o.base_error, p99[0], p99[1], res.rolled_back,
           res.halted, res.completed, res.stalled,
           res.max_weight_sum / (double) o.rollouts);

    printf(" caught_at=");

    for (k = 0; k < plan.nstages; k++) {
        printf("%s%ld", k ? "," : "", res.caught_at_stage[k]);
    }

    if (res.rolled_back) {
        printf(" mean_seconds_to_rollback=%.1f mean_exposure=%.2f "
               "mean_canary_requests=%.0f",
               res.seconds_sum / (double) res.rolled_back,
               res.exposure_sum / (double) res.rolled_back,
               res.canary_requests_sum / (double) res.rolled_back);
    }

    printf("\n");

    cs_plan_free(&plan);

    return 0;
}


/*
 * One rollout from its start to its end: returns the action that ended
 * it (CS_ACT_ROLLBACK, CS_ACT_HALT, CS_ACT_COMPLETE: the last stage or
 * its manual gate reached; CS_ACT_HOLD: still going at the time limit);
 * out: stage, highest weight, exposure, canary requests, seconds.
 */

static int
sim_rollout(const cs_plan_t *plan, const sim_options_t *o, sim_rng_t *r,
    const sim_latency_t *lat, double *out)
{
    int               v, act;
    double            share, drift, phase, error[2], max_weight, exposure,
                      canary_requests, owed[2];
    int64_t           now, t, limit, total_hold;
    size_t            k, slot;
    unsigned          w;
    uint64_t          n[2];
    size_t            full;
    cs_window_t       sum[2];
    cs_metrics_t      m;
    cs_rollout_t      ro;
    cs_decision_t     d;
    cs_split_view_t   view;

    cs_rollout_init(&ro);
    memset(&view, 0, sizeof(view));
    view.exists = 1;
    view.enabled = -1;
    view.generation = 1;

    memset(sim_ring, 0, sizeof(sim_ring));
    memset(sum, 0, sizeof(sum));
    full = (size_t) (plan->window / 1000);

    error[0] = o->base_error;
    error[1] = o->base_error * o->error_ratio;

    if (error[1] > 1) {
        error[1] = 1;
    }

    total_hold = 0;

    for (k = 0; k < plan->nstages; k++) {
        total_hold += plan->stages[k].hold;
    }

    /* long enough for the first stage to reach min_requests at 1 req/s */
    limit = total_hold + 3 * 3600 * 1000LL;

    phase = 2 * M_PI * sim_uniform(r);
    owed[0] = sim_uniform(r);
    owed[1] = sim_uniform(r);
    max_weight = 0;
    exposure = 0;
    canary_requests = 0;
    now = 1700000000000LL;

    for (t = 0; t <= limit; t += 1000) {
        now += 1000;

        /* the traffic of this second, at the weight now in force */

        if (ro.status == CS_STATUS_NEW) {
            share = 0;

        } else if (view.weight == 0 && plan->npins) {
            share = o->pinned_share;

        } else {
            share = view.weight / 10000.0;
        }

        drift = 1 + SIM_DRIFT * sin(2 * M_PI * (double) t / 1000
                                    / SIM_DRIFT_PERIOD + phase);
        share *= drift;
        share = share > 1 ? 1 : share;

        n[1] = sim_poisson(r, o->rate * share);
        n[0] = sim_poisson(r, o->rate * (1 - share));

        slot = (size_t) (t / 1000) % SIM_WINDOW_SLOTS;

        for (v = 0; v < 2; v++) {
            sim_fill(r, &lat[v], n[v], error[v], &sim_ring[slot][v]);

            if (o->burst > 1) {
                sim_ring[slot][v].errors_5xx = sim_bursts(r, n[v], error[v],
                                                          o->burst);
            }

            if (o->exact_errors) {
                owed[v] += (double) n[v] * error[v];
                sim_ring[slot][v].errors_5xx = (uint64_t) owed[v];
                owed[v] -= (double) (uint64_t) owed[v];
            }
        }

        if (ro.status != CS_STATUS_NEW && share > 0) {
            exposure += share;
            canary_requests += (double) n[1];
        }

        /* what the sidecar reads: the window, and this second */

        cs_metrics_init(&m);
        m.instances = 1;
        m.asked = 1;
        m.generation_min = view.generation;

#ifdef JUDGE_LANDED
        w = cs_window_seconds(plan, &ro, now);
#else
        w = (unsigned) (plan->window / 1000);
        m.delta[0] = sim_ring[slot][0];
        m.delta[1] = sim_ring[slot][1];
        m.has_delta = t > 0;
#endif

        m.window_seconds = w;

        /* the plan's window as a running sum; a shorter one (the landed
         * judge's at a stage's start) added up */
        for (v = 0; v < 2; v++) {
            sim_window_add(&sum[v], &sim_ring[slot][v], 1);

            if (t / 1000 >= (int64_t) full) {
                sim_window_add(&sum[v], &sim_ring[(slot + SIM_WINDOW_SLOTS
                                                   - full)
                                                  % SIM_WINDOW_SLOTS][v],
                               -1);
            }
        }

        if (w >= full) {
            m.v[0] = sum[0];
            m.v[1] = sum[1];

        } else {
            for (k = 0; k < w && k <= (size_t) (t / 1000); k++) {
                for (v = 0; v < 2; v++) {
                    sim_window_add(&m.v[v],
                                   &sim_ring[(slot + SIM_WINDOW_SLOTS - k)
                                             % SIM_WINDOW_SLOTS][v], 1);
                }
            }
        }

        cs_decide(plan, &view, &ro, &m, now, &d);

        act = d.action;

        if (cs_action_writes(d.action)) {
            view.generation++;

            if (d.set_weight) {
                view.weight = d.weight;
                view.has_weight = 1;
            }

            snprintf(view.state, sizeof(view.state), "%s", d.state);
            snprintf(view.updated_by, sizeof(view.updated_by), "sim");
        }

        ro = d.next;
        ro.seen = view.generation;

        if (view.weight / 100.0 > max_weight) {
            max_weight = view.weight / 100.0;
        }

        out[0] = (double) d.from_stage;
        out[1] = max_weight;
        out[2] = exposure;
        out[3] = canary_requests;
        out[4] = (double) t / 1000;

        if (act == CS_ACT_ROLLBACK || act == CS_ACT_HALT
            || act == CS_ACT_COMPLETE)
        {
            if (getenv("JUDGE_SIM_VERBOSE") && act != CS_ACT_COMPLETE) {
                fprintf(stderr, "t=%llds stage %d: %s\n",
                        (long long) (t / 1000), d.from_stage, d.reason);
            }

            return act;
        }

        if (act == CS_ACT_AWAIT) {
            return CS_ACT_COMPLETE;
        }
    }

    return CS_ACT_HOLD;
}


/* n requests with error probability "error" and latencies from lat */

static void
sim_fill(sim_rng_t *r, const sim_latency_t *lat, uint64_t n, double error,
    cs_window_t *w)
{
    size_t    i;
    double    left, u;
    uint64_t  x, k;

    memset(w, 0, sizeof(cs_window_t));

    w->requests = n;
    w->errors_5xx = sim_binomial(r, n, error);

    /* few requests: each one by the alias method, O(1) a request */
    if (n <= SIM_ONE_BY_ONE) {
        for (k = 0; k < n; k++) {
            u = sim_uniform(r) * (double) lat->n;
            i = (size_t) u;
            i = i < lat->n ? i : lat->n - 1;

            w->counts[lat->bucket[u - (double) i < lat->cut[i]
                                  ? i : lat->alias[i]]]++;
        }

        return;
    }

    /* the multinomial as binomials, each of what is left */
    left = 1;

    for (i = 0; i < lat->n && n > 0; i++) {
        if (i == lat->n - 1 || lat->p[i] >= left) {
            x = n;

        } else {
            x = sim_binomial(r, n, lat->p[i] / left);
        }

        w->counts[lat->bucket[i]] += x;
        n -= x;
        left -= lat->p[i];
    }
}


static void
sim_latency_init(sim_latency_t *lat, double sigma)
{
    int     ms;
    size_t  i, j, b, tmp_b, nsmall, nlarge, small[CS_HIST_BUCKETS],
            large[CS_HIST_BUCKETS];
    double  mu, lo, hi, p[CS_HIST_BUCKETS], tmp_p;

    memset(p, 0, sizeof(p));
    mu = log(SIM_MEDIAN_MS);

    /* nginx's whole milliseconds: k ms is [k, k + 1) */
    for (ms = 0; ms < SIM_MS_MAX; ms++) {
        lo = ms == 0 ? 0 : 0.5 * erfc(-(log((double) ms) - mu)
                                      / (sigma * M_SQRT2));
        hi = 0.5 * erfc(-(log((double) ms + 1) - mu) / (sigma * M_SQRT2));

        if (ms == SIM_MS_MAX - 1) {
            hi = 1;
        }

        p[sim_bucket((uint64_t) ms * 1000)] += hi - lo;
    }

    lat->n = 0;

    for (b = 0; b < CS_HIST_BUCKETS; b++) {
        if (p[b] > 0) {
            lat->bucket[lat->n] = b;
            lat->p[lat->n] = p[b];
            lat->n++;
        }
    }

    /* heaviest first: the binomials end sooner */
    for (i = 1; i < lat->n; i++) {
        for (j = i; j > 0 && lat->p[j] > lat->p[j - 1]; j--) {
            tmp_p = lat->p[j];
            lat->p[j] = lat->p[j - 1];
            lat->p[j - 1] = tmp_p;
            tmp_b = lat->bucket[j];
            lat->bucket[j] = lat->bucket[j - 1];
            lat->bucket[j - 1] = tmp_b;
        }
    }

    /*
     * Walker's alias table (Vose's construction): slot i is itself with
     * probability cut[i], else alias[i]
     */
    nsmall = 0;
    nlarge = 0;

    for (i = 0; i < lat->n; i++) {
        lat->cut[i] = lat->p[i] * (double) lat->n;
        lat->alias[i] = i;

        if (lat->cut[i] < 1) {
            small[nsmall++] = i;

        } else {
            large[nlarge++] = i;
        }
    }

    while (nsmall && nlarge) {
        i = small[--nsmall];
        j = large[--nlarge];

        lat->alias[i] = j;
        lat->cut[j] -= 1 - lat->cut[i];

        if (lat->cut[j] < 1) {
            small[nsmall++] = j;

        } else {
            large[nlarge++] = j;
        }
    }

    while (nlarge) {
        lat->cut[large[--nlarge]] = 1;
    }

    while (nsmall) {
        lat->cut[small[--nsmall]] = 1;
    }
}


/*
 * Errors in bursts (a client retrying a failing request): as many on
 * average, each burst geometric with the given mean, all on one side
 */

static uint64_t
sim_bursts(sim_rng_t *r, uint64_t n, double p, double mean)
{
    uint64_t  k, x;

    x = 0;

    for (k = sim_binomial(r, n, p / mean); k > 0; k--) {
        do {
            x++;
        } while (sim_uniform(r) > 1 / mean);
    }

    return x < n ? x : n;
}


/* a += b, or a -= b: the landed code has no cs_window_add() */

static void
sim_window_add(cs_window_t *a, const cs_window_t *b, int sign)
{
    size_t  i;

    if (sign < 0) {
        a->requests -= b->requests;
        a->errors_5xx -= b->errors_5xx;
        a->upstream_errors -= b->upstream_errors;

        for (i = 0; i < CS_HIST_BUCKETS; i++) {
            a->counts[i] -= b->counts[i];
        }

        return;
    }

    a->requests += b->requests;
    a->errors_5xx += b->errors_5xx;
    a->upstream_errors += b->upstream_errors;

    for (i = 0; i < CS_HIST_BUCKETS; i++) {
        a->counts[i] += b->counts[i];
    }
}


static size_t
sim_bucket(uint64_t us)
{
    size_t  b;

    for (b = 0; b < CS_HIST_BUCKETS - 1; b++) {
        if (us < ngx_http_canary_hist_upper(b)) {
            return b;
        }
    }

    return CS_HIST_BUCKETS - 1;
}


/* xoshiro256** */

static uint64_t
sim_next(sim_rng_t *r)
{
    uint64_t  result, t;

    result = r->s[1] * 5;
    result = ((result << 7) | (result >> 57)) * 9;
    t = r->s[1] << 17;

    r->s[2] ^= r->s[0];
    r->s[3] ^= r->s[1];
    r->s[1] ^= r->s[2];
    r->s[0] ^= r->s[3];
    r->s[2] ^= t;
    r->s[3] = (r->s[3] << 45) | (r->s[3] >> 19);

    return result;
}


static double
sim_uniform(sim_rng_t *r)
{
    return (double) (sim_next(r) >> 11) * 0x1.0p-53;
}


static double
sim_normal(sim_rng_t *r)
{
    double  u, v;

    do {
        u = sim_uniform(r);
    } while (u <= 0);

    v = sim_uniform(r);

    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}


/* exact by inversion for small means, normal beyond (rounded, >= 0) */

static uint64_t
sim_poisson(sim_rng_t *r, double mean)
{
    double    u, p, cdf;
    uint64_t  k;

    if (mean <= 0) {
        return 0;
    }

    if (mean > 50) {
        u = mean + sqrt(mean) * sim_normal(r) + 0.5;
        return u < 0 ? 0 : (uint64_t) u;
    }

    u = sim_uniform(r);
    p = exp(-mean);
    cdf = p;
    k = 0;

    while (u > cdf && k < 1000) {
        k++;
        p *= mean / (double) k;
        cdf += p;
    }

    return k;
}


static uint64_t
sim_binomial(sim_rng_t *r, uint64_t n, double p)
{
    double    u, q, f, cdf, mean, sd, x;
    uint64_t  k;

    if (n == 0 || p <= 0) {
        return 0;
    }

    if (p >= 1) {
        return n;
    }

    mean = (double) n * p;

    if (mean > 30 && (double) n * (1 - p) > 30) {
        sd = sqrt(mean * (1 - p));
        x = mean + sd * sim_normal(r) + 0.5;
        return x < 0 ? 0 : x > (double) n ? n : (uint64_t) x;
    }

    if (p > 0.5) {
        return n - sim_binomial(r, n, 1 - p);
    }

    /* inversion from 0 */
    u = sim_uniform(r);
    q = 1 - p;
    f = pow(q, (double) n);
    cdf = f;
    k = 0;

    while (u > cdf && k < n) {
        f *= (double) (n - k) / (double) (k + 1) * p / q;
        k++;
        cdf += f;
    }

    return k;
}


static int
sim_options(sim_options_t *o, int argc, char **argv)
{
    int  i;

    o->rate = 40;
    o->hold = -1;
    o->rollouts = 1000;
    o->seed = 1;
    o->error_ratio = 1;
    o->p99_ratio = 1;
    o->base_error = 0.005;
    o->pinned_share = 0.02;
    o->availability_min = 99;
    o->plan = NULL;
    o->exact_errors = 0;
    o->burst = 1;

    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rate") == 0) {
            o->rate = atof(argv[i + 1]);

        } else if (strcmp(argv[i], "--hold") == 0) {
            o->hold = strcmp(argv[i + 1], "default") == 0
                      ? -1 : (int64_t) (atof(argv[i + 1]) * 1000);

        } else if (strcmp(argv[i], "--rollouts") == 0) {
            o->rollouts = atol(argv[i + 1]);

        } else if (strcmp(argv[i], "--seed") == 0) {
            o->seed = strtoull(argv[i + 1], NULL, 10);

        } else if (strcmp(argv[i], "--error-ratio") == 0) {
            o->error_ratio = atof(argv[i + 1]);

        } else if (strcmp(argv[i], "--p99-ratio") == 0) {
            o->p99_ratio = atof(argv[i + 1]);

        } else if (strcmp(argv[i], "--base-error") == 0) {
            o->base_error = atof(argv[i + 1]);

        } else if (strcmp(argv[i], "--pinned-share") == 0) {
            o->pinned_share = atof(argv[i + 1]);

        } else if (strcmp(argv[i], "--burst") == 0) {
            /* errors in bursts of this mean size (geometric) */
            o->burst = atof(argv[i + 1]);

        } else if (strcmp(argv[i], "--errors") == 0) {
            /* "exact": as an origin that fails every Nth request */
            o->exact_errors = strcmp(argv[i + 1], "exact") == 0;

        } else if (strcmp(argv[i], "--plan") == 0) {
            o->plan = argv[i + 1];

        } else if (strcmp(argv[i], "--availability-min") == 0) {
            o->availability_min = atof(argv[i + 1]);

        } else {
            fprintf(stderr, "judge-sim: unknown option %s\n", argv[i]);
            return -1;
        }
    }

    if (i < argc || o->rate <= 0 || o->rollouts <= 0 || o->p99_ratio <= 0)
    {
        fprintf(stderr, "judge-sim: bad arguments\n");
        return -1;
    }

    return 0;
}
