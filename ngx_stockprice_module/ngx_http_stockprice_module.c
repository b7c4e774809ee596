
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_md5.h>

#include <ngx_http_stockprice_parse.h>
#include <ngx_http_stockprice_render.h>
#include <ngx_http_stockprice_module.h>
#include <ngx_http_stockprice_zone.h>
#include <ngx_http_stockprice_fetch.h>
#include <ngx_http_stockprice_ssl.h>
#include <ngx_http_stockprice_request.h>
#include <ngx_http_stockprice_stream.h>
#include <ngx_http_stockprice_notify.h>
#include <ngx_http_stockprice_persist.h>


#define NGX_HTTP_STOCKPRICE_CREDENTIALS_MAX  4096
#define NGX_HTTP_STOCKPRICE_SYMBOLS_FILE_MAX (1024 * 1024)
#define NGX_HTTP_STOCKPRICE_HISTORY_MAX      1000
#define NGX_HTTP_STOCKPRICE_INTERVAL         10000
#define NGX_HTTP_STOCKPRICE_TIMEOUT          5000
#define NGX_HTTP_STOCKPRICE_MAX_SIZE         (1024 * 1024)
#define NGX_HTTP_STOCKPRICE_CONCURRENCY      4


/* one stockprice_poll's parameters as read, before the feed is made */

typedef struct {
    ngx_http_stockprice_feed_t     *feed;
    ngx_str_t                       url;
    ngx_str_t                       zone;
    ssize_t                         size;
    ngx_str_t                       auth;
    ngx_str_t                       credentials;
    ngx_str_t                       scope;
    ngx_uint_t                      auth_type_set;
    ngx_str_t                       list;
    ngx_array_t                    *symbols;
    ngx_array_t                    *secrets;
    ngx_array_t                    *headers;
    ngx_str_t                       urls[NGX_HTTP_STOCKPRICE_UPSTREAMS];
    ngx_uint_t                      nurls;      /* the URL, backup= */
} ngx_http_stockprice_poll_t;


typedef char *(*ngx_http_stockprice_poll_pt)(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);

typedef struct {
    ngx_str_t                       name;       /* "zone=" */
    ngx_http_stockprice_poll_pt     set;
    ngx_uint_t                      multi;      /* may be given again */
} ngx_http_stockprice_param_t;


