/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for helper/acme-parse.c.  The inputs marked "step-ca 0.19"
 * are real reply bodies captured from the test harness CA (the same files
 * seed tests/fuzz/corpus/fuzz-acme-reply/).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acme-parse.h"
#include "cu-main.h"

#define CA "https://ca.internal.test:9443/acme/acme/"

/* step-ca 0.19 */
static const char dir_stepca[] =
    "{\"newNonce\":\"" CA "new-nonce\",\"newAccount\":\"" CA "new-account\","
    "\"newOrder\":\"" CA "new-order\",\"revokeCert\":\"" CA "revoke-cert\","
    "\"keyChange\":\"" CA "key-change\",\"meta\":{}}";

/* step-ca 0.19 */
static const char order_pending[] =
    "{\"id\":\"Yqjm9u4Abjgq3ouNyVSfBbV0a0zbzo46\",\"status\":\"pending\","
    "\"expires\":\"2026-12-04T17:44:44Z\",\"identifiers\":[{\"type\":\"dns\","
    "\"value\":\"api.internal.test\"},{\"type\":\"ip\",\"value\":\"127.0.0.1\"}"
    "],\"notBefore\":\"2026-12-03T17:43:44Z\",\"notAfter\":\"2026-12-03T17:4"
    "9:44Z\",\"authorizations\":[\"" CA "authz/1plBaM98stNPSoJdaFJoV5ArKwm5C"
    "Mr4\",\"" CA "authz/qtPjU5CMIFL9OwUWTjjKJ04208bjXcNB\"],\"finalize\":\""
    CA "order/Yqjm9u4Abjgq3ouNyVSfBbV0a0zbzo46/finalize\"}";

/* step-ca 0.19 */
static const char order_valid[] =
    "{\"id\":\"8LL3xutw9tkbrhOq2D6VZrTZhn2qpgIn\",\"status\":\"valid\","
    "\"expires\":\"2026-12-04T17:44:45Z\",\"identifiers\":[{\"type\":\"dns\","
    "\"value\":\"api.internal.test\"}],\"notBefore\":\"2026-12-03T17:43:45Z\""
    ",\"notAfter\":\"2026-12-03T17:49:45Z\",\"authorizations\":[\"" CA
    "authz/WxgVWuS7s99YRNR46lML1z5qMO62TBZQ\"],\"finalize\":\"" CA
    "order/8LL3xutw9tkbrhOq2D6VZrTZhn2qpgIn/finalize\",\"certificate\":\"" CA
    "certificate/ABC\"}";

/* step-ca 0.19 (DNS identifier: dns-01, http-01, tls-alpn-01) */
static const char authz_dns[] =
    "{\"identifier\":{\"type\":\"dns\",\"value\":\"api.internal.test\"},"
    "\"status\":\"pending\",\"challenges\":[{\"type\":\"dns-01\",\"status\":"
    "\"pending\",\"token\":\"FlVLsrOuEC9yZVmhzNOtxgv9GmMNRn69\",\"url\":\"" CA
    "challenge/1plBaM98stNPSoJdaFJoV5ArKwm5CMr4/s0g2\"},{\"type\":\"http-01\""
    ",\"status\":\"pending\",\"token\":\"FlVLsrOuEC9yZVmhzNOtxgv9GmMNRn69\","
    "\"url\":\"" CA "challenge/1plBaM98stNPSoJdaFJoV5ArKwm5CMr4/d1g3\"},{"
    "\"type\":\"tls-alpn-01\",\"status\":\"pending\",\"token\":\"FlVLsrOuEC9"
    "yZVmhzNOtxgv9GmMNRn69\",\"url\":\"" CA "challenge/1plBa/x\"}],"
    "\"expires\":\"2026-12-04T17:44:44Z\"}";

/* step-ca 0.19: a connection failure leaves the challenge pending */
static const char ch_pending_error[] =
    "{\"type\":\"http-01\",\"status\":\"pending\",\"token\":\"rWCsNECw2ymaC5c"
    "jPktjWkkUR1mzCq4u\",\"url\":\"" CA "challenge/dMtC/YX5W\",\"error\":{"
    "\"type\":\"urn:ietf:params:acme:error:connection\",\"detail\":\"The serv"
    "er could not connect to validation target\"}}";

/* step-ca 0.19 */
static const char problem_not_ready[] =
    "{\"type\":\"urn:ietf:params:acme:error:orderNotReady\",\"detail\":\"The "
    "request attempted to finalize an order that is not ready to be "
    "finalized\"}";

