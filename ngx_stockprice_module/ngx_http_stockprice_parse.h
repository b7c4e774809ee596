
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_PARSE_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_PARSE_H_INCLUDED_


/*
 * Upstream bytes to records.  Plain C99 and cJSON: no nginx headers, no
 * logging, no globals.  Problems are reported as codes and counts that the
 * nginx side logs once per refresh.
 */


#include <stddef.h>

#include <ngx_http_stockprice_pointer.h>


#define NGX_HTTP_STOCKPRICE_SYMBOL_MAX  32
#define NGX_HTTP_STOCKPRICE_TIME_MAX    40
#define NGX_HTTP_STOCKPRICE_UUID_LEN    36
#define NGX_HTTP_STOCKPRICE_TOKEN_MAX   8192


typedef enum {
    NGX_HTTP_STOCKPRICE_PARSE_OK = 0,
    NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON,
    NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY,
    NGX_HTTP_STOCKPRICE_PARSE_NOT_OBJECT,
    NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN,
    NGX_HTTP_STOCKPRICE_PARSE_NOMEM,
    NGX_HTTP_STOCKPRICE_PARSE_AGAIN,
    NGX_HTTP_STOCKPRICE_PARSE_NOT_FOUND      /* nothing at records= */
} ngx_http_stockprice_parse_rc_e;


/* how a record's value time is written */

typedef enum {
    NGX_HTTP_STOCKPRICE_TIME_ISO = 0,        /* an ISO-8601 string */
    NGX_HTTP_STOCKPRICE_TIME_S,              /* a number since the epoch */
    NGX_HTTP_STOCKPRICE_TIME_MS,
    NGX_HTTP_STOCKPRICE_TIME_US,
    NGX_HTTP_STOCKPRICE_TIME_NS
} ngx_http_stockprice_time_unit_e;


/*
 * Where an upstream's body holds its records (an array, or an object
 * keyed by symbol) and where each record holds its fields.
 */

typedef struct {
    ngx_http_stockprice_pointer_t   records;
    ngx_http_stockprice_pointer_t   symbol;
    ngx_http_stockprice_pointer_t   price;
    ngx_http_stockprice_pointer_t   time;
    ngx_http_stockprice_time_unit_e time_unit;
} ngx_http_stockprice_shape_t;


typedef struct {
    const char                     *data;
    size_t                          len;
} ngx_http_stockprice_str_t;


typedef struct {
    double                          price;
    size_t                          symbol_len;
    size_t                          value_time_len;  /* 0: use measurement */
    unsigned                        has_id;          /* 0: caller makes one */
    size_t                          order;           /* in the body */
    char                            symbol[NGX_HTTP_STOCKPRICE_SYMBOL_MAX];
    char                            value_time[NGX_HTTP_STOCKPRICE_TIME_MAX];
    char                            id[NGX_HTTP_STOCKPRICE_UUID_LEN];
} ngx_http_stockprice_record_t;


typedef struct {
    size_t                          total;       /* array elements seen */
    size_t                          accepted;    /* records returned */
    size_t                          bad_symbol;  /* skipped */
    size_t                          bad_price;   /* skipped */
    size_t                          not_object;  /* skipped */
    size_t                          filtered;    /* not in symbols= */
    size_t                          duplicate;   /* same symbol again */
    size_t                          bad_time;    /* replaced by measurement */
    size_t                          bad_id;      /* replaced by a new uuid */
} ngx_http_stockprice_parse_stats_t;


/*
 * Byte order of symbols: memcmp over the common length, the shorter first
 * on a tie.  Returns <0, 0, >0.
 */
int ngx_http_stockprice_parse_symbol_cmp(const char *a, size_t alen,
    const char *b, size_t blen);

/*
 * Is "s" acceptable as a symbol: 1..32 bytes, valid UTF-8, no control
 * characters (< 0x20 or 0x7f).
 */
int ngx_http_stockprice_parse_symbol_valid(const char *s, size_t len);

/*
 * The length of the UTF-8 sequence at "s" (len > 0): 1 for ASCII, 2 to 4,
 * or 0 if it is not valid (overlong, a surrogate, cut short...)
 */
size_t ngx_http_stockprice_parse_utf8(const unsigned char *s, size_t len);

/*
 * Is "s" among the nfilter symbols of "filter", sorted by
 * ngx_http_stockprice_parse_symbol_cmp() (binary search)
 */
