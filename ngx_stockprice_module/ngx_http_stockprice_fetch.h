
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_FETCH_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_FETCH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <ngx_http_stockprice_module.h>


ngx_int_t ngx_http_stockprice_fetch_init(ngx_cycle_t *cycle,
    ngx_http_stockprice_main_conf_t *spcf);
void ngx_http_stockprice_fetch_exit(ngx_cycle_t *cycle,
    ngx_http_stockprice_main_conf_t *spcf);


#endif /* _NGX_HTTP_STOCKPRICE_FETCH_H_INCLUDED_ */
