/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shortcertd's client for step-ca's own API (see stepca.h): /1.0/renew
 * (mTLS and x5c token), /1.0/rekey, /1.0/sign with a JWK provisioner's
 * one-time token, and GET /1.0/provisioners to find and decrypt that
 * provisioner's key.
 *
 * Two libcurl easy handles per struct stepca.  "keep" carries every request
 * without a client certificate and keeps its connection alive (a token
 * renewal on a warm connection costs one round trip).  "mtls" carries the
 * requests authenticated by a client certificate: the certificate and key
 * are installed from memory into libcurl's SSL_CTX by a callback, and since
 * libcurl cannot see them when it decides whether a connection or a TLS
 * session may be reused, that handle never reuses either (FRESH_CONNECT,
 * FORBID_REUSE, no session-ID cache).  Every leaf the CA returns is then
 * checked to carry the key we asked for, to chain to the root, and (for a
 * renewal) to keep the subject.
 *
 * Secrets: the provisioner password, the derived key-encryption key, the
 * unwrapped content key, the decrypted JWK and its private scalar live in
 * struct secret (or a secure BIGNUM) and are wiped; the tokens we mint are
 * wiped after use.  libcurl's own copies of a request (the header list and
 * its send buffer) are beyond our reach: a token there is single-use and
 * expires in five minutes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "http.h"
#include "jws.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"
#include "stepca.h"

#define STEPCA_USER_AGENT "shortcertd (step-ca)"
#define STEPCA_DEFAULT_TIMEOUT_S 30L
#define STEPCA_MAX_URL 1024u
#define STEPCA_MAX_KID 256u
#define STEPCA_MAX_PROV_NAME 256u
#define STEPCA_MAX_CURSOR 256u
#define STEPCA_MAX_PEM (64u * 1024u)   /* one certificate in a reply */
#define STEPCA_MAX_JWE (64u * 1024u)   /* an encryptedKey */
#define STEPCA_MAX_JWK (64u * 1024u)   /* a private JWK (file or decrypted) */
#define STEPCA_MAX_PROVISIONERS 1000u  /* entries in one page */
#define STEPCA_PAGE_LIMIT "100"        /* step-ca's maximum page size */
#define STEPCA_RENEW_ISS "step-ca-client/1.0"
#define PBES2_ALG "PBES2-HS256+A128KW"
#define PBES2_ENC "A256GCM"
#define P256_BYTES 32u

#define HDR_JSON "Content-Type: application/json"
#define HDR_ACCEPT "Accept: application/json"

struct stepca_provisioner {
    char *name;
    char *kid;
    EVP_PKEY *key;
};

/* The intermediates of the last SignResponse, by their exact text: a CA
 * sends the same ones every time, and parsing a certificate costs OpenSSL
 * 3.0 a few hundred microseconds (its public-key decoder), most of a
 * renewal's client CPU time otherwise. */
struct chain_cache {
    char *pem[STEPCA_MAX_CHAIN];
    size_t len[STEPCA_MAX_CHAIN];
    X509 *x[STEPCA_MAX_CHAIN];
    size_t n;      /* chain length when verified */
    bool verified; /* x[1..n-1] chained to the root (a full verification) */
};

struct stepca {
    char *ca_url; /* https://host[:port], no trailing slash */
    X509_STORE *roots;
    CURL *keep;
    CURL *mtls;
    struct curl_slist *h_post; /* Content-Type, Accept, no Expect */
    char curl_err[CURL_ERROR_SIZE];
    /* the reply of the last request */
    long status;
    char *body;
    size_t len, cap;
    bool too_big, oom;
    /* the identity of the mTLS request in flight (borrowed) */
    X509 *m_leaf;
    STACK_OF(X509) *m_chain;
    EVP_PKEY *m_key;
    int m_alert;       /* fatal TLS alert received, -1: none */
    bool m_setup_fail; /* the SSL_CTX callback could not install it */
    struct chain_cache cache; /* intermediates seen last */
    /* error reporting of the call in progress */
    const char *step;
    char *err;
    size_t errlen;
    /* where request durations go (metrics), NULL: nowhere */
    struct metrics_hist *latency;
};

/* ------------------------------------------------------------- helpers */

static void jsonp(json_t **p)
{
    json_decref(*p);
}

static void x509_stack_freep(STACK_OF(X509) **p)
{
    sk_X509_pop_free(*p, X509_free);
}

static void bio_freep(BIO **p)
{
    BIO_free(*p);
}

static void pkey_freep(EVP_PKEY **p)
{
    EVP_PKEY_free(*p);
}

static void cipher_ctx_freep(EVP_CIPHER_CTX **p)
{
    EVP_CIPHER_CTX_free(*p);
}

/* A string that held a token or other secret text: wipe, then free(). */
static void wipe_str(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void wipe_strp(char **p)
{
    wipe_str(*p);
}

/* libcurl header lists get our Authorization header: wipe each entry. */
static void slist_wipe_free(struct curl_slist *l)
{
    for (struct curl_slist *i = l; i; i = i->next)
        if (i->data)
            OPENSSL_cleanse(i->data, strlen(i->data));
    curl_slist_free_all(l);
}

/* Printable ASCII without space. */
static bool is_graph(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static bool is_printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* A JSON string of 1..max graph characters (borrowed), else NULL. */
static const char *graph_member(const json_t *o, const char *member,
                                size_t max)
{
    const json_t *v = json_object_get(o, member);
    size_t n;

    if (!json_is_string(v))
        return NULL;
    n = json_string_length(v);
    if (n == 0 || n > max || !is_graph(json_string_value(v), n))
        return NULL;
    return json_string_value(v);
}

/* One reply body -> a JSON object.  json_error_t is never looked at: its
 * text echoes the input. */
static int load_object(const char *buf, size_t len, size_t max, json_t **ret)
{
    json_error_t jerr;
    json_t *root;

    if (!buf && len)
        return -EINVAL;
    if (len > max)
        return -EMSGSIZE;
    if (len == 0)
        return -EBADMSG;
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return -EBADMSG;
    if (!json_is_object(root)) {
        json_decref(root);
        return -EBADMSG;
    }
    *ret = root;
    return 0;
}

/* Unpadded base64url into secret memory (for key bytes), exactly want
 * bytes (0: any length up to max). */
static int b64url_secret(const char *in, size_t len, size_t want, size_t max,
                         struct secret *ret)
{
    uint8_t *tmp = NULL;
    size_t n = 0;
    int r;

    r = jws_b64url_decode(in, len, max, &tmp, &n);
    if (r < 0)
        return r == -EMSGSIZE ? -EBADMSG : r;
    if ((want && n != want) || n == 0) {
        OPENSSL_cleanse(tmp, n);
        free(tmp);
        return -EBADMSG;
    }
    ret->data = OPENSSL_malloc(n);
    if (!ret->data) {
        OPENSSL_cleanse(tmp, n);
        free(tmp);
        return -ENOMEM;
    }
    memcpy(ret->data, tmp, n);
    ret->len = n;
    OPENSSL_cleanse(tmp, n);
    free(tmp);
    return 0;
}

/* Public base64url bytes, exactly want (0: 1..max). */
static int b64url_public(const char *in, size_t want, size_t max,
                         uint8_t **ret, size_t *ret_len)
{
    _cleanup_free_ uint8_t *b = NULL;
    size_t n = 0;
    int r;

    if (!in)
        return -EBADMSG;
    r = jws_b64url_decode(in, strlen(in), max, &b, &n);
    if (r < 0)
        return -EBADMSG;
    if ((want && n != want) || n == 0)
        return -EBADMSG;
    *ret = TAKE_PTR(b);
    *ret_len = n;
    return 0;
}

static int hex_random(size_t bytes, char **ret)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t buf[64];
    char *s;

    if (bytes > sizeof(buf))
        return -EINVAL;
    if (RAND_bytes(buf, (int)bytes) != 1)
        return -EIO;
    s = malloc(2 * bytes + 1);
    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < bytes; i++) {
        s[2 * i] = hex[buf[i] >> 4];
        s[2 * i + 1] = hex[buf[i] & 15];
    }
    s[2 * bytes] = '\0';
    *ret = s;
    return 0;
}

/* ------------------------------------------------------------- errors */

static int vfail_to(char *err, size_t errlen, const char *step, int r,
                    const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));
static int vfail_to(char *err, size_t errlen, const char *step, int r,
                    const char *fmt, va_list ap)
{
    char msg[1024];
    int n;

    n = snprintf(msg, sizeof(msg), "%s: ", step ? step : "step-ca");
    if (n < 0 || (size_t)n >= sizeof(msg))
        n = 0;
    (void)vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    http_sanitize(msg);
    if (err && errlen > 0)
        (void)snprintf(err, errlen, "%s", msg);
    log_debug("step-ca: %s", msg);
    return r;
}

