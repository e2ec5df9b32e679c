/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the shortcertd.conf parser: a good file gives the expected
 * values and defaults, and each kind of bad input gives its own error that
 * names the right line.  A fake user database keeps the tests independent
 * of the machine's.
 */
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <CUnit/CUnit.h>

#include "config.h"
#include "cu-main.h"

static int fake_user(const char *name, uid_t *ret)
{
    if (strcmp(name, "www-data") == 0)
        *ret = 33;
    else if (strcmp(name, "postgres") == 0)
        *ret = 105;
    else if (strcmp(name, "root") == 0)
        *ret = 0;
    else
        return -ENOENT;
    return 0;
}

static int fake_group(const char *name, gid_t *ret)
{
    if (strcmp(name, "ssl-cert") == 0)
        *ret = 103;
    else if (strcmp(name, "www-data") == 0)
        *ret = 33;
    else
        return -ENOENT;
    return 0;
}

static const struct cfg_resolver fake = { fake_user, fake_group };

#define GOOD_ID                                                              \
    "[identity api]\n"                                                       \
    "names = api.internal.test, 127.0.0.1\n"                                 \
    "ca-url = https://ca.internal.test:9443\n"                               \
    "ca-root = /etc/shortcert/root.crt\n"                                    \
    "chain-file = /etc/ssl/api.crt\n"                                        \
    "ref-file = /etc/ssl/api.ref\n"                                          \
    "allow-users = www-data\n"

static struct cfg *parse_ok(const char *text)
{
    struct cfg *c = NULL;
    char err[CFG_ERR_MAX] = "";
    int r = cfg_parse_buffer("t.conf", text, strlen(text), &fake, &c, err,
                             sizeof(err));

    if (r != 0)
        fprintf(stderr, "unexpected error: %s\n", err);
    CU_ASSERT_EQUAL(r, 0);
    return c;
}

/* Parse text that must fail; the error must start with "t.conf:LINE: " and
 * contain want. */
static void parse_bad(const char *text, unsigned line, const char *want)
{
    struct cfg *c = NULL;
    char err[CFG_ERR_MAX] = "", prefix[32];
    int r = cfg_parse_buffer("t.conf", text, strlen(text), &fake, &c, err,
                             sizeof(err));

    CU_ASSERT_EQUAL(r, -EINVAL);
    CU_ASSERT_PTR_NULL(c);
    snprintf(prefix, sizeof(prefix), "t.conf:%u: ", line);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, want)) {
        fprintf(stderr, "\n  got  '%s'\n  want '%s...%s'\n", err, prefix, want);
        CU_FAIL("error message");
    }
    cfg_free(c);
}

