
/*
 * Copyright (C) ngx_stockprice authors
 */


/*
 * The list compressed in steps (CONTRACT 4.3): any budget gives a gzip
 * that inflates to the very bytes, within the bound.
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

#include <ngx_http_stockprice_gzip.h>


static size_t
inflate_all(const unsigned char *in, size_t len, unsigned char *out,
    size_t size)
{
    z_stream  z;

    memset(&z, 0, sizeof(z));

    assert_int_equal(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);

    z.next_in = (unsigned char *) in;
    z.avail_in = (uInt) len;
    z.next_out = out;
    z.avail_out = (uInt) size;

    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.avail_in, 0);

    inflateEnd(&z);

    return size - z.avail_out;
}


static void
compress_check(const unsigned char *text, size_t len, size_t budget)
{
    int                          rc;
    size_t                       n, steps;
    unsigned char               *back;
    ngx_http_stockprice_gzip_t   g;

    assert_int_equal(ngx_http_stockprice_gzip_start(&g, text, len,
                                                NGX_HTTP_STOCKPRICE_GZIP_LEVEL),
                     NGX_HTTP_STOCKPRICE_GZIP_AGAIN);

    /* the bound is zlib's own for the stream as set up */

    assert_true(deflateBound(&g.z, (uLong) len)
                <= ngx_http_stockprice_gzip_bound(len));

    steps = 0;

    do {
        rc = ngx_http_stockprice_gzip_step(&g, budget);
        steps++;
        assert_true(steps <= len / budget + 2);
    } while (rc == NGX_HTTP_STOCKPRICE_GZIP_AGAIN);

    assert_int_equal(rc, NGX_HTTP_STOCKPRICE_GZIP_OK);
    assert_true(g.out_len <= ngx_http_stockprice_gzip_bound(len));

    /* a gzip member: magic, deflate */

    assert_true(g.out_len >= 18);
    assert_int_equal(g.out[0], 0x1f);
    assert_int_equal(g.out[1], 0x8b);
    assert_int_equal(g.out[2], 8);

    back = malloc(len + 1);
    assert_non_null(back);

    n = inflate_all(g.out, g.out_len, back, len + 1);
    assert_int_equal(n, len);
    assert_memory_equal(back, text, len);

    free(back);
    ngx_http_stockprice_gzip_free(&g);
}


static void
test_gzip_steps(void **state)
{
    size_t          i, len;
    uint32_t        x;
    unsigned char  *text;

    (void) state;

    /* a list of 5,000 records, and bytes that do not compress */

    text = malloc(1000000);
    assert_non_null(text);

    len = 0;

    for (i = 0; i < 5000; i++) {
        len += (size_t) sprintf((char *) text + len,
                                "%s{\"symbol\":\"S%04d\",\"price\":%d.%02d}",
                                i ? "," : "[", (int) i, (int) (i * 7 % 1000),
                                (int) (i % 100));
    }

    text[len++] = ']';

    compress_check(text, len, 65536);
    compress_check(text, len, 1000);
    compress_check(text, len, (size_t) -1);
    compress_check(text, 0, 65536);
    compress_check((unsigned char *) "[]", 2, 1);

    x = 2463534242u;

    for (i = 0; i < 300000; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        text[i] = (unsigned char) x;
    }

    compress_check(text, 300000, 4096);
    compress_check(text, 300000, (size_t) -1);

    free(text);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_gzip_steps),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