static int fail_to(char *err, size_t errlen, const char *step, int r,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail_to(char *err, size_t errlen, const char *step, int r,
                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    r = vfail_to(err, errlen, step, r, fmt, ap);
    va_end(ap);
    return r;
}

/* Writes "<step>: <message>" to the caller's buffer; returns r. */
static int fail(struct stepca *c, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct stepca *c, int r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    r = vfail_to(c->err, c->errlen, c->step, r, fmt, ap);
    va_end(ap);
    return r;
}

static void begin(struct stepca *c, const char *step, char *err,
                  size_t errlen)
{
    c->step = step;
    c->err = err;
    c->errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
}

static int status_errno(long status)
{
    if (status == 401 || status == 403)
        return -EACCES;
    if (status == 404)
        return -ENOENT;
    if (status == 429)
        return -EBUSY;
    if (status >= 500)
        return -EREMOTEIO;
    return -EPROTO;
}

/* A reply with an unexpected status: say which, with step-ca's message. */
static int fail_http(struct stepca *c, const char *what)
{
    char msg[STEPCA_MAX_MESSAGE + 1];

    if (stepca_parse_error(c->body, c->len, msg, sizeof(msg)) >= 0 && msg[0])
        return fail(c, status_errno(c->status), "%s: HTTP %ld: %s", what,
                    c->status, msg);
    if (c->len > 0 && !memchr(c->body, '\0', c->len)) {
        /* not step-ca's JSON (a proxy, the router's 404): a bounded,
         * sanitized prefix */
        char head[81];
        size_t n = c->len < sizeof(head) - 1 ? c->len : sizeof(head) - 1;

        memcpy(head, c->body, n);
        head[n] = '\0';
        for (char *p = head; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        return fail(c, status_errno(c->status), "%s: HTTP %ld: '%s'", what,
                    c->status, head);
    }
    return fail(c, status_errno(c->status), "%s: HTTP %ld without a body",
                what, c->status);
}

/* ------------------------------------------------------------ parsers */

/* Exactly one PEM certificate (optional surrounding whitespace). */
static int pem_one_cert(const char *s, size_t n, X509 **ret)
{
    static const char begin_line[] = "-----BEGIN CERTIFICATE-----";
    _cleanup_(bio_freep) BIO *b = NULL;
    X509 *x;
    size_t i = 0;
    char rest[64];
    int got;

    if (n > STEPCA_MAX_PEM || memchr(s, '\0', n))
        return -EBADMSG;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
                     s[i] == '\n'))
        i++;
    if (n - i < sizeof(begin_line) - 1 ||
        memcmp(s + i, begin_line, sizeof(begin_line) - 1) != 0)
        return -EBADMSG;
    b = BIO_new_mem_buf(s + i, (int)(n - i));
    if (!b)
        return -ENOMEM;
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    if (!x) {
        ERR_clear_error();
        return -EBADMSG;
    }
    /* Nothing but whitespace may follow: no second block, no junk. */
    while ((got = BIO_read(b, rest, sizeof(rest))) > 0)
        for (int k = 0; k < got; k++)
            if (rest[k] != ' ' && rest[k] != '\t' && rest[k] != '\r' &&
                rest[k] != '\n') {
                X509_free(x);
                return -EBADMSG;
            }
    ERR_clear_error();
    *ret = x;
    return 0;
}

static int cert_member(const json_t *v, X509 **ret)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return -EBADMSG;
    return pem_one_cert(json_string_value(v), json_string_length(v), ret);
}

static void chain_cache_done(struct chain_cache *cc)
{
    for (size_t i = 0; i < STEPCA_MAX_CHAIN; i++) {
        free(cc->pem[i]);
        X509_free(cc->x[i]);
    }
    *cc = (struct chain_cache){ 0 };
}

/* certChain entry i: from the cache when its text is the cached one. */
static int chain_entry(const json_t *v, size_t i, struct chain_cache *cc,
                       X509 **ret)
{
    const char *s;
    size_t n;
    X509 *x = NULL;
    char *copy;
    int r;

    if (!json_is_string(v) || json_string_length(v) == 0)
        return -EBADMSG;
    s = json_string_value(v);
    n = json_string_length(v);
    if (cc && i > 0 && cc->x[i] && cc->len[i] == n &&
        memcmp(cc->pem[i], s, n) == 0) {
        if (!X509_up_ref(cc->x[i]))
            return -ENOMEM;
        *ret = cc->x[i];
        return 0;
    }
    r = pem_one_cert(s, n, &x);
    if (r < 0)
        return r;
    if (cc && i > 0 && (copy = malloc(n)) != NULL && X509_up_ref(x)) {
        memcpy(copy, s, n);
        cc->verified = false; /* a new intermediate: verify it in full */
        free(cc->pem[i]);
        X509_free(cc->x[i]);
        cc->pem[i] = copy;
        cc->len[i] = n;
        cc->x[i] = x;
    }
    *ret = x;
    return 0;
}

/* A SignResponse body -> the chain (leaf first).  cc may be NULL. */
static int parse_sign_response_x509(const char *body, size_t len,
                                    struct chain_cache *cc,
                                    STACK_OF(X509) **ret)
{
    _cleanup_(jsonp) json_t *root = NULL;
    _cleanup_(x509_stack_freep) STACK_OF(X509) *sk = NULL;
    const json_t *chain, *crt;
    int r;

    r = load_object(body, len, STEPCA_MAX_REPLY, &root);
    if (r < 0)
        return r;
    sk = sk_X509_new_null();
    if (!sk)
        return -ENOMEM;
    crt = json_object_get(root, "crt");
    if (json_is_null(crt))
        crt = NULL;
    chain = json_object_get(root, "certChain");
    if (chain && !json_is_null(chain)) {
        size_t i, n;
        json_t *e;

        if (!json_is_array(chain))
            return -EBADMSG;
        n = json_array_size(chain);
        if (n == 0 || n > STEPCA_MAX_CHAIN)
            return -EBADMSG;
        json_array_foreach(chain, i, e) {
            X509 *x = NULL;

            r = chain_entry(e, i, cc, &x);
            if (r < 0)
                return r;
            if (!sk_X509_push(sk, x)) {
                X509_free(x);
                return -ENOMEM;
            }
        }
        /* Both given: they must agree on the leaf (the same text, as
         * step-ca sends it, or the same certificate). */
        if (crt) {
            const json_t *first = json_array_get(chain, 0);
            X509 *x = NULL;

            if (!json_is_string(crt))
                return -EBADMSG;
            if (json_string_length(crt) != json_string_length(first) ||
                memcmp(json_string_value(crt), json_string_value(first),
                       json_string_length(crt)) != 0) {
                r = cert_member(crt, &x);
                if (r < 0)
                    return r;
                r = X509_cmp(x, sk_X509_value(sk, 0)) == 0 ? 0 : -EBADMSG;
                X509_free(x);
                if (r < 0)
                    return r;
            }
        }
    } else {
        const json_t *ca = json_object_get(root, "ca");
        X509 *x = NULL;

        if (!crt)
            return -EBADMSG;
        r = cert_member(crt, &x);
        if (r < 0)
            return r;
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            return -ENOMEM;
        }
        if (ca && !json_is_null(ca)) {
            r = chain_entry(ca, 1, cc, &x);
            if (r < 0)
                return r;
            if (!sk_X509_push(sk, x)) {
                X509_free(x);
                return -ENOMEM;
            }
        }
    }
    *ret = TAKE_PTR(sk);
    return 0;
}

static int chain_to_pem(STACK_OF(X509) *sk, struct stepca_result *ret)
{
    _cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
    const char *p;
    long n;
    char *out;

    if (!b)
        return -ENOMEM;
    for (int i = 0; i < sk_X509_num(sk); i++)
        if (!PEM_write_bio_X509(b, sk_X509_value(sk, i)))
            return -ENOMEM;
    n = BIO_get_mem_data(b, &p);
    if (n <= 0)
        return -ENOMEM;
    out = malloc((size_t)n + 1);
    if (!out)
        return -ENOMEM;
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    ret->chain_pem = out;
    ret->chain_len = (size_t)n;
    return 0;
}

int stepca_parse_sign_response(const char *body, size_t len,
                               struct stepca_result *ret)
{
    _cleanup_(x509_stack_freep) STACK_OF(X509) *sk = NULL;
    struct stepca_result res = { 0 };
    int r;

    if (!ret)
        return -EINVAL;
    r = parse_sign_response_x509(body, len, NULL, &sk);
    if (r < 0)
        return r;
    r = chain_to_pem(sk, &res);
    if (r < 0)
        return r;
    *ret = res;
    return 0;
}

int stepca_parse_error(const char *body, size_t len, char *msg, size_t n)
{
    _cleanup_(jsonp) json_t *root = NULL;
    const json_t *st, *m;
    json_int_t status = 0;
    int r;

    if (msg && n)
        msg[0] = '\0';
    r = load_object(body, len, STEPCA_MAX_REPLY, &root);
    if (r < 0)
        return r;
    st = json_object_get(root, "status");
    if (st && !json_is_null(st)) {
        if (!json_is_integer(st))
            return -EBADMSG;
        status = json_integer_value(st);
        if (status < 0 || status > 999)
            return -EBADMSG;
    }
    m = json_object_get(root, "message");
    if (m && !json_is_null(m) && !json_is_string(m))
        return -EBADMSG;
    if (json_is_string(m) && msg && n) {
        size_t k = json_string_length(m);

        if (k > STEPCA_MAX_MESSAGE)
            k = STEPCA_MAX_MESSAGE;
        if (k > n - 1)
            k = n - 1;
        memcpy(msg, json_string_value(m), k); /* may hold NULs: cut there */
        msg[k] = '\0';
        http_sanitize(msg);
    }
    return (int)status;
}

/* ---------------------------------------------------------------- JWK */

static void param_bld_freep(OSSL_PARAM_BLD **p)
{
    OSSL_PARAM_BLD_free(*p);
}

static void params_freep(OSSL_PARAM **p)
{
    OSSL_PARAM_free(*p);
}

static void pkey_ctx_freep(EVP_PKEY_CTX **p)
{
    EVP_PKEY_CTX_free(*p);
}

static void bn_clear_freep(BIGNUM **p)
{
    BN_clear_free(*p);
}

/* EC P-256 key from JWK coordinates (and the private scalar when d is
 * given, then checked to be a consistent pair). */
