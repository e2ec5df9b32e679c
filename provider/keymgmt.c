/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key management for keys whose private half lives in shortcertd.  A key
 * object is an identity, a key generation and the public half as a
 * default-provider EVP_PKEY in our child library context; libcrypto and
 * libssl learn everything they need (bits, security bits, maximum signature
 * size, group, encoded point) from that public half.  Private material is
 * never exported and never imported: an export whose selection includes the
 * private key fails, which is also what makes libcrypto fall back from the
 * default provider's signature to ours.  The implementation is shared by
 * every key type (EC, RSA, Ed25519) through struct prov_keytype.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "prov.h"

/* --- the key types ------------------------------------------------------ */

/* What get_params answers (forwarded to the public half).  bits,
 * security-bits and max-size must come together: libcrypto caches all
 * three from one call when the EVP_PKEY is made, and caches zeros if one
 * is missing (then RSA gets no PSS sigalg at all).  group-name is what
 * TLS 1.3 needs to pick an EC sigalg. */
#define KEYINFO_GETTABLE                                                     \
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),                              \
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),                 \
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL)

/* The digest names of the schemes: SHA-2 as OpenSSL and TLS spell them. */
#define MD_SHA256 { "SHA256", "SHA2-256", "SHA-256", "2.16.840.1.101.3.4.2.1", NULL }
#define MD_SHA384 { "SHA384", "SHA2-384", "SHA-384", "2.16.840.1.101.3.4.2.2", NULL }
#define MD_SHA512 { "SHA512", "SHA2-512", "SHA-512", "2.16.840.1.101.3.4.2.3", NULL }

/* EC: P-256 and P-384 (any named curve loads; shortcertd makes those). */

static const char *const ec_private_params[] = {
    OSSL_PKEY_PARAM_PRIV_KEY,
    NULL,
};

static const OSSL_PARAM ec_gettable[] = {
    KEYINFO_GETTABLE,
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL,
                           0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_X, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_Y, NULL, 0),
    OSSL_PARAM_END,
};

/* Public key and named-curve domain parameters: all we take or give. */
static const OSSL_PARAM ec_public_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL,
                           0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

/* DER AlgorithmIdentifiers of the signatures, for callers that build
 * certificates or CSRs with the key.  ecdsa-with-SHA256/384/512 (RFC
 * 5758); sha256/384/512WithRSAEncryption (RFC 4055); RSASSA-PSS with the
 * hash, MGF1 with the same hash and the salt as long as the hash, as
 * OpenSSL encodes it (hash parameters NULL); Ed25519 (RFC 8410). */
#define ALGID_ECDSA(h) { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, (h) }
#define ALGID_RSA_PKCS1(h)                                                   \
    { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, (h), 0x05, 0x00 }
#define ALGID_SHA2(h) 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, (h), 0x05, 0x00
#define ALGID_RSA_PSS(h, salt)                                               \
    { 0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,      \
      0x01, 0x0a, 0x30, 0x34, 0xa0, 0x0f, ALGID_SHA2(h), 0xa1, 0x1c, 0x30,   \
      0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,      \
      0x08, ALGID_SHA2(h), 0xa2, 0x03, 0x02, 0x01, (salt) }

static const uint8_t algid_ecdsa_sha256[] = ALGID_ECDSA(0x02);
static const uint8_t algid_ecdsa_sha384[] = ALGID_ECDSA(0x03);
static const uint8_t algid_ecdsa_sha512[] = ALGID_ECDSA(0x04);
static const uint8_t algid_rsa_sha256[] = ALGID_RSA_PKCS1(0x0b);
static const uint8_t algid_rsa_sha384[] = ALGID_RSA_PKCS1(0x0c);
static const uint8_t algid_rsa_sha512[] = ALGID_RSA_PKCS1(0x0d);
static const uint8_t algid_pss_sha256[] = ALGID_RSA_PSS(0x01, 32);
static const uint8_t algid_pss_sha384[] = ALGID_RSA_PSS(0x02, 48);
static const uint8_t algid_pss_sha512[] = ALGID_RSA_PSS(0x03, 64);
static const uint8_t algid_ed25519[] = { 0x30, 0x05, 0x06, 0x03,
                                         0x2b, 0x65, 0x70 };

