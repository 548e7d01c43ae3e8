
/*
 * Redis Sentinel, for canary_redis sentinel=... master=NAME: which address
 * the master has now.  The syncing worker asks the sentinels in turn
 * (SENTINEL get-master-addr-by-name), one short-lived connection at a
 * time, starting with the one that answered last; and it keeps one
 * subscription to +switch-master on the first sentinel that answered, so
 * a failover moves it at once.  All on nginx's event loop, through
 * hiredis' async API as ngx_http_canary_redis.c does.  The answer goes to
 * the Redis adapter's handler, always from a posted event, never from
 * inside a hiredis callback: the handler may free its own contexts.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/ioctl.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_canary_module.h"


/* read events handled in a row on one connection before yielding */
#define NGX_HTTP_CANARY_SENTINEL_DRAIN  32

/* the subscription, once lost, is set up again after this */
#define NGX_HTTP_CANARY_SENTINEL_RESUBSCRIBE  1000


typedef struct {
    ngx_http_canary_sentinels_t  *sn;
    redisAsyncContext            *ac;
    ngx_connection_t             *c;
    ngx_event_t                   timeout;
    ngx_uint_t                    index;        /* the sentinel */

    /* the subscriber's reader: hiredis' functions, behind its checks */
    redisReplyObjectFunctions     fn;
    redisReplyObjectFunctions    *hiredis;

    unsigned                      subscriber:1;
    unsigned                      done:1;       /* answered or failed */
    unsigned                      subscribed:1;
    unsigned                      malformed:1;  /* a message refused */
} ngx_http_canary_sentinel_link_t;


struct ngx_http_canary_sentinels_s {
    ngx_http_canary_redis_conf_t *conf;
    ngx_log_t                    *log;
    ngx_http_canary_master_pt     handler;
    void                         *data;

    ngx_http_canary_sentinel_link_t  ask;
    ngx_http_canary_sentinel_link_t  sub;

    ngx_event_t                   step;         /* posted: next move */
    ngx_event_t                   resubscribe;

    ngx_uint_t                    next;         /* the sentinel asked next */
    ngx_uint_t                    tried;        /* in this round */

    /* why no sentinel answered, one "ADDRESS: reason" each */
    u_char                        why[NGX_HTTP_CANARY_ERROR_LEN];
    u_char                       *last;

    /* an answer to hand over, and where it came from */
    u_char                        host[NGX_SOCKADDR_STRLEN + 1];
    ngx_int_t                     port;
    u_char                        via[NGX_HTTP_CANARY_ERROR_LEN];
    size_t                        via_len;
    ngx_int_t                     via_index;    /* -1: +switch-master */

    unsigned                      asking:1;
    unsigned                      answer:1;
    unsigned                      quiet:1;      /* freeing: no callbacks */
    unsigned                      exiting:1;
};


static void ngx_http_canary_sentinel_next(ngx_http_canary_sentinels_t *sn);
static void ngx_http_canary_sentinel_subscribe(
    ngx_http_canary_sentinels_t *sn, ngx_uint_t index);
static ngx_int_t ngx_http_canary_sentinel_open(
    ngx_http_canary_sentinels_t *sn, ngx_http_canary_sentinel_link_t *link,
    ngx_uint_t index);
static void ngx_http_canary_sentinel_cleanup(void *data);
static void *ngx_http_canary_sentinel_array(const redisReadTask *task,
    int elements);
static void *ngx_http_canary_sentinel_string(const redisReadTask *task,
    char *str, size_t len);
static void *ngx_http_canary_sentinel_integer(const redisReadTask *task,
    long long value);
static void *ngx_http_canary_sentinel_nil(const redisReadTask *task);
static void ngx_http_canary_sentinel_read_handler(ngx_event_t *ev);
static void ngx_http_canary_sentinel_write_handler(ngx_event_t *ev);
static void ngx_http_canary_sentinel_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_canary_sentinel_on_disconnect(
    const redisAsyncContext *ac, int status);
static void ngx_http_canary_sentinel_on_master(redisAsyncContext *ac,
    void *r, void *data);
