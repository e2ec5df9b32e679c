/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for helper/jws.c: base64url, JWK + RFC 7638 thumbprints
 * (expected values computed independently with python3-jwcrypto 1.1 and
 * taken from RFC 7638 §3.1), JWS flattened/compact signatures verified with
 * OpenSSL, ACME key authorizations.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "cu-main.h"
#include "jws.h"

/* openssl genpkey P-256; jwcrypto: kid/thumbprint below. */
static const char ec256_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8KN0QADIO9Q6DyI9aeJxgahy+qp3\n"
    "LEOqR5X0+QRmZHyLd2Irg36SvLdrCF06gRsHxYGAWTk7faFIlATSkkAc5w==\n"
    "-----END PUBLIC KEY-----\n";
#define EC256_X "8KN0QADIO9Q6DyI9aeJxgahy-qp3LEOqR5X0-QRmZHw"
#define EC256_Y "i3diK4N-kry3awhdOoEbB8WBgFk5O32hSJQE0pJAHOc"
#define EC256_TP "zgYaFS-Nr5ApBXGqMOjAXCc7d5yE7j0LC95buGF8bg0"

/* A P-256 key whose x starts with 0x00: coordinates must stay 32 bytes. */
static const char ec256z_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEANXCnKXmg/wQ9fasXFB/vznLSoxy\n"
    "XFj9uCO+Kb2fAf41/7W0akWRZOzGJPjyIL+DF1MNLz5m8By9l4dZqVKt7A==\n"
    "-----END PUBLIC KEY-----\n";
#define EC256Z_X "ANXCnKXmg_wQ9fasXFB_vznLSoxyXFj9uCO-Kb2fAf4"
#define EC256Z_TP "ve6mUtRUIjJtHSXXaqjC-2VOrT3MCfquuFxyzKI7Yc0"

static const char ec384_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEU72hGku4y2w1cE7rycCcTT3ULs8LPQFc\n"
    "Da8elslZIK0B5hqKP41NYSpa1GbJCXwiGeIo5Ul0NMdR9JLZWJSLUQWkSoQyQp13\n"
    "Sz6YufLj7evoh6QsU73C3tyliEHsyee3\n"
    "-----END PUBLIC KEY-----\n";
#define EC384_TP "kEVpQWq0xMdfmhvLEOSqozzl35GOQl0_EJBHBdS3gNk"

static const char ed25519_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAWhWQpeEh1/42rkFVwkPKV4RqvuVcNrmz+qL+Iz0l850=\n"
    "-----END PUBLIC KEY-----\n";
#define ED25519_TP "xAGi_GRejDqERYd5wsgGDfJIRi3Fq96yHL44M773_ko"

/* RFC 7638 §3.1 example RSA key and its thumbprint. */
static const char rfc7638_n[] =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aP"
    "FFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl9"
    "3lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdA"
    "ZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3"
    "XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
#define RFC7638_TP "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

static EVP_PKEY *load_pub(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return k;
}

