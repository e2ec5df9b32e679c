/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Identity state: key custody, certificate adoption and validation, the
 * files written for services, and signing (see identity.h).
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "enroll.h"
#include "fileio.h"
#include "identity.h"
#include "keyfile.h"
#include "keyref.h"
#include "log.h"
#include "macro.h"

#define CHAIN_FILE_MAX 65536
#define CHAIN_CERTS_MAX 10

static void set_error(struct identity *id, const char *msg)
{
    pthread_mutex_lock(&id->lock);
    snprintf(id->last_error, sizeof(id->last_error), "%s", msg);
    pthread_mutex_unlock(&id->lock);
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;

    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return timegm(&tm);
}

static bool key_fits_config(EVP_PKEY *k, const struct cfg_identity *cfg)
{
    char group[64];

    switch (cfg->key_type) {
    case CFG_KEY_EC_P256:
        return EVP_PKEY_is_a(k, "EC") &&
               EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group),
                                              NULL) == 1 &&
               strcmp(group, "prime256v1") == 0;
    }
    return false;
}

static EVP_PKEY *generate_key(const struct cfg_identity *cfg)
{
    switch (cfg->key_type) {
    case CFG_KEY_EC_P256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    }
    return NULL;
}

/* -ENOENT if there is no key file, -EBADMSG if it is not a usable key,
 * -EKEYREJECTED if it is not of the configured type. */
static int read_key(const char *path, const struct cfg_identity *cfg,
                    EVP_PKEY **ret)
{
    EVP_PKEY *k = NULL;
    int r = keyfile_read(path, &k);

    if (r < 0)
        return r;
    if (!key_fits_config(k, cfg)) {
        EVP_PKEY_free(k);
        return -EKEYREJECTED;
    }
    *ret = k;
    return 0;
}

static int set_key(struct identity *id, EVP_PKEY *k)
{
    struct keyref ref;
    int r = keyref_from_pkey(NULL, id->cfg->name, k, &ref);

    if (r < 0)
        return r;
    pthread_mutex_lock(&id->lock);
    EVP_PKEY_free(id->key);
    id->key = k;
    memcpy(id->generation, ref.generation, IPC_GENERATION_LEN);
    keyref_generation_hex(ref.generation, 8, id->gen_hex);
    pthread_mutex_unlock(&id->lock);
    keyref_done(&ref);
    return 0;
}

static int load_or_create_key(struct identity *id)
{
    char path[PATH_MAX], aside[PATH_MAX + 32];
    EVP_PKEY *k = NULL;
    int r;

    snprintf(path, sizeof(path), "%s/key.pem", id->dir);
    {
        struct stat st;

        /* Only root may ever read a key: repair looser permissions. */
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            ((st.st_mode & 07777) != 0600 || st.st_uid != 0 || st.st_gid != 0)) {
            log_warning("Identity '%s': key file %s had owner %u:%u mode %04o; "
                        "setting root:root 0600",
                        id->cfg->name, path, (unsigned)st.st_uid,
                        (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777));
            if (chown(path, 0, 0) < 0 || chmod(path, 0600) < 0)
                return log_error_errno(negerrno(), "Identity '%s': cannot "
                                       "repair %s", id->cfg->name, path);
        }
    }
    r = read_key(path, id->cfg, &k);
    if (r == 0) {
        r = set_key(id, k);
        if (r < 0) {
            EVP_PKEY_free(k);
            return r;
        }
        log_info("Identity '%s': using its stored key (generation %s)",
                 id->cfg->name, id->gen_hex);
        return 0;
    }
    if (r == -EBADMSG || r == -EKEYREJECTED) {
        int m = file_move_aside(path, aside, sizeof(aside));

        if (m < 0)
            return log_error_errno(m,
                                   "Identity '%s': key file %s is %s and could "
                                   "not be moved aside",
                                   id->cfg->name, path,
                                   r == -EBADMSG ? "unreadable" : "of the wrong type");
        log_error("Identity '%s': key file %s is %s; moved it aside to %s "
                  "and generating a new key",
                  id->cfg->name, path,
                  r == -EBADMSG ? "unreadable" : "not of the configured key-type",
                  aside);
    } else if (r != -ENOENT) {
        return log_error_errno(r, "Identity '%s': cannot read key file %s",
                               id->cfg->name, path);
    }
    k = generate_key(id->cfg);
    if (!k)
        return log_error_errno(-EIO, "Identity '%s': key generation failed",
                               id->cfg->name);
    r = keyfile_write(path, k);
    if (r < 0) {
        EVP_PKEY_free(k);
        return log_error_errno(r, "Identity '%s': cannot store its new key in %s",
                               id->cfg->name, path);
    }
    r = set_key(id, k);
    if (r < 0) {
        EVP_PKEY_free(k);
        return r;
    }
    log_notice("Identity '%s': generated a new %s key (generation %s)",
               id->cfg->name, "EC P-256", id->gen_hex);
    return 0;
}

