
/*
 * canary-sidecar: walks a rollout through its stages and rolls it back
 * on its own.  Each interval the leader (one sidecar of several, by a
 * Redis lease) reads the split and its own state from Redis, reads
 * the fleet (the records each nginx writes to Redis, fleet.c, or
 * /canary_status of every --status nginx), checks that every nginx
 * applies the split's generation (lag.c), decides (analysis.c) and
 * writes the decision as one MULTI/EXEC with its receipt.
 *
 *   canary-sidecar --redis HOST:PORT [--redis-password-file F]
 *                  [--redis-db N] [--prefix canary:] --split NAME
 *                  [--status URL ...]
 *                  [--plan FILE] [--receipts FILE] [--id NAME]
 *                  [--once] [--dry-run] [--listen ADDR:PORT]
 *                  [--evidence-dir DIR]
 */


#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "plan.h"
#include "fetch.h"
#include "nodes.h"
#include "fleet.h"
#include "lag.h"
#include "analysis.h"
#include "redis.h"
#include "receipts.h"
#include "notify.h"
#include "report.h"
#include "listen.h"
#include "snapshot.h"

#include "ngx_http_canary_parse.h"


#define CS_FETCH_TIMEOUT    1000        /* ms, connect and total */
#define CS_LEASE_MIN        3000        /* ms */
#define CS_REPEAT_LOG       30000       /* ms between repeats of a line */
#define CS_NOTIFY_STOP_MS   2000        /* deliveries at exit, at most */


typedef struct {
    char               *redis;
    char               *sentinel;           /* or these two */
    char               *master;
    char               *password_file;
    char               *db;
    char               *prefix;
    char               *split;
    char              **status;
    size_t              nstatus;
    char               *plan_file;
    char               *receipts;
    char               *id;
    int                 once;
    int                 dry_run;
    char               *listen;
    char               *evidence_dir;
    char               *log_every;
} cs_options_t;


typedef struct {
    cs_options_t        opt;
    cs_plan_t           plan;
    cs_redis_t          redis;
    int                 fleet_mode;         /* no --status: the nodes that
                                               report to Redis */
    char              **names;              /* this step's nginx: the
                                               --status URLs, or the
                                               nodes (live ones first) */
    size_t              n;
    size_t              nlive;
    size_t              cap;                /* of the arrays below */
    char              **urls;
    cs_node_t          *nodes;              /* each nginx's last reading */
    cs_window_t        *deltas;             /* and what is new, 2 each */
    cs_metrics_t       *readings;
    int                *answered;
    unsigned            window;
    int                 curl;
    char                id[128];
    long                db;
    char                last_error[512];
    int64_t             last_error_at;
    char                holder[128];
    int                 was_leader;
    char                idle[2048];
    char                fleet[1024];
    int                 fleet_seen;         /* an nginx answered for the
                                               split: Redis may be
                                               written */
    cs_rollout_t        memory;             /* the rollout as this leader
                                               last read or wrote it; new:
                                               none */
    cs_fleet_window_t  *steps;              /* fleet: the short window */
    cs_fleet_logged_t   bad;                /* fleet: problems said */
    char              **live;               /* fleet: the live nodes last
                                               step, sorted */
    size_t              nlive_last;
    cs_lag_t            lag;
    char                lagging[384];
    char                lag_held[384];
    char                lag_said[384];      /* lagging as last logged */
    cs_notify_t        *notify;             /* the plan's receivers */
    cs_report_t         report;             /* what --listen serves, as
                                               each step leaves it */
    cs_listen_t        *listen;
    cs_notify_counts_t  notified;           /* notifications sent and
                                               failed */

    /* evidence snapshots (snapshot.c) */
    cs_stage_nodes_t    stage_nodes;        /* per nginx, the stage */
    const cs_rollout_t *decided_on;         /* this step's rollout */
    int                 evidence_dir_failed;    /* said once */

    /* the log: decisions when they change, else a summary */
    int64_t             log_every;          /* ms; 0: every step */
    char                said[1024];         /* what the last decision
                                               line said, numbers out */
    int64_t             said_at;            /* mono ms */
    char                verdicts[CS_CHECKS + 1];    /* as last said */
    unsigned            quiet;              /* steps not logged since */
    int                 redis_down;         /* said unreachable */
    int                 lost_said;          /* Redis lost the state: said
                                               (a dry run, once) */
} cs_sidecar_t;


static int cs_init(cs_sidecar_t *sc, int argc, char **argv);
static int cs_run(cs_sidecar_t *sc);
static void cs_cleanup(cs_sidecar_t *sc);
static int cs_options(cs_options_t *opt, int argc, char **argv);
static void cs_usage(FILE *f);
static int cs_check_options(cs_sidecar_t *sc, char **password);
static char *cs_read_password(const char *path);
static int cs_step(cs_sidecar_t *sc);
static int cs_fleet_check(cs_sidecar_t *sc);
static int cs_remember(cs_sidecar_t *sc, const cs_split_view_t *view,
    cs_rollout_t *ro);
static int cs_status_urls(cs_sidecar_t *sc, unsigned window);
static int cs_grow(cs_sidecar_t *sc, size_t n);
static void cs_names_free(cs_sidecar_t *sc);
static long cs_fleet_read(cs_sidecar_t *sc, const char *saved, int live);
static void cs_fleet_changes(cs_sidecar_t *sc);
static void cs_fleet_forget(cs_sidecar_t *sc, int64_t now);
static void cs_lag_report(cs_sidecar_t *sc, const cs_split_view_t *view,
    int64_t now, cs_metrics_t *m);
static char *cs_printable(const char *s, size_t len, char *buf,
    size_t size);
static int cs_strcmp_p(const void *a, const void *b);
static int cs_act(cs_sidecar_t *sc, cs_decision_t *d,
    const cs_split_view_t *view, int64_t now, double decision_ms,
    char *line, size_t size);
static int cs_notify_state(cs_sidecar_t *sc);
static void cs_log_decision(cs_sidecar_t *sc, const cs_rollout_t *ro,
    const cs_decision_t *d, int wrote, int64_t now, const char *line);
