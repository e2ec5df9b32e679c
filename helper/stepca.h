/* SPDX-License-Identifier: Apache-2.0 */
/*
 * step-ca's own API (0.19): renew over mTLS, renew with an x5c token, rekey,
 * and enrollment through a JWK provisioner's one-time token.  Blocking:
 * called from the renewal workers, never from the signing event loop.
 * libcurl (https only, the configured root as the only trust anchor, capped
 * bodies, no proxy, no redirects), jansson, OpenSSL.  Key material never
 * leaves memory: a client key is installed into the TLS context from the
 * EVP_PKEY, never written to a file.
 *
 * Connection hygiene: a request authenticated by a client certificate runs
 * on a connection of its own that is never reused and never resumes a TLS
 * session, so one identity's renewal can never travel over another
 * identity's TLS connection or session.  Requests without a client
 * certificate (token renew, JWK sign, /provisioners) may share kept-alive
 * connections.  (libcurl does not know about a certificate installed from
 * an SSL_CTX callback and would otherwise happily reuse a connection, or
 * resume a TLS 1.3 session, that authenticated another identity; step-ca
 * then renews that other identity.  Every returned leaf is also checked to
 * carry the key we asked for, so such a mix-up fails instead of being
 * delivered.)
 *
 * Errors: every function returns 0 or -errno and, where it takes err,
 * writes one line there: the step ("provisioners", "decrypt", "sign",
 * "renew (mTLS)", "renew (token)", "rekey (mTLS)"), the request, the HTTP
 * status and step-ca's message (sanitized, bounded).  Never a secret.
 * errno classes, for the renewal engine:
 *
 *   -EKEYEXPIRED   mTLS only: the CA refused our client certificate in the
 *                  TLS layer (a fatal certificate alert: expired, not yet
 *                  valid, no clientAuth EKU, unknown issuer).  Not
 *                  transient; fall back to stepca_renew_token() (which works
 *                  after expiry when the provisioner allows it), or enroll
 *                  again.
 *   -EACCES        HTTP 401/403: the CA refused the request (token invalid
 *                  or already used, renewal disabled, certificate expired
 *                  without allowRenewalAfterExpiry, revoked, lifetime or
 *                  names not allowed).  Not transient for this certificate;
 *                  enroll again (stepca_sign_jwk) or ask an operator.
 *   -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, -ECONNRESET (connection or
 *                  TLS handshake broke without a certificate alert), -EIO:
 *                  transport, transient: retry later.
 *   -EREMOTEIO     HTTP 5xx: transient on the CA's side, retry later.
 *   -EBUSY         HTTP 429: retry later, slower.
 *   -EPERM         the CA's own certificate did not verify against the root
 *                  (operator).
 *   -ENOENT        HTTP 404, the root file is unreadable, or no JWK
 *                  provisioner of that name (operator).
 *   -ENOTUNIQ      two JWK provisioners of that name (operator).
 *   -EKEYREJECTED  the provisioner's encryptedKey does not decrypt with the
 *                  password (wrong password or a corrupt key; operator).
 *   -ENOKEY        the provisioner publishes no encryptedKey (use the
 *                  private JWK file instead).
 *   -EPROTO        other HTTP 4xx (e.g. 400: the CA did not like the CSR).
 *   -EBADMSG, -EMSGSIZE: the CA's reply is malformed, too large, or does
 *                  not match the request (a leaf for another key, missing
 *                  names, a chain that does not verify to the root).
 *   -EINVAL, -EOPNOTSUPP, -ENOMEM: bad arguments, unsupported key type or
 *                  JWE algorithm/iteration count, out of memory.
 * step-ca 0.19 hides why it refused (HTTP 401 "The request lacked necessary
 * authorization ... see the certificate authority logs"): the reason is in
 * the CA's log only.
 *
 * Cost (step-ca 0.19 on the same 2-vCPU host): a token renewal is one round
 * trip on a warm connection, ~3-4 ms and ~0.8 ms of our CPU; an mTLS
 * renewal is a full TLS handshake every time (by design, see above), ~6-7
 * ms and ~3 ms of our CPU.  The CA spends ~2 ms of CPU on a token renewal
 * (x5c chain and JWS checks, the token's single-use record) against ~1 ms
 * on an mTLS renewal over a kept-alive connection.  At debug level every
 * request logs whether its connection was new or reused and its timings.
 */
