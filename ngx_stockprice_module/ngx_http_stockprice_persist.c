
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>
#include <ngx_http_stockprice_gzip.h>
#include <ngx_http_stockprice_state.h>
#include <ngx_http_stockprice_module.h>
#include <ngx_http_stockprice_zone.h>
#include <ngx_http_stockprice_persist.h>


/* FILE.PID.tmp, and its NUL */
#define NGX_HTTP_STOCKPRICE_PERSIST_TEMP_LEN(path)                            \
    ((path)->len + sizeof(".4294967295.tmp"))

#define ngx_http_stockprice_persist_temp(buf, path, pid)                      \
    (void) ngx_sprintf(buf, "%V.%P.tmp%Z", path, pid)

/* one write a second at most, for a zone */
#define NGX_HTTP_STOCKPRICE_PERSIST_EVERY  1000

/*
 * A file of more than two halves is not one this zone wrote: its records
 * take about the bytes they take in a snapshot, their lines a little more
 */
#define NGX_HTTP_STOCKPRICE_PERSIST_SLACK  65536


/* the file and the zone agree on what a validator holds */

typedef char ngx_http_stockprice_persist_agree_t[
    (NGX_HTTP_STOCKPRICE_STATE_VALIDATORS == NGX_HTTP_STOCKPRICE_VALIDATORS
     && NGX_HTTP_STOCKPRICE_STATE_ETAG == NGX_HTTP_STOCKPRICE_VALIDATOR_ETAG
     && NGX_HTTP_STOCKPRICE_STATE_DATE == NGX_HTTP_STOCKPRICE_VALIDATOR_DATE)
    ? 1 : -1];


/* a write: what the zone held, read under its mutex, and how it went */

typedef struct {
    ngx_http_stockprice_zone_copy_t  copy;

    ngx_str_t                      *zone;
    ngx_str_t                      *path;
    ngx_str_t                      *dir;
    u_char                         *temp;       /* path.PID.tmp */

    ngx_int_t                       rc;         /* NGX_DECLINED: the zone
                                                   moved on meanwhile */
    const char                     *failed;     /* the call that failed */
    u_char                         *file;       /* on this file */
    ngx_err_t                       err;
    size_t                          bytes;
} ngx_http_stockprice_persist_job_t;


/* one worker's writer of one zone */

typedef struct {
    ngx_http_stockprice_ctx_t      *ctx;
    ngx_event_t                     timer;
    ngx_uint_t                      busy;       /* the job is in a thread */
    ngx_http_stockprice_persist_job_t  *job;
#if (NGX_THREADS)
    ngx_thread_task_t              *task;
#endif
} ngx_http_stockprice_persist_t;


/* the sizes of the snapshot a state file makes */

typedef struct {
    size_t                          list_len;
    size_t                          older_len;
    size_t                          nlens;
    size_t                          gz_size;
    size_t                          size;
} ngx_http_stockprice_persist_plan_t;


static ngx_int_t ngx_http_stockprice_persist_read(ngx_str_t *zone,
    ngx_str_t *path, size_t max, ngx_log_t *log, u_char **data, size_t *len);
static void *ngx_http_stockprice_persist_alloc(void *data, size_t size);
static void ngx_http_stockprice_persist_plan(
    ngx_http_stockprice_state_t *st, ngx_uint_t gzip,
    ngx_http_stockprice_persist_plan_t *plan);
static void ngx_http_stockprice_persist_restore(ngx_http_stockprice_sh_t *sh,
    ngx_http_stockprice_state_t *st, ngx_http_stockprice_persist_plan_t *plan,
    ngx_log_t *log);

static void ngx_http_stockprice_persist_timer(ngx_event_t *ev);
static void ngx_http_stockprice_persist_start(
    ngx_http_stockprice_persist_t *p);
static ngx_int_t ngx_http_stockprice_persist_claim(
    ngx_http_stockprice_persist_t *p, ngx_uint_t exiting, ngx_msec_t *wait);
static void ngx_http_stockprice_persist_forget(
    ngx_http_stockprice_persist_t *p, ngx_pid_t pid);