static void ngx_http_canary_sentinel_on_switch(redisAsyncContext *ac,
    void *r, void *data);
static ngx_int_t ngx_http_canary_sentinel_found(
    ngx_http_canary_sentinels_t *sn, u_char *host, size_t hlen,
    u_char *port, size_t plen, ngx_int_t via);
static void ngx_http_canary_sentinel_failed(
    ngx_http_canary_sentinel_link_t *link, const char *reason, size_t len);
static void ngx_http_canary_sentinel_timeout(ngx_event_t *ev);
static void ngx_http_canary_sentinel_step(ngx_event_t *ev);
static void ngx_http_canary_sentinel_resubscribe(ngx_event_t *ev);


ngx_http_canary_sentinels_t *
ngx_http_canary_sentinels_create(ngx_cycle_t *cycle,
    ngx_http_canary_redis_conf_t *rc, ngx_http_canary_master_pt handler,
    void *data)
{
    ngx_http_canary_sentinels_t  *sn;

    sn = ngx_pcalloc(cycle->pool, sizeof(ngx_http_canary_sentinels_t));
    if (sn == NULL) {
        return NULL;
    }

    sn->conf = rc;
    sn->log = cycle->log;
    sn->handler = handler;
    sn->data = data;

    sn->ask.sn = sn;
    sn->ask.timeout.handler = ngx_http_canary_sentinel_timeout;
    sn->ask.timeout.data = &sn->ask;
    sn->ask.timeout.log = sn->log;
    sn->ask.timeout.cancelable = 1;

    sn->sub = sn->ask;
    sn->sub.timeout.data = &sn->sub;
    sn->sub.subscriber = 1;

    sn->step.handler = ngx_http_canary_sentinel_step;
    sn->step.data = sn;
    sn->step.log = sn->log;

    sn->resubscribe = sn->step;
    sn->resubscribe.handler = ngx_http_canary_sentinel_resubscribe;
    sn->resubscribe.cancelable = 1;

    return sn;
}


/* a round: each sentinel once, until one names the master */

void
ngx_http_canary_sentinels_ask(ngx_http_canary_sentinels_t *sn)
{
    if (sn->asking || sn->exiting) {
        return;
    }

    sn->asking = 1;
    sn->tried = 0;
    sn->last = sn->why;

    if (sn->ask.ac == NULL) {
        ngx_http_canary_sentinel_next(sn);
    }
}


void
ngx_http_canary_sentinels_close(ngx_http_canary_sentinels_t *sn)
{
    sn->exiting = 1;

    if (sn->ask.ac) {
        redisAsyncFree(sn->ask.ac);
    }

    if (sn->sub.ac) {
        redisAsyncFree(sn->sub.ac);
    }

    if (sn->step.posted) {
        ngx_delete_posted_event(&sn->step);
    }

    if (sn->resubscribe.timer_set) {
        ngx_del_timer(&sn->resubscribe);
    }
}


/* outside hiredis callbacks only */

static void
ngx_http_canary_sentinel_next(ngx_http_canary_sentinels_t *sn)
{
    ngx_str_t   *m;
    ngx_uint_t   i, n;

    n = sn->conf->sentinels->nelts;
    m = &sn->conf->master;

    while (sn->tried < n) {
        sn->tried++;
        i = sn->next;

        if (ngx_http_canary_sentinel_open(sn, &sn->ask, i) == NGX_OK) {
            redisAsyncCommand(sn->ask.ac, ngx_http_canary_sentinel_on_master,
                              NULL, "SENTINEL get-master-addr-by-name %b",
                              m->data, m->len);
            return;
        }

        /* once, whether or not a failure already moved the turn */
        sn->next = (i + 1) % n;
    }

    sn->asking = 0;

    /* no answer, no subscription: nothing else would ask again for it */
    if (sn->sub.ac == NULL && !sn->resubscribe.timer_set) {
        ngx_add_timer(&sn->resubscribe, NGX_HTTP_CANARY_SENTINEL_RESUBSCRIBE);
    }

    /* "127.0.0.1:26379: Connection refused; ..." */
    sn->via_len = ngx_snprintf(sn->via, sizeof(sn->via), "%*s",
                               (size_t) (sn->last - sn->why), sn->why)
                  - sn->via;

    sn->handler(sn->data, NULL, 0, sn->via, sn->via_len);
}


