
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <stdlib.h>
#include <string.h>

#include <ngx_http_stockprice_pointer.h>




static size_t ngx_http_stockprice_pointer_member(
    const ngx_http_stockprice_pointer_t *p, size_t k, const char *buf,
    size_t i, size_t len);
static size_t ngx_http_stockprice_pointer_element(
    const ngx_http_stockprice_pointer_t *p, size_t k, const char *buf,
    size_t i, size_t len);
static int ngx_http_stockprice_pointer_key_is(const char *raw, size_t len,
    const char *token, size_t tlen);
static size_t ngx_http_stockprice_pointer_string_end(const char *buf,
    size_t i, size_t len);
static size_t ngx_http_stockprice_pointer_value_end(const char *buf,
    size_t i, size_t len);
static size_t ngx_http_stockprice_pointer_after(const char *buf, size_t i,
    size_t len);
static size_t ngx_http_stockprice_pointer_name_value(const char *buf,
    size_t i, size_t len, size_t *name, size_t *e);
static size_t ngx_http_stockprice_pointer_space(const char *buf, size_t i,
    size_t len);
static long ngx_http_stockprice_pointer_index(const char *token, size_t len);


/* the bytes that cut or nest values */

static const unsigned char  ngx_http_stockprice_pointer_structural[256] = {
    ['"'] = 1, [','] = 1, ['['] = 1, [']'] = 1, ['{'] = 1, ['}'] = 1
};


int
ngx_http_stockprice_pointer_compile(ngx_http_stockprice_pointer_t *p,
    const char *s, size_t len, char *out)
{
    size_t  i;

    memset(p, 0, sizeof(ngx_http_stockprice_pointer_t));

    out[0] = '\0';

    if (len == 0) {
        return NGX_HTTP_STOCKPRICE_POINTER_OK;
    }

    if (s[0] != '/') {
        return NGX_HTTP_STOCKPRICE_POINTER_NO_SLASH;
    }

    for (i = 0; i < len; i++) {

        if (s[i] == '/') {
            if (p->n == NGX_HTTP_STOCKPRICE_POINTER_DEPTH) {
                return NGX_HTTP_STOCKPRICE_POINTER_DEEP;
            }

            if (p->n) {
                *out++ = '\0';
            }

            p->token[p->n++] = out;
            continue;
        }

        if (s[i] == '\0') {
            return NGX_HTTP_STOCKPRICE_POINTER_NUL;
        }

        if (s[i] == '~') {
            if (i + 1 == len || (s[i + 1] != '0' && s[i + 1] != '1')) {
                return NGX_HTTP_STOCKPRICE_POINTER_ESCAPE;
            }

            *out++ = (s[++i] == '0') ? '~' : '/';
            p->len[p->n - 1]++;
            continue;
        }

        *out++ = s[i];
        p->len[p->n - 1]++;
    }

    *out = '\0';

    return NGX_HTTP_STOCKPRICE_POINTER_OK;
}


void
ngx_http_stockprice_pointer_name(ngx_http_stockprice_pointer_t *p,
    const char *name)
{
    memset(p, 0, sizeof(ngx_http_stockprice_pointer_t));

    p->n = 1;
    p->token[0] = name;
    p->len[0] = strlen(name);
}


const cJSON *
ngx_http_stockprice_pointer_get(const ngx_http_stockprice_pointer_t *p,
    size_t from, const cJSON *v)
{
    long          n;
    size_t        k;
    const cJSON  *c;

    for (k = from; k < p->n && v; k++) {

        if (cJSON_IsObject(v)) {
            for (c = v->child; c; c = c->next) {
                if (c->string && strcmp(c->string, p->token[k]) == 0) {
                    break;
                }
            }

            v = c;
            continue;
        }

        if (!cJSON_IsArray(v)) {
            return NULL;
        }

        n = ngx_http_stockprice_pointer_index(p->token[k], p->len[k]);

        for (c = v->child; c && n > 0; c = c->next, n--) { /* void */ }

        v = (n == 0) ? c : NULL;
    }

    return v;
}


int
ngx_http_stockprice_pointer_same(const ngx_http_stockprice_pointer_t *a,
    const ngx_http_stockprice_pointer_t *b)
{
    size_t  k;

    if (a->n != b->n) {
        return 0;
    }

    for (k = 0; k < a->n; k++) {
        if (a->len[k] != b->len[k]
            || memcmp(a->token[k], b->token[k], a->len[k]) != 0)
        {
            return 0;
        }
    }

    return 1;
}


int
ngx_http_stockprice_pointer_token_is(const ngx_http_stockprice_pointer_t *p,
    size_t i, const char *name)
{
    return name[0] == p->token[i][0] && strcmp(name, p->token[i]) == 0;
}


