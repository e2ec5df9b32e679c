/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Delivery after a new certificate (see deliver.h): the reload actions
 * (a signal to the PID in a pidfile, or an exec with a timeout) and the
 * live check of the leaf an endpoint serves.
 *
 * Trust boundary: shortcertd runs as root; what it reads here comes from
 * less trusted places.  A pidfile may be writable by the service's user,
 * so its content is parsed strictly and a non-root pidfile may only name a
 * process of its own owner.  The output of an exec'd command and the
 * certificate a TLS endpoint sends are only compared, measured and quoted
 * (control characters replaced) in the error text, never interpreted.
 * Every wait is bounded by a deadline on CLOCK_MONOTONIC.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "build-config.h"
#if HAVE_LIBSYSTEMD
#include <systemd/sd-bus.h>
#endif

#include "deliver.h"
#include "log.h"
#include "macro.h"

/* How long to wait for a SIGKILLed child to be reaped (it may sit in an
 * uninterruptible sleep) before giving up on it. */
#define DELIVER_REAP_MS 2000
/* Without a pidfd, how often to look for the child's exit. */
#define DELIVER_POLL_SLICE_MS 20
/* Output read after the child exited (a grandchild may keep writing). */
#define DELIVER_DRAIN_AFTER_EXIT 65536

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, clamped to [0, INT_MAX] for poll(). */
static int left_ms(int64_t deadline)
{
    int64_t l = deadline - now_ms();

    if (l <= 0)
        return 0;
    return l > INT_MAX ? INT_MAX : (int)l;
}

static const char *errstr(int r, char *buf, size_t n)
{
    return strerror_r(r < 0 ? -r : r, buf, n);
}

/* ---------------------------------------------------------------------- */
/* SIGNAL */

int deliver_parse_pid(const char *s, size_t len, pid_t *ret_pid)
{
    long long v = 0;
    size_t i;

    if (!s || !ret_pid)
        return -EINVAL;
    if (len > 0 && s[len - 1] == '\n')
        len--;
    if (len == 0 || s[0] == '0')
        return -EBADMSG;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EBADMSG;
        v = v * 10 + (s[i] - '0');
        if (v > INT_MAX)
            return -EBADMSG;
    }
    /* 1 is init: a reload signal to it is never what was meant. */
    if (v <= 1)
        return -EBADMSG;
    *ret_pid = (pid_t)v;
    return 0;
}

/* first_line: the PID is the file's first line and the rest is ignored
 * (postmaster.pid); the file may then be up to DELIVER_PIDFILE_LONG_MAX. */
