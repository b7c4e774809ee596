
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

#include <cjson/cJSON.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>


static char *
escape(const char *s, size_t len)
{
    char    *out;
    size_t   n, m;

    n = ngx_http_stockprice_escape_json(NULL, s, len);
    out = malloc(n + 1);
    assert_non_null(out);

    m = ngx_http_stockprice_escape_json(out, s, len);
    assert_int_equal(m, n);
    out[n] = '\0';

    return out;
}


static void
test_escape(void **state)
{
    char  *e;

    e = escape("plain", 5);
    assert_string_equal(e, "plain");
    free(e);

    e = escape("a\"b\\c", 5);
    assert_string_equal(e, "a\\\"b\\\\c");
    free(e);

    e = escape("\n\r\t\b\f", 5);
    assert_string_equal(e, "\\n\\r\\t\\b\\f");
    free(e);

    e = escape("\x01\x1f\x7f", 3);
    assert_string_equal(e, "\\u0001\\u001f\\u007f");
    free(e);

    e = escape("a\0b", 3);
    assert_string_equal(e, "a\\u0000b");
    free(e);

    e = escape("\xc3\xa9t\xc3\xa9", 5);
    assert_string_equal(e, "\xc3\xa9t\xc3\xa9");
    free(e);
}


static void
check_price(double v, const char *expect)
{
    char    buf[NGX_HTTP_STOCKPRICE_PRICE_LEN + 1];
    size_t  n;

    n = ngx_http_stockprice_format_price(buf, v);
    buf[n] = '\0';

    assert_string_equal(buf, expect);
}


static void
test_price_shortest(void **state)
{
    check_price(14.7, "14.7");
    check_price(0.1, "0.1");
    check_price(0.1 + 0.2, "0.30000000000000004");
    check_price(14.7052516685914, "14.7052516685914");
    check_price(187.3, "187.3");
    check_price(100, "100");
    check_price(1e21, "1e+21");
    check_price(-0.0, "-0");
    check_price(-42.5, "-42.5");
    check_price(5e-324, "4.94065645841247e-324");
    check_price(1.7976931348623157e308, "1.7976931348623157e+308");
}


static void
test_price_round_trips(void **state)
{
    int       i;
    char      buf[NGX_HTTP_STOCKPRICE_PRICE_LEN + 1];
    size_t    n;
    double    v;
    uint64_t  bits, x;
    cJSON    *json;

    x = 0x9e3779b97f4a7c15ULL;

    for (i = 0; i < 100000; i++) {
        /* xorshift over the bit patterns of doubles: every magnitude */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;

        bits = x;
        memcpy(&v, &bits, sizeof(v));

        if (v != v || v - v != 0) {
            continue;
        }

        n = ngx_http_stockprice_format_price(buf, v);
        assert_true(n <= NGX_HTTP_STOCKPRICE_PRICE_LEN);
        buf[n] = '\0';

        assert_true(strtod(buf, NULL) == v);

        /* and it is a valid JSON number */
        json = cJSON_Parse(buf);
        assert_non_null(json);
        assert_true(cJSON_IsNumber(json));
        cJSON_Delete(json);
    }
}


static void
check_time(int64_t sec, long usec, const char *expect)
{
    char    buf[NGX_HTTP_STOCKPRICE_ISO_LEN + 1];
    size_t  n;

    n = ngx_http_stockprice_format_time(buf, sec, usec);
    buf[n] = '\0';

    assert_string_equal(buf, expect);
    assert_true(ngx_http_stockprice_time_valid(buf, n));
}


static void
test_time(void **state)
{
    check_time(0, 0, "1970-01-01T00:00:00.000000Z");
    check_time(1714560817, 298206, "2024-05-01T10:53:37.298206Z");
    check_time(951782400, 1, "2000-02-29T00:00:00.000001Z");
    check_time(1709164800, 999999, "2024-02-29T00:00:00.999999Z");
    check_time(2147483648LL, 0, "2038-01-19T03:14:08.000000Z");
    check_time(4102444799LL, 0, "2099-12-31T23:59:59.000000Z");
}


