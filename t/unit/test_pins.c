
/*
 * Pinned tenants: the table sync builds and every request reads, and a
 * reader that stays within the block whatever its header says.
 */


#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "ngx_http_canary_pins.h"


static const char  *tenants[] = { "acme", "globex", "initech", "umbrella",
                                  NULL };


static ngx_http_canary_pins_t *
build(size_t *size)
{
    size_t                   i, n, keys;
    ngx_http_canary_pins_t  *pins;

    keys = 0;

    for (n = 0; tenants[n]; n++) {
        keys += strlen(tenants[n]);
    }

    /* room for one more: a duplicate is told apart from a full table */
    *size = ngx_http_canary_pins_size(n + 1, keys + 8);

    pins = malloc(*size);
    ck_assert_ptr_nonnull(pins);

    ngx_http_canary_pins_init(pins, *size, n + 1);

    for (i = 0; i < n; i++) {
        ck_assert_int_eq(ngx_http_canary_pins_add(pins,
                             (const unsigned char *) tenants[i],
                             strlen(tenants[i]), (unsigned) (i & 1)), 0);
    }

    return pins;
}


static int
lookup(const ngx_http_canary_pins_t *pins, const char *key)
{
    return ngx_http_canary_pins_lookup(pins, (const unsigned char *) key,
                                       strlen(key));
}


START_TEST(pinned_tenants_are_found_with_their_side)
{
    size_t                   i, size;
    ngx_http_canary_pins_t  *pins;

    pins = build(&size);

    for (i = 0; tenants[i]; i++) {
        ck_assert_int_eq(lookup(pins, tenants[i]), (int) (i & 1));
    }

    ck_assert_int_eq(lookup(pins, "acm"), -1);
    ck_assert_int_eq(lookup(pins, "hooli"), -1);
    ck_assert_int_eq(ngx_http_canary_pins_add(pins,
                         (const unsigned char *) "acme", 4, 1), 1);
    ck_assert_int_eq(lookup(pins, "acme"), 0);

    free(pins);
}
END_TEST


START_TEST(a_header_pointing_outside_the_block_finds_nothing)
{
    size_t                   size;
    ngx_http_canary_pins_t  *pins, saved;

    pins = build(&size);
    saved = *pins;

    /* slots[] far past the block: a lookup once read there */
    pins->nslots = 1U << 30;
    ck_assert_int_eq(lookup(pins, "acme"), -1);

    /* pins[] past the block */
    *pins = saved;
    pins->npins = 0xffffffff;
    ck_assert_int_eq(lookup(pins, "acme"), -1);

    /* the sums would wrap in 32 bits */
    *pins = saved;
    pins->nslots = 1U << 31;
    pins->npins = 0x20000000;
    ck_assert_int_eq(lookup(pins, "acme"), -1);

    /* no slots: the mask would be all ones */
    *pins = saved;
    pins->nslots = 0;
    ck_assert_int_eq(lookup(pins, "acme"), -1);

    /* not a power of two */
    *pins = saved;
    pins->nslots = saved.nslots - 1;
    ck_assert_int_eq(lookup(pins, "acme"), -1);

    /* a block said shorter than its arrays */
    *pins = saved;
    pins->size = sizeof(ngx_http_canary_pins_t) + 4;
    ck_assert_int_eq(lookup(pins, "acme"), -1);

    *pins = saved;
    ck_assert_int_eq(lookup(pins, "acme"), 0);

    free(pins);
}
END_TEST


START_TEST(a_pin_whose_key_lies_outside_the_block_is_skipped)
{
    size_t                   size;
    uint32_t                *slots;
    ngx_http_canary_pins_t  *pins;
    ngx_http_canary_pin_t   *arr;

    pins = build(&size);

    slots = (uint32_t *) (pins + 1);
    arr = (ngx_http_canary_pin_t *) (slots + pins->nslots);

    arr[0].offset = 0xfffffff0;
    ck_assert_int_eq(lookup(pins, "acme"), -1);
    ck_assert_int_eq(lookup(pins, "globex"), 1);

    free(pins);
}
END_TEST


UNIT_MAIN("pins", NULL, NULL, 0)
