/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in for shortcertd (see fake-signer.h).  One poll() loop serves
 * every connection; a pipe wakes it to stop.  Requests are parsed only by
 * common/ipc-codec.c and checked by common/tls-purpose.c, so the provider
 * is tested against the same contract code the daemon uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "fake-signer.h"
#include "ipc-proto.h"
#include "keyref.h"
#include "tls-purpose.h"

#define FAKE_MAX_CONNS 64

struct fake_conn {
    int fd;
    uid_t uid;
};

struct fake_id {
    char *identity;
    EVP_PKEY *key;
    enum tls_key_kind kind;
    uint8_t generation[IPC_GENERATION_LEN];
};

struct fake_signer {
    int listen_fd;
    int stop_pipe[2];
    pthread_t thread;
    bool thread_started;
    struct fake_id ids[FAKE_IDENTITIES_MAX];
    size_t n_ids;
    _Atomic int mode;
    atomic_uint requests;
    atomic_uint fetches;
    uint8_t *ref_der, *other_ref_der; /* FETCH: our reference, another's */
    size_t ref_len, other_ref_len;
    uint8_t *cert_der[IPC_FETCH_CERTS_MAX];
    size_t cert_len[IPC_FETCH_CERTS_MAX];
    size_t n_certs;
    atomic_uint accepts;
    struct fake_conn conns[FAKE_MAX_CONNS];
    size_t nconns;
    uint8_t buf[IPC_FRAME_MAX];
    uint8_t out[IPC_FRAME_MAX + 4096]; /* room for FAKE_OVERSIZE */
};

enum fake_mode fake_mode_from_string(const char *s)
{
    static const char *const names[FAKE_MODE_MAX] = {
        [FAKE_OK] = "ok",
        [FAKE_REFUSE] = "refuse",
        [FAKE_FREEZE] = "freeze",
        [FAKE_WRONG_ID] = "wrong-id",
        [FAKE_GARBAGE] = "garbage",
        [FAKE_CLOSE] = "close",
        [FAKE_DENY_NONROOT] = "deny-nonroot",
        [FAKE_OVERSIZE] = "oversize",
        [FAKE_LONG_SIG] = "long-sig",
        [FAKE_OLD] = "old",
        [FAKE_FETCH_OTHER] = "fetch-other",
        [FAKE_FETCH_BADCERT] = "fetch-badcert",
    };

    for (int i = 0; i < FAKE_MODE_MAX; i++)
        if (strcmp(s, names[i]) == 0)
            return (enum fake_mode)i;
    return FAKE_MODE_MAX;
}

static int make_address(const char *address, struct sockaddr_un *sa,
                        socklen_t *len)
{
    size_t n = strlen(address);

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (n < 2 || n >= sizeof(sa->sun_path))
        return -EINVAL;
    if (address[0] == '@') {
        memcpy(sa->sun_path + 1, address + 1, n - 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        memcpy(sa->sun_path, address, n + 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        (void)unlink(address);
    }
    return 0;
}

/* Bind, optionally drop to run_as, then listen: the kernel records the
 * listener's credentials at listen(), and that is what SO_PEERCRED shows
 * the provider. */
static int make_listener(const struct fake_signer_cfg *cfg)
{
    struct sockaddr_un sa;
    socklen_t len;
    int fd, r;

    r = make_address(cfg->address, &sa, &len);
    if (r < 0)
        return r;
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, len) < 0)
        goto fail;
    if (cfg->address[0] == '/' && chmod(cfg->address, 0666) < 0)
        goto fail;
    if (cfg->run_as != 0 &&
        (setgroups(0, NULL) < 0 || setgid(cfg->run_as) < 0 ||
         setuid(cfg->run_as) < 0))
        goto fail;
    if (listen(fd, 16) < 0)
        goto fail;
    return fd;
fail:
    r = -errno;
    (void)close(fd);
    return r;
}

