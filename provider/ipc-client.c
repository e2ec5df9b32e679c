/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The only code in the provider that talks to shortcertd (docs/PROTOCOL.md).
 * It owns the connections: one per thread, found through a pthread key so
 * the hot path takes no lock, opened lazily and re-opened whenever the pid
 * or euid differs from when it was opened (services load keys in a parent
 * and sign in forked, privilege-dropped children; shortcertd reads the
 * peer's credentials at accept time).  Every wait is bounded by
 * SO_SNDTIMEO/SO_RCVTIMEO; a timeout arms a back-off window during which
 * requests fail at once.  A global registry of connections (locked only on
 * open, thread exit, teardown and fork) lets a forked child close the
 * descriptors of threads that did not survive the fork, and lets teardown
 * close every thread's connection.  Nothing here logs; debug tracing to
 * stderr is opt-in.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "build-config.h"
#include "ipc-client.h"
#include "prov.h"

struct ipc_conn {
    struct ipc_client *client;
    pthread_t owner;
    int fd;
    pid_t pid;   /* getpid() when fd was opened */
    uid_t euid;  /* geteuid() when fd was opened */
    uint32_t next_id;
    bool rcvtimeo_shortened; /* an EINTR retry lowered SO_RCVTIMEO */
    struct ipc_conn *prev, *next; /* registry links */
    uint8_t buf[IPC_FRAME_MAX];   /* request, then reply; no secrets */
};

struct ipc_client {
    struct sockaddr_un addr;
    socklen_t addr_len;
    char display[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];
    int timeout_ms;
    int backoff_ms;
    int version; /* the protocol version we speak (shortcert-protocol-version) */
    char config_error[320]; /* non-empty: every request fails with it */
    bool debug;
    bool key_ok;
    pthread_key_t key;
    _Atomic long long backoff_until_ms; /* CLOCK_MONOTONIC; 0 = none */
};

/* --- the registry of open connections ---------------------------------- */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ipc_conn *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void registry_link(struct ipc_conn *conn)
{
    (void)pthread_mutex_lock(&registry_lock);
    conn->prev = NULL;
    conn->next = registry;
    if (registry)
        registry->prev = conn;
    registry = conn;
    (void)pthread_mutex_unlock(&registry_lock);
}

/* Caller holds registry_lock. */
static void registry_unlink_locked(struct ipc_conn *conn)
{
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        registry = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    conn->prev = conn->next = NULL;
}

static void conn_close(struct ipc_conn *conn)
{
    /* close(), never shutdown(): after fork() the parent (or a sibling)
     * still uses the same connection, and shutdown() would cut it off. */
    if (conn->fd >= 0)
        (void)close(conn->fd);
    conn->fd = -1;
}

/* Fork handlers keep the registry lock consistent across fork() and, in
 * the child, drop the connections inherited from the parent: those of the
 * forking thread are re-opened on next use, those of threads that do not
 * exist in the child are freed.  Registered once; the module is linked
 * -z nodelete, so the handlers never point into unmapped code. */
static void atfork_prepare(void)
{
    (void)pthread_mutex_lock(&registry_lock);
}

static void atfork_parent(void)
{
    (void)pthread_mutex_unlock(&registry_lock);
}

static void atfork_child(void)
{
    pthread_t self = pthread_self();
    struct ipc_conn *conn, *next;

    for (conn = registry; conn; conn = next) {
        next = conn->next;
        conn_close(conn);
        if (!pthread_equal(conn->owner, self)) {
            registry_unlink_locked(conn);
            free(conn);
        }
    }
    (void)pthread_mutex_unlock(&registry_lock);
}

static void atfork_register(void)
{
    (void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* pthread key destructor: the thread is exiting. */
static void conn_destroy(void *p)
{
    struct ipc_conn *conn = p;

    (void)pthread_mutex_lock(&registry_lock);
    registry_unlink_locked(conn);
    (void)pthread_mutex_unlock(&registry_lock);
    conn_close(conn);
    free(conn);
}

/* --- small helpers ------------------------------------------------------ */

static long long now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval ms_to_tv(long long ms)
{
    return (struct timeval){ .tv_sec = (time_t)(ms / 1000),
                             .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
}

static const char *errstr(int e, char *buf, size_t n)
{
    return strerror_r(e, buf, n); /* GNU variant: returns the text */
}

static void fail_set(struct ipc_fail *fail, uint32_t reason, const char *fmt,
                     ...) __attribute__((format(printf, 3, 4)));
static void fail_set(struct ipc_fail *fail, uint32_t reason, const char *fmt,
                     ...)
{
    va_list ap;

    fail->reason = reason;
    va_start(ap, fmt);
    (void)vsnprintf(fail->text, sizeof(fail->text), fmt, ap);
    va_end(ap);
}

static void dbg(const struct ipc_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void dbg(const struct ipc_client *c, const char *fmt, ...)
{
    va_list ap;

    if (!c->debug)
        return;
    va_start(ap, fmt);
    (void)fprintf(stderr, "shortcert[%d]: ", (int)getpid());
    (void)vfprintf(stderr, fmt, ap);
    (void)fputc('\n', stderr);
    va_end(ap);
}

/* --- configuration ------------------------------------------------------ */

static int parse_ms(struct ipc_client *c, const char *name, const char *s,
                    int def, int min, int max, int *ret)
{
    unsigned long v = 0;

    if (!s) {
        *ret = def;
        return 0;
    }
    /* Digits only: no sign, no blanks, no suffix, no overflow. */
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (unsigned long)max)
            goto bad;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (*s == '\0' || v < (unsigned long)min || v > (unsigned long)max)
        goto bad;
    *ret = (int)v;
    return 0;
bad:
    (void)snprintf(c->config_error, sizeof(c->config_error),
                   "shortcert: invalid provider parameter %s = '%.32s': "
                   "expected milliseconds from %d to %d",
                   name, s, min, max);
    return -EINVAL;
}

static int parse_socket(struct ipc_client *c, const char *s)
{
    size_t n, cap = sizeof(c->addr.sun_path);

    if (!s || !*s)
        s = SHORTCERT_DEFAULT_SOCKET;
    (void)snprintf(c->display, sizeof(c->display), "%s", s);
    n = strlen(s);
    c->addr.sun_family = AF_UNIX;
    if (s[0] == '@' && n >= 2 && n - 1 <= cap - 1) {
        /* Abstract: a leading NUL, then the name, no terminator.  It lives
         * in the network namespace, so it stays reachable after chroot. */
        c->addr.sun_path[0] = '\0';
        memcpy(c->addr.sun_path + 1, s + 1, n - 1);
        c->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    if (s[0] == '/' && n <= cap - 1) {
        memcpy(c->addr.sun_path, s, n + 1);
        c->addr_len =
            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
    }
    /* A relative path would resolve against whatever the service's working
     * directory (or chroot) is at signing time. */
    (void)snprintf(c->config_error, sizeof(c->config_error),
                   "shortcert: invalid provider parameter shortcert-socket = "
                   "'%.160s': expected an absolute path of at most %zu bytes "
                   "or @name for an abstract socket",
                   s, cap - 1);
    return -EINVAL;
}

int ipc_client_new(const char *sock, const char *timeout_ms,
                   const char *backoff_ms, const char *version, bool debug,
                   struct ipc_client **ret)
{
    struct ipc_client *c = calloc(1, sizeof(*c));

    if (!c)
        return -ENOMEM;
    c->debug = debug;
    atomic_init(&c->backoff_until_ms, 0);
    /* The first bad setting wins the message; the others keep defaults. */
    if (parse_socket(c, sock) == 0 &&
        parse_ms(c, "shortcert-timeout-ms", timeout_ms,
                 IPC_CLIENT_TIMEOUT_MS_DEFAULT, 1, IPC_CLIENT_TIMEOUT_MS_MAX,
                 &c->timeout_ms) == 0)
        (void)parse_ms(c, "shortcert-backoff-ms", backoff_ms,
                       IPC_CLIENT_BACKOFF_MS_DEFAULT, 0,
                       IPC_CLIENT_BACKOFF_MS_MAX, &c->backoff_ms);
    /* The newest protocol by default; an older one pins what an older
     * provider would speak (compatibility tests, a daemon not yet
     * upgraded).  Same strict digits-only parser. */
    if (!c->config_error[0] &&
        parse_ms(c, "shortcert-protocol-version", version, IPC_VERSION_MAX,
                 IPC_VERSION_MIN, IPC_VERSION_MAX, &c->version) < 0)
        (void)snprintf(c->config_error, sizeof(c->config_error),
                       "shortcert: invalid provider parameter "
                       "shortcert-protocol-version = '%.16s': expected %d to %d",
                       version, IPC_VERSION_MIN, IPC_VERSION_MAX);
    if (c->version == 0)
        c->version = IPC_VERSION_MAX;
    if (c->timeout_ms == 0)
        c->timeout_ms = IPC_CLIENT_TIMEOUT_MS_DEFAULT;
    if (pthread_key_create(&c->key, conn_destroy) != 0) {
        free(c);
        return -ENOMEM;
    }
    c->key_ok = true;
    (void)pthread_once(&atfork_once, atfork_register);
    dbg(c, "socket %s, timeout %d ms, back-off %d ms%s%s", c->display,
        c->timeout_ms, c->backoff_ms, c->config_error[0] ? "; " : "",
        c->config_error);
    *ret = c;
    return 0;
}

void ipc_client_free(struct ipc_client *c)
{
    struct ipc_conn *conn, *next;

    if (!c)
        return;
    /* Every thread's connection, not only ours: other threads' destructors
     * will not run once the key is deleted. */
    (void)pthread_mutex_lock(&registry_lock);
    for (conn = registry; conn; conn = next) {
        next = conn->next;
        if (conn->client != c)
            continue;
        registry_unlink_locked(conn);
        conn_close(conn);
        free(conn);
    }
    (void)pthread_mutex_unlock(&registry_lock);
    if (c->key_ok)
        (void)pthread_key_delete(c->key);
    free(c);
}

const char *ipc_client_address(const struct ipc_client *c)
{
    return c->display;
}

/* --- one connection ----------------------------------------------------- */

static struct ipc_conn *conn_get(struct ipc_client *c)
{
    struct ipc_conn *conn = pthread_getspecific(c->key);

    if (conn)
        return conn;
    conn = calloc(1, sizeof(*conn));
    if (!conn)
        return NULL;
    conn->client = c;
    conn->owner = pthread_self();
    conn->fd = -1;
    if (pthread_setspecific(c->key, conn) != 0) {
        free(conn);
        return NULL;
    }
    registry_link(conn);
    return conn;
}

static int set_timeo(int fd, int opt, long long ms)
{
    struct timeval tv = ms_to_tv(ms);

    return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) < 0 ? negerrno()
                                                                : 0;
}

static int conn_open(struct ipc_client *c, struct ipc_conn *conn,
                     struct ipc_fail *fail)
{
    _cleanup_close_ int fd = -1;
    long long deadline = now_ms() + c->timeout_ms;
    struct ucred cred = { 0 };
    socklen_t len = sizeof(cred);
    char eb[128];
    int r;

    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = negerrno();
        fail_set(fail, PROV_R_UNREACHABLE,
                 "shortcert: cannot create a socket to reach shortcertd: %s",
                 errstr(-r, eb, sizeof(eb)));
        return r;
    }
    /* SO_SNDTIMEO also bounds connect() when the daemon's backlog is full;
     * SO_RCVTIMEO bounds the wait for a reply. */
    r = set_timeo(fd, SO_SNDTIMEO, c->timeout_ms);
    if (r == 0)
        r = set_timeo(fd, SO_RCVTIMEO, c->timeout_ms);
    if (r < 0) {
        fail_set(fail, PROV_R_INTERNAL,
                 "shortcert: cannot set socket timeouts: %s",
                 errstr(-r, eb, sizeof(eb)));
        return r;
    }
    while (connect(fd, (const struct sockaddr *)&c->addr, c->addr_len) < 0) {
        r = negerrno();
        if (r == -EINTR && now_ms() < deadline)
            continue;
        if (r == -EISCONN)
            break;
        if (r == -EAGAIN || r == -EINPROGRESS || r == -EINTR ||
            r == -ETIMEDOUT) {
            fail_set(fail, PROV_R_TIMEOUT,
                     "shortcert: shortcertd at %s did not accept a "
                     "connection within %d ms; signatures fail at once for "
                     "the next %d ms",
                     c->display, c->timeout_ms, c->backoff_ms);
            return -ETIMEDOUT;
        }
        fail_set(fail, PROV_R_UNREACHABLE,
                 "shortcert: cannot reach shortcertd at %s: %s", c->display,
                 errstr(-r, eb, sizeof(eb)));
        return r;
    }
    /* Anyone can bind an abstract name, or a path in a directory they can
     * write, while shortcertd is down: only root's socket gets our
     * messages. */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        r = negerrno();
        fail_set(fail, PROV_R_INTERNAL,
                 "shortcert: cannot read the credentials of %s: %s",
                 c->display, errstr(-r, eb, sizeof(eb)));
        return r;
    }
    if (cred.uid != 0) {
        fail_set(fail, PROV_R_PEER_NOT_ROOT,
                 "shortcert: refusing to use %s: the process listening there "
                 "(pid %d) runs as uid %u, not root; another program may have "
                 "taken the socket name while shortcertd was down",
                 c->display, (int)cred.pid, (unsigned)cred.uid);
        return -EPERM;
    }
    conn->fd = TAKE_FD(fd);
    conn->pid = getpid();
    conn->euid = geteuid();
    conn->rcvtimeo_shortened = false;
    dbg(c, "connected to %s (fd %d, euid %u)", c->display, conn->fd,
        (unsigned)conn->euid);
    return 0;
}

static int conn_send(struct ipc_conn *conn, size_t len, long long deadline)
{
    for (;;) {
        /* MSG_NOSIGNAL: a daemon restart must not kill the service with
         * SIGPIPE. */
        ssize_t n = send(conn->fd, conn->buf, len, MSG_NOSIGNAL);

        if (n >= 0)
            return (size_t)n == len ? 0 : -EIO;
        if (errno == EINTR && now_ms() < deadline)
            continue;
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return -ETIMEDOUT;
        return negerrno();
    }
}

static int conn_recv(struct ipc_client *c, struct ipc_conn *conn,
                     long long deadline, size_t *ret_len)
{
    if (conn->rcvtimeo_shortened) {
        if (set_timeo(conn->fd, SO_RCVTIMEO, c->timeout_ms) < 0)
            return -EIO;
        conn->rcvtimeo_shortened = false;
    }
    for (;;) {
        /* MSG_TRUNC makes recv() return the real length, so an oversized
         * frame is detected instead of silently cut. */
        ssize_t n = recv(conn->fd, conn->buf, sizeof(conn->buf), MSG_TRUNC);
        long long left;

        if (n > (ssize_t)sizeof(conn->buf))
            return -EMSGSIZE;
        if (n == 0)
            return -ECONNABORTED; /* EOF: the daemon closed or restarted */
        if (n > 0) {
            *ret_len = (size_t)n;
            return 0;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return negerrno();
        /* A signal must not extend the total wait beyond the timeout. */
        left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        if (set_timeo(conn->fd, SO_RCVTIMEO, left) < 0)
            return -EIO;
        conn->rcvtimeo_shortened = true;
    }
}

static bool retryable(int r)
{
    /* What a daemon restart looks like from our side of the socket. */
    return r == -EPIPE || r == -ECONNRESET || r == -ECONNABORTED ||
           r == -ENOTCONN;
}

static int bad_reply(struct ipc_client *c, struct ipc_conn *conn,
                     struct ipc_fail *fail, const char *what)
{
    /* Fail closed: never guess what a peer that breaks the protocol meant. */
    conn_close(conn);
    fail_set(fail, PROV_R_BAD_REPLY,
             "shortcert: malformed reply from shortcertd at %s (%s); "
             "connection dropped",
             c->display, what);
    dbg(c, "%s", fail->text);
    return -EBADMSG;
}

static int refused(const struct ipc_client *c, const char *identity,
                   const char *what, const struct ipc_error_rep *e,
                   struct ipc_fail *fail)
{
    char extra[64] = "";

    if (e->code == IPC_ERR_VERSION)
        (void)snprintf(extra, sizeof(extra),
                       "; shortcertd speaks up to version %u, we speak %u",
                       (unsigned)e->detail, (unsigned)c->version);
    if (e->msg_len > 0)
        fail_set(fail, PROV_R_REFUSED,
                 "shortcert: shortcertd refused to %s for identity '%s': "
                 "%s (%.*s)%s",
                 what, identity, ipc_err_str(e->code), (int)e->msg_len, e->msg,
                 extra);
    else
        fail_set(fail, PROV_R_REFUSED,
                 "shortcert: shortcertd refused to %s for identity '%s': "
                 "%s%s",
                 what, identity, ipc_err_str(e->code), extra);
    switch (e->code) {
    case IPC_ERR_DENIED:
        return -EACCES;
    case IPC_ERR_STALE_KEY:
        return -ESTALE;
    case IPC_ERR_NO_IDENTITY:
    case IPC_ERR_NOT_READY:
        return -ENOKEY;
    case IPC_ERR_UNKNOWN_TYPE:
        return -EOPNOTSUPP;
    default:
        return -EPERM;
    }
}

typedef int (*build_fn)(uint8_t *buf, size_t cap, uint16_t version,
                        uint32_t request_id, const void *arg);

/* One request and its reply, in conn->buf.  On success *ret_conn, *ret_hdr
 * and *ret_body describe a well-framed reply of our version to this
 * request; on failure *fail says why (what: "sign", "fetch"). */
static int transact(struct ipc_client *c, const char *identity,
                    const char *what, build_fn build, const void *arg,
                    struct ipc_conn **ret_conn, struct ipc_hdr *ret_hdr,
                    struct ipc_cur *ret_body, struct ipc_fail *fail)
{
    long long t0 = now_ms(), until;
    struct ipc_conn *conn;
    size_t len = 0;
    uint32_t id = 0;
    char eb[128];
    int r, n;

    if (c->config_error[0]) {
        fail_set(fail, PROV_R_BAD_CONFIG, "%s", c->config_error);
        return -EINVAL;
    }
    until = atomic_load(&c->backoff_until_ms);
    if (until > t0) {
        fail_set(fail, PROV_R_BACKOFF,
                 "shortcert: shortcertd at %s timed out recently; failing at "
                 "once for another %lld ms (back-off) instead of waiting again",
                 c->display, until - t0);
        return -EAGAIN;
    }
    conn = conn_get(c);
    if (!conn) {
        fail_set(fail, PROV_R_NO_MEMORY,
                 "shortcert: out of memory for a connection to shortcertd");
        return -ENOMEM;
    }
    if (conn->fd >= 0 && (conn->pid != getpid() || conn->euid != geteuid())) {
        dbg(c, "pid/euid changed since connect (pid %d euid %u): reconnecting",
            (int)conn->pid, (unsigned)conn->euid);
        conn_close(conn);
    }

    for (int attempt = 0;; attempt++) {
        long long deadline;

        if (conn->fd < 0) {
            r = conn_open(c, conn, fail);
            if (r < 0)
                goto failed;
        }
        id = ++conn->next_id;
        n = build(conn->buf, sizeof(conn->buf), (uint16_t)c->version, id, arg);
        if (n < 0) {
            fail_set(fail, PROV_R_INTERNAL,
                     "shortcert: cannot encode a %s request for identity '%s'",
                     what, identity);
            return n;
        }
        deadline = now_ms() + c->timeout_ms;
        r = conn_send(conn, (size_t)n, deadline);
        if (r == 0)
            r = conn_recv(c, conn, deadline, &len);
        if (r == 0)
            break;
        conn_close(conn);
        if (retryable(r) && attempt == 0) {
            dbg(c, "connection lost (%s): reconnecting once",
                errstr(-r, eb, sizeof(eb)));
            continue;
        }
        if (r == -EMSGSIZE) {
            r = bad_reply(c, conn, fail, "frame longer than 64 KiB");
            goto failed;
        }
        if (r == -ETIMEDOUT)
            fail_set(fail, PROV_R_TIMEOUT,
                     "shortcert: shortcertd at %s did not answer within %d "
                     "ms; signatures fail at once for the next %d ms",
                     c->display, c->timeout_ms, c->backoff_ms);
        else if (r == -ECONNABORTED)
            fail_set(fail, PROV_R_UNREACHABLE,
                     "shortcert: lost the connection to shortcertd at %s: "
                     "it closed the connection without answering (twice)",
                     c->display);
        else
            fail_set(fail, PROV_R_UNREACHABLE,
                     "shortcert: lost the connection to shortcertd at %s: %s",
                     c->display, errstr(-r, eb, sizeof(eb)));
        goto failed;
    }

    if (ipc_parse_frame(conn->buf, len, ret_hdr, ret_body) < 0)
        return bad_reply(c, conn, fail, "bad frame");
    if (ret_hdr->version != c->version)
        return bad_reply(c, conn, fail, "wrong protocol version");
    if (ret_hdr->request_id != id)
        return bad_reply(c, conn, fail, "request id mismatch");
    if (ret_hdr->type == IPC_REP_ERROR) {
        struct ipc_error_rep rep;

        if (ipc_parse_error_rep(*ret_body, &rep) < 0)
            return bad_reply(c, conn, fail, "bad ERROR reply body");
        /* An error reply leaves the connection usable. */
        r = refused(c, identity, what, &rep, fail);
        dbg(c, "%s", fail->text);
        return r;
    }
    *ret_conn = conn;
    return 0;

failed:
    if (r == -ETIMEDOUT && c->backoff_ms > 0) {
        /* Every thread sees this at once, so a frozen daemon costs the
         * service one timeout per back-off window, not one per request. */
        atomic_store(&c->backoff_until_ms, now_ms() + c->backoff_ms);
    }
    dbg(c, "%s", fail->text);
    return r;
}

static int build_sign(uint8_t *buf, size_t cap, uint16_t version,
                      uint32_t request_id, const void *arg)
{
    return ipc_build_sign_req(buf, cap, version, request_id, arg);
}

int ipc_client_sign(struct ipc_client *c, const char *identity,
                    const uint8_t generation[IPC_GENERATION_LEN],
                    uint32_t scheme, const uint8_t *msg, size_t msg_len,
                    uint8_t *sig, size_t sig_cap, size_t *ret_sig_len,
                    struct ipc_fail *fail)
{
    struct ipc_sign_req req = {
        .identity = identity,
        .identity_len = strlen(identity),
        .scheme = scheme,
        .msg = msg,
        .msg_len = msg_len,
    };
    long long t0 = now_ms();
    struct ipc_conn *conn = NULL;
    struct ipc_sign_rep rep;
    struct ipc_hdr hdr;
    struct ipc_cur body;
    int r;

    if (msg_len > IPC_MSG_MAX) {
        fail_set(fail, PROV_R_INTERNAL,
                 "shortcert: cannot encode a request for identity '%s' "
                 "(%zu-byte message)",
                 identity, msg_len);
        return -EINVAL;
    }
    memcpy(req.generation, generation, IPC_GENERATION_LEN);
    r = transact(c, identity, "sign", build_sign, &req, &conn, &hdr, &body,
                 fail);
    if (r < 0)
        return r;
    if (hdr.type != IPC_REP_SIGN)
        return bad_reply(c, conn, fail, "unexpected message type");
    if (ipc_parse_sign_rep(body, hdr.version, &rep) < 0)
        return bad_reply(c, conn, fail, "bad SIGN reply body");
    if (rep.sig_len > sig_cap)
        return bad_reply(c, conn, fail, "signature longer than the key allows");
    memcpy(sig, rep.sig, rep.sig_len);
    *ret_sig_len = rep.sig_len;
    dbg(c, "signed %zu bytes for '%s' (%s) in %lld ms%s", msg_len, identity,
        ipc_scheme_str(scheme) ? ipc_scheme_str(scheme) : "?", now_ms() - t0,
        rep.notice == IPC_NOTICE_RETIRED
            ? "; the key generation is retired: reload this service"
            : "");
    return 0;
}

static int build_fetch(uint8_t *buf, size_t cap, uint16_t version,
                       uint32_t request_id, const void *arg)
{
    const char *name = arg;

    return ipc_build_ident_req(buf, cap, version, request_id, IPC_REQ_FETCH,
                               name, strlen(name));
}

int ipc_client_fetch(struct ipc_client *c, const char *identity,
                     uint8_t **ret_frame, struct ipc_fetch_rep *ret,
                     struct ipc_fail *fail)
{
    struct ipc_conn *conn = NULL;
    struct ipc_fetch_rep rep;
    struct ipc_hdr hdr;
    struct ipc_cur body;
    uint8_t *copy;
    int r;

    r = transact(c, identity, "give the key reference and certificates",
                 build_fetch, identity, &conn, &hdr, &body, fail);
    if (r == -EOPNOTSUPP) {
        fail_set(fail, PROV_R_NO_FETCH,
                 "shortcert: shortcertd at %s is too old for shortcert:%s "
                 "URIs (it does not know the FETCH request); upgrade "
                 "shortcertd, or load the key reference and chain files "
                 "instead",
                 c->display, identity);
        return r;
    }
    if (r < 0) {
        if (fail->reason == PROV_R_REFUSED)
            fail->reason = PROV_R_FETCH_REFUSED;
        return r;
    }
    if (hdr.type != IPC_REP_FETCH)
        return bad_reply(c, conn, fail, "unexpected message type");
    if (ipc_parse_fetch_rep(body, &rep) < 0)
        return bad_reply(c, conn, fail, "bad FETCH reply body");
    /* The reply lives in the connection's buffer, which the next request
     * reuses: hand the caller its own copy, with rep pointing into it. */
    copy = malloc(body.left);
    if (!copy) {
        fail_set(fail, PROV_R_NO_MEMORY, "shortcert: out of memory");
        return -ENOMEM;
    }
    memcpy(copy, body.p, body.left);
    rep.keyref.p = copy + (rep.keyref.p - body.p);
    for (size_t i = 0; i < rep.n_certs; i++)
        rep.certs[i].p = copy + (rep.certs[i].p - body.p);
    dbg(c, "fetched '%s': %zu-byte reference, %zu certificate(s)", identity,
        rep.keyref.len, rep.n_certs);
    *ret_frame = copy;
    *ret = rep;
    return 0;
}
