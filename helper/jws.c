/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JOSE primitives for the ACME client and for step-ca one-time tokens (see
 * jws.h).  Everything here is pure: no logging (callers log at their
 * decision point), no globals, -errno returns.  Only public key material is
 * ever serialized; private keys stay inside their EVP_PKEY.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>

#include "jws.h"
#include "macro.h"

/* Longest ACME token we accept (RFC 8555 only sets a minimum entropy;
 * step-ca sends 32 characters, Boulder and Pebble 43). */
#define JWS_MAX_TOKEN 256

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t jws_b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

int jws_b64url_encode(const void *in, size_t len, char **ret)
{
    const uint8_t *p = in;
    char *out, *o;
    size_t i;

    if (!ret || (!in && len))
        return -EINVAL;
    if (len > (SIZE_MAX - 4) / 4 * 3)
        return -EOVERFLOW;
    out = malloc(jws_b64url_len(len) + 1);
    if (!out)
        return -ENOMEM;
    o = out;
    for (i = 0; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

        *o++ = b64url_alphabet[v >> 18 & 63];
        *o++ = b64url_alphabet[v >> 12 & 63];
        *o++ = b64url_alphabet[v >> 6 & 63];
        *o++ = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;

        *o++ = b64url_alphabet[v >> 18 & 63];
        *o++ = b64url_alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

        *o++ = b64url_alphabet[v >> 18 & 63];
        *o++ = b64url_alphabet[v >> 12 & 63];
        *o++ = b64url_alphabet[v >> 6 & 63];
    }
    *o = '\0';
    *ret = out;
    return 0;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int jws_is_b64url(const char *s, size_t len)
{
    if (!s || len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (b64url_value((unsigned char)s[i]) < 0)
            return 0;
    return 1;
}

int jws_b64url_decode(const char *in, size_t len, size_t max, uint8_t **ret,
                      size_t *ret_len)
{
    _cleanup_free_ uint8_t *out = NULL;
    size_t olen, i, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (!ret || !ret_len || (!in && len))
        return -EINVAL;
    if (len % 4 == 1)
        return -EINVAL;
    olen = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (olen > max)
        return -EMSGSIZE;
    out = malloc(olen + 1);
    if (!out)
        return -ENOMEM;
    for (i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);

        if (v < 0)
            return -EINVAL;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Left-over bits must be zero: one canonical encoding per input. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -EINVAL;
    out[o] = 0;
    *ret_len = o;
    *ret = TAKE_PTR(out);
    return 0;
}

/* ------------------------------------------------------------------ keys */

enum jws_kty {
    JWS_KTY_EC,
    JWS_KTY_RSA,
    JWS_KTY_ED25519,
};

struct jws_keyinfo {
    enum jws_kty kty;
    const char *alg;
    const char *crv;    /* EC/OKP */
    const char *md;     /* digest for EVP_DigestSign, NULL for EdDSA */
    size_t field_bytes; /* EC coordinate / signature half size */
};

static int ec_curve_nid(EVP_PKEY *key)
{
    char name[64];
    size_t n = 0;
    int nid;

    if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name,
                                        sizeof(name), &n))
        return NID_undef;
    nid = OBJ_sn2nid(name);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(name);
    return nid;
}

static int keyinfo(EVP_PKEY *key, struct jws_keyinfo *ki)
{
    if (!key)
        return -EINVAL;
    if (EVP_PKEY_is_a(key, "EC")) {
        switch (ec_curve_nid(key)) {
        case NID_X9_62_prime256v1:
            *ki = (struct jws_keyinfo){ JWS_KTY_EC, "ES256", "P-256",
                                        "SHA256", 32 };
            return 0;
        case NID_secp384r1:
            *ki = (struct jws_keyinfo){ JWS_KTY_EC, "ES384", "P-384",
                                        "SHA384", 48 };
            return 0;
        case NID_secp521r1:
            *ki = (struct jws_keyinfo){ JWS_KTY_EC, "ES512", "P-521",
                                        "SHA512", 66 };
            return 0;
        default:
            return -EOPNOTSUPP;
        }
    }
    if (EVP_PKEY_is_a(key, "RSA")) {
        if (EVP_PKEY_get_bits(key) < 2048)
            return -EOPNOTSUPP;
        *ki = (struct jws_keyinfo){ JWS_KTY_RSA, "RS256", NULL, "SHA256", 0 };
        return 0;
    }
    if (EVP_PKEY_is_a(key, "ED25519")) {
        *ki = (struct jws_keyinfo){ JWS_KTY_ED25519, "EdDSA", "Ed25519", NULL,
                                    0 };
        return 0;
    }
    return -EOPNOTSUPP;
}