size_t
ngx_http_stockprice_pointer_locate(const ngx_http_stockprice_pointer_t *p,
    const char *buf, size_t len)
{
    size_t  i, k;

    i = ngx_http_stockprice_pointer_space(buf, 0, len);

    for (k = 0; k < p->n; k++) {

        if (i >= len) {
            return NGX_HTTP_STOCKPRICE_POINTER_NONE;
        }

        if (buf[i] == '{') {
            i = ngx_http_stockprice_pointer_member(p, k, buf, i + 1, len);

        } else if (buf[i] == '[') {
            i = ngx_http_stockprice_pointer_element(p, k, buf, i + 1, len);

        } else {
            return NGX_HTTP_STOCKPRICE_POINTER_NONE;
        }

        if (i == NGX_HTTP_STOCKPRICE_POINTER_NONE) {
            return i;
        }
    }

    return (i < len) ? i : NGX_HTTP_STOCKPRICE_POINTER_NONE;
}


/* the value of the first member named by token k, from after the "{" */

static size_t
ngx_http_stockprice_pointer_member(const ngx_http_stockprice_pointer_t *p,
    size_t k, const char *buf, size_t i, size_t len)
{
    size_t  v, name, e;

    for ( ;; ) {
        /* "}": not there; anything else but a member: not well formed */

        v = ngx_http_stockprice_pointer_name_value(buf, i, len, &name, &e);

        if (v == NGX_HTTP_STOCKPRICE_POINTER_NONE) {
            return v;
        }

        if (ngx_http_stockprice_pointer_key_is(buf + name + 1, e - name - 1,
                                               p->token[k], p->len[k]))
        {
            return v;
        }

        i = ngx_http_stockprice_pointer_after(buf, v, len);

        if (i == NGX_HTTP_STOCKPRICE_POINTER_NONE) {
            return i;
        }
    }
}


/* the element that token k numbers, from after the "[" */

static size_t
ngx_http_stockprice_pointer_element(const ngx_http_stockprice_pointer_t *p,
    size_t k, const char *buf, size_t i, size_t len)
{
    long  n;

    n = ngx_http_stockprice_pointer_index(p->token[k], p->len[k]);

    if (n < 0) {
        return NGX_HTTP_STOCKPRICE_POINTER_NONE;
    }

    for ( ;; ) {
        i = ngx_http_stockprice_pointer_space(buf, i, len);

        if (i >= len || buf[i] == ']') {
            return NGX_HTTP_STOCKPRICE_POINTER_NONE;
        }

        if (n-- == 0) {
            return i;
        }

        i = ngx_http_stockprice_pointer_after(buf, i, len);

        if (i == NGX_HTTP_STOCKPRICE_POINTER_NONE) {
            return i;
        }
    }
}


/* past the value at buf[i] and the "," after it; NONE if no "," follows */

static size_t
ngx_http_stockprice_pointer_after(const char *buf, size_t i, size_t len)
{
    i = ngx_http_stockprice_pointer_value_end(buf, i, len);
    i = ngx_http_stockprice_pointer_space(buf, i, len);

    if (i >= len || buf[i] != ',') {
        return NGX_HTTP_STOCKPRICE_POINTER_NONE;
    }

    return i + 1;
}


size_t
ngx_http_stockprice_pointer_member_value(const char *buf, size_t i,
    size_t len)
{
    size_t  name, e;

    return ngx_http_stockprice_pointer_name_value(buf, i, len, &name, &e);
}


/*
 * The member at buf[i] (blanks before it skipped): its name's quotes at
 * *name and *e, and the return the offset of its value; NONE if no member
 * starts there
 */

static size_t
ngx_http_stockprice_pointer_name_value(const char *buf, size_t i,
    size_t len, size_t *name, size_t *e)
{
    i = ngx_http_stockprice_pointer_space(buf, i, len);

    if (i >= len || buf[i] != '"') {
        return NGX_HTTP_STOCKPRICE_POINTER_NONE;
    }

    *name = i;
    *e = ngx_http_stockprice_pointer_string_end(buf, i, len);

    if (*e == NGX_HTTP_STOCKPRICE_POINTER_NONE) {
        return *e;
    }

    i = ngx_http_stockprice_pointer_space(buf, *e + 1, len);

    if (i >= len || buf[i] != ':') {
        return NGX_HTTP_STOCKPRICE_POINTER_NONE;
    }

    return ngx_http_stockprice_pointer_space(buf, i + 1, len);
}


