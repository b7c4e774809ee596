
/*
 * Copyright (C) ngx_stockprice authors
 */


/*
 * Providers' shapes (CONTRACT 3.3, 3.4): JSON Pointers, records nested,
 * keyed by symbol or one per request, times since the epoch.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_pointer.h>
#include <ngx_http_stockprice_render.h>


#define MAX_RECS  8


typedef struct {
    const char                     *symbol;
    double                          price;
    const char                     *time;     /* NULL: none (measurement) */
} want_t;


typedef struct {
    const char                     *name;
    const char                     *body;
    const char                     *records;
    const char                     *symbol;   /* NULL: the default */
    const char                     *price;
    const char                     *time;
    int                             unit;
    const char                     *want;     /* $symbol */
    int                             rc;
    size_t                          n;
    want_t                          recs[MAX_RECS];
    size_t                          skipped;  /* bad symbol, price, object */
    size_t                          filtered;
    size_t                          bad_time;
} shape_case_t;


typedef struct {
    ngx_http_stockprice_shape_t     shape;
    char                            text[4][256];
} shape_t;


static const shape_case_t  shape_cases[] = {

    { "top-level array, seconds", "[{\"symbol\":\"AAPL\",\"price\":189.2,"
      "\"timestamp\":1704067200},{\"symbol\":\"MSFT\",\"price\":411.1,"
      "\"timestamp\":1704067200.5}]",
      "", NULL, NULL, "/timestamp", NGX_HTTP_STOCKPRICE_TIME_S, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 2,
      { { "AAPL", 189.2, "2024-01-01T00:00:00Z" },
        { "MSFT", 411.1, "2024-01-01T00:00:00.5Z" } }, 0, 0, 0 },

    { "array nested in an object, nanoseconds",
      "{\"status\":\"OK\",\"tickers\":[{\"ticker\":\"AAPL\",\"lastTrade\":"
      "{\"p\":189.2,\"t\":1704067200123456789}},{\"ticker\":\"MSFT\","
      "\"lastTrade\":{\"p\":411.1,\"t\":1704067200000000000}}],\"count\":2}",
      "/tickers", "/ticker", "/lastTrade/p", "/lastTrade/t",
      NGX_HTTP_STOCKPRICE_TIME_NS, NULL, NGX_HTTP_STOCKPRICE_PARSE_OK, 2,
      { { "AAPL", 189.2, "2024-01-01T00:00:00.1234567Z" },
        { "MSFT", 411.1, "2024-01-01T00:00:00Z" } }, 0, 0, 0 },

    { "object keyed by symbol, string prices",
      "{\"AAPL\":{\"price\":\"189.20\"},\"MSFT\":{\"price\":\"411.10\"}}",
      "", NULL, "/price", NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 2,
      { { "AAPL", 189.2, NULL }, { "MSFT", 411.1, NULL } }, 0, 0, 0 },

    { "keyed object nested, iso times kept as sent",
      "{\"trades\":{\"AAPL\":{\"t\":\"2024-01-02T15:04:05.123Z\",\"p\":189.2},"
      "\"MSFT\":{\"t\":\"2024-01-02T15:04:06+01:00\",\"p\":411.1}}}",
      "/trades", NULL, "/p", "/t", NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 2,
      { { "AAPL", 189.2, "2024-01-02T15:04:05.123Z" },
        { "MSFT", 411.1, "2024-01-02T15:04:06+01:00" } }, 0, 0, 0 },

    { "one object per symbol takes the symbol asked for",
      "{\"c\":189.2,\"t\":1704067200}",
      "", NULL, "/c", "/t", NGX_HTTP_STOCKPRICE_TIME_S, "AAPL",
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1,
      { { "AAPL", 189.2, "2024-01-01T00:00:00Z" } }, 0, 0, 0 },

    { "one object nested, keys with blanks and dots",
      "{\"Global Quote\":{\"01. symbol\":\"IBM\",\"05. price\":\"225.9700\","
      "\"07. latest trading day\":\"2024-01-02\"}}",
      "/Global Quote", "/01. symbol", "/05. price", NULL,
      NGX_HTTP_STOCKPRICE_TIME_ISO, "IBM", NGX_HTTP_STOCKPRICE_PARSE_OK, 1,
      { { "IBM", 225.97, NULL } }, 0, 0, 0 },

    { "one object naming another symbol than asked for is dropped",
      "{\"Global Quote\":{\"01. symbol\":\"IBM\",\"05. price\":\"225.97\"}}",
      "/Global Quote", "/01. symbol", "/05. price", NULL,
      NGX_HTTP_STOCKPRICE_TIME_ISO, "MSFT", NGX_HTTP_STOCKPRICE_PARSE_OK, 0,
      { { NULL, 0, NULL } }, 0, 1, 0 },

    { "an array asked for one symbol: records without one take it",
      "[{\"price\":1},{\"symbol\":\"B\",\"price\":2}]",
      "", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, "A",
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1,
      { { "A", 1, NULL } }, 0, 1, 0 },

    { "keyed records asked for one symbol",
      "{\"A\":{\"price\":1},\"B\":{\"price\":2}}",
      "", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, "B",
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1,
      { { "B", 2, NULL } }, 0, 1, 0 },

    { "RFC 6901 escapes", "{\"a/b\":{\"m~n\":[{\"s\":\"X1\",\"v\":{\"p\":1.5}}]}}",
      "/a~1b/m~0n", "/s", "/v/p", NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1, { { "X1", 1.5, NULL } }, 0, 0, 0 },

    { "an array index in the pointer",
      "{\"data\":[{\"x\":[]},{\"quotes\":[{\"symbol\":\"Y0\",\"price\":1}]}]}",
      "/data/1/quotes", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1, { { "Y0", 1, NULL } }, 0, 0, 0 },

    { "an array index in a field", "[{\"symbol\":\"Z\",\"bids\":[7,8]}]",
      "", NULL, "/bids/1", NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1, { { "Z", 8, NULL } }, 0, 0, 0 },

    { "a member name written with an escape",
      "{\"tick\\u0065rs\":[{\"symbol\":\"E\",\"price\":1}]}",
      "/tickers", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1, { { "E", 1, NULL } }, 0, 0, 0 },

    { "a name given twice: the first counts",
      "{\"t\":[{\"symbol\":\"FIRST\",\"price\":1}],"
      "\"t\":[{\"symbol\":\"SECOND\",\"price\":2}]}",
      "/t", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1, { { "FIRST", 1, NULL } }, 0, 0, 0 },

    { "a string that looks like the member does not fool the scan",
      "{\"x\":\"\\\"t\\\":[{\\\"symbol\\\":\\\"NO\\\"\",\"y\":{\"t\":[]},"
      "\"t\":[{\"symbol\":\"YES\",\"price\":1}]}",
      "/t", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1, { { "YES", 1, NULL } }, 0, 0, 0 },

    { "keyed records with a symbol field: the field wins",
      "{\"k1\":{\"symbol\":\"REAL\",\"price\":1}}",
      "", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1, { { "REAL", 1, NULL } }, 0, 0, 0 },

    { "a key too long for a symbol is skipped",
      "{\"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\":{\"price\":1},\"OK\":"
      "{\"price\":2}}",
      "", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1, { { "OK", 2, NULL } }, 1, 0, 0 },

    { "a rate-limit note read as keyed records: none valid",
      "{\"Note\":\"Thank you for using Alpha Vantage! rate limit\"}",
      "", NULL, "/price", NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 0, { { NULL, 0, NULL } }, 1, 0, 0 },

    { "epoch times that are no numbers, or out of range",
      "[{\"symbol\":\"A\",\"price\":1,\"t\":\"soon\"},"
      "{\"symbol\":\"B\",\"price\":2,\"t\":-5},"
      "{\"symbol\":\"C\",\"price\":3,\"t\":\"1704067200\"},"
      "{\"symbol\":\"D\",\"price\":4,\"t\":253402300800}]",
      "", NULL, NULL, "/t", NGX_HTTP_STOCKPRICE_TIME_S, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 4,
      { { "A", 1, NULL }, { "B", 2, NULL },
        { "C", 3, "2024-01-01T00:00:00Z" }, { "D", 4, NULL } }, 0, 0, 3 },

    /* a double is off by up to 119 ns at 1.7e9 s, 128 ns at 1.7e18 ns */

    { "epoch times read from their digits, in slices",
      "{\"r\":[{\"symbol\":\"A\",\"price\":1,\"t\":1704067200999999999},"
      " {\"symbol\":\"B\",\"t\" : 1704067200123456999 ,\"price\":2},"
      "{\"symbol\":\"C\",\"price\":3,\"t\":\"1704067200999999999\"},"
      "{\"symbol\":\"D\",\"x\":{\"t\":1},\"price\":4,\"t\":17040672e11}]}",
      "/r", NULL, NULL, "/t", NGX_HTTP_STOCKPRICE_TIME_NS, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 4,
      { { "A", 1, "2024-01-01T00:00:00.9999999Z" },
        { "B", 2, "2024-01-01T00:00:00.1234569Z" },
        { "C", 3, "2024-01-01T00:00:00.9999999Z" },
        { "D", 4, "2024-01-01T00:00:00Z" } }, 0, 0, 0 },

    /*
     * the digits are read before cJSON's parse and blanked for it: what
     * else reads that value, what is too short or too long to blank
     */

    { "price_field= is time_field=: the number is both",
      "[{\"symbol\":\"A\",\"t\":1704067200},"
      "{\"symbol\":\"B\",\"t\":1704067201.5}]",
      "", NULL, "/t", "/t", NGX_HTTP_STOCKPRICE_TIME_S, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 2,
      { { "A", 1704067200, "2024-01-01T00:00:00Z" },
        { "B", 1704067201.5, "2024-01-01T00:00:01.5Z" } }, 0, 0, 0 },

    { "epoch numbers short, long, with an exponent, or of another type",
      "[{\"symbol\":\"A\",\"price\":1,\"t\":0},"
      "{\"symbol\":\"B\",\"price\":2,"
      "\"t\":1704067200.12345678901234567890123},"
      "{\"symbol\":\"C\",\"price\":3,\"t\":1.7040672005e9},"
      "{\"symbol\":\"D\",\"price\":4,\"t\":true}]",
      "", NULL, NULL, "/t", NGX_HTTP_STOCKPRICE_TIME_S, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 4,
      { { "A", 1, "1970-01-01T00:00:00Z" },
        { "B", 2, "2024-01-01T00:00:00.1234567Z" },
        { "C", 3, "2024-01-01T00:00:00.5Z" }, { "D", 4, NULL } }, 0, 0, 1 },

    { "a slice that is not JSON after its epoch times",
      "[{\"symbol\":\"A\",\"price\":1,\"t\":1704067200},"
      "{\"symbol\":\"B\",\"price\":2,\"t\":1704067200} x]",
      "", NULL, NULL, "/t", NGX_HTTP_STOCKPRICE_TIME_S, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON, 0, { { NULL, 0, NULL } }, 0, 0, 0 },

    /*
     * the slice's scan follows time_field= in each element: names it
     * cannot read as written, names at other depths, names given twice
     */

    { "the scan follows time_field=: escapes, depths, names twice",
      "{\"q\":[{\"symbol\":\"A\",\"price\":1,\"l\":{\"\\u0074\":1704067201}},"
      "{\"symbol\":\"B\",\"price\":2,\"x\":{\"l\":{\"t\":5}},\"t\":\"l\","
      "\"l\" : { \"s\":\"t\", \"t\" : 1704067202 } },"
      "{\"symbol\":\"C\",\"price\":3,\"l\":{\"p\":1},"
      "\"l\":{\"t\":1704067203}},"
      "{\"symbol\":\"D\",\"price\":4,\"l\":[{\"t\":1704067204}]},"
      "{\"symbol\":\"E\",\"price\":5,\"l\":7,\"l\":{\"t\":1704067205}},"
      "{\"symbol\":\"F\",\"price\":6,\"l\":{\"t\":1704067206,"
      "\"t\":1704067299}},"
      "{\"symbol\":\"G\",\"price\":7,\"l\":{\"\\u0074\":5,\"t\":1704067207}}]}",
      "/q", NULL, NULL, "/l/t", NGX_HTTP_STOCKPRICE_TIME_S, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 7,
      { { "A", 1, "2024-01-01T00:00:01Z" }, { "B", 2, "2024-01-01T00:00:02Z" },
        { "C", 3, NULL }, { "D", 4, NULL }, { "E", 5, NULL },
        { "F", 6, "2024-01-01T00:00:06Z" },
        { "G", 7, "1970-01-01T00:00:05Z" } }, 0, 0, 0 },

    { "the scan follows time_field= in keyed records, a body with escapes",
      "{\"A\\u0042\":{\"n\":\"\\\"q\\\"\",\"t\":1704067201},"
      "\"C\":{\"t\":1704067202,\"n\":\"x\"},\"D\":[1],\"E\":{}}",
      "", NULL, "/t", "/t", NGX_HTTP_STOCKPRICE_TIME_S, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 2,
      { { "AB", 1704067201, "2024-01-01T00:00:01Z" },
        { "C", 1704067202, "2024-01-01T00:00:02Z" } }, 2, 0, 0 },

    { "epoch seconds with microseconds, keyed",
      "{ \"A\" : {\"p\":1,\"t\":1704067200.123401},\"B\\u0041\":"
      "{\"p\":2,\"t\":1704067200.123406},\"C\":{\"t\":{\"at\":"
      "[1704067200.123407]},\"p\":3}}",
      "", NULL, "/p", "/t", NGX_HTTP_STOCKPRICE_TIME_S, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 3,
      { { "A", 1, "2024-01-01T00:00:00.123401Z" },
        { "BA", 2, "2024-01-01T00:00:00.123406Z" },
        { "C", 3, NULL } }, 0, 0, 1 },

    { "epoch seconds down an array index",
      "[{\"symbol\":\"S\",\"price\":1,\"t\":{\"at\":[0, 1704067200.123407]}}]",
      "", NULL, NULL, "/t/at/1", NGX_HTTP_STOCKPRICE_TIME_S, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1,
      { { "S", 1, "2024-01-01T00:00:00.123407Z" } }, 0, 0, 0 },

    { "epoch milliseconds with a fraction, whole body asked for one",
      "[{\"price\":1,\"ms\":1704067200123.4567}]",
      "", NULL, NULL, "/ms", NGX_HTTP_STOCKPRICE_TIME_MS, "Q",
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1,
      { { "Q", 1, "2024-01-01T00:00:00.1234567Z" } }, 0, 0, 0 },

    { "the one record asked for, nanoseconds",
      "{\"c\":189.2,\"t\":1704067200999999999}",
      "", NULL, "/c", "/t", NGX_HTTP_STOCKPRICE_TIME_NS, "AAPL",
      NGX_HTTP_STOCKPRICE_PARSE_OK, 1,
      { { "AAPL", 189.2, "2024-01-01T00:00:00.9999999Z" } }, 0, 0, 0 },

    { "nothing at records=", "{\"tickers\":[]}",
      "/quotes", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_NOT_FOUND, 0, { { NULL, 0, NULL } }, 0, 0, 0 },

    { "records= past a scalar", "{\"tickers\":5}",
      "/tickers/x", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_NOT_FOUND, 0, { { NULL, 0, NULL } }, 0, 0, 0 },

    { "records= at a number", "{\"tickers\":5}",
      "/tickers", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY, 0, { { NULL, 0, NULL } }, 0, 0, 0 },

    { "the rest of the body is not JSON",
      "{\"t\":[{\"symbol\":\"A\",\"price\":1}],\"x\":tru}",
      "/t", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON, 0, { { NULL, 0, NULL } }, 0, 0, 0 },

    { "the body is cut short after the records",
      "{\"t\":[{\"symbol\":\"A\",\"price\":1}]",
      "/t", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON, 0, { { NULL, 0, NULL } }, 0, 0, 0 },

    { "an empty keyed object is no failure", "{\"trades\":{}}",
      "/trades", NULL, NULL, NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL,
      NGX_HTTP_STOCKPRICE_PARSE_OK, 0, { { NULL, 0, NULL } }, 0, 0, 0 },
};


