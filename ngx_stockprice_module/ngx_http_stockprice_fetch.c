
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_module.h>
#include <ngx_http_stockprice_zone.h>
#include <ngx_http_stockprice_fetch.h>


/* how long a lease outlives the request it covers */
#define NGX_HTTP_STOCKPRICE_LEASE_SLACK  2000

#define NGX_HTTP_STOCKPRICE_BUF_MIN      16384

/*
 * A large body is parsed and rendered in slices, each followed by a turn
 * of the event loop, so that a refresh of thousands of records never
 * holds the worker's clients back by more than a slice (8 KB parse in
 * some 30 us, 64 records rendered in some 8 us).
 */
#define NGX_HTTP_STOCKPRICE_PARSE_SLICE  8192       /* bytes */
#define NGX_HTTP_STOCKPRICE_RENDER_SLICE 64         /* records */


typedef enum {
    NGX_HTTP_STOCKPRICE_AUTH = 0,
    NGX_HTTP_STOCKPRICE_PRICES
} ngx_http_stockprice_step_e;


typedef enum {
    NGX_HTTP_STOCKPRICE_IDLE = 0,
    NGX_HTTP_STOCKPRICE_PARSING,
    NGX_HTTP_STOCKPRICE_RENDERING
} ngx_http_stockprice_stage_e;


struct ngx_http_stockprice_fetch_s {
    ngx_http_stockprice_feed_t     *feed;
    ngx_http_stockprice_ctx_t      *ctx;
    ngx_log_t                      *log;

    ngx_event_t                     timer;      /* the next refresh */

    CURL                           *easy;       /* NULL: idle */
    struct curl_slist              *headers;
    ngx_http_stockprice_step_e      step;
    unsigned                        retried:1;
    unsigned                        too_large:1;

    struct timeval                  start;      /* measurement time */

    /* after the prices body: the work on it, a slice per event */
    ngx_event_t                     slice;
    ngx_http_stockprice_stage_e     stage;
    ngx_msec_t                      extended;   /* the lease, last */
    ngx_uint_t                      skipped;
    ngx_http_stockprice_parser_t    parser;
    ngx_http_stockprice_batch_t     batch;

    u_char                         *buf;        /* response body */
    size_t                          len;
    size_t                          size;

    size_t                          token_len;
    u_char                          token[NGX_HTTP_STOCKPRICE_TOKEN_MAX];
    char                            error[CURL_ERROR_SIZE];
};


static void ngx_http_stockprice_refresh_handler(ngx_event_t *ev);
static void ngx_http_stockprice_start(ngx_http_stockprice_fetch_t *fetch,
    ngx_http_stockprice_step_e step);
static void ngx_http_stockprice_done(ngx_http_stockprice_fetch_t *fetch,
    CURLcode result, long status);
static void ngx_http_stockprice_auth_done(ngx_http_stockprice_fetch_t *fetch,
    long status);
static void ngx_http_stockprice_prices_done(
    ngx_http_stockprice_fetch_t *fetch, long status);
static void ngx_http_stockprice_slice_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_stockprice_parsed(
    ngx_http_stockprice_fetch_t *fetch, int rc);
static void ngx_http_stockprice_store(ngx_http_stockprice_fetch_t *fetch);
static void ngx_http_stockprice_work_free(ngx_http_stockprice_fetch_t *fetch);
static void ngx_http_stockprice_finish(ngx_http_stockprice_fetch_t *fetch,
    ngx_str_t *error, ngx_uint_t skipped);
static void ngx_http_stockprice_fail(ngx_http_stockprice_fetch_t *fetch,
    const char *fmt, ...);
static void ngx_http_stockprice_release(ngx_http_stockprice_fetch_t *fetch);
static void ngx_http_stockprice_abort_all(
    ngx_http_stockprice_main_conf_t *spcf);

static size_t ngx_http_stockprice_write(char *ptr, size_t size, size_t nmemb,
    void *data);