static EVP_PKEY *rsa_from_n(const char *n64)
{
    uint8_t *n = NULL;
    size_t nlen = 0;
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *k = NULL;

    if (jws_b64url_decode(n64, strlen(n64), 4096, &n, &nlen) < 0)
        return NULL;
    bn = BN_bin2bn(n, (int)nlen, NULL);
    be = BN_new();
    bld = OSSL_PARAM_BLD_new();
    if (bn && be && bld && BN_set_word(be, 65537) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        (void)EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    return k;
}

/* ----------------------------------------------------------- base64url */

static void t_b64_vectors(void)
{
    static const struct {
        const char *in, *out;
    } v[] = {
        { "", "" },         { "f", "Zg" },         { "fo", "Zm8" },
        { "foo", "Zm9v" },  { "foob", "Zm9vYg" },  { "fooba", "Zm9vYmE" },
        { "foobar", "Zm9vYmFy" },
    };
    static const uint8_t url[] = { 0xfb, 0xff, 0xbf };

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char *e = NULL;
        uint8_t *d = NULL;
        size_t dl = 0;

        CU_ASSERT_EQUAL_FATAL(jws_b64url_encode(v[i].in, strlen(v[i].in), &e),
                              0);
        CU_ASSERT_STRING_EQUAL(e, v[i].out);
        CU_ASSERT_EQUAL(strlen(e), jws_b64url_len(strlen(v[i].in)));
        CU_ASSERT_EQUAL_FATAL(
            jws_b64url_decode(e, strlen(e), 100, &d, &dl), 0);
        CU_ASSERT_EQUAL(dl, strlen(v[i].in));
        CU_ASSERT(memcmp(d, v[i].in, dl) == 0);
        CU_ASSERT_EQUAL(d[dl], 0);
        free(e);
        free(d);
    }
    {
        char *e = NULL;

        CU_ASSERT_EQUAL(jws_b64url_encode(url, sizeof(url), &e), 0);
        CU_ASSERT_STRING_EQUAL(e, "-_-_"); /* the two URL-safe letters */
        free(e);
    }
}

static void t_b64_roundtrip(void)
{
    uint8_t buf[300];

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(buf); n++) {
        char *e = NULL;
        uint8_t *d = NULL;
        size_t dl = 0;

        CU_ASSERT_EQUAL_FATAL(jws_b64url_encode(buf, n, &e), 0);
        CU_ASSERT(jws_b64url_len(n) == strlen(e));
        CU_ASSERT(n == 0 || jws_is_b64url(e, strlen(e)));
        CU_ASSERT_EQUAL_FATAL(jws_b64url_decode(e, strlen(e), n, &d, &dl), 0);
        CU_ASSERT_EQUAL(dl, n);
        CU_ASSERT(memcmp(d, buf, n) == 0);
        free(e);
        free(d);
    }
}

static void t_b64_rejects(void)
{
    static const char *const bad[] = {
        "Zg==", "Zg=", "Zm9v\n", " Zm9v", "Zm 9v", "Zm+v", "Zm/v", "Zm9vY",
        "Zh",   /* non-zero trailing bits: only "Zg" encodes "f" */
        "Zm9=", "Z",   "Zm8\r", "Zm\x80v",
    };
    uint8_t *d = (uint8_t *)"untouched";
    size_t dl = 12345;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(jws_b64url_decode(bad[i], strlen(bad[i]), 100, &d,
                                          &dl),
                        -EINVAL);
    }
    /* an embedded NUL is just another bad byte */
    CU_ASSERT_EQUAL(jws_b64url_decode("Zm\0v", 4, 100, &d, &dl), -EINVAL);
    /* bounded output */
    CU_ASSERT_EQUAL(jws_b64url_decode("Zm9vYmFy", 8, 5, &d, &dl), -EMSGSIZE);
    CU_ASSERT_EQUAL(jws_b64url_decode(NULL, 3, 5, &d, &dl), -EINVAL);
    /* written only on success */
    CU_ASSERT_EQUAL(dl, 12345);
    CU_ASSERT_STRING_EQUAL((char *)d, "untouched");
    CU_ASSERT(!jws_is_b64url("", 0));
    CU_ASSERT(!jws_is_b64url("ab.c", 4));
}

/* ------------------------------------------------------------- JWK/tp */

static void check_tp(const char *pem, const char *expect)
{
    EVP_PKEY *k = load_pub(pem);
    char *tp = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL(jws_thumbprint(k, &tp), 0);
    CU_ASSERT_STRING_EQUAL(tp, expect);
    free(tp);
    EVP_PKEY_free(k);
}

