/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The I/O of delivery targets (target-run.h): files, actions, checks, and
 * the per-target record.  The order of actions and checks (escalation) is
 * target_escalate() in target.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "deliver.h"
#include "fileio.h"
#include "identity.h"
#include "log.h"
#include "macro.h"
#include "target-run.h"
#include "target.h"

/* Pause between two checks of the endpoints after an action. */
#define TARGET_VERIFY_PAUSE_US 300000

struct run_ctx {
    const struct cfg_identity *cfg;
    const struct cfg_target *t;
    struct keygen *g;
    const char *payload; /* chain + reference, no blank line */
    size_t payload_len;
};

/* The combined PEM: the chain (leaf first) then the key reference, blank
 * lines dropped (haproxy's runtime API ends a payload at the first one;
 * PEM_read_bio_PrivateKey() skips the certificates to reach the key). */
static int combined_pem(const char *chain, size_t chain_len, const char *ref,
                        size_t ref_len, char **ret, size_t *ret_len)
{
    const char *parts[2] = { chain, ref };
    const size_t lens[2] = { chain_len, ref_len };
    char *out = malloc(chain_len + ref_len + 2);
    size_t o = 0;

    if (!out)
        return -ENOMEM;
    for (int p = 0; p < 2; p++) {
        for (size_t i = 0; i < lens[p];) {
            const char *nl = memchr(parts[p] + i, '\n', lens[p] - i);
            size_t e = nl ? (size_t)(nl - parts[p]) : lens[p];
            size_t l = e - i;

            if (l > 0 && parts[p][e - 1] == '\r')
                l--;
            if (l > 0) {
                memcpy(out + o, parts[p] + i, l);
                o += l;
                out[o++] = '\n';
            }
            i = e + 1;
        }
    }
    out[o] = '\0';
    *ret = out;
    *ret_len = o;
    return 0;
}

static int write_files(const struct cfg_target *t, struct keygen *g,
                       const char *ref, size_t ref_len, const char *comb,
                       size_t comb_len, bool *ret_written)
{
    struct file_spec f[3];
    size_t n = 0;
    bool same = true;
    int r;

    /* The reference first: a service that reads the pair between the
     * renames sees the new key with the old chain only when the key is
     * the same (a renewal without rotation). */
    if (t->ref_file)
        f[n++] = (struct file_spec){ t->ref_file, ref, ref_len, t->uid, t->gid,
                                     t->mode };
    if (t->chain_file)
        f[n++] = (struct file_spec){ t->chain_file, g->chain_pem, g->chain_len,
                                     t->uid, t->gid, t->mode };
    if (t->combined_file)
        f[n++] = (struct file_spec){ t->combined_file, comb, comb_len, t->uid,
                                     t->gid, t->mode };
    for (size_t i = 0; i < n; i++)
        same = same && file_is_same(f[i].path, f[i].data, f[i].len, f[i].uid,
                                    f[i].gid, f[i].mode);
    *ret_written = false;
    if (n == 0 || same)
        return 0;
    for (size_t i = 0; i < n; i++) {
        r = dir_ensure_parents(f[i].path);
        if (r < 0)
            return r;
    }
    r = file_write_set_atomic(f, n);
    if (r < 0)
        return r;
    *ret_written = true;
    return 0;
}

static const char *action_name(enum deliver_action_type t)
{
    switch (t) {
    case DELIVER_ACTION_SIGNAL:
        return "signal";
    case DELIVER_ACTION_EXEC:
        return "exec";
    case DELIVER_ACTION_SYSTEMD:
        return "systemd-reload";
    case DELIVER_ACTION_HAPROXY:
        return "haproxy";
    case DELIVER_ACTION_NONE:
        break;
    }
    return "none";
}

static int op_act(void *ud, size_t i, char *err, size_t errlen)
{
    struct run_ctx *c = ud;
    const struct cfg_target_action *ca = &c->t->actions[i];
    struct deliver_action a = {
        .type = ca->type,
        .pidfile = ca->pidfile,
        .signo = ca->signo,
        .pid_first_line = ca->pid_first_line,
        .argv = ca->argv,
        .timeout_ms = (long)c->t->action_timeout_s * 1000,
        .unit = ca->unit,
        .socket = ca->socket,
        .cert_path = ca->crt ? ca->crt : c->t->combined_file,
        .haproxy_master = ca->master,
        .payload = c->payload,
        .payload_len = c->payload_len,
    };
    int r = deliver_run_action(&a, err, errlen);

    if ((r == -ENOENT || r == -ESRCH) && ca->type == DELIVER_ACTION_SIGNAL)
        return 1; /* no pidfile or no process: the service is not running */
    if (r == 0)
        log_info("Target '%s': action %zu (%s) done", c->t->name, i + 1,
                 action_name(ca->type));
    return r;
}

