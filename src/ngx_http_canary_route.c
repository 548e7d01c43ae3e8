
/*
 * The routing decision, made once per request and kept in the request
 * context: guard tripped -> rolled back -> split disabled -> override
 * headers -> cookie -> pinned tenant -> cohort weight -> weight.  Also the
 * $canary_* variables.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_canary_module.h"


/* what the one pass over the request headers found */
typedef struct {
    ngx_uint_t                   override;      /* index, or nelts: none */
    ngx_int_t                    cookie;        /* variant, or -1: none */
    ngx_table_elt_t             *key;           /* the key header */
    unsigned                     several_keys:1;
    unsigned                     by_address:1;  /* a from= was asked */
} ngx_http_canary_scan_t;


static ngx_int_t ngx_http_canary_preaccess_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_canary_ctx_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_canary_key_header(
    ngx_http_core_main_conf_t *cmcf, ngx_http_complex_value_t *cv,
    ngx_str_t *name, ngx_uint_t *index);
static void ngx_http_canary_key_dashed(ngx_pool_t *pool,
    ngx_http_canary_split_t *split);
static ngx_inline ngx_uint_t ngx_http_canary_equal(const u_char *a,
    const u_char *b, size_t len);
static void ngx_http_canary_scan_headers(ngx_http_request_t *r,
    ngx_http_canary_split_t *split, ngx_str_t *name,
    ngx_http_canary_scan_t *scan);
/* not static: see its definition; hidden: no PLT */
NGX_HTTP_CANARY_HIDDEN
ngx_uint_t ngx_http_canary_scan_patterns(ngx_http_request_t *r,
    ngx_http_canary_split_t *split, ngx_http_canary_scan_t *scan);
static ngx_int_t ngx_http_canary_pattern_match(ngx_http_request_t *r,
    ngx_http_canary_pattern_t *pt, ngx_str_t *s);
static void ngx_http_canary_pattern_log(ngx_http_request_t *r,
    ngx_http_canary_pattern_t *pt, ngx_str_t *s, int rc);
static ngx_uint_t ngx_http_canary_trusted(ngx_http_request_t *r,
    ngx_array_t *from, ngx_http_canary_scan_t *scan);
static ngx_int_t ngx_http_canary_pin_lookup(
    ngx_http_canary_shm_split_t *shs, ngx_str_t *key);
static ngx_uint_t ngx_http_canary_weight(ngx_http_request_t *r,
    ngx_http_canary_split_t *split, ngx_http_canary_ctx_t *ctx);
static ngx_int_t ngx_http_canary_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_inline ngx_http_canary_ctx_t *ngx_http_canary_decided(
    ngx_http_request_t *r, ngx_http_canary_split_t *split);
static ngx_str_t *ngx_http_canary_variable_str(ngx_http_canary_ctx_t *ctx,
    uintptr_t data);
/* not static: see its definition; hidden: no PLT */
NGX_HTTP_CANARY_HIDDEN
ngx_int_t ngx_http_canary_variable_value(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data, ngx_http_canary_ctx_t *ctx);


typedef enum {
    NGX_HTTP_CANARY_VAR_UPSTREAM = 0,
    NGX_HTTP_CANARY_VAR_VARIANT,
    NGX_HTTP_CANARY_VAR_REASON,
    NGX_HTTP_CANARY_VAR_BUCKET,
    NGX_HTTP_CANARY_VAR_WEIGHT
} ngx_http_canary_var_e;


