/* it_health — regression tests for defects a review found in vemd, each against a vemd of its
 * own and the harness's real PostgreSQL.
 *
 *   healthz_quiet_pg_outage         /healthz is 200 "ok", turns 503 naming the PostgreSQL sink
 *                                   within seconds of PostgreSQL stopping while no terminal
 *                                   sends anything, and 200 again once it is back
 *   healthz_pg_outage_under_traffic the same while a small fleet streams
 *   connections_gauge_while_open    vem_connections equals the connections the test holds open
 *   connections_exact_after_races   60 raw connections, half left silent for vemd's idle close,
 *                                   half closed by the test right when vemd closes them too
 *                                   (FIN or RST, some after a login); twice: afterwards
 *                                   vem_connections is 0, accepted = opened, closed = accepted
 *   sigterm_pg_down_drain_timeout   SIGTERM while PostgreSQL is down: exit 0 after the drain
 *                                   timeout, saying so; restarted on the same spool with
 *                                   PostgreSQL back, every sample of the fleet is stored
 *   quarantine_keeps_reasm_detail   quarantine rows of bytes the reassembler dropped carry its
 *                                   class and its specific reason (parsers/reasm.c), not a
 *                                   generic text
 *   sighup_empty_config_refused     an empty file over the configuration is refused on SIGHUP
 *                                   and the running configuration stays (replies to data
 *                                   frames go on); a valid reload afterwards applies
 *
 * Expected values come from what the test sent and did: the connections it opened, the bytes
 * it wrote, vem-sim's truth. Never from vemd's own output. */
#include "itutil.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* ---- helpers --------------------------------------------------------------------------------- */

/* Sum of the series of one metric name (every label set) in a status. */
static double s_metric_sum(json_t *status, const char *name)
{
    size_t n = strlen(name);
    double sum = 0;
    const char *series;
    json_t *value;
    json_object_foreach(json_object_get(status, "metrics"), series, value)
    {
        if (strncmp(series, name, n) == 0 && (series[n] == '\0' || series[n] == '{'))
            sum += json_number_value(value);
    }
    return sum;
}

/* s_metric_sum of vemd right now. */
static double s_metric_sum_of(const vem_it_run_t *r, const char *name)
{
    json_t *st = vem_it_status(r, "--json");
    ck_assert_msg(st != NULL, "vemd did not answer vemctl status");
    double v = s_metric_sum(st, name);
    json_decref(st);
    return v;
}

/* A TCP connection to 127.0.0.1:port. */
static int s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect to %d: %s", port,
                  strerror(errno));
    return fd;
}

static void s_send_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        ck_assert_msg(n > 0, "send: %s", strerror(errno));
        data += n;
        len -= (size_t)n;
    }
}

/* Closes fd with a reset instead of a FIN. */
static void s_close_rst(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* Waits up to timeout_s for the peer to close fd (reads and drops what it sends meanwhile);
 * true when it did. */
static bool s_wait_eof(int fd, double timeout_s)
{
    double end = vem_it_mono() + timeout_s;
    for (;;) {
        double left = end - vem_it_mono();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0)
            continue;
        uint8_t buf[512];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
    }
}

/* ---- /healthz -------------------------------------------------------------------------------- */

/* The outage half of the /healthz tests: 200 "ok" before, 503 naming the PostgreSQL sink
 * within seconds of the stop, 200 "ok" within 20 s of the start (retry_max_s = 2). */
