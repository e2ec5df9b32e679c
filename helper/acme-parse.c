/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bounded parsers of ACME reply bodies (see acme-parse.h).  This is the
 * trust boundary between the network and the ACME state machine: nothing in
 * acme.c looks at a reply except through these functions, and everything
 * they return has been checked for type, length and character set.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "acme-parse.h"
#include "jws.h"
#include "macro.h"

#define ACME_URN "urn:ietf:params:acme:error:"
#define ACME_MAX_TYPE 64u /* challenge / identifier type */

static const char *const status_names[_ACME_STATUS_MAX] = {
    [ACME_STATUS_PENDING] = "pending",
    [ACME_STATUS_READY] = "ready",
    [ACME_STATUS_PROCESSING] = "processing",
    [ACME_STATUS_VALID] = "valid",
    [ACME_STATUS_INVALID] = "invalid",
    [ACME_STATUS_DEACTIVATED] = "deactivated",
    [ACME_STATUS_EXPIRED] = "expired",
    [ACME_STATUS_REVOKED] = "revoked",
};

enum acme_status acme_status_from_string(const char *s)
{
    if (!s)
        return _ACME_STATUS_INVALID;
    for (int i = 0; i < _ACME_STATUS_MAX; i++)
        if (strcmp(s, status_names[i]) == 0)
            return (enum acme_status)i;
    return _ACME_STATUS_INVALID;
}

const char *acme_status_to_string(enum acme_status s)
{
    if (s < 0 || s >= _ACME_STATUS_MAX)
        return "(unknown)";
    return status_names[s];
}

static void jsonp(json_t **p)
{
    json_decref(*p);
}

/* One reply body -> a JSON object.  json_error_t is deliberately dropped:
 * its text echoes the input. */
static int load_object(const char *buf, size_t len, json_t **ret)
{
    json_error_t jerr;
    json_t *root;

    if (!buf && len)
        return -EINVAL;
    if (len > ACME_MAX_REPLY)
        return -EMSGSIZE;
    if (len == 0)
        return -EBADMSG;
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return -EBADMSG;
    if (!json_is_object(root)) {
        json_decref(root);
        return -EBADMSG;
    }
    *ret = root;
    return 0;
}

