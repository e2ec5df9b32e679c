/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the wire codec (docs/PROTOCOL.md): round trips of every
 * message, and rejection of truncated, oversize, trailing-byte, bad-magic,
 * bad-flag and out-of-range frames.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "cu-main.h"
#include "ipc-proto.h"

static uint8_t buf[IPC_FRAME_MAX + 64];

static struct ipc_sign_req sample_req(const uint8_t *msg, size_t len)
{
    struct ipc_sign_req r = {
        .identity = "api",
        .identity_len = 3,
        .scheme = IPC_SCHEME_ECDSA_SHA256,
        .msg = msg,
        .msg_len = len,
    };

    for (int i = 0; i < IPC_GENERATION_LEN; i++)
        r.generation[i] = (uint8_t)i;
    return r;
}

static void t_sign_req_roundtrip(void)
{
    const uint8_t msg[] = "hello";
    struct ipc_sign_req req = sample_req(msg, 5), got;
    struct ipc_hdr h;
    struct ipc_cur body;
    int n = ipc_build_sign_req(buf, sizeof(buf), 1, 0xdeadbeef, &req);

    CU_ASSERT_EQUAL_FATAL(n, IPC_HDR_LEN + 4 + 3 + 4 + 32 + 4 + 4 + 5);
    CU_ASSERT_EQUAL(buf[0], 0x53);
    CU_ASSERT_EQUAL(buf[1], 0x43);
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n, &h, &body), 0);
    CU_ASSERT_EQUAL(h.version, 1);
    CU_ASSERT_EQUAL(h.type, IPC_REQ_SIGN);
    CU_ASSERT_EQUAL(h.request_id, 0xdeadbeef);
    CU_ASSERT_EQUAL(h.body_len, (uint32_t)n - IPC_HDR_LEN);
    CU_ASSERT_EQUAL_FATAL(ipc_parse_sign_req(body, &got), 0);
    CU_ASSERT_EQUAL(got.identity_len, 3);
    CU_ASSERT_NSTRING_EQUAL(got.identity, "api", 3);
    CU_ASSERT_EQUAL(memcmp(got.generation, req.generation, 32), 0);
    CU_ASSERT_EQUAL(got.scheme, IPC_SCHEME_ECDSA_SHA256);
    CU_ASSERT_EQUAL(got.msg_len, 5);
    CU_ASSERT_EQUAL(memcmp(got.msg, "hello", 5), 0);
}

static void t_replies_roundtrip(void)
{
    const uint8_t sig[] = { 0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02 };
    struct ipc_hdr h;
    struct ipc_cur body;
    struct ipc_sign_rep sr;
    struct ipc_error_rep er;
    struct ipc_status_rep st;
    int n;

    n = ipc_build_sign_rep(buf, sizeof(buf), 1, 7, sig, sizeof(sig),
                           IPC_NOTICE_RETIRED);
    CU_ASSERT_TRUE_FATAL(n > 0);
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n, &h, &body), 0);
    CU_ASSERT_EQUAL(h.type, IPC_REP_SIGN);
    CU_ASSERT_EQUAL_FATAL(ipc_parse_sign_rep(body, 1, &sr), 0);
    CU_ASSERT_EQUAL(sr.sig_len, sizeof(sig));
    CU_ASSERT_EQUAL(memcmp(sr.sig, sig, sizeof(sig)), 0);
    CU_ASSERT_EQUAL(sr.notice, IPC_NOTICE_NONE); /* no room in version 1 */
    /* a version 1 reply is not a version 2 one, and the other way round */
    CU_ASSERT_EQUAL(ipc_parse_sign_rep(body, 2, &sr), -EBADMSG);
    n = ipc_build_sign_rep(buf, sizeof(buf), 2, 7, sig, sizeof(sig),
                           IPC_NOTICE_RETIRED);
    CU_ASSERT_TRUE_FATAL(n > 0);
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n, &h, &body), 0);
    CU_ASSERT_EQUAL(ipc_parse_sign_rep(body, 1, &sr), -EBADMSG);
    CU_ASSERT_EQUAL_FATAL(ipc_parse_sign_rep(body, 2, &sr), 0);
    CU_ASSERT_EQUAL(sr.notice, IPC_NOTICE_RETIRED);

    n = ipc_build_error_rep(buf, sizeof(buf), 1, 8, IPC_ERR_VERSION, 1,
                            "version 9 not spoken");
    CU_ASSERT_TRUE_FATAL(n > 0);
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n, &h, &body), 0);
    CU_ASSERT_EQUAL(h.type, IPC_REP_ERROR);
    CU_ASSERT_EQUAL_FATAL(ipc_parse_error_rep(body, &er), 0);
    CU_ASSERT_EQUAL(er.code, IPC_ERR_VERSION);
    CU_ASSERT_EQUAL(er.detail, 1);
    CU_ASSERT_EQUAL(er.msg_len, strlen("version 9 not spoken"));

    n = ipc_build_status_req(buf, sizeof(buf), 1, 9, 300);
    CU_ASSERT_EQUAL_FATAL(n, IPC_HDR_LEN + 4);
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n, &h, &body), 0);
    {
        uint32_t first = 0;

        CU_ASSERT_EQUAL(ipc_parse_status_req(body, &first), 0);
        CU_ASSERT_EQUAL(first, 300);
        body.left--;
        CU_ASSERT_EQUAL(ipc_parse_status_req(body, &first), -EBADMSG);
    }

    n = ipc_build_status_rep(buf, sizeof(buf), 1, 9, "{}", 2);
    CU_ASSERT_TRUE_FATAL(n > 0);
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n, &h, &body), 0);
    CU_ASSERT_EQUAL_FATAL(ipc_parse_status_rep(body, &st), 0);
    CU_ASSERT_EQUAL(st.json_len, 2);
}