static void s_health_across_outage(vem_it_run_t *r)
{
    char body[512];
    int status = vem_it_health_until(r->metrics_port, 200, 10, body, sizeof body);
    ck_assert_msg(status == 200, "/healthz before the outage: %d %s", status, body);
    ck_assert_str_eq(body, "ok\n");

    vem_it_pgctl("stop");
    double t = vem_it_mono();
    status = vem_it_health_until(r->metrics_port, 503, 10, body, sizeof body);
    fprintf(stderr, "it_health: /healthz %d after PostgreSQL stopped (%.1f s): %s", status,
            vem_it_mono() - t, body);
    if (status != 503) {
        vem_it_pgctl("start");
        vem_it_show_log(r);
    }
    ck_assert_msg(status == 503, "/healthz still %d 10 s after PostgreSQL stopped: %s", status,
                  body);
    ck_assert_msg(strstr(body, "PostgreSQL") != NULL, "/healthz 503 without the sink: %s", body);

    vem_it_pgctl("start");
    t = vem_it_mono();
    status = vem_it_health_until(r->metrics_port, 200, 20, body, sizeof body);
    fprintf(stderr, "it_health: /healthz %d after PostgreSQL started (%.1f s): %s", status,
            vem_it_mono() - t, body);
    ck_assert_msg(status == 200, "/healthz still %d 20 s after PostgreSQL started: %s", status,
                  body);
    ck_assert_str_eq(body, "ok\n");
}

/* No terminal sends anything: a load balancer still needs the truth. */
START_TEST(healthz_quiet_pg_outage)
{
    vem_it_pg_up();
    vem_it_run_t r = {.metrics_port = vem_it_free_port(), .pg_opts = "retry_max_s = 2;"};
    vem_it_start(&r, "it_health");
    s_health_across_outage(&r);
    vem_it_stop(&r);
}
END_TEST

START_TEST(healthz_pg_outage_under_traffic)
{
    vem_it_pg_up();
    vem_it_run_t r = {.metrics_port = vem_it_free_port(), .pg_opts = "retry_max_s = 2;"};
    vem_it_start(&r, "it_health");
    char *extra[] = {"--trucks", "3",      "--duration", "60",           "--rate",
                     "1",        "--seed", "51",         "--vin-prefix", "LHLTRF"};
    pid_t sim = vem_it_run_sim(&r, extra, 10);
    s_health_across_outage(&r);
    kill(sim, SIGTERM);
    vem_it_wait(sim, 20);
    vem_it_stop(&r);
}
END_TEST

/* ---- vem_connections ------------------------------------------------------------------------- */

/* Waits (up to timeout_s) until vemd has accepted `want` connections in all. */
static void s_accepted_until(const vem_it_run_t *r, double want, double timeout_s)
{
    double end = vem_it_mono() + timeout_s, got;
    while ((got = vem_it_metric_now(r, "vem_connections_accepted_total")) < want &&
           vem_it_mono() < end)
        vem_it_sleep(0.1);
    ck_assert_msg(got == want, "vemd accepted %.0f connections, the test opened %.0f", got, want);
}

/* Waits (up to timeout_s) until vemd has closed `want` connections in all; returns the gauge. */
static double s_closed_until(const vem_it_run_t *r, double want, double timeout_s)
{
    double end = vem_it_mono() + timeout_s, closed = 0;
    for (;;) {
        closed = s_metric_sum_of(r, "vem_connections_closed_total");
        if (closed >= want || vem_it_mono() >= end)
            break;
        vem_it_sleep(0.1);
    }
    /* the gauge moves just after the counter: read both again a moment later */
    vem_it_sleep(0.5);
    json_t *st = vem_it_status(r, "--json");
    ck_assert_ptr_nonnull(st);
    closed = s_metric_sum(st, "vem_connections_closed_total");
    double open = vem_it_metric(st, "vem_connections");
    json_decref(st);
    ck_assert_msg(closed == want, "vemd counts %.0f connections closed, the test closed %.0f",
                  closed, want);
    return open;
}

START_TEST(connections_gauge_while_open)
{
    enum { N = 20 };
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_health");
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = s_connect(r.port);
    s_accepted_until(&r, N, 10);
    double open = vem_it_metric_now(&r, "vem_connections");
    ck_assert_msg(open == N, "the test holds %d connections open, vem_connections says %.0f", N,
                  open);
    for (int i = 0; i < N / 2; i++)
        close(fds[i]);
    open = s_closed_until(&r, N / 2, 10);
    ck_assert_msg(open == N - N / 2,
                  "the test holds %d connections open, vem_connections says %.0f", N - N / 2, open);
    for (int i = N / 2; i < N; i++)
        close(fds[i]);
    open = s_closed_until(&r, N, 10);
    ck_assert_msg(open == 0, "every connection is closed, vem_connections says %.0f", open);
    vem_it_stop(&r);
}
END_TEST

