
/*
 * A status report (ngx_http_canary_report_t) filled from fuzz bytes, for
 * the renderer targets: names and texts of any bytes (NUL, quotes,
 * backslashes, newlines, high bytes), states, counters and histograms.
 * Every string is a heap block of exactly its size.
 *
 * Kept within what the zone can hold, so that a failed check is a bug
 * of the renderer and not of the builder: generation below 10^18 (the
 * parser's 18 digits), counters below 2^48, split names 1 to 63 bytes
 * and different from each other (nginx.conf refuses a duplicate), a
 * histogram's count the sum of its buckets, texts of at most
 * NGX_HTTP_CANARY_STATE_LEN bytes, a guard reason a C string of at most
 * NGX_HTTP_CANARY_REASON_LEN bytes, the Redis error at most
 * NGX_HTTP_CANARY_ERROR_LEN bytes (ngx_http_canary_limits.h).
 */


#ifndef _NGX_HTTP_CANARY_FUZZ_REPORT_H_INCLUDED_
#define _NGX_HTTP_CANARY_FUZZ_REPORT_H_INCLUDED_


#include "fuzz_input.h"

#include "ngx_http_canary_parse.h"
#include "ngx_http_canary_report.h"


#define FUZZ_SPLITS_MAX   4
#define FUZZ_NAME_MAX     (NGX_HTTP_CANARY_NAME_LEN - 1)
#define FUZZ_COUNTER_MAX  (((uint64_t) 1 << 48) - 1)


typedef struct {
    ngx_http_canary_report_t          rep;
    ngx_http_canary_split_report_t    splits[FUZZ_SPLITS_MAX];
    void                             *blocks[256];
    size_t                            nblocks;
} fuzz_report_t;


/*
 * min > 0: a name from nginx.conf (a split, a cohort, an upstream), of
 * at least min bytes and without NUL (a JSON object key with "\u0000" is
 * valid JSON, but jansson refuses it even with JSON_ALLOW_NUL)
 */
static inline void
fuzz_report_bytes(fuzz_report_t *fr, fuzz_in_t *in, size_t max, size_t min,
    ngx_http_canary_bytes_t *b)
{
    size_t   i, n;
    uint8_t  tmp[256];

    n = fuzz_in_bytes(in, tmp, max);

    while (n < min) {
        tmp[n] = (uint8_t) ('a' + n);
        n++;
    }

    for (i = 0; min && i < n; i++) {
        if (tmp[i] == 0) {
            tmp[i] = '0';
        }
    }

    b->data = fuzz_dup(tmp, n);
    b->len = n;

    if (fr->nblocks < sizeof(fr->blocks) / sizeof(void *)) {
        fr->blocks[fr->nblocks++] = (void *) b->data;
    }
}


static inline size_t
fuzz_report_text(fuzz_in_t *in, unsigned char *buf, size_t max)
{
    return fuzz_in_bytes(in, buf, max);
}


static inline uint64_t
fuzz_report_counter(fuzz_in_t *in)
{
    uint8_t  width;

    /* mostly small numbers, sometimes large ones */
    width = fuzz_in_u8(in) % 7;

    return fuzz_in_uint(in, width) & FUZZ_COUNTER_MAX;
}


static inline void
fuzz_report_hist(fuzz_in_t *in, ngx_http_canary_hist_t *h)
{
    size_t    k, n, b;

    memset(h, 0, sizeof(*h));

    n = fuzz_in_u8(in) % 9;

    for (k = 0; k < n; k++) {
        b = fuzz_in_uint(in, 2) % NGX_HTTP_CANARY_HIST_BUCKETS;
        h->counts[b] += fuzz_report_counter(in) >> 8;
    }

    for (b = 0; b < NGX_HTTP_CANARY_HIST_BUCKETS; b++) {
        h->count += h->counts[b];
    }

    h->sum_us = fuzz_report_counter(in);
}


