
/*
 * Copyright (C) ngx_stockprice authors
 */


/*
 * The state file: what the writer makes the loader gives back, field for
 * field and byte for byte, and the loader refuses anything else.
 *
 *   test_state                 the tests
 *   test_state --corpus DIR    writes the seeds of fuzz_state into DIR
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <zlib.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>
#include <ngx_http_stockprice_state.h>


#define ZONE          "stocks"
#define FX_SYMBOLS    64
#define FX_RECORDS    1024
#define FX_TEXT       (2 * NGX_HTTP_STOCKPRICE_RECORD_LONGEST)  /* too long */

#define ID            "0f8fad5b-d9cb-469f-a165-70867728950e"
#define VTIME         "2024-05-01T10:53:36.7912345Z"
#define MTIME         "2024-05-01T10:53:36.791231Z"

/* ETags of 96 bytes, the longest kept, and of 97 as written: "\"x..x\"" */
#define ETAG96        "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"     \
                      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""
#define ETAG97        "\"\\\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
                      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\\"\""


/* a state to write, with room for its symbols and records */

typedef struct {
    ngx_http_stockprice_state_t      st;
    ngx_http_stockprice_state_sym_t  syms[FX_SYMBOLS];
    ngx_http_stockprice_str_t        recs[FX_RECORDS];
    char                             text[FX_RECORDS][FX_TEXT];
    size_t                           nrecs;
} fixture_t;


typedef struct {
    size_t                           calls;
    size_t                           size;
    int                              fail;
} alloc_t;


static uint64_t
rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;

    return *x;
}


static void *
test_alloc(void *data, size_t size)
{
    alloc_t  *a = data;

    a->calls++;
    a->size = size;

    return a->fail ? NULL : malloc(size);
}


static fixture_t *
fx_new(void)
{
    fixture_t  *fx;

    fx = calloc(1, sizeof(fixture_t));
    assert_non_null(fx);

    fx->st.zone = ZONE;
    fx->st.zone_len = sizeof(ZONE) - 1;
    fx->st.generation = 1234;
    fx->st.nonce = 0x9f3a0c1d2e4b5a67ULL;
    fx->st.filter = 0x0123456789abcdefULL;
    fx->st.last_modified = 1714560816;
    fx->st.syms = fx->syms;

    return fx;
}


static void
fx_symbol(fixture_t *fx, const char *name, size_t len, uint32_t born)
{
    ngx_http_stockprice_state_sym_t  *sym;

    assert_true(fx->st.nsymbols < FX_SYMBOLS);
    assert_true(len <= NGX_HTTP_STOCKPRICE_SYMBOL_MAX);

    sym = &fx->syms[fx->st.nsymbols++];

    memcpy(sym->name, name, len);
    sym->name_len = len;
    sym->born = born;
    sym->records = &fx->recs[fx->nrecs];
    sym->nrecords = 0;
}


/* a record's text as it is, to the last symbol */

static void
fx_text(fixture_t *fx, const char *s, size_t len)
{
    ngx_http_stockprice_state_sym_t  *sym;

    assert_true(fx->st.nsymbols > 0);
    assert_true(fx->nrecs < FX_RECORDS);
    assert_true(len <= FX_TEXT);

    sym = &fx->syms[fx->st.nsymbols - 1];

    memcpy(fx->text[fx->nrecs], s, len);
    fx->recs[fx->nrecs].data = fx->text[fx->nrecs];
    fx->recs[fx->nrecs].len = len;
    fx->nrecs++;

    sym->nrecords++;
    fx->st.nrecords++;
}


/* a record as the module renders it, of "symbol" (NULL: the last one's) */

static void
fx_record(fixture_t *fx, const char *symbol, double price, const char *vt,
    const char *mt, const char *id)
{
    size_t                            n;
    char                              buf[NGX_HTTP_STOCKPRICE_RECORD_LONGEST];
    ngx_http_stockprice_record_t      rec;
    ngx_http_stockprice_state_sym_t  *sym;

    sym = &fx->syms[fx->st.nsymbols - 1];

    memset(&rec, 0, sizeof(rec));

    if (symbol) {
        rec.symbol_len = strlen(symbol);
        memcpy(rec.symbol, symbol, rec.symbol_len);

    } else {
        rec.symbol_len = sym->name_len;
        memcpy(rec.symbol, sym->name, sym->name_len);
    }

    rec.price = price;
    rec.value_time_len = strlen(vt);
    memcpy(rec.value_time, vt, rec.value_time_len);
    rec.has_id = 1;
    memcpy(rec.id, id, NGX_HTTP_STOCKPRICE_UUID_LEN);

    n = ngx_http_stockprice_render_record(NULL, &rec, mt, strlen(mt));
    assert_true(n <= sizeof(buf));
    assert_int_equal(ngx_http_stockprice_render_record(buf, &rec, mt,
                                                       strlen(mt)), n);

    fx_text(fx, buf, n);
}


static void
fx_validator(fixture_t *fx, size_t part, uint64_t key, const char *etag,
    const char *date)
{
    ngx_http_stockprice_state_validator_t  *v;

    v = &fx->st.validators[part];

    v->key = key;
    v->etag_len = strlen(etag);
    v->date_len = strlen(date);
    memcpy(v->etag, etag, v->etag_len);
    memcpy(v->date, date, v->date_len);
}


/* symbols "S000".., 1..history records each, prices and times of all kinds */

static void
fx_random(fixture_t *fx, size_t nsymbols, size_t history, uint64_t seed)
{
    size_t    i, j, n;
    double    price;
    int64_t   sec;
    uint64_t  r;
    char      name[24], id[40], vt[NGX_HTTP_STOCKPRICE_ISO_LEN],
              mt[NGX_HTTP_STOCKPRICE_ISO_LEN];

    static const double  prices[] = {
        0, -0.0, 1, 189.5, 0.1, 1e-7, 123456789.123, 5e-324, 1.7e308,
        -42.25, 2.2250738585072014e-308
    };

    for (i = 0; i < nsymbols; i++) {
        snprintf(name, sizeof(name), "S%03zu", i);
        fx_symbol(fx, name, strlen(name),
                  (uint32_t) (1 + rnd(&seed) % fx->st.generation));

        n = 1 + rnd(&seed) % history;

        for (j = 0; j < n; j++) {
            r = rnd(&seed);

            if (r % 3 == 0) {
                price = prices[(r >> 8) % (sizeof(prices) / sizeof(double))];

            } else {
                price = (double) (r >> 20) / 1024.0;
            }

            sec = (int64_t) (rnd(&seed) % 253402300800ULL);

            ngx_http_stockprice_render_time(mt, sec, (long) (r % 1000000));
            ngx_http_stockprice_render_ticks(vt, sec, (long) (r % 10000000));

            snprintf(id, sizeof(id), "%08x-%04x-4%03x-a%03x-%012llx",
                     (unsigned) r, (unsigned) (r >> 32) & 0xffff,
                     (unsigned) (r >> 48) & 0xfff, (unsigned) j & 0xfff,
                     (unsigned long long) (rnd(&seed) & 0xffffffffffffULL));

            fx_record(fx, NULL, price, vt, mt, id);
        }
    }
}


