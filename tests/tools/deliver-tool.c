/* SPDX-License-Identifier: Apache-2.0 */
/*
 * deliver-tool: test-only driver of helper/deliver.c (the reload actions
 * and the live endpoint check), for the integration tests and manual runs.
 *
 *   deliver-tool signal PIDFILE SIG             SIG: HUP, SIGHUP or a number
 *   deliver-tool exec TIMEOUT_MS /ABS/PROG [ARG...]
 *   deliver-tool check HOST:PORT SNI|- CERTFILE [TIMEOUT_MS]
 *   deliver-tool systemd-reload UNIT TIMEOUT_MS   (DBUS_SYSTEM_BUS_ADDRESS
 *                                                  picks the bus)
 *
 * check compares the leaf HOST:PORT serves with the first certificate of
 * CERTFILE (PEM) and prints "match SERIAL" or "mismatch SERIAL" (the one
 * served).  Exit status: 0 done / match, 1 mismatch, 2 the action or the
 * check failed (reason on stderr), 64 usage.  Prints how long the call took
 * (ms) on stderr with -t before the subcommand.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "deliver.h"
#include "log.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: deliver-tool [-t] signal PIDFILE SIG\n"
            "       deliver-tool [-t] exec TIMEOUT_MS /ABS/PROG [ARG...]\n"
            "       deliver-tool [-t] check HOST:PORT SNI|- CERTFILE [TIMEOUT_MS]\n"
            "       deliver-tool [-t] systemd-reload UNIT TIMEOUT_MS\n");
    return 64;
}

static int parse_long(const char *s, long *ret)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0)
        return -EINVAL;
    *ret = v;
    return 0;
}

static int parse_signal(const char *s)
{
    long n;

    if (parse_long(s, &n) == 0)
        return n < NSIG ? (int)n : -1;
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    for (int i = 1; i < NSIG; i++) {
        const char *abbr = sigabbrev_np(i);

        if (abbr && strcmp(abbr, s) == 0)
            return i;
    }
    return -1;
}

static X509 *read_leaf(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x;

    if (!f)
        return NULL;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    char err[1024] = "", host[256], serial[128] = "";
    bool timing = false;
    double t0;
    int r, rc;

    hlp_log_set_level(LOG_WARNING);
    if (argc > 1 && strcmp(argv[1], "-t") == 0) {
        timing = true;
        argv++;
        argc--;
    }
    if (argc < 2)
        return usage();
    t0 = now_ms();

    if (strcmp(argv[1], "signal") == 0 && argc == 4) {
        struct deliver_action a = { .type = DELIVER_ACTION_SIGNAL,
                                    .pidfile = argv[2],
                                    .signo = parse_signal(argv[3]) };

        if (a.signo <= 0)
            return usage();
        r = deliver_run_action(&a, err, sizeof(err));
        rc = r < 0 ? 2 : 0;
    } else if (strcmp(argv[1], "exec") == 0 && argc >= 4) {
        struct deliver_action a = { .type = DELIVER_ACTION_EXEC,
                                    .argv = argv + 3 };

        if (parse_long(argv[2], &a.timeout_ms) < 0)
            return usage();
        r = deliver_run_action(&a, err, sizeof(err));
        rc = r < 0 ? 2 : 0;
    } else if (strcmp(argv[1], "systemd-reload") == 0 && argc == 4) {
        struct deliver_action a = { .type = DELIVER_ACTION_SYSTEMD,
                                    .unit = argv[2] };

        if (parse_long(argv[3], &a.timeout_ms) < 0)
            return usage();
        r = deliver_run_action(&a, err, sizeof(err));
        rc = r < 0 ? 2 : 0;
    } else if (strcmp(argv[1], "check") == 0 && (argc == 5 || argc == 6)) {
        struct deliver_endpoint e = { .host = host };
        long timeout_ms = 5000;
        X509 *want;

        if (deliver_parse_endpoint(argv[2], host, sizeof(host), &e.port) < 0) {
            fprintf(stderr, "deliver-tool: bad endpoint '%s'\n", argv[2]);
            return 64;
        }
        e.sni = strcmp(argv[3], "-") == 0 ? NULL : argv[3];
        if (argc == 6 && parse_long(argv[5], &timeout_ms) < 0)
            return usage();
        want = read_leaf(argv[4]);
        if (!want) {
            fprintf(stderr, "deliver-tool: no PEM certificate in '%s'\n", argv[4]);
            return 2;
        }
        r = deliver_check_endpoint(&e, want, timeout_ms, serial, sizeof(serial),
                                   err, sizeof(err));
        if (r == 1) {
            BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(want), NULL);
            char *hex = bn ? BN_bn2hex(bn) : NULL;

            printf("match %s\n", hex ? hex : "?");
            OPENSSL_free(hex);
            BN_free(bn);
            rc = 0;
        } else if (r == 0) {
            printf("mismatch %s\n", serial);
            rc = 1;
        } else {
            rc = 2;
        }
        X509_free(want);
    } else {
        return usage();
    }
    if (timing)
        fprintf(stderr, "deliver-tool: %s took %.1f ms\n", argv[1], now_ms() - t0);
    if (rc == 2)
        fprintf(stderr, "deliver-tool: %s: %s (%s)\n", argv[1], err,
                strerror(-r));
    return rc;
}
