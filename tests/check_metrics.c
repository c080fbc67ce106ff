/* check_metrics — Prometheus text exposition (format 0.0.4) of counters, gauges and
 * histograms, label escaping, concurrent updates, and the HTTP endpoint over a real socket.
 * Expected texts are written out by hand from the exposition format's rules. */
#include "http.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

START_TEST(renders_exposition_format)
{
    vem_metrics_t *m = vem_metrics_new();
    const char *login[] = {"cmd", "login", "dialect", "hj1239", NULL};
    const char *rt[] = {"cmd", "realtime", "dialect", "gb17691", NULL};
    vem_counter_t *c1 = vem_metrics_counter(m, "vem_frames_total", "Frames decoded.", login);
    vem_counter_t *c2 = vem_metrics_counter(m, "vem_frames_total", "Frames decoded.", rt);
    ck_assert_ptr_eq(vem_metrics_counter(m, "vem_frames_total", "Frames decoded.", login), c1);
    vem_counter_add(c1, 3);
    vem_counter_add(c2, 1);
    vem_counter_add(c2, 41);
    vem_gauge_t *g = vem_metrics_gauge(m, "vem_spool_bytes", "Bytes in the spool.", NULL);
    vem_gauge_set(g, 1000);
    vem_gauge_add(g, -1);
    const char *q[] = {"detail", "say \"hi\"\\\n", NULL};
    vem_gauge_set(vem_metrics_gauge(m, "vem_odd", "Escaping.", q), -5);
    const double bounds[] = {0.001, 0.01, 0.1};
    const char *st[] = {"stage", "decode", NULL};
    vem_histogram_t *h =
        vem_metrics_histogram(m, "vem_stage_seconds", "Stage latency.", st, bounds, 3);
    vem_histogram_observe_ns(h, 500000);     /* 0.0005 s: first bucket */
    vem_histogram_observe_ns(h, 1000000);    /* 0.001 s: le is inclusive, first bucket */
    vem_histogram_observe_ns(h, 50000000);   /* 0.05 s: third */
    vem_histogram_observe_ns(h, 2000000000); /* 2 s: +Inf only */
    /* A name reused with another type is refused. */
    ck_assert_ptr_null(vem_metrics_gauge(m, "vem_frames_total", "x", NULL));

    size_t len;
    char *text = vem_metrics_render(m, &len);
    const char *expected = "# HELP vem_frames_total Frames decoded.\n"
                           "# TYPE vem_frames_total counter\n"
                           "vem_frames_total{cmd=\"login\",dialect=\"hj1239\"} 3\n"
                           "vem_frames_total{cmd=\"realtime\",dialect=\"gb17691\"} 42\n"
                           "# HELP vem_spool_bytes Bytes in the spool.\n"
                           "# TYPE vem_spool_bytes gauge\n"
                           "vem_spool_bytes 999\n"
                           "# HELP vem_odd Escaping.\n"
                           "# TYPE vem_odd gauge\n"
                           "vem_odd{detail=\"say \\\"hi\\\"\\\\\\n\"} -5\n"
                           "# HELP vem_stage_seconds Stage latency.\n"
                           "# TYPE vem_stage_seconds histogram\n"
                           "vem_stage_seconds_bucket{stage=\"decode\",le=\"0.001\"} 2\n"
                           "vem_stage_seconds_bucket{stage=\"decode\",le=\"0.01\"} 2\n"
                           "vem_stage_seconds_bucket{stage=\"decode\",le=\"0.1\"} 3\n"
                           "vem_stage_seconds_bucket{stage=\"decode\",le=\"+Inf\"} 4\n"
                           "vem_stage_seconds_sum{stage=\"decode\"} 2.0515\n"
                           "vem_stage_seconds_count{stage=\"decode\"} 4\n";
    ck_assert_str_eq(text, expected);
    ck_assert_uint_eq(len, strlen(expected));
    free(text);
    vem_metrics_destroy(&m);
    ck_assert_ptr_null(m);
}
END_TEST

static void s_collect(void *arg, const char *series, double value)
{
    char *out = arg;
    size_t len = strlen(out);
    snprintf(out + len, 1024 - len, "%s=%g;", series, value);
}

