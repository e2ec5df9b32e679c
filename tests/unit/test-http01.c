/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for helper/http01.c: the strict request parser, and the live
 * responder on loopback (ephemeral ports): serve, 404/400, HEAD, IPv4,
 * IPv6 and dual-stack, refcounted tokens, listener closed after the last
 * withdraw, slow clients, concurrent publish/withdraw.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cu-main.h"
#include "http01.h"

#define TOKEN "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
#define KEYAUTH TOKEN ".zgYaFS-Nr5ApBXGqMOjAXCc7d5yE7j0LC95buGF8bg0"
#define PATH "/.well-known/acme-challenge/"

/* -------------------------------------------------------------- parser */

static int parse(const char *s, const char **tok, size_t *tl)
{
    return http01_parse_request(s, strlen(s), tok, tl);
}

static void t_parse_valid(void)
{
    static const char *const ok[] = {
        "GET " PATH TOKEN " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "User-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n",
        "HEAD " PATH TOKEN " HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET " PATH TOKEN " HTTP/1.0\r\n\r\n",
        "GET " PATH TOKEN " HTTP/1.1\r\nX-Empty:\r\nA:b\r\n\r\n",
        "GET " PATH TOKEN " HTTP/1.1\r\nHost: x\r\n\r\ntrailing body bytes",
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *tok = NULL;
        size_t tl = 0;

        CU_ASSERT_EQUAL(parse(ok[i], &tok, &tl), 0);
        CU_ASSERT_EQUAL(tl, strlen(TOKEN));
        CU_ASSERT(tok && memcmp(tok, TOKEN, strlen(TOKEN)) == 0);
    }
}

static void t_parse_incomplete(void)
{
    const char *req = "GET " PATH TOKEN " HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t n = strlen(req);

    /* every proper prefix needs more bytes */
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(http01_parse_request(req, i, NULL, NULL), -EAGAIN);
    CU_ASSERT_EQUAL(http01_parse_request(req, n, NULL, NULL), 0);
    CU_ASSERT_EQUAL(parse("GET " PATH TOKEN " HTTP/1.1\r\n", NULL, NULL),
                    -EAGAIN);
    CU_ASSERT_EQUAL(http01_parse_request(NULL, 0, NULL, NULL), -EAGAIN);
}

static void t_parse_other_paths(void)
{
    static const char *const other[] = {
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /index.html HTTP/1.1\r\n\r\n",
        "GET " PATH " HTTP/1.1\r\n\r\n",                 /* empty token */
        "GET " PATH "ab.c HTTP/1.1\r\n\r\n",             /* '.' */
        "GET " PATH "ab%2e HTTP/1.1\r\n\r\n",            /* '%' */
        "GET " PATH "../etc/passwd HTTP/1.1\r\n\r\n",
        "GET " PATH TOKEN "?x=1 HTTP/1.1\r\n\r\n",       /* query */
        "GET " PATH TOKEN "/ HTTP/1.1\r\n\r\n",
        "GET /.well-known/acme-challenge HTTP/1.1\r\n\r\n",
        "GET /.WELL-KNOWN/acme-challenge/" TOKEN " HTTP/1.1\r\n\r\n",
    };
    char big[600];
    int n;

    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        CU_ASSERT_EQUAL(parse(other[i], NULL, NULL), -ENOENT);
    /* a token longer than HTTP01_MAX_TOKEN */
    n = snprintf(big, sizeof(big), "GET " PATH "%0257d HTTP/1.1\r\n\r\n", 0);
    CU_ASSERT(n > 0 && (size_t)n < sizeof(big));
    CU_ASSERT_EQUAL(parse(big, NULL, NULL), -ENOENT);
    n = snprintf(big, sizeof(big), "GET " PATH "%0256d HTTP/1.1\r\n\r\n", 0);
    CU_ASSERT_EQUAL(parse(big, NULL, NULL), 0);
}

