/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire contract between the shortcert provider (inside a service) and
 * shortcertd.  docs/PROTOCOL.md is the normative text; this header and
 * common/ipc-codec.c implement it.  One SOCK_SEQPACKET message carries one
 * frame: a 16-byte big-endian header, then a body of fixed-order fields.
 * Parsing goes only through struct ipc_cur, a bounded cursor that never owns
 * memory and never moves on failure.
 */
#ifndef SHORTCERT_IPC_PROTO_H
#define SHORTCERT_IPC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define IPC_MAGIC 0x5343u /* "SC" */
#define IPC_VERSION_MIN 1
#define IPC_VERSION_MAX 2 /* 2: SIGN replies carry a notice */
#define IPC_HDR_LEN 16
#define IPC_FRAME_MAX 65536u                      /* whole frame, header included */
#define IPC_MSG_MAX (IPC_FRAME_MAX - IPC_HDR_LEN - 256) /* to-be-signed bytes */
#define IPC_IDENTITY_MAX 64
#define IPC_GENERATION_LEN 32 /* SHA-256 of the SubjectPublicKeyInfo */
#define IPC_SIG_MAX 1024      /* RSA-8192 */
#define IPC_ERRMSG_MAX 256
#define IPC_STATUS_MAX (IPC_FRAME_MAX - IPC_HDR_LEN - 8)
#define IPC_KEYREF_MAX 8192 /* DER key reference in a FETCH reply */
#define IPC_FETCH_CERTS_MAX 16 /* leaf + intermediates in a FETCH reply */

enum ipc_type {
    IPC_REQ_SIGN = 0x0001,   /* signing socket */
    IPC_REQ_STATUS = 0x0002, /* admin socket */
    IPC_REQ_RENEW = 0x0003,  /* admin socket */
    IPC_REQ_ROTATE = 0x0004, /* admin socket */
    IPC_REQ_FETCH = 0x0005,  /* signing socket: public material; any
                              * version (older daemons: UNKNOWN_TYPE) */
    IPC_REQ_RELOAD = 0x0006, /* admin socket: re-read the configuration;
                              * body as RENEW, naming "config" */
    IPC_REP_ERROR = 0x8000,
    IPC_REP_SIGN = 0x8001,
    IPC_REP_STATUS = 0x8002,
    IPC_REP_OK = 0x8003,
    IPC_REP_FETCH = 0x8005,
};

/* How the message is to be signed.  The helper hashes the message itself;
 * the provider never sends a bare digest. */
enum ipc_scheme {
    IPC_SCHEME_ECDSA_SHA256 = 1,
    IPC_SCHEME_ECDSA_SHA384 = 2,
    IPC_SCHEME_ECDSA_SHA512 = 3,
    IPC_SCHEME_RSA_PKCS1_SHA256 = 4,
    IPC_SCHEME_RSA_PKCS1_SHA384 = 5,
    IPC_SCHEME_RSA_PKCS1_SHA512 = 6,
    IPC_SCHEME_RSA_PSS_SHA256 = 7, /* salt length = hash length, MGF1 same hash */
    IPC_SCHEME_RSA_PSS_SHA384 = 8,
    IPC_SCHEME_RSA_PSS_SHA512 = 9,
    IPC_SCHEME_ED25519 = 10, /* pure EdDSA over the whole message */
    IPC_SCHEME_MAX,
};

enum ipc_err {
    IPC_ERR_BAD_REQUEST = 1,  /* well-framed but semantically invalid */
    IPC_ERR_VERSION = 2,      /* detail = highest version the helper speaks */
    IPC_ERR_UNKNOWN_TYPE = 3,
    IPC_ERR_NO_IDENTITY = 4,
    IPC_ERR_DENIED = 5,       /* peer uid/groups not on the allow list */
    IPC_ERR_STALE_KEY = 6,    /* key generation no longer usable */
    IPC_ERR_PURPOSE = 7,      /* not a TLS handshake input for this role */
    IPC_ERR_SCHEME = 8,       /* scheme does not fit the key */
    IPC_ERR_NOT_READY = 9,    /* identity has no key yet */
    IPC_ERR_INTERNAL = 10,
    IPC_ERR_MAX,
};

struct ipc_cur {
    const uint8_t *p;
    size_t left;
};

struct ipc_hdr {
    uint16_t version;
    uint16_t type;
    uint16_t flags; /* must be 0 in version 1 */
    uint32_t request_id;
    uint32_t body_len;
};

/* Parsed requests and replies borrow from the frame they were parsed from. */
struct ipc_sign_req {
    const char *identity; /* not NUL-terminated */
    size_t identity_len;
    uint8_t generation[IPC_GENERATION_LEN];
    uint32_t scheme; /* enum ipc_scheme */
    const uint8_t *msg;
    size_t msg_len;
};

/* Version 2 SIGN replies say something about the key that signed. */
enum ipc_notice {
    IPC_NOTICE_NONE = 0,
    IPC_NOTICE_RETIRED = 1, /* a retired generation signed: reload the
                             * service before its grace runs out */
};

struct ipc_sign_rep {
    const uint8_t *sig;
    size_t sig_len;
    uint32_t notice; /* enum ipc_notice; always NONE in version 1 */
};

struct ipc_error_rep {
    uint32_t code;   /* enum ipc_err */
    uint32_t detail; /* code-specific; 0 if none */
    const char *msg; /* not NUL-terminated, printable ASCII only */
    size_t msg_len;
};

/* FETCH reply: the identity's current key reference and certificates. */
struct ipc_der {
    const uint8_t *p;
    size_t len;
};

