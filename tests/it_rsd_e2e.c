/* it_rsd_e2e — roadside stations end to end: vemctl rsd send as the stations, vemd, PostgreSQL.
 *
 *   exactly_once      three stations send their readings at once, each with re-sent copies,
 *                     one malformed reading of every class and one reading whose
 *                     acknowledgement the station drops (so it sends it again): every valid
 *                     reading is acknowledged and stored exactly once, every malformed one is
 *                     rejected naming its class and key and kept as a quarantine row, and the
 *                     counts match per station
 *   kill9_resend      vemd stopped while a station streams readings (so readings arrive and
 *                     wait unanswered), killed with SIGKILL and restarted: the station sends
 *                     again what was not acknowledged, and every reading is stored exactly once
 *   rsd_violation     a registered truck and an unregistered plate each pass a station twice
 *                     over the NO limit (a violation each, keyed by VIN and by plate), a third
 *                     plate twice outside the HJ 845 window (stored as not counted, no verdict)
 *   plate_chain_survives_restart  an unregistered plate's roadside chain crosses a restart
 *                     (checkpoint by plate): its second exceedance completes the violation
 *   shared_plate_chains_apart_by_colour  two unregistered trucks share a plate in two
 *                     colours: a chain each, across a restart, each verdict with its colour
 *   station_vins_bounded  a station invents 300 VINs, each over the limit: rule states for
 *                     32 per worker (half its session table), the rest counted as not judged,
 *                     neither a login of each nor a restart frees the bound for 50 more, and
 *                     trucks that come after are not refused a session
 *   late_compliant_cuts_run  two exceedances make a violation; a compliant reading between
 *                     them that comes afterwards cuts the run: two notices, no violation left
 *   csv_input         vemctl rsd send reads CSV as well (empty cells not reported)
 *   fusion_either_order  a station sees high NO while the truck's OBD reports low NOx at that
 *                     moment: fusion.obd_mismatch, with the OBD data first (GB 17691 frames)
 *                     and with the reading first (HJ 1239 frames), its evidence naming the
 *                     stored sample
 *
 * Expected numbers come from how each test builds its readings and from rules.md (NO limit
 * 1500 ppm column a, two consecutive valid exceedances, OBD low below 500 ppm within 2 s),
 * never from vemd's output. Reading times are a few minutes before now, inside every bound. */
#include "itutil.h"
#include "sim_fleet.h"
#include "sim_frames.h"
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static int64_t s_now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec;
}

/* ISO 8601 UTC of epoch seconds. */
static void s_iso(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One valid diesel reading (inside the default HJ 845 window) of plate in color as a JSON
 * line. */
static void s_reading_in(FILE *f, const char *station, const char *id, int64_t t, const char *plate,
                         const char *color, double no_ppm, double speed_kmh)
{
    char when[32];
    s_iso(t, when, sizeof when);
    fprintf(f,
            "{\"version\":1,\"station_id\":\"%s\",\"reading_id\":\"%s\",\"lane\":1,"
            "\"time\":\"%s\",\"plate\":\"%s\",\"plate_color\":\"%s\",\"fuel\":\"diesel\","
            "\"speed_kmh\":%g,\"accel_ms2\":0.2,\"vsp_kw_t\":4.5,\"opacity_pct\":8,"
            "\"no_ppm\":%g,\"co2_pct\":10.5,\"wind_ms\":1.5,\"slope_pct\":0.5,\"valid\":true}\n",
            station, id, when, plate, color, speed_kmh, no_ppm);
}

/* The same, of a yellow plate. */
static void s_reading(FILE *f, const char *station, const char *id, int64_t t, const char *plate,
                      double no_ppm, double speed_kmh)
{
    s_reading_in(f, station, id, t, plate, "yellow", no_ppm, speed_kmh);
}

/* Runs vemctl rsd send on path against r's stations endpoint; returns its --json summary. */
static json_t *s_send(const vem_it_run_t *r, const char *path, const char *extra)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "'%s/vemctl' rsd send '%s' --endpoint 'ipc://%s/stations.sock' --json --quiet %s",
             vem_test_bin_dir(), path, r->dir, extra ? extra : "");
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    json_error_t err;
    json_t *o = json_loadf(p, JSON_DISABLE_EOF_CHECK, &err);
    int rc = pclose(p);
    ck_assert_msg(o != NULL, "vemctl rsd send printed no summary: %s", err.text);
    ck_assert_msg(rc == 0, "vemctl rsd send exited %d", rc);
    return o;
}

/* Sends one valid reading (s_reading, 40 km/h) through a file named name in r's directory. */
static void s_send_one(const vem_it_run_t *r, const char *name, const char *station, const char *id,
                       int64_t t, const char *plate, double no_ppm)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    s_reading(f, station, id, t, plate, no_ppm, 40);
    fclose(f);
    json_t *sum = s_send(r, path, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "acked")), 1);
    json_decref(sum);
}

