/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sc-sign: a raw protocol client for the integration tests.  It reads a key
 * reference, sends one SIGN request of a chosen kind of message straight to
 * shortcertd (no provider, no libssl), and reports what came back; a
 * signature is verified against the public key in the reference.  Lets the
 * tests show that the real daemon refuses what a compromised service might
 * ask it to sign.
 *
 *   sc-sign SOCKET REF_FILE KIND [VERSION [COUNT]]
 *
 * With COUNT, it signs COUNT times on one connection and prints the
 * round-trip latency (p50, p99, max, in microseconds) instead.
 *   KIND: tls13-server-cv | tls13-client-cv | tls12-ske | jws | digest |
 *         csr (a CertificationRequestInfo for the key, shaped so that its
 *         bytes 64.. read like TLS 1.2 ECDHE params) |
 *         unknown-type (a frame of a type the daemon does not know)
 *
 * The scheme follows the reference's key (EC: ecdsa-sha256, RSA:
 * rsa-pss-sha256, Ed25519: ed25519); SC_SIGN_SCHEME=NAME (a name of
 * ipc_scheme_str(), such as rsa-pkcs1-sha384) asks for another one, which
 * may not fit the key.
 *
 * Exit: 0 signed and verified; 3 refused (error reply, code printed);
 * 1 anything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ipc-proto.h"
#include "keyref.h"

/* The to-be-signed part of a CSR for spki (91 bytes: P-256) whose subject
 * text puts 03 00 18 61 04 (named curve secp384r1, a 97-byte point that
 * runs to the end) at offset 64. */
static size_t make_csr_info(const uint8_t *spki, size_t spki_len, uint8_t *m)
{
    static const char subj[] = "attacker-chosen-subject-signed-by-shortcertd:"
                               "\x03\x00\x18\x61\x04xyz";
    const size_t slen = sizeof(subj) - 1; /* 53 */
    size_t n = 0;

    if (spki_len != 91)
        return 0;
    m[n++] = 0x30, m[n++] = 0x81, m[n++] = 0xa2;           /* CRI, 162 */
    m[n++] = 0x02, m[n++] = 0x01, m[n++] = 0x00;           /* version */
    m[n++] = 0x30, m[n++] = 0x40;                          /* Name */
    m[n++] = 0x31, m[n++] = 0x3e;                          /* RDN */
    m[n++] = 0x30, m[n++] = 0x3c;                          /* ATV */
    memcpy(m + n, "\x06\x03\x55\x04\x03", 5);             /* cn */
    n += 5;
    m[n++] = 0x0c, m[n++] = (uint8_t)slen;                 /* UTF8String */
    memcpy(m + n, subj, slen);
    n += slen;
    memcpy(m + n, spki, spki_len);
    n += spki_len;
    m[n++] = 0xa0, m[n++] = 0x00;                          /* attributes */
    return n; /* 165 */
}

static size_t make_input(const char *kind, uint8_t *m)
{
    static const char jws[] =
        "eyJhbGciOiJFUzI1NiIsImtpZCI6InRodW1iIiwidHlwIjoiSldUIn0."
        "eyJhdWQiOiJodHRwczovL2NhLmludGVybmFsLnRlc3Q6OTQ0My8xLjAvcmVuZXciLCJz"
        "dWIiOiJhcGkuaW50ZXJuYWwudGVzdCJ9";

    if (strcmp(kind, "tls13-server-cv") == 0 || strcmp(kind, "tls13-client-cv") == 0) {
        memset(m, 0x20, 64);
        memcpy(m + 64, kind[6] == 's' ? "TLS 1.3, server CertificateVerify"
                                       : "TLS 1.3, client CertificateVerify", 33);
        m[97] = 0;
        memset(m + 98, 0x5c, 32);
        return 130;
    }
    if (strcmp(kind, "tls12-ske") == 0) {
        memset(m, 0x11, 64);
        m[64] = 3;
        m[65] = 0;
        m[66] = 29; /* x25519 */
        m[67] = 32;
        memset(m + 68, 0x42, 32);
        return 100;
    }
    if (strcmp(kind, "jws") == 0) {
        memcpy(m, jws, sizeof(jws) - 1);
        return sizeof(jws) - 1;
    }
    if (strcmp(kind, "digest") == 0) {
        memset(m, 0x7e, 32);
        return 32;
    }
    return 0;
}

