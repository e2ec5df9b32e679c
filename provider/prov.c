/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider's entry point and its conversation with the OpenSSL core:
 * OSSL_provider_init captures the core upcalls (parameters, errors), reads
 * our configuration (socket, timeout, back-off), makes the child library
 * context every internal operation runs in, and publishes static algorithm
 * tables: decoders, key management and signature for EC, RSA and Ed25519
 * (and an RSA decryption that only explains that there is none), and the
 * shortcert: store loader.  Errors are raised
 * here, through the core, with our own reason table, so they carry the
 * provider's name however the service prints them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

#include "build-config.h"
#include "ipc-client.h"
#include "prov.h"

#define PROV_PROPS "provider=" PROV_NAME
#define EC_NAMES "EC:id-ecPublicKey:1.2.840.10045.2.1"
#define RSA_NAMES "RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define ED25519_NAMES "ED25519:1.3.101.112"

/* Config parameters, as written in the provider's openssl.cnf section. */
#define PARAM_SOCKET "shortcert-socket"
#define PARAM_TIMEOUT "shortcert-timeout-ms"
#define PARAM_BACKOFF "shortcert-backoff-ms"
#define PARAM_VERSION "shortcert-protocol-version"

static OSSL_FUNC_provider_query_operation_fn prov_query_operation;
static OSSL_FUNC_provider_get_params_fn prov_get_params;
static OSSL_FUNC_provider_gettable_params_fn prov_gettable_params;
static OSSL_FUNC_provider_get_reason_strings_fn prov_get_reason_strings;
static OSSL_FUNC_provider_teardown_fn prov_teardown;

/* --- errors and tracing ---------------------------------------------------- */

static const OSSL_ITEM prov_reasons[] = {
    { PROV_R_INTERNAL, "shortcert internal error" },
    { PROV_R_NO_MEMORY, "out of memory" },
    { PROV_R_BAD_CONFIG, "bad shortcert provider configuration" },
    { PROV_R_BAD_REFERENCE, "bad shortcert key reference" },
    { PROV_R_NO_DEFAULT_PROVIDER,
      "shortcert needs the default provider activated first" },
    { PROV_R_NOT_SIGNABLE, "not a shortcert key reference: cannot sign" },
    { PROV_R_PRIVATE_IMPORT, "private keys cannot be imported into shortcert" },
    { PROV_R_UNSUPPORTED_DIGEST, "digest not supported by shortcert" },
    { PROV_R_MESSAGE_TOO_LONG, "message too long for shortcertd" },
    { PROV_R_BUFFER_TOO_SMALL, "signature buffer too small" },
    { PROV_R_UNREACHABLE, "cannot reach shortcertd" },
    { PROV_R_PEER_NOT_ROOT, "shortcert socket not owned by root" },
    { PROV_R_TIMEOUT, "shortcertd timed out" },
    { PROV_R_BACKOFF, "shortcertd timed out recently (back-off)" },
    { PROV_R_REFUSED, "shortcertd refused to sign" },
    { PROV_R_BAD_REPLY, "malformed reply from shortcertd" },
    { PROV_R_BAD_URI, "not a shortcert:NAME URI" },
    { PROV_R_FETCH_REFUSED, "shortcertd refused to give out the identity" },
    { PROV_R_NO_FETCH, "shortcertd too old for shortcert: URIs" },
    { PROV_R_UNSUPPORTED_PADDING, "RSA padding not supported by shortcert" },
    { PROV_R_NO_DECRYPTION,
      "shortcert offers no RSA decryption: use ECDHE ciphers" },
    { PROV_R_WRONG_KEY_TYPE, "shortcert key of another type" },
    { 0, NULL },
};

int prov_raise(const struct prov_ctx *prov, const char *file, int line,
               const char *func, uint32_t reason, const char *fmt, ...)
{
    va_list ap;

    if (!prov || !prov->core_new_error || !prov->core_vset_error)
        return 0;
    prov->core_new_error(prov->handle);
    if (prov->core_set_error_debug)
        prov->core_set_error_debug(prov->handle, file, line, func);
    va_start(ap, fmt);
    prov->core_vset_error(prov->handle, reason, fmt, ap);
    va_end(ap);
    if (prov->debug) {
        va_start(ap, fmt);
        (void)fprintf(stderr, "shortcert[%d]: error: ", (int)getpid());
        (void)vfprintf(stderr, fmt, ap);
        (void)fputc('\n', stderr);
        va_end(ap);
    }
    return 0;
}