static int ngx_http_stockprice_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp);
static int ngx_http_stockprice_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_stockprice_socket_handler(ngx_event_t *ev);
static void ngx_http_stockprice_timer_handler(ngx_event_t *ev);
static void ngx_http_stockprice_check_multi(void);
static void ngx_http_stockprice_close_socket(ngx_connection_t *c);
static void ngx_http_stockprice_quit_handler(ngx_event_t *ev);


/* this worker's curl state: one multi handle for every feed */

static CURLM             *ngx_http_stockprice_multi;
static ngx_event_t        ngx_http_stockprice_curl_timer;
static ngx_connection_t  *ngx_http_stockprice_watcher;
static ngx_uint_t         ngx_http_stockprice_curl_inited;


ngx_int_t
ngx_http_stockprice_fetch_init(ngx_cycle_t *cycle,
    ngx_http_stockprice_main_conf_t *spcf)
{
    ngx_uint_t                    i;
    ngx_connection_t             *c;
    ngx_http_stockprice_feed_t  **feeds;
    ngx_http_stockprice_fetch_t  *fetch;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "stockprice: curl_global_init() failed, no refreshes "
                      "in this worker");
        return NGX_OK;
    }

    ngx_http_stockprice_curl_inited = 1;

    ngx_http_stockprice_multi = curl_multi_init();
    if (ngx_http_stockprice_multi == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "stockprice: curl_multi_init() failed, no refreshes "
                      "in this worker");
        return NGX_OK;
    }

    curl_multi_setopt(ngx_http_stockprice_multi, CURLMOPT_SOCKETFUNCTION,
                      ngx_http_stockprice_socket);
    curl_multi_setopt(ngx_http_stockprice_multi, CURLMOPT_SOCKETDATA, cycle);
    curl_multi_setopt(ngx_http_stockprice_multi, CURLMOPT_TIMERFUNCTION,
                      ngx_http_stockprice_timer);
    curl_multi_setopt(ngx_http_stockprice_multi, CURLMOPT_TIMERDATA, cycle);

    ngx_http_stockprice_curl_timer.handler = ngx_http_stockprice_timer_handler;
    ngx_http_stockprice_curl_timer.data = cycle;
    ngx_http_stockprice_curl_timer.log = cycle->log;
    ngx_http_stockprice_curl_timer.cancelable = 1;

    /*
     * An idle-marked connection with no socket: at graceful shutdown
     * ngx_close_idle_connections() calls its read handler, which abandons
     * transfers in flight so that the next workers take over at once.
     * With select and poll, whose files[] a fake fd would break, exit
     * process does the same a little later.
     */

    if (ngx_cycle->files == NULL) {
        c = ngx_get_connection(0, cycle->log);

        if (c) {
            c->fd = (ngx_socket_t) -2;
            c->idle = 1;
            c->data = spcf;
            c->read->handler = ngx_http_stockprice_quit_handler;
            c->read->log = cycle->log;
            c->write->log = cycle->log;
            ngx_http_stockprice_watcher = c;
        }
    }

    feeds = spcf->feeds.elts;

    for (i = 0; i < spcf->feeds.nelts; i++) {
        fetch = ngx_pcalloc(cycle->pool, sizeof(ngx_http_stockprice_fetch_t));
        if (fetch == NULL) {
            return NGX_ERROR;
        }

        fetch->feed = feeds[i];
        fetch->ctx = feeds[i]->shm_zone->data;
        fetch->log = cycle->log;

        fetch->timer.handler = ngx_http_stockprice_refresh_handler;
        fetch->timer.data = fetch;
        fetch->timer.log = cycle->log;
        fetch->timer.cancelable = 1;

        fetch->slice.handler = ngx_http_stockprice_slice_handler;
        fetch->slice.data = fetch;
        fetch->slice.log = cycle->log;

        feeds[i]->fetch = fetch;

        /* the schedule lives in the zone: this only looks at it */
        ngx_add_timer(&fetch->timer, 1);
    }

    return NGX_OK;
}