static int add_id(struct fake_signer *f, const char *identity, EVP_PKEY *key)
{
    struct fake_id *id = &f->ids[f->n_ids];
    struct keyref ref;
    int r;

    if (f->n_ids == FAKE_IDENTITIES_MAX)
        return -E2BIG;
    id->identity = strdup(identity);
    if (!id->identity || !EVP_PKEY_up_ref(key)) {
        free(id->identity);
        return -ENOMEM;
    }
    id->key = key;
    id->kind = EVP_PKEY_is_a(key, "RSA")       ? TLS_KEY_RSA
               : EVP_PKEY_is_a(key, "ED25519") ? TLS_KEY_ED25519
                                               : TLS_KEY_EC;
    f->n_ids++;
    r = keyref_from_pkey(NULL, identity, key, &ref);
    if (r < 0)
        return r;
    memcpy(id->generation, ref.generation, IPC_GENERATION_LEN);
    keyref_done(&ref);
    return 0;
}

static int fake_init(struct fake_signer *f, const struct fake_signer_cfg *cfg)
{
    struct keyref ref;
    int r;

    f->listen_fd = -1;
    f->stop_pipe[0] = f->stop_pipe[1] = -1;
    atomic_init(&f->mode, cfg->mode);
    atomic_init(&f->requests, 0);
    atomic_init(&f->accepts, 0);
    atomic_init(&f->fetches, 0);
    r = add_id(f, cfg->identity, cfg->key);
    for (size_t i = 0; r == 0 && i < cfg->n_more; i++)
        r = add_id(f, cfg->more[i].identity, cfg->more[i].key);
    if (r < 0)
        return r;
    /* FETCH answers for the first identity */
    r = keyref_from_pkey(NULL, cfg->identity, cfg->key, &ref);
    if (r < 0)
        return r;
    r = keyref_encode_der(&ref, &f->ref_der, &f->ref_len);
    keyref_done(&ref);
    if (r < 0)
        return r;
    r = keyref_from_pkey(NULL, "other", cfg->key, &ref);
    if (r < 0)
        return r;
    r = keyref_encode_der(&ref, &f->other_ref_der, &f->other_ref_len);
    keyref_done(&ref);
    if (r < 0 || cfg->n_certs > IPC_FETCH_CERTS_MAX)
        return r < 0 ? r : -EINVAL;
    for (size_t i = 0; i < cfg->n_certs; i++) {
        int n = i2d_X509(cfg->certs[i], &f->cert_der[i]);

        if (n <= 0)
            return -ENOMEM;
        f->cert_len[i] = (size_t)n;
        f->n_certs = i + 1;
    }
    if (pipe2(f->stop_pipe, O_CLOEXEC) < 0)
        return -errno;
    return 0;
}

static void fake_free(struct fake_signer *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nconns; i++)
        (void)close(f->conns[i].fd);
    if (f->listen_fd >= 0)
        (void)close(f->listen_fd);
    if (f->stop_pipe[0] >= 0)
        (void)close(f->stop_pipe[0]);
    if (f->stop_pipe[1] >= 0)
        (void)close(f->stop_pipe[1]);
    for (size_t i = 0; i < f->n_ids; i++) {
        EVP_PKEY_free(f->ids[i].key);
        free(f->ids[i].identity);
    }
    OPENSSL_free(f->ref_der);
    OPENSSL_free(f->other_ref_der);
    for (size_t i = 0; i < f->n_certs; i++)
        OPENSSL_free(f->cert_der[i]);
    free(f);
}

static void conn_drop(struct fake_signer *f, size_t i)
{
    (void)close(f->conns[i].fd);
    f->conns[i] = f->conns[--f->nconns];
}

/* What a scheme means, as in shortcertd: the key kind, the digest (""
 * for pure Ed25519) and the RSA padding. */
static bool scheme_for(uint32_t scheme, enum tls_key_kind *kind,
                       const char **md, int *pad)
{
    static const char *const mds[3] = { "SHA256", "SHA384", "SHA512" };

    *pad = 0;
    if (scheme >= IPC_SCHEME_ECDSA_SHA256 && scheme <= IPC_SCHEME_ECDSA_SHA512) {
        *kind = TLS_KEY_EC;
        *md = mds[scheme - IPC_SCHEME_ECDSA_SHA256];
    } else if (scheme >= IPC_SCHEME_RSA_PKCS1_SHA256 &&
               scheme <= IPC_SCHEME_RSA_PKCS1_SHA512) {
        *kind = TLS_KEY_RSA;
        *md = mds[scheme - IPC_SCHEME_RSA_PKCS1_SHA256];
        *pad = RSA_PKCS1_PADDING;
    } else if (scheme >= IPC_SCHEME_RSA_PSS_SHA256 &&
               scheme <= IPC_SCHEME_RSA_PSS_SHA512) {
        *kind = TLS_KEY_RSA;
        *md = mds[scheme - IPC_SCHEME_RSA_PSS_SHA256];
        *pad = RSA_PKCS1_PSS_PADDING;
    } else if (scheme == IPC_SCHEME_ED25519) {
        *kind = TLS_KEY_ED25519;
        *md = NULL;
    } else {
        return false;
    }
    return true;
}

