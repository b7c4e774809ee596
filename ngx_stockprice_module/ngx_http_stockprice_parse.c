
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>


typedef struct {
    ngx_http_stockprice_record_t    rec;
    size_t                          index;
} ngx_http_stockprice_sortable_t;


static void ngx_http_stockprice_patch_nul(char *buf, size_t len);
static int ngx_http_stockprice_utf8_valid(const unsigned char *s, size_t len);
static int ngx_http_stockprice_numeric(const char *s, double *value);
static const char *ngx_http_stockprice_digits_end(const char *p);
static int ngx_http_stockprice_record(const cJSON *item,
    ngx_http_stockprice_record_t *rec, ngx_http_stockprice_parse_stats_t *st);
static int ngx_http_stockprice_wanted(const ngx_http_stockprice_str_t *filter,
    size_t nfilter, const char *s, size_t len);
static int ngx_http_stockprice_cmp_sortable(const void *one, const void *two);


int
ngx_http_stockprice_symbol_cmp(const char *a, size_t alen, const char *b,
    size_t blen)
{
    int  rc;

    rc = memcmp(a, b, alen < blen ? alen : blen);

    if (rc != 0) {
        return rc;
    }

    return (alen > blen) - (alen < blen);
}


int
ngx_http_stockprice_symbol_valid(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_STOCKPRICE_SYMBOL_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            return 0;
        }
    }

    return ngx_http_stockprice_utf8_valid((const unsigned char *) s, len);
}


int
ngx_http_stockprice_parse_prices(char *buf, size_t len,
    const ngx_http_stockprice_str_t *filter, size_t nfilter,
    ngx_http_stockprice_record_t **records, size_t *nrecords,
    ngx_http_stockprice_parse_stats_t *stats)
{
    int                              n;
    size_t                           i, j, count;
    cJSON                           *root, *item;
    ngx_http_stockprice_record_t    *out;
    ngx_http_stockprice_sortable_t  *all;

    memset(stats, 0, sizeof(ngx_http_stockprice_parse_stats_t));
    *records = NULL;
    *nrecords = 0;

    ngx_http_stockprice_patch_nul(buf, len);

    root = cJSON_ParseWithLength(buf, len);
    if (root == NULL) {
        return NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON;
    }

    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY;
    }

    n = cJSON_GetArraySize(root);
    stats->total = (size_t) n;

    if (n == 0) {
        cJSON_Delete(root);
        return NGX_HTTP_STOCKPRICE_PARSE_OK;
    }

    all = malloc((size_t) n * sizeof(ngx_http_stockprice_sortable_t));
    if (all == NULL) {
        cJSON_Delete(root);
        return NGX_HTTP_STOCKPRICE_PARSE_NOMEM;
    }

    count = 0;

    cJSON_ArrayForEach(item, root) {
        if (!ngx_http_stockprice_record(item, &all[count].rec, stats)) {
            continue;
        }

        if (nfilter
            && !ngx_http_stockprice_wanted(filter, nfilter,
                                           all[count].rec.symbol,
                                           all[count].rec.symbol_len))
        {
            stats->filtered++;
            continue;
        }

        all[count].index = count;
        count++;
    }

    cJSON_Delete(root);

    if (count == 0) {
        free(all);
        return NGX_HTTP_STOCKPRICE_PARSE_OK;
    }

    qsort(all, count, sizeof(ngx_http_stockprice_sortable_t),
          ngx_http_stockprice_cmp_sortable);

    out = malloc(count * sizeof(ngx_http_stockprice_record_t));
    if (out == NULL) {
        free(all);
        return NGX_HTTP_STOCKPRICE_PARSE_NOMEM;
    }

    /* of a run of one symbol, sorted by position, the last one wins */

    for (i = 0, j = 0; i < count; i++) {
        if (i + 1 < count
            && ngx_http_stockprice_symbol_cmp(all[i].rec.symbol,
                                              all[i].rec.symbol_len,
                                              all[i + 1].rec.symbol,
                                              all[i + 1].rec.symbol_len)
               == 0)
        {
            stats->duplicate++;
            continue;
        }

        out[j++] = all[i].rec;
    }

    free(all);

    stats->accepted = j;
    *records = out;
    *nrecords = j;

    return NGX_HTTP_STOCKPRICE_PARSE_OK;
}


