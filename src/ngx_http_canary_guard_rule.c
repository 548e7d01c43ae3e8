
/*
 * The guard's rule, on the numbers of one window.
 */


#include <stdio.h>

#include "ngx_http_canary_guard_rule.h"


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
        && (stable->requests == 0 || crate >= 2 * srate))
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
