/*
 * sse_client: a small load client for Server-Sent Events streams.
 *
 * It opens CONNECTIONS event-stream subscribers to one URL on 127.0.0.1,
 * counts the events each one receives and, for every event, measures the
 * time from the "measurementTimeStamp" in its data to its receipt; at the
 * end it prints one key=value line, with its own CPU time, so that a
 * benchmark can show that the client was not the bottleneck.
 *
 * Build (the binary goes to build/, which git ignores):
 *
 *     gcc -std=gnu99 -O2 -Wall -Wextra -Werror -o build/sse_client bench/sse_client.c
 *
 * Run:
 *
 *     build/sse_client -c CONNECTIONS -d SECONDS [-H 'Header: value']...
 *                      [-r RAMP_PER_SEC] [-o FILE] [-a] URL
 *
 *     build/sse_client -c 1000 -d 10 http://127.0.0.1:8080/api/StockPrice
 *     build/sse_client -c 10000 -d 10 -r 2000 -o /tmp/events.txt \
 *                      'http://127.0.0.1:8080/sub?x=1'
 *
 *   -c N     concurrent connections (default 1)
 *   -d S     length of the measurement window in seconds (default 10); it
 *            starts when every connection is set up (established or
 *            failed); the whole run never lasts more than S + 60 s
 *   -H H     an extra request header, repeatable; an Accept: or Host: given
 *            here replaces the default one
 *   -r R     open at most R connections per second (default: all at once,
 *            in batches of 256 per turn of the event loop)
 *   -o FILE  one line per event (conn, id, event, data bytes, receipt time,
 *            latency) to FILE, and per-id lines on stdout at the end
 *   -a       also take the latency of each connection's first event (by
 *            default it is not taken: it is the server's current state
 *            sent at subscribe time, not a publish)
 *   URL      http://A.B.C.D[:PORT]/path?query (an IPv4 literal; no DNS, no
 *            TLS)
 *
 * Each connection: a non-blocking connect, "GET path HTTP/1.1" with Host,
 * "Accept: text/event-stream" and the -H headers; a status other than 200
 * is counted in non200 and the connection closed; a connection that is not
 * set up (headers received) within 10 s is given up (failed). The body may
 * be chunked, have a Content-Length, or run until close. Everything is
 * parsed incrementally from one shared read buffer (no per-connection read
 * buffer, nothing of an event is kept but its id and type and a few bytes
 * around the time stamp), so 100 KB+ events cost a memchr for '\n' and the
 * de-chunking. A connection closed by the server (EOF, reset, last chunk)
 * is counted in closed_by_server and not reopened.
 *
 * SSE, simplified from the HTML spec: lines end in \n or \r\n; a blank line
 * ends an event, counted if it had a data: line; lines starting with ':'
 * are comments, counted as heartbeats; "id:" sets the last event id (kept
 * for the following events, as EventSource does), "event:" the type.
 * Latency: the first "measurementTimeStamp":"YYYY-MM-DDTHH:MM:SS[.f{0,9}]Z"
 * of the event's data, in microseconds since the epoch, subtracted from
 * CLOCK_REALTIME taken when the blank line ending the event is parsed. Only
 * events received inside the measurement window are sampled.
 *
 * Output, on stdout, one line (then, with -o, one line per event id):
 *
 *   connections=N established=N failed=N non200=N events=N heartbeats=N
 *   bytes=N latency_us_p50=N latency_us_p99=N latency_us_max=N
 *   latency_samples=N client_cpu_ms=N wall_ms=N closed_by_server=N
 *   events_in_window=N events_per_s=N window_cpu_ms=N cpu_pct=N.N
 *   latency_us_min=N latency_us_p90=N latency_us_p999=N latency_us_mean=N
 *   no_timestamp=N bad_timestamp=N setup_ms=N total_ms=N
 *   fail_connect=N fail_timeout=N fail_eof=N fail_proto=N read_errors=N
 *   proto_errors=N hard_cap=0|1
 *
 *   id=<id> receivers=N samples=N p50_us=N max_us=N
 *
 * events counts every event of the run; events_in_window, events_per_s and
 * the latencies only those of the window; client_cpu_ms is the whole run
 * (getrusage user+sys), window_cpu_ms the window only, cpu_pct that as a
 * share of one CPU; wall_ms is the window's length; bytes counts every byte
 * read from the sockets. Latencies are "-" when there is no sample. Exit
 * status: 0, or 2 on a usage or setup error (e.g. RLIMIT_NOFILE too low).
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef READ_BUF_SIZE
#define READ_BUF_SIZE     (256 * 1024)
#endif
#define READS_PER_WAKEUP  4
#define MAX_EVENTS        4096
#define START_BATCH       256
#define SETUP_TIMEOUT_US  (10 * 1000000LL)
#define HARD_CAP_EXTRA_US (60 * 1000000LL)
#define MAX_HEADER_BYTES  (64 * 1024)
#define ID_MAX            128
#define EV_MAX            32
#define NAME_MAX_LEN      15
#define TS_MAX            40

static const char  ts_key[] = "\"measurementTimeStamp\":\"";
#define KEY_LEN  (sizeof(ts_key) - 1)

enum { C_UNUSED, C_CONNECTING, C_SENDING, C_HEADERS, C_BODY, C_DONE };
enum { B_UNTIL_CLOSE, B_CHUNKED, B_LENGTH };
enum { CH_SIZE, CH_EXT, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER };
enum { S_LINE_START, S_CR, S_NAME, S_VALUE_START, S_VALUE, S_COMMENT };
enum { F_OTHER, F_DATA, F_ID, F_EVENT };
enum { T_SCAN, T_COLLECT, T_DONE };

typedef struct {
    int            fd;
    uint32_t       index;
    uint8_t        state;
    uint8_t        body;
    uint8_t        ch_state;
    uint8_t        ch_digits;
    uint8_t        ch_line_content;
    uint8_t        hdr_nl;
    uint8_t        sse;
    uint8_t        field;
    uint8_t        ts_state;
    uint8_t        ts_ok;
    uint8_t        has_data;
    uint8_t        name_len;
    uint8_t        carry_len;
    uint8_t        ts_len;
    uint8_t        id_len;
    uint8_t        ev_len;
    uint32_t       req_off;
    uint64_t       remaining;       /* chunk bytes or Content-Length left */
    int64_t        deadline;        /* setup, monotonic us */
    int64_t        ts_us;
    uint64_t       nevents;
    uint64_t       data_bytes;      /* of the current event */
    char          *hbuf;
    uint32_t       hlen;
    uint32_t       hcap;
    char           name[NAME_MAX_LEN + 1];
    char           carry[KEY_LEN];
    char           ts[TS_MAX];
    char           id[ID_MAX];
    char           ev[EV_MAX];
} conn_t;

