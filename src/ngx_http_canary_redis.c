
/*
 * Redis, on nginx's event loop.  One worker (ngx_worker == 0) keeps two
 * hiredis async connections: a subscriber to every split's channel and
 * a command connection that re-reads a split's hash and pin sets on each
 * message and on every poll interval.  Requests never wait on any of it:
 * they read the zone.
 *
 *     canary_redis ADDRESS [db=N] [password_file=PATH] [prefix=STR]
 *                  [interval=TIME] [timeout=TIME];
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/ioctl.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_canary_module.h"


#define NGX_HTTP_CANARY_BACKOFF_MIN    100
#define NGX_HTTP_CANARY_BACKOFF_MAX    3000

/* read events handled in a row on one connection before yielding */
#define NGX_HTTP_CANARY_DRAIN_MAX      32

/* "run_id:" of INFO server: 40 hex digits, new on every start */
#define NGX_HTTP_CANARY_RUN_ID_LEN     40

/* distinct Redis errors remembered until the connection is back */
#define NGX_HTTP_CANARY_ERRORS         32

/* lines one outage may log: a hostile server cannot flood the log */
#define NGX_HTTP_CANARY_ERRORS_LOGGED  32

/* a guard trip that Redis refused is written again after this, doubling */
#define NGX_HTTP_CANARY_REPORT_MIN     100
#define NGX_HTTP_CANARY_REPORT_MAX     5000


typedef struct ngx_http_canary_redis_s  ngx_http_canary_redis_t;


/* writing a split's guard trip to Redis */
typedef struct {
    ngx_msec_t                    backoff;      /* 0: not refused */
    ngx_msec_t                    refused;      /* when, last */
    unsigned                      in_flight:1;
} ngx_http_canary_redis_write_t;


typedef struct {
    ngx_http_canary_redis_t      *rd;
    redisAsyncContext            *ac;
    ngx_connection_t             *c;
    ngx_event_t                   timeout;      /* connect and replies */
    ngx_uint_t                    pending;      /* replies awaited */
    const char                   *role;
    unsigned                      subscriber:1;
    unsigned                      ready:1;
    unsigned                      synced:1;     /* a read was answered */
    unsigned                      failed:1;     /* setup refused: closing */
} ngx_http_canary_redis_conn_t;


struct ngx_http_canary_redis_s {
    ngx_http_canary_main_conf_t  *cmcf;
    ngx_http_canary_redis_conf_t *conf;
    ngx_http_canary_sync_t       *sync;
    ngx_http_canary_fleet_t      *fleet;
    ngx_log_t                    *log;

    ngx_http_canary_redis_conn_t  cmd;
    ngx_http_canary_redis_conn_t  sub;

    ngx_event_t                   poll;
    ngx_event_t                   reconnect;

    /* the subscriber is probed every interval: silence is a dead link */
    ngx_event_t                   probe;
    ngx_msec_t                    heard;        /* its last answer */
    ngx_msec_t                    backoff;

    /* per split: a read is in flight; another is wanted after it */
    u_char                       *in_flight;
    u_char                       *again;
    ngx_http_canary_redis_write_t *writes;      /* guard trips */
    unsigned                      reporting:1;  /* the fleet's record */

    /* the Redis instance read last: another one resets generations */
    u_char                        run_id[NGX_HTTP_CANARY_RUN_ID_LEN];
    unsigned                      run_id_known:1;
    unsigned                      no_run_id_logged:1;

    /* errors logged in this outage, and what the status page says */
    uint32_t                      errors[NGX_HTTP_CANARY_ERRORS];
    ngx_uint_t                    next_error;
    ngx_uint_t                    logged;       /* lines in this outage */
    unsigned                      connected:1;
    unsigned                      failed:1;     /* since last connected */
    unsigned                      status:1;     /* connected written */

    unsigned                      exiting:1;

    /* what the log names: the address, or the master's */
    ngx_str_t                     address;

    /* sentinel=: the master they gave last; ask: ask them again */
    ngx_http_canary_sentinels_t  *sentinels;
    u_char                        master[NGX_HTTP_CANARY_ADDRESS_LEN];
    u_char                        master_host[NGX_SOCKADDR_STRLEN + 1];
    ngx_int_t                     master_port;  /* 0: none yet */
    unsigned                      ask:1;
};


static void ngx_http_canary_redis_connect(ngx_http_canary_redis_t *rd,
    ngx_http_canary_redis_conn_t *conn);
static void ngx_http_canary_redis_master(void *data, u_char *host,
    ngx_int_t port, u_char *via, size_t len);
static ngx_uint_t ngx_http_canary_redis_moved(ngx_http_canary_redis_t *rd,
    redisReply *reply);
static ngx_int_t ngx_http_canary_redis_attach(
    ngx_http_canary_redis_conn_t *conn, redisAsyncContext *ac);
static void ngx_http_canary_redis_cleanup(void *data);
static void ngx_http_canary_redis_read_handler(ngx_event_t *ev);
static void ngx_http_canary_redis_write_handler(ngx_event_t *ev);
static void ngx_http_canary_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_canary_redis_on_disconnect(const redisAsyncContext *ac,
    int status);
static const char *ngx_http_canary_redis_why(const redisAsyncContext *ac);
static void ngx_http_canary_redis_on_setup(redisAsyncContext *ac, void *r,
    void *data);
static void ngx_http_canary_redis_on_info(redisAsyncContext *ac, void *r,
    void *data);
static void ngx_http_canary_redis_on_message(redisAsyncContext *ac, void *r,
    void *data);
static void ngx_http_canary_redis_on_sync(redisAsyncContext *ac, void *r,
    void *data);
static void ngx_http_canary_redis_sent(ngx_http_canary_redis_conn_t *conn);
static void ngx_http_canary_redis_replied(
    ngx_http_canary_redis_conn_t *conn);
static void ngx_http_canary_redis_timeout(ngx_event_t *ev);
static void ngx_http_canary_redis_drop(ngx_http_canary_redis_conn_t *conn);
static void ngx_http_canary_redis_retry(ngx_http_canary_redis_t *rd);
static void ngx_http_canary_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_http_canary_redis_poll_handler(ngx_event_t *ev);
static void ngx_http_canary_redis_probe_handler(ngx_event_t *ev);
static void ngx_http_canary_redis_close(ngx_http_canary_redis_t *rd);
static void ngx_http_canary_redis_disconnect(ngx_http_canary_redis_t *rd);
static void ngx_http_canary_redis_goodbye(void);
static void ngx_http_canary_redis_retire_handler(ngx_event_t *ev);
static void ngx_http_canary_redis_read_split(ngx_http_canary_redis_t *rd,
    ngx_uint_t index);
static void ngx_http_canary_redis_state(ngx_http_canary_redis_t *rd);
static void ngx_http_canary_redis_connected(ngx_http_canary_redis_t *rd,
    ngx_uint_t connected);
static void ngx_http_canary_redis_answered(ngx_http_canary_redis_t *rd);
static void ngx_http_canary_redis_error(ngx_http_canary_redis_t *rd,
    ngx_uint_t level, const char *fmt, ...);
static const char *ngx_http_canary_redis_guard_check(
    ngx_http_canary_guard_trip_t *trip);
static void ngx_http_canary_redis_report_guard(ngx_http_canary_redis_t *rd,
    ngx_uint_t index, ngx_http_canary_guard_trip_t *trip);
static u_char *ngx_http_canary_redis_uuid(u_char *p);
static void ngx_http_canary_redis_on_reported(redisAsyncContext *ac,
    void *r, void *data);
static void ngx_http_canary_redis_report_fleet(ngx_http_canary_redis_t *rd);
static void ngx_http_canary_redis_on_fleet(redisAsyncContext *ac, void *r,
    void *data);
static ngx_int_t ngx_http_canary_redis_sentinels(ngx_conf_t *cf,
    ngx_http_canary_redis_conf_t *rc, ngx_str_t *list);
static ngx_int_t ngx_http_canary_redis_read_password(ngx_conf_t *cf,
    ngx_str_t *path, ngx_str_t *password);


/* the one per worker process, if this worker syncs */
static ngx_http_canary_redis_t  *ngx_http_canary_redis_worker;

/* the same, kept until the process exits: its goodbye to the fleet */
static ngx_http_canary_redis_t  *ngx_http_canary_redis_leaving;


