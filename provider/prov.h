/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal interface of the shortcert OpenSSL 3 provider.  The provider is a
 * guest in someone else's process: it holds no private key, talks to
 * shortcertd only through ipc-client.c, and reports failures through the
 * core's error upcalls captured at init (never by logging or aborting).
 * This header ties the pieces together: the provider context, the reason
 * table, the key type descriptors that let RSA/Ed25519 slot in next to EC,
 * the key object shared by decoder, keymgmt and signature, and the dispatch
 * tables prov.c publishes.
 */
#ifndef SHORTCERT_PROV_H
#define SHORTCERT_PROV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>

#include "ipc-proto.h"
#include "keyref.h"
#include "macro.h"

#define PROV_NAME "shortcert"
/* The structure name our two decoders agree on; never registered anywhere. */
#define PROV_REF_STRUCTURE "shortcert-ref"
/* What every internal fetch asks for, so we never recurse into ourselves. */
#define PROV_INTERNAL_PROPQ "provider=default"

struct ipc_client;

/* One per provider instance (per library context that loaded us). */
struct prov_ctx {
    const OSSL_CORE_HANDLE *handle;
    /* Child of the loading libctx: mirrors its providers (including the
     * default one), used for all our own crypto with PROV_INTERNAL_PROPQ. */
    OSSL_LIB_CTX *libctx;
    OSSL_FUNC_core_new_error_fn *core_new_error;
    OSSL_FUNC_core_set_error_debug_fn *core_set_error_debug;
    OSSL_FUNC_core_vset_error_fn *core_vset_error;
    struct ipc_client *ipc;
    bool debug; /* SHORTCERT_PROVIDER_DEBUG: trace to stderr */
};

/* Our reason codes.  The text in prov.c is what services that print only
 * ERR_reason_error_string() (postgres) show, so each must stand alone. */
enum prov_reason {
    PROV_R_INTERNAL = 1,
    PROV_R_NO_MEMORY,
    PROV_R_BAD_CONFIG,
    PROV_R_BAD_REFERENCE,
    PROV_R_NO_DEFAULT_PROVIDER,
    PROV_R_NOT_SIGNABLE,
    PROV_R_PRIVATE_IMPORT,
    PROV_R_UNSUPPORTED_DIGEST,
    PROV_R_MESSAGE_TOO_LONG,
    PROV_R_BUFFER_TOO_SMALL,
    PROV_R_UNREACHABLE,
    PROV_R_PEER_NOT_ROOT,
    PROV_R_TIMEOUT,
    PROV_R_BACKOFF,
    PROV_R_REFUSED,
    PROV_R_BAD_REPLY,
    PROV_R_BAD_URI,
    PROV_R_FETCH_REFUSED,
    PROV_R_NO_FETCH,
    PROV_R_UNSUPPORTED_PADDING,
    PROV_R_NO_DECRYPTION,
    PROV_R_WRONG_KEY_TYPE,
    PROV_R_MAX,
};

/* A digest (and for RSA a padding) a key type can sign with, and what
 * that means on the wire. */
struct prov_sig_scheme {
    const char *names[5];     /* accepted digest names, NULL-terminated;
                               * none: pure EdDSA, no digest at all */
    uint32_t ipc_scheme;      /* enum ipc_scheme */
    const uint8_t *algid;     /* DER AlgorithmIdentifier of the signature */
    size_t algid_len;
    int pad;                  /* RSA_PKCS1_PADDING, RSA_PKCS1_PSS_PADDING;
                               * 0 for ECDSA and EdDSA */
    size_t md_len;            /* the digest's length: the PSS salt length */
};

/* Everything that differs between key types: EC (P-256, P-384), RSA
 * (PKCS#1 v1.5 and PSS) and Ed25519, each with its rows in prov.c's
 * algorithm tables. */
struct prov_keytype {
    const char *name;            /* OSSL name, e.g. "EC"; decoder data type */
    const char *sig_name;        /* signature algorithm: "ECDSA", "RSA" */
    const char *asym_name;       /* asymmetric cipher ("RSA": only to say
                                  * that it is not offered), or NULL */
    bool need_group;             /* only named groups (TLS knows no other) */
    int default_pad;             /* RSA_PKCS1_PADDING for RSA, else 0 */
    const char *const *private_params; /* refused on import */
    const OSSL_PARAM *gettable;  /* forwarded to the public half */
    const OSSL_PARAM *public_types; /* imported and exported */
    /* terminated by ipc_scheme 0; the first of a padding is its default
     * (no digest name given) */
    const struct prov_sig_scheme *schemes;
};