static int ec_p256_from(const uint8_t x[P256_BYTES],
                        const uint8_t y[P256_BYTES], const struct secret *d,
                        EVP_PKEY **ret)
{
    _cleanup_(param_bld_freep) OSSL_PARAM_BLD *bld = NULL;
    _cleanup_(params_freep) OSSL_PARAM *params = NULL;
    _cleanup_(pkey_ctx_freep) EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
    _cleanup_(bn_clear_freep) BIGNUM *priv = NULL;
    _cleanup_(pkey_freep) EVP_PKEY *k = NULL;
    uint8_t pub[1 + 2 * P256_BYTES];

    pub[0] = 0x04; /* uncompressed point */
    memcpy(pub + 1, x, P256_BYTES);
    memcpy(pub + 1 + P256_BYTES, y, P256_BYTES);
    bld = OSSL_PARAM_BLD_new();
    if (!bld ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                         "P-256", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                          sizeof(pub)))
        return -ENOMEM;
    if (d) {
        /* A secure BIGNUM puts the scalar in the parameter block's secure
         * part, which OSSL_PARAM_free() clears. */
        priv = BN_secure_new();
        if (!priv || !BN_bin2bn(d->data, (int)d->len, priv) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv))
            return -ENOMEM;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0)
        return -ENOMEM;
    if (EVP_PKEY_fromdata(ctx, &k, d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                          params) <= 0) {
        ERR_clear_error();
        return -EBADMSG; /* not a point on the curve */
    }
    if (d) {
        chk = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
        if (!chk)
            return -ENOMEM;
        if (EVP_PKEY_pairwise_check(chk) != 1) {
            ERR_clear_error();
            return -EBADMSG; /* d does not belong to (x, y) */
        }
    }
    *ret = TAKE_PTR(k);
    return 0;
}

/* kty/crv of an EC P-256 JWK object, and its x/y. */
static int jwk_ec_xy(const json_t *o, uint8_t x[P256_BYTES],
                     uint8_t y[P256_BYTES])
{
    const char *kty = graph_member(o, "kty", 16);
    const char *crv = graph_member(o, "crv", 16);
    _cleanup_free_ uint8_t *bx = NULL, *by = NULL;
    size_t nx, ny;

    if (!kty)
        return -EBADMSG;
    if (strcmp(kty, "EC") != 0)
        return -EOPNOTSUPP; /* RSA, OKP: step can make those too */
    if (!crv)
        return -EBADMSG;
    if (strcmp(crv, "P-256") != 0)
        return -EOPNOTSUPP;
    if (b64url_public(graph_member(o, "x", 64), P256_BYTES, 64, &bx, &nx) < 0 ||
        b64url_public(graph_member(o, "y", 64), P256_BYTES, 64, &by, &ny) < 0)
        return -EBADMSG;
    memcpy(x, bx, P256_BYTES);
    memcpy(y, by, P256_BYTES);
    return 0;
}

static int jwk_kid(const json_t *o, char **ret)
{
    const json_t *v = json_object_get(o, "kid");
    const char *kid;

    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    kid = graph_member(o, "kid", STEPCA_MAX_KID);
    if (!kid)
        return -EBADMSG;
    *ret = strdup(kid);
    return *ret ? 0 : -ENOMEM;
}

int stepca_jwk_private(const char *json, size_t len, EVP_PKEY **ret,
                       char **ret_kid)
{
    _cleanup_(jsonp) json_t *o = NULL;
    _cleanup_secret_ struct secret d = { 0 };
    _cleanup_free_ char *kid = NULL;
    uint8_t x[P256_BYTES], y[P256_BYTES];
    const json_t *dv;
    EVP_PKEY *k = NULL;
    int r;

    if (!ret)
        return -EINVAL;
    r = load_object(json, len, STEPCA_MAX_JWK, &o);
    if (r < 0)
        return r == -EMSGSIZE ? -EBADMSG : r;
    r = jwk_ec_xy(o, x, y);
    if (r < 0)
        return r;
    dv = json_object_get(o, "d");
    if (!json_is_string(dv))
        return -EBADMSG; /* a public JWK: no use to us */
    r = b64url_secret(json_string_value(dv), json_string_length(dv),
                      P256_BYTES, 64, &d);
    if (r < 0)
        return r;
    r = jwk_kid(o, &kid);
    if (r < 0)
        return r;
    r = ec_p256_from(x, y, &d, &k);
    if (r < 0)
        return r;
    *ret = k;
    if (ret_kid)
        *ret_kid = TAKE_PTR(kid);
    return 0;
}

/* ---------------------------------------------------------------- JWE */

void stepca_jwe_done(struct stepca_jwe *j)
{
    if (!j)
        return;
    free(j->p2s);
    free(j->ek);
    free(j->iv);
    free(j->ct);
    free(j->tag);
    *j = (struct stepca_jwe){ 0 };
}

static int segment(const char *s, size_t len, size_t want, size_t max,
                   uint8_t **ret, size_t *ret_len)
{
    size_t n = 0;
    int r;

    if (len == 0)
        return -EBADMSG;
    r = jws_b64url_decode(s, len, max, ret, &n);
    if (r < 0)
        return -EBADMSG;
    if (want && n != want) {
        free(*ret);
        *ret = NULL;
        return -EBADMSG;
    }
    *ret_len = n;
    return 0;
}

int stepca_jwe_parse(const char *s, size_t len, struct stepca_jwe *ret)
{
    _cleanup_(stepca_jwe_done) struct stepca_jwe j = { 0 };
    _cleanup_(jsonp) json_t *h = NULL;
    _cleanup_free_ uint8_t *htxt = NULL;
    const char *seg[5];
    size_t seglen[5], hlen = 0, k = 0;
    const char *alg, *enc, *p2s;
    const json_t *p2c;
    json_error_t jerr;
    json_int_t iter;

    if (!s || !ret)
        return -EINVAL;
    if (len == 0 || len > STEPCA_MAX_JWE)
        return -EBADMSG;
    /* five dot-separated segments */
    seg[0] = s;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '.')
            continue;
        if (k >= 4)
            return -EBADMSG;
        seglen[k] = (size_t)(s + i - seg[k]);
        seg[++k] = s + i + 1;
    }
    if (k != 4)
        return -EBADMSG;
    seglen[4] = (size_t)(s + len - seg[4]);

    if (seglen[0] == 0 || jws_b64url_decode(seg[0], seglen[0], 4096, &htxt,
                                            &hlen) < 0)
        return -EBADMSG;
    h = json_loadb((const char *)htxt, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(h))
        return -EBADMSG;
    alg = graph_member(h, "alg", 64);
    enc = graph_member(h, "enc", 64);
    if (!alg || !enc)
        return -EBADMSG;
    if (strcmp(alg, PBES2_ALG) != 0 || strcmp(enc, PBES2_ENC) != 0 ||
        json_object_get(h, "zip") || json_object_get(h, "crit"))
        return -EOPNOTSUPP;
    p2s = graph_member(h, "p2s", 128);
    p2c = json_object_get(h, "p2c");
    if (!p2s || !json_is_integer(p2c))
        return -EBADMSG;
    iter = json_integer_value(p2c);
    if (iter <= 0 || iter > (json_int_t)INT32_MAX)
        return -EBADMSG;
    j.p2c = (long)iter;
    if (b64url_public(p2s, 0, 64, &j.p2s, &j.p2s_len) < 0 || j.p2s_len < 8)
        return -EBADMSG; /* RFC 7518 §4.8.1.1: at least 8 octets */
    /* A256GCM: 32-byte content key wrapped into 40, 96-bit IV, 128-bit
     * tag. */
    if (segment(seg[1], seglen[1], 40, 40, &j.ek, &j.ek_len) < 0 ||
        segment(seg[2], seglen[2], 12, 12, &j.iv, &j.iv_len) < 0 ||
        segment(seg[3], seglen[3], 0, STEPCA_MAX_JWK, &j.ct, &j.ct_len) < 0 ||
        segment(seg[4], seglen[4], 16, 16, &j.tag, &j.tag_len) < 0)
        return -EBADMSG;
    j.aad = seg[0];
    j.aad_len = seglen[0];
    *ret = j;
    j = (struct stepca_jwe){ 0 };
    return 0;
}

static void kdf_ctx_freep(EVP_KDF_CTX **p)
{
    EVP_KDF_CTX_free(*p);
}

/* KEK = PBKDF2-HMAC-SHA256(password, alg || 0x00 || p2s, p2c, 16). */
static int pbes2_kek(const struct stepca_jwe *j, const struct secret *pw,
                     struct secret *kek)
{
    _cleanup_(kdf_ctx_freep) EVP_KDF_CTX *kctx = NULL;
    _cleanup_free_ uint8_t *salt = NULL;
    size_t slen = sizeof(PBES2_ALG) + j->p2s_len; /* with the NUL */
    EVP_KDF *kdf;
    uint64_t iter = (uint64_t)j->p2c;
    int pkcs5 = 1; /* RFC 8018 as is: no SP 800-132 lower bounds */
    OSSL_PARAM params[6];

    salt = malloc(slen);
    kek->data = OPENSSL_malloc(16);
    if (!salt || !kek->data)
        return -ENOMEM;
    kek->len = 16;
    memcpy(salt, PBES2_ALG, sizeof(PBES2_ALG)); /* copies the 0x00 too */
    memcpy(salt + sizeof(PBES2_ALG), j->p2s, j->p2s_len);
    kdf = EVP_KDF_fetch(NULL, "PBKDF2", NULL);
    if (!kdf)
        return -EOPNOTSUPP;
    kctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (!kctx)
        return -ENOMEM;
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                                  pw->data, pw->len);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt,
                                                  slen);
    params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_ITER, &iter);
    params[3] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[4] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_PKCS5, &pkcs5);
    params[5] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, kek->data, kek->len, params) != 1) {
        ERR_clear_error();
        return -EIO;
    }
    return 0;
}

/* RFC 3394 AES-128 key unwrap of the 40-byte encrypted key. */
static int unwrap_cek(const struct stepca_jwe *j, const struct secret *kek,
                      struct secret *cek)
{
    _cleanup_(cipher_ctx_freep) EVP_CIPHER_CTX *ctx = NULL;
    EVP_CIPHER *aes_wrap;
    int outl = 0, fin = 0, ok;

