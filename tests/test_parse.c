
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
#include <cmocka.h>

#include <ngx_http_stockprice_parse.h>


typedef struct {
    ngx_http_stockprice_record_t       *recs;
    size_t                              n;
    ngx_http_stockprice_parse_stats_t   st;
    int                                 rc;
} result_t;


static result_t
parse(const char *json)
{
    char      *buf;
    size_t     len;
    result_t   r;

    len = strlen(json);
    buf = malloc(len + 1);
    assert_non_null(buf);
    memcpy(buf, json, len + 1);

    r.rc = ngx_http_stockprice_parse_prices(buf, len, NULL, 0, &r.recs, &r.n,
                                            &r.st);
    free(buf);

    return r;
}


static void
done(result_t *r)
{
    free(r->recs);
}


static int
has_symbol(result_t *r, const char *sym)
{
    size_t  i;

    for (i = 0; i < r->n; i++) {
        if (r->recs[i].symbol_len == strlen(sym)
            && memcmp(r->recs[i].symbol, sym, strlen(sym)) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static void
test_good_records(void **state)
{
    result_t  r;

    r = parse("[{\"symbol\":\"MSFT\",\"price\":14.7052516685914,"
              "\"valueDateTime\":\"2024-05-01T10:53:37.2982063Z\"},"
              "{\"symbol\":\"AAPL\",\"price\":187.3}]");

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.st.total, 2);
    assert_int_equal(r.st.accepted, 2);

    /* sorted: AAPL first */
    assert_memory_equal(r.recs[0].symbol, "AAPL", 4);
    assert_int_equal(r.recs[0].symbol_len, 4);
    assert_true(r.recs[0].price == 187.3);
    assert_int_equal(r.recs[0].value_time_len, 0);
    assert_false(r.recs[0].has_id);

    assert_memory_equal(r.recs[1].symbol, "MSFT", 4);
    assert_true(r.recs[1].price == 14.7052516685914);
    assert_int_equal(r.recs[1].value_time_len, 28);
    assert_memory_equal(r.recs[1].value_time, "2024-05-01T10:53:37.2982063Z",
                        28);

    done(&r);
}


static void
test_numeric_string_price(void **state)
{
    result_t  r;

    r = parse("[{\"symbol\":\"A\",\"price\":\"187.30\"},"
              "{\"symbol\":\"B\",\"price\":\"-1.5e2\"}]");

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 2);
    assert_true(r.recs[0].price == 187.3);
    assert_true(r.recs[1].price == -150.0);

    done(&r);
}


static void
test_bad_prices_skipped(void **state)
{
    size_t       i;
    result_t     r;
    const char  *bad[] = {
        "[{\"symbol\":\"X\"}]",
        "[{\"symbol\":\"X\",\"price\":null}]",
        "[{\"symbol\":\"X\",\"price\":true}]",
        "[{\"symbol\":\"X\",\"price\":\"abc\"}]",
        "[{\"symbol\":\"X\",\"price\":\"1.5x\"}]",
        "[{\"symbol\":\"X\",\"price\":\"\"}]",
        "[{\"symbol\":\"X\",\"price\":\" 1\"}]",
        "[{\"symbol\":\"X\",\"price\":\"inf\"}]",
        "[{\"symbol\":\"X\",\"price\":\"nan\"}]",
        "[{\"symbol\":\"X\",\"price\":\"0x10\"}]",
        "[{\"symbol\":\"X\",\"price\":\"1e999\"}]",
        "[{\"symbol\":\"X\",\"price\":1e999}]",
        "[{\"symbol\":\"X\",\"price\":[1]}]",
        "[{\"symbol\":\"X\",\"price\":{\"v\":1}}]",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = parse(bad[i]);

        assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
        assert_int_equal(r.n, 0);
        assert_int_equal(r.st.bad_price, 1);
        assert_int_equal(r.st.total, 1);

        done(&r);
    }
}


static void
test_bad_symbols_skipped(void **state)
{
    size_t       i;
    result_t     r;
    const char  *bad[] = {
        "[{\"price\":1}]",
        "[{\"symbol\":null,\"price\":1}]",
        "[{\"symbol\":1,\"price\":1}]",
        "[{\"symbol\":\"\",\"price\":1}]",
        "[{\"symbol\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\",\"price\":1}]",
        "[{\"symbol\":\"A\\nB\",\"price\":1}]",
        "[{\"symbol\":\"A\\u007fB\",\"price\":1}]",
        "[{\"symbol\":\"A\\u0000B\",\"price\":1}]",
        "[{\"symbol\":\"\\u0000\",\"price\":1}]",
        "[{\"symbol\":\"A\xff\",\"price\":1}]",
        "[{\"symbol\":\"A\xc0\xaf\",\"price\":1}]",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = parse(bad[i]);

        assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
        assert_int_equal(r.n, 0);
        assert_int_equal(r.st.bad_symbol + r.st.bad_price, 1);

        done(&r);
    }
}


static void
test_nul_escape_does_not_cut_symbol(void **state)
{
    result_t  r;

    /* "MSFT\u0000X" must not become "MSFT" */
    r = parse("[{\"symbol\":\"MSFT\\u0000X\",\"price\":1},"
              "{\"symbol\":\"SAP\",\"price\":2}]");

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.st.bad_symbol, 1);
    assert_false(has_symbol(&r, "MSFT"));
    assert_true(has_symbol(&r, "SAP"));

    done(&r);

    /* an escaped backslash before "u0000" is no escape */
    r = parse("[{\"symbol\":\"A\\\\u0000\",\"price\":1}]");
    assert_int_equal(r.n, 1);
    assert_true(has_symbol(&r, "A\\u0000"));
    done(&r);
}