int ngx_http_stockprice_parse_wanted(const ngx_http_stockprice_str_t *filter,
    size_t nfilter, const char *s, size_t len);

/* is s a UUID: 8-4-4-4-12 hex digits */
int ngx_http_stockprice_parse_uuid_valid(const char *s, size_t len);

/* is s an ISO-8601 date-time: YYYY-MM-DDTHH:MM:SS[.f+][Z|+hh:mm|-hh:mm] */
int ngx_http_stockprice_parse_time_valid(const char *s, size_t len);

/*
 * The shape of the original service: the body an array of
 * {"symbol","price","valueDateTime"}
 */
void ngx_http_stockprice_parse_shape_default(ngx_http_stockprice_shape_t *s);

/*
 * A time_field= unit ("iso", "s", "ms", "us", "ns"); -1 if it is none
 */
int ngx_http_stockprice_parse_time_unit(const char *s, size_t len);

/*
 * A value time given as a number of "unit"s since the epoch, the text of
 * a JSON number s[0..len), as ISO-8601 UTC with up to 7 fraction digits,
 * none that is a trailing zero (the .NET form):
 * "2024-01-01T00:00:00.1234567Z", "2024-01-01T00:00:00Z".  Read from its
 * digits, exact to the 100 ns tick (the rest is cut); a double only
 * behind an exponent.  Writes at most NGX_HTTP_STOCKPRICE_TIME_MAX bytes;
 * returns the length, or 0 if the time is before 1970 or after 9999.
 */
size_t ngx_http_stockprice_parse_epoch(char *buf, const char *s, size_t len,
    ngx_http_stockprice_time_unit_e unit);

/*
 * Parses an upstream prices body in the default shape: a JSON array of
 * records (an object is read as records keyed by symbol).
 *
 * "buf" is modified in place (a "\u0000" escape, or a surrogate escape
 * that is not half of a pair, becomes "\u0001" and a raw NUL byte 0x01,
 * so that cJSON can neither cut a symbol short nor refuse the whole body;
 * a record whose symbol, price, value time or id holds one is then
 * treated as having an invalid one).  Anything but white space
 * after the JSON value makes the body NOT_JSON.
 *
 * "filter" (may be NULL when nfilter is 0) lists the wanted symbols sorted
 * by ngx_http_stockprice_parse_symbol_cmp(); records of other symbols are
 * dropped.
 *
 * On NGX_HTTP_STOCKPRICE_PARSE_OK, *records is a malloc()ed array (free()
 * it; NULL when *nrecords is 0) sorted by symbol, one record per symbol:
 * of several with the same symbol the last one in the body wins.
 * "stats" is always filled.
 */
int ngx_http_stockprice_parse_prices(char *buf, size_t len,
    const ngx_http_stockprice_str_t *filter, size_t nfilter,
    ngx_http_stockprice_record_t **records, size_t *nrecords,
    ngx_http_stockprice_parse_stats_t *stats);

/*
 * The same in any shape ("shape" NULL: the default).  "want" (NULL when
 * want_len is 0) is the one symbol asked for, as with $symbol: a record
 * without a symbol takes it, a record of another symbol is dropped (as
 * "filtered"), and an object at records= that holds a price is the one
 * record rather than records keyed by symbol.  NOT_FOUND: nothing at
 * records=; NOT_ARRAY: what is there is neither an array nor an object.
 */
int ngx_http_stockprice_parse_shaped(char *buf, size_t len,
    const ngx_http_stockprice_shape_t *shape, const char *want,
    size_t want_len, const ngx_http_stockprice_str_t *filter, size_t nfilter,
    ngx_http_stockprice_record_t **records, size_t *nrecords,
    ngx_http_stockprice_parse_stats_t *stats);

/*
 * An epoch time of a slice's element, read from its digits before cJSON
 * parses the slice: the digits are blanked ("null" and spaces) for the
 * time of that parse, so that cJSON's strtod() need not read 19 of them
 */

#define NGX_HTTP_STOCKPRICE_EPOCH_TEXT  24

typedef struct {
    size_t                               at;        /* in the body */
    unsigned char                        found;     /* a number there */
    unsigned char                        len;       /* 0: not blanked */
    unsigned char                        time_len;  /* 0: not a time */
    char                                 text[NGX_HTTP_STOCKPRICE_EPOCH_TEXT];
    char                                 time[NGX_HTTP_STOCKPRICE_TIME_MAX];
} ngx_http_stockprice_epoch_t;


