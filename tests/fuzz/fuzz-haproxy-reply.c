/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: deliver_haproxy_parse_reply(), the parser of what haproxy's
 * runtime API answers to "set ssl cert" and "commit ssl cert", and the
 * [target] action/verify value parsers.  The first byte picks which.
 * Checks the contract as well as memory safety: the error text is always
 * NUL-terminated, printable, and empty exactly on success.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "fuzz.h"
#include "target.h"

static void check_err(int r, const char *err, size_t n)
{
    size_t l = strnlen(err, n);

    if (l == n)
        abort();
    for (size_t i = 0; i < l; i++)
        if ((unsigned char)err[i] < 0x20 || (unsigned char)err[i] >= 0x7f)
            abort();
    if ((r == 0) != (l == 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[300], *s;
    int r;

    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 0:
    case 1:
        r = deliver_haproxy_parse_reply(data[0] % 2 ? DELIVER_HAPROXY_COMMIT
                                                    : DELIVER_HAPROXY_SET,
                                        (const char *)data + 1, size - 1, err,
                                        sizeof(err));
        if (r != 0 && r != -EPROTO)
            abort();
        check_err(r, err, sizeof(err));
        break;
    case 2:
    case 3:
        /* config values are NUL-terminated lines */
        s = malloc(size);
        if (!s)
            return 0;
        memcpy(s, data + 1, size - 1);
        s[size - 1] = '\0';
        if (data[0] % 4 == 2) {
            struct cfg_target_action a;

            err[0] = '\0';
            if (cfg_target_parse_action(s, &a, err, sizeof(err)) == 0)
                cfg_target_action_free(&a);
        } else {
            struct cfg_target_verify v;

            err[0] = '\0';
            if (cfg_target_parse_verify(s, &v, err, sizeof(err)) == 0) {
                if (v.port < 1 || v.port > 65535 || !v.host[0])
                    abort();
                cfg_target_verify_free(&v);
            }
        }
        free(s);
        break;
    }
    return 0;
}