void
ngx_http_stockprice_fetch_exit(ngx_cycle_t *cycle,
    ngx_http_stockprice_main_conf_t *spcf)
{
    CURLM             *multi;
    ngx_uint_t         i;
    ngx_connection_t  *c;

    ngx_http_stockprice_abort_all(spcf);

    if (ngx_http_stockprice_multi) {
        multi = ngx_http_stockprice_multi;
        ngx_http_stockprice_multi = NULL;
        curl_multi_cleanup(multi);
    }

    if (ngx_http_stockprice_curl_timer.timer_set) {
        ngx_del_timer(&ngx_http_stockprice_curl_timer);
    }

    /* whatever curl did not hand back: its fds are closed by now */

    c = cycle->connections;

    for (i = 0; i < cycle->connection_n; i++) {
        if (c[i].fd != (ngx_socket_t) -1
            && c[i].read
            && c[i].read->handler == ngx_http_stockprice_socket_handler)
        {
            c[i].read->active = 0;
            c[i].write->active = 0;
            ngx_http_stockprice_close_socket(&c[i]);
        }
    }

    if (ngx_http_stockprice_watcher) {
        c = ngx_http_stockprice_watcher;
        ngx_http_stockprice_watcher = NULL;
        c->fd = 0;
        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;
    }

    if (ngx_http_stockprice_curl_inited) {
        curl_global_cleanup();
        ngx_http_stockprice_curl_inited = 0;
    }
}


static void
ngx_http_stockprice_quit_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c;

    c = ev->data;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "stockprice: shutting down, abandoning refreshes");

    ngx_http_stockprice_abort_all(c->data);

    ngx_http_stockprice_watcher = NULL;
    c->fd = 0;
    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}


static void
ngx_http_stockprice_abort_all(ngx_http_stockprice_main_conf_t *spcf)
{
    ngx_uint_t                    i;
    ngx_http_stockprice_feed_t  **feeds;
    ngx_http_stockprice_fetch_t  *fetch;

    feeds = spcf->feeds.elts;

    for (i = 0; i < spcf->feeds.nelts; i++) {
        fetch = feeds[i]->fetch;

        if (fetch == NULL) {
            continue;
        }

        if (fetch->timer.timer_set) {
            ngx_del_timer(&fetch->timer);
        }

        if (fetch->easy || fetch->stage != NGX_HTTP_STOCKPRICE_IDLE) {
            ngx_http_stockprice_release(fetch);
            ngx_http_stockprice_work_free(fetch);
            ngx_http_stockprice_lease_abandon(fetch->ctx);
        }

        if (fetch->buf) {
            ngx_free(fetch->buf);
            fetch->buf = NULL;
            fetch->size = 0;
        }
    }
}


static void
ngx_http_stockprice_refresh_handler(ngx_event_t *ev)
{
    ngx_msec_t                    wait;
    ngx_http_stockprice_feed_t   *feed;
    ngx_http_stockprice_fetch_t  *fetch;

    fetch = ev->data;
    feed = fetch->feed;

    if (ngx_exiting || ngx_http_stockprice_multi == NULL || fetch->easy
        || fetch->stage != NGX_HTTP_STOCKPRICE_IDLE)
    {
        return;
    }

    if (ngx_http_stockprice_lease_acquire(fetch->ctx,
                                feed->timeout + NGX_HTTP_STOCKPRICE_LEASE_SLACK,
                                &wait)
        != NGX_OK)
    {
        ngx_add_timer(&fetch->timer, ngx_max(wait, 1));
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "stockprice zone \"%V\": refresh",
                   &feed->shm_zone->shm.name);

    ngx_gettimeofday(&fetch->start);
    fetch->retried = 0;

    if (feed->auth_url.len
        && ngx_http_stockprice_token_get(fetch->ctx, fetch->token,
                                         sizeof(fetch->token),
                                         &fetch->token_len)
           != NGX_OK)
    {
        ngx_http_stockprice_start(fetch, NGX_HTTP_STOCKPRICE_AUTH);
        return;
    }

    ngx_http_stockprice_start(fetch, NGX_HTTP_STOCKPRICE_PRICES);
}


