
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>
#include <ngx_http_stockprice_module.h>
#include <ngx_http_stockprice_zone.h>
#include <ngx_http_stockprice_persist.h>
#include <ngx_http_stockprice_curl.h>
#include <ngx_http_stockprice_ssl.h>
#include <ngx_http_stockprice_stream.h>
#include <ngx_http_stockprice_notify.h>
#include <ngx_http_stockprice_gzip.h>
#include <ngx_http_stockprice_request.h>
#include <ngx_http_stockprice_fetch.h>


/* how long a lease outlives the request it covers */
#define NGX_HTTP_STOCKPRICE_WHO_LEN      sizeof("backup 18446744073709551615")
#define NGX_HTTP_STOCKPRICE_LEASE_SLACK  2000

#define NGX_HTTP_STOCKPRICE_BUF_MIN      16384
#define NGX_HTTP_STOCKPRICE_RETRY_AFTER_MAX  3600   /* seconds */

/*
 * A large body is parsed, rendered and stored in slices, each followed by
 * a turn of the event loop, so that a refresh of thousands of records
 * never holds the worker's clients back by more than a slice (8 KB parse
 * in some 30 us, 64 records rendered in some 8 us, a store step in some
 * 20 us).
 */
#define NGX_HTTP_STOCKPRICE_PARSE_SLICE  8192       /* bytes */
#define NGX_HTTP_STOCKPRICE_GZIP_SLICE   4096       /* bytes of the list */
#define NGX_HTTP_STOCKPRICE_RENDER_SLICE 64         /* records */

/* scratch for one rendered record: every byte escaped as \u00XX */
#define NGX_HTTP_STOCKPRICE_RECORD_MAX                                        \
    (sizeof("{\"id\":\"\",\"symbol\":\"\",\"price\":,\"valueDateTime\":\"\","  \
            "\"measurementTimeStamp\":\"\"}")                                 \
     + NGX_HTTP_STOCKPRICE_UUID_LEN + 6 * NGX_HTTP_STOCKPRICE_SYMBOL_MAX      \
     + NGX_HTTP_STOCKPRICE_PRICE_LEN + 6 * NGX_HTTP_STOCKPRICE_TIME_MAX       \
     + NGX_HTTP_STOCKPRICE_ISO_LEN)


typedef enum {
    NGX_HTTP_STOCKPRICE_AUTH = 0,
    NGX_HTTP_STOCKPRICE_PRICES
} ngx_http_stockprice_step_e;


typedef enum {
    NGX_HTTP_STOCKPRICE_IDLE = 0,
    NGX_HTTP_STOCKPRICE_PARSING,
    NGX_HTTP_STOCKPRICE_RENDERING,
    NGX_HTTP_STOCKPRICE_STORING,
    NGX_HTTP_STOCKPRICE_COMPRESSING
} ngx_http_stockprice_stage_e;


typedef enum {
    NGX_HTTP_STOCKPRICE_REQ_FREE = 0,
    NGX_HTTP_STOCKPRICE_REQ_SENT,         /* in curl's hands */
    NGX_HTTP_STOCKPRICE_REQ_BODY          /* answered 2xx, to be parsed */
} ngx_http_stockprice_req_state_e;


/* one request of a refresh in flight, and its answer's body */

typedef struct {
    ngx_http_stockprice_fetch_t    *fetch;
    CURL                           *easy;
    struct curl_slist              *headers;
    ngx_http_stockprice_step_e      step;
    ngx_http_stockprice_req_state_e state;
    ngx_uint_t                      part;       /* of the feed's nparts */
    ngx_uint_t                      upstream;   /* 0 the URL, 1... backup= */
    ngx_uint_t                      token;      /* fetch->token_gen, sent */
    ngx_msec_t                      retry;      /* its Retry-After, or 0 */
    unsigned                        too_large:1;
    unsigned                        conditional:1;  /* validators sent */
    ngx_http_stockprice_validator_t  answer;    /* its answer's */

    u_char                         *buf;        /* response body */
    size_t                          len;
    size_t                          size;

    char                            error[CURL_ERROR_SIZE];
} ngx_http_stockprice_fetch_req_t;


struct ngx_http_stockprice_fetch_s {
    ngx_http_stockprice_feed_t     *feed;
    ngx_http_stockprice_ctx_t      *ctx;
    ngx_log_t                      *log;

    ngx_event_t                     timer;      /* the next refresh */
    uint64_t                        lease;      /* 0: not refreshing */
    unsigned                        pruning:1;  /* not a refresh */

    /* the requests of a refresh: feed->parts, feed->concurrency at once */
    ngx_http_stockprice_fetch_req_t  *reqs;
    ngx_uint_t                      nreqs;
    ngx_uint_t                      next;       /* part to request next */
    ngx_uint_t                      sent;       /* requests in flight */
    ngx_uint_t                      ok;         /* parts applied */
    ngx_uint_t                      failed;
    ngx_uint_t                     *redo;       /* to ask (again): after
                                                   the re-auth, or of a
                                                   backup; upstream *
                                                   nparts + part */
    ngx_uint_t                      nredo;
    ngx_uint_t                      token_gen;  /* tokens obtained */
    ngx_uint_t                      not_modified;  /* 304s */
    uint32_t                        fresh;      /* parts applied (bits) */
    ngx_http_stockprice_validator_t  *validators;  /* their answers' */
    unsigned                        auth:1;     /* to authenticate */
    unsigned                        authing:1;
    unsigned                        retried:1;  /* re-auth for a 401 */
    unsigned                        held:1;     /* no more requests */
    ngx_msec_t                      retry_after;  /* auth's 429 or 503 */
    ngx_msec_t                      retry[NGX_HTTP_STOCKPRICE_UPSTREAMS];
    ngx_uint_t                      held_mask;  /* upstreams held back */
    ngx_uint_t                      failovers;  /* parts a backup asked */
    ngx_uint_t                      answered;   /* 1 + the upstream, last */
    size_t                          why_len;    /* the first failure */
    u_char                          why[NGX_HTTP_STOCKPRICE_ERROR_LEN];

    struct timeval                  start;      /* measurement time */
    ngx_http_stockprice_traffic_t   traffic;    /* this refresh's bytes,
                                                   answers */

    /* after the prices bodies: the work on them, a slice per event */
    ngx_event_t                     slice;
    ngx_http_stockprice_stage_e     stage;
    ngx_msec_t                      renewed;    /* the lease, last */
    ngx_http_stockprice_fetch_req_t  *body;     /* being parsed */
    unsigned                        parsing:1;  /* the parser is started */
    ngx_http_stockprice_parser_t    parser;
    ngx_http_stockprice_batch_t     batch;
    ngx_uint_t                      rendered;   /* of batch.n */
    u_char                         *last;       /* in batch.text */
    size_t                          mtime_len;
    char                            mtime[NGX_HTTP_STOCKPRICE_ISO_LEN];
    ngx_http_stockprice_zone_build_t  build;
    ngx_http_stockprice_gzip_t      gzip;       /* gzip=on: the new list */

    size_t                          token_len;
    u_char                          token[NGX_HTTP_STOCKPRICE_TOKEN_MAX];
};


static void ngx_http_stockprice_fetch_quit(void *data);
static void ngx_http_stockprice_fetch_abandon(
    ngx_http_stockprice_fetch_t *fetch);
static void ngx_http_stockprice_fetch_refresh_handler(ngx_event_t *ev);
static void ngx_http_stockprice_fetch_prune(
    ngx_http_stockprice_fetch_t *fetch);
static void ngx_http_stockprice_fetch_advance(
    ngx_http_stockprice_fetch_t *fetch);
