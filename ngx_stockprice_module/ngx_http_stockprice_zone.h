
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
#include <ngx_http_stockprice_gzip.h>
#include <ngx_http_stockprice_validator.h>
#include <ngx_http_stockprice_module.h>


#define NGX_HTTP_STOCKPRICE_ERROR_LEN   256
#define NGX_HTTP_STOCKPRICE_LEASE_POLL  1000
/* "nonce-generation", or with the symbols= it was pruned for "...-filter" */
#define NGX_HTTP_STOCKPRICE_ETAG_LEN    (sizeof("\"--\"") - 1 + 16 + 16 + 16)

/*
 * The zone size rule (README, "Zone size"): a zone of at least
 * BASE + symbols * (PER_SYMBOL + PER_RECORD * history) bytes takes every
 * refresh, whatever came before.  It holds for the longest records there
 * can be (RECORD_LONGEST); zone.c checks the rule against the layout.
 */
#define NGX_HTTP_STOCKPRICE_ZONE_BASE        40960
#define NGX_HTTP_STOCKPRICE_ZONE_PER_SYMBOL  140
#define NGX_HTTP_STOCKPRICE_ZONE_PER_RECORD  550


/*
 * One symbol of a snapshot.  Its newest record lies inside the snapshot's
 * list body; the older ones, newest first, as ",r1,r2,..." in "older".
 * "born": the low 32 bits of the generation that brought the newest.
 */

typedef struct {
    u_char                         *newest;
    u_char                         *older;
    uint32_t                       *lens;       /* of older records */
    uint32_t                        newest_len;
    uint32_t                        older_len;
    uint32_t                        born;
    uint16_t                        nrecords;   /* newest + older */
    uint16_t                        name_len;
    u_char                          name[NGX_HTTP_STOCKPRICE_SYMBOL_MAX];
} ngx_http_stockprice_sym_t;


/* the event streams open in one worker, as it last said (status) */

#define NGX_HTTP_STOCKPRICE_STREAM_SLOTS  64
#define NGX_HTTP_STOCKPRICE_STREAM_FRESH  3000   /* ms a count holds */

typedef struct {
    ngx_pid_t                       pid;
    ngx_uint_t                      n;
    ngx_msec_t                      updated;
} ngx_http_stockprice_stream_slot_t;


/*
 * Everything one refresh made visible, at the start of one of the zone's
 * two halves: published by swapping sh->snapshot under the mutex, never
 * changed afterwards but for "filter".
 */

typedef struct {
    uint64_t                        generation;
    uint64_t                        filter;     /* symbols= it was made for */
    time_t                          last_modified;
    size_t                          size;
    ngx_uint_t                      nsymbols;
    ngx_uint_t                      nrecords;
    u_char                         *list;       /* "[r0a,r0b,...]" */
    size_t                          list_len;
    u_char                         *gz;         /* it compressed, or NULL */
    size_t                          gz_len;
    ngx_http_stockprice_sym_t      *syms;       /* sorted by name */
} ngx_http_stockprice_snap_t;


typedef struct {
    /* refresh duty: a lease that expires if its holder dies or stalls */
    ngx_pid_t                       lease_pid;
    uint64_t                        lease;      /* generation: the fence */
    ngx_msec_t                      lease_deadline;
    ngx_msec_t                      next_refresh;
    ngx_msec_t                      last_end;   /* of the last refresh */
    ngx_uint_t                      scheduled;  /* next_refresh is set */
    int64_t                         next_refresh_ms;  /* unix ms, status */
    int64_t                         last_end_ms;

    /* Retry-After, by upstream (CONTRACT 3.3a): none of it before then */
    ngx_msec_t                      held_until[NGX_HTTP_STOCKPRICE_UPSTREAMS];
    int64_t                         held_ms[NGX_HTTP_STOCKPRICE_UPSTREAMS];
                                                /* unix ms, 0: none */
    ngx_uint_t                      answered;   /* 1 + the upstream that
                                                   answered last; 0: none */

    /* the snapshot served lies in one half, the next is made in the other */
    u_char                         *half[2];
    size_t                          half_size;
    size_t                          fixed;      /* zone bytes but halves */

    ngx_http_stockprice_snap_t     *snapshot;   /* NULL: no data yet */
    uint64_t                        generation;
    uint64_t                        nonce;      /* this zone's, ETag */
    time_t                          created;    /* Last-Modified of "[]" */
    uint64_t                        nonce_next; /* after a restore: the
                                                   next publish's; 0 none */

    uint64_t                        refreshes;
    uint64_t                        failures;
    uint64_t                        partial;    /* refreshes, some failed */
    uint64_t                        consecutive_failures;
    uint64_t                        auth_calls;
    uint64_t                        skipped;
    uint64_t                        replaced;   /* value times not valid */
    int64_t                         last_success_ms;
    ngx_http_stockprice_traffic_t   traffic;    /* durations, answers */
    size_t                          last_error_len;
    u_char                          last_error[NGX_HTTP_STOCKPRICE_ERROR_LEN];

    ngx_http_stockprice_stream_slot_t  streams[
                                        NGX_HTTP_STOCKPRICE_STREAM_SLOTS];

    /*
     * state=: the generation the file holds, the process writing it now
     * (0: none) and when that began; records loaded from it at start
     */
    uint64_t                        state_generation;
    ngx_pid_t                       state_pid;
    ngx_msec_t                      state_started;
    ngx_uint_t                      state_failing;  /* how, as said; 0 */
    uint64_t                        restored;

    /* of the answers the records came from, by request (part) */
    ngx_http_stockprice_validator_t  validators[
                                        NGX_HTTP_STOCKPRICE_VALIDATORS];

    /* the token, and the configuration it was obtained for */
    u_char                          token_owner[16];
    ngx_msec_t                      token_renew;  /* 0: never expires */
    size_t                          token_len;    /* 0: none */
    u_char                          token[NGX_HTTP_STOCKPRICE_TOKEN_MAX];
} ngx_http_stockprice_sh_t;


