/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shortcertd.conf parser (see config.h and docs/shortcertd.conf.md).
 *
 * libinih does the INI syntax; we feed it through our own line reader so
 * that we know the line number of every key and of every section header
 * (Debian's libinih passes neither), reject over-long lines instead of
 * letting libinih split them into two, and reject NUL bytes.  One table
 * (cfg_keys) says where each key may appear, how its value is parsed and
 * where it is stored.  The first error wins and is reported as
 * "path:line: message"; a configuration with any error is discarded whole.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <unistd.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ini.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"
#include "metrics-server.h"
#include "build-config.h"
#include "deliver.h"
#include "http01.h"
#include "ipc-proto.h"
#include "log.h"
#include "macro.h"

enum sec_kind {
    SEC_NONE = 0,
    SEC_DAEMON = 1 << 0,
    SEC_DEFAULTS = 1 << 1,
    SEC_IDENTITY = 1 << 2,
    SEC_TARGET = 1 << 3,
};

enum val_type {
    V_PATH,
    V_URL,
    V_STRING,
    V_NAMES,
    V_ROLE,
    V_KEYTYPE,
    V_KEYTYPES, /* a set of key types */
    V_ENROLL,
    V_DURATION,
    V_MODE,
    V_USER,
    V_GROUP,
    V_USERS,
    V_GROUPS,
    V_LOGLEVEL,
    V_UINT,
    V_UINT0,    /* 0 allowed */
    V_SOCKNAME,
    V_PERCENT,  /* "66%" or "66.7%", stored per mille */
    V_SIGNAL,   /* HUP, SIGHUP, USR1, ... */
    V_ARGV,     /* one argument per line, in order */
    V_ENDPOINTS,/* host:port list */
    V_BOOL,     /* yes/no, true/false, on/off, 1/0 */
};

#define K_LIST 0x1     /* may be repeated; values accumulate */
#define K_NODEFAULT 0x2 /* not allowed in [defaults] */

struct cfg_key {
    const char *name;
    enum val_type type;
    unsigned sections;
    unsigned flags;
    size_t off; /* in struct cfg for SEC_DAEMON, else struct cfg_identity */
};

#define ID(f) offsetof(struct cfg_identity, f)
#define DM(f) offsetof(struct cfg, f)
#define IDSEC (SEC_IDENTITY | SEC_DEFAULTS)

static const struct cfg_key cfg_keys[] = {
    { "state-dir", V_PATH, SEC_DAEMON, 0, DM(state_dir) },
    { "socket", V_PATH, SEC_DAEMON, 0, DM(socket_path) },
    { "abstract-socket", V_SOCKNAME, SEC_DAEMON, 0, DM(abstract_socket) },
    { "socket-mode", V_MODE, SEC_DAEMON, 0, DM(socket_mode) },
    { "socket-group", V_GROUP, SEC_DAEMON, 0, DM(socket_gid) },
    { "http01-listen", V_STRING, SEC_DAEMON, 0, DM(http01_listen) },
    { "log-level", V_LOGLEVEL, SEC_DAEMON, 0, DM(log_level) },
    { "max-connections-per-uid", V_UINT, SEC_DAEMON, 0, DM(max_conns_per_uid) },
    { "admin-socket", V_PATH, SEC_DAEMON, 0, DM(admin_socket) },
    { "admin-group", V_GROUP, SEC_DAEMON, 0, DM(admin_gid) },
    { "renew-workers", V_UINT, SEC_DAEMON, 0, DM(renew_workers) },
    { "metrics-listen", V_STRING, SEC_DAEMON, 0, DM(metrics_listen) },
    { "metrics-socket", V_PATH, SEC_DAEMON, 0, DM(metrics_socket) },
    { "ca-health-interval", V_DURATION, SEC_DAEMON, 0, DM(ca_health_interval_s) },
    { "retire-after", V_DURATION, SEC_DAEMON, 0, DM(retire_after_s) },

    { "names", V_NAMES, IDSEC, K_LIST | K_NODEFAULT, ID(names) },
    { "role", V_ROLE, IDSEC, 0, ID(role) },
    { "key-type", V_KEYTYPE, IDSEC, 0, ID(key_type) },
    { "allowed-key-types", V_KEYTYPES, IDSEC, 0, ID(allowed_key_types) },
    { "enroll", V_ENROLL, IDSEC, 0, ID(enroll) },
    { "ca-url", V_URL, IDSEC, 0, ID(ca_url) },
    { "ca-root", V_PATH, IDSEC, 0, ID(ca_root) },
    { "acme-provisioner", V_STRING, IDSEC, 0, ID(acme_provisioner) },
    { "lifetime", V_DURATION, IDSEC, 0, ID(lifetime_s) },
    { "chain-file", V_PATH, IDSEC, K_NODEFAULT, ID(chain.path) },
    { "chain-owner", V_USER, IDSEC, 0, ID(chain.uid) },
    { "chain-group", V_GROUP, IDSEC, 0, ID(chain.gid) },
    { "chain-mode", V_MODE, IDSEC, 0, ID(chain.mode) },
    { "ref-file", V_PATH, IDSEC, K_NODEFAULT, ID(ref.path) },
    { "ref-owner", V_USER, IDSEC, 0, ID(ref.uid) },
    { "ref-group", V_GROUP, IDSEC, 0, ID(ref.gid) },
    { "ref-mode", V_MODE, IDSEC, 0, ID(ref.mode) },
    { "allow-users", V_USERS, IDSEC, K_LIST, ID(allow_uids) },
    { "allow-groups", V_GROUPS, IDSEC, K_LIST, ID(allow_gids) },
    { "jwk-provisioner", V_STRING, IDSEC, 0, ID(jwk_provisioner) },
    { "jwk-password-file", V_PATH, IDSEC, 0, ID(jwk_password_file) },
    { "jwk-password-credential", V_STRING, IDSEC, 0, ID(jwk_password_credential) },
    { "jwk-key-file", V_PATH, IDSEC, 0, ID(jwk_key_file) },
    { "renew-at", V_PERCENT, IDSEC, 0, ID(renew_at_pm) },
    { "renew-jitter", V_PERCENT, IDSEC, 0, ID(renew_jitter_pm) },
    { "retry-floor", V_DURATION, IDSEC, 0, ID(retry_floor_s) },
    { "retry-max", V_DURATION, IDSEC, 0, ID(retry_max_s) },
    { "rotate-every", V_UINT0, IDSEC, 0, ID(rotate_every) },
    { "rotate-after", V_DURATION, IDSEC, 0, ID(rotate_after_s) },
    { "rotate-grace", V_DURATION, IDSEC, 0, ID(rotate_grace_s) },
    { "reload-pidfile", V_PATH, IDSEC, K_NODEFAULT, ID(reload_pidfile) },
    { "reload-signal", V_SIGNAL, IDSEC, 0, ID(reload_signal) },
    { "reload-argv", V_ARGV, IDSEC, K_LIST | K_NODEFAULT, ID(reload_argv) },
    { "reload-timeout", V_DURATION, IDSEC, 0, ID(reload_timeout_s) },
    { "verify-endpoint", V_ENDPOINTS, IDSEC, K_LIST | K_NODEFAULT, ID(verify_endpoints) },
    { "verify-sni", V_STRING, IDSEC, K_NODEFAULT, ID(verify_sni) },
    { "verify-timeout", V_DURATION, IDSEC, 0, ID(verify_timeout_s) },
    { "revoke-on-remove", V_BOOL, IDSEC, 0, ID(revoke_on_remove) },
};

#define N_KEYS ELEMENTSOF(cfg_keys)
_Static_assert(N_KEYS <= 64, "key set bitmask is 64 bits");

/* An identity under construction, with the keys it set (bit = key index). */
struct pid_entry {
    struct cfg_identity id;
    uint64_t set;
};

struct pstate {
    const char *path;
    const struct cfg_resolver *res;
    /* reader */
    const char *text;
    size_t len, off;
    unsigned line;         /* line most recently handed to libinih */
    unsigned header_line;  /* line of the most recent "[...]" */
    unsigned pending_header; /* a header no key has claimed yet */
    char header_text[128];   /* the most recent header's name, untruncated */
    bool header_too_long;
    unsigned empty_header;   /* first header followed by no key */
    unsigned reader_err_line;
    const char *reader_err;
    /* handler */
    unsigned cur_header_line;
    enum sec_kind kind;
    struct pid_entry *cur; /* identity or defaults being filled */
    uint64_t daemon_set;
    struct pid_entry defaults;
    struct pid_entry *ids;
    size_t n_ids;
    struct cfg_target *targets;
    size_t n_targets;
    struct cfg *cfg;
    /* first error */
    unsigned err_line;
    char err[CFG_ERR_MAX];
};

__attribute__((format(printf, 3, 4))) static int perr(struct pstate *ps,
                                                      unsigned line,
                                                      const char *fmt, ...)
{
    va_list ap;

    if (ps->err_line != 0)
        return 0; /* keep the first error */
    ps->err_line = line ? line : 1;
    va_start(ap, fmt);
    (void)vsnprintf(ps->err, sizeof(ps->err), fmt, ap);
    va_end(ap);
    return 0;
}

/* --- the line reader --------------------------------------------------- */

static char *reader(char *str, int num, void *stream)
{
    struct pstate *ps = stream;
    const char *start, *nl;
    size_t n, take;

    if (ps->reader_err || ps->off >= ps->len)
        return NULL;
    start = ps->text + ps->off;
    nl = memchr(start, '\n', ps->len - ps->off);
    n = nl ? (size_t)(nl - start) + 1 : ps->len - ps->off;
    ps->line++;
    if (memchr(start, '\0', n)) {
        ps->reader_err = "contains a NUL byte";
        ps->reader_err_line = ps->line;
        return NULL;
    }
    take = n;
    if (take > 0 && start[take - 1] == '\n')
        take--;
    if (take > 0 && start[take - 1] == '\r')
        take--;
    ps->off += n;
    /* a UTF-8 byte order mark before the first line is not content */
    if (ps->line == 1 && take >= 3 && memcmp(start, "\xEF\xBB\xBF", 3) == 0) {
        start += 3;
        take -= 3;
    }
    /* '#' or ';' after a blank starts a comment (libinih knows only ';'):
     * cut it here, so that it can never become part of a value */
    for (size_t i = 1; i < take; i++)
        if (start[i] == '#' && (start[i - 1] == ' ' || start[i - 1] == '\t')) {
            take = i;
            break;
        }
    _Static_assert(CFG_LINE_MAX == 198, "the message below names the limit");
    if (num <= 1 || take + 2 > (size_t)num || take > CFG_LINE_MAX) {
        ps->reader_err = "line too long (the limit is 198 characters; list "
                         "keys such as names may be repeated)";
        ps->reader_err_line = ps->line;
        return NULL;
    }
    memcpy(str, start, take);
    str[take] = '\n';
    str[take + 1] = '\0';
    for (const char *p = start; p < start + take; p++) {
        if (*p == ' ' || *p == '\t')
            continue;
        if (*p == '[') {
            /* Keep the name as written: libinih cuts section names short
             * (MAX_SECTION), which would silently rename identities. */
            const char *q = p + 1, *end = memchr(q, ']', (size_t)(start + take - q));
            size_t hn;

            if (ps->pending_header && !ps->empty_header)
                ps->empty_header = ps->pending_header;
            ps->header_line = ps->line;
            ps->pending_header = ps->line;
            ps->header_text[0] = '\0';
            if (end) {
                while (q < end && (*q == ' ' || *q == '\t'))
                    q++;
                while (end > q && (end[-1] == ' ' || end[-1] == '\t'))
                    end--;
                hn = (size_t)(end - q);
                if (hn < sizeof(ps->header_text)) {
                    memcpy(ps->header_text, q, hn);
                    ps->header_text[hn] = '\0';
                } else {
                    ps->header_too_long = true;
                }
            }
        }
        break;
    }
    return str;
}

/* --- value parsers ----------------------------------------------------- */

int cfg_parse_duration(const char *s, int64_t *ret_s)
{
    int64_t mult = 1, v = 0;
    const char *p = s;

    if (!*p || !isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (INT64_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (*p) {
        switch (*p) {
        case 's':
            mult = 1;
            break;
        case 'm':
            mult = 60;
            break;
        case 'h':
            mult = 3600;
            break;
        case 'd':
            mult = 86400;
            break;
        default:
            return -EINVAL;
        }
        if (p[1] != '\0')
            return -EINVAL;
    }
    if (v > INT32_MAX / mult) /* well under a century; keeps sums safe */
        return -EINVAL;
    *ret_s = v * mult;
    return 0;
}

int cfg_parse_mode(const char *s, mode_t *ret)
{
    unsigned v = 0;

    if (!*s || strlen(s) > 4)
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '7')
            return -EINVAL;
        v = v * 8 + (unsigned)(*p - '0');
    }
    if (v > 0777)
        return -EINVAL;
    *ret = (mode_t)v;
    return 0;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
    unsigned long v = 0;

    if (!*s)
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        if (v > (max - (unsigned long)(*p - '0')) / 10)
            return -ERANGE;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    *ret = v;
    return 0;
}

bool cfg_name_is_ip(const char *s)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A DNS host name: LDH labels of 1..63, 253 in all, no leading/trailing
 * hyphen.  Wildcards are refused: http-01 cannot validate them. */
bool cfg_name_valid(const char *s)
{
    size_t len = strlen(s), label = 0;
    bool alpha = false;

    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char ch = s[i];

        if (ch == '.' || ch == '\0') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!(isalnum((unsigned char)ch) || ch == '-'))
            return false;
        if (ch == '-' && label == 0)
            return false;
        if (isalpha((unsigned char)ch))
            alpha = true;
        if (++label > 63)
            return false;
    }
    return alpha; /* all-numeric would read as an IP address */
}

