
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_md5.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>
#include <ngx_http_stockprice_module.h>


/*
 * A stand-in for the external prices API: POST <location>auth issues a
 * token for the right credentials, GET <location>prices answers a random
 * walk of prices.  Tokens are "<expiry>.<md5(secret, expiry)>", so that
 * every worker checks them without shared state.
 */


#define NGX_HTTP_STOCKPRICE_DEMO_TTL      3600
#define NGX_HTTP_STOCKPRICE_DEMO_COUNT_MAX  100000
#define NGX_HTTP_STOCKPRICE_DEMO_BODY_MAX 4096
#define NGX_HTTP_STOCKPRICE_DEMO_TOKEN_LEN  (NGX_TIME_T_LEN + 1 + 32)


static char *ngx_http_stockprice_demo_count(ngx_conf_t *cf,
    ngx_http_stockprice_loc_conf_t *slcf, ngx_int_t count);
static ngx_int_t ngx_http_stockprice_demo_walk(ngx_conf_t *cf,
    ngx_http_stockprice_loc_conf_t *slcf);
static ngx_int_t ngx_http_stockprice_demo_route(ngx_http_request_t *r);
static void ngx_http_stockprice_demo_auth(ngx_http_request_t *r);
static ngx_int_t ngx_http_stockprice_demo_prices(ngx_http_request_t *r);
static size_t ngx_http_stockprice_demo_token(
    ngx_http_stockprice_loc_conf_t *slcf, time_t expires, u_char *buf);
static ngx_int_t ngx_http_stockprice_demo_check_token(ngx_http_request_t *r,
    ngx_http_stockprice_loc_conf_t *slcf);
static ngx_uint_t ngx_http_stockprice_demo_wanted(ngx_str_t *list,
    ngx_str_t *symbol);


static ngx_str_t  ngx_http_stockprice_demo_default =
    ngx_string("MSFT,AAPL,SAP");