char *
ngx_http_canary_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_canary_main_conf_t *cmcf = conf;

    u_char                        *p;
    ngx_int_t                      n;
    ngx_str_t                     *value, s;
    ngx_url_t                      u;
    ngx_uint_t                     i;
    ngx_http_canary_redis_conf_t  *rc;

    if (cmcf->redis) {
        return "is duplicate";
    }

    rc = ngx_pcalloc(cf->pool, sizeof(ngx_http_canary_redis_conf_t));
    if (rc == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    ngx_str_set(&rc->prefix, "canary:");
    rc->interval = 1000;
    rc->timeout = 200;
    rc->node = cf->cycle->hostname;

    /* the address, unless sentinel= finds it */
    i = 1;

    if (ngx_strlchr(value[1].data, value[1].data + value[1].len, '=')
        == NULL)
    {
        rc->address = value[1];
        i = 2;
    }

    for ( /* void */ ; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (n == NGX_ERROR || n > 1000) {
                goto invalid;
            }

            rc->db = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password_file=", 14) == 0) {
            s.data = value[i].data + 14;
            s.len = value[i].len - 14;

            if (ngx_http_canary_redis_read_password(cf, &s, &rc->password)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            rc->prefix.data = value[i].data + 7;
            rc->prefix.len = value[i].len - 7;

            if (rc->prefix.len == 0
                || rc->prefix.len > NGX_HTTP_CANARY_PREFIX_LEN)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "node=", 5) == 0) {
            rc->node.data = value[i].data + 5;
            rc->node.len = value[i].len - 5;

            if (!ngx_http_canary_valid_node(rc->node.data, rc->node.len)) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "master=", 7) == 0) {
            rc->master.data = value[i].data + 7;
            rc->master.len = value[i].len - 7;

            if (!ngx_http_canary_valid_node(rc->master.data,
                                            rc->master.len))
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "sentinel=", 9) == 0) {
            if (rc->sentinels != NULL) {
                goto invalid;
            }

            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            if (ngx_http_canary_redis_sentinels(cf, rc, &s) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "interval=", 9) == 0
            || ngx_strncmp(value[i].data, "timeout=", 8) == 0)
        {
            p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');
            s.data = p + 1;
            s.len = value[i].data + value[i].len - s.data;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n < 10) {
                goto invalid;
            }

            if (value[i].data[0] == 'i') {
                rc->interval = n;

            } else {
                rc->timeout = n;
            }

            continue;
        }

        goto invalid;
    }

    if (!ngx_http_canary_valid_node(rc->node.data, rc->node.len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "canary_redis: the host name \"%V\" is not a "
                           "node name (letters, digits, \".\", \"_\", "
                           "\"-\", at most %d bytes): give node=NAME",
                           &rc->node, NGX_HTTP_CANARY_NODE_LEN - 1);
        return NGX_CONF_ERROR;
    }

    if (rc->sentinels != NULL || rc->master.len) {
        if (rc->sentinels == NULL || rc->master.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "canary_redis: \"sentinel=\" and "
                               "\"master=\" go together");
            return NGX_CONF_ERROR;
        }

        if (rc->address.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "canary_redis: \"%V\" and \"sentinel=\": "
                               "the sentinels give the address",
                               &rc->address);
            return NGX_CONF_ERROR;
        }

        /* what the log and the status page name until a master is known */
        rc->address = rc->master;

        cmcf->redis = rc;
        return NGX_CONF_OK;
    }

    if (rc->address.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "canary_redis: an ADDRESS, or sentinel= and "
                           "master=");
        return NGX_CONF_ERROR;
    }

    if (rc->address.len > 5
        && ngx_strncmp(rc->address.data, "unix:", 5) == 0)
    {
        rc->host = ngx_pnalloc(cf->pool, rc->address.len - 5 + 1);
        if (rc->host == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn(rc->host, rc->address.data + 5, rc->address.len - 5 + 1);

        cmcf->redis = rc;
        return NGX_CONF_OK;
    }

    /* hiredis resolves names with a blocking call: resolve them here */

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = rc->address;
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid canary_redis address \"%V\"%s%s",
                           &rc->address, u.err ? ": " : "",
                           u.err ? u.err : "");
        return NGX_CONF_ERROR;
    }

    rc->host = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (rc->host == NULL) {
        return NGX_CONF_ERROR;
    }

    n = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, rc->host,
                      NGX_SOCKADDR_STRLEN, 0);
    rc->host[n] = '\0';
    rc->port = u.port;

    cmcf->redis = rc;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid canary_redis parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


/* sentinel=HOST:PORT[,HOST:PORT...]: resolved here, like the address */

static ngx_int_t
ngx_http_canary_redis_sentinels(ngx_conf_t *cf,
    ngx_http_canary_redis_conf_t *rc, ngx_str_t *list)
{
    u_char                      *p, *last, *comma;
    size_t                       n;
    ngx_url_t                    u;
    ngx_http_canary_sentinel_t  *sn;

    rc->sentinels = ngx_array_create(cf->pool, 3,
                                     sizeof(ngx_http_canary_sentinel_t));
    if (rc->sentinels == NULL) {
        return NGX_ERROR;
    }

    p = list->data;
    last = list->data + list->len;

    for ( ;; ) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url.data = p;
        u.url.len = comma - p;
        u.default_port = 26379;

        if (u.url.len == 0
            || ngx_strncmp(u.url.data, "unix:", 5) == 0
            || ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid canary_redis sentinel \"%V\"%s%s",
                               &u.url, u.err ? ": " : "",
                               u.err ? u.err : "");
            return NGX_ERROR;
        }

        sn = ngx_array_push(rc->sentinels);
        if (sn == NULL) {
            return NGX_ERROR;
        }

        sn->address = u.url;

        sn->host = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        if (sn->host == NULL) {
            return NGX_ERROR;
        }

        n = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, sn->host,
                          NGX_SOCKADDR_STRLEN, 0);
        sn->host[n] = '\0';
        sn->port = u.port;

        if (comma == last) {
            return NGX_OK;
        }

        p = comma + 1;
    }
}


/* the password stays in memory only: never in nginx.conf or the log */

static ngx_int_t
ngx_http_canary_redis_read_password(ngx_conf_t *cf, ngx_str_t *path,
    ngx_str_t *password)
{
    u_char           *buf;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         name;
    ngx_file_info_t   fi;

    name = *path;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "canary_redis: cannot open password_file "
                           "\"%V\"", &name);
        return NGX_ERROR;
    }

    n = -1;
    buf = NULL;

    if (ngx_fd_info(fd, &fi) != NGX_FILE_ERROR
        && ngx_file_size(&fi) > 0 && ngx_file_size(&fi) <= 4096)
    {
        buf = ngx_pnalloc(cf->pool, ngx_file_size(&fi));
        if (buf) {
            n = ngx_read_fd(fd, buf, ngx_file_size(&fi));
        }
    }

    ngx_close_file(fd);

    while (n > 0 && (buf[n - 1] == LF || buf[n - 1] == CR
                     || buf[n - 1] == ' '))
    {
        n--;
    }

    if (n <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "canary_redis: password_file \"%V\" is empty, "
                           "unreadable or over 4k", &name);
        return NGX_ERROR;
    }

    password->data = buf;
    password->len = n;

    return NGX_OK;
}


ngx_int_t
ngx_http_canary_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_canary_main_conf_t *cmcf)
{
    ngx_http_canary_redis_t  *rd;

    if (cmcf->redis == NULL || ngx_worker != 0) {
        return NGX_OK;
    }

    rd = ngx_pcalloc(cycle->pool, sizeof(ngx_http_canary_redis_t));
    if (rd == NULL) {
        return NGX_ERROR;
    }

    rd->in_flight = ngx_pcalloc(cycle->pool, cmcf->splits.nelts);
    rd->again = ngx_pcalloc(cycle->pool, cmcf->splits.nelts);
    rd->writes = ngx_pcalloc(cycle->pool, cmcf->splits.nelts
                                  * sizeof(ngx_http_canary_redis_write_t));
    rd->sync = ngx_http_canary_sync_create(cycle, cmcf);
    rd->fleet = ngx_http_canary_fleet_create(cycle, cmcf);

    if (rd->in_flight == NULL || rd->again == NULL || rd->writes == NULL
        || rd->sync == NULL || rd->fleet == NULL)
    {
        return NGX_ERROR;
    }

    rd->cmcf = cmcf;
    rd->conf = cmcf->redis;
    rd->log = cycle->log;
    rd->backoff = NGX_HTTP_CANARY_BACKOFF_MIN;

    rd->cmd.rd = rd;
    rd->cmd.role = "command";
    rd->sub.rd = rd;
    rd->sub.role = "subscriber";
    rd->sub.subscriber = 1;

    rd->cmd.timeout.handler = ngx_http_canary_redis_timeout;
    rd->cmd.timeout.data = &rd->cmd;
    rd->cmd.timeout.log = rd->log;
    rd->cmd.timeout.cancelable = 1;

    rd->sub.timeout = rd->cmd.timeout;
    rd->sub.timeout.data = &rd->sub;

    rd->poll.handler = ngx_http_canary_redis_poll_handler;
    rd->poll.data = rd;
    rd->poll.log = rd->log;
    rd->poll.cancelable = 1;

    rd->reconnect.handler = ngx_http_canary_redis_reconnect_handler;
    rd->reconnect.data = rd;
    rd->reconnect.log = rd->log;
    rd->reconnect.cancelable = 1;

    rd->probe = rd->reconnect;
    rd->probe.handler = ngx_http_canary_redis_probe_handler;

    rd->address = rd->conf->address;

    if (rd->conf->sentinels) {
        rd->sentinels = ngx_http_canary_sentinels_create(cycle, rd->conf,
                                              ngx_http_canary_redis_master,
                                              rd);
        if (rd->sentinels == NULL) {
            return NGX_ERROR;
        }

        /* the status page names the master until they give its address */
        cmcf->sh->redis.address_len = 0;
    }

    ngx_http_canary_redis_worker = rd;
    ngx_http_canary_redis_leaving = rd;

    ngx_http_canary_redis_connected(rd, 0);

    ngx_http_canary_redis_connect(rd, &rd->cmd);
    ngx_http_canary_redis_connect(rd, &rd->sub);

    ngx_add_timer(&rd->poll, rd->conf->interval);

    return NGX_OK;
}


