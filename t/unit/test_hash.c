
/*
 * The streaming MurmurHash2 over salt ":" key must equal nginx's
 * ngx_murmur_hash2() over the joined bytes, for every split of lengths.
 */


#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "unit.h"

#include "ngx_http_canary_hash.h"


/* nginx's algorithm over one contiguous buffer, as the reference */
static uint32_t
reference_murmur2(const unsigned char *data, size_t len)
{
    uint32_t  h, k;

    h = 0 ^ (uint32_t) len;

    while (len >= 4) {
        k  = data[0];
        k |= data[1] << 8;
        k |= data[2] << 16;
        k |= (uint32_t) data[3] << 24;

        k *= 0x5bd1e995;
        k ^= k >> 24;
        k *= 0x5bd1e995;

        h *= 0x5bd1e995;
        h ^= k;

        data += 4;
        len -= 4;
    }

    switch (len) {
    case 3:
        h ^= data[2] << 16;
        /* fall through */
    case 2:
        h ^= data[1] << 8;
        /* fall through */
    case 1:
        h ^= data[0];
        h *= 0x5bd1e995;
    }

    h ^= h >> 13;
    h *= 0x5bd1e995;
    h ^= h >> 15;

    return h;
}


START_TEST(streaming_hash_equals_nginx_murmur2_for_all_lengths)
{
    size_t         salt_len, key_len;
    unsigned char  salt[16], key[64], joined[96];

    srand(1);

    for (salt_len = 0; salt_len < sizeof(salt); salt_len++) {
        for (key_len = 0; key_len < sizeof(key); key_len++) {
            size_t  i;

            for (i = 0; i < salt_len; i++) {
                salt[i] = (unsigned char) rand();
            }

            for (i = 0; i < key_len; i++) {
                key[i] = (unsigned char) rand();
            }

            memcpy(joined, salt, salt_len);
            joined[salt_len] = ':';
            memcpy(joined + salt_len + 1, key, key_len);

            ck_assert_uint_eq(
                ngx_http_canary_murmur2(salt, salt_len, key, key_len),
                reference_murmur2(joined, salt_len + 1 + key_len));
        }
    }
}
END_TEST


/* whole words are read from any address, and keys may be long */
START_TEST(streaming_hash_equals_nginx_murmur2_unaligned_and_long)
{
    size_t         salt_off, key_off, salt_len, key_len, i;
    unsigned char  buf[2 * 1100], joined[1200];

    srand(2);

    for (i = 0; i < sizeof(buf); i++) {
        buf[i] = (unsigned char) rand();
    }

    for (salt_off = 0; salt_off < 4; salt_off++) {
        for (key_off = 0; key_off < 4; key_off++) {
            for (salt_len = 0; salt_len < 9; salt_len++) {
                for (key_len = 0; key_len < 1100; key_len += 1 + key_len / 8)
                {
                    const unsigned char  *salt, *key;

                    salt = buf + salt_off;
                    key = buf + 1000 + key_off;

                    memcpy(joined, salt, salt_len);
                    joined[salt_len] = ':';
                    memcpy(joined + salt_len + 1, key, key_len);

                    ck_assert_uint_eq(
                        ngx_http_canary_murmur2(salt, salt_len, key,
                                                key_len),
                        reference_murmur2(joined, salt_len + 1 + key_len));
                }
            }
        }
    }
}
END_TEST


/*
 * The word loads never leave the salt or the key: each is put against an
 * unreadable page, at its end and at its start, so that a load of a byte
 * outside faults (without ASan too): salts of 0 to 9 bytes (":" at every
 * place of a word), keys of 0 to 23.
 */