int jws_alg(EVP_PKEY *key, const char **ret)
{
    struct jws_keyinfo ki;
    int r = keyinfo(key, &ki);

    if (r < 0)
        return r;
    *ret = ki.alg;
    return 0;
}

static void bn_freep(BIGNUM **p)
{
    BN_free(*p);
}

static void jsonp(json_t **p)
{
    json_decref(*p);
}

static void md_ctx_freep(EVP_MD_CTX **p)
{
    EVP_MD_CTX_free(*p);
}

static void ecdsa_sig_freep(ECDSA_SIG **p)
{
    ECDSA_SIG_free(*p);
}

/* BIGNUM -> base64url, left-padded to pad bytes (0 = minimal, for RSA). */
static int bn_b64url(const BIGNUM *bn, size_t pad, char **ret)
{
    uint8_t buf[1024]; /* RSA-8192 modulus */
    int n;

    if (pad) {
        if (pad > sizeof(buf))
            return -EINVAL;
        n = BN_bn2binpad(bn, buf, (int)pad);
    } else {
        if ((size_t)BN_num_bytes(bn) > sizeof(buf))
            return -EOPNOTSUPP;
        n = BN_bn2bin(bn, buf);
    }
    if (n <= 0)
        return -EINVAL;
    return jws_b64url_encode(buf, (size_t)n, ret);
}

static int set_b64_bn(json_t *o, const char *member, EVP_PKEY *key,
                      const char *param, size_t pad)
{
    _cleanup_(bn_freep) BIGNUM *bn = NULL;
    _cleanup_free_ char *s = NULL;
    int r;

    if (!EVP_PKEY_get_bn_param(key, param, &bn))
        return -EINVAL;
    r = bn_b64url(bn, pad, &s);
    if (r < 0)
        return r;
    if (json_object_set_new(o, member, json_string(s)) < 0)
        return -ENOMEM;
    return 0;
}

int jws_jwk(EVP_PKEY *key, json_t **ret)
{
    _cleanup_(jsonp) json_t *o = NULL;
    struct jws_keyinfo ki;
    int r;

    if (!ret)
        return -EINVAL;
    r = keyinfo(key, &ki);
    if (r < 0)
        return r;
    o = json_object();
    if (!o)
        return -ENOMEM;
    switch (ki.kty) {
    case JWS_KTY_EC:
        if (json_object_set_new(o, "crv", json_string(ki.crv)) < 0 ||
            json_object_set_new(o, "kty", json_string("EC")) < 0)
            return -ENOMEM;
        r = set_b64_bn(o, "x", key, OSSL_PKEY_PARAM_EC_PUB_X, ki.field_bytes);
        if (r >= 0)
            r = set_b64_bn(o, "y", key, OSSL_PKEY_PARAM_EC_PUB_Y,
                           ki.field_bytes);
        if (r < 0)
            return r;
        break;
    case JWS_KTY_RSA:
        r = set_b64_bn(o, "e", key, OSSL_PKEY_PARAM_RSA_E, 0);
        if (r < 0)
            return r;
        if (json_object_set_new(o, "kty", json_string("RSA")) < 0)
            return -ENOMEM;
        r = set_b64_bn(o, "n", key, OSSL_PKEY_PARAM_RSA_N, 0);
        if (r < 0)
            return r;
        break;
    case JWS_KTY_ED25519: {
        uint8_t pub[32];
        size_t n = sizeof(pub);
        _cleanup_free_ char *x = NULL;

        if (!EVP_PKEY_get_raw_public_key(key, pub, &n) || n != sizeof(pub))
            return -EINVAL;
        r = jws_b64url_encode(pub, n, &x);
        if (r < 0)
            return r;
        if (json_object_set_new(o, "crv", json_string("Ed25519")) < 0 ||
            json_object_set_new(o, "kty", json_string("OKP")) < 0 ||
            json_object_set_new(o, "x", json_string(x)) < 0)
            return -ENOMEM;
        break;
    }
    }
    *ret = TAKE_PTR(o);
    return 0;
}

