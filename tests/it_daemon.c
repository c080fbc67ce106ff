/* it_daemon — the real vemd, driven over TCP by the real vem-sim.
 *
 * fleet:     200 simulated trucks stream HJ 1239 frames for 30 s; mid-run the configuration
 *            file changes a reloadable key and vemd gets SIGHUP. Afterwards vemd must have
 *            counted, per vehicle and per command, exactly the frames vem-sim reports having
 *            written (its ground truth), must have applied the reload, and must drain and exit
 *            0 on SIGTERM.
 * malformed: garbage, bad BCCs, truncated frames and idle connections mixed into a run are
 *            counted by class, idle connections are closed, and every good frame on the same
 *            connections arrives.
 *
 * log:       log.burst is applied on SIGHUP: after a reload to burst = 2, a run of malformed
 *            inputs on one connection (one debug line each, one call site) writes at most 2
 *            lines per second and counts the rest.
 *
 * Expected numbers come from vem-sim's ground truth (what it wrote to its sockets), never from
 * vemd. Processes are started with fork/exec and always reaped (tests/itutil). */
#include "itutil.h"
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* Every vehicle of the truth arrived with exactly its frame counts, and no other vehicle. */
static void s_compare(const vem_it_run_t *r, json_t *truth)
{
    json_t *sessions = vem_it_status(r, "--vehicles --json");
    ck_assert_ptr_nonnull(sessions);
    ck_assert_int_eq(json_array_size(json_object_get(sessions, "workers_not_answering")), 0);
    json_t *by_vehicle = json_object_get(truth, "by_vehicle");
    json_t *vehicles = json_object_get(sessions, "vehicles");
    ck_assert_uint_eq(json_array_size(vehicles), json_object_size(by_vehicle));
    size_t i;
    json_t *v;
    json_array_foreach(vehicles, i, v)
    {
        const char *vin = json_string_value(json_object_get(v, "vin"));
        json_t *sent = json_object_get(by_vehicle, vin);
        ck_assert_msg(sent != NULL, "vemd saw %s, which vem-sim never sent", vin);
        const char *cmd;
        json_t *count;
        json_object_foreach(sent, cmd, count)
        {
            json_t *got = json_object_get(json_object_get(v, "frames"), cmd);
            ck_assert_msg(json_integer_value(count) == (got ? json_integer_value(got) : 0),
                          "%s %s: sent %lld, counted %lld", vin, cmd,
                          (long long)json_integer_value(count),
                          (long long)(got ? json_integer_value(got) : 0));
        }
        ck_assert_int_eq(json_integer_value(json_object_get(v, "duplicates")), 0);
    }
    json_decref(sessions);
}

START_TEST(fleet_counts_reload_and_drain)
{
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_daemon");
    char *extra[] = {"--trucks", "200",    "--duration", "30",        "--rate",
                     "1",        "--seed", "4",          "--offline", "10"};
    pid_t sim = vem_it_run_sim(&r, extra, 10);
    sleep(12);
    vem_it_write_config(&r, "debug"); /* log.level is reloadable */
    ck_assert_int_eq(kill(r.vemd, SIGHUP), 0);
    ck_assert_int_eq(vem_it_wait(sim, 120), 0);

    json_t *truth = vem_it_truth(&r);
    ck_assert_int_eq(json_integer_value(json_object_get(truth, "trucks")), 200);
    ck_assert_int_gt(json_integer_value(json_object_get(truth, "frames_sent")), 200 * 20);
    /* The reload dropped no connection: vem-sim saw no reset and no refused connect. */
    json_t *errors = json_object_get(truth, "errors");
    ck_assert_int_eq(json_integer_value(json_object_get(errors, "resets")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(errors, "connect_failures")), 0);
    json_t *st = vem_it_settled(&r);
    ck_assert_double_eq(vem_it_metric(st, "vem_reloads_total"), 1);
    ck_assert_double_eq(vem_it_metric(st, "vem_reload_errors_total"), 0);
    json_decref(st);
    s_compare(&r, truth);
    json_decref(truth);
    vem_it_stop(&r);
}
END_TEST

