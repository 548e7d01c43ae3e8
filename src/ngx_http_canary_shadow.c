
/*
 * Shadow traffic: a share of the requests routed to stable is also sent,
 * in the background, to the canary upstream; both responses are compared
 * (status, then a digest of the body) and counted in the split's slot of
 * the zone, with the last 16 mismatches.  The client gets stable's
 * response only and never waits for the canary's.  NOTES-shadow.md has
 * the design.
 *
 *     canary_split api {
 *         ...
 *         shadow 10 methods=GET,HEAD compare=body max_body=256k timeout=5s;
 *         shadow_ignore "\"ts\":\d+";
 *     }
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_canary_module.h"


/* shadows in flight per worker; above it a shadow is skipped, counted */
#define NGX_HTTP_CANARY_SHADOW_INFLIGHT  64

#define NGX_HTTP_CANARY_SHADOW_STABLE    0
#define NGX_HTTP_CANARY_SHADOW_CANARY    1


/* one side of a comparison: stable's response or the canary's */
typedef struct {
    ngx_uint_t                     status;
    ngx_http_canary_shadow_body_t  body;
    unsigned                       header:1;    /* its header was seen */
    unsigned                       last:1;      /* its last buffer */
} ngx_http_canary_shadow_side_t;


/* a mirrored request, in the client request's pool */
struct ngx_http_canary_shadow_s {
    ngx_http_request_t            *request;     /* the client's */
    ngx_http_request_t            *sr;          /* the shadow */
    ngx_http_canary_split_t       *split;
    ngx_event_t                    timer;
    ngx_http_canary_shadow_side_t  side[2];     /* stable, canary */

    unsigned                       canary_done:1;
    unsigned                       canary_error:1;
    unsigned                       timed_out:1;
    unsigned                       released:1;  /* in-flight slot */
    unsigned                       counted:1;
};


static ngx_int_t ngx_http_canary_shadow_handler(ngx_http_request_t *r);
static void ngx_http_canary_shadow_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_canary_shadow_start(ngx_http_request_t *r,
    ngx_http_canary_ctx_t *ctx);
static ngx_int_t ngx_http_canary_shadow_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static void ngx_http_canary_shadow_timeout(ngx_event_t *ev);
static void ngx_http_canary_shadow_release(ngx_http_canary_shadow_t *st);
static void ngx_http_canary_shadow_cleanup(void *data);
static ngx_http_canary_shadow_t *ngx_http_canary_shadow_state(
    ngx_http_request_t *r, ngx_uint_t *side);
static ngx_int_t ngx_http_canary_shadow_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_canary_shadow_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_canary_shadow_log_handler(ngx_http_request_t *r);
static void ngx_http_canary_shadow_compare(ngx_http_canary_shadow_t *st);
static uint64_t ngx_http_canary_shadow_digest(ngx_http_canary_shadow_t *st,
    ngx_http_canary_shadow_side_t *side);
static void ngx_http_canary_shadow_example(ngx_http_canary_shadow_t *st);
static voidpf ngx_http_canary_shadow_zalloc(voidpf opaque, uInt items,
    uInt size);
static void ngx_http_canary_shadow_zfree(voidpf opaque, voidpf address);
static ngx_int_t ngx_http_canary_shadow_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;

/* this worker's shadows in flight */
static ngx_uint_t  ngx_http_canary_shadow_inflight;


static ngx_str_t  ngx_http_canary_shadow_var = ngx_string("canary_shadow");


typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     method;
} ngx_http_canary_shadow_method_t;


static ngx_http_canary_shadow_method_t  ngx_http_canary_shadow_methods[] = {
    { ngx_string("GET"), NGX_HTTP_GET },
    { ngx_string("HEAD"), NGX_HTTP_HEAD },
    { ngx_string("POST"), NGX_HTTP_POST },
    { ngx_string("PUT"), NGX_HTTP_PUT },
    { ngx_string("DELETE"), NGX_HTTP_DELETE },
    { ngx_string("PATCH"), NGX_HTTP_PATCH },
    { ngx_string("OPTIONS"), NGX_HTTP_OPTIONS },
    { ngx_null_string, 0 }
};


/*
 * shadow PERCENT [methods=GET,HEAD] [compare=status|body] [max_body=SIZE]
 *        [timeout=TIME];
 */

