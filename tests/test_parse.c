
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


static void
test_bad_prices_skipped(void **state)
{
    size_t       i;
    result_t     r;

    static const char  *bad[] = {
        "[{\"symbol\":\"X\"}]",
        "[{\"symbol\":\"X\",\"price\":null}]",
        "[{\"symbol\":\"X\",\"price\":true}]",
        "[{\"symbol\":\"X\",\"price\":false}]",
        "[{\"symbol\":\"X\",\"price\":\"abc\"}]",
        "[{\"symbol\":\"X\",\"price\":\"1.5x\"}]",
        "[{\"symbol\":\"X\",\"price\":\"\"}]",
        "[{\"symbol\":\"X\",\"price\":\" 1\"}]",
        "[{\"symbol\":\"X\",\"price\":\"1 \"}]",
        "[{\"symbol\":\"X\",\"price\":\"inf\"}]",
        "[{\"symbol\":\"X\",\"price\":\"-Infinity\"}]",
        "[{\"symbol\":\"X\",\"price\":\"nan\"}]",
        "[{\"symbol\":\"X\",\"price\":\"NAN(1)\"}]",
        "[{\"symbol\":\"X\",\"price\":\"0x10\"}]",
        "[{\"symbol\":\"X\",\"price\":\"0x1p3\"}]",
        "[{\"symbol\":\"X\",\"price\":\".5\"}]",
        "[{\"symbol\":\"X\",\"price\":\"5.\"}]",
        "[{\"symbol\":\"X\",\"price\":\"1e\"}]",
        "[{\"symbol\":\"X\",\"price\":\"--1\"}]",
        "[{\"symbol\":\"X\",\"price\":\"-\"}]",
        "[{\"symbol\":\"X\",\"price\":\"1\\u0000\"}]",
        "[{\"symbol\":\"X\",\"price\":\"1e999\"}]",
        "[{\"symbol\":\"X\",\"price\":1e999}]",
        "[{\"symbol\":\"X\",\"price\":-1e999}]",
        "[{\"symbol\":\"X\",\"price\":[1]}]",
        "[{\"symbol\":\"X\",\"price\":{\"v\":1}}]",
        "[{\"symbol\":\"X\",\"Price\":1}]",
    };

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = parse(bad[i]);

        assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
        assert_int_equal(r.n, 0);
        assert_int_equal(r.st.total, 1);
        assert_int_equal(r.st.bad_price, 1);
        assert_int_equal(r.st.bad_symbol, 0);

        done(&r);
    }
}


static void
test_bad_symbols_skipped(void **state)
{
    size_t       i;
    result_t     r;

    static const char  *bad[] = {
        "[{\"price\":1}]",
        "[{\"Symbol\":\"A\",\"price\":1}]",
        "[{\"symbol\":null,\"price\":1}]",
        "[{\"symbol\":1,\"price\":1}]",
        "[{\"symbol\":[\"A\"],\"price\":1}]",
        "[{\"symbol\":\"\",\"price\":1}]",
        "[{\"symbol\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\",\"price\":1}]",
        "[{\"symbol\":\"A\\nB\",\"price\":1}]",
        "[{\"symbol\":\"A\\tB\",\"price\":1}]",
        "[{\"symbol\":\"A\\u001fB\",\"price\":1}]",
        "[{\"symbol\":\"A\\u007fB\",\"price\":1}]",
        "[{\"symbol\":\"A\x01" "B\",\"price\":1}]",
        "[{\"symbol\":\"A\\u0000B\",\"price\":1}]",
        "[{\"symbol\":\"\\u0000\",\"price\":1}]",
        "[{\"symbol\":\"AB\\u0000\",\"price\":1}]",
        "[{\"symbol\":\"A\xff\",\"price\":1}]",
        "[{\"symbol\":\"A\x80\",\"price\":1}]",
        "[{\"symbol\":\"A\xc3\",\"price\":1}]",
        "[{\"symbol\":\"A\xe2\x82\",\"price\":1}]",
        "[{\"symbol\":\"A\xc0\xaf\",\"price\":1}]",
        "[{\"symbol\":\"A\xe0\x80\xaf\",\"price\":1}]",
        "[{\"symbol\":\"A\xf0\x80\x80\xaf\",\"price\":1}]",
        "[{\"symbol\":\"A\xed\xa0\x80\",\"price\":1}]",
        "[{\"symbol\":\"A\xf4\x90\x80\x80\",\"price\":1}]",
        "[{\"symbol\":\"A\xf8\x88\x80\x80\x80\",\"price\":1}]",
    };

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = parse(bad[i]);

        assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
        assert_int_equal(r.n, 0);
        assert_int_equal(r.st.total, 1);
        assert_int_equal(r.st.bad_symbol, 1);
        assert_int_equal(r.st.bad_price, 0);

        done(&r);
    }
}


