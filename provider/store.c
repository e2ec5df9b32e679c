/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OSSL_STORE loader for "shortcert:<identity>" URIs: a service (or the
 * openssl tools) names an identity instead of files, and gets its key, its
 * certificate and the intermediates.  Opening the URI asks shortcertd for
 * the identity's public material (FETCH, docs/PROTOCOL.md); shortcertd
 * answers only peers on the identity's allow list, like for SIGN.  The key
 * handed out is pinned to the key generation that was current at open time,
 * exactly as if the key reference file had been read then.
 *
 * Objects come out in a fixed order: the key, then the certificates, leaf
 * first.  The key goes out by reference; libcrypto 3.0 first offers it to
 * the keymgmt it found by name (possibly the default provider's) through
 * our export_object, which refuses, so it falls back to our own keymgmt's
 * load() (provider-notes §2).  Certificates go out as DER.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "ipc-client.h"
#include "prov.h"

/* Key types the store can hand out; a new key type adds its row. */
static const struct prov_keytype *const store_keytypes[] = {
    &prov_keytype_ec,
    &prov_keytype_rsa,
    &prov_keytype_ed25519,
    NULL,
};

struct store_ctx {
    struct prov_ctx *prov;
    char identity[IPC_IDENTITY_MAX + 1];
    uint8_t *frame; /* the FETCH reply body; rep points into it */
    struct ipc_fetch_rep rep;
    struct prov_key *key;
    size_t next; /* 0: the key; 1..n_certs: certificate next-1 */
    int expect;  /* OSSL_STORE_INFO_* or 0 */
};

static OSSL_FUNC_store_open_fn store_open;
static OSSL_FUNC_store_settable_ctx_params_fn store_settable_ctx_params;
static OSSL_FUNC_store_set_ctx_params_fn store_set_ctx_params;
static OSSL_FUNC_store_load_fn store_load;
static OSSL_FUNC_store_eof_fn store_eof;
static OSSL_FUNC_store_close_fn store_close;
static OSSL_FUNC_store_export_object_fn store_export_object;

static void store_free(struct store_ctx *ctx)
{
    if (!ctx)
        return;
    prov_key_unref(ctx->key);
    free(ctx->frame);
    OPENSSL_free(ctx);
}

/* The key from the reference in the FETCH reply, of whichever type it is. */
static int store_make_key(struct store_ctx *ctx)
{
    struct prov_ctx *prov = ctx->prov;
    struct keyref ref = { 0 };
    int r;

    r = keyref_decode_der(prov->libctx, ctx->rep.keyref.p, ctx->rep.keyref.len,
                          &ref);
    if (r < 0) {
        (void)PROV_FAIL(prov, PROV_R_BAD_REPLY,
                        "shortcert: shortcertd sent an invalid key reference "
                        "for identity '%s'",
                        ctx->identity);
        return -EBADMSG;
    }
    if (strcmp(ref.identity, ctx->identity) != 0) {
        keyref_done(&ref);
        (void)PROV_FAIL(prov, PROV_R_BAD_REPLY,
                        "shortcert: shortcertd sent the key reference of "
                        "another identity than '%s'",
                        ctx->identity);
        return -EBADMSG;
    }
    r = -EPROTOTYPE;
    for (size_t i = 0; store_keytypes[i] && r == -EPROTOTYPE; i++)
        r = prov_key_from_ref(prov, store_keytypes[i], &ref, &ctx->key);
    keyref_done(&ref);
    if (r == -EPROTOTYPE) {
        (void)PROV_FAIL(prov, PROV_R_BAD_REFERENCE,
                        "shortcert: identity '%s' has a key of a type this "
                        "provider does not support",
                        ctx->identity);
        return -EPROTOTYPE;
    }
    return r; /* other errors already raised */
}

/* The leaf must carry the key: a reply that pairs them wrongly would make
 * the service present a certificate its key cannot prove. */
static int store_check_leaf(struct store_ctx *ctx)
{
    const unsigned char *p;
    X509 *leaf;
    int eq;

    if (ctx->rep.n_certs == 0)
        return 0;
    p = ctx->rep.certs[0].p;
    leaf = d2i_X509(NULL, &p, (long)ctx->rep.certs[0].len);
    if (!leaf || p != ctx->rep.certs[0].p + ctx->rep.certs[0].len) {
        X509_free(leaf);
        (void)PROV_FAIL(ctx->prov, PROV_R_BAD_REPLY,
                        "shortcert: shortcertd sent an invalid certificate "
                        "for identity '%s'",
                        ctx->identity);
        return -EBADMSG;
    }
    eq = EVP_PKEY_eq(X509_get0_pubkey(leaf), ctx->key->pub);
    X509_free(leaf);
    if (eq != 1) {
        (void)PROV_FAIL(ctx->prov, PROV_R_BAD_REPLY,
                        "shortcert: the certificate shortcertd sent for "
                        "identity '%s' does not hold its key",
                        ctx->identity);
        return -EPROTO;
    }
    return 0;
}

static void *store_open(void *provctx, const char *uri)
{
    struct prov_ctx *prov = provctx;
    struct store_ctx *ctx;
    struct ipc_fail fail = { 0 };
    int r;

    ctx = OPENSSL_zalloc(sizeof(*ctx));
    if (!ctx) {
        (void)PROV_FAIL(prov, PROV_R_NO_MEMORY, "shortcert: out of memory");
        return NULL;
    }
    ctx->prov = prov;
    if (keyref_parse_uri(uri, ctx->identity) < 0) {
        (void)PROV_FAIL(prov, PROV_R_BAD_URI,
                        "shortcert: '%.80s' is not a shortcert URI: expected "
                        "shortcert:NAME, NAME an identity of shortcertd "
                        "([A-Za-z0-9][A-Za-z0-9._-]*, at most %d bytes), "
                        "nothing else",
                        uri ? uri : "", IPC_IDENTITY_MAX);
        store_free(ctx);
        return NULL;
    }
    r = ipc_client_fetch(prov->ipc, ctx->identity, &ctx->frame, &ctx->rep,
                         &fail);
    if (r < 0) {
        (void)PROV_FAIL(prov, fail.reason, "%s", fail.text);
        store_free(ctx);
        return NULL;
    }
    if (store_make_key(ctx) < 0 || store_check_leaf(ctx) < 0) {
        store_free(ctx);
        return NULL;
    }
    prov_debug(prov, "store: opened shortcert:%s (%zu certificate(s))",
               ctx->identity, ctx->rep.n_certs);
    return ctx;
}

static const OSSL_PARAM *store_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
        OSSL_PARAM_END,
    };

    return settable;
}

