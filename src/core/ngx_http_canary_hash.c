
/*
 * MurmurHash2 over the concatenation salt ":" key, computed in one pass
 * without copying the key (keys may be kilobytes long).  The result is
 * bit for bit what ngx_murmur_hash2() returns for the joined string.
 */


#include <string.h>

#include "ngx_http_canary_hash.h"


#define NGX_HTTP_CANARY_MURMUR_M  0x5bd1e995


static uint32_t ngx_http_canary_murmur_mix(uint32_t h, uint32_t k);
static inline uint32_t ngx_http_canary_murmur_part(const unsigned char *p,
    size_t len);


/*
 * little-endian, as ngx_murmur_hash2() reads a word: any alignment; on a
 * little-endian machine that is one load (compilers do not merge the
 * four byte loads of the portable form)
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__

static inline uint32_t
ngx_http_canary_murmur_word(const unsigned char *p)
{
    uint32_t  w;

    memcpy(&w, p, sizeof(uint32_t));

    return w;
}

#else

#define ngx_http_canary_murmur_word(p)                                        \
    ((uint32_t) (p)[0] | (uint32_t) (p)[1] << 8                               \
     | (uint32_t) (p)[2] << 16 | (uint32_t) (p)[3] << 24)

#endif


/* one 4-byte word into the hash, as ngx_murmur_hash2() mixes it */

static uint32_t
ngx_http_canary_murmur_mix(uint32_t h, uint32_t k)
{
    k *= NGX_HTTP_CANARY_MURMUR_M;
    k ^= k >> 24;
    k *= NGX_HTTP_CANARY_MURMUR_M;

    h *= NGX_HTTP_CANARY_MURMUR_M;
    h ^= k;

    return h;
}


/* the first "len" (0 to 3) bytes at "p", little-endian, as a word */

static inline uint32_t
ngx_http_canary_murmur_part(const unsigned char *p, size_t len)
{
    uint32_t  w;

    w = 0;

    switch (len) {
    case 3:
        w |= (uint32_t) p[2] << 16;
        /* fall through */
    case 2:
        w |= (uint32_t) p[1] << 8;
        /* fall through */
    case 1:
        w |= (uint32_t) p[0];
    }

    return w;
}


/*
 * The joined string is read in place, a word at a time: the whole words
 * of the salt, the word that straddles the salt's last bytes, ":" and the
 * key's first bytes, the whole words of the key from there, then the
 * partial word at the end, xored in as ngx_murmur_hash2() does.
 */

uint32_t
ngx_http_canary_murmur2(const unsigned char *salt, size_t salt_len,
    const unsigned char *key, size_t key_len)
{
    size_t    n, m, whole;
    uint32_t  h, k, w;

    h = (uint32_t) (salt_len + 1 + key_len);

    /* a key of a word or more: its partial words as shifted words */
    whole = (key_len >= 4);

    for ( /* void */ ; salt_len >= 4; salt_len -= 4, salt += 4) {
        k = ngx_http_canary_murmur_word(salt);
        h = ngx_http_canary_murmur_mix(h, k);
    }

    /* 0 to 3 bytes of the salt, then ":" */

    w = ngx_http_canary_murmur_part(salt, salt_len)
        | (uint32_t) ':' << (8 * salt_len);
    n = salt_len + 1;

    /* then the key's first bytes, up to a whole word */

    if (n < 4) {
        m = (key_len < 4 - n) ? key_len : 4 - n;

        /* the key's first word, its last bytes shifted out */
        w |= (whole ? ngx_http_canary_murmur_word(key)
                    : ngx_http_canary_murmur_part(key, m))
             << (8 * n);
        n += m;
        key += m;
        key_len -= m;
    }

    if (n == 4) {
        h = ngx_http_canary_murmur_mix(h, w);

        for ( /* void */ ; key_len >= 4; key_len -= 4, key += 4) {
            k = ngx_http_canary_murmur_word(key);
            h = ngx_http_canary_murmur_mix(h, k);
        }

        n = key_len;

        /*
         * the last word of the key, whose first bytes were hashed
         * already, shifted out; a shift by 32 bits is avoided (n == 0)
         */
        if (whole && n) {
            w = ngx_http_canary_murmur_word(key + n - 4) >> (8 * (4 - n));

        } else {
            w = ngx_http_canary_murmur_part(key, n);
        }
    }

    if (n) {
        /* the partial word is xored in as is, like ngx_murmur_hash2() */
        h ^= w;
        h *= NGX_HTTP_CANARY_MURMUR_M;
    }

    h ^= h >> 13;
    h *= NGX_HTTP_CANARY_MURMUR_M;
    h ^= h >> 15;

    return h;
}


uint32_t
ngx_http_canary_bucket(const unsigned char *salt, size_t salt_len,
    const unsigned char *key, size_t key_len)
{
    return ngx_http_canary_bucket_of(
               ngx_http_canary_murmur2(salt, salt_len, key, key_len));
}
