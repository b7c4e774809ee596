
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <ngx_http_stockprice_notify.h>


/* a pipe per worker: fd[2 i] its read end, fd[2 i + 1] the write end */

typedef struct ngx_http_stockprice_notify_pipes_s
    ngx_http_stockprice_notify_pipes_t;

struct ngx_http_stockprice_notify_pipes_s {
    ngx_uint_t                           n;
    ngx_fd_t                            *fd;
    ngx_http_stockprice_notify_pipes_t  *next;  /* of older cycles */
};


static void ngx_http_stockprice_notify_close(void *data);
static void ngx_http_stockprice_notify_read(ngx_event_t *ev);


/*
 * The pipes of the newest cycle, made in the master, inherited; "next":
 * those of cycles the master still holds after a reload, which a new
 * worker inherits too and closes
 */
static ngx_http_stockprice_notify_pipes_t  *ngx_http_stockprice_notify_pipes;

/* this worker's read end, and what it calls */
static ngx_connection_t                    *ngx_http_stockprice_notify_conn;
static ngx_http_stockprice_notify_pt        ngx_http_stockprice_notify_wake;
static void                                *ngx_http_stockprice_notify_data;


ngx_int_t
ngx_http_stockprice_notify_init_module(ngx_cycle_t *cycle)
{
    int                                  p[2];
    ngx_uint_t                           i, n;
    ngx_core_conf_t                     *ccf;
    ngx_pool_cleanup_t                  *cln;
    ngx_http_stockprice_notify_pipes_t  *pipes;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    /* one process (master_process off), or nginx -t: nobody to wake */

    if (ngx_test_config || !ccf->master || ccf->worker_processes < 2) {
        return NGX_OK;
    }

    n = (ngx_uint_t) ccf->worker_processes;

    pipes = ngx_palloc(cycle->pool, sizeof(ngx_http_stockprice_notify_pipes_t));
    if (pipes == NULL) {
        return NGX_ERROR;
    }

    pipes->n = 0;
    pipes->next = ngx_http_stockprice_notify_pipes;
    pipes->fd = ngx_palloc(cycle->pool, 2 * n * sizeof(ngx_fd_t));
    if (pipes->fd == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_stockprice_notify_close;
    cln->data = pipes;

    for (i = 0; i < n; i++) {
        if (pipe(p) == -1) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "stockprice: pipe() for the workers' wake-ups "
                          "failed");
            return NGX_ERROR;
        }

        pipes->fd[2 * i] = p[0];
        pipes->fd[2 * i + 1] = p[1];
        pipes->n++;

        if (ngx_nonblocking(p[0]) == -1 || ngx_nonblocking(p[1]) == -1) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "stockprice: " ngx_nonblocking_n " failed");
            return NGX_ERROR;
        }
    }

    ngx_http_stockprice_notify_pipes = pipes;

    return NGX_OK;
}


/* the cycle's pool goes (in the master, and in a process that exits) */

static void
ngx_http_stockprice_notify_close(void *data)
{
    ngx_http_stockprice_notify_pipes_t *pipes = data;

    ngx_uint_t                            i;
    ngx_http_stockprice_notify_pipes_t  **pp;

    for (i = 0; i < 2 * pipes->n; i++) {
        if (pipes->fd[i] != -1) {
            (void) close(pipes->fd[i]);
            pipes->fd[i] = -1;
        }
    }

    for (pp = &ngx_http_stockprice_notify_pipes; *pp; pp = &(*pp)->next) {
        if (*pp == pipes) {
            *pp = pipes->next;
            break;
        }
    }
}


/*
 * A worker keeps its own read end, in its event loop, and the others'
 * write ends
 */

ngx_int_t
ngx_http_stockprice_notify_init_process(ngx_cycle_t *cycle,
    ngx_http_stockprice_notify_pt wake, void *data)
{
    ngx_uint_t                           i;
    ngx_connection_t                    *c;
    ngx_http_stockprice_notify_pipes_t  *pipes, *old;

    ngx_http_stockprice_notify_wake = wake;
    ngx_http_stockprice_notify_data = data;

    pipes = ngx_http_stockprice_notify_pipes;

    if (pipes && ngx_process == NGX_PROCESS_WORKER) {
        for (old = pipes->next; old; old = old->next) {
            ngx_http_stockprice_notify_close(old);
        }

        pipes->next = NULL;
    }

    if (pipes == NULL || ngx_process != NGX_PROCESS_WORKER
        || ngx_worker >= pipes->n)
    {
        return NGX_OK;
    }

    for (i = 0; i < pipes->n; i++) {
        if (i != ngx_worker) {
            (void) close(pipes->fd[2 * i]);
            pipes->fd[2 * i] = -1;
        }
    }

    (void) close(pipes->fd[2 * ngx_worker + 1]);
    pipes->fd[2 * ngx_worker + 1] = -1;

    c = ngx_get_connection(pipes->fd[2 * ngx_worker], cycle->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    /* the connection closes the fd now */
    pipes->fd[2 * ngx_worker] = -1;

    c->read->handler = ngx_http_stockprice_notify_read;
    c->read->log = cycle->log;
    c->write->log = cycle->log;

    if (ngx_add_event(c->read, NGX_READ_EVENT, 0) == NGX_ERROR) {
        ngx_close_connection(c);
        return NGX_ERROR;
    }

    ngx_http_stockprice_notify_conn = c;

    return NGX_OK;
}


void
ngx_http_stockprice_notify_exit_process(void)
{
    if (ngx_http_stockprice_notify_conn) {
        ngx_close_connection(ngx_http_stockprice_notify_conn);
        ngx_http_stockprice_notify_conn = NULL;
    }

    ngx_http_stockprice_notify_wake = NULL;
}


static void
ngx_http_stockprice_notify_read(ngx_event_t *ev)
{
    u_char             buf[64];
    ssize_t            n;
    ngx_connection_t  *c;

    c = ev->data;

    /* however many wake-ups came: one look at the zones */

    for ( ;; ) {
        n = read(c->fd, buf, sizeof(buf));

        if (n == (ssize_t) sizeof(buf)) {
            continue;
        }

        if (n == -1 && ngx_errno == NGX_EINTR) {
            continue;
        }

        break;
    }

    if (n == 0) {
        /* every write end gone (the master too): nobody will wake us */
        ngx_http_stockprice_notify_exit_process();
        return;
    }

    if (!ngx_exiting && ngx_http_stockprice_notify_wake) {
        ngx_http_stockprice_notify_wake(ngx_http_stockprice_notify_data);
    }
}


/* a publish: every other worker is to look; a full pipe is a wake-up due */

void
ngx_http_stockprice_notify_others(void)
{
    ngx_uint_t                           i;
    ngx_http_stockprice_notify_pipes_t  *pipes;

    pipes = ngx_http_stockprice_notify_pipes;

    if (pipes == NULL || ngx_process != NGX_PROCESS_WORKER) {
        return;
    }

    for (i = 0; i < pipes->n; i++) {
        if (i != ngx_worker && pipes->fd[2 * i + 1] != -1
            && write(pipes->fd[2 * i + 1], "!", 1) == -1)
        {
            /* EAGAIN: the pipe is full, that worker has a wake-up due */
        }
    }
}