#define SCHEME(md, ipc, algid, pad, len)                                     \
    { md, ipc, algid, sizeof(algid), pad, len }

static const struct prov_sig_scheme ec_schemes[] = {
    SCHEME(MD_SHA256, IPC_SCHEME_ECDSA_SHA256, algid_ecdsa_sha256, 0, 32),
    SCHEME(MD_SHA384, IPC_SCHEME_ECDSA_SHA384, algid_ecdsa_sha384, 0, 48),
    SCHEME(MD_SHA512, IPC_SCHEME_ECDSA_SHA512, algid_ecdsa_sha512, 0, 64),
    { { NULL }, 0, NULL, 0, 0, 0 },
};

const struct prov_keytype prov_keytype_ec = {
    .name = "EC",
    .sig_name = "ECDSA",
    .need_group = true,
    .private_params = ec_private_params,
    .gettable = ec_gettable,
    .public_types = ec_public_types,
    .schemes = ec_schemes,
};

/* RSA (rsaEncryption keys): PKCS#1 v1.5 and PSS signatures.  No
 * decryption: static RSA key exchange is refused (asymcipher.c). */

static const char *const rsa_private_params[] = {
    OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
    OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
    OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
    NULL,
};

static const OSSL_PARAM rsa_gettable[] = {
    KEYINFO_GETTABLE,
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM rsa_public_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const struct prov_sig_scheme rsa_schemes[] = {
    SCHEME(MD_SHA256, IPC_SCHEME_RSA_PKCS1_SHA256, algid_rsa_sha256,
           RSA_PKCS1_PADDING, 32),
    SCHEME(MD_SHA384, IPC_SCHEME_RSA_PKCS1_SHA384, algid_rsa_sha384,
           RSA_PKCS1_PADDING, 48),
    SCHEME(MD_SHA512, IPC_SCHEME_RSA_PKCS1_SHA512, algid_rsa_sha512,
           RSA_PKCS1_PADDING, 64),
    SCHEME(MD_SHA256, IPC_SCHEME_RSA_PSS_SHA256, algid_pss_sha256,
           RSA_PKCS1_PSS_PADDING, 32),
    SCHEME(MD_SHA384, IPC_SCHEME_RSA_PSS_SHA384, algid_pss_sha384,
           RSA_PKCS1_PSS_PADDING, 48),
    SCHEME(MD_SHA512, IPC_SCHEME_RSA_PSS_SHA512, algid_pss_sha512,
           RSA_PKCS1_PSS_PADDING, 64),
    { { NULL }, 0, NULL, 0, 0, 0 },
};

const struct prov_keytype prov_keytype_rsa = {
    .name = "RSA",
    .sig_name = "RSA",
    .asym_name = "RSA",
    .default_pad = RSA_PKCS1_PADDING,
    .private_params = rsa_private_params,
    .gettable = rsa_gettable,
    .public_types = rsa_public_types,
    .schemes = rsa_schemes,
};

/* Ed25519: pure EdDSA, the whole message goes to shortcertd. */

static const char *const ed25519_private_params[] = {
    OSSL_PKEY_PARAM_PRIV_KEY,
    NULL,
};

static const OSSL_PARAM ed25519_gettable[] = {
    KEYINFO_GETTABLE,
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ed25519_public_types[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const struct prov_sig_scheme ed25519_schemes[] = {
    SCHEME({ NULL }, IPC_SCHEME_ED25519, algid_ed25519, 0, 0),
    { { NULL }, 0, NULL, 0, 0, 0 },
};

const struct prov_keytype prov_keytype_ed25519 = {
    .name = "ED25519",
    .sig_name = "ED25519",
    .private_params = ed25519_private_params,
    .gettable = ed25519_gettable,
    .public_types = ed25519_public_types,
    .schemes = ed25519_schemes,
};

/* --- the key object ------------------------------------------------------ */

struct prov_key *prov_key_new(struct prov_ctx *prov,
                              const struct prov_keytype *type)
{
    struct prov_key *key = OPENSSL_zalloc(sizeof(*key));

    if (!key) {
        (void)PROV_FAIL(prov, PROV_R_NO_MEMORY, "shortcert: out of memory");
        return NULL;
    }
    key->magic = PROV_KEY_MAGIC;
    atomic_init(&key->refs, 1);
    key->prov = prov;
    key->type = type;
    return key;
}

struct prov_key *prov_key_ref(struct prov_key *key)
{
    if (key)
        atomic_fetch_add(&key->refs, 1);
    return key;
}

void prov_key_unref(struct prov_key *key)
{
    if (!key || atomic_fetch_sub(&key->refs, 1) != 1)
        return;
    EVP_PKEY_free(key->pub);
    /* Not secret, but a freed key should not look like a live one. */
    OPENSSL_clear_free(key, sizeof(*key));
}

static int key_set_pub(struct prov_key *key, EVP_PKEY *pub)
{
    int size = EVP_PKEY_get_size(pub);

    if (size <= 0 || (size_t)size > IPC_SIG_MAX)
        return -EINVAL;
    key->pub = pub;
    key->max_sig = (size_t)size;
    return 0;
}

int prov_key_from_ref(struct prov_ctx *prov, const struct prov_keytype *type,
                      const struct keyref *ref, struct prov_key **ret)
{
    _cleanup_key_ struct prov_key *key = NULL;
    _cleanup_pkey_ EVP_PKEY *pub = NULL;
    const unsigned char *p = ref->spki;
    char group[64];

    /* The public half is decoded by the default provider in our child
     * context, never by us: no recursion, and its parser is the one
     * libssl trusts for peer keys anyway. */
    pub = d2i_PUBKEY_ex(NULL, &p, (long)ref->spki_len, prov->libctx,
                        PROV_INTERNAL_PROPQ);
    if (!pub || p != ref->spki + ref->spki_len) {
        (void)PROV_FAIL(prov, PROV_R_NO_DEFAULT_PROVIDER,
                        "shortcert: cannot decode the public key in the "
                        "reference for identity '%s'; is the default "
                        "provider activated (before shortcert)?",
                        ref->identity);
        return -ENOPKG;
    }
    if (!EVP_PKEY_is_a(pub, type->name))
        return -EPROTOTYPE; /* another key type's decoder will take it */
    if (type->need_group &&
        !EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                        sizeof(group), NULL)) {
        (void)PROV_FAIL(prov, PROV_R_BAD_REFERENCE,
                        "shortcert: the key reference for identity '%s' "
                        "holds an EC key without a named curve",
                        ref->identity);
        return -EINVAL;
    }
    key = prov_key_new(prov, type);
    if (!key)
        return -ENOMEM;
    if (key_set_pub(key, pub) < 0) {
        (void)PROV_FAIL(prov, PROV_R_BAD_REFERENCE,
                        "shortcert: the key in the reference for identity "
                        "'%s' has an unusable signature size",
                        ref->identity);
        return -EINVAL;
    }
    pub = NULL; /* owned by key now */
    key->can_sign = true;
    memcpy(key->identity, ref->identity, sizeof(key->identity));
    memcpy(key->generation, ref->generation, IPC_GENERATION_LEN);
    prov_debug(prov, "loaded reference for '%s' (%s, %zu-byte signatures)",
               key->identity, type->name, key->max_sig);
    *ret = TAKE_PTR(key);
    return 0;
}

int prov_key_export_public(const struct prov_key *key, int selection,
                           OSSL_CALLBACK *cb, void *cbarg)
{
    /* Silently 0 (no error raised): libcrypto asks for SELECT_ALL on every
     * handshake before falling back to our signature, and an error left on
     * the queue there would confuse services that print the queue. */
    if (!key || !key->pub || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY))
        return 0;
    if ((selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY |
                      OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) == 0)
        return 0;
    return EVP_PKEY_export(key->pub, selection, cb, cbarg);
}

/* --- dispatch functions, shared by every key type ------------------------- */

static OSSL_FUNC_keymgmt_free_fn km_free;
static OSSL_FUNC_keymgmt_has_fn km_has;
static OSSL_FUNC_keymgmt_get_params_fn km_get_params;
static OSSL_FUNC_keymgmt_match_fn km_match;
static OSSL_FUNC_keymgmt_import_fn km_import;
static OSSL_FUNC_keymgmt_export_fn km_export;
static OSSL_FUNC_keymgmt_dup_fn km_dup;

static void km_free(void *keydata)
{
    prov_key_unref(keydata);
}

static int km_has(const void *keydata, int selection)
{
    const struct prov_key *key = keydata;

    if (!key)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_ALL) == 0)
        return 1; /* an empty selection is vacuously true */
    if (!key->pub)
        return 0;
    /* libssl needs to know the key can sign, so PRIVATE is "yes" for keys
     * from a reference; the private half is in shortcertd, not here. */
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && !key->can_sign)
        return 0;
    return 1;
}