START_TEST(malformed_input_counted_good_frames_arrive)
{
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_daemon");
    char *extra[] = {"--trucks", "20",          "--duration", "10",     "--rate",
                     "2",        "--malformed", "5",          "--idle", "3"};
    pid_t sim = vem_it_run_sim(&r, extra, 10);
    ck_assert_int_eq(vem_it_wait(sim, 120), 0);
    json_t *truth = vem_it_truth(&r);
    json_t *bad = json_object_get(truth, "malformed");
    ck_assert_int_gt(json_integer_value(json_object_get(bad, "good_frames")), 0);
    ck_assert_int_gt(json_integer_value(json_object_get(bad, "bad_checksum")), 0);

    sleep(5); /* past the 3 s idle timeout */
    json_t *st = vem_it_settled(&r);
    /* A frame with a bad BCC is one bad_checksum drop; its remaining bytes are then scanned
     * as garbage, so bad_start runs are at least the garbage runs vem-sim wrote. */
    ck_assert_double_eq(vem_it_metric(st, "vem_stream_drops_total{class=\"bad_checksum\"}"),
                        (double)json_integer_value(json_object_get(bad, "bad_checksum")));
    ck_assert_double_eq(vem_it_metric(st, "vem_stream_drops_total{class=\"truncated\"}"),
                        (double)json_integer_value(json_object_get(bad, "truncated")));
    ck_assert(vem_it_metric(st, "vem_stream_drops_total{class=\"bad_start\"}") >=
              (double)json_integer_value(json_object_get(bad, "garbage_runs")));
    ck_assert_double_eq(vem_it_metric(st, "vem_connections_closed_total{reason=\"idle\"}"),
                        (double)json_integer_value(json_object_get(truth, "idle_connections")));
    json_decref(st);
    s_compare(&r, truth);
    json_decref(truth);
    vem_it_stop(&r);
}
END_TEST

/* Gateways push whole frames over ZeroMQ, one per message part: every shared vector goes in,
 * good ones are counted by command, rejected ones by their class. */