#if (NGX_THREADS)
static void ngx_http_stockprice_persist_thread(void *data, ngx_log_t *log);
static void ngx_http_stockprice_persist_event(ngx_event_t *ev);
#endif
static void ngx_http_stockprice_persist_done(ngx_http_stockprice_persist_t *p,
    ngx_uint_t exiting);

static void ngx_http_stockprice_persist_run(
    ngx_http_stockprice_persist_job_t *job);
static ngx_int_t ngx_http_stockprice_persist_state(
    ngx_http_stockprice_persist_job_t *job, u_char *copy,
    ngx_http_stockprice_state_t *st);
static void ngx_http_stockprice_persist_file(
    ngx_http_stockprice_persist_job_t *job, u_char *buf, size_t len);
static void ngx_http_stockprice_persist_fail(
    ngx_http_stockprice_persist_job_t *job, const char *call, u_char *file);


/*
 * In the master, for a zone new to it (a start, or a reload that made the
 * zone anew): the snapshot of the file in the first half, as a refresh
 * would have made it, if the file is this zone's and whole.  Whatever is
 * wrong with the file is said and the zone starts empty.
 */

void
ngx_http_stockprice_persist_load(ngx_shm_zone_t *shm_zone,
    ngx_http_stockprice_ctx_t *ctx)
{
    int                                  rc;
    char                                 err[128];
    size_t                               len;
    u_char                              *data;
    ngx_log_t                           *log;
    ngx_str_t                           *zone, *path;
    ngx_http_stockprice_sh_t            *sh;
    ngx_http_stockprice_feed_t          *feed;
    ngx_http_stockprice_state_t          st;
    ngx_http_stockprice_persist_plan_t   plan;

    feed = ctx->feed;
    sh = ctx->sh;
    log = shm_zone->shm.log;
    zone = &shm_zone->shm.name;
    path = &feed->state;

    if (ngx_http_stockprice_persist_read(zone, path,
                                         2 * sh->half_size
                                         + NGX_HTTP_STOCKPRICE_PERSIST_SLACK,
                                         log, &data, &len)
        != NGX_OK)
    {
        return;
    }

    rc = ngx_http_stockprice_state_load((char *) data, len,
                                        (char *) zone->data, zone->len,
                                        sh->half_size
                                        / sizeof(ngx_http_stockprice_sym_t),
                                        feed->history,
                                        ngx_http_stockprice_persist_alloc,
                                        log, &st, err, sizeof(err));

    if (rc != NGX_HTTP_STOCKPRICE_STATE_OK) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "stockprice zone \"%V\": state file \"%V\" ignored: %s",
                      zone, path, err);
        goto done;
    }

    ngx_http_stockprice_persist_plan(&st, feed->gzip, &plan);

    if (plan.size > sh->half_size) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "stockprice zone \"%V\": state file \"%V\" ignored: "
                      "it does not fit in the zone (%uz bytes needed, %uz "
                      "in a half)", zone, path, plan.size, sh->half_size);
        goto done;
    }

    ngx_http_stockprice_persist_restore(sh, &st, &plan, log);

    if (st.dropped) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "stockprice zone \"%V\": %uz records of %uz symbols "
                      "restored from \"%V\", %uz older ones beyond "
                      "\"history=%ui\" left out", zone, st.nrecords,
                      st.nsymbols, path, st.dropped, feed->history);

    } else {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "stockprice zone \"%V\": %uz records of %uz symbols "
                      "restored from \"%V\"", zone, st.nrecords, st.nsymbols,
                      path);
    }

done:

    if (st.mem) {
        ngx_free(st.mem);
    }

    ngx_free(data);
}


/* the file whole, at most "max" bytes; NGX_DECLINED: said why not */

