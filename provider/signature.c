/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The signature operations ("ECDSA", "RSA", "ED25519") for keys held by
 * shortcertd.  Signing sends the whole to-be-signed message (never a
 * digest: shortcertd hashes it and checks it is a TLS handshake input) with
 * the scheme picked by the digest name (and for RSA the padding: PKCS#1
 * v1.5 or PSS with the salt as long as the hash, the only PSS that TLS
 * uses), the key's identity and generation.  Ed25519 takes no digest.  Initialisation is local
 * and cheap, because libssl probes every candidate sigalg with a full
 * DigestSignInit; the size query is answered from the key, because libssl
 * asks for it before every real signature.  Verification is delegated to
 * the default provider with the public half, so keys that libcrypto routes
 * to us by property order still verify.
 */
#include <string.h>

#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "ipc-client.h"
#include "prov.h"

enum sig_op {
    SIG_OP_NONE,
    SIG_OP_SIGN,
    SIG_OP_VERIFY,
};

struct sig_ctx {
    struct prov_ctx *prov;
    const struct prov_keytype *type; /* of the algorithm: keys must match */
    struct prov_key *key; /* a reference is held */
    enum sig_op op;
    const struct prov_sig_scheme *scheme;
    /* RSA: the padding asked for, and the PSS details, checked at signing
     * (salt length -1: as long as the hash; mgf1 "": the same hash) */
    int pad;
    int saltlen;
    char mgf1[32];
    /* digest_sign_update/final: the message, at most IPC_MSG_MAX bytes. */
    uint8_t *buf;
    size_t len;
    size_t cap;
    bool too_long;
    EVP_MD_CTX *verify; /* default provider's verification */
};

static OSSL_FUNC_signature_newctx_fn sig_newctx_ecdsa;
static OSSL_FUNC_signature_newctx_fn sig_newctx_rsa;
static OSSL_FUNC_signature_newctx_fn sig_newctx_ed25519;
static OSSL_FUNC_signature_freectx_fn sig_freectx;
static OSSL_FUNC_signature_dupctx_fn sig_dupctx;
static OSSL_FUNC_signature_digest_sign_init_fn sig_digest_sign_init;
static OSSL_FUNC_signature_digest_sign_fn sig_digest_sign;
static OSSL_FUNC_signature_digest_sign_update_fn sig_digest_sign_update;
static OSSL_FUNC_signature_digest_sign_final_fn sig_digest_sign_final;
static OSSL_FUNC_signature_digest_verify_init_fn sig_digest_verify_init;
static OSSL_FUNC_signature_digest_verify_update_fn sig_digest_verify_update;
static OSSL_FUNC_signature_digest_verify_final_fn sig_digest_verify_final;
static OSSL_FUNC_signature_digest_verify_fn sig_digest_verify;
static OSSL_FUNC_signature_get_ctx_params_fn sig_get_ctx_params;
static OSSL_FUNC_signature_gettable_ctx_params_fn sig_gettable_ctx_params;
static OSSL_FUNC_signature_set_ctx_params_fn sig_set_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn sig_settable_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn sig_settable_ctx_params_rsa;

static void *sig_newctx(void *provctx, const struct prov_keytype *type)
{
    struct sig_ctx *ctx = OPENSSL_zalloc(sizeof(*ctx));

    if (!ctx)
        return NULL;
    ctx->prov = provctx;
    ctx->type = type;
    return ctx;
}

static void *sig_newctx_ecdsa(void *provctx, const char *propq)
{
    return sig_newctx(provctx, &prov_keytype_ec);
}

static void *sig_newctx_rsa(void *provctx, const char *propq)
{
    return sig_newctx(provctx, &prov_keytype_rsa);
}

static void *sig_newctx_ed25519(void *provctx, const char *propq)
{
    return sig_newctx(provctx, &prov_keytype_ed25519);
}

static void sig_reset(struct sig_ctx *ctx)
{
    prov_key_unref(ctx->key);
    ctx->key = NULL;
    OPENSSL_free(ctx->buf);
    ctx->buf = NULL;
    ctx->len = ctx->cap = 0;
    ctx->too_long = false;
    EVP_MD_CTX_free(ctx->verify);
    ctx->verify = NULL;
    ctx->op = SIG_OP_NONE;
    ctx->scheme = NULL;
    ctx->pad = ctx->type ? ctx->type->default_pad : 0;
    ctx->saltlen = RSA_PSS_SALTLEN_DIGEST;
    ctx->mgf1[0] = '\0';
}