static void
shape_make(shape_t *s, const char *records, const char *symbol,
    const char *price, const char *time, int unit)
{
    size_t       i;
    const char  *text[4];

    ngx_http_stockprice_parse_shape_default(&s->shape);

    text[0] = records;
    text[1] = symbol;
    text[2] = price;
    text[3] = time;

    for (i = 0; i < 4; i++) {
        ngx_http_stockprice_pointer_t  *p;

        if (text[i] == NULL) {
            continue;
        }

        p = (i == 0) ? &s->shape.records : (i == 1) ? &s->shape.symbol
            : (i == 2) ? &s->shape.price : &s->shape.time;

        assert_int_equal(ngx_http_stockprice_pointer_compile(p, text[i],
                                                             strlen(text[i]),
                                                             s->text[i]),
                         NGX_HTTP_STOCKPRICE_POINTER_OK);
    }

    s->shape.time_unit = unit;
}


static int
shape_case_check(const shape_case_t *c)
{
    int                                 failed;
    char                               *buf;
    size_t                              i, len, n;
    shape_t                             s;
    const want_t                       *w;
    ngx_http_stockprice_record_t       *recs;
    ngx_http_stockprice_parse_stats_t   st;

    shape_make(&s, c->records, c->symbol, c->price, c->time, c->unit);

    len = strlen(c->body);
    buf = malloc(len + 1);
    assert_non_null(buf);
    memcpy(buf, c->body, len);

    failed = 0;

    i = ngx_http_stockprice_parse_shaped(buf, len, &s.shape, c->want,
                                         c->want ? strlen(c->want) : 0,
                                         NULL, 0, &recs, &n, &st);

    /*
     * the body as it came, whatever the result (but for the escapes that
     * the parser patches, which no "\u" here is)
     */

    if (strstr(c->body, "\\u") == NULL && memcmp(buf, c->body, len) != 0) {
        print_error("case \"%s\": the body is not as it came: %.*s\n",
                    c->name, (int) len, buf);
        failed = 1;
    }

    free(buf);

#define CHECK(cond, ...)                                                      \
    if (!(cond)) {                                                            \
        print_error("case \"%s\": ", c->name);                                \
        print_error(__VA_ARGS__);                                             \
        print_error("\n");                                                    \
        failed = 1;                                                           \
    }

    CHECK((int) i == c->rc, "rc %d, expected %d", (int) i, c->rc);
    CHECK(n == c->n, "%zu records, expected %zu", n, c->n);

    if (c->rc == NGX_HTTP_STOCKPRICE_PARSE_OK) {
        CHECK(st.bad_symbol + st.bad_price + st.not_object == c->skipped,
              "%zu skipped, expected %zu",
              st.bad_symbol + st.bad_price + st.not_object, c->skipped);
        CHECK(st.filtered == c->filtered, "%zu filtered, expected %zu",
              st.filtered, c->filtered);
        CHECK(st.bad_time == c->bad_time, "%zu bad times, expected %zu",
              st.bad_time, c->bad_time);
    }

    for (i = 0; i < n && i < c->n; i++) {
        w = &c->recs[i];

        CHECK(recs[i].symbol_len == strlen(w->symbol)
              && memcmp(recs[i].symbol, w->symbol, recs[i].symbol_len) == 0,
              "record %zu: symbol \"%.*s\", expected \"%s\"", i,
              (int) recs[i].symbol_len, recs[i].symbol, w->symbol);
        CHECK(recs[i].price == w->price, "record %zu: price %.17g, "
              "expected %.17g", i, recs[i].price, w->price);

        if (w->time == NULL) {
            CHECK(recs[i].value_time_len == 0, "record %zu: a value time "
                  "\"%.*s\"", i, (int) recs[i].value_time_len,
                  recs[i].value_time);

        } else {
            CHECK(recs[i].value_time_len == strlen(w->time)
                  && memcmp(recs[i].value_time, w->time,
                            recs[i].value_time_len) == 0,
                  "record %zu: value time \"%.*s\", expected \"%s\"", i,
                  (int) recs[i].value_time_len, recs[i].value_time, w->time);
        }
    }

#undef CHECK

    free(recs);

    return failed;
}