static ngx_http_stockprice_fetch_req_t *ngx_http_stockprice_fetch_req(
    ngx_http_stockprice_fetch_t *fetch, ngx_http_stockprice_req_state_e state);
static ngx_int_t ngx_http_stockprice_fetch_request(
    ngx_http_stockprice_fetch_t *fetch, ngx_http_stockprice_fetch_req_t *req,
    ngx_http_stockprice_step_e step, ngx_uint_t part, ngx_uint_t upstream);
static ngx_int_t ngx_http_stockprice_fetch_setopt(
    ngx_http_stockprice_fetch_t *fetch, ngx_http_stockprice_fetch_req_t *req);
static size_t ngx_http_stockprice_fetch_write(char *ptr, size_t size,
    size_t nmemb, void *data);
static void ngx_http_stockprice_fetch_release(
    ngx_http_stockprice_fetch_req_t *req);
static void ngx_http_stockprice_fetch_curl_done(CURL *easy, CURLcode result);
static ngx_int_t ngx_http_stockprice_fetch_failed(
    ngx_http_stockprice_fetch_t *fetch, ngx_http_stockprice_fetch_req_t *req,
    CURLcode result, long status);
static void ngx_http_stockprice_fetch_auth_done(
    ngx_http_stockprice_fetch_t *fetch, ngx_http_stockprice_fetch_req_t *req);
static void ngx_http_stockprice_fetch_prices_done(
    ngx_http_stockprice_fetch_t *fetch, ngx_http_stockprice_fetch_req_t *req,
    long status);
static ngx_uint_t ngx_http_stockprice_fetch_upstream(
    ngx_http_stockprice_fetch_t *fetch, ngx_uint_t u);
static void ngx_http_stockprice_fetch_part_failed(
    ngx_http_stockprice_fetch_t *fetch, ngx_http_stockprice_fetch_req_t *req);
static u_char *ngx_http_stockprice_fetch_who(
    ngx_http_stockprice_fetch_req_t *req, u_char *buf);
static void ngx_http_stockprice_fetch_why(ngx_http_stockprice_fetch_t *fetch,
    const char *fmt, ...);
static void ngx_http_stockprice_fetch_slice_handler(ngx_event_t *ev);
static void ngx_http_stockprice_fetch_body(ngx_http_stockprice_fetch_t *fetch,
    ngx_http_stockprice_fetch_req_t *req);
static void ngx_http_stockprice_fetch_parsed(
    ngx_http_stockprice_fetch_t *fetch, int rc);
static void ngx_http_stockprice_fetch_complete(
    ngx_http_stockprice_fetch_t *fetch);
static ngx_int_t ngx_http_stockprice_fetch_batch_init(
    ngx_http_stockprice_fetch_t *fetch, ngx_http_stockprice_record_t *recs,
    ngx_uint_t n);
static ngx_int_t ngx_http_stockprice_fetch_render(
    ngx_http_stockprice_fetch_t *fetch);
static void ngx_http_stockprice_fetch_uuid(char *buf);
static void ngx_http_stockprice_fetch_compress(
    ngx_http_stockprice_fetch_t *fetch);
static ngx_int_t ngx_http_stockprice_fetch_store(
    ngx_http_stockprice_fetch_t *fetch);
static void ngx_http_stockprice_fetch_stored(
    ngx_http_stockprice_fetch_t *fetch, ngx_int_t rc);
static void ngx_http_stockprice_fetch_work_free(
    ngx_http_stockprice_fetch_t *fetch);
static void ngx_http_stockprice_fetch_fail(ngx_http_stockprice_fetch_t *fetch,
    const char *fmt, ...);
static void ngx_http_stockprice_fetch_finish(
    ngx_http_stockprice_fetch_t *fetch, ngx_str_t *error);
static void ngx_http_stockprice_fetch_lost(ngx_http_stockprice_fetch_t *fetch);
static void ngx_http_stockprice_fetch_reset(
    ngx_http_stockprice_fetch_t *fetch);
static void ngx_http_stockprice_fetch_arm(ngx_http_stockprice_fetch_t *fetch,
    ngx_msec_t delay);