    /* The output buffer must hold the whole input for OpenSSL's wrap
     * ciphers; only the first 32 bytes are the key. */
    cek->data = OPENSSL_zalloc(j->ek_len + 16);
    if (!cek->data)
        return -ENOMEM;
    cek->len = j->ek_len + 16;
    aes_wrap = EVP_CIPHER_fetch(NULL, "AES-128-WRAP", NULL);
    ctx = EVP_CIPHER_CTX_new();
    if (!aes_wrap || !ctx) {
        EVP_CIPHER_free(aes_wrap);
        return -ENOMEM;
    }
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    ok = EVP_DecryptInit_ex2(ctx, aes_wrap, kek->data, NULL, NULL) == 1 &&
         EVP_DecryptUpdate(ctx, cek->data, &outl, j->ek, (int)j->ek_len) == 1 &&
         EVP_DecryptFinal_ex(ctx, cek->data + outl, &fin) == 1;
    EVP_CIPHER_free(aes_wrap);
    ERR_clear_error();
    if (!ok || outl + fin != 32)
        return -EKEYREJECTED; /* the integrity check value did not match */
    return 0;
}

int stepca_jwe_decrypt(const char *s, size_t len,
                       const struct secret *password, struct secret *ret)
{
    _cleanup_(stepca_jwe_done) struct stepca_jwe j = { 0 };
    _cleanup_(cipher_ctx_freep) EVP_CIPHER_CTX *ctx = NULL;
    _cleanup_secret_ struct secret kek = { 0 }, cek = { 0 }, pt = { 0 };
    EVP_CIPHER *gcm;
    int outl = 0, fin = 0, ok, r;

    if (!ret || !password || !password->data || password->len == 0 ||
        password->len > INT32_MAX)
        return -EINVAL;
    r = stepca_jwe_parse(s, len, &j);
    if (r < 0)
        return r;
    /* Bound the work a hostile CA reply can make us do (and refuse
     * trivially weak parameters). */
    if (j.p2c < STEPCA_P2C_MIN || j.p2c > STEPCA_P2C_MAX)
        return -EOPNOTSUPP;
    r = pbes2_kek(&j, password, &kek);
    if (r < 0)
        return r;
    r = unwrap_cek(&j, &kek, &cek);
    if (r < 0)
        return r;
    pt.data = OPENSSL_malloc(j.ct_len + 16);
    if (!pt.data)
        return -ENOMEM;
    pt.len = j.ct_len + 16;
    gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    ctx = EVP_CIPHER_CTX_new();
    if (!gcm || !ctx) {
        EVP_CIPHER_free(gcm);
        return -ENOMEM;
    }
    ok = EVP_DecryptInit_ex2(ctx, gcm, cek.data, j.iv, NULL) == 1 &&
         EVP_DecryptUpdate(ctx, NULL, &outl, (const uint8_t *)j.aad,
                           (int)j.aad_len) == 1 &&
         EVP_DecryptUpdate(ctx, pt.data, &outl, j.ct, (int)j.ct_len) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int)j.tag_len,
                             j.tag) == 1 &&
         EVP_DecryptFinal_ex(ctx, pt.data + outl, &fin) == 1;
    EVP_CIPHER_free(gcm);
    ERR_clear_error();
    if (!ok || outl < 0 || fin < 0)
        return -EKEYREJECTED; /* the tag did not verify */
    /* Shrink to the plaintext: wipe what lies beyond it now, since the
     * secret only knows its new length. */
    OPENSSL_cleanse(pt.data + outl + fin, pt.len - (size_t)(outl + fin));
    pt.len = (size_t)(outl + fin);
    *ret = pt;
    pt = (struct secret){ 0 };
    return 0;
}

/* ------------------------------------------------- provisioners list */

void stepca_prov_entry_done(struct stepca_prov_entry *e)
{
    if (!e)
        return;
    free(e->kid);
    EVP_PKEY_free(e->pub);
    free(e->encrypted_key);
    *e = (struct stepca_prov_entry){ 0 };
}

static int prov_entry_from(const json_t *p, struct stepca_prov_entry *ret)
{
    _cleanup_(stepca_prov_entry_done) struct stepca_prov_entry e = { 0 };
    const json_t *key = json_object_get(p, "key");
    const json_t *ek = json_object_get(p, "encryptedKey");
    uint8_t x[P256_BYTES], y[P256_BYTES];
    const char *kid;
    int r;

    if (!json_is_object(key))
        return -EBADMSG;
    kid = graph_member(key, "kid", STEPCA_MAX_KID);
    if (!kid)
        return -EBADMSG;
    r = jwk_ec_xy(key, x, y);
    if (r == -EOPNOTSUPP)
        return -EOPNOTSUPP; /* an RSA/OKP provisioner key */
    if (r < 0)
        return r;
    r = ec_p256_from(x, y, NULL, &e.pub);
    if (r < 0)
        return r;
    e.kid = strdup(kid);
    if (!e.kid)
        return -ENOMEM;
    if (ek && !json_is_null(ek)) {
        size_t n;

        if (!json_is_string(ek))
            return -EBADMSG;
        n = json_string_length(ek);
        if (n > STEPCA_MAX_JWE || !is_graph(json_string_value(ek), n))
            return -EBADMSG;
        if (n > 0) {
            e.encrypted_key = strndup(json_string_value(ek), n);
            if (!e.encrypted_key)
                return -ENOMEM;
        }
    }
    *ret = e;
    e = (struct stepca_prov_entry){ 0 };
    return 0;
}

int stepca_parse_provisioners(const char *body, size_t len, const char *name,
                              struct stepca_prov_entry *ret, char **ret_next)
{
    _cleanup_(jsonp) json_t *root = NULL;
    _cleanup_(stepca_prov_entry_done) struct stepca_prov_entry found = { 0 };
    _cleanup_free_ char *next = NULL;
    const json_t *list, *nc, *p;
    bool have = false;
    size_t i;
    int r;

    if (!name || !ret || !ret_next)
        return -EINVAL;
    r = load_object(body, len, STEPCA_MAX_REPLY, &root);
    if (r < 0)
        return r;
    list = json_object_get(root, "provisioners");
    if (!json_is_array(list) || json_array_size(list) > STEPCA_MAX_PROVISIONERS)
        return -EBADMSG;
    json_array_foreach(list, i, p) {
        const json_t *type, *pname;

        if (!json_is_object(p))
            return -EBADMSG;
        type = json_object_get(p, "type");
        pname = json_object_get(p, "name");
        if (!json_is_string(type) || !json_is_string(pname))
            return -EBADMSG;
        if (strcmp(json_string_value(type), "JWK") != 0 ||
            json_string_length(pname) != strlen(name) ||
            strcmp(json_string_value(pname), name) != 0)
            continue;
        if (have)
            return -ENOTUNIQ;
        r = prov_entry_from(p, &found);
        if (r < 0)
            return r;
        have = true;
    }
    nc = json_object_get(root, "nextCursor");
    if (nc && !json_is_null(nc)) {
        size_t n;

        if (!json_is_string(nc))
            return -EBADMSG;
        n = json_string_length(nc);
        if (n > STEPCA_MAX_CURSOR || !is_graph(json_string_value(nc), n))
            return -EBADMSG;
        if (n > 0) {
            next = strndup(json_string_value(nc), n);
            if (!next)
                return -ENOMEM;
        }
    }
    *ret_next = TAKE_PTR(next);
    if (have) {
        *ret = found;
        found = (struct stepca_prov_entry){ 0 };
    }
    return have ? 1 : 0;
}

/* ------------------------------------------------------------ handle */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct stepca *c = ud;
    size_t n = size * nmemb;
    int e = http_body_append(&c->body, &c->len, &c->cap, STEPCA_MAX_REPLY,
                             ptr, n);

    if (e == -EMSGSIZE)
        c->too_big = true;
    else if (e < 0)
        c->oom = true;
    return e < 0 ? 0 : n;
}

/* Records a fatal alert from the server (msg callback, read side). */
static void on_tls_msg(int write_p, int version, int content_type,
                       const void *buf, size_t len, SSL *ssl, void *arg)
{
    struct stepca *c = arg;
    const unsigned char *b = buf;

    if (!write_p && content_type == SSL3_RT_ALERT && len == 2 &&
        b[0] == SSL3_AL_FATAL)
        c->m_alert = b[1];
}

/* libcurl made the SSL_CTX of a new mTLS connection: install the
 * identity.  The context up-references the certificate and the key (no
 * copy) and lives as long as the connection, which FORBID_REUSE ends with
 * the request. */
static CURLcode on_ssl_ctx(CURL *h, void *sslctx, void *ud)
{
    struct stepca *c = ud;
    SSL_CTX *ctx = sslctx;

    if (!c->m_leaf || !c->m_key)
        goto bad;
    if (SSL_CTX_use_certificate(ctx, c->m_leaf) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, c->m_key) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto bad;
    for (int i = 0; c->m_chain && i < sk_X509_num(c->m_chain); i++)
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(c->m_chain, i)) != 1)
            goto bad;
    SSL_CTX_set_msg_callback(ctx, on_tls_msg);
    SSL_CTX_set_msg_callback_arg(ctx, c);
    return CURLE_OK;
bad:
    ERR_clear_error();
    c->m_setup_fail = true;
    return CURLE_SSL_CERTPROBLEM;
}

/* The alerts with which a TLS server refuses the client's certificate. */
static bool alert_is_about_our_cert(int a)
{
    switch (a) {
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_ACCESS_DENIED:
    case SSL_AD_CERTIFICATE_REQUIRED:
        return true;
    default:
        return false;
    }
}

static int check_ca_url(const char *u, size_t *ret_len)
{
    size_t n;
    const char *host;

    if (!u || strncasecmp(u, "https://", 8) != 0)
        return -EINVAL;
    n = strlen(u);
    while (n > 8 && u[n - 1] == '/')
        n--;
    host = u + 8;
    if (n <= 8 || n > STEPCA_MAX_URL || !is_graph(u, n) ||
        memchr(host, '/', n - 8) || memchr(host, '?', n - 8) ||
        memchr(host, '#', n - 8) || memchr(host, '@', n - 8) ||
        memchr(host, '\\', n - 8))
        return -EINVAL;
    *ret_len = n;
    return 0;
}