typedef struct {
    char          *id;
    uint64_t       receivers;
    int64_t       *lat;
    size_t         n;
    size_t         cap;
} id_stat_t;

/* options */
static long            opt_conns = 1;
static long            opt_secs = 10;
static double          opt_ramp;
static const char     *opt_out;
static int             opt_all;

/* state */
static conn_t         *conns;
static int             ep = -1;
static char           *request;
static size_t          request_len;
static struct sockaddr_in  dst;
static char            rbuf[READ_BUF_SIZE];
static volatile sig_atomic_t  stop_flag;
static int             in_window;
static FILE           *out;

/* counters */
static uint64_t  n_established, n_failed, n_non200, n_events, n_heartbeats,
                 n_bytes, n_closed_by_server, n_events_window, n_no_ts,
                 n_bad_ts, n_fail_connect, n_fail_timeout, n_fail_eof,
                 n_fail_proto, n_read_errors, n_proto_errors;
static long      n_active;        /* established, not yet closed */
static long      n_resolved;      /* established, failed or non200 */
static int       first_connect_errno;

/* latency samples */
static int64_t  *lat;
static size_t    lat_n, lat_cap;

/* per-id stats (only with -o) */
static id_stat_t  *ids;
static size_t      ids_n, ids_cap;
static uint32_t   *id_hash;          /* index + 1, 0 = empty */
static size_t      id_hash_cap;


static int64_t
now_us(clockid_t clk)
{
    struct timespec  ts;

    clock_gettime(clk, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


static int64_t
cpu_us(void)
{
    struct rusage  ru;

    getrusage(RUSAGE_SELF, &ru);
    return (int64_t) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000
           + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}


static void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        fprintf(stderr, "sse_client: out of memory\n");
        exit(2);
    }
    return p;
}


static void
push_i64(int64_t **a, size_t *n, size_t *cap, int64_t v)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *a = xrealloc(*a, *cap * sizeof(int64_t));
    }
    (*a)[(*n)++] = v;
}


/* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant) */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    int64_t  era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}


static int
digits(const char *s, int n, int *v)
{
    int  i, r = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        r = r * 10 + (s[i] - '0');
    }
    *v = r;
    return 0;
}


/* YYYY-MM-DDTHH:MM:SS[.f{0,9}]Z -> microseconds since the epoch */
static int
parse_iso8601(const char *s, size_t len, int64_t *out_us)
{
    int     y, mo, d, h, mi, sec, frac_us = 0;
    size_t  i, nf;

    if (len < 20 || s[4] != '-' || s[7] != '-'
        || (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        || s[13] != ':' || s[16] != ':')
    {
        return -1;
    }

    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d)
        || digits(s + 11, 2, &h) || digits(s + 14, 2, &mi)
        || digits(s + 17, 2, &sec))
    {
        return -1;
    }

    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59
        || sec > 60)
    {
        return -1;
    }

    i = 19;

    if (s[i] == '.') {
        i++;
        for (nf = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++, nf++) {
            if (nf >= 9) {
                return -1;
            }
            if (nf < 6) {
                frac_us = frac_us * 10 + (s[i] - '0');
            }
        }
        for (; nf < 6; nf++) {
            frac_us *= 10;
        }
    }

    if (i + 1 != len || (s[i] != 'Z' && s[i] != 'z')) {
        return -1;
    }

    *out_us = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec)
               * 1000000LL) + frac_us;
    return 0;
}