static ngx_http_variable_t  ngx_http_canary_vars[] = {

    { ngx_string("canary_upstream"), NULL, ngx_http_canary_variable,
      NGX_HTTP_CANARY_VAR_UPSTREAM, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("canary_variant"), NULL, ngx_http_canary_variable,
      NGX_HTTP_CANARY_VAR_VARIANT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("canary_reason"), NULL, ngx_http_canary_variable,
      NGX_HTTP_CANARY_VAR_REASON, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("canary_bucket"), NULL, ngx_http_canary_variable,
      NGX_HTTP_CANARY_VAR_BUCKET, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("canary_weight"), NULL, ngx_http_canary_variable,
      NGX_HTTP_CANARY_VAR_WEIGHT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/*
 * The decision survives internal redirects in this variable's slot of
 * the main request: nginx clears module contexts on a redirect but keeps
 * r->variables.  Its value is empty (len 0) to anyone who reads it.
 */
static ngx_str_t   ngx_http_canary_ctx_name = ngx_string("canary_ctx_");
static ngx_int_t   ngx_http_canary_ctx_index = NGX_ERROR;


static const ngx_http_canary_ctx_t  ngx_http_canary_ctx_zero;


static ngx_str_t  ngx_http_canary_variant_names[] = {
    ngx_string("stable"),
    ngx_string("canary")
};


static ngx_str_t  ngx_http_canary_reason_names[] = {
    ngx_string("hash"),
    ngx_string("random"),
    ngx_string("header"),
    ngx_string("cookie"),
    ngx_string("pin"),
    ngx_string("cohort"),
    ngx_string("disabled"),
    ngx_string("guard"),
    ngx_string("rolled_back")
};


ngx_int_t
ngx_http_canary_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_canary_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    var = ngx_http_add_variable(cf, &ngx_http_canary_ctx_name,
                                NGX_HTTP_VAR_NOHASH);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_canary_ctx_variable;

    ngx_http_canary_ctx_index = ngx_http_get_variable_index(cf,
                                                 &ngx_http_canary_ctx_name);
    if (ngx_http_canary_ctx_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_canary_init_route(ngx_conf_t *cf)
{
    ngx_array_t                  *a;
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_canary_main_conf_t  *ccf;

    /*
     * Only a "canary SPLIT" makes the handler decide: without one (only
     * canary_balancer), requests need not pass through it.
     */
    ccf = ngx_http_conf_get_module_main_conf(cf, ngx_http_canary_module);

    if (!ccf->preaccess) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * Decide in preaccess as well as on first use of a variable, so that
     * every request of a "canary" location is counted in the log phase.
     *
     * nginx runs a phase's handlers last registered first, and a dynamic
     * module registers after the built-in ones: pushed, this handler
     * would run before realip's of a location's "set_real_ip_from", and
     * from= would see the balancer's address.  First in the array, it
     * runs after every other preaccess handler.
     */

    a = &cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers;

    if (ngx_array_push(a) == NULL) {
        return NGX_ERROR;
    }

    h = a->elts;
    ngx_memmove(&h[1], &h[0], (a->nelts - 1) * sizeof(ngx_http_handler_pt));
    h[0] = ngx_http_canary_preaccess_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_canary_preaccess_handler(ngx_http_request_t *r)
{
    ngx_http_canary_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_canary_module);

    /* as ngx_http_canary_decide() with a split, one call less */
    if (clcf->split
        && ngx_http_canary_decided(r, clcf->split) == NULL
        && ngx_http_canary_decide_split(r, clcf->split) == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


/*
 * The decision of the main request, also after an internal redirect
 * (error_page, try_files, a named location), which clears contexts: then
 * it is found in its variable slot, counted in the log phase and not made
 * again.  A subrequest shares it, unless it made its own (under another
 * split).
 */

ngx_http_canary_ctx_t *
ngx_http_canary_get_ctx(ngx_http_request_t *r)
{
    ngx_http_canary_ctx_t      *ctx;
    ngx_http_variable_value_t  *vv;

    if (r != r->main) {
        ctx = ngx_http_canary_own_ctx(r);

        if (ctx) {
            return ctx;
        }

        r = r->main;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_canary_module);

    if (ctx || !(r->internal || r->filter_finalize)) {
        return ctx;
    }

    vv = &r->variables[ngx_http_canary_ctx_index];

    if (!vv->valid || vv->data == NULL) {
        return NULL;
    }

    ctx = (ngx_http_canary_ctx_t *) vv->data;
    ngx_http_set_ctx(r, ctx, ngx_http_canary_module);

    return ctx;
}


/*
 * The decision a subrequest made for itself, or NULL: in its context, or,
 * after an internal redirect of the subrequest (an error_page to a named
 * location) cleared that, in its request's chain.  A subrequest must not
 * then fall back to its request's decision: that is another split's.
 */

ngx_http_canary_ctx_t *
ngx_http_canary_own_ctx(ngx_http_request_t *r)
{
    ngx_http_canary_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_canary_module);

    if (ctx || r == r->main) {
        return ctx;
    }

    ctx = ngx_http_canary_get_ctx(r->main);

    for (ctx = ctx ? ctx->next : NULL; ctx; ctx = ctx->next) {
        if (ctx->request == r) {
            ngx_http_set_ctx(r, ctx, ngx_http_canary_module);
            return ctx;
        }
    }

    return NULL;
}


/*
 * A decision made elsewhere (a shadow request's, ngx_http_canary_shadow.c)
 * set on a main request as decide_split() sets its own: in the context
 * and in the variable slot that internal redirects keep.
 */

void
ngx_http_canary_set_ctx(ngx_http_request_t *r, ngx_http_canary_ctx_t *ctx)
{
    ngx_http_variable_value_t  *vv;

    ngx_http_set_ctx(r, ctx, ngx_http_canary_module);

    vv = &r->variables[ngx_http_canary_ctx_index];
    vv->len = 0;
    vv->valid = 1;
    vv->no_cacheable = 0;
    vv->not_found = 0;
    vv->escape = 0;
    vv->data = (u_char *) ctx;
}


/* $canary_ctx_ read by name: empty, it carries nothing to configuration */

static ngx_int_t
ngx_http_canary_ctx_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    v->not_found = 1;

    return NGX_OK;
}


/*
 * Returns the decision for the request under the current location's
 * split, made once per split: a location with another split (after a
 * server-level "canary" was already used) decides again; one that says
 * nothing (an error_page or a named location after a redirect) keeps
 * the decision made before; one with "canary off" has none, unless a
 * canary_balancer decided.  NULL means no split applies here (or no
 * memory: logged by the pool).
 */

ngx_http_canary_ctx_t *
ngx_http_canary_decide(ngx_http_request_t *r)
{
    ngx_http_canary_ctx_t       *ctx;
    ngx_http_canary_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_canary_module);

    if (clcf->split) {
        ctx = ngx_http_canary_decided(r, clcf->split);

        return ctx ? ctx : ngx_http_canary_decide_split(r, clcf->split);
    }

    ctx = ngx_http_canary_get_ctx(r);

    return (ctx && (ctx->balancer || !clcf->off)) ? ctx : NULL;
}


/*
 * A main request's decision under "split" already made (a variable read
 * after the preaccess phase), as decide_split() returns it then; or NULL:
 * ask decide_split()
 */

static ngx_inline ngx_http_canary_ctx_t *
ngx_http_canary_decided(ngx_http_request_t *r, ngx_http_canary_split_t *split)
{
    ngx_http_canary_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_canary_module);

    if (ctx && r == r->main && ctx->split == split
        && (ctx->sockaddr == NULL || ctx->upstream_read
            || ctx->sockaddr == r->connection->sockaddr))
    {
        return ctx;
    }

    return NULL;
}


ngx_http_canary_ctx_t *
ngx_http_canary_decide_split(ngx_http_request_t *r,
    ngx_http_canary_split_t *split)
{
    ngx_int_t                     pinned;
    ngx_str_t                     key, name;
    ngx_uint_t                    k, weight;
    ngx_http_request_t           *mr;
    ngx_http_canary_ctx_t        *ctx, *main_ctx;
    ngx_http_canary_scan_t        scan;
    ngx_http_variable_value_t    *vv;
    ngx_http_canary_override_t   *ov;
    ngx_http_canary_pattern_t    *pt;
    ngx_http_canary_shm_split_t  *shs;

    mr = r->main;

    /* what get_ctx() returns but after a redirect, without the call */
    ctx = ngx_http_get_module_ctx(mr, ngx_http_canary_module);

    if (ctx == NULL && (mr->internal || mr->filter_finalize)) {
        ctx = ngx_http_canary_get_ctx(mr);
    }

    main_ctx = ctx;

    /*
     * a subrequest under another split than the one its request decided
     * on (an auth_request to a service with a rollout of its own) decides
     * for itself: the request keeps its decision, and is counted on it,
     * the subrequest on its own
     */
    if (r != mr && ctx && ctx->split != split) {
        mr = r;
        ctx = ngx_http_canary_own_ctx(r);
    }

    /*
     * made once, unless from= was asked about an address that realip has
     * changed since (a variable read in a location's rewrite phase, before
     * its "set_real_ip_from" took effect): then again, with the client's;
     * but not once $canary_upstream was read, which the request may be
     * proxied by (a "set" of it): what is counted is where it went
     */
    if (ctx && ctx->split == split
        && (ctx->sockaddr == NULL || ctx->upstream_read
            || ctx->sockaddr == r->connection->sockaddr))
    {
        return ctx;
    }

    if (ctx == NULL) {
        ctx = ngx_palloc(mr->pool, sizeof(ngx_http_canary_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        /* zeroed in place: a few stores, not a call of memset() */
        *ctx = ngx_http_canary_ctx_zero;

        ngx_http_set_ctx(mr, ctx, ngx_http_canary_module);

        if (mr == r->main) {
            vv = &mr->variables[ngx_http_canary_ctx_index];
            vv->len = 0;
            vv->valid = 1;
            vv->no_cacheable = 0;
            vv->not_found = 0;
            vv->escape = 0;
            vv->data = (u_char *) ctx;

        } else {
            ctx->request = mr;
            ctx->next = main_ctx->next;
            main_ctx->next = ctx;
        }
    }

    shs = split->sh;

    ctx->split = split;
    ctx->balancer = 0;
    ctx->bucket = -1;
    ctx->weight = shs->weight;
    ctx->cohort = NULL;
    ctx->sockaddr = NULL;
    ctx->upstream_read = 0;

    /* safety first: a tripped guard beats every override */
    if (shs->guard_tripped) {
        ctx->variant = NGX_HTTP_CANARY_STABLE;
        ctx->reason = NGX_HTTP_CANARY_REASON_GUARD;
        ctx->weight = 0;
        goto done;
    }

    /* and so does a rollback, until "canary-ctl reset" */
    if (shs->rolled_back) {
        ctx->variant = NGX_HTTP_CANARY_STABLE;
        ctx->reason = NGX_HTTP_CANARY_REASON_ROLLED_BACK;
        ctx->weight = 0;
        goto done;
    }

    if (!shs->enabled) {
        ctx->variant = NGX_HTTP_CANARY_STABLE;
        ctx->reason = NGX_HTTP_CANARY_REASON_DISABLED;
        ctx->weight = 0;
        goto done;
    }

    /*
     * Overrides, the cookie and the key header in one pass; the header
     * only while nginx would still read it for the variable (not cached).
     */

    ngx_str_null(&name);

    if (split->key_header.len
        && !r->variables[split->key_index].valid
        && !r->variables[split->key_index].not_found)
    {
        name = split->key_header;
    }

    scan.override = split->overrides.nelts;
    scan.cookie = -1;
    scan.key = NULL;
    scan.several_keys = 0;
    scan.by_address = 0;

    if (split->overrides.nelts || split->cookie.len || name.len) {
        ngx_http_canary_scan_headers(r, split, &name, &scan);
    }

    if (scan.by_address) {
        ctx->sockaddr = r->connection->sockaddr;
    }

    if (scan.override < split->overrides.nelts) {
        ov = split->overrides.elts;
        ctx->variant = ov[scan.override].variant;
        ctx->reason = NGX_HTTP_CANARY_REASON_HEADER;
        goto done;
    }

    /* the regex overrides: after the exact ones, as nginx's locations */
    if (split->patterns.nelts) {
        k = ngx_http_canary_scan_patterns(r, split, &scan);

        if (scan.by_address) {
            ctx->sockaddr = r->connection->sockaddr;
        }

        if (k < split->patterns.nelts) {
            pt = split->patterns.elts;
            ctx->variant = pt[k].variant;
            ctx->reason = NGX_HTTP_CANARY_REASON_HEADER;
            goto done;
        }
    }

    if (scan.cookie != -1) {
        ctx->variant = scan.cookie;
        ctx->reason = NGX_HTTP_CANARY_REASON_COOKIE;
        goto done;
    }

    if (name.len && !scan.several_keys) {
        if (scan.key) {
            key = scan.key->value;

        } else {
            ngx_str_null(&key);
        }

    } else if (ngx_http_complex_value(r, split->key, &key) != NGX_OK) {
        return NULL;
    }

    if (shs->pins && key.len) {
        pinned = ngx_http_canary_pin_lookup(shs, &key);

        if (pinned != NGX_DECLINED) {
            ctx->variant = pinned;
            ctx->reason = NGX_HTTP_CANARY_REASON_PIN;
            goto done;
        }
    }

    weight = ngx_http_canary_weight(r, split, ctx);

    if (key.len == 0) {
        ctx->reason = NGX_HTTP_CANARY_REASON_RANDOM;
        ctx->variant = ((ngx_uint_t) ngx_random() % NGX_HTTP_CANARY_BUCKETS
                        < weight)
                       ? NGX_HTTP_CANARY_CANARY : NGX_HTTP_CANARY_STABLE;
        goto done;
    }

    /* ngx_http_canary_bucket(), one call less */
    ctx->bucket = ngx_http_canary_bucket_of(
                      ngx_http_canary_murmur2(split->salt.data,
                                              split->salt.len,
                                              key.data, key.len));

    ctx->variant = ((ngx_uint_t) ctx->bucket < weight)
                   ? NGX_HTTP_CANARY_CANARY : NGX_HTTP_CANARY_STABLE;

done:

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "canary split \"%V\": %V by %V, bucket %i, weight %ui",
                   &split->name, &ngx_http_canary_variant_names[ctx->variant],
                   &ngx_http_canary_reason_names[ctx->reason], ctx->bucket,
                   ctx->weight);

    return ctx;
}


/*
 * When the split's key is exactly one $http_NAME variable (the default
 * "$http_x_tenant_id"), the name of its header: the pass over the headers
 * that looks for overrides and the cookie then finds the key too, instead
 * of a second pass by the variable.  Only when nginx would take the value
 * from that header itself: the one variable of the compiled value, handled
 * by nginx's "http_" prefix variable (not a "set" or "map" of that name).
 * Found once, when the configuration is complete (the variables have
 * their handlers); each request checks only that the variable was not
 * evaluated before (then its cached value counts).
 */

void
ngx_http_canary_init_key_headers(ngx_cycle_t *cycle,
    ngx_http_canary_main_conf_t *cmcf)
{
    ngx_uint_t                   i;
    ngx_http_canary_split_t    **splitp;
    ngx_http_core_main_conf_t   *core;

    core = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module);
    splitp = cmcf->splits.elts;

    for (i = 0; i < cmcf->splits.nelts; i++) {
        ngx_str_null(&splitp[i]->key_dashed);
        splitp[i]->key_hash = 0;

        splitp[i]->scan_lens = splitp[i]->override_lens;

        if (splitp[i]->cookie.len) {
            splitp[i]->scan_lens |= (uint64_t) 1 << (sizeof("cookie") - 1);
        }

        if (splitp[i]->key == NULL
            || ngx_http_canary_key_header(core, splitp[i]->key,
                                          &splitp[i]->key_header,
                                          &splitp[i]->key_index)
               != NGX_OK)
        {
            ngx_str_null(&splitp[i]->key_header);
            continue;
        }

        splitp[i]->scan_lens |=
                         (uint64_t) 1 << (splitp[i]->key_header.len % 64);

        ngx_http_canary_key_dashed(cycle->pool, splitp[i]);
    }
}


/*
 * The key header's usual spelling, "_" written "-", and the hash nginx
 * computes for such a header name as it parses it (h->hash: the
 * lowercased name's ngx_hash_key(), HTTP/1.x and HTTP/2 alike), when the
 * name is of [a-z0-9_]: then a header of that hash and lowercased name
 * is the key header.  Without memory, no shortcut: every header is
 * compared character by character.
 */

static void
ngx_http_canary_key_dashed(ngx_pool_t *pool, ngx_http_canary_split_t *split)
{
    u_char      c, *p;
    ngx_uint_t  i, hash;

    p = ngx_pnalloc(pool, split->key_header.len);
    if (p == NULL) {
        return;
    }

    hash = 0;

    for (i = 0; i < split->key_header.len; i++) {
        c = split->key_header.data[i];

        if (c == '_') {
            c = '-';

        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            return;
        }

        p[i] = c;
        hash = ngx_hash(hash, c);
    }

    split->key_dashed.len = split->key_header.len;
    split->key_dashed.data = p;
    split->key_hash = hash;
}


static ngx_int_t
ngx_http_canary_key_header(ngx_http_core_main_conf_t *cmcf,
    ngx_http_complex_value_t *cv, ngx_str_t *name, ngx_uint_t *index)
{
    ngx_str_t                   *var;
    ngx_http_variable_t         *v, *pv;
    ngx_http_script_var_code_t  *code;

    code = cv->lengths;

    if (code == NULL
        || code->code != (ngx_http_script_code_pt) (void *)
                         ngx_http_script_copy_var_len_code
        || *(uintptr_t *) (code + 1) != (uintptr_t) NULL
        || code->index >= cmcf->variables.nelts
        || cmcf->prefix_variables.nelts == 0)
    {
        return NGX_DECLINED;
    }

    v = cmcf->variables.elts;
    v += code->index;

    /* nginx registers "http_" first of its prefix variables */
    pv = cmcf->prefix_variables.elts;

    if (pv->name.len != sizeof("http_") - 1
        || ngx_strncmp(pv->name.data, "http_", sizeof("http_") - 1) != 0
        || v->get_handler != pv->get_handler)
    {
        return NGX_DECLINED;
    }

    /* what the handler matches the headers against */
    var = (ngx_str_t *) v->data;

    if (var->len <= sizeof("http_") - 1) {
        return NGX_DECLINED;
    }

    name->len = var->len - (sizeof("http_") - 1);
    name->data = var->data + sizeof("http_") - 1;
    *index = code->index;

    return NGX_OK;
}


/*
 * One pass over the request headers for:
 *
 *  - the first override in configuration order that a header matches
 *    (name case-insensitively, value exactly);
 *  - unless one did, cookie NAME: NAME=always sends the client to canary,
 *    NAME=never to stable, from the first Cookie header that says either
 *    (with from=, only from a client address in one of the CIDRs);
 *  - the key header "name" (when not empty), matched as nginx matches the
 *    headers of $http_NAME (ngx_http_variable_unknown_header()): nginx
 *    joins several, so several_keys tells the caller to ask the variable.
 */

static void
ngx_http_canary_scan_headers(ngx_http_request_t *r,
    ngx_http_canary_split_t *split, ngx_str_t *name,
    ngx_http_canary_scan_t *scan)
{
    u_char                       ch;
    size_t                       len;
    ngx_int_t                    cookie;
    ngx_uint_t                   i, k, n, nov, found, key_hash;
    const u_char                *val;
    ngx_list_part_t             *part;
    ngx_table_elt_t             *h;
    ngx_http_canary_override_t  *ov;

    ov = split->overrides.elts;
    nov = split->overrides.nelts;

    /* in locals, not in *scan: the compiler keeps them in registers */
    found = nov;
    cookie = split->cookie.len ? -1 : NGX_HTTP_CANARY_VARIANTS;
    key_hash = name->len ? split->key_hash : 0;

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

        /* most headers have none of the lengths looked for */
        if (!(split->scan_lens & ((uint64_t) 1 << (h[i].key.len % 64)))) {
            continue;
        }

        k = (split->override_lens & ((uint64_t) 1 << (h[i].key.len % 64)))
            ? 0 : found;

        for ( /* void */ ; k < found; k++) {

            if (h[i].key.len != ov[k].name.len
                || h[i].value.len != ov[k].value.len
                || ngx_strncmp(h[i].lowcase_key, ov[k].name.data,
                               ov[k].name.len) != 0
                || ngx_strncmp(h[i].value.data, ov[k].value.data,
                               ov[k].value.len) != 0)
            {
                continue;
            }

            /* a header from an untrusted address is ignored */
            if (!ngx_http_canary_trusted(r, ov[k].from, scan)) {
                continue;
            }

            found = k;
            break;
        }

        if (cookie == -1
            && found == nov
            && h[i].key.len == 6
            && h[i].lowcase_key[0] == 'c'
            && ngx_strncmp(h[i].lowcase_key, "cookie", 6) == 0
            && ngx_http_canary_find_cookie(h[i].value.data, h[i].value.len,
                                           split->cookie.data,
                                           split->cookie.len, &val, &len)
            && ngx_http_canary_trusted(r, split->cookie_from, scan))
        {
            if (len == 6 && ngx_strncmp(val, "always", 6) == 0) {
                cookie = NGX_HTTP_CANARY_CANARY;

            } else if (len == 5 && ngx_strncmp(val, "never", 5) == 0) {
                cookie = NGX_HTTP_CANARY_STABLE;
            }
        }

        if (h[i].key.len != name->len || name->len == 0 || h[i].hash == 0) {
            continue;
        }

        /*
         * nginx's own hash of the lowercased name (h->hash) tells the
         * usual spelling (X-Tenant-Id) at once; a name spelled another
         * way (X_Tenant_Id, with underscores_in_headers) is compared as
         * ngx_http_variable_unknown_header() does
         */
        if (h[i].hash == key_hash
            && ngx_http_canary_equal(h[i].lowcase_key,
                                     split->key_dashed.data, name->len))
        {
            n = name->len;

        } else {
            for (n = 0; n < name->len; n++) {
                ch = h[i].key.data[n];

                if (ch >= 'A' && ch <= 'Z') {
                    ch |= 0x20;

                } else if (ch == '-') {
                    ch = '_';
                }

                if (name->data[n] != ch) {
                    break;
                }
            }
        }

        if (n == name->len) {
            if (scan->key) {
                scan->several_keys = 1;

            } else {
                scan->key = &h[i];
            }
        }
    }

    scan->override = found;

    if (cookie != NGX_HTTP_CANARY_VARIANTS) {
        scan->cookie = cookie;
    }
}


