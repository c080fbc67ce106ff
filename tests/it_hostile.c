/* it_hostile — hostile and broken input (issue #13) against the real vemd over real sockets.
 *
 * Each case runs a vem-sim fleet and, at the same time, a raw TCP client that floods vemd with
 * one kind of abuse; afterwards the abuse must be quarantined with its precise class, have made
 * nothing else (no rows, no partitions), and every frame of the fleet must be stored (rows per
 * VIN equal vem-sim's truth). Each case prints vemd's RSS and CPU during the abuse and the rate
 * it took, for the report; no check depends on the machine's speed.
 *
 *   bad_time  frames whose samples name days far off (years 2100..2163, the forged frame of the
 *             issue), logins from a reset clock (year 2000), and frames with one sample out of
 *             the window: all quarantined as bad_time, no partition for any of those days
 *   bad_vin   logins and real-time frames whose header VIN holds bytes that are not printable
 *             ASCII, two of them differing only in such a byte: quarantined as bad_vin, never
 *             stored under a mangled name
 *   forged    200,000 logins of VINs never seen before: each worker's session table stays at
 *             pipeline.max_sessions (the evictions counted), vemd's memory stays flat, the
 *             status answer is bounded, and the fleet's vehicles keep their sessions
 *   rejects   1 MiB of `23 23 08 FD` (2 records, closed for its rejected share), then logins
 *             with 8 garbage bytes between them (closed at its record budget, 16 rows of 8)
 *   unread    a terminal that sends and never reads: closed as unread and gone while it sends;
 *             vemd never counts fewer connections than it has
 *   gateway   a 100 MiB gateway message: refused by libzmq at its header (RSS flat), counted
 *             and quarantined; one of 5,000 bytes quarantined by its size
 *   address   40 connections from one address (30 held), a burst of 100 from another (some
 *             refused for their rate)
 *
 * The abuse comes from addresses of its own in 127/8 (the fleet from 127.0.0.1).
 *
 * Expected values come from what the test sent (its own counts) and vem-sim's truth. */
#include "hj1239.h"
#include "itutil.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_CONNS 4 /* abuse connections, frames spread round-robin */

/* ---- helpers --------------------------------------------------------------------------------- */

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

/* Sends everything, reading vemd's replies away meanwhile so its queue to us never fills. */
static void s_send(int fd, const uint8_t *p, size_t len)
{
    uint8_t sink[4096];
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        ck_assert_msg(n > 0, "send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
        while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
            ;
    }
}

/* vemd's resident memory (KiB) and CPU time (user + system, seconds) from /proc. */
static void s_usage(pid_t pid, long *rss_kib, double *cpu_s)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    *rss_kib = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kib = strtol(line + 6, NULL, 10);
    fclose(f);
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char stat[1024];
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    /* fields after the command's closing parenthesis: state is field 3, utime 14, stime 15 */
    char *p = strrchr(stat, ')');
    ck_assert_ptr_nonnull(p);
    unsigned long long ut = 0, st = 0;
    ck_assert_int_eq(
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st), 2);
    *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* One abuse run: frames forged by make(i) for i < n, sent over S_CONNS connections while
 * vemd's peak RSS is sampled; the figures are printed when vemd has worked through them. */
typedef size_t (*s_forge_fn)(void *arg, size_t i, uint8_t *out, size_t cap);

static void s_abuse(const vem_it_run_t *r, const char *what, s_forge_fn forge, void *arg, size_t n,
                    const char *series)
{
    int fds[S_CONNS];
    for (int c = 0; c < S_CONNS; c++)
        fds[c] = s_connect(r->port);
    long rss0, rss, peak;
    double cpu0, cpu;
    s_usage(r->vemd, &rss0, &cpu0);
    peak = rss0;
    double t0 = vem_it_mono();
    uint8_t frame[4096];
    for (size_t i = 0; i < n; i++) {
        size_t len = forge(arg, i, frame, sizeof frame);
        s_send(fds[i % S_CONNS], frame, len);
        if (i % 500 == 0) {
            s_usage(r->vemd, &rss, &cpu);
            peak = rss > peak ? rss : peak;
        }
    }
    double sent_s = vem_it_mono() - t0;
    /* done when the workers counted every forged frame (up to 120 s; the checks follow) */
    for (int i = 0; i < 2400 && vem_it_metric_now(r, series) < (double)n; i++)
        vem_it_sleep(0.05);
    double done_s = vem_it_mono() - t0;
    s_usage(r->vemd, &rss, &cpu);
    peak = rss > peak ? rss : peak;
    for (int c = 0; c < S_CONNS; c++)
        close(fds[c]);
    fprintf(stderr,
            "it_hostile %s: %zu frames sent in %.2f s, through the workers in %.2f s (%.0f "
            "frames/s); vemd RSS %.1f MiB before, peak %.1f MiB; CPU %.2f s (%.0f %% of one "
            "core) while a fleet ran beside\n",
            what, n, sent_s, done_s, (double)n / done_s, rss0 / 1024.0, peak / 1024.0, cpu - cpu0,
            100.0 * (cpu - cpu0) / done_s);
}

