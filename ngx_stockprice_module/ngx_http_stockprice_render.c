
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>


/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: always 4 year digits */
#define NGX_HTTP_STOCKPRICE_SEC_FIRST  (-62167219200LL)
#define NGX_HTTP_STOCKPRICE_SEC_LAST   253402300799LL

#define NGX_HTTP_STOCKPRICE_NMETRICS   19
#define NGX_HTTP_STOCKPRICE_METRIC_ACTIVE  17     /* may be -1 */


typedef struct {
    const char                     *name;
    const char                     *type;
    const char                     *help;
} ngx_http_stockprice_metric_t;


static void ngx_http_stockprice_render_civil(char *buf, int64_t sec);
static void ngx_http_stockprice_render_digits(char *buf, long n, int width);
static size_t ngx_http_stockprice_render_put_field(char *dst, size_t n,
    const char *name, uint64_t v);
static size_t ngx_http_stockprice_render_put_time(char *dst, size_t n,
    int64_t ms);
static size_t ngx_http_stockprice_render_put_seconds(char *dst, size_t n,
    uint64_t us);
static size_t ngx_http_stockprice_render_put_histogram(char *dst, size_t n,
    const ngx_http_stockprice_status_t *st);
static size_t ngx_http_stockprice_render_put_sample(char *dst, size_t n,
    const ngx_http_stockprice_status_t *st, const char *name,
    const char *label, uint64_t v);
static size_t ngx_http_stockprice_render_put_label(char *dst, size_t n,
    const char *s, size_t len);


static int ngx_http_stockprice_render_decimal(char *buf, double price);
static size_t ngx_http_stockprice_render_fewest(char *buf, double price);
static size_t ngx_http_stockprice_render_percent(char *dst, const char *src,
    size_t len, int form);


static const char  ngx_http_stockprice_render_hex[] = "0123456789abcdef";


/* the short escapes of JSON, 0 where \u00XX is needed */

static const char  ngx_http_stockprice_render_short_escape[32] = {
    0, 0, 0, 0, 0, 0, 0, 0, 'b', 't', 'n', 0, 'f', 'r', 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};


/*
 * 1: a byte that JSON strings escape ('"', '\\', controls and DEL), or
 * one of a multibyte character, to be checked
 */

static const unsigned char  ngx_http_stockprice_render_escaped[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
};


/* in the order of the values in render_status_prometheus() */

static const ngx_http_stockprice_metric_t
    ngx_http_stockprice_render_metrics[NGX_HTTP_STOCKPRICE_NMETRICS] =
{
    { "stockprice_symbols", "gauge", "Symbols in the zone." },
    { "stockprice_records", "gauge", "Records kept in the zone." },
    { "stockprice_refreshes_total", "counter", "Successful refreshes." },
    { "stockprice_failures_total", "counter", "Failed refreshes." },
    { "stockprice_partial_refreshes_total", "counter",
      "Successful refreshes in which some of the requests failed." },
    { "stockprice_consecutive_failures", "gauge",
      "Failed refreshes since the last success." },
    { "stockprice_auth_calls_total", "counter", "Authentication requests." },
    { "stockprice_skipped_records_total", "counter",
      "Upstream records skipped as invalid." },
    { "stockprice_replaced_value_times_total", "counter",
      "Value times not valid, replaced by the measurement time." },
    { "stockprice_last_success_timestamp_seconds", "gauge",
      "Unix time of the last successful refresh, 0 if none." },
    { "stockprice_next_refresh_timestamp_seconds", "gauge",
      "Unix time of the next refresh, 0 if unknown." },
    { "stockprice_authenticated", "gauge", "1 if a token is held." },
    { "stockprice_rate_limited_until_timestamp_seconds", "gauge",
      "Unix time before which the upstream asked not to be called, 0 if "
      "none." },
    { "stockprice_zone_bytes_used", "gauge", "Zone bytes in use." },
    { "stockprice_zone_size_bytes", "gauge", "Zone size in bytes." },
    { "stockprice_zone_bytes_needed", "gauge",
      "Zone size the sizing rule asks for the symbols held." },
    { "stockprice_streams", "gauge", "Event streams open, all workers." },
    { "stockprice_active_upstream", "gauge",
      "The upstream that answered last: 0 the prices URL, 1... its backups "
      "in order, -1 if none yet." },
    { "stockprice_restored_records", "gauge",
      "Records loaded from the state file at start." }
};


/* the refresh duration histogram's upper bounds, ms and as Prometheus has them */