static void sig_freectx(void *vctx)
{
    struct sig_ctx *ctx = vctx;

    if (!ctx)
        return;
    sig_reset(ctx);
    OPENSSL_free(ctx);
}

static void *sig_dupctx(void *vctx)
{
    const struct sig_ctx *src = vctx;
    struct sig_ctx *dst = OPENSSL_zalloc(sizeof(*dst));

    if (!dst)
        return NULL;
    /* libcrypto duplicates the context in EVP_DigestSignFinal() so the
     * caller may continue; the copy needs the buffered message too. */
    dst->prov = src->prov;
    dst->type = src->type;
    dst->key = prov_key_ref(src->key);
    dst->op = src->op;
    dst->scheme = src->scheme;
    dst->pad = src->pad;
    dst->saltlen = src->saltlen;
    memcpy(dst->mgf1, src->mgf1, sizeof(dst->mgf1));
    dst->too_long = src->too_long;
    if (src->len > 0) {
        dst->buf = OPENSSL_memdup(src->buf, src->len);
        if (!dst->buf)
            goto fail;
        dst->len = dst->cap = src->len;
    }
    if (src->verify) {
        dst->verify = EVP_MD_CTX_new();
        if (!dst->verify || !EVP_MD_CTX_copy_ex(dst->verify, src->verify))
            goto fail;
    }
    return dst;
fail:
    sig_freectx(dst);
    return NULL;
}

/* The scheme of a digest name with a padding: no name (NULL or "") is the
 * first scheme of that padding (SHA256; for Ed25519 the only one, which
 * takes no name at all). */
static const struct prov_sig_scheme *
scheme_for(const struct prov_keytype *type, const char *mdname, int pad)
{
    for (const struct prov_sig_scheme *s = type->schemes; s->ipc_scheme; s++) {
        if (s->pad != pad)
            continue;
        if (!mdname || !*mdname)
            return s;
        for (size_t i = 0; s->names[i]; i++)
            if (prov_name_eq(mdname, s->names[i]))
                return s;
    }
    return NULL;
}

static int set_digest(struct sig_ctx *ctx, const char *mdname)
{
    const struct prov_sig_scheme *s = scheme_for(ctx->type, mdname, ctx->pad);

    /* Failing here is how libssl learns which sigalgs this key offers. */
    if (!s)
        return PROV_FAIL(ctx->prov, PROV_R_UNSUPPORTED_DIGEST,
                         ctx->type->schemes[0].names[0]
                             ? "shortcert: digest '%s' is not supported with %s "
                               "(SHA256, SHA384 and SHA512 are)"
                             : "shortcert: digest '%s' is not supported with %s "
                               "(it signs the message itself: no digest)",
                         mdname, ctx->type->sig_name);
    ctx->scheme = s;
    return 1;
}

/* The key must be of the algorithm's type (our RSA signature never signs
 * with an EC key of ours, whatever libcrypto asks). */
static bool key_fits(struct sig_ctx *ctx, const struct prov_key *key)
{
    if (key->type == ctx->type)
        return true;
    (void)PROV_FAIL(ctx->prov, PROV_R_WRONG_KEY_TYPE,
                    "shortcert: a %s key cannot make %s signatures",
                    key->type->name, ctx->type->sig_name);
    return false;
}

static int sig_digest_sign_init(void *vctx, const char *mdname, void *provkey,
                                const OSSL_PARAM params[])
{
    struct sig_ctx *ctx = vctx;
    struct prov_key *key = provkey ? provkey : ctx->key;

    if (!key || key->magic != PROV_KEY_MAGIC)
        return 0;
    prov_key_ref(key);
    sig_reset(ctx);
    ctx->key = key;
    if (!key_fits(ctx, key))
        return 0;
    if (!key->can_sign)
        return PROV_FAIL(ctx->prov, PROV_R_NOT_SIGNABLE,
                         "shortcert: this %s key is a public key only (it did "
                         "not come from a shortcert key reference)",
                         key->type->name);
    if (!set_digest(ctx, mdname))
        return 0;
    ctx->op = SIG_OP_SIGN;
    return sig_set_ctx_params(ctx, params);
}

/* shortcertd makes one PSS: salt as long as the hash, MGF1 with the same
 * hash (what TLS 1.3 and 1.2 require).  Anything else is refused here
 * rather than silently signed differently. */