static void cs_log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void cs_log_error(cs_sidecar_t *sc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int64_t cs_wall_ms(void);
static int64_t cs_mono_ms(void);
static double cs_mono_fms(void);
static void cs_wait(cs_sidecar_t *sc, int64_t deadline);
static void cs_on_signal(int signo);
static void cs_redis_failed(cs_sidecar_t *sc);
static void cs_report_read_receipts(cs_sidecar_t *sc, uint64_t generation);


static volatile sig_atomic_t  cs_stop;


int
main(int argc, char **argv)
{
    int           rc;
    cs_sidecar_t  sc;

    memset(&sc, 0, sizeof(cs_sidecar_t));
    cs_rollout_init(&sc.memory);

    rc = cs_init(&sc, argc, argv);

    if (rc < 0) {
        rc = cs_run(&sc);
    }

    cs_cleanup(&sc);

    return rc;
}


/* options, plan, Redis address: -1 to go on, else the exit code */

static int
cs_init(cs_sidecar_t *sc, int argc, char **argv)
{
    int               rc;
    char              err[512], a[24], b[24], c[24], *password;
    size_t            i;
    int64_t           lease;
    struct stat       st;
    struct sigaction  sa;

    rc = cs_options(&sc->opt, argc, argv);
    if (rc >= 0) {
        return rc;
    }

    password = NULL;

    if (cs_check_options(sc, &password) != 0) {
        return 2;
    }

    rc = -1;

    /* the plan is checked before anything touches Redis */
    if (sc->opt.plan_file) {
        if (cs_plan_load(&sc->plan, sc->opt.plan_file, err, sizeof(err))
            != 0)
        {
            fprintf(stderr, "canary-sidecar: bad plan: %s\n", err);
            rc = 2;
            goto done;
        }

    } else if (cs_plan_default(&sc->plan) != 0) {
        fprintf(stderr, "canary-sidecar: no memory\n");
        rc = 1;
        goto done;
    }

    sc->fleet_mode = sc->opt.nstatus == 0;

    if (!sc->fleet_mode) {
        sc->names = sc->opt.status;
        sc->n = sc->opt.nstatus;
        sc->nlive = sc->n;
        sc->urls = calloc(sc->opt.nstatus, sizeof(char *));
    }

    sc->steps = calloc(1, sizeof(cs_fleet_window_t));

    if ((!sc->fleet_mode && sc->urls == NULL) || sc->steps == NULL
        || cs_grow(sc, sc->opt.nstatus ? sc->opt.nstatus : 16) != 0)
    {
        fprintf(stderr, "canary-sidecar: no memory\n");
        rc = 1;
        goto done;
    }

    lease = 3 * sc->plan.interval;
    if (lease < CS_LEASE_MIN) {
        lease = CS_LEASE_MIN;
    }

    if (cs_redis_init(&sc->redis, sc->opt.redis, password, sc->opt.prefix,
                      sc->opt.split, sc->id, lease, err, sizeof(err)) != 0
        || (sc->opt.sentinel
            && cs_redis_sentinels(&sc->redis, sc->opt.sentinel,
                                  sc->opt.master, err, sizeof(err)) != 0))
    {
        fprintf(stderr, "canary-sidecar: %s\n", err);
        rc = 2;
        goto done;
    }

    sc->redis.db = sc->db;

    if (cs_report_init(&sc->report, sc->opt.split, sc->id, &sc->plan,
                       sc->opt.dry_run, &sc->notified)
        != 0)
    {
        fprintf(stderr, "canary-sidecar: no memory\n");
        rc = 1;
        goto done;
    }

    if (sc->opt.listen) {
        sc->listen = cs_listen_start(sc->opt.listen, &sc->report, err,
                                     sizeof(err));
        if (sc->listen == NULL) {
            fprintf(stderr, "canary-sidecar: %s\n", err);
            rc = 2;
            goto done;
        }

        cs_log("%s: serving /metrics, /healthz, /readyz and / on %s",
               sc->opt.split, sc->opt.listen);
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "canary-sidecar: cannot initialize libcurl\n");
        rc = 1;
        goto done;
    }

    sc->curl = 1;

    sc->notify = cs_notify_create(&sc->plan, sc->opt.split, err,
                                  sizeof(err));

    if (sc->notify == NULL && err[0]) {
        fprintf(stderr, "canary-sidecar: %s\n", err);
        rc = 1;
        goto done;
    }

    memset(&sa, 0, sizeof(struct sigaction));
    sa.sa_handler = cs_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (sc->fleet_mode) {
        snprintf(err, sizeof(err), "the fleet that reports to %s",
                 sc->redis.nodes_key);

    } else {
        snprintf(err, sizeof(err), "%zu nginx", sc->opt.nstatus);
    }

    cs_log("%s: canary-sidecar %s%s: redis %s key %s, %s, plan %s "
           "(%zu stage%s), interval %s, window %s, violation_for %s, "
           "on_violation %s; %s%s%s", sc->opt.split, sc->id,
           sc->opt.dry_run ? " (dry run: writes nothing)" : "",
           sc->opt.redis ? sc->opt.redis : sc->opt.master, sc->redis.key,
           err,
           sc->opt.plan_file ? sc->opt.plan_file : "default",
           sc->plan.nstages, sc->plan.nstages == 1 ? "" : "s",
           cs_duration_said(sc->plan.said.interval, sc->plan.interval, a,
                            sizeof(a)),
           cs_duration_said(sc->plan.said.window, sc->plan.window, b,
                            sizeof(b)),
           cs_duration_said(sc->plan.said.violation_for,
                            sc->plan.violation_for, c, sizeof(c)),
           sc->plan.on_violation == CS_ON_VIOLATION_PAUSE
           ? "pause" : "rollback",
           sc->log_every ? "a summary line every " : "a line every interval",
           sc->log_every ? (sc->opt.log_every ? sc->opt.log_every : "60s")
                         : "",
           sc->log_every ? " while nothing changes" : "");

    for (i = 0; i < sc->plan.nnotify; i++) {
        cs_log("%s: notify[%zu]: %s, %s%s, %s", sc->opt.split, i,
               cs_notify_url_origin(sc->plan.notify[i].url, err,
                                    sizeof(err)),
               sc->plan.notify[i].format == CS_NOTIFY_SLACK ? "slack"
                                                            : "json",
               sc->plan.notify[i].secret ? " signed" : "",
               sc->plan.notify[i].events ? "some events" : "every event");
    }

    /* a shadow stage is judged on its shadow's comparisons */
    if (sc->plan.stages[0].weight == 0 && sc->plan.npins == 0
        && !cs_plan_cohorts_route(&sc->plan, 0)
        && !(sc->plan.stages[0].shadow
             && cs_plan_stage_slo(&sc->plan, 0)->shadow_match_min > 0))
    {
        cs_log("%s: warning: the first stage, %s, has weight 0 and the plan "
               "pins no tenant: only tenants pinned with canary-ctl and "
               "requests with an override (header, cookie) reach the "
               "canary there, and without them it cannot be judged",
               sc->opt.split, sc->plan.stages[0].name);
    }

    /* a typo in --evidence-dir is told now, not at the first weight
     * change, hours later; the snapshots go to Redis either way */
    if (sc->opt.evidence_dir) {
        err[0] = '\0';

        if (stat(sc->opt.evidence_dir, &st) != 0
            || (S_ISDIR(st.st_mode)
                && access(sc->opt.evidence_dir, W_OK | X_OK) != 0))
        {
            snprintf(err, sizeof(err), "%s", strerror(errno));

        } else if (!S_ISDIR(st.st_mode)) {
            snprintf(err, sizeof(err), "not a directory");
        }

        if (err[0]) {
            cs_log("%s: --evidence-dir: %s: %s; snapshots stay in Redis only "
                   "until it can be written (said once)", sc->opt.split,
                   sc->opt.evidence_dir, err);
            sc->evidence_dir_failed = 1;
        }
    }

done:

    if (password) {
        memset(password, 0, strlen(password));
        free(password);
    }

    return rc;
}


/* a step each interval until a signal (or once); the exit code */

static int
cs_run(cs_sidecar_t *sc)
{
    int      failed;
    int64_t  start;

    failed = 0;

    while (!cs_stop) {
        start = cs_mono_ms();

        failed = cs_step(sc) != 0;

        /* what --listen serves until the next step */
        sc->report.steps++;
        sc->report.turned = start;
        sc->report.step_at = cs_wall_ms();
        sc->report.step_ms = (double) (cs_mono_ms() - start);
        sc->report.leader = sc->redis.leader;
        snprintf(sc->report.holder, sizeof(sc->report.holder), "%s",
                 sc->holder);

        if (sc->opt.once) {
            break;
        }

        cs_wait(sc, start + sc->plan.interval);
    }

    cs_notify_finish(sc->notify, sc->opt.once ? CS_NOTIFY_TIMEOUT_MS
                                              : CS_NOTIFY_STOP_MS);

    if (sc->redis.leader) {
        cs_redis_release(&sc->redis);
        cs_log("%s: %s gave up the lease", sc->opt.split, sc->id);
    }

    if (cs_stop) {
        cs_log("%s: %s stopped", sc->opt.split, sc->id);
    }

    return sc->opt.once && failed ? 1 : 0;
}


static void
cs_cleanup(cs_sidecar_t *sc)
{
    size_t  i;

    cs_notify_destroy(sc->notify);
    cs_listen_stop(sc->listen);
    cs_report_free(&sc->report);
    cs_redis_free(&sc->redis);
    cs_plan_free(&sc->plan);

    for (i = 0; sc->urls && i < sc->opt.nstatus; i++) {
        free(sc->urls[i]);
    }

    if (sc->fleet_mode) {
        cs_names_free(sc);
        free(sc->names);
    }

    for (i = 0; i < sc->nlive_last; i++) {
        free(sc->live[i]);
    }

    free(sc->live);
    free(sc->steps);
    cs_lag_free(&sc->lag);
    cs_fleet_logged_free(&sc->bad);
    free(sc->urls);
    free(sc->nodes);
    free(sc->readings);
    free(sc->answered);
    free(sc->deltas);
    free(sc->opt.status);
    cs_stage_nodes_free(&sc->stage_nodes);

    if (sc->curl) {
        curl_global_cleanup();
    }
}


/* -1: go on; otherwise the exit code */