/* both passes: the file in a buffer of exactly its length (no NUL) */

static char *
state_text(const ngx_http_stockprice_state_t *st, size_t *len)
{
    char    *buf;
    size_t   n;

    n = ngx_http_stockprice_state_write(NULL, st);

    buf = malloc(n);
    assert_non_null(buf);

    assert_int_equal(ngx_http_stockprice_state_write(buf, st), n);

    *len = n;

    return buf;
}


static char *
exact(const char *s, size_t len)
{
    char  *buf;

    buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, s, len);

    return buf;
}


static int
contains(const char *s, size_t len, const char *what)
{
    size_t  i, n;

    n = strlen(what);

    for (i = 0; i + n <= len; i++) {
        if (memcmp(s + i, what, n) == 0) {
            return 1;
        }
    }

    return 0;
}


/* the end line made again for what comes before it (found or not) */

static char *
reseal(const char *s, size_t len, size_t *out_len)
{
    char    *buf;
    size_t   body;
    char     end[64];

    for (body = len; body > 0; body--) {
        if (body + 4 <= len && s[body - 1] == '\n'
            && memcmp(s + body, "end ", 4) == 0)
        {
            break;
        }
    }

    if (body == 0) {
        body = len;
    }

    snprintf(end, sizeof(end), "end %zu %08lx\n", body,
             crc32(0L, (const Bytef *) s, (uInt) body));

    buf = malloc(body + strlen(end));
    assert_non_null(buf);
    memcpy(buf, s, body);
    memcpy(buf + body, end, strlen(end));

    *out_len = body + strlen(end);

    return buf;
}


/* the first "from" replaced by "to", resealed */

static char *
edited(const char *s, size_t len, const char *from, const char *to,
    size_t *out_len)
{
    char    *buf, *sealed, *p;
    size_t   n, flen, tlen;

    buf = malloc(len + 1);
    assert_non_null(buf);
    memcpy(buf, s, len);
    buf[len] = '\0';

    p = strstr(buf, from);
    if (p == NULL) {
        fail_msg("\"%s\" not in the file", from);
    }

    flen = strlen(from);
    tlen = strlen(to);
    n = len - flen + tlen;

    sealed = malloc(n);
    assert_non_null(sealed);
    memcpy(sealed, buf, p - buf);
    memcpy(sealed + (p - buf), to, tlen);
    memcpy(sealed + (p - buf) + tlen, p + flen, len - (p - buf) - flen);
    free(buf);

    buf = reseal(sealed, n, out_len);
    free(sealed);

    return buf;
}


static int
load(const char *data, size_t len, size_t max_symbols, size_t max_history,
    ngx_http_stockprice_state_t *out, alloc_t *a, char *err, size_t size)
{
    return ngx_http_stockprice_state_load(data, len, ZONE, sizeof(ZONE) - 1,
                                          max_symbols, max_history,
                                          test_alloc, a, out, err, size);
}


/* a reason: short, printable, NUL-terminated within its buffer */

static void
check_reason(const char *err, size_t size)
{
    size_t  i;

    for (i = 0; i < size && err[i]; i++) {
        assert_true(err[i] >= 0x20 && err[i] <= 0x7e);
    }

    assert_true(i > 0);
    assert_true(i < size);
}


static void
same_state(const ngx_http_stockprice_state_t *a,
    const ngx_http_stockprice_state_t *b)
{
    size_t                                        i, j;
    const ngx_http_stockprice_state_sym_t        *x, *y;
    const ngx_http_stockprice_state_validator_t  *v, *w;

    assert_int_equal(a->zone_len, b->zone_len);
    assert_memory_equal(a->zone, b->zone, a->zone_len);
    assert_true(a->generation == b->generation);
    assert_true(a->nonce == b->nonce);
    assert_true(a->filter == b->filter);
    assert_true(a->last_modified == b->last_modified);
    assert_int_equal(a->nsymbols, b->nsymbols);
    assert_int_equal(a->nrecords, b->nrecords);

    for (i = 0; i < a->nsymbols; i++) {
        x = &a->syms[i];
        y = &b->syms[i];

        assert_int_equal(x->name_len, y->name_len);
        assert_memory_equal(x->name, y->name, x->name_len);
        assert_int_equal(x->born, y->born);
        assert_int_equal(x->nrecords, y->nrecords);

        for (j = 0; j < x->nrecords; j++) {
            assert_int_equal(x->records[j].len, y->records[j].len);
            assert_memory_equal(x->records[j].data, y->records[j].data,
                                x->records[j].len);
        }
    }

    for (i = 0; i < NGX_HTTP_STOCKPRICE_STATE_VALIDATORS; i++) {
        v = &a->validators[i];
        w = &b->validators[i];

        assert_true(v->key == w->key);

        if (v->key) {
            assert_int_equal(v->etag_len, w->etag_len);
            assert_int_equal(v->date_len, w->date_len);
            assert_memory_equal(v->etag, w->etag, v->etag_len);
            assert_memory_equal(v->date, w->date, v->date_len);
        }
    }
}


/*
 * write, load, compare; the loaded state written again is the same file,
 * and its records point into it
 */

