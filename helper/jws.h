/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JOSE for shortcertd: base64url (RFC 4648 §5, no padding), the public JWK
 * of a key and its RFC 7638 thumbprint, and JWS signing (RFC 7515) in the
 * flattened JSON serialization (ACME, RFC 8555 §6.2) and the compact one
 * (JWT, step-ca one-time tokens).  Keys: EC P-256/P-384/P-521
 * (ES256/384/512, signature = raw R||S, not DER), RSA >= 2048 (RS256) and
 * Ed25519 (EdDSA).  OpenSSL 3 EVP only.  No logging, no globals.
 */
#ifndef SHORTCERT_JWS_H
#define SHORTCERT_JWS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/types.h>

/* Largest input jws_b64url_decode() accepts unless told otherwise. */
#define JWS_B64URL_MAX_DECODE (1u << 20)

/* Characters of base64url text (without padding) for n input bytes. */
size_t jws_b64url_len(size_t n);

/* Encodes len bytes as unpadded base64url; *ret is new, NUL-terminated. */
int jws_b64url_encode(const void *in, size_t len, char **ret);

/* Decodes unpadded base64url.  Refuses (-EINVAL) padding, whitespace, any
 * byte outside [A-Za-z0-9_-], the impossible length 4k+1 and non-zero
 * trailing bits (so every byte string has exactly one encoding); -EMSGSIZE
 * if the result would exceed max bytes.  *ret is new (free()), and gets a
 * NUL after the data for convenience; *ret_len excludes it. */
int jws_b64url_decode(const char *in, size_t len, size_t max, uint8_t **ret,
                      size_t *ret_len);

/* True when s[0..len) is non-empty and only [A-Za-z0-9_-]. */
int jws_is_b64url(const char *s, size_t len);

/* The JWS "alg" for a key: "ES256", "ES384", "ES512", "RS256", "EdDSA";
 * -EOPNOTSUPP for anything else (RSA < 2048 bits, other curves). The
 * string is static. */
int jws_alg(EVP_PKEY *key, const char **ret);

/* The public JWK of key as a new JSON object with only the required members
 * (EC: crv,kty,x,y; RSA: e,kty,n; OKP: crv,kty,x).  No private parts ever. */
int jws_jwk(EVP_PKEY *key, json_t **ret);

/* RFC 7638 SHA-256 thumbprint of the public JWK, base64url (43 chars);
 * *ret is new. */
int jws_thumbprint(EVP_PKEY *key, char **ret);

/* ACME key authorization "token.thumbprint" (RFC 8555 §8.1).  The token
 * must be 1..256 base64url characters (-EINVAL otherwise); *ret is new. */
int jws_key_authorization(const char *token, EVP_PKEY *account_key,
                          char **ret);

/* Signs data with key using the algorithm of jws_alg(); the signature is in
 * JWS form (EC: R||S, each left-padded to the field size).  *ret is new. */
int jws_sign(EVP_PKEY *key, const void *data, size_t len, uint8_t **ret,
             size_t *ret_len);

/* Flattened JSON JWS {"protected":..,"payload":..,"signature":..}.
 * header: the protected header members (borrowed; "alg" is added from the
 * key and must not be present).  payload may be NULL/0 for the empty
 * payload of an ACME POST-as-GET.  *ret is new, compact JSON text. */
int jws_flattened(EVP_PKEY *key, const json_t *header, const void *payload,
                  size_t payload_len, char **ret);

/* Compact JWS "b64(header).b64(payload).b64(sig)" (a JWT when header has
 * "typ":"JWT"); header as for jws_flattened().  *ret is new. */
int jws_compact(EVP_PKEY *key, const json_t *header, const void *payload,
                size_t payload_len, char **ret);

/* Short fingerprint for logs: the first 6 bytes of SHA-256(s) in hex
 * (12 chars + NUL).  Use it instead of printing a token. */
void jws_fingerprint(const char *s, size_t len, char out[13]);

#endif
