/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An identity at run time: its key generations (the private keys exist
 * only here), its current certificate, what has been written for services,
 * its renewal state and its counters.  The signing path (event loop) and
 * the renewal workers share it under a mutex held only for pointer and
 * field copies, never across I/O or a signature.
 *
 * A key generation is a key and the certificate issued for it.  On disk,
 * in the state directory (0700, root), each has a directory:
 *
 *   identities/<name>/gen-<16 hex>/key.pem    PKCS#8 private key, 0600
 *   identities/<name>/gen-<16 hex>/chain.pem  its chain (leaf first)
 *   identities/<name>/gen-<16 hex>/meta.json  key age, renewals, lifetime
 *                                             asked for, retirement
 *   identities/<name>/current -> gen-...      symlink, switched by rename
 *
 * After a key rotation the previous generation is retired but stays
 * usable for signing (services that loaded its reference keep working)
 * until the later of rotate-grace and the new certificate being confirmed
 * served, never past its own certificate's notAfter.  Every file is
 * replaced by write + fsync + rename; a crash at any point leaves either
 * the old or the new state, which identity_init() completes or discards.
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
#include <openssl/x509.h>

#include "config.h"
#include "ipc-proto.h"
#include "metrics.h"
#include "schedule.h"

#define IDENTITY_OLD_MAX 4

struct keygen {
    atomic_int refs;
    uint8_t generation[IPC_GENERATION_LEN];
    char gen_hex[17]; /* first 8 bytes, for logs and the directory name */
    EVP_PKEY *key;
    enum tls_key_kind kind;
    EVP_PKEY_CTX *sign_ctx; /* the event loop's alone (EC and RSA) */
    char *dir;
    /* its certificate (leaf NULL: none yet) */
    X509 *leaf;
    STACK_OF(X509) *chain; /* intermediates */
    char *chain_pem;       /* clean PEM, leaf first */
    size_t chain_len;
    time_t nb, na;
    bool client_auth; /* the leaf allows TLS client auth (mTLS renew) */
    char serial[80];
    /* persisted in meta.json */
    time_t key_created;
    time_t issued_at;
    unsigned renewals;         /* certificates obtained for this key - 1 */
    int64_t requested_lifetime; /* the lifetime asked for (0: CA default) */
    char method[16];            /* how the current certificate came */
    time_t retired_at;          /* 0: current or pending */
    time_t grace_until;
    bool successor_confirmed;   /* the next generation is served */
};

struct keygen *keygen_ref(struct keygen *g);
void keygen_unref(struct keygen *g);

struct identity {
    const struct cfg_identity *cfg; /* borrowed from the daemon's struct cfg */
    char *dir;                      /* state dir of this identity */
    struct sched_policy policy;

    pthread_mutex_t lock;
    /* --- under lock --- */
    struct keygen *cur;
    struct keygen *old[IDENTITY_OLD_MAX]; /* retired, still usable */
    size_t n_old;
    time_t renew_at;
    bool in_flight;
    bool force_renew, force_rotate;
    unsigned failures; /* consecutive */
    time_t retry_at;
    time_t last_success;
    time_t last_failure;
    char last_method[16];
    char last_error[256];
    /* The certificate is ours but the service files could not be written:
     * retry writing them (never re-enroll for that). */
    bool delivery_pending;
    unsigned delivery_failures;
    time_t next_delivery;
    /* live verification of the last delivery */
    int verify_state; /* 0 unknown/none configured, 1 served, -1 not */
    time_t last_verified;
    /* one per cfg->targets[] (target-run.c), NULL until first used */
    struct target_state *targets;
    /* --- counters (no lock) --- */
    atomic_ulong signs_ok, signs_denied, signs_refused, signs_failed;
    atomic_ulong renewals_ok, renewals_failed;
    struct metrics_id metrics; /* Prometheus counters (docs/METRICS.md) */
    /* --- configuration reload --- */
    _Atomic int64_t last_signed; /* wall-clock s of the last signature */
    time_t removed_at;     /* a reload removed it (event loop only) */
    time_t removed_warned; /* last "still uses it" warning (event loop) */
};