void prov_debug(const struct prov_ctx *prov, const char *fmt, ...)
{
    va_list ap;

    if (!prov || !prov->debug)
        return;
    va_start(ap, fmt);
    (void)fprintf(stderr, "shortcert[%d]: ", (int)getpid());
    (void)vfprintf(stderr, fmt, ap);
    (void)fputc('\n', stderr);
    va_end(ap);
}

bool prov_name_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        char x = *a, y = *b;

        if (x >= 'a' && x <= 'z')
            x = (char)(x - 'a' + 'A');
        if (y >= 'a' && y <= 'z')
            y = (char)(y - 'a' + 'A');
        if (x != y)
            return false;
        if (x == '\0')
            return true;
    }
}

/* --- algorithm tables ------------------------------------------------------ */

/* Named exactly like the default provider's key managements: libssl
 * identifies certificate key types by these names, and they give
 * EVP_PKEY_get_base_id() its EVP_PKEY_EC/RSA/ED25519 (haproxy relies on
 * that).  No RSA-PSS (id-RSASSA-PSS) keys: shortcertd makes rsaEncryption
 * keys, which sign PSS too. */
static const OSSL_ALGORITHM prov_keymgmt[] = {
    { EC_NAMES, PROV_PROPS, prov_ec_keymgmt_functions,
      "EC key whose private half is held by shortcertd" },
    { RSA_NAMES, PROV_PROPS, prov_rsa_keymgmt_functions,
      "RSA key whose private half is held by shortcertd" },
    { ED25519_NAMES, PROV_PROPS, prov_ed25519_keymgmt_functions,
      "Ed25519 key whose private half is held by shortcertd" },
    { NULL, NULL, NULL, NULL },
};

static const OSSL_ALGORITHM prov_signature[] = {
    { "ECDSA", PROV_PROPS, prov_ecdsa_signature_functions,
      "ECDSA through shortcertd" },
    { RSA_NAMES, PROV_PROPS, prov_rsa_signature_functions,
      "RSA PKCS#1 v1.5 and PSS through shortcertd" },
    { ED25519_NAMES, PROV_PROPS, prov_ed25519_signature_functions,
      "Ed25519 through shortcertd" },
    { NULL, NULL, NULL, NULL },
};

static const OSSL_ALGORITHM prov_asym_cipher[] = {
    { RSA_NAMES, PROV_PROPS, prov_rsa_asym_cipher_functions,
      "no RSA decryption (static RSA key exchange) through shortcertd" },
    { NULL, NULL, NULL, NULL },
};

static const OSSL_ALGORITHM prov_decoder[] = {
    /* Named "DER": libcrypto chains decoders by output name, so this one
     * runs next to the default pem2der and feeds our key decoders. */
    { "DER", PROV_PROPS ",input=pem", prov_pem_decoder_functions,
      "PEM to DER, shortcert key references only" },
    { EC_NAMES, PROV_PROPS ",input=der,structure=" PROV_REF_STRUCTURE,
      prov_ec_decoder_functions, "shortcert key reference to EC key" },
    { RSA_NAMES, PROV_PROPS ",input=der,structure=" PROV_REF_STRUCTURE,
      prov_rsa_decoder_functions, "shortcert key reference to RSA key" },
    { ED25519_NAMES, PROV_PROPS ",input=der,structure=" PROV_REF_STRUCTURE,
      prov_ed25519_decoder_functions,
      "shortcert key reference to Ed25519 key" },
    { NULL, NULL, NULL, NULL },
};

/* "shortcert:NAME" URIs (store.c): the scheme is the algorithm name. */
static const OSSL_ALGORITHM prov_store[] = {
    { KEYREF_URI_SCHEME, PROV_PROPS, prov_store_functions,
      "shortcert:NAME - an identity's key, certificate and chain" },
    { NULL, NULL, NULL, NULL },
};

