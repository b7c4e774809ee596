
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>


#define NGX_HTTP_STOCKPRICE_EXPIRES_MAX  315360000  /* 10 years */

/* the arena's block is kept between parses up to this size */
#define NGX_HTTP_STOCKPRICE_ARENA_KEEP   (16 * 1024 * 1024)


/* the fields of a record object that the parser reads */

typedef struct {
    const cJSON                    *symbol;
    const cJSON                    *price;
    const cJSON                    *vtime;
    const cJSON                    *id;
} ngx_http_stockprice_fields_t;


typedef struct ngx_http_stockprice_chunk_s  ngx_http_stockprice_chunk_t;

struct ngx_http_stockprice_chunk_s {
    ngx_http_stockprice_chunk_t    *next;
    size_t                          size;
    size_t                          used;
};


/*
 * cJSON's nodes and strings of one prices body: some 30,000 small
 * allocations for 5,000 records, freed all at once.  cJSON's hooks take
 * no context, so the arena is this file's only state: the parse of one
 * body at a time, as in an nginx worker.
 */

typedef struct {
    ngx_http_stockprice_chunk_t    *block;      /* kept between parses */
    ngx_http_stockprice_chunk_t    *extra;      /* when the block is full */
    size_t                          wanted;     /* for the next block */
} ngx_http_stockprice_arena_t;


static void ngx_http_stockprice_parse_arena_start(size_t len);
static void ngx_http_stockprice_parse_arena_end(cJSON *root);
static void *ngx_http_stockprice_parse_arena_alloc(size_t size);
static void ngx_http_stockprice_parse_arena_free(void *p);
static cJSON *ngx_http_stockprice_parse_json(const char *buf, size_t len);
static size_t ngx_http_stockprice_parse_skip_space(const char *buf, size_t i,
    size_t len);
static int ngx_http_stockprice_parse_whole(ngx_http_stockprice_parser_t *p);
static int ngx_http_stockprice_parse_slice(ngx_http_stockprice_parser_t *p,
    size_t start, size_t i, cJSON **rootp);
static int ngx_http_stockprice_parse_rest(ngx_http_stockprice_parser_t *p,
    size_t end);
static size_t ngx_http_stockprice_parse_epoch_double(char *buf, double value,
    ngx_http_stockprice_time_unit_e unit);
static int ngx_http_stockprice_parse_blank(ngx_http_stockprice_parser_t *p,
    size_t start, size_t end, int keyed);
static void ngx_http_stockprice_parse_unblank(
    ngx_http_stockprice_parser_t *p);
static int ngx_http_stockprice_parse_items(ngx_http_stockprice_parser_t *p,
    const cJSON *root, int keyed, size_t raw);
static char *ngx_http_stockprice_parse_copy(const char *buf, size_t len);
static void ngx_http_stockprice_parse_wipe(char *buf, size_t len);
static int ngx_http_stockprice_parse_patch(char *buf, size_t len);
static int ngx_http_stockprice_parse_escape(const char *p, const char *end);
static long ngx_http_stockprice_parse_hex4(const char *p, const char *end);
static int ngx_http_stockprice_parse_record(ngx_http_stockprice_parser_t *p,
    const cJSON *item, const char *key, ngx_http_stockprice_record_t *rec);
static int ngx_http_stockprice_parse_symbol(ngx_http_stockprice_parser_t *p,
    const cJSON *v, const char *key, ngx_http_stockprice_record_t *rec);
static void ngx_http_stockprice_parse_time(ngx_http_stockprice_parser_t *p,
    const cJSON *v, ngx_http_stockprice_record_t *rec);
static int ngx_http_stockprice_parse_digits(const char *s, size_t n, int min,
    int max);
static int ngx_http_stockprice_parse_answer(const char *buf, size_t len,
    int oauth, char **token, size_t *token_len, long *expires_in);
static void ngx_http_stockprice_parse_fields(
    const ngx_http_stockprice_shape_t *shape, const cJSON *item,
    ngx_http_stockprice_fields_t *f);
static int ngx_http_stockprice_parse_numeric(const char *s, double *value);
static size_t ngx_http_stockprice_parse_number_end(const char *s, size_t len);
static int ngx_http_stockprice_parse_utf8_valid(const unsigned char *s,
    size_t len);
static int ngx_http_stockprice_parse_cmp_records(const void *one,
    const void *two);
static int ngx_http_stockprice_parse_string_equal(const cJSON *v,
    const ngx_http_stockprice_str_t *s);


static ngx_http_stockprice_arena_t  ngx_http_stockprice_parse_arena;


/* the original service's shape */

static const ngx_http_stockprice_shape_t  ngx_http_stockprice_parse_default = {
    .symbol = { 1, { "symbol" }, { sizeof("symbol") - 1 } },
    .price = { 1, { "price" }, { sizeof("price") - 1 } },
    .time = { 1, { "valueDateTime" }, { sizeof("valueDateTime") - 1 } },
    .time_unit = NGX_HTTP_STOCKPRICE_TIME_ISO
};


/* time_field= units, by ngx_http_stockprice_time_unit_e */

static const char  *ngx_http_stockprice_parse_units[] = {
    "iso", "s", "ms", "us", "ns"
};


int
ngx_http_stockprice_parse_symbol_cmp(const char *a, size_t alen, const char *b,
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
ngx_http_stockprice_parse_symbol_valid(const char *s, size_t len)
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

    return ngx_http_stockprice_parse_utf8_valid((const unsigned char *) s, len);
}


int
ngx_http_stockprice_parse_uuid_valid(const char *s, size_t len)
{
    size_t  i;

    if (len != NGX_HTTP_STOCKPRICE_UUID_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return 0;
            }

            continue;
        }

        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')
              || (s[i] >= 'A' && s[i] <= 'F')))
        {
            return 0;
        }
    }

    return 1;
}


int
ngx_http_stockprice_parse_time_valid(const char *s, size_t len)
{
    size_t  i;

    /* YYYY-MM-DDTHH:MM:SS */

    if (len < 19 || len > NGX_HTTP_STOCKPRICE_TIME_MAX
        || !ngx_http_stockprice_parse_digits(s, 4, 0, 9999) || s[4] != '-'
        || !ngx_http_stockprice_parse_digits(s + 5, 2, 1, 12) || s[7] != '-'
        || !ngx_http_stockprice_parse_digits(s + 8, 2, 1, 31) || s[10] != 'T'
        || !ngx_http_stockprice_parse_digits(s + 11, 2, 0, 23) || s[13] != ':'
        || !ngx_http_stockprice_parse_digits(s + 14, 2, 0, 59) || s[16] != ':'
        || !ngx_http_stockprice_parse_digits(s + 17, 2, 0, 60))
    {
        return 0;
    }

    i = 19;

    if (i < len && s[i] == '.') {
        i++;

        if (i == len || s[i] < '0' || s[i] > '9') {
            return 0;
        }

        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    }

    if (i == len) {
        return 1;
    }

    if (s[i] == 'Z') {
        return i + 1 == len;
    }

    return (s[i] == '+' || s[i] == '-') && len - i == 6
           && ngx_http_stockprice_parse_digits(s + i + 1, 2, 0, 23)
           && s[i + 3] == ':'
           && ngx_http_stockprice_parse_digits(s + i + 4, 2, 0, 59);
}


