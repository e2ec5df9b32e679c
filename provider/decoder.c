/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decoders that turn a shortcert key reference file into an EVP_PKEY, so
 * that unmodified services load it as their "private key" through
 * PEM_read_bio_PrivateKey, SSL_CTX_use_PrivateKey_file, OSSL_DECODER or
 * OSSL_STORE.  Two steps, as libcrypto chains decoders by name: "DER"
 * (input=pem) reads one PEM block and passes on only our label, tagged with
 * the structure name "shortcert-ref"; the key-type decoder (input=der,
 * structure=shortcert-ref) decodes the reference strictly, builds the key
 * object and hands it over by reference.  The OpenSSL 3.0 default pem2der
 * drops labels it does not know, which is why the PEM step is ours.  The
 * password callback is never called: a reference holds no secret, and
 * postgres refuses to reload a key that asked for one.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include "prov.h"

struct dec_ctx {
    struct prov_ctx *prov;
    const struct prov_keytype *type; /* NULL for the PEM step */
    int selection;                   /* of the last decode() */
};

static OSSL_FUNC_decoder_newctx_fn dec_pem_newctx;
static OSSL_FUNC_decoder_freectx_fn dec_freectx;
static OSSL_FUNC_decoder_decode_fn dec_pem_decode;
static OSSL_FUNC_decoder_decode_fn dec_ref_decode;
static OSSL_FUNC_decoder_export_object_fn dec_ref_export_object;

static struct dec_ctx *dec_newctx(void *provctx,
                                  const struct prov_keytype *type)
{
    struct dec_ctx *ctx = OPENSSL_zalloc(sizeof(*ctx));

    if (!ctx)
        return NULL;
    ctx->prov = provctx;
    ctx->type = type;
    return ctx;
}

static void *dec_pem_newctx(void *provctx)
{
    return dec_newctx(provctx, NULL);
}

static void dec_freectx(void *vctx)
{
    OPENSSL_free(vctx);
}

/* --- PEM -> DER, our label only ------------------------------------------ */

static int dec_pem_decode(void *vctx, OSSL_CORE_BIO *cin, int selection,
                          OSSL_CALLBACK *data_cb, void *data_cbarg,
                          OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    struct dec_ctx *ctx = vctx;
    _cleanup_bio_ BIO *in = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    int ok = 1, got;

    in = BIO_new_from_core_bio(ctx->prov->libctx, cin);
    if (!in)
        return 0;
    /* PEM_read_bio_ex skips text before the BEGIN line (our reference files
     * start with a few lines of explanation).  Its "no start line" at the
     * end of the input is not an error for us: the errors go, and we
     * return "empty-handed" (1 without a callback), like for a foreign
     * label, so the other decoders and the caller's next-block loop (a
     * certificate chain before the reference) carry on.  Foreign blocks
     * may be private keys, so they land in secure, wiped memory. */
    ERR_set_mark();
    got = PEM_read_bio_ex(in, &name, &header, &data, &len,
                          PEM_FLAG_SECURE | PEM_FLAG_EAY_COMPATIBLE);
    (void)ERR_pop_to_mark();
    if (got > 0 && strcmp(name, KEYREF_PEM_LABEL) == 0) {
        OSSL_PARAM params[3];

        params[0] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA,
                                                      data, (size_t)len);
        params[1] = OSSL_PARAM_construct_utf8_string(
            OSSL_OBJECT_PARAM_DATA_STRUCTURE, (char *)PROV_REF_STRUCTURE, 0);
        params[2] = OSSL_PARAM_construct_end();
        ok = data_cb(params, data_cbarg);
    }
    if (got > 0) {
        OPENSSL_secure_free(name);
        OPENSSL_secure_free(header);
        OPENSSL_secure_clear_free(data, (size_t)len);
    }
    return ok;
}

/* --- reference -> key object --------------------------------------------- */

/* Read the whole (small) input; -EMSGSIZE if it exceeds max. */
static int read_all(BIO *in, uint8_t *buf, size_t max, size_t *ret_len)
{
    size_t len = 0, n;

    for (;;) {
        if (!BIO_read_ex(in, buf + len, max + 1 - len, &n) || n == 0)
            break;
        len += n;
        if (len > max)
            return -EMSGSIZE;
    }
    *ret_len = len;
    return 0;
}

/* Does this DER start like a ShortcertKeyRef (SEQUENCE { INTEGER 1,
 * UTF8String ...)?  Then a decoding failure is a damaged reference and
 * deserves a clear error; anything else is someone else's DER, which
 * reaches us when a caller decodes untagged DER with every decoder. */