static void
test_symbol_lengths(void **state)
{
    result_t  r;

    r = parse("[{\"symbol\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\",\"price\":1},"
              "{\"symbol\":\"\xc3\xa9t\xc3\xa9\",\"price\":2}]");

    assert_int_equal(r.n, 2);
    assert_true(has_symbol(&r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"));
    assert_true(has_symbol(&r, "\xc3\xa9t\xc3\xa9"));

    done(&r);
}


static void
test_not_objects_skipped(void **state)
{
    result_t  r;

    r = parse("[1,\"x\",null,[],{\"symbol\":\"OK\",\"price\":1}]");

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.st.not_object, 4);
    assert_int_equal(r.st.total, 5);

    done(&r);
}


static void
test_top_level(void **state)
{
    result_t  r;

    r = parse("{\"symbol\":\"A\",\"price\":1}");
    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY);
    assert_null(r.recs);

    r = parse("\"[]\"");
    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY);

    r = parse("42");
    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_NOT_ARRAY);

    r = parse("not json");
    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON);

    r = parse("[{\"symbol\":\"A\",\"pri");
    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON);

    r = parse("");
    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON);

    r = parse("[]");
    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, 0);
    assert_null(r.recs);
}


static void
test_duplicates_last_wins(void **state)
{
    result_t  r;

    r = parse("[{\"symbol\":\"A\",\"price\":1},{\"symbol\":\"B\",\"price\":2},"
              "{\"symbol\":\"A\",\"price\":3},{\"symbol\":\"A\",\"price\":4}]");

    assert_int_equal(r.n, 2);
    assert_int_equal(r.st.duplicate, 2);
    assert_memory_equal(r.recs[0].symbol, "A", 1);
    assert_true(r.recs[0].price == 4);

    done(&r);
}


static void
test_filter(void **state)
{
    char                        buf[] = "[{\"symbol\":\"MSFT\",\"price\":1},"
                                        "{\"symbol\":\"IBM\",\"price\":2},"
                                        "{\"symbol\":\"SAP\",\"price\":3}]";
    size_t                      n;
    ngx_http_stockprice_record_t       *recs;
    ngx_http_stockprice_parse_stats_t   st;
    ngx_http_stockprice_str_t   filter[] = {
        { "AAPL", 4 }, { "MSFT", 4 }, { "SAP", 3 }
    };

    assert_int_equal(ngx_http_stockprice_parse_prices(buf, strlen(buf), filter,
                                                      3, &recs, &n, &st),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);

    assert_int_equal(n, 2);
    assert_int_equal(st.filtered, 1);
    assert_memory_equal(recs[0].symbol, "MSFT", 4);
    assert_memory_equal(recs[1].symbol, "SAP", 3);

    free(recs);
}