static void
ngx_http_stockprice_start(ngx_http_stockprice_fetch_t *fetch,
    ngx_http_stockprice_step_e step)
{
    CURL                        *easy;
    u_char                      *p;
    CURLMcode                    rc;
    struct curl_slist           *headers, *h;
    ngx_http_stockprice_feed_t  *feed;
    u_char                       auth[sizeof("Authorization: Bearer ")
                                      + NGX_HTTP_STOCKPRICE_TOKEN_MAX];

    feed = fetch->feed;

    ngx_http_stockprice_lease_extend(fetch->ctx,
                               feed->timeout + NGX_HTTP_STOCKPRICE_LEASE_SLACK,
                               step == NGX_HTTP_STOCKPRICE_AUTH);

    easy = curl_easy_init();
    if (easy == NULL) {
        ngx_http_stockprice_fail(fetch, "curl_easy_init() failed");
        return;
    }

    fetch->easy = easy;
    fetch->step = step;
    fetch->len = 0;
    fetch->too_large = 0;
    fetch->error[0] = '\0';

    headers = curl_slist_append(NULL, "Accept: application/json");
    if (headers == NULL) {
        goto failed;
    }

    fetch->headers = headers;

    if (step == NGX_HTTP_STOCKPRICE_AUTH) {
        h = curl_slist_append(headers, "Content-Type: application/json");

        curl_easy_setopt(easy, CURLOPT_URL, feed->auth_url.data);
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, feed->auth_body.data);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE,
                         (long) feed->auth_body.len);

    } else {
        h = headers;

        if (feed->auth_url.len) {
            p = ngx_cpymem(auth, "Authorization: Bearer ",
                           sizeof("Authorization: Bearer ") - 1);
            p = ngx_cpymem(p, fetch->token, fetch->token_len);
            *p = '\0';

            h = curl_slist_append(headers, (char *) auth);
            ngx_explicit_memzero(auth, sizeof(auth));
        }

        curl_easy_setopt(easy, CURLOPT_URL, feed->url.data);
    }

    if (h == NULL) {
        goto failed;
    }

    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, NGX_HTTP_STOCKPRICE_AGENT);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, fetch);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, fetch->error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, ngx_http_stockprice_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, fetch);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) feed->timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) feed->timeout);
    curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE,
                     (curl_off_t) feed->max_size);
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
#if (LIBCURL_VERSION_NUM >= 0x075500)
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
#if (LIBCURL_VERSION_NUM >= 0x075700)
    curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
#endif

    rc = curl_multi_add_handle(ngx_http_stockprice_multi, easy);
    if (rc != CURLM_OK) {
        goto failed;
    }

    return;

failed:

    ngx_http_stockprice_release(fetch);
    ngx_http_stockprice_fail(fetch, "cannot start a request");
}


static size_t
ngx_http_stockprice_write(char *ptr, size_t size, size_t nmemb, void *data)
{
    ngx_http_stockprice_fetch_t *fetch = data;

    u_char      *p;
    size_t       n, need;
    curl_off_t   length;

    n = size * nmemb;
    need = fetch->len + n;

    /* cut the transfer off as soon as it passes max_size */

    if (need > fetch->feed->max_size) {
        fetch->too_large = 1;
        return 0;
    }

    /* a Content-Length known: room for all of it at once */

    if (fetch->len == 0
        && curl_easy_getinfo(fetch->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
                             &length)
           == CURLE_OK
        && length > 0
        && (uint64_t) length > need)
    {
        need = ngx_min((uint64_t) length, (uint64_t) fetch->feed->max_size);
    }

    if (need > fetch->size) {
        need = ngx_max(need, ngx_max(fetch->size * 2,
                                     NGX_HTTP_STOCKPRICE_BUF_MIN));
        need = ngx_min(need, fetch->feed->max_size);

        /* one spare byte: a NUL after the body for the parser */

        p = ngx_alloc(need + 1, fetch->log);
        if (p == NULL) {
            return 0;
        }

        if (fetch->buf) {
            ngx_memcpy(p, fetch->buf, fetch->len);
            ngx_free(fetch->buf);
        }

        fetch->buf = p;
        fetch->size = need;
    }

    ngx_memcpy(fetch->buf + fetch->len, ptr, n);
    fetch->len += n;

    /*
     * cJSON before the fix of CVE-2023-53154 may read one byte past
     * a body that ends inside an object
     */
    fetch->buf[fetch->len] = '\0';

    return n;
}


