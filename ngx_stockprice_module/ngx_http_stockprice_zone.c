
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>
#include <ngx_http_stockprice_module.h>
#include <ngx_http_stockprice_zone.h>


/* the longest a rendered record can be: every byte escaped as \u00XX */
#define NGX_HTTP_STOCKPRICE_RECORD_MAX                                        \
    (sizeof("{\"id\":\"\",\"symbol\":\"\",\"price\":,\"valueDateTime\":\"\","  \
            "\"measurementTimeStamp\":\"\"}")                                 \
     + NGX_HTTP_STOCKPRICE_UUID_LEN + 6 * NGX_HTTP_STOCKPRICE_SYMBOL_MAX      \
     + NGX_HTTP_STOCKPRICE_PRICE_LEN + 6 * NGX_HTTP_STOCKPRICE_TIME_MAX       \
     + NGX_HTTP_STOCKPRICE_ISO_LEN)

#define NGX_HTTP_STOCKPRICE_BACKOFF_MAX  60000

/* a list this long goes by sendfile(), a shorter one in one writev() */
#define NGX_HTTP_STOCKPRICE_FILE_MIN     32768


/* how one symbol of the new snapshot is made from the old one and a record */

typedef struct {
    ngx_http_stockprice_sym_t      *old;
    ngx_http_stockprice_record_t   *rec;
    u_char                         *rendered;   /* rec in the scratch */
    uint32_t                        rendered_len;
    uint32_t                        nolder;     /* older records kept */
    uint32_t                        older_len;
} ngx_http_stockprice_plan_t;


static void ngx_http_stockprice_set_error(ngx_http_stockprice_sh_t *sh,
    ngx_str_t *error);
static void ngx_http_stockprice_make_uuid(char *buf);
static void ngx_http_stockprice_cache_free(
    ngx_http_stockprice_cache_t *cache);