/* The database's clock now, as text (rows received from then on). */
static char *s_db_now(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT now()::text");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    char *s = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return s;
}

/* The single count a query with up to one text parameter gives. */
static long long s_count(PGconn *conn, const char *sql, const char *param)
{
    const char *params[] = {param};
    PGresult *res = PQexecParams(conn, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* Waits (up to 60 s) until the query counts want; returns the last count. */
static long long s_count_until(PGconn *conn, const char *sql, const char *param, long long want)
{
    long long v = 0;
    for (int i = 0; i < 600 && (v = s_count(conn, sql, param)) != want; i++)
        vem_it_sleep(0.1);
    return v;
}

/* A fleet of vem-sim trucks beside the abuse. */
static pid_t s_fleet(const vem_it_run_t *r, const char *prefix, const char *seed)
{
    char *extra[] = {"--trucks", "20",     "--duration", "20",           "--rate",
                     "1",        "--seed", (char *)seed, "--vin-prefix", (char *)prefix};
    return vem_it_run_sim(r, extra, 10);
}

/* Every frame of the fleet is stored: rows per VIN equal to vem-sim's truth. */
static void s_fleet_stored(const vem_it_run_t *r, pid_t sim, PGconn *conn, const char *prefix)
{
    ck_assert_int_eq(vem_it_wait(sim, 120), 0);
    json_t *truth = vem_it_truth(r);
    vem_it_compare_rows(conn, "obd_samples", prefix, truth);
    vem_it_compare_rows(conn, "terminal_events", prefix, truth);
    json_decref(truth);
}

/* ---- bad_time ---------------------------------------------------------------------------------
 */

#define S_BT_FRAMES 20000
#define S_YEAR_2100 4102416000LL /* 2100-01-01T00:00:00+08:00 */
#define S_YEAR_2000 946656000LL  /* 2000-01-01T00:00:00+08:00 */

typedef struct {
    vem_hj1239_frame_t *rt, *login;
    int64_t now;
    size_t kinds[3]; /* frames of each kind forged: far days, reset clock, one sample late */
} s_bt_t;

/* Frame i: kind i % 4 == 3 a login at a reset clock (year 2000, a day per i); i % 4 == 2 a
 * real-time frame whose last sample is 31 days old (the rest and the frame time now); else a
 * real-time frame stamped now whose samples name days of the years 2100..2163. */
static size_t s_bt_forge(void *arg, size_t i, uint8_t *out, size_t cap)
{
    s_bt_t *bt = arg;
    char vin[32];
    snprintf(vin, sizeof vin, "LHSTBT%011zu", i % 100000000000u);
    vem_hj1239_frame_t *f = i % 4 == 3 ? bt->login : bt->rt;
    memcpy(f->vin, vin, 17);
    f->seq = (uint16_t)(i % 60000 + 1);
    if (i % 4 == 3) {
        f->time = S_YEAR_2000 + (int64_t)(i % 300) * 86400;
        bt->kinds[1]++;
    } else {
        f->time = bt->now;
        for (uint16_t b = 0; b < f->nblocks; b++) {
            if (i % 4 == 2)
                f->blocks[b].time = bt->now - (b + 1 == f->nblocks ? 31 * 86400 : 0) - b;
            else
                f->blocks[b].time = S_YEAR_2100 + (int64_t)(i % 64) * 366 * 86400 + b;
        }
        bt->kinds[i % 4 == 2 ? 2 : 0]++;
    }
    size_t len = 0;
    ck_assert_int_eq(vem_hj1239_encode(f, out, cap, &len), 0);
    return len;
}

START_TEST(bad_time_quarantined_no_partition)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    char *since = s_db_now(conn);
    /* the abuse is spread over S_CONNS connections whatever its VINs */
    vem_it_run_t r = {.terminals_opts = "bind_vin = false;"};
    vem_it_start(&r, "it_hostile");
    s_bt_t bt = {.rt = malloc(sizeof *bt.rt), .login = malloc(sizeof *bt.login), .now = time(NULL)};
    ck_assert(bt.rt && bt.login);
    vem_test_vector_frame("realtime_hj1239", bt.rt);
    vem_test_vector_frame("login", bt.login);
    ck_assert_int_ge(bt.rt->nblocks, 2);

    pid_t sim = s_fleet(&r, "LHSTFT", "21");
    vem_it_sleep(2);
    s_abuse(&r, "bad_time", s_bt_forge, &bt, S_BT_FRAMES, "vem_errors_total{class=\"bad_time\"}");
    s_fleet_stored(&r, sim, conn, "LHSTFT");

    ck_assert_uint_gt(bt.kinds[0], 0);
    ck_assert_uint_gt(bt.kinds[1], 0);
    ck_assert_uint_gt(bt.kinds[2], 0);
    long long q = s_count_until(conn,
                                "SELECT count(*) FROM quarantine WHERE error_class = 'bad_time' "
                                "AND vin LIKE 'LHSTBT%' AND received_at >= $1::timestamptz",
                                since, S_BT_FRAMES);
    ck_assert_int_eq(q, S_BT_FRAMES);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_errors_total{class=\"bad_time\"}"), S_BT_FRAMES);
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM obd_samples WHERE vin LIKE 'LHSTBT%'", NULL), 0);
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM terminal_events WHERE vin LIKE 'LHSTBT%'", NULL), 0);
    /* no daily partition of any table for a day of the year 2000 or of 2100 and later */
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM pg_class WHERE relname ~ "
                             "'_p(2000[0-9]{4}|2[1-9][0-9]{6})$'",
                             NULL),
                     0);
    free(bt.rt);
    free(bt.login);
    free(since);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* ---- bad_vin ----------------------------------------------------------------------------------
 */

