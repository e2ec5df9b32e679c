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
#include "schedule.h"
#include "stepca.h"

#define SECURE_HEAP_SIZE (1u << 21) /* private keys live here (mlocked) */
#define STATUS_EVERY_S 30            /* STATUS= for systemctl status */
#define REVOKE_REASON_CESSATION 5    /* RFC 5280 cessationOfOperation */
#define RELOAD_PAUSE_MS 300          /* wait for running renewals */

struct daemon {
    struct cfg *cfg;
    /* Identities, each allocated once and kept across reloads while its
     * section exists: ids (the configured ones, in file order) and gone
     * (removed by a reload, still signing until retired).  The metrics
     * thread reads both under tables_lock; the event loop changes them
     * under it (write). */
    struct identity **ids;
    size_t n_ids;
    struct identity **gone;
    size_t n_gone;
    pthread_rwlock_t tables_lock;
    /* configurations replaced by a reload, kept while an identity of
     * "gone" still points into them */
    struct cfg **old_cfgs;
    size_t n_old_cfgs;
    int level_override; /* --log-level, -1 none */
    uint64_t watchdog_usec;
    uint64_t last_ping_ms, last_status_ms, last_retire_ms;
    bool watchdog_withheld;
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
    size_t n_eps = 0, used = 0, n_cas, n;
    int r;

