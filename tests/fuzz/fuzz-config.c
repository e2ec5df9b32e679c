/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: shortcertd.conf text.  Users and groups resolve through a
 * fixed fake table, so the run does not depend on the machine.
 */
#include <errno.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

static int fake_user(const char *name, uid_t *ret)
{
    if (strcmp(name, "www-data") != 0 && strcmp(name, "root") != 0)
        return -ENOENT;
    *ret = name[0] == 'r' ? 0 : 33;
    return 0;
}

static int fake_group(const char *name, gid_t *ret)
{
    if (strcmp(name, "ssl-cert") != 0)
        return -ENOENT;
    *ret = 103;
    return 0;
}

static const struct cfg_resolver fake = { fake_user, fake_group };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg *c = NULL;
    char err[CFG_ERR_MAX];

    if (cfg_parse_buffer("fuzz.conf", (const char *)data, size, &fake, &c, err,
                         sizeof(err)) == 0)
        cfg_free(c);
    return 0;
}