static void
ngx_http_canary_sentinel_subscribe(ngx_http_canary_sentinels_t *sn,
    ngx_uint_t index)
{
    if (sn->sub.ac || sn->exiting) {
        return;
    }

    if (ngx_http_canary_sentinel_open(sn, &sn->sub, index) != NGX_OK) {
        if (!sn->resubscribe.timer_set) {
            ngx_add_timer(&sn->resubscribe,
                          NGX_HTTP_CANARY_SENTINEL_RESUBSCRIBE);
        }

        return;
    }

    redisAsyncCommand(sn->sub.ac, ngx_http_canary_sentinel_on_switch, NULL,
                      "SUBSCRIBE +switch-master");
}


static ngx_int_t
ngx_http_canary_sentinel_open(ngx_http_canary_sentinels_t *sn,
    ngx_http_canary_sentinel_link_t *link, ngx_uint_t index)
{
    const char                  *why;
    ngx_connection_t            *c;
    redisAsyncContext           *ac;
    ngx_http_canary_sentinel_t  *s;

    s = sn->conf->sentinels->elts;
    s = &s[index];

    ac = redisAsyncConnect((char *) s->host, s->port);

    if (ac == NULL || ac->err) {
        why = (ac == NULL) ? "no memory" : ac->errstr;
        link->index = index;
        ngx_http_canary_sentinel_failed(link, why, ngx_strlen(why));

        if (ac) {
            redisAsyncFree(ac);
        }

        return NGX_ERROR;
    }

    c = ngx_get_connection(ac->c.fd, sn->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        return NGX_ERROR;
    }

    c->data = link;
    c->read->handler = ngx_http_canary_sentinel_read_handler;
    c->write->handler = ngx_http_canary_sentinel_write_handler;
    c->read->log = sn->log;
    c->write->log = sn->log;

    link->ac = ac;
    link->c = c;
    link->index = index;
    link->done = 0;
    link->subscribed = 0;
    link->malformed = 0;

    if (link->subscriber) {
        link->hiredis = ac->c.reader->fn;
        link->fn = *link->hiredis;
        link->fn.createArray = ngx_http_canary_sentinel_array;
        link->fn.createString = ngx_http_canary_sentinel_string;
        link->fn.createInteger = ngx_http_canary_sentinel_integer;
        link->fn.createNil = ngx_http_canary_sentinel_nil;

        ac->c.reader->fn = &link->fn;
        ac->c.reader->privdata = link;
    }

    ac->data = link;
    ac->ev.data = c;
    ac->ev.addRead = ngx_http_canary_redis_add_read;
    ac->ev.delRead = ngx_http_canary_redis_del_read;
    ac->ev.addWrite = ngx_http_canary_redis_add_write;
    ac->ev.delWrite = ngx_http_canary_redis_del_write;
    ac->ev.cleanup = ngx_http_canary_sentinel_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_canary_sentinel_on_connect);
    redisAsyncSetDisconnectCallback(ac,
                                    ngx_http_canary_sentinel_on_disconnect);

    /* connect and answer; a subscription only until it is confirmed */
    ngx_add_timer(&link->timeout, sn->conf->timeout);

    return NGX_OK;
}


static void
ngx_http_canary_sentinel_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    ngx_http_canary_sentinel_link_t  *link;

    link = c->data;

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

    if (link->timeout.timer_set) {
        ngx_del_timer(&link->timeout);
    }

    link->c = NULL;
    link->ac = NULL;
}


/*
 * hiredis asserts on a pub/sub message that is not an array of two bulk
 * strings and more: one from a sentinel would abort the worker.  The
 * subscriber reads arrays of three only, "subscribe" or "message", the
 * channel, then a bulk string (a message) or an integer; anything else
 * fails the read (hiredis calls it "Out of memory"), and the connection
 * with it.
 */

