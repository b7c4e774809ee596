
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>
#include <ngx_http_stockprice_state.h>


#define NGX_HTTP_STOCKPRICE_STATE_MAGIC     "ngx_stockprice state "

/* 9999-12-31T23:59:59Z */
#define NGX_HTTP_STOCKPRICE_STATE_TIME_LAST  253402300799LL

/* "end", a length of up to 20 digits, 8 hex digits */
#define NGX_HTTP_STOCKPRICE_STATE_END_MAX   (sizeof("end  \n") - 1 + 20 + 8)

/*
 * The fewest bytes a symbol and a record take, their lines' newlines
 * included: what bounds the counts a header may claim
 */
#define NGX_HTTP_STOCKPRICE_STATE_SYMBOL_LEAST                                \
    (sizeof("symbol \"X\" 0 1\n") - 1)
#define NGX_HTTP_STOCKPRICE_STATE_RECORD_LEAST                                \
    (sizeof("{\"id\":\"\",\"symbol\":\"X\",\"price\":0,"                       \
            "\"valueDateTime\":\"\",\"measurementTimeStamp\":\"\"}\n")     \
     - 1                                                                      \
     + NGX_HTTP_STOCKPRICE_UUID_LEN + sizeof("2024-05-01T10:53:36") - 1      \
     + NGX_HTTP_STOCKPRICE_ISO_MAX)

/* the header's numbers, in ngx_http_stockprice_state_fields[] order */
#define NGX_HTTP_STOCKPRICE_STATE_GENERATION  0
#define NGX_HTTP_STOCKPRICE_STATE_NONCE       1
#define NGX_HTTP_STOCKPRICE_STATE_MODIFIED    2
#define NGX_HTTP_STOCKPRICE_STATE_FILTER      3
#define NGX_HTTP_STOCKPRICE_STATE_SYMBOLS     4
#define NGX_HTTP_STOCKPRICE_STATE_RECORDS     5
#define NGX_HTTP_STOCKPRICE_STATE_NVALIDATORS 6
#define NGX_HTTP_STOCKPRICE_STATE_NFIELDS     7

/* of a record */
#define NGX_HTTP_STOCKPRICE_STATE_FIELDS    5

/* how much of a name a reason quotes */
#define NGX_HTTP_STOCKPRICE_STATE_QUOTE     32


typedef struct {
    const char                     *name;
    size_t                          len;
    unsigned                        hex;        /* 16 digits, else decimal */
    uint64_t                        min;
    uint64_t                        max;
} ngx_http_stockprice_state_field_t;


/* the body of a file whose envelope holds, line by line */

typedef struct {
    const char                     *p;          /* the next line */
    const char                     *last;       /* the end line's start */
    const char                     *start;      /* the current line */
    size_t                          len;        /* without its newline */
    size_t                          line;       /* its number, from 1 */
    char                           *err;
    size_t                          err_size;
} ngx_http_stockprice_state_reader_t;


static size_t ngx_http_stockprice_state_write_head(char *dst,
    const ngx_http_stockprice_state_t *st);
static size_t ngx_http_stockprice_state_write_validator(char *dst, size_t n,
    size_t part, const ngx_http_stockprice_state_validator_t *v);
static size_t ngx_http_stockprice_state_write_symbol(char *dst, size_t n,
    const ngx_http_stockprice_state_sym_t *sym);
static size_t ngx_http_stockprice_state_write_end(char *dst, size_t n);
static size_t ngx_http_stockprice_state_put_hex(char *dst, size_t n,
    uint64_t v, size_t width);
static uint32_t ngx_http_stockprice_state_crc(const char *p, size_t len);

static int ngx_http_stockprice_state_magic(const char *data, size_t len,
    char *err, size_t err_size);
static int ngx_http_stockprice_state_envelope(const char *data, size_t len,
    size_t *body, char *err, size_t err_size);
static int ngx_http_stockprice_state_head(
    ngx_http_stockprice_state_reader_t *rd, const char *zone,
    size_t zone_len, uint64_t *v);
static int ngx_http_stockprice_state_same_zone(const char *s, size_t len,
    const char *zone, size_t zone_len);
static int ngx_http_stockprice_state_validators(
    ngx_http_stockprice_state_reader_t *rd, ngx_http_stockprice_state_t *out,
    size_t n);
static int ngx_http_stockprice_state_validator(const char *p,
    const char *last, size_t *part, ngx_http_stockprice_state_validator_t *v);
static int ngx_http_stockprice_state_validator_valid(
    const ngx_http_stockprice_state_validator_t *v);
static int ngx_http_stockprice_state_symbols(
    ngx_http_stockprice_state_reader_t *rd, ngx_http_stockprice_state_t *out,
    ngx_http_stockprice_state_sym_t *syms, ngx_http_stockprice_str_t *recs,
    size_t nrecords, size_t max_history);
static int ngx_http_stockprice_state_symbol(
    ngx_http_stockprice_state_reader_t *rd, uint64_t generation,
    const ngx_http_stockprice_state_sym_t *prev,
    ngx_http_stockprice_state_sym_t *sym, size_t *n);
static const char *ngx_http_stockprice_state_record(
    const ngx_http_stockprice_state_sym_t *sym, const char *s, size_t len);
static const char *ngx_http_stockprice_state_fields_valid(
    const ngx_http_stockprice_state_sym_t *sym, const cJSON *root,
    const char *s, size_t len);
