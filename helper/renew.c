/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The renewal engine (see renew.h).  Lock order: the engine's lock, then an
 * identity's lock; identity functions take only the identity's.  Every
 * decision is logged once, here, with its reason and what happens next.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "acme.h"
#include "config.h"
#include "deliver.h"
#include "target-run.h"
#include "fileio.h"
#include "identity.h"
#include "keyfile.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"
#include "renew.h"
#include "schedule.h"
#include "sec.h"
#include "stepca.h"

#define PASSWORD_MAX 4096
#define VERIFY_TRIES 10

enum job_kind {
    JOB_PLAN = 1, /* renew, rekey or enroll, per sched_plan() */
    JOB_DELIVER,  /* retry writing the service files */
};

struct job {
    size_t idx;
    enum job_kind kind;
    enum renew_action action;
    bool new_key;
    bool forced;
};

struct prov_entry {
    char *ca_url;
    char *name;
    char *source; /* where the key came from: another source, another entry */
    struct stepca_provisioner *p;
};

struct renewer {
    const struct cfg *cfg;
    struct identity **ids; /* the engine's own table (renewer_swap) */
    size_t n_ids;
    struct http01 *responder;

    pthread_mutex_t lock;
    pthread_cond_t wake;   /* the scheduler */
    pthread_cond_t work;   /* the workers */
    pthread_cond_t ended;  /* stop() waits on it */
    struct job *queue;     /* ring of n_ids slots: one job per identity */
    size_t qhead, qlen;
    bool stop;
    bool paused;           /* renewer_pause(): no new jobs */
    unsigned busy;         /* workers running a job */
    _Atomic int64_t beat;  /* monotonic s of the scheduler's last round */
    int64_t beat_max_s;    /* the scheduler's longest sleep */
    unsigned running;      /* threads not yet ended */
    pthread_t sched;
    bool sched_started;
    pthread_t *workers;
    unsigned n_workers; /* started */

    pthread_mutex_t prov_lock;
    struct prov_entry *provs;
    size_t n_provs;

    /* every CA the identities use (by URL): request latency and health;
     * each allocated once and kept until the engine stops (workers'
     * clients point at their latency), new ones appended by a reload */
    struct ca_state **cas;
    size_t n_cas, cap_cas;
    pthread_t health;
    bool health_started;
    pthread_cond_t health_wake;
};

struct ca_state {
    char *url;
    char *root; /* the first identity's ca-root for this URL */
    struct metrics_hist latency;
    atomic_int up; /* 1, 0, -1 not probed yet */
};

/* A worker's connections: one step-ca handle per CA it talks to. */
struct worker_ctx {
    struct renewer *r;
    struct {
        char *ca_url;
        char *ca_root;
        struct stepca *c;
    } cas[8];
    size_t n_cas;
};

static double random_unit(void)
{
    uint32_t v = 0;

    if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
        return 0.5;
    return (double)v / 4294967296.0;
}

/* The CA is not reachable or not well: no other method would do better,
 * so back off rather than fall through to the next one. */
static bool transient(int r)
{
    return r == -ETIMEDOUT || r == -ECONNREFUSED || r == -EHOSTUNREACH ||
           r == -ENETUNREACH || r == -ECONNRESET || r == -EIO ||
           r == -EREMOTEIO || r == -EBUSY || r == -ENOMEM || r == -EAGAIN;
}

static struct ca_state *find_ca(struct renewer *r, const char *url)
{
    for (size_t i = 0; i < r->n_cas; i++)
        if (strcmp(r->cas[i]->url, url) == 0)
            return r->cas[i];
    return NULL;
}

static struct metrics_hist *ca_latency(struct renewer *r, const char *url)
{
    struct ca_state *ca = find_ca(r, url);

    return ca ? &ca->latency : NULL;
}

/* What a failed attempt counts as (docs/METRICS.md), from stepca.h's and
 * acme.h's errors. */
static enum metrics_reason reason_of(int r)
{
    switch (-r) {
    case ETIMEDOUT:
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ECONNRESET:
    case ENXIO:
    case EIO:
    case EAGAIN:
        return METRICS_REASON_CA_UNREACHABLE;
    case EPERM:
    case EKEYEXPIRED:
    case EPROTONOSUPPORT:
        return METRICS_REASON_TLS;
    case EACCES:
    case EREMOTEIO:
    case EBUSY:
    case EPROTO:
    case ENOENT:
        return METRICS_REASON_HTTP;
    case EBADMSG:
    case EMSGSIZE:
        return METRICS_REASON_BAD_REPLY;
    case ENOTUNIQ:
    case EKEYREJECTED:
    case ENOKEY:
        return METRICS_REASON_CONFIG;
    default:
        return METRICS_REASON_INTERNAL;
    }
}

static enum metrics_method method_of(const char *m)
{
    if (!m)
        return METRICS_METHOD_MAX;
    if (strcmp(m, "renew-mtls") == 0)
        return METRICS_METHOD_MTLS;
    if (strcmp(m, "renew-token") == 0)
        return METRICS_METHOD_TOKEN;
    if (strcmp(m, "rekey") == 0)
        return METRICS_METHOD_REKEY;
    if (strcmp(m, "jwk") == 0)
        return METRICS_METHOD_JWK;
    if (strcmp(m, "acme") == 0)
        return METRICS_METHOD_ACME;
    return METRICS_METHOD_MAX;
}

