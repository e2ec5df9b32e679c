/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shortcertd: the privileged helper that holds the private keys of
 * short-lived TLS identities, enrolls them with step-ca, writes only public
 * material for services, and signs TLS handshakes for permitted peers over
 * a Unix socket.  This file owns process setup, the event loop (signals and
 * the signing socket) and the status document; enrollment runs on its own
 * thread (enroll.c).
 */
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "build-config.h"
#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif
#include "config.h"
#include "event.h"
#include "fileio.h"
#include "http01.h"
#include "identity.h"
#include "target-run.h"
#include "ipc-server.h"
#include "log.h"
#include "macro.h"
#include "metrics-server.h"
#include "metrics.h"
#include "renew.h"

#define SECURE_HEAP_SIZE (1u << 21) /* private keys live here (mlocked) */

struct daemon {
    struct cfg *cfg;
    struct identity *ids;
    size_t n_ids;
    int epfd;
    struct ev_source sig_ev;
    int sigfd;
    struct ipc_server *ipc;
    struct http01 *http01;
    struct renewer *renewer;
    struct metrics_server *metrics[2]; /* TCP, Unix */
    time_t started;
};

/* GET /metrics: a snapshot of every identity and CA (on the metrics
 * server's thread). */
#define METRICS_MAX_CAS 64
static int metrics_collect(FILE *f, void *ud)
{
    struct daemon *d = ud;
    const struct metrics_daemon_view dv = { .version = PACKAGE_VERSION,
                                            .start_time = d->started,
                                            .refusals = metrics_refusals };
    struct metrics_ca_view cas[METRICS_MAX_CAS];
    _cleanup_free_ struct metrics_id_view *v = NULL;
    _cleanup_free_ struct metrics_endpoint_view *eps = NULL;
    size_t n_eps = 0, used = 0, n_cas;

    for (size_t i = 0; i < d->n_ids; i++) {
        const struct cfg_identity *c = d->ids[i].cfg;

        n_eps += c->n_verify_endpoints;
        for (size_t t = 0; t < c->n_targets; t++)
            n_eps += c->targets[t].n_verify;
    }
    v = calloc(d->n_ids ? d->n_ids : 1, sizeof(*v));
    eps = calloc(n_eps ? n_eps : 1, sizeof(*eps));
    if (!v || !eps)
        return -ENOMEM;
    for (size_t i = 0; i < d->n_ids; i++)
        used += identity_metrics_view(&d->ids[i], &v[i], eps + used,
                                      n_eps - used);
    n_cas = renewer_ca_views(d->renewer, cas, ELEMENTSOF(cas));
    return metrics_render(f, time(NULL), &dv, v, d->n_ids, cas, n_cas);
}

/* The metrics endpoints the configuration asks for. */
static int metrics_start(struct daemon *d)
{
    const char *spec[2] = { d->cfg->metrics_listen, d->cfg->metrics_socket };
    char err[256];

    for (int i = 0; i < 2; i++) {
        int fd, r;

        if (!spec[i])
            continue;
        fd = i == 0 ? metrics_listen_tcp(spec[i], err, sizeof(err))
                    : metrics_listen_unix(spec[i], 0600, err, sizeof(err));
        if (fd < 0) {
            log_error("Cannot serve the metrics: %s", err);
            return fd;
        }
        r = metrics_server_start(fd, metrics_collect, d, &d->metrics[i], err,
                                 sizeof(err));
        if (r < 0) {
            log_error("Cannot serve the metrics on %s: %s", spec[i], err);
            return r;
        }
        if (i == 0)
            log_info("Metrics at http://%s/metrics", spec[i]);
        else
            log_info("Metrics on the Unix socket %s (GET /metrics)", spec[i]);
    }
    return 0;
}

/* jansson's free hook does not get the size: wipe what malloc says the
 * block holds, so JSON that carried a secret (a decrypted provisioner key,
 * a token) does not linger in freed memory. */
static void json_free_wiped(void *p)
{
    if (!p)
        return;
    OPENSSL_cleanse(p, malloc_usable_size(p));
    free(p);
}