static void t_thumbprints(void)
{
    EVP_PKEY *rsa;
    char *tp = NULL;

    check_tp(ec256_pub, EC256_TP);
    check_tp(ec256z_pub, EC256Z_TP);
    check_tp(ec384_pub, EC384_TP);
    check_tp(ed25519_pub, ED25519_TP);
    rsa = rsa_from_n(rfc7638_n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rsa);
    CU_ASSERT_EQUAL(jws_thumbprint(rsa, &tp), 0);
    CU_ASSERT_STRING_EQUAL(tp, RFC7638_TP);
    free(tp);
    EVP_PKEY_free(rsa);
}

static void t_jwk_members(void)
{
    EVP_PKEY *k = load_pub(ec256_pub), *z = load_pub(ec256z_pub);
    json_t *j = NULL;
    const char *alg = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_PTR_NOT_NULL_FATAL(z);
    CU_ASSERT_EQUAL_FATAL(jws_jwk(k, &j), 0);
    CU_ASSERT_EQUAL(json_object_size(j), 4); /* required members only */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "kty")), "EC");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "crv")),
                           "P-256");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "x")),
                           EC256_X);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "y")),
                           EC256_Y);
    CU_ASSERT_PTR_NULL(json_object_get(j, "d"));
    json_decref(j);
    CU_ASSERT_EQUAL_FATAL(jws_jwk(z, &j), 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "x")),
                           EC256Z_X);
    json_decref(j);
    CU_ASSERT_EQUAL(jws_alg(k, &alg), 0);
    CU_ASSERT_STRING_EQUAL(alg, "ES256");
    EVP_PKEY_free(k);
    EVP_PKEY_free(z);
}

static void t_unsupported_keys(void)
{
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    const char *alg = NULL;
    json_t *j = NULL;
    char *tp = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(k1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k2);
    CU_ASSERT_EQUAL(jws_alg(k1, &alg), -EOPNOTSUPP);
    CU_ASSERT_EQUAL(jws_jwk(k1, &j), -EOPNOTSUPP);
    CU_ASSERT_EQUAL(jws_thumbprint(k2, &tp), -EOPNOTSUPP);
    CU_ASSERT_PTR_NULL(j);
    CU_ASSERT_PTR_NULL(tp);
    CU_ASSERT_EQUAL(jws_alg(NULL, &alg), -EINVAL);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

/* ------------------------------------------------------------- signing */

static json_t *decode_json_part(const char *s, size_t n)
{
    uint8_t *d = NULL;
    size_t dl = 0;
    json_t *j;

    if (jws_b64url_decode(s, n, 65536, &d, &dl) < 0)
        return NULL;
    j = json_loadb((const char *)d, dl, JSON_REJECT_DUPLICATES, NULL);
    free(d);
    return j;
}

/* Verifies a JWS ES256 signature (raw R||S) with OpenSSL. */
static int verify_es256(EVP_PKEY *k, const char *input, size_t inlen,
                        const char *sig64)
{
    uint8_t *raw = NULL, *der = NULL;
    size_t rl = 0;
    ECDSA_SIG *s = NULL;
    EVP_MD_CTX *m = NULL;
    int derlen, ok = 0;

    if (jws_b64url_decode(sig64, strlen(sig64), 1024, &raw, &rl) < 0 ||
        rl != 64)
        goto out;
    s = ECDSA_SIG_new();
    if (!s || !ECDSA_SIG_set0(s, BN_bin2bn(raw, 32, NULL),
                              BN_bin2bn(raw + 32, 32, NULL)))
        goto out;
    derlen = i2d_ECDSA_SIG(s, &der);
    m = EVP_MD_CTX_new();
    if (derlen <= 0 || !m ||
        EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL, NULL, k, NULL) != 1)
        goto out;
    ok = EVP_DigestVerify(m, der, (size_t)derlen, (const uint8_t *)input,
                          inlen) == 1;
out:
    EVP_MD_CTX_free(m);
    ECDSA_SIG_free(s);
    OPENSSL_free(der);
    free(raw);
    return ok;
}