static struct stepca *worker_ca(struct worker_ctx *w,
                                const struct cfg_identity *cfg, char *err,
                                size_t errlen)
{
    struct stepca *c = NULL;
    int r;

    for (size_t i = 0; i < w->n_cas; i++)
        if (strcmp(w->cas[i].ca_url, cfg->ca_url) == 0 &&
            strcmp(w->cas[i].ca_root, cfg->ca_root) == 0)
            return w->cas[i].c;
    r = stepca_new(cfg->ca_url, cfg->ca_root, 30, &c);
    if (r < 0) {
        snprintf(err, errlen, "cannot set up a client for %s", cfg->ca_url);
        return NULL;
    }
    if (w->n_cas == ELEMENTSOF(w->cas)) {
        /* many CAs: recycle the oldest handle */
        stepca_free(w->cas[0].c);
        free(w->cas[0].ca_url);
        free(w->cas[0].ca_root);
        memmove(w->cas, w->cas + 1, (ELEMENTSOF(w->cas) - 1) * sizeof(w->cas[0]));
        w->n_cas--;
    }
    stepca_set_latency(c, ca_latency(w->r, cfg->ca_url));
    w->cas[w->n_cas].ca_url = strdup(cfg->ca_url);
    w->cas[w->n_cas].ca_root = strdup(cfg->ca_root);
    w->cas[w->n_cas].c = c;
    w->n_cas++;
    return c;
}

/* --- enrollment -------------------------------------------------------- */

/* The ACME account key for a directory URL, created on first use. */
static EVP_PKEY *acme_account_key(const struct cfg *cfg, const char *directory)
{
    unsigned char md[32];
    char dir[PATH_MAX], path[PATH_MAX + 64];
    EVP_PKEY *k = NULL;
    int r;

    if (!EVP_Digest(directory, strlen(directory), md, NULL, EVP_sha256(), NULL))
        return NULL;
    snprintf(dir, sizeof(dir), "%s/acme", cfg->state_dir);
    r = dir_ensure_private(dir, 0700);
    if (r < 0) {
        log_error_errno(r, "Cannot use %s", dir);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/account-%02x%02x%02x%02x%02x%02x%02x%02x.pem",
             dir, md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7]);
    r = keyfile_read(path, &k);
    if (r == 0 && EVP_PKEY_is_a(k, "EC"))
        return k;
    EVP_PKEY_free(k);
    if (r != -ENOENT) {
        char aside[PATH_MAX + 96];

        if (file_move_aside(path, aside, sizeof(aside)) == 0)
            log_error("ACME account key %s is unreadable; moved it aside to %s "
                      "and creating a new account",
                      path, aside);
    }
    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!k)
        return NULL;
    r = keyfile_write(path, k);
    if (r < 0) {
        log_error_errno(r, "Cannot store ACME account key %s", path);
        EVP_PKEY_free(k);
        return NULL;
    }
    log_info("Created ACME account key %s for %s", path, directory);
    return k;
}

static int enroll_acme(struct worker_ctx *w, struct identity *id, EVP_PKEY *key,
                       char **ret_pem, size_t *ret_len, char *err, size_t errlen)
{
    const struct cfg_identity *cfg = id->cfg;
    _cleanup_free_ char *directory = cfg_acme_directory(cfg);
    struct acme_result res = { 0 };
    EVP_PKEY *acct;
    int r;

    if (!directory)
        return -ENOMEM;
    acct = acme_account_key(w->r->cfg, directory);
    if (!acct) {
        snprintf(err, errlen, "no ACME account key");
        return -EIO;
    }
    {
        struct acme_request req = {
            .directory_url = directory,
            .ca_root_file = cfg->ca_root,
            .account_key = acct,
            .cert_key = key,
            .names = (const char *const *)cfg->names,
            .n_names = cfg->n_names,
            .lifetime_s = cfg->lifetime_s,
            .responder = w->r->responder,
        };

        r = acme_issue(&req, &res, err, errlen);
    }
    EVP_PKEY_free(acct);
    if (r < 0)
        return r;
    *ret_pem = res.chain_pem;
    *ret_len = res.chain_len;
    return 0;
}