static int store_set_ctx_params(void *loaderctx, const OSSL_PARAM params[])
{
    struct store_ctx *ctx = loaderctx;
    const OSSL_PARAM *p;

    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
    if (p && !OSSL_PARAM_get_int(p, &ctx->expect))
        return 0;
    return 1; /* other criteria: libcrypto filters what we return */
}

static bool store_wanted(const struct store_ctx *ctx, int type)
{
    return ctx->expect == 0 || ctx->expect == type;
}

static int store_load_key(struct store_ctx *ctx, OSSL_CALLBACK *object_cb,
                          void *object_cbarg)
{
    /* A reference of our own for the loader: our keymgmt's load() takes it
     * and clears the pointer; if nobody does, we drop it. */
    struct prov_key *key = prov_key_ref(ctx->key);
    int object_type = OSSL_OBJECT_PKEY, ok;
    OSSL_PARAM params[4];

    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &object_type);
    params[1] = OSSL_PARAM_construct_utf8_string(
        OSSL_OBJECT_PARAM_DATA_TYPE, (char *)ctx->key->type->name, 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE,
                                                  &key, sizeof(key));
    params[3] = OSSL_PARAM_construct_end();
    ok = object_cb(params, object_cbarg);
    prov_key_unref(key);
    return ok;
}

static int store_load_cert(struct store_ctx *ctx, size_t i,
                           OSSL_CALLBACK *object_cb, void *object_cbarg)
{
    int object_type = OSSL_OBJECT_CERT;
    OSSL_PARAM params[3];

    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &object_type);
    params[1] = OSSL_PARAM_construct_octet_string(
        OSSL_OBJECT_PARAM_DATA, (void *)ctx->rep.certs[i].p,
        ctx->rep.certs[i].len);
    params[2] = OSSL_PARAM_construct_end();
    return object_cb(params, object_cbarg);
}

static int store_load(void *loaderctx, OSSL_CALLBACK *object_cb,
                      void *object_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb,
                      void *pw_cbarg)
{
    struct store_ctx *ctx = loaderctx;

    /* Skip what the caller does not want; never ask for a passphrase. */
    while (ctx->next <= ctx->rep.n_certs) {
        size_t i = ctx->next++;

        if (i == 0 && store_wanted(ctx, OSSL_STORE_INFO_PKEY))
            return store_load_key(ctx, object_cb, object_cbarg);
        if (i > 0 && store_wanted(ctx, OSSL_STORE_INFO_CERT))
            return store_load_cert(ctx, i - 1, object_cb, object_cbarg);
    }
    return 0;
}

static int store_eof(void *loaderctx)
{
    const struct store_ctx *ctx = loaderctx;

    return ctx->next > ctx->rep.n_certs;
}

static int store_close(void *loaderctx)
{
    store_free(loaderctx);
    return 1;
}

/* Never: the only object by reference is a key whose private half is in
 * shortcertd, and a public-only export would give the caller a key that
 * fails at its first signature.  Refusing makes libcrypto load it with our
 * keymgmt instead. */
static int store_export_object(void *loaderctx, const void *objref,
                               size_t objref_sz, OSSL_CALLBACK *export_cb,
                               void *export_cbarg)
{
    return 0;
}

const OSSL_DISPATCH prov_store_functions[] = {
    { OSSL_FUNC_STORE_OPEN, (void (*)(void))store_open },
    { OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS,
      (void (*)(void))store_settable_ctx_params },
    { OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))store_set_ctx_params },
    { OSSL_FUNC_STORE_LOAD, (void (*)(void))store_load },
    { OSSL_FUNC_STORE_EOF, (void (*)(void))store_eof },
    { OSSL_FUNC_STORE_CLOSE, (void (*)(void))store_close },
    { OSSL_FUNC_STORE_EXPORT_OBJECT, (void (*)(void))store_export_object },
    { 0, NULL },
};
