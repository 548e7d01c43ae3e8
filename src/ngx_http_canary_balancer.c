
/*
 * The upstream-level form of a split:
 *
 *     upstream api { canary_balancer SPLIT; }
 *     location / { proxy_pass http://api; }
 *
 * The upstream's per-request peer init decides the variant and hands
 * the request to the chosen group's own balancer (round robin, hash,
 * least_conn, keepalive ...), so every upstream feature stays, and nginx
 * skips what "proxy_pass http://$canary_upstream" costs on every request:
 * parsing the URL and finding the upstream by name.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_canary_module.h"


static ngx_int_t ngx_http_canary_balancer_init_upstream(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_canary_balancer_walk(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us, ngx_array_t *path);
static ngx_int_t ngx_http_canary_balancer_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);


/* what a canary_balancer upstream keeps in its peer.data */
typedef struct {
    ngx_http_canary_split_t       *split;
    ngx_http_upstream_srv_conf_t  *group[NGX_HTTP_CANARY_VARIANTS];
    unsigned                       walked:1;    /* leads to no circle */
} ngx_http_canary_balancer_t;


char *
ngx_http_canary_balancer(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                      *value;
    ngx_http_canary_balancer_t     *b;
    ngx_http_upstream_server_t     *server;
    ngx_http_upstream_srv_conf_t   *uscf, **uscfp;
    ngx_http_canary_main_conf_t    *cmcf;

    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);
    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_canary_module);

    if (uscf->peer.init_upstream) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "load balancing method redefined");
    }

    b = ngx_pcalloc(cf->pool, sizeof(ngx_http_canary_balancer_t));
    if (b == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    b->split = ngx_http_canary_use_split(cf, &value[1]);
    if (b->split == NULL) {
        return NGX_CONF_ERROR;
    }

    uscf->peer.init_upstream = ngx_http_canary_balancer_init_upstream;
    uscf->peer.data = b;

    uscfp = ngx_array_push(&cmcf->balancers);
    if (uscfp == NULL) {
        return NGX_CONF_ERROR;
    }

    *uscfp = uscf;

    /*
     * nginx refuses an upstream block without a server; the groups have
     * the servers, so this one stands in and is never used
     */
    if (uscf->servers) {
        server = ngx_array_push(uscf->servers);
        if (server == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(server, sizeof(ngx_http_upstream_server_t));
        ngx_str_set(&server->name, "canary_balancer");
    }

    return NGX_CONF_OK;
}


/* called once every upstream{} has been read: both groups must exist */

static ngx_int_t
ngx_http_canary_balancer_init_upstream(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_uint_t                   v;
    ngx_array_t                 *path;
    ngx_http_canary_balancer_t  *b;

    b = us->peer.data;

    if (!b->split->defined) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "unknown canary_split \"%V\" in \"canary_balancer\" "
                      "of upstream \"%V\"", &b->split->name, &us->host);
        return NGX_ERROR;
    }

    for (v = 0; v < NGX_HTTP_CANARY_VARIANTS; v++) {
        b->group[v] = ngx_http_canary_find_upstream(cf,
                                                    &b->split->upstream[v]);

        if (b->group[v] == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "canary_balancer of upstream \"%V\": the %s "
                          "upstream \"%V\" of canary_split \"%V\" must be "
                          "an upstream block", &us->host,
                          v == NGX_HTTP_CANARY_STABLE ? "stable" : "canary",
                          &b->split->upstream[v], &b->split->name);
            return NGX_ERROR;
        }
    }

    path = ngx_array_create(cf->temp_pool, 4,
                            sizeof(ngx_http_upstream_srv_conf_t *));
    if (path == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_canary_balancer_walk(cf, us, path) != NGX_OK) {
        return NGX_ERROR;
    }

    us->peer.init = ngx_http_canary_balancer_init_peer;

    return NGX_OK;
}


/*
 * A group may be a canary_balancer upstream too, but no circle: a
 * request would be handed round it until the worker's stack ran out.
 * A depth-first walk from "us" over the groups that are canary_balancer
 * upstreams (whatever wraps them, as keepalive does); "path" holds the
 * upstreams on the way.  An upstream found to lead to no circle is not
 * walked again.
 */

static ngx_int_t
ngx_http_canary_balancer_walk(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us, ngx_array_t *path)
{
    u_char                         *p, *last;
    ngx_uint_t                      i, j, v;
    ngx_http_canary_balancer_t     *b;
    ngx_http_upstream_srv_conf_t  **up, **bal, *group;
    ngx_http_canary_main_conf_t    *cmcf;
    u_char                          circle[NGX_MAX_CONF_ERRSTR];

    b = us->peer.data;

    if (b->walked) {
        return NGX_OK;
    }

    up = path->elts;

    for (i = 0; i < path->nelts; i++) {
        if (up[i] != us) {
            continue;
        }

        if (i == path->nelts - 1) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "canary_balancer of upstream \"%V\" routes to "
                          "itself", &us->host);
            return NGX_ERROR;
        }

        p = circle;
        last = circle + sizeof(circle);

        for (j = i; j < path->nelts; j++) {
            p = ngx_slprintf(p, last, "\"%V\" -> ", &up[j]->host);
        }

        p = ngx_slprintf(p, last, "\"%V\"", &us->host);

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "canary_balancer upstreams route in a circle: %*s",
                      p - circle, circle);
        return NGX_ERROR;
    }

    up = ngx_array_push(path);
    if (up == NULL) {
        return NGX_ERROR;
    }

    *up = us;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_canary_module);
    bal = cmcf->balancers.elts;

    for (v = 0; v < NGX_HTTP_CANARY_VARIANTS; v++) {
        group = ngx_http_canary_find_upstream(cf, &b->split->upstream[v]);

        if (group == NULL) {
            continue;
        }

        for (j = 0; j < cmcf->balancers.nelts; j++) {
            if (bal[j] == group
                && ngx_http_canary_balancer_walk(cf, group, path) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    path->nelts--;
    b->walked = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_canary_balancer_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_http_canary_ctx_t          *ctx;
    ngx_http_canary_balancer_t     *b;
    ngx_http_upstream_srv_conf_t   *group;

    b = us->peer.data;

    ctx = ngx_http_canary_decide_split(r, b->split);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->balancer = 1;

    group = b->group[ctx->variant];

    /* the chosen group's own balancer takes the request from here */
    return group->peer.init(r, group);
}
