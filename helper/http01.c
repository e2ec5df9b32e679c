/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACME http-01 responder (see http01.h).
 *
 * Trust boundary: everything arriving on the listener is from the network
 * (the CA's validator, or anyone who can reach port 80).  A connection gets
 * at most HTTP01_MAX_HEAD bytes and HTTP01_CONN_TIMEOUT_MS in total, the
 * head goes through http01_parse_request() and the only thing a peer can
 * learn is the key authorization of a token it already names — which is
 * public by design (RFC 8555 §8.3).  One thread multiplexes up to
 * HTTP01_MAX_CONNS connections with poll(), so a slow client cannot hold
 * up the CA's validator; when the table is full the oldest connection is
 * dropped.
 *
 * Locking: `life` serializes the start and stop of the listener (publish /
 * withdraw); `lock` protects the token table, which the serving thread
 * reads.  The thread is never joined while `lock` is held.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "http01.h"
#include "jws.h"
#include "log.h"
#include "macro.h"

#define HTTP01_MAX_CONNS 32
#define HTTP01_CONN_TIMEOUT_MS 5000
#define HTTP01_MAX_TOKENS 1024
#define HTTP01_BACKLOG 64
#define HTTP01_PREFIX "/.well-known/acme-challenge/"

struct h01_token {
    char *token;
    size_t token_len;
    char *keyauth;
    unsigned refs;
};

struct h01_conn {
    int fd;
    int64_t deadline_ms;
    size_t len;                   /* bytes in buf */
    size_t out_len, out_off;      /* reply being written */
    char buf[HTTP01_MAX_HEAD + 1];
    char out[256 + HTTP01_MAX_KEYAUTH];
};

struct http01 {
    /* configuration, immutable after new() */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool any6;       /* "[::]": dual-stack, may fall back to 0.0.0.0 */
    bool adopted;    /* listen_fd came from the caller, never closed early */
    int config_port;

    pthread_mutex_t life; /* start/stop; taken before `lock` */
    pthread_mutex_t lock; /* tokens[], n_tokens, bound_port */
    struct h01_token *tokens;
    size_t n_tokens;
    int bound_port;

    /* owned by whoever holds `life`, read by the thread */
    bool running;
    pthread_t thread;
    int listen_fd;
    int wake_fd;
    bool v6_fallback_logged;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ----------------------------------------------------------------- parser */

static bool is_tchar(unsigned char c)
{
    /* RFC 9110 §5.6.2 token characters */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int http01_parse_request(const char *buf, size_t len, const char **ret_token,
                         size_t *ret_token_len)
{
    size_t scan = len < HTTP01_MAX_HEAD ? len : HTTP01_MAX_HEAD;
    size_t end = 0, i, line_end, m, t0, t1, p;
    const char *target, *tok;
    size_t tlen, plen = strlen(HTTP01_PREFIX);

    if (!buf && len)
        return -EINVAL;
    /* Pass 1: the bytes themselves and the end of the head. */
    for (i = 0; i < scan; i++) {
        unsigned char c = (unsigned char)buf[i];

        if (c == '\n') {
            if (i == 0 || buf[i - 1] != '\r')
                return -EBADMSG; /* bare LF */
            if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
                end = i + 1;
                break;
            }
        } else if (c == '\r') {
            if (i + 1 < scan && buf[i + 1] != '\n')
                return -EBADMSG; /* bare CR */
        } else if ((c < 0x20 && c != '\t') || c >= 0x7f) {
            return -EBADMSG; /* NUL, controls, non-ASCII */
        }
    }
    if (end == 0)
        return len >= HTTP01_MAX_HEAD ? -EMSGSIZE : -EAGAIN;

    /* Request line: method SP request-target SP HTTP-version CRLF */
    line_end = (size_t)((const char *)memchr(buf, '\r', end) - buf);
    for (m = 0; m < line_end && buf[m] >= 'A' && buf[m] <= 'Z'; m++)
        ;
    if (m == 0 || m >= line_end || buf[m] != ' ')
        return -EBADMSG;
    if (!((m == 3 && memcmp(buf, "GET", 3) == 0) ||
          (m == 4 && memcmp(buf, "HEAD", 4) == 0)))
        return -EBADMSG;
    t0 = m + 1;
    for (t1 = t0; t1 < line_end && buf[t1] != ' '; t1++)
        if ((unsigned char)buf[t1] <= 0x20)
            return -EBADMSG; /* tab in the target */
    if (t1 == t0 || buf[t0] != '/' || t1 >= line_end)
        return -EBADMSG;
    if (line_end - (t1 + 1) != 8 ||
        (memcmp(buf + t1 + 1, "HTTP/1.1", 8) != 0 &&
         memcmp(buf + t1 + 1, "HTTP/1.0", 8) != 0))
        return -EBADMSG;

    /* Header lines: field-name ":" field-value CRLF; no obs-fold. */
    for (p = line_end + 2; p < end - 2;) {
        size_t le = (size_t)((const char *)memchr(buf + p, '\r', end - p) -
                             buf);
        size_t n = p;

        while (n < le && is_tchar((unsigned char)buf[n]))
            n++;
        if (n == p || n >= le || buf[n] != ':')
            return -EBADMSG; /* also catches a leading SP/HTAB (fold) */
        p = le + 2;
    }

    target = buf + t0;
    tlen = t1 - t0;
    if (tlen <= plen || memcmp(target, HTTP01_PREFIX, plen) != 0)
        return -ENOENT;
    tok = target + plen;
    if (tlen - plen > HTTP01_MAX_TOKEN || !jws_is_b64url(tok, tlen - plen))
        return -ENOENT;
    if (ret_token)
        *ret_token = tok;
    if (ret_token_len)
        *ret_token_len = tlen - plen;
    return 0;
}

/* ----------------------------------------------------------- the server */

static void conn_close(struct h01_conn *c)
{
    if (c->fd >= 0) {
        (void)shutdown(c->fd, SHUT_WR);
        (void)close(c->fd);
    }
    c->fd = -1;
}

/* Formats the reply for a complete (or hopeless) head into c->out. */
static void conn_prepare_reply(struct http01 *h, struct h01_conn *c, int r,
                               const char *tok, size_t toklen)
{
    const char *status = "400 Bad Request";
    char keyauth[HTTP01_MAX_KEYAUTH + 1];
    bool found = false, head;
    char fp[13];
    int n;

    head = c->len >= 5 && memcmp(c->buf, "HEAD ", 5) == 0;
    keyauth[0] = '\0';
    if (r == 0) {
        pthread_mutex_lock(&h->lock);
        for (size_t i = 0; i < h->n_tokens; i++) {
            struct h01_token *t = &h->tokens[i];

            if (t->token_len == toklen &&
                CRYPTO_memcmp(t->token, tok, toklen) == 0) {
                /* bounded at publish time */
                memcpy(keyauth, t->keyauth, strlen(t->keyauth) + 1);
                found = true;
                break;
            }
        }
        pthread_mutex_unlock(&h->lock);
        jws_fingerprint(tok, toklen, fp);
        log_debug("http-01: request for token %s: %s", fp,
                  found ? "served" : "unknown, 404");
    } else if (r == -EMSGSIZE) {
        status = "431 Request Header Fields Too Large";
    }
    if (found)
        status = "200 OK";
    else if (r == 0 || r == -ENOENT)
        status = "404 Not Found";
    n = snprintf(c->out, sizeof(c->out),
                 "HTTP/1.1 %s\r\n"
                 "Content-Type: text/plain\r\n"
                 "Content-Length: %zu\r\n"
                 "Cache-Control: no-store\r\n"
                 "Connection: close\r\n"
                 "\r\n"
                 "%s",
                 status, strlen(keyauth), head ? "" : keyauth);
    c->out_len = (n > 0 && (size_t)n < sizeof(c->out)) ? (size_t)n : 0;
    c->out_off = 0;
}

/* Sends what it can of the reply; returns true when the connection is
 * done (all sent, or an error). */
static bool conn_flush(struct h01_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t k = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (k < 0)
            return !(errno == EAGAIN || errno == EWOULDBLOCK ||
                     errno == EINTR);
        c->out_off += (size_t)k;
    }
    return true;
}

/* Readable: read, and once the head is decided, reply.  true = done. */
static bool conn_on_read(struct http01 *h, struct h01_conn *c)
{
    const char *tok = NULL;
    size_t toklen = 0;
    ssize_t k;
    int r;

    k = recv(c->fd, c->buf + c->len, HTTP01_MAX_HEAD - c->len, MSG_DONTWAIT);
    if (k < 0)
        return !(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    if (k == 0)
        return true; /* peer gave up before a full head */
    c->len += (size_t)k;
    r = http01_parse_request(c->buf, c->len, &tok, &toklen);
    if (r == -EAGAIN)
        return false;
    if (r != 0 && r != -ENOENT)
        log_debug("http-01: malformed request (%s), answering 400/431",
                  r == -EMSGSIZE ? "too large" : "bad syntax");
    conn_prepare_reply(h, c, r, tok, toklen);
    return conn_flush(c);
}

struct h01_loop {
    struct h01_conn *conns[HTTP01_MAX_CONNS];
    size_t n;
};

static void loop_drop(struct h01_loop *l, size_t i)
{
    conn_close(l->conns[i]);
    free(l->conns[i]);
    l->conns[i] = l->conns[--l->n];
}

static void loop_accept(struct h01_loop *l, int listen_fd)
{
    for (;;) {
        struct h01_conn *c;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            /* Out of fds or memory: the listener stays readable, so do not
             * spin on it; the backlog waits. */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                struct timespec ts = { 0, 50 * 1000 * 1000 };

                log_debug_errno(-errno, "http-01: accept() failed, pausing");
                (void)nanosleep(&ts, NULL);
            }
            return; /* EAGAIN, or a per-connection error: try next time */
        }
        if (l->n == HTTP01_MAX_CONNS) {
            size_t oldest = 0;

            for (size_t i = 1; i < l->n; i++)
                if (l->conns[i]->deadline_ms < l->conns[oldest]->deadline_ms)
                    oldest = i;
            log_debug("http-01: %d connections open, dropping the oldest",
                      HTTP01_MAX_CONNS);
            loop_drop(l, oldest);
        }
        c = malloc(sizeof(*c));
        if (!c) {
            (void)close(fd);
            return;
        }
        c->fd = fd;
        c->len = c->out_len = c->out_off = 0;
        c->deadline_ms = now_ms() + HTTP01_CONN_TIMEOUT_MS;
        l->conns[l->n++] = c;
    }
}