static id_stat_t *
id_lookup(const char *id, size_t len)
{
    uint32_t  h = 2166136261u;
    size_t    i, j;

    for (i = 0; i < len; i++) {
        h = (h ^ (uint8_t) id[i]) * 16777619u;
    }

    if (ids_n * 2 >= id_hash_cap) {
        size_t     ncap = id_hash_cap ? id_hash_cap * 2 : 1024;
        uint32_t  *nh = calloc(ncap, sizeof(uint32_t));

        if (nh == NULL) {
            fprintf(stderr, "sse_client: out of memory\n");
            exit(2);
        }
        for (i = 0; i < ids_n; i++) {
            uint32_t  g = 2166136261u;
            size_t    k, l = strlen(ids[i].id);

            for (k = 0; k < l; k++) {
                g = (g ^ (uint8_t) ids[i].id[k]) * 16777619u;
            }
            for (j = g & (ncap - 1); nh[j]; j = (j + 1) & (ncap - 1)) { }
            nh[j] = (uint32_t) i + 1;
        }
        free(id_hash);
        id_hash = nh;
        id_hash_cap = ncap;
    }

    for (j = h & (id_hash_cap - 1); id_hash[j]; j = (j + 1) & (id_hash_cap - 1))
    {
        id_stat_t  *s = &ids[id_hash[j] - 1];

        if (strlen(s->id) == len && memcmp(s->id, id, len) == 0) {
            return s;
        }
    }

    if (ids_n == ids_cap) {
        ids_cap = ids_cap ? ids_cap * 2 : 256;
        ids = xrealloc(ids, ids_cap * sizeof(id_stat_t));
    }

    ids[ids_n].id = xrealloc(NULL, len + 1);
    memcpy(ids[ids_n].id, id, len);
    ids[ids_n].id[len] = '\0';
    ids[ids_n].receivers = 0;
    ids[ids_n].lat = NULL;
    ids[ids_n].n = 0;
    ids[ids_n].cap = 0;
    id_hash[j] = (uint32_t) ++ids_n;

    return &ids[ids_n - 1];
}


/* printable, without blanks, for key=value lines */
static void
put_token(FILE *f, const char *s, size_t len)
{
    size_t  i;

    if (len == 0) {
        fputc('-', f);
        return;
    }
    for (i = 0; i < len; i++) {
        unsigned char  ch = (unsigned char) s[i];

        fputc(ch <= ' ' || ch == 0x7f ? '_' : ch, f);
    }
}


static void
conn_close(conn_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    free(c->hbuf);
    c->hbuf = NULL;
    c->hcap = 0;
    c->state = C_DONE;
}


/* before the response headers are complete */
static void
conn_fail(conn_t *c, uint64_t *reason)
{
    (*reason)++;
    n_failed++;
    n_resolved++;
    conn_close(c);
}


/* after the headers: the server (or an error) ended the stream */
static void
conn_ended(conn_t *c)
{
    n_closed_by_server++;
    n_active--;
    conn_close(c);
}


static void
dispatch(conn_t *c)
{
    int64_t  now, l = 0;
    int      sampled = 0;

    if (c->has_data) {
        now = now_us(CLOCK_REALTIME);
        c->nevents++;
        n_events++;

        if (c->ts_ok) {
            l = now - c->ts_us;
            if (in_window && (opt_all || c->nevents > 1)) {
                push_i64(&lat, &lat_n, &lat_cap, l);
                sampled = 1;
            }
        } else if (c->ts_state != T_DONE) {
            n_no_ts++;
        }

        if (in_window) {
            n_events_window++;
        }

        if (out != NULL) {
            id_stat_t  *s = id_lookup(c->id, c->id_len);

            s->receivers++;
            if (c->ts_ok) {
                push_i64(&s->lat, &s->n, &s->cap, l);
            }

            fprintf(out, "conn=%" PRIu32 " n=%" PRIu64 " recv_us=%" PRId64
                    " id=", c->index, c->nevents, now);
            put_token(out, c->id, c->id_len);
            fputs(" event=", out);
            put_token(out, c->ev, c->ev_len);
            fprintf(out, " data_bytes=%" PRIu64, c->data_bytes);
            if (c->ts_ok) {
                fprintf(out, " latency_us=%" PRId64 " sampled=%d\n",
                        l, sampled);
            } else {
                fputs(" latency_us=- sampled=0\n", out);
            }
        }
    }

    /* the id stays, as EventSource's last event ID does */
    c->has_data = 0;
    c->ts_state = T_SCAN;
    c->ts_ok = 0;
    c->carry_len = 0;
    c->data_bytes = 0;
    c->ev_len = 0;
}


static void
ts_found_end(conn_t *c)
{
    c->ts_state = T_DONE;
    if (parse_iso8601(c->ts, c->ts_len, &c->ts_us) == 0) {
        c->ts_ok = 1;
    } else {
        n_bad_ts++;
    }
}


/* a piece of a data: line's value (no '\n' in it) */
static void
ts_scan(conn_t *c, const char *p, size_t len)
{
    const char  *kend = NULL, *f, *q;
    size_t       n;

    if (c->ts_state == T_SCAN) {

        if (c->carry_len) {
            char    tmp[2 * KEY_LEN];
            size_t  m = len < KEY_LEN - 1 ? len : KEY_LEN - 1;

            memcpy(tmp, c->carry, c->carry_len);
            memcpy(tmp + c->carry_len, p, m);
            f = memmem(tmp, c->carry_len + m, ts_key, KEY_LEN);
            if (f != NULL) {
                kend = p + (f - tmp) + KEY_LEN - c->carry_len;
            }
        }

        if (kend == NULL) {
            f = memmem(p, len, ts_key, KEY_LEN);
            if (f != NULL) {
                kend = f + KEY_LEN;
            }
        }

        if (kend == NULL) {
            /* keep the last KEY_LEN - 1 bytes seen on this line */
            if (len >= KEY_LEN - 1) {
                memcpy(c->carry, p + len - (KEY_LEN - 1), KEY_LEN - 1);
                c->carry_len = KEY_LEN - 1;
            } else {
                size_t  keep = c->carry_len + len > KEY_LEN - 1
                               ? KEY_LEN - 1 - len : c->carry_len;

                memmove(c->carry, c->carry + c->carry_len - keep, keep);
                memcpy(c->carry + keep, p, len);
                c->carry_len = (uint8_t) (keep + len);
            }
            return;
        }

        c->ts_state = T_COLLECT;
        c->ts_len = 0;
        len -= kend - p;
        p = kend;
    }

    /* T_COLLECT: up to the closing quote */
    n = TS_MAX - c->ts_len;
    if (n > len) {
        n = len;
    }
    q = memchr(p, '"', n);
    if (q != NULL) {
        memcpy(c->ts + c->ts_len, p, q - p);
        c->ts_len += q - p;
        ts_found_end(c);
        return;
    }
    if (c->ts_len + len >= TS_MAX) {
        c->ts_state = T_DONE;
        n_bad_ts++;
        return;
    }
    memcpy(c->ts + c->ts_len, p, len);
    c->ts_len += len;
}


