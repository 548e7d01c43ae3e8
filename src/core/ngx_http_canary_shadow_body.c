
/*
 * A shadow comparison's body side: inflate (streaming), cut at max,
 * digest or keep.  See ngx_http_canary_shadow_body.h.
 */


#include <string.h>

#include "ngx_http_canary_shadow_body.h"


#define NGX_HTTP_CANARY_SHADOW_CHUNK  4096


static void ngx_http_canary_shadow_emit(ngx_http_canary_shadow_body_t *b,
    const unsigned char *p, size_t len);
static int ngx_http_canary_shadow_start(ngx_http_canary_shadow_body_t *b,
    const unsigned char *p, size_t len);
static void ngx_http_canary_shadow_inflate(ngx_http_canary_shadow_body_t *b,
    const unsigned char *p, size_t len);
static int ngx_http_canary_shadow_is(const unsigned char *p, size_t len,
    const char *name);


int
ngx_http_canary_shadow_encoding(const unsigned char *p, size_t len)
{
    /* trailing blanks, as a header value may have */
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }

    if (len == 0 || ngx_http_canary_shadow_is(p, len, "identity")) {
        return NGX_HTTP_CANARY_SHADOW_IDENTITY;
    }

    if (ngx_http_canary_shadow_is(p, len, "gzip")
        || ngx_http_canary_shadow_is(p, len, "x-gzip"))
    {
        return NGX_HTTP_CANARY_SHADOW_GZIP;
    }

    if (ngx_http_canary_shadow_is(p, len, "deflate")) {
        return NGX_HTTP_CANARY_SHADOW_DEFLATE;
    }

    return NGX_HTTP_CANARY_SHADOW_UNKNOWN;
}


static int
ngx_http_canary_shadow_is(const unsigned char *p, size_t len,
    const char *name)
{
    size_t         i;
    unsigned char  c;

    if (len != strlen(name)) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = p[i];

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (c != (unsigned char) name[i]) {
            return 0;
        }
    }

    return 1;
}


void
ngx_http_canary_shadow_body_init(ngx_http_canary_shadow_body_t *b,
    int encoding, size_t max, unsigned char *keep, alloc_func zalloc,
    free_func zfree, void *opaque)
{
    b->encoding = encoding;
    b->state = NGX_HTTP_CANARY_SHADOW_BODY_OK;
    b->digest = NGX_HTTP_CANARY_FNV_BASIS;
    b->bytes = 0;
    b->raw_bytes = 0;
    b->max = max;
    b->keep = keep;
    b->kept = 0;

    memset(&b->zs, 0, sizeof(z_stream));
    b->zs.zalloc = zalloc;
    b->zs.zfree = zfree;
    b->zs.opaque = opaque;
    b->first = 0;
    b->has_first = 0;
    b->z_started = 0;
    b->z_ended = 0;
}


void
ngx_http_canary_shadow_body_feed(ngx_http_canary_shadow_body_t *b,
    const unsigned char *p, size_t len)
{
    unsigned char  head[2];

    b->raw_bytes += len;

    if (b->state != NGX_HTTP_CANARY_SHADOW_BODY_OK || len == 0) {
        return;
    }

    if (b->encoding != NGX_HTTP_CANARY_SHADOW_GZIP
        && b->encoding != NGX_HTTP_CANARY_SHADOW_DEFLATE)
    {
        ngx_http_canary_shadow_emit(b, p, len);
        return;
    }

    if (!b->z_started) {

        /* "deflate" is told by its first two bytes: wait for the second */
        if (b->encoding == NGX_HTTP_CANARY_SHADOW_DEFLATE) {

            if (!b->has_first && len == 1) {
                b->first = p[0];
                b->has_first = 1;
                return;
            }

            if (b->has_first) {
                head[0] = b->first;
                head[1] = p[0];

                if (ngx_http_canary_shadow_start(b, head, 2) != 0) {
                    b->state = NGX_HTTP_CANARY_SHADOW_BODY_BAD;
                    return;
                }

                ngx_http_canary_shadow_inflate(b, head, 1);

                if (b->state != NGX_HTTP_CANARY_SHADOW_BODY_OK) {
                    return;
                }
            }
        }

        if (!b->z_started && ngx_http_canary_shadow_start(b, p, len) != 0) {
            b->state = NGX_HTTP_CANARY_SHADOW_BODY_BAD;
            return;
        }
    }

    ngx_http_canary_shadow_inflate(b, p, len);
}