static int system_user(const char *name, uid_t *ret)
{
    struct passwd pw, *r = NULL;
    char buf[4096];

    if (getpwnam_r(name, &pw, buf, sizeof(buf), &r) != 0 || !r)
        return -ENOENT;
    *ret = r->pw_uid;
    return 0;
}

static int system_group(const char *name, gid_t *ret)
{
    struct group gr, *r = NULL;
    char buf[8192];

    if (getgrnam_r(name, &gr, buf, sizeof(buf), &r) != 0 || !r)
        return -ENOENT;
    *ret = r->gr_gid;
    return 0;
}

const struct cfg_resolver cfg_system_resolver = {
    .user = system_user,
    .group = system_group,
};

/* Numeric ids are taken as they are; names go through the resolver. */
static int resolve_id(struct pstate *ps, const char *s, bool group,
                      unsigned *ret)
{
    unsigned long v;

    if (isdigit((unsigned char)s[0])) {
        if (parse_uint(s, 0xfffffffeUL, &v) < 0)
            return -EINVAL;
        *ret = (unsigned)v;
        return 0;
    }
    if (group) {
        gid_t g;

        if (ps->res->group(s, &g) < 0)
            return -ENOENT;
        *ret = g;
    } else {
        uid_t u;

        if (ps->res->user(s, &u) < 0)
            return -ENOENT;
        *ret = u;
    }
    return 0;
}

/* Split a list on commas and blanks; calls fn for each item.  */
static int for_each_item(struct pstate *ps, const char *key, const char *value,
                         int (*fn)(struct pstate *, const char *, void *),
                         void *ud)
{
    char *copy = strdup(value), *save = NULL;
    int r = 0, n = 0;

    if (!copy)
        return -ENOMEM;
    for (char *tok = strtok_r(copy, ", \t", &save); tok;
         tok = strtok_r(NULL, ", \t", &save)) {
        n++;
        r = fn(ps, tok, ud);
        if (r < 0)
            break;
    }
    free(copy);
    if (r == 0 && n == 0)
        return perr(ps, ps->line, "empty list for '%s'", key), -EINVAL;
    return r;
}

static int add_name(struct pstate *ps, const char *item, void *ud)
{
    struct cfg_identity *id = ud;
    char **nv, *n;

    if (id->n_names >= CFG_NAMES_MAX)
        return perr(ps, ps->line, "too many names (the limit is %d)",
                    CFG_NAMES_MAX), -EINVAL;
    if (!cfg_name_is_ip(item) && !cfg_name_valid(item))
        return perr(ps, ps->line,
                    "invalid name '%s': expected a DNS host name (letters, "
                    "digits, hyphens, dots; no wildcard) or an IP address",
                    item), -EINVAL;
    n = strdup(item);
    if (!n)
        return -ENOMEM;
    if (!cfg_name_is_ip(n))
        for (char *p = n; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    for (size_t i = 0; i < id->n_names; i++)
        if (strcmp(id->names[i], n) == 0) {
            perr(ps, ps->line, "name '%s' is listed twice", n);
            free(n);
            return -EINVAL;
        }
    nv = realloc(id->names, (id->n_names + 1) * sizeof(*nv));
    if (!nv) {
        free(n);
        return -ENOMEM;
    }
    nv[id->n_names++] = n;
    id->names = nv;
    return 0;
}

struct idlist {
    unsigned **v;
    size_t *n;
    bool group;
    const char *key;
};

static int add_id(struct pstate *ps, const char *item, void *ud)
{
    struct idlist *l = ud;
    unsigned v, *nv;

    if (resolve_id(ps, item, l->group, &v) < 0)
        return perr(ps, ps->line, "unknown %s '%s' in '%s'",
                    l->group ? "group" : "user", item, l->key), -EINVAL;
    for (size_t i = 0; i < *l->n; i++)
        if ((*l->v)[i] == v)
            return 0; /* the same id twice is harmless */
    if (*l->n >= CFG_ALLOW_MAX)
        return perr(ps, ps->line, "too many entries in '%s' (the limit is %d)",
                    l->key, CFG_ALLOW_MAX), -EINVAL;
    nv = realloc(*l->v, (*l->n + 1) * sizeof(*nv));
    if (!nv)
        return -ENOMEM;
    nv[(*l->n)++] = v;
    *l->v = nv;
    return 0;
}

static int set_string(char **dst, const char *value)
{
    char *s = strdup(value);

    if (!s)
        return -ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

int cfg_parse_percent(const char *s, unsigned *ret_pm)
{
    unsigned whole = 0, tenth = 0;
    const char *p = s;

    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        whole = whole * 10 + (unsigned)(*p - '0');
        if (whole > 100)
            return -EINVAL;
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        tenth = (unsigned)(*p++ - '0');
    }
    if (*p != '%' || p[1] != '\0')
        return -EINVAL;
    if (whole * 10 + tenth > 1000)
        return -EINVAL;
    *ret_pm = whole * 10 + tenth;
    return 0;
}

int cfg_parse_signal(const char *s)
{
    static const struct {
        const char *name;
        int sig;
    } t[] = { { "HUP", SIGHUP },   { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
              { "TERM", SIGTERM }, { "INT", SIGINT },   { "QUIT", SIGQUIT },
              { "WINCH", SIGWINCH } };

    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < ELEMENTSOF(t); i++)
        if (strcmp(s, t[i].name) == 0)
            return t[i].sig;
    return -EINVAL;
}

int cfg_normalize_path(const char *in, char *out, size_t n)
{
    size_t len = 0;
    const char *p = in;

    if (in[0] != '/' || n < 2)
        return -EINVAL;
    out[len++] = '/';
    while (*p) {
        const char *seg;
        size_t sl;

        while (*p == '/')
            p++;
        seg = p;
        while (*p && *p != '/')
            p++;
        sl = (size_t)(p - seg);
        if (sl == 0 || (sl == 1 && seg[0] == '.'))
            continue;
        if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
            /* lexically up one level (symlinks are not resolved) */
            while (len > 1 && out[len - 1] != '/')
                len--;
            if (len > 1)
                len--;
            continue;
        }
        if (len > 1)
            out[len++] = '/';
        if (len + sl + 1 > n)
            return -ENAMETOOLONG;
        memcpy(out + len, seg, sl);
        len += sl;
        if (len + 1 >= n)
            return -ENAMETOOLONG;
    }
    out[len] = '\0';
    return 0;
}

