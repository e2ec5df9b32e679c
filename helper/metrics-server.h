/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics endpoint: GET /metrics over HTTP on a listening socket the
 * caller made (a loopback TCP address, a Unix socket, or one systemd
 * passed in), served by libmicrohttpd on its own thread.  Only GET and
 * HEAD of /metrics; bounded connections, memory and time per connection.
 */
#ifndef SHORTCERT_METRICS_SERVER_H
#define SHORTCERT_METRICS_SERVER_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

struct metrics_server;

/* Renders the exposition into f; -errno on failure (the scrape then gets
 * a 500).  Called on the server's thread. */
typedef int (*metrics_collect_fn)(FILE *f, void *userdata);

/* Parse "ADDR:PORT" (an IPv4 literal, or an IPv6 literal in brackets; port
 * 1..65535 without a leading zero).  0 or -EINVAL. */
int metrics_parse_listen(const char *spec, struct sockaddr_storage *ret,
                         socklen_t *ret_len);

/* Make a listening Unix stream socket at path (a stale socket file there is
 * replaced) with that mode.  The fd or -errno, reason in err. */
int metrics_listen_unix(const char *path, mode_t mode, char *err,
                        size_t errlen);

/* Make a listening TCP socket for "ADDR:PORT" ("127.0.0.1:9464",
 * "[::1]:9464"): an IP literal only, no name lookup.  Returns the fd or
 * -errno with the reason in err. */
int metrics_listen_tcp(const char *spec, char *err, size_t errlen);

/* Serve on listen_fd (taken over: closed by metrics_server_stop()). */
int metrics_server_start(int listen_fd, metrics_collect_fn collect,
                         void *userdata, struct metrics_server **ret,
                         char *err, size_t errlen);

void metrics_server_stop(struct metrics_server *s);

#endif