static void
test_shape_cases(void **state)
{
    size_t  i, failed;

    (void) state;

    failed = 0;

    for (i = 0; i < sizeof(shape_cases) / sizeof(shape_cases[0]); i++) {
        failed += shape_case_check(&shape_cases[i]);
    }

    assert_int_equal(failed, 0);
}


static void
test_pointer_compile(void **state)
{
    char                            out[128];
    ngx_http_stockprice_pointer_t   p;

    (void) state;

#define COMPILE(s)                                                            \
    ngx_http_stockprice_pointer_compile(&p, s, sizeof(s) - 1, out)

    assert_int_equal(COMPILE(""), NGX_HTTP_STOCKPRICE_POINTER_OK);
    assert_int_equal(p.n, 0);

    assert_int_equal(COMPILE("/a~1b/m~0n"), NGX_HTTP_STOCKPRICE_POINTER_OK);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.token[0], "a/b");
    assert_int_equal(p.len[0], 3);
    assert_string_equal(p.token[1], "m~n");

    /* "~01" is "~" then "1", not "/" (RFC 6901 section 4) */
    assert_int_equal(COMPILE("/~01"), NGX_HTTP_STOCKPRICE_POINTER_OK);
    assert_string_equal(p.token[0], "~1");

    assert_int_equal(COMPILE("/Global Quote"), NGX_HTTP_STOCKPRICE_POINTER_OK);
    assert_string_equal(p.token[0], "Global Quote");

    assert_int_equal(COMPILE("//"), NGX_HTTP_STOCKPRICE_POINTER_OK);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.len[0], 0);
    assert_int_equal(p.len[1], 0);

    assert_int_equal(COMPILE("tickers"), NGX_HTTP_STOCKPRICE_POINTER_NO_SLASH);
    assert_int_equal(COMPILE("/a~2b"), NGX_HTTP_STOCKPRICE_POINTER_ESCAPE);
    assert_int_equal(COMPILE("/a~"), NGX_HTTP_STOCKPRICE_POINTER_ESCAPE);
    assert_int_equal(COMPILE("/a\0b"), NGX_HTTP_STOCKPRICE_POINTER_NUL);
    assert_int_equal(COMPILE("/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16"),
                     NGX_HTTP_STOCKPRICE_POINTER_OK);
    assert_int_equal(COMPILE("/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17"),
                     NGX_HTTP_STOCKPRICE_POINTER_DEEP);

