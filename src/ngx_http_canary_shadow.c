
/*
 * Shadow traffic: a share of the requests routed to stable is also sent,
 * in the background, to the canary upstream; both responses are compared
 * (status, then a digest of the body) and counted in the split's slot of
 * the zone, with the last 16 mismatches.  The client gets stable's
 * response only and never waits for the canary's.  docs/shadow.md has
 * the design.
 *
 *     canary_split api {
 *         ...
 *         shadow 10 methods=GET,HEAD compare=body max_body=256k timeout=5s;
 *         shadow_ignore "\"ts\":\d+";
 *     }
 *
 * The shadow is a request of its own, on a connection of its own with
 * no client behind it (a socket pair that nobody writes), made from a
 * copy of the client's request and run through the same location: the
 * client's request ends (and its keep-alive connection goes on) without
 * waiting for it, as a background subrequest would not allow.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_canary_module.h"


/* shadows in flight per worker; above it a shadow is skipped, counted */
#define NGX_HTTP_CANARY_SHADOW_INFLIGHT  64

/* backtracking steps of one shadow_ignore search (PCRE2's: 10,000,000) */
#define NGX_HTTP_CANARY_SHADOW_MATCH_LIMIT  100000

#define NGX_HTTP_CANARY_SHADOW_STABLE    0
#define NGX_HTTP_CANARY_SHADOW_CANARY    1


/* one side of a comparison: stable's response or the canary's */
typedef struct {
    ngx_uint_t                     status;
    ngx_http_canary_shadow_body_t  body;
    unsigned                       header:1;    /* its header was seen */
    unsigned                       last:1;      /* its last buffer */
    unsigned                       complete:1;  /* decided as it ended */
} ngx_http_canary_shadow_side_t;


/*
 * A mirrored request's comparison, on the heap: either request may end
 * first, each drops its reference as its pool goes, the later compares
 * and frees
 */
struct ngx_http_canary_shadow_s {
    ngx_uint_t                     refs;
    ngx_http_request_t            *request;     /* the client's, or NULL */
    ngx_http_request_t            *sr;          /* the shadow, or NULL */
    ngx_http_canary_split_t       *split;
    ngx_event_t                    timer;
    ngx_http_canary_shadow_side_t  side[2];     /* stable, canary */

    u_char                         uri[NGX_HTTP_CANARY_SHADOW_URI_LEN];
    size_t                         uri_len;

    unsigned                       timed_out:1;
};


static ngx_int_t ngx_http_canary_shadow_wrap(
    ngx_http_core_main_conf_t *core);
