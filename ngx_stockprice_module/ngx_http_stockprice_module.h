
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_MODULE_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <ngx_http_stockprice_parse.h>


#define NGX_HTTP_STOCKPRICE_VERSION  "0.1.0"
#define NGX_HTTP_STOCKPRICE_AGENT    "ngx_stockprice/" \
                                     NGX_HTTP_STOCKPRICE_VERSION

#define NGX_HTTP_STOCKPRICE_AUTH_LOGIN   0
#define NGX_HTTP_STOCKPRICE_AUTH_OAUTH2  1

/* prices requests of one refresh in flight at once, at most */
#define NGX_HTTP_STOCKPRICE_CONCURRENCY_MAX  64


typedef struct ngx_http_stockprice_fetch_s  ngx_http_stockprice_fetch_t;
typedef struct ngx_http_stockprice_ctx_s    ngx_http_stockprice_ctx_t;


/* TLS towards the upstream, see ngx_http_stockprice_ssl.c */

typedef struct {
    ngx_uint_t                      verify;     /* peer and host name */
    ngx_str_t                       trusted;    /* PEM; NULL: system store */
    ngx_str_t                       cert;       /* PEM, or NULL */
    ngx_str_t                       key;        /* PEM, or NULL */
} ngx_http_stockprice_ssl_t;


/* the prices URL and its backup= at most */
#define NGX_HTTP_STOCKPRICE_UPSTREAMS   8


/* one prices request of a refresh */

typedef struct {
    ngx_str_t                       url;        /* NUL-terminated */
    ngx_str_t                       symbol;     /* $symbol's; else empty */
    uint64_t                        key;        /* its validators' */
} ngx_http_stockprice_part_t;


/* one stockprice_poll: its configuration and this worker's poller */

typedef struct {
    ngx_str_t                       url;        /* parts[0].url */
    /* the requests of a refresh: nparts per upstream, the primary's
       first, then each backup='s; upstream u's part i at u * nparts + i */
    ngx_http_stockprice_part_t     *parts;
    ngx_uint_t                      nparts;
    ngx_uint_t                      nupstreams; /* 1 + backup= */
    ngx_uint_t                      batch;      /* 0: all in one */
    ngx_uint_t                      concurrency;
    ngx_str_t                       auth_url;   /* NUL; len 0: no auth */
    ngx_str_t                       auth_body;  /* JSON, or OAuth2 form */
    ngx_uint_t                      auth_type;  /* AUTH_LOGIN, _OAUTH2 */
    ngx_str_t                       auth_basic; /* "Authorization: Basic" */

    ngx_msec_t                      interval;
    ngx_msec_t                      timeout;
    size_t                          max_size;
    ngx_uint_t                      history;
    ngx_uint_t                      gzip;       /* a location's gzip=on */

    ngx_http_stockprice_ssl_t       ssl;
    ngx_str_t                       proxy;      /* NUL; "": none */
    ngx_array_t                    *headers;    /* "Name: value" lines */
    ngx_array_t                    *secrets;    /* request.c's */

    ngx_http_stockprice_shape_t     shape;      /* records=, *_field= */
    ngx_str_t                       records;    /* as configured */

    ngx_http_stockprice_str_t      *filter;     /* sorted symbols= */
    ngx_uint_t                      nfilter;
    uint64_t                        filter_hash;  /* 0: no symbols= */

    /* what a token is obtained for: auth URL, credentials, prices host */
    u_char                          token_owner[16];

    ngx_shm_zone_t                 *shm_zone;

    /* state=: the file, and its directory; NUL-terminated, len 0: none */
    ngx_str_t                       state;
    ngx_str_t                       state_dir;
#if (NGX_THREADS)
    ngx_thread_pool_t              *thread_pool;  /* "default" */
#endif

    ngx_http_stockprice_fetch_t    *fetch;      /* per worker, at runtime */
} ngx_http_stockprice_feed_t;


typedef struct {
    ngx_array_t                     feeds;      /* of feed_t * */
} ngx_http_stockprice_main_conf_t;


typedef struct {
    ngx_shm_zone_t                 *shm_zone;   /* stockprice, _status */
    ngx_uint_t                      status;     /* stockprice_status */
    ngx_uint_t                      stream;     /* stream=on */
    ngx_uint_t                      gzip;       /* gzip=on */
    u_char                         *file;
    ngx_uint_t                      line;

    ngx_array_t                    *demo_symbols;   /* of ngx_str_t */
    ngx_str_t                       demo_user;
    ngx_str_t                       demo_password;
    double                         *demo_prices;    /* per worker walk */
    u_char                          demo_secret[16];
} ngx_http_stockprice_loc_conf_t;


extern ngx_module_t  ngx_http_stockprice_module;
extern ngx_str_t     ngx_http_stockprice_json_type;


ngx_int_t ngx_http_stockprice_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_stockprice_handler_status(ngx_http_request_t *r);
void ngx_http_stockprice_handler_exit(ngx_http_stockprice_ctx_t *ctx);
ngx_int_t ngx_http_stockprice_handler_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_buf_t *b, size_t len);
ngx_int_t ngx_http_stockprice_handler_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *fmt, ...);
ngx_int_t ngx_http_stockprice_handler_not_allowed(ngx_http_request_t *r,
    const char *allow);
ngx_table_elt_t *ngx_http_stockprice_handler_add_header(ngx_http_request_t *r,
    const char *key, u_char *value, size_t len);
ngx_int_t ngx_http_stockprice_handler_no_cache(ngx_http_request_t *r);

ngx_int_t ngx_http_stockprice_demo_handler(ngx_http_request_t *r);
char *ngx_http_stockprice_demo_feed(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_stockprice_conf_credentials(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *user, ngx_str_t *password);
char *ngx_http_stockprice_conf_symbols(ngx_conf_t *cf, ngx_str_t *list,
    ngx_array_t **symbols);
char *ngx_http_stockprice_conf_read(ngx_conf_t *cf, ngx_str_t *file,
    const char *what, size_t max, ngx_str_t *content);


#endif /* _NGX_HTTP_STOCKPRICE_MODULE_H_INCLUDED_ */