static bool looks_like_keyref(const uint8_t *der, size_t len)
{
    size_t off = 2;

    if (len < 8 || der[0] != 0x30)
        return false;
    if (der[1] == 0x81)
        off = 3;
    else if (der[1] == 0x82)
        off = 4;
    else if (der[1] & 0x80)
        return false;
    return len >= off + 4 && der[off] == 0x02 && der[off + 1] == 0x01 &&
           der[off + 2] == KEYREF_VERSION && der[off + 3] == 0x0c;
}

static int dec_ref_decode(void *vctx, OSSL_CORE_BIO *cin, int selection,
                          OSSL_CALLBACK *data_cb, void *data_cbarg,
                          OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    struct dec_ctx *ctx = vctx;
    struct prov_ctx *prov = ctx->prov;
    _cleanup_bio_ BIO *in = NULL;
    _cleanup_key_ struct prov_key *key = NULL;
    struct keyref ref = { 0 };
    uint8_t der[KEYREF_DER_MAX + 1];
    OSSL_PARAM params[4];
    int object_type = OSSL_OBJECT_PKEY;
    size_t len = 0;
    int r, ok;

    ctx->selection = selection;
    in = BIO_new_from_core_bio(prov->libctx, cin);
    if (!in)
        return 0;
    if (read_all(in, der, KEYREF_DER_MAX, &len) < 0)
        return 1; /* far too big to be ours */
    r = keyref_decode_der(prov->libctx, der, len, &ref);
    if (r < 0) {
        if (!looks_like_keyref(der, len))
            return 1;
        if (r == -EPROTO)
            return PROV_FAIL(prov, PROV_R_BAD_REFERENCE,
                             "shortcert: key reference rejected: its key "
                             "generation does not match the public key it "
                             "holds (the file was modified or damaged)");
        return PROV_FAIL(prov, PROV_R_BAD_REFERENCE,
                         "shortcert: key reference rejected: not a valid "
                         "version %d reference (damaged file?)",
                         KEYREF_VERSION);
    }
    r = prov_key_from_ref(prov, ctx->type, &ref, &key);
    keyref_done(&ref);
    if (r == -EPROTOTYPE)
        return 1; /* a reference to another key type */
    if (r < 0)
        return 0; /* error already raised */

    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &object_type);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 (char *)ctx->type->name, 0);
    /* The reference is the address of our pointer: the keymgmt's load()
     * takes the key and clears the pointer; if nobody loads it, the
     * cleanup attribute frees it. */
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE,
                                                  &key, sizeof(key));
    params[3] = OSSL_PARAM_construct_end();
    ok = data_cb(params, data_cbarg);
    return ok;
}

/* libcrypto calls this only when it picked a keymgmt that is not ours for
 * the object.  The public half can go there; a private key cannot, and
 * exporting only the public half for a private-key load would hand the
 * service a key that fails at its first handshake. */
static int dec_ref_export_object(void *vctx, const void *objref,
                                 size_t objref_sz, OSSL_CALLBACK *export_cb,
                                 void *export_cbarg)
{
    struct dec_ctx *ctx = vctx;
    const struct prov_key *key;

    if (!objref || objref_sz != sizeof(key))
        return 0;
    key = *(struct prov_key *const *)objref;
    if (!key || key->magic != PROV_KEY_MAGIC)
        return 0;
    if (ctx->selection == 0 ||
        (ctx->selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY))
        return 0;
    return prov_key_export_public(key, ctx->selection, export_cb,
                                  export_cbarg);
}

const OSSL_DISPATCH prov_pem_decoder_functions[] = {
    { OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_pem_newctx },
    { OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx },
    { OSSL_FUNC_DECODER_DECODE, (void (*)(void))dec_pem_decode },
    { 0, NULL },
};

/* One reference decoder per key type (EC, RSA, ED25519): each takes only
 * references to keys of its type and passes on the others. */
#define REF_DECODER(t)                                                       \
    static OSSL_FUNC_decoder_newctx_fn dec_##t##_newctx;                     \
    static void *dec_##t##_newctx(void *provctx)                             \
    {                                                                        \
        return dec_newctx(provctx, &prov_keytype_##t);                       \
    }                                                                        \
    const OSSL_DISPATCH prov_##t##_decoder_functions[] = {                   \
        { OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_##t##_newctx },      \
        { OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx },          \
        { OSSL_FUNC_DECODER_DECODE, (void (*)(void))dec_ref_decode },        \
        { OSSL_FUNC_DECODER_EXPORT_OBJECT,                                   \
          (void (*)(void))dec_ref_export_object },                           \
        { 0, NULL },                                                         \
    }

REF_DECODER(ec);
REF_DECODER(rsa);
REF_DECODER(ed25519);