static void *serve_thread(void *userdata)
{
    struct http01 *h = userdata;
    struct h01_loop l = { .n = 0 };
    struct pollfd pfd[2 + HTTP01_MAX_CONNS];

    for (;;) {
        int64_t now = now_ms(), wait = -1;
        int r;

        pfd[0] = (struct pollfd){ .fd = h->wake_fd, .events = POLLIN };
        pfd[1] = (struct pollfd){ .fd = h->listen_fd, .events = POLLIN };
        for (size_t i = 0; i < l.n; i++) {
            struct h01_conn *c = l.conns[i];
            int64_t left = c->deadline_ms - now;

            pfd[2 + i] = (struct pollfd){
                .fd = c->fd,
                .events = c->out_len ? POLLOUT : POLLIN,
            };
            if (left < 0)
                left = 0;
            if (wait < 0 || left < wait)
                wait = left;
        }
        r = poll(pfd, 2 + l.n, (int)wait);
        if (r < 0 && errno != EINTR) {
            log_error_errno(-errno, "http-01: poll() failed, responder stops");
            break;
        }
        if (r > 0 && (pfd[0].revents & POLLIN))
            break;
        now = now_ms();
        /* Connections first (pfd indices match l.conns before accept). */
        for (size_t i = l.n; i-- > 0;) {
            struct h01_conn *c = l.conns[i];
            short rev = r > 0 ? pfd[2 + i].revents : 0;
            bool done = false;

            if (rev & (POLLERR | POLLNVAL))
                done = true;
            else if (c->out_len && (rev & (POLLOUT | POLLHUP)))
                done = conn_flush(c);
            else if (!c->out_len && (rev & (POLLIN | POLLHUP)))
                done = conn_on_read(h, c);
            if (!done && now >= c->deadline_ms) {
                log_debug("http-01: connection timed out, closing");
                done = true;
            }
            if (done)
                loop_drop(&l, i);
        }
        if (r > 0 && (pfd[1].revents & POLLIN))
            loop_accept(&l, h->listen_fd);
    }
    while (l.n > 0)
        loop_drop(&l, l.n - 1);
    return NULL;
}