static ngx_int_t
ngx_http_stockprice_persist_read(ngx_str_t *zone, ngx_str_t *path,
    size_t max, ngx_log_t *log, u_char **data, size_t *len)
{
    off_t            size;
    size_t           got;
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_err_t        err;
    ngx_file_info_t  fi;

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        err = ngx_errno;

        if (err == NGX_ENOENT) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "stockprice zone \"%V\": no state file \"%V\" yet",
                          zone, path);

        } else {
            ngx_log_error(NGX_LOG_WARN, log, err,
                          "stockprice zone \"%V\": state file \"%V\" "
                          "ignored: " ngx_open_file_n " failed", zone, path);
        }

        return NGX_DECLINED;
    }

    *data = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                      "stockprice zone \"%V\": state file \"%V\" ignored: "
                      ngx_fd_info_n " failed", zone, path);
        goto failed;
    }

    if (!ngx_is_file(&fi)) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "stockprice zone \"%V\": state file \"%V\" ignored: "
                      "not a regular file", zone, path);
        goto failed;
    }

    size = ngx_file_size(&fi);

    if (size < 0 || (uint64_t) size > max) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "stockprice zone \"%V\": state file \"%V\" ignored: "
                      "%O bytes, more than the zone takes", zone, path, size);
        goto failed;
    }

    *data = ngx_alloc((size_t) size + 1, log);
    if (*data == NULL) {
        goto failed;
    }

    /* what is there: a file cut short while read reads as truncated */

    for (got = 0; got < (size_t) size; got += n) {
        n = ngx_read_fd(fd, *data + got, (size_t) size - got);

        if (n == -1) {
            ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                          "stockprice zone \"%V\": state file \"%V\" "
                          "ignored: " ngx_read_fd_n " failed", zone, path);
            goto failed;
        }

        if (n == 0) {
            break;
        }
    }

    (void) ngx_close_file(fd);

    *len = got;

    return NGX_OK;

failed:

    if (*data) {
        ngx_free(*data);
    }

    (void) ngx_close_file(fd);

    return NGX_DECLINED;
}


static void *
ngx_http_stockprice_persist_alloc(void *data, size_t size)
{
    ngx_log_t *log = data;

    return ngx_alloc(size, log);
}


/* the snapshot's parts, as a refresh would make them */

static void
ngx_http_stockprice_persist_plan(ngx_http_stockprice_state_t *st,
    ngx_uint_t gzip, ngx_http_stockprice_persist_plan_t *plan)
{
    size_t                                  i, j;
    const ngx_http_stockprice_state_sym_t  *ss;

    ngx_memzero(plan, sizeof(ngx_http_stockprice_persist_plan_t));

    plan->list_len = 2 + (st->nsymbols ? st->nsymbols - 1 : 0);

    for (i = 0; i < st->nsymbols; i++) {
        ss = &st->syms[i];

        plan->list_len += ss->records[0].len;

        for (j = 1; j < ss->nrecords; j++) {
            plan->older_len += 1 + ss->records[j].len;
            plan->nlens++;
        }
    }

    if (gzip) {
        plan->gz_size = ngx_http_stockprice_gzip_bound(plan->list_len);
    }

    plan->size = ngx_http_stockprice_zone_snap_size(st->nsymbols, plan->nlens,
                                                    plan->list_len,
                                                    plan->older_len)
                 + plan->gz_size;
}


/*
 * The snapshot in the first half, served at once: the generation, nonce
 * and validators as they were, so the same ETag and the same conditional
 * requests upstream; the next publish takes the zone's new nonce, since
 * the last instance may have published after it wrote the file
 */