static int
ngx_http_stockprice_parse_digits(const char *s, size_t n, int min, int max)
{
    int     v;
    size_t  i;

    v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }

        v = v * 10 + (s[i] - '0');
    }

    return v >= min && v <= max;
}


void
ngx_http_stockprice_parse_shape_default(ngx_http_stockprice_shape_t *s)
{
    *s = ngx_http_stockprice_parse_default;
}


int
ngx_http_stockprice_parse_time_unit(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < sizeof(ngx_http_stockprice_parse_units) / sizeof(char *);
         i++)
    {
        if (strlen(ngx_http_stockprice_parse_units[i]) == len
            && memcmp(ngx_http_stockprice_parse_units[i], s, len) == 0)
        {
            return (int) i;
        }
    }

    return -1;
}


int
ngx_http_stockprice_parse_prices(char *buf, size_t len,
    const ngx_http_stockprice_str_t *filter, size_t nfilter,
    ngx_http_stockprice_record_t **records, size_t *nrecords,
    ngx_http_stockprice_parse_stats_t *stats)
{
    return ngx_http_stockprice_parse_shaped(buf, len, NULL, NULL, 0, filter,
                                            nfilter, records, nrecords,
                                            stats);
}


int
ngx_http_stockprice_parse_shaped(char *buf, size_t len,
    const ngx_http_stockprice_shape_t *shape, const char *want,
    size_t want_len, const ngx_http_stockprice_str_t *filter, size_t nfilter,
    ngx_http_stockprice_record_t **records, size_t *nrecords,
    ngx_http_stockprice_parse_stats_t *stats)
{
    int                            rc;
    ngx_http_stockprice_parser_t   parser;

    ngx_http_stockprice_parse_start(&parser, buf, len, shape, want, want_len,
                                    filter, nfilter);

    do {
        rc = ngx_http_stockprice_parse_step(&parser, (size_t) -1);
    } while (rc == NGX_HTTP_STOCKPRICE_PARSE_AGAIN);

    if (rc == NGX_HTTP_STOCKPRICE_PARSE_OK) {
        rc = ngx_http_stockprice_parse_done(&parser, records, nrecords);

    } else {
        ngx_http_stockprice_parse_abort(&parser);
        *records = NULL;
        *nrecords = 0;
    }

    *stats = parser.stats;

    return rc;
}


void
ngx_http_stockprice_parse_start(ngx_http_stockprice_parser_t *p, char *buf,
    size_t len, const ngx_http_stockprice_shape_t *shape, const char *want,
    size_t want_len, const ngx_http_stockprice_str_t *filter, size_t nfilter)
{
    memset(p, 0, sizeof(ngx_http_stockprice_parser_t));

    p->shape = shape ? shape : &ngx_http_stockprice_parse_default;
    p->filter = filter;
    p->nfilter = nfilter;

    /* epoch times: where each is found by the slice's scan */

    if (p->shape->time_unit != NGX_HTTP_STOCKPRICE_TIME_ISO
        && ngx_http_stockprice_pointer_plain(&p->shape->time))
    {
        p->marks.find = &p->shape->time;
    }

    ngx_http_stockprice_parse_next(p, buf, len, want, want_len);
}


void
ngx_http_stockprice_parse_next(ngx_http_stockprice_parser_t *p, char *buf,
    size_t len, const char *want, size_t want_len)
{
    size_t  i;

    p->buf = buf;
    p->len = len;
    p->pos = 0;
    p->at = 0;
    p->chunked = 0;
    p->chunks = 0;
    p->want = want_len ? want : NULL;
    p->want_len = want_len;
    p->mark = p->n;
    p->mark_stats = p->stats;

    p->marks.escaped = ngx_http_stockprice_parse_patch(buf, len);

    if (p->shape->records.n) {
        i = ngx_http_stockprice_pointer_locate(&p->shape->records, buf, len);

    } else {
        i = ngx_http_stockprice_parse_skip_space(buf, 0, len);
    }

    /*
     * an array, or an object keyed by symbol, is cut into chunks; anything
     * else, or what the scan does not find, is parsed whole, and cJSON
     * tells what it is; so is one object when a symbol is asked for, as it
     * may be the record itself
     */

    if (i < len && (buf[i] == '[' || (buf[i] == '{' && p->want == NULL))) {
        p->chunked = 1;
        p->at = i;
        p->pos = i + 1;
    }
}


/*
 * The next chunk: whole elements of the top array from p->pos, at least
 * "budget" bytes of them if there are, parsed by cJSON as an array of
 * their own ("[" and "]" put in place of the separators around them for
 * the time of the parse).  The separators are found by a scan that knows
 * strings and nesting, so no element is ever cut.
 */

int
ngx_http_stockprice_parse_step(ngx_http_stockprice_parser_t *p,
    size_t budget)
{
    int      rc, last;
    char    *buf, first, end;
    size_t   start, i, len;
    cJSON   *root;

    if (!p->chunked) {
        return ngx_http_stockprice_parse_whole(p);
    }

    buf = p->buf;
    len = p->len;
    start = p->pos;
    first = buf[p->at];
    end = (first == '[') ? ']' : '}';

    /* epoch times are read from the text: where each element ends */

    p->marks.n = 0;
    p->slice_end = 0;

    i = ngx_http_stockprice_pointer_scan(buf, start, len, budget, &last,
                                         p->shape->time_unit
                                         == NGX_HTTP_STOCKPRICE_TIME_ISO
                                         ? NULL : &p->marks);

    if (i >= len || (last && buf[i] != end)) {
        /* truncated, or the array closed by a "}" */
        return NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON;
    }

    if (last) {
        rc = ngx_http_stockprice_parse_rest(p, i);

        if (rc != NGX_HTTP_STOCKPRICE_PARSE_OK) {
            return rc;
        }

        if (!p->chunked) {
            /* the scan and cJSON disagree: cJSON decides */
            return ngx_http_stockprice_parse_whole(p);
        }
    }

    /*
     * no empty element: "[1,]" and "[,1]" are not JSON, "[ ]" is; white
     * space as cJSON skips it, any byte up to 0x20
     */

    for (len = start; len < i; len++) {
        if ((unsigned char) buf[len] > ' ') {
            break;
        }
    }

    if (len == i && (p->chunks || !last)) {
        return NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON;
    }

    p->chunks++;

    rc = ngx_http_stockprice_parse_slice(p, start, i, &root);

    if (rc != NGX_HTTP_STOCKPRICE_PARSE_OK) {
        return rc;
    }

    p->slice_end = i;

    rc = ngx_http_stockprice_parse_items(p, root, first == '{',
                                         p->shape->time_unit
                                         == NGX_HTTP_STOCKPRICE_TIME_ISO
                                         ? NGX_HTTP_STOCKPRICE_POINTER_NONE
                                         : start);

    ngx_http_stockprice_parse_arena_end(root);

    if (rc != NGX_HTTP_STOCKPRICE_PARSE_OK) {
        return rc;
    }

    if (last) {
        return NGX_HTTP_STOCKPRICE_PARSE_OK;
    }

    p->pos = i + 1;

    return NGX_HTTP_STOCKPRICE_PARSE_AGAIN;
}