/* --- key types ---------------------------------------------------------- */

static const char *const key_type_names[CFG_KEY_MAX] = {
    [CFG_KEY_EC_P256] = "ec-p256",   [CFG_KEY_EC_P384] = "ec-p384",
    [CFG_KEY_RSA_2048] = "rsa-2048", [CFG_KEY_RSA_3072] = "rsa-3072",
    [CFG_KEY_ED25519] = "ed25519",
};

#define KEY_TYPES_SUPPORTED                                                  \
    "supported are ec-p256, ec-p384, rsa-2048, rsa-3072 and ed25519"

const char *cfg_key_type_str(enum cfg_key_type t)
{
    return t > 0 && t < CFG_KEY_MAX ? key_type_names[t] : NULL;
}

int cfg_key_type_from_string(const char *s, enum cfg_key_type *ret)
{
    for (int t = 1; t < CFG_KEY_MAX; t++)
        if (strcmp(s, key_type_names[t]) == 0) {
            *ret = (enum cfg_key_type)t;
            return 0;
        }
    return -EINVAL;
}

/* Why a key type is not accepted, when there is more to say: "rsa-N"
 * with N below 2048. */
static const char *key_type_hint(const char *s)
{
    unsigned long bits;

    if (strncmp(s, "rsa-", 4) == 0 && parse_uint(s + 4, 1000000, &bits) == 0 &&
        bits < 2048)
        return "RSA keys shorter than 2048 bits are never allowed; ";
    return "";
}

static int add_key_type(struct pstate *ps, const char *item, void *ud)
{
    unsigned *set = ud;
    enum cfg_key_type t;

    if (cfg_key_type_from_string(item, &t) < 0)
        return perr(ps, ps->line,
                    "unsupported key type '%s' in 'allowed-key-types': "
                    "%s" KEY_TYPES_SUPPORTED,
                    item, key_type_hint(item)), -EINVAL;
    *set |= CFG_KEY_BIT(t);
    return 0;
}

/* Keys whose path must name a file (not end in '/', not be '/'). */
static bool names_a_file(const struct cfg_key *k)
{
    return strcmp(k->name, "chain-file") == 0 ||
           strcmp(k->name, "ref-file") == 0 || strcmp(k->name, "ca-root") == 0 ||
           strcmp(k->name, "socket") == 0;
}