#ifndef SHORTCERT_STEPCA_H
#define SHORTCERT_STEPCA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>
#include <openssl/x509.h> /* STACK_OF(X509) */

#include "sec.h"

#define STEPCA_MAX_REPLY (256u * 1024u) /* body cap of every reply */
#define STEPCA_MAX_CHAIN 8u        /* certificates in a SignResponse */
#define STEPCA_MAX_MESSAGE 256u    /* step-ca error message kept */
#define STEPCA_MAX_NAMES 100u      /* names in one enrollment */
#define STEPCA_TOKEN_LIFETIME_S 300 /* exp - iat of the tokens we mint */
#define STEPCA_P2C_MIN 1000L       /* PBES2 iterations accepted ... */
#define STEPCA_P2C_MAX 1000000L    /* ... (step uses 100000, ~0.1 s) */
#define STEPCA_MAX_PAGES 50u       /* GET /provisioners pages followed */

struct stepca;            /* one per worker thread: a curl handle for token,
                           * JWK and provisioner requests (kept alive) */
struct stepca_provisioner; /* a JWK provisioner's private key, by name */

struct stepca_result {
    char *chain_pem; /* leaf first, then intermediates (SignResponse
                      * certChain, or crt + ca); free() it */
    size_t chain_len;
};

/* ca_url: "https://host[:port]" (no path); ca_root_file: PEM.  The handle
 * must be used by one thread at a time.  timeout_s <= 0 means 30 s per
 * request.  Needs libcurl built on OpenSSL 3 (the client certificate goes
 * in through CURLOPT_SSL_CTX_FUNCTION): -EOPNOTSUPP otherwise.  The host
 * of ca_url must be one of the CA's dnsNames: it is the tokens' audience.
 * The root file is also the anchor every returned chain must verify to. */
int stepca_new(const char *ca_url, const char *ca_root_file, long timeout_s,
               struct stepca **ret);
void stepca_free(struct stepca *c);

/* Every request's duration also goes into h (metrics; NULL: none). */
struct metrics_hist;
void stepca_set_latency(struct stepca *c, struct metrics_hist *h);

/* GET /health: 0 when the CA answers 200 {"status":"ok"}; otherwise the
 * errors below, reason in err. */
int stepca_health(struct stepca *c, char *err, size_t errlen);

/* POST /1.0/renew over mTLS with the current leaf (+ intermediates) and key.
 * The new certificate keeps the old one's key, names and lifetime (checked:
 * same key, same subject).  leaf, chain (may be NULL) and key are borrowed
 * (up-referenced by the TLS context for the duration of the request).
 * -EKEYEXPIRED when the CA's TLS layer refuses the certificate. */
int stepca_renew_mtls(struct stepca *c, X509 *leaf, STACK_OF(X509) *chain,
                      EVP_PKEY *key, struct stepca_result *ret, char *err,
                      size_t errlen);

/* POST /1.0/renew with "Authorization: Bearer <x5c token>": the token is an
 * ES256/... JWT signed by key, header x5cInsecure = [leaf, chain...],
 * claims iss "step-ca-client/1.0", sub = leaf CN (or first SAN if no CN),
 * aud = <ca_url>/1.0/renew, iat/nbf/exp (5 min), a random jti.  Works after
 * expiry only if the provisioner has allowRenewalAfterExpiry (else
 * -EACCES).  Runs on the handle's kept-alive connection (which never
 * carries a client certificate: step-ca prefers a TLS client certificate
 * over the token). */
int stepca_renew_token(struct stepca *c, X509 *leaf, STACK_OF(X509) *chain,
                       EVP_PKEY *key, struct stepca_result *ret, char *err,
                       size_t errlen);

/* POST /1.0/rekey over mTLS (current leaf and key) with a CSR for new_key:
 * the new certificate carries new_key (checked). */
