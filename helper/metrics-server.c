/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /metrics with libmicrohttpd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "metrics-server.h"

/* A scrape is one small request; nothing else is served. */
#define MS_CONN_LIMIT 8
#define MS_CONN_TIMEOUT_S 10
#define MS_CONN_MEMORY (32 * 1024)
#define MS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_server {
    struct MHD_Daemon *mhd;
    int fd;
    metrics_collect_fn collect;
    void *userdata;
};

int metrics_parse_listen(const char *spec, struct sockaddr_storage *ret,
                         socklen_t *ret_len)
{
    struct sockaddr_storage ss = { 0 };
    char host[64];
    const char *colon, *h;
    size_t hl;
    char *end;
    unsigned long port;

    if (!spec || !*spec)
        return -EINVAL;
    colon = strrchr(spec, ':');
    if (!colon || colon == spec)
        return -EINVAL;
    h = spec;
    hl = (size_t)(colon - spec);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return -EINVAL;
        h++;
        hl -= 2;
    }
    if (hl >= sizeof(host))
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (colon[1] < '1' || colon[1] > '9')
        return -EINVAL;
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (errno || *end || port > 65535)
        return -EINVAL;
    if (spec[0] != '[' &&
        inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;

        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *ret_len = sizeof(*in);
    } else if (spec[0] == '[' &&
               inet_pton(AF_INET6, host,
                         &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *ret_len = sizeof(*in6);
    } else {
        return -EINVAL;
    }
    *ret = ss;
    return 0;
}

int metrics_listen_tcp(const char *spec, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    int fd, one = 1;

    if (metrics_parse_listen(spec, &ss, &sl) < 0) {
        snprintf(err, errlen,
                 "metrics-listen '%s': want ADDRESS:PORT with an IP address "
                 "(\"127.0.0.1:9464\", \"[::1]:9464\")",
                 spec ? spec : "");
        return -EINVAL;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int e = errno;

        snprintf(err, errlen, "metrics-listen %s: socket: %s", spec,
                 strerror(e));
        return -e;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0) {
        int e = errno;

        snprintf(err, errlen, "metrics-listen %s: %s", spec, strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

int metrics_listen_unix(const char *path, mode_t mode, char *err,
                        size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (!path || path[0] != '/' || strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "metrics-socket '%s': want an absolute path "
                              "of at most %zu bytes",
                 path ? path : "", sizeof(sa.sun_path) - 1);
        return -EINVAL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int e = errno;

        snprintf(err, errlen, "metrics-socket %s: socket: %s", path,
                 strerror(e));
        return -e;
    }
    {
        struct stat st;

        /* a stale socket of an earlier run goes; anything else stays */
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            (void)unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        chmod(path, mode) < 0 || listen(fd, 16) < 0) {
        int e = errno;

        snprintf(err, errlen, "metrics-socket %s: %s", path, strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             const char *text, char *owned, size_t len)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    if (owned)
        r = MHD_create_response_from_buffer(len, owned, MHD_RESPMEM_MUST_FREE);
    else
        r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                            MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(owned);
        return MHD_NO;
    }
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                  owned ? MS_CONTENT_TYPE
                                        : "text/plain; charset=utf-8");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    struct metrics_server *s = cls;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    int r;

    /* MHD calls once with the headers, then for any body: answer at once
     * and refuse bodies */
    if (*upload_data_size)
        return MHD_NO;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                     "only GET /metrics is served\n", NULL, 0);
    if (strcmp(url, "/metrics") != 0)
        return reply(c, MHD_HTTP_NOT_FOUND, "only /metrics is served\n",
                     NULL, 0);
    f = open_memstream(&buf, &len);
    if (!f)
        return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n",
                     NULL, 0);
    r = s->collect(f, s->userdata);
    if (fclose(f) != 0 && r >= 0)
        r = -EIO;
    if (r < 0) {
        free(buf);
        return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                     "cannot collect the metrics\n", NULL, 0);
    }
    return reply(c, MHD_HTTP_OK, NULL, buf, len);
}

int metrics_server_start(int listen_fd, metrics_collect_fn collect,
                         void *userdata, struct metrics_server **ret,
                         char *err, size_t errlen)
{
    struct metrics_server *s = calloc(1, sizeof(*s));

    if (!s) {
        close(listen_fd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->fd = listen_fd;
    s->collect = collect;
    s->userdata = userdata;
    s->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL,
        handle, s, MHD_OPTION_LISTEN_SOCKET, listen_fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)MS_CONN_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)MS_CONN_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MS_CONN_MEMORY,
        MHD_OPTION_END);
    if (!s->mhd) {
        close(listen_fd);
        free(s);
        snprintf(err, errlen, "cannot start the metrics HTTP server");
        return -EIO;
    }
    *ret = s;
    return 0;
}

void metrics_server_stop(struct metrics_server *s)
{
    if (!s)
        return;
    /* MHD closes the listening socket it was given */
    MHD_stop_daemon(s->mhd);
    free(s);
}
