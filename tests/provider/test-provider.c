/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the built shortcert.so, loaded the way services load it: through
 * an OPENSSL_CONF that includes conf/openssl.cnf.d/shortcert.cnf and
 * overrides the module path and the socket.  The process's default library
 * context is configured like an unmodified service (postgres, nginx), so
 * PEM_read_bio_PrivateKey and SSL_CTX_use_PrivateKey_file go through the
 * real code paths; extra library contexts with their own configuration
 * point at misbehaving fake signers (tests/provider/fake-signer.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>

#include "cu-main.h"
#include "fake-signer.h"
#include "ipc-proto.h"
#include "keyref.h"

#define IDENTITY "api"
#define CV_LEN (64 + 33 + 1 + 32)

static char g_dir[] = "/tmp/shortcert-prov-XXXXXX";
static char g_main_addr[64];
static char g_ref_path[128], g_cert_path[128], g_combined_path[128];
static EVP_PKEY *g_key, *g_other_key;
static X509 *g_cert, *g_other_cert;
static char *g_ref_pem;
static struct fake_signer *g_fake;

/* The other key types, served by the main fake signer under their own
 * identities. */
static struct kt {
    const char *identity;
    const char *alg;    /* keygen name */
    const char *arg;    /* curve, or NULL */
    size_t bits;        /* RSA size */
    const char *is_a;   /* EVP_PKEY_is_a() name */
    int base_id;
    int want_bits, want_secbits, want_size;
    EVP_PKEY *key;
    X509 *cert;
    char *ref_pem;
    char ref_path[160], cert_path[160];
} g_kt[] = {
    { "p384", "EC", "P-384", 0, "EC", EVP_PKEY_EC, 384, 192, 104 },
    { "rsa2048", "RSA", NULL, 2048, "RSA", EVP_PKEY_RSA, 2048, 112, 256 },
    { "rsa3072", "RSA", NULL, 3072, "RSA", EVP_PKEY_RSA, 3072, 128, 384 },
    { "ed25519", "ED25519", NULL, 0, "ED25519", EVP_PKEY_ED25519, 256, 128, 64 },
};
#define N_KT (sizeof(g_kt) / sizeof(g_kt[0]))
static int g_cnf_seq;

/* --- helpers ------------------------------------------------------------ */

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drain the error queue; true if any reason or data text has needle.  The
 * errors go to stderr, so a failing test shows what the provider said. */
static bool errors_contain(const char *needle)
{
    const char *file, *func, *data;
    int line, flags;
    unsigned long e;
    bool found = false;

    while ((e = ERR_get_error_all(&file, &line, &func, &data, &flags)) != 0) {
        const char *reason = ERR_reason_error_string(e);
        const char *text = (flags & ERR_TXT_STRING) && data ? data : "";

        fprintf(stderr, "    [openssl] %s: %s\n", reason ? reason : "?", text);
        if (needle && (strstr(text, needle) || (reason && strstr(reason, needle))))
            found = true;
    }
    return found;
}

static char *write_file(const char *name, const char *text)
{
    static char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        abort(); /* test setup, not provider code */
    return path;
}

/* The service recipe from docs/PROVIDER.md, with the build-dir module. */
static char *service_cnf(const char *addr, const char *extra)
{
    char text[2048], name[32];
    const char *module = secure_getenv("SHORTCERT_MODULE");
    const char *snippet = secure_getenv("SHORTCERT_SNIPPET");

    if (!module || !snippet) {
        fprintf(stderr, "SHORTCERT_MODULE and SHORTCERT_SNIPPET must be set\n");
        abort();
    }
    snprintf(text, sizeof(text),
             "openssl_conf = openssl_init\n"
             ".include %s\n"
             "[shortcert_sect]\n"
             "module = %s\n"
             "shortcert-socket = %s\n"
             "%s",
             snippet, module, addr, extra ? extra : "");
    snprintf(name, sizeof(name), "svc-%d.cnf", g_cnf_seq++);
    return write_file(name, text);
}

static OSSL_LIB_CTX *libctx_for(const char *addr, const char *extra)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

    if (!ctx || !OSSL_LIB_CTX_load_config(ctx, service_cnf(addr, extra)) ||
        !OSSL_PROVIDER_available(ctx, "shortcert")) {
        errors_contain(NULL);
        OSSL_LIB_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static EVP_PKEY *load_pem(OSSL_LIB_CTX *ctx, const char *pem,
                          pem_password_cb *cb, void *cbarg)
{
    BIO *in = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey_ex(in, NULL, cb, cbarg, ctx, NULL);

    BIO_free(in);
    return pk;
}

/* A TLS 1.3 server CertificateVerify input: what shortcertd signs. */
static void make_cv(uint8_t out[CV_LEN])
{
    memset(out, 0x20, 64);
    memcpy(out + 64, "TLS 1.3, server CertificateVerify", 33);
    out[97] = 0;
    if (RAND_bytes(out + 98, 32) != 1)
        abort();
}

static bool verify_with(EVP_PKEY *pub, const char *md, const uint8_t *msg,
                        size_t len, const uint8_t *sig, size_t siglen)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    bool ok = m &&
              EVP_DigestVerifyInit_ex(m, NULL, md, NULL, NULL, pub, NULL) == 1 &&
              EVP_DigestVerify(m, sig, siglen, msg, len) == 1;

    EVP_MD_CTX_free(m);
    return ok;
}

/* One signature of a fresh CertificateVerify input; checks it verifies
 * with the real public key.  1 ok, 0 failed to sign, -1 bad signature. */
static int sign_cv(EVP_PKEY *pk, OSSL_LIB_CTX *ctx, const char *md)
{
    uint8_t msg[CV_LEN], sig[256];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok;

    make_cv(msg);
    ok = m && EVP_DigestSignInit_ex(m, NULL, md, ctx, NULL, pk, NULL) == 1 &&
         EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(m);
    if (!ok)
        return 0;
    return verify_with(g_key, md, msg, sizeof(msg), sig, siglen) ? 1 : -1;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509_EXTENSION *ext;
    X509V3_CTX v3;

    if (!x || !name)
        abort();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(now_ms() & 0xffffff));
    /* Minutes of validity: no time bombs. */
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, name);
    X509_NAME_free(name);
    X509_set_pubkey(x, key);
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (!X509_sign(x, key, EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256()))
        abort();
    return x;
}

static char *ref_pem_for(EVP_PKEY *key, const char *identity, bool tamper)
{
    struct keyref ref;
    BIO *mem = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;

    if (keyref_from_pkey(NULL, identity, key, &ref) < 0)
        abort();
    if (tamper)
        ref.generation[0] ^= 1;
    if (keyref_write_pem(mem, &ref) < 0)
        abort();
    keyref_done(&ref);
    n = BIO_get_mem_data(mem, &data);
    out = strndup(data, (size_t)n);
    BIO_free(mem);
    return out;
}

static char *pem_of_cert(X509 *x)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;

    PEM_write_bio_X509(mem, x);
    n = BIO_get_mem_data(mem, &data);
    out = strndup(data, (size_t)n);
    BIO_free(mem);
    return out;
}

static struct fake_signer *start_fake(const char *addr, enum fake_mode mode)
{
    /* FETCH answers the leaf and a second certificate standing in for an
     * intermediate. */
    X509 *certs[] = { g_cert, g_other_cert };
    struct fake_signer_cfg cfg = {
        .address = addr, .identity = IDENTITY, .key = g_key, .mode = mode,
        .certs = certs, .n_certs = 2,
    };
    struct fake_signer *f = NULL;

    if (fake_signer_start_thread(&cfg, &f) < 0)
        return NULL;
    return f;
}

static void addr_for(char *buf, size_t n, const char *what)
{
    snprintf(buf, n, "@shortcert-test-%d-%s", (int)getpid(), what);
}

/* --- loading ------------------------------------------------------------- */

static int pw_called;
static int pw_cb(char *buf, int size, int rwflag, void *u)
{
    pw_called++;
    return -1;
}

static void test_load_pem_read_bio(void)
{
    EVP_PKEY *pk;
    char group[32];

    pw_called = 0;
    /* Default library context, no _ex: exactly what nginx and haproxy do. */
    {
        BIO *in = BIO_new_mem_buf(g_ref_pem, -1);

        pk = PEM_read_bio_PrivateKey(in, NULL, pw_cb, NULL);
        BIO_free(in);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    CU_ASSERT_EQUAL(pw_called, 0);
    CU_ASSERT_STRING_EQUAL(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(pk)),
                           "shortcert");
    CU_ASSERT(EVP_PKEY_is_a(pk, "EC"));
    CU_ASSERT_EQUAL(EVP_PKEY_get_base_id(pk), EVP_PKEY_EC);
    CU_ASSERT_EQUAL(EVP_PKEY_get_bits(pk), 256);
    CU_ASSERT_EQUAL(EVP_PKEY_get_security_bits(pk), 128);
    CU_ASSERT_EQUAL(EVP_PKEY_get_size(pk), 72);
    CU_ASSERT(EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
                                             group, sizeof(group), NULL));
    CU_ASSERT_STRING_EQUAL(group, "prime256v1");
    CU_ASSERT(EVP_PKEY_eq(pk, g_key) == 1);
    EVP_PKEY_free(pk);
    errors_contain(NULL);
}