int jws_thumbprint(EVP_PKEY *key, char **ret)
{
    _cleanup_(jsonp) json_t *jwk = NULL;
    _cleanup_free_ char *canon = NULL;
    uint8_t md[32];
    unsigned mdlen = 0;
    int r;

    if (!ret)
        return -EINVAL;
    r = jws_jwk(key, &jwk);
    if (r < 0)
        return r;
    /* RFC 7638 §3.3: required members only, sorted, no whitespace.  The
     * values are base64url or fixed names, so no escaping can differ. */
    canon = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
    if (!canon)
        return -ENOMEM;
    if (!EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL) ||
        mdlen != sizeof(md))
        return -EIO;
    return jws_b64url_encode(md, sizeof(md), ret);
}

int jws_key_authorization(const char *token, EVP_PKEY *account_key,
                          char **ret)
{
    _cleanup_free_ char *tp = NULL;
    size_t tlen, n;
    char *out;
    int r;

    if (!token || !ret)
        return -EINVAL;
    tlen = strnlen(token, JWS_MAX_TOKEN + 1);
    if (tlen > JWS_MAX_TOKEN || !jws_is_b64url(token, tlen))
        return -EINVAL;
    r = jws_thumbprint(account_key, &tp);
    if (r < 0)
        return r;
    n = tlen + 1 + strlen(tp) + 1;
    out = malloc(n);
    if (!out)
        return -ENOMEM;
    (void)snprintf(out, n, "%s.%s", token, tp);
    *ret = out;
    return 0;
}

/* ------------------------------------------------------------- signing */

int jws_sign(EVP_PKEY *key, const void *data, size_t len, uint8_t **ret,
             size_t *ret_len)
{
    _cleanup_(md_ctx_freep) EVP_MD_CTX *mctx = NULL;
    _cleanup_(ecdsa_sig_freep) ECDSA_SIG *esig = NULL;
    _cleanup_free_ uint8_t *der = NULL;
    struct jws_keyinfo ki;
    const unsigned char *p;
    const BIGNUM *br, *bs;
    size_t dlen = 0;
    uint8_t *raw;
    int r;

    if (!ret || !ret_len || (!data && len))
        return -EINVAL;
    r = keyinfo(key, &ki);
    if (r < 0)
        return r;
    mctx = EVP_MD_CTX_new();
    if (!mctx)
        return -ENOMEM;
    if (!EVP_DigestSignInit_ex(mctx, NULL, ki.md, NULL, NULL, key, NULL) ||
        !EVP_DigestSign(mctx, NULL, &dlen, data, len) || dlen == 0)
        return -EIO;
    der = malloc(dlen);
    if (!der)
        return -ENOMEM;
    if (!EVP_DigestSign(mctx, der, &dlen, data, len))
        return -EIO;
    if (ki.kty != JWS_KTY_EC) {
        *ret = TAKE_PTR(der);
        *ret_len = dlen;
        return 0;
    }
    /* JWA §3.4: ECDSA signatures are R||S, each padded to the field size,
     * where OpenSSL produces a DER SEQUENCE { r, s }. */
    p = der;
    if (dlen > LONG_MAX)
        return -EIO;
    esig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    if (!esig)
        return -EIO;
    ECDSA_SIG_get0(esig, &br, &bs);
    raw = malloc(2 * ki.field_bytes);
    if (!raw)
        return -ENOMEM;
    if (BN_bn2binpad(br, raw, (int)ki.field_bytes) < 0 ||
        BN_bn2binpad(bs, raw + ki.field_bytes, (int)ki.field_bytes) < 0) {
        free(raw);
        return -EIO;
    }
    *ret = raw;
    *ret_len = 2 * ki.field_bytes;
    return 0;
}