/* Each cycle opens 60 connections: 0..29 stay silent until vemd's idle close (3 s, swept once a
 * second, so it comes 3..4 s after the open); 30..59 are closed by the test spread over
 * 2.8..4.0 s, so some go before vemd's close, some after, some at the same moment; of these,
 * 30..39 sent a login first, and the odd ones close with a reset. */
START_TEST(connections_exact_after_races)
{
    enum { N = 60, SILENT = 30, LOGINS = 10, CYCLES = 2 };
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_health");
    uint8_t login[512];
    long login_len = vem_test_vector_bytes("login", login, sizeof login);
    for (int cycle = 1; cycle <= CYCLES; cycle++) {
        int fds[N];
        double t0 = vem_it_mono();
        for (int i = 0; i < N; i++)
            fds[i] = s_connect(r.port);
        for (int i = SILENT; i < SILENT + LOGINS; i++)
            s_send_all(fds[i], login, (size_t)login_len);
        for (int i = SILENT; i < N; i++) {
            vem_it_sleep(t0 + 2.8 + 1.2 * (i - SILENT) / (N - SILENT - 1) - vem_it_mono());
            if (i % 2)
                s_close_rst(fds[i]);
            else
                close(fds[i]);
        }
        for (int i = 0; i < SILENT; i++) {
            ck_assert_msg(s_wait_eof(fds[i], 10), "cycle %d: silent connection %d never closed",
                          cycle, i);
            close(fds[i]);
        }
        /* a few seconds for the last notices, then until the counts add up (or 15 s) */
        vem_it_sleep(3);
        double opened = (double)N * cycle;
        json_t *st = NULL;
        for (double end = vem_it_mono() + 15; !st || vem_it_mono() < end; vem_it_sleep(0.2)) {
            json_decref(st);
            st = vem_it_status(&r, "--json");
            ck_assert_ptr_nonnull(st);
            if (vem_it_metric(st, "vem_connections_accepted_total") >= opened &&
                s_metric_sum(st, "vem_connections_closed_total") >= opened &&
                vem_it_metric(st, "vem_connections") == 0)
                break;
        }
        double accepted = vem_it_metric(st, "vem_connections_accepted_total");
        double closed = s_metric_sum(st, "vem_connections_closed_total");
        double idle = vem_it_metric(st, "vem_connections_closed_total{reason=\"idle\"}");
        double open = vem_it_metric(st, "vem_connections");
        fprintf(stderr,
                "it_health connections cycle %d: opened %.0f; vemd: accepted %.0f, closed %.0f "
                "(idle %.0f, peer %.0f, limit %.0f), late notices %.0f, open %.0f\n",
                cycle, opened, accepted, closed, idle,
                vem_it_metric(st, "vem_connections_closed_total{reason=\"peer\"}"),
                vem_it_metric(st, "vem_connections_closed_total{reason=\"limit\"}"),
                vem_it_metric(st, "vem_late_disconnects_total"), open);
        json_decref(st);
        ck_assert_msg(accepted == opened, "cycle %d: the test opened %.0f, vemd accepted %.0f",
                      cycle, opened, accepted);
        ck_assert_msg(closed == accepted, "cycle %d: vemd accepted %.0f but counts %.0f closed",
                      cycle, accepted, closed);
        ck_assert_msg(open == 0, "cycle %d: every connection is closed, vem_connections says %.0f",
                      cycle, open);
        /* the silent ones saw vemd close them */
        ck_assert(idle >= (double)SILENT * cycle);
    }
    vem_it_stop(&r);
}
END_TEST

