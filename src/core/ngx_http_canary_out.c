
/*
 * The output buffer of the renderers, with JSON and Prometheus escaping.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_canary_report.h"


/* the renderers' pieces are a line at most: no allocation for those */
#define NGX_HTTP_CANARY_OUT_PIECE  512


static void ngx_http_canary_out_byte(ngx_http_canary_out_t *out,
    unsigned char c);


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
    size_t  i;

    ngx_http_canary_out_byte(out, '"');

    for (i = 0; i < len; i++) {
        switch (p[i]) {

        case '"':
        case '\\':
            ngx_http_canary_out_byte(out, '\\');
            ngx_http_canary_out_byte(out, p[i]);
            break;

        default:
            if (p[i] < 0x20 || p[i] >= 0x7f) {
                /* bytes, not code points: keep the output valid JSON */
                ngx_http_canary_out_printf(out, "\\u%04x", p[i]);

            } else {
                ngx_http_canary_out_byte(out, p[i]);
            }
        }
    }

    ngx_http_canary_out_byte(out, '"');
}


void
ngx_http_canary_out_label_value(ngx_http_canary_out_t *out,
    const unsigned char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        switch (p[i]) {

        case '"':
        case '\\':
            ngx_http_canary_out_byte(out, '\\');
            ngx_http_canary_out_byte(out, p[i]);
            break;

        case '\n':
            ngx_http_canary_out_byte(out, '\\');
            ngx_http_canary_out_byte(out, 'n');
            break;

        default:
            ngx_http_canary_out_byte(out, p[i]);
        }
    }
}
