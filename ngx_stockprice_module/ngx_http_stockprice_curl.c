
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <curl/curl.h>
#include <openssl/err.h>

#include <ngx_http_stockprice_curl.h>


static int ngx_http_stockprice_curl_socket(CURL *easy, curl_socket_t s,
    int what, void *userp, void *socketp);
static int ngx_http_stockprice_curl_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_stockprice_curl_socket_handler(ngx_event_t *ev);
static void ngx_http_stockprice_curl_timer_handler(ngx_event_t *ev);
static void ngx_http_stockprice_curl_check(void);
static void ngx_http_stockprice_curl_close(ngx_connection_t *c);
static void ngx_http_stockprice_curl_quit_handler(ngx_event_t *ev);
static void ngx_http_stockprice_curl_free_watcher(void);
static void ngx_http_stockprice_curl_clear(void);


/* this worker's curl state: one multi handle for every feed */

static CURLM                             *ngx_http_stockprice_curl_multi;
static CURLSH                            *ngx_http_stockprice_curl_shared;
static ngx_event_t                        ngx_http_stockprice_curl_event;
static ngx_connection_t                  *ngx_http_stockprice_curl_watcher;
static ngx_uint_t                         ngx_http_stockprice_curl_inited;
static ngx_http_stockprice_curl_done_pt   ngx_http_stockprice_curl_done;
static ngx_http_stockprice_curl_quit_pt   ngx_http_stockprice_curl_quit;
static void                              *ngx_http_stockprice_curl_data;


/* never fails for a transient reason: without curl, no refreshes here */

ngx_int_t
ngx_http_stockprice_curl_init(ngx_cycle_t *cycle,
    ngx_http_stockprice_curl_done_pt done,
    ngx_http_stockprice_curl_quit_pt quit, void *data)
{
    CURLM             *multi;
    ngx_connection_t  *c;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "stockprice: curl_global_init() failed, no refreshes "
                      "in this worker");
        return NGX_OK;
    }

    ngx_http_stockprice_curl_inited = 1;

    if (!(curl_version_info(CURLVERSION_NOW)->features
          & CURL_VERSION_ASYNCHDNS))
    {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "stockprice: %s resolves host names synchronously: a "
                      "slow DNS server holds this worker; use a libcurl "
                      "with AsynchDNS, or IP addresses",
                      curl_version());
    }

    multi = curl_multi_init();
    if (multi == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "stockprice: curl_multi_init() failed, no refreshes "
                      "in this worker");
        return NGX_OK;
    }

    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION,
                      ngx_http_stockprice_curl_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, cycle);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION,
                      ngx_http_stockprice_curl_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, cycle);

    ngx_http_stockprice_curl_multi = multi;

    /*
     * the multi handle keeps connections for the next refresh; the share
     * keeps TLS sessions and DNS answers, for when one must be made anew
     * (no locks: one thread)
     */

    ngx_http_stockprice_curl_shared = curl_share_init();

    if (ngx_http_stockprice_curl_shared) {
        curl_share_setopt(ngx_http_stockprice_curl_shared, CURLSHOPT_SHARE,
                          CURL_LOCK_DATA_SSL_SESSION);
        curl_share_setopt(ngx_http_stockprice_curl_shared, CURLSHOPT_SHARE,
                          CURL_LOCK_DATA_DNS);
    }

    ngx_http_stockprice_curl_done = done;
    ngx_http_stockprice_curl_quit = quit;
    ngx_http_stockprice_curl_data = data;

    ngx_http_stockprice_curl_event.handler =
                                     ngx_http_stockprice_curl_timer_handler;
    ngx_http_stockprice_curl_event.data = cycle;
    ngx_http_stockprice_curl_event.log = cycle->log;
    ngx_http_stockprice_curl_event.cancelable = 1;

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
            c->read->handler = ngx_http_stockprice_curl_quit_handler;
            c->read->log = cycle->log;
            c->write->log = cycle->log;
            ngx_http_stockprice_curl_watcher = c;
        }
    }

    return NGX_OK;
}


/* after every easy handle is removed: the rest of curl's state */

void
ngx_http_stockprice_curl_exit(ngx_cycle_t *cycle)
{
    CURLM             *multi;
    ngx_uint_t         i;
    ngx_connection_t  *c;

    if (ngx_http_stockprice_curl_multi) {
        multi = ngx_http_stockprice_curl_multi;
        ngx_http_stockprice_curl_multi = NULL;
        curl_multi_cleanup(multi);
    }

    if (ngx_http_stockprice_curl_shared) {
        curl_share_cleanup(ngx_http_stockprice_curl_shared);
        ngx_http_stockprice_curl_shared = NULL;
    }

    if (ngx_http_stockprice_curl_event.timer_set) {
        ngx_del_timer(&ngx_http_stockprice_curl_event);
    }

    /* whatever curl did not hand back: its fds are closed by now */

    c = cycle->connections;

    for (i = 0; i < cycle->connection_n; i++) {
        if (c[i].fd != (ngx_socket_t) -1
            && c[i].read
            && c[i].read->handler == ngx_http_stockprice_curl_socket_handler)
        {
            c[i].read->active = 0;
            c[i].write->active = 0;
            ngx_http_stockprice_curl_close(&c[i]);
        }
    }

    ngx_http_stockprice_curl_free_watcher();

    if (ngx_http_stockprice_curl_inited) {
        curl_global_cleanup();
        ngx_http_stockprice_curl_inited = 0;
    }
}