static void
value_bytes(conn_t *c, const char *p, size_t len)
{
    size_t  n;

    switch (c->field) {

    case F_DATA:
        c->data_bytes += len;
        if (c->ts_state != T_DONE && len) {
            ts_scan(c, p, len);
        }
        break;

    case F_ID:
        n = ID_MAX - c->id_len;
        n = n < len ? n : len;
        memcpy(c->id + c->id_len, p, n);
        c->id_len += n;
        break;

    case F_EVENT:
        n = EV_MAX - c->ev_len;
        n = n < len ? n : len;
        memcpy(c->ev + c->ev_len, p, n);
        c->ev_len += n;
        break;
    }
}


static void
begin_value(conn_t *c)
{
    const char  *nm = c->name;

    c->field = F_OTHER;

    if (c->name_len == 4 && memcmp(nm, "data", 4) == 0) {
        c->field = F_DATA;
        if (c->has_data) {
            c->data_bytes++;        /* the '\n' joining data lines */
        }
        c->has_data = 1;
        c->carry_len = 0;           /* the key does not span lines */

    } else if (c->name_len == 2 && memcmp(nm, "id", 2) == 0) {
        c->field = F_ID;
        c->id_len = 0;

    } else if (c->name_len == 5 && memcmp(nm, "event", 5) == 0) {
        c->field = F_EVENT;
        c->ev_len = 0;
    }
}


static void
end_line(conn_t *c)
{
    switch (c->field) {

    case F_DATA:
        if (c->ts_state == T_COLLECT) {
            c->ts_state = T_DONE;   /* no closing quote on this line */
            n_bad_ts++;
        }
        break;

    case F_ID:
        if (c->id_len && c->id[c->id_len - 1] == '\r') {
            c->id_len--;
        }
        break;

    case F_EVENT:
        if (c->ev_len && c->ev[c->ev_len - 1] == '\r') {
            c->ev_len--;
        }
        break;
    }

    c->field = F_OTHER;
    c->sse = S_LINE_START;
}


/* event-stream bytes, de-chunked */
static void
sse_feed(conn_t *c, const char *p, size_t n)
{
    const char  *end = p + n, *nl;

    while (p < end) {

        switch (c->sse) {

        case S_LINE_START:
            if (*p == '\n') {
                dispatch(c);
                p++;
                break;
            }
            if (*p == '\r') {
                c->sse = S_CR;
                p++;
                break;
            }
            if (*p == ':') {
                n_heartbeats++;
                c->sse = S_COMMENT;
                p++;
                break;
            }
            c->name_len = 0;
            c->sse = S_NAME;
            /* fall through */

        case S_NAME:
            while (p < end) {
                char  ch = *p++;

                if (ch == ':') {
                    begin_value(c);
                    c->sse = S_VALUE_START;
                    break;
                }
                if (ch == '\n') {
                    /* a field name alone: an empty value */
                    if (c->name_len && c->name_len <= NAME_MAX_LEN
                        && c->name[c->name_len - 1] == '\r')
                    {
                        c->name_len--;
                    }
                    begin_value(c);
                    end_line(c);
                    break;
                }
                if (c->name_len < NAME_MAX_LEN) {
                    c->name[c->name_len++] = ch;
                } else {
                    c->name_len = NAME_MAX_LEN + 1;     /* unknown field */
                }
            }
            break;

        case S_CR:
            /* "\r\n", or a lone '\r' (a line end too): a blank line */
            if (*p == '\n') {
                p++;
            }
            c->sse = S_LINE_START;
            dispatch(c);
            break;

        case S_VALUE_START:
            if (*p == ' ') {
                p++;
            }
            c->sse = S_VALUE;
            /* fall through */

        case S_VALUE:
            nl = memchr(p, '\n', end - p);
            value_bytes(c, p, (nl ? nl : end) - p);
            if (nl == NULL) {
                return;
            }
            end_line(c);
            p = nl + 1;
            break;

        case S_COMMENT:
            nl = memchr(p, '\n', end - p);
            if (nl == NULL) {
                return;
            }
            c->sse = S_LINE_START;
            p = nl + 1;
            break;
        }
    }
}


static int
hexval(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    return -1;
}