static void
round_trip(fixture_t *fx)
{
    int                           rc;
    char                         *file, *again, err[128];
    size_t                        len, len2, i, j;
    alloc_t                       a;
    ngx_http_stockprice_state_t   out;

    file = state_text(&fx->st, &len);

    memset(&a, 0, sizeof(a));

    rc = load(file, len, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_HISTORY, &out,
              &a, err, sizeof(err));
    if (rc != NGX_HTTP_STOCKPRICE_STATE_OK) {
        fail_msg("refused: %s", err);
    }

    assert_int_equal(out.dropped, 0);
    assert_int_equal(a.calls, fx->st.nsymbols ? 1 : 0);
    assert_true(out.mem == NULL || a.calls == 1);

    same_state(&fx->st, &out);

    for (i = 0; i < out.nsymbols; i++) {
        for (j = 0; j < out.syms[i].nrecords; j++) {
            assert_true(out.syms[i].records[j].data >= file);
            assert_true(out.syms[i].records[j].data
                        + out.syms[i].records[j].len <= file + len);
        }
    }

    again = state_text(&out, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(again, file, len);

    free(again);
    free(out.mem);
    free(file);
}


/* refused with "rc" (-1: any) and a reason that holds "reason" */

static void
refused(const char *data, size_t len, size_t max_symbols, int rc,
    const char *reason)
{
    char                         *copy, err[128];
    alloc_t                       a;
    ngx_http_stockprice_state_t   out;

    copy = exact(data, len);
    memset(&a, 0, sizeof(a));

    if (rc < 0) {
        assert_int_not_equal(load(copy, len, max_symbols, 10, &out, &a, err,
                                  sizeof(err)),
                             NGX_HTTP_STOCKPRICE_STATE_OK);

    } else {
        assert_int_equal(load(copy, len, max_symbols, 10, &out, &a, err,
                              sizeof(err)),
                         rc);
    }

    check_reason(err, sizeof(err));

    if (reason && strstr(err, reason) == NULL) {
        fail_msg("reason \"%s\", not \"%s\"", err, reason);
    }

    assert_true(a.calls <= 1);
    assert_true(out.mem == NULL || a.calls == 1);

    free(out.mem);
    free(copy);
}


/* the file of fx, with "from" replaced by "to" and resealed, refused */

static void
refused_edit(fixture_t *fx, const char *from, const char *to, int rc,
    const char *reason)
{
    char    *file, *bad;
    size_t   len, n;

    file = state_text(&fx->st, &len);
    bad = edited(file, len, from, to, &n);

    refused(bad, n, FX_SYMBOLS, rc, reason);

    free(bad);
    free(file);
}


/* one symbol with a record of this text, refused for "reason" */

static void
refused_record(const char *text, const char *reason)
{
    char       *file;
    size_t      len;
    fixture_t  *fx;

    fx = fx_new();
    fx_symbol(fx, "AAPL", 4, 7);
    fx_text(fx, text, strlen(text));

    file = state_text(&fx->st, &len);
    refused(file, len, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_INVALID,
            reason);

    free(file);
    free(fx);
}


static fixture_t *
fx_small(void)
{
    fixture_t  *fx;

    fx = fx_new();

    fx_validator(fx, 0, 123456789, "\"5e1f\"", "");

    fx_symbol(fx, "AAPL", 4, 1233);
    fx_record(fx, NULL, 189.5, VTIME, MTIME, ID);
    fx_record(fx, NULL, 189.25, "2024-05-01T10:53:26+02:00",
              "2024-05-01T10:53:26.500000Z",
              "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed");

    fx_symbol(fx, "MSFT", 4, 1234);
    fx_record(fx, NULL, 411, "2024-05-01T10:53:36Z", MTIME,
              "6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b");

    return fx;
}


static void
test_round_trip_empty(void **state)
{
    fixture_t  *fx;

    (void) state;

    fx = fx_new();
    round_trip(fx);

    fx->st.generation = UINT64_MAX;
    fx->st.nonce = 0;
    fx->st.filter = UINT64_MAX;
    fx->st.last_modified = 0;
    round_trip(fx);

    free(fx);
}


static void
test_round_trip_one(void **state)
{
    fixture_t  *fx;

    (void) state;

    fx = fx_new();
    fx_symbol(fx, "AAPL", 4, 1);
    fx_record(fx, NULL, 189.5, VTIME, MTIME, ID);
    round_trip(fx);

    free(fx);
}


static void
test_round_trip_many(void **state)
{
    uint64_t    seed;
    fixture_t  *fx;

    (void) state;

    for (seed = 1; seed <= 8; seed++) {
        fx = fx_new();
        fx->st.generation = 1000 + seed;
        fx_random(fx, FX_SYMBOLS, 15, seed * 0x9e3779b97f4a7c15ULL);
        round_trip(fx);
        free(fx);
    }

    /* generations past 32 bits: born is then any */

    fx = fx_new();
    fx->st.generation = 0x100000005ULL;
    fx_random(fx, 3, 3, 7);
    fx->syms[0].born = 0;
    fx->syms[1].born = UINT32_MAX;
    round_trip(fx);
    free(fx);
}


/* names escaped and in UTF-8, of 1 and 32 bytes; a zone's name too */

static void
test_round_trip_escaped(void **state)
{
    char                           err[128], *file;
    size_t                         len;
    alloc_t                        a;
    fixture_t                     *fx;
    ngx_http_stockprice_state_t    out;

    static const char  *names[] = {
        "\"", "A\"B", "A\\B", "BRK.B", "X", "\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\"
        "\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\", "\xc3\x84\xc3\x96",
        "\xe2\x82\xac" "EUR", "\xf0\x9f\x93\x88", "~"
    };

    (void) state;

    fx = fx_new();

    /* in byte order */

    fx_symbol(fx, names[0], strlen(names[0]), 3);
    fx_record(fx, NULL, 1, VTIME, MTIME, ID);
    fx_symbol(fx, names[1], strlen(names[1]), 3);
    fx_record(fx, NULL, 2, VTIME, MTIME, ID);
    fx_record(fx, NULL, 3, VTIME, MTIME, ID);
    fx_symbol(fx, names[2], strlen(names[2]), 3);
    fx_record(fx, NULL, 4, VTIME, MTIME, ID);
    fx_symbol(fx, names[3], strlen(names[3]), 3);
    fx_record(fx, NULL, 5, VTIME, MTIME, ID);
    fx_symbol(fx, names[4], strlen(names[4]), 3);
    fx_record(fx, NULL, 6, VTIME, MTIME, ID);
    fx_symbol(fx, names[5], strlen(names[5]), 3);
    fx_record(fx, NULL, 7, VTIME, MTIME, ID);
    fx_symbol(fx, names[9], strlen(names[9]), 3);
    fx_record(fx, NULL, 8, VTIME, MTIME, ID);
    fx_symbol(fx, names[6], strlen(names[6]), 3);
    fx_record(fx, NULL, 9, VTIME, MTIME, ID);
    fx_symbol(fx, names[7], strlen(names[7]), 3);
    fx_record(fx, NULL, 10, VTIME, MTIME, ID);
    fx_symbol(fx, names[8], strlen(names[8]), 3);
    fx_record(fx, NULL, 11, VTIME, MTIME, ID);

    assert_int_equal(fx->syms[5].name_len, NGX_HTTP_STOCKPRICE_SYMBOL_MAX);

    round_trip(fx);

    /* a zone named oddly, a byte that is not UTF-8 among them */

    fx->st.zone = "st\"o\\cks \xc3\xa9\xff";
    fx->st.zone_len = strlen(fx->st.zone);

    file = state_text(&fx->st, &len);
    memset(&a, 0, sizeof(a));

    assert_int_equal(ngx_http_stockprice_state_load(file, len, fx->st.zone,
                         fx->st.zone_len, FX_SYMBOLS, 10, test_alloc, &a,
                         &out, err, sizeof(err)),
                     NGX_HTTP_STOCKPRICE_STATE_OK);
    same_state(&fx->st, &out);
    free(out.mem);

    /* the same but the byte that is not UTF-8 */

    memset(&a, 0, sizeof(a));

    assert_int_equal(ngx_http_stockprice_state_load(file, len, fx->st.zone,
                         fx->st.zone_len - 1, FX_SYMBOLS, 10, test_alloc, &a,
                         &out, err, sizeof(err)),
                     NGX_HTTP_STOCKPRICE_STATE_OTHER_ZONE);
    check_reason(err, sizeof(err));
    assert_string_equal(err, "zone \"st??o??cks ???ufffd\" is not this zone");
    free(out.mem);

    free(file);
    free(fx);
}


static void
test_round_trip_validators(void **state)
{
    char                          *file;
    size_t                         len;
    fixture_t                     *fx;

    (void) state;

    fx = fx_small();

    fx_validator(fx, 1, 1, "W/\"a\\\\b\"", "Wed, 01 May 2024 10:53:36 GMT");
    fx_validator(fx, 5, UINT64_MAX, "", "Wed, 01 May 2024 10:53:36 GMT");
    fx_validator(fx, 31, 0x8000000000000000ULL, ETAG96, "");
    assert_int_equal(fx->st.validators[31].etag_len,
                     NGX_HTTP_STOCKPRICE_STATE_ETAG);

    round_trip(fx);

    /* those the loader would refuse are not written */

    fx_validator(fx, 2, 0, "\"x\"", "");
    fx_validator(fx, 3, 3, "", "");
    fx_validator(fx, 4, 4, "\"x\ty\"", "");
    fx_validator(fx, 6, 6, "\"\xc3\xa9\"", "");

    file = state_text(&fx->st, &len);
    assert_false(contains(file, len, "validator 2 "));
    assert_false(contains(file, len, "validator 3 "));
    assert_false(contains(file, len, "validator 4 "));
    assert_false(contains(file, len, "validator 6 "));
    assert_true(contains(file, len, "validators 4\n"));
    free(file);

    memset(&fx->st.validators[2], 0, 5 * sizeof(fx->st.validators[0]));
    round_trip(fx);

    free(fx);
}


/* the format itself, as README shows it */

static void
test_example(void **state)
{
    char        *file, end[64];
    size_t       len;
    fixture_t   *fx;

    static const char  body[] =
        "ngx_stockprice state 1\n"
        "zone \"stocks\"\n"
        "generation 1234\n"
        "nonce 9f3a0c1d2e4b5a67\n"
        "last_modified 1714560816\n"
        "filter 0123456789abcdef\n"
        "symbols 2\n"
        "records 3\n"
        "validators 1\n"
        "validator 0 00000000075bcd15 \"\\\"5e1f\\\"\" \"\"\n"
        "symbol \"AAPL\" 1233 2\n"
        "{\"id\":\"" ID "\",\"symbol\":\"AAPL\",\"price\":189.5,"
        "\"valueDateTime\":\"" VTIME "\",\"measurementTimeStamp\":\""
        MTIME "\"}\n"
        "{\"id\":\"1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed\",\"symbol\":\"AAPL\","
        "\"price\":189.25,\"valueDateTime\":\"2024-05-01T10:53:26+02:00\","
        "\"measurementTimeStamp\":\"2024-05-01T10:53:26.500000Z\"}\n"
        "symbol \"MSFT\" 1234 1\n"
        "{\"id\":\"6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b\",\"symbol\":\"MSFT\","
        "\"price\":411,\"valueDateTime\":\"2024-05-01T10:53:36Z\","
        "\"measurementTimeStamp\":\"" MTIME "\"}\n";

    (void) state;

    fx = fx_small();
    file = state_text(&fx->st, &len);

    snprintf(end, sizeof(end), "end %zu %08lx\n", sizeof(body) - 1,
             crc32(0L, (const Bytef *) body, sizeof(body) - 1));

    assert_int_equal(len, sizeof(body) - 1 + strlen(end));
    assert_memory_equal(file, body, sizeof(body) - 1);
    assert_memory_equal(file + sizeof(body) - 1, end, strlen(end));

    free(file);
    free(fx);
}


/* a shorter history: the newest records kept, the others counted */

static void
test_history_dropped(void **state)
{
    int                           rc;
    char                         *file, err[128];
    size_t                        len, i, dropped, kept;
    alloc_t                       a;
    fixture_t                    *fx;
    ngx_http_stockprice_state_t   out;

    (void) state;

    fx = fx_new();
    fx_random(fx, 20, 6, 99);
    file = state_text(&fx->st, &len);

    memset(&a, 0, sizeof(a));

    rc = load(file, len, FX_SYMBOLS, 2, &out, &a, err, sizeof(err));
    assert_int_equal(rc, NGX_HTTP_STOCKPRICE_STATE_OK);

    dropped = 0;
    kept = 0;

    for (i = 0; i < out.nsymbols; i++) {
        assert_int_equal(out.syms[i].nrecords,
                         fx->syms[i].nrecords < 2 ? fx->syms[i].nrecords : 2);
        assert_memory_equal(out.syms[i].records[0].data,
                            fx->syms[i].records[0].data,
                            fx->syms[i].records[0].len);

        if (fx->syms[i].nrecords > 1) {
            assert_memory_equal(out.syms[i].records[1].data,
                                fx->syms[i].records[1].data,
                                fx->syms[i].records[1].len);
        }

        dropped += fx->syms[i].nrecords - out.syms[i].nrecords;
        kept += out.syms[i].nrecords;
    }

    assert_true(dropped > 0);
    assert_int_equal(out.dropped, dropped);
    assert_int_equal(out.nrecords, kept);
    free(out.mem);

    /* 0 is taken for 1 */

    memset(&a, 0, sizeof(a));
    rc = load(file, len, FX_SYMBOLS, 0, &out, &a, err, sizeof(err));
    assert_int_equal(rc, NGX_HTTP_STOCKPRICE_STATE_OK);
    assert_int_equal(out.nrecords, out.nsymbols);
    free(out.mem);

    free(file);
    free(fx);
}


static void
test_refuse_empty(void **state)
{
    (void) state;

    refused("", 0, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_TRUNCATED, "empty");
    refused("\n", 1, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_UNKNOWN,
            "not a state file");
}


/* every prefix of a valid file */

static void
test_refuse_truncated(void **state)
{
    char       *file;
    size_t      len, n;
    fixture_t  *fx;

    (void) state;

    fx = fx_small();
    fx_validator(fx, 7, 7, "\"v\"", "Wed, 01 May 2024 10:53:36 GMT");
    file = state_text(&fx->st, &len);

    for (n = 1; n < len; n++) {
        refused(file, n, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_TRUNCATED,
                "truncated");
    }

    free(file);
    free(fx);
}


/* each bit of a small file, a sample of a large one's */

static void
test_refuse_bit_flips(void **state)
{
    int                           rc;
    char                         *file, err[128];
    size_t                        len, i, bit;
    uint64_t                      seed;
    alloc_t                       a;
    fixture_t                    *fx;
    ngx_http_stockprice_state_t   out;

    (void) state;

    fx = fx_small();
    file = state_text(&fx->st, &len);

    for (i = 0; i < len; i++) {
        for (bit = 0; bit < 8; bit++) {
            file[i] ^= (char) (1 << bit);
            refused(file, len, FX_SYMBOLS, -1, NULL);
            file[i] ^= (char) (1 << bit);
        }
    }

    free(file);
    free(fx);

    fx = fx_new();
    fx_random(fx, FX_SYMBOLS, 15, 5);
    file = state_text(&fx->st, &len);
    seed = 77;

    for (i = 0; i < 4000; i++) {
        bit = rnd(&seed) % (len * 8);

        file[bit / 8] ^= (char) (1 << (bit % 8));

        memset(&a, 0, sizeof(a));
        rc = load(file, len, FX_SYMBOLS, 10, &out, &a, err, sizeof(err));
        assert_int_not_equal(rc, NGX_HTTP_STOCKPRICE_STATE_OK);
        check_reason(err, sizeof(err));
        free(out.mem);

        file[bit / 8] ^= (char) (1 << (bit % 8));
    }

    free(file);
    free(fx);
}


static void
test_refuse_not_state(void **state)
{
    fixture_t  *fx;

    (void) state;

    refused("hello\n", 6, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_UNKNOWN,
            "not a state file");
    refused("ngx_stockprice status 1\n", 24, FX_SYMBOLS,
            NGX_HTTP_STOCKPRICE_STATE_UNKNOWN, "not a state file");
    refused("ngx_stockprice state 1x\nend 0 00000000\n", 39, FX_SYMBOLS,
            NGX_HTTP_STOCKPRICE_STATE_UNKNOWN, "not a state file");
    refused("ngx_stockprice state 123456789012345678901\n", 43, FX_SYMBOLS,
            NGX_HTTP_STOCKPRICE_STATE_UNKNOWN, "not a state file");

    fx = fx_small();

    refused_edit(fx, "state 1\n", "state 2\n",
                 NGX_HTTP_STOCKPRICE_STATE_UNKNOWN, "version 2 not known");
    refused_edit(fx, "state 1\n", "state 18446744073709551615\n",
                 NGX_HTTP_STOCKPRICE_STATE_UNKNOWN,
                 "version 18446744073709551615 not known");
    refused_edit(fx, "state 1\n", "state 18446744073709551616\n",
                 NGX_HTTP_STOCKPRICE_STATE_UNKNOWN, "not a state file");
    refused_edit(fx, "state 1\n", "state 01\n",
                 NGX_HTTP_STOCKPRICE_STATE_UNKNOWN, "not a state file");
    refused_edit(fx, "state 1\n", "state 0\n",
                 NGX_HTTP_STOCKPRICE_STATE_UNKNOWN, "version 0 not known");
    refused_edit(fx, "state 1\n", "state 1\r\n",
                 NGX_HTTP_STOCKPRICE_STATE_UNKNOWN, "not a state file");

    free(fx);
}


static void
test_refuse_envelope(void **state)
{
    char       *file, *bad;
    size_t      len, n;
    fixture_t  *fx;

    (void) state;

    fx = fx_small();
    file = state_text(&fx->st, &len);

    /* the end line as it is, the body changed */

    bad = exact(file, len);
    bad[40] ^= 0x20;
    refused(bad, len, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_CORRUPT,
            "checksum mismatch");
    free(bad);

    /* the end line altered */

    bad = exact(file, len);
    memcpy(bad + len - 9, "ABCDEF01", 8);
    refused(bad, len, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_CORRUPT,
            "end line not valid");
    memcpy(bad + len - 9, "00000000", 8);
    refused(bad, len, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_CORRUPT,
            "checksum mismatch");
    free(bad);

    bad = edited(file, len, "validators 1\n", "validators 1\n", &n);
    assert_int_equal(n, len);
    assert_memory_equal(bad, file, len);
    free(bad);

    /* a line lost, or one more: the length says so */

    n = len;
    bad = malloc(len + 16);
    assert_non_null(bad);
    memcpy(bad, file, len);

    for (n = len - 2; bad[n - 1] != '\n'; n--) { /* void */ }

    memmove(bad + n + 9, bad + n, len - n);
    memcpy(bad + n, "symbols\n\n", 9);
    refused(bad, len + 9, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_CORRUPT,
            "length mismatch");
    free(bad);

    refused("ngx_stockprice state 1\nend 0 00000000\n", 38, FX_SYMBOLS,
            NGX_HTTP_STOCKPRICE_STATE_CORRUPT, "length mismatch");
    refused("ngx_stockprice state 1\nend 023 00000000\n", 40, FX_SYMBOLS,
            NGX_HTTP_STOCKPRICE_STATE_CORRUPT, "end line not valid");
    refused("ngx_stockprice state 1\nend 23 00000000 \n", 40, FX_SYMBOLS,
            NGX_HTTP_STOCKPRICE_STATE_CORRUPT, "end line not valid");
    refused("ngx_stockprice state 1\nend 99999999999999999999999\n", 51,
            FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_CORRUPT,
            "end line not valid");
    refused("ngx_stockprice state 1\nend 9999999999999999999999999 00000000\n",
            58, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_TRUNCATED, "truncated");
    refused("ngx_stockprice state 1\nend\n", 27, FX_SYMBOLS,
            NGX_HTTP_STOCKPRICE_STATE_TRUNCATED, "truncated");

    free(file);
    free(fx);
}


static void
test_refuse_other_zone(void **state)
{
    char                         *file, err[128];
    size_t                        len, i;
    alloc_t                       a;
    fixture_t                    *fx;
    ngx_http_stockprice_state_t   out;

    static const char  *zones[] = { "stock", "stocks2", "Stocks", "" };

    (void) state;

    fx = fx_small();
    file = state_text(&fx->st, &len);

    for (i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        memset(&a, 0, sizeof(a));

        assert_int_equal(ngx_http_stockprice_state_load(file, len, zones[i],
                             strlen(zones[i]), FX_SYMBOLS, 10, test_alloc, &a,
                             &out, err, sizeof(err)),
                         NGX_HTTP_STOCKPRICE_STATE_OTHER_ZONE);
        assert_string_equal(err, "zone \"stocks\" is not this zone");
        assert_int_equal(a.calls, 0);
    }

    free(file);

    /* a long name is quoted in part only */

    fx->st.zone = "a-zone-with-a-name-much-longer-than-a-reason-quotes";
    fx->st.zone_len = strlen(fx->st.zone);
    file = state_text(&fx->st, &len);

    refused(file, len, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_OTHER_ZONE,
            "zone \"a-zone-with-a-name-much-longer-t...\" is not this zone");

    free(file);
    free(fx);
}


static void
test_refuse_header(void **state)
{
    fixture_t  *fx;

    (void) state;

    fx = fx_small();

#define bad_header(from, to, reason)                                          \
    refused_edit(fx, from, to, NGX_HTTP_STOCKPRICE_STATE_INVALID, reason)

    bad_header("zone \"stocks\"\n", "zone stocks\n", "line 2: \"zone\"");
    bad_header("zone \"stocks\"\n", "", "line 2: \"zone\"");
    bad_header("generation 1234\n", "generation 0\n",
               "line 3: generation not valid");
    bad_header("generation 1234\n", "generation 01234\n",
               "generation not valid");
    bad_header("generation 1234\n", "generation +1234\n",
               "generation not valid");
    bad_header("generation 1234\n", "generation 1234 \n",
               "generation not valid");
    bad_header("generation 1234\n", "generation 18446744073709551616\n",
               "generation not valid");
    bad_header("generation 1234\n", "generation\n", "\"generation\"");
    bad_header("generation 1234\n", "Generation 1234\n", "\"generation\"");
    bad_header("nonce 9f3a0c1d2e4b5a67\n", "nonce 9F3A0C1D2E4B5A67\n",
               "nonce not valid");
    bad_header("nonce 9f3a0c1d2e4b5a67\n", "nonce 9f3a0c1d2e4b5a6\n",
               "nonce not valid");
    bad_header("nonce 9f3a0c1d2e4b5a67\n", "nonce 9f3a0c1d2e4b5a670\n",
               "nonce not valid");
    bad_header("last_modified 1714560816\n",
               "last_modified 253402300800\n", "last_modified not valid");
    bad_header("last_modified 1714560816\n", "last_modified -1\n",
               "last_modified not valid");
    bad_header("filter 0123456789abcdef\n", "filter 0x23456789abcdef\n",
               "filter not valid");
    bad_header("filter 0123456789abcdef\n", "", "\"filter\"");
    bad_header("validators 1\n", "validators 33\n",
               "validators not valid");
    bad_header("validators 1\n", "validators 2\n",
               "line 11: validator not valid");
    bad_header("validators 1\n", "validators 0\n",
               "line 10: \"symbol\" expected");

    /* counts that do not match what follows */

    bad_header("symbols 2\n", "symbols 1\n",
               "line 14: more symbols than the header says");
    bad_header("symbols 2\n", "symbols 3\n", "line 16: \"symbol\" expected");
    bad_header("records 3\n", "records 4\n",
               "fewer records than the header says");
    bad_header("records 3\n", "records 2\n", "line 14: more records");
    bad_header("records 3\n", "records 1\n",
               "counts of symbols and records");
    bad_header("symbol \"MSFT\" 1234 1\n", "symbol \"MSFT\" 1234 2\n",
               "more records than the header says");
    bad_header("symbol \"AAPL\" 1233 2\n", "symbol \"AAPL\" 1233 1\n",
               "line 13: \"symbol\" expected");

#undef bad_header

    free(fx);
}


/* huge counts: refused before any memory is asked for */

static void
test_refuse_counts(void **state)
{
    char                         *file, *bad, err[128];
    size_t                        len, n, i;
    alloc_t                       a;
    fixture_t                    *fx;
    ngx_http_stockprice_state_t   out;

    static const char  *counts[] = {
        "symbols 18446744073709551615\nrecords 18446744073709551615\n",
        "symbols 4294967296\nrecords 4294967296\n",
        "symbols 2\nrecords 18446744073709551615\n",
        "symbols 2\nrecords 2001\n",
        "symbols 1000000\nrecords 1000000\n",
        "symbols 0\nrecords 1\n",
        "symbols 0\nrecords 3\n",
        "symbols 18446744073709551616\nrecords 3\n",
        "symbols 2\nrecords 99999999999999999999\n",
    };

    (void) state;

    fx = fx_small();
    file = state_text(&fx->st, &len);

    for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        bad = edited(file, len, "symbols 2\nrecords 3\n", counts[i], &n);

        memset(&a, 0, sizeof(a));
        assert_int_equal(load(bad, n, SIZE_MAX, 10, &out, &a, err,
                              sizeof(err)),
                         NGX_HTTP_STOCKPRICE_STATE_INVALID);
        check_reason(err, sizeof(err));
        assert_int_equal(a.calls, 0);

        free(bad);
    }

    /* more symbols than the zone takes */

    refused(file, len, 1, NGX_HTTP_STOCKPRICE_STATE_TOO_LARGE,
            "2 symbols, more than the zone takes");
    refused(file, len, 0, NGX_HTTP_STOCKPRICE_STATE_TOO_LARGE, NULL);

    /* no memory */

    memset(&a, 0, sizeof(a));
    a.fail = 1;
    assert_int_equal(load(file, len, FX_SYMBOLS, 10, &out, &a, err,
                          sizeof(err)),
                     NGX_HTTP_STOCKPRICE_STATE_NOMEM);
    assert_int_equal(a.calls, 1);
    assert_null(out.mem);
    check_reason(err, sizeof(err));

    /* what it asks for: the symbols, a pointer and a length a record */

    memset(&a, 0, sizeof(a));
    assert_int_equal(load(file, len, FX_SYMBOLS, 10, &out, &a, err,
                          sizeof(err)),
                     NGX_HTTP_STOCKPRICE_STATE_OK);
    assert_int_equal(a.size, 2 * sizeof(ngx_http_stockprice_state_sym_t)
                             + 3 * sizeof(ngx_http_stockprice_str_t));
    free(out.mem);

    free(file);
    free(fx);
}


