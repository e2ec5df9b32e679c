/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the purpose check on a to-be-signed message. */
#include "fuzz.h"
#include "tls-purpose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)tls_purpose_check(TLS_ROLE_SERVER, data, size, NULL);
    (void)tls_purpose_check(TLS_ROLE_CLIENT, data, size, NULL);
    return 0;
}