/* body bytes; returns -1 when the connection was closed */
static int
body_feed(conn_t *c, const char *p, size_t n)
{
    const char  *end = p + n, *nl;
    size_t       take;
    int          v;

    if (c->body == B_UNTIL_CLOSE) {
        sse_feed(c, p, n);
        return 0;
    }

    if (c->body == B_LENGTH) {
        take = n < c->remaining ? n : c->remaining;
        sse_feed(c, p, take);
        c->remaining -= take;
        if (c->remaining == 0) {
            conn_ended(c);
            return -1;
        }
        return 0;
    }

    while (p < end) {

        switch (c->ch_state) {

        case CH_SIZE:
            v = hexval(*p);
            if (v >= 0) {
                if (c->remaining >> 56) {
                    goto bad;
                }
                c->remaining = c->remaining * 16 + v;
                c->ch_digits = 1;
                p++;
                break;
            }
            if (!c->ch_digits) {
                goto bad;
            }
            if (*p == '\n') {
                p++;
                goto size_line_done;
            }
            c->ch_state = CH_EXT;       /* ';ext', blanks, '\r' */
            /* fall through */

        case CH_EXT:
            nl = memchr(p, '\n', end - p);
            if (nl == NULL) {
                return 0;
            }
            p = nl + 1;

        size_line_done:
            if (c->remaining == 0) {
                c->ch_state = CH_TRAILER;
                c->ch_line_content = 0;
            } else {
                c->ch_state = CH_DATA;
            }
            break;

        case CH_DATA:
            take = (size_t) (end - p);
            if (take > c->remaining) {
                take = c->remaining;
            }
            sse_feed(c, p, take);
            p += take;
            c->remaining -= take;
            if (c->remaining == 0) {
                c->ch_state = CH_DATA_CR;
            }
            break;

        case CH_DATA_CR:
            if (*p == '\r') {
                c->ch_state = CH_DATA_LF;
                p++;
                break;
            }
            /* fall through */

        case CH_DATA_LF:
            if (*p != '\n') {
                goto bad;
            }
            p++;
            c->ch_state = CH_SIZE;
            c->ch_digits = 0;
            c->remaining = 0;
            break;

        case CH_TRAILER:
            if (*p == '\n') {
                if (!c->ch_line_content) {
                    /* the last chunk: the server ended the stream */
                    conn_ended(c);
                    return -1;
                }
                c->ch_line_content = 0;
            } else if (*p != '\r') {
                c->ch_line_content = 1;
            }
            p++;
            break;
        }
    }

    return 0;

bad:

    n_proto_errors++;
    conn_ended(c);
    return -1;
}


static const char *
header_value(const char *line, size_t len, const char *name, size_t *vlen)
{
    size_t  nl = strlen(name);
    const char  *v, *e;

    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0) {
        return NULL;
    }
    v = line + nl + 1;
    e = line + len;
    while (v < e && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
        e--;
    }
    *vlen = e - v;
    return v;
}


/* the status line and headers, complete in c->hbuf; -1: closed */
static int
headers_done(conn_t *c)
{
    char        *p = c->hbuf, *e = c->hbuf + c->hlen, *nl, *v;
    size_t       vlen, i;
    int          status, chunked = 0, have_length = 0;
    uint64_t     length = 0;

    nl = memchr(p, '\n', e - p);
    if (nl == NULL || nl - p < 12 || memcmp(p, "HTTP/1.", 7) != 0
        || p[8] != ' ' || digits(p + 9, 3, &status) != 0)
    {
        conn_fail(c, &n_fail_proto);
        return -1;
    }

    if (status != 200) {
        n_non200++;
        n_resolved++;
        conn_close(c);
        return -1;
    }

    for (p = nl + 1; p < e; p = nl + 1) {
        nl = memchr(p, '\n', e - p);
        if (nl == NULL) {
            break;
        }

        v = (char *) header_value(p, nl - p, "Transfer-Encoding", &vlen);
        if (v != NULL) {
            for (i = 0; i + 7 <= vlen; i++) {
                if (strncasecmp(v + i, "chunked", 7) == 0) {
                    chunked = 1;
                }
            }
            continue;
        }

        v = (char *) header_value(p, nl - p, "Content-Length", &vlen);
        if (v != NULL) {
            have_length = 1;
            length = 0;
            for (i = 0; i < vlen && v[i] >= '0' && v[i] <= '9'; i++) {
                length = length * 10 + (v[i] - '0');
            }
        }
    }

    free(c->hbuf);
    c->hbuf = NULL;
    c->hcap = 0;
    c->hlen = 0;

    c->state = C_BODY;
    c->sse = S_LINE_START;
    c->ts_state = T_SCAN;
    n_established++;
    n_resolved++;
    n_active++;

    if (chunked) {
        c->body = B_CHUNKED;
        c->ch_state = CH_SIZE;
        c->ch_digits = 0;
        c->remaining = 0;

    } else if (have_length) {
        c->body = B_LENGTH;
        c->remaining = length;
        if (length == 0) {
            conn_ended(c);
            return -1;
        }

    } else {
        c->body = B_UNTIL_CLOSE;
    }

    return 0;
}


/* bytes read from the socket; -1: closed */
static int
conn_input(conn_t *c, const char *p, size_t n)
{
    size_t  i;

    if (c->state == C_HEADERS) {

        for (i = 0; i < n; i++) {
            if (p[i] == '\n') {
                if (++c->hdr_nl == 2) {
                    i++;
                    break;
                }
            } else if (p[i] != '\r') {
                c->hdr_nl = 0;
            }
        }

        if (c->hlen + i > MAX_HEADER_BYTES) {
            conn_fail(c, &n_fail_proto);
            return -1;
        }
        if (c->hlen + i > c->hcap) {
            c->hcap = c->hcap ? c->hcap : 4096;
            while (c->hcap < c->hlen + i) {
                c->hcap *= 2;
            }
            c->hbuf = xrealloc(c->hbuf, c->hcap);
        }
        memcpy(c->hbuf + c->hlen, p, i);
        c->hlen += i;

        if (c->hdr_nl < 2) {
            return 0;
        }
        if (headers_done(c) != 0) {
            return -1;
        }
        p += i;
        n -= i;
        if (n == 0) {
            return 0;
        }
    }

    return body_feed(c, p, n);
}