char *
ngx_http_stockprice_demo_feed(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_stockprice_loc_conf_t *slcf = conf;

    char                      *rv;
    ngx_int_t                  count;
    ngx_str_t                 *value, s, credentials;
    ngx_uint_t                 i;
    ngx_http_core_loc_conf_t  *clcf;

    if (slcf->demo_prices) {
        return "is duplicate";
    }

    value = cf->args->elts;
    ngx_str_null(&credentials);
    count = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "symbols=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            rv = ngx_http_stockprice_conf_symbols(cf, &s,
                                                   &slcf->demo_symbols);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "count=", 6) == 0) {
            count = ngx_atoi(value[i].data + 6, value[i].len - 6);

            if (count < 1 || count > NGX_HTTP_STOCKPRICE_DEMO_COUNT_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid count \"%V\", it must be "
                                   "1 to %d", &value[i],
                                   NGX_HTTP_STOCKPRICE_DEMO_COUNT_MAX);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "credentials=", 12) == 0
            && value[i].len > 12)
        {
            credentials.data = value[i].data + 12;
            credentials.len = value[i].len - 12;

            rv = ngx_http_stockprice_conf_credentials(cf, &credentials,
                                                      &slcf->demo_user,
                                                      &slcf->demo_password);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (count && slcf->demo_symbols) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"count\" and \"symbols\" cannot both be set");
        return NGX_CONF_ERROR;
    }

    if (count) {
        rv = ngx_http_stockprice_demo_count(cf, slcf, count);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (slcf->demo_symbols == NULL) {
        rv = ngx_http_stockprice_conf_symbols(cf,
                                              &ngx_http_stockprice_demo_default,
                                              &slcf->demo_symbols);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (ngx_http_stockprice_demo_walk(cf, slcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_stockprice_demo_handler;

    return NGX_CONF_OK;
}


/* count=N: S1..S9, or S0001..S5000, so that byte order is numeric order */

static char *
ngx_http_stockprice_demo_count(ngx_conf_t *cf,
    ngx_http_stockprice_loc_conf_t *slcf, ngx_int_t count)
{
    u_char      *p;
    uint32_t     h;
    ngx_int_t    width, n;
    ngx_str_t    s;
    ngx_uint_t   i;

    width = 1;

    for (h = (uint32_t) count; h >= 10; h /= 10) {
        width++;
    }

    s.len = (size_t) count * (width + 2);
    s.data = ngx_pnalloc(cf->pool, s.len);
    if (s.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = s.data;

    for (i = 1; i <= (ngx_uint_t) count; i++) {
        if (i > 1) {
            *p++ = ',';
        }

        *p++ = 'S';

        for (h = (uint32_t) i, n = width; n--; h /= 10) {
            p[n] = (u_char) ('0' + h % 10);
        }

        p += width;
    }

    s.len = p - s.data;

    return ngx_http_stockprice_conf_symbols(cf, &s, &slcf->demo_symbols);
}


/* the walk's starting prices, and the secret its tokens are made with */

static ngx_int_t
ngx_http_stockprice_demo_walk(ngx_conf_t *cf,
    ngx_http_stockprice_loc_conf_t *slcf)
{
    uint32_t     h;
    ngx_str_t   *sym;
    ngx_uint_t   i;
    ngx_md5_t    md5;

    slcf->demo_prices = ngx_palloc(cf->pool,
                                   slcf->demo_symbols->nelts * sizeof(double));
    if (slcf->demo_prices == NULL) {
        return NGX_ERROR;
    }

    sym = slcf->demo_symbols->elts;

    for (i = 0; i < slcf->demo_symbols->nelts; i++) {
        h = ngx_crc32_short(sym[i].data, sym[i].len);
        slcf->demo_prices[i] = 10 + (h % 49000) / 100.0;
    }

    /* the same credentials give the same secret: tokens survive reloads */

    ngx_md5_init(&md5);
    ngx_md5_update(&md5, "ngx_stockprice demo feed", 24);
    ngx_md5_update(&md5, slcf->demo_user.data, slcf->demo_user.len);
    ngx_md5_update(&md5, ":", 1);
    ngx_md5_update(&md5, slcf->demo_password.data, slcf->demo_password.len);
    ngx_md5_final(slcf->demo_secret, &md5);

    return NGX_OK;
}


ngx_int_t
ngx_http_stockprice_demo_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc, route;

    route = ngx_http_stockprice_demo_route(r);

    if (route == 0) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_stockprice_handler_send_error(r, NGX_HTTP_NOT_FOUND,
                                                      "not found");
    }

    if (route == 1) {
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_stockprice_handler_not_allowed(r, "POST");
        }

        r->request_body_in_single_buf = 1;

        rc = ngx_http_read_client_request_body(r,
                                               ngx_http_stockprice_demo_auth);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_stockprice_handler_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_stockprice_demo_prices(r);
}


/* 1: <location>auth, 2: <location>prices, 0: anything else */

static ngx_int_t
ngx_http_stockprice_demo_route(ngx_http_request_t *r)
{
    u_char                    *p;
    size_t                     len;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    p = r->uri.data;
    len = r->uri.len;

    if (len >= clcf->name.len
        && ngx_strncmp(p, clcf->name.data, clcf->name.len) == 0)
    {
        p += clcf->name.len;
        len -= clcf->name.len;
    }

    if (len && *p == '/') {
        p++;
        len--;
    }

    if (len == 4 && ngx_strncmp(p, "auth", 4) == 0) {
        return 1;
    }

    if (len == 6 && ngx_strncmp(p, "prices", 6) == 0) {
        return 2;
    }

    return 0;
}


static void
ngx_http_stockprice_demo_auth(ngx_http_request_t *r)
{
    u_char                          *p, *token;
    size_t                           len;
    ngx_buf_t                       *b;
    ngx_chain_t                     *cl;
    ngx_http_stockprice_str_t        user, password;
    ngx_http_stockprice_loc_conf_t  *slcf;
    u_char                           body[NGX_HTTP_STOCKPRICE_DEMO_BODY_MAX];

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_stockprice_module);

    if (r->request_body == NULL || r->request_body->temp_file) {
        ngx_http_finalize_request(r,
                   ngx_http_stockprice_handler_send_error(r,
                                          NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                          "request body too large"));
        return;
    }

    p = body;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len = cl->buf->last - cl->buf->pos;

        if ((size_t) (body + sizeof(body) - p) < len) {
            ngx_http_finalize_request(r,
                   ngx_http_stockprice_handler_send_error(r,
                                          NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                          "request body too large"));
            return;
        }

        p = ngx_cpymem(p, cl->buf->pos, len);
    }

    user.data = (char *) slcf->demo_user.data;
    user.len = slcf->demo_user.len;
    password.data = (char *) slcf->demo_password.data;
    password.len = slcf->demo_password.len;

    if (slcf->demo_user.len
        && !ngx_http_stockprice_parse_check_credentials((char *) body,
                                                        p - body, &user,
                                                        &password))
    {
        ngx_explicit_memzero(body, p - body);
        ngx_http_finalize_request(r,
                   ngx_http_stockprice_handler_send_error(r,
                                          NGX_HTTP_UNAUTHORIZED,
                                          "invalid credentials"));
        return;
    }

    ngx_explicit_memzero(body, p - body);

    len = sizeof("{\"token\":\"\",\"expiresIn\":}") - 1
          + NGX_HTTP_STOCKPRICE_DEMO_TOKEN_LEN + NGX_INT_T_LEN;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    b->last = ngx_cpymem(b->last, "{\"token\":\"", 10);
    token = b->last;
    b->last += ngx_http_stockprice_demo_token(slcf,
                                    ngx_time() + NGX_HTTP_STOCKPRICE_DEMO_TTL,
                                    token);
    b->last = ngx_sprintf(b->last, "\",\"expiresIn\":%d}",
                          NGX_HTTP_STOCKPRICE_DEMO_TTL);

    ngx_http_finalize_request(r,
                   ngx_http_stockprice_handler_send(r, NGX_HTTP_OK,
                                          &ngx_http_stockprice_json_type,
                                          b, b->last - b->pos));
}