ngx_int_t
ngx_http_stockprice_fetch_init(ngx_cycle_t *cycle,
    ngx_http_stockprice_main_conf_t *spcf)
{
    ngx_uint_t                    i, k;
    ngx_http_stockprice_feed_t  **feeds;
    ngx_http_stockprice_fetch_t  *fetch;

    if (ngx_http_stockprice_curl_init(cycle,
                                      ngx_http_stockprice_fetch_curl_done,
                                      ngx_http_stockprice_fetch_quit, spcf)
        != NGX_OK)
    {
        return NGX_ERROR;
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

        /* no more requests at once than there are parts */

        fetch->nreqs = ngx_min(feeds[i]->concurrency, feeds[i]->nparts);
        fetch->reqs = ngx_pcalloc(cycle->pool, fetch->nreqs
                                  * sizeof(ngx_http_stockprice_fetch_req_t));
        /* a part waits in redo, is in flight or is parsed: one at a time */
        fetch->redo = ngx_pcalloc(cycle->pool,
                                  feeds[i]->nparts * sizeof(ngx_uint_t));
        fetch->validators = ngx_pcalloc(cycle->pool,
                                ngx_min(feeds[i]->nparts,
                                        NGX_HTTP_STOCKPRICE_VALIDATORS)
                                * sizeof(ngx_http_stockprice_validator_t));
        if (fetch->reqs == NULL || fetch->redo == NULL
            || fetch->validators == NULL)
        {
            return NGX_ERROR;
        }

        for (k = 0; k < fetch->nreqs; k++) {
            fetch->reqs[k].fetch = fetch;
        }

        fetch->timer.handler = ngx_http_stockprice_fetch_refresh_handler;
        fetch->timer.data = fetch;
        fetch->timer.log = cycle->log;
        fetch->timer.cancelable = 1;

        fetch->slice.handler = ngx_http_stockprice_fetch_slice_handler;
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
    ngx_http_stockprice_fetch_quit(spcf);
    ngx_http_stockprice_curl_exit(cycle);
}


/* shutting down: every refresh abandoned, so the next workers go on */

static void
ngx_http_stockprice_fetch_quit(void *data)
{
    ngx_http_stockprice_main_conf_t *spcf = data;

    ngx_uint_t                        i, k;
    ngx_http_stockprice_feed_t      **feeds;
    ngx_http_stockprice_fetch_t      *fetch;
    ngx_http_stockprice_fetch_req_t  *req;

    feeds = spcf->feeds.elts;

    for (i = 0; i < spcf->feeds.nelts; i++) {
        ngx_http_stockprice_stream_quit(feeds[i]->shm_zone->data);

        fetch = feeds[i]->fetch;

        if (fetch == NULL) {
            continue;
        }

        if (fetch->timer.timer_set) {
            ngx_del_timer(&fetch->timer);
        }

        if (fetch->lease) {
            ngx_http_stockprice_fetch_abandon(fetch);
        }

        for (k = 0; k < fetch->nreqs; k++) {
            req = &fetch->reqs[k];

            if (req->buf) {
                ngx_free(req->buf);
                req->buf = NULL;
                req->size = 0;
            }
        }
    }
}


static void
ngx_http_stockprice_fetch_abandon(ngx_http_stockprice_fetch_t *fetch)
{
    ngx_http_stockprice_fetch_reset(fetch);
    ngx_http_stockprice_zone_lease_drop(fetch->ctx, fetch->lease);
    fetch->lease = 0;
}


static void
ngx_http_stockprice_fetch_refresh_handler(ngx_event_t *ev)
{
    ngx_msec_t                    wait;
    ngx_uint_t                    prune;
    ngx_http_stockprice_feed_t   *feed;
    ngx_http_stockprice_fetch_t  *fetch;

    fetch = ev->data;
    feed = fetch->feed;

    if (ngx_exiting || !ngx_http_stockprice_curl_ready() || fetch->lease) {
        return;
    }

    /* a reload changed symbols=: those no longer asked for go at once */

    prune = ngx_http_stockprice_zone_prune_due(fetch->ctx);

    if (ngx_http_stockprice_zone_lease_take(fetch->ctx,
                                feed->timeout + NGX_HTTP_STOCKPRICE_LEASE_SLACK,
                                prune, &fetch->lease, &wait)
        != NGX_OK)
    {
        fetch->lease = 0;
        ngx_http_stockprice_fetch_arm(fetch, ngx_max(wait, 1));
        return;
    }

    if (prune) {
        ngx_http_stockprice_fetch_prune(fetch);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "stockprice zone \"%V\": refresh",
                   &feed->shm_zone->shm.name);

    ngx_gettimeofday(&fetch->start);
    ngx_memzero(&fetch->traffic, sizeof(ngx_http_stockprice_traffic_t));

    fetch->next = 0;
    fetch->ok = 0;
    fetch->failed = 0;
    fetch->not_modified = 0;
    fetch->fresh = 0;
    fetch->nredo = 0;
    fetch->retried = 0;
    fetch->held = 0;
    fetch->retry_after = 0;
    ngx_memzero(fetch->retry, sizeof(fetch->retry));
    fetch->failovers = 0;
    fetch->answered = 0;
    fetch->why_len = 0;
    fetch->renewed = ngx_current_msec;

    /* those that asked not to be called yet are passed over, backups asked */

    fetch->held_mask = ngx_http_stockprice_zone_held(fetch->ctx);

    if (ngx_http_stockprice_fetch_upstream(fetch, 0) == feed->nupstreams) {
        fetch->held = 1;
        ngx_http_stockprice_fetch_why(fetch, "every upstream asked not to "
                                      "be called yet (Retry-After)");
    }

    fetch->auth = feed->auth_url.len
                  && ngx_http_stockprice_zone_token_get(fetch->ctx,
                                                        fetch->token,
                                                        sizeof(fetch->token),
                                                        &fetch->token_len)
                     != NGX_OK;

    ngx_http_stockprice_fetch_advance(fetch);
}


/* a snapshot of the same records, but those symbols= no longer asks for */

static void
ngx_http_stockprice_fetch_prune(ngx_http_stockprice_fetch_t *fetch)
{
    ngx_memzero(&fetch->batch, sizeof(ngx_http_stockprice_batch_t));

    fetch->pruning = 1;
    fetch->renewed = ngx_current_msec;

    if (ngx_http_stockprice_fetch_store(fetch) != NGX_OK) {
        return;
    }

    ngx_http_stockprice_fetch_slice_handler(&fetch->slice);
}


/*
 * The refresh's next move, after each of its events: authenticate (once
 * the requests in flight are in, as a re-auth replaces the token they
 * carry), request parts while there are free slots, parse an answered
 * body, or, all parts done, go on to the store.
 */

static void
ngx_http_stockprice_fetch_advance(ngx_http_stockprice_fetch_t *fetch)
{
    ngx_uint_t                        part, u, slot;
    ngx_http_stockprice_fetch_req_t  *req;

    if (fetch->authing) {
        return;
    }

    if (fetch->auth && !fetch->held) {
        if (fetch->sent) {
            return;
        }

        req = ngx_http_stockprice_fetch_req(fetch, NGX_HTTP_STOCKPRICE_REQ_FREE);
        if (req == NULL) {
            /* every slot holds a body: parsed first */
            goto body;
        }

        fetch->auth = 0;
        fetch->authing = 1;

        (void) ngx_http_stockprice_fetch_request(fetch, req,
                                                 NGX_HTTP_STOCKPRICE_AUTH, 0,
                                                 0);
        return;
    }

    while (!fetch->held && !fetch->auth
           && (fetch->nredo || fetch->next < fetch->feed->nparts))
    {
        req = ngx_http_stockprice_fetch_req(fetch, NGX_HTTP_STOCKPRICE_REQ_FREE);
        if (req == NULL) {
            break;
        }

        slot = fetch->nredo ? fetch->redo[--fetch->nredo] : fetch->next++;
        part = slot % fetch->feed->nparts;

        /* the first upstream from its own on that has not asked to wait */

        u = ngx_http_stockprice_fetch_upstream(fetch,
                                               slot / fetch->feed->nparts);

        if (u == fetch->feed->nupstreams) {
            fetch->failed++;
            continue;
        }

        if (ngx_http_stockprice_fetch_request(fetch, req,
                                              NGX_HTTP_STOCKPRICE_PRICES, part,
                                              u)
            == NGX_ABORT)
        {
            return;
        }
    }

body:

    if (fetch->stage != NGX_HTTP_STOCKPRICE_IDLE) {
        return;
    }

    req = ngx_http_stockprice_fetch_req(fetch, NGX_HTTP_STOCKPRICE_REQ_BODY);

    if (req) {
        ngx_http_stockprice_fetch_body(fetch, req);
        ngx_post_event(&fetch->slice, &ngx_posted_next_events);
        return;
    }

    if (fetch->sent == 0
        && (fetch->held
            || (!fetch->auth && fetch->nredo == 0
                && fetch->next == fetch->feed->nparts)))
    {
        ngx_http_stockprice_fetch_complete(fetch);
    }
}


static ngx_http_stockprice_fetch_req_t *
ngx_http_stockprice_fetch_req(ngx_http_stockprice_fetch_t *fetch,
    ngx_http_stockprice_req_state_e state)
{
    ngx_uint_t  k;

    for (k = 0; k < fetch->nreqs; k++) {
        if (fetch->reqs[k].state == state) {
            return &fetch->reqs[k];
        }
    }

    return NULL;
}


/*
 * A request started in "req"; NGX_ABORT: the lease was lost (the refresh
 * is gone), NGX_ERROR: it could not be started (counted as a failure)
 */

static ngx_int_t
ngx_http_stockprice_fetch_request(ngx_http_stockprice_fetch_t *fetch,
    ngx_http_stockprice_fetch_req_t *req, ngx_http_stockprice_step_e step,
    ngx_uint_t part, ngx_uint_t upstream)
{
    CURL                        *easy;
    ngx_http_stockprice_ctx_t   *ctx;
    ngx_http_stockprice_feed_t  *feed;

    feed = fetch->feed;
    ctx = fetch->ctx;

    if (ngx_http_stockprice_zone_lease_renew(ctx, fetch->lease,
                               feed->timeout + NGX_HTTP_STOCKPRICE_LEASE_SLACK)
        != NGX_OK
        || (step == NGX_HTTP_STOCKPRICE_AUTH
            && ngx_http_stockprice_zone_count_auth(ctx, fetch->lease)
               != NGX_OK))
    {
        ngx_http_stockprice_fetch_lost(fetch);
        return NGX_ABORT;
    }

    fetch->renewed = ngx_current_msec;

    req->step = step;
    req->part = part;
    req->upstream = upstream;
    req->retry = 0;
    req->token = fetch->token_gen;
    req->len = 0;
    req->too_large = 0;
    req->conditional = 0;
    req->answer.key = 0;
    req->error[0] = '\0';

    easy = curl_easy_init();

    if (easy) {
        req->easy = easy;

        if (ngx_http_stockprice_fetch_setopt(fetch, req) == NGX_OK
            && ngx_http_stockprice_curl_add(easy) == NGX_OK)
        {
            req->state = NGX_HTTP_STOCKPRICE_REQ_SENT;
            fetch->sent++;
            return NGX_OK;
        }

        ngx_http_stockprice_fetch_release(req);
    }

    ngx_http_stockprice_fetch_why(fetch, "cannot start a request");

    if (step == NGX_HTTP_STOCKPRICE_AUTH) {
        fetch->authing = 0;
        fetch->held = 1;

    } else {
        ngx_http_stockprice_fetch_part_failed(fetch, req);
    }

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_stockprice_fetch_setopt(ngx_http_stockprice_fetch_t *fetch,
    ngx_http_stockprice_fetch_req_t *req)
{
    u_char                      *p;
    CURL                        *easy;
    ngx_str_t                   *line;
    ngx_uint_t                   i;
    struct curl_slist           *headers, *h;
    ngx_http_stockprice_feed_t  *feed;
    ngx_http_stockprice_part_t  *part;
    u_char                       auth[sizeof("Authorization: Bearer ")
                                      + NGX_HTTP_STOCKPRICE_TOKEN_MAX];
    u_char                       cond[NGX_HTTP_STOCKPRICE_VALIDATOR_LINE];
    ngx_http_stockprice_validator_t  v;

    feed = fetch->feed;
    easy = req->easy;

    headers = curl_slist_append(NULL, "Accept: application/json");
    if (headers == NULL) {
        return NGX_ERROR;
    }

    req->headers = headers;

    if (req->step == NGX_HTTP_STOCKPRICE_AUTH
        && feed->auth_type == NGX_HTTP_STOCKPRICE_AUTH_OAUTH2)
    {
        h = curl_slist_append(headers, "Content-Type: "
                                       "application/x-www-form-urlencoded");
        if (h) {
            h = curl_slist_append(headers, (char *) feed->auth_basic.data);
        }

        curl_easy_setopt(easy, CURLOPT_URL, feed->auth_url.data);
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, feed->auth_body.data);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE,
                         (long) feed->auth_body.len);

    } else if (req->step == NGX_HTTP_STOCKPRICE_AUTH) {
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

        line = feed->headers ? feed->headers->elts : NULL;

        for (i = 0; h && feed->headers && i < feed->headers->nelts; i++) {
            h = curl_slist_append(headers, (char *) line[i].data);
        }

        /* the records the zone holds of this request: only if changed */

        part = &feed->parts[req->upstream * feed->nparts + req->part];

        ngx_http_stockprice_zone_validator(fetch->ctx, req->part, part->key,
                                           &v);

        if (h && ngx_http_stockprice_validator_line(&v, cond)) {
            h = curl_slist_append(headers, (char *) cond);
            req->conditional = 1;
        }

        curl_easy_setopt(easy, CURLOPT_URL, part->url.data);
    }

    if (h == NULL) {
        return NGX_ERROR;
    }

    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, NGX_HTTP_STOCKPRICE_AGENT);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, req);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION,
                     ngx_http_stockprice_fetch_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) feed->timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) feed->timeout);
    curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE,
                     (curl_off_t) feed->max_size);
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);

    /* proxy= or none: "" keeps curl from the environment's http_proxy */
    curl_easy_setopt(easy, CURLOPT_PROXY, feed->proxy.data);
