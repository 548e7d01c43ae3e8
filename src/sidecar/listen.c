
/*
 * --listen: the sidecar's HTTP server (listen.h).  libmicrohttpd runs
 * in its external polling mode with epoll: the loop's wait between two
 * steps polls the daemon's one epoll descriptor and lets it work
 * (MHD_run, which never blocks).  Nothing is served during a step, and
 * a request never waits on Redis or nginx: every answer is made from
 * the report the last step left.  Bounded: CS_LISTEN_CONNECTIONS at
 * once (CS_LISTEN_PER_IP from one address), each closed after
 * CS_LISTEN_TIMEOUT idle seconds, CS_LISTEN_MEMORY bytes of request
 * each, and closed CS_LISTEN_DEADLINE ms after it opened whatever it
 * does: a client that sends a byte every few seconds (slowloris) would
 * otherwise keep its slot for ever, and 64 of them every slot.
 */


#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/evp.h>

#include "listen.h"
#include "receipts.h"

#include "cs_page.h"


#define CS_LISTEN_LOG_EVERY     30000   /* ms: libmicrohttpd's lines */


/* an open connection, for its deadline */
typedef struct {
    int                     fd;             /* -1: a free slot */
    int                     shut;
    int64_t                 opened;         /* monotonic ms */
} cs_listen_conn_t;


struct cs_listen_s {
    struct MHD_Daemon      *daemon;
    const cs_report_t      *report;
    int                     fd;
    int                     epoll_fd;
    char                    address[80];

    /* made once a step, on the first request after it */
    uint64_t                step;
    struct MHD_Response    *metrics;
    struct MHD_Response    *json;
    struct MHD_Response    *page;

    /* the connections libmicrohttpd has open (at most its limit) */
    cs_listen_conn_t        conns[CS_LISTEN_CONNECTIONS];
};


static enum MHD_Result cs_listen_request(void *cls,
    struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size,
    void **con_cls);
static enum MHD_Result cs_listen_text(struct MHD_Connection *c,
    unsigned status, const char *text);
static struct MHD_Response *cs_listen_made(char *body, size_t len,
    const char *type);
static void cs_listen_forget(cs_listen_t *l);
static void cs_listen_notify(void *cls, struct MHD_Connection *c,
    void **socket_context, enum MHD_ConnectionNotificationCode code);
static int cs_listen_deadline(cs_listen_t *l);
static int cs_listen_csp(char *buf, size_t size);
static void cs_listen_log(void *cls, const char *fmt, va_list ap);
static int64_t cs_listen_mono(void);


int
cs_listen_parse(const char *s, struct sockaddr_storage *sa, socklen_t *len,
    char *err, size_t errlen)
{
    char                  host[64], *end;
    long                  port;
    const char           *colon, *h;
    size_t                n;
    struct sockaddr_in   *in4;
    struct sockaddr_in6  *in6;

    memset(sa, 0, sizeof(struct sockaddr_storage));

    colon = strrchr(s, ':');

    if (colon == NULL || colon == s) {
        goto bad;
    }

    h = s;
    n = colon - s;

    if (s[0] == '[') {
        if (n < 3 || s[n - 1] != ']') {
            goto bad;
        }

        h = s + 1;
        n -= 2;
    }

    if (n >= sizeof(host)) {
        goto bad;
    }

    memcpy(host, h, n);
    host[n] = '\0';

    errno = 0;
    port = strtol(colon + 1, &end, 10);

    if (errno || end == colon + 1 || *end || colon[1] == '+'
        || colon[1] == '-' || port < 1 || port > 65535)
    {
        snprintf(err, errlen, "invalid --listen \"%s\": the port must be "
                 "1 to 65535", s);
        return -1;
    }

    if (s[0] == '[') {
        in6 = (struct sockaddr_in6 *) sa;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t) port);

        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
            goto bad;
        }

        *len = sizeof(struct sockaddr_in6);
        return 0;
    }

    in4 = (struct sockaddr_in *) sa;
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t) port);

    if (inet_pton(AF_INET, host, &in4->sin_addr) != 1) {
        goto bad;
    }

    *len = sizeof(struct sockaddr_in);

    return 0;

