
/*
 * Copyright (C) ngx_stockprice authors
 */


/*
 * libFuzzer entry: every parser on the same bytes, each on its own
 * exact-size copy; what parse_prices() accepts must render to a body
 * that parses back to the same records (tiered fan-out), and the parser
 * in small steps must come to the very same answer as in one; and in
 * the providers' shapes, records found by the scan and parsed in steps
 * are the very records that cJSON finds parsing the body whole.
 *
 *   make -C tests fuzz && tests/build/fuzz_parse tests/corpus
 */


#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *ngx_http_stockprice_fuzz_copy(const uint8_t *data, size_t size);
static void ngx_http_stockprice_fuzz_prices(const uint8_t *data, size_t size,
    const ngx_http_stockprice_str_t *filter, size_t nfilter);
static void ngx_http_stockprice_fuzz_round_trip(
    ngx_http_stockprice_record_t *recs, size_t n);
static void ngx_http_stockprice_fuzz_shapes(const uint8_t *data,
    size_t size);
static void ngx_http_stockprice_fuzz_shaped(const uint8_t *data, size_t size,
    const ngx_http_stockprice_shape_t *shape, const char *want,
    size_t budget, ngx_http_stockprice_record_t **recs, size_t *n,
    ngx_http_stockprice_parse_stats_t *st, int *rc);
static void ngx_http_stockprice_fuzz_same(ngx_http_stockprice_record_t *a,
    ngx_http_stockprice_record_t *b, size_t n);
static void ngx_http_stockprice_fuzz_steps(const uint8_t *data, size_t size,
    const ngx_http_stockprice_str_t *filter, size_t nfilter, int whole_rc,
    ngx_http_stockprice_record_t *recs, size_t n,
    ngx_http_stockprice_parse_stats_t *whole_st);


static const ngx_http_stockprice_str_t  ngx_http_stockprice_fuzz_filter[] = {
    { "AAPL", 4 }, { "MSFT", 4 }, { "SAP", 3 }
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long                       expires_in;
    char                      *buf, *token;
    size_t                     token_len, bom;
    ngx_http_stockprice_str_t  user, password;

    ngx_http_stockprice_fuzz_prices(data, size, NULL, 0);
    ngx_http_stockprice_fuzz_prices(data, size,
                                    ngx_http_stockprice_fuzz_filter, 3);
    ngx_http_stockprice_fuzz_shapes(data, size);

    buf = ngx_http_stockprice_fuzz_copy(data, size);

    if (ngx_http_stockprice_parse_token(buf, size, &token, &token_len,
                                        &expires_in)
        == NGX_HTTP_STOCKPRICE_PARSE_OK)
    {
        if (token_len == 0 || token_len > NGX_HTTP_STOCKPRICE_TOKEN_MAX
            || memchr(token, ' ', token_len) != NULL
            || expires_in == 0 || expires_in < -1)
        {
            abort();
        }

        free(token);
    }

    user.data = "demo";
    user.len = 4;
    password.data = "s\"cr\\t";
    password.len = 6;

    (void) ngx_http_stockprice_parse_check_credentials(buf, size, &user,
                                                       &password);

    if (ngx_http_stockprice_parse_credentials(buf, size, &user, &password)
        == 0)
    {
        /* the user's name starts the buffer, or follows a byte-order mark */

        bom = (size >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) ? 3 : 0;

        if (user.len == 0
            || user.data != buf + bom
            || password.data + password.len > buf + size
            || memchr(user.data, '\n', user.len) != NULL
            || memchr(password.data, '\n', password.len) != NULL)
        {
            abort();
        }
    }

    free(buf);

    return 0;
}


static char *
ngx_http_stockprice_fuzz_copy(const uint8_t *data, size_t size)
{
    char  *buf;

    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        abort();
    }

    if (size) {
        memcpy(buf, data, size);
    }

    return buf;
}


static void
ngx_http_stockprice_fuzz_prices(const uint8_t *data, size_t size,
    const ngx_http_stockprice_str_t *filter, size_t nfilter)
{
    int                                 rc;
    char                               *buf;
    size_t                              i, n;
    ngx_http_stockprice_record_t       *recs;
    ngx_http_stockprice_parse_stats_t   st;

    buf = ngx_http_stockprice_fuzz_copy(data, size);

    rc = ngx_http_stockprice_parse_prices(buf, size, filter, nfilter, &recs,
                                          &n, &st);
    free(buf);

    ngx_http_stockprice_fuzz_steps(data, size, filter, nfilter, rc, recs, n,
                                   &st);

    if (rc != NGX_HTTP_STOCKPRICE_PARSE_OK) {
        if (recs != NULL || n != 0) {
            abort();
        }

        return;
    }

    if (st.accepted != n
        || n + st.bad_symbol + st.bad_price + st.not_object + st.filtered
           + st.duplicate != st.total)
    {
        abort();
    }

    for (i = 0; i < n; i++) {
        if (!ngx_http_stockprice_parse_symbol_valid(recs[i].symbol,
                                                    recs[i].symbol_len)
            || recs[i].price != recs[i].price
            || recs[i].value_time_len > NGX_HTTP_STOCKPRICE_TIME_MAX
            || (i > 0
                && ngx_http_stockprice_parse_symbol_cmp(recs[i - 1].symbol,
                                                        recs[i - 1].symbol_len,
                                                        recs[i].symbol,
                                                        recs[i].symbol_len)
                   >= 0))
        {
            abort();
        }
    }

    ngx_http_stockprice_fuzz_round_trip(recs, n);

    free(recs);
}