static void
test_refuse_symbols(void **state)
{
    char       *file;
    size_t      len;
    fixture_t  *fx;

    (void) state;

    /* not sorted, and twice; the writer takes them as they are */

    fx = fx_new();
    fx_symbol(fx, "MSFT", 4, 1);
    fx_record(fx, NULL, 1, VTIME, MTIME, ID);
    fx_symbol(fx, "AAPL", 4, 1);
    fx_record(fx, NULL, 1, VTIME, MTIME, ID);
    file = state_text(&fx->st, &len);
    refused(file, len, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_INVALID,
            "line 12: symbols not sorted");
    free(file);
    free(fx);

    fx = fx_new();
    fx_symbol(fx, "AAPL", 4, 1);
    fx_record(fx, NULL, 1, VTIME, MTIME, ID);
    fx_symbol(fx, "AAPL", 4, 1);
    fx_record(fx, NULL, 1, VTIME, MTIME, ID);
    file = state_text(&fx->st, &len);
    refused(file, len, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_INVALID,
            "symbol \"AAPL\" twice");
    free(file);
    free(fx);

    /* a prefix sorts first */

    fx = fx_new();
    fx_symbol(fx, "AAPLX", 5, 1);
    fx_record(fx, NULL, 1, VTIME, MTIME, ID);
    fx_symbol(fx, "AAPL", 4, 1);
    fx_record(fx, NULL, 1, VTIME, MTIME, ID);
    file = state_text(&fx->st, &len);
    refused(file, len, FX_SYMBOLS, NGX_HTTP_STOCKPRICE_STATE_INVALID,
            "symbols not sorted");
    free(file);
    free(fx);

    fx = fx_small();

#define bad_symbol(from, to, reason)                                          \
    refused_edit(fx, from, to, NGX_HTTP_STOCKPRICE_STATE_INVALID, reason)

    bad_symbol("\"AAPL\" 1233 2", "\"AAPL\" 1235 2",
               "symbol \"AAPL\" born after the snapshot");
    bad_symbol("\"AAPL\" 1233 2", "\"AAPL\" 0 2", "born after");
    bad_symbol("\"AAPL\" 1233 2", "\"AAPL\" 4294967296 2",
               "symbol line not valid");
    bad_symbol("\"AAPL\" 1233 2", "\"AAPL\" 1233 0", "symbol line not valid");
    bad_symbol("\"AAPL\" 1233 2", "\"AAPL\" 1233 1001",
               "symbol line not valid");
    bad_symbol("\"AAPL\" 1233 2", "\"AAPL\" 1233 02",
               "symbol line not valid");
    bad_symbol("\"AAPL\" 1233 2", "\"AAPL\"  1233 2",
               "symbol line not valid");
    bad_symbol("symbol \"AAPL\"", "symbol  \"AAPL\"", "symbol not valid");
    bad_symbol("symbol \"AAPL\"", "symbol \"\"", "line 11: symbol not valid");
    bad_symbol("symbol \"AAPL\"", "symbol \"AAPL", "symbol not valid");
    bad_symbol("symbol \"AAPL\"", "symbol \"AA\\u0050L\"",
               "symbol not valid");
    bad_symbol("symbol \"AAPL\"", "symbol \"AA\\/PL\"", "symbol not valid");
    bad_symbol("symbol \"AAPL\"", "symbol \"AA\tPL\"", "symbol not valid");
    bad_symbol("symbol \"AAPL\"", "symbol \"AA\x7fPL\"", "symbol not valid");
    bad_symbol("symbol \"AAPL\"", "symbol \"AA\xc3PL\"", "symbol not valid");
    bad_symbol("symbol \"AAPL\"",
               "symbol \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"",
               "symbol not valid");
    bad_symbol("symbol \"AAPL\"", "symbols \"AAPL\"",
               "line 11: \"symbol\" expected");
    bad_symbol("symbol \"AAPL\"", "sym", "line 11: \"symbol\" expected");
    bad_symbol("symbol \"AAPL\"", "symbol", "line 11: symbol not valid");

#undef bad_symbol

    free(fx);
}


