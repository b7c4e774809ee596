
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <ngx_http_stockprice_validator.h>


static size_t ngx_http_stockprice_validator_header(CURL *easy,
    const char *name, u_char *buf, size_t size);


/*
 * The validators of the answer curl got on "easy" (its last response, not
 * a 100 Continue's or a redirect's), for the request "key"; v->key 0 when
 * it has none worth keeping
 */

void
ngx_http_stockprice_validator_get(ngx_http_stockprice_validator_t *v,
    CURL *easy, uint64_t key)
{
    v->etag_len = (uint8_t) ngx_http_stockprice_validator_header(easy,
                                 "ETag", v->etag, sizeof(v->etag));
    v->date_len = (uint8_t) ngx_http_stockprice_validator_header(easy,
                                 "Last-Modified", v->date, sizeof(v->date));

    v->key = (v->etag_len || v->date_len) ? key : 0;
}


/*
 * The header line that asks for the answer only if it changed, NUL
 * included; 0: none.  If-Modified-Since only without an ETag: a date has
 * seconds, and two changes within one would look like none to a server
 * that weighed it first.
 */

size_t
ngx_http_stockprice_validator_line(ngx_http_stockprice_validator_t *v,
    u_char *buf)
{
    u_char  *p;

    if (v->key == 0) {
        return 0;
    }

    if (v->etag_len) {
        p = ngx_cpymem(buf, "If-None-Match: ",
                       sizeof("If-None-Match: ") - 1);
        p = ngx_cpymem(p, v->etag, v->etag_len);

    } else if (v->date_len) {
        p = ngx_cpymem(buf, "If-Modified-Since: ",
                       sizeof("If-Modified-Since: ") - 1);
        p = ngx_cpymem(p, v->date, v->date_len);

    } else {
        return 0;
    }

    *p++ = '\0';

    return p - buf;
}


/*
 * A response header's value, if it has one of at most "size" bytes of
 * visible ASCII and spaces (what an ETag or an HTTP date is made of:
 * anything else is not sent back); 0 otherwise
 */

static size_t
ngx_http_stockprice_validator_header(CURL *easy, const char *name,
    u_char *buf, size_t size)
{
#if (LIBCURL_VERSION_NUM >= 0x075400)

    size_t               len, i;
    const char          *value;
    struct curl_header  *h;

    if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h)
        != CURLHE_OK)
    {
        return 0;
    }

    value = h->value;
    len = ngx_strlen(value);

    if (len == 0 || len > size) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((u_char) value[i] < 0x20 || (u_char) value[i] > 0x7e) {
            return 0;
        }
    }

    ngx_memcpy(buf, value, len);

    return len;

#else

    /* curl_easy_header() came with curl 7.84: no conditional requests */

    return 0;

#endif
}
