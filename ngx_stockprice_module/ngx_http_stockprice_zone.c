
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#if (NGX_LINUX)
#include <sys/random.h>
#endif

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>
#include <ngx_http_stockprice_module.h>
#include <ngx_http_stockprice_zone.h>
#include <ngx_http_stockprice_persist.h>


#define NGX_HTTP_STOCKPRICE_BACKOFF_MAX  60000

/*
 * A snapshot is made in steps, each under the mutex, so that neither the
 * worker's clients nor other workers' wait for more than a step (some
 * 20 us): symbols measured, then symbols and their bytes copied.
 */
#define NGX_HTTP_STOCKPRICE_MEASURE_STEP  4096      /* symbols */
#define NGX_HTTP_STOCKPRICE_FILL_STEP     1024      /* symbols */
#define NGX_HTTP_STOCKPRICE_FILL_BYTES    262144


#define ngx_http_stockprice_zone_holds(sh, gen)                               \
    ((sh)->lease_pid == ngx_pid && (sh)->lease == (gen))

/* a build goes on while its lease holds and what it builds on is served */
#define ngx_http_stockprice_zone_build_current(b)                             \
    (ngx_http_stockprice_zone_holds((b)->ctx->sh, (b)->lease)                 \
     && (b)->ctx->sh->snapshot == (b)->old)


static ngx_uint_t ngx_http_stockprice_zone_history(
    ngx_http_stockprice_feed_t *feed);
static size_t ngx_http_stockprice_zone_snap_max(ngx_uint_t nsymbols,
    ngx_uint_t history, ngx_uint_t gzip);
static ngx_msec_t ngx_http_stockprice_zone_hold(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_zone_outcome_t *outcome, ngx_time_t *tp);
static void ngx_http_stockprice_zone_check_rule(ngx_shm_zone_t *shm_zone,
    ngx_http_stockprice_ctx_t *ctx);
static ngx_int_t ngx_http_stockprice_zone_token_valid(
    ngx_http_stockprice_ctx_t *ctx);
static ngx_uint_t ngx_http_stockprice_zone_wanted(
    ngx_http_stockprice_feed_t *feed, u_char *name, size_t len);
static void ngx_http_stockprice_zone_measure(
    ngx_http_stockprice_zone_build_t *b);
static void ngx_http_stockprice_zone_plan_older(
    ngx_http_stockprice_zone_plan_t *pl, ngx_uint_t history);
static void ngx_http_stockprice_zone_publish(
    ngx_http_stockprice_zone_build_t *b);
static void ngx_http_stockprice_zone_place(
    ngx_http_stockprice_zone_build_t *b);
static ngx_uint_t ngx_http_stockprice_zone_fill(
    ngx_http_stockprice_zone_build_t *b);
static void ngx_http_stockprice_zone_fill_older(
    ngx_http_stockprice_zone_build_t *b, ngx_http_stockprice_zone_plan_t *pl,
    ngx_http_stockprice_sym_t *sym);
static ngx_int_t ngx_http_stockprice_zone_measure_view(
    ngx_http_stockprice_ctx_t *ctx, ngx_http_stockprice_zone_view_t *view);
static ngx_uint_t ngx_http_stockprice_zone_in_view(
    ngx_http_stockprice_ctx_t *ctx, ngx_http_stockprice_zone_view_t *view,
    ngx_http_stockprice_sym_t *sym);
static void ngx_http_stockprice_zone_measure_filter(
    ngx_http_stockprice_ctx_t *ctx, ngx_http_stockprice_zone_view_t *view);
static u_char *ngx_http_stockprice_zone_copy(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_zone_view_t *view, u_char *p);
static ngx_http_stockprice_sym_t *ngx_http_stockprice_zone_find(
    ngx_http_stockprice_snap_t *snap, u_char *name, size_t len);
static int ngx_libc_cdecl ngx_http_stockprice_zone_cmp_ptr(const void *one,
    const void *two);
static ngx_uint_t ngx_http_stockprice_zone_streams_open(
    ngx_http_stockprice_sh_t *sh);
static size_t ngx_http_stockprice_zone_etag(ngx_http_stockprice_sh_t *sh,
    uint64_t pruned, u_char *buf);
static uint64_t ngx_http_stockprice_zone_nonce(void);


/*
 * A fresh zone: the header, then what is left in two equal halves, the
 * only allocations there are: no later allocation can fail for holes
 * left by earlier ones.
 */

ngx_int_t
ngx_http_stockprice_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_stockprice_ctx_t  *octx = data;

    size_t                      len, size;
    ngx_slab_pool_t            *shpool;
    ngx_http_stockprice_sh_t   *sh;
    ngx_http_stockprice_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* a reload with the same name and size: keep everything */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;

        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    ctx->shpool = shpool;

    if (shm_zone->shm.exists) {
        ctx->sh = shpool->data;
        return NGX_OK;
    }

    len = sizeof(" in stockprice zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in stockprice zone \"%V\"%Z",
                &shm_zone->shm.name);

    shpool->log_nomem = 0;

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_stockprice_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sh;
    ctx->sh = sh;
    sh->nonce = ngx_http_stockprice_zone_nonce();
    sh->created = ngx_time();

    size = (shpool->pfree / 2) << ngx_pagesize_shift;

    if (size == 0) {
        return NGX_ERROR;
    }

    sh->half[0] = ngx_slab_alloc(shpool, size);
    sh->half[1] = ngx_slab_alloc(shpool, size);

    if (sh->half[0] == NULL || sh->half[1] == NULL) {
        return NGX_ERROR;
    }

    sh->half_size = size;
    sh->fixed = shm_zone->shm.size - 2 * size;

    ngx_http_stockprice_zone_check_rule(shm_zone, ctx);

    /* a zone new to this master: what state= kept of the last one */

    if (ctx->feed->state.len) {
        ngx_http_stockprice_persist_load(shm_zone, ctx);
    }

    return NGX_OK;
}


/* the rule: the zone size that S symbols at history H need */

size_t
ngx_http_stockprice_zone_size(ngx_uint_t nsymbols, ngx_uint_t history)
{
    return NGX_HTTP_STOCKPRICE_ZONE_BASE
           + nsymbols * (NGX_HTTP_STOCKPRICE_ZONE_PER_SYMBOL
                         + NGX_HTTP_STOCKPRICE_ZONE_PER_RECORD * history);
}