/* The scheme for this key: SC_SIGN_SCHEME, else the key's natural one. */
static uint32_t pick_scheme(EVP_PKEY *pub)
{
    const char *want = getenv("SC_SIGN_SCHEME");

    if (want && *want) {
        for (uint32_t s = 1; s < IPC_SCHEME_MAX; s++)
            if (strcmp(ipc_scheme_str(s), want) == 0)
                return s;
        return 0;
    }
    if (EVP_PKEY_is_a(pub, "RSA"))
        return IPC_SCHEME_RSA_PSS_SHA256;
    if (EVP_PKEY_is_a(pub, "ED25519"))
        return IPC_SCHEME_ED25519;
    return IPC_SCHEME_ECDSA_SHA256;
}

/* Verify as TLS does for the scheme: its digest (none for Ed25519), and
 * for RSA its padding (PSS: salt as long as the hash). */
static bool verify_scheme(EVP_PKEY *pub, uint32_t scheme, const uint8_t *sig,
                          size_t siglen, const uint8_t *msg, size_t len)
{
    static const char *const mds[] = { "SHA256", "SHA384", "SHA512" };
    const char *md = NULL;
    int pad = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok;

    if (scheme >= IPC_SCHEME_ECDSA_SHA256 && scheme <= IPC_SCHEME_ECDSA_SHA512)
        md = mds[scheme - IPC_SCHEME_ECDSA_SHA256];
    else if (scheme >= IPC_SCHEME_RSA_PKCS1_SHA256 &&
             scheme <= IPC_SCHEME_RSA_PKCS1_SHA512)
        md = mds[scheme - IPC_SCHEME_RSA_PKCS1_SHA256], pad = RSA_PKCS1_PADDING;
    else if (scheme >= IPC_SCHEME_RSA_PSS_SHA256 &&
             scheme <= IPC_SCHEME_RSA_PSS_SHA512)
        md = mds[scheme - IPC_SCHEME_RSA_PSS_SHA256], pad = RSA_PKCS1_PSS_PADDING;
    ok = m && EVP_DigestVerifyInit_ex(m, &pctx, md, NULL, NULL, pub, NULL) == 1 &&
         (!pad || EVP_PKEY_CTX_set_rsa_padding(pctx, pad) == 1) &&
         (pad != RSA_PKCS1_PSS_PADDING ||
          EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1) &&
         EVP_DigestVerify(m, sig, siglen, msg, len) == 1;
    EVP_MD_CTX_free(m);
    return ok;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* count signatures on one connection; prints p50/p99/max round trips. */
static int latency(int fd, const struct ipc_sign_req *req, uint16_t version,
                   int count)
{
    static uint8_t b[IPC_FRAME_MAX + 1];
    uint64_t *us = calloc((size_t)count, sizeof(*us));
    struct ipc_hdr h;
    struct ipc_cur body;

    if (!us)
        return 1;
    for (int i = 0; i < count; i++) {
        struct timespec t0, t1;
        int n = ipc_build_sign_req(b, sizeof(b), version, (uint32_t)i, req);
        ssize_t got;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (n < 0 || send(fd, b, (size_t)n, MSG_NOSIGNAL) != n)
            goto fail;
        got = recv(fd, b, IPC_FRAME_MAX, MSG_TRUNC);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (got <= 0 || got > (ssize_t)IPC_FRAME_MAX ||
            ipc_parse_frame(b, (size_t)got, &h, &body) < 0 || h.type != IPC_REP_SIGN)
            goto fail;
        /* signed arithmetic: tv_nsec of t1 may be below t0's */
        us[i] = (uint64_t)(((int64_t)t1.tv_sec - t0.tv_sec) * 1000000 +
                           ((int64_t)t1.tv_nsec - t0.tv_nsec) / 1000);
    }
    qsort(us, (size_t)count, sizeof(*us), cmp_u64);
    printf("p50 %llu p99 %llu max %llu\n", (unsigned long long)us[count / 2],
           (unsigned long long)us[count * 99 / 100],
           (unsigned long long)us[count - 1]);
    free(us);
    return 0;
fail:
    fprintf(stderr, "sc-sign: a signature failed during the latency run\n");
    free(us);
    return 1;
}

static int connect_to(const char *where)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct timeval tv = { .tv_sec = 5 };
    size_t n = strlen(where);
    socklen_t len = sizeof(sa);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    if (fd < 0 || n + 1 >= sizeof(sa.sun_path))
        return -1;
    if (where[0] == '@') {
        memcpy(sa.sun_path + 1, where + 1, n - 1);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        memcpy(sa.sun_path, where, n + 1);
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, len) < 0) {
        perror("connect");
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    static uint8_t buf[IPC_FRAME_MAX + 1];
    uint8_t msg[512];
    struct keyref ref;
    struct ipc_sign_req req = { 0 };
    struct ipc_hdr h;
    struct ipc_cur body;
    struct ipc_sign_rep sr;
    struct ipc_error_rep er;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long derlen = 0;
    const unsigned char *p;
    EVP_PKEY *pub = NULL;
    FILE *f;
    int fd = -1, n, version = IPC_VERSION_MAX, rc = 1, count = 0;
    ssize_t got;

    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: sc-sign SOCKET REF_FILE KIND [VERSION [COUNT]]\n");
        return 1;
    }
    if (argc >= 5)
        version = atoi(argv[4]);
    if (argc == 6)
        count = atoi(argv[5]);
    f = fopen(argv[2], "r");
    if (!f || PEM_read(f, &name, &header, &der, &derlen) != 1 ||
        strcmp(name, KEYREF_PEM_LABEL) != 0 ||
        keyref_decode_der(NULL, der, (size_t)derlen, &ref) < 0) {
        fprintf(stderr, "sc-sign: %s is not a key reference\n", argv[2]);
        return 1;
    }
    fclose(f);
    p = ref.spki;
    pub = d2i_PUBKEY(NULL, &p, (long)ref.spki_len);
    if (!pub) {
        fprintf(stderr, "sc-sign: the reference's public key does not decode\n");
        goto out;
    }
    req.identity = ref.identity;
    req.identity_len = strlen(ref.identity);
    memcpy(req.generation, ref.generation, IPC_GENERATION_LEN);
    req.scheme = pick_scheme(pub);
    if (req.scheme == 0) {
        fprintf(stderr, "sc-sign: unknown SC_SIGN_SCHEME\n");
        goto out;
    }
    req.msg = msg;
    req.msg_len = make_input(argv[3], msg);
    if (strcmp(argv[3], "csr") == 0)
        req.msg_len = make_csr_info(ref.spki, ref.spki_len, msg);
    if (strcmp(argv[3], "unknown-type") == 0) {
        req.msg_len = 1; /* a well-formed request, then its type is changed */
        msg[0] = 0;
    }
    if (req.msg_len == 0) {
        fprintf(stderr, "sc-sign: unknown KIND '%s'\n", argv[3]);
        goto out;
    }
    fd = connect_to(argv[1]);
    if (fd < 0)
        goto out;
    if (count > 0) {
        rc = latency(fd, &req, (uint16_t)version, count);
        goto out;
    }
    n = ipc_build_sign_req(buf, sizeof(buf), (uint16_t)version, 42, &req);
    if (n > 0 && strcmp(argv[3], "unknown-type") == 0) {
        buf[4] = 0x00; /* type 0x0077, at offset 4 (big-endian) */
        buf[5] = 0x77;
    }
    if (n < 0 || send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
        fprintf(stderr, "sc-sign: send failed\n");
        goto out;
    }
    got = recv(fd, buf, IPC_FRAME_MAX, MSG_TRUNC);
    if (got <= 0 || got > (ssize_t)IPC_FRAME_MAX ||
        ipc_parse_frame(buf, (size_t)got, &h, &body) < 0 || h.request_id != 42) {
        fprintf(stderr, "sc-sign: no valid reply\n");
        goto out;
    }
    if (h.type == IPC_REP_ERROR && ipc_parse_error_rep(body, &er) == 0) {
        printf("refused: code %u (%s) detail %u: %.*s\n", (unsigned)er.code,
               ipc_err_str(er.code), (unsigned)er.detail, (int)er.msg_len, er.msg);
        rc = 3;
        goto out;
    }
    if (h.version != version) {
        fprintf(stderr, "sc-sign: asked in version %d, answered in %u\n", version,
                (unsigned)h.version);
        goto out;
    }
    if (h.type != IPC_REP_SIGN || ipc_parse_sign_rep(body, h.version, &sr) < 0) {
        fprintf(stderr, "sc-sign: unexpected reply type 0x%04x\n", h.type);
        goto out;
    }
    if (!verify_scheme(pub, req.scheme, sr.sig, sr.sig_len, msg, req.msg_len)) {
        printf("signed, but the signature does NOT verify\n");
        goto out;
    }
    printf("signed: %zu-byte %s signature, verified with the reference's "
           "public key (protocol version %d%s)\n",
           sr.sig_len, ipc_scheme_str(req.scheme), version,
           sr.notice == IPC_NOTICE_RETIRED ? ", notice: retired key generation" : "");
    rc = 0;
out:
    EVP_PKEY_free(pub);
    keyref_done(&ref);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    if (fd >= 0)
        close(fd);
    return rc;
}