static int read_pidfile(const char *path, bool first_line, pid_t *ret_pid,
                        uid_t *ret_owner, char *err, size_t errlen)
{
    char buf[DELIVER_PIDFILE_LONG_MAX + 1], eb[128];
    size_t max = first_line ? DELIVER_PIDFILE_LONG_MAX : DELIVER_PIDFILE_MAX;
    _cleanup_close_ int fd = -1;
    struct stat st;
    size_t len = 0;
    pid_t pid;
    int r;

    if (err && errlen)
        err[0] = '\0';
    if (!path || !ret_pid) {
        seterr(err, errlen, "no pidfile given");
        return -EINVAL;
    }
    /* O_NONBLOCK: a FIFO planted at the path must not hang the worker; it
     * is refused by the S_ISREG test below. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        r = negerrno();
        seterr(err, errlen, "cannot open pidfile '%s': %s", path,
               errstr(r, eb, sizeof(eb)));
        return r;
    }
    if (fstat(fd, &st) < 0) {
        r = negerrno();
        seterr(err, errlen, "cannot stat pidfile '%s': %s", path,
               errstr(r, eb, sizeof(eb)));
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        seterr(err, errlen, "pidfile '%s' is not a regular file", path);
        return -EPERM;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        seterr(err, errlen, "pidfile '%s' is writable by group or others "
               "(mode %04o)", path, (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    /* Read one byte more than allowed, to tell "too long" from "exact". */
    while (len < max + 1) {
        ssize_t n = read(fd, buf + len, max + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = negerrno();
            seterr(err, errlen, "cannot read pidfile '%s': %s", path,
                   errstr(r, eb, sizeof(eb)));
            return r;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > max) {
        seterr(err, errlen, "pidfile '%s' is longer than %zu bytes", path,
               max);
        return -EBADMSG;
    }
    if (len == 0) {
        seterr(err, errlen, "pidfile '%s' is empty", path);
        return -EBADMSG;
    }
    if (first_line) {
        const char *nl = memchr(buf, '\n', len);

        if (nl)
            len = (size_t)(nl - buf) + 1;
    }
    r = deliver_parse_pid(buf, len, &pid);
    if (r < 0) {
        seterr(err, errlen, "pidfile '%s' does not hold a process ID "
               "(decimal, greater than 1, nothing else)", path);
        return r;
    }
    *ret_pid = pid;
    if (ret_owner)
        *ret_owner = st.st_uid;
    return 0;
}

int deliver_read_pidfile(const char *path, pid_t *ret_pid, uid_t *ret_owner,
                         char *err, size_t errlen)
{
    return read_pidfile(path, false, ret_pid, ret_owner, err, errlen);
}

int deliver_read_pidfile_first_line(const char *path, pid_t *ret_pid,
                                    uid_t *ret_owner, char *err,
                                    size_t errlen)
{
    return read_pidfile(path, true, ret_pid, ret_owner, err, errlen);
}

/* The effective uid of a process: the owner of /proc/PID (root for a
 * process that is not dumpable, which makes the check below stricter, never
 * looser). */
static int proc_uid(pid_t pid, uid_t *ret)
{
    char path[32];
    struct stat st;

    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    if (stat(path, &st) < 0)
        return negerrno();
    *ret = st.st_uid;
    return 0;
}

static int run_signal(const struct deliver_action *a, char *err, size_t errlen)
{
    char eb[128];
    uid_t owner, puid;
    pid_t pid;
    int r;

    if (a->signo <= 0 || a->signo >= NSIG) {
        seterr(err, errlen, "invalid signal number %d", a->signo);
        return -EINVAL;
    }
    r = read_pidfile(a->pidfile, a->pid_first_line, &pid, &owner, err, errlen);
    if (r < 0)
        return r;
    if (kill(pid, 0) < 0) {
        r = negerrno();
        if (r == -ESRCH)
            seterr(err, errlen, "pidfile '%s' names process %d, which does "
                   "not exist (stale pidfile: is the service running?)",
                   a->pidfile, (int)pid);
        else
            seterr(err, errlen, "cannot signal process %d from pidfile '%s': "
                   "%s", (int)pid, a->pidfile, errstr(r, eb, sizeof(eb)));
        return r;
    }
    /* Trust boundary: a pidfile that the service's user owns (and so can
     * write) may only name that user's own processes. */
    if (owner != 0) {
        r = proc_uid(pid, &puid);
        if (r < 0) {
            seterr(err, errlen, "cannot look up the owner of process %d: %s",
                   (int)pid, errstr(r, eb, sizeof(eb)));
            return r;
        }
        if (puid != owner) {
            seterr(err, errlen, "pidfile '%s' is owned by uid %u but names "
                   "process %d of uid %u; refusing to signal it", a->pidfile,
                   (unsigned)owner, (int)pid, (unsigned)puid);
            return -EPERM;
        }
    }
    if (kill(pid, a->signo) < 0) {
        r = negerrno();
        seterr(err, errlen, "cannot send signal %d to process %d: %s",
               a->signo, (int)pid, errstr(r, eb, sizeof(eb)));
        return r;
    }
    log_debug("Sent signal %d to process %d from '%s'", a->signo, (int)pid,
              a->pidfile);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* EXEC */

static char exec_path_env[] = DELIVER_EXEC_PATH;
static char *const exec_envp[] = { exec_path_env, NULL };

/* Between fork() and execve(): async-signal-safe calls only (the daemon is
 * multi-threaded; another thread may have held malloc's lock at fork).
 * statw is close-on-exec: it reports an execve() failure as an errno and
 * is closed by a successful execve(). */
static _Noreturn void child_exec(char *const *argv, int devnull, int outw,
                                 int statw, int maxfd)
{
    struct sigaction sa;
    sigset_t none;
    int s, fd, e;

    (void)setpgid(0, 0);
    /* Handlers are reset by execve(), ignored signals and the mask are
     * not: the daemon ignores SIGPIPE and blocks SIGHUP/SIGTERM/SIGINT. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (s = 1; s < NSIG; s++)
        (void)sigaction(s, &sa, NULL);
    (void)sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);

    if (dup2(devnull, STDIN_FILENO) < 0 || dup2(outw, STDOUT_FILENO) < 0 ||
        dup2(outw, STDERR_FILENO) < 0 || chdir("/") < 0)
        goto fail;
    /* Every descriptor but 0-2 and statw (which is >= 3) goes. */
    if ((statw > 3 && close_range(3, (unsigned)statw - 1, 0) < 0) ||
        close_range((unsigned)statw + 1, ~0U, 0) < 0) {
        for (fd = 3; fd < maxfd; fd++)
            if (fd != statw)
                (void)close(fd);
    }
    (void)execve(argv[0], argv, exec_envp);
fail:
    e = errno;
    (void)!write(statw, &e, sizeof(e));
    _exit(127);
}

/* Keep fds out of 0-2, so that the child's dup2() onto 0-2 cannot clobber
 * one it still needs (only possible if the daemon runs with 0-2 closed). */
static int move_above_stdio(int *fd)
{
    int n;

    if (*fd > STDERR_FILENO)
        return 0;
    n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (n < 0)
        return negerrno();
    (void)close(*fd);
    *fd = n;
    return 0;
}

struct outbuf {
    char data[DELIVER_OUTPUT_MAX];
    size_t len;
    size_t dropped;
};

/* Read what is available (the fd is non-blocking); keeps the first
 * DELIVER_OUTPUT_MAX bytes.  Returns 1 at EOF, 0 when it would block,
 * stops after max bytes. */
static int drain(int fd, struct outbuf *o, size_t max)
{
    char scratch[4096];
    size_t got = 0;

    while (got < max) {
        size_t room = sizeof(o->data) - o->len;
        char *dst = room ? o->data + o->len : scratch;
        size_t want = room ? room : sizeof(scratch);
        ssize_t n = read(fd, dst, want);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 0 : 1; /* an error ends the stream */
        if (n == 0)
            return 1;
        if (room)
            o->len += (size_t)n;
        else
            o->dropped += (size_t)n;
        got += (size_t)n;
    }
    return 0;
}

/* The first non-empty line of the output, control characters replaced. */
static void first_line(const struct outbuf *o, char *buf, size_t n)
{
    size_t i = 0, j = 0;

    while (i < o->len && (o->data[i] == '\n' || o->data[i] == '\r'))
        i++;
    for (; i < o->len && j + 1 < n; i++) {
        unsigned char c = (unsigned char)o->data[i];

        if (c == '\n' || c == '\r')
            break;
        buf[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (n)
        buf[j] = '\0';
    if (j == 0 && n)
        snprintf(buf, n, "(no output)");
}

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* Wait for pid up to ms milliseconds.  1 when reaped (status set), 0 when
 * still running, -errno on error. */
static int reap(pid_t pid, int *status, int pidfd, int ms)
{
    int64_t deadline = now_ms() + ms;

    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);

        if (w == pid)
            return 1;
        if (w < 0 && errno != EINTR)
            return negerrno();
        if (w == 0 && left_ms(deadline) == 0)
            return 0;
        if (w == 0) {
            struct pollfd p = { .fd = pidfd, .events = POLLIN };
            int slice = left_ms(deadline);

            if (pidfd < 0 && slice > DELIVER_POLL_SLICE_MS)
                slice = DELIVER_POLL_SLICE_MS;
            (void)poll(&p, pidfd >= 0 ? 1 : 0, slice);
        }
    }
}

static int run_exec(const struct deliver_action *a, char *err, size_t errlen)
{
    _cleanup_close_ int devnull = -1, outr = -1, outw = -1, statr = -1,
                        statw = -1, pidfd = -1;
    char line[256], eb[128];
    const char *prog;
    struct outbuf *o = NULL;
    struct rlimit rl;
    int64_t deadline;
    int maxfd = 65536, status = 0, r, execerr = 0, abort_r = -ETIMEDOUT;
    bool timed_out = false;
    pid_t pid;

    if (!a->argv || !a->argv[0] || a->argv[0][0] != '/') {
        seterr(err, errlen, "the command must be an absolute path");
        return -EINVAL;
    }
    prog = a->argv[0];
    if (a->timeout_ms <= 0) {
        seterr(err, errlen, "invalid timeout %ld ms", a->timeout_ms);
        return -EINVAL;
    }
    o = calloc(1, sizeof(*o));
    if (!o) {
        seterr(err, errlen, "out of memory");
        return -ENOMEM;
    }
    {
        int p[2], q[2];

        if (pipe2(p, O_CLOEXEC) < 0) {
            r = negerrno();
            goto sys_fail;
        }
        outr = p[0];
        outw = p[1];
        if (pipe2(q, O_CLOEXEC) < 0) {
            r = negerrno();
            goto sys_fail;
        }
        statr = q[0];
        statw = q[1];
    }
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (devnull < 0) {
        r = negerrno();
        goto sys_fail;
    }
    if ((r = move_above_stdio(&devnull)) < 0 ||
        (r = move_above_stdio(&outw)) < 0 || (r = move_above_stdio(&statw)) < 0)
        goto sys_fail;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)maxfd)
        maxfd = (int)rl.rlim_cur;

    deadline = now_ms() + a->timeout_ms;
    pid = fork();
    if (pid < 0) {
        r = negerrno();
        goto sys_fail;
    }
    if (pid == 0)
        child_exec(a->argv, devnull, outw, statw, maxfd);

    /* Parent.  Both sides set the group, so it exists before either goes
     * on (EACCES once the child has exec'd is fine). */
    (void)setpgid(pid, pid);
    closep(&outw);
    closep(&statw);
    closep(&devnull);
    outw = statw = devnull = -1;
    pidfd = pidfd_open_compat(pid); /* -1 on old kernels: poll in slices */
    (void)fcntl(outr, F_SETFL, O_NONBLOCK);

    for (;;) {
        struct pollfd p[2];
        int n = 0, slice, w;

        w = reap(pid, &status, -1, 0);
        if (w != 0) {
            if (w < 0) {
                r = w;
                seterr(err, errlen, "cannot wait for '%s': %s", prog,
                       errstr(r, eb, sizeof(eb)));
                goto out;
            }
            break;
        }
        slice = left_ms(deadline);
        if (slice == 0) {
            timed_out = true;
            break;
        }
        if (outr >= 0)
            p[n++] = (struct pollfd){ .fd = outr, .events = POLLIN };
        if (pidfd >= 0)
            p[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
        else if (slice > DELIVER_POLL_SLICE_MS)
            slice = DELIVER_POLL_SLICE_MS;
        if (poll(p, (nfds_t)n, slice) < 0 && errno != EINTR) {
            /* Cannot wait properly (ENOMEM): stop the child rather than
             * spin or block. */
            abort_r = negerrno();
            timed_out = true;
            break;
        }
        /* Bounded per round, so a child that floods the pipe cannot keep
         * us away from the deadline. */
        if (outr >= 0 && p[0].revents && drain(outr, o, 65536) == 1) {
            closep(&outr);
            outr = -1;
        }
    }

    if (timed_out) {
        /* The child is not reaped yet, so its pid, and the group named
         * after it, cannot have been reused. */
        (void)kill(-pid, SIGKILL);
        (void)kill(pid, SIGKILL);
        r = reap(pid, &status, pidfd, DELIVER_REAP_MS);
        if (outr >= 0)
            (void)drain(outr, o, DELIVER_DRAIN_AFTER_EXIT);
        first_line(o, line, sizeof(line));
        if (abort_r != -ETIMEDOUT)
            seterr(err, errlen, "cannot wait for '%s' (%s); it was killed",
                   prog, errstr(abort_r, eb, sizeof(eb)));
        else
            seterr(err, errlen, "'%s' did not finish within %ld ms and was "
                   "killed%s: %s", prog, a->timeout_ms,
                   r == 1 ? "" : " (not reaped yet)", line);
        r = abort_r;
        goto out;
    }

    if (outr >= 0)
        (void)drain(outr, o, DELIVER_DRAIN_AFTER_EXIT);
    first_line(o, line, sizeof(line));
    if (read(statr, &execerr, sizeof(execerr)) == (ssize_t)sizeof(execerr) &&
        execerr > 0) {
        r = -execerr;
        seterr(err, errlen, "cannot execute '%s': %s", prog,
               errstr(r, eb, sizeof(eb)));
        goto out;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        log_debug("'%s' exited with status 0 (%zu bytes of output)", prog,
                  o->len + o->dropped);
        r = 0;
        goto out;
    }
    if (WIFEXITED(status))
        seterr(err, errlen, "'%s' exited with status %d: %s", prog,
               WEXITSTATUS(status), line);
    else if (WIFSIGNALED(status))
        seterr(err, errlen, "'%s' was killed by signal %d (SIG%s): %s", prog,
               WTERMSIG(status),
               sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status))
                                              : "?",
               line);
    else
        seterr(err, errlen, "'%s' ended with wait status 0x%x", prog,
               (unsigned)status);
    r = -EPROTO;
    goto out;

