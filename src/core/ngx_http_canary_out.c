
/*
 * The output buffer of the renderers, with JSON and Prometheus escaping,
 * and their numbers, written by hand: a scrape holds tens of thousands
 * of them, and vsnprintf() cost ten times the rest of the page.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_canary_report.h"


/* the renderers' pieces are a line at most: no allocation for those */
#define NGX_HTTP_CANARY_OUT_PIECE  512


/* "%llu" of a uint64_t: 20 digits at most */
#define NGX_HTTP_CANARY_OUT_UINT_LEN  20


static void ngx_http_canary_out_byte(ngx_http_canary_out_t *out,
    unsigned char c);
static unsigned char *ngx_http_canary_out_digits(unsigned char *last,
    uint64_t n);


static const uint64_t  ngx_http_canary_out_pow10[] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
    1000000000
};


/* two digits at a time: "00" to "99" */
static const char  ngx_http_canary_out_two[] =
    "0001020304050607080910111213141516171819"
    "2021222324252627282930313233343536373839"
    "4041424344454647484950515253545556575859"
    "6061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";


static const char  ngx_http_canary_out_hex[] = "0123456789abcdef";


void
ngx_http_canary_out_printf(ngx_http_canary_out_t *out, const char *fmt, ...)
{
    int      n;
    char     piece[NGX_HTTP_CANARY_OUT_PIECE], *p;
    size_t   room;
    va_list  args;

    room = (size_t) (out->end - out->pos);

    va_start(args, fmt);
    n = vsnprintf((char *) out->pos, room, fmt, args);
    va_end(args);

    if (n < 0) {
        return;
    }

    out->need += (size_t) n;

    if ((size_t) n < room) {
        out->pos += n;
        return;
    }

    /*
     * a piece of exactly the room left fits, but vsnprintf() put its
     * terminating zero over its last byte: format it once more aside
     */
    if ((size_t) n == room) {
        p = (size_t) n < sizeof(piece) ? piece : malloc((size_t) n + 1);

        if (p != NULL) {
            va_start(args, fmt);
            (void) vsnprintf(p, (size_t) n + 1, fmt, args);
            va_end(args);

            memcpy(out->pos, p, (size_t) n);
            out->pos += n;

            if (p != piece) {
                free(p);
            }

            return;
        }
    }

    /* did not fit: stop writing, keep counting */
    out->end = out->pos;
}


/* writes n's digits backwards, ending at last; returns the first */

static unsigned char *
ngx_http_canary_out_digits(unsigned char *last, uint64_t n)
{
    uint32_t  n32, r;

    while (n > UINT32_MAX) {
        r = (uint32_t) (n % 100);
        n /= 100;
        last -= 2;
        memcpy(last, &ngx_http_canary_out_two[2 * r], 2);
    }

    /* the rest in 32 bits: cheaper divisions */
    n32 = (uint32_t) n;

    while (n32 >= 100) {
        r = n32 % 100;
        n32 /= 100;
        last -= 2;
        memcpy(last, &ngx_http_canary_out_two[2 * r], 2);
    }

    if (n32 >= 10) {
        last -= 2;
        memcpy(last, &ngx_http_canary_out_two[2 * n32], 2);

    } else {
        *--last = (unsigned char) ('0' + n32);
    }

    return last;
}


void
ngx_http_canary_out_uint(ngx_http_canary_out_t *out, uint64_t n)
{
    unsigned char  buf[NGX_HTTP_CANARY_OUT_UINT_LEN], *p;

    p = ngx_http_canary_out_digits(buf + sizeof(buf), n);

    ngx_http_canary_out_bytes(out, p, (size_t) (buf + sizeof(buf) - p));
}


/*
 * A list of numbers, comma-separated: a histogram's counts, mostly 0.
 * With room for the longest, written in place, without counting each.
 */

void
ngx_http_canary_out_uints(ngx_http_canary_out_t *out, const uint64_t *v,
    size_t n)
{
    size_t          i, len;
    unsigned char  *p, *q, buf[NGX_HTTP_CANARY_OUT_UINT_LEN];

    if ((size_t) (out->end - out->pos)
        < n * (NGX_HTTP_CANARY_OUT_UINT_LEN + 1))
    {
        for (i = 0; i < n; i++) {
            if (i) {
                ngx_http_canary_out_literal(out, ",");
            }

            ngx_http_canary_out_uint(out, v[i]);
        }

        return;
    }

    p = out->pos;

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        if (v[i] < 10) {
            *p++ = (unsigned char) ('0' + v[i]);
            continue;
        }

        q = ngx_http_canary_out_digits(buf + sizeof(buf), v[i]);
        len = (size_t) (buf + sizeof(buf) - q);

        memcpy(p, q, len);
        p += len;
    }

    out->need += (size_t) (p - out->pos);
    out->pos = p;
}


void
ngx_http_canary_out_int(ngx_http_canary_out_t *out, int64_t n)
{
    uint64_t       u;
    unsigned char  buf[NGX_HTTP_CANARY_OUT_UINT_LEN + 1], *p;

    /* INT64_MIN too: its magnitude is a uint64_t */
    u = n < 0 ? (uint64_t) 0 - (uint64_t) n : (uint64_t) n;

    p = ngx_http_canary_out_digits(buf + sizeof(buf), u);

    if (n < 0) {
        *--p = '-';
    }

    ngx_http_canary_out_bytes(out, p, (size_t) (buf + sizeof(buf) - p));
}


