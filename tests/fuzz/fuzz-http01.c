/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: http01_parse_request(), the parser every byte from port 80
 * goes through.  Checks the contract as well as memory safety: on success
 * the token lies inside the first HTTP01_MAX_HEAD bytes of the input and is
 * 1..HTTP01_MAX_TOKEN base64url characters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http01.h"
#include "jws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    const char *tok = NULL;
    size_t tl = 0;
    int r = http01_parse_request(buf, size, &tok, &tl);

    switch (r) {
    case 0:
        if (!tok || tok < buf || tl == 0 || tl > HTTP01_MAX_TOKEN ||
            (size_t)(tok - buf) + tl > size ||
            (size_t)(tok - buf) + tl > HTTP01_MAX_HEAD ||
            !jws_is_b64url(tok, tl))
            abort();
        break;
    case -EAGAIN:
        if (size >= HTTP01_MAX_HEAD)
            abort(); /* a full buffer must be decided */
        break;
    case -EBADMSG:
    case -ENOENT:
    case -EMSGSIZE:
        break;
    default:
        abort();
    }
    return 0;
}