static void *ngx_http_stockprice_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_stockprice_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_stockprice_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_stockprice_poll(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_stockprice_poll_zone(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_interval(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_timeout(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_time(ngx_conf_t *cf, ngx_str_t *arg,
    ngx_str_t *value, const char *name, ngx_msec_t *msec);
static char *ngx_http_stockprice_poll_auth(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_credentials(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_auth_type(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_scope(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_symbols(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_symbols_file(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_state(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_history(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_max_size(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_ssl_verify(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_ssl_trusted(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_ssl_cert(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_ssl_key(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_proxy(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_secret(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_backup(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_header(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_count(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_field(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_time_field(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value);
static char *ngx_http_stockprice_poll_pointer(ngx_conf_t *cf, ngx_str_t *arg,
    ngx_str_t *value, ngx_http_stockprice_pointer_t *pointer);
static char *ngx_http_stockprice_poll_check(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_http_stockprice_poll_t *p);
static char *ngx_http_stockprice_poll_feed(ngx_conf_t *cf,
    ngx_http_stockprice_main_conf_t *spcf, ngx_http_stockprice_poll_t *p);
static char *ngx_http_stockprice_poll_auth_body(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p);
static char *ngx_http_stockprice_poll_oauth2(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *id, ngx_str_t *secret);
static void ngx_http_stockprice_poll_keys(ngx_conf_t *cf,
    ngx_http_stockprice_feed_t *feed);
static void ngx_http_stockprice_poll_hashes(ngx_http_stockprice_feed_t *feed,
    ngx_str_t *url);
static char *ngx_http_stockprice(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_stockprice_conf_symbols_file(ngx_conf_t *cf,
    ngx_str_t *file, ngx_str_t *list);
static ngx_int_t ngx_http_stockprice_conf_check_url(ngx_str_t *url);
static ngx_int_t ngx_http_stockprice_conf_url(ngx_conf_t *cf, ngx_str_t *url,
    ngx_str_t *shown, const char *what);
static ngx_int_t ngx_http_stockprice_conf_filter(ngx_conf_t *cf,
    ngx_http_stockprice_feed_t *feed, ngx_array_t *symbols);
static int ngx_libc_cdecl ngx_http_stockprice_conf_cmp_str(const void *one,
    const void *two);
static ngx_int_t ngx_http_stockprice_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_stockprice_init_process(ngx_cycle_t *cycle);
static void ngx_http_stockprice_wake(void *data);
static void ngx_http_stockprice_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_stockprice_commands[] = {

    { ngx_string("stockprice_poll"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_stockprice_poll,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("stockprice"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
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


static ngx_http_stockprice_param_t  ngx_http_stockprice_poll_params[] = {
    { ngx_string("zone="), ngx_http_stockprice_poll_zone, 0 },
    { ngx_string("interval="), ngx_http_stockprice_poll_interval, 0 },
    { ngx_string("timeout="), ngx_http_stockprice_poll_timeout, 0 },
    { ngx_string("auth="), ngx_http_stockprice_poll_auth, 0 },
    { ngx_string("credentials="), ngx_http_stockprice_poll_credentials, 0 },
    { ngx_string("auth_type="), ngx_http_stockprice_poll_auth_type, 0 },
    { ngx_string("scope="), ngx_http_stockprice_poll_scope, 0 },
    { ngx_string("symbols="), ngx_http_stockprice_poll_symbols, 0 },
    { ngx_string("symbols_file="), ngx_http_stockprice_poll_symbols_file, 0 },
    { ngx_string("history="), ngx_http_stockprice_poll_history, 0 },
    { ngx_string("max_size="), ngx_http_stockprice_poll_max_size, 0 },
    { ngx_string("ssl_verify="), ngx_http_stockprice_poll_ssl_verify, 0 },
    { ngx_string("ssl_trusted_certificate="),
      ngx_http_stockprice_poll_ssl_trusted, 0 },
    { ngx_string("ssl_certificate="), ngx_http_stockprice_poll_ssl_cert, 0 },
    { ngx_string("ssl_certificate_key="), ngx_http_stockprice_poll_ssl_key, 0 },
    { ngx_string("proxy="), ngx_http_stockprice_poll_proxy, 0 },
    { ngx_string("secret="), ngx_http_stockprice_poll_secret, 1 },
    { ngx_string("header="), ngx_http_stockprice_poll_header, 1 },
    { ngx_string("backup="), ngx_http_stockprice_poll_backup, 1 },
    { ngx_string("batch="), ngx_http_stockprice_poll_count, 0 },
    { ngx_string("concurrency="), ngx_http_stockprice_poll_count, 0 },
    { ngx_string("records="), ngx_http_stockprice_poll_field, 0 },
    { ngx_string("symbol_field="), ngx_http_stockprice_poll_field, 0 },
    { ngx_string("price_field="), ngx_http_stockprice_poll_field, 0 },
    { ngx_string("time_field="), ngx_http_stockprice_poll_time_field, 0 },
    { ngx_string("state="), ngx_http_stockprice_poll_state, 0 },
    { ngx_null_string, NULL, 0 }
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
    ngx_http_stockprice_init_module,       /* init module */
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

    ngx_http_stockprice_ctx_t  *ctx;

    /* every stockprice_poll is parsed by now: the zone must be declared */

    if (conf->shm_zone && conf->shm_zone->data == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "unknown stockprice zone \"%V\" in %s:%ui",
                      &conf->shm_zone->shm.name, conf->file, conf->line);
        return NGX_CONF_ERROR;
    }

    /* a compressed list kept in the zone if any location serves it */

    if (conf->shm_zone && conf->gzip) {
        ctx = conf->shm_zone->data;
        ctx->feed->gzip = 1;
    }

    return NGX_CONF_OK;
}


/*
 * stockprice_poll URL zone=NAME:SIZE [name=value ...]: each parameter set
 * by its entry of ngx_http_stockprice_poll_params, then all checked
 * together, then the feed and its zone made
 */

static char *
ngx_http_stockprice_poll(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_stockprice_main_conf_t *spcf = conf;

    char                         *rv;
    ngx_str_t                    *value, v;
    ngx_uint_t                    i, seen;
    ngx_http_stockprice_poll_t    poll;
    ngx_http_stockprice_param_t  *param;

    value = cf->args->elts;

    ngx_memzero(&poll, sizeof(ngx_http_stockprice_poll_t));

    poll.feed = ngx_pcalloc(cf->pool, sizeof(ngx_http_stockprice_feed_t));
    if (poll.feed == NULL) {
        return NGX_CONF_ERROR;
    }

    poll.feed->interval = NGX_HTTP_STOCKPRICE_INTERVAL;
    poll.feed->timeout = NGX_HTTP_STOCKPRICE_TIMEOUT;
    poll.feed->max_size = NGX_HTTP_STOCKPRICE_MAX_SIZE;
    poll.feed->history = 1;
    poll.feed->ssl.verify = 1;
    ngx_str_set(&poll.feed->proxy, "");
    ngx_http_stockprice_parse_shape_default(&poll.feed->shape);
    poll.feed->concurrency = NGX_HTTP_STOCKPRICE_CONCURRENCY;
    poll.url = value[1];

    if (ngx_http_stockprice_conf_url(cf, &poll.url, &poll.url, "")
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    poll.urls[0] = poll.url;
    poll.nurls = 1;

    seen = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        for (param = ngx_http_stockprice_poll_params; param->set; param++) {
            if (value[i].len >= param->name.len
                && ngx_strncmp(value[i].data, param->name.data,
                               param->name.len)
                   == 0)
            {
                break;
            }
        }

        if (param->set == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (!param->multi
            && (seen & (1 << (param - ngx_http_stockprice_poll_params))))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        seen |= 1 << (param - ngx_http_stockprice_poll_params);

        v.data = value[i].data + param->name.len;
        v.len = value[i].len - param->name.len;

        rv = param->set(cf, &poll, &value[i], &v);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    rv = ngx_http_stockprice_poll_check(cf, cmd, &poll);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    return ngx_http_stockprice_poll_feed(cf, spcf, &poll);
}


static char *
ngx_http_stockprice_poll_zone(ngx_conf_t *cf, ngx_http_stockprice_poll_t *p,
    ngx_str_t *arg, ngx_str_t *value)
{
    u_char     *colon;
    ssize_t     size;
    ngx_str_t   s;

    colon = ngx_strlchr(value->data, value->data + value->len, ':');

    if (colon == NULL || colon == value->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", arg);
        return NGX_CONF_ERROR;
    }

    p->zone.data = value->data;
    p->zone.len = colon - value->data;

    s.data = colon + 1;
    s.len = value->data + value->len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", arg);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small, at least %uzk is needed",
                           arg, 8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    p->size = size;

    return NGX_CONF_OK;
}


static char *
ngx_http_stockprice_poll_interval(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value)
{
    return ngx_http_stockprice_poll_time(cf, arg, value, "interval",
                                         &p->feed->interval);
}


static char *
ngx_http_stockprice_poll_timeout(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value)
{
    return ngx_http_stockprice_poll_time(cf, arg, value, "timeout",
                                         &p->feed->timeout);
}


static char *
ngx_http_stockprice_poll_time(ngx_conf_t *cf, ngx_str_t *arg,
    ngx_str_t *value, const char *name, ngx_msec_t *msec)
{
    ngx_msec_t  ms;

    ms = ngx_parse_time(value, 0);

    if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid %s \"%V\": must be a positive time",
                           name, arg);
        return NGX_CONF_ERROR;
    }

    *msec = ms;

    return NGX_CONF_OK;
}


static char *
ngx_http_stockprice_poll_auth(ngx_conf_t *cf, ngx_http_stockprice_poll_t *p,
    ngx_str_t *arg, ngx_str_t *value)
{
    if (ngx_http_stockprice_conf_url(cf, value, arg, "auth ") != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    p->auth = *value;

    return NGX_CONF_OK;
}


static char *
ngx_http_stockprice_poll_credentials(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value)
{
    if (value->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid credentials \"%V\"", arg);
        return NGX_CONF_ERROR;
    }

    p->credentials = *value;

    return NGX_CONF_OK;
}


static char *
ngx_http_stockprice_poll_auth_type(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value)
{
    if (value->len == sizeof("login") - 1
        && ngx_strncmp(value->data, "login", value->len) == 0)
    {
        p->feed->auth_type = NGX_HTTP_STOCKPRICE_AUTH_LOGIN;

    } else if (value->len == sizeof("client_credentials") - 1
               && ngx_strncmp(value->data, "client_credentials",
                              value->len)
                  == 0)
    {
        p->feed->auth_type = NGX_HTTP_STOCKPRICE_AUTH_OAUTH2;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid auth_type \"%V\": must be login or "
                           "client_credentials", arg);
        return NGX_CONF_ERROR;
    }

    p->auth_type_set = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_stockprice_poll_scope(ngx_conf_t *cf, ngx_http_stockprice_poll_t *p,
    ngx_str_t *arg, ngx_str_t *value)
{
    if (value->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid scope \"%V\"", arg);
        return NGX_CONF_ERROR;
    }

    p->scope = *value;

    return NGX_CONF_OK;
}


static char *
ngx_http_stockprice_poll_symbols(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value)
{
    if (p->symbols) {
        return "\"symbols\" and \"symbols_file\" cannot both be set";
    }

    p->list = *value;

    return ngx_http_stockprice_conf_symbols(cf, &p->list, &p->symbols);
}


static char *
ngx_http_stockprice_poll_symbols_file(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value)
{
    char  *rv;

    if (p->symbols) {
        return "\"symbols\" and \"symbols_file\" cannot both be set";
    }

    if (value->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid symbols file \"%V\"", arg);
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_stockprice_conf_symbols_file(cf, value, &p->list);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    return ngx_http_stockprice_conf_symbols(cf, &p->list, &p->symbols);
}


/*
 * state=FILE: from the prefix, in a directory that is there; written in
 * nginx's thread pool "default", as "aio threads" does
 */

static char *
ngx_http_stockprice_poll_state(ngx_conf_t *cf, ngx_http_stockprice_poll_t *p,
    ngx_str_t *arg, ngx_str_t *value)
{
    u_char           *slash;
    ngx_str_t         path, dir;
    ngx_file_info_t   fi;

    path = *value;

    if (path.len == 0 || path.data[path.len - 1] == '/'
        || ngx_strlchr(path.data, path.data + path.len, '\0'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid state file \"%V\"", arg);
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* NUL-terminated, as an argument's end is; a relative -p, relative */

    for (slash = path.data + path.len - 1;
         slash > path.data && *slash != '/';
         slash--)
    {
        /* void */
    }

    if (*slash != '/') {
        ngx_str_set(&dir, ".");

    } else {
        dir.len = (slash == path.data) ? 1 : (size_t) (slash - path.data);
        dir.data = ngx_pnalloc(cf->pool, dir.len + 1);
        if (dir.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(dir.data, path.data, dir.len);
        dir.data[dir.len] = '\0';
    }

    if (ngx_file_info(dir.data, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "state file \"%V\": directory \"%V\" not found",
                           &path, &dir);
        return NGX_CONF_ERROR;
    }

    if (!ngx_is_dir(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "state file \"%V\": \"%V\" is not a directory",
                           &path, &dir);
        return NGX_CONF_ERROR;
    }

    p->feed->state = path;
    p->feed->state_dir = dir;

#if (NGX_THREADS)
    p->feed->thread_pool = ngx_thread_pool_add(cf, NULL);
    if (p->feed->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }
#endif

    return NGX_CONF_OK;
}


static char *
ngx_http_stockprice_poll_history(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value)
{
    ngx_int_t  n;

    n = ngx_atoi(value->data, value->len);

    if (n < 1 || n > NGX_HTTP_STOCKPRICE_HISTORY_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid history \"%V\": must be 1..%d",
                           arg, NGX_HTTP_STOCKPRICE_HISTORY_MAX);
        return NGX_CONF_ERROR;
    }

    p->feed->history = n;

    return NGX_CONF_OK;
}


static char *
ngx_http_stockprice_poll_max_size(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value)
{
    ssize_t  size;

    size = ngx_parse_size(value);

    if (size == NGX_ERROR || size <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid max_size \"%V\"", arg);
        return NGX_CONF_ERROR;
    }

    p->feed->max_size = size;

    return NGX_CONF_OK;
}


static char *
ngx_http_stockprice_poll_ssl_verify(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value)
{
    return ngx_http_stockprice_ssl_verify(cf, &p->feed->ssl, arg, value);
}


static char *
ngx_http_stockprice_poll_ssl_trusted(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value)
{
    return ngx_http_stockprice_ssl_file(cf, &p->feed->ssl,
                                        NGX_HTTP_STOCKPRICE_SSL_TRUSTED, arg,
                                        value);
}


static char *
ngx_http_stockprice_poll_ssl_cert(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value)
{
    return ngx_http_stockprice_ssl_file(cf, &p->feed->ssl,
                                        NGX_HTTP_STOCKPRICE_SSL_CERT, arg,
                                        value);
}


static char *
ngx_http_stockprice_poll_ssl_key(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value)
{
    return ngx_http_stockprice_ssl_file(cf, &p->feed->ssl,
                                        NGX_HTTP_STOCKPRICE_SSL_KEY, arg,
                                        value);
}


/* a forward proxy for every upstream request; the environment's are not */

/* batch=N, concurrency=N */

static char *
ngx_http_stockprice_poll_count(ngx_conf_t *cf, ngx_http_stockprice_poll_t *p,
    ngx_str_t *arg, ngx_str_t *value)
{
    ngx_int_t  n;

    n = ngx_atoi(value->data, value->len);

    if (arg->data[0] == 'b') {
        if (n == NGX_ERROR || n < 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid batch \"%V\": must be at least 1",
                               arg);
            return NGX_CONF_ERROR;
        }

        p->feed->batch = n;
        return NGX_CONF_OK;
    }

    if (n == NGX_ERROR || n < 1 || n > NGX_HTTP_STOCKPRICE_CONCURRENCY_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid concurrency \"%V\": must be 1 to %d",
                           arg, NGX_HTTP_STOCKPRICE_CONCURRENCY_MAX);
        return NGX_CONF_ERROR;
    }

    p->feed->concurrency = n;

    return NGX_CONF_OK;
}


/* records=, symbol_field=, price_field=: JSON Pointers */

static char *
ngx_http_stockprice_poll_field(ngx_conf_t *cf, ngx_http_stockprice_poll_t *p,
    ngx_str_t *arg, ngx_str_t *value)
{
    ngx_http_stockprice_shape_t  *shape;

    shape = &p->feed->shape;

    switch (arg->data[0]) {

    case 'r':
        p->feed->records = *value;
        return ngx_http_stockprice_poll_pointer(cf, arg, value,
                                                &shape->records);

    case 's':
        return ngx_http_stockprice_poll_pointer(cf, arg, value,
                                                &shape->symbol);

    default: /* 'p' */
        return ngx_http_stockprice_poll_pointer(cf, arg, value,
                                                &shape->price);
    }
}


/*
 * time_field=POINTER[:UNIT]: the unit after the last ":", so that a
 * pointer holding a ":" is written with its unit, "/a:b:iso"
 */

static char *
ngx_http_stockprice_poll_time_field(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p, ngx_str_t *arg, ngx_str_t *value)
{
    int         unit;
    u_char     *colon;
    ngx_str_t   pointer;

    pointer = *value;
    unit = NGX_HTTP_STOCKPRICE_TIME_ISO;

    for (colon = value->data + value->len; colon > value->data; colon--) {
        if (colon[-1] == ':') {
            break;
        }
    }

    if (colon > value->data) {
        pointer.len = colon - 1 - value->data;

        unit = ngx_http_stockprice_parse_time_unit((char *) colon,
                                         value->data + value->len - colon);
        if (unit == -1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid time unit in \"%V\": must be iso, s, "
                               "ms, us or ns", arg);
            return NGX_CONF_ERROR;
        }
    }

    p->feed->shape.time_unit = unit;

    return ngx_http_stockprice_poll_pointer(cf, arg, &pointer,
                                            &p->feed->shape.time);
}


static char *
ngx_http_stockprice_poll_pointer(ngx_conf_t *cf, ngx_str_t *arg,
    ngx_str_t *value, ngx_http_stockprice_pointer_t *pointer)
{
    int          rc;
    char        *out;
    const char  *why;

    out = ngx_pnalloc(cf->pool, value->len + 1);
    if (out == NULL) {
        return NGX_CONF_ERROR;
    }

    rc = ngx_http_stockprice_pointer_compile(pointer, (char *) value->data,
                                             value->len, out);

    switch (rc) {

    case NGX_HTTP_STOCKPRICE_POINTER_OK:
        return NGX_CONF_OK;

    case NGX_HTTP_STOCKPRICE_POINTER_NO_SLASH:
        why = "a JSON Pointer is empty or starts with \"/\"";
        break;

    case NGX_HTTP_STOCKPRICE_POINTER_ESCAPE:
        why = "\"~\" must be followed by \"0\" or \"1\"";
        break;

    case NGX_HTTP_STOCKPRICE_POINTER_DEEP:
        why = "more than 16 tokens";
        break;

    default:
        why = "a NUL byte";
        break;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid JSON Pointer in \"%V\": "
                       "%s", arg, why);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_stockprice_poll_proxy(ngx_conf_t *cf, ngx_http_stockprice_poll_t *p,
    ngx_str_t *arg, ngx_str_t *value)
{
    u_char      *s;
    ngx_str_t    rest;
    ngx_uint_t   i;

    static ngx_str_t  schemes[] = {
        ngx_string("http://"), ngx_string("https://"),
        ngx_string("socks5h://")
    };

    for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (value->len > schemes[i].len
            && ngx_strncasecmp(value->data, schemes[i].data, schemes[i].len)
               == 0)
        {
            break;
        }
    }

    rest.data = value->data + (i < 3 ? schemes[i].len : 0);
    rest.len = value->len - (rest.data - value->data);

    if (i == 3 || rest.data[0] == '/' || rest.data[0] == ':'
        || ngx_strlchr(rest.data, rest.data + rest.len, '$'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid proxy \"%V\": must be http://, "
                           "https:// or socks5h:// and a host", arg);
        return NGX_CONF_ERROR;
    }

    s = ngx_pnalloc(cf->pool, value->len + 1);
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(s, value->data, value->len);
    s[value->len] = '\0';

    p->feed->proxy.data = s;
    p->feed->proxy.len = value->len;

    return NGX_CONF_OK;
}


static char *
ngx_http_stockprice_poll_secret(ngx_conf_t *cf, ngx_http_stockprice_poll_t *p,
    ngx_str_t *arg, ngx_str_t *value)
{
    return ngx_http_stockprice_request_secret(cf, &p->secrets, arg, value);
}


/* backup=URL: tried in order when the ones before failed (CONTRACT 8) */

static char *
ngx_http_stockprice_poll_backup(ngx_conf_t *cf, ngx_http_stockprice_poll_t *p,
    ngx_str_t *arg, ngx_str_t *value)
{
    if (ngx_http_stockprice_conf_url(cf, value, arg, "backup ") != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (p->nurls == NGX_HTTP_STOCKPRICE_UPSTREAMS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many \"backup=\" in \"%V\": at most %d",
                           arg, NGX_HTTP_STOCKPRICE_UPSTREAMS - 1);
        return NGX_CONF_ERROR;
    }

    p->urls[p->nurls++] = *value;

    return NGX_CONF_OK;
}


static char *
ngx_http_stockprice_poll_header(ngx_conf_t *cf, ngx_http_stockprice_poll_t *p,
    ngx_str_t *arg, ngx_str_t *value)
{
    return ngx_http_stockprice_request_header(cf, &p->headers, arg, value);
}


/* the parameters together: what one requires of another */

static char *
ngx_http_stockprice_poll_check(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_stockprice_poll_t *p)
{
    if (p->zone.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (p->auth.len && p->credentials.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"auth\" requires \"credentials\"");
        return NGX_CONF_ERROR;
    }

    if (p->credentials.len && p->auth.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"credentials\" requires \"auth\"");
        return NGX_CONF_ERROR;
    }

    if (p->auth_type_set && p->auth.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"auth_type\" requires \"auth\"");
        return NGX_CONF_ERROR;
    }

    if (p->scope.len
        && p->feed->auth_type != NGX_HTTP_STOCKPRICE_AUTH_OAUTH2)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"scope\" requires "
                           "\"auth_type=client_credentials\"");
        return NGX_CONF_ERROR;
    }

    return ngx_http_stockprice_ssl_check(cf, &p->feed->ssl);
}


/* the feed from the parameters, and its zone */

static char *
ngx_http_stockprice_poll_feed(ngx_conf_t *cf,
    ngx_http_stockprice_main_conf_t *spcf, ngx_http_stockprice_poll_t *p)
{
    char                         *rv;
    ngx_uint_t                    i;
    ngx_shm_zone_t               *shm_zone;
    ngx_http_stockprice_ctx_t    *ctx;
    ngx_http_stockprice_feed_t   *feed, **feedp;

    feed = p->feed;

    if (p->credentials.len) {
        rv = ngx_http_stockprice_poll_auth_body(cf, p);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (ngx_http_stockprice_conf_filter(cf, feed, p->symbols) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_stockprice_request_make(cf, feed, p->urls, p->nurls,
                                          &p->list, p->symbols, p->secrets,
                                          p->headers);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    ngx_http_stockprice_poll_hashes(feed, &p->url);
    ngx_http_stockprice_poll_keys(cf, feed);

    feedp = spcf->feeds.elts;

    for (i = 0; feed->state.len && i < spcf->feeds.nelts; i++) {
        if (feedp[i]->state.len == feed->state.len
            && ngx_strncmp(feedp[i]->state.data, feed->state.data,
                           feed->state.len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "state file \"%V\" is already used by zone "
                               "\"%V\"", &feed->state,
                               &feedp[i]->shm_zone->shm.name);
            return NGX_CONF_ERROR;
        }
    }

    shm_zone = ngx_shared_memory_add(cf, &p->zone, p->size,
                                     &ngx_http_stockprice_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "stockprice zone \"%V\" is already declared",
                           &p->zone);
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_stockprice_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    ctx->feed = feed;
    feed->shm_zone = shm_zone;

    shm_zone->init = ngx_http_stockprice_zone_init;
    shm_zone->data = ctx;

    feedp = ngx_array_push(&spcf->feeds);
    if (feedp == NULL) {
        return NGX_CONF_ERROR;
    }

    *feedp = feed;

    return NGX_CONF_OK;
}


/* the auth request's JSON body from the credentials file */

static char *
ngx_http_stockprice_poll_auth_body(ngx_conf_t *cf,
    ngx_http_stockprice_poll_t *p)
{
    u_char                      *s;
    char                        *rv;
    size_t                       len;
    ngx_str_t                    user, password;
    ngx_http_stockprice_feed_t  *feed;

    feed = p->feed;

    rv = ngx_http_stockprice_conf_credentials(cf, &p->credentials, &user,
                                              &password);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (feed->auth_type == NGX_HTTP_STOCKPRICE_AUTH_OAUTH2) {
        rv = ngx_http_stockprice_poll_oauth2(cf, p, &user, &password);
        ngx_explicit_memzero(password.data, password.len);

        if (rv != NGX_CONF_OK) {
            return rv;
        }

    } else {
        len = ngx_http_stockprice_render_credentials(NULL,
                                       (char *) user.data, user.len,
                                       (char *) password.data, password.len);

        feed->auth_body.data = ngx_pnalloc(cf->pool, len + 1);
        if (feed->auth_body.data == NULL) {
            return NGX_CONF_ERROR;
        }

        feed->auth_body.len = ngx_http_stockprice_render_credentials(
                                       (char *) feed->auth_body.data,
                                       (char *) user.data, user.len,
                                       (char *) password.data, password.len);
        feed->auth_body.data[feed->auth_body.len] = '\0';

        ngx_explicit_memzero(password.data, password.len);
    }

    /* a NUL-terminated copy for curl */

    s = ngx_pnalloc(cf->pool, p->auth.len + 1);
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(s, p->auth.data, p->auth.len);
    s[p->auth.len] = '\0';

    feed->auth_url.data = s;
    feed->auth_url.len = p->auth.len;

    return NGX_CONF_OK;
}


/*
 * OAuth2 client credentials (RFC 6749 4.4): the form body, and HTTP Basic
 * of the form-urlencoded id and secret (2.3.1), made once; the secret
 * leaves no copy but the header
 */

static char *
ngx_http_stockprice_poll_oauth2(ngx_conf_t *cf, ngx_http_stockprice_poll_t *p,
    ngx_str_t *id, ngx_str_t *secret)
{
    u_char                      *q;
    size_t                       len;
    ngx_str_t                    plain, basic;
    ngx_http_stockprice_feed_t  *feed;

    feed = p->feed;

    len = sizeof("grant_type=client_credentials") - 1;

    if (p->scope.len) {
        len += sizeof("&scope=") - 1
               + ngx_http_stockprice_render_form(NULL, (char *) p->scope.data,
                                                 p->scope.len);
    }

    feed->auth_body.data = ngx_pnalloc(cf->pool, len + 1);
    if (feed->auth_body.data == NULL) {
        return NGX_CONF_ERROR;
    }

    q = ngx_cpymem(feed->auth_body.data, "grant_type=client_credentials",
                   sizeof("grant_type=client_credentials") - 1);

    if (p->scope.len) {
        q = ngx_cpymem(q, "&scope=", sizeof("&scope=") - 1);
        q += ngx_http_stockprice_render_form((char *) q,
                                             (char *) p->scope.data,
                                             p->scope.len);
    }

    *q = '\0';
    feed->auth_body.len = q - feed->auth_body.data;

    plain.len = ngx_http_stockprice_render_form(NULL, (char *) id->data,
                                                id->len)
                + 1
                + ngx_http_stockprice_render_form(NULL, (char *) secret->data,
                                                  secret->len);

    plain.data = ngx_pnalloc(cf->pool, plain.len);
    if (plain.data == NULL) {
        return NGX_CONF_ERROR;
    }

    q = plain.data;
    q += ngx_http_stockprice_render_form((char *) q, (char *) id->data,
                                         id->len);
    *q++ = ':';
    q += ngx_http_stockprice_render_form((char *) q, (char *) secret->data,
                                         secret->len);

    len = sizeof("Authorization: Basic ") - 1
          + ngx_base64_encoded_length(plain.len);

    feed->auth_basic.data = ngx_pnalloc(cf->pool, len + 1);
    if (feed->auth_basic.data == NULL) {
        ngx_explicit_memzero(plain.data, plain.len);
        return NGX_CONF_ERROR;
    }

    q = ngx_cpymem(feed->auth_basic.data, "Authorization: Basic ",
                   sizeof("Authorization: Basic ") - 1);

    basic.data = q;
    ngx_encode_base64(&basic, &plain);
    q += basic.len;
    *q = '\0';

    feed->auth_basic.len = q - feed->auth_basic.data;

    ngx_explicit_memzero(plain.data, plain.len);

    return NGX_CONF_OK;
}


/*
 * Whose validators a request's are (CONTRACT 8): its URL, the headers sent
 * and how the answer is read (every parameter but interval= and timeout=,
 * which change neither), so that a reload changing any of them asks anew
 * rather than keep records read another way
 */

static void
ngx_http_stockprice_poll_keys(ngx_conf_t *cf, ngx_http_stockprice_feed_t *feed)
{
    u_char      hash[16];
    ngx_str_t  *value, *line;
    ngx_md5_t   md5, part;
    ngx_uint_t  i;

    value = cf->args->elts;
    line = feed->headers ? feed->headers->elts : NULL;

    ngx_md5_init(&md5);

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "interval=", 9) == 0
            || ngx_strncmp(value[i].data, "timeout=", 8) == 0
            || ngx_strncmp(value[i].data, "backup=", 7) == 0)
        {
            continue;
        }

        ngx_md5_update(&md5, value[i].data, value[i].len);
        ngx_md5_update(&md5, "", 1);
    }

    /* with the secrets' values, which the parameters name only */

    for (i = 0; feed->headers && i < feed->headers->nelts; i++) {
        ngx_md5_update(&md5, line[i].data, line[i].len);
        ngx_md5_update(&md5, "", 1);
    }

    /* each upstream's request its own: a backup's answers are not ours */

    for (i = 0; i < feed->nparts * feed->nupstreams; i++) {
        part = md5;
        ngx_md5_update(&part, feed->parts[i].url.data, feed->parts[i].url.len);
        ngx_md5_final(hash, &part);

        ngx_memcpy(&feed->parts[i].key, hash, sizeof(uint64_t));

        if (feed->parts[i].key == 0) {
            feed->parts[i].key = 1;
        }
    }
}


/*
 * What a token is for (auth URL, credentials and the prices URL's scheme,
 * host and port: a reload that changes any of them starts without it),
 * and which symbols= a snapshot was made for
 */

static void
ngx_http_stockprice_poll_hashes(ngx_http_stockprice_feed_t *feed,
    ngx_str_t *url)
{
    u_char      *p, *last, hash[16];
    ngx_md5_t    md5;
    ngx_uint_t   i;

    p = ngx_strlchr(url->data, url->data + url->len, ':') + 3;
    last = url->data + url->len;

    while (p < last && *p != '/' && *p != '?' && *p != '#') {
        p++;
    }

    /* each part NUL-terminated, so that no two configurations meet */

    ngx_md5_init(&md5);
    ngx_md5_update(&md5, feed->auth_url.data, feed->auth_url.len);
    ngx_md5_update(&md5, "", 1);
    ngx_md5_update(&md5, feed->auth_body.data, feed->auth_body.len);
    ngx_md5_update(&md5, "", 1);
    ngx_md5_update(&md5, feed->auth_basic.data, feed->auth_basic.len);
    ngx_md5_update(&md5, "", 1);
    ngx_md5_update(&md5, url->data, p - url->data);
    ngx_md5_final(feed->token_owner, &md5);

    if (feed->nfilter == 0) {
        return;
    }

    ngx_md5_init(&md5);

    for (i = 0; i < feed->nfilter; i++) {
        ngx_md5_update(&md5, feed->filter[i].data, feed->filter[i].len);
        ngx_md5_update(&md5, "", 1);
    }

    ngx_md5_final(hash, &md5);
    ngx_memcpy(&feed->filter_hash, hash, sizeof(uint64_t));

    if (feed->filter_hash == 0) {
        feed->filter_hash = 1;
    }
}


/* an http:// or https:// URL, or "invalid [what ]URL" and "shown" said */

static ngx_int_t
ngx_http_stockprice_conf_url(ngx_conf_t *cf, ngx_str_t *url, ngx_str_t *shown,
    const char *what)
{
    if (ngx_http_stockprice_conf_check_url(url) == NGX_OK) {
        return NGX_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid %sURL \"%V\": must be http:// or https://",
                       what, shown);

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_stockprice_conf_check_url(ngx_str_t *url)
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


/* the parser's filter: symbols= sorted and unique */

static ngx_int_t
ngx_http_stockprice_conf_filter(ngx_conf_t *cf,
    ngx_http_stockprice_feed_t *feed, ngx_array_t *symbols)
{
    ngx_str_t   *sym;
    ngx_uint_t   i;

    if (symbols == NULL) {
        return NGX_OK;
    }

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

    return NGX_OK;
}


char *
ngx_http_stockprice_conf_symbols(ngx_conf_t *cf, ngx_str_t *list,
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

        if (!ngx_http_stockprice_parse_symbol_valid((char *) p, comma - p)) {
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
              ngx_http_stockprice_conf_cmp_str);

    sym = a->elts;

    for (i = 1, j = 1; i < a->nelts; i++) {
        if (ngx_http_stockprice_conf_cmp_str(&sym[i], &sym[j - 1]) != 0) {
            sym[j++] = sym[i];
        }
    }

    if (a->nelts) {
        a->nelts = j;
    }

    *symbols = a;

    return NGX_CONF_OK;
}


/*
 * A symbols file: one symbol per line, or several separated by commas;
 * blank lines, "#" comments, blanks around a symbol and a CR at the end
 * of a line are left out.  The symbols, checked, joined as "A,B,C".
 */

static char *
ngx_http_stockprice_conf_symbols_file(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *list)
{
    u_char     *p, *q, *eol, *e, *start, *end, *a, *b;
    char       *rv;
    ngx_str_t   content;
    ngx_uint_t  line;

    rv = ngx_http_stockprice_conf_read(cf, file, "symbols",
                                       NGX_HTTP_STOCKPRICE_SYMBOLS_FILE_MAX,
                                       &content);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    list->data = ngx_pnalloc(cf->pool, content.len + 1);
    if (list->data == NULL) {
        return NGX_CONF_ERROR;
    }

    q = list->data;

    for (p = content.data, line = 1; p < content.data + content.len;
         p = eol + 1, line++)
    {
        eol = ngx_strlchr(p, content.data + content.len, '\n');
        if (eol == NULL) {
            eol = content.data + content.len;
        }

        e = (eol > p && eol[-1] == '\r') ? eol - 1 : eol;

        for (a = p; a < e && (*a == ' ' || *a == '\t'); a++) { /* void */ }

        if (a == e || *a == '#') {
            continue;
        }

        for (start = p; /* void */; start = end + 1) {
            end = ngx_strlchr(start, e, ',');
            if (end == NULL) {
                end = e;
            }

            for (a = start; a < end && (*a == ' ' || *a == '\t'); a++) {
                /* void */
            }

            for (b = end; b > a && (b[-1] == ' ' || b[-1] == '\t'); b--) {
                /* void */
            }

            if (!ngx_http_stockprice_parse_symbol_valid((char *) a, b - a)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid symbol \"%*s\" in symbols file "
                                   "\"%V\", line %ui", b - a, a, file, line);
                return NGX_CONF_ERROR;
            }

            if (q > list->data) {
                *q++ = ',';
            }

            q = ngx_cpymem(q, a, b - a);

            if (end == e) {
                break;
            }
        }
    }

    list->len = q - list->data;

    if (list->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "symbols file \"%V\" has no symbols", file);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a whole file of at most "max" bytes, read when the configuration is */

char *
ngx_http_stockprice_conf_read(ngx_conf_t *cf, ngx_str_t *file,
    const char *what, size_t max, ngx_str_t *content)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_str_t        name;
    ngx_file_info_t  fi;

    name = *file;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open %s file \"%s\"", what, name.data);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || (size_t) ngx_file_size(&fi) > max)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "%s file \"%s\" is not a file of at most %uz "
                           "bytes", what, name.data, max);
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    content->data = ngx_pnalloc(cf->pool, ngx_file_size(&fi) + 1);
    if (content->data == NULL) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, content->data, ngx_file_size(&fi) + 1);

    if (n == -1 || (size_t) n > (size_t) ngx_file_size(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read %s file \"%s\"", what, name.data);
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    ngx_close_file(fd);

    content->len = n;

    return NGX_CONF_OK;
}


static int ngx_libc_cdecl
ngx_http_stockprice_conf_cmp_str(const void *one, const void *two)
{
    const ngx_str_t  *a = one;
    const ngx_str_t  *b = two;

    return ngx_http_stockprice_parse_symbol_cmp((char *) a->data, a->len,
                                                (char *) b->data, b->len);
}


char *
ngx_http_stockprice_conf_credentials(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *user, ngx_str_t *password)
{
    int                         rc;
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

    rc = ngx_http_stockprice_parse_credentials((char *) buf, n, &u, &pw);

    if (rc != 0) {
        ngx_explicit_memzero(buf, n);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           rc == -2 ? "credentials file \"%s\" is not UTF-8"
                                    : "credentials file \"%s\" has no "
                                      "\"username:password\" first line",
                           name.data);
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
    ngx_uint_t                 i;
    ngx_http_core_loc_conf_t  *clcf;

    if (slcf->shm_zone) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    /* L/SYMBOL needs the location's prefix, which a regex does not give */

#if (NGX_PCRE)
    if (clcf->regex && cmd->offset == 0) {
        return "cannot be used in a regex location";
    }
#endif

    value = cf->args->elts;

    slcf->shm_zone = ngx_shared_memory_add(cf, &value[1], 0,
                                           &ngx_http_stockprice_module);
    if (slcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    slcf->status = cmd->offset;
    slcf->file = cf->conf_file->file.name.data;
    slcf->line = cf->conf_file->line;
    slcf->stream = 1;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "stream=on") == 0) {
            slcf->stream = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "stream=off") == 0) {
            slcf->stream = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "gzip=on") == 0) {
            slcf->gzip = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "gzip=off") == 0) {
            slcf->gzip = 0;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    clcf->handler = slcf->status ? ngx_http_stockprice_handler_status
                                 : ngx_http_stockprice_handler;

    return NGX_CONF_OK;
}


/* in the master, before it starts the workers: their wake-ups */

static ngx_int_t
ngx_http_stockprice_init_module(ngx_cycle_t *cycle)
{
    ngx_http_stockprice_main_conf_t  *spcf;

    spcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_stockprice_module);

    if (spcf == NULL || spcf->feeds.nelts == 0) {
        return NGX_OK;
    }

    return ngx_http_stockprice_notify_init_module(cycle);
}


static ngx_int_t
ngx_http_stockprice_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                        i;
    ngx_http_stockprice_feed_t      **feeds;
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

    if (ngx_http_stockprice_fetch_init(cycle, spcf) != NGX_OK) {
        return NGX_ERROR;
    }

    feeds = spcf->feeds.elts;

    for (i = 0; i < spcf->feeds.nelts; i++) {
        if (ngx_http_stockprice_persist_init_process(cycle, feeds[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_stockprice_notify_init_process(cycle,
                                                   ngx_http_stockprice_wake,
                                                   spcf);
}


/* another worker published: this one's streams are to hear of it */

static void
ngx_http_stockprice_wake(void *data)
{
    ngx_http_stockprice_main_conf_t *spcf = data;

    ngx_uint_t                    i;
    ngx_http_stockprice_feed_t  **feeds;

    feeds = spcf->feeds.elts;

    for (i = 0; i < spcf->feeds.nelts; i++) {
        ngx_http_stockprice_stream_wake(feeds[i]->shm_zone->data);
    }
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

    ngx_http_stockprice_notify_exit_process();
    ngx_http_stockprice_fetch_exit(cycle, spcf);

    feeds = spcf->feeds.elts;

    for (i = 0; i < spcf->feeds.nelts; i++) {
        ngx_http_stockprice_persist_exit_process(feeds[i]->shm_zone->data);
        ngx_http_stockprice_handler_exit(feeds[i]->shm_zone->data);
    }
}