void
ngx_http_canary_redis_exit_process(void)
{
    ngx_http_canary_redis_t  *rd;

    rd = ngx_http_canary_redis_worker;

    if (rd) {
        ngx_http_canary_redis_disconnect(rd);
    }

    ngx_http_canary_redis_goodbye();
}


/* every connection closed, none again: the worker exits */

static void
ngx_http_canary_redis_disconnect(ngx_http_canary_redis_t *rd)
{
    /* callbacks run from redisAsyncFree() see this and do nothing */
    rd->exiting = 1;

    if (rd->cmd.ac) {
        redisAsyncFree(rd->cmd.ac);
    }

    if (rd->sub.ac) {
        redisAsyncFree(rd->sub.ac);
    }

    if (rd->sentinels) {
        ngx_http_canary_sentinels_close(rd->sentinels);
    }

    ngx_http_canary_redis_worker = NULL;
}


/*
 * The process exits on a stop: this nginx leaves the fleet now, rather
 * than fall silent and look cut from Redis for
 * NGX_HTTP_CANARY_NODE_SILENT_MAX.  A blocking round trip within the
 * timeout: no request is served any more.  An old worker after a reload
 * says nothing; and the script deletes only records this worker wrote
 * (pid and instance), should another have reported since.
 */

static void
ngx_http_canary_redis_goodbye(void)
{
    u_char              *host;
    ngx_int_t            port;
    ngx_uint_t           argc;
    redisReply          *reply;
    redisContext        *c;
    const char         **argv;
    const size_t        *argvlen;
    struct timeval       tv;
    ngx_http_canary_redis_t  *rd;

    rd = ngx_http_canary_redis_leaving;
    ngx_http_canary_redis_leaving = NULL;

    if (rd == NULL || rd->fleet == NULL) {
        return;
    }

    /*
     * A reload committed a newer configuration: this is an old worker,
     * and the new syncing worker reports this nginx.  A goodbye now
     * could remove the node until the new worker's first report (and
     * canary-ctl refuse the split meanwhile).
     */
    if (rd->cmcf->committed != rd->cmcf->sh->generation) {
        return;
    }

    host = rd->conf->host;
    port = rd->conf->port;

    if (rd->sentinels) {
        if (rd->master_port == 0) {
            return;
        }

        host = rd->master_host;
        port = rd->master_port;
    }

    argc = ngx_http_canary_fleet_goodbye(rd->fleet, &argv, &argvlen);
    if (argc == 0) {
        return;
    }

    tv.tv_sec = rd->conf->timeout / 1000;
    tv.tv_usec = (rd->conf->timeout % 1000) * 1000;

    c = port ? redisConnectWithTimeout((char *) host, port, tv)
             : redisConnectUnixWithTimeout((char *) host, tv);

    if (c == NULL || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        goto failed;
    }

    if (rd->conf->password.len) {
        reply = redisCommand(c, "AUTH %b", rd->conf->password.data,
                             rd->conf->password.len);

        if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
            freeReplyObject(reply);
            goto failed;
        }

        freeReplyObject(reply);
    }

    if (rd->conf->db) {
        reply = redisCommand(c, "SELECT %d", (int) rd->conf->db);

        if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
            freeReplyObject(reply);
            goto failed;
        }

        freeReplyObject(reply);
    }

    reply = redisCommandArgv(c, (int) argc, argv, argvlen);

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        freeReplyObject(reply);
        goto failed;
    }

    freeReplyObject(reply);
    redisFree(c);

    ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                  "canary_redis: node \"%V\" left the fleet",
                  &rd->conf->node);
    return;

failed:

    /* a timeout reads as EAGAIN: say which limit it was */
    ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                  "canary_redis: node \"%V\" could not leave the fleet "
                  "within timeout=%M (%s): its records expire",
                  &rd->conf->node, rd->conf->timeout,
                  c && c->err ? c->errstr : "refused");

    if (c) {
        redisFree(c);
    }
}


static void
ngx_http_canary_redis_connect(ngx_http_canary_redis_t *rd,
    ngx_http_canary_redis_conn_t *conn)
{
    u_char             *host;
    ngx_int_t           port;
    redisAsyncContext  *ac;

    if (conn->ac || rd->exiting) {
        return;
    }

    host = rd->conf->host;
    port = rd->conf->port;

    if (rd->sentinels) {
        if (rd->ask || rd->master_port == 0) {
            /* their answer connects: ngx_http_canary_redis_master() */
            ngx_http_canary_sentinels_ask(rd->sentinels);
            return;
        }

        host = rd->master_host;
        port = rd->master_port;
    }

    if (port == 0) {
        ac = redisAsyncConnectUnix((char *) host);

    } else {
        ac = redisAsyncConnect((char *) host, port);
    }

    if (ac == NULL) {
        ngx_http_canary_redis_error(rd, NGX_LOG_ERR,
                                   "canary_redis: out of memory");
        ngx_http_canary_redis_retry(rd);
        return;
    }

    if (ac->err) {
        ngx_http_canary_redis_error(rd, NGX_LOG_WARN,
                                   "canary_redis: cannot connect to %V: %s",
                                   &rd->address, ac->errstr);
        redisAsyncFree(ac);
        ngx_http_canary_redis_retry(rd);
        return;
    }

    if (ngx_http_canary_redis_attach(conn, ac) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_http_canary_redis_retry(rd);
        return;
    }

    redisAsyncSetConnectCallback(ac, ngx_http_canary_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_http_canary_redis_on_disconnect);

    ngx_add_timer(&conn->timeout, rd->conf->timeout);
}


/*
 * sentinel=: the sentinels' answer, or a +switch-master.  A new address
 * moves both connections at once, whatever the backoff, and is logged
 * once; the same address reconnects what is down.
 */

static void
ngx_http_canary_redis_master(void *data, u_char *host, ngx_int_t port,
    u_char *via, size_t len)
{
    ngx_http_canary_redis_t  *rd = data;

    u_char                       *p, buf[NGX_HTTP_CANARY_ADDRESS_LEN];
    ngx_http_canary_shm_redis_t  *sr;

    if (rd->exiting || ngx_exiting) {
        return;
    }

    if (host == NULL) {
        ngx_http_canary_redis_error(rd, NGX_LOG_WARN,
                                   "canary_redis: no sentinel gave the "
                                   "address of master \"%V\": %*s",
                                   &rd->conf->master, len, via);
        ngx_http_canary_redis_retry(rd);
        return;
    }

    rd->ask = 0;

    if (port != rd->master_port || ngx_strcmp(host, rd->master_host) != 0) {
        p = ngx_snprintf(buf, sizeof(buf),
                         ngx_strlchr(host, host + ngx_strlen(host), ':')
                         ? "[%s]:%i" : "%s:%i", host, port);

        if (rd->master_port == 0) {
            ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                          "canary_redis: master \"%V\" is at %*s (%*s)",
                          &rd->conf->master, p - buf, buf, len, via);

        } else {
            ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                          "canary_redis: master \"%V\" moved from %V to "
                          "%*s (%*s)", &rd->conf->master, &rd->address,
                          p - buf, buf, len, via);
        }

        ngx_cpystrn(rd->master_host, host, sizeof(rd->master_host));
        rd->master_port = port;
        ngx_memcpy(rd->master, buf, p - buf);
        rd->address.data = rd->master;
        rd->address.len = p - buf;

        sr = &rd->cmcf->sh->redis;
        ngx_http_canary_sync_text(sr->address, &sr->address_len,
                                  rd->address.data, rd->address.len);

        /* both leave the old master, whatever they were doing */
        ngx_http_canary_redis_drop(&rd->cmd);
        ngx_http_canary_redis_drop(&rd->sub);
        ngx_http_canary_redis_state(rd);

        if (rd->reconnect.timer_set) {
            ngx_del_timer(&rd->reconnect);
        }

        rd->backoff = NGX_HTTP_CANARY_BACKOFF_MIN;
    }

    ngx_http_canary_redis_connect(rd, &rd->cmd);
    ngx_http_canary_redis_connect(rd, &rd->sub);
}