static void
conn_read(conn_t *c)
{
    ssize_t  n;
    int      k;

    for (k = 0; k < READS_PER_WAKEUP; k++) {

        n = read(c->fd, rbuf, sizeof(rbuf));

        if (n > 0) {
            n_bytes += n;
            if (conn_input(c, rbuf, n) != 0) {
                return;
            }
            if ((size_t) n < sizeof(rbuf)) {
                return;
            }
            continue;
        }

        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }

        if (n < 0) {
            n_read_errors++;
        }

        if (c->state == C_HEADERS) {
            conn_fail(c, &n_fail_eof);
        } else {
            conn_ended(c);
        }
        return;
    }
}


static void
conn_send(conn_t *c)
{
    struct epoll_event  ee;
    ssize_t             n;

    while (c->req_off < request_len) {
        n = send(c->fd, request + c->req_off, request_len - c->req_off,
                 MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            conn_fail(c, &n_fail_connect);
            return;
        }
        c->req_off += n;
    }

    c->state = C_HEADERS;
    ee.events = EPOLLIN;
    ee.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ee) != 0) {
        conn_fail(c, &n_fail_connect);
    }
}


static void
conn_start(conn_t *c, int64_t now)
{
    struct epoll_event  ee;
    int                 rc;

    c->deadline = now + SETUP_TIMEOUT_US;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        if (!first_connect_errno) {
            first_connect_errno = errno;
        }
        conn_fail(c, &n_fail_connect);
        return;
    }

    rc = connect(c->fd, (struct sockaddr *) &dst, sizeof(dst));
    if (rc != 0 && errno != EINPROGRESS) {
        if (!first_connect_errno) {
            first_connect_errno = errno;
        }
        conn_fail(c, &n_fail_connect);
        return;
    }

    c->state = C_CONNECTING;
    ee.events = EPOLLOUT;
    ee.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ee) != 0) {
        if (!first_connect_errno) {
            first_connect_errno = errno;
        }
        conn_fail(c, &n_fail_connect);
        return;
    }

    if (rc == 0) {
        c->state = C_SENDING;
        conn_send(c);
    }
}


static void
conn_event(conn_t *c, uint32_t events)
{
    int        err = 0;
    socklen_t  len = sizeof(err);

    switch (c->state) {

    case C_CONNECTING:
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }
        if (err != 0) {
            if (!first_connect_errno) {
                first_connect_errno = err;
            }
            conn_fail(c, &n_fail_connect);
            return;
        }
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            return;
        }
        c->state = C_SENDING;
        /* fall through */

    case C_SENDING:
        conn_send(c);
        return;

    case C_HEADERS:
    case C_BODY:
        conn_read(c);
        return;
    }
}


static void
on_signal(int sig)
{
    (void) sig;
    stop_flag = 1;
}


static int
cmp_i64(const void *a, const void *b)
{
    int64_t  x = *(const int64_t *) a, y = *(const int64_t *) b;

    return (x > y) - (x < y);
}


/* nearest rank of a sorted array */
static int64_t
pct(const int64_t *a, size_t n, double p)
{
    size_t  r = (size_t) (p * n + 0.999999);

    if (r < 1) {
        r = 1;
    }
    if (r > n) {
        r = n;
    }
    return a[r - 1];
}


static void
print_lat(const char *key, const int64_t *a, size_t n, double p)
{
    if (n == 0) {
        printf(" %s=-", key);
    } else {
        printf(" %s=%" PRId64, key, pct(a, n, p));
    }
}


static int
parse_url(const char *url, char **path, char *hostport, size_t hpsize)
{
    const char  *h, *e, *slash;
    char         host[64];
    long         port = 80;
    size_t       hl;

    if (strncmp(url, "http://", 7) != 0) {
        return -1;
    }
    h = url + 7;
    slash = strchr(h, '/');
    e = slash ? slash : h + strlen(h);

    if (memchr(h, '?', e - h) != NULL) {
        e = memchr(h, '?', e - h);
        slash = e;
    }

    snprintf(hostport, hpsize, "%.*s", (int) (e - h), h);

    {
        const char  *colon = memchr(h, ':', e - h);
        char        *end;

        hl = (colon ? colon : e) - h;
        if (hl == 0 || hl >= sizeof(host)) {
            return -1;
        }
        memcpy(host, h, hl);
        host[hl] = '\0';

        if (colon) {
            port = strtol(colon + 1, &end, 10);
            if (end != e || port < 1 || port > 65535) {
                return -1;
            }
        }
    }

    memset(&dst, 0, sizeof(dst));
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t) port);
    if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) {
        return -1;
    }

    if (slash == NULL || *slash == '\0') {
        *path = strdup("/");
    } else if (*slash == '?') {
        *path = xrealloc(NULL, strlen(slash) + 2);
        (*path)[0] = '/';
        strcpy(*path + 1, slash);
    } else {
        *path = strdup(slash);
    }

    return *path ? 0 : -1;
}


static void
usage(void)
{
    fprintf(stderr,
        "usage: sse_client -c CONNECTIONS -d SECONDS [-H 'Header: value']...\n"
        "                  [-r RAMP_PER_SEC] [-o FILE] [-a] "
        "http://127.0.0.1:PORT/path?query\n");
    exit(2);
}


