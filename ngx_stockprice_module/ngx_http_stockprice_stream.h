
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_STREAM_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_STREAM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <ngx_http_stockprice_zone.h>


/*
 * A publish wakes the other workers (ngx_http_stockprice_notify.c); a
 * worker with streams also looks at the zone this often, should a wake-up
 * have gone amiss, and sends heartbeats and its count of streams then
 */
#define NGX_HTTP_STOCKPRICE_STREAM_POLL       1000

/* a change of the count of streams goes to the zone at most this often */
#define NGX_HTTP_STOCKPRICE_STREAM_REPORT     25

/* a stream silent this long gets a comment */
#define NGX_HTTP_STOCKPRICE_STREAM_HEARTBEAT  10000

/* unsent bytes a stream may have: this, or twice the list if more */
#define NGX_HTTP_STOCKPRICE_STREAM_BOUND      (1024 * 1024)


ngx_int_t ngx_http_stockprice_stream_wanted(ngx_http_request_t *r);
ngx_int_t ngx_http_stockprice_stream_start(ngx_http_request_t *r,
    ngx_http_stockprice_ctx_t *ctx, ngx_http_stockprice_zone_view_t *view);
void ngx_http_stockprice_stream_wake(ngx_http_stockprice_ctx_t *ctx);
void ngx_http_stockprice_stream_quit(ngx_http_stockprice_ctx_t *ctx);


#endif /* _NGX_HTTP_STOCKPRICE_STREAM_H_INCLUDED_ */
