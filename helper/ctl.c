/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shortcertctl: operator and script interface to shortcertd.  "status"
 * asks the running daemon over its socket (root only); "check-config"
 * validates a configuration file without a daemon.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "build-config.h"
#include "config.h"
#include "ipc-proto.h"
#include "macro.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: shortcertctl [OPTIONS] COMMAND\n"
            "\n"
            "Commands:\n"
            "  status          show every identity: state, serial, expiry,\n"
            "                  signatures made and refused, last error\n"
            "  check-config    validate the configuration file and exit\n"
            "\n"
            "Options:\n"
            "  -s, --socket PATH   shortcertd's socket, or @NAME for an\n"
            "                      abstract one (default %s)\n"
            "  -c, --config FILE   configuration for check-config\n"
            "                      (default %s)\n"
            "      --json          status as JSON\n"
            "  -h, --help          show this help\n"
            "      --version       show the version\n"
            "\n"
            "Exit status: 0 on success; 1 on failure; status exits 3 if an\n"
            "identity has no valid certificate or its files are not written.\n",
            SHORTCERT_DEFAULT_SOCKET, SHORTCERT_DEFAULT_CONFIG);
}

static int connect_daemon(const char *where)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct timeval tv = { .tv_sec = 5 };
    socklen_t len;
    size_t n = strlen(where);
    int fd;

    if (n + 1 >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    if (where[0] == '@') {
        memcpy(sa.sun_path + 1, where + 1, n - 1);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        memcpy(sa.sun_path, where, n + 1);
        len = sizeof(sa);
    }
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return negerrno();
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, len) < 0) {
        int e = negerrno();

        close(fd);
        return e;
    }
    return fd;
}

static const char *jstr(json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s ? s : dflt;
}

static int print_status(json_t *root, bool as_json)
{
    json_t *ids, *id;
    size_t i;
    int bad = 0;

    if (as_json) {
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);

        if (!text)
            return 1;
        puts(text);
        free(text);
    } else {
        printf("shortcertd %s, pid %lld, config %s\n", jstr(root, "version", "?"),
               (long long)json_integer_value(json_object_get(root, "pid")),
               jstr(root, "config", "?"));
        printf("%-16s %-14s %-34s %-21s %10s %8s %8s\n", "IDENTITY", "STATE",
               "SERIAL", "NOT AFTER", "REMAINING", "SIGNED", "REFUSED");
    }
    ids = json_object_get(root, "identities");
    json_array_foreach(ids, i, id) {
        json_t *sig = json_object_get(id, "signatures");
        const char *state = jstr(id, "state", "?");
        const char *serial = jstr(id, "serial", "-");
        bool delivered = json_is_true(json_object_get(id, "delivered"));
        char rem[32] = "-";
        json_t *r = json_object_get(id, "seconds_remaining");

        if (strcmp(state, "valid") != 0 || !delivered)
            bad = 1;
        if (as_json)
            continue;
        if (r)
            snprintf(rem, sizeof(rem), "%llds", (long long)json_integer_value(r));
        printf("%-16s %-14s %-34s %-21s %10s %8lld %8lld\n",
               jstr(id, "name", "?"), state, serial, jstr(id, "not_after", "-"),
               rem, (long long)json_integer_value(json_object_get(sig, "ok")),
               (long long)(json_integer_value(json_object_get(sig, "denied")) +
                           json_integer_value(json_object_get(sig, "refused"))));
        if (strcmp(state, "valid") == 0 && !delivered)
            printf("  NOT DELIVERED: the service files are not up to date\n");
        if (json_object_get(id, "last_error"))
            printf("  last error: %s\n", jstr(id, "last_error", ""));
    }
    return bad ? 3 : 0;
}