static void
ngx_http_stockprice_persist_restore(ngx_http_stockprice_sh_t *sh,
    ngx_http_stockprice_state_t *st, ngx_http_stockprice_persist_plan_t *plan,
    ngx_log_t *log)
{
    int                                     rc;
    size_t                                  i, j;
    u_char                                 *p, *q;
    uint32_t                               *lens;
    ngx_http_stockprice_sym_t              *sym;
    ngx_http_stockprice_snap_t             *snap;
    ngx_http_stockprice_gzip_t              gz;
    ngx_http_stockprice_validator_t        *v;
    const ngx_http_stockprice_state_sym_t  *ss;
    const ngx_http_stockprice_state_validator_t  *sv;

    snap = (ngx_http_stockprice_snap_t *) sh->half[0];

    ngx_memzero(snap, sizeof(ngx_http_stockprice_snap_t));

    snap->generation = st->generation;
    snap->filter = st->filter;
    snap->last_modified = (time_t) st->last_modified;
    snap->size = plan->size;
    snap->nsymbols = st->nsymbols;
    snap->nrecords = st->nrecords;
    lens = ngx_http_stockprice_zone_snap_lay_out(snap, st->nsymbols,
                                                 plan->nlens, plan->list_len);

    p = snap->list;
    q = snap->list + plan->list_len;

    *p++ = '[';

    for (i = 0; i < st->nsymbols; i++) {
        ss = &st->syms[i];
        sym = &snap->syms[i];

        if (i) {
            *p++ = ',';
        }

        sym->born = ss->born;
        sym->name_len = (uint16_t) ss->name_len;
        ngx_memcpy(sym->name, ss->name, ss->name_len);
        sym->nrecords = (uint16_t) ss->nrecords;

        sym->newest = p;
        sym->newest_len = (uint32_t) ss->records[0].len;
        p = ngx_cpymem(p, ss->records[0].data, ss->records[0].len);

        sym->lens = lens;
        sym->older = q;

        for (j = 1; j < ss->nrecords; j++) {
            *q++ = ',';
            q = ngx_cpymem(q, ss->records[j].data, ss->records[j].len);
            *lens++ = (uint32_t) ss->records[j].len;
        }

        sym->older_len = (uint32_t) (q - sym->older);
    }

    *p = ']';

    /* with gzip=on, the list compressed too, where a refresh puts it */

    if (plan->gz_size) {
        rc = ngx_http_stockprice_gzip_start(&gz, snap->list, snap->list_len,
                                            NGX_HTTP_STOCKPRICE_GZIP_LEVEL);

        while (rc == NGX_HTTP_STOCKPRICE_GZIP_AGAIN) {
            rc = ngx_http_stockprice_gzip_step(&gz, snap->list_len);
        }

        if (rc == NGX_HTTP_STOCKPRICE_GZIP_OK && gz.out_len <= plan->gz_size) {
            snap->gz = q;
            snap->gz_len = gz.out_len;
            ngx_memcpy(snap->gz, gz.out, gz.out_len);

        } else {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "cannot compress the list restored, serving it "
                          "uncompressed until the next refresh");
        }

        ngx_http_stockprice_gzip_free(&gz);
    }

    for (i = 0; i < NGX_HTTP_STOCKPRICE_VALIDATORS; i++) {
        sv = &st->validators[i];
        v = &sh->validators[i];

        v->key = sv->key;
        v->etag_len = (uint8_t) sv->etag_len;
        v->date_len = (uint8_t) sv->date_len;
        ngx_memcpy(v->etag, sv->etag, sv->etag_len);
        ngx_memcpy(v->date, sv->date, sv->date_len);
    }

    sh->nonce_next = sh->nonce;
    sh->nonce = st->nonce;
    sh->generation = st->generation;
    sh->state_generation = st->generation;
    sh->restored = st->nrecords;
    sh->snapshot = snap;
}


/* a worker's writer, for a zone with state= */