int stepca_new(const char *ca_url, const char *ca_root_file, long timeout_s,
               struct stepca **ret)
{
    const curl_version_info_data *vi;
    struct stepca *c;
    size_t ulen = 0;
    int ok = 1, r;

    if (!ret || !ca_root_file || check_ca_url(ca_url, &ulen) < 0)
        return -EINVAL;
    if (timeout_s <= 0)
        timeout_s = STEPCA_DEFAULT_TIMEOUT_S;
    http_global_init();
    /* The SSL_CTX handed to the callback must be our OpenSSL's. */
    vi = curl_version_info(CURLVERSION_NOW);
    if (!vi || !vi->ssl_version || strncmp(vi->ssl_version, "OpenSSL/3", 9))
        return -EOPNOTSUPP;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->m_alert = -1;
    c->ca_url = strndup(ca_url, ulen);
    c->roots = X509_STORE_new();
    c->keep = curl_easy_init();
    c->mtls = curl_easy_init();
    c->h_post = curl_slist_append(NULL, HDR_JSON);
    if (c->h_post)
        c->h_post = curl_slist_append(c->h_post, HDR_ACCEPT);
    if (c->h_post)
        c->h_post = curl_slist_append(c->h_post, "Expect:");
    if (!c->ca_url || !c->roots || !c->keep || !c->mtls || !c->h_post) {
        stepca_free(c);
        return -ENOMEM;
    }
    if (X509_STORE_load_file(c->roots, ca_root_file) != 1) {
        ERR_clear_error();
        stepca_free(c);
        return -ENOENT;
    }
    for (int i = 0; i < 2; i++) {
        CURL *h = i ? c->mtls : c->keep;

        r = http_easy_defaults(h, ca_root_file, timeout_s, STEPCA_USER_AGENT,
                               STEPCA_MAX_REPLY, c->curl_err);
        if (r < 0) {
            stepca_free(c);
            return r;
        }
        ok &= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
        ok &= curl_easy_setopt(h, CURLOPT_WRITEDATA, c) == CURLE_OK;
    }
    /* mTLS: a connection of its own per request, never reused, never a
     * resumed session (libcurl would match either by host and port only). */
    ok &= curl_easy_setopt(c->mtls, CURLOPT_FRESH_CONNECT, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(c->mtls, CURLOPT_FORBID_REUSE, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(c->mtls, CURLOPT_SSL_SESSIONID_CACHE, 0L) ==
          CURLE_OK;
    ok &= curl_easy_setopt(c->mtls, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) ==
          CURLE_OK;
    ok &= curl_easy_setopt(c->mtls, CURLOPT_SSL_CTX_DATA, c) == CURLE_OK;
    if (!ok) {
        stepca_free(c);
        return -EOPNOTSUPP;
    }
    *ret = c;
    return 0;
}

void stepca_free(struct stepca *c)
{
    if (!c)
        return;
    if (c->keep)
        curl_easy_cleanup(c->keep);
    if (c->mtls)
        curl_easy_cleanup(c->mtls);
    curl_slist_free_all(c->h_post);
    X509_STORE_free(c->roots);
    chain_cache_done(&c->cache);
    free(c->body);
    free(c->ca_url);
    free(c);
}

void stepca_test_weaken_mtls(struct stepca *c, unsigned flags)
{
    if (!c)
        return;
    if (flags & STEPCA_TEST_REUSE) {
        (void)curl_easy_setopt(c->mtls, CURLOPT_FRESH_CONNECT, 0L);
        (void)curl_easy_setopt(c->mtls, CURLOPT_FORBID_REUSE, 0L);
    }
    if (flags & STEPCA_TEST_SESSIONS)
        (void)curl_easy_setopt(c->mtls, CURLOPT_SSL_SESSIONID_CACHE, 1L);
}

/* One exchange on h: GET when body is NULL, else POST body.  The reply is
 * in c->status/c->body.  <0 only for transport failures (with the error
 * written). */
static int request(struct stepca *c, CURL *h, const char *path,
                   const char *body, struct curl_slist *hdrs)
{
    char url[STEPCA_MAX_URL + 3 * STEPCA_MAX_CURSOR + 64];
    const char *what = body ? "POST" : "GET";
    CURLcode cc;
    int ok = 1, n;

    n = snprintf(url, sizeof(url), "%s%s", c->ca_url, path);
    if (n < 0 || (size_t)n >= sizeof(url))
        return fail(c, -EINVAL, "URL too long");
    c->status = 0;
    c->len = 0;
    if (c->body)
        c->body[0] = '\0';
    c->too_big = c->oom = false;
    c->curl_err[0] = '\0';
    c->m_alert = -1;
    c->m_setup_fail = false;
    ok &= curl_easy_setopt(h, CURLOPT_URL, url) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK;
    if (body) {
        ok &= curl_easy_setopt(h, CURLOPT_POST, 1L) == CURLE_OK;
        ok &= curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) == CURLE_OK;
        ok &= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                               (curl_off_t)strlen(body)) == CURLE_OK;
    } else {
        ok &= curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    }
    if (!ok)
        return fail(c, -EINVAL, "libcurl refused the request setup");
    {
        struct timespec t0, t1;

        (void)clock_gettime(CLOCK_MONOTONIC, &t0);
        cc = curl_easy_perform(h);
        (void)clock_gettime(CLOCK_MONOTONIC, &t1);
        if (c->latency) {
            static const double b[] = METRICS_CA_BUCKETS;
            int64_t ns = ((int64_t)t1.tv_sec - t0.tv_sec) * 1000000000 +
                         ((int64_t)t1.tv_nsec - t0.tv_nsec);

            metrics_hist_observe(c->latency, b, METRICS_CA_NBUCKETS,
                                 ns > 0 ? (uint64_t)ns : 0);
        }
    }
    /* Drop the borrowed body pointer: nothing may read it later. */
    if (body)
        (void)curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    if (c->oom)
        return fail(c, -ENOMEM, "%s %s: out of memory reading the reply",
                    what, path);
    if (c->too_big || cc == CURLE_FILESIZE_EXCEEDED)
        return fail(c, -EMSGSIZE, "%s %s: reply larger than %u bytes", what,
                    path, STEPCA_MAX_REPLY);
    if (cc != CURLE_OK) {
        if (h == c->mtls && c->m_setup_fail)
            return fail(c, -EINVAL, "%s %s: cannot install the client "
                                    "certificate and key", what, path);
        if (h == c->mtls && alert_is_about_our_cert(c->m_alert))
            return fail(c, -EKEYEXPIRED,
                        "%s %s: the CA refused our client certificate in the "
                        "TLS handshake (alert '%s'): expired, or not usable "
                        "for client authentication",
                        what, path,
                        SSL_alert_desc_string_long((2 << 8) | c->m_alert));
        return fail(c, http_curl_errno(cc), "%s %s: %s (%s)", what, path,
                    curl_easy_strerror(cc),
                    c->curl_err[0] ? c->curl_err : "no detail");
    }
    (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
    if (hlp_log_get_level() >= LOG_DEBUG) {
        curl_off_t conn = 0, tls = 0, ttfb = 0, total = 0;
        long connects = 0;

        (void)curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
        (void)curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &conn);
        (void)curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &tls);
        (void)curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME_T, &ttfb);
        (void)curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &total);
        log_debug("step-ca: %s %s: HTTP %ld, %s connection, tcp %ld us, "
                  "tls %ld us, first byte %ld us, total %ld us",
                  what, path, c->status, connects ? "new" : "reused",
                  (long)conn, (long)tls, (long)ttfb, (long)total);
    }
    return 0;
}

/* ---------------------------------------------------- result checks */

/* A cert's subject as one line, for messages. */
static void subject_line(X509 *x, char *buf, size_t n)
{
    _cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
    const char *p;
    long len;

    buf[0] = '\0';
    if (!b || X509_NAME_print_ex(b, X509_get_subject_name(x), 0,
                                 XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) < 0)
        return;
    len = BIO_get_mem_data(b, &p);
    if (len <= 0)
        return;
    if ((size_t)len >= n)
        len = (long)n - 1;
    memcpy(buf, p, (size_t)len);
    buf[len] = '\0';
}

/* True when sk's intermediates are the cached ones that verified to the
 * root before: then only the leaf's link needs checking. */
static bool tail_verified(const struct chain_cache *cc, STACK_OF(X509) *sk)
{
    int n = sk_X509_num(sk);

    if (!cc->verified || n < 2 || (size_t)n != cc->n)
        return false;
    for (int i = 1; i < n; i++)
        if (sk_X509_value(sk, i) != cc->x[i])
            return false;
    return true;
}

/* The chain chains to the root (signatures only: the validity window is
 * the renewal engine's business, and clock skew must not fail a fresh
 * certificate). */
static int verify_chain(struct stepca *c, STACK_OF(X509) *sk)
{
    _cleanup_(x509_stack_freep) STACK_OF(X509) *untrusted = NULL;
    X509 *leaf = sk_X509_value(sk, 0), *issuer;
    X509_STORE_CTX *vctx;
    int ok, verr;

    if (tail_verified(&c->cache, sk)) {
        issuer = sk_X509_value(sk, 1);
        ok = X509_check_issued(issuer, leaf) == X509_V_OK &&
             X509_verify(leaf, X509_get0_pubkey(issuer)) == 1;
        ERR_clear_error();
        if (!ok)
            return fail(c, -EBADMSG, "the returned certificate is not signed "
                                     "by the intermediate that came with it");
        return 0;
    }
    untrusted = sk_X509_new_null();
    vctx = X509_STORE_CTX_new();
    if (!untrusted || !vctx) {
        X509_STORE_CTX_free(vctx);
        return fail(c, -ENOMEM, "out of memory");
    }
    for (int i = 1; i < sk_X509_num(sk); i++)
        if (!X509_add_cert(untrusted, sk_X509_value(sk, i),
                           X509_ADD_FLAG_UP_REF)) {
            X509_STORE_CTX_free(vctx);
            return fail(c, -ENOMEM, "out of memory");
        }
    ok = X509_STORE_CTX_init(vctx, c->roots, leaf, untrusted) == 1;
    if (ok) {
        X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(vctx),
                                    X509_V_FLAG_NO_CHECK_TIME);
        ok = X509_verify_cert(vctx) == 1;
    }
    verr = X509_STORE_CTX_get_error(vctx);
    X509_STORE_CTX_free(vctx);
    ERR_clear_error();
    if (!ok)
        return fail(c, -EBADMSG, "the returned chain does not verify to the "
                                 "root: %s",
                    X509_verify_cert_error_string(verr));
    /* Remember that the cached intermediates lead to the root. */
    c->cache.verified = false;
    if (sk_X509_num(sk) >= 2) {
        bool same = true;

        for (int i = 1; i < sk_X509_num(sk); i++)
            same = same && sk_X509_value(sk, i) == c->cache.x[i];
        if (same) {
            c->cache.n = (size_t)sk_X509_num(sk);
            c->cache.verified = true;
        }
    }
    return 0;
}