extern const struct prov_keytype prov_keytype_ec;
extern const struct prov_keytype prov_keytype_rsa;
extern const struct prov_keytype prov_keytype_ed25519;

#define PROV_KEY_MAGIC 0x53434b59u /* "SCKY" */

/* The key object behind an EVP_PKEY of ours.  Immutable once published to
 * libcrypto, so threads share it without a lock; reference counted because
 * signature contexts outlive nothing but may be dup'ed. */
struct prov_key {
    uint32_t magic;
    atomic_int refs;
    struct prov_ctx *prov;
    const struct prov_keytype *type;
    /* True only for keys made from a reference: shortcertd holds the
     * private half under identity/generation.  Imported keys are public. */
    bool can_sign;
    char identity[IPC_IDENTITY_MAX + 1];
    uint8_t generation[IPC_GENERATION_LEN];
    EVP_PKEY *pub;   /* default-provider public half, in prov->libctx */
    size_t max_sig;  /* EVP_PKEY_get_size(pub): answers size queries */
};

/* keymgmt.c.  prov_key_new() returns a new empty key (refs 1);
 * prov_key_from_ref() a new signing key built from a decoded reference, or
 * -EPROTOTYPE if the reference holds a key of another type, or -errno with
 * an error raised. */
struct prov_key *prov_key_new(struct prov_ctx *prov,
                              const struct prov_keytype *type);
_warn_unused_ int prov_key_from_ref(struct prov_ctx *prov,
                                    const struct prov_keytype *type,
                                    const struct keyref *ref,
                                    struct prov_key **ret);
struct prov_key *prov_key_ref(struct prov_key *key);
void prov_key_unref(struct prov_key *key);
/* Export the public half and domain parameters; 0 for any selection that
 * includes the private key (libcrypto then falls back to our signature). */
int prov_key_export_public(const struct prov_key *key, int selection,
                           OSSL_CALLBACK *cb, void *cbarg);

/* prov.c: raise an error through the core (always returns 0, so dispatch
 * functions can `return PROV_FAIL(...)`). */
int prov_raise(const struct prov_ctx *prov, const char *file, int line,
               const char *func, uint32_t reason, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
#define PROV_FAIL(prov, reason, ...)                                          \
    prov_raise((prov), __FILE__, __LINE__, __func__, (reason), __VA_ARGS__)

/* Opt-in trace to stderr; a no-op unless SHORTCERT_PROVIDER_DEBUG is set. */
void prov_debug(const struct prov_ctx *prov, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ASCII case-insensitive compare (digest names; locale-proof). */
bool prov_name_eq(const char *a, const char *b);

extern const OSSL_DISPATCH prov_ec_keymgmt_functions[];
extern const OSSL_DISPATCH prov_rsa_keymgmt_functions[];
extern const OSSL_DISPATCH prov_ed25519_keymgmt_functions[];
extern const OSSL_DISPATCH prov_ecdsa_signature_functions[];
extern const OSSL_DISPATCH prov_rsa_signature_functions[];
extern const OSSL_DISPATCH prov_ed25519_signature_functions[];
extern const OSSL_DISPATCH prov_rsa_asym_cipher_functions[];
extern const OSSL_DISPATCH prov_pem_decoder_functions[];
extern const OSSL_DISPATCH prov_ec_decoder_functions[];
extern const OSSL_DISPATCH prov_store_functions[];
extern const OSSL_DISPATCH prov_rsa_decoder_functions[];
extern const OSSL_DISPATCH prov_ed25519_decoder_functions[];

/* Cleanup helpers for the OpenSSL types we hold in _cleanup_ variables. */
static inline void prov_bio_freep(BIO **p)
{
    BIO_free(*p);
}
static inline void prov_pkey_freep(EVP_PKEY **p)
{
    EVP_PKEY_free(*p);
}
static inline void prov_pkey_ctx_freep(EVP_PKEY_CTX **p)
{
    EVP_PKEY_CTX_free(*p);
}
static inline void prov_key_unrefp(struct prov_key **p)
{
    prov_key_unref(*p);
}
#define _cleanup_bio_ _cleanup_(prov_bio_freep)
#define _cleanup_pkey_ _cleanup_(prov_pkey_freep)
#define _cleanup_pkey_ctx_ _cleanup_(prov_pkey_ctx_freep)
#define _cleanup_key_ _cleanup_(prov_key_unrefp)

#endif
