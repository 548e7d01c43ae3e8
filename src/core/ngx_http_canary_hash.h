
/*
 * Tenant bucketing: the public contract that puts a tenant on the same
 * side in every worker, every nginx of a fleet and every version.
 *
 *     hash   = MurmurHash2(salt ":" key), exactly as ngx_murmur_hash2()
 *     bucket = floor(hash * 10000 / 2^32)          0 .. 9999
 *     canary = bucket < weight * 100               weight in percent
 *
 * Pure C: compiles without the nginx runtime (unit tests, fuzzers).
 */


#ifndef _NGX_HTTP_CANARY_HASH_H_INCLUDED_
#define _NGX_HTTP_CANARY_HASH_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_CANARY_BUCKETS  10000


uint32_t ngx_http_canary_murmur2(const unsigned char *salt, size_t salt_len,
    const unsigned char *key, size_t key_len);
uint32_t ngx_http_canary_bucket(const unsigned char *salt, size_t salt_len,
    const unsigned char *key, size_t key_len);


/* the bucket of a hash: inline, for a caller that has the hash */

static inline uint32_t
ngx_http_canary_bucket_of(uint32_t hash)
{
    return (uint32_t) (((uint64_t) hash * NGX_HTTP_CANARY_BUCKETS) >> 32);
}


#endif /* _NGX_HTTP_CANARY_HASH_H_INCLUDED_ */
