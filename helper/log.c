/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stderr logger with sd-daemon priority prefixes (see log.h).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "log.h"

static atomic_int log_level = LOG_INFO;

void hlp_log_set_level(int level)
{
    atomic_store(&log_level, level);
}

int hlp_log_get_level(void)
{
    return atomic_load(&log_level);
}

int hlp_log_level_from_string(const char *s)
{
    static const struct {
        const char *name;
        int level;
    } t[] = {
        { "debug", LOG_DEBUG },     { "info", LOG_INFO },
        { "notice", LOG_NOTICE },   { "warning", LOG_WARNING },
        { "err", LOG_ERR },         { "error", LOG_ERR },
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(s, t[i].name) == 0)
            return t[i].level;
    return -EINVAL;
}

/* Replace control characters so that a hostile string cannot forge log
 * lines (CR/LF) or terminal escapes. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            *s = '?';
}

int hlp_log(int level, int r, const char *file, int line, const char *func,
            const char *fmt, ...)
{
    char msg[1024], out[1200];
    va_list ap;
    int n, saved = errno;

    if (level > atomic_load(&log_level))
        goto out;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sanitize(msg);
    if (r < 0 && msg[0] && msg[strlen(msg) - 1] != '.') {
        char eb[128];

        n = snprintf(out, sizeof(out), "<%d>%s: %s\n", level, msg,
                     strerror_r(-r, eb, sizeof(eb)));
    } else {
        n = snprintf(out, sizeof(out), "<%d>%s\n", level, msg);
    }
    if (level >= LOG_DEBUG && n > 0 && (size_t)n < sizeof(out) - 64) {
        /* Debug lines carry their origin. */
        out[n - 1] = '\0';
        n = snprintf(out + n - 1, sizeof(out) - (size_t)n + 1, " (%s:%d %s)\n",
                     file, line, func) + n - 1;
    }
    if (n > 0) {
        if ((size_t)n >= sizeof(out)) {
            n = sizeof(out) - 1;
            out[n - 1] = '\n';
        }
        (void)!write(STDERR_FILENO, out, (size_t)n);
    }
out:
    errno = saved;
    return r;
}

void log_openssl_errors(const char *what)
{
    unsigned long e;
    char buf[256];

    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        log_debug("%s: openssl: %s", what, buf);
    }
}
