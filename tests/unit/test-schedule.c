/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the renewal arithmetic with an injected clock: when a
 * certificate is due (share and jitter), how retries back off and get
 * denser near expiry, how loudly failures are reported, how long the
 * scheduler may sleep, and what is due (renew, rekey, enroll).
 */
#include <syslog.h>

#include <CUnit/CUnit.h>

#include "cu-main.h"
#include "schedule.h"

/* Timing of retries lives here, with an injected clock; the integration
 * tests only check that retries are bounded. */
static const struct sched_policy pol = {
    .renew_at_pm = 667,
    .renew_jitter_pm = 50,
    .retry_floor_s = 5,
    .retry_max_s = 600,
};

static void t_renew_at(void)
{
    time_t nb = 1000000, na = nb + 86400; /* a 24 h certificate */

    /* no jitter: two thirds in */
    CU_ASSERT_EQUAL(sched_renew_at(&pol, nb, na, 0.0), nb + 57628);
    /* full jitter: up to 5 % of the lifetime earlier */
    CU_ASSERT_EQUAL(sched_renew_at(&pol, nb, na, 0.999999), nb + 57628 - 4319);
    /* never later than the share, never earlier than share - jitter */
    for (double u = 0; u < 1; u += 0.01) {
        time_t t = sched_renew_at(&pol, nb, na, u);

        CU_ASSERT_TRUE(t <= nb + 57628 && t >= nb + 57628 - 4320);
    }
    /* a 2-minute certificate (1 min of it backdated) */
    CU_ASSERT_EQUAL(sched_renew_at(&pol, nb, nb + 120, 0.0), nb + 80);
    /* out-of-range draw: no jitter */
    CU_ASSERT_EQUAL(sched_renew_at(&pol, nb, na, 1.5), nb + 57628);
}

static void t_retry_backoff(void)
{
    time_t nb = 0, na = 86400, now = 40000; /* lots of time left */

    CU_ASSERT_EQUAL(sched_retry_delay(&pol, 1, now, nb, na, 0.5), 5);
    CU_ASSERT_EQUAL(sched_retry_delay(&pol, 2, now, nb, na, 0.5), 10);
    CU_ASSERT_EQUAL(sched_retry_delay(&pol, 5, now, nb, na, 0.5), 80);
    CU_ASSERT_EQUAL(sched_retry_delay(&pol, 8, now, nb, na, 0.5), 600); /* capped */
    CU_ASSERT_EQUAL(sched_retry_delay(&pol, 100, now, nb, na, 0.5), 600);
    /* jitter spreads by up to 20 % either way */
    CU_ASSERT_EQUAL(sched_retry_delay(&pol, 8, now, nb, na, 0.0), 480);
    CU_ASSERT_TRUE(sched_retry_delay(&pol, 8, now, nb, na, 0.99) > 710);
}

static void t_retry_denser_near_expiry(void)
{
    time_t nb = 0, na = 86400;

    /* 800 s left: at most 100 s between attempts */
    CU_ASSERT_EQUAL(sched_retry_delay(&pol, 20, na - 800, nb, na, 0.5), 100);
    /* 16 s left: the floor still holds */
    CU_ASSERT_EQUAL(sched_retry_delay(&pol, 20, na - 16, nb, na, 0.5), 5);
    /* expired: at most a quarter of the old lifetime (here the cap) */
    CU_ASSERT_EQUAL(sched_retry_delay(&pol, 20, na + 50, nb, na, 0.5), 600);
    /* a 2-minute certificate, expired: every 30 s at most */
    CU_ASSERT_EQUAL(sched_retry_delay(&pol, 20, 500, 0, 120, 0.5), 30);
    CU_ASSERT_EQUAL(sched_retry_delay(&pol, 2, 500, 0, 120, 0.5), 10);
    /* no certificate at all: plain back-off */
    CU_ASSERT_EQUAL(sched_retry_delay(&pol, 3, 500, 0, 0, 0.5), 20);
}

static void t_failure_level(void)
{
    CU_ASSERT_EQUAL(sched_failure_level(100, 0, 300, true), LOG_WARNING);
    CU_ASSERT_EQUAL(sched_failure_level(201, 0, 300, true), LOG_ERR);
    CU_ASSERT_EQUAL(sched_failure_level(300, 0, 300, true), LOG_CRIT);
    CU_ASSERT_EQUAL(sched_failure_level(10, 0, 0, false), LOG_CRIT);
}

