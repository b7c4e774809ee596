
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_CURL_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_CURL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <curl/curl.h>


/*
 * libcurl's multi interface on nginx's events and timers: one multi handle
 * per worker, its sockets watched as nginx connections, its timeout an
 * nginx timer.  "done" is called when a transfer ends (the easy handle is
 * still in the multi handle: the callee removes it); "quit" when a
 * graceful shutdown begins, so that transfers in flight are abandoned at
 * once.
 */

typedef void (*ngx_http_stockprice_curl_done_pt)(CURL *easy,
    CURLcode result);
typedef void (*ngx_http_stockprice_curl_quit_pt)(void *data);


ngx_int_t ngx_http_stockprice_curl_init(ngx_cycle_t *cycle,
    ngx_http_stockprice_curl_done_pt done,
    ngx_http_stockprice_curl_quit_pt quit, void *data);
void ngx_http_stockprice_curl_exit(ngx_cycle_t *cycle);

ngx_int_t ngx_http_stockprice_curl_ready(void);
ngx_int_t ngx_http_stockprice_curl_add(CURL *easy);
void ngx_http_stockprice_curl_remove(CURL *easy);   /* and cleans it up */
void ngx_http_stockprice_curl_share(CURL *easy);


#endif /* _NGX_HTTP_STOCKPRICE_CURL_H_INCLUDED_ */