static void t_admin_roundtrip(void)
{
    struct ipc_hdr h;
    struct ipc_cur body;
    const char *s;
    size_t n;
    int len;

    len = ipc_build_ident_req(buf, sizeof(buf), 1, 5, IPC_REQ_ROTATE, "api", 3);
    CU_ASSERT_TRUE_FATAL(len > 0);
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)len, &h, &body), 0);
    CU_ASSERT_EQUAL(h.type, IPC_REQ_ROTATE);
    CU_ASSERT_EQUAL_FATAL(ipc_parse_ident_req(body, &s, &n), 0);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_NSTRING_EQUAL(s, "api", 3);
    CU_ASSERT_EQUAL(ipc_build_ident_req(buf, sizeof(buf), 1, 5, IPC_REQ_SIGN, "api", 3),
                    -EINVAL);
    CU_ASSERT_EQUAL(ipc_build_ident_req(buf, sizeof(buf), 1, 5, IPC_REQ_RENEW, "a/b", 3),
                    -EINVAL);
    len = ipc_build_ok_rep(buf, sizeof(buf), 1, 5, "renewal requested");
    CU_ASSERT_TRUE_FATAL(len > 0);
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)len, &h, &body), 0);
    CU_ASSERT_EQUAL(h.type, IPC_REP_OK);
    CU_ASSERT_EQUAL_FATAL(ipc_parse_ok_rep(body, &s, &n), 0);
    CU_ASSERT_EQUAL(n, strlen("renewal requested"));
    body.left++;
    CU_ASSERT_EQUAL(ipc_parse_ok_rep(body, &s, &n), -EBADMSG);
}

static void t_truncated(void)
{
    const uint8_t msg[40] = { 0 };
    struct ipc_sign_req req = sample_req(msg, sizeof(msg)), got;
    struct ipc_hdr h;
    struct ipc_cur body;
    int n = ipc_build_sign_req(buf, sizeof(buf), 1, 1, &req);

    CU_ASSERT_TRUE_FATAL(n > 0);
    /* Every strict prefix is malformed at the frame level... */
    for (int i = 0; i < n; i++)
        CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)i, &h, &body), -EBADMSG);
    /* ...and a body cut short is malformed at the field level. */
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n, &h, &body), 0);
    for (size_t cut = 0; cut < body.left; cut++) {
        struct ipc_cur b = { .p = body.p, .left = cut };

        CU_ASSERT_EQUAL(ipc_parse_sign_req(b, &got), -EBADMSG);
    }
}

static void t_trailing_bytes(void)
{
    const uint8_t msg[4] = { 1, 2, 3, 4 };
    struct ipc_sign_req req = sample_req(msg, sizeof(msg)), got;
    struct ipc_hdr h;
    struct ipc_cur body;
    int n = ipc_build_sign_req(buf, sizeof(buf), 1, 1, &req);

    CU_ASSERT_TRUE_FATAL(n > 0);
    /* Extra byte after the frame: body_len no longer matches. */
    buf[n] = 0;
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n + 1, &h, &body), -EBADMSG);
    /* Extra byte inside the body (body_len adjusted): leftover field bytes. */
    buf[15]++;
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n + 1, &h, &body), 0);
    CU_ASSERT_EQUAL(ipc_parse_sign_req(body, &got), -EBADMSG);
}

