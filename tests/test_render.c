
/*
 * Copyright (C) ngx_stockprice authors
 */


/* gmtime_r() as the reference for render_time() */
#define _POSIX_C_SOURCE  200809L

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>


#define time_valid  ngx_http_stockprice_parse_time_valid


typedef size_t (*render_pt)(char *dst, const void *arg);


static uint64_t
rnd(uint64_t *x)
{
    /* xorshift64: reproducible, every bit pattern reachable */
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;

    return *x;
}


/*
 * Both passes: the length, then the bytes into a buffer of exactly that
 * length (ASan catches a longer write), then a NUL-terminated copy.
 */

static char *
two_pass(render_pt render, const void *arg)
{
    char    *buf, *out;
    size_t   n, m;

    n = render(NULL, arg);

    buf = malloc(n ? n : 1);
    assert_non_null(buf);

    m = render(buf, arg);
    assert_int_equal(m, n);

    out = malloc(n + 1);
    assert_non_null(out);
    memcpy(out, buf, n);
    out[n] = '\0';
    free(buf);

    return out;
}


typedef struct {
    const char  *s;
    size_t       len;
} str_arg_t;


static size_t
render_escape(char *dst, const void *arg)
{
    const str_arg_t  *a = arg;

    return ngx_http_stockprice_render_escape(dst, a->s, a->len);
}


static char *
escape(const char *s, size_t len)
{
    str_arg_t  a;

    a.s = s;
    a.len = len;

    return two_pass(render_escape, &a);
}


static void
check_escape(const char *s, size_t len, const char *expect)
{
    char  *e;

    e = escape(s, len);
    assert_string_equal(e, expect);
    free(e);
}


static void
test_escape(void **state)
{
    (void) state;

    check_escape("", 0, "");
    check_escape("plain MSFT.B", 12, "plain MSFT.B");
    check_escape("a\"b\\c", 5, "a\\\"b\\\\c");
    check_escape("\"\"", 2, "\\\"\\\"");
    check_escape("\n\r\t\b\f", 5, "\\n\\r\\t\\b\\f");
    check_escape("\x01\x1f\x7f\x0b", 4, "\\u0001\\u001f\\u007f\\u000b");
    check_escape("a\0b", 3, "a\\u0000b");
    check_escape("/", 1, "/");
    check_escape("\xc3\xa9t\xc3\xa9 \xf0\x9f\x93\x88", 10,
                 "\xc3\xa9t\xc3\xa9 \xf0\x9f\x93\x88");
}


/* every byte: cJSON reads the escaped form back as the byte itself */

static void
test_escape_every_byte_reads_back(void **state)
{
    int     c;
    char   *e, *doc, in[3];
    cJSON  *json;

    (void) state;

    for (c = 1; c < 0x80; c++) {
        in[0] = 'x';
        in[1] = (char) c;
        in[2] = 'y';

        e = escape(in, 3);

        doc = malloc(strlen(e) + 3);
        assert_non_null(doc);
        sprintf(doc, "\"%s\"", e);

        json = cJSON_Parse(doc);
        assert_non_null(json);
        assert_true(cJSON_IsString(json));
        assert_int_equal(strlen(json->valuestring), 3);
        assert_memory_equal(json->valuestring, in, 3);

        cJSON_Delete(json);
        free(doc);
        free(e);
    }
}


/*
 * Bytes that are not UTF-8 become U+FFFD, one escape per byte; valid
 * characters pass as they are; the result is always valid UTF-8 JSON
 */

static void
test_escape_invalid_utf8(void **state)
{
    size_t   i;
    char    *e;

    static const struct {
        const char  *in;
        const char  *out;
    } cases[] = {
        { "\xff\xfe", "\\ufffd\\ufffd" },
        { "a\xe2\x82\xac" "b", "a\xe2\x82\xac" "b" },    /* euro sign */
        { "\xe2\x82", "\\ufffd\\ufffd" },                  /* cut short */
        { "\xc0\xaf", "\\ufffd\\ufffd" },                  /* overlong */
        { "\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd" },      /* a surrogate */
        { "\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd" },
        { "\xf0\x9f\x98\x80\"", "\xf0\x9f\x98\x80\\\"" },
        { "caf\xe9", "caf\\ufffd" },                        /* Latin-1 */
    };

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e = escape(cases[i].in, strlen(cases[i].in));
        assert_string_equal(e, cases[i].out);
        free(e);
    }
}


/* application/x-www-form-urlencoded, as RFC 6749 appendix B has it */

static void
test_form(void **state)
{
    char    buf[64];
    size_t  n;

    (void) state;

    n = ngx_http_stockprice_render_form(NULL, "s:e%c+r\xc3\xa9t ~-._Az9", 18);
    assert_int_equal(n, ngx_http_stockprice_render_form(buf,
                                        "s:e%c+r\xc3\xa9t ~-._Az9", 18));
    buf[n] = '\0';
    assert_string_equal(buf, "s%3Ae%25c%2Br%C3%A9t+~-._Az9");

    n = ngx_http_stockprice_render_form(buf, "a&b=c/d?", 8);
    buf[n] = '\0';
    assert_string_equal(buf, "a%26b%3Dc%2Fd%3F");
}


