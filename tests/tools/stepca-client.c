/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stepca-client: test-only driver of shortcertd's step-ca client
 * (helper/stepca.c), for tests/tools/stepca-e2e.sh against the real step-ca
 * 0.19 in the harness namespace.  Never for production: keys are written
 * to plain files.
 *
 *   stepca-client [-t TIMEOUT_S] [-v] CA_URL ROOT.pem COMMAND ...
 *
 *   sign -P PROV (-p PASSWORD_FILE | -j JWK_FILE) [-l LIFETIME_S]
 *        [-k p256|p384|rsa|ed25519] OUT NAME...
 *        new key + POST /1.0/sign -> OUT.key, OUT.crt
 *   renew-mtls IN OUT       IN.crt/IN.key -> OUT.crt (OUT.key = IN.key)
 *   renew-token IN OUT
 *   rekey IN OUT            new P-256 key -> OUT.key, OUT.crt
 *   renew-pair [-w reuse|sessions] IN1 IN2 OUT1 OUT2
 *        both renewed over mTLS, back to back, through one handle; -w
 *        drops a piece of connection hygiene (the control experiment)
 *   bench -P PROV -p PASSWORD_FILE [-n N] [-T THREADS] [-l LIFETIME_S]
 *        [-C CA_PID]
 *        enrolls N identities, then renews each once: mTLS and token,
 *        sequentially and with THREADS threads (a handle each), and the
 *        CA's raw capacity: THREADS plain libcurl clients renewing one
 *        certificate each over kept-alive mTLS connections, and its raw
 *        token capacity: pre-minted tokens posted over kept-alive
 *        connections without any checks; with -C, the CPU time per
 *        renewal of this process and of the CA
 *
 * Each success prints "ok <command> ..." with the serial, the subject and
 * the time taken; a failure prints "error <command> errno=<NAME> <text>"
 * and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "log.h"
#include "sec.h"
#include "stepca.h"

static const char *ca_url, *ca_root;
static long timeout_s = 30;
static long ca_pid; /* bench: also account the CA's CPU time */

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *errname(int r)
{
    const char *n = strerrorname_np(r < 0 ? -r : r);

    return n ? n : "?";
}