static int ngx_http_stockprice_state_line(
    ngx_http_stockprice_state_reader_t *rd);
static int ngx_http_stockprice_state_expect(const char **pp,
    const char *last, const char *s, size_t len);
static int ngx_http_stockprice_state_number(const char **pp,
    const char *last, uint64_t *v);
static int ngx_http_stockprice_state_hex(const char **pp, const char *last,
    size_t width, uint64_t *v);
static int ngx_http_stockprice_state_string(const char **pp,
    const char *last, char *buf, size_t size, size_t *len);
static void ngx_http_stockprice_state_quote(char *buf, const char *s,
    size_t len);
static int ngx_http_stockprice_state_error(char *err, size_t err_size,
    int rc, const char *fmt, ...);


static const ngx_http_stockprice_state_field_t
    ngx_http_stockprice_state_fields[] =
{
    { "generation", sizeof("generation") - 1, 0, 1, UINT64_MAX },
    { "nonce", sizeof("nonce") - 1, 1, 0, UINT64_MAX },
    { "last_modified", sizeof("last_modified") - 1, 0, 0,
      NGX_HTTP_STOCKPRICE_STATE_TIME_LAST },
    { "filter", sizeof("filter") - 1, 1, 0, UINT64_MAX },
    { "symbols", sizeof("symbols") - 1, 0, 0, SIZE_MAX },
    { "records", sizeof("records") - 1, 0, 0, SIZE_MAX },
    { "validators", sizeof("validators") - 1, 0, 0,
      NGX_HTTP_STOCKPRICE_STATE_VALIDATORS }
};


/* the five fields of a record, in the order render_record() writes them */

static const char  *ngx_http_stockprice_state_record_fields[
                                        NGX_HTTP_STOCKPRICE_STATE_FIELDS] =
{
    "id", "symbol", "price", "valueDateTime", "measurementTimeStamp"
};


size_t
ngx_http_stockprice_state_write(char *dst,
    const ngx_http_stockprice_state_t *st)
{
    size_t  i, n;

    n = ngx_http_stockprice_state_write_head(dst, st);

    for (i = 0; i < NGX_HTTP_STOCKPRICE_STATE_VALIDATORS; i++) {
        if (ngx_http_stockprice_state_validator_valid(&st->validators[i])) {
            n += ngx_http_stockprice_state_write_validator(dst, n, i,
                                                      &st->validators[i]);
        }
    }

    for (i = 0; i < st->nsymbols; i++) {
        n += ngx_http_stockprice_state_write_symbol(dst, n, &st->syms[i]);
    }

    return n + ngx_http_stockprice_state_write_end(dst, n);
}


static size_t
ngx_http_stockprice_state_write_head(char *dst,
    const ngx_http_stockprice_state_t *st)
{
    size_t                                    i, n;
    uint64_t                                  v[
                                        NGX_HTTP_STOCKPRICE_STATE_NFIELDS];
    const ngx_http_stockprice_state_field_t  *f;

    v[NGX_HTTP_STOCKPRICE_STATE_GENERATION] = st->generation;
    v[NGX_HTTP_STOCKPRICE_STATE_NONCE] = st->nonce;
    v[NGX_HTTP_STOCKPRICE_STATE_FILTER] = st->filter;
    v[NGX_HTTP_STOCKPRICE_STATE_SYMBOLS] = st->nsymbols;

    /* the loader takes no other: within years 1970..9999 */

    v[NGX_HTTP_STOCKPRICE_STATE_MODIFIED] =
        st->last_modified < 0 ? 0
        : (st->last_modified > NGX_HTTP_STOCKPRICE_STATE_TIME_LAST
           ? NGX_HTTP_STOCKPRICE_STATE_TIME_LAST
           : (uint64_t) st->last_modified);

    v[NGX_HTTP_STOCKPRICE_STATE_RECORDS] = 0;

    for (i = 0; i < st->nsymbols; i++) {
        v[NGX_HTTP_STOCKPRICE_STATE_RECORDS] += st->syms[i].nrecords;
    }

    v[NGX_HTTP_STOCKPRICE_STATE_NVALIDATORS] = 0;

    for (i = 0; i < NGX_HTTP_STOCKPRICE_STATE_VALIDATORS; i++) {
        v[NGX_HTTP_STOCKPRICE_STATE_NVALIDATORS] +=
            ngx_http_stockprice_state_validator_valid(&st->validators[i]);
    }

    n = ngx_http_stockprice_render_put(dst, 0, NGX_HTTP_STOCKPRICE_STATE_MAGIC,
                                sizeof(NGX_HTTP_STOCKPRICE_STATE_MAGIC) - 1);
    n += ngx_http_stockprice_render_put_u64(dst, n,
                                           NGX_HTTP_STOCKPRICE_STATE_VERSION);
    n += ngx_http_stockprice_render_put(dst, n, "\nzone ",
                                       sizeof("\nzone ") - 1);
    n += ngx_http_stockprice_render_put_str(dst, n, st->zone, st->zone_len);
    n += ngx_http_stockprice_render_put(dst, n, "\n", 1);

    for (i = 0; i < NGX_HTTP_STOCKPRICE_STATE_NFIELDS; i++) {
        f = &ngx_http_stockprice_state_fields[i];

        n += ngx_http_stockprice_render_put(dst, n, f->name, f->len);
        n += ngx_http_stockprice_render_put(dst, n, " ", 1);

        if (f->hex) {
            n += ngx_http_stockprice_state_put_hex(dst, n, v[i], 16);

        } else {
            n += ngx_http_stockprice_render_put_u64(dst, n, v[i]);
        }

        n += ngx_http_stockprice_render_put(dst, n, "\n", 1);
    }

    return n;
}