/* a message cut at a byte count loses the character it cut, no more */

static void
test_utf8_cut(void **state)
{
    (void) state;

    assert_int_equal(ngx_http_stockprice_render_utf8_cut("abc", 3), 3);
    assert_int_equal(ngx_http_stockprice_render_utf8_cut("", 0), 0);
    assert_int_equal(ngx_http_stockprice_render_utf8_cut("a\xe2\x82\xac", 4),
                     4);
    assert_int_equal(ngx_http_stockprice_render_utf8_cut("a\xe2\x82\xac", 3),
                     1);
    assert_int_equal(ngx_http_stockprice_render_utf8_cut("a\xe2\x82\xac", 2),
                     1);
    assert_int_equal(ngx_http_stockprice_render_utf8_cut("\xf0\x9f\x98", 3), 0);
    assert_int_equal(ngx_http_stockprice_render_utf8_cut("\xc3\xa9", 2), 2);
    assert_int_equal(ngx_http_stockprice_render_utf8_cut("x\xc3", 2), 1);

    /* not a character cut short but a stray byte: left to the escape */
    assert_int_equal(ngx_http_stockprice_render_utf8_cut("x\xff", 2), 2);
    assert_int_equal(ngx_http_stockprice_render_utf8_cut("\x80\x80\x80\x80", 4),
                     4);
}


/* the fewest digits worth trying: 15 for a normal double, 1 else */

static int
first_digits(double v)
{
    return (v != 0 && fabs(v) < DBL_MIN) ? 1 : 15;
}


static void
check_price(double v, const char *expect)
{
    char    buf[NGX_HTTP_STOCKPRICE_PRICE_LEN];
    char    out[NGX_HTTP_STOCKPRICE_PRICE_LEN + 1];
    size_t  n;

    n = ngx_http_stockprice_render_price(buf, v);
    assert_true(n < NGX_HTTP_STOCKPRICE_PRICE_LEN);

    memcpy(out, buf, n);
    out[n] = '\0';

    assert_string_equal(out, expect);
}


static void
test_price_known(void **state)
{
    (void) state;

    check_price(14.7, "14.7");
    check_price(0.1, "0.1");
    check_price(0.1 + 0.2, "0.30000000000000004");
    check_price(14.7052516685914, "14.7052516685914");
    check_price(187.3, "187.3");
    check_price(100, "100");
    check_price(0, "0");
    check_price(1e21, "1e+21");
    check_price(1e-7, "1e-07");
    check_price(-0.0, "-0");
    check_price(-42.5, "-42.5");
    check_price(123456789012345678.0, "1.2345678901234568e+17");
    check_price(5e-324, "5e-324");
    check_price(-5e-324, "-5e-324");
    check_price(1e-320, "1e-320");
    check_price(1.5e-323, "1.5e-323");
    check_price(2.2250738585072009e-308, "2.225073858507201e-308");
    check_price(2.2250738585072014e-308, "2.2250738585072014e-308");
    check_price(-1.7976931348623157e308, "-1.7976931348623157e+308");
}


static void
test_price_not_finite_is_null(void **state)
{
    (void) state;

    check_price(strtod("inf", NULL), "null");
    check_price(strtod("-inf", NULL), "null");
    check_price(strtod("nan", NULL), "null");
}


/*
 * Random doubles of every magnitude: the output reads back exactly, is a
 * JSON number, and no fewer digits of %.15g / %.16g would have done (of
 * %.1g ... for a subnormal, whose precision is lower).
 */

static void
test_price_round_trips(void **state)
{
    int       i, digits;
    char      buf[NGX_HTTP_STOCKPRICE_PRICE_LEN + 1];
    char      shorter[64];
    size_t    n;
    double    v;
    cJSON    *json;
    uint64_t  x, bits;

    (void) state;

    x = 0x9e3779b97f4a7c15ULL;

    for (i = 0; i < 100000; i++) {
        bits = rnd(&x);

        if (i % 2) {
            /* prices people see: a few decimals */
            v = (double) (bits % 100000000) / 10000.0;

        } else {
            memcpy(&v, &bits, sizeof(v));
        }

        if (v != v || v - v != 0) {
            continue;
        }

        n = ngx_http_stockprice_render_price(buf, v);
        assert_true(n > 0 && n < NGX_HTTP_STOCKPRICE_PRICE_LEN);
        buf[n] = '\0';

        assert_true(strtod(buf, NULL) == v);

        json = cJSON_Parse(buf);
        assert_non_null(json);
        assert_true(cJSON_IsNumber(json));
        cJSON_Delete(json);

        /* the precision used: 17 has 17 significant digits, and so on */

        for (digits = first_digits(v); digits < 17; digits++) {
            snprintf(shorter, sizeof(shorter), "%.*g", digits, v);

            if (strtod(shorter, NULL) == v) {
                break;
            }
        }

        snprintf(shorter, sizeof(shorter), "%.*g", digits, v);
        assert_string_equal(buf, shorter);
    }
}


/* the shortest "%.Ng" that reads back: what render_price() must write */