/* Load or create the identity's state (see above): migrate the layout of
 * earlier versions, recover from a crash in the middle of a rotation,
 * move corrupt entries aside (reported, never overwritten), generate a key
 * if there is none, and write the service files if the stored certificate
 * is valid.  -errno only when the identity is unusable (state dir). */
int identity_init(struct identity *id, const struct cfg_identity *cfg,
                  const char *state_dir);
void identity_done(struct identity *id);

/* A reload changed the identity's settings (cfg is the new section of
 * the same name): the schedule policy, the [target] state and the
 * renewal time follow it; what renew keeps (names, lifetime, key type)
 * is compared at the next plan as always; the service files are written
 * again if their paths or modes changed.  Renewal engine paused. */
void identity_reconfigure(struct identity *id, const struct cfg_identity *cfg);

/* The key reference PEM of generation g (new string, free() it). */
int identity_reference_pem(const struct identity *id, const struct keygen *g,
                           char **ret, size_t *ret_len);

/* The current generation (a new reference), or NULL. */
struct keygen *identity_current(struct identity *id);

/* A new key of the configured type in a pending generation directory (not
 * current until a certificate for it is accepted).  A new reference. */
struct keygen *identity_new_keygen(struct identity *id, char *err,
                                   size_t errlen);

/* Remove the directory of a pending generation that got no certificate
 * (a failed rekey or enrollment); never one in use. */
void identity_discard_keygen(struct identity *id, struct keygen *g);

/* A chain from the CA for generation g (the current one: a renewal; a
 * pending one: an enrollment or rekey that switches keys).  Accepted only
 * if the leaf carries g's key, exactly the configured names, verifies to
 * the configured root, is valid now, and outlives the certificate it
 * replaces.  Then it is persisted, g becomes current (the previous current
 * generation is retired), the schedule is updated, and the service files
 * are written as a pair (a failure to write them is retried by
 * identity_deliver(), never by enrolling again).  Returns 0, or -errno
 * with the reason in err. */
int identity_accept_chain(struct identity *id, struct keygen *g,
                          const char *pem, size_t len, const char *method,
                          int64_t requested_lifetime, char *err,
                          size_t errlen);

/* Write the service files from the current generation (a retry after a
 * failed delivery).  Updates delivery_pending and its back-off. */
int identity_deliver(struct identity *id);

/* The new certificate is served (or nothing can check it): retired
 * generations may go once their grace is over. */
void identity_confirm_served(struct identity *id);

/* Drop retired generations whose window has closed (their key files are
 * removed).  Returns the earliest future time another one closes, or 0. */
time_t identity_expire_old(struct identity *id, time_t now);

/* Whether what renew keeps (names, lifetime, key type) no longer matches
 * the configuration for generation g. */
bool identity_config_changed(const struct identity *id, const struct keygen *g);
bool identity_key_type_changed(const struct identity *id,
                               const struct keygen *g);

/* The kind of the key of generation gen (current or retired), which the
 * TLS purpose check needs; the configured type's kind if there is none. */
enum tls_key_kind identity_key_kind(struct identity *id,
                                    const uint8_t gen[IPC_GENERATION_LEN]);

/* Sign msg for a peer (all checks but the key's done by the caller):
 * the generation must be the current one or a retired one still in its
 * window (then *ret_retired is set).  Called from the event loop thread
 * only.
 * -ESTALE: generation not usable; -ENOKEY: no key; -EINVAL: the scheme
 * does not fit; -EIO: signing failed. */
int identity_sign(struct identity *id, const uint8_t gen[IPC_GENERATION_LEN],
                  uint32_t scheme, const uint8_t *msg, size_t len,
                  uint8_t *sig, size_t *siglen, bool *ret_retired);

/* A snapshot for the metrics: gauges copied under the lock, counters by
 * reference; the endpoints of its own verify list and of its [target]s
 * go into eps (at most max_eps; their names borrowed from the
 * configuration).  Returns how many endpoints were written. */
size_t identity_metrics_view(struct identity *id, struct metrics_id_view *v,
                             struct metrics_endpoint_view *eps,
                             size_t max_eps);

/* JSON object describing the identity (new reference). */
json_t *identity_status(struct identity *id);

#endif