static int parse_value(struct pstate *ps, const struct cfg_key *k, void *base,
                       const char *value)
{
    void *dst = (char *)base + k->off;
    unsigned long ul;
    unsigned idv;
    int64_t d;
    mode_t m;
    int lvl;

    switch (k->type) {
    case V_PATH: {
        char norm[PATH_MAX];
        size_t vl = strlen(value);

        if (value[0] != '/' || vl >= PATH_MAX ||
            cfg_normalize_path(value, norm, sizeof(norm)) < 0)
            return perr(ps, ps->line, "'%s' must be an absolute path, got '%s'",
                        k->name, value), -EINVAL;
        if (names_a_file(k) &&
            (value[vl - 1] == '/' || strcmp(norm, "/") == 0 ||
             (vl >= 2 && strcmp(value + vl - 2, "/.") == 0) ||
             (vl >= 3 && strcmp(value + vl - 3, "/..") == 0)))
            return perr(ps, ps->line, "'%s' must name a file, got '%s'",
                        k->name, value), -EINVAL;
        /* Stored normalised, so that one file spelled two ways is seen to
         * be one file. */
        return set_string(dst, norm);
    }
    case V_URL: {
        size_t n = strlen(value);

        if (strncmp(value, "https://", 8) != 0 || n <= 8 || n > 2000 ||
            strpbrk(value, " \t\"'<>\\") || strchr(value + 8, '/') ||
            value[8] == ':')
            return perr(ps, ps->line,
                        "'%s' must be an https URL with a host and optional "
                        "port and no path, such as https://ca.example:9000, "
                        "got '%s'",
                        k->name, value), -EINVAL;
        return set_string(dst, value);
    }
    case V_STRING:
        if (!*value || strlen(value) > 255)
            return perr(ps, ps->line, "'%s' must be 1 to 255 characters",
                        k->name), -EINVAL;
        if (strcmp(k->name, "http01-listen") == 0 &&
            http01_check_listen(value) < 0)
            return perr(ps, ps->line,
                        "invalid http01-listen '%s': expected ADDRESS:PORT "
                        "such as 0.0.0.0:80 or [::]:80",
                        value), -EINVAL;
        if (strcmp(k->name, "verify-sni") == 0 &&
            (!cfg_name_valid(value) || cfg_name_is_ip(value)))
            return perr(ps, ps->line,
                        "invalid verify-sni '%s': a DNS name such as "
                        "api.internal.test",
                        value), -EINVAL;
        if (strcmp(k->name, "metrics-listen") == 0) {
            struct sockaddr_storage ss;
            socklen_t sl;

            if (metrics_parse_listen(value, &ss, &sl) < 0)
                return perr(ps, ps->line,
                            "invalid metrics-listen '%s': expected an IP "
                            "address and a port such as 127.0.0.1:9464 or "
                            "[::1]:9464",
                            value), -EINVAL;
        }
        return set_string(dst, value);
    case V_SOCKNAME:
        if (value[0] == '@')
            value++;
        if (!*value || strlen(value) > 100)
            return perr(ps, ps->line,
                        "'%s' must be a name of 1 to 100 characters",
                        k->name), -EINVAL;
        return set_string(dst, value);
    case V_NAMES:
        return for_each_item(ps, k->name, value, add_name, base);
    case V_ROLE:
        if (strcmp(value, "server") == 0)
            *(enum tls_role *)dst = TLS_ROLE_SERVER;
        else if (strcmp(value, "client") == 0)
            *(enum tls_role *)dst = TLS_ROLE_CLIENT;
        else
            return perr(ps, ps->line,
                        "invalid role '%s': expected server or client", value),
                   -EINVAL;
        return 0;
    case V_KEYTYPE: {
        enum cfg_key_type t;

        if (cfg_key_type_from_string(value, &t) < 0)
            return perr(ps, ps->line,
                        "unsupported key-type '%s': %s" KEY_TYPES_SUPPORTED,
                        value, key_type_hint(value)), -EINVAL;
        *(enum cfg_key_type *)dst = t;
        return 0;
    }
    case V_KEYTYPES:
        *(unsigned *)dst = 0; /* the list replaces, never adds to, a set */
        return for_each_item(ps, k->name, value, add_key_type, dst);
    case V_BOOL:
        if (!strcmp(value, "yes") || !strcmp(value, "true") ||
            !strcmp(value, "on") || !strcmp(value, "1"))
            *(bool *)dst = true;
        else if (!strcmp(value, "no") || !strcmp(value, "false") ||
                 !strcmp(value, "off") || !strcmp(value, "0"))
            *(bool *)dst = false;
        else
            return perr(ps, ps->line,
                        "invalid value '%s' for '%s': expected yes or no",
                        value, k->name), -EINVAL;
        return 0;
    case V_ENROLL:
        if (strcmp(value, "acme") == 0)
            *(enum cfg_enroll *)dst = CFG_ENROLL_ACME;
        else if (strcmp(value, "jwk") == 0)
            *(enum cfg_enroll *)dst = CFG_ENROLL_JWK;
        else
            return perr(ps, ps->line,
                        "unsupported enroll method '%s': expected acme or jwk",
                        value), -EINVAL;
        return 0;
    case V_DURATION:
        if (cfg_parse_duration(value, &d) < 0)
            return perr(ps, ps->line,
                        "invalid duration '%s' for '%s': use a whole number "
                        "with s, m, h or d, such as 24h",
                        value, k->name), -EINVAL;
        if (d < 1 && strcmp(k->name, "ca-health-interval") == 0)
            return perr(ps, ps->line,
                        "ca-health-interval must be at least 1s"), -EINVAL;
        *(int64_t *)dst = d;
        return 0;
    case V_MODE:
        if (cfg_parse_mode(value, &m) < 0)
            return perr(ps, ps->line,
                        "invalid mode '%s' for '%s': use octal such as 0640",
                        value, k->name), -EINVAL;
        *(mode_t *)dst = m;
        return 0;
    case V_USER:
    case V_GROUP:
        if (resolve_id(ps, value, k->type == V_GROUP, &idv) < 0)
            return perr(ps, ps->line, "unknown %s '%s' for '%s'",
                        k->type == V_GROUP ? "group" : "user", value, k->name),
                   -EINVAL;
        if (k->type == V_GROUP)
            *(gid_t *)dst = idv;
        else
            *(uid_t *)dst = idv;
        return 0;
    case V_USERS:
    case V_GROUPS: {
        struct cfg_identity *id = base;
        struct idlist l = {
            .group = k->type == V_GROUPS,
            .key = k->name,
            .v = k->type == V_GROUPS ? (unsigned **)&id->allow_gids
                                     : (unsigned **)&id->allow_uids,
            .n = k->type == V_GROUPS ? &id->n_allow_gids : &id->n_allow_uids,
        };

        _Static_assert(sizeof(uid_t) == sizeof(unsigned) &&
                           sizeof(gid_t) == sizeof(unsigned),
                       "uid_t and gid_t are unsigned int");
        return for_each_item(ps, k->name, value, add_id, &l);
    }
    case V_LOGLEVEL:
        lvl = hlp_log_level_from_string(value);
        if (lvl < 0)
            return perr(ps, ps->line,
                        "invalid log-level '%s': expected debug, info, notice, "
                        "warning or error",
                        value), -EINVAL;
        *(int *)dst = lvl;
        return 0;
    case V_UINT:
    case V_UINT0:
        if (parse_uint(value, 1000000, &ul) < 0 || (ul == 0 && k->type == V_UINT))
            return perr(ps, ps->line,
                        "invalid number '%s' for '%s': expected %d to 1000000",
                        value, k->name, k->type == V_UINT ? 1 : 0), -EINVAL;
        *(unsigned *)dst = (unsigned)ul;
        return 0;
    case V_PERCENT: {
        unsigned pm;

        if (cfg_parse_percent(value, &pm) < 0)
            return perr(ps, ps->line,
                        "invalid share '%s' for '%s': use a percentage such as "
                        "66%% or 2.5%%",
                        value, k->name), -EINVAL;
        *(unsigned *)dst = pm;
        return 0;
    }
    case V_SIGNAL: {
        int sig = cfg_parse_signal(value);

        if (sig < 0)
            return perr(ps, ps->line,
                        "invalid signal '%s' for '%s': use HUP, USR1, USR2, "
                        "TERM, INT, QUIT or WINCH",
                        value, k->name), -EINVAL;
        *(int *)dst = sig;
        return 0;
    }
    case V_ARGV: {
        struct cfg_identity *id = base;
        char **nv;

        if (id->n_reload_argv == 0 && value[0] != '/')
            return perr(ps, ps->line,
                        "'%s': the first argument must be an absolute path (no "
                        "shell, no PATH search), got '%s'",
                        k->name, value), -EINVAL;
        if (id->n_reload_argv == 0 && strpbrk(value, " \t"))
            return perr(ps, ps->line,
                        "'%s': the program '%s' has a blank in its name: "
                        "give each argument on its own '%s' line (no "
                        "splitting at blanks)",
                        k->name, value, k->name), -EINVAL;
        if (id->n_reload_argv >= 64)
            return perr(ps, ps->line, "'%s': too many arguments (64 at most)",
                        k->name), -EINVAL;
        nv = realloc(id->reload_argv, (id->n_reload_argv + 2) * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        id->reload_argv = nv;
        nv[id->n_reload_argv] = strdup(value);
        if (!nv[id->n_reload_argv])
            return -ENOMEM;
        nv[++id->n_reload_argv] = NULL;
        return 0;
    }
    case V_ENDPOINTS: {
        struct cfg_identity *id = base;
        char host[256], **nv;
        unsigned port;

        if (deliver_parse_endpoint(value, host, sizeof(host), &port) < 0)
            return perr(ps, ps->line,
                        "invalid endpoint '%s' for '%s': use HOST:PORT or "
                        "[IPv6]:PORT",
                        value, k->name), -EINVAL;
        if (id->n_verify_endpoints >= 16)
            return perr(ps, ps->line, "'%s': 16 endpoints at most", k->name),
                   -EINVAL;
        nv = realloc(id->verify_endpoints,
                     (id->n_verify_endpoints + 1) * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        id->verify_endpoints = nv;
        nv[id->n_verify_endpoints] = strdup(value);
        if (!nv[id->n_verify_endpoints])
            return -ENOMEM;
        id->n_verify_endpoints++;
        return 0;
    }
    }
    return -EINVAL;
}

/* --- sections and the handler ------------------------------------------ */

static void identity_free(struct cfg_identity *id)
{
    free(id->name);
    for (size_t i = 0; i < id->n_names; i++)
        free(id->names[i]);
    free(id->names);
    free(id->ca_url);
    free(id->ca_root);
    free(id->acme_provisioner);
    free(id->chain.path);
    free(id->ref.path);
    free(id->allow_uids);
    free(id->allow_gids);
    free(id->jwk_provisioner);
    free(id->jwk_password_file);
    free(id->jwk_password_credential);
    free(id->jwk_key_file);
    free(id->reload_pidfile);
    for (size_t i = 0; i < id->n_reload_argv; i++)
        free(id->reload_argv[i]);
    free(id->reload_argv);
    for (size_t i = 0; i < id->n_verify_endpoints; i++)
        free(id->verify_endpoints[i]);
    free(id->verify_endpoints);
    free(id->verify_sni);
    for (size_t i = 0; i < id->n_targets; i++)
        cfg_target_free(&id->targets[i]);
    free(id->targets);
    *id = (struct cfg_identity){ 0 };
}

static int begin_target(struct pstate *ps, const char *name, unsigned line)
{
    struct cfg_target *nv;
    char err[CFG_ERR_MAX];
    int r;

    while (*name == ' ' || *name == '\t')
        name++;
    for (size_t i = 0; i < ps->n_targets; i++)
        if (strcmp(ps->targets[i].name, name) == 0)
            return perr(ps, line,
                        "target '%s' is defined twice (first at line %u)",
                        name, ps->targets[i].line), -EINVAL;
    nv = realloc(ps->targets, (ps->n_targets + 1) * sizeof(*nv));
    if (!nv)
        return -ENOMEM;
    ps->targets = nv;
    r = cfg_target_init(&nv[ps->n_targets], name, line, err, sizeof(err));
    if (r < 0) {
        cfg_target_free(&nv[ps->n_targets]);
        return r == -ENOMEM ? r : (perr(ps, line, "%s", err), r);
    }
    ps->n_targets++;
    ps->kind = SEC_TARGET;
    return 0;
}

static int begin_section(struct pstate *ps, const char *inih_section)
{
    const char *name, *section = ps->header_text;
    unsigned line = ps->header_line;

    (void)inih_section; /* possibly truncated: use our own copy */
    if (ps->header_too_long) {
        ps->header_too_long = false;
        return perr(ps, line, "section name too long (the limit is %zu "
                              "characters)",
                    sizeof(ps->header_text) - 1), -EINVAL;
    }

    ps->cur_header_line = ps->header_line;
    ps->pending_header = 0;
    ps->cur = NULL;
    if (strcmp(section, "daemon") == 0) {
        if (ps->daemon_set & (1ULL << 63))
            return perr(ps, line, "[daemon] appears twice"), -EINVAL;
        ps->daemon_set |= 1ULL << 63;
        ps->kind = SEC_DAEMON;
        return 0;
    }
    if (strcmp(section, "defaults") == 0) {
        if (ps->defaults.set & (1ULL << 63))
            return perr(ps, line, "[defaults] appears twice"), -EINVAL;
        ps->defaults.set |= 1ULL << 63;
        ps->kind = SEC_DEFAULTS;
        ps->cur = &ps->defaults;
        return 0;
    }
    if (strncmp(section, "target", 6) == 0 &&
        (section[6] == ' ' || section[6] == '\t'))
        return begin_target(ps, section + 7, line);
    if (strncmp(section, "identity", 8) != 0 ||
        (section[8] != ' ' && section[8] != '\t'))
        return perr(ps, line,
                    "unknown section [%s]: expected [daemon], [defaults], "
                    "[identity NAME] or [target NAME]",
                    section), -EINVAL;
    name = section + 9;
    while (*name == ' ' || *name == '\t')
        name++;
    if (!ipc_identity_valid(name, strlen(name)))
        return perr(ps, line,
                    "invalid identity name '%s': use 1 to 64 letters, digits, "
                    "'.', '_' or '-', starting with a letter or digit",
                    name), -EINVAL;
    for (size_t i = 0; i < ps->n_ids; i++)
        if (strcmp(ps->ids[i].id.name, name) == 0)
            return perr(ps, line,
                        "identity '%s' is defined twice (first at line %u)",
                        name, ps->ids[i].id.line), -EINVAL;
    if (ps->n_ids >= CFG_IDENTITIES_MAX)
        return perr(ps, line, "too many identities (the limit is %d)",
                    CFG_IDENTITIES_MAX), -EINVAL;
    {
        struct pid_entry *nv = realloc(ps->ids, (ps->n_ids + 1) * sizeof(*nv));

        if (!nv)
            return -ENOMEM;
        ps->ids = nv;
    }
    ps->cur = &ps->ids[ps->n_ids++];
    *ps->cur = (struct pid_entry){ 0 };
    ps->cur->id.line = ps->header_line;
    ps->cur->id.name = strdup(name);
    if (!ps->cur->id.name)
        return -ENOMEM;
    ps->kind = SEC_IDENTITY;
    return 0;
}

static int handler(void *user, const char *section, const char *name,
                   const char *value)
{
    struct pstate *ps = user;
    const struct cfg_key *k = NULL;
    size_t idx;
    uint64_t *set;
    void *base;
    int r;

    if (ps->err_line)
        return 1; /* already failed; libinih just finishes the file */
    if (ps->header_line == 0)
        return perr(ps, ps->line,
                    "'%s' is outside any section; start with [daemon], "
                    "[defaults] or [identity NAME]",
                    name);
    if (ps->header_line != ps->cur_header_line) {
        r = begin_section(ps, section);
        if (r < 0)
            return r == -ENOMEM ? perr(ps, ps->line, "out of memory") : 0;
    }
    if (ps->kind == SEC_TARGET) {
        char err[CFG_ERR_MAX];

        r = cfg_target_set(&ps->targets[ps->n_targets - 1], name, value,
                           ps->line, ps->res, err, sizeof(err));
        if (r < 0)
            perr(ps, ps->line, "%s", r == -ENOMEM ? "out of memory" : err);
        return r < 0 ? 0 : 1;
    }
    for (idx = 0; idx < N_KEYS; idx++)
        if (strcmp(cfg_keys[idx].name, name) == 0) {
            k = &cfg_keys[idx];
            break;
        }
    if (!k || !(k->sections & ps->kind))
        return perr(ps, ps->line, "unknown key '%s' in [%s]", name,
                    ps->header_text);
    if (ps->kind == SEC_DEFAULTS && (k->flags & K_NODEFAULT))
        return perr(ps, ps->line,
                    "'%s' belongs in an [identity NAME] section, not in "
                    "[defaults]",
                    name);
    if (ps->kind == SEC_DAEMON) {
        set = &ps->daemon_set;
        base = ps->cfg;
    } else {
        set = &ps->cur->set;
        base = &ps->cur->id;
    }
    if ((*set & (1ULL << idx)) && !(k->flags & K_LIST))
        return perr(ps, ps->line, "duplicate key '%s' in [%s]", name,
                    ps->header_text);
    *set |= 1ULL << idx;
    if (strcmp(k->name, "chain-file") == 0)
        ps->cur->id.chain.line = ps->line;
    if (strcmp(k->name, "ref-file") == 0)
        ps->cur->id.ref.line = ps->line;
    if (strcmp(k->name, "ca-root") == 0)
        ps->cur->id.ca_root_line = ps->line;
    if (strcmp(k->name, "key-type") == 0)
        ps->cur->id.key_type_line = ps->line;
    if (strcmp(k->name, "allowed-key-types") == 0)
        ps->cur->id.allowed_key_types_line = ps->line;
    r = parse_value(ps, k, base, value);
    if (r == -ENOMEM)
        perr(ps, ps->line, "out of memory");
    return r < 0 ? 0 : 1;
}

/* --- defaults and validation ------------------------------------------- */

static int copy_ids(unsigned **dst, size_t *dn, const unsigned *src, size_t n)
{
    if (n == 0)
        return 0;
    *dst = malloc(n * sizeof(**dst));
    if (!*dst)
        return -ENOMEM;
    memcpy(*dst, src, n * sizeof(**dst));
    *dn = n;
    return 0;
}

/* Copy every key [defaults] set and the identity did not. */
static int apply_defaults(struct pstate *ps, struct pid_entry *e)
{
    const struct cfg_identity *d = &ps->defaults.id;
    struct cfg_identity *id = &e->id;

    for (size_t i = 0; i < N_KEYS; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        const void *src = (const char *)d + k->off;
        void *dst = (char *)id + k->off;
        int r = 0;

        if (!(k->sections & SEC_DEFAULTS) || !(ps->defaults.set & (1ULL << i)) ||
            (e->set & (1ULL << i)))
            continue;
        switch (k->type) {
        case V_PATH:
        case V_URL:
        case V_STRING:
            r = set_string(dst, *(char *const *)src);
            if (strcmp(k->name, "ca-root") == 0)
                id->ca_root_line = d->ca_root_line;
            break;
        case V_USERS:
            r = copy_ids((unsigned **)&id->allow_uids, &id->n_allow_uids,
                         d->allow_uids, d->n_allow_uids);
            break;
        case V_GROUPS:
            r = copy_ids((unsigned **)&id->allow_gids, &id->n_allow_gids,
                         d->allow_gids, d->n_allow_gids);
            break;
        case V_DURATION:
            *(int64_t *)dst = *(const int64_t *)src;
            break;
        case V_MODE:
            *(mode_t *)dst = *(const mode_t *)src;
            break;
        case V_USER:
        case V_GROUP:
        case V_UINT:
        case V_UINT0:
        case V_PERCENT:
            *(unsigned *)dst = *(const unsigned *)src;
            break;
        case V_KEYTYPES:
            *(unsigned *)dst = *(const unsigned *)src;
            id->allowed_key_types_line = d->allowed_key_types_line;
            break;
        case V_KEYTYPE:
            *(int *)dst = *(const int *)src;
            id->key_type_line = d->key_type_line;
            break;
        case V_ROLE:
        case V_ENROLL:
        case V_LOGLEVEL:
        case V_SIGNAL:
            *(int *)dst = *(const int *)src;
            break;
        case V_BOOL:
            *(bool *)dst = *(const bool *)src;
            break;
        case V_NAMES:
        case V_SOCKNAME:
        case V_ARGV:      /* K_NODEFAULT */
        case V_ENDPOINTS: /* K_NODEFAULT */
            break;
        }
        if (r < 0)
            return r;
        e->set |= 1ULL << i;
    }
    return 0;
}

static bool key_set(const struct pid_entry *e, const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(cfg_keys[i].name, name) == 0)
            return e->set & (1ULL << i);
    return false;
}

static void output_defaults(struct cfg_output *o, const struct pid_entry *e,
                            const char *owner, const char *group,
                            const char *mode)
{
    if (!key_set(e, owner))
        o->uid = (uid_t)-1;
    if (!key_set(e, group))
        o->gid = (gid_t)-1;
    if (!key_set(e, mode))
        o->mode = 0644;
}

static int validate_identity(struct pstate *ps, struct pid_entry *e)
{
    static const char *const required[] = { "names", "ca-url", "ca-root",
                                            "chain-file", "ref-file" };
    struct cfg_identity *id = &e->id;
    int r;

    r = apply_defaults(ps, e);
    if (r < 0)
        return perr(ps, id->line, "out of memory"), r;
    for (size_t i = 0; i < ELEMENTSOF(required); i++)
        if (!key_set(e, required[i]))
            return perr(ps, id->line, "[identity %s]: missing required key '%s'",
                        id->name, required[i]), -EINVAL;
    if (!key_set(e, "role"))
        id->role = TLS_ROLE_SERVER;
    if (!key_set(e, "key-type"))
        id->key_type = CFG_KEY_EC_P256;
    /* Every supported type is allowed unless a policy narrows it (RSA
     * below 2048 bits is not a type at all). */
    if (!key_set(e, "allowed-key-types"))
        id->allowed_key_types = CFG_KEY_ALL;
    if (!(id->allowed_key_types & CFG_KEY_BIT(id->key_type)))
        return perr(ps, id->key_type_line ? id->key_type_line
                                          : id->allowed_key_types_line,
                    "[identity %s]: key-type %s%s is not in allowed-key-types",
                    id->name, cfg_key_type_str(id->key_type),
                    id->key_type_line ? "" : " (the default)"), -EINVAL;
    if (!key_set(e, "enroll"))
        id->enroll = CFG_ENROLL_ACME;
    if (!key_set(e, "acme-provisioner") &&
        set_string(&id->acme_provisioner, "acme") < 0)
        return -ENOMEM;
    output_defaults(&id->chain, e, "chain-owner", "chain-group", "chain-mode");
    output_defaults(&id->ref, e, "ref-owner", "ref-group", "ref-mode");
    if (id->lifetime_s != 0 && id->lifetime_s < 10)
        return perr(ps, id->line,
                    "[identity %s]: lifetime %llds is below the 10s minimum",
                    id->name, (long long)id->lifetime_s), -EINVAL;
    if (!key_set(e, "renew-at"))
        id->renew_at_pm = 667;
    if (!key_set(e, "renew-jitter"))
        id->renew_jitter_pm = 50;
    if (!key_set(e, "retry-floor"))
        id->retry_floor_s = 5;
    if (!key_set(e, "retry-max"))
        id->retry_max_s = 600;
    if (!key_set(e, "rotate-grace"))
        id->rotate_grace_s = 600;
    if (!key_set(e, "reload-signal"))
        id->reload_signal = SIGHUP;
    if (!key_set(e, "reload-timeout"))
        id->reload_timeout_s = 30;
    if (!key_set(e, "verify-timeout"))
        id->verify_timeout_s = 5;
    if (id->renew_at_pm < 100 || id->renew_at_pm > 950)
        return perr(ps, id->line,
                    "[identity %s]: renew-at must be between 10%% and 95%%",
                    id->name), -EINVAL;
    if (id->renew_jitter_pm >= id->renew_at_pm)
        return perr(ps, id->line,
                    "[identity %s]: renew-jitter must be smaller than renew-at",
                    id->name), -EINVAL;
    if (id->retry_floor_s < 1 || id->retry_max_s < id->retry_floor_s)
        return perr(ps, id->line,
                    "[identity %s]: retry-floor must be at least 1s and at "
                    "most retry-max",
                    id->name), -EINVAL;
    if (id->enroll == CFG_ENROLL_JWK) {
        int n = !!id->jwk_password_file + !!id->jwk_password_credential +
                !!id->jwk_key_file;

        if (!id->jwk_provisioner)
            return perr(ps, id->line,
                        "[identity %s]: enroll = jwk needs jwk-provisioner",
                        id->name), -EINVAL;
        if (n != 1)
            return perr(ps, id->line,
                        "[identity %s]: enroll = jwk needs exactly one of "
                        "jwk-password-file, jwk-password-credential and "
                        "jwk-key-file",
                        id->name), -EINVAL;
    }
    if (id->reload_pidfile && id->reload_argv)
        return perr(ps, id->line,
                    "[identity %s]: reload-pidfile and reload-argv exclude "
                    "each other",
                    id->name), -EINVAL;
    if (id->n_allow_uids == 0 && id->n_allow_gids == 0)
        return perr(ps, id->line,
                    "[identity %s]: neither allow-users nor allow-groups is "
                    "set, so no service could use this key",
                    id->name), -EINVAL;
    if (strcmp(id->chain.path, id->ref.path) == 0)
        return perr(ps, id->ref.line,
                    "[identity %s]: chain-file and ref-file are the same file",
                    id->name), -EINVAL;
    return 0;
}

static bool path_inside(const char *path, const char *dir)
{
    size_t n = strlen(dir);

    if (n == 1) /* "/" */
        return true;
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Service files must stay out of the key store and off the socket. */
/* What a file shortcertd writes must never be: a socket, the configuration
 * itself, or a file it reads (a CA root, a provisioner secret).  Returns
 * what path is, or NULL. */
static const char *protected_path(const struct pstate *ps, const char *path,
                                  char *buf, size_t n)
{
    const struct cfg *c = ps->cfg;
    const char *sock = c->socket_path ? c->socket_path : SHORTCERT_DEFAULT_SOCKET;
    const char *admin = c->admin_socket ? c->admin_socket
                                        : SHORTCERT_DEFAULT_ADMIN_SOCKET;

    if (strcmp(path, sock) == 0)
        return "the signing socket";
    if (strcmp(path, admin) == 0)
        return "the admin socket";
    if (c->metrics_socket && strcmp(path, c->metrics_socket) == 0)
        return "the metrics socket";
    if (strcmp(path, ps->path) == 0)
        return "this configuration file";
    for (size_t i = 0; i < ps->n_ids; i++) {
        const struct cfg_identity *id = &ps->ids[i].id;
        const char *what = NULL;

        if (id->ca_root && strcmp(path, id->ca_root) == 0)
            what = "ca-root";
        else if (id->jwk_password_file &&
                 strcmp(path, id->jwk_password_file) == 0)
            what = "jwk-password-file";
        else if (id->jwk_key_file && strcmp(path, id->jwk_key_file) == 0)
            what = "jwk-key-file";
        if (what) {
            snprintf(buf, n, "the %s of [identity %s]", what, id->name);
            return buf;
        }
    }
    return NULL;
}

static int check_output_places(struct pstate *ps)
{
    const struct cfg *c = ps->cfg;
    const char *state = c->state_dir ? c->state_dir : SHORTCERT_DEFAULT_STATEDIR;
    const char *sock = c->socket_path ? c->socket_path : SHORTCERT_DEFAULT_SOCKET;
    const char *admin = c->admin_socket ? c->admin_socket
                                        : SHORTCERT_DEFAULT_ADMIN_SOCKET;
    char buf[256];
    const char *what;

    if (strcmp(sock, admin) == 0)
        return perr(ps, 1, "socket and admin-socket are both %s", sock),
               -EINVAL;
    if (c->metrics_socket && (strcmp(c->metrics_socket, sock) == 0 ||
                              strcmp(c->metrics_socket, admin) == 0))
        return perr(ps, 1, "metrics-socket %s is also the %s socket",
                    c->metrics_socket,
                    strcmp(c->metrics_socket, sock) == 0 ? "signing" : "admin"),
               -EINVAL;
    for (size_t i = 0; i < ps->n_ids; i++) {
        const struct cfg_identity *id = &ps->ids[i].id;
        const struct cfg_output *o[2] = { &id->chain, &id->ref };

        for (int x = 0; x < 2; x++) {
            if (path_inside(o[x]->path, state))
                return perr(ps, o[x]->line,
                            "[identity %s]: %s is inside the state directory "
                            "%s, which holds the private keys",
                            id->name, o[x]->path, state),
                       -EINVAL;
            what = protected_path(ps, o[x]->path, buf, sizeof(buf));
            if (what)
                return perr(ps, o[x]->line, "[identity %s]: %s is %s",
                            id->name, o[x]->path, what),
                       -EINVAL;
        }
        for (size_t j = 0; j < id->n_targets; j++) {
            const struct cfg_target *t = &id->targets[j];
            const char *f[3] = { t->chain_file, t->ref_file, t->combined_file };
            const unsigned fl[3] = { t->chain_line, t->ref_line,
                                     t->combined_line };

            for (int x = 0; x < 3; x++) {
                what = f[x] ? protected_path(ps, f[x], buf, sizeof(buf)) : NULL;
                if (what)
                    return perr(ps, fl[x], "[target %s]: %s is %s", t->name,
                                f[x], what),
                           -EINVAL;
            }
        }
    }
    return 0;
}

static int check_output_clash(struct pstate *ps)
{
    for (size_t i = 0; i < ps->n_ids; i++) {
        const struct cfg_identity *a = &ps->ids[i].id;
        const struct cfg_output *ao[2] = { &a->chain, &a->ref };

        for (size_t j = i + 1; j < ps->n_ids; j++) {
            const struct cfg_identity *b = &ps->ids[j].id;
            const struct cfg_output *bo[2] = { &b->chain, &b->ref };

            for (int x = 0; x < 2; x++)
                for (int y = 0; y < 2; y++)
                    if (strcmp(ao[x]->path, bo[y]->path) == 0)
                        return perr(ps, bo[y]->line,
                                    "identities '%s' and '%s' both write %s",
                                    a->name, b->name, ao[x]->path),
                               -EINVAL;
        }
    }
    return 0;
}

/* Who else writes path: an identity's own file or an attached target's
 * (named in who), or NULL. */
static const char *output_owner(struct pstate *ps, const char *path,
                                char *who, size_t wl)
{
    for (size_t i = 0; i < ps->n_ids; i++) {
        const struct cfg_identity *id = &ps->ids[i].id;

        if ((id->chain.path && strcmp(id->chain.path, path) == 0) ||
            (id->ref.path && strcmp(id->ref.path, path) == 0)) {
            snprintf(who, wl, "[identity %s]", id->name);
            return who;
        }
        for (size_t j = 0; j < id->n_targets; j++) {
            const struct cfg_target *t = &id->targets[j];
            const char *f[3] = { t->chain_file, t->ref_file, t->combined_file };

            for (int x = 0; x < 3; x++)
                if (f[x] && strcmp(f[x], path) == 0) {
                    snprintf(who, wl, "[target %s]", t->name);
                    return who;
                }
        }
    }
    return NULL;
}

/* Check each [target] and move it to its identity (ps->targets is emptied;
 * on error the rest stay there to be freed). */
static int attach_targets(struct pstate *ps)
{
    const char *state = ps->cfg->state_dir ? ps->cfg->state_dir
                                           : SHORTCERT_DEFAULT_STATEDIR;
    char err[CFG_ERR_MAX], who[200];
    size_t done = 0;
    int r = 0;

    for (; done < ps->n_targets; done++) {
        struct cfg_target *t = &ps->targets[done];
        struct cfg_identity *id = NULL;
        struct cfg_target *nv;
        unsigned line;

        r = cfg_target_finish(t, &line, err, sizeof(err));
        if (r < 0) {
            perr(ps, line, "%s", err);
            break;
        }
        for (size_t i = 0; i < ps->n_ids && !id; i++)
            if (strcmp(ps->ids[i].id.name, t->identity) == 0)
                id = &ps->ids[i].id;
        if (!id) {
            perr(ps, t->identity_line,
                 "[target %s]: no [identity %s] in this file", t->name,
                 t->identity);
            r = -EINVAL;
            break;
        }
        {
            const char *f[3] = { t->chain_file, t->ref_file, t->combined_file };
            const unsigned fl[3] = { t->chain_line, t->ref_line,
                                     t->combined_line };

            for (int x = 0; x < 3 && r == 0; x++) {
                const char *other =
                    f[x] ? output_owner(ps, f[x], who, sizeof(who)) : NULL;

                if (f[x] && path_inside(f[x], state)) {
                    perr(ps, fl[x],
                         "[target %s]: %s is inside the state directory "
                         "%s, which holds the private keys",
                         t->name, f[x], state);
                    r = -EINVAL;
                } else if (other) {
                    perr(ps, fl[x], "[target %s]: %s is also written by %s",
                         t->name, f[x], other);
                    r = -EINVAL;
                }
            }
            if (r < 0)
                break;
        }
        nv = realloc(id->targets, (id->n_targets + 1) * sizeof(*nv));
        if (!nv) {
            perr(ps, t->line, "out of memory");
            r = -ENOMEM;
            break;
        }
        id->targets = nv;
        nv[id->n_targets++] = *t;
        *t = (struct cfg_target){ 0 };
    }
    if (r == 0) {
        free(ps->targets);
        ps->targets = NULL;
        ps->n_targets = 0;
    }
    return r;
}

static int daemon_defaults(struct cfg *c)
{
    if (!c->state_dir && set_string(&c->state_dir, SHORTCERT_DEFAULT_STATEDIR) < 0)
        return -ENOMEM;
    if (!c->socket_path && set_string(&c->socket_path, SHORTCERT_DEFAULT_SOCKET) < 0)
        return -ENOMEM;
    if (!c->http01_listen && set_string(&c->http01_listen, "[::]:80") < 0)
        return -ENOMEM;
    if (!c->admin_socket &&
        set_string(&c->admin_socket, SHORTCERT_DEFAULT_ADMIN_SOCKET) < 0)
        return -ENOMEM;
    return 0;
}

/* --- entry points ------------------------------------------------------ */

int cfg_parse_buffer(const char *path, const char *text, size_t len,
                     const struct cfg_resolver *res, struct cfg **ret,
                     char *err, size_t errlen)
{
    struct pstate ps = {
        .path = path,
        .res = res ? res : &cfg_system_resolver,
        .text = text,
        .len = len,
    };
    struct cfg *c;
    int r, line;

    if (len > CFG_FILE_MAX) {
        snprintf(err, errlen, "%s: file too large (the limit is %u bytes)",
                 path, CFG_FILE_MAX);
        return -EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->path = strdup(path);
    c->socket_mode = 0666;
    c->socket_gid = (gid_t)-1;
    c->log_level = LOG_INFO;
    c->max_conns_per_uid = 256;
    c->admin_gid = (gid_t)-1;
    c->renew_workers = 4;
    c->ca_health_interval_s = 60;
    c->retire_after_s = 600;
    ps.cfg = c;

    line = ini_parse_stream(reader, &ps, handler, &ps);
    if (ps.reader_err && (ps.err_line == 0 || ps.reader_err_line < ps.err_line)) {
        ps.err_line = 0;
        perr(&ps, ps.reader_err_line, "%s", ps.reader_err);
    }
    if (line > 0 && (ps.err_line == 0 || (unsigned)line < ps.err_line)) {
        ps.err_line = 0;
        perr(&ps, (unsigned)line,
             "syntax error: expected '[section]', 'key = value' or a comment "
             "starting with '#' or ';'");
    } else if (line < 0 && ps.err_line == 0) {
        perr(&ps, ps.line, "cannot parse (libinih error %d)", line);
    }
    if (ps.err_line == 0 && (ps.empty_header || ps.pending_header))
        perr(&ps, ps.empty_header ? ps.empty_header : ps.pending_header,
             "a section has no keys");
    for (size_t i = 0; i < ps.n_ids && ps.err_line == 0; i++)
        (void)validate_identity(&ps, &ps.ids[i]);
    if (ps.err_line == 0)
        (void)attach_targets(&ps);
    if (ps.err_line == 0)
        (void)check_output_clash(&ps);
    if (ps.err_line == 0)
        (void)check_output_places(&ps);
    if (ps.err_line == 0 && (daemon_defaults(c) < 0 || !c->path))
        perr(&ps, 1, "out of memory");

    if (ps.err_line != 0) {
        snprintf(err, errlen, "%s:%u: %s", path, ps.err_line, ps.err);
        r = -EINVAL;
        for (size_t i = 0; i < ps.n_ids; i++)
            identity_free(&ps.ids[i].id);
        free(ps.ids);
        for (size_t i = 0; i < ps.n_targets; i++)
            cfg_target_free(&ps.targets[i]);
        free(ps.targets);
        identity_free(&ps.defaults.id);
        cfg_free(c);
        return r;
    }
    c->ids = calloc(ps.n_ids ? ps.n_ids : 1, sizeof(*c->ids));
    if (!c->ids) {
        for (size_t i = 0; i < ps.n_ids; i++)
            identity_free(&ps.ids[i].id);
        free(ps.ids);
        identity_free(&ps.defaults.id);
        cfg_free(c);
        return -ENOMEM;
    }
    for (size_t i = 0; i < ps.n_ids; i++)
        c->ids[i] = ps.ids[i].id;
    c->n_ids = ps.n_ids;
    free(ps.ids);
    identity_free(&ps.defaults.id);
    *ret = c;
    return 0;
}

int cfg_load(const char *path, const struct cfg_resolver *res,
             struct cfg **ret, char *err, size_t errlen)
{
    _cleanup_free_ char *buf = NULL;
    FILE *f;
    size_t n;
    char eb[128];

    {
        /* O_NONBLOCK: a FIFO must not hang the check; only a regular
         * file is a configuration */
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

        if (fd < 0 || fstat(fd, &st) < 0) {
            int e = negerrno();

            if (fd >= 0)
                close(fd);
            snprintf(err, errlen, "%s: cannot open: %s", path,
                     strerror_r(-e, eb, sizeof(eb)));
            return e;
        }
        if (!S_ISREG(st.st_mode)) {
            close(fd);
            snprintf(err, errlen, "%s: not a regular file", path);
            return -EINVAL;
        }
        f = fdopen(fd, "r");
        if (!f) {
            int e = negerrno();

            close(fd);
            snprintf(err, errlen, "%s: cannot open: %s", path,
                     strerror_r(-e, eb, sizeof(eb)));
            return e;
        }
    }
    buf = malloc(CFG_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    n = fread(buf, 1, CFG_FILE_MAX + 1, f);
    if (ferror(f)) {
        int e = negerrno();

        fclose(f);
        snprintf(err, errlen, "%s: cannot read: %s", path,
                 strerror_r(-e, eb, sizeof(eb)));
        return e;
    }
    fclose(f);
    return cfg_parse_buffer(path, buf, n, res, ret, err, errlen);
}

void cfg_free(struct cfg *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_ids; i++)
        identity_free(&c->ids[i]);
    free(c->ids);
    free(c->path);
    free(c->state_dir);
    free(c->socket_path);
    free(c->abstract_socket);
    free(c->http01_listen);
    free(c->metrics_listen);
    free(c->metrics_socket);
    free(c->admin_socket);
    free(c);
}

int cfg_check_files(const struct cfg *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->n_ids; i++) {
        const struct cfg_identity *id = &c->ids[i];
        BIO *b = BIO_new_file(id->ca_root, "r");
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        int e = errno;

        BIO_free(b);
        X509_free(x);
        ERR_clear_error();
        if (!b) {
            char eb[128];

            snprintf(err, errlen, "%s:%u: [identity %s]: cannot read ca-root %s: %s",
                     c->path, id->ca_root_line, id->name, id->ca_root,
                     strerror_r(e, eb, sizeof(eb)));
            return -EINVAL;
        }
        if (!x) {
            snprintf(err, errlen,
                     "%s:%u: [identity %s]: ca-root %s holds no PEM certificate",
                     c->path, id->ca_root_line, id->name, id->ca_root);
            return -EINVAL;
        }
    }
    return 0;
}

const struct cfg_identity *cfg_find_identity(const struct cfg *c,
                                             const char *name, size_t len)
{
    for (size_t i = 0; i < c->n_ids; i++)
        if (strlen(c->ids[i].name) == len &&
            memcmp(c->ids[i].name, name, len) == 0)
            return &c->ids[i];
    return NULL;
}

char *cfg_acme_directory(const struct cfg_identity *id)
{
    char *s = NULL;

    if (asprintf(&s, "%s/acme/%s/directory", id->ca_url,
                 id->acme_provisioner) < 0)
        return NULL;
    return s;
}

static void dump_output(FILE *f, const char *what, const struct cfg_output *o)
{
    fprintf(f, "%s-file = %s\n", what, o->path);
    if (o->uid != (uid_t)-1)
        fprintf(f, "%s-owner = %u\n", what, (unsigned)o->uid);
    if (o->gid != (gid_t)-1)
        fprintf(f, "%s-group = %u\n", what, (unsigned)o->gid);
    fprintf(f, "%s-mode = %04o\n", what, (unsigned)o->mode);
}

static void dump_string(FILE *f, const char *key, const char *v)
{
    if (v)
        fprintf(f, "%s = %s\n", key, v);
}

void cfg_dump(const struct cfg *c, FILE *f)
{
    fprintf(f, "# effective configuration from %s\n[daemon]\n", c->path);
    fprintf(f, "state-dir = %s\n", c->state_dir);
    fprintf(f, "socket = %s\n", c->socket_path);
    if (c->abstract_socket)
        fprintf(f, "abstract-socket = @%s\n", c->abstract_socket);
    fprintf(f, "socket-mode = %04o\n", (unsigned)c->socket_mode);
    if (c->socket_gid != (gid_t)-1)
        fprintf(f, "socket-group = %u\n", (unsigned)c->socket_gid);
    fprintf(f, "http01-listen = %s\n", c->http01_listen);
    if (c->metrics_listen)
        fprintf(f, "metrics-listen = %s\n", c->metrics_listen);
    if (c->metrics_socket)
        fprintf(f, "metrics-socket = %s\n", c->metrics_socket);
    fprintf(f, "ca-health-interval = %llds\n",
            (long long)c->ca_health_interval_s);
    fprintf(f, "retire-after = %llds\n", (long long)c->retire_after_s);
    {
        static const char *const lv[] = { [LOG_ERR] = "error",
                                           [LOG_WARNING] = "warning",
                                           [LOG_NOTICE] = "notice",
                                           [LOG_INFO] = "info",
                                           [LOG_DEBUG] = "debug" };

        if (c->log_level >= LOG_ERR && c->log_level <= LOG_DEBUG &&
            lv[c->log_level])
            fprintf(f, "log-level = %s\n", lv[c->log_level]);
    }
    fprintf(f, "max-connections-per-uid = %u\n", c->max_conns_per_uid);
    fprintf(f, "admin-socket = %s\n", c->admin_socket);
    if (c->admin_gid != (gid_t)-1)
        fprintf(f, "admin-group = %u\n", (unsigned)c->admin_gid);
    fprintf(f, "renew-workers = %u\n", c->renew_workers);
    for (size_t i = 0; i < c->n_ids; i++) {
        const struct cfg_identity *id = &c->ids[i];

        fprintf(f, "\n[identity %s]\nnames =", id->name);
        for (size_t j = 0; j < id->n_names; j++)
            fprintf(f, "%s %s", j ? "," : "", id->names[j]);
        fprintf(f, "\nrole = %s\nkey-type = %s\nallowed-key-types =",
                id->role == TLS_ROLE_CLIENT ? "client" : "server",
                cfg_key_type_str(id->key_type));
        for (int t = 1; t < CFG_KEY_MAX; t++)
            if (id->allowed_key_types & CFG_KEY_BIT(t))
                fprintf(f, " %s", cfg_key_type_str((enum cfg_key_type)t));
        fprintf(f, "\nenroll = %s\n",
                id->enroll == CFG_ENROLL_JWK ? "jwk" : "acme");
        fprintf(f, "ca-url = %s\nca-root = %s\nacme-provisioner = %s\n",
                id->ca_url, id->ca_root, id->acme_provisioner);
        dump_string(f, "jwk-provisioner", id->jwk_provisioner);
        dump_string(f, "jwk-password-file", id->jwk_password_file);
        dump_string(f, "jwk-password-credential", id->jwk_password_credential);
        dump_string(f, "jwk-key-file", id->jwk_key_file);
        if (id->lifetime_s)
            fprintf(f, "lifetime = %llds\n", (long long)id->lifetime_s);
        fprintf(f, "renew-at = %u.%u%%\nrenew-jitter = %u.%u%%\n",
                id->renew_at_pm / 10, id->renew_at_pm % 10,
                id->renew_jitter_pm / 10, id->renew_jitter_pm % 10);
        fprintf(f, "retry-floor = %llds\nretry-max = %llds\n",
                (long long)id->retry_floor_s, (long long)id->retry_max_s);
        fprintf(f, "rotate-every = %u\nrotate-after = %llds\n"
                   "rotate-grace = %llds\n",
                id->rotate_every, (long long)id->rotate_after_s,
                (long long)id->rotate_grace_s);
        dump_string(f, "reload-pidfile", id->reload_pidfile);
        if (id->reload_pidfile && sigabbrev_np(id->reload_signal))
            fprintf(f, "reload-signal = %s\n", sigabbrev_np(id->reload_signal));
        for (size_t j = 0; j < id->n_reload_argv; j++)
            fprintf(f, "reload-argv = %s\n", id->reload_argv[j]);
        fprintf(f, "reload-timeout = %llds\n", (long long)id->reload_timeout_s);
        for (size_t j = 0; j < id->n_verify_endpoints; j++)
            fprintf(f, "verify-endpoint = %s\n", id->verify_endpoints[j]);
        dump_string(f, "verify-sni", id->verify_sni);
        fprintf(f, "verify-timeout = %llds\nrevoke-on-remove = %s\n",
                (long long)id->verify_timeout_s,
                id->revoke_on_remove ? "yes" : "no");
        dump_output(f, "chain", &id->chain);
        dump_output(f, "ref", &id->ref);
        if (id->n_allow_uids) {
            fprintf(f, "allow-users =");
            for (size_t j = 0; j < id->n_allow_uids; j++)
                fprintf(f, "%s %u", j ? "," : "", (unsigned)id->allow_uids[j]);
            fputc('\n', f);
        }
        if (id->n_allow_gids) {
            fprintf(f, "allow-groups =");
            for (size_t j = 0; j < id->n_allow_gids; j++)
                fprintf(f, "%s %u", j ? "," : "", (unsigned)id->allow_gids[j]);
            fputc('\n', f);
        }
    }
    for (size_t i = 0; i < c->n_ids; i++)
        for (size_t j = 0; j < c->ids[i].n_targets; j++)
            cfg_target_dump(&c->ids[i].targets[j], f);
}

/* --- reload ------------------------------------------------------------ */

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool strv_eq(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i], b[i]))
            return false;
    return true;
}