static void
test_refuse_validators(void **state)
{
    fixture_t  *fx;

    (void) state;

    fx = fx_small();

#define bad_validator(to)                                                     \
    refused_edit(fx, "validator 0 00000000075bcd15 \"\\\"5e1f\\\"\" \"\"", to, \
                 NGX_HTTP_STOCKPRICE_STATE_INVALID,                          \
                 "line 10: validator not valid")

    bad_validator("validator 32 00000000075bcd15 \"x\" \"\"");
    bad_validator("validator 00 00000000075bcd15 \"x\" \"\"");
    bad_validator("validator 0 0000000000000000 \"x\" \"\"");
    bad_validator("validator 0 00000000075BCD15 \"x\" \"\"");
    bad_validator("validator 0 00000000075bcd15 \"\" \"\"");
    bad_validator("validator 0 00000000075bcd15 \"x\ty\" \"\"");
    bad_validator("validator 0 00000000075bcd15 \"\xc3\xa9\" \"\"");
    bad_validator("validator 0 00000000075bcd15 \"\x7f\" \"\"");
    bad_validator("validator 0 00000000075bcd15 \"\\u0041\" \"\"");
    bad_validator("validator 0 00000000075bcd15 \"x\" \"\" ");
    bad_validator("validator 0 00000000075bcd15 \"x\"");
    bad_validator("validator 0 00000000075bcd15 \"x\" \"0123456789"
                  "0123456789012345678901234567890\"");
    bad_validator("validator 0 00000000075bcd15 " ETAG97 " \"\"");

#undef bad_validator

    /* each part once, in order */

    refused_edit(fx, "validators 1\nvalidator 0 00000000075bcd15 ",
                 "validators 2\nvalidator 3 0000000000000001 \"x\" \"\"\n"
                 "validator 3 00000000075bcd15 ",
                 NGX_HTTP_STOCKPRICE_STATE_INVALID,
                 "line 11: validator not valid");
    refused_edit(fx, "validators 1\nvalidator 0 00000000075bcd15 ",
                 "validators 2\nvalidator 3 0000000000000001 \"x\" \"\"\n"
                 "validator 1 00000000075bcd15 ",
                 NGX_HTTP_STOCKPRICE_STATE_INVALID,
                 "line 11: validator not valid");

    free(fx);
}


