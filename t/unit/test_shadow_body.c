
/*
 * One side of a shadow comparison: bodies as they stream, plain or
 * compressed, cut at max_body, digested or kept.
 */


#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "unit.h"

#include "ngx_http_canary_shadow_body.h"


/* compress with zlib: bits 15 + 16 gzip, 15 zlib, -15 raw deflate */
static size_t
pack(const unsigned char *in, size_t len, unsigned char *out, size_t size,
    int bits)
{
    z_stream  zs;

    memset(&zs, 0, sizeof(zs));
    ck_assert_int_eq(deflateInit2(&zs, 6, Z_DEFLATED, bits, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);

    zs.next_in = (unsigned char *) in;
    zs.avail_in = len;
    zs.next_out = out;
    zs.avail_out = size;

    ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    deflateEnd(&zs);

    return size - zs.avail_out;
}


/* feeds p in pieces of "step" bytes, ends the body */
static void
feed(ngx_http_canary_shadow_body_t *b, int enc, size_t max,
    const unsigned char *p, size_t len, size_t step)
{
    size_t  n;

    memset(b, 0, sizeof(*b));
    ngx_http_canary_shadow_body_init(b, enc, max, NULL, Z_NULL, Z_NULL,
                                     Z_NULL);

    while (len) {
        n = len < step ? len : step;
        ngx_http_canary_shadow_body_feed(b, p, n);
        p += n;
        len -= n;
    }

    ngx_http_canary_shadow_body_last(b);
}


static const char  json[] = "{\"id\":7,\"v\":1,\"name\":\"x\"}";


START_TEST(a_plain_body_is_digested_as_it_streams)
{
    ngx_http_canary_shadow_body_t  a, b;

    feed(&a, NGX_HTTP_CANARY_SHADOW_IDENTITY, 1024,
         (const unsigned char *) json, strlen(json), 1);
    feed(&b, NGX_HTTP_CANARY_SHADOW_IDENTITY, 1024,
         (const unsigned char *) json, strlen(json), 1000);

    ck_assert_int_eq(a.state, NGX_HTTP_CANARY_SHADOW_BODY_OK);
    ck_assert_uint_eq(a.bytes, strlen(json));
    ck_assert_uint_eq(a.digest, b.digest);
    ck_assert_uint_eq(a.digest,
                      ngx_http_canary_fnv1a(NGX_HTTP_CANARY_FNV_BASIS,
                                            (const unsigned char *) json,
                                            strlen(json)));
}
END_TEST


START_TEST(gzip_zlib_and_raw_deflate_match_the_plain_body)
{
    size_t                         n, i, step;
    unsigned char                  z[256];
    ngx_http_canary_shadow_body_t  plain, b;
    static const struct { int enc; int bits; } cases[] = {
        { NGX_HTTP_CANARY_SHADOW_GZIP, 15 + 16 },
        { NGX_HTTP_CANARY_SHADOW_DEFLATE, 15 },
        { NGX_HTTP_CANARY_SHADOW_DEFLATE, -15 },
    };

    feed(&plain, NGX_HTTP_CANARY_SHADOW_IDENTITY, 1024,
         (const unsigned char *) json, strlen(json), 4096);

    for (i = 0; i < 3; i++) {
        n = pack((const unsigned char *) json, strlen(json), z, sizeof(z),
                 cases[i].bits);

        for (step = 1; step <= n; step++) {
            feed(&b, cases[i].enc, 1024, z, n, step);

            ck_assert_msg(b.state == NGX_HTTP_CANARY_SHADOW_BODY_OK,
                          "case %zu step %zu: state %d", i, step, b.state);
            ck_assert_uint_eq(b.bytes, plain.bytes);
            ck_assert_uint_eq(b.digest, plain.digest);
            ck_assert_uint_eq(b.raw_bytes, n);
        }
    }
}
END_TEST


START_TEST(gzip_members_one_after_another_are_one_body)
{
    size_t                         n, first, step;
    unsigned char                  z[512];
    ngx_http_canary_shadow_body_t  plain, b;

    first = pack((const unsigned char *) "abc", 3, z, sizeof(z), 15 + 16);
    n = first + pack((const unsigned char *) "def", 3, z + first,
                     sizeof(z) - first, 15 + 16);

    feed(&plain, NGX_HTTP_CANARY_SHADOW_IDENTITY, 1024,
         (const unsigned char *) "abcdef", 6, 6);

    /*
     * every piece size, among them one whose buffer ends where the first
     * member does (the fuzzer found that the second was refused then)
     */
    for (step = 1; step <= n; step++) {
        feed(&b, NGX_HTTP_CANARY_SHADOW_GZIP, 1024, z, n, step);

        ck_assert_msg(b.state == NGX_HTTP_CANARY_SHADOW_BODY_OK,
                      "step %zu (first member %zu bytes): state %d", step,
                      first, b.state);
        ck_assert_uint_eq(b.digest, plain.digest);
    }

    /* after a zlib stream's end nothing more may come */
    n = pack((const unsigned char *) "abc", 3, z, sizeof(z), 15);
    z[n] = 'x';
    feed(&b, NGX_HTTP_CANARY_SHADOW_DEFLATE, 1024, z, n + 1, n);
    ck_assert_int_eq(b.state, NGX_HTTP_CANARY_SHADOW_BODY_BAD);
}
END_TEST


START_TEST(a_cut_or_corrupt_stream_is_bad)
{
    size_t                         n;
    unsigned char                  z[256];
    ngx_http_canary_shadow_body_t  b;

    n = pack((const unsigned char *) json, strlen(json), z, sizeof(z),
             15 + 16);

    feed(&b, NGX_HTTP_CANARY_SHADOW_GZIP, 1024, z, n - 4, 7);
    ck_assert_int_eq(b.state, NGX_HTTP_CANARY_SHADOW_BODY_BAD);

    feed(&b, NGX_HTTP_CANARY_SHADOW_GZIP, 1024,
         (const unsigned char *) json, strlen(json), 7);
    ck_assert_int_eq(b.state, NGX_HTTP_CANARY_SHADOW_BODY_BAD);

    /* bytes after the end of a (zlib) deflate stream */
    n = pack((const unsigned char *) json, strlen(json), z, sizeof(z), 15);

    feed(&b, NGX_HTTP_CANARY_SHADOW_DEFLATE, 1024, z, n, n);
    ck_assert_int_eq(b.state, NGX_HTTP_CANARY_SHADOW_BODY_OK);

    memcpy(z + n, "junk", 4);
    feed(&b, NGX_HTTP_CANARY_SHADOW_DEFLATE, 1024, z, n + 4, n);
    ck_assert_int_eq(b.state, NGX_HTTP_CANARY_SHADOW_BODY_BAD);
}
END_TEST


START_TEST(past_max_body_is_too_large_also_when_inflated)
{
    size_t                         n;
    unsigned char                 *zeros, *z;
    ngx_http_canary_shadow_body_t  b;

    feed(&b, NGX_HTTP_CANARY_SHADOW_IDENTITY, 10,
         (const unsigned char *) json, strlen(json), 3);
    ck_assert_int_eq(b.state, NGX_HTTP_CANARY_SHADOW_BODY_TOO_LARGE);

    feed(&b, NGX_HTTP_CANARY_SHADOW_IDENTITY, strlen(json),
         (const unsigned char *) json, strlen(json), 3);
    ck_assert_int_eq(b.state, NGX_HTTP_CANARY_SHADOW_BODY_OK);

    /* 4 MB of zeros in a few kB: inflating stops at max */
    zeros = calloc(1, 4 << 20);
    z = malloc(64 << 10);
    n = pack(zeros, 4 << 20, z, 64 << 10, 15 + 16);

    feed(&b, NGX_HTTP_CANARY_SHADOW_GZIP, 256 << 10, z, n, n);
    ck_assert_int_eq(b.state, NGX_HTTP_CANARY_SHADOW_BODY_TOO_LARGE);
    ck_assert_uint_eq(b.bytes, (256 << 10) + 1);

    free(zeros);
    free(z);
}
END_TEST


START_TEST(a_kept_body_is_the_inflated_bytes)
{
    size_t                         n;
    unsigned char                  z[256], keep[64];
    ngx_http_canary_shadow_body_t  b;

    n = pack((const unsigned char *) json, strlen(json), z, sizeof(z),
             15 + 16);

    memset(&b, 0, sizeof(b));
    ngx_http_canary_shadow_body_init(&b, NGX_HTTP_CANARY_SHADOW_GZIP,
                                     sizeof(keep), keep, Z_NULL, Z_NULL,
                                     Z_NULL);
    ngx_http_canary_shadow_body_feed(&b, z, 10);
    ngx_http_canary_shadow_body_feed(&b, z + 10, n - 10);
    ngx_http_canary_shadow_body_last(&b);

    ck_assert_int_eq(b.state, NGX_HTTP_CANARY_SHADOW_BODY_OK);
    ck_assert_uint_eq(b.kept, strlen(json));
    ck_assert(memcmp(keep, json, strlen(json)) == 0);
}
END_TEST


START_TEST(content_encoding_names)
{
#define enc(s)                                                               \
    ngx_http_canary_shadow_encoding((const unsigned char *) s, strlen(s))

    ck_assert_int_eq(enc(""), NGX_HTTP_CANARY_SHADOW_IDENTITY);
    ck_assert_int_eq(enc("identity"), NGX_HTTP_CANARY_SHADOW_IDENTITY);
    ck_assert_int_eq(enc("gzip"), NGX_HTTP_CANARY_SHADOW_GZIP);
    ck_assert_int_eq(enc("GZip "), NGX_HTTP_CANARY_SHADOW_GZIP);
    ck_assert_int_eq(enc("x-gzip"), NGX_HTTP_CANARY_SHADOW_GZIP);
    ck_assert_int_eq(enc("deflate"), NGX_HTTP_CANARY_SHADOW_DEFLATE);
    ck_assert_int_eq(enc("br"), NGX_HTTP_CANARY_SHADOW_UNKNOWN);
    ck_assert_int_eq(enc("gzip, br"), NGX_HTTP_CANARY_SHADOW_UNKNOWN);

#undef enc
}
END_TEST


UNIT_MAIN("shadow_body", NULL, NULL, 0)
