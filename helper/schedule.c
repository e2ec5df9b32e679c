/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Renewal arithmetic (see schedule.h).  Pure functions: no clock, no
 * randomness of their own, no logging.
 */
#include <syslog.h>

#include "schedule.h"

time_t sched_renew_at(const struct sched_policy *p, time_t nb, time_t na,
                      double u)
{
    int64_t life = na > nb ? (int64_t)(na - nb) : 0;
    int64_t at = life * p->renew_at_pm / 1000;
    int64_t jitter = (int64_t)((double)(life * p->renew_jitter_pm / 1000) * u);

    if (u < 0 || u >= 1)
        jitter = 0;
    return nb + (time_t)(at - jitter);
}

int64_t sched_retry_delay(const struct sched_policy *p, unsigned n, time_t now,
                          time_t nb, time_t na, double u)
{
    int64_t d = p->retry_floor_s, spread;

    for (unsigned i = 1; i < n && d < p->retry_max_s; i++)
        d *= 2;
    if (d > p->retry_max_s)
        d = p->retry_max_s;
    if (na > now) {
        /* Denser near the end: at most an eighth of what is left. */
        int64_t left = (int64_t)(na - now) / 8;

        if (d > left)
            d = left;
    } else if (na != 0 && na > nb) {
        /* Expired: no hurry helps any more, but neither does a long wait
         * once the CA is back: back off up to a quarter of the lifetime
         * (and retry_max). */
        int64_t quarter = (int64_t)(na - nb) / 4;

        if (d > quarter)
            d = quarter;
    }
    if (u >= 0 && u < 1) {
        spread = d / 5;
        d += (int64_t)((2 * u - 1) * (double)spread);
    }
    return d < p->retry_floor_s ? p->retry_floor_s : d;
}

int sched_failure_level(time_t now, time_t nb, time_t na, bool have_cert)
{
    if (!have_cert || now >= na)
        return LOG_CRIT;
    if ((int64_t)(na - now) * 3 < (int64_t)(na - nb))
        return LOG_ERR;
    return LOG_WARNING;
}

int64_t sched_sleep_s(time_t now, time_t next)
{
    int64_t d = (int64_t)(next - now);

    if (d < 0)
        return 0;
    return d > SCHED_MAX_SLEEP_S ? SCHED_MAX_SLEEP_S : d;
}

enum renew_action sched_plan(const struct renew_facts *f, time_t now,
                             bool *ret_new_key)
{
    bool rotate = f->forced_rotate ||
                  (f->rotate_every && f->renewals >= f->rotate_every) ||
                  (f->rotate_after_s > 0 &&
                   now - f->key_created >= f->rotate_after_s);

    *ret_new_key = rotate || f->key_type_changed;
    if (!f->have_cert || f->config_changed || f->key_type_changed)
        return RENEW_ENROLL;
    if (!f->forced_renew && !f->forced_rotate && now < f->renew_at)
        return RENEW_NONE;
    return rotate ? RENEW_REKEY : RENEW_RENEW;
}

const char *sched_action_str(enum renew_action a)
{
    switch (a) {
    case RENEW_RENEW:
        return "renew";
    case RENEW_REKEY:
        return "rekey";
    case RENEW_ENROLL:
        return "enroll";
    case RENEW_NONE:
    default:
        return "none";
    }
}

int sched_watchdog(uint64_t watchdog_usec, uint64_t since_ping_ms,
                   int64_t beat_age_s)
{
    int64_t limit = (int64_t)(watchdog_usec / 1000000);

    if (!watchdog_usec || since_ping_ms < watchdog_usec / 2000)
        return 0;
    if (limit < 3)
        limit = 3;
    return beat_age_s > limit ? -1 : 1;
}