static void
test_nul_escape_does_not_cut_symbol(void **state)
{
    char                                buf[] = "[{\"symbol\":\"MSFT\\u0000X\","
                                                "\"price\":1}]";
    size_t                              n;
    result_t                            r;
    ngx_http_stockprice_record_t       *recs;
    ngx_http_stockprice_parse_stats_t   st;

    (void) state;

    /* "MSFT\u0000X" must not become "MSFT" */

    r = parse("[{\"symbol\":\"MSFT\\u0000X\",\"price\":1},"
              "{\"symbol\":\"SAP\",\"price\":2}]");

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.st.bad_symbol, 1);
    assert_null(find(&r, "MSFT"));
    assert_non_null(find(&r, "SAP"));
    done(&r);

    /* the buffer is patched in place, as documented */

    assert_int_equal(ngx_http_stockprice_parse_prices(buf, strlen(buf), NULL,
                                                      0, &recs, &n, &st),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(n, 0);
    assert_non_null(strstr(buf, "MSFT\\u0001X"));
}


static void
test_escaped_backslash_is_no_nul_escape(void **state)
{
    result_t  r;

    (void) state;

    /* JSON "A\\u0000" is the 7 bytes A\u0000: a backslash, no NUL */

    r = parse("[{\"symbol\":\"A\\\\u0000\",\"price\":1}]");
    assert_int_equal(r.n, 1);
    assert_non_null(find(&r, "A\\u0000"));
    done(&r);

    /* JSON "A\\\u0000": an escaped backslash, then a real NUL escape */

    r = parse("[{\"symbol\":\"A\\\\\\u0000\",\"price\":1}]");
    assert_int_equal(r.n, 0);
    assert_int_equal(r.st.bad_symbol, 1);
    done(&r);
}


static void
test_raw_nul_does_not_cut_symbol(void **state)
{
    result_t     r;
    const char   body[] = "[{\"symbol\":\"MSFT\0X\",\"price\":1}]";

    (void) state;

    r = parse_len(body, sizeof(body) - 1, NULL, 0);

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.st.bad_symbol, 1);

    done(&r);
}