/* validator PART KEY "ETAG" "DATE" */

static size_t
ngx_http_stockprice_state_write_validator(char *dst, size_t n, size_t part,
    const ngx_http_stockprice_state_validator_t *v)
{
    size_t  m;

    m = ngx_http_stockprice_render_put(dst, n, "validator ",
                                      sizeof("validator ") - 1);
    m += ngx_http_stockprice_render_put_u64(dst, n + m, part);
    m += ngx_http_stockprice_render_put(dst, n + m, " ", 1);
    m += ngx_http_stockprice_state_put_hex(dst, n + m, v->key, 16);
    m += ngx_http_stockprice_render_put(dst, n + m, " ", 1);
    m += ngx_http_stockprice_render_put_str(dst, n + m, v->etag, v->etag_len);
    m += ngx_http_stockprice_render_put(dst, n + m, " ", 1);
    m += ngx_http_stockprice_render_put_str(dst, n + m, v->date, v->date_len);
    m += ngx_http_stockprice_render_put(dst, n + m, "\n", 1);

    return m;
}


/* symbol "NAME" BORN N, then its N records a line each */

static size_t
ngx_http_stockprice_state_write_symbol(char *dst, size_t n,
    const ngx_http_stockprice_state_sym_t *sym)
{
    size_t  i, m;

    m = ngx_http_stockprice_render_put(dst, n, "symbol ",
                                      sizeof("symbol ") - 1);
    m += ngx_http_stockprice_render_put_str(dst, n + m, sym->name,
                                           sym->name_len);
    m += ngx_http_stockprice_render_put(dst, n + m, " ", 1);
    m += ngx_http_stockprice_render_put_u64(dst, n + m, sym->born);
    m += ngx_http_stockprice_render_put(dst, n + m, " ", 1);
    m += ngx_http_stockprice_render_put_u64(dst, n + m, sym->nrecords);
    m += ngx_http_stockprice_render_put(dst, n + m, "\n", 1);

    for (i = 0; i < sym->nrecords; i++) {
        m += ngx_http_stockprice_render_put(dst, n + m, sym->records[i].data,
                                           sym->records[i].len);
        m += ngx_http_stockprice_render_put(dst, n + m, "\n", 1);
    }

    return m;
}


/* end LENGTH CRC32, of the "n" bytes before */

static size_t
ngx_http_stockprice_state_write_end(char *dst, size_t n)
{
    size_t    m;
    uint32_t  crc;

    crc = dst ? ngx_http_stockprice_state_crc(dst, n) : 0;

    m = ngx_http_stockprice_render_put(dst, n, "end ", sizeof("end ") - 1);
    m += ngx_http_stockprice_render_put_u64(dst, n + m, n);
    m += ngx_http_stockprice_render_put(dst, n + m, " ", 1);
    m += ngx_http_stockprice_state_put_hex(dst, n + m, crc, 8);
    m += ngx_http_stockprice_render_put(dst, n + m, "\n", 1);

    return m;
}





static size_t
ngx_http_stockprice_state_put_hex(char *dst, size_t n, uint64_t v,
    size_t width)
{
    char    buf[16];
    size_t  i;

    static const char  hex[] = "0123456789abcdef";

    for (i = width; i > 0; i--) {
        buf[i - 1] = hex[v & 0xf];
        v >>= 4;
    }

    return ngx_http_stockprice_render_put(dst, n, buf, width);
}


static uint32_t
ngx_http_stockprice_state_crc(const char *p, size_t len)
{
    uLong   crc;
    size_t  n;

    crc = crc32(0L, Z_NULL, 0);

    /* crc32() takes an uInt */

    while (len) {
        n = len < 0x40000000 ? len : 0x40000000;
        crc = crc32(crc, (const Bytef *) p, (uInt) n);
        p += n;
        len -= n;
    }

    return (uint32_t) crc;
}