static int reply_error(struct fake_signer *f, uint32_t id, uint32_t code,
                       const char *msg)
{
    return ipc_build_error_rep(f->out, sizeof(f->out), IPC_VERSION_MAX, id,
                               code, 0, msg);
}

/* Build the reply to one well-formed SIGN request into f->out; returns its
 * length, 0 for "send nothing", -1 for "close the connection". */
static int answer(struct fake_signer *f, const struct fake_conn *c,
                  const struct ipc_hdr *hdr, const struct ipc_sign_req *req)
{
    enum fake_mode mode = (enum fake_mode)atomic_load(&f->mode);
    uint8_t sig[IPC_SIG_MAX];
    size_t siglen = sizeof(sig);
    const char *why = NULL, *md = NULL;
    char msg[IPC_ERRMSG_MAX];
    const struct fake_id *id = NULL;
    enum tls_key_kind kind;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD_CTX *mctx;
    int ok, pad;

    switch (mode) {
    case FAKE_FREEZE:
        return 0;
    case FAKE_CLOSE:
        return -1;
    case FAKE_GARBAGE:
        memset(f->out, 0x5a, 24); /* wrong magic, wrong length */
        return 24;
    case FAKE_OVERSIZE:
        memset(f->out, 0, sizeof(f->out));
        return (int)sizeof(f->out);
    case FAKE_LONG_SIG:
        memset(sig, 0x30, 100);
        return ipc_build_sign_rep(f->out, sizeof(f->out), IPC_VERSION_MAX,
                                  hdr->request_id, sig, 100, IPC_NOTICE_NONE);
    case FAKE_REFUSE:
        (void)snprintf(msg, sizeof(msg), "uid %u not allowed", (unsigned)c->uid);
        return reply_error(f, hdr->request_id, IPC_ERR_DENIED, msg);
    case FAKE_DENY_NONROOT:
        if (c->uid != 0) {
            (void)snprintf(msg, sizeof(msg), "uid %u not allowed",
                           (unsigned)c->uid);
            return reply_error(f, hdr->request_id, IPC_ERR_DENIED, msg);
        }
        break;
    default:
        break;
    }
    for (size_t i = 0; i < f->n_ids && !id; i++)
        if (req->identity_len == strlen(f->ids[i].identity) &&
            memcmp(req->identity, f->ids[i].identity, req->identity_len) == 0)
            id = &f->ids[i];
    if (!id)
        return reply_error(f, hdr->request_id, IPC_ERR_NO_IDENTITY, "");
    if (memcmp(req->generation, id->generation, IPC_GENERATION_LEN) != 0)
        return reply_error(f, hdr->request_id, IPC_ERR_STALE_KEY, "");
    if (tls_purpose_check(TLS_ROLE_SERVER, id->kind, req->msg, req->msg_len,
                          &why) < 0)
        return reply_error(f, hdr->request_id, IPC_ERR_PURPOSE, why);
    if (!scheme_for(req->scheme, &kind, &md, &pad) || kind != id->kind)
        return reply_error(f, hdr->request_id, IPC_ERR_SCHEME,
                           "scheme does not fit this key");
    /* Like the daemon: hash the message here, never trust a digest; PSS
     * with the salt as long as the hash. */
    mctx = EVP_MD_CTX_new();
    ok = mctx &&
         EVP_DigestSignInit_ex(mctx, &pctx, md, NULL, "provider=default",
                               id->key, NULL) == 1 &&
         (!pad || EVP_PKEY_CTX_set_rsa_padding(pctx, pad) == 1) &&
         (pad != RSA_PKCS1_PSS_PADDING ||
          EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1) &&
         EVP_DigestSign(mctx, sig, &siglen, req->msg, req->msg_len) == 1;
    EVP_MD_CTX_free(mctx);
    if (!ok)
        return reply_error(f, hdr->request_id, IPC_ERR_INTERNAL, "sign failed");
    return ipc_build_sign_rep(f->out, sizeof(f->out), IPC_VERSION_MAX,
                              mode == FAKE_WRONG_ID ? hdr->request_id + 1
                                                    : hdr->request_id,
                              sig, siglen, IPC_NOTICE_NONE);
}

