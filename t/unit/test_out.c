
/*
 * The renderers' output buffer: what fits is written, what does not is
 * counted, and a buffer of exactly the size counted holds it all.  Its
 * numbers, written by hand, are printf's to the byte: every integer
 * boundary, fixed point, and "%.*f" of doubles (ties, the renderers'
 * ratios, the values that go to vsnprintf()).
 */


#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "ngx_http_canary_report.h"


/* a few pieces as the renderers write them, the last one long or short */
static size_t
render(unsigned char *buf, size_t size, size_t last, size_t *written)
{
    char                   long_piece[2048];
    ngx_http_canary_out_t  o;

    memset(long_piece, 'x', last);
    long_piece[last] = '\0';

    o.pos = buf;
    o.end = buf + size;
    o.need = 0;

    ngx_http_canary_out_printf(&o, "{\"requests\":%d,", 12345);
    ngx_http_canary_out_json_string(&o, (const unsigned char *) "a\"b", 3);
    ngx_http_canary_out_printf(&o, ",\"tail\":\"%s\"}", long_piece);

    *written = (size_t) (o.pos - buf);
    ck_assert_uint_le(*written, size);

    return o.need;
}


static void
check_exact(size_t last)
{
    size_t          need, got, written;
    unsigned char  *big, *exact;

    big = malloc(4096);
    ck_assert_ptr_nonnull(big);

    need = render(big, 4096, last, &written);
    ck_assert_uint_lt(need, 4096);

    exact = malloc(need + 1);
    ck_assert_ptr_nonnull(exact);
    exact[need] = 0xa5;

    got = render(exact, need, last, &written);

    ck_assert_uint_eq(got, need);
    ck_assert_uint_eq(written, need);
    ck_assert_msg(memcmp(big, exact, need) == 0,
                  "a %zu-byte buffer lost its end: \"%.*s\"", need,
                  (int) need, exact);
    ck_assert_uint_eq(exact[need], 0xa5);

    free(big);
    free(exact);
}


START_TEST(a_buffer_of_exactly_the_size_counted_holds_every_piece)
{
    check_exact(0);
    check_exact(1);
    check_exact(100);
}
END_TEST


START_TEST(a_long_last_piece_fits_a_buffer_of_exactly_its_size)
{
    check_exact(600);
    check_exact(2000);
}
END_TEST


START_TEST(a_short_buffer_gets_a_prefix_and_the_full_count)
{
    size_t          n, need, written;
    unsigned char   full[4096], part[65];

    need = render(full, sizeof(full), 100, &written);
    ck_assert_uint_gt(need, sizeof(part));

    for (n = 0; n < sizeof(part); n++) {
        memset(part, 0xa5, sizeof(part));

        ck_assert_uint_eq(render(part, n, 100, &written), need);
        ck_assert_msg(memcmp(part, full, written) == 0,
                      "a %zu-byte buffer: not a prefix", n);

        /* nothing past the buffer */
        ck_assert_uint_eq(part[sizeof(part) - 1], 0xa5);
    }
}
END_TEST


/* one number, as a formatter writes it: into a big buffer, then into
 * every shorter one (nothing past it, a prefix, the same count) */

typedef enum {
    NUM_UINT,
    NUM_INT,
    NUM_FIXED,
    NUM_DOUBLE
} num_kind_e;


static void
num_write(ngx_http_canary_out_t *o, num_kind_e kind, uint64_t u, double x,
    unsigned digits)
{
    switch (kind) {

    case NUM_UINT:
        ngx_http_canary_out_uint(o, u);
        break;

    case NUM_INT:
        ngx_http_canary_out_int(o, (int64_t) u);
        break;

    case NUM_FIXED:
        ngx_http_canary_out_fixed(o, u, digits);
        break;

    default:
        ngx_http_canary_out_double(o, x, digits);
    }
}