#if (LIBCURL_VERSION_NUM >= 0x075500)
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
#if (LIBCURL_VERSION_NUM >= 0x075700)
    curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
#endif

    ngx_http_stockprice_curl_share(easy);
    ngx_http_stockprice_ssl_setopt(easy, &feed->ssl);

    return NGX_OK;
}


static size_t
ngx_http_stockprice_fetch_write(char *ptr, size_t size, size_t nmemb,
    void *data)
{
    ngx_http_stockprice_fetch_req_t *req = data;

    u_char      *p;
    size_t       n, need, max;
    curl_off_t   length;

    n = size * nmemb;
    need = req->len + n;
    max = req->fetch->feed->max_size;

    /* cut the transfer off as soon as it passes max_size */

    if (need > max) {
        req->too_large = 1;
        return 0;
    }

    /* a Content-Length known: room for all of it at once */

    if (req->len == 0
        && curl_easy_getinfo(req->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
                             &length)
           == CURLE_OK
        && length > 0
        && (uint64_t) length > need)
    {
        need = ngx_min((uint64_t) length, (uint64_t) max);
    }

    if (need > req->size) {
        need = ngx_max(need, ngx_max(req->size * 2,
                                     NGX_HTTP_STOCKPRICE_BUF_MIN));
        need = ngx_min(need, max);

        /* one spare byte: a NUL after the body for the parser */

        p = ngx_alloc(need + 1, req->fetch->log);
        if (p == NULL) {
            return 0;
        }

        if (req->buf) {
            ngx_memcpy(p, req->buf, req->len);
            ngx_free(req->buf);
        }

        req->buf = p;
        req->size = need;
    }

    ngx_memcpy(req->buf + req->len, ptr, n);
    req->len += n;
    req->fetch->traffic.response_bytes += n;

    /*
     * cJSON before the fix of CVE-2023-53154 may read one byte past
     * a body that ends inside an object
     */
    req->buf[req->len] = '\0';

    return n;
}


static void
ngx_http_stockprice_fetch_release(ngx_http_stockprice_fetch_req_t *req)
{
    if (req->easy) {
        ngx_http_stockprice_curl_remove(req->easy);
        req->easy = NULL;
    }

    if (req->headers) {
        curl_slist_free_all(req->headers);
        req->headers = NULL;
    }
}


static void
ngx_http_stockprice_fetch_curl_done(CURL *easy, CURLcode result)
{
    long                              status;
    ngx_uint_t                        u;
    curl_off_t                        retry;
    ngx_http_stockprice_fetch_t      *fetch;
    ngx_http_stockprice_fetch_req_t  *req;

    req = NULL;
    status = 0;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &req);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);

    if (req == NULL || req->easy != easy) {
        ngx_http_stockprice_curl_remove(easy);
        return;
    }

    fetch = req->fetch;

    fetch->traffic.answers[ngx_http_stockprice_render_answer_class(status)]++;

    /*
     * seconds, or an HTTP date made seconds by curl; an hour at most; no
     * more requests of this refresh to the upstream that asked for it
     */

    if ((status == 429 || status == 503)
        && curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry)
           == CURLE_OK
        && retry > 0)
    {
        req->retry = (ngx_msec_t) ngx_min(retry,
                                          NGX_HTTP_STOCKPRICE_RETRY_AFTER_MAX)
                     * 1000;

        if (req->step == NGX_HTTP_STOCKPRICE_AUTH) {
            /* the token every upstream is asked with: all wait */
            fetch->retry_after = ngx_max(fetch->retry_after, req->retry);
            fetch->held = 1;

        } else {
            u = req->upstream;
            fetch->retry[u] = ngx_max(fetch->retry[u], req->retry);
            fetch->held_mask |= (ngx_uint_t) 1 << u;

            if (ngx_http_stockprice_fetch_upstream(fetch, 0)
                == fetch->feed->nupstreams)
            {
                fetch->held = 1;
            }
        }
    }

    /* what the answer's records are, to ask with next time */

    if (req->step == NGX_HTTP_STOCKPRICE_PRICES && result == CURLE_OK
        && status >= 200 && status <= 299)
    {
        ngx_http_stockprice_validator_get(&req->answer, easy,
                                          fetch->feed->parts[req->upstream
                                              * fetch->feed->nparts
                                              + req->part].key);
    }

    ngx_http_stockprice_fetch_release(req);

    req->state = NGX_HTTP_STOCKPRICE_REQ_FREE;
    fetch->sent--;

    if (req->step == NGX_HTTP_STOCKPRICE_AUTH) {
        fetch->authing = 0;

        if (ngx_http_stockprice_fetch_failed(fetch, req, result, status)
            == NGX_OK)
        {
            ngx_http_stockprice_fetch_auth_done(fetch, req);
        }

    } else if (result != CURLE_OK) {
        (void) ngx_http_stockprice_fetch_failed(fetch, req, result, status);

    } else {
        ngx_http_stockprice_fetch_prices_done(fetch, req, status);
    }

    if (fetch->lease) {
        ngx_http_stockprice_fetch_advance(fetch);
    }
}


