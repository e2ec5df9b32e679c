/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by every part of shortcert: cleanup attributes,
 * TAKE_PTR, array sizes.  Only libc; no logging, no globals.
 */
#ifndef SHORTCERT_MACRO_H
#define SHORTCERT_MACRO_H

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Move ownership out of a variable that has a cleanup attribute. */
#define TAKE_PTR(p)                                                           \
    ({                                                                        \
        __typeof__(p) _take_tmp = (p);                                        \
        (p) = NULL;                                                           \
        _take_tmp;                                                            \
    })

#define TAKE_FD(fd)                                                           \
    ({                                                                        \
        int _take_fd = (fd);                                                  \
        (fd) = -1;                                                            \
        _take_fd;                                                             \
    })

static inline void freep(void *p)
{
    free(*(void **)p);
}

static inline void closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        (void)close(*fd);
        errno = saved;
    }
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _unused_ __attribute__((unused))
#define _warn_unused_ __attribute__((warn_unused_result))

/* A negative errno for a caller that must return one even if errno is 0. */
static inline int negerrno(void)
{
    return errno > 0 ? -errno : -EIO;
}

#endif
