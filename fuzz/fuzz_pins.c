
/*
 * The pin table: built from the members of the two Redis pin sets as
 * ngx_http_canary_sync_pins() does, then looked up as each request does.
 *
 * Input: byte 0 picks how the block is sized, byte 1 separates members,
 * the rest is the members; a member's first byte is its side (odd:
 * canary, even: stable) and the other bytes its tenant key
 * ("\0\n" "1acme\n0globex\n1" + 300 bytes ...).
 *
 * The block is a heap block of exactly ngx_http_canary_pins_size()
 * bytes, so ASan sees any write or read outside it.  Checked against a
 * plain list of what was added:
 *   - sized as sync sizes it (every valid member counted), every add of
 *     a valid key returns 0 (new) or 1 (already pinned, the first side
 *     stays), never -1;
 *   - sized smaller (fewer pins or fewer key bytes), an add returns -1
 *     when there is no room and changes nothing;
 *   - keys of 0 or more than 256 bytes are refused (-1);
 *   - every added key is found with its side; keys not added (each key
 *     cut short, one byte changed, the invalid ones) are not found.
 *
 * An input whose byte 0 is 0xff is instead taken as the bytes of a
 * table itself (the header's size set to the block's real size) and
 * looked up: pins.h says every read is bounds-checked against the block
 * size, whatever the header says (an exact-size heap block: ASan sees a
 * read outside it).
 */


#include "fuzz_input.h"

#include "ngx_http_canary_pins.h"


#define FUZZ_MEMBERS_MAX  512


typedef struct {
    const uint8_t  *key;
    size_t          len;
    int             side;
} fuzz_pin_t;


static int
model_lookup(const fuzz_pin_t *m, size_t n, const uint8_t *key, size_t len)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (m[i].len == len && memcmp(m[i].key, key, len) == 0) {
            return m[i].side;
        }
    }

    return -1;
}


static void
check_lookup(const ngx_http_canary_pins_t *pins, const fuzz_pin_t *m,
    size_t n, const uint8_t *key, size_t len)
{
    int       got, want;
    uint8_t  *k;

    /* an exact-size copy: the lookup must not read past the key */
    k = fuzz_dup(key, len);

    got = ngx_http_canary_pins_lookup(pins, k, len);
    want = model_lookup(m, n, key, len);

    fuzz_assert(got == want, "lookup of a %zu-byte key: %d, not %d", len,
                got, want);

    free(k);
}