/*
 * NGX_OK: the request got a 2xx answer; else why not is noted, and for
 * auth no more requests are made in this refresh
 */

static ngx_int_t
ngx_http_stockprice_fetch_failed(ngx_http_stockprice_fetch_t *fetch,
    ngx_http_stockprice_fetch_req_t *req, CURLcode result, long status)
{
    u_char  *what;
    u_char   who[NGX_HTTP_STOCKPRICE_WHO_LEN];

    if (result == CURLE_OK && status >= 200 && status <= 299) {
        return NGX_OK;
    }

    what = ngx_http_stockprice_fetch_who(req, who);

    if (req->step == NGX_HTTP_STOCKPRICE_AUTH) {
        fetch->held = 1;

    } else {
        ngx_http_stockprice_fetch_part_failed(fetch, req);
    }

    if (result != CURLE_OK) {

        if (req->too_large || result == CURLE_FILESIZE_EXCEEDED) {
            ngx_http_stockprice_fetch_why(fetch,
                                     "%s response larger than max_size %uz",
                                     what, fetch->feed->max_size);

        } else if (result == CURLE_OPERATION_TIMEDOUT) {
            ngx_http_stockprice_fetch_why(fetch, "%s timed out after %M ms",
                                          what, fetch->feed->timeout);

        } else {
            ngx_http_stockprice_fetch_why(fetch, "%s request failed: %s",
                                          what, req->error[0]
                                                ? req->error
                                                : curl_easy_strerror(result));
        }

        return NGX_ERROR;
    }

    /* an answer other than 2xx, with its Retry-After */

    if (req->retry) {
        ngx_http_stockprice_fetch_why(fetch, "%s answered %l, retry after "
                                      "%M s", what, status,
                                      req->retry / 1000);

    } else {
        ngx_http_stockprice_fetch_why(fetch, "%s answered %l", what, status);
    }

    return NGX_ERROR;
}


static void
ngx_http_stockprice_fetch_auth_done(ngx_http_stockprice_fetch_t *fetch,
    ngx_http_stockprice_fetch_req_t *req)
{
    int        rc;
    char      *token;
    long       expires_in;
    size_t     len;
    ngx_int_t  set;

    if (fetch->feed->auth_type == NGX_HTTP_STOCKPRICE_AUTH_OAUTH2) {
        rc = ngx_http_stockprice_parse_oauth_token((char *) req->buf,
                                                   req->len, &token, &len,
                                                   &expires_in);

    } else {
        rc = ngx_http_stockprice_parse_token((char *) req->buf, req->len,
                                             &token, &len, &expires_in);
    }

    if (rc != NGX_HTTP_STOCKPRICE_PARSE_OK) {
        fetch->held = 1;
        ngx_http_stockprice_fetch_why(fetch, "auth answer has no valid token");
        return;
    }

    ngx_memcpy(fetch->token, token, len);
    fetch->token_len = len;

    ngx_explicit_memzero(token, len);
    free(token);

    set = ngx_http_stockprice_zone_token_set(fetch->ctx, fetch->lease,
                                             fetch->token, len, expires_in);

    if (set == NGX_DECLINED) {
        ngx_http_stockprice_fetch_lost(fetch);
        return;
    }

    if (set != NGX_OK) {
        fetch->held = 1;
        ngx_http_stockprice_fetch_why(fetch, "auth answer has no valid token");
        return;
    }

    fetch->token_gen++;

    ngx_log_error(NGX_LOG_INFO, fetch->log, 0,
                  "stockprice zone \"%V\": authenticated%s",
                  &fetch->feed->shm_zone->shm.name,
                  expires_in > 0 ? "" : ", token does not expire");
}


static void
ngx_http_stockprice_fetch_prices_done(ngx_http_stockprice_fetch_t *fetch,
    ngx_http_stockprice_fetch_req_t *req, long status)
{
    ngx_http_stockprice_feed_t  *feed;

    feed = fetch->feed;

    /*
     * the token refused: once per refresh authenticate again, and ask
     * again with the new token; so too a request sent with a token that
     * is being or has been replaced
     */

    if (status == 401 && feed->auth_url.len && !fetch->held
        && fetch->nredo < feed->nparts
        && (fetch->auth || req->token != fetch->token_gen || !fetch->retried))
    {
        if (!fetch->auth && req->token == fetch->token_gen) {
            fetch->retried = 1;
            fetch->auth = 1;
            ngx_http_stockprice_zone_token_clear(fetch->ctx, fetch->token,
                                                 fetch->token_len);
        }

        fetch->redo[fetch->nredo++] = req->upstream * feed->nparts
                                      + req->part;
        return;
    }

    /* unchanged since the answer the zone holds: a part done, nothing new */

    if (status == 304 && req->conditional) {
        fetch->ok++;
        fetch->not_modified++;
        fetch->answered = req->upstream + 1;
        return;
    }

    if (ngx_http_stockprice_fetch_failed(fetch, req, CURLE_OK, status)
        != NGX_OK)
    {
        return;
    }

    req->state = NGX_HTTP_STOCKPRICE_REQ_BODY;
}


/* the first upstream from "u" on that has not asked to wait; nupstreams: none */

static ngx_uint_t
ngx_http_stockprice_fetch_upstream(ngx_http_stockprice_fetch_t *fetch,
    ngx_uint_t u)
{
    while (u < fetch->feed->nupstreams
           && (fetch->held_mask & ((ngx_uint_t) 1 << u)))
    {
        u++;
    }

    return u;
}


/*
 * A prices request failed (no answer, not 2xx or 304, a body of no
 * records): the part goes to the next backup= that may be called, within
 * this refresh, or is given up
 */

static void
ngx_http_stockprice_fetch_part_failed(ngx_http_stockprice_fetch_t *fetch,
    ngx_http_stockprice_fetch_req_t *req)
{
    ngx_uint_t  u;

    u = ngx_http_stockprice_fetch_upstream(fetch, req->upstream + 1);

    if (fetch->held || u == fetch->feed->nupstreams) {
        fetch->failed++;
        return;
    }

    fetch->redo[fetch->nredo++] = u * fetch->feed->nparts + req->part;
    fetch->failovers++;
}


/* who answered, in an error line: "auth", "upstream" (the URL), "backup 1" */

static u_char *
ngx_http_stockprice_fetch_who(ngx_http_stockprice_fetch_req_t *req,
    u_char *buf)
{
    u_char  *p;

    if (req->step == NGX_HTTP_STOCKPRICE_AUTH) {
        p = ngx_cpymem(buf, "auth", 4);

    } else if (req->upstream == 0) {
        p = ngx_cpymem(buf, "upstream", 8);

    } else {
        p = ngx_sprintf(buf, "backup %ui", req->upstream);
    }

    *p = '\0';

    return buf;
}


/* the first failure of a refresh, secrets shown as $NAME */