/* The JWK provisioner's key, loaded once per CA and name and kept. */
static struct stepca_provisioner *provisioner(struct worker_ctx *w,
                                              const struct cfg_identity *cfg,
                                              struct stepca *c, char *err,
                                              size_t errlen)
{
    struct renewer *r = w->r;
    struct stepca_provisioner *p = NULL;
    _cleanup_secret_ struct secret pw = { 0 };
    char path[PATH_MAX], source[PATH_MAX + 16];
    int e;

    /* Cached per CA, provisioner and the source of its key: an identity
     * with another (perhaps wrong) password must not borrow a key that
     * another identity's password unlocked. */
    snprintf(source, sizeof(source), "%s:%s",
             cfg->jwk_password_file ? "file"
             : cfg->jwk_password_credential ? "credential"
                                           : "jwk",
             cfg->jwk_password_file ? cfg->jwk_password_file
             : cfg->jwk_password_credential ? cfg->jwk_password_credential
                                           : cfg->jwk_key_file);
    pthread_mutex_lock(&r->prov_lock);
    for (size_t i = 0; i < r->n_provs && !p; i++)
        if (strcmp(r->provs[i].ca_url, cfg->ca_url) == 0 &&
            strcmp(r->provs[i].name, cfg->jwk_provisioner) == 0 &&
            strcmp(r->provs[i].source, source) == 0)
            p = r->provs[i].p;
    if (p)
        goto out;
    if (cfg->jwk_password_file || cfg->jwk_password_credential) {
        if (cfg->jwk_password_credential) {
            const char *credir = secure_getenv("CREDENTIALS_DIRECTORY");

            if (!credir) {
                snprintf(err, errlen,
                         "jwk-password-credential '%s': no systemd credentials "
                         "(CREDENTIALS_DIRECTORY is not set; use LoadCredential=)",
                         cfg->jwk_password_credential);
                goto out;
            }
            snprintf(path, sizeof(path), "%s/%s", credir,
                     cfg->jwk_password_credential);
        } else {
            snprintf(path, sizeof(path), "%s", cfg->jwk_password_file);
        }
        e = sec_read_file(path, PASSWORD_MAX, &pw);
        if (e < 0) {
            char eb[128];

            snprintf(err, errlen, "cannot read the password of JWK provisioner "
                                  "'%s' from %.200s: %s",
                     cfg->jwk_provisioner, path, strerror_r(-e, eb, sizeof(eb)));
            goto out;
        }
        e = stepca_provisioner_load(c, cfg->jwk_provisioner, &pw, NULL, &p, err,
                                    errlen);
    } else {
        e = stepca_provisioner_load(c, cfg->jwk_provisioner, NULL,
                                    cfg->jwk_key_file, &p, err, errlen);
    }
    if (e < 0) {
        p = NULL;
        goto out;
    }
    {
        struct prov_entry *nv = realloc(r->provs, (r->n_provs + 1) * sizeof(*nv));

        if (!nv) {
            stepca_provisioner_free(p);
            p = NULL;
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        r->provs = nv;
        nv[r->n_provs].ca_url = strdup(cfg->ca_url);
        nv[r->n_provs].name = strdup(cfg->jwk_provisioner);
        nv[r->n_provs].source = strdup(source);
        nv[r->n_provs].p = p;
        r->n_provs++;
    }
    log_info("Loaded the key of JWK provisioner '%s' of %s", cfg->jwk_provisioner,
             cfg->ca_url);
out:
    pthread_mutex_unlock(&r->prov_lock);
    return p;
}

static int enroll_jwk(struct worker_ctx *w, struct identity *id, EVP_PKEY *key,
                      char **ret_pem, size_t *ret_len, char *err, size_t errlen)
{
    const struct cfg_identity *cfg = id->cfg;
    struct stepca_result res = { 0 };
    struct stepca_provisioner *p;
    struct stepca *c = worker_ca(w, cfg, err, errlen);
    int r;

    if (!c)
        return -ENOMEM;
    p = provisioner(w, cfg, c, err, errlen);
    if (!p)
        return -EACCES;
    r = stepca_sign_jwk(c, p, key, (const char *const *)cfg->names, cfg->n_names,
                        cfg->lifetime_s, &res, err, errlen);
    if (r < 0)
        return r;
    *ret_pem = res.chain_pem;
    *ret_len = res.chain_len;
    return 0;
}

static int enroll(struct worker_ctx *w, struct identity *id, struct keygen *g,
                  const char **ret_method, char **pem, size_t *len, char *err,
                  size_t errlen)
{
    if (id->cfg->enroll == CFG_ENROLL_JWK) {
        *ret_method = "jwk";
        return enroll_jwk(w, id, g->key, pem, len, err, errlen);
    }
    *ret_method = "acme";
    return enroll_acme(w, id, g->key, pem, len, err, errlen);
}

/* --- delivery ---------------------------------------------------------- */

/* The identity's own files (its implicit first target): make the service
 * load them and check it does.  True when the new certificate may count as
 * served. */
static bool deliver_implicit(struct identity *id, struct keygen *g)
{
    const struct cfg_identity *cfg = id->cfg;
    char err[512] = "", serial[80] = "";
    int r;

    if (cfg->reload_pidfile || cfg->reload_argv) {
        struct deliver_action a = {
            .type = cfg->reload_pidfile ? DELIVER_ACTION_SIGNAL : DELIVER_ACTION_EXEC,
            .pidfile = cfg->reload_pidfile,
            .signo = cfg->reload_signal,
            .argv = cfg->reload_argv,
            .timeout_ms = (long)cfg->reload_timeout_s * 1000,
        };

        r = deliver_run_action(&a, err, sizeof(err));
        if ((r == -ENOENT || r == -ESRCH) && cfg->reload_pidfile) {
            /* No pidfile, or its process is gone: the service is not
             * running, and will read the new files when it starts. */
            log_notice("Identity '%s': nothing to reload (%s); the service "
                       "will load the new certificate when it starts",
                       cfg->name, err);
            return false;
        }
        if (r < 0) {
            log_error("Identity '%s': the reload action failed: %s; the new "
                      "certificate is written but the service may still serve "
                      "the old one",
                      cfg->name, err);
            pthread_mutex_lock(&id->lock);
            id->verify_state = -1;
            atomic_fetch_add(&id->metrics.delivery_failures, 1);
            snprintf(id->last_error, sizeof(id->last_error), "reload: %s", err);
            pthread_mutex_unlock(&id->lock);
            return false;
        }
        log_info("Identity '%s': reload action done", cfg->name);
    }
    if (cfg->n_verify_endpoints == 0) {
        /* Nothing can tell whether the service loaded it: take the reload
         * (or the files) as delivery. */
        return true;
    }
    for (size_t i = 0; i < cfg->n_verify_endpoints; i++) {
        char host[256];
        unsigned port;
        struct deliver_endpoint e = { .host = host };
        bool ok = false;

        if (deliver_parse_endpoint(cfg->verify_endpoints[i], host, sizeof(host),
                                   &port) < 0)
            continue;
        e.port = port;
        e.sni = cfg->verify_sni;
        for (size_t j = 0; !e.sni && j < cfg->n_names; j++)
            if (!cfg_name_is_ip(cfg->names[j]))
                e.sni = cfg->names[j];
        /* A reloading service takes a moment: retry for a few seconds. */
        for (int t = 0; t < VERIFY_TRIES && !ok; t++) {
            r = deliver_check_endpoint(&e, g->leaf, (long)cfg->verify_timeout_s * 1000,
                                       serial, sizeof(serial), err, sizeof(err));
            ok = r == 1;
            if (!ok)
                usleep(300000);
        }
        if (!ok) {
            log_error("Identity '%s': %s %s after delivery; the previous key "
                      "stays usable until it is",
                      cfg->name, cfg->verify_endpoints[i],
                      r == 0 ? "still serves another certificate (serial "
                             : "cannot be checked (");
            if (r == 0)
                log_error("Identity '%s': served serial %s, expected %s",
                          cfg->name, serial, g->serial);
            else
                log_error("Identity '%s': %s", cfg->name, err);
            pthread_mutex_lock(&id->lock);
            id->verify_state = -1;
            atomic_fetch_add(&id->metrics.verify_failures, 1);
            snprintf(id->last_error, sizeof(id->last_error),
                     "%s does not serve serial %s", cfg->verify_endpoints[i],
                     g->serial);
            pthread_mutex_unlock(&id->lock);
            return false;
        }
    }
    pthread_mutex_lock(&id->lock);
    id->verify_state = 1;
    id->last_verified = time(NULL);
    pthread_mutex_unlock(&id->lock);
    log_info("Identity '%s': every endpoint serves serial %s", cfg->name,
             g->serial);
    return true;
}

/* After a new certificate: deliver it to the identity's own files and to
 * each [target]; the previous key generation stays usable until all of
 * them serve the new certificate. */
static void deliver_after(struct identity *id, struct keygen *g)
{
    bool pending, ok;

    pthread_mutex_lock(&id->lock);
    pending = id->delivery_pending;
    pthread_mutex_unlock(&id->lock);
    if (pending)
        return; /* the files are not in place: nothing to load yet */
    ok = deliver_implicit(id, g);
    if (targets_deliver(id, g) && ok)
        identity_confirm_served(id);
}

/* --- one job ----------------------------------------------------------- */

static void record_failure(struct identity *id, struct keygen *g, int r,
                           const char *what, const char *err)
{
    time_t now = time(NULL), nb = g && g->leaf ? g->nb : 0,
           na = g && g->leaf ? g->na : 0;
    unsigned n;
    int64_t delay;
    int level = sched_failure_level(now, nb, na, g && g->leaf);
    char left[64] = "";

    pthread_mutex_lock(&id->lock);
    n = ++id->failures;
    delay = sched_retry_delay(&id->policy, n, now, nb, na, random_unit());
    id->retry_at = now + (time_t)delay;
    id->last_failure = now;
    snprintf(id->last_error, sizeof(id->last_error), "%s: %s", what, err);
    pthread_mutex_unlock(&id->lock);
    atomic_fetch_add(&id->renewals_failed, 1);
    if (na > now)
        snprintf(left, sizeof(left), "; the current certificate expires in %llds",
                 (long long)(na - now));
    else if (na)
        snprintf(left, sizeof(left), "; the current certificate has EXPIRED");
    log_full_errno(level, r,
                   "Identity '%s': %s failed (attempt %u): %s%s; next attempt "
                   "in %llds.",
                   id->cfg->name, what, n, err, left, (long long)delay);
}

static void run_plan(struct worker_ctx *w, struct identity *id,
                     const struct job *job)
{
    const struct cfg_identity *cfg = id->cfg;
    struct keygen *g = identity_current(id), *target = NULL;
    struct stepca *c = NULL;
    char err[512] = "", err2[512] = "";
    char *pem = NULL;
    size_t len = 0;
    const char *method = NULL, *what = sched_action_str(job->action);
    time_t now = time(NULL);
    int64_t lifetime;
    bool valid, enrolling = job->action == RENEW_ENROLL, rejected = false;
    enum metrics_method attempt = METRICS_METHOD_MAX;
    int r = -EIO;

    if (!g)
        return;
    valid = g->leaf && now < g->na;
    lifetime = g->leaf ? g->requested_lifetime : cfg->lifetime_s;
    if (job->new_key) {
        target = identity_new_keygen(id, err, sizeof(err));
        if (!target) {
            r = -EIO;
            goto fail;
        }
    } else {
        target = keygen_ref(g);
    }
    if (!enrolling) {
        c = worker_ca(w, cfg, err, sizeof(err));
        if (!c) {
            r = -ENOMEM;
            goto fail;
        }
    }

    if (job->action == RENEW_RENEW) {
        r = -EKEYEXPIRED;
        if (valid && g->client_auth) {
            struct stepca_result res = { 0 };

            attempt = METRICS_METHOD_MTLS;
            r = stepca_renew_mtls(c, g->leaf, g->chain, g->key, &res, err,
                                  sizeof(err));
            if (r == 0) {
                pem = res.chain_pem, len = res.chain_len, method = "renew-mtls";
            } else if (transient(r)) {
                goto fail;
            } else {
                log_info("Identity '%s': mTLS renew refused (%s); trying the "
                         "token renew",
                         cfg->name, err);
            }
        }
        if (r < 0) {
            struct stepca_result res = { 0 };

            if (attempt == METRICS_METHOD_MTLS) /* refused: counted */
                metrics_renewal(&id->metrics, attempt, false);
            attempt = METRICS_METHOD_TOKEN;
            r = stepca_renew_token(c, g->leaf, g->chain, g->key, &res, err2,
                                   sizeof(err2));
            if (r == 0) {
                pem = res.chain_pem, len = res.chain_len, method = "renew-token";
            } else {
                snprintf(err, sizeof(err), "%s", err2);
                if (transient(r))
                    goto fail;
                log_notice("Identity '%s': token renew refused (%s); enrolling "
                           "again",
                           cfg->name, err2);
                metrics_renewal(&id->metrics, attempt, false);
                enrolling = true;
            }
        }
    } else if (job->action == RENEW_REKEY) {
        r = -EKEYEXPIRED;
        if (valid && g->client_auth) {
            struct stepca_result res = { 0 };

            attempt = METRICS_METHOD_REKEY;
            r = stepca_rekey_mtls(c, g->leaf, g->chain, g->key, target->key, &res,
                                  err, sizeof(err));
            if (r == 0) {
                pem = res.chain_pem, len = res.chain_len, method = "rekey";
            } else if (transient(r)) {
                goto fail;
            }
        }
        if (r < 0) {
            log_notice("Identity '%s': rekey %s; enrolling the new key",
                       cfg->name, valid ? "refused" : "needs a valid certificate");
            if (attempt == METRICS_METHOD_REKEY)
                metrics_renewal(&id->metrics, attempt, false);
            enrolling = true;
        }
    }
    if (enrolling) {
        what = job->action == RENEW_ENROLL ? "enrollment" : "re-enrollment";
        lifetime = cfg->lifetime_s;
        attempt = cfg->enroll == CFG_ENROLL_JWK ? METRICS_METHOD_JWK
                                                : METRICS_METHOD_ACME;
        r = enroll(w, id, target, &method, &pem, &len, err, sizeof(err));
        if (r < 0)
            goto fail;
    }
    r = identity_accept_chain(id, target, pem, len, method, lifetime, err2,
                              sizeof(err2));
    if (r < 0) {
        snprintf(err, sizeof(err), "the CA's certificate was not accepted: %s",
                 err2);
        rejected = true;
        goto fail;
    }
    atomic_fetch_add(&id->renewals_ok, 1);
    metrics_renewal(&id->metrics, method_of(method), true);
    deliver_after(id, target);
    goto out;
fail:
    if (target && target != g)
        identity_discard_keygen(id, target);
    if (job->forced) {
        /* A renewal or rotation an operator asked for is not forgotten
         * because one attempt failed: it is retried after the back-off. */
        pthread_mutex_lock(&id->lock);
        if (job->action == RENEW_REKEY)
            id->force_rotate = true;
        else
            id->force_renew = true;
        pthread_mutex_unlock(&id->lock);
    }
    if (attempt != METRICS_METHOD_MAX)
        metrics_renewal(&id->metrics, rejected ? method_of(method) : attempt,
                        false);
    metrics_error(&id->metrics,
                  rejected ? METRICS_REASON_REJECTED : reason_of(r));
    record_failure(id, g, r, what, err[0] ? err : "unknown error");
out:
    free(pem);
    keygen_unref(target);
    keygen_unref(g);
}

static void *worker_main(void *arg)
{
    struct worker_ctx *w = arg;
    struct renewer *r = w->r;

    pthread_mutex_lock(&r->lock);
    for (;;) {
        struct job job;
        struct identity *id;

        while (!r->stop && (r->qlen == 0 || r->paused))
            pthread_cond_wait(&r->work, &r->lock);
        if (r->stop)
            break;
        job = r->queue[r->qhead];
        r->qhead = (r->qhead + 1) % r->n_ids;
        r->qlen--;
        r->busy++;
        id = r->ids[job.idx];
        pthread_mutex_unlock(&r->lock);

        if (job.kind == JOB_DELIVER)
            (void)identity_deliver(id);
        else
            run_plan(w, id, &job);

        pthread_mutex_lock(&r->lock);
        pthread_mutex_lock(&id->lock);
        id->in_flight = false;
        pthread_mutex_unlock(&id->lock);
        r->busy--;
        pthread_cond_signal(&r->wake);
        pthread_cond_broadcast(&r->ended); /* renewer_pause() waits */
    }
    r->running--;
    pthread_cond_broadcast(&r->ended);
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < w->n_cas; i++) {
        stepca_free(w->cas[i].c);
        free(w->cas[i].ca_url);
        free(w->cas[i].ca_root);
    }
    free(w);
    return NULL;
}

