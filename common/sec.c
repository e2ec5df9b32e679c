/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading secrets from files into struct secret.  Every intermediate copy
 * is wiped; nothing is logged (library code).
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "macro.h"
#include "sec.h"

int sec_read_file(const char *path, size_t max, struct secret *ret)
{
    _cleanup_close_ int fd = -1;
    struct secret s = { 0 };
    struct stat st;
    size_t len = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return negerrno();
    if (fstat(fd, &st) < 0)
        return negerrno();
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    if ((size_t)st.st_size > max)
        return -EFBIG;
    s.len = max + 1; /* room to notice a file that grew */
    s.data = OPENSSL_malloc(s.len);
    if (!s.data)
        return -ENOMEM;
    for (;;) {
        ssize_t n = read(fd, s.data + len, s.len - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = negerrno();

            secret_wipe(&s);
            return e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            secret_wipe(&s);
            return -EFBIG;
        }
    }
    if (len > 0 && s.data[len - 1] == '\n')
        len--;
    /* The tail past len is wiped now, since secret_wipe() will only wipe
     * len bytes. */
    OPENSSL_cleanse(s.data + len, s.len - len);
    if (len == 0) {
        OPENSSL_free(s.data);
        s.data = NULL;
    }
    ret->data = s.data;
    ret->len = len;
    return 0;
}