static void
ngx_http_stockprice_fuzz_round_trip(ngx_http_stockprice_record_t *recs,
    size_t n)
{
    char                               *body;
    size_t                              i, len, m, n2;
    const char                         *mtime;
    ngx_http_stockprice_record_t       *back;
    ngx_http_stockprice_parse_stats_t   st;

    mtime = "2024-05-01T10:53:36.791231Z";

    len = 2;

    for (i = 0; i < n; i++) {
        if (!recs[i].has_id) {
            memcpy(recs[i].id, "00000000-0000-4000-8000-000000000000",
                   NGX_HTTP_STOCKPRICE_UUID_LEN);
            recs[i].has_id = 1;
        }

        len += ngx_http_stockprice_render_record(NULL, &recs[i], mtime,
                                                 strlen(mtime)) + 1;
    }

    body = malloc(len);
    if (body == NULL) {
        abort();
    }

    m = 0;
    body[m++] = '[';

    for (i = 0; i < n; i++) {
        if (i) {
            body[m++] = ',';
        }

        m += ngx_http_stockprice_render_record(body + m, &recs[i], mtime,
                                               strlen(mtime));
    }

    body[m++] = ']';

    if (m > len) {
        abort();
    }

    if (ngx_http_stockprice_parse_prices(body, m, NULL, 0, &back, &n2, &st)
        != NGX_HTTP_STOCKPRICE_PARSE_OK
        || n2 != n)
    {
        abort();
    }

    for (i = 0; i < n; i++) {
        if (back[i].symbol_len != recs[i].symbol_len
            || memcmp(back[i].symbol, recs[i].symbol, recs[i].symbol_len)
               != 0
            || back[i].price != recs[i].price
            || memcmp(back[i].id, recs[i].id, NGX_HTTP_STOCKPRICE_UUID_LEN)
               != 0)
        {
            abort();
        }
    }

    free(back);
    free(body);
}


/*
 * The same body in steps of a few bytes (a budget taken from the input, so
 * that the fuzzer explores the cut points): the same code, and on success
 * the same records, field by field, and the same counts.
 */

static void
ngx_http_stockprice_fuzz_steps(const uint8_t *data, size_t size,
    const ngx_http_stockprice_str_t *filter, size_t nfilter, int whole_rc,
    ngx_http_stockprice_record_t *recs, size_t n,
    ngx_http_stockprice_parse_stats_t *whole_st)
{
    int                            rc;
    char                          *buf;
    size_t                         i, budget, n2, steps;
    ngx_http_stockprice_record_t  *recs2, *a, *b;
    ngx_http_stockprice_parser_t   parser;

    budget = size ? data[size - 1] % 24 : 0;

    buf = ngx_http_stockprice_fuzz_copy(data, size);

    ngx_http_stockprice_parse_start(&parser, buf, size, NULL, NULL, 0, filter,
                                    nfilter);

    steps = 0;

    do {
        rc = ngx_http_stockprice_parse_step(&parser, budget);

        /* every step but the last parses at least one element */
        if (++steps > size + 1) {
            abort();
        }

    } while (rc == NGX_HTTP_STOCKPRICE_PARSE_AGAIN);

    recs2 = NULL;
    n2 = 0;

    if (rc == NGX_HTTP_STOCKPRICE_PARSE_OK) {
        rc = ngx_http_stockprice_parse_done(&parser, &recs2, &n2);

    } else {
        ngx_http_stockprice_parse_abort(&parser);
    }

    free(buf);

    if (rc != whole_rc) {
        abort();
    }

    if (rc != NGX_HTTP_STOCKPRICE_PARSE_OK) {
        free(recs2);
        return;
    }

    if (n2 != n
        || memcmp(&parser.stats, whole_st,
                  sizeof(ngx_http_stockprice_parse_stats_t))
           != 0)
    {
        abort();
    }

    for (i = 0; i < n; i++) {
        a = &recs[i];
        b = &recs2[i];

        if (memcmp(&a->price, &b->price, sizeof(double)) != 0
            || a->symbol_len != b->symbol_len
            || memcmp(a->symbol, b->symbol, a->symbol_len) != 0
            || a->value_time_len != b->value_time_len
            || memcmp(a->value_time, b->value_time, a->value_time_len) != 0
            || (b->has_id != 0) != (a->has_id != 0)
            || (b->has_id
                && memcmp(a->id, b->id, NGX_HTTP_STOCKPRICE_UUID_LEN) != 0))
        {
            abort();
        }
    }

    free(recs2);
}


