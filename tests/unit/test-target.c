/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of delivery targets: the [target NAME] syntax (values,
 * defaults, and errors that name file:line), the escalation order with
 * fake actions and checks, haproxy runtime API replies, and the haproxy
 * action against a fake stats socket.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "config.h"
#include "cu-main.h"
#include "deliver.h"
#include "target.h"

static int fake_user(const char *name, uid_t *ret)
{
    if (strcmp(name, "postgres") == 0)
        *ret = 105;
    else if (strcmp(name, "haproxy") == 0)
        *ret = 102;
    else
        return -ENOENT;
    return 0;
}

static int fake_group(const char *name, gid_t *ret)
{
    if (strcmp(name, "haproxy") == 0)
        *ret = 106;
    else if (strcmp(name, "postgres") == 0)
        *ret = 107;
    else
        return -ENOENT;
    return 0;
}

static const struct cfg_resolver fake = { fake_user, fake_group };

#define ID_API                                                               \
    "[identity api]\n"                                                       \
    "names = api.internal.test\n"                                            \
    "ca-url = https://ca.internal.test:9443\n"                               \
    "ca-root = /etc/shortcert/root.crt\n"                                    \
    "chain-file = /etc/ssl/api.crt\n"                                        \
    "ref-file = /etc/ssl/api.ref\n"                                          \
    "allow-users = haproxy\n"

static struct cfg *parse(const char *text, char *err, size_t errlen)
{
    struct cfg *c = NULL;

    err[0] = '\0';
    if (cfg_parse_buffer("t.conf", text, strlen(text), &fake, &c, err,
                         errlen) < 0)
        return NULL;
    return c;
}