/* The leaf carries want_key, old's subject (renew/rekey) and every name
 * (sign), and the chain verifies to the root. */
static int check_result(struct stepca *c, STACK_OF(X509) *sk,
                        EVP_PKEY *want_key, X509 *old,
                        const char *const *names, size_t n_names)
{
    X509 *leaf = sk_X509_value(sk, 0);
    char subj[256];
    int ok;

    if (EVP_PKEY_eq(X509_get0_pubkey(leaf), want_key) != 1) {
        subject_line(leaf, subj, sizeof(subj));
        return fail(c, -EBADMSG,
                    "the CA returned a certificate for another key (subject "
                    "'%s'): not delivered", subj);
    }
    if (old && X509_NAME_cmp(X509_get_subject_name(leaf),
                             X509_get_subject_name(old)) != 0) {
        subject_line(leaf, subj, sizeof(subj));
        return fail(c, -EBADMSG, "the CA returned another subject ('%s')",
                    subj);
    }
    for (size_t i = 0; i < n_names; i++) {
        char value[HTTP_MAX_NAME + 1];
        const char *type = NULL;

        if (ca_name_classify(names[i], &type, value, sizeof(value)) < 0)
            return fail(c, -EINVAL, "bad name");
        ok = strcmp(type, "ip") == 0
                 ? X509_check_ip_asc(leaf, value, 0)
                 : X509_check_host(leaf, value, 0,
                                   X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL);
        if (ok != 1)
            return fail(c, -EBADMSG, "the certificate lacks '%s'", names[i]);
    }
    return verify_chain(c, sk);
}

/* A 200/201 SignResponse in c->body -> checked result. */
static int finish_sign_response(struct stepca *c, const char *what,
                                EVP_PKEY *want_key, X509 *old,
                                const char *const *names, size_t n_names,
                                struct stepca_result *ret)
{
    _cleanup_(x509_stack_freep) STACK_OF(X509) *sk = NULL;
    struct stepca_result res = { 0 };
    int r;

    if (c->status != 201 && c->status != 200)
        return fail_http(c, what);
    r = parse_sign_response_x509(c->body, c->len, &c->cache, &sk);
    if (r < 0)
        return fail(c, r, "%s: HTTP %ld but not a SignResponse", what,
                    c->status);
    r = check_result(c, sk, want_key, old, names, n_names);
    if (r < 0)
        return r;
    r = chain_to_pem(sk, &res);
    if (r < 0)
        return fail(c, r, "out of memory");
    log_debug("step-ca: %s: got a chain of %d certificate(s)", c->step,
              sk_X509_num(sk));
    *ret = res;
    return 0;
}

static int check_identity(struct stepca *c, X509 *leaf, EVP_PKEY *key)
{
    if (!leaf || !key)
        return fail(c, -EINVAL, "no certificate or key");
    if (X509_check_private_key(leaf, key) != 1) {
        ERR_clear_error();
        return fail(c, -EINVAL, "the key does not belong to the certificate");
    }
    return 0;
}

/* ---------------------------------------------------------- renewals */

static int mtls_post(struct stepca *c, X509 *leaf, STACK_OF(X509) *chain,
                     EVP_PKEY *key, const char *path, const char *body)
{
    int r;

    c->m_leaf = leaf;
    c->m_chain = chain;
    c->m_key = key;
    r = request(c, c->mtls, path, body, c->h_post);
    c->m_leaf = NULL;
    c->m_chain = NULL;
    c->m_key = NULL;
    return r;
}

int stepca_renew_mtls(struct stepca *c, X509 *leaf, STACK_OF(X509) *chain,
                      EVP_PKEY *key, struct stepca_result *ret, char *err,
                      size_t errlen)
{
    int r;

    if (!c || !ret)
        return -EINVAL;
    begin(c, "renew (mTLS)", err, errlen);
    r = check_identity(c, leaf, key);
    if (r < 0)
        return r;
    r = mtls_post(c, leaf, chain, key, "/1.0/renew", "");
    if (r < 0)
        return r;
    return finish_sign_response(c, "POST /1.0/renew", key, leaf, NULL, 0,
                                ret);
}

/* The leaf's CN, else its first DNS/IP SAN (for the renew token's sub;
 * step-ca compares sub with the CN only, and skips that when the CN is
 * empty). */
static int leaf_subject(X509 *leaf, char **ret)
{
    X509_NAME *nm = X509_get_subject_name(leaf);
    int i = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
    GENERAL_NAMES *gens;
    char *s = NULL;

    if (i >= 0) {
        unsigned char *u = NULL;
        int n = ASN1_STRING_to_UTF8(
            &u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i)));

        if (n < 0)
            return -EINVAL;
        s = strndup((const char *)u, (size_t)n);
        OPENSSL_free(u);
        if (!s)
            return -ENOMEM;
        *ret = s;
        return 0;
    }
    gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    for (int k = 0; gens && !s && k < sk_GENERAL_NAME_num(gens); k++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, k);
        char buf[INET6_ADDRSTRLEN];
        const unsigned char *ip;
        int len;

        if (g->type == GEN_DNS) {
            s = strndup((const char *)ASN1_STRING_get0_data(g->d.dNSName),
                        (size_t)ASN1_STRING_length(g->d.dNSName));
            if (!s)
                break;
        } else if (g->type == GEN_IPADD) {
            ip = ASN1_STRING_get0_data(g->d.iPAddress);
            len = ASN1_STRING_length(g->d.iPAddress);
            if ((len != 4 && len != 16) ||
                !inet_ntop(len == 4 ? AF_INET : AF_INET6, ip, buf,
                           sizeof(buf)))
                continue;
            s = strdup(buf);
            if (!s)
                break;
        }
    }
    GENERAL_NAMES_free(gens);
    if (!s)
        s = strdup("");
    if (!s)
        return -ENOMEM;
    *ret = s;
    return 0;
}

static int der_b64(X509 *x, json_t *arr)
{
    unsigned char *der = NULL;
    char *b64;
    int n = i2d_X509(x, &der), m;

    if (n <= 0)
        return -EINVAL;
    b64 = malloc(((size_t)n + 2) / 3 * 4 + 1);
    if (!b64) {
        OPENSSL_free(der);
        return -ENOMEM;
    }
    m = EVP_EncodeBlock((unsigned char *)b64, der, n); /* std, padded */
    OPENSSL_free(der);
    if (m < 0 || json_array_append_new(arr, json_stringn(b64, (size_t)m)) < 0) {
        free(b64);
        return -ENOMEM;
    }
    free(b64);
    return 0;
}

int stepca_make_renew_token(X509 *leaf, STACK_OF(X509) *chain, EVP_PKEY *key,
                            const char *aud, int64_t now, char **ret)
{
    _cleanup_(jsonp) json_t *hdr = NULL, *claims = NULL;
    _cleanup_free_ char *kid = NULL, *sub = NULL, *jti = NULL, *payload = NULL;
    json_t *x5c;
    int r;

    if (!leaf || !key || !aud || !ret)
        return -EINVAL;
    if (X509_check_private_key(leaf, key) != 1) {
        ERR_clear_error();
        return -EINVAL;
    }
    r = jws_thumbprint(key, &kid);
    if (r < 0)
        return r;
    r = leaf_subject(leaf, &sub);
    if (r < 0)
        return r;
    r = hex_random(32, &jti);
    if (r < 0)
        return r;
    x5c = json_array();
    hdr = json_pack("{s:s, s:s}", "kid", kid, "typ", "JWT");
    if (!x5c || !hdr || json_object_set_new(hdr, "x5cInsecure", x5c) < 0) {
        if (!hdr)
            json_decref(x5c);
        return -ENOMEM;
    }
    r = der_b64(leaf, x5c);
    for (int i = 0; r >= 0 && chain && i < sk_X509_num(chain); i++)
        r = der_b64(sk_X509_value(chain, i), x5c);
    if (r < 0)
        return r;
    claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "aud", aud,
                       "iss", STEPCA_RENEW_ISS, "sub", sub, "iat",
                       (json_int_t)now, "nbf", (json_int_t)now, "exp",
                       (json_int_t)(now + STEPCA_TOKEN_LIFETIME_S), "jti", jti);
    if (!claims)
        return -ENOMEM;
    payload = json_dumps(claims, JSON_COMPACT);
    if (!payload)
        return -ENOMEM;
    return jws_compact(key, hdr, payload, strlen(payload), ret);
}

