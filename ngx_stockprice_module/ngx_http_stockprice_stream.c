
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <ngx_http_stockprice_module.h>
#include <ngx_http_stockprice_zone.h>
#include <ngx_http_stockprice_stream.h>


/* events queued for a stream beyond the one being sent */
#define NGX_HTTP_STOCKPRICE_STREAM_QUEUE   16

/* events one fan-out shares between streams of the same view */
#define NGX_HTTP_STOCKPRICE_STREAM_SHARED  64

/* a slice of a fan-out: so many streams, or so many bytes queued */
#define NGX_HTTP_STOCKPRICE_STREAM_SLICE_STREAMS  512
#define NGX_HTTP_STOCKPRICE_STREAM_SLICE_BYTES    (8 * 1024 * 1024)

#define NGX_HTTP_STOCKPRICE_STREAM_PREFIX                                     \
    (sizeof("event: prices\nid: \ndata: ") - 1 + NGX_HTTP_STOCKPRICE_ETAG_LEN)


/*
 * An event's bytes, shared by the streams it is queued for: freed with
 * the last of them ("refs" 0 and never for the static heartbeat)
 */

typedef struct {
    ngx_uint_t                      refs;
    ngx_uint_t                      fixed;      /* static: never freed */
    uint64_t                        generation;
    u_char                         *pos;
    u_char                         *last;
} ngx_http_stockprice_stream_event_t;


/* an event one fan-out made, for the streams of the same view */

typedef struct {
    uint64_t                        since;
    uint32_t                        key;
    ngx_str_t                       args;
    uint64_t                        generation; /* of what it holds */
    ngx_http_stockprice_stream_event_t  *event;  /* NULL: nothing new */
} ngx_http_stockprice_stream_shared_t;


/* this worker's streams of one zone */

typedef struct {
    ngx_http_stockprice_ctx_t      *ctx;
    ngx_queue_t                     streams;
    ngx_uint_t                      n;
    ngx_uint_t                      reported;   /* n as the zone has it */
    ngx_msec_t                      report_time;
    uint64_t                        generation; /* of the last fan-out */
    ngx_msec_t                      swept;      /* for heartbeats */
    ngx_event_t                     poll;
    ngx_event_t                     slice;      /* the fan-out goes on */
    ngx_log_t                      *log;

    /* the fan-out under way: to "generation", streams not there first */
    size_t                          bound;
    ngx_uint_t                      left;       /* at most to look at */
    ngx_uint_t                      nshared;
    ngx_http_stockprice_stream_shared_t  shared[
                                        NGX_HTTP_STOCKPRICE_STREAM_SHARED];
} ngx_http_stockprice_streams_t;


typedef struct {
    ngx_queue_t                     queue;
    ngx_http_request_t             *r;
    ngx_http_stockprice_streams_t  *all;
    ngx_http_stockprice_zone_view_t view;       /* its filter, its since */
    ngx_str_t                       args;       /* symbols= as given */
    uint32_t                        key;        /* of args */
    ngx_msec_t                      last;       /* something sent */
    ngx_uint_t                      head;
    ngx_uint_t                      nqueued;
    size_t                          queued;     /* bytes */
    ngx_http_stockprice_stream_event_t  *events[
                                        NGX_HTTP_STOCKPRICE_STREAM_QUEUE];
    ngx_http_stockprice_stream_event_t  *sending;
    ngx_chain_t                    *free;
    ngx_chain_t                    *busy;
    unsigned                        listed:1;
    unsigned                        starting:1; /* in the handler still */
    unsigned                        error:1;
} ngx_http_stockprice_stream_t;


static ngx_http_stockprice_streams_t *ngx_http_stockprice_stream_all(
    ngx_http_stockprice_ctx_t *ctx, ngx_log_t *log);
static ngx_int_t ngx_http_stockprice_stream_accepts(ngx_str_t *value);
static void ngx_http_stockprice_stream_check(
    ngx_http_stockprice_streams_t *all);
