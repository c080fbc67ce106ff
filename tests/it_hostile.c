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

#define S_CONNS 4 /* abuse connections, frames spread round-robin */

/* ---- helpers --------------------------------------------------------------------------------- */

/* Decodes the named HJ 1239 test vector into *f (the frame to forge from). */
static void s_vector_frame(const char *name, vem_hj1239_frame_t *f)
{
    char path[512];
    snprintf(path, sizeof path, "%s/hj1239/vectors.jsonl", vem_test_vectors_dir());
    FILE *in = fopen(path, "r");
    ck_assert_ptr_nonnull(in);
    json_error_t err;
    json_t *v;
    bool found = false;
    uint8_t bytes[4096];
    while (!found && (v = json_loadf(in, JSON_DISABLE_EOF_CHECK, &err))) {
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0) {
            long len =
                vem_test_unhex(json_string_value(json_object_get(v, "hex")), bytes, sizeof bytes);
            ck_assert_int_gt(len, 0);
            ck_assert_int_eq(vem_hj1239_decode(bytes, (size_t)len, 0, f, NULL), VEM_HJ1239_OK);
            found = true;
        }
        json_decref(v);
    }
    fclose(in);
    ck_assert_msg(found, "no vector named %s", name);
}

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
    s_vector_frame("realtime_hj1239", bt.rt);
    s_vector_frame("login", bt.login);
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
    s_vector_frame("realtime_hj1239", bv.rt);
    s_vector_frame("login", bv.login);

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
    s_vector_frame("login", fv.login);

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
    return s;
}