START_TEST(streaming_hash_reads_only_salt_and_key)
{
    long            pg;
    size_t          salt_len, key_len, i, a, b;
    unsigned char  *m, *spage, *kpage, salt[16], key[32], joined[64];
    const unsigned char  *sp, *kp;

    pg = sysconf(_SC_PAGESIZE);

    /* unreadable, salt page, unreadable, key page, unreadable */
    m = mmap(NULL, 5 * pg, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    ck_assert_int_eq(mprotect(m, pg, PROT_NONE), 0);
    ck_assert_int_eq(mprotect(m + 2 * pg, pg, PROT_NONE), 0);
    ck_assert_int_eq(mprotect(m + 4 * pg, pg, PROT_NONE), 0);

    spage = m + pg;
    kpage = m + 3 * pg;

    srand(3);

    for (salt_len = 0; salt_len <= 9; salt_len++) {
        for (key_len = 0; key_len < 24; key_len++) {

            for (i = 0; i < salt_len; i++) {
                salt[i] = (unsigned char) rand();
            }

            for (i = 0; i < key_len; i++) {
                key[i] = (unsigned char) rand();
            }

            memcpy(joined, salt, salt_len);
            joined[salt_len] = ':';
            memcpy(joined + salt_len + 1, key, key_len);

            for (a = 0; a < 2; a++) {
                for (b = 0; b < 2; b++) {
                    sp = a ? spage : spage + pg - salt_len;
                    kp = b ? kpage : kpage + pg - key_len;

                    memcpy((unsigned char *) sp, salt, salt_len);
                    memcpy((unsigned char *) kp, key, key_len);

                    ck_assert_uint_eq(
                        ngx_http_canary_murmur2(sp, salt_len, kp, key_len),
                        reference_murmur2(joined, salt_len + 1 + key_len));
                }
            }
        }
    }

    munmap(m, 5 * pg);
}
END_TEST


/*
 * Tenants must not move between versions: these hashes and buckets were
 * computed by the byte-at-a-time implementation of 2026-11 (and agree
 * with t/lib/CanaryTest.pm); every later one must give the same.
 */
START_TEST(known_tenants_keep_their_buckets)
{
    size_t  i;

    static const struct {
        const char  *salt;
        const char  *key;
        uint32_t     hash;
        uint32_t     bucket;
    } known[] = {
        { "", "tenant-1", 0x890ba0f9U, 5353 },
        { "", "tenant-42", 0x1ccca76aU, 1124 },
        { "v1", "tenant-42", 0xb3d2b568U, 7024 },
        { "app", "acme-corp", 0x689f92dcU, 4086 },
        { "2024-q3", "9f86d081884c7d659a2feaa0c55ad015", 0x1862c967U, 952 },
        { "", "", 0xfa082a36U, 9766 },
        { "s", "x", 0xd7bf0116U, 8427 },
        { "salt", "ab", 0x22817f7eU, 1347 },
        { "", "caf\xc3\xa9", 0x5b051bf9U, 3555 }
    };

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        const unsigned char  *salt, *key;

        salt = (const unsigned char *) known[i].salt;
        key = (const unsigned char *) known[i].key;

        ck_assert_uint_eq(ngx_http_canary_murmur2(salt, strlen(known[i].salt),
                                                  key, strlen(known[i].key)),
                          known[i].hash);
        ck_assert_uint_eq(ngx_http_canary_bucket(salt, strlen(known[i].salt),
                                                 key, strlen(known[i].key)),
                          known[i].bucket);
    }
}
END_TEST


START_TEST(bucket_is_hash_scaled_to_ten_thousand)
{
    uint32_t       h;
    const char    *key = "tenant-42";
    unsigned char  joined[64];

    memcpy(joined, "v1:", 3);
    memcpy(joined + 3, key, strlen(key));

    h = reference_murmur2(joined, 3 + strlen(key));

    ck_assert_uint_eq(ngx_http_canary_bucket((const unsigned char *) "v1", 2,
                                             (const unsigned char *) key,
                                             strlen(key)),
                      (uint32_t) (((uint64_t) h * 10000) >> 32));
}
END_TEST


START_TEST(buckets_are_uniform_over_many_tenants)
{
    int            i, n, canary;
    char           key[32];

    canary = 0;

    for (i = 0; i < 100000; i++) {
        n = snprintf(key, sizeof(key), "tenant-%d", i);

        if (ngx_http_canary_bucket((const unsigned char *) "s", 1,
                                   (const unsigned char *) key, n) < 500)
        {
            canary++;
        }
    }

    /* 5% +- 0.3 points */
    ck_assert_int_ge(canary, 4700);
    ck_assert_int_le(canary, 5300);
}
END_TEST


UNIT_MAIN("hash", NULL, NULL, 0)
