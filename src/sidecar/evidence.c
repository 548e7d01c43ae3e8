
/*
 * The stage's evidence: adding a step, and keeping it as text in the
 * sidecar's state.
 *
 *   3 LOOKED LOOK_P
 *   e EVENTS_S EVENTS_C REQUESTS_S REQUESTS_C INTERVALS SQ STRAT x 3
 *     LLR x 8
 *                                                         errors test
 *   l ...                                                 latency test
 *   s REQUESTS 5XX UPSTREAM_ERRORS BUCKET:COUNT,...       stable
 *   c REQUESTS 5XX UPSTREAM_ERRORS BUCKET:COUNT,...       canary
 *   q ...                                                 latency p95
 *                                                         test (5)
 *
 * on one line, separated by spaces; a histogram lists only its buckets
 * that are not empty ("-" when all are).  Doubles in %.17g, so that a
 * restarted sidecar goes on with the very same numbers.
 */


#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evidence.h"


/*
 * 4 adds each test's most log M; a version 3 text starts it at its log M.
 * 5 adds the p95 test at the end; 3 and 4 start it empty.
 */
#define CS_EVIDENCE_VERSION  5

/* no count of a stage comes near this; sums of them stay exact */
#define CS_EVIDENCE_COUNT_MAX  (1ULL << 53)


typedef struct {
    const char         *p;
    char               *err;
    size_t              errlen;
    uint64_t            version;
} cs_scan_t;


static size_t cs_format_seq(char *buf, size_t size, size_t n, char tag,
    const cs_seq_t *s);
static int cs_scan_tag(cs_scan_t *sc, char tag);
static int cs_scan_uint(cs_scan_t *sc, uint64_t *out);
static int cs_scan_double(cs_scan_t *sc, double *out);
static int cs_scan_seq(cs_scan_t *sc, char tag, cs_seq_t *s);
static int cs_scan_window(cs_scan_t *sc, char tag, cs_window_t *w);
static int cs_scan_fail(cs_scan_t *sc, const char *what);


void
cs_evidence_add(const cs_plan_t *plan, cs_evidence_t *ev,
    const cs_metrics_t *m)
{
    int                 v;
    size_t              k;
    uint64_t            bound, bound95, slow[2], n[2], err[2];
    const cs_window_t  *d;

    if (m == NULL || !m->has_delta) {
        return;
    }

    /*
     * Canary against stable within each nginx, then the product over the
     * fleet (still a martingale): pooled, two nginx that differ in their
     * error rates and their canary shares would make a canary as good as
     * stable look worse (Simpson).
     */

    bound = cs_slow_bound_us(plan, ev->v[CS_STABLE].counts);
    bound95 = cs_slow_bound95_us(plan, ev->v[CS_STABLE].counts);

    for (k = 0; k < (m->node_delta ? m->n_node : 1); k++) {
        d = m->node_delta ? &m->node_delta[2 * k] : m->delta;

        for (v = 0; v < 2; v++) {
            err[v] = d[v].errors_5xx + d[v].upstream_errors;
            n[v] = d[v].requests;
        }

        cs_seq_update(&ev->errors, err[CS_STABLE], n[CS_STABLE],
                      err[CS_CANARY], n[CS_CANARY]);

        if (bound95) {
            for (v = 0; v < 2; v++) {
                slow[v] = cs_hist_above(d[v].counts, bound95);
                n[v] = cs_hist_total(d[v].counts);
            }

            cs_seq_update(&ev->latency95, slow[CS_STABLE], n[CS_STABLE],
                          slow[CS_CANARY], n[CS_CANARY]);
        }

        if (bound == 0) {
            continue;
        }

        for (v = 0; v < 2; v++) {
            slow[v] = cs_hist_above(d[v].counts, bound);
            n[v] = cs_hist_total(d[v].counts);
        }

        cs_seq_update(&ev->latency, slow[CS_STABLE], n[CS_STABLE],
                      slow[CS_CANARY], n[CS_CANARY]);
    }

    /* the burstiness of stable's bad events, over the whole fleet */

    d = m->delta;

    cs_seq_observe(&ev->errors, d[CS_STABLE].errors_5xx
                                + d[CS_STABLE].upstream_errors,
                   d[CS_STABLE].requests);

    if (bound95) {
        cs_seq_observe(&ev->latency95,
                       cs_hist_above(d[CS_STABLE].counts, bound95),
                       cs_hist_total(d[CS_STABLE].counts));
    }

    if (bound) {
        cs_seq_observe(&ev->latency,
                       cs_hist_above(d[CS_STABLE].counts, bound),
                       cs_hist_total(d[CS_STABLE].counts));
    }

    /*
     * (latency: the bound above comes from stable's evidence BEFORE this
     * step, so it is fixed before the step's requests are counted
     * against it (predictable), and both sides are counted against the
     * same bound: when the canary is no slower than stable, either
     * side's request is as likely to be over it, however well the bound
     * was estimated)
     */

    cs_window_add(&ev->v[CS_STABLE], &m->delta[CS_STABLE]);
    cs_window_add(&ev->v[CS_CANARY], &m->delta[CS_CANARY]);

    /* the shadow's comparisons, summed over the fleet as the requests */
    cs_shadow_add(&ev->shadow, &m->shadow_delta);

    /*
     * the module adds to compared before matched: a comparison read
     * between the two at the stage's start lands its matched alone
     */
    if (ev->shadow.matched > ev->shadow.compared) {
        ev->shadow.matched = ev->shadow.compared;
    }
}


