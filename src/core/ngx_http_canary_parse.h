
/*
 * Parsers for values that come from outside: nginx.conf, Redis and
 * request headers.  Pure C without the nginx runtime, so that unit tests
 * and fuzzers link them alone.
 */


#ifndef _NGX_HTTP_CANARY_PARSE_H_INCLUDED_
#define _NGX_HTTP_CANARY_PARSE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "ngx_http_canary_limits.h"
#include "ngx_http_canary_contract.h"


/* "100.00" is the longest valid weight */
#define NGX_HTTP_CANARY_WEIGHT_LEN   sizeof("100.00")


/*
 * "5", "0.5", "12.25", "100" -> 500, 50, 1225, 10000;
 * anything else (sign, exponent, spaces, 3 decimals, > 100) -> -1
 */
int32_t ngx_http_canary_parse_weight(const unsigned char *p, size_t len);

/* 1225 -> "12.25", 50 -> "0.5", 500 -> "5"; returns the length written */
size_t ngx_http_canary_format_weight(unsigned char *buf, uint32_t weight);

/* "1" -> 1, "0" -> 0, anything else -> -1 */
int ngx_http_canary_parse_enabled(const unsigned char *p, size_t len);

/* a decimal integer of 1 to 18 digits -> 0 and *value; else -1 */
int ngx_http_canary_parse_generation(const unsigned char *p, size_t len,
    uint64_t *value);

/* free text for the status page: 0 to NGX_HTTP_CANARY_STATE_LEN
 * printable ASCII bytes -> 1 */
int ngx_http_canary_valid_state(const unsigned char *p, size_t len);

/* a node's name in the fleet's records: 1 to NGX_HTTP_CANARY_NODE_LEN - 1
 * bytes of letters, digits, '.', '_', '-' -> 1 (a key part, a log word) */
int ngx_http_canary_valid_node(const unsigned char *p, size_t len);

#define NGX_HTTP_CANARY_UPDATE_COHORTS  NGX_HTTP_CANARY_COHORTS_MAX


/* the fields of one Redis hash <prefix><split>, each validated */
typedef struct {
    unsigned                has_weight:1;
    unsigned                has_enabled:1;
    unsigned                has_generation:1;
    unsigned                has_state:1;
    unsigned                has_updated_by:1;
    unsigned                has_updated_at:1;

    uint32_t                weight;
    int                     enabled;
    uint64_t                generation;

    const unsigned char    *state;
    size_t                  state_len;
    const unsigned char    *updated_by;
    size_t                  updated_by_len;
    const unsigned char    *updated_at;
    size_t                  updated_at_len;

    size_t                  ncohorts;
    struct {
        const unsigned char *name;
        size_t               len;
        uint32_t             weight;
    }                       cohorts[NGX_HTTP_CANARY_UPDATE_COHORTS];

    /* "shadow" */
    unsigned                has_shadow:1;
    uint32_t                shadow;
} ngx_http_canary_update_t;


typedef enum {
    NGX_HTTP_CANARY_FIELD_OK = 0,
    NGX_HTTP_CANARY_FIELD_BAD_VALUE,
    NGX_HTTP_CANARY_FIELD_UNKNOWN,
    NGX_HTTP_CANARY_FIELD_TOO_MANY
} ngx_http_canary_field_e;


/*
 * takes one field of the hash into u (u starts zeroed); a field refused
 * (bad value, unknown, too many) leaves u exactly as it was
 */
ngx_http_canary_field_e ngx_http_canary_update_field(
    ngx_http_canary_update_t *u, const unsigned char *field,
    size_t field_len, const unsigned char *value, size_t value_len);

/*
 * Finds cookie "name" in one Cookie header value ("a=1; b=2").
 * Returns 1 and sets *value, *value_len when found, 0 otherwise.
 */
int ngx_http_canary_find_cookie(const unsigned char *p, size_t len,
    const unsigned char *name, size_t name_len,
    const unsigned char **value, size_t *value_len);


#endif /* _NGX_HTTP_CANARY_PARSE_H_INCLUDED_ */