static const OSSL_ALGORITHM *prov_query_operation(void *provctx,
                                                  int operation_id,
                                                  int *no_cache)
{
    *no_cache = 0; /* the tables are static */
    switch (operation_id) {
    case OSSL_OP_KEYMGMT:
        return prov_keymgmt;
    case OSSL_OP_SIGNATURE:
        return prov_signature;
    case OSSL_OP_ASYM_CIPHER:
        return prov_asym_cipher;
    case OSSL_OP_DECODER:
        return prov_decoder;
    case OSSL_OP_STORE:
        return prov_store;
    default:
        return NULL; /* digests, RAND, key exchange: the default provider's */
    }
}

/* --- provider parameters --------------------------------------------------- */

static const OSSL_PARAM prov_param_types[] = {
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
    OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *prov_gettable_params(void *provctx)
{
    return prov_param_types;
}

static int prov_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
    if (p && !OSSL_PARAM_set_utf8_ptr(p, PROV_NAME))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
    if (p && !OSSL_PARAM_set_utf8_ptr(p, PACKAGE_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
    if (p && !OSSL_PARAM_set_utf8_ptr(p, PROV_NAME " " PACKAGE_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
    if (p && !OSSL_PARAM_set_int(p, 1))
        return 0;
    return 1;
}

static const OSSL_ITEM *prov_get_reason_strings(void *provctx)
{
    return prov_reasons;
}

static void prov_teardown(void *provctx)
{
    struct prov_ctx *prov = provctx;

    if (!prov)
        return;
    prov_debug(prov, "teardown");
    ipc_client_free(prov->ipc);
    OSSL_LIB_CTX_free(prov->libctx);
    OPENSSL_free(prov);
}

static const OSSL_DISPATCH prov_dispatch[] = {
    { OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown },
    { OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))prov_gettable_params },
    { OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))prov_get_params },
    { OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query_operation },
    { OSSL_FUNC_PROVIDER_GET_REASON_STRINGS,
      (void (*)(void))prov_get_reason_strings },
    { 0, NULL },
};

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    OSSL_FUNC_core_get_params_fn *core_get_params = NULL;
    const char *sock = NULL, *timeout = NULL, *backoff = NULL, *version = NULL,
               *dbg;
    struct prov_ctx *prov;
    OSSL_PARAM params[5];

    prov = OPENSSL_zalloc(sizeof(*prov));
    if (!prov)
        return 0;
    prov->handle = handle;
    for (const OSSL_DISPATCH *d = in; d->function_id != 0; d++) {
        switch (d->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            core_get_params = OSSL_FUNC_core_get_params(d);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            prov->core_new_error = OSSL_FUNC_core_new_error(d);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            prov->core_set_error_debug = OSSL_FUNC_core_set_error_debug(d);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            prov->core_vset_error = OSSL_FUNC_core_vset_error(d);
            break;
        default:
            break;
        }
    }
    dbg = secure_getenv("SHORTCERT_PROVIDER_DEBUG");
    prov->debug = dbg && *dbg && strcmp(dbg, "0") != 0;

    /* Our configuration is the provider's section of the service's
     * openssl.cnf; values are strings, borrowed from the core. */
    params[0] = OSSL_PARAM_construct_utf8_ptr(PARAM_SOCKET, (char **)&sock, 0);
    params[1] = OSSL_PARAM_construct_utf8_ptr(PARAM_TIMEOUT, (char **)&timeout,
                                              0);
    params[2] = OSSL_PARAM_construct_utf8_ptr(PARAM_BACKOFF, (char **)&backoff,
                                              0);
    params[3] = OSSL_PARAM_construct_utf8_ptr(PARAM_VERSION, (char **)&version,
                                              0);
    params[4] = OSSL_PARAM_construct_end();
    if (core_get_params && !core_get_params(handle, params))
        goto fail;
    if (ipc_client_new(sock, timeout, backoff, version, prov->debug,
                       &prov->ipc) < 0)
        goto fail;

    /* A child of the loading context sees the same providers (the default
     * one included, also when it is activated after us) and gives us core
     * BIOs.  Its default property query keeps every internal fetch on the
     * default provider, so nothing we do can recurse into ourselves. */
    prov->libctx = OSSL_LIB_CTX_new_child(handle, in);
    if (!prov->libctx ||
        !EVP_set_default_properties(prov->libctx, PROV_INTERNAL_PROPQ))
        goto fail;
    *out = prov_dispatch;
    *provctx = prov;
    return 1;
fail:
    prov_teardown(prov);
    return 0;
}
