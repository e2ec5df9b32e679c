/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private key files (see keyfile.h).
 */
#include <openssl/err.h>
#include <openssl/pem.h>

#include "fileio.h"
#include "keyfile.h"
#include "macro.h"
#include "sec.h"

#define KEY_FILE_MAX 65536

/* Our key files are never encrypted; an encrypted one must fail rather than
 * prompt on a terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    return 0;
}

int keyfile_read(const char *path, EVP_PKEY **ret)
{
    _cleanup_secret_ struct secret s = { 0 };
    EVP_PKEY *k;
    BIO *b;
    int r;

    r = sec_read_file(path, KEY_FILE_MAX, &s);
    if (r < 0)
        return r;
    if (s.len == 0)
        return -EBADMSG;
    b = BIO_new_mem_buf(s.data, (int)s.len);
    if (!b)
        return -ENOMEM;
    k = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
    BIO_free(b);
    ERR_clear_error();
    if (!k)
        return -EBADMSG;
    *ret = k;
    return 0;
}

int keyfile_write(const char *path, EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_secmem()); /* wiped when freed */
    char *data = NULL;
    long len;
    int r;

    if (!b)
        return -ENOMEM;
    if (!PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)) {
        BIO_free(b);
        return -EIO;
    }
    len = BIO_get_mem_data(b, &data);
    r = len > 0 ? file_write_atomic(path, data, (size_t)len, (uid_t)-1,
                                    (gid_t)-1, 0600)
                : -EIO;
    BIO_free(b);
    return r;
}