/* --------------------------------------------------------- the listener */

static int parse_port(const char *s, int *ret)
{
    unsigned v = 0;

    if (!*s || strlen(s) > 5)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *ret = (int)v;
    return 0;
}

static int parse_listen(const char *s, struct http01 *h)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port = NULL, *e;
    bool bracketed;
    size_t n;
    int p = 80, r;

    if (!s)
        return -EINVAL;
    bracketed = s[0] == '[';
    if (bracketed) {
        e = strchr(s, ']');
        if (!e)
            return -EINVAL;
        n = (size_t)(e - s - 1);
        if (e[1] == ':')
            port = e + 2;
        else if (e[1] != '\0')
            return -EINVAL;
        s++;
    } else {
        e = strrchr(s, ':');
        n = e ? (size_t)(e - s) : strlen(s);
        if (e)
            port = e + 1;
    }
    if (n == 0 || n >= sizeof(host))
        return -EINVAL;
    memcpy(host, s, n);
    host[n] = '\0';
    if (port) {
        r = parse_port(port, &p);
        if (r < 0)
            return r;
    }
    memset(&h->addr, 0, sizeof(h->addr));
    if (!bracketed && strchr(host, ':'))
        return -EINVAL; /* IPv6 needs brackets: "[::1]:80" */
    if (bracketed) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&h->addr;

        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            return -EINVAL;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)p);
        h->addrlen = sizeof(*a6);
        h->any6 = IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&h->addr;

        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return -EINVAL;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)p);
        h->addrlen = sizeof(*a4);
    }
    h->config_port = p;
    return 0;
}

