
/*
 * Notifications: a queue per receiver, one request in flight per
 * receiver (messages arrive in the order of the events), driven by one
 * libcurl multi handle from the sidecar's loop.  Nothing here blocks: a
 * step never waits for a receiver, and a receiver that hangs is
 * abandoned after CS_NOTIFY_TIMEOUT_MS and tried again.
 */


#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "notify.h"
#include "receipts.h"


#define CS_NOTIFY_POLL_MS   250         /* a signal is seen within this */


typedef struct cs_notify_msg_s  cs_notify_msg_t;

struct cs_notify_msg_s {
    cs_notify_msg_t    *next;
    char               *body;
    size_t              len;
    char                id[CS_UUID_LEN + 1];
    char                op[48];
    int64_t             created;        /* monotonic ms */
    int64_t             due;
    unsigned            attempts;
    int                 logged;         /* its failure was said */
    char                why[160];       /* the last failure */
};


typedef struct {
    const cs_notify_target_t  *t;
    size_t              index;          /* in the plan's notify */
    char                origin[160];
    cs_notify_msg_t    *head;
    cs_notify_msg_t    *tail;
    CURL               *easy;           /* head's request, in flight */
    struct curl_slist  *headers;
    int                 failing;
} cs_notify_queue_t;


struct cs_notify_s {
    CURLM              *multi;
    const char         *split;
    cs_notify_queue_t  *q;
    size_t              nq;
    cs_notify_stats_t   stats;
};


typedef struct {
    char               *p;
    size_t              len;
    size_t              cap;
    int                 failed;
} cs_notify_buf_t;


static void cs_notify_enqueue(cs_notify_t *n, cs_notify_queue_t *q,
    const char *receipt, const char *id, const char *op);
static void cs_notify_drop_oldest(cs_notify_t *n);
static void cs_notify_start(cs_notify_t *n, int64_t now);
static int cs_notify_request(cs_notify_queue_t *q, cs_notify_msg_t *m);
static void cs_notify_done(cs_notify_t *n);
static void cs_notify_result(cs_notify_t *n, cs_notify_queue_t *q,
    CURLcode result, int64_t now);
static void cs_notify_pop(cs_notify_queue_t *q);
static int64_t cs_notify_next_due(cs_notify_t *n, int64_t now);
static size_t cs_notify_discard(char *ptr, size_t size, size_t nmemb,
    void *userdata);
