/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Delivery after a new certificate: make the service actually load it and
 * check that it did.  Reload actions: a signal to a PID read fresh from a
 * pidfile each time, or an exec of an argv list (no shell, no word
 * splitting) with a timeout.  Live verification: a TLS connection to a
 * configured endpoint (host:port, SNI name) whose served leaf is compared
 * with the expected one.  Blocking: runs on the renewal workers.
 *
 * Nothing here logs above debug: every function returns -errno plus a
 * one-line reason in err, and the caller logs the decision.  When errlen >
 * 0, err always ends up a NUL-terminated string: empty on success, the
 * reason on failure (and what is served instead when
 * deliver_check_endpoint() returns 0).
 *
 * Process rules for the caller: the daemon must not set SIGCHLD to SIG_IGN
 * and no other thread may reap with waitpid(-1, ...), or the exit status of
 * an EXEC child is lost (reported as -ECHILD).
 */
#ifndef SHORTCERT_DELIVER_H
#define SHORTCERT_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/types.h>

/* A pidfile holds at most this many bytes ("4194304\n" is 8). */
#define DELIVER_PIDFILE_MAX 64
/* Output of an EXEC child kept for the error text; the rest is drained. */
#define DELIVER_OUTPUT_MAX 4096
/* The whole environment of an EXEC child. */
#define DELIVER_EXEC_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

enum deliver_action_type {
    DELIVER_ACTION_NONE = 0,
    DELIVER_ACTION_SIGNAL, /* kill(pid from pidfile, signo) */
    DELIVER_ACTION_EXEC,   /* fork + execv(argv[0], argv), no shell */
    DELIVER_ACTION_SYSTEMD, /* Manager.ReloadUnit(unit, "replace") over D-Bus */
    DELIVER_ACTION_HAPROXY, /* runtime API: set + commit ssl cert */
};

struct deliver_action {
    enum deliver_action_type type;
    const char *pidfile; /* SIGNAL */
    int signo;           /* SIGNAL, e.g. SIGHUP */
    char *const *argv;   /* EXEC: NULL-terminated, argv[0] an absolute path */
    long timeout_ms;     /* EXEC: kill the child (SIGKILL) after this;
                            SYSTEMD, HAPROXY: give up after this */
    bool pid_first_line; /* SIGNAL: the PID is the first line of a longer
                            file (postgres' postmaster.pid) */
    const char *unit;    /* SYSTEMD: e.g. "nginx.service" */
    const char *socket;  /* HAPROXY: the stats socket ("@name": abstract) */
    const char *cert_path; /* HAPROXY: the crt path as haproxy knows it */
    bool haproxy_master; /* HAPROXY: socket is the master CLI (-S): the
                            commands go to the worker with "@1 " */
    const char *payload; /* HAPROXY: chain then key reference, PEM */
    size_t payload_len;
};

/* Run the action.  SIGNAL: the pidfile is read anew each time (bounded,
 * strict decimal, > 1, the process must exist); EXEC: stdin /dev/null,
 * stdout/stderr captured (bounded) for the error text, a clean environment
 * (PATH only), exit status 0 required.  -errno on failure, reason in err.
 *
 * SIGNAL refuses (see deliver_read_pidfile()): a missing pidfile (-ENOENT),
 * one that is not a regular file or is writable by group or others
 * (-EPERM), content that is not one strict decimal PID (-EBADMSG), a PID
 * that runs no process (-ESRCH), and a pidfile owned by a user other than
 * root whose PID names a process of another user (-EPERM): a service user
 * who can write the pidfile must not be able to make a root daemon signal
 * somebody else's process.  Returns 0 once the signal was sent; it does
 * not wait for the service to act on it.
 *
 * EXEC: the child gets its own process group, the working directory /,
 * default signal dispositions and an empty signal mask (the daemon blocks
 * SIGHUP/SIGTERM and ignores SIGPIPE; those would otherwise be inherited
 * across exec), stdin /dev/null, stdout and stderr on one pipe, no other
 * descriptor, and the environment DELIVER_EXEC_PATH only.  argv[0] is
 * executed as given: no shell, no PATH search.  Returns 0 when it exits
 * with status 0; -EPROTO when it exits non-zero or dies by a signal (err:
 * "'ARGV0' exited with status N: FIRST LINE OF OUTPUT"); -ETIMEDOUT when
 * it ran longer than timeout_ms (its whole process group is then killed
 * with SIGKILL and the child reaped); the execve() errno (-ENOENT,
 * -EACCES, ...) when it could not be executed; -EINVAL for a bad action.
 * Processes the command leaves behind after exiting (a daemon it started)
 * are not touched.  Never blocks much longer than timeout_ms (plus up to
 * 2 s to reap a killed child). */
int deliver_run_action(const struct deliver_action *a, char *err,
                       size_t errlen);

