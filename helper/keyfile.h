/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private key files in the state directory: PKCS#8 PEM, mode 0600, written
 * atomically from a secure-heap buffer, read through a wiped buffer.  The
 * only code that touches private key bytes outside libcrypto.
 */
#ifndef SHORTCERT_KEYFILE_H
#define SHORTCERT_KEYFILE_H

#include <openssl/types.h>

/* -ENOENT if missing, -EBADMSG if not a readable unencrypted key. */
int keyfile_read(const char *path, EVP_PKEY **ret);
int keyfile_write(const char *path, EVP_PKEY *k);

#endif