int
ngx_http_stockprice_state_load(const char *data, size_t len,
    const char *zone, size_t zone_len, size_t max_symbols,
    size_t max_history, ngx_http_stockprice_state_alloc_pt alloc,
    void *alloc_data, ngx_http_stockprice_state_t *out, char *err,
    size_t err_size)
{
    int                                  rc;
    size_t                               n, body, nsymbols, nrecords, size;
    uint64_t                             v[NGX_HTTP_STOCKPRICE_STATE_NFIELDS];
    ngx_http_stockprice_str_t           *recs;
    ngx_http_stockprice_state_sym_t     *syms;
    ngx_http_stockprice_state_reader_t   rd;

    memset(out, 0, sizeof(ngx_http_stockprice_state_t));

    if (err_size) {
        err[0] = '\0';
    }

    rc = ngx_http_stockprice_state_magic(data, len, err, err_size);
    if (rc != NGX_HTTP_STOCKPRICE_STATE_OK) {
        return rc;
    }

    rc = ngx_http_stockprice_state_envelope(data, len, &body, err, err_size);
    if (rc != NGX_HTTP_STOCKPRICE_STATE_OK) {
        return rc;
    }

    rd.p = data;
    rd.last = data + body;
    rd.start = data;
    rd.len = 0;
    rd.line = 0;
    rd.err = err;
    rd.err_size = err_size;

    rc = ngx_http_stockprice_state_head(&rd, zone, zone_len, v);
    if (rc != NGX_HTTP_STOCKPRICE_STATE_OK) {
        return rc;
    }

    nsymbols = (size_t) v[NGX_HTTP_STOCKPRICE_STATE_SYMBOLS];
    nrecords = (size_t) v[NGX_HTTP_STOCKPRICE_STATE_RECORDS];

    if (nsymbols > max_symbols) {
        return ngx_http_stockprice_state_error(err, err_size,
                   NGX_HTTP_STOCKPRICE_STATE_TOO_LARGE,
                   "%zu symbols, more than the zone takes", nsymbols);
    }

    /* before memory is asked for: counts that the file can hold */

    if (nsymbols > body / NGX_HTTP_STOCKPRICE_STATE_SYMBOL_LEAST
        || nrecords > body / NGX_HTTP_STOCKPRICE_STATE_RECORD_LEAST
        || nrecords < nsymbols
        || (nrecords + NGX_HTTP_STOCKPRICE_STATE_HISTORY - 1)
           / NGX_HTTP_STOCKPRICE_STATE_HISTORY > nsymbols)
    {
        return ngx_http_stockprice_state_error(err, err_size,
                   NGX_HTTP_STOCKPRICE_STATE_INVALID,
                   "counts of symbols and records not valid");
    }

    if (max_history < 1) {
        max_history = 1;

    } else if (max_history > NGX_HTTP_STOCKPRICE_STATE_HISTORY) {
        max_history = NGX_HTTP_STOCKPRICE_STATE_HISTORY;
    }

    out->zone = zone;
    out->zone_len = zone_len;
    out->generation = v[NGX_HTTP_STOCKPRICE_STATE_GENERATION];
    out->nonce = v[NGX_HTTP_STOCKPRICE_STATE_NONCE];
    out->filter = v[NGX_HTTP_STOCKPRICE_STATE_FILTER];
    out->last_modified = (int64_t) v[NGX_HTTP_STOCKPRICE_STATE_MODIFIED];

    n = (size_t) v[NGX_HTTP_STOCKPRICE_STATE_NVALIDATORS];

    rc = ngx_http_stockprice_state_validators(&rd, out, n);
    if (rc != NGX_HTTP_STOCKPRICE_STATE_OK) {
        return rc;
    }

    syms = NULL;
    recs = NULL;

    if (nsymbols) {
        size = nrecords * sizeof(ngx_http_stockprice_str_t);

        if (nsymbols > (SIZE_MAX - size)
                       / sizeof(ngx_http_stockprice_state_sym_t))
        {
            return ngx_http_stockprice_state_error(err, err_size,
                       NGX_HTTP_STOCKPRICE_STATE_TOO_LARGE, "too large");
        }

        size += nsymbols * sizeof(ngx_http_stockprice_state_sym_t);

        out->mem = alloc(alloc_data, size);
        if (out->mem == NULL) {
            return ngx_http_stockprice_state_error(err, err_size,
                       NGX_HTTP_STOCKPRICE_STATE_NOMEM,
                       "no memory for %zu bytes", size);
        }

        /* the records' pointers after the symbols: both are aligned alike */

        syms = out->mem;
        recs = (ngx_http_stockprice_str_t *) (syms + nsymbols);
    }

    out->syms = syms;
    out->nsymbols = nsymbols;

    return ngx_http_stockprice_state_symbols(&rd, out, syms, recs, nrecords,
                                             max_history);
}


/* "ngx_stockprice state 1" */

static int
ngx_http_stockprice_state_magic(const char *data, size_t len, char *err,
    size_t err_size)
{
    size_t       m, rest;
    uint64_t     version;
    const char  *p, *nl;

    if (len == 0) {
        return ngx_http_stockprice_state_error(err, err_size,
                   NGX_HTTP_STOCKPRICE_STATE_TRUNCATED, "empty");
    }

    m = sizeof(NGX_HTTP_STOCKPRICE_STATE_MAGIC) - 1;

    if (memcmp(data, NGX_HTTP_STOCKPRICE_STATE_MAGIC, len < m ? len : m)
        != 0)
    {
        return ngx_http_stockprice_state_error(err, err_size,
                   NGX_HTTP_STOCKPRICE_STATE_UNKNOWN, "not a state file");
    }

    /* a version has at most 20 digits */

    rest = len > m ? len - m : 0;
    nl = rest ? memchr(data + m, '\n', rest < 21 ? rest : 21) : NULL;

    if (nl == NULL && rest <= 20) {
        return ngx_http_stockprice_state_error(err, err_size,
                   NGX_HTTP_STOCKPRICE_STATE_TRUNCATED, "truncated");
    }

    if (nl == NULL) {
        return ngx_http_stockprice_state_error(err, err_size,
                   NGX_HTTP_STOCKPRICE_STATE_UNKNOWN, "not a state file");
    }

    p = data + m;

    if (!ngx_http_stockprice_state_number(&p, nl, &version) || p != nl) {
        return ngx_http_stockprice_state_error(err, err_size,
                   NGX_HTTP_STOCKPRICE_STATE_UNKNOWN, "not a state file");
    }

    if (version != NGX_HTTP_STOCKPRICE_STATE_VERSION) {
        return ngx_http_stockprice_state_error(err, err_size,
                   NGX_HTTP_STOCKPRICE_STATE_UNKNOWN,
                   "version %llu not known", (unsigned long long) version);
    }

    return NGX_HTTP_STOCKPRICE_STATE_OK;
}