static void test_load_decoder(void)
{
    static const struct {
        const char *keytype;
        int selection;
    } cases[] = {
        { "EC", EVP_PKEY_KEYPAIR },
        { NULL, EVP_PKEY_KEYPAIR },
        { NULL, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *pk = NULL;
        BIO *in = BIO_new_mem_buf(g_ref_pem, -1);
        OSSL_DECODER_CTX *d = OSSL_DECODER_CTX_new_for_pkey(
            &pk, "PEM", NULL, cases[i].keytype, cases[i].selection, NULL, NULL);

        CU_ASSERT_PTR_NOT_NULL(d);
        CU_ASSERT(OSSL_DECODER_from_bio(d, in) == 1);
        CU_ASSERT_PTR_NOT_NULL(pk);
        if (pk) {
            CU_ASSERT(EVP_PKEY_eq(pk, g_key) == 1);
            CU_ASSERT_EQUAL(sign_cv(pk, NULL, "SHA256"), 1);
        }
        EVP_PKEY_free(pk);
        OSSL_DECODER_CTX_free(d);
        BIO_free(in);
    }
    errors_contain(NULL);
}

static void test_load_store(void)
{
    OSSL_STORE_CTX *st = OSSL_STORE_open(g_ref_path, NULL, NULL, NULL, NULL);
    OSSL_STORE_INFO *info;
    EVP_PKEY *pk = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    while (!pk && (info = OSSL_STORE_load(st)) != NULL) {
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pk = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    CU_ASSERT_STRING_EQUAL(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(pk)),
                           "shortcert");
    CU_ASSERT_EQUAL(sign_cv(pk, NULL, "SHA256"), 1);
    EVP_PKEY_free(pk);
    errors_contain(NULL);
}

/* haproxy: one file, certificate chain FIRST, then the reference. */
static void test_load_combined_chain_first(void)
{
    EVP_PKEY *pk;
    BIO *in = BIO_new_file(g_combined_path, "r");

    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    pk = PEM_read_bio_PrivateKey(in, NULL, pw_cb, NULL);
    BIO_free(in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    CU_ASSERT(EVP_PKEY_eq(pk, g_key) == 1);
    EVP_PKEY_free(pk);
    errors_contain(NULL);
}

/* postgres: chain file, key file, check. */
static void test_ssl_ctx_use_files(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT(SSL_CTX_use_certificate_chain_file(ctx, g_combined_path) == 1);
    CU_ASSERT(SSL_CTX_use_PrivateKey_file(ctx, g_ref_path, SSL_FILETYPE_PEM) == 1);
    CU_ASSERT(SSL_CTX_check_private_key(ctx) == 1);
    /* nginx/haproxy variant: the key from the combined file. */
    CU_ASSERT(SSL_CTX_use_PrivateKey_file(ctx, g_combined_path,
                                          SSL_FILETYPE_PEM) == 1);
    CU_ASSERT(SSL_CTX_check_private_key(ctx) == 1);
    SSL_CTX_free(ctx);
    errors_contain(NULL);
}

static void test_ssl_ctx_match(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    EVP_PKEY *pk = load_pem(NULL, g_ref_pem, NULL, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    CU_ASSERT(SSL_CTX_use_certificate(ctx, g_cert) == 1);
    CU_ASSERT(SSL_CTX_use_PrivateKey(ctx, pk) == 1);
    CU_ASSERT(SSL_CTX_check_private_key(ctx) == 1);
    CU_ASSERT(X509_check_private_key(g_cert, pk) == 1);
    SSL_CTX_free(ctx);
    errors_contain(NULL);

    /* A certificate for another key must not match. */
    ctx = SSL_CTX_new(TLS_server_method());
    CU_ASSERT(SSL_CTX_use_certificate(ctx, g_other_cert) == 1);
    CU_ASSERT(SSL_CTX_use_PrivateKey(ctx, pk) != 1 ||
              SSL_CTX_check_private_key(ctx) != 1);
    CU_ASSERT(X509_check_private_key(g_other_cert, pk) != 1);
    CU_ASSERT(EVP_PKEY_eq(pk, g_other_key) != 1);
    SSL_CTX_free(ctx);
    EVP_PKEY_free(pk);
    errors_contain(NULL);
}

static void test_tampered_reference(void)
{
    char *bad = ref_pem_for(g_key, IDENTITY, true);
    EVP_PKEY *pk;

    ERR_clear_error();
    pk = load_pem(NULL, bad, pw_cb, NULL);
    CU_ASSERT_PTR_NULL(pk);
    CU_ASSERT(errors_contain("generation does not match"));
    EVP_PKEY_free(pk);
    free(bad);

    /* A damaged body: still a reference, but the identity is no longer a
     * valid name ("api" -> "a/i"). */
    {
        BIO *in = BIO_new_mem_buf(g_ref_pem, -1), *out = BIO_new(BIO_s_mem());
        char *name = NULL, *hdr = NULL, *text;
        unsigned char *der = NULL, *p;
        long len = 0;

        CU_ASSERT_FATAL(PEM_read_bio(in, &name, &hdr, &der, &len) == 1);
        p = memmem(der, (size_t)len, "\x0c\x03" "api", 5);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        p[3] = '/';
        CU_ASSERT(PEM_write_bio(out, name, "", der, len) > 0);
        CU_ASSERT(BIO_write(out, "", 1) == 1);
        BIO_get_mem_data(out, &text);
        pk = load_pem(NULL, text, pw_cb, NULL);
        CU_ASSERT_PTR_NULL(pk);
        CU_ASSERT(errors_contain("not a valid version 1 reference"));
        EVP_PKEY_free(pk);
        OPENSSL_free(name);
        OPENSSL_free(hdr);
        OPENSSL_free(der);
        BIO_free(in);
        BIO_free(out);
    }
    CU_ASSERT_EQUAL(pw_called, 0);
}

/* Ordinary keys must keep working with the default provider. */
static void test_default_keys_unaffected(void)
{
    BIO *mem = BIO_new(BIO_s_mem());
    unsigned before = fake_signer_requests(g_fake);
    uint8_t msg[CV_LEN], sig[128];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    char *data;
    EVP_PKEY *pk;

    PEM_write_bio_PrivateKey(mem, g_other_key, NULL, NULL, 0, NULL, NULL);
    BIO_get_mem_data(mem, &data);
    pk = PEM_read_bio_PrivateKey(mem, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    CU_ASSERT_STRING_EQUAL(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(pk)),
                           "default");
    make_cv(msg);
    CU_ASSERT(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, pk) == 1);
    CU_ASSERT(EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) == 1);
    CU_ASSERT(verify_with(g_other_key, "SHA256", msg, sizeof(msg), sig, siglen));
    CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before);
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(pk);
    BIO_free(mem);
    errors_contain(NULL);
}

/* --- key management ------------------------------------------------------ */

static void test_export_private_refused(void)
{
    EVP_PKEY *pk = load_pem(NULL, g_ref_pem, NULL, NULL);
    OSSL_PARAM *params = NULL;
    unsigned char *der = NULL, *der2 = NULL;
    BIGNUM *priv = NULL;
    BIO *mem = BIO_new(BIO_s_mem());
    int n, n2;

    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    CU_ASSERT(EVP_PKEY_todata(pk, EVP_PKEY_KEYPAIR, &params) != 1);
    OSSL_PARAM_free(params);
    params = NULL;
    CU_ASSERT(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &priv) != 1);
    CU_ASSERT(PEM_write_bio_PrivateKey(mem, pk, NULL, NULL, 0, NULL, NULL) != 1);
    CU_ASSERT(i2d_PrivateKey(pk, &der) <= 0);
    OPENSSL_free(der);
    der = NULL;
    errors_contain(NULL);

    /* The public half is fine, and is the real one. */
    CU_ASSERT(EVP_PKEY_todata(pk, EVP_PKEY_PUBLIC_KEY, &params) == 1);
    CU_ASSERT_PTR_NOT_NULL(OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PUB_KEY));
    CU_ASSERT_PTR_NULL(OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PRIV_KEY));
    OSSL_PARAM_free(params);
    n = i2d_PUBKEY(pk, &der);
    n2 = i2d_PUBKEY(g_key, &der2);
    CU_ASSERT(n > 0 && n == n2 && memcmp(der, der2, (size_t)n) == 0);
    OPENSSL_free(der);
    OPENSSL_free(der2);
    BN_free(priv);
    BIO_free(mem);
    EVP_PKEY_free(pk);
    errors_contain(NULL);
}

static EVP_PKEY *import_into_shortcert(EVP_PKEY *from, int selection)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC",
                                                    "provider=shortcert");
    EVP_PKEY *pk = NULL;

    if (pctx && EVP_PKEY_todata(from, selection, &params) == 1 &&
        EVP_PKEY_fromdata_init(pctx) == 1)
        (void)EVP_PKEY_fromdata(pctx, &pk, selection, params);
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(pctx);
    return pk;
}

static void test_import(void)
{
    EVP_PKEY *pk;
    EVP_MD_CTX *m;

    pk = import_into_shortcert(g_key, EVP_PKEY_KEYPAIR);
    CU_ASSERT_PTR_NULL(pk);
    CU_ASSERT(errors_contain("refusing to import a private"));
    EVP_PKEY_free(pk);

    pk = import_into_shortcert(g_key, EVP_PKEY_PUBLIC_KEY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    CU_ASSERT(EVP_PKEY_eq(pk, g_key) == 1);
    m = EVP_MD_CTX_new();
    CU_ASSERT(EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL,
                                    "provider=shortcert", pk, NULL) != 1);
    CU_ASSERT(errors_contain("public key only"));
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(pk);
}

