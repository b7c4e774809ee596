
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>
#include <ngx_http_stockprice_module.h>
#include <ngx_http_stockprice_zone.h>
#include <ngx_http_stockprice_fetch.h>


#define NGX_HTTP_STOCKPRICE_CREDENTIALS_MAX  4096
#define NGX_HTTP_STOCKPRICE_HISTORY_MAX      1000


static void *ngx_http_stockprice_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_stockprice_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_stockprice_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_stockprice_poll(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_stockprice(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_stockprice_check_url(ngx_str_t *url);
static ngx_int_t ngx_http_stockprice_make_url(ngx_conf_t *cf,
    ngx_http_stockprice_feed_t *feed, ngx_str_t *url, ngx_str_t *list,
    ngx_array_t *symbols);
static int ngx_libc_cdecl ngx_http_stockprice_cmp_str(const void *one,
    const void *two);
static ngx_int_t ngx_http_stockprice_init_process(ngx_cycle_t *cycle);
static void ngx_http_stockprice_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_stockprice_commands[] = {

    { ngx_string("stockprice_poll"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_stockprice_poll,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("stockprice"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_stockprice,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("stockprice_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_stockprice,
      NGX_HTTP_LOC_CONF_OFFSET,
      1,
      NULL },

    { ngx_string("stockprice_demo_feed"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE12,
      ngx_http_stockprice_demo_feed,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_stockprice_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_stockprice_create_main_conf,  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_stockprice_create_loc_conf,   /* create location configuration */
    ngx_http_stockprice_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_stockprice_module = {
    NGX_MODULE_V1,
    &ngx_http_stockprice_module_ctx,       /* module context */
    ngx_http_stockprice_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_stockprice_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_stockprice_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_stockprice_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_stockprice_main_conf_t  *spcf;

    spcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_stockprice_main_conf_t));
    if (spcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&spcf->feeds, cf->pool, 1,
                       sizeof(ngx_http_stockprice_feed_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return spcf;
}


static void *
ngx_http_stockprice_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_stockprice_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_stockprice_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->shm_zone = NULL;
     *     conf->status = 0;
     *     conf->demo_symbols = NULL;
     *     conf->demo_user = { 0, NULL };
     *     conf->demo_password = { 0, NULL };
     *     conf->demo_prices = NULL;
     */

    return conf;
}


static char *
ngx_http_stockprice_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_stockprice_loc_conf_t  *conf = child;

    /* every stockprice_poll is parsed by now: the zone must be declared */

    if (conf->shm_zone && conf->shm_zone->data == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "unknown stockprice zone \"%V\" in %s:%ui",
                      &conf->shm_zone->shm.name, conf->file, conf->line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_stockprice_poll(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_stockprice_main_conf_t *spcf = conf;

    u_char                       *p;
    char                         *rv;
    size_t                        len;
    ssize_t                       size, max_size;
    ngx_str_t                    *value, name, s, url, credentials;
    ngx_str_t                     user, password;
    ngx_int_t                     n;
    ngx_uint_t                    i;
    ngx_msec_t                    msec;
    ngx_str_t                     list;
    ngx_array_t                  *symbols;
    ngx_shm_zone_t               *shm_zone;
    ngx_http_stockprice_ctx_t    *ctx;
    ngx_http_stockprice_feed_t   *feed, **feedp;

    value = cf->args->elts;

    feed = ngx_pcalloc(cf->pool, sizeof(ngx_http_stockprice_feed_t));
    if (feed == NULL) {
        return NGX_CONF_ERROR;
    }

    feed->interval = 10000;
    feed->timeout = 5000;
    feed->max_size = 1024 * 1024;
    feed->history = 1;

    url = value[1];

    if (ngx_http_stockprice_check_url(&url) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL \"%V\": must be http:// or https://",
                           &url);
        return NGX_CONF_ERROR;
    }

    name.len = 0;
    size = 0;
    symbols = NULL;
    ngx_str_null(&list);
    ngx_str_null(&credentials);

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            name.data = value[i].data + 5;

            p = (u_char *) ngx_strchr(name.data, ':');

            if (p == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            name.len = p - name.data;

            s.data = p + 1;
            s.len = value[i].data + value[i].len - s.data;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR || name.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            if (size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "zone \"%V\" is too small, at least %uzk "
                                   "is needed", &value[i],
                                   8 * ngx_pagesize / 1024);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "interval=", 9) == 0
            || ngx_strncmp(value[i].data, "timeout=", 8) == 0)
        {
            len = (value[i].data[0] == 'i') ? 9 : 8;

            s.data = value[i].data + len;
            s.len = value[i].len - len;

            msec = ngx_parse_time(&s, 0);

            if (msec == (ngx_msec_t) NGX_ERROR || msec == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid %*s \"%V\": must be a positive "
                                   "time", len - 1, value[i].data,
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            if (len == 9) {
                feed->interval = msec;

            } else {
                feed->timeout = msec;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "auth=", 5) == 0) {

            feed->auth_url.data = value[i].data + 5;
            feed->auth_url.len = value[i].len - 5;

            if (ngx_http_stockprice_check_url(&feed->auth_url) != NGX_OK) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid auth URL \"%V\": must be http:// "
                                   "or https://", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "credentials=", 12) == 0) {

            credentials.data = value[i].data + 12;
            credentials.len = value[i].len - 12;

            if (credentials.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid credentials \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "symbols=", 8) == 0) {

            list.data = value[i].data + 8;
            list.len = value[i].len - 8;

            rv = ngx_http_stockprice_parse_symbols(cf, &list, &symbols);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "history=", 8) == 0) {

            n = ngx_atoi(value[i].data + 8, value[i].len - 8);

            if (n < 1 || n > NGX_HTTP_STOCKPRICE_HISTORY_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid history \"%V\": must be 1..%d",
                                   &value[i], NGX_HTTP_STOCKPRICE_HISTORY_MAX);
                return NGX_CONF_ERROR;
            }

            feed->history = n;

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_size=", 9) == 0) {

            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            max_size = ngx_parse_size(&s);

            if (max_size == NGX_ERROR || max_size <= 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            feed->max_size = max_size;

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (feed->auth_url.len && credentials.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"auth\" requires \"credentials\"");
        return NGX_CONF_ERROR;
    }

    if (credentials.len && feed->auth_url.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"credentials\" requires \"auth\"");
        return NGX_CONF_ERROR;
    }

    if (credentials.len) {
        rv = ngx_http_stockprice_read_credentials(cf, &credentials, &user,
                                                  &password);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        len = ngx_http_stockprice_render_credentials(NULL,
                                           (char *) user.data, user.len,
                                           (char *) password.data,
                                           password.len);

        feed->auth_body.data = ngx_pnalloc(cf->pool, len + 1);
        if (feed->auth_body.data == NULL) {
            return NGX_CONF_ERROR;
        }

        feed->auth_body.len = ngx_http_stockprice_render_credentials(
                                           (char *) feed->auth_body.data,
                                           (char *) user.data, user.len,
                                           (char *) password.data,
                                           password.len);
        feed->auth_body.data[feed->auth_body.len] = '\0';

        ngx_explicit_memzero(password.data, password.len);

        /* a NUL-terminated copy for curl */
        p = ngx_pnalloc(cf->pool, feed->auth_url.len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p, feed->auth_url.data, feed->auth_url.len);
        p[feed->auth_url.len] = '\0';
        feed->auth_url.data = p;
    }

    if (ngx_http_stockprice_make_url(cf, feed, &url, &list, symbols)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_stockprice_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "stockprice zone \"%V\" is already declared",
                           &name);
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_stockprice_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    ctx->feed = feed;
    feed->shm_zone = shm_zone;

    shm_zone->init = ngx_http_stockprice_init_zone;
    shm_zone->data = ctx;

    feedp = ngx_array_push(&spcf->feeds);
    if (feedp == NULL) {
        return NGX_CONF_ERROR;
    }

    *feedp = feed;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_stockprice_check_url(ngx_str_t *url)
{
    size_t  len;

    if (url->len > 7 && ngx_strncasecmp(url->data, (u_char *) "http://", 7)
                        == 0)
    {
        len = 7;

    } else if (url->len > 8
               && ngx_strncasecmp(url->data, (u_char *) "https://", 8) == 0)
    {
        len = 8;

    } else {
        return NGX_ERROR;
    }

    /* a host must follow */

    if (url->data[len] == '/' || url->data[len] == '?'
        || url->data[len] == '#' || url->data[len] == ':')
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_stockprice_make_url(ngx_conf_t *cf, ngx_http_stockprice_feed_t *feed,
    ngx_str_t *url, ngx_str_t *list, ngx_array_t *symbols)
{
    u_char      *p;
    size_t       len;
    ngx_str_t   *sym;
    ngx_uint_t   i;

    len = url->len + 1;

    if (symbols) {
        /* the parser's filter: sorted and unique */

        feed->filter = ngx_palloc(cf->pool, symbols->nelts
                                          * sizeof(ngx_http_stockprice_str_t));
        if (feed->filter == NULL) {
            return NGX_ERROR;
        }

        sym = symbols->elts;

        for (i = 0; i < symbols->nelts; i++) {
            feed->filter[i].data = (char *) sym[i].data;
            feed->filter[i].len = sym[i].len;
        }

        feed->nfilter = symbols->nelts;

        /* upstream: the list as the operator wrote it */

        len += sizeof("?symbols=") - 1 + list->len
               + 2 * ngx_escape_uri(NULL, list->data, list->len,
                                    NGX_ESCAPE_ARGS);
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    feed->url.data = p;
    p = ngx_cpymem(p, url->data, url->len);

    if (symbols) {
        p = ngx_cpymem(p, ngx_strlchr(url->data, url->data + url->len, '?')
                          ? "&symbols=" : "?symbols=",
                       sizeof("?symbols=") - 1);

        p = (u_char *) ngx_escape_uri(p, list->data, list->len,
                                      NGX_ESCAPE_ARGS);
    }

    feed->url.len = p - feed->url.data;
    *p = '\0';

    return NGX_OK;
}


char *
ngx_http_stockprice_parse_symbols(ngx_conf_t *cf, ngx_str_t *list,
    ngx_array_t **symbols)
{
    u_char      *p, *last, *comma;
    ngx_str_t   *sym;
    ngx_uint_t   i, j;
    ngx_array_t *a;

    a = ngx_array_create(cf->pool, 8, sizeof(ngx_str_t));
    if (a == NULL) {
        return NGX_CONF_ERROR;
    }

    p = list->data;
    last = list->data + list->len;

    while (p <= last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if (!ngx_http_stockprice_symbol_valid((char *) p, comma - p)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid symbol \"%*s\" in \"symbols=%V\"",
                               comma - p, p, list);
            return NGX_CONF_ERROR;
        }

        sym = ngx_array_push(a);
        if (sym == NULL) {
            return NGX_CONF_ERROR;
        }

        sym->data = p;
        sym->len = comma - p;

        p = comma + 1;
    }

    /* sorted and unique, as the parser's filter wants them */

    ngx_qsort(a->elts, a->nelts, sizeof(ngx_str_t),
              ngx_http_stockprice_cmp_str);

    sym = a->elts;

    for (i = 1, j = 1; i < a->nelts; i++) {
        if (ngx_http_stockprice_cmp_str(&sym[i], &sym[j - 1]) != 0) {
            sym[j++] = sym[i];
        }
    }

    if (a->nelts) {
        a->nelts = j;
    }

    *symbols = a;

    return NGX_CONF_OK;
}


static int ngx_libc_cdecl
ngx_http_stockprice_cmp_str(const void *one, const void *two)
{
    const ngx_str_t  *a = one;
    const ngx_str_t  *b = two;

    return ngx_http_stockprice_symbol_cmp((char *) a->data, a->len,
                                          (char *) b->data, b->len);
}


char *
ngx_http_stockprice_read_credentials(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *user, ngx_str_t *password)
{
    u_char                     *buf;
    ssize_t                     n;
    ngx_fd_t                    fd;
    ngx_str_t                   name;
    ngx_http_stockprice_str_t   u, pw;

    name = *file;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open credentials file \"%s\"", name.data);
        return NGX_CONF_ERROR;
    }

    buf = ngx_pnalloc(cf->pool, NGX_HTTP_STOCKPRICE_CREDENTIALS_MAX);
    if (buf == NULL) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, buf, NGX_HTTP_STOCKPRICE_CREDENTIALS_MAX);

    if (n == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read credentials file \"%s\"", name.data);
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    ngx_close_file(fd);

    if (ngx_http_stockprice_parse_credentials((char *) buf, n, &u, &pw) != 0) {
        ngx_explicit_memzero(buf, n);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "credentials file \"%s\" has no "
                           "\"username:password\" first line", name.data);
        return NGX_CONF_ERROR;
    }

    user->data = (u_char *) u.data;
    user->len = u.len;
    password->data = (u_char *) pw.data;
    password->len = pw.len;

    return NGX_CONF_OK;
}


static char *
ngx_http_stockprice(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_stockprice_loc_conf_t *slcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (slcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    slcf->shm_zone = ngx_shared_memory_add(cf, &value[1], 0,
                                           &ngx_http_stockprice_module);
    if (slcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    slcf->status = cmd->offset;
    slcf->file = cf->conf_file->file.name.data;
    slcf->line = cf->conf_file->line;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = slcf->status ? ngx_http_stockprice_status_handler
                                 : ngx_http_stockprice_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_stockprice_init_process(ngx_cycle_t *cycle)
{
    ngx_http_stockprice_main_conf_t  *spcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    spcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_stockprice_module);

    if (spcf == NULL || spcf->feeds.nelts == 0) {
        return NGX_OK;
    }

    return ngx_http_stockprice_fetch_init(cycle, spcf);
}


static void
ngx_http_stockprice_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                        i;
    ngx_http_stockprice_feed_t      **feeds;
    ngx_http_stockprice_main_conf_t  *spcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return;
    }

    spcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_stockprice_module);

    if (spcf == NULL || spcf->feeds.nelts == 0) {
        return;
    }

    ngx_http_stockprice_fetch_exit(cycle, spcf);

    feeds = spcf->feeds.elts;

    for (i = 0; i < spcf->feeds.nelts; i++) {
        ngx_http_stockprice_cache_exit(feeds[i]->shm_zone->data);
    }
}
