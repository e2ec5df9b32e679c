/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shortcertd's ACME client (RFC 8555, http-01 only), see acme.h.
 *
 * One libcurl easy handle per issuance, reused for every request so the
 * TLS connection to the CA is kept alive (an issuance is ~10 requests).
 * Trust: https only, the configured root as the only anchor (no system
 * store, no CA path, no proxy from the environment), no redirects, bodies
 * capped at ACME_MAX_REPLY, and every reply body goes through the bounded
 * parsers of acme-parse.c before anything here looks at it.
 *
 * Timing: step-ca validates synchronously inside the POST to the challenge
 * URL and signs synchronously inside finalize, so the usual flow has no
 * waits at all; we only sleep while something is still pending (honouring
 * Retry-After, bounded), with a short exponential backoff otherwise.
 *
 * Secrets: the account and certificate keys never leave their EVP_PKEY.
 * ACME tokens are logged only as a short SHA-256 fingerprint and are
 * redacted from error texts (step-ca echoes the expected key authorization
 * in some problem details).
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
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme-parse.h"
#include "acme.h"
#include "http.h"
#include "http01.h"
#include "jws.h"
#include "log.h"
#include "macro.h"

#define ACME_BADNONCE_RETRIES 10
#define ACME_MAX_NONCE 256u
#define ACME_MAX_HEADER_VALUE 2048u
#define ACME_DEFAULT_TIMEOUT_S 30L
#define ACME_DEFAULT_MAX_POLLS 60
#define ACME_MAX_RETRY_AFTER_MS 10000L /* cap on a server's Retry-After */
#define ACME_BACKOFF_FIRST_MS 50L
#define ACME_BACKOFF_MAX_MS 1000L
#define ACME_MAX_NAMES ACME_MAX_AUTHZ
#define ACME_USER_AGENT "shortcertd (ACME)"

#define CT_JOSE "Content-Type: application/jose+json"
#define ACCEPT_JSON "Accept: application/json"
#define ACCEPT_PEM "Accept: application/pem-certificate-chain"

/* ------------------------------------------------------------ responses */

struct acme_resp {
    long status;
    char *body; /* NUL-terminated, len bytes */
    size_t len, cap;
    bool too_big;
    bool oom;
    char *nonce; /* Replay-Nonce, validated base64url */
    char *location;
    char *content_type;
    long retry_after_ms; /* -1: absent */
};

static void resp_headers_reset(struct acme_resp *r)
{
    free(r->nonce);
    free(r->location);
    free(r->content_type);
    r->nonce = r->location = r->content_type = NULL;
    r->retry_after_ms = -1;
}

static void resp_reset(struct acme_resp *r)
{
    resp_headers_reset(r);
    r->status = 0;
    r->len = 0;
    if (r->body)
        r->body[0] = '\0';
    r->too_big = r->oom = false;
}

static void resp_done(struct acme_resp *r)
{
    resp_headers_reset(r);
    free(r->body);
    *r = (struct acme_resp){ .retry_after_ms = -1 };
}

/* The STYLE capped write callback: refuse (-> CURLE_WRITE_ERROR) past the
 * cap instead of growing without bound. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct acme_resp *r = ud;
    size_t n = size * nmemb;
    int e = http_body_append(&r->body, &r->len, &r->cap, ACME_MAX_REPLY, ptr,
                             n);

    if (e == -EMSGSIZE)
        r->too_big = true;
    else if (e < 0)
        r->oom = true;
    return e < 0 ? 0 : n;
}

static long parse_retry_after(const char *v)
{
    char *end;
    long long s;
    time_t t;

    if (*v >= '0' && *v <= '9') {
        errno = 0;
        s = strtoll(v, &end, 10);
        if (errno || *end != '\0' || s < 0)
            return -1;
        return s > ACME_MAX_RETRY_AFTER_MS / 1000 ? ACME_MAX_RETRY_AFTER_MS
                                                  : (long)s * 1000;
    }
    t = curl_getdate(v, NULL); /* HTTP-date */
    if (t < 0)
        return -1;
    t -= time(NULL);
    if (t <= 0)
        return 0;
    return t > ACME_MAX_RETRY_AFTER_MS / 1000 ? ACME_MAX_RETRY_AFTER_MS
                                              : (long)t * 1000;
}

