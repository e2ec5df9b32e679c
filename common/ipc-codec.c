/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Encoder and bounded decoder for the provider <-> shortcertd frames
 * (docs/PROTOCOL.md).  Library code: no logging, no allocation, no globals.
 * Decoders borrow from the caller's buffer; builders write into it.
 */
#include <string.h>

#include "ipc-proto.h"

/* --- writing ------------------------------------------------------------ */

struct wbuf {
    uint8_t *p;
    size_t cap;
    size_t len;
    bool overflow;
};

static void put_bytes(struct wbuf *w, const void *src, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    if (n > 0)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void put_u16(struct wbuf *w, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

    put_bytes(w, b, sizeof(b));
}

static void put_u32(struct wbuf *w, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                     (uint8_t)v };

    put_bytes(w, b, sizeof(b));
}

static void put_blob(struct wbuf *w, const void *src, size_t n)
{
    if (n > UINT32_MAX) {
        w->overflow = true;
        return;
    }
    put_u32(w, (uint32_t)n);
    put_bytes(w, src, n);
}

/* Reserve the header; frame_end() fills it in once the body is known. */
static struct wbuf frame_begin(uint8_t *buf, size_t cap)
{
    struct wbuf w = { .p = buf, .cap = cap < IPC_FRAME_MAX ? cap : IPC_FRAME_MAX };

    if (w.cap < IPC_HDR_LEN)
        w.overflow = true;
    else
        w.len = IPC_HDR_LEN;
    return w;
}

static int frame_end(struct wbuf *w, uint16_t version, uint16_t type,
                     uint32_t request_id)
{
    struct wbuf h;

    if (w->overflow)
        return -EMSGSIZE;
    h = (struct wbuf){ .p = w->p, .cap = IPC_HDR_LEN };
    put_u16(&h, IPC_MAGIC);
    put_u16(&h, version);
    put_u16(&h, type);
    put_u16(&h, 0);
    put_u32(&h, request_id);
    put_u32(&h, (uint32_t)(w->len - IPC_HDR_LEN));
    return (int)w->len;
}

bool ipc_identity_valid(const char *s, size_t len)
{
    if (len == 0 || len > IPC_IDENTITY_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9');

        if (!alnum && (i == 0 || (ch != '.' && ch != '_' && ch != '-')))
            return false;
    }
    return true;
}

int ipc_build_sign_req(uint8_t *buf, size_t cap, uint16_t version,
                       uint32_t request_id, const struct ipc_sign_req *req)
{
    struct wbuf w = frame_begin(buf, cap);

    if (!ipc_identity_valid(req->identity, req->identity_len) ||
        req->msg_len > IPC_MSG_MAX)
        return -EINVAL;
    put_blob(&w, req->identity, req->identity_len);
    put_blob(&w, req->generation, IPC_GENERATION_LEN);
    put_u32(&w, req->scheme);
    put_blob(&w, req->msg, req->msg_len);
    return frame_end(&w, version, IPC_REQ_SIGN, request_id);
}

int ipc_build_sign_rep(uint8_t *buf, size_t cap, uint16_t version,
                       uint32_t request_id, const uint8_t *sig, size_t sig_len,
                       uint32_t notice)
{
    struct wbuf w = frame_begin(buf, cap);

    if (sig_len == 0 || sig_len > IPC_SIG_MAX)
        return -EINVAL;
    put_blob(&w, sig, sig_len);
    if (version >= 2)
        put_u32(&w, notice); /* version 1 has no room for it */
    return frame_end(&w, version, IPC_REP_SIGN, request_id);
}

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

int ipc_build_error_rep(uint8_t *buf, size_t cap, uint16_t version,
                        uint32_t request_id, uint32_t code, uint32_t detail,
                        const char *msg)
{
    struct wbuf w = frame_begin(buf, cap);
    size_t n = msg ? strnlen(msg, IPC_ERRMSG_MAX + 1) : 0;

    if (code == 0 || code >= IPC_ERR_MAX || n > IPC_ERRMSG_MAX ||
        !printable(msg, n))
        return -EINVAL;
    put_u32(&w, code);
    put_u32(&w, detail);
    put_blob(&w, msg, n);
    return frame_end(&w, version, IPC_REP_ERROR, request_id);
}

int ipc_build_status_req(uint8_t *buf, size_t cap, uint16_t version,
                         uint32_t request_id, uint32_t first)
{
    struct wbuf w = frame_begin(buf, cap);

    put_u32(&w, first);
    return frame_end(&w, version, IPC_REQ_STATUS, request_id);
}

int ipc_build_ident_req(uint8_t *buf, size_t cap, uint16_t version,
                        uint32_t request_id, uint16_t type, const char *name,
                        size_t len)
{
    struct wbuf w = frame_begin(buf, cap);

    if ((type != IPC_REQ_RENEW && type != IPC_REQ_ROTATE &&
         type != IPC_REQ_FETCH && type != IPC_REQ_RELOAD) ||
        !ipc_identity_valid(name, len))
        return -EINVAL;
    put_blob(&w, name, len);
    return frame_end(&w, version, type, request_id);
}