/*
 * sentinel=: a master demoted to a replica answers a write READONLY, one
 * loading its data LOADING: both connections go, and the sentinels are
 * asked again.  From hiredis callbacks: disconnects, never frees.
 */

static ngx_uint_t
ngx_http_canary_redis_moved(ngx_http_canary_redis_t *rd, redisReply *reply)
{
    if (rd->sentinels == NULL || reply->type != REDIS_REPLY_ERROR
        || !((reply->len >= 8 && ngx_strncmp(reply->str, "READONLY", 8) == 0)
             || (reply->len >= 7
                 && ngx_strncmp(reply->str, "LOADING", 7) == 0)))
    {
        return 0;
    }

    rd->ask = 1;

    if (rd->cmd.ac && !rd->cmd.failed) {
        rd->cmd.failed = 1;
        redisAsyncDisconnect(rd->cmd.ac);
    }

    if (rd->sub.ac && !rd->sub.failed) {
        rd->sub.failed = 1;
        redisAsyncDisconnect(rd->sub.ac);
    }

    return 1;
}


/* hiredis' event hooks, mapped onto an nginx connection */

static ngx_int_t
ngx_http_canary_redis_attach(ngx_http_canary_redis_conn_t *conn,
    redisAsyncContext *ac)
{
    ngx_connection_t  *c;

    c = ngx_get_connection(ac->c.fd, conn->rd->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = conn;
    c->read->handler = ngx_http_canary_redis_read_handler;
    c->write->handler = ngx_http_canary_redis_write_handler;
    c->read->log = conn->rd->log;
    c->write->log = conn->rd->log;

    conn->c = c;
    conn->ac = ac;
    conn->pending = 0;
    conn->ready = 0;
    conn->synced = 0;
    conn->failed = 0;

    ac->data = conn;
    ac->ev.data = c;
    ac->ev.addRead = ngx_http_canary_redis_add_read;
    ac->ev.delRead = ngx_http_canary_redis_del_read;
    ac->ev.addWrite = ngx_http_canary_redis_add_write;
    ac->ev.delWrite = ngx_http_canary_redis_del_write;
    ac->ev.cleanup = ngx_http_canary_redis_cleanup;

    return NGX_OK;
}


/* level-triggered: hiredis reads once per call, the event fires again */

void
ngx_http_canary_redis_add_read(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->read->active) {
        (void) ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


void
ngx_http_canary_redis_del_read(void *data)
{
    ngx_connection_t  *c = data;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


void
ngx_http_canary_redis_add_write(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->write->active) {
        (void) ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


void
ngx_http_canary_redis_del_write(void *data)
{
    ngx_connection_t  *c = data;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis frees a context: before it closes the socket, drop our side */

static void
ngx_http_canary_redis_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    ngx_http_canary_redis_conn_t  *conn;

    conn = c->data;

    ngx_http_canary_redis_del_read(c);
    ngx_http_canary_redis_del_write(c);

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    if (conn->timeout.timer_set) {
        ngx_del_timer(&conn->timeout);
    }

    conn->c = NULL;
    conn->ac = NULL;
    conn->ready = 0;
    conn->synced = 0;
    conn->pending = 0;
}


static void
ngx_http_canary_redis_read_handler(ngx_event_t *ev)
{
    int                            avail;
    ngx_uint_t                     n;
    ngx_connection_t              *c;
    redisAsyncContext             *ac;
    ngx_http_canary_redis_conn_t  *conn;

    c = ev->data;
    conn = c->data;
    ac = conn->ac;

    /* drain what the socket holds; a callback may free the context */
    for (n = 0; n < NGX_HTTP_CANARY_DRAIN_MAX; n++) {
        redisAsyncHandleRead(ac);

        if (conn->ac != ac
            || ioctl(c->fd, FIONREAD, &avail) == -1 || avail <= 0)
        {
            break;
        }
    }
}


static void
ngx_http_canary_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t              *c;
    ngx_http_canary_redis_conn_t  *conn;

    c = ev->data;
    conn = c->data;

    redisAsyncHandleWrite(conn->ac);
}


static void
ngx_http_canary_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_uint_t                     i;
    ngx_http_canary_redis_t       *rd;
    ngx_http_canary_split_t      **splitp;
    ngx_http_canary_redis_conn_t  *conn;

    conn = ac->data;
    rd = conn->rd;

    if (rd->exiting) {
        return;
    }

    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        rd->ask = 1;
        ngx_http_canary_redis_error(rd, NGX_LOG_WARN,
                                   "canary_redis: cannot connect to %V: %s",
                                   &rd->address, ac->errstr);
        ngx_http_canary_redis_retry(rd);
        return;
    }

    if (conn->timeout.timer_set) {
        ngx_del_timer(&conn->timeout);
    }

    /*
     * A TCP connection is not Redis answering (a hung server accepts
     * too): a connection is ready only once its setup has been answered,
     * PING on the command connection, SUBSCRIBE on the subscriber.
     */

    if (rd->conf->password.len) {
        redisAsyncCommand(conn->ac, ngx_http_canary_redis_on_setup,
                          (void *) "AUTH", "AUTH %b",
                          rd->conf->password.data, rd->conf->password.len);
        ngx_http_canary_redis_sent(conn);
    }

    if (conn->subscriber) {
        splitp = rd->cmcf->splits.elts;

        for (i = 0; i < rd->cmcf->splits.nelts; i++) {
            redisAsyncCommand(conn->ac, ngx_http_canary_redis_on_message,
                              NULL, "SUBSCRIBE %b%b",
                              rd->conf->prefix.data, rd->conf->prefix.len,
                              splitp[i]->name.data, splitp[i]->name.len);
        }

        /* one reply awaited: the first confirmation */
        ngx_http_canary_redis_sent(conn);
        return;
    }

    if (rd->conf->db) {
        redisAsyncCommand(conn->ac, ngx_http_canary_redis_on_setup,
                          (void *) "SELECT", "SELECT %d",
                          (int) rd->conf->db);
        ngx_http_canary_redis_sent(conn);
    }

    redisAsyncCommand(conn->ac, ngx_http_canary_redis_on_setup,
                      (void *) "PING", "PING");
    ngx_http_canary_redis_sent(conn);

    /* answered before the first reads, which PING's answer sends */
    redisAsyncCommand(conn->ac, ngx_http_canary_redis_on_info, NULL,
                      "INFO server");
    ngx_http_canary_redis_sent(conn);
}


static void
ngx_http_canary_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_canary_redis_t       *rd;
    ngx_http_canary_redis_conn_t  *conn;

    conn = ac->data;
    rd = conn->rd;

    if (rd->exiting) {
        return;
    }

    conn->ready = 0;
    conn->synced = 0;
    rd->ask = 1;

    /* a refused setup was logged already: its close is not news */
    if (!conn->failed) {
        ngx_http_canary_redis_error(rd, NGX_LOG_WARN,
                                   "canary_redis: lost the %s connection to "
                                   "%V: %s", conn->role, &rd->address,
                                   status == REDIS_OK
                                   ? "closed" : ngx_http_canary_redis_why(ac));
    }

    ngx_http_canary_redis_state(rd);
    ngx_http_canary_redis_retry(rd);
}


/*
 * hiredis names the byte a protocol error choked on: one class of error
 * for the log, or a server sending garbage gets a line per reconnect.
 */

static const char *
ngx_http_canary_redis_why(const redisAsyncContext *ac)
{
    if (ac->err == REDIS_ERR_PROTOCOL) {
        return "Protocol error: the server does not speak Redis";
    }

    return ac->errstr;
}


/*
 * AUTH, SELECT, PING: an error drops the connection; the answer to PING
 * makes the command connection ready to read, not yet "connected": that
 * waits for the answer to a read (a server may say +OK to anything).
 */

static void
ngx_http_canary_redis_on_setup(redisAsyncContext *ac, void *r, void *data)
{
    redisReply                    *reply = r;
    const char                    *command = data;
    ngx_uint_t                     i;
    ngx_http_canary_redis_t       *rd;
    ngx_http_canary_redis_conn_t  *conn;

    conn = ac->data;
    rd = conn->rd;

    if (reply == NULL || rd->exiting) {
        return;
    }

    ngx_http_canary_redis_replied(conn);

    if (conn->failed) {
        /* the replies to what was pipelined after a refused AUTH */
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        (void) ngx_http_canary_redis_moved(rd, reply);

        ngx_http_canary_redis_error(rd, NGX_LOG_ERR,
                                   "canary_redis: %s failed on %V: %*s",
                                   command, &rd->address,
                                   ngx_min(reply->len, 100), reply->str);

        conn->failed = 1;
        conn->ready = 0;
        conn->synced = 0;
        ngx_http_canary_redis_state(rd);
        redisAsyncDisconnect(ac);
        return;
    }

    if (command[0] != 'P' || conn->subscriber) {
        return;
    }

    conn->ready = 1;

    /* nothing to read: the answer to PING is all there is */
    if (rd->cmcf->splits.nelts == 0) {
        conn->synced = 1;
    }

    ngx_memzero(rd->in_flight, rd->cmcf->splits.nelts);
    ngx_memzero(rd->writes, rd->cmcf->splits.nelts
                            * sizeof(ngx_http_canary_redis_write_t));
    rd->reporting = 0;

    for (i = 0; i < rd->cmcf->splits.nelts; i++) {
        ngx_http_canary_redis_read_split(rd, i);
    }

    /* in the fleet at once: canary-ctl refuses a split nobody reports */
    ngx_http_canary_redis_report_fleet(rd);

    ngx_http_canary_redis_state(rd);
}