/* records of the right shape but for one thing */

static void
test_refuse_records(void **state)
{
    size_t  i;

#define REC(id, price, vt, mt)                                                \
    "{\"id\":\"" id "\",\"symbol\":\"AAPL\",\"price\":" price                 \
    ",\"valueDateTime\":\"" vt "\",\"measurementTimeStamp\":\"" mt "\"}"

    static const struct {
        const char  *text;
        const char  *reason;
    } cases[] = {
        { REC(ID, "1e999", VTIME, MTIME), "price not valid" },
        { REC(ID, "-1e999", VTIME, MTIME), "price not valid" },
        { REC(ID, "null", VTIME, MTIME), "price not valid" },
        { REC(ID, "\"1\"", VTIME, MTIME), "price not valid" },
        { REC(ID, "1.50", VTIME, MTIME), "not as the module writes it" },
        { REC(ID, "1.5e0", VTIME, MTIME), "not as the module writes it" },
        /* as long as the module's "100": only the bytes tell them apart */
        { REC(ID, "1E2", VTIME, MTIME), "not as the module writes it" },
        { REC(ID, "1e2", VTIME, MTIME), "not as the module writes it" },
        { REC(ID, "0.1000000000000000055511151231257827",
              VTIME, MTIME), "not as the module writes it" },
        { REC(ID, "01", VTIME, MTIME), "not as the module writes it" },
        { REC(ID, "1.", VTIME, MTIME), "not as the module writes it" },
        { REC(ID, "+1", VTIME, MTIME), "not JSON" },
        { REC(ID, "0x10", VTIME, MTIME), "not JSON" },
        { REC("0f8fad5b-d9cb-469f-a165-70867728950", "1", VTIME, MTIME),
          "id not valid" },
        { REC("0f8fad5b-d9cb-469f-a165-70867728950g", "1", VTIME, MTIME),
          "id not valid" },
        { REC("0f8fad5bd-9cb-469f-a165-70867728950e", "1", VTIME, MTIME),
          "id not valid" },
        { REC("\\u0030f8fad5b-d9cb-469f-a165-70867728950e", "1", VTIME, MTIME),
          "not as the module writes it" },
        { REC(ID, "1", "2024-13-01T10:53:36Z", MTIME),
          "valueDateTime not valid" },
        { REC(ID, "1", "2024-05-01 10:53:36Z", MTIME),
          "valueDateTime not valid" },
        { REC(ID, "1", "", MTIME), "valueDateTime not valid" },
        { REC(ID, "1", VTIME, "2024-05-01T10:53:36Z"),
          "measurementTimeStamp not valid" },
        { REC(ID, "1", VTIME, "2024-05-01T10:53:36.7912310"),
          "measurementTimeStamp not valid" },
        { REC(ID, "1", VTIME, "2024-05-01T10:53:36,791231Z"),
          "measurementTimeStamp not valid" },
        { "{\"id\":\"" ID "\",\"symbol\":\"MSFT\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\",\"measurementTimeStamp\":\""
          MTIME "\"}", "of another symbol" },
        { "{\"id\":\"" ID "\",\"symbol\":\"AAPLX\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\",\"measurementTimeStamp\":\""
          MTIME "\"}", "of another symbol" },
        { "{\"id\":\"" ID "\",\"symbol\":\"AAP\\u0000L\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\",\"measurementTimeStamp\":\""
          MTIME "\"}", "of another symbol" },
        { "{\"id\":\"" ID "\",\"symbol\":\"AA\\u0050L\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\",\"measurementTimeStamp\":\""
          MTIME "\"}", "not as the module writes it" },
        { "{\"id\":\"" ID "\",\"symbol\":\"AAPL\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\",\"measurementTimeStamp\":\""
          MTIME "\",\"x\":1}", "fields not valid" },
        { "{\"id\":\"" ID "\",\"symbol\":\"AAPL\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\"}", "fields not valid" },
        { "{\"symbol\":\"AAPL\",\"id\":\"" ID "\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\",\"measurementTimeStamp\":\""
          MTIME "\"}", "fields not valid" },
        { "{\"id\":\"" ID "\",\"symbol\":\"AAPL\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\",\"measurementtimestamp\":\""
          MTIME "\"}", "fields not valid" },
        { "{\"id\":\"" ID "\",\"symbol\":\"AAPL\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\",\"measurementTimeStamp\":\""
          MTIME "\"} ", "not JSON" },
        { "{\"id\":\"" ID "\",\"symbol\":\"AAPL\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\",\"measurementTimeStamp\":\""
          MTIME "\"}{}", "not JSON" },
        { "{\"id\":\"" ID "\", \"symbol\":\"AAPL\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\",\"measurementTimeStamp\":\""
          MTIME "\"}", "not as the module writes it" },
        { " {\"id\":\"" ID "\",\"symbol\":\"AAPL\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\",\"measurementTimeStamp\":\""
          MTIME "\"}", "not as the module writes it" },
        { "{\"id\":\"" ID "\",\"symbol\":\"AAPL\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\",\"measurementTimeStamp\":\""
          MTIME "\"", "not JSON" },
        { "[1,2,3]", "not an object" },
        { "\"AAPL\"", "not an object" },
        { "", "not JSON" },
        { "{}", "fields not valid" },
        { "{\"id\":\"" ID "\",\"symbol\":\"AAPL\",\"price\":1,"
          "\"valueDateTime\":\"" VTIME "\",\"measurementTimeStamp\":\""
          MTIME "\",\"padding\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
          "too long" },
    };

#undef REC

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        refused_record(cases[i].text, cases[i].reason);
    }
}


