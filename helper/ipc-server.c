/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The signing socket (see ipc-server.h and docs/PROTOCOL.md).
 *
 * Trust boundary: everything a connection sends is hostile until
 * ipc_parse_frame() and the body parser accepted it, and a malformed frame
 * closes the connection.  Who the peer is comes only from the kernel
 * (SO_PEERCRED, SO_PEERGROUPS at accept time), never from the message.
 * Each SIGN request is checked, in order: the identity exists, the peer is
 * on its allow list, it has a key, the generation is current, the scheme
 * fits the key, and the message is a TLS handshake input for its role.
 * FETCH (the public material of an identity) passes the same first two
 * checks.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "fileio.h"
#include "identity.h"
#include "ipc-proto.h"
#include "ipc-server.h"
#include "keyref.h"
#include "log.h"
#include "macro.h"
#include "tls-purpose.h"

#define GROUPS_MAX 65536
#define REFUSAL_LOG_BURST 20  /* lines per window */
#define REFUSAL_LOG_WINDOW 10 /* seconds */
#define REMOVED_WARN_S 10     /* "removed but still used": once per this */

struct listener {
    struct ev_source ev;
    int fd;
    bool admin; /* the admin socket: status, renew, rotate */
    char *path; /* unlinked at exit; NULL for abstract or inherited ones */
    char label[128];
};

struct conn {
    struct ev_source ev;
    int fd;
    uid_t uid;
    gid_t gid;
    pid_t pid;
    gid_t *groups;
    size_t n_groups;
    uint64_t last_active; /* monotonic ms of the last request or accept */
    bool admin;           /* accepted on the admin socket */
    struct conn *prev, *next;
};

struct ipc_server {
    const struct cfg *cfg;
    struct identity **ids; /* our own table */
    size_t n_ids;
    int epfd;
    struct listener listeners[3];
    size_t n_listeners;
    struct conn *conns;
    size_t n_conns;
    uint8_t *rx;
    uint8_t *tx;
    int reserve_fd; /* spare descriptor for EMFILE (see accept_one) */
    struct ipc_hooks hooks;
    /* refusal log rate limit */
    time_t rl_window;
    unsigned rl_count;
    unsigned rl_suppressed;
};

/* --- listeners --------------------------------------------------------- */

/* A socket systemd passed us (socket activation) for this address: used
 * as it is, never unlinked.  -1 if none. */
static int take_passed(int *fds, size_t n_fds, const struct sockaddr_un *want,
                       socklen_t want_len)
{
    for (size_t i = 0; i < n_fds; i++) {
        struct sockaddr_un sa;
        socklen_t len = sizeof(sa);
        int type = 0;
        socklen_t tl = sizeof(type);

        if (fds[i] < 0 || getsockname(fds[i], (struct sockaddr *)&sa, &len) < 0 ||
            sa.sun_family != AF_UNIX || len != want_len ||
            memcmp(sa.sun_path, want->sun_path,
                   len - offsetof(struct sockaddr_un, sun_path)) != 0 ||
            getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
            type != SOCK_SEQPACKET)
            continue;
        return TAKE_FD(fds[i]);
    }
    return -1;
}

static int listen_path(struct ipc_server *s, const char *path, mode_t mode,
                       gid_t gid, bool admin, int *fds, size_t n_fds)
{
    struct listener *l = &s->listeners[s->n_listeners];
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    _cleanup_close_ int fd = -1;
    struct stat st;
    int r;

    if (strlen(path) >= sizeof(sa.sun_path))
        return log_error_errno(-ENAMETOOLONG, "Socket path %s is too long", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = take_passed(fds, n_fds, &sa,
                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
                                 strlen(path) + 1));
    if (fd >= 0) {
        /* systemd owns it: its mode and group come from the .socket unit */
        l->ev.kind = EV_LISTENER;
        l->admin = admin;
        snprintf(l->label, sizeof(l->label), "%s (from systemd)", path);
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        l->fd = TAKE_FD(fd);
        s->n_listeners++;
        return 0;
    }
    r = dir_ensure_parents(path);
    if (r < 0)
        return log_error_errno(r, "Cannot create the directory of %s", path);
    if (lstat(path, &st) == 0) {
        int probe;

        if (!S_ISSOCK(st.st_mode))
            return log_error_errno(-EEXIST,
                                   "%s exists and is not a socket; refusing to "
                                   "replace it",
                                   path);
        /* Someone still listening there is another daemon, not debris. */
        probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (probe >= 0 &&
            connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            close(probe);
            return log_error_errno(-EADDRINUSE,
                                   "Another process is listening on %s; not "
                                   "taking over its socket.",
                                   path);
        }
        if (probe >= 0)
            close(probe);
        (void)unlink(path); /* a stale socket of an earlier run */
    }
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return log_error_errno(negerrno(), "socket(AF_UNIX, SOCK_SEQPACKET)");
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return log_error_errno(negerrno(), "Cannot bind %s", path);
    if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0)
        return log_error_errno(negerrno(), "Cannot set the group of %s", path);
    if (chmod(path, mode) < 0)
        return log_error_errno(negerrno(), "Cannot set the mode of %s", path);
    if (listen(fd, SOMAXCONN) < 0)
        return log_error_errno(negerrno(), "Cannot listen on %s", path);
    l->ev.kind = EV_LISTENER;
    l->admin = admin;
    l->path = strdup(path);
    if (!l->path)
        return -ENOMEM;
    snprintf(l->label, sizeof(l->label), "%s", path);
    l->fd = TAKE_FD(fd);
    s->n_listeners++;
    return 0;
}