/* b64(header + alg) "." b64(payload), and the b64 signature over it. */
static int sign_parts(EVP_PKEY *key, const json_t *header, const void *payload,
                      size_t payload_len, char **ret_prot, char **ret_pay,
                      char **ret_sig)
{
    _cleanup_(jsonp) json_t *h = NULL, *copy = NULL;
    _cleanup_free_ char *htxt = NULL, *prot = NULL, *pay = NULL,
                        *input = NULL, *sig64 = NULL;
    _cleanup_free_ uint8_t *sig = NULL;
    const char *alg;
    size_t siglen, n;
    int r;

    if (!json_is_object(header) || json_object_get(header, "alg") ||
        (!payload && payload_len))
        return -EINVAL;
    r = jws_alg(key, &alg);
    if (r < 0)
        return r;
    /* "alg" first, then the caller's members in their order. */
    h = json_pack("{s:s}", "alg", alg);
    copy = json_deep_copy(header);
    if (!h || !copy || json_object_update(h, copy) < 0)
        return -ENOMEM;
    htxt = json_dumps(h, JSON_COMPACT);
    if (!htxt)
        return -ENOMEM;
    r = jws_b64url_encode(htxt, strlen(htxt), &prot);
    if (r < 0)
        return r;
    r = jws_b64url_encode(payload, payload_len, &pay);
    if (r < 0)
        return r;
    n = strlen(prot) + 1 + strlen(pay) + 1;
    input = malloc(n);
    if (!input)
        return -ENOMEM;
    (void)snprintf(input, n, "%s.%s", prot, pay);
    r = jws_sign(key, input, n - 1, &sig, &siglen);
    if (r < 0)
        return r;
    r = jws_b64url_encode(sig, siglen, &sig64);
    if (r < 0)
        return r;
    *ret_prot = TAKE_PTR(prot);
    *ret_pay = TAKE_PTR(pay);
    *ret_sig = TAKE_PTR(sig64);
    return 0;
}

int jws_flattened(EVP_PKEY *key, const json_t *header, const void *payload,
                  size_t payload_len, char **ret)
{
    _cleanup_free_ char *prot = NULL, *pay = NULL, *sig = NULL;
    _cleanup_(jsonp) json_t *o = NULL;
    char *txt;
    int r;

    if (!ret)
        return -EINVAL;
    r = sign_parts(key, header, payload, payload_len, &prot, &pay, &sig);
    if (r < 0)
        return r;
    o = json_pack("{s:s, s:s, s:s}", "protected", prot, "payload", pay,
                  "signature", sig);
    if (!o)
        return -ENOMEM;
    txt = json_dumps(o, JSON_COMPACT);
    if (!txt)
        return -ENOMEM;
    *ret = txt;
    return 0;
}

int jws_compact(EVP_PKEY *key, const json_t *header, const void *payload,
                size_t payload_len, char **ret)
{
    _cleanup_free_ char *prot = NULL, *pay = NULL, *sig = NULL;
    size_t n;
    char *out;
    int r;

    if (!ret)
        return -EINVAL;
    r = sign_parts(key, header, payload, payload_len, &prot, &pay, &sig);
    if (r < 0)
        return r;
    n = strlen(prot) + strlen(pay) + strlen(sig) + 3;
    out = malloc(n);
    if (!out)
        return -ENOMEM;
    (void)snprintf(out, n, "%s.%s.%s", prot, pay, sig);
    *ret = out;
    return 0;
}

void jws_fingerprint(const char *s, size_t len, char out[13])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[32];
    unsigned mdlen = 0;

    if (!s || !EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL) ||
        mdlen < 6) {
        memcpy(out, "????????????", 13);
        return;
    }
    for (int i = 0; i < 6; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[12] = '\0';
}