/* One STATUS round trip: the page starting at identity index first. */
static json_t *status_page(int fd, uint8_t *buf, uint32_t first, uint32_t rid)
{
    struct ipc_hdr h;
    struct ipc_cur body;
    struct ipc_status_rep st;
    struct ipc_error_rep er;
    json_error_t jerr;
    json_t *page;
    ssize_t n;
    int len;

    len = ipc_build_status_req(buf, IPC_FRAME_MAX, IPC_VERSION_MAX, rid, first);
    if (len < 0 || send(fd, buf, (size_t)len, MSG_NOSIGNAL) != len) {
        fprintf(stderr, "shortcertctl: cannot send to shortcertd: %s\n",
                strerror(errno));
        return NULL;
    }
    n = recv(fd, buf, IPC_FRAME_MAX, MSG_TRUNC);
    if (n <= 0 || n > (ssize_t)IPC_FRAME_MAX ||
        ipc_parse_frame(buf, (size_t)n, &h, &body) < 0 || h.request_id != rid) {
        fprintf(stderr, "shortcertctl: no valid reply from shortcertd\n");
        return NULL;
    }
    if (h.type == IPC_REP_ERROR && ipc_parse_error_rep(body, &er) == 0) {
        fprintf(stderr, "shortcertctl: shortcertd refused: %s (%.*s)\n",
                ipc_err_str(er.code), (int)er.msg_len, er.msg);
        return NULL;
    }
    if (h.type != IPC_REP_STATUS || ipc_parse_status_rep(body, &st) < 0) {
        fprintf(stderr, "shortcertctl: unexpected reply from shortcertd\n");
        return NULL;
    }
    page = json_loadb(st.json, st.json_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(page) || !json_is_array(json_object_get(page, "identities"))) {
        fprintf(stderr, "shortcertctl: shortcertd sent a status that is not "
                        "the expected JSON\n");
        json_decref(page);
        return NULL;
    }
    return page;
}

static int cmd_status(const char *sock, bool as_json)
{
    uint8_t *buf = malloc(IPC_FRAME_MAX + 1);
    json_t *all = NULL;
    uint32_t first = 0, rid = 1;
    int fd, rc = 1;

    if (!buf)
        return 1;
    fd = connect_daemon(sock);
    if (fd < 0) {
        fprintf(stderr, "shortcertctl: cannot reach shortcertd at %s: %s\n", sock,
                strerror(-fd));
        free(buf);
        return 1;
    }
    /* Page through the identities; the first page carries the daemon's
     * fields, later pages only add identities. */
    for (;;) {
        json_t *page = status_page(fd, buf, first, rid++), *next;
        json_int_t nv = -1;

        if (!page)
            goto out;
        next = json_object_get(page, "next");
        if (next) {
            nv = json_is_integer(next) ? json_integer_value(next) : -1;
            if (nv <= (json_int_t)first || nv > (json_int_t)UINT32_MAX) {
                fprintf(stderr, "shortcertctl: bad paging from shortcertd\n");
                json_decref(page);
                goto out;
            }
        }
        if (!all) {
            all = page;
            json_object_del(all, "next");
        } else {
            json_array_extend(json_object_get(all, "identities"),
                              json_object_get(page, "identities"));
            json_decref(page);
        }
        if (nv < 0)
            break;
        first = (uint32_t)nv;
    }
    rc = print_status(all, as_json);
out:
    json_decref(all);
    close(fd);
    free(buf);
    return rc;
}

static int cmd_check_config(const char *path)
{
    struct cfg *c = NULL;
    char err[CFG_ERR_MAX];

    if (cfg_load(path, &cfg_system_resolver, &c, err, sizeof(err)) < 0 ||
        cfg_check_files(c, err, sizeof(err)) < 0) {
        fprintf(stderr, "shortcertctl: %s\n", err);
        cfg_free(c);
        return 1;
    }
    printf("%s: OK, %zu identit%s\n", path, c->n_ids, c->n_ids == 1 ? "y" : "ies");
    cfg_free(c);
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_JSON = 0x100, OPT_VERSION };
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, OPT_JSON },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 },
    };
    const char *sock = SHORTCERT_DEFAULT_SOCKET, *config = SHORTCERT_DEFAULT_CONFIG;
    bool as_json = false;
    int c;

    while ((c = getopt_long(argc, argv, "s:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            sock = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case OPT_JSON:
            as_json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case OPT_VERSION:
            printf("shortcertctl %s\n", PACKAGE_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[optind], "status") == 0)
        return cmd_status(sock, as_json);
    if (strcmp(argv[optind], "check-config") == 0)
        return cmd_check_config(config);
    fprintf(stderr, "shortcertctl: unknown command '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
}