/* --- the scheduler ----------------------------------------------------- */

/* Decide what identity i needs now (engine lock held).  Returns the time
 * at which it next needs a look. */
static time_t consider(struct renewer *r, size_t i, time_t now)
{
    struct identity *id = r->ids[i];
    struct renew_facts f = { 0 };
    struct keygen *g;
    struct job job = { .idx = i };
    time_t next = 0;
    bool queue = false;

    pthread_mutex_lock(&id->lock);
    g = id->cur;
    if (id->in_flight || !g) {
        pthread_mutex_unlock(&id->lock);
        return 0;
    }
    if (id->delivery_pending) {
        if (now >= id->next_delivery) {
            job.kind = JOB_DELIVER;
            queue = true;
        } else {
            next = id->next_delivery;
        }
    }
    if (!queue) {
        f.have_cert = g->leaf != NULL;
        f.nb = g->nb;
        f.na = g->na;
        f.renew_at = id->renew_at;
        f.forced_renew = id->force_renew;
        f.forced_rotate = id->force_rotate;
        f.config_changed = identity_config_changed(id, g);
        f.key_type_changed = identity_key_type_changed(id, g);
        f.renewals = g->renewals;
        f.key_created = g->key_created;
        f.rotate_every = id->cfg->rotate_every;
        f.rotate_after_s = id->cfg->rotate_after_s;
        job.kind = JOB_PLAN;
        job.action = sched_plan(&f, now, &job.new_key);
        job.forced = f.forced_renew || f.forced_rotate;
        if (job.action != RENEW_NONE && id->retry_at > now) {
            next = id->retry_at; /* backing off */
        } else if (job.action != RENEW_NONE) {
            queue = true;
        } else if (!next || id->renew_at < next) {
            next = id->renew_at;
        }
    }
    if (queue) {
        id->in_flight = true;
        if (job.kind == JOB_PLAN) {
            id->force_renew = false;
            id->force_rotate = false;
        }
        r->queue[(r->qhead + r->qlen) % r->n_ids] = job;
        r->qlen++;
        pthread_cond_signal(&r->work);
    }
    pthread_mutex_unlock(&id->lock);
    return next;
}