/*
 * Which Redis answers: a restart or a failover brings another run_id, and
 * the writers of an empty Redis start again from generation 1.  Without
 * a run_id (a proxy, an ACL without INFO) every connection may be a new
 * Redis.  Either way the first read of each split then applies whatever
 * its generation.
 */

static void
ngx_http_canary_redis_on_info(redisAsyncContext *ac, void *r, void *data)
{
    redisReply                    *reply = r;
    u_char                        *p, *last;
    ngx_uint_t                     i;
    ngx_http_canary_redis_t       *rd;
    ngx_http_canary_redis_conn_t  *conn;

    conn = ac->data;
    rd = conn->rd;

    if (reply == NULL || rd->exiting) {
        return;
    }

    ngx_http_canary_redis_replied(conn);

    if (conn->failed) {
        return;
    }

    p = NULL;

    if (reply->type == REDIS_REPLY_STRING) {
        last = (u_char *) reply->str + reply->len;
        p = ngx_strlcasestrn((u_char *) reply->str, last,
                             (u_char *) "\nrun_id:", 8 - 1);

        if (p && last - p >= 8 + NGX_HTTP_CANARY_RUN_ID_LEN) {
            p += 8;

            for (i = 0; i < NGX_HTTP_CANARY_RUN_ID_LEN; i++) {
                if (!((p[i] >= '0' && p[i] <= '9')
                      || ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f')))
                {
                    p = NULL;
                    break;
                }
            }

        } else {
            p = NULL;
        }
    }

    if (p == NULL) {
        if (!rd->no_run_id_logged) {
            ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                          "canary_redis: no run_id in the answer of %V to "
                          "INFO server: the first read after every "
                          "reconnect applies whatever its generation",
                          &rd->address);
            rd->no_run_id_logged = 1;
        }

        rd->run_id_known = 0;
        ngx_http_canary_sync_new_instance(rd->sync);
        return;
    }

    if (rd->run_id_known
        && ngx_memcmp(rd->run_id, p, NGX_HTTP_CANARY_RUN_ID_LEN) == 0)
    {
        /* the same Redis: an older generation is a stale write */
        return;
    }

    if (rd->run_id_known) {
        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                      "canary_redis: %V is another Redis instance "
                      "(restarted or failed over): the first read of each "
                      "split applies whatever its generation",
                      &rd->address);
    }

    ngx_memcpy(rd->run_id, p, NGX_HTTP_CANARY_RUN_ID_LEN);
    rd->run_id_known = 1;

    ngx_http_canary_sync_new_instance(rd->sync);
}


/* ["message", channel, payload]: the payload is not trusted, only a cue */

static void
ngx_http_canary_redis_on_message(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply                    *reply = r;
    size_t                         plen;
    ngx_uint_t                     i;
    redisReply                    *ch;
    ngx_http_canary_redis_t       *rd;
    ngx_http_canary_split_t      **splitp;
    ngx_http_canary_redis_conn_t  *conn;

    conn = ac->data;
    rd = conn->rd;

    if (reply == NULL || rd->exiting) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        if (!conn->failed) {
            ngx_http_canary_redis_error(rd, NGX_LOG_ERR,
                                       "canary_redis: SUBSCRIBE failed: %*s",
                                       ngx_min(reply->len, 100), reply->str);
            conn->failed = 1;
            redisAsyncDisconnect(ac);
        }

        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    rd->heard = ngx_current_msec;

    if (reply->element[0]->len == 9
        && ngx_strncmp(reply->element[0]->str, "subscribe", 9) == 0)
    {
        if (!conn->ready) {
            conn->ready = 1;
            ngx_http_canary_redis_replied(conn);
            ngx_http_canary_redis_answered(rd);
            ngx_http_canary_redis_state(rd);

            if (!rd->probe.timer_set) {
                ngx_add_timer(&rd->probe, rd->conf->interval);
            }
        }

        return;
    }

    if (reply->element[0]->len != 7
        || ngx_strncmp(reply->element[0]->str, "message", 7) != 0)
    {
        return;
    }

    ch = reply->element[1];
    plen = rd->conf->prefix.len;

    if (ch->len <= plen
        || ngx_strncmp(ch->str, rd->conf->prefix.data, plen) != 0)
    {
        return;
    }

    splitp = rd->cmcf->splits.elts;

    for (i = 0; i < rd->cmcf->splits.nelts; i++) {
        if (splitp[i]->name.len == ch->len - plen
            && ngx_strncmp(splitp[i]->name.data, ch->str + plen,
                           ch->len - plen) == 0)
        {
            ngx_http_canary_redis_read_split(rd, i);
            return;
        }
    }
}


/*
 * One script reads a split's hash and both pin sets as one snapshot.
 * The sets' sizes come first: over the limit together, only the sizes
 * are sent, not a million members on every poll.  An error stays the
 * reply of its own command.  KEYS: the hash, the canary and stable pins;
 * ARGV: the limit.
 */

static const char  ngx_http_canary_redis_read_script[] =
    "local r = {redis.pcall('HGETALL', KEYS[1]), "
    "redis.pcall('SCARD', KEYS[2]), redis.pcall('SCARD', KEYS[3])} "
    "if type(r[2]) == 'number' and type(r[3]) == 'number' "
    "and r[2] + r[3] <= tonumber(ARGV[1]) then "
    "r[2] = redis.pcall('SMEMBERS', KEYS[2]) "
    "r[3] = redis.pcall('SMEMBERS', KEYS[3]) end "
    "return r";


static void
ngx_http_canary_redis_read_split(ngx_http_canary_redis_t *rd,
    ngx_uint_t index)
{
    ngx_str_t                     *p, *n;
    redisAsyncContext             *ac;
    ngx_http_canary_split_t      **splitp;

    if (!rd->cmd.ready || ngx_exiting) {
        return;
    }

    if (rd->in_flight[index]) {
        rd->again[index] = 1;
        return;
    }

    splitp = rd->cmcf->splits.elts;
    p = &rd->conf->prefix;
    n = &splitp[index]->name;
    ac = rd->cmd.ac;

    rd->in_flight[index] = 1;
    rd->again[index] = 0;

    redisAsyncCommand(ac, ngx_http_canary_redis_on_sync,
                      (void *) (uintptr_t) index,
                      "EVAL %s 3 %b%b %b%b" NGX_HTTP_CANARY_KEY_PIN_CANARY
                      " %b%b" NGX_HTTP_CANARY_KEY_PIN_STABLE " %d",
                      ngx_http_canary_redis_read_script,
                      p->data, p->len, n->data, n->len,
                      p->data, p->len, n->data, n->len,
                      p->data, p->len, n->data, n->len,
                      (int) NGX_HTTP_CANARY_PINS_MAX);

    ngx_http_canary_redis_sent(&rd->cmd);
}


static void
ngx_http_canary_redis_on_sync(redisAsyncContext *ac, void *r, void *data)
{
    redisReply                    *reply = r;
    ngx_int_t                      rc;
    ngx_str_t                      error;
    ngx_uint_t                     index;
    ngx_http_canary_redis_t       *rd;
    ngx_http_canary_redis_conn_t  *conn;

    conn = ac->data;
    rd = conn->rd;
    index = (uintptr_t) data;

    if (rd->exiting) {
        return;
    }

    rd->in_flight[index] = 0;

    if (reply == NULL) {
        return;
    }

    ngx_http_canary_redis_replied(conn);

    /* shutting down: the new configuration's worker owns the zone */
    if (ngx_exiting) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        (void) ngx_http_canary_redis_moved(rd, reply);

        ngx_http_canary_redis_error(rd, NGX_LOG_ERR,
                                   "canary_redis: reading from %V: %*s",
                                   &rd->address,
                                   ngx_min(reply->len, 100), reply->str);
        goto again;
    }

    rc = ngx_http_canary_sync_apply(rd->sync, index, reply, &error);

    if (error.len) {
        ngx_http_canary_redis_error(rd, NGX_LOG_ERR, "%V", &error);
    }

    if (rc == NGX_OK) {
        rd->cmcf->sh->redis.last_sync = (ngx_atomic_uint_t) ngx_time();
    }

    if (rc != NGX_ERROR && !conn->synced) {
        /* Redis answered a read: now it is connected */
        conn->synced = 1;
        ngx_http_canary_redis_state(rd);
    }