void
ngx_http_canary_out_fixed(ngx_http_canary_out_t *out, uint64_t n,
    unsigned digits)
{
    unsigned       i;
    uint32_t       frac, r;
    unsigned char  buf[NGX_HTTP_CANARY_OUT_UINT_LEN + 1 + 9], *p;

    p = buf + sizeof(buf);

    if (digits) {

        /* the renderers' milliseconds and seconds: constant divisors */
        switch (digits) {

        case 3:
            frac = (uint32_t) (n % 1000);
            n /= 1000;
            break;

        case 6:
            frac = (uint32_t) (n % 1000000);
            n /= 1000000;
            break;

        default:
            if (digits > 9) {
                digits = 9;
            }

            frac = (uint32_t) (n % ngx_http_canary_out_pow10[digits]);
            n /= ngx_http_canary_out_pow10[digits];
        }

        for (i = digits; i >= 2; i -= 2) {
            r = frac % 100;
            frac /= 100;
            p -= 2;
            memcpy(p, &ngx_http_canary_out_two[2 * r], 2);
        }

        if (i) {
            *--p = (unsigned char) ('0' + frac);
        }

        *--p = '.';
    }

    p = ngx_http_canary_out_digits(p, n);

    ngx_http_canary_out_bytes(out, p, (size_t) (buf + sizeof(buf) - p));
}


/*
 * printf's "%.*f": x is m * 2^e exactly, so x * 10^digits is the integer
 * m * 10^digits shifted right by -e, which 128 bits hold for |x| < 1e9;
 * the bits shifted out round it, half to even (an exact tie only: glibc
 * rounds the exact value in the default rounding mode).  Anything else
 * (no such value in a report: huge, inf, nan) goes to vsnprintf().
 */

void
ngx_http_canary_out_double(ngx_http_canary_out_t *out, double x,
    unsigned digits)
{
#if defined(__SIZEOF_INT128__)
    int                s;
    uint64_t           bits, m, r;
    unsigned __int128  p, rem, half;

    if (digits <= 9 && x < 1e9 && x > -1e9) {
        memcpy(&bits, &x, sizeof(bits));

        m = bits & (((uint64_t) 1 << 52) - 1);
        s = (int) ((bits >> 52) & 0x7ff);

        if (s == 0) {
            s = 1074;                           /* subnormal, or zero */

        } else {
            m |= (uint64_t) 1 << 52;
            s = 1075 - s;                       /* |x| < 2^30: s >= 23 */
        }

        p = (unsigned __int128) m * ngx_http_canary_out_pow10[digits];

        if (s >= 128) {
            /* p < 2^83: below half of 2^s */
            r = 0;

        } else {
            r = (uint64_t) (p >> s);
            rem = p - ((unsigned __int128) r << s);
            half = (unsigned __int128) 1 << (s - 1);

            if (rem > half || (rem == half && (r & 1))) {
                r++;
            }
        }

        /* printf keeps the sign of a negative that rounds to 0 */
        if (bits >> 63) {
            ngx_http_canary_out_byte(out, '-');
        }

        ngx_http_canary_out_fixed(out, r, digits);
        return;
    }
#endif

    ngx_http_canary_out_printf(out, "%.*f", (int) digits, x);
}


void
ngx_http_canary_out_cstr(ngx_http_canary_out_t *out, const char *s)
{
    ngx_http_canary_out_bytes(out, s, strlen(s));
}


static void
ngx_http_canary_out_byte(ngx_http_canary_out_t *out, unsigned char c)
{
    out->need++;

    if (out->pos < out->end) {
        *out->pos++ = c;
    }
}


void
ngx_http_canary_out_json_string(ngx_http_canary_out_t *out,
    const unsigned char *p, size_t len)
{
    size_t         i, plain;
    unsigned char  esc[6];

    ngx_http_canary_out_byte(out, '"');

    plain = 0;

    for (i = 0; i < len; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\') {
            continue;
        }

        /* the run of bytes that need no escape, at once */
        ngx_http_canary_out_bytes(out, p + plain, i - plain);
        plain = i + 1;

        if (p[i] == '"' || p[i] == '\\') {
            ngx_http_canary_out_byte(out, '\\');
            ngx_http_canary_out_byte(out, p[i]);
            continue;
        }

        /* bytes, not code points: keep the output valid JSON */
        esc[0] = '\\';
        esc[1] = 'u';
        esc[2] = '0';
        esc[3] = '0';
        esc[4] = (unsigned char) ngx_http_canary_out_hex[p[i] >> 4];
        esc[5] = (unsigned char) ngx_http_canary_out_hex[p[i] & 0xf];

        ngx_http_canary_out_bytes(out, esc, sizeof(esc));
    }

    if (plain < len) {
        ngx_http_canary_out_bytes(out, p + plain, len - plain);
    }

    ngx_http_canary_out_byte(out, '"');
}


void
ngx_http_canary_out_label_value(ngx_http_canary_out_t *out,
    const unsigned char *p, size_t len)
{
    size_t  i, plain;

    plain = 0;

    for (i = 0; i < len; i++) {
        if (p[i] != '"' && p[i] != '\\' && p[i] != '\n') {
            continue;
        }

        ngx_http_canary_out_bytes(out, p + plain, i - plain);
        plain = i + 1;

        ngx_http_canary_out_byte(out, '\\');
        ngx_http_canary_out_byte(out, p[i] == '\n' ? 'n' : p[i]);
    }

    if (plain < len) {
        ngx_http_canary_out_bytes(out, p + plain, len - plain);
    }
}