int stepca_rekey_mtls(struct stepca *c, X509 *leaf, STACK_OF(X509) *chain,
                      EVP_PKEY *key, EVP_PKEY *new_key,
                      struct stepca_result *ret, char *err, size_t errlen);

/* POST /1.0/revoke over mTLS with the certificate itself: a passive
 * revocation (step-ca stops renewing it; no CRL/OCSP) with reason_code
 * (RFC 5280 CRLReason, 5 = cessationOfOperation).  0 when step-ca answers
 * {"status":"ok"}; then the serial revoked, in decimal, is in ret_serial. */
int stepca_revoke_mtls(struct stepca *c, X509 *leaf, STACK_OF(X509) *chain,
                       EVP_PKEY *key, int reason_code, const char *reason,
                       char *ret_serial, size_t serial_len, char *err,
                       size_t errlen);

/* Load a JWK provisioner's private key: either decrypt the encryptedKey
 * that GET /1.0/provisioners serves for the provisioner called name (PBES2-
 * HS256+A128KW key wrap, A256GCM content; the password from a file or a
 * systemd credential, never argv/env), or read a private JWK from a file.
 * Exactly one of password / jwk_file is given.  A wrong password gives an
 * error naming the provisioner.
 *
 * With the password, the decrypted key must be the one the CA publishes
 * for the provisioner (same public key, and the published kid is its
 * RFC 7638 thumbprint or the kid inside the decrypted JWK), and the token
 * kid is the published one.  With jwk_file (EC P-256 with d, x, y; at most
 * 64 KiB), nothing is fetched (c may be NULL): the kid is the file's "kid"
 * member, or the thumbprint when it has none.  *ret is new. */
int stepca_provisioner_load(struct stepca *c, const char *name,
                            const struct secret *password,
                            const char *jwk_file,
                            struct stepca_provisioner **ret, char *err,
                            size_t errlen);
void stepca_provisioner_free(struct stepca_provisioner *p);
/* A loaded provisioner is read-only: threads may share it (each with its
 * own struct stepca).  Load it once: the password path costs a PBKDF2 of
 * p2c (100000) iterations, ~50-90 ms. */
/* The token kid of a loaded provisioner (borrowed). */
const char *stepca_provisioner_kid(const struct stepca_provisioner *p);

/* POST /1.0/sign with a one-time token (JWT signed by the provisioner key:
 * kid = its RFC 7638 thumbprint, iss = provisioner name, aud =
 * <ca_url>/1.0/sign, sub = first name, sans = names, jti random, exp short)
 * and a CSR for key with those names; lifetime_s > 0 asks for notAfter.
 * "First name" is the first DNS name, or the first IP when there is no DNS
 * name: step-ca 0.19 wants the CSR's CN (the first DNS name, or none) to
 * equal sub.  Names as for ca_name_classify() (1..STEPCA_MAX_NAMES).  The
 * leaf is checked to carry key and every name.  step-ca backdates
 * notBefore (1 min by default), so notAfter - notBefore = lifetime_s +
 * backdate. */
int stepca_sign_jwk(struct stepca *c, const struct stepca_provisioner *p,
                    EVP_PKEY *key, const char *const *names, size_t n_names,
                    int64_t lifetime_s, struct stepca_result *ret, char *err,
                    size_t errlen);

void stepca_result_done(struct stepca_result *r);

/* Bounded parser of a SignResponse body (also the fuzz target's entry):
 * JSON {crt, ca, certChain[], tlsOptions?}; returns the chain as PEM.
 * certChain (1..STEPCA_MAX_CHAIN entries) is used when present, else crt
 * (+ ca); each entry must be exactly one PEM certificate; when both are
 * present crt must be certChain[0].  The PEM returned is re-encoded from
 * the parsed certificates.  0, -EMSGSIZE, -EBADMSG, -ENOMEM. */
int stepca_parse_sign_response(const char *body, size_t len,
                               struct stepca_result *ret);
/* Bounded parser of step-ca's error body {"status":N,"message":"..."}:
 * copies a sanitized message into msg (may be empty), truncated to
 * STEPCA_MAX_MESSAGE and n.  Returns the "status" member (0 when absent)
 * or -EBADMSG / -EMSGSIZE (msg is then empty). */