static void *
ngx_http_canary_sentinel_array(const redisReadTask *task, int elements)
{
    ngx_http_canary_sentinel_link_t  *link = task->privdata;

    if (task->parent || elements != 3) {
        link->malformed = 1;
        return NULL;
    }

    return link->hiredis->createArray(task, elements);
}


static void *
ngx_http_canary_sentinel_string(const redisReadTask *task, char *str,
    size_t len)
{
    ngx_http_canary_sentinel_link_t  *link = task->privdata;

    redisReply  *a;

    if (task->parent) {
        a = task->parent->obj;

        if (task->type != REDIS_REPLY_STRING
            || (task->idx == 2
                && (a->element[0]->len != 7
                    || ngx_strncmp(a->element[0]->str, "message", 7) != 0)))
        {
            link->malformed = 1;
            return NULL;
        }
    }

    return link->hiredis->createString(task, str, len);
}


static void *
ngx_http_canary_sentinel_integer(const redisReadTask *task, long long value)
{
    ngx_http_canary_sentinel_link_t  *link = task->privdata;

    if (task->parent && task->idx != 2) {
        link->malformed = 1;
        return NULL;
    }

    return link->hiredis->createInteger(task, value);
}


static void *
ngx_http_canary_sentinel_nil(const redisReadTask *task)
{
    ngx_http_canary_sentinel_link_t  *link = task->privdata;

    if (task->parent) {
        link->malformed = 1;
        return NULL;
    }

    return link->hiredis->createNil(task);
}


static void
ngx_http_canary_sentinel_read_handler(ngx_event_t *ev)
{
    int                               avail;
    ngx_uint_t                        n;
    ngx_connection_t                 *c;
    redisAsyncContext                *ac;
    ngx_http_canary_sentinel_link_t  *link;

    c = ev->data;
    link = c->data;
    ac = link->ac;

    for (n = 0; n < NGX_HTTP_CANARY_SENTINEL_DRAIN; n++) {
        redisAsyncHandleRead(ac);

        if (link->ac != ac
            || ioctl(c->fd, FIONREAD, &avail) == -1 || avail <= 0)
        {
            break;
        }
    }
}


static void
ngx_http_canary_sentinel_write_handler(ngx_event_t *ev)
{
    ngx_connection_t                 *c;
    ngx_http_canary_sentinel_link_t  *link;

    c = ev->data;
    link = c->data;

    redisAsyncHandleWrite(link->ac);
}


static void
ngx_http_canary_sentinel_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_canary_sentinel_link_t  *link;

    link = ac->data;

    if (link->sn->exiting || link->sn->quiet || status == REDIS_OK) {
        return;
    }

    /* hiredis frees the context after this callback */
    ngx_http_canary_sentinel_failed(link, ac->errstr, ngx_strlen(ac->errstr));
}


static void
ngx_http_canary_sentinel_on_disconnect(const redisAsyncContext *ac,
    int status)
{
    const char                       *why;
    ngx_http_canary_sentinel_t       *s;
    ngx_http_canary_sentinels_t      *sn;
    ngx_http_canary_sentinel_link_t  *link;

    link = ac->data;
    sn = link->sn;

    if (sn->exiting || sn->quiet) {
        return;
    }

    if (link->subscriber) {
        if (link->subscribed) {
            s = sn->conf->sentinels->elts;

            ngx_log_error(NGX_LOG_WARN, sn->log, 0,
                          "canary_redis: lost the +switch-master "
                          "subscription to sentinel %V: %s",
                          &s[link->index].address,
                          link->malformed ? "a malformed message"
                          : status == REDIS_OK ? "closed" : ac->errstr);
            link->subscribed = 0;
        }

        ngx_http_canary_sentinel_failed(link, NULL, 0);
        return;
    }

    if (!link->done) {
        why = (status == REDIS_OK) ? "closed" : ac->errstr;
        ngx_http_canary_sentinel_failed(link, why, ngx_strlen(why));
    }
}


/* [host, port], or nil for a master the sentinel does not monitor */

