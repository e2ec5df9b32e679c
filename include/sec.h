/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secret buffers.  struct secret is the only type that may hold key bytes,
 * passwords or tokens; it is wiped with OPENSSL_clear_free() and has no
 * format specifier, so it cannot be logged by accident.
 */
#ifndef SHORTCERT_SEC_H
#define SHORTCERT_SEC_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/crypto.h>

struct secret {
    uint8_t *data;
    size_t len;
};

static inline void secret_wipe(struct secret *s)
{
    OPENSSL_clear_free(s->data, s->len); /* NULL-safe, like free() */
    *s = (struct secret){ 0 };
}

#define _cleanup_secret_ __attribute__((cleanup(secret_wipe)))

/* Read a whole file (at most max bytes) into a secret; -errno on failure,
 * -EFBIG if it is larger than max.  A single trailing newline is dropped. */
int sec_read_file(const char *path, size_t max, struct secret *ret);

#endif
