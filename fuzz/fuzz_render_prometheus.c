
/*
 * /canary_status?format=prometheus, rendered from a report filled with
 * fuzz bytes (fuzz_report.h).
 *
 * Checked, with a strict reader of the text exposition format 0.0.4:
 *   - the output buffer (fuzz_render(): the size counted is the size
 *     written, a short buffer gets a prefix and nothing past its end);
 *   - every line is "# HELP name text", "# TYPE name type" or a sample
 *     "name{label="value",...} number", and ends with "\n";
 *   - a sample's family has HELP and TYPE before its first sample, each
 *     family once; metric and label names are valid;
 *   - label values are escaped: inside the quotes only \\, \" and \n
 *     escapes, no raw newline or unescaped quote; the split label, once
 *     unescaped, is the split's name byte for byte;
 *   - histograms: per split and variant, "le" bounds increase, buckets
 *     are cumulative (never decrease), the last is le="+Inf" and equals
 *     _count; _sum and _count follow;
 *   - the gauges carry the report's numbers (weight as a percent, Redis
 *     connected and last sync, the split's info 1, its pins per side).
 */


#include <math.h>

#include "fuzz_report.h"


#define FUZZ_FAMILIES  32


typedef struct {
    char        name[64];
    int         help;
    int         type;
    int         histogram;
} family_t;


typedef struct {
    family_t    fam[FUZZ_FAMILIES];
    size_t      nfam;

    /* the series of the histogram being read */
    char        hname[64];
    size_t      split;
    char        variant[8];
    double      last_le;
    double      last_cum;
    int         seen_inf;
    double      inf;
} reader_t;


static int
name_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
           || c == ':' || (!first && c >= '0' && c <= '9');
}


static family_t *
family(reader_t *rd, const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < rd->nfam; i++) {
        if (strlen(rd->fam[i].name) == len
            && memcmp(rd->fam[i].name, name, len) == 0)
        {
            return &rd->fam[i];
        }
    }

    return NULL;
}


static double
number(const char *p, size_t len, const char *what)
{
    char    buf[64], *end;
    double  d;

    fuzz_assert(len > 0 && len < sizeof(buf), "%s: a number of %zu bytes",
                what, len);

    memcpy(buf, p, len);
    buf[len] = '\0';

    if (strcmp(buf, "+Inf") == 0) {
        return INFINITY;
    }

    d = strtod(buf, &end);

    fuzz_assert(*end == '\0' && buf[0] != ' ', "%s: \"%s\" is not a number",
                what, buf);

    return d;
}


/* which split a label value names, unescaped; -1 if none */
static long
split_of(const fuzz_report_t *fr, const uint8_t *v, size_t len)
{
    size_t  i;

    for (i = 0; i < fr->rep.nsplits; i++) {
        if (fr->splits[i].name.len == len
            && memcmp(fr->splits[i].name.data, v, len) == 0)
        {
            return (long) i;
        }
    }

    return -1;
}


static int
label_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(name, want, len) == 0;
}


/* the gauges carry the report's numbers */
static void
gauge(const fuzz_report_t *fr, const char *base, long split,
    const char *variant, double value)
{
    uint32_t                               w;
    const ngx_http_canary_split_report_t  *s;

    if (strcmp(base, "canary_redis_connected") == 0) {
        fuzz_assert(fr->rep.redis.configured
                    && value == (fr->rep.redis.connected ? 1 : 0),
                    "redis connected %g", value);
        return;
    }

    if (strcmp(base, "canary_redis_last_sync_timestamp_seconds") == 0) {
        fuzz_assert(fr->rep.redis.configured
                    && value == (double) fr->rep.redis.last_sync,
                    "redis last sync %g", value);
        return;
    }

    if (strcmp(base, "canary_split_info") == 0) {
        fuzz_assert(split >= 0 && value == 1, "split info %g", value);
        return;
    }

    if (strcmp(base, "canary_pinned_tenants") == 0) {
        fuzz_assert(split >= 0, "pins without a split label");
        s = &fr->splits[split];
        fuzz_assert((strcmp(variant, "stable") == 0
                     && value == (double) s->pins[0])
                    || (strcmp(variant, "canary") == 0
                        && value == (double) s->pins[1]),
                    "pins %s %g", variant, value);
        return;
    }

    if (strcmp(base, "canary_weight_percent") != 0
        && strcmp(base, "canary_enabled") != 0
        && strcmp(base, "canary_generation") != 0
        && strcmp(base, "canary_guard_tripped") != 0)
    {
        /* a family this harness does not know yet: its syntax is checked */
        return;
    }

    fuzz_assert(split >= 0, "%s without a split label", base);

    s = &fr->splits[split];

    if (strcmp(base, "canary_weight_percent") == 0) {
        w = s->weight > NGX_HTTP_CANARY_WEIGHT_MAX
            ? NGX_HTTP_CANARY_WEIGHT_MAX : s->weight;
        fuzz_assert(llround(value * 100) == (long long) w,
                    "weight %g, not %u hundredths", value, w);

    } else if (strcmp(base, "canary_enabled") == 0) {
        fuzz_assert(value == (s->enabled ? 1 : 0), "enabled %g", value);

    } else if (strcmp(base, "canary_generation") == 0) {
        fuzz_assert(value == (double) s->generation, "generation %g", value);

    } else if (strcmp(base, "canary_guard_tripped") == 0) {
        fuzz_assert(value == (s->guard.tripped ? 1 : 0), "tripped %g",
                    value);
    }
}