again:

    if (rd->again[index]) {
        ngx_http_canary_redis_read_split(rd, index);
    }
}


/* every command awaits its reply no longer than "timeout" */

static void
ngx_http_canary_redis_sent(ngx_http_canary_redis_conn_t *conn)
{
    if (conn->pending++ == 0) {
        ngx_add_timer(&conn->timeout, conn->rd->conf->timeout);
    }
}


static void
ngx_http_canary_redis_replied(ngx_http_canary_redis_conn_t *conn)
{
    if (conn->pending == 0) {
        return;
    }

    if (--conn->pending == 0) {
        if (conn->timeout.timer_set) {
            ngx_del_timer(&conn->timeout);
        }

    } else {
        ngx_add_timer(&conn->timeout, conn->rd->conf->timeout);
    }
}


static void
ngx_http_canary_redis_timeout(ngx_event_t *ev)
{
    ngx_http_canary_redis_conn_t  *conn = ev->data;

    ngx_http_canary_redis_error(conn->rd, NGX_LOG_WARN,
                               "canary_redis: %V did not answer the %s "
                               "connection in %Mms",
                               &conn->rd->address, conn->role,
                               conn->rd->conf->timeout);

    conn->rd->ask = 1;
    ngx_http_canary_redis_drop(conn);
    ngx_http_canary_redis_state(conn->rd);
    ngx_http_canary_redis_retry(conn->rd);
}


/* outside hiredis callbacks only: frees the context at once */

static void
ngx_http_canary_redis_drop(ngx_http_canary_redis_conn_t *conn)
{
    ngx_http_canary_redis_t  *rd;

    rd = conn->rd;

    if (conn->ac == NULL) {
        return;
    }

    /* the callbacks of pending commands run with no reply: ignore them */
    rd->exiting = 1;
    redisAsyncFree(conn->ac);
    rd->exiting = 0;

    if (!conn->subscriber) {
        ngx_memzero(rd->in_flight, rd->cmcf->splits.nelts);
        ngx_memzero(rd->writes, rd->cmcf->splits.nelts
                                * sizeof(ngx_http_canary_redis_write_t));
        rd->reporting = 0;
    }
}


static void
ngx_http_canary_redis_retry(ngx_http_canary_redis_t *rd)
{
    if (rd->exiting || ngx_exiting || ngx_terminate || ngx_quit
        || rd->reconnect.timer_set)
    {
        return;
    }

    ngx_add_timer(&rd->reconnect, rd->backoff);

    rd->backoff = ngx_min(rd->backoff * 2, NGX_HTTP_CANARY_BACKOFF_MAX);
}


static void
ngx_http_canary_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_canary_redis_t  *rd = ev->data;

    if (ngx_exiting) {
        ngx_http_canary_redis_close(rd);
        return;
    }

    ngx_http_canary_redis_connect(rd, &rd->cmd);
    ngx_http_canary_redis_connect(rd, &rd->sub);
}


static void
ngx_http_canary_redis_poll_handler(ngx_event_t *ev)
{
    ngx_http_canary_redis_t  *rd = ev->data;

    ngx_uint_t  i;

    if (ngx_exiting) {
        ngx_http_canary_redis_close(rd);
        return;
    }

    for (i = 0; i < rd->cmcf->splits.nelts; i++) {
        ngx_http_canary_redis_read_split(rd, i);
    }

    ngx_http_canary_redis_report_fleet(rd);

    (void) ngx_http_canary_sync_retire(rd->sync);

    if (rd->cmd.ac == NULL || rd->sub.ac == NULL) {
        ngx_http_canary_redis_retry(rd);
    }

    if (!ngx_terminate && !ngx_quit) {
        ngx_add_timer(ev, rd->conf->interval);
    }
}


/*
 * A subscription can die silently (a middlebox drops the idle link, the
 * server forgets it): nothing comes, and weights change only on polls.
 * Every interval the subscriber subscribes again to the first channel, a
 * no-op whose answer comes through the channel's callback (hiredis keeps
 * no callback for a PING there); when nothing was heard for timeout plus
 * interval, the subscriber is dropped and reconnected, "connected" false
 * meanwhile.
 */

static void
ngx_http_canary_redis_probe_handler(ngx_event_t *ev)
{
    ngx_http_canary_redis_t  *rd = ev->data;

    ngx_str_t                 *pf, *n;
    ngx_http_canary_split_t  **splitp;

    if (ngx_exiting) {
        ngx_http_canary_redis_close(rd);
        return;
    }

    /* a new subscriber arms it again once its subscription is confirmed */
    if (rd->sub.ac == NULL || !rd->sub.ready) {
        return;
    }

    if (ngx_current_msec - rd->heard
        >= rd->conf->interval + rd->conf->timeout)
    {
        ngx_http_canary_redis_error(rd, NGX_LOG_WARN,
                                    "canary_redis: %V did not answer the "
                                    "subscriber connection in %Mms",
                                    &rd->address,
                                    ngx_current_msec - rd->heard);

        ngx_http_canary_redis_drop(&rd->sub);
        ngx_http_canary_redis_state(rd);
        ngx_http_canary_redis_retry(rd);
        return;
    }

    splitp = rd->cmcf->splits.elts;
    pf = &rd->conf->prefix;
    n = &splitp[0]->name;

    redisAsyncCommand(rd->sub.ac, ngx_http_canary_redis_on_message, NULL,
                      "SUBSCRIBE %b%b", pf->data, pf->len, n->data, n->len);

    ngx_add_timer(ev, rd->conf->interval);
}


/*
 * A worker shutting down (a reload, nginx -s quit) stops syncing: from a
 * timer, never inside a hiredis callback, it closes both connections, and
 * it writes nothing to the zone again.  The new configuration's worker 0
 * syncs, alone.  Pin tables this worker retired are freed before it
 * exits, once their readers are surely done (2 s at most).
 */

static void
ngx_http_canary_redis_close(ngx_http_canary_redis_t *rd)
{
    ngx_msec_t  left;

    ngx_http_canary_redis_disconnect(rd);

    if (rd->poll.timer_set) {
        ngx_del_timer(&rd->poll);
    }

    if (rd->reconnect.timer_set) {
        ngx_del_timer(&rd->reconnect);
    }

    if (rd->probe.timer_set) {
        ngx_del_timer(&rd->probe);
    }

    ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                  "canary_redis: shutting down, no longer syncing %V",
                  &rd->address);

    left = ngx_http_canary_sync_retire(rd->sync);

    if (left) {
        /* not cancelable: the worker waits for it */
        rd->poll.handler = ngx_http_canary_redis_retire_handler;
        rd->poll.cancelable = 0;
        ngx_add_timer(&rd->poll, left);
    }
}


static void
ngx_http_canary_redis_retire_handler(ngx_event_t *ev)
{
    ngx_http_canary_redis_t  *rd = ev->data;

    ngx_msec_t  left;

    left = ngx_http_canary_sync_retire(rd->sync);

    if (left) {
        ngx_add_timer(ev, left);
    }
}


/*
 * Connected means both connections are up and a read was answered; only
 * that resets the backoff, not a server that accepts and says +OK.
 */

static void
ngx_http_canary_redis_state(ngx_http_canary_redis_t *rd)
{
    ngx_uint_t  up;

    /* after a reload the new syncing worker owns the status */
    if (ngx_exiting) {
        return;
    }

    up = rd->cmd.ready && rd->cmd.synced && rd->sub.ready;

    if (up) {
        rd->backoff = NGX_HTTP_CANARY_BACKOFF_MIN;
    }

    ngx_http_canary_redis_connected(rd, up);
}


static void
ngx_http_canary_redis_connected(ngx_http_canary_redis_t *rd,
    ngx_uint_t connected)
{
    ngx_http_canary_shm_redis_t  *sr;

    sr = &rd->cmcf->sh->redis;

    /*
     * Only news is written: a worker being replaced by a reload, still
     * failing as before, must not undo what the new one wrote.
     */
    if (rd->status && (connected ? 1 : 0) == rd->connected) {
        return;
    }

    rd->status = 1;

    if (connected && !rd->connected && rd->failed) {
        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                      "canary_redis: connected to %V", &rd->address);

        /* the next failure is news again */
        ngx_memzero(rd->errors, sizeof(rd->errors));
        rd->next_error = 0;
        rd->logged = 0;
        rd->failed = 0;
    }

    rd->connected = connected ? 1 : 0;
    sr->connected = connected;
}


/*
 * One connection got a real answer (a subscription confirmed) while the
 * other still fails: what fails next is news.  The lines of the outage
 * stay counted, so a server that flaps this way cannot flood the log.
 */

static void
ngx_http_canary_redis_answered(ngx_http_canary_redis_t *rd)
{
    ngx_memzero(rd->errors, sizeof(rd->errors));
    rd->next_error = 0;
}