static void t_bad_header(void)
{
    struct ipc_hdr h;
    struct ipc_cur body;
    int n = ipc_build_status_req(buf, sizeof(buf), 1, 1, 0);

    CU_ASSERT_EQUAL_FATAL(n, IPC_HDR_LEN + 4);
    buf[0] = 'X';
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n, &h, &body), -EBADMSG);
    buf[0] = 0x53;
    buf[7] = 1; /* flags */
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n, &h, &body), -EBADMSG);
    buf[7] = 0;
    buf[2] = buf[3] = 0; /* version 0 */
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n, &h, &body), -EBADMSG);
    buf[3] = 9; /* an unknown version parses: the caller answers VERSION */
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n, &h, &body), 0);
    CU_ASSERT_EQUAL(h.version, 9);
    /* Unknown types parse at the frame level too. */
    buf[4] = 0x7f;
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n, &h, &body), 0);
    CU_ASSERT_EQUAL(h.type, 0x7f00 | IPC_REQ_STATUS);
}

static void t_oversize(void)
{
    uint8_t *big = calloc(1, IPC_MSG_MAX + 1);
    struct ipc_sign_req req;
    struct ipc_hdr h;
    struct ipc_cur body;
    int n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    req = sample_req(big, IPC_MSG_MAX + 1);
    CU_ASSERT_EQUAL(ipc_build_sign_req(buf, sizeof(buf), 1, 1, &req), -EINVAL);
    req.msg_len = IPC_MSG_MAX;
    n = ipc_build_sign_req(buf, sizeof(buf), 1, 1, &req);
    CU_ASSERT_TRUE(n > 0 && (size_t)n <= IPC_FRAME_MAX);
    /* A buffer too small for the frame. */
    CU_ASSERT_EQUAL(ipc_build_sign_req(buf, 100, 1, 1, &req), -EMSGSIZE);
    /* A frame above the cap is refused even if its lengths agree. */
    memset(buf, 0, sizeof(buf));
    buf[0] = 0x53;
    buf[1] = 0x43;
    buf[3] = 1;
    buf[5] = 1;
    buf[13] = 0x01; /* body_len = 65536 - 16 + 16 */
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, IPC_FRAME_MAX + 1, &h, &body), -EBADMSG);
    free(big);
}

static void t_field_ranges(void)
{
    const uint8_t sig[IPC_SIG_MAX + 1] = { 0 };
    struct ipc_sign_req req = sample_req(NULL, 0);
    struct ipc_error_rep er;
    struct ipc_sign_rep sr;
    struct ipc_hdr h;
    struct ipc_cur body;
    int n;

    req.identity = "-bad";
    req.identity_len = 4;
    CU_ASSERT_EQUAL(ipc_build_sign_req(buf, sizeof(buf), 1, 1, &req), -EINVAL);
    CU_ASSERT_EQUAL(ipc_build_sign_rep(buf, sizeof(buf), 1, 1, sig, 0, 0), -EINVAL);
    CU_ASSERT_EQUAL(ipc_build_sign_rep(buf, sizeof(buf), 1, 1, sig, sizeof(sig), 0),
                    -EINVAL);
    CU_ASSERT_EQUAL(ipc_build_error_rep(buf, sizeof(buf), 1, 1, 0, 0, "x"), -EINVAL);
    CU_ASSERT_EQUAL(ipc_build_error_rep(buf, sizeof(buf), 1, 1, 1, 0, "a\nb"),
                    -EINVAL);
    /* An empty message is allowed on the wire (the purpose check refuses). */
    req = sample_req(NULL, 0);
    CU_ASSERT_TRUE(ipc_build_sign_req(buf, sizeof(buf), 1, 1, &req) > 0);
    /* A reply with a control character in its message is malformed. */
    n = ipc_build_error_rep(buf, sizeof(buf), 1, 1, 1, 0, "ab");
    CU_ASSERT_TRUE_FATAL(n > 0);
    buf[n - 1] = '\n';
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n, &h, &body), 0);
    CU_ASSERT_EQUAL(ipc_parse_error_rep(body, &er), -EBADMSG);
    /* A sign reply with an empty signature is malformed. */
    n = ipc_build_sign_rep(buf, sizeof(buf), 1, 1, sig, 1, 0);
    CU_ASSERT_TRUE_FATAL(n > 0);
    buf[n - 5] = buf[n - 4] = buf[n - 3] = buf[n - 2] = 0;
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n - 1, &h, &body), -EBADMSG);
    buf[15] = 4;
    CU_ASSERT_EQUAL(ipc_parse_frame(buf, (size_t)n - 1, &h, &body), 0);
    CU_ASSERT_EQUAL(ipc_parse_sign_rep(body, 1, &sr), -EBADMSG);
}