/* ---- SIGTERM while PostgreSQL is down -------------------------------------------------------- */

/* Store-and-forward trucks (they keep each frame until vemd acknowledges it, which it does once
 * the frame is in the spool) stream; PostgreSQL stops; frames keep arriving; SIGTERM. The sink
 * cannot write what it holds, so after drain_timeout_s = 3 it gives up and vemd exits 0. With
 * PostgreSQL back, vemd restarts on the same spool and the trucks reconnect: every sample they
 * generated is stored once. */
START_TEST(sigterm_pg_down_drain_timeout)
{
    vem_it_pg_up();
    vem_it_run_t r = {.pipeline_opts = "drain_timeout_s = 3;", .pg_opts = "retry_max_s = 2;"};
    vem_it_start(&r, "it_health");
    char *extra[] = {"--await-replies",
                     "--trucks",
                     "6",
                     "--rate",
                     "2",
                     "--duration",
                     "16",
                     "--settle",
                     "40",
                     "--seed",
                     "52",
                     "--vin-prefix",
                     "LHTERM"};
    pid_t sim = vem_it_run_sim(&r, extra, 13);
    vem_it_sleep(4);
    vem_it_pgctl("stop");
    vem_it_sleep(4);
    double t = vem_it_mono();
    ck_assert_int_eq(kill(r.vemd, SIGTERM), 0);
    int rc = vem_it_wait(r.vemd, 15);
    double took = vem_it_mono() - t;
    fprintf(stderr, "it_health sigterm_pg_down: vemd exited %d after %.1f s\n", rc, took);
    bool said = vem_it_log_has(&r, "drain timeout");
    if (rc != 0 || !said)
        vem_it_show_log(&r);
    vem_it_pgctl("start");
    ck_assert_msg(rc == 0, "vemd exited %d on SIGTERM with PostgreSQL down", rc);
    ck_assert_msg(said, "vemd's log has no line about the drain timeout");

    vem_it_launch(&r);
    ck_assert_int_eq(vem_it_wait(sim, 120), 0);
    json_t *truth = vem_it_truth(&r);
    json_t *aw = json_object_get(truth, "await_replies");
    ck_assert_ptr_nonnull(aw);
    ck_assert_int_eq(json_integer_value(json_object_get(aw, "unacknowledged_frames")), 0);
    PGconn *conn = vem_it_pg();
    vem_it_compare_rows(conn, "obd_samples", "LHTERM", truth);
    vem_it_no_duplicate_samples(conn, "LHTERM");
    PQfinish(conn);
    json_decref(truth);
    vem_it_stop(&r);
}
END_TEST

/* ---- quarantine detail ----------------------------------------------------------------------- */

/* One kind of garbage and the quarantine row it must give: exactly these bytes, class and
 * reason (the reassembler's detail texts in parsers/reasm.c are the specification). */
typedef struct {
    const char *what;
    uint8_t raw[128];
    size_t len;
    const char *error_class;
    const char *detail;
    int found;
} s_bad_t;

/* True when a row's detail is the reassembler's reason: alone, or as the first rejection of a
 * run of len rejected bytes ("<len> bytes in <k> rejections, first: <reason>", ingest's form
 * for bytes given up in one run). */
static bool s_detail_is(const char *detail, size_t len, const char *reason)
{
    if (strcmp(detail, reason) == 0)
        return true;
    char head[32];
    snprintf(head, sizeof head, "%zu bytes in ", len);
    const char *first = strstr(detail, ", first: ");
    return strncmp(detail, head, strlen(head)) == 0 && first &&
           strcmp(first + strlen(", first: "), reason) == 0;
}

/* Counts, for each expected row, the quarantine rows since `since` that hold its bytes with its
 * class and reason; fails at once on a row with the generic text. Returns how many expected rows
 * are present. */