static ngx_table_elt_t *ngx_http_stockprice_stream_header(
    ngx_http_request_t *r, const char *name, size_t len,
    ngx_table_elt_t *after);
static ngx_int_t ngx_http_stockprice_stream_headers(ngx_http_request_t *r);
static ngx_int_t ngx_http_stockprice_stream_first(
    ngx_http_stockprice_stream_t *s, ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_stream_event_t **ev);
static ngx_http_stockprice_stream_event_t *ngx_http_stockprice_stream_event(
    ngx_http_stockprice_ctx_t *ctx, ngx_http_stockprice_zone_view_t *view,
    ngx_log_t *log);
static void ngx_http_stockprice_stream_release(
    ngx_http_stockprice_stream_event_t *ev);
static void ngx_http_stockprice_stream_poll(ngx_event_t *ev);
static void ngx_http_stockprice_stream_fan_out(
    ngx_http_stockprice_streams_t *all);
static void ngx_http_stockprice_stream_slice(ngx_event_t *ev);
static void ngx_http_stockprice_stream_fan_out_end(
    ngx_http_stockprice_streams_t *all);
static ngx_http_stockprice_stream_shared_t *
    ngx_http_stockprice_stream_shared(ngx_http_stockprice_stream_t *s,
    ngx_http_stockprice_stream_shared_t *shared, ngx_uint_t *nshared);
static void ngx_http_stockprice_stream_heartbeat(
    ngx_http_stockprice_streams_t *all);
static void ngx_http_stockprice_stream_report(
    ngx_http_stockprice_streams_t *all, ngx_uint_t force);
static ngx_int_t ngx_http_stockprice_stream_queue(
    ngx_http_stockprice_stream_t *s, ngx_http_stockprice_stream_event_t *ev,
    size_t bound);
static ngx_int_t ngx_http_stockprice_stream_push(
    ngx_http_stockprice_stream_t *s);
static ngx_int_t ngx_http_stockprice_stream_sent(
    ngx_http_stockprice_stream_t *s, ngx_int_t rc);
static void ngx_http_stockprice_stream_write_handler(ngx_http_request_t *r);
static void ngx_http_stockprice_stream_close(ngx_http_stockprice_stream_t *s,
    const char *why);
static void ngx_http_stockprice_stream_cleanup(void *data);


static u_char  ngx_http_stockprice_stream_comment[] = ": heartbeat\n\n";

static ngx_http_stockprice_stream_event_t  ngx_http_stockprice_stream_ping = {
    0, 1, 0, ngx_http_stockprice_stream_comment,
    ngx_http_stockprice_stream_comment
    + sizeof(ngx_http_stockprice_stream_comment) - 1
};

static ngx_str_t  ngx_http_stockprice_stream_type =
    ngx_string("text/event-stream");


/*
 * A GET whose Accept lists text/event-stream (not with q=0), as a
 * browser's EventSource sends it
 */