/*
 * Whether "len" bytes at "a" and "b" are the same: names of 8 to 16
 * bytes (the usual key header) in two overlapping 8-byte loads each,
 * inline, other lengths by memcmp()
 */

static ngx_inline ngx_uint_t
ngx_http_canary_equal(const u_char *a, const u_char *b, size_t len)
{
    uint64_t  x, y, u, v;

    if (len < 8 || len > 16) {
        return ngx_memcmp(a, b, len) == 0;
    }

    ngx_memcpy(&x, a, 8);
    ngx_memcpy(&y, b, 8);
    ngx_memcpy(&u, a + len - 8, 8);
    ngx_memcpy(&v, b + len - 8, 8);

    return x == y && u == v;
}


#if (NGX_PCRE2)
/* the automatic callouts of the request's matches so far */
static ngx_uint_t  ngx_http_canary_callouts;
#endif


/*
 * The first pattern override, in configuration order, that a header line
 * matches (name case-insensitively, the line's value by the regex): a
 * header given several times is matched line by line, as the exact form
 * is, not joined.  The address is checked before the regex, so that a
 * client not trusted never makes the worker run it.  Returns its index,
 * or nelts: none.  Not static, so that the compiler keeps it out of
 * ngx_http_canary_decide_split(): a split without patterns pays one test.
 */