static void cs_notify_log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int64_t cs_notify_mono(void);
static void cs_notify_add(cs_notify_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void cs_notify_add_text(cs_notify_buf_t *b, const char *s);
static void cs_notify_add_number(cs_notify_buf_t *b, json_t *v);
static int cs_notify_failed_checks(cs_notify_buf_t *b, json_t *r);


cs_notify_t *
cs_notify_create(const cs_plan_t *plan, const char *split, char *err,
    size_t errlen)
{
    size_t        i;
    cs_notify_t  *n;

    err[0] = '\0';

    if (plan->nnotify == 0) {
        return NULL;
    }

    n = calloc(1, sizeof(cs_notify_t));
    if (n == NULL) {
        snprintf(err, errlen, "notify: no memory");
        return NULL;
    }

    n->split = split;
    n->nq = plan->nnotify;
    n->q = calloc(n->nq, sizeof(cs_notify_queue_t));
    n->multi = curl_multi_init();

    if (n->q == NULL || n->multi == NULL) {
        snprintf(err, errlen, "notify: no memory");
        cs_notify_destroy(n);
        return NULL;
    }

    for (i = 0; i < n->nq; i++) {
        n->q[i].t = &plan->notify[i];
        n->q[i].index = i;
        cs_notify_url_origin(plan->notify[i].url, n->q[i].origin,
                             sizeof(n->q[i].origin));
    }

    return n;
}


void
cs_notify_destroy(cs_notify_t *n)
{
    size_t              i;
    cs_notify_queue_t  *q;

    if (n == NULL) {
        return;
    }

    for (i = 0; n->q && i < n->nq; i++) {
        q = &n->q[i];

        if (q->easy) {
            curl_multi_remove_handle(n->multi, q->easy);
            curl_easy_cleanup(q->easy);
            curl_slist_free_all(q->headers);
        }

        while (q->head) {
            cs_notify_pop(q);
        }
    }

    if (n->multi) {
        curl_multi_cleanup(n->multi);
    }

    free(n->q);
    free(n);
}


void
cs_notify_receipt(cs_notify_t *n, const char *receipt)
{
    size_t       i;
    json_t      *r;
    const char  *id, *op;

    if (n == NULL) {
        return;
    }

    r = json_loads(receipt, 0, NULL);

    id = json_string_value(json_object_get(r, "receipt_id"));
    op = json_string_value(json_object_get(r, "operation"));

    for (i = 0; i < n->nq; i++) {
        if (op != NULL && cs_notify_wants(n->q[i].t, op)) {
            cs_notify_enqueue(n, &n->q[i], receipt, id ? id : "", op);
        }
    }

    json_decref(r);
}


static void
cs_notify_enqueue(cs_notify_t *n, cs_notify_queue_t *q, const char *receipt,
    const char *id, const char *op)
{
    cs_notify_msg_t  *m;

    if (n->stats.queued >= CS_NOTIFY_QUEUE_MAX) {
        cs_notify_drop_oldest(n);
    }

    m = calloc(1, sizeof(cs_notify_msg_t));
    if (m == NULL) {
        goto failed;
    }

    m->body = q->t->format == CS_NOTIFY_SLACK ? cs_notify_slack(receipt)
                                              : strdup(receipt);
    if (m->body == NULL) {
        free(m);
        goto failed;
    }

    m->len = strlen(m->body);
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->op, sizeof(m->op), "%s", op);
    m->created = cs_notify_mono();
    m->due = m->created;

    if (q->tail) {
        q->tail->next = m;

    } else {
        q->head = m;
    }

    q->tail = m;
    n->stats.queued++;

    return;

failed:

    n->stats.failed++;
    cs_notify_log("%s: notify[%zu] %s: receipt %s (%s) not sent: no memory",
                  n->split, q->index, q->origin, id, op);
}


/* a full queue: the oldest message not in flight goes */

static void
cs_notify_drop_oldest(cs_notify_t *n)
{
    size_t              i;
    cs_notify_msg_t    *m, *prev, *best, *best_prev;
    cs_notify_queue_t  *q, *best_q;

    best = NULL;
    best_prev = NULL;
    best_q = NULL;

    for (i = 0; i < n->nq; i++) {
        q = &n->q[i];
        prev = NULL;
        m = q->head;

        if (m && q->easy) {
            prev = m;
            m = m->next;
        }

        if (m && (best == NULL || m->created < best->created)) {
            best = m;
            best_prev = prev;
            best_q = q;
        }
    }

    if (best == NULL) {
        return;
    }

    if (best_prev) {
        best_prev->next = best->next;

    } else {
        best_q->head = best->next;
    }

    if (best_q->tail == best) {
        best_q->tail = best_prev;
    }

    cs_notify_log("%s: notify[%zu] %s: the queue is full (%d messages): "
                  "dropped receipt %s (%s), %lds old", n->split,
                  best_q->index, best_q->origin, CS_NOTIFY_QUEUE_MAX,
                  best->id, best->op,
                  (long) ((cs_notify_mono() - best->created) / 1000));

    free(best->body);
    free(best);

    n->stats.queued--;
    n->stats.failed++;
}


