/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: a key reference as a service (through the provider) reads
 * it: the input is tried as raw DER and as PEM text.
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "fuzz.h"
#include "keyref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct keyref ref;
    BIO *b;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long len = 0;

    if (keyref_decode_der(NULL, data, size, &ref) == 0)
        keyref_done(&ref);
    if (size > 65536)
        return 0;
    b = BIO_new_mem_buf(data, (int)size);
    if (!b)
        return 0;
    if (PEM_read_bio(b, &name, &header, &der, &len) == 1 &&
        strcmp(name, KEYREF_PEM_LABEL) == 0 &&
        keyref_decode_der(NULL, der, (size_t)len, &ref) == 0)
        keyref_done(&ref);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(b);
    return 0;
}