static void
ngx_http_stockprice_release(ngx_http_stockprice_fetch_t *fetch)
{
    if (fetch->easy) {
        if (ngx_http_stockprice_multi) {
            curl_multi_remove_handle(ngx_http_stockprice_multi, fetch->easy);
        }

        curl_easy_cleanup(fetch->easy);
        fetch->easy = NULL;
    }

    if (fetch->headers) {
        curl_slist_free_all(fetch->headers);
        fetch->headers = NULL;
    }
}


static void
ngx_http_stockprice_check_multi(void)
{
    int                           left;
    long                          status;
    CURL                         *easy;
    CURLMsg                      *msg;
    CURLcode                      result;
    ngx_http_stockprice_fetch_t  *fetch;

    while ((msg = curl_multi_info_read(ngx_http_stockprice_multi, &left))) {

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        easy = msg->easy_handle;
        result = msg->data.result;
        fetch = NULL;
        status = 0;

        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &fetch);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);

        if (fetch == NULL || fetch->easy != easy) {
            curl_multi_remove_handle(ngx_http_stockprice_multi, easy);
            curl_easy_cleanup(easy);
            continue;
        }

        ngx_http_stockprice_release(fetch);
        ngx_http_stockprice_done(fetch, result, status);

        if (ngx_http_stockprice_multi == NULL) {
            return;
        }
    }
}


static void
ngx_http_stockprice_done(ngx_http_stockprice_fetch_t *fetch, CURLcode result,
    long status)
{
    const char  *what;

    what = (fetch->step == NGX_HTTP_STOCKPRICE_AUTH) ? "auth" : "upstream";

    if (result != CURLE_OK) {

        if (fetch->too_large || result == CURLE_FILESIZE_EXCEEDED) {
            ngx_http_stockprice_fail(fetch,
                                     "%s response larger than max_size %uz",
                                     what, fetch->feed->max_size);

        } else if (result == CURLE_OPERATION_TIMEDOUT) {
            ngx_http_stockprice_fail(fetch, "%s timed out after %M ms",
                                     what, fetch->feed->timeout);

        } else {
            ngx_http_stockprice_fail(fetch, "%s request failed: %s", what,
                                     fetch->error[0]
                                     ? fetch->error
                                     : curl_easy_strerror(result));
        }

        return;
    }

    if (fetch->step == NGX_HTTP_STOCKPRICE_AUTH) {
        ngx_http_stockprice_auth_done(fetch, status);

    } else {
        ngx_http_stockprice_prices_done(fetch, status);
    }
}


static void
ngx_http_stockprice_auth_done(ngx_http_stockprice_fetch_t *fetch,
    long status)
{
    int     rc;
    char   *token;
    long    expires_in;
    size_t  len;

    if (status < 200 || status > 299) {
        ngx_http_stockprice_fail(fetch, "auth answered %l", status);
        return;
    }

    rc = ngx_http_stockprice_parse_token((char *) fetch->buf, fetch->len,
                                         &token, &len, &expires_in);

    if (rc != NGX_HTTP_STOCKPRICE_PARSE_OK) {
        ngx_http_stockprice_fail(fetch, "auth answer has no valid token");
        return;
    }

    ngx_memcpy(fetch->token, token, len);
    fetch->token_len = len;

    ngx_explicit_memzero(token, len);
    free(token);

    if (ngx_http_stockprice_token_set(fetch->ctx, fetch->token, len,
                                      expires_in)
        != NGX_OK)
    {
        ngx_http_stockprice_fail(fetch, "zone is too small for the token");
        return;
    }

    ngx_log_error(NGX_LOG_INFO, fetch->log, 0,
                  "stockprice zone \"%V\": authenticated%s",
                  &fetch->feed->shm_zone->shm.name,
                  expires_in > 0 ? "" : ", token does not expire");

    ngx_http_stockprice_start(fetch, NGX_HTTP_STOCKPRICE_PRICES);
}


