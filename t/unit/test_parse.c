
/*
 * Weights and cookies as they come from nginx.conf, Redis and requests.
 */


#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "ngx_http_canary_parse.h"


static int32_t
weight(const char *s)
{
    return ngx_http_canary_parse_weight((const unsigned char *) s,
                                        strlen(s));
}


START_TEST(valid_weights_parse_to_hundredths)
{
    ck_assert_int_eq(weight("0"), 0);
    ck_assert_int_eq(weight("5"), 500);
    ck_assert_int_eq(weight("0.5"), 50);
    ck_assert_int_eq(weight("0.05"), 5);
    ck_assert_int_eq(weight("12.25"), 1225);
    ck_assert_int_eq(weight("100"), 10000);
    ck_assert_int_eq(weight("100.0"), 10000);
    ck_assert_int_eq(weight("100.00"), 10000);
    ck_assert_int_eq(weight("007"), 700);
}
END_TEST


START_TEST(invalid_weights_are_rejected)
{
    const char  *bad[] = { "", "-1", "101", "100.01", "abc", "5.555", "5.",
                           ".5", " 5", "5 ", "1e2", "+5", "5,5", "1000",
                           "5.5.5", "0x10", "nan", NULL };
    int          i;

    for (i = 0; bad[i]; i++) {
        ck_assert_msg(weight(bad[i]) == -1, "\"%s\" accepted", bad[i]);
    }

    /* no terminating zero is needed: only len bytes are read */
    ck_assert_int_eq(ngx_http_canary_parse_weight(
                         (const unsigned char *) "57", 1), 500);
}
END_TEST


START_TEST(weights_format_back_to_the_shortest_form)
{
    uint32_t       w;
    size_t         n;
    unsigned char  buf[NGX_HTTP_CANARY_WEIGHT_LEN];

    struct { uint32_t w; const char *s; } cases[] = {
        { 0, "0" }, { 50, "0.5" }, { 5, "0.05" }, { 500, "5" },
        { 1225, "12.25" }, { 1230, "12.3" }, { 10000, "100" }
    };

    for (w = 0; w < sizeof(cases) / sizeof(cases[0]); w++) {
        n = ngx_http_canary_format_weight(buf, cases[w].w);
        ck_assert_int_eq(n, strlen(cases[w].s));
        ck_assert(memcmp(buf, cases[w].s, n) == 0);
    }

    /* every weight survives a round trip */
    for (w = 0; w <= 10000; w++) {
        n = ngx_http_canary_format_weight(buf, w);
        ck_assert_int_eq(ngx_http_canary_parse_weight(buf, n), (int32_t) w);
    }
}
END_TEST


static int
cookie(const char *header, const char *name, char *out)
{
    size_t                len;
    const unsigned char  *v;

    if (!ngx_http_canary_find_cookie((const unsigned char *) header,
                                     strlen(header),
                                     (const unsigned char *) name,
                                     strlen(name), &v, &len))
    {
        return 0;
    }

    memcpy(out, v, len);
    out[len] = '\0';

    return 1;
}


START_TEST(cookies_are_found_by_exact_name)
{
    char  v[64];

    ck_assert(cookie("canary=always", "canary", v));
    ck_assert_str_eq(v, "always");

    ck_assert(cookie("a=1; canary=never; b=2", "canary", v));
    ck_assert_str_eq(v, "never");

    ck_assert(cookie("a=1;canary=\"always\"", "canary", v));
    ck_assert_str_eq(v, "always");

    ck_assert(cookie("canary=", "canary", v));
    ck_assert_str_eq(v, "");

    ck_assert(!cookie("xcanary=always", "canary", v));
    ck_assert(!cookie("canaryx=always", "canary", v));
    ck_assert(!cookie("canary", "canary", v));
    ck_assert(!cookie("=;;=", "canary", v));
    ck_assert(!cookie("", "canary", v));
    ck_assert(!cookie(";;;;", "canary", v));
}
END_TEST


static ngx_http_canary_field_e
field(ngx_http_canary_update_t *u, const char *f, const char *v)
{
    return ngx_http_canary_update_field(u, (const unsigned char *) f,
                                        strlen(f), (const unsigned char *) v,
                                        strlen(v));
}


START_TEST(a_refused_field_changes_nothing)
{
    size_t                     i;
    ngx_http_canary_update_t   u, before;

    static const char  *bad[][2] = {
        { "enabled", "2" }, { "enabled", "" }, { "enabled", "true" },
        { "weight", "101" }, { "generation", "-1" },
        { "generation", "1234567890123456789" }, { "state", "a\nb" },
        { "weight.beta", "x" }, { "colour", "blue" }
    };

    /* refused before anything was taken: u stays zeroed */
    memset(&u, 0, sizeof(u));
    memset(&before, 0, sizeof(before));

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_ne(field(&u, bad[i][0], bad[i][1]),
                         NGX_HTTP_CANARY_FIELD_OK);
        ck_assert_msg(memcmp(&u, &before, sizeof(u)) == 0,
                      "refused %s=\"%s\" changed a fresh update",
                      bad[i][0], bad[i][1]);
    }

    /* and after good values: they stay */
    ck_assert_int_eq(field(&u, "enabled", "1"), NGX_HTTP_CANARY_FIELD_OK);
    ck_assert_int_eq(field(&u, "weight", "5"), NGX_HTTP_CANARY_FIELD_OK);
    ck_assert_int_eq(field(&u, "generation", "7"), NGX_HTTP_CANARY_FIELD_OK);
    ck_assert_int_eq(field(&u, "state", "ramping"),
                     NGX_HTTP_CANARY_FIELD_OK);
    ck_assert_int_eq(field(&u, "weight.beta", "1"),
                     NGX_HTTP_CANARY_FIELD_OK);

    memcpy(&before, &u, sizeof(u));

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_ne(field(&u, bad[i][0], bad[i][1]),
                         NGX_HTTP_CANARY_FIELD_OK);
        ck_assert_msg(memcmp(&u, &before, sizeof(u)) == 0,
                      "refused %s=\"%s\" changed the update", bad[i][0],
                      bad[i][1]);
    }

    ck_assert_int_eq(u.enabled, 1);
    ck_assert_int_eq(u.has_enabled, 1);
    ck_assert_uint_eq(u.weight, 500);
    ck_assert_uint_eq(u.generation, 7);
}
END_TEST


UNIT_MAIN("parse", NULL, NULL, 0)