struct ngx_http_stockprice_ctx_s {
    ngx_http_stockprice_sh_t       *sh;
    ngx_slab_pool_t                *shpool;
    ngx_http_stockprice_feed_t     *feed;
    void                           *cache;      /* handler.c's, per worker */
    void                           *streams;    /* stream.c's, per worker */
    void                           *persist;    /* persist.c's, per worker */
};


/*
 * The records of one refresh, sorted by symbol and rendered back to back
 * in "text" (lens[i] bytes each): what a snapshot is made from.
 */

typedef struct {
    ngx_http_stockprice_record_t   *recs;
    ngx_uint_t                      n;
    u_char                         *text;
    uint32_t                       *lens;
    time_t                          last_modified;
} ngx_http_stockprice_batch_t;


/* how one symbol of the new snapshot is made from the old one */

typedef struct {
    ngx_http_stockprice_sym_t      *old;        /* NULL: a new symbol */
    ngx_http_stockprice_record_t   *rec;        /* NULL: no new record */
    u_char                         *rendered;   /* rec in batch->text */
    uint32_t                        rendered_len;
    uint32_t                        nolder;     /* older records kept */
    uint32_t                        older_len;
} ngx_http_stockprice_zone_plan_t;


/* how a refresh ended, for zone_refresh_done() */

typedef struct {
    ngx_str_t                      *error;      /* NULL: it succeeded */
    ngx_uint_t                      partial;    /* some requests failed */
    ngx_uint_t                      skipped;    /* records */
    ngx_uint_t                      replaced;   /* value times */
    ngx_msec_t                      retry_after;  /* auth's: all held */
    ngx_msec_t                     *retry;      /* by upstream, 0: none */
    ngx_uint_t                      answered;   /* as sh->answered; 0:
                                                   none this time */
    uint64_t                        duration_us;
    ngx_http_stockprice_traffic_t  *traffic;    /* bytes, answers */

    /* the requests (bits) whose new answer was applied, its validators */
    uint32_t                        fresh;
    ngx_http_stockprice_validator_t  *validators;
} ngx_http_stockprice_zone_outcome_t;


/* a snapshot made in steps by the lease holder: build_start(), step()... */

typedef struct {
    ngx_http_stockprice_ctx_t      *ctx;
    uint64_t                        lease;
    ngx_http_stockprice_batch_t    *batch;
    ngx_http_stockprice_snap_t     *old;
    ngx_http_stockprice_snap_t     *snap;       /* NULL: still measuring */

    ngx_http_stockprice_zone_plan_t *plan;
    ngx_uint_t                      nplan;
    ngx_uint_t                      filled;
    ngx_uint_t                      oi;         /* old symbols planned */
    ngx_uint_t                      ri;         /* records planned */
    u_char                         *rendered;   /* the next in batch */
    ngx_uint_t                      dropped;    /* symbols= left out */

    size_t                          list_len;
    size_t                          older_len;
    ngx_uint_t                      nlens;
    ngx_uint_t                      nrecords;
    size_t                          size;       /* of the new snapshot */

    u_char                         *p;          /* next list byte */
    u_char                         *q;          /* next older byte */
    uint32_t                       *lens;

    ngx_uint_t                      nsymbols;   /* when too small */
    size_t                          needed;
    uint64_t                        generation; /* it will publish */
    size_t                          gz_size;    /* room for the gzip */
} ngx_http_stockprice_zone_build_t;


/* what a request is answered from, measured and copied under the mutex */

typedef struct {
    ngx_str_t                       symbol;     /* "": the list */
    uint64_t                        since;      /* list: updated after */
    ngx_str_t                      *filter;     /* ?symbols=, or NULL */
    ngx_uint_t                      nfilter;
    ngx_http_stockprice_sym_t     **found;      /* nfilter + 1 of them */

    size_t                          len;
    uint64_t                        generation;
    time_t                          last_modified;
    size_t                          etag_len;
    u_char                          etag[NGX_HTTP_STOCKPRICE_ETAG_LEN];
    u_char                         *last;       /* end of the copy */

    ngx_http_stockprice_snap_t     *snap;
    ngx_http_stockprice_sym_t      *sym;
    ngx_uint_t                      nfound;
    ngx_uint_t                      prune;      /* check symbols= too */
} ngx_http_stockprice_zone_view_t;


