/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shortcertctl: operator and script interface to shortcertd.  status,
 * renew, rotate and wait talk to the daemon over its admin socket (root or
 * admin-group; reload too); check-config validates a configuration file without a
 * daemon.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "build-config.h"
#include "config.h"
#include "ipc-proto.h"
#include "macro.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: shortcertctl [OPTIONS] COMMAND [ARGS]\n"
            "\n"
            "Commands:\n"
            "  status              every identity: state, serial, not after, time\n"
            "                      left, next renewal, last success, last error\n"
            "  renew NAME...       renew these identities' certificates now\n"
            "  rotate NAME...      give these identities new keys now (rekey)\n"
            "  reload              make shortcertd re-read its configuration; a\n"
            "                      bad one is refused (file:line printed, exit 1)\n"
            "                      and the running one stays\n"
            "  wait NAME           block until NAME has a valid certificate (for a\n"
            "                      service's ExecStartPre=); see --timeout\n"
            "  check-config [FILE] validate a configuration file and exit\n"
            "\n"
            "Options:\n"
            "  -s, --socket PATH   shortcertd's admin socket (default %s)\n"
            "  -c, --config FILE   configuration for check-config (default %s)\n"
            "      --json          status as JSON\n"
            "      --timeout SECS  how long wait waits (default: forever)\n"
            "  -h, --help          show this help\n"
            "      --version       show the version\n"
            "\n"
            "Exit status: 0 on success; 1 on failure; 2 on a usage error;\n"
            "status exits 3 if an identity has no valid certificate, its\n"
            "files are not written, or a delivery target does not serve it;\n"
            "wait exits 1 when it times out.\n",
            SHORTCERT_DEFAULT_ADMIN_SOCKET, SHORTCERT_DEFAULT_CONFIG);
}

static int connect_daemon(const char *where)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct timeval tv = { .tv_sec = 10 };
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

/* connect_daemon(), saying why it failed unless quiet. */
static int connect_said(const char *sock, bool quiet)
{
    int fd = connect_daemon(sock);

    if (fd < 0 && !quiet)
        fprintf(stderr, "shortcertctl: cannot reach shortcertd at %s: %s\n",
                sock, strerror(-fd));
    return fd;
}

/* Send one request frame and receive its reply (into buf); returns the
 * reply length or -1 with the reason printed. */
static ssize_t round_trip(int fd, uint8_t *buf, int len, uint32_t rid,
                          struct ipc_hdr *h, struct ipc_cur *body)
{
    struct ipc_error_rep er;
    ssize_t n;

    if (len < 0 || send(fd, buf, (size_t)len, MSG_NOSIGNAL) != len) {
        fprintf(stderr, "shortcertctl: cannot send to shortcertd: %s\n",
                strerror(errno));
        return -1;
    }
    n = recv(fd, buf, IPC_FRAME_MAX, MSG_TRUNC);
    if (n <= 0 || n > (ssize_t)IPC_FRAME_MAX ||
        ipc_parse_frame(buf, (size_t)n, h, body) < 0 || h->request_id != rid) {
        fprintf(stderr, "shortcertctl: no valid reply from shortcertd\n");
        return -1;
    }
    if (h->type == IPC_REP_ERROR && ipc_parse_error_rep(*body, &er) == 0) {
        fprintf(stderr, "shortcertctl: shortcertd refused: %s (%.*s)\n",
                ipc_err_str(er.code), (int)er.msg_len, er.msg);
        return -1;
    }
    return n;
}

static const char *jstr(json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s ? s : dflt;
}