void
cs_notify_wait(cs_notify_t *n, int64_t ms, int fd)
{
    int                 running;
    int64_t             now, due;
    struct pollfd       pfd;
    struct curl_waitfd  extra;

    if (ms > CS_NOTIFY_POLL_MS) {
        ms = CS_NOTIFY_POLL_MS;
    }

    if (n == NULL || n->stats.queued == 0) {
        /* a signal ends the wait (EINTR) as well */
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;

        (void) poll(&pfd, fd >= 0, ms > 0 ? (int) ms : 0);
        return;
    }

    now = cs_notify_mono();

    cs_notify_start(n, now);
    curl_multi_perform(n->multi, &running);
    cs_notify_done(n);

    due = cs_notify_next_due(n, now);

    if (due >= 0 && due - now < ms) {
        ms = due - now;
    }

    if (ms <= 0) {
        return;
    }

    extra.fd = fd;
    extra.events = CURL_WAIT_POLLIN;
    extra.revents = 0;

    curl_multi_poll(n->multi, fd >= 0 ? &extra : NULL, fd >= 0, (int) ms,
                    NULL);
}


void
cs_notify_finish(cs_notify_t *n, int64_t ms)
{
    int                 running, busy;
    size_t              i, left;
    int64_t             now, deadline;
    cs_notify_queue_t  *q;

    if (n == NULL || n->stats.queued == 0) {
        return;
    }

    deadline = cs_notify_mono() + ms;

    for ( ;; ) {
        now = cs_notify_mono();

        cs_notify_start(n, now);
        curl_multi_perform(n->multi, &running);
        cs_notify_done(n);

        /* what is in flight or due now; not what waits for a retry */
        busy = 0;

        for (i = 0; i < n->nq; i++) {
            q = &n->q[i];
            busy |= q->easy != NULL || (q->head && q->head->due <= now);
        }

        if (!busy || cs_notify_mono() >= deadline) {
            break;
        }

        curl_multi_poll(n->multi, NULL, 0, 100, NULL);
    }

    left = 0;

    for (i = 0; i < n->nq; i++) {
        q = &n->q[i];

        if (q->easy) {
            curl_multi_remove_handle(n->multi, q->easy);
            curl_easy_cleanup(q->easy);
            curl_slist_free_all(q->headers);
            q->easy = NULL;
            q->headers = NULL;
        }

        while (q->head) {
            cs_notify_pop(q);
            left++;
        }
    }

    if (left) {
        n->stats.failed += left;
        n->stats.queued = 0;

        cs_notify_log("%s: notify: %zu message%s not delivered: the "
                      "sidecar stops", n->split, left, left == 1 ? "" : "s");
    }
}


/* each receiver's first message, when it is due and none is in flight */

static void
cs_notify_start(cs_notify_t *n, int64_t now)
{
    size_t              i;
    cs_notify_msg_t    *m;
    cs_notify_queue_t  *q;

    for (i = 0; i < n->nq; i++) {
        q = &n->q[i];
        m = q->head;

        if (q->easy || m == NULL || m->due > now) {
            continue;
        }

        if (m->attempts) {
            n->stats.retries++;
        }

        m->attempts++;

        if (cs_notify_request(q, m) != 0) {
            cs_notify_result(n, q, CURLE_OUT_OF_MEMORY, now);
            continue;
        }

        if (curl_multi_add_handle(n->multi, q->easy) != CURLM_OK) {
            curl_easy_cleanup(q->easy);
            curl_slist_free_all(q->headers);
            q->easy = NULL;
            q->headers = NULL;
            cs_notify_result(n, q, CURLE_FAILED_INIT, now);
        }
    }
}