static void t_good(void)
{
    char err[CFG_ERR_MAX];
    struct cfg *c = parse(ID_API
                          "\n[target haproxy]\n"
                          "identity = api\n"
                          "combined-file = /etc/haproxy/certs/api.pem\n"
                          "group = haproxy\n"
                          "mode = 0640\n"
                          "action = haproxy /run/haproxy/admin.sock\n"
                          "action = systemd-reload haproxy.service\n"
                          "action = haproxy @hapm master crt=/etc/h.pem\n"
                          "verify = 127.0.0.1:8443 sni=api.internal.test\n"
                          "\n[target pg]\n"
                          "identity = api\n"
                          "chain-file = /etc/postgresql/api.crt\n"
                          "ref-file = /etc/postgresql/api.ref\n"
                          "owner = postgres\n"
                          "mode = 0600\n"
                          "action = signal HUP /var/lib/postgresql/15/main/postmaster.pid first-line\n"
                          "action = exec /usr/bin/pg_ctlcluster 15 main reload\n"
                          "action-timeout = 10s\n"
                          "verify = 127.0.0.1:5432 starttls=postgres\n"
                          "verify = [::1]:5432 starttls=postgres sni=db.test\n"
                          "verify-tries = 3\n",
                          err, sizeof(err));
    const struct cfg_target *t;

    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_FATAL(c != NULL);
    CU_ASSERT_EQUAL_FATAL(c->ids[0].n_targets, 2);
    t = &c->ids[0].targets[0];
    CU_ASSERT_STRING_EQUAL(t->name, "haproxy");
    CU_ASSERT_STRING_EQUAL(t->combined_file, "/etc/haproxy/certs/api.pem");
    CU_ASSERT_PTR_NULL(t->chain_file);
    CU_ASSERT_EQUAL(t->uid, (uid_t)-1);
    CU_ASSERT_EQUAL(t->gid, 106);
    CU_ASSERT_EQUAL(t->mode, 0640);
    CU_ASSERT_EQUAL_FATAL(t->n_actions, 3);
    CU_ASSERT_EQUAL(t->actions[2].type, DELIVER_ACTION_HAPROXY);
    CU_ASSERT_STRING_EQUAL(t->actions[2].socket, "@hapm");
    CU_ASSERT_STRING_EQUAL(t->actions[2].crt, "/etc/h.pem");
    CU_ASSERT(t->actions[2].master);
    CU_ASSERT(!t->actions[0].master);
    CU_ASSERT_EQUAL(t->actions[0].type, DELIVER_ACTION_HAPROXY);
    CU_ASSERT_STRING_EQUAL(t->actions[0].socket, "/run/haproxy/admin.sock");
    CU_ASSERT_PTR_NULL(t->actions[0].crt);
    CU_ASSERT_EQUAL(t->actions[1].type, DELIVER_ACTION_SYSTEMD);
    CU_ASSERT_STRING_EQUAL(t->actions[1].unit, "haproxy.service");
    CU_ASSERT_EQUAL_FATAL(t->n_verify, 1);
    CU_ASSERT_STRING_EQUAL(t->verify[0].host, "127.0.0.1");
    CU_ASSERT_EQUAL(t->verify[0].port, 8443);
    CU_ASSERT_STRING_EQUAL(t->verify[0].sni, "api.internal.test");
    CU_ASSERT_EQUAL(t->verify[0].starttls, DELIVER_STARTTLS_NONE);
    CU_ASSERT_EQUAL(t->action_timeout_s, 30);
    CU_ASSERT_EQUAL(t->verify_timeout_s, 5);
    CU_ASSERT_EQUAL(t->verify_tries, 10);

    t = &c->ids[0].targets[1];
    CU_ASSERT_STRING_EQUAL(t->name, "pg");
    CU_ASSERT_EQUAL(t->uid, 105);
    CU_ASSERT_EQUAL(t->mode, 0600);
    CU_ASSERT_EQUAL_FATAL(t->n_actions, 2);
    CU_ASSERT_EQUAL(t->actions[0].type, DELIVER_ACTION_SIGNAL);
    CU_ASSERT_EQUAL(t->actions[0].signo, 1);
    CU_ASSERT(t->actions[0].pid_first_line);
    CU_ASSERT_EQUAL(t->actions[1].type, DELIVER_ACTION_EXEC);
    CU_ASSERT_EQUAL_FATAL(t->actions[1].n_argv, 4);
    CU_ASSERT_STRING_EQUAL(t->actions[1].argv[0], "/usr/bin/pg_ctlcluster");
    CU_ASSERT_STRING_EQUAL(t->actions[1].argv[3], "reload");
    CU_ASSERT_PTR_NULL(t->actions[1].argv[4]);
    CU_ASSERT_EQUAL(t->action_timeout_s, 10);
    CU_ASSERT_EQUAL_FATAL(t->n_verify, 2);
    CU_ASSERT_EQUAL(t->verify[0].starttls, DELIVER_STARTTLS_POSTGRES);
    CU_ASSERT_PTR_NULL(t->verify[0].sni);
    CU_ASSERT_STRING_EQUAL(t->verify[1].host, "::1");
    CU_ASSERT_STRING_EQUAL(t->verify[1].sni, "db.test");
    CU_ASSERT_EQUAL(t->verify_tries, 3);
    cfg_free(c);
}

