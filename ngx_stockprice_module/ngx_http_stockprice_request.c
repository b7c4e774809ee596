
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>
#include <ngx_http_stockprice_module.h>
#include <ngx_http_stockprice_request.h>


#define NGX_HTTP_STOCKPRICE_SECRET_MAX  8192

/* the symbol placeholders a text holds */
#define NGX_HTTP_STOCKPRICE_REQUEST_SYMBOLS  1
#define NGX_HTTP_STOCKPRICE_REQUEST_SYMBOL   2

#define ngx_http_stockprice_request_alpha(c)                                  \
    ((u_char) ((c) | 0x20) >= 'a' && (u_char) ((c) | 0x20) <= 'z')


typedef struct {
    ngx_str_t                       name;
    ngx_str_t                       value;      /* as read, for headers */
    ngx_str_t                       encoded;    /* for the URL */
} ngx_http_stockprice_secret_t;


typedef struct {
    ngx_str_t                       name;
    ngx_str_t                       value;      /* with placeholders */
} ngx_http_stockprice_header_t;


static char *ngx_http_stockprice_request_expand(ngx_conf_t *cf,
    ngx_str_t *tpl, ngx_array_t *secrets, ngx_str_t *list, ngx_uint_t url,
    ngx_str_t *out, ngx_uint_t *symbols);
static char *ngx_http_stockprice_request_parts(ngx_conf_t *cf,
    ngx_http_stockprice_feed_t *feed, ngx_str_t *url, ngx_str_t *list,
    ngx_array_t *symbols, ngx_array_t *secrets, ngx_uint_t which);
static char *ngx_http_stockprice_request_url(ngx_conf_t *cf, ngx_str_t *url,
    ngx_str_t *list, ngx_array_t *secrets, ngx_str_t *out);
static char *ngx_http_stockprice_request_name(ngx_conf_t *cf, ngx_str_t *tpl,
    u_char **pos, ngx_str_t *name);
static char *ngx_http_stockprice_request_value(ngx_conf_t *cf,
    ngx_str_t *tpl, ngx_str_t *name, ngx_array_t *secrets, ngx_str_t *list,
    ngx_uint_t url, ngx_str_t *value, ngx_uint_t *symbols);
static size_t ngx_http_stockprice_request_symbols(u_char *dst,
    ngx_str_t *list);
static ngx_uint_t ngx_http_stockprice_request_tchar(u_char c);


/* secret=NAME:FILE: the first line of FILE, usable as $NAME */

