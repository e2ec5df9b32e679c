/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: what shortcertd parses from a client (frame + requests). */
#include "fuzz.h"
#include "ipc-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ipc_hdr h;
    struct ipc_cur body;
    struct ipc_sign_req req;

    if (ipc_parse_frame(data, size, &h, &body) < 0)
        return 0;
    if (ipc_parse_sign_req(body, &req) == 0) {
        /* touch every borrowed byte so ASan checks the bounds */
        volatile uint8_t sink = 0;

        for (size_t i = 0; i < req.identity_len; i++)
            sink ^= (uint8_t)req.identity[i];
        for (size_t i = 0; i < req.msg_len; i++)
            sink ^= req.msg[i];
        (void)sink;
    }
    {
        uint32_t first;
        const char *name;
        size_t len;

        if (ipc_parse_status_req(body, &first) == 0)
            return 0;
        if (ipc_parse_ident_req(body, &name, &len) == 0 && len > 0 &&
            name[len - 1] == '\0')
            return 1; /* unreachable: names are validated */
    }
    return 0;
}
