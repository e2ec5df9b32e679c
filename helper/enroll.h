/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The enrollment worker: one thread that gets each identity a certificate
 * (ACME) when it has none, retries failures with capped exponential
 * back-off and jitter, and re-enrolls once two thirds of a certificate's
 * lifetime have passed.  It never runs on the signing event loop.
 */
#ifndef SHORTCERT_ENROLL_H
#define SHORTCERT_ENROLL_H

#include <stdbool.h>
#include <stddef.h>

struct cfg;
struct identity;
struct http01;
struct enroller;

int enroller_start(const struct cfg *cfg, struct identity *ids, size_t n_ids,
                   struct http01 *responder, struct enroller **ret);

/* Ask the worker to stop; wait at most wait_ms for it (an ACME exchange in
 * flight may take longer: the files it writes are atomic, so leaving it
 * behind at exit loses nothing). */
/* Returns true if the worker ended (e is freed), false if it was left. */
bool enroller_stop(struct enroller *e, long wait_ms);

/* Back-off before retry number n (1-based), in seconds, before jitter:
 * 10, 20, 40, ... capped at 600.  Exported for tests. */
long enroll_backoff_s(unsigned n);

#endif