static bool param_listed(const OSSL_PARAM *list, const char *name)
{
    for (; list->key; list++)
        if (strcmp(list->key, name) == 0)
            return true;
    return false;
}

static int km_get_params(void *keydata, OSSL_PARAM params[])
{
    struct prov_key *key = keydata;
    OSSL_PARAM fwd[24];
    size_t map[24], n = 0;

    if (!key || !key->pub)
        return 0;
    /* Forward only what we declare gettable, so nothing but public
     * information can ever be answered through us. */
    for (size_t i = 0; params[i].key; i++) {
        if (!param_listed(key->type->gettable, params[i].key))
            continue;
        if (n == ELEMENTSOF(fwd) - 1)
            return 0;
        fwd[n] = params[i];
        map[n++] = i;
    }
    if (n == 0)
        return 1;
    fwd[n] = (OSSL_PARAM)OSSL_PARAM_END;
    if (!EVP_PKEY_get_params(key->pub, fwd))
        return 0;
    for (size_t i = 0; i < n; i++)
        params[map[i]].return_size = fwd[i].return_size;
    return 1;
}

static int km_match(const void *keydata1, const void *keydata2, int selection)
{
    const struct prov_key *a = keydata1, *b = keydata2;

    if (!a || !b || !a->pub || !b->pub)
        return 0;
    if (selection & OSSL_KEYMGMT_SELECT_KEYPAIR)
        /* The public key pins the private one (and the generation is its
         * hash), so comparing public halves is the whole answer. */
        return EVP_PKEY_eq(a->pub, b->pub) == 1;
    if (selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)
        return EVP_PKEY_parameters_eq(a->pub, b->pub) == 1;
    return 1;
}