static void
reference_price(char *buf, size_t size, double v)
{
    int  digits;

    for (digits = first_digits(v); digits < 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);

        if (strtod(buf, NULL) == v) {
            return;
        }
    }

    snprintf(buf, size, "%.*g", 17, v);
}


/* the fast path for decimals of up to 6 places writes what printf() does */

static void
test_price_decimals_match_printf(void **state)
{
    int        i, d;
    char       buf[NGX_HTTP_STOCKPRICE_PRICE_LEN + 1], ref[64];
    size_t     n;
    double     v, p10;
    uint64_t   x, k;
    static const double  edges[] = {
        0, 1e-4, 0.0001, 0.00015, 0.000999999, 1e-5, 0.1 + 0.2, 0.5,
        1, 9.999999, 10, 14.7, 14.699999999999999, 187.30, 999999999.999999,
        999999999.9999995, 1e9, 1e9 - 1e-6, 123456789.123456, 4503599627.5,
        0.123456, 0.1234567, 2.5e-4, 100.000001, 7.0000005
    };

    (void) state;

    for (i = 0; i < (int) (sizeof(edges) / sizeof(edges[0])); i++) {
        for (d = 0; d < 2; d++) {
            v = d ? -edges[i] : edges[i];
            n = ngx_http_stockprice_render_price(buf, v);
            buf[n] = '\0';
            reference_price(ref, sizeof(ref), v);
            assert_string_equal(buf, ref);
        }
    }

    x = 0x2545f4914f6cdd1dULL;

    for (i = 0; i < 300000; i++) {
        d = i % 9;
        k = rnd(&x) % 1000000000000000ULL;

        if (i % 3 == 0) {
            k %= 10000000;
        }

        for (p10 = 1; d; d--) {
            p10 *= 10;
        }

        v = (double) k / p10;

        if (i % 2) {
            v = -v;
        }

        n = ngx_http_stockprice_render_price(buf, v);
        assert_true(n > 0 && n < NGX_HTTP_STOCKPRICE_PRICE_LEN);
        buf[n] = '\0';

        reference_price(ref, sizeof(ref), v);
        assert_string_equal(buf, ref);
    }
}


static void
check_time(int64_t sec, long usec, const char *expect)
{
    char    buf[NGX_HTTP_STOCKPRICE_ISO_LEN];
    char    out[NGX_HTTP_STOCKPRICE_ISO_LEN + 1];
    size_t  n;

    n = ngx_http_stockprice_render_time(buf, sec, usec);
    assert_int_equal(n, 27);

    memcpy(out, buf, n);
    out[n] = '\0';

    assert_string_equal(out, expect);
    assert_true(ngx_http_stockprice_parse_time_valid(out, n));
}


static void
test_time_known(void **state)
{
    (void) state;

    check_time(0, 0, "1970-01-01T00:00:00.000000Z");
    check_time(1714560817, 298206, "2024-05-01T10:53:37.298206Z");
    check_time(951782400, 1, "2000-02-29T00:00:00.000001Z");
    check_time(1709164800, 999999, "2024-02-29T00:00:00.999999Z");
    check_time(1709251199, 0, "2024-02-29T23:59:59.000000Z");
    check_time(4107542400LL, 0, "2100-03-01T00:00:00.000000Z");
    check_time(2147483647LL, 0, "2038-01-19T03:14:07.000000Z");
    check_time(2147483648LL, 0, "2038-01-19T03:14:08.000000Z");
    check_time(4102444799LL, 0, "2099-12-31T23:59:59.000000Z");
    check_time(-1, 500000, "1969-12-31T23:59:59.500000Z");
    check_time(-86400, 0, "1969-12-31T00:00:00.000000Z");
}


static void
test_time_out_of_range_is_clamped(void **state)
{
    (void) state;

    check_time(INT64_MAX, 0, "9999-12-31T23:59:59.000000Z");
    check_time(253402300800LL, 0, "9999-12-31T23:59:59.000000Z");
    check_time(INT64_MIN, 0, "0000-01-01T00:00:00.000000Z");
    check_time(0, -1, "1970-01-01T00:00:00.000000Z");
    check_time(0, 1000000, "1970-01-01T00:00:00.000000Z");
}


static void
test_time_matches_gmtime(void **state)
{
    int        i;
    char       buf[NGX_HTTP_STOCKPRICE_ISO_LEN];
    char       expect[64], out[NGX_HTTP_STOCKPRICE_ISO_LEN + 1];
    long       usec;
    size_t     n;
    time_t     t;
    int64_t    sec;
    uint64_t   x;
    struct tm  tm;

    (void) state;

    x = 0x0123456789abcdefULL;

    for (i = 0; i < 20000; i++) {
        /* 0001-01-01 to 9999-12-31 */
        sec = (int64_t) (rnd(&x) % 315537897600ULL) - 62135596800LL;
        usec = (long) (rnd(&x) % 1000000);

        t = (time_t) sec;
        assert_non_null(gmtime_r(&t, &tm));

        snprintf(expect, sizeof(expect), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, usec);

        n = ngx_http_stockprice_render_time(buf, sec, usec);
        memcpy(out, buf, n);
        out[n] = '\0';

        assert_string_equal(out, expect);
    }
}


