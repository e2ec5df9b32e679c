/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for helper/deliver.c: strict pidfile parsing (live, exited,
 * garbage, empty, over-long, unsafe files), the SIGNAL action reaching a
 * real handler, the EXEC action (status, output in the error text, argv
 * kept verbatim, timeout with the process group killed and reaped, the
 * reduced environment, descriptors, signal state), and the endpoint check
 * against an in-process libssl server on 127.0.0.1 (same leaf, another
 * leaf, TLS 1.2 only, SNI, closed port, a listener that never answers).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cu-main.h"
#include "deliver.h"

static char tmpdir[64];

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tpath(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const void *data, size_t len,
                       mode_t mode)
{
    int fd;

    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, data, len), (ssize_t)len);
    CU_ASSERT_EQUAL(fchmod(fd, mode), 0); /* umask-proof */
    close(fd);
}

static void write_pidfile(const char *path, pid_t pid)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);

    write_file(path, buf, (size_t)n, 0644);
}

/* Read a small file into buf (NUL-terminated); -1 if missing. */
static ssize_t read_file(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got;

    if (fd < 0)
        return -1;
    got = read(fd, buf, n - 1);
    close(fd);
    if (got < 0)
        return -1;
    buf[got] = '\0';
    return got;
}

/* Wait for a child with a bound; SIGKILL it if it does not end. */
static int wait_child(pid_t pid, int ms)
{
    int64_t end = mono_ms() + ms;
    int st = 0;

    while (mono_ms() < end) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* ---------------------------------------------------------------- pids */

static void t_parse_pid(void)
{
    static const struct {
        const char *s;
        int r;
        pid_t pid;
    } cases[] = {
        { "123", 0, 123 },
        { "123\n", 0, 123 },
        { "2", 0, 2 },
        { "2147483647", 0, INT_MAX },
        { "2147483648", -EBADMSG, 0 },
        { "99999999999999999999", -EBADMSG, 0 },
        { "", -EBADMSG, 0 },
        { "\n", -EBADMSG, 0 },
        { "0", -EBADMSG, 0 },
        { "1", -EBADMSG, 0 },
        { "1\n", -EBADMSG, 0 },
        { "0123", -EBADMSG, 0 },
        { "+12", -EBADMSG, 0 },
        { "-12", -EBADMSG, 0 },
        { " 12", -EBADMSG, 0 },
        { "12 ", -EBADMSG, 0 },
        { "12\n\n", -EBADMSG, 0 },
        { "12\r\n", -EBADMSG, 0 },
        { "12a", -EBADMSG, 0 },
        { "0x1f", -EBADMSG, 0 },
        { "12\n13\n", -EBADMSG, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pid_t pid = -7;
        int r = deliver_parse_pid(cases[i].s, strlen(cases[i].s), &pid);

        CU_ASSERT_EQUAL(r, cases[i].r);
        if (r != cases[i].r)
            fprintf(stderr, "\n  parse_pid('%s') = %d\n", cases[i].s, r);
        CU_ASSERT_EQUAL(pid, cases[i].r == 0 ? cases[i].pid : -7);
    }
    /* an embedded NUL is garbage, not the end of the string */
    {
        pid_t pid = -7;

        CU_ASSERT_EQUAL(deliver_parse_pid("12\0003", 4, &pid), -EBADMSG);
        CU_ASSERT_EQUAL(pid, -7);
    }
}

/* A child that writes MARKER when SIGHUP arrives, then exits 0.  It tells
 * the parent through a pipe once its handler is in place. */
static const char *hup_marker;

static void on_hup(int sig)
{
    int fd = open(hup_marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd >= 0) {
        (void)!write(fd, "HUP\n", 4);
        close(fd);
    }
    _exit(0);
}

static pid_t spawn_hup_child(const char *marker)
{
    int p[2];
    char c;
    pid_t pid;

    CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct sigaction sa = { .sa_handler = on_hup };
        sigset_t m;

        hup_marker = marker;
        sigemptyset(&m);
        sigprocmask(SIG_SETMASK, &m, NULL);
        sigaction(SIGHUP, &sa, NULL);
        (void)!write(p[1], "r", 1);
        for (int i = 0; i < 300; i++) /* 30 s at most, never forever */
            usleep(100000);
        _exit(3);
    }
    close(p[1]);
    CU_ASSERT_EQUAL(read(p[0], &c, 1), 1);
    close(p[0]);
    return pid;
}

static void t_pidfile_cases(void)
{
    char pf[128], marker[128], err[512], big[DELIVER_PIDFILE_MAX + 8];
    pid_t live, dead, pid;
    uid_t owner;
    int st;

    tpath(pf, sizeof(pf), "svc.pid");
    tpath(marker, sizeof(marker), "unused.marker");

    /* missing */
    unlink(pf);
    CU_ASSERT_EQUAL(deliver_read_pidfile(pf, &pid, NULL, err, sizeof(err)), -ENOENT);
    CU_ASSERT(strstr(err, "cannot open pidfile") != NULL);

    /* a live process we spawned */
    live = spawn_hup_child(marker);
    write_pidfile(pf, live);
    pid = 0;
    owner = 12345;
    CU_ASSERT_EQUAL(deliver_read_pidfile(pf, &pid, &owner, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(pid, live);
    CU_ASSERT_EQUAL(owner, geteuid());
    /* without a trailing newline too */
    snprintf(big, sizeof(big), "%d", (int)live);
    write_file(pf, big, strlen(big), 0644);
    CU_ASSERT_EQUAL(deliver_read_pidfile(pf, &pid, NULL, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(pid, live);

    /* garbage, empty, too long (65 bytes), exactly 64 bytes of digits */
    write_file(pf, "nginx\n", 6, 0644);
    CU_ASSERT_EQUAL(deliver_read_pidfile(pf, &pid, NULL, err, sizeof(err)), -EBADMSG);
    CU_ASSERT(strstr(err, "does not hold a process ID") != NULL);
    write_file(pf, "", 0, 0644);
    CU_ASSERT_EQUAL(deliver_read_pidfile(pf, &pid, NULL, err, sizeof(err)), -EBADMSG);
    CU_ASSERT(strstr(err, "is empty") != NULL);
    memset(big, '1', DELIVER_PIDFILE_MAX + 1);
    write_file(pf, big, DELIVER_PIDFILE_MAX + 1, 0644);
    CU_ASSERT_EQUAL(deliver_read_pidfile(pf, &pid, NULL, err, sizeof(err)), -EBADMSG);
    CU_ASSERT(strstr(err, "longer than 64 bytes") != NULL);
    write_file(pf, big, DELIVER_PIDFILE_MAX, 0644);
    CU_ASSERT_EQUAL(deliver_read_pidfile(pf, &pid, NULL, err, sizeof(err)), -EBADMSG);
    CU_ASSERT(strstr(err, "does not hold a process ID") != NULL);

    /* unsafe files: group/world writable, a directory, a FIFO (no hang) */
    write_pidfile(pf, live);
    CU_ASSERT_EQUAL(chmod(pf, 0666), 0);
    CU_ASSERT_EQUAL(deliver_read_pidfile(pf, &pid, NULL, err, sizeof(err)), -EPERM);
    CU_ASSERT(strstr(err, "writable by group or others") != NULL);
    CU_ASSERT_EQUAL(deliver_read_pidfile(tmpdir, &pid, NULL, err, sizeof(err)), -EPERM);
    unlink(pf);
    CU_ASSERT_EQUAL(mkfifo(pf, 0600), 0);
    CU_ASSERT_EQUAL(deliver_read_pidfile(pf, &pid, NULL, err, sizeof(err)), -EPERM);
    CU_ASSERT(strstr(err, "not a regular file") != NULL);
    unlink(pf);

    /* the pid of a process that exited (and was reaped): no such process */
    dead = fork();
    CU_ASSERT_FATAL(dead >= 0);
    if (dead == 0)
        _exit(0);
    CU_ASSERT_EQUAL(waitpid(dead, &st, 0), dead);
    write_pidfile(pf, dead);
    {
        struct deliver_action a = { .type = DELIVER_ACTION_SIGNAL,
                                    .pidfile = pf, .signo = SIGHUP };

        CU_ASSERT_EQUAL(deliver_run_action(&a, err, sizeof(err)), -ESRCH);
        CU_ASSERT(strstr(err, "does not exist") != NULL);
        /* pid 1 and garbage never get a signal */
        write_file(pf, "1\n", 2, 0644);
        CU_ASSERT_EQUAL(deliver_run_action(&a, err, sizeof(err)), -EBADMSG);
        /* a bad signal number */
        write_pidfile(pf, live);
        a.signo = 0;
        CU_ASSERT_EQUAL(deliver_run_action(&a, err, sizeof(err)), -EINVAL);
        a.signo = 100000;
        CU_ASSERT_EQUAL(deliver_run_action(&a, err, sizeof(err)), -EINVAL);
        /* a pidfile owned by another user may not name our (root's)
         * process: the service user could write any pid into it */
        if (geteuid() == 0) {
            a.signo = SIGHUP;
            CU_ASSERT_EQUAL(chown(pf, 65534, 65534), 0);
            CU_ASSERT_EQUAL(deliver_run_action(&a, err, sizeof(err)), -EPERM);
            CU_ASSERT(strstr(err, "refusing to signal") != NULL);
        }
    }
    unlink(pf);
    kill(live, SIGKILL);
    wait_child(live, 5000);
}

/* postmaster.pid: the PID on the first line, more lines after it (over
 * the 64-byte limit of a plain pidfile). */
static void t_pidfile_first_line(void)
{
    static const char pm[] = "4242\n/var/lib/postgresql/15/main\n1733300000\n"
                             "5432\n/var/run/postgresql\n127.0.0.1\n"
                             "  5432001    131072\nready   \n";
    char path[128], err[256];
    pid_t pid = 0;

    tpath(path, sizeof(path), "postmaster.pid");
    write_file(path, pm, sizeof(pm) - 1, 0600);
    CU_ASSERT_EQUAL(deliver_read_pidfile(path, &pid, NULL, err, sizeof(err)),
                    -EBADMSG);
    CU_ASSERT_EQUAL(deliver_read_pidfile_first_line(path, &pid, NULL, err,
                                                    sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(pid, 4242);
    /* the first line must still be a PID alone */
    write_file(path, "42 x\nmore\n", 10, 0600);
    CU_ASSERT_EQUAL(deliver_read_pidfile_first_line(path, &pid, NULL, err,
                                                    sizeof(err)),
                    -EBADMSG);
    write_file(path, "\n4242\n", 6, 0600);
    CU_ASSERT_EQUAL(deliver_read_pidfile_first_line(path, &pid, NULL, err,
                                                    sizeof(err)),
                    -EBADMSG);
    /* still bounded */
    {
        char big[DELIVER_PIDFILE_LONG_MAX + 10];

        memset(big, 'x', sizeof(big));
        memcpy(big, "4242\n", 5);
        write_file(path, big, sizeof(big), 0600);
        CU_ASSERT_EQUAL(deliver_read_pidfile_first_line(path, &pid, NULL, err,
                                                        sizeof(err)),
                        -EBADMSG);
    }
    unlink(path);
}

static void t_signal_delivered(void)
{
    char pf[128], marker[128], buf[16], err[512];
    struct deliver_action a = { .type = DELIVER_ACTION_SIGNAL, .signo = SIGHUP };
    pid_t child;
    int st;

    tpath(pf, sizeof(pf), "hup.pid");
    tpath(marker, sizeof(marker), "hup.marker");
    unlink(marker);
    a.pidfile = pf;
    child = spawn_hup_child(marker);
    write_pidfile(pf, child);
    CU_ASSERT_EQUAL(deliver_run_action(&a, err, sizeof(err)), 0);
    st = wait_child(child, 5000);
    CU_ASSERT(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT_EQUAL(read_file(marker, buf, sizeof(buf)), 4);
    CU_ASSERT_STRING_EQUAL(buf, "HUP\n");

    /* read anew each time: the next call sees the next process */
    unlink(marker);
    child = spawn_hup_child(marker);
    write_pidfile(pf, child);
    CU_ASSERT_EQUAL(deliver_run_action(&a, err, sizeof(err)), 0);
    st = wait_child(child, 5000);
    CU_ASSERT(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT_EQUAL(read_file(marker, buf, sizeof(buf)), 4);
    unlink(marker);
    unlink(pf);
}

/* ---------------------------------------------------------------- exec */

static int run(long timeout_ms, char *err, size_t errlen, char *const *argv)
{
    struct deliver_action a = { .type = DELIVER_ACTION_EXEC, .argv = argv,
                                .timeout_ms = timeout_ms };

    return deliver_run_action(&a, err, errlen);
}

#define ARGV(...) ((char *const[]){ __VA_ARGS__, NULL })

static void t_exec_status(void)
{
    char err[512];

    CU_ASSERT_EQUAL(run(5000, err, sizeof(err), ARGV("/bin/true")), 0);
    CU_ASSERT_STRING_EQUAL(err, "");

    CU_ASSERT_EQUAL(run(5000, err, sizeof(err),
                        ARGV("/bin/sh", "-c",
                             "echo 'nginx: [emerg] bad \033 thing'; "
                             "echo second line >&2; exit 3")),
                    -EPROTO);
    CU_ASSERT(strstr(err, "'/bin/sh' exited with status 3") != NULL);
    /* first line only, control characters replaced */
    CU_ASSERT(strstr(err, "nginx: [emerg] bad ? thing") != NULL);
    CU_ASSERT(strstr(err, "second line") == NULL);

    /* stderr alone is captured too */
    CU_ASSERT_EQUAL(run(5000, err, sizeof(err),
                        ARGV("/bin/sh", "-c", "echo on-stderr >&2; exit 1")),
                    -EPROTO);
    CU_ASSERT(strstr(err, "on-stderr") != NULL);

    /* no output */
    CU_ASSERT_EQUAL(run(5000, err, sizeof(err), ARGV("/bin/false")), -EPROTO);
    CU_ASSERT(strstr(err, "(no output)") != NULL);

    /* death by a signal */
    CU_ASSERT_EQUAL(run(5000, err, sizeof(err),
                        ARGV("/bin/sh", "-c", "kill -TERM $$")),
                    -EPROTO);
    CU_ASSERT(strstr(err, "killed by signal 15 (SIGTERM)") != NULL);

    /* much more output than is kept: drained, no deadlock */
    CU_ASSERT_EQUAL(run(10000, err, sizeof(err),
                        ARGV("/bin/sh", "-c",
                             "echo first; head -c 1000000 /dev/zero; exit 4")),
                    -EPROTO);
    CU_ASSERT(strstr(err, "status 4: first") != NULL);

    /* cannot execute: missing file, not executable, relative path */
    CU_ASSERT_EQUAL(run(5000, err, sizeof(err), ARGV("/nonexistent/reload")), -ENOENT);
    CU_ASSERT(strstr(err, "cannot execute '/nonexistent/reload'") != NULL);
    {
        char plain[128];

        tpath(plain, sizeof(plain), "not-executable");
        write_file(plain, "#!/bin/sh\n", 10, 0644);
        CU_ASSERT_EQUAL(run(5000, err, sizeof(err), ARGV(plain)), -EACCES);
        unlink(plain);
    }
    CU_ASSERT_EQUAL(run(5000, err, sizeof(err), ARGV("true")), -EINVAL);
    CU_ASSERT_EQUAL(run(0, err, sizeof(err), ARGV("/bin/true")), -EINVAL);
    {
        struct deliver_action a = { .type = DELIVER_ACTION_EXEC,
                                    .timeout_ms = 1000 };

        CU_ASSERT_EQUAL(deliver_run_action(&a, err, sizeof(err)), -EINVAL);
    }
}

static void t_exec_argv_verbatim(void)
{
    char err[512], marker[128];

    /* one argument with spaces stays one argument; no globbing, no
     * expansion, no shell between us and the program */
    CU_ASSERT_EQUAL(run(5000, err, sizeof(err),
                        ARGV("/bin/sh", "-c",
                             "[ $# = 3 ] && [ \"$1\" = 'a b  c' ] && "
                             "[ \"$2\" = '*' ] && [ \"$3\" = '$(id)' ] || "
                             "{ echo \"got $# args: $*\"; exit 1; }",
                             "sh", "a b  c", "*", "$(id)")),
                    0);
    if (err[0])
        fprintf(stderr, "\n  %s\n", err);

    tpath(marker, sizeof(marker), "injected");
    unlink(marker);
    {
        char arg[200];

        snprintf(arg, sizeof(arg), "x; touch %s", marker);
        CU_ASSERT_EQUAL(run(5000, err, sizeof(err), ARGV("/bin/echo", arg)), 0);
        CU_ASSERT_EQUAL(access(marker, F_OK), -1);
    }
}

static void t_exec_environment(void)
{
    char err[512], out[128], buf[4096], sh[512];
    int keep1, keep2;
    sigset_t block, old;
    ssize_t n;

    tpath(out, sizeof(out), "exec.out");

    /* the environment is exactly PATH (as execve() gave it, /proc/PID/environ) */
    setenv("SHORTCERT_TEST_SECRET", "do-not-leak", 1);
    snprintf(sh, sizeof(sh), "cat /proc/$$/environ > '%s'", out);
    CU_ASSERT_EQUAL(run(5000, err, sizeof(err), ARGV("/bin/sh", "-c", sh)), 0);
    n = read_file(out, buf, sizeof(buf));
    CU_ASSERT_EQUAL(n, (ssize_t)sizeof(DELIVER_EXEC_PATH));
    CU_ASSERT(n > 0 && memcmp(buf, DELIVER_EXEC_PATH, sizeof(DELIVER_EXEC_PATH)) == 0);
    unsetenv("SHORTCERT_TEST_SECRET");

    /* descriptors: only 0-2, even with inheritable ones open here; stdin
     * is /dev/null; stdout and stderr are one pipe; the working directory
     * is / */
    keep1 = open("/dev/null", O_RDONLY);
    keep2 = dup(keep1);
    CU_ASSERT(keep1 >= 0 && keep2 >= 0);
    /* (readlink and ls run in children and look at the shell's table;
     * `exec >` redirects without keeping a saved copy of fd 1; no pipeline,
     * whose pipe the shell would hold while ls runs) */
    snprintf(sh, sizeof(sh),
             "i=$(readlink /proc/$$/fd/0); o=$(readlink /proc/$$/fd/1); "
             "e=$(readlink /proc/$$/fd/2); c=$(readlink /proc/$$/cwd); "
             "exec > '%s'; ls /proc/$$/fd; echo \"$i\"; echo \"$c\"; "
             "[ \"$o\" = \"$e\" ] && echo \"$o\" | grep -q '^pipe:' && echo same",
             out);
    CU_ASSERT_EQUAL(run(5000, err, sizeof(err), ARGV("/bin/sh", "-c", sh)), 0);
    CU_ASSERT(read_file(out, buf, sizeof(buf)) > 0);
    CU_ASSERT_STRING_EQUAL(buf, "0\n1\n2\n/dev/null\n/\nsame\n");
    if (strcmp(buf, "0\n1\n2\n/dev/null\n/\nsame\n") != 0)
        fprintf(stderr, "\n  fds: %s\n", buf);
    close(keep1);
    close(keep2);

    /* signal state: nothing blocked or ignored although we block SIGHUP
     * and SIGTERM and ignore SIGPIPE here (as shortcertd does); its own
     * process group */
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    signal(SIGPIPE, SIG_IGN);
    /* read by the exec'd program itself (a shell blocks signals while it
     * waits for its children, so its own status would race) */
    snprintf(sh, sizeof(sh),
             "exec > '%s'; exec cat /proc/self/stat /proc/self/status", out);
    CU_ASSERT_EQUAL(run(5000, err, sizeof(err), ARGV("/bin/sh", "-c", sh)), 0);
    signal(SIGPIPE, SIG_DFL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    CU_ASSERT(read_file(out, buf, sizeof(buf)) > 0);
    {
        int pid = 0, pgrp = -1;
        char *nl = strchr(buf, '\n'), *p;

        CU_ASSERT_FATAL(nl != NULL);
        *nl = '\0'; /* the stat line; "State: R (running)" follows */
        p = strrchr(buf, ')');
        *nl = '\n';
        CU_ASSERT_FATAL(p != NULL);
        CU_ASSERT_EQUAL(sscanf(buf, "%d", &pid), 1);
        CU_ASSERT_EQUAL(sscanf(p + 2, "%*c %*d %d", &pgrp), 1);
        CU_ASSERT(pid > 1 && pgrp == pid);
        CU_ASSERT(strstr(buf, "\nSigBlk:\t0000000000000000\n") != NULL);
        CU_ASSERT(strstr(buf, "\nSigIgn:\t0000000000000000\n") != NULL);
    }
    unlink(out);
}

static bool proc_gone(pid_t pid)
{
    char path[64], buf[512], *p;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (read_file(path, buf, sizeof(buf)) < 0)
        return true;
    p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'Z'; /* a zombie awaiting its reaper */
}

static void t_exec_timeout(void)
{
    char err[512], pf[128], sh[256], buf[32];
    pid_t gc = 0;
    int64_t t0, dt;
    int r;

    tpath(pf, sizeof(pf), "grandchild.pid");
    unlink(pf);
    /* a child that starts a grandchild in its group and never ends; it
     * also ignores SIGTERM */
    snprintf(sh, sizeof(sh),
             "trap '' TERM; sleep 30 & echo $! > '%s'; echo started; wait", pf);
    t0 = mono_ms();
    r = run(400, err, sizeof(err), ARGV("/bin/sh", "-c", sh));
    dt = mono_ms() - t0;
    CU_ASSERT_EQUAL(r, -ETIMEDOUT);
    CU_ASSERT(dt >= 400 && dt < 400 + 1500);
    CU_ASSERT(strstr(err, "did not finish within 400 ms and was killed: started") != NULL);
    if (!strstr(err, "killed: started"))
        fprintf(stderr, "\n  %s (%lld ms)\n", err, (long long)dt);
    /* the child was reaped by deliver_run_action: no zombie left for us */
    CU_ASSERT_EQUAL(waitpid(-1, NULL, WNOHANG), -1);
    CU_ASSERT_EQUAL(errno, ECHILD);
    /* the grandchild (same process group) was killed too */
    CU_ASSERT_FATAL(read_file(pf, buf, sizeof(buf)) > 0);
    CU_ASSERT_EQUAL(deliver_parse_pid(buf, strlen(buf), &gc), 0);
    for (int i = 0; i < 100 && gc > 0 && !proc_gone(gc); i++)
        usleep(10000);
    CU_ASSERT(gc > 0 && proc_gone(gc));
    unlink(pf);

    /* a child that closes its output and lingers is still timed out */
    t0 = mono_ms();
    r = run(300, err, sizeof(err),
            ARGV("/bin/sh", "-c", "exec >/dev/null 2>&1; sleep 30"));
    dt = mono_ms() - t0;
    CU_ASSERT_EQUAL(r, -ETIMEDOUT);
    CU_ASSERT(dt >= 300 && dt < 300 + 1500);

    /* a child that floods its output never ends either; still bounded */
    t0 = mono_ms();
    r = run(300, err, sizeof(err), ARGV("/bin/sh", "-c", "exec yes flood"));
    dt = mono_ms() - t0;
    CU_ASSERT_EQUAL(r, -ETIMEDOUT);
    CU_ASSERT(dt >= 300 && dt < 300 + 1500);
    CU_ASSERT(strstr(err, "killed: flood") != NULL);

    /* a child that exits but leaves a background process holding the pipe
     * returns at once, with its status */
    t0 = mono_ms();
    r = run(5000, err, sizeof(err),
            ARGV("/bin/sh", "-c", "sleep 2 & exit 0"));
    dt = mono_ms() - t0;
    CU_ASSERT_EQUAL(r, 0);
    CU_ASSERT(dt < 1500);
}

/* ---------------------------------------------------------- TLS server */

static X509 *make_cert(EVP_PKEY *key, long serial, const char *cn)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();

    CU_ASSERT_FATAL(x && n);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn,
                               -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 600);
    X509_set_pubkey(x, key);
    CU_ASSERT_FATAL(X509_sign(x, key, EVP_sha256()) > 0);
    X509_NAME_free(n);
    return x;
}

struct tls_srv {
    int lfd;
    int stop[2];
    unsigned port;
    pthread_t thread;
    pthread_mutex_t lock;
    SSL_CTX *ctx;          /* what new connections get */
    char last_sni[256];    /* what the last client sent ("" for none) */
    unsigned handshakes;
    char pg_answer;        /* != 0: PostgreSQL STARTTLS, answer this byte */
    unsigned pg_requests;  /* well-formed SSLRequests seen */
};

static int sni_cb(SSL *ssl, int *al, void *arg)
{
    struct tls_srv *s = arg;
    const char *n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    pthread_mutex_lock(&s->lock);
    snprintf(s->last_sni, sizeof(s->last_sni), "%s", n ? n : "");
    pthread_mutex_unlock(&s->lock);
    return SSL_TLSEXT_ERR_OK;
}

static void *srv_main(void *arg)
{
    struct tls_srv *s = arg;
    sigset_t pipe_only;

    /* SSL_shutdown() to a client that already closed raises SIGPIPE */
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, NULL);

    for (;;) {
        struct pollfd p[2] = { { .fd = s->lfd, .events = POLLIN },
                               { .fd = s->stop[0], .events = POLLIN } };
        SSL_CTX *ctx;
        SSL *ssl;
        int fd;

        if (poll(p, 2, -1) < 0)
            continue;
        if (p[1].revents)
            break;
        fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        {
            struct timeval tv = { .tv_sec = 5 };

            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        }
        if (s->pg_answer) {
            static const unsigned char want[8] = { 0, 0, 0, 8, 0x04, 0xd2,
                                                   0x16, 0x2f };
            unsigned char req[8];

            if (recv(fd, req, 8, MSG_WAITALL) != 8 ||
                memcmp(req, want, 8) != 0 ||
                send(fd, &s->pg_answer, 1, MSG_NOSIGNAL) != 1 ||
                s->pg_answer != 'S') {
                close(fd);
                continue;
            }
            pthread_mutex_lock(&s->lock);
            s->pg_requests++;
            pthread_mutex_unlock(&s->lock);
        }
        pthread_mutex_lock(&s->lock);
        ctx = s->ctx;
        SSL_CTX_up_ref(ctx);
        pthread_mutex_unlock(&s->lock);
        ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) {
            pthread_mutex_lock(&s->lock);
            s->handshakes++;
            pthread_mutex_unlock(&s->lock);
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        SSL_CTX_free(ctx);
        close(fd);
    }
    return NULL;
}

static SSL_CTX *srv_ctx(struct tls_srv *s, X509 *cert, EVP_PKEY *key, int maxver)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    CU_ASSERT_FATAL(ctx != NULL);
    CU_ASSERT(SSL_CTX_use_certificate(ctx, cert) == 1);
    CU_ASSERT(SSL_CTX_use_PrivateKey(ctx, key) == 1);
    if (maxver)
        SSL_CTX_set_max_proto_version(ctx, maxver);
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, s);
    return ctx;
}

static void srv_serve(struct tls_srv *s, SSL_CTX *ctx)
{
    SSL_CTX *old;

    pthread_mutex_lock(&s->lock);
    old = s->ctx;
    s->ctx = ctx;
    pthread_mutex_unlock(&s->lock);
    SSL_CTX_free(old);
}

/* Listen on 127.0.0.1:0; ret the port. */
static int listen_any(unsigned *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CU_ASSERT_FATAL(listen(fd, 16) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void srv_start(struct tls_srv *s, SSL_CTX *ctx)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->ctx = ctx;
    s->lfd = listen_any(&s->port);
    CU_ASSERT_FATAL(pipe2(s->stop, O_CLOEXEC) == 0);
    CU_ASSERT_FATAL(pthread_create(&s->thread, NULL, srv_main, s) == 0);
}

static void srv_stop(struct tls_srv *s)
{
    (void)!write(s->stop[1], "x", 1);
    pthread_join(s->thread, NULL);
    close(s->stop[0]);
    close(s->stop[1]);
    close(s->lfd);
    SSL_CTX_free(s->ctx);
    pthread_mutex_destroy(&s->lock);
}

static void t_endpoint(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *a, *b, *a_twin;
    struct tls_srv s;
    char serial[64], err[512];
    struct deliver_endpoint e = { .host = "127.0.0.1", .sni = "web.internal.test" };

    CU_ASSERT_FATAL(key != NULL);
    a = make_cert(key, 0x0A11CE, "web.internal.test");
    b = make_cert(key, 0x0B0B, "web.internal.test");
    /* same serial and names as A, another signature: only the full DER
     * comparison can tell them apart */
    a_twin = make_cert(key, 0x0A11CE, "web.internal.test");

    srv_start(&s, srv_ctx(&s, a, key, 0));
    e.port = s.port;

    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, a, 5000, serial, sizeof(serial),
                                           err, sizeof(err)),
                    1);
    CU_ASSERT_STRING_EQUAL(s.last_sni, "web.internal.test");
    strcpy(serial, "untouched");
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, b, 5000, serial, sizeof(serial),
                                           err, sizeof(err)),
                    0);
    CU_ASSERT_STRING_EQUAL(serial, "0A11CE");
    CU_ASSERT(strstr(err, "serves serial 0A11CE, not the expected 0B0B") != NULL);
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, a_twin, 5000, serial,
                                           sizeof(serial), err, sizeof(err)),
                    0);

    /* the service now serves B */
    srv_serve(&s, srv_ctx(&s, b, key, 0));
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, a, 5000, serial, sizeof(serial),
                                           err, sizeof(err)),
                    0);
    CU_ASSERT_STRING_EQUAL(serial, "0B0B");
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, b, 5000, NULL, 0, err, sizeof(err)),
                    1);

    /* TLS 1.2 only */
    srv_serve(&s, srv_ctx(&s, b, key, TLS1_2_VERSION));
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, b, 5000, NULL, 0, err, sizeof(err)),
                    1);

    /* a name that resolves (localhost), no SNI, an IP literal as SNI */
    e.host = "localhost";
    e.sni = NULL;
    {
        int r = deliver_check_endpoint(&e, b, 5000, NULL, 0, err, sizeof(err));

        CU_ASSERT_EQUAL(r, 1);
        if (r != 1)
            fprintf(stderr, "\n  localhost: %d %s\n", r, err);
    }
    CU_ASSERT_STRING_EQUAL(s.last_sni, "");
    e.host = "127.0.0.1";
    e.sni = "127.0.0.1";
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, b, 5000, NULL, 0, err, sizeof(err)),
                    1);
    CU_ASSERT_STRING_EQUAL(s.last_sni, "");
    /* the server may finish its side just after the client returned */
    for (int i = 0; i < 100; i++) {
        unsigned n;

        pthread_mutex_lock(&s.lock);
        n = s.handshakes;
        pthread_mutex_unlock(&s.lock);
        if (n >= 8)
            break;
        usleep(10000);
    }
    CU_ASSERT_EQUAL(s.handshakes, 8);

    srv_stop(&s);
    X509_free(a);
    X509_free(b);
    X509_free(a_twin);
    EVP_PKEY_free(key);
}