sys_fail:
    seterr(err, errlen, "cannot run '%s': %s", prog,
           errstr(r, eb, sizeof(eb)));
out:
    free(o);
    return r;
}

static int run_systemd(const struct deliver_action *a, char *err,
                       size_t errlen);
static int run_haproxy(const struct deliver_action *a, char *err,
                       size_t errlen);

int deliver_run_action(const struct deliver_action *a, char *err,
                       size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!a) {
        seterr(err, errlen, "no action");
        return -EINVAL;
    }
    switch (a->type) {
    case DELIVER_ACTION_SIGNAL:
        return run_signal(a, err, errlen);
    case DELIVER_ACTION_EXEC:
        return run_exec(a, err, errlen);
    case DELIVER_ACTION_SYSTEMD:
        return run_systemd(a, err, errlen);
    case DELIVER_ACTION_HAPROXY:
        return run_haproxy(a, err, errlen);
    case DELIVER_ACTION_NONE:
        return 0;
    }
    seterr(err, errlen, "unknown action type %d", (int)a->type);
    return -EINVAL;
}

/* ---------------------------------------------------------------------- */
/* Endpoint check */

/* Block SIGPIPE in this thread while libssl writes to a socket the peer
 * may have closed (its socket BIO uses write(), not send(MSG_NOSIGNAL)),
 * and swallow one it raised.  The daemon also ignores SIGPIPE; this keeps
 * the function safe for other callers (tests, tools). */