static int km_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    struct prov_key *key = keydata;
    _cleanup_pkey_ctx_ EVP_PKEY_CTX *pctx = NULL;
    _cleanup_pkey_ EVP_PKEY *pub = NULL;
    int sel;

    if (!key || key->pub)
        return 0;
    /* Keys arrive here when libcrypto routes a default-provider key to our
     * signature (verification).  The public part is welcome; private
     * material never enters this process through us. */
    for (const char *const *p = key->type->private_params; *p; p++)
        if (OSSL_PARAM_locate_const(params, *p))
            return PROV_FAIL(key->prov, PROV_R_PRIVATE_IMPORT,
                             "shortcert: refusing to import a private %s "
                             "key; shortcert keys stay in shortcertd",
                             key->type->name);
    if (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY)
        sel = EVP_PKEY_PUBLIC_KEY;
    else if (selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)
        sel = EVP_PKEY_KEY_PARAMETERS;
    else
        return 0;
    pctx = EVP_PKEY_CTX_new_from_name(key->prov->libctx, key->type->name,
                                      PROV_INTERNAL_PROPQ);
    if (!pctx || EVP_PKEY_fromdata_init(pctx) <= 0 ||
        EVP_PKEY_fromdata(pctx, &pub, sel, (OSSL_PARAM *)params) <= 0)
        return 0;
    if (sel == EVP_PKEY_PUBLIC_KEY) {
        if (key_set_pub(key, pub) < 0)
            return 0;
    } else {
        key->pub = pub;
    }
    pub = NULL;
    return 1;
}

static int km_export(void *keydata, int selection, OSSL_CALLBACK *cb,
                     void *cbarg)
{
    return prov_key_export_public(keydata, selection, cb, cbarg);
}