static void
ngx_http_canary_sentinel_on_master(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply                       *reply = r;
    redisReply                      **e;
    ngx_http_canary_sentinels_t      *sn;
    ngx_http_canary_sentinel_link_t  *link;

    link = ac->data;
    sn = link->sn;

    if (reply == NULL || sn->exiting || sn->quiet || link->done) {
        return;
    }

    if (link->timeout.timer_set) {
        ngx_del_timer(&link->timeout);
    }

    e = reply->element;

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
        && e[0]->type == REDIS_REPLY_STRING
        && e[1]->type == REDIS_REPLY_STRING
        && ngx_http_canary_sentinel_found(sn, (u_char *) e[0]->str,
                                          e[0]->len, (u_char *) e[1]->str,
                                          e[1]->len, link->index)
           == NGX_OK)
    {
        link->done = 1;
        sn->asking = 0;

        /* the one that answered is asked first next time */
        sn->next = link->index;

    } else if (reply->type == REDIS_REPLY_NIL) {
        ngx_http_canary_sentinel_failed(link, "does not know the master",
                                        24);

    } else if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_canary_sentinel_failed(link, reply->str,
                                        ngx_min(reply->len, 60));

    } else {
        ngx_http_canary_sentinel_failed(link, "no address in its answer",
                                        24);
    }

    redisAsyncDisconnect(ac);
}


/* "+switch-master": "NAME OLD-IP OLD-PORT NEW-IP NEW-PORT" */

static void
ngx_http_canary_sentinel_on_switch(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply                       *reply = r;
    u_char                           *p, *last, *f[5];
    ngx_str_t                        *m;
    ngx_uint_t                        n;
    redisReply                      **e;
    ngx_http_canary_sentinel_t       *s;
    ngx_http_canary_sentinels_t      *sn;
    ngx_http_canary_sentinel_link_t  *link;

    link = ac->data;
    sn = link->sn;
    s = sn->conf->sentinels->elts;

    if (reply == NULL || sn->exiting || sn->quiet) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_WARN, sn->log, 0,
                      "canary_redis: sentinel %V refused SUBSCRIBE "
                      "+switch-master: %*s", &s[link->index].address,
                      ngx_min(reply->len, 100), reply->str);
        redisAsyncDisconnect(ac);
        return;
    }

    e = reply->element;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || e[0]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    if (e[0]->len == 9 && ngx_strncmp(e[0]->str, "subscribe", 9) == 0) {
        if (link->timeout.timer_set) {
            ngx_del_timer(&link->timeout);
        }

        link->done = 1;
        link->subscribed = 1;

        ngx_log_error(NGX_LOG_INFO, sn->log, 0,
                      "canary_redis: subscribed to +switch-master on "
                      "sentinel %V", &s[link->index].address);
        return;
    }

    if (e[0]->len != 7 || ngx_strncmp(e[0]->str, "message", 7) != 0
        || e[2]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    p = (u_char *) e[2]->str;
    last = p + e[2]->len;

    for (n = 0; n < 5 && p < last; n++) {
        f[n] = p;
        p = ngx_strlchr(p, last, ' ');

        if (p == NULL) {
            p = last;
        }

        p++;
    }

    m = &sn->conf->master;

    if (n != 5 || (size_t) (f[1] - f[0] - 1) != m->len
        || ngx_strncmp(f[0], m->data, m->len) != 0)
    {
        return;
    }

    (void) ngx_http_canary_sentinel_found(sn, f[3], f[4] - f[3] - 1, f[4],
                                          (size_t) (last - f[4]), -1);
}


/*
 * An IP and a port, not a name: hiredis would resolve a name with a
 * blocking call (a sentinel with "resolve-hostnames yes" is refused).
 */

