
/*
 * Copyright (C) ngx_stockprice authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ngx_http_stockprice_module.h>
#include <ngx_http_stockprice_ssl.h>


#define NGX_HTTP_STOCKPRICE_PEM_MAX  (1024 * 1024)


static ngx_int_t ngx_http_stockprice_ssl_certs(ngx_str_t *pem,
    X509 **first);
static EVP_PKEY *ngx_http_stockprice_ssl_key(ngx_str_t *pem);
static int ngx_http_stockprice_ssl_no_password(char *buf, int size,
    int rwflag, void *userdata);


static const char  *ngx_http_stockprice_ssl_what[] = {
    "trusted certificate",
    "certificate",
    "certificate key"
};


char *
ngx_http_stockprice_ssl_verify(ngx_conf_t *cf, ngx_http_stockprice_ssl_t *ssl,
    ngx_str_t *arg, ngx_str_t *value)
{
    if (value->len == 2 && ngx_strncmp(value->data, "on", 2) == 0) {
        ssl->verify = 1;

    } else if (value->len == 3 && ngx_strncmp(value->data, "off", 3) == 0) {
        ssl->verify = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid ssl_verify \"%V\": must be on or off",
                           arg);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* one of the PEM files, read whole and parsed, so that nginx -t says */

char *
ngx_http_stockprice_ssl_file(ngx_conf_t *cf, ngx_http_stockprice_ssl_t *ssl,
    ngx_http_stockprice_ssl_file_e which, ngx_str_t *arg, ngx_str_t *value)
{
    char        *rv;
    X509        *x509;
    EVP_PKEY    *pkey;
    ngx_int_t    n;
    ngx_str_t   *pem;
    const char  *what;

    what = ngx_http_stockprice_ssl_what[which];

    if (value->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid %s file \"%V\"", what, arg);
        return NGX_CONF_ERROR;
    }

    pem = (which == NGX_HTTP_STOCKPRICE_SSL_TRUSTED) ? &ssl->trusted
          : (which == NGX_HTTP_STOCKPRICE_SSL_CERT) ? &ssl->cert
          : &ssl->key;

    rv = ngx_http_stockprice_conf_read(cf, value, what,
                                       NGX_HTTP_STOCKPRICE_PEM_MAX, pem);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (which == NGX_HTTP_STOCKPRICE_SSL_KEY) {
        pkey = ngx_http_stockprice_ssl_key(pem);

        if (pkey == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s file \"%V\" holds no PEM private key "
                               "(or one with a passphrase)", what, value);
            return NGX_CONF_ERROR;
        }

        EVP_PKEY_free(pkey);

        return NGX_CONF_OK;
    }

    n = ngx_http_stockprice_ssl_certs(pem, &x509);

    if (n <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s file \"%V\" holds no PEM certificate",
                           what, value);
        return NGX_CONF_ERROR;
    }

    X509_free(x509);

    return NGX_CONF_OK;
}


/* the files together: a certificate and its key come in pairs that match */

char *
ngx_http_stockprice_ssl_check(ngx_conf_t *cf, ngx_http_stockprice_ssl_t *ssl)
{
    int        ok;
    X509      *x509;
    EVP_PKEY  *pkey;

    if (ssl->cert.data && ssl->key.data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ssl_certificate\" requires "
                           "\"ssl_certificate_key\"");
        return NGX_CONF_ERROR;
    }

    if (ssl->key.data && ssl->cert.data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ssl_certificate_key\" requires "
                           "\"ssl_certificate\"");
        return NGX_CONF_ERROR;
    }

    if (ssl->cert.data == NULL) {
        return NGX_CONF_OK;
    }

    (void) ngx_http_stockprice_ssl_certs(&ssl->cert, &x509);
    pkey = ngx_http_stockprice_ssl_key(&ssl->key);

    ok = x509 && pkey && X509_check_private_key(x509, pkey) == 1;

    X509_free(x509);
    EVP_PKEY_free(pkey);
    ERR_clear_error();

    if (!ok) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ssl_certificate_key\" does not match "
                           "\"ssl_certificate\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the certificates in "pem": their number, the first one kept for *first */

static ngx_int_t
ngx_http_stockprice_ssl_certs(ngx_str_t *pem, X509 **first)
{
    BIO        *bio;
    X509       *x509;
    ngx_int_t   n;

    *first = NULL;

    bio = BIO_new_mem_buf(pem->data, (int) pem->len);
    if (bio == NULL) {
        return NGX_ERROR;
    }

    for (n = 0; /* void */; n++) {
        x509 = PEM_read_bio_X509(bio, NULL, NULL, NULL);

        if (x509 == NULL) {
            break;
        }

        if (n == 0) {
            *first = x509;

        } else {
            X509_free(x509);
        }
    }

    BIO_free(bio);
    ERR_clear_error();

    return n;
}


static EVP_PKEY *
ngx_http_stockprice_ssl_key(ngx_str_t *pem)
{
    BIO       *bio;
    EVP_PKEY  *pkey;

    bio = BIO_new_mem_buf(pem->data, (int) pem->len);
    if (bio == NULL) {
        return NULL;
    }

    /* a key with a passphrase is refused, never prompted for */

    pkey = PEM_read_bio_PrivateKey(bio, NULL,
                                   ngx_http_stockprice_ssl_no_password, NULL);

    BIO_free(bio);
    ERR_clear_error();

    return pkey;
}


static int
ngx_http_stockprice_ssl_no_password(char *buf, int size, int rwflag,
    void *userdata)
{
    return 0;
}


/*
 * Host names are checked and the system's CA store used unless said
 * otherwise; the PEM bytes are the configuration's and outlive the handle
 */

void
ngx_http_stockprice_ssl_setopt(CURL *easy, ngx_http_stockprice_ssl_t *ssl)
{
    struct curl_blob  blob;

    if (!ssl->verify) {
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }

    blob.flags = CURL_BLOB_NOCOPY;

    if (ssl->trusted.data) {
        blob.data = ssl->trusted.data;
        blob.len = ssl->trusted.len;
        curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &blob);

        /* instead of the system store, not beside it */
        curl_easy_setopt(easy, CURLOPT_CAPATH, NULL);
    }

    if (ssl->cert.data) {
        blob.data = ssl->cert.data;
        blob.len = ssl->cert.len;
        curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &blob);
        curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");

        blob.data = ssl->key.data;
        blob.len = ssl->key.len;
        curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &blob);
        curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
    }
}
