/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Identity state: key generations and their custody on disk, certificate
 * validation and adoption, the files written for services, and signing
 * (see identity.h for the layout and the rules).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fileio.h"
#include "identity.h"
#include "target-run.h"
#include "keyfile.h"
#include "keyref.h"
#include "log.h"
#include "macro.h"

#define CHAIN_FILE_MAX 65536
#define META_FILE_MAX 4096
#define CHAIN_CERTS_MAX 10

/* --- small helpers ----------------------------------------------------- */

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;

    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return timegm(&tm);
}

static void fmt_time(time_t t, char *buf, size_t n)
{
    struct tm tm;

    if (t == 0 || !gmtime_r(&t, &tm) ||
        strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "-");
}

static double random_unit(void)
{
    uint32_t r = 0;

    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        return 0.5;
    return (double)r / 4294967296.0;
}

static bool ec_group_is(EVP_PKEY *k, const char *want)
{
    char group[64];

    return EVP_PKEY_is_a(k, "EC") &&
           EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group),
                                          NULL) == 1 &&
           strcmp(group, want) == 0;
}

static bool key_is_type(EVP_PKEY *k, enum cfg_key_type t)
{
    switch (t) {
    case CFG_KEY_EC_P256:
        return ec_group_is(k, "prime256v1");
    case CFG_KEY_EC_P384:
        return ec_group_is(k, "secp384r1");
    case CFG_KEY_RSA_2048:
        return EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == 2048;
    case CFG_KEY_RSA_3072:
        return EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == 3072;
    case CFG_KEY_ED25519:
        return EVP_PKEY_is_a(k, "ED25519");
    case CFG_KEY_MAX:
        break;
    }
    return false;
}

static bool key_fits_config(EVP_PKEY *k, const struct cfg_identity *cfg)
{
    return key_is_type(k, cfg->key_type);
}

/* The key-type name of a key ("ec-p256", ...), or "other". */
static const char *key_type_name(EVP_PKEY *k)
{
    for (int t = 1; t < CFG_KEY_MAX; t++)
        if (key_is_type(k, (enum cfg_key_type)t))
            return cfg_key_type_str((enum cfg_key_type)t);
    return "other";
}

/* Called at start-up (before the sockets open) and by renewal workers,
 * never on the event loop: an RSA key takes from tens of milliseconds to
 * seconds to make. */
static EVP_PKEY *generate_key(const struct cfg_identity *cfg)
{
    switch (cfg->key_type) {
    case CFG_KEY_EC_P256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case CFG_KEY_EC_P384:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    case CFG_KEY_RSA_2048:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    case CFG_KEY_RSA_3072:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    case CFG_KEY_ED25519:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    case CFG_KEY_MAX:
        break;
    }
    return NULL;
}

/* What kind of TLS signer a key is (decides which inputs it may sign). */
static enum tls_key_kind key_kind(EVP_PKEY *k)
{
    if (EVP_PKEY_is_a(k, "RSA"))
        return TLS_KEY_RSA;
    if (EVP_PKEY_is_a(k, "ED25519"))
        return TLS_KEY_ED25519;
    return TLS_KEY_EC;
}

/* --- key generations --------------------------------------------------- */

static void keygen_free(struct keygen *g)
{
    EVP_PKEY_CTX_free(g->sign_ctx);
    EVP_PKEY_free(g->key);
    X509_free(g->leaf);
    sk_X509_pop_free(g->chain, X509_free);
    free(g->chain_pem);
    free(g->dir);
    free(g);
}

struct keygen *keygen_ref(struct keygen *g)
{
    if (g)
        atomic_fetch_add(&g->refs, 1);
    return g;
}

void keygen_unref(struct keygen *g)
{
    if (g && atomic_fetch_sub(&g->refs, 1) == 1)
        keygen_free(g);
}

static struct keygen *keygen_new(const char *identity_dir, const char *name,
                                 EVP_PKEY *k)
{
    struct keygen *g = calloc(1, sizeof(*g));
    struct keyref ref;

    if (!g)
        return NULL;
    atomic_init(&g->refs, 1);
    if (keyref_from_pkey(NULL, name, k, &ref) < 0) {
        free(g);
        return NULL;
    }
    memcpy(g->generation, ref.generation, IPC_GENERATION_LEN);
    keyref_generation_hex(ref.generation, 8, g->gen_hex);
    keyref_done(&ref);
    if (asprintf(&g->dir, "%s/gen-%s", identity_dir, g->gen_hex) < 0) {
        g->dir = NULL;
        free(g);
        return NULL;
    }
    g->key = k;
    g->kind = key_kind(k);
    return g;
}

/* --- meta.json --------------------------------------------------------- */

static int meta_write(const struct keygen *g)
{
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:b}",
                          "key_created", (json_int_t)g->key_created,
                          "issued_at", (json_int_t)g->issued_at,
                          "renewals", (json_int_t)g->renewals,
                          "requested_lifetime", (json_int_t)g->requested_lifetime,
                          "method", g->method,
                          "retired_at", (json_int_t)g->retired_at,
                          "grace_until", (json_int_t)g->grace_until,
                          "successor_confirmed", g->successor_confirmed);
    char path[PATH_MAX], *text;
    int r;

    if (!o)
        return -ENOMEM;
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!text)
        return -ENOMEM;
    snprintf(path, sizeof(path), "%s/meta.json", g->dir);
    r = file_write_atomic(path, text, strlen(text), (uid_t)-1, (gid_t)-1, 0600);
    free(text);
    return r;
}

static void meta_read(struct keygen *g)
{
    char path[PATH_MAX];
    _cleanup_free_ char *text = NULL;
    json_int_t kc = 0, ia = 0, rn = 0, rl = 0, ra = 0, gu = 0;
    const char *method = "";
    int conf = 0;
    json_error_t jerr;
    json_t *o;
    size_t len;
    struct stat st;

    snprintf(path, sizeof(path), "%s/meta.json", g->dir);
    if (file_read_all(path, META_FILE_MAX, &text, &len) < 0 ||
        !(o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr))) {
        /* No (usable) metadata: the key file's age stands in. */
        snprintf(path, sizeof(path), "%s/key.pem", g->dir);
        g->key_created = stat(path, &st) == 0 ? st.st_mtime : time(NULL);
        return;
    }
    (void)json_unpack(o, "{s?I, s?I, s?I, s?I, s?s, s?I, s?I, s?b}",
                      "key_created", &kc, "issued_at", &ia, "renewals", &rn,
                      "requested_lifetime", &rl, "method", &method,
                      "retired_at", &ra, "grace_until", &gu,
                      "successor_confirmed", &conf);
    g->key_created = (time_t)kc;
    g->issued_at = (time_t)ia;
    g->renewals = rn > 0 && rn < 1000000 ? (unsigned)rn : 0;
    g->requested_lifetime = rl;
    snprintf(g->method, sizeof(g->method), "%s", method);
    g->retired_at = (time_t)ra;
    g->grace_until = (time_t)gu;
    g->successor_confirmed = conf;
    json_decref(o);
}

