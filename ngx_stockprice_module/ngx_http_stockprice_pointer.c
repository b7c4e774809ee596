
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


/* pointer_scan()'s loop made twice, with "follow" 1 and 0 */

#if defined(__GNUC__)
#define NGX_HTTP_STOCKPRICE_POINTER_INLINE                                    \
    inline __attribute__((always_inline))
#else
#define NGX_HTTP_STOCKPRICE_POINTER_INLINE  inline
#endif

static int ngx_http_stockprice_pointer_find_name(
    const ngx_http_stockprice_pointer_t *p, size_t m, int escaped,
    const char *buf, size_t i, size_t e, size_t len, size_t *value);


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
ngx_http_stockprice_pointer_plain(const ngx_http_stockprice_pointer_t *p)
{
    size_t  k, i;

    if (p->n == 0) {
        return 0;
    }

    for (k = 0; k < p->n; k++) {
        for (i = 0; i < p->len[k]; i++) {
            if ((unsigned char) p->token[k][i] < 0x20
                || p->token[k][i] == '"' || p->token[k][i] == '\\')
            {
                return 0;
            }
        }
    }

    return 1;
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


/*
 * With marks->find, the scan follows it in each element: "m" tokens
 * matched, names of token "m" looked for at depth 2 + m (the element's
 * members are at 2) when "key" says a name comes next at that depth;
 * "done" once "value" is known
 */

typedef struct {
    size_t  m;
    size_t  value;
    int     key;
    int     done;
} ngx_http_stockprice_pointer_follow_t;


static NGX_HTTP_STOCKPRICE_POINTER_INLINE void
ngx_http_stockprice_pointer_follow_reset(
    ngx_http_stockprice_pointer_follow_t *f, const int follow)
{
    f->m = 0;
    f->value = NGX_HTTP_STOCKPRICE_POINTER_NONE;
    f->key = 0;
    f->done = !follow;
}


/* a "[" or "{" that took the scan to "depth" */

static NGX_HTTP_STOCKPRICE_POINTER_INLINE void
ngx_http_stockprice_pointer_follow_open(
    ngx_http_stockprice_pointer_follow_t *f, unsigned char c, size_t depth)
{
    if (f->done || depth != 2 + f->m) {
        return;
    }

    /* the element, or the value of the name matched */

    if (c == '{') {
        f->key = 1;

    } else {
        /* an index, or a name of an array: the walk knows */
        f->value = NGX_HTTP_STOCKPRICE_POINTER_WALK;
        f->done = 1;
    }
}


static NGX_HTTP_STOCKPRICE_POINTER_INLINE size_t
ngx_http_stockprice_pointer_scan_loop(const char *buf, size_t start,
    size_t len, size_t budget, int *last,
    ngx_http_stockprice_pointer_marks_t *marks, const int follow)
{
    int                                    escaped, rc;
    size_t                                 i, e, depth;
    unsigned char                          c;
    const ngx_http_stockprice_pointer_t   *find;
    ngx_http_stockprice_pointer_follow_t   f;

    depth = 1;
    *last = 0;

    find = follow ? marks->find : NULL;
    escaped = follow ? marks->escaped : 1;

    ngx_http_stockprice_pointer_follow_reset(&f, follow);

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
            e = ngx_http_stockprice_pointer_string_end(buf, i, len);

            if (e == NGX_HTTP_STOCKPRICE_POINTER_NONE) {
                return len;
            }

            if (follow && f.key && depth == 2 + f.m) {
                f.key = 0;

                rc = ngx_http_stockprice_pointer_find_name(find, f.m, escaped,
                                                           buf, i, e, len,
                                                           &f.value);
                f.m += (rc == 1);
                f.done |= (rc == 2);
            }

            i = e;
            continue;
        }

        if (c == '[' || c == '{') {
            depth++;

            if (follow) {
                ngx_http_stockprice_pointer_follow_open(&f, c, depth);
            }

            continue;
        }

        if (c == ']' || c == '}') {
            if (--depth == 0) {
                *last = 1;
                break;
            }

            if (follow && !f.done && depth == 1 + f.m) {
                /* the object closed without the name: not there */
                f.done = 1;
                f.key = 0;
            }

            continue;
        }

        /* "," */

        if (depth == 1) {
            if (i - start >= budget
                || (marks && marks->n == NGX_HTTP_STOCKPRICE_POINTER_MARKS))
            {
                break;
            }

            if (marks) {
                marks->value[marks->n] = f.value;
                marks->at[marks->n++] = i;

                ngx_http_stockprice_pointer_follow_reset(&f, follow);
            }

        } else if (follow && !f.done && depth == 2 + f.m) {
            f.key = 1;
        }
    }

    if (marks) {
        marks->value[marks->n] = f.value;
    }

    return i;
}


size_t
ngx_http_stockprice_pointer_scan(const char *buf, size_t start, size_t len,
    size_t budget, int *last, ngx_http_stockprice_pointer_marks_t *marks)
{
    /* the loop twice, so that a scan without "find" pays nothing for it */

    if (marks && marks->find) {
        return ngx_http_stockprice_pointer_scan_loop(buf, start, len, budget,
                                                     last, marks, 1);
    }

    return ngx_http_stockprice_pointer_scan_loop(buf, start, len, budget,
                                                 last, marks, 0);
}


/*
 * A name at the depth of token "m", the string buf[i..e]: 0 if it is not
 * the token; if it is, the value after it is the one looked for (2, at
 * *value), or holds it (1: an object), or tells no more (2: NONE, or
 * WALK for the walk to say)
 */

static int
ngx_http_stockprice_pointer_find_name(const ngx_http_stockprice_pointer_t *p,
    size_t m, int escaped, const char *buf, size_t i, size_t e, size_t len,
    size_t *value)
{
    size_t  j, v;

    if (escaped) {
        /* a body with escapes: a name with one is for the walk to read */

        for (j = i + 1; j < e && buf[j] != '\\'; j++) { /* void */ }

        if (j < e) {
            *value = NGX_HTTP_STOCKPRICE_POINTER_WALK;
            return 2;
        }
    }

    if (e - i - 1 != p->len[m]
        || memcmp(buf + i + 1, p->token[m], e - i - 1) != 0)
    {
        return 0;
    }

    /* the first member of the name counts, as in cJSON */

    v = ngx_http_stockprice_pointer_space(buf, e + 1, len);

    if (v < len && buf[v] == ':') {
        v = ngx_http_stockprice_pointer_space(buf, v + 1, len);

    } else {
        /* not well formed: for the walk (and cJSON) to say */
        v = len;
    }

    if (v >= len) {
        *value = NGX_HTTP_STOCKPRICE_POINTER_WALK;
        return 2;
    }

    if (m + 1 == p->n) {
        *value = v;
        return 2;
    }

    if (buf[v] == '{') {
        /* the scan goes in next: names of token m + 1 there */
        return 1;
    }

    /* an array: the walk; anything else holds no more names */

    *value = (buf[v] == '[') ? NGX_HTTP_STOCKPRICE_POINTER_WALK
                             : NGX_HTTP_STOCKPRICE_POINTER_NONE;
    return 2;
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
