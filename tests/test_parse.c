
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>


#define symbol_cmp  ngx_http_stockprice_parse_symbol_cmp


typedef struct {
    int                                 rc;
    size_t                              n;
    ngx_http_stockprice_record_t       *recs;
    ngx_http_stockprice_parse_stats_t   st;
} result_t;


/* parses "len" bytes from an exact-size copy: ASan sees any overread */

static result_t
parse_len(const char *json, size_t len, const ngx_http_stockprice_str_t *f,
    size_t nf)
{
    char      *buf;
    result_t   r;

    buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, json, len);

    memset(&r.st, 0xff, sizeof(r.st));
    r.recs = (void *) 1;
    r.n = 12345;

    r.rc = ngx_http_stockprice_parse_prices(buf, len, f, nf, &r.recs, &r.n,
                                            &r.st);
    free(buf);

    if (r.rc != NGX_HTTP_STOCKPRICE_PARSE_OK) {
        assert_null(r.recs);
        assert_int_equal(r.n, 0);
    }

    assert_int_equal(r.st.accepted, r.n);
    assert_true(r.n == 0 ? r.recs == NULL : r.recs != NULL);

    return r;
}


static result_t
parse(const char *json)
{
    return parse_len(json, strlen(json), NULL, 0);
}


static void
done(result_t *r)
{
    free(r->recs);
    r->recs = NULL;
}


static const ngx_http_stockprice_record_t *
find(result_t *r, const char *sym)
{
    size_t  i;

    for (i = 0; i < r->n; i++) {
        if (r->recs[i].symbol_len == strlen(sym)
            && memcmp(r->recs[i].symbol, sym, strlen(sym)) == 0)
        {
            return &r->recs[i];
        }
    }

    return NULL;
}


static void
assert_skipped_stats_zero(result_t *r)
{
    assert_int_equal(r->st.not_object, 0);
    assert_int_equal(r->st.filtered, 0);
    assert_int_equal(r->st.duplicate, 0);
}


static void
test_good_records(void **state)
{
    result_t                             r;
    const ngx_http_stockprice_record_t  *rec;

    (void) state;

    r = parse("[{\"symbol\":\"MSFT\",\"price\":14.7052516685914,"
              "\"valueDateTime\":\"2024-05-01T10:53:37.2982063Z\"},"
              "{\"symbol\":\"AAPL\",\"price\":187.3}]");

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.st.total, 2);
    assert_int_equal(r.st.accepted, 2);
    assert_int_equal(r.st.bad_symbol + r.st.bad_price + r.st.bad_time
                     + r.st.bad_id, 0);
    assert_skipped_stats_zero(&r);

    rec = &r.recs[0];
    assert_int_equal(rec->symbol_len, 4);
    assert_memory_equal(rec->symbol, "AAPL", 4);
    assert_true(rec->price == 187.3);
    assert_int_equal(rec->value_time_len, 0);
    assert_false(rec->has_id);

    rec = &r.recs[1];
    assert_int_equal(rec->symbol_len, 4);
    assert_memory_equal(rec->symbol, "MSFT", 4);
    assert_true(rec->price == 14.7052516685914);
    assert_int_equal(rec->value_time_len, 28);
    assert_memory_equal(rec->value_time, "2024-05-01T10:53:37.2982063Z", 28);
    assert_false(rec->has_id);

    done(&r);
}


static void
test_numeric_string_prices(void **state)
{
    char      buf[128];
    size_t    i;
    result_t  r;

    static const struct {
        const char  *price;
        double       value;
    } good[] = {
        { "187.30", 187.3 },
        { "-1.5e2", -150.0 },
        { "+5", 5.0 },
        { "0", 0.0 },
        { "1E3", 1000.0 },
        { "2e-1", 0.2 },
        { "14.7052516685914", 14.7052516685914 },
    };

    (void) state;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(buf, sizeof(buf), "[{\"symbol\":\"A\",\"price\":\"%s\"}]",
                 good[i].price);

        r = parse(buf);

        assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.st.bad_price, 0);
        assert_true(r.recs[0].price == good[i].value);

        done(&r);
    }
}


/*
 * Bodies and what they give: the return code, the number of records and,
 * where listed, their symbols in order, and every count of the stats (a
 * count not named is expected to be 0; "accepted" is the number of
 * records).  A failing case is reported by its name.
 */

#define BODY(s)  .body = (s), .len = sizeof(s) - 1

#define BAD_PRICE(name, s)                                                    \
    { name, BODY(s), NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 0,                \
      { .total = 1, .bad_price = 1 }, { NULL } }

#define BAD_SYMBOL(name, s)                                                   \
    { name, BODY(s), NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 0,                \
      { .total = 1, .bad_symbol = 1 }, { NULL } }

#define REFUSED(name, rc, s)                                                  \
    { name, BODY(s), NULL, 0, rc, 0, { .total = 0 }, { NULL } }


typedef struct {
    const char                         *name;
    const char                         *body;
    size_t                              len;
    const ngx_http_stockprice_str_t    *filter;
    size_t                              nfilter;
    int                                 rc;
    size_t                              n;
    ngx_http_stockprice_parse_stats_t   st;
    const char                         *symbols[8];
} body_case_t;


static const char  filter_body[] = "[{\"symbol\":\"MSFT\",\"price\":1},"
                                   "{\"symbol\":\"IBM\",\"price\":2},"
                                   "{\"symbol\":\"SAP\",\"price\":3},"
                                   "{\"symbol\":\"SAPX\",\"price\":4},"
                                   "{\"symbol\":\"SAP\",\"price\":5},"
                                   "{\"symbol\":\"AAP\",\"price\":6}]";

static const ngx_http_stockprice_str_t  filter_sap = { "SAP", 3 };


