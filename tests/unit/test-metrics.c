/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the metrics: counters and histograms, the text exposition
 * (families in one block, label escaping, cumulative buckets, what is left
 * out when unknown), and the HTTP endpoint on a loopback socket.  When
 * SHORTCERT_METRICS_SAMPLE names a file, the rendered sample is written
 * there for `promtool check metrics` (tests/unit/meson.build).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "cu-main.h"
#include "metrics-server.h"
#include "metrics.h"

static struct metrics_id m_api, m_db;
static _Atomic uint64_t refusals[METRICS_REFUSAL_MAX];
static struct metrics_hist ca_lat;

static const struct metrics_endpoint_view api_eps[] = {
    { "127.0.0.1:443", true, 0 },
    { "odd\"name\\x\n:1", false, 3 }, /* escaping */
};

static char *render(void)
{
    static const struct metrics_daemon_view d = {
        .version = "0.1.0", .start_time = 1000, .refusals = refusals
    };
    const struct metrics_id_view ids[] = {
        { .name = "api", .counters = &m_api, .have_cert = true,
          .not_before = 1000, .not_after = 4600, .next_renewal = 3400,
          .renewal_interval_s = 2400, .last_success = 1060,
          .consecutive_failures = 0, .key_created = 900, .delivery_ok = 1,
          .endpoints = api_eps, .n_endpoints = 2 },
        /* nothing known yet: no certificate, no delivery, no key */
        { .name = "db", .counters = &m_db, .delivery_ok = -1,
          .consecutive_failures = 2 },
    };
    const struct metrics_ca_view cas[] = {
        { "https://ca.internal.test:9000", 1, &ca_lat },
        { "https://other.internal.test", -1, NULL },
    };
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (!f)
        return NULL;
    if (metrics_render(f, 2000, &d, ids, 2, cas, 2) < 0) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    return buf;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static unsigned count(const char *text, const char *s)
{
    unsigned c = 0;

    for (const char *p = text; (p = strstr(p, s)); p += strlen(s))
        c++;
    return c;
}

static void t_counters(void)
{
    memset(&m_api, 0, sizeof(m_api));
    memset(&m_db, 0, sizeof(m_db));
    metrics_sign(&m_api, METRICS_SIGN_OK, 40000);     /* 40 us */
    metrics_sign(&m_api, METRICS_SIGN_OK, 300000);    /* 300 us */
    metrics_sign(&m_api, METRICS_SIGN_OK, 5000000000); /* 5 s: +Inf only */
    metrics_sign(&m_api, METRICS_SIGN_DENIED, 1000);
    metrics_sign(&m_api, METRICS_SIGN_MAX, 1000); /* ignored */
    metrics_sign(NULL, METRICS_SIGN_OK, 1000);    /* ignored */
    CU_ASSERT_EQUAL(m_api.sign[METRICS_SIGN_OK], 3);
    CU_ASSERT_EQUAL(m_api.sign[METRICS_SIGN_DENIED], 1);
    CU_ASSERT_EQUAL(m_api.sign_latency.count, 3);
    CU_ASSERT_EQUAL(m_api.sign_latency.bucket[0], 1); /* <= 100 us */
    CU_ASSERT_EQUAL(m_api.sign_latency.bucket[2], 1); /* <= 500 us */
    metrics_renewal(&m_api, METRICS_METHOD_MTLS, true);
    metrics_renewal(&m_api, METRICS_METHOD_MTLS, true);
    metrics_renewal(&m_api, METRICS_METHOD_TOKEN, false);
    metrics_renewal(&m_api, METRICS_METHOD_MAX, false); /* ignored */
    CU_ASSERT_EQUAL(m_api.renewals[METRICS_METHOD_MTLS][0], 2);
    CU_ASSERT_EQUAL(m_api.renewals[METRICS_METHOD_TOKEN][1], 1);
    metrics_error(&m_db, METRICS_REASON_CA_UNREACHABLE);
    metrics_error(&m_db, METRICS_REASON_CA_UNREACHABLE);
    metrics_error(&m_db, METRICS_REASON_MAX); /* ignored */
    CU_ASSERT_EQUAL(m_db.errors[METRICS_REASON_CA_UNREACHABLE], 2);
    refusals[METRICS_REFUSAL_BAD_FRAME] = 7;
    memset(&ca_lat, 0, sizeof(ca_lat));
    {
        static const double b[] = METRICS_CA_BUCKETS;

        metrics_hist_observe(&ca_lat, b, METRICS_CA_NBUCKETS, 20000000);
    }
    CU_ASSERT_STRING_EQUAL(metrics_method_str(METRICS_METHOD_REKEY), "rekey");
    CU_ASSERT_STRING_EQUAL(metrics_reason_str(METRICS_REASON_TLS), "tls");
    CU_ASSERT_STRING_EQUAL(metrics_reason_str(METRICS_REASON_MAX), "unknown");
}

static void t_render(void)
{
    char *t = render();
    const char *sample = getenv("SHORTCERT_METRICS_SAMPLE");

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    if (sample) {
        FILE *f = fopen(sample, "w");

        CU_ASSERT_PTR_NOT_NULL(f);
        if (f) {
            fputs(t, f);
            fclose(f);
        }
    }
    /* each family declared once, before its samples */
    CU_ASSERT_EQUAL(count(t, "# TYPE shortcert_renewals_total counter\n"), 1);
    CU_ASSERT_EQUAL(count(t, "# TYPE shortcert_sign_duration_seconds "
                             "histogram\n"),
                    1);
    CU_ASSERT_TRUE(strstr(t, "# TYPE shortcert_renewals_total") <
                   strstr(t, "shortcert_renewals_total{"));
    CU_ASSERT_TRUE(has_line(t, "shortcert_build_info{version=\"0.1.0\"} 1"));
    CU_ASSERT_TRUE(has_line(t, "shortcert_identities 2"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_certificate_not_after_timestamp_seconds"
           "{identity=\"api\"} 4600"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_certificate_remaining_seconds{identity=\"api\"} 2600"));
    /* db has no certificate: no certificate samples, but its failures */
    CU_ASSERT_PTR_NULL(
        strstr(t, "not_after_timestamp_seconds{identity=\"db\""));
    CU_ASSERT_PTR_NULL(strstr(t, "remaining_seconds{identity=\"db\""));
    CU_ASSERT_PTR_NULL(strstr(t, "delivery_last_success{identity=\"db\""));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_renewal_consecutive_failures{identity=\"db\"} 2"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_renewal_last_success_timestamp_seconds"
           "{identity=\"db\"} 0"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_renewal_errors_total{identity=\"db\","
           "reason=\"ca_unreachable\"} 2"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_renewals_total{identity=\"api\",method=\"mtls\","
           "result=\"success\"} 2"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_renewals_total{identity=\"api\",method=\"token\","
           "result=\"failure\"} 1"));
    /* label escaping */
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_endpoint_serving_current{identity=\"api\","
           "endpoint=\"odd\\\"name\\\\x\\n:1\"} 0"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_endpoint_verify_failures_total{identity=\"api\","
           "endpoint=\"odd\\\"name\\\\x\\n:1\"} 3"));
    /* histograms: cumulative, +Inf = count */
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_sign_duration_seconds_bucket{identity=\"api\","
           "le=\"0.0001\"} 1"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_sign_duration_seconds_bucket{identity=\"api\","
           "le=\"0.0005\"} 2"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_sign_duration_seconds_bucket{identity=\"api\","
           "le=\"1\"} 2"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_sign_duration_seconds_bucket{identity=\"api\","
           "le=\"+Inf\"} 3"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_sign_duration_seconds_count{identity=\"api\"} 3"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_sign_duration_seconds_sum{identity=\"api\"} "
           "5.000340000"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_sign_requests_total{identity=\"api\","
           "result=\"denied\"} 1"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_ca_up{ca=\"https://ca.internal.test:9000\"} 1"));
    CU_ASSERT_PTR_NULL(strstr(t, "shortcert_ca_up{ca=\"https://other"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_ca_request_duration_seconds_bucket"
           "{ca=\"https://ca.internal.test:9000\",le=\"0.025\"} 1"));
    CU_ASSERT_TRUE(has_line(
        t, "shortcert_refused_peers_total{reason=\"bad_frame\"} 7"));
    free(t);
}

static int collect(FILE *f, void *ud)
{
    int *calls = ud;
    char *t = render();

    (*calls)++;
    if (!t)
        return -ENOMEM;
    fputs(t, f);
    free(t);
    return 0;
}

/* One HTTP/1.0 exchange; the whole reply (bounded) in buf. */
static ssize_t http(int port, const char *req, char *buf, size_t n)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    size_t got = 0;
    ssize_t r;

    if (fd < 0)
        return -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    while (got < n - 1 && (r = read(fd, buf + got, n - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    close(fd);
    return (ssize_t)got;
}

static void t_server(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof(a);
    struct metrics_server *s = NULL;
    static char buf[1 << 16];
    char err[256];
    int fd, calls = 0, port;

    /* metrics_listen_tcp() wants a real port; here the kernel picks one */
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CU_ASSERT_FATAL(listen(fd, 4) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    port = ntohs(a.sin_port);
    CU_ASSERT_EQUAL_FATAL(
        metrics_server_start(fd, collect, &calls, &s, err, sizeof(err)), 0);

    CU_ASSERT_TRUE(http(port, "GET /metrics HTTP/1.0\r\n\r\n", buf,
                        sizeof(buf)) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, " 200 OK\r\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(buf, "text/plain; version=0.0.4; charset=utf-8"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\r\n\r\n# HELP shortcert_"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(buf, "shortcert_refused_peers_total{reason=\"bad_frame\"} 7"));
    CU_ASSERT_EQUAL(calls, 1);

    CU_ASSERT_TRUE(http(port, "GET /other HTTP/1.0\r\n\r\n", buf,
                        sizeof(buf)) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, " 404 "));
    CU_ASSERT_TRUE(http(port,
                        "POST /metrics HTTP/1.0\r\nContent-Length: 1\r\n"
                        "\r\nx",
                        buf, sizeof(buf)) >= 0);
    CU_ASSERT_PTR_NULL(strstr(buf, " 200 "));
    CU_ASSERT_EQUAL(calls, 1); /* neither rendered the metrics */

    metrics_server_stop(s);
    /* the listening socket went with the server */
    CU_ASSERT_EQUAL(fcntl(fd, F_GETFD), -1);
    metrics_server_stop(NULL);
}

static void t_listen_spec(void)
{
    char err[256];
    int fd;

    CU_ASSERT_EQUAL(metrics_listen_tcp("localhost:9464", err, sizeof(err)),
                    -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'localhost:9464'"));
    CU_ASSERT_EQUAL(metrics_listen_tcp("127.0.0.1", err, sizeof(err)),
                    -EINVAL);
    CU_ASSERT_EQUAL(metrics_listen_tcp("127.0.0.1:0", err, sizeof(err)),
                    -EINVAL);
    CU_ASSERT_EQUAL(metrics_listen_tcp("127.0.0.1:65536", err, sizeof(err)),
                    -EINVAL);
    CU_ASSERT_EQUAL(metrics_listen_tcp("127.0.0.1:09", err, sizeof(err)),
                    -EINVAL);
    CU_ASSERT_EQUAL(metrics_listen_tcp("::1:9464", err, sizeof(err)),
                    -EINVAL);
    CU_ASSERT_EQUAL(metrics_listen_tcp("[127.0.0.1]:9464", err, sizeof(err)),
                    -EINVAL);
    CU_ASSERT_EQUAL(metrics_listen_tcp("", err, sizeof(err)), -EINVAL);
    /* a good one binds (a high port; EADDRINUSE is fine too) */
    fd = metrics_listen_tcp("127.0.0.1:39464", err, sizeof(err));
    CU_ASSERT_TRUE(fd >= 0 || fd == -EADDRINUSE);
    if (fd >= 0)
        close(fd);
}

int cu_register(void)
{
    static const struct cu_test tests[] = {
        { "counters and histograms", t_counters },
        { "text exposition", t_render },
        { "listen address syntax", t_listen_spec },
        { "HTTP endpoint", t_server },
        { NULL, NULL },
    };

    return cu_add_suite("metrics", tests);
}
