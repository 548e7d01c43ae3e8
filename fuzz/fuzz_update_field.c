
/*
 * The fields of a split's Redis hash, as HGETALL returns them, fed one
 * pair at a time into ngx_http_canary_update_field().
 *
 * Input: byte 0 separates pairs, byte 1 separates a field from its
 * value, the rest is the pairs ("\n\tweight\t5\nstate\tramping").  Every
 * field and value is a heap block of exactly its size.  A field may come
 * more than once (a Redis hash has each field once, but a refused value
 * after an accepted one must not undo it).
 *
 * Checked: each result is what the field's grammar says, what was taken
 * is stored exactly (pointers into the value, never copies past it), a
 * refused value changes nothing, and at most NGX_HTTP_CANARY_COHORTS_MAX
 * cohorts are kept.
 */


#include "fuzz_input.h"

#include "ngx_http_canary_parse.h"


#define FUZZ_PAIRS_MAX  64

/* "weight." before a cohort's name */
#define FUZZ_COHORT_LEN  (sizeof(NGX_HTTP_CANARY_FIELD_COHORT) - 1)


static int
is(const uint8_t *f, size_t flen, const char *s)
{
    return flen == strlen(s) && memcmp(f, s, flen) == 0;
}


static int
printable(const uint8_t *v, size_t len)
{
    size_t  i;

    if (len > NGX_HTTP_CANARY_STATE_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (v[i] < 0x20 || v[i] > 0x7e) {
            return 0;
        }
    }

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                     i, k, n, flen, vlen, pl;
    int32_t                    w;
    uint8_t                    psep, fsep;
    uint8_t                   *f[FUZZ_PAIRS_MAX], *v[FUZZ_PAIRS_MAX];
    size_t                     fl[FUZZ_PAIRS_MAX], vl[FUZZ_PAIRS_MAX];
    uint64_t                   gen;
    fuzz_in_t                  in;
    const uint8_t             *piece, *q;
    ngx_http_canary_update_t   u, before;
    ngx_http_canary_field_e    rc, want;

    if (size < 2) {
        return 0;
    }

    fuzz_in_init(&in, data, size);
    psep = fuzz_in_u8(&in);
    fsep = fuzz_in_u8(&in);

    n = 0;

    while (n < FUZZ_PAIRS_MAX && fuzz_in_split(&in, psep, &piece, &pl)) {
        q = memchr(piece, fsep, pl);

        flen = q ? (size_t) (q - piece) : pl;
        vlen = q ? pl - flen - 1 : 0;

        f[n] = fuzz_dup(piece, flen);
        fl[n] = flen;
        v[n] = fuzz_dup(q ? q + 1 : piece + pl, vlen);
        vl[n] = vlen;
        n++;
    }

    memset(&u, 0, sizeof(u));

    for (i = 0; i < n; i++) {
        before = u;

        rc = ngx_http_canary_update_field(&u, f[i], fl[i], v[i], vl[i]);

        /* what the field's grammar says */

        if (is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_WEIGHT)
            || is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_SHADOW))
        {
            want = ngx_http_canary_parse_weight(v[i], vl[i]) >= 0
                   ? NGX_HTTP_CANARY_FIELD_OK
                   : NGX_HTTP_CANARY_FIELD_BAD_VALUE;

        } else if (is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_ENABLED)) {
            want = ngx_http_canary_parse_enabled(v[i], vl[i]) >= 0
                   ? NGX_HTTP_CANARY_FIELD_OK
                   : NGX_HTTP_CANARY_FIELD_BAD_VALUE;

        } else if (is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_GENERATION)) {
            want = ngx_http_canary_parse_generation(v[i], vl[i], &gen) == 0
                   ? NGX_HTTP_CANARY_FIELD_OK
                   : NGX_HTTP_CANARY_FIELD_BAD_VALUE;

        } else if (is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_STATE)
                   || is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_UPDATED_BY)
                   || is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_UPDATED_AT))
        {
            want = printable(v[i], vl[i]) ? NGX_HTTP_CANARY_FIELD_OK
                                          : NGX_HTTP_CANARY_FIELD_BAD_VALUE;

        } else if (fl[i] > FUZZ_COHORT_LEN
                   && memcmp(f[i], NGX_HTTP_CANARY_FIELD_COHORT,
                             FUZZ_COHORT_LEN) == 0)
        {
            want = ngx_http_canary_parse_weight(v[i], vl[i]) < 0
                   ? NGX_HTTP_CANARY_FIELD_BAD_VALUE
                   : before.ncohorts == NGX_HTTP_CANARY_UPDATE_COHORTS
                   ? NGX_HTTP_CANARY_FIELD_TOO_MANY
                   : NGX_HTTP_CANARY_FIELD_OK;

        } else {
            want = NGX_HTTP_CANARY_FIELD_UNKNOWN;
        }

        fuzz_assert(rc == want, "field \"%.*s\" value \"%.*s\": %d, not %d",
                    (int) fl[i], f[i], (int) vl[i], v[i], rc, want);

        if (rc != NGX_HTTP_CANARY_FIELD_OK) {
            /* a refused value leaves everything as it was */
            fuzz_assert(memcmp(&before, &u, sizeof(u)) == 0,
                        "refused field \"%.*s\" changed the update",
                        (int) fl[i], f[i]);
            continue;
        }

        if (is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_WEIGHT)) {
            w = ngx_http_canary_parse_weight(v[i], vl[i]);
            fuzz_assert(u.has_weight && u.weight == (uint32_t) w,
                        "weight %u, not %d", u.weight, w);

        } else if (is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_SHADOW)) {
            w = ngx_http_canary_parse_weight(v[i], vl[i]);
            fuzz_assert(u.has_shadow && u.shadow == (uint32_t) w,
                        "shadow %u, not %d", u.shadow, w);

        } else if (is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_ENABLED)) {
            fuzz_assert(u.has_enabled && u.enabled == v[i][0] - '0',
                        "enabled %d", u.enabled);

        } else if (is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_GENERATION)) {
            fuzz_assert(u.has_generation && u.generation == gen,
                        "generation %llu, not %llu",
                        (unsigned long long) u.generation,
                        (unsigned long long) gen);

        } else if (is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_STATE)) {
            fuzz_assert(u.has_state && u.state == v[i]
                        && u.state_len == vl[i], "state not kept");

        } else if (is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_UPDATED_BY)) {
            fuzz_assert(u.has_updated_by && u.updated_by == v[i]
                        && u.updated_by_len == vl[i], "updated_by not kept");

        } else if (is(f[i], fl[i], NGX_HTTP_CANARY_FIELD_UPDATED_AT)) {
            fuzz_assert(u.has_updated_at && u.updated_at == v[i]
                        && u.updated_at_len == vl[i], "updated_at not kept");

        } else {
            k = before.ncohorts;
            w = ngx_http_canary_parse_weight(v[i], vl[i]);

            fuzz_assert(u.ncohorts == k + 1
                        && u.cohorts[k].name == f[i] + FUZZ_COHORT_LEN
                        && u.cohorts[k].len == fl[i] - FUZZ_COHORT_LEN
                        && u.cohorts[k].weight == (uint32_t) w,
                        "cohort \"%.*s\" not kept", (int) fl[i], f[i]);
        }
    }

    /* the update as a whole: every value in range */

    fuzz_assert(u.ncohorts <= NGX_HTTP_CANARY_UPDATE_COHORTS,
                "%zu cohorts", u.ncohorts);
    fuzz_assert(!u.has_weight || u.weight <= NGX_HTTP_CANARY_WEIGHT_MAX,
                "weight %u", u.weight);
    fuzz_assert(!u.has_enabled || u.enabled == 0 || u.enabled == 1,
                "enabled %d", u.enabled);
    fuzz_assert(!u.has_state || printable(u.state, u.state_len), "state");

    for (k = 0; k < u.ncohorts; k++) {
        fuzz_assert(u.cohorts[k].len >= 1
                    && u.cohorts[k].weight <= NGX_HTTP_CANARY_WEIGHT_MAX,
                    "cohort %zu", k);
    }

    for (i = 0; i < n; i++) {
        free(f[i]);
        free(v[i]);
    }

    return 0;
}