struct sigpipe_guard {
    sigset_t old;
    bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
    sigset_t set, pending;

    (void)sigemptyset(&set);
    (void)sigaddset(&set, SIGPIPE);
    (void)pthread_sigmask(SIG_BLOCK, &set, &g->old);
    (void)sigemptyset(&pending);
    (void)sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
    sigset_t set, pending;

    (void)sigemptyset(&set);
    (void)sigaddset(&set, SIGPIPE);
    if (!g->was_pending && sigismember(&g->old, SIGPIPE) != 1) {
        static const struct timespec zero = { 0, 0 };

        (void)sigemptyset(&pending);
        if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1)
            while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
                ;
    }
    (void)pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static bool is_ip_literal(const char *s)
{
    unsigned char b[16];

    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static void fmt_addr(const struct addrinfo *ai, char *buf, size_t n)
{
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, (socklen_t)n, NULL, 0,
                    NI_NUMERICHOST) != 0)
        snprintf(buf, n, "?");
}

/* Non-blocking connect to the first address of host:port that answers;
 * ret_fd stays non-blocking. */
static int connect_any(const char *host, unsigned port, int64_t deadline,
                       int *ret_fd, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL, *ai;
    char service[8], addr[INET6_ADDRSTRLEN], eb[128];
    int r = -EHOSTUNREACH, g, count = 0;

    /* No AI_ADDRCONFIG: glibc ignores loopback when deciding which
     * families are configured, which breaks a loopback-only host. */
    snprintf(service, sizeof(service), "%u", port);
    g = getaddrinfo(host, service, &hints, &res);
    if (g != 0) {
        r = g == EAI_SYSTEM ? negerrno()
            : (g == EAI_NONAME
#ifdef EAI_NODATA
               || g == EAI_NODATA
#endif
               ) ? -ENXIO
            : g == EAI_AGAIN ? -EAGAIN
            : g == EAI_MEMORY ? -ENOMEM
                              : -EIO;
        seterr(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(g));
        return r;
    }
    for (ai = res; ai; ai = ai->ai_next)
        count++;
    snprintf(addr, sizeof(addr), "?");
    for (ai = res; ai; ai = ai->ai_next, count--) {
        _cleanup_close_ int fd = -1;
        struct pollfd p;
        socklen_t sl = sizeof(int);
        int soerr = 0, budget, left = left_ms(deadline);

        fmt_addr(ai, addr, sizeof(addr));
        if (left == 0) {
            r = -ETIMEDOUT;
            break;
        }
        /* An address that swallows SYNs must not eat the whole budget of
         * the ones after it. */
        budget = left / count;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            r = negerrno();
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            *ret_fd = TAKE_FD(fd);
            freeaddrinfo(res);
            return 0;
        }
        if (errno != EINPROGRESS) {
            r = negerrno();
            continue;
        }
        p = (struct pollfd){ .fd = fd, .events = POLLOUT };
        for (;;) {
            int n = poll(&p, 1, budget);

            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                r = n == 0 ? -ETIMEDOUT : negerrno();
                break;
            }
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                r = negerrno();
            else if (soerr != 0)
                r = -soerr;
            else
                r = 0;
            break;
        }
        if (r == 0) {
            *ret_fd = TAKE_FD(fd);
            freeaddrinfo(res);
            return 0;
        }
    }
    freeaddrinfo(res);
    seterr(err, errlen, "cannot connect to %s port %u (%s): %s", host, port,
           addr, errstr(r, eb, sizeof(eb)));
    return r;
}

