
/*
 * MurmurHash2 over the concatenation salt ":" key, computed in one pass
 * without copying the key (keys may be kilobytes long).  The result is
 * bit for bit what ngx_murmur_hash2() returns for the joined string.
 */


#include "ngx_http_canary_hash.h"


#define NGX_HTTP_CANARY_MURMUR_M  0x5bd1e995


static uint32_t ngx_http_canary_murmur_mix(uint32_t h, uint32_t k);


/* little-endian, as ngx_murmur_hash2() reads a word: any alignment */
#define ngx_http_canary_murmur_word(p)                                        \
    ((uint32_t) (p)[0] | (uint32_t) (p)[1] << 8                               \
     | (uint32_t) (p)[2] << 16 | (uint32_t) (p)[3] << 24)


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
    size_t    n;
    uint32_t  h, k, w;

    h = (uint32_t) (salt_len + 1 + key_len);

    for ( /* void */ ; salt_len >= 4; salt_len -= 4, salt += 4) {
        k = ngx_http_canary_murmur_word(salt);
        h = ngx_http_canary_murmur_mix(h, k);
    }

    /* 0 to 3 bytes of the salt, then ":" */

    w = 0;

    for (n = 0; n < salt_len; n++) {
        w |= (uint32_t) salt[n] << (8 * n);
    }

    w |= (uint32_t) ':' << (8 * n++);

    /* then the key's first bytes, up to a whole word */

    for ( /* void */ ; n < 4 && key_len; n++, key_len--) {
        w |= (uint32_t) *key++ << (8 * n);
    }

    if (n == 4) {
        h = ngx_http_canary_murmur_mix(h, w);

        for ( /* void */ ; key_len >= 4; key_len -= 4, key += 4) {
            k = ngx_http_canary_murmur_word(key);
            h = ngx_http_canary_murmur_mix(h, k);
        }

        w = 0;

        for (n = 0; n < key_len; n++) {
            w |= (uint32_t) key[n] << (8 * n);
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
    uint64_t  h;

    h = ngx_http_canary_murmur2(salt, salt_len, key, key_len);

    return (uint32_t) ((h * NGX_HTTP_CANARY_BUCKETS) >> 32);
}