ngx_uint_t
ngx_http_canary_scan_patterns(ngx_http_request_t *r,
    ngx_http_canary_split_t *split, ngx_http_canary_scan_t *scan)
{
    ngx_int_t                   rc;
    ngx_uint_t                  i, k, found, lines, ran;
    ngx_list_part_t            *part;
    ngx_table_elt_t            *h;
    ngx_http_canary_pattern_t  *pt;

    pt = split->patterns.elts;
    found = split->patterns.nelts;
    lines = 0;

#if (NGX_PCRE2)
    /* one budget of steps for all the request's matches, not one each */
    ngx_http_canary_callouts = 0;
#endif

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

        ran = 0;

        for (k = 0; k < found; k++) {

            if (h[i].key.len != pt[k].name.len
                || ngx_strncmp(h[i].lowcase_key, pt[k].name.data,
                               pt[k].name.len) != 0)
            {
                continue;
            }

            if (!ngx_http_canary_trusted(r, pt[k].from, scan)) {
                continue;
            }

            /* a client's lines bound what one request costs */
            if (lines == NGX_HTTP_CANARY_PATTERN_LINES_MAX) {
                ngx_http_canary_pattern_log(r, &pt[k], &h[i].value, 0);
                return found;
            }

            ran = 1;

            rc = ngx_http_canary_pattern_match(r, &pt[k], &h[i].value);

            if (rc == NGX_OK) {
                found = k;
                break;
            }

            /* a limit reached: no more regexes for this request */
            if (rc == NGX_ABORT) {
                return found;
            }
        }

        lines += ran;
    }

    return found;
}