/* the reason names where: the line, the record, the symbol */

static void
test_refuse_where(void **state)
{
    fixture_t  *fx;

    (void) state;

    fx = fx_small();

    refused_edit(fx, "\"price\":189.25", "\"price\":189.250",
                 NGX_HTTP_STOCKPRICE_STATE_INVALID,
                 "line 13: record 2 of \"AAPL\": not as the module writes it");

    free(fx);

    /* names quoted in printable ASCII */

    fx = fx_new();
    fx_symbol(fx, "A\"\xc3\x84", 4, 1);
    fx_record(fx, NULL, 1, VTIME, MTIME, "not-an-id-not-an-id-not-an-id-not-an");
    refused_edit(fx, "validators 0", "validators 0",
                 NGX_HTTP_STOCKPRICE_STATE_INVALID,
                 "line 11: record 1 of \"A???\": id not valid");
    free(fx);
}


/* a reason fits the buffer given, or no buffer at all */

static void
test_reason_buffer(void **state)
{
    char                          err[8];
    alloc_t                       a;
    ngx_http_stockprice_state_t   out;

    (void) state;

    memset(&a, 0, sizeof(a));
    memset(err, 'x', sizeof(err));

    assert_int_equal(load("hello world\n", 12, 1, 1, &out, &a, err,
                          sizeof(err)),
                     NGX_HTTP_STOCKPRICE_STATE_UNKNOWN);
    assert_string_equal(err, "not a s");

    assert_int_equal(load("hello world\n", 12, 1, 1, &out, &a, NULL, 0),
                     NGX_HTTP_STOCKPRICE_STATE_UNKNOWN);
}