bad:

    snprintf(err, errlen, "invalid --listen \"%s\": ADDR:PORT, with ADDR "
             "an IPv4 address (0.0.0.0: all) or an IPv6 one in brackets "
             "([::1])", s);

    return -1;
}


cs_listen_t *
cs_listen_start(const char *address, const cs_report_t *r, char *err,
    size_t errlen)
{
    int                       on;
    char                      csp[256];
    size_t                    i;
    socklen_t                 len;
    cs_listen_t              *l;
    struct sockaddr_storage   sa;
    const union MHD_DaemonInfo  *info;

    if (cs_listen_parse(address, &sa, &len, err, errlen) != 0) {
        return NULL;
    }

    l = calloc(1, sizeof(cs_listen_t));
    if (l == NULL) {
        snprintf(err, errlen, "no memory");
        return NULL;
    }

    l->report = r;
    snprintf(l->address, sizeof(l->address), "%s", address);

    for (i = 0; i < CS_LISTEN_CONNECTIONS; i++) {
        l->conns[i].fd = -1;
    }

    /* our own socket: a bind that fails says why */
    l->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   0);
    if (l->fd == -1) {
        snprintf(err, errlen, "--listen %s: socket: %s", address,
                 strerror(errno));
        free(l);
        return NULL;
    }

    on = 1;
    (void) setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));

    if (bind(l->fd, (struct sockaddr *) &sa, len) != 0
        || listen(l->fd, 64) != 0)
    {
        snprintf(err, errlen, "--listen %s: %s", address, strerror(errno));
        close(l->fd);
        free(l);
        return NULL;
    }

    l->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG
                                 | (sa.ss_family == AF_INET6
                                    ? MHD_USE_IPv6 : 0),
        0, NULL, NULL, cs_listen_request, l,
        MHD_OPTION_EXTERNAL_LOGGER, cs_listen_log, l,
        MHD_OPTION_LISTEN_SOCKET, l->fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned) CS_LISTEN_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned) CS_LISTEN_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) CS_LISTEN_TIMEOUT,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CS_LISTEN_MEMORY,
        MHD_OPTION_NOTIFY_CONNECTION, cs_listen_notify, l,
        MHD_OPTION_END);

    if (l->daemon == NULL) {
        snprintf(err, errlen, "--listen %s: libmicrohttpd did not start "
                 "(its reason is logged above)", address);
        close(l->fd);
        free(l);
        return NULL;
    }

    info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    l->epoll_fd = info ? info->epoll_fd : -1;

    l->page = MHD_create_response_from_buffer(sizeof(cs_page) - 1,
                                              (void *) cs_page,
                                              MHD_RESPMEM_PERSISTENT);

    if (l->epoll_fd == -1 || l->page == NULL || cs_listen_csp(csp,
                                                              sizeof(csp)))
    {
        snprintf(err, errlen, "--listen %s: libmicrohttpd has no epoll, "
                 "or no memory", address);
        cs_listen_stop(l);
        return NULL;
    }

    MHD_add_response_header(l->page, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/html; charset=utf-8");
    /* the page is self-contained: it may load nothing from elsewhere */
    MHD_add_response_header(l->page, "Content-Security-Policy", csp);
    MHD_add_response_header(l->page, "X-Content-Type-Options", "nosniff");

    return l;
}


int
cs_listen_fd(cs_listen_t *l)
{
    return l->epoll_fd;
}


int64_t
cs_listen_timeout(cs_listen_t *l)
{
    MHD_UNSIGNED_LONG_LONG  timeout;

    if (MHD_get_timeout(l->daemon, &timeout) != MHD_YES) {
        return -1;
    }

    return timeout > INT64_MAX ? INT64_MAX : (int64_t) timeout;
}