/*
 * The elements from "start" to "i" (a separator or the closing bracket)
 * parsed by cJSON as an array (or object) of their own: the brackets put
 * in place of the separators around them for the time of the parse, epoch
 * times blanked out and put back
 */

static int
ngx_http_stockprice_parse_slice(ngx_http_stockprice_parser_t *p,
    size_t start, size_t i, cJSON **rootp)
{
    int     blanked;
    char   *buf, open, close, first, end;
    cJSON  *root;

    buf = p->buf;
    first = buf[p->at];
    end = (first == '[') ? ']' : '}';

    /* epoch times read from their digits, which cJSON then need not read */

    blanked = (p->shape->time_unit != NGX_HTTP_STOCKPRICE_TIME_ISO);

    if (blanked
        && ngx_http_stockprice_parse_blank(p, start, i, first == '{')
           != NGX_HTTP_STOCKPRICE_PARSE_OK)
    {
        return NGX_HTTP_STOCKPRICE_PARSE_NOMEM;
    }

    open = buf[start - 1];
    close = buf[i];
    buf[start - 1] = first;
    buf[i] = end;

    ngx_http_stockprice_parse_arena_start(i - start + 2);

    root = ngx_http_stockprice_parse_json(buf + start - 1, i - start + 2);

    if (blanked) {
        ngx_http_stockprice_parse_unblank(p);

        if (root && (size_t) cJSON_GetArraySize(root) != p->marks.n + 1) {
            /* the scan and cJSON disagree on the elements: as written */

            ngx_http_stockprice_parse_arena_end(root);
            ngx_http_stockprice_parse_arena_start(i - start + 2);

            root = ngx_http_stockprice_parse_json(buf + start - 1,
                                                  i - start + 2);
        }
    }

    buf[start - 1] = open;
    buf[i] = close;

    if (root == NULL
        || (first == '[' ? !cJSON_IsArray(root) : !cJSON_IsObject(root)))
    {
        ngx_http_stockprice_parse_arena_end(root);
        return NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON;
    }

    *rootp = root;

    return NGX_HTTP_STOCKPRICE_PARSE_OK;
}


/*
 * The epoch times of a slice's elements (from "start" to "end", cut at the
 * marks) read from their digits where time_field= finds a number (the
 * value cJSON then finds there), and blanked to "null" and spaces: still
 * the same JSON, the same elements, and nothing for strtod().
 * parse_unblank() puts the digits back right after cJSON's parse, so that
 * the body is as it came whatever happens next.  A number shorter than
 * "null" is left as it is; one longer than any time is left to cJSON;
 * and nothing is blanked when price_field= is time_field=.
 */

static int
ngx_http_stockprice_parse_blank(ngx_http_stockprice_parser_t *p,
    size_t start, size_t end, int keyed)
{
    int                           blank;
    char                         *buf;
    size_t                        k, value, e, at, len;
    ngx_http_stockprice_epoch_t  *ep;

    if (p->epochs == NULL) {
        p->epochs = malloc((NGX_HTTP_STOCKPRICE_POINTER_MARKS + 1)
                           * sizeof(ngx_http_stockprice_epoch_t));
        if (p->epochs == NULL) {
            return NGX_HTTP_STOCKPRICE_PARSE_NOMEM;
        }
    }

    buf = p->buf;
    blank = !ngx_http_stockprice_pointer_same(&p->shape->time,
                                              &p->shape->price);

    for (k = 0; k <= p->marks.n; k++) {
        ep = &p->epochs[k];
        ep->found = 0;
        ep->len = 0;

        e = (k < p->marks.n) ? p->marks.at[k] : end;
        at = p->marks.find ? p->marks.value[k]
                           : NGX_HTTP_STOCKPRICE_POINTER_WALK;

        if (at == NGX_HTTP_STOCKPRICE_POINTER_WALK) {
            /* not found by the scan: the element walked */

            value = k ? p->marks.at[k - 1] + 1 : start;

            if (keyed) {
                value = ngx_http_stockprice_pointer_member_value(buf, value,
                                                                 e);
                if (value >= e) {
                    continue;
                }
            }

            at = ngx_http_stockprice_pointer_locate(&p->shape->time,
                                                    buf + value, e - value);

            if (at != NGX_HTTP_STOCKPRICE_POINTER_NONE) {
                at += value;
            }
        }

        if (at == NGX_HTTP_STOCKPRICE_POINTER_NONE) {
            continue;
        }

        len = ngx_http_stockprice_parse_number_end(buf + at, e - at);

        if (len == 0 || len > NGX_HTTP_STOCKPRICE_EPOCH_TEXT) {
            continue;
        }

        ep->time_len = (unsigned char)
                       ngx_http_stockprice_parse_epoch(ep->time, buf + at, len,
                                                       p->shape->time_unit);
        ep->found = 1;

        if (!blank || len < 4) {
            continue;
        }

        ep->at = at;
        ep->len = (unsigned char) len;
        memcpy(ep->text, buf + at, len);

        memcpy(buf + at, "null", 4);
        memset(buf + at + 4, ' ', len - 4);
    }

    return NGX_HTTP_STOCKPRICE_PARSE_OK;
}


static void
ngx_http_stockprice_parse_unblank(ngx_http_stockprice_parser_t *p)
{
    size_t                        k;
    ngx_http_stockprice_epoch_t  *ep;

    for (k = 0; k <= p->marks.n; k++) {
        ep = &p->epochs[k];

        if (ep->len) {
            memcpy(p->buf + ep->at, ep->text, ep->len);
        }
    }
}


/*
 * After the records' last chunk: the rest of the body.  With records= at
 * the body itself, white space; else the body without the records (a
 * skeleton, small as a rule) must be JSON in which records= names an
 * empty array or object where the scan found the records; if it names
 * something else, p->chunked is 0 and the body is to be parsed whole.
 */

static int
ngx_http_stockprice_parse_rest(ngx_http_stockprice_parser_t *p, size_t end)
{
    int           rc;
    char         *sk;
    size_t        head, tail, n;
    cJSON        *root;
    const cJSON  *v;

    if (p->shape->records.n == 0) {
        if (ngx_http_stockprice_parse_skip_space(p->buf, end + 1, p->len)
            != p->len)
        {
            return NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON;
        }

        return NGX_HTTP_STOCKPRICE_PARSE_OK;
    }

    head = p->at + 1;
    tail = p->len - end;

    sk = malloc(head + tail);
    if (sk == NULL) {
        return NGX_HTTP_STOCKPRICE_PARSE_NOMEM;
    }

    memcpy(sk, p->buf, head);
    memcpy(sk + head, p->buf + end, tail);

    n = head + tail;

    ngx_http_stockprice_parse_arena_start(n);

    root = ngx_http_stockprice_parse_json(sk, n);

    if (root == NULL) {
        rc = NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON;

    } else {
        rc = NGX_HTTP_STOCKPRICE_PARSE_OK;

        v = ngx_http_stockprice_pointer_get(&p->shape->records, 0, root);

        if (v == NULL || v->child
            || (p->buf[p->at] == '[' ? !cJSON_IsArray(v) : !cJSON_IsObject(v)))
        {
            p->chunked = 0;
            p->n = 0;
            memset(&p->stats, 0, sizeof(ngx_http_stockprice_parse_stats_t));
        }
    }

    ngx_http_stockprice_parse_arena_end(root);

    free(sk);

    return rc;
}


