/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The enrollment worker (see enroll.h).  The decision of what to do next is
 * made here and logged here, once per attempt, with its reason.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "acme.h"
#include "config.h"
#include "enroll.h"
#include "fileio.h"
#include "identity.h"
#include "keyfile.h"
#include "log.h"
#include "macro.h"

#define BACKOFF_BASE_S 10
#define BACKOFF_MAX_S 600
#define WAKE_MAX_S 30 /* never sleep longer: clock jumps, suspend */

struct enroller {
    const struct cfg *cfg;
    struct identity *ids;
    size_t n_ids;
    struct http01 *responder;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    bool done;
};

long enroll_backoff_s(unsigned n)
{
    long b = BACKOFF_BASE_S;

    for (unsigned i = 1; i < n && b < BACKOFF_MAX_S; i++)
        b *= 2;
    return b < BACKOFF_MAX_S ? b : BACKOFF_MAX_S;
}

static long jitter(long max)
{
    uint32_t r = 0;

    if (max <= 0 || RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        return 0;
    return (long)(r % (uint32_t)(max + 1));
}

/* The ACME account key for a directory URL, created on first use. */
static EVP_PKEY *account_key(const struct cfg *cfg, const char *directory)
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

static void enroll_one(struct enroller *e, struct identity *id)
{
    const struct cfg_identity *cfg = id->cfg;
    _cleanup_free_ char *directory = cfg_acme_directory(cfg);
    struct acme_result res = { 0 };
    char err[512] = "", err2[256] = "";
    EVP_PKEY *acct = NULL, *key = identity_get_key(id);
    struct timespec t0, t1;
    unsigned failures;
    long wait_s;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!directory || !key) {
        snprintf(err, sizeof(err), "out of memory or no key");
        r = -ENOMEM;
        goto fail;
    }
    acct = account_key(e->cfg, directory);
    if (!acct) {
        snprintf(err, sizeof(err), "no ACME account key");
        r = -EIO;
        goto fail;
    }
    log_info("Identity '%s': enrolling with %s", cfg->name, directory);
    {
        struct acme_request req = {
            .directory_url = directory,
            .ca_root_file = cfg->ca_root,
            .account_key = acct,
            .cert_key = key,
            .names = (const char *const *)cfg->names,
            .n_names = cfg->n_names,
            .lifetime_s = cfg->lifetime_s,
            .responder = e->responder,
        };

        r = acme_issue(&req, &res, err, sizeof(err));
    }
    if (r < 0)
        goto fail;
    r = identity_accept_chain(id, res.chain_pem, res.chain_len, "acme", err2,
                              sizeof(err2));
    if (r < 0) {
        snprintf(err, sizeof(err), "the CA's certificate was not accepted: %s",
                 err2);
        goto fail;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    log_info("Identity '%s': enrolled in %.2fs", cfg->name,
             (double)(t1.tv_sec - t0.tv_sec) +
                 (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    goto out;
fail:
    pthread_mutex_lock(&id->lock);
    failures = ++id->failures;
    wait_s = enroll_backoff_s(failures);
    wait_s += jitter(wait_s / 5);
    id->next_attempt = time(NULL) + wait_s;
    snprintf(id->last_error, sizeof(id->last_error), "%s", err);
    pthread_mutex_unlock(&id->lock);
    log_error_errno(r, "Identity '%s': enrollment failed (attempt %u): %s; "
                       "next attempt in %lds.",
                    cfg->name, failures, err, wait_s);
out:
    acme_result_done(&res);
    EVP_PKEY_free(acct);
    EVP_PKEY_free(key);
}

static void *worker(void *arg)
{
    struct enroller *e = arg;

    pthread_mutex_lock(&e->lock);
    while (!e->stop) {
        time_t now = time(NULL), next = now + WAKE_MAX_S;
        struct identity *due = NULL, *deliver = NULL;
        struct timespec ts;

        for (size_t i = 0; i < e->n_ids; i++) {
            struct identity *id = &e->ids[i];
            time_t at, dat;
            bool pending;

            pthread_mutex_lock(&id->lock);
            at = id->next_attempt;
            pending = id->delivery_pending;
            dat = id->next_delivery;
            pthread_mutex_unlock(&id->lock);
            if (at <= now && !due)
                due = id;
            else if (at < next)
                next = at;
            if (pending && dat <= now && !deliver)
                deliver = id;
            else if (pending && dat < next)
                next = dat;
        }
        if (deliver) {
            pthread_mutex_unlock(&e->lock);
            (void)identity_deliver(deliver);
            pthread_mutex_lock(&e->lock);
            continue;
        }
        if (due) {
            pthread_mutex_unlock(&e->lock);
            enroll_one(e, due);
            pthread_mutex_lock(&e->lock);
            continue;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += next - now > 0 ? next - now : 1;
        (void)pthread_cond_timedwait(&e->cond, &e->lock, &ts);
    }
    e->done = true;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

int enroller_start(const struct cfg *cfg, struct identity *ids, size_t n_ids,
                   struct http01 *responder, struct enroller **ret)
{
    struct enroller *e = calloc(1, sizeof(*e));
    int r;

    if (!e)
        return -ENOMEM;
    e->cfg = cfg;
    e->ids = ids;
    e->n_ids = n_ids;
    e->responder = responder;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    r = -pthread_create(&e->thread, NULL, worker, e);
    if (r < 0) {
        free(e);
        return r;
    }
    *ret = e;
    return 0;
}

bool enroller_stop(struct enroller *e, long wait_ms)
{
    struct timespec ts;
    bool done;

    if (!e)
        return true;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += (wait_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&e->lock);
    e->stop = true;
    pthread_cond_broadcast(&e->cond);
    while (!e->done)
        if (pthread_cond_timedwait(&e->cond, &e->lock, &ts) == ETIMEDOUT)
            break;
    done = e->done;
    pthread_mutex_unlock(&e->lock);
    if (done) {
        pthread_join(e->thread, NULL);
        pthread_cond_destroy(&e->cond);
        pthread_mutex_destroy(&e->lock);
        free(e);
        return true;
    }
    /* Still inside an ACME exchange: leave it; the process exits. */
    log_notice("An enrollment is still in flight; exiting without it");
    pthread_detach(e->thread);
    return false;
}
