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

struct http01;

/* listen: "[::]:80", "0.0.0.0:80", "127.0.0.1:8080", "[::1]:80"; "[::]" is
 * bound with IPV6_V6ONLY off so it also takes IPv4. */
int http01_new(const char *listen, struct http01 **ret);
void http01_free(struct http01 *h);

/* Publish or withdraw a token (thread-safe).  The first publish binds the
 * listener (-EADDRINUSE etc. are returned); the last withdraw closes it. */
int http01_publish(struct http01 *h, const char *token, const char *keyauth);
void http01_withdraw(struct http01 *h, const char *token);

/* Parser of one request head (bounded, pure; used by the server and by the
 * fuzz target).  Returns 0 with the token (borrowed from buf) when buf holds
 * a complete "GET /.well-known/acme-challenge/<token> HTTP/1.x" head,
 * -EAGAIN if more bytes are needed, -EBADMSG if it is malformed, -ENOENT for
 * a well-formed request for another path. */
int http01_parse_request(const char *buf, size_t len, const char **ret_token,
                         size_t *ret_token_len);

#endif
