/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metrics in the Prometheus text format (docs/METRICS.md).
 *
 * Counters and histograms are lock-free atomics that the hot paths bump
 * (signing, renewal, delivery); gauges are read at scrape time from a
 * snapshot the daemon fills in (struct metrics_id_view), so the renderer
 * never reaches into identity state itself.  The renderer writes every
 * metric family in one block (HELP, TYPE, samples), label values escaped
 * as the format demands.  Library code: no logging.
 */
#ifndef SHORTCERT_METRICS_H
#define SHORTCERT_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

enum metrics_sign_result {
    METRICS_SIGN_OK,
    METRICS_SIGN_DENIED,  /* peer not on the allow list */
    METRICS_SIGN_PURPOSE, /* not a TLS handshake input for the role */
    METRICS_SIGN_STALE,   /* key generation no longer usable */
    METRICS_SIGN_ERROR,   /* bad request, scheme, not ready, internal */
    METRICS_SIGN_MAX,
};

enum metrics_method {
    METRICS_METHOD_MTLS,
    METRICS_METHOD_TOKEN,
    METRICS_METHOD_REKEY,
    METRICS_METHOD_ACME,
    METRICS_METHOD_JWK,
    METRICS_METHOD_MAX,
};

enum metrics_reason {
    METRICS_REASON_CA_UNREACHABLE,
    METRICS_REASON_TLS,
    METRICS_REASON_HTTP,
    METRICS_REASON_BAD_REPLY,
    METRICS_REASON_REJECTED, /* a reply that failed our checks */
    METRICS_REASON_CONFIG,
    METRICS_REASON_INTERNAL,
    METRICS_REASON_MAX,
};

enum metrics_refusal {
    METRICS_REFUSAL_UNKNOWN_IDENTITY,
    METRICS_REFUSAL_TOO_MANY_CONNECTIONS,
    METRICS_REFUSAL_BAD_FRAME,
    METRICS_REFUSAL_MAX,
};

/* Upper bounds of the latency histograms' buckets, in seconds. */
#define METRICS_SIGN_BUCKETS                                                  \
    { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1 }
#define METRICS_SIGN_NBUCKETS 10
#define METRICS_CA_BUCKETS { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 }
#define METRICS_CA_NBUCKETS 12
#define METRICS_NBUCKETS_MAX 12

struct metrics_hist {
    _Atomic uint64_t bucket[METRICS_NBUCKETS_MAX]; /* not cumulative */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
};

/* Per identity counters: embedded where the identity lives, zeroed at
 * creation (all-zero is the initial state). */
struct metrics_id {
    _Atomic uint64_t sign[METRICS_SIGN_MAX];
    struct metrics_hist sign_latency;
    _Atomic uint64_t renewals[METRICS_METHOD_MAX][2]; /* [0] ok, [1] failed */
    _Atomic uint64_t errors[METRICS_REASON_MAX];
    _Atomic uint64_t delivery_failures;
    _Atomic uint64_t verify_failures; /* the identity's own endpoints */
};

struct metrics_endpoint_view {
    const char *endpoint; /* "host:port" */
    bool serving_current; /* the last check saw the current certificate */
    uint64_t verify_failures;
};

/* What the daemon knows about one identity at scrape time.  Times are
 * Unix seconds; 0 means unknown (that sample is then left out, except
 * last_success, which is 0 when there has been none). */
struct metrics_id_view {
    const char *name;
    const struct metrics_id *counters;
    bool have_cert;
    time_t not_before, not_after;
    time_t next_renewal;
    int64_t renewal_interval_s;
    time_t last_success;
    unsigned consecutive_failures;
    time_t key_created;
    int delivery_ok; /* 1 ok, 0 failed, -1 no delivery yet */
    const struct metrics_endpoint_view *endpoints;
    size_t n_endpoints;
};

struct metrics_ca_view {
    const char *url;
    int up; /* 1, 0, or -1 not probed yet */
    const struct metrics_hist *latency;
};

/* Refusals before any identity was involved (the signing socket bumps
 * them; one set per process). */
extern _Atomic uint64_t metrics_refusals[METRICS_REFUSAL_MAX];

struct metrics_daemon_view {
    const char *version;
    time_t start_time;
    const _Atomic uint64_t *refusals; /* [METRICS_REFUSAL_MAX] */
};

void metrics_hist_observe(struct metrics_hist *h, const double *bounds,
                          size_t nbounds, uint64_t ns);
void metrics_sign(struct metrics_id *m, enum metrics_sign_result r,
                  uint64_t ns);
void metrics_renewal(struct metrics_id *m, enum metrics_method method,
                     bool ok);
void metrics_error(struct metrics_id *m, enum metrics_reason reason);

const char *metrics_method_str(enum metrics_method m);
const char *metrics_reason_str(enum metrics_reason r);

/* Write the whole exposition to f.  now is the scrape time (for
 * remaining seconds).  -errno on a write error. */
int metrics_render(FILE *f, time_t now, const struct metrics_daemon_view *d,
                   const struct metrics_id_view *ids, size_t n_ids,
                   const struct metrics_ca_view *cas, size_t n_cas);

/* Write s as a label value: backslash, double quote and newline escaped. */
void metrics_label_value(FILE *f, const char *s);

#endif