static int
cs_options(cs_options_t *opt, int argc, char **argv)
{
    int    c;
    char **s;

    static const struct option  longopts[] = {
        { "redis",               required_argument, NULL, 'r' },
        { "redis-sentinel",      required_argument, NULL, 'S' },
        { "redis-master",        required_argument, NULL, 'M' },
        { "redis-password-file", required_argument, NULL, 'P' },
        { "redis-db",            required_argument, NULL, 'd' },
        { "prefix",              required_argument, NULL, 'x' },
        { "split",               required_argument, NULL, 's' },
        { "status",              required_argument, NULL, 'u' },
        { "plan",                required_argument, NULL, 'p' },
        { "receipts",            required_argument, NULL, 'R' },
        { "id",                  required_argument, NULL, 'i' },
        { "once",                no_argument,       NULL, 'o' },
        { "dry-run",             no_argument,       NULL, 'n' },
        { "listen",              required_argument, NULL, 'L' },
        { "evidence-dir",        required_argument, NULL, 'E' },
        { "log-every",           required_argument, NULL, 'l' },
        { "help",                no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    opt->prefix = "canary:";

    opterr = 0;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            opt->redis = optarg;
            break;
        case 'S':
            opt->sentinel = optarg;
            break;
        case 'M':
            opt->master = optarg;
            break;
        case 'P':
            opt->password_file = optarg;
            break;
        case 'd':
            opt->db = optarg;
            break;
        case 'x':
            opt->prefix = optarg;
            break;
        case 's':
            /*
             * canary-sidecar@api.service passes --split api before the
             * env file's options: another --split there would silently
             * roll out that split instead
             */
            if (opt->split != NULL && strcmp(opt->split, optarg) != 0) {
                fprintf(stderr, "canary-sidecar: --split %s and --split "
                        "%s: one split per sidecar\n", opt->split, optarg);
                return 2;
            }

            opt->split = optarg;
            break;
        case 'u':
            s = realloc(opt->status, (opt->nstatus + 1) * sizeof(char *));
            if (s == NULL) {
                fprintf(stderr, "canary-sidecar: no memory\n");
                return 1;
            }

            opt->status = s;
            opt->status[opt->nstatus++] = optarg;
            break;
        case 'p':
            opt->plan_file = optarg;
            break;
        case 'R':
            opt->receipts = optarg;
            break;
        case 'i':
            opt->id = optarg;
            break;
        case 'o':
            opt->once = 1;
            break;
        case 'n':
            opt->dry_run = 1;
            break;
        case 'L':
            opt->listen = optarg;
            break;
        case 'E':
            opt->evidence_dir = optarg;
            break;
        case 'l':
            opt->log_every = optarg;
            break;
        case 'h':
            cs_usage(stdout);
            return 0;
        default:
            if (optopt) {
                fprintf(stderr, "canary-sidecar: option %s needs a "
                        "value\n", argv[optind - 1]);

            } else {
                fprintf(stderr, "canary-sidecar: unknown option %s\n",
                        argv[optind - 1]);
            }

            cs_usage(stderr);
            return 2;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "canary-sidecar: unexpected argument \"%s\"\n",
                argv[optind]);
        cs_usage(stderr);
        return 2;
    }

    return -1;
}


static void
cs_usage(FILE *f)
{
    fprintf(f,
"usage: canary-sidecar --redis HOST:PORT | --redis-sentinel HOST:PORT[,...]\n"
"                      --redis-master NAME [--redis-password-file F]\n"
"                      [--redis-db N] [--prefix canary:] --split NAME\n"
"                      [--status URL ...] [--plan FILE]\n"
"                      [--receipts FILE] [--id NAME] [--once] [--dry-run]\n"
"                      [--listen ADDR:PORT]\n"
"                      [--evidence-dir DIR] [--log-every DURATION]\n"
"\n"
"Walks the split's rollout through the plan's stages, comparing canary\n"
"with stable across the fleet, and rolls back on its own when the\n"
"canary breaks the plan's SLOs.  The fleet: the nginx that report the\n"
"split to Redis (canary_redis ... node=NAME), or with --status, those\n"
"nginx' /canary_status pages.\n"
"\n"
"  --redis HOST:PORT      Redis shared with nginx (or unix:PATH)\n"
"  --redis-sentinel HOST:PORT[,HOST:PORT...]\n"
"                         instead of --redis: the sentinels that give the\n"
"  --redis-master NAME    address of the master NAME (and any new one)\n"
"  --redis-password-file  file whose first line is the Redis password\n"
"  --redis-db N           Redis database, as canary_redis db= (0)\n"
"  --prefix P             key prefix, as canary_redis prefix= (canary:)\n"
"  --split NAME           the canary_split to roll out\n"
"  --status URL           a canary_status location, once per nginx;\n"
"                         without it, the nodes that report to Redis\n"
"  --plan FILE            JSON plan; default: canary (pinned tenants),\n"
"                         5, 20, 50, 100%% (manual)\n"
"  --receipts FILE        also append each receipt to FILE, one a line\n"
"  --id NAME              this sidecar in the lease and receipts\n"
"                         (default HOSTNAME:PID)\n"
"  --once                 one step, then exit (1 if it could not decide)\n"
"  --dry-run              decide and log, write nothing\n"
"  --listen ADDR:PORT     serve /metrics, /healthz, /readyz and a rollout\n"
"                         page on / (e.g. 127.0.0.1:9465); off by default\n"
"  --evidence-dir DIR     also write each weight change's evidence\n"
"                         snapshot to DIR/RECEIPT_ID.json.z (zlib)\n"
"  --log-every DURATION   a summary line so often while nothing changes\n"
"                         (60s); decisions and changes are logged when\n"
"                         they happen; 0: a line every interval\n"
"\n"
"Exit status 2: bad options or plan (before Redis is touched).\n");
}


static int
cs_check_options(cs_sidecar_t *sc, char **password)
{
    size_t         i, k, len;
    char           host[64], *end;
    const char    *s;
    cs_options_t  *opt;

    opt = &sc->opt;

    if ((opt->sentinel != NULL) != (opt->master != NULL)
        || (opt->sentinel && opt->redis))
    {
        fprintf(stderr, "canary-sidecar: --redis-sentinel and "
                "--redis-master go together, instead of --redis\n");
        cs_usage(stderr);
        return -1;
    }

    if (opt->master && (opt->master[0] == '\0' || strlen(opt->master) > 63)) {
        fprintf(stderr, "canary-sidecar: invalid --redis-master \"%s\": 1 "
                "to 63 bytes\n", opt->master);
        return -1;
    }

    if ((opt->redis == NULL && opt->sentinel == NULL) || opt->split == NULL) {
        fprintf(stderr, "canary-sidecar: --redis (or --redis-sentinel) and "
                "--split are required\n");
        cs_usage(stderr);
        return -1;
    }

    /* the names canary-ctl and the module accept */
    len = strlen(opt->split);

    for (i = 0; i < len; i++) {
        s = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789._:-", opt->split[i]);
        if (s == NULL) {
            break;
        }
    }

    if (len == 0 || len > NGX_HTTP_CANARY_NAME_LEN - 1 || i < len) {
        fprintf(stderr, "canary-sidecar: invalid --split \"%s\": 1 to %d "
                "of A-Z a-z 0-9 . _ : -\n", opt->split,
                NGX_HTTP_CANARY_NAME_LEN - 1);
        return -1;
    }

    for (i = 0; opt->prefix[i]; i++) {
        if (opt->prefix[i] <= 0x20 || opt->prefix[i] >= 0x7f) {
            break;
        }
    }

    if (opt->prefix[i] || i > NGX_HTTP_CANARY_PREFIX_LEN) {
        fprintf(stderr, "canary-sidecar: invalid --prefix \"%s\"\n",
                opt->prefix);
        return -1;
    }

    for (i = 0; i < opt->nstatus; i++) {
        for (k = 0; k < i; k++) {
            if (strcmp(opt->status[k], opt->status[i]) == 0) {
                fprintf(stderr, "canary-sidecar: --status \"%s\" given "
                        "twice\n", opt->status[i]);
                return -1;
            }
        }

        if ((strncmp(opt->status[i], "http://", 7) != 0
             && strncmp(opt->status[i], "https://", 8) != 0)
            || strpbrk(opt->status[i], " ;\t\r\n") != NULL)
        {
            fprintf(stderr, "canary-sidecar: --status \"%s\": an http:// "
                    "or https:// URL, without spaces or \";\"\n",
                    opt->status[i]);
            return -1;
        }
    }

    if (opt->id) {
        len = strlen(opt->id);

        for (i = 0; i < len; i++) {
            if (opt->id[i] < 0x20 || opt->id[i] >= 0x7f) {
                break;
            }
        }

        if (len == 0 || len > 64 || i < len) {
            fprintf(stderr, "canary-sidecar: invalid --id: 1 to 64 "
                    "printable ASCII characters\n");
            return -1;
        }

        snprintf(sc->id, sizeof(sc->id), "%s", opt->id);

    } else {
        if (gethostname(host, sizeof(host)) != 0) {
            snprintf(host, sizeof(host), "localhost");
        }

        host[sizeof(host) - 1] = '\0';
        snprintf(sc->id, sizeof(sc->id), "%.48s:%ld", host,
                 (long) getpid());
    }

    if (opt->db) {
        errno = 0;
        sc->db = strtol(opt->db, &end, 10);

        if (errno || end == opt->db || *end || sc->db < 0
            || sc->db > 65535)
        {
            fprintf(stderr, "canary-sidecar: invalid --redis-db \"%s\": "
                    "a number, 0 to 65535\n", opt->db);
            return -1;
        }
    }

    if (opt->listen) {
        struct sockaddr_storage  sa;
        socklen_t                salen;
        char                     lerr[256];

        if (cs_listen_parse(opt->listen, &sa, &salen, lerr, sizeof(lerr))
            != 0)
        {
            fprintf(stderr, "canary-sidecar: %s\n", lerr);
            return -1;
        }

        if (opt->once) {
            fprintf(stderr, "canary-sidecar: --listen serves between "
                    "steps: not with --once\n");
            return -1;
        }
    }

    sc->log_every = 60000;

    if (opt->log_every
        && cs_duration_parse(opt->log_every, &sc->log_every) != 0)
    {
        fprintf(stderr, "canary-sidecar: invalid --log-every \"%s\": a "
                "duration (30s, 5m, 1h, 1h30m or a number of seconds; 0 "
                "for a line every interval)\n", opt->log_every);
        return -1;
    }

    if (opt->password_file) {
        *password = cs_read_password(opt->password_file);

        if (*password == NULL) {
            return -1;
        }
    }

    return 0;
}