/* what a state= write takes of the zone, under its mutex (persist.c) */

typedef struct {
    u_char                         *src;        /* the snapshot served */
    size_t                          size;
    uint64_t                        generation;
    uint64_t                        nonce;
    uint64_t                        filter;
    time_t                          last_modified;
    ngx_http_stockprice_validator_t  validators[
                                        NGX_HTTP_STOCKPRICE_VALIDATORS];
    volatile uint64_t              *current;    /* the zone's generation */
} ngx_http_stockprice_zone_copy_t;


ngx_int_t ngx_http_stockprice_zone_init(ngx_shm_zone_t *shm_zone,
    void *data);
size_t ngx_http_stockprice_zone_size(ngx_uint_t nsymbols,
    ngx_uint_t history);

ngx_int_t ngx_http_stockprice_zone_lease_take(ngx_http_stockprice_ctx_t *ctx,
    ngx_msec_t hold, ngx_uint_t now, uint64_t *lease, ngx_msec_t *wait);
ngx_int_t ngx_http_stockprice_zone_lease_renew(
    ngx_http_stockprice_ctx_t *ctx, uint64_t lease, ngx_msec_t hold);
void ngx_http_stockprice_zone_lease_drop(ngx_http_stockprice_ctx_t *ctx,
    uint64_t lease);

ngx_int_t ngx_http_stockprice_zone_count_auth(ngx_http_stockprice_ctx_t *ctx,
    uint64_t lease);
ngx_int_t ngx_http_stockprice_zone_refresh_done(
    ngx_http_stockprice_ctx_t *ctx, uint64_t lease,
    ngx_http_stockprice_zone_outcome_t *outcome, ngx_msec_t *delay,
    ngx_uint_t *nsymbols);

void ngx_http_stockprice_zone_validator(ngx_http_stockprice_ctx_t *ctx,
    ngx_uint_t part, uint64_t key, ngx_http_stockprice_validator_t *v);
ngx_uint_t ngx_http_stockprice_zone_held(ngx_http_stockprice_ctx_t *ctx);

ngx_int_t ngx_http_stockprice_zone_token_get(ngx_http_stockprice_ctx_t *ctx,
    u_char *buf, size_t size, size_t *len);
ngx_int_t ngx_http_stockprice_zone_token_set(ngx_http_stockprice_ctx_t *ctx,
    uint64_t lease, u_char *token, size_t len, long expires_in);
void ngx_http_stockprice_zone_token_clear(ngx_http_stockprice_ctx_t *ctx,
    u_char *token, size_t len);

ngx_int_t ngx_http_stockprice_zone_prune_due(ngx_http_stockprice_ctx_t *ctx);
ngx_int_t ngx_http_stockprice_zone_build_start(
    ngx_http_stockprice_zone_build_t *b, ngx_http_stockprice_ctx_t *ctx,
    uint64_t lease, ngx_http_stockprice_batch_t *batch, ngx_log_t *log);
ngx_int_t ngx_http_stockprice_zone_build_step(
    ngx_http_stockprice_zone_build_t *b);
ngx_int_t ngx_http_stockprice_zone_build_publish(
    ngx_http_stockprice_zone_build_t *b, u_char *gz, size_t len);
void ngx_http_stockprice_zone_build_free(ngx_http_stockprice_zone_build_t *b);

size_t ngx_http_stockprice_zone_snap_size(ngx_uint_t nsymbols,
    ngx_uint_t nlens, size_t list_len, size_t older_len);
uint32_t *ngx_http_stockprice_zone_snap_lay_out(
    ngx_http_stockprice_snap_t *snap, ngx_uint_t nsymbols, ngx_uint_t nlens,
    size_t list_len);

ngx_int_t ngx_http_stockprice_zone_read(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_zone_view_t *view, u_char *buf, size_t size);
void ngx_http_stockprice_zone_status(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_status_t *st);
ngx_int_t ngx_http_stockprice_zone_read_gz(ngx_http_stockprice_ctx_t *ctx,
    uint64_t generation, u_char *buf, size_t size, size_t *len);
uint64_t ngx_http_stockprice_zone_generation(ngx_http_stockprice_ctx_t *ctx);
void ngx_http_stockprice_zone_streams(ngx_http_stockprice_ctx_t *ctx,
    ngx_uint_t n);

ngx_int_t ngx_http_stockprice_zone_state_claim(ngx_http_stockprice_ctx_t *ctx,
    ngx_msec_t every, ngx_uint_t exiting, ngx_http_stockprice_zone_copy_t *c,
    ngx_pid_t *holder, ngx_msec_t *wait);
void ngx_http_stockprice_zone_state_forget(ngx_http_stockprice_ctx_t *ctx,
    ngx_pid_t pid);
ngx_uint_t ngx_http_stockprice_zone_state_done(ngx_http_stockprice_ctx_t *ctx,
    ngx_int_t rc, uint64_t generation, ngx_uint_t why);


#endif /* _NGX_HTTP_STOCKPRICE_ZONE_H_INCLUDED_ */
