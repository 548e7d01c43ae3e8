
/*
 * The canary_status location: JSON (default), Prometheus text, or the
 * self-contained HTML dashboard, chosen by ?format= or by Accept.
 *
 *     ?format=json|prometheus|html   ?split=NAME   ?window=SECONDS
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_canary_module.h"
#include "ngx_http_canary_dashboard.h"


typedef enum {
    NGX_HTTP_CANARY_FORMAT_JSON = 0,
    NGX_HTTP_CANARY_FORMAT_PROMETHEUS,
    NGX_HTTP_CANARY_FORMAT_HTML
} ngx_http_canary_format_e;


static ngx_int_t ngx_http_canary_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_canary_status_format(ngx_http_request_t *r,
    ngx_http_canary_format_e *format, ngx_str_t *value);
static ngx_int_t ngx_http_canary_status_render(ngx_http_request_t *r,
    ngx_http_canary_format_e format, ngx_http_canary_report_t *rep,
    ngx_buf_t **out);
static ngx_int_t ngx_http_canary_status_bad(ngx_http_request_t *r,
    const char *fmt, ngx_str_t *value);
static ngx_int_t ngx_http_canary_status_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_buf_t *b);


static ngx_str_t  ngx_http_canary_types[] = {
    ngx_string("application/json"),
    ngx_string("text/plain; version=0.0.4; charset=utf-8"),
    ngx_string("text/html; charset=utf-8")
};


/*
 * Bytes per split of this worker's last page in each format (JSON,
 * Prometheus): a size hint, nothing more, so that a scrape allocates
 * and renders once.  A wrong hint costs a second rendering, never a
 * wrong page.
 */
static size_t  ngx_http_canary_status_per_split[2];