static const uint32_t  ngx_http_stockprice_render_duration_le_ms[
                           NGX_HTTP_STOCKPRICE_DURATION_BUCKETS] =
{
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
};

static const char  *ngx_http_stockprice_render_duration_le[
                        NGX_HTTP_STOCKPRICE_DURATION_BUCKETS + 1] =
{
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "10", "+Inf"
};

static const char  *ngx_http_stockprice_render_answer_names[
                        NGX_HTTP_STOCKPRICE_ANSWER_CLASSES] =
{
    "1xx", "2xx", "3xx", "4xx", "5xx", "none"
};


size_t
ngx_http_stockprice_render_escape(char *dst, const char *src, size_t len)
{
    size_t         i, k, n;
    unsigned char  c;

    /* most strings need no escape at all: one scan, one copy */

    for (i = 0; i < len; i++) {
        if (ngx_http_stockprice_render_escaped[(unsigned char) src[i]]) {
            break;
        }
    }

    if (dst) {
        memcpy(dst, src, i);
    }

    n = i;

    for ( /* void */ ; i < len; i++) {
        c = (unsigned char) src[i];

        if (c == '"' || c == '\\') {
            if (dst) {
                dst[n] = '\\';
                dst[n + 1] = (char) c;
            }

            n += 2;
            continue;
        }

        if (c < 0x20 && ngx_http_stockprice_render_short_escape[c]) {
            if (dst) {
                dst[n] = '\\';
                dst[n + 1] = ngx_http_stockprice_render_short_escape[c];
            }

            n += 2;
            continue;
        }

        if (c < 0x20 || c == 0x7f) {
            if (dst) {
                memcpy(dst + n, "\\u00", 4);
                dst[n + 4] = ngx_http_stockprice_render_hex[c >> 4];
                dst[n + 5] = ngx_http_stockprice_render_hex[c & 0xf];
            }

            n += 6;
            continue;
        }

        if (c >= 0x80) {
            /* a valid character as it is, any other byte as U+FFFD */

            k = ngx_http_stockprice_parse_utf8((const unsigned char *) src + i,
                                               len - i);
            if (k == 0) {
                if (dst) {
                    memcpy(dst + n, "\\ufffd", 6);
                }

                n += 6;
                continue;
            }

            if (dst) {
                memcpy(dst + n, src + i, k);
            }

            n += k;
            i += k - 1;
            continue;
        }

        if (dst) {
            dst[n] = (char) c;
        }

        n++;
    }

    return n;
}


size_t
ngx_http_stockprice_render_price(char *buf, double price)
{
    int  n, precision;

    /* parse refuses these; never write a number JSON does not have */

    if (!isfinite(price)) {
        memcpy(buf, "null", 4);
        return 4;
    }

    n = ngx_http_stockprice_render_decimal(buf, price);
    if (n) {
        return (size_t) n;
    }

    /*
     * a normal double's shortest form has at most 15 digits or needs 16
     * or 17, and %.15g strips the zeros of a shorter one; a subnormal
     * has fewer bits, so fewer digits may do
     */

    if (price != 0 && fabs(price) < DBL_MIN) {
        return ngx_http_stockprice_render_fewest(buf, price);
    }

    for (precision = 15; precision <= 17; precision++) {
        n = snprintf(buf, NGX_HTTP_STOCKPRICE_PRICE_LEN, "%.*g", precision,
                     price);

        if (strtod(buf, NULL) == price) {
            break;
        }
    }

    return (size_t) n;
}


static size_t
ngx_http_stockprice_render_fewest(char *buf, double price)
{
    int  n, precision;

    /* rare enough to try them all; %.17g reads back for every double */

    for (precision = 1; precision <= 17; precision++) {
        n = snprintf(buf, NGX_HTTP_STOCKPRICE_PRICE_LEN, "%.*g", precision,
                     price);

        if (strtod(buf, NULL) == price) {
            break;
        }
    }

    return (size_t) n;
}


/* the length of "s" without a character cut short at its end */