static void
sample(reader_t *rd, const fuzz_report_t *fr, const char *line,
    size_t len)
{
    char            base[64], variant[8], le[32];
    size_t          n, nlen, vlen, k, slen;
    long            split;
    double          value, lev;
    uint8_t         val[4 * 64], state[4 * 64];
    family_t       *f;
    const char     *p, *end, *suffix, *lname;

    p = line;
    end = line + len;

    for (n = 0; p + n < end && name_char(p[n], n == 0); n++) { /* */ }

    fuzz_assert(n > 0 && n < sizeof(base), "a sample without a name: %.*s",
                (int) len, line);

    /* the family: the name, or the name less _bucket/_sum/_count */
    f = family(rd, p, n);
    suffix = "";

    if (f == NULL) {
        for (k = 0; k < 3; k++) {
            suffix = k == 0 ? "_bucket" : k == 1 ? "_sum" : "_count";
            nlen = strlen(suffix);

            if (n > nlen && memcmp(p + n - nlen, suffix, nlen) == 0
                && (f = family(rd, p, n - nlen)) != NULL && f->histogram)
            {
                break;
            }

            f = NULL;
        }
    }

    fuzz_assert(f != NULL && f->help && f->type,
                "a sample before its HELP and TYPE: %.*s", (int) len, line);

    memcpy(base, p, n);
    base[n] = '\0';
    p += n;

    split = -1;
    variant[0] = '\0';
    le[0] = '\0';
    slen = (size_t) -1;

    if (p < end && *p == '{') {
        p++;

        for ( ;; ) {
            lname = p;

            for (k = 0; p + k < end && name_char(p[k], k == 0); k++) {
                /* void */
            }

            fuzz_assert(k > 0 && p + k + 1 < end && p[k] == '='
                        && p[k + 1] == '"', "a bad label in: %.*s",
                        (int) len, line);

            p += k + 2;
            vlen = 0;

            /* the value: escapes \\ \" \n only */
            while (p < end && *p != '"') {
                fuzz_assert(*p != '\n', "a raw newline in a label value");

                if (*p == '\\') {
                    fuzz_assert(p + 1 < end && (p[1] == '\\' || p[1] == '"'
                                                || p[1] == 'n'),
                                "a bad escape in a label value: %.*s",
                                (int) len, line);
                    val[vlen++] = p[1] == 'n' ? '\n' : (uint8_t) p[1];
                    p += 2;

                } else {
                    val[vlen++] = (uint8_t) *p++;
                }

                fuzz_assert(vlen < sizeof(val), "a label value too long");
            }

            fuzz_assert(p < end, "an unterminated label value: %.*s",
                        (int) len, line);
            p++;

            if (label_is(lname, k, "split")) {
                fuzz_assert(split == -1, "split twice");
                split = split_of(fr, val, vlen);
                fuzz_assert(split >= 0, "label split=\"%.*s\" is no "
                            "split's name", (int) vlen, val);

            } else if (label_is(lname, k, "variant")
                       && vlen < sizeof(variant))
            {
                memcpy(variant, val, vlen);
                variant[vlen] = '\0';

            } else if (label_is(lname, k, "le") && vlen < sizeof(le)) {
                memcpy(le, val, vlen);
                le[vlen] = '\0';

            } else if (label_is(lname, k, "state")) {
                fuzz_assert(slen == (size_t) -1, "state twice");
                memcpy(state, val, vlen);
                slen = vlen;
            }

            if (p < end && *p == ',') {
                p++;
                continue;
            }

            fuzz_assert(p < end && *p == '}', "labels not closed: %.*s",
                        (int) len, line);
            p++;
            break;
        }
    }

    fuzz_assert(p < end && *p == ' ', "no space before the value: %.*s",
                (int) len, line);
    p++;

    value = number(p, (size_t) (end - p), base);

    /* the split's state, unescaped, is the report's: byte for byte */
    if (strcmp(base, "canary_split_info") == 0) {
        fuzz_assert(split >= 0 && slen == fr->splits[split].state_len
                    && memcmp(state, fr->splits[split].state, slen) == 0,
                    "state label is not the split's state: %.*s",
                    (int) len, line);
    }

    if (!f->histogram) {
        if (strncmp(base, "canary_zone_", 12) != 0
            && strcmp(base, "canary_requests_total") != 0
            && strcmp(base, "canary_upstream_errors_total") != 0)
        {
            gauge(fr, base, split, variant, value);
        }

        return;
    }

    fuzz_assert(split >= 0 && (strcmp(variant, "stable") == 0
                               || strcmp(variant, "canary") == 0),
                "a histogram sample without split and variant");

    if (strcmp(suffix, "_bucket") == 0) {
        lev = number(le, strlen(le), "le");

        if (strcmp(rd->hname, base) != 0 || rd->split != (size_t) split
            || strcmp(rd->variant, variant) != 0 || rd->seen_inf)
        {
            /* a new series starts with its first bucket */
            fuzz_assert(rd->seen_inf || rd->hname[0] == '\0',
                        "a series ended without le=\"+Inf\"");

            snprintf(rd->hname, sizeof(rd->hname), "%s", base);
            rd->split = (size_t) split;
            snprintf(rd->variant, sizeof(rd->variant), "%s", variant);
            rd->last_le = -1;
            rd->last_cum = 0;
            rd->seen_inf = 0;
        }

        fuzz_assert(lev > rd->last_le, "le %g after %g", lev, rd->last_le);
        fuzz_assert(value >= rd->last_cum, "bucket le=%s is %g, below the "
                    "one before (%g): not cumulative", le, value,
                    rd->last_cum);

        rd->last_le = lev;
        rd->last_cum = value;

        if (isinf(lev)) {
            rd->seen_inf = 1;
            rd->inf = value;
        }

        return;
    }

    fuzz_assert(rd->seen_inf && rd->split == (size_t) split
                && strcmp(rd->variant, variant) == 0,
                "%s without its buckets up to +Inf", base);

    if (strcmp(suffix, "_count") == 0) {
        fuzz_assert(value == rd->inf, "_count %g, +Inf bucket %g", value,
                    rd->inf);
    }
}


