/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: every ACME reply parser of helper/acme-parse.c on the same
 * input (directory, order, authorization, challenge, problem document),
 * plus the invariants their results promise: URLs are https://, tokens
 * base64url, problem texts printable, counts bounded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acme-parse.h"
#include "fuzz.h"
#include "jws.h"

static void check_url(const char *u, int required)
{
    if (!u) {
        if (required)
            abort();
        return;
    }
    if (strncasecmp(u, "https://", 8) != 0 || strlen(u) > ACME_MAX_URL)
        abort();
}

static void check_printable(const char *s)
{
    if (!s)
        return;
    if (strlen(s) > 3 * ACME_MAX_DETAIL)
        abort();
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            abort();
}

static void check_problem(const struct acme_problem *p)
{
    check_printable(p->type);
    check_printable(p->detail);
    (void)acme_problem_is(p, "badNonce");
}

static void check_challenge(const struct acme_challenge *c)
{
    check_url(c->url, 1);
    if (!c->type || c->status < 0 || c->status >= _ACME_STATUS_MAX)
        abort();
    if (c->token && (strlen(c->token) > ACME_MAX_TOKEN ||
                     !jws_is_b64url(c->token, strlen(c->token))))
        abort();
    check_problem(&c->error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct acme_directory d = { 0 };
    struct acme_order o = { 0 };
    struct acme_authz a = { 0 };
    struct acme_challenge c = { 0 };
    struct acme_problem p = { 0 };

    if (acme_parse_directory(buf, size, &d) == 0) {
        check_url(d.new_nonce, 1);
        check_url(d.new_account, 1);
        check_url(d.new_order, 1);
        check_url(d.revoke_cert, 0);
        check_url(d.key_change, 0);
    }
    acme_directory_done(&d);
    acme_directory_done(&d); /* idempotent */

    if (acme_parse_order(buf, size, &o) == 0) {
        if (o.n_authz > ACME_MAX_AUTHZ)
            abort();
        for (size_t i = 0; i < o.n_authz; i++)
            check_url(o.authorizations[i], 1);
        check_url(o.finalize, 1);
        check_url(o.certificate, 0);
        check_problem(&o.error);
        (void)acme_status_to_string(o.status);
    }
    acme_order_done(&o);

    if (acme_parse_authorization(buf, size, &a) == 0) {
        if (a.n_challenges > ACME_MAX_CHALLENGES || !a.ident_type ||
            !a.ident_value || strlen(a.ident_value) > ACME_MAX_IDENT)
            abort();
        for (size_t i = 0; i < a.n_challenges; i++)
            check_challenge(&a.challenges[i]);
        (void)acme_authz_find(&a, "http-01");
    }
    acme_authz_done(&a);

    if (acme_parse_challenge(buf, size, &c) == 0)
        check_challenge(&c);
    acme_challenge_done(&c);

    if (acme_parse_problem(buf, size, &p) == 0) {
        if (!p.type)
            abort();
        check_problem(&p);
    }
    acme_problem_done(&p);
    return 0;
}