char *
ngx_http_stockprice_request_secret(ngx_conf_t *cf, ngx_array_t **secrets,
    ngx_str_t *arg, ngx_str_t *value)
{
    u_char                        *colon, *p, *eol;
    char                          *rv;
    ngx_str_t                      name, file, content;
    ngx_uint_t                     i;
    ngx_http_stockprice_secret_t  *s;

    colon = ngx_strlchr(value->data, value->data + value->len, ':');

    name.data = value->data;
    name.len = colon ? (size_t) (colon - value->data) : 0;

    for (i = 0; i < name.len; i++) {
        if (!(ngx_http_stockprice_request_alpha(name.data[i])
              || name.data[i] == '_'
              || (i && name.data[i] >= '0' && name.data[i] <= '9')))
        {
            break;
        }
    }

    if (colon == NULL || name.len == 0 || i < name.len
        || colon + 1 == value->data + value->len)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid secret \"%V\": must be NAME:FILE, "
                           "NAME of letters, digits and \"_\"", arg);
        return NGX_CONF_ERROR;
    }

    if ((name.len == 6 && ngx_strncmp(name.data, "symbol", 6) == 0)
        || (name.len == 7 && ngx_strncmp(name.data, "symbols", 7) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid secret \"%V\": \"$%V\" is the module's",
                           arg, &name);
        return NGX_CONF_ERROR;
    }

    if (*secrets == NULL) {
        *secrets = ngx_array_create(cf->pool, 2,
                                    sizeof(ngx_http_stockprice_secret_t));
        if (*secrets == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    s = (*secrets)->elts;

    for (i = 0; i < (*secrets)->nelts; i++) {
        if (s[i].name.len == name.len
            && ngx_strncmp(s[i].name.data, name.data, name.len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate secret \"%V\"", &name);
            return NGX_CONF_ERROR;
        }
    }

    file.data = colon + 1;
    file.len = value->data + value->len - file.data;

    rv = ngx_http_stockprice_conf_read(cf, &file, "secret",
                                       NGX_HTTP_STOCKPRICE_SECRET_MAX,
                                       &content);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    eol = ngx_strlchr(content.data, content.data + content.len, '\n');
    content.len = (eol ? eol : content.data + content.len) - content.data;

    if (content.len && content.data[content.len - 1] == '\r') {
        content.len--;
    }

    for (p = content.data; p < content.data + content.len; p++) {
        if (*p == '\r' || *p == '\0') {
            break;
        }
    }

    if (content.len == 0 || p < content.data + content.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "secret file \"%V\" has an empty first line, or "
                           "one with a CR or NUL", &file);
        return NGX_CONF_ERROR;
    }

    s = ngx_array_push(*secrets);
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    s->name = name;
    s->value = content;

    s->encoded.len = ngx_http_stockprice_render_uri(NULL,
                                                    (char *) content.data,
                                                    content.len);
    s->encoded.data = ngx_pnalloc(cf->pool, s->encoded.len);
    if (s->encoded.data == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_http_stockprice_render_uri((char *) s->encoded.data,
                                          (char *) content.data, content.len);

    return NGX_CONF_OK;
}


/* header=NAME:VALUE, VALUE with $NAME of secrets; put in by _make() */

char *
ngx_http_stockprice_request_header(ngx_conf_t *cf, ngx_array_t **headers,
    ngx_str_t *arg, ngx_str_t *value)
{
    u_char                        *colon, *p;
    ngx_str_t                      name, v;
    ngx_http_stockprice_header_t  *h;

    colon = ngx_strlchr(value->data, value->data + value->len, ':');

    name.data = value->data;
    name.len = colon ? (size_t) (colon - value->data) : 0;

    for (p = name.data; p < name.data + name.len; p++) {
        if (!ngx_http_stockprice_request_tchar(*p)) {
            break;
        }
    }

    if (colon == NULL || name.len == 0 || p < name.data + name.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid header \"%V\": must be NAME:VALUE", arg);
        return NGX_CONF_ERROR;
    }

    v.data = colon + 1;
    v.len = value->data + value->len - v.data;

    while (v.len && (v.data[0] == ' ' || v.data[0] == '\t')) {
        v.data++;
        v.len--;
    }

    for (p = v.data; p < v.data + v.len; p++) {
        if (*p == '\r' || *p == '\n' || *p == '\0') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid header \"%V\": a line break in its "
                               "value", arg);
            return NGX_CONF_ERROR;
        }
    }

    if (*headers == NULL) {
        *headers = ngx_array_create(cf->pool, 2,
                                    sizeof(ngx_http_stockprice_header_t));
        if (*headers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    h = ngx_array_push(*headers);
    if (h == NULL) {
        return NGX_CONF_ERROR;
    }

    h->name = name;
    h->value = v;

    return NGX_CONF_OK;
}


/*
 * feed->parts, the prices requests of a refresh, of the primary URL and
 * then of each backup= (nparts each, in the same order): their URLs
 * (NUL-terminated, the placeholders put in, and "?symbols=LIST" appended
 * if a list is set and neither $symbols nor $symbol is used), one for
 * all symbols, one per "batch" of them, or one per symbol with $symbol;
 * and feed->headers ("Name: value" lines, NUL-terminated)
 */

char *
ngx_http_stockprice_request_make(ngx_conf_t *cf,
    ngx_http_stockprice_feed_t *feed, ngx_str_t *urls, ngx_uint_t nurls,
    ngx_str_t *list, ngx_array_t *symbols, ngx_array_t *secrets,
    ngx_array_t *headers)
{
    u_char                        *p;
    char                          *rv;
    ngx_str_t                      expanded, *line, *url;
    ngx_uint_t                     i, u, which, first, nparts;
    ngx_http_stockprice_part_t    *all;
    ngx_http_stockprice_header_t  *h;

    all = NULL;
    first = 0;
    nparts = 0;

    for (u = 0; u < nurls; u++) {
        url = &urls[u];

        /* which placeholders the URL holds, and whether it expands at all */

        rv = ngx_http_stockprice_request_expand(cf, url, secrets, list, 1,
                                                &expanded, &which);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        if (which == (NGX_HTTP_STOCKPRICE_REQUEST_SYMBOLS
                      | NGX_HTTP_STOCKPRICE_REQUEST_SYMBOL))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"$symbol\" and \"$symbols\" cannot be used "
                               "together in \"%V\"", url);
            return NGX_CONF_ERROR;
        }

        /* a backup asks as the primary does: the same requests */

        if (u == 0) {
            first = which & NGX_HTTP_STOCKPRICE_REQUEST_SYMBOL;

        } else if ((which & NGX_HTTP_STOCKPRICE_REQUEST_SYMBOL) != first) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "backup URL \"%V\" must %suse \"$symbol\" as "
                               "the prices URL does", url,
                               first ? "" : "not ");
            return NGX_CONF_ERROR;
        }

        rv = ngx_http_stockprice_request_parts(cf, feed, url, list, symbols,
                                               secrets, which);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        if (u == 0) {
            nparts = feed->nparts;

            all = ngx_pcalloc(cf->pool, nurls * nparts
                                        * sizeof(ngx_http_stockprice_part_t));
            if (all == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        ngx_memcpy(&all[u * nparts], feed->parts,
                   nparts * sizeof(ngx_http_stockprice_part_t));
    }

    feed->parts = all;
    feed->nparts = nparts;
    feed->nupstreams = nurls;
    feed->url = all[0].url;

    feed->secrets = secrets;

    if (headers == NULL) {
        return NGX_CONF_OK;
    }

    feed->headers = ngx_array_create(cf->pool, headers->nelts,
                                     sizeof(ngx_str_t));
    if (feed->headers == NULL) {
        return NGX_CONF_ERROR;
    }

    h = headers->elts;

    for (i = 0; i < headers->nelts; i++) {
        rv = ngx_http_stockprice_request_expand(cf, &h[i].value, secrets,
                                                list, 0, &expanded, &which);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        line = ngx_array_push(feed->headers);
        if (line == NULL) {
            return NGX_CONF_ERROR;
        }

        line->len = h[i].name.len + 2 + expanded.len;
        line->data = ngx_pnalloc(cf->pool, line->len + 1);
        if (line->data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(line->data, h[i].name.data, h[i].name.len);
        *p++ = ':';
        *p++ = ' ';
        p = ngx_cpymem(p, expanded.data, expanded.len);
        *p = '\0';
    }

    return NGX_CONF_OK;
}


/*
 * One part for all symbols (or none), else one per "batch" symbols (in
 * byte order, each once), or per symbol with $symbol
 */

static char *
ngx_http_stockprice_request_parts(ngx_conf_t *cf,
    ngx_http_stockprice_feed_t *feed, ngx_str_t *url, ngx_str_t *list,
    ngx_array_t *symbols, ngx_array_t *secrets, ngx_uint_t which)
{
    u_char                      *p;
    char                        *rv;
    ngx_str_t                    sub, *sym;
    ngx_uint_t                   i, k, per, n, nsym;
    ngx_http_stockprice_part_t  *part;

    nsym = (list->len && symbols) ? symbols->nelts : 0;
    per = (which == NGX_HTTP_STOCKPRICE_REQUEST_SYMBOL) ? 1 : feed->batch;

    if (nsym == 0 || per == 0 || per >= nsym) {
        /* as the list is written: one request, today's */
        feed->parts = ngx_pcalloc(cf->pool, sizeof(ngx_http_stockprice_part_t));
        if (feed->parts == NULL) {
            return NGX_CONF_ERROR;
        }

        feed->nparts = 1;

        if (which == NGX_HTTP_STOCKPRICE_REQUEST_SYMBOL) {
            sym = symbols->elts;
            feed->parts[0].symbol = sym[0];
        }

        rv = ngx_http_stockprice_request_url(cf, url, list, secrets,
                                             &feed->parts[0].url);
        feed->url = feed->parts[0].url;

        return rv;
    }

    n = (nsym + per - 1) / per;

    feed->parts = ngx_pcalloc(cf->pool, n * sizeof(ngx_http_stockprice_part_t));
    if (feed->parts == NULL) {
        return NGX_CONF_ERROR;
    }

    feed->nparts = n;
    sym = symbols->elts;

    for (k = 0; k < n; k++) {
        part = &feed->parts[k];

        sub.len = 0;

        for (i = k * per; i < nsym && i < (k + 1) * per; i++) {
            sub.len += sym[i].len + 1;
        }

        sub.data = ngx_pnalloc(cf->pool, sub.len);
        if (sub.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = sub.data;

        for (i = k * per; i < nsym && i < (k + 1) * per; i++) {
            if (p > sub.data) {
                *p++ = ',';
            }

            p = ngx_cpymem(p, sym[i].data, sym[i].len);
        }

        sub.len = p - sub.data;

        if (which == NGX_HTTP_STOCKPRICE_REQUEST_SYMBOL) {
            part->symbol = sym[k];
        }

        rv = ngx_http_stockprice_request_url(cf, url, &sub, secrets,
                                             &part->url);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    feed->url = feed->parts[0].url;

    return NGX_CONF_OK;
}


/* a prices URL for the symbols of "list" */

static char *
ngx_http_stockprice_request_url(ngx_conf_t *cf, ngx_str_t *url,
    ngx_str_t *list, ngx_array_t *secrets, ngx_str_t *out)
{
    u_char      *p;
    char        *rv;
    size_t       len;
    ngx_str_t    expanded;
    ngx_uint_t   which;

    rv = ngx_http_stockprice_request_expand(cf, url, secrets, list, 1,
                                            &expanded, &which);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    len = expanded.len + 1;

    if (list->len && !which) {
        len += sizeof("?symbols=") - 1
               + ngx_http_stockprice_request_symbols(NULL, list);
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    out->data = p;
    p = ngx_cpymem(p, expanded.data, expanded.len);

    if (list->len && !which) {
        p = ngx_cpymem(p, ngx_strlchr(expanded.data,
                                      expanded.data + expanded.len, '?')
                          ? "&symbols=" : "?symbols=",
                       sizeof("?symbols=") - 1);
        p += ngx_http_stockprice_request_symbols(p, list);
    }

    out->len = p - out->data;
    *p = '\0';

    return NGX_CONF_OK;
}


/* "tpl" with its placeholders put in, in two passes: measure, then write */

static char *
ngx_http_stockprice_request_expand(ngx_conf_t *cf, ngx_str_t *tpl,
    ngx_array_t *secrets, ngx_str_t *list, ngx_uint_t url, ngx_str_t *out,
    ngx_uint_t *symbols)
{
    u_char      *p, *last, *q;
    char        *rv;
    ngx_str_t    name, value;
    ngx_uint_t   pass;

    *symbols = 0;
    out->len = 0;
    out->data = NULL;
    q = NULL;

    for (pass = 0; pass < 2; pass++) {

        last = tpl->data + tpl->len;

        for (p = tpl->data; p < last; /* void */) {

            if (*p != '$') {
                if (q) {
                    *q++ = *p;
                }

                out->len += (q == NULL);
                p++;
                continue;
            }

            rv = ngx_http_stockprice_request_name(cf, tpl, &p, &name);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            rv = ngx_http_stockprice_request_value(cf, tpl, &name, secrets,
                                                   list, url, &value,
                                                   symbols);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            if (value.data == NULL) {
                /* $symbols: the list, each symbol encoded */
                if (q) {
                    q += ngx_http_stockprice_request_symbols(q, list);

                } else {
                    out->len += ngx_http_stockprice_request_symbols(NULL,
                                                                    list);
                }

                continue;
            }

            if (q) {
                q = ngx_cpymem(q, value.data, value.len);

            } else {
                out->len += value.len;
            }
        }

        if (pass == 0) {
            out->data = ngx_pnalloc(cf->pool, out->len + 1);
            if (out->data == NULL) {
                return NGX_CONF_ERROR;
            }

            q = out->data;
        }
    }

    return NGX_CONF_OK;
}


/* at "$": the name of $name or ${name}, *pos moved past it */

static char *
ngx_http_stockprice_request_name(ngx_conf_t *cf, ngx_str_t *tpl, u_char **pos,
    ngx_str_t *name)
{
    u_char      *p, *last;
    ngx_uint_t   brace;

    p = *pos + 1;
    last = tpl->data + tpl->len;
    brace = (p < last && *p == '{');

    if (brace) {
        p++;
    }

    name->data = p;

    while (p < last
           && (ngx_http_stockprice_request_alpha(*p) || *p == '_'
               || (p > name->data && *p >= '0' && *p <= '9')))
    {
        p++;
    }

    name->len = p - name->data;

    if (name->len == 0 || (brace && (p == last || *p != '}'))) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid placeholder in \"%V\": \"$\" must be "
                           "followed by a name, as $key or ${key}", tpl);
        return NGX_CONF_ERROR;
    }

    *pos = p + brace;

    return NGX_CONF_OK;
}


/*
 * a placeholder's value; data NULL: the symbol list (of one symbol with
 * $symbol), written by the caller
 */

static char *
ngx_http_stockprice_request_value(ngx_conf_t *cf, ngx_str_t *tpl,
    ngx_str_t *name, ngx_array_t *secrets, ngx_str_t *list, ngx_uint_t url,
    ngx_str_t *value, ngx_uint_t *symbols)
{
    ngx_uint_t                     i;
    ngx_http_stockprice_secret_t  *s;

    /* $symbols, or $symbol (the list of one symbol): the caller's */

    if ((name->len == 7 || name->len == 6)
        && ngx_strncmp(name->data, "symbols", name->len) == 0)
    {
        if (!url) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"$%V\" in \"%V\": only the URL may "
                               "hold it", name, tpl);
            return NGX_CONF_ERROR;
        }

        if (list->len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"$%V\" requires \"symbols\" or "
                               "\"symbols_file\"", name);
            return NGX_CONF_ERROR;
        }

        *symbols |= (name->len == 7) ? NGX_HTTP_STOCKPRICE_REQUEST_SYMBOLS
                                     : NGX_HTTP_STOCKPRICE_REQUEST_SYMBOL;
        ngx_str_null(value);

        return NGX_CONF_OK;
    }

    s = secrets ? secrets->elts : NULL;

    for (i = 0; secrets && i < secrets->nelts; i++) {
        if (s[i].name.len == name->len
            && ngx_strncmp(s[i].name.data, name->data, name->len) == 0)
        {
            *value = url ? s[i].encoded : s[i].value;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown \"$%V\" in \"%V\": no \"secret=%V:FILE\"",
                       name, tpl, name);

    return NGX_CONF_ERROR;
}