static int P(int (*fn)(const char *, size_t, void *), const char *s, void *r)
{
    return fn(s, strlen(s), r);
}
#define PARSE(fn, s, r) P((int (*)(const char *, size_t, void *))(fn), s, r)

static void t_status(void)
{
    CU_ASSERT_EQUAL(acme_status_from_string("pending"), ACME_STATUS_PENDING);
    CU_ASSERT_EQUAL(acme_status_from_string("revoked"), ACME_STATUS_REVOKED);
    CU_ASSERT_EQUAL(acme_status_from_string("Pending"), _ACME_STATUS_INVALID);
    CU_ASSERT_EQUAL(acme_status_from_string(NULL), _ACME_STATUS_INVALID);
    CU_ASSERT_STRING_EQUAL(acme_status_to_string(ACME_STATUS_VALID), "valid");
    CU_ASSERT_STRING_EQUAL(acme_status_to_string(_ACME_STATUS_INVALID),
                           "(unknown)");
}

static void t_directory(void)
{
    struct acme_directory d = { 0 };

    CU_ASSERT_EQUAL_FATAL(PARSE(acme_parse_directory, dir_stepca, &d), 0);
    CU_ASSERT_STRING_EQUAL(d.new_nonce, CA "new-nonce");
    CU_ASSERT_STRING_EQUAL(d.new_account, CA "new-account");
    CU_ASSERT_STRING_EQUAL(d.new_order, CA "new-order");
    CU_ASSERT_STRING_EQUAL(d.key_change, CA "key-change");
    CU_ASSERT(!d.eab_required);
    acme_directory_done(&d);
    acme_directory_done(&d);

    CU_ASSERT_EQUAL(PARSE(acme_parse_directory,
                          "{\"newNonce\":\"https://a/n\",\"newAccount\":"
                          "\"https://a/a\",\"newOrder\":\"https://a/o\","
                          "\"meta\":{\"externalAccountRequired\":true}}",
                          &d),
                    0);
    CU_ASSERT(d.eab_required);
    CU_ASSERT_PTR_NULL(d.revoke_cert);
    acme_directory_done(&d);

    /* refusals; the result stays untouched */
    CU_ASSERT_EQUAL(PARSE(acme_parse_directory,
                          "{\"newNonce\":\"https://a/n\",\"newAccount\":"
                          "\"https://a/a\"}",
                          &d),
                    -EBADMSG);
    CU_ASSERT_EQUAL(PARSE(acme_parse_directory,
                          "{\"newNonce\":\"http://a/n\",\"newAccount\":"
                          "\"https://a/a\",\"newOrder\":\"https://a/o\"}",
                          &d),
                    -EBADMSG);
    CU_ASSERT_EQUAL(PARSE(acme_parse_directory,
                          "{\"newNonce\":\"https:///n\",\"newAccount\":"
                          "\"https://a/a\",\"newOrder\":\"https://a/o\"}",
                          &d),
                    -EBADMSG);
    CU_ASSERT_EQUAL(PARSE(acme_parse_directory,
                          "{\"newNonce\":\"https://a/ n\",\"newAccount\":"
                          "\"https://a/a\",\"newOrder\":\"https://a/o\"}",
                          &d),
                    -EBADMSG);
    CU_ASSERT_EQUAL(PARSE(acme_parse_directory, "[]", &d), -EBADMSG);
    CU_ASSERT_EQUAL(PARSE(acme_parse_directory, "", &d), -EBADMSG);
    CU_ASSERT_EQUAL(acme_parse_directory("{\"a\":1}\0", 9, &d), -EBADMSG);
    CU_ASSERT_PTR_NULL(d.new_nonce);
}