static void
untrusted_block(const uint8_t *data, size_t size)
{
    size_t                   len, klen;
    uint8_t                 *block;
    const uint8_t           *key;
    ngx_http_canary_pins_t  *pins;

    /* the key first, the block is the rest */
    klen = size > 2 ? data[1] : 0;

    if (size < 2 + klen + sizeof(ngx_http_canary_pins_t)) {
        return;
    }

    key = data + 2;
    len = size - 2 - klen;

    block = fuzz_dup(data + 2 + klen, len);
    pins = (ngx_http_canary_pins_t *) block;
    pins->size = (uint32_t) len;

    (void) ngx_http_canary_pins_lookup(pins, key, klen);

    free(block);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                      rc;
    size_t                   i, n, nvalid, keys, cap, keyroom, npinned, bsz;
    uint8_t                  mode, sep, *member, *flipped;
    fuzz_in_t                in;
    fuzz_pin_t              *members, *model;
    const uint8_t           *piece;
    size_t                   pl;
    ngx_http_canary_pins_t  *pins;

    if (size < 2) {
        return 0;
    }

    if (data[0] == 0xff) {
        untrusted_block(data, size);
        return 0;
    }

    fuzz_in_init(&in, data, size);
    mode = fuzz_in_u8(&in);
    sep = fuzz_in_u8(&in);

    members = calloc(FUZZ_MEMBERS_MAX, sizeof(fuzz_pin_t));
    model = calloc(FUZZ_MEMBERS_MAX, sizeof(fuzz_pin_t));

    if (members == NULL || model == NULL) {
        abort();
    }

    n = 0;
    nvalid = 0;
    keys = 0;

    while (n < FUZZ_MEMBERS_MAX && fuzz_in_split(&in, sep, &piece, &pl)) {
        if (pl == 0) {
            continue;
        }

        members[n].side = piece[0] & 1;
        members[n].key = fuzz_dup(piece + 1, pl - 1);
        members[n].len = pl - 1;

        /* as sync: only keys of 1 to 256 bytes count */
        if (members[n].len >= 1
            && members[n].len <= NGX_HTTP_CANARY_PIN_KEY_MAX)
        {
            nvalid++;
            keys += members[n].len;
        }

        n++;
    }

    if (nvalid == 0) {
        goto done;
    }

    /* mode 0: sized as sync sizes it; else fewer pins or key bytes */
    cap = nvalid;
    keyroom = keys;

    if (mode & 1) {
        cap = 1 + (mode >> 1) % nvalid;
    }

    if (mode & 2) {
        keyroom = keys * (mode >> 2) / 64;
    }

    bsz = ngx_http_canary_pins_size(cap, keyroom);

    fuzz_assert(bsz >= sizeof(ngx_http_canary_pins_t) + 8 * sizeof(uint32_t)
                       + cap * sizeof(ngx_http_canary_pin_t) + keyroom,
                "pins_size(%zu, %zu) = %zu is too small", cap, keyroom, bsz);

    pins = malloc(bsz);
    if (pins == NULL) {
        abort();
    }

    memset(pins, 0xa5, bsz);
    ngx_http_canary_pins_init(pins, bsz, cap);

    fuzz_assert(pins->nslots >= 2 * cap
                && (pins->nslots & (pins->nslots - 1)) == 0,
                "%u slots for %zu pins", pins->nslots, cap);

    npinned = 0;

    for (i = 0; i < n; i++) {
        member = (uint8_t *) members[i].key;

        rc = ngx_http_canary_pins_add(pins, member, members[i].len,
                                      (unsigned) members[i].side);

        if (members[i].len == 0
            || members[i].len > NGX_HTTP_CANARY_PIN_KEY_MAX)
        {
            fuzz_assert(rc == -1, "a %zu-byte key was pinned (%d)",
                        members[i].len, rc);
            continue;
        }

        if (model_lookup(model, npinned, member, members[i].len) >= 0) {
            /* a full table may say -1 before it sees the duplicate */
            fuzz_assert(rc == 1 || (rc == -1 && pins->npins == cap),
                        "a key pinned twice: %d", rc);
            continue;
        }

        if (rc == -1) {
            fuzz_assert(cap < nvalid || keyroom < keys,
                        "no room in a table sized for every member");
            continue;
        }

        fuzz_assert(rc == 0, "pins_add of a new key: %d", rc);

        model[npinned] = members[i];
        npinned++;

        fuzz_assert(pins->npins == npinned, "%u pins, %zu added",
                    pins->npins, npinned);
    }

    fuzz_assert(pins->npins <= cap && pins->size == bsz
                && pins->capacity == cap,
                "header changed: %u pins, size %u, capacity %u",
                pins->npins, pins->size, pins->capacity);

    /* every member (pinned or not), cut short and with a byte changed */

    for (i = 0; i < n; i++) {
        check_lookup(pins, model, npinned, members[i].key, members[i].len);

        if (members[i].len > 1) {
            check_lookup(pins, model, npinned, members[i].key,
                         members[i].len - 1);

            flipped = fuzz_dup(members[i].key, members[i].len);
            flipped[members[i].len / 2] ^= 0x20;
            check_lookup(pins, model, npinned, flipped, members[i].len);
            free(flipped);
        }
    }

    free(pins);

done:

    for (i = 0; i < n; i++) {
        free((void *) members[i].key);
    }

    free(members);
    free(model);

    return 0;
}
