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
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

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

/* A TLS 1.3 server CertificateVerify input. */
static size_t make_cv(uint8_t *m)
{
    memset(m, 0x20, 64);
    memcpy(m + 64, "TLS 1.3, server CertificateVerify", 33);
    m[97] = 0;
    memset(m + 98, 0xa5, 32);
    return 130;
}

static bool verify_scheme(EVP_PKEY *pub, uint32_t scheme, const uint8_t *msg,
                          size_t len, const uint8_t *sig, size_t siglen)
{
    static const char *const md[IPC_SCHEME_MAX] = {
        [IPC_SCHEME_ECDSA_SHA256] = "SHA256", [IPC_SCHEME_ECDSA_SHA384] = "SHA384",
        [IPC_SCHEME_ECDSA_SHA512] = "SHA512", [IPC_SCHEME_RSA_PKCS1_SHA256] = "SHA256",
        [IPC_SCHEME_RSA_PKCS1_SHA384] = "SHA384", [IPC_SCHEME_RSA_PKCS1_SHA512] = "SHA512",
        [IPC_SCHEME_RSA_PSS_SHA256] = "SHA256", [IPC_SCHEME_RSA_PSS_SHA384] = "SHA384",
        [IPC_SCHEME_RSA_PSS_SHA512] = "SHA512",
    };
    bool pss = scheme >= IPC_SCHEME_RSA_PSS_SHA256 && scheme <= IPC_SCHEME_RSA_PSS_SHA512;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok;

    ok = m && EVP_DigestVerifyInit_ex(m, &pctx, md[scheme], NULL, NULL, pub,
                                      NULL) == 1;
    /* PSS as TLS needs it: the salt exactly as long as the hash. */
    if (ok && pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    ok = ok && EVP_DigestVerify(m, sig, siglen, msg, len) == 1;
    EVP_MD_CTX_free(m);
    return ok;
}

/* Every key type: a key of that type is made, signs each scheme of its
 * kind (verified with the public key) and refuses every other scheme. */
static void t_key_types_sign(void)
{
    static const struct {
        enum cfg_key_type type;
        enum tls_key_kind kind;
        const char *name;
        int bits;
    } types[] = {
        { CFG_KEY_EC_P256, TLS_KEY_EC, "EC", 256 },
        { CFG_KEY_EC_P384, TLS_KEY_EC, "EC", 384 },
        { CFG_KEY_RSA_2048, TLS_KEY_RSA, "RSA", 2048 },
        { CFG_KEY_RSA_3072, TLS_KEY_RSA, "RSA", 3072 },
        { CFG_KEY_ED25519, TLS_KEY_ED25519, "ED25519", 256 },
    };
    char state[300], chain[300], ref[300];
    uint8_t msg[256];
    size_t len = make_cv(msg);

    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(chain, sizeof(chain), "%s/out/k.crt", dir);
    snprintf(ref, sizeof(ref), "%s/out/k.ref", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(state, 0700), 0);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        struct cfg_identity cfg = {
            .name = (char *)cfg_key_type_str(types[i].type),
            .key_type = types[i].type,
            .ca_root = (char *)"/nonexistent",
            .chain = { .path = chain },
            .ref = { .path = ref },
            .renew_at_pm = 667,
            .retry_floor_s = 5,
            .retry_max_s = 600,
        };
        struct cfg_identity other = cfg;
        struct identity id;
        struct keygen *g;
        uint8_t stale[IPC_GENERATION_LEN] = { 0 };
        int n_ok = 0;

        CU_ASSERT_EQUAL_FATAL(identity_init(&id, &cfg, state), 0);
        g = identity_current(&id);
        CU_ASSERT_PTR_NOT_NULL_FATAL(g);
        CU_ASSERT(EVP_PKEY_is_a(g->key, types[i].name));
        CU_ASSERT_EQUAL(EVP_PKEY_get_bits(g->key), types[i].bits);
        CU_ASSERT_EQUAL(g->kind, types[i].kind);
        CU_ASSERT_EQUAL(identity_key_kind(&id, g->generation), types[i].kind);
        CU_ASSERT_FALSE(identity_key_type_changed(&id, g));
        for (uint32_t s = 0; s <= IPC_SCHEME_MAX; s++) {
            uint8_t sig[IPC_SIG_MAX];
            size_t siglen = sizeof(sig);
            bool retired = true;
            bool fits = (types[i].kind == TLS_KEY_EC &&
                         s >= IPC_SCHEME_ECDSA_SHA256 && s <= IPC_SCHEME_ECDSA_SHA512) ||
                        (types[i].kind == TLS_KEY_RSA &&
                         s >= IPC_SCHEME_RSA_PKCS1_SHA256 && s <= IPC_SCHEME_RSA_PSS_SHA512) ||
                        (types[i].kind == TLS_KEY_ED25519 && s == IPC_SCHEME_ED25519);
            int r = identity_sign(&id, g->generation, s, msg, len, sig, &siglen,
                                  &retired);

            if (!fits) {
                CU_ASSERT_EQUAL(r, -EINVAL);
                continue;
            }
            CU_ASSERT_EQUAL(r, 0);
            CU_ASSERT_FALSE(retired);
            if (r != 0)
                continue;
            if (types[i].kind == TLS_KEY_ED25519) {
                EVP_MD_CTX *m = EVP_MD_CTX_new();

                CU_ASSERT_EQUAL(siglen, 64);
                CU_ASSERT(EVP_DigestVerifyInit_ex(m, NULL, NULL, NULL, NULL,
                                                  g->key, NULL) == 1 &&
                          EVP_DigestVerify(m, sig, siglen, msg, len) == 1);
                EVP_MD_CTX_free(m);
            } else {
                CU_ASSERT(verify_scheme(g->key, s, msg, len, sig, siglen));
                /* the same signature must not pass as another scheme */
                if (s == IPC_SCHEME_RSA_PSS_SHA256)
                    CU_ASSERT_FALSE(verify_scheme(g->key,
                                                  IPC_SCHEME_RSA_PKCS1_SHA256,
                                                  msg, len, sig, siglen));
            }
            n_ok++;
        }
        CU_ASSERT_EQUAL(n_ok, types[i].kind == TLS_KEY_RSA  ? 6
                              : types[i].kind == TLS_KEY_EC ? 3
                                                            : 1);
        {
            uint8_t sig[IPC_SIG_MAX];
            size_t siglen = sizeof(sig);
            bool retired;

            CU_ASSERT_EQUAL(identity_sign(&id, stale, IPC_SCHEME_ED25519, msg,
                                          len, sig, &siglen, &retired),
                            -ESTALE);
        }
        /* Another configured type: the stored key no longer fits. */
        other.key_type = types[i].type == CFG_KEY_EC_P256 ? CFG_KEY_EC_P384
                                                          : CFG_KEY_EC_P256;
        id.cfg = &other;
        CU_ASSERT_TRUE(identity_key_type_changed(&id, g));
        {
            json_t *st = identity_status(&id);

            CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(st, "key_type")),
                                   cfg_key_type_str(types[i].type));
            CU_ASSERT_STRING_EQUAL(
                json_string_value(json_object_get(st, "configured_key_type")),
                cfg_key_type_str(other.key_type));
            json_decref(st);
        }
        id.cfg = &cfg;
        {
            json_t *st = identity_status(&id);

            CU_ASSERT_PTR_NULL(json_object_get(st, "configured_key_type"));
            json_decref(st);
        }
        keygen_unref(g);
        identity_done(&id);
    }
    ERR_clear_error();
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
        { "every key type: keygen, schemes, refusals", t_key_types_sign },
        { NULL, NULL },
    };

    if (!mkdtemp(dir))
        return -1;
    atexit(remove_dir);
    return cu_add_suite("daemon", tests);
}