/*
 * Latency's bad event: a request slower than stable's p99 x
 * latency_p99_ratio_max (and at least + latency_p99_min_delta_ms), at a
 * bucket bound; 0 while stable has too few requests for a p99.
 */

uint64_t
cs_slow_bound_us(const cs_plan_t *plan, const uint64_t *stable)
{
    double    p99, by_ratio, by_delta;
    uint64_t  bound;

    if (cs_hist_total(stable) < CS_LATENCY_MIN_STABLE) {
        return 0;
    }

    p99 = cs_hist_quantile_ms(stable, 0.99);

    by_ratio = p99 * plan->slo.latency_p99_ratio_max;
    by_delta = p99 + plan->slo.latency_p99_min_delta_ms;

    bound = (uint64_t) ((by_ratio > by_delta ? by_ratio : by_delta) * 1000);

    return bound ? bound : 1;
}


/*
 * The same for p95: a request slower than stable's p95 x
 * latency_p95_ratio_max (and at least + latency_p99_min_delta_ms, the
 * smallest difference in ms worth a rollback, for both quantiles); 0
 * when the SLO has no latency_p95_ratio_max.
 */

uint64_t
cs_slow_bound95_us(const cs_plan_t *plan, const uint64_t *stable)
{
    double    p95, by_ratio, by_delta;
    uint64_t  bound;

    if (plan->slo.latency_p95_ratio_max <= 0
        || cs_hist_total(stable) < CS_LATENCY_MIN_STABLE)
    {
        return 0;
    }

    p95 = cs_hist_quantile_ms(stable, 0.95);

    by_ratio = p95 * plan->slo.latency_p95_ratio_max;
    by_delta = p95 + plan->slo.latency_p99_min_delta_ms;

    bound = (uint64_t) ((by_ratio > by_delta ? by_ratio : by_delta) * 1000);

    return bound ? bound : 1;
}


char *
cs_evidence_format(const cs_evidence_t *ev)
{
    char    *buf;
    size_t   n, size;

    /* two full histograms of "322:18446744073709551615," at most */
    size = 2048 + 2 * CS_HIST_BUCKETS * 26 + CS_SHADOW_TEXT_MAX;

    buf = malloc(size);
    if (buf == NULL) {
        return NULL;
    }

    n = (size_t) snprintf(buf, size, "%d %d %.17g", CS_EVIDENCE_VERSION,
                          ev->looked, ev->look_p);
    n = cs_format_seq(buf, size, n, 'e', &ev->errors);
    n = cs_format_seq(buf, size, n, 'l', &ev->latency);
    n = cs_window_format(buf, size, n, 's', &ev->v[CS_STABLE]);
    n = cs_window_format(buf, size, n, 'c', &ev->v[CS_CANARY]);
    n = cs_format_seq(buf, size, n, 'q', &ev->latency95);
    (void) cs_shadow_format(buf, size, n, &ev->shadow);

    return buf;
}