#define S_BV_FRAMES 20000

typedef struct {
    vem_hj1239_frame_t *rt, *login;
    int64_t now;
} s_bv_t;

/* Frame i: a login (even i) or a real-time frame, stamped now, whose VIN is "LHSTBV" and 11
 * bytes of which at least one is a control or non-ASCII byte; i and i + 2 differ only in such
 * a byte (they would both be stored as the same "LHSTBV?..."). */
static size_t s_bv_forge(void *arg, size_t i, uint8_t *out, size_t cap)
{
    s_bv_t *bv = arg;
    vem_hj1239_frame_t *f = i % 2 ? bv->rt : bv->login;
    char digits[24];
    snprintf(digits, sizeof digits, "%010zu", i / 4 % 10000000000u);
    memcpy(f->vin, "LHSTBV", 6);
    memcpy(f->vin + 6, digits, 10);
    static const uint8_t bad[] = {0x00, 0x01, 0x1F, 0x7F, 0x80, 0xFF, 0x20};
    f->vin[16] = bad[(i / 2) % 2 + (i / 4) % 5]; /* i and i + 2: two different bad bytes */
    f->time = bv->now;
    f->seq = (uint16_t)(i % 60000 + 1);
    for (uint16_t b = 0; b < f->nblocks; b++)
        f->blocks[b].time = bv->now - (f->nblocks - 1 - b);
    size_t len = 0;
    ck_assert_int_eq(vem_hj1239_encode(f, out, cap, &len), 0);
    return len;
}

START_TEST(bad_vin_quarantined)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    char *since = s_db_now(conn);
    /* the abuse is spread over S_CONNS connections whatever its VINs */
    vem_it_run_t r = {.terminals_opts = "bind_vin = false;"};
    vem_it_start(&r, "it_hostile");
    s_bv_t bv = {.rt = malloc(sizeof *bv.rt), .login = malloc(sizeof *bv.login), .now = time(NULL)};
    ck_assert(bv.rt && bv.login);
    vem_test_vector_frame("realtime_hj1239", bv.rt);
    vem_test_vector_frame("login", bv.login);

    pid_t sim = s_fleet(&r, "LHSTFV", "22");
    vem_it_sleep(2);
    s_abuse(&r, "bad_vin", s_bv_forge, &bv, S_BV_FRAMES, "vem_errors_total{class=\"bad_vin\"}");
    s_fleet_stored(&r, sim, conn, "LHSTFV");

    long long q = s_count_until(conn,
                                "SELECT count(*) FROM quarantine WHERE error_class = 'bad_vin' "
                                "AND vin IS NULL AND received_at >= $1::timestamptz",
                                since, S_BV_FRAMES);
    ck_assert_int_eq(q, S_BV_FRAMES);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_errors_total{class=\"bad_vin\"}"), S_BV_FRAMES);
    /* the detail names the VIN's bytes, so the two VINs of a pair stay apart */
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(DISTINCT detail) FROM quarantine WHERE error_class = "
                             "'bad_vin' AND received_at >= $1::timestamptz",
                             since),
                     S_BV_FRAMES / 2);
    /* and is stored whole (73 characters; the quarantine used to keep 72) */
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM quarantine WHERE error_class = 'bad_vin' AND "
                             "detail LIKE 'VIN %: not 17 printable ASCII characters' AND "
                             "length(detail) = 73 AND received_at >= $1::timestamptz",
                             since),
                     S_BV_FRAMES);
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM obd_samples WHERE vin LIKE 'LHSTBV%'", NULL), 0);
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM terminal_events WHERE vin LIKE 'LHSTBV%'", NULL), 0);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM quarantine WHERE vin LIKE 'LHSTBV%' AND "
                             "received_at >= $1::timestamptz",
                             since),
                     0);
    free(bv.rt);
    free(bv.login);
    free(since);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* ---- forged VINs --------------------------------------------------------------------------
 */