static bool output_eq(const struct cfg_output *a, const struct cfg_output *b)
{
    return str_eq(a->path, b->path) && a->uid == b->uid && a->gid == b->gid &&
           a->mode == b->mode;
}

/* [target]s: what cfg_target_dump() prints, and what it does not. */
static bool target_eq(const struct cfg_target *a, const struct cfg_target *b)
{
    _cleanup_free_ char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    FILE *f;
    bool eq;

    if (a->action_timeout_s != b->action_timeout_s ||
        a->verify_timeout_s != b->verify_timeout_s ||
        a->verify_tries != b->verify_tries || a->n_verify != b->n_verify)
        return false;
    for (size_t i = 0; i < a->n_verify; i++)
        if (!str_eq(a->verify[i].text, b->verify[i].text) ||
            !str_eq(a->verify[i].sni, b->verify[i].sni) ||
            a->verify[i].starttls != b->verify[i].starttls)
            return false;
    f = open_memstream(&da, &la);
    if (!f)
        return false;
    cfg_target_dump(a, f);
    fclose(f);
    f = open_memstream(&db, &lb);
    if (!f)
        return false;
    cfg_target_dump(b, f);
    fclose(f);
    eq = la == lb && memcmp(da, db, la) == 0;
    return eq;
}

bool cfg_identity_equal(const struct cfg_identity *a,
                        const struct cfg_identity *b)
{
    if (!str_eq(a->name, b->name) ||
        !strv_eq(a->names, a->n_names, b->names, b->n_names) ||
        a->role != b->role || a->key_type != b->key_type ||
        a->allowed_key_types != b->allowed_key_types ||
        a->enroll != b->enroll || !str_eq(a->ca_url, b->ca_url) ||
        !str_eq(a->ca_root, b->ca_root) ||
        !str_eq(a->acme_provisioner, b->acme_provisioner) ||
        a->lifetime_s != b->lifetime_s || !output_eq(&a->chain, &b->chain) ||
        !output_eq(&a->ref, &b->ref) || a->n_allow_uids != b->n_allow_uids ||
        a->n_allow_gids != b->n_allow_gids ||
        (a->n_allow_uids &&
         memcmp(a->allow_uids, b->allow_uids,
                a->n_allow_uids * sizeof(*a->allow_uids)) != 0) ||
        (a->n_allow_gids &&
         memcmp(a->allow_gids, b->allow_gids,
                a->n_allow_gids * sizeof(*a->allow_gids)) != 0) ||
        !str_eq(a->jwk_provisioner, b->jwk_provisioner) ||
        !str_eq(a->jwk_password_file, b->jwk_password_file) ||
        !str_eq(a->jwk_password_credential, b->jwk_password_credential) ||
        !str_eq(a->jwk_key_file, b->jwk_key_file) ||
        a->renew_at_pm != b->renew_at_pm ||
        a->renew_jitter_pm != b->renew_jitter_pm ||
        a->retry_floor_s != b->retry_floor_s ||
        a->retry_max_s != b->retry_max_s ||
        a->rotate_every != b->rotate_every ||
        a->rotate_after_s != b->rotate_after_s ||
        a->rotate_grace_s != b->rotate_grace_s ||
        !str_eq(a->reload_pidfile, b->reload_pidfile) ||
        a->reload_signal != b->reload_signal ||
        !strv_eq(a->reload_argv, a->n_reload_argv, b->reload_argv,
                 b->n_reload_argv) ||
        a->reload_timeout_s != b->reload_timeout_s ||
        !strv_eq(a->verify_endpoints, a->n_verify_endpoints,
                 b->verify_endpoints, b->n_verify_endpoints) ||
        !str_eq(a->verify_sni, b->verify_sni) ||
        a->verify_timeout_s != b->verify_timeout_s ||
        a->revoke_on_remove != b->revoke_on_remove ||
        a->n_targets != b->n_targets)
        return false;
    for (size_t i = 0; i < a->n_targets; i++)
        if (!target_eq(&a->targets[i], &b->targets[i]))
            return false;
    return true;
}

