/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Recognise TLS handshake signature inputs (see include/tls-purpose.h).
 * Every check is exact: fixed prefixes, known lengths, and structures that
 * must parse to the last byte.  Nothing here allocates.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include "tls-purpose.h"

#define TLS13_PAD_LEN 64
#define TLS13_SERVER_CTX "TLS 1.3, server CertificateVerify"
#define TLS13_CLIENT_CTX "TLS 1.3, client CertificateVerify"
#define TLS13_CTX_LEN 33 /* both context strings */
#define TLS12_RANDOMS_LEN 64

/* TLS 1.3 CertificateVerify content (RFC 8446 4.4.3): 64 spaces, the
 * context string, a zero byte, then the transcript hash (SHA-256 or
 * SHA-384: the hashes of the TLS 1.3 cipher suites). */
static bool is_tls13_cv(const uint8_t *m, size_t len, const char *ctx)
{
    size_t hlen;

    if (len < TLS13_PAD_LEN + TLS13_CTX_LEN + 1)
        return false;
    hlen = len - (TLS13_PAD_LEN + TLS13_CTX_LEN + 1);
    if (hlen != 32 && hlen != 48)
        return false;
    for (size_t i = 0; i < TLS13_PAD_LEN; i++)
        if (m[i] != 0x20)
            return false;
    return memcmp(m + TLS13_PAD_LEN, ctx, TLS13_CTX_LEN) == 0 &&
           m[TLS13_PAD_LEN + TLS13_CTX_LEN] == 0;
}

/* The named groups of TLS 1.2 ECDHE: the point length their params carry
 * and, for Weierstrass curves, the curve to check the point against. */
static const struct tls_group {
    uint16_t id;
    size_t point_len;
    int nid; /* NID_undef: Montgomery curve, any bytes are a point */
} groups[] = {
    { 23, 65, NID_X9_62_prime256v1 },
    { 24, 97, NID_secp384r1 },
    { 25, 133, NID_secp521r1 },
    { 26, 65, NID_brainpoolP256r1 },
    { 27, 97, NID_brainpoolP384r1 },
    { 28, 129, NID_brainpoolP512r1 },
    { 29, 32, NID_undef }, /* x25519 */
    { 30, 56, NID_undef }, /* x448 */
};

#define N_GROUPS (sizeof(groups) / sizeof(groups[0]))

static EC_GROUP *curves[N_GROUPS];
static pthread_once_t curves_once = PTHREAD_ONCE_INIT;

static void curves_init(void)
{
    for (size_t i = 0; i < N_GROUPS; i++)
        if (groups[i].nid != NID_undef)
            curves[i] = EC_GROUP_new_by_curve_name(groups[i].nid);
}

/* An uncompressed point that is on the curve: the tail of a message shaped
 * to look like ECDHE params (a certificate body, a transcript) is not. */
static bool point_on_curve(size_t gi, const uint8_t *pt, size_t len)
{
    EC_POINT *p;
    bool ok;

    if (groups[gi].nid == NID_undef)
        return true;
    if (pt[0] != 0x04)
        return false; /* TLS 1.2 uses uncompressed points only */
    (void)pthread_once(&curves_once, curves_init);
    if (!curves[gi])
        return false;
    p = EC_POINT_new(curves[gi]);
    /* oct2point checks that the point is on the curve */
    ok = p && EC_POINT_oct2point(curves[gi], p, pt, len, NULL) == 1;
    EC_POINT_free(p);
    return ok;
}

static bool get_u16(const uint8_t **p, size_t *left, uint16_t *v)
{
    if (*left < 2)
        return false;
    *v = (uint16_t)((*p)[0] << 8 | (*p)[1]);
    *p += 2;
    *left -= 2;
    return true;
}

/* A u16-length-prefixed DH value: 1..max bytes, not all zero in front. */
static bool get_dh_value(const uint8_t **p, size_t *left, size_t min,
                         size_t max, size_t *ret_len)
{
    uint16_t n;

    if (!get_u16(p, left, &n) || n < min || n > max || n > *left)
        return false;
    *p += n;
    *left -= n;
    *ret_len = n;
    return true;
}

/* TLS 1.2 ServerKeyExchange signature input (RFC 5246 7.4.3, RFC 8422 5.4):
 * client_random || server_random || ServerECDHParams, or ServerDHParams
 * when dhe (only RSA keys sign DHE params). */
static bool is_tls12_ske(const uint8_t *m, size_t len, bool dhe)
{
    const uint8_t *p;
    size_t left, plen, glen, ylen;

    if (len <= TLS12_RANDOMS_LEN)
        return false;
    p = m + TLS12_RANDOMS_LEN;
    left = len - TLS12_RANDOMS_LEN;

    if (p[0] == 3) { /* ECCurveType named_curve */
        uint16_t group = 0;
        size_t gi;

        p++;
        left--;
        if (!get_u16(&p, &left, &group))
            return false;
        for (gi = 0; gi < N_GROUPS && groups[gi].id != group; gi++)
            ;
        if (gi == N_GROUPS || left != 1 + groups[gi].point_len ||
            p[0] != groups[gi].point_len)
            return false;
        return point_on_curve(gi, p + 1, groups[gi].point_len);
    }
    if (!dhe)
        return false;
    /* ServerDHParams: p (1024..8192 bits), g, Ys; nothing after. */
    if (!get_dh_value(&p, &left, 128, 1024, &plen) ||
        !get_dh_value(&p, &left, 1, plen, &glen) ||
        !get_dh_value(&p, &left, 1, plen, &ylen))
        return false;
    return left == 0;
}