/* Build the reply to a FETCH of name, like answer() for SIGN. */
static int answer_fetch(struct fake_signer *f, const struct fake_conn *c,
                        const struct ipc_hdr *hdr, const char *name,
                        size_t len)
{
    enum fake_mode mode = (enum fake_mode)atomic_load(&f->mode);
    struct ipc_fetch_rep rep = { 0 };
    char msg[IPC_ERRMSG_MAX];
    static const uint8_t not_der[] = { 0x30, 0x03, 0x02, 0x01 };

    switch (mode) {
    case FAKE_OLD:
        return reply_error(f, hdr->request_id, IPC_ERR_UNKNOWN_TYPE,
                           "unknown request type 0x0005");
    case FAKE_REFUSE:
        (void)snprintf(msg, sizeof(msg), "uid %u not allowed", (unsigned)c->uid);
        return reply_error(f, hdr->request_id, IPC_ERR_DENIED, msg);
    case FAKE_GARBAGE:
        memset(f->out, 0x5a, 24);
        return 24;
    case FAKE_CLOSE:
        return -1;
    default:
        break;
    }
    if (len != strlen(f->ids[0].identity) ||
        memcmp(name, f->ids[0].identity, len) != 0)
        return reply_error(f, hdr->request_id, IPC_ERR_NO_IDENTITY, "");
    rep.keyref = (struct ipc_der){ .p = f->ref_der, .len = f->ref_len };
    if (mode == FAKE_FETCH_OTHER)
        rep.keyref = (struct ipc_der){ .p = f->other_ref_der,
                                       .len = f->other_ref_len };
    rep.n_certs = f->n_certs;
    for (size_t i = 0; i < f->n_certs; i++)
        rep.certs[i] = (struct ipc_der){ .p = f->cert_der[i],
                                         .len = f->cert_len[i] };
    if (mode == FAKE_FETCH_BADCERT && rep.n_certs > 0)
        rep.certs[0] = (struct ipc_der){ .p = not_der, .len = sizeof(not_der) };
    return ipc_build_fetch_rep(f->out, sizeof(f->out), IPC_VERSION_MAX,
                               hdr->request_id, &rep);
}

/* Handle one frame on connection i; false to drop the connection. */
static bool handle(struct fake_signer *f, size_t i, size_t len)
{
    struct ipc_hdr hdr;
    struct ipc_cur body;
    struct ipc_sign_req req;
    int n;

    if (ipc_parse_frame(f->buf, len, &hdr, &body) < 0)
        return false; /* malformed: close without a reply */
    if (hdr.version != IPC_VERSION_MAX)
        n = ipc_build_error_rep(f->out, sizeof(f->out), hdr.version,
                                hdr.request_id, IPC_ERR_VERSION,
                                IPC_VERSION_MAX, "");
    else if (hdr.type == IPC_REQ_FETCH) {
        const char *name;
        size_t nlen;

        if (ipc_parse_ident_req(body, &name, &nlen) < 0)
            return false;
        atomic_fetch_add(&f->fetches, 1);
        n = answer_fetch(f, &f->conns[i], &hdr, name, nlen);
    } else if (hdr.type != IPC_REQ_SIGN)
        n = reply_error(f, hdr.request_id, IPC_ERR_UNKNOWN_TYPE, "");
    else if (ipc_parse_sign_req(body, &req) < 0)
        return false;
    else {
        atomic_fetch_add(&f->requests, 1);
        n = answer(f, &f->conns[i], &hdr, &req);
    }
    if (n < 0)
        return false;
    if (n == 0)
        return true;
    return send(f->conns[i].fd, f->out, (size_t)n, MSG_NOSIGNAL) == n;
}

