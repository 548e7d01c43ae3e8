
/*
 * The tenant bucket: ngx_http_canary_murmur2() hashes salt ":" key in
 * one pass without joining them; it must be bit for bit MurmurHash2 (as
 * ngx_murmur_hash2()) of the joined bytes, for any salt and key (keys
 * are client bytes of any length), and the bucket within 0..9999.
 *
 * Input: byte 0 is the salt's length (modulo what is left), then the
 * salt, then the key.  The reference below is written from the
 * algorithm's description and hashes the joined copy.
 */


#include "fuzz_input.h"

#include "ngx_http_canary_hash.h"


#define M  0x5bd1e995u


static uint32_t
ref_murmur2(const uint8_t *p, size_t len)
{
    uint32_t  h, k;

    h = (uint32_t) len;

    while (len >= 4) {
        k = (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
            | (uint32_t) p[3] << 24;

        k *= M;
        k ^= k >> 24;
        k *= M;

        h *= M;
        h ^= k;

        p += 4;
        len -= 4;
    }

    switch (len) {
    case 3:
        h ^= (uint32_t) p[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t) p[1] << 8;
        /* fall through */
    case 1:
        h ^= p[0];
        h *= M;
    }

    h ^= h >> 13;
    h *= M;
    h ^= h >> 15;

    return h;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t     slen, klen;
    uint8_t   *salt, *key, *joined;
    uint32_t   h, want, b;

    if (size < 1) {
        return 0;
    }

    slen = data[0] % size;
    klen = size - 1 - slen;

    salt = fuzz_dup(data + 1, slen);
    key = fuzz_dup(data + 1 + slen, klen);

    joined = malloc(slen + 1 + klen);
    if (joined == NULL) {
        abort();
    }

    memcpy(joined, salt, slen);
    joined[slen] = ':';
    memcpy(joined + slen + 1, key, klen);

    h = ngx_http_canary_murmur2(salt, slen, key, klen);
    want = ref_murmur2(joined, slen + 1 + klen);

    fuzz_assert(h == want, "murmur2 of a %zu-byte salt and a %zu-byte key: "
                "%08x, joined %08x", slen, klen, h, want);

    b = ngx_http_canary_bucket(salt, slen, key, klen);

    fuzz_assert(b < NGX_HTTP_CANARY_BUCKETS
                && b == (uint32_t) (((uint64_t) want * 10000) >> 32),
                "bucket %u of hash %08x", b, want);

    free(joined);
    free(key);
    free(salt);

    return 0;
}