START_TEST(gateway_frames_counted)
{
    vem_it_run_t r = {.pipeline_opts = "sample_past_days = 36600;"}; /* the vectors are of 2024 */
    vem_it_start(&r, "it_daemon");
    char path[512], endpoint[300];
    snprintf(path, sizeof path, "%s/hj1239/vectors.jsonl", vem_test_vectors_dir());
    snprintf(endpoint, sizeof endpoint, "ipc://%s/gateway.sock", r.dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    ck_assert_int_eq(zmq_connect(push, endpoint), 0);
    json_error_t err;
    json_t *v;
    int good = 0, bad = 0, logins = 0;
    while ((v = json_loadf(f, JSON_DISABLE_EOF_CHECK, &err))) {
        const char *hex = json_string_value(json_object_get(v, "hex"));
        uint8_t frame[4096];
        long len = vem_test_unhex(hex, frame, sizeof frame);
        ck_assert_int_gt(len, 0);
        json_t *expect = json_object_get(v, "expect");
        const char *error = json_string_value(json_object_get(expect, "error"));
        const char *cmd = json_string_value(json_object_get(expect, "cmd"));
        /* an activation is judged before it is spooled (README "Signatures and terminal
         * keys"): the vector's signature was made by no key, so it is refused, bad_signature */
        bool refused = cmd && strcmp(cmd, "activation") == 0;
        good += !error && !refused;
        bad += error != NULL || refused;
        logins += cmd && strcmp(cmd, "login") == 0;
        ck_assert_int_eq(zmq_send(push, frame, (size_t)len, 0), (int)len);
        json_decref(v);
    }
    fclose(f);
    int linger = 5000;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(push);
    zmq_ctx_term(ctx);

    json_t *st = NULL;
    double frames = 0, errors = 0;
    for (int i = 0; i < 100 && frames + errors < good + bad; i++) {
        json_decref(st);
        usleep(100000);
        st = vem_it_status(&r, "--json");
        ck_assert_ptr_nonnull(st);
        frames = errors = 0;
        const char *series;
        json_t *value;
        json_object_foreach(json_object_get(st, "metrics"), series, value)
        {
            if (strncmp(series, "vem_frames_total{", 17) == 0)
                frames += json_number_value(value);
            if (strncmp(series, "vem_errors_total{", 17) == 0)
                errors += json_number_value(value);
        }
    }
    /* The vectors: 9 frames that decode (two logins), 5 that must be rejected and the
     * activation. */
    ck_assert_double_eq(frames, good);
    ck_assert_double_eq(errors, bad);
    ck_assert_double_eq(vem_it_metric(st, "vem_frames_total{cmd=\"login\",dialect=\"none\"}"),
                        logins);
    ck_assert_double_eq(vem_it_metric(st, "vem_errors_total{class=\"bad_checksum\"}"), 1);
    ck_assert_double_eq(vem_it_metric(st, "vem_errors_total{class=\"unknown_command\"}"), 1);
    ck_assert_double_eq(vem_it_metric(st, "vem_errors_total{class=\"bad_signature\"}"), 1);
    json_decref(st);
    vem_it_stop(&r);
}
END_TEST

/* vem-sim -> vemd -> PostgreSQL: rows per vehicle equal what vem-sim sent, re-sent backlogs
 * included. Then vemd restarts with its spool cursor at 0, so every spooled frame goes through
 * the workers and the sink again: no row is added. */
START_TEST(pg_rows_match_sent_and_replay_adds_none)
{
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_daemon");
    char *extra[] = {"--trucks", "40", "--duration", "15", "--rate",       "1",
                     "--seed",   "11", "--offline",  "25", "--vin-prefix", "LPGRWS"};
    pid_t sim = vem_it_run_sim(&r, extra, 12);
    ck_assert_int_eq(vem_it_wait(sim, 120), 0);
    json_t *truth = vem_it_truth(&r);
    PGconn *conn = vem_it_pg();
    vem_it_compare_rows(conn, "obd_samples", "LPGRWS", truth);
    vem_it_compare_rows(conn, "terminal_events", "LPGRWS", truth);
    const char *vin;
    json_t *counts;
    long long resends = 0;
    json_object_foreach(json_object_get(truth, "by_vehicle"), vin, counts) resends +=
        json_integer_value(json_object_get(counts, "resend"));
    ck_assert_int_gt(resends, 0); /* the offline trucks did re-send */
    vem_it_halt(&r);

    char cursor[300];
    snprintf(cursor, sizeof cursor, "%s/spool/cursor.pg", r.dir);
    FILE *f = fopen(cursor, "w");
    ck_assert_ptr_nonnull(f);
    fputs("0\n", f);
    fclose(f);
    vem_it_launch(&r);
    json_t *st = vem_it_sink_settled(&r);
    /* The replay went through the sink (duplicates seen), and added nothing. */
    ck_assert(vem_it_metric(st, "vem_sink_duplicates_total{sink=\"pg\",table=\"obd_samples\"}") >
              0);
    ck_assert_double_eq(vem_it_metric(st, "vem_sink_rows_total{sink=\"pg\",table=\"obd_samples\"}"),
                        0);
    ck_assert_double_eq(
        vem_it_metric(st, "vem_sink_rows_total{sink=\"pg\",table=\"terminal_events\"}"), 0);
    json_decref(st);
    vem_it_compare_rows(conn, "obd_samples", "LPGRWS", truth);
    vem_it_compare_rows(conn, "terminal_events", "LPGRWS", truth);
    PQfinish(conn);
    json_decref(truth);
    vem_it_stop(&r);
}
END_TEST

/* Pushes one vector frame (by name) through the gateway socket of r. */
static void s_push_vector(const vem_it_run_t *r, const char *name, uint8_t cmd_override)
{
    char path[512], endpoint[300];
    snprintf(path, sizeof path, "%s/hj1239/vectors.jsonl", vem_test_vectors_dir());
    snprintf(endpoint, sizeof endpoint, "ipc://%s/gateway.sock", r->dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    json_error_t err;
    json_t *v;
    long len = -1;
    uint8_t frame[4096];
    while ((v = json_loadf(f, JSON_DISABLE_EOF_CHECK, &err))) {
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            len = vem_test_unhex(json_string_value(json_object_get(v, "hex")), frame, sizeof frame);
        json_decref(v);
    }
    fclose(f);
    ck_assert_int_gt(len, 0);
    if (cmd_override) { /* the same data as another command: fix the BCC (XOR of 2..n-2) */
        frame[len - 1] ^= frame[2] ^ cmd_override;
        frame[2] = cmd_override;
    }
    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 5000;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_connect(push, endpoint), 0);
    ck_assert_int_eq(zmq_send(push, frame, (size_t)len, 0), (int)len);
    zmq_close(push);
    zmq_ctx_term(ctx);
}

/* Rows of the HJ 1239 real-time vector: VIN LZZTESTVIN0000001, samples at 08:09:10..12
 * Beijing time, the first live (resent false). */
static void s_vector_rows(PGconn *conn, long long *rows, long long *live)
{
    PGresult *res = PQexec(conn, "SELECT count(*), count(*) FILTER (WHERE NOT resent) "
                                 "FROM obd_samples WHERE vin = 'LZZTESTVIN0000001' AND "
                                 "sample_time BETWEEN '2024-03-05 08:09:10+08' AND "
                                 "'2024-03-05 08:09:12+08' AND block_type = 'stream' AND "
                                 "frame_seq = 3");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    *rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    *live = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
}

/* A frame received live, then after a restart (fresh sessions, so only the database can tell)
 * the same frame again and its re-sent (0x03) copy: three samples stored once, as live. */
START_TEST(pg_resend_of_stored_frame_adds_no_row)
{
    vem_it_run_t r = {.pipeline_opts = "sample_past_days = 36600;"}; /* the vector is of 2024 */
    vem_it_start(&r, "it_daemon");
    PGconn *conn = vem_it_pg();
    s_push_vector(&r, "realtime_hj1239", 0);
    long long rows = 0, live = 0;
    for (int i = 0; i < 100 && rows < 3; i++) {
        usleep(100000);
        s_vector_rows(conn, &rows, &live);
    }
    ck_assert_int_eq(rows, 3);
    vem_it_halt(&r);
    vem_it_launch(&r);
    s_push_vector(&r, "realtime_hj1239", 0);
    s_push_vector(&r, "realtime_hj1239", 0x03);
    json_t *st = NULL;
    for (int i = 0; i < 100; i++) {
        json_decref(st);
        usleep(100000);
        st = vem_it_status(&r, "--json");
        ck_assert_ptr_nonnull(st);
        if (vem_it_metric(st, "vem_sink_duplicates_total{sink=\"pg\",table=\"obd_samples\"}") >= 3)
            break;
    }
    /* the restarted vemd let the repeat through (its sessions are new), then the re-sent copy
     * was a repeat to it; the database kept one row per sample either way */
    ck_assert_double_eq(
        vem_it_metric(st, "vem_sink_duplicates_total{sink=\"pg\",table=\"obd_samples\"}"), 3);
    ck_assert_double_eq(vem_it_metric(st, "vem_sink_rows_total{sink=\"pg\",table=\"obd_samples\"}"),
                        0);
    json_decref(st);
    s_vector_rows(conn, &rows, &live);
    ck_assert_int_eq(rows, 3);
    ck_assert_int_eq(live, 3);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST
/* PostgreSQL goes away for 20 s in the middle of a run: afterwards every sample vem-sim sent
 * is stored exactly once. */
START_TEST(pg_outage_loses_nothing)
{
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_daemon");
    char *extra[] = {"--trucks", "30",     "--duration", "40",           "--rate",
                     "1",        "--seed", "12",         "--vin-prefix", "LPGDWN"};
    pid_t sim = vem_it_run_sim(&r, extra, 10);
    sleep(8);
    vem_it_pgctl("stop");
    sleep(20);
    json_t *st = vem_it_status(&r, "--json");
    ck_assert_ptr_nonnull(st);
    ck_assert_double_eq(vem_it_metric(st, "vem_sink_up{sink=\"pg\"}"), 0);
    ck_assert(vem_it_metric(st, "vem_sink_errors_total{sink=\"pg\",class=\"retry\"}") > 0);
    json_decref(st);
    vem_it_pgctl("start");
    ck_assert_int_eq(vem_it_wait(sim, 120), 0);
    json_t *truth = vem_it_truth(&r);
    PGconn *conn = vem_it_pg();
    vem_it_compare_rows(conn, "obd_samples", "LPGDWN", truth);
    vem_it_compare_rows(conn, "terminal_events", "LPGDWN", truth);
    PQfinish(conn);
    st = vem_it_sink_settled(&r);
    ck_assert_double_eq(vem_it_metric(st, "vem_sink_up{sink=\"pg\"}"), 1);
    json_decref(st);
    json_decref(truth);
    vem_it_stop(&r);
}
END_TEST

static double s_vehicles_in_table(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT count(*) FROM vehicles");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    double n = strtod(PQgetvalue(res, 0, 0), NULL);
    PQclear(res);
    return n;
}

/* The plate vemctl status --vehicles shows for vin ("" when none). */
static char *s_plate_of(const vem_it_run_t *r, const char *vin)
{
    json_t *sessions = vem_it_status(r, "--vehicles --json");
    ck_assert_ptr_nonnull(sessions);
    char *plate = strdup("");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(sessions, "vehicles"), i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "vin")), vin) == 0 &&
            json_object_get(v, "plate")) {
            free(plate);
            plate = strdup(json_string_value(json_object_get(v, "plate")));
        }
    }
    json_decref(sessions);
    return plate;
}

