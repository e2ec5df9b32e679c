/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Purpose-bound signing: decide whether a to-be-signed message is a TLS
 * handshake signature input for an identity's role.  shortcertd signs only
 * what passes, so a compromised service cannot use its key to sign a JWS,
 * an X.509 structure or the other side's handshake (which could let it
 * renew or rekey the identity at the CA on its own).
 *
 * Server role: TLS 1.3 server CertificateVerify content, or TLS 1.2
 * ServerKeyExchange signed params (client_random || server_random ||
 * ECDHE/DHE params).  Client role: TLS 1.3 client CertificateVerify content,
 * or a TLS 1.2 client CertificateVerify transcript (ClientHello ...
 * ClientKeyExchange).
 *
 * The TLS 1.2 ServerKeyExchange input starts with 64 bytes the signer's
 * side controls (the randoms), so a message shaped as an ASN.1 structure
 * (a CSR's or a certificate's to-be-signed part) could be made to fit it.
 * A message that parses entirely as one DER/BER SEQUENCE is therefore
 * refused whatever else it looks like; a genuine handshake input does so
 * only if the client's random happens to start a valid ASN.1 tree that
 * tiles the whole message (far rarer than one in a million handshakes;
 * that handshake fails and the client retries).  Library code: no logging.
 */
#ifndef SHORTCERT_TLS_PURPOSE_H
#define SHORTCERT_TLS_PURPOSE_H

#include <stddef.h>
#include <stdint.h>

enum tls_role {
    TLS_ROLE_SERVER = 1,
    TLS_ROLE_CLIENT = 2,
};

/* What kind of key signs: decides which key exchanges exist (TLS 1.2 DHE
 * is only ever signed by RSA keys: there is no DHE-ECDSA suite). */
enum tls_key_kind {
    TLS_KEY_EC = 1,
    TLS_KEY_RSA = 2,
    TLS_KEY_ED25519 = 3,
};

enum tls_input {
    TLS_INPUT_NONE = 0,
    TLS_INPUT_TLS13_SERVER_CV,
    TLS_INPUT_TLS13_CLIENT_CV,
    TLS_INPUT_TLS12_SKE,
    TLS_INPUT_TLS12_CLIENT_CV,
    TLS_INPUT_ASN1, /* an ASN.1 structure: never signed */
};

/* Classify msg as signed by a key of that kind.  Returns the matching enum
 * tls_input (> 0), or 0 if it is no TLS handshake signature input at all.
 * Bounded; ECDHE points on NIST and Brainpool curves are checked to be on
 * the curve (libcrypto).  Thread-safe. */
enum tls_input tls_input_classify(const uint8_t *msg, size_t len,
                                  enum tls_key_kind kind);

/* 0 if msg may be signed for role with a key of that kind; otherwise -EPERM
 * with *ret_why (static text, may be NULL) naming what it looked like. */
int tls_purpose_check(enum tls_role role, enum tls_key_kind kind,
                      const uint8_t *msg, size_t len, const char **ret_why);

const char *tls_input_str(enum tls_input in);

#endif