int cfg_diff(const struct cfg *old, const struct cfg *new,
             enum cfg_change *ret_new, bool *ret_removed, char *err,
             size_t errlen)
{
    /* What the running daemon holds open or was built around. */
    static const struct {
        const char *key;
        size_t off;
        int kind; /* 0 string, 1 mode_t, 2 gid_t, 3 unsigned */
    } fixed[] = {
        { "state-dir", DM(state_dir), 0 },
        { "socket", DM(socket_path), 0 },
        { "abstract-socket", DM(abstract_socket), 0 },
        { "socket-mode", DM(socket_mode), 1 },
        { "socket-group", DM(socket_gid), 2 },
        { "http01-listen", DM(http01_listen), 0 },
        { "admin-socket", DM(admin_socket), 0 },
        { "admin-group", DM(admin_gid), 2 },
        { "renew-workers", DM(renew_workers), 3 },
        { "metrics-listen", DM(metrics_listen), 0 },
        { "metrics-socket", DM(metrics_socket), 0 },
    };

    for (size_t i = 0; i < ELEMENTSOF(fixed); i++) {
        const char *a = (const char *)old + fixed[i].off;
        const char *b = (const char *)new + fixed[i].off;
        bool same;

        switch (fixed[i].kind) {
        case 0:
            same = str_eq(*(char *const *)a, *(char *const *)b);
            break;
        case 1:
            same = *(const mode_t *)a == *(const mode_t *)b;
            break;
        case 2:
            same = *(const gid_t *)a == *(const gid_t *)b;
            break;
        default:
            same = *(const unsigned *)a == *(const unsigned *)b;
            break;
        }
        if (!same) {
            snprintf(err, errlen,
                     "%s: [daemon] %s changed; it cannot change while "
                     "shortcertd runs (restart shortcertd to apply it)",
                     new->path, fixed[i].key);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < new->n_ids; i++) {
        const struct cfg_identity *o =
            cfg_find_identity(old, new->ids[i].name, strlen(new->ids[i].name));

        ret_new[i] = !o                               ? CFG_ADDED
                     : cfg_identity_equal(o, &new->ids[i]) ? CFG_SAME
                                                       : CFG_CHANGED;
    }
    for (size_t i = 0; i < old->n_ids; i++)
        ret_removed[i] = !cfg_find_identity(new, old->ids[i].name,
                                            strlen(old->ids[i].name));
    return 0;
}
