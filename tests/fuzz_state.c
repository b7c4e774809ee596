
/*
 * Copyright (C) ngx_stockprice authors
 */


/*
 * libFuzzer entry: the state loader on any bytes.  The first byte is the
 * mode: '+' takes the rest as a state file whose end line is made anew
 * (length and CRC-32 of what comes before it), so that a valid file's
 * mutations get past the checksum to the header, names and records; any
 * other byte takes the rest as it is.
 *
 * Whatever the loader accepts must be what it promises: symbols valid,
 * sorted, once each, 1..history records each, every record within the
 * input, no longer than the longest the module makes, validators as
 * validator_get() keeps them; written again, the very same bytes; loaded
 * with a shorter history, the same records cut.  Any refusal comes with
 * a short printable reason.
 *
 *   make -C tests fuzz && tests/build/fuzz_state tests/corpus_state
 */


#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>
#include <ngx_http_stockprice_state.h>


#define ZONE         "stocks"
#define MAX_SYMBOLS  64

/* the longest reason: a line number, a record's, a name quoted, why */
#define REASON_MAX   120


typedef struct {
    size_t                          calls;
    size_t                          size;
} ngx_http_stockprice_fuzz_alloc_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *ngx_http_stockprice_fuzz_alloc(void *data, size_t size);
static char *ngx_http_stockprice_fuzz_reseal(const uint8_t *data,
    size_t size, size_t *len);
static void ngx_http_stockprice_fuzz_load(const char *data, size_t len,
    unsigned history);
static void ngx_http_stockprice_fuzz_accepted(const char *data, size_t len,
    const ngx_http_stockprice_state_t *st);
static void ngx_http_stockprice_fuzz_shorter(const char *data, size_t len,
    const ngx_http_stockprice_state_t *st, size_t history);
static void ngx_http_stockprice_fuzz_reason(const char *err, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char    *buf;
    size_t   len;

    if (size == 0) {
        return 0;
    }

    if (data[0] == '+') {
        buf = ngx_http_stockprice_fuzz_reseal(data + 1, size - 1, &len);

    } else {
        /* an exact copy: ASan sees a read past its end */

        len = size - 1;
        buf = malloc(len ? len : 1);
        if (buf == NULL) {
            abort();
        }

        memcpy(buf, data + 1, len);
    }

    ngx_http_stockprice_fuzz_load(buf, len, 1 + data[size - 1] % 4);

    free(buf);

    return 0;
}


static void *
ngx_http_stockprice_fuzz_alloc(void *data, size_t size)
{
    ngx_http_stockprice_fuzz_alloc_t  *a = data;

    a->calls++;
    a->size = size;

    return malloc(size);
}


/*
 * What comes before the last line that starts "end " (or all of it, a
 * newline added if it lacks one), and a true end line for it
 */

static char *
ngx_http_stockprice_fuzz_reseal(const uint8_t *data, size_t size,
    size_t *len)
{
    int      n;
    char    *buf, end[64];
    size_t   body, nl;

    for (body = size; body > 0; body--) {
        if (data[body - 1] == '\n' && size - body >= 4
            && memcmp(data + body, "end ", 4) == 0)
        {
            break;
        }
    }

    if (body == 0) {
        body = size;
    }

    nl = (body == 0 || data[body - 1] != '\n');

    buf = malloc(body + nl + sizeof(end));
    if (buf == NULL) {
        abort();
    }

    memcpy(buf, data, body);

    if (nl) {
        buf[body++] = '\n';
    }

    n = snprintf(end, sizeof(end), "end %zu %08lx\n", body,
                 crc32(0L, (const Bytef *) buf, (uInt) body));

    memcpy(buf + body, end, (size_t) n);
    *len = body + (size_t) n;

    return buf;
}


static void
ngx_http_stockprice_fuzz_load(const char *data, size_t len, unsigned history)
{
    int                                rc;
    char                               err[256];
    ngx_http_stockprice_state_t        st;
    ngx_http_stockprice_fuzz_alloc_t   a;

    memset(&a, 0, sizeof(a));

    rc = ngx_http_stockprice_state_load(data, len, ZONE, sizeof(ZONE) - 1,
                                        MAX_SYMBOLS,
                                        NGX_HTTP_STOCKPRICE_STATE_HISTORY,
                                        ngx_http_stockprice_fuzz_alloc, &a,
                                        &st, err, sizeof(err));

    if (a.calls > 1 || (st.mem != NULL) != (a.calls == 1)) {
        abort();
    }

    if (rc != NGX_HTTP_STOCKPRICE_STATE_OK) {
        ngx_http_stockprice_fuzz_reason(err, sizeof(err));
        free(st.mem);
        return;
    }

    if (st.nsymbols
        && a.size != st.nsymbols * sizeof(ngx_http_stockprice_state_sym_t)
                     + st.nrecords * sizeof(ngx_http_stockprice_str_t))
    {
        abort();
    }

    ngx_http_stockprice_fuzz_accepted(data, len, &st);
    ngx_http_stockprice_fuzz_shorter(data, len, &st, history);

    /* one symbol fewer than it has is too many */

    if (st.nsymbols) {
        memset(&a, 0, sizeof(a));

        free(st.mem);

        rc = ngx_http_stockprice_state_load(data, len, ZONE,
                                            sizeof(ZONE) - 1, st.nsymbols - 1,
                                            history,
                                            ngx_http_stockprice_fuzz_alloc,
                                            &a, &st, err, sizeof(err));

        if (rc != NGX_HTTP_STOCKPRICE_STATE_TOO_LARGE || a.calls != 0) {
            abort();
        }

        ngx_http_stockprice_fuzz_reason(err, sizeof(err));
    }

    free(st.mem);
}


