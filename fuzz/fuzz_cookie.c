
/*
 * The cookie lookup: one Cookie header value from a client and the
 * cookie name of a split.
 *
 * Input: byte 0 is the length of the name (taken modulo what is left),
 * then the name, then the header value ("\6canarya=1; canary=always").
 * Both are heap blocks of exactly their size.
 *
 * Checked against a plain reference of the documented rule: the header
 * is cut at ";", each piece loses its leading blanks (space, tab); the
 * first piece whose bytes before its first "=" are exactly the name
 * wins; its value is what follows the "=", less trailing blanks, less
 * one pair of surrounding double quotes.  The value returned lies inside
 * the header and holds no ";".
 */


#include "fuzz_input.h"

#include "ngx_http_canary_parse.h"


static int
ref_find(const uint8_t *h, size_t len, const uint8_t *name, size_t nlen,
    size_t *vstart, size_t *vlen)
{
    size_t  s, e, p, eq, b, v;

    for (s = 0; s <= len; s = e + 1) {
        for (e = s; e < len && h[e] != ';'; e++) { /* void */ }

        for (p = s; p < e && (h[p] == ' ' || h[p] == '\t'); p++) { /* */ }

        for (eq = p; eq < e && h[eq] != '='; eq++) { /* void */ }

        if (eq == e || eq - p != nlen || memcmp(h + p, name, nlen) != 0) {
            if (e == len) {
                break;
            }

            continue;
        }

        v = eq + 1;

        for (b = e; b > v && (h[b - 1] == ' ' || h[b - 1] == '\t'); b--) {
            /* void */
        }

        if (b - v >= 2 && h[v] == '"' && h[b - 1] == '"') {
            v++;
            b--;
        }

        *vstart = v;
        *vlen = b - v;

        return 1;
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                   found, want;
    size_t                nlen, hlen, vlen, rstart, rlen;
    uint8_t              *name, *header;
    const unsigned char  *value;

    if (size < 1) {
        return 0;
    }

    nlen = data[0] % size;
    hlen = size - 1 - nlen;

    name = fuzz_dup(data + 1, nlen);
    header = fuzz_dup(data + 1 + nlen, hlen);

    value = NULL;
    vlen = 0;

    found = ngx_http_canary_find_cookie(header, hlen, name, nlen, &value,
                                        &vlen);
    want = ref_find(header, hlen, name, nlen, &rstart, &rlen);

    fuzz_assert(found == want, "found %d, the rule says %d", found, want);

    if (found) {
        fuzz_assert(value >= header && value + vlen <= header + hlen,
                    "the value is outside the header");
        fuzz_assert((size_t) (value - header) == rstart && vlen == rlen,
                    "value at %zu of %zu bytes, the rule says %zu of %zu",
                    (size_t) (value - header), vlen, rstart, rlen);
        fuzz_assert(vlen == 0 || memchr(value, ';', vlen) == NULL,
                    "a \";\" in the value");
    }

    free(name);
    free(header);

    return 0;
}
