/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The key reference: what a service loads instead of a private key.
 *
 *   ShortcertKeyRef ::= SEQUENCE {
 *       version     INTEGER (1),
 *       identity    UTF8String,          -- [A-Za-z0-9][A-Za-z0-9._-]{0,63}
 *       generation  OCTET STRING (32),   -- SHA-256 of spki
 *       spki        SubjectPublicKeyInfo }
 *
 * PEM-wrapped with the label below.  It holds no secret: the public key is
 * embedded so that loading a reference never needs shortcertd, and the
 * generation pins the exact key, so a rotation can never swap the key under
 * a running service without it noticing.  Used by shortcertd (writer) and
 * the provider (reader); library code, no logging.
 */
#ifndef SHORTCERT_KEYREF_H
#define SHORTCERT_KEYREF_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>
#include <openssl/types.h>

#include "ipc-proto.h"
#include "macro.h"

#define KEYREF_PEM_LABEL "SHORTCERT KEY REFERENCE"
#define KEYREF_VERSION 1
#define KEYREF_DER_MAX 8192 /* RSA-8192 SPKI is ~1.1 KiB */

struct keyref {
    char identity[IPC_IDENTITY_MAX + 1];
    uint8_t generation[IPC_GENERATION_LEN];
    uint8_t *spki; /* DER SubjectPublicKeyInfo, owned */
    size_t spki_len;
};

/* SHA-256 of a DER SubjectPublicKeyInfo (the key generation id). */
_warn_unused_ int keyref_generation(OSSL_LIB_CTX *libctx, const uint8_t *spki,
                                    size_t spki_len,
                                    uint8_t ret[IPC_GENERATION_LEN]);

/* Build a reference for identity from a public (or private: only the public
 * half is used) key.  ret is filled on success and must be keyref_done(). */
_warn_unused_ int keyref_from_pkey(OSSL_LIB_CTX *libctx, const char *identity,
                                   EVP_PKEY *pkey, struct keyref *ret);

/* DER encode (new buffer in *ret_der, OPENSSL_free it). */
_warn_unused_ int keyref_encode_der(const struct keyref *ref,
                                    uint8_t **ret_der, size_t *ret_len);

/* Strict DER decode: canonical DER only, no trailing bytes, version 1, a
 * valid identity name, a 32-byte generation that equals SHA-256(spki).
 * -EBADMSG for anything malformed, -EPROTO for a generation mismatch. */
_warn_unused_ int keyref_decode_der(OSSL_LIB_CTX *libctx, const uint8_t *der,
                                    size_t len, struct keyref *ret);

/* Write the PEM form, preceded by explanatory text lines (PEM readers skip
 * text before the BEGIN line). */
_warn_unused_ int keyref_write_pem(BIO *out, const struct keyref *ref);

/* Hex form of a generation, first n bytes (n <= 32), into buf (2n+1). */
void keyref_generation_hex(const uint8_t gen[IPC_GENERATION_LEN], size_t n,
                           char *buf);

void keyref_done(struct keyref *ref);

/* The OSSL_STORE URI of an identity: "shortcert:" (scheme compared without
 * regard to case, RFC 3986) then an identity name, and nothing else: no
 * "//", query, fragment, percent-encoding or blanks.  At most
 * KEYREF_URI_MAX bytes are looked at.  The name goes to ret (NUL
 * terminated); -EINVAL for anything else. */
#define KEYREF_URI_SCHEME "shortcert"
#define KEYREF_URI_MAX (sizeof(KEYREF_URI_SCHEME) + IPC_IDENTITY_MAX)
_warn_unused_ int keyref_parse_uri(const char *uri,
                                   char ret[IPC_IDENTITY_MAX + 1]);

#endif
