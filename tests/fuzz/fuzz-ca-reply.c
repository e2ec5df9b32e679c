/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: every parser of step-ca replies in helper/stepca.c on the
 * same input: SignResponse, error document, a page of GET /provisioners,
 * the compact JWE of an encryptedKey (parse, and decrypt when the
 * iteration count is the minimum, so a run stays fast), and a private JWK.
 * Plus the invariants they promise: a SignResponse comes back as 1..8 PEM
 * certificates, messages are printable and bounded, cursors printable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fuzz.h"
#include "sec.h"
#include "stepca.h"

static void check_printable(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n > max)
        abort();
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct stepca_result res = { 0 };
    struct stepca_prov_entry e = { 0 };
    struct stepca_jwe j = { 0 };
    char msg[STEPCA_MAX_MESSAGE + 1];
    char *next = NULL, *kid = NULL;
    EVP_PKEY *k = NULL;
    int r;

    if (stepca_parse_sign_response(buf, size, &res) == 0) {
        size_t n = 0;
        const char *p = res.chain_pem;

        if (!p || strlen(p) != res.chain_len)
            abort();
        while ((p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL) {
            n++;
            p++;
        }
        if (n < 1 || n > STEPCA_MAX_CHAIN)
            abort();
    }
    stepca_result_done(&res);
    stepca_result_done(&res); /* idempotent */

    r = stepca_parse_error(buf, size, msg, sizeof(msg));
    if (r > 999)
        abort();
    check_printable(msg, STEPCA_MAX_MESSAGE);
    r = stepca_parse_error(buf, size, msg, 8); /* truncation */
    check_printable(msg, 7);

    r = stepca_parse_provisioners(buf, size, "jwk", &e, &next);
    if (r == 1 && (!e.kid || !e.pub))
        abort();
    if (r >= 0 && next)
        check_printable(next, 256);
    stepca_prov_entry_done(&e);
    free(next);

    if (stepca_jwe_parse(buf, size, &j) == 0) {
        if (j.ek_len != 40 || j.iv_len != 12 || j.tag_len != 16 ||
            j.p2s_len < 8 || !j.aad || j.aad_len == 0)
            abort();
        if (j.p2c == STEPCA_P2C_MIN) {
            static const char pw[] = "fuzz";
            struct secret s = { (uint8_t *)pw, sizeof(pw) - 1 };
            struct secret out = { 0 };

            if (stepca_jwe_decrypt(buf, size, &s, &out) == 0)
                secret_wipe(&out);
        }
    }
    stepca_jwe_done(&j);

    if (stepca_jwk_private(buf, size, &k, &kid) == 0 && !k)
        abort();
    EVP_PKEY_free(k);
    free(kid);
    return 0;
}