/* PostgreSQL's STARTTLS: SSLRequest, 'S', then TLS; 'N' is refused with
 * a reason; a server that speaks TLS at once is not PostgreSQL. */
static void t_endpoint_starttls_postgres(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *a, *b;
    struct tls_srv s;
    char serial[64], err[512];
    struct deliver_endpoint e = { .host = "127.0.0.1", .sni = "db.internal.test",
                                  .starttls = DELIVER_STARTTLS_POSTGRES };

    CU_ASSERT_FATAL(key != NULL);
    a = make_cert(key, 0x5A, "db.internal.test");
    b = make_cert(key, 0x5B, "db.internal.test");
    srv_start(&s, srv_ctx(&s, a, key, 0));
    pthread_mutex_lock(&s.lock);
    s.pg_answer = 'S';
    pthread_mutex_unlock(&s.lock);
    e.port = s.port;
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, a, 5000, serial, sizeof(serial),
                                           err, sizeof(err)),
                    1);
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, b, 5000, serial, sizeof(serial),
                                           err, sizeof(err)),
                    0);
    CU_ASSERT_STRING_EQUAL(serial, "5A");
    pthread_mutex_lock(&s.lock);
    CU_ASSERT_EQUAL(s.pg_requests, 2);
    s.pg_answer = 'N';
    pthread_mutex_unlock(&s.lock);
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, a, 5000, NULL, 0, err,
                                           sizeof(err)),
                    -EPROTO);
    CU_ASSERT(strstr(err, "with 'N'") != NULL);
    pthread_mutex_lock(&s.lock);
    s.pg_answer = 'E'; /* an ErrorResponse: an old or odd server */
    pthread_mutex_unlock(&s.lock);
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, a, 5000, NULL, 0, err,
                                           sizeof(err)),
                    -EPROTO);
    CU_ASSERT(strstr(err, "0x45") != NULL);
    /* a plain TLS server does not answer the SSLRequest with 'S' */
    pthread_mutex_lock(&s.lock);
    s.pg_answer = 0;
    pthread_mutex_unlock(&s.lock);
    CU_ASSERT(deliver_check_endpoint(&e, a, 2000, NULL, 0, err, sizeof(err)) <
              0);
    srv_stop(&s);
    X509_free(a);
    X509_free(b);
    EVP_PKEY_free(key);
}