static char *
cs_read_password(const char *path)
{
    FILE  *f;
    char   buf[1024], *p;

    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "canary-sidecar: --redis-password-file %s: %s\n",
                path, strerror(errno));
        return NULL;
    }

    if (fgets(buf, sizeof(buf), f) == NULL) {
        buf[0] = '\0';
    }

    fclose(f);

    buf[strcspn(buf, "\r\n")] = '\0';

    if (buf[0] == '\0') {
        fprintf(stderr, "canary-sidecar: --redis-password-file %s: no "
                "password on its first line\n", path);
        return NULL;
    }

    p = strdup(buf);
    memset(buf, 0, sizeof(buf));

    return p;
}


/* one analysis step; 0, or -1 when it could not decide */

static int
cs_step(cs_sidecar_t *sc)
{
    int              rc, restored, over;
    long             got;
    char             holder[128], line[2048], err[1024];
    char            *saved;
    double           t0;
    size_t           i, n, restarted, other, bad;
    int64_t          now;
    cs_metrics_t    *m, metrics;
    cs_rollout_t     ro;
    cs_decision_t    d;
    cs_split_view_t  view;

    t0 = cs_mono_fms();

    if (!sc->fleet_seen && cs_fleet_check(sc) != 0) {
        return -1;
    }

    if (cs_redis_connect(&sc->redis) != 0) {
        cs_log_error(sc, "%s: redis %s unreachable: %s; holding, retrying",
                     sc->opt.split, sc->opt.redis ? sc->opt.redis
                                                  : sc->opt.master,
                     sc->redis.err);
        cs_redis_failed(sc);
        sc->was_leader = 0;
        sc->redis_down = 1;
        return -1;
    }

    if (sc->redis_down) {
        cs_log("%s: redis %s answers again", sc->opt.split,
               sc->opt.redis ? sc->opt.redis : sc->opt.master);
        sc->redis_down = 0;
    }

    if (sc->redis.news[0]) {
        cs_log("%s: redis: %s", sc->opt.split, sc->redis.news);
        sc->redis.news[0] = '\0';
    }

    if (!sc->opt.dry_run) {
        rc = cs_redis_lead(&sc->redis, holder, sizeof(holder));

        if (rc < 0) {
            cs_log_error(sc, "%s: redis: %s; holding, retrying",
                         sc->opt.split, sc->redis.err);
            cs_redis_failed(sc);
            sc->was_leader = 0;
            sc->redis_down = 1;
            return -1;
        }

        /* --listen: Redis answered; a standby knows no rollout */
        sc->report.redis_ok = 1;

        if (rc == 0) {
            sc->report.known = 0;

            if (sc->was_leader || strcmp(holder, sc->holder) != 0) {
                cs_log("%s: standby: %s holds the lease %s", sc->opt.split,
                       holder[0] ? holder : "another sidecar",
                       sc->redis.leader_key);
                snprintf(sc->holder, sizeof(sc->holder), "%s", holder);
            }

            /* the leader's memory is the one that counts now */
            cs_rollout_init(&sc->memory);
            memset(sc->steps, 0, sizeof(cs_fleet_window_t));
            sc->was_leader = 0;
            return 0;
        }

        if (!sc->was_leader) {
            cs_log("%s: %s is the leader (lease %s, %s)", sc->opt.split,
                   sc->id, sc->redis.leader_key,
                   cs_duration_format(sc->redis.lease_ms, err, 32));
            sc->was_leader = 1;
            sc->said[0] = '\0';        /* its first decision is said */
            sc->holder[0] = '\0';
        }
    }

    rc = cs_redis_read(&sc->redis, &sc->plan, &now, &view, &ro, &saved);

    if (rc != CS_REDIS_OK) {
        cs_log_error(sc, "%s: %s; holding", sc->opt.split, sc->redis.err);
        cs_redis_failed(sc);
        return -1;
    }

    sc->report.redis_ok = 1;

    restored = cs_remember(sc, &view, &ro);
    over = cs_rollout_over(&ro);
    n = 0;
    err[0] = '\0';

    /* this step's nginx, and what they count */
    if (sc->fleet_mode) {
        got = cs_fleet_read(sc, saved, !over);

        if (got < 0) {
            free(saved);
            cs_log_error(sc, "%s: %s; holding", sc->opt.split,
                         sc->redis.err);
            cs_redis_failed(sc);
            return -1;
        }

        n = (size_t) got;

        if (!over) {
            /* --listen: the live nodes whose record could not be read */
            sc->report.fetch_errors += sc->nlive - n;
            sc->report.answered = n;
            sc->report.asked = sc->nlive;
        }

    } else if (!over) {
        if (cs_status_urls(sc, cs_window_seconds(&sc->plan, &ro, now))
            != 0)
        {
            free(saved);
            cs_log_error(sc, "%s: no memory; holding", sc->opt.split);
            return -1;
        }

        n = cs_fetch(sc->urls, sc->names, sc->n, sc->opt.split,
                     CS_FETCH_TIMEOUT, sc->readings, sc->answered, err,
                     sizeof(err));

        /* --listen: the --status URLs that did not answer */
        sc->report.fetch_errors += sc->n - n;
        sc->report.answered = n;
        sc->report.asked = sc->n;
    }

    /*
     * Where the evidence was taken up to is what the state in Redis says,
     * whoever wrote it: never this process's memory of an older step.
     */
    bad = cs_nodes_parse(sc->nodes, sc->names, sc->n, saved ? saved : "");
    free(saved);

    if (sc->redis.warn[0]) {
        /* evidence that starts over: readings from the same writer,
         * which may be older than it, start over with it */
        memset(sc->nodes, 0, sc->n * sizeof(cs_node_t));
    }

    if (bad) {
        cs_log_error(sc, "%s: %zu nginx readings in the state are not "
                     "this fleet's (another --status list?): read anew",
                     sc->opt.split, bad);
    }

    sc->last_error[0] = '\0';
    m = NULL;

    if (sc->redis.warn[0]) {
        cs_log_error(sc, "%s: %s; the stage's evidence starts over",
                     sc->opt.split, sc->redis.warn);
    }

    if (!over) {
        if (sc->fleet_mode) {
            cs_fleet_forget(sc, now);
        }

        cs_nodes_sum(sc->nodes, sc->readings, sc->answered, sc->n, now,
                     sc->deltas, &metrics, &restarted, &other);

        if (sc->fleet_mode) {
            /* nginx reports no window here: the sidecar's own steps */
            metrics.asked = sc->nlive;
            cs_fleet_window_add(sc->steps, now,
                                metrics.has_delta ? metrics.delta : NULL);
            cs_fleet_window_sum(sc->steps, now,
                                cs_window_seconds(&sc->plan, &ro, now),
                                &metrics);
            cs_fleet_changes(sc);
        }

        if (restarted) {
            cs_log("%s: %zu nginx restarted or got a new zone: all they "
                   "count now is new to the stage", sc->opt.split,
                   restarted);
        }

        if (other && sc->fleet_mode) {
            cs_log_error(sc, "%s: %zu node reported counters older than "
                         "its last record: two nginx with one node name "
                         "(canary_redis node=)?; nothing it counts is "
                         "judged", sc->opt.split, other);

        } else if (other) {
            cs_log_error(sc, "%s: %zu --status URL answered with counters "
                         "older than its last reading: another nginx "
                         "behind one address (a load balancer?); nothing "
                         "it counts is judged: give each nginx its own "
                         "--status", sc->opt.split, other);
        }

        if (n > 0) {
            m = &metrics;
            cs_lag_report(sc, &view, now, m);
        }

        /* which nginx did not answer: when that changes */
        if (!sc->fleet_mode && strcmp(err, sc->fleet) != 0) {
            if (err[0]) {
                cs_log("%s: %zu/%zu nginx answered; %s", sc->opt.split, n,
                       sc->opt.nstatus, err);

            } else {
                cs_log("%s: all %zu nginx answer again", sc->opt.split,
                       sc->opt.nstatus);
            }

            snprintf(sc->fleet, sizeof(sc->fleet), "%s", err);
        }
    }

    /* per nginx, what the stage's evidence gets this step */
    if (sc->stage_nodes.stage_started != ro.stage_started
        || ro.status == CS_STATUS_NEW)
    {
        cs_stage_nodes_reset(&sc->stage_nodes, ro.stage_started, now);
    }

    if (m != NULL && m->has_delta && m->node_delta
        && ro.status != CS_STATUS_NEW && !over)
    {
        for (i = 0; i < m->n_node && i < sc->n; i++) {
            (void) cs_stage_nodes_add(&sc->stage_nodes, sc->names[i],
                                      &m->node_delta[2 * i]);
        }
    }

    cs_decide(&sc->plan, &view, &ro, m, now, &d);

    if (m != NULL) {
        cs_report_sample(&sc->report, now, ro.stage, m);
    }

    /* the stage it leaves, for the final receipt's summary */
    cs_stages_log_add(&sc->plan, &ro, &d, now);

    if (restored) {
        d.dirty = 1;            /* back into the Redis that lost it */
    }

    if (cs_notify_state(sc)) {
        d.dirty = 1;            /* the counts in the state moved on */
    }

    if (d.action == CS_ACT_START
        || d.next.stage_started != ro.stage_started)
    {
        /*
         * a stage starts: an nginx that did not answer now would bring
         * in a gap that belongs partly to the stage before; it starts
         * over from its next reading
         */
        for (i = 0; i < sc->n; i++) {
            if (!sc->answered[i]) {
                sc->nodes[i].seen = 0;
            }
        }
    }

    if (m != NULL && ro.status != CS_STATUS_NEW && !cs_rollout_over(&ro)) {
        d.dirty = 1;            /* the readings moved on */
    }

    cs_decision_line(&sc->plan, sc->opt.split, &ro, &d, line, sizeof(line));

    if (sc->opt.dry_run) {
        cs_report_decision(&sc->report, now, &d.next, &d);
        cs_report_read_receipts(sc, view.generation);
        cs_log_decision(sc, &ro, &d, 0, now, line);
        return 0;
    }

    sc->decided_on = &ro;

    rc = cs_act(sc, &d, &view, now, cs_mono_fms() - t0, line, sizeof(line));

    cs_report_decision(&sc->report, now, rc == 0 ? &d.next : &ro, &d);
    cs_report_read_receipts(sc, rc == 0 && cs_action_writes(d.action)
                                ? view.generation + 1 : view.generation);
    sc->decided_on = NULL;

    if (rc == 0) {
        sc->memory = d.next;
    }

    /* no nginx answered: nothing could be judged (--once exits 1) */
    if (m == NULL && !cs_rollout_over(&ro)) {
        rc = -1;
    }

    cs_log_decision(sc, &ro, &d, rc == 0 && cs_action_writes(d.action),
                    now, line);

    return rc;
}