char *
ngx_http_canary_shadow_conf(ngx_conf_t *cf, ngx_http_canary_split_t *split)
{
    int32_t                           percent;
    u_char                           *p, *last, *comma;
    ssize_t                           size;
    ngx_str_t                        *value, s;
    ngx_int_t                         ms;
    ngx_uint_t                        i, m;
    ngx_http_canary_shadow_conf_t    *sc;
    ngx_http_canary_shadow_method_t  *meth;

    sc = &split->shadow;
    value = cf->args->elts;

    if (sc->configured) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"shadow\" is duplicate in canary_split \"%V\"",
                           &split->name);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts < 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"shadow\" in canary_split \"%V\" needs a "
                           "percent", &split->name);
        return NGX_CONF_ERROR;
    }

    percent = ngx_http_canary_parse_weight(value[1].data, value[1].len);

    if (percent < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"shadow\" \"%V\" in canary_split "
                           "\"%V\": a percent from 0 to 100 "
                           "with at most 2 decimals",
                           &value[1], &split->name);
        return NGX_CONF_ERROR;
    }

    sc->percent = percent;
    sc->methods = NGX_HTTP_GET | NGX_HTTP_HEAD;
    sc->compare_body = 1;
    sc->max_body = 256 * 1024;
    sc->timeout = 5000;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "methods=", 8) == 0) {
            p = value[i].data + 8;
            last = value[i].data + value[i].len;
            sc->methods = 0;

            while (p < last) {
                comma = ngx_strlchr(p, last, ',');
                if (comma == NULL) {
                    comma = last;
                }

                s.data = p;
                s.len = comma - p;
                m = 0;

                for (meth = ngx_http_canary_shadow_methods;
                     meth->name.len;
                     meth++)
                {
                    if (s.len == meth->name.len
                        && ngx_strncmp(s.data, meth->name.data, s.len) == 0)
                    {
                        m = meth->method;
                        break;
                    }
                }

                if (m == 0) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "invalid method \"%V\" in \"%V\" of "
                                       "\"shadow\" in canary_split \"%V\": "
                                       "GET, HEAD, POST, PUT, DELETE, "
                                       "PATCH or OPTIONS",
                                       &s, &value[i], &split->name);
                    return NGX_CONF_ERROR;
                }

                sc->methods |= m;
                p = comma + 1;
            }

            if (sc->methods == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "compare=status") == 0) {
            sc->compare_body = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "compare=body") == 0) {
            sc->compare_body = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_body=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            size = ngx_parse_size(&s);
            if (size <= 0) {
                goto invalid;
            }

            sc->max_body = size;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            ms = ngx_parse_time(&s, 0);
            if (ms == NGX_ERROR || ms == 0) {
                goto invalid;
            }

            sc->timeout = ms;
            continue;
        }

        goto invalid;
    }

    sc->configured = 1;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" of \"shadow\" in "
                       "canary_split \"%V\": methods=GET,HEAD, "
                       "compare=status|body, max_body=SIZE (above 0) or "
                       "timeout=TIME (above 0)", &value[i], &split->name);

    return NGX_CONF_ERROR;
}


/* shadow_ignore REGEX; (several) */

char *
ngx_http_canary_shadow_ignore_conf(ngx_conf_t *cf,
    ngx_http_canary_split_t *split)
{
    u_char               errstr[NGX_MAX_CONF_ERRSTR];
    ngx_str_t           *value;
    ngx_regex_t        **re;
    ngx_regex_compile_t  rc;

    value = cf->args->elts;

    if (cf->args->nelts != 2 || value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"shadow_ignore\" in canary_split \"%V\" needs "
                           "one regular expression", &split->name);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = value[1];
    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    /* PCRE's message quotes the pattern */
    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"shadow_ignore\" in canary_split "
                           "\"%V\": %V", &split->name, &rc.err);
        return NGX_CONF_ERROR;
    }

    if (split->shadow.ignore == NULL) {
        split->shadow.ignore = ngx_array_create(cf->pool, 2,
                                                sizeof(ngx_regex_t *));
        if (split->shadow.ignore == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    re = ngx_array_push(split->shadow.ignore);
    if (re == NULL) {
        return NGX_CONF_ERROR;
    }

    *re = rc.regex;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_canary_shadow_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_canary_shadow_var,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_canary_shadow_variable;

    return NGX_OK;
}


/*
 * The handlers and filters are installed only when a split has "shadow":
 * without it the request path is what it was, instruction for
 * instruction.
 */

ngx_int_t
ngx_http_canary_shadow_init(ngx_conf_t *cf,
    ngx_http_canary_main_conf_t *cmcf)
{
    ngx_uint_t                  i;
    ngx_http_handler_pt        *h;
    ngx_http_canary_split_t   **splitp;
    ngx_http_core_main_conf_t  *core;

    splitp = cmcf->splits.elts;

    for (i = 0; i < cmcf->splits.nelts; i++) {
        if (splitp[i]->shadow.configured) {
            break;
        }

        /* shadow_ignore alone does nothing: say so */
        if (splitp[i]->shadow.ignore) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "canary_split \"%V\" has \"shadow_ignore\" "
                          "without \"shadow\"", &splitp[i]->name);
            return NGX_ERROR;
        }
    }

    if (i == cmcf->splits.nelts) {
        return NGX_OK;
    }

    core = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&core->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_canary_shadow_handler;

    h = ngx_array_push(&core->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_canary_shadow_log_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_canary_shadow_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_canary_shadow_body_filter;

    return NGX_OK;
}


