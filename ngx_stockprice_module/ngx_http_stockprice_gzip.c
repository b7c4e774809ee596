
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <stdlib.h>
#include <string.h>

#include <ngx_http_stockprice_gzip.h>


size_t
ngx_http_stockprice_gzip_bound(size_t len)
{
    /*
     * zlib's deflateBound() for these parameters (a window of 15 bits
     * over a hash of 14, memLevel 7: its "stored blocks" bound), and
     * gzip's 18 bytes of header and trailer
     */

    return len + (len >> 5) + (len >> 7) + (len >> 11) + 7 + 18;
}


int
ngx_http_stockprice_gzip_start(ngx_http_stockprice_gzip_t *g,
    const unsigned char *in, size_t len, int level)
{
    memset(g, 0, sizeof(ngx_http_stockprice_gzip_t));

    g->in = in;
    g->in_len = len;

    g->out_size = ngx_http_stockprice_gzip_bound(len);
    g->out = malloc(g->out_size);
    if (g->out == NULL) {
        return NGX_HTTP_STOCKPRICE_GZIP_ERROR;
    }

    /* 16 + MAX_WBITS: a gzip header and trailer, as gzip_static serves */

    if (deflateInit2(&g->z, level, Z_DEFLATED, 16 + MAX_WBITS,
                     NGX_HTTP_STOCKPRICE_GZIP_MEMLEVEL,
                     Z_DEFAULT_STRATEGY)
        != Z_OK)
    {
        free(g->out);
        g->out = NULL;
        return NGX_HTTP_STOCKPRICE_GZIP_ERROR;
    }

    g->inited = 1;

    g->z.next_out = g->out;
    g->z.avail_out = (uInt) g->out_size;

    return NGX_HTTP_STOCKPRICE_GZIP_AGAIN;
}


int
ngx_http_stockprice_gzip_step(ngx_http_stockprice_gzip_t *g, size_t budget)
{
    int     rc, flush;
    size_t  n;

    if (!g->inited) {
        return NGX_HTTP_STOCKPRICE_GZIP_ERROR;
    }

    n = g->in_len - g->pos;

    if (n > budget) {
        n = budget;
    }

    flush = (g->pos + n == g->in_len) ? Z_FINISH : Z_NO_FLUSH;

    g->z.next_in = (unsigned char *) g->in + g->pos;
    g->z.avail_in = (uInt) n;

    rc = deflate(&g->z, flush);

    /* the output has room for all of it: the input is taken whole */

    if ((rc != Z_OK && rc != Z_STREAM_END) || g->z.avail_in != 0) {
        return NGX_HTTP_STOCKPRICE_GZIP_ERROR;
    }

    g->pos += n;

    if (flush == Z_NO_FLUSH) {
        return NGX_HTTP_STOCKPRICE_GZIP_AGAIN;
    }

    if (rc != Z_STREAM_END) {
        return NGX_HTTP_STOCKPRICE_GZIP_ERROR;
    }

    g->out_len = g->out_size - g->z.avail_out;

    deflateEnd(&g->z);
    g->inited = 0;

    return NGX_HTTP_STOCKPRICE_GZIP_OK;
}


void
ngx_http_stockprice_gzip_free(ngx_http_stockprice_gzip_t *g)
{
    if (g->inited) {
        deflateEnd(&g->z);
        g->inited = 0;
    }

    free(g->out);
    g->out = NULL;
}