static void t_endpoint_unreachable(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *a = make_cert(key, 1, "x");
    struct deliver_endpoint e = { .host = "127.0.0.1" };
    char err[512], serial[64] = "untouched";
    int64_t t0, dt;
    int lfd, r;

    /* a closed port */
    lfd = listen_any(&e.port);
    close(lfd);
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, a, 2000, serial, sizeof(serial),
                                           err, sizeof(err)),
                    -ECONNREFUSED);
    CU_ASSERT(strstr(err, "cannot connect to 127.0.0.1 port") != NULL);
    CU_ASSERT_STRING_EQUAL(serial, "untouched");

    /* a listener that never completes a handshake (the kernel accepts the
     * TCP connection, nobody answers the ClientHello): bounded */
    lfd = listen_any(&e.port);
    t0 = mono_ms();
    r = deliver_check_endpoint(&e, a, 500, serial, sizeof(serial), err,
                               sizeof(err));
    dt = mono_ms() - t0;
    CU_ASSERT_EQUAL(r, -ETIMEDOUT);
    CU_ASSERT(dt >= 450 && dt < 500 + 500);
    CU_ASSERT(strstr(err, "did not complete within 500 ms") != NULL);

    close(lfd);

    /* a peer that closes without answering (a fresh listener: the old one
     * still has the connection above queued) */
    lfd = listen_any(&e.port);
    {
        int c;

        t0 = mono_ms();
        /* the connection is queued; accept and close it from here after
         * the client sent its hello */
        e.sni = "x";
        {
            pid_t pid = fork();

            CU_ASSERT_FATAL(pid >= 0);
            if (pid == 0) {
                c = accept(lfd, NULL, NULL);
                usleep(50000);
                close(c);
                _exit(0);
            }
            r = deliver_check_endpoint(&e, a, 3000, NULL, 0, err, sizeof(err));
            CU_ASSERT(r == -ECONNRESET || r == -EPIPE);
            if (r != -ECONNRESET && r != -EPIPE)
                fprintf(stderr, "\n  closing peer: %d %s\n", r, err);
            wait_child(pid, 5000);
        }
    }
    close(lfd);

    /* a name that does not resolve, bad arguments */
    e.host = "no-such-host.invalid";
    r = deliver_check_endpoint(&e, a, 2000, NULL, 0, err, sizeof(err));
    CU_ASSERT(r == -ENXIO || r == -EAGAIN);
    e.host = "127.0.0.1";
    e.port = 0;
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, a, 2000, NULL, 0, err, sizeof(err)),
                    -EINVAL);
    e.port = 443;
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, NULL, 2000, NULL, 0, err, sizeof(err)),
                    -EINVAL);
    CU_ASSERT_EQUAL(deliver_check_endpoint(&e, a, 0, NULL, 0, err, sizeof(err)),
                    -EINVAL);
    X509_free(a);
    EVP_PKEY_free(key);
}