/*
 * PRECONTENT: a request of a location with a shadowed split, routed to
 * stable, is mirrored with the split's percent, once (the decision keeps
 * that across internal redirects).
 */

static ngx_int_t
ngx_http_canary_shadow_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_uint_t                     percent;
    ngx_http_canary_ctx_t         *ctx;
    ngx_http_canary_split_t       *split;
    ngx_http_canary_loc_conf_t    *clcf;
    ngx_http_canary_shm_shadow_t  *shd;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_canary_module);
    split = clcf->split;

    if (split == NULL || !split->shadow.configured) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_canary_get_ctx(r);

    if (ctx == NULL || ctx->split != split || ctx->shadow_tried) {
        return NGX_DECLINED;
    }

    ctx->shadow_tried = 1;

    if (ctx->variant != NGX_HTTP_CANARY_STABLE) {
        return NGX_DECLINED;
    }

    shd = &split->sh->shadow;
    percent = shd->percent;

    if (percent == 0
        || (ngx_uint_t) ngx_random() % NGX_HTTP_CANARY_WEIGHT_MAX >= percent)
    {
        return NGX_DECLINED;
    }

    if (!(r->method & split->shadow.methods)) {
        (void) ngx_atomic_fetch_add(&shd->skipped_method, 1);
        return NGX_DECLINED;
    }

    if (ngx_http_canary_shadow_inflight >= NGX_HTTP_CANARY_SHADOW_INFLIGHT) {
        (void) ngx_atomic_fetch_add(&shd->skipped_in_flight, 1);
        return NGX_DECLINED;
    }

    if (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked) {
        return ngx_http_canary_shadow_start(r, ctx);
    }

    /*
     * a body (a method listed in methods=): read it first, as nginx's
     * mirror does, so that both requests send it; then the phases
     * resume and this handler declines
     */
    ngx_http_canary_shadow_inflight++;

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_canary_shadow_body_handler);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ngx_http_canary_shadow_inflight--;
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


