/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of purpose-bound signing: each TLS handshake signature input is
 * recognised and allowed only for its role; a JWS signing input, an X.509
 * TBS-like DER structure, a bare digest and near misses are refused.
 * (The integration tests show that real libssl handshakes pass.)
 */
#include <string.h>

#include <CUnit/CUnit.h>
#include <openssl/evp.h>

#include "cu-main.h"
#include "tls-purpose.h"

static size_t tls13_cv(uint8_t *out, const char *ctx, size_t hlen)
{
    memset(out, 0x20, 64);
    memcpy(out + 64, ctx, 33);
    out[97] = 0;
    memset(out + 98, 0xab, hlen);
    return 98 + hlen;
}

/* An ECDHE public point of a real key on that curve (NULL: any bytes, as
 * for x25519/x448). */
static void real_point(const char *curve, uint8_t *out, size_t plen)
{
    EVP_PKEY *k;
    size_t n = 0;

    memset(out, 0x22, plen);
    if (!curve)
        return;
    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL(EVP_PKEY_get_octet_string_param(k, "encoded-pub-key", out,
                                                    plen, &n),
                    1);
    CU_ASSERT_EQUAL(n, plen);
    EVP_PKEY_free(k);
}

static size_t tls12_ske_ecdhe(uint8_t *out, uint16_t group, const char *curve,
                              size_t plen)
{
    memset(out, 0x11, 64); /* randoms */
    out[64] = 3;
    out[65] = (uint8_t)(group >> 8);
    out[66] = (uint8_t)group;
    out[67] = (uint8_t)plen;
    real_point(curve, out + 68, plen);
    return 68 + plen;
}

static size_t put_hs(uint8_t *out, uint8_t type, size_t len)
{
    out[0] = type;
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    memset(out + 4, 0x33, len);
    return 4 + len;
}

static size_t tls12_client_transcript(uint8_t *out)
{
    size_t n = 0;

    n += put_hs(out + n, 1, 120);  /* ClientHello */
    n += put_hs(out + n, 2, 80);   /* ServerHello */
    n += put_hs(out + n, 11, 700); /* Certificate */
    n += put_hs(out + n, 12, 140); /* ServerKeyExchange */
    n += put_hs(out + n, 13, 30);  /* CertificateRequest */
    n += put_hs(out + n, 14, 0);   /* ServerHelloDone */
    n += put_hs(out + n, 11, 600); /* client Certificate */
    n += put_hs(out + n, 16, 66);  /* ClientKeyExchange */
    return n;
}

static uint8_t m[4096];

static void t_tls13(void)
{
    size_t n;
    const char *why = NULL;

    n = tls13_cv(m, "TLS 1.3, server CertificateVerify", 32);
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_TLS13_SERVER_CV);
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_SERVER, TLS_KEY_EC, m, n, NULL), 0);
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_CLIENT, TLS_KEY_EC, m, n, &why), -EPERM);
    CU_ASSERT_STRING_EQUAL(why, "TLS 1.3 server CertificateVerify");
    n = tls13_cv(m, "TLS 1.3, server CertificateVerify", 48);
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_SERVER, TLS_KEY_EC, m, n, NULL), 0);

    /* The client context is refused for a server identity. */
    n = tls13_cv(m, "TLS 1.3, client CertificateVerify", 32);
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_TLS13_CLIENT_CV);
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_SERVER, TLS_KEY_EC, m, n, &why), -EPERM);
    CU_ASSERT_STRING_EQUAL(why, "TLS 1.3 client CertificateVerify");
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_CLIENT, TLS_KEY_EC, m, n, NULL), 0);

    /* Near misses. */
    n = tls13_cv(m, "TLS 1.3, server CertificateVerify", 33);
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_NONE);
    n = tls13_cv(m, "TLS 1.3, server CertificateVerify", 32);
    m[10] = 0x21;
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_NONE);
    n = tls13_cv(m, "TLS 1.3, server CertificateVerify", 32);
    m[97] = 1;
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_NONE);
    n = tls13_cv(m, "TLS 1.3, server CertificateVerifx", 32);
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_NONE);
}

