/*
 * tools/render-diff.c: the renderers' output for many reports built from
 * random bytes (fuzz/fuzz_report.h), to compare two trees byte for byte
 * (issue 21: the hand-written numbers must be printf's).  Build it
 * against each tree's src/core and compare:
 *
 *   for t in OLD NEW; do
 *       cc -O1 -std=gnu99 -Ifuzz -I$t/src/core -o /tmp/rd-$t \
 *           tools/render-diff.c $t/src/core/ngx_http_canary_out.c \
 *           $t/src/core/ngx_http_canary_render_*.c \
 *           $t/src/core/ngx_http_canary_parse.c \
 *           $t/src/core/ngx_http_canary_histogram.c \
 *           $t/src/core/ngx_http_canary_guard_rule.c -lm
 *       /tmp/rd-$t 3000 | md5sum
 *   done
 *
 * Every report as JSON, as Prometheus text and each split as a node
 * record; one in ten with a split name of 300 quotes and a newline.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_report.h"


static void emit(void (*render)(ngx_http_canary_out_t *,
    const ngx_http_canary_report_t *), const ngx_http_canary_report_t *rep);


static unsigned char  big[16 << 20];
static unsigned char  long_name[300];


int
main(int argc, char **argv)
{
    long                           seed, n;
    size_t                         len, i, k;
    uint8_t                       *data;
    fuzz_report_t                  fr;
    ngx_http_canary_out_t          o;
    ngx_http_canary_node_report_t  node;

    n = argc > 1 ? atol(argv[1]) : 1000;

    memset(long_name, '"', sizeof(long_name));
    long_name[7] = '\n';

    for (seed = 0; seed < n; seed++) {
        srand48(seed);

        len = (size_t) (lrand48() % 40000);

        data = malloc(len + 1);
        if (data == NULL) {
            return 1;
        }

        /* mostly small bytes: counters of every size, and some ties */
        for (i = 0; i < len; i++) {
            data[i] = (uint8_t) (seed % 3 == 0 ? lrand48()
                                 : lrand48() % 7 == 0 ? lrand48()
                                 : lrand48() % 4);
        }

        fuzz_report_build(&fr, data, len);

        if (seed % 10 == 0 && fr.rep.nsplits) {
            fr.rep.splits[0].name.data = long_name;
            fr.rep.splits[0].name.len = sizeof(long_name);
        }

        emit(ngx_http_canary_render_json, &fr.rep);
        emit(ngx_http_canary_render_prometheus, &fr.rep);

        memset(&node, 0, sizeof(node));
        node.node.data = (const unsigned char *) "node-1";
        node.node.len = 6;
        node.instance.data = (const unsigned char *) "inst\"x";
        node.instance.len = 6;
        node.pid = -(int64_t) seed * 1234567;
        node.interval_ms = (uint64_t) seed << 40;

        for (k = 0; k < fr.rep.nsplits; k++) {
            o.pos = big;
            o.end = big + sizeof(big);
            o.need = 0;

            ngx_http_canary_render_node(&o, &node, &fr.rep.splits[k]);

            printf("\n--- node %zu\n", o.need);
            fwrite(big, 1, o.need, stdout);
        }

        fuzz_report_free(&fr);
        free(data);
    }

    return 0;
}


static void
emit(void (*render)(ngx_http_canary_out_t *,
    const ngx_http_canary_report_t *), const ngx_http_canary_report_t *rep)
{
    ngx_http_canary_out_t  o;

    o.pos = big;
    o.end = big + sizeof(big);
    o.need = 0;

    render(&o, rep);

    printf("\n--- %zu\n", o.need);
    fwrite(big, 1, o.need, stdout);
}