static int bind_one(const struct sockaddr *sa, socklen_t salen, bool dual)
{
    _cleanup_close_ int fd = -1;
    int one = 1, zero = 0;

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        return -errno;
    if (dual &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
        return -errno;
    if (bind(fd, sa, salen) < 0 || listen(fd, HTTP01_BACKLOG) < 0)
        return -errno;
    return TAKE_FD(fd);
}

static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -errno;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return -EAFNOSUPPORT;
}

static int open_listener(struct http01 *h)
{
    int fd;

    fd = bind_one((struct sockaddr *)&h->addr, h->addrlen, h->any6);
    if (fd < 0 && h->any6 &&
        (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL)) {
        struct sockaddr_in a4 = {
            .sin_family = AF_INET,
            .sin_port = htons((uint16_t)h->config_port),
            .sin_addr.s_addr = htonl(INADDR_ANY),
        };

        if (!h->v6_fallback_logged) {
            log_full_errno(LOG_NOTICE, fd, "http-01: IPv6 unavailable, listening on "
                                  "0.0.0.0:%d instead of [::]",
                              h->config_port);
            h->v6_fallback_logged = true;
        }
        fd = bind_one((struct sockaddr *)&a4, sizeof(a4), false);
    }
    if (fd < 0)
        return log_warning_errno(fd, "http-01: cannot listen on port %d",
                                 h->config_port);
    return fd;
}