/* not chunked: cJSON says whether it is JSON at all, and what is where */

static int
ngx_http_stockprice_parse_whole(ngx_http_stockprice_parser_t *p)
{
    int           rc;
    size_t        raw;
    cJSON        *root;
    const cJSON  *v;

    p->slice_end = 0;

    ngx_http_stockprice_parse_arena_start(p->len);

    root = ngx_http_stockprice_parse_json(p->buf, p->len);

    v = root ? ngx_http_stockprice_pointer_get(&p->shape->records, 0, root)
             : NULL;

    /* epoch times are read from the text: where the records are in it */

    raw = NGX_HTTP_STOCKPRICE_POINTER_NONE;

    if (v && p->shape->time_unit != NGX_HTTP_STOCKPRICE_TIME_ISO) {
        raw = ngx_http_stockprice_pointer_locate(&p->shape->records, p->buf,
                                                 p->len);
    }

    if (root == NULL) {
        rc = NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON;

    } else if (v == NULL) {
        rc = NGX_HTTP_STOCKPRICE_PARSE_NOT_FOUND;

    } else if (cJSON_IsArray(v)) {
        rc = ngx_http_stockprice_parse_items(p, v, 0, raw == (size_t) -1
                                                      ? raw : raw + 1);

    } else if (!cJSON_IsObject(v)) {
        rc = NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY;

    } else if (p->want
               && ngx_http_stockprice_pointer_get(&p->shape->price, 0, v))
    {
        /* the one record asked for */
        rc = ngx_http_stockprice_parse_items(p, v, -1, raw);

    } else {
        rc = ngx_http_stockprice_parse_items(p, v, 1, raw == (size_t) -1
                                                      ? raw : raw + 1);
    }

    ngx_http_stockprice_parse_arena_end(root);

    return rc;
}


/*
 * The records of one parsed array ("keyed" 0), object keyed by symbol (1),
 * or the one record "root" (-1).  Room grows with the records kept, not
 * with the elements seen: a body of "[1,1,1,...]" costs no record slots.
 * "raw" is the offset in p->buf of the first element's text (of the
 * record's, with -1), so that epoch times are read from their digits:
 * the elements end at the slice's marks (p->slice_end set), or are
 * walked along with cJSON's; NONE when no time needs it.
 */

static int
ngx_http_stockprice_parse_items(ngx_http_stockprice_parser_t *p,
    const cJSON *root, int keyed, size_t raw)
{
    size_t                         e, k, value;
    const cJSON                   *item, *one;
    ngx_http_stockprice_record_t  *all, *rec;

    one = NULL;
    p->raw = NULL;
    p->epoch = NULL;
    k = 0;

    if (p->slice_end && raw != NGX_HTTP_STOCKPRICE_POINTER_NONE
        && (size_t) cJSON_GetArraySize(root) != p->marks.n + 1)
    {
        /* the scan and cJSON disagree on the elements: cJSON's doubles */
        raw = NGX_HTTP_STOCKPRICE_POINTER_NONE;
    }

    if (keyed == -1) {
        one = root;
        root = NULL;
    }

    for (item = one ? one : root->child; item; item = one ? NULL : item->next)
    {
        p->stats.total++;

        if (p->n == p->size) {
            p->size = p->size ? 2 * p->size : 16;

            all = realloc(p->all,
                          p->size * sizeof(ngx_http_stockprice_record_t));
            if (all == NULL) {
                return NGX_HTTP_STOCKPRICE_PARSE_NOMEM;
            }

            p->all = all;
        }

        rec = (ngx_http_stockprice_record_t *) p->all + p->n;

        if (raw != NGX_HTTP_STOCKPRICE_POINTER_NONE && p->slice_end) {
            /* the text of element k, between the slice's marks */

            value = k ? p->marks.at[k - 1] + 1 : raw;
            e = (k < p->marks.n) ? p->marks.at[k] : p->slice_end;

            /* read before cJSON's parse (the slice of parse_step) */

            p->epoch = (p->epochs && p->epochs[k].found) ? &p->epochs[k]
                                                         : NULL;
            k++;

            if (keyed) {
                value = ngx_http_stockprice_pointer_member_value(p->buf,
                                                                 value, e);
            }

            p->raw = (value < e) ? p->buf + value : NULL;
            p->raw_len = e - value;

        } else if (raw != NGX_HTTP_STOCKPRICE_POINTER_NONE) {
            /* the text of this element; at a loss, cJSON's doubles */

            if (keyed == -1) {
                value = raw;
                e = p->len;

            } else {
                e = ngx_http_stockprice_pointer_next(p->buf, raw, p->len,
                                                     keyed, &value);
            }

            if (e == NGX_HTTP_STOCKPRICE_POINTER_NONE) {
                p->raw = NULL;
                raw = e;

            } else {
                p->raw = p->buf + value;
                p->raw_len = e - value;
                raw = e + 1;
            }
        }

        if (!ngx_http_stockprice_parse_record(p, item,
                                              keyed == 1 ? item->string : NULL,
                                              rec))
        {
            continue;
        }

        if ((p->nfilter
             && !ngx_http_stockprice_parse_wanted(p->filter, p->nfilter,
                                                  rec->symbol,
                                                  rec->symbol_len))
            || (p->want
                && (rec->symbol_len != p->want_len
                    || memcmp(rec->symbol, p->want, p->want_len) != 0)))
        {
            p->stats.filtered++;
            continue;
        }

        rec->order = p->n;
        p->n++;
    }

    p->raw = NULL;
    p->epoch = NULL;

    return NGX_HTTP_STOCKPRICE_PARSE_OK;
}


/*
 * After the last step: the records sorted by symbol, one per symbol (of
 * several the last one in the body wins), in *records (free() it).
 */