/* TLS 1.2 client CertificateVerify input (RFC 5246 7.4.8): all handshake
 * messages from ClientHello up to and including ClientKeyExchange, each
 * {type u8, length u24, body}. */
static bool is_tls12_client_cv(const uint8_t *m, size_t len)
{
    size_t off = 0, count = 0;
    bool saw_server_cert = false;
    uint8_t type = 0;

    while (off < len) {
        size_t blen;

        if (len - off < 4)
            return false;
        type = m[off];
        blen = (size_t)m[off + 1] << 16 | (size_t)m[off + 2] << 8 | m[off + 3];
        if (blen > len - off - 4)
            return false;
        if (count == 0 && type != 1) /* client_hello */
            return false;
        if (count == 1 && type != 2) /* server_hello */
            return false;
        if (type == 11 && count >= 2)
            saw_server_cert = true;
        off += 4 + blen;
        count++;
    }
    return count >= 4 && saw_server_cert && type == 16; /* client_key_exchange */
}

#define ASN1_DEPTH_MAX 32

/* One TLV at *p: identifier octets (low or high tag number form) and a
 * definite length (short or long form, up to 4 length octets).  Sets the
 * header length and the content length; false if it does not fit. */
static bool asn1_tlv(const uint8_t *p, size_t left, bool *constructed,
                     size_t *hdr, size_t *clen)
{
    size_t i = 1, n;

    if (left < 2)
        return false;
    *constructed = p[0] & 0x20;
    if ((p[0] & 0x1f) == 0x1f) { /* high tag number: base-128 octets */
        while (i < left && i < 6 && (p[i] & 0x80))
            i++;
        if (i >= left || i >= 6)
            return false;
        i++;
    }
    if (i >= left)
        return false;
    if (p[i] < 0x80) {
        n = p[i++];
    } else {
        size_t k = p[i++] & 0x7f;

        if (k == 0 || k > 4 || k > left - i) /* indefinite or too long */
            return false;
        for (n = 0; k > 0; k--)
            n = n << 8 | p[i++];
    }
    if (n > left - i)
        return false;
    *hdr = i;
    *clen = n;
    return true;
}

/* True if [p, p+len) is a sequence of TLVs that tile it exactly, each
 * constructed one's content tiling recursively. */
static bool asn1_tiles(const uint8_t *p, size_t len, int depth)
{
    if (depth > ASN1_DEPTH_MAX)
        return false;
    while (len > 0) {
        bool cons;
        size_t hdr, clen;

        if (!asn1_tlv(p, len, &cons, &hdr, &clen))
            return false;
        if (cons && !asn1_tiles(p + hdr, clen, depth + 1))
            return false;
        p += hdr + clen;
        len -= hdr + clen;
    }
    return true;
}

/* One SEQUENCE spanning the whole message: an X.509 TBSCertificate, a
 * CertificationRequestInfo, a CRL, OCSP or CMS structure... */
static bool is_asn1_sequence(const uint8_t *m, size_t len)
{
    bool cons;
    size_t hdr, clen;

    return len >= 2 && m[0] == 0x30 && asn1_tlv(m, len, &cons, &hdr, &clen) &&
           hdr + clen == len && asn1_tiles(m + hdr, clen, 1);
}

enum tls_input tls_input_classify(const uint8_t *msg, size_t len,
                                  enum tls_key_kind kind)
{
    if (!msg)
        return TLS_INPUT_NONE;
    /* The most specific shapes first: an input that fits two of them is
     * taken as the one a server must not sign. */
    if (is_asn1_sequence(msg, len))
        return TLS_INPUT_ASN1;
    if (is_tls13_cv(msg, len, TLS13_SERVER_CTX))
        return TLS_INPUT_TLS13_SERVER_CV;
    if (is_tls13_cv(msg, len, TLS13_CLIENT_CTX))
        return TLS_INPUT_TLS13_CLIENT_CV;
    if (is_tls12_client_cv(msg, len))
        return TLS_INPUT_TLS12_CLIENT_CV;
    if (is_tls12_ske(msg, len, kind == TLS_KEY_RSA))
        return TLS_INPUT_TLS12_SKE;
    return TLS_INPUT_NONE;
}

const char *tls_input_str(enum tls_input in)
{
    switch (in) {
    case TLS_INPUT_TLS13_SERVER_CV:
        return "TLS 1.3 server CertificateVerify";
    case TLS_INPUT_TLS13_CLIENT_CV:
        return "TLS 1.3 client CertificateVerify";
    case TLS_INPUT_TLS12_SKE:
        return "TLS 1.2 ServerKeyExchange";
    case TLS_INPUT_TLS12_CLIENT_CV:
        return "TLS 1.2 client CertificateVerify";
    case TLS_INPUT_ASN1:
        return "an ASN.1 structure (such as a CSR or a certificate)";
    case TLS_INPUT_NONE:
    default:
        return "no TLS handshake signature input";
    }
}

int tls_purpose_check(enum tls_role role, enum tls_key_kind kind,
                      const uint8_t *msg, size_t len, const char **ret_why)
{
    enum tls_input in = tls_input_classify(msg, len, kind);
    bool ok;

    if (role == TLS_ROLE_SERVER)
        ok = in == TLS_INPUT_TLS13_SERVER_CV || in == TLS_INPUT_TLS12_SKE;
    else if (role == TLS_ROLE_CLIENT)
        ok = in == TLS_INPUT_TLS13_CLIENT_CV || in == TLS_INPUT_TLS12_CLIENT_CV;
    else
        ok = false;
    if (ret_why)
        *ret_why = tls_input_str(in);
    return ok ? 0 : -EPERM;
}