static size_t on_header(char *b, size_t size, size_t nmemb, void *ud)
{
    struct acme_resp *r = ud;
    size_t n = size * nmemb, nl, vs, ve;
    char **slot = NULL;
    char *v;

    if (n >= 5 && memcmp(b, "HTTP/", 5) == 0) {
        resp_headers_reset(r); /* a new response (e.g. after 100) */
        return n;
    }
    v = memchr(b, ':', n);
    if (!v)
        return n;
    nl = (size_t)(v - b);
    for (vs = nl + 1; vs < n && (b[vs] == ' ' || b[vs] == '\t'); vs++)
        ;
    for (ve = n; ve > vs && (b[ve - 1] == '\r' || b[ve - 1] == '\n' ||
                             b[ve - 1] == ' ' || b[ve - 1] == '\t');
         ve--)
        ;
    if (ve - vs > ACME_MAX_HEADER_VALUE || memchr(b + vs, '\0', ve - vs))
        return n; /* ignored, not fatal */
    if (nl == 12 && strncasecmp(b, "Replay-Nonce", 12) == 0) {
        if (ve - vs > ACME_MAX_NONCE || !jws_is_b64url(b + vs, ve - vs))
            return n; /* RFC 8555 §6.5.1: MUST be base64url; else ignore */
        slot = &r->nonce;
    } else if (nl == 8 && strncasecmp(b, "Location", 8) == 0) {
        slot = &r->location;
    } else if (nl == 12 && strncasecmp(b, "Content-Type", 12) == 0) {
        slot = &r->content_type;
    } else if (nl == 11 && strncasecmp(b, "Retry-After", 11) == 0) {
        char tmp[128];

        if (ve - vs < sizeof(tmp)) {
            memcpy(tmp, b + vs, ve - vs);
            tmp[ve - vs] = '\0';
            r->retry_after_ms = parse_retry_after(tmp);
        }
        return n;
    }
    if (slot) {
        free(*slot);
        *slot = strndup(b + vs, ve - vs);
        if (!*slot) {
            r->oom = true;
            return 0;
        }
    }
    return n;
}

/* ------------------------------------------------------------- context */

struct acme_ctx {
    const struct acme_request *req;
    CURL *curl;
    char curl_err[CURL_ERROR_SIZE];
    struct curl_slist *h_get, *h_post, *h_pem;
    struct acme_resp resp;
    struct acme_directory dir;
    char *nonce;
    char *kid;
    char *order_url;
    const char *step; /* for error texts: what we were doing */
    char *err;
    size_t errlen;
    /* tokens published in the responder (withdrawn on every exit) */
    char **published;
    size_t n_published;
    /* all tokens seen in this order, redacted from error texts */
    char **seen;
    size_t n_seen;
    unsigned n_requests;
};

static void withdraw_all(struct acme_ctx *c)
{
    for (size_t i = 0; i < c->n_published; i++) {
        http01_withdraw(c->req->responder, c->published[i]);
        free(c->published[i]);
    }
    c->n_published = 0;
}

static void ctx_done(struct acme_ctx *c)
{
    withdraw_all(c);
    free(c->published);
    for (size_t i = 0; i < c->n_seen; i++)
        free(c->seen[i]);
    free(c->seen);
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->h_get);
    curl_slist_free_all(c->h_post);
    curl_slist_free_all(c->h_pem);
    resp_done(&c->resp);
    acme_directory_done(&c->dir);
    free(c->nonce);
    free(c->kid);
    free(c->order_url);
}

/* Replaces every token of this order in s (in place, bounded by size) with
 * "<token:fingerprint>".  Tokens shorter than 8 characters are left alone:
 * they protect nothing and would garble the message. */
static void redact_tokens(const struct acme_ctx *c, char *s, size_t size)
{
    for (size_t i = 0; i < c->n_seen; i++) {
        const char *tok = c->seen[i];
        size_t tl = strlen(tok);
        char *from = s, *hit;
        char rep[32], fp[13];
        size_t rl;

        if (tl < 8)
            continue;
        jws_fingerprint(tok, tl, fp);
        rl = (size_t)snprintf(rep, sizeof(rep), "<token:%s>", fp);
        while ((hit = strstr(from, tok)) != NULL) {
            size_t at = (size_t)(hit - s);
            size_t tail = strlen(hit + tl) + 1; /* with the NUL */

            if (at + rl >= size) {
                *hit = '\0'; /* no room for the replacement: cut here */
                break;
            }
            if (at + rl + tail > size)
                tail = size - at - rl; /* the end falls off */
            memmove(hit + rl, hit + tl, tail);
            memcpy(hit, rep, rl);
            s[size - 1] = '\0';
            from = hit + rl; /* never rescan the replacement */
        }
    }
}

static const char *short_type(const char *t)
{
    static const char urn[] = "urn:ietf:params:acme:error:";

    if (t && strncmp(t, urn, sizeof(urn) - 1) == 0)
        return t + sizeof(urn) - 1;
    return t ? t : "?";
}

/* Writes "<step>: <message>" to the caller's buffer; returns r. */
static int fail(struct acme_ctx *c, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct acme_ctx *c, int r, const char *fmt, ...)
{
    char msg[2048]; /* larger than all bounded parts: no token is cut */
    va_list ap;
    int n;

    n = snprintf(msg, sizeof(msg), "%s: ", c->step ? c->step : "acme");
    if (n < 0 || (size_t)n >= sizeof(msg))
        n = 0;
    va_start(ap, fmt);
    (void)vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    http_sanitize(msg);
    redact_tokens(c, msg, sizeof(msg));
    if (c->err && c->errlen > 0)
        (void)snprintf(c->err, c->errlen, "%s", msg);
    log_debug("ACME: %s", msg);
    return r;
}