static int
cs_notify_request(cs_notify_queue_t *q, cs_notify_msg_t *m)
{
    char                h[128], sig[CS_NOTIFY_SIG_LEN + 1];
    CURL               *e;
    struct curl_slist  *l, *hs;

    e = curl_easy_init();
    if (e == NULL) {
        return -1;
    }

    hs = NULL;

    l = curl_slist_append(hs, "Content-Type: application/json");
    hs = l ? l : hs;

    /* no "Expect: 100-continue" round trip */
    l = l ? curl_slist_append(hs, "Expect:") : NULL;
    hs = l ? l : hs;

    if (l) {
        snprintf(h, sizeof(h), "X-Canary-Event: %s", m->op);
        l = curl_slist_append(hs, h);
        hs = l ? l : hs;
    }

    if (l) {
        snprintf(h, sizeof(h), "X-Canary-Receipt-Id: %s", m->id);
        l = curl_slist_append(hs, h);
        hs = l ? l : hs;
    }

    if (l && q->t->secret) {
        cs_notify_signature(q->t->secret, q->t->secret_len, m->body, m->len,
                            sig);
        snprintf(h, sizeof(h), "X-Canary-Signature: %s", sig);
        l = curl_slist_append(hs, h);
        hs = l ? l : hs;
    }

    if (l == NULL) {
        curl_slist_free_all(hs);
        curl_easy_cleanup(e);
        return -1;
    }

    curl_easy_setopt(e, CURLOPT_URL, q->t->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, m->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) m->len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *) q);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, cs_notify_discard);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) CS_NOTIFY_CONNECT_MS);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) CS_NOTIFY_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
    /*
     * a request that times out while its name is still being resolved:
     * libcurl would wait for its resolver thread (getaddrinfo(), as long
     * as the DNS server takes) in our one thread; the thread is left to
     * end and clean up by itself instead
     */
    curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
    curl_easy_setopt(e, CURLOPT_USERAGENT, "canary-sidecar");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS,
                     (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif

    q->easy = e;
    q->headers = hs;

    return 0;
}


static void
cs_notify_done(cs_notify_t *n)
{
    int                 left;
    char               *p;
    CURLMsg            *msg;
    cs_notify_queue_t  *q;

    while ((msg = curl_multi_info_read(n->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        p = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
        q = (cs_notify_queue_t *) p;

        if (q == NULL || q->easy != msg->easy_handle) {
            continue;
        }

        cs_notify_result(n, q, msg->data.result, cs_notify_mono());
    }
}


/* the head's attempt is over: sent, retried later, or given up */

static void
cs_notify_result(cs_notify_t *n, cs_notify_queue_t *q, CURLcode result,
    int64_t now)
{
    long              code;
    int64_t           next;
    cs_notify_msg_t  *m;

    m = q->head;
    code = 0;

    if (q->easy) {
        if (result == CURLE_OK) {
            curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &code);
        }

        curl_multi_remove_handle(n->multi, q->easy);
        curl_easy_cleanup(q->easy);
        curl_slist_free_all(q->headers);
        q->easy = NULL;
        q->headers = NULL;
    }

    if (result == CURLE_OK && code >= 200 && code < 300) {
        if (q->failing || m->attempts > 1) {
            cs_notify_log("%s: notify[%zu] %s: delivered again: receipt %s "
                          "(%s) at attempt %u, %.1fs after the event",
                          n->split, q->index, q->origin, m->id, m->op,
                          m->attempts, (now - m->created) / 1000.0);
        }

        q->failing = 0;
        n->stats.sent++;
        n->stats.queued--;
        cs_notify_pop(q);

        return;
    }

    if (result == CURLE_OK) {
        snprintf(m->why, sizeof(m->why), "HTTP %ld", code);

    } else {
        snprintf(m->why, sizeof(m->why), "%s", curl_easy_strerror(result));
    }

    q->failing = 1;
    next = cs_notify_retry_at(m->created, now, m->attempts);

    if (next < 0) {
        cs_notify_log("%s: notify[%zu] %s: gave up on receipt %s (%s) "
                      "after %u attempt%s over %lds: %s", n->split,
                      q->index, q->origin, m->id, m->op, m->attempts,
                      m->attempts == 1 ? "" : "s",
                      (long) ((now - m->created) / 1000), m->why);

        n->stats.failed++;
        n->stats.queued--;
        cs_notify_pop(q);

        return;
    }

    if (!m->logged) {
        cs_notify_log("%s: notify[%zu] %s: receipt %s (%s) not delivered: "
                      "%s; retrying for up to %ds", n->split, q->index,
                      q->origin, m->id, m->op, m->why,
                      CS_NOTIFY_GIVE_UP_MS / 1000);
        m->logged = 1;
    }

    m->due = next;
}


static void
cs_notify_pop(cs_notify_queue_t *q)
{
    cs_notify_msg_t  *m;

    m = q->head;
    q->head = m->next;

    if (q->head == NULL) {
        q->tail = NULL;
    }

    free(m->body);
    free(m);
}


/* the earliest retry waiting, or -1 */

static int64_t
cs_notify_next_due(cs_notify_t *n, int64_t now)
{
    size_t    i;
    int64_t   due;

    due = -1;

    for (i = 0; i < n->nq; i++) {
        if (n->q[i].easy || n->q[i].head == NULL) {
            continue;
        }

        if (due < 0 || n->q[i].head->due < due) {
            due = n->q[i].head->due < now ? now : n->q[i].head->due;
        }
    }

    return due;
}


static size_t
cs_notify_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void) ptr;
    (void) userdata;

    return size * nmemb;
}


