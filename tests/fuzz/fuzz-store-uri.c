/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the "shortcert:NAME" URI a service hands the provider's
 * OSSL_STORE loader.  The input is used as a C string (NUL-terminated copy,
 * and in place when it holds a NUL, to check the bounded read).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keyref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[IPC_IDENTITY_MAX + 1];
    char *s;

    if (memchr(data, '\0', size) &&
        keyref_parse_uri((const char *)data, name) == 0 &&
        !ipc_identity_valid(name, strlen(name)))
        abort();
    s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (keyref_parse_uri(s, name) == 0 &&
        (!ipc_identity_valid(name, strlen(name)) ||
         strlen(name) + sizeof(KEYREF_URI_SCHEME) != strlen(s)))
        abort();
    free(s);
    return 0;
}
