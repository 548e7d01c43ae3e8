
/*
 * ngx_http_canary_module: directives and configuration.
 *
 *     canary_zone   NAME SIZE;
 *     canary_redis  ADDRESS [db=N] [password_file=PATH] [prefix=STR] ...;
 *     canary_split  NAME { stable ...; canary ...; weight ...; ... }
 *     canary        SPLIT | off;
 *     canary_balancer SPLIT;                     (in an upstream block)
 *     canary_status;
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_canary_module.h"


static ngx_int_t ngx_http_canary_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_canary_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_canary_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_canary_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_canary_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);

static char *ngx_http_canary_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_canary_split_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_canary_split_line(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf);
static char *ngx_http_canary_split_override(ngx_conf_t *cf,
    ngx_http_canary_split_t *split);
static char *ngx_http_canary_split_pattern(ngx_conf_t *cf,
    ngx_http_canary_split_t *split, ngx_uint_t variant);
#if (NGX_PCRE2)
static void ngx_http_canary_pattern_free(void *data);
#endif
static char *ngx_http_canary_split_cookie(ngx_conf_t *cf,
    ngx_http_canary_split_t *split);
static char *ngx_http_canary_split_from(ngx_conf_t *cf,
    ngx_http_canary_split_t *split, ngx_uint_t first, ngx_array_t **from);
static char *ngx_http_canary_split_cohort_weight(ngx_conf_t *cf,
    ngx_http_canary_split_t *split);
static char *ngx_http_canary(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_canary_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_canary_init_process(ngx_cycle_t *cycle);
static void ngx_http_canary_exit_process(ngx_cycle_t *cycle);
static void ngx_http_canary_tick(ngx_event_t *ev);

static ngx_http_canary_split_t *ngx_http_canary_get_split(ngx_conf_t *cf,
    ngx_http_canary_main_conf_t *cmcf, ngx_str_t *name);
static ngx_int_t ngx_http_canary_parse_variant(ngx_str_t *value);
static ngx_int_t ngx_http_canary_check_upstream(ngx_conf_t *cf,
    ngx_http_canary_split_t *split, ngx_uint_t variant);


static ngx_command_t  ngx_http_canary_commands[] = {

    { ngx_string("canary_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_canary_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("canary_split"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_BLOCK|NGX_CONF_TAKE1,
      ngx_http_canary_split_block,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("canary"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_canary,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("canary_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_canary_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("canary_balancer"),
      NGX_HTTP_UPS_CONF|NGX_CONF_TAKE1,
      ngx_http_canary_balancer,
      0,
      0,
      NULL },

    { ngx_string("canary_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_canary_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_canary_module_ctx = {
    ngx_http_canary_preconfiguration,      /* preconfiguration */
    ngx_http_canary_postconfiguration,     /* postconfiguration */

    ngx_http_canary_create_main_conf,      /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_canary_create_loc_conf,       /* create location configuration */
    ngx_http_canary_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_canary_module = {
    NGX_MODULE_V1,
    &ngx_http_canary_module_ctx,           /* module context */
    ngx_http_canary_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_canary_init_module,           /* init module */
    ngx_http_canary_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_canary_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_canary_default_key =
    ngx_string("$http_x_tenant_id");


/* how often each worker takes window snapshots and checks the guards */
#define NGX_HTTP_CANARY_TICK  100


static ngx_int_t
ngx_http_canary_preconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_canary_add_variables(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_canary_shadow_add_variables(cf);
}


static void *
ngx_http_canary_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_canary_main_conf_t  *cmcf;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_canary_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     cmcf->shm_zone = NULL;
     *     cmcf->used_file = NULL;
     */

    if (ngx_array_init(&cmcf->splits, cf->pool, 4,
                       sizeof(ngx_http_canary_split_t *))
        != NGX_OK
        || ngx_array_init(&cmcf->balancers, cf->pool, 2,
                          sizeof(ngx_http_upstream_srv_conf_t *))
           != NGX_OK)
    {
        return NULL;
    }

    return cmcf;
}


static void *
ngx_http_canary_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_canary_loc_conf_t  *clcf;

    clcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_canary_loc_conf_t));
    if (clcf == NULL) {
        return NULL;
    }

    clcf->split = NGX_CONF_UNSET_PTR;
    clcf->off = NGX_CONF_UNSET;

    return clcf;
}