size_t
ngx_http_stockprice_pointer_next(const char *buf, size_t i, size_t len,
    int object, size_t *value)
{
    i = object ? ngx_http_stockprice_pointer_member_value(buf, i, len)
               : ngx_http_stockprice_pointer_space(buf, i, len);

    if (i >= len) {
        return NGX_HTTP_STOCKPRICE_POINTER_NONE;
    }

    *value = i;

    i = ngx_http_stockprice_pointer_value_end(buf, i, len);
    i = ngx_http_stockprice_pointer_space(buf, i, len);

    if (i >= len
        || (buf[i] != ',' && buf[i] != (object ? '}' : ']')))
    {
        return NGX_HTTP_STOCKPRICE_POINTER_NONE;
    }

    return i;
}


/* a member name as written (escapes and all) against a token */

static int
ngx_http_stockprice_pointer_key_is(const char *raw, size_t len,
    const char *token, size_t tlen)
{
    int     match;
    size_t  j;
    cJSON  *key;

    for (j = 0; j < len && raw[j] != '\\'; j++) { /* void */ }

    if (j == len) {
        return len == tlen && memcmp(raw, token, len) == 0;
    }

    /* escaped: rare, and cJSON knows best what it means */

    key = cJSON_ParseWithLength(raw - 1, len + 2);

    match = cJSON_IsString(key) && key->valuestring
            && strcmp(key->valuestring, token) == 0;

    cJSON_Delete(key);

    return match;
}


/* the closing quote of the string that starts at buf[i] */

static size_t
ngx_http_stockprice_pointer_string_end(const char *buf, size_t i, size_t len)
{
    const char  *q, *e;

    for ( ;; ) {
        q = memchr(buf + i + 1, '"', len - i - 1);

        if (q == NULL) {
            return NGX_HTTP_STOCKPRICE_POINTER_NONE;
        }

        i = q - buf;

        /* one after an even run of "\" */

        for (e = q - 1; *e == '\\'; e--) { /* void */ }

        if ((q - e) % 2 == 1) {
            return i;
        }
    }
}


/* the offset after the value that starts at buf[i] */

static size_t
ngx_http_stockprice_pointer_value_end(const char *buf, size_t i, size_t len)
{
    int     last;
    size_t  e;

    if (i >= len) {
        return len;
    }

    if (buf[i] == '"') {
        e = ngx_http_stockprice_pointer_string_end(buf, i, len);
        return (e == NGX_HTTP_STOCKPRICE_POINTER_NONE) ? len : e + 1;
    }

    if (buf[i] == '[' || buf[i] == '{') {
        e = ngx_http_stockprice_pointer_scan(buf, i + 1, len, (size_t) -1,
                                             &last, NULL);
        return (e < len) ? e + 1 : len;
    }

    while (i < len
           && !ngx_http_stockprice_pointer_structural[(unsigned char) buf[i]]
           && buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n'
           && buf[i] != '\r')
    {
        i++;
    }

    return i;
}


size_t
ngx_http_stockprice_pointer_scan(const char *buf, size_t start, size_t len,
    size_t budget, int *last, ngx_http_stockprice_pointer_marks_t *marks)
{
    size_t         i, depth;
    unsigned char  c;

    depth = 1;
    *last = 0;

    for (i = start; i < len; i++) {

        /* most bytes mean nothing here: skip them by the table */

        while (ngx_http_stockprice_pointer_structural[(unsigned char) buf[i]]
               == 0)
        {
            if (++i == len) {
                return len;
            }
        }

        c = (unsigned char) buf[i];

        if (c == '"') {
            i = ngx_http_stockprice_pointer_string_end(buf, i, len);

            if (i == NGX_HTTP_STOCKPRICE_POINTER_NONE) {
                return len;
            }

            continue;
        }

        if (c == '[' || c == '{') {
            depth++;
            continue;
        }

        if (c == ']' || c == '}') {
            if (--depth == 0) {
                *last = 1;
                return i;
            }

            continue;
        }

        /* "," */

        if (depth == 1) {
            if (i - start >= budget) {
                break;
            }

            if (marks) {
                if (marks->n == NGX_HTTP_STOCKPRICE_POINTER_MARKS) {
                    break;
                }

                marks->at[marks->n++] = i;
            }
        }
    }

    return i;
}


static size_t
ngx_http_stockprice_pointer_space(const char *buf, size_t i, size_t len)
{
    while (i < len
           && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n'
               || buf[i] == '\r'))
    {
        i++;
    }

    return i;
}


/* an array index token: "0" or digits without a leading zero; else -1 */

static long
ngx_http_stockprice_pointer_index(const char *token, size_t len)
{
    long    n;
    size_t  i;

    if (len == 0 || len > 9 || (token[0] == '0' && len > 1)) {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (token[i] < '0' || token[i] > '9') {
            return -1;
        }

        n = n * 10 + (token[i] - '0');
    }

    return n;
}