ngx_int_t
ngx_http_stockprice_stream_wanted(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    if (r->method != NGX_HTTP_GET) {
        return 0;
    }

    /* every Accept: a client may send several */

    for (h = ngx_http_stockprice_stream_header(r, "Accept",
                                               sizeof("Accept") - 1, NULL);
         h;
         h = ngx_http_stockprice_stream_header(r, "Accept",
                                               sizeof("Accept") - 1, h))
    {
        if (ngx_http_stockprice_stream_accepts(&h->value)) {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_stockprice_stream_accepts(ngx_str_t *value)
{
    u_char  *p, *last, *end, *semi, *q;

    p = value->data;
    last = p + value->len;

    while (p < last) {
        end = ngx_strlchr(p, last, ',');
        if (end == NULL) {
            end = last;
        }

        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        semi = ngx_strlchr(p, end, ';');
        q = semi ? semi : end;

        while (q > p && (q[-1] == ' ' || q[-1] == '\t')) {
            q--;
        }

        if (q - p == sizeof("text/event-stream") - 1
            && ngx_strncasecmp(p, (u_char *) "text/event-stream",
                               sizeof("text/event-stream") - 1) == 0)
        {
            /* "q=0", "q=0.0": not acceptable */

            for (q = semi; q && q + 3 <= end; q++) {
                if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
                    for (q += 2; q < end && (*q == '0' || *q == '.'); q++) {
                        /* void */
                    }

                    return q < end && *q >= '1' && *q <= '9';
                }
            }

            return 1;
        }

        p = end + 1;
    }

    return 0;
}


/*
 * The stream: its headers now, the current list unless Last-Event-ID
 * names it, then the events of the refreshes as this worker sees them.
 * The request lives on (NGX_DONE) until the client goes, it is too slow,
 * or the worker quits.
 */

ngx_int_t
ngx_http_stockprice_stream_start(ngx_http_request_t *r,
    ngx_http_stockprice_ctx_t *ctx, ngx_http_stockprice_zone_view_t *view)
{
    ngx_int_t                            rc;
    ngx_pool_cleanup_t                  *cln;
    ngx_http_stockprice_stream_t        *s;
    ngx_http_stockprice_streams_t       *all;
    ngx_http_stockprice_stream_event_t  *ev;

    all = ngx_http_stockprice_stream_all(ctx, r->connection->log);
    if (all == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s = ngx_pcalloc(r->pool, sizeof(ngx_http_stockprice_stream_t));
    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_stockprice_stream_cleanup;
    cln->data = s;

    s->r = r;
    s->all = all;
    s->view = *view;
    s->last = ngx_current_msec;

    if (view->filter
        && ngx_http_arg(r, (u_char *) "symbols", sizeof("symbols") - 1,
                        &s->args)
           == NGX_OK)
    {
        s->key = ngx_crc32_short(s->args.data, s->args.len);
    }

    rc = ngx_http_stockprice_stream_headers(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    if (ngx_http_stockprice_stream_first(s, ctx, &ev) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_queue_insert_tail(&all->streams, &s->queue);
    s->listed = 1;
    all->n++;

    ngx_http_set_ctx(r, s, ngx_http_stockprice_module);

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_stockprice_stream_write_handler;

    /* closed at a graceful shutdown by ngx_close_idle_connections() too */

#if (NGX_HTTP_V2)
    if (r->stream == NULL)
#endif
    {
        r->connection->idle = 1;
    }

    if (!all->poll.timer_set) {
        ngx_add_timer(&all->poll, NGX_HTTP_STOCKPRICE_STREAM_POLL);
    }

    ngx_http_stockprice_stream_report(all, 0);

    /* an error now is the handler's to return: the request is not closed */

    s->starting = 1;

    if (ev) {
        if (ngx_http_stockprice_stream_queue(s, ev, (size_t) -1) == NGX_OK) {
            (void) ngx_http_stockprice_stream_push(s);
        }

    } else {
        (void) ngx_http_stockprice_stream_sent(s,
                                  ngx_http_send_special(r, NGX_HTTP_FLUSH));
    }

    s->starting = 0;

    if (s->error) {
        return NGX_ERROR;
    }

    r->main->count++;

    return NGX_DONE;
}



/*
 * The stream's first event (*ev): the current list, unless Last-Event-ID
 * names the current data (*ev NULL: nothing to send yet)
 */

static ngx_int_t
ngx_http_stockprice_stream_first(ngx_http_stockprice_stream_t *s,
    ngx_http_stockprice_ctx_t *ctx, ngx_http_stockprice_stream_event_t **ev)
{
    ngx_table_elt_t  *h;

    *ev = NULL;

    h = ngx_http_stockprice_stream_header(s->r, "Last-Event-ID",
                                          sizeof("Last-Event-ID") - 1, NULL);

    (void) ngx_http_stockprice_zone_read(ctx, &s->view, NULL, 0);

    if (h && h->value.len == s->view.etag_len
        && ngx_strncmp(h->value.data, s->view.etag, h->value.len) == 0)
    {
        s->view.since = s->view.generation;
        return NGX_OK;
    }

    s->view.since = 0;

    *ev = ngx_http_stockprice_stream_event(ctx, &s->view,
                                           s->r->connection->log);
    if (*ev == NULL) {
        return NGX_ERROR;
    }

    s->view.since = (*ev)->generation;

    return NGX_OK;
}


static ngx_http_stockprice_streams_t *
ngx_http_stockprice_stream_all(ngx_http_stockprice_ctx_t *ctx, ngx_log_t *log)
{
    ngx_http_stockprice_streams_t  *all;

    if (ctx->streams) {
        return ctx->streams;
    }

    all = ngx_pcalloc(ngx_cycle->pool, sizeof(ngx_http_stockprice_streams_t));
    if (all == NULL) {
        return NULL;
    }

    all->ctx = ctx;
    all->log = ngx_cycle->log;
    all->generation = ngx_http_stockprice_zone_generation(ctx);
    ngx_queue_init(&all->streams);

    all->poll.handler = ngx_http_stockprice_stream_poll;
    all->poll.data = all;
    all->poll.log = ngx_cycle->log;
    all->poll.cancelable = 1;

    all->slice.handler = ngx_http_stockprice_stream_slice;
    all->slice.data = all;
    all->slice.log = ngx_cycle->log;

    ctx->streams = all;

    return all;
}


/* the first request header "name" after "after" (NULL: the first of all) */

static ngx_table_elt_t *
ngx_http_stockprice_stream_header(ngx_http_request_t *r, const char *name,
    size_t len, ngx_table_elt_t *after)
{
    ngx_uint_t        i, past;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;
    past = (after == NULL);

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (!past) {
            past = (&h[i] == after);
            continue;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/* 200 text/event-stream, no-cache, no length: chunked, never compressed */

static ngx_int_t
ngx_http_stockprice_stream_headers(ngx_http_request_t *r)
{
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = ngx_http_stockprice_stream_type;
    r->headers_out.content_type_len = ngx_http_stockprice_stream_type.len;
    r->headers_out.content_length_n = -1;
    r->headers_out.last_modified_time = -1;

    if (ngx_http_stockprice_handler_no_cache(r) != NGX_OK) {
        return NGX_ERROR;
    }

    /* each event flushed: gzip's buffering would hold them back */

    r->gzip_tested = 1;
    r->gzip_ok = 0;

    return ngx_http_send_header(r);
}


/*
 * The event of a view: "since" 0, all of it; else the records of the
 * symbols updated after that generation.  A list of none after "since"
 * is an event that sends nothing (pos == last).  Sized under the mutex,
 * allocated outside it, copied under it again.
 */

static ngx_http_stockprice_stream_event_t *
ngx_http_stockprice_stream_event(ngx_http_stockprice_ctx_t *ctx,
    ngx_http_stockprice_zone_view_t *view, ngx_log_t *log)
{
    u_char                              *p, *data;
    ngx_uint_t                           i;
    ngx_http_stockprice_stream_event_t  *ev;

    (void) ngx_http_stockprice_zone_read(ctx, view, NULL, 0);

    for (i = 0; i < 4; i++) {

        ev = ngx_alloc(sizeof(ngx_http_stockprice_stream_event_t)
                       + NGX_HTTP_STOCKPRICE_STREAM_PREFIX + view->len
                       + sizeof("\n\n") - 1, log);
        if (ev == NULL) {
            return NULL;
        }

        ev->refs = 0;
        ev->fixed = 0;

        data = (u_char *) (ev + 1) + NGX_HTTP_STOCKPRICE_STREAM_PREFIX;

        (void) ngx_http_stockprice_zone_read(ctx, view, data, view->len);

        if (view->last == NULL) {
            /* grown in between: again with the new size */
            ngx_free(ev);
            continue;
        }

        ev->generation = view->generation;

        if (view->since && view->last - data == 2) {
            /* "[]": nothing new in this view */
            ev->pos = data;
            ev->last = data;
            return ev;
        }

        /* the prefix ends where the list begins */

        p = data - (sizeof("event: prices\nid: \ndata: ") - 1)
            - view->etag_len;

        ev->pos = p;

        p = ngx_cpymem(p, "event: prices\nid: ", sizeof("event: prices\nid: ")
                                                 - 1);
        p = ngx_cpymem(p, view->etag, view->etag_len);
        (void) ngx_cpymem(p, "\ndata: ", sizeof("\ndata: ") - 1);

        p = ngx_cpymem(view->last, "\n\n", sizeof("\n\n") - 1);
        ev->last = p;

        return ev;
    }

    return NULL;
}


static void
ngx_http_stockprice_stream_release(ngx_http_stockprice_stream_event_t *ev)
{
    if (!ev->fixed && --ev->refs == 0) {
        ngx_free(ev);
    }
}


/*
 * Every 25 ms while this worker has streams of the zone: a publish by
 * any worker is seen by its generation, read without the mutex
 */

static void
ngx_http_stockprice_stream_poll(ngx_event_t *ev)
{
    ngx_http_stockprice_streams_t  *all = ev->data;

    if (ngx_exiting) {
        return;
    }

    ngx_http_stockprice_stream_check(all);

    if (ngx_current_msec - all->swept >= 1000) {
        all->swept = ngx_current_msec;
        ngx_http_stockprice_stream_heartbeat(all);
    }

    /* the last stream gone: the count said, no more polls */

    ngx_http_stockprice_stream_report(all, all->n == 0);

    if (all->n) {
        ngx_add_timer(ev, NGX_HTTP_STOCKPRICE_STREAM_POLL);
    }
}


/* a publish, as another worker or this one says */

void
ngx_http_stockprice_stream_wake(ngx_http_stockprice_ctx_t *ctx)
{
    if (ctx->streams && !ngx_exiting) {
        ngx_http_stockprice_stream_check(ctx->streams);
    }
}


/* a generation the streams have not had yet: the fan-out, unless under way */

static void
ngx_http_stockprice_stream_check(ngx_http_stockprice_streams_t *all)
{
    if (all->n
        && !all->slice.posted
        && ngx_http_stockprice_zone_generation(all->ctx) != all->generation)
    {
        ngx_http_stockprice_stream_fan_out(all);
    }
}


/*
 * A new generation to every stream: the streams of one view (its since,
 * its symbols=) share one event, made once.  In slices, each followed by
 * a turn of the event loop: a stream looked at goes to the tail, so that
 * the head is always the next one; as many as there were at the start.
 */

static void
ngx_http_stockprice_stream_fan_out(ngx_http_stockprice_streams_t *all)
{
    ngx_http_stockprice_zone_view_t  list;

    /* how far behind a stream may fall: twice the list, 1 MiB at least */

    ngx_memzero(&list, sizeof(ngx_http_stockprice_zone_view_t));
    (void) ngx_http_stockprice_zone_read(all->ctx, &list, NULL, 0);

    all->bound = ngx_max(NGX_HTTP_STOCKPRICE_STREAM_BOUND, 2 * list.len);
    all->generation = list.generation;
    all->left = all->n;
    all->nshared = 0;

    ngx_http_stockprice_stream_slice(&all->slice);
}


static void
ngx_http_stockprice_stream_slice(ngx_event_t *ev)
{
    size_t                                bytes;
    ngx_uint_t                            n;
    ngx_queue_t                          *q;
    ngx_http_stockprice_stream_t         *s;
    ngx_http_stockprice_streams_t        *all;
    ngx_http_stockprice_stream_shared_t  *sh, one;

    all = ev->data;

    if (ngx_exiting) {
        ngx_http_stockprice_stream_fan_out_end(all);
        return;
    }

    bytes = 0;

    for (n = 0; n < NGX_HTTP_STOCKPRICE_STREAM_SLICE_STREAMS
                && bytes < NGX_HTTP_STOCKPRICE_STREAM_SLICE_BYTES;
         n++)
    {
        if (all->left == 0 || ngx_queue_empty(&all->streams)) {
            ngx_http_stockprice_stream_fan_out_end(all);

            /* a publish came meanwhile: its fan-out, on the next turn */

            if (all->n
                && ngx_http_stockprice_zone_generation(all->ctx)
                   != all->generation)
            {
                ngx_add_timer(&all->poll, 1);
            }

            return;
        }

        q = ngx_queue_head(&all->streams);
        s = ngx_queue_data(q, ngx_http_stockprice_stream_t, queue);

        all->left--;

        ngx_queue_remove(q);
        ngx_queue_insert_tail(&all->streams, q);

        if ((int64_t) (s->view.since - all->generation) >= 0) {
            /* new since the fan-out began, or done already */
            continue;
        }

        sh = ngx_http_stockprice_stream_shared(s, all->shared,
                                               &all->nshared);
        if (sh == NULL) {
            /* too many views this time: one of its own */
            sh = &one;
            sh->event = NULL;
        }

        if (sh->event == NULL) {
            sh->event = ngx_http_stockprice_stream_event(all->ctx, &s->view,
                                                         all->log);
            if (sh->event == NULL) {
                continue;
            }

            sh->event->refs++;
            sh->generation = sh->event->generation;
        }

        s->view.since = sh->generation;

        if (sh->event->pos != sh->event->last
            && ngx_http_stockprice_stream_queue(s, sh->event, all->bound)
               == NGX_OK)
        {
            bytes += sh->event->last - sh->event->pos;
            (void) ngx_http_stockprice_stream_push(s);
        }

        if (sh == &one) {
            ngx_http_stockprice_stream_release(sh->event);
        }
    }

    ngx_post_event(ev, &ngx_posted_next_events);
}


static void
ngx_http_stockprice_stream_fan_out_end(ngx_http_stockprice_streams_t *all)
{
    ngx_uint_t  i;

    for (i = 0; i < all->nshared; i++) {
        if (all->shared[i].event) {
            ngx_http_stockprice_stream_release(all->shared[i].event);
        }
    }

    all->nshared = 0;
    all->left = 0;

    if (all->slice.posted) {
        ngx_delete_posted_event(&all->slice);
    }
}


/* the entry for the stream's view, new (event NULL) or made before */

static ngx_http_stockprice_stream_shared_t *
ngx_http_stockprice_stream_shared(ngx_http_stockprice_stream_t *s,
    ngx_http_stockprice_stream_shared_t *shared, ngx_uint_t *nshared)
{
    ngx_uint_t                            i;
    ngx_http_stockprice_stream_shared_t  *sh;

    for (i = 0; i < *nshared; i++) {
        sh = &shared[i];

        if (sh->since == s->view.since && sh->key == s->key
            && sh->args.len == s->args.len
            && ngx_strncmp(sh->args.data, s->args.data, s->args.len) == 0)
        {
            return sh;
        }
    }

    if (*nshared == NGX_HTTP_STOCKPRICE_STREAM_SHARED) {
        return NULL;
    }

    sh = &shared[(*nshared)++];

    sh->since = s->view.since;
    sh->key = s->key;
    sh->args = s->args;
    sh->event = NULL;

    return sh;
}


/* a comment on every stream silent for 10 s (a look once a second) */

static void
ngx_http_stockprice_stream_heartbeat(ngx_http_stockprice_streams_t *all)
{
    ngx_queue_t                   *q, *next;
    ngx_http_stockprice_stream_t  *s;

    for (q = ngx_queue_head(&all->streams);
         q != ngx_queue_sentinel(&all->streams);
         q = next)
    {
        next = ngx_queue_next(q);
        s = ngx_queue_data(q, ngx_http_stockprice_stream_t, queue);

        if (s->sending || s->nqueued
            || ngx_current_msec - s->last
               < NGX_HTTP_STOCKPRICE_STREAM_HEARTBEAT)
        {
            continue;
        }

        if (ngx_http_stockprice_stream_queue(s,
                                             &ngx_http_stockprice_stream_ping,
                                             (size_t) -1)
            == NGX_OK)
        {
            (void) ngx_http_stockprice_stream_push(s);
        }
    }
}


/*
 * This worker's count of streams to the zone, for the status: when it
 * changed (at most every NGX_HTTP_STOCKPRICE_STREAM_REPORT ms), once a
 * second so that it holds, and with "force"
 */

static void
ngx_http_stockprice_stream_report(ngx_http_stockprice_streams_t *all,
    ngx_uint_t force)
{
    ngx_msec_t  age;

    age = ngx_current_msec - all->report_time;

    if (force
        || (all->n != all->reported
            && age >= NGX_HTTP_STOCKPRICE_STREAM_REPORT)
        || age >= 1000)
    {
        ngx_http_stockprice_zone_streams(all->ctx, all->n);

        all->reported = all->n;
        all->report_time = ngx_current_msec;

        return;
    }

    /* a change too soon after the last: said by a poll that much later */

    if (all->n != all->reported && !ngx_exiting
        && (!all->poll.timer_set
            || (ngx_msec_int_t) (all->poll.timer.key - ngx_current_msec)
               > (ngx_msec_int_t) (NGX_HTTP_STOCKPRICE_STREAM_REPORT - age)))
    {
        ngx_add_timer(&all->poll, NGX_HTTP_STOCKPRICE_STREAM_REPORT - age);
    }
}


/* an event behind the others; a stream too far behind is closed */

static ngx_int_t
ngx_http_stockprice_stream_queue(ngx_http_stockprice_stream_t *s,
    ngx_http_stockprice_stream_event_t *ev, size_t bound)
{
    size_t        unsent;
    ngx_chain_t  *cl;

    unsent = s->queued;

    for (cl = s->busy; cl; cl = cl->next) {
        unsent += ngx_buf_size(cl->buf);
    }

    if (s->nqueued == NGX_HTTP_STOCKPRICE_STREAM_QUEUE
        || unsent + (ev->last - ev->pos) > bound)
    {
        ngx_http_stockprice_stream_close(s, "the client reads too slowly");
        return NGX_ERROR;
    }

    s->events[(s->head + s->nqueued++) % NGX_HTTP_STOCKPRICE_STREAM_QUEUE] = ev;
    s->queued += ev->last - ev->pos;

    if (!ev->fixed) {
        ev->refs++;
    }

    return NGX_OK;
}


/* the queued events, one at a time, until the socket takes no more */

static ngx_int_t
ngx_http_stockprice_stream_push(ngx_http_stockprice_stream_t *s)
{
    ngx_buf_t                           *b;
    ngx_int_t                            rc;
    ngx_chain_t                         *cl;
    ngx_http_stockprice_stream_event_t  *ev;

    while (s->sending == NULL && s->nqueued) {
        ev = s->events[s->head];
        s->head = (s->head + 1) % NGX_HTTP_STOCKPRICE_STREAM_QUEUE;
        s->nqueued--;
        s->queued -= ev->last - ev->pos;

        cl = ngx_chain_get_free_buf(s->r->pool, &s->free);
        if (cl == NULL) {
            ngx_http_stockprice_stream_release(ev);
            ngx_http_stockprice_stream_close(s, "no memory");
            return NGX_ERROR;
        }

        b = cl->buf;
        b->tag = (ngx_buf_tag_t) &ngx_http_stockprice_module;
        b->memory = 1;
        b->flush = 1;
        b->pos = ev->pos;
        b->last = ev->last;

        s->sending = ev;

        rc = ngx_http_output_filter(s->r, cl);

        ngx_chain_update_chains(s->r->pool, &s->free, &s->busy, &cl,
                                (ngx_buf_tag_t) &ngx_http_stockprice_module);

        rc = ngx_http_stockprice_stream_sent(s, rc);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/*
 * After the output filter: the event sent (NGX_OK), a wait for the socket
 * (NGX_AGAIN), or the stream closed on an error (NGX_ERROR: the request
 * is gone then, unless the handler still runs)
 */

static ngx_int_t
ngx_http_stockprice_stream_sent(ngx_http_stockprice_stream_t *s,
    ngx_int_t rc)
{
    ngx_event_t               *wev;
    ngx_http_request_t        *r;
    ngx_http_core_loc_conf_t  *clcf;

    r = s->r;
    wev = r->connection->write;

    if (rc == NGX_ERROR) {
        ngx_http_stockprice_stream_close(s, NULL);
        return NGX_ERROR;
    }

    if (s->busy || r->out || r->connection->buffered) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (!wev->delayed && !wev->timer_set) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_stockprice_stream_close(s, NULL);
            return NGX_ERROR;
        }

        if (s->busy) {
            return NGX_AGAIN;
        }

    } else if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    if (s->sending) {
        ngx_http_stockprice_stream_release(s->sending);
        s->sending = NULL;
    }

    s->last = ngx_current_msec;

    return NGX_OK;
}


static void
ngx_http_stockprice_stream_write_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_event_t                   *wev;
    ngx_chain_t                   *out;
    ngx_http_stockprice_stream_t  *s;

    s = ngx_http_get_module_ctx(r, ngx_http_stockprice_module);
    wev = r->connection->write;

    if (wev->timedout) {
        r->connection->timedout = 1;
        ngx_http_stockprice_stream_close(s, "the client timed out");
        return;
    }

    if (wev->delayed) {
        /* limit_rate: its timer brings the handler back */
        return;
    }

    rc = ngx_http_output_filter(r, NULL);

    out = NULL;
    ngx_chain_update_chains(r->pool, &s->free, &s->busy, &out,
                            (ngx_buf_tag_t) &ngx_http_stockprice_module);

    if (ngx_http_stockprice_stream_sent(s, rc) == NGX_OK) {
        (void) ngx_http_stockprice_stream_push(s);
    }
}


/*
 * The request finalized, and at once: ngx_http_terminate_request() posts
 * its end, which no event of the connection would run from a timer
 */

static void
ngx_http_stockprice_stream_close(ngx_http_stockprice_stream_t *s,
    const char *why)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = s->r;
    c = r->connection;

    if (why) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "stockprice zone \"%V\": event stream closed: %s",
                      &s->all->ctx->feed->shm_zone->shm.name, why);
    }

    if (s->starting) {
        s->error = 1;
        return;
    }

    ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
    ngx_http_run_posted_requests(c);
}


/* the request is freed: its events, its place among the streams */

static void
ngx_http_stockprice_stream_cleanup(void *data)
{
    ngx_http_stockprice_stream_t *s = data;

    if (s->sending) {
        ngx_http_stockprice_stream_release(s->sending);
        s->sending = NULL;
    }

    while (s->nqueued) {
        ngx_http_stockprice_stream_release(s->events[s->head]);
        s->head = (s->head + 1) % NGX_HTTP_STOCKPRICE_STREAM_QUEUE;
        s->nqueued--;
    }

    if (s->listed) {
        ngx_queue_remove(&s->queue);
        s->listed = 0;
        s->all->n--;

        ngx_http_stockprice_stream_report(s->all, 0);
    }
}


/* a graceful shutdown: every stream of the zone closed at once */

void
ngx_http_stockprice_stream_quit(ngx_http_stockprice_ctx_t *ctx)
{
    ngx_queue_t                    *q;
    ngx_http_stockprice_stream_t   *s;
    ngx_http_stockprice_streams_t  *all;

    all = ctx->streams;

    if (all == NULL) {
        return;
    }

    if (all->poll.timer_set) {
        ngx_del_timer(&all->poll);
    }

    ngx_http_stockprice_stream_fan_out_end(all);

    while (!ngx_queue_empty(&all->streams)) {
        q = ngx_queue_head(&all->streams);
        s = ngx_queue_data(q, ngx_http_stockprice_stream_t, queue);

        /* its cleanup takes it off the list, the request freed */

        ngx_http_stockprice_stream_close(s, NULL);

        if (ngx_queue_head(&all->streams) == q) {
            /* the request lives on: off the list anyway */
            ngx_queue_remove(q);
            s->listed = 0;
            all->n--;
        }
    }

    ngx_http_stockprice_zone_streams(ctx, 0);
}