static int s_match_quarantine(PGconn *conn, const char *since, s_bad_t *bad, int nbad)
{
    const char *params[] = {since};
    PGresult *res = PQexecParams(conn,
                                 "SELECT error_class, detail, raw FROM quarantine "
                                 "WHERE received_at >= $1::timestamptz AND source = 'terminal'",
                                 1, NULL, params, NULL, NULL, 1);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(conn));
    int present = 0;
    for (int b = 0; b < nbad; b++)
        bad[b].found = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *cls = PQgetvalue(res, i, 0);
        const char *detail = PQgetisnull(res, i, 1) ? "" : PQgetvalue(res, i, 1);
        const uint8_t *raw = (const uint8_t *)PQgetvalue(res, i, 2);
        size_t len = (size_t)PQgetlength(res, i, 2);
        ck_assert_msg(strcmp(detail, "dropped by the stream reassembler") != 0,
                      "a %s row carries the generic detail \"%s\"", cls, detail);
        for (int b = 0; b < nbad; b++) {
            if (len != bad[b].len || memcmp(raw, bad[b].raw, len) != 0)
                continue;
            ck_assert_msg(strcmp(cls, bad[b].error_class) == 0,
                          "%s: error_class \"%s\", expected \"%s\"", bad[b].what, cls,
                          bad[b].error_class);
            ck_assert_msg(s_detail_is(detail, len, bad[b].detail),
                          "%s: detail \"%s\", expected \"%s\"", bad[b].what, detail, bad[b].detail);
            bad[b].found++;
        }
    }
    PQclear(res);
    for (int b = 0; b < nbad; b++) {
        ck_assert_msg(bad[b].found <= 1, "%s: %d rows of the same bytes", bad[b].what,
                      bad[b].found);
        present += bad[b].found;
    }
    return present;
}

