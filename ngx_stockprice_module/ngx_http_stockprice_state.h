
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_STATE_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_STATE_H_INCLUDED_


/*
 * A zone's records on disk (state=FILE): the text a restarted zone is
 * filled from before its first refresh.  Plain C99, cJSON and zlib: no
 * nginx headers, no logging, no globals.
 *
 * One item a line, names as JSON strings, records as the module serves
 * them, a checksum last:
 *
 *     ngx_stockprice state 1
 *     zone "stocks"
 *     generation 1234
 *     nonce 9f3a0c1d2e4b5a67
 *     last_modified 1714560816
 *     filter 0123456789abcdef
 *     symbols 2
 *     records 3
 *     validators 1
 *     validator 0 00000000075bcd15 "\"5e1f\"" ""
 *     symbol "AAPL" 1233 2
 *     {"id":"…","symbol":"AAPL","price":189.5,…}
 *     {"id":"…","symbol":"AAPL","price":189.25,…}
 *     symbol "MSFT" 1234 1
 *     {"id":"…","symbol":"MSFT","price":411,…}
 *     end 612 5f0c3a2e
 *
 * "end" gives the number of bytes before its line and their CRC-32.
 * There is one way to write a given state: the loader accepts nothing
 * else, so that what it returns, written again, is the same file.
 */


#include <stddef.h>
#include <stdint.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>


#define NGX_HTTP_STOCKPRICE_STATE_VERSION     1

/* history= at most: a symbol with more records is not one we wrote */
#define NGX_HTTP_STOCKPRICE_STATE_HISTORY     1000

/* as validator.h has them, which needs nginx; zone.c checks they agree */
#define NGX_HTTP_STOCKPRICE_STATE_VALIDATORS  32
#define NGX_HTTP_STOCKPRICE_STATE_ETAG        96
#define NGX_HTTP_STOCKPRICE_STATE_DATE        40


typedef enum {
    NGX_HTTP_STOCKPRICE_STATE_OK = 0,
    NGX_HTTP_STOCKPRICE_STATE_TRUNCATED,     /* empty, or cut short */
    NGX_HTTP_STOCKPRICE_STATE_CORRUPT,       /* length or checksum wrong */
    NGX_HTTP_STOCKPRICE_STATE_UNKNOWN,       /* not ours, or a version not
                                                known */
    NGX_HTTP_STOCKPRICE_STATE_OTHER_ZONE,
    NGX_HTTP_STOCKPRICE_STATE_INVALID,       /* intact, but not as we write */
    NGX_HTTP_STOCKPRICE_STATE_TOO_LARGE,     /* more than the zone takes */
    NGX_HTTP_STOCKPRICE_STATE_NOMEM
} ngx_http_stockprice_state_rc_e;


/*
 * A validator of the request "part" (its index in the state): an ETag
 * and a Last-Modified of 0x20..0x7e bytes, one of them at least; key 0
 * is none
 */

typedef struct {
    uint64_t                        key;
    size_t                          etag_len;
    size_t                          date_len;
    char                            etag[NGX_HTTP_STOCKPRICE_STATE_ETAG];
    char                            date[NGX_HTTP_STOCKPRICE_STATE_DATE];
} ngx_http_stockprice_state_validator_t;


/*
 * One symbol: its name (valid by parse_symbol_valid()), "born" as the
 * zone has it, and its records newest first, each the exact text of
 * render_record(), without the separating comma
 */

typedef struct {
    size_t                            name_len;
    uint32_t                          born;
    size_t                            nrecords;
    const ngx_http_stockprice_str_t  *records;
    char                              name[NGX_HTTP_STOCKPRICE_SYMBOL_MAX];
} ngx_http_stockprice_state_sym_t;


typedef struct {
    const char                             *zone;
    size_t                                  zone_len;
    uint64_t                                generation;     /* >= 1 */
    uint64_t                                nonce;
    uint64_t                                filter;
    int64_t                                 last_modified;  /* unix s */
    size_t                                  nsymbols;
    size_t                                  nrecords;       /* all syms' */
    const ngx_http_stockprice_state_sym_t  *syms;          /* sorted */
    ngx_http_stockprice_state_validator_t   validators[
                                        NGX_HTTP_STOCKPRICE_STATE_VALIDATORS];

    /* set by the loader */
    size_t                                  dropped;    /* over history */
    void                                   *mem;        /* from alloc() */
} ngx_http_stockprice_state_t;


typedef void *(*ngx_http_stockprice_state_alloc_pt)(void *data, size_t size);


/*
 * The state file of "st", in nginx's two-pass idiom: with dst NULL only
 * its length.  "st" must be as load() would return it: syms sorted by
 * parse_symbol_cmp(), names valid, 1..STATE_HISTORY records each, none
 * holding a newline, nrecords their sum, generation at least 1,
 * last_modified within years 1970..9999.  Validators with key 0, with
 * neither an ETag nor a date, or with one not as described above, are
 * left out.
 */
size_t ngx_http_stockprice_state_write(char *dst,
    const ngx_http_stockprice_state_t *st);

/*
 * Reads a state file for the zone "zone" into *out, checking every byte:
 * the checksum, the header, each name and count, each record (JSON with
 * the five fields, valid values, and exactly the bytes render_record()
 * makes of them).  What it returns needs no further checks.
 *
 * Of a symbol's records the newest max_history (1..STATE_HISTORY) are
 * kept and the others, still checked, only counted in out->dropped; more
 * than max_symbols symbols is TOO_LARGE.
 *
 * alloc(data, size) is called at most once, after the header is read,
 * for the symbols and the records' pointers (some bytes per record, not
 * their text); out->mem is what it returned, NULL if it was not called,
 * also when load() fails: the caller frees it.  out->zone is "zone", the
 * records' texts point into "data", which must stay.
 *
 * Returns NGX_HTTP_STOCKPRICE_STATE_OK, or another code and a short
 * reason in "err" (printable ASCII, NUL-terminated, no more than a name's
 * worth of the file's bytes).
 */
int ngx_http_stockprice_state_load(const char *data, size_t len,
    const char *zone, size_t zone_len, size_t max_symbols,
    size_t max_history, ngx_http_stockprice_state_alloc_pt alloc,
    void *alloc_data, ngx_http_stockprice_state_t *out, char *err,
    size_t err_size);


#endif /* _NGX_HTTP_STOCKPRICE_STATE_H_INCLUDED_ */