    /* The identities, and the engine's CA table, stay put while we look:
     * a reload swaps them under the write lock. */
    pthread_rwlock_rdlock(&d->tables_lock);
    n = d->n_ids + d->n_gone;
    for (size_t i = 0; i < n; i++) {
        const struct cfg_identity *c =
            (i < d->n_ids ? d->ids[i] : d->gone[i - d->n_ids])->cfg;

        n_eps += c->n_verify_endpoints;
        for (size_t t = 0; t < c->n_targets; t++)
            n_eps += c->targets[t].n_verify;
    }
    v = calloc(n ? n : 1, sizeof(*v));
    eps = calloc(n_eps ? n_eps : 1, sizeof(*eps));
    if (!v || !eps) {
        pthread_rwlock_unlock(&d->tables_lock);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        used += identity_metrics_view(
            i < d->n_ids ? d->ids[i] : d->gone[i - d->n_ids], &v[i],
            eps + used, n_eps - used);
    n_cas = renewer_ca_views(d->renewer, cas, ELEMENTSOF(cas));
    r = metrics_render(f, time(NULL), &dv, v, n, cas, n_cas);
    pthread_rwlock_unlock(&d->tables_lock);
    return r;
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
    json_object_set_new(root, "identities_total",
                        json_integer((json_int_t)(d->n_ids + d->n_gone)));
    for (i = first; i < d->n_ids + d->n_gone; i++) {
        json_t *o = identity_status(i < d->n_ids ? d->ids[i]
                                                 : d->gone[i - d->n_ids]);
        size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);

        if (used + n + 1 > max && i > first) {
            json_decref(o);
            break;
        }
        used += n + 1;
        json_array_append_new(ids, o);
    }
    json_object_set_new(root, "identities", ids);
    if (i < d->n_ids + d->n_gone)
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
            "prefixes. SIGTERM or SIGINT stop it; SIGHUP (or shortcertctl\n"
            "reload) re-reads the configuration: a bad one is refused and the\n"
            "running one kept. See shortcertd(8) and shortcertd.conf(5).\n",
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

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fmt_span(int64_t s, char *buf, size_t n)
{
    if (s < 0)
        snprintf(buf, n, "expired");
    else if (s >= 86400)
        snprintf(buf, n, "in %lldd%lldh", (long long)(s / 86400),
                 (long long)(s % 86400 / 3600));
    else if (s >= 3600)
        snprintf(buf, n, "in %lldh%lldm", (long long)(s / 3600),
                 (long long)(s % 3600 / 60));
    else
        snprintf(buf, n, "in %lldm", (long long)(s / 60));
}

/* STATUS=: one line for systemctl status. */
static void notify_status(struct daemon *d)
{
    const char *soonest = NULL;
    time_t now = time(NULL), soonest_na = 0;
    unsigned failing = 0, no_cert = 0;
    char line[512], span[32], more[96] = "";

    for (size_t i = 0; i < d->n_ids; i++) {
        struct identity *id = d->ids[i];

        pthread_mutex_lock(&id->lock);
        if (id->failures)
            failing++;
        if (!id->cur || !id->cur->leaf)
            no_cert++;
        else if (!soonest || id->cur->na < soonest_na) {
            soonest = id->cfg->name;
            soonest_na = id->cur->na;
        }
        pthread_mutex_unlock(&id->lock);
    }
    if (no_cert)
        snprintf(more, sizeof(more), ", %u without a certificate", no_cert);
    if (d->n_gone)
        snprintf(more + strlen(more), sizeof(more) - strlen(more),
                 ", %zu removed awaiting retirement", d->n_gone);
    fmt_span((int64_t)(soonest_na - now), span, sizeof(span));
    if (soonest)
        snprintf(line, sizeof(line),
                 "STATUS=%zu identit%s, soonest expiry %s %s, %u failing%s",
                 d->n_ids, d->n_ids == 1 ? "y" : "ies", soonest, span, failing,
                 more);
    else
        snprintf(line, sizeof(line), "STATUS=%zu identit%s, %u failing%s",
                 d->n_ids, d->n_ids == 1 ? "y" : "ies", failing, more);
    notify(line);
    d->last_status_ms = mono_ms();
}

/* WATCHDOG=1 at half the interval, but only while the renewal scheduler
 * is alive too: it records a heartbeat every round (at least every
 * quarter interval); a stuck one stops the pings and systemd restarts
 * us.  The event loop being alive is implied by our running here. */
static void watchdog_tick(struct daemon *d, uint64_t now_ms)
{
    struct timespec ts;
    int64_t age;
    int w;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    age = d->renewer ? (int64_t)ts.tv_sec - renewer_heartbeat(d->renewer) : 0;
    w = sched_watchdog(d->watchdog_usec, now_ms - d->last_ping_ms, age);
    if (w == 0)
        return;
    if (w < 0) {
        if (!d->watchdog_withheld)
            log_error("The renewal scheduler has not run for %llds; withholding "
                      "the watchdog ping",
                      (long long)age);
        d->watchdog_withheld = true;
        return;
    }
    d->watchdog_withheld = false;
    notify("WATCHDOG=1");
    d->last_ping_ms = now_ms;
}

/* --- configuration reload ----------------------------------------------- */

/* Names of identities whose retirement (revocation, moving the state
 * directory aside) runs on its own thread: not to be configured again
 * until it is done.  Static: such a thread may outlive run(). */
#define RETIRING_MAX 64
static pthread_mutex_t retiring_lock = PTHREAD_MUTEX_INITIALIZER;
static char *retiring[RETIRING_MAX];

/* Add (name) or, with done, remove one.  false: no room (add). */
static bool retiring_mark(const char *name, bool done)
{
    bool ok = done;

    pthread_mutex_lock(&retiring_lock);
    for (size_t i = 0; i < RETIRING_MAX; i++) {
        if (done && retiring[i] && strcmp(retiring[i], name) == 0) {
            free(retiring[i]);
            retiring[i] = NULL;
            break;
        }
        if (!done && !retiring[i]) {
            retiring[i] = strdup(name);
            ok = retiring[i] != NULL;
            break;
        }
    }
    pthread_mutex_unlock(&retiring_lock);
    return ok;
}

static bool retiring_has(const char *name)
{
    bool found = false;

    pthread_mutex_lock(&retiring_lock);
    for (size_t i = 0; i < RETIRING_MAX && !found; i++)
        found = retiring[i] && strcmp(retiring[i], name) == 0;
    pthread_mutex_unlock(&retiring_lock);
    return found;
}

static bool cfg_owns(const struct cfg *c, const struct cfg_identity *ic)
{
    return c->n_ids && ic >= c->ids && ic < c->ids + c->n_ids;
}

/* Free the replaced configurations no identity points into any more. */
static void old_cfgs_gc(struct daemon *d)
{
    size_t k = 0;

    for (size_t i = 0; i < d->n_old_cfgs; i++) {
        bool used = false;

        for (size_t j = 0; j < d->n_gone && !used; j++)
            used = cfg_owns(d->old_cfgs[i], d->gone[j]->cfg);
        if (used)
            d->old_cfgs[k++] = d->old_cfgs[i];
        else
            cfg_free(d->old_cfgs[i]);
    }
    d->n_old_cfgs = k;
}

static struct identity *take_by_name(struct identity **v, size_t *n,
                                     const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(v[i]->cfg->name, name) == 0) {
            struct identity *id = v[i];

            memmove(v + i, v + i + 1, (*n - i - 1) * sizeof(*v));
            (*n)--;
            return id;
        }
    return NULL;
}