/* errno for an HTTP-level failure. */
static int http_errno(long status, const struct acme_problem *p)
{
    if (p && (acme_problem_is(p, "rateLimited") || status == 429))
        return -EBUSY;
    if (status == 401 || status == 403)
        return -EACCES;
    if (status == 404)
        return -ENOENT;
    if (status >= 500)
        return -EREMOTEIO;
    return -EPROTO;
}

/* A reply with an unexpected status: say which, with its problem doc. */
static int fail_http(struct acme_ctx *c, const char *what)
{
    struct acme_problem p = { 0 };
    int r;

    if (c->resp.len > 0 &&
        acme_parse_problem(c->resp.body, c->resp.len, &p) == 0) {
        r = fail(c, http_errno(c->resp.status, &p),
                 "%s: HTTP %ld, problem %s: %s", what, c->resp.status,
                 short_type(p.type), p.detail ? p.detail : "(no detail)");
        acme_problem_done(&p);
        return r;
    }
    return fail(c, http_errno(c->resp.status, NULL),
                "%s: HTTP %ld without a problem document", what,
                c->resp.status);
}

static int fail_problem(struct acme_ctx *c, int r, const char *what,
                        const struct acme_problem *p)
{
    if (p && p->type)
        return fail(c, r, "%s, problem %s: %s", what, short_type(p->type),
                    p->detail ? p->detail : "(no detail)");
    return fail(c, r, "%s (no error given)", what);
}

static int ctx_init(struct acme_ctx *c)
{
    long timeout = c->req->timeout_s > 0 ? c->req->timeout_s
                                         : ACME_DEFAULT_TIMEOUT_S;
    CURL *h;
    int ok = 1;

    http_global_init();
    c->resp.retry_after_ms = -1;
    c->curl = h = curl_easy_init();
    c->h_get = curl_slist_append(NULL, ACCEPT_JSON);
    c->h_post = curl_slist_append(NULL, CT_JOSE);
    if (c->h_post)
        c->h_post = curl_slist_append(c->h_post, ACCEPT_JSON);
    if (c->h_post)
        c->h_post = curl_slist_append(c->h_post, "Expect:");
    c->h_pem = curl_slist_append(NULL, CT_JOSE);
    if (c->h_pem)
        c->h_pem = curl_slist_append(c->h_pem, ACCEPT_PEM);
    if (c->h_pem)
        c->h_pem = curl_slist_append(c->h_pem, "Expect:");
    if (!h || !c->h_get || !c->h_post || !c->h_pem)
        return fail(c, -ENOMEM, "cannot set up libcurl");

    ok &= http_easy_defaults(h, c->req->ca_root_file, timeout, ACME_USER_AGENT,
                             ACME_MAX_REPLY, c->curl_err) == 0;
#define SET(opt, val) ok &= curl_easy_setopt(h, opt, val) == CURLE_OK
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, &c->resp);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, &c->resp);
#undef SET
    if (!ok)
        return fail(c, -EOPNOTSUPP, "libcurl refused an option (built "
                                    "without https or too old?)");
    return 0;
}

enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_POST_PEM, /* POST, Accept: application/pem-certificate-chain */
};

/* One HTTP exchange; the reply lands in c->resp, its Replay-Nonce (if
 * any) in c->nonce.  Returns <0 only for transport failures. */
static int http_do(struct acme_ctx *c, enum http_method m, const char *url,
                   const char *body)
{
    struct curl_slist *hdrs = m == HTTP_POST      ? c->h_post
                              : m == HTTP_POST_PEM ? c->h_pem
                                                   : c->h_get;
    CURLcode cc;
    int ok = 1;

    resp_reset(&c->resp);
    c->curl_err[0] = '\0';
    ok &= curl_easy_setopt(c->curl, CURLOPT_URL, url) == CURLE_OK;
    ok &= curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK;
    ok &= curl_easy_setopt(c->curl, CURLOPT_NOBODY, m == HTTP_HEAD ? 1L : 0L) ==
          CURLE_OK;
    if (m == HTTP_POST || m == HTTP_POST_PEM) {
        ok &= curl_easy_setopt(c->curl, CURLOPT_POST, 1L) == CURLE_OK;
        ok &= curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body) == CURLE_OK;
        ok &= curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                               (curl_off_t)strlen(body)) == CURLE_OK;
    } else if (m == HTTP_GET) {
        ok &= curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    }
    if (!ok)
        return fail(c, -EINVAL, "libcurl refused the request setup");
    c->n_requests++;
    cc = curl_easy_perform(c->curl);
    if (c->resp.oom)
        return fail(c, -ENOMEM, "out of memory reading the reply");
    if (c->resp.too_big || cc == CURLE_FILESIZE_EXCEEDED)
        return fail(c, -EMSGSIZE, "reply larger than %u bytes",
                    ACME_MAX_REPLY);
    if (cc != CURLE_OK)
        return fail(c, http_curl_errno(cc), "%s (%s)", curl_easy_strerror(cc),
                    c->curl_err[0] ? c->curl_err : "no detail");
    (void)curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->resp.status);
    if (c->resp.nonce) {
        free(c->nonce);
        c->nonce = TAKE_PTR(c->resp.nonce);
    }
    return 0;
}