static void
test_time_valid(void **state)
{
    size_t       i;

    static const char  *good[] = {
        "2024-05-01T10:53:37Z",
        "2024-05-01T10:53:37.2982063Z",
        "2024-05-01T10:53:37",
        "2024-05-01T10:53:37.5",
        "2024-05-01T10:53:37+02:00",
        "2024-05-01T10:53:37.5-05:30",
        "2016-12-31T23:59:60Z",
        "0000-01-01T00:00:00Z",
        "2024-05-01T10:53:37.1234567890123456789Z",
    };

    static const char  *bad[] = {
        "",
        "yesterday",
        "2024-05-01",
        "2024-05-01T10:53",
        "2024-13-01T10:53:37Z",
        "2024-00-01T10:53:37Z",
        "2024-05-00T10:53:37Z",
        "2024-05-32T10:53:37Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T10:60:00Z",
        "2024-05-01T10:53:61Z",
        "2024-05-01 10:53:37Z",
        "2024/05/01T10:53:37Z",
        "2024-05-01T10:53:37.Z",
        "2024-05-01T10:53:37.",
        "2024-05-01T10:53:37Zjunk",
        "2024-05-01T10:53:37ZZ",
        "2024-05-01T10:53:37+0200",
        "2024-05-01T10:53:37+02:00Z",
        "2024-05-01T10:53:37+24:00",
        "2024-05-01T10:53:37+02:60",
        "2024-05-01T10:53:37 +02:00",
        "2024-05-01t10:53:37z",
        "2024-05-01T10:53:37z",
        "+024-05-01T10:53:37Z",
        "2024-05-01T10:53:37.12345678901234567890Z",
    };

    (void) state;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(time_valid(good[i], strlen(good[i])));
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(time_valid(bad[i], strlen(bad[i])));
    }

    /* only "len" bytes are looked at */
    assert_true(time_valid("2024-05-01T10:53:37Zjunk", 20));
}


static int
hex_value(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}


static void
test_uuid_format(void **state)
{
    int            i, k, j;
    char           buf[NGX_HTTP_STOCKPRICE_UUID_LEN];
    char           out[NGX_HTTP_STOCKPRICE_UUID_LEN + 1];
    uint64_t       x;
    unsigned char  r[16], b;

    (void) state;

    memset(r, 0xff, sizeof(r));
    ngx_http_stockprice_render_uuid(buf, r);
    memcpy(out, buf, 36);
    out[36] = '\0';
    assert_string_equal(out, "ffffffff-ffff-4fff-bfff-ffffffffffff");

    memset(r, 0, sizeof(r));
    ngx_http_stockprice_render_uuid(buf, r);
    memcpy(out, buf, 36);
    assert_string_equal(out, "00000000-0000-4000-8000-000000000000");

    x = 42;

    for (i = 0; i < 1000; i++) {
        for (k = 0; k < 16; k++) {
            r[k] = (unsigned char) rnd(&x);
        }

        ngx_http_stockprice_render_uuid(buf, r);
        memcpy(out, buf, 36);

        assert_true(ngx_http_stockprice_parse_uuid_valid(out, 36));
        assert_int_equal(out[14], '4');
        assert_non_null(strchr("89ab", out[19]));

        /* every other bit is the random input's, lowercase */

        for (k = 0, j = 0; k < 16; k++) {
            if (j == 8 || j == 13 || j == 18 || j == 23) {
                assert_int_equal(out[j], '-');
                j++;
            }

            assert_non_null(strchr("0123456789abcdef", out[j]));
            assert_non_null(strchr("0123456789abcdef", out[j + 1]));

            b = (unsigned char) (hex_value(out[j]) << 4
                                 | hex_value(out[j + 1]));

            if (k == 6) {
                assert_int_equal(b & 0x0f, r[k] & 0x0f);

            } else if (k == 8) {
                assert_int_equal(b & 0x3f, r[k] & 0x3f);

            } else {
                assert_int_equal(b, r[k]);
            }

            j += 2;
        }
    }
}


static void
test_uuid_valid(void **state)
{
    (void) state;

    assert_true(ngx_http_stockprice_parse_uuid_valid(
                    "ffc2f36f-dd0c-4782-bb3f-2c931846f2a3", 36));
    assert_true(ngx_http_stockprice_parse_uuid_valid(
                    "FFC2F36F-DD0C-4782-BB3F-2C931846F2A3", 36));
    assert_false(ngx_http_stockprice_parse_uuid_valid(
                    "ffc2f36f-dd0c-4782-bb3f-2c931846f2a", 35));
    assert_false(ngx_http_stockprice_parse_uuid_valid(
                    "ffc2f36f-dd0c-4782-bb3f-2c931846f2a3a", 37));
    assert_false(ngx_http_stockprice_parse_uuid_valid(
                    "ffc2f36fxdd0c-4782-bb3f-2c931846f2a3", 36));
    assert_false(ngx_http_stockprice_parse_uuid_valid(
                    "ffc2f36f-dd0c-4782-bb3f2-c931846f2a3", 36));
    assert_false(ngx_http_stockprice_parse_uuid_valid(
                    "gfc2f36f-dd0c-4782-bb3f-2c931846f2a3", 36));
    assert_false(ngx_http_stockprice_parse_uuid_valid(
                    "{fc2f36f-dd0c-4782-bb3f-2c931846f2a}", 36));
    assert_false(ngx_http_stockprice_parse_uuid_valid("", 0));
}