static void *scheduler_main(void *arg)
{
    struct renewer *r = arg;

    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        time_t now = time(NULL), next = now + SCHED_MAX_SLEEP_S;
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        atomic_store(&r->beat, (int64_t)ts.tv_sec);
        if (r->beat_max_s && next > now + r->beat_max_s)
            next = now + r->beat_max_s;
        if (r->paused) {
            ts.tv_sec += next - now;
            (void)pthread_cond_timedwait(&r->wake, &r->lock, &ts);
            continue;
        }
        for (size_t i = 0; i < r->n_ids; i++) {
            time_t t = identity_expire_old(r->ids[i], now);

            if (t && t < next)
                next = t;
            t = consider(r, i, now);
            if (t && t < next)
                next = t;
        }
        /* Never one long sleep: the wall clock is read again at least every
         * SCHED_MAX_SLEEP_S, so a clock jump, a suspend or a SIGSTOP past a
         * renewal point is caught within that. */
        if (next <= now)
            continue; /* something became due while we looked */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)sched_sleep_s(now, next);
        (void)pthread_cond_timedwait(&r->wake, &r->lock, &ts);
    }
    r->running--;
    pthread_cond_broadcast(&r->ended);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* --- life cycle -------------------------------------------------------- */

/* --- CA health ----------------------------------------------------------- */