/* the history the rule is applied with: gzip=on counts as one record more */

static ngx_uint_t
ngx_http_stockprice_zone_history(ngx_http_stockprice_feed_t *feed)
{
    return feed->history + (feed->gzip ? 1 : 0);
}


/*
 * The largest snapshot of S symbols at history H, longest records, with
 * the list compressed too when "gzip"
 */

static size_t
ngx_http_stockprice_zone_snap_max(ngx_uint_t nsymbols, ngx_uint_t history,
    ngx_uint_t gzip)
{
    size_t  list;

    list = 2 + nsymbols * (NGX_HTTP_STOCKPRICE_RECORD_LONGEST + 1);

    return sizeof(ngx_http_stockprice_snap_t)
           + nsymbols * sizeof(ngx_http_stockprice_sym_t)
           + nsymbols * (history - 1) * sizeof(uint32_t)
           + 2 + nsymbols * history * (NGX_HTTP_STOCKPRICE_RECORD_LONGEST + 1)
           + (gzip ? ngx_http_stockprice_gzip_bound(list) : 0);
}


/* the most symbols the rule lets this zone hold fit in a half: say if not */

static void
ngx_http_stockprice_zone_check_rule(ngx_shm_zone_t *shm_zone,
    ngx_http_stockprice_ctx_t *ctx)
{
    size_t      base;
    ngx_uint_t  n, history;

    history = ngx_http_stockprice_zone_history(ctx->feed);
    base = NGX_HTTP_STOCKPRICE_ZONE_BASE;

    if (shm_zone->shm.size <= base) {
        return;
    }

    n = (shm_zone->shm.size - base)
        / (NGX_HTTP_STOCKPRICE_ZONE_PER_SYMBOL
           + NGX_HTTP_STOCKPRICE_ZONE_PER_RECORD * history);

    if (n && ngx_http_stockprice_zone_snap_max(n, ctx->feed->history,
                                               ctx->feed->gzip)
             > ctx->sh->half_size)
    {
        ngx_log_error(NGX_LOG_ALERT, shm_zone->shm.log, 0,
                      "stockprice zone \"%V\": the size rule does not hold "
                      "with pages of %ui bytes", &shm_zone->shm.name,
                      ngx_pagesize);
    }
}


/*
 * Takes refresh duty when it is due (or at once, "force"), unless another
 * process holds it; *lease is then the fence that every later call of
 * the holder shows.  NGX_DECLINED: look again in *wait ms.  A holder that
 * is gone (killed) loses it at once: kill() is asked outside the mutex.
 */

ngx_int_t
ngx_http_stockprice_zone_lease_take(ngx_http_stockprice_ctx_t *ctx,
    ngx_msec_t hold, ngx_uint_t force, uint64_t *lease, ngx_msec_t *wait)
{
    uint64_t                   seen;
    ngx_pid_t                  holder;
    ngx_uint_t                 gone;
    ngx_msec_t                 now, interval;
    ngx_msec_int_t             left, since;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;
    interval = ctx->feed->interval;
    now = ngx_current_msec;
    gone = 0;
    seen = 0;

    for ( ;; ) {
        ngx_shmtx_lock(&ctx->shpool->mutex);

        left = (ngx_msec_int_t) (sh->lease_deadline - now);

        if (sh->lease_pid != 0 && sh->lease_pid != ngx_pid && left > 0
            && !(gone && sh->lease == seen))
        {
            holder = sh->lease_pid;
            seen = sh->lease;

            ngx_shmtx_unlock(&ctx->shpool->mutex);

            if (!gone && kill(holder, 0) == -1 && ngx_errno == NGX_ESRCH) {
                gone = 1;
                continue;
            }

            /* look again when its lease ends, or sooner: it may be given up */
            *wait = ngx_min((ngx_msec_t) left,
                            NGX_HTTP_STOCKPRICE_LEASE_POLL);
            return NGX_DECLINED;
        }

        if (sh->scheduled && !force) {
            left = (ngx_msec_int_t) (sh->next_refresh - now);

            /*
             * a reload may have shortened the interval: after a success it
             * counts from the end of the last refresh at once
             */

            since = (ngx_msec_int_t) (sh->last_end + interval - now);

            if (sh->consecutive_failures == 0 && since < left) {
                left = since;
            }

            if (left > 0) {
                ngx_shmtx_unlock(&ctx->shpool->mutex);
                *wait = left;
                return NGX_DECLINED;
            }
        }

        sh->lease_pid = ngx_pid;
        sh->lease_deadline = now + hold;
        *lease = ++sh->lease;

        ngx_shmtx_unlock(&ctx->shpool->mutex);

        return NGX_OK;
    }
}


/* NGX_DECLINED: the lease is lost, the holder must drop its work */