#define S_FV_LOGINS 200000
#define S_FV_CAP    20000 /* pipeline.max_sessions, per worker (2 workers) */

typedef struct {
    vem_hj1239_frame_t *login;
    int64_t now;
} s_fv_t;

/* Login i of a VIN never seen before, stamped now: 10.6 MB of logins in all. */
static size_t s_fv_forge(void *arg, size_t i, uint8_t *out, size_t cap)
{
    s_fv_t *fv = arg;
    char vin[32];
    snprintf(vin, sizeof vin, "LHSTFG%011zu", i % 100000000000u);
    memcpy(fv->login->vin, vin, 17);
    fv->login->time = fv->now;
    fv->login->seq = 1;
    size_t len = 0;
    ck_assert_int_eq(vem_hj1239_encode(fv->login, out, cap, &len), 0);
    return len;
}

/* Sum of a metric's series whose name starts with prefix (every label set). */
static double s_metric_prefix(const vem_it_run_t *r, const char *prefix)
{
    json_t *st = vem_it_status(r, "--json");
    ck_assert_ptr_nonnull(st);
    double sum = 0;
    const char *series;
    json_t *value;
    json_object_foreach(json_object_get(st, "metrics"), series, value)
    {
        if (strncmp(series, prefix, strlen(prefix)) == 0)
            sum += json_number_value(value);
    }
    json_decref(st);
    return sum;
}

START_TEST(forged_vins_stay_under_the_cap)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    vem_it_run_t r = {.pipeline_opts = "max_sessions = 20000;",
                      .terminals_opts = "bind_vin = false;" /* forged VINs, 4 connections */};
    /* Under ASan (make integration) freed memory is held in ASan's quarantine, 256 MiB by
     * default: the evicted sessions would show there, not in vemd. Keep it small. */
    const char *asan = getenv("ASAN_OPTIONS");
    if (asan) {
        char opts[512];
        snprintf(opts, sizeof opts, "%s:quarantine_size_mb=4", asan);
        setenv("ASAN_OPTIONS", opts, 1);
    }
    vem_it_start(&r, "it_hostile");
    s_fv_t fv = {.login = malloc(sizeof *fv.login), .now = time(NULL)};
    ck_assert_ptr_nonnull(fv.login);
    vem_test_vector_frame("login", fv.login);

    long rss0;
    double cpu0;
    s_usage(r.vemd, &rss0, &cpu0);
    pid_t sim = s_fleet(&r, "LHSTFS", "23");
    vem_it_sleep(2);
    s_abuse(&r, "forged VINs", s_fv_forge, &fv, S_FV_LOGINS,
            "vem_frames_total{cmd=\"login\",dialect=\"none\"}");
    s_fleet_stored(&r, sim, conn, "LHSTFS");
    long rss;
    double cpu;
    s_usage(r.vemd, &rss, &cpu);

    /* each worker holds at most its cap; what the forged logins pushed out was counted */
    ck_assert(s_metric_prefix(&r, "vem_sessions{") <= 2.0 * S_FV_CAP);
    ck_assert(s_metric_prefix(&r, "vem_sessions_evicted_total") >= S_FV_LOGINS - 2.0 * S_FV_CAP);
    ck_assert_double_eq(s_metric_prefix(&r, "vem_sessions_refused_total"), 0);
    /* 200,000 sessions with their rings were 440 MiB; the cap keeps vemd far below that (an
     * entry is ~250 bytes, a login-only session has no ring and no rule state) */
    ck_assert_msg(rss - rss0 < 64 * 1024, "vemd grew by %ld KiB", rss - rss0);
    /* the status answer is bounded, the most recently seen first: the fleet is in it */
    json_t *sessions = vem_it_status(&r, "--vehicles --json");
    ck_assert_ptr_nonnull(sessions);
    json_t *vehicles = json_object_get(sessions, "vehicles");
    ck_assert_uint_le(json_array_size(vehicles), 2 * 10000);
    size_t i, fleet = 0;
    json_t *v;
    json_array_foreach(vehicles, i, v)
    {
        fleet += strncmp(json_string_value(json_object_get(v, "vin")), "LHSTFS", 6) == 0;
    }
    ck_assert_uint_eq(fleet, 20);
    json_decref(sessions);
    /* the forged logins were stored all the same: each is a terminal event */
    ck_assert_int_eq(s_count_until(conn, "SELECT count(*) FROM terminal_events WHERE vin LIKE $1",
                                   "LHSTFG%", S_FV_LOGINS),
                     S_FV_LOGINS);
    free(fv.login);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* ---- abuse from an address of its own ---------------------------------------------------------
 */