/* Each bad file gives its error at the right line. */
static void t_errors(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        { ID_API "[target x]\nidentity = nope\nchain-file = /a/b\n",
          "t.conf:9: [target x]: no [identity nope] in this file" },
        { ID_API "[target x]\nchain-file = /a/b\n",
          "t.conf:8: [target x]: missing required key 'identity'" },
        { ID_API "[target x]\nidentity = api\n",
          "t.conf:8: [target x]: nothing to deliver" },
        { ID_API "[target x]\nidentity = api\nfoo = bar\n",
          "t.conf:10: unknown key 'foo' in [target x]" },
        { ID_API "[target x]\nidentity = api\nidentity = api\n",
          "t.conf:10: duplicate key 'identity'" },
        { ID_API "[target x]\nidentity = api\naction = reboot now\n",
          "t.conf:10: action: unknown action 'reboot'" },
        { ID_API "[target x]\nidentity = api\naction = signal KILL /run/x.pid\n",
          "t.conf:10: action: invalid signal 'KILL'" },
        { ID_API "[target x]\nidentity = api\naction = signal HUP run/x.pid\n",
          "t.conf:10: action: the pidfile must be an absolute path" },
        { ID_API "[target x]\nidentity = api\naction = signal HUP /x.pid last-line\n",
          "t.conf:10: action: use 'signal SIGNAL PIDFILE [first-line]'" },
        { ID_API "[target x]\nidentity = api\naction = exec pg_ctl reload\n",
          "t.conf:10: action: use 'exec /ABSOLUTE/PROGRAM ARG...'" },
        { ID_API "[target x]\nidentity = api\naction = systemd-reload nginx\n",
          "t.conf:10: action: use 'systemd-reload UNIT'" },
        { ID_API "[target x]\nidentity = api\naction = systemd-reload a;b.service\n",
          "t.conf:10: action: use 'systemd-reload UNIT'" },
        { ID_API "[target x]\nidentity = api\nchain-file = /a/c\n"
                 "action = haproxy /run/h.sock\n",
          "t.conf:11: [target x]: the haproxy action needs combined-file" },
        { ID_API "[target x]\nidentity = api\ncombined-file = /a/c\n"
                 "action = haproxy /h.sock master master\n",
          "t.conf:11: action: use 'haproxy SOCKET [crt=PATH] [master]'" },
        { ID_API "[target x]\nidentity = api\naction = haproxy run/h.sock\n",
          "t.conf:10: action: the haproxy socket must be an absolute path" },
        { ID_API "[target x]\nidentity = api\nchain-file = /a/c\n"
                 "verify = localhost\n",
          "t.conf:11: verify: invalid endpoint 'localhost'" },
        { ID_API "[target x]\nidentity = api\nchain-file = /a/c\n"
                 "verify = 127.0.0.1:5432 starttls=mysql\n",
          "t.conf:11: verify: unknown or repeated option 'starttls=mysql'" },
        { ID_API "[target x]\nidentity = api\nchain-file = /a/c\n"
                 "verify = 127.0.0.1:5432 sni=1.2.3.4\n",
          "t.conf:11: verify: invalid sni '1.2.3.4'" },
        { ID_API "[target x]\nidentity = api\nchain-file = /a/c\n"
                 "owner = nobody-here\n",
          "t.conf:11: unknown user 'nobody-here'" },
        { ID_API "[target x]\nidentity = api\nchain-file = /a/c\nmode = 999\n",
          "t.conf:11: invalid mode '999'" },
        { ID_API "[target x]\nidentity = api\nchain-file = /a/c\n"
                 "ref-file = /a/c\n",
          "t.conf:11: [target x]: /a/c is named twice" },
        { ID_API "[target x]\nidentity = api\nchain-file = /a/\n",
          "t.conf:10: 'chain-file' must name a file" },
        { ID_API "[target x]\nidentity = api\nchain-file = /var/lib/shortcert/k\n",
          "t.conf:10: [target x]: /var/lib/shortcert/k is inside the state "
          "directory" },
        { ID_API "[target x]\nidentity = api\nchain-file = /etc/ssl/api.crt\n",
          "t.conf:10: [target x]: /etc/ssl/api.crt is also written by "
          "[identity api]" },
        { ID_API "[target x]\nidentity = api\nchain-file = /a/c\n"
                 "[target y]\nidentity = api\ncombined-file = /a/c\n",
          "t.conf:13: [target y]: /a/c is also written by [target x]" },
        { ID_API "[target x]\nidentity = api\nchain-file = /a/c\n"
                 "[target x]\nidentity = api\nchain-file = /a/d\n",
          "t.conf:11: target 'x' is defined twice (first at line 8)" },
        { ID_API "[target -x]\nidentity = api\n",
          "t.conf:8: invalid target name '-x'" },
        { ID_API "[target x]\nidentity = api\nchain-file = /a/c\n"
                 "verify-tries = 0\n",
          "t.conf:11: invalid number '0' for 'verify-tries'" },
        { ID_API "[target x]\nidentity = api\nchain-file = /a/c\n"
                 "action-timeout = 2d\n",
          "t.conf:11: invalid duration '2d' for 'action-timeout'" },
    };
    char err[CFG_ERR_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg *c = parse(cases[i].text, err, sizeof(err));

        CU_ASSERT_PTR_NULL(c);
        cfg_free(c);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
            fprintf(stderr, "\n  case %zu: got '%s'\n  want '%s'\n", i, err,
                    cases[i].want);
            CU_FAIL("wrong error");
        }
    }
}