static void fmt_left(json_t *id, char *buf, size_t n)
{
    json_t *r = json_object_get(id, "seconds_remaining");
    long long s;

    if (!r) {
        snprintf(buf, n, "-");
        return;
    }
    s = (long long)json_integer_value(r);
    if (s < 0)
        snprintf(buf, n, "expired");
    else if (s >= 86400)
        snprintf(buf, n, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, n, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, n, "%lldm%02llds", s / 60, s % 60);
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
        printf("%-16s %-8s %-32s %-20s %-8s %-20s %-20s %7s %7s\n", "IDENTITY",
               "STATE", "SERIAL", "NOT AFTER", "LEFT", "NEXT RENEWAL",
               "LAST SUCCESS", "SIGNED", "REFUSED");
    }
    ids = json_object_get(root, "identities");
    json_array_foreach(ids, i, id) {
        json_t *sig = json_object_get(id, "signatures");
        const char *state = jstr(id, "state", "?");
        bool delivered = json_is_true(json_object_get(id, "delivered"));
        char left[32];

        if (strcmp(state, "valid") != 0 || !delivered)
            bad = 1;
        if (as_json)
            continue;
        fmt_left(id, left, sizeof(left));
        printf("%-16s %-8s %-32s %-20s %-8s %-20s %-20s %7lld %7lld\n",
               jstr(id, "name", "?"), strcmp(state, "no-certificate") == 0
                                          ? "none" : state,
               jstr(id, "serial", "-"), jstr(id, "not_after", "-"), left,
               json_is_true(json_object_get(id, "renewal_in_flight"))
                   ? "in progress"
                   : jstr(id, "next_renewal", "-"),
               jstr(id, "last_success", "-"),
               (long long)json_integer_value(json_object_get(sig, "ok")),
               (long long)(json_integer_value(json_object_get(sig, "denied")) +
                           json_integer_value(json_object_get(sig, "refused"))));
        if (strcmp(state, "valid") == 0 && !delivered)
            printf("  NOT DELIVERED: the service files are not up to date\n");
        if (json_object_get(id, "last_error"))
            printf("  last error: %s\n", jstr(id, "last_error", ""));
        if (json_object_get(id, "removed"))
            printf("  REMOVED from the configuration: no longer renewed; "
                   "retired once no service signed with it for retire-after\n");
        {
            json_t *tg = json_object_get(id, "targets"), *t;
            size_t ti;

            json_array_foreach(tg, ti, t) {
                printf("  target %s: %s (delivered %lld, failed %lld, verify "
                       "failures %lld)%s%s\n",
                       jstr(t, "name", "?"), jstr(t, "result", "?"),
                       (long long)json_integer_value(json_object_get(t, "deliveries_ok")),
                       (long long)json_integer_value(json_object_get(t, "deliveries_failed")),
                       (long long)json_integer_value(json_object_get(t, "verify_failures")),
                       json_object_get(t, "reason") ? ": " : "",
                       jstr(t, "reason", ""));
                if (strcmp(jstr(t, "result", ""), "not-served") == 0 ||
                    strcmp(jstr(t, "result", ""), "write-failed") == 0)
                    bad = 1;
            }
        }
    }
    return bad ? 3 : 0;
}