START_TEST(each_visits_every_series)
{
    vem_metrics_t *m = vem_metrics_new();
    const char *rt[] = {"cmd", "realtime", NULL};
    vem_counter_add(vem_metrics_counter(m, "vem_frames_total", "F.", rt), 7);
    vem_gauge_set(vem_metrics_gauge(m, "vem_connections", "C.", NULL), 3);
    const double bounds[] = {0.5};
    vem_histogram_t *h = vem_metrics_histogram(m, "vem_lat_seconds", "L.", NULL, bounds, 1);
    vem_histogram_observe_ns(h, 250000000);
    vem_histogram_observe_ns(h, 1000000000);
    char out[1024] = "";
    vem_metrics_each(m, s_collect, out);
    ck_assert_str_eq(out, "vem_frames_total{cmd=\"realtime\"}=7;vem_connections=3;"
                          "vem_lat_seconds_count=2;vem_lat_seconds_sum=1.25;");
    vem_metrics_destroy(&m);
}
END_TEST

static void *s_hammer(void *arg)
{
    for (int i = 0; i < 100000; i++)
        vem_counter_add(arg, 1);
    return NULL;
}

START_TEST(concurrent_adds_are_not_lost)
{
    vem_metrics_t *m = vem_metrics_new();
    vem_counter_t *c = vem_metrics_counter(m, "vem_x_total", "x", NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, s_hammer, c);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    char *text = vem_metrics_render(m, NULL);
    ck_assert_ptr_nonnull(strstr(text, "\nvem_x_total 400000\n"));
    free(text);
    vem_metrics_destroy(&m);
}
END_TEST

static bool s_health_flag;
static bool s_health(void *arg, char *why, size_t whylen)
{
    (void)arg;
    if (!s_health_flag)
        snprintf(why, whylen, "postgres sink down");
    return s_health_flag;
}

/* One HTTP/1.0 request over a plain socket; returns the whole response (caller frees). */
static char *s_get(uint16_t port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[128];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - len - 1)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    close(fd);
    return buf;
}

START_TEST(http_serves_metrics_and_health)
{
    vem_metrics_t *m = vem_metrics_new();
    vem_counter_add(vem_metrics_counter(m, "vem_bytes_total", "Bytes.", NULL), 12345);
    char err[256];
    s_health_flag = true;
    vem_http_t *http = vem_http_new("127.0.0.1", 0, m, s_health, NULL, err, sizeof err);
    ck_assert_msg(http != NULL, "%s", err);
    uint16_t port = vem_http_port(http);
    ck_assert_uint_gt(port, 0);

    char *resp = s_get(port, "/metrics");
    ck_assert_ptr_nonnull(strstr(resp, " 200 "));
    ck_assert_ptr_nonnull(strstr(resp, "text/plain; version=0.0.4"));
    ck_assert_ptr_nonnull(strstr(resp, "\r\n\r\n# HELP vem_bytes_total Bytes.\n"));
    ck_assert_ptr_nonnull(strstr(resp, "\nvem_bytes_total 12345\n"));
    free(resp);

    resp = s_get(port, "/healthz");
    ck_assert_ptr_nonnull(strstr(resp, " 200 "));
    ck_assert_ptr_nonnull(strstr(resp, "\r\n\r\nok\n"));
    free(resp);
    s_health_flag = false;
    resp = s_get(port, "/healthz");
    ck_assert_ptr_nonnull(strstr(resp, " 503 "));
    ck_assert_ptr_nonnull(strstr(resp, "postgres sink down"));
    free(resp);
    resp = s_get(port, "/etc/passwd");
    ck_assert_ptr_nonnull(strstr(resp, " 404 "));
    free(resp);

    vem_http_destroy(&http);
    ck_assert_ptr_null(http);
    vem_metrics_destroy(&m);
}
END_TEST

START_TEST(http_rejects_bad_address)
{
    char err[256] = "";
    vem_metrics_t *m = vem_metrics_new();
    ck_assert_ptr_null(vem_http_new("localhost:9", 0, m, NULL, NULL, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "not an IP literal"));
    vem_metrics_destroy(&m);
}
END_TEST

Suite *vem_suite_metrics(void);
Suite *vem_suite_metrics(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, renders_exposition_format);
    tcase_add_test(tc, each_visits_every_series);
    tcase_add_test(tc, concurrent_adds_are_not_lost);
    tcase_add_test(tc, http_serves_metrics_and_health);
    tcase_add_test(tc, http_rejects_bad_address);
    suite_add_tcase(s, tc);
    return s;
}