/* The signing table: the configured identities, then the removed ones. */
static int publish_tables(struct daemon *d)
{
    _cleanup_free_ struct identity **all =
        calloc(d->n_ids + d->n_gone + 1, sizeof(*all));

    if (!all)
        return -ENOMEM;
    memcpy(all, d->ids, d->n_ids * sizeof(*all));
    if (d->n_gone) /* gone is NULL until a reload removed one */
        memcpy(all + d->n_ids, d->gone, d->n_gone * sizeof(*all));
    return ipc_server_set_identities(d->ipc, d->cfg, all, d->n_ids + d->n_gone);
}

static int reload_config(struct daemon *d, char *err, size_t errlen)
{
    _cleanup_free_ enum cfg_change *what = NULL;
    _cleanup_free_ bool *removed = NULL;
    _cleanup_free_ struct identity **nids = NULL, **pool = NULL, **ngone = NULL;
    struct cfg *nc = NULL, **nold;
    size_t n_pool = d->n_ids, n_ngone = d->n_gone;
    unsigned n_same = 0, n_changed = 0, n_added = 0, n_removed = 0;
    time_t now = time(NULL);
    int r;

    r = cfg_load(d->cfg->path, &cfg_system_resolver, &nc, err, errlen);
    if (r == 0)
        r = cfg_check_files(nc, err, errlen);
    if (r == 0) {
        what = calloc(nc->n_ids + 1, sizeof(*what));
        removed = calloc(d->cfg->n_ids + 1, sizeof(*removed));
        r = what && removed ? cfg_diff(d->cfg, nc, what, removed, err, errlen)
                            : -ENOMEM;
    }
    if (r < 0)
        goto refused;

    /* The new tables: identities kept are the same objects (their keys,
     * certificates, counters, schedule); an identity removed by an earlier
     * reload and configured again comes back as it was. */
    nids = calloc(nc->n_ids + 1, sizeof(*nids));
    pool = calloc(d->n_ids + 1, sizeof(*pool));
    ngone = calloc(d->n_gone + d->n_ids + 1, sizeof(*ngone));
    nold = realloc(d->old_cfgs, (d->n_old_cfgs + 1) * sizeof(*nold));
    if (!nids || !pool || !ngone || !nold) {
        r = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto refused;
    }
    d->old_cfgs = nold;
    memcpy(pool, d->ids, d->n_ids * sizeof(*pool));
    if (d->n_gone)
        memcpy(ngone, d->gone, d->n_gone * sizeof(*ngone));
    for (size_t i = 0; i < nc->n_ids; i++) {
        const struct cfg_identity *ic = &nc->ids[i];

        nids[i] = take_by_name(pool, &n_pool, ic->name);
        if (!nids[i])
            nids[i] = take_by_name(ngone, &n_ngone, ic->name);
        if (nids[i])
            continue;
        if (retiring_has(ic->name)) {
            r = -EBUSY;
            snprintf(err, errlen, "identity '%s' is being retired (revoked, "
                                  "its state moved aside); reload again in a "
                                  "moment", ic->name);
            goto undo;
        }
        nids[i] = calloc(1, sizeof(**nids));
        r = nids[i] ? identity_init(nids[i], ic, nc->state_dir) : -ENOMEM;
        if (r < 0) {
            if (nids[i])
                identity_done(nids[i]);
            free(nids[i]);
            nids[i] = NULL;
            snprintf(err, errlen, "cannot set up the new identity '%s' (state "
                                  "directory)", ic->name);
            goto undo;
        }
    }
    /* Quiesce the engine: nothing of it may use a setting we replace.
     * Briefly: signing waits meanwhile, and a provider gives up on a
     * signature after 1 s by default. */
    r = renewer_pause(d->renewer, RELOAD_PAUSE_MS);
    if (r < 0) {
        snprintf(err, errlen, "a renewal is in progress; reload again in a "
                              "moment");
        goto undo;
    }
    r = renewer_swap(d->renewer, nc, nids, nc->n_ids);
    if (r < 0) {
        renewer_resume(d->renewer);
        snprintf(err, errlen, "out of memory");
        goto undo;
    }
    pthread_rwlock_wrlock(&d->tables_lock);
    for (size_t i = 0; i < nc->n_ids; i++) {
        struct identity *id = nids[i];
        bool was_gone = id->removed_at != 0;

        if (was_gone) {
            id->removed_at = 0;
            log_notice("Identity '%s' is configured again; it is kept and "
                       "renewed as before",
                       nc->ids[i].name);
        }
        if (what[i] == CFG_ADDED && !was_gone && id->cfg == &nc->ids[i]) {
            n_added++;
            log_notice("Identity '%s' added; enrolling it", id->cfg->name);
        } else if (was_gone || what[i] == CFG_CHANGED) {
            n_changed++;
            identity_reconfigure(id, &nc->ids[i]);
            if (!was_gone)
                log_notice("Identity '%s': settings changed; applied (a change "
                           "of names, lifetime or key type re-enrolls it)",
                           id->cfg->name);
        } else {
            n_same++;
            pthread_mutex_lock(&id->lock);
            id->cfg = &nc->ids[i]; /* equal settings, the new copy */
            pthread_mutex_unlock(&id->lock);
        }
    }
    for (size_t i = 0; i < n_pool; i++) {
        struct identity *id = pool[i];

        id->removed_at = now;
        ngone[n_ngone++] = id;
        n_removed++;
        log_warning("Identity '%s' was removed from the configuration: it is "
                    "no longer renewed, but services may still sign with it "
                    "until it has been unused for %llds (retire-after) or its "
                    "certificate expires; then it is retired%s",
                    id->cfg->name, (long long)nc->retire_after_s,
                    id->cfg->revoke_on_remove ? " and its certificate revoked"
                                              : "");
    }
    d->old_cfgs[d->n_old_cfgs++] = d->cfg;
    d->cfg = nc;
    free(d->ids);
    d->ids = TAKE_PTR(nids);
    d->n_ids = nc->n_ids;
    free(d->gone);
    d->gone = TAKE_PTR(ngone);
    d->n_gone = n_ngone;
    r = publish_tables(d);
    old_cfgs_gc(d);
    pthread_rwlock_unlock(&d->tables_lock);
    renewer_resume(d->renewer);
    if (r < 0)
        log_error_errno(r, "Cannot update the signing socket's table");
    for (size_t i = 0; i < d->n_ids; i++)
        if (d->ids[i]->cfg == &nc->ids[i] && what[i] != CFG_SAME)
            targets_write_files(d->ids[i]);
    if (d->level_override < 0)
        hlp_log_set_level(nc->log_level);
    snprintf(err, errlen,
             "configuration reloaded: %u added, %u changed, %u removed, %u "
             "unchanged",
             n_added, n_changed, n_removed, n_same);
    log_notice("Configuration %s reloaded: %u added, %u changed, %u removed, "
               "%u unchanged",
               nc->path, n_added, n_changed, n_removed, n_same);
    return 0;

undo:
    for (size_t i = 0; nids && i < nc->n_ids; i++)
        if (nids[i] && nids[i]->cfg == &nc->ids[i]) {
            /* created by this attempt: its directory stays, nothing else */
            identity_done(nids[i]);
            free(nids[i]);
        }
refused:
    log_error("Configuration reload refused: %s; the running configuration "
              "stays in effect",
              err);
    cfg_free(nc);
    return r < 0 ? r : -EINVAL;
}