static void
test_symbol_lengths(void **state)
{
    result_t  r;

    (void) state;

    /* 32 bytes kept; 32 bytes of 2-byte characters kept */

    r = parse("[{\"symbol\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\",\"price\":1},"
              "{\"symbol\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
              "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
              "\xc3\xa9\xc3\xa9\",\"price\":2},"
              "{\"symbol\":\"\xf0\x9f\x93\x88\",\"price\":3},"
              "{\"symbol\":\"BRK.B\",\"price\":4},"
              "{\"symbol\":\"A\",\"price\":5}]");

    assert_int_equal(r.n, 5);
    assert_int_equal(r.st.bad_symbol, 0);
    assert_non_null(find(&r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"));
    assert_non_null(find(&r, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"));
    assert_non_null(find(&r, "\xf0\x9f\x93\x88"));
    assert_non_null(find(&r, "BRK.B"));
    assert_non_null(find(&r, "A"));

    done(&r);

    /* 33 bytes: 16 two-byte characters and one more byte */

    r = parse("[{\"symbol\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
              "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
              "\xc3\xa9\xc3\xa9X\",\"price\":2}]");
    assert_int_equal(r.n, 0);
    assert_int_equal(r.st.bad_symbol, 1);
    done(&r);
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
test_not_objects_skipped(void **state)
{
    result_t  r;

    (void) state;

    r = parse("[1,\"x\",null,true,[],[{\"symbol\":\"IN\",\"price\":1}],"
              "{\"symbol\":\"OK\",\"price\":1}]");

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.st.not_object, 6);
    assert_int_equal(r.st.total, 7);
    assert_non_null(find(&r, "OK"));

    done(&r);
}


static void
test_top_level_not_array(void **state)
{
    size_t       i;
    result_t     r;

    static const char  *bodies[] = {
        "{\"symbol\":\"A\",\"price\":1}",
        "\"[]\"",
        "42",
        "null",
        "true",
        "{}",
    };

    (void) state;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        r = parse(bodies[i]);
        assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY);
        assert_int_equal(r.st.total, 0);
    }
}


static void
test_invalid_json(void **state)
{
    size_t       i;
    result_t     r;

    static const char  *bodies[] = {
        "",
        " ",
        "not json",
        "[",
        "[{\"symbol\":\"A\",\"pri",
        "[{\"symbol\":\"A\",\"price\":1}",
        "[{\"symbol\":\"A\",\"price\":1},]x",
        "[{\"symbol\":\"A\",\"price\":1}]garbage",
        "[{\"symbol\":\"A\",\"price\":1}][]",
        "[1,]",
        "[\"\\x\"]",
        "<html>502 Bad Gateway</html>",
    };

    (void) state;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        r = parse(bodies[i]);
        assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON);
        assert_int_equal(r.st.total, 0);
        assert_int_equal(r.st.bad_symbol, 0);
    }
}


static void
test_whitespace_around_array(void **state)
{
    result_t  r;

    (void) state;

    r = parse(" \r\n\t[{\"symbol\":\"A\",\"price\":1}]\r\n \t");

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 1);

    done(&r);
}


static void
test_empty_array(void **state)
{
    result_t  r;

    (void) state;

    r = parse("[]");

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 0);
    assert_null(r.recs);
    assert_int_equal(r.st.total, 0);
    assert_int_equal(r.st.accepted, 0);
}


static void
test_nothing_valid_is_ok_and_empty(void **state)
{
    result_t  r;

    (void) state;

    r = parse("[{\"symbol\":\"\",\"price\":1},{\"symbol\":\"A\"}]");

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 0);
    assert_null(r.recs);
    assert_int_equal(r.st.total, 2);
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

    static const char  body[] = "[{\"symbol\":\"MSFT\",\"price\":1},"
                                "{\"symbol\":\"IBM\",\"price\":2},"
                                "{\"symbol\":\"SAP\",\"price\":3},"
                                "{\"symbol\":\"SAPX\",\"price\":4},"
                                "{\"symbol\":\"SAP\",\"price\":5},"
                                "{\"symbol\":\"AAP\",\"price\":6}]";

    static const ngx_http_stockprice_str_t  filter[] = {
        { "AAPL", 4 }, { "MSFT", 4 }, { "SAP", 3 }, { "ZZZ", 3 }
    };

    (void) state;

    r = parse_len(body, sizeof(body) - 1, filter, 4);

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

    /* a filter of one */

    r = parse_len(body, sizeof(body) - 1, &filter[2], 1);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.st.filtered, 4);
    assert_non_null(find(&r, "SAP"));
    done(&r);

    /* no filter: everything */

    r = parse_len(body, sizeof(body) - 1, NULL, 0);
    assert_int_equal(r.n, 5);
    assert_int_equal(r.st.filtered, 0);
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
        { "\"60\"", -1 },
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
 * cJSON's arena: a body of tiny elements needs far more nodes than its
 * size suggests (extra chunks), a bigger body after it a bigger block, and
 * every parse after those gives what it should
 */