START_TEST(quarantine_keeps_reasm_detail)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    PGresult *res = PQexec(conn, "SELECT now()::text");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    char since[64];
    snprintf(since, sizeof since, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_health");

    static const char garbage[] = "it_health: a run of bytes that holds no frame start at all";
    uint8_t frame[512];
    s_bad_t bad[6] = {
        {.what = "garbage run", .error_class = "bad_start", .detail = "bytes outside any frame"},
        {.what = "wrong BCC", .error_class = "bad_checksum", .detail = "BCC mismatch"},
        {.what = "frame cut short, then the terminal closed",
         .error_class = "truncated",
         .detail = "stream ended inside a frame"},
        {.what = "frame cut short, then vemd's idle close",
         .error_class = "truncated",
         .detail = "stream ended inside a frame"},
        {.what = "unknown command",
         .error_class = "unknown_command",
         .detail = "`##` followed by an unknown command"},
        {.what = "announced length over the bound",
         .error_class = "bad_length",
         .detail = "announced length exceeds the frame size bound"},
    };
    /* the garbage whole; a bad BCC rejects the candidate from its start (the whole frame); a
     * cut frame is quarantined from its start to the close */
    bad[0].len = sizeof garbage - 1;
    memcpy(bad[0].raw, garbage, bad[0].len);
    bad[1].len = (size_t)vem_test_vector_bytes("bad_checksum", bad[1].raw, sizeof bad[1].raw);
    bad[2].len = (size_t)vem_test_vector_bytes("truncated", bad[2].raw, sizeof bad[2].raw);
    long n = vem_test_vector_bytes("login", frame, sizeof frame);
    ck_assert_int_gt(n, 30);
    bad[3].len = 30; /* a login cut inside its data unit; no `#` after its start */
    memcpy(bad[3].raw, frame, bad[3].len);
    ck_assert_ptr_null(memchr(bad[3].raw + 2, '#', bad[3].len - 2));
    ck_assert_ptr_null(memchr(bad[2].raw + 2, '#', bad[2].len - 2));
    /* judged on `##` and the command byte, then every byte after it is given up as well: one
     * run of the whole vector, classed by its first rejection */
    bad[4].len = (size_t)vem_test_vector_bytes("unknown_command", bad[4].raw, sizeof bad[4].raw);
    /* 65535 + 25 bytes announced: over max_frame_bytes 4096; its header is rejected, and the
     * bytes after it with it, in one run */
    bad[5].len = (size_t)n;
    memcpy(bad[5].raw, frame, (size_t)n);
    bad[5].raw[22] = bad[5].raw[23] = 0xFF;

    /* one connection per kind; the cut login stays open until vemd closes it */
    for (int b = 0; b < 6; b++) {
        if (b == 3)
            continue;
        int fd = s_connect(r.port);
        if (b == 4) {
            uint8_t v[64];
            long len = vem_test_vector_bytes("unknown_command", v, sizeof v);
            s_send_all(fd, v, (size_t)len);
        } else if (b == 5) {
            uint8_t whole[512];
            memcpy(whole, frame, (size_t)n);
            whole[22] = whole[23] = 0xFF;
            s_send_all(fd, whole, (size_t)n);
        } else {
            s_send_all(fd, bad[b].raw, bad[b].len);
        }
        vem_it_sleep(0.2); /* the bytes arrive before the close */
        close(fd);
    }
    int idle = s_connect(r.port);
    s_send_all(idle, bad[3].raw, bad[3].len);
    ck_assert_msg(s_wait_eof(idle, 10), "vemd did not close the idle connection");
    close(idle);
    ck_assert_msg(vem_it_log_has(&r, "closed 1 idle connection (nothing read for"),
                  "the idle close was not logged at notice");

    int present = 0;
    for (int i = 0; i < 300 && present < 6; i++) {
        if (i)
            vem_it_sleep(0.1);
        present = s_match_quarantine(conn, since, bad, 6);
    }
    for (int b = 0; b < 6; b++)
        ck_assert_msg(bad[b].found == 1, "%s: no quarantine row with its bytes as %s / \"%s\"",
                      bad[b].what, bad[b].error_class, bad[b].detail);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* ---- SIGHUP with an empty configuration ------------------------------------------------------ */

/* Sends the realtime vector on a fresh connection and waits (up to 5 s) for vemd's reply;
 * true when a whole reply to that command came. With reply_mode "hj1239" (the test's
 * configuration) vemd answers every data frame; with "none" (the default) it does not. */
static bool s_realtime_answered(const vem_it_run_t *r)
{
    uint8_t frame[512];
    long len = vem_test_vector_bytes("realtime_hj1239", frame, sizeof frame);
    int fd = s_connect(r->port);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    s_send_all(fd, frame, (size_t)len);
    uint8_t reply[31];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof reply && (n = recv(fd, reply + got, sizeof reply - got, 0)) > 0)
        got += (size_t)n;
    close(fd);
    return got == sizeof reply && reply[0] == '#' && reply[1] == '#' && reply[2] == frame[2] &&
           reply[3] == 0x01 && memcmp(reply + 4, frame + 3, 17) == 0;
}

/* Waits (up to 10 s) until the series reaches want; returns its value. */
static double s_metric_until(const vem_it_run_t *r, const char *series, double want)
{
    double v = 0;
    for (int i = 0; i < 100 && (v = vem_it_metric_now(r, series)) < want; i++)
        vem_it_sleep(0.1);
    return v;
}

START_TEST(sighup_empty_config_refused)
{
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_health");
    ck_assert_msg(s_realtime_answered(&r), "no reply to a data frame with reply_mode hj1239");

    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", r.cfg);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(rename(tmp, r.cfg), 0);
    ck_assert_int_eq(kill(r.vemd, SIGHUP), 0);
    double errors = s_metric_until(&r, "vem_reload_errors_total", 1);
    ck_assert_msg(errors == 1, "vem_reload_errors_total is %.0f after one refused reload", errors);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_reloads_total"), 0);
    ck_assert_int_eq(kill(r.vemd, 0), 0);
    /* the running configuration stayed: still reply_mode hj1239, not the default none */
    ck_assert_msg(s_realtime_answered(&r),
                  "no reply to a data frame after the empty configuration was refused");

    vem_it_write_config(&r, "debug");
    ck_assert_int_eq(kill(r.vemd, SIGHUP), 0);
    double reloads = s_metric_until(&r, "vem_reloads_total", 1);
    ck_assert_msg(reloads == 1, "vem_reloads_total is %.0f after a valid reload", reloads);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_reload_errors_total"), 1);
    ck_assert(s_realtime_answered(&r));
    vem_it_stop(&r);
}
END_TEST

