
/*
 * Copyright (C) ngx_stockprice authors
 */


#ifndef _NGX_HTTP_STOCKPRICE_RENDER_H_INCLUDED_
#define _NGX_HTTP_STOCKPRICE_RENDER_H_INCLUDED_


/*
 * Records to bytes.  Plain C99: no nginx headers, no logging, no globals.
 * Every function that takes "dst" follows nginx's two-pass idiom: called
 * with dst == NULL it only returns the length it would write; called with
 * a buffer at least that long it writes and returns the same length.
 * Nothing is NUL-terminated.
 */


#include <stddef.h>
#include <stdint.h>

#include <ngx_http_stockprice_parse.h>


#define NGX_HTTP_STOCKPRICE_PRICE_LEN  32   /* enough for any double */
#define NGX_HTTP_STOCKPRICE_ISO_LEN    32   /* "2024-05-01T10:53:36.791231Z" */

/* the longest that render_price() and render_time() write */
#define NGX_HTTP_STOCKPRICE_PRICE_MAX  24   /* "-2.2250738585072014e-308" */
#define NGX_HTTP_STOCKPRICE_ISO_MAX    27

/* a record as served, at its longest: symbol escaped, times at most */
#define NGX_HTTP_STOCKPRICE_RECORD_LONGEST                                    \
    (sizeof("{\"id\":\"\",\"symbol\":\"\",\"price\":,\"valueDateTime\":\"\","  \
            "\"measurementTimeStamp\":\"\"}") - 1                             \
     + NGX_HTTP_STOCKPRICE_UUID_LEN + 2 * NGX_HTTP_STOCKPRICE_SYMBOL_MAX      \
     + NGX_HTTP_STOCKPRICE_PRICE_MAX + NGX_HTTP_STOCKPRICE_TIME_MAX           \
     + NGX_HTTP_STOCKPRICE_ISO_MAX)


/*
 * What the refreshes cost and what the upstream answered, for the status:
 * a histogram of refresh durations (the upper bounds of its buckets in
 * ngx_http_stockprice_render_duration_le_ms[], in ms, then one beyond
 * them; each bucket counts its own, not cumulative), the bytes of the
 * upstream's response bodies, its answers by status class
 */

#define NGX_HTTP_STOCKPRICE_DURATION_BUCKETS  11
#define NGX_HTTP_STOCKPRICE_ANSWER_NONE       5    /* no HTTP answer */
#define NGX_HTTP_STOCKPRICE_ANSWER_CLASSES    6    /* 1xx .. 5xx, none */

typedef struct {
    uint64_t                        duration_count;
    uint64_t                        duration_sum_us;
    uint64_t                        duration_bucket[
                                        NGX_HTTP_STOCKPRICE_DURATION_BUCKETS
                                        + 1];
    uint64_t                        response_bytes;
    uint64_t                        answers[
                                        NGX_HTTP_STOCKPRICE_ANSWER_CLASSES];
} ngx_http_stockprice_traffic_t;


typedef struct {
    const char                     *zone;
    size_t                          zone_len;
    uint64_t                        symbols;
    uint64_t                        records;
    uint64_t                        refreshes;      /* successful */
    uint64_t                        failures;
    uint64_t                        partial_refreshes;
    uint64_t                        consecutive_failures;
    uint64_t                        auth_calls;
    uint64_t                        skipped;        /* records skipped */
    uint64_t                        replaced_times; /* value times */
    int64_t                         last_success_ms;  /* unix ms, <0: never */
    int64_t                         next_refresh_ms;  /* unix ms, <0: unknown */
    int64_t                         rate_limited_ms;  /* unix ms, <0: none */
    int64_t                         active_upstream;  /* <0: none yet */
    const char                     *last_error;     /* NULL: null */
    size_t                          last_error_len;
    int                             authenticated;
    uint64_t                        zone_bytes_used;
    uint64_t                        zone_bytes_total;
    uint64_t                        zone_bytes_needed;  /* by the rule */
    uint64_t                        streams;    /* open, all workers */
    uint64_t                        restored;   /* records, from state= */
    ngx_http_stockprice_traffic_t   traffic;
} ngx_http_stockprice_status_t;


/* a refresh of "us" microseconds into the histogram; a status class */
void ngx_http_stockprice_render_duration_add(
    ngx_http_stockprice_traffic_t *t, uint64_t us);