typedef struct {
    const ngx_http_stockprice_record_t  *rec;
    const char                          *mtime;
} record_arg_t;


static size_t
render_record(char *dst, const void *arg)
{
    const record_arg_t  *a = arg;

    return ngx_http_stockprice_render_record(dst, a->rec, a->mtime,
                                             strlen(a->mtime));
}


static char *
record(const ngx_http_stockprice_record_t *rec, const char *mtime)
{
    record_arg_t  a;

    a.rec = rec;
    a.mtime = mtime;

    return two_pass(render_record, &a);
}


static void
test_record_exact(void **state)
{
    char                          *s;
    ngx_http_stockprice_record_t   rec;

    (void) state;

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

    /* no valueDateTime: the measurement time */

    rec.value_time_len = 0;
    rec.price = 14.7;

    s = record(&rec, "2024-05-01T10:53:36.791231Z");
    assert_string_equal(s,
        "{\"id\":\"ffc2f36f-dd0c-4782-bb3f-2c931846f2a3\",\"symbol\":\"MSFT\","
        "\"price\":14.7,"
        "\"valueDateTime\":\"2024-05-01T10:53:36.791231Z\","
        "\"measurementTimeStamp\":\"2024-05-01T10:53:36.791231Z\"}");
    free(s);
}


static void
test_record_escapes_symbol(void **state)
{
    char                          *s;
    cJSON                         *json, *v;
    ngx_http_stockprice_record_t   rec;

    (void) state;

    memset(&rec, 0, sizeof(rec));
    memcpy(rec.symbol, "A\"\\\x01\xc3\xa9", 6);
    rec.symbol_len = 6;
    rec.price = 0.1 + 0.2;
    memcpy(rec.id, "00000000-0000-4000-8000-000000000000", 36);
    rec.has_id = 1;

    s = record(&rec, "2024-05-01T10:53:36.791231Z");
    assert_non_null(strstr(s, "\"symbol\":\"A\\\"\\\\\\u0001\xc3\xa9\","));

    json = cJSON_Parse(s);
    assert_non_null(json);

    v = cJSON_GetObjectItemCaseSensitive(json, "symbol");
    assert_true(cJSON_IsString(v));
    assert_string_equal(v->valuestring, "A\"\\\x01\xc3\xa9");

    v = cJSON_GetObjectItemCaseSensitive(json, "price");
    assert_true(cJSON_IsNumber(v));
    assert_true(v->valuedouble == 0.1 + 0.2);

    cJSON_Delete(json);
    free(s);
}


typedef struct {
    const char  *a;
    size_t       alen;
    const char  *b;
    size_t       blen;
} pair_arg_t;


static size_t
render_credentials(char *dst, const void *arg)
{
    const pair_arg_t  *a = arg;

    return ngx_http_stockprice_render_credentials(dst, a->a, a->alen, a->b,
                                                  a->blen);
}


static size_t
render_error(char *dst, const void *arg)
{
    const str_arg_t  *a = arg;

    return ngx_http_stockprice_render_error(dst, a->s, a->len);
}


static void
test_credentials_and_error(void **state)
{
    char        *s;
    str_arg_t    e;
    pair_arg_t   c;

    (void) state;

    c.a = "al\"ice";
    c.alen = 6;
    c.b = "p\\w\n";
    c.blen = 4;

    s = two_pass(render_credentials, &c);
    assert_string_equal(s, "{\"username\":\"al\\\"ice\","
                           "\"password\":\"p\\\\w\\n\"}");
    free(s);

    c.b = "";
    c.blen = 0;

    s = two_pass(render_credentials, &c);
    assert_string_equal(s, "{\"username\":\"al\\\"ice\",\"password\":\"\"}");
    free(s);

    e.s = "unknown symbol \"X\"";
    e.len = strlen(e.s);

    s = two_pass(render_error, &e);
    assert_string_equal(s, "{\"error\":\"unknown symbol \\\"X\\\"\"}");
    free(s);

    e.s = "unknown symbol \"\xff\xfe\"";
    e.len = strlen(e.s);

    s = two_pass(render_error, &e);
    assert_string_equal(s, "{\"error\":\"unknown symbol "
                           "\\\"\\ufffd\\ufffd\\\"\"}");
    free(s);
}


static size_t
render_json(char *dst, const void *arg)
{
    return ngx_http_stockprice_render_status_json(dst, arg);
}


static size_t
render_prometheus(char *dst, const void *arg)
{
    return ngx_http_stockprice_render_status_prometheus(dst, arg);
}