#if (NGX_PCRE2)

/* this worker's, made at the first pattern matched, kept to its exit */
static pcre2_match_data     *ngx_http_canary_match_data;
static pcre2_match_context  *ngx_http_canary_match_context;


/* a step of a match (an automatic callout): stop past the budget */

static int
ngx_http_canary_pattern_callout(pcre2_callout_block *cb, void *data)
{
    if (++ngx_http_canary_callouts > NGX_HTTP_CANARY_PATTERN_CALLOUTS) {
        return PCRE2_ERROR_MATCHLIMIT;
    }

    return 0;
}

#endif


/*
 * NGX_OK: the value matches; NGX_DECLINED: it does not; NGX_ABORT: PCRE
 * stopped (a limit), taken as no match
 */

static ngx_int_t
ngx_http_canary_pattern_match(ngx_http_request_t *r,
    ngx_http_canary_pattern_t *pt, ngx_str_t *s)
{
#if (NGX_PCRE2)

    int                   rc;
    pcre2_match_data     *md;
    pcre2_match_context  *mc;

    md = ngx_http_canary_match_data;
    mc = ngx_http_canary_match_context;

    if (md == NULL) {
        md = pcre2_match_data_create(1, NULL);
        mc = pcre2_match_context_create(NULL);

        if (md == NULL || mc == NULL) {
            if (md) {
                pcre2_match_data_free(md);
            }

            if (mc) {
                pcre2_match_context_free(mc);
            }

            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "canary: no memory for PCRE2 match data");
            return NGX_ABORT;
        }

        pcre2_set_match_limit(mc, NGX_HTTP_CANARY_PATTERN_MATCH_LIMIT);
        pcre2_set_heap_limit(mc, NGX_HTTP_CANARY_PATTERN_HEAP_LIMIT);
        pcre2_set_callout(mc, ngx_http_canary_pattern_callout, NULL);

        ngx_http_canary_match_data = md;
        ngx_http_canary_match_context = mc;
    }

    rc = pcre2_match(pt->code, s->data, s->len, 0, 0, md, mc);

    /* 0: a match whose captures did not fit the one pair asked for */
    if (rc >= 0) {
        return NGX_OK;
    }

    if (rc == PCRE2_ERROR_NOMATCH) {
        return NGX_DECLINED;
    }

    ngx_http_canary_pattern_log(r, pt, s, rc);

    return NGX_ABORT;