static inline void
fuzz_report_build(fuzz_report_t *fr, const uint8_t *data, size_t size)
{
    size_t                             i, j, k, v, c;
    fuzz_in_t                          in;
    ngx_http_canary_report_t          *rep;
    ngx_http_canary_split_report_t    *s;
    ngx_http_canary_variant_report_t  *vr;
    ngx_http_canary_redis_report_t    *r;

    memset(fr, 0, sizeof(*fr));
    fuzz_in_init(&in, data, size);

    rep = &fr->rep;
    rep->splits = fr->splits;

    rep->now = (time_t) (int32_t) fuzz_in_uint(&in, 4);
    rep->zone_size = (size_t) fuzz_report_counter(&in);
    rep->zone_used = (size_t) fuzz_report_counter(&in);
    fuzz_report_bytes(fr, &in, 64, 0, &rep->zone_name);

    r = &rep->redis;
    r->configured = fuzz_in_u8(&in) & 1;
    r->connected = fuzz_in_u8(&in) & 1;
    fuzz_report_bytes(fr, &in, 64, 0, &r->address);
    fuzz_report_bytes(fr, &in, 64, 0, &r->prefix);
    r->last_sync = (time_t) (int32_t) fuzz_in_uint(&in, 4);
    r->error_time = (time_t) (int32_t) fuzz_in_uint(&in, 4);
    r->error_len = fuzz_report_text(&in, r->error, sizeof(r->error));

    rep->nsplits = fuzz_in_u8(&in) % (FUZZ_SPLITS_MAX + 1);

    for (i = 0; i < rep->nsplits; i++) {
        s = &fr->splits[i];

        fuzz_report_bytes(fr, &in, FUZZ_NAME_MAX, 1, &s->name);

        /* nginx.conf has each split once: make the name unique */
        for (j = 0; j < i; j++) {
            if (fr->splits[j].name.len == s->name.len
                && memcmp(fr->splits[j].name.data, s->name.data,
                          s->name.len) == 0)
            {
                ((uint8_t *) s->name.data)[0] += ((uint8_t *) s->name.data)[0]
                                                  == 0xff ? 2 : 1;
                j = (size_t) -1;
            }
        }

        s->weight = (uint32_t) fuzz_in_uint(&in, 2);    /* may be > 10000 */
        s->enabled = fuzz_in_u8(&in) & 1;
        s->generation = fuzz_in_uint(&in, 8) % 1000000000000000000ULL;
        s->source = fuzz_in_u8(&in) & 1 ? "redis" : "conf";
        s->state_len = fuzz_report_text(&in, s->state,
                                        sizeof(s->state));
        s->updated_by_len = fuzz_report_text(&in, s->updated_by,
                                             sizeof(s->updated_by));
        s->updated_at_len = fuzz_report_text(&in, s->updated_at,
                                             sizeof(s->updated_at));
        s->pins[0] = fuzz_report_counter(&in);
        s->pins[1] = fuzz_report_counter(&in);

        s->ncohorts = fuzz_in_u8(&in) % (NGX_HTTP_CANARY_REPORT_COHORTS + 1);

        for (c = 0; c < s->ncohorts; c++) {
            fuzz_report_bytes(fr, &in, 32, 1, &s->cohorts[c].name);
            s->cohorts[c].weight = (uint32_t) fuzz_in_uint(&in, 2);

            /* nginx.conf has each cohort of a split once */
            for (k = 0; k < c; k++) {
                if (s->cohorts[k].name.len == s->cohorts[c].name.len
                    && memcmp(s->cohorts[k].name.data,
                              s->cohorts[c].name.data,
                              s->cohorts[c].name.len) == 0)
                {
                    ((uint8_t *) s->cohorts[c].name.data)[0]
                        += ((uint8_t *) s->cohorts[c].name.data)[0] == 0xff
                           ? 2 : 1;
                    k = (size_t) -1;
                }
            }
        }

        s->guard.configured = fuzz_in_u8(&in) & 1;
        s->guard.tripped = fuzz_in_u8(&in) & 1;
        s->guard.since = (time_t) (int32_t) fuzz_in_uint(&in, 4);
        fuzz_in_bytes(&in, (uint8_t *) s->guard.reason,
                      sizeof(s->guard.reason) - 1);

        for (v = 0; v < 2; v++) {
            vr = &s->variants[v];

            fuzz_report_bytes(fr, &in, 64, 1, &vr->upstream);

            for (k = 0; k < 5; k++) {
                vr->responses[k] = fuzz_report_counter(&in);
            }

            vr->requests = fuzz_report_counter(&in);
            vr->upstream_errors = fuzz_report_counter(&in);

            fuzz_report_hist(&in, &vr->latency);
            fuzz_report_hist(&in, &vr->upstream_latency);

            vr->window.seconds = fuzz_in_u8(&in) % 61;
            vr->window.requests = fuzz_in_uint(&in, 4);
            vr->window.responses_5xx = fuzz_in_uint(&in, 4);
            vr->window.upstream_errors = fuzz_in_uint(&in, 4);
            fuzz_report_hist(&in, &vr->window.latency);
        }

        /* the guard's window now: read last, so older inputs keep
         * their meaning */
        s->guard.now_seconds = fuzz_in_u8(&in) % 61;

        for (v = 0; v < 2; v++) {
            s->guard.now[v].requests = fuzz_in_uint(&in, 4);
            s->guard.now[v].errors = fuzz_in_uint(&in, 4);
            s->guard.now[v].upstream_errors = fuzz_in_uint(&in, 4);
            s->guard.now[v].p99_us = fuzz_in_uint(&in, 4);
        }

        /* shadow traffic, read after the rest for the same reason */
        s->shadow.configured = fuzz_in_u8(&in) & 1;
        s->shadow.percent = (uint32_t) fuzz_in_uint(&in, 2) % 10001;
        s->shadow.requests = fuzz_report_counter(&in);
        s->shadow.compared = fuzz_report_counter(&in);
        s->shadow.matched = fuzz_report_counter(&in);
        s->shadow.mismatched_status = fuzz_report_counter(&in);
        s->shadow.mismatched_body = fuzz_report_counter(&in);
        s->shadow.canary_errors = fuzz_report_counter(&in);
        s->shadow.timeouts = fuzz_report_counter(&in);
        s->shadow.skipped_method = fuzz_report_counter(&in);
        s->shadow.skipped_body_too_large = fuzz_report_counter(&in);
        s->shadow.skipped_in_flight = fuzz_report_counter(&in);
        s->shadow.skipped_stable_error = fuzz_report_counter(&in);
        s->shadow.nexamples = fuzz_in_u8(&in)
                              % (NGX_HTTP_CANARY_SHADOW_EXAMPLES + 1);

        for (c = 0; c < s->shadow.nexamples; c++) {
            s->shadow.examples[c].uri_len = fuzz_in_bytes(&in,
                                                s->shadow.examples[c].uri,
                                                NGX_HTTP_CANARY_SHADOW_URI_LEN);
            s->shadow.examples[c].stable_status = fuzz_in_uint(&in, 2);
            s->shadow.examples[c].canary_status = fuzz_in_uint(&in, 2);
            s->shadow.examples[c].stable_bytes = fuzz_report_counter(&in);
            s->shadow.examples[c].canary_bytes = fuzz_report_counter(&in);
            s->shadow.examples[c].at = (time_t) fuzz_in_uint(&in, 4);
        }
    }
}