static long long s_count(PGconn *conn, const char *sql, const char *param)
{
    const char *params[] = {param};
    PGresult *res = PQexecParams(conn, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    long long n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

/* Waits up to 60 s for the query to give want, then checks it does. */
static void s_await(PGconn *conn, const char *sql, const char *param, long long want)
{
    long long n = -1;
    for (int i = 0; i < 600 && (n = s_count(conn, sql, param)) != want; i++)
        vem_it_sleep(0.1);
    ck_assert_msg(n == want, "%s [%s]: %lld, want %lld", sql, param ? param : "", n, want);
}

static void s_register(PGconn *conn, const char *vin, const char *plate)
{
    const char *params[] = {vin, plate};
    PGresult *res =
        PQexecParams(conn,
                     "INSERT INTO vehicles (vin, plate, plate_color, fuel, region_code) "
                     "VALUES ($1, $2, 'yellow', 'diesel', '120101') "
                     "ON CONFLICT (vin) DO NOTHING",
                     2, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(conn));
    PQclear(res);
}

/* Starts vemd and waits until its registry snapshot holds at least n vehicles. */
static void s_start(vem_it_run_t *r, const char *name, double n)
{
    vem_it_start(r, name);
    for (int i = 0; i < 100 && vem_it_metric_now(r, "vem_registry_vehicles") < n; i++)
        vem_it_sleep(0.1);
    ck_assert(vem_it_metric_now(r, "vem_registry_vehicles") >= n);
}

/* Writes fmt with its first "%s" as station and its second as when, then a newline (the
 * formats are data, so no printf over them). */
static void s_fill(FILE *f, const char *fmt, const char *station, const char *when)
{
    const char *args[] = {station, when};
    int n = 0;
    for (const char *p = fmt; *p; p++) {
        if (p[0] == '%' && p[1] == 's' && n < 2) {
            fputs(args[n++], f);
            p++;
        } else {
            fputc(*p, f);
        }
    }
    fputc('\n', f);
}

/* ---- exactly once -----------------------------------------------------------------------------
 */

#define S_STATIONS 3
#define S_VALID    40 /* distinct valid readings per station */
#define S_DUPS     5  /* of which sent twice */

/* The malformed readings, one per class; the key vemd must name ("" for none). */
static const struct {
    const char *cls, *key, *fmt; /* fmt: %s station, %s time */
} s_bad[] = {
    {"bad_json", "",
     "{\"version\":1,\"station_id\":\"%s\",\"reading_id\":\"bad-json\",\"t\":\"%s\""},
    {"bad_version", "version",
     "{\"version\":7,\"station_id\":\"%s\",\"reading_id\":\"bad-version\",\"time\":\"%s\"}"},
    {"unknown_key", "nox_ppm",
     "{\"version\":1,\"station_id\":\"%s\",\"reading_id\":\"bad-key\",\"time\":\"%s\","
     "\"plate\":\"津R00001\",\"plate_color\":\"blue\",\"valid\":true,\"nox_ppm\":5}"},
    {"missing_key", "plate",
     "{\"version\":1,\"station_id\":\"%s\",\"reading_id\":\"bad-missing\",\"time\":\"%s\","
     "\"plate_color\":\"blue\",\"valid\":true}"},
    {"wrong_type", "speed_kmh",
     "{\"version\":1,\"station_id\":\"%s\",\"reading_id\":\"bad-type\",\"time\":\"%s\","
     "\"plate\":\"津R00001\",\"plate_color\":\"blue\",\"valid\":true,\"speed_kmh\":\"fast\"}"},
    {"out_of_range", "opacity_pct",
     "{\"version\":1,\"station_id\":\"%s\",\"reading_id\":\"bad-range\",\"time\":\"%s\","
     "\"plate\":\"津R00001\",\"plate_color\":\"blue\",\"valid\":true,\"opacity_pct\":140}"},
    {"bad_value", "plate_color",
     "{\"version\":1,\"station_id\":\"%s\",\"reading_id\":\"bad-colour\",\"time\":\"%s\","
     "\"plate\":\"津R00001\",\"plate_color\":\"purple\",\"valid\":true}"},
    {"bad_time", "time",
     "{\"version\":1,\"station_id\":\"%s\",\"reading_id\":\"bad-time\",\"time\":\"%s\","
     "\"plate\":\"津R00001\",\"plate_color\":\"blue\",\"valid\":true}"},
};
#define S_NBAD (sizeof s_bad / sizeof s_bad[0])

START_TEST(exactly_once)
{
    vem_it_run_t r = {0};
    r.stations_opts = "max_message_bytes = 1024;";
    vem_it_start(&r, "it_rsd");
    int64_t t0 = s_now_s() - 3600;
    char paths[S_STATIONS][512];
    pid_t senders[S_STATIONS];
    for (int s = 0; s < S_STATIONS; s++) {
        char station[16];
        snprintf(station, sizeof station, "EO-%d", s);
        snprintf(paths[s], sizeof paths[s], "%s/%s.jsonl", r.dir, station);
        FILE *f = fopen(paths[s], "w");
        ck_assert_ptr_nonnull(f);
        for (int i = 0; i < S_VALID; i++) {
            char id[32], plate[16];
            snprintf(id, sizeof id, "r%04d", i);
            snprintf(plate, sizeof plate, "津R%d%04d", s, i);
            s_reading(f, station, id, t0 + s * 100 + i, plate, 300 + i, 40);
            if (i < S_DUPS) /* the same reading again, as a station that resends */
                s_reading(f, station, id, t0 + s * 100 + i, plate, 300 + i, 40);
        }
        char when[32];
        for (size_t b = 0; b < S_NBAD; b++) {
            bool future = strcmp(s_bad[b].cls, "bad_time") == 0;
            s_iso(future ? s_now_s() + 7200 : t0, when, sizeof when);
            s_fill(f, s_bad[b].fmt, station, when);
        }
        /* too_large: a valid reading padded past stations.max_message_bytes (1024) */
        s_iso(t0, when, sizeof when);
        fprintf(f,
                "{\"version\":1,\"station_id\":\"%s\",\"reading_id\":\"bad-size\",\"time\":\"%s\","
                "\"plate\":\"津R00001\",\"plate_color\":\"blue\",\"valid\":true,"
                "\"image_ref\":\"%0200d\",   %01000d}\n",
                station, when, 0, 0);
        fclose(f);
        /* the stations send at once, as three processes; station 1 loses one answer */
        char out[600];
        snprintf(out, sizeof out, "%s/%s.out", r.dir, station);
        char vemctl[300], endpoint[320];
        snprintf(vemctl, sizeof vemctl, "%s/vemctl", vem_test_bin_dir());
        snprintf(endpoint, sizeof endpoint, "ipc://%s/stations.sock", r.dir);
        char *argv[] = {vemctl,
                        "rsd",
                        "send",
                        paths[s],
                        "--endpoint",
                        endpoint,
                        "--json",
                        "--quiet",
                        "--timeout-ms",
                        "3000",
                        s == 1 ? "--drop-ack" : NULL,
                        "r0017",
                        NULL};
        senders[s] = vem_it_spawn(argv, out);
    }
    PGconn *conn = vem_it_pg();
    for (int s = 0; s < S_STATIONS; s++) {
        ck_assert_int_eq(vem_it_wait(senders[s], 60), 0);
        char station[16], out[600];
        snprintf(station, sizeof station, "EO-%d", s);
        snprintf(out, sizeof out, "%s/%s.out", r.dir, station);
        json_error_t err;
        json_t *sum = json_load_file(out, 0, &err);
        ck_assert_msg(sum != NULL, "%s: %s", out, err.text);
        /* every line answered: the valid ones and their copies acknowledged (the copies and
         * the reading whose first answer was dropped as duplicates), the bad ones rejected */
        long long dups = S_DUPS + (s == 1);
        ck_assert_int_eq(json_integer_value(json_object_get(sum, "failed")), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(sum, "acked")), S_VALID + S_DUPS);
        ck_assert_int_eq(json_integer_value(json_object_get(sum, "duplicates")), dups);
        ck_assert_int_eq(json_integer_value(json_object_get(sum, "rejected")), S_NBAD + 1);
        json_t *classes = json_object_get(sum, "by_class");
        for (size_t b = 0; b < S_NBAD; b++)
            ck_assert_msg(json_integer_value(json_object_get(classes, s_bad[b].cls)) == 1,
                          "%s: class %s not rejected once", station, s_bad[b].cls);
        ck_assert_int_eq(json_integer_value(json_object_get(classes, "too_large")), 1);
        /* each rejection names the key at fault */
        size_t i;
        json_t *rej;
        json_array_foreach(json_object_get(sum, "rejections"), i, rej)
        {
            const char *cls = json_string_value(json_object_get(rej, "error"));
            const char *key = json_string_value(json_object_get(rej, "key"));
            for (size_t b = 0; b < S_NBAD; b++)
                if (strcmp(cls, s_bad[b].cls) == 0)
                    ck_assert_msg(strcmp(key ? key : "", s_bad[b].key) == 0,
                                  "%s: %s names key %s, want %s", station, cls, key ? key : "",
                                  s_bad[b].key);
        }
        json_decref(sum);
        /* stored: each valid reading exactly once */
        s_await(conn, "SELECT count(*) FROM rsd_readings WHERE station_id = $1", station, S_VALID);
        ck_assert_int_eq(s_count(conn,
                                 "SELECT count(DISTINCT reading_id) FROM rsd_readings WHERE "
                                 "station_id = $1",
                                 station),
                         S_VALID);
    }
    /* one quarantine row per malformed reading of each station (a bad_json one cannot name its
     * station, so they are counted over all), its detail starting with the key at fault */
    for (size_t b = 0; b < S_NBAD; b++) {
        s_await(conn,
                "SELECT count(*) FROM quarantine WHERE source = 'roadside' AND error_class = $1",
                s_bad[b].cls, S_STATIONS);
        if (*s_bad[b].key) {
            char sql[300];
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM quarantine WHERE source = 'roadside' AND error_class = "
                     "'%s' AND detail LIKE $1 || ':%%'",
                     s_bad[b].cls);
            ck_assert_int_eq(s_count(conn, sql, s_bad[b].key), S_STATIONS);
        }
    }
    s_await(conn, "SELECT count(*) FROM quarantine WHERE source = 'roadside' AND error_class = $1",
            "too_large", S_STATIONS);
    /* vemd's own counters agree */
    json_t *st = vem_it_settled(&r);
    ck_assert_double_eq(vem_it_metric(st, "vem_rsd_answers_total{answer=\"ack\"}"),
                        S_STATIONS * S_VALID);
    /* (a slow answer makes a station send again, and vemd answers each copy: at least) */
    ck_assert(vem_it_metric(st, "vem_rsd_answers_total{answer=\"duplicate\"}") >=
              S_STATIONS * S_DUPS + 1);
    ck_assert(vem_it_metric(st, "vem_rsd_answers_total{answer=\"rejected\"}") >=
              S_STATIONS * (S_NBAD + 1));
    json_decref(st);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* ---- kill -9 -------------------------------------------------------------------------------- */

#define S_KILL_READINGS 3000

START_TEST(kill9_resend)
{
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rsd");
    char path[512], out[512];
    snprintf(path, sizeof path, "%s/k9.jsonl", r.dir);
    snprintf(out, sizeof out, "%s/k9.out", r.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    int64_t t0 = s_now_s() - 7200;
    for (int i = 0; i < S_KILL_READINGS; i++) {
        char id[32], plate[16];
        snprintf(id, sizeof id, "k%05d", i);
        snprintf(plate, sizeof plate, "津K%05d", i % 500);
        s_reading(f, "K9", id, t0 + i, plate, 200, 40);
    }
    fclose(f);
    char vemctl[300], endpoint[320];
    snprintf(vemctl, sizeof vemctl, "%s/vemctl", vem_test_bin_dir());
    snprintf(endpoint, sizeof endpoint, "ipc://%s/stations.sock", r.dir);
    /* 1,000 readings/s, so vemd dies in the middle of the stream, readings in flight */
    char *argv[] = {vemctl,         "rsd",    "send",      path,     "--endpoint",
                    endpoint,       "--json", "--quiet",   "--rate", "1000",
                    "--timeout-ms", "1000",   "--retries", "100",    NULL};
    pid_t sender = vem_it_spawn(argv, out);
    vem_it_sleep(1.0);
    /* stopped first, so readings certainly arrive and wait unanswered when it dies */
    ck_assert_int_eq(kill(r.vemd, SIGSTOP), 0);
    vem_it_sleep(0.3);
    ck_assert_int_eq(kill(r.vemd, SIGKILL), 0);
    ck_assert_int_eq(vem_it_wait(r.vemd, 10), 128 + SIGKILL);
    vem_it_sleep(0.5);
    vem_it_launch(&r);
    ck_assert_int_eq(vem_it_wait(sender, 120), 0);
    json_error_t err;
    json_t *sum = json_load_file(out, 0, &err);
    ck_assert_msg(sum != NULL, "%s: %s", out, err.text);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "failed")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "rejected")), 0);
    ck_assert_int_ge(json_integer_value(json_object_get(sum, "acked")), S_KILL_READINGS);
    /* those that arrived while it was stopped were never answered: sent again */
    ck_assert_int_gt(json_integer_value(json_object_get(sum, "resent")), 0);
    json_decref(sum);
    PGconn *conn = vem_it_pg();
    s_await(conn, "SELECT count(*) FROM rsd_readings WHERE station_id = $1", "K9", S_KILL_READINGS);
    ck_assert_int_eq(
        s_count(conn, "SELECT count(DISTINCT reading_id) FROM rsd_readings WHERE station_id = $1",
                "K9"),
        S_KILL_READINGS);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* ---- roadside rules ------------------------------------------------------------------------- */