int stepca_parse_error(const char *body, size_t len, char *msg, size_t n);

/* ----- building blocks, exported for the unit tests and fuzz targets ---- */

/* A JWK provisioner found in one page of GET /1.0/provisioners. */
struct stepca_prov_entry {
    char *kid;           /* key.kid, printable */
    EVP_PKEY *pub;       /* the published public key (EC P-256) */
    char *encrypted_key; /* JWE compact; NULL when not published */
};
void stepca_prov_entry_done(struct stepca_prov_entry *e);

/* Parses one page {"provisioners":[...],"nextCursor":"..."}: 1 and *ret
 * when it holds the JWK provisioner called name, 0 when not; *ret_next is
 * the next cursor (new) or NULL on the last page.  -ENOTUNIQ when the page
 * holds two JWK provisioners of that name; -EBADMSG, -EMSGSIZE, -ENOMEM. */
int stepca_parse_provisioners(const char *body, size_t len, const char *name,
                              struct stepca_prov_entry *ret, char **ret_next);

/* The parts of a PBES2-HS256+A128KW / A256GCM JWE in compact form. */
struct stepca_jwe {
    const char *aad;  /* the first segment, borrowed from the input */
    size_t aad_len;
    uint8_t *p2s;     /* new (free()), 8..64 bytes */
    size_t p2s_len;
    long p2c;
    uint8_t *ek, *iv, *ct, *tag; /* new (free()): 40, 12, n, 16 bytes */
    size_t ek_len, iv_len, ct_len, tag_len;
};
/* Parses and checks the shape: 5 segments of base64url, a protected header
 * with exactly alg PBES2-HS256+A128KW and enc A256GCM, no "zip", no "crit",
 * p2s and p2c present.  The p2c range is checked by the decryption, not
 * here.  -EBADMSG (malformed), -EOPNOTSUPP (other algorithms), -ENOMEM. */
int stepca_jwe_parse(const char *s, size_t len, struct stepca_jwe *ret);
void stepca_jwe_done(struct stepca_jwe *j);

/* Decrypts such a JWE with password: PBKDF2-HMAC-SHA256 (salt = alg || 0 ||
 * p2s, p2c iterations, STEPCA_P2C_MIN..STEPCA_P2C_MAX else -EOPNOTSUPP),
 * AES-128 key unwrap, AES-256-GCM with the first segment as AAD.  Every
 * intermediate is wiped.  -EKEYREJECTED when the key does not unwrap or the
 * tag does not verify (wrong password, tampering).  *ret is new. */
int stepca_jwe_decrypt(const char *s, size_t len,
                       const struct secret *password, struct secret *ret);

/* A private EC P-256 JWK (kty, crv, d, x, y; kid optional) as an EVP_PKEY,
 * checked to be a consistent key pair.  *ret_kid is the "kid" member (new)
 * or NULL.  -EBADMSG, -EOPNOTSUPP (another kty/crv), -ENOMEM. */
int stepca_jwk_private(const char *json, size_t len, EVP_PKEY **ret,
                       char **ret_kid);

/* The one-time token of stepca_sign_jwk() for the given audience URL and
 * time.  *ret is new: wipe it (it authorizes one certificate). */
int stepca_make_sign_token(const struct stepca_provisioner *p,
                           const char *aud, const char *const *names,
                           size_t n_names, int64_t now, char **ret);

/* The x5c renew token of stepca_renew_token() (aud = the renew URL). */
int stepca_make_renew_token(X509 *leaf, STACK_OF(X509) *chain, EVP_PKEY *key,
                            const char *aud, int64_t now, char **ret);

/* Tests only: drop connection hygiene on the mTLS requests of c, to show
 * what it prevents.  STEPCA_TEST_REUSE: no FRESH_CONNECT/FORBID_REUSE (the
 * connection is kept alive and reused); STEPCA_TEST_SESSIONS: the TLS
 * session cache is on (sessions are resumed).  Never called by the
 * daemon. */
#define STEPCA_TEST_REUSE 1u
#define STEPCA_TEST_SESSIONS 2u
void stepca_test_weaken_mtls(struct stepca *c, unsigned flags);

#endif
