/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of shortcertd pieces that need no peer: atomic file
 * replacement (owner, mode, nothing lost on failure), the allow-list check
 * with supplementary groups, and the retry back-off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "cu-main.h"
#include "fileio.h"
#include "identity.h"
#include "ipc-server.h"

static char dir[] = "/tmp/sc-test-daemon.XXXXXX";

static void t_atomic_write(void)
{
    char path[256], *data = NULL;
    size_t n = 0;
    struct stat st;

    snprintf(path, sizeof(path), "%s/out.pem", dir);
    CU_ASSERT_EQUAL(file_write_atomic(path, "one\n", 4, (uid_t)-1, (gid_t)-1, 0640), 0);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0640);
    CU_ASSERT_TRUE(file_is_same(path, "one\n", 4, (uid_t)-1, (gid_t)-1, 0640));
    CU_ASSERT_FALSE(file_is_same(path, "one\n", 4, (uid_t)-1, (gid_t)-1, 0644));
    CU_ASSERT_FALSE(file_is_same(path, "two\n", 4, (uid_t)-1, (gid_t)-1, 0640));
    CU_ASSERT_EQUAL(file_write_atomic(path, "two\n", 4, 65534, 65534, 0600), 0);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    if (geteuid() == 0)
        CU_ASSERT_EQUAL(st.st_uid, 65534);
    CU_ASSERT_EQUAL(file_read_all(path, 100, &data, &n), 0);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_STRING_EQUAL(data, "two\n");
    free(data);
    CU_ASSERT_EQUAL(file_read_all(path, 3, &data, &n), -EFBIG);
}

/* A failed write leaves the old file alone and no temporary behind. */
static void t_atomic_write_failure_keeps_old(void)
{
    char path[256], bad[256], *data = NULL;
    char cmd[300];
    struct file_spec set[2];
    size_t n;

    snprintf(path, sizeof(path), "%s/keep.pem", dir);
    snprintf(bad, sizeof(bad), "%s/no-such-dir/x.pem", dir);
    CU_ASSERT_EQUAL(file_write_atomic(path, "old", 3, (uid_t)-1, (gid_t)-1, 0644), 0);
    set[0] = (struct file_spec){ path, "new", 3, (uid_t)-1, (gid_t)-1, 0644 };
    set[1] = (struct file_spec){ bad, "new", 3, (uid_t)-1, (gid_t)-1, 0644 };
    CU_ASSERT_EQUAL(file_write_set_atomic(set, 2), -ENOENT);
    CU_ASSERT_EQUAL(file_read_all(path, 100, &data, &n), 0);
    CU_ASSERT_STRING_EQUAL(data, "old");
    free(data);
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s | grep tmp)\"", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* Parents are created 0755 even under shortcertd's umask 077, or services
 * could not reach the socket or the files. */
static void t_parents_mode(void)
{
    char path[256], d1[256], d2[256];
    struct stat st;
    mode_t old = umask(077);

    snprintf(d1, sizeof(d1), "%s/p1", dir);
    snprintf(d2, sizeof(d2), "%s/p1/p2", dir);
    snprintf(path, sizeof(path), "%s/p1/p2/file", dir);
    CU_ASSERT_EQUAL(dir_ensure_parents(path), 0);
    umask(old);
    CU_ASSERT_EQUAL(stat(d1, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0755);
    CU_ASSERT_EQUAL(stat(d2, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0755);
}

static void t_move_aside(void)
{
    char path[256], aside[300];
    struct stat st;

    snprintf(path, sizeof(path), "%s/key.pem", dir);
    CU_ASSERT_EQUAL(file_write_atomic(path, "junk", 4, (uid_t)-1, (gid_t)-1, 0600), 0);
    CU_ASSERT_EQUAL(file_move_aside(path, aside, sizeof(aside)), 0);
    CU_ASSERT_NOT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(stat(aside, &st), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(aside, "key.pem.corrupt-"));
}

static void t_peer_allowed(void)
{
    uid_t uids[] = { 33 };
    gid_t gids[] = { 103, 4242 };
    struct cfg_identity cfg = {
        .name = "api",
        .allow_uids = uids,
        .n_allow_uids = 1,
        .allow_gids = gids,
        .n_allow_gids = 2,
    };
    struct identity id = { .cfg = &cfg };
    gid_t sup[] = { 5, 4242 };
    gid_t other[] = { 5, 6 };

    CU_ASSERT_TRUE(ipc_peer_allowed(&id, 33, 33, NULL, 0));
    CU_ASSERT_FALSE(ipc_peer_allowed(&id, 34, 34, NULL, 0));
    CU_ASSERT_TRUE(ipc_peer_allowed(&id, 34, 103, NULL, 0));   /* primary */
    CU_ASSERT_TRUE(ipc_peer_allowed(&id, 34, 34, sup, 2));     /* supplementary */
    CU_ASSERT_FALSE(ipc_peer_allowed(&id, 34, 34, other, 2));
    CU_ASSERT_FALSE(ipc_peer_allowed(&id, 0, 0, NULL, 0));     /* root not implied */
}

static void remove_dir(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int cu_register(void)
{
    static const struct cu_test tests[] = {
        { "atomic write: owner, mode, content", t_atomic_write },
        { "failed write keeps the old file", t_atomic_write_failure_keeps_old },
        { "parents created 0755 under umask 077", t_parents_mode },
        { "corrupt file moved aside", t_move_aside },
        { "allow list with supplementary groups", t_peer_allowed },
        { NULL, NULL },
    };

    if (!mkdtemp(dir))
        return -1;
    atexit(remove_dir);
    return cu_add_suite("daemon", tests);
}