static void
num_check(num_kind_e kind, uint64_t u, double x, unsigned digits,
    const char *want)
{
    size_t                 n, len;
    unsigned char          buf[512], part[512];
    ngx_http_canary_out_t  o;

    len = strlen(want);

    o.pos = buf;
    o.end = buf + sizeof(buf);
    o.need = 0;

    num_write(&o, kind, u, x, digits);

    /* no check assertion per number: each one writes to check's pipe */
    if (o.need != len || memcmp(buf, want, len) != 0 || o.pos != buf + len) {
        ck_abort_msg("kind %d of %" PRIu64 " / %.17g, %u digits: \"%.*s\", "
                     "printf \"%s\"", (int) kind, u, x, digits,
                     (int) (o.pos - buf), buf, want);
    }

    /* the short buffers: only for a few, they are many */
    if (u % 7 != 0 && (kind != NUM_DOUBLE || (x * 7 != floor(x * 7)))) {
        return;
    }

    for (n = 0; n < len; n++) {
        memset(part, 0xa5, sizeof(part));

        o.pos = part;
        o.end = part + n;
        o.need = 0;

        num_write(&o, kind, u, x, digits);

        if (o.need != len || o.pos > part + n
            || memcmp(part, want, (size_t) (o.pos - part)) != 0
            || part[n] != 0xa5)
        {
            ck_abort_msg("kind %d of %" PRIu64 " / %.17g, %u digits: a "
                         "buffer of %zu bytes: not a prefix, or counted %zu",
                         (int) kind, u, x, digits, n, o.need);
        }
    }
}


static void
num_uint(uint64_t u)
{
    unsigned  d;
    char      want[64];

    snprintf(want, sizeof(want), "%" PRIu64, u);
    num_check(NUM_UINT, u, 0, 0, want);

    snprintf(want, sizeof(want), "%" PRId64, (int64_t) u);
    num_check(NUM_INT, u, 0, 0, want);

    snprintf(want, sizeof(want), "%" PRId64, -(int64_t) (u >> 1));
    num_check(NUM_INT, (uint64_t) -(int64_t) (u >> 1), 0, 0, want);

    snprintf(want, sizeof(want), "%" PRIu64, u);
    num_check(NUM_FIXED, u, 0, 0, want);

    for (d = 1; d <= 9; d++) {
        snprintf(want, sizeof(want), "%" PRIu64 ".%0*" PRIu64,
                 u / (uint64_t) pow(10, d), (int) d,
                 u % (uint64_t) pow(10, d));
        num_check(NUM_FIXED, u, 0, d, want);
    }
}


static void
num_double(double x, unsigned digits)
{
    char  want[512];

    snprintf(want, sizeof(want), "%.*f", (int) digits, x);
    num_check(NUM_DOUBLE, 0, x, digits, want);
}


START_TEST(integers_at_every_boundary_are_printfs)
{
    int       k;
    uint64_t  p;

    /* around every power of ten and of two, and the ends */
    for (p = 1, k = 0; k <= 19; k++, p *= 10) {
        num_uint(p - 1);
        num_uint(p);
        num_uint(p + 1);
    }

    for (k = 0; k < 64; k++) {
        p = (uint64_t) 1 << k;
        num_uint(p - 1);
        num_uint(p);
        num_uint(p + 1);
    }

    num_uint(0);
    num_uint(UINT32_MAX);
    num_uint(UINT64_MAX);
    num_uint(UINT64_MAX - 1);
    num_uint((uint64_t) INT64_MAX);
    num_uint((uint64_t) INT64_MIN);
    num_uint((uint64_t) INT64_MIN + 1);
    num_uint((uint64_t) -1000);
}
END_TEST


START_TEST(integers_at_random_are_printfs)
{
    int       i;
    uint64_t  u;

    srand48(21);

    for (i = 0; i < 50000; i++) {
        u = ((uint64_t) lrand48() << 33) ^ ((uint64_t) lrand48() << 2)
            ^ (uint64_t) lrand48();

        /* every length, not mostly 19 digits */
        num_uint(u >> (lrand48() % 64));
    }
}
END_TEST