static size_t
cs_format_seq(char *buf, size_t size, size_t n, char tag, const cs_seq_t *s)
{
    size_t  i;

    n += (size_t) snprintf(buf + n, size - n,
                           " %c %llu %llu %llu %llu %llu %.17g %.17g %.17g"
                           " %.17g", tag,
                           (unsigned long long) s->events[0],
                           (unsigned long long) s->events[1],
                           (unsigned long long) s->requests[0],
                           (unsigned long long) s->requests[1],
                           (unsigned long long) s->intervals, s->sq,
                           s->strat[0], s->strat[1], s->strat[2]);

    for (i = 0; i < CS_SEQ_GRID && n < size; i++) {
        n += (size_t) snprintf(buf + n, size - n, " %.17g", s->log_lr[i]);
    }

    if (n < size) {
        n += (size_t) snprintf(buf + n, size - n, " %.17g", s->log_m_max);
    }

    return n < size ? n : size - 1;
}


size_t
cs_window_format(char *buf, size_t size, size_t n, char tag,
    const cs_window_t *w)
{
    size_t  i, first;

    n += (size_t) snprintf(buf + n, size - n, " %c %llu %llu %llu ", tag,
                           (unsigned long long) w->requests,
                           (unsigned long long) w->errors_5xx,
                           (unsigned long long) w->upstream_errors);
    first = n;

    for (i = 0; i < CS_HIST_BUCKETS && n < size; i++) {
        if (w->counts[i]) {
            n += (size_t) snprintf(buf + n, size - n, "%s%zu:%llu",
                                   n == first ? "" : ",", i,
                                   (unsigned long long) w->counts[i]);
        }
    }

    if (n == first && n < size) {
        n += (size_t) snprintf(buf + n, size - n, "-");
    }

    return n < size ? n : size - 1;
}


int
cs_evidence_parse(cs_evidence_t *ev, const char *text, char *err,
    size_t errlen)
{
    double     d;
    uint64_t   version, looked;
    cs_scan_t  sc;

    memset(ev, 0, sizeof(cs_evidence_t));
    err[0] = '\0';

    sc.p = text;
    sc.err = err;
    sc.errlen = errlen;

    if (cs_scan_uint(&sc, &version) != 0
        || (version != CS_EVIDENCE_VERSION && version != 4
            && version != 3))
    {
        return cs_scan_fail(&sc, "version");
    }

    sc.version = version;

    /* looked is -1, 0 or 1 */
    while (*sc.p == ' ') {
        sc.p++;
    }

    if (sc.p[0] == '-' && sc.p[1] == '1') {
        ev->looked = -1;
        sc.p += 2;

    } else if (cs_scan_uint(&sc, &looked) != 0 || looked > 1) {
        return cs_scan_fail(&sc, "look");

    } else {
        ev->looked = (int) looked;
    }

    if (cs_scan_double(&sc, &d) != 0 || !(d >= 0 && d <= 1)) {
        return cs_scan_fail(&sc, "look p-value");
    }

    ev->look_p = d;

    if (cs_scan_seq(&sc, 'e', &ev->errors) != 0
        || cs_scan_seq(&sc, 'l', &ev->latency) != 0
        || cs_scan_window(&sc, 's', &ev->v[CS_STABLE]) != 0
        || cs_scan_window(&sc, 'c', &ev->v[CS_CANARY]) != 0)
    {
        memset(ev, 0, sizeof(cs_evidence_t));
        return -1;
    }

    if (version >= 5 && cs_scan_seq(&sc, 'q', &ev->latency95) != 0) {
        memset(ev, 0, sizeof(cs_evidence_t));
        return -1;
    }

    /* the shadow's counters: written only when there are some */
    if (sc.p[0] == ' ' && sc.p[1] == 'h') {
        sc.p = cs_shadow_parse(sc.p, &ev->shadow);

        if (sc.p == NULL) {
            memset(ev, 0, sizeof(cs_evidence_t));
            snprintf(err, errlen, "evidence: the shadow's counters");
            return -1;
        }
    }

    if (*sc.p != '\0') {
        memset(ev, 0, sizeof(cs_evidence_t));
        return cs_scan_fail(&sc, "the end");
    }

    return 0;
}


