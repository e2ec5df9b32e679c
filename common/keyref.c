/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Encoding and strict decoding of the key reference (include/keyref.h).
 * Uses libcrypto's ASN.1 templates; the SubjectPublicKeyInfo is kept as raw
 * DER (ASN1_ANY) so decoding a reference never instantiates a key here.
 */
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "keyref.h"

typedef struct {
    int32_t version;
    ASN1_UTF8STRING *identity;
    ASN1_OCTET_STRING *generation;
    ASN1_TYPE *spki;
} SC_KEYREF;

DECLARE_ASN1_FUNCTIONS(SC_KEYREF)

ASN1_SEQUENCE(SC_KEYREF) = {
    ASN1_EMBED(SC_KEYREF, version, INT32),
    ASN1_SIMPLE(SC_KEYREF, identity, ASN1_UTF8STRING),
    ASN1_SIMPLE(SC_KEYREF, generation, ASN1_OCTET_STRING),
    ASN1_SIMPLE(SC_KEYREF, spki, ASN1_ANY),
} ASN1_SEQUENCE_END(SC_KEYREF)

IMPLEMENT_ASN1_FUNCTIONS(SC_KEYREF)

int keyref_generation(OSSL_LIB_CTX *libctx, const uint8_t *spki,
                      size_t spki_len, uint8_t ret[IPC_GENERATION_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;

    if (!EVP_Q_digest(libctx, "SHA256", NULL, spki, spki_len, md, &mdlen) ||
        mdlen != IPC_GENERATION_LEN)
        return -EIO;
    memcpy(ret, md, IPC_GENERATION_LEN);
    return 0;
}

void keyref_done(struct keyref *ref)
{
    OPENSSL_free(ref->spki);
    *ref = (struct keyref){ 0 };
}

int keyref_from_pkey(OSSL_LIB_CTX *libctx, const char *identity,
                     EVP_PKEY *pkey, struct keyref *ret)
{
    struct keyref r = { 0 };
    unsigned char *der = NULL;
    size_t idlen = strlen(identity);
    int n, e;

    if (!ipc_identity_valid(identity, idlen))
        return -EINVAL;
    n = i2d_PUBKEY(pkey, &der);
    if (n <= 0)
        return -EINVAL;
    memcpy(r.identity, identity, idlen + 1);
    r.spki = der;
    r.spki_len = (size_t)n;
    e = keyref_generation(libctx, r.spki, r.spki_len, r.generation);
    if (e < 0) {
        keyref_done(&r);
        return e;
    }
    *ret = r;
    return 0;
}

int keyref_encode_der(const struct keyref *ref, uint8_t **ret_der,
                      size_t *ret_len)
{
    SC_KEYREF *k = SC_KEYREF_new();
    const unsigned char *p = ref->spki;
    unsigned char *der = NULL;
    int n, r = -ENOMEM;

    if (!k)
        return -ENOMEM;
    if (!ipc_identity_valid(ref->identity, strlen(ref->identity))) {
        r = -EINVAL;
        goto out;
    }
    k->version = KEYREF_VERSION;
    if (!ASN1_STRING_set(k->identity, ref->identity, -1) ||
        !ASN1_OCTET_STRING_set(k->generation, ref->generation,
                               IPC_GENERATION_LEN))
        goto out;
    ASN1_TYPE_free(k->spki);
    k->spki = d2i_ASN1_TYPE(NULL, &p, (long)ref->spki_len);
    if (!k->spki || p != ref->spki + ref->spki_len ||
        ASN1_TYPE_get(k->spki) != V_ASN1_SEQUENCE) {
        r = -EINVAL;
        goto out;
    }
    n = i2d_SC_KEYREF(k, &der);
    if (n <= 0)
        goto out;
    *ret_der = der;
    *ret_len = (size_t)n;
    r = 0;
out:
    SC_KEYREF_free(k);
    return r;
}

int keyref_decode_der(OSSL_LIB_CTX *libctx, const uint8_t *der, size_t len,
                      struct keyref *ret)
{
    const unsigned char *p = der;
    SC_KEYREF *k = NULL;
    unsigned char *re = NULL;
    uint8_t gen[IPC_GENERATION_LEN];
    struct keyref r = { 0 };
    const ASN1_STRING *seq;
    int n, e = -EBADMSG;

    if (len == 0 || len > KEYREF_DER_MAX)
        return -EBADMSG;
    k = d2i_SC_KEYREF(NULL, &p, (long)len);
    if (!k || p != der + len)
        goto out;
    /* Canonical DER only: a re-encoding must give back the same bytes. */
    n = i2d_SC_KEYREF(k, &re);
    if (n != (int)len || memcmp(re, der, len) != 0)
        goto out;
    if (k->version != KEYREF_VERSION ||
        ASN1_STRING_length(k->identity) > IPC_IDENTITY_MAX ||
        !ipc_identity_valid((const char *)ASN1_STRING_get0_data(k->identity),
                            (size_t)ASN1_STRING_length(k->identity)) ||
        ASN1_STRING_length(k->generation) != IPC_GENERATION_LEN ||
        ASN1_TYPE_get(k->spki) != V_ASN1_SEQUENCE)
        goto out;
    seq = k->spki->value.sequence; /* the whole TLV of the SEQUENCE */
    if (ASN1_STRING_length(seq) <= 0)
        goto out;
    memcpy(r.identity, ASN1_STRING_get0_data(k->identity),
           (size_t)ASN1_STRING_length(k->identity));
    memcpy(r.generation, ASN1_STRING_get0_data(k->generation),
           IPC_GENERATION_LEN);
    r.spki_len = (size_t)ASN1_STRING_length(seq);
    r.spki = OPENSSL_memdup(ASN1_STRING_get0_data(seq), r.spki_len);
    if (!r.spki) {
        e = -ENOMEM;
        goto out;
    }
    e = keyref_generation(libctx, r.spki, r.spki_len, gen);
    if (e < 0)
        goto out;
    if (CRYPTO_memcmp(gen, r.generation, IPC_GENERATION_LEN) != 0) {
        e = -EPROTO;
        goto out;
    }
    *ret = r;
    r = (struct keyref){ 0 };
    e = 0;
out:
    keyref_done(&r);
    OPENSSL_free(re);
    SC_KEYREF_free(k);
    return e;
}

void keyref_generation_hex(const uint8_t gen[IPC_GENERATION_LEN], size_t n,
                           char *buf)
{
    static const char hex[] = "0123456789abcdef";

    if (n > IPC_GENERATION_LEN)
        n = IPC_GENERATION_LEN;
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = hex[gen[i] >> 4];
        buf[2 * i + 1] = hex[gen[i] & 0xf];
    }
    buf[2 * n] = '\0';
}