static void t_tls12_ske(void)
{
    static const struct {
        uint16_t group;
        const char *curve;
        size_t plen;
    } ok[] = {
        { 23, "P-256", 65 },           { 24, "P-384", 97 },
        { 25, "P-521", 133 },          { 26, "brainpoolP256r1", 65 },
        { 27, "brainpoolP384r1", 97 }, { 28, "brainpoolP512r1", 129 },
        { 29, NULL, 32 },              { 30, NULL, 56 },
    };
    size_t n;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        n = tls12_ske_ecdhe(m, ok[i].group, ok[i].curve, ok[i].plen);
        CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_TLS12_SKE);
        CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_SERVER, TLS_KEY_EC, m, n, NULL), 0);
        CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_CLIENT, TLS_KEY_EC, m, n, NULL), -EPERM);
    }
    /* wrong point length for the group, unknown group, trailing byte,
     * compressed point, a point that is not on the curve */
    n = tls12_ske_ecdhe(m, 23, NULL, 64);
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_NONE);
    n = tls12_ske_ecdhe(m, 99, "P-256", 65);
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_NONE);
    n = tls12_ske_ecdhe(m, 23, "P-256", 65);
    m[n] = 0;
    CU_ASSERT_EQUAL(tls_input_classify(m, n + 1, TLS_KEY_EC), TLS_INPUT_NONE);
    n = tls12_ske_ecdhe(m, 23, "P-256", 65);
    m[68] = 0x02;
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_NONE);
    n = tls12_ske_ecdhe(m, 23, "P-256", 65);
    m[n - 1] ^= 1;
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_NONE);
    n = tls12_ske_ecdhe(m, 24, NULL, 97);
    m[68] = 0x04;
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_NONE);

    /* DHE params: p 2048 bits, g 1 byte, Ys 256 bytes */
    memset(m, 0x11, 64);
    n = 64;
    m[n++] = 0x01;
    m[n++] = 0x00;
    memset(m + n, 0xff, 256);
    n += 256;
    m[n++] = 0;
    m[n++] = 1;
    m[n++] = 2;
    m[n++] = 0x01;
    m[n++] = 0x00;
    memset(m + n, 0x5a, 256);
    n += 256;
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_RSA), TLS_INPUT_TLS12_SKE);
    CU_ASSERT_EQUAL(tls_input_classify(m, n - 1, TLS_KEY_RSA), TLS_INPUT_NONE);
    /* no DHE-ECDSA or DHE-EdDSA suite exists */
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_NONE);
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_ED25519), TLS_INPUT_NONE);
}

/* A TLS 1.2 client transcript whose bytes 64.. also read as DHE params
 * (a review found such transcripts): ClientHello (150), ServerHello (40),
 * Certificate (4), ClientKeyExchange (0) = 210 bytes, with p_len = 128 at
 * 64, g_len = 1 at 194, g at 196, and Ys_len = 0x000b at 197, whose low
 * byte is the Certificate message's type, so Ys runs exactly to the end. */
static void t_client_cv_shaped_like_dhe(void)
{
    size_t n = 0;

    n += put_hs(m + n, 1, 150);
    n += put_hs(m + n, 2, 40);
    n += put_hs(m + n, 11, 4);
    n += put_hs(m + n, 16, 0);
    CU_ASSERT_EQUAL_FATAL(n, 210);
    m[64] = 0x00, m[65] = 0x80;
    m[194] = 0x00, m[195] = 0x01, m[196] = 0x02, m[197] = 0x00;
    CU_ASSERT_EQUAL(m[198], 11);
    /* both shapes fit; the transcript wins, and a server must not sign it */
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_RSA), TLS_INPUT_TLS12_CLIENT_CV);
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_SERVER, TLS_KEY_RSA, m, n, NULL),
                    -EPERM);
    /* with the transcript broken (ClientKeyExchange renamed) it is DHE */
    m[206] = 15;
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_RSA), TLS_INPUT_TLS12_SKE);
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_NONE);
}

static void t_tls12_client_cv(void)
{
    size_t n = tls12_client_transcript(m);

    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_TLS12_CLIENT_CV);
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_CLIENT, TLS_KEY_EC, m, n, NULL), 0);
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_SERVER, TLS_KEY_EC, m, n, NULL), -EPERM);
    CU_ASSERT_EQUAL(tls_input_classify(m, n - 1, TLS_KEY_EC), TLS_INPUT_NONE);
    m[0] = 2; /* must start with a ClientHello */
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_NONE);
}

static void t_refused_inputs(void)
{
    /* A JWS signing input (what a token for the CA would need signed). */
    static const char jws[] =
        "eyJhbGciOiJFUzI1NiIsImtpZCI6InRodW1iIiwidHlwIjoiSldUIn0."
        "eyJhdWQiOiJodHRwczovL2NhLmludGVybmFsLnRlc3Q6OTQ0My8xLjAvcmVuZXciLCJz"
        "dWIiOiJhcGkuaW50ZXJuYWwudGVzdCJ9";
    /* The start of a DER TBSCertificate / CSR. */
    static const uint8_t der[] = { 0x30, 0x82, 0x01, 0x0a, 0xa0, 0x03,
                                   0x02, 0x01, 0x02, 0x02, 0x01, 0x01 };
    const char *why = NULL;
    uint8_t digest[32] = { 1 };

    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_SERVER, TLS_KEY_EC, (const uint8_t *)jws,
                                      strlen(jws), &why),
                    -EPERM);
    CU_ASSERT_STRING_EQUAL(why, "no TLS handshake signature input");
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_CLIENT, TLS_KEY_EC, (const uint8_t *)jws,
                                      strlen(jws), NULL),
                    -EPERM);
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_SERVER, TLS_KEY_EC, der, sizeof(der), NULL),
                    -EPERM);
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_SERVER, TLS_KEY_EC, digest, 32, NULL), -EPERM);
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_SERVER, TLS_KEY_EC, m, 0, NULL), -EPERM);
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_SERVER, TLS_KEY_EC, NULL, 0, NULL), -EPERM);
    CU_ASSERT_EQUAL(tls_purpose_check(0, TLS_KEY_EC, m, 0, NULL), -EPERM);
}