static int listen_abstract(struct ipc_server *s, const char *name, int *fds,
                           size_t n_fds)
{
    struct listener *l = &s->listeners[s->n_listeners];
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    _cleanup_close_ int fd = -1;
    size_t n = strlen(name);

    if (n + 1 >= sizeof(sa.sun_path))
        return log_error_errno(-ENAMETOOLONG, "Abstract socket name is too long");
    memcpy(sa.sun_path + 1, name, n);
    fd = take_passed(fds, n_fds, &sa,
                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n));
    if (fd >= 0) {
        l->ev.kind = EV_LISTENER;
        snprintf(l->label, sizeof(l->label), "@%s (from systemd)", name);
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        l->fd = TAKE_FD(fd);
        s->n_listeners++;
        return 0;
    }
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return log_error_errno(negerrno(), "socket(AF_UNIX, SOCK_SEQPACKET)");
    if (bind(fd, (struct sockaddr *)&sa,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0)
        return log_error_errno(negerrno(), "Cannot bind abstract socket @%s", name);
    if (listen(fd, SOMAXCONN) < 0)
        return log_error_errno(negerrno(), "Cannot listen on @%s", name);
    l->ev.kind = EV_LISTENER;
    snprintf(l->label, sizeof(l->label), "@%s", name);
    l->fd = TAKE_FD(fd);
    s->n_listeners++;
    return 0;
}

/* --- connections ------------------------------------------------------- */