static void
ngx_http_stockprice_prices_done(ngx_http_stockprice_fetch_t *fetch,
    long status)
{
    ngx_http_stockprice_feed_t  *feed;

    feed = fetch->feed;

    if (status == 401 && feed->auth_url.len && !fetch->retried) {
        /* the token was refused: authenticate once more, then retry */
        fetch->retried = 1;
        ngx_http_stockprice_token_clear(fetch->ctx, fetch->token,
                                        fetch->token_len);
        ngx_http_stockprice_start(fetch, NGX_HTTP_STOCKPRICE_AUTH);
        return;
    }

    if (status < 200 || status > 299) {
        ngx_http_stockprice_fail(fetch, "upstream answered %l", status);
        return;
    }

    /* the lease covers the work on the body too: extended at its start */

    fetch->extended = ngx_current_msec - NGX_HTTP_STOCKPRICE_LEASE_POLL;

    ngx_http_stockprice_parse_start(&fetch->parser, (char *) fetch->buf,
                                    fetch->len, feed->filter, feed->nfilter);

    fetch->stage = NGX_HTTP_STOCKPRICE_PARSING;

    ngx_http_stockprice_slice_handler(&fetch->slice);
}


/*
 * One slice of the work on a prices body, then the event loop's turn: the
 * event goes to ngx_posted_next_events, run after the next poll for I/O,
 * which does not wait while it is there.
 */

static void
ngx_http_stockprice_slice_handler(ngx_event_t *ev)
{
    int                           rc;
    ngx_http_stockprice_fetch_t  *fetch;

    fetch = ev->data;

    if (ngx_exiting) {
        /* shutting down: the next workers refresh at once */
        ngx_http_stockprice_work_free(fetch);
        ngx_http_stockprice_lease_abandon(fetch->ctx);
        return;
    }

    /*
     * however long the work takes on a busy worker, the lease stays ours:
     * only its holder may replace the snapshot
     */

    if (ngx_current_msec - fetch->extended >= NGX_HTTP_STOCKPRICE_LEASE_POLL)
    {
        ngx_http_stockprice_lease_extend(fetch->ctx,
                                fetch->feed->timeout
                                + NGX_HTTP_STOCKPRICE_LEASE_SLACK, 0);
        fetch->extended = ngx_current_msec;
    }

    switch (fetch->stage) {

    case NGX_HTTP_STOCKPRICE_PARSING:
        rc = ngx_http_stockprice_parse_step(&fetch->parser,
                                            NGX_HTTP_STOCKPRICE_PARSE_SLICE);

        if (rc == NGX_HTTP_STOCKPRICE_PARSE_AGAIN) {
            break;
        }

        if (ngx_http_stockprice_parsed(fetch, rc) != NGX_AGAIN) {
            return;
        }

        if (fetch->parser.chunks > 1) {
            break;
        }

        /* a small body, parsed in one slice: on in the same turn */

        /* fall through */

    case NGX_HTTP_STOCKPRICE_RENDERING:
        if (ngx_http_stockprice_batch_render(&fetch->batch,
                                             NGX_HTTP_STOCKPRICE_RENDER_SLICE)
            == NGX_OK)
        {
            ngx_http_stockprice_store(fetch);
            return;
        }

        break;

    default:
        return;
    }

    ngx_post_event(ev, &ngx_posted_next_events);
}


/* the body parsed: NGX_AGAIN, records to render; else finished */