/*
 * Before anything touches Redis (not even the lease): at least one nginx
 * must answer for the split.  A wrong --status or --split writes
 * nothing, and leaves the lease to a sidecar that sees the fleet.
 */

static int
cs_fleet_check(cs_sidecar_t *sc)
{
    long    got;
    char    err[1024];
    size_t  n;

    if (sc->fleet_mode) {
        if (cs_redis_connect(&sc->redis) != 0) {
            cs_log_error(sc, "%s: redis %s unreachable: %s; holding, "
                         "retrying", sc->opt.split, sc->opt.redis,
                         sc->redis.err);
            cs_redis_failed(sc);
            return -1;
        }

        got = cs_fleet_read(sc, NULL, 1);

        if (got < 0) {
            cs_log_error(sc, "%s: %s; holding", sc->opt.split,
                         sc->redis.err);
            cs_redis_failed(sc);
            return -1;
        }

        sc->report.redis_ok = 1;
        sc->report.answered = (size_t) got;
        sc->report.asked = sc->nlive;

        if (got == 0) {
            cs_log_error(sc, "%s: not starting: no live node reports this "
                         "split in %s (%zu listed; nginx with canary_redis "
                         "on this Redis and prefix?); holding, writing "
                         "nothing to Redis, not even the lease",
                         sc->opt.split, sc->redis.nodes_key, sc->nlive);
            return -1;
        }

        cs_log("%s: %ld/%zu nodes report this split", sc->opt.split, got,
               sc->nlive);

        sc->fleet_seen = 1;

        return 0;
    }

    if (cs_status_urls(sc, cs_window_seconds(&sc->plan, &sc->memory, 0))
        != 0)
    {
        cs_log_error(sc, "%s: no memory; holding", sc->opt.split);
        return -1;
    }

    n = cs_fetch(sc->urls, sc->opt.status, sc->opt.nstatus, sc->opt.split,
                 CS_FETCH_TIMEOUT, sc->readings, sc->answered, err,
                 sizeof(err));

    sc->report.fetch_errors += sc->opt.nstatus - n;
    sc->report.answered = n;
    sc->report.asked = sc->opt.nstatus;

    if (n == 0) {
        cs_log_error(sc, "%s: not starting: no nginx answered for this "
                     "split (%s); holding, writing nothing to Redis, not "
                     "even the lease", sc->opt.split, err);
        return -1;
    }

    cs_log("%s: %zu/%zu nginx answer for this split", sc->opt.split, n,
           sc->opt.nstatus);

    sc->fleet_seen = 1;

    return 0;
}


/*
 * What this leader did, kept in memory: when Redis has no state of the
 * sidecar any more but the split was not reset (state "ready": canary-ctl
 * reset deletes the state on purpose), Redis lost it (flushed, restarted
 * without persistence, a failover to an empty replica).  The rollout goes
 * on from memory and is written back: a rollout rolled back or complete
 * is never started again.  Returns 1 when ro comes from memory.
 */

static int
cs_remember(cs_sidecar_t *sc, const cs_split_view_t *view, cs_rollout_t *ro)
{
    cs_rollout_t  *mem;

    mem = &sc->memory;

    if (ro->status != CS_STATUS_NEW || mem->status == CS_STATUS_NEW
        || strcmp(view->state, NGX_HTTP_CANARY_STATE_READY) == 0)
    {
        *mem = *ro;
        sc->lost_said = 0;
        return 0;
    }

    /* a dry run writes nothing back: the loss stays, said once */

    if (!sc->opt.dry_run || !sc->lost_said) {
        cs_log("%s: Redis has lost the sidecar's state %s (flushed, or "
               "restarted empty?) but the split was not reset: %s what %s "
               "did: %s at stage %s, generation %llu%s%s",
               sc->opt.split, sc->redis.sidecar_key,
               sc->opt.dry_run ? "going on (dry run: not written) from"
                               : "writing back",
               sc->id, cs_status_name(mem->status),
               sc->plan.stages[mem->stage].name,
               (unsigned long long) mem->seen,
               mem->stopped_by[0] ? ", " : "", mem->stopped_by);
    }

    sc->lost_said = 1;

    *ro = *mem;

    return 1;
}