/* A TCP connection to vemd from src (an address of 127/8: the fleet comes from 127.0.0.1), with
 * a receive buffer of rcvbuf bytes when rcvbuf > 0 (a peer that reads nothing fills it fast). */
static int s_connect_from(const char *src, int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in me = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &me.sin_addr);
    ck_assert_msg(bind(fd, (struct sockaddr *)&me, sizeof me) == 0, "bind %s: %s", src,
                  strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect from %s: %s", src,
                  strerror(errno));
    return fd;
}

/* Sends as much of p as vemd takes, reading its replies away; stops when vemd closed the
 * connection. Returns the bytes sent. */
static size_t s_send_until_closed(int fd, const uint8_t *p, size_t len)
{
    uint8_t sink[4096];
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, p + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        sent += (size_t)n;
        while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
            ;
    }
    return sent;
}

/* True when vemd closed fd's connection within timeout_s (end of stream or a reset). */
static bool s_closed_within(int fd, double timeout_s)
{
    uint8_t sink[4096];
    double t0 = vem_it_mono();
    while (vem_it_mono() - t0 < timeout_s) {
        ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return true;
        if (n < 0)
            vem_it_sleep(0.05);
    }
    return false;
}

/* vemd's side: TCP connections from src to port in state ESTABLISHED (/proc/net/tcp). */
static int s_server_conns_from(int port, const char *src)
{
    struct in_addr a;
    inet_pton(AF_INET, src, &a);
    char local[32], remote[16];
    snprintf(local, sizeof local, "0100007F:%04X", port);
    snprintf(remote, sizeof remote, "%08X", (unsigned)a.s_addr); /* as the kernel prints it */
    FILE *f = fopen("/proc/net/tcp", "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char l[64], r[64], st[8];
        if (sscanf(line, " %*d: %63s %63s %7s", l, r, st) == 3 && strcmp(l, local) == 0 &&
            strncmp(r, remote, 8) == 0 && strcmp(st, "01") == 0)
            n++;
    }
    fclose(f);
    return n;
}

/* vemd's RSS and CPU while an abuse runs: start, sample as often as convenient, report. */
typedef struct {
    long rss0, peak;
    double cpu0, t0;
} s_watch_t;

static void s_watch_start(const vem_it_run_t *r, s_watch_t *w)
{
    s_usage(r->vemd, &w->rss0, &w->cpu0);
    w->peak = w->rss0;
    w->t0 = vem_it_mono();
}

static void s_watch_sample(const vem_it_run_t *r, s_watch_t *w)
{
    long rss;
    double cpu;
    s_usage(r->vemd, &rss, &cpu);
    w->peak = rss > w->peak ? rss : w->peak;
}

static void s_watch_report(const vem_it_run_t *r, s_watch_t *w, const char *what, double n,
                           const char *unit)
{
    long rss;
    double cpu;
    s_usage(r->vemd, &rss, &cpu);
    w->peak = rss > w->peak ? rss : w->peak;
    double s = vem_it_mono() - w->t0;
    fprintf(stderr,
            "it_hostile %s: %.0f %s in %.2f s (%.0f/s); vemd RSS %.1f MiB before, peak %.1f MiB; "
            "CPU %.2f s (%.0f %% of one core) while a fleet ran beside\n",
            what, n, unit, s, n / s, w->rss0 / 1024.0, w->peak / 1024.0, cpu - w->cpu0,
            100.0 * (cpu - w->cpu0) / s);
}

/* ---- rejected bytes: one record per run, a budget per connection ---------------------------
 */

#define S_RJ_PATTERN_BYTES (1u << 20)
#define S_RJ_RECORDS       16
#define S_RJ_BYTES         16384

/* 1 MiB of `23 23 08 FD` (the pattern: each `##` a candidate announcing 2,326 bytes
 * whose BCC fails), then logins with 8 bytes of garbage between them: the first is closed for
 * its share of rejected bytes, the second once it has made its S_RJ_RECORDS records. */