static char *
ngx_http_canary_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_canary_loc_conf_t  *prev = parent;
    ngx_http_canary_loc_conf_t  *conf = child;

    ngx_conf_merge_ptr_value(conf->split, prev->split, NULL);
    ngx_conf_merge_value(conf->off, prev->off, 0);

    return NGX_CONF_OK;
}


static char *
ngx_http_canary_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_canary_main_conf_t  *cmcf = conf;

    ssize_t     size;
    ngx_str_t  *value;

    value = cf->args->elts;

    if (cmcf->shm_zone) {
        return "is duplicate";
    }

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid canary_zone size \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "canary_zone \"%V\" is too small: \"%V\", "
                           "the minimum is %uzk",
                           &value[1], &value[2], 8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    cmcf->shm_zone = ngx_shared_memory_add(cf, &value[1], size,
                                           &ngx_http_canary_module);
    if (cmcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cmcf->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "canary_zone \"%V\" is already used",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    cmcf->shm_zone->init = ngx_http_canary_init_zone;
    cmcf->shm_zone->data = cmcf;

    return NGX_CONF_OK;
}


static ngx_http_canary_split_t *
ngx_http_canary_get_split(ngx_conf_t *cf, ngx_http_canary_main_conf_t *cmcf,
    ngx_str_t *name)
{
    ngx_http_canary_split_t  *split, **splitp;

    split = ngx_http_canary_find_split(cmcf, name);
    if (split) {
        return split;
    }

    split = ngx_pcalloc(cf->pool, sizeof(ngx_http_canary_split_t));
    if (split == NULL) {
        return NULL;
    }

    split->name = *name;

    if (ngx_array_init(&split->overrides, cf->pool, 2,
                       sizeof(ngx_http_canary_override_t))
        != NGX_OK
        || ngx_array_init(&split->cohorts, cf->pool, 2,
                          sizeof(ngx_http_canary_cohort_t))
           != NGX_OK
        || ngx_array_init(&split->patterns, cf->pool, 1,
                          sizeof(ngx_http_canary_pattern_t))
           != NGX_OK)
    {
        return NULL;
    }

    splitp = ngx_array_push(&cmcf->splits);
    if (splitp == NULL) {
        return NULL;
    }

    *splitp = split;

    return split;
}