static bool ct_is(const struct acme_resp *r, const char *type)
{
    size_t n = strlen(type);

    return r->content_type && strncasecmp(r->content_type, type, n) == 0 &&
           (r->content_type[n] == '\0' || r->content_type[n] == ';' ||
            r->content_type[n] == ' ');
}

/* ------------------------------------------------------------ ACME steps */

static int get_nonce(struct acme_ctx *c)
{
    const char *saved = c->step;
    int r;

    c->step = "new-nonce";
    r = http_do(c, HTTP_HEAD, c->dir.new_nonce, NULL);
    if (r < 0)
        return r;
    if (c->resp.status != 200 && c->resp.status != 204)
        return fail_http(c, "HEAD newNonce");
    if (!c->nonce)
        return fail(c, -EBADMSG, "HTTP %ld without a valid Replay-Nonce",
                    c->resp.status);
    c->step = saved;
    return 0;
}

/* POST a JWS (payload NULL = POST-as-GET) and retry badNonce with the
 * nonce of the error reply (RFC 8555 §6.5: the server sends a fresh one
 * with every reply, errors included). */
static int acme_post(struct acme_ctx *c, const char *url, const char *payload,
                     bool use_jwk, enum http_method m)
{
    for (int attempt = 0;; attempt++) {
        _cleanup_free_ char *jws = NULL;
        json_t *hdr;
        int r;

        if (!c->nonce) {
            r = get_nonce(c);
            if (r < 0)
                return r;
        }
        hdr = json_object();
        if (!hdr)
            return fail(c, -ENOMEM, "out of memory");
        if (use_jwk) {
            json_t *jwk = NULL;

            r = jws_jwk(c->req->account_key, &jwk);
            if (r < 0) {
                json_decref(hdr);
                return fail(c, r, "cannot encode the account key as a JWK");
            }
            r = json_object_set_new(hdr, "jwk", jwk);
        } else {
            r = json_object_set_new(hdr, "kid", json_string(c->kid));
        }
        if (r < 0 || json_object_set_new(hdr, "nonce",
                                         json_string(c->nonce)) < 0 ||
            json_object_set_new(hdr, "url", json_string(url)) < 0) {
            json_decref(hdr);
            return fail(c, -ENOMEM, "out of memory");
        }
        r = jws_flattened(c->req->account_key, hdr, payload,
                          payload ? strlen(payload) : 0, &jws);
        json_decref(hdr);
        if (r < 0)
            return fail(c, r, "cannot sign the request");
        free(c->nonce); /* used up, whatever happens */
        c->nonce = NULL;
        r = http_do(c, m, url, jws);
        if (r < 0)
            return r;
        if (c->resp.status == 400 && attempt < ACME_BADNONCE_RETRIES) {
            struct acme_problem p = { 0 };
            bool bad_nonce = acme_parse_problem(c->resp.body, c->resp.len,
                                                &p) == 0 &&
                             acme_problem_is(&p, "badNonce");

            acme_problem_done(&p);
            if (bad_nonce) {
                log_debug("ACME: %s: badNonce, retrying with %s nonce",
                          c->step, c->nonce ? "the reply's" : "a new");
                continue;
            }
        }
        return 0;
    }
}

static int step_directory(struct acme_ctx *c)
{
    int r;

    c->step = "directory";
    r = http_do(c, HTTP_GET, c->req->directory_url, NULL);
    if (r < 0)
        return r;
    if (c->resp.status != 200)
        return fail_http(c, "GET");
    r = acme_parse_directory(c->resp.body, c->resp.len, &c->dir);
    if (r < 0)
        return fail(c, r, "HTTP 200 but not an ACME directory");
    if (c->dir.eab_required)
        return fail(c, -EOPNOTSUPP, "the CA requires External Account "
                                    "Binding, which is not supported");
    return 0;
}

static int step_account(struct acme_ctx *c)
{
    int r;

    c->step = "new-account";
    r = acme_post(c, c->dir.new_account, "{\"termsOfServiceAgreed\":true}",
                  true, HTTP_POST);
    if (r < 0)
        return r;
    if (c->resp.status != 200 && c->resp.status != 201)
        return fail_http(c, "POST newAccount");
    if (!c->resp.location || strncasecmp(c->resp.location, "https://", 8))
        return fail(c, -EBADMSG, "HTTP %ld without an https Location",
                    c->resp.status);
    c->kid = TAKE_PTR(c->resp.location);
    return 0;
}

/* "dns" or "ip" for a name, and the value to send (IPs canonicalized). */
static int classify_name(const char *name, const char **ret_type,
                         char *value, size_t vlen)
{
    return ca_name_classify(name, ret_type, value, vlen);
}