int stepca_renew_token(struct stepca *c, X509 *leaf, STACK_OF(X509) *chain,
                       EVP_PKEY *key, struct stepca_result *ret, char *err,
                       size_t errlen)
{
    _cleanup_(wipe_strp) char *tok = NULL, *auth = NULL;
    struct curl_slist *hdrs = NULL;
    char aud[STEPCA_MAX_URL + 16];
    size_t n;
    int r;

    if (!c || !ret)
        return -EINVAL;
    begin(c, "renew (token)", err, errlen);
    r = check_identity(c, leaf, key);
    if (r < 0)
        return r;
    (void)snprintf(aud, sizeof(aud), "%s/1.0/renew", c->ca_url);
    r = stepca_make_renew_token(leaf, chain, key, aud, (int64_t)time(NULL),
                                &tok);
    if (r == -EOPNOTSUPP)
        return fail(c, r, "the certificate's key type cannot sign a token");
    if (r < 0)
        return fail(c, r, "cannot make the renew token");
    n = strlen(tok) + sizeof("Authorization: Bearer ");
    auth = malloc(n);
    if (!auth)
        return fail(c, -ENOMEM, "out of memory");
    (void)snprintf(auth, n, "Authorization: Bearer %s", tok);
    hdrs = curl_slist_append(NULL, HDR_JSON);
    if (hdrs)
        hdrs = curl_slist_append(hdrs, HDR_ACCEPT);
    if (hdrs)
        hdrs = curl_slist_append(hdrs, "Expect:");
    if (hdrs)
        hdrs = curl_slist_append(hdrs, auth);
    if (!hdrs)
        return fail(c, -ENOMEM, "out of memory");
    r = request(c, c->keep, "/1.0/renew", "", hdrs);
    (void)curl_easy_setopt(c->keep, CURLOPT_HTTPHEADER, NULL);
    slist_wipe_free(hdrs);
    if (r < 0)
        return r;
    return finish_sign_response(c, "POST /1.0/renew", key, leaf, NULL, 0,
                                ret);
}

static int csr_pem(X509_REQ *x, char **ret)
{
    _cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
    const char *p;
    long n;

    if (!b || !PEM_write_bio_X509_REQ(b, x))
        return -ENOMEM;
    n = BIO_get_mem_data(b, &p);
    if (n <= 0)
        return -ENOMEM;
    *ret = strndup(p, (size_t)n);
    return *ret ? 0 : -ENOMEM;
}

static int mtls_post_json(struct stepca *c, X509 *leaf, STACK_OF(X509) *chain,
                          EVP_PKEY *key, const char *path, json_t *o)
{
    _cleanup_free_ char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;

    if (!body)
        return fail(c, -ENOMEM, "out of memory");
    return mtls_post(c, leaf, chain, key, path, body);
}

int stepca_revoke_mtls(struct stepca *c, X509 *leaf, STACK_OF(X509) *chain,
                       EVP_PKEY *key, int reason_code, const char *reason,
                       char *ret_serial, size_t serial_len, char *err,
                       size_t errlen)
{
    _cleanup_(jsonp) json_t *o = NULL;
    _cleanup_(jsonp) json_t *rep = NULL;
    char serial[80];
    BIGNUM *bn;
    char *dec;
    int r;

    if (!c)
        return -EINVAL;
    begin(c, "revoke (mTLS)", err, errlen);
    r = check_identity(c, leaf, key);
    if (r < 0)
        return r;
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    dec = bn ? BN_bn2dec(bn) : NULL;
    BN_free(bn);
    if (!dec)
        return fail(c, -ENOMEM, "out of memory");
    o = json_pack("{s:s,s:i,s:s,s:b}", "serial", dec, "reasonCode", reason_code,
                  "reason", reason ? reason : "", "passive", 1);
    snprintf(serial, sizeof(serial), "%s", dec);
    OPENSSL_free(dec);
    r = mtls_post_json(c, leaf, chain, key, "/1.0/revoke", o);
    if (r < 0)
        return r;
    if (c->status != 200)
        return fail_http(c, "POST /1.0/revoke");
    rep = json_loadb(c->body, c->len, 0, NULL);
    if (!rep || !json_is_string(json_object_get(rep, "status")) ||
        strcmp(json_string_value(json_object_get(rep, "status")), "ok") != 0)
        return fail(c, -EBADMSG, "POST /1.0/revoke: HTTP 200 but not {\"status\":\"ok\"}");
    if (ret_serial && serial_len)
        snprintf(ret_serial, serial_len, "%s", serial);
    return 0;
}

int stepca_rekey_mtls(struct stepca *c, X509 *leaf, STACK_OF(X509) *chain,
                      EVP_PKEY *key, EVP_PKEY *new_key,
                      struct stepca_result *ret, char *err, size_t errlen)
{
    _cleanup_free_ char *pem = NULL;
    _cleanup_(jsonp) json_t *o = NULL;
    X509_REQ *req;
    int r;

    if (!c || !ret)
        return -EINVAL;
    begin(c, "rekey (mTLS)", err, errlen);
    r = check_identity(c, leaf, key);
    if (r < 0)
        return r;
    if (!new_key)
        return fail(c, -EINVAL, "no new key");
    /* step-ca uses only the CSR's public key (and checks its signature);
     * the subject is the old one, for readability. */
    req = X509_REQ_new();
    if (!req)
        return fail(c, -ENOMEM, "out of memory");
    if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
        !X509_REQ_set_subject_name(req, X509_get_subject_name(leaf)) ||
        !X509_REQ_set_pubkey(req, new_key) ||
        X509_REQ_sign(req, new_key,
                      EVP_PKEY_is_a(new_key, "ED25519") ? NULL
                                                         : EVP_sha256()) <= 0) {
        X509_REQ_free(req);
        ERR_clear_error();
        return fail(c, -EINVAL, "cannot make the CSR for the new key");
    }
    r = csr_pem(req, &pem);
    X509_REQ_free(req);
    if (r < 0)
        return fail(c, r, "out of memory");
    o = json_pack("{s:s}", "csr", pem);
    r = mtls_post_json(c, leaf, chain, key, "/1.0/rekey", o);
    if (r < 0)
        return r;
    return finish_sign_response(c, "POST /1.0/rekey", new_key, leaf, NULL, 0,
                                ret);
}

/* ------------------------------------------------------- provisioner */

void stepca_provisioner_free(struct stepca_provisioner *p)
{
    if (!p)
        return;
    free(p->name);
    free(p->kid);
    EVP_PKEY_free(p->key);
    free(p);
}

const char *stepca_provisioner_kid(const struct stepca_provisioner *p)
{
    return p ? p->kid : NULL;
}

static int prov_new(const char *name, char *kid, EVP_PKEY *key,
                    struct stepca_provisioner **ret)
{
    struct stepca_provisioner *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    p->name = strdup(name);
    if (!p->name) {
        free(p);
        return -ENOMEM;
    }
    p->kid = kid;
    p->key = key;
    *ret = p;
    return 0;
}

/* GET /1.0/provisioners, page after page, until name is found. */
static int find_provisioner(struct stepca *c, const char *name,
                            struct stepca_prov_entry *ret)
{
    _cleanup_(stepca_prov_entry_done) struct stepca_prov_entry found = { 0 };
    _cleanup_free_ char *cursor = NULL;
    bool have = false;
    unsigned page;
    int r;

    c->step = "provisioners";
    for (page = 0; page < STEPCA_MAX_PAGES; page++) {
        struct stepca_prov_entry e = { 0 };
        char path[STEPCA_MAX_CURSOR * 3 + 64];
        char *next = NULL;

        if (cursor) {
            char *esc = curl_easy_escape(c->keep, cursor, 0);

            if (!esc)
                return fail(c, -ENOMEM, "out of memory");
            (void)snprintf(path, sizeof(path),
                           "/1.0/provisioners?limit=" STEPCA_PAGE_LIMIT
                           "&cursor=%s", esc);
            curl_free(esc);
        } else {
            (void)snprintf(path, sizeof(path),
                           "/1.0/provisioners?limit=" STEPCA_PAGE_LIMIT);
        }
        r = request(c, c->keep, path, NULL, NULL);
        if (r < 0)
            return r;
        if (c->status != 200)
            return fail_http(c, "GET /1.0/provisioners");
        r = stepca_parse_provisioners(c->body, c->len, name, &e, &next);
        if (r == -ENOTUNIQ)
            return fail(c, r, "more than one JWK provisioner called '%s'",
                        name);
        if (r == -EOPNOTSUPP)
            return fail(c, r, "JWK provisioner '%s' has a key type other "
                              "than EC P-256", name);
        if (r < 0)
            return fail(c, r, "GET /1.0/provisioners: HTTP %ld but not a "
                              "provisioner list", c->status);
        if (r > 0) {
            if (have) {
                stepca_prov_entry_done(&e);
                free(next);
                return fail(c, -ENOTUNIQ, "more than one JWK provisioner "
                                          "called '%s'", name);
            }
            found = e;
            have = true;
        }
        if (!next)
            break;
        if (cursor && strcmp(next, cursor) == 0) {
            free(next);
            return fail(c, -EBADMSG, "the provisioner list does not advance");
        }
        free(cursor);
        cursor = next;
    }
    if (page == STEPCA_MAX_PAGES)
        return fail(c, -EBADMSG, "more than %u pages of provisioners",
                    STEPCA_MAX_PAGES);
    if (!have)
        return fail(c, -ENOENT, "no JWK provisioner '%s' at %s", name,
                    c->ca_url);
    *ret = found;
    found = (struct stepca_prov_entry){ 0 };
    return 0;
}

static int load_with_password(struct stepca *c, const char *name,
                              const struct secret *password,
                              struct stepca_provisioner **ret)
{
    _cleanup_(stepca_prov_entry_done) struct stepca_prov_entry e = { 0 };
    _cleanup_secret_ struct secret plain = { 0 };
    _cleanup_(pkey_freep) EVP_PKEY *key = NULL;
    _cleanup_free_ char *kid_in = NULL, *tp = NULL;
    int r;