static char *
ngx_http_canary_split_block(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_canary_main_conf_t  *cmcf = conf;

    char                              *rv;
    ngx_str_t                         *value;
    ngx_conf_t                         save;
    ngx_uint_t                         v;
    ngx_http_canary_split_t           *split;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len >= NGX_HTTP_CANARY_NAME_LEN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid canary_split name \"%V\": 1 to %d bytes",
                           &value[1], NGX_HTTP_CANARY_NAME_LEN - 1);
        return NGX_CONF_ERROR;
    }

    split = ngx_http_canary_get_split(cf, cmcf, &value[1]);
    if (split == NULL) {
        return NGX_CONF_ERROR;
    }

    if (split->defined) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate canary_split \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    split->defined = 1;

    save = *cf;
    cf->handler = ngx_http_canary_split_line;
    cf->handler_conf = (char *) split;

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    for (v = 0; v < NGX_HTTP_CANARY_VARIANTS; v++) {
        if (split->upstream[v].len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "canary_split \"%V\" has no \"%s\" upstream",
                               &split->name,
                               v == NGX_HTTP_CANARY_STABLE ? "stable"
                                                           : "canary");
            return NGX_CONF_ERROR;
        }
    }

    if (split->key == NULL) {
        split->key = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (split->key == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &ngx_http_canary_default_key;
        ccv.complex_value = split->key;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (split->cohorts.nelts && split->cohort == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "canary_split \"%V\" has \"cohort_weight\" "
                           "but no \"cohort\"", &split->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_canary_split_line(ngx_conf_t *cf, ngx_command_t *dummy, void *conf)
{
    ngx_http_canary_split_t *split = (ngx_http_canary_split_t *) conf;

    int32_t                            weight;
    ngx_str_t                         *value, *name;
    ngx_uint_t                         n;
    ngx_http_complex_value_t         **cvp;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;
    name = &value[0];
    n = cf->args->nelts;

#define ngx_http_canary_is(s)                                                \
    (name->len == sizeof(s) - 1 && ngx_strncmp(name->data, s, name->len) == 0)

    if (ngx_http_canary_is("override")) {
        return ngx_http_canary_split_override(cf, split);
    }

    if (ngx_http_canary_is("cookie")) {
        return ngx_http_canary_split_cookie(cf, split);
    }

    if (ngx_http_canary_is("cohort_weight")) {
        return ngx_http_canary_split_cohort_weight(cf, split);
    }

    if (ngx_http_canary_is("guard")) {
        return ngx_http_canary_guard_conf(cf, split);
    }

    if (ngx_http_canary_is("shadow")) {
        return ngx_http_canary_shadow_conf(cf, split);
    }

    if (ngx_http_canary_is("shadow_ignore")) {
        return ngx_http_canary_shadow_ignore_conf(cf, split);
    }

    if (n != 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of arguments in \"%V\" "
                           "of canary_split \"%V\"", name, &split->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_canary_is("stable") || ngx_http_canary_is("canary")) {
        n = ngx_http_canary_is("stable") ? NGX_HTTP_CANARY_STABLE
                                         : NGX_HTTP_CANARY_CANARY;

        if (split->upstream[n].len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" is duplicate in canary_split \"%V\"",
                               name, &split->name);
            return NGX_CONF_ERROR;
        }

        split->upstream[n] = value[1];
        return NGX_CONF_OK;
    }

    if ((ngx_http_canary_is("weight") && split->has_weight)
        || (ngx_http_canary_is("salt") && split->salt.data))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is duplicate in canary_split \"%V\"",
                           name, &split->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_canary_is("weight")) {
        weight = ngx_http_canary_parse_weight(value[1].data, value[1].len);

        if (weight < 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"weight\" \"%V\" in canary_split "
                               "\"%V\": a percent from 0 to 100 "
                               "with at most 2 decimals",
                               &value[1], &split->name);
            return NGX_CONF_ERROR;
        }

        split->weight = weight;
        split->has_weight = 1;
        return NGX_CONF_OK;
    }

    if (ngx_http_canary_is("salt")) {
        split->salt = value[1];
        return NGX_CONF_OK;
    }

    if (ngx_http_canary_is("key")) {
        cvp = &split->key;

    } else if (ngx_http_canary_is("cohort")) {
        cvp = &split->cohort;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown directive \"%V\" in canary_split \"%V\"",
                           name, &split->name);
        return NGX_CONF_ERROR;
    }

#undef ngx_http_canary_is

    if (*cvp) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is duplicate in canary_split \"%V\"",
                           name, &split->name);
        return NGX_CONF_ERROR;
    }

    *cvp = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (*cvp == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = *cvp;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * override HEADER VALUE canary|stable [from=CIDR ...];
 * override HEADER ~REGEX|~*REGEX canary|stable [from=CIDR ...];
 *
 * As nginx's map: a VALUE that starts with "~" is a regex ("~*": without
 * case); "\~a" is the exact value "~a".  Unlike map, only a "\" before a
 * "~" is dropped: exact values written before patterns keep their meaning.
 */

static char *
ngx_http_canary_split_override(ngx_conf_t *cf, ngx_http_canary_split_t *split)
{
    ngx_int_t                    variant;
    ngx_str_t                   *value;
    ngx_http_canary_override_t  *ov;

    value = cf->args->elts;

    if (cf->args->nelts < 4) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"override\" in canary_split \"%V\" needs a "
                           "header, a value and canary or stable",
                           &split->name);
        return NGX_CONF_ERROR;
    }

    variant = ngx_http_canary_parse_variant(&value[3]);

    if (variant == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"override\" variant \"%V\" in "
                           "canary_split \"%V\": use canary or stable",
                           &value[3], &split->name);
        return NGX_CONF_ERROR;
    }

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty \"override\" header in canary_split \"%V\"",
                           &split->name);
        return NGX_CONF_ERROR;
    }

    if (value[2].len && value[2].data[0] == '~') {
        return ngx_http_canary_split_pattern(cf, split, variant);
    }

    /* "\~a" is the exact "~a"; any other "\" is kept, as before */
    if (value[2].len > 1 && value[2].data[0] == '\\'
        && value[2].data[1] == '~')
    {
        value[2].len--;
        value[2].data++;
    }

    ov = ngx_array_push(&split->overrides);
    if (ov == NULL) {
        return NGX_CONF_ERROR;
    }

    /* compared with the lowercased names nginx keeps for every header */
    ov->name.len = value[1].len;
    ov->name.data = ngx_pnalloc(cf->pool, value[1].len);
    if (ov->name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_strlow(ov->name.data, value[1].data, value[1].len);

    split->override_lens |= (uint64_t) 1 << (value[1].len % 64);

    ov->value = value[2];
    ov->variant = variant;
    ov->from = NULL;

    return ngx_http_canary_split_from(cf, split, 4, &ov->from);
}


