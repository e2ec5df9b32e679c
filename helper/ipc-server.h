/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The signing socket: listeners (path and optional abstract), connections,
 * peer credentials, and request dispatch (docs/PROTOCOL.md).  Runs on the
 * daemon's event loop; every handler re-checks what it acts on.
 */
#ifndef SHORTCERT_IPC_SERVER_H
#define SHORTCERT_IPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cfg;
struct identity;
struct ipc_server;

/* What the admin socket calls into. */
struct ipc_hooks {
    /* A JSON status document with identities from index first on, as many
     * as fit in max bytes (new string, free()). */
    char *(*status)(void *ud, uint32_t first, size_t max);
    /* Renew (rotate: rekey) an identity now. */
    void (*request)(void *ud, struct identity *id, bool rotate);
    /* Re-read the configuration (shortcertctl reload).  0, or -errno
     * with the reason (such as "file:line: what is wrong") in err. */
    int (*reload)(void *ud, char *err, size_t errlen);
    void *ud;
};

/* Create the listeners of the [daemon] config (the signing socket, its
 * abstract twin, the admin socket) and register them with epfd.  A socket
 * in fds (passed by systemd) whose address matches one of them is taken
 * (its slot in fds set to -1) instead of binding a new one. */
int ipc_server_new(const struct cfg *cfg, struct identity **ids, size_t n_ids,
                   int epfd, const struct ipc_hooks *hooks, int *fds,
                   size_t n_fds, struct ipc_server **ret);
void ipc_server_free(struct ipc_server *s);

/* After a configuration reload: the identities that may sign (those a
 * reload removed but that are not retired yet included; copied) and the
 * new configuration (its daemon settings that can change at run time). */
int ipc_server_set_identities(struct ipc_server *s, const struct cfg *cfg,
                              struct identity **ids, size_t n_ids);

/* Handle an epoll event whose data.ptr came from this server.  Returns
 * false if ptr is not one of ours. */
bool ipc_server_handle(struct ipc_server *s, void *ptr, uint32_t events);

/* Peer authorization, exported for tests: true if uid or any of the groups
 * (primary gid included) is on the identity's allow list. */
bool ipc_peer_allowed(const struct identity *id, uid_t uid, gid_t gid,
                      const gid_t *groups, size_t n_groups);

#endif
