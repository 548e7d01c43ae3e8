
/*
 * Weights and cookies as they come from nginx.conf, Redis and requests.
 */


#include <check.h>
#include <stdlib.h>
#include <string.h>

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


int
main(void)
{
    int       failed;
    Suite    *s;
    TCase    *tc;
    SRunner  *sr;

    s = suite_create("parse");
    tc = tcase_create("parse");

    tcase_add_test(tc, valid_weights_parse_to_hundredths);
    tcase_add_test(tc, invalid_weights_are_rejected);
    tcase_add_test(tc, weights_format_back_to_the_shortest_form);
    tcase_add_test(tc, cookies_are_found_by_exact_name);
    suite_add_tcase(s, tc);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