/*
 * The ~REGEX form of "override", compiled here, once: a regex that PCRE
 * refuses fails "nginx -t" with PCRE's message.
 */

static char *
ngx_http_canary_split_pattern(ngx_conf_t *cf, ngx_http_canary_split_t *split,
    ngx_uint_t variant)
{
    u_char                      errstr[NGX_MAX_CONF_ERRSTR];
    ngx_str_t                  *value;
    ngx_regex_compile_t         rc;
    ngx_http_canary_pattern_t  *pt;
#if (NGX_PCRE2)
    int                         errcode;
    PCRE2_SIZE                  erroff;
    ngx_pool_cleanup_t         *cln;
#endif

    value = cf->args->elts;

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern.data = value[2].data + 1;
    rc.pattern.len = value[2].len - 1;

    if (rc.pattern.len && rc.pattern.data[0] == '*') {
        rc.pattern.data++;
        rc.pattern.len--;
        rc.options = NGX_REGEX_CASELESS;
    }

    /* "~" alone would match every value: say "~^" for that */
    if (rc.pattern.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty \"override\" regex \"%V\" for header "
                           "\"%V\" in canary_split \"%V\" (\"~^\" matches "
                           "any value)", &value[2], &value[1], &split->name);
        return NGX_CONF_ERROR;
    }

    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"override\" regex \"%V\" for header "
                           "\"%V\" in canary_split \"%V\": %V",
                           &value[2], &value[1], &split->name, &rc.err);
        return NGX_CONF_ERROR;
    }

    pt = ngx_array_push(&split->patterns);
    if (pt == NULL) {
        return NGX_CONF_ERROR;
    }

    pt->name.len = value[1].len;
    pt->name.data = ngx_pnalloc(cf->pool, value[1].len);
    if (pt->name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_strlow(pt->name.data, value[1].data, value[1].len);

    pt->value = value[2];
    pt->regex = rc.regex;

#if (NGX_PCRE2)
    /* the copy that is matched, its cost bounded: see the header */
    pt->code = pcre2_compile(rc.pattern.data, rc.pattern.len,
                             PCRE2_AUTO_CALLOUT
                             | ((rc.options & NGX_REGEX_CASELESS)
                                ? PCRE2_CASELESS : 0),
                             &errcode, &erroff, NULL);
    if (pt->code == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"override\" regex \"%V\" for header "
                           "\"%V\" in canary_split \"%V\": pcre2_compile() "
                           "failed: error %d", &value[2], &value[1],
                           &split->name, errcode);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        pcre2_code_free(pt->code);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_canary_pattern_free;
    cln->data = pt->code;
#endif
    pt->variant = variant;
    pt->from = NULL;

    return ngx_http_canary_split_from(cf, split, 4, &pt->from);
}


#if (NGX_PCRE2)

static void
ngx_http_canary_pattern_free(void *data)
{
    pcre2_code_free(data);
}

#endif


/* cookie NAME [from=CIDR ...]; */

static char *
ngx_http_canary_split_cookie(ngx_conf_t *cf, ngx_http_canary_split_t *split)
{
    ngx_str_t  *value;

    value = cf->args->elts;

    if (split->cookie.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cookie\" is duplicate in canary_split \"%V\"",
                           &split->name);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts < 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of arguments in \"cookie\" "
                           "of canary_split \"%V\"", &split->name);
        return NGX_CONF_ERROR;
    }

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty \"cookie\" name in canary_split "
                           "\"%V\"", &split->name);
        return NGX_CONF_ERROR;
    }

    split->cookie = value[1];

    return ngx_http_canary_split_from(cf, split, 2, &split->cookie_from);
}


/*
 * The from=CIDR parameters of "override" or "cookie", from value[first]
 * on: the client addresses that the header or the cookie is trusted
 * from.  None: from anywhere.
 */

