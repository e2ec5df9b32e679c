/* SPDX-License-Identifier: Apache-2.0 */
/*
 * [target NAME] sections (target.h): the key parser, and the escalation
 * order of actions and checks, kept free of I/O so the unit tests drive it
 * with fakes.  The I/O lives in target-run.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ipc-proto.h"
#include "macro.h"
#include "target.h"

__attribute__((format(printf, 3, 4))) static int terr(char *err, size_t n,
                                                      const char *fmt, ...)
{
    va_list ap;

    if (err && n) {
        va_start(ap, fmt);
        (void)vsnprintf(err, n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* Split on blanks into at most max words (pointers into buf). */
static int split_words(char *buf, char **w, size_t max, size_t *ret_n)
{
    size_t n = 0;
    char *p = buf;

    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (n == max)
            return -E2BIG;
        w[n++] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (*p)
            *p++ = '\0';
    }
    *ret_n = n;
    return 0;
}

static int abs_path(const char *s, char **dst)
{
    char norm[PATH_MAX];

    if (s[0] != '/' || strlen(s) >= PATH_MAX ||
        cfg_normalize_path(s, norm, sizeof(norm)) < 0 || strcmp(norm, "/") == 0)
        return -EINVAL;
    *dst = strdup(norm);
    return *dst ? 0 : -ENOMEM;
}

void cfg_target_action_free(struct cfg_target_action *a)
{
    if (!a)
        return;
    free(a->pidfile);
    for (size_t i = 0; i < a->n_argv; i++)
        free(a->argv[i]);
    free(a->argv);
    free(a->unit);
    free(a->socket);
    free(a->crt);
    *a = (struct cfg_target_action){ 0 };
}

void cfg_target_verify_free(struct cfg_target_verify *v)
{
    if (!v)
        return;
    free(v->text);
    free(v->sni);
    *v = (struct cfg_target_verify){ 0 };
}

