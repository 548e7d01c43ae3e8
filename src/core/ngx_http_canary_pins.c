
/*
 * The pin table: open addressing over murmur2 hashes of tenant keys,
 * keys compared in full, so a hash collision never pins a wrong tenant.
 */


#include <string.h>

#include "ngx_http_canary_hash.h"
#include "ngx_http_canary_pins.h"


#define ngx_http_canary_pins_slots(p)                                        \
    ((uint32_t *) ((unsigned char *) (p) + sizeof(ngx_http_canary_pins_t)))

#define ngx_http_canary_pins_array(p)                                        \
    ((ngx_http_canary_pin_t *) (ngx_http_canary_pins_slots(p) + (p)->nslots))


static uint32_t ngx_http_canary_pins_nslots(size_t npins);
static uint32_t ngx_http_canary_pins_hash(const unsigned char *key,
    size_t len);


static uint32_t
ngx_http_canary_pins_nslots(size_t npins)
{
    uint32_t  n;

    for (n = 8; n < 2 * npins; n <<= 1) { /* void */ }

    return n;
}


static uint32_t
ngx_http_canary_pins_hash(const unsigned char *key, size_t len)
{
    /* the pin hash is unsalted: a pin names a tenant, not a bucket */
    return ngx_http_canary_murmur2((const unsigned char *) "", 0, key, len);
}


size_t
ngx_http_canary_pins_size(size_t npins, size_t keys_len)
{
    return sizeof(ngx_http_canary_pins_t)
           + ngx_http_canary_pins_nslots(npins) * sizeof(uint32_t)
           + npins * sizeof(ngx_http_canary_pin_t)
           + keys_len;
}


void
ngx_http_canary_pins_init(ngx_http_canary_pins_t *pins, size_t size,
    size_t npins)
{
    pins->size = (uint32_t) size;
    pins->npins = 0;
    pins->nslots = ngx_http_canary_pins_nslots(npins);
    pins->capacity = (uint32_t) npins;

    memset(ngx_http_canary_pins_slots(pins), 0,
           pins->nslots * sizeof(uint32_t));
}


int
ngx_http_canary_pins_add(ngx_http_canary_pins_t *pins,
    const unsigned char *key, size_t len, unsigned variant)
{
    uint32_t                h, i, *slots, offset;
    unsigned char          *keys;
    ngx_http_canary_pin_t  *arr, *pin;

    if (len == 0 || len > NGX_HTTP_CANARY_PIN_KEY_MAX
        || pins->npins == pins->capacity)
    {
        return -1;
    }

    if (ngx_http_canary_pins_lookup(pins, key, len) >= 0) {
        return 1;
    }

    slots = ngx_http_canary_pins_slots(pins);
    arr = ngx_http_canary_pins_array(pins);

    keys = (unsigned char *) (arr + pins->capacity);

    if (pins->npins) {
        pin = &arr[pins->npins - 1];
        offset = pin->offset + pin->len;

    } else {
        offset = (uint32_t) (keys - (unsigned char *) pins);
    }

    if ((size_t) offset + len > pins->size) {
        return -1;
    }

    h = ngx_http_canary_pins_hash(key, len);

    pin = &arr[pins->npins];
    pin->hash = h;
    pin->len = (uint16_t) len;
    pin->variant = (uint16_t) variant;
    pin->offset = offset;

    memcpy((unsigned char *) pins + offset, key, len);

    for (i = h & (pins->nslots - 1);
         slots[i];
         i = (i + 1) & (pins->nslots - 1))
    {
        /* void */
    }

    slots[i] = ++pins->npins;

    return 0;
}


int
ngx_http_canary_pins_lookup(const ngx_http_canary_pins_t *pins,
    const unsigned char *key, size_t len)
{
    uint32_t                      h, i, n, probes, size, npins, nslots,
                                  mask;
    const uint32_t               *slots;
    const ngx_http_canary_pin_t  *arr, *pin;

    if (pins == NULL || len > NGX_HTTP_CANARY_PIN_KEY_MAX) {
        return -1;
    }

    /* the header read once: what is checked is what is used */
    size = pins->size;
    npins = pins->npins;
    nslots = pins->nslots;
    mask = nslots - 1;

    /*
     * slots[] and pins[] must lie within the block (sums in 64 bits
     * cannot overflow), and nslots be a power of two, so that the mask
     * keeps every probe among the slots
     */
    if (npins == 0 || nslots == 0 || (nslots & mask)
        || sizeof(ngx_http_canary_pins_t)
           + (uint64_t) nslots * sizeof(uint32_t)
           + (uint64_t) npins * sizeof(ngx_http_canary_pin_t) > size)
    {
        return -1;
    }

    slots = ngx_http_canary_pins_slots(pins);
    arr = (const ngx_http_canary_pin_t *) (slots + nslots);
    h = ngx_http_canary_pins_hash(key, len);

    for (i = h & mask, probes = 0;
         probes < nslots;
         i = (i + 1) & mask, probes++)
    {
        n = slots[i];

        if (n == 0 || n > npins) {
            return -1;
        }

        pin = &arr[n - 1];

        if (pin->hash != h || pin->len != len
            || (uint64_t) pin->offset + pin->len > size)
        {
            continue;
        }

        if (memcmp((const unsigned char *) pins + pin->offset, key, len)
            == 0)
        {
            return pin->variant;
        }
    }

    return -1;
}