/* "end LENGTH CRC32" the last line: the body is what they describe */

static int
ngx_http_stockprice_state_envelope(const char *data, size_t len,
    size_t *body, char *err, size_t err_size)
{
    size_t       start;
    uint64_t     n, crc;
    const char  *p, *last;

    *body = 0;

    if (data[len - 1] != '\n') {
        return ngx_http_stockprice_state_error(err, err_size,
                   NGX_HTTP_STOCKPRICE_STATE_TRUNCATED, "truncated");
    }

    for (start = len - 1; start > 0 && data[start - 1] != '\n'; start--) {
        if (len - start >= NGX_HTTP_STOCKPRICE_STATE_END_MAX) {
            break;
        }
    }

    if (start == 0
        || data[start - 1] != '\n'
        || len - start < sizeof("end \n") - 1
        || memcmp(data + start, "end ", sizeof("end ") - 1) != 0)
    {
        return ngx_http_stockprice_state_error(err, err_size,
                   NGX_HTTP_STOCKPRICE_STATE_TRUNCATED, "truncated");
    }

    p = data + start + sizeof("end ") - 1;
    last = data + len - 1;

    if (!ngx_http_stockprice_state_number(&p, last, &n)
        || !ngx_http_stockprice_state_expect(&p, last, " ", 1)
        || !ngx_http_stockprice_state_hex(&p, last, 8, &crc)
        || p != last)
    {
        return ngx_http_stockprice_state_error(err, err_size,
                   NGX_HTTP_STOCKPRICE_STATE_CORRUPT, "end line not valid");
    }

    if (n != start) {
        return ngx_http_stockprice_state_error(err, err_size,
                   NGX_HTTP_STOCKPRICE_STATE_CORRUPT, "length mismatch");
    }

    if (crc != ngx_http_stockprice_state_crc(data, start)) {
        return ngx_http_stockprice_state_error(err, err_size,
                   NGX_HTTP_STOCKPRICE_STATE_CORRUPT, "checksum mismatch");
    }

    *body = start;

    return NGX_HTTP_STOCKPRICE_STATE_OK;
}


static int
ngx_http_stockprice_state_head(ngx_http_stockprice_state_reader_t *rd,
    const char *zone, size_t zone_len, uint64_t *v)
{
    int                                       ok;
    size_t                                    i;
    const char                               *p, *last;
    const ngx_http_stockprice_state_field_t  *f;
    char                                      name[
                                        NGX_HTTP_STOCKPRICE_STATE_QUOTE + 4];

    /* the magic line, as checked */
    (void) ngx_http_stockprice_state_line(rd);

    if (!ngx_http_stockprice_state_line(rd)
        || rd->len < sizeof("zone \"\"") - 1
        || memcmp(rd->start, "zone \"", sizeof("zone \"") - 1) != 0
        || rd->start[rd->len - 1] != '"')
    {
        return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                   NGX_HTTP_STOCKPRICE_STATE_INVALID,
                   "line %zu: \"zone\" expected", rd->line);
    }

    p = rd->start + sizeof("zone \"") - 1;
    i = rd->len - (sizeof("zone \"\"") - 1);

    if (!ngx_http_stockprice_state_same_zone(p, i, zone, zone_len)) {
        ngx_http_stockprice_state_quote(name, p, i);

        return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                   NGX_HTTP_STOCKPRICE_STATE_OTHER_ZONE,
                   "zone \"%s\" is not this zone", name);
    }

    for (i = 0; i < NGX_HTTP_STOCKPRICE_STATE_NFIELDS; i++) {
        f = &ngx_http_stockprice_state_fields[i];

        if (!ngx_http_stockprice_state_line(rd)
            || rd->len <= f->len
            || memcmp(rd->start, f->name, f->len) != 0
            || rd->start[f->len] != ' ')
        {
            return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                       NGX_HTTP_STOCKPRICE_STATE_INVALID,
                       "line %zu: \"%s\" expected", rd->line, f->name);
        }

        p = rd->start + f->len + 1;
        last = rd->start + rd->len;

        ok = f->hex ? ngx_http_stockprice_state_hex(&p, last, 16, &v[i])
                    : ngx_http_stockprice_state_number(&p, last, &v[i]);

        if (!ok || p != last || v[i] < f->min || v[i] > f->max) {
            return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                       NGX_HTTP_STOCKPRICE_STATE_INVALID,
                       "line %zu: %s not valid", rd->line, f->name);
        }
    }

    return NGX_HTTP_STOCKPRICE_STATE_OK;
}


/*
 * Is "s" the zone's name as the writer escapes it: render_escape() one
 * character (or byte that is not one) at a time, as it reads them
 */

static int
ngx_http_stockprice_state_same_zone(const char *s, size_t len,
    const char *zone, size_t zone_len)
{
    char    buf[8];
    size_t  i, k, m, n;

    for (i = 0, n = 0; i < zone_len; i += k) {
        k = ngx_http_stockprice_parse_utf8((const unsigned char *) zone + i,
                                           zone_len - i);
        if (k == 0) {
            k = 1;
        }

        m = ngx_http_stockprice_render_escape(buf, zone + i, k);

        if (m > len - n || memcmp(s + n, buf, m) != 0) {
            return 0;
        }

        n += m;
    }

    return n == len;
}