START_TEST(doubles_are_printfs_to_the_last_digit)
{
    int       i, e, r;
    unsigned  d;
    double    x;

    srand48(21);

    /* every magnitude the renderers print and beyond */
    for (i = 0; i < 50000; i++) {
        x = drand48() * pow(10, (int) (lrand48() % 14) - 4);

        for (d = 0; d <= 9; d++) {
            num_double(x, d);
        }
    }

    /* exact ties in binary (k / 2^j): half to even, as printf */
    for (i = 0; i < 20000; i++) {
        x = ldexp((double) (lrand48() % 100000000), -(int) (lrand48() % 30));

        for (d = 0; d <= 9; d++) {
            num_double(x, d);
            num_double(-x, d);
        }
    }

    for (d = 0; d <= 6; d++) {
        num_double(0.5, d);
        num_double(1.5, d);
        num_double(2.5, d);
        num_double(0.125, d);
        num_double(0.375, d);
        num_double(1.0 / 1024, d);
        num_double(0.0005, d);
        num_double(0.0015, d);
        num_double(0.0025, d);
        num_double(1.005, d);
        num_double(2.675, d);
    }

    /* the renderers' own: error and match rates, ratios, ms of us */
    for (e = 0; e <= 1000; e++) {
        for (r = 1; r <= 1000; r += 7) {
            num_double(100.0 * (double) e / (double) r, 2);
            num_double(100.0 * (double) e / (double) r, 3);
            num_double((double) e / (double) r, 6);
        }
    }

    for (i = 0; i < 3000000; i += 31) {
        num_double((double) i / 1000, 3);
        num_double((double) ((uint64_t) i * 1000003) / 1000, 3);
    }
}
END_TEST


START_TEST(doubles_past_the_fast_path_are_printfs_too)
{
    unsigned  d;

    for (d = 0; d <= 9; d++) {
        num_double(0.0, d);
        num_double(-0.0, d);
        num_double(-0.0001, d);
        num_double(5e-324, d);                  /* the least subnormal */
        num_double(2.2250738585072014e-308, d); /* the least normal */
        num_double(999999999.9999999, d);       /* the last fast one */
        num_double(-999999999.9999999, d);
        num_double(1e9, d);                     /* vsnprintf() */
        num_double(-1e9, d);
        num_double(1.5e15, d);
        num_double(1e300, d);
        num_double(INFINITY, d);
        num_double(-INFINITY, d);
        num_double(NAN, d);
    }

    /* more digits than the fast path takes */
    num_double(1.0 / 3, 10);
    num_double(2.0 / 3, 17);
}
END_TEST


START_TEST(strings_are_escaped_with_runs_copied)
{
    size_t                 n;
    unsigned char          buf[256];
    ngx_http_canary_out_t  o;

    static const unsigned char  in[] = "ab\"c\\d\n\x01\x7f\xff-end";

    o.pos = buf;
    o.end = buf + sizeof(buf);
    o.need = 0;

    ngx_http_canary_out_json_string(&o, in, sizeof(in) - 1);
    ngx_http_canary_out_literal(&o, " ");
    ngx_http_canary_out_label_value(&o, in, sizeof(in) - 1);
    ngx_http_canary_out_json_string(&o, NULL, 0);
    ngx_http_canary_out_label_value(&o, NULL, 0);

    n = sizeof("\"ab\\\"c\\\\d\\u000a\\u0001\\u007f\\u00ff-end\" "
               "ab\\\"c\\\\d\\n\x01\x7f\xff-end\"\"") - 1;

    ck_assert_uint_eq(o.need, n);
    ck_assert(memcmp(buf, "\"ab\\\"c\\\\d\\u000a\\u0001\\u007f\\u00ff"
                     "-end\" ab\\\"c\\\\d\\n\x01\x7f\xff-end\"\"", n) == 0);
}
END_TEST


/* a million printf() to compare with: time for a sanitizer build */
UNIT_MAIN("out", NULL, NULL, 60)
