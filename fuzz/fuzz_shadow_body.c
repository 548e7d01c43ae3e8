
/*
 * A shadow comparison's body side (ngx_http_canary_shadow_body.c): the
 * bytes of a response as they stream, in pieces, plain or compressed.
 *
 * Input: byte 0 the mode (low 2 bits: the encoding, identity, gzip,
 * deflate, unknown; bit 2: keep the body, as shadow_ignore does; bit 3:
 * the bytes are a plain body that the target compresses itself, with
 * the encoding's format, so that inflating is checked against the
 * original), bytes 1-2 max_body, byte 3 the piece size (0: 1), then the
 * body.  Each piece is an exact-size heap block.
 *
 * Checked: whatever the bytes, no read or write out of bounds, at most
 * max bytes kept, bytes never past max + 1; the result does not depend
 * on how the body was cut into pieces; a kept body's digest is the
 * streamed digest; identity (and unknown) bodies digest to the FNV-1a of
 * their bytes, or are too large exactly when longer than max; a body
 * compressed here inflates to exactly the original (or too large).
 */


#include "fuzz_input.h"

#include <zlib.h>

#include "ngx_http_canary_shadow_body.h"


static void
run(ngx_http_canary_shadow_body_t *b, int enc, size_t max,
    unsigned char *keep, const uint8_t *p, size_t len, size_t step)
{
    size_t    n;
    uint8_t  *piece;

    memset(b, 0, sizeof(*b));
    ngx_http_canary_shadow_body_init(b, enc, max, keep, Z_NULL, Z_NULL,
                                     Z_NULL);

    while (len) {
        n = len < step ? len : step;

        piece = fuzz_dup(p, n);
        ngx_http_canary_shadow_body_feed(b, piece, n);
        free(piece);

        p += n;
        len -= n;
    }

    ngx_http_canary_shadow_body_last(b);

    fuzz_assert(b->bytes <= max + 1, "bytes %llu max %zu",
                (unsigned long long) b->bytes, max);
    fuzz_assert(b->kept <= max, "kept %zu max %zu", b->kept, max);
}


static size_t
pack(const uint8_t *in, size_t len, uint8_t *out, size_t size, int enc,
    int raw)
{
    int       bits;
    z_stream  zs;

    bits = enc == NGX_HTTP_CANARY_SHADOW_GZIP ? 15 + 16 : raw ? -15 : 15;

    memset(&zs, 0, sizeof(zs));

    if (deflateInit2(&zs, 1, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY)
        != Z_OK)
    {
        abort();
    }

    zs.next_in = (uint8_t *) in;
    zs.avail_in = len;
    zs.next_out = out;
    zs.avail_out = size;

    fuzz_assert(deflate(&zs, Z_FINISH) == Z_STREAM_END, "deflate");
    deflateEnd(&zs);

    return size - zs.avail_out;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                            enc, keep, compress;
    size_t                         max, step, len, zlen;
    uint8_t                       *z;
    fuzz_in_t                      in;
    const uint8_t                 *body;
    unsigned char                 *k1, *k2;
    ngx_http_canary_shadow_body_t  a, b, c;

    fuzz_in_init(&in, data, size);

    enc = fuzz_in_u8(&in);
    keep = enc & 4;
    compress = enc & 8;
    enc &= 3;
    max = (size_t) fuzz_in_uint(&in, 2);
    step = fuzz_in_u8(&in);
    step = step ? step : 1;

    body = in.p;
    len = fuzz_in_left(&in);

    z = NULL;

    if (compress && (enc == NGX_HTTP_CANARY_SHADOW_GZIP
                     || enc == NGX_HTTP_CANARY_SHADOW_DEFLATE))
    {
        zlen = len + len / 2 + 128;
        z = malloc(zlen);
        zlen = pack(body, len, z, zlen, enc, max & 1);
    }

    k1 = keep ? malloc(max + 1) : NULL;
    k2 = keep ? malloc(max + 1) : NULL;

    /* the same bytes in pieces of "step" and in one piece */
    run(&a, enc, max, k1, z ? z : body, z ? zlen : len, step);
    run(&b, enc, max, k2, z ? z : body, z ? zlen : len, (size_t) -1);

    fuzz_assert(a.state == b.state && a.bytes == b.bytes
                && a.raw_bytes == b.raw_bytes,
                "cut in pieces of %zu: state %d/%d bytes %llu/%llu", step,
                a.state, b.state, (unsigned long long) a.bytes,
                (unsigned long long) b.bytes);

    if (a.state == NGX_HTTP_CANARY_SHADOW_BODY_OK) {
        if (keep) {
            fuzz_assert(a.kept == b.kept
                        && memcmp(k1, k2, a.kept) == 0, "kept differs");
            fuzz_assert(a.kept == a.bytes, "kept %zu bytes %llu", a.kept,
                        (unsigned long long) a.bytes);

        } else {
            fuzz_assert(a.digest == b.digest, "digest depends on pieces");
        }
    }

    if (enc == NGX_HTTP_CANARY_SHADOW_IDENTITY
        || enc == NGX_HTTP_CANARY_SHADOW_UNKNOWN)
    {
        fuzz_assert((a.state == NGX_HTTP_CANARY_SHADOW_BODY_TOO_LARGE)
                    == (len > max), "too large for %zu of %zu", len, max);

        if (len <= max) {
            fuzz_assert(keep || a.digest == ngx_http_canary_fnv1a(
                            NGX_HTTP_CANARY_FNV_BASIS, body, len),
                        "identity digest");
            fuzz_assert(!keep || memcmp(k1, body, len) == 0,
                        "identity kept");
        }
    }

    /*
     * raw deflate whose first two bytes pass the zlib header check is
     * taken for zlib (RFC 1950's check cannot tell): no verdict on it
     */
    if (z && enc == NGX_HTTP_CANARY_SHADOW_DEFLATE && (max & 1) && zlen >= 2
        && (z[0] & 0x0f) == 8 && ((z[0] << 8) | z[1]) % 31 == 0)
    {
        free(z);
        z = NULL;
    }

    if (z) {
        /* inflates to the original: as the plain body would digest */
        run(&c, NGX_HTTP_CANARY_SHADOW_IDENTITY, max, NULL, body, len,
            (size_t) -1);

        fuzz_assert(a.state == c.state,
                    "compressed %d: state %d, plain %d", enc, a.state,
                    c.state);

        if (a.state == NGX_HTTP_CANARY_SHADOW_BODY_OK) {
            fuzz_assert(a.bytes == len, "inflated %llu of %zu",
                        (unsigned long long) a.bytes, len);
            fuzz_assert(keep ? memcmp(k1, body, len) == 0
                             : a.digest == c.digest, "inflated differs");
        }
    }

    free(z);
    free(k1);
    free(k2);

    return 0;
}