START_TEST(rejects_bounded_per_connection)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    char *since = s_db_now(conn);
    char opts[160];
    snprintf(opts, sizeof opts, "reject_bytes = %u; reject_records = %u; reject_share_pct = 50;",
             S_RJ_BYTES, S_RJ_RECORDS);
    vem_it_run_t r = {.terminals_opts = opts};
    vem_it_start(&r, "it_hostile");
    pid_t sim = s_fleet(&r, "LHSTRF", "24");
    vem_it_sleep(2);

    /* the pattern */
    uint8_t *pattern = malloc(S_RJ_PATTERN_BYTES);
    ck_assert_ptr_nonnull(pattern);
    static const uint8_t four[] = {0x23, 0x23, 0x08, 0xFD};
    for (size_t i = 0; i < S_RJ_PATTERN_BYTES; i++)
        pattern[i] = four[i % 4];
    s_watch_t w;
    s_watch_start(&r, &w);
    int fd = s_connect_from("127.0.0.6", r.port, 0);
    size_t sent = 0;
    for (size_t off = 0; off < S_RJ_PATTERN_BYTES; off += 65536) {
        size_t n = s_send_until_closed(fd, pattern + off, 65536);
        sent += n;
        s_watch_sample(&r, &w);
        if (n < 65536)
            break;
    }
    ck_assert_msg(s_closed_within(fd, 30), "vemd kept the connection of the pattern open");
    s_watch_report(&r, &w, "pattern 23 23 08 FD", (double)sent, "bytes");
    close(fd);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_connections_closed_total{reason=\"rejects\"}"),
                        1);
    ck_assert(vem_it_log_has(&r, "tcp 127.0.0.6"));

    /* logins with garbage between them: runs of 8 bytes, one record each */
    vem_hj1239_frame_t *login = malloc(sizeof *login);
    ck_assert_ptr_nonnull(login);
    vem_test_vector_frame("login", login);
    memcpy(login->vin, "LHSTRG00000000001", 17);
    login->time = time(NULL);
    uint8_t unit[256];
    size_t flen = 0;
    ck_assert_int_eq(vem_hj1239_encode(login, unit, sizeof unit - 8, &flen), 0);
    memcpy(unit + flen, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    fd = s_connect_from("127.0.0.7", r.port, 0);
    for (int i = 0; i < 1000; i++)
        if (s_send_until_closed(fd, unit, flen + 8) < flen + 8)
            break;
    ck_assert_msg(s_closed_within(fd, 30), "vemd kept the connection of the garbage open");
    close(fd);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_connections_closed_total{reason=\"rejects\"}"),
                        2);
    s_fleet_stored(&r, sim, conn, "LHSTRF");

    /* the pattern: within its budget (before: 189,842 rows for 1 MiB) */
    vem_it_settled(&r);
    const char *pattern_rows = "SELECT count(*) FROM quarantine WHERE source = 'terminal' AND "
                               "error_class <> 'bad_start' AND received_at >= $1::timestamptz";
    long long rows = s_count(conn, pattern_rows, since);
    long long bytes = s_count(conn,
                              "SELECT coalesce(sum(length(raw)), 0) FROM quarantine WHERE source = "
                              "'terminal' AND error_class <> 'bad_start' AND received_at >= "
                              "$1::timestamptz",
                              since);
    fprintf(stderr, "it_hostile pattern: %zu bytes sent, %lld quarantine rows, %lld bytes kept\n",
            sent, rows, bytes);
    ck_assert_int_ge(rows, 1);
    ck_assert_int_le(rows, S_RJ_RECORDS);
    ck_assert_int_le(bytes, S_RJ_BYTES);
    ck_assert(vem_it_metric_now(&r, "vem_stream_drops_total{class=\"bad_checksum\"}") > 0);
    /* the garbage: exactly its record budget, each run of 8 bytes whole */
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM quarantine WHERE source = 'terminal' AND "
                             "error_class = 'bad_start' AND length(raw) = 8 AND raw = "
                             "'\\x0102030405060708'::bytea AND received_at >= $1::timestamptz",
                             since),
                     S_RJ_RECORDS);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM quarantine WHERE source = 'terminal' AND "
                             "error_class = 'bad_start' AND received_at >= $1::timestamptz",
                             since),
                     S_RJ_RECORDS);
    free(login);
    free(pattern);
    free(since);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* ---- a peer that never reads --------------------------------------------------------------
 */

#define S_UR_SEND_TIMEOUT_S 5

/* A terminal sends logins and reads none of the replies, through a 4 KiB receive buffer. Its
 * replies fill the TCP buffers, then libzmq's pipe to it: vemd stops replying and closes it;
 * the close is refused while the pipe is full, so vemd shuts its TCP socket down (before: the
 * close was refused with EAGAIN, the state freed, and the TCP connection stayed open outside
 * every limit, its data thrown away uncounted). While vemd still has it, it is counted. */