static void t_flattened_es256(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    json_t *hdr = json_pack("{s:s, s:s}", "nonce", "bm9uY2U",
                            "url", "https://ca.test/acme/new-order");
    const char *payload = "{\"identifiers\":[]}";
    char *out = NULL, *input = NULL;
    json_t *jws, *prot;
    const char *p64, *pay64, *sig64;
    uint8_t *d = NULL, *sig = NULL;
    size_t dl = 0, sl = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL_FATAL(jws_flattened(k, hdr, payload, strlen(payload),
                                        &out),
                          0);
    jws = json_loads(out, JSON_REJECT_DUPLICATES, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(jws);
    CU_ASSERT_EQUAL(json_object_size(jws), 3);
    p64 = json_string_value(json_object_get(jws, "protected"));
    pay64 = json_string_value(json_object_get(jws, "payload"));
    sig64 = json_string_value(json_object_get(jws, "signature"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pay64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sig64);
    prot = decode_json_part(p64, strlen(p64));
    CU_ASSERT_PTR_NOT_NULL_FATAL(prot);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(prot, "alg")),
                           "ES256");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(prot, "nonce")),
                           "bm9uY2U");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(prot, "url")),
                           "https://ca.test/acme/new-order");
    CU_ASSERT_EQUAL(jws_b64url_decode(pay64, strlen(pay64), 100, &d, &dl), 0);
    CU_ASSERT_EQUAL(dl, strlen(payload));
    CU_ASSERT(d && memcmp(d, payload, dl) == 0);
    CU_ASSERT_EQUAL(jws_b64url_decode(sig64, strlen(sig64), 100, &sig, &sl),
                    0);
    CU_ASSERT_EQUAL(sl, 64); /* raw R||S, not DER */
    CU_ASSERT(asprintf(&input, "%s.%s", p64, pay64) > 0);
    CU_ASSERT(verify_es256(k, input, strlen(input), sig64));
    /* a flipped byte of the signing input must not verify */
    input[3] ^= 1;
    CU_ASSERT(!verify_es256(k, input, strlen(input), sig64));
    free(input);
    free(sig);
    free(d);
    json_decref(prot);
    json_decref(jws);
    free(out);

    /* POST-as-GET: empty payload */
    CU_ASSERT_EQUAL_FATAL(jws_flattened(k, hdr, NULL, 0, &out), 0);
    jws = json_loads(out, 0, NULL);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(jws, "payload")),
                           "");
    p64 = json_string_value(json_object_get(jws, "protected"));
    sig64 = json_string_value(json_object_get(jws, "signature"));
    CU_ASSERT(asprintf(&input, "%s.", p64) > 0);
    CU_ASSERT(verify_es256(k, input, strlen(input), sig64));
    free(input);
    json_decref(jws);
    free(out);

    /* "alg" belongs to us */
    json_object_set_new(hdr, "alg", json_string("none"));
    out = NULL;
    CU_ASSERT_EQUAL(jws_flattened(k, hdr, NULL, 0, &out), -EINVAL);
    CU_ASSERT_PTR_NULL(out);
    json_decref(hdr);
    EVP_PKEY_free(k);
}

static void t_compact_jwt(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    json_t *hdr = json_pack("{s:s, s:s}", "kid", "abc", "typ", "JWT");
    const char *claims = "{\"sub\":\"svc.test\",\"iss\":\"prov\"}";
    char *tok = NULL, *dot1, *dot2;
    json_t *h;

    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL_FATAL(jws_compact(k, hdr, claims, strlen(claims), &tok),
                          0);
    dot1 = strchr(tok, '.');
    CU_ASSERT_PTR_NOT_NULL_FATAL(dot1);
    dot2 = strchr(dot1 + 1, '.');
    CU_ASSERT_PTR_NOT_NULL_FATAL(dot2);
    CU_ASSERT_PTR_NULL(strchr(dot2 + 1, '.'));
    h = decode_json_part(tok, (size_t)(dot1 - tok));
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(h, "alg")),
                           "ES256");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(h, "typ")),
                           "JWT");
    CU_ASSERT(verify_es256(k, tok, (size_t)(dot2 - tok), dot2 + 1));
    json_decref(h);
    free(tok);
    json_decref(hdr);
    EVP_PKEY_free(k);
}