void
cs_listen_run(cs_listen_t *l)
{
    MHD_run(l->daemon);

    /* those shut now are closed by the daemon at once */
    if (cs_listen_deadline(l)) {
        MHD_run(l->daemon);
    }
}


void
cs_listen_stop(cs_listen_t *l)
{
    if (l == NULL) {
        return;
    }

    cs_listen_forget(l);

    if (l->page) {
        MHD_destroy_response(l->page);
    }

    /* the daemon closes the listening socket it was given */
    if (l->daemon) {
        MHD_stop_daemon(l->daemon);

    } else {
        close(l->fd);
    }

    free(l);
}


static enum MHD_Result
cs_listen_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
    int                  ok;
    char                 buf[512], *body;
    size_t               len;
    cs_listen_t         *l;
    enum MHD_Result      rc;
    struct MHD_Response *res;
    const cs_report_t   *r;

    (void) version;
    (void) upload_data;
    (void) upload_data_size;
    (void) con_cls;

    l = cls;
    r = l->report;

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0
        && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    {
        res = MHD_create_response_from_buffer(0, NULL,
                                              MHD_RESPMEM_PERSISTENT);
        if (res == NULL) {
            return MHD_NO;
        }

        MHD_add_response_header(res, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        rc = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, res);
        MHD_destroy_response(res);
        return rc;
    }

    if (strcmp(url, "/healthz") == 0) {
        ok = cs_report_healthy(r, cs_listen_mono(), buf, sizeof(buf));
        return cs_listen_text(c, ok ? MHD_HTTP_OK
                                    : MHD_HTTP_SERVICE_UNAVAILABLE, buf);
    }

    if (strcmp(url, "/readyz") == 0) {
        ok = cs_report_ready(r, buf, sizeof(buf));
        return cs_listen_text(c, ok ? MHD_HTTP_OK
                                    : MHD_HTTP_SERVICE_UNAVAILABLE, buf);
    }

    if (strcmp(url, "/") == 0) {
        return MHD_queue_response(c, MHD_HTTP_OK, l->page);
    }

    if (strcmp(url, "/metrics") != 0 && strcmp(url, "/status.json") != 0) {
        return cs_listen_text(c, MHD_HTTP_NOT_FOUND,
                              "not found: /metrics, /healthz, /readyz, "
                              "/status.json, /\n");
    }

    /* what the last step left, made once for every request until the
     * next step */
    if (l->step != r->steps) {
        cs_listen_forget(l);
        l->step = r->steps;
    }

    if (url[1] == 'm' && l->metrics == NULL) {
        body = cs_report_metrics(r, &len);
        l->metrics = cs_listen_made(body, len,
                                    "text/plain; version=0.0.4; "
                                    "charset=utf-8");

    } else if (url[1] == 's' && l->json == NULL) {
        body = cs_report_json(r, &len);
        l->json = cs_listen_made(body, len, "application/json");
    }

    res = url[1] == 'm' ? l->metrics : l->json;

    if (res == NULL) {
        return cs_listen_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "no memory\n");
    }

    return MHD_queue_response(c, MHD_HTTP_OK, res);
}


static enum MHD_Result
cs_listen_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    enum MHD_Result       rc;
    struct MHD_Response  *res;

    res = MHD_create_response_from_buffer(strlen(text), (void *) text,
                                          MHD_RESPMEM_MUST_COPY);
    if (res == NULL) {
        return MHD_NO;
    }

    MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; charset=utf-8");
    MHD_add_response_header(res, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");

    rc = MHD_queue_response(c, status, res);
    MHD_destroy_response(res);

    return rc;
}


/* a response that connections share until the next step; freed with
 * the last of them */