static int
ngx_http_stockprice_record(const cJSON *item,
    ngx_http_stockprice_record_t *rec, ngx_http_stockprice_parse_stats_t *st)
{
    size_t        len;
    const cJSON  *v;

    if (!cJSON_IsObject(item)) {
        st->not_object++;
        return 0;
    }

    memset(rec, 0, sizeof(ngx_http_stockprice_record_t));

    v = cJSON_GetObjectItemCaseSensitive(item, "symbol");

    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        st->bad_symbol++;
        return 0;
    }

    len = strlen(v->valuestring);

    if (!ngx_http_stockprice_symbol_valid(v->valuestring, len)) {
        st->bad_symbol++;
        return 0;
    }

    memcpy(rec->symbol, v->valuestring, len);
    rec->symbol_len = len;

    v = cJSON_GetObjectItemCaseSensitive(item, "price");

    if (cJSON_IsNumber(v)) {
        rec->price = v->valuedouble;

    } else if (!cJSON_IsString(v) || v->valuestring == NULL
               || !ngx_http_stockprice_numeric(v->valuestring, &rec->price))
    {
        st->bad_price++;
        return 0;
    }

    if (!isfinite(rec->price)) {
        st->bad_price++;
        return 0;
    }

    v = cJSON_GetObjectItemCaseSensitive(item, "valueDateTime");

    if (v) {
        len = cJSON_IsString(v) && v->valuestring
              ? strlen(v->valuestring) : 0;

        if (len && ngx_http_stockprice_time_valid(v->valuestring, len)) {
            memcpy(rec->value_time, v->valuestring, len);
            rec->value_time_len = len;

        } else {
            st->bad_time++;
        }
    }

    v = cJSON_GetObjectItemCaseSensitive(item, "id");

    if (v) {
        len = cJSON_IsString(v) && v->valuestring
              ? strlen(v->valuestring) : 0;

        if (len && ngx_http_stockprice_uuid_valid(v->valuestring, len)) {
            memcpy(rec->id, v->valuestring, len);
            rec->has_id = 1;

        } else {
            st->bad_id++;
        }
    }

    return 1;
}


/* a decimal number as JSON writes it, optionally signed; nothing else */

static int
ngx_http_stockprice_numeric(const char *s, double *value)
{
    char        *end;
    const char  *p;

    p = s;

    if (*p == '-' || *p == '+') {
        p++;
    }

    p = ngx_http_stockprice_digits_end(p);

    if (p && *p == '.') {
        p = ngx_http_stockprice_digits_end(p + 1);
    }

    if (p && (*p == 'e' || *p == 'E')) {
        p++;

        if (*p == '-' || *p == '+') {
            p++;
        }

        p = ngx_http_stockprice_digits_end(p);
    }

    if (p == NULL || *p != '\0') {
        return 0;
    }

    *value = strtod(s, &end);

    return end == p;
}


/* past one or more digits, or NULL if there is none */

static const char *
ngx_http_stockprice_digits_end(const char *p)
{
    if (*p < '0' || *p > '9') {
        return NULL;
    }

    while (*p >= '0' && *p <= '9') {
        p++;
    }

    return p;
}


static int
ngx_http_stockprice_wanted(const ngx_http_stockprice_str_t *filter,
    size_t nfilter, const char *s, size_t len)
{
    int     rc;
    size_t  lo, hi, mid;

    lo = 0;
    hi = nfilter;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        rc = ngx_http_stockprice_symbol_cmp(filter[mid].data, filter[mid].len,
                                            s, len);
        if (rc == 0) {
            return 1;
        }

        if (rc < 0) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return 0;
}


static int
ngx_http_stockprice_cmp_sortable(const void *one, const void *two)
{
    int                                    rc;
    const ngx_http_stockprice_sortable_t  *a = one;
    const ngx_http_stockprice_sortable_t  *b = two;

    rc = ngx_http_stockprice_symbol_cmp(a->rec.symbol, a->rec.symbol_len,
                                        b->rec.symbol, b->rec.symbol_len);
    if (rc != 0) {
        return rc;
    }

    return (a->index > b->index) - (a->index < b->index);
}


/*
 * cJSON turns "\u0000" into a NUL that cuts its C string short: make it
 * "\u0001", a control character that the symbol check refuses.
 */