int
ngx_http_stockprice_parse_done(ngx_http_stockprice_parser_t *p,
    ngx_http_stockprice_record_t **records, size_t *nrecords)
{
    size_t                         i, m, n;
    ngx_http_stockprice_record_t  *all;

    all = p->all;
    n = p->n;

    p->all = NULL;
    *records = NULL;
    *nrecords = 0;

    free(p->epochs);
    p->epochs = NULL;

    if (n == 0) {
        free(all);
        return NGX_HTTP_STOCKPRICE_PARSE_OK;
    }

    /* most upstreams send their symbols sorted already */

    for (i = 1; i < n; i++) {
        if (ngx_http_stockprice_parse_cmp_records(&all[i - 1], &all[i]) > 0) {
            qsort(all, n, sizeof(ngx_http_stockprice_record_t),
                  ngx_http_stockprice_parse_cmp_records);
            break;
        }
    }

    /*
     * a run of one symbol is in body order: the last one wins; the others
     * go in place, so that without duplicates nothing moves
     */

    for (i = 0, m = 0; i < n; i++) {
        if (i + 1 < n
            && ngx_http_stockprice_parse_symbol_cmp(all[i].symbol,
                                                    all[i].symbol_len,
                                                    all[i + 1].symbol,
                                                    all[i + 1].symbol_len)
               == 0)
        {
            p->stats.duplicate++;
            continue;
        }

        if (m != i) {
            all[m] = all[i];
        }

        m++;
    }

    p->stats.accepted = m;

    *records = all;
    *nrecords = m;

    return NGX_HTTP_STOCKPRICE_PARSE_OK;
}


void
ngx_http_stockprice_parse_undo(ngx_http_stockprice_parser_t *p)
{
    p->n = p->mark;
    p->stats = p->mark_stats;
}


void
ngx_http_stockprice_parse_abort(ngx_http_stockprice_parser_t *p)
{
    free(p->all);
    p->all = NULL;

    free(p->epochs);
    p->epochs = NULL;
}


/* one record: 1 if it is kept, 0 if it is skipped (and counted) */

static int
ngx_http_stockprice_parse_record(ngx_http_stockprice_parser_t *p,
    const cJSON *item, const char *key, ngx_http_stockprice_record_t *rec)
{
    size_t                          len;
    const cJSON                    *v;
    ngx_http_stockprice_fields_t    f;
    ngx_http_stockprice_parse_stats_t  *st;

    st = &p->stats;

    if (!cJSON_IsObject(item) && p->shape->price.n) {
        st->not_object++;
        return 0;
    }

    memset(rec, 0, sizeof(ngx_http_stockprice_record_t));

    ngx_http_stockprice_parse_fields(p->shape, item, &f);

    if (!ngx_http_stockprice_parse_symbol(p, f.symbol, key, rec)) {
        st->bad_symbol++;
        return 0;
    }

    v = f.price;

    if (cJSON_IsNumber(v)) {
        rec->price = v->valuedouble;

    } else if (!cJSON_IsString(v) || v->valuestring == NULL
               || !ngx_http_stockprice_parse_numeric(v->valuestring,
                                                     &rec->price))
    {
        st->bad_price++;
        return 0;
    }

    /* cJSON reads 1e999 as inf */

    if (!isfinite(rec->price)) {
        st->bad_price++;
        return 0;
    }

    if (f.vtime) {
        ngx_http_stockprice_parse_time(p, f.vtime, rec);
    }

    v = f.id;

    if (v) {
        len = (cJSON_IsString(v) && v->valuestring)
              ? strlen(v->valuestring) : 0;

        if (len && ngx_http_stockprice_parse_uuid_valid(v->valuestring, len)) {
            memcpy(rec->id, v->valuestring, len);
            rec->has_id = 1;

        } else {
            st->bad_id++;
        }
    }

    return 1;
}


/*
 * The symbol at symbol_field=, else the key of a record keyed by symbol,
 * else the one asked for
 */

static int
ngx_http_stockprice_parse_symbol(ngx_http_stockprice_parser_t *p,
    const cJSON *v, const char *key, ngx_http_stockprice_record_t *rec)
{
    size_t       len;
    const char  *s;

    if (v) {
        if (!cJSON_IsString(v) || v->valuestring == NULL) {
            return 0;
        }

        s = v->valuestring;
        len = strlen(s);

    } else if (key) {
        s = key;
        len = strlen(s);

    } else if (p->want) {
        s = p->want;
        len = p->want_len;

    } else {
        return 0;
    }

    if (!ngx_http_stockprice_parse_symbol_valid(s, len)) {
        return 0;
    }

    memcpy(rec->symbol, s, len);
    rec->symbol_len = len;

    return 1;
}


/* the value time: kept when valid, else counted (the measurement's used) */

static void
ngx_http_stockprice_parse_time(ngx_http_stockprice_parser_t *p,
    const cJSON *v, ngx_http_stockprice_record_t *rec)
{
    size_t                           len, off;
    ngx_http_stockprice_time_unit_e  unit;

    unit = p->shape->time_unit;

    if (unit == NGX_HTTP_STOCKPRICE_TIME_ISO) {
        len = (cJSON_IsString(v) && v->valuestring)
              ? strlen(v->valuestring) : 0;

        if (len && ngx_http_stockprice_parse_time_valid(v->valuestring, len)) {
            memcpy(rec->value_time, v->valuestring, len);
            rec->value_time_len = len;
            return;
        }

        p->stats.bad_time++;
        return;
    }

    /*
     * a number since the epoch, or a numeric string as prices may be: its
     * digits, exact where a double is not (1.7e18 ns is off by up to 128);
     * a number read before cJSON's parse is "null" to cJSON
     */

    if (p->epoch) {
        memcpy(rec->value_time, p->epoch->time, p->epoch->time_len);
        rec->value_time_len = p->epoch->time_len;

    } else if (cJSON_IsString(v) && v->valuestring) {
        len = strlen(v->valuestring);

        rec->value_time_len =
            (len && ngx_http_stockprice_parse_number_end(v->valuestring, len)
                    == len)
            ? ngx_http_stockprice_parse_epoch(rec->value_time, v->valuestring,
                                              len, unit)
            : 0;

    } else if (!cJSON_IsNumber(v)) {
        rec->value_time_len = 0;

    } else if (p->raw
               && (off = (p->shape->time.n == 0) ? 0
                         : ngx_http_stockprice_pointer_locate(&p->shape->time,
                                                              p->raw,
                                                              p->raw_len))
                  != NGX_HTTP_STOCKPRICE_POINTER_NONE
               && (len = ngx_http_stockprice_parse_number_end(p->raw + off,
                                                          p->raw_len - off)))
    {
        rec->value_time_len = ngx_http_stockprice_parse_epoch(rec->value_time,
                                                              p->raw + off,
                                                              len, unit);

    } else {
        rec->value_time_len = ngx_http_stockprice_parse_epoch_double(
                                  rec->value_time, v->valuedouble, unit);
    }

    if (rec->value_time_len == 0) {
        p->stats.bad_time++;
    }
}


/*
 * A record's fields in one pass over its members (a field's first token),
 * then down the rest of each pointer; of a name given twice the first
 * counts, as with cJSON_GetObjectItemCaseSensitive().  An empty pointer
 * is the record itself.
 */