ngx_int_t
ngx_http_stockprice_zone_lease_renew(ngx_http_stockprice_ctx_t *ctx,
    uint64_t lease, ngx_msec_t hold)
{
    ngx_int_t                  rc;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (ngx_http_stockprice_zone_holds(sh, lease)) {
        sh->lease_deadline = ngx_current_msec + hold;
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


/* gives the lease up, the schedule unchanged: the next workers go on */

void
ngx_http_stockprice_zone_lease_drop(ngx_http_stockprice_ctx_t *ctx,
    uint64_t lease)
{
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (ngx_http_stockprice_zone_holds(sh, lease)) {
        sh->lease_pid = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/* an auth request is sent: counted whatever its answer, by the holder */

ngx_int_t
ngx_http_stockprice_zone_count_auth(ngx_http_stockprice_ctx_t *ctx,
    uint64_t lease)
{
    ngx_int_t                  rc;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (ngx_http_stockprice_zone_holds(sh, lease)) {
        sh->auth_calls++;
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


/*
 * A refresh ended ("error" NULL: it succeeded): its outcome counted (with
 * the records it skipped and the value times it replaced), the
 * next one scheduled, the lease given up, all at once and only by the
 * holder; NGX_DECLINED: the lease was lost, nothing changed.  *delay is
 * the time to the next refresh, *nsymbols those the zone serves.
 */

ngx_int_t
ngx_http_stockprice_zone_refresh_done(ngx_http_stockprice_ctx_t *ctx,
    uint64_t lease, ngx_http_stockprice_zone_outcome_t *outcome,
    ngx_msec_t *delay, ngx_uint_t *nsymbols)
{
    ngx_str_t                 *error;
    ngx_uint_t                 n;
    ngx_msec_t                 wait, interval;
    ngx_time_t                *tp;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;
    interval = ctx->feed->interval;
    wait = interval;
    tp = ngx_timeofday();

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (!ngx_http_stockprice_zone_holds(sh, lease)) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_DECLINED;
    }

    error = outcome->error;
    sh->skipped += outcome->skipped;
    sh->replaced += outcome->replaced;

    ngx_http_stockprice_render_duration_add(&sh->traffic,
                                            outcome->duration_us);

    if (outcome->traffic) {
        sh->traffic.response_bytes += outcome->traffic->response_bytes;

        for (n = 0; n < NGX_HTTP_STOCKPRICE_ANSWER_CLASSES; n++) {
            sh->traffic.answers[n] += outcome->traffic->answers[n];
        }
    }

    if (error == NULL) {
        sh->refreshes++;
        sh->partial += outcome->partial ? 1 : 0;

        /*
         * the answers applied: their validators (none, if they had none);
         * the requests that failed or answered 304 keep theirs
         */

        for (n = 0; n < NGX_HTTP_STOCKPRICE_VALIDATORS; n++) {
            if (outcome->fresh & ((uint32_t) 1 << n)) {
                sh->validators[n] = outcome->validators[n];
            }
        }

        sh->consecutive_failures = 0;
        sh->last_success_ms = (int64_t) tp->sec * 1000 + tp->msec;

    } else {
        sh->failures++;
        sh->consecutive_failures++;
        sh->last_error_len = ngx_min(error->len,
                                     NGX_HTTP_STOCKPRICE_ERROR_LEN);
        ngx_memcpy(sh->last_error, error->data, sh->last_error_len);

        /* back off: interval, 2 x interval, 4 x ... up to a minute */

        n = ngx_min(sh->consecutive_failures - 1, 16);

        while (n-- && wait < NGX_HTTP_STOCKPRICE_BACKOFF_MAX) {
            wait *= 2;
        }

        wait = ngx_min(wait, ngx_max(interval,
                                     NGX_HTTP_STOCKPRICE_BACKOFF_MAX));
    }

    if (outcome->answered) {
        sh->answered = outcome->answered;
    }

    wait = ngx_max(wait, ngx_http_stockprice_zone_hold(ctx, outcome, tp));

    sh->next_refresh = ngx_current_msec + wait;
    sh->last_end = ngx_current_msec;
    sh->last_end_ms = (int64_t) tp->sec * 1000 + tp->msec;
    sh->next_refresh_ms = sh->last_end_ms + wait;
    sh->scheduled = 1;
    sh->lease_pid = 0;

    *nsymbols = sh->snapshot ? sh->snapshot->nsymbols : 0;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    *delay = wait;

    return NGX_OK;
}


/*
 * Under the mutex: 429 or 503 with Retry-After, nothing to that upstream
 * before then (to any, when auth asked it); how long until one is free
 */

static ngx_msec_t
ngx_http_stockprice_zone_hold(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_zone_outcome_t *outcome, ngx_time_t *tp)
{
    ngx_uint_t                 n;
    ngx_msec_t                 retry, hold;
    ngx_msec_int_t             left;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;
    hold = NGX_MAX_INT32_VALUE;

    for (n = 0; n < ctx->feed->nupstreams; n++) {
        retry = outcome->retry ? outcome->retry[n] : 0;
        retry = ngx_max(retry, outcome->retry_after);

        if (retry) {
            sh->held_until[n] = ngx_current_msec + retry;
            sh->held_ms[n] = (int64_t) tp->sec * 1000 + tp->msec + retry;
        }

        left = (ngx_msec_int_t) (sh->held_until[n] - ngx_current_msec);

        if (sh->held_ms[n] == 0 || left <= 0) {
            hold = 0;

        } else {
            hold = ngx_min(hold, (ngx_msec_t) left);
        }
    }

    return hold;
}


/*
 * The validators of the answer the zone's records of request "part" came
 * from, if they were kept for this request (a reload that changed it
 * made them another's): v->key 0 otherwise
 */

void
ngx_http_stockprice_zone_validator(ngx_http_stockprice_ctx_t *ctx,
    ngx_uint_t part, uint64_t key, ngx_http_stockprice_validator_t *v)
{
    ngx_http_stockprice_sh_t  *sh;

    v->key = 0;

    if (part >= NGX_HTTP_STOCKPRICE_VALIDATORS) {
        return;
    }

    sh = ctx->sh;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (sh->validators[part].key == key) {
        *v = sh->validators[part];
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/* the upstreams (bits) that asked with Retry-After not to be called yet */

ngx_uint_t
ngx_http_stockprice_zone_held(ngx_http_stockprice_ctx_t *ctx)
{
    ngx_uint_t                 n, mask;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;
    mask = 0;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    for (n = 0; n < ctx->feed->nupstreams; n++) {
        if (sh->held_ms[n]
            && (ngx_msec_int_t) (sh->held_until[n] - ngx_current_msec) > 0)
        {
            mask |= (ngx_uint_t) 1 << n;
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return mask;
}


/* the caller's holds, not only the token: the zone's */

static ngx_int_t
ngx_http_stockprice_zone_token_valid(ngx_http_stockprice_ctx_t *ctx)
{
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;

    return sh->token_len
           && ngx_memcmp(sh->token_owner, ctx->feed->token_owner,
                         sizeof(sh->token_owner)) == 0
           && (sh->token_renew == 0
               || (ngx_msec_int_t) (sh->token_renew - ngx_current_msec) > 0);
}


/*
 * The zone's token, if it was obtained for this configuration's auth URL,
 * credentials and prices host, and is not due for renewal
 */

ngx_int_t
ngx_http_stockprice_zone_token_get(ngx_http_stockprice_ctx_t *ctx,
    u_char *buf, size_t size, size_t *len)
{
    ngx_int_t                  rc;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (ngx_http_stockprice_zone_token_valid(ctx) && sh->token_len <= size) {
        ngx_memcpy(buf, sh->token, sh->token_len);
        *len = sh->token_len;
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


ngx_int_t
ngx_http_stockprice_zone_token_set(ngx_http_stockprice_ctx_t *ctx,
    uint64_t lease, u_char *token, size_t len, long expires_in)
{
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;

    if (len > sizeof(sh->token)) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (!ngx_http_stockprice_zone_holds(sh, lease)) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_DECLINED;
    }

    ngx_memcpy(sh->token, token, len);
    sh->token_len = len;
    ngx_memcpy(sh->token_owner, ctx->feed->token_owner,
               sizeof(sh->token_owner));

    /* renew after nine tenths of the lifetime */

    if (expires_in > 0) {
        sh->token_renew = ngx_current_msec + (ngx_msec_t) expires_in * 900;

        if (sh->token_renew == 0) {
            sh->token_renew = 1;
        }

    } else {
        sh->token_renew = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


/* only the token that was refused: another may have been set since */

void
ngx_http_stockprice_zone_token_clear(ngx_http_stockprice_ctx_t *ctx,
    u_char *token, size_t len)
{
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (sh->token_len == len && ngx_memcmp(sh->token, token, len) == 0) {
        ngx_explicit_memzero(sh->token, len);
        sh->token_len = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/* a reload changed symbols=: the snapshot may hold symbols to drop */

ngx_int_t
ngx_http_stockprice_zone_prune_due(ngx_http_stockprice_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    rc = sh->snapshot && sh->snapshot->filter != ctx->feed->filter_hash;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


/* is a symbol one that symbols= asks for (all are without symbols=) */

static ngx_uint_t
ngx_http_stockprice_zone_wanted(ngx_http_stockprice_feed_t *feed,
    u_char *name, size_t len)
{
    return feed->nfilter == 0
           || ngx_http_stockprice_parse_wanted(feed->filter, feed->nfilter,
                                               (char *) name, len);
}


/*
 * A new snapshot from the current one and a batch (records sorted by
 * symbol; none for a prune), made in the half not served: the old symbols
 * and the new records merged, symbols that symbols= no longer asks for
 * left out.  Every step takes the mutex and checks the lease first, so a
 * worker that lost it never writes a byte and never reads a half that
 * the new holder may be writing.
 */

ngx_int_t
ngx_http_stockprice_zone_build_start(ngx_http_stockprice_zone_build_t *b,
    ngx_http_stockprice_ctx_t *ctx, uint64_t lease,
    ngx_http_stockprice_batch_t *batch, ngx_log_t *log)
{
    ngx_uint_t                 n;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;

    ngx_memzero(b, sizeof(ngx_http_stockprice_zone_build_t));

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (!ngx_http_stockprice_zone_holds(sh, lease)) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ABORT;
    }

    b->old = sh->snapshot;
    n = b->old ? b->old->nsymbols : 0;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    b->plan = ngx_alloc((batch->n + n + 1)
                        * sizeof(ngx_http_stockprice_zone_plan_t), log);
    if (b->plan == NULL) {
        return NGX_ERROR;
    }

    b->ctx = ctx;
    b->lease = lease;
    b->batch = batch;
    b->rendered = batch->text;

    return NGX_OK;
}


/*
 * NGX_AGAIN: call again (after a turn of the event loop); NGX_OK: the new
 * snapshot is served; NGX_DONE: nothing changed; NGX_DECLINED: the zone
 * is too small (b->nsymbols, b->needed); NGX_ABORT: the lease is lost
 */

ngx_int_t
ngx_http_stockprice_zone_build_step(ngx_http_stockprice_zone_build_t *b)
{
    ngx_http_stockprice_sh_t   *sh;
    ngx_http_stockprice_ctx_t  *ctx;

    ctx = b->ctx;
    sh = ctx->sh;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (!ngx_http_stockprice_zone_build_current(b)) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ABORT;
    }

    if (b->snap == NULL) {
        ngx_http_stockprice_zone_measure(b);

        if (b->oi < (b->old ? b->old->nsymbols : 0) || b->ri < b->batch->n) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return NGX_AGAIN;
        }

        if (b->batch->n == 0 && b->dropped == 0) {
            /* all it holds is still asked for */
            if (b->old) {
                b->old->filter = ctx->feed->filter_hash;
            }

            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return NGX_DONE;
        }

        /* the list's brackets and commas too */

        b->list_len += 2 + (b->nplan ? b->nplan - 1 : 0);

        b->size = ngx_http_stockprice_zone_snap_size(b->nplan, b->nlens,
                                                     b->list_len,
                                                     b->older_len);

        /* with gzip=on, room for the list compressed, at the end */

        if (ctx->feed->gzip) {
            b->gz_size = ngx_http_stockprice_gzip_bound(b->list_len);
            b->size += b->gz_size;
        }

        if (b->size > sh->half_size) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);

            b->nsymbols = b->nplan;
            b->needed = ngx_http_stockprice_zone_size(b->nplan,
                                 ngx_http_stockprice_zone_history(ctx->feed));
            return NGX_DECLINED;
        }

        ngx_http_stockprice_zone_place(b);
    }

    if (!ngx_http_stockprice_zone_fill(b)) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_AGAIN;
    }

    if (b->gz_size) {
        /* the list is whole: compressed by the caller, then published */
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_BUSY;
    }

    ngx_http_stockprice_zone_publish(b);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


/*
 * After NGX_BUSY: the list compressed ("gz" NULL if that failed: the
 * snapshot is served without) put in its place, and the snapshot served.
 * NGX_ABORT: the lease is lost.
 */

ngx_int_t
ngx_http_stockprice_zone_build_publish(ngx_http_stockprice_zone_build_t *b,
    u_char *gz, size_t len)
{
    ngx_http_stockprice_ctx_t  *ctx;

    ctx = b->ctx;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (!ngx_http_stockprice_zone_build_current(b)) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ABORT;
    }

    if (gz && len <= b->gz_size) {
        b->snap->gz = b->snap->list + b->snap->list_len + b->older_len;
        b->snap->gz_len = len;
        ngx_memcpy(b->snap->gz, gz, len);
    }

    ngx_http_stockprice_zone_publish(b);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


/* under the mutex: the snapshot built is the one served */

static void
ngx_http_stockprice_zone_publish(ngx_http_stockprice_zone_build_t *b)
{
    ngx_http_stockprice_sh_t    *sh;
    ngx_http_stockprice_snap_t  *snap;

    sh = b->ctx->sh;
    snap = b->snap;

    snap->generation = ++sh->generation;
    snap->filter = b->ctx->feed->filter_hash;

    if (sh->nonce_next) {
        /* restored: the instance before may have published this one */
        sh->nonce = sh->nonce_next;
        sh->nonce_next = 0;
    }

    sh->snapshot = snap;
}


void
ngx_http_stockprice_zone_build_free(ngx_http_stockprice_zone_build_t *b)
{
    if (b->plan) {
        ngx_free(b->plan);
    }

    ngx_memzero(b, sizeof(ngx_http_stockprice_zone_build_t));
}


/* a step of the plan: which symbols, and how many bytes each */

static void
ngx_http_stockprice_zone_measure(ngx_http_stockprice_zone_build_t *b)
{
    int                               c;
    ngx_uint_t                        n, onsyms, prune;
    ngx_http_stockprice_feed_t       *feed;
    ngx_http_stockprice_sym_t        *osym;
    ngx_http_stockprice_batch_t      *batch;
    ngx_http_stockprice_record_t     *rec;
    ngx_http_stockprice_zone_plan_t  *pl;

    feed = b->ctx->feed;
    batch = b->batch;
    onsyms = b->old ? b->old->nsymbols : 0;
    prune = b->old && b->old->filter != feed->filter_hash;

    for (n = 0; n < NGX_HTTP_STOCKPRICE_MEASURE_STEP; n++) {

        osym = (b->oi < onsyms) ? &b->old->syms[b->oi] : NULL;
        rec = (b->ri < batch->n) ? &batch->recs[b->ri] : NULL;

        if (osym == NULL && rec == NULL) {
            break;
        }

        if (osym == NULL) {
            c = 1;

        } else if (rec == NULL) {
            c = -1;

        } else {
            c = ngx_http_stockprice_parse_symbol_cmp((char *) osym->name,
                                                     osym->name_len,
                                                     rec->symbol,
                                                     rec->symbol_len);
        }

        pl = &b->plan[b->nplan];
        ngx_memzero(pl, sizeof(ngx_http_stockprice_zone_plan_t));

        if (c <= 0) {
            pl->old = osym;
            b->oi++;
        }

        if (c >= 0) {
            pl->rec = rec;
            pl->rendered = b->rendered;
            pl->rendered_len = batch->lens[b->ri];
            b->rendered += pl->rendered_len;
            b->ri++;
        }

        /* a new record's symbol is asked for: the parser filtered them */

        if (pl->rec == NULL && prune
            && !ngx_http_stockprice_zone_wanted(feed, osym->name,
                                                osym->name_len))
        {
            b->dropped++;
            continue;
        }

        ngx_http_stockprice_zone_plan_older(pl, feed->history);

        b->list_len += pl->rec ? pl->rendered_len : pl->old->newest_len;
        b->older_len += pl->older_len;
        b->nlens += pl->nolder;
        b->nrecords += 1 + pl->nolder;
        b->nplan++;
    }
}


/* the older records a symbol keeps: its old ones, and its old newest */

static void
ngx_http_stockprice_zone_plan_older(ngx_http_stockprice_zone_plan_t *pl,
    ngx_uint_t history)
{
    ngx_uint_t                  k, kept, nrecords;
    ngx_http_stockprice_sym_t  *old;

    old = pl->old;

    if (old == NULL || (pl->rec && history == 1)) {
        return;
    }

    nrecords = old->nrecords;

    if (pl->rec) {
        pl->nolder = ngx_min(nrecords, history - 1);
        pl->older_len = 1 + old->newest_len;
        kept = pl->nolder - 1;

    } else {
        pl->nolder = ngx_min(nrecords - 1, history - 1);
        kept = pl->nolder;
    }

    /* all the old older ones, or all but the last: the usual cases */

    if (kept == nrecords - 1) {
        pl->older_len += old->older_len;

    } else if (kept + 1 == nrecords - 1) {
        pl->older_len += old->older_len - (1 + old->lens[kept]);

    } else {
        /* a reload shortened history */
        for (k = 0; k < kept; k++) {
            pl->older_len += 1 + old->lens[k];
        }
    }
}


/*
 * A snapshot's layout, at the start of a half: the snapshot, its symbols,
 * the lengths of the older records, the list "[r0,r1,...]", the older
 * records ",r1,r2..." of each symbol, then, with gzip=on, room for the
 * list compressed.  Its size without that room; its parts placed, the
 * lengths' start returned.
 */

size_t
ngx_http_stockprice_zone_snap_size(ngx_uint_t nsymbols, ngx_uint_t nlens,
    size_t list_len, size_t older_len)
{
    return sizeof(ngx_http_stockprice_snap_t)
           + nsymbols * sizeof(ngx_http_stockprice_sym_t)
           + nlens * sizeof(uint32_t)
           + list_len + older_len;
}


uint32_t *
ngx_http_stockprice_zone_snap_lay_out(ngx_http_stockprice_snap_t *snap,
    ngx_uint_t nsymbols, ngx_uint_t nlens, size_t list_len)
{
    uint32_t  *lens;

    snap->syms = (ngx_http_stockprice_sym_t *) (snap + 1);

    lens = (uint32_t *) (snap->syms + nsymbols);
    snap->list = (u_char *) (lens + nlens);
    snap->list_len = list_len;

    return lens;
}


/* where the new snapshot's parts go, at the start of the other half */

static void
ngx_http_stockprice_zone_place(ngx_http_stockprice_zone_build_t *b)
{
    u_char                      *half;
    ngx_http_stockprice_sh_t    *sh;
    ngx_http_stockprice_snap_t  *snap;

    sh = b->ctx->sh;

    half = (b->old && (u_char *) b->old == sh->half[0]) ? sh->half[1]
                                                         : sh->half[0];

    snap = (ngx_http_stockprice_snap_t *) half;

    /* no other publishes while the lease holds: this one is the next */

    b->generation = sh->generation + 1;

    snap->generation = 0;
    snap->gz = NULL;
    snap->gz_len = 0;
    snap->size = b->size;
    snap->last_modified = b->batch->n ? b->batch->last_modified
                                      : b->old->last_modified;
    snap->nsymbols = b->nplan;
    snap->nrecords = b->nrecords;
    b->lens = ngx_http_stockprice_zone_snap_lay_out(snap, b->nplan, b->nlens,
                                                    b->list_len);

    b->p = snap->list;
    b->q = snap->list + b->list_len;
    *b->p++ = '[';

    b->snap = snap;
}


/* a step of the copies; 1: all done */

static ngx_uint_t
ngx_http_stockprice_zone_fill(ngx_http_stockprice_zone_build_t *b)
{
    u_char                           *p, *q;
    ngx_uint_t                        n;
    ngx_http_stockprice_sym_t        *sym;
    ngx_http_stockprice_zone_plan_t  *pl;

    p = b->p;
    q = b->q;

    for (n = 0; n < NGX_HTTP_STOCKPRICE_FILL_STEP; n++) {

        if (b->filled == b->nplan) {
            *b->p = ']';
            return 1;
        }

        if ((size_t) ((b->p - p) + (b->q - q))
            >= NGX_HTTP_STOCKPRICE_FILL_BYTES)
        {
            break;
        }

        pl = &b->plan[b->filled];
        sym = &b->snap->syms[b->filled];

        if (b->filled++) {
            *b->p++ = ',';
        }

        if (pl->rec) {
            sym->born = (uint32_t) b->generation;
            sym->name_len = (uint16_t) pl->rec->symbol_len;
            ngx_memcpy(sym->name, pl->rec->symbol, sym->name_len);

            sym->newest = b->p;
            sym->newest_len = pl->rendered_len;
            b->p = ngx_cpymem(b->p, pl->rendered, pl->rendered_len);

        } else {
            sym->born = pl->old->born;
            sym->name_len = pl->old->name_len;
            ngx_memcpy(sym->name, pl->old->name, sym->name_len);

            sym->newest = b->p;
            sym->newest_len = pl->old->newest_len;
            b->p = ngx_cpymem(b->p, pl->old->newest, pl->old->newest_len);
        }

        ngx_http_stockprice_zone_fill_older(b, pl, sym);
    }

    return 0;
}


static void
ngx_http_stockprice_zone_fill_older(ngx_http_stockprice_zone_build_t *b,
    ngx_http_stockprice_zone_plan_t *pl, ngx_http_stockprice_sym_t *sym)
{
    size_t                      size;
    ngx_uint_t                  k, kept;
    ngx_http_stockprice_sym_t  *old;

    old = pl->old;

    sym->nrecords = (uint16_t) (1 + pl->nolder);
    sym->lens = b->lens;
    sym->older = b->q;
    sym->older_len = pl->older_len;

    if (pl->nolder == 0) {
        return;
    }

    if (pl->rec) {
        /* the old newest first, then ",r1,...": the old older but the last */
        *b->q++ = ',';
        b->q = ngx_cpymem(b->q, old->newest, old->newest_len);
        *b->lens++ = old->newest_len;
        kept = pl->nolder - 1;

    } else {
        kept = pl->nolder;
    }

    for (k = 0; k < kept; k++) {
        *b->lens++ = old->lens[k];
    }

    if (kept) {
        size = sym->older_len - (b->q - sym->older);
        b->q = ngx_cpymem(b->q, old->older, size);
    }
}


/*
 * A request's answer: measured under the mutex, and copied to "buf" if it
 * is given and large enough (view->last set; else NULL).  NGX_DECLINED:
 * an unknown symbol.  Until a reload's new symbols= is applied to the
 * zone, the symbols it no longer asks for are left out here.
 */

ngx_int_t
ngx_http_stockprice_zone_read(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_zone_view_t *view, u_char *buf, size_t size)
{
    ngx_int_t  rc;

    view->last = NULL;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    rc = ngx_http_stockprice_zone_measure_view(ctx, view);

    if (rc == NGX_OK && buf && size >= view->len) {
        view->last = ngx_http_stockprice_zone_copy(ctx, view, buf);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


static ngx_int_t
ngx_http_stockprice_zone_measure_view(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_zone_view_t *view)
{
    ngx_uint_t                   i, n;
    ngx_http_stockprice_sh_t    *sh;
    ngx_http_stockprice_sym_t   *sym;
    ngx_http_stockprice_snap_t  *snap;

    sh = ctx->sh;
    snap = sh->snapshot;

    view->snap = snap;
    view->generation = sh->generation;
    view->last_modified = snap ? snap->last_modified : sh->created;
    view->prune = snap && snap->filter != ctx->feed->filter_hash
                  && ctx->feed->nfilter;

    /* the data pruned is another body: another ETag */

    view->etag_len = ngx_http_stockprice_zone_etag(sh,
                                   view->prune ? ctx->feed->filter_hash : 0,
                                   view->etag);

    if (view->symbol.len) {
        sym = snap ? ngx_http_stockprice_zone_find(snap, view->symbol.data,
                                                   view->symbol.len)
                   : NULL;

        if (sym == NULL
            || (view->prune
                && !ngx_http_stockprice_zone_wanted(ctx->feed, sym->name,
                                                    sym->name_len)))
        {
            return NGX_DECLINED;
        }

        view->sym = sym;
        view->len = 2 + sym->newest_len + sym->older_len;

        return NGX_OK;
    }

    if (view->filter) {
        ngx_http_stockprice_zone_measure_filter(ctx, view);
        return NGX_OK;
    }

    if (snap == NULL) {
        view->len = 2;
        return NGX_OK;
    }

    if (!view->prune && view->since == 0) {
        view->len = snap->list_len;
        return NGX_OK;
    }

    view->len = 2;

    for (i = 0, n = 0; i < snap->nsymbols; i++) {
        sym = &snap->syms[i];

        if (ngx_http_stockprice_zone_in_view(ctx, view, sym)) {
            view->len += (n++ ? 1 : 0) + sym->newest_len;
        }
    }

    view->nfound = n;

    return NGX_OK;
}


/*
 * A symbol of the list: still asked for by symbols=, and with "since",
 * of a newer generation (born is its low 32 bits)
 */

static ngx_uint_t
ngx_http_stockprice_zone_in_view(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_zone_view_t *view, ngx_http_stockprice_sym_t *sym)
{
    if (view->since && (int32_t) (sym->born - (uint32_t) view->since) <= 0) {
        return 0;
    }

    return !view->prune
           || ngx_http_stockprice_zone_wanted(ctx->feed, sym->name,
                                              sym->name_len);
}


/* ?symbols=: the symbols found, in the snapshot's order, once each */

static void
ngx_http_stockprice_zone_measure_filter(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_zone_view_t *view)
{
    ngx_uint_t                   i, n;
    ngx_http_stockprice_sym_t   *sym;
    ngx_http_stockprice_snap_t  *snap;

    snap = view->snap;
    n = 0;

    for (i = 0; snap && i < view->nfilter; i++) {
        sym = ngx_http_stockprice_zone_find(snap, view->filter[i].data,
                                            view->filter[i].len);

        if (sym && ngx_http_stockprice_zone_in_view(ctx, view, sym)) {
            view->found[n++] = sym;
        }
    }

    ngx_qsort(view->found, n, sizeof(void *),
              ngx_http_stockprice_zone_cmp_ptr);

    view->nfound = 0;
    view->len = 2;

    for (i = 0; i < n; i++) {
        if (i && view->found[i] == view->found[i - 1]) {
            continue;
        }

        view->len += (view->nfound ? 1 : 0) + view->found[i]->newest_len;
        view->found[view->nfound++] = view->found[i];
    }
}


/* under the mutex, after measure_view(): the bytes */

static u_char *
ngx_http_stockprice_zone_copy(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_zone_view_t *view, u_char *p)
{
    ngx_uint_t                   i, n;
    ngx_http_stockprice_sym_t   *sym;
    ngx_http_stockprice_snap_t  *snap;

    snap = view->snap;

    if (view->symbol.len) {
        sym = view->sym;

        *p++ = '[';
        p = ngx_cpymem(p, sym->newest, sym->newest_len);
        p = ngx_cpymem(p, sym->older, sym->older_len);
        *p++ = ']';

        return p;
    }

    if (snap && view->filter == NULL && !view->prune && view->since == 0) {
        return ngx_cpymem(p, snap->list, snap->list_len);
    }

    *p++ = '[';

    if (view->filter) {
        for (i = 0; i < view->nfound; i++) {
            if (i) {
                *p++ = ',';
            }

            p = ngx_cpymem(p, view->found[i]->newest,
                           view->found[i]->newest_len);
        }

    } else {
        for (i = 0, n = 0; snap && i < snap->nsymbols; i++) {
            sym = &snap->syms[i];

            if (!ngx_http_stockprice_zone_in_view(ctx, view, sym)) {
                continue;
            }

            if (n++) {
                *p++ = ',';
            }

            p = ngx_cpymem(p, sym->newest, sym->newest_len);
        }
    }

    *p++ = ']';

    return p;
}


static ngx_http_stockprice_sym_t *
ngx_http_stockprice_zone_find(ngx_http_stockprice_snap_t *snap, u_char *name,
    size_t len)
{
    int                         rc;
    ngx_uint_t                  lo, hi, mid;
    ngx_http_stockprice_sym_t  *sym;

    lo = 0;
    hi = snap->nsymbols;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        sym = &snap->syms[mid];

        rc = ngx_http_stockprice_parse_symbol_cmp((char *) sym->name,
                                                  sym->name_len,
                                                  (char *) name, len);
        if (rc == 0) {
            return sym;
        }

        if (rc < 0) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return NULL;
}


static int ngx_libc_cdecl
ngx_http_stockprice_zone_cmp_ptr(const void *one, const void *two)
{
    const ngx_http_stockprice_sym_t  *a = *(ngx_http_stockprice_sym_t **) one;
    const ngx_http_stockprice_sym_t  *b = *(ngx_http_stockprice_sym_t **) two;

    return (a > b) - (a < b);
}


/*
 * "nonce-generation": the generation changes exactly when the data does,
 * the nonce, random for each zone made, tells instances and restarts
 * apart, so that two different bodies never share an ETag
 */

static size_t
ngx_http_stockprice_zone_etag(ngx_http_stockprice_sh_t *sh, uint64_t pruned,
    u_char *buf)
{
    if (pruned) {
        return ngx_sprintf(buf, "\"%016xL-%xL-%016xL\"", sh->nonce,
                           sh->generation, pruned)
               - buf;
    }

    return ngx_sprintf(buf, "\"%016xL-%xL\"", sh->nonce, sh->generation)
           - buf;
}


static uint64_t
ngx_http_stockprice_zone_nonce(void)
{
    uint64_t  nonce;

#if (NGX_LINUX)
    if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK)
        == (ssize_t) sizeof(nonce))
    {
        return nonce;
    }
#endif

    /* the master's random(), seeded with its pid and the time */

    nonce = ((uint64_t) ngx_random() << 33) ^ ((uint64_t) ngx_random() << 11)
            ^ (uint64_t) ngx_random() ^ ((uint64_t) ngx_pid << 40)
            ^ (uint64_t) ngx_time() ^ (uintptr_t) &nonce;

    return nonce;
}


/* the health and counters of section 5, but the zone's name and size */

void
ngx_http_stockprice_zone_status(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_status_t *st)
{
    int64_t                    next, now;
    ngx_uint_t                 n;
    ngx_time_t                *tp;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;
    tp = ngx_timeofday();
    now = (int64_t) tp->sec * 1000 + (int64_t) tp->msec;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (sh->snapshot) {
        st->symbols = sh->snapshot->nsymbols;
        st->records = sh->snapshot->nrecords;
    }

    st->refreshes = sh->refreshes;
    st->failures = sh->failures;
    st->partial_refreshes = sh->partial;
    st->consecutive_failures = sh->consecutive_failures;
    st->auth_calls = sh->auth_calls;
    st->skipped = sh->skipped;
    st->replaced_times = sh->replaced;
    st->last_success_ms = sh->refreshes ? sh->last_success_ms : -1;
    st->traffic = sh->traffic;

    if (sh->failures) {
        st->last_error_len = ngx_min(sh->last_error_len,
                                     st->last_error_len);
        ngx_memcpy((u_char *) st->last_error, sh->last_error,
                   st->last_error_len);

    } else {
        st->last_error = NULL;
    }

    st->authenticated = ngx_http_stockprice_zone_token_valid(ctx);

    if (sh->lease_pid) {
        st->next_refresh_ms = (int64_t) tp->sec * 1000 + tp->msec;

    } else if (sh->scheduled) {
        /* as lease_take() sees it: a shorter interval applies at once */

        next = sh->next_refresh_ms;

        if (sh->consecutive_failures == 0
            && sh->last_end_ms + (int64_t) ctx->feed->interval < next)
        {
            next = sh->last_end_ms + ctx->feed->interval;
        }

        st->next_refresh_ms = ngx_max(next, now);

    } else {
        st->next_refresh_ms = -1;
    }

    st->streams = ngx_http_stockprice_zone_streams_open(sh);
    st->restored = sh->restored;

    st->zone_bytes_used = sh->fixed
                          + (sh->snapshot ? sh->snapshot->size : 0);

    now = (int64_t) tp->sec * 1000 + (int64_t) tp->msec;
    st->rate_limited_ms = -1;

    for (n = 0; n < ctx->feed->nupstreams; n++) {
        if (sh->held_ms[n] > now) {
            st->rate_limited_ms = ngx_max(st->rate_limited_ms,
                                          sh->held_ms[n]);
        }
    }

    st->active_upstream = (int64_t) sh->answered - 1;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    st->zone_bytes_needed = ngx_http_stockprice_zone_size(st->symbols,
                                 ngx_http_stockprice_zone_history(ctx->feed));
}


/* read without the mutex: a worker looks for a new publish this way */

uint64_t
ngx_http_stockprice_zone_generation(ngx_http_stockprice_ctx_t *ctx)
{
    return ((volatile ngx_http_stockprice_sh_t *) ctx->sh)->generation;
}


/*
 * This worker's count of event streams, in its slot (a free one, or one
 * whose worker has not said anything for a while, is taken)
 */

void
ngx_http_stockprice_zone_streams(ngx_http_stockprice_ctx_t *ctx, ngx_uint_t n)
{
    ngx_uint_t                          i;
    ngx_http_stockprice_sh_t           *sh;
    ngx_http_stockprice_stream_slot_t  *slot, *free;

    sh = ctx->sh;
    free = NULL;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    for (i = 0; i < NGX_HTTP_STOCKPRICE_STREAM_SLOTS; i++) {
        slot = &sh->streams[i];

        if (slot->pid == ngx_pid) {
            free = slot;
            break;
        }

        if (free == NULL
            && (slot->pid == 0
                || ngx_current_msec - slot->updated
                   >= NGX_HTTP_STOCKPRICE_STREAM_FRESH))
        {
            free = slot;
        }
    }

    if (free) {
        free->pid = ngx_pid;
        free->n = n;
        free->updated = ngx_current_msec;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/* under the mutex: the streams of the workers that said so lately */

static ngx_uint_t
ngx_http_stockprice_zone_streams_open(ngx_http_stockprice_sh_t *sh)
{
    ngx_uint_t                          i, n;
    ngx_http_stockprice_stream_slot_t  *slot;

    n = 0;

    for (i = 0; i < NGX_HTTP_STOCKPRICE_STREAM_SLOTS; i++) {
        slot = &sh->streams[i];

        if (slot->pid
            && ngx_current_msec - slot->updated
               < NGX_HTTP_STOCKPRICE_STREAM_FRESH)
        {
            n += slot->n;
        }
    }

    return n;
}


/*
 * The list of "generation" compressed: its length in *len, the bytes too
 * if "buf" has room; NGX_DECLINED if there is none (gzip=off when it was
 * made, or compression failed) or the generation is no longer served
 */

ngx_int_t
ngx_http_stockprice_zone_read_gz(ngx_http_stockprice_ctx_t *ctx,
    uint64_t generation, u_char *buf, size_t size, size_t *len)
{
    ngx_int_t                    rc;
    ngx_http_stockprice_sh_t    *sh;
    ngx_http_stockprice_snap_t  *snap;

    sh = ctx->sh;
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    snap = sh->snapshot;

    /* not while symbols= dropped by a reload are left out on the fly */

    if (snap && snap->gz && sh->generation == generation
        && snap->generation == generation
        && (snap->filter == ctx->feed->filter_hash || ctx->feed->nfilter == 0))
    {
        *len = snap->gz_len;

        if (buf && size >= snap->gz_len) {
            ngx_memcpy(buf, snap->gz, snap->gz_len);
        }

        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


/*
 * state=: the job of writing the zone to its file is this process's if the
 * zone is newer than the file, no other process is writing it, and the
 * last write began "every" ms ago or more (when exiting, whenever).
 * NGX_OK: *c is what to write; NGX_DONE: nothing to write; NGX_BUSY:
 * *holder writes it (is it alive?); NGX_DECLINED: ask again in *wait ms.
 */

ngx_int_t
ngx_http_stockprice_zone_state_claim(ngx_http_stockprice_ctx_t *ctx,
    ngx_msec_t every, ngx_uint_t exiting, ngx_http_stockprice_zone_copy_t *c,
    ngx_pid_t *holder, ngx_msec_t *wait)
{
    ngx_msec_int_t               left;
    ngx_http_stockprice_sh_t    *sh;
    ngx_http_stockprice_snap_t  *snap;

    sh = ctx->sh;
    *wait = every;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    snap = sh->snapshot;

    if (snap == NULL || sh->generation <= sh->state_generation) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_DONE;
    }

    if (sh->state_pid != 0 && sh->state_pid != ngx_pid) {
        *holder = sh->state_pid;
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_BUSY;
    }

    left = (ngx_msec_int_t) (sh->state_started + every - ngx_current_msec);

    if (!exiting && sh->state_started && left > 0) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        *wait = (ngx_msec_t) left;
        return NGX_DECLINED;
    }

    sh->state_pid = ngx_pid;
    sh->state_started = ngx_current_msec;

    c->src = (u_char *) snap;
    c->size = snap->size;
    c->generation = snap->generation;
    c->nonce = sh->nonce;
    c->filter = snap->filter;
    c->last_modified = snap->last_modified;
    c->current = &sh->generation;
    ngx_memcpy(c->validators, sh->validators, sizeof(sh->validators));

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


/* a writer that is gone is no longer the writer */

void
ngx_http_stockprice_zone_state_forget(ngx_http_stockprice_ctx_t *ctx,
    ngx_pid_t pid)
{
    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (ctx->sh->state_pid == pid) {
        ctx->sh->state_pid = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/*
 * This process's write ended: NGX_OK (the file holds "generation"),
 * NGX_DECLINED (the zone moved on meanwhile), NGX_ERROR ("why", not 0,
 * tells one failure from another).  Returns how writes failed before
 * (0: they did not), for the log to say only what changed.
 */

ngx_uint_t
ngx_http_stockprice_zone_state_done(ngx_http_stockprice_ctx_t *ctx,
    ngx_int_t rc, uint64_t generation, ngx_uint_t why)
{
    ngx_uint_t                 failing;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (sh->state_pid == ngx_pid) {
        sh->state_pid = 0;
    }

    if (rc == NGX_OK && generation > sh->state_generation) {
        sh->state_generation = generation;
    }

    failing = sh->state_failing;

    if (rc != NGX_DECLINED) {
        sh->state_failing = (rc == NGX_OK) ? 0 : why;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return failing;
}