size_t
cs_shadow_format(char *buf, size_t size, size_t n, const cs_shadow_t *sh)
{
    if (sh->requests == 0 && sh->compared == 0 && sh->skipped == 0
        && sh->canary_errors == 0 && sh->timeouts == 0)
    {
        return n;
    }

    n += (size_t) snprintf(buf + n, size - n,
                           " h %llu %llu %llu %llu %llu %llu %llu %llu",
                           (unsigned long long) sh->requests,
                           (unsigned long long) sh->compared,
                           (unsigned long long) sh->matched,
                           (unsigned long long) sh->mismatched_status,
                           (unsigned long long) sh->mismatched_body,
                           (unsigned long long) sh->canary_errors,
                           (unsigned long long) sh->timeouts,
                           (unsigned long long) sh->skipped);

    return n < size ? n : size - 1;
}


const char *
cs_shadow_parse(const char *p, cs_shadow_t *sh)
{
    char       err[8];
    cs_scan_t  sc;

    memset(sh, 0, sizeof(cs_shadow_t));

    sc.p = p;
    sc.err = err;
    sc.errlen = sizeof(err);
    sc.version = CS_EVIDENCE_VERSION;

    if (cs_scan_tag(&sc, 'h') != 0
        || cs_scan_uint(&sc, &sh->requests) != 0
        || cs_scan_uint(&sc, &sh->compared) != 0
        || cs_scan_uint(&sc, &sh->matched) != 0
        || cs_scan_uint(&sc, &sh->mismatched_status) != 0
        || cs_scan_uint(&sc, &sh->mismatched_body) != 0
        || cs_scan_uint(&sc, &sh->canary_errors) != 0
        || cs_scan_uint(&sc, &sh->timeouts) != 0
        || cs_scan_uint(&sc, &sh->skipped) != 0
        || sh->compared > CS_EVIDENCE_COUNT_MAX
        || sh->matched > sh->compared)
    {
        memset(sh, 0, sizeof(cs_shadow_t));
        return NULL;
    }

    return sc.p;
}


const char *
cs_window_parse(const char *p, char tag, cs_window_t *w)
{
    char       err[8];
    cs_scan_t  sc;

    memset(w, 0, sizeof(cs_window_t));

    sc.p = p;
    sc.err = err;
    sc.errlen = sizeof(err);
    sc.version = CS_EVIDENCE_VERSION;
    err[0] = '\0';

    return cs_scan_window(&sc, tag, w) == 0 ? sc.p : NULL;
}


static int
cs_scan_seq(cs_scan_t *sc, char tag, cs_seq_t *s)
{
    size_t  i;
    double  lt, lm;

    if (cs_scan_tag(sc, tag) != 0
        || cs_scan_uint(sc, &s->events[0]) != 0
        || cs_scan_uint(sc, &s->events[1]) != 0
        || cs_scan_uint(sc, &s->requests[0]) != 0
        || cs_scan_uint(sc, &s->requests[1]) != 0
        || cs_scan_uint(sc, &s->intervals) != 0
        || cs_scan_double(sc, &s->sq) != 0
        || cs_scan_double(sc, &s->strat[0]) != 0
        || cs_scan_double(sc, &s->strat[1]) != 0
        || cs_scan_double(sc, &s->strat[2]) != 0
        || s->sq < 0 || s->strat[0] < 0 || s->strat[1] < 0
        || s->strat[2] < 0 || s->strat[0] > (double) s->events[1])
    {
        return cs_scan_fail(sc, "a test's counts");
    }

    if (s->requests[0] > CS_EVIDENCE_COUNT_MAX
        || s->requests[1] > CS_EVIDENCE_COUNT_MAX
        || s->events[0] > s->requests[0] || s->events[1] > s->requests[1])
    {
        return cs_scan_fail(sc, "a test's counts");
    }

    /*
     * each interval adds xc log(theta) - x log(1 + (theta - 1) s), which
     * lies in [-xs log(theta), xc log(theta)]: a ratio outside what its
     * own counts allow was not written by this sidecar
     */
    for (i = 0; i < CS_SEQ_GRID; i++) {
        lt = log(cs_seq_theta[i]);

        if (cs_scan_double(sc, &s->log_lr[i]) != 0
            || s->log_lr[i] > (double) s->events[1] * lt * (1 + 1e-9) + 1e-9
            || s->log_lr[i] < -(double) s->events[0] * lt * (1 + 1e-9) - 1e-9)
        {
            return cs_scan_fail(sc, "a test's likelihood ratio");
        }
    }

    /* the most log M: at least today's, at most what the events allow */
    lm = cs_seq_log_m(s);

    if (sc->version == 3) {
        s->log_m_max = lm > 0 ? lm : 0;
        return 0;
    }

    if (cs_scan_double(sc, &s->log_m_max) != 0
        || s->log_m_max < 0 || s->log_m_max < lm - 1e-9
        || s->log_m_max > (double) s->events[1]
                          * log(cs_seq_theta[CS_SEQ_GRID - 1]) * (1 + 1e-9)
                          + 1e-9)
    {
        return cs_scan_fail(sc, "a test's most likelihood ratio");
    }

    return 0;
}


