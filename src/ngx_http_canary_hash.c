
/*
 * MurmurHash2 over the concatenation salt ":" key, computed in one pass
 * without copying the key (keys may be kilobytes long).  The result is
 * bit for bit what ngx_murmur_hash2() returns for the joined string.
 */


#include "ngx_http_canary_hash.h"


#define NGX_HTTP_CANARY_MURMUR_M  0x5bd1e995


typedef struct {
    uint32_t  h;
    uint32_t  tail;
    size_t    tail_len;
} ngx_http_canary_murmur_t;


static void ngx_http_canary_murmur_feed(ngx_http_canary_murmur_t *m,
    const unsigned char *p, size_t len);


static void
ngx_http_canary_murmur_feed(ngx_http_canary_murmur_t *m,
    const unsigned char *p, size_t len)
{
    uint32_t  k;

    while (len--) {
        m->tail |= (uint32_t) *p++ << (8 * m->tail_len);

        if (++m->tail_len < 4) {
            continue;
        }

        k = m->tail;
        k *= NGX_HTTP_CANARY_MURMUR_M;
        k ^= k >> 24;
        k *= NGX_HTTP_CANARY_MURMUR_M;

        m->h *= NGX_HTTP_CANARY_MURMUR_M;
        m->h ^= k;

        m->tail = 0;
        m->tail_len = 0;
    }
}


uint32_t
ngx_http_canary_murmur2(const unsigned char *salt, size_t salt_len,
    const unsigned char *key, size_t key_len)
{
    ngx_http_canary_murmur_t  m;

    m.h = (uint32_t) (salt_len + 1 + key_len);
    m.tail = 0;
    m.tail_len = 0;

    ngx_http_canary_murmur_feed(&m, salt, salt_len);
    ngx_http_canary_murmur_feed(&m, (const unsigned char *) ":", 1);
    ngx_http_canary_murmur_feed(&m, key, key_len);

    if (m.tail_len) {
        /* the partial word is xored in as is, like ngx_murmur_hash2() */
        m.h ^= m.tail;
        m.h *= NGX_HTTP_CANARY_MURMUR_M;
    }

    m.h ^= m.h >> 13;
    m.h *= NGX_HTTP_CANARY_MURMUR_M;
    m.h ^= m.h >> 15;

    return m.h;
}


uint32_t
ngx_http_canary_bucket(const unsigned char *salt, size_t salt_len,
    const unsigned char *key, size_t key_len)
{
    uint64_t  h;

    h = ngx_http_canary_murmur2(salt, salt_len, key, key_len);

    return (uint32_t) ((h * NGX_HTTP_CANARY_BUCKETS) >> 32);
}
