/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared plumbing of the CA clients (see http.h).  The libcurl settings
 * live in one place so that the ACME client and the step-ca client cannot
 * drift apart on what "talking to the CA" is allowed to mean.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "http.h"
#include "macro.h"

static void curl_global_once(void)
{
    /* Thread-safe in libcurl >= 7.84 anyway; the daemon still calls
     * curl_global_init() in main() before it starts threads. */
    (void)curl_global_init(CURL_GLOBAL_DEFAULT);
}

void http_global_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    (void)pthread_once(&once, curl_global_once);
}

int http_easy_defaults(CURL *h, const char *ca_root_file, long timeout_s,
                       const char *user_agent, size_t max_reply, char *errbuf)
{
    int ok = 1;

    if (!h || !ca_root_file || timeout_s <= 0)
        return -EINVAL;
#define SET(opt, val) ok &= curl_easy_setopt(h, opt, val) == CURLE_OK
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_CAINFO, ca_root_file);
    SET(CURLOPT_CAPATH, NULL); /* no system CA directory */
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_PROXY, ""); /* ignore *_proxy from the environment */
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_TIMEOUT, timeout_s);
    SET(CURLOPT_CONNECTTIMEOUT, timeout_s < 10 ? timeout_s : 10L);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_reply);
    SET(CURLOPT_USERAGENT, user_agent);
    if (errbuf)
        SET(CURLOPT_ERRORBUFFER, errbuf);
#undef SET
    return ok ? 0 : -EOPNOTSUPP;
}

int http_body_append(char **buf, size_t *len, size_t *cap, size_t max,
                     const void *p, size_t n)
{
    size_t ncap;
    char *nb;

    if (n > max - *len)
        return -EMSGSIZE;
    if (*len + n + 1 > *cap) {
        ncap = *cap ? *cap : 4096;
        while (ncap < *len + n + 1)
            ncap *= 2;
        if (ncap > max + 1)
            ncap = max + 1;
        nb = realloc(*buf, ncap);
        if (!nb)
            return -ENOMEM;
        *buf = nb;
        *cap = ncap;
    }
    if (n)
        memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

int http_curl_errno(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
        return -EHOSTUNREACH;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_UNSUPPORTED_PROTOCOL:
        return -EPROTONOSUPPORT;
    case CURLE_PEER_FAILED_VERIFICATION: /* the CA is not who we trust */
        return -EPERM;
    case CURLE_SSL_CACERT_BADFILE: /* ca_root_file unreadable */
        return -ENOENT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return -ECONNRESET;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_FILESIZE_EXCEEDED:
        return -EMSGSIZE;
    default:
        return -EIO;
    }
}

void http_sanitize(char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

int ca_name_classify(const char *name, const char **ret_type, char *value,
                     size_t vlen)
{
    unsigned char bin[16];
    size_t n;

    if (!name || !ret_type || !value || vlen < HTTP_MAX_NAME + 1)
        return -EINVAL;
    if (inet_pton(AF_INET, name, bin) == 1) {
        *ret_type = "ip";
        return inet_ntop(AF_INET, bin, value, (socklen_t)vlen) ? 0 : -EINVAL;
    }
    if (inet_pton(AF_INET6, name, bin) == 1) {
        *ret_type = "ip";
        return inet_ntop(AF_INET6, bin, value, (socklen_t)vlen) ? 0 : -EINVAL;
    }
    /* A DNS name: LDH labels separated by dots, no wildcard (neither
     * http-01 nor a step-ca token for one service should carry one),
     * bounded. */
    n = strlen(name);
    if (n == 0 || n > HTTP_MAX_NAME || name[0] == '.' ||
        name[n - 1] == '.' || strstr(name, ".."))
        return -EINVAL;
    for (size_t i = 0, label = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];

        if (ch == '.') {
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-') ||
            ++label > 63)
            return -EINVAL;
    }
    *ret_type = "dns";
    memcpy(value, name, n + 1);
    return 0;
}

static void x509_req_freep(X509_REQ **p)
{
    X509_REQ_free(*p);
}

static void gens_freep(GENERAL_NAMES **p)
{
    GENERAL_NAMES_free(*p);
}

int ca_make_csr(EVP_PKEY *key, const char *const *names, size_t n_names,
                X509_REQ **ret)
{
    _cleanup_(x509_req_freep) X509_REQ *x = NULL;
    _cleanup_(gens_freep) GENERAL_NAMES *gens = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    const char *cn = NULL;
    int ok;

    if (!key || !names || n_names == 0 || !ret)
        return -EINVAL;
    x = X509_REQ_new();
    gens = sk_GENERAL_NAME_new_null();
    if (!x || !gens || !X509_REQ_set_version(x, X509_REQ_VERSION_1))
        return -ENOMEM;
    for (size_t i = 0; i < n_names; i++) {
        char value[HTTP_MAX_NAME + 1];
        const char *type = NULL;
        GENERAL_NAME *g;

        if (ca_name_classify(names[i], &type, value, sizeof(value)) < 0)
            return -EINVAL;
        g = GENERAL_NAME_new();
        if (!g)
            return -ENOMEM;
        if (strcmp(type, "ip") == 0) {
            ASN1_OCTET_STRING *ip = a2i_IPADDRESS(value);

            if (!ip) {
                GENERAL_NAME_free(g);
                return -EINVAL;
            }
            GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
        } else {
            ASN1_IA5STRING *s = ASN1_IA5STRING_new();

            if (!s || !ASN1_STRING_set(s, value, (int)strlen(value))) {
                ASN1_IA5STRING_free(s);
                GENERAL_NAME_free(g);
                return -ENOMEM;
            }
            GENERAL_NAME_set0_value(g, GEN_DNS, s);
            if (!cn && strlen(names[i]) <= 64)
                cn = names[i];
        }
        if (!sk_GENERAL_NAME_push(gens, g)) {
            GENERAL_NAME_free(g);
            return -ENOMEM;
        }
    }
    if (cn && !X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(x), "CN",
                                          MBSTRING_ASC,
                                          (const unsigned char *)cn, -1, -1,
                                          0))
        return -EINVAL;
    /* RFC 5280 §4.2.1.6: SAN is critical when the subject is empty. */
    ok = X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, cn ? 0 : 1,
                         X509V3_ADD_DEFAULT) == 1 &&
         X509_REQ_add_extensions(x, exts) == 1;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (!ok)
        return -ENOMEM;
    if (!X509_REQ_set_pubkey(x, key) ||
        X509_REQ_sign(x, key,
                      EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256()) <= 0)
        return -EINVAL;
    *ret = TAKE_PTR(x);
    return 0;
}
