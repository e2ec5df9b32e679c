/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in for shortcertd in the provider tests: a SOCK_SEQPACKET server
 * that speaks docs/PROTOCOL.md through common/ipc-codec.c, checks requests
 * like the daemon (identity, generation, TLS purpose for the server role,
 * scheme), hashes the message itself and signs with an EC, RSA or Ed25519
 * key.  Knobs make
 * it misbehave in the ways the provider must survive.  It runs in a thread
 * of the test or in a child process (which can drop to another uid before
 * listen(), so SO_PEERCRED shows a non-root peer).
 */
#ifndef SHORTCERT_FAKE_SIGNER_H
#define SHORTCERT_FAKE_SIGNER_H

#include <stdbool.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

enum fake_mode {
    FAKE_OK = 0,
    FAKE_REFUSE,       /* ERROR DENIED "uid N not allowed" */
    FAKE_FREEZE,       /* read the request, never answer */
    FAKE_WRONG_ID,     /* answer with another request id */
    FAKE_GARBAGE,      /* answer with a malformed frame */
    FAKE_CLOSE,        /* close the connection instead of answering */
    FAKE_DENY_NONROOT, /* FAKE_OK for uid 0 peers, DENIED for others */
    FAKE_OVERSIZE,     /* answer with a frame longer than IPC_FRAME_MAX */
    FAKE_LONG_SIG,     /* a well-formed reply with a 100-byte "signature" */
    FAKE_OLD,          /* a daemon from before FETCH: UNKNOWN_TYPE */
    FAKE_FETCH_OTHER,  /* FETCH: the reference of another identity */
    FAKE_FETCH_BADCERT, /* FETCH: a certificate that is not DER */
    FAKE_MODE_MAX,
};

/* More identities a fake signer serves, each with its own key. */
struct fake_identity {
    const char *identity;
    EVP_PKEY *key; /* private key (EC, RSA or Ed25519), borrowed */
};

#define FAKE_IDENTITIES_MAX 8

struct fake_signer_cfg {
    const char *address;  /* "/path" or "@abstract-name" */
    const char *identity; /* the first identity it serves */
    EVP_PKEY *key;        /* its private key, borrowed */
    const struct fake_identity *more; /* and these (up to MAX - 1) */
    size_t n_more;
    X509 *const *certs;   /* FETCH answers these for the first identity
                           * (leaf first), borrowed */
    size_t n_certs;
    uid_t run_as;         /* process mode: drop to this uid before listen() */
    enum fake_mode mode;
};

struct fake_signer;

/* Bind and listen in the calling thread (so the address is live when this
 * returns), then serve in a new thread.  0 or -errno. */
int fake_signer_start_thread(const struct fake_signer_cfg *cfg,
                             struct fake_signer **ret);
void fake_signer_set_mode(struct fake_signer *f, enum fake_mode mode);
unsigned fake_signer_requests(struct fake_signer *f); /* SIGN frames seen */
unsigned fake_signer_fetches(struct fake_signer *f);  /* FETCH frames seen */
unsigned fake_signer_accepts(struct fake_signer *f);  /* connections */
/* Stop serving, close every socket, join, free.  NULL is fine. */
void fake_signer_stop(struct fake_signer *f);

/* Fork a child that serves until killed; returns once it listens. */
int fake_signer_start_process(const struct fake_signer_cfg *cfg,
                              pid_t *ret_pid);
/* SIGTERM and reap a child from fake_signer_start_process(). */
void fake_signer_kill(pid_t pid);

enum fake_mode fake_mode_from_string(const char *s);

#endif
