
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_SSL_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_SSL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <curl/curl.h>

#include <ngx_http_stockprice_module.h>


/*
 * TLS towards the upstream: the PEM files of ssl_trusted_certificate=,
 * ssl_certificate= and ssl_certificate_key=, read and checked when the
 * configuration is loaded (as nginx's own ssl_certificate_key is, so a
 * key may stay readable by root alone), and the curl options they give.
 */

typedef enum {
    NGX_HTTP_STOCKPRICE_SSL_TRUSTED = 0,
    NGX_HTTP_STOCKPRICE_SSL_CERT,
    NGX_HTTP_STOCKPRICE_SSL_KEY
} ngx_http_stockprice_ssl_file_e;


char *ngx_http_stockprice_ssl_verify(ngx_conf_t *cf,
    ngx_http_stockprice_ssl_t *ssl, ngx_str_t *arg, ngx_str_t *value);
char *ngx_http_stockprice_ssl_file(ngx_conf_t *cf,
    ngx_http_stockprice_ssl_t *ssl, ngx_http_stockprice_ssl_file_e which,
    ngx_str_t *arg, ngx_str_t *value);
char *ngx_http_stockprice_ssl_check(ngx_conf_t *cf,
    ngx_http_stockprice_ssl_t *ssl);
void ngx_http_stockprice_ssl_setopt(CURL *easy,
    ngx_http_stockprice_ssl_t *ssl);


#endif /* _NGX_HTTP_STOCKPRICE_SSL_H_INCLUDED_ */
