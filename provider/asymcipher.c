/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RSA decryption is not offered.  A TLS 1.2 static RSA key exchange (the
 * kRSA cipher suites such as AES128-GCM-SHA256, still in OpenSSL 3.0's
 * default list) would need shortcertd to decrypt the premaster secret, an
 * oracle (Bleichenbacher) we do not build.  This table exists only so
 * that such a handshake fails with a sentence that says what to change,
 * instead of libcrypto's "operation not supported for this keytype".
 */
#include <openssl/core_names.h>

#include "prov.h"

static OSSL_FUNC_asym_cipher_newctx_fn rsa_dec_newctx;
static OSSL_FUNC_asym_cipher_freectx_fn rsa_dec_freectx;
static OSSL_FUNC_asym_cipher_decrypt_init_fn rsa_dec_init;
static OSSL_FUNC_asym_cipher_decrypt_fn rsa_dec_decrypt;

static void *rsa_dec_newctx(void *provctx)
{
    return provctx; /* nothing to keep: every call fails */
}

static void rsa_dec_freectx(void *vctx)
{
}

static int refuse(struct prov_ctx *prov)
{
    return PROV_FAIL(prov, PROV_R_NO_DECRYPTION,
                     "shortcert: RSA decryption (static RSA key exchange) is "
                     "not offered; configure ECDHE-only ciphers");
}

static int rsa_dec_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return refuse(vctx);
}

static int rsa_dec_decrypt(void *vctx, unsigned char *out, size_t *outlen,
                           size_t outsize, const unsigned char *in,
                           size_t inlen)
{
    return refuse(vctx);
}

const OSSL_DISPATCH prov_rsa_asym_cipher_functions[] = {
    { OSSL_FUNC_ASYM_CIPHER_NEWCTX, (void (*)(void))rsa_dec_newctx },
    { OSSL_FUNC_ASYM_CIPHER_FREECTX, (void (*)(void))rsa_dec_freectx },
    { OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, (void (*)(void))rsa_dec_init },
    { OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))rsa_dec_decrypt },
    { 0, NULL },
};