int ipc_build_ok_rep(uint8_t *buf, size_t cap, uint16_t version,
                     uint32_t request_id, const char *msg)
{
    struct wbuf w = frame_begin(buf, cap);
    size_t n = msg ? strnlen(msg, IPC_ERRMSG_MAX + 1) : 0;

    if (n > IPC_ERRMSG_MAX || !printable(msg, n))
        return -EINVAL;
    put_blob(&w, msg, n);
    return frame_end(&w, version, IPC_REP_OK, request_id);
}

int ipc_build_status_rep(uint8_t *buf, size_t cap, uint16_t version,
                         uint32_t request_id, const char *json,
                         size_t json_len)
{
    struct wbuf w = frame_begin(buf, cap);

    if (json_len > IPC_STATUS_MAX)
        return -EINVAL;
    put_blob(&w, json, json_len);
    return frame_end(&w, version, IPC_REP_STATUS, request_id);
}

int ipc_build_fetch_rep(uint8_t *buf, size_t cap, uint16_t version,
                        uint32_t request_id, const struct ipc_fetch_rep *rep)
{
    struct wbuf w = frame_begin(buf, cap);

    if (rep->keyref.len == 0 || rep->keyref.len > IPC_KEYREF_MAX ||
        rep->n_certs > IPC_FETCH_CERTS_MAX)
        return -EINVAL;
    put_blob(&w, rep->keyref.p, rep->keyref.len);
    put_u32(&w, (uint32_t)rep->n_certs);
    for (size_t i = 0; i < rep->n_certs; i++) {
        if (rep->certs[i].len == 0)
            return -EINVAL;
        put_blob(&w, rep->certs[i].p, rep->certs[i].len);
    }
    return frame_end(&w, version, IPC_REP_FETCH, request_id);
}

/* --- reading ------------------------------------------------------------ */

int ipc_parse_frame(const uint8_t *buf, size_t len, struct ipc_hdr *ret_hdr,
                    struct ipc_cur *ret_body)
{
    struct ipc_cur c = { .p = buf, .left = len };
    struct ipc_hdr h;
    uint16_t magic;

    if (len < IPC_HDR_LEN || len > IPC_FRAME_MAX)
        return -EBADMSG;
    if (ipc_get_u16(&c, &magic) < 0 || ipc_get_u16(&c, &h.version) < 0 ||
        ipc_get_u16(&c, &h.type) < 0 || ipc_get_u16(&c, &h.flags) < 0 ||
        ipc_get_u32(&c, &h.request_id) < 0 || ipc_get_u32(&c, &h.body_len) < 0)
        return -EBADMSG;
    if (magic != IPC_MAGIC || h.version == 0 || h.flags != 0 ||
        h.body_len != c.left)
        return -EBADMSG;
    *ret_hdr = h;
    *ret_body = c;
    return 0;
}

int ipc_parse_sign_req(struct ipc_cur body, struct ipc_sign_req *ret)
{
    struct ipc_cur id, gen, msg;
    struct ipc_sign_req r;

    if (ipc_get_blob(&body, &id) < 0 || ipc_get_blob(&body, &gen) < 0 ||
        ipc_get_u32(&body, &r.scheme) < 0 || ipc_get_blob(&body, &msg) < 0)
        return -EBADMSG;
    if (body.left != 0)
        return -EBADMSG; /* trailing bytes */
    if (!ipc_identity_valid((const char *)id.p, id.left) ||
        gen.left != IPC_GENERATION_LEN || msg.left > IPC_MSG_MAX)
        return -EBADMSG;
    r.identity = (const char *)id.p;
    r.identity_len = id.left;
    memcpy(r.generation, gen.p, IPC_GENERATION_LEN);
    r.msg = msg.p;
    r.msg_len = msg.left;
    *ret = r;
    return 0;
}

int ipc_parse_sign_rep(struct ipc_cur body, uint16_t version,
                       struct ipc_sign_rep *ret)
{
    struct ipc_cur sig;
    uint32_t notice = IPC_NOTICE_NONE;

    if (ipc_get_blob(&body, &sig) < 0)
        return -EBADMSG;
    if (version >= 2 && ipc_get_u32(&body, &notice) < 0)
        return -EBADMSG;
    if (body.left != 0 || sig.left == 0 || sig.left > IPC_SIG_MAX)
        return -EBADMSG;
    *ret = (struct ipc_sign_rep){ .sig = sig.p, .sig_len = sig.left,
                                  .notice = notice };
    return 0;
}

int ipc_parse_error_rep(struct ipc_cur body, struct ipc_error_rep *ret)
{
    struct ipc_error_rep r;
    struct ipc_cur msg;

    if (ipc_get_u32(&body, &r.code) < 0 || ipc_get_u32(&body, &r.detail) < 0 ||
        ipc_get_blob(&body, &msg) < 0 || body.left != 0)
        return -EBADMSG;
    if (r.code == 0 || msg.left > IPC_ERRMSG_MAX ||
        !printable((const char *)msg.p, msg.left))
        return -EBADMSG;
    r.msg = (const char *)msg.p;
    r.msg_len = msg.left;
    *ret = r;
    return 0;
}