static bool pss_fits(struct sig_ctx *ctx)
{
    const struct prov_sig_scheme *s = ctx->scheme;
    bool mgf1_ok = !ctx->mgf1[0];

    if (s->pad != RSA_PKCS1_PSS_PADDING)
        return true;
    for (size_t i = 0; !mgf1_ok && s->names[i]; i++)
        mgf1_ok = prov_name_eq(ctx->mgf1, s->names[i]);
    if (ctx->saltlen != RSA_PSS_SALTLEN_DIGEST &&
        (ctx->saltlen < 0 || (size_t)ctx->saltlen != s->md_len)) {
        (void)PROV_FAIL(ctx->prov, PROV_R_UNSUPPORTED_PADDING,
                        "shortcert: RSA-PSS with salt length %d is not "
                        "offered; shortcertd signs PSS with the salt as long "
                        "as the hash (%zu bytes)",
                        ctx->saltlen, s->md_len);
        return false;
    }
    if (!mgf1_ok) {
        (void)PROV_FAIL(ctx->prov, PROV_R_UNSUPPORTED_PADDING,
                        "shortcert: RSA-PSS with MGF1 digest '%s' is not "
                        "offered; shortcertd uses the signature's digest %s",
                        ctx->mgf1, s->names[0]);
        return false;
    }
    return true;
}

/* The one place a signature is made. */
static int sign_message(struct sig_ctx *ctx, unsigned char *sig,
                        size_t *siglen, size_t sigsize,
                        const unsigned char *msg, size_t msg_len)
{
    struct prov_key *key = ctx->key;
    struct ipc_fail fail = { 0 };
    size_t len = 0;

    if (ctx->op != SIG_OP_SIGN || !key || !ctx->scheme)
        return 0;
    if (!sig) {
        /* Size query: libssl asks before every signature; no round trip. */
        *siglen = key->max_sig;
        return 1;
    }
    if (msg_len > IPC_MSG_MAX)
        return PROV_FAIL(ctx->prov, PROV_R_MESSAGE_TOO_LONG,
                         "shortcert: message of %zu bytes exceeds the %u "
                         "bytes shortcertd signs",
                         msg_len, (unsigned)IPC_MSG_MAX);
    if (sigsize < key->max_sig)
        return PROV_FAIL(ctx->prov, PROV_R_BUFFER_TOO_SMALL,
                         "shortcert: signature buffer of %zu bytes, need %zu",
                         sigsize, key->max_sig);
    if (!pss_fits(ctx))
        return 0;
    /* Capped at the key's maximum, not the caller's buffer: a longer
     * "signature" is a broken reply, never something to pass on. */
    if (ipc_client_sign(ctx->prov->ipc, key->identity, key->generation,
                        ctx->scheme->ipc_scheme, msg, msg_len, sig,
                        key->max_sig, &len, &fail) < 0)
        return PROV_FAIL(ctx->prov, fail.reason, "%s", fail.text);
    *siglen = len;
    return 1;
}

static int sig_digest_sign(void *vctx, unsigned char *sig, size_t *siglen,
                           size_t sigsize, const unsigned char *tbs,
                           size_t tbslen)
{
    return sign_message(vctx, sig, siglen, sigsize, tbs, tbslen);
}

static int sig_digest_sign_update(void *vctx, const unsigned char *data,
                                  size_t datalen)
{
    struct sig_ctx *ctx = vctx;
    size_t need;

    if (ctx->op != SIG_OP_SIGN)
        return 0;
    if (datalen == 0)
        return 1;
    if (datalen > IPC_MSG_MAX - ctx->len) {
        /* Remember, so final() names the real problem. */
        ctx->too_long = true;
        return PROV_FAIL(ctx->prov, PROV_R_MESSAGE_TOO_LONG,
                         "shortcert: message exceeds the %u bytes shortcertd "
                         "signs",
                         (unsigned)IPC_MSG_MAX);
    }
    need = ctx->len + datalen;
    if (need > ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap : 256;
        uint8_t *p;

        while (cap < need)
            cap *= 2;
        if (cap > IPC_MSG_MAX)
            cap = IPC_MSG_MAX;
        p = OPENSSL_realloc(ctx->buf, cap);
        if (!p)
            return PROV_FAIL(ctx->prov, PROV_R_NO_MEMORY,
                             "shortcert: out of memory");
        ctx->buf = p;
        ctx->cap = cap;
    }
    memcpy(ctx->buf + ctx->len, data, datalen);
    ctx->len = need;
    return 1;
}

