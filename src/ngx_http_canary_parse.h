
/*
 * Parsers for values that come from outside: nginx.conf, Redis and
 * request headers.  Pure C without the nginx runtime, so that unit tests
 * and fuzzers link them alone.
 */


#ifndef _NGX_HTTP_CANARY_PARSE_H_INCLUDED_
#define _NGX_HTTP_CANARY_PARSE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* weights are kept in hundredths of a percent: 0 .. 10000 */
#define NGX_HTTP_CANARY_WEIGHT_MAX   10000

/* "100.00" is the longest valid weight */
#define NGX_HTTP_CANARY_WEIGHT_LEN   sizeof("100.00")


/*
 * "5", "0.5", "12.25", "100" -> 500, 50, 1225, 10000;
 * anything else (sign, exponent, spaces, 3 decimals, > 100) -> -1
 */
int32_t ngx_http_canary_parse_weight(const unsigned char *p, size_t len);

/* 1225 -> "12.25", 50 -> "0.5", 500 -> "5"; returns the length written */
size_t ngx_http_canary_format_weight(unsigned char *buf, uint32_t weight);

/*
 * Finds cookie "name" in one Cookie header value ("a=1; b=2").
 * Returns 1 and sets *value, *value_len when found, 0 otherwise.
 */
int ngx_http_canary_find_cookie(const unsigned char *p, size_t len,
    const unsigned char *name, size_t name_len,
    const unsigned char **value, size_t *value_len);


#endif /* _NGX_HTTP_CANARY_PARSE_H_INCLUDED_ */
