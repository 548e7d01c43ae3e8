
/*
 * What every unit test shares: its main().  The Makefile lists the
 * file's START_TEST names in UNIT_TESTS, so a test written is a test
 * run; a file ends with UNIT_MAIN(suite name, setup, teardown, timeout),
 * setup and teardown a checked fixture around each test or NULL, the
 * timeout in seconds or 0 for check's default.
 */


#ifndef _UNIT_H_INCLUDED_
#define _UNIT_H_INCLUDED_


#include <check.h>
#include <stdlib.h>


#ifndef UNIT_TESTS
#error "UNIT_TESTS: build unit tests with make, which lists their tests"
#endif


#define UNIT_MAIN(name, setup, teardown, timeout)                             \
    int                                                                       \
    main(void)                                                                \
    {                                                                         \
        const TTest  *tests[] = { UNIT_TESTS };                               \
                                                                              \
        return unit_run(name, tests, sizeof(tests) / sizeof(tests[0]),       \
                        setup, teardown, timeout);                            \
    }


static inline int
unit_run(const char *name, const TTest **tests, size_t n,
    void (*setup)(void), void (*teardown)(void), double timeout)
{
    int       failed;
    size_t    i;
    Suite    *s;
    TCase    *tc;
    SRunner  *sr;

    s = suite_create(name);
    tc = tcase_create(name);

    if (setup != NULL || teardown != NULL) {
        tcase_add_checked_fixture(tc, setup, teardown);
    }

    if (timeout > 0) {
        tcase_set_timeout(tc, timeout);
    }

    for (i = 0; i < n; i++) {
        tcase_add_test(tc, tests[i]);
    }

    suite_add_tcase(s, tc);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}


#endif /* _UNIT_H_INCLUDED_ */