static void
ngx_http_canary_shadow_body_handler(ngx_http_request_t *r)
{
    ngx_http_canary_ctx_t  *ctx;

    ngx_http_canary_shadow_inflight--;

    ctx = ngx_http_canary_get_ctx(r);

    if (ctx) {
        (void) ngx_http_canary_shadow_start(r, ctx);
    }

    r->preserve_body = 1;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/*
 * The shadow: a background subrequest to the same URI, so the same
 * location proxies it, with its own decision (variant canary, "shadow")
 * that decide_split() returns to $canary_upstream or canary_balancer.
 * Whatever fails here only costs the shadow: the request goes on.
 */

static ngx_int_t
ngx_http_canary_shadow_start(ngx_http_request_t *r,
    ngx_http_canary_ctx_t *ctx)
{
    ngx_http_request_t           *sr;
    ngx_pool_cleanup_t           *cln;
    ngx_http_canary_ctx_t        *sctx;
    ngx_http_canary_shadow_t     *st;
    ngx_http_post_subrequest_t   *ps;

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_canary_shadow_t));
    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    sctx = ngx_pcalloc(r->pool, sizeof(ngx_http_canary_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (st == NULL || ps == NULL || sctx == NULL || cln == NULL) {
        return NGX_DECLINED;
    }

    ps->handler = ngx_http_canary_shadow_done;
    ps->data = st;

    if (ngx_http_subrequest(r, &r->uri, &r->args, &sr, ps,
                            NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    sr->method = r->method;
    sr->method_name = r->method_name;

    st->request = r;
    st->sr = sr;
    st->split = ctx->split;
    st->side[NGX_HTTP_CANARY_SHADOW_STABLE].status = 0;
    st->side[NGX_HTTP_CANARY_SHADOW_CANARY].status = 0;

    sctx->split = ctx->split;
    sctx->variant = NGX_HTTP_CANARY_CANARY;
    sctx->reason = ctx->reason;
    sctx->bucket = ctx->bucket;
    sctx->weight = ctx->weight;
    sctx->shadow = 1;
    sctx->shadow_state = st;

    /* found again after an internal redirect of the subrequest */
    sctx->request = sr;
    sctx->next = ctx->next;
    ctx->next = sctx;

    ngx_http_set_ctx(sr, sctx, ngx_http_canary_module);

    ctx->shadow_state = st;
    ctx->shadowed = 1;

    cln->handler = ngx_http_canary_shadow_cleanup;
    cln->data = st;

    st->timer.handler = ngx_http_canary_shadow_timeout;
    st->timer.data = st;
    st->timer.log = r->connection->log;
    st->timer.cancelable = 1;
    ngx_add_timer(&st->timer, ctx->split->shadow.timeout);

    ngx_http_canary_shadow_inflight++;

    (void) ngx_atomic_fetch_add(&ctx->split->sh->shadow.requests, 1);

    return NGX_DECLINED;
}


/*
 * The shadow ended (possibly more than once: an error response is made
 * and finalized again): its status when nginx made the response, and
 * whether the canary answered at all.
 */

static ngx_int_t
ngx_http_canary_shadow_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_canary_shadow_t *st = data;

    ngx_http_canary_shadow_side_t  *side;

    if (st->canary_done) {
        return rc;
    }

    st->canary_done = 1;

    side = &st->side[NGX_HTTP_CANARY_SHADOW_CANARY];

    if (!side->header || rc == NGX_ERROR || r->connection->error) {
        st->canary_error = 1;
    }

    if (side->header && !side->last && !r->header_only && rc != NGX_OK) {
        /* the body was cut short */
        st->canary_error = 1;
    }

    ngx_http_canary_shadow_release(st);

    return rc;
}


/*
 * The canary took longer than timeout=: counted, and its upstream is
 * ended the way nginx ends it when the client goes away, so that a hung
 * canary holds neither the client's request nor an in-flight slot.
 * Nothing of st is touched after that: the client's request (its pool)
 * may be freed by it.
 */

static void
ngx_http_canary_shadow_timeout(ngx_event_t *ev)
{
    ngx_http_canary_shadow_t *st = ev->data;

    ngx_http_request_t   *sr;
    ngx_http_upstream_t  *u;

    if (st->canary_done) {
        return;
    }

    st->timed_out = 1;
    st->canary_done = 1;

    ngx_http_canary_shadow_release(st);

    sr = st->sr;
    u = sr->upstream;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "canary shadow of \"%V\" timed out", &sr->uri);

    if (u && u->cleanup) {
        sr->write_event_handler = ngx_http_request_empty_handler;
        (*u->cleanup)(sr);
    }
}


static void
ngx_http_canary_shadow_release(ngx_http_canary_shadow_t *st)
{
    if (st->timer.timer_set) {
        ngx_del_timer(&st->timer);
    }

    if (!st->released) {
        st->released = 1;
        ngx_http_canary_shadow_inflight--;
    }
}


/* the client's request is freed: nothing may stay armed */

static void
ngx_http_canary_shadow_cleanup(void *data)
{
    ngx_http_canary_shadow_t *st = data;

    if (st->request) {
        ngx_http_canary_shadow_release(st);
    }

    ngx_http_canary_shadow_body_done(&st->side[0].body);
    ngx_http_canary_shadow_body_done(&st->side[1].body);
}


/* the comparison r's response belongs to, and its side; or NULL */

static ngx_http_canary_shadow_t *
ngx_http_canary_shadow_state(ngx_http_request_t *r, ngx_uint_t *side)
{
    ngx_http_canary_ctx_t  *ctx;

    if (r == r->main) {
        ctx = ngx_http_canary_get_ctx(r);
        *side = NGX_HTTP_CANARY_SHADOW_STABLE;

        return (ctx && !ctx->shadow) ? ctx->shadow_state : NULL;
    }

    ctx = ngx_http_canary_own_ctx(r);
    *side = NGX_HTTP_CANARY_SHADOW_CANARY;

    return (ctx && ctx->shadow) ? ctx->shadow_state : NULL;
}


static ngx_int_t
ngx_http_canary_shadow_header_filter(ngx_http_request_t *r)
{
    u_char                         *keep;
    ngx_str_t                       enc;
    ngx_uint_t                      n;
    ngx_http_canary_shadow_t       *st;
    ngx_http_upstream_t            *u;
    ngx_http_canary_shadow_side_t  *side;
    ngx_http_canary_shadow_conf_t  *sc;

    st = ngx_http_canary_shadow_state(r, &n);

    if (st == NULL || st->counted) {
        return ngx_http_next_header_filter(r);
    }

    side = &st->side[n];
    sc = &st->split->shadow;

    side->status = r->headers_out.status;
    side->last = 0;

    if (n == NGX_HTTP_CANARY_SHADOW_CANARY) {
        /* as nginx's own header filter marks a subrequest's */
        r->header_sent = 1;
    }

    /* the canary's own answer, not a 502/504 nginx made for it */
    u = r->upstream;
    side->header = (n == NGX_HTTP_CANARY_SHADOW_STABLE)
                   || (u && u->state
                       && u->state->header_time != (ngx_msec_t) -1);

    ngx_http_canary_shadow_body_done(&side->body);

    if (sc->compare_body) {
        ngx_str_null(&enc);

        if (r->headers_out.content_encoding
            && r->headers_out.content_encoding->hash)
        {
            enc = r->headers_out.content_encoding->value;
        }

        keep = NULL;

        if (sc->ignore) {
            keep = ngx_pnalloc(st->request->pool, sc->max_body);
            if (keep == NULL) {
                return NGX_ERROR;
            }
        }

        ngx_http_canary_shadow_body_init(&side->body,
                                   ngx_http_canary_shadow_encoding(enc.data,
                                                                   enc.len),
                                   sc->max_body, keep,
                                   ngx_http_canary_shadow_zalloc,
                                   ngx_http_canary_shadow_zfree,
                                   st->request->pool);
    }

    if (n == NGX_HTTP_CANARY_SHADOW_STABLE) {
        return ngx_http_next_header_filter(r);
    }

    /* the shadow's response goes no further */
    return NGX_OK;
}


static ngx_int_t
ngx_http_canary_shadow_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_uint_t                      n;
    ngx_chain_t                    *cl;
    ngx_http_canary_shadow_t       *st;
    ngx_http_canary_shadow_side_t  *side;

    st = ngx_http_canary_shadow_state(r, &n);

    if (st == NULL || st->counted) {
        return ngx_http_next_body_filter(r, in);
    }

    side = &st->side[n];

    for (cl = in; cl; cl = cl->next) {

        if (st->split->shadow.compare_body
            && ngx_buf_in_memory(cl->buf)
            && !side->last)
        {
            ngx_http_canary_shadow_body_feed(&side->body, cl->buf->pos,
                                           cl->buf->last - cl->buf->pos);

        } else if (cl->buf->in_file && !side->last) {
            /* a body nginx buffered to a file: not compared */
            side->body.state = NGX_HTTP_CANARY_SHADOW_BODY_TOO_LARGE;
        }

        if (cl->buf->last_buf || cl->buf->last_in_chain) {
            if (cl->buf->last_buf || r != r->main) {
                side->last = 1;
            }
        }

        if (n == NGX_HTTP_CANARY_SHADOW_CANARY) {
            /* consumed: the upstream may reuse the buffer */
            cl->buf->pos = cl->buf->last;
            cl->buf->file_pos = cl->buf->file_last;
        }
    }

    if (n == NGX_HTTP_CANARY_SHADOW_STABLE) {
        return ngx_http_next_body_filter(r, in);
    }

    /*
     * never passed on: a background subrequest's output would wait in
     * the postpone filter for ever
     */
    return NGX_OK;
}