static void t_good_file(void)
{
    struct cfg *c = parse_ok(
        "# comment\n"
        "[daemon]\n"
        "state-dir = /var/lib/sc\n"
        "abstract-socket = @shortcert\n"
        "socket-mode = 0660\n"
        "socket-group = ssl-cert\n"
        "log-level = debug\n"
        "\n" GOOD_ID
        "role = server\n"
        "lifetime = 2h\n"
        "chain-owner = postgres\n"
        "ref-mode = 0600\n"
        "ref-owner = 105\n"
        "allow-groups = ssl-cert, www-data\n"
        "names = WWW.Internal.test\n");
    const struct cfg_identity *id;
    char *dir;

    if (!c)
        return;
    CU_ASSERT_STRING_EQUAL(c->state_dir, "/var/lib/sc");
    CU_ASSERT_STRING_EQUAL(c->abstract_socket, "shortcert");
    CU_ASSERT_EQUAL(c->socket_mode, 0660);
    CU_ASSERT_EQUAL(c->socket_gid, 103);
    CU_ASSERT_EQUAL(c->log_level, LOG_DEBUG);
    CU_ASSERT_STRING_EQUAL(c->http01_listen, "[::]:80");
    CU_ASSERT_EQUAL(c->n_ids, 1);
    id = cfg_find_identity(c, "api", 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(id);
    CU_ASSERT_EQUAL(id->line, 9);
    CU_ASSERT_EQUAL(id->n_names, 3);
    CU_ASSERT_STRING_EQUAL(id->names[0], "api.internal.test");
    CU_ASSERT_STRING_EQUAL(id->names[1], "127.0.0.1");
    CU_ASSERT_STRING_EQUAL(id->names[2], "www.internal.test");
    CU_ASSERT_EQUAL(id->role, TLS_ROLE_SERVER);
    CU_ASSERT_EQUAL(id->lifetime_s, 7200);
    CU_ASSERT_EQUAL(id->chain.uid, 105);
    CU_ASSERT_EQUAL(id->chain.gid, (gid_t)-1);
    CU_ASSERT_EQUAL(id->chain.mode, 0644);
    CU_ASSERT_EQUAL(id->ref.uid, 105);
    CU_ASSERT_EQUAL(id->ref.mode, 0600);
    CU_ASSERT_EQUAL(id->n_allow_uids, 1);
    CU_ASSERT_EQUAL(id->allow_uids[0], 33);
    CU_ASSERT_EQUAL(id->n_allow_gids, 2);
    dir = cfg_acme_directory(id);
    CU_ASSERT_STRING_EQUAL(dir, "https://ca.internal.test:9443/acme/acme/directory");
    free(dir);
    CU_ASSERT_PTR_NULL(cfg_find_identity(c, "ap", 2));
    cfg_free(c);
}

static void t_defaults_section(void)
{
    struct cfg *c = parse_ok(
        "[defaults]\n"
        "ca-url = https://ca.internal.test:9443\n"
        "ca-root = /etc/shortcert/root.crt\n"
        "allow-users = www-data\n"
        "lifetime = 30m\n"
        "[identity a]\n"
        "names = a.test\n"
        "chain-file = /x/a.crt\n"
        "ref-file = /x/a.ref\n"
        "[identity b]\n"
        "names = b.test\n"
        "chain-file = /x/b.crt\n"
        "ref-file = /x/b.ref\n"
        "lifetime = 1h\n"
        "allow-users = postgres\n");

    if (!c)
        return;
    CU_ASSERT_EQUAL(c->n_ids, 2);
    CU_ASSERT_STRING_EQUAL(c->ids[0].ca_url, "https://ca.internal.test:9443");
    CU_ASSERT_EQUAL(c->ids[0].lifetime_s, 1800);
    CU_ASSERT_EQUAL(c->ids[1].lifetime_s, 3600);
    CU_ASSERT_EQUAL(c->ids[0].allow_uids[0], 33);
    CU_ASSERT_EQUAL(c->ids[1].n_allow_uids, 1);
    CU_ASSERT_EQUAL(c->ids[1].allow_uids[0], 105);
    CU_ASSERT_STRING_EQUAL(c->ids[1].acme_provisioner, "acme");
    cfg_free(c);
}

static void t_list_keys_repeat_and_continue(void)
{
    struct cfg *c = parse_ok(GOOD_ID "names = b.internal.test\n"
                                     "    c.internal.test, ::1\n");

    if (!c)
        return;
    CU_ASSERT_EQUAL(c->ids[0].n_names, 5);
    CU_ASSERT_STRING_EQUAL(c->ids[0].names[4], "::1");
    cfg_free(c);
}

static void t_errors(void)
{
    parse_bad("names = x\n", 1, "outside any section");
    parse_bad("[daemon]\nbogus = 1\n", 2, "unknown key 'bogus' in [daemon]");
    parse_bad("[server]\nx = 1\n", 1, "unknown section [server]");
    parse_bad("[identity bad/name]\nnames = a\n", 1, "invalid identity name");
    parse_bad(GOOD_ID GOOD_ID, 8, "identity 'api' is defined twice (first at line 1)");
    parse_bad(GOOD_ID "lifetime = 5x\n", 8, "invalid duration '5x'");
    parse_bad(GOOD_ID "lifetime = 5s\n", 1, "below the 10s minimum");
    parse_bad(GOOD_ID "role = admin\n", 8, "invalid role 'admin'");
    parse_bad(GOOD_ID "key-type = rsa-1024\n", 8, "unsupported key-type 'rsa-1024'");
    parse_bad(GOOD_ID "enroll = magic\n", 8, "unsupported enroll method 'magic'");
    parse_bad(GOOD_ID "ref-mode = 0999\n", 8, "invalid mode '0999'");
    parse_bad(GOOD_ID "ref-owner = nosuchuser\n", 8, "unknown user 'nosuchuser'");
    parse_bad(GOOD_ID "allow-groups = wheel\n", 8, "unknown group 'wheel'");
    parse_bad(GOOD_ID "ca-root = relative/root.crt\n", 8, "duplicate key 'ca-root'");
    parse_bad("[identity a]\nca-root = relative.crt\n", 2, "must be an absolute path");
    parse_bad("[identity a]\nca-url = http://ca:80\n", 2, "must be an https URL");
    parse_bad("[identity a]\nca-url = https://ca/path\n", 2, "must be an https URL");
    parse_bad("[identity a]\nnames = -bad.test\n", 2, "invalid name '-bad.test'");
    parse_bad("[identity a]\nnames = *.wild.test\n", 2, "invalid name '*.wild.test'");
    parse_bad("[identity a]\nnames = a.test, A.test\n", 2, "name 'a.test' is listed twice");
    parse_bad("[identity a]\nnames = ,\n", 2, "empty list for 'names'");
    parse_bad("[identity a]\nnames = a.test\n", 1, "missing required key 'ca-url'");
    parse_bad("[daemon]\nlog-level = loud\n", 2, "invalid log-level 'loud'");
    parse_bad("[daemon]\nmax-connections-per-uid = 0\n", 2, "invalid number '0'");
    parse_bad("[defaults]\nnames = a.test\n", 2, "belongs in an [identity NAME] section");
    parse_bad("[daemon]\nthis line has no equals sign\n", 2, "syntax error");
    parse_bad("[daemon\n", 1, "syntax error");
    parse_bad("[daemon]\n[daemon]\nlog-level = info\n", 1, "a section has no keys");
    parse_bad("[daemon]\nlog-level = info\n[daemon]\nlog-level = info\n", 3,
              "[daemon] appears twice");
}

static void t_errors_validation(void)
{
    const char *no_allow = "[identity api]\n"
                           "names = api.internal.test\n"
                           "ca-url = https://ca.internal.test:9443\n"
                           "ca-root = /r.crt\n"
                           "chain-file = /a.crt\n"
                           "ref-file = /a.ref\n";
    const char *same = "[identity api]\n"
                       "names = api.internal.test\n"
                       "ca-url = https://ca.internal.test:9443\n"
                       "ca-root = /r.crt\n"
                       "chain-file = /a.crt\n"
                       "ref-file = /a.crt\n"
                       "allow-users = root\n";
    const char *clash = GOOD_ID "[identity b]\n"
                                "names = b.test\n"
                                "ca-url = https://ca.internal.test:9443\n"
                                "ca-root = /r.crt\n"
                                "chain-file = /etc/ssl/api.ref\n"
                                "ref-file = /b.ref\n"
                                "allow-users = root\n";

    parse_bad(no_allow, 1, "neither allow-users nor allow-groups");
    parse_bad(same, 6, "chain-file and ref-file are the same file");
    parse_bad(clash, 12, "identities 'api' and 'b' both write /etc/ssl/api.ref");
}

static void t_paths(void)
{
    char out[64];
    struct cfg *c;
    char err[CFG_ERR_MAX];

    CU_ASSERT_EQUAL(cfg_normalize_path("/a//b/./c/../d", out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "/a/b/d");
    CU_ASSERT_EQUAL(cfg_normalize_path("/../x/", out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "/x");
    CU_ASSERT_EQUAL(cfg_normalize_path("x", out, sizeof(out)), -EINVAL);
    parse_bad("[identity a]\nchain-file = /etc/ssl/\n", 2, "'chain-file' must name a file");
    parse_bad("[identity a]\nref-file = /\n", 2, "'ref-file' must name a file");
    parse_bad("[identity a]\nref-file = /x/..\n", 2, "'ref-file' must name a file");
    parse_bad("[daemon]\nhttp01-listen = nope\n", 2, "invalid http01-listen 'nope'");
    parse_bad("[daemon]\nhttp01-listen = ::1:80\n", 2, "invalid http01-listen");
    parse_bad("[daemon]\nmetrics-listen = localhost:9464\n", 2,
              "invalid metrics-listen 'localhost:9464'");
    parse_bad("[daemon]\nmetrics-listen = 127.0.0.1\n", 2,
              "invalid metrics-listen");
    parse_bad("[daemon]\nmetrics-listen = ::1:9464\n", 2,
              "invalid metrics-listen");
    parse_bad("[daemon]\nmetrics-socket = relative.sock\n", 2,
              "metrics-socket");
    parse_bad("[daemon]\nca-health-interval = 0s\n", 2,
              "ca-health-interval must be at least 1s");
    {
        struct cfg *m = parse_ok("[daemon]\nmetrics-listen = [::1]:9464\n"
                                 "metrics-socket = /run/x/metrics.sock\n"
                                 "ca-health-interval = 5s\n" GOOD_ID);

        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_STRING_EQUAL(m->metrics_listen, "[::1]:9464");
        CU_ASSERT_STRING_EQUAL(m->metrics_socket, "/run/x/metrics.sock");
        CU_ASSERT_EQUAL(m->ca_health_interval_s, 5);
        cfg_free(m);
        m = parse_ok(GOOD_ID);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_PTR_NULL(m->metrics_listen);
        CU_ASSERT_EQUAL(m->ca_health_interval_s, 60);
        cfg_free(m);
    }
    /* one file spelled two ways */
    parse_bad(GOOD_ID "[identity b]\n"
                      "names = b.test\n"
                      "ca-url = https://ca.internal.test:9443\n"
                      "ca-root = /r.crt\n"
                      "chain-file = /etc/ssl/../ssl//api.crt\n"
                      "ref-file = /b.ref\n"
                      "allow-users = root\n",
              12, "identities 'api' and 'b' both write /etc/ssl/api.crt");
    parse_bad("[daemon]\nstate-dir = /etc/ssl\n" GOOD_ID, 7,
              "/etc/ssl/api.crt is inside the state directory /etc/ssl");
    parse_bad("[daemon]\nsocket = /etc/ssl/api.ref\n" GOOD_ID, 8,
              "/etc/ssl/api.ref is the signing socket");
    parse_bad("[daemon]\nadmin-socket = /etc/ssl/api.crt\n" GOOD_ID, 7,
              "[identity api]: /etc/ssl/api.crt is the admin socket");
    parse_bad("[daemon]\nsocket = /run/a.sock\nadmin-socket = /run/a.sock\n"
              GOOD_ID, 1, "socket and admin-socket are both /run/a.sock");
    parse_bad("[daemon]\nmetrics-socket = /run/shortcert/shortcert.sock\n"
              GOOD_ID, 1, "metrics-socket /run/shortcert/shortcert.sock is "
                          "also the signing socket");
    parse_bad(GOOD_ID "[identity b]\nnames = b.test\n"
                      "ca-url = https://ca.internal.test:9443\n"
                      "ca-root = /r.crt\nchain-file = /etc/shortcert/root.crt\n"
                      "ref-file = /b.ref\nallow-users = root\n",
              12, "[identity b]: /etc/shortcert/root.crt is the ca-root of "
                  "[identity api]");
    {
        static const char t[] = GOOD_ID "[target t]\nidentity = api\n"
                                        "combined-file = /etc/sc.conf\n";
        struct cfg *x = NULL;
        char e[CFG_ERR_MAX] = "";

        CU_ASSERT_EQUAL(cfg_parse_buffer("/etc/sc.conf", t, strlen(t), &fake,
                                         &x, e, sizeof(e)),
                        -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(e, "/etc/sc.conf:10: [target t]: "
                                         "/etc/sc.conf is this configuration "
                                         "file"));
        cfg_free(x);
    }
    /* files: a missing ca-root is reported with its line */
    c = parse_ok(GOOD_ID);
    if (c) {
        CU_ASSERT_EQUAL(cfg_check_files(c, err, sizeof(err)), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "t.conf:4: [identity api]: cannot read "
                                           "ca-root /etc/shortcert/root.crt"));
        cfg_free(c);
    }
}

static void t_long_line_and_nul(void)
{
    char text[600];
    char nul[] = "[daemon]\nlog-level = info\0x\n";
    struct cfg *c = NULL;
    char err[CFG_ERR_MAX];

    snprintf(text, sizeof(text), "[identity a]\nnames = %0250d\n", 1);
    parse_bad(text, 2, "line too long");
    CU_ASSERT_EQUAL(cfg_parse_buffer("t.conf", nul, sizeof(nul) - 1, &fake, &c,
                                     err, sizeof(err)),
                    -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "t.conf:2: contains a NUL byte"));
    /* exactly the limit passes, one more does not */
    {
        char line[CFG_LINE_MAX + 2];

        memset(line, ' ', sizeof(line));
        memcpy(line, "log-level = info", 16);
        line[CFG_LINE_MAX] = '\0';
        snprintf(text, sizeof(text), "[daemon]\n%s\n" GOOD_ID, line);
        c = parse_ok(text);
        CU_ASSERT_PTR_NOT_NULL(c);
        cfg_free(c);
        line[CFG_LINE_MAX] = ' ';
        line[CFG_LINE_MAX + 1] = '\0';
        snprintf(text, sizeof(text), "[daemon]\n%s\n" GOOD_ID, line);
        parse_bad(text, 2, "line too long (the limit is 198 characters");
    }
}

static char *dump_of(const struct cfg *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (!f)
        return NULL;
    cfg_dump(c, f);
    fclose(f);
    return buf;
}

/* --dump-config prints every setting: its output parses back to the same
 * configuration (the same dump again, apart from the header line). */
static void t_dump_round_trip(void)
{
    struct cfg *c = parse_ok(
        "[daemon]\nadmin-socket = /run/x/admin.sock\nadmin-group = ssl-cert\n"
        "renew-workers = 7\nmetrics-listen = 127.0.0.1:9464\n"
        "[identity api]\nnames = api.internal.test, 127.0.0.1\n"
        "ca-url = https://ca.internal.test:9443\n"
        "ca-root = /etc/shortcert/root.crt\nchain-file = /etc/ssl/api.crt\n"
        "ref-file = /etc/ssl/api.ref\nallow-users = www-data\n"
        "enroll = jwk\njwk-provisioner = ops\n"
        "jwk-password-file = /etc/shortcert/pw\nlifetime = 2h\n"
        "renew-at = 70%\nrenew-jitter = 2.5%\nretry-floor = 7s\n"
        "retry-max = 9m\nrotate-every = 3\nrotate-after = 30d\n"
        "rotate-grace = 10m\nreload-pidfile = /run/nginx.pid\n"
        "reload-signal = USR2\nverify-endpoint = 127.0.0.1:443\n"
        "verify-sni = api.internal.test\nverify-timeout = 4s\n"
        "revoke-on-remove = yes\n");
    struct cfg *c2 = NULL;
    char *d1, *d2, err[CFG_ERR_MAX] = "";

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    d1 = dump_of(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d1);
    {
        static const char *const want[] = {
            "admin-socket = /run/x/admin.sock\n", "renew-workers = 7\n",
            "enroll = jwk\n", "jwk-provisioner = ops\n",
            "jwk-password-file = /etc/shortcert/pw\n", "renew-at = 70.0%\n",
            "renew-jitter = 2.5%\n", "retry-floor = 7s\n",
            "retry-max = 540s\n", "rotate-every = 3\n",
            "rotate-grace = 600s\n", "reload-pidfile = /run/nginx.pid\n",
            "reload-signal = USR2\n", "verify-endpoint = 127.0.0.1:443\n",
            "verify-sni = api.internal.test\n", "verify-timeout = 4s\n",
            "revoke-on-remove = yes\n",
        };

        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
            if (!strstr(d1, want[i])) {
                CU_FAIL("a setting is missing from the dump");
                fprintf(stderr, "missing: %s", want[i]);
            }
    }
    CU_ASSERT_EQUAL(cfg_parse_buffer("dump.conf", d1, strlen(d1), &fake, &c2,
                                     err, sizeof(err)),
                    0);
    if (!c2)
        fprintf(stderr, "dump does not parse: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    d2 = dump_of(c2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d2);
    CU_ASSERT_STRING_EQUAL(strchr(d1, '\n'), strchr(d2, '\n'));
    free(d1);
    free(d2);
    cfg_free(c);
    cfg_free(c2);
}

/* '#' after a blank is a comment and never part of a value; a byte order
 * mark before the first line is ignored. */
static void t_inline_comments_and_bom(void)
{
    struct cfg *c = parse_ok("\xEF\xBB\xBF[identity api]   # the API\n"
                             "names = api.internal.test  # public name\n"
                             "ca-url = https://ca.internal.test:9443\n"
                             "ca-root = /etc/shortcert/root.crt\t# root\n"
                             "chain-file = /etc/ssl/api.crt\n"
                             "ref-file = /etc/ssl/api.ref ; also a comment\n"
                             "allow-users = www-data\n"
                             "reload-argv = /usr/sbin/nginx    # no shell\n"
                             "reload-argv = -s\nreload-argv = reload\n");

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->n_ids, 1);
    CU_ASSERT_STRING_EQUAL(c->ids[0].name, "api");
    CU_ASSERT_EQUAL(c->ids[0].n_names, 1);
    CU_ASSERT_STRING_EQUAL(c->ids[0].names[0], "api.internal.test");
    CU_ASSERT_STRING_EQUAL(c->ids[0].ca_root, "/etc/shortcert/root.crt");
    CU_ASSERT_STRING_EQUAL(c->ids[0].ref.path, "/etc/ssl/api.ref");
    CU_ASSERT_EQUAL(c->ids[0].n_reload_argv, 3);
    CU_ASSERT_STRING_EQUAL(c->ids[0].reload_argv[0], "/usr/sbin/nginx");
    cfg_free(c);
    parse_bad(GOOD_ID "verify-sni = ../../etc\n", 8, "invalid verify-sni '../../etc'");
    parse_bad(GOOD_ID "verify-sni = 127.0.0.1\n", 8, "invalid verify-sni");
    /* the program named with its arguments on one line */
    parse_bad(GOOD_ID "reload-argv = /usr/sbin/nginx -s reload\n", 8,
              "the program '/usr/sbin/nginx -s reload' has a blank in its name");
    /* '#' inside a word is content */
    c = parse_ok(GOOD_ID "reload-argv = /usr/bin/x#y\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->ids[0].reload_argv[0], "/usr/bin/x#y");
    cfg_free(c);
}

/* libinih cuts section names short; ours must not be. */
static void t_long_identity_names(void)
{
    char text[1024];
    const char *n64 =
        "a123456789012345678901234567890123456789012345678901234567890123";
    struct cfg *c;

    snprintf(text, sizeof(text),
             "[identity %s]\n" "names = a.test\n"
             "ca-url = https://ca.test\nca-root = /r\nchain-file = /a.crt\n"
             "ref-file = /a.ref\nallow-users = root\n"
             "[identity %.60sXXXX]\n" "names = b.test\n"
             "ca-url = https://ca.test\nca-root = /r\nchain-file = /b.crt\n"
             "ref-file = /b.ref\nallow-users = root\n",
             n64, n64);
    c = parse_ok(text);
    if (!c)
        return;
    CU_ASSERT_EQUAL(c->n_ids, 2);
    CU_ASSERT_STRING_EQUAL(c->ids[0].name, n64);
    CU_ASSERT_EQUAL(strlen(c->ids[1].name), 64);
    cfg_free(c);
    snprintf(text, sizeof(text), "[identity %sx]\nnames = a\n", n64);
    parse_bad(text, 1, "invalid identity name");
    snprintf(text, sizeof(text), "[identity %s%s]\nnames = a\n", n64, n64);
    parse_bad(text, 1, "section name too long");
}

static void t_empty_file_ok(void)
{
    struct cfg *c = parse_ok("# nothing configured yet\n");

    if (!c)
        return;
    CU_ASSERT_EQUAL(c->n_ids, 0);
    CU_ASSERT_STRING_EQUAL(c->socket_path, "/run/shortcert/shortcert.sock");
    cfg_free(c);
}

static void t_value_parsers(void)
{
    int64_t d;
    mode_t m;

    CU_ASSERT_EQUAL(cfg_parse_duration("90", &d), 0);
    CU_ASSERT_EQUAL(d, 90);
    CU_ASSERT_EQUAL(cfg_parse_duration("7d", &d), 0);
    CU_ASSERT_EQUAL(d, 7 * 86400);
    CU_ASSERT_EQUAL(cfg_parse_duration("", &d), -EINVAL);
    CU_ASSERT_EQUAL(cfg_parse_duration("-5m", &d), -EINVAL);
    CU_ASSERT_EQUAL(cfg_parse_duration("5mm", &d), -EINVAL);
    CU_ASSERT_EQUAL(cfg_parse_duration("99999999999999999999s", &d), -EINVAL);
    CU_ASSERT_EQUAL(cfg_parse_mode("640", &m), 0);
    CU_ASSERT_EQUAL(m, 0640);
    CU_ASSERT_EQUAL(cfg_parse_mode("8", &m), -EINVAL);
    CU_ASSERT_EQUAL(cfg_parse_mode("01777", &m), -EINVAL);
    CU_ASSERT_TRUE(cfg_name_valid("a-b.example"));
    CU_ASSERT_FALSE(cfg_name_valid("a..b"));
    CU_ASSERT_FALSE(cfg_name_valid("a.b-"));
    CU_ASSERT_FALSE(cfg_name_valid("1.2.3.4"));
    CU_ASSERT_TRUE(cfg_name_is_ip("1.2.3.4"));
    CU_ASSERT_TRUE(cfg_name_is_ip("fe80::1"));
    CU_ASSERT_FALSE(cfg_name_is_ip("1.2.3"));
}

/* key-type: every supported spelling; allowed-key-types: a policy that a
 * key-type (set, inherited or the default) must fit, else an error at the
 * line that set it. */
static void t_key_types(void)
{
    static const struct {
        const char *name;
        enum cfg_key_type type;
    } ok[] = {
        { "ec-p256", CFG_KEY_EC_P256 },   { "ec-p384", CFG_KEY_EC_P384 },
        { "rsa-2048", CFG_KEY_RSA_2048 }, { "rsa-3072", CFG_KEY_RSA_3072 },
        { "ed25519", CFG_KEY_ED25519 },
    };
    struct cfg *c;
    char text[1024];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(text, sizeof(text), GOOD_ID "key-type = %s\n", ok[i].name);
        c = parse_ok(text);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_EQUAL(c->ids[0].key_type, ok[i].type);
        CU_ASSERT_EQUAL(c->ids[0].allowed_key_types, CFG_KEY_ALL);
        CU_ASSERT_STRING_EQUAL(cfg_key_type_str(ok[i].type), ok[i].name);
        cfg_free(c);
    }
    /* The default is ec-p256, allowed by default. */
    c = parse_ok(GOOD_ID);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->ids[0].key_type, CFG_KEY_EC_P256);
    cfg_free(c);

    c = parse_ok(GOOD_ID "key-type = rsa-3072\n"
                         "allowed-key-types = ec-p256 ec-p384, rsa-3072\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->ids[0].allowed_key_types,
                    CFG_KEY_BIT(CFG_KEY_EC_P256) | CFG_KEY_BIT(CFG_KEY_EC_P384) |
                        CFG_KEY_BIT(CFG_KEY_RSA_3072));
    cfg_free(c);

    /* A policy in [defaults] applies to every identity and names its own
     * line when the identity's key-type falls outside it. */
    c = parse_ok("[defaults]\nallowed-key-types = ed25519 ec-p384\n"
                 "key-type = ed25519\n" GOOD_ID);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->ids[0].key_type, CFG_KEY_ED25519);
    cfg_free(c);
    parse_bad("[defaults]\nallowed-key-types = ed25519\n" GOOD_ID
              "key-type = rsa-2048\n",
              10, "[identity api]: key-type rsa-2048 is not in allowed-key-types");
    parse_bad("[defaults]\nallowed-key-types = ed25519\n" GOOD_ID, 2,
              "key-type ec-p256 (the default) is not in allowed-key-types");
    parse_bad("[defaults]\nkey-type = ec-p384\n" GOOD_ID
              "allowed-key-types = rsa-3072\n",
              2, "key-type ec-p384 is not in allowed-key-types");

    /* Short RSA is not a type at all; unknown names are named. */
    parse_bad(GOOD_ID "key-type = rsa-1024\n", 8,
              "unsupported key-type 'rsa-1024': RSA keys shorter than 2048 "
              "bits are never allowed");
    parse_bad(GOOD_ID "key-type = ec-p521\n", 8,
              "unsupported key-type 'ec-p521': supported are ec-p256");
    parse_bad(GOOD_ID "key-type = rsa-x\n", 8,
              "unsupported key-type 'rsa-x': supported are ec-p256");
    parse_bad(GOOD_ID "key-type = rsa-4096\n", 8,
              "unsupported key-type 'rsa-4096': supported are ec-p256");
    parse_bad(GOOD_ID "allowed-key-types = ec-p256 rsa-1024\n", 8,
              "unsupported key type 'rsa-1024' in 'allowed-key-types': RSA");
    parse_bad(GOOD_ID "allowed-key-types = ,\n", 8,
              "empty list for 'allowed-key-types'");
    parse_bad(GOOD_ID "key-type = ed25519\nkey-type = ed25519\n", 9,
              "duplicate key 'key-type'");
    {
        enum cfg_key_type t = CFG_KEY_MAX;

        CU_ASSERT_EQUAL(cfg_key_type_from_string("EC-P256", &t), -EINVAL);
        CU_ASSERT_EQUAL(cfg_key_type_from_string("rsa", &t), -EINVAL);
        CU_ASSERT_EQUAL(t, CFG_KEY_MAX); /* untouched on failure */
        CU_ASSERT_PTR_NULL(cfg_key_type_str(CFG_KEY_MAX));
        CU_ASSERT_PTR_NULL(cfg_key_type_str(0));
    }
}