static void log_refusal(struct ipc_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void conn_close(struct ipc_server *s, struct conn *c)
{
    (void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    (void)close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    free(c->groups);
    free(c);
}

static int read_peer_groups(int fd, gid_t **ret, size_t *ret_n)
{
    socklen_t len = 64 * sizeof(gid_t);
    gid_t *g = NULL;

    for (;;) {
        gid_t *ng = realloc(g, len ? len : sizeof(gid_t));

        if (!ng) {
            free(g);
            return -ENOMEM;
        }
        g = ng;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0)
            break;
        if (errno != ERANGE || len > GROUPS_MAX * sizeof(gid_t)) {
            int e = negerrno();

            free(g);
            return e;
        }
    }
    *ret = g;
    *ret_n = len / sizeof(gid_t);
    return 0;
}

/* Monotonic nanoseconds, for the signing latency histogram. */
static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* How many connections uid holds, and the one it used least recently. */
static unsigned conns_of_uid(const struct ipc_server *s, uid_t uid,
                             struct conn **ret_oldest)
{
    struct conn *oldest = NULL;
    unsigned n = 0;

    for (struct conn *c = s->conns; c; c = c->next) {
        if (c->uid != uid)
            continue;
        n++;
        if (!oldest || c->last_active < oldest->last_active)
            oldest = c;
    }
    *ret_oldest = oldest;
    return n;
}

static void accept_one(struct ipc_server *s, struct listener *l)
{
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    struct conn *c, *oldest = NULL;
    struct epoll_event ev = { .events = EPOLLIN };
    int fd, r;

    fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && s->reserve_fd >= 0) {
        /* Out of descriptors: a level-triggered listener would wake us
         * forever.  Give back the reserve, take the connection, close it,
         * and take the reserve again, so the queue drains. */
        int e = errno;

        (void)close(s->reserve_fd);
        fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            (void)close(fd);
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        log_refusal(s, "Out of file descriptors (%s) with %zu connections; "
                       "closed a new connection on %s",
                    strerror(e), s->n_conns, l->label);
        return;
    }
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_warning_errno(negerrno(), "accept on %s failed", l->label);
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
        log_warning_errno(negerrno(), "SO_PEERCRED failed; closing connection");
        (void)close(fd);
        return;
    }
    if (conns_of_uid(s, cred.uid, &oldest) >= s->cfg->max_conns_per_uid) {
        /* Make room by closing the uid's least recently used connection
         * rather than refusing the new one: a process that hoards
         * connections cannot lock a service of the same uid out, and the
         * provider reconnects transparently if it was the service's. */
        atomic_fetch_add(
            &metrics_refusals[METRICS_REFUSAL_TOO_MANY_CONNECTIONS], 1);
        log_refusal(s, "uid %u has %u connections, the limit "
                       "(max-connections-per-uid); closed its least recently "
                       "used one (pid %d) to accept pid %d",
                    (unsigned)cred.uid, s->cfg->max_conns_per_uid,
                    (int)oldest->pid, (int)cred.pid);
        conn_close(s, oldest);
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        (void)close(fd);
        return;
    }
    c->ev.kind = EV_CONN;
    c->fd = fd;
    c->last_active = mono_ms();
    c->admin = l->admin;
    c->uid = cred.uid;
    c->gid = cred.gid;
    c->pid = cred.pid;
    r = read_peer_groups(fd, &c->groups, &c->n_groups);
    if (r < 0) {
        log_warning_errno(r, "SO_PEERGROUPS for pid %d failed; closing",
                          (int)cred.pid);
        free(c);
        (void)close(fd);
        return;
    }
    ev.data.ptr = c;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        log_warning_errno(negerrno(), "epoll_ctl failed; closing connection");
        free(c->groups);
        free(c);
        (void)close(fd);
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    log_debug("Connection from pid %d uid %u gid %u (%zu groups) on %s",
              (int)c->pid, (unsigned)c->uid, (unsigned)c->gid, c->n_groups,
              l->label);
}

/* --- dispatch ---------------------------------------------------------- */

bool ipc_peer_allowed(const struct identity *id, uid_t uid, gid_t gid,
                      const gid_t *groups, size_t n_groups)
{
    const struct cfg_identity *cfg = id->cfg;

    for (size_t i = 0; i < cfg->n_allow_uids; i++)
        if (cfg->allow_uids[i] == uid)
            return true;
    for (size_t i = 0; i < cfg->n_allow_gids; i++) {
        if (cfg->allow_gids[i] == gid)
            return true;
        for (size_t j = 0; j < n_groups; j++)
            if (cfg->allow_gids[i] == groups[j])
                return true;
    }
    return false;
}

/* One log line per refusal, at most REFUSAL_LOG_BURST per window, so a
 * misbehaving client cannot flood the journal. */
static void log_refusal(struct ipc_server *s, const char *fmt, ...)
{
    time_t now = time(NULL);
    char msg[512];
    va_list ap;

    if (now - s->rl_window >= REFUSAL_LOG_WINDOW) {
        if (s->rl_suppressed)
            log_warning("%u further refusals were not logged in the last %ds",
                        s->rl_suppressed, REFUSAL_LOG_WINDOW);
        s->rl_window = now;
        s->rl_count = 0;
        s->rl_suppressed = 0;
    }
    if (s->rl_count >= REFUSAL_LOG_BURST) {
        s->rl_suppressed++;
        return;
    }
    s->rl_count++;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_warning("%s", msg);
}

static struct identity *find_identity(struct ipc_server *s, const char *name,
                                      size_t len)
{
    for (size_t i = 0; i < s->n_ids; i++)
        if (strlen(s->ids[i]->cfg->name) == len &&
            memcmp(s->ids[i]->cfg->name, name, len) == 0)
            return s->ids[i];
    return NULL;
}