static void
ngx_http_stockprice_fetch_why(ngx_http_stockprice_fetch_t *fetch,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    if (fetch->why_len) {
        return;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(fetch->why, fetch->why + sizeof(fetch->why), fmt, args);
    va_end(args);

    /* curl's reason may quote the URL: $NAME for a secret's value */

    fetch->why_len = ngx_http_stockprice_request_scrub(fetch->feed, fetch->why,
                                                       p - fetch->why,
                                                       sizeof(fetch->why));
}


/*
 * One slice of the work on the prices bodies, then the event loop's turn:
 * the event goes to ngx_posted_next_events, run after the next poll for
 * I/O, which does not wait while it is there.
 */

static void
ngx_http_stockprice_fetch_slice_handler(ngx_event_t *ev)
{
    int                           rc;
    ngx_uint_t                    small;
    ngx_http_stockprice_fetch_t  *fetch;

    fetch = ev->data;

    if (ngx_exiting) {
        /* shutting down: the next workers refresh at once */
        ngx_http_stockprice_fetch_abandon(fetch);
        return;
    }

    /*
     * however long the work takes on a busy worker, the lease stays ours;
     * a worker stopped for longer than the lease finds it lost here
     */

    if (ngx_current_msec - fetch->renewed >= NGX_HTTP_STOCKPRICE_LEASE_POLL) {

        if (ngx_http_stockprice_zone_lease_renew(fetch->ctx, fetch->lease,
                                fetch->feed->timeout
                                + NGX_HTTP_STOCKPRICE_LEASE_SLACK)
            != NGX_OK)
        {
            ngx_http_stockprice_fetch_lost(fetch);
            return;
        }

        fetch->renewed = ngx_current_msec;
    }

    switch (fetch->stage) {

    case NGX_HTTP_STOCKPRICE_PARSING:
        rc = ngx_http_stockprice_parse_step(&fetch->parser,
                                            NGX_HTTP_STOCKPRICE_PARSE_SLICE);

        if (rc == NGX_HTTP_STOCKPRICE_PARSE_AGAIN) {
            break;
        }

        small = (fetch->parser.chunks <= 1);

        ngx_http_stockprice_fetch_parsed(fetch, rc);
        ngx_http_stockprice_fetch_advance(fetch);

        if (fetch->stage != NGX_HTTP_STOCKPRICE_RENDERING || !small) {
            /* advance() posted the next slice, if there is one */
            return;
        }

        /* a small body, parsed in one slice: on in the same turn */

        if (ev->posted) {
            ngx_delete_posted_event(ev);
        }

        /* fall through */

    case NGX_HTTP_STOCKPRICE_RENDERING:
        if (ngx_http_stockprice_fetch_render(fetch) != NGX_OK) {
            break;
        }

        if (ngx_http_stockprice_fetch_store(fetch) != NGX_OK) {
            return;
        }

        /* fall through */

    case NGX_HTTP_STOCKPRICE_STORING:
        rc = ngx_http_stockprice_zone_build_step(&fetch->build);

        if (rc == NGX_AGAIN) {
            break;
        }

        if (rc == NGX_BUSY) {
            ngx_http_stockprice_fetch_compress(fetch);
            break;
        }

        ngx_http_stockprice_fetch_stored(fetch, rc);
        return;

    case NGX_HTTP_STOCKPRICE_COMPRESSING:
        rc = ngx_http_stockprice_gzip_step(&fetch->gzip,
                                           NGX_HTTP_STOCKPRICE_GZIP_SLICE);

        if (rc == NGX_HTTP_STOCKPRICE_GZIP_AGAIN) {
            break;
        }

        if (rc != NGX_HTTP_STOCKPRICE_GZIP_OK) {
            ngx_log_error(NGX_LOG_WARN, fetch->log, 0,
                          "stockprice zone \"%V\": cannot compress the "
                          "list, serving it uncompressed",
                          &fetch->feed->shm_zone->shm.name);
        }

        rc = ngx_http_stockprice_zone_build_publish(&fetch->build,
                 rc == NGX_HTTP_STOCKPRICE_GZIP_OK ? fetch->gzip.out : NULL,
                 fetch->gzip.out_len);

        ngx_http_stockprice_fetch_stored(fetch, rc);
        return;

    default:
        return;
    }

    ngx_post_event(ev, &ngx_posted_next_events);
}


/* the parser on the body in "req", the records of earlier ones kept */

static void
ngx_http_stockprice_fetch_body(ngx_http_stockprice_fetch_t *fetch,
    ngx_http_stockprice_fetch_req_t *req)
{
    ngx_http_stockprice_feed_t  *feed;
    ngx_http_stockprice_part_t  *part;

    feed = fetch->feed;
    part = &feed->parts[req->upstream * feed->nparts + req->part];

    if (fetch->parsing) {
        ngx_http_stockprice_parse_next(&fetch->parser, (char *) req->buf,
                                       req->len, (char *) part->symbol.data,
                                       part->symbol.len);

    } else {
        ngx_http_stockprice_parse_start(&fetch->parser, (char *) req->buf,
                                        req->len, &feed->shape,
                                        (char *) part->symbol.data,
                                        part->symbol.len, feed->filter,
                                        feed->nfilter);
        fetch->parsing = 1;
    }

    fetch->body = req;
    fetch->stage = NGX_HTTP_STOCKPRICE_PARSING;
}


/* a body parsed: its part applied, or failed and its records undone */

static void
ngx_http_stockprice_fetch_parsed(ngx_http_stockprice_fetch_t *fetch, int rc)
{
    u_char                             *what;
    size_t                              kept, skipped;
    ngx_str_t                          *records;
    ngx_http_stockprice_fetch_req_t    *req;
    ngx_http_stockprice_parse_stats_t  *st, *mark;
    u_char                              who[NGX_HTTP_STOCKPRICE_WHO_LEN];

    st = &fetch->parser.stats;
    mark = &fetch->parser.mark_stats;
    records = &fetch->feed->records;
    req = fetch->body;

    req->state = NGX_HTTP_STOCKPRICE_REQ_FREE;
    fetch->body = NULL;
    fetch->stage = NGX_HTTP_STOCKPRICE_IDLE;

    kept = fetch->parser.n - fetch->parser.mark;
    skipped = st->bad_symbol + st->bad_price + st->not_object
              - mark->bad_symbol - mark->bad_price - mark->not_object;

    if (rc == NGX_HTTP_STOCKPRICE_PARSE_OK && (kept || skipped == 0)) {
        fetch->ok++;
        fetch->answered = req->upstream + 1;

        /* once applied, asked for with what this answer said */

        if (req->part < NGX_HTTP_STOCKPRICE_VALIDATORS) {
            fetch->validators[req->part] = req->answer;
            fetch->fresh |= (uint32_t) 1 << req->part;
        }

        return;
    }

    ngx_http_stockprice_fetch_part_failed(fetch, req);

    what = ngx_http_stockprice_fetch_who(req, who);

    switch (rc) {

    case NGX_HTTP_STOCKPRICE_PARSE_OK:
        /* a provider's note in place of its records, as a rule */
        ngx_http_stockprice_fetch_why(fetch, "no valid record in %s "
                                      "response, %uz skipped (%uz bad "
                                      "symbol, %uz bad price, %uz not an "
                                      "object)", what, skipped,
                                      st->bad_symbol - mark->bad_symbol,
                                      st->bad_price - mark->bad_price,
                                      st->not_object - mark->not_object);
        break;

    case NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON:
        ngx_http_stockprice_fetch_why(fetch, "%s response is not valid JSON",
                                      what);
        break;

    case NGX_HTTP_STOCKPRICE_PARSE_NOT_FOUND:
        ngx_http_stockprice_fetch_why(fetch, "%s response has nothing at "
                                      "\"records=%V\"", what, records);
        break;

    case NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY:
        if (records->len) {
            ngx_http_stockprice_fetch_why(fetch, "%s response has no "
                                          "array or object at "
                                          "\"records=%V\"", what, records);

        } else {
            ngx_http_stockprice_fetch_why(fetch, "%s response is not a JSON "
                                          "array or object", what);
        }

        break;

    default:
        ngx_http_stockprice_fetch_why(fetch, "cannot parse %s response",
                                      what);
        break;
    }

    ngx_http_stockprice_parse_undo(&fetch->parser);
}


/*
 * Every part requested, answered and parsed (or given up): the records
 * of those that succeeded to render and store, unless none did
 */

static void
ngx_http_stockprice_fetch_complete(ngx_http_stockprice_fetch_t *fetch)
{
    size_t                         n;
    ngx_str_t                      error;
    ngx_http_stockprice_record_t  *recs;

    /* parts never asked for, after a Retry-After or a failed auth */

    fetch->failed += fetch->nredo + (fetch->feed->nparts - fetch->next);
    fetch->nredo = 0;
    fetch->next = fetch->feed->nparts;

    if (fetch->ok == 0) {
        error.data = fetch->why;
        error.len = fetch->why_len;

        if (error.len == 0) {
            ngx_str_set(&error, "no request succeeded");
        }

        ngx_http_stockprice_fetch_finish(fetch, &error);
        return;
    }

    /* every part applied answered 304: the zone's records stand */

    if (!fetch->parsing) {
        ngx_memzero(&fetch->parser.stats,
                    sizeof(ngx_http_stockprice_parse_stats_t));
        ngx_http_stockprice_fetch_finish(fetch, NULL);
        return;
    }

    if (ngx_http_stockprice_parse_done(&fetch->parser, &recs, &n)
        != NGX_HTTP_STOCKPRICE_PARSE_OK)
    {
        ngx_http_stockprice_fetch_fail(fetch, "cannot store records");
        return;
    }

    if (n == 0) {
        ngx_http_stockprice_fetch_finish(fetch, NULL);
        return;
    }

    if (ngx_http_stockprice_fetch_batch_init(fetch, recs, n) != NGX_OK) {
        free(recs);
        ngx_http_stockprice_fetch_fail(fetch, "cannot store records");
        return;
    }

    fetch->stage = NGX_HTTP_STOCKPRICE_RENDERING;

    ngx_post_event(&fetch->slice, &ngx_posted_next_events);
}


static ngx_int_t
ngx_http_stockprice_fetch_batch_init(ngx_http_stockprice_fetch_t *fetch,
    ngx_http_stockprice_record_t *recs, ngx_uint_t n)
{
    ngx_http_stockprice_batch_t  *batch;

    batch = &fetch->batch;

    ngx_memzero(batch, sizeof(ngx_http_stockprice_batch_t));

    batch->recs = recs;
    batch->n = n;
    batch->last_modified = fetch->start.tv_sec;

    fetch->rendered = 0;
    fetch->mtime_len = ngx_http_stockprice_render_time(fetch->mtime,
                                            (int64_t) fetch->start.tv_sec,
                                            (long) fetch->start.tv_usec);

    /* untouched pages of the worst case cost no memory */

    batch->text = ngx_alloc(n * NGX_HTTP_STOCKPRICE_RECORD_MAX + 1,
                            fetch->log);
    if (batch->text == NULL) {
        return NGX_ERROR;
    }

    batch->lens = ngx_alloc(n * sizeof(uint32_t) + 1, fetch->log);
    if (batch->lens == NULL) {
        ngx_free(batch->text);
        batch->text = NULL;
        return NGX_ERROR;
    }

    fetch->last = batch->text;

    return NGX_OK;
}


/* renders a slice more of the records; NGX_OK: all are, NGX_AGAIN: not yet */

static ngx_int_t
ngx_http_stockprice_fetch_render(ngx_http_stockprice_fetch_t *fetch)
{
    size_t                         len;
    ngx_uint_t                     end;
    ngx_http_stockprice_batch_t   *batch;
    ngx_http_stockprice_record_t  *rec;

    batch = &fetch->batch;
    end = ngx_min(batch->n, fetch->rendered + NGX_HTTP_STOCKPRICE_RENDER_SLICE);

    for ( /* void */ ; fetch->rendered < end; fetch->rendered++) {
        rec = &batch->recs[fetch->rendered];

        if (!rec->has_id) {
            ngx_http_stockprice_fetch_uuid(rec->id);
            rec->has_id = 1;
        }

        len = ngx_http_stockprice_render_record((char *) fetch->last, rec,
                                                fetch->mtime,
                                                fetch->mtime_len);

        if (len > NGX_HTTP_STOCKPRICE_RECORD_LONGEST) {
            /* the zone size rule would not hold */
            ngx_log_error(NGX_LOG_ALERT, fetch->log, 0,
                          "stockprice zone \"%V\": a record of %uz bytes",
                          &fetch->feed->shm_zone->shm.name, len);
        }

        batch->lens[fetch->rendered] = (uint32_t) len;
        fetch->last += len;
    }

    return fetch->rendered == batch->n ? NGX_OK : NGX_AGAIN;
}


/*
 * A version 4 UUID from splitmix64, seeded in each worker from nginx's own
 * random() (seeded per worker): two steps per id, where eight random()
 * calls, each taking glibc's lock, cost a large refresh some 0.5 ms.
 */

static void
ngx_http_stockprice_fetch_uuid(char *buf)
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

    ngx_http_stockprice_render_uuid(buf, (unsigned char *) rnd);
}


