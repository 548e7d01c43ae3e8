
/*
 * The guard's rule, on the numbers of one window.
 */


#include <stdio.h>

#include "ngx_http_canary_guard_rule.h"


/*
 * One-sided two-proportion z-test at 99% (z > 2.326): is the canary's
 * error rate worse than stable's beyond chance?  Squared, so no sqrt():
 * (pc - ps)^2 > z^2 p (1 - p) (1/nc + 1/ns), p the pooled rate.  When
 * both sides fail alike (p is 0 or 1) the canary is not worse.
 */

static int
ngx_http_canary_guard_worse(const ngx_http_canary_guard_window_t *stable,
    const ngx_http_canary_guard_window_t *canary)
{
    double  pc, ps, p, d, var;

    if (stable->requests == 0) {
        /* nothing to compare with: the limit alone decides */
        return 1;
    }

    pc = (double) canary->errors / (double) canary->requests;
    ps = (double) stable->errors / (double) stable->requests;
    d = pc - ps;

    if (d <= 0) {
        return 0;
    }

    p = (double) (canary->errors + stable->errors)
        / (double) (canary->requests + stable->requests);

    var = p * (1 - p) * (1 / (double) canary->requests
                         + 1 / (double) stable->requests);

    return d * d > 2.326 * 2.326 * var;
}


int
ngx_http_canary_guard_broken(const ngx_http_canary_guard_limits_t *lim,
    const ngx_http_canary_guard_window_t *stable,
    const ngx_http_canary_guard_window_t *canary, char *why, size_t size)
{
    double  crate, srate;

    if (canary->requests == 0 || canary->requests < lim->min_requests) {
        return 0;
    }

    crate = 100.0 * (double) canary->errors / (double) canary->requests;
    srate = stable->requests
            ? 100.0 * (double) stable->errors / (double) stable->requests
            : 0;

    if (lim->error_rate
        && crate * 100 > lim->error_rate
        && ngx_http_canary_guard_worse(stable, canary))
    {
        snprintf(why, size,
                 "error_rate %.1f%% > %u.%02u%% (stable %.1f%% of %llu) "
                 "over %us, %llu canary requests",
                 crate, lim->error_rate / 100, lim->error_rate % 100, srate,
                 (unsigned long long) stable->requests, lim->window,
                 (unsigned long long) canary->requests);
        return 1;
    }

    if (lim->upstream_errors
        && canary->upstream_errors >= lim->upstream_errors)
    {
        snprintf(why, size,
                 "upstream_errors %llu >= %llu over %us, "
                 "%llu canary requests",
                 (unsigned long long) canary->upstream_errors,
                 (unsigned long long) lim->upstream_errors, lim->window,
                 (unsigned long long) canary->requests);
        return 1;
    }

    if (lim->latency_p99_us && canary->p99_us > lim->latency_p99_us) {
        snprintf(why, size,
                 "latency_p99 %.1fms > %.1fms (stable %.1fms) over %us, "
                 "%llu canary requests",
                 (double) canary->p99_us / 1000,
                 (double) lim->latency_p99_us / 1000,
                 (double) stable->p99_us / 1000, lim->window,
                 (unsigned long long) canary->requests);
        return 1;
    }

    return 0;
}