static void t_identity_names(void)
{
    CU_ASSERT_TRUE(ipc_identity_valid("a", 1));
    CU_ASSERT_TRUE(ipc_identity_valid("web-1.prod_x", 12));
    CU_ASSERT_FALSE(ipc_identity_valid("", 0));
    CU_ASSERT_FALSE(ipc_identity_valid(".a", 2));
    CU_ASSERT_FALSE(ipc_identity_valid("a/b", 3));
    CU_ASSERT_FALSE(ipc_identity_valid("a\0b", 3));
    CU_ASSERT_FALSE(ipc_identity_valid(
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 65));
    CU_ASSERT_STRING_EQUAL(ipc_err_str(IPC_ERR_DENIED), "permission denied");
    CU_ASSERT_STRING_EQUAL(ipc_err_str(999), "unknown error");
    CU_ASSERT_STRING_EQUAL(ipc_scheme_str(IPC_SCHEME_ED25519), "ed25519");
    CU_ASSERT_PTR_NULL(ipc_scheme_str(0));
}

static void t_fetch_roundtrip(void)
{
    static uint8_t big[IPC_FRAME_MAX];
    static const uint8_t ref[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
    static const uint8_t c1[] = { 0x30, 0x00 }, c2[] = { 0x30, 0x01, 0x05 };
    struct ipc_fetch_rep rep = { .keyref = { ref, sizeof(ref) }, .n_certs = 2,
                                 .certs = { { c1, sizeof(c1) }, { c2, sizeof(c2) } } };
    struct ipc_fetch_rep got;
    struct ipc_hdr h;
    struct ipc_cur body;
    const char *name;
    size_t n;
    int len;

    /* The request is an identity name, like RENEW. */
    len = ipc_build_ident_req(buf, sizeof(buf), 2, 9, IPC_REQ_FETCH, "api", 3);
    CU_ASSERT_FATAL(len > 0);
    CU_ASSERT_EQUAL_FATAL(ipc_parse_frame(buf, (size_t)len, &h, &body), 0);
    CU_ASSERT_EQUAL(h.type, IPC_REQ_FETCH);
    CU_ASSERT_EQUAL_FATAL(ipc_parse_ident_req(body, &name, &n), 0);
    CU_ASSERT(n == 3 && memcmp(name, "api", 3) == 0);

    len = ipc_build_fetch_rep(buf, sizeof(buf), 2, 9, &rep);
    CU_ASSERT_FATAL(len > 0);
    CU_ASSERT_EQUAL_FATAL(ipc_parse_frame(buf, (size_t)len, &h, &body), 0);
    CU_ASSERT_EQUAL(h.type, IPC_REP_FETCH);
    CU_ASSERT_EQUAL_FATAL(ipc_parse_fetch_rep(body, &got), 0);
    CU_ASSERT(got.keyref.len == sizeof(ref) &&
              memcmp(got.keyref.p, ref, sizeof(ref)) == 0);
    CU_ASSERT_EQUAL_FATAL(got.n_certs, 2);
    CU_ASSERT(got.certs[1].len == sizeof(c2) &&
              memcmp(got.certs[1].p, c2, sizeof(c2)) == 0);
    /* Every truncation of the body fails, and so does one byte more. */
    for (size_t cut = 0; cut < body.left; cut++) {
        struct ipc_cur t = { body.p, cut };

        CU_ASSERT_EQUAL(ipc_parse_fetch_rep(t, &got), -EBADMSG);
    }
    memcpy(big, body.p, body.left);
    big[body.left] = 0;
    CU_ASSERT_EQUAL(ipc_parse_fetch_rep((struct ipc_cur){ big, body.left + 1 },
                                        &got), -EBADMSG);
    /* Every single-bit flip: refused, or parsed with every field inside
     * the body and the pieces tiling it exactly. */
    for (size_t i = 0; i < body.left * 8; i++) {
        size_t used;

        memcpy(big, body.p, body.left);
        big[i / 8] ^= (uint8_t)(1u << (i % 8));
        if (ipc_parse_fetch_rep((struct ipc_cur){ big, body.left }, &got) < 0)
            continue;
        used = 4 + got.keyref.len + 4;
        CU_ASSERT(got.keyref.p == big + 4);
        CU_ASSERT(got.n_certs <= IPC_FETCH_CERTS_MAX);
        for (size_t c = 0; c < got.n_certs; c++) {
            CU_ASSERT(got.certs[c].p == big + used + 4);
            used += 4 + got.certs[c].len;
        }
        CU_ASSERT_EQUAL(used, body.left);
    }

    /* Ranges: no reference, too many certificates, an empty one, a
     * reference over the cap; a certificate count the body cannot hold. */
    rep.keyref.len = 0;
    CU_ASSERT_EQUAL(ipc_build_fetch_rep(buf, sizeof(buf), 2, 9, &rep), -EINVAL);
    rep.keyref.len = sizeof(ref);
    rep.n_certs = IPC_FETCH_CERTS_MAX + 1;
    CU_ASSERT_EQUAL(ipc_build_fetch_rep(buf, sizeof(buf), 2, 9, &rep), -EINVAL);
    rep.n_certs = 2;
    rep.certs[0].len = 0;
    CU_ASSERT_EQUAL(ipc_build_fetch_rep(buf, sizeof(buf), 2, 9, &rep), -EINVAL);
    rep.certs[0].len = sizeof(c1);
    {
        static uint8_t huge[IPC_KEYREF_MAX + 1];
        uint8_t body2[16 + IPC_KEYREF_MAX];

        rep.keyref = (struct ipc_der){ huge, sizeof(huge) };
        CU_ASSERT_EQUAL(ipc_build_fetch_rep(buf, sizeof(buf), 2, 9, &rep),
                        -EINVAL);
        /* Hand-made: a 8193-byte reference; a count of 17; empty cert. */
        memset(body2, 0, sizeof(body2));
        body2[0] = 0; body2[1] = 0; body2[2] = 0x20; body2[3] = 0x01;
        CU_ASSERT_EQUAL(ipc_parse_fetch_rep(
                            (struct ipc_cur){ body2, 4 + IPC_KEYREF_MAX + 1 + 4 },
                            &got), -EBADMSG);
        memcpy(body2, "\0\0\0\1\x30\0\0\0\x11", 9);
        CU_ASSERT_EQUAL(ipc_parse_fetch_rep((struct ipc_cur){ body2, 9 }, &got),
                        -EBADMSG);
        memcpy(body2, "\0\0\0\1\x30\0\0\0\1\0\0\0\0", 13);
        CU_ASSERT_EQUAL(ipc_parse_fetch_rep((struct ipc_cur){ body2, 13 }, &got),
                        -EBADMSG);
    }
    /* A chain that does not fit one frame is an encoding error. */
    {
        static uint8_t cert[IPC_FRAME_MAX / 2];

        rep.keyref = (struct ipc_der){ ref, sizeof(ref) };
        rep.certs[0] = (struct ipc_der){ cert, sizeof(cert) };
        rep.certs[1] = (struct ipc_der){ cert, sizeof(cert) };
        CU_ASSERT_EQUAL(ipc_build_fetch_rep(buf, sizeof(buf), 2, 9, &rep),
                        -EMSGSIZE);
    }
}

int cu_register(void)
{
    static const struct cu_test tests[] = {
        { "sign request round trip", t_sign_req_roundtrip },
        { "replies round trip", t_replies_roundtrip },
        { "admin requests round trip", t_admin_roundtrip },
        { "FETCH round trip, truncation, ranges", t_fetch_roundtrip },
        { "truncated frames and bodies", t_truncated },
        { "trailing bytes", t_trailing_bytes },
        { "bad header fields, unknown version and type", t_bad_header },
        { "oversize", t_oversize },
        { "field ranges", t_field_ranges },
        { "identity names and strings", t_identity_names },
        { NULL, NULL },
    };

    return cu_add_suite("ipc-codec", tests);
}