/* --- signing ------------------------------------------------------------- */

static void test_sign_verify(void)
{
    EVP_PKEY *pk = load_pem(NULL, g_ref_pem, NULL, NULL);
    uint8_t msg[CV_LEN], sig[128];
    size_t siglen = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned before;

    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    CU_ASSERT_EQUAL(sign_cv(pk, NULL, "SHA256"), 1);
    CU_ASSERT_EQUAL(sign_cv(pk, NULL, "SHA384"), 1);
    CU_ASSERT_EQUAL(sign_cv(pk, NULL, "SHA2-512"), 1);

    /* Size query: answered locally, no round trip. */
    make_cv(msg);
    before = fake_signer_requests(g_fake);
    CU_ASSERT(EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, NULL, pk, NULL) == 1);
    CU_ASSERT(EVP_DigestSign(m, NULL, &siglen, msg, sizeof(msg)) == 1);
    CU_ASSERT_EQUAL(siglen, 72);
    CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before);
    siglen = sizeof(sig);
    CU_ASSERT(EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) == 1);
    CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before + 1);

    /* Verification through our key (delegated to the default provider). */
    CU_ASSERT(EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL, NULL, pk,
                                      NULL) == 1);
    CU_ASSERT(EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)) == 1);
    CU_ASSERT(EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL,
                                      "provider=shortcert", pk, NULL) == 1);
    CU_ASSERT(EVP_DigestVerifyUpdate(m, msg, 10) == 1);
    CU_ASSERT(EVP_DigestVerifyUpdate(m, msg + 10, sizeof(msg) - 10) == 1);
    CU_ASSERT(EVP_DigestVerifyFinal(m, sig, siglen) == 1);
    msg[100] ^= 1;
    CU_ASSERT(EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL,
                                      "provider=shortcert", pk, NULL) == 1);
    CU_ASSERT(EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)) != 1);
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(pk);
    errors_contain(NULL);
}

static void test_sign_update_final(void)
{
    EVP_PKEY *pk = load_pem(NULL, g_ref_pem, NULL, NULL);
    uint8_t msg[CV_LEN], sig[128];
    size_t siglen = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    make_cv(msg);
    CU_ASSERT(EVP_DigestSignInit_ex(m, NULL, "SHA384", NULL, NULL, pk, NULL) == 1);
    CU_ASSERT(EVP_DigestSignUpdate(m, msg, 1) == 1);
    CU_ASSERT(EVP_DigestSignUpdate(m, msg + 1, 96) == 1);
    CU_ASSERT(EVP_DigestSignUpdate(m, msg + 97, sizeof(msg) - 97) == 1);
    CU_ASSERT(EVP_DigestSignFinal(m, NULL, &siglen) == 1);
    CU_ASSERT_EQUAL(siglen, 72);
    /* Final duplicates the context (dupctx) and signs the copy. */
    CU_ASSERT(EVP_DigestSignFinal(m, sig, &siglen) == 1);
    CU_ASSERT(verify_with(g_key, "SHA384", msg, sizeof(msg), sig, siglen));
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(pk);
    errors_contain(NULL);
}

static void test_sign_digests_and_algid(void)
{
    static const uint8_t algid256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                        0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
    EVP_PKEY *pk = load_pem(NULL, g_ref_pem, NULL, NULL);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t algid[64];
    unsigned before = fake_signer_requests(g_fake);
    OSSL_PARAM p[2];

    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    /* libssl probes sigalgs with DigestSignInit: the wrong digests must
     * fail, cheaply. */
    CU_ASSERT(EVP_DigestSignInit_ex(m, NULL, "SHA1", NULL, NULL, pk, NULL) != 1);
    CU_ASSERT(errors_contain("not supported"));
    CU_ASSERT(EVP_DigestSignInit_ex(m, NULL, "SHA224", NULL, NULL, pk, NULL) != 1);
    errors_contain(NULL);
    CU_ASSERT(EVP_PKEY_digestsign_supports_digest(pk, NULL, "SHA256", NULL) == 1);
    CU_ASSERT(EVP_PKEY_digestsign_supports_digest(pk, NULL, "SHA1", NULL) != 1);
    errors_contain(NULL);
    CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before);

    CU_ASSERT(EVP_DigestSignInit_ex(m, &pctx, "SHA256", NULL, NULL, pk, NULL) == 1);
    p[0] = OSSL_PARAM_construct_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID,
                                             algid, sizeof(algid));
    p[1] = OSSL_PARAM_construct_end();
    CU_ASSERT(EVP_PKEY_CTX_get_params(pctx, p) == 1);
    CU_ASSERT_EQUAL(p[0].return_size, sizeof(algid256));
    CU_ASSERT(memcmp(algid, algid256, sizeof(algid256)) == 0);
    EVP_MD_CTX_free(m);

    /* What shortcertd is for: a certificate signature is not a TLS
     * handshake input, and the refusal says so. */
    {
        X509 *x = make_cert(g_other_key, "x");

        X509_set_pubkey(x, pk);
        CU_ASSERT(X509_sign(x, pk, EVP_sha256()) == 0);
        CU_ASSERT(errors_contain("not a TLS handshake signature input"));
        X509_free(x);
    }
    EVP_PKEY_free(pk);
}

static void test_sign_too_long(void)
{
    EVP_PKEY *pk = load_pem(NULL, g_ref_pem, NULL, NULL);
    size_t len = IPC_MSG_MAX + 1, siglen = 128;
    uint8_t *msg = calloc(1, len), sig[128];
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned before = fake_signer_requests(g_fake);

    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    CU_ASSERT(EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, NULL, pk, NULL) == 1);
    CU_ASSERT(EVP_DigestSign(m, sig, &siglen, msg, len) != 1);
    CU_ASSERT(errors_contain("exceeds"));
    CU_ASSERT(EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, NULL, pk, NULL) == 1);
    CU_ASSERT(EVP_DigestSignUpdate(m, msg, len - 10) == 1);
    CU_ASSERT(EVP_DigestSignUpdate(m, msg, 11) != 1);
    CU_ASSERT(EVP_DigestSignFinal(m, sig, &siglen) != 1);
    CU_ASSERT(errors_contain("exceeds"));
    CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before);
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(pk);
    free(msg);
}

/* --- handshakes ------------------------------------------------------------ */

/* A handshake of a default-provider client that trusts trust (and offers
 * only client_sigalgs, if given); *ret_sig_nid (if not NULL) gets the
 * server's signature type, *ret_cipher the suite. */
static bool handshake_ex(SSL_CTX *sctx, int version, X509 *trust,
                         const char *client_sigalgs, int *ret_sig_nid,
                         const char *client_ciphers)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *s = NULL, *c = NULL;
    BIO *sb = NULL, *cb = NULL;
    bool sdone = false, cdone = false, ok = false;

    /* The client is plain libssl with the default provider; it checks the
     * certificate and the signature made through shortcertd. */
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), trust);
    SSL_CTX_set_min_proto_version(cctx, version);
    SSL_CTX_set_max_proto_version(cctx, version);
    if (client_sigalgs && SSL_CTX_set1_sigalgs_list(cctx, client_sigalgs) != 1)
        goto out;
    if (client_ciphers && SSL_CTX_set_cipher_list(cctx, client_ciphers) != 1)
        goto out;
    s = SSL_new(sctx);
    c = SSL_new(cctx);
    if (!s || !c || !BIO_new_bio_pair(&sb, 0, &cb, 0))
        goto out;
    SSL_set_bio(s, sb, sb);
    SSL_set_bio(c, cb, cb);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    SSL_set_tlsext_host_name(c, "localhost");
    SSL_set1_host(c, "localhost");
    for (int i = 0; i < 50 && !(sdone && cdone); i++) {
        int rc = cdone ? 1 : SSL_do_handshake(c);
        int rs = sdone ? 1 : SSL_do_handshake(s);

        if (rc == 1)
            cdone = true;
        else if (SSL_get_error(c, rc) != SSL_ERROR_WANT_READ &&
                 SSL_get_error(c, rc) != SSL_ERROR_WANT_WRITE)
            goto out;
        if (rs == 1)
            sdone = true;
        else if (SSL_get_error(s, rs) != SSL_ERROR_WANT_READ &&
                 SSL_get_error(s, rs) != SSL_ERROR_WANT_WRITE)
            goto out;
    }
    ok = sdone && cdone && SSL_version(c) == version &&
         SSL_get_verify_result(c) == X509_V_OK;
    if (ok && ret_sig_nid && SSL_get_peer_signature_type_nid(c, ret_sig_nid) != 1)
        ok = false;
    if (!ok)
        fprintf(stderr, "    handshake: server %s, client %s, %s, verify %ld\n",
                sdone ? "done" : "not done", cdone ? "done" : "not done",
                SSL_get_version(c), SSL_get_verify_result(c));
out:
    if (!ok && !ret_sig_nid && !client_ciphers)
        errors_contain(NULL);
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(cctx);
    return ok;
}

static bool handshake(SSL_CTX *sctx, int version)
{
    return handshake_ex(sctx, version, g_cert, NULL, NULL, NULL);
}