static ngx_int_t
ngx_http_stockprice_parsed(ngx_http_stockprice_fetch_t *fetch, int rc)
{
    size_t                               n;
    ngx_http_stockprice_feed_t          *feed;
    ngx_http_stockprice_record_t        *recs;
    ngx_http_stockprice_parse_stats_t   *stats;

    feed = fetch->feed;
    stats = &fetch->parser.stats;

    if (rc == NGX_HTTP_STOCKPRICE_PARSE_OK) {
        rc = ngx_http_stockprice_parse_done(&fetch->parser, &recs, &n);

    } else {
        ngx_http_stockprice_parse_abort(&fetch->parser);
    }

    fetch->stage = NGX_HTTP_STOCKPRICE_IDLE;

    switch (rc) {

    case NGX_HTTP_STOCKPRICE_PARSE_OK:
        break;

    case NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON:
        ngx_http_stockprice_fail(fetch, "upstream response is not valid JSON");
        return NGX_DONE;

    case NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY:
        ngx_http_stockprice_fail(fetch,
                                 "upstream response is not a JSON array");
        return NGX_DONE;

    default:
        ngx_http_stockprice_fail(fetch, "cannot parse upstream response");
        return NGX_DONE;
    }

    fetch->skipped = stats->bad_symbol + stats->bad_price
                     + stats->not_object;

    if (fetch->skipped) {
        ngx_log_error(NGX_LOG_WARN, fetch->log, 0,
                      "stockprice zone \"%V\": skipped %uz of %uz records "
                      "(%uz bad symbol, %uz bad price, %uz not an object)",
                      &feed->shm_zone->shm.name, fetch->skipped,
                      stats->total, stats->bad_symbol, stats->bad_price,
                      stats->not_object);
    }

    if (n == 0) {
        ngx_http_stockprice_finish(fetch, NULL, fetch->skipped);
        return NGX_DONE;
    }

    if (ngx_http_stockprice_batch_init(&fetch->batch, recs, n, &fetch->start,
                                       fetch->log)
        != NGX_OK)
    {
        free(recs);
        ngx_http_stockprice_fail(fetch, "cannot store records");
        return NGX_DONE;
    }

    fetch->stage = NGX_HTTP_STOCKPRICE_RENDERING;

    return NGX_AGAIN;
}


static void
ngx_http_stockprice_store(ngx_http_stockprice_fetch_t *fetch)
{
    size_t     n, needed;
    ngx_int_t  rc;

    n = fetch->batch.n;

    rc = ngx_http_stockprice_publish(fetch->ctx, &fetch->batch, &needed,
                                     fetch->log);

    ngx_http_stockprice_batch_free(&fetch->batch);
    fetch->stage = NGX_HTTP_STOCKPRICE_IDLE;

    if (rc == NGX_DECLINED) {
        ngx_http_stockprice_fail(fetch, "zone is too small for %uz symbols, "
                                 "%uz bytes needed", n, needed);
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_stockprice_fail(fetch, "cannot store records");
        return;
    }

    ngx_http_stockprice_finish(fetch, NULL, fetch->skipped);
}


/* whatever the work on a body holds, at an abort */

static void
ngx_http_stockprice_work_free(ngx_http_stockprice_fetch_t *fetch)
{
    if (fetch->slice.posted) {
        ngx_delete_posted_event(&fetch->slice);
    }

    if (fetch->stage == NGX_HTTP_STOCKPRICE_PARSING) {
        ngx_http_stockprice_parse_abort(&fetch->parser);
    }

    if (fetch->stage == NGX_HTTP_STOCKPRICE_RENDERING) {
        ngx_http_stockprice_batch_free(&fetch->batch);
    }

    fetch->stage = NGX_HTTP_STOCKPRICE_IDLE;
}


static void
ngx_http_stockprice_fail(ngx_http_stockprice_fetch_t *fetch,
    const char *fmt, ...)
{
    u_char                     *p;
    va_list                     args;
    ngx_str_t                   error;
    ngx_uint_t                  nsymbols;
    ngx_http_stockprice_ctx_t  *ctx;
    u_char                      buf[NGX_HTTP_STOCKPRICE_ERROR_LEN];

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    error.data = buf;
    error.len = p - buf;

    ctx = fetch->ctx;

    ngx_shmtx_lock(&ctx->shpool->mutex);
    nsymbols = ctx->sh->snapshot ? ctx->sh->snapshot->nsymbols : 0;
    ngx_shmtx_unlock(&ctx->shpool->mutex);

    ngx_log_error(NGX_LOG_ERR, fetch->log, 0,
                  "stockprice zone \"%V\": %V, keeping %ui symbols",
                  &fetch->feed->shm_zone->shm.name, &error, nsymbols);

    ngx_http_stockprice_finish(fetch, &error, 0);
}