struct retire_job {
    struct identity *id;
    char *name, *ca_url, *ca_root, *state_dir;
    bool revoke;
};

/* Phase 2 of a removal, off the event loop: revoke (if asked), move the
 * state directory aside (its keys are kept, never silently deleted),
 * free the identity.  The identity is in no table any more. */
static void *retire_main(void *arg)
{
    struct retire_job *j = arg;
    struct identity *id = j->id;
    struct keygen *g = identity_current(id);
    char err[512] = "", serial[80] = "", aside[PATH_MAX], stamp[32];
    time_t now = time(NULL);
    struct tm tm;

    if (j->revoke && g && g->leaf && now < g->na) {
        struct stepca *c = NULL;
        int r = stepca_new(j->ca_url, j->ca_root, 30, &c);

        if (r == 0)
            r = stepca_revoke_mtls(c, g->leaf, g->chain, g->key,
                                   REVOKE_REASON_CESSATION,
                                   "identity removed from the shortcertd "
                                   "configuration",
                                   serial, sizeof(serial), err, sizeof(err));
        else
            snprintf(err, sizeof(err), "cannot set up a client for %s",
                     j->ca_url);
        stepca_free(c);
        if (r == 0)
            log_notice("AUDIT revoked identity=%s serial=%s method=mtls "
                       "reason=cessationOfOperation (serial %s in hex)",
                       j->name, serial, g->serial);
        else
            log_error("Identity '%s': could not revoke its certificate (serial "
                      "%s) at %s: %s",
                      j->name, g->serial, j->ca_url, err);
    } else if (j->revoke) {
        log_notice("Identity '%s': no valid certificate left to revoke",
                   j->name);
    }
    keygen_unref(g);
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(aside, sizeof(aside), "%s/identities/.removed-%s-%s", j->state_dir,
             j->name, stamp);
    if (rename(id->dir, aside) == 0)
        log_notice("AUDIT removed identity=%s state=%s (moved aside, keys "
                   "kept)",
                   j->name, aside);
    else
        log_error_errno(negerrno(), "Identity '%s' retired, but its state "
                                    "directory %s could not be moved aside",
                        j->name, id->dir);
    identity_done(id);
    free(id);
    retiring_mark(j->name, true);
    free(j->name);
    free(j->ca_url);
    free(j->ca_root);
    free(j->state_dir);
    free(j);
    return NULL;
}