static void t_sleep(void)
{
    CU_ASSERT_EQUAL(sched_sleep_s(100, 90), 0);
    CU_ASSERT_EQUAL(sched_sleep_s(100, 105), 5);
    /* never a long sleep: a clock jump or SIGSTOP is noticed quickly */
    CU_ASSERT_EQUAL(sched_sleep_s(100, 100000), SCHED_MAX_SLEEP_S);
}

static void t_plan(void)
{
    struct renew_facts f = {
        .have_cert = true, .nb = 0, .na = 3000, .renew_at = 2000,
        .renewals = 0, .key_created = 0,
    };
    bool nk;

    CU_ASSERT_EQUAL(sched_plan(&f, 1999, &nk), RENEW_NONE);
    CU_ASSERT_EQUAL(sched_plan(&f, 2000, &nk), RENEW_RENEW);
    CU_ASSERT_FALSE(nk);
    /* a stopped daemon that wakes up long after: renew at once */
    CU_ASSERT_EQUAL(sched_plan(&f, 2990, &nk), RENEW_RENEW);
    /* forced */
    f.forced_renew = true;
    CU_ASSERT_EQUAL(sched_plan(&f, 10, &nk), RENEW_RENEW);
    f.forced_renew = false;
    f.forced_rotate = true;
    CU_ASSERT_EQUAL(sched_plan(&f, 10, &nk), RENEW_REKEY);
    CU_ASSERT_TRUE(nk);
    f.forced_rotate = false;
    /* rotation policy: every 3 renewals, or after a day */
    f.rotate_every = 3;
    f.renewals = 2;
    CU_ASSERT_EQUAL(sched_plan(&f, 2000, &nk), RENEW_RENEW);
    f.renewals = 3;
    CU_ASSERT_EQUAL(sched_plan(&f, 1000, &nk), RENEW_NONE); /* not yet due */
    CU_ASSERT_EQUAL(sched_plan(&f, 2000, &nk), RENEW_REKEY);
    f.rotate_every = 0;
    f.renewals = 50;
    f.rotate_after_s = 86400;
    CU_ASSERT_EQUAL(sched_plan(&f, 2000, &nk), RENEW_RENEW);
    f.key_created = -90000;
    CU_ASSERT_EQUAL(sched_plan(&f, 2000, &nk), RENEW_REKEY);
    f.rotate_after_s = 0;
    /* what renew cannot change needs enrollment, at once */
    f.config_changed = true;
    CU_ASSERT_EQUAL(sched_plan(&f, 10, &nk), RENEW_ENROLL);
    CU_ASSERT_FALSE(nk);
    f.config_changed = false;
    f.key_type_changed = true;
    CU_ASSERT_EQUAL(sched_plan(&f, 10, &nk), RENEW_ENROLL);
    CU_ASSERT_TRUE(nk);
    f.key_type_changed = false;
    f.have_cert = false;
    CU_ASSERT_EQUAL(sched_plan(&f, 10, &nk), RENEW_ENROLL);
    CU_ASSERT_STRING_EQUAL(sched_action_str(RENEW_REKEY), "rekey");
}

static void t_watchdog(void)
{
    /* off without WATCHDOG_USEC */
    CU_ASSERT_EQUAL(sched_watchdog(0, 100000, 0), 0);
    /* 60 s: a ping every 30 s */
    CU_ASSERT_EQUAL(sched_watchdog(60000000, 29999, 1), 0);
    CU_ASSERT_EQUAL(sched_watchdog(60000000, 30000, 1), 1);
    CU_ASSERT_EQUAL(sched_watchdog(60000000, 30000, 60), 1);
    /* a scheduler that has not run for longer than the interval: no ping */
    CU_ASSERT_EQUAL(sched_watchdog(60000000, 30000, 61), -1);
    CU_ASSERT_EQUAL(sched_watchdog(60000000, 10, 600), 0); /* not due anyway */
    /* short intervals: the scheduler gets at least 3 s */
    CU_ASSERT_EQUAL(sched_watchdog(2000000, 1000, 3), 1);
    CU_ASSERT_EQUAL(sched_watchdog(2000000, 1000, 4), -1);
}

int cu_register(void)
{
    static const struct cu_test tests[] = {
        { "renewal time: share and jitter", t_renew_at },
        { "retry back-off", t_retry_backoff },
        { "retries denser near expiry", t_retry_denser_near_expiry },
        { "failure log level", t_failure_level },
        { "bounded sleeps", t_sleep },
        { "what is due", t_plan },
        { "watchdog pings only with a live scheduler", t_watchdog },
        { NULL, NULL },
    };

    return cu_add_suite("schedule", tests);
}
