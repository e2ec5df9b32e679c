/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shortcertd.conf: an INI file (docs/shortcertd.conf.md).  [daemon] holds
 * daemon settings, [defaults] holds identity settings shared by all
 * identities, each [identity NAME] section describes one identity, and
 * each [target NAME] section one more delivery of an identity (target.h).
 * Parsed with libinih through our own line reader, so every error names
 * file:line, over-long lines are an error instead of being split, and a
 * bad file never yields a half-read configuration.
 */
#ifndef SHORTCERT_CONFIG_H
#define SHORTCERT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "target.h"
#include "tls-purpose.h"

#define CFG_LINE_MAX 198   /* libinih's buffer (INI_MAX_LINE 200) less \n\0 */
#define CFG_FILE_MAX (1u << 20)
#define CFG_IDENTITIES_MAX 10000
#define CFG_NAMES_MAX 100
#define CFG_ALLOW_MAX 256
#define CFG_ERR_MAX 512

enum cfg_key_type {
    CFG_KEY_EC_P256 = 1,
    CFG_KEY_EC_P384 = 2,
    CFG_KEY_RSA_2048 = 3,
    CFG_KEY_RSA_3072 = 4,
    CFG_KEY_ED25519 = 5,
    CFG_KEY_MAX,
};

/* allowed-key-types is a set of key types: bit (1u << type). */
#define CFG_KEY_BIT(t) (1u << (unsigned)(t))
#define CFG_KEY_ALL                                                          \
    (CFG_KEY_BIT(CFG_KEY_EC_P256) | CFG_KEY_BIT(CFG_KEY_EC_P384) |            \
     CFG_KEY_BIT(CFG_KEY_RSA_2048) | CFG_KEY_BIT(CFG_KEY_RSA_3072) |          \
     CFG_KEY_BIT(CFG_KEY_ED25519))

enum cfg_enroll {
    CFG_ENROLL_ACME = 1,
    CFG_ENROLL_JWK = 2, /* step-ca JWK provisioner, one-time token */
};

/* A file shortcertd writes for services; uid/gid (uid_t)-1 = keep root. */
struct cfg_output {
    char *path;
    uid_t uid;
    gid_t gid;
    mode_t mode;
    unsigned line; /* where path was set */
};

struct cfg_identity {
    char *name;
    unsigned line; /* of the section header */
    char **names;  /* DNS names and IP literals, in order */
    size_t n_names;
    enum tls_role role;
    enum cfg_key_type key_type;
    unsigned key_type_line;     /* where key-type was set (0: default) */
    unsigned allowed_key_types; /* CFG_KEY_BIT set; key_type is in it */
    unsigned allowed_key_types_line;
    enum cfg_enroll enroll;
    char *ca_url;   /* https://host[:port], no trailing slash */
    char *ca_root;  /* PEM file: the only trust anchor */
    unsigned ca_root_line;
    char *acme_provisioner;
    int64_t lifetime_s; /* 0: the CA's default */
    struct cfg_output chain;
    struct cfg_output ref;
    uid_t *allow_uids;
    size_t n_allow_uids;
    gid_t *allow_gids;
    size_t n_allow_gids;

    /* JWK enrollment: the provisioner and where its key comes from (one of
     * a password file, a systemd credential holding the password, a
     * private JWK file) */
    char *jwk_provisioner;
    char *jwk_password_file;
    char *jwk_password_credential;
    char *jwk_key_file;

    /* renewal schedule, per mille of the lifetime */
    unsigned renew_at_pm;     /* renew once this share has passed */
    unsigned renew_jitter_pm; /* moved earlier by up to this share */
    int64_t retry_floor_s;    /* never retry faster */
    int64_t retry_max_s;      /* back-off cap */

    /* key rotation: a new key every N renewals and/or after a duration
     * (0 = never); the old key stays usable for rotate_grace_s, longer
     * while the new certificate is not confirmed served, never past the
     * old certificate's notAfter */
    unsigned rotate_every;
    int64_t rotate_after_s;
    int64_t rotate_grace_s;

    /* delivery: a signal to a pidfile's process, or an argv to exec */
    char *reload_pidfile;
    int reload_signal;
    char **reload_argv; /* NULL-terminated */
    size_t n_reload_argv;
    int64_t reload_timeout_s;
    /* live verification endpoints ("host:port") and the SNI name */
    char **verify_endpoints;
    size_t n_verify_endpoints;
    char *verify_sni;
    int64_t verify_timeout_s;
    /* revoke the certificate at the CA when the identity is retired after
     * a reload removed it */
    bool revoke_on_remove;