/* Run SSL_connect() on a non-blocking socket until done or the deadline. */
static int tls_handshake(SSL *ssl, int fd, int64_t deadline, const char *what,
                         long timeout_ms, char *err, size_t errlen)
{
    char eb[128];

    for (;;) {
        struct pollfd p = { .fd = fd };
        int rc, e, n;

        ERR_clear_error();
        errno = 0;
        rc = SSL_connect(ssl);
        if (rc == 1)
            return 0;
        e = SSL_get_error(ssl, rc);
        if (e == SSL_ERROR_WANT_READ) {
            p.events = POLLIN;
        } else if (e == SSL_ERROR_WANT_WRITE) {
            p.events = POLLOUT;
        } else if (e == SSL_ERROR_SSL) {
            unsigned long ec = ERR_peek_last_error();
            const char *reason = ec ? ERR_reason_error_string(ec) : NULL;

            log_openssl_errors("TLS handshake");
            seterr(err, errlen, "TLS handshake with %s failed: %s", what,
                   reason ? reason : "unknown error");
            return -EPROTO;
        } else if (e == SSL_ERROR_SYSCALL && errno != 0) {
            int r = negerrno();

            seterr(err, errlen, "TLS handshake with %s failed: %s", what,
                   errstr(r, eb, sizeof(eb)));
            ERR_clear_error();
            return r;
        } else {
            seterr(err, errlen, "%s closed the connection during the TLS "
                   "handshake", what);
            ERR_clear_error();
            return -ECONNRESET;
        }
        do
            n = poll(&p, 1, left_ms(deadline));
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            int r = negerrno();

            seterr(err, errlen, "poll: %s", errstr(r, eb, sizeof(eb)));
            return r;
        }
        if (n == 0) {
            seterr(err, errlen, "TLS handshake with %s did not complete "
                   "within %ld ms", what, timeout_ms);
            return -ETIMEDOUT;
        }
    }
}

/* Write all of buf on a non-blocking socket before the deadline. */
/* Wait until fd is ready for events or the deadline: 0, -ETIMEDOUT or
 * -errno (EINTR counts as ready: the caller retries its call). */
static int wait_io(int fd, short events, int64_t deadline)
{
    struct pollfd pf = { .fd = fd, .events = events };
    int k = poll(&pf, 1, left_ms(deadline));

    if (k == 0)
        return -ETIMEDOUT;
    if (k < 0 && errno != EINTR)
        return negerrno();
    return 0;
}

