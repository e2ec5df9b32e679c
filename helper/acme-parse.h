/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsers of the JSON replies of an ACME server (RFC 8555 §7): directory,
 * order, authorization, challenge and problem document.  Each takes the raw
 * bytes of one reply body (hostile input), refuses anything larger than
 * ACME_MAX_REPLY, parses with JSON_REJECT_DUPLICATES (not JSON_STRICT:
 * servers add members we do not know), checks every member it keeps (URLs
 * are https:// and printable, tokens base64url, bounded lengths and counts)
 * and copies what it keeps into the result, which the caller releases with
 * the matching *_done() (safe on a zeroed or already-released struct).
 * Results are written only on success.  Pure: no logging, no globals, so
 * they can be fuzzed (tests/fuzz/fuzz-acme-reply.c).
 *
 * Optional members may be absent or null.
 *
 * Returns 0, -EMSGSIZE (too large), -EBADMSG (not JSON, wrong shape,
 * a required member missing or invalid), -ENOMEM.
 */
#ifndef SHORTCERT_ACME_PARSE_H
#define SHORTCERT_ACME_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define ACME_MAX_REPLY (256u * 1024u) /* body cap, also used by acme.c */
#define ACME_MAX_URL 2048u
#define ACME_MAX_TOKEN 256u
#define ACME_MAX_IDENT 253u       /* DNS name or IP literal */
#define ACME_MAX_AUTHZ 100u       /* authorizations per order */
#define ACME_MAX_CHALLENGES 16u   /* challenges per authorization */
#define ACME_MAX_DETAIL 256u      /* problem type/detail kept (truncated) */

enum acme_status {
    ACME_STATUS_PENDING,
    ACME_STATUS_READY,
    ACME_STATUS_PROCESSING,
    ACME_STATUS_VALID,
    ACME_STATUS_INVALID,
    ACME_STATUS_DEACTIVATED,
    ACME_STATUS_EXPIRED,
    ACME_STATUS_REVOKED,
    _ACME_STATUS_MAX,
    _ACME_STATUS_INVALID = -22, /* -EINVAL */
};

/* "pending" ... "revoked" -> enum; _ACME_STATUS_INVALID for others. */
enum acme_status acme_status_from_string(const char *s);
const char *acme_status_to_string(enum acme_status s);

/* RFC 7807 problem document.  type and detail are truncated to
 * ACME_MAX_DETAIL and control / non-ASCII bytes are replaced by '?', so
 * they are safe to print; they may still contain what the server echoed
 * (e.g. an ACME token), so redact before logging.  The detail of the first
 * subproblem is appended to detail when present. */
struct acme_problem {
    char *type;   /* e.g. "urn:ietf:params:acme:error:badNonce"; never NULL */
    char *detail; /* may be NULL */
    int status;   /* HTTP status in the document, 0 if absent */
};

int acme_parse_problem(const char *buf, size_t len, struct acme_problem *ret);
void acme_problem_done(struct acme_problem *p);
/* True when p->type is urn:ietf:params:acme:error:<name>. */
bool acme_problem_is(const struct acme_problem *p, const char *name);

struct acme_directory {
    char *new_nonce;
    char *new_account;
    char *new_order;
    char *revoke_cert;   /* optional, may be NULL */
    char *key_change;    /* optional, may be NULL */
    bool eab_required;   /* meta.externalAccountRequired */
};

int acme_parse_directory(const char *buf, size_t len,
                         struct acme_directory *ret);
void acme_directory_done(struct acme_directory *d);

struct acme_order {
    enum acme_status status;
    char **authorizations; /* n_authz https URLs */
    size_t n_authz;
    char *finalize;
    char *certificate;        /* NULL until valid */
    struct acme_problem error; /* type NULL when absent */
};

int acme_parse_order(const char *buf, size_t len, struct acme_order *ret);
void acme_order_done(struct acme_order *o);

struct acme_challenge {
    char *type;  /* "http-01", ...; bounded, printable */
    char *url;
    char *token; /* base64url; NULL for types without a token */
    enum acme_status status;
    struct acme_problem error; /* type NULL when absent */
};

int acme_parse_challenge(const char *buf, size_t len,
                         struct acme_challenge *ret);
void acme_challenge_done(struct acme_challenge *c);

struct acme_authz {
    enum acme_status status;
    char *ident_type;  /* "dns", "ip" */
    char *ident_value;
    bool wildcard;
    struct acme_challenge *challenges;
    size_t n_challenges;
};

int acme_parse_authorization(const char *buf, size_t len,
                             struct acme_authz *ret);
void acme_authz_done(struct acme_authz *a);
/* The first challenge of the given type, or NULL (borrowed). */
const struct acme_challenge *acme_authz_find(const struct acme_authz *a,
                                             const char *type);

#endif