static const body_case_t  body_cases[] = {

    /* a record without a usable price is skipped */

    BAD_PRICE("price missing", "[{\"symbol\":\"X\"}]"),
    BAD_PRICE("price null", "[{\"symbol\":\"X\",\"price\":null}]"),
    BAD_PRICE("price true", "[{\"symbol\":\"X\",\"price\":true}]"),
    BAD_PRICE("price false", "[{\"symbol\":\"X\",\"price\":false}]"),
    BAD_PRICE("price string abc", "[{\"symbol\":\"X\",\"price\":\"abc\"}]"),
    BAD_PRICE("price string 1.5x", "[{\"symbol\":\"X\",\"price\":\"1.5x\"}]"),
    BAD_PRICE("price empty string", "[{\"symbol\":\"X\",\"price\":\"\"}]"),
    BAD_PRICE("price string, blank before",
              "[{\"symbol\":\"X\",\"price\":\" 1\"}]"),
    BAD_PRICE("price string, blank after",
              "[{\"symbol\":\"X\",\"price\":\"1 \"}]"),
    BAD_PRICE("price string inf", "[{\"symbol\":\"X\",\"price\":\"inf\"}]"),
    BAD_PRICE("price string -Infinity",
              "[{\"symbol\":\"X\",\"price\":\"-Infinity\"}]"),
    BAD_PRICE("price string nan", "[{\"symbol\":\"X\",\"price\":\"nan\"}]"),
    BAD_PRICE("price string NAN(1)",
              "[{\"symbol\":\"X\",\"price\":\"NAN(1)\"}]"),
    BAD_PRICE("price string hex", "[{\"symbol\":\"X\",\"price\":\"0x10\"}]"),
    BAD_PRICE("price string hex float",
              "[{\"symbol\":\"X\",\"price\":\"0x1p3\"}]"),
    BAD_PRICE("price string .5", "[{\"symbol\":\"X\",\"price\":\".5\"}]"),
    BAD_PRICE("price string 5.", "[{\"symbol\":\"X\",\"price\":\"5.\"}]"),
    BAD_PRICE("price string 1e", "[{\"symbol\":\"X\",\"price\":\"1e\"}]"),
    BAD_PRICE("price string --1", "[{\"symbol\":\"X\",\"price\":\"--1\"}]"),
    BAD_PRICE("price string -", "[{\"symbol\":\"X\",\"price\":\"-\"}]"),
    BAD_PRICE("price string with a NUL escape",
              "[{\"symbol\":\"X\",\"price\":\"1\\u0000\"}]"),
    BAD_PRICE("price string out of range",
              "[{\"symbol\":\"X\",\"price\":\"1e999\"}]"),
    BAD_PRICE("price 1e999", "[{\"symbol\":\"X\",\"price\":1e999}]"),
    BAD_PRICE("price -1e999", "[{\"symbol\":\"X\",\"price\":-1e999}]"),
    BAD_PRICE("price an array", "[{\"symbol\":\"X\",\"price\":[1]}]"),
    BAD_PRICE("price an object", "[{\"symbol\":\"X\",\"price\":{\"v\":1}}]"),
    BAD_PRICE("\"Price\" is not \"price\"", "[{\"symbol\":\"X\",\"Price\":1}]"),

    /*
     * a surrogate escape that is not half of a pair: its field is invalid,
     * the body is not (cJSON alone would refuse the whole body)
     */

    BAD_SYMBOL("lone high surrogate in the symbol",
               "[{\"symbol\":\"A\\ud800\",\"price\":1}]"),
    BAD_SYMBOL("lone low surrogate in the symbol",
               "[{\"symbol\":\"A\\uDC00\",\"price\":1}]"),
    BAD_SYMBOL("high surrogate before another escape",
               "[{\"symbol\":\"A\\ud800\\u0041\",\"price\":1}]"),
    BAD_SYMBOL("two high surrogates",
               "[{\"symbol\":\"A\\ud800\\ud800\",\"price\":1}]"),
    BAD_PRICE("lone surrogate in a price string",
              "[{\"symbol\":\"X\",\"price\":\"1\\ud800\"}]"),
    { "lone surrogate in a field not read",
      BODY("[{\"symbol\":\"A\",\"price\":1,\"note\":\"\\ud800x\\udfff\"}]"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 1, { .total = 1 }, { "A" } },
    { "lone surrogate in the value time",
      BODY("[{\"symbol\":\"A\",\"price\":1,\"valueDateTime\":\"\\ud800\"}]"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 1,
      { .total = 1, .bad_time = 1 }, { "A" } },
    { "a surrogate pair is one character",
      BODY("[{\"symbol\":\"A\\ud83d\\ude00\",\"price\":1}]"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 1, { .total = 1 },
      { "A\xf0\x9f\x98\x80" } },
    { "an escaped backslash before ud800 is no escape",
      BODY("[{\"symbol\":\"A\\\\ud800\",\"price\":1}]"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 1, { .total = 1 },
      { "A\\ud800" } },
    { "a lone surrogate skips its record only",
      BODY("[{\"symbol\":\"B\\udbff\",\"price\":1},"
           "{\"symbol\":\"C\",\"price\":2}]"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 1,
      { .total = 2, .bad_symbol = 1 }, { "C" } },

    /* a record without a usable symbol is skipped */

    BAD_SYMBOL("symbol missing", "[{\"price\":1}]"),
    BAD_SYMBOL("\"Symbol\" is not \"symbol\"",
               "[{\"Symbol\":\"A\",\"price\":1}]"),
    BAD_SYMBOL("symbol null", "[{\"symbol\":null,\"price\":1}]"),
    BAD_SYMBOL("symbol a number", "[{\"symbol\":1,\"price\":1}]"),
    BAD_SYMBOL("symbol an array", "[{\"symbol\":[\"A\"],\"price\":1}]"),
    BAD_SYMBOL("symbol empty", "[{\"symbol\":\"\",\"price\":1}]"),
    BAD_SYMBOL("symbol of 33 bytes",
               "[{\"symbol\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\","
               "\"price\":1}]"),
    BAD_SYMBOL("symbol with a newline",
               "[{\"symbol\":\"A\\nB\",\"price\":1}]"),
    BAD_SYMBOL("symbol with a tab", "[{\"symbol\":\"A\\tB\",\"price\":1}]"),
    BAD_SYMBOL("symbol with 0x1f", "[{\"symbol\":\"A\\u001fB\",\"price\":1}]"),
    BAD_SYMBOL("symbol with 0x7f", "[{\"symbol\":\"A\\u007fB\",\"price\":1}]"),
    BAD_SYMBOL("symbol with a raw 0x01",
               "[{\"symbol\":\"A\x01" "B\",\"price\":1}]"),
    BAD_SYMBOL("symbol with a NUL escape inside",
               "[{\"symbol\":\"A\\u0000B\",\"price\":1}]"),
    BAD_SYMBOL("symbol only a NUL escape",
               "[{\"symbol\":\"\\u0000\",\"price\":1}]"),
    BAD_SYMBOL("symbol ending in a NUL escape",
               "[{\"symbol\":\"AB\\u0000\",\"price\":1}]"),
    BAD_SYMBOL("symbol with byte 0xff",
               "[{\"symbol\":\"A\xff\",\"price\":1}]"),
    BAD_SYMBOL("symbol with a lone continuation byte",
               "[{\"symbol\":\"A\x80\",\"price\":1}]"),
    BAD_SYMBOL("symbol with a cut 2-byte sequence",
               "[{\"symbol\":\"A\xc3\",\"price\":1}]"),
    BAD_SYMBOL("symbol with a cut 3-byte sequence",
               "[{\"symbol\":\"A\xe2\x82\",\"price\":1}]"),
    BAD_SYMBOL("symbol with an overlong 2-byte '/'",
               "[{\"symbol\":\"A\xc0\xaf\",\"price\":1}]"),
    BAD_SYMBOL("symbol with an overlong 3-byte '/'",
               "[{\"symbol\":\"A\xe0\x80\xaf\",\"price\":1}]"),
    BAD_SYMBOL("symbol with an overlong 4-byte '/'",
               "[{\"symbol\":\"A\xf0\x80\x80\xaf\",\"price\":1}]"),
    BAD_SYMBOL("symbol with a surrogate",
               "[{\"symbol\":\"A\xed\xa0\x80\",\"price\":1}]"),
    BAD_SYMBOL("symbol beyond U+10FFFF",
               "[{\"symbol\":\"A\xf4\x90\x80\x80\",\"price\":1}]"),
    BAD_SYMBOL("symbol with a 5-byte sequence",
               "[{\"symbol\":\"A\xf8\x88\x80\x80\x80\",\"price\":1}]"),

    /* "MSFT\u0000X" must not become "MSFT"; a raw NUL neither */

    { "a NUL escape does not cut a symbol short",
      BODY("[{\"symbol\":\"MSFT\\u0000X\",\"price\":1},"
           "{\"symbol\":\"SAP\",\"price\":2}]"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 1,
      { .total = 2, .bad_symbol = 1 }, { "SAP" } },

    BAD_SYMBOL("a raw NUL does not cut a symbol short",
               "[{\"symbol\":\"MSFT\0X\",\"price\":1}]"),

    /* JSON "A\\u0000" is the 7 bytes A\u0000: a backslash, no NUL */

    { "an escaped backslash before u0000 is no NUL escape",
      BODY("[{\"symbol\":\"A\\\\u0000\",\"price\":1}]"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 1,
      { .total = 1 }, { "A\\u0000" } },

    /* JSON "A\\\u0000": an escaped backslash, then a real NUL escape */

    BAD_SYMBOL("an escaped backslash, then a NUL escape",
               "[{\"symbol\":\"A\\\\\\u0000\",\"price\":1}]"),

    /* 32 bytes kept; 32 bytes of 2-byte characters kept */

    { "symbols of up to 32 bytes",
      BODY("[{\"symbol\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\",\"price\":1},"
           "{\"symbol\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
           "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
           "\xc3\xa9\xc3\xa9\",\"price\":2},"
           "{\"symbol\":\"\xf0\x9f\x93\x88\",\"price\":3},"
           "{\"symbol\":\"BRK.B\",\"price\":4},"
           "{\"symbol\":\"A\",\"price\":5}]"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 5,
      { .total = 5 },
      { "A", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "BRK.B",
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
        "\xf0\x9f\x93\x88" } },

    /* 33 bytes: 16 two-byte characters and one more byte */

    BAD_SYMBOL("symbol of 16 two-byte characters and one more byte",
               "[{\"symbol\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9X\",\"price\":2}]"),

    /* elements that are no objects are skipped, nested records too */

    { "elements that are not objects",
      BODY("[1,\"x\",null,true,[],[{\"symbol\":\"IN\",\"price\":1}],"
           "{\"symbol\":\"OK\",\"price\":1}]"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 1,
      { .total = 7, .not_object = 6 }, { "OK" } },

    /* an object is records keyed by symbol: here two that are no objects */

    { "top level an object is read as keyed records",
      BODY("{\"symbol\":\"A\",\"price\":1}"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 0,
      { .total = 2, .not_object = 2 }, { NULL } },
    { "top level an empty object",
      BODY("{}"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 0,
      { .total = 0 }, { NULL } },

    /* JSON, but neither an array nor an object */

    REFUSED("top level a string", NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY,
            "\"[]\""),
    REFUSED("top level a number", NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY, "42"),
    REFUSED("top level null", NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY, "null"),
    REFUSED("top level true", NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY, "true"),

    /* no JSON at all */

    REFUSED("an empty body", NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON, ""),
    REFUSED("a blank", NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON, " "),
    REFUSED("words", NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON, "not json"),
    REFUSED("an array opened only", NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON, "["),
    REFUSED("cut inside a name", NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON,
            "[{\"symbol\":\"A\",\"pri"),
    REFUSED("the array not closed", NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON,
            "[{\"symbol\":\"A\",\"price\":1}"),
    REFUSED("a trailing comma and a byte", NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON,
            "[{\"symbol\":\"A\",\"price\":1},]x"),
    REFUSED("garbage after the array", NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON,
            "[{\"symbol\":\"A\",\"price\":1}]garbage"),
    REFUSED("a second array after the array",
            NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON,
            "[{\"symbol\":\"A\",\"price\":1}][]"),
    REFUSED("a trailing comma", NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON, "[1,]"),
    REFUSED("a bad escape", NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON, "[\"\\x\"]"),
    REFUSED("an HTML error page", NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON,
            "<html>502 Bad Gateway</html>"),

    /* good bodies of nothing or little */

    { "white space around the array",
      BODY(" \r\n\t[{\"symbol\":\"A\",\"price\":1}]\r\n \t"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 1, { .total = 1 }, { "A" } },

    { "an empty array", BODY("[]"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 0, { .total = 0 }, { NULL } },

    { "nothing valid is OK and empty",
      BODY("[{\"symbol\":\"\",\"price\":1},{\"symbol\":\"A\"}]"),
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 0,
      { .total = 2, .bad_symbol = 1, .bad_price = 1 }, { NULL } },

    /* symbols=: a filter of one; and no filter, everything */

    { "a filter of one", filter_body, sizeof(filter_body) - 1,
      &filter_sap, 1, NGX_HTTP_STOCKPRICE_PARSE_OK, 1,
      { .total = 6, .filtered = 4, .duplicate = 1 }, { "SAP" } },

    { "no filter", filter_body, sizeof(filter_body) - 1,
      NULL, 0, NGX_HTTP_STOCKPRICE_PARSE_OK, 5,
      { .total = 6, .duplicate = 1 },
      { "AAP", "IBM", "MSFT", "SAP", "SAPX" } },
};


#undef BAD_PRICE
#undef BAD_SYMBOL
#undef REFUSED
#undef BODY


#define CASE_COUNT(field, want)                                               \
    if (st.field != (want)) {                                                 \
        print_error("case \"%s\": " #field " is %zu, expected %zu\n",         \
                    c->name, st.field, (size_t) (want));                      \
        bad = 1;                                                              \
    }


/* one case: 0 if it gives all it should, else 1, each mismatch reported */

static int
body_case_check(const body_case_t *c)
{
    int                                 rc, bad;
    char                               *buf;
    size_t                              i, n, len;
    ngx_http_stockprice_record_t       *recs;
    ngx_http_stockprice_parse_stats_t   st;

    /* an exact-size copy: ASan sees any overread */

    buf = malloc(c->len ? c->len : 1);
    assert_non_null(buf);
    memcpy(buf, c->body, c->len);

    memset(&st, 0xff, sizeof(st));
    recs = (void *) 1;
    n = 12345;

    rc = ngx_http_stockprice_parse_prices(buf, c->len, c->filter, c->nfilter,
                                          &recs, &n, &st);
    free(buf);

    bad = 0;

    if (rc != c->rc) {
        print_error("case \"%s\": rc is %d, expected %d\n", c->name, rc,
                    c->rc);
        bad = 1;
    }

    if (n != c->n) {
        print_error("case \"%s\": %zu records, expected %zu\n", c->name, n,
                    c->n);
        bad = 1;
    }

    if (n == 0 ? recs != NULL : recs == NULL) {
        print_error("case \"%s\": records %p for %zu records\n", c->name,
                    (void *) recs, n);
        recs = NULL;
        bad = 1;
    }

    CASE_COUNT(total, c->st.total);
    CASE_COUNT(accepted, c->n);
    CASE_COUNT(bad_symbol, c->st.bad_symbol);
    CASE_COUNT(bad_price, c->st.bad_price);
    CASE_COUNT(not_object, c->st.not_object);
    CASE_COUNT(filtered, c->st.filtered);
    CASE_COUNT(duplicate, c->st.duplicate);
    CASE_COUNT(bad_time, c->st.bad_time);
    CASE_COUNT(bad_id, c->st.bad_id);

    for (i = 0; c->symbols[i] && !bad; i++) {
        len = strlen(c->symbols[i]);

        if (i >= n || recs[i].symbol_len != len
            || memcmp(recs[i].symbol, c->symbols[i], len) != 0)
        {
            print_error("case \"%s\": record %zu is not \"%s\"\n", c->name, i,
                        c->symbols[i]);
            bad = 1;
        }
    }

    if (c->symbols[0] && i != n && !bad) {
        print_error("case \"%s\": %zu symbols listed for %zu records\n",
                    c->name, i, n);
        bad = 1;
    }

    free(recs);

    return bad;
}


#undef CASE_COUNT


static void
test_body_cases(void **state)
{
    size_t  i, failed;

    (void) state;

    failed = 0;

    for (i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
        failed += body_case_check(&body_cases[i]);
    }

    assert_int_equal(failed, 0);
}


/* the buffer is patched in place, as documented: see also body_cases */

static void
test_nul_escape_patched_in_place(void **state)
{
    char                                buf[] = "[{\"symbol\":\"MSFT\\u0000X\","
                                                "\"price\":1}]";
    size_t                              n;
    ngx_http_stockprice_record_t       *recs;
    ngx_http_stockprice_parse_stats_t   st;

    (void) state;

    assert_int_equal(ngx_http_stockprice_parse_prices(buf, strlen(buf), NULL,
                                                      0, &recs, &n, &st),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(n, 0);
    assert_non_null(strstr(buf, "MSFT\\u0001X"));
}


static void
test_symbol_valid(void **state)
{
    (void) state;

    assert_true(ngx_http_stockprice_parse_symbol_valid("MSFT", 4));
    assert_true(ngx_http_stockprice_parse_symbol_valid("\xe2\x82\xac", 3));
    assert_true(ngx_http_stockprice_parse_symbol_valid("\xf4\x8f\xbf\xbf", 4));
    assert_false(ngx_http_stockprice_parse_symbol_valid("", 0));
    assert_false(ngx_http_stockprice_parse_symbol_valid("A\0B", 3));
    assert_false(ngx_http_stockprice_parse_symbol_valid("A\x7f", 2));
    assert_false(ngx_http_stockprice_parse_symbol_valid("\xe2\x82\xac", 2));
    assert_false(ngx_http_stockprice_parse_symbol_valid("\xef\xbf", 2));
    assert_false(ngx_http_stockprice_parse_symbol_valid("\xed\xbf\xbf", 3));
    assert_false(ngx_http_stockprice_parse_symbol_valid(
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", 33));
}


static void
test_duplicates_last_wins(void **state)
{
    result_t                             r;
    const ngx_http_stockprice_record_t  *rec;

    (void) state;

    r = parse("[{\"symbol\":\"A\",\"price\":1,"
              "\"valueDateTime\":\"2024-05-01T10:00:00Z\"},"
              "{\"symbol\":\"B\",\"price\":2},"
              "{\"symbol\":\"A\",\"price\":3},"
              "{\"symbol\":\"A\",\"price\":\"x\"},"
              "{\"symbol\":\"A\",\"price\":4,"
              "\"id\":\"ffc2f36f-dd0c-4782-bb3f-2c931846f2a3\"},"
              "{\"symbol\":\"C\",\"price\":5},"
              "{\"symbol\":\"C\",\"price\":6}]");

    assert_int_equal(r.n, 3);
    assert_int_equal(r.st.total, 7);
    assert_int_equal(r.st.duplicate, 3);
    assert_int_equal(r.st.bad_price, 1);

    rec = find(&r, "A");
    assert_non_null(rec);
    assert_true(rec->price == 4);
    assert_true(rec->has_id);
    assert_int_equal(rec->value_time_len, 0);

    rec = find(&r, "B");
    assert_non_null(rec);
    assert_true(rec->price == 2);

    rec = find(&r, "C");
    assert_non_null(rec);
    assert_true(rec->price == 6);

    done(&r);
}


static void
test_filter(void **state)
{
    result_t  r;

    static const ngx_http_stockprice_str_t  filter[] = {
        { "AAPL", 4 }, { "MSFT", 4 }, { "SAP", 3 }, { "ZZZ", 3 }
    };

    (void) state;

    /* a filter of one and no filter: see body_cases */

    r = parse_len(filter_body, sizeof(filter_body) - 1, filter, 4);

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.st.total, 6);
    assert_int_equal(r.st.filtered, 3);
    assert_int_equal(r.st.duplicate, 1);
    assert_memory_equal(r.recs[0].symbol, "MSFT", 4);
    assert_memory_equal(r.recs[1].symbol, "SAP", 3);
    assert_int_equal(r.recs[1].symbol_len, 3);
    assert_true(r.recs[1].price == 5);

    done(&r);
}


static void
test_sort_is_byte_order(void **state)
{
    result_t  r;

    (void) state;

    r = parse("[{\"symbol\":\"a\",\"price\":1},"
              "{\"symbol\":\"MSFT\",\"price\":1},"
              "{\"symbol\":\"\xc3\xa9\",\"price\":1},"
              "{\"symbol\":\"AAPLX\",\"price\":1},"
              "{\"symbol\":\"AAPL\",\"price\":1},"
              "{\"symbol\":\"Z\",\"price\":1}]");

    assert_int_equal(r.n, 6);
    assert_int_equal(r.recs[0].symbol_len, 4);
    assert_memory_equal(r.recs[0].symbol, "AAPL", 4);
    assert_int_equal(r.recs[1].symbol_len, 5);
    assert_memory_equal(r.recs[1].symbol, "AAPLX", 5);
    assert_memory_equal(r.recs[2].symbol, "MSFT", 4);
    assert_memory_equal(r.recs[3].symbol, "Z", 1);
    assert_memory_equal(r.recs[4].symbol, "a", 1);
    assert_memory_equal(r.recs[5].symbol, "\xc3\xa9", 2);

    done(&r);
}


static void
test_symbol_cmp(void **state)
{
    (void) state;

    assert_true(symbol_cmp("AAPL", 4, "AAPLX", 5) < 0);
    assert_true(symbol_cmp("AAPLX", 5, "AAPL", 4) > 0);
    assert_true(symbol_cmp("AAPLX", 5, "MSFT", 4) < 0);
    assert_true(symbol_cmp("Z", 1, "a", 1) < 0);
    assert_true(symbol_cmp("z", 1, "\xc3\xa9", 2) < 0);
    assert_int_equal(symbol_cmp("SAP", 3, "SAP", 3), 0);

    /* only "len" bytes count */
    assert_int_equal(symbol_cmp("SAPX", 3, "SAPY", 3), 0);
}


static void
test_ids(void **state)
{
    result_t  r;

    (void) state;

    r = parse("[{\"symbol\":\"A\",\"price\":1,"
              "\"id\":\"ffc2f36f-dd0c-4782-bb3f-2c931846f2a3\"},"
              "{\"symbol\":\"B\",\"price\":1,"
              "\"id\":\"FFC2F36F-DD0C-4782-BB3F-2C931846F2A3\"},"
              "{\"symbol\":\"C\",\"price\":1,\"id\":\"nope\"},"
              "{\"symbol\":\"D\",\"price\":1,\"id\":42},"
              "{\"symbol\":\"E\",\"price\":1,\"id\":null},"
              "{\"symbol\":\"F\",\"price\":1,"
              "\"id\":\"ffc2f36f-dd0c-4782-bb3f-2c931846f2a3x\"},"
              "{\"symbol\":\"G\",\"price\":1}]");

    assert_int_equal(r.n, 7);
    assert_int_equal(r.st.bad_id, 4);

    assert_true(r.recs[0].has_id);
    assert_memory_equal(r.recs[0].id, "ffc2f36f-dd0c-4782-bb3f-2c931846f2a3",
                        36);
    assert_true(r.recs[1].has_id);
    assert_memory_equal(r.recs[1].id, "FFC2F36F-DD0C-4782-BB3F-2C931846F2A3",
                        36);
    assert_false(r.recs[2].has_id);
    assert_false(r.recs[3].has_id);
    assert_false(r.recs[4].has_id);
    assert_false(r.recs[5].has_id);
    assert_false(r.recs[6].has_id);

    done(&r);
}


static void
test_value_times(void **state)
{
    result_t  r;

    (void) state;

    r = parse("[{\"symbol\":\"A\",\"price\":1,"
              "\"valueDateTime\":\"2024-05-01T10:53:37.2982063Z\"},"
              "{\"symbol\":\"B\",\"price\":1,"
              "\"valueDateTime\":\"2024-05-01T10:53:37+02:00\"},"
              "{\"symbol\":\"C\",\"price\":1,"
              "\"valueDateTime\":\"2024-05-01T10:53:37.1234567890123456789Z\"},"
              "{\"symbol\":\"D\",\"price\":1,\"valueDateTime\":\"yesterday\"},"
              "{\"symbol\":\"E\",\"price\":1,\"valueDateTime\":12},"
              "{\"symbol\":\"F\",\"price\":1,\"valueDateTime\":null},"
              "{\"symbol\":\"G\",\"price\":1,"
              "\"valueDateTime\":"
              "\"2024-05-01T10:53:37.12345678901234567890Z\"},"
              "{\"symbol\":\"H\",\"price\":1}]");

    assert_int_equal(r.n, 8);
    assert_int_equal(r.st.bad_time, 4);

    assert_int_equal(r.recs[0].value_time_len, 28);
    assert_memory_equal(r.recs[0].value_time, "2024-05-01T10:53:37.2982063Z",
                        28);
    assert_int_equal(r.recs[1].value_time_len, 25);
    assert_memory_equal(r.recs[1].value_time, "2024-05-01T10:53:37+02:00",
                        25);

    /* 40 bytes is the most kept */
    assert_int_equal(r.recs[2].value_time_len, 40);
    assert_memory_equal(r.recs[2].value_time,
                        "2024-05-01T10:53:37.1234567890123456789Z", 40);

    assert_int_equal(r.recs[3].value_time_len, 0);
    assert_int_equal(r.recs[4].value_time_len, 0);
    assert_int_equal(r.recs[5].value_time_len, 0);
    assert_int_equal(r.recs[6].value_time_len, 0);
    assert_int_equal(r.recs[7].value_time_len, 0);

    done(&r);
}


static void
test_unknown_fields_ignored(void **state)
{
    result_t  r;

    (void) state;

    r = parse("[{\"currency\":\"USD\",\"symbol\":\"MSFT\",\"volume\":12,"
              "\"price\":14.7,\"extra\":{\"symbol\":\"X\",\"price\":[]},"
              "\"list\":[1,2,{\"a\":null}],\"flag\":true}]");

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.recs[0].symbol_len, 4);
    assert_memory_equal(r.recs[0].symbol, "MSFT", 4);
    assert_true(r.recs[0].price == 14.7);

    done(&r);
}


/* a field given twice: the first counts; names are case-sensitive */

static void
test_repeated_field_first_wins(void **state)
{
    result_t  r;

    (void) state;

    r = parse("[{\"symbol\":\"MSFT\",\"price\":14.7,\"price\":1,"
              "\"Symbol\":\"X\",\"symbol\":\"AAPL\",\"sym\":\"Y\","
              "\"valueDateTime\":\"2024-05-01T10:53:37Z\","
              "\"valueDateTime\":\"bad\",\"ids\":1,\"id\":"
              "\"ffc2f36f-dd0c-4782-bb3f-2c931846f2a3\",\"id\":2}]");

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.recs[0].symbol_len, 4);
    assert_memory_equal(r.recs[0].symbol, "MSFT", 4);
    assert_true(r.recs[0].price == 14.7);
    assert_int_equal(r.recs[0].value_time_len, 20);
    assert_memory_equal(r.recs[0].value_time, "2024-05-01T10:53:37Z", 20);
    assert_true(r.recs[0].has_id);
    assert_memory_equal(r.recs[0].id, "ffc2f36f-dd0c-4782-bb3f-2c931846f2a3",
                        36);
    assert_int_equal(r.st.bad_time, 0);
    assert_int_equal(r.st.bad_id, 0);

    done(&r);
}


/* tiered fan-out: what one nginx serves, another one can poll */

static void
test_own_output_parses_back(void **state)
{
    char                          *body;
    size_t                         i, n, len;
    result_t                       r;
    const char                    *mtime;
    ngx_http_stockprice_record_t   in[3];

    (void) state;

    mtime = "2024-05-01T10:53:36.791231Z";
    memset(in, 0, sizeof(in));

    memcpy(in[0].symbol, "A\"B\\C", 5);
    in[0].symbol_len = 5;
    in[0].price = 0.1 + 0.2;
    memcpy(in[0].id, "ffc2f36f-dd0c-4782-bb3f-2c931846f2a3", 36);
    in[0].has_id = 1;

    memcpy(in[1].symbol, "MSFT", 4);
    in[1].symbol_len = 4;
    in[1].price = 14.7052516685914;
    memcpy(in[1].id, "00000000-0000-4000-8000-000000000000", 36);
    in[1].has_id = 1;
    memcpy(in[1].value_time, "2024-05-01T10:53:37.2982063Z", 28);
    in[1].value_time_len = 28;

    memcpy(in[2].symbol, "\xc3\xa9t\xc3\xa9", 5);
    in[2].symbol_len = 5;
    in[2].price = -1e-300;
    memcpy(in[2].id, "0123abcd-0000-4000-8000-00000000cafe", 36);
    in[2].has_id = 1;

    len = 2;

    for (i = 0; i < 3; i++) {
        len += ngx_http_stockprice_render_record(NULL, &in[i], mtime,
                                                 strlen(mtime)) + 1;
    }

    body = malloc(len);
    assert_non_null(body);

    n = 0;
    body[n++] = '[';

    for (i = 0; i < 3; i++) {
        if (i) {
            body[n++] = ',';
        }

        n += ngx_http_stockprice_render_record(body + n, &in[i], mtime,
                                               strlen(mtime));
    }

    body[n++] = ']';
    assert_true(n <= len);

    r = parse_len(body, n, NULL, 0);
    free(body);

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.st.bad_time + r.st.bad_id + r.st.bad_symbol, 0);

    for (i = 0; i < 3; i++) {
        assert_int_equal(r.recs[i].symbol_len, in[i].symbol_len);
        assert_memory_equal(r.recs[i].symbol, in[i].symbol, in[i].symbol_len);
        assert_true(r.recs[i].price == in[i].price);
        assert_true(r.recs[i].has_id);
        assert_memory_equal(r.recs[i].id, in[i].id, 36);
    }

    /* valueDateTime was the measurement time when there was none */

    assert_int_equal(r.recs[0].value_time_len, strlen(mtime));
    assert_memory_equal(r.recs[0].value_time, mtime, strlen(mtime));
    assert_int_equal(r.recs[1].value_time_len, 28);
    assert_memory_equal(r.recs[1].value_time, "2024-05-01T10:53:37.2982063Z",
                        28);

    done(&r);
}


static char *
many(size_t n, size_t *len, int same)
{
    char    *buf, *p;
    size_t   i, k;

    buf = malloc(n * 80 + 2);
    assert_non_null(buf);

    p = buf;
    *p++ = '[';

    for (i = 0; i < n; i++) {
        /* a permutation of 0..n-1, so the body is not sorted already */
        k = (i * 7919) % n;

        p += sprintf(p, "%s{\"symbol\":\"S%05zu\",\"price\":%zu.25,"
                     "\"valueDateTime\":\"2024-05-01T10:53:37Z\"}",
                     i ? "," : "", same ? (size_t) 1 : k, i);
    }

    *p++ = ']';
    *len = p - buf;

    return buf;
}


static void
test_many_records(void **state)
{
    char      *buf, name[8];
    size_t     i, n, len;
    clock_t    start;
    result_t   r;

    (void) state;

    n = 5000;
    buf = many(n, &len, 0);

    start = clock();
    r = parse_len(buf, len, NULL, 0);

    /* generous, also under sanitizers: it takes a few ms */
    assert_true(clock() - start < 2 * CLOCKS_PER_SEC);

    free(buf);

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, n);
    assert_int_equal(r.st.total, n);
    assert_int_equal(r.st.duplicate, 0);

    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "S%05zu", i);
        assert_int_equal(r.recs[i].symbol_len, 6);
        assert_memory_equal(r.recs[i].symbol, name, 6);
    }

    done(&r);
}


static void
test_many_duplicates_last_wins(void **state)
{
    char      *buf;
    size_t     n, len;
    result_t   r;

    (void) state;

    n = 5000;
    buf = many(n, &len, 1);

    r = parse_len(buf, len, NULL, 0);
    free(buf);

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.st.duplicate, n - 1);
    assert_true(r.recs[0].price == 4999.25);

    done(&r);
}


static int
token(const char *s, size_t len, char **tok, size_t *tlen, long *exp)
{
    int    rc;
    char  *buf;

    buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, s, len);

    rc = ngx_http_stockprice_parse_token(buf, len, tok, tlen, exp);
    free(buf);

    if (rc != NGX_HTTP_STOCKPRICE_PARSE_OK) {
        assert_null(*tok);
        assert_int_equal(*tlen, 0);
    }

    return rc;
}


#define TOKEN(s)  token(s, strlen(s), &tok, &len, &exp)


static void
test_token_good(void **state)
{
    char    *tok;
    long     exp;
    size_t   len;

    (void) state;

    assert_int_equal(TOKEN("{\"token\":\"abc.def\",\"expiresIn\":3600}"),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(tok, "abc.def", 7);
    assert_int_equal(exp, 3600);
    free(tok);

    assert_int_equal(TOKEN(" {\"expiresIn\":60,\"type\":\"Bearer\","
                           "\"token\":\"eyJ~+/=\"} \n"),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(tok, "eyJ~+/=", 7);
    assert_int_equal(exp, 60);
    free(tok);
}


static void
test_token_expires_in(void **state)
{
    char    *tok;
    long     exp;
    size_t   i, len;
    char     buf[128];

    static const struct {
        const char  *value;
        long         expect;
    } cases[] = {
        { "3600", 3600 },
        { "3600.9", 3600 },
        { "1", 1 },
        { "0", -1 },
        { "0.5", -1 },
        { "-5", -1 },
        { "1e300", 315360000 },
        { "1e999", -1 },
        { "\"60\"", 60 },
        { "\"3600\"", 3600 },
        { "\"0\"", -1 },
        { "\"soon\"", -1 },
        { "\"1e999\"", -1 },
        { "null", -1 },
        { "true", -1 },
        { "[60]", -1 },
    };

    (void) state;

    assert_int_equal(TOKEN("{\"token\":\"abc\"}"),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(exp, -1);
    free(tok);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(buf, sizeof(buf), "{\"token\":\"abc\",\"expiresIn\":%s}",
                 cases[i].value);

        assert_int_equal(TOKEN(buf), NGX_HTTP_STOCKPRICE_PARSE_OK);
        assert_int_equal(exp, cases[i].expect);
        free(tok);
    }
}


/* OAuth2: access_token, a bearer token_type (any case), expires_in */

static void
test_oauth_token(void **state)
{
    int      rc;
    char    *tok;
    long     exp;
    size_t   i, len;

    static const struct {
        const char  *body;
        int          ok;
        long         expires_in;
    } cases[] = {
        { "{\"access_token\":\"abc\",\"token_type\":\"Bearer\","
          "\"expires_in\":3600}", 1, 3600 },
        { "{\"access_token\":\"abc\",\"token_type\":\"bearer\"}", 1, -1 },
        { "{\"access_token\":\"abc\",\"token_type\":\"BEARER\","
          "\"expires_in\":\"60\"}", 1, 60 },
        { "{\"access_token\":\"abc\"}", 1, -1 },
        { "{\"access_token\":\"abc\",\"token_type\":\"mac\"}", 0, 0 },
        { "{\"access_token\":\"abc\",\"token_type\":\"\"}", 0, 0 },
        { "{\"access_token\":\"abc\",\"token_type\":1}", 0, 0 },
        { "{\"token\":\"abc\",\"token_type\":\"Bearer\"}", 0, 0 },
        { "{\"access_token\":\"a b\",\"token_type\":\"Bearer\"}", 0, 0 },
        { "{\"access_token\":\"abc\",\"expiresIn\":60}", 1, -1 },
    };

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tok = NULL;
        rc = ngx_http_stockprice_parse_oauth_token(cases[i].body,
                                                   strlen(cases[i].body),
                                                   &tok, &len, &exp);

        if (!cases[i].ok) {
            assert_int_equal(rc, NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN);
            assert_null(tok);
            continue;
        }

        assert_int_equal(rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
        assert_int_equal(len, 3);
        assert_memory_equal(tok, "abc", 3);
        assert_int_equal(exp, cases[i].expires_in);
        free(tok);
    }

    /* and the login's names are not OAuth2's */

    assert_int_equal(TOKEN("{\"access_token\":\"abc\"}"),
                     NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN);
}


static void
test_token_bad(void **state)
{
    char    *tok;
    long     exp;
    size_t   i, len;

    static const char   nul[] = "{\"token\":\"abc\0def\"}";
    static const char  *bad[] = {
        "{\"token\":\"\"}",
        "{\"token\":\"a b\"}",
        "{\"token\":\"a\\r\\nX-Evil: 1\"}",
        "{\"token\":\"abc\\u0000def\"}",
        "{\"token\":\"\\u0000\"}",
        "{\"token\":\"abc\\u007f\"}",
        "{\"token\":\"caf\xc3\xa9\"}",
        "{\"token\":12}",
        "{\"token\":null}",
        "{\"token\":[\"abc\"]}",
        "{\"Token\":\"abc\"}",
        "{}",
    };

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(TOKEN(bad[i]), NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN);
    }

    assert_int_equal(token(nul, sizeof(nul) - 1, &tok, &len, &exp),
                     NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN);

    assert_int_equal(TOKEN("[\"token\"]"),
                     NGX_HTTP_STOCKPRICE_PARSE_NOT_OBJECT);
    assert_int_equal(TOKEN("\"token\""),
                     NGX_HTTP_STOCKPRICE_PARSE_NOT_OBJECT);
    assert_int_equal(TOKEN("{\"token\":"), NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON);
    assert_int_equal(TOKEN("{\"token\":\"a\"}x"),
                     NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON);
    assert_int_equal(TOKEN(""), NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON);
}


static void
test_token_length_limit(void **state)
{
    char    *tok, *big;
    long     exp;
    size_t   len, n;

    (void) state;

    /* {"token":"aaa…"} with exactly TOKEN_MAX, then one more */

    n = 10 + NGX_HTTP_STOCKPRICE_TOKEN_MAX + 1 + 2;
    big = malloc(n + 1);
    assert_non_null(big);

    memcpy(big, "{\"token\":\"", 10);
    memset(big + 10, 'a', NGX_HTTP_STOCKPRICE_TOKEN_MAX);
    memcpy(big + 10 + NGX_HTTP_STOCKPRICE_TOKEN_MAX, "\"}", 3);

    assert_int_equal(TOKEN(big), NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(len, NGX_HTTP_STOCKPRICE_TOKEN_MAX);
    free(tok);

    memset(big + 10, 'a', NGX_HTTP_STOCKPRICE_TOKEN_MAX + 1);
    memcpy(big + 10 + NGX_HTTP_STOCKPRICE_TOKEN_MAX + 1, "\"}", 3);

    assert_int_equal(TOKEN(big), NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN);

    free(big);
}


#undef TOKEN


#define CRED(s)  ngx_http_stockprice_parse_credentials(s, strlen(s), &u, &p)


static void
test_credentials(void **state)
{
    ngx_http_stockprice_str_t  u, p;

    (void) state;

    assert_int_equal(CRED("alice:secret\n"), 0);
    assert_int_equal(u.len, 5);
    assert_memory_equal(u.data, "alice", 5);
    assert_int_equal(p.len, 6);
    assert_memory_equal(p.data, "secret", 6);

    /* no newline at all */
    assert_int_equal(CRED("alice:secret"), 0);
    assert_int_equal(p.len, 6);
    assert_memory_equal(p.data, "secret", 6);

    /* \r\n, and only the first line counts */
    assert_int_equal(CRED("alice:pw\r\nbob:other\n"), 0);
    assert_int_equal(u.len, 5);
    assert_int_equal(p.len, 2);
    assert_memory_equal(p.data, "pw", 2);

    /* the password holds every ':' after the first */
    assert_int_equal(CRED("alice:pa:ss\n"), 0);
    assert_int_equal(u.len, 5);
    assert_int_equal(p.len, 5);
    assert_memory_equal(p.data, "pa:ss", 5);

    /* an empty password is allowed */
    assert_int_equal(CRED("alice:\n"), 0);
    assert_int_equal(u.len, 5);
    assert_int_equal(p.len, 0);

    /* blanks are kept: the file is the truth */
    assert_int_equal(CRED(" al ice : pw \n"), 0);
    assert_int_equal(u.len, 8);
    assert_memory_equal(u.data, " al ice ", 8);
    assert_int_equal(p.len, 4);
    assert_memory_equal(p.data, " pw ", 4);

    /* a byte-order mark is not part of the name; UTF-8 names are fine */
    assert_int_equal(CRED("\xef\xbb\xbf" "alice:pw\n"), 0);
    assert_int_equal(u.len, 5);
    assert_memory_equal(u.data, "alice", 5);
    assert_int_equal(CRED("j\xc3\xb6rg:p\xe2\x82\xac\n"), 0);
    assert_int_equal(u.len, 5);
    assert_int_equal(p.len, 4);
}


static void
test_credentials_bad(void **state)
{
    ngx_http_stockprice_str_t  u, p;

    (void) state;

    assert_int_equal(CRED("alice\n"), -1);
    assert_int_equal(CRED("alice\nbob:x\n"), -1);
    assert_int_equal(CRED(":secret\n"), -1);
    assert_int_equal(CRED("\nalice:secret\n"), -1);
    assert_int_equal(CRED("\r\n"), -1);
    assert_int_equal(CRED(""), -1);
    assert_int_equal(ngx_http_stockprice_parse_credentials("a:b", 0, &u, &p),
                     -1);
    assert_int_equal(CRED("\xef\xbb\xbf"), -1);

    /* not UTF-8: Latin-1, a stray byte, a character cut short */
    assert_int_equal(CRED("caf\xe9:pw\n"), -2);
    assert_int_equal(CRED("alice:p\xffw\n"), -2);
    assert_int_equal(CRED("alice:\xe2\x82\n"), -2);

    /* only the first line counts */
    assert_int_equal(CRED("alice:pw\n\xff\n"), 0);
}


#undef CRED


#define CHECK(s)                                                              \
    ngx_http_stockprice_parse_check_credentials(s, strlen(s), &u, &p)


static void
test_check_credentials(void **state)
{
    ngx_http_stockprice_str_t  u = { "demo", 4 }, p = { "s\"x", 3 };
    ngx_http_stockprice_str_t  e = { "", 0 }, ue = { "\xc3\xa9", 2 };

    static const char  nul[] = "{\"username\":\"demo\0x\","
                               "\"password\":\"s\\\"x\"}";

    (void) state;

    assert_true(CHECK("{\"username\":\"demo\",\"password\":\"s\\\"x\"}"));
    assert_true(CHECK(" {\"password\":\"s\\\"x\",\"username\":\"demo\"}\n"));
    assert_true(CHECK("{\"username\":\"d\\u0065mo\",\"password\":\"s\\\"x\"}"));

    assert_false(CHECK("{\"username\":\"demo\",\"password\":\"s\"}"));
    assert_false(CHECK("{\"username\":\"demo\",\"password\":\"s\\\"xy\"}"));
    assert_false(CHECK("{\"username\":\"dem\",\"password\":\"s\\\"x\"}"));
    assert_false(CHECK("{\"username\":\"Demo\",\"password\":\"s\\\"x\"}"));
    assert_false(CHECK("{\"username\":\"demo\\u0000x\","
                       "\"password\":\"s\\\"x\"}"));
    assert_false(CHECK("{\"username\":\"demo\","
                       "\"password\":\"s\\\"x\\u0000\"}"));
    assert_false(CHECK("{\"Username\":\"demo\",\"password\":\"s\\\"x\"}"));
    assert_false(CHECK("{\"username\":\"demo\",\"password\":null}"));
    assert_false(CHECK("{\"username\":\"demo\"}"));
    assert_false(CHECK("[{\"username\":\"demo\",\"password\":\"s\\\"x\"}]"));
    assert_false(CHECK("{\"username\":\"demo\",\"password\":\"s\\\"x\"}x"));
    assert_false(CHECK("not json"));
    assert_false(CHECK(""));

    /* a raw NUL cannot cut the username short either */
    assert_false(ngx_http_stockprice_parse_check_credentials(nul,
                                                             sizeof(nul) - 1,
                                                             &u, &p));

    /* an empty password, a non-ASCII username */
    u = ue;
    p = e;
    assert_true(CHECK("{\"username\":\"\\u00e9\",\"password\":\"\"}"));
    assert_true(CHECK("{\"username\":\"\xc3\xa9\",\"password\":\"\"}"));
    assert_false(CHECK("{\"username\":\"\\u00e9\",\"password\":\" \"}"));
}


#undef CHECK


/*
 * Large bodies, written into a buffer of BODY_ROOM bytes: [1,1,...] of
 * TINY_N elements, 200 KB for as many cJSON nodes; RECORDS_N records; one
 * record.
 */

#define TINY_N     100001
#define RECORDS_N  20000
#define BODY_ROOM  (64 * RECORDS_N + 16)


static size_t
body_tiny(char *buf)
{
    char    *p;
    size_t   i;

    p = buf;
    *p++ = '[';

    for (i = 0; i < TINY_N - 1; i++) {
        *p++ = '1';
        *p++ = ',';
    }

    *p++ = '1';
    *p++ = ']';

    return p - buf;
}


static size_t
body_records(char *buf)
{
    char    *p;
    size_t   i;

    p = buf;
    *p++ = '[';

    for (i = 0; i < RECORDS_N; i++) {
        p += sprintf(p, "%s{\"symbol\":\"S%05zu\",\"price\":%zu.25}",
                     i ? "," : "", i, i);
    }

    *p++ = ']';

    return p - buf;
}


static size_t
body_small(char *buf)
{
    strcpy(buf, "[{\"symbol\":\"MSFT\",\"price\":14.7}]");

    return strlen(buf);
}


static void
parse_tiny(char *buf)
{
    size_t                              n;
    ngx_http_stockprice_record_t       *recs;
    ngx_http_stockprice_parse_stats_t   st;

    assert_int_equal(ngx_http_stockprice_parse_prices(buf, body_tiny(buf),
                                                      NULL, 0, &recs, &n,
                                                      &st),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(n, 0);
    assert_null(recs);
    assert_int_equal(st.total, TINY_N);
    assert_int_equal(st.not_object, TINY_N);
}


static void
parse_records(char *buf)
{
    size_t                              n;
    ngx_http_stockprice_record_t       *recs;
    ngx_http_stockprice_parse_stats_t   st;

    assert_int_equal(ngx_http_stockprice_parse_prices(buf, body_records(buf),
                                                      NULL, 0, &recs, &n,
                                                      &st),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(n, RECORDS_N);
    assert_int_equal(st.total, RECORDS_N);
    assert_string_equal(recs[0].symbol, "S00000");
    assert_true(recs[0].price == 0.25);
    assert_string_equal(recs[RECORDS_N - 1].symbol, "S19999");
    assert_true(recs[RECORDS_N - 1].price == 19999.25);
    free(recs);
}


static void
parse_small(char *buf)
{
    size_t                              n;
    ngx_http_stockprice_record_t       *recs;
    ngx_http_stockprice_parse_stats_t   st;

    assert_int_equal(ngx_http_stockprice_parse_prices(buf, body_small(buf),
                                                      NULL, 0, &recs, &n,
                                                      &st),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(recs[0].symbol_len, 4);
    assert_memory_equal(recs[0].symbol, "MSFT", 4);
    assert_true(recs[0].price == 14.7);
    free(recs);
}


/*
 * A body of tiny elements, a large one and a small one, three times over:
 * every parse gives what it should whatever came before (with the arena,
 * whatever it kept; under ASan, each of cJSON's nodes watched)
 */

static void
test_large_bodies_in_turn(void **state)
{
    int    round;
    char  *buf;

    (void) state;

    buf = malloc(BODY_ROOM);
    assert_non_null(buf);

    for (round = 0; round < 3; round++) {
        parse_tiny(buf);
        parse_records(buf);
        parse_small(buf);
    }

    free(buf);
}


/*
 * test_parse is linked with --wrap=malloc --wrap=free (see the Makefile):
 * the calls of malloc() and free() in this file and in the parser come
 * here, cJSON's own calls in libcjson do not.  While "watch.on" is set,
 * the blocks that the parser allocates itself are noted: with the arena,
 * its chunks (the records' array is realloc()ed and not seen).
 */

#define WATCH_MAX  64


typedef struct {
    void                               *p;
    size_t                              size;
} watch_block_t;


typedef struct {
    int                                 on;
    int                                 overflow;
    size_t                              mallocs;   /* since watch_reset() */
    size_t                              largest;   /* the largest of those */
    size_t                              nlive;
    watch_block_t                       live[WATCH_MAX];
} watch_t;


static watch_t  watch;


void *__real_malloc(size_t size);
void __real_free(void *p);
void *__wrap_malloc(size_t size);
void __wrap_free(void *p);


void *
__wrap_malloc(size_t size)
{
    void  *p;

    p = __real_malloc(size);

    if (!watch.on || p == NULL) {
        return p;
    }

    watch.mallocs++;

    if (watch.largest < size) {
        watch.largest = size;
    }

    /* no assertion here: it would jump out of the parser */

    if (watch.nlive == WATCH_MAX) {
        watch.overflow = 1;
        return p;
    }

    watch.live[watch.nlive].p = p;
    watch.live[watch.nlive].size = size;
    watch.nlive++;

    return p;
}


void
__wrap_free(void *p)
{
    size_t  i;

    for (i = 0; i < watch.nlive; i++) {
        if (watch.live[i].p == p) {
            watch.live[i] = watch.live[--watch.nlive];
            break;
        }
    }

    __real_free(p);
}


static int
watch_teardown(void **state)
{
    (void) state;

    memset(&watch, 0, sizeof(watch_t));

    return 0;
}


#if (NGX_HTTP_STOCKPRICE_NO_ARENA)

static void
test_arena_grows(void **state)
{
    (void) state;

    print_message("test_arena_grows: the arena is compiled out "
                  "(NGX_HTTP_STOCKPRICE_NO_ARENA), plain \"check\" runs it\n");
    skip();
}

#else

static void
watch_reset(void)
{
    watch.on = 1;
    watch.mallocs = 0;
    watch.largest = 0;
}


/* the blocks noted that are still allocated */

static size_t
watch_live(void)
{
    assert_false(watch.overflow);

    return watch.nlive;
}


/*
 * cJSON's arena, watched through the parser's malloc() calls: a block
 * larger than what is kept between parses is not kept; a body of tiny
 * elements needs far more nodes than its size suggests and gets extra
 * chunks, a few, not one per node; the same body again gets one block,
 * larger than any of those chunks, which is kept and then suffices for it
 * and for smaller bodies; a bigger body after it a bigger block again.
 * Bodies of whole arrays, as parse_prices() parses them: the module's
 * slices are smaller.
 */

#define HUGE_LEN     (5 * 1024 * 1024)
#define ARENA_TINY   10001


static void
arena_parse(char *buf, size_t len, size_t total, size_t records)
{
    size_t                              n;
    ngx_http_stockprice_record_t       *recs;
    ngx_http_stockprice_parse_stats_t   st;

    watch_reset();

    assert_int_equal(ngx_http_stockprice_parse_prices(buf, len, NULL, 0,
                                                      &recs, &n, &st),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(st.total, total);
    assert_int_equal(n, records);
    free(recs);
}


static void
test_arena_grows(void **state)
{
    char    *buf, *huge, *p;
    void    *block;
    size_t   i, tiny, records, small, largest;

    (void) state;

    buf = malloc(BODY_ROOM);
    huge = malloc(HUGE_LEN);
    assert_non_null(buf);
    assert_non_null(huge);

    /*
     * ["xxx..."]: a string of 5 MB, which cJSON copies into the arena (or
     * into a block kept from a test before); the block guessed for it is
     * larger than one kept between parses (16 MB): after the parse the
     * parser holds nothing, and the next body gets a block of its own size
     */

    memset(huge, 'x', HUGE_LEN);
    memcpy(huge, "[\"", 2);
    memcpy(huge + HUGE_LEN - 2, "\"]", 2);

    arena_parse(huge, HUGE_LEN, 1, 0);
    assert_int_equal(watch_live(), 0);

    small = body_small(buf);
    arena_parse(buf, small, 1, 1);

    assert_int_equal(watch.mallocs, 1);
    assert_true(watch.largest < 1024 * 1024);
    assert_int_equal(watch_live(), 1);

    /*
     * [1,1,...]: 10,002 nodes for 20 KB, more than the block guessed from
     * the size holds: extra chunks, a few, not a malloc() per node, freed
     * at the end
     */

    p = buf;
    *p++ = '[';

    for (i = 0; i < ARENA_TINY - 1; i++) {
        *p++ = '1';
        *p++ = ',';
    }

    *p++ = '1';
    *p++ = ']';
    tiny = p - buf;

    arena_parse(buf, tiny, ARENA_TINY, 0);

    assert_in_range(watch.mallocs, 2, 32);
    assert_in_range(watch_live(), 0, 1);

    largest = watch.largest;

    /* the same body again: one block, larger than any chunk before, kept */

    arena_parse(buf, tiny, ARENA_TINY, 0);

    assert_int_equal(watch.mallocs, 1);
    assert_true(watch.largest > largest);
    assert_int_equal(watch_live(), 1);

    block = watch.live[0].p;

    /* and then that block suffices, for it and for a smaller body */

    arena_parse(buf, tiny, ARENA_TINY, 0);

    assert_int_equal(watch.mallocs, 0);

    small = body_small(buf);
    arena_parse(buf, small, 1, 1);

    assert_int_equal(watch.mallocs, 0);
    assert_int_equal(watch_live(), 1);
    assert_ptr_equal(watch.live[0].p, block);

    /*
     * 20,000 records, some 5 MB of nodes: more than that block; the next
     * time one bigger block, kept, and then enough
     */

    records = body_records(buf);
    arena_parse(buf, records, RECORDS_N, RECORDS_N);

    assert_in_range(watch.mallocs, 1, 32);
    assert_in_range(watch_live(), 0, 1);

    largest = watch.largest;

    records = body_records(buf);
    arena_parse(buf, records, RECORDS_N, RECORDS_N);

    assert_int_equal(watch.mallocs, 1);
    assert_true(watch.largest > largest);
    assert_int_equal(watch_live(), 1);

    block = watch.live[0].p;

    records = body_records(buf);
    arena_parse(buf, records, RECORDS_N, RECORDS_N);

    assert_int_equal(watch.mallocs, 0);
    assert_int_equal(watch_live(), 1);
    assert_ptr_equal(watch.live[0].p, block);

    watch.on = 0;

    free(huge);
    free(buf);
}


#undef ARENA_TINY
#undef HUGE_LEN

#endif


/*
 * The parser in steps: for every budget, the same answer as in one go,
 * for bodies good and bad, with separators inside strings and nesting
 * that must not cut an element; and a large body takes many steps.
 */

static void
test_steps_match_whole(void **state)
{
    int                                 rc, rc2;
    char                               *buf, *p;
    size_t                              i, j, b, n, n2, len, steps;
    ngx_http_stockprice_record_t       *recs, *recs2;
    ngx_http_stockprice_parser_t        parser;
    ngx_http_stockprice_parse_stats_t   st;

    static const char  *bodies[] = {
        "[{\"symbol\":\"MSFT\",\"price\":14.7},"
        " {\"symbol\":\"A,]}\\\"[{\",\"price\":1,\"x\":[1,{\"y\":\"]\"}]},"
        " {\"symbol\":\"AAPL\",\"price\":2}, 3, [4,5], \"s,t\"]",
        "  [ ]  ",
        "[\x0b]",
        "[]",
        "[1,]",
        "[,1]",
        "[1,,2]",
        "[1,\x0b]",
        "[1 2]",
        "[1,2",
        "[1,\"2]",
        "[1,2} ",
        "[1,2] x",
        "[1,2]\n",
        "[{\"symbol\":\"B\",\"price\":1},{\"symbol\":\"B\",\"price\":2}]",
        "{\"symbol\":\"MSFT\"}",
        "\"[\"",
        "[[[[[]]]]]",
        "",
        "   "
    };

    (void) state;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        len = strlen(bodies[i]);
        buf = malloc(len + 1);
        assert_non_null(buf);

        memcpy(buf, bodies[i], len + 1);
        rc = ngx_http_stockprice_parse_prices(buf, len, NULL, 0, &recs, &n,
                                              &st);

        for (b = 0; b < 40; b += 3) {
            memcpy(buf, bodies[i], len + 1);
            ngx_http_stockprice_parse_start(&parser, buf, len, NULL, NULL, 0, NULL, 0);

            do {
                rc2 = ngx_http_stockprice_parse_step(&parser, b);
            } while (rc2 == NGX_HTTP_STOCKPRICE_PARSE_AGAIN);

            if (rc2 != NGX_HTTP_STOCKPRICE_PARSE_OK) {
                ngx_http_stockprice_parse_abort(&parser);
                assert_int_equal(rc2, rc);
                continue;
            }

            assert_int_equal(ngx_http_stockprice_parse_done(&parser, &recs2,
                                                            &n2),
                             rc);
            assert_int_equal(n2, n);
            assert_int_equal(parser.stats.total, st.total);

            for (j = 0; j < n; j++) {
                assert_int_equal(recs2[j].symbol_len, recs[j].symbol_len);
                assert_memory_equal(recs2[j].symbol, recs[j].symbol,
                                    recs[j].symbol_len);
                assert_true(recs2[j].price == recs[j].price);
            }

            free(recs2);
        }

        if (rc == NGX_HTTP_STOCKPRICE_PARSE_OK) {
            free(recs);
        }

        free(buf);
    }

    /* 1000 records of ~40 bytes in steps of 4 KB: about 10 steps */

    buf = malloc(64 * 1000);
    assert_non_null(buf);

    p = buf;
    *p++ = '[';
    for (i = 0; i < 1000; i++) {
        p += sprintf(p, "%s{\"symbol\":\"S%04zu\",\"price\":%zu.5}",
                     i ? "," : "", i, i);
    }
    *p++ = ']';
    len = p - buf;

    ngx_http_stockprice_parse_start(&parser, buf, len, NULL, NULL, 0, NULL, 0);
    steps = 0;

    do {
        rc = ngx_http_stockprice_parse_step(&parser, 4096);
        steps++;
    } while (rc == NGX_HTTP_STOCKPRICE_PARSE_AGAIN);

    assert_int_equal(rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_in_range(steps, len / 4096 - 1, len / 4096 + 1);

    assert_int_equal(ngx_http_stockprice_parse_done(&parser, &recs, &n),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(n, 1000);
    assert_string_equal(recs[999].symbol, "S0999");
    assert_true(recs[999].price == 999.5);
    free(recs);

    /* abandoned half way: nothing leaks (valgrind and ASan watch) */

    ngx_http_stockprice_parse_start(&parser, buf, len, NULL, NULL, 0, NULL, 0);
    assert_int_equal(ngx_http_stockprice_parse_step(&parser, 4096),
                     NGX_HTTP_STOCKPRICE_PARSE_AGAIN);
    ngx_http_stockprice_parse_abort(&parser);

    free(buf);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_records),
        cmocka_unit_test(test_large_bodies_in_turn),
        cmocka_unit_test_teardown(test_arena_grows, watch_teardown),
        cmocka_unit_test(test_steps_match_whole),
        cmocka_unit_test(test_numeric_string_prices),
        cmocka_unit_test(test_body_cases),
        cmocka_unit_test(test_nul_escape_patched_in_place),
        cmocka_unit_test(test_symbol_valid),
        cmocka_unit_test(test_duplicates_last_wins),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_sort_is_byte_order),
        cmocka_unit_test(test_symbol_cmp),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_value_times),
        cmocka_unit_test(test_unknown_fields_ignored),
        cmocka_unit_test(test_repeated_field_first_wins),
        cmocka_unit_test(test_own_output_parses_back),
        cmocka_unit_test(test_many_records),
        cmocka_unit_test(test_many_duplicates_last_wins),
        cmocka_unit_test(test_token_good),
        cmocka_unit_test(test_token_expires_in),
        cmocka_unit_test(test_token_bad),
        cmocka_unit_test(test_oauth_token),
        cmocka_unit_test(test_token_length_limit),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_credentials_bad),
        cmocka_unit_test(test_check_credentials),
    };

    return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