static void
ngx_http_stockprice_fuzz_accepted(const char *data, size_t len,
    const ngx_http_stockprice_state_t *st)
{
    char                                         *again;
    size_t                                        i, j, n, total;
    const ngx_http_stockprice_str_t              *r;
    const ngx_http_stockprice_state_sym_t        *sym;
    const ngx_http_stockprice_state_validator_t  *v;

    if (st->nsymbols > MAX_SYMBOLS || st->dropped != 0 || st->generation == 0
        || st->last_modified < 0 || st->zone_len != sizeof(ZONE) - 1
        || (st->nsymbols == 0) != (st->syms == NULL))
    {
        abort();
    }

    total = 0;

    for (i = 0; i < st->nsymbols; i++) {
        sym = &st->syms[i];

        if (!ngx_http_stockprice_parse_symbol_valid(sym->name, sym->name_len)
            || sym->nrecords < 1
            || sym->nrecords > NGX_HTTP_STOCKPRICE_STATE_HISTORY
            || (i > 0
                && ngx_http_stockprice_parse_symbol_cmp(st->syms[i - 1].name,
                       st->syms[i - 1].name_len, sym->name, sym->name_len)
                   >= 0))
        {
            abort();
        }

        for (j = 0; j < sym->nrecords; j++) {
            r = &sym->records[j];

            if (r->data < data || r->len > (size_t) (data + len - r->data)
                || r->len > NGX_HTTP_STOCKPRICE_RECORD_LONGEST
                || memchr(r->data, '\n', r->len) != NULL)
            {
                abort();
            }
        }

        total += sym->nrecords;
    }

    if (total != st->nrecords) {
        abort();
    }

    for (i = 0; i < NGX_HTTP_STOCKPRICE_STATE_VALIDATORS; i++) {
        v = &st->validators[i];

        if (v->key == 0) {
            if (v->etag_len || v->date_len) {
                abort();
            }

            continue;
        }

        if (v->etag_len > NGX_HTTP_STOCKPRICE_STATE_ETAG
            || v->date_len > NGX_HTTP_STOCKPRICE_STATE_DATE
            || v->etag_len + v->date_len == 0)
        {
            abort();
        }

        for (j = 0; j < v->etag_len; j++) {
            if (v->etag[j] < 0x20 || v->etag[j] > 0x7e) {
                abort();
            }
        }

        for (j = 0; j < v->date_len; j++) {
            if (v->date[j] < 0x20 || v->date[j] > 0x7e) {
                abort();
            }
        }
    }

    /* there is one way to write a state */

    n = ngx_http_stockprice_state_write(NULL, st);

    if (n != len) {
        abort();
    }

    again = malloc(n);
    if (again == NULL) {
        abort();
    }

    if (ngx_http_stockprice_state_write(again, st) != n
        || memcmp(again, data, n) != 0)
    {
        abort();
    }

    free(again);
}


/* with a shorter history: each symbol's newest records, the rest dropped */

static void
ngx_http_stockprice_fuzz_shorter(const char *data, size_t len,
    const ngx_http_stockprice_state_t *st, size_t history)
{
    int                                rc;
    char                               err[256];
    size_t                             i, j, dropped;
    ngx_http_stockprice_state_t        cut;
    ngx_http_stockprice_fuzz_alloc_t   a;

    memset(&a, 0, sizeof(a));

    rc = ngx_http_stockprice_state_load(data, len, ZONE, sizeof(ZONE) - 1,
                                        MAX_SYMBOLS, history,
                                        ngx_http_stockprice_fuzz_alloc, &a,
                                        &cut, err, sizeof(err));

    if (rc != NGX_HTTP_STOCKPRICE_STATE_OK || cut.nsymbols != st->nsymbols) {
        abort();
    }

    dropped = 0;

    for (i = 0; i < st->nsymbols; i++) {
        if (cut.syms[i].nrecords
            != (st->syms[i].nrecords < history ? st->syms[i].nrecords
                                               : history))
        {
            abort();
        }

        for (j = 0; j < cut.syms[i].nrecords; j++) {
            if (cut.syms[i].records[j].data != st->syms[i].records[j].data
                || cut.syms[i].records[j].len != st->syms[i].records[j].len)
            {
                abort();
            }
        }

        dropped += st->syms[i].nrecords - cut.syms[i].nrecords;
    }

    if (cut.dropped != dropped) {
        abort();
    }

    free(cut.mem);
}


static void
ngx_http_stockprice_fuzz_reason(const char *err, size_t size)
{
    size_t  i;

    for (i = 0; i < size && err[i]; i++) {
        if (err[i] < 0x20 || err[i] > 0x7e) {
            abort();
        }
    }

    if (i == 0 || i > REASON_MAX) {
        abort();
    }
}