char *
ngx_http_canary_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_canary_loc_conf_t *clcf = conf;

    ngx_http_core_loc_conf_t  *core;

    if (clcf->status) {
        return "is duplicate";
    }

    clcf->status = 1;

    core = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    core->handler = ngx_http_canary_status_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_canary_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc, n;
    ngx_str_t                     split, window, value;
    ngx_buf_t                    *b;
    ngx_http_canary_format_e      format;
    ngx_http_canary_report_t     *rep;
    ngx_http_canary_main_conf_t  *cmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_canary_status_format(r, &format, &value) != NGX_OK) {
        return ngx_http_canary_status_bad(r,
                   "unknown format \"%V\": json, prometheus or html", &value);
    }

    n = NGX_HTTP_CANARY_WINDOW_MAX;

    if (ngx_http_arg(r, (u_char *) "window", 6, &window) == NGX_OK) {
        n = ngx_atoi(window.data, window.len);

        if (n < 1 || n > NGX_HTTP_CANARY_WINDOW_MAX) {
            return ngx_http_canary_status_bad(r,
                       "invalid window \"%V\": 1 to 60 seconds", &window);
        }
    }

    if (ngx_http_arg(r, (u_char *) "split", 5, &split) != NGX_OK) {
        ngx_str_null(&split);
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_canary_module);

    /* the dashboard asks for the JSON with the same arguments: refuse
     * them here too, not with a page that can never load */

    if (format == NGX_HTTP_CANARY_FORMAT_HTML) {
        if (split.len && ngx_http_canary_find_split(cmcf, &split) == NULL) {
            return ngx_http_canary_status_bad(r, "unknown split \"%V\"",
                                              &split);
        }

        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->start = b->pos = (u_char *) ngx_http_canary_dashboard;
        b->end = b->last = b->pos + sizeof(ngx_http_canary_dashboard) - 1;
        b->memory = 1;

        return ngx_http_canary_status_send(r, NGX_HTTP_OK,
                                           &ngx_http_canary_types[format], b);
    }

    if (cmcf->shm_zone == NULL) {
        return ngx_http_canary_status_bad(r, "no canary_zone configured",
                                          NULL);
    }

    rep = ngx_palloc(r->pool, sizeof(ngx_http_canary_report_t));
    if (rep == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_canary_report(r, cmcf, &split, n, rep);

    if (rc == NGX_DECLINED) {
        return ngx_http_canary_status_bad(r, "unknown split \"%V\"", &split);
    }

    if (rc != NGX_OK
        || ngx_http_canary_status_render(r, format, rep, &b) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_canary_status_send(r, NGX_HTTP_OK,
                                       &ngx_http_canary_types[format], b);
}


/* NGX_ERROR: an unknown ?format=, left in value */

static ngx_int_t
ngx_http_canary_status_format(ngx_http_request_t *r,
    ngx_http_canary_format_e *format, ngx_str_t *value)
{
    ngx_table_elt_t  *accept;

    if (ngx_http_arg(r, (u_char *) "format", 6, value) == NGX_OK) {

        if (value->len == 4 && ngx_strncmp(value->data, "json", 4) == 0) {
            *format = NGX_HTTP_CANARY_FORMAT_JSON;

        } else if (value->len == 10
                   && ngx_strncmp(value->data, "prometheus", 10) == 0)
        {
            *format = NGX_HTTP_CANARY_FORMAT_PROMETHEUS;

        } else if (value->len == 4
                   && ngx_strncmp(value->data, "html", 4) == 0)
        {
            *format = NGX_HTTP_CANARY_FORMAT_HTML;

        } else {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    *format = NGX_HTTP_CANARY_FORMAT_JSON;

#if (NGX_HTTP_HEADERS)
    accept = r->headers_in.accept;
#else
    accept = NULL;
#endif

    if (accept == NULL) {
        return NGX_OK;
    }

    /* a browser asks for html first; a Prometheus scraper for text/plain */
    if (ngx_strlcasestrn(accept->value.data,
                         accept->value.data + accept->value.len,
                         (u_char *) "text/html", 9 - 1)
        != NULL)
    {
        *format = NGX_HTTP_CANARY_FORMAT_HTML;

    } else if (ngx_strlcasestrn(accept->value.data,
                                accept->value.data + accept->value.len,
                                (u_char *) "text/plain", 10 - 1)
               != NULL)
    {
        *format = NGX_HTTP_CANARY_FORMAT_PROMETHEUS;
    }

    return NGX_OK;
}


/*
 * Render into a buffer of the size the last page had per split, an
 * eighth and 8k more (counters gain digits, the Prometheus help text is
 * per page); if short, once more into one of exactly the size counted.
 * Without a last page, the estimate: the most the page can take.
 */

static ngx_int_t
ngx_http_canary_status_render(ngx_http_request_t *r,
    ngx_http_canary_format_e format, ngx_http_canary_report_t *rep,
    ngx_buf_t **out)
{
    size_t                 size, *per_split;
    ngx_buf_t             *b;
    ngx_uint_t             pass;
    ngx_http_canary_out_t  o;

    per_split = &ngx_http_canary_status_per_split[
                    format == NGX_HTTP_CANARY_FORMAT_PROMETHEUS ? 1 : 0];

    if (*per_split) {
        size = rep->nsplits * (*per_split + *per_split / 8) + 8192;

    } else {
        size = ngx_http_canary_render_estimate(rep->nsplits);
    }

    for (pass = 0; pass < 2; pass++) {
        b = ngx_create_temp_buf(r->pool, size + 1);
        if (b == NULL) {
            return NGX_ERROR;
        }

        o.pos = b->pos;
        o.end = b->end;
        o.need = 0;

        if (format == NGX_HTTP_CANARY_FORMAT_PROMETHEUS) {
            ngx_http_canary_render_prometheus(&o, rep);

        } else {
            ngx_http_canary_render_json(&o, rep);
        }

        if (rep->nsplits) {
            *per_split = o.need / rep->nsplits + 1;
        }

        if (o.need <= size) {
            b->last = b->pos + o.need;
            *out = b;
            return NGX_OK;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "canary status: %uz bytes, over the %uz expected",
                       o.need, size);

        /* a large block of the pool: it can go now */
        (void) ngx_pfree(r->pool, b->start);

        size = o.need;
    }

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_canary_status_bad(ngx_http_request_t *r, const char *fmt,
    ngx_str_t *value)
{
    ngx_buf_t  *b;
    ngx_str_t   type = ngx_string("text/plain");

    /* the value is from the query string: bound what is echoed back */
    if (value && value->len > 128) {
        value->len = 128;
    }

    b = ngx_create_temp_buf(r->pool, ngx_strlen(fmt) + 128 + 2);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_snprintf(b->pos, b->end - b->pos - 1, fmt, value);
    *b->last++ = LF;

    return ngx_http_canary_status_send(r, NGX_HTTP_BAD_REQUEST, &type, b);
}


static ngx_int_t
ngx_http_canary_status_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_buf_t *b)
{
    ngx_int_t         rc;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_length_n = b->last - b->pos;

    /* numbers change every second: never cache them */
    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