static void
comment(reader_t *rd, const char *line, size_t len)
{
    size_t      n;
    family_t   *f;
    const char *p, *end;
    int         help;

    end = line + len;

    fuzz_assert(len > 7 && (memcmp(line, "# HELP ", 7) == 0
                            || memcmp(line, "# TYPE ", 7) == 0),
                "a comment that is not HELP or TYPE: %.*s", (int) len, line);

    help = line[2] == 'H';
    p = line + 7;

    for (n = 0; p + n < end && name_char(p[n], n == 0); n++) { /* void */ }

    fuzz_assert(n > 0 && n < sizeof(rd->fam[0].name) && p + n < end
                && p[n] == ' ', "a bad family name: %.*s", (int) len, line);

    f = family(rd, p, n);

    if (f == NULL) {
        fuzz_assert(rd->nfam < FUZZ_FAMILIES, "too many families");
        f = &rd->fam[rd->nfam++];
        memcpy(f->name, p, n);
        f->name[n] = '\0';
    }

    p += n + 1;

    if (help) {
        fuzz_assert(!f->help && !f->type, "HELP of %s twice or after TYPE",
                    f->name);
        f->help = 1;
        return;
    }

    fuzz_assert(f->help && !f->type, "TYPE of %s twice or before HELP",
                f->name);

    f->type = 1;
    f->histogram = (size_t) (end - p) == 9 && memcmp(p, "histogram", 9) == 0;

    fuzz_assert(f->histogram
                || ((size_t) (end - p) == 7 && memcmp(p, "counter", 7) == 0)
                || ((size_t) (end - p) == 5 && memcmp(p, "gauge", 5) == 0),
                "type %.*s", (int) (end - p), p);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           *out, *line, *nl;
    size_t          len;
    reader_t        rd;
    fuzz_report_t   fr;

    if (size < 2) {
        return 0;
    }

    fuzz_report_build(&fr, data + 2, size - 2);

    out = fuzz_render(ngx_http_canary_render_prometheus, &fr.rep,
                      (data[0] & 7) == 0, (size_t) data[1] << 8 | data[0],
                      &len);

    fuzz_assert(len > 0 && out[len - 1] == '\n', "no final newline");

    memset(&rd, 0, sizeof(rd));

    for (line = out; line < out + len; line = nl + 1) {
        nl = memchr(line, '\n', (size_t) (out + len - line));

        fuzz_assert(nl != NULL, "a line without a newline");

        if (line[0] == '#') {
            comment(&rd, line, (size_t) (nl - line));

        } else {
            sample(&rd, &fr, line, (size_t) (nl - line));
        }
    }

    free(out);
    fuzz_report_free(&fr);

    return 0;
}