static void t_parse_endpoint(void)
{
    static const struct {
        const char *s;
        int r;
        const char *host;
        unsigned port;
    } cases[] = {
        { "127.0.0.1:443", 0, "127.0.0.1", 443 },
        { "web.internal.test:8443", 0, "web.internal.test", 8443 },
        { "localhost:1", 0, "localhost", 1 },
        { "a_b-c:65535", 0, "a_b-c", 65535 },
        { "[::1]:443", 0, "::1", 443 },
        { "[2001:db8::5]:8443", 0, "2001:db8::5", 8443 },
        { "[::ffff:127.0.0.1]:443", 0, "::ffff:127.0.0.1", 443 },
        { "::1:443", -EINVAL, NULL, 0 },
        { "[::1]443", -EINVAL, NULL, 0 },
        { "[::1]", -EINVAL, NULL, 0 },
        { "[]:443", -EINVAL, NULL, 0 },
        { "[web]:443", -EINVAL, NULL, 0 },
        { "[fe80::1%eth0]:443", -EINVAL, NULL, 0 },
        { "host", -EINVAL, NULL, 0 },
        { "host:", -EINVAL, NULL, 0 },
        { ":443", -EINVAL, NULL, 0 },
        { "host:0", -EINVAL, NULL, 0 },
        { "host:65536", -EINVAL, NULL, 0 },
        { "host:0443", -EINVAL, NULL, 0 },
        { "host:+443", -EINVAL, NULL, 0 },
        { "host:443 ", -EINVAL, NULL, 0 },
        { " host:443", -EINVAL, NULL, 0 },
        { "host:443x", -EINVAL, NULL, 0 },
        { "host:100000", -EINVAL, NULL, 0 },
        { "ho st:443", -EINVAL, NULL, 0 },
        { "host/x:443", -EINVAL, NULL, 0 },
        { "-host:443", -EINVAL, NULL, 0 },
        { "", -EINVAL, NULL, 0 },
    };
    char host[64], longname[300];
    unsigned port;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int r;

        strcpy(host, "untouched");
        port = 7;
        r = deliver_parse_endpoint(cases[i].s, host, sizeof(host), &port);
        CU_ASSERT_EQUAL(r, cases[i].r);
        if (r != cases[i].r)
            fprintf(stderr, "\n  parse_endpoint('%s') = %d\n", cases[i].s, r);
        if (cases[i].r == 0) {
            CU_ASSERT_STRING_EQUAL(host, cases[i].host);
            CU_ASSERT_EQUAL(port, cases[i].port);
        } else {
            CU_ASSERT_STRING_EQUAL(host, "untouched");
            CU_ASSERT_EQUAL(port, 7);
        }
    }
    /* does not fit the caller's buffer */
    CU_ASSERT_EQUAL(deliver_parse_endpoint("web.internal.test:443", host, 10, &port),
                    -ENAMETOOLONG);
    /* longer than a DNS name can be */
    memset(longname, 'a', 260);
    strcpy(longname + 260, ":443");
    CU_ASSERT_EQUAL(deliver_parse_endpoint(longname, host, sizeof(host), &port),
                    -EINVAL);
}