/*
 * One of a few shapes, by the input's first byte: the scan and the steps
 * (a budget from the last byte), then the whole body by cJSON alone
 * (chunked cleared after start()); both must agree in every respect.
 */

static void
ngx_http_stockprice_fuzz_shapes(const uint8_t *data, size_t size)
{
    int                                 rc1, rc2;
    size_t                              n1, n2, k;
    const char                         *want;
    ngx_http_stockprice_shape_t         shape;
    ngx_http_stockprice_record_t       *r1, *r2;
    ngx_http_stockprice_parse_stats_t   s1, s2;

    static char  text[4][16];

    if (size == 0) {
        return;
    }

    ngx_http_stockprice_parse_shape_default(&shape);
    want = NULL;
    k = data[0] % 4;

    switch (k) {

    case 0:
        ngx_http_stockprice_pointer_compile(&shape.records, "/t", 2, text[0]);
        ngx_http_stockprice_pointer_compile(&shape.symbol, "/s", 2, text[1]);
        ngx_http_stockprice_pointer_compile(&shape.price, "/p/0", 4, text[2]);
        break;

    case 1:
        ngx_http_stockprice_pointer_compile(&shape.records, "/a/1", 4,
                                            text[0]);
        ngx_http_stockprice_pointer_compile(&shape.time, "/t", 2, text[1]);
        shape.time_unit = NGX_HTTP_STOCKPRICE_TIME_NS;

        if (data[0] & 4) {
            /* the one number both price and time */
            ngx_http_stockprice_pointer_compile(&shape.price, "/t", 2,
                                                text[2]);
            shape.time_unit = NGX_HTTP_STOCKPRICE_TIME_S;
        }

        if (data[0] & 8) {
            /* followed down by the slice's scan */
            ngx_http_stockprice_pointer_compile(&shape.time, "/l/t", 4,
                                                text[1]);
        }

        break;

    case 2:
        ngx_http_stockprice_pointer_compile(&shape.records, "/k~1x", 5,
                                            text[0]);
        ngx_http_stockprice_pointer_compile(&shape.price, "/p", 2, text[1]);
        break;

    default:
        ngx_http_stockprice_pointer_compile(&shape.records, "/q", 2, text[0]);
        want = "AAPL";
        break;
    }

    ngx_http_stockprice_fuzz_shaped(data, size, &shape, want,
                                    data[size - 1] % 24, &r1, &n1, &s1, &rc1);
    ngx_http_stockprice_fuzz_shaped(data, size, &shape, want, (size_t) -1,
                                    &r2, &n2, &s2, &rc2);

    if (rc1 != rc2) {
        abort();
    }

    if (rc1 == NGX_HTTP_STOCKPRICE_PARSE_OK
        && (n1 != n2
            || memcmp(&s1, &s2, sizeof(ngx_http_stockprice_parse_stats_t))
               != 0))
    {
        abort();
    }

    ngx_http_stockprice_fuzz_same(r1, r2, n1 < n2 ? n1 : n2);

    free(r1);
    free(r2);
}


/* budget (size_t) -1: cJSON alone, the body whole */

static void
ngx_http_stockprice_fuzz_shaped(const uint8_t *data, size_t size,
    const ngx_http_stockprice_shape_t *shape, const char *want,
    size_t budget, ngx_http_stockprice_record_t **recs, size_t *n,
    ngx_http_stockprice_parse_stats_t *st, int *rc)
{
    char                          *buf;
    size_t                         steps;
    ngx_http_stockprice_parser_t   parser;

    buf = ngx_http_stockprice_fuzz_copy(data, size);

    ngx_http_stockprice_parse_start(&parser, buf, size, shape, want,
                                    want ? strlen(want) : 0, NULL, 0);

    if (budget == (size_t) -1) {
        parser.chunked = 0;
    }

    steps = 0;

    do {
        *rc = ngx_http_stockprice_parse_step(&parser, budget);

        if (++steps > size + 2) {
            abort();
        }

    } while (*rc == NGX_HTTP_STOCKPRICE_PARSE_AGAIN);

    *recs = NULL;
    *n = 0;

    if (*rc == NGX_HTTP_STOCKPRICE_PARSE_OK) {
        *rc = ngx_http_stockprice_parse_done(&parser, recs, n);

    } else {
        ngx_http_stockprice_parse_abort(&parser);
    }

    *st = parser.stats;

    free(buf);
}


static void
ngx_http_stockprice_fuzz_same(ngx_http_stockprice_record_t *a,
    ngx_http_stockprice_record_t *b, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (memcmp(&a[i].price, &b[i].price, sizeof(double)) != 0
            || a[i].symbol_len != b[i].symbol_len
            || memcmp(a[i].symbol, b[i].symbol, a[i].symbol_len) != 0
            || a[i].value_time_len != b[i].value_time_len
            || memcmp(a[i].value_time, b[i].value_time, a[i].value_time_len)
               != 0)
        {
            abort();
        }
    }
}
