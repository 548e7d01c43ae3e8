
/*
 * The guard's rule on one window's numbers, with the reason written into
 * a buffer of any size (a heap block of exactly that size).
 *
 * Input: byte 0 is the size of the reason buffer, then the limits and
 * the two windows as big-endian integers.
 *
 * Checked: the answer is 0 or 1; without enough canary requests, or
 * without any limit, it is 0; a 1 comes with a reason that is a C
 * string within the buffer, naming the limit broken; the rule does not
 * depend on the reason buffer's size; no undefined behaviour (UBSan) on
 * any numbers (errors above requests, zero stable traffic, ...).
 */


#include "fuzz_input.h"

#include "ngx_http_canary_guard_rule.h"


static void
window(fuzz_in_t *in, ngx_http_canary_guard_window_t *w)
{
    w->requests = fuzz_in_uint(in, fuzz_in_u8(in) % 9);
    w->errors = fuzz_in_uint(in, fuzz_in_u8(in) % 9);
    w->upstream_errors = fuzz_in_uint(in, fuzz_in_u8(in) % 9);
    w->p99_us = fuzz_in_uint(in, fuzz_in_u8(in) % 9);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                              rc, rc2;
    char                            *why, big[512];
    size_t                           wsz;
    fuzz_in_t                        in;
    ngx_http_canary_guard_limits_t   lim;
    ngx_http_canary_guard_window_t   st, ca;

    if (size < 1) {
        return 0;
    }

    fuzz_in_init(&in, data, size);

    wsz = 1 + fuzz_in_u8(&in);

    lim.error_rate = (uint32_t) fuzz_in_uint(&in, 2) % 10001;
    lim.upstream_errors = fuzz_in_uint(&in, fuzz_in_u8(&in) % 9);
    lim.latency_p99_us = fuzz_in_uint(&in, fuzz_in_u8(&in) % 9);
    lim.min_requests = fuzz_in_uint(&in, fuzz_in_u8(&in) % 9);
    lim.window = (unsigned) fuzz_in_u8(&in) % 61;

    window(&in, &st);
    window(&in, &ca);

    why = malloc(wsz);
    if (why == NULL) {
        abort();
    }

    memset(why, 0x5a, wsz);

    rc = ngx_http_canary_guard_broken(&lim, &st, &ca, why, wsz);
    rc2 = ngx_http_canary_guard_broken(&lim, &st, &ca, big, sizeof(big));

    fuzz_assert(rc == 0 || rc == 1, "returned %d", rc);
    fuzz_assert(rc == rc2, "the answer depends on the buffer's size");

    if (ca.requests == 0 || ca.requests < lim.min_requests
        || (lim.error_rate == 0 && lim.upstream_errors == 0
            && lim.latency_p99_us == 0))
    {
        fuzz_assert(rc == 0, "tripped without enough requests or limits");
    }

    if (rc) {
        fuzz_assert(strnlen(why, wsz) < wsz, "the reason is not a C string "
                    "within %zu bytes", wsz);
        fuzz_assert(strncmp(big, "error_rate ", 11) == 0
                    || strncmp(big, "upstream_errors ", 16) == 0
                    || strncmp(big, "latency_p99 ", 12) == 0,
                    "the reason names no limit: %s", big);
        fuzz_assert(strncmp(why, big, wsz - 1) == 0,
                    "a short reason is not the start of the long one");
    }

    free(why);

    return 0;
}