static void
ngx_http_stockprice_patch_nul(char *buf, size_t len)
{
    char  *p, *last;

    p = buf;
    last = buf + len;

    while (p < last) {
        p = memchr(p, '\\', last - p);

        if (p == NULL) {
            return;
        }

        if (last - p >= 6 && p[1] == 'u' && p[2] == '0' && p[3] == '0'
            && p[4] == '0' && p[5] == '0')
        {
            p[5] = '1';
            p += 6;
            continue;
        }

        /* skip the escaped character, a backslash included */
        p += 2;
    }
}


static int
ngx_http_stockprice_utf8_valid(const unsigned char *s, size_t len)
{
    size_t    i, n, k;
    uint32_t  cp, min;

    for (i = 0; i < len; i += n) {

        if (s[i] < 0x80) {
            n = 1;
            continue;
        }

        if ((s[i] & 0xe0) == 0xc0) {
            n = 2; cp = s[i] & 0x1f; min = 0x80;

        } else if ((s[i] & 0xf0) == 0xe0) {
            n = 3; cp = s[i] & 0x0f; min = 0x800;

        } else if ((s[i] & 0xf8) == 0xf0) {
            n = 4; cp = s[i] & 0x07; min = 0x10000;

        } else {
            return 0;
        }

        if (i + n > len) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            cp = (cp << 6) | (s[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
    }

    return 1;
}


int
ngx_http_stockprice_parse_token(const char *buf, size_t len, char **token,
    size_t *token_len, long *expires_in)
{
    size_t        i, n;
    cJSON        *root;
    const cJSON  *v;

    *token = NULL;
    *token_len = 0;
    *expires_in = -1;

    root = cJSON_ParseWithLength(buf, len);
    if (root == NULL) {
        return NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON;
    }

    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return NGX_HTTP_STOCKPRICE_PARSE_NOT_OBJECT;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "token");

    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        cJSON_Delete(root);
        return NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN;
    }

    n = strlen(v->valuestring);

    if (n == 0 || n > NGX_HTTP_STOCKPRICE_TOKEN_MAX) {
        cJSON_Delete(root);
        return NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN;
    }

    for (i = 0; i < n; i++) {
        if (v->valuestring[i] < 0x21 || v->valuestring[i] > 0x7e) {
            cJSON_Delete(root);
            return NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN;
        }
    }

    *token = malloc(n);
    if (*token == NULL) {
        cJSON_Delete(root);
        return NGX_HTTP_STOCKPRICE_PARSE_NOMEM;
    }

    memcpy(*token, v->valuestring, n);
    *token_len = n;

    v = cJSON_GetObjectItemCaseSensitive(root, "expiresIn");

    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)
        && v->valuedouble >= 1)
    {
        *expires_in = v->valuedouble > 315360000.0
                      ? 315360000L : (long) v->valuedouble;
    }

    cJSON_Delete(root);

    return NGX_HTTP_STOCKPRICE_PARSE_OK;
}


int
ngx_http_stockprice_parse_credentials(const char *buf, size_t len,
    ngx_http_stockprice_str_t *user, ngx_http_stockprice_str_t *password)
{
    const char  *eol, *colon;

    eol = memchr(buf, '\n', len);

    if (eol) {
        len = eol - buf;
    }

    if (len && buf[len - 1] == '\r') {
        len--;
    }

    colon = memchr(buf, ':', len);

    if (colon == NULL || colon == buf) {
        return -1;
    }

    user->data = buf;
    user->len = colon - buf;
    password->data = colon + 1;
    password->len = buf + len - (colon + 1);

    return 0;
}


int
ngx_http_stockprice_parse_check_credentials(const char *buf, size_t len,
    const ngx_http_stockprice_str_t *user,
    const ngx_http_stockprice_str_t *password)
{
    int           ok;
    char         *copy;
    cJSON        *root;
    const cJSON  *u, *p;

    copy = malloc(len + 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, buf, len);
    ngx_http_stockprice_patch_nul(copy, len);

    root = cJSON_ParseWithLength(copy, len);
    free(copy);

    if (root == NULL) {
        return 0;
    }

    u = cJSON_GetObjectItemCaseSensitive(root, "username");
    p = cJSON_GetObjectItemCaseSensitive(root, "password");

    ok = cJSON_IsString(u) && u->valuestring
         && cJSON_IsString(p) && p->valuestring
         && strlen(u->valuestring) == user->len
         && memcmp(u->valuestring, user->data, user->len) == 0
         && strlen(p->valuestring) == password->len
         && memcmp(p->valuestring, password->data, password->len) == 0;

    cJSON_Delete(root);

    return ok;
}
