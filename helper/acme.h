/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RFC 8555 ACME client for shortcertd (step-ca's ACME provisioner, Pebble).
 * Blocking: run it on a worker thread, never on the signing event loop.
 * libcurl for HTTPS (https only, the configured root as the only trust
 * anchor, capped bodies), jansson for JSON, OpenSSL for JWS and the CSR.
 */
#ifndef SHORTCERT_ACME_H
#define SHORTCERT_ACME_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

struct http01;

struct acme_request {
    const char *directory_url; /* https://ca:port/acme/<provisioner>/directory */
    const char *ca_root_file;  /* PEM trust anchor for the CA's TLS (the only
                                * one: no system store, no proxy) */
    EVP_PKEY *account_key;     /* borrowed; EC P-256 (ES256) recommended;
                                * P-384/P-521, RSA >= 2048, Ed25519 work */
    EVP_PKEY *cert_key;        /* borrowed; the identity's key (CSR); EC,
                                * RSA or Ed25519 */
    const char *const *names;  /* 1..100 DNS names (LDH A-labels, no
                                * wildcard, no trailing dot) and/or IPv4/IPv6
                                * literals; the first DNS name becomes the CN */
    size_t n_names;
    int64_t lifetime_s;        /* requested lifetime; 0 = the CA's default.
                                * Sent as newOrder notAfter = now + lifetime;
                                * step-ca backdates notBefore by 1 min. */
    struct http01 *responder;  /* serves http-01 key authorizations */
    long timeout_s;            /* per HTTP request; 0 = 30 s (connect <= 10 s) */
    int max_polls;             /* per polling phase (challenges, order);
                                * 0 = 60.  Waits between polls: Retry-After
                                * (capped at 10 s) or 50 ms doubling to 1 s,
                                * so the default gives up after about 1 min */
};

struct acme_result {
    char *chain_pem; /* leaf first, then intermediates; free() it */
    size_t chain_len;
};

/* Runs the whole flow: directory, nonce, account (new or existing for this
 * key), order, http-01 for each authorization, finalize with a CSR for
 * cert_key and names, poll, download.  badNonce replies are retried (up to
 * 10 times per request) with the nonce of the error reply.  The chain is
 * checked before it is returned: PEM certificates only, the leaf carries
 * cert_key and every requested name.  Tokens are withdrawn from the
 * responder on every path, as soon as validation is over.
 *
 * Blocking (about 10 requests on one kept-alive connection; ~40 ms against
 * a local step-ca), thread-safe for concurrent calls with different
 * requests; the daemon should call curl_global_init() once in main().
 * Logs only at debug level: the caller decides and logs the outcome.
 *
 * On failure returns -errno and writes a one-line reason to err: the step
 * (directory, new-nonce, new-account, new-order, authorization, challenge,
 * finalize, order, certificate), the HTTP status, the ACME problem type and
 * detail (sanitized, bounded; tokens redacted to a fingerprint).  Nothing
 * secret is ever put there.  errno classes, for the retry policy:
 *   transient, retry later: -ETIMEDOUT (transport timeout, or still pending
 *     after max_polls), -ECONNREFUSED, -ECONNRESET (also a failed TLS
 *     handshake), -EHOSTUNREACH, -EIO, -EREMOTEIO (HTTP
 *     5xx; note step-ca also answers 5xx when the lifetime is outside the
 *     provisioner's min/max), -EBUSY (rateLimited / 429), -ENOMEM;
 *   needs an operator: -EINVAL (bad request), -EOPNOTSUPP (key type, EAB
 *     required, no http-01 offered), -EPERM (TLS verification of the CA
 *     failed, or the CA marked a challenge/authorization/order invalid),
 *     -EACCES (HTTP 401/403, or no permission to bind the responder),
 *     -EADDRINUSE (responder port taken), -ENOENT (HTTP 404: wrong directory
 *     URL; or ca_root_file unreadable), -EPROTO (other HTTP 4xx), -EBADMSG/-EMSGSIZE (the CA's reply is
 *     malformed or does not match the request). */
int acme_issue(const struct acme_request *req, struct acme_result *ret,
               char *err, size_t errlen);

void acme_result_done(struct acme_result *res);

#endif