void
cs_notify_stats(const cs_notify_t *n, cs_notify_stats_t *st)
{
    if (n == NULL) {
        memset(st, 0, sizeof(cs_notify_stats_t));
        return;
    }

    *st = n->stats;
}


char *
cs_notify_stats_format(const cs_notify_stats_t *st, char *buf, size_t size)
{
    snprintf(buf, size, "{\"sent\":%llu,\"failed\":%llu,\"retries\":%llu,"
             "\"queued\":%llu}", (unsigned long long) st->sent,
             (unsigned long long) st->failed,
             (unsigned long long) st->retries,
             (unsigned long long) st->queued);

    return buf;
}


/* 1s, 2s, 4s, ... up to 30s between attempts */

int64_t
cs_notify_backoff(unsigned attempt)
{
    int64_t  ms;

    if (attempt <= 1) {
        return 0;
    }

    if (attempt > 20) {
        return CS_NOTIFY_BACKOFF_MAX_MS;
    }

    ms = (int64_t) CS_NOTIFY_BACKOFF_MS << (attempt - 2);

    return ms < CS_NOTIFY_BACKOFF_MAX_MS ? ms : CS_NOTIFY_BACKOFF_MAX_MS;
}


int64_t
cs_notify_retry_at(int64_t created, int64_t now, unsigned attempts)
{
    int64_t  next;

    next = now + cs_notify_backoff(attempts + 1);

    return next - created > CS_NOTIFY_GIVE_UP_MS ? -1 : next;
}


int
cs_notify_wants(const cs_notify_target_t *t, const char *operation)
{
    size_t  i;

    if (t->events == NULL) {
        return 1;
    }

    for (i = 0; i < t->nevents; i++) {
        if (strcmp(t->events[i], operation) == 0) {
            return 1;
        }
    }

    return 0;
}


void
cs_notify_signature(const unsigned char *key, size_t keylen,
    const char *body, size_t len, char out[CS_NOTIFY_SIG_LEN + 1])
{
    size_t         i;
    unsigned int   n;
    unsigned char  mac[EVP_MAX_MD_SIZE];

    n = 0;

    if (HMAC(EVP_sha256(), key, (int) keylen, (const unsigned char *) body,
             len, mac, &n) == NULL)
    {
        n = 0;
    }

    memcpy(out, "sha256=", 7);

    for (i = 0; i < 32; i++) {
        out[7 + 2 * i] = i < n ? "0123456789abcdef"[mac[i] >> 4] : '0';
        out[8 + 2 * i] = i < n ? "0123456789abcdef"[mac[i] & 0x0f] : '0';
    }

    out[CS_NOTIFY_SIG_LEN] = '\0';
}