struct ipc_fetch_rep {
    struct ipc_der keyref;  /* DER ShortcertKeyRef (include/keyref.h) */
    size_t n_certs;         /* 0: no certificate yet */
    struct ipc_der certs[IPC_FETCH_CERTS_MAX]; /* leaf first */
};

struct ipc_status_rep {
    const char *json; /* not NUL-terminated */
    size_t json_len;
};

_warn_unused_ static inline int ipc_get_u16(struct ipc_cur *c, uint16_t *ret)
{
    if (c->left < 2)
        return -EBADMSG;
    *ret = (uint16_t)((uint16_t)c->p[0] << 8 | c->p[1]);
    c->p += 2;
    c->left -= 2;
    return 0;
}

_warn_unused_ static inline int ipc_get_u32(struct ipc_cur *c, uint32_t *ret)
{
    if (c->left < 4)
        return -EBADMSG;
    *ret = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 |
           (uint32_t)c->p[2] << 8 | c->p[3];
    c->p += 4;
    c->left -= 4;
    return 0;
}

/* A u32 length, then that many bytes; ret borrows them. */
_warn_unused_ static inline int ipc_get_blob(struct ipc_cur *c,
                                             struct ipc_cur *ret)
{
    struct ipc_cur tmp = *c;
    uint32_t len;

    if (ipc_get_u32(&tmp, &len) < 0 || len > tmp.left)
        return -EBADMSG;
    *ret = (struct ipc_cur){ .p = tmp.p, .left = len };
    tmp.p += len;
    tmp.left -= len;
    *c = tmp;
    return 0;
}

/* True for a well-formed identity name: [A-Za-z0-9][A-Za-z0-9._-]{0,63}. */
bool ipc_identity_valid(const char *s, size_t len);

/* Frame level.  ipc_parse_frame() accepts any version (the caller decides
 * what to do with one it does not speak) but checks magic, flags, and that
 * body_len is exactly what follows the header.  -EBADMSG on any mismatch. */
_warn_unused_ int ipc_parse_frame(const uint8_t *buf, size_t len,
                                  struct ipc_hdr *ret_hdr,
                                  struct ipc_cur *ret_body);

/* Body parsers: every field bounded, bytes left over are an error. */
_warn_unused_ int ipc_parse_sign_req(struct ipc_cur body,
                                     struct ipc_sign_req *ret);
_warn_unused_ int ipc_parse_sign_rep(struct ipc_cur body, uint16_t version,
                                     struct ipc_sign_rep *ret);
_warn_unused_ int ipc_parse_error_rep(struct ipc_cur body,
                                      struct ipc_error_rep *ret);
/* STATUS request: the index of the first identity wanted (the reply says
 * where the next page starts when the list does not fit one frame). */
_warn_unused_ int ipc_parse_status_req(struct ipc_cur body, uint32_t *ret_first);
_warn_unused_ int ipc_parse_status_rep(struct ipc_cur body,
                                       struct ipc_status_rep *ret);

/* RENEW and ROTATE requests: an identity name.  The OK reply: a message. */
_warn_unused_ int ipc_parse_ident_req(struct ipc_cur body, const char **ret_name,
                                      size_t *ret_len);
_warn_unused_ int ipc_parse_ok_rep(struct ipc_cur body, const char **ret_msg,
                                   size_t *ret_len);

/* FETCH request: ipc_build_ident_req()/ipc_parse_ident_req() with type
 * IPC_REQ_FETCH.  The reply: a key reference of 1..IPC_KEYREF_MAX bytes,
 * then a count of at most IPC_FETCH_CERTS_MAX certificates, each a
 * non-empty blob; nothing after them. */
_warn_unused_ int ipc_parse_fetch_rep(struct ipc_cur body,
                                      struct ipc_fetch_rep *ret);
_warn_unused_ int ipc_build_fetch_rep(uint8_t *buf, size_t cap,
                                      uint16_t version, uint32_t request_id,
                                      const struct ipc_fetch_rep *rep);

/* Builders write a whole frame into buf (capacity cap) and return its
 * length, or -EMSGSIZE if it does not fit or exceeds IPC_FRAME_MAX, or
 * -EINVAL for a field out of range. */
_warn_unused_ int ipc_build_sign_req(uint8_t *buf, size_t cap, uint16_t version,
                                     uint32_t request_id,
                                     const struct ipc_sign_req *req);
_warn_unused_ int ipc_build_sign_rep(uint8_t *buf, size_t cap, uint16_t version,
                                     uint32_t request_id, const uint8_t *sig,
                                     size_t sig_len, uint32_t notice);
_warn_unused_ int ipc_build_error_rep(uint8_t *buf, size_t cap,
                                      uint16_t version, uint32_t request_id,
                                      uint32_t code, uint32_t detail,
                                      const char *msg);
_warn_unused_ int ipc_build_status_req(uint8_t *buf, size_t cap,
                                       uint16_t version, uint32_t request_id,
                                       uint32_t first);
_warn_unused_ int ipc_build_ident_req(uint8_t *buf, size_t cap, uint16_t version,
                                      uint32_t request_id, uint16_t type,
                                      const char *name, size_t len);
_warn_unused_ int ipc_build_ok_rep(uint8_t *buf, size_t cap, uint16_t version,
                                   uint32_t request_id, const char *msg);
_warn_unused_ int ipc_build_status_rep(uint8_t *buf, size_t cap,
                                       uint16_t version, uint32_t request_id,
                                       const char *json, size_t json_len);

/* Short English text for an error code (never NULL). */
const char *ipc_err_str(uint32_t code);
/* Scheme name such as "ecdsa-sha256", or NULL for an unknown value. */
const char *ipc_scheme_str(uint32_t scheme);

#endif
