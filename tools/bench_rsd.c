/* bench-rsd — roadside readings through vemd into PostgreSQL, against a plain COPY of the same
 * readings in the same run.
 *
 *   bench-rsd [--readings N] [--stations S] [--latency-readings M]
 *
 * Needs a server: with VEM_TEST_PG set it uses that database (migrations applied); without,
 * it runs itself again under tests/harness.sh, which starts a throw-away cluster.
 *
 * N readings (200,000) of S stations (20) over 10,000 plates, one JSON line each, are sent by
 * `vemctl rsd send` (one DEALER socket, 1,000 unanswered at most) to a vemd with the spool
 * fsynced, as deployed, on a loopback TCP endpoint. Figures:
 *   readings_per_s   acknowledged readings per second (each after its spool fdatasync)
 *   stored_per_s     readings per second until the last one is a row of rsd_readings
 *   p50_ms, p99_ms   send to acknowledgement, paced at 1,000 readings/s (M = 10,000 more)
 *   copy_per_s       the same N readings (other station ids) as rsd_readings rows made exactly
 *                    as the sink makes them, by one plain COPY BINARY per 20,000 rows into
 *                    rsd_readings: the ceiling
 *   ratio            stored_per_s / copy_per_s
 * The last line is key=value figures. */
#include "bench_util.h"
#include "pgrows.h"
#include "pgwrite.h"
#include "rsd.h"

#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long s_count(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        vem_bench_die(sql, PQerrorMessage(conn));
    long long n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

/* Writes n readings of the stations "<prefix>-0" .. to path: diesel trucks inside the HJ 845
 * window, values varying per reading, times over the last hours. */
static void s_write_readings(const char *path, const char *prefix, unsigned n, unsigned stations,
                             int64_t t0)
{
    FILE *f = fopen(path, "w");
    if (!f)
        vem_bench_die(path, strerror(errno));
    for (unsigned i = 0; i < n; i++) {
        char when[48];
        vem_rsd_iso((t0 + i / 20) * 1000000 + (int64_t)(i % 20) * 50000, when, sizeof when);
        fprintf(f,
                "{\"version\":1,\"station_id\":\"%s-%u\",\"reading_id\":\"%s-%08u\",\"lane\":%u,"
                "\"time\":\"%s\",\"plate\":\"津B%05u\",\"plate_color\":\"yellow\","
                "\"fuel\":\"diesel\",\"speed_kmh\":%.1f,\"accel_ms2\":%.2f,\"vsp_kw_t\":%.1f,"
                "\"opacity_pct\":%.1f,\"k_m1\":%.2f,\"ringelmann\":%u,\"no_ppm\":%u,"
                "\"co_pct\":0.05,\"hc_ppm\":30,\"co2_pct\":10.8,\"wind_ms\":%.1f,\"temp_c\":12,"
                "\"humidity_pct\":40,\"pressure_kpa\":101.1,\"slope_pct\":0.5,"
                "\"image_ref\":\"img/%u.jpg\",\"valid\":true}\n",
                prefix, i % stations, prefix, i, 1 + i % 4, when, i % 10000, 30 + (i % 400) / 10.0,
                (double)(i % 11) / 10.0 - 0.3, 2 + (i % 150) / 10.0, (double)(i % 300) / 10.0,
                (double)(i % 120) / 100.0, i % 2, 200 + i % 1700, (double)(i % 40) / 10.0, i);
    }
    fclose(f);
}

/* Runs vemctl rsd send and returns its --json summary (caller decrefs). */
static json_t *s_send(const char *bin, const char *path, const char *endpoint, const char *rate)
{
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof cmd,
             "'%s/vemctl' rsd send '%s' --endpoint '%s' --json --quiet --inflight 1000 %s%s", bin,
             path, endpoint, rate ? "--rate " : "", rate ? rate : "");
    FILE *p = popen(cmd, "r");
    if (!p)
        vem_bench_die("popen", strerror(errno));
    json_error_t err;
    json_t *o = json_loadf(p, JSON_DISABLE_EOF_CHECK, &err);
    int rc = pclose(p);
    if (!o || rc != 0)
        vem_bench_die("vemctl rsd send", o ? "readings without an answer" : err.text);
    return o;
}

/* The readings of path as rsd_readings rows, made as the worker and the sink make them, in
 * batches of 20,000, then COPY'd plainly; returns the seconds the COPYs took. */
static double s_copy(const char *conninfo, const char *path, unsigned n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        vem_bench_die(path, strerror(errno));
    unsigned nbatches = (n + 19999) / 20000;
    vem_pgrows_buf_t *batches = calloc(nbatches, sizeof *batches);
    vem_pgrows_t rows = {0};
    char *line = NULL;
    size_t cap = 0;
    unsigned i = 0;
    int64_t now = (int64_t)time(NULL) * 1000000;
    while (getline(&line, &cap, f) > 0 && i < n) {
        vem_rsd_t r;
        vem_rsd_error_t err;
        if (vem_rsd_parse((const uint8_t *)line, strlen(line), now, 300, &r, &err) != VEM_RSD_OK)
            vem_bench_die("reading", err.detail);
        json_t *o = vem_rsd_json(&r);
        json_object_set_new(o, "time_us", json_integer((json_int_t)r.time_us));
        json_object_set_new(o, "counted", json_true());
        json_object_set_new(o, "invalid_reason", json_null());
        vem_pgrows_reading(&rows, o, now);
        json_decref(o);
        i++;
        if (i % 20000 == 0 || i == n) {
            vem_pgrows_buf_put(&batches[(i - 1) / 20000], rows.rows[VEM_PGROWS_READINGS].data,
                               rows.rows[VEM_PGROWS_READINGS].len);
            vem_pgrows_reset(&rows);
        }
    }
    free(line);
    fclose(f);
    vem_pgrows_free(&rows);
    char err[512];
    vem_pgwriter_t *w = vem_pgwriter_new(conninfo);
    if (vem_pgwriter_connect(w, 3, err, sizeof err) != 0)
        vem_bench_die("connect", err);
    double t = vem_bench_now();
    for (unsigned b = 0; b < nbatches; b++)
        if (vem_pgwriter_copy_plain(w, vem_pgrows_copy_sql(VEM_PGROWS_READINGS), &batches[b], err,
                                    sizeof err) != VEM_PGW_OK)
            vem_bench_die("plain COPY", err);
    t = vem_bench_now() - t;
    vem_pgwriter_destroy(&w);
    for (unsigned b = 0; b < nbatches; b++)
        vem_pgrows_buf_free(&batches[b]);
    free(batches);
    return t;
}