ngx_int_t
ngx_http_stockprice_curl_ready(void)
{
    return ngx_http_stockprice_curl_multi != NULL;
}


ngx_int_t
ngx_http_stockprice_curl_add(CURL *easy)
{
    if (ngx_http_stockprice_curl_multi == NULL
        || curl_multi_add_handle(ngx_http_stockprice_curl_multi, easy)
           != CURLM_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_stockprice_curl_remove(CURL *easy)
{
    if (ngx_http_stockprice_curl_multi) {
        curl_multi_remove_handle(ngx_http_stockprice_curl_multi, easy);
    }

    curl_easy_cleanup(easy);
    ngx_http_stockprice_curl_clear();
}


static void
ngx_http_stockprice_curl_quit_handler(ngx_event_t *ev)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "stockprice: shutting down, abandoning refreshes");

    ngx_http_stockprice_curl_free_watcher();
    ngx_http_stockprice_curl_quit(ngx_http_stockprice_curl_data);
}


static void
ngx_http_stockprice_curl_free_watcher(void)
{
    ngx_connection_t  *c;

    c = ngx_http_stockprice_curl_watcher;

    if (c == NULL) {
        return;
    }

    ngx_http_stockprice_curl_watcher = NULL;

    /* no socket to close: ngx_free_connection() only wants a valid fd */
    c->fd = 0;
    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}


static int
ngx_http_stockprice_curl_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp)
{
    ngx_cycle_t *cycle = userp;

    ngx_connection_t  *c;

    c = socketp;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                   "stockprice curl socket %d: %d", (int) s, what);

    if (what == CURL_POLL_REMOVE) {
        if (c) {
            if (ngx_http_stockprice_curl_multi) {
                curl_multi_assign(ngx_http_stockprice_curl_multi, s, NULL);
            }

            ngx_http_stockprice_curl_close(c);
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
        c->read->handler = ngx_http_stockprice_curl_socket_handler;
        c->write->handler = ngx_http_stockprice_curl_socket_handler;

        curl_multi_assign(ngx_http_stockprice_curl_multi, s, c);
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
ngx_http_stockprice_curl_close(ngx_connection_t *c)
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
ngx_http_stockprice_curl_socket_handler(ngx_event_t *ev)
{
    int                running;
    ngx_connection_t  *c;

    c = ev->data;

    if (ngx_http_stockprice_curl_multi == NULL) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "stockprice curl socket %d %s ready", (int) c->fd,
                   ev->write ? "write" : "read");

    curl_multi_socket_action(ngx_http_stockprice_curl_multi, c->fd,
                             ev->write ? CURL_CSELECT_OUT : CURL_CSELECT_IN,
                             &running);

    ngx_http_stockprice_curl_check();
}


/*
 * curl's TLS runs on nginx's thread, and OpenSSL's error queue is the
 * thread's: errors curl leaves in it (a failed handshake's shutdown)
 * would be found by nginx's next SSL call on a client connection and
 * logged as "ignoring stale global SSL error"
 */

static void
ngx_http_stockprice_curl_clear(void)
{
    ERR_clear_error();
}


static int
ngx_http_stockprice_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_event_t  *ev;

    ev = &ngx_http_stockprice_curl_event;

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
ngx_http_stockprice_curl_timer_handler(ngx_event_t *ev)
{
    int  running;

    if (ngx_exiting || ngx_http_stockprice_curl_multi == NULL) {
        return;
    }

    curl_multi_socket_action(ngx_http_stockprice_curl_multi,
                             CURL_SOCKET_TIMEOUT, 0, &running);

    ngx_http_stockprice_curl_check();
}


/* the transfers that ended, each to the "done" callback */

static void
ngx_http_stockprice_curl_check(void)
{
    int       left;
    CURLMsg  *msg;

    while (ngx_http_stockprice_curl_multi
           && (msg = curl_multi_info_read(ngx_http_stockprice_curl_multi,
                                          &left)))
    {
        if (msg->msg == CURLMSG_DONE) {
            ngx_http_stockprice_curl_done(msg->easy_handle, msg->data.result);
        }
    }

    ngx_http_stockprice_curl_clear();
}


/* the worker's TLS sessions and DNS answers for "easy" */

void
ngx_http_stockprice_curl_share(CURL *easy)
{
    if (ngx_http_stockprice_curl_shared) {
        curl_easy_setopt(easy, CURLOPT_SHARE, ngx_http_stockprice_curl_shared);
    }
}