/*
 * LOG of the client's request: it is freed only after its background
 * subrequest ended (r->main->count), so both sides are complete here,
 * whichever finished first.
 */

static ngx_int_t
ngx_http_canary_shadow_log_handler(ngx_http_request_t *r)
{
    ngx_http_canary_ctx_t     *ctx;
    ngx_http_canary_shadow_t  *st;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_canary_get_ctx(r);

    if (ctx == NULL || ctx->shadow_state == NULL) {
        return NGX_OK;
    }

    st = ctx->shadow_state;

    if (!st->counted) {
        st->counted = 1;
        ngx_http_canary_shadow_compare(st);
    }

    return NGX_OK;
}


static void
ngx_http_canary_shadow_compare(ngx_http_canary_shadow_t *st)
{
    ngx_http_request_t             *r;
    ngx_http_canary_shm_shadow_t   *shd;
    ngx_http_canary_shadow_side_t  *s, *c;

    r = st->request;
    shd = &st->split->sh->shadow;
    s = &st->side[NGX_HTTP_CANARY_SHADOW_STABLE];
    c = &st->side[NGX_HTTP_CANARY_SHADOW_CANARY];

    if (st->timed_out) {
        (void) ngx_atomic_fetch_add(&shd->timeouts, 1);
        return;
    }

    if (st->canary_error || !st->canary_done) {
        (void) ngx_atomic_fetch_add(&shd->canary_errors, 1);
        return;
    }

    /* the client went away before stable's response ended: no verdict */
    if (!s->header || !(s->last || r->header_only)) {
        return;
    }

    if (s->status != c->status) {
        (void) ngx_atomic_fetch_add(&shd->compared, 1);
        (void) ngx_atomic_fetch_add(&shd->mismatched_status, 1);
        ngx_http_canary_shadow_example(st);
        return;
    }

    if (st->split->shadow.compare_body) {

        ngx_http_canary_shadow_body_last(&s->body);
        ngx_http_canary_shadow_body_last(&c->body);

        if (s->body.state == NGX_HTTP_CANARY_SHADOW_BODY_TOO_LARGE
            || c->body.state == NGX_HTTP_CANARY_SHADOW_BODY_TOO_LARGE)
        {
            (void) ngx_atomic_fetch_add(&shd->skipped_body_too_large, 1);
            return;
        }

        if (s->body.state != NGX_HTTP_CANARY_SHADOW_BODY_OK
            || c->body.state != NGX_HTTP_CANARY_SHADOW_BODY_OK
            || ngx_http_canary_shadow_digest(st, s)
               != ngx_http_canary_shadow_digest(st, c))
        {
            (void) ngx_atomic_fetch_add(&shd->compared, 1);
            (void) ngx_atomic_fetch_add(&shd->mismatched_body, 1);
            ngx_http_canary_shadow_example(st);
            return;
        }
    }

    (void) ngx_atomic_fetch_add(&shd->compared, 1);
    (void) ngx_atomic_fetch_add(&shd->matched, 1);
}


