
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_GZIP_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_GZIP_H_INCLUDED_


/*
 * A body compressed as gzip in steps, for a caller that must not hold its
 * thread for the whole body.  Plain C99 and zlib: no nginx headers, no
 * logging, no globals.
 */


#include <stddef.h>

#include <zlib.h>


#define NGX_HTTP_STOCKPRICE_GZIP_LEVEL  6

/*
 * zlib's memLevel: 7 rather than its default 8 halves the symbols of a
 * deflate block (8K), and so the longest step, the one that writes a block
 * out (some 150 us against 300 us in a worker), for 0.2 % more bytes
 */
#define NGX_HTTP_STOCKPRICE_GZIP_MEMLEVEL  7

typedef enum {
    NGX_HTTP_STOCKPRICE_GZIP_OK = 0,         /* all of it: out, out_len */
    NGX_HTTP_STOCKPRICE_GZIP_AGAIN,          /* more steps */
    NGX_HTTP_STOCKPRICE_GZIP_ERROR           /* no memory, or zlib's */
} ngx_http_stockprice_gzip_rc_e;


typedef struct {
    z_stream                        z;
    unsigned                        inited;
    const unsigned char            *in;
    size_t                          in_len;
    size_t                          pos;        /* in "in" */
    unsigned char                  *out;        /* malloc()ed */
    size_t                          out_len;
    size_t                          out_size;
} ngx_http_stockprice_gzip_t;


/* the most bytes the gzip of "len" bytes takes */
size_t ngx_http_stockprice_gzip_bound(size_t len);

/*
 * start(), then step() until it returns anything but AGAIN (each step
 * compresses "budget" bytes of input, or what is left); then the caller
 * takes g->out (and free()s it) or calls free().  "in" must stay until
 * then.
 */
int ngx_http_stockprice_gzip_start(ngx_http_stockprice_gzip_t *g,
    const unsigned char *in, size_t len, int level);
int ngx_http_stockprice_gzip_step(ngx_http_stockprice_gzip_t *g,
    size_t budget);
void ngx_http_stockprice_gzip_free(ngx_http_stockprice_gzip_t *g);


#endif /* _NGX_HTTP_STOCKPRICE_GZIP_H_INCLUDED_ */