/*
 * The same in steps, for a caller that must not hold its thread for the
 * whole body: start(), then step() until it returns anything but AGAIN
 * (each step parses at least "budget" bytes of whole elements, or all
 * that is left), then done() after OK or abort() after an error.  "buf"
 * must stay until then; p->stats is filled as it goes.
 */

typedef struct {
    char                                *buf;
    size_t                               len;
    size_t                               pos;       /* next element */
    size_t                               at;        /* the records */
    const ngx_http_stockprice_shape_t   *shape;
    const char                          *want;
    size_t                               want_len;
    const ngx_http_stockprice_str_t     *filter;
    size_t                               nfilter;
    unsigned                             chunked;   /* "[" or "{" at "at" */
    size_t                               chunks;
    void                                *all;       /* records so far */
    size_t                               n;
    size_t                               size;
    ngx_http_stockprice_parse_stats_t    stats;
    size_t                               mark;      /* n before this body */
    ngx_http_stockprice_parse_stats_t    mark_stats;
    const char                          *raw;       /* the record's text */
    size_t                               raw_len;
    size_t                               slice_end; /* 0: not in slices */
    ngx_http_stockprice_pointer_marks_t  marks;     /* of the slice */
    ngx_http_stockprice_epoch_t         *epochs;    /* by element, or NULL */
    const ngx_http_stockprice_epoch_t   *epoch;     /* the record's */
} ngx_http_stockprice_parser_t;


void ngx_http_stockprice_parse_start(ngx_http_stockprice_parser_t *p,
    char *buf, size_t len, const ngx_http_stockprice_shape_t *shape,
    const char *want, size_t want_len,
    const ngx_http_stockprice_str_t *filter, size_t nfilter);
int ngx_http_stockprice_parse_step(ngx_http_stockprice_parser_t *p,
    size_t budget);
int ngx_http_stockprice_parse_done(ngx_http_stockprice_parser_t *p,
    ngx_http_stockprice_record_t **records, size_t *nrecords);

/*
 * Several bodies of one refresh (one per request): next() after a body's
 * last step starts the next one, the records so far kept, and undo()
 * after a body's failed step drops what that body gave (records and
 * counts); done() then sorts them all, the last in body order winning.
 */
void ngx_http_stockprice_parse_next(ngx_http_stockprice_parser_t *p,
    char *buf, size_t len, const char *want, size_t want_len);
void ngx_http_stockprice_parse_undo(ngx_http_stockprice_parser_t *p);
void ngx_http_stockprice_parse_abort(ngx_http_stockprice_parser_t *p);

/*
 * Parses an auth answer {"token":"...","expiresIn":3600} ("expiresIn" a
 * number or a numeric string).  The token must
 * be a non-empty string of printable ASCII (0x21..0x7e) of at most
 * NGX_HTTP_STOCKPRICE_TOKEN_MAX bytes (it goes into a header).  On OK,
 * *token is malloc()ed (free() it) and *expires_in is the number of
 * seconds, or -1 when absent, not a number, or not positive.
 */
int ngx_http_stockprice_parse_token(const char *buf, size_t len,
    char **token, size_t *token_len, long *expires_in);

/*
 * The same for an OAuth2 token answer (RFC 6749 5.1):
 * {"access_token":"...","token_type":"Bearer","expires_in":3600}; a
 * token_type other than Bearer (any case) is BAD_TOKEN, a missing one is
 * taken for Bearer.
 */
int ngx_http_stockprice_parse_oauth_token(const char *buf, size_t len,
    char **token, size_t *token_len, long *expires_in);

/*
 * Parses a credentials file's contents: the first line (up to "\n" or
 * "\r\n", after a UTF-8 byte-order mark if there is one) split at its
 * first ':'.  Returns 0 and points into "buf"; -1 if there is no ':' in
 * the first line or the username is empty; -2 if the line is not UTF-8.
 */
int ngx_http_stockprice_parse_credentials(const char *buf, size_t len,
    ngx_http_stockprice_str_t *user, ngx_http_stockprice_str_t *password);

/*
 * Parses a demo-feed auth request body {"username":"…","password":"…"}.
 * Returns 1 if both are strings equal to the given ones, else 0.
 */
int ngx_http_stockprice_parse_check_credentials(const char *buf, size_t len,
    const ngx_http_stockprice_str_t *user,
    const ngx_http_stockprice_str_t *password);


#endif /* _NGX_HTTP_STOCKPRICE_PARSE_H_INCLUDED_ */