static void
test_time_valid(void **state)
{
    const char  *good[] = {
        "2024-05-01T10:53:37Z", "2024-05-01T10:53:37.2982063Z",
        "2024-05-01T10:53:37", "2024-05-01T10:53:37+02:00",
        "2024-05-01T10:53:37.5-05:30",
    };
    const char  *bad[] = {
        "", "yesterday", "2024-05-01", "2024-13-01T10:53:37Z",
        "2024-05-01 10:53:37Z", "2024-05-01T25:00:00Z",
        "2024-05-01T10:53:37.Z", "2024-05-01T10:53:37Zjunk",
        "2024-05-01T10:53:37+0200", "2024-05-01t10:53:37z",
    };
    size_t       i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(ngx_http_stockprice_time_valid(good[i], strlen(good[i])));
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(ngx_http_stockprice_time_valid(bad[i], strlen(bad[i])));
    }
}


static void
test_uuid(void **state)
{
    char           buf[NGX_HTTP_STOCKPRICE_UUID_LEN + 1];
    unsigned char  rnd[16];

    memset(rnd, 0xff, sizeof(rnd));
    ngx_http_stockprice_format_uuid(buf, rnd);
    buf[36] = '\0';
    assert_string_equal(buf, "ffffffff-ffff-4fff-bfff-ffffffffffff");

    memset(rnd, 0, sizeof(rnd));
    ngx_http_stockprice_format_uuid(buf, rnd);
    assert_string_equal(buf, "00000000-0000-4000-8000-000000000000");
    assert_true(ngx_http_stockprice_uuid_valid(buf, 36));

    assert_true(ngx_http_stockprice_uuid_valid(
                    "FFC2F36F-DD0C-4782-BB3F-2C931846F2A3", 36));
    assert_false(ngx_http_stockprice_uuid_valid(
                    "ffc2f36f-dd0c-4782-bb3f-2c931846f2a", 35));
    assert_false(ngx_http_stockprice_uuid_valid(
                    "ffc2f36fxdd0c-4782-bb3f-2c931846f2a3", 36));
    assert_false(ngx_http_stockprice_uuid_valid(
                    "gfc2f36f-dd0c-4782-bb3f-2c931846f2a3", 36));
}


static char *
record(ngx_http_stockprice_record_t *rec, const char *mtime)
{
    char    *out;
    size_t   n, m;

    n = ngx_http_stockprice_render_record(NULL, rec, mtime, strlen(mtime));
    out = malloc(n + 1);
    assert_non_null(out);

    m = ngx_http_stockprice_render_record(out, rec, mtime, strlen(mtime));
    assert_int_equal(m, n);
    out[n] = '\0';

    return out;
}


static void
test_record(void **state)
{
    char                          *s;
    cJSON                         *json;
    ngx_http_stockprice_record_t   rec;

    memset(&rec, 0, sizeof(rec));
    memcpy(rec.symbol, "MSFT", 4);
    rec.symbol_len = 4;
    rec.price = 14.7052516685914;
    memcpy(rec.id, "ffc2f36f-dd0c-4782-bb3f-2c931846f2a3", 36);
    rec.has_id = 1;
    memcpy(rec.value_time, "2024-05-01T10:53:37.2982063Z", 28);
    rec.value_time_len = 28;

    s = record(&rec, "2024-05-01T10:53:36.791231Z");
    assert_string_equal(s,
        "{\"id\":\"ffc2f36f-dd0c-4782-bb3f-2c931846f2a3\",\"symbol\":\"MSFT\","
        "\"price\":14.7052516685914,"
        "\"valueDateTime\":\"2024-05-01T10:53:37.2982063Z\","
        "\"measurementTimeStamp\":\"2024-05-01T10:53:36.791231Z\"}");
    free(s);

    /* no valueDateTime: the measurement time; a symbol that needs escaping */
    memcpy(rec.symbol, "A\"\\\x01", 4);
    rec.value_time_len = 0;

    s = record(&rec, "2024-05-01T10:53:36.791231Z");
    assert_non_null(strstr(s, "\"symbol\":\"A\\\"\\\\\\u0001\""));
    assert_non_null(strstr(s, "\"valueDateTime\":"
                              "\"2024-05-01T10:53:36.791231Z\""));

    json = cJSON_Parse(s);
    assert_non_null(json);
    assert_string_equal(cJSON_GetObjectItem(json, "symbol")->valuestring,
                        "A\"\\\x01");
    cJSON_Delete(json);
    free(s);
}