ngx_int_t
ngx_http_stockprice_persist_init_process(ngx_cycle_t *cycle,
    ngx_http_stockprice_feed_t *feed)
{
    ngx_http_stockprice_ctx_t          *ctx;
    ngx_http_stockprice_persist_t      *p;
    ngx_http_stockprice_persist_job_t  *job;

    if (feed->state.len == 0) {
        return NGX_OK;
    }

    ctx = feed->shm_zone->data;

    p = ngx_pcalloc(cycle->pool, sizeof(ngx_http_stockprice_persist_t));
    if (p == NULL) {
        return NGX_ERROR;
    }

#if (NGX_THREADS)
    p->task = ngx_thread_task_alloc(cycle->pool,
                                 sizeof(ngx_http_stockprice_persist_job_t));
    if (p->task == NULL) {
        return NGX_ERROR;
    }

    p->task->handler = ngx_http_stockprice_persist_thread;
    p->task->event.handler = ngx_http_stockprice_persist_event;
    p->task->event.data = p;
    p->task->event.log = cycle->log;

    job = p->task->ctx;
#else
    job = ngx_pcalloc(cycle->pool, sizeof(ngx_http_stockprice_persist_job_t));
    if (job == NULL) {
        return NGX_ERROR;
    }
#endif

    job->zone = &feed->shm_zone->shm.name;
    job->path = &feed->state;
    job->dir = &feed->state_dir;

    job->temp = ngx_pnalloc(cycle->pool,
                        NGX_HTTP_STOCKPRICE_PERSIST_TEMP_LEN(&feed->state));
    if (job->temp == NULL) {
        return NGX_ERROR;
    }

    ngx_http_stockprice_persist_temp(job->temp, &feed->state, ngx_pid);

    p->ctx = ctx;
    p->job = job;

    p->timer.handler = ngx_http_stockprice_persist_timer;
    p->timer.data = p;
    p->timer.log = cycle->log;
    p->timer.cancelable = 1;

    ctx->persist = p;

    return NGX_OK;
}


/* after a refresh: the zone to the file, now or when a second is over */

void
ngx_http_stockprice_persist_kick(ngx_http_stockprice_ctx_t *ctx)
{
    ngx_http_stockprice_persist_t  *p;

    p = ctx->persist;

    if (p == NULL || p->busy || p->timer.timer_set
        || ngx_exiting || ngx_terminate || ngx_quit)
    {
        return;
    }

    ngx_http_stockprice_persist_start(p);
}


static void
ngx_http_stockprice_persist_timer(ngx_event_t *ev)
{
    ngx_http_stockprice_persist_t *p = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        /* exit_process() writes what is left */
        return;
    }

    ngx_http_stockprice_persist_start(p);
}


static void
ngx_http_stockprice_persist_start(ngx_http_stockprice_persist_t *p)
{
    ngx_msec_t  wait;

    switch (ngx_http_stockprice_persist_claim(p, 0, &wait)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        ngx_add_timer(&p->timer, wait);
        return;

    default:
        return;
    }

#if (NGX_THREADS)
    if (ngx_thread_task_post(p->ctx->feed->thread_pool, p->task) == NGX_OK) {
        p->busy = 1;
        return;
    }

    /* the pool said why: written here, this once */
#endif

    ngx_http_stockprice_persist_run(p->job);
    ngx_http_stockprice_persist_done(p, 0);
}


/*
 * The job of writing the zone, if it is due and this process's (zone.c
 * says); a writer that died writing is replaced.  NGX_DONE: nothing to
 * write; NGX_DECLINED: look again in *wait ms.
 */

static ngx_int_t
ngx_http_stockprice_persist_claim(ngx_http_stockprice_persist_t *p,
    ngx_uint_t exiting, ngx_msec_t *wait)
{
    ngx_int_t   rc;
    ngx_pid_t   holder;
    ngx_uint_t  tries;

    for (tries = 0; tries < 2; tries++) {

        rc = ngx_http_stockprice_zone_state_claim(p->ctx,
                                           NGX_HTTP_STOCKPRICE_PERSIST_EVERY,
                                           exiting, &p->job->copy, &holder,
                                           wait);

        if (rc == NGX_OK) {
            p->job->rc = NGX_ERROR;
            p->job->failed = NULL;
            p->job->file = NULL;
            p->job->err = 0;
            p->job->bytes = 0;
        }

        if (rc != NGX_BUSY) {
            return rc;
        }

        if (kill(holder, 0) == 0 || ngx_errno != NGX_ESRCH) {
            return NGX_DECLINED;
        }

        /* it died writing: its job, and its temporary file, go */
        ngx_http_stockprice_persist_forget(p, holder);
    }

    return NGX_DECLINED;
}


/* a writer that is gone: no longer the writer, its file removed */