int cfg_target_parse_action(const char *value, struct cfg_target_action *a,
                            char *err, size_t errlen)
{
    _cleanup_free_ char *buf = strdup(value ? value : "");
    char *w[TARGET_ARGV_MAX + 1];
    struct cfg_target_action t = { 0 };
    size_t n;
    int r;

    if (!buf)
        return -ENOMEM;
    if (split_words(buf, w, ELEMENTSOF(w), &n) < 0)
        return terr(err, errlen, "action: too many words (%d arguments at "
                    "most)", TARGET_ARGV_MAX);
    if (n == 0)
        return terr(err, errlen, "action: empty; expected signal, exec, "
                    "systemd-reload or haproxy");
    if (strcmp(w[0], "signal") == 0) {
        t.type = DELIVER_ACTION_SIGNAL;
        if (n < 3 || n > 4 || (n == 4 && strcmp(w[3], "first-line") != 0))
            return terr(err, errlen, "action: use 'signal SIGNAL PIDFILE "
                        "[first-line]', such as 'signal HUP /run/nginx.pid'");
        t.signo = cfg_parse_signal(w[1]);
        if (t.signo < 0)
            return terr(err, errlen, "action: invalid signal '%s': use HUP, "
                        "USR1, USR2, TERM, INT, QUIT or WINCH", w[1]);
        t.pid_first_line = n == 4;
        r = abs_path(w[2], &t.pidfile);
        if (r < 0)
            return r == -ENOMEM ? r
                                : terr(err, errlen, "action: the pidfile must "
                                       "be an absolute path, got '%s'", w[2]);
    } else if (strcmp(w[0], "exec") == 0) {
        t.type = DELIVER_ACTION_EXEC;
        if (n < 2 || w[1][0] != '/')
            return terr(err, errlen, "action: use 'exec /ABSOLUTE/PROGRAM "
                        "ARG...' (no shell, no PATH search)");
        t.argv = calloc(n, sizeof(*t.argv));
        if (!t.argv)
            return -ENOMEM;
        for (size_t i = 1; i < n; i++) {
            t.argv[i - 1] = strdup(w[i]);
            if (!t.argv[i - 1]) {
                cfg_target_action_free(&t);
                return -ENOMEM;
            }
            t.n_argv++;
        }
    } else if (strcmp(w[0], "systemd-reload") == 0) {
        t.type = DELIVER_ACTION_SYSTEMD;
        if (n != 2 || deliver_check_unit_name(w[1]) < 0)
            return terr(err, errlen, "action: use 'systemd-reload UNIT', "
                        "such as 'systemd-reload nginx.service'");
        t.unit = strdup(w[1]);
        if (!t.unit)
            return -ENOMEM;
    } else if (strcmp(w[0], "haproxy") == 0) {
        const char *crt = NULL;

        t.type = DELIVER_ACTION_HAPROXY;
        for (size_t i = 2; i < n; i++) {
            if (strncmp(w[i], "crt=", 4) == 0 && !crt)
                crt = w[i] + 4;
            else if (strcmp(w[i], "master") == 0 && !t.master)
                t.master = true;
            else
                n = 0; /* unknown or repeated option */
        }
        if (n < 2)
            return terr(err, errlen, "action: use 'haproxy SOCKET [crt=PATH] "
                        "[master]' (the worker's 'stats socket ... level "
                        "admin', or with 'master' the master CLI; '@name' for "
                        "an abstract socket)");
        if (w[1][0] == '@') {
            if (!w[1][1] || strlen(w[1]) > 100)
                return terr(err, errlen, "action: invalid abstract socket "
                            "name '%s'", w[1]);
            t.socket = strdup(w[1]);
            r = t.socket ? 0 : -ENOMEM;
        } else {
            r = abs_path(w[1], &t.socket);
            if (r == -EINVAL)
                return terr(err, errlen, "action: the haproxy socket must be "
                            "an absolute path or '@name', got '%s'", w[1]);
        }
        if (r == 0 && crt) {
            r = abs_path(crt, &t.crt);
            if (r == -EINVAL) {
                cfg_target_action_free(&t);
                return terr(err, errlen, "action: crt= must be an absolute "
                            "path, got '%s'", crt);
            }
        }
        if (r < 0) {
            cfg_target_action_free(&t);
            return r;
        }
    } else {
        return terr(err, errlen, "action: unknown action '%s': expected "
                    "signal, exec, systemd-reload or haproxy", w[0]);
    }
    *a = t;
    return 0;
}

int cfg_target_parse_verify(const char *value, struct cfg_target_verify *v,
                            char *err, size_t errlen)
{
    _cleanup_free_ char *buf = strdup(value ? value : "");
    char *w[4];
    struct cfg_target_verify t = { 0 };
    size_t n;

    if (!buf)
        return -ENOMEM;
    if (split_words(buf, w, ELEMENTSOF(w), &n) < 0 || n == 0)
        return terr(err, errlen, "verify: use 'HOST:PORT [sni=NAME] "
                    "[starttls=postgres]'");
    if (deliver_parse_endpoint(w[0], t.host, sizeof(t.host), &t.port) < 0)
        return terr(err, errlen, "verify: invalid endpoint '%s': use "
                    "HOST:PORT or [IPv6]:PORT", w[0]);
    for (size_t i = 1; i < n; i++) {
        if (strncmp(w[i], "sni=", 4) == 0 && !t.sni) {
            if (!cfg_name_valid(w[i] + 4) || cfg_name_is_ip(w[i] + 4)) {
                cfg_target_verify_free(&t);
                return terr(err, errlen, "verify: invalid sni '%s': a DNS "
                            "name", w[i] + 4);
            }
            t.sni = strdup(w[i] + 4);
            if (!t.sni)
                return -ENOMEM;
        } else if (strcmp(w[i], "starttls=postgres") == 0 &&
                   t.starttls == DELIVER_STARTTLS_NONE) {
            t.starttls = DELIVER_STARTTLS_POSTGRES;
        } else {
            cfg_target_verify_free(&t);
            return terr(err, errlen, "verify: unknown or repeated option "
                        "'%s': expected sni=NAME or starttls=postgres", w[i]);
        }
    }
    t.text = strdup(value);
    if (!t.text) {
        cfg_target_verify_free(&t);
        return -ENOMEM;
    }
    *v = t;
    return 0;
}