static int start_locked(struct http01 *h)
{
    _cleanup_close_ int lfd = -1, wfd = -1;
    int r, port;

    if (h->adopted) {
        lfd = h->listen_fd;
    } else {
        lfd = open_listener(h);
        if (lfd < 0)
            return lfd;
    }
    wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wfd < 0) {
        r = -errno;
        if (h->adopted)
            lfd = -1;
        return log_error_errno(r, "http-01: eventfd() failed");
    }
    port = local_port(lfd);
    h->listen_fd = lfd;
    h->wake_fd = wfd;
    r = -pthread_create(&h->thread, NULL, serve_thread, h);
    if (r < 0) {
        h->wake_fd = -1;
        if (h->adopted)
            lfd = -1; /* not ours to close */
        else
            h->listen_fd = -1;
        return log_error_errno(r, "http-01: cannot start the responder thread");
    }
    TAKE_FD(lfd);
    TAKE_FD(wfd);
    h->running = true;
    pthread_mutex_lock(&h->lock);
    h->bound_port = port;
    pthread_mutex_unlock(&h->lock);
    log_debug("http-01: responder listening on port %d", port);
    return 0;
}

static void stop_locked(struct http01 *h)
{
    uint64_t one = 1;

    if (!h->running)
        return;
    (void)!write(h->wake_fd, &one, sizeof(one));
    (void)pthread_join(h->thread, NULL);
    (void)close(h->wake_fd);
    h->wake_fd = -1;
    if (!h->adopted) {
        (void)close(h->listen_fd);
        h->listen_fd = -1;
    }
    h->running = false;
    pthread_mutex_lock(&h->lock);
    h->bound_port = 0;
    pthread_mutex_unlock(&h->lock);
    log_debug("http-01: responder stopped");
}

/* -------------------------------------------------------------- the API */

static int alloc_h(struct http01 **ret)
{
    struct http01 *h = calloc(1, sizeof(*h));

    if (!h)
        return -ENOMEM;
    h->listen_fd = -1;
    h->wake_fd = -1;
    if (pthread_mutex_init(&h->life, NULL) != 0) {
        free(h);
        return -ENOMEM;
    }
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        pthread_mutex_destroy(&h->life);
        free(h);
        return -ENOMEM;
    }
    *ret = h;
    return 0;
}

int http01_check_listen(const char *listen)
{
    struct http01 h;

    memset(&h, 0, sizeof(h));
    return parse_listen(listen, &h);
}

int http01_new(const char *listen, struct http01 **ret)
{
    struct http01 *h;
    int r;

    if (!ret)
        return -EINVAL;
    r = alloc_h(&h);
    if (r < 0)
        return r;
    r = parse_listen(listen, h);
    if (r < 0) {
        http01_free(h);
        return r;
    }
    *ret = h;
    return 0;
}

int http01_new_from_fd(int fd, struct http01 **ret)
{
    struct http01 *h;
    int r, type = 0, acc = 0, port;
    socklen_t sl = sizeof(type);

    if (fd < 0 || !ret)
        return -EINVAL;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) < 0)
        return -errno;
    sl = sizeof(acc);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl) < 0)
        return -errno;
    if (type != SOCK_STREAM || !acc)
        return -ENOTSOCK;
    port = local_port(fd);
    if (port < 0)
        return port;
    r = alloc_h(&h);
    if (r < 0)
        return r;
    /* The serving loop relies on a non-blocking accept. */
    r = fcntl(fd, F_GETFL);
    if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0) {
        r = -errno;
        http01_free(h);
        return r;
    }
    h->adopted = true;
    h->listen_fd = fd;
    h->config_port = port;
    *ret = h;
    return 0;
}

static void token_free(struct h01_token *t)
{
    free(t->token);
    free(t->keyauth);
}

void http01_free(struct http01 *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->life);
    stop_locked(h);
    pthread_mutex_unlock(&h->life);
    for (size_t i = 0; i < h->n_tokens; i++)
        token_free(&h->tokens[i]);
    free(h->tokens);
    if (h->adopted && h->listen_fd >= 0)
        (void)close(h->listen_fd);
    pthread_mutex_destroy(&h->lock);
    pthread_mutex_destroy(&h->life);
    free(h);
}

static ssize_t find_token(struct http01 *h, const char *token, size_t n)
{
    for (size_t i = 0; i < h->n_tokens; i++)
        if (h->tokens[i].token_len == n &&
            memcmp(h->tokens[i].token, token, n) == 0)
            return (ssize_t)i;
    return -1;
}