size_t
ngx_http_stockprice_render_utf8_cut(const char *s, size_t len)
{
    size_t         i, need;
    unsigned char  c;

    for (i = len; i > 0 && len - i < 4; i--) {
        c = (unsigned char) s[i - 1];

        if ((c & 0xc0) == 0x80) {
            continue;
        }

        need = (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4 : 1;

        return (len - (i - 1) < need) ? i - 1 : len;
    }

    return len;
}


/*
 * The common case without printf(): a price that is exactly the double
 * nearest to some decimal k / 10^6 with |k| < 10^15.  That decimal has at
 * most 15 significant digits and reads back as the price, so it is what
 * "%.15g" writes, trailing zeros dropped.  0: not such a price (or too
 * small for "%g" to write it without an exponent).
 */

static int
ngx_http_stockprice_render_decimal(char *buf, double price)
{
    int        n, i, frac;
    char       digits[24];
    double     a, scaled;
    long long  k, ip, fp;

    a = fabs(price);

    if (!(a >= 1e-4 && a < 1e9)) {
        return 0;
    }

    /* rounded to the nearest (a is positive); no libm in the module */
    scaled = a * 1e6 + 0.5;
    k = (long long) scaled;

    if ((double) k / 1e6 != a) {
        return 0;
    }

    ip = k / 1000000;
    fp = k % 1000000;

    n = 0;

    if (price < 0) {
        buf[n++] = '-';
    }

    i = 0;

    do {
        digits[i++] = (char) ('0' + ip % 10);
        ip /= 10;
    } while (ip);

    while (i) {
        buf[n++] = digits[--i];
    }

    if (fp) {
        buf[n++] = '.';

        frac = 6;

        while (fp % 10 == 0) {
            fp /= 10;
            frac--;
        }

        for (i = frac - 1; i >= 0; i--) {
            digits[i] = (char) ('0' + fp % 10);
            fp /= 10;
        }

        memcpy(buf + n, digits, frac);
        n += frac;
    }

    return n;
}


size_t
ngx_http_stockprice_render_time(char *buf, int64_t sec, long usec)
{
    if (sec < NGX_HTTP_STOCKPRICE_SEC_FIRST) {
        sec = NGX_HTTP_STOCKPRICE_SEC_FIRST;

    } else if (sec > NGX_HTTP_STOCKPRICE_SEC_LAST) {
        sec = NGX_HTTP_STOCKPRICE_SEC_LAST;
    }

    if (usec < 0 || usec > 999999) {
        usec = 0;
    }

    ngx_http_stockprice_render_civil(buf, sec);

    buf[19] = '.';
    ngx_http_stockprice_render_digits(buf + 20, usec, 6);
    buf[26] = 'Z';
    buf[27] = '\0';

    return 27;
}


size_t
ngx_http_stockprice_render_ticks(char *buf, int64_t sec, long ticks)
{
    int  digits;

    if (sec < NGX_HTTP_STOCKPRICE_SEC_FIRST
        || sec > NGX_HTTP_STOCKPRICE_SEC_LAST
        || ticks < 0 || ticks > 9999999)
    {
        return 0;
    }

    ngx_http_stockprice_render_civil(buf, sec);

    if (ticks == 0) {
        buf[19] = 'Z';
        buf[20] = '\0';
        return 20;
    }

    for (digits = 7; ticks % 10 == 0; digits--) {
        ticks /= 10;
    }

    buf[19] = '.';
    ngx_http_stockprice_render_digits(buf + 20, ticks, digits);
    buf[20 + digits] = 'Z';
    buf[21 + digits] = '\0';

    return 21 + digits;
}


/* "n" in exactly "width" digits, leading zeros kept; two at a time */

static void
ngx_http_stockprice_render_digits(char *buf, long n, int width)
{
    static const char  pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233"
        "34353637383940414243444546474849505152535455565758596061626364656667"
        "6869707172737475767778798081828384858687888990919293949596979899";

    while (width >= 2) {
        width -= 2;
        memcpy(buf + width, &pairs[n % 100 * 2], 2);
        n /= 100;
    }

    if (width) {
        buf[0] = (char) ('0' + n % 10);
    }
}


/*
 * "YYYY-MM-DDTHH:MM:SS" of unix time "sec" within years 0000..9999, the
 * 19 bytes without a NUL; by hand, as snprintf() was half the cost of a
 * refresh's epoch times
 */

static void
ngx_http_stockprice_render_civil(char *buf, int64_t sec)
{
    int64_t        days, secs, z, era, doe, yoe, y, doy, mp, d, m;
    static char    date[10];
    static int64_t date_days = INT64_MIN;

    days = sec / 86400;
    secs = sec % 86400;

    if (secs < 0) {
        secs += 86400;
        days--;
    }

    /* the times of one body are of a day or two, as a rule */

    if (days == date_days) {
        memcpy(buf, date, 10);
        goto time;
    }

    /* civil from days, Howard Hinnant's algorithm: no gmtime(), no tz */

    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += (m <= 2);

    ngx_http_stockprice_render_digits(buf, (long) y, 4);
    buf[4] = '-';
    ngx_http_stockprice_render_digits(buf + 5, (long) m, 2);
    buf[7] = '-';
    ngx_http_stockprice_render_digits(buf + 8, (long) d, 2);

    memcpy(date, buf, 10);
    date_days = days;

time:

    buf[10] = 'T';
    ngx_http_stockprice_render_digits(buf + 11, (long) (secs / 3600), 2);
    buf[13] = ':';
    ngx_http_stockprice_render_digits(buf + 14, (long) (secs / 60 % 60), 2);
    buf[16] = ':';
    ngx_http_stockprice_render_digits(buf + 17, (long) (secs % 60), 2);
}


void
ngx_http_stockprice_render_uuid(char *buf, const unsigned char rnd[16])
{
    int            i, n;
    unsigned char  b;

    n = 0;

    for (i = 0; i < 16; i++) {
        b = rnd[i];

        if (i == 6) {
            b = (unsigned char) ((b & 0x0f) | 0x40);

        } else if (i == 8) {
            b = (unsigned char) ((b & 0x3f) | 0x80);
        }

        if (i == 4 || i == 6 || i == 8 || i == 10) {
            buf[n++] = '-';
        }

        buf[n++] = ngx_http_stockprice_render_hex[b >> 4];
        buf[n++] = ngx_http_stockprice_render_hex[b & 0xf];
    }
}


size_t
ngx_http_stockprice_render_record(char *dst,
    const ngx_http_stockprice_record_t *rec, const char *mtime,
    size_t mtime_len)
{
    size_t       n, plen, vt_len;
    const char  *vt;
    char         price[NGX_HTTP_STOCKPRICE_PRICE_LEN];

    if (rec->value_time_len) {
        vt = rec->value_time;
        vt_len = rec->value_time_len;

    } else {
        vt = mtime;
        vt_len = mtime_len;
    }

    plen = ngx_http_stockprice_render_price(price, rec->price);

    n = ngx_http_stockprice_render_put(dst, 0, "{\"id\":\"", 7);
    n += ngx_http_stockprice_render_put(dst, n, rec->id,
                                        NGX_HTTP_STOCKPRICE_UUID_LEN);
    n += ngx_http_stockprice_render_put(dst, n, "\",\"symbol\":", 11);
    n += ngx_http_stockprice_render_put_str(dst, n, rec->symbol,
                                            rec->symbol_len);
    n += ngx_http_stockprice_render_put(dst, n, ",\"price\":", 9);
    n += ngx_http_stockprice_render_put(dst, n, price, plen);
    n += ngx_http_stockprice_render_put(dst, n, ",\"valueDateTime\":\"", 18);
    n += ngx_http_stockprice_render_put(dst, n, vt, vt_len);
    n += ngx_http_stockprice_render_put(dst, n,
                                        "\",\"measurementTimeStamp\":\"", 26);
    n += ngx_http_stockprice_render_put(dst, n, mtime, mtime_len);
    n += ngx_http_stockprice_render_put(dst, n, "\"}", 2);

    return n;
}


/*
 * application/x-www-form-urlencoded (RFC 6749 appendix B): letters,
 * digits and "-._~" as they are, a blank as "+", any other byte %XX
 */

size_t
ngx_http_stockprice_render_form(char *dst, const char *src, size_t len)
{
    return ngx_http_stockprice_render_percent(dst, src, len, 1);
}


/* RFC 3986: unreserved characters as they are, any other byte %XX */

size_t
ngx_http_stockprice_render_uri(char *dst, const char *src, size_t len)
{
    return ngx_http_stockprice_render_percent(dst, src, len, 0);
}


static size_t
ngx_http_stockprice_render_percent(char *dst, const char *src, size_t len,
    int form)
{
    size_t         i, n;
    unsigned char  c;

    for (i = 0, n = 0; i < len; i++) {
        c = (unsigned char) src[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~')
        {
            if (dst) {
                dst[n] = (char) c;
            }

            n++;
            continue;
        }

        if (c == ' ' && form) {
            if (dst) {
                dst[n] = '+';
            }

            n++;
            continue;
        }

        if (dst) {
            dst[n] = '%';
            dst[n + 1] = "0123456789ABCDEF"[c >> 4];
            dst[n + 2] = "0123456789ABCDEF"[c & 0xf];
        }

        n += 3;
    }

    return n;
}


size_t
ngx_http_stockprice_render_credentials(char *dst, const char *user,
    size_t user_len, const char *password, size_t password_len)
{
    size_t  n;

    n = ngx_http_stockprice_render_put(dst, 0, "{\"username\":", 12);
    n += ngx_http_stockprice_render_put_str(dst, n, user, user_len);
    n += ngx_http_stockprice_render_put(dst, n, ",\"password\":", 12);
    n += ngx_http_stockprice_render_put_str(dst, n, password, password_len);
    n += ngx_http_stockprice_render_put(dst, n, "}", 1);

    return n;
}


size_t
ngx_http_stockprice_render_error(char *dst, const char *msg, size_t len)
{
    size_t  n;

    n = ngx_http_stockprice_render_put(dst, 0, "{\"error\":", 9);
    n += ngx_http_stockprice_render_put_str(dst, n, msg, len);
    n += ngx_http_stockprice_render_put(dst, n, "}", 1);

    return n;
}


void
ngx_http_stockprice_render_duration_add(ngx_http_stockprice_traffic_t *t,
    uint64_t us)
{
    size_t  i;

    for (i = 0; i < NGX_HTTP_STOCKPRICE_DURATION_BUCKETS; i++) {
        if (us <= (uint64_t) ngx_http_stockprice_render_duration_le_ms[i]
                  * 1000)
        {
            break;
        }
    }

    t->duration_bucket[i]++;
    t->duration_count++;
    t->duration_sum_us += us;
}


unsigned
ngx_http_stockprice_render_answer_class(long status)
{
    if (status >= 100 && status <= 599) {
        return (unsigned) (status / 100 - 1);
    }

    return NGX_HTTP_STOCKPRICE_ANSWER_NONE;
}


size_t
ngx_http_stockprice_render_status_json(char *dst,
    const ngx_http_stockprice_status_t *st)
{
    size_t                                n, i;
    uint64_t                              sum;
    const char                           *name;
    const ngx_http_stockprice_traffic_t  *t;

    t = &st->traffic;

    n = ngx_http_stockprice_render_put(dst, 0, "{\"zone\":", 8);
    n += ngx_http_stockprice_render_put_str(dst, n, st->zone, st->zone_len);
    n += ngx_http_stockprice_render_put_field(dst, n, "symbols", st->symbols);
    n += ngx_http_stockprice_render_put_field(dst, n, "records", st->records);
    n += ngx_http_stockprice_render_put_field(dst, n, "refreshes",
                                              st->refreshes);
    n += ngx_http_stockprice_render_put_field(dst, n, "failures", st->failures);
    n += ngx_http_stockprice_render_put_field(dst, n, "partialRefreshes",
                                              st->partial_refreshes);
    n += ngx_http_stockprice_render_put_field(dst, n, "consecutiveFailures",
                                              st->consecutive_failures);
    n += ngx_http_stockprice_render_put_field(dst, n, "authCalls",
                                              st->auth_calls);
    n += ngx_http_stockprice_render_put_field(dst, n, "skippedRecords",
                                              st->skipped);
    n += ngx_http_stockprice_render_put_field(dst, n, "replacedValueTimes",
                                              st->replaced_times);

    n += ngx_http_stockprice_render_put(dst, n, ",\"lastSuccess\":", 15);
    n += ngx_http_stockprice_render_put_time(dst, n, st->last_success_ms);

    n += ngx_http_stockprice_render_put(dst, n, ",\"lastError\":", 13);

    if (st->last_error) {
        n += ngx_http_stockprice_render_put_str(dst, n, st->last_error,
                                                st->last_error_len);

    } else {
        n += ngx_http_stockprice_render_put(dst, n, "null", 4);
    }

    n += ngx_http_stockprice_render_put(dst, n, ",\"nextRefresh\":", 15);
    n += ngx_http_stockprice_render_put_time(dst, n, st->next_refresh_ms);

    n += ngx_http_stockprice_render_put(dst, n, ",\"rateLimitedUntil\":", 20);
    n += ngx_http_stockprice_render_put_time(dst, n, st->rate_limited_ms);

    n += ngx_http_stockprice_render_put(dst, n, ",\"activeUpstream\":", 18);

    if (st->active_upstream >= 0) {
        n += ngx_http_stockprice_render_put_u64(dst, n,
                                           (uint64_t) st->active_upstream);

    } else {
        n += ngx_http_stockprice_render_put(dst, n, "null", 4);
    }

    n += ngx_http_stockprice_render_put_field(dst, n, "restored",
                                              st->restored);
    n += ngx_http_stockprice_render_put(dst, n, ",\"authenticated\":", 17);

    if (st->authenticated) {
        n += ngx_http_stockprice_render_put(dst, n, "true", 4);

    } else {
        n += ngx_http_stockprice_render_put(dst, n, "false", 5);
    }

    n += ngx_http_stockprice_render_put_field(dst, n, "zoneBytesUsed",
                                              st->zone_bytes_used);
    n += ngx_http_stockprice_render_put_field(dst, n, "zoneBytesTotal",
                                              st->zone_bytes_total);
    n += ngx_http_stockprice_render_put_field(dst, n, "zoneBytesNeeded",
                                              st->zone_bytes_needed);
    n += ngx_http_stockprice_render_put_field(dst, n, "streams",
                                              st->streams);
    n += ngx_http_stockprice_render_put_field(dst, n, "upstreamResponseBytes",
                                              t->response_bytes);

    n += ngx_http_stockprice_render_put(dst, n, ",\"upstreamResponses\":{",
                                        22);

    for (i = 0; i < NGX_HTTP_STOCKPRICE_ANSWER_CLASSES; i++) {
        name = ngx_http_stockprice_render_answer_names[i];

        n += ngx_http_stockprice_render_put(dst, n, i ? ",\"" : "\"",
                                            i ? 2 : 1);
        n += ngx_http_stockprice_render_put(dst, n, name, strlen(name));
        n += ngx_http_stockprice_render_put(dst, n, "\":", 2);
        n += ngx_http_stockprice_render_put_u64(dst, n, t->answers[i]);
    }

    n += ngx_http_stockprice_render_put(dst, n, "},\"refreshDuration\":{", 21);
    n += ngx_http_stockprice_render_put(dst, n, "\"count\":", 8);
    n += ngx_http_stockprice_render_put_u64(dst, n, t->duration_count);
    n += ngx_http_stockprice_render_put(dst, n, ",\"sum\":", 7);
    n += ngx_http_stockprice_render_put_seconds(dst, n, t->duration_sum_us);
    n += ngx_http_stockprice_render_put(dst, n, ",\"buckets\":{", 12);

    for (i = 0, sum = 0; i <= NGX_HTTP_STOCKPRICE_DURATION_BUCKETS; i++) {
        name = ngx_http_stockprice_render_duration_le[i];
        sum += t->duration_bucket[i];

        n += ngx_http_stockprice_render_put(dst, n, i ? ",\"" : "\"",
                                            i ? 2 : 1);
        n += ngx_http_stockprice_render_put(dst, n, name, strlen(name));
        n += ngx_http_stockprice_render_put(dst, n, "\":", 2);
        n += ngx_http_stockprice_render_put_u64(dst, n, sum);
    }

    n += ngx_http_stockprice_render_put(dst, n, "}}}", 3);

    return n;
}


size_t
ngx_http_stockprice_render_status_prometheus(char *dst,
    const ngx_http_stockprice_status_t *st)
{
    size_t                               i, n;
    uint64_t                             values[NGX_HTTP_STOCKPRICE_NMETRICS];
    const ngx_http_stockprice_metric_t  *m;

    values[0] = st->symbols;
    values[1] = st->records;
    values[2] = st->refreshes;
    values[3] = st->failures;
    values[4] = st->partial_refreshes;
    values[5] = st->consecutive_failures;
    values[6] = st->auth_calls;
    values[7] = st->skipped;
    values[8] = st->replaced_times;
    values[9] = st->last_success_ms > 0
                ? (uint64_t) st->last_success_ms / 1000 : 0;
    values[10] = st->next_refresh_ms > 0
                 ? (uint64_t) st->next_refresh_ms / 1000 : 0;
    values[11] = st->authenticated ? 1 : 0;
    values[12] = st->rate_limited_ms > 0
                 ? (uint64_t) st->rate_limited_ms / 1000 : 0;
    values[13] = st->zone_bytes_used;
    values[14] = st->zone_bytes_total;
    values[15] = st->zone_bytes_needed;
    values[16] = st->streams;
    values[NGX_HTTP_STOCKPRICE_METRIC_ACTIVE] =
        st->active_upstream >= 0 ? (uint64_t) st->active_upstream : 0;
    values[18] = st->restored;

    n = 0;

    for (i = 0; i < NGX_HTTP_STOCKPRICE_NMETRICS; i++) {
        m = &ngx_http_stockprice_render_metrics[i];

        n += ngx_http_stockprice_render_put(dst, n, "# HELP ", 7);
        n += ngx_http_stockprice_render_put(dst, n, m->name, strlen(m->name));
        n += ngx_http_stockprice_render_put(dst, n, " ", 1);
        n += ngx_http_stockprice_render_put(dst, n, m->help, strlen(m->help));
        n += ngx_http_stockprice_render_put(dst, n, "\n# TYPE ", 8);
        n += ngx_http_stockprice_render_put(dst, n, m->name, strlen(m->name));
        n += ngx_http_stockprice_render_put(dst, n, " ", 1);
        n += ngx_http_stockprice_render_put(dst, n, m->type, strlen(m->type));
        n += ngx_http_stockprice_render_put(dst, n, "\n", 1);
        n += ngx_http_stockprice_render_put(dst, n, m->name, strlen(m->name));
        n += ngx_http_stockprice_render_put(dst, n, "{zone=\"", 7);
        n += ngx_http_stockprice_render_put_label(dst, n, st->zone,
                                                  st->zone_len);
        n += ngx_http_stockprice_render_put(dst, n, "\"} ", 3);

        if (i == NGX_HTTP_STOCKPRICE_METRIC_ACTIVE && st->active_upstream < 0) {
            n += ngx_http_stockprice_render_put(dst, n, "-1", 2);

        } else {
            n += ngx_http_stockprice_render_put_u64(dst, n, values[i]);
        }

        n += ngx_http_stockprice_render_put(dst, n, "\n", 1);
    }

    n += ngx_http_stockprice_render_put_histogram(dst, n, st);

    return n;
}


/*
 * The refresh duration histogram, the upstream's bytes and its answers by
 * status class
 */

static size_t
ngx_http_stockprice_render_put_histogram(char *dst, size_t n,
    const ngx_http_stockprice_status_t *st)
{
    size_t                                m, i;
    uint64_t                              sum;
    const ngx_http_stockprice_traffic_t  *t;

    static const char  duration[] =
        "# HELP stockprice_refresh_duration_seconds Refreshes by how long "
        "they took, from the first upstream request to the end, failed "
        "ones too.\n"
        "# TYPE stockprice_refresh_duration_seconds histogram\n";

    static const char  bytes[] =
        "# HELP stockprice_upstream_response_bytes_total Bytes of the "
        "upstream's response bodies.\n"
        "# TYPE stockprice_upstream_response_bytes_total counter\n";

    static const char  answers[] =
        "# HELP stockprice_upstream_responses_total Upstream answers by "
        "status class (none: no HTTP answer, e.g. a timeout).\n"
        "# TYPE stockprice_upstream_responses_total counter\n";

    t = &st->traffic;

    m = ngx_http_stockprice_render_put(dst, n, duration,
                                       sizeof(duration) - 1);

    for (i = 0, sum = 0; i <= NGX_HTTP_STOCKPRICE_DURATION_BUCKETS; i++) {
        sum += t->duration_bucket[i];
        m += ngx_http_stockprice_render_put_sample(dst, n + m, st,
                 "stockprice_refresh_duration_seconds_bucket{zone=\"",
                 ngx_http_stockprice_render_duration_le[i], sum);
    }

    m += ngx_http_stockprice_render_put(dst, n + m,
             "stockprice_refresh_duration_seconds_sum{zone=\"", 46);
    m += ngx_http_stockprice_render_put_label(dst, n + m, st->zone,
                                              st->zone_len);
    m += ngx_http_stockprice_render_put(dst, n + m, "\"} ", 3);
    m += ngx_http_stockprice_render_put_seconds(dst, n + m,
                                                t->duration_sum_us);
    m += ngx_http_stockprice_render_put(dst, n + m, "\n", 1);

    m += ngx_http_stockprice_render_put_sample(dst, n + m, st,
             "stockprice_refresh_duration_seconds_count{zone=\"", NULL,
             t->duration_count);

    m += ngx_http_stockprice_render_put(dst, n + m, bytes, sizeof(bytes) - 1);
    m += ngx_http_stockprice_render_put_sample(dst, n + m, st,
             "stockprice_upstream_response_bytes_total{zone=\"", NULL,
             t->response_bytes);

    m += ngx_http_stockprice_render_put(dst, n + m, answers,
                                        sizeof(answers) - 1);

    for (i = 0; i < NGX_HTTP_STOCKPRICE_ANSWER_CLASSES; i++) {
        m += ngx_http_stockprice_render_put_sample(dst, n + m, st,
                 "stockprice_upstream_responses_total{zone=\"",
                 ngx_http_stockprice_render_answer_names[i], t->answers[i]);
    }

    return m;
}


/*
 * "name{zone="" then the zone, then a label ("le" for the histogram's
 * buckets, "status" for the answers) if any, and the value
 */

static size_t
ngx_http_stockprice_render_put_sample(char *dst, size_t n,
    const ngx_http_stockprice_status_t *st, const char *name,
    const char *label, uint64_t v)
{
    size_t  m;

    m = ngx_http_stockprice_render_put(dst, n, name, strlen(name));
    m += ngx_http_stockprice_render_put_label(dst, n + m, st->zone,
                                              st->zone_len);

    if (label) {
        if (strstr(name, "_bucket{")) {
            m += ngx_http_stockprice_render_put(dst, n + m, "\",le=\"", 6);

        } else {
            m += ngx_http_stockprice_render_put(dst, n + m, "\",status=\"", 10);
        }

        m += ngx_http_stockprice_render_put(dst, n + m, label, strlen(label));
    }

    m += ngx_http_stockprice_render_put(dst, n + m, "\"} ", 3);
    m += ngx_http_stockprice_render_put_u64(dst, n + m, v);
    m += ngx_http_stockprice_render_put(dst, n + m, "\n", 1);

    return m;
}


/* microseconds as seconds with six decimals */

static size_t
ngx_http_stockprice_render_put_seconds(char *dst, size_t n, uint64_t us)
{
    size_t  m;
    char    frac[7];

    m = ngx_http_stockprice_render_put_u64(dst, n, us / 1000000);

    frac[0] = '.';
    ngx_http_stockprice_render_digits(frac + 1, (long) (us % 1000000), 6);

    m += ngx_http_stockprice_render_put(dst, n + m, frac, 7);

    return m;
}


size_t
ngx_http_stockprice_render_put(char *dst, size_t n, const char *s, size_t len)
{
    if (dst && len) {
        memcpy(dst + n, s, len);
    }

    return len;
}


size_t
ngx_http_stockprice_render_put_str(char *dst, size_t n, const char *s,
    size_t len)
{
    size_t  m;

    m = ngx_http_stockprice_render_put(dst, n, "\"", 1);
    m += ngx_http_stockprice_render_escape(dst ? dst + n + m : NULL, s, len);
    m += ngx_http_stockprice_render_put(dst, n + m, "\"", 1);

    return m;
}


size_t
ngx_http_stockprice_render_put_u64(char *dst, size_t n, uint64_t v)
{
    char    buf[24];
    size_t  len;

    len = sizeof(buf);

    do {
        buf[--len] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    return ngx_http_stockprice_render_put(dst, n, buf + len, sizeof(buf) - len);
}


/* ,"name":value */

static size_t
ngx_http_stockprice_render_put_field(char *dst, size_t n, const char *name,
    uint64_t v)
{
    size_t  m;

    m = ngx_http_stockprice_render_put(dst, n, ",\"", 2);
    m += ngx_http_stockprice_render_put(dst, n + m, name, strlen(name));
    m += ngx_http_stockprice_render_put(dst, n + m, "\":", 2);
    m += ngx_http_stockprice_render_put_u64(dst, n + m, v);

    return m;
}


static size_t
ngx_http_stockprice_render_put_time(char *dst, size_t n, int64_t ms)
{
    size_t  len;
    char    buf[NGX_HTTP_STOCKPRICE_ISO_LEN];

    if (ms < 0) {
        return ngx_http_stockprice_render_put(dst, n, "null", 4);
    }

    len = ngx_http_stockprice_render_time(buf, ms / 1000,
                                          (long) (ms % 1000) * 1000);

    return ngx_http_stockprice_render_put_str(dst, n, buf, len);
}


/* a label value of the text exposition format: \\, \" and \n escaped */

static size_t
ngx_http_stockprice_render_put_label(char *dst, size_t n, const char *s,
    size_t len)
{
    size_t  i, m;

    m = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '\\' || s[i] == '"') {
            m += ngx_http_stockprice_render_put(dst, n + m, "\\", 1);
            m += ngx_http_stockprice_render_put(dst, n + m, &s[i], 1);

        } else if (s[i] == '\n') {
            m += ngx_http_stockprice_render_put(dst, n + m, "\\n", 2);

        } else {
            m += ngx_http_stockprice_render_put(dst, n + m, &s[i], 1);
        }
    }

    return m;
}