enum tkey {
    TK_IDENTITY,
    TK_CHAIN,
    TK_REF,
    TK_COMBINED,
    TK_OWNER,
    TK_GROUP,
    TK_MODE,
    TK_ACTION,
    TK_ACTION_TIMEOUT,
    TK_VERIFY,
    TK_VERIFY_TIMEOUT,
    TK_VERIFY_TRIES,
    TK_MAX,
};

static const char *const tkeys[TK_MAX] = {
    [TK_IDENTITY] = "identity",
    [TK_CHAIN] = "chain-file",
    [TK_REF] = "ref-file",
    [TK_COMBINED] = "combined-file",
    [TK_OWNER] = "owner",
    [TK_GROUP] = "group",
    [TK_MODE] = "mode",
    [TK_ACTION] = "action",
    [TK_ACTION_TIMEOUT] = "action-timeout",
    [TK_VERIFY] = "verify",
    [TK_VERIFY_TIMEOUT] = "verify-timeout",
    [TK_VERIFY_TRIES] = "verify-tries",
};

int cfg_target_init(struct cfg_target *t, const char *name, unsigned line,
                    char *err, size_t errlen)
{
    *t = (struct cfg_target){ .line = line, .uid = (uid_t)-1,
                              .gid = (gid_t)-1, .mode = 0644 };
    if (!ipc_identity_valid(name, strlen(name)))
        return terr(err, errlen, "invalid target name '%s': use 1 to 64 "
                    "letters, digits, '.', '_' or '-', starting with a letter "
                    "or digit", name);
    t->name = strdup(name);
    return t->name ? 0 : -ENOMEM;
}

static int set_file(char **dst, unsigned *dline, unsigned line,
                    const char *key, const char *value, char *err,
                    size_t errlen)
{
    size_t vl = strlen(value);
    int r;

    if (vl == 0 || value[vl - 1] == '/')
        return terr(err, errlen, "'%s' must name a file, got '%s'", key, value);
    r = abs_path(value, dst);
    if (r == -EINVAL)
        return terr(err, errlen, "'%s' must be an absolute path, got '%s'", key,
                    value);
    *dline = line;
    return r;
}