static void t_order(void)
{
    struct acme_order o = { 0 };

    CU_ASSERT_EQUAL_FATAL(PARSE(acme_parse_order, order_pending, &o), 0);
    CU_ASSERT_EQUAL(o.status, ACME_STATUS_PENDING);
    CU_ASSERT_EQUAL(o.n_authz, 2);
    CU_ASSERT_STRING_EQUAL(o.authorizations[1],
                           CA "authz/qtPjU5CMIFL9OwUWTjjKJ04208bjXcNB");
    CU_ASSERT_PTR_NULL(o.certificate);
    CU_ASSERT_PTR_NULL(o.error.type);
    acme_order_done(&o);

    CU_ASSERT_EQUAL_FATAL(PARSE(acme_parse_order, order_valid, &o), 0);
    CU_ASSERT_EQUAL(o.status, ACME_STATUS_VALID);
    CU_ASSERT_STRING_EQUAL(o.certificate, CA "certificate/ABC");
    acme_order_done(&o);

    CU_ASSERT_EQUAL(PARSE(acme_parse_order,
                          "{\"status\":\"invalid\",\"authorizations\":[],"
                          "\"finalize\":\"https://a/f\",\"certificate\":null,"
                          "\"error\":{\"type\":\"urn:ietf:params:acme:error:"
                          "badCSR\",\"detail\":\"x\"}}",
                          &o),
                    0);
    CU_ASSERT(acme_problem_is(&o.error, "badCSR"));
    acme_order_done(&o);

    CU_ASSERT_EQUAL(PARSE(acme_parse_order,
                          "{\"status\":\"pending\",\"status\":\"valid\","
                          "\"authorizations\":[],\"finalize\":\"https://a/f\"}",
                          &o),
                    -EBADMSG); /* duplicate member */
    CU_ASSERT_EQUAL(PARSE(acme_parse_order,
                          "{\"status\":\"bogus\",\"authorizations\":[],"
                          "\"finalize\":\"https://a/f\"}",
                          &o),
                    -EBADMSG);
    CU_ASSERT_EQUAL(PARSE(acme_parse_order,
                          "{\"status\":\"pending\",\"authorizations\":[1],"
                          "\"finalize\":\"https://a/f\"}",
                          &o),
                    -EBADMSG);
    CU_ASSERT_EQUAL(PARSE(acme_parse_order,
                          "{\"status\":\"pending\",\"authorizations\":[],"
                          "\"finalize\":\"https://a/f\",\"error\":\"x\"}",
                          &o),
                    -EBADMSG);
    CU_ASSERT_EQUAL(o.n_authz, 0);
}

static void t_order_limits(void)
{
    size_t n = ACME_MAX_REPLY + 16;
    char *big = malloc(n), *p;
    struct acme_order o = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    /* ACME_MAX_AUTHZ + 1 authorizations */
    p = big + sprintf(big, "{\"status\":\"pending\",\"finalize\":\"https://a/f"
                           "\",\"authorizations\":[");
    for (unsigned i = 0; i <= ACME_MAX_AUTHZ; i++)
        p += sprintf(p, "%s\"https://a/z/%u\"", i ? "," : "", i);
    strcpy(p, "]}");
    CU_ASSERT_EQUAL(PARSE(acme_parse_order, big, &o), -EBADMSG);
    /* larger than the reply cap */
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    CU_ASSERT_EQUAL(acme_parse_order(big, n, &o), -EMSGSIZE);
    CU_ASSERT_EQUAL(acme_parse_problem(big, n, (void *)&o), -EMSGSIZE);
    free(big);
}

static void t_authz(void)
{
    struct acme_authz a = { 0 };
    const struct acme_challenge *c;

    CU_ASSERT_EQUAL_FATAL(PARSE(acme_parse_authorization, authz_dns, &a), 0);
    CU_ASSERT_EQUAL(a.status, ACME_STATUS_PENDING);
    CU_ASSERT_STRING_EQUAL(a.ident_type, "dns");
    CU_ASSERT_STRING_EQUAL(a.ident_value, "api.internal.test");
    CU_ASSERT_EQUAL(a.n_challenges, 3);
    c = acme_authz_find(&a, "http-01");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->token, "FlVLsrOuEC9yZVmhzNOtxgv9GmMNRn69");
    CU_ASSERT_STRING_EQUAL(c->url,
                           CA "challenge/1plBaM98stNPSoJdaFJoV5ArKwm5CMr4/d1g3");
    CU_ASSERT_PTR_NULL(acme_authz_find(&a, "device-attest-01"));
    acme_authz_done(&a);

    /* a token that is not base64url anywhere in the list: refused */
    CU_ASSERT_EQUAL(PARSE(acme_parse_authorization,
                          "{\"identifier\":{\"type\":\"dns\",\"value\":\"x\"},"
                          "\"status\":\"pending\",\"challenges\":[{\"type\":"
                          "\"http-01\",\"status\":\"pending\",\"token\":"
                          "\"../x\",\"url\":\"https://a/c\"}]}",
                          &a),
                    -EBADMSG);
    CU_ASSERT_EQUAL(PARSE(acme_parse_authorization,
                          "{\"identifier\":{\"type\":\"dns\"},\"status\":"
                          "\"pending\",\"challenges\":[]}",
                          &a),
                    -EBADMSG);
    CU_ASSERT_EQUAL(PARSE(acme_parse_authorization,
                          "{\"identifier\":{\"type\":\"dns\",\"value\":\"x\"},"
                          "\"status\":\"pending\",\"wildcard\":\"yes\","
                          "\"challenges\":[]}",
                          &a),
                    -EBADMSG);
    CU_ASSERT_EQUAL(a.n_challenges, 0);
}

