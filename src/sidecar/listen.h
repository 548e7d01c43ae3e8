
/*
 * --listen ADDR:PORT: the sidecar's HTTP server (libmicrohttpd, in its
 * external polling mode: no thread of its own).  It is served only
 * while the loop waits for the next step, from what the last step left
 * in the report (report.h): a slow or hostile client never delays a
 * step, it only waits for the next wait.
 *
 *   /metrics      Prometheus text
 *   /healthz      200: the loop keeps its pace; 503 otherwise
 *   /readyz       200: the last step reached Redis and an nginx
 *   /             the rollout page, which renders /status.json
 */


#ifndef _CS_LISTEN_H_INCLUDED_
#define _CS_LISTEN_H_INCLUDED_


#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>

#include "report.h"


#define CS_LISTEN_CONNECTIONS   64      /* at once, in all */
#define CS_LISTEN_PER_IP        16      /* at once, from one address */
#define CS_LISTEN_TIMEOUT       5       /* s: an idle connection closes */
#define CS_LISTEN_MEMORY        16384   /* bytes a connection may buffer */
#define CS_LISTEN_DEADLINE      10000   /* ms: any connection closes, busy
                                           or not (a byte now and then
                                           restarts the idle timeout) */


typedef struct cs_listen_s  cs_listen_t;


/*
 * "ADDR:PORT": an IPv4 address, or an IPv6 one in brackets, and a port
 * 1 to 65535; 0, or -1 with the problem in err.
 */
int cs_listen_parse(const char *s, struct sockaddr_storage *sa,
    socklen_t *len, char *err, size_t errlen);

/* binds and listens; NULL with the problem in err */
cs_listen_t *cs_listen_start(const char *address, const cs_report_t *r,
    char *err, size_t errlen);

/*
 * For a wait that polls other descriptors too (libcurl's): the one
 * descriptor to poll for reading, the longest the poll may last in ms
 * (-1: any), and the work to do after it (never blocks).
 */
int cs_listen_fd(cs_listen_t *l);
int64_t cs_listen_timeout(cs_listen_t *l);
void cs_listen_run(cs_listen_t *l);

void cs_listen_stop(cs_listen_t *l);


#endif /* _CS_LISTEN_H_INCLUDED_ */
