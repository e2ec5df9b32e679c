/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line front end of the fake signer, for tests that drive the real
 * openssl binary: write a key reference for a PEM private key, and/or serve
 * it on a socket in the background until killed.
 *
 *   fake-signer --key key.pem --identity NAME [--write-ref ref.pem]
 *               [--socket ADDR --pidfile FILE [--mode MODE]]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "fake-signer.h"
#include "keyref.h"

static int write_ref(EVP_PKEY *key, const char *identity, const char *path)
{
    struct keyref ref;
    BIO *out;
    int r;

    r = keyref_from_pkey(NULL, identity, key, &ref);
    if (r < 0)
        return r;
    out = BIO_new_file(path, "w");
    r = out ? keyref_write_pem(out, &ref) : -EIO;
    if (BIO_free(out) != 1 && r == 0)
        r = -EIO;
    keyref_done(&ref);
    return r;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "key", required_argument, NULL, 'k' },
        { "identity", required_argument, NULL, 'i' },
        { "write-ref", required_argument, NULL, 'w' },
        { "socket", required_argument, NULL, 's' },
        { "pidfile", required_argument, NULL, 'p' },
        { "mode", required_argument, NULL, 'm' },
        { "cert", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    const char *keyfile = NULL, *identity = "test", *ref = NULL;
    const char *sock = NULL, *pidfile = NULL, *certfile = NULL;
    X509 *cert = NULL;
    enum fake_mode mode = FAKE_OK;
    EVP_PKEY *key;
    BIO *in;
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': keyfile = optarg; break;
        case 'i': identity = optarg; break;
        case 'w': ref = optarg; break;
        case 's': sock = optarg; break;
        case 'p': pidfile = optarg; break;
        case 'c': certfile = optarg; break;
        case 'm':
            mode = fake_mode_from_string(optarg);
            if (mode == FAKE_MODE_MAX) {
                fprintf(stderr, "unknown mode '%s'\n", optarg);
                return 2;
            }
            break;
        default:
            return 2;
        }
    }
    if (!keyfile || (sock && !pidfile)) {
        fprintf(stderr, "usage: %s --key key.pem [--identity NAME] "
                        "[--write-ref ref.pem] [--socket ADDR --pidfile F "
                        "[--mode MODE] [--cert leaf.pem]]\n", argv[0]);
        return 2;
    }
    in = BIO_new_file(keyfile, "r");
    key = in ? PEM_read_bio_PrivateKey(in, NULL, NULL, NULL) : NULL;
    BIO_free(in);
    if (!key) {
        fprintf(stderr, "cannot read %s\n", keyfile);
        return 1;
    }
    if (certfile) {
        in = BIO_new_file(certfile, "r");
        cert = in ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
        BIO_free(in);
        if (!cert) {
            fprintf(stderr, "cannot read %s\n", certfile);
            return 1;
        }
    }
    if (ref && write_ref(key, identity, ref) < 0) {
        fprintf(stderr, "cannot write %s\n", ref);
        return 1;
    }
    if (sock) {
        struct fake_signer_cfg cfg = {
            .address = sock, .identity = identity, .key = key, .mode = mode,
            .certs = &cert, .n_certs = cert ? 1 : 0,
        };
        pid_t pid;
        FILE *f;

        if (fake_signer_start_process(&cfg, &pid) < 0) {
            fprintf(stderr, "cannot listen on %s\n", sock);
            return 1;
        }
        f = fopen(pidfile, "w");
        if (!f || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f) != 0) {
            fake_signer_kill(pid);
            return 1;
        }
    }
    EVP_PKEY_free(key);
    X509_free(cert);
    return 0;
}
