
/*
 * Notifications: each receipt the sidecar writes, POSTed to the plan's
 * notify receivers (JSON, signed, or a Slack message).  A queue driven by
 * libcurl's multi interface from the sidecar's loop, between steps: no
 * thread, and never in the way of a decision.  Retries with backoff for
 * CS_NOTIFY_GIVE_UP_MS from the event, then the message is dropped.
 */


#ifndef _CS_NOTIFY_H_INCLUDED_
#define _CS_NOTIFY_H_INCLUDED_


#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "plan.h"


#define CS_NOTIFY_TIMEOUT_MS     10000      /* one request, all of it */
#define CS_NOTIFY_CONNECT_MS     5000
#define CS_NOTIFY_GIVE_UP_MS     (10 * 60 * 1000)
#define CS_NOTIFY_BACKOFF_MS     1000       /* after the first failure */
#define CS_NOTIFY_BACKOFF_MAX_MS 30000
#define CS_NOTIFY_QUEUE_MAX      256        /* messages, all receivers */

/* "sha256=" and 64 hex digits */
#define CS_NOTIFY_SIG_LEN        (7 + 64)


typedef struct cs_notify_s  cs_notify_t;


typedef struct {
    uint64_t            sent;           /* delivered (2xx) */
    uint64_t            failed;         /* given up: 10 minutes of
                                           failures, a full queue, or
                                           left at exit */
    uint64_t            retries;        /* attempts after a failure */
    uint64_t            queued;         /* now, in flight included */
} cs_notify_stats_t;


/* NULL when the plan has no receiver (or without memory: *err says) */
cs_notify_t *cs_notify_create(const cs_plan_t *plan, const char *split,
    char *err, size_t errlen);
void cs_notify_destroy(cs_notify_t *n);

/* a receipt just written: queued for each receiver that wants it */
void cs_notify_receipt(cs_notify_t *n, const char *receipt);

/*
 * One slice of the loop's wait: starts what is due and lets libcurl
 * work, then waits at most ms (and at most 250 ms, so that a signal is
 * seen) for libcurl's sockets or for fd (-1: none) to be readable.
 * With nothing queued (or n NULL) it waits on fd alone.
 */
void cs_notify_wait(cs_notify_t *n, int64_t ms, int fd);

/* at exit: what is due is tried once more for up to ms; the rest is
 * given up, with a log line */
void cs_notify_finish(cs_notify_t *n, int64_t ms);

/* the counts (zeros for NULL) */
void cs_notify_stats(const cs_notify_t *n, cs_notify_stats_t *st);

/* the counts as the sidecar's state writes them (JSON) */
char *cs_notify_stats_format(const cs_notify_stats_t *st, char *buf,
    size_t size);


/* pure parts, for the unit tests */

/* the wait before attempt number "attempt" (2, 3, ...) */
int64_t cs_notify_backoff(unsigned attempt);

/* after attempt number "attempts" failed at now: when to try again, or
 * -1: give up (the next would be over CS_NOTIFY_GIVE_UP_MS from the event
 * created) */
int64_t cs_notify_retry_at(int64_t created, int64_t now, unsigned attempts);

/* whether t wants a receipt of this operation */
int cs_notify_wants(const cs_notify_target_t *t, const char *operation);

/* "sha256=<hex HMAC-SHA256 of body with key>" into out */
void cs_notify_signature(const unsigned char *key, size_t keylen,
    const char *body, size_t len, char out[CS_NOTIFY_SIG_LEN + 1]);

/* the Slack message {"text": ...} of a receipt (malloc()ed; NULL if the
 * receipt is not a JSON object or without memory) */
char *cs_notify_slack(const char *receipt);

/* a URL for a log line: scheme and host only (a Slack webhook's path is
 * its secret) */
char *cs_notify_url_origin(const char *url, char *buf, size_t size);


#endif /* _CS_NOTIFY_H_INCLUDED_ */