static void
status_init(ngx_http_stockprice_status_t *st)
{
    memset(st, 0, sizeof(ngx_http_stockprice_status_t));

    st->zone = "sto\"cks";
    st->zone_len = 7;
    st->symbols = 3;
    st->records = 30;
    st->refreshes = 12;
    st->failures = 2;
    st->partial_refreshes = 7;
    st->consecutive_failures = 1;
    st->auth_calls = 4;
    st->skipped = 5;
    st->replaced_times = 6;
    st->last_success_ms = 1714560816791LL;
    st->next_refresh_ms = 1714560817298LL;
    st->last_error = "upstream answered \"503\"\n";
    st->last_error_len = strlen(st->last_error);
    st->authenticated = 1;
    st->zone_bytes_used = 4096;
    st->zone_bytes_total = 1048576;
    st->zone_bytes_needed = 43030;
    st->streams = 1001;
    st->rate_limited_ms = -1;
    st->active_upstream = 2;
    st->restored = 4321;

    /* 3 ms, 7 ms, 7 ms, 12 s; 9 answers 2xx, one 503, two without one */

    ngx_http_stockprice_render_duration_add(&st->traffic, 3000);
    ngx_http_stockprice_render_duration_add(&st->traffic, 7000);
    ngx_http_stockprice_render_duration_add(&st->traffic, 7000);
    ngx_http_stockprice_render_duration_add(&st->traffic, 12000000);
    st->traffic.response_bytes = 123456;
    st->traffic.answers[1] = 9;
    st->traffic.answers[4] = 1;
    st->traffic.answers[NGX_HTTP_STOCKPRICE_ANSWER_NONE] = 2;
}


static double
number(cJSON *json, const char *name)
{
    cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(json, name);
    assert_true(cJSON_IsNumber(v));

    return v->valuedouble;
}


static const char *
string(cJSON *json, const char *name)
{
    cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(json, name);
    assert_true(cJSON_IsString(v));

    return v->valuestring;
}


static void
test_status_json(void **state)
{
    char                          *s;
    cJSON                         *json, *v;
    ngx_http_stockprice_status_t   st;

    (void) state;

    status_init(&st);

    s = two_pass(render_json, &st);
    json = cJSON_Parse(s);
    assert_non_null(json);
    assert_true(cJSON_IsObject(json));

    assert_string_equal(string(json, "zone"), "sto\"cks");
    assert_true(number(json, "symbols") == 3);
    assert_true(number(json, "records") == 30);
    assert_true(number(json, "refreshes") == 12);
    assert_true(number(json, "failures") == 2);
    assert_true(number(json, "partialRefreshes") == 7);
    assert_true(number(json, "consecutiveFailures") == 1);
    assert_true(number(json, "authCalls") == 4);
    assert_true(number(json, "skippedRecords") == 5);
    assert_string_equal(string(json, "lastSuccess"),
                        "2024-05-01T10:53:36.791000Z");
    assert_string_equal(string(json, "lastError"),
                        "upstream answered \"503\"\n");
    assert_string_equal(string(json, "nextRefresh"),
                        "2024-05-01T10:53:37.298000Z");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                                 json, "authenticated")));
    assert_true(number(json, "zoneBytesUsed") == 4096);
    assert_true(number(json, "zoneBytesTotal") == 1048576);
    assert_true(number(json, "zoneBytesNeeded") == 43030);
    assert_true(number(json, "streams") == 1001);
    assert_true(number(json, "replacedValueTimes") == 6);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(
                                 json, "rateLimitedUntil")));
    assert_true(number(json, "upstreamResponseBytes") == 123456);
    assert_true(number(json, "activeUpstream") == 2);
    assert_true(number(json, "restored") == 4321);

    v = cJSON_GetObjectItemCaseSensitive(json, "upstreamResponses");
    assert_true(cJSON_IsObject(v));
    assert_int_equal(cJSON_GetArraySize(v), 6);
    assert_true(number(v, "1xx") == 0);
    assert_true(number(v, "2xx") == 9);
    assert_true(number(v, "5xx") == 1);
    assert_true(number(v, "none") == 2);

    v = cJSON_GetObjectItemCaseSensitive(json, "refreshDuration");
    assert_true(cJSON_IsObject(v));
    assert_true(number(v, "count") == 4);
    assert_true(number(v, "sum") == 12.017);

    v = cJSON_GetObjectItemCaseSensitive(v, "buckets");
    assert_true(cJSON_IsObject(v));
    assert_int_equal(cJSON_GetArraySize(v), 12);
    assert_true(number(v, "0.005") == 1);       /* cumulative */
    assert_true(number(v, "0.01") == 3);
    assert_true(number(v, "10") == 3);
    assert_true(number(v, "+Inf") == 4);

    assert_int_equal(cJSON_GetArraySize(json), 24);

    cJSON_Delete(json);
    free(s);
}


static void
test_status_json_nulls(void **state)
{
    char                          *s;
    cJSON                         *json;
    ngx_http_stockprice_status_t   st;

    (void) state;

    status_init(&st);
    st.last_success_ms = -1;
    st.next_refresh_ms = -1;
    st.last_error = NULL;
    st.authenticated = 0;
    st.refreshes = UINT64_MAX;
    st.active_upstream = -1;

    s = two_pass(render_json, &st);
    assert_non_null(strstr(s, "\"refreshes\":18446744073709551615,"));

    json = cJSON_Parse(s);
    assert_non_null(json);

    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(json,
                                                              "lastSuccess")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(json,
                                                              "lastError")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(json,
                                                              "nextRefresh")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(
                                  json, "authenticated")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(
                                 json, "activeUpstream")));

    /* 0 is a time, not "never" */

    cJSON_Delete(json);
    free(s);

    st.last_success_ms = 0;
    s = two_pass(render_json, &st);
    assert_non_null(strstr(s, "\"lastSuccess\":"
                              "\"1970-01-01T00:00:00.000000Z\""));
    free(s);
}