static void t_sign_other_algs(void)
{
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    uint8_t *sig = NULL;
    size_t sl = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    const char *alg = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ed);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p384);
    CU_ASSERT_EQUAL(jws_alg(ed, &alg), 0);
    CU_ASSERT_STRING_EQUAL(alg, "EdDSA");
    CU_ASSERT_EQUAL_FATAL(jws_sign(ed, "abc", 3, &sig, &sl), 0);
    CU_ASSERT_EQUAL(sl, 64);
    CU_ASSERT(EVP_DigestVerifyInit_ex(m, NULL, NULL, NULL, NULL, ed, NULL) ==
                  1 &&
              EVP_DigestVerify(m, sig, sl, (const uint8_t *)"abc", 3) == 1);
    free(sig);
    CU_ASSERT_EQUAL(jws_alg(p384, &alg), 0);
    CU_ASSERT_STRING_EQUAL(alg, "ES384");
    CU_ASSERT_EQUAL_FATAL(jws_sign(p384, "abc", 3, &sig, &sl), 0);
    CU_ASSERT_EQUAL(sl, 96);
    free(sig);
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(p384);
}

static void t_key_authorization(void)
{
    EVP_PKEY *k = load_pub(ec256_pub);
    char long_tok[258];
    char *ka = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL(jws_key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-"
                                          "PCt92wr-oA",
                                          k, &ka),
                    0);
    CU_ASSERT_STRING_EQUAL(ka, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
                               EC256_TP);
    free(ka);
    ka = NULL;
    CU_ASSERT_EQUAL(jws_key_authorization("", k, &ka), -EINVAL);
    CU_ASSERT_EQUAL(jws_key_authorization("a.b", k, &ka), -EINVAL);
    CU_ASSERT_EQUAL(jws_key_authorization("a/b", k, &ka), -EINVAL);
    CU_ASSERT_EQUAL(jws_key_authorization("ab\n", k, &ka), -EINVAL);
    memset(long_tok, 'A', sizeof(long_tok) - 1);
    long_tok[sizeof(long_tok) - 1] = '\0'; /* 257 characters */
    CU_ASSERT_EQUAL(jws_key_authorization(long_tok, k, &ka), -EINVAL);
    long_tok[256] = '\0';
    CU_ASSERT_EQUAL(jws_key_authorization(long_tok, k, &ka), 0);
    free(ka);
    EVP_PKEY_free(k);
}

static void t_fingerprint(void)
{
    char fp[13];

    /* SHA-256("abc") = ba7816bf8f01cfea... */
    jws_fingerprint("abc", 3, fp);
    CU_ASSERT_STRING_EQUAL(fp, "ba7816bf8f01");
}

int cu_register(void)
{
    static const struct cu_test b64[] = {
        { "vectors", t_b64_vectors },
        { "roundtrip", t_b64_roundtrip },
        { "rejects", t_b64_rejects },
        { 0 },
    };
    static const struct cu_test jwk[] = {
        { "thumbprints", t_thumbprints },
        { "members", t_jwk_members },
        { "unsupported", t_unsupported_keys },
        { "fingerprint", t_fingerprint },
        { 0 },
    };
    static const struct cu_test jws[] = {
        { "flattened-es256", t_flattened_es256 },
        { "compact-jwt", t_compact_jwt },
        { "eddsa-es384", t_sign_other_algs },
        { "key-authorization", t_key_authorization },
        { 0 },
    };

    if (cu_add_suite("base64url", b64) < 0 || cu_add_suite("jwk", jwk) < 0 ||
        cu_add_suite("jws", jws) < 0)
        return -1;
    return 0;
}