static char *
ngx_http_canary_split_from(ngx_conf_t *cf, ngx_http_canary_split_t *split,
    ngx_uint_t first, ngx_array_t **from)
{
    ngx_int_t    rc;
    ngx_str_t   *value, addr;
    ngx_uint_t   i;
    ngx_cidr_t  *cidr;

    value = cf->args->elts;

    for (i = first; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "from=", 5) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\" parameter \"%V\" in "
                               "canary_split \"%V\"", &value[0], &value[i],
                               &split->name);
            return NGX_CONF_ERROR;
        }

        if (*from == NULL) {
            *from = ngx_array_create(cf->pool, 2, sizeof(ngx_cidr_t));
            if (*from == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        cidr = ngx_array_push(*from);
        if (cidr == NULL) {
            return NGX_CONF_ERROR;
        }

        addr.data = value[i].data + 5;
        addr.len = value[i].len - 5;

        rc = ngx_ptocidr(&addr, cidr);

        if (rc == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\" address \"%V\" in "
                               "canary_split \"%V\"", &value[0], &value[i],
                               &split->name);
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DONE) {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "low address bits of %V are meaningless",
                               &addr);
        }
    }

    return NGX_CONF_OK;
}


/* cohort_weight NAME PERCENT; */

static char *
ngx_http_canary_split_cohort_weight(ngx_conf_t *cf,
    ngx_http_canary_split_t *split)
{
    int32_t                    weight;
    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_http_canary_cohort_t  *cohort;

    value = cf->args->elts;

    if (cf->args->nelts != 3) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cohort_weight\" in canary_split \"%V\" needs "
                           "a cohort name and a percent", &split->name);
        return NGX_CONF_ERROR;
    }

    /*
     * printable ASCII without spaces, as the sidecar's plan and canary-ctl
     * name a cohort: a Prometheus label value must be UTF-8 (one byte
     * that is not broke the whole scrape), and JSON showed UTF-8 as bytes
     */
    for (i = 0; i < value[1].len; i++) {
        if (value[1].data[i] <= 0x20 || value[1].data[i] >= 0x7f) {
            break;
        }
    }

    if (value[1].len == 0 || value[1].len >= NGX_HTTP_CANARY_NAME_LEN
        || i < value[1].len)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"cohort_weight\" cohort \"%V\" in "
                           "canary_split \"%V\": 1 to %d bytes, printable "
                           "ASCII without spaces",
                           &value[1], &split->name,
                           NGX_HTTP_CANARY_NAME_LEN - 1);
        return NGX_CONF_ERROR;
    }

    weight = ngx_http_canary_parse_weight(value[2].data, value[2].len);

    if (weight < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"cohort_weight\" \"%V\" for cohort "
                           "\"%V\" in canary_split \"%V\": a percent from "
                           "0 to 100 with at most 2 decimals",
                           &value[2], &value[1], &split->name);
        return NGX_CONF_ERROR;
    }

    cohort = split->cohorts.elts;

    for (i = 0; i < split->cohorts.nelts; i++) {
        if (cohort[i].name.len == value[1].len
            && ngx_strncmp(cohort[i].name.data, value[1].data,
                           value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate \"cohort_weight\" cohort \"%V\" "
                               "in canary_split \"%V\"",
                               &value[1], &split->name);
            return NGX_CONF_ERROR;
        }
    }

    if (split->cohorts.nelts == NGX_HTTP_CANARY_COHORTS_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many \"cohort_weight\" in canary_split "
                           "\"%V\": at most %d",
                           &split->name, NGX_HTTP_CANARY_COHORTS_MAX);
        return NGX_CONF_ERROR;
    }

    cohort = ngx_array_push(&split->cohorts);
    if (cohort == NULL) {
        return NGX_CONF_ERROR;
    }

    cohort->name = value[1];
    cohort->weight = weight;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_canary_parse_variant(ngx_str_t *value)
{
    if (value->len == 6 && ngx_strncmp(value->data, "canary", 6) == 0) {
        return NGX_HTTP_CANARY_CANARY;
    }

    if (value->len == 6 && ngx_strncmp(value->data, "stable", 6) == 0) {
        return NGX_HTTP_CANARY_STABLE;
    }

    return NGX_ERROR;
}