static void
ngx_http_stockprice_finish(ngx_http_stockprice_fetch_t *fetch,
    ngx_str_t *error, ngx_uint_t skipped)
{
    ngx_msec_t  delay;

    ngx_http_stockprice_release(fetch);

    /* a large body is not kept for the whole interval */

    if (fetch->size > NGX_HTTP_STOCKPRICE_BUF_MIN * 4) {
        ngx_free(fetch->buf);
        fetch->buf = NULL;
        fetch->size = 0;
    }

    fetch->len = 0;

    delay = ngx_http_stockprice_lease_release(fetch->ctx, error, skipped);

    if (ngx_exiting) {
        return;
    }

    if (fetch->timer.timer_set) {
        ngx_del_timer(&fetch->timer);
    }

    ngx_add_timer(&fetch->timer, delay);
}


static int
ngx_http_stockprice_socket(CURL *easy, curl_socket_t s, int what, void *userp,
    void *socketp)
{
    ngx_cycle_t *cycle = userp;

    ngx_connection_t  *c;

    c = socketp;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                   "stockprice curl socket %d: %d", (int) s, what);

    if (what == CURL_POLL_REMOVE) {
        if (c) {
            if (ngx_http_stockprice_multi) {
                curl_multi_assign(ngx_http_stockprice_multi, s, NULL);
            }

            ngx_http_stockprice_close_socket(c);
        }

        return 0;
    }

    if (c == NULL) {
        c = ngx_get_connection(s, cycle->log);
        if (c == NULL) {
            return -1;
        }

        c->log = cycle->log;
        c->read->log = cycle->log;
        c->write->log = cycle->log;
        c->read->handler = ngx_http_stockprice_socket_handler;
        c->write->handler = ngx_http_stockprice_socket_handler;

        curl_multi_assign(ngx_http_stockprice_multi, s, c);
    }

    /* level-triggered: curl may leave data unread between calls */

    if (what & CURL_POLL_IN) {
        if (!c->read->active
            && ngx_add_event(c->read, NGX_READ_EVENT, 0) != NGX_OK)
        {
            return -1;
        }

    } else if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (what & CURL_POLL_OUT) {
        if (!c->write->active
            && ngx_add_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK)
        {
            return -1;
        }

    } else if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }

    return 0;
}


static void
ngx_http_stockprice_close_socket(ngx_connection_t *c)
{
    ngx_uint_t  flags;

    /*
     * curl may have closed the socket already (a connect that timed out,
     * with curl 7.88): the close took it out of epoll, and epoll_ctl()
     * would fail with EBADF
     */

    flags = 0;

    if ((c->read->active || c->write->active)
        && fcntl(c->fd, F_GETFD) == -1)
    {
        flags = NGX_CLOSE_EVENT;
    }

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, flags);
    }

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, flags);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    /* the socket is curl's: it closes it */

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}


static void
ngx_http_stockprice_socket_handler(ngx_event_t *ev)
{
    int                running;
    ngx_connection_t  *c;

    c = ev->data;

    if (ngx_http_stockprice_multi == NULL) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "stockprice curl socket %d %s ready", (int) c->fd,
                   ev->write ? "write" : "read");

    curl_multi_socket_action(ngx_http_stockprice_multi, c->fd,
                             ev->write ? CURL_CSELECT_OUT : CURL_CSELECT_IN,
                             &running);

    ngx_http_stockprice_check_multi();
}


static int
ngx_http_stockprice_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_event_t  *ev;

    ev = &ngx_http_stockprice_curl_timer;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "stockprice curl timer: %l ms", timeout_ms);

    /* deleted first: nginx ignores a re-add that moves it < 300 ms */

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    if (timeout_ms >= 0) {
        ngx_add_timer(ev, (ngx_msec_t) timeout_ms);
    }

    return 0;
}


static void
ngx_http_stockprice_timer_handler(ngx_event_t *ev)
{
    int  running;

    if (ngx_exiting || ngx_http_stockprice_multi == NULL) {
        return;
    }

    curl_multi_socket_action(ngx_http_stockprice_multi, CURL_SOCKET_TIMEOUT,
                             0, &running);

    ngx_http_stockprice_check_multi();
}