/* Printable ASCII without space: what URLs, tokens and types are made of. */
static bool is_graph(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* A string of 1..max graph characters; copied. */
static int graph_from(const json_t *v, size_t max, char **ret)
{
    size_t n;
    char *s;

    if (!json_is_string(v))
        return -EBADMSG;
    n = json_string_length(v);
    if (n == 0 || n > max || !is_graph(json_string_value(v), n))
        return -EBADMSG;
    s = strndup(json_string_value(v), n);
    if (!s)
        return -ENOMEM;
    *ret = s;
    return 0;
}

static int get_graph(const json_t *o, const char *member, size_t max,
                     bool required, char **ret)
{
    json_t *v = json_object_get(o, member);

    if (!v || (json_is_null(v) && !required)) {
        *ret = NULL;
        return required ? -EBADMSG : 0;
    }
    return graph_from(v, max, ret);
}

/* https only (libcurl is restricted to it as well); a host must follow. */
static int url_from(const json_t *v, char **ret)
{
    _cleanup_free_ char *u = NULL;
    int r = graph_from(v, ACME_MAX_URL, &u);

    if (r < 0)
        return r;
    if (strncasecmp(u, "https://", 8) != 0 || u[8] == '\0' || u[8] == '/')
        return -EBADMSG;
    *ret = TAKE_PTR(u);
    return 0;
}

static int get_url(const json_t *o, const char *member, bool required,
                   char **ret)
{
    json_t *v = json_object_get(o, member);

    if (!v || (json_is_null(v) && !required)) {
        *ret = NULL;
        return required ? -EBADMSG : 0;
    }
    return url_from(v, ret);
}

static int get_status(const json_t *o, enum acme_status *ret)
{
    json_t *v = json_object_get(o, "status");
    enum acme_status s;

    if (!json_is_string(v))
        return -EBADMSG;
    s = acme_status_from_string(json_string_value(v));
    if (s < 0)
        return -EBADMSG;
    *ret = s;
    return 0;
}

/* Copy at most ACME_MAX_DETAIL bytes; control and non-ASCII bytes -> '?'. */
static char *sanitized_copy(const char *s, size_t n)
{
    char *out;

    if (n > ACME_MAX_DETAIL)
        n = ACME_MAX_DETAIL;
    out = malloc(n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    out[n] = '\0';
    return out;
}

void acme_problem_done(struct acme_problem *p)
{
    if (!p)
        return;
    free(p->type);
    free(p->detail);
    *p = (struct acme_problem){ 0 };
}

bool acme_problem_is(const struct acme_problem *p, const char *name)
{
    size_t u = strlen(ACME_URN);

    return p && p->type && strncmp(p->type, ACME_URN, u) == 0 &&
           strcmp(p->type + u, name) == 0;
}

static int problem_from_json(const json_t *o, struct acme_problem *ret)
{
    _cleanup_(acme_problem_done) struct acme_problem p = { 0 };
    json_t *type, *detail, *status, *sub;

    if (!json_is_object(o))
        return -EBADMSG;
    type = json_object_get(o, "type");
    detail = json_object_get(o, "detail");
    status = json_object_get(o, "status");
    if ((type && !json_is_string(type)) ||
        (detail && !json_is_string(detail)) ||
        (status && !json_is_integer(status)))
        return -EBADMSG;
    /* RFC 7807 §4.2: an absent type means "about:blank". */
    p.type = type ? sanitized_copy(json_string_value(type),
                                   json_string_length(type))
                  : strdup("about:blank");
    if (!p.type)
        return -ENOMEM;
    if (detail) {
        p.detail = sanitized_copy(json_string_value(detail),
                                  json_string_length(detail));
        if (!p.detail)
            return -ENOMEM;
    }
    if (status) {
        json_int_t st = json_integer_value(status);

        p.status = (st >= 100 && st <= 599) ? (int)st : 0;
    }
    /* RFC 8555 §6.7.1: the first subproblem usually says which identifier
     * failed; keep its detail too (bounded). */
    sub = json_object_get(o, "subproblems");
    if (json_is_array(sub) && json_array_size(sub) > 0) {
        json_t *sd = json_object_get(json_array_get(sub, 0), "detail");

        if (json_is_string(sd)) {
            size_t have = p.detail ? strlen(p.detail) : 0;
            size_t add = json_string_length(sd);
            _cleanup_free_ char *sdc = NULL;
            char *joined;

            if (add > ACME_MAX_DETAIL)
                add = ACME_MAX_DETAIL;
            sdc = sanitized_copy(json_string_value(sd), add);
            joined = malloc(have + add + 4);
            if (!sdc || !joined) {
                free(joined);
                return -ENOMEM;
            }
            memcpy(joined, p.detail ? p.detail : "", have);
            memcpy(joined + have, " [", 2);
            memcpy(joined + have + 2, sdc, add);
            memcpy(joined + have + 2 + add, "]", 2);
            free(p.detail);
            p.detail = joined;
        }
    }
    *ret = p;
    p = (struct acme_problem){ 0 };
    return 0;
}

/* Optional "error" member. */
static int get_error(const json_t *o, struct acme_problem *ret)
{
    json_t *e = json_object_get(o, "error");

    if (!e || json_is_null(e)) {
        *ret = (struct acme_problem){ 0 };
        return 0;
    }
    return problem_from_json(e, ret);
}

int acme_parse_problem(const char *buf, size_t len, struct acme_problem *ret)
{
    _cleanup_(jsonp) json_t *root = NULL;
    int r;

    if (!ret)
        return -EINVAL;
    r = load_object(buf, len, &root);
    if (r < 0)
        return r;
    return problem_from_json(root, ret);
}

/* ------------------------------------------------------------ directory */

void acme_directory_done(struct acme_directory *d)
{
    if (!d)
        return;
    free(d->new_nonce);
    free(d->new_account);
    free(d->new_order);
    free(d->revoke_cert);
    free(d->key_change);
    *d = (struct acme_directory){ 0 };
}

int acme_parse_directory(const char *buf, size_t len,
                         struct acme_directory *ret)
{
    _cleanup_(jsonp) json_t *root = NULL;
    _cleanup_(acme_directory_done) struct acme_directory d = { 0 };
    json_t *meta;
    int r;

    if (!ret)
        return -EINVAL;
    r = load_object(buf, len, &root);
    if (r < 0)
        return r;
    if ((r = get_url(root, "newNonce", true, &d.new_nonce)) < 0 ||
        (r = get_url(root, "newAccount", true, &d.new_account)) < 0 ||
        (r = get_url(root, "newOrder", true, &d.new_order)) < 0 ||
        (r = get_url(root, "revokeCert", false, &d.revoke_cert)) < 0 ||
        (r = get_url(root, "keyChange", false, &d.key_change)) < 0)
        return r;
    meta = json_object_get(root, "meta");
    if (meta) {
        json_t *eab;

        if (!json_is_object(meta))
            return -EBADMSG;
        eab = json_object_get(meta, "externalAccountRequired");
        if (eab && !json_is_boolean(eab))
            return -EBADMSG;
        d.eab_required = json_is_true(eab);
    }
    *ret = d;
    d = (struct acme_directory){ 0 };
    return 0;
}

/* ---------------------------------------------------------------- order */

void acme_order_done(struct acme_order *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_authz; i++)
        free(o->authorizations[i]);
    free(o->authorizations);
    free(o->finalize);
    free(o->certificate);
    acme_problem_done(&o->error);
    *o = (struct acme_order){ 0 };
}

int acme_parse_order(const char *buf, size_t len, struct acme_order *ret)
{
    _cleanup_(jsonp) json_t *root = NULL;
    _cleanup_(acme_order_done) struct acme_order o = { 0 };
    json_t *authz;
    int r;

    if (!ret)
        return -EINVAL;
    r = load_object(buf, len, &root);
    if (r < 0)
        return r;
    if ((r = get_status(root, &o.status)) < 0 ||
        (r = get_url(root, "finalize", true, &o.finalize)) < 0 ||
        (r = get_url(root, "certificate", false, &o.certificate)) < 0 ||
        (r = get_error(root, &o.error)) < 0)
        return r;
    authz = json_object_get(root, "authorizations");
    if (!json_is_array(authz) || json_array_size(authz) > ACME_MAX_AUTHZ)
        return -EBADMSG;
    if (json_array_size(authz) > 0) {
        o.authorizations = calloc(json_array_size(authz), sizeof(char *));
        if (!o.authorizations)
            return -ENOMEM;
    }
    for (size_t i = 0; i < json_array_size(authz); i++) {
        r = url_from(json_array_get(authz, i), &o.authorizations[i]);
        if (r < 0)
            return r;
        o.n_authz++;
    }
    *ret = o;
    o = (struct acme_order){ 0 };
    return 0;
}

/* ------------------------------------------------------------ challenge */

void acme_challenge_done(struct acme_challenge *c)
{
    if (!c)
        return;
    free(c->type);
    free(c->url);
    free(c->token);
    acme_problem_done(&c->error);
    *c = (struct acme_challenge){ 0 };
}

static int challenge_from_json(const json_t *o, struct acme_challenge *ret)
{
    _cleanup_(acme_challenge_done) struct acme_challenge c = { 0 };
    int r;

    if (!json_is_object(o))
        return -EBADMSG;
    if ((r = get_graph(o, "type", ACME_MAX_TYPE, true, &c.type)) < 0 ||
        (r = get_url(o, "url", true, &c.url)) < 0 ||
        (r = get_status(o, &c.status)) < 0 ||
        (r = get_graph(o, "token", ACME_MAX_TOKEN, false, &c.token)) < 0 ||
        (r = get_error(o, &c.error)) < 0)
        return r;
    /* The token ends up in a URL path and in our responder's table. */
    if (c.token && !jws_is_b64url(c.token, strlen(c.token)))
        return -EBADMSG;
    *ret = c;
    c = (struct acme_challenge){ 0 };
    return 0;
}

int acme_parse_challenge(const char *buf, size_t len,
                         struct acme_challenge *ret)
{
    _cleanup_(jsonp) json_t *root = NULL;
    int r;

    if (!ret)
        return -EINVAL;
    r = load_object(buf, len, &root);
    if (r < 0)
        return r;
    return challenge_from_json(root, ret);
}

/* -------------------------------------------------------- authorization */

void acme_authz_done(struct acme_authz *a)
{
    if (!a)
        return;
    free(a->ident_type);
    free(a->ident_value);
    for (size_t i = 0; i < a->n_challenges; i++)
        acme_challenge_done(&a->challenges[i]);
    free(a->challenges);
    *a = (struct acme_authz){ 0 };
}

const struct acme_challenge *acme_authz_find(const struct acme_authz *a,
                                             const char *type)
{
    if (!a || !type)
        return NULL;
    for (size_t i = 0; i < a->n_challenges; i++)
        if (strcmp(a->challenges[i].type, type) == 0)
            return &a->challenges[i];
    return NULL;
}

int acme_parse_authorization(const char *buf, size_t len,
                             struct acme_authz *ret)
{
    _cleanup_(jsonp) json_t *root = NULL;
    _cleanup_(acme_authz_done) struct acme_authz a = { 0 };
    json_t *ident, *chs, *wc;
    int r;

    if (!ret)
        return -EINVAL;
    r = load_object(buf, len, &root);
    if (r < 0)
        return r;
    r = get_status(root, &a.status);
    if (r < 0)
        return r;
    ident = json_object_get(root, "identifier");
    if (!json_is_object(ident))
        return -EBADMSG;
    if ((r = get_graph(ident, "type", ACME_MAX_TYPE, true, &a.ident_type)) <
            0 ||
        (r = get_graph(ident, "value", ACME_MAX_IDENT, true,
                       &a.ident_value)) < 0)
        return r;
    wc = json_object_get(root, "wildcard");
    if (wc && !json_is_boolean(wc))
        return -EBADMSG;
    a.wildcard = json_is_true(wc);
    chs = json_object_get(root, "challenges");
    if (!json_is_array(chs) || json_array_size(chs) > ACME_MAX_CHALLENGES)
        return -EBADMSG;
    if (json_array_size(chs) > 0) {
        a.challenges =
            calloc(json_array_size(chs), sizeof(struct acme_challenge));
        if (!a.challenges)
            return -ENOMEM;
    }
    for (size_t i = 0; i < json_array_size(chs); i++) {
        r = challenge_from_json(json_array_get(chs, i), &a.challenges[i]);
        if (r < 0)
            return r;
        a.n_challenges++;
    }
    *ret = a;
    a = (struct acme_authz){ 0 };
    return 0;
}