static int
ngx_http_stockprice_state_validators(ngx_http_stockprice_state_reader_t *rd,
    ngx_http_stockprice_state_t *out, size_t n)
{
    size_t                                  i, part, next;
    ngx_http_stockprice_state_validator_t   v;

    next = 0;

    for (i = 0; i < n; i++) {
        if (!ngx_http_stockprice_state_line(rd)
            || !ngx_http_stockprice_state_validator(rd->start,
                                                    rd->start + rd->len,
                                                    &part, &v)
            || part < next)
        {
            return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                       NGX_HTTP_STOCKPRICE_STATE_INVALID,
                       "line %zu: validator not valid", rd->line);
        }

        out->validators[part] = v;
        next = part + 1;
    }

    return NGX_HTTP_STOCKPRICE_STATE_OK;
}


/* validator PART KEY "ETAG" "DATE" */

static int
ngx_http_stockprice_state_validator(const char *p, const char *last,
    size_t *part, ngx_http_stockprice_state_validator_t *v)
{
    uint64_t  n;

    if (!ngx_http_stockprice_state_expect(&p, last, "validator ",
                                          sizeof("validator ") - 1)
        || !ngx_http_stockprice_state_number(&p, last, &n)
        || n >= NGX_HTTP_STOCKPRICE_STATE_VALIDATORS
        || !ngx_http_stockprice_state_expect(&p, last, " ", 1)
        || !ngx_http_stockprice_state_hex(&p, last, 16, &v->key)
        || !ngx_http_stockprice_state_expect(&p, last, " ", 1)
        || !ngx_http_stockprice_state_string(&p, last, v->etag,
                                             sizeof(v->etag), &v->etag_len)
        || !ngx_http_stockprice_state_expect(&p, last, " ", 1)
        || !ngx_http_stockprice_state_string(&p, last, v->date,
                                             sizeof(v->date), &v->date_len)
        || p != last)
    {
        return 0;
    }

    *part = (size_t) n;

    return ngx_http_stockprice_state_validator_valid(v);
}


/* as validator_get() keeps them: visible ASCII and spaces, one at least */

static int
ngx_http_stockprice_state_validator_valid(
    const ngx_http_stockprice_state_validator_t *v)
{
    size_t  i;

    if (v->key == 0
        || v->etag_len > NGX_HTTP_STOCKPRICE_STATE_ETAG
        || v->date_len > NGX_HTTP_STOCKPRICE_STATE_DATE
        || v->etag_len + v->date_len == 0)
    {
        return 0;
    }

    for (i = 0; i < v->etag_len; i++) {
        if (v->etag[i] < 0x20 || v->etag[i] > 0x7e) {
            return 0;
        }
    }

    for (i = 0; i < v->date_len; i++) {
        if (v->date[i] < 0x20 || v->date[i] > 0x7e) {
            return 0;
        }
    }

    return 1;
}


static int
ngx_http_stockprice_state_symbols(ngx_http_stockprice_state_reader_t *rd,
    ngx_http_stockprice_state_t *out, ngx_http_stockprice_state_sym_t *syms,
    ngx_http_stockprice_str_t *recs, size_t nrecords, size_t max_history)
{
    int                               rc;
    size_t                            i, j, n, total, kept;
    const char                       *reason;
    ngx_http_stockprice_state_sym_t  *sym;
    char                              name[
                                        NGX_HTTP_STOCKPRICE_STATE_QUOTE + 4];

    total = 0;
    kept = 0;

    for (i = 0; i < out->nsymbols; i++) {
        sym = &syms[i];

        rc = ngx_http_stockprice_state_symbol(rd, out->generation,
                                              i ? &syms[i - 1] : NULL, sym,
                                              &n);
        if (rc != NGX_HTTP_STOCKPRICE_STATE_OK) {
            return rc;
        }

        if (n > nrecords - total) {
            return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                       NGX_HTTP_STOCKPRICE_STATE_INVALID,
                       "line %zu: more records than the header says",
                       rd->line);
        }

        total += n;
        sym->records = &recs[kept];
        sym->nrecords = n < max_history ? n : max_history;

        for (j = 0; j < n; j++) {
            if (!ngx_http_stockprice_state_line(rd)) {
                reason = "missing";

            } else {
                reason = ngx_http_stockprice_state_record(sym, rd->start,
                                                          rd->len);
            }

            if (reason) {
                ngx_http_stockprice_state_quote(name, sym->name,
                                                sym->name_len);

                return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                           NGX_HTTP_STOCKPRICE_STATE_INVALID,
                           "line %zu: record %zu of \"%s\": %s", rd->line,
                           j + 1, name, reason);
            }

            if (j < max_history) {
                recs[kept].data = rd->start;
                recs[kept].len = rd->len;
                kept++;
            }
        }

        out->dropped += n - sym->nrecords;
    }

    if (rd->p != rd->last) {
        return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                   NGX_HTTP_STOCKPRICE_STATE_INVALID,
                   "line %zu: more symbols than the header says",
                   rd->line + 1);
    }

    if (total != nrecords) {
        return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                   NGX_HTTP_STOCKPRICE_STATE_INVALID,
                   "fewer records than the header says");
    }

    out->nrecords = kept;

    return NGX_HTTP_STOCKPRICE_STATE_OK;
}


/* symbol "NAME" BORN N */

