/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shortcertd logging: one line per decision, on stderr, with sd-daemon
 * "<N>" priority prefixes that journald understands.  Log at the place that
 * decides what happens next, and say what happens next.  Never pass a
 * secret: struct secret has no format, tokens are logged only as a short
 * fingerprint, and jansson's error text (it echoes input) is never printed.
 * Thread-safe (one write(2) per line).
 */
#ifndef SHORTCERT_LOG_H
#define SHORTCERT_LOG_H

#include <errno.h>
#include <syslog.h>

void hlp_log_set_level(int level);
int hlp_log_get_level(void);
/* Parse "debug", "info", "notice", "warning", "err"/"error": -EINVAL else. */
int hlp_log_level_from_string(const char *s);

/* Logs and returns r (a negative errno, or 0).  When r < 0 the line ends
 * with ": <strerror>" unless the message already ends with '.'. */
int hlp_log(int level, int r, const char *file, int line, const char *func,
            const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#define log_full_errno(level, r, ...)                                        \
    hlp_log((level), (r), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(r, ...) log_full_errno(LOG_DEBUG, (r), __VA_ARGS__)
#define log_info_errno(r, ...) log_full_errno(LOG_INFO, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_full_errno(LOG_WARNING, (r), __VA_ARGS__)
#define log_error_errno(r, ...) log_full_errno(LOG_ERR, (r), __VA_ARGS__)

/* Append OpenSSL's error queue (reasons only, never data) to a debug line
 * and clear it. */
void log_openssl_errors(const char *what);

#endif
