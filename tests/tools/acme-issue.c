/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acme-issue: test-only driver of shortcertd's ACME client (helper/acme.c)
 * and http-01 responder (helper/http01.c), for end-to-end runs against a
 * real step-ca or Pebble inside a private network namespace.
 *
 *   acme-issue [-l LISTEN] [-t LIFETIME_S] [-n COUNT] [-a ACCOUNT.pem]
 *              [-k rsa|p256|p384|ed25519] [-p MAX_POLLS] [-v] DIRECTORY_URL ROOT.pem
 *              OUT_PREFIX NAME...
 *
 * Generates a fresh certificate key per issuance (EC P-256 by default) and
 * one account key (or loads/creates ACCOUNT.pem), runs acme_issue() COUNT
 * times and writes the last result to OUT_PREFIX.key (PKCS#8 PEM, 0600)
 * and OUT_PREFIX.crt (chain PEM, leaf first).  Prints the time of each
 * acme_issue() call and min/median/max.  Exit status 0 when all succeeded.
 * Never for production: keys are written to plain files.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "acme.h"
#include "http01.h"
#include "log.h"

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

static int write_key(const char *path, EVP_PKEY *k)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f;
    int ok;

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

static EVP_PKEY *account_key(const char *path)
{
    EVP_PKEY *k = NULL;
    FILE *f;

    if (!path)
        return gen_key("p256");
    f = fopen(path, "r");
    if (f) {
        k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        return k;
    }
    k = gen_key("p256");
    if (k && write_key(path, k) < 0) {
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: acme-issue [-l LISTEN] [-t LIFETIME_S] [-n COUNT] "
            "[-a ACCOUNT.pem] [-k rsa|p256|p384|ed25519] [-p MAX_POLLS] [-v]\n"
            "                  DIRECTORY_URL ROOT.pem OUT_PREFIX NAME...\n");
}

int main(int argc, char **argv)
{
    const char *listen = "[::]:80", *acct_path = NULL, *ktype = "p256";
    long long lifetime = 0;
    int count = 1, c, failed = 0, max_polls = 0;
    struct http01 *h = NULL;
    EVP_PKEY *acct;
    double *times;
    char path[4096];

    while ((c = getopt(argc, argv, "l:t:n:a:k:p:vh")) != -1) {
        switch (c) {
        case 'l':
            listen = optarg;
            break;
        case 't':
            lifetime = strtoll(optarg, NULL, 10);
            break;
        case 'n':
            count = atoi(optarg);
            break;
        case 'a':
            acct_path = optarg;
            break;
        case 'k':
            ktype = optarg;
            break;
        case 'p':
            max_polls = atoi(optarg);
            break;
        case 'v':
            hlp_log_set_level(LOG_DEBUG);
            break;
        default:
            usage();
            return 2;
        }
    }
    if (argc - optind < 4 || count < 1 || lifetime < 0) {
        usage();
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    acct = account_key(acct_path);
    if (!acct) {
        fprintf(stderr, "acme-issue: cannot get an account key\n");
        return 1;
    }
    if (http01_new(listen, &h) < 0) {
        fprintf(stderr, "acme-issue: bad listen address '%s'\n", listen);
        return 1;
    }
    times = calloc((size_t)count, sizeof(double));
    if (!times)
        return 1;
    for (int i = 0; i < count; i++) {
        struct acme_request req = {
            .directory_url = argv[optind],
            .ca_root_file = argv[optind + 1],
            .account_key = acct,
            .names = (const char *const *)&argv[optind + 3],
            .n_names = (size_t)(argc - optind - 3),
            .lifetime_s = lifetime,
            .responder = h,
            .max_polls = max_polls,
        };
        struct acme_result res = { 0 };
        char err[512];
        double t0, t1;
        FILE *f;
        int r;

        req.cert_key = gen_key(ktype);
        if (!req.cert_key) {
            fprintf(stderr, "acme-issue: bad key type '%s'\n", ktype);
            return 2;
        }
        t0 = now_s();
        r = acme_issue(&req, &res, err, sizeof(err));
        t1 = now_s();
        times[i] = t1 - t0;
        if (r < 0) {
            fprintf(stderr, "issuance %d FAILED after %.3f s: %s (%s)\n",
                    i + 1, times[i], err, strerror(-r));
            failed++;
            EVP_PKEY_free(req.cert_key);
            continue;
        }
        printf("issuance %d: %.3f s, %zu bytes of chain\n", i + 1, times[i],
               res.chain_len);
        if (i == count - 1) {
            snprintf(path, sizeof(path), "%s.key", argv[optind + 2]);
            if (write_key(path, req.cert_key) < 0)
                failed++;
            snprintf(path, sizeof(path), "%s.crt", argv[optind + 2]);
            f = fopen(path, "w");
            if (!f || fwrite(res.chain_pem, 1, res.chain_len, f) !=
                          res.chain_len)
                failed++;
            if (f)
                fclose(f);
        }
        acme_result_done(&res);
        EVP_PKEY_free(req.cert_key);
    }
    qsort(times, (size_t)count, sizeof(double), cmp_double);
    printf("%d issuance(s), %d failed: min %.3f s, median %.3f s, max %.3f s\n",
           count, failed, times[0],
           count % 2 ? times[count / 2]
                     : (times[count / 2 - 1] + times[count / 2]) / 2,
           times[count - 1]);
    free(times);
    http01_free(h);
    EVP_PKEY_free(acct);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
