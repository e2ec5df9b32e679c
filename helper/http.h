/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the two CA clients (acme.c, stepca.c) share: the hardened libcurl
 * easy-handle defaults (https only, the configured root as the only trust
 * anchor, no proxy, no redirects, TLS >= 1.2, bounded time and size), the
 * capped response body, libcurl codes -> -errno, sanitizing text taken from
 * a reply before it goes into an error message, and the identity names and
 * CSR both CAs are asked to certify.  No logging, no globals but libcurl's
 * own one-time init.
 */
#ifndef SHORTCERT_HTTP_H
#define SHORTCERT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <openssl/types.h>

#define HTTP_MAX_NAME 253u /* a DNS name or an IP literal */

/* curl_global_init() exactly once (the daemon also calls it in main()
 * before it starts threads; this covers the tests and tools). */
void http_global_init(void);

/* The settings every CA request shares, on a fresh easy handle:
 * CURLOPT_PROTOCOLS_STR/REDIR_PROTOCOLS_STR "https", no redirects, CAINFO =
 * ca_root_file and no CA path (so no system store), peer and host
 * verification on, TLS >= 1.2, HTTP/1.1, no proxy from the environment,
 * NOSIGNAL, TIMEOUT timeout_s (connect at most 10 s), MAXFILESIZE max_reply,
 * the user agent, and errbuf (CURL_ERROR_SIZE bytes, borrowed) as the error
 * buffer.  Never CURLOPT_VERBOSE.  0, or -EOPNOTSUPP when libcurl refuses an
 * option (built without https, or too old). */
int http_easy_defaults(CURL *h, const char *ca_root_file, long timeout_s,
                       const char *user_agent, size_t max_reply,
                       char *errbuf);

/* Appends n bytes to the body *buf (len bytes used, cap allocated), keeping
 * it NUL-terminated and never larger than max bytes: -EMSGSIZE past the
 * cap (nothing is appended), -ENOMEM; 0 otherwise.  For a libcurl write
 * callback, which then returns 0 (CURLE_WRITE_ERROR). */
int http_body_append(char **buf, size_t *len, size_t *cap, size_t max,
                     const void *p, size_t n);

/* A libcurl transport failure as -errno: -ETIMEDOUT, -EHOSTUNREACH (name
 * did not resolve), -ECONNREFUSED, -ECONNRESET (connection or TLS
 * handshake broke, nothing/partial reply), -EPERM (the server's
 * certificate did not verify against the root), -ENOENT (root file
 * unreadable), -EMSGSIZE (reply over the cap), -EPROTONOSUPPORT, -ENOMEM,
 * -EIO (anything else). */
int http_curl_errno(CURLcode cc);

/* In place: every byte < 0x20 or >= 0x7f becomes '?', so text from a
 * reply cannot forge log lines or terminal escapes. */
void http_sanitize(char *s);

/* "dns" or "ip" for an identity name, and the value to send (IPv4/IPv6
 * canonicalized, a DNS name as is).  DNS names: LDH labels of at most 63
 * characters, dot-separated, no wildcard, no leading/trailing dot, at most
 * HTTP_MAX_NAME characters.  value must hold vlen >= HTTP_MAX_NAME + 1
 * bytes.  0 or -EINVAL. */
int ca_name_classify(const char *name, const char **ret_type, char *value,
                     size_t vlen);

/* A signed PKCS#10 request for key (EC, RSA or Ed25519; SHA-256 but for
 * Ed25519): subject CN = the first DNS name of at most 64 characters (none
 * when there is none, and then the SAN extension is critical, RFC 5280
 * §4.2.1.6), subjectAltName = every name, DNS and IP, in order.  Names must
 * pass ca_name_classify().  *ret is new (X509_REQ_free). */
int ca_make_csr(EVP_PKEY *key, const char *const *names, size_t n_names,
                X509_REQ **ret);

#endif