/* Send a built frame; a peer that does not take its reply is dropped. */
static int send_frame(struct ipc_server *s, struct conn *c, int n)
{
    if (n < 0) {
        log_error_errno(n, "Cannot build a reply for pid %d", (int)c->pid);
        return n;
    }
    if (send(c->fd, s->tx, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
        return negerrno();
    return 0;
}

static int reply_error(struct ipc_server *s, struct conn *c,
                       const struct ipc_hdr *h, uint32_t code, uint32_t detail,
                       const char *msg)
{
    return send_frame(s, c,
                      ipc_build_error_rep(s->tx, IPC_FRAME_MAX, h->version,
                                          h->request_id, code, detail, msg));
}

/* The identity a SIGN or FETCH names, if the peer may use it.  NULL when
 * it may not (or it does not exist): the refusal is then already sent,
 * its result in *ret_r. */
static struct identity *identity_for_peer(struct ipc_server *s,
                                          struct conn *c,
                                          const struct ipc_hdr *h,
                                          const char *name, size_t len,
                                          int *ret_r)
{
    struct identity *id = find_identity(s, name, len);
    char msg[IPC_ERRMSG_MAX + 1];

    if (!id) {
        atomic_fetch_add(&metrics_refusals[METRICS_REFUSAL_UNKNOWN_IDENTITY],
                         1);
        log_refusal(s, "AUDIT refused identity=%.*s uid=%u gid=%u pid=%d "
                       "reason=unknown-identity",
                    (int)len, name, (unsigned)c->uid, (unsigned)c->gid,
                    (int)c->pid);
        /* Only root learns that the name does not exist; anyone else gets
         * the same answer as for an identity it may not use, so names
         * cannot be probed. */
        if (c->uid == 0) {
            snprintf(msg, sizeof(msg), "no identity '%.*s'", (int)len, name);
            *ret_r = reply_error(s, c, h, IPC_ERR_NO_IDENTITY, 0, msg);
            return NULL;
        }
        snprintf(msg, sizeof(msg),
                 "uid %u is not allowed to use identity '%.*s' (or it does "
                 "not exist)",
                 (unsigned)c->uid, (int)len, name);
        *ret_r = reply_error(s, c, h, IPC_ERR_DENIED, 0, msg);
        return NULL;
    }
    if (!ipc_peer_allowed(id, c->uid, c->gid, c->groups, c->n_groups)) {
        atomic_fetch_add(&id->signs_denied, 1);
        metrics_sign(&id->metrics, METRICS_SIGN_DENIED, 0);
        log_refusal(s, "AUDIT refused identity=%s uid=%u gid=%u pid=%d "
                       "reason=not-on-allow-list%s",
                    id->cfg->name, (unsigned)c->uid, (unsigned)c->gid,
                    (int)c->pid, h->type == IPC_REQ_FETCH ? " request=fetch" : "");
        snprintf(msg, sizeof(msg),
                 "uid %u is not allowed to use identity '%s'", (unsigned)c->uid,
                 id->cfg->name);
        *ret_r = reply_error(s, c, h, IPC_ERR_DENIED, 0, msg);
        return NULL;
    }
    return id;
}

static int handle_sign(struct ipc_server *s, struct conn *c,
                       const struct ipc_hdr *h, struct ipc_cur body)
{
    struct ipc_sign_req req;
    struct identity *id;
    uint8_t sig[IPC_SIG_MAX];
    size_t siglen = sizeof(sig);
    const char *why = NULL;
    char msg[IPC_ERRMSG_MAX + 1];
    bool retired = false;
    uint64_t t0 = now_ns();
    int r = 0;

    if (ipc_parse_sign_req(body, &req) < 0)
        return -EBADMSG;
    id = identity_for_peer(s, c, h, req.identity, req.identity_len, &r);
    if (!id)
        return r;
    /* The kind of the key that would sign: only RSA keys sign TLS 1.2 DHE
     * parameters. */
    if (tls_purpose_check(id->cfg->role, identity_key_kind(id, req.generation),
                          req.msg, req.msg_len, &why) < 0) {
        atomic_fetch_add(&id->signs_refused, 1);
        metrics_sign(&id->metrics, METRICS_SIGN_PURPOSE, 0);
        log_refusal(s, "AUDIT refused identity=%s uid=%u pid=%d "
                       "reason=purpose input='%s' role=%s",
                    id->cfg->name, (unsigned)c->uid, (int)c->pid, why,
                    id->cfg->role == TLS_ROLE_CLIENT ? "client" : "server");
        snprintf(msg, sizeof(msg),
                 "message is %s; identity '%s' signs only TLS %s handshake "
                 "inputs",
                 why, id->cfg->name,
                 id->cfg->role == TLS_ROLE_CLIENT ? "client" : "server");
        return reply_error(s, c, h, IPC_ERR_PURPOSE, 0, msg);
    }
    r = identity_sign(id, req.generation, req.scheme, req.msg, req.msg_len, sig,
                      &siglen, &retired);
    switch (r) {
    case 0:
        atomic_fetch_add(&id->signs_ok, 1);
        metrics_sign(&id->metrics, METRICS_SIGN_OK, now_ns() - t0);
        atomic_store(&id->last_signed, (int64_t)time(NULL));
        if (id->removed_at && time(NULL) - id->removed_warned >= REMOVED_WARN_S) {
            /* at most one line per identity per REMOVED_WARN_S */
            id->removed_warned = time(NULL);
            log_warning("Identity '%s' was removed from the configuration but "
                        "pid %d (uid %u) still uses it; it is retired (and no "
                        "longer signs) once unused for retire-after",
                        id->cfg->name, (int)c->pid, (unsigned)c->uid);
        }
        if (retired)
            log_refusal(s, "Identity '%s': pid %d (uid %u) still signs with a "
                           "retired key generation; reload that service before "
                           "the generation's grace runs out",
                        id->cfg->name, (int)c->pid, (unsigned)c->uid);
        return send_frame(s, c,
                          ipc_build_sign_rep(s->tx, IPC_FRAME_MAX, h->version,
                                             h->request_id, sig, siglen,
                                             retired ? IPC_NOTICE_RETIRED
                                                     : IPC_NOTICE_NONE));
    case -ENOKEY:
        metrics_sign(&id->metrics, METRICS_SIGN_ERROR, 0);
        return reply_error(s, c, h, IPC_ERR_NOT_READY, 0,
                           "identity has no key yet");
    case -ESTALE:
        atomic_fetch_add(&id->signs_refused, 1);
        metrics_sign(&id->metrics, METRICS_SIGN_STALE, 0);
        log_refusal(s, "Refused signing for identity '%s' to uid %u (pid %d): "
                       "the service holds a key generation that is no longer "
                       "current; reload it",
                    id->cfg->name, (unsigned)c->uid, (int)c->pid);
        return reply_error(s, c, h, IPC_ERR_STALE_KEY, 0,
                           "key generation is not current: reload the service");
    case -EINVAL:
        atomic_fetch_add(&id->signs_refused, 1);
        metrics_sign(&id->metrics, METRICS_SIGN_ERROR, 0);
        snprintf(msg, sizeof(msg), "scheme %u does not fit this key",
                 (unsigned)req.scheme);
        return reply_error(s, c, h, IPC_ERR_SCHEME, 0, msg);
    default:
        atomic_fetch_add(&id->signs_failed, 1);
        metrics_sign(&id->metrics, METRICS_SIGN_ERROR, 0);
        log_error("Signing for identity '%s' failed", id->cfg->name);
        return reply_error(s, c, h, IPC_ERR_INTERNAL, 0, "signing failed");
    }
}

/* FETCH: the public material of the identity's current generation, so a
 * service can load "shortcert:NAME" without files.  Nothing secret: the
 * reference holds the public key, the chain is public; but who may learn
 * that the identity exists is decided exactly as for SIGN. */
static int handle_fetch(struct ipc_server *s, struct conn *c,
                        const struct ipc_hdr *h, struct ipc_cur body)
{
    uint8_t *der = NULL; /* OPENSSL_malloc'ed by keyref_encode_der() */
    uint8_t *certs[IPC_FETCH_CERTS_MAX] = { NULL };
    struct ipc_fetch_rep rep = { 0 };
    struct identity *id;
    struct keygen *g;
    struct keyref ref = { 0 };
    const char *name;
    size_t len, der_len = 0, n_certs = 0;
    int r = 0, n = -1;

    if (ipc_parse_ident_req(body, &name, &len) < 0)
        return -EBADMSG;
    id = identity_for_peer(s, c, h, name, len, &r);
    if (!id)
        return r;
    g = identity_current(id);
    if (!g || !g->key) {
        keygen_unref(g);
        return reply_error(s, c, h, IPC_ERR_NOT_READY, 0,
                           "identity has no key yet");
    }
    r = keyref_from_pkey(NULL, id->cfg->name, g->key, &ref);
    if (r == 0)
        r = keyref_encode_der(&ref, &der, &der_len);
    keyref_done(&ref);
    /* The certificate can be replaced by a renewal worker: encode it under
     * the identity's lock (a copy, no I/O). */
    pthread_mutex_lock(&id->lock);
    if (r == 0 && g->leaf) {
        int k = g->chain ? sk_X509_num(g->chain) : 0;

        for (int i = -1; i < k && n_certs < IPC_FETCH_CERTS_MAX; i++) {
            X509 *x = i < 0 ? g->leaf : sk_X509_value(g->chain, i);
            int dl = i2d_X509(x, &certs[n_certs]);

            if (dl <= 0) {
                r = -ENOMEM;
                break;
            }
            rep.certs[n_certs].p = certs[n_certs];
            rep.certs[n_certs].len = (size_t)dl;
            n_certs++;
        }
    }
    pthread_mutex_unlock(&id->lock);
    keygen_unref(g);
    if (r == 0) {
        rep.keyref = (struct ipc_der){ .p = der, .len = der_len };
        rep.n_certs = n_certs;
        n = ipc_build_fetch_rep(s->tx, IPC_FRAME_MAX, h->version,
                                h->request_id, &rep);
    }
    for (size_t i = 0; i < n_certs; i++)
        OPENSSL_free(certs[i]);
    OPENSSL_free(der);
    if (r < 0 || n < 0) {
        log_error("Cannot answer FETCH for identity '%s': %s", id->cfg->name,
                  r < 0 ? "encoding failed" : "chain does not fit a frame");
        return reply_error(s, c, h, IPC_ERR_INTERNAL, 0,
                           "cannot encode the identity's public material");
    }
    return send_frame(s, c, n);
}

/* The admin socket: root, or a member of admin-group. */
static bool admin_allowed(const struct ipc_server *s, const struct conn *c)
{
    gid_t g = s->cfg->admin_gid;

    if (c->uid == 0)
        return true;
    if (g == (gid_t)-1)
        return false;
    if (c->gid == g)
        return true;
    for (size_t i = 0; i < c->n_groups; i++)
        if (c->groups[i] == g)
            return true;
    return false;
}

static int handle_status(struct ipc_server *s, struct conn *c,
                         const struct ipc_hdr *h, struct ipc_cur body)
{
    _cleanup_free_ char *json = NULL;
    uint32_t first;
    size_t len;

    if (ipc_parse_status_req(body, &first) < 0)
        return -EBADMSG;
    json = s->hooks.status ? s->hooks.status(s->hooks.ud, first, IPC_STATUS_MAX)
                           : NULL;
    if (!json)
        return reply_error(s, c, h, IPC_ERR_INTERNAL, 0, "no status");
    len = strlen(json);
    if (len > IPC_STATUS_MAX)
        return reply_error(s, c, h, IPC_ERR_INTERNAL, 0, "status too large");
    return send_frame(s, c,
                      ipc_build_status_rep(s->tx, IPC_FRAME_MAX, h->version,
                                           h->request_id, json, len));
}

/* renew NAME / rotate NAME (trust boundary: admin socket, admin peers). */
static int handle_request(struct ipc_server *s, struct conn *c,
                          const struct ipc_hdr *h, struct ipc_cur body)
{
    const char *name;
    size_t len;
    struct identity *id;
    bool rotate = h->type == IPC_REQ_ROTATE;
    char msg[IPC_ERRMSG_MAX + 1];

    if (ipc_parse_ident_req(body, &name, &len) < 0)
        return -EBADMSG;
    id = find_identity(s, name, len);
    if (!id || id->removed_at) {
        snprintf(msg, sizeof(msg), "no identity '%.*s'%s", (int)len, name,
                 id ? " (removed from the configuration)" : "");
        return reply_error(s, c, h, IPC_ERR_NO_IDENTITY, 0, msg);
    }
    log_notice("AUDIT %s-requested identity=%s uid=%u pid=%d",
               rotate ? "rotation" : "renewal", id->cfg->name, (unsigned)c->uid,
               (int)c->pid);
    if (s->hooks.request)
        s->hooks.request(s->hooks.ud, id, rotate);
    snprintf(msg, sizeof(msg), "%s of '%s' requested",
             rotate ? "key rotation" : "renewal", id->cfg->name);
    return send_frame(s, c, ipc_build_ok_rep(s->tx, IPC_FRAME_MAX, h->version,
                                             h->request_id, msg));
}

/* reload (trust boundary: admin socket, admin peers). */
static int handle_reload(struct ipc_server *s, struct conn *c,
                         const struct ipc_hdr *h, struct ipc_cur body)
{
    char err[CFG_ERR_MAX] = "", msg[IPC_ERRMSG_MAX + 1];
    const char *name;
    size_t len;
    int r;

    if (ipc_parse_ident_req(body, &name, &len) < 0 || len != 6 ||
        memcmp(name, "config", 6) != 0)
        return -EBADMSG;
    log_notice("AUDIT reload-requested uid=%u pid=%d", (unsigned)c->uid,
               (int)c->pid);
    r = s->hooks.reload ? s->hooks.reload(s->hooks.ud, err, sizeof(err))
                        : -EOPNOTSUPP;
    if (r < 0) {
        snprintf(msg, sizeof(msg), "%s",
                 err[0] ? err : "configuration reload is not available");
        return reply_error(s, c, h, IPC_ERR_BAD_REQUEST, 0, msg);
    }
    snprintf(msg, sizeof(msg), "%s", err[0] ? err : "configuration reloaded");
    return send_frame(s, c, ipc_build_ok_rep(s->tx, IPC_FRAME_MAX, h->version,
                                             h->request_id, msg));
}

/* -EBADMSG: malformed, close without reply; other < 0: close. */
static int dispatch(struct ipc_server *s, struct conn *c, size_t n)
{
    struct ipc_hdr h;
    struct ipc_cur body;
    char msg[64];

    if (ipc_parse_frame(s->rx, n, &h, &body) < 0)
        return -EBADMSG;
    if (h.version < IPC_VERSION_MIN || h.version > IPC_VERSION_MAX) {
        snprintf(msg, sizeof(msg), "protocol version %u not spoken; highest is %u",
                 (unsigned)h.version, (unsigned)IPC_VERSION_MAX);
        return reply_error(s, c, &h, IPC_ERR_VERSION, IPC_VERSION_MAX, msg);
    }
    /* The signing socket signs; the admin socket administers.  A request
     * on the wrong socket is a type that socket does not know. */
    if (!c->admin && h.type == IPC_REQ_SIGN)
        return handle_sign(s, c, &h, body);
    if (!c->admin && h.type == IPC_REQ_FETCH)
        return handle_fetch(s, c, &h, body);
    if (c->admin && (h.type == IPC_REQ_STATUS || h.type == IPC_REQ_RENEW ||
                     h.type == IPC_REQ_ROTATE || h.type == IPC_REQ_RELOAD)) {
        if (!admin_allowed(s, c)) {
            log_refusal(s, "AUDIT refused admin request uid=%u pid=%d: not root "
                           "or admin-group",
                        (unsigned)c->uid, (int)c->pid);
            return reply_error(s, c, &h, IPC_ERR_DENIED, 0,
                               "the admin socket is for root and admin-group");
        }
        if (h.type == IPC_REQ_STATUS)
            return handle_status(s, c, &h, body);
        if (h.type == IPC_REQ_RELOAD)
            return handle_reload(s, c, &h, body);
        return handle_request(s, c, &h, body);
    }
    switch (h.type) {
    default:
        snprintf(msg, sizeof(msg), "unknown request type 0x%04x", (unsigned)h.type);
        return reply_error(s, c, &h, IPC_ERR_UNKNOWN_TYPE, 0, msg);
    }
}

static void conn_readable(struct ipc_server *s, struct conn *c)
{
    /* One message per wakeup: a client has one request in flight, so a
     * second recv() would only return EAGAIN (a syscall per signature);
     * the listener is level-triggered, so anything left queued wakes us
     * again, after the other connections had their turn. */
    for (int i = 0; i < 1; i++) {
        ssize_t n = recv(c->fd, s->rx, IPC_FRAME_MAX, MSG_TRUNC | MSG_DONTWAIT);
        int r;

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            conn_close(s, c);
            return;
        }
        if ((size_t)n > IPC_FRAME_MAX) {
            log_refusal(s, "Frame of %zd bytes from pid %d uid %u exceeds the "
                        "%u-byte limit; closing",
                        n, (int)c->pid, (unsigned)c->uid, IPC_FRAME_MAX);
            conn_close(s, c);
            return;
        }
        c->last_active = mono_ms();
        r = dispatch(s, c, (size_t)n);
        if (r == -EBADMSG) {
            atomic_fetch_add(&metrics_refusals[METRICS_REFUSAL_BAD_FRAME], 1);
            log_refusal(s, "Malformed frame from pid %d uid %u; closing the "
                        "connection",
                        (int)c->pid, (unsigned)c->uid);
            conn_close(s, c);
            return;
        }
        if (r < 0) {
            log_debug_errno(r, "Closing connection of pid %d", (int)c->pid);
            conn_close(s, c);
            return;
        }
    }
}

bool ipc_server_handle(struct ipc_server *s, void *ptr, uint32_t events)
{
    struct ev_source *ev = ptr;

    if (ev->kind == EV_LISTENER) {
        for (size_t i = 0; i < s->n_listeners; i++)
            if (ptr == &s->listeners[i]) {
                /* accept a bounded batch per wakeup */
                for (int k = 0; k < 64; k++) {
                    size_t before = s->n_conns;

                    accept_one(s, &s->listeners[i]);
                    if (s->n_conns == before)
                        break;
                }
                return true;
            }
        return false;
    }
    if (ev->kind != EV_CONN)
        return false;
    if (events & EPOLLIN)
        conn_readable(s, (struct conn *)ptr);
    else if (events & (EPOLLHUP | EPOLLERR))
        conn_close(s, (struct conn *)ptr);
    return true;
}

int ipc_server_set_identities(struct ipc_server *s, const struct cfg *cfg,
                              struct identity **ids, size_t n_ids)
{
    struct identity **nv = calloc(n_ids ? n_ids : 1, sizeof(*nv));

    if (!nv)
        return -ENOMEM;
    memcpy(nv, ids, n_ids * sizeof(*ids));
    free(s->ids);
    s->ids = nv;
    s->n_ids = n_ids;
    s->cfg = cfg;
    return 0;
}

int ipc_server_new(const struct cfg *cfg, struct identity **ids, size_t n_ids,
                   int epfd, const struct ipc_hooks *hooks, int *fds,
                   size_t n_fds, struct ipc_server **ret)
{
    struct ipc_server *s = calloc(1, sizeof(*s));
    int r = 0;

    if (!s)
        return -ENOMEM;
    s->epfd = epfd;
    if (ipc_server_set_identities(s, cfg, ids, n_ids) < 0) {
        free(s);
        return -ENOMEM;
    }
    if (hooks)
        s->hooks = *hooks;
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    s->rx = malloc(IPC_FRAME_MAX + 1);
    s->tx = malloc(IPC_FRAME_MAX);
    if (!s->rx || !s->tx) {
        ipc_server_free(s);
        return -ENOMEM;
    }
    if (cfg->socket_path[0])
        r = listen_path(s, cfg->socket_path, cfg->socket_mode, cfg->socket_gid,
                        false, fds, n_fds);
    if (r == 0 && cfg->abstract_socket)
        r = listen_abstract(s, cfg->abstract_socket, fds, n_fds);
    if (r == 0 && s->n_listeners == 0)
        r = log_error_errno(-EINVAL, "No socket configured: set socket or "
                                     "abstract-socket in [daemon]");
    /* The admin socket: root's, and admin-group's if one is set. */
    if (r == 0 && cfg->admin_socket && cfg->admin_socket[0])
        r = listen_path(s, cfg->admin_socket,
                        cfg->admin_gid == (gid_t)-1 ? 0600 : 0660,
                        cfg->admin_gid, true, fds, n_fds);
    for (size_t i = 0; r == 0 && i < s->n_listeners; i++) {
        struct epoll_event ev = { .events = EPOLLIN,
                                  .data.ptr = &s->listeners[i] };

        if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->listeners[i].fd, &ev) < 0)
            r = negerrno();
        else
            log_info("Listening for %s on %s",
                     s->listeners[i].admin ? "admin requests" : "signing requests",
                     s->listeners[i].label);
    }
    if (r < 0) {
        ipc_server_free(s);
        return r;
    }
    *ret = s;
    return 0;
}

void ipc_server_free(struct ipc_server *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_close(s, s->conns);
    for (size_t i = 0; i < s->n_listeners; i++) {
        (void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listeners[i].fd, NULL);
        (void)close(s->listeners[i].fd);
        if (s->listeners[i].path) {
            (void)unlink(s->listeners[i].path);
            free(s->listeners[i].path);
        }
    }
    if (s->reserve_fd >= 0)
        (void)close(s->reserve_fd);
    free(s->rx);
    free(s->tx);
    free(s->ids);
    free(s);
}
