/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACME http-01 responder: a minimal HTTP/1.x server on a dual-stack
 * listener (default [::]:80) that answers
 * GET /.well-known/acme-challenge/<token> with the key authorization of a
 * published token and 404 otherwise.  It listens only while at least one
 * token is published, on its own thread, so it never blocks signing.
 */
#ifndef SHORTCERT_HTTP01_H
#define SHORTCERT_HTTP01_H

#include <stddef.h>

#define HTTP01_MAX_HEAD 4096u   /* request head, CRLFCRLF included */
#define HTTP01_MAX_TOKEN 256u   /* base64url characters */
#define HTTP01_MAX_KEYAUTH 512u /* token "." thumbprint */

struct http01;

/* listen: "[::]:80", "0.0.0.0:80", "127.0.0.1:8080", "[::1]:80" (port
 * 0 = an ephemeral port, for tests; no port = 80); "[::]" is bound with
 * IPV6_V6ONLY off so it also takes IPv4, and falls back to 0.0.0.0 (logged
 * once) where the kernel has no IPv6.  Nothing is bound here: binding
 * happens at the first publish, so the caller needs CAP_NET_BIND_SERVICE
 * (for ports < 1024) then, not now.  -EINVAL for a malformed address. */
int http01_new(const char *listen, struct http01 **ret);

/* Only check a listen address's syntax (for configuration checks). */
int http01_check_listen(const char *listen);

/* Like http01_new() but serves on an already bound and listening TCP socket
 * (e.g. systemd socket activation, ListenStream=80), which it takes
 * ownership of.  The fd stays open until http01_free(); only the serving
 * thread comes and goes with the tokens. */
int http01_new_from_fd(int fd, struct http01 **ret);

/* Withdraws everything, stops the thread, closes the listener.  NULL-safe.
 * Must not race with publish/withdraw on the same object. */
void http01_free(struct http01 *h);

/* Publish or withdraw a token (thread-safe).  The first publish binds the
 * listener (-EADDRINUSE, -EACCES etc. are returned, and the token is not
 * published then); the last withdraw closes it.  token: 1..HTTP01_MAX_TOKEN
 * base64url chars; keyauth: printable ASCII, at most HTTP01_MAX_KEYAUTH
 * (-EINVAL otherwise); both copied.  Publishing a token that is already
 * there with the same keyauth takes another reference (withdraw it as
 * often); with a different keyauth it is -EEXIST.  Withdrawing an unknown
 * token does nothing. */
int http01_publish(struct http01 *h, const char *token, const char *keyauth);
void http01_withdraw(struct http01 *h, const char *token);

/* The local port of the listener while it is bound (useful with port 0),
 * else the configured port; -ENOTCONN if neither is known. */
int http01_port(struct http01 *h);

/* Parser of one request head (bounded, pure; used by the server and by the
 * fuzz target).  Looks at no more than HTTP01_MAX_HEAD bytes of buf.
 * Returns 0 with the token (borrowed from buf) when buf holds a complete
 * "GET|HEAD /.well-known/acme-challenge/<token> HTTP/1.[01]" head (header
 * lines "name: value", CRLF line ends, ended by an empty line; anything
 * after the head is ignored), -EAGAIN if more bytes are needed,
 * -EMSGSIZE if no complete head fits in HTTP01_MAX_HEAD, -EBADMSG if it is
 * malformed (bare LF or CR, control or non-ASCII bytes, NUL, a method other
 * than GET/HEAD, another HTTP version, folded header lines), -ENOENT for a
 * well-formed request for another path (including a challenge path whose
 * token is not 1..HTTP01_MAX_TOKEN base64url characters, or that has a
 * query).  Bytes that can never become valid fail at once, even before the
 * head is complete. */
int http01_parse_request(const char *buf, size_t len, const char **ret_token,
                         size_t *ret_token_len);

#endif