static const char  *metric_names[] = {
    "stockprice_symbols",
    "stockprice_records",
    "stockprice_refreshes_total",
    "stockprice_failures_total",
    "stockprice_partial_refreshes_total",
    "stockprice_consecutive_failures",
    "stockprice_auth_calls_total",
    "stockprice_skipped_records_total",
    "stockprice_replaced_value_times_total",
    "stockprice_last_success_timestamp_seconds",
    "stockprice_next_refresh_timestamp_seconds",
    "stockprice_authenticated",
    "stockprice_rate_limited_until_timestamp_seconds",
    "stockprice_zone_bytes_used",
    "stockprice_zone_size_bytes",
    "stockprice_zone_bytes_needed",
    "stockprice_streams",
    "stockprice_active_upstream",
    "stockprice_restored_records",
};


static void
test_status_prometheus(void **state)
{
    char                          *s, *line, *next, want[128];
    size_t                         i, samples;
    ngx_http_stockprice_status_t   st;

    (void) state;

    status_init(&st);
    st.zone = "a\\b\"c\nd";
    st.zone_len = 7;

    s = two_pass(render_prometheus, &st);

    assert_int_equal(s[strlen(s) - 1], '\n');

    for (i = 0; i < sizeof(metric_names) / sizeof(metric_names[0]); i++) {
        snprintf(want, sizeof(want), "# TYPE %s ", metric_names[i]);
        assert_non_null(strstr(s, want));

        snprintf(want, sizeof(want), "# HELP %s ", metric_names[i]);
        assert_non_null(strstr(s, want));
    }

    assert_non_null(strstr(s, "# TYPE stockprice_refreshes_total counter\n"));
    assert_non_null(strstr(s, "# TYPE stockprice_records gauge\n"));

    assert_non_null(strstr(s, "\nstockprice_refreshes_total"
                              "{zone=\"a\\\\b\\\"c\\nd\"} 12\n"));
    assert_non_null(strstr(s, "\nstockprice_records"
                              "{zone=\"a\\\\b\\\"c\\nd\"} 30\n"));
    assert_non_null(strstr(s, "\nstockprice_partial_refreshes_total"
                              "{zone=\"a\\\\b\\\"c\\nd\"} 7\n"));
    assert_non_null(strstr(s, "\nstockprice_authenticated"
                              "{zone=\"a\\\\b\\\"c\\nd\"} 1\n"));
    assert_non_null(strstr(s, "\nstockprice_last_success_timestamp_seconds"
                              "{zone=\"a\\\\b\\\"c\\nd\"} 1714560816\n"));
    assert_non_null(strstr(s, "\nstockprice_zone_size_bytes"
                              "{zone=\"a\\\\b\\\"c\\nd\"} 1048576\n"));
    assert_non_null(strstr(s, "\nstockprice_zone_bytes_needed"
                              "{zone=\"a\\\\b\\\"c\\nd\"} 43030\n"));
    assert_non_null(strstr(s, "\nstockprice_streams"
                              "{zone=\"a\\\\b\\\"c\\nd\"} 1001\n"));
    assert_non_null(strstr(s, "\nstockprice_active_upstream"
                              "{zone=\"a\\\\b\\\"c\\nd\"} 2\n"));
    assert_non_null(strstr(s, "\nstockprice_restored_records"
                              "{zone=\"a\\\\b\\\"c\\nd\"} 4321\n"));

    /* the histogram (cumulative, +Inf the count), bytes, answers */

    assert_non_null(strstr(s, "# TYPE stockprice_refresh_duration_seconds "
                              "histogram\n"));
    assert_non_null(strstr(s, "\nstockprice_refresh_duration_seconds_bucket"
                              "{zone=\"a\\\\b\\\"c\\nd\",le=\"0.005\"} 1\n"));
    assert_non_null(strstr(s, "\nstockprice_refresh_duration_seconds_bucket"
                              "{zone=\"a\\\\b\\\"c\\nd\",le=\"0.01\"} 3\n"));
    assert_non_null(strstr(s, "\nstockprice_refresh_duration_seconds_bucket"
                              "{zone=\"a\\\\b\\\"c\\nd\",le=\"10\"} 3\n"));
    assert_non_null(strstr(s, "\nstockprice_refresh_duration_seconds_bucket"
                              "{zone=\"a\\\\b\\\"c\\nd\",le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(s, "\nstockprice_refresh_duration_seconds_sum"
                              "{zone=\"a\\\\b\\\"c\\nd\"} 12.017000\n"));
    assert_non_null(strstr(s, "\nstockprice_refresh_duration_seconds_count"
                              "{zone=\"a\\\\b\\\"c\\nd\"} 4\n"));
    assert_non_null(strstr(s, "\nstockprice_upstream_response_bytes_total"
                              "{zone=\"a\\\\b\\\"c\\nd\"} 123456\n"));
    assert_non_null(strstr(s, "\nstockprice_upstream_responses_total"
                              "{zone=\"a\\\\b\\\"c\\nd\",status=\"2xx\"} 9\n"));
    assert_non_null(strstr(s, "\nstockprice_upstream_responses_total"
                              "{zone=\"a\\\\b\\\"c\\nd\",status=\"none\"} 2\n"));

    /* every sample line: a name, the zone label, a value */

    samples = 0;

    for (line = s; *line; line = next + 1) {
        next = strchr(line, '\n');
        assert_non_null(next);

        if (line[0] == '#') {
            continue;
        }

        samples++;
        assert_non_null(strstr(line, "{zone=\"a\\\\b\\\"c\\nd\""));
        assert_true(strstr(line, "{zone=") < next);
        assert_true(next[-1] >= '0' && next[-1] <= '9');
    }

    /* 19, the histogram's 12 buckets, sum and count, bytes, 6 classes */
    assert_int_equal(samples, 19 + 12 + 2 + 1 + 6);

    free(s);
}