/*
 * The digest of a side; a kept body (shadow_ignore) first loses every
 * match of each regex, in place, left to right (each regex over what
 * the ones before it left).
 */

static uint64_t
ngx_http_canary_shadow_digest(ngx_http_canary_shadow_t *st,
    ngx_http_canary_shadow_side_t *side)
{
    int            captures[3];
    u_char        *w, *pos, *end;
    ngx_int_t      rc;
    ngx_str_t      subject;
    ngx_uint_t     i;
    ngx_regex_t  **re;

    if (side->body.keep == NULL) {
        return side->body.digest;
    }

    re = st->split->shadow.ignore->elts;
    end = side->body.keep + side->body.kept;

    for (i = 0; i < st->split->shadow.ignore->nelts; i++) {
        pos = side->body.keep;
        w = pos;

        while (pos < end) {
            subject.data = pos;
            subject.len = end - pos;

            rc = ngx_regex_exec(re[i], &subject, captures, 3);

            if (rc < 0) {
                break;
            }

            /* an empty match removes nothing: step over one byte */
            if (captures[1] == captures[0]) {
                captures[1]++;
                captures[0]++;
            }

            w = ngx_movemem(w, pos, captures[0]);
            pos += captures[1];
        }

        if (pos < end) {
            w = ngx_movemem(w, pos, end - pos);
        }

        end = w;
    }

    side->body.kept = end - side->body.keep;

    return ngx_http_canary_fnv1a(NGX_HTTP_CANARY_FNV_BASIS, side->body.keep,
                                 side->body.kept);
}