static void
ngx_http_canary_shadow_inflate(ngx_http_canary_shadow_body_t *b,
    const unsigned char *p, size_t len)
{
    int            rc;
    size_t         n;
    unsigned char  out[NGX_HTTP_CANARY_SHADOW_CHUNK];

    if (b->z_ended) {
        /*
         * a gzip member ended with the previous buffer: another one may
         * follow (RFC 1952), as when both come in one buffer below;
         * anything else after the end of the stream is corrupt
         */
        if (b->encoding != NGX_HTTP_CANARY_SHADOW_GZIP
            || inflateReset(&b->zs) != Z_OK)
        {
            b->state = NGX_HTTP_CANARY_SHADOW_BODY_BAD;
            return;
        }

        b->z_ended = 0;
    }

    b->zs.next_in = (unsigned char *) p;
    b->zs.avail_in = (uInt) len;

    do {
        b->zs.next_out = out;
        b->zs.avail_out = sizeof(out);

        rc = inflate(&b->zs, Z_NO_FLUSH);

        n = sizeof(out) - b->zs.avail_out;

        if (n) {
            ngx_http_canary_shadow_emit(b, out, n);

            if (b->state != NGX_HTTP_CANARY_SHADOW_BODY_OK) {
                return;
            }
        }

        if (rc == Z_STREAM_END) {
            if (b->zs.avail_in == 0) {
                b->z_ended = 1;
                return;
            }

            /* gzip members one after another (RFC 1952) */
            if (b->encoding != NGX_HTTP_CANARY_SHADOW_GZIP
                || inflateReset(&b->zs) != Z_OK)
            {
                b->state = NGX_HTTP_CANARY_SHADOW_BODY_BAD;
                return;
            }

            continue;
        }

        if (rc == Z_BUF_ERROR && n == 0) {
            /* needs more input */
            return;
        }

        if (rc != Z_OK) {
            b->state = NGX_HTTP_CANARY_SHADOW_BODY_BAD;
            return;
        }

    } while (b->zs.avail_in > 0 || b->zs.avail_out == 0);
}


/*
 * gzip and zlib by their headers (windowBits 15 + 32); "deflate" that is
 * raw deflate without the zlib header, as some servers send it, by its
 * first two bytes failing the zlib header check (RFC 1950: CM 8, the
 * 16-bit value a multiple of 31)
 */

static int
ngx_http_canary_shadow_start(ngx_http_canary_shadow_body_t *b,
    const unsigned char *p, size_t len)
{
    int  bits;

    bits = 15 + 32;

    if (b->encoding == NGX_HTTP_CANARY_SHADOW_DEFLATE
        && len >= 2
        && ((p[0] & 0x0f) != 8 || ((p[0] << 8) | p[1]) % 31 != 0))
    {
        bits = -15;
    }

    if (inflateInit2(&b->zs, bits) != Z_OK) {
        return -1;
    }

    b->z_started = 1;

    return 0;
}


static void
ngx_http_canary_shadow_emit(ngx_http_canary_shadow_body_t *b,
    const unsigned char *p, size_t len)
{
    if (len > b->max - b->bytes) {
        b->bytes = b->max + 1;
        b->state = NGX_HTTP_CANARY_SHADOW_BODY_TOO_LARGE;
        return;
    }

    b->bytes += len;

    if (b->keep) {
        memcpy(b->keep + b->kept, p, len);
        b->kept += len;
        return;
    }

    b->digest = ngx_http_canary_fnv1a(b->digest, p, len);
}


void
ngx_http_canary_shadow_body_last(ngx_http_canary_shadow_body_t *b)
{
    if (b->state == NGX_HTTP_CANARY_SHADOW_BODY_OK
        && ((b->z_started && !b->z_ended) || (b->has_first && !b->z_started)))
    {
        b->state = NGX_HTTP_CANARY_SHADOW_BODY_BAD;
    }

    ngx_http_canary_shadow_body_done(b);
}


void
ngx_http_canary_shadow_body_done(ngx_http_canary_shadow_body_t *b)
{
    if (b->z_started) {
        (void) inflateEnd(&b->zs);
        b->z_started = 0;
    }
}


uint64_t
ngx_http_canary_fnv1a(uint64_t h, const unsigned char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }

    return h;
}
