
/*
 * Parsers for outside input.  Each one reads at most len bytes, never
 * needs a terminating zero and never allocates.
 */


#include <string.h>

#include "ngx_http_canary_parse.h"


int32_t
ngx_http_canary_parse_weight(const unsigned char *p, size_t len)
{
    size_t    i, frac;
    int32_t   whole, hundredths;

    if (len == 0 || len >= NGX_HTTP_CANARY_WEIGHT_LEN) {
        return -1;
    }

    whole = 0;

    for (i = 0; i < len && p[i] != '.'; i++) {
        if (p[i] < '0' || p[i] > '9' || i == 3) {
            return -1;
        }

        whole = whole * 10 + (p[i] - '0');
    }

    if (i == 0) {
        return -1;
    }

    hundredths = 0;

    if (i < len) {
        /* p[i] == '.': one or two digits must follow */
        frac = len - i - 1;

        if (frac == 0 || frac > 2) {
            return -1;
        }

        for (i++; i < len; i++) {
            if (p[i] < '0' || p[i] > '9') {
                return -1;
            }

            hundredths = hundredths * 10 + (p[i] - '0');
        }

        if (frac == 1) {
            hundredths *= 10;
        }
    }

    whole = whole * 100 + hundredths;

    if (whole > NGX_HTTP_CANARY_WEIGHT_MAX) {
        return -1;
    }

    return whole;
}


size_t
ngx_http_canary_format_weight(unsigned char *buf, uint32_t weight)
{
    size_t    n;
    uint32_t  frac;

    if (weight > NGX_HTTP_CANARY_WEIGHT_MAX) {
        weight = NGX_HTTP_CANARY_WEIGHT_MAX;
    }

    n = 0;

    if (weight >= 10000) {
        buf[n++] = '1';
    }

    if (weight >= 1000) {
        buf[n++] = (unsigned char) ('0' + weight / 1000 % 10);
    }

    buf[n++] = (unsigned char) ('0' + weight / 100 % 10);

    frac = weight % 100;

    if (frac == 0) {
        return n;
    }

    buf[n++] = '.';
    buf[n++] = (unsigned char) ('0' + frac / 10);

    if (frac % 10) {
        buf[n++] = (unsigned char) ('0' + frac % 10);
    }

    return n;
}


int
ngx_http_canary_find_cookie(const unsigned char *p, size_t len,
    const unsigned char *name, size_t name_len,
    const unsigned char **value, size_t *value_len)
{
    const unsigned char  *end, *start, *eq, *vend;

    end = p + len;

    while (p < end) {

        /* skip separators and white space before a cookie-pair */
        while (p < end && (*p == ' ' || *p == '\t' || *p == ';')) {
            p++;
        }

        start = p;
        eq = NULL;

        while (p < end && *p != ';') {
            if (eq == NULL && *p == '=') {
                eq = p;
            }

            p++;
        }

        if (eq == NULL || (size_t) (eq - start) != name_len) {
            continue;
        }

        if (name_len && memcmp(start, name, name_len) != 0) {
            continue;
        }

        vend = p;

        while (vend > eq + 1 && (vend[-1] == ' ' || vend[-1] == '\t')) {
            vend--;
        }

        start = eq + 1;

        /* RFC 6265 allows a value in double quotes */
        if (vend - start >= 2 && *start == '"' && vend[-1] == '"') {
            start++;
            vend--;
        }

        *value = start;
        *value_len = (size_t) (vend - start);

        return 1;
    }

    return 0;
}