/* "A,B.C" as the URL has it: each symbol percent-encoded, commas kept */

static size_t
ngx_http_stockprice_request_symbols(u_char *dst, ngx_str_t *list)
{
    u_char  *p, *last, *comma;
    size_t   n;

    n = 0;
    last = list->data + list->len;

    for (p = list->data; p < last; p = comma + 1) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if (p > list->data) {
            if (dst) {
                dst[n] = ',';
            }

            n++;
        }

        n += ngx_http_stockprice_render_uri(dst ? (char *) dst + n : NULL,
                                            (char *) p, comma - p);
    }

    return n;
}


/*
 * Every secret's value, and its URL form, in "buf" as $NAME: a line about
 * a URL or a request never shows one.  Returns the new length (at most
 * "size").
 */

size_t
ngx_http_stockprice_request_scrub(ngx_http_stockprice_feed_t *feed,
    u_char *buf, size_t len, size_t size)
{
    u_char                        *p;
    size_t                         k, n;
    ngx_str_t                     *v;
    ngx_uint_t                     i;
    ngx_http_stockprice_secret_t  *s;

    if (feed->secrets == NULL) {
        return len;
    }

    s = feed->secrets->elts;

    for (i = 0; i < feed->secrets->nelts; i++) {
        for (k = 0; k < 2; k++) {
            v = k ? &s[i].encoded : &s[i].value;

            for (p = buf; v->len && p + v->len <= buf + len; /* void */) {

                if (ngx_memcmp(p, v->data, v->len) != 0) {
                    p++;
                    continue;
                }

                /* "$NAME" in place of the value, the rest moved up */

                n = 1 + s[i].name.len;

                if ((size_t) (p - buf) + n > size) {
                    return p - buf;
                }

                len -= v->len;
                ngx_memmove(p + n, p + v->len,
                            ngx_min(len - (p - buf),
                                    size - (p - buf) - n));
                len = ngx_min(len + n, size);

                *p = '$';
                ngx_memcpy(p + 1, s[i].name.data, s[i].name.len);
                p += n;
            }
        }
    }

    return len;
}


/* a token character of RFC 9110, what a header's name is made of */

static ngx_uint_t
ngx_http_stockprice_request_tchar(u_char c)
{
    return ngx_http_stockprice_request_alpha(c) || (c >= '0' && c <= '9')
           || ngx_strlchr((u_char *) "!#$%&'*+-.^_`|~",
                          (u_char *) "!#$%&'*+-.^_`|~" + 15, c)
              != NULL;
}