/*
 * Slack: {"text": "..."} with the decision, the split, the release and
 * the stage when the receipt has them, the weights, the failed checks
 * and the reason.  Slack's escapes (& < >) in the text.
 */

char *
cs_notify_slack(const char *receipt)
{
    char             *out;
    json_t           *r, *v, *from, *to, *msg;
    const char       *s, *fs, *ts;
    cs_notify_buf_t   b;

    r = json_loads(receipt, 0, NULL);

    if (!json_is_object(r)) {
        json_decref(r);
        return NULL;
    }

    memset(&b, 0, sizeof(cs_notify_buf_t));

    cs_notify_add(&b, "*canary ");
    cs_notify_add_text(&b, json_string_value(json_object_get(r, "split")));
    cs_notify_add(&b, "*: ");
    cs_notify_add_text(&b,
                       json_string_value(json_object_get(r, "operation")));

    /* release: {"stable": ..., "canary": ...}, or a string */
    v = json_object_get(r, "release");

    if (json_is_object(v)) {
        s = json_string_value(json_object_get(v, "canary"));
        fs = json_string_value(json_object_get(v, "stable"));

        if (s || fs) {
            cs_notify_add(&b, "\nrelease: ");
            cs_notify_add_text(&b, s ? s : "?");
            cs_notify_add(&b, " (canary), ");
            cs_notify_add_text(&b, fs ? fs : "?");
            cs_notify_add(&b, " (stable)");
        }

    } else if (json_is_string(v)) {
        cs_notify_add(&b, "\nrelease: ");
        cs_notify_add_text(&b, json_string_value(v));
    }

    /* stage: where it went from and to when it moved, else the
     * receipt's "stage" (a name, or an object with one) */
    v = json_object_get(r, "stage");
    s = json_is_object(v) ? json_string_value(json_object_get(v, "name"))
                          : json_string_value(v);
    fs = json_string_value(json_object_get(r, "from_stage"));
    ts = json_string_value(json_object_get(r, "to_stage"));

    if (fs && ts && strcmp(fs, ts) != 0) {
        cs_notify_add(&b, "\nstage: ");
        cs_notify_add_text(&b, fs);
        cs_notify_add(&b, " -> ");
        cs_notify_add_text(&b, ts);

    } else if (s || ts) {
        cs_notify_add(&b, "\nstage: ");
        cs_notify_add_text(&b, s ? s : ts);
    }

    from = json_object_get(r, "from_weight");
    to = json_object_get(r, "to_weight");

    if (json_is_number(to)) {
        cs_notify_add(&b, "\nweight: ");

        if (json_is_number(from) && json_number_value(from)
                                    != json_number_value(to))
        {
            cs_notify_add_number(&b, from);
            cs_notify_add(&b, "%% -> ");
        }

        cs_notify_add_number(&b, to);
        cs_notify_add(&b, "%%");
    }

    cs_notify_failed_checks(&b, r);

    s = json_string_value(json_object_get(r, "reason"));

    if (s) {
        cs_notify_add(&b, "\nreason: ");
        cs_notify_add_text(&b, s);
    }

    s = json_string_value(json_object_get(r, "receipt_id"));

    if (s) {
        cs_notify_add(&b, "\nreceipt: ");
        cs_notify_add_text(&b, s);
    }

    json_decref(r);

    if (b.failed || b.p == NULL) {
        free(b.p);
        return NULL;
    }

    msg = json_pack("{s:s}", "text", b.p);
    free(b.p);

    if (msg == NULL) {
        return NULL;
    }

    out = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);

    return out;
}


/* the receipt's failed_checks when it has them, else its FAIL checks */

