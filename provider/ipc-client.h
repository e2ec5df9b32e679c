/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider's only door to shortcertd.  One SOCK_SEQPACKET connection per
 * thread, opened lazily and re-opened after fork() or an euid change; every
 * wait is bounded by the configured timeout, and after a timeout a back-off
 * window makes every signature fail at once instead of stalling the
 * service's event loop again.  Failures come back as -errno plus a reason
 * and a human sentence (struct ipc_fail) for the caller to raise.
 */
#ifndef SHORTCERT_IPC_CLIENT_H
#define SHORTCERT_IPC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc-proto.h"
#include "macro.h"

#define IPC_CLIENT_TIMEOUT_MS_DEFAULT 1000
#define IPC_CLIENT_BACKOFF_MS_DEFAULT 2000
#define IPC_CLIENT_TIMEOUT_MS_MAX 60000
#define IPC_CLIENT_BACKOFF_MS_MAX 600000

struct ipc_client;

/* Why a request failed: a PROV_R_* reason and the sentence to show. */
struct ipc_fail {
    uint32_t reason;
    char text[512];
};

/* Make a client.  The three settings are the raw provider parameters
 * (borrowed, may be NULL for the default).  A bad setting does not fail
 * here, because a provider that fails to initialise is silently skipped by
 * OpenSSL 3.0; instead every signature fails with a sentence naming the
 * parameter.  -ENOMEM is the only error.  *ret is new; ipc_client_free(). */
_warn_unused_ int ipc_client_new(const char *sock, const char *timeout_ms,
                                 const char *backoff_ms, const char *version,
                                 bool debug,
                                 struct ipc_client **ret);

/* Closes every connection of this client, in every thread.  NULL is fine. */
void ipc_client_free(struct ipc_client *c);

/* The socket address as configured ("/path" or "@name"); borrowed. */
const char *ipc_client_address(const struct ipc_client *c);

/* Ask shortcertd to sign msg for identity/generation with scheme.  The
 * signature goes to sig (capacity sig_cap), its length to *ret_sig_len.
 * Returns 0, or -errno with *fail filled in. */
_warn_unused_ int ipc_client_sign(struct ipc_client *c, const char *identity,
                                  const uint8_t generation[IPC_GENERATION_LEN],
                                  uint32_t scheme, const uint8_t *msg,
                                  size_t msg_len, uint8_t *sig, size_t sig_cap,
                                  size_t *ret_sig_len, struct ipc_fail *fail);

/* Ask shortcertd for identity's public material (FETCH): *ret points into
 * *ret_frame, a new buffer to free() after use.  -EOPNOTSUPP when the
 * daemon predates FETCH; else like ipc_client_sign(). */
_warn_unused_ int ipc_client_fetch(struct ipc_client *c, const char *identity,
                                   uint8_t **ret_frame,
                                   struct ipc_fetch_rep *ret,
                                   struct ipc_fail *fail);

#endif