/* Retire the removed identities that nobody used for retire-after, or
 * whose certificate expired: they stop signing at once. */
static void retire_tick(struct daemon *d)
{
    time_t now = time(NULL);

    for (size_t i = 0; i < d->n_gone;) {
        struct identity *id = d->gone[i];
        time_t last = (time_t)atomic_load(&id->last_signed), na = 0;
        struct retire_job *j;
        pthread_attr_t attr;
        pthread_t t;
        bool expired;

        if (last < id->removed_at)
            last = id->removed_at;
        pthread_mutex_lock(&id->lock);
        if (id->cur && id->cur->leaf)
            na = id->cur->na;
        pthread_mutex_unlock(&id->lock);
        expired = !na || now >= na;
        if (!expired && now - last < d->cfg->retire_after_s) {
            i++;
            continue;
        }
        j = calloc(1, sizeof(*j));
        if (!j)
            return;
        j->id = id;
        j->name = strdup(id->cfg->name);
        j->ca_url = strdup(id->cfg->ca_url);
        j->ca_root = strdup(id->cfg->ca_root);
        j->state_dir = strdup(d->cfg->state_dir);
        j->revoke = id->cfg->revoke_on_remove;
        if (!j->name || !j->ca_url || !j->ca_root || !j->state_dir ||
            !retiring_mark(j->name, false)) { /* full: at the next tick */
            free(j->name);
            free(j->ca_url);
            free(j->ca_root);
            free(j->state_dir);
            free(j);
            return;
        }
        log_notice("Identity '%s' (removed from the configuration) is retired: "
                   "%s; it no longer signs",
                   j->name,
                   expired ? "its certificate expired"
                           : "no service signed with it for retire-after");
        pthread_rwlock_wrlock(&d->tables_lock);
        memmove(d->gone + i, d->gone + i + 1,
                (d->n_gone - i - 1) * sizeof(*d->gone));
        d->n_gone--;
        if (publish_tables(d) < 0)
            log_error("Cannot update the signing socket's table");
        old_cfgs_gc(d);
        pthread_rwlock_unlock(&d->tables_lock);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, retire_main, j) != 0)
            retire_main(j);
        pthread_attr_destroy(&attr);
    }
}

