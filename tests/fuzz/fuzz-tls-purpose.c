/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the purpose check on a to-be-signed message. */
#include "fuzz.h"
#include "tls-purpose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int kind = TLS_KEY_EC; kind <= TLS_KEY_ED25519; kind++) {
        (void)tls_purpose_check(TLS_ROLE_SERVER, kind, data, size, NULL);
        (void)tls_purpose_check(TLS_ROLE_CLIENT, kind, data, size, NULL);
    }
    return 0;
}