static bool keyauth_ok(const char *k)
{
    size_t n = strnlen(k, HTTP01_MAX_KEYAUTH + 1);

    if (n == 0 || n > HTTP01_MAX_KEYAUTH)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] <= 0x20 || (unsigned char)k[i] >= 0x7f)
            return false;
    return true;
}

int http01_publish(struct http01 *h, const char *token, const char *keyauth)
{
    struct h01_token t = { 0 };
    size_t n;
    ssize_t i;
    bool first;
    char fp[13];
    int r = 0;

    if (!h || !token || !keyauth)
        return -EINVAL;
    n = strnlen(token, HTTP01_MAX_TOKEN + 1);
    if (n > HTTP01_MAX_TOKEN || !jws_is_b64url(token, n) ||
        !keyauth_ok(keyauth))
        return -EINVAL;
    jws_fingerprint(token, n, fp);

    pthread_mutex_lock(&h->life);
    pthread_mutex_lock(&h->lock);
    i = find_token(h, token, n);
    if (i >= 0) {
        if (strcmp(h->tokens[i].keyauth, keyauth) != 0)
            r = -EEXIST;
        else
            h->tokens[i].refs++;
        pthread_mutex_unlock(&h->lock);
        pthread_mutex_unlock(&h->life);
        return r;
    }
    if (h->n_tokens >= HTTP01_MAX_TOKENS) {
        pthread_mutex_unlock(&h->lock);
        pthread_mutex_unlock(&h->life);
        return log_warning_errno(-ENOSPC, "http-01: %d tokens published, "
                                 "refusing token %s", HTTP01_MAX_TOKENS, fp);
    }
    t.token = strndup(token, n);
    t.keyauth = strdup(keyauth);
    t.token_len = n;
    t.refs = 1;
    if (!t.token || !t.keyauth) {
        token_free(&t);
        pthread_mutex_unlock(&h->lock);
        pthread_mutex_unlock(&h->life);
        return -ENOMEM;
    }
    if (h->n_tokens % 8 == 0) {
        struct h01_token *nt =
            realloc(h->tokens, (h->n_tokens + 8) * sizeof(*nt));

        if (!nt) {
            token_free(&t);
            pthread_mutex_unlock(&h->lock);
            pthread_mutex_unlock(&h->life);
            return -ENOMEM;
        }
        h->tokens = nt;
    }
    h->tokens[h->n_tokens++] = t;
    first = !h->running;
    pthread_mutex_unlock(&h->lock);

    if (first) {
        r = start_locked(h);
        if (r < 0) {
            /* Not published after all: nothing is listening for it. */
            pthread_mutex_lock(&h->lock);
            i = find_token(h, token, n);
            if (i >= 0) {
                token_free(&h->tokens[i]);
                h->tokens[i] = h->tokens[--h->n_tokens];
            }
            pthread_mutex_unlock(&h->lock);
        }
    }
    pthread_mutex_unlock(&h->life);
    if (r >= 0)
        log_debug("http-01: published token %s", fp);
    return r;
}

void http01_withdraw(struct http01 *h, const char *token)
{
    bool last = false;
    size_t n;
    ssize_t i;
    char fp[13];

    if (!h || !token)
        return;
    n = strnlen(token, HTTP01_MAX_TOKEN + 1);
    if (n > HTTP01_MAX_TOKEN)
        return;
    pthread_mutex_lock(&h->life);
    pthread_mutex_lock(&h->lock);
    i = find_token(h, token, n);
    if (i >= 0 && --h->tokens[i].refs == 0) {
        token_free(&h->tokens[i]);
        h->tokens[i] = h->tokens[--h->n_tokens];
        last = h->n_tokens == 0;
        jws_fingerprint(token, n, fp);
        log_debug("http-01: withdrew token %s", fp);
    }
    pthread_mutex_unlock(&h->lock);
    if (last)
        stop_locked(h);
    pthread_mutex_unlock(&h->life);
}

int http01_port(struct http01 *h)
{
    int p;

    if (!h)
        return -EINVAL;
    pthread_mutex_lock(&h->lock);
    p = h->bound_port > 0 ? h->bound_port : h->config_port;
    pthread_mutex_unlock(&h->lock);
    return p > 0 ? p : -ENOTCONN;
}
