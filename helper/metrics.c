/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus text exposition of shortcertd's metrics (docs/METRICS.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "metrics.h"

_Atomic uint64_t metrics_refusals[METRICS_REFUSAL_MAX];

static const double sign_bounds[METRICS_SIGN_NBUCKETS] = METRICS_SIGN_BUCKETS;
static const double ca_bounds[METRICS_CA_NBUCKETS] = METRICS_CA_BUCKETS;

static const char *const sign_result_str[METRICS_SIGN_MAX] = {
    [METRICS_SIGN_OK] = "ok",         [METRICS_SIGN_DENIED] = "denied",
    [METRICS_SIGN_PURPOSE] = "purpose", [METRICS_SIGN_STALE] = "stale_key",
    [METRICS_SIGN_ERROR] = "error",
};

static const char *const method_str[METRICS_METHOD_MAX] = {
    [METRICS_METHOD_MTLS] = "mtls",   [METRICS_METHOD_TOKEN] = "token",
    [METRICS_METHOD_REKEY] = "rekey", [METRICS_METHOD_ACME] = "acme",
    [METRICS_METHOD_JWK] = "jwk",
};

static const char *const reason_str[METRICS_REASON_MAX] = {
    [METRICS_REASON_CA_UNREACHABLE] = "ca_unreachable",
    [METRICS_REASON_TLS] = "tls",
    [METRICS_REASON_HTTP] = "http",
    [METRICS_REASON_BAD_REPLY] = "bad_reply",
    [METRICS_REASON_REJECTED] = "rejected",
    [METRICS_REASON_CONFIG] = "config",
    [METRICS_REASON_INTERNAL] = "internal",
};

static const char *const refusal_str[METRICS_REFUSAL_MAX] = {
    [METRICS_REFUSAL_UNKNOWN_IDENTITY] = "unknown_identity",
    [METRICS_REFUSAL_TOO_MANY_CONNECTIONS] = "too_many_connections",
    [METRICS_REFUSAL_BAD_FRAME] = "bad_frame",
};

const char *metrics_method_str(enum metrics_method m)
{
    return (unsigned)m < METRICS_METHOD_MAX ? method_str[m] : "unknown";
}

const char *metrics_reason_str(enum metrics_reason r)
{
    return (unsigned)r < METRICS_REASON_MAX ? reason_str[r] : "unknown";
}

void metrics_hist_observe(struct metrics_hist *h, const double *bounds,
                          size_t nbounds, uint64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i = 0;

    while (i < nbounds && s > bounds[i])
        i++;
    if (i < nbounds)
        atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void metrics_sign(struct metrics_id *m, enum metrics_sign_result r,
                  uint64_t ns)
{
    if (!m || (unsigned)r >= METRICS_SIGN_MAX)
        return;
    atomic_fetch_add_explicit(&m->sign[r], 1, memory_order_relaxed);
    if (r == METRICS_SIGN_OK)
        metrics_hist_observe(&m->sign_latency, sign_bounds,
                             METRICS_SIGN_NBUCKETS, ns);
}

void metrics_renewal(struct metrics_id *m, enum metrics_method method,
                     bool ok)
{
    if (!m || (unsigned)method >= METRICS_METHOD_MAX)
        return;
    atomic_fetch_add_explicit(&m->renewals[method][ok ? 0 : 1], 1,
                              memory_order_relaxed);
}

void metrics_error(struct metrics_id *m, enum metrics_reason reason)
{
    if (!m || (unsigned)reason >= METRICS_REASON_MAX)
        return;
    atomic_fetch_add_explicit(&m->errors[reason], 1, memory_order_relaxed);
}

static uint64_t ld(const _Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

void metrics_label_value(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '\\': fputs("\\\\", f); break;
        case '"': fputs("\\\"", f); break;
        case '\n': fputs("\\n", f); break;
        default: fputc(*s, f); break;
        }
    }
}

