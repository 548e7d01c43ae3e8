
/*
 * The renderers' output buffer: what fits is written, what does not is
 * counted, and a buffer of exactly the size counted holds it all.
 */


#include <check.h>
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


UNIT_MAIN("out", NULL, NULL, 0)