static void
test_sort_is_byte_order(void **state)
{
    result_t  r;

    r = parse("[{\"symbol\":\"a\",\"price\":1},"
              "{\"symbol\":\"MSFT\",\"price\":1},"
              "{\"symbol\":\"AAPLX\",\"price\":1},"
              "{\"symbol\":\"AAPL\",\"price\":1},"
              "{\"symbol\":\"Z\",\"price\":1}]");

    assert_int_equal(r.n, 5);
    assert_memory_equal(r.recs[0].symbol, "AAPL", 4);
    assert_int_equal(r.recs[0].symbol_len, 4);
    assert_memory_equal(r.recs[1].symbol, "AAPLX", 5);
    assert_memory_equal(r.recs[2].symbol, "MSFT", 4);
    assert_memory_equal(r.recs[3].symbol, "Z", 1);
    assert_memory_equal(r.recs[4].symbol, "a", 1);

    assert_true(ngx_http_stockprice_symbol_cmp("AAPL", 4, "AAPLX", 5) < 0);
    assert_true(ngx_http_stockprice_symbol_cmp("b", 1, "a", 1) > 0);
    assert_int_equal(ngx_http_stockprice_symbol_cmp("SAP", 3, "SAP", 3), 0);

    done(&r);
}


static void
test_ids_and_times(void **state)
{
    result_t  r;

    r = parse("[{\"symbol\":\"A\",\"price\":1,"
              "\"id\":\"ffc2f36f-dd0c-4782-bb3f-2c931846f2a3\"},"
              "{\"symbol\":\"B\",\"price\":1,\"id\":\"nope\"},"
              "{\"symbol\":\"C\",\"price\":1,\"id\":42},"
              "{\"symbol\":\"D\",\"price\":1,\"valueDateTime\":\"yesterday\"},"
              "{\"symbol\":\"E\",\"price\":1,"
              "\"valueDateTime\":\"2024-05-01T10:53:37+02:00\"},"
              "{\"symbol\":\"F\",\"price\":1,\"valueDateTime\":12}]");

    assert_int_equal(r.n, 6);

    assert_true(r.recs[0].has_id);
    assert_memory_equal(r.recs[0].id, "ffc2f36f-dd0c-4782-bb3f-2c931846f2a3",
                        36);
    assert_false(r.recs[1].has_id);
    assert_false(r.recs[2].has_id);
    assert_int_equal(r.st.bad_id, 2);

    assert_int_equal(r.recs[3].value_time_len, 0);
    assert_int_equal(r.recs[4].value_time_len, 25);
    assert_int_equal(r.recs[5].value_time_len, 0);
    assert_int_equal(r.st.bad_time, 2);

    done(&r);
}


static void
test_unknown_fields_and_own_output(void **state)
{
    result_t  r;

    /* the module's own output is a valid upstream: tiered fan-out */
    r = parse("[{\"id\":\"ffc2f36f-dd0c-4782-bb3f-2c931846f2a3\","
              "\"symbol\":\"MSFT\",\"price\":14.7052516685914,"
              "\"valueDateTime\":\"2024-05-01T10:53:37.2982063Z\","
              "\"measurementTimeStamp\":\"2024-05-01T10:53:36.791231Z\","
              "\"extra\":{\"nested\":[1,2]}}]");

    assert_int_equal(r.n, 1);
    assert_true(r.recs[0].has_id);
    assert_true(r.recs[0].price == 14.7052516685914);

    done(&r);
}