static void
test_arena_grows(void **state)
{
    int                                 round;
    char                               *buf, *p;
    size_t                              i, n, len;
    ngx_http_stockprice_record_t       *recs;
    ngx_http_stockprice_parse_stats_t   st;

    (void) state;

    buf = malloc(64 * 20000 + 16);
    assert_non_null(buf);

    for (round = 0; round < 3; round++) {

        /* [1,1,...]: 100,001 nodes for 200 KB */

        p = buf;
        *p++ = '[';
        for (i = 0; i < 100000; i++) {
            *p++ = '1';
            *p++ = ',';
        }
        *p++ = '1';
        *p++ = ']';
        len = p - buf;

        assert_int_equal(ngx_http_stockprice_parse_prices(buf, len, NULL, 0,
                                                          &recs, &n, &st),
                         NGX_HTTP_STOCKPRICE_PARSE_OK);
        assert_int_equal(n, 0);
        assert_int_equal(st.total, 100001);
        assert_int_equal(st.not_object, 100001);

        /* then 20,000 records */

        p = buf;
        *p++ = '[';
        for (i = 0; i < 20000; i++) {
            p += sprintf(p, "%s{\"symbol\":\"S%05zu\",\"price\":%zu.25}",
                         i ? "," : "", i, i);
        }
        *p++ = ']';
        len = p - buf;

        assert_int_equal(ngx_http_stockprice_parse_prices(buf, len, NULL, 0,
                                                          &recs, &n, &st),
                         NGX_HTTP_STOCKPRICE_PARSE_OK);
        assert_int_equal(n, 20000);
        assert_string_equal(recs[19999].symbol, "S19999");
        assert_true(recs[19999].price == 19999.25);
        free(recs);

        /* and a small one */

        strcpy(buf, "[{\"symbol\":\"MSFT\",\"price\":14.7}]");

        assert_int_equal(ngx_http_stockprice_parse_prices(buf, strlen(buf),
                                                          NULL, 0, &recs, &n,
                                                          &st),
                         NGX_HTTP_STOCKPRICE_PARSE_OK);
        assert_int_equal(n, 1);
        assert_true(recs[0].price == 14.7);
        free(recs);
    }

    free(buf);
}


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
            ngx_http_stockprice_parse_start(&parser, buf, len, NULL, 0);

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

    ngx_http_stockprice_parse_start(&parser, buf, len, NULL, 0);
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

    ngx_http_stockprice_parse_start(&parser, buf, len, NULL, 0);
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
        cmocka_unit_test(test_arena_grows),
        cmocka_unit_test(test_steps_match_whole),
        cmocka_unit_test(test_numeric_string_prices),
        cmocka_unit_test(test_bad_prices_skipped),
        cmocka_unit_test(test_bad_symbols_skipped),
        cmocka_unit_test(test_nul_escape_does_not_cut_symbol),
        cmocka_unit_test(test_escaped_backslash_is_no_nul_escape),
        cmocka_unit_test(test_raw_nul_does_not_cut_symbol),
        cmocka_unit_test(test_symbol_lengths),
        cmocka_unit_test(test_symbol_valid),
        cmocka_unit_test(test_not_objects_skipped),
        cmocka_unit_test(test_top_level_not_array),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_whitespace_around_array),
        cmocka_unit_test(test_empty_array),
        cmocka_unit_test(test_nothing_valid_is_ok_and_empty),
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
        cmocka_unit_test(test_token_length_limit),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_credentials_bad),
        cmocka_unit_test(test_check_credentials),
    };

    return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