static void
ngx_http_stockprice_persist_forget(ngx_http_stockprice_persist_t *p,
    ngx_pid_t pid)
{
    u_char     *temp;
    ngx_str_t  *path;

    ngx_http_stockprice_zone_state_forget(p->ctx, pid);

    path = p->job->path;

    temp = ngx_alloc(NGX_HTTP_STOCKPRICE_PERSIST_TEMP_LEN(path),
                     p->timer.log);
    if (temp == NULL) {
        return;
    }

    ngx_http_stockprice_persist_temp(temp, path, pid);
    (void) ngx_delete_file(temp);

    ngx_free(temp);
}


#if (NGX_THREADS)

static void
ngx_http_stockprice_persist_thread(void *data, ngx_log_t *log)
{
    ngx_http_stockprice_persist_run(data);
}


static void
ngx_http_stockprice_persist_event(ngx_event_t *ev)
{
    ngx_http_stockprice_persist_t *p = ev->data;

    p->busy = 0;

    ngx_http_stockprice_persist_done(p, 0);
}

#endif


/*
 * The job ended: the zone hears of it; the log when writes begin to fail
 * in whichever worker (or fail otherwise), and when they work again
 */

static void
ngx_http_stockprice_persist_done(ngx_http_stockprice_persist_t *p,
    ngx_uint_t exiting)
{
    ngx_uint_t                          failing, why;
    ngx_log_t                          *log;
    ngx_http_stockprice_ctx_t          *ctx;
    ngx_http_stockprice_persist_job_t  *job;

    ctx = p->ctx;
    job = p->job;
    log = p->timer.log;

    /* a failure, as the zone keeps it: the call and the error, not 0 */

    why = 0;

    if (job->rc == NGX_ERROR) {
        why = (ngx_hash_key((u_char *) job->failed, ngx_strlen(job->failed))
               << 16 | (ngx_uint_t) job->err) | 1;
    }

    failing = ngx_http_stockprice_zone_state_done(ctx, job->rc,
                                                  job->copy.generation, why);

    switch (job->rc) {

    case NGX_OK:
        if (failing) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "stockprice zone \"%V\": state file \"%V\" "
                          "written again", job->zone, job->path);
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                       "stockprice zone \"%V\": state file written, "
                       "%uz bytes, generation %uL", job->zone, job->bytes,
                       job->copy.generation);
        break;

    case NGX_DECLINED:
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                       "stockprice zone \"%V\": state file not written, "
                       "the zone changed meanwhile", job->zone);
        break;

    default:
        if (failing != why && job->file) {
            ngx_log_error(NGX_LOG_ERR, log, job->err,
                          "stockprice zone \"%V\": cannot write state file "
                          "\"%V\": %s \"%s\" failed", job->zone, job->path,
                          job->failed, job->file);

        } else if (failing != why) {
            ngx_log_error(NGX_LOG_ERR, log, job->err,
                          "stockprice zone \"%V\": cannot write state file "
                          "\"%V\": %s", job->zone, job->path, job->failed);

        } else {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, job->err,
                           "stockprice zone \"%V\": state file still not "
                           "written: %s failed", job->zone, job->failed);
        }
    }

    if (!exiting) {
        /* newer data meanwhile, or a retry: when the second is over */
        ngx_http_stockprice_persist_kick(ctx);
    }
}


/*
 * At the worker's exit (quit, stop, reload): what the zone holds that the
 * file does not, written now.  A job in the thread pool has ended: the
 * pool's exit_process(), which runs before this module's, waits for its
 * tasks.
 */

void
ngx_http_stockprice_persist_exit_process(ngx_http_stockprice_ctx_t *ctx)
{
    ngx_msec_t                      wait;
    ngx_http_stockprice_persist_t  *p;

    p = ctx->persist;

    if (p == NULL) {
        return;
    }

    if (p->timer.timer_set) {
        ngx_del_timer(&p->timer);
    }

    if (p->busy) {
        p->busy = 0;
        ngx_http_stockprice_persist_done(p, 1);
    }

    if (ngx_http_stockprice_persist_claim(p, 1, &wait) == NGX_OK) {
        ngx_http_stockprice_persist_run(p->job);
        ngx_http_stockprice_persist_done(p, 1);
    }

    ctx->persist = NULL;
}