static void t_challenge(void)
{
    struct acme_challenge c = { 0 };

    CU_ASSERT_EQUAL_FATAL(PARSE(acme_parse_challenge, ch_pending_error, &c),
                          0);
    CU_ASSERT_EQUAL(c.status, ACME_STATUS_PENDING);
    CU_ASSERT_STRING_EQUAL(c.type, "http-01");
    CU_ASSERT(acme_problem_is(&c.error, "connection"));
    CU_ASSERT_STRING_EQUAL(c.error.detail,
                           "The server could not connect to validation target");
    acme_challenge_done(&c);
    CU_ASSERT_EQUAL(PARSE(acme_parse_challenge,
                          "{\"type\":\"http-01\",\"status\":\"valid\",\"url\":"
                          "\"https://a/c\",\"token\":\"\"}",
                          &c),
                    -EBADMSG);
    CU_ASSERT_EQUAL(PARSE(acme_parse_challenge,
                          "{\"type\":\"http 01\",\"status\":\"valid\",\"url\":"
                          "\"https://a/c\"}",
                          &c),
                    -EBADMSG);
}

static void t_problem(void)
{
    struct acme_problem p = { 0 };

    CU_ASSERT_EQUAL_FATAL(PARSE(acme_parse_problem, problem_not_ready, &p), 0);
    CU_ASSERT(acme_problem_is(&p, "orderNotReady"));
    CU_ASSERT(!acme_problem_is(&p, "orderNotReadyX"));
    CU_ASSERT_EQUAL(p.status, 0);
    acme_problem_done(&p);

    CU_ASSERT_EQUAL_FATAL(
        PARSE(acme_parse_problem,
              "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
              "\"detail\":\"bad \\u001b[31m\\n\\u00e9\",\"status\":400,"
              "\"subproblems\":[{\"type\":\"urn:ietf:params:acme:error:caa\","
              "\"detail\":\"CAA for x\"}]}",
              &p),
        0);
    CU_ASSERT_EQUAL(p.status, 400);
    /* control and non-ASCII bytes replaced; first subproblem appended */
    CU_ASSERT_STRING_EQUAL(p.detail, "bad ?[31m??? [CAA for x]");
    acme_problem_done(&p);

    CU_ASSERT_EQUAL(PARSE(acme_parse_problem, "{}", &p), 0);
    CU_ASSERT_STRING_EQUAL(p.type, "about:blank");
    CU_ASSERT_PTR_NULL(p.detail);
    acme_problem_done(&p);

    CU_ASSERT_EQUAL(PARSE(acme_parse_problem, "{\"type\":5}", &p), -EBADMSG);
    CU_ASSERT_EQUAL(PARSE(acme_parse_problem, "<html>", &p), -EBADMSG);
    CU_ASSERT_EQUAL(PARSE(acme_parse_problem, "{\"status\":\"400\"}", &p),
                    -EBADMSG);
}

static void t_long_detail(void)
{
    char buf[4096];
    struct acme_problem p = { 0 };
    int n = snprintf(buf, sizeof(buf), "{\"type\":\"x\",\"detail\":\"");

    memset(buf + n, 'd', 2000);
    strcpy(buf + n + 2000, "\"}");
    CU_ASSERT_EQUAL_FATAL(PARSE(acme_parse_problem, buf, &p), 0);
    CU_ASSERT_EQUAL(strlen(p.detail), ACME_MAX_DETAIL);
    acme_problem_done(&p);
}

int cu_register(void)
{
    static const struct cu_test t[] = {
        { "status", t_status },
        { "directory", t_directory },
        { "order", t_order },
        { "order-limits", t_order_limits },
        { "authorization", t_authz },
        { "challenge", t_challenge },
        { "problem", t_problem },
        { "long-detail", t_long_detail },
        { 0 },
    };

    return cu_add_suite("acme-parse", t) < 0 ? -1 : 0;
}