    r = find_provisioner(c, name, &e);
    if (r < 0)
        return r;
    c->step = "decrypt";
    if (!e.encrypted_key)
        return fail(c, -ENOKEY, "JWK provisioner '%s' publishes no "
                                "encryptedKey: give its private JWK file "
                                "instead", name);
    r = stepca_jwe_decrypt(e.encrypted_key, strlen(e.encrypted_key), password,
                           &plain);
    if (r == -EKEYREJECTED)
        return fail(c, r, "cannot decrypt the key of JWK provisioner '%s': "
                          "wrong password or corrupt encryptedKey", name);
    if (r == -EOPNOTSUPP)
        return fail(c, r, "the encryptedKey of JWK provisioner '%s' is not "
                          "PBES2-HS256+A128KW/A256GCM with %ld..%ld "
                          "iterations", name, STEPCA_P2C_MIN, STEPCA_P2C_MAX);
    if (r < 0)
        return fail(c, r, "malformed encryptedKey of JWK provisioner '%s'",
                    name);
    r = stepca_jwk_private((const char *)plain.data, plain.len, &key, &kid_in);
    if (r < 0)
        return fail(c, r, "the decrypted key of JWK provisioner '%s' is not "
                          "a private EC P-256 JWK", name);
    if (EVP_PKEY_eq(key, e.pub) != 1)
        return fail(c, -EBADMSG, "the decrypted key of JWK provisioner '%s' "
                                 "is not its published key", name);
    r = jws_thumbprint(key, &tp);
    if (r < 0)
        return fail(c, r, "cannot compute the key's thumbprint");
    if (strcmp(tp, e.kid) != 0 && (!kid_in || strcmp(kid_in, e.kid) != 0))
        return fail(c, -EBADMSG, "JWK provisioner '%s': published kid '%s' "
                                 "is neither the key's thumbprint nor its kid",
                    name, e.kid);
    r = prov_new(name, e.kid, key, ret);
    if (r < 0)
        return fail(c, r, "out of memory");
    e.kid = NULL;
    key = NULL;
    return 0;
}

void stepca_set_latency(struct stepca *c, struct metrics_hist *h)
{
    if (c)
        c->latency = h;
}

int stepca_health(struct stepca *c, char *err, size_t errlen)
{
    _cleanup_(jsonp) json_t *o = NULL;
    const json_t *st;
    int r;

    if (!c)
        return -EINVAL;
    begin(c, "health", err, errlen);
    r = request(c, c->keep, "/health", NULL, NULL);
    if (r < 0)
        return r;
    if (c->status != 200)
        return fail_http(c, "GET /health");
    if (load_object(c->body, c->len, STEPCA_MAX_REPLY, &o) < 0 ||
        !(st = json_object_get(o, "status")) || !json_is_string(st) ||
        strcmp(json_string_value(st), "ok") != 0)
        return fail(c, -EBADMSG, "GET /health: HTTP 200 but not "
                                 "{\"status\":\"ok\"}");
    return 0;
}

int stepca_provisioner_load(struct stepca *c, const char *name,
                            const struct secret *password,
                            const char *jwk_file,
                            struct stepca_provisioner **ret, char *err,
                            size_t errlen)
{
    _cleanup_secret_ struct secret file = { 0 };
    _cleanup_(pkey_freep) EVP_PKEY *key = NULL;
    _cleanup_free_ char *kid = NULL;
    int r;

    if (err && errlen)
        err[0] = '\0';
    if (!ret || !name || !*name || strlen(name) > STEPCA_MAX_PROV_NAME ||
        !is_printable(name, strlen(name)))
        return fail_to(err, errlen, "provisioner", -EINVAL,
                       "bad provisioner name");
    if (!password == !jwk_file)
        return fail_to(err, errlen, "provisioner", -EINVAL,
                       "give exactly one of a password and a JWK file");
    if (password) {
        if (!c)
            return -EINVAL;
        begin(c, "provisioners", err, errlen);
        if (!password->data || password->len == 0)
            return fail(c, -EINVAL, "empty password for JWK provisioner '%s'",
                        name);
        return load_with_password(c, name, password, ret);
    }
    r = sec_read_file(jwk_file, STEPCA_MAX_JWK, &file);
    if (r < 0)
        return fail_to(err, errlen, "provisioner", r,
                       "cannot read the JWK of provisioner '%s' from '%s'",
                       name, jwk_file);
    r = stepca_jwk_private((const char *)file.data, file.len, &key, &kid);
    if (r < 0)
        return fail_to(err, errlen, "provisioner", r,
                       "'%s' is not a private EC P-256 JWK", jwk_file);
    if (!kid) {
        r = jws_thumbprint(key, &kid);
        if (r < 0)
            return fail_to(err, errlen, "provisioner", r,
                           "cannot compute the key's thumbprint");
    }
    r = prov_new(name, kid, key, ret);
    if (r < 0)
        return fail_to(err, errlen, "provisioner", r, "out of memory");
    kid = NULL;
    key = NULL;
    return 0;
}

/* ------------------------------------------------------------- sign */

int stepca_make_sign_token(const struct stepca_provisioner *p,
                           const char *aud, const char *const *names,
                           size_t n_names, int64_t now, char **ret)
{
    _cleanup_(jsonp) json_t *hdr = NULL, *claims = NULL;
    _cleanup_free_ char *jti = NULL, *payload = NULL;
    const char *sub = NULL, *first = NULL;
    json_t *sans;
    int r;

    if (!p || !aud || !names || n_names == 0 || n_names > STEPCA_MAX_NAMES ||
        !ret)
        return -EINVAL;
    sans = json_array();
    claims = json_object();
    if (!sans || !claims || json_object_set_new(claims, "sans", sans) < 0) {
        if (!claims)
            json_decref(sans);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n_names; i++) {
        char value[HTTP_MAX_NAME + 1];
        const char *type = NULL;

        if (!names[i] ||
            ca_name_classify(names[i], &type, value, sizeof(value)) < 0)
            return -EINVAL;
        if (json_array_append_new(sans, json_string(value)) < 0)
            return -ENOMEM;
        /* sub: the first DNS name (the CSR's CN, which step-ca 0.19 wants
         * equal to sub), else the first name. */
        if (!sub && strcmp(type, "dns") == 0)
            sub = json_string_value(json_array_get(sans, i));
        if (!first)
            first = json_string_value(json_array_get(sans, i));
    }
    r = hex_random(32, &jti);
    if (r < 0)
        return r;
    if (json_object_set_new(claims, "aud", json_string(aud)) < 0 ||
        json_object_set_new(claims, "iss", json_string(p->name)) < 0 ||
        json_object_set_new(claims, "sub",
                            json_string(sub ? sub : first)) < 0 ||
        json_object_set_new(claims, "iat", json_integer(now)) < 0 ||
        json_object_set_new(claims, "nbf", json_integer(now)) < 0 ||
        json_object_set_new(claims, "exp",
                            json_integer(now + STEPCA_TOKEN_LIFETIME_S)) < 0 ||
        json_object_set_new(claims, "jti", json_string(jti)) < 0)
        return -ENOMEM;
    hdr = json_pack("{s:s, s:s}", "kid", p->kid, "typ", "JWT");
    payload = json_dumps(claims, JSON_COMPACT);
    if (!hdr || !payload)
        return -ENOMEM;
    return jws_compact(p->key, hdr, payload, strlen(payload), ret);
}

int stepca_sign_jwk(struct stepca *c, const struct stepca_provisioner *p,
                    EVP_PKEY *key, const char *const *names, size_t n_names,
                    int64_t lifetime_s, struct stepca_result *ret, char *err,
                    size_t errlen)
{
    _cleanup_(wipe_strp) char *tok = NULL, *body = NULL;
    _cleanup_free_ char *pem = NULL;
    _cleanup_(jsonp) json_t *o = NULL;
    char aud[STEPCA_MAX_URL + 16];
    X509_REQ *req = NULL;
    int r;

    if (!c || !ret)
        return -EINVAL;
    begin(c, "sign", err, errlen);
    if (!p || !key || !names || n_names == 0 || n_names > STEPCA_MAX_NAMES)
        return fail(c, -EINVAL, "need a provisioner, a key and 1..%u names",
                    STEPCA_MAX_NAMES);
    if (lifetime_s < 0 || lifetime_s > 100LL * 366 * 24 * 3600)
        return fail(c, -EINVAL, "lifetime out of range");
    for (size_t i = 0; i < n_names; i++) {
        char value[HTTP_MAX_NAME + 1];
        const char *type;

        if (!names[i] ||
            ca_name_classify(names[i], &type, value, sizeof(value)) < 0)
            return fail(c, -EINVAL, "name %zu is neither a DNS name nor an "
                                    "IP address", i + 1);
    }
    (void)snprintf(aud, sizeof(aud), "%s/1.0/sign", c->ca_url);
    r = stepca_make_sign_token(p, aud, names, n_names, (int64_t)time(NULL),
                               &tok);
    if (r < 0)
        return fail(c, r, "cannot make the one-time token");
    r = ca_make_csr(key, names, n_names, &req);
    if (r < 0)
        return fail(c, r, "cannot make the CSR");
    r = csr_pem(req, &pem);
    X509_REQ_free(req);
    if (r < 0)
        return fail(c, r, "out of memory");
    o = json_pack("{s:s, s:s}", "csr", pem, "ott", tok);
    if (!o)
        return fail(c, -ENOMEM, "out of memory");
    if (lifetime_s > 0) {
        char d[32];

        /* A Go duration, relative to the notBefore step-ca picks. */
        (void)snprintf(d, sizeof(d), "%llds", (long long)lifetime_s);
        if (json_object_set_new(o, "notAfter", json_string(d)) < 0)
            return fail(c, -ENOMEM, "out of memory");
    }
    body = json_dumps(o, JSON_COMPACT);
    if (!body)
        return fail(c, -ENOMEM, "out of memory");
    r = request(c, c->keep, "/1.0/sign", body, c->h_post);
    if (r < 0)
        return r;
    return finish_sign_response(c, "POST /1.0/sign", key, NULL, names,
                                n_names, ret);
}

void stepca_result_done(struct stepca_result *r)
{
    if (!r)
        return;
    free(r->chain_pem);
    *r = (struct stepca_result){ 0 };
}