START_TEST(unread_peer_is_gone)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    char opts[96];
    snprintf(opts, sizeof opts, "send_timeout_s = %d;", S_UR_SEND_TIMEOUT_S);
    vem_it_run_t r = {.terminals_opts = opts};
    vem_it_start(&r, "it_hostile");
    pid_t sim = s_fleet(&r, "LHSTUF", "25");
    vem_it_sleep(2);
    vem_hj1239_frame_t *login = malloc(sizeof *login);
    ck_assert_ptr_nonnull(login);
    vem_test_vector_frame("login", login);
    memcpy(login->vin, "LHSTUR00000000001", 17);
    login->time = time(NULL);
    enum { S_UNITS = 512 };
    uint8_t one[256], *batch = malloc(S_UNITS * sizeof one);
    ck_assert_ptr_nonnull(batch);
    size_t flen = 0, blen = 0;
    ck_assert_int_eq(vem_hj1239_encode(login, one, sizeof one, &flen), 0);
    for (int i = 0; i < S_UNITS; i++, blen += flen)
        memcpy(batch + blen, one, flen);

    s_watch_t w;
    s_watch_start(&r, &w);
    int fd = s_connect_from("127.0.0.8", r.port, 4096);
    double sent = 0, t0 = vem_it_mono();
    bool gone = false;
    int samples = 0;
    /* send without reading, for up to 60 s; vemd must drop the connection meanwhile */
    while (!gone && vem_it_mono() - t0 < 60) {
        ssize_t n = send(fd, batch, blen, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            break; /* reset: vemd's side is gone */
        if (n > 0)
            sent += (double)n;
        else
            vem_it_sleep(0.05);
        s_watch_sample(&r, &w);
        /* every TCP connection vemd really has is counted (the fleet's have settled) */
        int real =
            s_server_conns_from(r.port, "127.0.0.1") + s_server_conns_from(r.port, "127.0.0.8");
        double counted = vem_it_metric_now(&r, "vem_connections");
        ck_assert_msg(counted >= real - 1, "vemd counts %.0f connections, has %d", counted, real);
        samples += counted >= real; /* (one may be in between: accepted, not yet seen) */
        gone = s_server_conns_from(r.port, "127.0.0.8") == 0;
    }
    s_watch_report(&r, &w, "peer that never reads", sent, "bytes");
    ck_assert_msg(gone || s_server_conns_from(r.port, "127.0.0.8") == 0,
                  "vemd kept the peer that never reads for 60 s while it sent");
    ck_assert_int_gt(samples, 0);
    close(fd);
    /* it was closed as unread (counted when libzmq reported its end), its later bytes counted */
    for (int i = 0;
         i < 100 && vem_it_metric_now(&r, "vem_connections_closed_total{reason=\"unread\"}") < 1;
         i++)
        vem_it_sleep(0.1);
    fprintf(stderr,
            "it_hostile peer that never reads: replies dropped %.0f, closed as unread %.0f, bytes "
            "discarded %.0f\n",
            vem_it_metric_now(&r, "vem_replies_dropped_total"),
            vem_it_metric_now(&r, "vem_connections_closed_total{reason=\"unread\"}"),
            vem_it_metric_now(&r, "vem_bytes_discarded_total"));
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_connections_closed_total{reason=\"unread\"}"),
                        1);
    ck_assert(vem_it_log_has(&r, "tcp 127.0.0.8"));
    s_fleet_stored(&r, sim, conn, "LHSTUF");
    /* every connection is accounted for: accepted = closed (by any reason) once all are gone */
    for (int i = 0; i < 100 && vem_it_metric_now(&r, "vem_connections") > 0; i++)
        vem_it_sleep(0.1);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_connections"), 0);
    ck_assert_double_eq(s_metric_prefix(&r, "vem_connections_closed_total"),
                        vem_it_metric_now(&r, "vem_connections_accepted_total"));
    free(batch);
    free(login);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* ---- the gateway socket -----------------------------------------------------------------------
 */

#define S_GW_HUGE (100u << 20)

/* A gateway sends a 100 MiB message, then (after libzmq dropped it and it connected again) one
 * of 5,000 bytes, over the 4,096 of terminals.max_frame_bytes but under
 * gateways.max_message_bytes. The first never reaches vemd's memory: libzmq refuses it at its
 * header (before: it was read whole), and the disconnection leaves a counted quarantine row;
 * the second is quarantined by its size. */
START_TEST(gateway_message_bounded)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    char *since = s_db_now(conn);
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_hostile");
    pid_t sim = s_fleet(&r, "LHSTGF", "26");
    vem_it_sleep(2);
    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int zero = 0;
    zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
    char endpoint[300];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/gateway.sock", r.dir);
    ck_assert_int_eq(zmq_connect(push, endpoint), 0);
    uint8_t *huge = calloc(1, S_GW_HUGE);
    ck_assert_ptr_nonnull(huge);
    s_watch_t w;
    s_watch_start(&r, &w);
    ck_assert_int_eq(zmq_send(push, huge, S_GW_HUGE, 0), (int)S_GW_HUGE);
    for (int i = 0; i < 600 && vem_it_metric_now(&r, "vem_gateway_disconnects_total") < 1; i++) {
        s_watch_sample(&r, &w);
        vem_it_sleep(0.05);
    }
    s_watch_report(&r, &w, "100 MiB gateway message", (double)S_GW_HUGE, "bytes");
    ck_assert_double_ge(vem_it_metric_now(&r, "vem_gateway_disconnects_total"), 1);
    /* vemd never held the message: well under its size */
    ck_assert_msg(w.peak - w.rss0 < 32 * 1024, "vemd grew by %ld KiB", w.peak - w.rss0);
    zmq_close(push);
    /* a gateway again, with a message over the frame bound */
    push = zmq_socket(ctx, ZMQ_PUSH);
    zmq_setsockopt(push, ZMQ_LINGER, &(int){5000}, sizeof(int));
    ck_assert_int_eq(zmq_connect(push, endpoint), 0);
    ck_assert_int_eq(zmq_send(push, huge, 5000, 0), 5000);
    zmq_close(push);
    zmq_ctx_term(ctx);
    free(huge);
    s_fleet_stored(&r, sim, conn, "LHSTGF");
    ck_assert_int_eq(s_count_until(conn,
                                   "SELECT count(*) FROM quarantine WHERE source = 'gateway' AND "
                                   "error_class = 'too_large' AND detail LIKE '%5000 bytes%' AND "
                                   "length(raw) = 0 AND received_at >= $1::timestamptz",
                                   since, 1),
                     1);
    long long dropped = s_count(conn,
                                "SELECT count(*) FROM quarantine WHERE source = 'gateway' AND "
                                "error_class = 'too_large' AND detail LIKE '%dropped%' AND "
                                "received_at >= $1::timestamptz",
                                since);
    ck_assert_int_ge(dropped, 1);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_gateway_disconnects_total"), (double)dropped);
    free(since);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* ---- limits per source address --------------------------------------------------------------
 */