/* Reload: what changed between two configurations. */
#define RELOAD_DAEMON                                                        \
    "[daemon]\nstate-dir = /var/lib/shortcert\nretire-after = 5m\n"
#define RELOAD_ID(name, extra)                                               \
    "[identity " name "]\nnames = " name ".test\n"                            \
    "ca-url = https://ca.internal.test:9443\n"                               \
    "ca-root = /etc/shortcert/root.crt\n"                                    \
    "chain-file = /etc/ssl/" name ".crt\nref-file = /etc/ssl/" name ".ref\n" \
    "allow-users = www-data\n" extra

static void t_reload_diff(void)
{
    struct cfg *a = parse_ok(RELOAD_DAEMON RELOAD_ID("a", "") RELOAD_ID("b", "")
                                 RELOAD_ID("d", "lifetime = 1h\n")
                                 RELOAD_ID("e", "")
                                 "[target e-t]\nidentity = e\n"
                                 "chain-file = /etc/ssl/e2.crt\n");
    /* a removed; b unchanged but moved; c added; d and e changed (d's
     * lifetime, e's target's file); f has only a comment more */
    struct cfg *b = parse_ok(RELOAD_DAEMON "# new\n" RELOAD_ID("c", "")
                                 RELOAD_ID("d", "lifetime = 2h\n")
                                 RELOAD_ID("b", "")
                                 RELOAD_ID("e", "")
                                 "[target e-t]\nidentity = e\n"
                                 "chain-file = /etc/ssl/e3.crt\n");
    enum cfg_change what[8] = { 0 };
    bool removed[8] = { false };
    char err[CFG_ERR_MAX] = "";

    CU_ASSERT_EQUAL(a->retire_after_s, 300);
    CU_ASSERT_FALSE(a->ids[0].revoke_on_remove);
    CU_ASSERT_EQUAL_FATAL(cfg_diff(a, b, what, removed, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(what[0], CFG_ADDED);   /* c */
    CU_ASSERT_EQUAL(what[1], CFG_CHANGED); /* d */
    CU_ASSERT_EQUAL(what[2], CFG_SAME);    /* b */
    CU_ASSERT_EQUAL(what[3], CFG_CHANGED); /* e: its [target] */
    CU_ASSERT_TRUE(removed[0]);            /* a */
    CU_ASSERT_FALSE(removed[1]);
    CU_ASSERT_FALSE(removed[2]);
    CU_ASSERT_FALSE(removed[3]);
    /* equal to itself, not to another identity */
    CU_ASSERT_TRUE(cfg_identity_equal(&a->ids[1], &b->ids[2]));
    CU_ASSERT_FALSE(cfg_identity_equal(&a->ids[0], &a->ids[1]));
    cfg_free(a);
    cfg_free(b);

    /* an allow list, a revoke-on-remove from [defaults] are changes too */
    a = parse_ok(RELOAD_DAEMON RELOAD_ID("a", ""));
    b = parse_ok(RELOAD_DAEMON "[defaults]\nrevoke-on-remove = yes\n"
                     RELOAD_ID("a", ""));
    CU_ASSERT_TRUE(b->ids[0].revoke_on_remove);
    CU_ASSERT_EQUAL(cfg_diff(a, b, what, removed, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(what[0], CFG_CHANGED);
    cfg_free(b);
    b = parse_ok(RELOAD_DAEMON RELOAD_ID("a", "allow-groups = ssl-cert\n"));
    CU_ASSERT_EQUAL(cfg_diff(a, b, what, removed, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(what[0], CFG_CHANGED);
    cfg_free(b);

    /* a daemon setting that cannot change at run time is named */
    b = parse_ok("[daemon]\nstate-dir = /var/lib/other\n" RELOAD_ID("a", ""));
    CU_ASSERT_EQUAL(cfg_diff(a, b, what, removed, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "state-dir changed"));
    cfg_free(b);
    b = parse_ok(RELOAD_DAEMON "socket = /run/x.sock\n" RELOAD_ID("a", ""));
    CU_ASSERT_EQUAL(cfg_diff(a, b, what, removed, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "[daemon] socket changed"));
    cfg_free(b);
    /* ... and one that can (log-level, retire-after) is not refused */
    b = parse_ok("[daemon]\nstate-dir = /var/lib/shortcert\nretire-after = 1m\n"
                 "log-level = debug\n" RELOAD_ID("a", ""));
    CU_ASSERT_EQUAL(cfg_diff(a, b, what, removed, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(what[0], CFG_SAME);
    cfg_free(b);
    cfg_free(a);

    parse_bad(RELOAD_DAEMON RELOAD_ID("a", "revoke-on-remove = maybe\n"), 11,
              "invalid value 'maybe' for 'revoke-on-remove': expected yes or no");
    parse_bad("[daemon]\nretire-after = soon\n", 2,
              "invalid duration 'soon' for 'retire-after'");
}

int cu_register(void)
{
    static const struct cu_test tests[] = {
        { "good file", t_good_file },
        { "defaults section", t_defaults_section },
        { "list keys repeat and continue", t_list_keys_repeat_and_continue },
        { "each bad input has its own error", t_errors },
        { "cross-key validation errors", t_errors_validation },
        { "paths: normalised, files, places", t_paths },
        { "long line and NUL byte", t_long_line_and_nul },
        { "inline comments and a byte order mark", t_inline_comments_and_bom },
        { "--dump-config round trip", t_dump_round_trip },
        { "long identity names are not cut short", t_long_identity_names },
        { "empty file", t_empty_file_ok },
        { "value parsers", t_value_parsers },
        { "key-type and allowed-key-types", t_key_types },
        { "reload: added, removed, changed, unchanged", t_reload_diff },
        { NULL, NULL },
    };

    return cu_add_suite("config", tests);
}
