/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Atomic file replacement and small file helpers (see fileio.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "fileio.h"
#include "macro.h"

struct staged {
    int dirfd;
    char tmp[NAME_MAX + 1];
    const char *base;
};

static int split_path(const char *path, char *dir, size_t n, const char **base)
{
    const char *slash = strrchr(path, '/');

    if (!slash || slash[1] == '\0')
        return -EINVAL;
    if ((size_t)(slash - path) >= n)
        return -ENAMETOOLONG;
    if (slash == path) {
        memcpy(dir, "/", 2);
    } else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    *base = slash + 1;
    if (strlen(*base) > NAME_MAX - 16)
        return -ENAMETOOLONG;
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return negerrno();
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write one file's content to a fresh temporary name next to it. */
static int stage(const struct file_spec *f, struct staged *s)
{
    char dir[PATH_MAX];
    unsigned char rnd[6];
    _cleanup_close_ int fd = -1;
    int r;

    s->dirfd = -1;
    r = split_path(f->path, dir, sizeof(dir), &s->base);
    if (r < 0)
        return r;
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0)
        return negerrno();
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return -EIO;
    snprintf(s->tmp, sizeof(s->tmp), ".%s.%02x%02x%02x%02x%02x%02x.tmp", s->base,
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    /* 0600 until the owner and mode are set, so nobody else can open it
     * in between. */
    fd = openat(s->dirfd, s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                0600);
    if (fd < 0)
        return negerrno();
    r = write_all(fd, f->data, f->len);
    if (r == 0 && (f->uid != (uid_t)-1 || f->gid != (gid_t)-1) &&
        fchown(fd, f->uid, f->gid) < 0)
        r = negerrno();
    if (r == 0 && fchmod(fd, f->mode) < 0)
        r = negerrno();
    if (r == 0 && fsync(fd) < 0)
        r = negerrno();
    if (r == 0 && close(TAKE_FD(fd)) < 0)
        r = negerrno();
    if (r < 0)
        (void)unlinkat(s->dirfd, s->tmp, 0);
    return r;
}

static void unstage(struct staged *s)
{
    if (s->dirfd >= 0) {
        if (s->tmp[0])
            (void)unlinkat(s->dirfd, s->tmp, 0);
        (void)close(s->dirfd);
    }
    s->dirfd = -1;
    s->tmp[0] = '\0';
}

int file_write_set_atomic(const struct file_spec *files, size_t n)
{
    struct staged st[8];
    size_t done = 0;
    int r = 0;

    if (n == 0 || n > ELEMENTSOF(st))
        return -EINVAL;
    memset(st, 0, sizeof(st));
    for (size_t i = 0; i < n; i++)
        st[i].dirfd = -1;
    for (; done < n; done++) {
        r = stage(&files[done], &st[done]);
        if (r < 0) {
            st[done].tmp[0] = '\0';
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (renameat(st[i].dirfd, st[i].tmp, st[i].dirfd, st[i].base) < 0) {
            r = negerrno();
            goto out;
        }
        st[i].tmp[0] = '\0';
    }
    /* Make the renames durable: each directory once. */
    for (size_t i = 0; i < n; i++) {
        struct stat a, b;
        bool seen = false;

        for (size_t j = 0; j < i && !seen; j++)
            seen = fstat(st[i].dirfd, &a) == 0 && fstat(st[j].dirfd, &b) == 0 &&
                   a.st_dev == b.st_dev && a.st_ino == b.st_ino;
        if (!seen && fsync(st[i].dirfd) < 0 && r == 0)
            r = negerrno();
    }
out:
    for (size_t i = 0; i < n; i++)
        unstage(&st[i]);
    return r;
}

int file_write_atomic(const char *path, const void *data, size_t len, uid_t uid,
                      gid_t gid, mode_t mode)
{
    struct file_spec f = {
        .path = path, .data = data, .len = len, .uid = uid, .gid = gid, .mode = mode,
    };

    return file_write_set_atomic(&f, 1);
}

int file_read_all(const char *path, size_t max, char **ret, size_t *ret_len)
{
    _cleanup_close_ int fd = -1;
    _cleanup_free_ char *buf = NULL;
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
    buf = malloc(max + 2);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        ssize_t n = read(fd, buf + len, max + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return negerrno();
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max)
            return -EFBIG;
    }
    buf[len] = '\0';
    *ret = TAKE_PTR(buf);
    if (ret_len)
        *ret_len = len;
    return 0;
}

bool file_is_same(const char *path, const void *data, size_t len, uid_t uid,
                  gid_t gid, mode_t mode)
{
    _cleanup_free_ char *cur = NULL;
    size_t n = 0;
    struct stat st;

    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
        (st.st_mode & 07777) != mode ||
        (uid != (uid_t)-1 && st.st_uid != uid) ||
        (gid != (gid_t)-1 && st.st_gid != gid) || (size_t)st.st_size != len)
        return false;
    if (file_read_all(path, len, &cur, &n) < 0)
        return false;
    return n == len && memcmp(cur, data, len) == 0;
}

int dir_ensure_private(const char *path, mode_t mode)
{
    struct stat st;

    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return negerrno();
    if (lstat(path, &st) < 0)
        return negerrno();
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (st.st_uid != geteuid())
        return -EPERM;
    if ((st.st_mode & 07777 & ~mode) != 0 && chmod(path, mode) < 0)
        return negerrno();
    return 0;
}

int dir_ensure_parents(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);

    if (len >= sizeof(buf) || path[0] != '/')
        return -EINVAL;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) == 0) {
            /* The daemon's umask is 077: set the mode we mean, so that a
             * service can reach what is written inside. */
            if (chmod(buf, 0755) < 0)
                return negerrno();
        } else if (errno != EEXIST) {
            return negerrno();
        }
        *p = '/';
    }
    return 0;
}

int file_cleanup_stale_tmp(const char *path)
{
    char dir[PATH_MAX];
    const char *base;
    size_t bl;
    DIR *d;
    struct dirent *de;
    int n = 0;

    if (split_path(path, dir, sizeof(dir), &base) < 0)
        return 0;
    bl = strlen(base);
    d = opendir(dir);
    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        size_t len = strlen(nm);
        char full[PATH_MAX];
        bool hex = true;

        /* exactly what stage() makes: "." base "." 12 hex ".tmp" */
        if (len != 1 + bl + 1 + 12 + 4 || nm[0] != '.' ||
            strncmp(nm + 1, base, bl) != 0 || nm[1 + bl] != '.' ||
            strcmp(nm + len - 4, ".tmp") != 0)
            continue;
        for (size_t i = 2 + bl; i < 2 + bl + 12; i++)
            hex = hex && strchr("0123456789abcdef", nm[i]) != NULL;
        if (!hex)
            continue;
        if (snprintf(full, sizeof(full), "%s/%s", dir, nm) < (int)sizeof(full) &&
            unlink(full) == 0)
            n++;
    }
    closedir(d);
    return n;
}

int file_move_aside(const char *path, char *ret_name, size_t n)
{
    int len = snprintf(ret_name, n, "%s.corrupt-%lld", path, (long long)time(NULL));

    if (len < 0 || (size_t)len >= n)
        return -ENAMETOOLONG;
    if (rename(path, ret_name) < 0)
        return negerrno();
    return 0;
}