static struct MHD_Response *
cs_listen_made(char *body, size_t len, const char *type)
{
    struct MHD_Response  *res;

    if (body == NULL) {
        return NULL;
    }

    res = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (res == NULL) {
        free(body);
        return NULL;
    }

    MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(res, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");

    return res;
}


static void
cs_listen_forget(cs_listen_t *l)
{
    if (l->metrics) {
        MHD_destroy_response(l->metrics);
        l->metrics = NULL;
    }

    if (l->json) {
        MHD_destroy_response(l->json);
        l->json = NULL;
    }
}


/*
 * The page's Content-Security-Policy: nothing from elsewhere, and of
 * inline scripts only the page's own, by its SHA-256 (not
 * 'unsafe-inline', which would also let an inline handler such as
 * onerror= run, were text from Redis ever inserted as markup).  Inline
 * style stays allowed: the hold's bar is a style attribute.
 */

static int
cs_listen_csp(char *buf, size_t size)
{
    int             n;
    unsigned        len;
    const char     *start, *end;
    unsigned char   md[EVP_MAX_MD_SIZE], b64[4 * EVP_MAX_MD_SIZE / 3 + 4];

    start = strstr(cs_page, "<script>");
    end = start ? strstr(start, "</script>") : NULL;

    if (end == NULL) {
        return -1;
    }

    start += sizeof("<script>") - 1;

    if (EVP_Digest(start, end - start, md, &len, EVP_sha256(), NULL) != 1) {
        return -1;
    }

    EVP_EncodeBlock(b64, md, (int) len);

    n = snprintf(buf, size, "default-src 'none'; script-src 'sha256-%s'; "
                 "style-src 'unsafe-inline'; connect-src 'self'; "
                 "img-src data:", b64);

    return n > 0 && (size_t) n < size ? 0 : -1;
}


/* the connections as libmicrohttpd opens and closes them */

static void
cs_listen_notify(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
    size_t                          i;
    cs_listen_t                    *l;
    cs_listen_conn_t               *conn;
    const union MHD_ConnectionInfo *info;

    l = cls;

    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn = *socket_context;

        if (conn) {
            conn->fd = -1;
            *socket_context = NULL;
        }

        return;
    }

    info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

    if (info == NULL) {
        return;
    }

    for (i = 0; i < CS_LISTEN_CONNECTIONS; i++) {
        conn = &l->conns[i];

        if (conn->fd == -1) {
            conn->fd = info->connect_fd;
            conn->shut = 0;
            conn->opened = cs_listen_mono();
            *socket_context = conn;
            return;
        }
    }
}


/*
 * The connections past their deadline are shut down: the daemon reads
 * the end of them and closes them.  1 when one was.
 */

static int
cs_listen_deadline(cs_listen_t *l)
{
    int                 shut;
    size_t              i;
    int64_t             now;
    cs_listen_conn_t   *conn;

    now = cs_listen_mono();
    shut = 0;

    for (i = 0; i < CS_LISTEN_CONNECTIONS; i++) {
        conn = &l->conns[i];

        if (conn->fd != -1 && !conn->shut
            && now - conn->opened >= CS_LISTEN_DEADLINE)
        {
            (void) shutdown(conn->fd, SHUT_RDWR);
            conn->shut = 1;
            shut = 1;
        }
    }

    return shut;
}


/* libmicrohttpd's lines, at most one each CS_LISTEN_LOG_EVERY: a client
 * over the connection limit must not flood the log */

static void
cs_listen_log(void *cls, const char *fmt, va_list ap)
{
    char            ts[32], line[512];
    size_t          n;
    int64_t         now;
    cs_listen_t    *l;

    static int64_t   last;
    static unsigned  dropped;

    l = cls;
    now = cs_listen_mono();

    if (last && now - last < CS_LISTEN_LOG_EVERY) {
        dropped++;
        return;
    }

    last = now;

    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);

    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        line[--n] = '\0';
    }

    fprintf(stderr, "%s %s: --listen %s: %s%s\n",
            cs_iso8601((int64_t) time(NULL) * 1000, ts, sizeof(ts)),
            l->report->split, l->address, line,
            dropped ? " (and lines dropped before it)" : "");

    dropped = 0;
}


static int64_t
cs_listen_mono(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