/* --- certificates ------------------------------------------------------ */

static int parse_chain(const char *pem, size_t len, X509 **ret_leaf,
                       STACK_OF(X509) **ret_chain, char *err, size_t errlen)
{
    STACK_OF(X509) *sk;
    X509 *x, *leaf = NULL;
    BIO *b;

    if (len == 0 || len > CHAIN_FILE_MAX) {
        snprintf(err, errlen, "chain of %zu bytes is empty or too large", len);
        return -EBADMSG;
    }
    b = BIO_new_mem_buf(pem, (int)len);
    sk = sk_X509_new_null();
    if (!b || !sk) {
        BIO_free(b);
        sk_X509_free(sk);
        return -ENOMEM;
    }
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (!leaf) {
            leaf = x;
            continue;
        }
        if (sk_X509_num(sk) >= CHAIN_CERTS_MAX || !sk_X509_push(sk, x)) {
            X509_free(x);
            X509_free(leaf);
            sk_X509_pop_free(sk, X509_free);
            BIO_free(b);
            snprintf(err, errlen, "chain has more than %d certificates",
                     CHAIN_CERTS_MAX);
            return -EBADMSG;
        }
    }
    ERR_clear_error(); /* the loop ends with a "no start line" error */
    BIO_free(b);
    if (!leaf) {
        sk_X509_free(sk);
        snprintf(err, errlen, "no PEM certificate in the chain");
        return -EBADMSG;
    }
    *ret_leaf = leaf;
    *ret_chain = sk;
    return 0;
}

/* The leaf's subjectAltName must hold exactly the configured names. */
static bool names_match(X509 *leaf, const struct cfg_identity *cfg, char *err,
                        size_t errlen)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    int n = gens ? sk_GENERAL_NAME_num(gens) : 0, matched = 0;
    bool ok = true;

    for (int i = 0; i < n && ok; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        bool found = false;

        for (size_t j = 0; j < cfg->n_names && !found; j++) {
            const char *want = cfg->names[j];
            unsigned char ip[16];

            if (g->type == GEN_DNS && !cfg_name_is_ip(want)) {
                const ASN1_STRING *s = g->d.dNSName;

                found = (size_t)ASN1_STRING_length(s) == strlen(want) &&
                        OPENSSL_strncasecmp((const char *)ASN1_STRING_get0_data(s),
                                            want, strlen(want)) == 0;
            } else if (g->type == GEN_IPADD) {
                const ASN1_OCTET_STRING *s = g->d.iPAddress;
                int l = ASN1_STRING_length(s);

                if ((l == 4 && inet_pton(AF_INET, want, ip) == 1) ||
                    (l == 16 && inet_pton(AF_INET6, want, ip) == 1))
                    found = memcmp(ASN1_STRING_get0_data(s), ip, (size_t)l) == 0;
            }
        }
        if (found) {
            matched++;
        } else if (g->type == GEN_DNS || g->type == GEN_IPADD) {
            snprintf(err, errlen, "certificate names a host that is not configured");
            ok = false;
        }
    }
    if (ok && (size_t)matched != cfg->n_names) {
        snprintf(err, errlen,
                 "certificate covers %d of the %zu configured names", matched,
                 cfg->n_names);
        ok = false;
    }
    GENERAL_NAMES_free(gens);
    return ok;
}

/* The trust store of a ca-root file, loaded once and again only when the
 * file changes (every renewal verifies against it). */
static pthread_mutex_t roots_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *path;
    time_t mtime;
    off_t size;
    X509_STORE *store;
} roots[16];

static X509_STORE *root_store(const char *path)
{
    struct stat st;
    X509_STORE *store = NULL;
    size_t i, free_slot = ELEMENTSOF(roots);

    if (stat(path, &st) < 0)
        return NULL;
    pthread_mutex_lock(&roots_lock);
    for (i = 0; i < ELEMENTSOF(roots); i++) {
        if (!roots[i].path) {
            if (free_slot == ELEMENTSOF(roots))
                free_slot = i;
            continue;
        }
        if (strcmp(roots[i].path, path) != 0)
            continue;
        if (roots[i].mtime == st.st_mtime && roots[i].size == st.st_size &&
            X509_STORE_up_ref(roots[i].store)) {
            store = roots[i].store;
            goto out;
        }
        free_slot = i; /* changed: load it again */
        break;
    }
    store = X509_STORE_new();
    if (!store || X509_STORE_load_file(store, path) != 1) {
        X509_STORE_free(store);
        store = NULL;
        goto out;
    }
    if (free_slot < ELEMENTSOF(roots) && X509_STORE_up_ref(store)) {
        X509_STORE_free(roots[free_slot].store);
        free(roots[free_slot].path);
        roots[free_slot].path = strdup(path);
        roots[free_slot].mtime = st.st_mtime;
        roots[free_slot].size = st.st_size;
        roots[free_slot].store = store;
        if (!roots[free_slot].path) {
            X509_STORE_free(store); /* the cache's reference */
            roots[free_slot].store = NULL;
        }
    }
out:
    pthread_mutex_unlock(&roots_lock);
    return store;
}

/* Our key, chains to the configured root (at the current time, or at the
 * certificate's own notBefore when check_time is false: an expired
 * certificate can still be renewed with a token). */