static int op_verify(void *ud, char *err, size_t errlen)
{
    struct run_ctx *c = ud;

    for (size_t i = 0; i < c->t->n_verify; i++) {
        const struct cfg_target_verify *v = &c->t->verify[i];
        struct deliver_endpoint e = {
            .host = v->host,
            .port = v->port,
            .sni = v->sni,
            .starttls = v->starttls,
        };
        char got[80] = "";
        int r;

        for (size_t j = 0; !e.sni && j < c->cfg->n_names; j++)
            if (!cfg_name_is_ip(c->cfg->names[j]))
                e.sni = c->cfg->names[j];
        r = deliver_check_endpoint(&e, c->g->leaf,
                                   (long)c->t->verify_timeout_s * 1000, got,
                                   sizeof(got), err, errlen);
        if (r != 1)
            return r;
    }
    return 1;
}

static void op_pause(void *ud)
{
    (void)ud;
    usleep(TARGET_VERIFY_PAUSE_US);
}

static const struct target_ops run_ops = {
    .act = op_act,
    .verify = op_verify,
    .pause = op_pause,
};

/* The state array, allocated on first use (id->lock held). */
static struct target_state *states(struct identity *id)
{
    if (!id->targets && id->cfg->n_targets)
        id->targets = calloc(id->cfg->n_targets, sizeof(*id->targets));
    return id->targets;
}

static void record(struct identity *id, size_t i, struct keygen *g, bool ok,
                   const char *result, const char *reason,
                   const struct target_outcome *o)
{
    struct target_state *st;

    pthread_mutex_lock(&id->lock);
    st = states(id);
    if (st) {
        st += i;
        snprintf(st->result, sizeof(st->result), "%s", result);
        snprintf(st->reason, sizeof(st->reason), "%s", reason ? reason : "");
        snprintf(st->serial, sizeof(st->serial), "%s", g->serial);
        st->last_time = time(NULL);
        if (ok)
            st->deliveries_ok++;
        else
            st->deliveries_failed++;
        if (!ok)
            atomic_fetch_add(&id->metrics.delivery_failures, 1);
        if (o) {
            st->action_failures += o->action_failures;
            st->verify_failures += o->verify_failures;
            st->escalations += o->escalations;
        }
    }
    pthread_mutex_unlock(&id->lock);
}

/* Build the reference and the combined PEM of g. */
static int material(struct identity *id, struct keygen *g, char **ret_ref,
                    size_t *ret_ref_len, char **ret_comb, size_t *ret_comb_len)
{
    _cleanup_free_ char *ref = NULL;
    size_t ref_len = 0;
    int r;

    r = identity_reference_pem(id, g, &ref, &ref_len);
    if (r < 0)
        return r;
    r = combined_pem(g->chain_pem, g->chain_len, ref, ref_len, ret_comb,
                     ret_comb_len);
    if (r < 0)
        return r;
    *ret_ref = TAKE_PTR(ref);
    *ret_ref_len = ref_len;
    return 0;
}