/* --- certificate validation ------------------------------------------- */

struct chain {
    STACK_OF(X509) *certs; /* leaf first */
};

static void chain_free(struct chain *c)
{
    sk_X509_pop_free(c->certs, X509_free);
    c->certs = NULL;
}

static int parse_chain(const char *pem, size_t len, struct chain *ret,
                       char *err, size_t errlen)
{
    BIO *b;
    X509 *x;
    STACK_OF(X509) *sk;

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
        if (sk_X509_num(sk) >= CHAIN_CERTS_MAX || !sk_X509_push(sk, x)) {
            X509_free(x);
            sk_X509_pop_free(sk, X509_free);
            BIO_free(b);
            snprintf(err, errlen, "chain has more than %d certificates",
                     CHAIN_CERTS_MAX);
            return -EBADMSG;
        }
    }
    ERR_clear_error(); /* the loop ends with a "no start line" error */
    BIO_free(b);
    if (sk_X509_num(sk) == 0) {
        sk_X509_free(sk);
        snprintf(err, errlen, "no PEM certificate in the chain");
        return -EBADMSG;
    }
    ret->certs = sk;
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

static int verify_chain(const struct chain *c, const struct cfg_identity *cfg,
                        EVP_PKEY *key, char *err, size_t errlen)
{
    X509 *leaf = sk_X509_value(c->certs, 0);
    STACK_OF(X509) *untrusted = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    int r = -EBADMSG;

    if (EVP_PKEY_eq(X509_get0_pubkey(leaf), key) != 1) {
        snprintf(err, errlen, "certificate is not for this identity's key");
        goto out;
    }
    if (!names_match(leaf, cfg, err, errlen))
        goto out;
    store = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    untrusted = sk_X509_new_null();
    if (!store || !ctx || !untrusted) {
        r = -ENOMEM;
        goto out;
    }
    if (X509_STORE_load_file(store, cfg->ca_root) != 1) {
        snprintf(err, errlen, "cannot load ca-root %s", cfg->ca_root);
        r = -ENOENT;
        goto out;
    }
    for (int i = 1; i < sk_X509_num(c->certs); i++)
        if (!sk_X509_push(untrusted, sk_X509_value(c->certs, i))) {
            r = -ENOMEM;
            goto out;
        }
    if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1 ||
        X509_STORE_CTX_set_purpose(ctx, cfg->role == TLS_ROLE_CLIENT
                                             ? X509_PURPOSE_SSL_CLIENT
                                             : X509_PURPOSE_SSL_SERVER) != 1) {
        r = -ENOMEM;
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        snprintf(err, errlen, "certificate does not verify to ca-root: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    r = 0;
out:
    ERR_clear_error();
    sk_X509_free(untrusted); /* borrowed certificates */
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return r;
}

/* Re-encode the chain as clean PEM: no text, no blank lines (haproxy's
 * runtime API ends a payload at the first blank line). */
static int chain_to_pem(const struct chain *c, char **ret, size_t *ret_len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long len;
    int r = -EIO;

    if (!b)
        return -ENOMEM;
    for (int i = 0; i < sk_X509_num(c->certs); i++)
        if (!PEM_write_bio_X509(b, sk_X509_value(c->certs, i)))
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

static int reference_pem(struct identity *id, EVP_PKEY *k, char **ret,
                         size_t *ret_len)
{
    struct keyref ref;
    BIO *b;
    char *data;
    long len;
    int r = keyref_from_pkey(NULL, id->cfg->name, k, &ref);

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

/* Write the chain and the reference for services, as a pair, unless they
 * are already exactly in place.  Returns 1 if files were written. */
static int write_service_files(struct identity *id, EVP_PKEY *k,
                               const char *chain_pem, size_t chain_len)
{
    const struct cfg_identity *cfg = id->cfg;
    _cleanup_free_ char *ref = NULL;
    size_t ref_len = 0;
    struct file_spec files[2];
    int r;

    r = reference_pem(id, k, &ref, &ref_len);
    if (r < 0)
        return r;
    if (file_is_same(cfg->chain.path, chain_pem, chain_len, cfg->chain.uid,
                     cfg->chain.gid, cfg->chain.mode) &&
        file_is_same(cfg->ref.path, ref, ref_len, cfg->ref.uid, cfg->ref.gid,
                     cfg->ref.mode))
        return 0;
    files[0] = (struct file_spec){ cfg->ref.path, ref, ref_len, cfg->ref.uid,
                                   cfg->ref.gid, cfg->ref.mode };
    files[1] = (struct file_spec){ cfg->chain.path, chain_pem, chain_len,
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
    log_info("Identity '%s': wrote %s and %s", cfg->name, cfg->chain.path,
             cfg->ref.path);
    return 1;
}

/* Note the outcome of writing the service files; a failure backs off like
 * enrollment does, and is retried by the worker without re-enrolling. */
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
    n = ++id->delivery_failures;
    wait_s = enroll_backoff_s(n);
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

static void record_cert(struct identity *id, X509 *leaf)
{
    ASN1_INTEGER *sn = X509_get_serialNumber(leaf);
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    time_t nb = asn1_to_time(X509_get0_notBefore(leaf));
    time_t na = asn1_to_time(X509_get0_notAfter(leaf));

    pthread_mutex_lock(&id->lock);
    snprintf(id->serial, sizeof(id->serial), "%s", hex ? hex : "?");
    id->not_before = nb;
    id->not_after = na;
    id->have_cert = true;
    /* Re-enroll once two thirds of the lifetime have passed (the renewal
     * scheduler proper replaces this). */
    id->next_attempt = nb + (na - nb) * 2 / 3;
    id->failures = 0;
    id->last_error[0] = '\0';
    pthread_mutex_unlock(&id->lock);
    OPENSSL_free(hex);
    BN_free(bn);
}

static void fmt_time(time_t t, char *buf, size_t n)
{
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "?");
}

/* Adopt the stored chain at start if it is still good. */
static void adopt_stored_chain(struct identity *id)
{
    char path[PATH_MAX], err[256] = "", na[32];
    _cleanup_free_ char *pem = NULL, *clean = NULL;
    size_t len = 0, clean_len = 0;
    struct chain c = { 0 };
    EVP_PKEY *k = identity_get_key(id);
    int r;

    snprintf(path, sizeof(path), "%s/chain.pem", id->dir);
    r = file_read_all(path, CHAIN_FILE_MAX, &pem, &len);
    if (r == -ENOENT)
        goto out;
    if (r < 0) {
        log_warning_errno(r, "Identity '%s': cannot read stored chain %s; will "
                             "enroll", id->cfg->name, path);
        goto out;
    }
    r = parse_chain(pem, len, &c, err, sizeof(err));
    if (r == 0)
        r = verify_chain(&c, id->cfg, k, err, sizeof(err));
    if (r < 0) {
        log_notice("Identity '%s': stored certificate not adopted (%s); will "
                   "enroll", id->cfg->name, err);
        goto out;
    }
    r = chain_to_pem(&c, &clean, &clean_len);
    if (r < 0)
        goto out;
    record_cert(id, sk_X509_value(c.certs, 0));
    fmt_time(id->not_after, na, sizeof(na));
    log_info("Identity '%s': adopted stored certificate, serial %s, not after %s",
             id->cfg->name, id->serial, na);
    delivery_result(id, write_service_files(id, k, clean, clean_len));
out:
    chain_free(&c);
    EVP_PKEY_free(k);
}

int identity_deliver(struct identity *id)
{
    char path[PATH_MAX];
    _cleanup_free_ char *pem = NULL;
    size_t len = 0;
    EVP_PKEY *k = identity_get_key(id);
    int r;

    snprintf(path, sizeof(path), "%s/chain.pem", id->dir);
    r = k ? file_read_all(path, CHAIN_FILE_MAX, &pem, &len) : -ENOKEY;
    if (r == 0)
        r = write_service_files(id, k, pem, len);
    delivery_result(id, r);
    EVP_PKEY_free(k);
    return r < 0 ? r : 0;
}

int identity_init(struct identity *id, const struct cfg_identity *cfg,
                  const char *state_dir)
{
    char path[PATH_MAX];
    int r;

    *id = (struct identity){ .cfg = cfg };
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
    r = load_or_create_key(id);
    if (r < 0)
        return r;
    adopt_stored_chain(id);
    return 0;
}

void identity_done(struct identity *id)
{
    EVP_PKEY_CTX_free(id->sign_ctx);
    EVP_PKEY_free(id->key);
    free(id->dir);
    pthread_mutex_destroy(&id->lock);
    *id = (struct identity){ 0 };
}

EVP_PKEY *identity_get_key(struct identity *id)
{
    EVP_PKEY *k;

    pthread_mutex_lock(&id->lock);
    k = id->key;
    if (k && !EVP_PKEY_up_ref(k))
        k = NULL;
    pthread_mutex_unlock(&id->lock);
    return k;
}

int identity_accept_chain(struct identity *id, const char *pem, size_t len,
                          const char *method, char *err, size_t errlen)
{
    char path[PATH_MAX], na[32];
    _cleanup_free_ char *clean = NULL;
    size_t clean_len = 0;
    struct chain c = { 0 };
    EVP_PKEY *k = identity_get_key(id);
    time_t new_na, cur_na;
    bool had;
    int r;

    if (!k) {
        snprintf(err, errlen, "identity has no key");
        return -ENOKEY;
    }
    r = parse_chain(pem, len, &c, err, errlen);
    if (r == 0)
        r = verify_chain(&c, id->cfg, k, err, errlen);
    if (r < 0)
        goto out;
    new_na = asn1_to_time(X509_get0_notAfter(sk_X509_value(c.certs, 0)));
    pthread_mutex_lock(&id->lock);
    had = id->have_cert;
    cur_na = id->not_after;
    pthread_mutex_unlock(&id->lock);
    if (had && new_na <= cur_na) {
        snprintf(err, errlen, "new certificate does not outlive the current one");
        r = -EBADMSG;
        goto out;
    }
    r = chain_to_pem(&c, &clean, &clean_len);
    if (r < 0)
        goto out;
    /* The state copy first: if we crash after it, the next start adopts it
     * and rewrites the service files. */
    snprintf(path, sizeof(path), "%s/chain.pem", id->dir);
    r = file_write_atomic(path, clean, clean_len, (uid_t)-1, (gid_t)-1, 0600);
    if (r < 0) {
        snprintf(err, errlen, "cannot store the chain in %s", path);
        goto out;
    }
    record_cert(id, sk_X509_value(c.certs, 0));
    fmt_time(new_na, na, sizeof(na));
    log_notice("AUDIT issued identity=%s serial=%s not_after=%s method=%s "
               "key_generation=%s",
               id->cfg->name, id->serial, na, method, id->gen_hex);
    pthread_mutex_lock(&id->lock);
    id->last_issued = time(NULL);
    pthread_mutex_unlock(&id->lock);
    /* A failure to write the service files is retried on its own: the
     * certificate is good and stays. */
    delivery_result(id, write_service_files(id, k, clean, clean_len));
    r = 0;
out:
    if (r < 0)
        set_error(id, err);
    chain_free(&c);
    EVP_PKEY_free(k);
    return r;
}

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

static const EVP_MD *ecdsa_md(uint32_t scheme)
{
    (void)pthread_once(&md_once, md_init);
    switch (scheme) {
    case IPC_SCHEME_ECDSA_SHA256:
        return md_sha[0];
    case IPC_SCHEME_ECDSA_SHA384:
        return md_sha[1];
    case IPC_SCHEME_ECDSA_SHA512:
        return md_sha[2];
    default:
        return NULL;
    }
}

int identity_sign(struct identity *id, const uint8_t gen[IPC_GENERATION_LEN],
                  uint32_t scheme, const uint8_t *msg, size_t len, uint8_t *sig,
                  size_t *siglen)
{
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_PKEY *k = NULL;
    const EVP_MD *md;
    bool current;
    int r = -EIO;

    pthread_mutex_lock(&id->lock);
    current = CRYPTO_memcmp(gen, id->generation, IPC_GENERATION_LEN) == 0;
    if (id->key && current && EVP_PKEY_up_ref(id->key))
        k = id->key;
    pthread_mutex_unlock(&id->lock);
    if (!k)
        return current ? -ENOKEY : -ESTALE;
    md = ecdsa_md(scheme);
    if (!md || !EVP_PKEY_is_a(k, "EC")) {
        EVP_PKEY_free(k);
        return -EINVAL;
    }
    /* A signing context per key, kept between requests (only the event
     * loop signs, so it needs no lock): initialising one per signature was
     * a third of the cost of a P-256 signature. */
    if (!id->sign_ctx || CRYPTO_memcmp(id->sign_ctx_gen, gen, IPC_GENERATION_LEN)) {
        EVP_PKEY_CTX_free(id->sign_ctx);
        id->sign_ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
        if (!id->sign_ctx || EVP_PKEY_sign_init(id->sign_ctx) != 1) {
            EVP_PKEY_CTX_free(id->sign_ctx);
            id->sign_ctx = NULL;
            log_openssl_errors("sign init");
            EVP_PKEY_free(k);
            return -EIO;
        }
        memcpy(id->sign_ctx_gen, gen, IPC_GENERATION_LEN);
    }
    /* ECDSA signs the digest; the provider sent the message, so it is
     * hashed here, never taken from the peer. */
    if (EVP_Digest(msg, len, dgst, &dlen, md, NULL) == 1 &&
        EVP_PKEY_sign(id->sign_ctx, sig, siglen, dgst, dlen) == 1)
        r = 0;
    else
        log_openssl_errors("sign");
    OPENSSL_cleanse(dgst, sizeof(dgst));
    EVP_PKEY_free(k);
    return r;
}

json_t *identity_status(struct identity *id)
{
    const struct cfg_identity *cfg = id->cfg;
    json_t *o = json_object(), *names = json_array(), *sigs;
    char nb[32], na[32], next[32];
    time_t now = time(NULL);

    for (size_t i = 0; i < cfg->n_names; i++)
        json_array_append_new(names, json_string(cfg->names[i]));
    pthread_mutex_lock(&id->lock);
    fmt_time(id->not_before, nb, sizeof(nb));
    fmt_time(id->not_after, na, sizeof(na));
    fmt_time(id->next_attempt, next, sizeof(next));
    json_object_set_new(o, "name", json_string(cfg->name));
    json_object_set_new(o, "role", json_string(cfg->role == TLS_ROLE_CLIENT
                                                   ? "client" : "server"));
    json_object_set_new(o, "names", names);
    json_object_set_new(o, "key_generation", json_string(id->gen_hex));
    json_object_set_new(o, "state",
                        json_string(!id->have_cert ? "no-certificate"
                                    : id->not_after <= now ? "expired"
                                                          : "valid"));
    if (id->have_cert) {
        json_object_set_new(o, "serial", json_string(id->serial));
        json_object_set_new(o, "not_before", json_string(nb));
        json_object_set_new(o, "not_after", json_string(na));
        json_object_set_new(o, "seconds_remaining",
                            json_integer((json_int_t)(id->not_after - now)));
    }
    json_object_set_new(o, "next_attempt", json_string(next));
    json_object_set_new(o, "consecutive_failures", json_integer(id->failures));
    if (id->last_error[0])
        json_object_set_new(o, "last_error", json_string(id->last_error));
    json_object_set_new(o, "delivered", json_boolean(id->have_cert &&
                                                     !id->delivery_pending));
    pthread_mutex_unlock(&id->lock);
    json_object_set_new(o, "chain_file", json_string(cfg->chain.path));
    json_object_set_new(o, "ref_file", json_string(cfg->ref.path));
    sigs = json_pack("{s:I, s:I, s:I, s:I}", "ok",
                     (json_int_t)atomic_load(&id->signs_ok), "denied",
                     (json_int_t)atomic_load(&id->signs_denied), "refused",
                     (json_int_t)atomic_load(&id->signs_refused), "failed",
                     (json_int_t)atomic_load(&id->signs_failed));
    json_object_set_new(o, "signatures", sigs);
    return o;
}
