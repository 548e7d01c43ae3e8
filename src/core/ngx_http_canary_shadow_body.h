
/*
 * One side of a shadow comparison (stable's body or the canary's), fed
 * buffer by buffer as it streams: inflated when it was sent with
 * Content-Encoding gzip or deflate, cut at max bytes, and either digested
 * on the fly or kept (when shadow_ignore must edit it first).  Pure code
 * (zlib only): the fuzzer drives it.
 */


#ifndef _NGX_HTTP_CANARY_SHADOW_BODY_H_INCLUDED_
#define _NGX_HTTP_CANARY_SHADOW_BODY_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include <zlib.h>


#define NGX_HTTP_CANARY_SHADOW_IDENTITY  0
#define NGX_HTTP_CANARY_SHADOW_GZIP      1     /* gzip, x-gzip */
#define NGX_HTTP_CANARY_SHADOW_DEFLATE   2     /* zlib, or raw deflate */
#define NGX_HTTP_CANARY_SHADOW_UNKNOWN   3     /* br, compress ...: bytes */

#define NGX_HTTP_CANARY_SHADOW_BODY_OK         0
#define NGX_HTTP_CANARY_SHADOW_BODY_TOO_LARGE  1
#define NGX_HTTP_CANARY_SHADOW_BODY_BAD        2   /* corrupt encoding */

#define NGX_HTTP_CANARY_FNV_BASIS  0xcbf29ce484222325ULL


typedef struct {
    int                 encoding;
    int                 state;
    uint64_t            digest;         /* of the bytes, unless kept */
    uint64_t            bytes;          /* decoded, counted up to max + 1 */
    uint64_t            raw_bytes;      /* as received */
    size_t              max;

    unsigned char      *keep;           /* NULL: digest as they come */
    size_t              kept;

    z_stream            zs;
    unsigned char       first;          /* "deflate": a lone first byte */
    unsigned            has_first:1;
    unsigned            z_started:1;    /* inflateInit2 done */
    unsigned            z_ended:1;      /* stream end: no more */
} ngx_http_canary_shadow_body_t;


/* the encoding named by a Content-Encoding value */
int ngx_http_canary_shadow_encoding(const unsigned char *p, size_t len);

/*
 * b starts zeroed; keep, when not NULL, has room for max bytes; zlib
 * allocates with zalloc/zfree/opaque (Z_NULL: malloc and free, then
 * ngx_http_canary_shadow_body_done() must be called)
 */
void ngx_http_canary_shadow_body_init(ngx_http_canary_shadow_body_t *b,
    int encoding, size_t max, unsigned char *keep, alloc_func zalloc,
    free_func zfree, void *opaque);
void ngx_http_canary_shadow_body_feed(ngx_http_canary_shadow_body_t *b,
    const unsigned char *p, size_t len);
/* an unfinished compressed stream at the end is a corrupt one */
void ngx_http_canary_shadow_body_last(ngx_http_canary_shadow_body_t *b);
void ngx_http_canary_shadow_body_done(ngx_http_canary_shadow_body_t *b);

uint64_t ngx_http_canary_fnv1a(uint64_t h, const unsigned char *p,
    size_t len);


#endif /* _NGX_HTTP_CANARY_SHADOW_BODY_H_INCLUDED_ */