static void notify(const char *state)
{
#if HAVE_LIBSYSTEMD
    (void)sd_notify(0, state);
#else
    (void)state;
#endif
}

static void admin_request(void *ud, struct identity *id, bool rotate)
{
    struct daemon *d = ud;

    if (d->renewer)
        renewer_request(d->renewer, id, rotate);
}

/* Sockets passed by systemd (socket activation): kept open in our listen
 * fds; ipc_server_new() and the http-01 responder take the ones they know. */
static size_t listen_fds(int *fds, size_t max)
{
    size_t n = 0;
#if HAVE_LIBSYSTEMD
    int r = sd_listen_fds(1);

    for (int i = 0; i < r && n < max; i++) {
        int fd = SD_LISTEN_FDS_START + i;

        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        fds[n++] = fd;
    }
    if (r > 0)
        log_info("Received %d socket%s from systemd", r, r == 1 ? "" : "s");
#else
    (void)fds;
    (void)max;
#endif
    return n;
}

/* A TCP listener passed for the http-01 responder (ListenStream=80). */
static int passed_tcp(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int type = 0;
        socklen_t tl = sizeof(type);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);

        if (fds[i] >= 0 && getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
            type == SOCK_STREAM &&
            getsockname(fds[i], (struct sockaddr *)&ss, &sl) == 0 &&
            (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
            return TAKE_FD(fds[i]);
    }
    return -1;
}

/* One page of the status: the daemon, then identities from first on while
 * they fit in max bytes; "next" says where the following page starts. */
static char *status_json(void *ud, uint32_t first, size_t max)
{
    struct daemon *d = ud;
    json_t *root = json_object(), *ids = json_array();
    size_t used = 512, i; /* the daemon fields and the brackets */
    char *s;

    json_object_set_new(root, "version", json_string(PACKAGE_VERSION));
    json_object_set_new(root, "pid", json_integer(getpid()));
    json_object_set_new(root, "config", json_string(d->cfg->path));
    json_object_set_new(root, "started", json_integer((json_int_t)d->started));
    json_object_set_new(root, "identities_total", json_integer((json_int_t)d->n_ids));
    for (i = first; i < d->n_ids; i++) {
        json_t *o = identity_status(&d->ids[i]);
        size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);

        if (used + n + 1 > max && i > first) {
            json_decref(o);
            break;
        }
        used += n + 1;
        json_array_append_new(ids, o);
    }
    json_object_set_new(root, "identities", ids);
    if (i < d->n_ids)
        json_object_set_new(root, "next", json_integer((json_int_t)i));
    s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    return s;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: shortcertd [OPTIONS]\n"
            "\n"
            "Hold the private keys of short-lived TLS identities, enroll them\n"
            "with step-ca, and sign TLS handshakes for permitted services.\n"
            "\n"
            "  -c, --config FILE     configuration file (default %s)\n"
            "      --check-config    validate the configuration and exit\n"
            "      --dump-config     print the effective configuration and exit\n"
            "      --log-level LEVEL debug, info, notice, warning or error\n"
            "                        (overrides log-level in the file)\n"
            "  -h, --help            show this help\n"
            "      --version         show the version\n"
            "\n"
            "Runs in the foreground and logs to stderr with sd-daemon priority\n"
            "prefixes. SIGTERM or SIGINT stop it. See shortcertd(8) and\n"
            "shortcertd.conf(5).\n",
            SHORTCERT_DEFAULT_CONFIG);
}

static int setup_signals(struct daemon *d)
{
    sigset_t mask;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &d->sig_ev };

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    /* Blocked before any thread starts, so every thread inherits it. */
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
        return -EIO;
    signal(SIGPIPE, SIG_IGN);
    d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (d->sigfd < 0)
        return negerrno();
    d->sig_ev.kind = EV_SIGNAL;
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &ev) < 0)
        return negerrno();
    return 0;
}