static void
test_credentials_and_error(void **state)
{
    char    buf[128];
    size_t  n;

    n = ngx_http_stockprice_render_credentials(NULL, "al\"ice", 6, "p\\w", 3);
    assert_int_equal(ngx_http_stockprice_render_credentials(buf, "al\"ice", 6,
                                                            "p\\w", 3), n);
    buf[n] = '\0';
    assert_string_equal(buf,
                        "{\"username\":\"al\\\"ice\",\"password\":\"p\\\\w\"}");

    n = ngx_http_stockprice_render_error(NULL, "unknown \"X\"", 11);
    assert_int_equal(ngx_http_stockprice_render_error(buf, "unknown \"X\"",
                                                      11), n);
    buf[n] = '\0';
    assert_string_equal(buf, "{\"error\":\"unknown \\\"X\\\"\"}");
}


static char *
status(ngx_http_stockprice_status_t *st, int prometheus)
{
    char    *out;
    size_t   n, m;

    n = prometheus ? ngx_http_stockprice_render_status_prometheus(NULL, st)
                   : ngx_http_stockprice_render_status_json(NULL, st);
    out = malloc(n + 1);
    assert_non_null(out);

    m = prometheus ? ngx_http_stockprice_render_status_prometheus(out, st)
                   : ngx_http_stockprice_render_status_json(out, st);
    assert_int_equal(m, n);
    out[n] = '\0';

    return out;
}


static void
test_status(void **state)
{
    char                          *s;
    cJSON                         *json;
    ngx_http_stockprice_status_t   st;

    memset(&st, 0, sizeof(st));
    st.zone = "sto\"cks";
    st.zone_len = 7;
    st.symbols = 3;
    st.records = 30;
    st.refreshes = 12;
    st.failures = 2;
    st.consecutive_failures = 1;
    st.last_success_ms = -1;
    st.next_refresh_ms = 1714560817298LL;
    st.last_error = "upstream answered \"503\"";
    st.last_error_len = strlen(st.last_error);
    st.authenticated = 1;
    st.zone_bytes_used = 4096;
    st.zone_bytes_total = 1048576;

    s = status(&st, 0);
    json = cJSON_Parse(s);
    assert_non_null(json);

    assert_string_equal(cJSON_GetObjectItem(json, "zone")->valuestring,
                        "sto\"cks");
    assert_int_equal(cJSON_GetObjectItem(json, "records")->valueint, 30);
    assert_int_equal(cJSON_GetObjectItem(json, "refreshes")->valueint, 12);
    assert_int_equal(cJSON_GetObjectItem(json, "consecutiveFailures")
                     ->valueint, 1);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(json, "lastSuccess")));
    assert_string_equal(cJSON_GetObjectItem(json, "nextRefresh")->valuestring,
                        "2024-05-01T10:53:37.298000Z");
    assert_string_equal(cJSON_GetObjectItem(json, "lastError")->valuestring,
                        "upstream answered \"503\"");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(json, "authenticated")));
    assert_int_equal(cJSON_GetObjectItem(json, "zoneBytesTotal")->valueint,
                     1048576);
    cJSON_Delete(json);
    free(s);

    st.last_error = NULL;
    s = status(&st, 0);
    json = cJSON_Parse(s);
    assert_non_null(json);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(json, "lastError")));
    cJSON_Delete(json);
    free(s);

    s = status(&st, 1);
    assert_non_null(strstr(s, "# TYPE stockprice_refreshes_total counter\n"));
    assert_non_null(strstr(s, "stockprice_refreshes_total"
                              "{zone=\"sto\\\"cks\"} 12\n"));
    assert_non_null(strstr(s, "stockprice_records{zone=\"sto\\\"cks\"} 30\n"));
    assert_non_null(strstr(s, "stockprice_authenticated"
                              "{zone=\"sto\\\"cks\"} 1\n"));
    free(s);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_price_shortest),
        cmocka_unit_test(test_price_round_trips),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_time_valid),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_credentials_and_error),
        cmocka_unit_test(test_status),
    };

    return cmocka_run_group_tests_name("render", tests, NULL, NULL);
}
