/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Delivery targets: a [target NAME] section of shortcertd.conf says where
 * one service gets an identity's public material (chain file, key
 * reference file, combined PEM for haproxy), with which owner, group and
 * mode, how the service is made to load it (one or more actions, tried in
 * order: the next one only when the endpoints still serve the old
 * certificate after the previous one) and which endpoints prove it
 * (host:port, SNI, STARTTLS).  See docs/shortcertd.conf.md.
 *
 * The per-identity keys chain-file, ref-file, reload-... and verify-... stay the
 * identity's implicit first target.
 */
#ifndef SHORTCERT_TARGET_H
#define SHORTCERT_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "deliver.h"

#define TARGET_ACTIONS_MAX 8
#define TARGET_VERIFY_MAX 16
#define TARGET_ARGV_MAX 64

struct cfg_resolver;

struct cfg_target_action {
    enum deliver_action_type type;
    unsigned line;
    /* SIGNAL */
    int signo;
    char *pidfile;
    bool pid_first_line;
    /* EXEC */
    char **argv; /* NULL-terminated */
    size_t n_argv;
    /* SYSTEMD */
    char *unit;
    /* HAPROXY */
    char *socket;
    char *crt; /* NULL: the target's combined-file */
    bool master; /* the socket is haproxy's master CLI */
};

struct cfg_target_verify {
    char *text; /* as written, for messages */
    char host[256];
    unsigned port;
    char *sni;  /* NULL: the identity's first DNS name */
    enum deliver_starttls starttls;
    unsigned line;
};

struct cfg_target {
    char *name;
    char *identity;
    unsigned line;          /* of the section header */
    unsigned identity_line;
    char *chain_file, *ref_file, *combined_file;
    unsigned chain_line, ref_line, combined_line;
    uid_t uid;  /* (uid_t)-1: root */
    gid_t gid;  /* (gid_t)-1: root */
    mode_t mode;
    struct cfg_target_action *actions;
    size_t n_actions;
    struct cfg_target_verify *verify;
    size_t n_verify;
    int64_t action_timeout_s;
    int64_t verify_timeout_s;
    unsigned verify_tries;
    uint32_t set; /* keys seen (bit per key) */
};

/* Start a target named name (header at line).  0, -EINVAL (bad name, in
 * err) or -ENOMEM. */
int cfg_target_init(struct cfg_target *t, const char *name, unsigned line,
                    char *err, size_t errlen);

/* One "key = value" line of a [target] section.  0, -EINVAL with what is
 * wrong in err (no file:line: the caller adds it), or -ENOMEM. */
int cfg_target_set(struct cfg_target *t, const char *key, const char *value,
                   unsigned line, const struct cfg_resolver *res, char *err,
                   size_t errlen);

/* After the section: defaults and the checks that need the whole section.
 * On -EINVAL, *ret_line says which line is at fault. */
int cfg_target_finish(struct cfg_target *t, unsigned *ret_line, char *err,
                      size_t errlen);

void cfg_target_free(struct cfg_target *t);

/* Print the section as shortcertd understood it (--dump-config). */
void cfg_target_dump(const struct cfg_target *t, FILE *f);

/* Parse one action value ("signal HUP /run/x.pid [first-line]", "exec
 * /abs/prog arg...", "systemd-reload unit.service", "haproxy SOCKET
 * [crt=PATH] [master]") or one verify value ("HOST:PORT [sni=NAME]
 * [starttls=postgres]").  Exposed for the unit tests and the fuzz target. */
int cfg_target_parse_action(const char *value, struct cfg_target_action *a,
                            char *err, size_t errlen);
int cfg_target_parse_verify(const char *value, struct cfg_target_verify *v,
                            char *err, size_t errlen);
void cfg_target_action_free(struct cfg_target_action *a);
void cfg_target_verify_free(struct cfg_target_verify *v);

/* ---- escalation: the order of actions and checks, without I/O ---- */

struct target_ops {
    /* Run action i.  0 done, 1 the service is not running (nothing to
     * load into: it reads the files when it starts), -errno failed. */
    int (*act)(void *ud, size_t i, char *err, size_t errlen);
    /* Check every endpoint once.  1 all serve the new certificate, 0 one
     * serves another, -errno one cannot be checked. */
    int (*verify)(void *ud, char *err, size_t errlen);
    /* Between verification attempts (a reloading service takes a moment). */
    void (*pause)(void *ud);
};

enum target_result {
    TARGET_SERVED = 1,      /* verified, or done and nothing to verify */
    TARGET_NOT_RUNNING = 2, /* an action found no running service */
    TARGET_FAILED = -1,     /* every action failed or left the old cert */
};

struct target_outcome {
    enum target_result result;
    size_t action;          /* the action that succeeded (SERVED) */
    unsigned action_failures;
    unsigned verify_failures;
    unsigned escalations;   /* actions tried after the first */
    char reason[512];       /* FAILED: why the last action did not help */
};

/* Files are in place: run the actions in order until the endpoints serve
 * the new certificate (tries verification attempts after each).  With no
 * action, only verify. */
void target_escalate(const struct target_ops *ops, void *ud, size_t n_actions,
                     bool have_verify, unsigned tries,
                     struct target_outcome *out);

#endif