/* The CAs of the configuration, each once (by URL). */
static int cas_add(struct renewer *r, struct identity **ids, size_t n_ids)
{
    for (size_t i = 0; i < n_ids; i++) {
        const struct cfg_identity *c = ids[i]->cfg;
        struct ca_state *ca;

        if (find_ca(r, c->ca_url))
            continue;
        if (r->n_cas == r->cap_cas) {
            size_t cap = r->cap_cas ? r->cap_cas * 2 : 4;
            struct ca_state **nv = realloc(r->cas, cap * sizeof(*nv));

            if (!nv)
                return -ENOMEM;
            r->cas = nv;
            r->cap_cas = cap;
        }
        ca = calloc(1, sizeof(*ca));
        if (!ca)
            return -ENOMEM;
        ca->url = strdup(c->ca_url);
        ca->root = strdup(c->ca_root);
        if (!ca->url || !ca->root) {
            free(ca->url);
            free(ca->root);
            free(ca);
            return -ENOMEM;
        }
        atomic_init(&ca->up, -1);
        r->cas[r->n_cas++] = ca;
    }
    return 0;
}

static void cas_free(struct renewer *r)
{
    for (size_t i = 0; i < r->n_cas; i++) {
        free(r->cas[i]->url);
        free(r->cas[i]->root);
        free(r->cas[i]);
    }
    free(r->cas);
}