/* Regression: a gateway message over the size limit vanished. Now it leaves a quarantine row
 * with its size and origin (not its bytes), and a whole frame sent after it is stored. */
START_TEST(gateway_oversize_quarantined)
{
    vem_it_pg_up();
    vem_it_run_t r = {.pipeline_opts = "sample_past_days = 36600;"}; /* the login is of 2024 */
    vem_it_start(&r, "it_health");
    char endpoint[320];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/gateway.sock", r.dir);
    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 5000;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_connect(push, endpoint), 0);
    enum { S_BIG = 4097 }; /* terminals.max_frame_bytes (4096 by default) + 1 */
    uint8_t *big = calloc(1, S_BIG);
    memset(big, '#', S_BIG);
    ck_assert_int_eq(zmq_send(push, big, S_BIG, 0), S_BIG);
    free(big);
    uint8_t login[512];
    long n = vem_test_vector_bytes("login", login, sizeof login);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(zmq_send(push, login, (size_t)n, 0), (int)n);
    zmq_close(push);
    zmq_ctx_term(ctx);
    double stored = 0;
    for (int i = 0; i < 100 && stored < 1; i++) {
        vem_it_sleep(0.2);
        stored = vem_it_metric_now(&r, "vem_sink_rows_total{sink=\"pg\",table=\"quarantine\"}");
    }
    PGconn *conn = vem_it_pg();
    /* (not the rows of gateway connections that ended: libzmq drops one sending over
     * gateways.max_message_bytes without saying so, so each end leaves a row of its own) */
    PGresult *res = PQexec(conn, "SELECT source, length(raw), detail FROM quarantine "
                                 "WHERE error_class = 'too_large' AND "
                                 "detail NOT LIKE 'gateway connection dropped%'");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    ck_assert_int_eq(PQntuples(res), 1);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "gateway");
    ck_assert_str_eq(PQgetvalue(res, 0, 1), "0");
    ck_assert_ptr_nonnull(strstr(PQgetvalue(res, 0, 2), "4097 bytes"));
    PQclear(res);
    PQfinish(conn);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_oversize_inputs_total"), 1);
    double events = 0; /* the login after it went through (new, or found stored by an earlier
                        * test of the suite that sent the same vector) */
    for (int i = 0; i < 50 && events < 1; i++) {
        events =
            vem_it_metric_now(&r, "vem_sink_rows_total{sink=\"pg\",table=\"terminal_events\"}") +
            vem_it_metric_now(&r,
                              "vem_sink_duplicates_total{sink=\"pg\",table=\"terminal_events\"}");
        if (events < 1)
            vem_it_sleep(0.2);
    }
    ck_assert_double_eq(events, 1);
    vem_it_stop(&r);
}
END_TEST

Suite *vem_suite_health(void);
Suite *vem_suite_health(void)
{
    Suite *s = suite_create("health");
    TCase *tc = tcase_create("health");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, healthz_quiet_pg_outage);
    tcase_add_test(tc, healthz_pg_outage_under_traffic);
    tcase_add_test(tc, connections_gauge_while_open);
    tcase_add_test(tc, connections_exact_after_races);
    tcase_add_test(tc, sigterm_pg_down_drain_timeout);
    tcase_add_test(tc, quarantine_keeps_reasm_detail);
    tcase_add_test(tc, sighup_empty_config_refused);
    tcase_add_test(tc, gateway_oversize_quarantined);
    suite_add_tcase(s, tc);
    return s;
}