static int
ngx_http_stockprice_state_symbol(ngx_http_stockprice_state_reader_t *rd,
    uint64_t generation, const ngx_http_stockprice_state_sym_t *prev,
    ngx_http_stockprice_state_sym_t *sym, size_t *n)
{
    int          rc;
    uint64_t     born, count;
    const char  *p, *last;
    char         name[NGX_HTTP_STOCKPRICE_STATE_QUOTE + 4];

    *n = 0;

    if (!ngx_http_stockprice_state_line(rd)
        || rd->len < sizeof("symbol ") - 1
        || memcmp(rd->start, "symbol ", sizeof("symbol ") - 1) != 0)
    {
        return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                   NGX_HTTP_STOCKPRICE_STATE_INVALID,
                   "line %zu: \"symbol\" expected", rd->line);
    }

    p = rd->start + sizeof("symbol ") - 1;
    last = rd->start + rd->len;

    if (!ngx_http_stockprice_state_string(&p, last, sym->name,
                                          sizeof(sym->name), &sym->name_len)
        || !ngx_http_stockprice_parse_symbol_valid(sym->name, sym->name_len))
    {
        return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                   NGX_HTTP_STOCKPRICE_STATE_INVALID,
                   "line %zu: symbol not valid", rd->line);
    }

    if (!ngx_http_stockprice_state_expect(&p, last, " ", 1)
        || !ngx_http_stockprice_state_number(&p, last, &born)
        || born > UINT32_MAX
        || !ngx_http_stockprice_state_expect(&p, last, " ", 1)
        || !ngx_http_stockprice_state_number(&p, last, &count)
        || count < 1 || count > NGX_HTTP_STOCKPRICE_STATE_HISTORY
        || p != last)
    {
        return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                   NGX_HTTP_STOCKPRICE_STATE_INVALID,
                   "line %zu: symbol line not valid", rd->line);
    }

    ngx_http_stockprice_state_quote(name, sym->name, sym->name_len);

    if (prev) {
        rc = ngx_http_stockprice_parse_symbol_cmp(prev->name, prev->name_len,
                                                  sym->name, sym->name_len);
        if (rc == 0) {
            return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                       NGX_HTTP_STOCKPRICE_STATE_INVALID,
                       "line %zu: symbol \"%s\" twice", rd->line, name);
        }

        if (rc > 0) {
            return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                       NGX_HTTP_STOCKPRICE_STATE_INVALID,
                       "line %zu: symbols not sorted", rd->line);
        }
    }

    /*
     * born is the low 32 bits of a generation not after the snapshot's:
     * while generations fit in 32 bits, it is 1..generation
     */

    if (generation <= UINT32_MAX && (born == 0 || born > generation)) {
        return ngx_http_stockprice_state_error(rd->err, rd->err_size,
                   NGX_HTTP_STOCKPRICE_STATE_INVALID,
                   "line %zu: symbol \"%s\" born after the snapshot",
                   rd->line, name);
    }

    sym->born = (uint32_t) born;
    *n = (size_t) count;

    return NGX_HTTP_STOCKPRICE_STATE_OK;
}


/*
 * A record of "sym": NULL if valid, else why not.  The text is parsed
 * from a NUL-terminated copy, so that cJSON reads nothing beyond it.
 */

static const char *
ngx_http_stockprice_state_record(const ngx_http_stockprice_state_sym_t *sym,
    const char *s, size_t len)
{
    cJSON       *root;
    const char  *end, *reason;
    char         text[NGX_HTTP_STOCKPRICE_RECORD_LONGEST + 1];

    if (len > NGX_HTTP_STOCKPRICE_RECORD_LONGEST) {
        return "too long";
    }

    memcpy(text, s, len);
    text[len] = '\0';

    end = NULL;

    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root == NULL) {
        return "not JSON";
    }

    if (end != text + len) {
        reason = "not JSON";

    } else {
        reason = ngx_http_stockprice_state_fields_valid(sym, root, text, len);
    }

    cJSON_Delete(root);

    return reason;
}


/*
 * The five fields, each valid, and rendered again exactly the text: the
 * record is byte for byte one the module makes
 */