static void
test_status_prometheus_never(void **state)
{
    char                          *s;
    ngx_http_stockprice_status_t   st;

    (void) state;

    status_init(&st);
    st.zone = "stocks";
    st.zone_len = 6;
    st.last_success_ms = -1;
    st.next_refresh_ms = -1;
    st.authenticated = 0;
    st.active_upstream = -1;

    s = two_pass(render_prometheus, &st);

    assert_non_null(strstr(s, "\nstockprice_last_success_timestamp_seconds"
                              "{zone=\"stocks\"} 0\n"));
    assert_non_null(strstr(s, "\nstockprice_next_refresh_timestamp_seconds"
                              "{zone=\"stocks\"} 0\n"));
    assert_non_null(strstr(s, "\nstockprice_authenticated"
                              "{zone=\"stocks\"} 0\n"));
    assert_non_null(strstr(s, "\nstockprice_active_upstream"
                              "{zone=\"stocks\"} -1\n"));

    free(s);
}


static void
test_duration_buckets(void **state)
{
    ngx_http_stockprice_traffic_t  t;

    (void) state;

    memset(&t, 0, sizeof(t));

    /* a bucket holds up to its bound, inclusive */

    ngx_http_stockprice_render_duration_add(&t, 0);
    ngx_http_stockprice_render_duration_add(&t, 5000);
    ngx_http_stockprice_render_duration_add(&t, 5001);
    ngx_http_stockprice_render_duration_add(&t, 10000000);
    ngx_http_stockprice_render_duration_add(&t, 10000001);

    assert_int_equal(t.duration_bucket[0], 2);
    assert_int_equal(t.duration_bucket[1], 1);
    assert_int_equal(t.duration_bucket[NGX_HTTP_STOCKPRICE_DURATION_BUCKETS
                                       - 1], 1);
    assert_int_equal(t.duration_bucket[NGX_HTTP_STOCKPRICE_DURATION_BUCKETS],
                     1);
    assert_int_equal(t.duration_count, 5);
    assert_int_equal(t.duration_sum_us, 20010002);

    assert_int_equal(ngx_http_stockprice_render_answer_class(100), 0);
    assert_int_equal(ngx_http_stockprice_render_answer_class(200), 1);
    assert_int_equal(ngx_http_stockprice_render_answer_class(304), 2);
    assert_int_equal(ngx_http_stockprice_render_answer_class(429), 3);
    assert_int_equal(ngx_http_stockprice_render_answer_class(599), 4);
    assert_int_equal(ngx_http_stockprice_render_answer_class(0),
                     NGX_HTTP_STOCKPRICE_ANSWER_NONE);
    assert_int_equal(ngx_http_stockprice_render_answer_class(600),
                     NGX_HTTP_STOCKPRICE_ANSWER_NONE);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_every_byte_reads_back),
        cmocka_unit_test(test_escape_invalid_utf8),
        cmocka_unit_test(test_utf8_cut),
        cmocka_unit_test(test_form),
        cmocka_unit_test(test_price_known),
        cmocka_unit_test(test_price_not_finite_is_null),
        cmocka_unit_test(test_price_round_trips),
        cmocka_unit_test(test_price_decimals_match_printf),
        cmocka_unit_test(test_time_known),
        cmocka_unit_test(test_time_out_of_range_is_clamped),
        cmocka_unit_test(test_time_matches_gmtime),
        cmocka_unit_test(test_time_valid),
        cmocka_unit_test(test_uuid_format),
        cmocka_unit_test(test_uuid_valid),
        cmocka_unit_test(test_record_exact),
        cmocka_unit_test(test_record_escapes_symbol),
        cmocka_unit_test(test_credentials_and_error),
        cmocka_unit_test(test_status_json),
        cmocka_unit_test(test_status_json_nulls),
        cmocka_unit_test(test_status_prometheus),
        cmocka_unit_test(test_status_prometheus_never),
        cmocka_unit_test(test_duration_buckets),
    };

    return cmocka_run_group_tests_name("render", tests, NULL, NULL);
}
