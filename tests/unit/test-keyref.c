/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the key reference: PEM round trip, no private material in
 * it, strict decoding (tampered generation, trailing bytes, non-DER,
 * wrong version, bad identity), and the generation id being the SPKI hash.
 */
#include <string.h>

#include <CUnit/CUnit.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cu-main.h"
#include "keyref.h"

static EVP_PKEY *key;

static int setup(void)
{
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return key ? 0 : -1;
}

/* PEM out, DER in: the same identity, generation and public key. */
static void roundtrip(EVP_PKEY *k)
{
    struct keyref ref, got;
    BIO *b = BIO_new(BIO_s_mem());
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    const unsigned char *p;
    EVP_PKEY *pub;

    CU_ASSERT_EQUAL_FATAL(keyref_from_pkey(NULL, "api", k, &ref), 0);
    CU_ASSERT_EQUAL(keyref_write_pem(b, &ref), 0);
    CU_ASSERT_EQUAL_FATAL(PEM_read_bio(b, &name, &header, &data, &len), 1);
    CU_ASSERT_STRING_EQUAL(name, KEYREF_PEM_LABEL);
    CU_ASSERT_EQUAL_FATAL(keyref_decode_der(NULL, data, (size_t)len, &got), 0);
    CU_ASSERT_STRING_EQUAL(got.identity, "api");
    CU_ASSERT_EQUAL(memcmp(got.generation, ref.generation, 32), 0);
    CU_ASSERT_EQUAL(got.spki_len, ref.spki_len);
    p = got.spki;
    pub = d2i_PUBKEY(NULL, &p, (long)got.spki_len);
    CU_ASSERT_PTR_NOT_NULL(pub);
    CU_ASSERT_EQUAL(EVP_PKEY_eq(pub, k), 1);
    EVP_PKEY_free(pub);
    keyref_done(&got);
    keyref_done(&ref);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(b);
}

static void t_pem_roundtrip(void)
{
    roundtrip(key);
}

/* Every key type shortcertd makes: the reference round-trips, and the
 * private key's bytes are nowhere in it. */
static void t_every_key_type(void)
{
    EVP_PKEY *keys[] = {
        EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"),
        EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048),
        EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072),
        EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
    };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        struct keyref ref;
        uint8_t *der = NULL, priv[512];
        size_t len = 0, plen = sizeof(priv);
        BIGNUM *d = NULL;

        CU_ASSERT_PTR_NOT_NULL_FATAL(keys[i]);
        roundtrip(keys[i]);
        CU_ASSERT_EQUAL_FATAL(keyref_from_pkey(NULL, "api", keys[i], &ref), 0);
        CU_ASSERT_EQUAL_FATAL(keyref_encode_der(&ref, &der, &len), 0);
        CU_ASSERT(len <= KEYREF_DER_MAX);
        if (EVP_PKEY_is_a(keys[i], "ED25519")) {
            CU_ASSERT_FATAL(EVP_PKEY_get_raw_private_key(keys[i], priv, &plen) == 1);
        } else {
            CU_ASSERT_FATAL(EVP_PKEY_get_bn_param(keys[i],
                                                  EVP_PKEY_is_a(keys[i], "RSA")
                                                      ? "d"
                                                      : "priv",
                                                  &d) == 1);
            plen = (size_t)BN_bn2bin(d, priv);
        }
        CU_ASSERT(plen >= 32 && memmem(der, len, priv, 16) == NULL &&
                  memmem(der, len, priv + plen - 16, 16) == NULL);
        OPENSSL_cleanse(priv, sizeof(priv));
        BN_clear_free(d);
        OPENSSL_free(der);
        keyref_done(&ref);
        EVP_PKEY_free(keys[i]);
    }
}

/* The reference must not contain the private scalar in any form. */
static void t_no_private_material(void)
{
    struct keyref ref;
    BIGNUM *d = NULL;
    unsigned char be[32], le[32];
    BIO *b = BIO_new(BIO_s_mem());
    char *pem;
    long n;

    CU_ASSERT_EQUAL_FATAL(keyref_from_pkey(NULL, "api", key, &ref), 0);
    CU_ASSERT_EQUAL_FATAL(keyref_write_pem(b, &ref), 0);
    CU_ASSERT_EQUAL_FATAL(EVP_PKEY_get_bn_param(key, "priv", &d), 1);
    CU_ASSERT_EQUAL(BN_bn2binpad(d, be, 32), 32);
    CU_ASSERT_EQUAL(BN_bn2lebinpad(d, le, 32), 32);
    for (size_t i = 0; i + 8 <= ref.spki_len; i++) {
        CU_ASSERT_NOT_EQUAL(memcmp(ref.spki + i, be, 8), 0);
        CU_ASSERT_NOT_EQUAL(memcmp(ref.spki + i, le, 8), 0);
    }
    n = BIO_get_mem_data(b, &pem);
    CU_ASSERT_TRUE(n > 0);
    CU_ASSERT_PTR_NULL(memmem(pem, (size_t)n, "PRIVATE", 7));
    BN_clear_free(d);
    keyref_done(&ref);
    BIO_free(b);
}