static int setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-deliver.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    return remove(path);
}

static void t_teardown(void)
{
    /* only files this test made, in its own mkdtemp directory */
    CU_ASSERT_EQUAL(nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

int cu_register(void)
{
    static const struct cu_test pid_tests[] = {
        { "parse_pid", t_parse_pid },
        { "pidfile_cases", t_pidfile_cases },
        { "pidfile_first_line", t_pidfile_first_line },
        { "signal_delivered", t_signal_delivered },
        { NULL, NULL },
    };
    static const struct cu_test exec_tests[] = {
        { "exec_status", t_exec_status },
        { "exec_argv_verbatim", t_exec_argv_verbatim },
        { "exec_environment", t_exec_environment },
        { "exec_timeout", t_exec_timeout },
        { NULL, NULL },
    };
    static const struct cu_test ep_tests[] = {
        { "parse_endpoint", t_parse_endpoint },
        { "endpoint", t_endpoint },
        { "endpoint_starttls_postgres", t_endpoint_starttls_postgres },
        { "endpoint_unreachable", t_endpoint_unreachable },
        { "teardown", t_teardown },
        { NULL, NULL },
    };

    if (setup() < 0)
        return -1;
    if (cu_add_suite("deliver-signal", pid_tests) < 0 ||
        cu_add_suite("deliver-exec", exec_tests) < 0 ||
        cu_add_suite("deliver-endpoint", ep_tests) < 0)
        return -1;
    return 0;
}