int cfg_target_set(struct cfg_target *t, const char *key, const char *value,
                   unsigned line, const struct cfg_resolver *res, char *err,
                   size_t errlen)
{
    unsigned k;
    unsigned v;
    int r;

    for (k = 0; k < TK_MAX; k++)
        if (strcmp(tkeys[k], key) == 0)
            break;
    if (k == TK_MAX)
        return terr(err, errlen, "unknown key '%s' in [target %s]; expected "
                    "identity, chain-file, ref-file, combined-file, owner, "
                    "group, mode, action, action-timeout, verify, "
                    "verify-timeout or verify-tries", key, t->name);
    if ((t->set & (1u << k)) && k != TK_ACTION && k != TK_VERIFY)
        return terr(err, errlen, "duplicate key '%s' in [target %s]", key,
                    t->name);
    t->set |= 1u << k;
    switch ((enum tkey)k) {
    case TK_IDENTITY:
        if (!ipc_identity_valid(value, strlen(value)))
            return terr(err, errlen, "invalid identity name '%s'", value);
        t->identity_line = line;
        t->identity = strdup(value);
        return t->identity ? 0 : -ENOMEM;
    case TK_CHAIN:
        return set_file(&t->chain_file, &t->chain_line, line, key, value, err,
                        errlen);
    case TK_REF:
        return set_file(&t->ref_file, &t->ref_line, line, key, value, err,
                        errlen);
    case TK_COMBINED:
        return set_file(&t->combined_file, &t->combined_line, line, key, value,
                        err, errlen);
    case TK_OWNER:
        if (!res || !res->user || res->user(value, &t->uid) < 0)
            return terr(err, errlen, "unknown user '%s' for 'owner'", value);
        return 0;
    case TK_GROUP:
        if (!res || !res->group || res->group(value, &t->gid) < 0)
            return terr(err, errlen, "unknown group '%s' for 'group'", value);
        return 0;
    case TK_MODE:
        if (cfg_parse_mode(value, &t->mode) < 0)
            return terr(err, errlen, "invalid mode '%s' for 'mode': use octal "
                        "such as 0640", value);
        return 0;
    case TK_ACTION: {
        struct cfg_target_action *nv;

        if (t->n_actions >= TARGET_ACTIONS_MAX)
            return terr(err, errlen, "[target %s]: %d actions at most", t->name,
                        TARGET_ACTIONS_MAX);
        nv = realloc(t->actions, (t->n_actions + 1) * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        t->actions = nv;
        r = cfg_target_parse_action(value, &nv[t->n_actions], err, errlen);
        if (r < 0)
            return r;
        nv[t->n_actions++].line = line;
        return 0;
    }
    case TK_VERIFY: {
        struct cfg_target_verify *nv;

        if (t->n_verify >= TARGET_VERIFY_MAX)
            return terr(err, errlen, "[target %s]: %d verify endpoints at most",
                        t->name, TARGET_VERIFY_MAX);
        nv = realloc(t->verify, (t->n_verify + 1) * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        t->verify = nv;
        r = cfg_target_parse_verify(value, &nv[t->n_verify], err, errlen);
        if (r < 0)
            return r;
        nv[t->n_verify++].line = line;
        return 0;
    }
    case TK_ACTION_TIMEOUT:
    case TK_VERIFY_TIMEOUT: {
        int64_t d;

        if (cfg_parse_duration(value, &d) < 0 || d < 1 || d > 3600)
            return terr(err, errlen, "invalid duration '%s' for '%s': 1s to "
                        "1h, such as 30s", value, key);
        if (k == TK_ACTION_TIMEOUT)
            t->action_timeout_s = d;
        else
            t->verify_timeout_s = d;
        return 0;
    }
    case TK_VERIFY_TRIES:
        v = 0;
        for (const char *p = value; *p; p++) {
            if (*p < '0' || *p > '9' || v > 100) {
                v = 0;
                break;
            }
            v = v * 10 + (unsigned)(*p - '0');
        }
        if (v < 1 || v > 100)
            return terr(err, errlen, "invalid number '%s' for 'verify-tries': "
                        "1 to 100", value);
        t->verify_tries = v;
        return 0;
    case TK_MAX:
        break;
    }
    return -EINVAL;
}

int cfg_target_finish(struct cfg_target *t, unsigned *ret_line, char *err,
                      size_t errlen)
{
    const char *files[3] = { t->chain_file, t->ref_file, t->combined_file };
    const unsigned lines[3] = { t->chain_line, t->ref_line, t->combined_line };

    *ret_line = t->line;
    if (!t->identity)
        return terr(err, errlen, "[target %s]: missing required key "
                    "'identity'", t->name);
    if (!t->chain_file && !t->ref_file && !t->combined_file &&
        t->n_actions == 0)
        return terr(err, errlen, "[target %s]: nothing to deliver: set "
                    "chain-file, ref-file, combined-file or an action",
                    t->name);
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (files[i] && files[j] && strcmp(files[i], files[j]) == 0) {
                *ret_line = lines[j];
                return terr(err, errlen, "[target %s]: %s is named twice",
                            t->name, files[j]);
            }
    for (size_t i = 0; i < t->n_actions; i++)
        if (t->actions[i].type == DELIVER_ACTION_HAPROXY &&
            !t->actions[i].crt && !t->combined_file) {
            *ret_line = t->actions[i].line;
            return terr(err, errlen, "[target %s]: the haproxy action needs "
                        "combined-file (or crt=PATH): haproxy takes the "
                        "certificate and the key reference as one PEM",
                        t->name);
        }
    if (!t->action_timeout_s)
        t->action_timeout_s = 30;
    if (!t->verify_timeout_s)
        t->verify_timeout_s = 5;
    if (!t->verify_tries)
        t->verify_tries = 10;
    return 0;
}

void cfg_target_free(struct cfg_target *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->identity);
    free(t->chain_file);
    free(t->ref_file);
    free(t->combined_file);
    for (size_t i = 0; i < t->n_actions; i++)
        cfg_target_action_free(&t->actions[i]);
    free(t->actions);
    for (size_t i = 0; i < t->n_verify; i++)
        cfg_target_verify_free(&t->verify[i]);
    free(t->verify);
    *t = (struct cfg_target){ 0 };
}

void cfg_target_dump(const struct cfg_target *t, FILE *f)
{
    const char *files[3][2] = { { "chain-file", t->chain_file },
                                { "ref-file", t->ref_file },
                                { "combined-file", t->combined_file } };

    fprintf(f, "\n[target %s]\nidentity = %s\n", t->name, t->identity);
    for (int i = 0; i < 3; i++)
        if (files[i][1])
            fprintf(f, "%s = %s\n", files[i][0], files[i][1]);
    if (t->uid != (uid_t)-1)
        fprintf(f, "owner = %u\n", (unsigned)t->uid);
    if (t->gid != (gid_t)-1)
        fprintf(f, "group = %u\n", (unsigned)t->gid);
    fprintf(f, "mode = %04o\n", (unsigned)t->mode);
    for (size_t i = 0; i < t->n_actions; i++) {
        const struct cfg_target_action *a = &t->actions[i];

        switch (a->type) {
        case DELIVER_ACTION_SIGNAL:
            fprintf(f, "action = signal %s %s%s\n",
                    sigabbrev_np(a->signo) ? sigabbrev_np(a->signo) : "?",
                    a->pidfile,
                    a->pid_first_line ? " first-line" : "");
            break;
        case DELIVER_ACTION_EXEC:
            fprintf(f, "action = exec");
            for (size_t j = 0; j < a->n_argv; j++)
                fprintf(f, " %s", a->argv[j]);
            fputc('\n', f);
            break;
        case DELIVER_ACTION_SYSTEMD:
            fprintf(f, "action = systemd-reload %s\n", a->unit);
            break;
        case DELIVER_ACTION_HAPROXY:
            fprintf(f, "action = haproxy %s%s%s%s\n", a->socket,
                    a->crt ? " crt=" : "", a->crt ? a->crt : "",
                    a->master ? " master" : "");
            break;
        case DELIVER_ACTION_NONE:
            break;
        }
    }
    fprintf(f, "action-timeout = %llds\n", (long long)t->action_timeout_s);
    for (size_t i = 0; i < t->n_verify; i++)
        fprintf(f, "verify = %s\n", t->verify[i].text);
    fprintf(f, "verify-timeout = %llds\nverify-tries = %u\n",
            (long long)t->verify_timeout_s, t->verify_tries);
}

/* --- escalation --------------------------------------------------------- */

static int verify_tries(const struct target_ops *ops, void *ud, unsigned tries,
                        struct target_outcome *out)
{
    int r = -EINVAL;

    for (unsigned t = 0; t < tries; t++) {
        if (t > 0 && ops->pause)
            ops->pause(ud);
        r = ops->verify(ud, out->reason, sizeof(out->reason));
        if (r == 1)
            return 1;
    }
    out->verify_failures++;
    return r;
}

void target_escalate(const struct target_ops *ops, void *ud, size_t n_actions,
                     bool have_verify, unsigned tries,
                     struct target_outcome *out)
{
    *out = (struct target_outcome){ .result = TARGET_FAILED };
    if (tries == 0)
        tries = 1;
    if (n_actions == 0) {
        if (!have_verify || verify_tries(ops, ud, tries, out) == 1) {
            out->result = TARGET_SERVED;
            out->reason[0] = '\0';
        }
        return;
    }
    for (size_t i = 0; i < n_actions; i++) {
        int r;

        if (i > 0)
            out->escalations++;
        out->reason[0] = '\0';
        r = ops->act(ud, i, out->reason, sizeof(out->reason));
        if (r == 1) {
            out->result = TARGET_NOT_RUNNING;
            out->action = i;
            return;
        }
        if (r < 0) {
            out->action_failures++;
            continue;
        }
        if (!have_verify || verify_tries(ops, ud, tries, out) == 1) {
            out->result = TARGET_SERVED;
            out->action = i;
            out->reason[0] = '\0';
            return;
        }
    }
}