    /* further delivery targets ([target NAME] sections naming this
     * identity), in file order, after the implicit one above */
    struct cfg_target *targets;
    size_t n_targets;
};

struct cfg {
    char *path;
    char *state_dir;
    char *socket_path;     /* "" = no path socket */
    char *abstract_socket; /* NULL = none; the name without '@' */
    mode_t socket_mode;
    gid_t socket_gid;      /* (gid_t)-1 = root's */
    char *http01_listen;
    int log_level;
    unsigned max_conns_per_uid;
    char *admin_socket;    /* the admin socket (status, renew, rotate) */
    gid_t admin_gid;       /* (gid_t)-1 = root only */
    unsigned renew_workers;
    char *metrics_listen;  /* "ADDR:PORT" for GET /metrics, NULL = none */
    char *metrics_socket;  /* a Unix socket for GET /metrics, NULL = none */
    int64_t ca_health_interval_s; /* GET /health of each CA this often */
    /* an identity removed by a reload is retired once no service signed
     * with it for this long (or its certificate expired) */
    int64_t retire_after_s;
    struct cfg_identity *ids;
    size_t n_ids;
};

/* Name lookups are injectable so that tests and the fuzz target do not
 * depend on the system's user database.  Return 0 and the id, or -ENOENT. */
struct cfg_resolver {
    int (*user)(const char *name, uid_t *ret);
    int (*group)(const char *name, gid_t *ret);
};
extern const struct cfg_resolver cfg_system_resolver;

/* Parse len bytes of text (named path in messages).  On failure returns
 * -EINVAL (or -ENOMEM) and writes "path:line: what is wrong" to err. */
int cfg_parse_buffer(const char *path, const char *text, size_t len,
                     const struct cfg_resolver *res, struct cfg **ret,
                     char *err, size_t errlen);

/* Read and parse a file (at most CFG_FILE_MAX bytes). */
int cfg_load(const char *path, const struct cfg_resolver *res,
             struct cfg **ret, char *err, size_t errlen);

void cfg_free(struct cfg *c);

/* Checks beyond syntax that read the file system: every ca-root holds at
 * least one PEM certificate.  -EINVAL with "path:line: ..." in err. */
int cfg_check_files(const struct cfg *c, char *err, size_t errlen);

const struct cfg_identity *cfg_find_identity(const struct cfg *c,
                                             const char *name, size_t len);

/* The ACME directory URL of an identity (new string). */
char *cfg_acme_directory(const struct cfg_identity *id);

/* "ec-p256", "rsa-3072", ... for a key type (NULL if out of range), and
 * back (-EINVAL for anything else, RSA below 2048 bits included). */
const char *cfg_key_type_str(enum cfg_key_type t);
int cfg_key_type_from_string(const char *s, enum cfg_key_type *ret);

/* Print the effective configuration (for --dump-config). */
void cfg_dump(const struct cfg *c, FILE *f);

/* Strict parsers shared with other modules.  0 or -EINVAL. */
int cfg_parse_duration(const char *s, int64_t *ret_s);
int cfg_parse_mode(const char *s, mode_t *ret);
bool cfg_name_is_ip(const char *s);
bool cfg_name_valid(const char *s);
/* "66%", "2.5%" -> per mille (0..1000). */
int cfg_parse_percent(const char *s, unsigned *ret_pm);
/* "HUP", "SIGHUP", "USR1", ... -> the signal number, or -EINVAL. */
int cfg_parse_signal(const char *s);
/* Lexical normalisation of an absolute path: no "//", ".", "..", or
 * trailing '/'.  Symlinks are not resolved. */
int cfg_normalize_path(const char *in, char *out, size_t n);

/* Reload: whether two identity sections mean the same (every setting,
 * the [target]s naming it included; line numbers aside). */
bool cfg_identity_equal(const struct cfg_identity *a,
                        const struct cfg_identity *b);

enum cfg_change {
    CFG_SAME = 0, /* the identity's settings are unchanged */
    CFG_CHANGED,  /* the identity exists but a setting changed */
    CFG_ADDED,    /* a new identity */
};

/* Compare a new configuration with the running one.  -EINVAL with
 * "path: [daemon] KEY changed; ..." in err when a daemon setting that
 * cannot change at run time did (the sockets, state-dir, http01-listen,
 * metrics endpoints, renew-workers, admin-group).  Otherwise 0, with
 * ret_new[i] (new->n_ids entries) saying what identity i of new is, and
 * ret_removed[j] (old->n_ids entries) whether identity j of old is gone. */
int cfg_diff(const struct cfg *old, const struct cfg *new,
             enum cfg_change *ret_new, bool *ret_removed, char *err,
             size_t errlen);

#endif