static int verify_chain(X509 *leaf, STACK_OF(X509) *chain,
                        const struct cfg_identity *cfg, EVP_PKEY *key,
                        bool check_time, char *err, size_t errlen)
{
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    int r = -EBADMSG;

    if (EVP_PKEY_eq(X509_get0_pubkey(leaf), key) != 1) {
        snprintf(err, errlen, "certificate is not for this identity's key");
        goto out;
    }
    ctx = X509_STORE_CTX_new();
    if (!ctx) {
        r = -ENOMEM;
        goto out;
    }
    store = root_store(cfg->ca_root);
    if (!store) {
        snprintf(err, errlen, "cannot load ca-root %s", cfg->ca_root);
        r = -ENOENT;
        goto out;
    }
    if (X509_STORE_CTX_init(ctx, store, leaf, chain) != 1 ||
        X509_STORE_CTX_set_purpose(ctx, cfg->role == TLS_ROLE_CLIENT
                                            ? X509_PURPOSE_SSL_CLIENT
                                            : X509_PURPOSE_SSL_SERVER) != 1) {
        r = -ENOMEM;
        goto out;
    }
    if (!check_time)
        X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx),
                                    X509_V_FLAG_NO_CHECK_TIME);
    if (X509_verify_cert(ctx) != 1) {
        snprintf(err, errlen, "certificate does not verify to ca-root: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    r = 0;
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return r;
}

/* Clean PEM: no text, no blank lines (haproxy's runtime API ends a payload
 * at the first blank line). */
static int chain_to_pem(X509 *leaf, STACK_OF(X509) *chain, char **ret,
                        size_t *ret_len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long len;
    int r = -EIO;

    if (!b)
        return -ENOMEM;
    if (!PEM_write_bio_X509(b, leaf))
        goto out;
    for (int i = 0; i < sk_X509_num(chain); i++)
        if (!PEM_write_bio_X509(b, sk_X509_value(chain, i)))
            goto out;
    len = BIO_get_mem_data(b, &data);
    *ret = malloc((size_t)len + 1);
    if (!*ret) {
        r = -ENOMEM;
        goto out;
    }
    memcpy(*ret, data, (size_t)len);
    (*ret)[len] = '\0';
    *ret_len = (size_t)len;
    r = 0;
out:
    BIO_free(b);
    return r;
}

static bool leaf_client_auth(X509 *leaf)
{
    uint32_t xku = X509_get_extended_key_usage(leaf);

    return (xku & XKU_SSL_CLIENT) != 0; /* all bits set when absent */
}

/* Give generation g the certificate leaf/chain (takes them). */
static int keygen_set_cert(struct keygen *g, X509 *leaf, STACK_OF(X509) *chain)
{
    ASN1_INTEGER *sn = X509_get_serialNumber(leaf);
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL, *pem = NULL;
    size_t len = 0;
    int r = chain_to_pem(leaf, chain, &pem, &len);

    if (r < 0) {
        OPENSSL_free(hex);
        BN_free(bn);
        return r;
    }
    X509_free(g->leaf);
    sk_X509_pop_free(g->chain, X509_free);
    free(g->chain_pem);
    g->leaf = leaf;
    g->chain = chain;
    g->chain_pem = pem;
    g->chain_len = len;
    g->nb = asn1_to_time(X509_get0_notBefore(leaf));
    g->na = asn1_to_time(X509_get0_notAfter(leaf));
    g->client_auth = leaf_client_auth(leaf);
    snprintf(g->serial, sizeof(g->serial), "%s", hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
    return 0;
}

/* --- service files ----------------------------------------------------- */

static int reference_pem(const char *name, EVP_PKEY *k, char **ret,
                         size_t *ret_len)
{
    struct keyref ref;
    BIO *b;
    char *data;
    long len;
    int r = keyref_from_pkey(NULL, name, k, &ref);

    if (r < 0)
        return r;
    b = BIO_new(BIO_s_mem());
    if (!b) {
        keyref_done(&ref);
        return -ENOMEM;
    }
    r = keyref_write_pem(b, &ref);
    keyref_done(&ref);
    if (r == 0) {
        len = BIO_get_mem_data(b, &data);
        *ret = malloc((size_t)len + 1);
        if (*ret) {
            memcpy(*ret, data, (size_t)len);
            (*ret)[len] = '\0';
            *ret_len = (size_t)len;
        } else {
            r = -ENOMEM;
        }
    }
    BIO_free(b);
    return r;
}

int identity_reference_pem(const struct identity *id, const struct keygen *g,
                           char **ret, size_t *ret_len)
{
    return reference_pem(id->cfg->name, g->key, ret, ret_len);
}

/* Write the chain and the reference of g for services, as a pair, unless
 * they are already exactly in place.  Returns 1 if files were written. */
static int write_service_files(struct identity *id, struct keygen *g)
{
    const struct cfg_identity *cfg = id->cfg;
    _cleanup_free_ char *ref = NULL;
    size_t ref_len = 0;
    struct file_spec files[2];
    int r;

    r = reference_pem(cfg->name, g->key, &ref, &ref_len);
    if (r < 0)
        return r;
    if (file_is_same(cfg->chain.path, g->chain_pem, g->chain_len, cfg->chain.uid,
                     cfg->chain.gid, cfg->chain.mode) &&
        file_is_same(cfg->ref.path, ref, ref_len, cfg->ref.uid, cfg->ref.gid,
                     cfg->ref.mode))
        return 0;
    files[0] = (struct file_spec){ cfg->ref.path, ref, ref_len, cfg->ref.uid,
                                   cfg->ref.gid, cfg->ref.mode };
    files[1] = (struct file_spec){ cfg->chain.path, g->chain_pem, g->chain_len,
                                   cfg->chain.uid, cfg->chain.gid,
                                   cfg->chain.mode };
    r = dir_ensure_parents(cfg->ref.path);
    if (r == 0)
        r = dir_ensure_parents(cfg->chain.path);
    if (r == 0)
        r = file_write_set_atomic(files, 2);
    if (r < 0)
        return log_error_errno(r, "Identity '%s': cannot write %s and %s",
                               cfg->name, cfg->chain.path, cfg->ref.path);
    log_info("Identity '%s': wrote %s and %s (key generation %s, serial %s)",
             cfg->name, cfg->chain.path, cfg->ref.path, g->gen_hex, g->serial);
    return 1;
}

/* Note the outcome of writing the service files; a failure backs off like
 * enrollment does, and is retried without enrolling again. */
static void delivery_result(struct identity *id, int r)
{
    char eb[128];
    unsigned n;
    long wait_s;

    pthread_mutex_lock(&id->lock);
    if (r >= 0) {
        id->delivery_pending = false;
        id->delivery_failures = 0;
        pthread_mutex_unlock(&id->lock);
        return;
    }
    id->delivery_pending = true;
    atomic_fetch_add(&id->metrics.delivery_failures, 1);
    n = ++id->delivery_failures;
    wait_s = (long)sched_retry_delay(&id->policy, n, time(NULL), 0, 0, 0.5);
    id->next_delivery = time(NULL) + wait_s;
    snprintf(id->last_error, sizeof(id->last_error),
             "cannot write %s and %s: %s", id->cfg->chain.path,
             id->cfg->ref.path, strerror_r(-r, eb, sizeof(eb)));
    pthread_mutex_unlock(&id->lock);
    log_error("Identity '%s': the certificate is valid and kept, but the "
              "service files could not be written (attempt %u); retrying in "
              "%lds",
              id->cfg->name, n, wait_s);
}

/* --- generation directories -------------------------------------------- */

static int set_current_link(struct identity *id, const struct keygen *g)
{
    char tmp[PATH_MAX], link[PATH_MAX], target[32];
    int dfd;

    snprintf(target, sizeof(target), "gen-%s", g->gen_hex);
    snprintf(tmp, sizeof(tmp), "%s/.current.tmp", id->dir);
    snprintf(link, sizeof(link), "%s/current", id->dir);
    (void)unlink(tmp);
    if (symlink(target, tmp) < 0 || rename(tmp, link) < 0)
        return negerrno();
    dfd = open(id->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

static void remove_gen_dir(const char *dir)
{
    static const char *const files[] = { "key.pem", "chain.pem", "meta.json" };
    char path[PATH_MAX];

    for (size_t i = 0; i < ELEMENTSOF(files); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        (void)unlink(path);
    }
    if (rmdir(dir) < 0 && errno != ENOENT)
        log_warning_errno(negerrno(), "Cannot remove %s, ignoring", dir);
}

/* Load a generation directory: its key (required), chain and meta.  A
 * missing or unusable key file moves the directory aside (-EBADMSG). */
static int load_gen(struct identity *id, const char *dir, struct keygen **ret)
{
    static const char *const files[] = { "key.pem", "chain.pem", "meta.json" };
    char path[PATH_MAX], aside[PATH_MAX + 32], err[256] = "";
    _cleanup_free_ char *pem = NULL;
    size_t len = 0;
    EVP_PKEY *k = NULL;
    struct keygen *g;
    struct stat st;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    int r;

    /* Temporary files of writes a crash interrupted. */
    for (size_t i = 0; i < ELEMENTSOF(files); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        (void)file_cleanup_stale_tmp(path);
    }
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    /* Only root may ever read a key: repair looser permissions. */
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
        ((st.st_mode & 07777) != 0600 || st.st_uid != 0 || st.st_gid != 0)) {
        log_warning("Identity '%s': key file %s had owner %u:%u mode %04o; "
                    "setting root:root 0600",
                    id->cfg->name, path, (unsigned)st.st_uid,
                    (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777));
        if (chown(path, 0, 0) < 0 || chmod(path, 0600) < 0)
            return log_error_errno(negerrno(), "Identity '%s': cannot repair %s",
                                   id->cfg->name, path);
    }
    r = keyfile_read(path, &k);
    if (r < 0) {
        if (file_move_aside(dir, aside, sizeof(aside)) == 0)
            log_error("Identity '%s': key file %s is %s; moved %s aside to %s",
                      id->cfg->name, path,
                      r == -ENOENT ? "missing" : "unreadable", dir, aside);
        return -EBADMSG;
    }
    g = keygen_new(id->dir, id->cfg->name, k);
    if (!g) {
        EVP_PKEY_free(k);
        return -ENOMEM;
    }
    if (strcmp(g->dir, dir) != 0) {
        /* the directory does not hold the key its name says */
        keygen_unref(g);
        if (file_move_aside(dir, aside, sizeof(aside)) == 0)
            log_error("Identity '%s': %s holds a key of another generation; "
                      "moved it aside to %s",
                      id->cfg->name, dir, aside);
        return -EBADMSG;
    }
    meta_read(g);
    snprintf(path, sizeof(path), "%s/chain.pem", dir);
    r = file_read_all(path, CHAIN_FILE_MAX, &pem, &len);
    if (r == 0 && parse_chain(pem, len, &leaf, &chain, err, sizeof(err)) == 0) {
        if (EVP_PKEY_eq(X509_get0_pubkey(leaf), g->key) == 1 &&
            keygen_set_cert(g, leaf, chain) == 0) {
            leaf = NULL;
            chain = NULL;
        } else {
            log_warning("Identity '%s': %s is not for the key of %s; ignoring it",
                        id->cfg->name, path, dir);
        }
    }
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    *ret = g;
    return 0;
}

/* Earlier versions kept key.pem and chain.pem directly in the identity's
 * directory: move them into a generation directory. */
static void migrate_legacy(struct identity *id)
{
    char path[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
    EVP_PKEY *k = NULL;
    struct keygen *g;

    snprintf(path, sizeof(path), "%s/key.pem", id->dir);
    if (access(path, F_OK) < 0)
        return;
    if (keyfile_read(path, &k) < 0)
        return; /* left for the corrupt-file handling of a later start */
    g = keygen_new(id->dir, id->cfg->name, k);
    if (!g) {
        EVP_PKEY_free(k);
        return;
    }
    g->key_created = time(NULL);
    if (dir_ensure_private(g->dir, 0700) == 0) {
        snprintf(to, sizeof(to), "%s/key.pem", g->dir);
        if (rename(path, to) == 0) {
            snprintf(from, sizeof(from), "%s/chain.pem", id->dir);
            snprintf(to, sizeof(to), "%s/chain.pem", g->dir);
            (void)rename(from, to);
            (void)meta_write(g);
            (void)set_current_link(id, g);
            log_notice("Identity '%s': moved its key into %s", id->cfg->name,
                       g->dir);
        }
    }
    keygen_unref(g);
}

/* Create a generation for a fresh key (pending until a certificate for it
 * is accepted). */
static struct keygen *create_gen(struct identity *id, char *err, size_t errlen)
{
    EVP_PKEY *k = generate_key(id->cfg);
    struct keygen *g;
    char path[PATH_MAX];
    int r;

    if (!k) {
        snprintf(err, errlen, "key generation failed");
        return NULL;
    }
    g = keygen_new(id->dir, id->cfg->name, k);
    if (!g) {
        EVP_PKEY_free(k);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->key_created = time(NULL);
    snprintf(path, sizeof(path), "%s/key.pem", g->dir);
    r = dir_ensure_private(g->dir, 0700);
    if (r == 0)
        r = keyfile_write(path, k);
    if (r == 0)
        r = meta_write(g);
    if (r < 0) {
        char eb[128];

        snprintf(err, errlen, "cannot store a new key in %s: %s", g->dir,
                 strerror_r(-r, eb, sizeof(eb)));
        keygen_unref(g);
        return NULL;
    }
    log_notice("Identity '%s': generated a new %s key (generation %s)",
               id->cfg->name, cfg_key_type_str(id->cfg->key_type), g->gen_hex);
    return g;
}

static bool old_usable(const struct keygen *g, time_t now)
{
    return g->leaf && now < g->na &&
           (now < g->grace_until || !g->successor_confirmed);
}

/* Schedule the next renewal of the current certificate (lock held). */
static void schedule_locked(struct identity *id)
{
    struct keygen *g = id->cur;

    if (g && g->leaf)
        id->renew_at = sched_renew_at(&id->policy, g->nb, g->na, random_unit());
    else
        id->renew_at = 0;
}

/* --- init --------------------------------------------------------------- */

int identity_init(struct identity *id, const struct cfg_identity *cfg,
                  const char *state_dir)
{
    char path[PATH_MAX], cur_name[64] = "", err[256] = "";
    struct keygen *cur = NULL;
    time_t now = time(NULL);
    DIR *d;
    struct dirent *de;
    ssize_t n;
    int r;

    *id = (struct identity){ .cfg = cfg };
    id->policy = (struct sched_policy){
        .renew_at_pm = cfg->renew_at_pm,
        .renew_jitter_pm = cfg->renew_jitter_pm,
        .retry_floor_s = cfg->retry_floor_s,
        .retry_max_s = cfg->retry_max_s,
    };
    pthread_mutex_init(&id->lock, NULL);
    snprintf(path, sizeof(path), "%s/identities", state_dir);
    r = dir_ensure_private(path, 0700);
    if (r < 0)
        return log_error_errno(r, "Cannot use state directory %s", path);
    if (asprintf(&id->dir, "%s/identities/%s", state_dir, cfg->name) < 0) {
        id->dir = NULL;
        return -ENOMEM;
    }
    r = dir_ensure_private(id->dir, 0700);
    if (r < 0)
        return log_error_errno(r, "Cannot use state directory %s", id->dir);
    migrate_legacy(id);
    {
        int stale = file_cleanup_stale_tmp(cfg->chain.path) +
                    file_cleanup_stale_tmp(cfg->ref.path);

        if (stale > 0)
            log_notice("Identity '%s': removed %d temporary file%s of an "
                       "interrupted write",
                       cfg->name, stale, stale == 1 ? "" : "s");
    }

    snprintf(path, sizeof(path), "%s/current", id->dir);
    n = readlink(path, cur_name, sizeof(cur_name) - 1);
    if (n > 0) {
        cur_name[n] = '\0';
        snprintf(path, sizeof(path), "%s/%s", id->dir, cur_name);
        if (strncmp(cur_name, "gen-", 4) != 0 || strchr(cur_name, '/') ||
            load_gen(id, path, &cur) < 0) {
            cur = NULL;
            cur_name[0] = '\0';
        }
    }

    /* The other generations: retired ones still in their window come back;
     * one with a certificate newer than the current one is a rotation that
     * was interrupted after its chain was stored: finish it; the rest
     * (pending keys that never got a certificate, windows closed) go. */
    d = opendir(id->dir);
    while (d && (de = readdir(d)) != NULL) {
        struct keygen *g = NULL;

        if (strncmp(de->d_name, "gen-", 4) != 0 || strchr(de->d_name, '.') ||
            strcmp(de->d_name, cur_name) == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", id->dir, de->d_name);
        if (load_gen(id, path, &g) < 0)
            continue;
        if (g->retired_at && old_usable(g, now) && id->n_old < IDENTITY_OLD_MAX) {
            id->old[id->n_old++] = g;
            log_info("Identity '%s': retired key generation %s stays usable "
                     "until its grace ends",
                     cfg->name, g->gen_hex);
            continue;
        }
        if (!g->retired_at && g->leaf && now < g->na &&
            verify_chain(g->leaf, g->chain, cfg, g->key, true, err,
                         sizeof(err)) == 0 &&
            (!cur || !cur->leaf || g->na > cur->na)) {
            log_notice("Identity '%s': completing the switch to key "
                       "generation %s, interrupted before",
                       cfg->name, g->gen_hex);
            if (cur) {
                cur->retired_at = now;
                cur->grace_until = now + cfg->rotate_grace_s;
                (void)meta_write(cur);
                if (id->n_old < IDENTITY_OLD_MAX && old_usable(cur, now))
                    id->old[id->n_old++] = cur;
                else
                    keygen_unref(cur);
            }
            cur = g;
            (void)set_current_link(id, cur);
            continue;
        }
        log_info("Identity '%s': removing %s key generation %s", cfg->name,
                 g->retired_at ? "expired retired" : "unused pending",
                 g->gen_hex);
        remove_gen_dir(g->dir);
        keygen_unref(g);
    }
    if (d)
        closedir(d);

    if (!cur) {
        cur = create_gen(id, err, sizeof(err));
        if (!cur)
            return log_error_errno(-EIO, "Identity '%s': %s", cfg->name, err);
        (void)set_current_link(id, cur);
    } else {
        log_info("Identity '%s': using its stored key (generation %s)",
                 cfg->name, cur->gen_hex);
    }
    if (!key_fits_config(cur->key, cfg))
        log_notice("Identity '%s': the stored key is not of the configured "
                   "key-type; it will be replaced at the next enrollment",
                   cfg->name);

    pthread_mutex_lock(&id->lock);
    id->cur = cur;
    if (cur->leaf) {
        err[0] = '\0';
        r = verify_chain(cur->leaf, cur->chain, cfg, cur->key, false, err,
                         sizeof(err));
        if (r < 0) {
            log_notice("Identity '%s': stored certificate not adopted (%s); "
                       "will enroll",
                       cfg->name, err);
            X509_free(cur->leaf);
            cur->leaf = NULL;
        }
    }
    schedule_locked(id);
    pthread_mutex_unlock(&id->lock);

    if (cur->leaf) {
        char na[32], at[32];

        fmt_time(cur->na, na, sizeof(na));
        fmt_time(id->renew_at, at, sizeof(at));
        log_info("Identity '%s': adopted stored certificate, serial %s, not "
                 "after %s%s; renewal due %s",
                 cfg->name, cur->serial, na, now >= cur->na ? " (expired)" : "",
                 at);
        if (now < cur->na && verify_chain(cur->leaf, cur->chain, cfg, cur->key,
                                          true, err, sizeof(err)) == 0)
            delivery_result(id, write_service_files(id, cur));
    }
    return 0;
}

void identity_done(struct identity *id)
{
    keygen_unref(id->cur);
    for (size_t i = 0; i < id->n_old; i++)
        keygen_unref(id->old[i]);
    free(id->dir);
    free(id->targets);
    pthread_mutex_destroy(&id->lock);
    *id = (struct identity){ 0 };
}

void identity_reconfigure(struct identity *id, const struct cfg_identity *cfg)
{
    struct keygen *g;

    pthread_mutex_lock(&id->lock);
    if (id->cfg->n_targets != cfg->n_targets) {
        free(id->targets); /* reallocated for the new list on first use */
        id->targets = NULL;
    }
    id->cfg = cfg;
    id->policy = (struct sched_policy){
        .renew_at_pm = cfg->renew_at_pm,
        .renew_jitter_pm = cfg->renew_jitter_pm,
        .retry_floor_s = cfg->retry_floor_s,
        .retry_max_s = cfg->retry_max_s,
    };
    schedule_locked(id);
    g = keygen_ref(id->cur);
    pthread_mutex_unlock(&id->lock);
    if (g && g->leaf && time(NULL) < g->na)
        delivery_result(id, write_service_files(id, g));
    keygen_unref(g);
}

struct keygen *identity_current(struct identity *id)
{
    struct keygen *g;

    pthread_mutex_lock(&id->lock);
    g = keygen_ref(id->cur);
    pthread_mutex_unlock(&id->lock);
    return g;
}

struct keygen *identity_new_keygen(struct identity *id, char *err, size_t errlen)
{
    return create_gen(id, err, errlen);
}

void identity_discard_keygen(struct identity *id, struct keygen *g)
{
    bool used;

    pthread_mutex_lock(&id->lock);
    used = g == id->cur;
    for (size_t i = 0; i < id->n_old; i++)
        used = used || g == id->old[i];
    pthread_mutex_unlock(&id->lock);
    if (!used)
        remove_gen_dir(g->dir);
}

bool identity_key_type_changed(const struct identity *id, const struct keygen *g)
{
    return !key_fits_config(g->key, id->cfg);
}

bool identity_config_changed(const struct identity *id, const struct keygen *g)
{
    char err[128];

    if (!g->leaf)
        return false;
    return !names_match(g->leaf, id->cfg, err, sizeof(err)) ||
           g->requested_lifetime != id->cfg->lifetime_s;
}

/* --- accepting a new certificate --------------------------------------- */

int identity_accept_chain(struct identity *id, struct keygen *g,
                          const char *pem, size_t len, const char *method,
                          int64_t requested_lifetime, char *err, size_t errlen)
{
    const struct cfg_identity *cfg = id->cfg;
    char path[PATH_MAX], na[32], at[32];
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    struct keygen *prev;
    time_t now = time(NULL), cur_na = 0, new_na;
    bool switching, had_cert;
    int r;

    r = parse_chain(pem, len, &leaf, &chain, err, errlen);
    if (r == 0)
        r = verify_chain(leaf, chain, cfg, g->key, true, err, errlen);
    if (r == 0 && !names_match(leaf, cfg, err, errlen))
        r = -EBADMSG;
    if (r < 0)
        goto fail;
    new_na = asn1_to_time(X509_get0_notAfter(leaf));
    pthread_mutex_lock(&id->lock);
    prev = keygen_ref(id->cur);
    pthread_mutex_unlock(&id->lock);
    switching = prev != g;
    had_cert = prev && prev->leaf;
    if (had_cert)
        cur_na = prev->na;
    /* Never replace a certificate by one that dies sooner. */
    if (cur_na && new_na <= cur_na) {
        snprintf(err, errlen, "the new certificate does not outlive the current one");
        keygen_unref(prev);
        r = -EBADMSG;
        goto fail;
    }
    /* Stored before anything points at it: a crash after this line leaves
     * a generation with a chain that the next start adopts. */
    {
        _cleanup_free_ char *clean = NULL;
        size_t clean_len = 0;

        r = chain_to_pem(leaf, chain, &clean, &clean_len);
        if (r == 0) {
            snprintf(path, sizeof(path), "%s/chain.pem", g->dir);
            r = file_write_atomic(path, clean, clean_len, (uid_t)-1, (gid_t)-1,
                                  0600);
        }
        if (r < 0) {
            snprintf(err, errlen, "cannot store the chain in %s", g->dir);
            keygen_unref(prev);
            goto fail;
        }
    }
    pthread_mutex_lock(&id->lock);
    if (keygen_set_cert(g, leaf, chain) < 0) {
        pthread_mutex_unlock(&id->lock);
        snprintf(err, errlen, "out of memory");
        keygen_unref(prev);
        r = -ENOMEM;
        goto fail;
    }
    leaf = NULL;
    chain = NULL;
    /* Not delivered until the service files are written below: status
     * (shortcertctl wait) must not say so in between. */
    id->delivery_pending = true;
    if (!switching && had_cert)
        g->renewals++;
    g->issued_at = now;
    g->requested_lifetime = requested_lifetime;
    snprintf(g->method, sizeof(g->method), "%s", method);
    pthread_mutex_unlock(&id->lock);
    (void)meta_write(g);

    if (switching) {
        r = set_current_link(id, g);
        if (r < 0) {
            snprintf(err, errlen, "cannot switch %s/current", id->dir);
            keygen_unref(prev);
            goto fail;
        }
        pthread_mutex_lock(&id->lock);
        id->cur = keygen_ref(g);
        if (prev) {
            if (prev->leaf && now < prev->na) {
                /* Retired but still usable: services that loaded its
                 * reference keep working until the grace is over and the
                 * new certificate is confirmed served. */
                prev->retired_at = now;
                prev->grace_until = now + cfg->rotate_grace_s;
                prev->successor_confirmed = false;
                if (id->n_old == IDENTITY_OLD_MAX) {
                    remove_gen_dir(id->old[0]->dir);
                    keygen_unref(id->old[0]);
                    memmove(id->old, id->old + 1,
                            (IDENTITY_OLD_MAX - 1) * sizeof(id->old[0]));
                    id->n_old--;
                }
                id->old[id->n_old++] = keygen_ref(prev);
            } else {
                prev->retired_at = now;
            }
            keygen_unref(prev); /* id->cur's former reference */
        }
        pthread_mutex_unlock(&id->lock);
        if (prev) {
            (void)meta_write(prev);
            if (!(prev->leaf && now < prev->na))
                remove_gen_dir(prev->dir);
        }
    }
    pthread_mutex_lock(&id->lock);
    schedule_locked(id);
    id->failures = 0;
    id->retry_at = 0;
    id->last_success = now;
    id->last_error[0] = '\0';
    snprintf(id->last_method, sizeof(id->last_method), "%s", method);
    fmt_time(g->na, na, sizeof(na));
    fmt_time(id->renew_at, at, sizeof(at));
    pthread_mutex_unlock(&id->lock);
    log_notice("AUDIT %s identity=%s serial=%s not_after=%s method=%s "
               "key_generation=%s%s; next renewal %s",
               !had_cert ? "issued" : switching ? "rekeyed" : "renewed",
               cfg->name, g->serial, na, method, g->gen_hex,
               switching && had_cert ? " (new key)" : "", at);
    keygen_unref(prev);
    /* The certificate is good and stays; a failure to write the service
     * files is retried on its own. */
    delivery_result(id, write_service_files(id, g));
    return 0;
fail:
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    return r;
}

int identity_deliver(struct identity *id)
{
    struct keygen *g = identity_current(id);
    int r = g && g->leaf ? write_service_files(id, g) : -ENOKEY;

    delivery_result(id, r);
    keygen_unref(g);
    return r < 0 ? r : 0;
}

void identity_confirm_served(struct identity *id)
{
    struct keygen *changed[IDENTITY_OLD_MAX];
    size_t n = 0;

    pthread_mutex_lock(&id->lock);
    for (size_t i = 0; i < id->n_old; i++)
        if (!id->old[i]->successor_confirmed) {
            id->old[i]->successor_confirmed = true;
            changed[n++] = keygen_ref(id->old[i]);
        }
    pthread_mutex_unlock(&id->lock);
    for (size_t i = 0; i < n; i++) {
        (void)meta_write(changed[i]);
        keygen_unref(changed[i]);
    }
}

time_t identity_expire_old(struct identity *id, time_t now)
{
    struct keygen *gone[IDENTITY_OLD_MAX];
    size_t n_gone = 0, keep = 0;
    time_t next = 0;

    pthread_mutex_lock(&id->lock);
    for (size_t i = 0; i < id->n_old; i++) {
        struct keygen *g = id->old[i];

        if (old_usable(g, now)) {
            time_t end = g->successor_confirmed && g->grace_until < g->na
                             ? g->grace_until
                             : g->na;

            if (!next || end < next)
                next = end;
            id->old[keep++] = g;
        } else {
            gone[n_gone++] = g;
        }
    }
    id->n_old = keep;
    pthread_mutex_unlock(&id->lock);
    for (size_t i = 0; i < n_gone; i++) {
        log_notice("AUDIT retired identity=%s key_generation=%s: no longer "
                   "usable for signing; its key is removed",
                   id->cfg->name, gone[i]->gen_hex);
        remove_gen_dir(gone[i]->dir);
        keygen_unref(gone[i]);
    }
    return next;
}

/* --- signing ----------------------------------------------------------- */

/* Digests fetched once: a fetch by name on every signature costs more than
 * the hashing. */
static EVP_MD *md_sha[3];
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_init(void)
{
    md_sha[0] = EVP_MD_fetch(NULL, "SHA256", NULL);
    md_sha[1] = EVP_MD_fetch(NULL, "SHA384", NULL);
    md_sha[2] = EVP_MD_fetch(NULL, "SHA512", NULL);
}

/* How a scheme of docs/PROTOCOL.md signs: the key kind it needs, the
 * digest (none: pure EdDSA) and the RSA padding (0: not RSA). */
struct sign_how {
    enum tls_key_kind kind;
    int md; /* index into md_sha, -1 for none */
    int pad;
};

static bool scheme_how(uint32_t scheme, struct sign_how *ret)
{
    static const struct sign_how how[IPC_SCHEME_MAX] = {
        [IPC_SCHEME_ECDSA_SHA256] = { TLS_KEY_EC, 0, 0 },
        [IPC_SCHEME_ECDSA_SHA384] = { TLS_KEY_EC, 1, 0 },
        [IPC_SCHEME_ECDSA_SHA512] = { TLS_KEY_EC, 2, 0 },
        [IPC_SCHEME_RSA_PKCS1_SHA256] = { TLS_KEY_RSA, 0, RSA_PKCS1_PADDING },
        [IPC_SCHEME_RSA_PKCS1_SHA384] = { TLS_KEY_RSA, 1, RSA_PKCS1_PADDING },
        [IPC_SCHEME_RSA_PKCS1_SHA512] = { TLS_KEY_RSA, 2, RSA_PKCS1_PADDING },
        [IPC_SCHEME_RSA_PSS_SHA256] = { TLS_KEY_RSA, 0, RSA_PKCS1_PSS_PADDING },
        [IPC_SCHEME_RSA_PSS_SHA384] = { TLS_KEY_RSA, 1, RSA_PKCS1_PSS_PADDING },
        [IPC_SCHEME_RSA_PSS_SHA512] = { TLS_KEY_RSA, 2, RSA_PKCS1_PSS_PADDING },
        [IPC_SCHEME_ED25519] = { TLS_KEY_ED25519, -1, 0 },
    };

    if (scheme == 0 || scheme >= IPC_SCHEME_MAX)
        return false;
    *ret = how[scheme];
    return true;
}

/* A signature by g's key over the digest of msg (EC, RSA), or over msg
 * itself (Ed25519: pure EdDSA has no pre-hash).  The digest is always made
 * here from the message, never taken from the peer. */
static int sign_with(struct keygen *g, const struct sign_how *how,
                     const uint8_t *msg, size_t len, uint8_t *sig,
                     size_t *siglen)
{
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    const EVP_MD *md;
    int r = -EIO;

    if (how->kind == TLS_KEY_ED25519) {
        EVP_MD_CTX *m = EVP_MD_CTX_new();

        if (m && EVP_DigestSignInit_ex(m, NULL, NULL, NULL, NULL, g->key,
                                       NULL) == 1 &&
            EVP_DigestSign(m, sig, siglen, msg, len) == 1)
            r = 0;
        else
            log_openssl_errors("sign");
        EVP_MD_CTX_free(m);
        return r;
    }
    (void)pthread_once(&md_once, md_init);
    md = md_sha[how->md];
    if (!md)
        return -EIO;
    /* A signing context per generation, kept between requests (only the
     * event loop signs, so it needs no lock): initialising one per
     * signature was a third of the cost of a P-256 signature. */
    if (!g->sign_ctx) {
        g->sign_ctx = EVP_PKEY_CTX_new_from_pkey(NULL, g->key, NULL);
        if (!g->sign_ctx || EVP_PKEY_sign_init(g->sign_ctx) != 1) {
            EVP_PKEY_CTX_free(g->sign_ctx);
            g->sign_ctx = NULL;
            log_openssl_errors("sign init");
            return -EIO;
        }
    }
    /* RSA: the padding and digest of this request (the context is reused,
     * so every request sets all of them).  PSS as TLS wants it: salt as
     * long as the hash, MGF1 with the same hash. */
    if (how->pad &&
        (EVP_PKEY_CTX_set_rsa_padding(g->sign_ctx, how->pad) != 1 ||
         EVP_PKEY_CTX_set_signature_md(g->sign_ctx, md) != 1 ||
         (how->pad == RSA_PKCS1_PSS_PADDING &&
          (EVP_PKEY_CTX_set_rsa_pss_saltlen(g->sign_ctx,
                                            RSA_PSS_SALTLEN_DIGEST) != 1 ||
           EVP_PKEY_CTX_set_rsa_mgf1_md(g->sign_ctx, md) != 1)))) {
        log_openssl_errors("sign parameters");
        return -EIO;
    }
    if (EVP_Digest(msg, len, dgst, &dlen, md, NULL) == 1 &&
        EVP_PKEY_sign(g->sign_ctx, sig, siglen, dgst, dlen) == 1)
        r = 0;
    else
        log_openssl_errors("sign");
    OPENSSL_cleanse(dgst, sizeof(dgst));
    return r;
}

/* The generation gen if it may sign now (lock held); *ret_retired says
 * whether it is a retired one. */
static struct keygen *usable_gen_locked(struct identity *id,
                                        const uint8_t gen[IPC_GENERATION_LEN],
                                        time_t now, bool *ret_retired)
{
    *ret_retired = false;
    if (id->cur && CRYPTO_memcmp(gen, id->cur->generation, IPC_GENERATION_LEN) == 0)
        return id->cur;
    for (size_t i = 0; i < id->n_old; i++)
        if (CRYPTO_memcmp(gen, id->old[i]->generation, IPC_GENERATION_LEN) == 0 &&
            old_usable(id->old[i], now)) {
            *ret_retired = true;
            return id->old[i];
        }
    return NULL;
}

enum tls_key_kind identity_key_kind(struct identity *id,
                                    const uint8_t gen[IPC_GENERATION_LEN])
{
    enum tls_key_kind kind;
    struct keygen *g;
    bool retired;

    pthread_mutex_lock(&id->lock);
    g = usable_gen_locked(id, gen, time(NULL), &retired);
    kind = g ? g->kind : id->cur ? id->cur->kind : TLS_KEY_EC;
    pthread_mutex_unlock(&id->lock);
    return kind;
}

int identity_sign(struct identity *id, const uint8_t gen[IPC_GENERATION_LEN],
                  uint32_t scheme, const uint8_t *msg, size_t len, uint8_t *sig,
                  size_t *siglen, bool *ret_retired)
{
    struct sign_how how;
    struct keygen *g;
    bool retired = false;
    int r;

    pthread_mutex_lock(&id->lock);
    g = keygen_ref(usable_gen_locked(id, gen, time(NULL), &retired));
    pthread_mutex_unlock(&id->lock);
    *ret_retired = retired;
    if (!g)
        return id->cur ? -ESTALE : -ENOKEY;
    /* The scheme must be one this key's kind makes (RSA: either padding,
     * any of the three hashes; EC: ECDSA with any of them, whatever the
     * curve, as TLS 1.2 allows; Ed25519: only itself). */
    if (!scheme_how(scheme, &how) || how.kind != g->kind) {
        keygen_unref(g);
        return -EINVAL;
    }
    r = sign_with(g, &how, msg, len, sig, siglen);
    keygen_unref(g);
    return r;
}

/* --- status ------------------------------------------------------------ */

json_t *identity_status(struct identity *id)
{
    const struct cfg_identity *cfg = id->cfg;
    json_t *o = json_object(), *names = json_array(), *sigs, *old = json_array();
    char buf[32];
    time_t now = time(NULL);
    struct keygen *g;

    for (size_t i = 0; i < cfg->n_names; i++)
        json_array_append_new(names, json_string(cfg->names[i]));
    json_object_set_new(o, "name", json_string(cfg->name));
    if (id->removed_at) {
        json_object_set_new(o, "removed", json_integer((json_int_t)id->removed_at));
        json_object_set_new(o, "last_signed",
                            json_integer((json_int_t)atomic_load(&id->last_signed)));
    }
    json_object_set_new(o, "role", json_string(cfg->role == TLS_ROLE_CLIENT
                                                   ? "client" : "server"));
    json_object_set_new(o, "names", names);
    pthread_mutex_lock(&id->lock);
    g = id->cur;
    json_object_set_new(o, "key_generation", json_string(g ? g->gen_hex : ""));
    /* the held key's type; the configured one too while they differ (a
     * key of the new type comes with the next enrollment) */
    json_object_set_new(o, "key_type", json_string(g ? key_type_name(g->key) : ""));
    if (g && !key_fits_config(g->key, cfg))
        json_object_set_new(o, "configured_key_type",
                            json_string(cfg_key_type_str(cfg->key_type)));
    json_object_set_new(o, "state",
                        json_string(!g || !g->leaf ? "no-certificate"
                                    : g->na <= now ? "expired"
                                                   : "valid"));
    if (g && g->leaf) {
        json_object_set_new(o, "serial", json_string(g->serial));
        fmt_time(g->nb, buf, sizeof(buf));
        json_object_set_new(o, "not_before", json_string(buf));
        fmt_time(g->na, buf, sizeof(buf));
        json_object_set_new(o, "not_after", json_string(buf));
        json_object_set_new(o, "seconds_remaining",
                            json_integer((json_int_t)(g->na - now)));
        json_object_set_new(o, "method", json_string(g->method));
        json_object_set_new(o, "renewals_with_key", json_integer(g->renewals));
    }
    if (g) {
        fmt_time(g->key_created, buf, sizeof(buf));
        json_object_set_new(o, "key_created", json_string(buf));
    }
    fmt_time(id->failures ? id->retry_at : id->renew_at, buf, sizeof(buf));
    json_object_set_new(o, "next_renewal", json_string(buf));
    json_object_set_new(o, "renewal_in_flight", json_boolean(id->in_flight));
    fmt_time(id->last_success, buf, sizeof(buf));
    json_object_set_new(o, "last_success", json_string(buf));
    json_object_set_new(o, "consecutive_failures", json_integer(id->failures));
    if (id->last_error[0])
        json_object_set_new(o, "last_error", json_string(id->last_error));
    json_object_set_new(o, "delivered", json_boolean(g && g->leaf &&
                                                     !id->delivery_pending));
    json_object_set_new(o, "served", json_string(id->verify_state > 0 ? "yes"
                                                 : id->verify_state < 0 ? "no"
                                                                        : "unchecked"));
    for (size_t i = 0; i < id->n_old; i++) {
        fmt_time(id->old[i]->successor_confirmed ? id->old[i]->grace_until
                                                 : id->old[i]->na,
                 buf, sizeof(buf));
        json_array_append_new(old, json_pack("{s:s, s:s}", "key_generation",
                                             id->old[i]->gen_hex, "usable_until",
                                             buf));
    }
    pthread_mutex_unlock(&id->lock);
    json_object_set_new(o, "retired_generations", old);
    if (cfg->n_targets)
        json_object_set_new(o, "targets", targets_status_json(id));
    json_object_set_new(o, "chain_file", json_string(cfg->chain.path));
    json_object_set_new(o, "ref_file", json_string(cfg->ref.path));
    sigs = json_pack("{s:I, s:I, s:I, s:I}", "ok",
                     (json_int_t)atomic_load(&id->signs_ok), "denied",
                     (json_int_t)atomic_load(&id->signs_denied), "refused",
                     (json_int_t)atomic_load(&id->signs_refused), "failed",
                     (json_int_t)atomic_load(&id->signs_failed));
    json_object_set_new(o, "signatures", sigs);
    json_object_set_new(o, "renewals",
                        json_pack("{s:I, s:I}", "ok",
                                  (json_int_t)atomic_load(&id->renewals_ok),
                                  "failed",
                                  (json_int_t)atomic_load(&id->renewals_failed)));
    return o;
}

size_t identity_metrics_view(struct identity *id, struct metrics_id_view *v,
                             struct metrics_endpoint_view *eps, size_t max_eps)
{
    const struct cfg_identity *cfg = id->cfg;
    size_t n = 0;
    bool delivered = true;

    *v = (struct metrics_id_view){ .name = cfg->name,
                                   .counters = &id->metrics,
                                   .delivery_ok = -1,
                                   .endpoints = eps };
    pthread_mutex_lock(&id->lock);
    if (id->cur && id->cur->leaf) {
        struct keygen *g = id->cur;

        v->have_cert = true;
        v->not_before = g->nb;
        v->not_after = g->na;
        v->renewal_interval_s =
            (int64_t)(g->na - g->nb) * (int64_t)id->policy.renew_at_pm / 1000;
    }
    if (id->cur)
        v->key_created = id->cur->key_created;
    v->next_renewal = id->failures && id->retry_at ? id->retry_at : id->renew_at;
    v->last_success = id->last_success;
    v->consecutive_failures = id->failures;
    /* the identity's own endpoints share its last check */
    for (size_t i = 0; id->verify_state != 0 && i < cfg->n_verify_endpoints &&
                       n < max_eps;
         i++)
        eps[n++] = (struct metrics_endpoint_view){
            .endpoint = cfg->verify_endpoints[i],
            .serving_current = id->verify_state == 1,
            .verify_failures = atomic_load(&id->metrics.verify_failures),
        };
    if (id->verify_state == -1)
        delivered = false;
    /* each [target]'s endpoints share the target's last result */
    for (size_t t = 0; id->targets && t < cfg->n_targets; t++) {
        const struct target_state *st = &id->targets[t];
        bool served = strcmp(st->result, "served") == 0;

        if (!st->result[0])
            continue;
        if (!served && strcmp(st->result, "not-running") != 0)
            delivered = false;
        for (size_t j = 0; j < cfg->targets[t].n_verify && n < max_eps; j++)
            eps[n++] = (struct metrics_endpoint_view){
                .endpoint = cfg->targets[t].verify[j].text,
                .serving_current = served,
                .verify_failures = st->verify_failures,
            };
    }
    if (v->have_cert)
        v->delivery_ok = delivered && !id->delivery_pending;
    pthread_mutex_unlock(&id->lock);
    v->n_endpoints = n;
    return n;
}