/*
 * The seeds of fuzz_state: files the writer made, after the mode byte
 * that has the fuzzer make their end line anew ('+'), and one to be
 * taken as it is ('=')
 */

static int
write_corpus(const char *dir)
{
    FILE        *f;
    char        *file, path[4096];
    size_t       len, i;
    fixture_t   *fx;

    for (i = 0; i < 5; i++) {
        switch (i) {

        case 0:
            fx = fx_new();
            break;

        case 1:
        case 4:
            fx = fx_small();
            break;

        case 2:
            fx = fx_new();
            fx_random(fx, 6, 4, 11);
            fx_validator(fx, 2, 42, "W/\"a\\\"b\"",
                         "Wed, 01 May 2024 10:53:36 GMT");
            break;

        default:
            fx = fx_new();
            fx_symbol(fx, "\"", 1, 5);
            fx_record(fx, NULL, 5e-324, "2024-05-01T10:53:36-05:30", MTIME,
                      "0F8FAD5B-D9CB-469F-A165-70867728950E");
            fx_symbol(fx, "\xc3\x84\\", 3, 1234);
            fx_record(fx, NULL, -1.7e308, "9999-12-31T23:59:60", MTIME, ID);
            fx_record(fx, NULL, 0.1, VTIME, MTIME, ID);
            break;
        }

        file = state_text(&fx->st, &len);

        snprintf(path, sizeof(path), "%s/%s_%zu.txt", dir,
                 i < 4 ? "resealed" : "as_is", i);

        f = fopen(path, "wb");
        if (f == NULL
            || fputc(i < 4 ? '+' : '=', f) == EOF
            || fwrite(file, 1, len, f) != len
            || fclose(f) != 0)
        {
            perror(path);
            return 1;
        }

        free(file);
        free(fx);
    }

    return 0;
}


int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_empty),
        cmocka_unit_test(test_round_trip_one),
        cmocka_unit_test(test_round_trip_many),
        cmocka_unit_test(test_round_trip_escaped),
        cmocka_unit_test(test_round_trip_validators),
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_history_dropped),
        cmocka_unit_test(test_refuse_empty),
        cmocka_unit_test(test_refuse_truncated),
        cmocka_unit_test(test_refuse_bit_flips),
        cmocka_unit_test(test_refuse_not_state),
        cmocka_unit_test(test_refuse_envelope),
        cmocka_unit_test(test_refuse_other_zone),
        cmocka_unit_test(test_refuse_header),
        cmocka_unit_test(test_refuse_counts),
        cmocka_unit_test(test_refuse_symbols),
        cmocka_unit_test(test_refuse_validators),
        cmocka_unit_test(test_refuse_records),
        cmocka_unit_test(test_refuse_where),
        cmocka_unit_test(test_reason_buffer),
    };

    if (argc == 3 && strcmp(argv[1], "--corpus") == 0) {
        return write_corpus(argv[2]);
    }

    return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