/* one of the last 16 mismatches, lock-free: see the slot's comment */

static void
ngx_http_canary_shadow_example(ngx_http_canary_shadow_t *st)
{
    size_t                          len;
    ngx_uint_t                      i;
    ngx_http_request_t             *r;
    ngx_http_canary_shm_shadow_t   *shd;
    ngx_http_canary_shm_example_t  *ex;

    r = st->request;
    shd = &st->split->sh->shadow;

    i = ngx_atomic_fetch_add(&shd->next, 1) % NGX_HTTP_CANARY_SHADOW_EXAMPLES;
    ex = &shd->examples[i];

    ex->at = 0;
    ngx_memory_barrier();

    len = ngx_min(r->unparsed_uri.len, NGX_HTTP_CANARY_SHADOW_URI_LEN);
    ngx_memcpy(ex->uri, r->unparsed_uri.data, len);
    ex->uri_len = len;

    ex->stable_status = st->side[0].status;
    ex->canary_status = st->side[1].status;
    ex->stable_bytes = st->side[0].body.bytes;
    ex->canary_bytes = st->side[1].body.bytes;

    ngx_memory_barrier();
    ex->at = ngx_time();
}


/* zlib's memory, from the client request's pool: freed with it */

static voidpf
ngx_http_canary_shadow_zalloc(voidpf opaque, uInt items, uInt size)
{
    return ngx_palloc((ngx_pool_t *) opaque, (size_t) items * size);
}


static void
ngx_http_canary_shadow_zfree(voidpf opaque, voidpf address)
{
    /* the pool frees it */
}


/* $canary_shadow: "1" in a mirrored request and in its shadow */

static ngx_int_t
ngx_http_canary_shadow_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_canary_ctx_t  *ctx;

    ctx = (r == r->main) ? ngx_http_canary_get_ctx(r)
                         : ngx_http_canary_own_ctx(r);

    if (ctx == NULL) {
        ctx = ngx_http_canary_get_ctx(r->main);
    }

    v->len = 1;
    v->data = (u_char *) ((ctx && (ctx->shadowed || ctx->shadow))
                          ? "1" : "0");
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* the split's shadow traffic for the status page, without a lock */

void
ngx_http_canary_shadow_report(ngx_http_canary_split_t *split,
    ngx_http_canary_shadow_report_t *rep)
{
    time_t                             at;
    ngx_uint_t                         i, n, next;
    ngx_http_canary_shm_shadow_t      *shd;
    ngx_http_canary_shm_example_t     *ex;
    ngx_http_canary_shadow_example_t  *e;

    shd = &split->sh->shadow;

    rep->configured = split->shadow.configured;
    rep->percent = shd->percent;
    rep->requests = shd->requests;
    rep->compared = shd->compared;
    rep->matched = shd->matched;
    rep->mismatched_status = shd->mismatched_status;
    rep->mismatched_body = shd->mismatched_body;
    rep->canary_errors = shd->canary_errors;
    rep->timeouts = shd->timeouts;
    rep->skipped_method = shd->skipped_method;
    rep->skipped_body_too_large = shd->skipped_body_too_large;
    rep->skipped_in_flight = shd->skipped_in_flight;
    rep->nexamples = 0;

    next = shd->next;
    n = ngx_min(next, NGX_HTTP_CANARY_SHADOW_EXAMPLES);

    /* newest first */
    for (i = 1; i <= n; i++) {
        ex = &shd->examples[(next - i) % NGX_HTTP_CANARY_SHADOW_EXAMPLES];
        e = &rep->examples[rep->nexamples];

        at = ex->at;
        ngx_memory_barrier();

        e->uri_len = ngx_min(ex->uri_len, NGX_HTTP_CANARY_SHADOW_URI_LEN);
        ngx_memcpy(e->uri, ex->uri, e->uri_len);
        e->stable_status = ex->stable_status;
        e->canary_status = ex->canary_status;
        e->stable_bytes = ex->stable_bytes;
        e->canary_bytes = ex->canary_bytes;
        e->at = at;

        ngx_memory_barrier();

        if (at != 0 && (time_t) ex->at == at) {
            rep->nexamples++;
        }
    }
}