static void t_parse_malformed(void)
{
    static const char *const bad[] = {
        "POST " PATH TOKEN " HTTP/1.1\r\n\r\n",
        "get " PATH TOKEN " HTTP/1.1\r\n\r\n",
        "GET " PATH TOKEN " HTTP/2.0\r\n\r\n",
        "GET " PATH TOKEN " HTTP/1.1 \r\n\r\n",
        "GET " PATH TOKEN " HTTP/1.1\n\n",               /* bare LF */
        "GET " PATH TOKEN " HTTP/1.1\r\nHost: x\n\r\n",
        "GET " PATH TOKEN " HTTP/1.1\rX\r\n\r\n",        /* bare CR */
        "GET  " PATH TOKEN " HTTP/1.1\r\n\r\n",           /* two spaces */
        "GET " PATH TOKEN "  HTTP/1.1\r\n\r\n",
        "GET http://x" PATH TOKEN " HTTP/1.1\r\n\r\n",   /* absolute-form */
        "GET " PATH TOKEN "\r\n\r\n",                    /* HTTP/0.9 */
        "GET\r\n\r\n",
        "\r\n\r\n",
        "GET " PATH TOKEN " HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET " PATH TOKEN " HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n",
        "GET " PATH TOKEN " HTTP/1.1\r\n: empty-name\r\n\r\n",
        "GET " PATH TOKEN " HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "GET " PATH TOKEN " HTTP/1.1\r\nX: \x80\r\n\r\n", /* non-ASCII */
        "GET " PATH TOKEN " HTTP/1.1\r\nX: \x1b[31m\r\n\r\n",
        "GET /a\tb HTTP/1.1\r\n\r\n",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = parse(bad[i], NULL, NULL);

        if (r != -EBADMSG)
            fprintf(stderr, "case %zu: %d\n", i, r);
        CU_ASSERT_EQUAL(r, -EBADMSG);
    }
}

static void t_parse_nul_and_oversize(void)
{
    static const char nul[] = "GET " PATH "ab\0cd HTTP/1.1\r\n\r\n";
    static const char nul_early[] = "GE\0";
    char *big;
    size_t n;

    CU_ASSERT_EQUAL(http01_parse_request(nul, sizeof(nul) - 1, NULL, NULL),
                    -EBADMSG);
    /* hopeless bytes fail before the head is complete */
    CU_ASSERT_EQUAL(http01_parse_request(nul_early, 3, NULL, NULL), -EBADMSG);

    big = malloc(2 * HTTP01_MAX_HEAD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    n = (size_t)snprintf(big, 2 * HTTP01_MAX_HEAD,
                         "GET " PATH TOKEN " HTTP/1.1\r\nX: ");
    memset(big + n, 'a', 2 * HTTP01_MAX_HEAD - n);
    CU_ASSERT_EQUAL(http01_parse_request(big, HTTP01_MAX_HEAD - 1, NULL,
                                         NULL),
                    -EAGAIN);
    CU_ASSERT_EQUAL(http01_parse_request(big, HTTP01_MAX_HEAD, NULL, NULL),
                    -EMSGSIZE);
    CU_ASSERT_EQUAL(http01_parse_request(big, 2 * HTTP01_MAX_HEAD, NULL,
                                         NULL),
                    -EMSGSIZE);
    /* a head that ends exactly at the limit is fine */
    memcpy(big + HTTP01_MAX_HEAD - 4, "\r\n\r\n", 4);
    CU_ASSERT_EQUAL(http01_parse_request(big, 2 * HTTP01_MAX_HEAD, NULL,
                                         NULL),
                    0);
    /* ... one byte later it is not */
    memset(big + n, 'a', 2 * HTTP01_MAX_HEAD - n);
    memcpy(big + HTTP01_MAX_HEAD - 3, "\r\n\r\n", 4);
    CU_ASSERT_EQUAL(http01_parse_request(big, 2 * HTTP01_MAX_HEAD, NULL,
                                         NULL),
                    -EMSGSIZE);
    free(big);
}

/* ------------------------------------------------------------ listener */

static void t_listen_syntax(void)
{
    static const char *const bad[] = {
        "", "127.0.0.1:99999", "[::1", "[::1]80", "foo:80", "1.2.3.4:8a",
        "1.2.3.4:", "[]:80", "::1:80", "[127.0.0.1]:80", "1.2.3.4:-1",
    };
    static const char *const good[] = {
        "[::]:80", "0.0.0.0:80", "127.0.0.1:8080", "[::1]:80", "[::]",
        "127.0.0.1", "127.0.0.1:0",
    };
    struct http01 *h = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(http01_new(bad[i], &h), -EINVAL);
    CU_ASSERT_EQUAL(http01_new(NULL, &h), -EINVAL);
    CU_ASSERT_PTR_NULL(h);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CU_ASSERT_EQUAL(http01_new(good[i], &h), 0);
        http01_free(h);
        h = NULL;
    }
    CU_ASSERT_EQUAL(http01_new("[::1]:8080", &h), 0);
    CU_ASSERT_EQUAL(http01_port(h), 8080);
    http01_free(h);
    http01_free(NULL);
}