#else

    ngx_int_t  rc;

    /* PCRE1 (nginx built without PCRE2): its default limits */
    rc = ngx_regex_exec(pt->regex, s, NULL, 0);

    if (rc >= 0) {
        return NGX_OK;
    }

    if (rc == NGX_REGEX_NO_MATCHED) {
        return NGX_DECLINED;
    }

    ngx_http_canary_pattern_log(r, pt, s, rc);

    return NGX_ABORT;

#endif
}


/*
 * Why a request's patterns stopped: PCRE's error "rc", or 0: too many
 * lines.  Each at most once a second, as a hostile client may send such
 * headers with every request.
 */

static void
ngx_http_canary_pattern_log(ngx_http_request_t *r,
    ngx_http_canary_pattern_t *pt, ngx_str_t *s, int rc)
{
    ngx_uint_t     why;
    static time_t  logged[2];

    why = (rc != 0);

    if (logged[why] == ngx_time()) {
        return;
    }

    logged[why] = ngx_time();

    if (rc == 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "canary: more than %d lines of \"override\" regex "
                      "headers, \"%V\" and the rest taken as no match",
                      NGX_HTTP_CANARY_PATTERN_LINES_MAX, &pt->name);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "canary: \"override\" regex \"%V\" for header \"%V\" "
                  "stopped on a value of %uz bytes: " ngx_regex_exec_n
                  " error %d, taken as no match, and the request's other "
                  "patterns too", &pt->value, &pt->name, s->len, rc);
}