/* Read a pidfile: a regular file of at most DELIVER_PIDFILE_MAX bytes, not
 * writable by group or others, holding one PID as deliver_parse_pid()
 * accepts it.  The file's owner is returned in ret_owner (may be NULL).
 * Writes *ret_pid only on success.  -errno and reason in err otherwise. */
int deliver_read_pidfile(const char *path, pid_t *ret_pid, uid_t *ret_owner,
                         char *err, size_t errlen);
/* The same for a file whose first line is the PID and whose other lines
 * are ignored (postgres' postmaster.pid); at most DELIVER_PIDFILE_LONG_MAX
 * bytes. */
#define DELIVER_PIDFILE_LONG_MAX 4096
int deliver_read_pidfile_first_line(const char *path, pid_t *ret_pid,
                                    uid_t *ret_owner, char *err,
                                    size_t errlen);

/* Parse a PID: decimal digits only, no sign, no blanks, no leading zero,
 * optionally one trailing '\n', value 2..INT_MAX.  -EBADMSG otherwise. */
int deliver_parse_pid(const char *s, size_t len, pid_t *ret_pid);

enum deliver_starttls {
    DELIVER_STARTTLS_NONE = 0,
    DELIVER_STARTTLS_POSTGRES, /* SSLRequest (8 bytes), expect 'S', TLS */
};

struct deliver_endpoint {
    const char *host;    /* address or name to connect to */
    unsigned port;
    const char *sni;     /* server name to send (NULL: none) */
    enum deliver_starttls starttls;
};

/* Connect (TLS, no certificate verification: we compare), fetch the leaf
 * the endpoint serves and compare it with want (the full DER, not only the
 * serial).  Returns 1 if it serves want, 0 if it serves another certificate
 * (its serial in got_serial, hex), -errno if it could not be reached (reason
 * in err).  Bounded by timeout_ms.
 *
 * Details: every address getaddrinfo() returns for host is tried in turn
 * (each gets at least an equal share of the time left); the endpoint must
 * speak TLS at once unless starttls says otherwise (PostgreSQL: the
 * 8-byte SSLRequest, then one byte 'S', else -EPROTO); TLS 1.2 and
 * 1.3 are offered; sni is not sent when it is an IP address literal (RFC
 * 6066) or empty.  got_serial gets upper-case hex like `openssl x509
 * -serial` (may be NULL); on 0, err says which serial is served instead.
 * Errors: -ETIMEDOUT (connect or handshake not done in time),
 * -ECONNREFUSED and the other connect(2) errors, -ENXIO (the name does not
 * resolve), -EPROTO (the TLS handshake failed; OpenSSL's reason in err),
 * -ECONNRESET (the peer closed during the handshake), -EINVAL.  Name
 * resolution itself is bounded by the resolver (/etc/resolv.conf
 * timeouts), not by timeout_ms: configure an address, or a name in
 * /etc/hosts, where that matters.  SIGPIPE is blocked in the calling
 * thread while it runs. */
int deliver_check_endpoint(const struct deliver_endpoint *e, X509 *want,
                           long timeout_ms, char *got_serial,
                           size_t serial_len, char *err, size_t errlen);

/* Parse "host:port", "[v6]:port"; helper for the configuration.  host: a
 * name of letters, digits, '-', '.', '_' (at most 253), or an IPv4 address;
 * an IPv6 address only in brackets (what inet_pton() accepts, no zone).
 * port: 1..65535, decimal, no leading zero.  Writes host and *port only on
 * success; -EINVAL for bad syntax, -ENAMETOOLONG when host does not fit
 * hostlen. */
int deliver_parse_endpoint(const char *s, char *host, size_t hostlen,
                           unsigned *port);

/* HAProxy runtime API (stats socket, "level admin").  The reply to
 * "set ssl cert" must say "Transaction created/updated for certificate",
 * the reply to "commit ssl cert" must end the commit with "Success!".
 * Returns 0 when it does, -EPROTO otherwise with the first line that
 * explains (control characters replaced) in err.  The reply is outside
 * bytes: bounded, never interpreted beyond these checks. */
enum deliver_haproxy_cmd {
    DELIVER_HAPROXY_SET = 1,
    DELIVER_HAPROXY_COMMIT,
};
#define DELIVER_HAPROXY_REPLY_MAX 16384
int deliver_haproxy_parse_reply(enum deliver_haproxy_cmd cmd, const char *buf,
                                size_t len, char *err, size_t errlen);

/* Check a payload for the runtime API: non-empty, no NUL, no blank line
 * (haproxy ends the payload at the first empty line), at most 1 MiB. */
int deliver_haproxy_check_payload(const char *p, size_t len);

/* "name.service", "foo@bar.socket": 1..255 characters of [A-Za-z0-9:_.@\-]
 * with a '.' suffix.  0 or -EINVAL. */
int deliver_check_unit_name(const char *unit);

#endif