unsigned ngx_http_stockprice_render_answer_class(long status);


/*
 * JSON string contents: '"', '\\' and control characters escaped, bytes
 * that are not UTF-8 replaced by U+FFFD ("\ufffd"): valid UTF-8 JSON
 */
size_t ngx_http_stockprice_render_escape(char *dst, const char *src,
    size_t len);

/*
 * Two-pass writers, as the render functions use them: at dst + n, or with
 * dst NULL only the length; a string quoted and escaped; a decimal number
 */
size_t ngx_http_stockprice_render_put(char *dst, size_t n, const char *s,
    size_t len);
size_t ngx_http_stockprice_render_put_str(char *dst, size_t n, const char *s,
    size_t len);
size_t ngx_http_stockprice_render_put_u64(char *dst, size_t n, uint64_t v);

/* the length of "s" without a multibyte character cut short at its end */
size_t ngx_http_stockprice_render_utf8_cut(const char *s, size_t len);

/*
 * The fewest digits that read back as the same double: up to 6 decimals
 * without printf, else the first of %.15g, %.16g, %.17g that strtod()
 * returns exactly, and for a subnormal the fewest of %.1g..%.17g (its
 * precision is lower: 5e-324, not 4.94065645841247e-324).  Writes at most
 * NGX_HTTP_STOCKPRICE_PRICE_LEN bytes into buf; returns the length.
 */
size_t ngx_http_stockprice_render_price(char *buf, double price);

/*
 * ISO-8601 UTC with microseconds: "2024-05-01T10:53:36.791231Z".  Returns
 * the length, always 27; buf needs NGX_HTTP_STOCKPRICE_ISO_LEN bytes.  "sec"
 * is unix time, clamped to years 0000..9999; "usec" outside 0..999999 is 0.
 */
size_t ngx_http_stockprice_render_time(char *buf, int64_t sec, long usec);

/*
 * The same with "ticks" of 100 ns (0..9999999) and as few fraction digits
 * as they need, none for 0: "2024-01-01T00:00:00.5Z".  Returns 0, writing
 * nothing, when "sec" is outside years 0000..9999.
 */
size_t ngx_http_stockprice_render_ticks(char *buf, int64_t sec, long ticks);

/* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" from 16 random bytes (36 bytes) */
void ngx_http_stockprice_render_uuid(char *buf, const unsigned char rnd[16]);

/*
 * One record as the clients see it:
 * {"id":"…","symbol":"…","price":…,"valueDateTime":"…",
 *  "measurementTimeStamp":"…"}
 * rec->has_id must be set (the caller makes an id first).  When
 * rec->value_time_len is 0, "mtime" is used for valueDateTime too.  Only
 * the symbol is escaped: the id, the value time (as the parser accepts
 * them: parse_uuid_valid(), parse_time_valid()) and "mtime" hold no byte
 * that JSON escapes.
 */
size_t ngx_http_stockprice_render_record(char *dst,
    const ngx_http_stockprice_record_t *rec, const char *mtime,
    size_t mtime_len);

/*
 * application/x-www-form-urlencoded: alphanumerics and "-._~" kept, a
 * blank as "+", other bytes as %XX
 */
size_t ngx_http_stockprice_render_form(char *dst, const char *src,
    size_t len);

/* percent-encoding of RFC 3986: all but letters, digits and "-._~" */
size_t ngx_http_stockprice_render_uri(char *dst, const char *src,
    size_t len);

/* {"username":"…","password":"…"} */
size_t ngx_http_stockprice_render_credentials(char *dst, const char *user,
    size_t user_len, const char *password, size_t password_len);

/* {"error":"…"} */
size_t ngx_http_stockprice_render_error(char *dst, const char *msg,
    size_t len);

/* the status object, CONTRACT section 5 */
size_t ngx_http_stockprice_render_status_json(char *dst,
    const ngx_http_stockprice_status_t *st);

/* the same counters in Prometheus text format, "stockprice_" prefix */
size_t ngx_http_stockprice_render_status_prometheus(char *dst,
    const ngx_http_stockprice_status_t *st);


#endif /* _NGX_HTTP_STOCKPRICE_RENDER_H_INCLUDED_ */