static ngx_int_t
ngx_http_canary_sentinel_found(ngx_http_canary_sentinels_t *sn,
    u_char *host, size_t hlen, u_char *port, size_t plen, ngx_int_t via)
{
    ngx_int_t                    n;
    ngx_http_canary_sentinel_t  *s;
#if (NGX_HAVE_INET6)
    u_char                       a6[16];
#endif

    s = sn->conf->sentinels->elts;
    n = ngx_atoi(port, plen);

    if (n < 1 || n > 65535 || hlen == 0 || hlen > NGX_SOCKADDR_STRLEN
        || (ngx_inet_addr(host, hlen) == INADDR_NONE
#if (NGX_HAVE_INET6)
            && ngx_inet6_addr(host, hlen, a6) != NGX_OK
#endif
           ))
    {
        ngx_log_error(NGX_LOG_ERR, sn->log, 0,
                      "canary_redis: sentinel %V gives master \"%V\" an "
                      "address that is not IP:PORT, ignored: \"%*s %*s\"",
                      &s[via >= 0 ? via : (ngx_int_t) sn->sub.index].address,
                      &sn->conf->master, ngx_min(hlen, 64), host,
                      ngx_min(plen, 8), port);
        return NGX_ERROR;
    }

    ngx_memcpy(sn->host, host, hlen);
    sn->host[hlen] = '\0';
    sn->port = n;
    sn->via_index = via;

    if (via >= 0) {
        sn->via_len = ngx_snprintf(sn->via, sizeof(sn->via), "sentinel %V",
                                   &s[via].address) - sn->via;

    } else {
        sn->via_len = ngx_snprintf(sn->via, sizeof(sn->via),
                                   "+switch-master from sentinel %V",
                                   &s[sn->sub.index].address) - sn->via;
    }

    sn->answer = 1;
    ngx_post_event(&sn->step, &ngx_posted_events);

    return NGX_OK;
}


/* noted for the round's summary; the next sentinel is asked from a post */

static void
ngx_http_canary_sentinel_failed(ngx_http_canary_sentinel_link_t *link,
    const char *reason, size_t len)
{
    ngx_http_canary_sentinel_t   *s;
    ngx_http_canary_sentinels_t  *sn;

    sn = link->sn;
    link->done = 1;

    if (link->subscriber) {
        if (!sn->resubscribe.timer_set) {
            ngx_add_timer(&sn->resubscribe,
                          NGX_HTTP_CANARY_SENTINEL_RESUBSCRIBE);
        }

        return;
    }

    s = sn->conf->sentinels->elts;

    if (sn->asking) {
        sn->last = ngx_slprintf(sn->last, sn->why + sizeof(sn->why),
                                "%s%V: %*s", sn->last == sn->why ? "" : "; ",
                                &s[link->index].address, len, reason);
        ngx_post_event(&sn->step, &ngx_posted_events);
    }

    sn->next = (link->index + 1) % sn->conf->sentinels->nelts;
}


static void
ngx_http_canary_sentinel_timeout(ngx_event_t *ev)
{
    ngx_http_canary_sentinel_link_t  *link = ev->data;

    ngx_http_canary_sentinels_t  *sn;

    sn = link->sn;

    if (link->ac) {
        /* the callbacks of what was sent run with no reply: ignore them */
        sn->quiet = 1;
        redisAsyncFree(link->ac);
        sn->quiet = 0;
    }

    ngx_http_canary_sentinel_failed(link, "timed out", 9);
}


static void
ngx_http_canary_sentinel_step(ngx_event_t *ev)
{
    ngx_http_canary_sentinels_t  *sn = ev->data;

    if (sn->exiting) {
        return;
    }

    if (sn->answer) {
        sn->answer = 0;

        if (sn->via_index >= 0) {
            ngx_http_canary_sentinel_subscribe(sn, sn->via_index);
        }

        sn->handler(sn->data, sn->host, sn->port, sn->via, sn->via_len);
    }

    if (sn->asking && sn->ask.ac == NULL && !sn->exiting) {
        ngx_http_canary_sentinel_next(sn);
    }
}


/* a lost subscription: the next sentinel that answers takes it */

static void
ngx_http_canary_sentinel_resubscribe(ngx_event_t *ev)
{
    ngx_http_canary_sentinels_t  *sn = ev->data;

    if (sn->exiting || ngx_exiting || sn->sub.ac) {
        return;
    }

    ngx_http_canary_sentinels_ask(sn);
}