/*
 * Whether the client address (as realip has left it) is in "from", or
 * "from" is NULL: then from anywhere.
 */

static ngx_uint_t
ngx_http_canary_trusted(ngx_http_request_t *r, ngx_array_t *from,
    ngx_http_canary_scan_t *scan)
{
    if (from == NULL) {
        return 1;
    }

    scan->by_address = 1;

    return ngx_cidr_match(r->connection->sockaddr, from) == NGX_OK;
}


/*
 * The pinned side of a tenant, read without a lock: the lookup is
 * bounds-checked within the table, and retried if the table changed.
 */

static ngx_int_t
ngx_http_canary_pin_lookup(ngx_http_canary_shm_split_t *shs, ngx_str_t *key)
{
    int                      v;
    ngx_uint_t               tries;
    ngx_atomic_uint_t        seq;
    ngx_http_canary_pins_t  *pins;

    for (tries = 0; tries < 4; tries++) {
        seq = shs->pins_seq;
        ngx_memory_barrier();

        pins = shs->pins;

        if (pins == NULL) {
            return NGX_DECLINED;
        }

        v = ngx_http_canary_pins_lookup(pins, key->data, key->len);

        ngx_memory_barrier();

        if (!(seq & 1) && shs->pins_seq == seq) {
            return v < 0 ? NGX_DECLINED : v;
        }
    }

    return NGX_DECLINED;
}