/*
 * gzip=on: the new list, whole in the zone's half not served yet, is
 * compressed in slices like the rest of the work, then published with it
 */

static void
ngx_http_stockprice_fetch_compress(ngx_http_stockprice_fetch_t *fetch)
{
    ngx_http_stockprice_snap_t  *snap;

    snap = fetch->build.snap;
    fetch->stage = NGX_HTTP_STOCKPRICE_COMPRESSING;

    (void) ngx_http_stockprice_gzip_start(&fetch->gzip, snap->list,
                                          snap->list_len,
                                          NGX_HTTP_STOCKPRICE_GZIP_LEVEL);

    /* a failed start is told by the first step */
}


/* the batch rendered in full: to the store, in steps */

static ngx_int_t
ngx_http_stockprice_fetch_store(ngx_http_stockprice_fetch_t *fetch)
{
    ngx_int_t  rc;

    rc = ngx_http_stockprice_zone_build_start(&fetch->build, fetch->ctx,
                                              fetch->lease, &fetch->batch,
                                              fetch->log);
    if (rc != NGX_OK) {
        ngx_http_stockprice_fetch_stored(fetch, rc);
        return NGX_ERROR;
    }

    fetch->stage = NGX_HTTP_STOCKPRICE_STORING;

    return NGX_OK;
}


static void
ngx_http_stockprice_fetch_stored(ngx_http_stockprice_fetch_t *fetch,
    ngx_int_t rc)
{
    size_t      needed;
    ngx_uint_t  n, dropped, pruning;

    n = fetch->build.nsymbols;
    needed = fetch->build.needed;
    dropped = fetch->build.dropped;
    pruning = fetch->pruning;

    ngx_http_stockprice_fetch_work_free(fetch);

    if (rc == NGX_OK) {
        /* published: this worker's streams, and the others' */
        ngx_http_stockprice_stream_wake(fetch->ctx);
        ngx_http_stockprice_notify_others();
    }

    switch (rc) {

    case NGX_OK:
    case NGX_DONE:
        if (!pruning) {
            ngx_http_stockprice_fetch_finish(fetch, NULL);
            return;
        }

        if (dropped) {
            ngx_log_error(NGX_LOG_NOTICE, fetch->log, 0,
                          "stockprice zone \"%V\": %ui symbols no longer in "
                          "\"symbols=\" removed",
                          &fetch->feed->shm_zone->shm.name, dropped);
        }

        /* not a refresh: the schedule and the counters stay as they are */
        ngx_http_stockprice_zone_lease_drop(fetch->ctx, fetch->lease);
        fetch->lease = 0;
        ngx_http_stockprice_persist_kick(fetch->ctx);
        ngx_http_stockprice_fetch_arm(fetch, 1);
        return;

    case NGX_ABORT:
        ngx_http_stockprice_fetch_lost(fetch);
        return;

    case NGX_DECLINED:
        ngx_http_stockprice_fetch_fail(fetch, "zone is too small for %ui "
                                       "symbols, %uz bytes needed",
                                       n, needed);
        return;

    default:
        ngx_http_stockprice_fetch_fail(fetch, "cannot store records");
        return;
    }
}


