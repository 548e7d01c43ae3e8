
/*
 * Pinned tenants: an immutable, self-contained table built by the worker
 * that syncs Redis and read by every worker without a lock.  It is one
 * block of memory (it lives in the shared zone), with offsets, not
 * pointers, and every read is bounds-checked against the block size, so
 * even a block being replaced cannot lead a reader outside it.
 *
 * Pure C: compiles without the nginx runtime.
 */


#ifndef _NGX_HTTP_CANARY_PINS_H_INCLUDED_
#define _NGX_HTTP_CANARY_PINS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "ngx_http_canary_limits.h"


typedef struct {
    uint32_t   hash;
    uint16_t   len;
    uint16_t   variant;
    uint32_t   offset;          /* of the key bytes, from the block start */
} ngx_http_canary_pin_t;


typedef struct {
    uint32_t   size;            /* of the whole block */
    uint32_t   npins;
    uint32_t   nslots;          /* a power of two, at least 2 * npins */
    uint32_t   capacity;        /* pins the block was sized for */
    /*
     * uint32_t               slots[nslots];   pin index + 1, 0 is empty
     * ngx_http_canary_pin_t  pins[npins];
     * u_char                 keys[];
     */
} ngx_http_canary_pins_t;


/* bytes a table of npins pins whose keys add up to keys_len takes */
size_t ngx_http_canary_pins_size(size_t npins, size_t keys_len);

/* starts a table in a block of "size" bytes (from pins_size) */
void ngx_http_canary_pins_init(ngx_http_canary_pins_t *pins, size_t size,
    size_t npins);

/*
 * adds a pin; returns 0, 1 when the key is already pinned (the first pin
 * stays), -1 when the block is full
 */
int ngx_http_canary_pins_add(ngx_http_canary_pins_t *pins,
    const unsigned char *key, size_t len, unsigned variant);

/* the pinned variant of key, or -1 */
int ngx_http_canary_pins_lookup(const ngx_http_canary_pins_t *pins,
    const unsigned char *key, size_t len);


#endif /* _NGX_HTTP_CANARY_PINS_H_INCLUDED_ */
