
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


int
ngx_http_canary_parse_enabled(const unsigned char *p, size_t len)
{
    if (len != 1 || (p[0] != '0' && p[0] != '1')) {
        return -1;
    }

    return p[0] - '0';
}


int
ngx_http_canary_parse_generation(const unsigned char *p, size_t len,
    uint64_t *value)
{
    size_t    i;
    uint64_t  n;

    /* 18 digits cannot overflow 64 bits */
    if (len == 0 || len > 18) {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        n = n * 10 + (uint64_t) (p[i] - '0');
    }

    *value = n;

    return 0;
}


int
ngx_http_canary_valid_state(const unsigned char *p, size_t len)
{
    size_t  i;

    if (len > NGX_HTTP_CANARY_STATE_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] >= 0x7f) {
            return 0;
        }
    }

    return 1;
}


int
ngx_http_canary_valid_node(const unsigned char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len >= NGX_HTTP_CANARY_NODE_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z')
              || (p[i] >= '0' && p[i] <= '9')
              || p[i] == '.' || p[i] == '_' || p[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


ngx_http_canary_field_e
ngx_http_canary_update_field(ngx_http_canary_update_t *u,
    const unsigned char *f, size_t flen, const unsigned char *v, size_t vlen)
{
    int      e;
    size_t   n;
    int32_t  w;

#define ngx_http_canary_field_is(s)                                          \
    (flen == sizeof(s) - 1 && memcmp(f, s, flen) == 0)

    if (ngx_http_canary_field_is(NGX_HTTP_CANARY_FIELD_WEIGHT)) {
        w = ngx_http_canary_parse_weight(v, vlen);
        if (w < 0) {
            return NGX_HTTP_CANARY_FIELD_BAD_VALUE;
        }

        u->weight = (uint32_t) w;
        u->has_weight = 1;
        return NGX_HTTP_CANARY_FIELD_OK;
    }

    if (ngx_http_canary_field_is(NGX_HTTP_CANARY_FIELD_SHADOW)) {
        w = ngx_http_canary_parse_weight(v, vlen);
        if (w < 0) {
            return NGX_HTTP_CANARY_FIELD_BAD_VALUE;
        }

        u->shadow = (uint32_t) w;
        u->has_shadow = 1;
        return NGX_HTTP_CANARY_FIELD_OK;
    }

    if (ngx_http_canary_field_is(NGX_HTTP_CANARY_FIELD_ENABLED)) {
        e = ngx_http_canary_parse_enabled(v, vlen);
        if (e < 0) {
            return NGX_HTTP_CANARY_FIELD_BAD_VALUE;
        }

        u->enabled = e;
        u->has_enabled = 1;
        return NGX_HTTP_CANARY_FIELD_OK;
    }

    if (ngx_http_canary_field_is(NGX_HTTP_CANARY_FIELD_GENERATION)) {
        if (ngx_http_canary_parse_generation(v, vlen, &u->generation) != 0) {
            return NGX_HTTP_CANARY_FIELD_BAD_VALUE;
        }

        u->has_generation = 1;
        return NGX_HTTP_CANARY_FIELD_OK;
    }

    if (ngx_http_canary_field_is(NGX_HTTP_CANARY_FIELD_STATE)
        || ngx_http_canary_field_is(NGX_HTTP_CANARY_FIELD_UPDATED_BY)
        || ngx_http_canary_field_is(NGX_HTTP_CANARY_FIELD_UPDATED_AT))
    {
        if (!ngx_http_canary_valid_state(v, vlen)) {
            return NGX_HTTP_CANARY_FIELD_BAD_VALUE;
        }

        if (ngx_http_canary_field_is(NGX_HTTP_CANARY_FIELD_STATE)) {
            u->state = v;
            u->state_len = vlen;
            u->has_state = 1;

        } else if (ngx_http_canary_field_is(NGX_HTTP_CANARY_FIELD_UPDATED_BY)) {
            u->updated_by = v;
            u->updated_by_len = vlen;
            u->has_updated_by = 1;

        } else {
            u->updated_at = v;
            u->updated_at_len = vlen;
            u->has_updated_at = 1;
        }

        return NGX_HTTP_CANARY_FIELD_OK;
    }

#undef ngx_http_canary_field_is

    /* weight.COHORT */
    n = sizeof(NGX_HTTP_CANARY_FIELD_COHORT) - 1;

    if (flen > n && memcmp(f, NGX_HTTP_CANARY_FIELD_COHORT, n) == 0) {
        w = ngx_http_canary_parse_weight(v, vlen);
        if (w < 0) {
            return NGX_HTTP_CANARY_FIELD_BAD_VALUE;
        }

        if (u->ncohorts == NGX_HTTP_CANARY_UPDATE_COHORTS) {
            return NGX_HTTP_CANARY_FIELD_TOO_MANY;
        }

        u->cohorts[u->ncohorts].name = f + n;
        u->cohorts[u->ncohorts].len = flen - n;
        u->cohorts[u->ncohorts].weight = (uint32_t) w;
        u->ncohorts++;

        return NGX_HTTP_CANARY_FIELD_OK;
    }

    return NGX_HTTP_CANARY_FIELD_UNKNOWN;
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