/* whatever the work on a body holds */

static void
ngx_http_stockprice_fetch_work_free(ngx_http_stockprice_fetch_t *fetch)
{
    if (fetch->slice.posted) {
        ngx_delete_posted_event(&fetch->slice);
    }

    if (fetch->parsing) {
        ngx_http_stockprice_parse_abort(&fetch->parser);
        fetch->parsing = 0;
    }

    if (fetch->body) {
        fetch->body->state = NGX_HTTP_STOCKPRICE_REQ_FREE;
        fetch->body = NULL;
    }

    ngx_http_stockprice_zone_build_free(&fetch->build);
    ngx_http_stockprice_gzip_free(&fetch->gzip);

    if (fetch->batch.text) {
        ngx_free(fetch->batch.text);
    }

    if (fetch->batch.lens) {
        ngx_free(fetch->batch.lens);
    }

    /* the records came from the parser's malloc() */
    free(fetch->batch.recs);

    ngx_memzero(&fetch->batch, sizeof(ngx_http_stockprice_batch_t));

    fetch->stage = NGX_HTTP_STOCKPRICE_IDLE;
    fetch->pruning = 0;
}


static void
ngx_http_stockprice_fetch_fail(ngx_http_stockprice_fetch_t *fetch,
    const char *fmt, ...)
{
    u_char     *p;
    va_list     args;
    ngx_str_t   error;
    u_char      buf[NGX_HTTP_STOCKPRICE_ERROR_LEN];

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    /* curl's reason may quote the URL: $NAME for a secret's value */

    error.data = buf;
    error.len = ngx_http_stockprice_request_scrub(fetch->feed, buf, p - buf,
                                                  sizeof(buf));

    ngx_http_stockprice_fetch_finish(fetch, &error);
}


/* the refresh ended ("error" NULL: it succeeded), if the lease is ours */

static void
ngx_http_stockprice_fetch_finish(ngx_http_stockprice_fetch_t *fetch,
    ngx_str_t *error)
{
    int64_t                              us;
    ngx_uint_t                           skipped, replaced, nsymbols;
    ngx_msec_t                           delay;
    struct timeval                       now;
    ngx_http_stockprice_parse_stats_t   *stats;
    ngx_http_stockprice_zone_outcome_t   outcome;

    stats = &fetch->parser.stats;

    if (error) {
        skipped = 0;
        replaced = 0;

    } else {
        skipped = stats->bad_symbol + stats->bad_price + stats->not_object;
        replaced = stats->bad_time;
    }

    outcome.error = error;
    outcome.partial = (error == NULL && fetch->failed);
    outcome.skipped = skipped;
    outcome.replaced = replaced;
    outcome.retry_after = fetch->retry_after;
    outcome.retry = fetch->retry;
    outcome.answered = fetch->answered;

    ngx_gettimeofday(&now);

    us = ((int64_t) now.tv_sec - fetch->start.tv_sec) * 1000000
         + (now.tv_usec - fetch->start.tv_usec);

    outcome.duration_us = (us > 0) ? (uint64_t) us : 0;
    outcome.traffic = &fetch->traffic;
    outcome.fresh = error ? 0 : fetch->fresh;
    outcome.validators = fetch->validators;

    fetch->retry_after = 0;

    if (ngx_http_stockprice_zone_refresh_done(fetch->ctx, fetch->lease,
                                              &outcome, &delay, &nsymbols)
        != NGX_OK)
    {
        ngx_http_stockprice_fetch_lost(fetch);
        return;
    }

    fetch->lease = 0;
    ngx_http_stockprice_fetch_reset(fetch);

    if (error == NULL) {
        ngx_http_stockprice_persist_kick(fetch->ctx);
    }

    if (error) {
        ngx_log_error(NGX_LOG_ERR, fetch->log, 0,
                      "stockprice zone \"%V\": %V, keeping %ui symbols",
                      &fetch->feed->shm_zone->shm.name, error, nsymbols);

    } else if (outcome.partial) {
        ngx_log_error(NGX_LOG_WARN, fetch->log, 0,
                      "stockprice zone \"%V\": %ui of %ui requests failed "
                      "(%*s), the others applied",
                      &fetch->feed->shm_zone->shm.name, fetch->failed,
                      fetch->failed + fetch->ok, fetch->why_len, fetch->why);

    } else if (fetch->failovers) {
        ngx_log_error(NGX_LOG_WARN, fetch->log, 0,
                      "stockprice zone \"%V\": %ui of %ui requests asked a "
                      "backup (%*s), all applied",
                      &fetch->feed->shm_zone->shm.name, fetch->failovers,
                      fetch->ok, fetch->why_len, fetch->why);
    }

    if (error == NULL && (skipped || replaced)) {
        ngx_log_error(NGX_LOG_WARN, fetch->log, 0,
                      "stockprice zone \"%V\": skipped %uz of %uz records "
                      "(%uz bad symbol, %uz bad price, %uz not an object), "
                      "%uz value times not valid (measurement time used)",
                      &fetch->feed->shm_zone->shm.name, skipped,
                      stats->total, stats->bad_symbol, stats->bad_price,
                      stats->not_object, replaced);
    }

    ngx_http_stockprice_fetch_arm(fetch, delay);
}


/*
 * Another worker took the lease while this one was stopped (a debugger, a
 * frozen cgroup, a paused machine): whatever it fetched is older than
 * what the zone may hold by now, and is dropped untold.
 */

static void
ngx_http_stockprice_fetch_lost(ngx_http_stockprice_fetch_t *fetch)
{
    fetch->lease = 0;
    ngx_http_stockprice_fetch_reset(fetch);

    ngx_log_error(NGX_LOG_NOTICE, fetch->log, 0,
                  "stockprice zone \"%V\": lost the refresh lease to another "
                  "process, dropping this refresh",
                  &fetch->feed->shm_zone->shm.name);

    ngx_http_stockprice_fetch_arm(fetch, NGX_HTTP_STOCKPRICE_LEASE_POLL);
}


/* back to idle: no request, no work, no large body kept for an interval */

static void
ngx_http_stockprice_fetch_reset(ngx_http_stockprice_fetch_t *fetch)
{
    ngx_uint_t                        k;
    ngx_http_stockprice_fetch_req_t  *req;

    ngx_http_stockprice_fetch_work_free(fetch);

    for (k = 0; k < fetch->nreqs; k++) {
        req = &fetch->reqs[k];

        ngx_http_stockprice_fetch_release(req);
        req->state = NGX_HTTP_STOCKPRICE_REQ_FREE;
        req->len = 0;

        if (req->size > NGX_HTTP_STOCKPRICE_BUF_MIN * 4) {
            ngx_free(req->buf);
            req->buf = NULL;
            req->size = 0;
        }
    }

    fetch->sent = 0;
    fetch->nredo = 0;
    fetch->auth = 0;
    fetch->authing = 0;
}


static void
ngx_http_stockprice_fetch_arm(ngx_http_stockprice_fetch_t *fetch,
    ngx_msec_t delay)
{
    if (ngx_exiting) {
        return;
    }

    if (fetch->timer.timer_set) {
        ngx_del_timer(&fetch->timer);
    }

    ngx_add_timer(&fetch->timer, delay);
}
