/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The renewal engine: a scheduler thread that decides, from each
 * certificate's own notBefore/notAfter and the wall clock, what is due
 * (renew, rekey, enroll, or retrying a failed delivery), and a pool of
 * worker threads that do it against the CA, so that renewals run
 * concurrently and never on the signing event loop.  At most one job per
 * identity is in flight; failures back off (denser, and louder, as expiry
 * nears); a certificate is only ever replaced by a better one.
 *
 * Methods, in order: POST /1.0/renew over mTLS with the current
 * certificate; when that cannot work (expired, no clientAuth EKU, the
 * handshake is refused) the x5c token renew; otherwise enrollment with the
 * identity's method (ACME or a JWK provisioner token).  A rotation uses
 * /1.0/rekey over mTLS, else enrollment with the new key.  After every new
 * certificate: the service files, the reload action, and a check that the
 * live endpoint serves the new certificate.
 */
#ifndef SHORTCERT_RENEW_H
#define SHORTCERT_RENEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct identity;
struct http01;
struct renewer;

/* ids: a table of n_ids identities (copied; the identities are borrowed
 * and must outlive the engine or the next renewer_swap()). */
int renewer_start(const struct cfg *cfg, struct identity **ids, size_t n_ids,
                  struct http01 *responder, struct renewer **ret);

/* Configuration reload: stop handing out jobs, drop the queued ones and
 * wait at most wait_ms for the running ones.  0: nothing runs until
 * renewer_resume(); -EBUSY: a job is still running (the engine runs on
 * as before). */
int renewer_pause(struct renewer *r, long wait_ms);
/* While paused: a new configuration and identity table (copied). */
int renewer_swap(struct renewer *r, const struct cfg *cfg,
                 struct identity **ids, size_t n_ids);
void renewer_resume(struct renewer *r);

/* The watchdog: the scheduler wakes at least every max_sleep_s and
 * records when (monotonic seconds, renewer_heartbeat()); a stuck
 * scheduler stops the watchdog pings. */
void renewer_set_heartbeat(struct renewer *r, int64_t max_sleep_s);
int64_t renewer_heartbeat(struct renewer *r);

/* Ask the engine to stop; wait at most wait_ms for the threads (a request
 * in flight may take longer: everything it writes is atomic, so leaving it
 * behind at exit loses nothing).  Returns true if every thread ended (r is
 * freed), false if some were left. */
bool renewer_stop(struct renewer *r, long wait_ms);

/* Renew (or, with rotate, rekey) an identity now, whatever its schedule
 * (shortcertctl renew/rotate). */
void renewer_request(struct renewer *r, struct identity *id, bool rotate);

/* The CAs' health and request latency, for the metrics (pointers into
 * the engine: valid until renewer_stop()).  Returns how many were
 * written. */
struct metrics_ca_view;
size_t renewer_ca_views(struct renewer *r, struct metrics_ca_view *out,
                        size_t max);

#endif