static EVP_PKEY *gen_key(const char *type)
{
    if (strcmp(type, "p256") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (strcmp(type, "p384") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (strcmp(type, "rsa") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (strcmp(type, "ed25519") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return NULL;
}

static int write_file(const char *path, const char *data, size_t len,
                      mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = write(fd, data, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -EIO;
}

static int write_key(const char *prefix, EVP_PKEY *k)
{
    char path[4096];
    FILE *f;
    int fd, ok;

    snprintf(path, sizeof(path), "%s.key", prefix);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -errno;
    }
    ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    return fclose(f) == 0 && ok ? 0 : -EIO;
}

static int write_chain(const char *prefix, const struct stepca_result *res)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s.crt", prefix);
    return write_file(path, res->chain_pem, res->chain_len, 0644);
}

struct ident {
    X509 *leaf;
    STACK_OF(X509) *chain;
    EVP_PKEY *key;
};

static void ident_done(struct ident *id)
{
    X509_free(id->leaf);
    sk_X509_pop_free(id->chain, X509_free);
    EVP_PKEY_free(id->key);
    *id = (struct ident){ 0 };
}

/* PREFIX.crt (leaf and chain) and PREFIX.key for plain libcurl clients. */
static int write_ident(const char *prefix, const struct ident *id)
{
    struct stepca_result res = { 0 };
    BIO *b = BIO_new(BIO_s_mem());
    const char *pem;
    long len;
    int r = -ENOMEM;

    if (!b)
        return r;
    PEM_write_bio_X509(b, id->leaf);
    for (int i = 0; i < sk_X509_num(id->chain); i++)
        PEM_write_bio_X509(b, sk_X509_value(id->chain, i));
    len = BIO_get_mem_data(b, &pem);
    res.chain_pem = (char *)pem;
    res.chain_len = (size_t)len;
    r = write_chain(prefix, &res);
    if (r >= 0)
        r = write_key(prefix, id->key);
    BIO_free(b);
    return r;
}

static int chain_from_pem(const char *pem, size_t len, struct ident *id)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x;

    if (!b)
        return -ENOMEM;
    id->leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    id->chain = sk_X509_new_null();
    while (id->leaf && id->chain &&
           (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
        sk_X509_push(id->chain, x);
    ERR_clear_error();
    BIO_free(b);
    return id->leaf && id->chain ? 0 : -EBADMSG;
}

static int load_ident(const char *prefix, struct ident *id)
{
    char path[4096];
    FILE *f;
    char *buf;
    long n;
    int r;

    snprintf(path, sizeof(path), "%s.crt", prefix);
    f = fopen(path, "r");
    if (!f)
        return -errno;
    buf = malloc(1 << 20);
    n = buf ? (long)fread(buf, 1, (1 << 20) - 1, f) : -1;
    fclose(f);
    if (n <= 0) {
        free(buf);
        return -EIO;
    }
    r = chain_from_pem(buf, (size_t)n, id);
    free(buf);
    if (r < 0)
        return r;
    snprintf(path, sizeof(path), "%s.key", prefix);
    f = fopen(path, "r");
    if (!f)
        return -errno;
    id->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return id->key ? 0 : -EBADMSG;
}

static void describe(const struct stepca_result *res, char *out, size_t n)
{
    struct ident id = { 0 };
    char subj[256] = "?", *hex = NULL;
    BIGNUM *bn;

    if (chain_from_pem(res->chain_pem, res->chain_len, &id) == 0) {
        X509_NAME_oneline(X509_get_subject_name(id.leaf), subj, sizeof(subj));
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(id.leaf), NULL);
        hex = bn ? BN_bn2hex(bn) : NULL;
        BN_free(bn);
    }
    snprintf(out, n, "serial=%s subject=%s certs=%d", hex ? hex : "?", subj,
             id.chain ? sk_X509_num(id.chain) + 1 : 0);
    OPENSSL_free(hex);
    ident_done(&id);
}

static int report(const char *cmd, int r, const char *err,
                  const struct stepca_result *res, double ms)
{
    char d[512];

    if (r < 0) {
        printf("error %s errno=%s %s\n", cmd, errname(r), err);
        return 1;
    }
    describe(res, d, sizeof(d));
    printf("ok %s %s ms=%.1f\n", cmd, d, ms);
    return 0;
}

static int new_handle(struct stepca **ret)
{
    int r = stepca_new(ca_url, ca_root, timeout_s, ret);

    if (r < 0)
        fprintf(stderr, "stepca_new: %s\n", strerror(-r));
    return r;
}

static int load_prov(struct stepca *c, const char *name, const char *pwfile,
                     const char *jwkfile, struct stepca_provisioner **ret,
                     double *ms)
{
    _cleanup_secret_ struct secret pw = { 0 };
    char err[1024] = "";
    double t0 = now_ms();
    int r;

    if (pwfile) {
        r = sec_read_file(pwfile, 4096, &pw);
        if (r < 0) {
            printf("error load errno=%s cannot read %s\n", errname(r), pwfile);
            return r;
        }
    }
    r = stepca_provisioner_load(c, name, pwfile ? &pw : NULL, jwkfile, ret,
                                err, sizeof(err));
    if (ms)
        *ms = now_ms() - t0;
    if (r < 0)
        printf("error load errno=%s %s\n", errname(r), err);
    return r;
}

/* ------------------------------------------------------------ commands */

static int cmd_sign(int argc, char **argv)
{
    const char *prov = NULL, *pwfile = NULL, *jwkfile = NULL, *kt = "p256";
    struct stepca_provisioner *p = NULL;
    struct stepca_result res = { 0 };
    struct stepca *c = NULL;
    long long life = 0;
    char err[1024] = "";
    EVP_PKEY *k = NULL;
    double t0, lms = 0;
    int opt, r, rc = 1;

    optind = 1;
    while ((opt = getopt(argc, argv, "P:p:j:l:k:")) != -1) {
        switch (opt) {
        case 'P': prov = optarg; break;
        case 'p': pwfile = optarg; break;
        case 'j': jwkfile = optarg; break;
        case 'l': life = strtoll(optarg, NULL, 10); break;
        case 'k': kt = optarg; break;
        default: return 2;
        }
    }
    if (!prov || argc - optind < 2)
        return 2;
    if (new_handle(&c) < 0)
        return 1;
    if (load_prov(c, prov, pwfile, jwkfile, &p, &lms) < 0)
        goto out;
    printf("ok load kid=%s ms=%.1f\n", stepca_provisioner_kid(p), lms);
    k = gen_key(kt);
    if (!k)
        goto out;
    t0 = now_ms();
    r = stepca_sign_jwk(c, p, k, (const char *const *)argv + optind + 1,
                        (size_t)(argc - optind - 1), life, &res, err,
                        sizeof(err));
    rc = report("sign", r, err, &res, now_ms() - t0);
    if (r == 0 && (write_key(argv[optind], k) < 0 ||
                   write_chain(argv[optind], &res) < 0))
        rc = 1;
out:
    stepca_result_done(&res);
    EVP_PKEY_free(k);
    stepca_provisioner_free(p);
    stepca_free(c);
    return rc;
}

enum op { OP_MTLS, OP_TOKEN, OP_REKEY };

static int renew_one(struct stepca *c, enum op op, struct ident *id,
                     EVP_PKEY *new_key, struct stepca_result *res, char *err,
                     size_t errlen)
{
    switch (op) {
    case OP_MTLS:
        return stepca_renew_mtls(c, id->leaf, id->chain, id->key, res, err,
                                 errlen);
    case OP_TOKEN:
        return stepca_renew_token(c, id->leaf, id->chain, id->key, res, err,
                                  errlen);
    case OP_REKEY:
        return stepca_rekey_mtls(c, id->leaf, id->chain, id->key, new_key, res,
                                 err, errlen);
    }
    return -EINVAL;
}

static int cmd_renew(enum op op, const char *name, int argc, char **argv)
{
    struct stepca_result res = { 0 };
    struct ident id = { 0 };
    struct stepca *c = NULL;
    EVP_PKEY *nk = NULL;
    char err[1024] = "";
    double t0;
    int r, rc = 1;

    if (argc != 3)
        return 2;
    r = load_ident(argv[1], &id);
    if (r < 0) {
        printf("error %s errno=%s cannot load %s\n", name, errname(r),
               argv[1]);
        return 1;
    }
    if (new_handle(&c) < 0)
        goto out;
    if (op == OP_REKEY && !(nk = gen_key("p256")))
        goto out;
    t0 = now_ms();
    r = renew_one(c, op, &id, nk, &res, err, sizeof(err));
    rc = report(name, r, err, &res, now_ms() - t0);
    if (r == 0) {
        if (write_chain(argv[2], &res) < 0 ||
            write_key(argv[2], nk ? nk : id.key) < 0)
            rc = 1;
    }
out:
    stepca_result_done(&res);
    EVP_PKEY_free(nk);
    ident_done(&id);
    stepca_free(c);
    return rc;
}

static int cmd_renew_pair(int argc, char **argv)
{
    struct ident a = { 0 }, b = { 0 };
    struct stepca *c = NULL;
    unsigned weaken = 0;
    int opt, rc = 0;

    optind = 1;
    while ((opt = getopt(argc, argv, "w:")) != -1) {
        if (opt != 'w')
            return 2;
        if (strcmp(optarg, "reuse") == 0)
            weaken |= STEPCA_TEST_REUSE;
        else if (strcmp(optarg, "sessions") == 0)
            weaken |= STEPCA_TEST_SESSIONS;
        else
            return 2;
    }
    if (argc - optind != 4)
        return 2;
    if (load_ident(argv[optind], &a) < 0 ||
        load_ident(argv[optind + 1], &b) < 0) {
        printf("error renew-pair cannot load the identities\n");
        rc = 1;
        goto out;
    }
    if (new_handle(&c) < 0) {
        rc = 1;
        goto out;
    }
    if (weaken)
        stepca_test_weaken_mtls(c, weaken);
    for (int i = 0; i < 2; i++) {
        struct stepca_result res = { 0 };
        char err[1024] = "", what[32];
        double t0 = now_ms();
        int r;

        snprintf(what, sizeof(what), "renew-pair[%d]", i + 1);
        r = renew_one(c, OP_MTLS, i ? &b : &a, NULL, &res, err, sizeof(err));
        rc |= report(what, r, err, &res, now_ms() - t0);
        if (r == 0 && write_chain(argv[optind + 2 + i], &res) < 0)
            rc = 1;
        stepca_result_done(&res);
    }
out:
    ident_done(&a);
    ident_done(&b);
    stepca_free(c);
    return rc;
}

/* ---------------------------------------------------------------- bench */

struct bench_job {
    enum op op;
    struct ident *ids;
    size_t from, step, n; /* ids from, from+step, ... below n */
    double *lat;          /* per identity, ms */
    int failures;
    char first_err[512];
    /* raw mode: plain libcurl, kept alive, no checks: renew one
     * certificate `count` times over mTLS, or, with tokens, post the
     * pre-minted token of each identity */
    bool raw;
    const char *crt_file, *key_file;
    /* raw fresh mode (ids_dir set): identity i's own files ids_dir/i.crt
     * and ids_dir/i.key, a new connection and a full handshake each: the
     * least work any client renewing distinct identities over mTLS costs
     * the CA */
    const char *ids_dir;
    size_t count;
    char **tokens;
};

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
    return s * n;
}

static void *bench_thread(void *ud)
{
    struct bench_job *j = ud;
    struct stepca *c = NULL;

    if (j->raw) {
        CURL *h = curl_easy_init();
        char url[1024];

        snprintf(url, sizeof(url), "%s/1.0/renew", ca_url);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CAINFO, ca_root);
        if (!j->tokens) {
            curl_easy_setopt(h, CURLOPT_SSLCERT, j->crt_file);
            curl_easy_setopt(h, CURLOPT_SSLKEY, j->key_file);
        }
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        if (j->ids_dir) {
            curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
            curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
            curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
        }
        for (size_t i = 0; i < j->count; i++) {
            size_t id = j->from + i * j->step;
            struct curl_slist *hd = NULL;
            double t0 = now_ms();
            long st = 0;
            CURLcode cc;

            if (j->ids_dir) {
                char f[4096];

                snprintf(f, sizeof(f), "%s/%zu.crt", j->ids_dir, id);
                curl_easy_setopt(h, CURLOPT_SSLCERT, f);
                snprintf(f, sizeof(f), "%s/%zu.key", j->ids_dir, id);
                curl_easy_setopt(h, CURLOPT_SSLKEY, f);
            }
            if (j->tokens) {
                hd = curl_slist_append(NULL, j->tokens[id]);
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
            }
            cc = curl_easy_perform(h);
            curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
            curl_slist_free_all(hd);
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
            j->lat[id] = now_ms() - t0;
            if (cc != CURLE_OK || st != 201) {
                if (!j->failures++)
                    snprintf(j->first_err, sizeof(j->first_err),
                             "curl %d HTTP %ld", (int)cc, st);
            }
        }
        curl_easy_cleanup(h);
        return NULL;
    }
    if (stepca_new(ca_url, ca_root, timeout_s, &c) < 0) {
        j->failures++;
        return NULL;
    }
    for (size_t i = j->from; i < j->n; i += j->step) {
        struct stepca_result res = { 0 };
        char err[512];
        double t0 = now_ms();
        int r = renew_one(c, j->op, &j->ids[i], NULL, &res, err, sizeof(err));

        j->lat[i] = now_ms() - t0;
        if (r < 0 && !j->failures++)
            snprintf(j->first_err, sizeof(j->first_err), "%s", err);
        stepca_result_done(&res);
    }
    stepca_free(c);
    return NULL;
}

/* CPU time (ms) of this process, and of the CA when ca_pid is set. */
static double self_cpu_ms(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static double ca_cpu_ms(void)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t n;

    if (ca_pid <= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%ld/stat", ca_pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    /* fields 14 and 15 (utime, stime) are the 12th and 13th after ") " */
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
        return 0;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int run_phase(const char *label, enum op op, bool raw,
                     struct ident *ids, size_t n, unsigned threads,
                     const char *crt_file, const char *key_file,
                     const char *ids_dir)
{
    char **tokens = NULL;

    struct bench_job *jobs = calloc(threads, sizeof(*jobs));
    pthread_t *th = calloc(threads, sizeof(*th));
    double *lat = calloc(n, sizeof(double));
    double t0, wall, cpu0, ca0;
    int failures = 0;

    if (!jobs || !th || !lat)
        return -1;
    if (raw && op == OP_TOKEN) {
        /* minted before the clock starts: this measures the CA alone */
        char aud[1024];

        snprintf(aud, sizeof(aud), "%s/1.0/renew", ca_url);
        tokens = calloc(n, sizeof(char *));
        for (size_t i = 0; tokens && i < n; i++) {
            char *tok = NULL;

            if (stepca_make_renew_token(ids[i].leaf, ids[i].chain, ids[i].key,
                                        aud, (int64_t)time(NULL), &tok) < 0 ||
                asprintf(&tokens[i], "Authorization: Bearer %s", tok) < 0)
                return -1;
            free(tok);
        }
        if (!tokens)
            return -1;
    }
    for (unsigned t = 0; t < threads; t++) {
        jobs[t] = (struct bench_job){ .op = op, .ids = ids, .from = t,
                                      .step = threads, .n = n, .lat = lat,
                                      .raw = raw, .crt_file = crt_file,
                                      .key_file = key_file, .tokens = tokens,
                                      .ids_dir = ids_dir };
        if (raw)
            jobs[t].count = (n - t + threads - 1) / threads;
    }
    cpu0 = self_cpu_ms();
    ca0 = ca_cpu_ms();
    t0 = now_ms();
    for (unsigned t = 0; t < threads; t++)
        pthread_create(&th[t], NULL, bench_thread, &jobs[t]);
    for (unsigned t = 0; t < threads; t++)
        pthread_join(th[t], NULL);
    wall = now_ms() - t0;
    cpu0 = self_cpu_ms() - cpu0;
    ca0 = ca_cpu_ms() - ca0;
    for (unsigned t = 0; t < threads; t++) {
        failures += jobs[t].failures;
        if (jobs[t].failures)
            fprintf(stderr, "%s: thread %u: %d failure(s), first: %s\n",
                    label, t, jobs[t].failures, jobs[t].first_err);
    }
    qsort(lat, n, sizeof(double), cmp_double);
    printf("bench %-14s threads=%u n=%zu failures=%d wall_ms=%.0f "
           "rate_per_s=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f "
           "client_cpu_ms_per_op=%.2f ca_cpu_ms_per_op=%.2f\n",
           label, threads, n, failures, wall, (double)n * 1000.0 / wall,
           lat[n / 2], lat[n * 9 / 10], lat[n * 99 / 100], lat[n - 1],
           cpu0 / (double)n, ca0 / (double)n);
    for (size_t i = 0; tokens && i < n; i++)
        free(tokens[i]);
    free(tokens);
    free(jobs);
    free(th);
    free(lat);
    return failures ? 1 : 0;
}

static int cmd_bench(int argc, char **argv)
{
    const char *prov = NULL, *pwfile = NULL;
    struct stepca_provisioner *p = NULL;
    struct stepca *c = NULL;
    struct ident *ids = NULL;
    unsigned threads = 4;
    size_t n = 200;
    long long life = 3600;
    double t0;
    int opt, rc = 1;
    char dir[] = "/tmp/stepca-bench.XXXXXX", crt[600], key[600];

    optind = 1;
    while ((opt = getopt(argc, argv, "P:p:n:T:l:C:")) != -1) {
        switch (opt) {
        case 'C': ca_pid = strtol(optarg, NULL, 10); break;
        case 'P': prov = optarg; break;
        case 'p': pwfile = optarg; break;
        case 'n': n = (size_t)strtoul(optarg, NULL, 10); break;
        case 'T': threads = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'l': life = strtoll(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    if (!prov || !pwfile || n < 2 || threads < 1)
        return 2;
    ids = calloc(n, sizeof(*ids));
    if (!ids || new_handle(&c) < 0 ||
        load_prov(c, prov, pwfile, NULL, &p, NULL) < 0)
        goto out;
    t0 = now_ms();
    for (size_t i = 0; i < n; i++) {
        struct stepca_result res = { 0 };
        char name[64], err[1024];
        const char *names[1] = { name };
        int r;

        snprintf(name, sizeof(name), "id-%zu.bench.internal.test", i);
        ids[i].key = gen_key("p256");
        r = stepca_sign_jwk(c, p, ids[i].key, names, 1, life, &res, err,
                            sizeof(err));
        if (r < 0 ||
            chain_from_pem(res.chain_pem, res.chain_len, &ids[i]) < 0) {
            printf("error bench-enroll errno=%s %s\n", errname(r), err);
            stepca_result_done(&res);
            goto out;
        }
        stepca_result_done(&res);
    }
    printf("bench enrolled n=%zu wall_ms=%.0f rate_per_s=%.1f\n", n,
           now_ms() - t0, (double)n * 1000.0 / (now_ms() - t0));
    /* files of identity 0 for the raw libcurl clients */
    if (!mkdtemp(dir))
        goto out;
    snprintf(crt, sizeof(crt), "%s/raw", dir);
    if (write_ident(crt, &ids[0]) < 0) {
        rmdir(dir);
        goto out;
    }
    snprintf(key, sizeof(key), "%s/raw.key", dir);
    snprintf(crt, sizeof(crt), "%s/raw.crt", dir);
    /* every identity's own files for the raw fresh-connection clients */
    for (size_t i = 0; i < n; i++) {
        char prefix[700];

        snprintf(prefix, sizeof(prefix), "%s/%zu", dir, i);
        if (write_ident(prefix, &ids[i]) < 0) {
            rc = 1;
            goto out_files;
        }
    }

    rc = 0;
    /* alternate the variants so that drift hits them alike */
    for (int round = 0; round < 2; round++) {
        rc |= run_phase("mtls-seq", OP_MTLS, false, ids, n, 1, NULL, NULL,
                        NULL);
        rc |= run_phase("token-seq", OP_TOKEN, false, ids, n, 1, NULL, NULL,
                        NULL);
        rc |= run_phase("raw-keepalive", OP_MTLS, true, ids, n, 1, crt, key,
                        NULL);
        rc |= run_phase("raw-token-seq", OP_TOKEN, true, ids, n, 1, NULL,
                        NULL, NULL);
        rc |= run_phase("mtls-par", OP_MTLS, false, ids, n, threads, NULL,
                        NULL, NULL);
        rc |= run_phase("token-par", OP_TOKEN, false, ids, n, threads, NULL,
                        NULL, NULL);
        rc |= run_phase("raw-par", OP_MTLS, true, ids, n, threads, crt, key,
                        NULL);
        rc |= run_phase("raw-token-par", OP_TOKEN, true, ids, n, threads, NULL,
                        NULL, NULL);
        rc |= run_phase("raw-fresh-par", OP_MTLS, true, ids, n, threads, NULL,
                        NULL, dir);
    }
out_files:
    unlink(crt);
    unlink(key);
    for (size_t i = 0; i < n; i++) {
        char f[700];

        snprintf(f, sizeof(f), "%s/%zu.crt", dir, i);
        unlink(f);
        snprintf(f, sizeof(f), "%s/%zu.key", dir, i);
        unlink(f);
    }
    rmdir(dir);
out:
    for (size_t i = 0; ids && i < n; i++)
        ident_done(&ids[i]);
    free(ids);
    stepca_provisioner_free(p);
    stepca_free(c);
    return rc;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: stepca-client [-t TIMEOUT_S] [-v] CA_URL ROOT.pem "
            "COMMAND ...\n"
            "  sign -P PROV (-p PASSWORD_FILE | -j JWK_FILE) [-l LIFETIME_S] "
            "[-k p256|p384|rsa|ed25519] OUT NAME...\n"
            "  renew-mtls IN OUT | renew-token IN OUT | rekey IN OUT\n"
            "  renew-pair [-w reuse|sessions] IN1 IN2 OUT1 OUT2\n"
            "  bench -P PROV -p PASSWORD_FILE [-n N] [-T THREADS] "
            "[-l LIFETIME_S] "
            "[-C CA_PID]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *cmd;
    int opt, rc;

    while ((opt = getopt(argc, argv, "+t:v")) != -1) {
        switch (opt) {
        case 't': timeout_s = strtol(optarg, NULL, 10); break;
        case 'v': hlp_log_set_level(LOG_DEBUG); break;
        default: return usage();
        }
    }
    if (argc - optind < 3)
        return usage();
    ca_url = argv[optind];
    ca_root = argv[optind + 1];
    cmd = argv[optind + 2];
    argc -= optind + 2;
    argv += optind + 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(cmd, "sign") == 0)
        rc = cmd_sign(argc, argv);
    else if (strcmp(cmd, "renew-mtls") == 0)
        rc = cmd_renew(OP_MTLS, cmd, argc, argv);
    else if (strcmp(cmd, "renew-token") == 0)
        rc = cmd_renew(OP_TOKEN, cmd, argc, argv);
    else if (strcmp(cmd, "rekey") == 0)
        rc = cmd_renew(OP_REKEY, cmd, argc, argv);
    else if (strcmp(cmd, "renew-pair") == 0)
        rc = cmd_renew_pair(argc, argv);
    else if (strcmp(cmd, "bench") == 0)
        rc = cmd_bench(argc, argv);
    else
        rc = 2;
    curl_global_cleanup();
    return rc == 2 ? usage() : rc;
}