/* Connects to the loopback of family af; -errno on failure. */
static int connect_to(int af, int port)
{
    int fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

    if (fd < 0)
        return -errno;
    if (af == AF_INET) {
        struct sockaddr_in a = { .sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port) };

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        r = connect(fd, (struct sockaddr *)&a, sizeof(a));
    } else {
        struct sockaddr_in6 a = { .sin6_family = AF_INET6,
                                  .sin6_port = htons((uint16_t)port),
                                  .sin6_addr = IN6ADDR_LOOPBACK_INIT };

        r = connect(fd, (struct sockaddr *)&a, sizeof(a));
    }
    if (r < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

/* Sends req (in pieces of `chunk` bytes, 0 = at once), reads the whole
 * reply into out (NUL-terminated).  Returns bytes read or -errno. */
static ssize_t exchange(int af, int port, const char *req, size_t chunk,
                        char *out, size_t outlen)
{
    size_t n = strlen(req), off = 0, got = 0;
    int fd = connect_to(af, port);

    if (fd < 0)
        return fd;
    while (off < n) {
        size_t k = chunk && chunk < n - off ? chunk : n - off;
        ssize_t w = send(fd, req + off, k, MSG_NOSIGNAL);

        if (w < 0) {
            close(fd);
            return -errno;
        }
        off += (size_t)w;
        if (chunk)
            usleep(1000);
    }
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t k;

        if (poll(&p, 1, 10000) <= 0)
            break;
        k = recv(fd, out + got, outlen - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    out[got] = '\0';
    close(fd);
    return (ssize_t)got;
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");

    return b ? b + 4 : "";
}

static void serve_checks(int af, int port)
{
    char out[2048];

    CU_ASSERT(exchange(af, port,
                       "GET " PATH TOKEN " HTTP/1.1\r\nHost: t\r\n\r\n", 0,
                       out, sizeof(out)) > 0);
    CU_ASSERT(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Content-Type: text/plain\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Connection: close\r\n"));
    CU_ASSERT_STRING_EQUAL(body_of(out), KEYAUTH);

    /* byte by byte (a slow but honest client) */
    CU_ASSERT(exchange(af, port,
                       "GET " PATH TOKEN " HTTP/1.0\r\n\r\n", 1, out,
                       sizeof(out)) > 0);
    CU_ASSERT_STRING_EQUAL(body_of(out), KEYAUTH);

    CU_ASSERT(exchange(af, port, "HEAD " PATH TOKEN " HTTP/1.1\r\n\r\n", 0,
                       out, sizeof(out)) > 0);
    CU_ASSERT(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CU_ASSERT_STRING_EQUAL(body_of(out), "");

    CU_ASSERT(exchange(af, port, "GET " PATH "unknownToken HTTP/1.1\r\n\r\n",
                       0, out, sizeof(out)) > 0);
    CU_ASSERT(strncmp(out, "HTTP/1.1 404 ", 13) == 0);
    CU_ASSERT_STRING_EQUAL(body_of(out), "");

    CU_ASSERT(exchange(af, port, "GET / HTTP/1.1\r\n\r\n", 0, out,
                       sizeof(out)) > 0);
    CU_ASSERT(strncmp(out, "HTTP/1.1 404 ", 13) == 0);

    CU_ASSERT(exchange(af, port, "BREW " PATH TOKEN " HTTP/1.1\r\n\r\n", 0,
                       out, sizeof(out)) > 0);
    CU_ASSERT(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
    CU_ASSERT_PTR_NULL(strstr(out, KEYAUTH));
}

static void live_one(const char *listen, int af, int af2)
{
    struct http01 *h = NULL;
    int port, r;

    CU_ASSERT_EQUAL_FATAL(http01_new(listen, &h), 0);
    CU_ASSERT_EQUAL(http01_port(h), -ENOTCONN); /* port 0, not bound */
    r = http01_publish(h, TOKEN, KEYAUTH);
    if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL) {
        fprintf(stderr, "(no IPv6 here, skipping %s) ", listen);
        http01_free(h);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(r, 0);
    port = http01_port(h);
    CU_ASSERT_FATAL(port > 0);
    serve_checks(af, port);
    if (af2)
        serve_checks(af2, port);
    http01_withdraw(h, TOKEN);
    /* the listener is gone with the last token */
    r = connect_to(af, port);
    CU_ASSERT_EQUAL(r, -ECONNREFUSED);
    if (r >= 0)
        close(r);
    http01_free(h);
}

static void t_live_ipv4(void)
{
    live_one("127.0.0.1:0", AF_INET, 0);
}

static void t_live_ipv6(void)
{
    live_one("[::1]:0", AF_INET6, 0);
}

static void t_live_dualstack(void)
{
    live_one("[::]:0", AF_INET6, AF_INET);
}

static void t_refcount(void)
{
    struct http01 *h = NULL;
    char out[2048];
    int port, fd;

    CU_ASSERT_EQUAL_FATAL(http01_new("127.0.0.1:0", &h), 0);
    CU_ASSERT_EQUAL(http01_publish(h, "bad.token", KEYAUTH), -EINVAL);
    CU_ASSERT_EQUAL(http01_publish(h, TOKEN, "has space"), -EINVAL);
    CU_ASSERT_EQUAL(http01_publish(h, TOKEN, ""), -EINVAL);
    CU_ASSERT_EQUAL_FATAL(http01_publish(h, TOKEN, KEYAUTH), 0);
    port = http01_port(h);
    CU_ASSERT_EQUAL(http01_publish(h, TOKEN, KEYAUTH), 0);       /* ref 2 */
    CU_ASSERT_EQUAL(http01_publish(h, TOKEN, "other.x"), -EEXIST);
    CU_ASSERT_EQUAL(http01_publish(h, "second", "second.x"), 0);
    CU_ASSERT_EQUAL(http01_port(h), port); /* same listener */
    http01_withdraw(h, "never-published");
    http01_withdraw(h, TOKEN); /* ref 1 */
    CU_ASSERT(exchange(AF_INET, port, "GET " PATH TOKEN " HTTP/1.1\r\n\r\n",
                       0, out, sizeof(out)) > 0);
    CU_ASSERT_STRING_EQUAL(body_of(out), KEYAUTH);
    http01_withdraw(h, TOKEN); /* gone, "second" still holds the port */
    CU_ASSERT(exchange(AF_INET, port, "GET " PATH TOKEN " HTTP/1.1\r\n\r\n",
                       0, out, sizeof(out)) > 0);
    CU_ASSERT(strncmp(out, "HTTP/1.1 404 ", 13) == 0);
    CU_ASSERT(exchange(AF_INET, port, "GET " PATH "second HTTP/1.1\r\n\r\n",
                       0, out, sizeof(out)) > 0);
    CU_ASSERT_STRING_EQUAL(body_of(out), "second.x");
    http01_withdraw(h, "second");
    fd = connect_to(AF_INET, port);
    CU_ASSERT_EQUAL(fd, -ECONNREFUSED);
    if (fd >= 0)
        close(fd);
    /* it comes back on the next publish */
    CU_ASSERT_EQUAL(http01_publish(h, TOKEN, KEYAUTH), 0);
    CU_ASSERT(http01_port(h) > 0);
    http01_free(h); /* with a token still published */
}

static void t_addr_in_use(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t sl = sizeof(a);
    struct http01 *h = NULL;
    char spec[64];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CU_ASSERT_FATAL(listen(fd, 1) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&a, &sl) == 0);
    snprintf(spec, sizeof(spec), "127.0.0.1:%d", ntohs(a.sin_port));
    CU_ASSERT_EQUAL_FATAL(http01_new(spec, &h), 0);
    CU_ASSERT_EQUAL(http01_publish(h, TOKEN, KEYAUTH), -EADDRINUSE);
    http01_withdraw(h, TOKEN); /* not published: harmless */
    http01_free(h);

    /* the same socket, adopted (socket activation) */
    h = NULL;
    CU_ASSERT_EQUAL_FATAL(http01_new_from_fd(fd, &h), 0);
    CU_ASSERT_EQUAL(http01_port(h), ntohs(a.sin_port));
    CU_ASSERT_EQUAL(http01_publish(h, TOKEN, KEYAUTH), 0);
    serve_checks(AF_INET, ntohs(a.sin_port));
    http01_withdraw(h, TOKEN);
    CU_ASSERT_EQUAL(http01_publish(h, TOKEN, KEYAUTH), 0);
    serve_checks(AF_INET, ntohs(a.sin_port));
    http01_free(h); /* closes fd */
    CU_ASSERT_EQUAL(http01_new_from_fd(-1, &h), -EINVAL);
}

static void t_slow_clients(void)
{
    struct http01 *h = NULL;
    int idle[40], port;
    char out[2048];

    CU_ASSERT_EQUAL_FATAL(http01_new("127.0.0.1:0", &h), 0);
    CU_ASSERT_EQUAL_FATAL(http01_publish(h, TOKEN, KEYAUTH), 0);
    port = http01_port(h);
    /* more idle connections than the responder keeps: they must neither
     * block a real request nor crash anything */
    for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++) {
        idle[i] = connect_to(AF_INET, port);
        CU_ASSERT(idle[i] >= 0);
        if (idle[i] >= 0 && i % 2)
            (void)send(idle[i], "GET /", 5, MSG_NOSIGNAL);
    }
    CU_ASSERT(exchange(AF_INET, port, "GET " PATH TOKEN " HTTP/1.1\r\n\r\n",
                       0, out, sizeof(out)) > 0);
    CU_ASSERT_STRING_EQUAL(body_of(out), KEYAUTH);
    for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++)
        if (idle[i] >= 0)
            close(idle[i]);
    /* an oversized head gets 431 */
    {
        char *big = malloc(HTTP01_MAX_HEAD + 100);

        CU_ASSERT_PTR_NOT_NULL_FATAL(big);
        memset(big, 'a', HTTP01_MAX_HEAD + 99);
        memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
        big[HTTP01_MAX_HEAD + 99] = '\0';
        CU_ASSERT(exchange(AF_INET, port, big, 0, out, sizeof(out)) > 0);
        CU_ASSERT(strncmp(out, "HTTP/1.1 431 ", 13) == 0);
        free(big);
    }
    http01_free(h);
}

struct stress_arg {
    struct http01 *h;
    int id;
};

static void *stress_thread(void *p)
{
    struct stress_arg *a = p;
    char tok[32], ka[64];

    snprintf(tok, sizeof(tok), "tok%d", a->id);
    snprintf(ka, sizeof(ka), "tok%d.thumb", a->id);
    for (int i = 0; i < 200; i++) {
        if (http01_publish(a->h, tok, ka) < 0)
            return (void *)1;
        http01_withdraw(a->h, tok);
    }
    return NULL;
}

static void t_concurrent(void)
{
    struct http01 *h = NULL;
    pthread_t th[4];
    struct stress_arg args[4];
    void *rv;

    CU_ASSERT_EQUAL_FATAL(http01_new("127.0.0.1:0", &h), 0);
    for (int i = 0; i < 4; i++) {
        args[i] = (struct stress_arg){ h, i };
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, stress_thread,
                                       &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        CU_ASSERT(pthread_join(th[i], &rv) == 0);
        CU_ASSERT_PTR_NULL(rv);
    }
    CU_ASSERT_EQUAL(http01_port(h), -ENOTCONN); /* all withdrawn: closed */
    http01_free(h);
}

int cu_register(void)
{
    static const struct cu_test parser[] = {
        { "valid", t_parse_valid },
        { "incomplete", t_parse_incomplete },
        { "other-paths", t_parse_other_paths },
        { "malformed", t_parse_malformed },
        { "nul-oversize", t_parse_nul_and_oversize },
        { 0 },
    };
    static const struct cu_test live[] = {
        { "listen-syntax", t_listen_syntax },
        { "ipv4", t_live_ipv4 },
        { "ipv6", t_live_ipv6 },
        { "dual-stack", t_live_dualstack },
        { "refcount", t_refcount },
        { "addr-in-use-and-adopted-fd", t_addr_in_use },
        { "slow-clients", t_slow_clients },
        { "concurrent", t_concurrent },
        { 0 },
    };

    if (cu_add_suite("parser", parser) < 0 ||
        cu_add_suite("responder", live) < 0)
        return -1;
    return 0;
}
