/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An identity at run time: its private key (the only place it exists),
 * its current certificate, what has been written for services, and its
 * counters.  The signing path (event loop) and the enrollment worker share
 * it under a mutex held only for pointer and field copies, never across I/O
 * or a signature.
 *
 * On disk, in the state directory (0700, root):
 *   identities/<name>/key.pem    PKCS#8 private key, 0600
 *   identities/<name>/chain.pem  the adopted chain (leaf first), 0600
 */
#ifndef SHORTCERT_IDENTITY_H
#define SHORTCERT_IDENTITY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/types.h>

#include "config.h"
#include "ipc-proto.h"

struct identity {
    const struct cfg_identity *cfg; /* borrowed from the daemon's struct cfg */
    char *dir;                      /* state dir of this identity */

    pthread_mutex_t lock;
    /* --- under lock --- */
    EVP_PKEY *key;
    uint8_t generation[IPC_GENERATION_LEN];
    char gen_hex[17]; /* first 8 bytes, for logs */
    bool have_cert;
    char serial[80];
    time_t not_before, not_after;
    time_t last_issued;
    time_t next_attempt; /* when the worker should (re-)enroll */
    unsigned failures;   /* consecutive enrollment failures */
    char last_error[256];
    /* The certificate is ours but the service files could not be written:
     * retry writing them (never re-enroll for that). */
    bool delivery_pending;
    unsigned delivery_failures;
    time_t next_delivery;
    /* --- the event loop's alone (identity_sign) --- */
    EVP_PKEY_CTX *sign_ctx;
    uint8_t sign_ctx_gen[IPC_GENERATION_LEN];
    /* --- counters (no lock) --- */
    atomic_ulong signs_ok, signs_denied, signs_refused, signs_failed;
};

/* Prepare state: create the identity's state dir, load or generate its key
 * (a corrupt key file is moved aside and reported, never overwritten), and
 * adopt a stored chain if it is still valid for this key and config (then
 * make sure the service files are in place).  Returns -errno only for
 * errors that make the identity unusable (e.g. the state dir). */
int identity_init(struct identity *id, const struct cfg_identity *cfg,
                  const char *state_dir);
void identity_done(struct identity *id);

/* A new chain from the CA: accept it only if the leaf carries our public
 * key, exactly the configured names, verifies to the configured root, is
 * valid now, and outlives the current one.  Then persist it and write the
 * service files (chain + reference) as a pair.  Returns 0 once the chain is
 * accepted and stored, even if the service files could not be written
 * (then delivery_pending is set and identity_deliver() retries); -errno
 * with the reason in err if the chain is refused or cannot be stored. */
int identity_accept_chain(struct identity *id, const char *pem, size_t len,
                          const char *method, char *err, size_t errlen);

/* Write the service files from the stored chain (retry after a failed
 * delivery).  Updates delivery_pending and its back-off. */
int identity_deliver(struct identity *id);

/* Sign msg for a peer (all checks except the key's done by the caller).
 * Called from the event loop thread only (it keeps a signing context).
 * -ESTALE: generation not current; -ENOKEY: no key; -EINVAL: scheme does not
 * fit; -EIO: signing failed. */
int identity_sign(struct identity *id, const uint8_t gen[IPC_GENERATION_LEN],
                  uint32_t scheme, const uint8_t *msg, size_t len,
                  uint8_t *sig, size_t *siglen);

/* A new reference to the current key (EVP_PKEY_free it), or NULL. */
EVP_PKEY *identity_get_key(struct identity *id);

/* JSON object describing the identity (new reference). */
json_t *identity_status(struct identity *id);

#endif