static void serve(struct fake_signer *f)
{
    for (;;) {
        struct pollfd pfd[FAKE_MAX_CONNS + 2];
        size_t n = 0;

        pfd[n++] = (struct pollfd){ .fd = f->stop_pipe[0], .events = POLLIN };
        pfd[n++] = (struct pollfd){ .fd = f->listen_fd, .events = POLLIN };
        for (size_t i = 0; i < f->nconns; i++)
            pfd[n++] = (struct pollfd){ .fd = f->conns[i].fd, .events = POLLIN };
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (pfd[0].revents)
            return;
        /* Connections first, from the back, so dropping one (swap with the
         * last) never skips an unread one. */
        for (size_t i = f->nconns; i-- > 0;) {
            short ev = pfd[2 + i].revents;
            ssize_t len;

            if (!ev)
                continue;
            len = recv(f->conns[i].fd, f->buf, sizeof(f->buf), MSG_TRUNC);
            if (len <= 0 || (size_t)len > sizeof(f->buf) ||
                !handle(f, i, (size_t)len))
                conn_drop(f, i);
        }
        if (pfd[1].revents & POLLIN) {
            int fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            struct ucred cred = { 0 };
            socklen_t clen = sizeof(cred);

            if (fd < 0)
                continue;
            if (f->nconns == FAKE_MAX_CONNS ||
                getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
                (void)close(fd);
                continue;
            }
            atomic_fetch_add(&f->accepts, 1);
            f->conns[f->nconns++] = (struct fake_conn){ .fd = fd,
                                                        .uid = cred.uid };
        }
    }
}

static void *serve_thread(void *arg)
{
    serve(arg);
    return NULL;
}

int fake_signer_start_thread(const struct fake_signer_cfg *cfg,
                             struct fake_signer **ret)
{
    struct fake_signer *f = calloc(1, sizeof(*f));
    int r;

    if (!f)
        return -ENOMEM;
    r = fake_init(f, cfg);
    if (r == 0) {
        struct fake_signer_cfg c = *cfg;

        c.run_as = 0; /* threads share the process's uid */
        f->listen_fd = make_listener(&c);
        if (f->listen_fd < 0)
            r = f->listen_fd;
    }
    if (r == 0) {
        r = -pthread_create(&f->thread, NULL, serve_thread, f);
        f->thread_started = r == 0;
    }
    if (r < 0) {
        fake_free(f);
        return r;
    }
    *ret = f;
    return 0;
}

void fake_signer_set_mode(struct fake_signer *f, enum fake_mode mode)
{
    atomic_store(&f->mode, mode);
}

unsigned fake_signer_requests(struct fake_signer *f)
{
    return atomic_load(&f->requests);
}

unsigned fake_signer_fetches(struct fake_signer *f)
{
    return atomic_load(&f->fetches);
}

unsigned fake_signer_accepts(struct fake_signer *f)
{
    return atomic_load(&f->accepts);
}

void fake_signer_stop(struct fake_signer *f)
{
    if (!f)
        return;
    if (f->thread_started) {
        (void)!write(f->stop_pipe[1], "x", 1);
        (void)pthread_join(f->thread, NULL);
    }
    fake_free(f);
}

int fake_signer_start_process(const struct fake_signer_cfg *cfg,
                              pid_t *ret_pid)
{
    int ready[2];
    char c = 0;
    pid_t pid;

    if (pipe2(ready, O_CLOEXEC) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        int r = -errno;

        (void)close(ready[0]);
        (void)close(ready[1]);
        return r;
    }
    if (pid == 0) {
        struct fake_signer *f = calloc(1, sizeof(*f));

        (void)close(ready[0]);
        if (!f || fake_init(f, cfg) < 0)
            _exit(2);
        f->listen_fd = make_listener(cfg);
        if (f->listen_fd < 0)
            _exit(3);
        (void)!write(ready[1], "r", 1);
        (void)close(ready[1]);
        serve(f);
        _exit(0);
    }
    (void)close(ready[1]);
    if (read(ready[0], &c, 1) != 1 || c != 'r') {
        (void)close(ready[0]);
        fake_signer_kill(pid);
        return -EIO;
    }
    (void)close(ready[0]);
    *ret_pid = pid;
    return 0;
}

void fake_signer_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    (void)kill(pid, SIGTERM);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}