static void
test_many_records(void **state)
{
    char      *buf, *p;
    size_t     i, n;
    result_t   r;

    n = 5000;
    buf = malloc(n * 64 + 2);
    assert_non_null(buf);

    p = buf;
    *p++ = '[';

    for (i = 0; i < n; i++) {
        p += sprintf(p, "%s{\"symbol\":\"S%05zu\",\"price\":%zu.25}",
                     i ? "," : "", n - i, i);
    }

    *p++ = ']';
    *p = '\0';

    r = parse(buf);
    free(buf);

    assert_int_equal(r.rc, NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(r.n, n);
    assert_memory_equal(r.recs[0].symbol, "S00001", 6);
    assert_memory_equal(r.recs[n - 1].symbol, "S05000", 6);

    done(&r);
}


static void
test_token(void **state)
{
    char    *tok;
    long     exp;
    size_t   len;
    char     big[NGX_HTTP_STOCKPRICE_TOKEN_MAX + 64];

#define TOKEN(s)  ngx_http_stockprice_parse_token(s, strlen(s), &tok, &len,  \
                                                  &exp)

    assert_int_equal(TOKEN("{\"token\":\"abc.def\",\"expiresIn\":3600}"),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(tok, "abc.def", 7);
    assert_int_equal(exp, 3600);
    free(tok);

    assert_int_equal(TOKEN("{\"token\":\"abc\"}"),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(exp, -1);
    free(tok);

    assert_int_equal(TOKEN("{\"token\":\"abc\",\"expiresIn\":\"60\"}"),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(exp, -1);
    free(tok);

    assert_int_equal(TOKEN("{\"token\":\"abc\",\"expiresIn\":-5}"),
                     NGX_HTTP_STOCKPRICE_PARSE_OK);
    assert_int_equal(exp, -1);
    free(tok);

    assert_int_equal(TOKEN("{\"token\":\"\"}"),
                     NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN);
    assert_int_equal(TOKEN("{\"token\":\"a b\"}"),
                     NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN);
    assert_int_equal(TOKEN("{\"token\":\"a\\r\\nX-Evil: 1\"}"),
                     NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN);
    assert_int_equal(TOKEN("{\"token\":12}"),
                     NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN);
    assert_int_equal(TOKEN("{}"), NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN);
    assert_int_equal(TOKEN("[\"token\"]"),
                     NGX_HTTP_STOCKPRICE_PARSE_NOT_OBJECT);
    assert_int_equal(TOKEN("{\"token\":"), NGX_HTTP_STOCKPRICE_PARSE_NOT_JSON);

    memset(big, 'a', sizeof(big));
    memcpy(big, "{\"token\":\"", 10);
    memcpy(big + sizeof(big) - 3, "\"}", 3);
    assert_int_equal(TOKEN(big), NGX_HTTP_STOCKPRICE_PARSE_BAD_TOKEN);

#undef TOKEN
}


static void
test_credentials(void **state)
{
    ngx_http_stockprice_str_t  u, p;

#define CRED(s)  ngx_http_stockprice_parse_credentials(s, strlen(s), &u, &p)

    assert_int_equal(CRED("alice:secret\n"), 0);
    assert_int_equal(u.len, 5);
    assert_memory_equal(u.data, "alice", 5);
    assert_int_equal(p.len, 6);
    assert_memory_equal(p.data, "secret", 6);

    assert_int_equal(CRED("alice:pa:ss\r\nsecond:line\n"), 0);
    assert_int_equal(p.len, 5);
    assert_memory_equal(p.data, "pa:ss", 5);

    assert_int_equal(CRED("alice:"), 0);
    assert_int_equal(p.len, 0);

    assert_int_equal(CRED("alice\nbob:x\n"), -1);
    assert_int_equal(CRED(":secret\n"), -1);
    assert_int_equal(CRED(""), -1);

#undef CRED
}


static void
test_check_credentials(void **state)
{
    ngx_http_stockprice_str_t  u = { "demo", 4 }, p = { "s\"x", 3 };

#define CHECK(s)  ngx_http_stockprice_parse_check_credentials(s, strlen(s),  \
                                                              &u, &p)

    assert_true(CHECK("{\"username\":\"demo\",\"password\":\"s\\\"x\"}"));
    assert_false(CHECK("{\"username\":\"demo\",\"password\":\"s\"}"));
    assert_false(CHECK("{\"username\":\"demo\",\"password\":\"s\\\"xy\"}"));
    assert_false(CHECK("{\"username\":\"demo\\u0000x\","
                       "\"password\":\"s\\\"x\"}"));
    assert_false(CHECK("{\"username\":\"demo\"}"));
    assert_false(CHECK("not json"));

#undef CHECK
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_records),
        cmocka_unit_test(test_numeric_string_price),
        cmocka_unit_test(test_bad_prices_skipped),
        cmocka_unit_test(test_bad_symbols_skipped),
        cmocka_unit_test(test_nul_escape_does_not_cut_symbol),
        cmocka_unit_test(test_symbol_lengths),
        cmocka_unit_test(test_not_objects_skipped),
        cmocka_unit_test(test_top_level),
        cmocka_unit_test(test_duplicates_last_wins),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_sort_is_byte_order),
        cmocka_unit_test(test_ids_and_times),
        cmocka_unit_test(test_unknown_fields_and_own_output),
        cmocka_unit_test(test_many_records),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_check_credentials),
    };

    return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