static size_t
ngx_http_stockprice_demo_token(ngx_http_stockprice_loc_conf_t *slcf,
    time_t expires, u_char *buf)
{
    u_char     *p;
    ngx_md5_t   md5;
    u_char      hash[16];

    p = ngx_sprintf(buf, "%xT", expires);

    ngx_md5_init(&md5);
    ngx_md5_update(&md5, slcf->demo_secret, sizeof(slcf->demo_secret));
    ngx_md5_update(&md5, buf, p - buf);
    ngx_md5_final(hash, &md5);

    *p++ = '.';
    p = ngx_hex_dump(p, hash, sizeof(hash));

    return p - buf;
}


static ngx_int_t
ngx_http_stockprice_demo_check_token(ngx_http_request_t *r,
    ngx_http_stockprice_loc_conf_t *slcf)
{
    u_char     *dot;
    size_t      len;
    time_t      expires;
    ngx_str_t   value;
    u_char      expect[NGX_HTTP_STOCKPRICE_DEMO_TOKEN_LEN];

    if (r->headers_in.authorization == NULL) {
        return NGX_DECLINED;
    }

    value = r->headers_in.authorization->value;

    if (value.len <= 7
        || ngx_strncasecmp(value.data, (u_char *) "Bearer ", 7) != 0)
    {
        return NGX_DECLINED;
    }

    value.data += 7;
    value.len -= 7;

    dot = ngx_strlchr(value.data, value.data + value.len, '.');
    if (dot == NULL) {
        return NGX_DECLINED;
    }

    expires = ngx_hextoi(value.data, dot - value.data);

    if (expires == NGX_ERROR || expires < ngx_time()) {
        return NGX_DECLINED;
    }

    len = ngx_http_stockprice_demo_token(slcf, expires, expect);

    if (len != value.len || ngx_strncmp(expect, value.data, len) != 0) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_stockprice_demo_wanted(ngx_str_t *list, ngx_str_t *symbol)
{
    u_char  *p, *last, *comma;

    p = list->data;
    last = list->data + list->len;

    while (p <= last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if ((size_t) (comma - p) == symbol->len
            && ngx_strncmp(p, symbol->data, symbol->len) == 0)
        {
            return 1;
        }

        p = comma + 1;
    }

    return 0;
}


static ngx_int_t
ngx_http_stockprice_demo_prices(ngx_http_request_t *r)
{
    u_char                          *p, *q, *dst;
    double                           step, quote;
    size_t                           len, tlen, plen;
    ngx_str_t                       *sym, arg;
    ngx_buf_t                       *b;
    ngx_uint_t                       i, n;
    struct timeval                   tv;
    ngx_http_stockprice_loc_conf_t  *slcf;
    char                             now[NGX_HTTP_STOCKPRICE_ISO_LEN];
    char                             price[NGX_HTTP_STOCKPRICE_PRICE_LEN];

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_stockprice_module);

    if (slcf->demo_user.len
        && ngx_http_stockprice_demo_check_token(r, slcf) != NGX_OK)
    {
        return ngx_http_stockprice_handler_send_error(r,
                                                  NGX_HTTP_UNAUTHORIZED,
                                                  "invalid or missing token");
    }

    if (ngx_http_arg(r, (u_char *) "symbols", 7, &arg) == NGX_OK) {
        q = ngx_pnalloc(r->pool, arg.len + 1);
        if (q == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        dst = q;
        ngx_unescape_uri(&dst, &arg.data, arg.len, NGX_UNESCAPE_URI);
        arg.data = q;
        arg.len = dst - q;

    } else {
        ngx_str_null(&arg);
    }

    ngx_gettimeofday(&tv);
    tlen = ngx_http_stockprice_render_time(now, (int64_t) tv.tv_sec,
                                           (long) tv.tv_usec);

    sym = slcf->demo_symbols->elts;
    n = slcf->demo_symbols->nelts;

    len = 2;

    for (i = 0; i < n; i++) {
        len += sizeof("{\"symbol\":\"\",\"price\":,\"valueDateTime\":\"\"},")
               + ngx_http_stockprice_render_escape(NULL, (char *) sym[i].data,
                                                   sym[i].len)
               + NGX_HTTP_STOCKPRICE_PRICE_LEN + tlen;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;
    *p++ = '[';

    for (i = 0; i < n; i++) {

        if (arg.data && !ngx_http_stockprice_demo_wanted(&arg, &sym[i])) {
            continue;
        }

        /* this worker's own walk: up to 1 % either way */

        step = ((double) (ngx_random() % 20001) - 10000) / 1000000.0;
        slcf->demo_prices[i] *= 1 + step;

        if (slcf->demo_prices[i] < 0.01) {
            slcf->demo_prices[i] = 0.01;
        }

        if (p[-1] != '[') {
            *p++ = ',';
        }

        p = ngx_cpymem(p, "{\"symbol\":\"", 11);
        p += ngx_http_stockprice_render_escape((char *) p, (char *) sym[i].data,
                                               sym[i].len);
        p = ngx_cpymem(p, "\",\"price\":", 10);
        /* quoted to 4 decimals, as exchanges quote; the walk keeps all */

        quote = (double) (int64_t) (slcf->demo_prices[i] * 10000 + 0.5)
                / 10000;
        plen = ngx_http_stockprice_render_price(price, quote);
        p = ngx_cpymem(p, price, plen);
        p = ngx_cpymem(p, ",\"valueDateTime\":\"", 18);
        p = ngx_cpymem(p, now, tlen);
        p = ngx_cpymem(p, "\"}", 2);
    }

    *p++ = ']';
    b->last = p;

    if (ngx_http_stockprice_handler_add_header(r, "Cache-Control",
                                               (u_char *) "no-store", 8)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_stockprice_handler_send(r, NGX_HTTP_OK,
                                            &ngx_http_stockprice_json_type, b,
                                            b->last - b->pos);
}
