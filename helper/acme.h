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
    const char *ca_root_file;  /* PEM trust anchor for the CA's TLS */
    EVP_PKEY *account_key;     /* borrowed; EC P-256 (ES256) */
    EVP_PKEY *cert_key;        /* borrowed; the identity's key (CSR) */
    const char *const *names;  /* DNS names and/or IP literals */
    size_t n_names;
    int64_t lifetime_s;        /* requested lifetime; 0 = the CA's default */
    struct http01 *responder;  /* serves http-01 key authorizations */
    long timeout_s;            /* per HTTP request; 0 = 30 s */
    int max_polls;             /* authz/order polls; 0 = 60 */
};

struct acme_result {
    char *chain_pem; /* leaf first, then intermediates; free() it */
    size_t chain_len;
};

/* Runs the whole flow: directory, nonce, account (new or existing for this
 * key), order, http-01 for each authorization, finalize with a CSR for
 * cert_key and names, poll, download.  badNonce replies are retried with the
 * nonce of the error reply.  On failure returns -errno and writes a one-line
 * reason (what failed, HTTP status, the ACME problem type and detail) to err;
 * nothing secret is ever put there. */
int acme_issue(const struct acme_request *req, struct acme_result *ret,
               char *err, size_t errlen);

void acme_result_done(struct acme_result *res);

#endif