static int send_all(int fd, const void *buf, size_t len, int64_t deadline)
{
    const char *p = buf;
    int r;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return negerrno();
        r = wait_io(fd, POLLOUT, deadline);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Read what arrives until EOF, max bytes or the deadline.  Returns the
 * number of bytes read (EOF seen) or -errno; -EMSGSIZE when more than max
 * arrived. */
static ssize_t recv_until_eof(int fd, char *buf, size_t max, int64_t deadline)
{
    size_t len = 0;

    for (;;) {
        ssize_t n = recv(fd, buf + len, max - len, 0);

        if (n == 0)
            return (ssize_t)len;
        if (n > 0) {
            len += (size_t)n;
            if (len == max)
                return -EMSGSIZE;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return negerrno();
        int r = wait_io(fd, POLLIN, deadline);

        if (r < 0)
            return r;
    }
}

/* PostgreSQL: the SSLRequest (length 8, code 80877103 = 0x04d2162f) must be
 * answered by one byte, 'S', before the TLS handshake; 'N' means the
 * server does not do SSL. */
static int starttls_postgres(int fd, int64_t deadline, const char *what,
                             char *err, size_t errlen)
{
    static const unsigned char req[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
    char eb[128];
    unsigned char c;
    int r;

    r = send_all(fd, req, sizeof(req), deadline);
    if (r < 0) {
        seterr(err, errlen, "cannot send the PostgreSQL SSLRequest to %s: %s",
               what, errstr(r, eb, sizeof(eb)));
        return r;
    }
    for (;;) {
        ssize_t n = recv(fd, &c, 1, 0);

        if (n == 1)
            break;
        if (n == 0) {
            seterr(err, errlen, "%s closed the connection after the "
                   "PostgreSQL SSLRequest", what);
            return -ECONNRESET;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            r = negerrno();
            seterr(err, errlen, "no answer to the PostgreSQL SSLRequest from "
                   "%s: %s", what, errstr(r, eb, sizeof(eb)));
            return r;
        }
        r = wait_io(fd, POLLIN, deadline);
        if (r < 0) {
            seterr(err, errlen, "no answer to the PostgreSQL SSLRequest from "
                   "%s: %s", what, r == -ETIMEDOUT ? "timed out"
                                                  : errstr(r, eb, sizeof(eb)));
            return r;
        }
    }
    if (c == 'S')
        return 0;
    if (c == 'N')
        seterr(err, errlen, "%s answered the PostgreSQL SSLRequest with 'N': "
               "SSL is off (ssl = on in postgresql.conf?)", what);
    else
        seterr(err, errlen, "%s answered the PostgreSQL SSLRequest with byte "
               "0x%02x, not 'S': is it PostgreSQL?", what, (unsigned)c);
    return -EPROTO;
}

static void serial_hex(X509 *x, char *buf, size_t n)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;

    if (buf && n)
        snprintf(buf, n, "%s", hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
}

int deliver_check_endpoint(const struct deliver_endpoint *e, X509 *want,
                           long timeout_ms, char *got_serial,
                           size_t serial_len, char *err, size_t errlen)
{
    _cleanup_close_ int fd = -1;
    struct sigpipe_guard guard;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    char what[300], gs[128], ws[128];
    int64_t deadline;
    X509 *leaf;
    int r;

    if (err && errlen)
        err[0] = '\0';
    if (!e || !e->host || !e->host[0] || e->port == 0 || e->port > 65535 ||
        !want || timeout_ms <= 0) {
        seterr(err, errlen, "invalid endpoint check");
        return -EINVAL;
    }
    deadline = now_ms() + timeout_ms;
    snprintf(what, sizeof(what), "%s port %u", e->host, e->port);

    r = connect_any(e->host, e->port, deadline, &fd, err, errlen);
    if (r < 0)
        return r;
    if (e->starttls == DELIVER_STARTTLS_POSTGRES) {
        r = starttls_postgres(fd, deadline, what, err, errlen);
        if (r < 0)
            return r;
    }

    ctx = SSL_CTX_new(TLS_client_method());
    ssl = ctx ? SSL_new(ctx) : NULL;
    if (!ssl || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_set_min_proto_version(ssl, TLS1_2_VERSION) != 1 ||
        SSL_set_fd(ssl, fd) != 1) {
        log_openssl_errors("TLS client setup");
        seterr(err, errlen, "cannot set up a TLS client");
        r = -ENOMEM;
        goto out;
    }
    /* No verification on purpose: we compare the leaf with the one we
     * delivered, which is a stronger statement than "some valid cert". */
    SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    if (e->sni && e->sni[0] && !is_ip_literal(e->sni) &&
        SSL_set_tlsext_host_name(ssl, e->sni) != 1) {
        log_openssl_errors("SNI");
        seterr(err, errlen, "invalid server name '%s'", e->sni);
        r = -EINVAL;
        goto out;
    }

    sigpipe_block(&guard);
    r = tls_handshake(ssl, fd, deadline, what, timeout_ms, err, errlen);
    if (r == 0) {
        leaf = SSL_get0_peer_certificate(ssl);
        if (!leaf) {
            seterr(err, errlen, "%s sent no certificate", what);
            r = -EPROTO;
        } else if (X509_cmp(leaf, want) == 0) {
            r = 1;
        } else {
            serial_hex(leaf, gs, sizeof(gs));
            serial_hex(want, ws, sizeof(ws));
            if (got_serial && serial_len)
                snprintf(got_serial, serial_len, "%s", gs);
            seterr(err, errlen, "%s serves serial %s, not the expected %s",
                   what, gs, ws);
            r = 0;
        }
        /* Best effort close_notify; the socket is non-blocking. */
        (void)SSL_shutdown(ssl);
    }
    sigpipe_restore(&guard);
out:
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return r;
}

/* ---------------------------------------------------------------------- */
/* host:port */

static int parse_port(const char *s, unsigned *ret)
{
    unsigned v = 0;
    size_t i, n = strlen(s);

    if (n == 0 || n > 5 || s[0] == '0')
        return -EINVAL;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -EINVAL;
    *ret = v;
    return 0;
}

static bool host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

int deliver_parse_endpoint(const char *s, char *host, size_t hostlen,
                           unsigned *port)
{
    char h[256];
    const char *hs, *he, *ps;
    unsigned char b[16];
    unsigned pt;
    size_t hl, i;

    if (!s || !host || !port)
        return -EINVAL;
    if (s[0] == '[') {
        hs = s + 1;
        he = strchr(hs, ']');
        if (!he || he[1] != ':')
            return -EINVAL;
        ps = he + 2;
    } else {
        hs = s;
        he = strchr(s, ':');
        if (!he || strchr(he + 1, ':'))
            return -EINVAL; /* a bare IPv6 address needs brackets */
        ps = he + 1;
    }
    hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(h) || hl > 253)
        return -EINVAL;
    memcpy(h, hs, hl);
    h[hl] = '\0';
    if (s[0] == '[') {
        if (inet_pton(AF_INET6, h, b) != 1)
            return -EINVAL;
    } else {
        for (i = 0; i < hl; i++)
            if (!host_char_ok(h[i]))
                return -EINVAL;
        if (h[0] == '-' || h[0] == '.')
            return -EINVAL;
    }
    if (parse_port(ps, &pt) < 0)
        return -EINVAL;
    if (hl >= hostlen)
        return -ENAMETOOLONG;
    memcpy(host, h, hl + 1);
    *port = pt;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* HAPROXY: the runtime API on the stats socket */

/* Copy the first line of buf that is not blank, control characters
 * replaced, for an error message. */
static void quote_line(const char *buf, size_t len, char *out, size_t n)
{
    size_t i = 0, o = 0;

    if (!out || n == 0)
        return;
    while (i < len && (buf[i] == '\n' || buf[i] == '\r' || buf[i] == ' '))
        i++;
    for (; i < len && buf[i] != '\n' && o + 1 < n && o < 200; i++) {
        unsigned char c = (unsigned char)buf[i];

        out[o++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    out[o] = '\0';
    if (o == 0)
        snprintf(out, n, "(empty reply)");
}

static bool has_line_starting(const char *buf, size_t len, const char *word)
{
    size_t wl = strlen(word);

    for (size_t i = 0; i < len; i++) {
        if (i > 0 && buf[i - 1] != '\n')
            continue;
        if (len - i >= wl && memcmp(buf + i, word, wl) == 0)
            return true;
    }
    return false;
}

int deliver_haproxy_parse_reply(enum deliver_haproxy_cmd cmd, const char *buf,
                                size_t len, char *err, size_t errlen)
{
    char line[256];

    if (err && errlen)
        err[0] = '\0';
    if (!buf || len > DELIVER_HAPROXY_REPLY_MAX) {
        seterr(err, errlen, "haproxy reply missing or too long");
        return -EPROTO;
    }
    switch (cmd) {
    case DELIVER_HAPROXY_SET:
        /* "Transaction created for certificate PATH!" or "...updated..." */
        if (has_line_starting(buf, len, "Transaction created for certificate ") ||
            has_line_starting(buf, len, "Transaction updated for certificate "))
            return 0;
        break;
    case DELIVER_HAPROXY_COMMIT:
        /* "Committing PATH" then progress dots, then "\nSuccess!" */
        if (has_line_starting(buf, len, "Committing ") &&
            has_line_starting(buf, len, "Success!"))
            return 0;
        break;
    default:
        seterr(err, errlen, "unknown haproxy command");
        return -EINVAL;
    }
    /* The explanation is usually the last non-empty line ("Can't ...",
     * "unable to load ..."); quote the first one that says more than
     * "Committing". */
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - buf) : len;

        if (e > i && !(e - i >= 10 && memcmp(buf + i, "Committing", 10) == 0)) {
            quote_line(buf + i, e - i, line, sizeof(line));
            seterr(err, errlen, "haproxy refused: %s", line);
            return -EPROTO;
        }
        i = e + 1;
    }
    seterr(err, errlen, "haproxy refused: (empty reply)");
    return -EPROTO;
}

int deliver_haproxy_check_payload(const char *p, size_t len)
{
    if (!p || len == 0 || len > (1u << 20) || memchr(p, '\0', len))
        return -EINVAL;
    if (p[0] == '\n' || (len >= 2 && memmem(p, len, "\n\n", 2)) ||
        memmem(p, len, "\n\r\n", 3))
        return -EINVAL;
    return 0;
}

static int unix_connect(const char *path, int64_t deadline, int *ret_fd)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    _cleanup_close_ int fd = -1;
    socklen_t sl;
    size_t n = strlen(path);

    if (path[0] == '@') {
        /* abstract: haproxy's "abns@name" */
        if (n - 1 > sizeof(sa.sun_path) - 1 || n < 2)
            return -ENAMETOOLONG;
        memcpy(sa.sun_path + 1, path + 1, n - 1);
        sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        if (n >= sizeof(sa.sun_path))
            return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, n + 1);
        sl = sizeof(sa);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return negerrno();
    if (connect(fd, (struct sockaddr *)&sa, sl) < 0) {
        if (errno != EINPROGRESS && errno != EAGAIN)
            return negerrno();
        struct pollfd pf = { .fd = fd, .events = POLLOUT };
        int soerr = 0, k = poll(&pf, 1, left_ms(deadline));
        socklen_t el = sizeof(soerr);

        if (k == 0)
            return -ETIMEDOUT;
        if (k < 0)
            return negerrno();
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) < 0)
            return negerrno();
        if (soerr)
            return -soerr;
    }
    *ret_fd = TAKE_FD(fd);
    return 0;
}