static const char *
ngx_http_stockprice_state_fields_valid(
    const ngx_http_stockprice_state_sym_t *sym, const cJSON *root,
    const char *s, size_t len)
{
    size_t                         i, n, id_len, vt_len, mt_len;
    const cJSON                   *item, *f[NGX_HTTP_STOCKPRICE_STATE_FIELDS];
    const char                    *id, *symbol, *vt, *mt;
    ngx_http_stockprice_record_t   rec;
    char                           buf[NGX_HTTP_STOCKPRICE_RECORD_LONGEST];

    if (!cJSON_IsObject(root)) {
        return "not an object";
    }

    item = root->child;

    for (i = 0; i < NGX_HTTP_STOCKPRICE_STATE_FIELDS; i++) {
        if (item == NULL || item->string == NULL
            || strcmp(item->string, ngx_http_stockprice_state_record_fields[i])
               != 0)
        {
            return "fields not valid";
        }

        f[i] = item;
        item = item->next;
    }

    if (item != NULL) {
        return "fields not valid";
    }

    id = cJSON_GetStringValue(f[0]);
    symbol = cJSON_GetStringValue(f[1]);
    vt = cJSON_GetStringValue(f[3]);
    mt = cJSON_GetStringValue(f[4]);

    id_len = id ? strlen(id) : 0;
    vt_len = vt ? strlen(vt) : 0;
    mt_len = mt ? strlen(mt) : 0;

    if (!ngx_http_stockprice_parse_uuid_valid(id, id_len)) {
        return "id not valid";
    }

    if (symbol == NULL || strlen(symbol) != sym->name_len
        || memcmp(symbol, sym->name, sym->name_len) != 0)
    {
        return "of another symbol";
    }

    if (!cJSON_IsNumber(f[2]) || !isfinite(f[2]->valuedouble)) {
        return "price not valid";
    }

    if (!ngx_http_stockprice_parse_time_valid(vt, vt_len)) {
        return "valueDateTime not valid";
    }

    /* as render_time() makes it: "2024-05-01T10:53:36.791231Z" */

    if (mt_len != NGX_HTTP_STOCKPRICE_ISO_MAX
        || !ngx_http_stockprice_parse_time_valid(mt, mt_len)
        || mt[19] != '.' || mt[mt_len - 1] != 'Z')
    {
        return "measurementTimeStamp not valid";
    }

    memset(&rec, 0, sizeof(ngx_http_stockprice_record_t));

    rec.price = f[2]->valuedouble;
    rec.symbol_len = sym->name_len;
    memcpy(rec.symbol, sym->name, sym->name_len);
    rec.value_time_len = vt_len;
    memcpy(rec.value_time, vt, vt_len);
    rec.has_id = 1;
    memcpy(rec.id, id, NGX_HTTP_STOCKPRICE_UUID_LEN);

    n = ngx_http_stockprice_render_record(NULL, &rec, mt, mt_len);

    if (n != len
        || ngx_http_stockprice_render_record(buf, &rec, mt, mt_len) != n
        || memcmp(buf, s, n) != 0)
    {
        return "not as the module writes it";
    }

    return NULL;
}


static int
ngx_http_stockprice_state_line(ngx_http_stockprice_state_reader_t *rd)
{
    const char  *nl;

    rd->line++;

    if (rd->p == rd->last) {
        return 0;
    }

    /* the body ends with a newline */

    nl = memchr(rd->p, '\n', rd->last - rd->p);

    rd->start = rd->p;
    rd->len = nl - rd->p;
    rd->p = nl + 1;

    return 1;
}


static int
ngx_http_stockprice_state_expect(const char **pp, const char *last,
    const char *s, size_t len)
{
    if ((size_t) (last - *pp) < len || memcmp(*pp, s, len) != 0) {
        return 0;
    }

    *pp += len;

    return 1;
}


/* a decimal number as put_u64() writes it: no sign, no leading zero */

static int
ngx_http_stockprice_state_number(const char **pp, const char *last,
    uint64_t *v)
{
    unsigned     d;
    uint64_t     n;
    const char  *p;

    p = *pp;

    if (p == last || *p < '0' || *p > '9' || (*p == '0' && p + 1 < last
                                              && p[1] >= '0' && p[1] <= '9'))
    {
        return 0;
    }

    for (n = 0; p < last && *p >= '0' && *p <= '9'; p++) {
        d = (unsigned) (*p - '0');

        if (n > (UINT64_MAX - d) / 10) {
            return 0;
        }

        n = n * 10 + d;
    }

    *pp = p;
    *v = n;

    return 1;
}


/* exactly "width" lowercase hex digits */

static int
ngx_http_stockprice_state_hex(const char **pp, const char *last,
    size_t width, uint64_t *v)
{
    size_t       i;
    uint64_t     n;
    const char  *p;

    p = *pp;

    if ((size_t) (last - p) < width) {
        return 0;
    }

    for (i = 0, n = 0; i < width; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            n = (n << 4) | (uint64_t) (p[i] - '0');

        } else if (p[i] >= 'a' && p[i] <= 'f') {
            n = (n << 4) | (uint64_t) (p[i] - 'a' + 10);

        } else {
            return 0;
        }
    }

    *pp = p + width;
    *v = n;

    return 1;
}


/*
 * A JSON string as render_escape() writes names and validators, which
 * hold no control character: only '"' and '\\' escaped; into buf, at
 * most "size" bytes
 */

static int
ngx_http_stockprice_state_string(const char **pp, const char *last,
    char *buf, size_t size, size_t *len)
{
    size_t       n;
    const char  *p;

    p = *pp;

    if (p == last || *p++ != '"') {
        return 0;
    }

    for (n = 0; p < last && *p != '"'; p++) {
        if ((unsigned char) *p < 0x20 || n == size) {
            return 0;
        }

        if (*p == '\\') {
            if (++p == last || (*p != '"' && *p != '\\')) {
                return 0;
            }
        }

        buf[n++] = *p;
    }

    if (p == last) {
        return 0;
    }

    *pp = p + 1;
    *len = n;

    return 1;
}


/*
 * Up to QUOTE bytes of a name for a reason: printable ASCII but quotes
 * and backslashes as they are, any other byte as '?'
 */

static void
ngx_http_stockprice_state_quote(char *buf, const char *s, size_t len)
{
    size_t         i, n;
    unsigned char  c;

    n = len < NGX_HTTP_STOCKPRICE_STATE_QUOTE
        ? len : NGX_HTTP_STOCKPRICE_STATE_QUOTE;

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];
        buf[i] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? c : '?';
    }

    if (len > n) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }

    buf[n] = '\0';
}


static int
ngx_http_stockprice_state_error(char *err, size_t err_size, int rc,
    const char *fmt, ...)
{
    va_list  args;

    if (err_size) {
        va_start(args, fmt);
        (void) vsnprintf(err, err_size, fmt, args);
        va_end(args);
    }

    return rc;
}