static int sig_digest_sign_final(void *vctx, unsigned char *sig,
                                 size_t *siglen, size_t sigsize)
{
    struct sig_ctx *ctx = vctx;

    if (ctx->too_long)
        return PROV_FAIL(ctx->prov, PROV_R_MESSAGE_TOO_LONG,
                         "shortcert: message exceeds the %u bytes shortcertd "
                         "signs",
                         (unsigned)IPC_MSG_MAX);
    return sign_message(ctx, sig, siglen, sigsize, ctx->buf, ctx->len);
}

/* --- verification: the default provider, with the public half ---------- */

static int sig_digest_verify_init(void *vctx, const char *mdname,
                                  void *provkey, const OSSL_PARAM params[])
{
    struct sig_ctx *ctx = vctx;
    struct prov_key *key = provkey ? provkey : ctx->key;

    if (!key || key->magic != PROV_KEY_MAGIC || !key->pub)
        return 0;
    prov_key_ref(key);
    sig_reset(ctx);
    ctx->key = key;
    if (!key_fits(ctx, key))
        return 0;
    ctx->verify = EVP_MD_CTX_new();
    if (!ctx->verify)
        return 0;
    if (!EVP_DigestVerifyInit_ex(ctx->verify, NULL,
                                 mdname && *mdname ? mdname : NULL,
                                 ctx->prov->libctx, PROV_INTERNAL_PROPQ,
                                 key->pub, params))
        return 0;
    ctx->op = SIG_OP_VERIFY;
    return 1;
}

static int sig_digest_verify_update(void *vctx, const unsigned char *data,
                                    size_t datalen)
{
    struct sig_ctx *ctx = vctx;

    if (ctx->op != SIG_OP_VERIFY)
        return 0;
    return EVP_DigestVerifyUpdate(ctx->verify, data, datalen);
}

static int sig_digest_verify_final(void *vctx, const unsigned char *sig,
                                   size_t siglen)
{
    struct sig_ctx *ctx = vctx;

    if (ctx->op != SIG_OP_VERIFY)
        return 0;
    return EVP_DigestVerifyFinal(ctx->verify, sig, siglen) == 1;
}

static int sig_digest_verify(void *vctx, const unsigned char *sig,
                             size_t siglen, const unsigned char *tbs,
                             size_t tbslen)
{
    struct sig_ctx *ctx = vctx;

    if (ctx->op != SIG_OP_VERIFY)
        return 0;
    return EVP_DigestVerify(ctx->verify, sig, siglen, tbs, tbslen) == 1;
}

/* --- parameters ---------------------------------------------------------- */

static int sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    struct sig_ctx *ctx = vctx;
    OSSL_PARAM *p;

    if (!ctx)
        return 0;
    if (ctx->op == SIG_OP_VERIFY)
        return EVP_PKEY_CTX_get_params(EVP_MD_CTX_get_pkey_ctx(ctx->verify),
                                       params);
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (p && (!ctx->scheme ||
              !OSSL_PARAM_set_octet_string(p, ctx->scheme->algid,
                                           ctx->scheme->algid_len)))
        return 0;
    /* (Ed25519 has no digest: the parameter stays unset.) */
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p && (!ctx->scheme ||
              (ctx->scheme->names[0] &&
               !OSSL_PARAM_set_utf8_string(p, ctx->scheme->names[0]))))
        return 0;
    return 1;
}

static const OSSL_PARAM sig_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *sig_gettable_ctx_params(void *vctx, void *provctx)
{
    return sig_gettable;
}

/* pad-mode: an integer (what EVP_PKEY_CTX_set_rsa_padding() sends) or a
 * name; only PKCS#1 v1.5 and PSS sign. */
static int get_pad_mode(const OSSL_PARAM *p, int *ret)
{
    const char *name = NULL;

    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
            return 0;
        if (strcmp(name, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0)
            *ret = RSA_PKCS1_PADDING;
        else if (strcmp(name, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0)
            *ret = RSA_PKCS1_PSS_PADDING;
        else
            *ret = -1;
        return 1;
    }
    return OSSL_PARAM_get_int(p, ret);
}

/* saltlen: an integer, or "digest" (what libssl sends), or a number as
 * text; "max" and "auto" would not be the PSS TLS expects. */
static int get_saltlen(const OSSL_PARAM *p, int *ret)
{
    const char *s = NULL;
    char *end = NULL;
    long v;

    if (p->data_type != OSSL_PARAM_UTF8_STRING)
        return OSSL_PARAM_get_int(p, ret);
    if (!OSSL_PARAM_get_utf8_string_ptr(p, &s))
        return 0;
    if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0) {
        *ret = RSA_PSS_SALTLEN_DIGEST;
        return 1;
    }
    if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0 ||
        strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0) {
        *ret = RSA_PSS_SALTLEN_MAX;
        return 1;
    }
    v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1024)
        return 0;
    *ret = (int)v;
    return 1;
}