static ngx_int_t ngx_http_canary_shadow_scheme(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_canary_shadow_https(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_canary_shadow_handler(ngx_http_request_t *r);
static void ngx_http_canary_shadow_body_handler(ngx_http_request_t *r);
static void ngx_http_canary_shadow_start(ngx_http_request_t *r,
    ngx_http_canary_ctx_t *ctx);
static ngx_http_request_t *ngx_http_canary_shadow_request(
    ngx_http_request_t *r, ngx_http_canary_shadow_t *st);
static ngx_int_t ngx_http_canary_shadow_copy(ngx_http_request_t *r,
    ngx_http_request_t *sr);
static ngx_int_t ngx_http_canary_shadow_uri(ngx_http_request_t *r,
    ngx_http_request_t *sr);
static ngx_int_t ngx_http_canary_shadow_copy_body(ngx_http_request_t *r,
    ngx_http_request_t *sr);
static void ngx_http_canary_shadow_run(ngx_event_t *ev);
static void ngx_http_canary_shadow_event(ngx_event_t *ev);
static void ngx_http_canary_shadow_close_pair(void *data);
static void ngx_http_canary_shadow_timeout(ngx_event_t *ev);
static void ngx_http_canary_shadow_abort(ngx_http_canary_shadow_t *st);
static void ngx_http_canary_shadow_stable_end(void *data);
static void ngx_http_canary_shadow_canary_end(void *data);
static void ngx_http_canary_shadow_unref(ngx_http_canary_shadow_t *st);
static ngx_http_canary_shadow_t *ngx_http_canary_shadow_state(
    ngx_http_request_t *r, ngx_uint_t *side);
static ngx_http_canary_shadow_t *ngx_http_canary_shadow_find(
    ngx_http_request_t *r, ngx_pool_cleanup_pt handler);
static ngx_int_t ngx_http_canary_shadow_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_canary_shadow_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_canary_shadow_compare(ngx_http_canary_shadow_t *st);
static uint64_t ngx_http_canary_shadow_digest(ngx_http_canary_shadow_t *st,
    ngx_http_canary_shadow_side_t *side);
static void ngx_http_canary_shadow_example(ngx_http_canary_shadow_t *st);
static ngx_int_t ngx_http_canary_shadow_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;

/* nginx's $scheme and $https, wrapped for the shadow */
static ngx_http_get_variable_pt          ngx_http_canary_shadow_scheme_get;
static ngx_http_get_variable_pt          ngx_http_canary_shadow_https_get;

/* this worker's shadows in flight */
static ngx_uint_t  ngx_http_canary_shadow_inflight;

/*
 * this worker's comparisons not yet freed: while there is none, the
 * filters pass every response on at the cost of one test (shadow 0 costs
 * what no shadow does)
 */
static ngx_uint_t  ngx_http_canary_shadow_live;

/* a keep buffer of max_body failed: said once per worker */
static ngx_uint_t  ngx_http_canary_shadow_nokeep_logged;

/* a shadow_ignore search over its limit: said once per worker */
static ngx_uint_t  ngx_http_canary_shadow_limit_logged;


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
 * The handler and filters are installed only when a split has "shadow":
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

    if (ngx_http_canary_shadow_wrap(core) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_canary_shadow_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_canary_shadow_body_filter;

    return NGX_OK;
}


/*
 * The shadow's connection is a socket pair, without TLS: $scheme and
 * $https would say "http" and "" where the client's said "https" and
 * "on", and the canary would get another X-Forwarded-Proto than stable
 * (or a server's "if ($scheme = http) { return 301 ...; }" would answer
 * the shadow itself).  Their handlers are wrapped, before nginx indexes
 * the variables, to answer for a shadow what they answered its client.
 */

static ngx_int_t
ngx_http_canary_shadow_wrap(ngx_http_core_main_conf_t *core)
{
    ngx_uint_t            i;
    ngx_hash_key_t       *key;
    ngx_http_variable_t  *v;

    if (core->variables_keys == NULL) {
        return NGX_OK;
    }

    key = core->variables_keys->keys.elts;

    for (i = 0; i < core->variables_keys->keys.nelts; i++) {
        v = key[i].value;

        if (v->name.len == sizeof("scheme") - 1
            && ngx_strncmp(v->name.data, "scheme", v->name.len) == 0
            && v->get_handler != ngx_http_canary_shadow_scheme)
        {
            ngx_http_canary_shadow_scheme_get = v->get_handler;
            v->get_handler = ngx_http_canary_shadow_scheme;
        }

        if (v->name.len == sizeof("https") - 1
            && ngx_strncmp(v->name.data, "https", v->name.len) == 0
            && v->get_handler != ngx_http_canary_shadow_https)
        {
            ngx_http_canary_shadow_https_get = v->get_handler;
            v->get_handler = ngx_http_canary_shadow_https;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_canary_shadow_scheme(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_canary_ctx_t  *ctx;

    ctx = ngx_http_canary_get_ctx(r->main);

    if (ctx && ctx->shadow && ctx->shadow_https) {
        v->len = sizeof("https") - 1;
        v->valid = 1;
        v->no_cacheable = 0;
        v->not_found = 0;
        v->data = (u_char *) "https";

        return NGX_OK;
    }

    return ngx_http_canary_shadow_scheme_get(r, v, data);
}


static ngx_int_t
ngx_http_canary_shadow_https(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_canary_ctx_t  *ctx;

    ctx = ngx_http_canary_get_ctx(r->main);

    if (ctx && ctx->shadow && ctx->shadow_https) {
        v->len = sizeof("on") - 1;
        v->valid = 1;
        v->no_cacheable = 0;
        v->not_found = 0;
        v->data = (u_char *) "on";

        return NGX_OK;
    }

    return ngx_http_canary_shadow_https_get(r, v, data);
}


/*
 * PRECONTENT: a request of a location with a shadowed split, routed to
 * stable, is mirrored with the split's percent, once (the decision keeps
 * that across internal redirects); never a shadow, nor a subrequest.
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

    /* before the decision is looked up: shadow 0 costs next to nothing */
    shd = &split->sh->shadow;
    percent = shd->percent;

    if (percent == 0) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_canary_get_ctx(r);

    if (ctx == NULL || ctx->split != split || ctx->shadow_tried
        || ctx->shadow)
    {
        return NGX_DECLINED;
    }

    ctx->shadow_tried = 1;

    if (ctx->variant != NGX_HTTP_CANARY_STABLE) {
        return NGX_DECLINED;
    }

    if ((ngx_uint_t) ngx_random() % NGX_HTTP_CANARY_WEIGHT_MAX >= percent) {
        return NGX_DECLINED;
    }

    /*
     * a WebSocket handshake (Upgrade) would open a live session on the
     * canary for timeout= seconds: not mirrored, as a method not listed
     */
    if (!(r->method & split->shadow.methods) || r->headers_in.upgrade) {
        (void) ngx_atomic_fetch_add(&shd->skipped_method, 1);
        return NGX_DECLINED;
    }

    /*
     * a worker that shuts down closed its idle connections, the shadows'
     * among them, already: one started now would hold it until its
     * canary answered (a request that got here late: a slow auth, a
     * limit_req delay across a reload)
     */
    if (ngx_exiting || ngx_terminate) {
        return NGX_DECLINED;
    }

    if (ngx_http_canary_shadow_inflight >= NGX_HTTP_CANARY_SHADOW_INFLIGHT) {
        (void) ngx_atomic_fetch_add(&shd->skipped_in_flight, 1);
        return NGX_DECLINED;
    }

    if (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked) {
        ngx_http_canary_shadow_start(r, ctx);
        return NGX_DECLINED;
    }

    /*
     * a body (a method listed in methods=): read it first, as nginx's
     * mirror does, so that both requests send it; then the phases
     * resume and this handler declines
     */
    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_canary_shadow_body_handler);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


static void
ngx_http_canary_shadow_body_handler(ngx_http_request_t *r)
{
    ngx_http_canary_ctx_t  *ctx;

    ctx = ngx_http_canary_get_ctx(r);

    if (ctx) {
        ngx_http_canary_shadow_start(r, ctx);
    }

    r->preserve_body = 1;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/*
 * Whatever fails here only costs the shadow (logged, not counted as
 * sent): the client's request goes on.
 */

static void
ngx_http_canary_shadow_start(ngx_http_request_t *r,
    ngx_http_canary_ctx_t *ctx)
{
    ngx_chain_t               *cl;
    ngx_pool_cleanup_t        *cln;
    ngx_http_request_t        *sr;
    ngx_http_canary_shadow_t  *st;

    /* a request body nginx wrote to a file is not copied: too large */
    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            if (cl->buf->in_file
                || !(ngx_buf_in_memory(cl->buf) || ngx_buf_special(cl->buf)))
            {
                (void) ngx_atomic_fetch_add(
                           &ctx->split->sh->shadow.skipped_body_too_large, 1);
                return;
            }
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return;
    }

    st = ngx_calloc(sizeof(ngx_http_canary_shadow_t), r->connection->log);
    if (st == NULL) {
        return;
    }

    ngx_http_canary_shadow_live++;

    st->split = ctx->split;
    st->request = r;
    st->refs = 1;

    st->uri_len = ngx_min(r->unparsed_uri.len,
                          NGX_HTTP_CANARY_SHADOW_URI_LEN);
    ngx_memcpy(st->uri, r->unparsed_uri.data, st->uri_len);

    /* the client's request holds a reference from now on */
    cln->handler = ngx_http_canary_shadow_stable_end;
    cln->data = st;

    sr = ngx_http_canary_shadow_request(r, st);
    if (sr == NULL) {
        st->request = NULL;
        cln->handler = NULL;
        ngx_free(st);
        ngx_http_canary_shadow_live--;
        return;
    }

    ctx->shadowed = 1;

    st->sr = sr;
    st->refs++;

    st->timer.handler = ngx_http_canary_shadow_timeout;
    st->timer.data = st;
    st->timer.log = ngx_cycle->log;
    st->timer.cancelable = 1;
    ngx_add_timer(&st->timer, ctx->split->shadow.timeout);

    ngx_http_canary_shadow_inflight++;

    (void) ngx_atomic_fetch_add(&ctx->split->sh->shadow.requests, 1);
}


/*
 * The shadow: a request on a connection of its own, whose socket is one
 * end of a socket pair nobody writes to (so that nginx's events and its
 * close work on it as on any), run once the client's request has gone
 * on (a posted event).  Its decision is the canary's, marked "shadow".
 */

static ngx_http_request_t *
ngx_http_canary_shadow_request(ngx_http_request_t *r,
    ngx_http_canary_shadow_t *st)
{
    int                       fds[2];
    ngx_log_t                *log;
    ngx_connection_t         *c, *rc;
    ngx_pool_cleanup_t       *cln;
    ngx_http_request_t       *sr;
    ngx_http_log_ctx_t       *lctx;
    ngx_http_canary_ctx_t    *sctx, *ctx;
    ngx_http_connection_t    *hc;

    rc = r->connection;
    ctx = ngx_http_canary_get_ctx(r);

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == -1) {
        ngx_log_error(NGX_LOG_ERR, rc->log, ngx_socket_errno,
                      "canary shadow: socketpair() failed");
        return NULL;
    }

    if (ngx_nonblocking(fds[0]) == -1 || ngx_nonblocking(fds[1]) == -1) {
        ngx_log_error(NGX_LOG_ERR, rc->log, ngx_socket_errno,
                      "canary shadow: " ngx_nonblocking_n " failed");
        goto failed_fds;
    }

    c = ngx_get_connection(fds[0], rc->log);
    if (c == NULL) {
        goto failed_fds;
    }

    c->pool = ngx_create_pool(1024, rc->log);
    if (c->pool == NULL) {
        ngx_free_connection(c);
        goto failed_fds;
    }

    cln = ngx_pool_cleanup_add(c->pool, sizeof(int));
    if (cln == NULL) {
        goto failed;
    }

    cln->handler = ngx_http_canary_shadow_close_pair;
    *(int *) cln->data = fds[1];
    fds[1] = -1;

    log = ngx_palloc(c->pool, sizeof(ngx_log_t));
    lctx = ngx_pcalloc(c->pool, sizeof(ngx_http_log_ctx_t));
    hc = ngx_pcalloc(c->pool, sizeof(ngx_http_connection_t));
    c->buffer = ngx_create_temp_buf(c->pool, 1);
    c->sockaddr = ngx_palloc(c->pool, rc->socklen);
    c->addr_text.data = ngx_pnalloc(c->pool, rc->addr_text.len);

    if (log == NULL || lctx == NULL || hc == NULL || c->buffer == NULL
        || c->sockaddr == NULL || c->addr_text.data == NULL)
    {
        goto failed;
    }

    *log = *rc->log;
    lctx->connection = c;
    log->data = lctx;
    log->action = NULL;

    /* the client's log goes with its connection: the shadow's stays */
    c->log = log;
    c->pool->log = log;
    c->read->log = log;
    c->write->log = log;
    c->log_error = rc->log_error;

    ngx_memcpy(c->sockaddr, rc->sockaddr, rc->socklen);
    c->socklen = rc->socklen;
    ngx_memcpy(c->addr_text.data, rc->addr_text.data, rc->addr_text.len);
    c->addr_text.len = rc->addr_text.len;

    if (rc->local_sockaddr) {
        c->local_sockaddr = ngx_palloc(c->pool, rc->local_socklen);
        if (c->local_sockaddr == NULL) {
            goto failed;
        }

        ngx_memcpy(c->local_sockaddr, rc->local_sockaddr, rc->local_socklen);
        c->local_socklen = rc->local_socklen;
    }

    c->listening = rc->listening;
    c->type = SOCK_STREAM;

    /*
     * a unix socket, whatever the client's address: no TCP_NODELAY
     * (proxy_buffering off, an upgrade) nor TCP_NOPUSH on it, as nginx
     * does for a unix listener (else an alert and a failed shadow)
     */
    c->tcp_nodelay = NGX_TCP_NODELAY_DISABLED;
    c->tcp_nopush = NGX_TCP_NOPUSH_DISABLED;
    c->recv = ngx_recv;
    c->send = ngx_send;
    c->recv_chain = ngx_recv_chain;
    c->send_chain = ngx_send_chain;
    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);
    c->start_time = ngx_current_msec;

    /* the client's server and address (no buffers: none are read) */
    hc->addr_conf = r->http_connection->addr_conf;
    hc->conf_ctx = r->http_connection->conf_ctx;
    c->data = hc;

    c->read->handler = ngx_http_canary_shadow_event;
    c->write->handler = ngx_http_canary_shadow_event;

    /* a worker that shuts down ends its shadows at once (c->close) */
    c->idle = 1;

#if (NGX_STAT_STUB)
    (void) ngx_atomic_fetch_add(ngx_stat_active, 1);
#endif

    sr = ngx_http_create_request(c);
    if (sr == NULL) {
#if (NGX_STAT_STUB)
        (void) ngx_atomic_fetch_add(ngx_stat_active, -1);
#endif
        goto failed;
    }

    c->data = sr;

#if (NGX_STAT_STUB)
    /* its "request" is read already: as nginx counts one being served */
    (void) ngx_atomic_fetch_add(ngx_stat_reading, -1);
    sr->stat_reading = 0;
    (void) ngx_atomic_fetch_add(ngx_stat_writing, 1);
    sr->stat_writing = 1;
#endif

    cln = ngx_pool_cleanup_add(sr->pool, 0);
    sctx = ngx_pcalloc(sr->pool, sizeof(ngx_http_canary_ctx_t));

    if (cln == NULL || sctx == NULL
        || ngx_http_canary_shadow_copy(r, sr) != NGX_OK)
    {
        ngx_http_free_request(sr, 0);
        ngx_http_close_connection(c);
        return NULL;
    }

    /* from here the shadow's end drops its reference */
    cln->handler = ngx_http_canary_shadow_canary_end;
    cln->data = st;

    sctx->split = ctx->split;
    sctx->variant = NGX_HTTP_CANARY_CANARY;
    sctx->reason = ctx->reason;
    sctx->bucket = ctx->bucket;
    sctx->weight = ctx->weight;
    sctx->cohort = NULL;
    sctx->shadow = 1;
    sctx->shadow_tried = 1;

#if (NGX_HTTP_SSL)
    /* $scheme and $https say what they said to the client */
    sctx->shadow_https = (rc->ssl != NULL);
#endif

    ngx_http_canary_set_ctx(sr, sctx);

    /* once the client's request has gone on */
    c->write->handler = ngx_http_canary_shadow_run;
    ngx_post_event(c->write, &ngx_posted_events);

    return sr;

failed:

    ngx_close_connection(c);
    ngx_destroy_pool(c->pool);

    if (fds[1] != -1) {
        (void) ngx_close_socket(fds[1]);
    }

    return NULL;

failed_fds:

    (void) ngx_close_socket(fds[0]);
    (void) ngx_close_socket(fds[1]);

    return NULL;
}


/*
 * The client's request line, headers (through nginx's own header
 * handlers, as when they were read), body, server and location
 * configuration, copied into the shadow's pool: the client's request may
 * be freed long before the shadow ends.
 */

static ngx_int_t
ngx_http_canary_shadow_copy(ngx_http_request_t *r, ngx_http_request_t *sr)
{
    ngx_uint_t                  i;
    ngx_list_part_t            *part;
    ngx_table_elt_t            *h, *sh;
    ngx_http_header_t          *hh;
    ngx_http_core_main_conf_t  *cmcf;

#define ngx_http_canary_shadow_dup(field)                                    \
    sr->field.len = r->field.len;                                            \
    if (r->field.len) {                                                      \
        sr->field.data = ngx_pstrdup(sr->pool, &r->field);                   \
        if (sr->field.data == NULL) {                                        \
            return NGX_ERROR;                                                \
        }                                                                    \
    }

    ngx_http_canary_shadow_dup(request_line);
    ngx_http_canary_shadow_dup(method_name);
    ngx_http_canary_shadow_dup(http_protocol);
    ngx_http_canary_shadow_dup(unparsed_uri);
    ngx_http_canary_shadow_dup(uri);
    ngx_http_canary_shadow_dup(args);
    ngx_http_canary_shadow_dup(exten);
    ngx_http_canary_shadow_dup(schema);

#undef ngx_http_canary_shadow_dup

    sr->method = r->method;
    sr->http_version = r->http_version;
    sr->http_major = r->http_major;
    sr->http_minor = r->http_minor;
    sr->valid_unparsed_uri = r->valid_unparsed_uri;
    sr->request_length = r->request_length;

    sr->main_conf = r->main_conf;
    sr->srv_conf = r->srv_conf;
    sr->loc_conf = r->loc_conf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    if (r->uri_changes == NGX_HTTP_MAX_URI_CHANGES + 1
        && r->uri_start && r->uri_end)
    {
        /* not redirected: the client's URI as it came, from the top */
        if (ngx_http_canary_shadow_uri(r, sr) != NGX_OK) {
            return NGX_ERROR;
        }

        sr->phase_handler = cmcf->phase_engine.server_rewrite_index;

    } else {
        /*
         * redirected (X-Accel-Redirect, error_page, try_files, "rewrite
         * ... last"): from the client's location and URI, the find
         * config phase on (the one before its rewrites), so that what
         * came before (an upstream that redirected) is not asked again
         */
        sr->phase_handler = cmcf->phase_engine.location_rewrite_index - 1;
    }

    if (ngx_list_init(&sr->headers_in.headers, sr->pool, 20,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the virtual server is the client's: the Host handler keeps it */
    sr->headers_in.server.len = r->headers_in.server.len;
    sr->headers_in.server.data = ngx_pstrdup(sr->pool, &r->headers_in.server);

    if (sr->headers_in.server.data == NULL && r->headers_in.server.len) {
        return NGX_ERROR;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        sh = ngx_list_push(&sr->headers_in.headers);
        if (sh == NULL) {
            return NGX_ERROR;
        }

        sh->hash = h[i].hash;
        sh->key.len = h[i].key.len;
        sh->key.data = ngx_pstrdup(sr->pool, &h[i].key);
        sh->value.len = h[i].value.len;
        sh->value.data = ngx_pnalloc(sr->pool, h[i].value.len + 1);
        sh->lowcase_key = ngx_pnalloc(sr->pool, h[i].key.len);

        if (sh->key.data == NULL || sh->value.data == NULL
            || sh->lowcase_key == NULL)
        {
            return NGX_ERROR;
        }

        ngx_memcpy(sh->value.data, h[i].value.data, h[i].value.len);
        sh->value.data[h[i].value.len] = '\0';
        ngx_memcpy(sh->lowcase_key, h[i].lowcase_key, h[i].key.len);

        if (sh->hash == 0) {
            continue;
        }

        hh = ngx_hash_find(&cmcf->headers_in_hash, sh->hash,
                           sh->lowcase_key, sh->key.len);

        if (hh && hh->handler(sr, sh, hh->offset) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    sr->headers_in.content_length_n = r->headers_in.content_length_n;
    sr->headers_in.chunked = r->headers_in.chunked;

    /*
     * a body the client sent; a request without one may have an empty
     * request_body by now (read by an upstream before a redirect)
     */
    if (r->request_body
        && (r->headers_in.content_length_n > 0 || r->headers_in.chunked))
    {
        return ngx_http_canary_shadow_copy_body(r, sr);
    }

    return NGX_OK;
}


/*
 * The client's URI as it came, before a rewrite of the server or of the
 * location changed r->uri: the shadow runs from the server's rewrites
 * on, and from the server's locations, as an internal redirect does, so
 * it goes the client's way and no rewrite is applied twice.  As nginx's
 * ngx_http_process_request_uri(), without finalizing a request that is
 * not started; the client's URI was parsed the same way already.
 */

static ngx_int_t
ngx_http_canary_shadow_uri(ngx_http_request_t *r, ngx_http_request_t *sr)
{
    size_t                     len;
    ngx_http_core_srv_conf_t  *cscf;

    sr->uri_start = r->uri_start;
    sr->uri_end = r->uri_end;
    sr->args_start = r->args_start;
    sr->uri_ext = r->uri_ext;

    if (r->args_start) {
        len = r->args_start - 1 - r->uri_start;

    } else {
        len = r->uri_end - r->uri_start;
    }

    if (r->complex_uri || r->quoted_uri || r->empty_path_in_uri) {

        if (r->empty_path_in_uri) {
            len++;
        }

        sr->uri.data = ngx_pnalloc(sr->pool, len);
        if (sr->uri.data == NULL) {
            return NGX_ERROR;
        }

        sr->complex_uri = r->complex_uri;
        sr->quoted_uri = r->quoted_uri;
        sr->empty_path_in_uri = r->empty_path_in_uri;

        cscf = ngx_http_get_module_srv_conf(sr, ngx_http_core_module);

        if (ngx_http_parse_complex_uri(sr, cscf->merge_slashes) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        sr->uri.data = ngx_pnalloc(sr->pool, len);
        if (sr->uri.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(sr->uri.data, r->uri_start, len);
        sr->uri.len = len;

        if (sr->uri_ext) {
            sr->uri_ext = sr->uri.data + (r->uri_ext - r->uri_start);
        }
    }

    ngx_str_null(&sr->exten);

    if (sr->uri_ext) {
        sr->exten.len = sr->uri.data + sr->uri.len - sr->uri_ext;
        sr->exten.data = sr->uri_ext;
    }

    ngx_str_null(&sr->args);

    if (sr->args_start && sr->uri_end > sr->args_start) {
        sr->args.len = sr->uri_end - sr->args_start;
        sr->args.data = ngx_pnalloc(sr->pool, sr->args.len);
        if (sr->args.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(sr->args.data, sr->args_start, sr->args.len);
    }

    sr->valid_unparsed_uri = r->empty_path_in_uri ? 0 : 1;

    /* they point into the client's buffers */
    sr->uri_start = NULL;
    sr->uri_end = NULL;
    sr->args_start = NULL;
    sr->uri_ext = NULL;

    /* the location is found again, from the server's */
    cscf = ngx_http_get_module_srv_conf(sr, ngx_http_core_module);
    sr->loc_conf = cscf->ctx->loc_conf;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "canary shadow uri: \"%V\"", &sr->uri);

    return NGX_OK;
}


/* the client's body, in memory (client_body_buffer_size): checked before */

static ngx_int_t
ngx_http_canary_shadow_copy_body(ngx_http_request_t *r,
    ngx_http_request_t *sr)
{
    size_t                    len;
    ngx_buf_t                *b;
    ngx_chain_t              *cl, *in;
    ngx_http_request_body_t  *rb;

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (!ngx_buf_special(cl->buf)) {
            len += cl->buf->last - cl->buf->pos;
        }
    }

    rb = ngx_pcalloc(sr->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    sr->request_body = rb;
    sr->headers_in.content_length_n = len;
    sr->headers_in.chunked = 0;

    if (len == 0) {
        /* a chunked body of no bytes: no buffer ("zero size buf") */
        return NGX_OK;
    }

    b = ngx_create_temp_buf(sr->pool, len);
    cl = ngx_alloc_chain_link(sr->pool);

    if (b == NULL || cl == NULL) {
        return NGX_ERROR;
    }

    for (in = r->request_body->bufs; in; in = in->next) {
        if (!ngx_buf_special(in->buf)) {
            b->last = ngx_cpymem(b->last, in->buf->pos,
                                 in->buf->last - in->buf->pos);
        }
    }

    b->last_buf = 1;

    cl->buf = b;
    cl->next = NULL;

    rb->bufs = cl;
    rb->rest = 0;

    return NGX_OK;
}


/*
 * the shadow starts: its phases, from the one the copy chose (as
 * ngx_http_handler() does for an internal request, which would start
 * from the server's rewrites)
 */

static void
ngx_http_canary_shadow_run(ngx_event_t *ev)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *sr;

    c = ev->data;
    sr = c->data;

    c->write->handler = ngx_http_canary_shadow_event;
    c->log->action = NULL;

    sr->internal = 1;
    sr->valid_location = 1;
    sr->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(sr);
    ngx_http_run_posted_requests(c);
}


/*
 * As nginx's request handler: the request's own event handlers; or, when
 * the worker shuts down, the end of the shadow.
 */

static void
ngx_http_canary_shadow_event(ngx_event_t *ev)
{
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_canary_shadow_t  *st;

    c = ev->data;
    r = c->data;

    if (c->close) {
        st = ngx_http_canary_shadow_find(r,
                                         ngx_http_canary_shadow_canary_end);
        if (st) {
            ngx_http_canary_shadow_abort(st);
            return;
        }
    }

    if (ev->write) {
        r->write_event_handler(r);

    } else {
        r->read_event_handler(r);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_canary_shadow_close_pair(void *data)
{
    int  *fd = data;

    (void) ngx_close_socket(*fd);
}


/* the canary took longer than timeout= */

static void
ngx_http_canary_shadow_timeout(ngx_event_t *ev)
{
    ngx_http_canary_shadow_abort(ev->data);
}


/*
 * Counted in timeouts, and the shadow's upstream is ended the way nginx
 * ends it when a client goes away.  That may free the shadow, and st
 * with it: nothing of st is touched after.
 */

static void
ngx_http_canary_shadow_abort(ngx_http_canary_shadow_t *st)
{
    ngx_connection_t     *c;
    ngx_http_request_t   *sr;
    ngx_http_upstream_t  *u;

    sr = st->sr;

    if (sr == NULL) {
        return;
    }

    st->timed_out = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "canary shadow of \"%V\" timed out", &sr->uri);

    u = sr->upstream;

    if (u && u->cleanup) {
        sr->write_event_handler = ngx_http_request_empty_handler;
        (*u->cleanup)(sr);
        return;
    }

    /*
     * still in its phases, before its upstream (a limit_req delay, an
     * access check's subrequest): nothing would end it (its connection
     * is closed at shutdown, its timeout has fired), so it ends here
     */
    c = sr->connection;

    ngx_http_finalize_request(sr, NGX_ERROR);
    ngx_http_run_posted_requests(c);
}


/* the client's request is freed: stable's side is what it got */

static void
ngx_http_canary_shadow_stable_end(void *data)
{
    ngx_http_canary_shadow_t *st = data;

    ngx_http_request_t             *r;
    ngx_http_canary_shadow_side_t  *side;

    r = st->request;
    side = &st->side[NGX_HTTP_CANARY_SHADOW_STABLE];

    /* the client that went away before the response ended: no verdict */
    side->complete = side->header && (side->last || r->header_only);

    st->request = NULL;

    ngx_http_canary_shadow_unref(st);
}


/* the shadow is freed: the canary answered, failed, or timed out */

static void
ngx_http_canary_shadow_canary_end(void *data)
{
    ngx_http_canary_shadow_t *st = data;

    ngx_http_request_t             *sr;
    ngx_http_canary_shadow_side_t  *side;

    sr = st->sr;
    side = &st->side[NGX_HTTP_CANARY_SHADOW_CANARY];

    side->complete = side->header
                     && (side->last || sr->header_only
                         || sr->method == NGX_HTTP_HEAD);

    st->sr = NULL;

    if (st->timer.timer_set) {
        ngx_del_timer(&st->timer);
    }

    ngx_http_canary_shadow_inflight--;

    ngx_http_canary_shadow_unref(st);
}


static void
ngx_http_canary_shadow_unref(ngx_http_canary_shadow_t *st)
{
    if (--st->refs) {
        return;
    }

    if (st->sr == NULL && st->side[0].header) {
        ngx_http_canary_shadow_compare(st);
    }

    ngx_http_canary_shadow_body_done(&st->side[0].body);
    ngx_http_canary_shadow_body_done(&st->side[1].body);

    if (st->side[0].body.keep) {
        ngx_free(st->side[0].body.keep);
    }

    if (st->side[1].body.keep) {
        ngx_free(st->side[1].body.keep);
    }

    ngx_free(st);
    ngx_http_canary_shadow_live--;
}


/* the comparison r's response belongs to, and its side; or NULL */

static ngx_http_canary_shadow_t *
ngx_http_canary_shadow_state(ngx_http_request_t *r, ngx_uint_t *side)
{
    ngx_http_canary_ctx_t  *ctx;

    if (r != r->main) {
        return NULL;
    }

    ctx = ngx_http_canary_get_ctx(r);

    if (ctx == NULL) {
        return NULL;
    }

    if (ctx->shadow) {
        *side = NGX_HTTP_CANARY_SHADOW_CANARY;
        return ngx_http_canary_shadow_find(r,
                                           ngx_http_canary_shadow_canary_end);
    }

    if (ctx->shadowed) {
        *side = NGX_HTTP_CANARY_SHADOW_STABLE;
        return ngx_http_canary_shadow_find(r,
                                           ngx_http_canary_shadow_stable_end);
    }

    return NULL;
}


/* the comparison a request's pool cleanup holds (a short list) */

static ngx_http_canary_shadow_t *
ngx_http_canary_shadow_find(ngx_http_request_t *r,
    ngx_pool_cleanup_pt handler)
{
    ngx_pool_cleanup_t  *cln;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == handler) {
            return cln->data;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_canary_shadow_header_filter(ngx_http_request_t *r)
{
    u_char                         *keep;
    ngx_str_t                       enc;
    ngx_uint_t                      n;
    ngx_http_upstream_t            *u;
    ngx_http_canary_shadow_t       *st;
    ngx_http_canary_shadow_side_t  *side;
    ngx_http_canary_shadow_conf_t  *sc;

    if (ngx_http_canary_shadow_live == 0) {
        return ngx_http_next_header_filter(r);
    }

    st = ngx_http_canary_shadow_state(r, &n);

    if (st == NULL) {
        return ngx_http_next_header_filter(r);
    }

    side = &st->side[n];
    sc = &st->split->shadow;

    side->status = r->headers_out.status;
    side->last = 0;

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

        keep = side->body.keep;

        if (sc->ignore && keep == NULL) {
            /*
             * on failure only this comparison is lost (not compared,
             * said once per worker): never the client's response
             */
            keep = malloc(sc->max_body);

            if (keep == NULL && !ngx_http_canary_shadow_nokeep_logged) {
                ngx_http_canary_shadow_nokeep_logged = 1;
                ngx_log_error(NGX_LOG_ERR, r->connection->log, ngx_errno,
                              "canary_split \"%V\": shadow_ignore cannot "
                              "keep a body of max_body=%uz bytes, not "
                              "compared", &st->split->name, sc->max_body);
            }
        }

        /* zlib with malloc and free: st outlives either pool */
        ngx_http_canary_shadow_body_init(&side->body,
                                   ngx_http_canary_shadow_encoding(enc.data,
                                                                   enc.len),
                                   sc->max_body, keep, Z_NULL, Z_NULL,
                                   Z_NULL);

        if (sc->ignore && keep == NULL) {
            side->body.state = NGX_HTTP_CANARY_SHADOW_BODY_TOO_LARGE;
        }
    }

    if (n == NGX_HTTP_CANARY_SHADOW_STABLE) {
        return ngx_http_next_header_filter(r);
    }

    /* the shadow's response goes to nobody */
    r->header_sent = 1;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_canary_shadow_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_uint_t                      n;
    ngx_chain_t                    *cl;
    ngx_http_canary_shadow_t       *st;
    ngx_http_canary_shadow_side_t  *side;

    if (ngx_http_canary_shadow_live == 0) {
        return ngx_http_next_body_filter(r, in);
    }

    st = ngx_http_canary_shadow_state(r, &n);

    if (st == NULL) {
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

        if (cl->buf->last_buf) {
            side->last = 1;
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

    /* the shadow's response goes to nobody */
    return NGX_OK;
}


/* both ended: the verdict */

static void
ngx_http_canary_shadow_compare(ngx_http_canary_shadow_t *st)
{
    uint64_t                        ds, dc;
    ngx_http_canary_shm_shadow_t   *shd;
    ngx_http_canary_shadow_side_t  *s, *c;

    shd = &st->split->sh->shadow;
    s = &st->side[NGX_HTTP_CANARY_SHADOW_STABLE];
    c = &st->side[NGX_HTTP_CANARY_SHADOW_CANARY];

    if (st->timed_out) {
        (void) ngx_atomic_fetch_add(&shd->timeouts, 1);
        return;
    }

    if (!c->complete) {
        (void) ngx_atomic_fetch_add(&shd->canary_errors, 1);
        return;
    }

    if (!s->complete) {
        return;
    }

    /*
     * the canary is compared with a healthy stable: stable's own 5xx
     * says nothing of the canary (at weight 0 it would be the canary's
     * only "failure"), so the pair is not compared
     */
    if (s->status >= NGX_HTTP_INTERNAL_SERVER_ERROR && s->status < 600) {
        (void) ngx_atomic_fetch_add(&shd->skipped_stable_error, 1);
        return;
    }

    /*
     * the verdict's counter first, then compared: a reader (who reads
     * compared first, see ngx_http_canary_shadow_report()) may see a
     * match not yet compared, never a compared pair not yet matched,
     * that is, never a mismatch that is not there
     */
    if (s->status != c->status) {
        (void) ngx_atomic_fetch_add(&shd->mismatched_status, 1);
        (void) ngx_atomic_fetch_add(&shd->compared, 1);
        ngx_http_canary_shadow_example(st);
        return;
    }

    if (st->split->shadow.compare_body) {

        ngx_http_canary_shadow_body_last(&s->body);
        ngx_http_canary_shadow_body_last(&c->body);

        ds = 0;
        dc = 0;

        /* a shadow_ignore over its match limit marks its side too large */
        if (s->body.state == NGX_HTTP_CANARY_SHADOW_BODY_OK
            && c->body.state == NGX_HTTP_CANARY_SHADOW_BODY_OK)
        {
            ds = ngx_http_canary_shadow_digest(st, s);
            dc = ngx_http_canary_shadow_digest(st, c);
        }

        if (s->body.state == NGX_HTTP_CANARY_SHADOW_BODY_TOO_LARGE
            || c->body.state == NGX_HTTP_CANARY_SHADOW_BODY_TOO_LARGE)
        {
            (void) ngx_atomic_fetch_add(&shd->skipped_body_too_large, 1);
            return;
        }

        if (s->body.state != NGX_HTTP_CANARY_SHADOW_BODY_OK
            || c->body.state != NGX_HTTP_CANARY_SHADOW_BODY_OK
            || ds != dc)
        {
            (void) ngx_atomic_fetch_add(&shd->mismatched_body, 1);
            (void) ngx_atomic_fetch_add(&shd->compared, 1);
            ngx_http_canary_shadow_example(st);
            return;
        }
    }

    (void) ngx_atomic_fetch_add(&shd->matched, 1);
    (void) ngx_atomic_fetch_add(&shd->compared, 1);
}


/*
 * The digest of a side; a kept body (shadow_ignore) first loses every
 * match of each regex, in place, left to right (each regex over what
 * the ones before it left).  Each search has a match limit far below
 * PCRE2's default (10,000,000, some 150 ms of a worker on a backtracking
 * regex): a regex that reaches it leaves the side not compared (too
 * large), said once per worker.
 */

static uint64_t
ngx_http_canary_shadow_digest(ngx_http_canary_shadow_t *st,
    ngx_http_canary_shadow_side_t *side)
{
    u_char                *w, *pos, *end;
    size_t                 m0, m1;
    ngx_int_t              rc;
    ngx_uint_t             i;
    ngx_regex_t          **re;
#if (NGX_PCRE2)
    PCRE2_SIZE            *ov;
    pcre2_match_data      *md;
    pcre2_match_context   *mc;
#else
    int                    captures[3];
    ngx_str_t              subject;
#endif

    if (side->body.keep == NULL) {
        return side->body.digest;
    }

#if (NGX_PCRE2)
    mc = pcre2_match_context_create(NULL);
    md = pcre2_match_data_create(1, NULL);

    if (mc == NULL || md == NULL
        || pcre2_set_match_limit(mc, NGX_HTTP_CANARY_SHADOW_MATCH_LIMIT) != 0
        || pcre2_set_depth_limit(mc, NGX_HTTP_CANARY_SHADOW_MATCH_LIMIT) != 0)
    {
        rc = PCRE2_ERROR_NOMEMORY;
        i = 0;
        goto failed;
    }
#endif

    re = st->split->shadow.ignore->elts;
    end = side->body.keep + side->body.kept;

    for (i = 0; i < st->split->shadow.ignore->nelts; i++) {
        pos = side->body.keep;
        w = pos;

        while (pos < end) {

#if (NGX_PCRE2)
            rc = pcre2_match(re[i], pos, end - pos, 0, 0, md, mc);

            if (rc == PCRE2_ERROR_NOMATCH) {
                break;
            }

            if (rc < 0) {
                goto failed;
            }

            ov = pcre2_get_ovector_pointer(md);
            m0 = ov[0];
            m1 = ov[1];
#else
            subject.data = pos;
            subject.len = end - pos;

            rc = ngx_regex_exec(re[i], &subject, captures, 3);

            if (rc == NGX_REGEX_NO_MATCHED) {
                break;
            }

            if (rc < 0) {
                goto failed;
            }

            m0 = captures[0];
            m1 = captures[1];
#endif

            /*
             * an empty match removes nothing: step over one byte; at the
             * very end ("\s*\z" on a body without the space) there is
             * no byte to step over, and none to keep
             */
            if (m1 == m0) {

                if (m0 >= (size_t) (end - pos)) {
                    break;
                }

                m1++;
                m0++;
            }

            w = ngx_movemem(w, pos, m0);
            pos += m1;
        }

        if (pos < end) {
            w = ngx_movemem(w, pos, end - pos);
        }

        end = w;
    }

#if (NGX_PCRE2)
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
#endif

    side->body.kept = end - side->body.keep;

    return ngx_http_canary_fnv1a(NGX_HTTP_CANARY_FNV_BASIS, side->body.keep,
                                 side->body.kept);

failed:

#if (NGX_PCRE2)
    if (md) {
        pcre2_match_data_free(md);
    }

    if (mc) {
        pcre2_match_context_free(mc);
    }
#endif

    side->body.state = NGX_HTTP_CANARY_SHADOW_BODY_TOO_LARGE;

    if (!ngx_http_canary_shadow_limit_logged) {
        ngx_http_canary_shadow_limit_logged = 1;
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "canary_split \"%V\": shadow_ignore #%ui failed on "
                      "a body of %uz bytes (" ngx_regex_exec_n " %i; "
                      "match limit %d): not compared, counted in "
                      "skipped.body_too_large", &st->split->name, i + 1,
                      side->body.kept, rc,
                      NGX_HTTP_CANARY_SHADOW_MATCH_LIMIT);
    }

    return 0;
}


/* one of the last 16 mismatches, lock-free: see the slot's comment */

static void
ngx_http_canary_shadow_example(ngx_http_canary_shadow_t *st)
{
    ngx_uint_t                      i;
    ngx_http_canary_shm_shadow_t   *shd;
    ngx_http_canary_shm_example_t  *ex;

    shd = &st->split->sh->shadow;

    i = ngx_atomic_fetch_add(&shd->next, 1) % NGX_HTTP_CANARY_SHADOW_EXAMPLES;
    ex = &shd->examples[i];

    ex->at = 0;
    ngx_memory_barrier();

    ngx_memcpy(ex->uri, st->uri, st->uri_len);
    ex->uri_len = st->uri_len;

    ex->stable_status = st->side[0].status;
    ex->canary_status = st->side[1].status;
    ex->stable_bytes = st->side[0].body.bytes;
    ex->canary_bytes = st->side[1].body.bytes;

    ngx_memory_barrier();
    ex->at = ngx_time();
}


/* $canary_shadow: "1" in a mirrored request and in its shadow */

static ngx_int_t
ngx_http_canary_shadow_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_canary_ctx_t  *ctx;

    ctx = ngx_http_canary_get_ctx(r->main);

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

    /*
     * compared before the verdicts (the writers add them in the other
     * order, see ngx_http_canary_shadow_compare()): the verdicts read
     * may count pairs not yet compared, so matched is cut to compared
     */
    rep->compared = shd->compared;
    ngx_memory_barrier();
    rep->matched = shd->matched;

    if (rep->matched > rep->compared) {
        rep->matched = rep->compared;
    }

    rep->mismatched_status = shd->mismatched_status;
    rep->mismatched_body = shd->mismatched_body;
    rep->canary_errors = shd->canary_errors;
    rep->timeouts = shd->timeouts;
    rep->skipped_method = shd->skipped_method;
    rep->skipped_body_too_large = shd->skipped_body_too_large;
    rep->skipped_in_flight = shd->skipped_in_flight;
    rep->skipped_stable_error = shd->skipped_stable_error;
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