/* Returns true when the daemon should stop. */
static bool handle_signal(struct daemon *d)
{
    struct signalfd_siginfo si;

    while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            log_notice("Received %s; stopping",
                       si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            return true;
        case SIGHUP:
            log_notice("Received SIGHUP: configuration reload is not "
                       "implemented in this version; restart shortcertd to "
                       "apply a changed configuration, ignoring");
            break;
        default:
            break;
        }
    }
    return false;
}

/* One daemon per state directory: a second one would fight over keys,
 * certificates and the socket.  The lock lives as long as the process. */
static int lock_state_dir(const char *dir)
{
    char path[PATH_MAX], pid[32] = "";
    int fd;

    snprintf(path, sizeof(path), "%s/.lock", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return log_error_errno(negerrno(), "Cannot open %s", path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = negerrno();
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);

        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == -EWOULDBLOCK)
            return log_error_errno(-EBUSY,
                                   "Another shortcertd (pid %s) is using the "
                                   "state directory %s; not starting a second "
                                   "one.",
                                   pid[0] ? pid : "?", dir);
        return log_error_errno(e, "Cannot lock %s", path);
    }
    snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0)
        log_warning_errno(negerrno(), "Cannot record our pid in %s, continuing",
                          path);
    return fd; /* kept open: the lock is ours until exit */
}

static void harden_process(void)
{
    struct rlimit rl;
    int r;

    /* One descriptor per service connection: take the hard limit. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }

    /* No core dumps, no ptrace by non-root, no /proc/PID/mem for others. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        log_warning_errno(negerrno(), "PR_SET_DUMPABLE failed, continuing");
    /* Private keys in the mlocked, guard-paged, MADV_DONTDUMP secure heap. */
    r = CRYPTO_secure_malloc_init(SECURE_HEAP_SIZE, 16);
    if (r == 0)
        log_warning("OpenSSL's secure heap is unavailable (is LimitMEMLOCK too "
                    "low?); private keys use the normal heap, continuing");
    else if (r == 2)
        log_notice("OpenSSL's secure heap could not be locked in memory; "
                   "continuing without mlock");
}