static void test_handshakes(void)
{
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    unsigned before;

    CU_ASSERT_PTR_NOT_NULL_FATAL(sctx);
    CU_ASSERT(SSL_CTX_use_certificate_file(sctx, g_cert_path, SSL_FILETYPE_PEM) == 1);
    CU_ASSERT(SSL_CTX_use_PrivateKey_file(sctx, g_ref_path, SSL_FILETYPE_PEM) == 1);
    CU_ASSERT(SSL_CTX_check_private_key(sctx) == 1);
    /* No static RSA key exchange here: ECDHE only (docs/PROVIDER.md). */
    CU_ASSERT(SSL_CTX_set_cipher_list(sctx, "ECDHE+AESGCM") == 1);

    before = fake_signer_requests(g_fake);
    CU_ASSERT(handshake(sctx, TLS1_3_VERSION));
    /* One signature per handshake, one round trip. */
    CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before + 1);
    before = fake_signer_requests(g_fake);
    CU_ASSERT(handshake(sctx, TLS1_2_VERSION));
    CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before + 1);
    SSL_CTX_free(sctx);
}

/* --- processes and threads -------------------------------------------------- */

static void test_fork(void)
{
    EVP_PKEY *pk = load_pem(NULL, g_ref_pem, NULL, NULL);
    unsigned accepts;
    int status = -1;
    pid_t pid;

    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    CU_ASSERT_EQUAL_FATAL(sign_cv(pk, NULL, "SHA256"), 1); /* parent connects */
    accepts = fake_signer_accepts(g_fake);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        /* Child: signs with the key the parent loaded, twice. */
        int ok = sign_cv(pk, NULL, "SHA256") == 1 && sign_cv(pk, NULL, "SHA384") == 1;

        if (!ok)
            errors_contain(NULL);
        _exit(ok ? 0 : 1);
    }
    CU_ASSERT(waitpid(pid, &status, 0) == pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The child made its own connection ... */
    CU_ASSERT_EQUAL(fake_signer_accepts(g_fake), accepts + 1);
    /* ... and closed (not shut down) the inherited one: ours still works. */
    CU_ASSERT_EQUAL(sign_cv(pk, NULL, "SHA256"), 1);
    CU_ASSERT_EQUAL(fake_signer_accepts(g_fake), accepts + 1);
    EVP_PKEY_free(pk);
}

/* nginx/haproxy drop privileges after loading keys: reconnect, so
 * shortcertd sees the new credentials. */
static void test_euid_change(void)
{
    char addr[64];
    struct fake_signer *f;
    OSSL_LIB_CTX *ctx;
    EVP_PKEY *pk;
    int status = -1;
    pid_t pid;

    if (geteuid() != 0) {
        fprintf(stderr, "    (not root: cannot change euid; skipped)\n");
        return;
    }
    addr_for(addr, sizeof(addr), "euid");
    f = start_fake(addr, FAKE_DENY_NONROOT);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    ctx = libctx_for(addr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    pk = load_pem(ctx, g_ref_pem, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        int code = 0;

        if (sign_cv(pk, ctx, "SHA256") != 1)
            code |= 1;
        if (seteuid(65534) < 0)
            _exit(64);
        if (sign_cv(pk, ctx, "SHA256") != 0 ||
            !errors_contain("permission denied (uid 65534 not allowed)"))
            code |= 2;
        if (seteuid(0) < 0)
            _exit(65);
        if (sign_cv(pk, ctx, "SHA256") != 1)
            code |= 4;
        errors_contain(NULL);
        _exit(code);
    }
    CU_ASSERT(waitpid(pid, &status, 0) == pid);
    CU_ASSERT(WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
    CU_ASSERT_EQUAL(fake_signer_accepts(f), 3);
    EVP_PKEY_free(pk);
    OSSL_LIB_CTX_free(ctx);
    fake_signer_stop(f);
}

#define THREADS 4
#define PER_THREAD 200

static EVP_PKEY *g_thread_key;
static atomic_int g_thread_ok;

static void *thread_main(void *arg)
{
    for (int i = 0; i < PER_THREAD; i++)
        if (sign_cv(g_thread_key, NULL, i % 2 ? "SHA256" : "SHA384") == 1)
            atomic_fetch_add(&g_thread_ok, 1);
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[THREADS];
    unsigned before = fake_signer_requests(g_fake);
    unsigned accepts = fake_signer_accepts(g_fake);

    g_thread_key = load_pem(NULL, g_ref_pem, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g_thread_key);
    atomic_store(&g_thread_ok, 0);
    for (int i = 0; i < THREADS; i++)
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, thread_main, NULL) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&g_thread_ok), THREADS * PER_THREAD);
    CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before + THREADS * PER_THREAD);
    /* One connection per thread, no more. */
    CU_ASSERT_EQUAL(fake_signer_accepts(g_fake), accepts + THREADS);
    EVP_PKEY_free(g_thread_key);
    errors_contain(NULL);
}

/* --- a daemon that is down, slow, hostile or restarting ------------------- */