static int
raise_nofile(rlim_t need)
{
    struct rlimit  rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("sse_client: getrlimit(RLIMIT_NOFILE)");
        return -1;
    }
    if (rl.rlim_cur >= need) {
        return 0;
    }

    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        struct rlimit  up = { need, need };

        /* a privileged process may raise the hard limit too */
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
            return 0;
        }
        fprintf(stderr, "sse_client: RLIMIT_NOFILE: %lu file descriptors "
                "needed, the hard limit is %lu and cannot be raised (%s); "
                "raise it (ulimit -Hn, limits.conf) or use fewer "
                "connections\n", (unsigned long) need,
                (unsigned long) rl.rlim_max, strerror(errno));
        return -1;
    }

    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "sse_client: setrlimit(RLIMIT_NOFILE, %lu): %s\n",
                (unsigned long) need, strerror(errno));
        return -1;
    }
    return 0;
}


int
main(int argc, char **argv)
{
    struct epoll_event  *evs;
    struct sigaction     sa;
    const char         **hdrs = NULL;
    char                 hostport[128], *path = NULL, *end;
    size_t               nhdrs = 0, i, len;
    int                  opt, have_accept = 0, have_host = 0, hard_cap = 0;
    long                 started = 0;
    int64_t              t0, now, hard_end, win_start = 0, win_end = 0,
                         win_stop = 0, cpu_win0 = 0, cpu_win1 = 0,
                         next_scan = 0, total_us;

    while ((opt = getopt(argc, argv, "c:d:H:r:o:ah")) != -1) {
        switch (opt) {
        case 'c':
            opt_conns = strtol(optarg, &end, 10);
            if (*end || opt_conns < 1 || opt_conns > 1000000) {
                usage();
            }
            break;
        case 'd':
            opt_secs = strtol(optarg, &end, 10);
            if (*end || opt_secs < 1 || opt_secs > 86400) {
                usage();
            }
            break;
        case 'H':
            hdrs = xrealloc(hdrs, (nhdrs + 1) * sizeof(char *));
            hdrs[nhdrs++] = optarg;
            if (strncasecmp(optarg, "Accept:", 7) == 0) {
                have_accept = 1;
            }
            if (strncasecmp(optarg, "Host:", 5) == 0) {
                have_host = 1;
            }
            break;
        case 'r':
            opt_ramp = strtod(optarg, &end);
            if (*end || opt_ramp < 0) {
                usage();
            }
            break;
        case 'o':
            opt_out = optarg;
            break;
        case 'a':
            opt_all = 1;
            break;
        default:
            usage();
        }
    }

    if (optind + 1 != argc) {
        usage();
    }

    if (parse_url(argv[optind], &path, hostport, sizeof(hostport)) != 0) {
        fprintf(stderr, "sse_client: URL must be http://A.B.C.D[:PORT]/path "
                "(an IPv4 literal): %s\n", argv[optind]);
        return 2;
    }

    len = strlen(path) + strlen(hostport) + 128;
    for (i = 0; i < nhdrs; i++) {
        len += strlen(hdrs[i]) + 2;
    }
    request = xrealloc(NULL, len);
    request_len = snprintf(request, len, "GET %s HTTP/1.1\r\n", path);
    if (!have_host) {
        request_len += snprintf(request + request_len, len - request_len,
                                "Host: %s\r\n", hostport);
    }
    if (!have_accept) {
        request_len += snprintf(request + request_len, len - request_len,
                                "Accept: text/event-stream\r\n");
    }
    for (i = 0; i < nhdrs; i++) {
        request_len += snprintf(request + request_len, len - request_len,
                                "%s\r\n", hdrs[i]);
    }
    request_len += snprintf(request + request_len, len - request_len, "\r\n");
    free(path);
    free(hdrs);

    if (raise_nofile((rlim_t) opt_conns + 32) != 0) {
        return 2;
    }

    if (opt_out != NULL) {
        out = fopen(opt_out, "w");
        if (out == NULL) {
            fprintf(stderr, "sse_client: %s: %s\n", opt_out, strerror(errno));
            return 2;
        }
        setvbuf(out, NULL, _IOFBF, 1 << 20);
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    conns = calloc(opt_conns, sizeof(conn_t));
    evs = calloc(MAX_EVENTS, sizeof(struct epoll_event));
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || evs == NULL || ep < 0) {
        perror("sse_client: setup");
        return 2;
    }
    for (i = 0; i < (size_t) opt_conns; i++) {
        conns[i].fd = -1;
        conns[i].index = (uint32_t) i;
    }

    t0 = now_us(CLOCK_MONOTONIC);
    hard_end = t0 + opt_secs * 1000000LL + HARD_CAP_EXTRA_US;

    for ( ;; ) {
        int64_t  timeout_us;
        int      n, k;

        now = now_us(CLOCK_MONOTONIC);

        if (stop_flag) {
            break;
        }
        if (now >= hard_end) {
            hard_cap = 1;
            break;
        }
        if (win_start && now >= win_end) {
            break;
        }

        /* open connections, at the ramp's pace */
        if (started < opt_conns) {
            long  allowed = opt_conns, batch = START_BATCH;

            if (opt_ramp > 0) {
                allowed = 1 + (long) ((now - t0) * opt_ramp / 1e6);
                if (allowed > opt_conns) {
                    allowed = opt_conns;
                }
            }
            while (started < allowed && batch-- > 0) {
                conn_start(&conns[started], now);
                started++;
            }
        }

        /* give up connections not set up in time */
        if (n_resolved < started && now >= next_scan) {
            for (i = 0; i < (size_t) started; i++) {
                conn_t  *c = &conns[i];

                if (c->state >= C_CONNECTING && c->state <= C_HEADERS
                    && now >= c->deadline)
                {
                    conn_fail(c, &n_fail_timeout);
                }
            }
            next_scan = now + 100000;
        }

        if (!win_start && n_resolved == opt_conns) {
            win_start = now;
            win_end = now + opt_secs * 1000000LL;
            cpu_win0 = cpu_us();
            in_window = 1;
            fprintf(stderr, "sse_client: %ld connections set up in %" PRId64
                    " ms: %" PRIu64 " established, %" PRIu64 " failed, %"
                    PRIu64 " non-200; measuring for %ld s\n", opt_conns,
                    (now - t0) / 1000, n_established, n_failed, n_non200,
                    opt_secs);
            if (first_connect_errno) {
                fprintf(stderr, "sse_client: first connect error: %s\n",
                        strerror(first_connect_errno));
            }
        }

        if (win_start && n_active == 0) {
            break;                      /* nothing left to listen to */
        }

        timeout_us = hard_end - now;
        if (win_start && win_end - now < timeout_us) {
            timeout_us = win_end - now;
        }
        if (started < opt_conns) {
            timeout_us = timeout_us < 10000 ? timeout_us : 10000;
            if (opt_ramp <= 0) {
                timeout_us = 0;
            }
        } else if (n_resolved < started && timeout_us > 100000) {
            timeout_us = 100000;
        }

        n = epoll_wait(ep, evs, MAX_EVENTS, (int) ((timeout_us + 999) / 1000));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("sse_client: epoll_wait");
            break;
        }

        for (k = 0; k < n; k++) {
            conn_event(evs[k].data.ptr, evs[k].events);
        }
    }

    now = now_us(CLOCK_MONOTONIC);
    in_window = 0;
    if (win_start) {
        win_stop = now;
        cpu_win1 = cpu_us();
    } else {
        win_start = win_stop = now;
        fprintf(stderr, "sse_client: setup did not finish (%ld of %ld "
                "connections set up)\n", n_resolved, opt_conns);
    }

    for (i = 0; i < (size_t) opt_conns; i++) {
        conn_close(&conns[i]);
    }
    close(ep);

    total_us = now_us(CLOCK_MONOTONIC) - t0;

    qsort(lat, lat_n, sizeof(int64_t), cmp_i64);

    {
        int64_t  wall_us = win_stop - win_start, cpu_all = cpu_us(),
                 cpu_win = cpu_win1 - cpu_win0;
        double   sum = 0;

        for (i = 0; i < lat_n; i++) {
            sum += (double) lat[i];
        }

        printf("connections=%ld established=%" PRIu64 " failed=%" PRIu64
               " non200=%" PRIu64 " events=%" PRIu64 " heartbeats=%" PRIu64
               " bytes=%" PRIu64, opt_conns, n_established, n_failed,
               n_non200, n_events, n_heartbeats, n_bytes);
        print_lat("latency_us_p50", lat, lat_n, 0.50);
        print_lat("latency_us_p99", lat, lat_n, 0.99);
        print_lat("latency_us_max", lat, lat_n, 1.0);
        printf(" latency_samples=%zu client_cpu_ms=%" PRId64 " wall_ms=%"
               PRId64 " closed_by_server=%" PRIu64, lat_n, cpu_all / 1000,
               wall_us / 1000, n_closed_by_server);
        printf(" events_in_window=%" PRIu64 " events_per_s=%.0f"
               " window_cpu_ms=%" PRId64 " cpu_pct=%.1f", n_events_window,
               wall_us > 0 ? n_events_window * 1e6 / wall_us : 0.0,
               cpu_win / 1000,
               wall_us > 0 ? 100.0 * cpu_win / wall_us : 0.0);
        print_lat("latency_us_min", lat, lat_n, 0.0);
        print_lat("latency_us_p90", lat, lat_n, 0.90);
        print_lat("latency_us_p999", lat, lat_n, 0.999);
        if (lat_n) {
            printf(" latency_us_mean=%.0f", sum / lat_n);
        } else {
            printf(" latency_us_mean=-");
        }
        printf(" no_timestamp=%" PRIu64 " bad_timestamp=%" PRIu64
               " setup_ms=%" PRId64 " total_ms=%" PRId64
               " fail_connect=%" PRIu64 " fail_timeout=%" PRIu64
               " fail_eof=%" PRIu64 " fail_proto=%" PRIu64
               " read_errors=%" PRIu64 " proto_errors=%" PRIu64
               " hard_cap=%d\n",
               n_no_ts, n_bad_ts, (win_start - t0) / 1000, total_us / 1000,
               n_fail_connect, n_fail_timeout, n_fail_eof, n_fail_proto,
               n_read_errors, n_proto_errors, hard_cap);
    }

    if (out != NULL) {
        for (i = 0; i < ids_n; i++) {
            id_stat_t  *s = &ids[i];

            qsort(s->lat, s->n, sizeof(int64_t), cmp_i64);
            fputs("id=", stdout);
            put_token(stdout, s->id, strlen(s->id));
            printf(" receivers=%" PRIu64 " samples=%zu", s->receivers, s->n);
            if (s->n) {
                printf(" p50_us=%" PRId64 " max_us=%" PRId64 "\n",
                       pct(s->lat, s->n, 0.5), s->lat[s->n - 1]);
            } else {
                printf(" p50_us=- max_us=-\n");
            }
            free(s->lat);
            free(s->id);
        }
        free(ids);
        free(id_hash);
        if (fclose(out) != 0) {
            fprintf(stderr, "sse_client: %s: write error\n", opt_out);
        }
    }

    free(lat);
    free(conns);
    free(evs);
    free(request);

    return 0;
}
