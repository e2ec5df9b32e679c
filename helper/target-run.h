/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Delivery to the [target] sections of an identity (target.h): write the
 * files atomically, run the actions with escalation, verify the endpoints,
 * and keep per-target results for `shortcertctl status --json`.
 * Blocking: runs on the renewal workers.
 */
#ifndef SHORTCERT_TARGET_RUN_H
#define SHORTCERT_TARGET_RUN_H

#include <stdbool.h>
#include <time.h>

#include <jansson.h>

struct identity;
struct keygen;

struct target_state {
    char result[24];    /* "served", "not-served", "not-running", ... */
    char reason[256];   /* why, for the last failure */
    char serial[80];    /* the serial last delivered */
    time_t last_time;
    unsigned long deliveries_ok;
    unsigned long deliveries_failed;
    unsigned long action_failures;
    unsigned long verify_failures;
    unsigned long escalations;
};

/* Write every target's files for generation g (unless already exactly in
 * place) and make the services load them.  Returns true when every target
 * serves g (or has nothing to verify, or its service is not running). */
bool targets_deliver(struct identity *id, struct keygen *g);

/* At start: write the files of every target for the current generation,
 * without actions (the services read them when they start). */
void targets_write_files(struct identity *id);

/* [{"name":..., "result":..., counters...}] */
json_t *targets_status_json(struct identity *id);

#endif
