/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Renewal arithmetic, kept pure so that it can be tested with an injected
 * clock: when a certificate is due, how long to wait after a failure, how
 * loudly to report it, and what to do next (renew, rekey, enroll).  All
 * times are wall-clock seconds (time_t) passed in by the caller.
 */
#ifndef SHORTCERT_SCHEDULE_H
#define SHORTCERT_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* The longest the scheduler ever sleeps: a suspended or stopped daemon,
 * or a clock that jumped, is noticed within this many seconds. */
#define SCHED_MAX_SLEEP_S 20

struct sched_policy {
    unsigned renew_at_pm;     /* share of the lifetime, per mille */
    unsigned renew_jitter_pm; /* jitter, per mille of the lifetime */
    int64_t retry_floor_s;
    int64_t retry_max_s;
};

/* When to renew a certificate valid over [nb, na]: once renew_at of its
 * lifetime has passed, moved earlier by u * jitter of the lifetime, u in
 * [0, 1) drawn once per certificate. */
time_t sched_renew_at(const struct sched_policy *p, time_t nb, time_t na,
                      double u);

/* The wait before retry number n (1 = after the first failure), at now, of
 * a certificate that expires at na (0: none).  Exponential from the floor,
 * capped by retry_max and by an eighth of the time left, so retries get
 * denser as expiry nears; once expired, capped by a quarter of the
 * lifetime; never below the floor; u in [0, 1) spreads it by up to
 * +-20 %. */
int64_t sched_retry_delay(const struct sched_policy *p, unsigned n, time_t now,
                          time_t nb, time_t na, double u);

/* How loudly to log a failed renewal: LOG_WARNING while more than a third
 * of the lifetime is left, LOG_ERR after that, LOG_CRIT once expired (and
 * with no certificate at all). */
int sched_failure_level(time_t now, time_t nb, time_t na, bool have_cert);

/* How long the scheduler may sleep from now until the next deadline. */
int64_t sched_sleep_s(time_t now, time_t next);

/* The systemd watchdog (WATCHDOG_USEC = watchdog_usec): 1 send WATCHDOG=1
 * now (half the interval passed since the last ping, since_ping_ms); 0 not
 * yet; -1 withhold it: the renewal scheduler's last round (beat_age_s ago)
 * is older than the interval (at least 3 s), so it is stuck. */
int sched_watchdog(uint64_t watchdog_usec, uint64_t since_ping_ms,
                   int64_t beat_age_s);

enum renew_action {
    RENEW_NONE = 0,
    RENEW_RENEW,  /* same key: mTLS renew, else token renew */
    RENEW_REKEY,  /* new key: mTLS rekey, else enroll with the new key */
    RENEW_ENROLL, /* enroll (ACME or JWK): no certificate, or the config
                   * asks for what renew cannot change */
};

struct renew_facts {
    bool have_cert;
    time_t nb, na;
    time_t renew_at;          /* from sched_renew_at */
    bool forced_renew, forced_rotate;
    bool config_changed;      /* names or lifetime differ from the cert's */
    bool key_type_changed;    /* the key is not of the configured type */
    unsigned renewals;        /* with the current key */
    time_t key_created;
    unsigned rotate_every;    /* 0 = never */
    int64_t rotate_after_s;   /* 0 = never */
};

/* What is due at now (RENEW_NONE: nothing), and whether it needs a new key
 * (*ret_new_key). */
enum renew_action sched_plan(const struct renew_facts *f, time_t now,
                             bool *ret_new_key);

const char *sched_action_str(enum renew_action a);

#endif
