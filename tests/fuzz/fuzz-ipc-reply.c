/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: what the provider parses from shortcertd (frame + replies). */
#include "fuzz.h"
#include "ipc-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ipc_hdr h;
    struct ipc_cur body;
    struct ipc_sign_rep sr;
    struct ipc_error_rep er;
    struct ipc_status_rep st;
    volatile uint8_t sink = 0;

    if (ipc_parse_frame(data, size, &h, &body) < 0)
        return 0;
    for (uint16_t v = 1; v <= IPC_VERSION_MAX; v++)
        if (ipc_parse_sign_rep(body, v, &sr) == 0)
            for (size_t i = 0; i < sr.sig_len; i++)
                sink ^= sr.sig[i];
    if (ipc_parse_error_rep(body, &er) == 0) {
        for (size_t i = 0; i < er.msg_len; i++)
            sink ^= (uint8_t)er.msg[i];
        (void)ipc_err_str(er.code);
    }
    {
        const char *m;
        size_t n;

        if (ipc_parse_ok_rep(body, &m, &n) == 0)
            for (size_t i = 0; i < n; i++)
                sink ^= (uint8_t)m[i];
    }
    {
        struct ipc_fetch_rep fr;

        if (ipc_parse_fetch_rep(body, &fr) == 0) {
            for (size_t i = 0; i < fr.keyref.len; i++)
                sink ^= fr.keyref.p[i];
            for (size_t c = 0; c < fr.n_certs; c++)
                for (size_t i = 0; i < fr.certs[c].len; i++)
                    sink ^= fr.certs[c].p[i];
        }
    }
    if (ipc_parse_status_rep(body, &st) == 0)
        for (size_t i = 0; i < st.json_len; i++)
            sink ^= (uint8_t)st.json[i];
    (void)sink;
    return 0;
}