/* GET /health of every CA, every ca-health-interval: the CA-availability
 * metric, and one log line when a CA goes away or comes back. */
static void *health_main(void *arg)
{
    struct renewer *r = arg;
    struct stepca **h = NULL;
    size_t n_h = 0;
    char err[512];

    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        struct timespec ts;
        size_t n_cas = r->n_cas; /* a reload may append CAs */
        struct ca_state **cas = r->cas;

        if (n_cas > n_h) {
            struct stepca **nh = realloc(h, n_cas * sizeof(*nh));

            if (nh) {
                memset(nh + n_h, 0, (n_cas - n_h) * sizeof(*nh));
                h = nh;
                n_h = n_cas;
            }
        }
        n_cas = n_cas < n_h ? n_cas : n_h;
        /* the table itself may be reallocated by renewer_swap(): copy */
        _cleanup_free_ struct ca_state **snap =
            calloc(n_cas ? n_cas : 1, sizeof(*snap));

        if (snap)
            memcpy(snap, cas, n_cas * sizeof(*snap));
        else
            n_cas = 0;
        pthread_mutex_unlock(&r->lock);
        for (size_t i = 0; h && i < n_cas; i++) {
            struct ca_state *ca = snap[i];
            int rc, was;

            if (!h[i] && stepca_new(ca->url, ca->root, 10, &h[i]) < 0)
                h[i] = NULL;
            stepca_set_latency(h[i], &ca->latency);
            rc = h[i] ? stepca_health(h[i], err, sizeof(err)) : -ENOMEM;
            was = atomic_exchange(&ca->up, rc == 0);
            if (rc < 0 && was != 0)
                log_warning("CA %s is not healthy: %s", ca->url,
                            h[i] ? err : "cannot set up a client");
            else if (rc == 0 && was == 0)
                log_notice("CA %s is healthy again", ca->url);
        }
        pthread_mutex_lock(&r->lock);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)r->cfg->ca_health_interval_s;
        while (!r->stop &&
               pthread_cond_timedwait(&r->health_wake, &r->lock, &ts) == 0)
            ;
    }
    r->running--;
    pthread_cond_broadcast(&r->ended);
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; h && i < n_h; i++)
        stepca_free(h[i]);
    free(h);
    return NULL;
}

size_t renewer_ca_views(struct renewer *r, struct metrics_ca_view *out,
                        size_t max)
{
    size_t n = 0;

    for (size_t i = 0; r && i < r->n_cas && n < max; i++, n++)
        out[n] = (struct metrics_ca_view){
            .url = r->cas[i]->url,
            .up = atomic_load(&r->cas[i]->up),
            .latency = &r->cas[i]->latency,
        };
    return n;
}

int renewer_start(const struct cfg *cfg, struct identity **ids, size_t n_ids,
                  struct http01 *responder, struct renewer **ret)
{
    struct renewer *r = calloc(1, sizeof(*r));
    pthread_condattr_t ca;
    int e;

    if (!r)
        return -ENOMEM;
    r->cfg = cfg;
    r->ids = calloc(n_ids ? n_ids : 1, sizeof(*r->ids));
    if (r->ids)
        memcpy(r->ids, ids, n_ids * sizeof(*ids));
    r->n_ids = n_ids;
    r->responder = responder;
    r->queue = calloc(n_ids ? n_ids : 1, sizeof(*r->queue));
    r->workers = calloc(cfg->renew_workers ? cfg->renew_workers : 1,
                        sizeof(*r->workers));
    if (!r->ids || !r->queue || !r->workers || cas_add(r, ids, n_ids) < 0) {
        cas_free(r);
        free(r->ids);
        free(r->queue);
        free(r->workers);
        free(r);
        return -ENOMEM;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->prov_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &ca);
    pthread_cond_init(&r->health_wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&r->work, NULL);
    pthread_cond_init(&r->ended, NULL);