static char *
ngx_http_canary(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_canary_loc_conf_t *clcf = conf;

    ngx_str_t                    *value;
    ngx_http_canary_main_conf_t  *cmcf;

    if (clcf->split != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        clcf->split = NULL;
        clcf->off = 1;
        return NGX_CONF_OK;
    }

    clcf->off = 0;
    clcf->split = ngx_http_canary_use_split(cf, &value[1]);

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_canary_module);
    cmcf->preaccess = 1;

    return clcf->split ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/*
 * A directive that names a split ("canary", "canary_balancer"): the split
 * may be defined further down; postconfiguration checks it was, and
 * points at the first use if not.
 */

ngx_http_canary_split_t *
ngx_http_canary_find_split(ngx_http_canary_main_conf_t *cmcf,
    ngx_str_t *name)
{
    ngx_uint_t                 i;
    ngx_http_canary_split_t  **splitp;

    splitp = cmcf->splits.elts;

    for (i = 0; i < cmcf->splits.nelts; i++) {
        if (splitp[i]->name.len == name->len
            && ngx_strncmp(splitp[i]->name.data, name->data, name->len) == 0)
        {
            return splitp[i];
        }
    }

    return NULL;
}


ngx_http_canary_split_t *
ngx_http_canary_use_split(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_http_canary_split_t      *split;
    ngx_http_canary_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_canary_module);

    split = ngx_http_canary_get_split(cf, cmcf, name);
    if (split == NULL) {
        return NULL;
    }

    if (!split->defined && split->used_file == NULL) {
        split->used_file = cf->conf_file->file.name.data;
        split->used_line = cf->conf_file->line;
    }

    if (cmcf->used_file == NULL) {
        cmcf->used_file = cf->conf_file->file.name.data;
        cmcf->used_line = cf->conf_file->line;
    }

    return split;
}


static ngx_int_t
ngx_http_canary_postconfiguration(ngx_conf_t *cf)
{
    size_t                        needed;
    ngx_uint_t                    i, v;
    ngx_http_canary_split_t     **splitp;
    ngx_http_canary_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_canary_module);

    splitp = cmcf->splits.elts;

    for (i = 0; i < cmcf->splits.nelts; i++) {

        if (!splitp[i]->defined) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown canary_split \"%V\" in \"canary\" "
                          "directive in %s:%ui", &splitp[i]->name,
                          splitp[i]->used_file, splitp[i]->used_line);
            return NGX_ERROR;
        }

        for (v = 0; v < NGX_HTTP_CANARY_VARIANTS; v++) {
            if (ngx_http_canary_check_upstream(cf, splitp[i], v) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    if (cmcf->splits.nelts == 0) {
        return NGX_OK;
    }

    if (cmcf->shm_zone == NULL) {
        if (cmcf->used_file) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"canary\" directive in %s:%ui requires "
                          "\"canary_zone\" in the http block",
                          cmcf->used_file, cmcf->used_line);

        } else {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "canary_split \"%V\" requires \"canary_zone\" "
                          "in the http block", &splitp[0]->name);
        }

        return NGX_ERROR;
    }

    needed = ngx_http_canary_zone_size_needed(cmcf->splits.nelts);

    if (cmcf->shm_zone->shm.size < needed) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "canary_zone \"%V\" is too small: %uzk for %ui "
                      "split%s, at least %uzk needed",
                      &cmcf->shm_zone->shm.name,
                      cmcf->shm_zone->shm.size / 1024,
                      cmcf->splits.nelts,
                      cmcf->splits.nelts == 1 ? "" : "s",
                      (needed + 1023) / 1024);
        return NGX_ERROR;
    }

    if (ngx_test_config && !ngx_quiet_mode) {
        /* nginx -t says the size needed, beside "syntax is ok" */
        ngx_log_stderr(0, "canary_zone \"%V\": %uzk, %ui split%s need%s "
                       "%uzk", &cmcf->shm_zone->shm.name,
                       cmcf->shm_zone->shm.size / 1024, cmcf->splits.nelts,
                       cmcf->splits.nelts == 1 ? "" : "s",
                       cmcf->splits.nelts == 1 ? "s" : "",
                       (needed + 1023) / 1024);
    }

    if (ngx_http_canary_init_route(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_canary_init_metrics(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_canary_shadow_init(cf, cmcf);
}


/*
 * An upstream named by "stable" or "canary" must be an upstream{} block,
 * or an IP address and port that proxy_pass can use as is (a host name
 * would need a resolver on every request).
 */

static ngx_int_t
ngx_http_canary_check_upstream(ngx_conf_t *cf, ngx_http_canary_split_t *split,
    ngx_uint_t variant)
{
    ngx_url_t   u;
    ngx_str_t  *name;

    name = &split->upstream[variant];

    if (ngx_strlchr(name->data, name->data + name->len, ':') != NULL) {
        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url = *name;
        u.no_resolve = 1;

        if (ngx_parse_url(cf->pool, &u) == NGX_OK && u.naddrs > 0
            && !u.no_port)
        {
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "canary_split \"%V\": invalid \"%s\" upstream "
                      "\"%V\": an upstream block name, or an IP address "
                      "and port", &split->name,
                      variant == NGX_HTTP_CANARY_STABLE ? "stable" : "canary",
                      name);
        return NGX_ERROR;
    }

    if (ngx_http_canary_find_upstream(cf, name) != NULL) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                  "canary_split \"%V\": \"%s\" upstream \"%V\" is not "
                  "defined by an upstream block",
                  &split->name,
                  variant == NGX_HTTP_CANARY_STABLE ? "stable" : "canary",
                  name);

    return NGX_ERROR;
}


/*
 * The upstream{} block of that name (case-insensitive, as nginx matches
 * proxy_pass names), not one that a proxy_pass made implicitly; NULL if
 * there is none.
 */

ngx_http_upstream_srv_conf_t *
ngx_http_canary_find_upstream(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                      i;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_upstream_main_conf_t  *umcf;

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if ((uscfp[i]->flags & NGX_HTTP_UPSTREAM_CREATE)
            && uscfp[i]->host.len == name->len
            && ngx_strncasecmp(uscfp[i]->host.data, name->data, name->len)
               == 0)
        {
            return uscfp[i];
        }
    }

    return NULL;
}