/* One command on its own connection (haproxy's non-interactive mode
 * answers one command and closes).  The reply goes to buf (NUL-terminated).
 * Returns its length or -errno. */
static ssize_t haproxy_command(const char *sock, const char *cmd, size_t cmdlen,
                               int64_t deadline, char *buf, size_t bufsize)
{
    _cleanup_close_ int fd = -1;
    ssize_t n;
    int r;

    r = unix_connect(sock, deadline, &fd);
    if (r < 0)
        return r;
    r = send_all(fd, cmd, cmdlen, deadline);
    if (r < 0)
        return r;
    (void)shutdown(fd, SHUT_WR);
    n = recv_until_eof(fd, buf, bufsize - 1, deadline);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

/* Send one command, check its reply. */
static int haproxy_step(const char *sock, enum deliver_haproxy_cmd kind,
                        const char *cmd, size_t cl, int64_t deadline,
                        char *reply, char *err, size_t errlen)
{
    char eb[128];
    ssize_t n = haproxy_command(sock, cmd, cl, deadline, reply,
                                DELIVER_HAPROXY_REPLY_MAX + 1);

    if (n < 0) {
        seterr(err, errlen, "haproxy socket %s: %s ssl cert: %s", sock,
               kind == DELIVER_HAPROXY_SET ? "set" : "commit",
               errstr((int)n, eb, sizeof(eb)));
        return (int)n;
    }
    return deliver_haproxy_parse_reply(kind, reply, (size_t)n, err, errlen);
}

static int run_haproxy(const struct deliver_action *a, char *err, size_t errlen)
{
    _cleanup_free_ char *cmd = NULL, *reply = NULL;
    int64_t deadline = now_ms() + a->timeout_ms;
    size_t cl, plen, pl, size;
    const char *pre;
    int r;

    if (!a->socket || !a->cert_path || !a->cert_path[0] ||
        strpbrk(a->cert_path, " \t\r\n") || a->timeout_ms <= 0 ||
        deliver_haproxy_check_payload(a->payload, a->payload_len) < 0) {
        seterr(err, errlen, "invalid haproxy runtime API action (socket, "
               "certificate path without blanks, payload without blank "
               "lines)");
        return -EINVAL;
    }
    /* Through the master CLI, "@1 " sends the command to the current
     * worker (relative PID 1: the newest one). */
    pre = a->haproxy_master ? "@1 " : "";
    plen = strlen(a->cert_path);
    pl = a->payload_len;
    /* "[@1 ]set ssl cert PATH <<\n" PAYLOAD "\n" "\n": the empty line ends
     * it; the commit and abort lines are shorter. */
    size = strlen(pre) + 13 + plen + 4 + pl + 2 + 1;
    cmd = malloc(size);
    reply = malloc(DELIVER_HAPROXY_REPLY_MAX + 1);
    if (!cmd || !reply) {
        seterr(err, errlen, "out of memory");
        return -ENOMEM;
    }
    cl = (size_t)snprintf(cmd, size, "%sset ssl cert %s <<\n", pre,
                          a->cert_path);
    memcpy(cmd + cl, a->payload, pl);
    cl += pl;
    if (cmd[cl - 1] != '\n')
        cmd[cl++] = '\n';
    cmd[cl++] = '\n';

    r = haproxy_step(a->socket, DELIVER_HAPROXY_SET, cmd, cl, deadline, reply,
                     err, errlen);
    if (r < 0)
        goto abort;
    cl = (size_t)snprintf(cmd, size, "%scommit ssl cert %s\n", pre,
                          a->cert_path);
    r = haproxy_step(a->socket, DELIVER_HAPROXY_COMMIT, cmd, cl, deadline,
                     reply, err, errlen);
    if (r < 0)
        goto abort;
    log_debug("haproxy %s: committed %s", a->socket, a->cert_path);
    return 0;

abort:
    /* Leave no half-done transaction behind (best effort, its own
     * deadline: the first one may be spent). */
    cl = (size_t)snprintf(cmd, size, "%sabort ssl cert %s\n", pre,
                          a->cert_path);
    (void)haproxy_command(a->socket, cmd, cl, now_ms() + 2000, reply,
                          DELIVER_HAPROXY_REPLY_MAX + 1);
    return r;
}

/* ---------------------------------------------------------------------- */
/* SYSTEMD: Manager.ReloadUnit over D-Bus, then wait for the job */

int deliver_check_unit_name(const char *u)
{
    size_t n;
    const char *dot;

    if (!u)
        return -EINVAL;
    n = strlen(u);
    dot = strrchr(u, '.');
    if (n == 0 || n > 255 || !dot || dot == u || !dot[1])
        return -EINVAL;
    for (const char *p = u; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || strchr(":_.@\\-", *p)))
            return -EINVAL;
    return 0;
}