/* The implicit first target keeps working without any [target]. */
static void t_no_targets(void)
{
    char err[CFG_ERR_MAX];
    struct cfg *c = parse(ID_API "reload-pidfile = /run/x.pid\n"
                                 "verify-endpoint = 127.0.0.1:443\n",
                          err, sizeof(err));

    CU_ASSERT_FATAL(c != NULL);
    CU_ASSERT_EQUAL(c->ids[0].n_targets, 0);
    CU_ASSERT_STRING_EQUAL(c->ids[0].reload_pidfile, "/run/x.pid");
    cfg_free(c);
}

/* --- escalation with fakes --- */

struct fake_run {
    int act_r[4];       /* what action i returns */
    int served_after;   /* verify says 1 once this action ran (-1: never) */
    int verify_err;     /* < 0: verify cannot connect */
    size_t acted[8];
    size_t n_acted;
    unsigned verifies, pauses;
    int last_action;
};

static int f_act(void *ud, size_t i, char *err, size_t errlen)
{
    struct fake_run *f = ud;

    f->acted[f->n_acted++] = i;
    f->last_action = (int)i;
    if (f->act_r[i] < 0)
        snprintf(err, errlen, "action %zu failed", i);
    return f->act_r[i];
}

static int f_verify(void *ud, char *err, size_t errlen)
{
    struct fake_run *f = ud;

    f->verifies++;
    if (f->verify_err)
        return snprintf(err, errlen, "cannot connect"), f->verify_err;
    if (f->served_after >= 0 && f->last_action >= f->served_after)
        return 1;
    snprintf(err, errlen, "serves serial OLD");
    return 0;
}

static void f_pause(void *ud)
{
    ((struct fake_run *)ud)->pauses++;
}

static const struct target_ops fops = { f_act, f_verify, f_pause };

static void t_escalate(void)
{
    struct target_outcome o;
    struct fake_run f;

    /* the first action works */
    f = (struct fake_run){ .served_after = 0, .last_action = -1 };
    target_escalate(&fops, &f, 2, true, 5, &o);
    CU_ASSERT_EQUAL(o.result, TARGET_SERVED);
    CU_ASSERT_EQUAL(o.action, 0);
    CU_ASSERT_EQUAL(f.n_acted, 1);
    CU_ASSERT_EQUAL(f.verifies, 1);
    CU_ASSERT_EQUAL(o.escalations, 0);

    /* the first leaves the old cert: escalate to the second */
    f = (struct fake_run){ .served_after = 1, .last_action = -1 };
    target_escalate(&fops, &f, 2, true, 3, &o);
    CU_ASSERT_EQUAL(o.result, TARGET_SERVED);
    CU_ASSERT_EQUAL(o.action, 1);
    CU_ASSERT_EQUAL(f.n_acted, 2);
    CU_ASSERT_EQUAL(f.verifies, 3 + 1);
    CU_ASSERT_EQUAL(f.pauses, 2);
    CU_ASSERT_EQUAL(o.verify_failures, 1);
    CU_ASSERT_EQUAL(o.escalations, 1);

    /* the first fails outright: escalate */
    f = (struct fake_run){ .act_r = { -EPROTO, 0 }, .served_after = 1,
                           .last_action = -1 };
    target_escalate(&fops, &f, 2, true, 3, &o);
    CU_ASSERT_EQUAL(o.result, TARGET_SERVED);
    CU_ASSERT_EQUAL(o.action_failures, 1);
    CU_ASSERT_EQUAL(o.verify_failures, 0);

    /* nothing helps: failed, with the last reason */
    f = (struct fake_run){ .act_r = { 0, -EPROTO }, .served_after = -1,
                           .last_action = -1 };
    target_escalate(&fops, &f, 2, true, 2, &o);
    CU_ASSERT_EQUAL(o.result, TARGET_FAILED);
    CU_ASSERT_EQUAL(o.verify_failures, 1);
    CU_ASSERT_EQUAL(o.action_failures, 1);
    CU_ASSERT_STRING_EQUAL(o.reason, "action 1 failed");
    f = (struct fake_run){ .served_after = -1, .last_action = -1 };
    target_escalate(&fops, &f, 1, true, 2, &o);
    CU_ASSERT_EQUAL(o.result, TARGET_FAILED);
    CU_ASSERT_STRING_EQUAL(o.reason, "serves serial OLD");
    f = (struct fake_run){ .served_after = 0, .verify_err = -ECONNREFUSED,
                           .last_action = -1 };
    target_escalate(&fops, &f, 1, true, 2, &o);
    CU_ASSERT_EQUAL(o.result, TARGET_FAILED);
    CU_ASSERT_STRING_EQUAL(o.reason, "cannot connect");

    /* the service is not running: stop, nothing to escalate */
    f = (struct fake_run){ .act_r = { 1, 0 }, .served_after = 0,
                           .last_action = -1 };
    target_escalate(&fops, &f, 2, true, 2, &o);
    CU_ASSERT_EQUAL(o.result, TARGET_NOT_RUNNING);
    CU_ASSERT_EQUAL(f.n_acted, 1);
    CU_ASSERT_EQUAL(f.verifies, 0);

    /* no verify: the first successful action is delivery */
    f = (struct fake_run){ .act_r = { -EIO, 0 }, .served_after = -1,
                           .last_action = -1 };
    target_escalate(&fops, &f, 2, false, 2, &o);
    CU_ASSERT_EQUAL(o.result, TARGET_SERVED);
    CU_ASSERT_EQUAL(o.action, 1);
    CU_ASSERT_EQUAL(f.verifies, 0);

    /* no action: verify only */
    f = (struct fake_run){ .served_after = -1, .last_action = 0 };
    target_escalate(&fops, &f, 0, true, 2, &o);
    CU_ASSERT_EQUAL(o.result, TARGET_FAILED);
    CU_ASSERT_EQUAL(f.n_acted, 0);
}