/*
 * One line per distinct error, not per retry, and a bounded number per
 * outage; the status page shows the last one.
 */

static void
ngx_http_canary_redis_error(ngx_http_canary_redis_t *rd, ngx_uint_t level,
    const char *fmt, ...)
{
    u_char                       *p, *q, buf[NGX_HTTP_CANARY_ERROR_LEN];
    va_list                       args;
    uint32_t                      h;
    ngx_uint_t                    i;
    ngx_http_canary_shm_redis_t  *sr;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    /*
     * Error replies carry any bytes the server sent: a NUL in the status
     * JSON makes the sidecar refuse the whole document.
     */
    for (q = buf; q < p; q++) {
        if (*q < 0x20 || *q >= 0x7f) {
            *q = '?';
        }
    }

    h = ngx_murmur_hash2(buf, p - buf) | 1;

    rd->failed = 1;

    for (i = 0; i < NGX_HTTP_CANARY_ERRORS; i++) {
        if (rd->errors[i] == h) {
            break;
        }
    }

    if (i == NGX_HTTP_CANARY_ERRORS) {
        rd->errors[rd->next_error++ % NGX_HTTP_CANARY_ERRORS] = h;

        if (rd->connected) {
            ngx_log_error(level, rd->log, 0, "%*s", p - buf, buf);

        } else if (rd->logged < NGX_HTTP_CANARY_ERRORS_LOGGED) {
            rd->logged++;
            ngx_log_error(level, rd->log, 0, "%*s", p - buf, buf);

        } else if (rd->logged++ == NGX_HTTP_CANARY_ERRORS_LOGGED) {
            ngx_log_error(level, rd->log, 0,
                          "canary_redis: more errors from %V are not "
                          "logged until it answers again",
                          &rd->address);
        }
    }

    /* after a reload the new syncing worker owns the status */
    if (ngx_exiting) {
        return;
    }

    sr = &rd->cmcf->sh->redis;

    ngx_http_canary_sync_text(sr->error, &sr->error_len, buf, p - buf);
    sr->error_time = (ngx_atomic_uint_t) ngx_time();
}


/*
 * On every tick of the syncing worker: write guard trips to Redis, or,
 * once the worker is shutting down, stop syncing.
 */

void
ngx_http_canary_redis_tick(void)
{
    ngx_uint_t                      i;
    ngx_http_canary_redis_t        *rd;
    ngx_http_canary_split_t       **splitp;
    ngx_http_canary_guard_trip_t    trip;
    ngx_http_canary_redis_write_t  *rp;

    rd = ngx_http_canary_redis_worker;

    if (rd == NULL) {
        return;
    }

    if (ngx_exiting) {
        ngx_http_canary_redis_close(rd);
        return;
    }

    if (!rd->cmd.ready) {
        return;
    }

    splitp = rd->cmcf->splits.elts;

    for (i = 0; i < rd->cmcf->splits.nelts; i++) {
        rp = &rd->writes[i];

        if (rp->in_flight
            || (rp->backoff && ngx_current_msec - rp->refused < rp->backoff))
        {
            continue;
        }

        if (ngx_http_canary_guard_to_write(splitp[i], &trip) == NGX_OK) {
            ngx_http_canary_redis_report_guard(rd, i, &trip);
        }
    }
}


/*
 * As every writer does (generation, weight 0, state, receipt, PUBLISH),
 * so every nginx and the sidecar follow; in one script that stops before
 * it writes anything when HINCRBY fails (a generation that is not an
 * integer), where MULTI/EXEC would run the rest and PUBLISH.  Redis does
 * not undo a script's writes when a later command fails, so what could
 * fail after HINCRBY is checked first: the receipts key must be a stream
 * (or not exist).  An ACL that refuses XADD alone is not foreseen.
 * KEYS: the hash, the receipts, the sidecar's state; ARGV: updated_by,
 * updated_at, the receipt without the rollout's fields, its generation
 * and closing brace, which the script adds: the generation is the one
 * HINCRBY makes; the rollout's (release, stage, ...: README, "Receipts")
 * come from the sidecar's state when a sidecar runs the split, null
 * otherwise, as in canary-ctl's receipts.  That state may be anyone's
 * writing: a count is read up to 15 digits (%d made one past 2^63
 * negative), an empty name is null, and a byte past ASCII (the sidecar
 * writes none) is \u00XX: cjson.encode copies bytes that are no UTF-8.
 * A gradual rollback under way (rolling_back, or walking while paused)
 * is counted in rollbacks already: the trip ends that one.
 */

/*
 * The guard's limit that tripped, as the receipt's failed_checks names
 * it: the reason starts with the limit (ngx_http_canary_guard_rule.c);
 * "guard" for a trip finished for a worker that exited while tripping.
 */

static const char *
ngx_http_canary_redis_guard_check(ngx_http_canary_guard_trip_t *trip)
{
    ngx_uint_t  i;

    static const char  *limits[][2] = {
        { "error_rate ", "guard_error_rate" },
        { "upstream_errors ", "guard_upstream_errors" },
        { "latency_p99 ", "guard_latency_p99" }
    };

    for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        if (trip->reason_len > ngx_strlen(limits[i][0])
            && ngx_strncmp(trip->reason, limits[i][0],
                           ngx_strlen(limits[i][0])) == 0)
        {
            return limits[i][1];
        }
    }

    return "guard";
}


static const char  ngx_http_canary_redis_trip_script[] =
    "local t = redis.call('TYPE', KEYS[2])['ok'] "
    "if t ~= 'none' and t ~= 'stream' then "
    "return redis.error_reply(KEYS[2] .. ' is a ' .. t .. ', not a stream') "
    "end "
    "local g = redis.call('HINCRBY', KEYS[1], '"
        NGX_HTTP_CANARY_FIELD_GENERATION "', 1) "
    "redis.call('HSET', KEYS[1], '" NGX_HTTP_CANARY_FIELD_WEIGHT "', '0', '"
        NGX_HTTP_CANARY_FIELD_STATE "', '"
        NGX_HTTP_CANARY_STATE_GUARD_TRIPPED "', '"
        NGX_HTTP_CANARY_FIELD_UPDATED_BY "', ARGV[1], '"
        NGX_HTTP_CANARY_FIELD_UPDATED_AT "', ARGV[2]) "
    "local ro = redis.pcall('HMGET', KEYS[3], 'status', 'release', "
        "'stage_name', 'stage_started', 'stages_completed', "
        "'rollout_started', 'rollbacks', 'walking') "
    "if type(ro) ~= 'table' or ro.err then ro = {} end "
    "local t = redis.call('TIME') "
    "local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local function int(s) "
        "if s and #s <= 15 and string.find(s, '^%d+$') then "
        "return tonumber(s) end end "
    "local function js(s) "
        "return (string.gsub(cjson.encode(s), '[\\128-\\255]', "
        "function (c) return string.format('\\\\u%04x', "
        "string.byte(c)) end)) end "
    "local function secs(v) "
        "if v and v > 0 and v <= ms then "
        "return string.format('%d', math.floor((ms - v) / 1000)) end "
        "return 'null' end "
    "local rel, st, at, done, el, rb = 'null', 'null', 'null', 'null', "
        "'null', 'null' "
    "if ro[2] and ro[2] ~= '' then "
        "local ok, v = pcall(cjson.decode, ro[2]) "
        "if ok and type(v) == 'table' and type(v.stable) == 'string' "
        "and type(v.canary) == 'string' and v.stable ~= '' "
        "and v.canary ~= '' then "
        "rel = '{\"stable\":' .. js(v.stable) .. "
        "',\"canary\":' .. js(v.canary) .. '}' end end "
    "if ro[1] and ro[1] ~= 'new' then "
        "st = ro[3] and ro[3] ~= '' and js(ro[3]) or 'null' "
        "at = secs(int(ro[4])) "
        "done = int(ro[5]) and string.format('%d', int(ro[5])) or 'null' "
        "el = secs(int(ro[6])) "
        "rb = string.format('%d', (int(ro[7]) or 0) + ((ro[1] == "
        "'rolling_back' or ro[8] == '1') and 0 or 1)) end "
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', '10000', '*', '"
        NGX_HTTP_CANARY_RECEIPT "', ARGV[3] .. ',\"release\":' .. rel .. "
        "',\"stage\":' .. st .. ',\"duration_at_stage_seconds\":' .. at "
        ".. ',\"stages_completed\":' .. done .. "
        "',\"rollout_elapsed_seconds\":' .. el .. "
        "',\"rollbacks_triggered\":' .. rb .. string.format(',\""
        NGX_HTTP_CANARY_RECEIPT_GENERATION "\":%d}', g)) "
    "redis.call('PUBLISH', KEYS[1], '" NGX_HTTP_CANARY_OP_GUARD_TRIPPED "') "
    "return g";