#undef COMPILE
}


static void
test_epoch(void **state)
{
    char  buf[NGX_HTTP_STOCKPRICE_TIME_MAX];

    (void) state;

#define EPOCH(v, u, s)                                                        \
    memset(buf, 0, sizeof(buf));                                              \
    assert_int_equal(ngx_http_stockprice_parse_epoch(buf, v, strlen(v),       \
                                             NGX_HTTP_STOCKPRICE_TIME_##u),   \
                     strlen(s));                                              \
    assert_string_equal(buf, s)

    EPOCH("0", S, "1970-01-01T00:00:00Z");
    EPOCH("1704067200", S, "2024-01-01T00:00:00Z");
    EPOCH("1704067200.5", S, "2024-01-01T00:00:00.5Z");
    EPOCH("1704067200.123456", S, "2024-01-01T00:00:00.123456Z");
    EPOCH("1704067200.99999999", S, "2024-01-01T00:00:00.9999999Z");
    EPOCH("1704067200.0000001", S, "2024-01-01T00:00:00.0000001Z");
    EPOCH("1704067200123", MS, "2024-01-01T00:00:00.123Z");
    EPOCH("1704067200999", MS, "2024-01-01T00:00:00.999Z");
    EPOCH("1704067200999.5", MS, "2024-01-01T00:00:00.9995Z");
    EPOCH("1704067200123456", US, "2024-01-01T00:00:00.123456Z");
    EPOCH("1704067200000001", US, "2024-01-01T00:00:00.000001Z");
    EPOCH("1704067200123456.78", US, "2024-01-01T00:00:00.1234567Z");
    EPOCH("1704067200123456789", NS, "2024-01-01T00:00:00.1234567Z");
    EPOCH("1704067200000000000", NS, "2024-01-01T00:00:00Z");
    EPOCH("+1704067200", S, "2024-01-01T00:00:00Z");
    EPOCH("1.7040672e9", S, "2024-01-01T00:00:00Z");
    EPOCH("1704067200.5E0", S, "2024-01-01T00:00:00.5Z");
    EPOCH("951782400", S, "2000-02-29T00:00:00Z");
    EPOCH("253402300799", S, "9999-12-31T23:59:59Z");
    EPOCH("-1", S, "");
    EPOCH("253402300800", S, "");
    EPOCH("1e300", NS, "");
    EPOCH("9000000000000000000", NS, "");
    EPOCH("", S, "");

    /*
     * exact where a double is not: at 1.7e9 s a double is off by up to
     * 119 ns, at 1.7e18 ns by up to 128 ns, across a microsecond here
     */

    EPOCH("1704067200.1234560", S, "2024-01-01T00:00:00.123456Z");
    EPOCH("1704067200.000001", S, "2024-01-01T00:00:00.000001Z");
    EPOCH("1704067200999999999", NS, "2024-01-01T00:00:00.9999999Z");
    EPOCH("1704067200000000099", NS, "2024-01-01T00:00:00Z");
    EPOCH("1704067200123456999", NS, "2024-01-01T00:00:00.1234569Z");

#undef EPOCH
}


static void
test_time_unit(void **state)
{
    (void) state;

    assert_int_equal(ngx_http_stockprice_parse_time_unit("iso", 3),
                     NGX_HTTP_STOCKPRICE_TIME_ISO);
    assert_int_equal(ngx_http_stockprice_parse_time_unit("s", 1),
                     NGX_HTTP_STOCKPRICE_TIME_S);
    assert_int_equal(ngx_http_stockprice_parse_time_unit("ns", 2),
                     NGX_HTTP_STOCKPRICE_TIME_NS);
    assert_int_equal(ngx_http_stockprice_parse_time_unit("sec", 3), -1);
    assert_int_equal(ngx_http_stockprice_parse_time_unit("", 0), -1);
    assert_int_equal(ngx_http_stockprice_parse_time_unit("m", 1), -1);
}


/*
 * 5,000 records nested, and keyed: parsed in small steps, the same
 * records as parsed in one step
 */

static void
big_body_steps(const char *head, const char *fmt, const char *tail,
    const char *records, const char *symbol, const char *price,
    const char *time, int unit, const char *vtime)
{
    int                            rc;
    char                          *body, *copy;
    size_t                         i, len, n1, n2, steps;
    shape_t                        s;
    ngx_http_stockprice_parser_t   parser;
    ngx_http_stockprice_record_t  *one, *two;
    ngx_http_stockprice_parse_stats_t  st;

    body = malloc(5000 * 100 + 100);
    assert_non_null(body);

    len = (size_t) sprintf(body, "%s", head);

    for (i = 0; i < 5000; i++) {
        len += (size_t) sprintf(body + len, fmt, i ? "," : "", (int) i,
                                (int) i + 1);
    }

    len += (size_t) sprintf(body + len, "%s", tail);

    shape_make(&s, records, symbol, price, time, unit);

    copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, body, len);

    assert_int_equal(ngx_http_stockprice_parse_shaped(copy, len, &s.shape,
                                                      NULL, 0, NULL, 0, &one,
                                                      &n1, &st),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(n1, 5000);
    assert_memory_equal(copy, body, len);

    ngx_http_stockprice_parse_start(&parser, copy, len, &s.shape, NULL, 0,
                                    NULL, 0);
    steps = 0;

    do {
        rc = ngx_http_stockprice_parse_step(&parser, 4096);
        steps++;
    } while (rc == NGX_HTTP_STOCKPRICE_PARSE_AGAIN);

    assert_int_equal(rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_true(steps > 20);
    assert_memory_equal(copy, body, len);
    assert_int_equal(ngx_http_stockprice_parse_done(&parser, &two, &n2),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(n2, n1);

    for (i = 0; i < n1; i++) {
        assert_int_equal(one[i].symbol_len, two[i].symbol_len);
        assert_memory_equal(one[i].symbol, two[i].symbol, one[i].symbol_len);
        assert_true(one[i].price == two[i].price);

        if (vtime) {
            assert_int_equal(one[i].value_time_len, strlen(vtime));
            assert_memory_equal(one[i].value_time, vtime, strlen(vtime));
            assert_int_equal(two[i].value_time_len, strlen(vtime));
            assert_memory_equal(two[i].value_time, vtime, strlen(vtime));
        }
    }

    assert_true(one[0].price >= 1);

    free(one);
    free(two);
    free(copy);
    free(body);
}


static void
test_big_shapes_in_steps(void **state)
{
    (void) state;

    big_body_steps("{\"status\":\"OK\",\"tickers\":[",
                   "%s{\"ticker\":\"S%04d\",\"lastTrade\":{\"p\":%d}}",
                   "],\"count\":5000}", "/tickers", "/ticker", "/lastTrade/p",
                   NULL, NGX_HTTP_STOCKPRICE_TIME_ISO, NULL);

    big_body_steps("{\"data\":{\"x\":1},\"trades\":{",
                   "%s\"S%04d\":{\"p\":%d,\"t\":\"2024-01-02T15:04:05Z\"}",
                   "}}", "/trades", NULL, "/p", "/t",
                   NGX_HTTP_STOCKPRICE_TIME_ISO, "2024-01-02T15:04:05Z");

    /*
     * epoch times from their digits: more elements than a slice has
     * marks for (the slice ends early), in steps and in one
     */

    big_body_steps("{\"status\":\"OK\",\"tickers\":[",
                   "%s{\"ticker\":\"S%04d\",\"lastTrade\":{\"p\":%d,"
                   "\"t\":1704067200999999999}}",
                   "],\"count\":5000}", "/tickers", "/ticker", "/lastTrade/p",
                   "/lastTrade/t", NGX_HTTP_STOCKPRICE_TIME_NS,
                   "2024-01-01T00:00:00.9999999Z");

    big_body_steps("{\"trades\":{",
                   "%s \"S%04d\" : {\"t\": 1704067200.123401 ,\"p\":%d}",
                   "}}", "/trades", NULL, "/p", "/t",
                   NGX_HTTP_STOCKPRICE_TIME_S, "2024-01-01T00:00:00.123401Z");
}


/* three bodies of one refresh, the second cut short: its records undone */

static void
test_bodies_next_undo(void **state)
{
    int                            rc;
    char                           b1[] = "[{\"symbol\":\"A\",\"price\":1},"
                                          "{\"symbol\":\"\",\"price\":1}]";
    char                           b2[] = "[{\"symbol\":\"B\",\"price\":2},"
                                          "{\"symbol\":\"C\",\"pri";
    char                           b3[] = "{\"price\":3}";
    size_t                         n;
    ngx_http_stockprice_parser_t   parser;
    ngx_http_stockprice_record_t  *recs;

    (void) state;

    ngx_http_stockprice_parse_start(&parser, b1, sizeof(b1) - 1, NULL, NULL,
                                    0, NULL, 0);
    assert_int_equal(ngx_http_stockprice_parse_step(&parser, (size_t) -1),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(parser.n, 1);
    assert_int_equal(parser.stats.bad_symbol, 1);

    /* the first element in a step of its own, then the cut */

    ngx_http_stockprice_parse_next(&parser, b2, sizeof(b2) - 1, NULL, 0);

    do {
        rc = ngx_http_stockprice_parse_step(&parser, 1);
    } while (rc == NGX_HTTP_STOCKPRICE_PARSE_AGAIN);

    assert_int_equal(rc, NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON);
    assert_int_equal(parser.n, 2);
    ngx_http_stockprice_parse_undo(&parser);
    assert_int_equal(parser.n, 1);
    assert_int_equal(parser.stats.total, 2);

    ngx_http_stockprice_parse_next(&parser, b3, sizeof(b3) - 1, "Z", 1);
    assert_int_equal(ngx_http_stockprice_parse_step(&parser, (size_t) -1),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);

    assert_int_equal(ngx_http_stockprice_parse_done(&parser, &recs, &n),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(recs[0].symbol, "A", 1);
    assert_memory_equal(recs[1].symbol, "Z", 1);
    assert_true(recs[1].price == 3);
    assert_int_equal(parser.stats.total, 3);
    assert_int_equal(parser.stats.bad_symbol, 1);
    assert_int_equal(parser.stats.accepted, 2);

    free(recs);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_shape_cases),
        cmocka_unit_test(test_pointer_compile),
        cmocka_unit_test(test_epoch),
        cmocka_unit_test(test_time_unit),
        cmocka_unit_test(test_big_shapes_in_steps),
        cmocka_unit_test(test_bodies_next_undo),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
