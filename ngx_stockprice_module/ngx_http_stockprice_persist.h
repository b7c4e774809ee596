
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_PERSIST_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_PERSIST_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <ngx_http_stockprice_module.h>


/*
 * state=FILE (CONTRACT 6, Restart): the zone's records on disk, in the
 * format of ngx_http_stockprice_state.h.
 *
 * A zone new to the master is filled from the file before the first
 * refresh (load).  A worker writes the file after a refresh that changed
 * the zone (kick), at most once a second for the zone whichever worker
 * it is, and at its exit if the zone is newer than the file: a copy of
 * the snapshot taken in the worker's thread pool, the file made there
 * (FILE.PID.tmp, fsync, rename, fsync of the directory), so that the
 * clients' path never waits on the disk.  One process writes at a time.
 */

void ngx_http_stockprice_persist_load(ngx_shm_zone_t *shm_zone,
    ngx_http_stockprice_ctx_t *ctx);

ngx_int_t ngx_http_stockprice_persist_init_process(ngx_cycle_t *cycle,
    ngx_http_stockprice_feed_t *feed);
void ngx_http_stockprice_persist_kick(ngx_http_stockprice_ctx_t *ctx);
void ngx_http_stockprice_persist_exit_process(
    ngx_http_stockprice_ctx_t *ctx);


#endif /* _NGX_HTTP_STOCKPRICE_PERSIST_H_INCLUDED_ */