static void
ngx_http_stockprice_parse_fields(const ngx_http_stockprice_shape_t *shape,
    const cJSON *item, ngx_http_stockprice_fields_t *f)
{
    const char   *s;
    const cJSON  *v;

    memset(f, 0, sizeof(ngx_http_stockprice_fields_t));

    for (v = cJSON_IsObject(item) ? item->child : NULL; v; v = v->next) {
        s = v->string;

        if (s == NULL) {
            continue;
        }

        if (f->symbol == NULL && shape->symbol.n
            && ngx_http_stockprice_pointer_token_is(&shape->symbol, 0, s))
        {
            f->symbol = v;
        }

        if (f->price == NULL && shape->price.n
            && ngx_http_stockprice_pointer_token_is(&shape->price, 0, s))
        {
            f->price = v;
        }

        if (f->vtime == NULL && shape->time.n
            && ngx_http_stockprice_pointer_token_is(&shape->time, 0, s))
        {
            f->vtime = v;
        }

        if (f->id == NULL && s[0] == 'i' && strcmp(s, "id") == 0) {
            f->id = v;
        }
    }

    f->symbol = (shape->symbol.n == 0) ? item
                : (shape->symbol.n == 1 || f->symbol == NULL) ? f->symbol
                : ngx_http_stockprice_pointer_get(&shape->symbol, 1, f->symbol);

    f->price = (shape->price.n == 0) ? item
               : (shape->price.n == 1 || f->price == NULL) ? f->price
               : ngx_http_stockprice_pointer_get(&shape->price, 1, f->price);

    f->vtime = (shape->time.n == 0) ? item
               : (shape->time.n == 1 || f->vtime == NULL) ? f->vtime
               : ngx_http_stockprice_pointer_get(&shape->time, 1, f->vtime);
}


/*
 * The text of a number since the epoch: "digits[.digits]" exactly, the
 * fraction cut (not rounded) at 100 ns as .NET's ticks are; one with an
 * exponent through a double.
 */

size_t
ngx_http_stockprice_parse_epoch(char *buf, const char *s, size_t len,
    ngx_http_stockprice_time_unit_e unit)
{
    int      big;
    char     num[64];
    size_t   i, whole;
    int64_t  n, per, tick, ticks;

    /* "tick": 100 ns ticks in a unit; none for ns */

    switch (unit) {
    case NGX_HTTP_STOCKPRICE_TIME_S:  per = 1;          tick = 10000000; break;
    case NGX_HTTP_STOCKPRICE_TIME_MS: per = 1000;       tick = 10000;    break;
    case NGX_HTTP_STOCKPRICE_TIME_US: per = 1000000;    tick = 10;       break;
    case NGX_HTTP_STOCKPRICE_TIME_NS: per = 1000000000; tick = 0;        break;
    default: return 0;
    }

    if (len && s[0] == '+') {
        s++;
        len--;
    }

    /* the whole units; 9e18 and more are refused, as for a double */

    n = 0;
    big = 0;

    for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        if (n >= 900000000000000000) {
            big = 1;

        } else {
            n = n * 10 + (s[i] - '0');
        }
    }

    whole = i;

    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) { /* void */ }
    }

    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        /* an exponent: through a double */

        if (len >= sizeof(num)) {
            return 0;
        }

        memcpy(num, s, len);
        num[len] = '\0';

        return ngx_http_stockprice_parse_epoch_double(buf, strtod(num, NULL),
                                                      unit);
    }

    if (big || whole == 0 || (whole < len && s[whole] != '.')) {
        /* "-1", ".5" */
        return 0;
    }

    i = whole;

    ticks = tick ? n % per * tick : n % per / 100;

    /* the fraction's digits down to a tick; the rest go */

    for (i++; tick >= 10 && i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        tick /= 10;
        ticks += (s[i] - '0') * tick;
    }

    return ngx_http_stockprice_render_ticks(buf, n / per,
                                            (long) ticks);
}


/* a double: the fraction rounded to the nearest tick */

static size_t
ngx_http_stockprice_parse_epoch_double(char *buf, double value,
    ngx_http_stockprice_time_unit_e unit)
{
    long     ticks;
    double   ip, fp;
    int64_t  n, per, tick;

    /* whole units and a fraction, so that seconds keep their microseconds */

    if (!isfinite(value) || value < 0 || value >= 9e18) {
        return 0;
    }

    /* no libm in the module: truncation is floor() for these */

    n = (int64_t) value;
    ip = (double) n;
    fp = value - ip;

    switch (unit) {

    case NGX_HTTP_STOCKPRICE_TIME_S:
        per = 1;
        tick = 10000000;
        break;

    case NGX_HTTP_STOCKPRICE_TIME_MS:
        per = 1000;
        tick = 10000;
        break;

    case NGX_HTTP_STOCKPRICE_TIME_US:
        per = 1000000;
        tick = 10;
        break;

    case NGX_HTTP_STOCKPRICE_TIME_NS:
        /* ticks of 100 ns: the last two digits go */
        return ngx_http_stockprice_render_ticks(buf, n / 1000000000,
                                                (long) (n % 1000000000 / 100));

    default:
        return 0;
    }

    ticks = (long) ((n % per) * tick + (int64_t) (fp * (double) tick + 0.5));

    if (ticks > 9999999) {
        ticks -= 10000000;
        return ngx_http_stockprice_render_ticks(buf, n / per + 1, ticks);
    }

    return ngx_http_stockprice_render_ticks(buf, n / per, ticks);
}


/*
 * A decimal number as JSON writes it, with an optional sign: strtod()
 * alone would take "inf", "nan", "0x1p3" and leading blanks too.
 */

static int
ngx_http_stockprice_parse_numeric(const char *s, double *value)
{
    char    *end;
    size_t   len;

    len = ngx_http_stockprice_parse_number_end(s, strlen(s));

    if (len == 0 || s[len] != '\0') {
        return 0;
    }

    *value = strtod(s, &end);

    return end == s + len;
}


/*
 * The length of the number at s[0..len), as JSON writes it but for an
 * optional "+": sign, digits, fraction, exponent; 0 if there is none
 */

static size_t
ngx_http_stockprice_parse_number_end(const char *s, size_t len)
{
    size_t  i, d;

    i = (len && (s[0] == '-' || s[0] == '+')) ? 1 : 0;

    for (d = i; i < len && s[i] >= '0' && s[i] <= '9'; i++) { /* void */ }

    if (i == d) {
        return 0;
    }

    if (i < len && s[i] == '.') {
        for (d = ++i; i < len && s[i] >= '0' && s[i] <= '9'; i++) { /* void */ }

        if (i == d) {
            return 0;
        }
    }

    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        i += (i < len && (s[i] == '-' || s[i] == '+')) ? 1 : 0;

        for (d = i; i < len && s[i] >= '0' && s[i] <= '9'; i++) { /* void */ }

        if (i == d) {
            return 0;
        }
    }

    return i;
}