/* One STATUS round trip: the page starting at identity index first. */
static json_t *status_page(int fd, uint8_t *buf, uint32_t first, uint32_t rid)
{
    struct ipc_hdr h;
    struct ipc_cur body;
    struct ipc_status_rep st;
    json_error_t jerr;
    json_t *page;

    if (round_trip(fd, buf,
                   ipc_build_status_req(buf, IPC_FRAME_MAX, IPC_VERSION_MAX, rid,
                                        first),
                   rid, &h, &body) < 0)
        return NULL;
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

/* The whole status (all pages merged), or NULL with the reason printed.
 * quiet: no message when the daemon cannot be reached (wait retries). */
static json_t *fetch_status(const char *sock, bool quiet)
{
    uint8_t *buf = malloc(IPC_FRAME_MAX + 1);
    json_t *all = NULL;
    uint32_t first = 0, rid = 1;
    int fd;

    if (!buf)
        return NULL;
    fd = connect_said(sock, quiet);
    if (fd < 0) {
        free(buf);
        return NULL;
    }
    /* Page through the identities; the first page carries the daemon's
     * fields, later pages only add identities. */
    for (;;) {
        json_t *page = status_page(fd, buf, first, rid++), *next;
        json_int_t nv = -1;

        if (!page)
            goto fail;
        next = json_object_get(page, "next");
        if (next) {
            nv = json_is_integer(next) ? json_integer_value(next) : -1;
            if (nv <= (json_int_t)first || nv > (json_int_t)UINT32_MAX) {
                fprintf(stderr, "shortcertctl: bad paging from shortcertd\n");
                json_decref(page);
                goto fail;
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
    close(fd);
    free(buf);
    return all;
fail:
    json_decref(all);
    close(fd);
    free(buf);
    return NULL;
}

static int cmd_status(const char *sock, bool as_json)
{
    json_t *all = fetch_status(sock, false);
    int rc;

    if (!all)
        return 1;
    rc = print_status(all, as_json);
    json_decref(all);
    return rc;
}

/* renew/rotate NAME...; reload (its body names "config"). */
static int cmd_request(const char *sock, char **names, int n, uint16_t type)
{
    uint8_t *buf = malloc(IPC_FRAME_MAX + 1);
    struct ipc_hdr h;
    struct ipc_cur body;
    const char *msg;
    size_t len;
    int fd, rc = 0;

    if (!buf)
        return 1;
    for (int i = 0; i < n; i++)
        if (!ipc_identity_valid(names[i], strlen(names[i]))) {
            fprintf(stderr, "shortcertctl: '%s' is not an identity name\n", names[i]);
            free(buf);
            return 2;
        }
    fd = connect_said(sock, false);
    if (fd < 0) {
        free(buf);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        uint32_t rid = (uint32_t)i + 1;

        if (round_trip(fd, buf,
                       ipc_build_ident_req(buf, IPC_FRAME_MAX, IPC_VERSION_MAX, rid,
                                           type,
                                           names[i], strlen(names[i])),
                       rid, &h, &body) < 0) {
            rc = 1;
            break;
        }
        if (h.type != IPC_REP_OK || ipc_parse_ok_rep(body, &msg, &len) < 0) {
            fprintf(stderr, "shortcertctl: unexpected reply from shortcertd\n");
            rc = 1;
            break;
        }
        printf("%.*s\n", (int)len, msg);
    }
    close(fd);
    free(buf);
    return rc;
}

static json_t *find_id(json_t *all, const char *name)
{
    json_t *id;
    size_t i;

    json_array_foreach(json_object_get(all, "identities"), i, id)
        if (strcmp(jstr(id, "name", ""), name) == 0)
            return id;
    return NULL;
}

/* Poll until the identity has a valid, delivered certificate.  The daemon
 * may not be up yet (at boot): keep trying to reach it. */
static int cmd_wait(const char *sock, const char *name, long timeout_s)
{
    struct timespec t0, now;
    bool told = false, told_unreachable = false, reached = false;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        /* the first time shortcertd cannot be reached, say why (once) */
        json_t *all = fetch_status(sock, told_unreachable), *id;

        reached = all != NULL;
        if (!all && !told_unreachable) {
            fprintf(stderr, "shortcertctl: still trying to reach shortcertd "
                            "at %s\n",
                    sock);
            told_unreachable = true;
        }

        if (all) {
            id = find_id(all, name);
            if (!id) {
                fprintf(stderr, "shortcertctl: shortcertd has no identity '%s'\n",
                        name);
                json_decref(all);
                return 1;
            }
            if (strcmp(jstr(id, "state", ""), "valid") == 0 &&
                json_is_true(json_object_get(id, "delivered"))) {
                printf("%s: valid, serial %s, not after %s\n", name,
                       jstr(id, "serial", "?"), jstr(id, "not_after", "?"));
                json_decref(all);
                return 0;
            }
            if (!told) {
                fprintf(stderr, "shortcertctl: waiting for '%s' (%s)\n", name,
                        jstr(id, "state", "?"));
                told = true;
            }
            json_decref(all);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (timeout_s > 0 && now.tv_sec - t0.tv_sec >= timeout_s) {
            fprintf(stderr, "shortcertctl: '%s' has no valid certificate after "
                            "%lds%s\n",
                    name, timeout_s,
                    reached ? "" : " (shortcertd could not be reached)");
            return 1;
        }
        usleep(500000);
    }
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
    enum { OPT_JSON = 0x100, OPT_VERSION, OPT_TIMEOUT };
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, OPT_JSON },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 },
    };
    const char *sock = SHORTCERT_DEFAULT_ADMIN_SOCKET, *config = SHORTCERT_DEFAULT_CONFIG;
    const char *cmd;
    bool as_json = false;
    long timeout_s = 0;
    int64_t d;
    int c, nargs;

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
        case OPT_TIMEOUT:
            if (cfg_parse_duration(optarg, &d) < 0) {
                fprintf(stderr, "shortcertctl: invalid --timeout '%s'\n", optarg);
                return 2;
            }
            timeout_s = (long)d;
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
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    cmd = argv[optind];
    nargs = argc - optind - 1;
    if (strcmp(cmd, "status") == 0 && nargs == 0)
        return cmd_status(sock, as_json);
    if ((strcmp(cmd, "renew") == 0 || strcmp(cmd, "rotate") == 0) && nargs >= 1)
        return cmd_request(sock, argv + optind + 1, nargs,
                           cmd[1] == 'o' ? IPC_REQ_ROTATE : IPC_REQ_RENEW);
    if (strcmp(cmd, "reload") == 0 && nargs == 0)
        return cmd_request(sock, (char *[]){ (char *)"config" }, 1,
                           IPC_REQ_RELOAD);
    if (strcmp(cmd, "wait") == 0 && nargs == 1)
        return cmd_wait(sock, argv[optind + 1], timeout_s);
    if (strcmp(cmd, "check-config") == 0 && nargs <= 1)
        return cmd_check_config(nargs ? argv[optind + 1] : config);
    fprintf(stderr, "shortcertctl: unknown command or wrong arguments: '%s'\n", cmd);
    usage(stderr);
    return 2;
}
