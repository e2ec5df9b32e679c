/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Files shortcertd writes: every write goes to a temporary file in the
 * target's directory, gets its owner and mode, is fsync()ed, and is
 * rename()d over the target, and then the directory is fsync()ed, so a
 * reader sees the old file or the new one, never a mix, even after a crash.
 */
#ifndef SHORTCERT_FILEIO_H
#define SHORTCERT_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* uid/gid (uid_t)-1 keep the creator's (root).  -errno on failure; the
 * target is untouched then. */
int file_write_atomic(const char *path, const void *data, size_t len,
                      uid_t uid, gid_t gid, mode_t mode);

/* Several files replaced as a set: all are written and synced first, then
 * renamed one after the other, so the window in which a reader can see a
 * mix is two renames, not two writes. */
struct file_spec {
    const char *path;
    const void *data;
    size_t len;
    uid_t uid;
    gid_t gid;
    mode_t mode;
};
int file_write_set_atomic(const struct file_spec *files, size_t n);

/* Read a whole file of at most max bytes into a new NUL-terminated buffer
 * (free() it).  -EFBIG if larger. */
int file_read_all(const char *path, size_t max, char **ret, size_t *ret_len);

/* True if path holds exactly data with that owner and mode. */
bool file_is_same(const char *path, const void *data, size_t len, uid_t uid,
                  gid_t gid, mode_t mode);

/* Create a directory (not its parents) with mode if it does not exist; if it
 * exists, check it is a directory, owned by root, and tighten its mode to
 * at most mode. */
int dir_ensure_private(const char *path, mode_t mode);

/* Create missing parents of path (not path itself) with mode 0755 whatever
 * the umask: services must reach the socket and the files inside. */
int dir_ensure_parents(const char *path);

/* Remove the temporary files an interrupted file_write_atomic(path) may
 * have left next to path (".<name>.<12 hex>.tmp"); nothing else.
 * Returns how many were removed. */
int file_cleanup_stale_tmp(const char *path);

/* Move a bad file aside as "<path>.corrupt-<unix time>"; the new name is
 * written to ret_name (size n).  Never deletes anything. */
int file_move_aside(const char *path, char *ret_name, size_t n);

#endif