int keyref_write_pem(BIO *out, const struct keyref *ref)
{
    uint8_t *der = NULL;
    size_t len = 0;
    char hex[2 * IPC_GENERATION_LEN + 1];
    int r;

    r = keyref_encode_der(ref, &der, &len);
    if (r < 0)
        return r;
    keyref_generation_hex(ref->generation, IPC_GENERATION_LEN, hex);
    if (BIO_printf(out,
                   "shortcert key reference: identity '%s', key generation %s\n"
                   "This file holds no secret. The private key stays in "
                   "shortcertd; load this file\n"
                   "as the private key of an OpenSSL 3 service that has the "
                   "shortcert provider.\n",
                   ref->identity, hex) <= 0 ||
        !PEM_write_bio(out, KEYREF_PEM_LABEL, "", der, (long)len))
        r = -EIO;
    OPENSSL_free(der);
    return r;
}

int keyref_parse_uri(const char *uri, char ret[IPC_IDENTITY_MAX + 1])
{
    const size_t slen = sizeof(KEYREF_URI_SCHEME) - 1;
    size_t len;

    if (!uri)
        return -EINVAL;
    /* Bounded: never read past what a valid URI could be, plus its NUL. */
    len = strnlen(uri, KEYREF_URI_MAX + 1);
    if (len > KEYREF_URI_MAX || len <= slen + 1 || uri[slen] != ':')
        return -EINVAL;
    for (size_t i = 0; i < slen; i++) {
        char ch = uri[i];

        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != KEYREF_URI_SCHEME[i])
            return -EINVAL;
    }
    if (!ipc_identity_valid(uri + slen + 1, len - slen - 1))
        return -EINVAL;
    memcpy(ret, uri + slen + 1, len - slen - 1);
    ret[len - slen - 1] = '\0';
    return 0;
}