static int
cs_notify_failed_checks(cs_notify_buf_t *b, json_t *r)
{
    int          n;
    size_t       i;
    json_t      *v, *c;
    const char  *name, *s;

    n = 0;
    v = json_object_get(r, "failed_checks");

    if (json_is_array(v)) {
        json_array_foreach(v, i, c) {
            name = json_string_value(c);

            if (name == NULL && json_is_object(c)) {
                name = json_string_value(json_object_get(c, "check"));

                if (name == NULL) {
                    name = json_string_value(json_object_get(c, "name"));
                }
            }

            if (name == NULL) {
                continue;
            }

            cs_notify_add(b, n++ ? ", " : "\nfailed checks: ");
            cs_notify_add_text(b, name);
        }

        return n;
    }

    v = json_object_get(r, "sli_checks");

    json_object_foreach(v, name, c) {
        s = json_string_value(json_object_get(c, "status"));

        if (s == NULL || strcmp(s, "FAIL") != 0) {
            continue;
        }

        cs_notify_add(b, n++ ? ", " : "\nfailed checks: ");
        cs_notify_add_text(b, name);

        if (json_is_number(json_object_get(c, "canary"))
            && json_is_number(json_object_get(c, "threshold")))
        {
            cs_notify_add(b, " (canary ");
            cs_notify_add_number(b, json_object_get(c, "canary"));
            cs_notify_add(b, ", threshold ");
            cs_notify_add_number(b, json_object_get(c, "threshold"));
            cs_notify_add(b, ")");
        }
    }

    return n;
}


static void
cs_notify_add(cs_notify_buf_t *b, const char *fmt, ...)
{
    int      need;
    char    *p;
    size_t   cap;
    va_list  args;

    if (b->failed) {
        return;
    }

    va_start(args, fmt);
    need = vsnprintf(NULL, 0, fmt, args);
    va_end(args);

    if (need < 0) {
        b->failed = 1;
        return;
    }

    if (b->len + need + 1 > b->cap) {
        cap = b->cap ? b->cap : 256;

        while (cap < b->len + need + 1) {
            cap *= 2;
        }

        p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }

        b->p = p;
        b->cap = cap;
    }

    va_start(args, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, args);
    va_end(args);

    b->len += need;
}


/* Slack's control characters escaped: & < > */

static void
cs_notify_add_text(cs_notify_buf_t *b, const char *s)
{
    size_t  k;

    if (s == NULL) {
        cs_notify_add(b, "?");
        return;
    }

    while (*s) {
        k = strcspn(s, "&<>");

        if (k) {
            cs_notify_add(b, "%.*s", (int) k, s);
            s += k;
        }

        switch (*s) {
        case '&':
            cs_notify_add(b, "&amp;");
            break;
        case '<':
            cs_notify_add(b, "&lt;");
            break;
        case '>':
            cs_notify_add(b, "&gt;");
            break;
        default:
            return;
        }

        s++;
    }
}


static void
cs_notify_add_number(cs_notify_buf_t *b, json_t *v)
{
    cs_notify_add(b, "%g", json_number_value(v));
}


char *
cs_notify_url_origin(const char *url, char *buf, size_t size)
{
    size_t       k, slen;
    const char  *p, *at;

    p = strstr(url, "://");
    slen = p ? (size_t) (p + 3 - url) : 0;
    p = url + slen;

    k = strcspn(p, "/?#");

    /* no user:password@ either */
    for (at = p + k; at > p && at[-1] != '@'; at--) { /* void */ }

    if (at > p) {
        k -= at - p;
        p = at;
    }

    snprintf(buf, size, "%.*s%.*s", (int) slen, url, (int) k, p);

    return buf;
}


static void
cs_notify_log(const char *fmt, ...)
{
    char             ts[32];
    va_list          args;
    struct timespec  now;

    clock_gettime(CLOCK_REALTIME, &now);

    fprintf(stderr, "%s ", cs_iso8601((int64_t) now.tv_sec * 1000, ts,
                                      sizeof(ts)));

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fputc('\n', stderr);
}


static int64_t
cs_notify_mono(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
