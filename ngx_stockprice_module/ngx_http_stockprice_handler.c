
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
#include <ngx_http_stockprice_stream.h>


/* a list this long goes by sendfile(), a shorter one in one writev() */
#define NGX_HTTP_STOCKPRICE_FILE_MIN  32768


/* this worker's copy of a generation's list, see handler_list() */

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
    ngx_fd_t                        fd;         /* a memfd, or -1 */
    size_t                          len;
    u_char                         *data;

    /* gzip=on: the zone's compressed list, copied when first asked for */
    ngx_uint_t                      gz_state;   /* GZ_UNKNOWN, _HAVE, _NONE */
    ngx_fd_t                        gz_fd;
    size_t                          gz_len;
    u_char                         *gz;
    size_t                          gz_etag_len;
    u_char                          gz_etag[NGX_HTTP_STOCKPRICE_ETAG_LEN
                                            + sizeof("-gz") - 1];
} ngx_http_stockprice_handler_cache_t;


#define NGX_HTTP_STOCKPRICE_GZ_UNKNOWN  0
#define NGX_HTTP_STOCKPRICE_GZ_HAVE     1
#define NGX_HTTP_STOCKPRICE_GZ_NONE     2


static ngx_int_t ngx_http_stockprice_handler_symbol(ngx_http_request_t *r,
    ngx_str_t *symbol);
static ngx_int_t ngx_http_stockprice_handler_filter(ngx_http_request_t *r,
    ngx_http_stockprice_zone_view_t *view);
static ngx_int_t ngx_http_stockprice_handler_list(ngx_http_request_t *r,
    ngx_http_stockprice_ctx_t *ctx, ngx_uint_t gzip);
static ngx_int_t ngx_http_stockprice_handler_gzip(ngx_http_request_t *r,
    ngx_http_stockprice_handler_cache_t *cache, ngx_uint_t file);
static ngx_int_t ngx_http_stockprice_handler_vary(ngx_http_request_t *r);
static void ngx_http_stockprice_handler_list_done(void *data);
static ngx_http_stockprice_handler_cache_t *
    ngx_http_stockprice_handler_cache_get(ngx_http_stockprice_ctx_t *ctx,
    ngx_uint_t file, ngx_log_t *log);
static ngx_http_stockprice_handler_cache_t *
    ngx_http_stockprice_handler_cache_make(ngx_http_stockprice_ctx_t *ctx,
    size_t len, ngx_log_t *log);
static ngx_fd_t ngx_http_stockprice_handler_memfd(u_char *data, size_t len,
    ngx_log_t *log);
static void ngx_http_stockprice_handler_cache_free(
    ngx_http_stockprice_handler_cache_t *cache);
static ngx_int_t ngx_http_stockprice_handler_validators(
    ngx_http_request_t *r, u_char *etag, size_t etag_len,
    time_t last_modified, u_char *http_time, size_t http_time_len);


ngx_str_t  ngx_http_stockprice_json_type = ngx_string("application/json");
static ngx_str_t  ngx_http_stockprice_text_type =
    ngx_string("text/plain; version=0.0.4; charset=utf-8");


