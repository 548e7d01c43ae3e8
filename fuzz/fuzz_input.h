
/*
 * Helpers shared by the fuzz targets: a reader that takes integers and
 * byte strings off the front of the fuzzer's input, and a splitter for
 * the text formats of the seed corpora, where the first bytes of an
 * input choose its own separators (so that any byte can still appear
 * in a field or a value).
 */


#ifndef _NGX_HTTP_CANARY_FUZZ_INPUT_H_INCLUDED_
#define _NGX_HTTP_CANARY_FUZZ_INPUT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* a failed check: print why and abort, so that libFuzzer keeps the input */
#define fuzz_assert(cond, ...)                                               \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz check failed at %s:%d: %s\n  ",            \
                    __FILE__, __LINE__, #cond);                              \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
            abort();                                                         \
        }                                                                    \
    } while (0)


typedef struct {
    const uint8_t  *p;
    const uint8_t  *end;
} fuzz_in_t;


static inline void
fuzz_in_init(fuzz_in_t *in, const uint8_t *data, size_t size)
{
    in->p = data;
    in->end = data + size;
}


static inline size_t
fuzz_in_left(const fuzz_in_t *in)
{
    return (size_t) (in->end - in->p);
}


/* 0 once the input is used up */
static inline uint8_t
fuzz_in_u8(fuzz_in_t *in)
{
    return in->p < in->end ? *in->p++ : 0;
}


static inline uint64_t
fuzz_in_uint(fuzz_in_t *in, size_t bytes)
{
    size_t    i;
    uint64_t  v;

    v = 0;

    for (i = 0; i < bytes; i++) {
        v = (v << 8) | fuzz_in_u8(in);
    }

    return v;
}


/* a string of up to max bytes: a length byte, then the bytes */
static inline size_t
fuzz_in_bytes(fuzz_in_t *in, uint8_t *buf, size_t max)
{
    size_t  n;

    n = fuzz_in_u8(in);

    if (n > max) {
        n %= max + 1;
    }

    if (n > fuzz_in_left(in)) {
        n = fuzz_in_left(in);
    }

    memcpy(buf, in->p, n);
    in->p += n;

    return n;
}


/*
 * The next piece up to sep (or the end); 0 when nothing is left.  The
 * separator itself is consumed.
 */
static inline int
fuzz_in_split(fuzz_in_t *in, uint8_t sep, const uint8_t **piece,
    size_t *len)
{
    const uint8_t  *q;

    if (in->p >= in->end) {
        return 0;
    }

    q = memchr(in->p, sep, (size_t) (in->end - in->p));

    if (q == NULL) {
        q = in->end;
    }

    *piece = in->p;
    *len = (size_t) (q - in->p);

    in->p = q < in->end ? q + 1 : q;

    return 1;
}


/* a heap copy of exactly len bytes: ASan sees any read past the end */
static inline uint8_t *
fuzz_dup(const uint8_t *p, size_t len)
{
    uint8_t  *d;

    d = malloc(len ? len : 1);
    if (d == NULL) {
        abort();
    }

    if (len) {
        memcpy(d, p, len);
    }

    return d;
}


/* a heap copy with a terminating zero, for the C-string parsers */
static inline char *
fuzz_strdup(const uint8_t *p, size_t len)
{
    char  *d;

    d = malloc(len + 1);
    if (d == NULL) {
        abort();
    }

    memcpy(d, p, len);
    d[len] = '\0';

    return d;
}


#endif /* _NGX_HTTP_CANARY_FUZZ_INPUT_H_INCLUDED_ */