static void do_reload(struct daemon *d, char *err, size_t errlen, int *ret)
{
    char line[64];

    snprintf(line, sizeof(line), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)mono_ms() * 1000ull);
    notify(line);
    *ret = reload_config(d, err, errlen);
    notify("READY=1");
    notify_status(d);
}

static int admin_reload(void *ud, char *err, size_t errlen)
{
    int r;

    do_reload(ud, err, errlen, &r);
    return r;
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
        case SIGHUP: {
            char err[CFG_ERR_MAX];
            int r;

            log_notice("Received SIGHUP: reloading %s", d->cfg->path);
            do_reload(d, err, sizeof(err), &r);
            break;
        }
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
    int tick_ms = 1000;

#if HAVE_LIBSYSTEMD
    if (sd_watchdog_enabled(0, &d->watchdog_usec) <= 0)
        d->watchdog_usec = 0;
#endif
    if (d->watchdog_usec) {
        int64_t beat = (int64_t)(d->watchdog_usec / 4000000);

        renewer_set_heartbeat(d->renewer, beat < 1 ? 1 : beat);
        if (d->watchdog_usec / 2000 < (uint64_t)tick_ms)
            tick_ms = (int)(d->watchdog_usec / 2000) ? (int)(d->watchdog_usec / 2000) : 1;
        log_info("Watchdog: pinging systemd every %llums",
                 (unsigned long long)(d->watchdog_usec / 2000));
    }
    notify("READY=1");
    notify_status(d);
    log_notice("shortcertd %s ready: %zu identit%s", PACKAGE_VERSION, d->n_ids,
               d->n_ids == 1 ? "y" : "ies");
    while (!stop) {
        int n = epoll_wait(d->epfd, evs, (int)ELEMENTSOF(evs), tick_ms);
        uint64_t now_ms = mono_ms();

        watchdog_tick(d, now_ms);
        if (now_ms - d->last_status_ms >= STATUS_EVERY_S * 1000)
            notify_status(d);
        if (now_ms - d->last_retire_ms >= 1000) {
            retire_tick(d);
            d->last_retire_ms = now_ms;
        }
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
    struct daemon d = { .epfd = -1, .sigfd = -1, .level_override = -1 };
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
    d.level_override = level;
    pthread_rwlock_init(&d.tables_lock, NULL);
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
        d.ids[inited] = calloc(1, sizeof(**d.ids));
        if (!d.ids[inited]) {
            r = -ENOMEM;
            goto out;
        }
        r = identity_init(d.ids[inited], &d.cfg->ids[inited], d.cfg->state_dir);
        if (r < 0) {
            inited++;
            goto out;
        }
        targets_write_files(d.ids[inited]);
    }
    {
        struct ipc_hooks hooks = {
            .status = status_json,
            .request = admin_request,
            .reload = admin_reload,
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
        /* a reload may have replaced the table: all of it was inited */
        if (d.renewer)
            inited = d.n_ids;
        for (size_t i = 0; d.ids && i < inited; i++) {
            if (d.ids[i])
                identity_done(d.ids[i]);
            free(d.ids[i]);
        }
        for (size_t i = 0; i < d.n_gone; i++) {
            identity_done(d.gone[i]);
            free(d.gone[i]);
        }
        free(d.ids);
        free(d.gone);
        for (size_t i = 0; i < d.n_old_cfgs; i++)
            cfg_free(d.old_cfgs[i]);
        free(d.old_cfgs);
        cfg_free(d.cfg);
    }
    if (d.sigfd >= 0)
        close(d.sigfd);
    if (d.epfd >= 0)
        close(d.epfd);
    return r < 0 ? 1 : 0;
}
