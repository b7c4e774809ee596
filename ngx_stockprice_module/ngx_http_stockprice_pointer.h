
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_POINTER_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_POINTER_H_INCLUDED_


/*
 * JSON Pointers (RFC 6901): where in an upstream's body its records are,
 * and where in a record its fields are.  Plain C99 and cJSON, as the
 * parser.
 */


#include <stddef.h>

#include <cjson/cJSON.h>


#define NGX_HTTP_STOCKPRICE_POINTER_DEPTH  16
#define NGX_HTTP_STOCKPRICE_POINTER_NONE   ((size_t) -1)


typedef struct ngx_http_stockprice_pointer_s {
    size_t                          n;       /* 0: the whole value */
    const char                     *token[NGX_HTTP_STOCKPRICE_POINTER_DEPTH];
    size_t                          len[NGX_HTTP_STOCKPRICE_POINTER_DEPTH];
} ngx_http_stockprice_pointer_t;


typedef enum {
    NGX_HTTP_STOCKPRICE_POINTER_OK = 0,
    NGX_HTTP_STOCKPRICE_POINTER_NO_SLASH,    /* does not start with "/" */
    NGX_HTTP_STOCKPRICE_POINTER_ESCAPE,      /* "~" not before "0" or "1" */
    NGX_HTTP_STOCKPRICE_POINTER_DEEP,        /* more than 16 tokens */
    NGX_HTTP_STOCKPRICE_POINTER_NUL          /* a NUL byte in it */
} ngx_http_stockprice_pointer_rc_e;


/*
 * Compiles "s" ("" or "/token/token..."): the tokens, "~1" and "~0"
 * undone, are written NUL-terminated to "out" (len + 1 bytes), which must
 * stay while the pointer is used.
 */
int ngx_http_stockprice_pointer_compile(ngx_http_stockprice_pointer_t *p,
    const char *s, size_t len, char *out);

/* the pointer made of one token, a C string that must stay */
void ngx_http_stockprice_pointer_name(ngx_http_stockprice_pointer_t *p,
    const char *name);

/*
 * The value that tokens "from".."n - 1" of "p" name below "v", or NULL.
 * Of an object member given twice the first counts (as
 * cJSON_GetObjectItemCaseSensitive()); in an array a token is an index,
 * decimal without leading zeros.
 */
const cJSON *ngx_http_stockprice_pointer_get(
    const ngx_http_stockprice_pointer_t *p, size_t from, const cJSON *v);

/*
 * 1 if "p" has tokens, none with a '"', '\\' or control byte (as a name
 * is written unescaped), else 0
 */
int ngx_http_stockprice_pointer_plain(const ngx_http_stockprice_pointer_t *p);

/* 1 if both name the same value (the same tokens), else 0 */
int ngx_http_stockprice_pointer_same(const ngx_http_stockprice_pointer_t *a,
    const ngx_http_stockprice_pointer_t *b);

/* is the member name "name" the token "i" of "p" */
int ngx_http_stockprice_pointer_token_is(
    const ngx_http_stockprice_pointer_t *p, size_t i, const char *name);

/*
 * The same on the text: the offset in buf of the first byte of the value
 * that "p" names in the JSON text buf[0..len), found by a scan that knows
 * strings and nesting but builds nothing, so that records nested in a
 * large body need not be parsed whole to be found.  (size_t) -1 when the
 * scan does not find it, whether it is not there or the text is not well
 * formed: then only a parser can tell which.
 */
size_t ngx_http_stockprice_pointer_locate(
    const ngx_http_stockprice_pointer_t *p, const char *buf, size_t len);

/*
 * Where the elements of a slice end: the offsets of its top-level ","s;
 * and, with "find" (else NULL, and at least one token), where in each
 * element (in each value of an object's members) the value is that "find"
 * names: its offset, NONE if it is not there, or WALK if the scan cannot
 * tell (an escaped name on the way, an array, or not well formed), for
 * pointer_locate() to say.  The tokens of "find" must be plain (no '"',
 * '\\' or control byte); with "escaped" 0, the text holds no '\\'.
 */

#define NGX_HTTP_STOCKPRICE_POINTER_MARKS  512
#define NGX_HTTP_STOCKPRICE_POINTER_WALK   ((size_t) -2)

typedef struct {
    size_t                          n;
    size_t                          at[NGX_HTTP_STOCKPRICE_POINTER_MARKS];
    const struct ngx_http_stockprice_pointer_s  *find;
    int                             escaped;   /* a "\\" in the text */
    size_t                          value[NGX_HTTP_STOCKPRICE_POINTER_MARKS
                                          + 1];
} ngx_http_stockprice_pointer_marks_t;

/*
 * From a byte just after "[" or "{", or after a separator inside one: the
 * offset of the next "," at that level, or of the "]" or "}" that closes
 * it (*last 1); with "budget" bytes at least before that ",".  "len" when
 * the text ends first.  With "marks" (else NULL), the ","s before that
 * one are noted in it (and marks->value[] of the elements up to it, when
 * the scan does not end at the text's end), and a "," that finds it full
 * ends the scan too.
 */
size_t ngx_http_stockprice_pointer_scan(const char *buf, size_t start,
    size_t len, size_t budget, int *last,
    ngx_http_stockprice_pointer_marks_t *marks);


/*
 * The offset of the value of the member that starts at buf[i] (blanks
 * before it skipped): past its name and ":"; NONE if there is none.
 */
size_t ngx_http_stockprice_pointer_member_value(const char *buf, size_t i,
    size_t len);

/*
 * One element of an array, or member of an object ("object" 1), from a
 * byte just after "[" or "{" or after the "," that ends the one before:
 * *value is the offset of its value (past the member name and ":"), and
 * the return the offset of the "," or closing byte after it; NONE when
 * the text is not well formed there, or ends.
 */
size_t ngx_http_stockprice_pointer_next(const char *buf, size_t i,
    size_t len, int object, size_t *value);

#endif /* _NGX_HTTP_STOCKPRICE_POINTER_H_INCLUDED_ */