static void *km_dup(const void *keydata_from, int selection)
{
    const struct prov_key *from = keydata_from;
    struct prov_key *key;

    if (!from || from->magic != PROV_KEY_MAGIC)
        return NULL;
    key = prov_key_new(from->prov, from->type);
    if (!key)
        return NULL;
    /* The public half is immutable once made; share it. */
    if (from->pub && EVP_PKEY_up_ref(from->pub)) {
        key->pub = from->pub;
        key->max_sig = from->max_sig;
    }
    key->can_sign = from->can_sign &&
                    (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
    memcpy(key->identity, from->identity, sizeof(key->identity));
    memcpy(key->generation, from->generation, IPC_GENERATION_LEN);
    return key;
}

/* Take the key a decoder of ours made: the reference is the address of its
 * pointer, which we clear so the decoder does not free what we now own. */
static void *key_load(const struct prov_keytype *type, const void *reference,
                      size_t reference_sz)
{
    struct prov_key *key;

    if (!reference || reference_sz != sizeof(key))
        return NULL;
    key = *(struct prov_key *const *)reference;
    if (!key || key->magic != PROV_KEY_MAGIC || key->type != type)
        return NULL;
    *(struct prov_key **)(void *)(uintptr_t)reference = NULL;
    return key;
}

static const char *query_operation_name(const struct prov_keytype *type,
                                        int operation_id)
{
    /* libssl looks up the signature by this name; the keymgmt name "EC"
     * would find nothing.  RSA names its asymmetric cipher only so that a
     * static RSA key exchange gets our clear refusal.  Other operations
     * (ECDH) are not ours. */
    switch (operation_id) {
    case OSSL_OP_SIGNATURE:
        return type->sig_name;
    case OSSL_OP_ASYM_CIPHER:
        return type->asym_name;
    default:
        return NULL;
    }
}

static const OSSL_PARAM *public_types(const struct prov_keytype *type,
                                      int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) ? NULL
                                                         : type->public_types;
}

/* --- the thin per-type wrappers and dispatch tables ----------------------- */

#define KEYMGMT_TYPE(t)                                                      \
    static OSSL_FUNC_keymgmt_new_fn t##_new;                                 \
    static OSSL_FUNC_keymgmt_load_fn t##_load;                               \
    static OSSL_FUNC_keymgmt_gettable_params_fn t##_gettable_params;         \
    static OSSL_FUNC_keymgmt_query_operation_name_fn t##_query_operation_name; \
    static OSSL_FUNC_keymgmt_import_types_fn t##_types_of;              \
                                                                             \
    static void *t##_new(void *provctx)                                      \
    {                                                                        \
        return prov_key_new(provctx, &prov_keytype_##t);                     \
    }                                                                        \
    static void *t##_load(const void *reference, size_t reference_sz)        \
    {                                                                        \
        return key_load(&prov_keytype_##t, reference, reference_sz);         \
    }                                                                        \
    static const OSSL_PARAM *t##_gettable_params(void *provctx)              \
    {                                                                        \
        return prov_keytype_##t.gettable;                                    \
    }                                                                        \
    static const char *t##_query_operation_name(int operation_id)            \
    {                                                                        \
        return query_operation_name(&prov_keytype_##t, operation_id);        \
    }                                                                        \
    static const OSSL_PARAM *t##_types_of(int selection)                 \
    {                                                                        \
        return public_types(&prov_keytype_##t, selection);                   \
    }                                                                        \
                                                                             \
    const OSSL_DISPATCH prov_##t##_keymgmt_functions[] = {                   \
        { OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))t##_new },                  \
        { OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free },                 \
        { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))t##_load },                \
        { OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has },                   \
        { OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params },     \
        { OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS,                                 \
          (void (*)(void))t##_gettable_params },                             \
        { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,                            \
          (void (*)(void))t##_query_operation_name },                        \
        { OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match },               \
        { OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import },             \
        { OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))t##_types_of }, \
        { OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export },             \
        { OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))t##_types_of }, \
        { OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup },                   \
        { 0, NULL },                                                         \
    }

KEYMGMT_TYPE(ec);
KEYMGMT_TYPE(rsa);
KEYMGMT_TYPE(ed25519);
