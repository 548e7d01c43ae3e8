
/*
 * A snapshot of the zone, taken without locks and then rendered: the
 * renderers (JSON, Prometheus) see only these plain structures, so they
 * compile and are tested without the nginx runtime.
 */


#ifndef _NGX_HTTP_CANARY_REPORT_H_INCLUDED_
#define _NGX_HTTP_CANARY_REPORT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "ngx_http_canary_guard_rule.h"
#include "ngx_http_canary_histogram.h"
#include "ngx_http_canary_limits.h"


#define NGX_HTTP_CANARY_REPORT_COHORTS  NGX_HTTP_CANARY_COHORTS_MAX


typedef struct {
    const unsigned char              *data;
    size_t                            len;
} ngx_http_canary_bytes_t;


typedef struct {
    uint64_t                          counts[NGX_HTTP_CANARY_HIST_BUCKETS];
    uint64_t                          sum_us;
    uint64_t                          count;
} ngx_http_canary_hist_t;


typedef struct {
    ngx_http_canary_bytes_t           upstream;

    uint64_t                          requests;
    uint64_t                          responses[5];     /* 1xx .. 5xx */
    uint64_t                          upstream_errors;

    ngx_http_canary_hist_t            latency;          /* request time */
    ngx_http_canary_hist_t            upstream_latency;

    struct {
        unsigned                      seconds;
        uint64_t                      requests;
        uint64_t                      responses_5xx;
        uint64_t                      upstream_errors;
        ngx_http_canary_hist_t        latency;
    } window;
} ngx_http_canary_variant_report_t;


typedef struct {
    ngx_http_canary_bytes_t           name;
    uint32_t                          weight;
    /* the requests its weight decided, per variant (stable, canary) */
    uint64_t                          requests[2];
    uint64_t                          responses_5xx[2];
} ngx_http_canary_cohort_report_t;


typedef struct {
    int                               tripped;
    int                               configured;
    time_t                            since;
    char                              reason[NGX_HTTP_CANARY_REASON_LEN
                                                 + 1];
    const char                       *stays_until; /* ends a trip */
    ngx_http_canary_guard_limits_t    limits;
    int                               seen;       /* window[] is set */
    ngx_http_canary_guard_window_t    window[2];  /* stable, canary */

    /* the guard's own window now, as its next check counts it */
    unsigned                          now_seconds;
    ngx_http_canary_guard_window_t    now[2];     /* stable, canary */
} ngx_http_canary_guard_report_t;


/* a split's shadow traffic (splits.NAME.shadow) */
typedef struct {
    unsigned char                     uri[NGX_HTTP_CANARY_SHADOW_URI_LEN];
    size_t                            uri_len;
    unsigned                          stable_status;
    unsigned                          canary_status;
    uint64_t                          stable_bytes;
    uint64_t                          canary_bytes;
    time_t                            at;
} ngx_http_canary_shadow_example_t;


typedef struct {
    int                               configured;
    uint32_t                          percent;          /* hundredths */
    uint64_t                          requests;
    uint64_t                          compared;
    uint64_t                          matched;
    uint64_t                          mismatched_status;
    uint64_t                          mismatched_body;
    uint64_t                          canary_errors;
    uint64_t                          timeouts;
    uint64_t                          skipped_method;
    uint64_t                          skipped_body_too_large;
    uint64_t                          skipped_in_flight;
    uint64_t                          skipped_stable_error;
    size_t                            nexamples;        /* newest first */
    ngx_http_canary_shadow_example_t  examples[NGX_HTTP_CANARY_SHADOW_EXAMPLES];
} ngx_http_canary_shadow_report_t;


typedef struct {
    ngx_http_canary_bytes_t           name;
    uint32_t                          weight;           /* hundredths */
    int                               enabled;
    uint64_t                          generation;
    time_t                            created;          /* counters since */
    const char                       *source;           /* conf, redis */
    unsigned char                     state[NGX_HTTP_CANARY_STATE_LEN];
    size_t                            state_len;
    unsigned char                     updated_by[NGX_HTTP_CANARY_STATE_LEN];
    size_t                            updated_by_len;
    unsigned char                     updated_at[NGX_HTTP_CANARY_STATE_LEN];
    size_t                            updated_at_len;
    uint64_t                          pins[2];          /* stable, canary */
    int                               rolled_back;

    size_t                            ncohorts;
    ngx_http_canary_cohort_report_t   cohorts[NGX_HTTP_CANARY_REPORT_COHORTS];

    ngx_http_canary_guard_report_t    guard;

    ngx_http_canary_variant_report_t  variants[2];      /* stable, canary */

    ngx_http_canary_shadow_report_t   shadow;
} ngx_http_canary_split_report_t;