    pthread_mutex_lock(&r->lock);
    for (unsigned i = 0; i < (cfg->renew_workers ? cfg->renew_workers : 1); i++) {
        struct worker_ctx *w = calloc(1, sizeof(*w));

        if (!w)
            break;
        w->r = r;
        e = pthread_create(&r->workers[r->n_workers], NULL, worker_main, w);
        if (e != 0) {
            free(w);
            break;
        }
        (void)pthread_setname_np(r->workers[r->n_workers], "sc-renew");
        r->n_workers++;
        r->running++;
    }
    e = r->running ? pthread_create(&r->sched, NULL, scheduler_main, r) : EAGAIN;
    if (e == 0) {
        r->sched_started = true;
        r->running++;
        /* named for ps -L, gdb (and t-62, which stops this one alone) */
        (void)pthread_setname_np(r->sched, "sc-scheduler");
        e = pthread_create(&r->health, NULL, health_main, r);
        if (e == 0) {
            r->health_started = true;
            r->running++;
            (void)pthread_setname_np(r->health, "sc-ca-health");
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (e != 0) {
        (void)renewer_stop(r, 5000);
        return -e;
    }
    log_info("Renewal engine started: %u workers for %zu identit%s",
             r->n_workers, n_ids, n_ids == 1 ? "y" : "ies");
    *ret = r;
    return 0;
}

void renewer_request(struct renewer *r, struct identity *id, bool rotate)
{
    pthread_mutex_lock(&r->lock);
    pthread_mutex_lock(&id->lock);
    if (rotate)
        id->force_rotate = true;
    else
        id->force_renew = true;
    id->retry_at = 0; /* an operator asking means: try now */
    pthread_mutex_unlock(&id->lock);
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

/* CLOCK_REALTIME now + ms (for the "ended" condition variable). */
static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

bool renewer_stop(struct renewer *r, long wait_ms)
{
    struct timespec ts;
    bool done;

    if (!r)
        return true;
    deadline_in(&ts, wait_ms);
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_cond_broadcast(&r->wake);
    pthread_cond_broadcast(&r->work);
    pthread_cond_broadcast(&r->health_wake);
    while (r->running > 0)
        if (pthread_cond_timedwait(&r->ended, &r->lock, &ts) == ETIMEDOUT)
            break;
    done = r->running == 0;
    pthread_mutex_unlock(&r->lock);
    if (!done) {
        log_notice("A renewal is still in flight; exiting without it");
        return false;
    }
    if (r->sched_started)
        pthread_join(r->sched, NULL);
    if (r->health_started)
        pthread_join(r->health, NULL);
    cas_free(r);
    free(r->ids);
    for (unsigned i = 0; i < r->n_workers; i++)
        pthread_join(r->workers[i], NULL);
    for (size_t i = 0; i < r->n_provs; i++) {
        stepca_provisioner_free(r->provs[i].p);
        free(r->provs[i].ca_url);
        free(r->provs[i].name);
        free(r->provs[i].source);
    }
    free(r->provs);
    free(r->queue);
    free(r->workers);
    pthread_cond_destroy(&r->wake);
    pthread_cond_destroy(&r->health_wake);
    pthread_cond_destroy(&r->work);
    pthread_cond_destroy(&r->ended);
    pthread_mutex_destroy(&r->prov_lock);
    pthread_mutex_destroy(&r->lock);
    free(r);
    return true;
}

int renewer_pause(struct renewer *r, long wait_ms)
{
    struct timespec ts;

    deadline_in(&ts, wait_ms);
    pthread_mutex_lock(&r->lock);
    r->paused = true;
    /* Jobs not started yet are dropped: the scheduler decides them again
     * after renewer_resume(), from the (perhaps new) settings. */
    while (r->qlen > 0) {
        struct identity *id = r->ids[r->queue[r->qhead].idx];

        pthread_mutex_lock(&id->lock);
        id->in_flight = false;
        pthread_mutex_unlock(&id->lock);
        r->qhead = (r->qhead + 1) % r->n_ids;
        r->qlen--;
    }
    while (r->busy > 0)
        if (pthread_cond_timedwait(&r->ended, &r->lock, &ts) == ETIMEDOUT)
            break;
    if (r->busy > 0) {
        r->paused = false;
        pthread_cond_broadcast(&r->wake);
        pthread_mutex_unlock(&r->lock);
        return -EBUSY;
    }
    pthread_mutex_unlock(&r->lock);
    return 0;
}

int renewer_swap(struct renewer *r, const struct cfg *cfg,
                 struct identity **ids, size_t n_ids)
{
    struct identity **nids = calloc(n_ids ? n_ids : 1, sizeof(*nids));
    struct job *nq = calloc(n_ids ? n_ids : 1, sizeof(*nq));
    int e;

    if (!nids || !nq) {
        free(nids);
        free(nq);
        return -ENOMEM;
    }
    memcpy(nids, ids, n_ids * sizeof(*ids));
    pthread_mutex_lock(&r->lock);
    e = cas_add(r, ids, n_ids);
    if (e == 0) {
        free(r->ids);
        free(r->queue);
        r->ids = nids;
        r->n_ids = n_ids;
        r->queue = nq; /* empty: renewer_pause() drained it */
        r->qhead = r->qlen = 0;
        r->cfg = cfg;
        nids = NULL;
        nq = NULL;
    }
    pthread_cond_broadcast(&r->health_wake);
    pthread_mutex_unlock(&r->lock);
    free(nids);
    free(nq);
    return e;
}

void renewer_resume(struct renewer *r)
{
    pthread_mutex_lock(&r->lock);
    r->paused = false;
    pthread_cond_broadcast(&r->wake);
    pthread_cond_broadcast(&r->work);
    pthread_mutex_unlock(&r->lock);
}

void renewer_set_heartbeat(struct renewer *r, int64_t max_sleep_s)
{
    pthread_mutex_lock(&r->lock);
    r->beat_max_s = max_sleep_s > 0 ? max_sleep_s : 0;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

int64_t renewer_heartbeat(struct renewer *r)
{
    return r ? atomic_load(&r->beat) : 0;
}