/* the cohort's weight when the request's cohort has one, else the split's */

static ngx_uint_t
ngx_http_canary_weight(ngx_http_request_t *r, ngx_http_canary_split_t *split,
    ngx_http_canary_ctx_t *ctx)
{
    ngx_str_t                      name;
    ngx_uint_t                     i;
    ngx_http_canary_shm_cohort_t  *shc;

    ctx->reason = NGX_HTTP_CANARY_REASON_HASH;

    if (split->cohort == NULL
        || ngx_http_complex_value(r, split->cohort, &name) != NGX_OK
        || name.len == 0)
    {
        return ctx->weight;
    }

    shc = split->sh->cohorts;

    for (i = 0; i < split->sh->ncohorts; i++) {
        if (shc[i].name_len == name.len
            && ngx_memcmp(shc[i].name, name.data, name.len) == 0)
        {
            ctx->reason = NGX_HTTP_CANARY_REASON_COHORT;
            ctx->weight = shc[i].weight;
            ctx->cohort = &shc[i];
            ctx->cohort_name = name;
            break;
        }
    }

    return ctx->weight;
}


static ngx_int_t
ngx_http_canary_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t                   *s;
    ngx_http_canary_ctx_t       *ctx;
    ngx_http_canary_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_canary_module);

    /*
     * the usual case first, without a call: a name read after the
     * preaccess phase decided
     */
    ctx = clcf->split ? ngx_http_canary_decided(r, clcf->split) : NULL;

    if (ctx == NULL || (s = ngx_http_canary_variable_str(ctx, data)) == NULL)
    {
        return ngx_http_canary_variable_value(r, v, data, ctx);
    }

    v->len = s->len;
    v->data = s->data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* the value of a variable that is a name: NULL for the numbers */

static ngx_str_t *
ngx_http_canary_variable_str(ngx_http_canary_ctx_t *ctx, uintptr_t data)
{
    switch (data) {

    case NGX_HTTP_CANARY_VAR_UPSTREAM:
        ctx->upstream_read = 1;
        return &ctx->split->upstream[ctx->variant];

    case NGX_HTTP_CANARY_VAR_VARIANT:
        return &ngx_http_canary_variant_names[ctx->variant];

    case NGX_HTTP_CANARY_VAR_REASON:
        return &ngx_http_canary_reason_names[ctx->reason];

    default:
        return NULL;
    }
}


/*
 * Any variable, ctx NULL: not decided yet.  Not static, so that the
 * compiler keeps it out of ngx_http_canary_variable(), whose usual case
 * then makes no call and saves no register.
 */

ngx_int_t
ngx_http_canary_variable_value(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data, ngx_http_canary_ctx_t *ctx)
{
    u_char     *p;
    ngx_str_t  *s;

    if (ctx == NULL) {
        ctx = ngx_http_canary_decide(r);
    }

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = ngx_http_canary_variable_str(ctx, data);
    p = NULL;

    switch (data) {

    case NGX_HTTP_CANARY_VAR_UPSTREAM:
    case NGX_HTTP_CANARY_VAR_VARIANT:
    case NGX_HTTP_CANARY_VAR_REASON:
        break;

    case NGX_HTTP_CANARY_VAR_BUCKET:
        if (ctx->bucket < 0) {
            v->len = 0;
            break;
        }

        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_sprintf(p, "%i", ctx->bucket) - p;
        break;

    default: /* NGX_HTTP_CANARY_VAR_WEIGHT */
        p = ngx_pnalloc(r->pool, NGX_HTTP_CANARY_WEIGHT_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_http_canary_format_weight(p, ctx->weight);
        break;
    }

    if (s) {
        v->len = s->len;
        p = s->data;
    }

    v->data = p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}
