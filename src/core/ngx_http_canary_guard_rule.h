
/*
 * The guard's rule: when the canary's window breaks a limit, pull it.
 * Pure C: compiles without the nginx runtime.
 */


#ifndef _NGX_HTTP_CANARY_GUARD_RULE_H_INCLUDED_
#define _NGX_HTTP_CANARY_GUARD_RULE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


typedef struct {
    uint32_t    error_rate;       /* hundredths of a percent, 0: no limit */
    uint64_t    upstream_errors;  /* in the window, 0: no limit */
    uint64_t    latency_p99_us;   /* 0: no limit */
    uint64_t    min_requests;
    unsigned    window;           /* seconds */
} ngx_http_canary_guard_limits_t;


typedef struct {
    uint64_t    requests;
    uint64_t    errors;           /* 5xx and upstream errors */
    uint64_t    upstream_errors;
    uint64_t    p99_us;
} ngx_http_canary_guard_window_t;


/*
 * Returns 1 and writes why (with the numbers) when the canary must be
 * pulled.  Error rate counts only when the canary is also worse than
 * stable over the same window beyond chance (a one-sided two-proportion
 * test at 99%), so an outage of both sides does not trip it.
 */
int ngx_http_canary_guard_broken(const ngx_http_canary_guard_limits_t *lim,
    const ngx_http_canary_guard_window_t *stable,
    const ngx_http_canary_guard_window_t *canary, char *why, size_t size);


#endif /* _NGX_HTTP_CANARY_GUARD_RULE_H_INCLUDED_ */
