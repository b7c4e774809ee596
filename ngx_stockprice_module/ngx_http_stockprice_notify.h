
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_NOTIFY_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_NOTIFY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * A wake-up between workers, which nginx has not: one pipe per worker,
 * made by the master before it starts them (init_module), so that every
 * worker inherits them all.  A worker that published writes a byte to the
 * others'; each reads its own in its event loop and calls "wake", which
 * looks at what changed in the zones.
 */

typedef void (*ngx_http_stockprice_notify_pt)(void *data);


ngx_int_t ngx_http_stockprice_notify_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_stockprice_notify_init_process(ngx_cycle_t *cycle,
    ngx_http_stockprice_notify_pt wake, void *data);
void ngx_http_stockprice_notify_exit_process(void);
void ngx_http_stockprice_notify_others(void);


#endif /* _NGX_HTTP_STOCKPRICE_NOTIFY_H_INCLUDED_ */