static int
cs_scan_window(cs_scan_t *sc, char tag, cs_window_t *w)
{
    char      *end;
    int64_t    last;
    uint64_t   i, count;

    last = -1;

    if (cs_scan_tag(sc, tag) != 0
        || cs_scan_uint(sc, &w->requests) != 0
        || cs_scan_uint(sc, &w->errors_5xx) != 0
        || cs_scan_uint(sc, &w->upstream_errors) != 0
        || *sc->p != ' '
        || w->requests > CS_EVIDENCE_COUNT_MAX
        || w->errors_5xx + w->upstream_errors > w->requests)
    {
        return cs_scan_fail(sc, "a variant's counts");
    }

    sc->p++;

    if (*sc->p == '-') {
        sc->p++;
        return 0;
    }

    for ( ;; ) {
        if (*sc->p < '0' || *sc->p > '9') {
            return cs_scan_fail(sc, "a bucket");
        }

        errno = 0;
        i = strtoull(sc->p, &end, 10);

        if (errno || *end != ':' || i >= CS_HIST_BUCKETS
            || end[1] < '0' || end[1] > '9')
        {
            return cs_scan_fail(sc, "a bucket");
        }

        sc->p = end + 1;
        errno = 0;
        count = strtoull(sc->p, &end, 10);

        if (errno) {
            return cs_scan_fail(sc, "a bucket's count");
        }

        if (count > CS_EVIDENCE_COUNT_MAX
            || (last >= 0 && i <= (uint64_t) last))
        {
            return cs_scan_fail(sc, "a bucket's count");
        }

        w->counts[i] = count;
        last = (int64_t) i;
        sc->p = end;

        if (*sc->p != ',') {
            return 0;
        }

        sc->p++;
    }
}


static int
cs_scan_tag(cs_scan_t *sc, char tag)
{
    if (sc->p[0] != ' ' || sc->p[1] != tag) {
        return -1;
    }

    sc->p += 2;

    return 0;
}


static int
cs_scan_uint(cs_scan_t *sc, uint64_t *out)
{
    char  *end;

    while (*sc->p == ' ') {
        sc->p++;
    }

    if (*sc->p < '0' || *sc->p > '9') {
        return -1;
    }

    errno = 0;
    *out = strtoull(sc->p, &end, 10);

    if (errno) {
        return -1;
    }

    sc->p = end;

    return 0;
}


static int
cs_scan_double(cs_scan_t *sc, double *out)
{
    char  *end;

    while (*sc->p == ' ') {
        sc->p++;
    }

    if (*sc->p == '\0') {
        return -1;
    }

    errno = 0;
    *out = strtod(sc->p, &end);

    /* no inf or nan: a log ratio is finite whatever the counts */
    if (errno || end == sc->p || !(*out > -1e300 && *out < 1e300)) {
        return -1;
    }

    sc->p = end;

    return 0;
}


static int
cs_scan_fail(cs_scan_t *sc, const char *what)
{
    if (sc->err[0] == '\0') {
        snprintf(sc->err, sc->errlen, "evidence: bad %s at \"%.24s\"",
                 what, sc->p);
    }

    return -1;
}