static void t_strict_decode(void)
{
    struct keyref ref, got;
    uint8_t *der = NULL, *t;
    size_t len = 0;

    CU_ASSERT_EQUAL_FATAL(keyref_from_pkey(NULL, "web", key, &ref), 0);
    CU_ASSERT_EQUAL_FATAL(keyref_encode_der(&ref, &der, &len), 0);
    t = OPENSSL_malloc(len + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);

    /* trailing byte */
    memcpy(t, der, len);
    t[len] = 0;
    CU_ASSERT_EQUAL(keyref_decode_der(NULL, t, len + 1, &got), -EBADMSG);
    /* truncations */
    for (size_t i = 0; i < len; i++)
        CU_ASSERT_EQUAL(keyref_decode_der(NULL, der, i, &got), -EBADMSG);
    /* a flipped bit in the last byte (inside the SPKI's public point) no
     * longer hashes to the generation */
    memcpy(t, der, len);
    t[len - 1] ^= 1;
    CU_ASSERT_EQUAL(keyref_decode_der(NULL, t, len, &got), -EPROTO);
    /* version 2: byte 4 is the INTEGER value (SEQUENCE hdr 2/3 bytes) */
    memcpy(t, der, len);
    {
        size_t off = (t[1] & 0x80) ? 2 + (t[1] & 0x7f) : 2;

        CU_ASSERT_EQUAL(t[off], 0x02); /* INTEGER */
        t[off + 2] = 2;
        CU_ASSERT_EQUAL(keyref_decode_der(NULL, t, len, &got), -EBADMSG);
        /* a bad identity character */
        memcpy(t, der, len);
        CU_ASSERT_EQUAL(t[off + 3], 0x0c); /* UTF8String */
        t[off + 5] = '/';
        CU_ASSERT_EQUAL(keyref_decode_der(NULL, t, len, &got), -EBADMSG);
    }
    /* a non-minimal length (BER, not DER) is refused */
    if (der[1] == 0x81) {
        uint8_t *ber = OPENSSL_malloc(len + 1);

        CU_ASSERT_PTR_NOT_NULL_FATAL(ber);
        ber[0] = 0x30;
        ber[1] = 0x82;
        ber[2] = 0x00;
        memcpy(ber + 3, der + 2, len - 2);
        CU_ASSERT_EQUAL(keyref_decode_der(NULL, ber, len + 1, &got), -EBADMSG);
        OPENSSL_free(ber);
    } else {
        CU_FAIL("expected a long-form length in the sample encoding");
    }
    CU_ASSERT_EQUAL(keyref_decode_der(NULL, der, 0, &got), -EBADMSG);
    CU_ASSERT_EQUAL(keyref_decode_der(NULL, der, KEYREF_DER_MAX + 1, &got),
                    -EBADMSG);
    /* the untouched encoding still decodes */
    CU_ASSERT_EQUAL(keyref_decode_der(NULL, der, len, &got), 0);
    keyref_done(&got);
    OPENSSL_free(t);
    OPENSSL_free(der);
    keyref_done(&ref);
}

static void t_generation_is_spki_hash(void)
{
    struct keyref a, b;
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    unsigned char *spki = NULL;
    unsigned char md[32];
    int n = i2d_PUBKEY(key, &spki);

    CU_ASSERT_TRUE_FATAL(n > 0 && other);
    CU_ASSERT_EQUAL(EVP_Digest(spki, (size_t)n, md, NULL, EVP_sha256(), NULL), 1);
    CU_ASSERT_EQUAL_FATAL(keyref_from_pkey(NULL, "a", key, &a), 0);
    CU_ASSERT_EQUAL_FATAL(keyref_from_pkey(NULL, "a", other, &b), 0);
    CU_ASSERT_EQUAL(memcmp(a.generation, md, 32), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a.generation, b.generation, 32), 0);
    CU_ASSERT_EQUAL(keyref_from_pkey(NULL, "bad name", key, &b), -EINVAL);
    {
        char hex[65];

        keyref_generation_hex(a.generation, 4, hex);
        CU_ASSERT_EQUAL(strlen(hex), 8);
    }
    keyref_done(&a);
    keyref_done(&b);
    OPENSSL_free(spki);
    EVP_PKEY_free(other);
}

static void t_parse_uri(void)
{
    static const struct {
        const char *uri;
        const char *want; /* NULL: refused */
    } cases[] = {
        { "shortcert:api", "api" },
        { "SHORTCERT:web-1.x_y", "web-1.x_y" },
        { "shortcert:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
        { "shortcert:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
          NULL },
        { "shortcert:", NULL },
        { "shortcert", NULL },
        { "shortcer:api", NULL },
        { "shortcertx:api", NULL },
        { "file:api", NULL },
        { "shortcert://api", NULL },
        { "shortcert:api?socket=/x", NULL },
        { "shortcert:api#f", NULL },
        { "shortcert:a%20b", NULL },
        { "shortcert:-api", NULL },
        { "shortcert: api", NULL },
        { "shortcert:api\n", NULL },
        { "", NULL },
    };
    char name[IPC_IDENTITY_MAX + 1];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int r = keyref_parse_uri(cases[i].uri, name);

        if (cases[i].want) {
            CU_ASSERT_EQUAL(r, 0);
            if (r == 0)
                CU_ASSERT_STRING_EQUAL(name, cases[i].want);
        } else {
            CU_ASSERT_EQUAL(r, -EINVAL);
        }
    }
    CU_ASSERT_EQUAL(keyref_parse_uri(NULL, name), -EINVAL);
}

int cu_register(void)
{
    static const struct cu_test tests[] = {
        { "PEM round trip", t_pem_roundtrip },
        { "every key type: round trip, no private bytes", t_every_key_type },
        { "store URI parsing", t_parse_uri },
        { "no private material", t_no_private_material },
        { "strict decoding", t_strict_decode },
        { "generation is the SPKI hash", t_generation_is_spki_hash },
        { NULL, NULL },
    };

    if (setup() < 0)
        return -1;
    return cu_add_suite("keyref", tests);
}