static inline void
fuzz_report_free(fuzz_report_t *fr)
{
    size_t  i;

    for (i = 0; i < fr->nblocks; i++) {
        free(fr->blocks[i]);
    }
}


/*
 * The renderer's output whole, as the status handler gets it: a buffer
 * of the estimated size, then one of exactly the size counted (a heap
 * block of that size, so ASan sees a byte written past it); the size
 * counted must be what was written, in both when the first was big
 * enough, and the same bytes.  When check_short is set, a third pass
 * into a buffer of short_size bytes (a heap block of exactly that size)
 * must write a prefix of the output and count the same size.  Returns
 * the output (malloc()ed, with a terminating zero) and its length in
 * *len.
 */
static inline char *
fuzz_render(void (*render)(ngx_http_canary_out_t *,
    const ngx_http_canary_report_t *), const ngx_http_canary_report_t *rep,
    int check_short, size_t short_size, size_t *len)
{
    char                   *first, *full, *part;
    size_t                  size, need;
    ngx_http_canary_out_t   o;

    size = ngx_http_canary_render_estimate(rep->nsplits);

    first = malloc(size);
    if (first == NULL) {
        abort();
    }

    o.pos = (unsigned char *) first;
    o.end = (unsigned char *) first + size;
    o.need = 0;
    render(&o, rep);

    need = o.need;

    fuzz_assert(need > size || o.pos == (unsigned char *) first + need,
                "wrote %zu bytes into %zu, counted %zu",
                (size_t) (o.pos - (unsigned char *) first), size, need);

    /* exactly the size counted: a last piece that just fits is kept */
    full = malloc(need ? need : 1);
    if (full == NULL) {
        abort();
    }

    o.pos = (unsigned char *) full;
    o.end = (unsigned char *) full + need;
    o.need = 0;
    render(&o, rep);

    fuzz_assert(o.need == need && o.pos == (unsigned char *) full + need,
                "an exact buffer: wrote %zu bytes, counted %zu, not %zu",
                (size_t) (o.pos - (unsigned char *) full), o.need, need);
    fuzz_assert(need > size || memcmp(first, full, need) == 0,
                "an exact buffer got other bytes");

    free(first);

    full = realloc(full, need + 1);
    if (full == NULL) {
        abort();
    }

    full[need] = '\0';

    if (check_short) {
        /* too short a buffer: the same count, a prefix, nothing past it */
        short_size %= need + 1;

        part = malloc(short_size ? short_size : 1);
        if (part == NULL) {
            abort();
        }

        o.pos = (unsigned char *) part;
        o.end = (unsigned char *) part + short_size;
        o.need = 0;
        render(&o, rep);

        fuzz_assert(o.need == need, "a short buffer counted %zu, not %zu",
                    o.need, need);
        fuzz_assert(memcmp(part, full,
                           (size_t) (o.pos - (unsigned char *) part)) == 0,
                    "a short buffer got other bytes than a prefix");

        free(part);
    }

    *len = need;

    return full;
}


#endif /* _NGX_HTTP_CANARY_FUZZ_REPORT_H_INCLUDED_ */