/* the status URLs for a window, made again only when it changes */

static int
cs_status_urls(cs_sidecar_t *sc, unsigned window)
{
    size_t  i;

    if (window == sc->window && sc->urls[0] != NULL) {
        return 0;
    }

    for (i = 0; i < sc->opt.nstatus; i++) {
        free(sc->urls[i]);

        sc->urls[i] = cs_fetch_url(sc->opt.status[i], sc->opt.split, window);
        if (sc->urls[i] == NULL) {
            sc->window = 0;
            return -1;
        }
    }

    sc->window = window;

    return 0;
}


/* room for n nginx in the arrays each step fills */

static int
cs_grow(cs_sidecar_t *sc, size_t n)
{
    void  *p;

    if (n <= sc->cap) {
        return 0;
    }

    if (n < 2 * sc->cap) {
        n = 2 * sc->cap;
    }

    if (sc->fleet_mode) {
        p = realloc(sc->names, n * sizeof(char *));
        if (p == NULL) {
            return -1;
        }

        sc->names = p;
    }

    p = realloc(sc->nodes, n * sizeof(cs_node_t));
    if (p == NULL) {
        return -1;
    }

    sc->nodes = p;

    p = realloc(sc->readings, n * sizeof(cs_metrics_t));
    if (p == NULL) {
        return -1;
    }

    sc->readings = p;

    p = realloc(sc->answered, n * sizeof(int));
    if (p == NULL) {
        return -1;
    }

    sc->answered = p;

    p = realloc(sc->deltas, 2 * n * sizeof(cs_window_t));
    if (p == NULL) {
        return -1;
    }

    sc->deltas = p;
    sc->cap = n;

    return 0;
}


static void
cs_names_free(cs_sidecar_t *sc)
{
    size_t  i;

    for (i = 0; i < sc->n; i++) {
        free(sc->names[i]);
    }

    sc->n = 0;
    sc->nlive = 0;
}


/*
 * Fleet mode: this step's nginx are the split's live nodes in Redis,
 * with their records (when "live"), then the nodes of the saved
 * readings that are not live now: a node that left keeps its last
 * reading, as an nginx that does not answer, until a stage starts or
 * CS_FLEET_FORGET_MS.  A record that cannot be read is logged once per
 * node and reason, and its node counted as not answering.  Returns the
 * nodes read, or -1 (redis.err).
 */

static long
cs_fleet_read(cs_sidecar_t *sc, const char *saved, int live)
{
    int                 ok;
    char                err[256], name[300], **prev;
    long                good;
    size_t              i, k, n, np, nl;
    int64_t             t;
    cs_record_e         rc;
    cs_metrics_t       *m;
    redisReply         *reply;
    const redisReply   *names, *records, *silent, *nm, *rec;

    reply = NULL;
    names = NULL;
    records = NULL;
    nl = 0;

    if (live) {
        if (cs_redis_fleet(&sc->redis, &t, &reply, &names, &records,
                           &silent)
            != CS_REDIS_OK)
        {
            return -1;
        }

        nl = names->elements;

        /* split verification: who is silent rather than gone */
        sc->lag.fleet = 1;

        for (i = 0; i < silent->elements; i++) {
            if (silent->element[i]->type == REDIS_REPLY_STRING) {
                cs_lag_silent(&sc->lag, silent->element[i]->str,
                              silent->element[i]->len);
            }
        }
    }

    prev = cs_nodes_names(saved ? saved : "", &np);

    cs_names_free(sc);

    if (cs_grow(sc, nl + np) != 0) {
        snprintf(sc->redis.err, sizeof(sc->redis.err), "no memory");
        good = -1;
        goto done;
    }

    n = 0;
    good = 0;

    for (i = 0; i < nl; i++) {
        nm = names->element[i];
        rec = records->element[i];

        if (nm->type != REDIS_REPLY_STRING) {
            continue;
        }

        m = &sc->readings[n];

        if (!ngx_http_canary_valid_node((const unsigned char *) nm->str,
                                        nm->len))
        {
            rc = CS_RECORD_NAME;
            snprintf(err, sizeof(err), "%s", cs_record_reason(rc));

        } else if (rec->type == REDIS_REPLY_STRING) {
            rc = cs_fleet_parse(nm->str, nm->len, rec->str, rec->len,
                                sc->opt.split, m, err, sizeof(err));

        } else if (rec->type == REDIS_REPLY_INTEGER) {
            rc = CS_RECORD_TOO_LARGE;
            snprintf(err, sizeof(err), "record of %lld bytes, over %d",
                     rec->integer, NGX_HTTP_CANARY_NODE_RECORD_MAX);

        } else {
            rc = CS_RECORD_GONE;
            snprintf(err, sizeof(err), "%s", cs_record_reason(rc));
        }

        cs_printable(nm->str, nm->len, name, sizeof(name));

        if (rc != CS_RECORD_OK && cs_fleet_once(&sc->bad, name, rc)) {
            cs_log("%s: node %s: %s; ignored", sc->opt.split, name, err);
        }

        if (rc == CS_RECORD_NAME) {
            continue;
        }

        ok = rc == CS_RECORD_OK;

        if (!ok) {
            cs_metrics_init(m);
        }

        sc->names[n] = strndup(nm->str, nm->len);

        if (sc->names[n] == NULL) {
            snprintf(sc->redis.err, sizeof(sc->redis.err), "no memory");
            good = -1;
            goto done;
        }

        sc->answered[n] = ok;
        good += ok;
        n++;
        sc->n = n;
    }

    sc->nlive = n;

    /* those that left, as the saved readings remember them */
    for (k = 0; k < np; k++) {
        for (i = 0; i < n; i++) {
            if (strcmp(sc->names[i], prev[k]) == 0) {
                break;
            }
        }

        if (i < n) {
            continue;
        }

        sc->names[n] = prev[k];
        prev[k] = NULL;
        sc->answered[n] = 0;
        cs_metrics_init(&sc->readings[n]);
        n++;
        sc->n = n;
    }

done:

    for (k = 0; k < np; k++) {
        free(prev[k]);
    }

    free(prev);
    freeReplyObject(reply);

    return good;
}


/* a node that left long ago is forgotten */

static void
cs_fleet_forget(cs_sidecar_t *sc, int64_t now)
{
    size_t  i;

    for (i = sc->nlive; i < sc->n; i++) {
        if (sc->nodes[i].seen
            && cs_elapsed(now, sc->nodes[i].read_at) > CS_FLEET_FORGET_MS)
        {
            sc->nodes[i].seen = 0;
        }
    }
}


/* the nodes that joined and left since the last step, when they did */

static void
cs_fleet_changes(cs_sidecar_t *sc)
{
    int      c;
    char     joined[512], left[512], **live;
    size_t   i, k, n, jl, ll;

    n = sc->nlive;

    live = malloc((n ? n : 1) * sizeof(char *));
    if (live == NULL) {
        return;
    }

    for (i = 0; i < n; i++) {
        live[i] = sc->names[i];
    }

    qsort(live, n, sizeof(char *), cs_strcmp_p);

    jl = 0;
    ll = 0;
    joined[0] = '\0';
    left[0] = '\0';

    for (i = 0, k = 0; i < n || k < sc->nlive_last; /* void */) {
        if (i == n) {
            c = 1;

        } else if (k == sc->nlive_last) {
            c = -1;

        } else {
            c = strcmp(live[i], sc->live[k]);
        }

        if (c < 0 && jl < sizeof(joined) - 80) {
            jl += snprintf(joined + jl, sizeof(joined) - jl, "%s%s",
                           jl ? ", " : "", live[i]);

        } else if (c > 0 && ll < sizeof(left) - 80) {
            ll += snprintf(left + ll, sizeof(left) - ll, "%s%s",
                           ll ? ", " : "", sc->live[k]);
        }

        i += c <= 0;
        k += c >= 0;
    }

    if (jl || ll) {
        cs_log("%s: %zu node%s report%s the split%s%s%s%s", sc->opt.split,
               n, n == 1 ? "" : "s", n == 1 ? "s" : "",
               jl ? "; joined: " : "", joined,
               ll ? "; left (no record): " : "", left);
    }

    for (i = 0; i < sc->nlive_last; i++) {
        free(sc->live[i]);
    }

    for (i = 0; i < n; i++) {
        live[i] = strdup(live[i]);

        if (live[i] == NULL) {
            n = i;
            break;
        }
    }

    free(sc->live);
    sc->live = live;
    sc->nlive_last = n;
}