static int run(struct daemon *d)
{
    struct epoll_event evs[64];
    bool stop = false;

    notify("READY=1");
    log_notice("shortcertd %s ready: %zu identit%s", PACKAGE_VERSION, d->n_ids,
               d->n_ids == 1 ? "y" : "ies");
    while (!stop) {
        int n = epoll_wait(d->epfd, evs, (int)ELEMENTSOF(evs), -1);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return log_error_errno(negerrno(), "epoll_wait failed");
        for (int i = 0; i < n && !stop; i++) {
            struct ev_source *src = evs[i].data.ptr;

            if (src->kind == EV_SIGNAL)
                stop = handle_signal(d);
            else
                (void)ipc_server_handle(d->ipc, src, evs[i].events);
        }
    }
    notify("STOPPING=1");
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_CHECK = 0x100, OPT_DUMP, OPT_LEVEL, OPT_VERSION };
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", no_argument, NULL, OPT_CHECK },
        { "dump-config", no_argument, NULL, OPT_DUMP },
        { "log-level", required_argument, NULL, OPT_LEVEL },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 },
    };
    const char *config = SHORTCERT_DEFAULT_CONFIG;
    bool check = false, dump = false;
    int level = -1, c, r;
    struct daemon d = { .epfd = -1, .sigfd = -1 };
    char err[CFG_ERR_MAX];
    size_t inited = 0;
    bool worker_gone;

    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_DUMP:
            dump = true;
            break;
        case OPT_LEVEL:
            level = hlp_log_level_from_string(optarg);
            if (level < 0) {
                fprintf(stderr, "shortcertd: invalid --log-level '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case OPT_VERSION:
            printf("shortcertd %s\n", PACKAGE_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shortcertd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    r = cfg_load(config, &cfg_system_resolver, &d.cfg, err, sizeof(err));
    if (r == 0)
        r = cfg_check_files(d.cfg, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "shortcertd: %s\n", err);
        cfg_free(d.cfg);
        return 1;
    }
    if (check) {
        printf("%s: OK, %zu identit%s\n", config, d.cfg->n_ids,
               d.cfg->n_ids == 1 ? "y" : "ies");
        cfg_free(d.cfg);
        return 0;
    }
    if (dump) {
        cfg_dump(d.cfg, stdout);
        cfg_free(d.cfg);
        return 0;
    }
    hlp_log_set_level(level >= 0 ? level : d.cfg->log_level);
    if (geteuid() != 0) {
        log_error("shortcertd must run as root: it owns the private keys, and "
                  "the provider only trusts a root peer");
        cfg_free(d.cfg);
        return 1;
    }
    umask(077);
    harden_process();
    json_set_alloc_funcs(malloc, json_free_wiped);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("curl_global_init failed");
        return 1;
    }
    d.started = time(NULL);
    r = dir_ensure_parents(d.cfg->state_dir);
    if (r == 0)
        r = dir_ensure_private(d.cfg->state_dir, 0700);
    if (r < 0) {
        log_error_errno(r, "Cannot use state directory %s", d.cfg->state_dir);
        goto out;
    }
    r = lock_state_dir(d.cfg->state_dir);
    if (r < 0)
        goto out;
    d.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (d.epfd < 0 || setup_signals(&d) < 0) {
        r = log_error_errno(negerrno(), "Cannot set up the event loop");
        goto out;
    }
    d.n_ids = d.cfg->n_ids;
    d.ids = calloc(d.n_ids ? d.n_ids : 1, sizeof(*d.ids));
    if (!d.ids) {
        r = -ENOMEM;
        goto out;
    }
    for (; inited < d.n_ids; inited++) {
        r = identity_init(&d.ids[inited], &d.cfg->ids[inited], d.cfg->state_dir);
        if (r < 0) {
            inited++;
            goto out;
        }
        targets_write_files(&d.ids[inited]);
    }
    {
        struct ipc_hooks hooks = {
            .status = status_json,
            .request = admin_request,
            .ud = &d,
        };
        int fds[16], tcp;
        size_t n_fds = listen_fds(fds, ELEMENTSOF(fds));

        r = ipc_server_new(d.cfg, d.ids, d.n_ids, d.epfd, &hooks, fds, n_fds,
                           &d.ipc);
        tcp = r == 0 ? passed_tcp(fds, n_fds) : -1;
        if (r == 0 && tcp >= 0)
            r = http01_new_from_fd(tcp, &d.http01);
        else if (r == 0)
            r = http01_new(d.cfg->http01_listen, &d.http01);
        for (size_t i = 0; i < n_fds; i++)
            if (fds[i] >= 0) {
                log_warning("Ignoring a socket from systemd (fd %d) that matches "
                            "no configured socket",
                            fds[i]);
                close(fds[i]);
            }
        if (r < 0) {
            log_error_errno(r, "Cannot set up the sockets");
            goto out;
        }
    }
    r = renewer_start(d.cfg, d.ids, d.n_ids, d.http01, &d.renewer);
    if (r < 0) {
        log_error_errno(r, "Cannot start the renewal engine");
        goto out;
    }
    r = metrics_start(&d);
    if (r < 0)
        goto out;
    r = run(&d);
out:
    /* A worker left running may still use the identities: then they are not
     * freed (the process is about to exit anyway). */
    /* the metrics read the identities and the engine: stop them first */
    metrics_server_stop(d.metrics[0]);
    metrics_server_stop(d.metrics[1]);
    worker_gone = renewer_stop(d.renewer, 2000);
    ipc_server_free(d.ipc);
    if (worker_gone) {
        http01_free(d.http01);
        for (size_t i = 0; i < inited; i++)
            identity_done(&d.ids[i]);
        free(d.ids);
        cfg_free(d.cfg);
    }
    if (d.sigfd >= 0)
        close(d.sigfd);
    if (d.epfd >= 0)
        close(d.epfd);
    return r < 0 ? 1 : 0;
}