#if HAVE_LIBSYSTEMD
struct job_wait {
    const char *job;
    bool done;
    char result[32];
};

static int on_job_removed(sd_bus_message *m, void *ud, sd_bus_error *e)
{
    struct job_wait *w = ud;
    const char *path = NULL, *unit = NULL, *result = NULL;
    uint32_t id;

    (void)e;
    if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
        return 0;
    if (w->job && path && strcmp(path, w->job) == 0) {
        w->done = true;
        snprintf(w->result, sizeof(w->result), "%s", result ? result : "?");
    }
    return 0;
}

static int run_systemd(const struct deliver_action *a, char *err, size_t errlen)
{
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL;
    sd_bus_slot *slot = NULL;
    sd_bus *bus = NULL;
    struct job_wait w = { 0 };
    _cleanup_free_ char *job = NULL;
    int64_t deadline = now_ms() + a->timeout_ms;
    const char *jp;
    char eb[128];
    int r;

    if (deliver_check_unit_name(a->unit) < 0 || a->timeout_ms <= 0) {
        seterr(err, errlen, "invalid systemd unit name");
        return -EINVAL;
    }
    /* sd_bus_open_system() honours DBUS_SYSTEM_BUS_ADDRESS. */
    r = sd_bus_open_system(&bus);
    if (r < 0) {
        seterr(err, errlen, "cannot connect to the system bus: %s",
               errstr(r, eb, sizeof(eb)));
        goto out;
    }
    r = sd_bus_match_signal(bus, &slot, "org.freedesktop.systemd1",
                            "/org/freedesktop/systemd1",
                            "org.freedesktop.systemd1.Manager", "JobRemoved",
                            on_job_removed, &w);
    if (r < 0) {
        seterr(err, errlen, "cannot watch systemd jobs: %s",
               errstr(r, eb, sizeof(eb)));
        goto out;
    }
    /* Without Subscribe(), systemd may not send JobRemoved to us. */
    (void)sd_bus_call_method(bus, "org.freedesktop.systemd1",
                             "/org/freedesktop/systemd1",
                             "org.freedesktop.systemd1.Manager", "Subscribe",
                             NULL, NULL, "");
    r = sd_bus_call_method(bus, "org.freedesktop.systemd1",
                           "/org/freedesktop/systemd1",
                           "org.freedesktop.systemd1.Manager", "ReloadUnit",
                           &error, &reply, "ss", a->unit, "replace");
    if (r < 0) {
        seterr(err, errlen, "systemd refused to reload %s: %s", a->unit,
               error.message ? error.message : errstr(r, eb, sizeof(eb)));
        goto out;
    }
    r = sd_bus_message_read(reply, "o", &jp);
    if (r < 0 || !(job = strdup(jp))) {
        seterr(err, errlen, "unexpected reply from systemd to ReloadUnit");
        r = r < 0 ? r : -ENOMEM;
        goto out;
    }
    w.job = job;
    while (!w.done) {
        int left = left_ms(deadline);

        r = sd_bus_process(bus, NULL);
        if (r < 0) {
            seterr(err, errlen, "D-Bus: %s", errstr(r, eb, sizeof(eb)));
            goto out;
        }
        if (r > 0)
            continue;
        if (left == 0) {
            seterr(err, errlen, "the reload job of %s did not finish within "
                   "%ld ms", a->unit, a->timeout_ms);
            r = -ETIMEDOUT;
            goto out;
        }
        r = sd_bus_wait(bus, (uint64_t)left * 1000);
        if (r < 0 && r != -EINTR) {
            seterr(err, errlen, "D-Bus: %s", errstr(r, eb, sizeof(eb)));
            goto out;
        }
    }
    if (strcmp(w.result, "done") != 0) {
        seterr(err, errlen, "the reload job of %s ended with '%s'", a->unit,
               w.result);
        r = -EPROTO;
        goto out;
    }
    log_debug("systemd reloaded %s (%s)", a->unit, job);
    r = 0;
out:
    sd_bus_error_free(&error);
    sd_bus_message_unref(reply);
    sd_bus_slot_unref(slot);
    sd_bus_flush_close_unref(bus);
    return r;
}
#else
static int run_systemd(const struct deliver_action *a, char *err, size_t errlen)
{
    (void)a;
    seterr(err, errlen, "built without libsystemd: no systemd reload action");
    return -EOPNOTSUPP;
}
#endif