typedef struct {
    int                               configured;
    int                               connected;
    ngx_http_canary_bytes_t           address;      /* sentinel=: the
                                                       master's, if known */
    ngx_http_canary_bytes_t           master;       /* master=, or empty */
    unsigned char                     master_address[
                                          NGX_HTTP_CANARY_ADDRESS_LEN];
    ngx_http_canary_bytes_t           prefix;
    ngx_http_canary_bytes_t           node;     /* in the fleet's records */
    time_t                            last_sync;
    time_t                            error_time;
    unsigned char                     error[NGX_HTTP_CANARY_ERROR_LEN];
    size_t                            error_len;
} ngx_http_canary_redis_report_t;


typedef struct {
    time_t                            now;
    ngx_http_canary_redis_report_t    redis;
    ngx_http_canary_bytes_t           zone_name;
    size_t                            zone_size;
    size_t                            zone_used;

    size_t                            nsplits;
    ngx_http_canary_split_report_t   *splits;
} ngx_http_canary_report_t;


/* this nginx, as its node records (the fleet in Redis) name it */
typedef struct {
    ngx_http_canary_bytes_t           node;
    ngx_http_canary_bytes_t           instance;
    int64_t                           pid;
    uint64_t                          interval_ms;
} ngx_http_canary_node_report_t;


/*
 * An output buffer that never overflows: what does not fit is counted in
 * "need", so the caller can allocate that much and render again.  Once a
 * piece did not fit, nothing more is written: what was is a prefix.
 */
typedef struct {
    unsigned char                    *pos;
    unsigned char                    *end;
    size_t                            need;
} ngx_http_canary_out_t;


/*
 * The renderers' numbers are written by hand, as ngx_sprintf() does:
 * _uint and _int as "%llu" and "%lld"; _uints as "%llu" of each of n,
 * comma-separated; _fixed(n, d) as "%llu.%0*llu" of
 * n / 10^d and n % 10^d (d 0 to 9; no point with 0); _double(x, d) as
 * printf's "%.*f", byte for byte (the exact value of x, rounded half to
 * even, as glibc does).
 */
void ngx_http_canary_out_uint(ngx_http_canary_out_t *out, uint64_t n);
void ngx_http_canary_out_int(ngx_http_canary_out_t *out, int64_t n);
void ngx_http_canary_out_uints(ngx_http_canary_out_t *out, const uint64_t *v,
    size_t n);
void ngx_http_canary_out_fixed(ngx_http_canary_out_t *out, uint64_t n,
    unsigned digits);
void ngx_http_canary_out_double(ngx_http_canary_out_t *out, double x,
    unsigned digits);
void ngx_http_canary_out_cstr(ngx_http_canary_out_t *out, const char *s);

void ngx_http_canary_out_printf(ngx_http_canary_out_t *out,
    const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ngx_http_canary_out_json_string(ngx_http_canary_out_t *out,
    const unsigned char *p, size_t len);
void ngx_http_canary_out_label_value(ngx_http_canary_out_t *out,
    const unsigned char *p, size_t len);

void ngx_http_canary_render_json(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep);
void ngx_http_canary_render_prometheus(ngx_http_canary_out_t *out,
    const ngx_http_canary_report_t *rep);

/*
 * A node's record of one split (ngx_http_canary_contract.h); the caller
 * writes none longer than NGX_HTTP_CANARY_NODE_RECORD_MAX.
 */
void ngx_http_canary_render_node(ngx_http_canary_out_t *out,
    const ngx_http_canary_node_report_t *node,
    const ngx_http_canary_split_report_t *s);

/* bytes a rendering of nsplits splits takes at most, to size the buffer */
size_t ngx_http_canary_render_estimate(size_t nsplits);


/* the renderers' strings: copied as they are */

static inline void
ngx_http_canary_out_bytes(ngx_http_canary_out_t *out, const void *p,
    size_t len)
{
    out->need += len;

    if (len == 0) {
        return;
    }

    if (len <= (size_t) (out->end - out->pos)) {
        memcpy(out->pos, p, len);
        out->pos += len;
        return;
    }

    /* did not fit: stop writing, keep counting */
    out->end = out->pos;
}


#define ngx_http_canary_out_literal(out, s)                                   \
    ngx_http_canary_out_bytes(out, s, sizeof(s) - 1)


#endif /* _NGX_HTTP_CANARY_REPORT_H_INCLUDED_ */