/* vemd reads the registry at start and again on SIGHUP; workers then know the vehicle. */
START_TEST(registry_loaded_at_start_and_on_sighup)
{
    PGconn *conn = vem_it_pg();
    vem_it_sql(conn, "DELETE FROM vehicles WHERE vin = 'LZZTESTVIN0000001'");
    vem_it_sql(conn,
               "INSERT INTO vehicles (vin, plate, plate_color, region_code) VALUES "
               "('LREGTEST000000001', '京A12345', 'yellow', '110105') ON CONFLICT DO NOTHING");
    vem_it_run_t r = {.pipeline_opts = "sample_past_days = 36600;"}; /* the login is of 2024 */
    vem_it_start(&r, "it_daemon");
    json_t *st = vem_it_status(&r, "--json");
    ck_assert_ptr_nonnull(st);
    ck_assert_double_eq(vem_it_metric(st, "vem_registry_vehicles"), s_vehicles_in_table(conn));
    json_decref(st);
    s_push_vector(&r, "login", 0); /* LZZTESTVIN0000001: not registered yet */
    char *plate = NULL;
    for (int i = 0; i < 50; i++) {
        st = vem_it_status(&r, "--json");
        double unregistered = vem_it_metric(st, "vem_unregistered_frames_total");
        json_decref(st);
        if (unregistered >= 1)
            break;
        usleep(100000);
    }
    plate = s_plate_of(&r, "LZZTESTVIN0000001");
    ck_assert_str_eq(plate, "");
    free(plate);

    vem_it_sql(conn, "INSERT INTO vehicles (vin, plate, plate_color, region_code) VALUES "
                     "('LZZTESTVIN0000001', '沪B67890', 'yellow', '310115')");
    ck_assert_int_eq(kill(r.vemd, SIGHUP), 0);
    for (int i = 0; i < 50; i++) {
        plate = s_plate_of(&r, "LZZTESTVIN0000001");
        if (*plate)
            break;
        free(plate);
        plate = NULL;
        usleep(100000);
    }
    ck_assert_ptr_nonnull(plate);
    ck_assert_str_eq(plate, "沪B67890");
    free(plate);
    st = vem_it_status(&r, "--json");
    ck_assert_double_eq(vem_it_metric(st, "vem_registry_vehicles"), s_vehicles_in_table(conn));
    json_decref(st);
    vem_it_sql(conn,
               "DELETE FROM vehicles WHERE vin IN ('LZZTESTVIN0000001', 'LREGTEST000000001')");
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* Lines of r's vemd log that hold text. */
static int s_log_lines(const vem_it_run_t *r, const char *text)
{
    size_t len;
    char *log = (char *)vem_test_slurp(r->log, &len);
    ck_assert_ptr_nonnull(log);
    int n = 0;
    for (char *line = log; line < log + len;) {
        char *end = memchr(line, '\n', (size_t)(log + len - line));
        if (!end)
            end = log + len;
        if (memmem(line, (size_t)(end - line), text, strlen(text)))
            n++;
        line = end + 1;
    }
    free(log);
    return n;
}

START_TEST(log_burst_applied_on_reload)
{
    enum { S_BAD = 200 };
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_daemon");
    /* reload with log: { level = "debug"; burst = 2; } */
    vem_it_write_config(&r, "debug");
    size_t len;
    char *cfg = (char *)vem_test_slurp(r.cfg, &len);
    ck_assert_ptr_nonnull(cfg);
    const char *level = "level = \"debug\";";
    char *at = memmem(cfg, len, level, strlen(level));
    ck_assert_ptr_nonnull(at);
    at += strlen(level);
    FILE *f = fopen(r.cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%.*s burst = 2;%.*s", (int)(at - cfg), cfg, (int)(cfg + len - at), at);
    fclose(f);
    free(cfg);
    ck_assert_int_eq(kill(r.vemd, SIGHUP), 0);
    double until = vem_it_mono() + 20;
    while (vem_it_metric_now(&r, "vem_reloads_total") < 1 && vem_it_mono() < until)
        vem_it_sleep(0.05);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_reloads_total"), 1);

    /* S_BAD times `##` and an unknown command: an unknown_command drop, then its third byte a
     * bad_start drop; each a debug line from the same call site */
    uint8_t bad[3 * S_BAD];
    for (int i = 0; i < S_BAD; i++)
        memcpy(bad + 3 * i, "##\x09", 3);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    double t0 = vem_it_mono();
    ck_assert_int_eq(write(fd, bad, sizeof bad), (ssize_t)sizeof bad);
    const char *series = "vem_stream_drops_total{class=\"unknown_command\"}";
    until = t0 + 30;
    while (vem_it_metric_now(&r, series) < S_BAD && vem_it_mono() < until)
        vem_it_sleep(0.05);
    double spent = vem_it_mono() - t0;
    ck_assert_double_eq(vem_it_metric_now(&r, series), S_BAD);
    close(fd);
    vem_it_sleep(0.5); /* the last line follows its counter */
    /* at most 2 lines in each second the drops spanned (10, the default, without the reload) */
    int lines = s_log_lines(&r, " at stream offset ");
    ck_assert_msg(lines >= 1 && lines <= 2 * ((int)ceil(spent) + 1),
                  "%d lines in %.2f s with burst 2", lines, spent);
    vem_it_stop(&r);
}
END_TEST

/* SPOOL_DIR/intake-paused of r: the paused total and the time vemd was last known running. */
static void s_paused_file(const vem_it_run_t *r, long long *total_us, long long *alive_us)
{
    char path[400];
    snprintf(path, sizeof path, "%s/spool/intake-paused", r->dir);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no %s", path);
    ck_assert_int_eq(fscanf(f, " ~p%lld ~a%lld", total_us, alive_us), 2);
    fclose(f);
}

static long long s_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* SPOOL_DIR/intake-paused is rewritten within timeout_s with a total of at least total_us and
 * a time other than alive_us; its values then. */
static void s_paused_rewritten(const vem_it_run_t *r, long long total_us, long long alive_us,
                               double timeout_s, long long *total_out, long long *alive_out)
{
    double t0 = vem_it_mono();
    do {
        s_paused_file(r, total_out, alive_out);
        if (*total_out >= total_us && *alive_out != alive_us)
            return;
        vem_it_sleep(0.2);
    } while (vem_it_mono() - t0 < timeout_s);
    ck_abort_msg("intake-paused not rewritten in %.0f s: %lld us, %lld", timeout_s, *total_out,
                 *alive_out);
}

/* A stopped vemd reads nothing, so its downtime is no vehicle's silence (no trip ends, no truck
 * is offline for it): the next start counts it as paused.
 *  - Stopped (SIGTERM) for 3 s: the stop wrote its time to the spool directory, and the start
 *    adds from there to its own time: at least the 3 s, at most the file's time to the check.
 *  - A rewrite that fails is logged, leaves the file as it was, and is made good once it can be.
 *  - Killed (SIGKILL) right after a rewrite while running (a heartbeat: the total unchanged),
 *    whose time is VEM_INGEST_ALIVE_PROMISE_S (20 s) ahead, and started 23 s later: the start
 *    counts from that time (a crash's downtime is counted short, not long, so the intake clock
 *    does not step back). */
START_TEST(downtime_counts_as_paused)
{
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_daemon");
    vem_it_halt(&r);
    long long total0, alive0, total1, alive1, total2, alive2;
    s_paused_file(&r, &total0, &alive0);
    long long stopped = s_wall_us();
    ck_assert_msg(alive0 <= stopped && alive0 > stopped - 10000000, "alive %lld, stopped %lld",
                  alive0, stopped);
    vem_it_sleep(3);
    vem_it_launch(&r);
    double paused = vem_it_metric_now(&r, "vem_intake_paused_seconds");
    long long checked = s_wall_us();
    ck_assert_msg(paused * 1e6 >= (double)total0 + 3e6 - 1e6 &&
                      paused * 1e6 <= (double)total0 + (double)(checked - alive0),
                  "paused %.0f s after %lld us and a stop of 3 s", paused, total0);
    ck_assert(vem_it_log_has(&r, "counted as paused"));
    /* the start writes its new total at once (and again at its first second, with the
     * milliseconds intake was closed at start), then every 10 s the same total with a new time */
    s_paused_rewritten(&r, total0 + 3000000, alive0, 10, &total1, &alive1);
    /* a rewrite that fails (a directory where its tmp file goes) is logged and tried again each
     * second, the file left as it was; once the directory goes, the file is rewritten */
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s/spool/intake-paused.tmp", r.dir);
    ck_assert_int_eq(mkdir(tmp, 0700), 0);
    ck_assert_msg(vem_it_log_until(&r, "cannot write", 15), "a failed rewrite was not logged");
    s_paused_file(&r, &total2, &alive2);
    ck_assert_int_eq(total2, total1);
    ck_assert_int_eq(alive2, alive1);
    ck_assert_int_eq(rmdir(tmp), 0);
    s_paused_rewritten(&r, total1, alive1, 5, &total1, &alive1);
    for (int i = 0;; i++) {
        ck_assert_int_lt(i, 3);
        s_paused_rewritten(&r, total1, alive1, 20, &total2, &alive2);
        if (total2 == total1)
            break;
        total1 = total2;
        alive1 = alive2;
    }
    long long killed = s_wall_us();
    ck_assert_int_eq(kill(r.vemd, SIGKILL), 0);
    ck_assert_int_eq(vem_it_wait(r.vemd, 10), 128 + SIGKILL);
    r.vemd = 0;
    s_paused_file(&r, &total1, &alive1);
    ck_assert_int_eq(alive1, alive2);
    ck_assert_msg(alive1 > killed && alive1 <= killed + 20000000, "alive %lld us after the kill",
                  alive1 - killed);
    vem_it_sleep(23);
    long long started = s_wall_us();
    vem_it_launch(&r);
    paused = vem_it_metric_now(&r, "vem_intake_paused_seconds");
    checked = s_wall_us();
    ck_assert_msg(paused * 1e6 >= (double)(total1 + started - alive1) - 1e6 &&
                      paused * 1e6 <= (double)(total1 + checked - alive1),
                  "paused %.0f s after %lld us, killed %lld us before the file's time", paused,
                  total1, alive1 - killed);
    vem_it_stop(&r);
}
END_TEST

Suite *vem_suite_daemon(void);
Suite *vem_suite_daemon(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = tcase_create("daemon");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, fleet_counts_reload_and_drain);
    tcase_add_test(tc, malformed_input_counted_good_frames_arrive);
    tcase_add_test(tc, gateway_frames_counted);
    tcase_add_test(tc, pg_rows_match_sent_and_replay_adds_none);
    tcase_add_test(tc, pg_resend_of_stored_frame_adds_no_row);
    tcase_add_test(tc, pg_outage_loses_nothing);
    tcase_add_test(tc, registry_loaded_at_start_and_on_sighup);
    tcase_add_test(tc, downtime_counts_as_paused);
    suite_add_tcase(s, tc);
    TCase *log = tcase_create("log");
    tcase_set_timeout(log, 120);
    tcase_add_test(log, log_burst_applied_on_reload);
    suite_add_tcase(s, log);
    return s;
}
