
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_ZONE_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_ZONE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>
#include <ngx_http_stockprice_module.h>


#define NGX_HTTP_STOCKPRICE_ERROR_LEN  256
#define NGX_HTTP_STOCKPRICE_LEASE_POLL 1000
#define NGX_HTTP_STOCKPRICE_ETAG_LEN   (2 + NGX_INT64_LEN * 2 + 1)


/*
 * One symbol of a snapshot.  Its newest record lies inside the snapshot's
 * list body; the older ones, newest first, as ",r1,r2,..." in "older".
 */

typedef struct {
    u_char                         *newest;
    u_char                         *older;
    uint32_t                       *lens;       /* of older records */
    uint32_t                        newest_len;
    uint32_t                        older_len;
    uint32_t                        nrecords;   /* newest + older */
    uint32_t                        name_len;
    u_char                          name[NGX_HTTP_STOCKPRICE_SYMBOL_MAX];
} ngx_http_stockprice_sym_t;


/*
 * Everything one refresh made visible, in one slab allocation: published
 * by swapping sh->snapshot under the mutex, never changed afterwards.
 */

typedef struct {
    uint64_t                        generation;
    time_t                          last_modified;
    size_t                          size;
    ngx_uint_t                      nsymbols;
    ngx_uint_t                      nrecords;
    u_char                         *list;       /* "[r0a,r0b,...]" */
    size_t                          list_len;
    ngx_http_stockprice_sym_t      *syms;       /* sorted by name */
} ngx_http_stockprice_snap_t;


typedef struct {
    /* refresh duty: a lease that expires if its holder dies */
    ngx_pid_t                       lease_pid;
    ngx_msec_t                      lease_deadline;
    ngx_msec_t                      next_refresh;
    ngx_msec_t                      last_end;   /* of the last refresh */
    ngx_uint_t                      scheduled;  /* next_refresh is set */

    u_char                         *token;      /* slab, NULL: none */
    size_t                          token_len;
    ngx_msec_t                      token_renew;  /* 0: never expires */

    ngx_http_stockprice_snap_t     *snapshot;   /* NULL: no data yet */
    uint64_t                        generation;
    time_t                          epoch;      /* zone creation, ETag */

    uint64_t                        refreshes;
    uint64_t                        failures;
    uint64_t                        consecutive_failures;
    uint64_t                        auth_calls;
    uint64_t                        skipped;
    int64_t                         last_success_ms;
    size_t                          last_error_len;
    u_char                          last_error[NGX_HTTP_STOCKPRICE_ERROR_LEN];
} ngx_http_stockprice_sh_t;


/*
 * A worker's own copy of the list of one snapshot, made by the first
 * request after a refresh, then sent by every request of that generation
 * without copying (from memory, or by sendfile() from a memfd).  Freed
 * when superseded and no request sends it any more.
 */

typedef struct {
    ngx_http_stockprice_ctx_t      *ctx;
    uint64_t                        generation;
    ngx_uint_t                      refs;       /* requests sending it */
    time_t                          last_modified;
    size_t                          etag_len;
    u_char                          etag[NGX_HTTP_STOCKPRICE_ETAG_LEN];
    size_t                          http_time_len;  /* 0: none */
    u_char                          http_time[sizeof(
                                        "Mon, 28 Sep 1970 06:00:00 GMT")];
    ngx_file_t                      file;       /* fd -1: memory only */
    size_t                          len;
    u_char                         *data;
} ngx_http_stockprice_cache_t;


/*
 * The records of one refresh, rendered ahead of publish() a slice at a
 * time, so that a large refresh never holds the worker for long.
 */

typedef struct {
    ngx_http_stockprice_record_t   *recs;       /* owned: free()d */
    ngx_uint_t                      n;
    ngx_uint_t                      rendered;   /* the first ones */
    u_char                         *text;       /* theirs, back to back */
    u_char                         *last;
    uint32_t                       *lens;
    time_t                          last_modified;
    size_t                          mtime_len;
    char                            mtime[NGX_HTTP_STOCKPRICE_ISO_LEN];
} ngx_http_stockprice_batch_t;


struct ngx_http_stockprice_ctx_s {
    ngx_http_stockprice_sh_t       *sh;
    ngx_slab_pool_t                *shpool;
    ngx_http_stockprice_feed_t     *feed;
    ngx_http_stockprice_cache_t    *cache;      /* this worker's, or NULL */
};


ngx_int_t ngx_http_stockprice_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);

ngx_int_t ngx_http_stockprice_lease_acquire(ngx_http_stockprice_ctx_t *ctx,
    ngx_msec_t hold, ngx_msec_t *wait);
void ngx_http_stockprice_lease_extend(ngx_http_stockprice_ctx_t *ctx,
    ngx_msec_t hold, ngx_uint_t auth);
ngx_msec_t ngx_http_stockprice_lease_release(ngx_http_stockprice_ctx_t *ctx,
    ngx_str_t *error, ngx_uint_t skipped);
void ngx_http_stockprice_lease_abandon(ngx_http_stockprice_ctx_t *ctx);

ngx_int_t ngx_http_stockprice_token_get(ngx_http_stockprice_ctx_t *ctx,
    u_char *buf, size_t size, size_t *len);
ngx_int_t ngx_http_stockprice_token_set(ngx_http_stockprice_ctx_t *ctx,
    u_char *token, size_t len, long expires_in);
void ngx_http_stockprice_token_clear(ngx_http_stockprice_ctx_t *ctx,
    u_char *token, size_t len);

ngx_int_t ngx_http_stockprice_batch_init(ngx_http_stockprice_batch_t *batch,
    ngx_http_stockprice_record_t *recs, ngx_uint_t n, struct timeval *tv,
    ngx_log_t *log);
ngx_int_t ngx_http_stockprice_batch_render(ngx_http_stockprice_batch_t *batch,
    ngx_uint_t max);
void ngx_http_stockprice_batch_free(ngx_http_stockprice_batch_t *batch);
ngx_int_t ngx_http_stockprice_publish(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_batch_t *batch, size_t *needed, ngx_log_t *log);

size_t ngx_http_stockprice_etag(ngx_http_stockprice_sh_t *sh, u_char *buf);

ngx_http_stockprice_cache_t *ngx_http_stockprice_cache_get(
    ngx_http_stockprice_ctx_t *ctx, ngx_uint_t file, ngx_log_t *log);
void ngx_http_stockprice_cache_release(ngx_http_stockprice_cache_t *cache);
void ngx_http_stockprice_cache_exit(ngx_http_stockprice_ctx_t *ctx);


#endif /* _NGX_HTTP_STOCKPRICE_ZONE_H_INCLUDED_ */