static void family(FILE *f, const char *name, const char *type,
                   const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{identity="..."[,extra]} */
static void id_sample(FILE *f, const char *name, const char *id)
{
    fprintf(f, "%s{identity=\"", name);
    metrics_label_value(f, id);
    fputc('"', f);
}

static void hist(FILE *f, const char *name, const char *label,
                 const char *value, const struct metrics_hist *h,
                 const double *bounds, size_t nbounds)
{
    uint64_t cum = 0, count;

    for (size_t i = 0; i < nbounds; i++) {
        cum += ld(&h->bucket[i]);
        fprintf(f, "%s_bucket{%s=\"", name, label);
        metrics_label_value(f, value);
        fprintf(f, "\",le=\"%g\"} %" PRIu64 "\n", bounds[i], cum);
    }
    /* count is read after the buckets; a concurrent observation may land
     * in between, and +Inf must never be below the last bucket */
    count = ld(&h->count);
    if (count < cum)
        count = cum;
    fprintf(f, "%s_bucket{%s=\"", name, label);
    metrics_label_value(f, value);
    fprintf(f, "\",le=\"+Inf\"} %" PRIu64 "\n", count);
    fprintf(f, "%s_sum{%s=\"", name, label);
    metrics_label_value(f, value);
    fprintf(f, "\"} %.9f\n", (double)ld(&h->sum_ns) / 1e9);
    fprintf(f, "%s_count{%s=\"", name, label);
    metrics_label_value(f, value);
    fprintf(f, "\"} %" PRIu64 "\n", count);
}

/* A per-identity gauge of a time_t field; left out where it is 0. */
#define ID_TIME_GAUGE(f, ids, n, mname, help, field, keep_zero)                \
    do {                                                                      \
        family(f, mname, "gauge", help);                                       \
        for (size_t i_ = 0; i_ < (n); i_++) {                                 \
            if (!(keep_zero) && (ids)[i_].field == 0)                         \
                continue;                                                     \
            id_sample(f, mname, (ids)[i_].name);                               \
            fprintf(f, "} %lld\n", (long long)(ids)[i_].field);               \
        }                                                                     \
    } while (0)

int metrics_render(FILE *f, time_t now, const struct metrics_daemon_view *d,
                   const struct metrics_id_view *ids, size_t n_ids,
                   const struct metrics_ca_view *cas, size_t n_cas)
{
    family(f, "shortcert_build_info", "gauge",
           "shortcertd's version; always 1.");
    fputs("shortcert_build_info{version=\"", f);
    metrics_label_value(f, d->version);
    fputs("\"} 1\n", f);
    family(f, "shortcert_start_time_seconds", "gauge",
           "When shortcertd started, Unix seconds.");
    fprintf(f, "shortcert_start_time_seconds %lld\n",
            (long long)d->start_time);
    family(f, "shortcert_identities", "gauge", "Configured identities.");
    fprintf(f, "shortcert_identities %zu\n", n_ids);

    family(f, "shortcert_certificate_not_before_timestamp_seconds", "gauge",
           "notBefore of the current certificate.");
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i].have_cert) {
            id_sample(f, "shortcert_certificate_not_before_timestamp_seconds",
                      ids[i].name);
            fprintf(f, "} %lld\n", (long long)ids[i].not_before);
        }
    family(f, "shortcert_certificate_not_after_timestamp_seconds", "gauge",
           "notAfter of the current certificate.");
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i].have_cert) {
            id_sample(f, "shortcert_certificate_not_after_timestamp_seconds",
                      ids[i].name);
            fprintf(f, "} %lld\n", (long long)ids[i].not_after);
        }
    family(f, "shortcert_certificate_remaining_seconds", "gauge",
           "Seconds until the current certificate expires (negative once "
           "expired).");
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i].have_cert) {
            id_sample(f, "shortcert_certificate_remaining_seconds",
                      ids[i].name);
            fprintf(f, "} %lld\n", (long long)(ids[i].not_after - now));
        }
    ID_TIME_GAUGE(f, ids, n_ids, "shortcert_renewal_next_timestamp_seconds",
                  "When the next renewal or retry is due.", next_renewal,
                  false);
    family(f, "shortcert_renewal_interval_seconds", "gauge",
           "Planned time between two renewals: one renewal window.");
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i].renewal_interval_s > 0) {
            id_sample(f, "shortcert_renewal_interval_seconds", ids[i].name);
            fprintf(f, "} %lld\n", (long long)ids[i].renewal_interval_s);
        }
    ID_TIME_GAUGE(f, ids, n_ids,
                  "shortcert_renewal_last_success_timestamp_seconds",
                  "Last successful issuance, renewal or rekey (0: none).",
                  last_success, true);
    family(f, "shortcert_renewals_total", "counter",
           "Renewals by method and result.");
    for (size_t i = 0; i < n_ids; i++)
        for (int m = 0; m < METRICS_METHOD_MAX; m++)
            for (int r = 0; r < 2; r++) {
                id_sample(f, "shortcert_renewals_total", ids[i].name);
                fprintf(f, ",method=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                        method_str[m], r ? "failure" : "success",
                        ld(&ids[i].counters->renewals[m][r]));
            }
    family(f, "shortcert_renewal_errors_total", "counter",
           "Failed renewal attempts by reason.");
    for (size_t i = 0; i < n_ids; i++)
        for (int r = 0; r < METRICS_REASON_MAX; r++) {
            id_sample(f, "shortcert_renewal_errors_total", ids[i].name);
            fprintf(f, ",reason=\"%s\"} %" PRIu64 "\n", reason_str[r],
                    ld(&ids[i].counters->errors[r]));
        }
    family(f, "shortcert_renewal_consecutive_failures", "gauge",
           "Failed attempts since the last success.");
    for (size_t i = 0; i < n_ids; i++) {
        id_sample(f, "shortcert_renewal_consecutive_failures", ids[i].name);
        fprintf(f, "} %u\n", ids[i].consecutive_failures);
    }
    ID_TIME_GAUGE(f, ids, n_ids, "shortcert_key_created_timestamp_seconds",
                  "When the current key generation was made.", key_created,
                  false);

    family(f, "shortcert_delivery_last_success", "gauge",
           "1 if the last delivery succeeded, else 0.");
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i].delivery_ok >= 0) {
            id_sample(f, "shortcert_delivery_last_success", ids[i].name);
            fprintf(f, "} %d\n", ids[i].delivery_ok);
        }
    family(f, "shortcert_delivery_failures_total", "counter",
           "Failed deliveries.");
    for (size_t i = 0; i < n_ids; i++) {
        id_sample(f, "shortcert_delivery_failures_total", ids[i].name);
        fprintf(f, "} %" PRIu64 "\n", ld(&ids[i].counters->delivery_failures));
    }
    family(f, "shortcert_endpoint_serving_current", "gauge",
           "1 if the last live check saw the current certificate served.");
    for (size_t i = 0; i < n_ids; i++)
        for (size_t e = 0; e < ids[i].n_endpoints; e++) {
            id_sample(f, "shortcert_endpoint_serving_current", ids[i].name);
            fputs(",endpoint=\"", f);
            metrics_label_value(f, ids[i].endpoints[e].endpoint);
            fprintf(f, "\"} %d\n", ids[i].endpoints[e].serving_current);
        }
    family(f, "shortcert_endpoint_verify_failures_total", "counter",
           "Live checks that did not see the current certificate.");
    for (size_t i = 0; i < n_ids; i++)
        for (size_t e = 0; e < ids[i].n_endpoints; e++) {
            id_sample(f, "shortcert_endpoint_verify_failures_total",
                      ids[i].name);
            fputs(",endpoint=\"", f);
            metrics_label_value(f, ids[i].endpoints[e].endpoint);
            fprintf(f, "\"} %" PRIu64 "\n",
                    ids[i].endpoints[e].verify_failures);
        }

    family(f, "shortcert_ca_up", "gauge",
           "1 if the last /health probe of the CA answered ok, else 0.");
    for (size_t i = 0; i < n_cas; i++)
        if (cas[i].up >= 0) {
            fputs("shortcert_ca_up{ca=\"", f);
            metrics_label_value(f, cas[i].url);
            fprintf(f, "\"} %d\n", cas[i].up);
        }
    family(f, "shortcert_ca_request_duration_seconds", "histogram",
           "Duration of requests to the CA.");
    for (size_t i = 0; i < n_cas; i++)
        if (cas[i].latency)
            hist(f, "shortcert_ca_request_duration_seconds", "ca",
                 cas[i].url, cas[i].latency, ca_bounds, METRICS_CA_NBUCKETS);

    family(f, "shortcert_sign_requests_total", "counter",
           "Signing requests by result.");
    for (size_t i = 0; i < n_ids; i++)
        for (int r = 0; r < METRICS_SIGN_MAX; r++) {
            id_sample(f, "shortcert_sign_requests_total", ids[i].name);
            fprintf(f, ",result=\"%s\"} %" PRIu64 "\n", sign_result_str[r],
                    ld(&ids[i].counters->sign[r]));
        }
    family(f, "shortcert_sign_duration_seconds", "histogram",
           "Time from request to reply of successful signatures.");
    for (size_t i = 0; i < n_ids; i++)
        hist(f, "shortcert_sign_duration_seconds", "identity", ids[i].name,
             &ids[i].counters->sign_latency, sign_bounds,
             METRICS_SIGN_NBUCKETS);
    family(f, "shortcert_refused_peers_total", "counter",
           "Requests refused before any identity was involved.");
    for (int r = 0; r < METRICS_REFUSAL_MAX; r++)
        fprintf(f, "shortcert_refused_peers_total{reason=\"%s\"} %" PRIu64
                   "\n",
                refusal_str[r], d->refusals ? ld(&d->refusals[r]) : 0);

    if (fflush(f) != 0 || ferror(f))
        return -EIO;
    return 0;
}