/*
 * The job itself, in a thread of the pool (or at exit): no nginx call but
 * plain system ones, no log, no pool.  The snapshot is copied first, then
 * the zone's generation read again: if it did not change, no refresh
 * published meanwhile, and only a publish lets the next refresh write the
 * half the snapshot is in, so the copy is whole.
 */

static void
ngx_http_stockprice_persist_run(ngx_http_stockprice_persist_job_t *job)
{
    size_t                        len;
    u_char                       *copy, *buf;
    ngx_http_stockprice_state_t   st;

    copy = malloc(job->copy.size);
    if (copy == NULL) {
        ngx_http_stockprice_persist_fail(job, "malloc() failed", NULL);
        return;
    }

    ngx_memcpy(copy, job->copy.src, job->copy.size);

    ngx_memory_barrier();

    if (*job->copy.current != job->copy.generation) {
        free(copy);
        job->rc = NGX_DECLINED;
        return;
    }

    ngx_memzero(&st, sizeof(ngx_http_stockprice_state_t));

    if (ngx_http_stockprice_persist_state(job, copy, &st) != NGX_OK) {
        goto done;
    }

    len = ngx_http_stockprice_state_write(NULL, &st);

    buf = malloc(len);
    if (buf == NULL) {
        ngx_http_stockprice_persist_fail(job, "malloc() failed", NULL);
        goto done;
    }

    (void) ngx_http_stockprice_state_write((char *) buf, &st);

    ngx_http_stockprice_persist_file(job, buf, len);

    free(buf);

done:

    free(st.mem);
    free(copy);
}


/*
 * The state of the snapshot copied: its pointers into the zone made
 * pointers into the copy, each checked to lie inside it
 */

#define ngx_http_stockprice_persist_inside(p, n)                              \
    ((u_char *) (p) >= base && (u_char *) (p) <= last                        \
     && (size_t) (last - (u_char *) (p)) >= (size_t) (n))

#define ngx_http_stockprice_persist_moved(p)                                  \
    (copy + ((u_char *) (p) - base))

