
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_REQUEST_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_REQUEST_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <ngx_http_stockprice_module.h>


/*
 * What a prices request is made of: the URL and the header= headers, with
 * their placeholders ($NAME of a secret=, $symbols) put in when the
 * configuration is loaded; and the secrets kept out of every text the
 * module writes.
 */

char *ngx_http_stockprice_request_secret(ngx_conf_t *cf,
    ngx_array_t **secrets, ngx_str_t *arg, ngx_str_t *value);
char *ngx_http_stockprice_request_header(ngx_conf_t *cf,
    ngx_array_t **headers, ngx_str_t *arg, ngx_str_t *value);
char *ngx_http_stockprice_request_make(ngx_conf_t *cf,
    ngx_http_stockprice_feed_t *feed, ngx_str_t *urls, ngx_uint_t nurls,
    ngx_str_t *list, ngx_array_t *symbols, ngx_array_t *secrets,
    ngx_array_t *headers);
size_t ngx_http_stockprice_request_scrub(ngx_http_stockprice_feed_t *feed,
    u_char *buf, size_t len, size_t size);


#endif /* _NGX_HTTP_STOCKPRICE_REQUEST_H_INCLUDED_ */