static int set_rsa_params(struct sig_ctx *ctx, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    const char *name = NULL;
    int pad = ctx->pad;

    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p) {
        if (!get_pad_mode(p, &pad))
            return 0;
        if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_PSS_PADDING)
            return PROV_FAIL(ctx->prov, PROV_R_UNSUPPORTED_PADDING,
                             "shortcert: RSA padding %d is not offered for "
                             "signatures (PKCS#1 v1.5 and PSS are)",
                             pad);
        if (ctx->len > 0 && pad != ctx->pad)
            return 0; /* not mid-message */
        ctx->pad = pad;
        /* the same digest with the new padding */
        if (ctx->scheme && !set_digest(ctx, ctx->scheme->names[0]))
            return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p && !get_saltlen(p, &ctx->saltlen))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) ||
            strlen(name) >= sizeof(ctx->mgf1))
            return 0;
        memcpy(ctx->mgf1, name, strlen(name) + 1);
    }
    return 1;
}

static int sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    struct sig_ctx *ctx = vctx;
    const OSSL_PARAM *p;
    const char *mdname = NULL;

    if (!ctx)
        return 0;
    if (!params)
        return 1;
    if (ctx->op == SIG_OP_VERIFY)
        return EVP_PKEY_CTX_set_params(EVP_MD_CTX_get_pkey_ctx(ctx->verify),
                                       params);
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &mdname) || !ctx->key)
            return 0;
        /* The digest picks the scheme; it cannot change mid-message. */
        if (ctx->len > 0)
            return 0;
        if (!set_digest(ctx, mdname))
            return 0;
    }
    if (ctx->type->default_pad && !set_rsa_params(ctx, params))
        return 0;
    /* OSSL_SIGNATURE_PARAM_PROPERTIES is accepted and has nothing to
     * select: we fetch no digest. */
    return 1;
}

#define SIG_SETTABLE_COMMON                                                  \
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),            \
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0)

static const OSSL_PARAM sig_settable[] = {
    SIG_SETTABLE_COMMON,
    OSSL_PARAM_END,
};

/* libcrypto checks each parameter libssl sets against this list by name
 * (pad-mode arrives as an integer, saltlen as "digest"); without them no
 * TLS 1.3 handshake with an RSA key would work. */
static const OSSL_PARAM sig_settable_rsa[] = {
    SIG_SETTABLE_COMMON,
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *sig_settable_ctx_params(void *vctx, void *provctx)
{
    return sig_settable;
}

static const OSSL_PARAM *sig_settable_ctx_params_rsa(void *vctx,
                                                     void *provctx)
{
    return sig_settable_rsa;
}

#define SIG_DISPATCH(name, newctx, settable)                                 \
    const OSSL_DISPATCH name[] = {                                           \
        { OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))newctx },              \
        { OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx },        \
        { OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx },          \
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,                              \
          (void (*)(void))sig_digest_sign_init },                            \
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign }, \
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE,                            \
          (void (*)(void))sig_digest_sign_update },                          \
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL,                             \
          (void (*)(void))sig_digest_sign_final },                           \
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT,                            \
          (void (*)(void))sig_digest_verify_init },                          \
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE,                          \
          (void (*)(void))sig_digest_verify_update },                        \
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL,                           \
          (void (*)(void))sig_digest_verify_final },                         \
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY,                                 \
          (void (*)(void))sig_digest_verify },                               \
        { OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS,                                \
          (void (*)(void))sig_get_ctx_params },                              \
        { OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,                           \
          (void (*)(void))sig_gettable_ctx_params },                         \
        { OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,                                \
          (void (*)(void))sig_set_ctx_params },                              \
        { OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))settable }, \
        { 0, NULL },                                                         \
    }

SIG_DISPATCH(prov_ecdsa_signature_functions, sig_newctx_ecdsa,
             sig_settable_ctx_params);
SIG_DISPATCH(prov_rsa_signature_functions, sig_newctx_rsa,
             sig_settable_ctx_params_rsa);
SIG_DISPATCH(prov_ed25519_signature_functions, sig_newctx_ed25519,
             sig_settable_ctx_params);