int
ngx_http_stockprice_parse_wanted(const ngx_http_stockprice_str_t *filter,
    size_t nfilter, const char *s, size_t len)
{
    int     rc;
    size_t  lo, hi, mid;

    lo = 0;
    hi = nfilter;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        rc = ngx_http_stockprice_parse_symbol_cmp(filter[mid].data,
                                                  filter[mid].len, s, len);
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
ngx_http_stockprice_parse_cmp_records(const void *one, const void *two)
{
    int                                  rc;
    const ngx_http_stockprice_record_t  *a, *b;

    a = one;
    b = two;

    rc = ngx_http_stockprice_parse_symbol_cmp(a->symbol, a->symbol_len,
                                              b->symbol, b->symbol_len);
    if (rc != 0) {
        return rc;
    }

    return (a->order > b->order) - (a->order < b->order);
}


static int
ngx_http_stockprice_parse_utf8_valid(const unsigned char *s, size_t len)
{
    size_t  i, n;

    for (i = 0; i < len; i += n) {

        /* ASCII, most symbols: no call */

        if (s[i] < 0x80) {
            n = 1;
            continue;
        }

        n = ngx_http_stockprice_parse_utf8(s + i, len - i);

        if (n == 0) {
            return 0;
        }
    }

    return 1;
}


size_t
ngx_http_stockprice_parse_utf8(const unsigned char *s, size_t len)
{
    size_t    k, n;
    uint32_t  cp, min;

    if (s[0] < 0x80) {
        return 1;
    }

    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = s[0] & 0x1f;
        min = 0x80;

    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = s[0] & 0x0f;
        min = 0x800;

    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = s[0] & 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    for (k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80) {
            return 0;
        }

        cp = (cp << 6) | (s[k] & 0x3f);
    }

    /* overlong forms, surrogates, beyond Unicode */

    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }

    return n;
}


int
ngx_http_stockprice_parse_token(const char *buf, size_t len, char **token,
    size_t *token_len, long *expires_in)
{
    return ngx_http_stockprice_parse_answer(buf, len, 0, token, token_len,
                                            expires_in);
}


int
ngx_http_stockprice_parse_oauth_token(const char *buf, size_t len,
    char **token, size_t *token_len, long *expires_in)
{
    return ngx_http_stockprice_parse_answer(buf, len, 1, token, token_len,
                                            expires_in);
}


/* a login's {"token","expiresIn"} or OAuth2's {"access_token",...} */

static int
ngx_http_stockprice_parse_answer(const char *buf, size_t len, int oauth,
    char **token, size_t *token_len, long *expires_in)
{
    int           rc;
    char         *copy;
    size_t        i, n;
    double        seconds;
    cJSON        *root;
    const cJSON  *v;

    *token = NULL;
    *token_len = 0;
    *expires_in = -1;

    /* on a copy, so that "\u0000" cannot cut the token short */

    copy = ngx_http_stockprice_parse_copy(buf, len);
    if (copy == NULL) {
        return NGX_HTTP_STOCKPRICE_PARSE_NOMEM;
    }

    root = ngx_http_stockprice_parse_json(copy, len);

    ngx_http_stockprice_parse_wipe(copy, len);
    free(copy);

    if (root == NULL) {
        return NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON;
    }

    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return NGX_HTTP_STOCKPRICE_PARSE_NOT_OBJECT;
    }

    rc = NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN;

    if (oauth) {
        /* RFC 6749 5.1: only a bearer token is of use here */

        v = cJSON_GetObjectItemCaseSensitive(root, "token_type");

        if (v && (!cJSON_IsString(v) || v->valuestring == NULL
                  || strcasecmp(v->valuestring, "bearer") != 0))
        {
            goto done;
        }
    }

    v = cJSON_GetObjectItemCaseSensitive(root, oauth ? "access_token"
                                                     : "token");

    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        goto done;
    }

    n = strlen(v->valuestring);

    if (n == 0 || n > NGX_HTTP_STOCKPRICE_TOKEN_MAX) {
        goto done;
    }

    for (i = 0; i < n; i++) {
        if ((unsigned char) v->valuestring[i] < 0x21
            || (unsigned char) v->valuestring[i] > 0x7e)
        {
            goto done;
        }
    }

    *token = malloc(n);
    if (*token == NULL) {
        rc = NGX_HTTP_STOCKPRICE_PARSE_NOMEM;
        goto done;
    }

    memcpy(*token, v->valuestring, n);
    *token_len = n;

    v = cJSON_GetObjectItemCaseSensitive(root, oauth ? "expires_in"
                                                     : "expiresIn");

    /* seconds: a number or a numeric string */

    if (cJSON_IsNumber(v)) {
        seconds = v->valuedouble;

    } else if (!cJSON_IsString(v) || v->valuestring == NULL
               || !ngx_http_stockprice_parse_numeric(v->valuestring,
                                                     &seconds))
    {
        seconds = 0;
    }

    if (isfinite(seconds) && seconds >= 1) {
        *expires_in = seconds > NGX_HTTP_STOCKPRICE_EXPIRES_MAX
                      ? NGX_HTTP_STOCKPRICE_EXPIRES_MAX
                      : (long) seconds;
    }

    rc = NGX_HTTP_STOCKPRICE_PARSE_OK;

done:

    cJSON_Delete(root);

    return rc;
}


int
ngx_http_stockprice_parse_credentials(const char *buf, size_t len,
    ngx_http_stockprice_str_t *user, ngx_http_stockprice_str_t *password)
{
    const char  *eol, *colon;

    /* a byte-order mark, as Windows editors write one */

    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        buf += 3;
        len -= 3;
    }

    if (len == 0) {
        return -1;
    }

    eol = memchr(buf, '\n', len);

    if (eol) {
        len = eol - buf;
    }

    if (len && buf[len - 1] == '\r') {
        len--;
    }

    if (!ngx_http_stockprice_parse_utf8_valid((const unsigned char *) buf,
                                              len))
    {
        return -2;
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
    int     ok;
    char   *copy;
    cJSON  *root;

    /* on a copy, so that "demo\u0000x" cannot pass for "demo" */

    copy = ngx_http_stockprice_parse_copy(buf, len);
    if (copy == NULL) {
        return 0;
    }

    root = ngx_http_stockprice_parse_json(copy, len);

    ngx_http_stockprice_parse_wipe(copy, len);
    free(copy);

    if (root == NULL) {
        return 0;
    }

    ok = cJSON_IsObject(root)
         && ngx_http_stockprice_parse_string_equal(
                cJSON_GetObjectItemCaseSensitive(root, "username"), user)
         && ngx_http_stockprice_parse_string_equal(
                cJSON_GetObjectItemCaseSensitive(root, "password"), password);

    cJSON_Delete(root);

    return ok;
}


static int
ngx_http_stockprice_parse_string_equal(const cJSON *v,
    const ngx_http_stockprice_str_t *s)
{
    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        return 0;
    }

    return strlen(v->valuestring) == s->len
           && memcmp(v->valuestring, s->data, s->len) == 0;
}


/*
 * cJSON_ParseWithLength() accepts anything after the value:
 * "[1]garbage" is no JSON, so only whitespace may follow.
 */

/*
 * cJSON allocates from the arena until arena_end().  The sanitizer and
 * fuzzer builds define NGX_HTTP_STOCKPRICE_NO_ARENA: with one malloc() per
 * node, ASan sees every overrun.
 */