static int step_order(struct acme_ctx *c, struct acme_order *ret)
{
    _cleanup_free_ char *payload = NULL;
    json_t *o, *ids;
    int r;

    c->step = "new-order";
    o = json_object();
    ids = json_array();
    if (!o || !ids || json_object_set_new(o, "identifiers", ids) < 0) {
        json_decref(o);
        return fail(c, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < c->req->n_names; i++) {
        char value[INET6_ADDRSTRLEN + ACME_MAX_IDENT];
        const char *type = NULL;

        /* validated in acme_issue() already */
        (void)classify_name(c->req->names[i], &type, value, sizeof(value));
        if (json_array_append_new(ids, json_pack("{s:s, s:s}", "type", type,
                                                 "value", value)) < 0) {
            json_decref(o);
            return fail(c, -ENOMEM, "out of memory");
        }
    }
    if (c->req->lifetime_s > 0) {
        /* RFC 8555 §7.4 notAfter; step-ca backdates notBefore itself. */
        time_t t = time(NULL) + (time_t)c->req->lifetime_s;
        struct tm tm;
        char ts[32];

        if (!gmtime_r(&t, &tm) ||
            strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 ||
            json_object_set_new(o, "notAfter", json_string(ts)) < 0) {
            json_decref(o);
            return fail(c, -EINVAL, "cannot express the lifetime");
        }
    }
    payload = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!payload)
        return fail(c, -ENOMEM, "out of memory");
    r = acme_post(c, c->dir.new_order, payload, false, HTTP_POST);
    if (r < 0)
        return r;
    if (c->resp.status != 201 && c->resp.status != 200)
        return fail_http(c, "POST newOrder");
    if (!c->resp.location || strncasecmp(c->resp.location, "https://", 8))
        return fail(c, -EBADMSG, "HTTP %ld without an https Location",
                    c->resp.status);
    c->order_url = TAKE_PTR(c->resp.location);
    r = acme_parse_order(c->resp.body, c->resp.len, ret);
    if (r < 0)
        return fail(c, r, "HTTP %ld but not an ACME order", c->resp.status);
    if (ret->n_authz == 0 && ret->status == ACME_STATUS_PENDING)
        return fail(c, -EBADMSG, "pending order without authorizations");
    return 0;
}

static int remember_token(struct acme_ctx *c, const char *token)
{
    char **n = realloc(c->seen, (c->n_seen + 1) * sizeof(char *));

    if (!n)
        return -ENOMEM;
    c->seen = n;
    c->seen[c->n_seen] = strdup(token);
    if (!c->seen[c->n_seen])
        return -ENOMEM;
    c->n_seen++;
    return 0;
}