static void
ngx_http_canary_redis_report_guard(ngx_http_canary_redis_t *rd,
    ngx_uint_t index, ngx_http_canary_guard_trip_t *trip)
{
    u_char                        *p, receipt[1024], ts[sizeof("1970-01-01"
                                                   "T00:00:00Z")],
                                   detected[sizeof("1970-01-01"
                                                   "T00:00:00Z")];
    ngx_tm_t                       tm;
    ngx_str_t                     *pf, *n;
    redisAsyncContext             *ac;
    ngx_http_canary_split_t      **splitp;
    ngx_http_canary_shm_split_t   *shs;

    splitp = rd->cmcf->splits.elts;
    shs = splitp[index]->sh;
    pf = &rd->conf->prefix;
    n = &splitp[index]->name;
    ac = rd->cmd.ac;

    /* UTC, as every writer of a receipt and of updated_at writes it */
    ngx_gmtime(ngx_time(), &tm);

    (void) ngx_sprintf(ts, "%4d-%02d-%02dT%02d:%02d:%02dZ",
                       tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                       tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);

    /* the trip, the guard's confirmed violation: to the second */
    ngx_gmtime(trip->since, &tm);

    (void) ngx_sprintf(detected, "%4d-%02d-%02dT%02d:%02d:%02dZ",
                       tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                       tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);

    /* the reason is our own text: digits, letters, "%", "." and ">" */

    p = ngx_cpymem(receipt, "{\"" NGX_HTTP_CANARY_RECEIPT_ID "\":\"",
                   sizeof("{\"" NGX_HTTP_CANARY_RECEIPT_ID "\":\"") - 1);
    p = ngx_http_canary_redis_uuid(p);
    p = ngx_snprintf(p, receipt + sizeof(receipt) - p,
            "\",\"" NGX_HTTP_CANARY_RECEIPT_TIMESTAMP "\":\"%*s\","
            "\"" NGX_HTTP_CANARY_RECEIPT_OPERATION "\":\""
                NGX_HTTP_CANARY_OP_GUARD_TRIPPED "\","
            "\"" NGX_HTTP_CANARY_RECEIPT_SPLIT "\":\"%V\","
            "\"" NGX_HTTP_CANARY_RECEIPT_BY "\":\""
                NGX_HTTP_CANARY_GUARD_WRITER "%V\","
            "\"" NGX_HTTP_CANARY_RECEIPT_FROM_WEIGHT "\":",
            sizeof(ts) - 1, ts, n, &ngx_cycle->hostname);
    p += ngx_http_canary_format_weight(p, shs->weight);
    p = ngx_snprintf(p, receipt + sizeof(receipt) - p,
            ",\"" NGX_HTTP_CANARY_RECEIPT_TO_WEIGHT "\":0,"
            "\"" NGX_HTTP_CANARY_FIELD_STATE "\":\""
                NGX_HTTP_CANARY_STATE_GUARD_TRIPPED "\","
            "\"since\":%T,"
            "\"" NGX_HTTP_CANARY_RECEIPT_REASON "\":\"%*s\","
            "\"detected_at\":\"%*s\",\"rollback_duration_ms\":null,"
            "\"failed_checks\":[\"%s\"]",
            trip->since, trip->reason_len, trip->reason,
            sizeof(detected) - 1, detected,
            ngx_http_canary_redis_guard_check(trip));

    rd->writes[index].in_flight = 1;

    redisAsyncCommand(ac, ngx_http_canary_redis_on_reported,
                      (void *) (uintptr_t) index,
                      "EVAL %s 3 %b%b %b%b" NGX_HTTP_CANARY_KEY_RECEIPTS " "
                      "%b%b" NGX_HTTP_CANARY_KEY_SIDECAR " "
                      NGX_HTTP_CANARY_GUARD_WRITER "%b %b %b",
                      ngx_http_canary_redis_trip_script,
                      pf->data, pf->len, n->data, n->len,
                      pf->data, pf->len, n->data, n->len,
                      pf->data, pf->len, n->data, n->len,
                      ngx_cycle->hostname.data, ngx_cycle->hostname.len,
                      ts, sizeof(ts) - 1, receipt, (size_t) (p - receipt));

    ngx_http_canary_redis_sent(&rd->cmd);
}


/*
 * A random (version 4) UUID, as every writer's receipt_id, from the
 * worker's random(): 31 bits a call, 8 of them taken.
 */

static u_char *
ngx_http_canary_redis_uuid(u_char *p)
{
    u_char      b[16];
    ngx_uint_t  i;

    for (i = 0; i < 16; i++) {
        b[i] = (u_char) (ngx_random() >> 8);
    }

    b[6] = (u_char) ((b[6] & 0x0f) | 0x40);
    b[8] = (u_char) ((b[8] & 0x3f) | 0x80);

    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            *p++ = '-';
        }

        p = ngx_sprintf(p, "%02xi", (ngx_uint_t) b[i]);
    }

    return p;
}


static void
ngx_http_canary_redis_on_reported(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply                    *reply = r;
    ngx_uint_t                      index;
    ngx_http_canary_redis_t        *rd;
    ngx_http_canary_split_t       **splitp;
    ngx_http_canary_redis_conn_t   *conn;
    ngx_http_canary_redis_write_t  *rp;

    conn = ac->data;
    rd = conn->rd;
    index = (uintptr_t) data;

    if (rd->exiting) {
        return;
    }

    rp = &rd->writes[index];
    rp->in_flight = 0;

    if (reply == NULL) {
        return;
    }

    /*
     * Even in a worker that began shutting down meanwhile: Redis has the
     * trip, the new syncing worker must not write it twice.
     */
    ngx_http_canary_redis_replied(conn);

    splitp = rd->cmcf->splits.elts;

    if (reply->type != REDIS_REPLY_INTEGER) {
        (void) ngx_http_canary_redis_moved(rd, reply);

        /* nothing was written: again later, each time later */
        rp->backoff = rp->backoff ? ngx_min(rp->backoff * 2,
                                            NGX_HTTP_CANARY_REPORT_MAX)
                                  : NGX_HTTP_CANARY_REPORT_MIN;
        rp->refused = ngx_current_msec;

        ngx_http_canary_redis_error(rd, NGX_LOG_ERR,
            "canary_redis: could not write the guard trip of split \"%V\": "
            "%*s", &splitp[index]->name,
            reply->type == REDIS_REPLY_ERROR ? ngx_min(reply->len, 100) : 14,
            reply->type == REDIS_REPLY_ERROR ? reply->str : "not an integer");
        return;
    }

    rp->backoff = 0;

    ngx_http_canary_guard_written(splitp[index], (uint64_t) reply->integer);

    ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                  "canary guard trip of split \"%V\" written to %V as "
                  "generation %L", &splitp[index]->name, &rd->address,
                  reply->integer);
}


/*
 * This nginx's records in the fleet (ngx_http_canary_fleet.c): one
 * command a round for all splits; a round whose previous one is still
 * unanswered is skipped, and one lost with the connection is not sent
 * again: the next interval brings newer counters.
 */

static void
ngx_http_canary_redis_report_fleet(ngx_http_canary_redis_t *rd)
{
    ngx_uint_t     argc;
    const char   **argv;
    const size_t  *argvlen;

    if (!rd->cmd.ready || rd->reporting || ngx_exiting) {
        return;
    }

    argc = ngx_http_canary_fleet_command(rd->fleet, &argv, &argvlen);

    if (argc == 0) {
        return;
    }

    if (redisAsyncCommandArgv(rd->cmd.ac, ngx_http_canary_redis_on_fleet,
                              NULL, (int) argc, argv, argvlen)
        != REDIS_OK)
    {
        return;
    }

    rd->reporting = 1;

    ngx_http_canary_redis_sent(&rd->cmd);
}


static void
ngx_http_canary_redis_on_fleet(redisAsyncContext *ac, void *r, void *data)
{
    redisReply                    *reply = r;
    ngx_str_t                      error;
    ngx_http_canary_redis_t       *rd;
    ngx_http_canary_redis_conn_t  *conn;

    conn = ac->data;
    rd = conn->rd;

    if (rd->exiting) {
        return;
    }

    rd->reporting = 0;

    if (reply == NULL) {
        return;
    }

    ngx_http_canary_redis_replied(conn);

    if (reply->type == REDIS_REPLY_ERROR) {
        (void) ngx_http_canary_redis_moved(rd, reply);

        ngx_http_canary_redis_error(rd, NGX_LOG_ERR,
                                   "canary_redis: reporting to %V: %*s",
                                   &rd->address,
                                   ngx_min(reply->len, 100), reply->str);
        return;
    }

    (void) ngx_http_canary_fleet_reply(rd->fleet, reply, &error);

    if (error.len) {
        ngx_http_canary_redis_error(rd, NGX_LOG_ERR,
                                   "canary_redis: reporting to %V: %V",
                                   &rd->address, &error);
    }
}