/*
 * Split verification: the nginx that do not apply the split's
 * generation, logged when they change, into m for the decision (and
 * from it into the sidecar's state and log line).
 */

static void
cs_lag_report(cs_sidecar_t *sc, const cs_split_view_t *view, int64_t now,
    cs_metrics_t *m)
{
    char    a[24];
    size_t  k;

    cs_lag_generation(&sc->lag, view->generation, now);

    k = cs_lag_check(&sc->lag, &sc->plan, sc->names, sc->readings,
                     sc->answered, sc->n, now, sc->lagging,
                     sizeof(sc->lagging), sc->lag_held,
                     sizeof(sc->lag_held), &m->lag_holding);

    m->lagging = k ? sc->lagging : NULL;
    m->lag_held = m->lag_holding ? sc->lag_held : NULL;

    if (strcmp(sc->lagging, sc->lag_said) == 0) {
        return;
    }

    if (k) {
        cs_log("%s: %zu nginx lag: not at the split's generation %llu "
               "%s after it was written: %s", sc->opt.split, k,
               (unsigned long long) view->generation,
               cs_duration_said(sc->plan.said.lag, sc->plan.lag, a,
                                sizeof(a)),
               sc->lagging);

    } else {
        cs_log("%s: every nginx that reports applies generation %llu",
               sc->opt.split, (unsigned long long) view->generation);
    }

    snprintf(sc->lag_said, sizeof(sc->lag_said), "%s", sc->lagging);
}


/* a name from Redis, for a log line: bytes that are not printable as
 * \xNN */

static char *
cs_printable(const char *s, size_t len, char *buf, size_t size)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len && n + 5 < size; i++) {
        if (s[i] > 0x20 && s[i] < 0x7f && s[i] != '\\') {
            buf[n++] = s[i];

        } else {
            n += snprintf(buf + n, size - n, "\\x%02x",
                          (unsigned char) s[i]);
        }
    }

    buf[n] = '\0';

    if (n == 0) {
        snprintf(buf, size, "\"\"");
    }

    return buf;
}


static int
cs_strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


/* writes what the decision says; appends the outcome to the line */

static int
cs_act(cs_sidecar_t *sc, cs_decision_t *d, const cs_split_view_t *view,
    int64_t now, double decision_ms, char *line, size_t size)
{
    int               rc;
    char              id[CS_UUID_LEN + 1], err[512], *receipts[2], *readings,
                      ids[2][CS_UUID_LEN + 1], *evkey;
    size_t            i, n, len, zlen;
    unsigned char    *z;
    cs_receipt_ctx_t  ctx;

    len = strlen(line);

    if (!cs_action_writes(d->action) && !d->dirty) {
        return 0;
    }

    /* where the evidence was taken up to, written with it either way */
    readings = cs_nodes_format(sc->nodes, sc->names, sc->n);
    if (readings == NULL) {
        snprintf(line + len, size - len, " [not written: no memory]");
        return -1;
    }

    if (!cs_action_writes(d->action)) {
        rc = cs_redis_save(&sc->redis, &sc->plan, &d->next, readings,
                           view->generation, now);
        free(readings);

        if (rc != CS_REDIS_OK) {
            snprintf(line + len, size - len, " [state not saved: %s]",
                     sc->redis.err);

            if (rc != CS_REDIS_CONFLICT) {
                cs_redis_failed(sc);
            }

            return -1;
        }

        return 0;
    }

    ctx.split = sc->opt.split;
    ctx.by = sc->id;
    ctx.now = now;
    ctx.decision_ms = decision_ms;
    ctx.generation = view->generation + 1;
    ctx.before = sc->decided_on;
    ctx.evidence_key = NULL;

    n = 0;
    z = NULL;
    zlen = 0;
    evkey = NULL;

    /*
     * A weight change keeps the evidence it decided on, under the id of
     * its last receipt (the one that changes the weight), which both of
     * its receipts name
     */
    for (i = 0; i < d->nops; i++) {
        cs_uuid(ids[i]);
    }

    if (d->set_weight && d->nops) {
        z = cs_snapshot(&sc->plan, sc->opt.split, sc->decided_on
                        ? sc->decided_on : &d->next, d, ids[d->nops - 1],
                        now, &sc->stage_nodes, &zlen, NULL);

        evkey = malloc(strlen(sc->redis.key)
                       + sizeof(NGX_HTTP_CANARY_KEY_EVIDENCE) + CS_UUID_LEN);

        if (z != NULL && evkey != NULL) {
            sprintf(evkey, "%s" NGX_HTTP_CANARY_KEY_EVIDENCE "%s",
                    sc->redis.key, ids[d->nops - 1]);
            ctx.evidence_key = evkey;
            sc->redis.evidence_id = ids[d->nops - 1];
            sc->redis.evidence = z;
            sc->redis.evidence_len = zlen;

        } else {
            cs_log("%s: evidence snapshot: no memory; the decision goes "
                   "on without it", sc->opt.split);
        }
    }

    for (i = 0; i < d->nops; i++) {
        ctx.receipt_id = ids[i];
        receipts[i] = cs_receipt_json(&sc->plan, d, i, &ctx, id);

        if (receipts[i] == NULL) {
            snprintf(line + len, size - len, " [not written: no memory]");
            rc = -1;
            goto done;
        }

        n++;
    }

    snprintf(d->next.last_receipt, sizeof(d->next.last_receipt), "%s", id);

    rc = cs_redis_write(&sc->redis, &sc->plan, d, view->generation,
                        receipts, n, readings, now);

    if (rc == CS_REDIS_CONFLICT) {
        snprintf(line + len, size - len, " [not written: %s; deciding "
                 "again]", sc->redis.err);
        rc = -1;
        goto done;
    }

    if (rc != CS_REDIS_OK) {
        snprintf(line + len, size - len, " [not written: %s]",
                 sc->redis.err);
        cs_redis_failed(sc);
        rc = -1;
        goto done;
    }

    for (i = 0; i < n; i++) {
        cs_report_written(&sc->report, d->ops[i]);
    }

    /* from now on, every nginx must follow */
    cs_lag_generation(&sc->lag, ctx.generation, now);

    len += snprintf(line + len, size - len, " [generation %llu:",
                    (unsigned long long) ctx.generation);

    for (i = 0; i < n && len < size; i++) {
        len += snprintf(line + len, size - len, " %s", d->ops[i]);
    }

    if (len < size) {
        snprintf(line + len, size - len, "]");
    }

    if (sc->opt.receipts
        && cs_receipts_append(sc->opt.receipts, receipts, n, err,
                              sizeof(err)) != 0)
    {
        cs_log("%s: receipts file: %s", sc->opt.split, err);
    }

    /* queued only: sent while the loop waits for the next step */
    for (i = 0; i < n; i++) {
        cs_notify_receipt(sc->notify, receipts[i]);
    }

    /* after the decision is written: a disk's trouble never delays it */
    if (z != NULL && sc->opt.evidence_dir) {
        if (cs_snapshot_file(sc->opt.evidence_dir, ids[d->nops - 1], z,
                             zlen, err, sizeof(err))
            != 0)
        {
            if (!sc->evidence_dir_failed) {
                cs_log("%s: --evidence-dir: %s; snapshots stay in Redis "
                       "only (said once)", sc->opt.split, err);
            }

            sc->evidence_dir_failed = 1;

        } else {
            sc->evidence_dir_failed = 0;
        }
    }

    rc = 0;

done:

    /* the snapshot was this write's only */
    sc->redis.evidence_id = NULL;
    sc->redis.evidence = NULL;
    sc->redis.evidence_len = 0;

    free(readings);
    free(z);
    free(evkey);

    for (i = 0; i < n; i++) {
        free(receipts[i]);
    }

    return rc;
}