static int publish(struct acme_ctx *c, const char *token)
{
    _cleanup_free_ char *keyauth = NULL;
    char **n;
    int r;

    r = jws_key_authorization(token, c->req->account_key, &keyauth);
    if (r < 0)
        return fail(c, r, "cannot compute the key authorization");
    n = realloc(c->published, (c->n_published + 1) * sizeof(char *));
    if (!n)
        return fail(c, -ENOMEM, "out of memory");
    c->published = n;
    c->published[c->n_published] = strdup(token);
    if (!c->published[c->n_published])
        return fail(c, -ENOMEM, "out of memory");
    r = http01_publish(c->req->responder, token, keyauth);
    if (r < 0) {
        free(c->published[c->n_published]);
        return fail(c, r, "cannot serve the http-01 token (port %d)",
                    http01_port(c->req->responder));
    }
    c->n_published++;
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000,
                           .tv_nsec = (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* How long to wait before poll number `attempt` (0-based). */
static long poll_delay_ms(const struct acme_ctx *c, int attempt)
{
    long d = ACME_BACKOFF_FIRST_MS;

    if (c->resp.retry_after_ms >= 0)
        return c->resp.retry_after_ms; /* already capped */
    for (int i = 0; i < attempt && d < ACME_BACKOFF_MAX_MS; i++)
        d *= 2;
    return d < ACME_BACKOFF_MAX_MS ? d : ACME_BACKOFF_MAX_MS;
}

struct pending_ch {
    char *url;   /* NULL once valid */
    char *ident; /* for messages */
    char last_error[ACME_MAX_DETAIL + 64]; /* why it is still pending */
};

static void pending_clear(struct pending_ch *p)
{
    free(p->url);
    free(p->ident);
    *p = (struct pending_ch){ 0 };
}

/* POST (payload "{}") or POST-as-GET (NULL) one challenge; clears *p when
 * it is valid, fails when it is invalid, else notes why it is pending. */
static int check_challenge(struct acme_ctx *c, struct pending_ch *p,
                           const char *payload)
{
    struct acme_challenge ch = { 0 };
    char what[ACME_MAX_IDENT + 64];
    int r;

    r = acme_post(c, p->url, payload, false, HTTP_POST);
    if (r < 0)
        return r;
    (void)snprintf(what, sizeof(what), "POST challenge for '%s'", p->ident);
    if (c->resp.status != 200)
        return fail_http(c, what);
    r = acme_parse_challenge(c->resp.body, c->resp.len, &ch);
    if (r < 0)
        return fail(c, r, "%s: HTTP 200 but not an ACME challenge", what);
    switch (ch.status) {
    case ACME_STATUS_VALID:
        pending_clear(p);
        r = 0;
        break;
    case ACME_STATUS_PENDING:
    case ACME_STATUS_PROCESSING:
        r = 0;
        p->last_error[0] = '\0';
        if (ch.error.type) {
            /* step-ca: a connection error keeps the challenge pending, and
             * the next POST validates again. */
            char fp[13] = "";

            (void)snprintf(p->last_error, sizeof(p->last_error), "%s: %s",
                           short_type(ch.error.type),
                           ch.error.detail ? ch.error.detail : "(no detail)");
            if (ch.token)
                jws_fingerprint(ch.token, strlen(ch.token), fp);
            log_debug("ACME: challenge for '%s' (token %s) still %s: %s",
                      p->ident, fp, acme_status_to_string(ch.status),
                      short_type(ch.error.type));
        }
        break;
    default:
        (void)snprintf(what, sizeof(what), "http-01 for '%s' is %s", p->ident,
                       acme_status_to_string(ch.status));
        r = fail_problem(c, -EPERM, what, &ch.error);
        break;
    }
    acme_challenge_done(&ch);
    return r;
}

/* Fetches one authorization; publishes its http-01 token and fills *p when
 * there is something to prove (p->url stays NULL otherwise). */
static int prepare_authz(struct acme_ctx *c, const char *url,
                         struct pending_ch *p)
{
    _cleanup_(acme_authz_done) struct acme_authz az = { 0 };
    const struct acme_challenge *ch;
    int r;

    r = acme_post(c, url, NULL, false, HTTP_POST);
    if (r < 0)
        return r;
    if (c->resp.status != 200)
        return fail_http(c, "POST-as-GET authorization");
    r = acme_parse_authorization(c->resp.body, c->resp.len, &az);
    if (r < 0)
        return fail(c, r, "HTTP 200 but not an ACME authorization");
    if (az.status == ACME_STATUS_VALID)
        return 0; /* nothing to prove (an authorization reused by the CA) */
    if (az.status != ACME_STATUS_PENDING)
        return fail(c, -EPERM, "authorization for '%s' is %s", az.ident_value,
                    acme_status_to_string(az.status));
    ch = acme_authz_find(&az, "http-01");
    if (!ch || !ch->token)
        return fail(c, -EOPNOTSUPP, "no http-01 challenge offered for '%s'",
                    az.ident_value);
    r = remember_token(c, ch->token);
    if (r < 0)
        return fail(c, r, "out of memory");
    if (ch->status == ACME_STATUS_VALID)
        return 0;
    if (ch->status != ACME_STATUS_PENDING)
        return fail_problem(c, -EPERM, "http-01 challenge is not pending",
                            &ch->error);
    r = publish(c, ch->token);
    if (r < 0)
        return r;
    p->url = strdup(ch->url);
    p->ident = strdup(az.ident_value);
    if (!p->url || !p->ident) {
        pending_clear(p);
        return fail(c, -ENOMEM, "out of memory");
    }
    return 1;
}

static int step_authorizations(struct acme_ctx *c,
                               const struct acme_order *order)
{
    int max = c->req->max_polls > 0 ? c->req->max_polls
                                    : ACME_DEFAULT_MAX_POLLS;
    struct pending_ch *pend;
    size_t n_pend = 0;
    int r = 0;

    c->step = "authorization";
    pend = calloc(order->n_authz ? order->n_authz : 1, sizeof(*pend));
    if (!pend)
        return fail(c, -ENOMEM, "out of memory");

    /* Fetch every authorization and publish its token first, so that the
     * responder is up (once) for all of them. */
    for (size_t i = 0; i < order->n_authz && r >= 0; i++) {
        r = prepare_authz(c, order->authorizations[i], &pend[n_pend]);
        if (r > 0)
            n_pend++;
    }

    /* Tell the CA to validate (step-ca does it right inside this POST). */
    c->step = "challenge";
    for (size_t i = 0; i < n_pend && r >= 0; i++)
        r = check_challenge(c, &pend[i], "{}");

    /* Poll what is still pending (each POST makes step-ca try again). */
    for (int attempt = 0; r >= 0; attempt++) {
        struct pending_ch *stuck = NULL;
        size_t left = 0;

        for (size_t i = 0; i < n_pend; i++)
            if (pend[i].url) {
                left++;
                stuck = stuck ? stuck : &pend[i];
            }
        if (left == 0)
            break;
        if (attempt >= max) {
            r = fail(c, -ETIMEDOUT, "http-01 for '%s'%s still pending after "
                                    "%d polls%s%s", stuck->ident,
                     left > 1 ? " (and others)" : "", max,
                     stuck->last_error[0] ? ", last error " : "",
                     stuck->last_error);
            break;
        }
        sleep_ms(poll_delay_ms(c, attempt));
        for (size_t i = 0; i < n_pend && r >= 0; i++)
            if (pend[i].url)
                r = check_challenge(c, &pend[i], NULL);
    }
    for (size_t i = 0; i < n_pend; i++)
        pending_clear(&pend[i]);
    free(pend);
    /* Validation is over either way: stop serving (and free port 80). */
    withdraw_all(c);
    return r;
}

/* CSR (DER) for cert_key: CN = the first DNS name (if any and short
 * enough), SAN = every name, DNS and IP (ca_make_csr). */
static int make_csr(const struct acme_request *req, uint8_t **ret,
                    size_t *ret_len)
{
    X509_REQ *x = NULL;
    unsigned char *der = NULL;
    int n, r;

    r = ca_make_csr(req->cert_key, req->names, req->n_names, &x);
    if (r < 0)
        return r;
    n = i2d_X509_REQ(x, &der);
    X509_REQ_free(x);
    if (n <= 0)
        return -ENOMEM;
    *ret = der; /* OPENSSL_free() */
    *ret_len = (size_t)n;
    return 0;
}

/* POST-as-GET the order until it leaves `from` (bounded). */
static int poll_order(struct acme_ctx *c, enum acme_status from,
                      struct acme_order *order)
{
    int max = c->req->max_polls > 0 ? c->req->max_polls
                                    : ACME_DEFAULT_MAX_POLLS;

    for (int attempt = 0; order->status == from; attempt++) {
        struct acme_order o = { 0 };
        int r;

        if (attempt >= max)
            return fail(c, -ETIMEDOUT, "order still %s after %d polls",
                        acme_status_to_string(from), max);
        sleep_ms(poll_delay_ms(c, attempt));
        r = acme_post(c, c->order_url, NULL, false, HTTP_POST);
        if (r < 0)
            return r;
        if (c->resp.status != 200)
            return fail_http(c, "POST-as-GET order");
        r = acme_parse_order(c->resp.body, c->resp.len, &o);
        if (r < 0)
            return fail(c, r, "HTTP 200 but not an ACME order");
        acme_order_done(order);
        *order = o;
    }
    return 0;
}

static int step_finalize(struct acme_ctx *c, struct acme_order *order)
{
    _cleanup_free_ char *csr64 = NULL, *payload = NULL;
    uint8_t *der = NULL;
    size_t dlen = 0;
    int r;

    c->step = "finalize";
    r = make_csr(c->req, &der, &dlen);
    if (r < 0)
        return fail(c, r, "cannot make the CSR");
    r = jws_b64url_encode(der, dlen, &csr64);
    OPENSSL_free(der);
    if (r < 0)
        return fail(c, r, "out of memory");
    if (asprintf(&payload, "{\"csr\":\"%s\"}", csr64) < 0) {
        payload = NULL;
        return fail(c, -ENOMEM, "out of memory");
    }
    for (int tries = 0;; tries++) {
        struct acme_order o = { 0 };
        struct acme_problem p = { 0 };
        bool not_ready;

        r = acme_post(c, order->finalize, payload, false, HTTP_POST);
        if (r < 0)
            return r;
        if (c->resp.status == 200) {
            r = acme_parse_order(c->resp.body, c->resp.len, &o);
            if (r < 0)
                return fail(c, r, "HTTP 200 but not an ACME order");
            acme_order_done(order);
            *order = o;
            break;
        }
        /* The order may lag behind the challenges (asynchronous CAs):
         * wait for "ready" and try once more. */
        not_ready = c->resp.status == 403 && tries == 0 &&
                    acme_parse_problem(c->resp.body, c->resp.len, &p) == 0 &&
                    acme_problem_is(&p, "orderNotReady");
        acme_problem_done(&p);
        if (!not_ready)
            return fail_http(c, "POST finalize");
        c->step = "order";
        r = poll_order(c, ACME_STATUS_PENDING, order);
        if (r < 0)
            return r;
        c->step = "finalize";
    }
    c->step = "order";
    r = poll_order(c, ACME_STATUS_PROCESSING, order);
    if (r < 0)
        return r;
    if (order->status != ACME_STATUS_VALID)
        return fail_problem(c, -EPERM, order->status == ACME_STATUS_INVALID
                                           ? "the CA rejected the order"
                                           : "order not valid",
                            &order->error);
    if (!order->certificate)
        return fail(c, -EBADMSG, "valid order without a certificate URL");
    return 0;
}

static void x509_freep(X509 **p)
{
    X509_free(*p);
}

static void bio_freep(BIO **p)
{
    BIO_free(*p);
}

/* The chain must be PEM certificates only, the leaf must carry cert_key
 * and every requested name. */
static int check_chain(struct acme_ctx *c, const char *pem, size_t len)
{
    _cleanup_(bio_freep) BIO *b = NULL;
    _cleanup_(x509_freep) X509 *leaf = NULL;
    unsigned n = 1;

    if (len > INT32_MAX)
        return fail(c, -EMSGSIZE, "certificate chain too large");
    b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return fail(c, -ENOMEM, "out of memory");
    leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    if (!leaf)
        return fail(c, -EBADMSG, "no PEM certificate in the reply");
    for (;;) {
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

        if (!x)
            break;
        X509_free(x);
        n++;
    }
    ERR_clear_error(); /* the end of the PEM data leaves an entry */
    if (EVP_PKEY_eq(X509_get0_pubkey(leaf), c->req->cert_key) != 1)
        return fail(c, -EBADMSG, "the certificate is not for our key");
    for (size_t i = 0; i < c->req->n_names; i++) {
        const char *nm = c->req->names[i];
        char value[INET6_ADDRSTRLEN + ACME_MAX_IDENT];
        const char *type = NULL;
        int ok;

        (void)classify_name(nm, &type, value, sizeof(value));
        ok = strcmp(type, "ip") == 0 ? X509_check_ip_asc(leaf, value, 0)
                                     : X509_check_host(leaf, value, 0,
                                                       X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
                                                       NULL);
        if (ok != 1)
            return fail(c, -EBADMSG, "the certificate lacks '%s'", nm);
    }
    log_debug("ACME: got a chain of %u certificate(s)", n);
    return 0;
}

static int step_certificate(struct acme_ctx *c, const struct acme_order *order,
                            struct acme_result *ret)
{
    char *chain;
    int r;

    c->step = "certificate";
    r = acme_post(c, order->certificate, NULL, false, HTTP_POST_PEM);
    if (r < 0)
        return r;
    if (c->resp.status != 200)
        return fail_http(c, "POST-as-GET certificate");
    if (c->resp.content_type &&
        !ct_is(&c->resp, "application/pem-certificate-chain"))
        log_debug("ACME: certificate served as '%s', parsing it as PEM",
                  c->resp.content_type);
    if (c->resp.len == 0 || memchr(c->resp.body, '\0', c->resp.len))
        return fail(c, -EBADMSG, "empty or binary certificate reply");
    r = check_chain(c, c->resp.body, c->resp.len);
    if (r < 0)
        return r;
    chain = malloc(c->resp.len + 1);
    if (!chain)
        return fail(c, -ENOMEM, "out of memory");
    memcpy(chain, c->resp.body, c->resp.len);
    chain[c->resp.len] = '\0';
    ret->chain_pem = chain;
    ret->chain_len = c->resp.len;
    return 0;
}

static int check_request(struct acme_ctx *c)
{
    const struct acme_request *q = c->req;
    const char *alg;

    c->step = "request";
    if (!q->directory_url || strncasecmp(q->directory_url, "https://", 8))
        return fail(c, -EINVAL, "the directory URL must be https://");
    if (!q->ca_root_file || !q->account_key || !q->cert_key ||
        !q->responder || !q->names)
        return fail(c, -EINVAL, "incomplete request");
    if (q->n_names == 0 || q->n_names > ACME_MAX_NAMES)
        return fail(c, -EINVAL, "need 1..%u names", ACME_MAX_NAMES);
    if (q->lifetime_s < 0 || q->lifetime_s > 100LL * 366 * 24 * 3600)
        return fail(c, -EINVAL, "lifetime out of range");
    if (jws_alg(q->account_key, &alg) < 0)
        return fail(c, -EOPNOTSUPP, "unsupported account key type");
    for (size_t i = 0; i < q->n_names; i++) {
        char value[INET6_ADDRSTRLEN + ACME_MAX_IDENT];
        const char *type;

        if (!q->names[i] ||
            classify_name(q->names[i], &type, value, sizeof(value)) < 0)
            return fail(c, -EINVAL, "name %zu is neither a DNS name nor an "
                                    "IP address (wildcards need dns-01)",
                        i + 1);
    }
    return 0;
}

int acme_issue(const struct acme_request *req, struct acme_result *ret,
               char *err, size_t errlen)
{
    _cleanup_(ctx_done) struct acme_ctx c = { .req = req, .err = err,
                                              .errlen = errlen };
    _cleanup_(acme_order_done) struct acme_order order = { 0 };
    struct acme_result res = { 0 };
    struct timespec t0, t1;
    int r;

    if (err && errlen)
        err[0] = '\0';
    if (!req || !ret)
        return fail(&c, -EINVAL, "no request");
    (void)clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((r = check_request(&c)) < 0 || (r = ctx_init(&c)) < 0 ||
        (r = step_directory(&c)) < 0 || (r = step_account(&c)) < 0 ||
        (r = step_order(&c, &order)) < 0 ||
        (r = step_authorizations(&c, &order)) < 0 ||
        (r = step_finalize(&c, &order)) < 0 ||
        (r = step_certificate(&c, &order, &res)) < 0)
        return r;
    (void)clock_gettime(CLOCK_MONOTONIC, &t1);
    log_debug("ACME: issued for %zu name(s) in %ld ms, %u requests",
              req->n_names,
              (long)((t1.tv_sec - t0.tv_sec) * 1000 +
                     (t1.tv_nsec - t0.tv_nsec) / 1000000),
              c.n_requests);
    *ret = res;
    return 0;
}

void acme_result_done(struct acme_result *res)
{
    if (!res)
        return;
    free(res->chain_pem);
    *res = (struct acme_result){ 0 };
}