bool targets_deliver(struct identity *id, struct keygen *g)
{
    const struct cfg_identity *cfg = id->cfg;
    _cleanup_free_ char *ref = NULL, *comb = NULL;
    size_t ref_len = 0, comb_len = 0;
    char eb[128];
    bool all = true;
    int r;

    if (cfg->n_targets == 0 || !g || !g->leaf)
        return true;
    r = material(id, g, &ref, &ref_len, &comb, &comb_len);
    if (r < 0) {
        log_error_errno(r, "Identity '%s': cannot build the target files",
                        cfg->name);
        return false;
    }
    for (size_t i = 0; i < cfg->n_targets; i++) {
        const struct cfg_target *t = &cfg->targets[i];
        struct run_ctx c = { cfg, t, g, comb, comb_len };
        struct target_outcome o;
        char reason[600];
        bool written;

        r = write_files(t, g, ref, ref_len, comb, comb_len, &written);
        if (r < 0) {
            snprintf(reason, sizeof(reason), "cannot write the files: %s",
                     strerror_r(-r, eb, sizeof(eb)));
            log_error("Target '%s' (identity '%s'): %s; the service keeps the "
                      "previous certificate",
                      t->name, cfg->name, reason);
            record(id, i, g, false, "write-failed", reason, NULL);
            all = false;
            continue;
        }
        if (written)
            log_info("Target '%s' (identity '%s'): files written (serial %s)",
                     t->name, cfg->name, g->serial);
        target_escalate(&run_ops, &c, t->n_actions, t->n_verify > 0,
                        t->verify_tries, &o);
        switch (o.result) {
        case TARGET_SERVED:
            if (t->n_verify)
                log_info("Target '%s' (identity '%s'): serves serial %s "
                         "(after action %zu%s)",
                         t->name, cfg->name, g->serial, o.action + 1,
                         o.escalations ? ", escalated" : "");
            record(id, i, g, true, t->n_verify ? "served" : "delivered", "", &o);
            break;
        case TARGET_NOT_RUNNING:
            log_notice("Target '%s' (identity '%s'): the service is not "
                       "running (%s); it loads the new files when it starts",
                       t->name, cfg->name, o.reason);
            record(id, i, g, true, "not-running", o.reason, &o);
            break;
        case TARGET_FAILED:
            /* Logged once per delivery, with the reason of the last
             * action; counted in the status. */
            log_error("Target '%s' (identity '%s'): delivery of serial %s "
                      "failed after %zu action(s): %s; the previous key stays "
                      "usable until the new certificate is served",
                      t->name, cfg->name, g->serial, t->n_actions,
                      o.reason[0] ? o.reason : "not served");
            record(id, i, g, false, "not-served", o.reason, &o);
            all = false;
            break;
        }
    }
    return all;
}

void targets_write_files(struct identity *id)
{
    const struct cfg_identity *cfg = id->cfg;
    _cleanup_free_ char *ref = NULL, *comb = NULL;
    struct keygen *g = identity_current(id);
    size_t ref_len = 0, comb_len = 0;
    int r;

    if (!g || !g->leaf || cfg->n_targets == 0 ||
        material(id, g, &ref, &ref_len, &comb, &comb_len) < 0) {
        keygen_unref(g);
        return;
    }
    for (size_t i = 0; i < cfg->n_targets; i++) {
        bool written;

        r = write_files(&cfg->targets[i], g, ref, ref_len, comb, comb_len,
                        &written);
        if (r < 0)
            log_error_errno(r, "Target '%s' (identity '%s'): cannot write "
                            "the files", cfg->targets[i].name, cfg->name);
        else if (written)
            log_info("Target '%s' (identity '%s'): files written (serial %s)",
                     cfg->targets[i].name, cfg->name, g->serial);
    }
    keygen_unref(g);
}

json_t *targets_status_json(struct identity *id)
{
    const struct cfg_identity *cfg = id->cfg;
    json_t *a = json_array();
    struct target_state *st;

    pthread_mutex_lock(&id->lock);
    st = states(id);
    for (size_t i = 0; a && i < cfg->n_targets; i++) {
        const struct target_state *s = st ? &st[i] : NULL;
        json_t *o = json_object();

        if (!o)
            break;
        json_object_set_new(o, "name", json_string(cfg->targets[i].name));
        json_object_set_new(o, "result", json_string(s && s->result[0]
                                                         ? s->result
                                                         : "pending"));
        if (s && s->reason[0])
            json_object_set_new(o, "reason", json_string(s->reason));
        if (s && s->serial[0])
            json_object_set_new(o, "serial", json_string(s->serial));
        json_object_set_new(o, "deliveries_ok",
                            json_integer(s ? (json_int_t)s->deliveries_ok : 0));
        json_object_set_new(o, "deliveries_failed",
                            json_integer(s ? (json_int_t)s->deliveries_failed
                                           : 0));
        json_object_set_new(o, "action_failures",
                            json_integer(s ? (json_int_t)s->action_failures
                                           : 0));
        json_object_set_new(o, "verify_failures",
                            json_integer(s ? (json_int_t)s->verify_failures
                                           : 0));
        json_object_set_new(o, "escalations",
                            json_integer(s ? (json_int_t)s->escalations : 0));
        json_array_append_new(a, o);
    }
    pthread_mutex_unlock(&id->lock);
    return a;
}