/* the new configuration is committed: its values go into the zone */

static ngx_int_t
ngx_http_canary_init_module(ngx_cycle_t *cycle)
{
    ngx_http_canary_main_conf_t  *cmcf;

    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return NGX_OK;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_canary_module);

    if (cmcf == NULL) {
        return NGX_OK;
    }

    ngx_http_canary_init_key_headers(cycle, cmcf);

    if (cmcf->shm_zone && cmcf->sh) {
        ngx_http_canary_zone_commit(cmcf, cycle->log);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_canary_init_process(ngx_cycle_t *cycle)
{
    ngx_event_t                  *ev;
    ngx_http_canary_main_conf_t  *cmcf;

    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return NGX_OK;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_canary_module);

    if (cmcf == NULL || cmcf->shm_zone == NULL || cmcf->sh == NULL) {
        return NGX_OK;
    }

    /* every child, before any request: the master frees slots by it */
    ngx_http_canary_zone_register(cmcf);

    if ((ngx_process != NGX_PROCESS_WORKER
         && ngx_process != NGX_PROCESS_SINGLE)
        || cmcf->splits.nelts == 0)
    {
        return NGX_OK;
    }

    ev = ngx_pcalloc(cycle->pool, sizeof(ngx_event_t));
    if (ev == NULL) {
        return NGX_ERROR;
    }

    ev->handler = ngx_http_canary_tick;
    ev->data = cmcf;
    ev->log = cycle->log;
    ev->cancelable = 1;

    ngx_add_timer(ev, NGX_HTTP_CANARY_TICK);

    return ngx_http_canary_redis_init_process(cycle, cmcf);
}


static void
ngx_http_canary_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_canary_redis_exit_process();
}


/*
 * Every worker: window snapshots (the first worker a second takes them)
 * and the guards; the syncing worker also writes guard trips to Redis.
 */

static void
ngx_http_canary_tick(ngx_event_t *ev)
{
    ngx_http_canary_main_conf_t  *cmcf = ev->data;

    ngx_http_canary_snapshot(cmcf);

    /* a worker shutting down after a reload judges by old limits */
    if (!ngx_exiting) {
        ngx_http_canary_guard_check(cmcf);
    }

    ngx_http_canary_redis_tick();

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(ev, NGX_HTTP_CANARY_TICK);
    }
}