ngx_int_t
ngx_http_stockprice_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_buf_t                        *b;
    ngx_http_stockprice_ctx_t        *ctx;
    ngx_http_stockprice_zone_view_t   view;
    ngx_http_stockprice_loc_conf_t   *slcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_stockprice_handler_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_memzero(&view, sizeof(ngx_http_stockprice_zone_view_t));

    if (ngx_http_stockprice_handler_symbol(r, &view.symbol) != NGX_OK) {
        return ngx_http_stockprice_handler_send_error(r, NGX_HTTP_NOT_FOUND,
                                                      "not found");
    }

    if (view.symbol.len == 0) {
        rc = ngx_http_stockprice_handler_filter(r, &view);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_stockprice_module);
    ctx = slcf->shm_zone->data;

    if (view.symbol.len == 0 && slcf->stream
        && ngx_http_stockprice_stream_wanted(r))
    {
        return ngx_http_stockprice_stream_start(r, ctx, &view);
    }

    if (view.symbol.len == 0 && view.filter == NULL) {

        /* gzip=on: the answer depends on Accept-Encoding, whatever it is */

        if (slcf->gzip && ngx_http_stockprice_handler_vary(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_stockprice_handler_list(r, ctx, slcf->gzip);

        if (rc != NGX_DECLINED) {
            return rc;
        }

        /* no copy of the list: the bytes are copied for this request */
    }

    b = NULL;

    /*
     * Sizes under the mutex, memory outside it, then bytes under it again:
     * the second pass measures anew, so a refresh in between is harmless.
     * HEAD and 304 too: the not modified filter and r->header_only decide.
     */

    for ( ;; ) {
        rc = ngx_http_stockprice_zone_read(ctx, &view, b ? b->pos : NULL,
                                           b ? b->end - b->pos : 0);

        if (rc != NGX_OK) {
            return ngx_http_stockprice_handler_send_error(r,
                                              NGX_HTTP_NOT_FOUND,
                                              "unknown symbol \"%V\"",
                                              &view.symbol);
        }

        if (view.last) {
            b->last = view.last;
            break;
        }

        b = ngx_create_temp_buf(r->pool, view.len);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_http_stockprice_handler_validators(r, view.etag, view.etag_len,
                                               view.last_modified, NULL, 0)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_stockprice_handler_send(r, NGX_HTTP_OK,
                                            &ngx_http_stockprice_json_type,
                                            b, view.len);
}


/*
 * The whole list, the most common request: sent from this worker's copy
 * of the current generation, without copying a byte (with sendfile on,
 * from a memfd).  NGX_DECLINED: no copy to be had, the caller copies.
 */

static ngx_int_t
ngx_http_stockprice_handler_list(ngx_http_request_t *r,
    ngx_http_stockprice_ctx_t *ctx, ngx_uint_t gzip)
{
    size_t                                len, etag_len;
    u_char                               *data, *etag;
    ngx_fd_t                              fd;
    ngx_buf_t                            *b;
    ngx_file_t                           *file;
    ngx_pool_cleanup_t                   *cln;
    ngx_http_core_loc_conf_t             *clcf;
    ngx_http_stockprice_handler_cache_t  *cache;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    cache = ngx_http_stockprice_handler_cache_get(ctx, clcf->sendfile,
                                                  r->connection->log);
    if (cache == NULL) {
        return NGX_DECLINED;
    }

    fd = cache->fd;
    len = cache->len;
    data = cache->data;
    etag = cache->etag;
    etag_len = cache->etag_len;

    if (gzip
        && ngx_http_stockprice_handler_gzip(r, cache, clcf->sendfile)
           == NGX_OK)
    {
        fd = cache->gz_fd;
        len = cache->gz_len;
        data = cache->gz;
        etag = cache->gz_etag;
        etag_len = cache->gz_etag_len;
    }

    if (ngx_http_stockprice_handler_validators(r, etag, etag_len,
                                               cache->last_modified,
                                               cache->http_time,
                                               cache->http_time_len)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the copy lives until the last request sending it is done */

    cln->handler = ngx_http_stockprice_handler_list_done;
    cln->data = cache;
    cache->refs++;

    if (clcf->sendfile && fd != NGX_INVALID_FILE) {

        /*
         * the request's own file: a thread task or a log that the output
         * chain hangs on it lives in the request's pool, the memfd in the
         * copy
         */

        file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));
        if (file == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        file->fd = fd;
        file->log = r->connection->log;
        ngx_str_set(&file->name, "stockprice list");

        b->in_file = 1;
        b->file = file;
        b->file_pos = 0;
        b->file_last = len;

    } else {
        b->memory = 1;
        b->pos = data;
        b->last = data + len;
    }

    return ngx_http_stockprice_handler_send(r, NGX_HTTP_OK,
                                            &ngx_http_stockprice_json_type,
                                            b, len);
}


/*
 * The compressed list for a client that takes gzip (as nginx's gzip_static
 * decides it: Accept-Encoding, gzip_http_version, gzip_proxied,
 * gzip_disable): Content-Encoding set, so that nginx's gzip filter leaves
 * it alone.  NGX_DECLINED: the identity list.
 */

static ngx_int_t
ngx_http_stockprice_handler_gzip(ngx_http_request_t *r,
    ngx_http_stockprice_handler_cache_t *cache, ngx_uint_t file)
{
#if (NGX_HTTP_GZIP)
    size_t            len;
    u_char           *p;
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

    /* Vary: handler_vary() has seen to it, whatever this sets */

    rc = ngx_http_gzip_ok(r);

    if (rc != NGX_OK) {
        return NGX_DECLINED;
    }

    if (cache->gz_state == NGX_HTTP_STOCKPRICE_GZ_UNKNOWN) {
        cache->gz_state = NGX_HTTP_STOCKPRICE_GZ_NONE;

        if (ngx_http_stockprice_zone_read_gz(cache->ctx, cache->generation,
                                             NULL, 0, &len)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        cache->gz = ngx_alloc(len, r->connection->log);
        if (cache->gz == NULL) {
            return NGX_DECLINED;
        }

        if (ngx_http_stockprice_zone_read_gz(cache->ctx, cache->generation,
                                             cache->gz, len, &cache->gz_len)
            != NGX_OK
            || cache->gz_len != len)
        {
            return NGX_DECLINED;
        }

        /* the ETag of the other encoding is never this one */

        p = ngx_cpymem(cache->gz_etag, cache->etag, cache->etag_len - 1);
        p = ngx_cpymem(p, "-gz\"", sizeof("-gz\"") - 1);
        cache->gz_etag_len = p - cache->gz_etag;

        if (file) {
            cache->gz_fd = ngx_http_stockprice_handler_memfd(cache->gz,
                                                             cache->gz_len,
                                                             r->connection->log);
        }

        cache->gz_state = NGX_HTTP_STOCKPRICE_GZ_HAVE;
    }

    if (cache->gz_state != NGX_HTTP_STOCKPRICE_GZ_HAVE) {
        return NGX_DECLINED;
    }

    h = ngx_http_stockprice_handler_add_header(r, "Content-Encoding",
                                               (u_char *) "gzip",
                                               sizeof("gzip") - 1);
    if (h == NULL) {
        return NGX_DECLINED;
    }

    r->headers_out.content_encoding = h;

    return NGX_OK;

#else

    return NGX_DECLINED;

#endif
}


/*
 * Vary: Accept-Encoding, once.  With gzip_vary on, nginx's header filter
 * writes one whenever r->gzip_vary is set (as the gzip filter sets it on
 * every answer it could compress, whoever asks): it is asked to then.
 */

static ngx_int_t
ngx_http_stockprice_handler_vary(ngx_http_request_t *r)
{
#if (NGX_HTTP_GZIP)
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->gzip_vary) {
        r->gzip_vary = 1;
        return NGX_OK;
    }
#endif

    if (ngx_http_stockprice_handler_add_header(r, "Vary",
                                               (u_char *) "Accept-Encoding",
                                               sizeof("Accept-Encoding") - 1)
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a request is done with its copy of the list */

static void
ngx_http_stockprice_handler_list_done(void *data)
{
    ngx_http_stockprice_handler_cache_t  *cache = data;

    if (--cache->refs == 0 && cache->ctx->cache != cache) {
        ngx_http_stockprice_handler_cache_free(cache);
    }
}


/*
 * The current generation's list as this worker's copy, made anew after a
 * refresh: the length under the mutex, the memory outside it, the bytes
 * under it again if the generation is still the same.  With "file", a
 * long list also goes into a memfd for sendfile().  NULL: no memory, or a
 * run of refreshes kept changing the list.
 */

static ngx_http_stockprice_handler_cache_t *
ngx_http_stockprice_handler_cache_get(ngx_http_stockprice_ctx_t *ctx,
    ngx_uint_t file, ngx_log_t *log)
{
    ngx_uint_t                            i;
    ngx_http_stockprice_zone_view_t       view;
    ngx_http_stockprice_handler_cache_t  *cache, *old;

    ngx_memzero(&view, sizeof(ngx_http_stockprice_zone_view_t));

    old = ctx->cache;

    for (i = 0; i < 4; i++) {

        (void) ngx_http_stockprice_zone_read(ctx, &view, NULL, 0);

        if (old && old->generation == view.generation) {
            return old;
        }

        cache = ngx_http_stockprice_handler_cache_make(ctx, view.len, log);
        if (cache == NULL) {
            return NULL;
        }

        cache->generation = view.generation;

        (void) ngx_http_stockprice_zone_read(ctx, &view, cache->data,
                                             cache->len);

        if (view.last == NULL || view.generation != cache->generation
            || (size_t) (view.last - cache->data) != cache->len)
        {
            ngx_http_stockprice_handler_cache_free(cache);
            continue;
        }

        cache->last_modified = view.last_modified;
        cache->etag_len = view.etag_len;
        ngx_memcpy(cache->etag, view.etag, view.etag_len);

        /* Last-Modified formatted once, not by every response's header */

        cache->http_time_len = (cache->last_modified == -1)
                               ? 0
                               : ngx_http_time(cache->http_time,
                                               cache->last_modified)
                                 - cache->http_time;

        if (file && cache->len >= NGX_HTTP_STOCKPRICE_FILE_MIN) {
            cache->fd = ngx_http_stockprice_handler_memfd(cache->data,
                                                          cache->len, log);
        }

        if (old && old->refs == 0) {
            ngx_http_stockprice_handler_cache_free(old);
        }

        ctx->cache = cache;

        return cache;
    }

    return NULL;
}


static ngx_http_stockprice_handler_cache_t *
ngx_http_stockprice_handler_cache_make(ngx_http_stockprice_ctx_t *ctx,
    size_t len, ngx_log_t *log)
{
    ngx_http_stockprice_handler_cache_t  *cache;

    cache = ngx_alloc(sizeof(ngx_http_stockprice_handler_cache_t) + len, log);
    if (cache == NULL) {
        return NULL;
    }

    ngx_memzero(cache, sizeof(ngx_http_stockprice_handler_cache_t));

    cache->ctx = ctx;
    cache->len = len;
    cache->data = (u_char *) (cache + 1);

    cache->fd = NGX_INVALID_FILE;
    cache->gz_fd = NGX_INVALID_FILE;

    return cache;
}


/* a long list also in a memfd, for sendfile(); -1 if that cannot be */

static ngx_fd_t
ngx_http_stockprice_handler_memfd(u_char *data, size_t len, ngx_log_t *log)
{
#if (NGX_LINUX && defined MFD_CLOEXEC)
    ssize_t   n;
    ngx_fd_t  fd;

    if (len < NGX_HTTP_STOCKPRICE_FILE_MIN) {
        return NGX_INVALID_FILE;
    }

    fd = memfd_create("stockprice", MFD_CLOEXEC);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                      "memfd_create() failed, sending the list from memory");
        return NGX_INVALID_FILE;
    }

    n = ngx_write_fd(fd, data, len);

    if (n != (ssize_t) len) {
        ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                      "write() to memfd failed, sending the list from memory");
        ngx_close_file(fd);
        return NGX_INVALID_FILE;
    }

    return fd;

#else

    return NGX_INVALID_FILE;

#endif
}


static void
ngx_http_stockprice_handler_cache_free(
    ngx_http_stockprice_handler_cache_t *cache)
{
    if (cache->fd != NGX_INVALID_FILE) {
        ngx_close_file(cache->fd);
    }

    if (cache->gz_fd != NGX_INVALID_FILE) {
        ngx_close_file(cache->gz_fd);
    }

    if (cache->gz) {
        ngx_free(cache->gz);
    }

    ngx_free(cache);
}


/* the worker exits: its copy of the list, unless a request still sends it */

void
ngx_http_stockprice_handler_exit(ngx_http_stockprice_ctx_t *ctx)
{
    ngx_http_stockprice_handler_cache_t  *cache;

    cache = ctx->cache;

    if (cache && cache->refs == 0) {
        ngx_http_stockprice_handler_cache_free(cache);
        ctx->cache = NULL;
    }
}


/*
 * ETag and Last-Modified (given formatted, or formatted by the header
 * filter) in the request's pool, as they may be logged; no-cache
 */

static ngx_int_t
ngx_http_stockprice_handler_validators(ngx_http_request_t *r, u_char *etag,
    size_t etag_len, time_t last_modified, u_char *http_time,
    size_t http_time_len)
{
    u_char  *p;

    if (ngx_http_stockprice_handler_no_cache(r) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, etag_len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, etag, etag_len);

    r->headers_out.etag = ngx_http_stockprice_handler_add_header(r, "ETag", p,
                                                                 etag_len);
    if (r->headers_out.etag == NULL) {
        return NGX_ERROR;
    }

    r->headers_out.last_modified_time = last_modified;

    if (http_time_len) {
        p = ngx_pnalloc(r->pool, http_time_len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, http_time, http_time_len);

        r->headers_out.last_modified = ngx_http_stockprice_handler_add_header(
                                           r, "Last-Modified", p,
                                           http_time_len);
        if (r->headers_out.last_modified == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_stockprice_handler_status(ngx_http_request_t *r)
{
    size_t                           len;
    ngx_int_t                        rc;
    ngx_str_t                        format, *type;
    ngx_buf_t                       *b;
    ngx_uint_t                       prometheus;
    ngx_http_stockprice_status_t     st;
    ngx_http_stockprice_loc_conf_t  *slcf;
    u_char                           error[NGX_HTTP_STOCKPRICE_ERROR_LEN];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_stockprice_handler_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_stockprice_module);

    ngx_memzero(&st, sizeof(ngx_http_stockprice_status_t));

    st.zone = (char *) slcf->shm_zone->shm.name.data;
    st.zone_len = slcf->shm_zone->shm.name.len;
    st.zone_bytes_total = slcf->shm_zone->shm.size;
    st.last_error = (char *) error;
    st.last_error_len = sizeof(error);

    ngx_http_stockprice_zone_status(slcf->shm_zone->data, &st);

    prometheus = ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK
                 && format.len == 10
                 && ngx_strncmp(format.data, "prometheus", 10) == 0;

    if (prometheus) {
        type = &ngx_http_stockprice_text_type;
        len = ngx_http_stockprice_render_status_prometheus(NULL, &st);

    } else {
        type = &ngx_http_stockprice_json_type;
        len = ngx_http_stockprice_render_status_json(NULL, &st);
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (prometheus) {
        b->last += ngx_http_stockprice_render_status_prometheus(
                                                     (char *) b->last, &st);

    } else {
        b->last += ngx_http_stockprice_render_status_json((char *) b->last,
                                                          &st);
    }

    if (ngx_http_stockprice_handler_no_cache(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_stockprice_handler_send(r, NGX_HTTP_OK, type, b, len);
}


/* 405 with "Allow: <allow>" and a JSON error body */

ngx_int_t
ngx_http_stockprice_handler_not_allowed(ngx_http_request_t *r,
    const char *allow)
{
    ngx_int_t  rc;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_stockprice_handler_add_header(r, "Allow", (u_char *) allow,
                                               ngx_strlen(allow))
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_stockprice_handler_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                                  "method not allowed");
}


/*
 * The part of the decoded URI after the location: "" for the list,
 * "SYM" for /api/StockPrice/SYM.  NGX_DECLINED for other URIs that the
 * prefix location matched, such as /api/StockPriceX.
 */

static ngx_int_t
ngx_http_stockprice_handler_symbol(ngx_http_request_t *r, ngx_str_t *symbol)
{
    u_char                    *p, *last;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    ngx_str_null(symbol);

    if (clcf->exact_match
#if (NGX_PCRE)
        || clcf->regex
#endif
        || r->uri.len < clcf->name.len
        || ngx_strncmp(r->uri.data, clcf->name.data, clcf->name.len) != 0)
    {
        return NGX_OK;
    }

    p = r->uri.data + clcf->name.len;
    last = r->uri.data + r->uri.len;

    if (p == last) {
        return NGX_OK;
    }

    if (clcf->name.len == 0 || clcf->name.data[clcf->name.len - 1] != '/') {
        if (*p != '/') {
            return NGX_DECLINED;
        }

        p++;
    }

    symbol->data = p;
    symbol->len = last - p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_stockprice_handler_filter(ngx_http_request_t *r,
    ngx_http_stockprice_zone_view_t *view)
{
    u_char       *p, *last, *comma, *dst;
    ngx_str_t     arg, *s;
    ngx_array_t  *a;

    if (ngx_http_arg(r, (u_char *) "symbols", 7, &arg) != NGX_OK) {
        return NGX_OK;
    }

    dst = ngx_pnalloc(r->pool, arg.len);
    if (dst == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = dst;
    ngx_unescape_uri(&p, &arg.data, arg.len, NGX_UNESCAPE_URI);

    a = ngx_array_create(r->pool, 4, sizeof(ngx_str_t));
    if (a == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = p;
    p = dst;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if (comma > p) {
            s = ngx_array_push(a);
            if (s == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            s->data = p;
            s->len = comma - p;
        }

        p = comma + 1;
    }

    view->filter = a->elts;
    view->nfilter = a->nelts;

    view->found = ngx_palloc(r->pool, (a->nelts + 1) * sizeof(void *));
    if (view->found == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_stockprice_handler_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_buf_t *b, size_t len)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    r->headers_out.status = status;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only || b == NULL) {
        return rc;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_stockprice_handler_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *fmt, ...)
{
    u_char     *p;
    size_t      len;
    va_list     args;
    ngx_buf_t  *b;
    u_char      msg[NGX_HTTP_STOCKPRICE_ERROR_LEN];

    va_start(args, fmt);
    p = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    /* a client's bytes in it: cut whole characters only, escape the rest */

    if (p == msg + sizeof(msg)) {
        p = msg + ngx_http_stockprice_render_utf8_cut((char *) msg, p - msg);
    }

    len = ngx_http_stockprice_render_error(NULL, (char *) msg, p - msg);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last += ngx_http_stockprice_render_error((char *) b->last, (char *) msg,
                                                p - msg);

    return ngx_http_stockprice_handler_send(r, status,
                                            &ngx_http_stockprice_json_type,
                                            b, len);
}


ngx_table_elt_t *
ngx_http_stockprice_handler_add_header(ngx_http_request_t *r, const char *key,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
    h->key.len = ngx_strlen(key);
    h->key.data = (u_char *) key;
    h->value.len = len;
    h->value.data = value;

    return h;
}


/*
 * "Cache-Control: no-cache" where nginx's "expires" finds it and puts its
 * own value instead: one Cache-Control either way
 */

ngx_int_t
ngx_http_stockprice_handler_no_cache(ngx_http_request_t *r)
{
    ngx_table_elt_t   *cc, **ccp;

    cc = ngx_http_stockprice_handler_add_header(r, "Cache-Control",
                                                (u_char *) "no-cache",
                                                sizeof("no-cache") - 1);
    if (cc == NULL) {
        return NGX_ERROR;
    }

#if (nginx_version >= 1023000)

    cc->next = r->headers_out.cache_control;
    r->headers_out.cache_control = cc;

    (void) ccp;

#else

    if (r->headers_out.cache_control.elts == NULL
        && ngx_array_init(&r->headers_out.cache_control, r->pool, 1,
                          sizeof(ngx_table_elt_t *))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ccp = ngx_array_push(&r->headers_out.cache_control);
    if (ccp == NULL) {
        return NGX_ERROR;
    }

    *ccp = cc;

#endif

    return NGX_OK;
}