/* the notification counts for the state; 1 when they changed */

static int
cs_notify_state(cs_sidecar_t *sc)
{
    char               buf[sizeof(sc->redis.notify)];
    cs_notify_stats_t  st;

    if (sc->notify == NULL) {
        return 0;
    }

    cs_notify_stats(sc->notify, &st);
    cs_notify_stats_format(&st, buf, sizeof(buf));

    if (strcmp(buf, sc->redis.notify) == 0) {
        return 0;
    }

    memcpy(sc->redis.notify, buf, sizeof(buf));

    return 1;
}


static void
cs_log(const char *fmt, ...)
{
    char     ts[32], msg[4096], line[8192];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    /* values from Redis (updated_by, state) stay on the line */
    cs_escape(line, sizeof(line), msg);

    fprintf(stderr, "%s %s\n", cs_iso8601(cs_wall_ms(), ts, sizeof(ts)),
            line);
}


/* the same error every interval is logged once, then every 30s */

static void
cs_log_error(cs_sidecar_t *sc, const char *fmt, ...)
{
    char     buf[512];
    int64_t  now;
    va_list  args;

    va_start(args, fmt);
    vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    now = cs_mono_ms();

    if (strcmp(buf, sc->last_error) == 0
        && now - sc->last_error_at < CS_REPEAT_LOG)
    {
        return;
    }

    snprintf(sc->last_error, sizeof(sc->last_error), "%s", buf);
    sc->last_error_at = now;

    cs_log("%s", buf);
}


/*
 * A decision line when it says something new: a write, an operator's
 * note, another action, stage, status, reason or verdict.  The same hold
 * with other numbers ("hold 3s/5s", then "hold 4s/5s") is a summary
 * every --log-every.  A finished rollout, or one that does not start,
 * is said once.
 */

static void
cs_log_decision(cs_sidecar_t *sc, const cs_rollout_t *ro,
    const cs_decision_t *d, int wrote, int64_t now, const char *line)
{
    int          summary, same;
    char         said[sizeof(sc->said)], ts[32], changed[256], safe[4096];
    size_t       n, i, k;
    int64_t      mono;
    const char  *p;

    if ((d->action == CS_ACT_IDLE
         || (d->action == CS_ACT_HOLD && ro->status == CS_STATUS_NEW))
        && !d->note[0] && !wrote)
    {
        if (strcmp(sc->idle, line) == 0) {
            return;
        }

        snprintf(sc->idle, sizeof(sc->idle), "%s", line);
        sc->said[0] = '\0';

        cs_escape(safe, sizeof(safe), line);

        fprintf(stderr, "%s %s%s\n", cs_iso8601(now, ts, sizeof(ts)),
                sc->opt.dry_run ? "[dry run] " : "", safe);
        return;
    }

    sc->idle[0] = '\0';

    n = (size_t) snprintf(said, sizeof(said), "%d %d %lu %u ",
                          (int) d->action, (int) ro->status,
                          (unsigned long) ro->stage, ro->weight);

    /* the reason without its numbers */

    for (p = d->reason; *p && n < sizeof(said) - CS_CHECKS - 2; p++) {
        if ((*p >= '0' && *p <= '9') || *p == '.') {
            if (said[n - 1] != '#') {
                said[n++] = '#';
            }

            continue;
        }

        said[n++] = *p;
    }

    said[n++] = ' ';
    k = 0;
    changed[0] = '\0';

    /* only a check's verdict is new: the line names it */
    same = sc->verdicts[0] && strncmp(said, sc->said, n) == 0;

    if (d->has_judgement) {
        for (i = 0; i < CS_CHECKS; i++) {
            said[n++] = d->j.checks[i].off ? '-'
                                           : '0' + d->j.checks[i].status;

            if (same && said[n - 1] != sc->verdicts[i]
                && said[n - 1] != '-' && sc->verdicts[i] != '-'
                && k < sizeof(changed) - 64)
            {
                k += snprintf(changed + k, sizeof(changed) - k,
                              "%s%s %s -> %s", k ? ", " : "; ",
                              cs_check_name(i),
                              cs_verdict_name(sc->verdicts[i] - '0'),
                              cs_verdict_name(d->j.checks[i].status));
            }
        }
    }

    said[n] = '\0';

    mono = cs_mono_ms();
    summary = 0;

    if (!wrote && !d->note[0] && strcmp(said, sc->said) == 0) {
        if (sc->log_every > 0 && mono - sc->said_at < sc->log_every) {
            sc->quiet++;
            return;
        }

        summary = sc->log_every > 0;
    }

    /* an operator's note holds values from Redis: one line still */
    cs_escape(safe, sizeof(safe), line);

    fprintf(stderr, "%s %s%s%s", cs_iso8601(now, ts, sizeof(ts)),
            sc->opt.dry_run ? "[dry run] " : "", safe, changed);

    if (summary) {
        fprintf(stderr, " (summary: %u step%s since the last line, nothing "
                "new)", sc->quiet + 1, sc->quiet ? "s" : "");
    }

    fputc('\n', stderr);

    memcpy(sc->said, said, n + 1);
    sc->said_at = mono;
    sc->quiet = 0;

    if (d->has_judgement) {
        memcpy(sc->verdicts, said + n - CS_CHECKS, CS_CHECKS + 1);

    } else {
        sc->verdicts[0] = '\0';
    }
}


static int64_t
cs_wall_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static int64_t
cs_mono_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static double
cs_mono_fms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec * 1000 + (double) ts.tv_nsec / 1000000;
}


/* returns early on a signal */

/*
 * The wait for the next step is spent on what the step left: the
 * notifications' deliveries and --listen's clients, in one poll; no
 * step waits for either.
 */

static void
cs_wait(cs_sidecar_t *sc, int64_t deadline)
{
    int                fd, late;
    int64_t            ms, t;
    cs_notify_stats_t  st;

    fd = -1;

    if (sc->listen) {
        fd = cs_listen_fd(sc->listen);

        /* what came during the step, even when it took its interval */
        cs_listen_run(sc->listen);
    }

    while (!cs_stop) {
        ms = deadline - cs_mono_ms();

        /*
         * a step that took its interval (an nginx that hangs makes each
         * wait its fetch timeout) still lets the deliveries go on: once,
         * without waiting
         */
        late = ms <= 0;

        if (late) {
            ms = 0;
        }

        if (sc->listen) {
            t = cs_listen_timeout(sc->listen);

            if (t >= 0 && t < ms) {
                ms = t;
            }
        }

        cs_notify_wait(sc->notify, ms, fd);

        if (sc->listen) {
            cs_listen_run(sc->listen);
        }

        if (late) {
            break;
        }
    }

    cs_notify_stats(sc->notify, &st);
    sc->notified.sent = st.sent;
    sc->notified.failed = st.failed;
}


static void
cs_on_signal(int signo)
{
    (void) signo;

    cs_stop = 1;
}


/* --listen: the step failed on Redis (readyz says why) */

static void
cs_redis_failed(cs_sidecar_t *sc)
{
    if (sc->redis.c == NULL) {
        /* the connection is lost (and closed): its return is said */
        sc->redis_down = 1;
    }

    sc->report.redis_ok = 0;
    sc->report.redis_errors++;
    snprintf(sc->report.redis_err, sizeof(sc->report.redis_err),
             "%.64s: %.300s", sc->opt.redis ? sc->opt.redis : sc->opt.master,
             sc->redis.err);
}


/*
 * --listen: the split's last receipts for the rollout page, read again
 * when its generation moved (every writer raises it with a receipt):
 * one XREVRANGE after a write, none while nothing changes.
 */

static void
cs_report_read_receipts(cs_sidecar_t *sc, uint64_t generation)
{
    char    *list[CS_REPORT_RECEIPTS];
    size_t   n;

    if (sc->listen == NULL
        || (sc->report.receipts_read
            && sc->report.receipts_generation == generation))
    {
        return;
    }

    if (cs_redis_receipts(&sc->redis, CS_REPORT_RECEIPTS, list, &n) != 0) {
        cs_log_error(sc, "%s: redis: reading the receipts for --listen: "
                     "%s", sc->opt.split, sc->redis.err);
        cs_redis_failed(sc);
        return;
    }

    cs_report_receipts(&sc->report, list, n, generation);
}