static void test_daemon_down(void)
{
    char addr[64], path[192];
    OSSL_LIB_CTX *ctx;
    EVP_PKEY *pk;
    long long t0;

    addr_for(addr, sizeof(addr), "nobody");
    ctx = libctx_for(addr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    pk = load_pem(ctx, g_ref_pem, NULL, NULL); /* loading needs no daemon */
    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    t0 = now_ms();
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
    CU_ASSERT(now_ms() - t0 < 1000);
    {
        char want[128];

        snprintf(want, sizeof(want),
                 "cannot reach shortcertd at %s: Connection refused", addr);
        CU_ASSERT(errors_contain(want));
    }
    EVP_PKEY_free(pk);
    OSSL_LIB_CTX_free(ctx);

    snprintf(path, sizeof(path), "%s/no-such.sock", g_dir);
    ctx = libctx_for(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    pk = load_pem(ctx, g_ref_pem, NULL, NULL);
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
    CU_ASSERT(errors_contain("No such file or directory"));
    EVP_PKEY_free(pk);
    OSSL_LIB_CTX_free(ctx);
}

static void test_frozen_backoff(void)
{
    char addr[64];
    struct fake_signer *f;
    OSSL_LIB_CTX *ctx;
    EVP_PKEY *pk;
    long long t0, dt;

    addr_for(addr, sizeof(addr), "frozen");
    f = start_fake(addr, FAKE_FREEZE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    ctx = libctx_for(addr, "shortcert-timeout-ms = 300\n"
                           "shortcert-backoff-ms = 800\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    pk = load_pem(ctx, g_ref_pem, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);

    t0 = now_ms();
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
    dt = now_ms() - t0;
    CU_ASSERT(dt >= 280 && dt < 1000);
    CU_ASSERT(errors_contain("did not answer within 300 ms"));

    /* Inside the back-off window: fail at once, without asking. */
    t0 = now_ms();
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
    CU_ASSERT(now_ms() - t0 < 100);
    CU_ASSERT(errors_contain("back-off"));
    CU_ASSERT_EQUAL(fake_signer_requests(f), 1);

    /* After it, a working daemon is used again. */
    fake_signer_set_mode(f, FAKE_OK);
    usleep(900 * 1000);
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 1);
    CU_ASSERT_EQUAL(fake_signer_requests(f), 2);
    EVP_PKEY_free(pk);
    OSSL_LIB_CTX_free(ctx);
    fake_signer_stop(f);
    errors_contain(NULL);
}

static void test_refused(void)
{
    char addr[64];
    struct fake_signer *f;
    OSSL_LIB_CTX *ctx;
    EVP_PKEY *pk;

    addr_for(addr, sizeof(addr), "refuse");
    f = start_fake(addr, FAKE_REFUSE);
    ctx = libctx_for(addr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    pk = load_pem(ctx, g_ref_pem, NULL, NULL);
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
    CU_ASSERT(errors_contain("shortcert: shortcertd refused to sign for identity "
                             "'api': permission denied (uid 0 not allowed)"));
    /* An error reply keeps the connection. */
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
    errors_contain(NULL);
    CU_ASSERT_EQUAL(fake_signer_accepts(f), 1);
    fake_signer_set_mode(f, FAKE_OK);
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 1);
    CU_ASSERT_EQUAL(fake_signer_accepts(f), 1);
    EVP_PKEY_free(pk);

    /* A reference to another identity, and one to a stale key. */
    {
        char *other = ref_pem_for(g_key, "web", false);

        pk = load_pem(ctx, other, NULL, NULL);
        CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
        CU_ASSERT(errors_contain("identity 'web': no such identity"));
        EVP_PKEY_free(pk);
        free(other);
    }
    OSSL_LIB_CTX_free(ctx);
    fake_signer_stop(f);
}

static void test_peer_not_root(void)
{
    struct fake_signer_cfg cfg = {
        .identity = IDENTITY, .key = g_key, .run_as = 65534, .mode = FAKE_OK,
    };
    char addr[64];
    OSSL_LIB_CTX *ctx;
    EVP_PKEY *pk;
    pid_t pid = -1;

    if (geteuid() != 0) {
        fprintf(stderr, "    (not root: cannot start a non-root peer; skipped)\n");
        return;
    }
    addr_for(addr, sizeof(addr), "squat");
    cfg.address = addr;
    CU_ASSERT_FATAL(fake_signer_start_process(&cfg, &pid) == 0);
    ctx = libctx_for(addr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    pk = load_pem(ctx, g_ref_pem, NULL, NULL);
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
    CU_ASSERT(errors_contain("runs as uid 65534, not root"));
    EVP_PKEY_free(pk);
    OSSL_LIB_CTX_free(ctx);
    fake_signer_kill(pid);
}

static void test_bad_replies(void)
{
    char addr[64];
    struct fake_signer *f;
    OSSL_LIB_CTX *ctx;
    EVP_PKEY *pk;

    addr_for(addr, sizeof(addr), "bad");
    f = start_fake(addr, FAKE_WRONG_ID);
    ctx = libctx_for(addr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    pk = load_pem(ctx, g_ref_pem, NULL, NULL);

    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
    CU_ASSERT(errors_contain("request id mismatch"));
    fake_signer_set_mode(f, FAKE_GARBAGE);
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
    CU_ASSERT(errors_contain("malformed reply from shortcertd"));
    /* Each bad reply dropped its connection; a good daemon is used again. */
    fake_signer_set_mode(f, FAKE_OK);
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 1);
    CU_ASSERT_EQUAL(fake_signer_accepts(f), 3);

    /* A frame too big for any reply, and a "signature" longer than the
     * key's maximum (72 bytes for P-256) in a well-formed frame. */
    fake_signer_set_mode(f, FAKE_OVERSIZE);
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
    CU_ASSERT(errors_contain("frame longer than 64 KiB"));
    fake_signer_set_mode(f, FAKE_LONG_SIG);
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
    CU_ASSERT(errors_contain("signature longer than the key allows"));

    /* A daemon that hangs up: one reconnect and retry, then a clear error. */
    fake_signer_set_mode(f, FAKE_CLOSE);
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
    CU_ASSERT(errors_contain("lost the connection to shortcertd"));
    CU_ASSERT_EQUAL(fake_signer_requests(f), 7);
    EVP_PKEY_free(pk);
    OSSL_LIB_CTX_free(ctx);
    fake_signer_stop(f);
}

static void test_daemon_restart(void)
{
    char addr[64];
    struct fake_signer *f;
    OSSL_LIB_CTX *ctx;
    EVP_PKEY *pk;

    addr_for(addr, sizeof(addr), "restart");
    f = start_fake(addr, FAKE_OK);
    ctx = libctx_for(addr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    pk = load_pem(ctx, g_ref_pem, NULL, NULL);
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 1);
    fake_signer_stop(f);
    f = start_fake(addr, FAKE_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    /* The old connection is dead; the provider reconnects once, silently. */
    CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 1);
    CU_ASSERT_EQUAL(fake_signer_requests(f), 1);
    CU_ASSERT_PTR_NULL(ERR_peek_error() ? "error left" : NULL);
    EVP_PKEY_free(pk);
    OSSL_LIB_CTX_free(ctx);
    fake_signer_stop(f);
    errors_contain(NULL);
}

static void test_bad_config(void)
{
    static const struct {
        const char *socket, *extra, *want;
    } cases[] = {
        { "relative/shortcert.sock", NULL, "shortcert-socket = 'relative" },
        { "@ok", "shortcert-timeout-ms = 10s\n", "shortcert-timeout-ms = '10s'" },
        { "@ok", "shortcert-timeout-ms = 0\n", "shortcert-timeout-ms = '0'" },
        { "@ok", "shortcert-backoff-ms = -1\n", "shortcert-backoff-ms = '-1'" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        OSSL_LIB_CTX *ctx = libctx_for(cases[i].socket, cases[i].extra);
        EVP_PKEY *pk;

        CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
        pk = load_pem(ctx, g_ref_pem, NULL, NULL);
        CU_ASSERT_PTR_NOT_NULL(pk);
        CU_ASSERT_EQUAL(sign_cv(pk, ctx, "SHA256"), 0);
        CU_ASSERT(errors_contain(cases[i].want));
        EVP_PKEY_free(pk);
        OSSL_LIB_CTX_free(ctx);
    }
}


/* --- the other key types: P-384, RSA 2048/3072, Ed25519 ------------------- */

static EVP_PKEY *kt_load(const struct kt *t)
{
    EVP_PKEY *pk = load_pem(NULL, t->ref_pem, pw_cb, NULL);

    if (!pk)
        errors_contain(NULL);
    return pk;
}

/* Sign msg through the provider with md (NULL for Ed25519) and pad (0, or
 * an RSA padding), verify with the real key; 1 ok, 0 failed, -1 bad. */
static int kt_sign(const struct kt *t, EVP_PKEY *pk, const char *md, int pad,
                   const uint8_t *msg, size_t len)
{
    uint8_t sig[512];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *m = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL, *vctx = NULL;
    int ok;

    ok = m && EVP_DigestSignInit_ex(m, &pctx, md, NULL, NULL, pk, NULL) == 1 &&
         (!pad || EVP_PKEY_CTX_set_rsa_padding(pctx, pad) == 1) &&
         (pad != RSA_PKCS1_PSS_PADDING ||
          EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1) &&
         EVP_DigestSign(m, sig, &siglen, msg, len) == 1;
    if (ok) {
        /* verified by the default provider with the real key, with the
         * parameters TLS uses (PSS: salt as long as the hash) */
        ok = v && EVP_DigestVerifyInit_ex(v, &vctx, md, NULL, "provider=default",
                                          t->key, NULL) == 1 &&
             (!pad || EVP_PKEY_CTX_set_rsa_padding(vctx, pad) == 1) &&
             (pad != RSA_PKCS1_PSS_PADDING ||
              EVP_PKEY_CTX_set_rsa_pss_saltlen(vctx, RSA_PSS_SALTLEN_DIGEST) == 1) &&
             EVP_DigestVerify(v, sig, siglen, msg, len) == 1
                 ? 1
                 : -1;
    }
    EVP_MD_CTX_free(m);
    EVP_MD_CTX_free(v);
    return ok;
}

static void test_kt_load(void)
{
    for (size_t i = 0; i < N_KT; i++) {
        const struct kt *t = &g_kt[i];
        EVP_PKEY *pk = kt_load(t);
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        char group[32];

        fprintf(stderr, "    %s\n", t->identity);
        CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
        CU_ASSERT_STRING_EQUAL(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(pk)),
                               "shortcert");
        CU_ASSERT(EVP_PKEY_is_a(pk, t->is_a));
        CU_ASSERT_EQUAL(EVP_PKEY_get_base_id(pk), t->base_id);
        /* libcrypto's cached key info: all three from one get_params */
        CU_ASSERT_EQUAL(EVP_PKEY_get_bits(pk), t->want_bits);
        CU_ASSERT_EQUAL(EVP_PKEY_get_security_bits(pk), t->want_secbits);
        CU_ASSERT_EQUAL(EVP_PKEY_get_size(pk), t->want_size);
        if (t->arg) {
            CU_ASSERT(EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
                                                     group, sizeof(group), NULL));
            CU_ASSERT_STRING_EQUAL(group, "secp384r1");
        }
        CU_ASSERT(EVP_PKEY_eq(pk, t->key) == 1);
        CU_ASSERT(EVP_PKEY_eq(pk, g_key) != 1);
        /* a reference to this type is not taken as another type */
        CU_ASSERT(!EVP_PKEY_is_a(pk, strcmp(t->is_a, "EC") ? "EC" : "RSA"));
        /* the certificate matches, another one does not */
        CU_ASSERT(SSL_CTX_use_certificate_file(ctx, t->cert_path,
                                               SSL_FILETYPE_PEM) == 1);
        CU_ASSERT(SSL_CTX_use_PrivateKey_file(ctx, t->ref_path,
                                              SSL_FILETYPE_PEM) == 1);
        CU_ASSERT(SSL_CTX_check_private_key(ctx) == 1);
        CU_ASSERT(X509_check_private_key(t->cert, pk) == 1);
        CU_ASSERT(X509_check_private_key(g_cert, pk) != 1);
        SSL_CTX_free(ctx);
        EVP_PKEY_free(pk);
        errors_contain(NULL);
    }
}

/* Private parts never leave, never enter; the public half does. */
static void test_kt_export_import(void)
{
    for (size_t i = 0; i < N_KT; i++) {
        const struct kt *t = &g_kt[i];
        EVP_PKEY *pk = kt_load(t), *pub = NULL;
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *pctx;
        BIO *mem = BIO_new(BIO_s_mem());
        unsigned char *der = NULL;

        CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
        CU_ASSERT(EVP_PKEY_todata(pk, EVP_PKEY_KEYPAIR, &params) != 1);
        OSSL_PARAM_free(params);
        params = NULL;
        CU_ASSERT(PEM_write_bio_PrivateKey(mem, pk, NULL, NULL, 0, NULL, NULL) != 1);
        CU_ASSERT(i2d_PrivateKey(pk, &der) <= 0);
        OPENSSL_free(der);
        errors_contain(NULL);
        CU_ASSERT(EVP_PKEY_todata(pk, EVP_PKEY_PUBLIC_KEY, &params) == 1);
        CU_ASSERT_PTR_NULL(OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PRIV_KEY));
        CU_ASSERT_PTR_NULL(OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_D));
        OSSL_PARAM_free(params);
        params = NULL;

        /* import into shortcert: the private key is refused, the public
         * one is a key that verifies but cannot sign */
        pctx = EVP_PKEY_CTX_new_from_name(NULL, t->is_a, "provider=shortcert");
        CU_ASSERT_PTR_NOT_NULL_FATAL(pctx);
        CU_ASSERT(EVP_PKEY_todata(t->key, EVP_PKEY_KEYPAIR, &params) == 1);
        CU_ASSERT(EVP_PKEY_fromdata_init(pctx) == 1);
        CU_ASSERT(EVP_PKEY_fromdata(pctx, &pub, EVP_PKEY_KEYPAIR, params) != 1);
        CU_ASSERT(errors_contain("refusing to import a private"));
        OSSL_PARAM_free(params);
        params = NULL;
        CU_ASSERT(EVP_PKEY_todata(t->key, EVP_PKEY_PUBLIC_KEY, &params) == 1);
        CU_ASSERT(EVP_PKEY_fromdata(pctx, &pub, EVP_PKEY_PUBLIC_KEY, params) == 1);
        CU_ASSERT(pub && EVP_PKEY_eq(pub, t->key) == 1);
        if (pub) {
            EVP_MD_CTX *m = EVP_MD_CTX_new();

            CU_ASSERT(EVP_DigestSignInit_ex(m, NULL,
                                            strcmp(t->is_a, "ED25519") ? "SHA256"
                                                                       : NULL,
                                            NULL, "provider=shortcert", pub,
                                            NULL) != 1);
            CU_ASSERT(errors_contain("public key only"));
            EVP_MD_CTX_free(m);
        }
        OSSL_PARAM_free(params);
        EVP_PKEY_free(pub);
        EVP_PKEY_CTX_free(pctx);
        BIO_free(mem);
        EVP_PKEY_free(pk);
    }
}

static void test_kt_sign(void)
{
    uint8_t msg[CV_LEN];
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t sig[512];
    size_t siglen;

    make_cv(msg);
    for (size_t i = 0; i < N_KT; i++) {
        const struct kt *t = &g_kt[i];
        EVP_PKEY *pk = kt_load(t);
        unsigned before = fake_signer_requests(g_fake);

        fprintf(stderr, "    %s\n", t->identity);
        CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
        /* (3.0 keeps a context's key across inits: a fresh one per key) */
        EVP_MD_CTX_reset(m);
        if (t->base_id == EVP_PKEY_EC) {
            CU_ASSERT_EQUAL(kt_sign(t, pk, "SHA384", 0, msg, sizeof(msg)), 1);
            CU_ASSERT_EQUAL(kt_sign(t, pk, "SHA256", 0, msg, sizeof(msg)), 1);
            CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before + 2);
        } else if (t->base_id == EVP_PKEY_RSA) {
            static const char *const mds[] = { "SHA256", "SHA384", "SHA512" };

            for (int k = 0; k < 3; k++) {
                CU_ASSERT_EQUAL(kt_sign(t, pk, mds[k], RSA_PKCS1_PADDING, msg,
                                        sizeof(msg)), 1);
                CU_ASSERT_EQUAL(kt_sign(t, pk, mds[k], RSA_PKCS1_PSS_PADDING,
                                        msg, sizeof(msg)), 1);
            }
            /* no padding given: PKCS#1 v1.5 */
            CU_ASSERT_EQUAL(kt_sign(t, pk, "SHA256", 0, msg, sizeof(msg)), 1);
            CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before + 7);
            /* the PSS libssl asks for, as names (pad-mode "pss", saltlen
             * "digest"): fine; other salts, MGF1 digests and paddings are
             * refused before anything is sent */
            CU_ASSERT(EVP_DigestSignInit_ex(m, &pctx, "SHA256", NULL, NULL, pk,
                                            NULL) == 1);
            {
                OSSL_PARAM p[3] = {
                    OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE,
                                                     (char *)"pss", 0),
                    OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN,
                                                     (char *)"digest", 0),
                    OSSL_PARAM_construct_end(),
                };

                CU_ASSERT(EVP_PKEY_CTX_set_params(pctx, p) == 1);
            }
            siglen = sizeof(sig);
            CU_ASSERT(EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) == 1);
            CU_ASSERT(EVP_DigestSignInit_ex(m, &pctx, "SHA256", NULL, NULL, pk,
                                            NULL) == 1);
            CU_ASSERT(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1);
            CU_ASSERT(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_MAX) == 1);
            siglen = sizeof(sig);
            CU_ASSERT(EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) != 1);
            CU_ASSERT(errors_contain("RSA-PSS with salt length"));
            CU_ASSERT(EVP_DigestSignInit_ex(m, &pctx, "SHA256", NULL, NULL, pk,
                                            NULL) == 1);
            CU_ASSERT(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1);
            CU_ASSERT(EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA512", NULL) == 1);
            siglen = sizeof(sig);
            CU_ASSERT(EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) != 1);
            CU_ASSERT(errors_contain("MGF1 digest 'SHA512' is not offered"));
            CU_ASSERT(EVP_DigestSignInit_ex(m, &pctx, "SHA256", NULL, NULL, pk,
                                            NULL) == 1);
            CU_ASSERT(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_NO_PADDING) != 1);
            CU_ASSERT(errors_contain("RSA padding 3 is not offered"));
            CU_ASSERT(EVP_DigestSignInit_ex(m, NULL, "SHA1", NULL, NULL, pk,
                                            NULL) != 1);
            CU_ASSERT(errors_contain("digest 'SHA1' is not supported with RSA"));
            CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before + 8);
        } else {
            /* pure EdDSA: no digest, the message itself goes */
            EVP_MD_CTX *m2 = EVP_MD_CTX_new();

            CU_ASSERT_EQUAL(kt_sign(t, pk, NULL, 0, msg, sizeof(msg)), 1);
            CU_ASSERT(EVP_DigestSignInit_ex(m, NULL, NULL, NULL, NULL, pk, NULL) == 1);
            siglen = 0;
            CU_ASSERT(EVP_DigestSign(m, NULL, &siglen, msg, sizeof(msg)) == 1);
            CU_ASSERT_EQUAL(siglen, 64);
            CU_ASSERT(EVP_DigestSignInit_ex(m2, NULL, "SHA256", NULL, NULL, pk,
                                            NULL) != 1);
            EVP_MD_CTX_free(m2);
            CU_ASSERT(errors_contain("digest 'SHA256' is not supported with "
                                     "ED25519"));
            CU_ASSERT(EVP_PKEY_digestsign_supports_digest(pk, NULL, "SHA512",
                                                          NULL) != 1);
            errors_contain(NULL);
            CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before + 1);
        }
        /* the purpose check is the daemon's for every type */
        {
            X509 *x = make_cert(g_other_key, "x");

            X509_set_pubkey(x, pk);
            CU_ASSERT(X509_sign(x, pk, t->base_id == EVP_PKEY_ED25519
                                           ? NULL : EVP_sha256()) == 0);
            CU_ASSERT(errors_contain("not a TLS handshake signature input"));
            X509_free(x);
        }
        EVP_PKEY_free(pk);
    }
    EVP_MD_CTX_free(m);
}