static long long s_verdicts(PGconn *conn, const char *rule, const char *key, bool by_vin,
                            const char *severity)
{
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM violations WHERE rule = '%s' AND %s = $1 AND severity = '%s'",
             rule, by_vin ? "vin" : "plate", severity);
    return s_count(conn, sql, key);
}

START_TEST(rsd_violation)
{
    PGconn *conn = vem_it_pg();
    s_register(conn, "LRSDVIOL000000001", "津V10001");
    vem_it_run_t r = {0};
    s_start(&r, "it_rsd", 1);
    char path[512];
    snprintf(path, sizeof path, "%s/v.jsonl", r.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    int64_t t0 = s_now_s() - 86400;
    /* the registered truck and an unregistered plate: twice over 1500 ppm, a day apart */
    s_reading(f, "RV-1", "v1", t0, "津V10001", 1800, 40);
    s_reading(f, "RV-1", "v2", t0, "津V20002", 1750, 40);
    s_reading(f, "RV-2", "v3", t0 + 86000, "津V10001", 1900, 45);
    s_reading(f, "RV-2", "v4", t0 + 86000, "津V20002", 1600, 45);
    /* a third plate twice over the limit, both times at 100 km/h: outside the window */
    s_reading(f, "RV-1", "v5", t0, "津V30003", 2000, 100);
    s_reading(f, "RV-2", "v6", t0 + 86000, "津V30003", 2000, 100);
    fclose(f);
    json_t *sum = s_send(&r, path, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "acked")), 6);
    json_decref(sum);
    s_await(conn,
            "SELECT count(*) FROM violations WHERE rule = 'rsd.no_exceed' AND severity = "
            "'violation' AND plate = ANY(string_to_array($1, ','))",
            "津V10001,津V20002", 2);
    ck_assert_int_eq(s_verdicts(conn, "rsd.no_exceed", "LRSDVIOL000000001", true, "violation"), 1);
    ck_assert_int_eq(s_verdicts(conn, "rsd.no_exceed", "津V20002", false, "violation"), 1);
    /* the readings rest where they are expected: the registered plate's with its VIN */
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM rsd_readings WHERE plate = $1 AND vin = "
                             "'LRSDVIOL000000001' AND counted",
                             "津V10001"),
                     2);
    s_await(conn, "SELECT count(*) FROM rsd_readings WHERE plate = $1 AND NOT counted", "津V30003",
            2);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM rsd_readings WHERE plate = $1 AND "
                             "invalid_reason LIKE 'speed_kmh %'",
                             "津V30003"),
                     2);
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM violations WHERE plate = $1", "津V30003"),
                     0);
    /* vemctl vehicle shows the truck's readings */
    char cmd[800];
    snprintf(cmd, sizeof cmd, "'%s/vemctl' vehicle LRSDVIOL000000001 --db '%s' --format json",
             vem_test_bin_dir(), vem_test_env("VEM_TEST_PG"));
    FILE *p = popen(cmd, "r");
    json_t *veh = json_loadf(p, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_ptr_nonnull(veh);
    ck_assert_uint_eq(json_array_size(json_object_get(veh, "readings")), 2);
    json_decref(veh);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* A PUSH socket connected to r's gateway endpoint, in a context of its own (*ctx). */
static void *s_gw_open(const vem_it_run_t *r, void **ctx)
{
    *ctx = zmq_ctx_new();
    void *push = zmq_socket(*ctx, ZMQ_PUSH);
    char endpoint[320];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/gateway.sock", r->dir);
    ck_assert_int_eq(zmq_connect(push, endpoint), 0);
    return push;
}

/* Closes it once what it holds is delivered (at most 60 s). */
static void s_gw_close(void *ctx, void *push)
{
    int linger = 60000;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(push);
    zmq_ctx_term(ctx);
}

/* Pushes OBD frames of vin over the gateway socket: samples at t0 .. t0 + n - 1 with the
 * downstream NOx given (warm engine, driving). */
static void s_obd(const vem_it_run_t *r, const char *vin, int64_t t0, int n, double nox_down,
                  bool hj1239)
{
    vem_sim_truck_t truck;
    vem_sim_truck_init(&truck, 7, 0, 117.2, 39.1, 0);
    snprintf(truck.vin, sizeof truck.vin, "%s", vin);
    vem_sim_sample_t samples[10];
    for (int i = 0; i < 10; i++) {
        vem_sim_sample_t *s = &samples[i];
        memset(s, 0, sizeof *s);
        s->speed_kmh = 40;
        s->baro_kpa = 100;
        s->torque_pct = 40;
        s->friction_pct = 5;
        s->engine_rpm = 1300;
        s->fuel_rate_lph = 20;
        s->nox_up_ppm = 800;
        s->nox_down_ppm = nox_down;
        s->reagent_pct = 60;
        s->intake_air_kgph = 600;
        s->scr_in_c = 300;
        s->scr_out_c = 280;
        s->coolant_c = 85;
        s->fuel_level_pct = 50;
        s->lon = 117.2;
        s->lat = 39.1;
        s->odometer_km = 1000;
    }
    vem_hj1239_frame_t *fr = malloc(sizeof *fr);
    ck_assert_ptr_nonnull(fr);
    void *ctx, *push = s_gw_open(r, &ctx);
    uint8_t out[4096];
    for (int k = 0; k * 10 < n; k++) {
        size_t len = vem_sim_data(fr, &truck, samples, 10, t0 + k * 10, (uint16_t)(k + 1), false,
                                  hj1239, false, out, sizeof out);
        ck_assert_uint_gt(len, 0);
        ck_assert_int_eq(zmq_send(push, out, len, 0), (int)len);
    }
    s_gw_close(ctx, push);
    free(fr);
}

START_TEST(fusion_either_order)
{
    PGconn *conn = vem_it_pg();
    s_register(conn, "LRSDFUSE000000001", "津F10001");
    s_register(conn, "LRSDFUSE000000002", "津F20002");
    vem_it_run_t r = {0};
    s_start(&r, "it_rsd", 2);
    int64_t t = s_now_s() - 120;
    /* OBD first: 30 s of low downstream NOx around t, then the reading at t */
    s_obd(&r, "LRSDFUSE000000001", t - 15, 30, 100, false);
    s_await(conn, "SELECT count(*) FROM obd_samples WHERE vin = $1", "LRSDFUSE000000001", 30);
    char path[512];
    snprintf(path, sizeof path, "%s/f1.jsonl", r.dir);
    FILE *f = fopen(path, "w");
    s_reading(f, "RF-1", "f1", t, "津F10001", 1800, 40);
    fclose(f);
    json_decref(s_send(&r, path, NULL));
    /* the reading first, then the OBD data of that moment */
    snprintf(path, sizeof path, "%s/f2.jsonl", r.dir);
    f = fopen(path, "w");
    s_reading(f, "RF-1", "f2", t, "津F20002", 1800, 40);
    fclose(f);
    json_decref(s_send(&r, path, NULL));
    s_await(conn, "SELECT count(*) FROM rsd_readings WHERE reading_id = $1", "f2", 1);
    s_obd(&r, "LRSDFUSE000000002", t - 15, 30, 100, true);
    s_await(conn,
            "SELECT count(*) FROM violations WHERE rule = 'fusion.obd_mismatch' AND severity = "
            "'notice' AND vin = ANY(string_to_array($1, ','))",
            "LRSDFUSE000000001,LRSDFUSE000000002", 2);
    /* The evidence names the stored sample: the one taken at t (0 s from the reading) is in the
     * frame of t - 5 .. t + 4, stored under the frame's time t + 4 by a GB 17691 terminal (one
     * time a frame, its last sample's: hj1239.md), under t by an HJ 1239 one (a time a block) */
    const struct {
        const char *vin;
        int64_t stored;
    } keyed[] = {{"LRSDFUSE000000001", t + 4}, {"LRSDFUSE000000002", t}};
    for (int i = 0; i < 2; i++) {
        char sql[700];
        snprintf(
            sql, sizeof sql,
            "SELECT count(*) FROM violations v JOIN obd_samples s ON s.vin = v.vin AND "
            "s.sample_time = (v.evidence #>> '{obd,sample_time}')::timestamptz AND "
            "s.block_idx = (v.evidence #>> '{obd,block_idx}')::smallint WHERE v.rule = "
            "'fusion.obd_mismatch' AND v.vin = $1 AND s.nox_down_ppm = 100 AND "
            "s.sample_time = to_timestamp(%lld) AND (v.evidence #>> '{obd,time}')::timestamptz "
            "= to_timestamp(%lld)",
            (long long)keyed[i].stored, (long long)t);
        ck_assert_int_eq(s_count(conn, sql, keyed[i].vin), 1);
    }
    /* a single exceedance is a notice of rsd.no_exceed, never a violation */
    ck_assert_int_eq(s_verdicts(conn, "rsd.no_exceed", "LRSDFUSE000000001", true, "notice"), 1);
    ck_assert_int_eq(s_verdicts(conn, "rsd.no_exceed", "LRSDFUSE000000001", true, "violation"), 0);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* A chain of a plate the registry does not know lives in the worker's plate table: a restart
 * (SIGTERM writes the last checkpoint) must bring it back, so the second exceedance after the
 * restart completes the violation. */
START_TEST(plate_chain_survives_restart)
{
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rsd");
    int64_t t0 = s_now_s() - 7200;
    s_send_one(&r, "p1.jsonl", "RP-1", "p1", t0, "津P70007", 1800);
    PGconn *conn = vem_it_pg();
    s_await(conn, "SELECT count(*) FROM violations WHERE plate = $1 AND severity = 'notice'",
            "津P70007", 1);
    vem_it_halt(&r);
    vem_it_launch(&r);
    s_send_one(&r, "p2.jsonl", "RP-1", "p2", t0 + 3600, "津P70007", 1700);
    s_await(conn,
            "SELECT count(*) FROM violations WHERE plate = $1 AND rule = 'rsd.no_exceed' AND "
            "severity = 'violation' AND coalesce(vin, '') = ''",
            "津P70007", 1);
    ck_assert(vem_it_metric_now(&r, "vem_rules_restored_total") >= 1);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* rules.md: "two or more consecutive valid exceedances"; "consecutive means no valid compliant
 * reading of that pollutant in between". Two exceedances an hour apart make a violation; a
 * compliant reading taken between them that reaches vemd afterwards (a station uploading its
 * backlog late) cuts the run: two one-reading runs, each a notice, and no violation stays in
 * the table. */
START_TEST(late_compliant_cuts_run)
{
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rsd");
    int64_t t0 = s_now_s() - 7200;
    s_send_one(&r, "k1.jsonl", "RK-1", "k1", t0, "津K80008", 1800);
    s_send_one(&r, "k2.jsonl", "RK-1", "k2", t0 + 3600, "津K80008", 1700);
    PGconn *conn = vem_it_pg();
    const char *sql = "SELECT count(*) FROM violations WHERE plate = $1 AND rule = "
                      "'rsd.no_exceed' AND severity = 'violation' AND "
                      "jsonb_array_length(evidence->'readings') = 2";
    s_await(conn, sql, "津K80008", 1);
    s_send_one(&r, "k3.jsonl", "RK-2", "k3", t0 + 1800, "津K80008", 1200);
    s_await(conn,
            "SELECT count(*) FROM violations WHERE plate = $1 AND rule = 'rsd.no_exceed' AND "
            "severity = 'notice' AND jsonb_array_length(evidence->'readings') = 1",
            "津K80008", 2);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM violations WHERE plate = $1 AND severity = "
                             "'violation'",
                             "津K80008"),
                     0);
    /* the run of k1 is k1 alone again: its id's evidence names it and ends at its time */
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM violations WHERE plate = $1 AND "
                             "evidence->'readings'->0->>'reading_id' = 'k1' AND "
                             "last_at = first_at AND spool_seq IS NOT NULL",
                             "津K80008"),
                     1);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

