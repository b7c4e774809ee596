
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_VALIDATOR_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_VALIDATOR_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <curl/curl.h>


/*
 * Conditional requests upstream (CONTRACT 8): the ETag and Last-Modified
 * of the answer whose records the zone holds, per request of a refresh,
 * sent back as If-None-Match (or, without an ETag, If-Modified-Since); a
 * 304 is then a refresh that changes nothing.
 *
 * They live in the zone, as the records they describe do: whichever worker
 * holds the lease, and after a reload, asks with them.  The first
 * VALIDATORS requests of a refresh have them (a feed of more, by batch= or
 * $symbol, asks the others unconditionally); longer values are not kept.
 */

#define NGX_HTTP_STOCKPRICE_VALIDATORS     32
#define NGX_HTTP_STOCKPRICE_VALIDATOR_ETAG 96
#define NGX_HTTP_STOCKPRICE_VALIDATOR_DATE 40


typedef struct {
    uint64_t                        key;        /* the request's; 0: none */
    uint8_t                         etag_len;
    uint8_t                         date_len;
    u_char                          etag[NGX_HTTP_STOCKPRICE_VALIDATOR_ETAG];
    u_char                          date[NGX_HTTP_STOCKPRICE_VALIDATOR_DATE];
} ngx_http_stockprice_validator_t;


/* "If-None-Match: ..." or "If-Modified-Since: ...", and its NUL */
#define NGX_HTTP_STOCKPRICE_VALIDATOR_LINE                                    \
    (sizeof("If-Modified-Since: ") + NGX_HTTP_STOCKPRICE_VALIDATOR_ETAG)


void ngx_http_stockprice_validator_get(ngx_http_stockprice_validator_t *v,
    CURL *easy, uint64_t key);
size_t ngx_http_stockprice_validator_line(ngx_http_stockprice_validator_t *v,
    u_char *buf);


#endif /* _NGX_HTTP_STOCKPRICE_VALIDATOR_H_INCLUDED_ */