/* algorithm-id for every scheme, as the default provider makes it. */
static void test_kt_algid(void)
{
    static const struct {
        size_t kt;
        const char *md;
        int pad;
    } cases[] = {
        { 0, "SHA384", 0 },
        { 1, "SHA256", RSA_PKCS1_PADDING },
        { 1, "SHA512", RSA_PKCS1_PADDING },
        { 1, "SHA256", RSA_PKCS1_PSS_PADDING },
        { 1, "SHA384", RSA_PKCS1_PSS_PADDING },
        { 2, "SHA512", RSA_PKCS1_PSS_PADDING },
        { 3, NULL, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct kt *t = &g_kt[cases[i].kt];
        EVP_PKEY *pk = kt_load(t);
        uint8_t ours[128], want[128];
        size_t n_ours = 0, n_want = 0;

        CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
        for (int who = 0; who < 2; who++) {
            EVP_MD_CTX *m = EVP_MD_CTX_new();
            EVP_PKEY_CTX *pctx = NULL;
            OSSL_PARAM p[2];

            p[0] = OSSL_PARAM_construct_octet_string(
                OSSL_SIGNATURE_PARAM_ALGORITHM_ID, who ? want : ours, 128);
            p[1] = OSSL_PARAM_construct_end();
            CU_ASSERT(EVP_DigestSignInit_ex(m, &pctx, cases[i].md, NULL, NULL,
                                            who ? t->key : pk, NULL) == 1);
            if (cases[i].pad) {
                CU_ASSERT(EVP_PKEY_CTX_set_rsa_padding(pctx, cases[i].pad) == 1);
                if (cases[i].pad == RSA_PKCS1_PSS_PADDING)
                    CU_ASSERT(EVP_PKEY_CTX_set_rsa_pss_saltlen(
                                  pctx, RSA_PSS_SALTLEN_DIGEST) == 1);
            }
            CU_ASSERT(EVP_PKEY_CTX_get_params(pctx, p) == 1);
            *(who ? &n_want : &n_ours) = p[0].return_size;
            EVP_MD_CTX_free(m);
        }
        CU_ASSERT(n_ours > 0 && n_ours == n_want &&
                  memcmp(ours, want, n_ours) == 0);
        EVP_PKEY_free(pk);
    }
    errors_contain(NULL);
}

static SSL_CTX *kt_server(const struct kt *t, const char *ciphers)
{
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());

    if (!sctx ||
        SSL_CTX_use_certificate_file(sctx, t->cert_path, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(sctx, t->ref_path, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(sctx) != 1 ||
        SSL_CTX_set_cipher_list(sctx, ciphers) != 1) {
        errors_contain(NULL);
        SSL_CTX_free(sctx);
        return NULL;
    }
    return sctx;
}

/* TLS 1.3 and 1.2 with every type; RSA: PSS in 1.3, PKCS#1 and PSS in 1.2
 * (forced by the client's sigalgs); one helper round trip each. */
static void test_kt_handshakes(void)
{
    for (size_t i = 0; i < N_KT; i++) {
        const struct kt *t = &g_kt[i];
        SSL_CTX *sctx = kt_server(t, "ECDHE+AESGCM");
        bool rsa = t->base_id == EVP_PKEY_RSA;
        int nid = 0;
        unsigned before = fake_signer_requests(g_fake);

        fprintf(stderr, "    %s\n", t->identity);
        CU_ASSERT_PTR_NOT_NULL_FATAL(sctx);
        CU_ASSERT(handshake_ex(sctx, TLS1_3_VERSION, t->cert, NULL, &nid, NULL));
        CU_ASSERT_EQUAL(nid, rsa ? NID_rsassaPss
                             : t->base_id == EVP_PKEY_EC ? NID_X9_62_id_ecPublicKey
                                                         : NID_ED25519);
        nid = 0;
        CU_ASSERT(handshake_ex(sctx, TLS1_2_VERSION, t->cert, NULL, &nid, NULL));
        CU_ASSERT(nid != 0);
        if (rsa) {
            nid = 0;
            CU_ASSERT(handshake_ex(sctx, TLS1_2_VERSION, t->cert,
                                   "RSA+SHA256:RSA+SHA384", &nid, NULL));
            CU_ASSERT_EQUAL(nid, NID_rsaEncryption);
            nid = 0;
            CU_ASSERT(handshake_ex(sctx, TLS1_2_VERSION, t->cert,
                                   "rsa_pss_rsae_sha384", &nid, NULL));
            CU_ASSERT_EQUAL(nid, NID_rsassaPss);
            nid = 0;
            CU_ASSERT(handshake_ex(sctx, TLS1_3_VERSION, t->cert,
                                   "rsa_pss_rsae_sha512", &nid, NULL));
            CU_ASSERT_EQUAL(nid, NID_rsassaPss);
            /* PKCS#1 is not allowed in TLS 1.3: nothing to agree on */
            CU_ASSERT_FALSE(handshake_ex(sctx, TLS1_3_VERSION, t->cert,
                                         "RSA+SHA256", &nid, NULL));
            errors_contain(NULL);
        }
        errors_contain(NULL);
        CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before + (rsa ? 5 : 2));
        SSL_CTX_free(sctx);
    }
}

/* A static RSA key exchange needs a decryption we do not offer: the
 * handshake fails, and says what to do. */
static void test_kt_static_rsa(void)
{
    const struct kt *t = &g_kt[1];
    SSL_CTX *sctx = kt_server(t, "AES128-GCM-SHA256");
    unsigned before = fake_signer_requests(g_fake);

    CU_ASSERT_PTR_NOT_NULL_FATAL(sctx);
    ERR_clear_error();
    CU_ASSERT_FALSE(handshake_ex(sctx, TLS1_2_VERSION, t->cert, NULL, NULL,
                                 "AES128-GCM-SHA256"));
    CU_ASSERT(errors_contain("RSA decryption (static RSA key exchange) is not "
                             "offered; configure ECDHE-only ciphers"));
    CU_ASSERT_EQUAL(fake_signer_requests(g_fake), before);
    SSL_CTX_free(sctx);

    /* a default-provider RSA key still decrypts (the table is ours only) */
    {
        EVP_PKEY_CTX *e = EVP_PKEY_CTX_new(t->key, NULL), *d;
        uint8_t ct[512], pt[512];
        size_t ctlen = sizeof(ct), ptlen = sizeof(pt);

        CU_ASSERT(EVP_PKEY_encrypt_init(e) == 1 &&
                  EVP_PKEY_encrypt(e, ct, &ctlen, (const uint8_t *)"hi", 2) == 1);
        d = EVP_PKEY_CTX_new(t->key, NULL);
        CU_ASSERT(EVP_PKEY_decrypt_init(d) == 1 &&
                  EVP_PKEY_decrypt(d, pt, &ptlen, ct, ctlen) == 1 && ptlen == 2);
        EVP_PKEY_CTX_free(e);
        EVP_PKEY_CTX_free(d);
    }
    errors_contain(NULL);
}

/* --- OSSL_STORE: shortcert:NAME ------------------------------------------- */

/* Everything a store URI yields, in order: types[] and the objects. */
struct store_items {
    int types[8];
    size_t n;
    EVP_PKEY *pkey;
    X509 *certs[4];
    size_t n_certs;
};

static void store_items_free(struct store_items *it)
{
    EVP_PKEY_free(it->pkey);
    for (size_t i = 0; i < it->n_certs; i++)
        X509_free(it->certs[i]);
    *it = (struct store_items){ 0 };
}

/* Open uri in ctx (NULL: the default context), expecting expect (0: all);
 * false if it would not open. */
static bool store_read(OSSL_LIB_CTX *ctx, const char *uri, int expect,
                       struct store_items *it)
{
    OSSL_STORE_CTX *st =
        OSSL_STORE_open_ex(uri, ctx, NULL, NULL, NULL, NULL, NULL, NULL);
    OSSL_STORE_INFO *info;

    *it = (struct store_items){ 0 };
    if (!st)
        return false;
    if (expect)
        CU_ASSERT(OSSL_STORE_expect(st, expect) == 1);
    while (!OSSL_STORE_eof(st) && it->n < 8) {
        int type;

        info = OSSL_STORE_load(st);
        if (!info)
            break;
        type = OSSL_STORE_INFO_get_type(info);
        it->types[it->n++] = type;
        if (type == OSSL_STORE_INFO_PKEY && !it->pkey)
            it->pkey = OSSL_STORE_INFO_get1_PKEY(info);
        if (type == OSSL_STORE_INFO_CERT && it->n_certs < 4)
            it->certs[it->n_certs++] = OSSL_STORE_INFO_get1_CERT(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    return true;
}

static void test_store_uri(void)
{
    struct store_items it;
    unsigned fetches = fake_signer_fetches(g_fake);

    CU_ASSERT_FATAL(store_read(NULL, "shortcert:" IDENTITY, 0, &it));
    CU_ASSERT_EQUAL(fake_signer_fetches(g_fake), fetches + 1);
    CU_ASSERT_EQUAL(it.n, 3);
    CU_ASSERT_EQUAL(it.types[0], OSSL_STORE_INFO_PKEY);
    CU_ASSERT_EQUAL(it.types[1], OSSL_STORE_INFO_CERT);
    CU_ASSERT_EQUAL(it.types[2], OSSL_STORE_INFO_CERT);
    CU_ASSERT_PTR_NOT_NULL_FATAL(it.pkey);
    CU_ASSERT_EQUAL_FATAL(it.n_certs, 2);
    /* The key is ours (signs through shortcertd), the leaf first. */
    CU_ASSERT_STRING_EQUAL(
        OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(it.pkey)), "shortcert");
    CU_ASSERT(EVP_PKEY_eq(it.pkey, g_key) == 1);
    CU_ASSERT_EQUAL(sign_cv(it.pkey, NULL, "SHA256"), 1);
    CU_ASSERT_EQUAL(X509_cmp(it.certs[0], g_cert), 0);
    CU_ASSERT_EQUAL(X509_cmp(it.certs[1], g_other_cert), 0);
    CU_ASSERT(X509_check_private_key(it.certs[0], it.pkey) == 1);
    store_items_free(&it);

    /* The scheme is case-insensitive; the rest is not. */
    CU_ASSERT_FATAL(store_read(NULL, "ShortCert:" IDENTITY,
                               OSSL_STORE_INFO_CERT, &it));
    CU_ASSERT_EQUAL(it.n, 2);
    CU_ASSERT_PTR_NULL(it.pkey);
    CU_ASSERT_EQUAL(it.n_certs, 2);
    store_items_free(&it);

    CU_ASSERT_FATAL(store_read(NULL, "shortcert:" IDENTITY,
                               OSSL_STORE_INFO_PKEY, &it));
    CU_ASSERT_EQUAL(it.n, 1);
    CU_ASSERT_PTR_NOT_NULL(it.pkey);
    store_items_free(&it);
    errors_contain(NULL);
}

static void test_store_bad_uris(void)
{
    static const char *const bad[] = {
        "shortcert:",
        "shortcert:api?socket=/tmp/x",
        "shortcert://api",
        "shortcert:api#x",
        "shortcert:a%70i",
        "shortcert:.api",
        "shortcert:api ",
        "shortcert:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    unsigned fetches = fake_signer_fetches(g_fake);
    struct store_items it;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_FALSE(store_read(NULL, bad[i], 0, &it));
        CU_ASSERT(errors_contain("not a shortcert URI"));
    }
    /* Nothing malformed reached the daemon. */
    CU_ASSERT_EQUAL(fake_signer_fetches(g_fake), fetches);
    /* An identity the daemon does not have. */
    CU_ASSERT_FALSE(store_read(NULL, "shortcert:web", 0, &it));
    CU_ASSERT(errors_contain("refused to give the key reference and "
                             "certificates for identity 'web': no such "
                             "identity"));
}

static void test_store_daemon_answers(void)
{
    static const struct {
        enum fake_mode mode;
        const char *want;
    } cases[] = {
        { FAKE_OLD, "is too old for shortcert:api URIs (it does not know the "
                    "FETCH request)" },
        { FAKE_REFUSE, "refused to give the key reference and certificates "
                       "for identity 'api': permission denied" },
        { FAKE_GARBAGE, "malformed reply from shortcertd" },
        { FAKE_CLOSE, "closed the connection without answering" },
        { FAKE_FETCH_OTHER, "sent the key reference of another identity" },
        { FAKE_FETCH_BADCERT, "sent an invalid certificate" },
    };
    char addr[64];
    struct fake_signer *f;
    struct store_items it;
    OSSL_LIB_CTX *ctx;

    addr_for(addr, sizeof(addr), "store");
    f = start_fake(addr, FAKE_OK);
    ctx = libctx_for(addr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_signer_set_mode(f, cases[i].mode);
        CU_ASSERT_FALSE(store_read(ctx, "shortcert:api", 0, &it));
        {
            bool ok = errors_contain(cases[i].want);

            if (!ok)
                fprintf(stderr, "    wanted: %s\n", cases[i].want);
            CU_ASSERT(ok);
        }
    }
    /* The same daemon, healthy again: the URI opens. */
    fake_signer_set_mode(f, FAKE_OK);
    CU_ASSERT(store_read(ctx, "shortcert:api", 0, &it));
    CU_ASSERT_PTR_NOT_NULL(it.pkey);
    store_items_free(&it);
    OSSL_LIB_CTX_free(ctx);
    fake_signer_stop(f);

    /* A leaf that does not carry the identity's key. */
    {
        X509 *certs[] = { g_other_cert };
        struct fake_signer_cfg cfg = {
            .address = addr, .identity = IDENTITY, .key = g_key,
            .mode = FAKE_OK, .certs = certs, .n_certs = 1,
        };

        addr_for(addr, sizeof(addr), "store-mismatch");
        CU_ASSERT_FATAL(fake_signer_start_thread(&cfg, &f) == 0);
        ctx = libctx_for(addr, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
        CU_ASSERT_FALSE(store_read(ctx, "shortcert:api", 0, &it));
        CU_ASSERT(errors_contain("does not hold its key"));
        OSSL_LIB_CTX_free(ctx);
        fake_signer_stop(f);
    }
}

/* --- setup ----------------------------------------------------------------- */

static void global_cleanup(void)
{
    fake_signer_stop(g_fake);
    EVP_PKEY_free(g_key);
    EVP_PKEY_free(g_other_key);
    X509_free(g_cert);
    X509_free(g_other_cert);
    free(g_ref_pem);
    /* Leave nothing behind in /tmp. */
    for (int i = 0; i < g_cnf_seq; i++) {
        char p[256];

        snprintf(p, sizeof(p), "%s/svc-%d.cnf", g_dir, i);
        unlink(p);
    }
    unlink(g_ref_path);
    unlink(g_cert_path);
    unlink(g_combined_path);
    for (size_t i = 0; i < N_KT; i++) {
        EVP_PKEY_free(g_kt[i].key);
        X509_free(g_kt[i].cert);
        free(g_kt[i].ref_pem);
        unlink(g_kt[i].ref_path);
        unlink(g_kt[i].cert_path);
    }
    rmdir(g_dir);
}

static int global_setup(void)
{
    char *cert_pem, *other_pem, *combined;
    size_t n;

    if (!mkdtemp(g_dir))
        return -1;
    addr_for(g_main_addr, sizeof(g_main_addr), "main");
    /* The process's default context is configured like a service's. */
    setenv("OPENSSL_CONF", service_cnf(g_main_addr, NULL), 1);
    if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1 ||
        !OSSL_PROVIDER_available(NULL, "shortcert")) {
        errors_contain(NULL);
        fprintf(stderr, "shortcert provider did not load from %s\n",
                secure_getenv("SHORTCERT_MODULE"));
        return -1;
    }
    /* After OpenSSL's own atexit handler, so ours runs first. */
    atexit(global_cleanup);

    g_key = EVP_PKEY_Q_keygen(NULL, "provider=default", "EC", "P-256");
    g_other_key = EVP_PKEY_Q_keygen(NULL, "provider=default", "EC", "P-256");
    if (!g_key || !g_other_key)
        return -1;
    g_cert = make_cert(g_key, "localhost");
    g_other_cert = make_cert(g_other_key, "other");
    g_ref_pem = ref_pem_for(g_key, IDENTITY, false);

    snprintf(g_ref_path, sizeof(g_ref_path), "%s/ref.pem", g_dir);
    snprintf(g_cert_path, sizeof(g_cert_path), "%s/cert.pem", g_dir);
    snprintf(g_combined_path, sizeof(g_combined_path), "%s/combined.pem", g_dir);
    write_file("ref.pem", g_ref_pem);
    cert_pem = pem_of_cert(g_cert);
    other_pem = pem_of_cert(g_other_cert);
    write_file("cert.pem", cert_pem);
    /* Leaf, a second certificate standing in for the chain, then the
     * reference (with its explanatory text): haproxy's crt file. */
    n = strlen(cert_pem) + strlen(other_pem) + strlen(g_ref_pem) + 1;
    combined = malloc(n);
    snprintf(combined, n, "%s%s%s", cert_pem, other_pem, g_ref_pem);
    write_file("combined.pem", combined);
    free(combined);
    free(cert_pem);
    free(other_pem);

    {
        struct fake_identity more[N_KT];
        X509 *certs[] = { g_cert, g_other_cert }; /* as start_fake() */
        struct fake_signer_cfg cfg = {
            .address = g_main_addr, .identity = IDENTITY, .key = g_key,
            .more = more, .n_more = N_KT, .certs = certs, .n_certs = 2,
            .mode = FAKE_OK,
        };

        for (size_t i = 0; i < N_KT; i++) {
            struct kt *t = &g_kt[i];
            char name[64], *pem;

            t->key = t->bits ? EVP_PKEY_Q_keygen(NULL, "provider=default",
                                                 "RSA", t->bits)
                     : t->arg ? EVP_PKEY_Q_keygen(NULL, "provider=default",
                                                  t->alg, t->arg)
                              : EVP_PKEY_Q_keygen(NULL, "provider=default",
                                                  t->alg);
            if (!t->key)
                return -1;
            t->cert = make_cert(t->key, "localhost");
            t->ref_pem = ref_pem_for(t->key, t->identity, false);
            snprintf(name, sizeof(name), "%s.ref", t->identity);
            snprintf(t->ref_path, sizeof(t->ref_path), "%s", write_file(name, t->ref_pem));
            snprintf(name, sizeof(name), "%s.crt", t->identity);
            pem = pem_of_cert(t->cert);
            snprintf(t->cert_path, sizeof(t->cert_path), "%s", write_file(name, pem));
            free(pem);
            more[i] = (struct fake_identity){ t->identity, t->key };
        }
        if (fake_signer_start_thread(&cfg, &g_fake) < 0)
            return -1;
    }
    return 0;
}

int cu_register(void)
{
    static const struct cu_test load[] = {
        { "PEM_read_bio_PrivateKey (text before BEGIN)", test_load_pem_read_bio },
        { "OSSL_DECODER", test_load_decoder },
        { "OSSL_STORE file", test_load_store },
        { "combined file, chain first", test_load_combined_chain_first },
        { "SSL_CTX_use_*_file + check", test_ssl_ctx_use_files },
        { "certificate match / mismatch", test_ssl_ctx_match },
        { "tampered reference", test_tampered_reference },
        { "default keys unaffected", test_default_keys_unaffected },
        { NULL, NULL },
    };
    static const struct cu_test keymgmt[] = {
        { "private export refused", test_export_private_refused },
        { "private import refused, public import", test_import },
        { NULL, NULL },
    };
    static const struct cu_test sign[] = {
        { "sign, size query, verify", test_sign_verify },
        { "update/final + dupctx", test_sign_update_final },
        { "digests, algorithm-id, purpose", test_sign_digests_and_algid },
        { "message too long", test_sign_too_long },
        { "TLS 1.3 and 1.2 handshakes", test_handshakes },
        { NULL, NULL },
    };
    static const struct cu_test procs[] = {
        { "fork: child signs", test_fork },
        { "euid change reconnects", test_euid_change },
        { "4 threads x 200", test_threads },
        { NULL, NULL },
    };
    static const struct cu_test keytypes[] = {
        { "load, key info, certificate match", test_kt_load },
        { "export/import: public only", test_kt_export_import },
        { "sign: schemes, PSS rules, Ed25519 digests", test_kt_sign },
        { "algorithm-id as the default provider's", test_kt_algid },
        { "TLS 1.3/1.2 handshakes, RSA PKCS#1/PSS", test_kt_handshakes },
        { "static RSA key exchange: clear error", test_kt_static_rsa },
        { NULL, NULL },
    };
    static const struct cu_test daemon[] = {
        { "daemon down", test_daemon_down },
        { "frozen daemon, back-off", test_frozen_backoff },
        { "refused", test_refused },
        { "peer not root", test_peer_not_root },
        { "bad replies, hang-up", test_bad_replies },
        { "daemon restart", test_daemon_restart },
        { "bad configuration", test_bad_config },
        { NULL, NULL },
    };
    static const struct cu_test store[] = {
        { "shortcert:NAME yields key, leaf, chain", test_store_uri },
        { "malformed URIs, unknown identity", test_store_bad_uris },
        { "daemon answers: old, refused, malformed", test_store_daemon_answers },
        { NULL, NULL },
    };

    if (global_setup() < 0)
        return -1;
    if (cu_add_suite("provider-load", load) < 0 ||
        cu_add_suite("provider-keymgmt", keymgmt) < 0 ||
        cu_add_suite("provider-sign", sign) < 0 ||
        cu_add_suite("provider-keytypes", keytypes) < 0 ||
        cu_add_suite("provider-processes", procs) < 0 ||
        cu_add_suite("provider-daemon", daemon) < 0 ||
        cu_add_suite("provider-store", store) < 0)
        return -1;
    return 0;
}