#define S_SV_READINGS 300
#define S_SV_TRUCKS   20
#define S_SV_MORE     50

/* Writes n readings of station SV-1 over the NO limit, of invented VINs (and plates) first ..
 * first + n - 1, taken from t on, to path. The plates are this test's alone: under --group all
 * the suites share one database, and a plate another suite registered routes to its VIN. */
static void s_sv_readings(const char *path, int first, int n, int64_t t)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = first; i < first + n; i++) {
        char when[32];
        s_iso(t + i, when, sizeof when);
        fprintf(f,
                "{\"version\":1,\"station_id\":\"SV-1\",\"reading_id\":\"sv%d\",\"time\":\"%s\","
                "\"plate\":\"琼X%05d\",\"plate_color\":\"yellow\",\"vin\":\"LSTVXN%011d\","
                "\"fuel\":\"diesel\",\"speed_kmh\":40,\"accel_ms2\":0.2,\"vsp_kw_t\":4.5,"
                "\"no_ppm\":1800,\"wind_ms\":1.5,\"slope_pct\":0.5,\"valid\":true}\n",
                i, when, i, i);
    }
    fclose(f);
}

/* A login of each invented VIN first .. first + n - 1 over the gateway socket. */
static void s_sv_logins(const vem_it_run_t *r, int first, int n, int64_t t)
{
    vem_hj1239_frame_t *fr = malloc(sizeof *fr);
    ck_assert_ptr_nonnull(fr);
    void *ctx, *push = s_gw_open(r, &ctx);
    uint8_t out[512];
    for (int i = first; i < first + n; i++) {
        char vin[18];
        snprintf(vin, sizeof vin, "LSTVXN%011d", i);
        size_t len = vem_sim_login(fr, vin, t, 1, out, sizeof out);
        ck_assert_uint_gt(len, 0);
        ck_assert_int_eq(zmq_send(push, out, len, 0), (int)len);
    }
    s_gw_close(ctx, push);
    free(fr);
}

