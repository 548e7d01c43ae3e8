
/*
 * The single values that come from Redis (and nginx.conf): weight,
 * enabled, generation, state.  The whole input is one value, in a heap
 * block of exactly its size.  Each parser is checked against a plain
 * reference of its documented grammar, the weight round-trips through
 * its formatter, and the module and the sidecar agree on the weight
 * syntax and its text (they share the Redis hash).
 */


#include "fuzz_input.h"

#include "ngx_http_canary_parse.h"
#include "plan.h"


static int
ref_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}


/* [0-9]{1,3}(\.[0-9]{1,2})? and at most 100 */
static int32_t
ref_weight(const uint8_t *p, size_t len)
{
    size_t   i, w, f;
    int32_t  whole, frac;

    for (w = 0; w < len && ref_digit(p[w]); w++) { /* void */ }

    if (w < 1 || w > 3) {
        return -1;
    }

    whole = 0;

    for (i = 0; i < w; i++) {
        whole = whole * 10 + (p[i] - '0');
    }

    frac = 0;

    if (w < len) {
        if (p[w] != '.') {
            return -1;
        }

        for (f = 0; w + 1 + f < len && ref_digit(p[w + 1 + f]); f++) {
            if (f < 2) {
                frac = frac * 10 + (p[w + 1 + f] - '0');
            }
        }

        if (f < 1 || f > 2 || w + 1 + f != len) {
            return -1;
        }

        if (f == 1) {
            frac *= 10;
        }
    }

    whole = whole * 100 + frac;

    return whole > 10000 ? -1 : whole;
}


static void
check_format(uint32_t w)
{
    char           side[16];
    size_t         n;
    unsigned char  buf[NGX_HTTP_CANARY_WEIGHT_LEN + 8];

    memset(buf, 0xa5, sizeof(buf));

    n = ngx_http_canary_format_weight(buf, w);

    fuzz_assert(n >= 1 && n < NGX_HTTP_CANARY_WEIGHT_LEN,
                "format_weight(%u) wrote %zu bytes", w, n);
    fuzz_assert(buf[n] == 0xa5, "format_weight(%u) wrote past %zu", w, n);

    fuzz_assert(ngx_http_canary_parse_weight(buf, n) == (int32_t) w,
                "format_weight(%u) = \"%.*s\" does not parse back", w,
                (int) n, buf);

    cs_weight_format(w, side, sizeof(side));

    fuzz_assert(strlen(side) == n && memcmp(side, buf, n) == 0,
                "weight %u: the module writes \"%.*s\", the sidecar \"%s\"",
                w, (int) n, buf, side);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    uint32_t  w;

    (void) argc;
    (void) argv;

    for (w = 0; w <= NGX_HTTP_CANARY_WEIGHT_MAX; w++) {
        check_format(w);
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int        e, ok;
    size_t     i;
    int32_t    w, rw;
    int64_t    sw;
    uint8_t   *p;
    uint64_t   gen, ref;

    p = fuzz_dup(data, size);

    /* weight */

    w = ngx_http_canary_parse_weight(p, size);
    rw = ref_weight(p, size);

    fuzz_assert(w == rw, "parse_weight(\"%.*s\") = %d, the grammar says %d",
                (int) size, p, w, rw);

    sw = cs_weight_parse((const char *) p, size);

    fuzz_assert(sw == (int64_t) w,
                "weight \"%.*s\": the module reads %d, the sidecar %lld",
                (int) size, p, w, (long long) sw);

    if (w >= 0) {
        check_format((uint32_t) w);
    }

    /* enabled */

    e = ngx_http_canary_parse_enabled(p, size);

    fuzz_assert(e == (size == 1 && (p[0] == '0' || p[0] == '1')
                      ? p[0] - '0' : -1),
                "parse_enabled(\"%.*s\") = %d", (int) size, p, e);

    /* generation: 1 to 18 digits */

    ok = size >= 1 && size <= 18;
    ref = 0;

    for (i = 0; ok && i < size; i++) {
        ok = ref_digit(p[i]);
        ref = ref * 10 + (uint64_t) (p[i] - '0');
    }

    gen = 0xdeadbeef;

    if (ngx_http_canary_parse_generation(p, size, &gen) == 0) {
        fuzz_assert(ok && gen == ref, "parse_generation(\"%.*s\") = %llu",
                    (int) size, p, (unsigned long long) gen);
        fuzz_assert(gen < 1000000000000000000ULL,
                    "generation %llu has more than 18 digits",
                    (unsigned long long) gen);

    } else {
        fuzz_assert(!ok, "parse_generation refused \"%.*s\"", (int) size, p);
        fuzz_assert(gen == 0xdeadbeef, "a refused generation was stored");
    }

    /* state, updated_by, updated_at: 0 to 64 printable ASCII bytes */

    ok = size <= 64;

    for (i = 0; ok && i < size; i++) {
        ok = p[i] >= 0x20 && p[i] < 0x7f;
    }

    fuzz_assert(ngx_http_canary_valid_state(p, size) == ok,
                "valid_state of %zu bytes", size);

    free(p);

    return 0;
}