static void
ngx_http_stockprice_parse_arena_start(size_t len)
{
    cJSON_Hooks  hooks;

#ifdef NGX_HTTP_STOCKPRICE_NO_ARENA
    (void) len;
    (void) hooks;
    return;
#endif

    /* nodes and strings take some 3 times the body */

    if (ngx_http_stockprice_parse_arena.wanted < 4 * len + 65536) {
        ngx_http_stockprice_parse_arena.wanted = 4 * len + 65536;
    }

    hooks.malloc_fn = ngx_http_stockprice_parse_arena_alloc;
    hooks.free_fn = ngx_http_stockprice_parse_arena_free;

    cJSON_InitHooks(&hooks);
}


/* back to malloc() and free(); everything cJSON had is gone */

static void
ngx_http_stockprice_parse_arena_end(cJSON *root)
{
    ngx_http_stockprice_chunk_t  *c, *next;

#ifdef NGX_HTTP_STOCKPRICE_NO_ARENA
    cJSON_Delete(root);
    (void) c;
    (void) next;
    return;
#endif

    (void) root;

    cJSON_InitHooks(NULL);

    for (c = ngx_http_stockprice_parse_arena.extra; c; c = next) {
        next = c->next;
        free(c);
    }

    ngx_http_stockprice_parse_arena.extra = NULL;

    c = ngx_http_stockprice_parse_arena.block;

    if (c == NULL) {
        return;
    }

    c->used = 0;

    /* a block too small is made anew next time; a huge one is not kept */

    if (c->size < ngx_http_stockprice_parse_arena.wanted
        || c->size > NGX_HTTP_STOCKPRICE_ARENA_KEEP)
    {
        free(c);
        ngx_http_stockprice_parse_arena.block = NULL;
    }

    if (ngx_http_stockprice_parse_arena.wanted
        > NGX_HTTP_STOCKPRICE_ARENA_KEEP)
    {
        ngx_http_stockprice_parse_arena.wanted = 0;
    }
}


static void *
ngx_http_stockprice_parse_arena_alloc(size_t size)
{
    size_t                        n;
    ngx_http_stockprice_chunk_t  *c;

    size = (size + 15) & ~(size_t) 15;

    c = ngx_http_stockprice_parse_arena.extra;

    if (c == NULL || c->size - c->used < size) {
        c = ngx_http_stockprice_parse_arena.block;
    }

    if (c == NULL || c->size - c->used < size) {

        n = ngx_http_stockprice_parse_arena.wanted;

        if (ngx_http_stockprice_parse_arena.block) {
            /* the body took more than guessed: twice as much next time */
            ngx_http_stockprice_parse_arena.wanted = 2 * n;
            n = n / 2;
        }

        if (n < size) {
            n = size;
        }

        c = malloc(sizeof(ngx_http_stockprice_chunk_t) + 16 + n);
        if (c == NULL) {
            return NULL;
        }

        c->size = n;
        c->used = 0;

        if (ngx_http_stockprice_parse_arena.block == NULL) {
            c->next = NULL;
            ngx_http_stockprice_parse_arena.block = c;

        } else {
            c->next = ngx_http_stockprice_parse_arena.extra;
            ngx_http_stockprice_parse_arena.extra = c;
        }
    }

    n = c->used;
    c->used += size;

    return (char *) c + ((sizeof(ngx_http_stockprice_chunk_t) + 15)
                         & ~(size_t) 15) + n;
}


static void
ngx_http_stockprice_parse_arena_free(void *p)
{
    (void) p;
}


static cJSON *
ngx_http_stockprice_parse_json(const char *buf, size_t len)
{
    cJSON       *root;
    const char  *end, *last;

    if (len == 0) {
        return NULL;
    }

    end = NULL;

    root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (root == NULL) {
        return NULL;
    }

    last = buf + len;

    if (end == NULL || end < buf || end > last) {
        cJSON_Delete(root);
        return NULL;
    }

    if (ngx_http_stockprice_parse_skip_space(buf, (size_t) (end - buf), len)
        != len)
    {
        cJSON_Delete(root);
        return NULL;
    }

    return root;
}


/* the first byte from "i" on that is not JSON white space, or "len" */

static size_t
ngx_http_stockprice_parse_skip_space(const char *buf, size_t i, size_t len)
{
    while (i < len
           && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n'
               || buf[i] == '\r'))
    {
        i++;
    }

    return i;
}


static char *
ngx_http_stockprice_parse_copy(const char *buf, size_t len)
{
    char  *copy;

    copy = malloc(len ? len : 1);
    if (copy == NULL) {
        return NULL;
    }

    if (len) {
        memcpy(copy, buf, len);
    }

    ngx_http_stockprice_parse_patch(copy, len);

    return copy;
}


/* secrets do not outlive the parse in our own copies */

static void
ngx_http_stockprice_parse_wipe(char *buf, size_t len)
{
    volatile char  *p;

    p = buf;

    while (len--) {
        *p++ = '\0';
    }
}


/*
 * cJSON turns "\u0000", and a raw NUL in a string, into a NUL that cuts
 * its C string short: make them 0x01, a control character that the
 * symbol and token checks refuse.  A backslash escapes the next byte, so
 * "\\u0000" is left alone.
 */

static int
ngx_http_stockprice_parse_patch(char *buf, size_t len)
{
    int    escaped;
    char  *p, *end;

    end = buf + len;

    /* raw NULs first, a backslash before one included */

    for (p = buf; (p = memchr(p, '\0', end - p)) != NULL; p++) {
        *p = '\x01';
    }

    escaped = 0;

    for (p = buf; (p = memchr(p, '\\', end - p)) != NULL; /* void */) {

        escaped = 1;

        switch (ngx_http_stockprice_parse_escape(p, end)) {

        case 12:
            /* a surrogate pair: one character */
            p += 12;
            continue;

        case 1:
            /* "\u0000", or a surrogate alone, which cJSON refuses */
            memcpy(p + 2, "0001", 4);

            /* fall through */

        case 6:
            p += 6;
            continue;
        }

        /* the escaped byte, a backslash included, is no escape itself */

        p += 2;

        if (p >= end) {
            break;
        }
    }

    return escaped;
}


/*
 * The "\u" escape at p: 6, a character; 12, a surrogate pair; 1, one
 * that cannot stand (U+0000, or a surrogate alone); 0, not "\uXXXX"
 */

static int
ngx_http_stockprice_parse_escape(const char *p, const char *end)
{
    long  cp, low;

    cp = ngx_http_stockprice_parse_hex4(p, end);

    if (cp < 0) {
        return 0;
    }

    if (cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff)) {
        return 1;
    }

    if (cp < 0xd800 || cp > 0xdbff) {
        return 6;
    }

    low = ngx_http_stockprice_parse_hex4(p + 6, end);

    return (low >= 0xdc00 && low <= 0xdfff) ? 12 : 1;
}


/* the value of "\uXXXX" at p, -1 if there is none */

static long
ngx_http_stockprice_parse_hex4(const char *p, const char *end)
{
    int   i;
    long  v;
    char  c;

    if (end - p < 6 || p[0] != '\\' || p[1] != 'u') {
        return -1;
    }

    v = 0;

    for (i = 2; i < 6; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            v = v * 16 + (c - '0');

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            v = v * 16 + ((c | 0x20) - 'a' + 10);

        } else {
            return -1;
        }
    }

    return v;
}