/* Waits for vem_rsd_unjudged_total to reach want, then checks it is exactly that. */
static void s_sv_unjudged(const vem_it_run_t *r, double want)
{
    for (int i = 0; i < 100 && vem_it_metric_sum(r, "vem_rsd_unjudged_total") < want; i++)
        vem_it_sleep(0.1);
    ck_assert_double_eq(vem_it_metric_sum(r, "vem_rsd_unjudged_total"), want);
}

/* A station that invents VINs, none in the registry, each over the NO limit: the rule states
 * they make stay within half of each worker's session table (pipeline.max_sessions 64, so 32
 * per worker of the 2, below stations.max_plates' 500 per worker), the rest are stored, counted
 * and not judged; and trucks that come after get their sessions (none refused), which the
 * station's states would otherwise have filled for six months. */
START_TEST(station_vins_bounded)
{
    PGconn *conn = vem_it_pg();
    /* no roadside history loads: states they made would fill the bound as well */
    vem_it_run_t r = {.pipeline_opts = "max_sessions = 64;",
                      .stations_opts = "max_plates = 1000;",
                      .rules_opts = "rsd_history_readings = 0;"};
    vem_it_start(&r, "it_rsd");
    int64_t t0 = s_now_s() - 3600;
    char path[512];
    snprintf(path, sizeof path, "%s/sv.jsonl", r.dir);
    s_sv_readings(path, 0, S_SV_READINGS, t0);
    json_t *sum = s_send(&r, path, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "acked")), S_SV_READINGS);
    json_decref(sum);
    s_await(conn, "SELECT count(*) FROM rsd_readings WHERE vin LIKE $1 AND counted", "LSTVXN%",
            S_SV_READINGS);
    /* each worker judged 32 (the VINs spread over both, well over 32 each) */
    s_sv_unjudged(&r, S_SV_READINGS - 64);
    s_await(conn, "SELECT count(*) FROM violations WHERE vin LIKE $1 AND rule = 'rsd.no_exceed'",
            "LSTVXN%", 64);
    ck_assert(vem_it_metric_sum(&r, "vem_sessions") <= 2 * 64);
    /* a login of each (easily forged) does not make them terminals' states: 50 more VINs are
     * not judged either */
    /* 20 a connection, each 20 stored before the next: fewer than the socket queue
     * (terminals.rcvhwm 32), as a PUSH socket that closes with more in flight loses them (see
     * the README's "Gateways") */
    for (int c = 0; c < S_SV_READINGS; c += 20) {
        s_sv_logins(&r, c, 20, t0 + 600);
        char want[16];
        snprintf(want, sizeof want, "%d", c + 20);
        s_await(conn,
                "SELECT (count(*) >= $1::int)::int FROM terminal_events WHERE vin LIKE 'LSTVXN%'",
                want, 1);
    }
    s_await(conn, "SELECT count(*) FROM terminal_events WHERE vin LIKE $1", "LSTVXN%",
            S_SV_READINGS);
    snprintf(path, sizeof path, "%s/sv2.jsonl", r.dir);
    s_sv_readings(path, S_SV_READINGS, S_SV_MORE, t0);
    json_decref(s_send(&r, path, NULL));
    s_sv_unjudged(&r, S_SV_READINGS - 64 + S_SV_MORE);
    /* nor does a restart free the bound: the states come back from the checkpoint, counted */
    vem_it_halt(&r);
    vem_it_launch(&r);
    ck_assert(vem_it_metric_now(&r, "vem_rules_restored_total") >= 64);
    snprintf(path, sizeof path, "%s/sv3.jsonl", r.dir);
    s_sv_readings(path, S_SV_READINGS + S_SV_MORE, S_SV_MORE, t0);
    json_decref(s_send(&r, path, NULL));
    json_decref(vem_it_sink_settled(&r));
    /* (an input past the last checkpoint is judged again after the restart: at least the 50) */
    ck_assert_double_ge(vem_it_metric_sum(&r, "vem_rsd_unjudged_total"), S_SV_MORE);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM violations WHERE vin LIKE $1 AND rule = "
                             "'rsd.no_exceed'",
                             "LSTVXN%"),
                     64);
    /* trucks after them: each its session, none refused, their frames stored */
    for (int k = 0; k < S_SV_TRUCKS; k++) {
        char vin[18];
        snprintf(vin, sizeof vin, "LSVTRK%011d", k);
        s_obd(&r, vin, t0 + 600, 20, 100, true);
    }
    s_await(conn, "SELECT count(DISTINCT vin) FROM obd_samples WHERE vin LIKE $1", "LSVTRK%",
            S_SV_TRUCKS);
    ck_assert_double_eq(vem_it_metric_sum(&r, "vem_sessions_refused_total"), 0);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* Two unregistered trucks share a plate, told apart by its colour: each has a chain of its own
 * (one exceedance of the blue one does not complete the yellow one's), across a restart
 * (states checkpointed by plate and colour), and each verdict carries its colour. */
START_TEST(shared_plate_chains_apart_by_colour)
{
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rsd");
    int64_t t0 = s_now_s() - 7200;
    const char *plate = "津C80008";
    char path[512];
    snprintf(path, sizeof path, "%s/c1.jsonl", r.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    s_reading_in(f, "RC-1", "y1", t0, plate, "yellow", 1800, 40);
    s_reading_in(f, "RC-1", "b1", t0 + 600, plate, "blue", 1800, 40);
    fclose(f);
    json_decref(s_send(&r, path, NULL));
    PGconn *conn = vem_it_pg();
    /* over 1500 ppm once each: a notice each (rules.md rsd.no_exceed: two in a row make it) */
    s_await(conn,
            "SELECT count(*) FROM violations WHERE plate = $1 AND rule = 'rsd.no_exceed' AND "
            "severity = 'notice'",
            plate, 2);
    vem_it_halt(&r);
    vem_it_launch(&r);
    snprintf(path, sizeof path, "%s/c2.jsonl", r.dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    s_reading_in(f, "RC-1", "y2", t0 + 3600, plate, "yellow", 1700, 40);
    fclose(f);
    json_decref(s_send(&r, path, NULL));
    s_await(conn,
            "SELECT count(*) FROM violations WHERE plate = $1 AND rule = 'rsd.no_exceed' AND "
            "plate_color = 'yellow' AND severity = 'violation' AND "
            "jsonb_array_length(evidence->'readings') = 2",
            plate, 1);
    json_decref(vem_it_sink_settled(&r));
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM violations WHERE plate = $1 AND "
                             "plate_color = 'blue' AND severity = 'notice' AND "
                             "jsonb_array_length(evidence->'readings') = 1",
                             plate),
                     1);
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM violations WHERE plate = $1 AND vin IS NULL", plate),
        2);
    ck_assert(vem_it_metric_now(&r, "vem_rules_restored_total") >= 2);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* vemctl rsd send reads CSV with a header of the same keys: empty cells are not reported,
 * text keys stay text, numbers and booleans are typed. */
START_TEST(csv_input)
{
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rsd");
    char path[512], when[32];
    snprintf(path, sizeof path, "%s/in.csv", r.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    s_iso(s_now_s() - 600, when, sizeof when);
    fprintf(f, "version,station_id,reading_id,time,plate,plate_color,fuel,speed_kmh,no_ppm,"
               "image_ref,valid\n");
    fprintf(f, "1,CSV-1,c1,%s,津S00001,yellow,diesel,41.5,812,\"img,1.jpg\",true\n", when);
    fprintf(f, "1,CSV-1,c2,%s,津S00002,blue,,,,,false\n", when);
    fprintf(f, "1,CSV-1,c3,%s,津S00003,purple,,,,,true\n", when);
    fclose(f);
    json_t *sum = s_send(&r, path, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "acked")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "rejected")), 1);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(sum, "by_class"), "bad_value")), 1);
    json_decref(sum);
    PGconn *conn = vem_it_pg();
    s_await(conn, "SELECT count(*) FROM rsd_readings WHERE station_id = $1", "CSV-1", 2);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM rsd_readings WHERE reading_id = 'c1' AND "
                             "speed_kmh = 41.5 AND no_ppm = 812 AND image_ref = $1 AND valid",
                             "img,1.jpg"),
                     1);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM rsd_readings WHERE reading_id = 'c2' AND "
                             "speed_kmh IS NULL AND fuel = $1 AND NOT valid AND NOT counted",
                             "unknown"),
                     1);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

Suite *vem_suite_rsd_e2e(void);
Suite *vem_suite_rsd_e2e(void)
{
    Suite *s = suite_create("rsd_e2e");
    TCase *tc = tcase_create("stations");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, exactly_once);
    tcase_add_test(tc, kill9_resend);
    tcase_add_test(tc, rsd_violation);
    tcase_add_test(tc, fusion_either_order);
    tcase_add_test(tc, csv_input);
    tcase_add_test(tc, plate_chain_survives_restart);
    tcase_add_test(tc, late_compliant_cuts_run);
    tcase_add_test(tc, shared_plate_chains_apart_by_colour);
    tcase_add_test(tc, station_vins_bounded);
    suite_add_tcase(s, tc);
    return s;
}