/* --- haproxy replies --- */

static int hp(enum deliver_haproxy_cmd c, const char *s, char *err, size_t n)
{
    return deliver_haproxy_parse_reply(c, s, strlen(s), err, n);
}

static void t_haproxy_replies(void)
{
    char err[256];

    CU_ASSERT_EQUAL(hp(DELIVER_HAPROXY_SET, "Transaction created for certificate "
                       "/etc/haproxy/api.pem!\n\n", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(hp(DELIVER_HAPROXY_SET, "Transaction updated for certificate "
                       "/etc/haproxy/api.pem!\n\n", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(hp(DELIVER_HAPROXY_COMMIT, "Committing /etc/haproxy/api.pem"
                       ".\nSuccess!\n\n", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(hp(DELIVER_HAPROXY_SET, "Can't replace a certificate which "
                       "is not referenced by the configuration!\n\n", err,
                       sizeof(err)), -EPROTO);
    CU_ASSERT_STRING_EQUAL(err, "haproxy refused: Can't replace a certificate "
                                "which is not referenced by the configuration!");
    CU_ASSERT_EQUAL(hp(DELIVER_HAPROXY_COMMIT, "Committing /x.pem\n"
                       "Error: The transaction must contain at least a "
                       "certificate and a private key!\n", err, sizeof(err)),
                    -EPROTO);
    CU_ASSERT(strstr(err, "must contain at least") != NULL);
    CU_ASSERT_EQUAL(hp(DELIVER_HAPROXY_COMMIT, "", err, sizeof(err)), -EPROTO);
    CU_ASSERT_STRING_EQUAL(err, "haproxy refused: (empty reply)");
    /* "Success!" alone, or mid-line, is not a commit */
    CU_ASSERT_EQUAL(hp(DELIVER_HAPROXY_COMMIT, "Success!\n", err, sizeof(err)),
                    -EPROTO);
    CU_ASSERT_EQUAL(hp(DELIVER_HAPROXY_SET, "Unknown command. Transaction "
                       "created for certificate\n", err, sizeof(err)), -EPROTO);
    /* permission denied at a lower level */
    CU_ASSERT_EQUAL(hp(DELIVER_HAPROXY_SET, "Permission denied\n\n", err,
                       sizeof(err)), -EPROTO);
    CU_ASSERT_STRING_EQUAL(err, "haproxy refused: Permission denied");
    /* control characters are not copied into the log */
    CU_ASSERT_EQUAL(hp(DELIVER_HAPROXY_SET, "bad\x1b[31mred\n", err,
                       sizeof(err)), -EPROTO);
    CU_ASSERT_STRING_EQUAL(err, "haproxy refused: bad?[31mred");

    CU_ASSERT_EQUAL(deliver_haproxy_check_payload("A\nB\n", 4), 0);
    CU_ASSERT_EQUAL(deliver_haproxy_check_payload("A\n\nB\n", 5), -EINVAL);
    CU_ASSERT_EQUAL(deliver_haproxy_check_payload("\nA\n", 3), -EINVAL);
    CU_ASSERT_EQUAL(deliver_haproxy_check_payload("A\n\r\nB", 5), -EINVAL);
    CU_ASSERT_EQUAL(deliver_haproxy_check_payload("", 0), -EINVAL);
    CU_ASSERT_EQUAL(deliver_check_unit_name("nginx.service"), 0);
    CU_ASSERT_EQUAL(deliver_check_unit_name("postgresql@15-main.service"), 0);
    CU_ASSERT_EQUAL(deliver_check_unit_name("nginx"), -EINVAL);
    CU_ASSERT_EQUAL(deliver_check_unit_name(".service"), -EINVAL);
    CU_ASSERT_EQUAL(deliver_check_unit_name("a b.service"), -EINVAL);
}

/* --- the haproxy action against a fake stats socket --- */

struct fake_hp {
    int lfd;
    char path[108];
    const char *set_reply, *commit_reply;
    char got[3][8192]; /* set, commit, abort */
    int n_cmds, expect; /* connections to serve */
    pthread_t th;
};

static void *hp_main(void *arg)
{
    struct fake_hp *h = arg;

    for (int i = 0; i < h->expect; i++) {
        struct pollfd p = { .fd = h->lfd, .events = POLLIN };
        size_t len = 0;
        ssize_t n;
        int fd;

        if (poll(&p, 1, 3000) <= 0)
            break;
        fd = accept(h->lfd, NULL, NULL);
        if (fd < 0)
            break;
        while (len < sizeof(h->got[i]) - 1 &&
               (n = read(fd, h->got[i] + len, sizeof(h->got[i]) - 1 - len)) > 0)
            len += (size_t)n;
        h->got[i][len] = '\0';
        h->n_cmds++;
        const char *c = h->got[i];

        if (strncmp(c, "@1 ", 3) == 0)
            c += 3;
        if (strncmp(c, "set ", 4) == 0)
            (void)!write(fd, h->set_reply, strlen(h->set_reply));
        else if (strncmp(c, "commit ", 7) == 0)
            (void)!write(fd, h->commit_reply, strlen(h->commit_reply));
        close(fd);
    }
    return NULL;
}

static void hp_start(struct fake_hp *h, int expect, const char *set_reply,
                     const char *commit_reply)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    memset(h, 0, sizeof(*h));
    h->expect = expect;
    snprintf(h->path, sizeof(h->path), "/tmp/sc-test-hp-%d.sock", (int)getpid());
    unlink(h->path);
    h->set_reply = set_reply;
    h->commit_reply = commit_reply;
    h->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(h->lfd >= 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h->path);
    CU_ASSERT_FATAL(bind(h->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CU_ASSERT_FATAL(listen(h->lfd, 4) == 0);
    CU_ASSERT_FATAL(pthread_create(&h->th, NULL, hp_main, h) == 0);
}

static void hp_stop(struct fake_hp *h)
{
    pthread_join(h->th, NULL);
    close(h->lfd);
    unlink(h->path);
}

static void t_haproxy_action(void)
{
    static const char payload[] = "-----BEGIN CERTIFICATE-----\nAAAA\n"
                                  "-----END CERTIFICATE-----\n"
                                  "-----BEGIN SHORTCERT KEY REFERENCE-----\n"
                                  "BBBB\n-----END SHORTCERT KEY REFERENCE-----\n";
    struct deliver_action a = {
        .type = DELIVER_ACTION_HAPROXY,
        .cert_path = "/etc/haproxy/api.pem",
        .payload = payload,
        .payload_len = sizeof(payload) - 1,
        .timeout_ms = 3000,
    };
    struct fake_hp h;
    char err[512];

    hp_start(&h, 2, "Transaction created for certificate /etc/haproxy/api.pem!\n\n",
             "Committing /etc/haproxy/api.pem.\nSuccess!\n\n");
    a.socket = h.path;
    CU_ASSERT_EQUAL(deliver_run_action(&a, err, sizeof(err)), 0);
    hp_stop(&h);
    CU_ASSERT_EQUAL(h.n_cmds, 2);
    CU_ASSERT_NSTRING_EQUAL(h.got[0], "set ssl cert /etc/haproxy/api.pem <<\n"
                                      "-----BEGIN CERTIFICATE-----\n", 65);
    /* the payload ends with exactly one empty line */
    CU_ASSERT(strlen(h.got[0]) > 2 &&
              strcmp(h.got[0] + strlen(h.got[0]) - 2, "\n\n") == 0 &&
              strstr(h.got[0], "\n\n") == h.got[0] + strlen(h.got[0]) - 2);
    CU_ASSERT_STRING_EQUAL(h.got[1], "commit ssl cert /etc/haproxy/api.pem\n");

    /* a refused commit is aborted, the reason reported */
    hp_start(&h, 3, "Transaction updated for certificate /etc/haproxy/api.pem!\n",
             "Committing /etc/haproxy/api.pem\nunable to load the private key\n");
    a.socket = h.path;
    CU_ASSERT_EQUAL(deliver_run_action(&a, err, sizeof(err)), -EPROTO);
    hp_stop(&h);
    CU_ASSERT_STRING_EQUAL(err, "haproxy refused: unable to load the private key");
    CU_ASSERT_EQUAL(h.n_cmds, 3);
    CU_ASSERT_STRING_EQUAL(h.got[2], "abort ssl cert /etc/haproxy/api.pem\n");

    /* through the master CLI: "@1 " before each command */
    hp_start(&h, 2, "Transaction created for certificate /etc/haproxy/api.pem!\n",
             "Committing /etc/haproxy/api.pem.\nSuccess!\n");
    a.socket = h.path;
    a.haproxy_master = true;
    CU_ASSERT_EQUAL(deliver_run_action(&a, err, sizeof(err)), 0);
    hp_stop(&h);
    CU_ASSERT_NSTRING_EQUAL(h.got[0], "@1 set ssl cert /etc/haproxy/api.pem <<\n",
                            40);
    CU_ASSERT_STRING_EQUAL(h.got[1], "@1 commit ssl cert /etc/haproxy/api.pem\n");
    a.haproxy_master = false;

    /* no socket */
    a.socket = "/nonexistent/admin.sock";
    CU_ASSERT_EQUAL(deliver_run_action(&a, err, sizeof(err)), -ENOENT);
    CU_ASSERT(strstr(err, "set ssl cert") != NULL);
    /* a payload with a blank line is refused before anything is sent */
    a.payload = "A\n\nB\n";
    a.payload_len = 5;
    CU_ASSERT_EQUAL(deliver_run_action(&a, err, sizeof(err)), -EINVAL);
}

int cu_register(void)
{
    static const struct cu_test cfg_tests[] = {
        { "good", t_good },
        { "errors", t_errors },
        { "no_targets", t_no_targets },
        { NULL, NULL },
    };
    static const struct cu_test run_tests[] = {
        { "escalate", t_escalate },
        { "haproxy_replies", t_haproxy_replies },
        { "haproxy_action", t_haproxy_action },
        { NULL, NULL },
    };

    if (cu_add_suite("target-config", cfg_tests) < 0 ||
        cu_add_suite("target-run", run_tests) < 0)
        return -1;
    return 0;
}