static size_t tlv(uint8_t *out, uint8_t tag, const uint8_t *c, size_t n)
{
    size_t h = 0;

    out[h++] = tag;
    if (n >= 128)
        out[h++] = 0x81;
    out[h++] = (uint8_t)n;
    memmove(out + h, c, n);
    return h + n;
}

/* A CSR's CertificationRequestInfo can be shaped so that bytes 64.. read
 * as ECDHE params (named curve secp384r1, 97-byte point to the end): it
 * must still be refused. */
static void t_asn1_shaped_like_ske(void)
{
    static const uint8_t cn_oid[] = { 0x06, 0x03, 0x55, 0x04, 0x03 };
    uint8_t subj[64], atv[96], rdn[100], name[104], body[200], cri[210];
    uint8_t spki[91];
    size_t n = 0, off = 0;

    memset(spki, 0x42, sizeof(spki));
    spki[0] = 0x30;
    spki[1] = 89; /* SEQUENCE of 89 bytes: one OCTET STRING of 87 */
    spki[2] = 0x04;
    spki[3] = 87;
    /* find the subject length that puts the fixed bytes at offset 64 */
    for (size_t slen = 30; slen < 60; slen++) {
        size_t a, r, nm, b;

        memset(subj, 'A', slen);
        /* AttributeTypeAndValue ::= SEQUENCE { OID cn, UTF8String } */
        atv[0] = 0x30;
        memcpy(atv + 2, cn_oid, 5);
        a = 2 + 5 + tlv(atv + 7, 0x0c, subj, slen);
        atv[1] = (uint8_t)(a - 2);
        r = tlv(rdn, 0x31, atv, a);
        nm = tlv(name, 0x30, rdn, r);
        b = 0;
        body[b++] = 0x02;
        body[b++] = 0x01;
        body[b++] = 0x00;
        memcpy(body + b, name, nm);
        b += nm;
        memcpy(body + b, spki, sizeof(spki));
        b += sizeof(spki);
        body[b++] = 0xa0;
        body[b++] = 0x00;
        n = tlv(cri, 0x30, body, b);
        if (n != 68 + 97)
            continue;
        /* the offset of the subject's text inside cri */
        off = n - 2 - sizeof(spki) - slen;
        if (off > 64 || off + slen < 69)
            continue;
        cri[64] = 3;
        cri[65] = 0;
        cri[66] = 24;
        cri[67] = 97;
        cri[68] = 0x04;
        break;
    }
    CU_ASSERT_EQUAL_FATAL(n, 165);
    CU_ASSERT_TRUE_FATAL(off > 0 && off <= 64);
    /* without the ASN.1 rule it would pass as a ServerKeyExchange... */
    CU_ASSERT_EQUAL(cri[67], 97);
    /* ...with it, it is recognised and refused */
    CU_ASSERT_EQUAL(tls_input_classify(cri, n, TLS_KEY_EC), TLS_INPUT_ASN1);
    CU_ASSERT_EQUAL(tls_purpose_check(TLS_ROLE_SERVER, TLS_KEY_EC, cri, n, NULL), -EPERM);
    /* A real ServerKeyExchange whose client random merely starts with a
     * SEQUENCE tag is still accepted. */
    n = tls12_ske_ecdhe(m, 24, "P-384", 97);
    m[0] = 0x30;
    m[1] = (uint8_t)(n - 2);
    CU_ASSERT_EQUAL(tls_input_classify(m, n, TLS_KEY_EC), TLS_INPUT_TLS12_SKE);
}

int cu_register(void)
{
    static const struct cu_test tests[] = {
        { "TLS 1.3 CertificateVerify", t_tls13 },
        { "TLS 1.2 ServerKeyExchange", t_tls12_ske },
        { "TLS 1.2 client CertificateVerify", t_tls12_client_cv },
        { "client transcript shaped like DHE params", t_client_cv_shaped_like_dhe },
        { "JWS, DER, digests refused", t_refused_inputs },
        { "ASN.1 shaped like a ServerKeyExchange refused", t_asn1_shaped_like_ske },
        { NULL, NULL },
    };

    return cu_add_suite("tls-purpose", tests);
}