static ngx_int_t
ngx_http_stockprice_persist_state(ngx_http_stockprice_persist_job_t *job,
    u_char *copy, ngx_http_stockprice_state_t *st)
{
    u_char                           *base, *last, *q;
    size_t                            left, nrecords, k;
    uint32_t                         *lens;
    ngx_uint_t                        i, j;
    ngx_http_stockprice_str_t        *recs;
    ngx_http_stockprice_sym_t        *syms, *sym;
    ngx_http_stockprice_snap_t       *snap;
    ngx_http_stockprice_state_sym_t  *ssyms, *ss;
    ngx_http_stockprice_validator_t        *v;
    ngx_http_stockprice_state_validator_t  *sv;

    base = job->copy.src;
    last = job->copy.src + job->copy.size;
    snap = (ngx_http_stockprice_snap_t *) copy;
    nrecords = snap->nrecords;

    if (!ngx_http_stockprice_persist_inside(snap->syms, snap->nsymbols
                                        * sizeof(ngx_http_stockprice_sym_t))
        || nrecords < snap->nsymbols)
    {
        goto invalid;
    }

    syms = (ngx_http_stockprice_sym_t *)
               ngx_http_stockprice_persist_moved(snap->syms);

    st->mem = malloc(snap->nsymbols * sizeof(ngx_http_stockprice_state_sym_t)
                     + nrecords * sizeof(ngx_http_stockprice_str_t) + 1);
    if (st->mem == NULL) {
        ngx_http_stockprice_persist_fail(job, "malloc() failed", NULL);
        return NGX_ERROR;
    }

    ssyms = st->mem;
    recs = (ngx_http_stockprice_str_t *) (ssyms + snap->nsymbols);
    k = 0;

    for (i = 0; i < snap->nsymbols; i++) {
        sym = &syms[i];
        ss = &ssyms[i];

        if (sym->nrecords == 0 || sym->nrecords > nrecords - k
            || sym->name_len > NGX_HTTP_STOCKPRICE_SYMBOL_MAX
            || !ngx_http_stockprice_persist_inside(sym->newest,
                                                   sym->newest_len)
            || !ngx_http_stockprice_persist_inside(sym->older,
                                                   sym->older_len)
            || !ngx_http_stockprice_persist_inside(sym->lens,
                                   (sym->nrecords - 1) * sizeof(uint32_t)))
        {
            goto invalid;
        }

        ss->name_len = sym->name_len;
        ngx_memcpy(ss->name, sym->name, sym->name_len);
        ss->born = sym->born;
        ss->nrecords = sym->nrecords;
        ss->records = &recs[k];

        recs[k].data = (char *) ngx_http_stockprice_persist_moved(sym->newest);
        recs[k].len = sym->newest_len;
        k++;

        /* ",r1,r2,...": their lengths in lens */

        q = ngx_http_stockprice_persist_moved(sym->older);
        lens = (uint32_t *) ngx_http_stockprice_persist_moved(sym->lens);
        left = sym->older_len;

        for (j = 0; j + 1 < sym->nrecords; j++) {
            if (left < 1 + (size_t) lens[j]) {
                goto invalid;
            }

            recs[k].data = (char *) q + 1;
            recs[k].len = lens[j];
            k++;

            q += 1 + lens[j];
            left -= 1 + lens[j];
        }
    }

    st->zone = (char *) job->zone->data;
    st->zone_len = job->zone->len;
    st->generation = job->copy.generation;
    st->nonce = job->copy.nonce;
    st->filter = job->copy.filter;
    st->last_modified = job->copy.last_modified;
    st->nsymbols = snap->nsymbols;
    st->nrecords = k;
    st->syms = ssyms;

    for (i = 0; i < NGX_HTTP_STOCKPRICE_VALIDATORS; i++) {
        v = &job->copy.validators[i];
        sv = &st->validators[i];

        sv->key = v->key;
        sv->etag_len = v->etag_len;
        sv->date_len = v->date_len;
        ngx_memcpy(sv->etag, v->etag, v->etag_len);
        ngx_memcpy(sv->date, v->date, v->date_len);
    }

    return NGX_OK;

invalid:

    ngx_http_stockprice_persist_fail(job, "the snapshot copied is not valid",
                                     NULL);
    job->err = 0;

    return NGX_ERROR;
}


/* FILE.PID.tmp written, synced and renamed to FILE; the directory synced */

static void
ngx_http_stockprice_persist_file(ngx_http_stockprice_persist_job_t *job,
    u_char *buf, size_t len)
{
    int       fd;
    size_t    off;
    ssize_t   n;

    fd = open((char *) job->temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
              0600);

    if (fd == -1) {
        ngx_http_stockprice_persist_fail(job, "open()", job->temp);
        return;
    }

    for (off = 0; off < len; off += n) {
        n = write(fd, buf + off, len - off);

        if (n == -1) {
            if (errno == EINTR) {
                n = 0;
                continue;
            }

            ngx_http_stockprice_persist_fail(job, "write()", job->temp);
            goto failed;
        }
    }

    if (fsync(fd) == -1) {
        ngx_http_stockprice_persist_fail(job, "fsync()", job->temp);
        goto failed;
    }

    if (close(fd) == -1) {
        fd = -1;
        ngx_http_stockprice_persist_fail(job, "close()", job->temp);
        goto failed;
    }

    fd = -1;

    if (rename((char *) job->temp, (char *) job->path->data) == -1) {
        ngx_http_stockprice_persist_fail(job, "rename()", job->temp);
        goto failed;
    }

    /* the rename itself kept through a crash of the machine */

    fd = open((char *) job->dir->data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd != -1) {
        (void) fsync(fd);
        (void) close(fd);
    }

    job->rc = NGX_OK;
    job->bytes = len;

    return;

failed:

    if (fd != -1) {
        (void) close(fd);
    }

    (void) unlink((char *) job->temp);
}


static void
ngx_http_stockprice_persist_fail(ngx_http_stockprice_persist_job_t *job,
    const char *call, u_char *file)
{
    job->rc = NGX_ERROR;
    job->failed = call;
    job->file = file;
    job->err = errno;
}