ngx_int_t
ngx_http_stockprice_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_stockprice_ctx_t  *octx = data;

    size_t                      len;
    ngx_http_stockprice_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* a reload with the same name and size: keep everything */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;

        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_calloc(ctx->shpool, sizeof(ngx_http_stockprice_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;
    ctx->sh->epoch = ngx_time();

    len = sizeof(" in stockprice zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in stockprice zone \"%V\"%Z",
                &shm_zone->shm.name);

    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_stockprice_lease_acquire(ngx_http_stockprice_ctx_t *ctx,
    ngx_msec_t hold, ngx_msec_t *wait)
{
    ngx_msec_t                 now;
    ngx_msec_int_t             left;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;
    now = ngx_current_msec;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (sh->lease_pid != 0 && sh->lease_pid != ngx_pid) {
        left = (ngx_msec_int_t) (sh->lease_deadline - now);

        /*
         * somebody is refreshing: look again when its lease ends, or
         * sooner, as it may be abandoned at a reload; a holder that is
         * gone (killed) loses it at once
         */

        if (left > 0
            && (kill(sh->lease_pid, 0) == 0 || ngx_errno != NGX_ESRCH))
        {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            *wait = ngx_min((ngx_msec_t) left,
                            NGX_HTTP_STOCKPRICE_LEASE_POLL);
            return NGX_DECLINED;
        }
    }

    if (sh->scheduled) {
        left = (ngx_msec_int_t) (sh->next_refresh - now);

        /*
         * a reload may have shortened the interval: after a success it
         * counts from the end of the last refresh at once
         */

        if (sh->consecutive_failures == 0
            && (ngx_msec_int_t) (sh->last_end + ctx->feed->interval - now)
               < left)
        {
            left = (ngx_msec_int_t) (sh->last_end + ctx->feed->interval - now);
        }

        if (left > 0) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            *wait = left;
            return NGX_DECLINED;
        }
    }

    sh->lease_pid = ngx_pid;
    sh->lease_deadline = now + hold;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


void
ngx_http_stockprice_lease_extend(ngx_http_stockprice_ctx_t *ctx,
    ngx_msec_t hold, ngx_uint_t auth)
{
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (sh->lease_pid == ngx_pid) {
        sh->lease_deadline = ngx_current_msec + hold;
    }

    /* every auth request counts, whatever it is answered */

    if (auth) {
        sh->auth_calls++;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


ngx_msec_t
ngx_http_stockprice_lease_release(ngx_http_stockprice_ctx_t *ctx,
    ngx_str_t *error, ngx_uint_t skipped)
{
    ngx_msec_t                 delay, interval;
    ngx_uint_t                 n;
    ngx_time_t                *tp;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;
    interval = ctx->feed->interval;
    delay = interval;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    sh->skipped += skipped;

    if (error == NULL) {
        sh->refreshes++;
        sh->consecutive_failures = 0;
        tp = ngx_timeofday();
        sh->last_success_ms = (int64_t) tp->sec * 1000 + tp->msec;

    } else {
        sh->failures++;
        sh->consecutive_failures++;
        ngx_http_stockprice_set_error(sh, error);

        /* back off: interval, 2 x interval, 4 x ... up to a minute */

        n = ngx_min(sh->consecutive_failures - 1, 16);

        while (n-- && delay < NGX_HTTP_STOCKPRICE_BACKOFF_MAX) {
            delay *= 2;
        }

        delay = ngx_min(delay, ngx_max(interval,
                                       NGX_HTTP_STOCKPRICE_BACKOFF_MAX));
    }

    sh->next_refresh = ngx_current_msec + delay;
    sh->last_end = ngx_current_msec;
    sh->scheduled = 1;

    if (sh->lease_pid == ngx_pid) {
        sh->lease_pid = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return delay;
}


void
ngx_http_stockprice_lease_abandon(ngx_http_stockprice_ctx_t *ctx)
{
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (sh->lease_pid == ngx_pid) {
        sh->lease_pid = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


static void
ngx_http_stockprice_set_error(ngx_http_stockprice_sh_t *sh, ngx_str_t *error)
{
    sh->last_error_len = ngx_min(error->len, NGX_HTTP_STOCKPRICE_ERROR_LEN);
    ngx_memcpy(sh->last_error, error->data, sh->last_error_len);
}


ngx_int_t
ngx_http_stockprice_token_get(ngx_http_stockprice_ctx_t *ctx, u_char *buf,
    size_t size, size_t *len)
{
    ngx_int_t                  rc;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (sh->token
        && sh->token_len <= size
        && (sh->token_renew == 0
            || (ngx_msec_int_t) (sh->token_renew - ngx_current_msec) > 0))
    {
        ngx_memcpy(buf, sh->token, sh->token_len);
        *len = sh->token_len;
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


ngx_int_t
ngx_http_stockprice_token_set(ngx_http_stockprice_ctx_t *ctx, u_char *token,
    size_t len, long expires_in)
{
    u_char                    *p;
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    p = ngx_slab_alloc_locked(ctx->shpool, len);
    if (p == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    if (sh->token) {
        ngx_slab_free_locked(ctx->shpool, sh->token);
    }

    ngx_memcpy(p, token, len);
    sh->token = p;
    sh->token_len = len;

    /* renew after nine tenths of the lifetime */
    sh->token_renew = (expires_in > 0)
                      ? ngx_current_msec + (ngx_msec_t) expires_in * 900
                      : 0;

    if (sh->token_renew == 0 && expires_in > 0) {
        sh->token_renew = 1;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


void
ngx_http_stockprice_token_clear(ngx_http_stockprice_ctx_t *ctx, u_char *token,
    size_t len)
{
    ngx_http_stockprice_sh_t  *sh;

    sh = ctx->sh;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    /* only the token that was refused: another may have been set since */

    if (sh->token
        && sh->token_len == len
        && ngx_memcmp(sh->token, token, len) == 0)
    {
        ngx_slab_free_locked(ctx->shpool, sh->token);
        sh->token = NULL;
        sh->token_len = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


ngx_int_t
ngx_http_stockprice_batch_init(ngx_http_stockprice_batch_t *batch,
    ngx_http_stockprice_record_t *recs, ngx_uint_t n, struct timeval *tv,
    ngx_log_t *log)
{
    ngx_memzero(batch, sizeof(ngx_http_stockprice_batch_t));

    batch->recs = recs;
    batch->n = n;
    batch->last_modified = tv->tv_sec;
    batch->mtime_len = ngx_http_stockprice_format_time(batch->mtime,
                                                       (int64_t) tv->tv_sec,
                                                       (long) tv->tv_usec);

    /* untouched pages of the worst case cost no memory */

    batch->text = ngx_alloc(n * NGX_HTTP_STOCKPRICE_RECORD_MAX + 1, log);
    if (batch->text == NULL) {
        return NGX_ERROR;
    }

    batch->lens = ngx_alloc(n * sizeof(uint32_t) + 1, log);
    if (batch->lens == NULL) {
        ngx_free(batch->text);
        batch->text = NULL;
        return NGX_ERROR;
    }

    batch->last = batch->text;

    return NGX_OK;
}


/* renders up to "max" more records; NGX_OK: all are, NGX_AGAIN: not yet */

ngx_int_t
ngx_http_stockprice_batch_render(ngx_http_stockprice_batch_t *batch,
    ngx_uint_t max)
{
    size_t                         len;
    ngx_uint_t                     end;
    ngx_http_stockprice_record_t  *rec;

    end = ngx_min(batch->n, batch->rendered + max);

    for ( /* void */ ; batch->rendered < end; batch->rendered++) {
        rec = &batch->recs[batch->rendered];

        if (!rec->has_id) {
            ngx_http_stockprice_make_uuid(rec->id);
            rec->has_id = 1;
        }

        len = ngx_http_stockprice_render_record((char *) batch->last, rec,
                                                batch->mtime,
                                                batch->mtime_len);

        batch->lens[batch->rendered] = (uint32_t) len;
        batch->last += len;
    }

    return batch->rendered == batch->n ? NGX_OK : NGX_AGAIN;
}


void
ngx_http_stockprice_batch_free(ngx_http_stockprice_batch_t *batch)
{
    if (batch->text) {
        ngx_free(batch->text);
    }

    if (batch->lens) {
        ngx_free(batch->lens);
    }

    /* the records came from the parser's malloc() */
    free(batch->recs);

    ngx_memzero(batch, sizeof(ngx_http_stockprice_batch_t));
}


/*
 * A new snapshot from the old one and a batch rendered in full: the old
 * symbols and the new records merged (both sorted), then one slab
 * allocation filled by copies of rendered bytes, then swapped in.
 */

ngx_int_t
ngx_http_stockprice_publish(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_batch_t *batch, size_t *needed, ngx_log_t *log)
{
    int                            c;
    size_t                         size, list_len, older_len;
    u_char                        *p, *q, *text;
    uint32_t                      *lens, *rlen;
    ngx_uint_t                     i, j, k, nsyms, nrecords, nlens, history;
    ngx_http_stockprice_sh_t      *sh;
    ngx_http_stockprice_sym_t     *sym, *osym, *oend;
    ngx_http_stockprice_snap_t    *snap, *old;
    ngx_http_stockprice_plan_t    *plan, *pl;
    ngx_http_stockprice_record_t  *rec, *rend;

    sh = ctx->sh;
    history = ctx->feed->history;

    /* only the lease holder replaces snapshots: "old" cannot go away */

    ngx_shmtx_lock(&ctx->shpool->mutex);
    old = sh->snapshot;
    ngx_shmtx_unlock(&ctx->shpool->mutex);

    plan = ngx_alloc((batch->n + (old ? old->nsymbols : 0) + 1)
                     * sizeof(ngx_http_stockprice_plan_t), log);
    if (plan == NULL) {
        return NGX_ERROR;
    }

    /* plan: merge the old symbols and the new records, both sorted */

    osym = old ? old->syms : NULL;
    oend = old ? old->syms + old->nsymbols : NULL;
    rec = batch->recs;
    rend = batch->recs + batch->n;
    rlen = batch->lens;
    p = batch->text;
    pl = plan;
    list_len = 2;
    older_len = 0;
    nrecords = 0;
    nlens = 0;

    while (osym < oend || rec < rend) {

        if (osym == oend) {
            c = 1;

        } else if (rec == rend) {
            c = -1;

        } else {
            c = ngx_http_stockprice_symbol_cmp((char *) osym->name,
                                               osym->name_len, rec->symbol,
                                               rec->symbol_len);
        }

        ngx_memzero(pl, sizeof(ngx_http_stockprice_plan_t));

        if (c <= 0) {
            pl->old = osym++;
        }

        if (c >= 0) {
            pl->rec = rec++;
            pl->rendered = p;
            pl->rendered_len = *rlen++;
            p += pl->rendered_len;
        }

        if (pl->rec) {
            list_len += pl->rendered_len;

            if (pl->old && history > 1) {
                /* the old newest and the old older, one fewer than kept */
                pl->nolder = ngx_min(pl->old->nrecords, history - 1);
                pl->older_len = 1 + pl->old->newest_len;

                for (k = 0; k + 1 < pl->nolder; k++) {
                    pl->older_len += 1 + pl->old->lens[k];
                }
            }

        } else {
            list_len += pl->old->newest_len;
            pl->nolder = ngx_min(pl->old->nrecords - 1, history - 1);

            for (k = 0; k < pl->nolder; k++) {
                pl->older_len += 1 + pl->old->lens[k];
            }
        }

        older_len += pl->older_len;
        nlens += pl->nolder;
        nrecords += 1 + pl->nolder;
        pl++;
    }

    nsyms = pl - plan;
    list_len += nsyms ? nsyms - 1 : 0;

    size = sizeof(ngx_http_stockprice_snap_t)
           + nsyms * sizeof(ngx_http_stockprice_sym_t)
           + nlens * sizeof(uint32_t)
           + list_len + older_len;

    ngx_shmtx_lock(&ctx->shpool->mutex);
    snap = ngx_slab_alloc_locked(ctx->shpool, size);
    ngx_shmtx_unlock(&ctx->shpool->mutex);

    if (snap == NULL) {
        ngx_free(plan);

        /* the new snapshot is built while the old one is still served */
        *needed = size + (old ? old->size : 0);

        return NGX_DECLINED;
    }

    /* fill: nobody else can see the new snapshot yet, no lock needed */

    snap->size = size;
    snap->last_modified = batch->last_modified;
    snap->nsymbols = nsyms;
    snap->nrecords = nrecords;
    snap->syms = (ngx_http_stockprice_sym_t *) (snap + 1);
    lens = (uint32_t *) (snap->syms + nsyms);
    text = (u_char *) (lens + nlens);

    snap->list = text;
    snap->list_len = list_len;

    p = text;
    q = text + list_len;
    *p++ = '[';

    for (i = 0; i < nsyms; i++) {
        pl = &plan[i];
        sym = &snap->syms[i];

        if (i) {
            *p++ = ',';
        }

        if (pl->rec) {
            sym->name_len = pl->rec->symbol_len;
            ngx_memcpy(sym->name, pl->rec->symbol, sym->name_len);

            sym->newest = p;
            sym->newest_len = pl->rendered_len;
            p = ngx_cpymem(p, pl->rendered, pl->rendered_len);

        } else {
            sym->name_len = pl->old->name_len;
            ngx_memcpy(sym->name, pl->old->name, sym->name_len);

            sym->newest = p;
            sym->newest_len = pl->old->newest_len;
            p = ngx_cpymem(p, pl->old->newest, pl->old->newest_len);
        }

        sym->nrecords = 1 + pl->nolder;
        sym->lens = lens;
        sym->older = q;
        sym->older_len = pl->older_len;

        if (pl->nolder == 0) {
            continue;
        }

        if (pl->rec) {
            *q++ = ',';
            q = ngx_cpymem(q, pl->old->newest, pl->old->newest_len);
            *lens++ = pl->old->newest_len;

            /* ",r1,...": the old older records but the last */
            j = pl->nolder - 1;

        } else {
            j = pl->nolder;
        }

        for (k = 0; k < j; k++) {
            *lens++ = pl->old->lens[k];
        }

        if (j) {
            size = sym->older_len - (q - sym->older);
            q = ngx_cpymem(q, pl->old->older, size);
        }
    }

    *p = ']';

    ngx_free(plan);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    snap->generation = ++sh->generation;
    sh->snapshot = snap;

    if (old) {
        ngx_slab_free_locked(ctx->shpool, old);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


size_t
ngx_http_stockprice_etag(ngx_http_stockprice_sh_t *sh, u_char *buf)
{
    return ngx_sprintf(buf, "\"%xT-%xL\"", sh->epoch, sh->generation) - buf;
}


/*
 * A version 4 UUID from splitmix64, seeded in each worker from nginx's own
 * random() (seeded per worker): two steps per id, where eight random()
 * calls, each taking glibc's lock, cost a large refresh some 0.5 ms.
 */

static void
ngx_http_stockprice_make_uuid(char *buf)
{
    uint64_t          z, rnd[2];
    ngx_uint_t        i;
    static uint64_t   state;
    static ngx_pid_t  seeded;

    if (seeded != ngx_pid) {
        state = ((uint64_t) ngx_random() << 33)
                ^ ((uint64_t) ngx_random() << 11)
                ^ (uint64_t) ngx_random() ^ (uint64_t) ngx_pid;
        seeded = ngx_pid;
    }

    for (i = 0; i < 2; i++) {
        z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        rnd[i] = z ^ (z >> 31);
    }

    ngx_http_stockprice_format_uuid(buf, (unsigned char *) rnd);
}


/*
 * The current snapshot's list as this worker's cache, made anew after a
 * refresh: the length under the mutex, the memory outside it, the bytes
 * under it again if the generation is still the same.  With "file", a
 * long list also goes into a memfd for sendfile().  NULL: no memory, or a
 * run of refreshes kept changing the list.
 */

ngx_http_stockprice_cache_t *
ngx_http_stockprice_cache_get(ngx_http_stockprice_ctx_t *ctx, ngx_uint_t file,
    ngx_log_t *log)
{
    size_t                        len;
    ssize_t                       n;
    uint64_t                      generation;
    ngx_uint_t                    i;
    ngx_http_stockprice_sh_t     *sh;
    ngx_http_stockprice_snap_t   *snap;
    ngx_http_stockprice_cache_t  *cache;

    sh = ctx->sh;

    for (i = 0; i < 4; i++) {

        ngx_shmtx_lock(&ctx->shpool->mutex);

        cache = ctx->cache;

        if (cache && cache->generation == sh->generation) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return cache;
        }

        generation = sh->generation;
        len = sh->snapshot ? sh->snapshot->list_len : 2;

        ngx_shmtx_unlock(&ctx->shpool->mutex);

        cache = ngx_alloc(sizeof(ngx_http_stockprice_cache_t) + len, log);
        if (cache == NULL) {
            return NULL;
        }

        cache->data = (u_char *) cache + sizeof(ngx_http_stockprice_cache_t);

        ngx_shmtx_lock(&ctx->shpool->mutex);

        if (sh->generation != generation) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            ngx_free(cache);
            continue;
        }

        snap = sh->snapshot;

        if (snap) {
            ngx_memcpy(cache->data, snap->list, len);
            cache->last_modified = snap->last_modified;

        } else {
            cache->data[0] = '[';
            cache->data[1] = ']';
            cache->last_modified = -1;
        }

        cache->etag_len = ngx_http_stockprice_etag(sh, cache->etag);

        ngx_shmtx_unlock(&ctx->shpool->mutex);

        /* Last-Modified formatted once, not by every response's header */

        cache->http_time_len = (cache->last_modified == -1)
                               ? 0
                               : ngx_http_time(cache->http_time,
                                               cache->last_modified)
                                 - cache->http_time;

        cache->ctx = ctx;
        cache->generation = generation;
        cache->refs = 0;
        cache->len = len;

        ngx_memzero(&cache->file, sizeof(ngx_file_t));
        cache->file.fd = NGX_INVALID_FILE;
        cache->file.log = log;
        ngx_str_set(&cache->file.name, "stockprice list");

#if (NGX_LINUX && defined MFD_CLOEXEC)

        if (file && len >= NGX_HTTP_STOCKPRICE_FILE_MIN) {
            cache->file.fd = memfd_create("stockprice", MFD_CLOEXEC);

            if (cache->file.fd == NGX_INVALID_FILE) {
                ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                              "memfd_create() failed, "
                              "sending the list from memory");

            } else {
                n = ngx_write_fd(cache->file.fd, cache->data, len);

                if (n != (ssize_t) len) {
                    ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                                  "write() to memfd failed, "
                                  "sending the list from memory");
                    ngx_close_file(cache->file.fd);
                    cache->file.fd = NGX_INVALID_FILE;
                }
            }
        }

#else
        (void) n;
        (void) file;
#endif

        if (ctx->cache && ctx->cache->refs == 0) {
            ngx_http_stockprice_cache_free(ctx->cache);
        }

        ctx->cache = cache;

        return cache;
    }

    return NULL;
}


/* a request is done with "cache" */

void
ngx_http_stockprice_cache_release(ngx_http_stockprice_cache_t *cache)
{
    if (--cache->refs == 0 && cache->ctx->cache != cache) {
        ngx_http_stockprice_cache_free(cache);
    }
}


void
ngx_http_stockprice_cache_exit(ngx_http_stockprice_ctx_t *ctx)
{
    if (ctx->cache && ctx->cache->refs == 0) {
        ngx_http_stockprice_cache_free(ctx->cache);
        ctx->cache = NULL;
    }
}


static void
ngx_http_stockprice_cache_free(ngx_http_stockprice_cache_t *cache)
{
    if (cache->file.fd != NGX_INVALID_FILE) {
        ngx_close_file(cache->file.fd);
    }

    ngx_free(cache);
}