#define S_PA_MAX  30 /* terminals.max_per_address (the fleet's 20 trucks fit) */
#define S_PA_RATE 25 /* terminals.new_per_address_s */

/* One host opens 40 connections, 5 a second: 30 are held, the last 10 closed at once. Another
 * opens 100 as fast as it can and closes each: past 25 in a second they are refused. The
 * fleet, from a third address, is not touched. */
START_TEST(address_limits)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    char opts[160];
    snprintf(opts, sizeof opts,
             "idle_timeout_s = 120; max_per_address = %d; new_per_address_s = %d;", S_PA_MAX,
             S_PA_RATE);
    vem_it_run_t r = {.terminals_opts = opts};
    vem_it_start(&r, "it_hostile");
    pid_t sim = s_fleet(&r, "LHSTAF", "27");
    vem_it_sleep(2);
    s_watch_t w;
    s_watch_start(&r, &w);
    int fds[40];
    for (int i = 0; i < 40; i++) {
        fds[i] = s_connect_from("127.0.0.9", r.port, 0);
        s_watch_sample(&r, &w);
        vem_it_sleep(0.2);
    }
    vem_it_sleep(1);
    int closed = 0;
    for (int i = 0; i < 40; i++) {
        bool c = s_closed_within(fds[i], 0.1);
        closed += c;
        ck_assert_msg(c == (i >= S_PA_MAX), "connection %d %s", i, c ? "closed" : "open");
    }
    ck_assert_int_eq(closed, 40 - S_PA_MAX);
    ck_assert_double_eq(
        vem_it_metric_now(&r, "vem_connections_closed_total{reason=\"address_limit\"}"),
        40 - S_PA_MAX);
    ck_assert_double_eq(
        vem_it_metric_now(&r, "vem_connections_closed_total{reason=\"address_rate\"}"), 0);
    ck_assert(vem_it_log_has(&r, "30 connections from 127.0.0.9 already"));
    for (int i = 0; i < 40; i++)
        close(fds[i]);
    /* a burst from another host */
    for (int i = 0; i < 100; i++)
        close(s_connect_from("127.0.0.10", r.port, 0));
    s_watch_report(&r, &w, "connections from two hosts", 140, "connections");
    double refused = 0;
    for (int i = 0; i < 100 && refused == 0; i++) {
        vem_it_sleep(0.1);
        refused = vem_it_metric_now(&r, "vem_connections_closed_total{reason=\"address_rate\"}");
    }
    /* at least 25 pass in any second; 100 arrivals within 4 s leave some refused */
    ck_assert_double_ge(refused, 1);
    ck_assert_double_le(refused, 100 - S_PA_RATE);
    ck_assert(vem_it_log_has(&r, "new connections a second from 127.0.0.10"));
    s_fleet_stored(&r, sim, conn, "LHSTAF");
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

Suite *vem_suite_hostile(void);
Suite *vem_suite_hostile(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("abuse");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, bad_time_quarantined_no_partition);
    tcase_add_test(tc, bad_vin_quarantined);
    tcase_add_test(tc, forged_vins_stay_under_the_cap);
    suite_add_tcase(s, tc);
    /* one case each, so CK_RUN_CASE=NAME runs one */
    const char *names[] = {"rejects", "unread", "gateway", "address"};
    const TTest *tests[] = {rejects_bounded_per_connection, unread_peer_is_gone,
                            gateway_message_bounded, address_limits};
    for (int i = 0; i < 4; i++) {
        tc = tcase_create(names[i]);
        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, tests[i]);
        suite_add_tcase(s, tc);
    }
    return s;
}