int ipc_parse_status_req(struct ipc_cur body, uint32_t *ret_first)
{
    uint32_t first;

    if (ipc_get_u32(&body, &first) < 0 || body.left != 0)
        return -EBADMSG;
    *ret_first = first;
    return 0;
}

int ipc_parse_ident_req(struct ipc_cur body, const char **ret_name,
                        size_t *ret_len)
{
    struct ipc_cur id;

    if (ipc_get_blob(&body, &id) < 0 || body.left != 0 ||
        !ipc_identity_valid((const char *)id.p, id.left))
        return -EBADMSG;
    *ret_name = (const char *)id.p;
    *ret_len = id.left;
    return 0;
}

int ipc_parse_ok_rep(struct ipc_cur body, const char **ret_msg, size_t *ret_len)
{
    struct ipc_cur m;

    if (ipc_get_blob(&body, &m) < 0 || body.left != 0 ||
        m.left > IPC_ERRMSG_MAX || !printable((const char *)m.p, m.left))
        return -EBADMSG;
    *ret_msg = (const char *)m.p;
    *ret_len = m.left;
    return 0;
}

int ipc_parse_status_rep(struct ipc_cur body, struct ipc_status_rep *ret)
{
    struct ipc_cur js;

    if (ipc_get_blob(&body, &js) < 0 || body.left != 0 ||
        js.left > IPC_STATUS_MAX)
        return -EBADMSG;
    *ret = (struct ipc_status_rep){ .json = (const char *)js.p,
                                    .json_len = js.left };
    return 0;
}

int ipc_parse_fetch_rep(struct ipc_cur body, struct ipc_fetch_rep *ret)
{
    struct ipc_fetch_rep r = { 0 };
    struct ipc_cur blob;
    uint32_t n;

    if (ipc_get_blob(&body, &blob) < 0 || blob.left == 0 ||
        blob.left > IPC_KEYREF_MAX || ipc_get_u32(&body, &n) < 0 ||
        n > IPC_FETCH_CERTS_MAX)
        return -EBADMSG;
    r.keyref = (struct ipc_der){ .p = blob.p, .len = blob.left };
    for (uint32_t i = 0; i < n; i++) {
        if (ipc_get_blob(&body, &blob) < 0 || blob.left == 0)
            return -EBADMSG;
        r.certs[i] = (struct ipc_der){ .p = blob.p, .len = blob.left };
    }
    if (body.left != 0)
        return -EBADMSG; /* trailing bytes */
    r.n_certs = n;
    *ret = r;
    return 0;
}

const char *ipc_err_str(uint32_t code)
{
    static const char *const s[IPC_ERR_MAX] = {
        [IPC_ERR_BAD_REQUEST] = "bad request",
        [IPC_ERR_VERSION] = "unsupported protocol version",
        [IPC_ERR_UNKNOWN_TYPE] = "unknown request type",
        [IPC_ERR_NO_IDENTITY] = "no such identity",
        [IPC_ERR_DENIED] = "permission denied",
        [IPC_ERR_STALE_KEY] = "key generation no longer current",
        [IPC_ERR_PURPOSE] = "not a TLS handshake signature input for this identity",
        [IPC_ERR_SCHEME] = "signature scheme does not fit the key",
        [IPC_ERR_NOT_READY] = "identity has no key yet",
        [IPC_ERR_INTERNAL] = "internal error in shortcertd",
    };

    if (code < IPC_ERR_MAX && s[code])
        return s[code];
    return "unknown error";
}

const char *ipc_scheme_str(uint32_t scheme)
{
    static const char *const s[IPC_SCHEME_MAX] = {
        [IPC_SCHEME_ECDSA_SHA256] = "ecdsa-sha256",
        [IPC_SCHEME_ECDSA_SHA384] = "ecdsa-sha384",
        [IPC_SCHEME_ECDSA_SHA512] = "ecdsa-sha512",
        [IPC_SCHEME_RSA_PKCS1_SHA256] = "rsa-pkcs1-sha256",
        [IPC_SCHEME_RSA_PKCS1_SHA384] = "rsa-pkcs1-sha384",
        [IPC_SCHEME_RSA_PKCS1_SHA512] = "rsa-pkcs1-sha512",
        [IPC_SCHEME_RSA_PSS_SHA256] = "rsa-pss-sha256",
        [IPC_SCHEME_RSA_PSS_SHA384] = "rsa-pss-sha384",
        [IPC_SCHEME_RSA_PSS_SHA512] = "rsa-pss-sha512",
        [IPC_SCHEME_ED25519] = "ed25519",
    };

    return scheme < IPC_SCHEME_MAX ? s[scheme] : NULL;
}