int main(int argc, char **argv)
{
    unsigned n = 200000, stations = 20, latency_n = 10000;
    static const struct option options[] = {{"readings", required_argument, NULL, 'n'},
                                            {"stations", required_argument, NULL, 's'},
                                            {"latency-readings", required_argument, NULL, 'l'},
                                            {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (c == 'n')
            n = (unsigned)strtoul(optarg, NULL, 10);
        else if (c == 's')
            stations = (unsigned)strtoul(optarg, NULL, 10);
        else if (c == 'l')
            latency_n = (unsigned)strtoul(optarg, NULL, 10);
        else {
            fprintf(stderr, "usage: bench-rsd [--readings N] [--stations S] "
                            "[--latency-readings M]\n");
            return 2;
        }
    }
    if (n == 0 || stations == 0)
        vem_bench_die("usage", "--readings and --stations must be positive");
    const char *conninfo = vem_bench_conninfo(argv);
    vem_bench_vemd_t v;
    vem_bench_vemd_init(&v, "bench-rsd");
    char bin[PATH_MAX], endpoint[64], path[PATH_MAX + 32], lpath[PATH_MAX + 32],
        cpath[PATH_MAX + 32];
    vem_bench_exe_dir(bin, sizeof bin);
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", vem_bench_free_port());
    int64_t t0 = (int64_t)time(NULL) - 6 * 3600;
    snprintf(path, sizeof path, "%s/readings.jsonl", v.dir);
    snprintf(lpath, sizeof lpath, "%s/paced.jsonl", v.dir);
    snprintf(cpath, sizeof cpath, "%s/copy.jsonl", v.dir);
    s_write_readings(path, "BR", n, stations, t0);
    s_write_readings(lpath, "BL", latency_n, stations, t0);
    s_write_readings(cpath, "BC", n, stations, t0);

    vem_bench_vemd_start(&v,
                         "terminals: { endpoint = \"tcp://127.0.0.1:%d\"; };\n"
                         "gateways: { endpoint = \"\"; };\n"
                         "stations: { endpoint = \"%s\"; };\n"
                         "control: { endpoint = \"ipc://%s/control.sock\"; };\n"
                         "metrics: { enable = false; };\n"
                         "spool: { dir = \"%s/spool\"; fsync = true; };\n"
                         "pg: { conninfo = \"%s\"; };\n"
                         "log: { level = \"warning\"; };\n",
                         vem_bench_free_port(), endpoint, v.dir, v.dir, conninfo);
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK)
        vem_bench_die("connect", PQerrorMessage(conn));
    /* vemd binds before it is ready; the DEALER connects when it can */
    vem_bench_vemd_wait(&v, 1.5, NULL, NULL);

    fprintf(stderr, "bench-rsd: %u readings of %u stations through vemd\n", n, stations);
    double start = vem_bench_now();
    json_t *sum = s_send(bin, path, endpoint, NULL);
    double acked_s = vem_bench_now() - start;
    long long acked = json_integer_value(json_object_get(sum, "acked"));
    json_decref(sum);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM rsd_readings WHERE station_id LIKE 'BR-%%'");
    long long stored = 0;
    while ((stored = s_count(conn, sql)) < n && vem_bench_now() - start < 600)
        usleep(250000); /* a count is a scan: not too often, it competes with vemd */
    double stored_s = vem_bench_now() - start;
    if (stored != n)
        vem_bench_die("rsd_readings", "not every reading was stored");

    fprintf(stderr, "bench-rsd: %u readings paced at 1,000/s\n", latency_n);
    sum = s_send(bin, lpath, endpoint, "1000");
    double p50 = json_real_value(json_object_get(sum, "p50_ms"));
    double p99 = json_real_value(json_object_get(sum, "p99_ms"));
    json_decref(sum);
    vem_bench_vemd_kill(&v);

    fprintf(stderr, "bench-rsd: the same %u readings by plain COPY\n", n);
    double copy_s = s_copy(conninfo, cpath, n);
    PQfinish(conn);
    double rate = (double)acked / acked_s, stored_rate = (double)n / stored_s,
           copy_rate = (double)n / copy_s;
    printf("readings=%u acked=%lld readings_per_s=%.0f stored_per_s=%.0f p50_ms=%.1f p99_ms=%.1f "
           "copy_per_s=%.0f ratio=%.2f\n",
           n, acked, rate, stored_rate, p50, p99, copy_rate, stored_rate / copy_rate);
    return 0;
}
