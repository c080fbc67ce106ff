/* bench-query — one vehicle's hour of samples, read the way an agency reads it, from a table of
 * at least 50 M samples.
 *
 *   bench-query [--vehicles N] [--days D] [--frames F] [--queries Q] [--no-load]
 *
 * Needs a server: with VEM_TEST_PG set it uses that database (migrations applied); without,
 * it runs itself again under tests/harness.sh, which starts a throw-away cluster.
 *
 * Loads obd_frames with N vehicles (1,000) x D Beijing days (10) x F frames (500) of 10 diesel
 * stream samples, each vehicle driving 83 minutes a day from a start of its own, by plain COPY
 * of pgrows' rows (the sink's rows, without the sink's savepoints), then ANALYZE and a
 * CHECKPOINT. Then Q (200) queries, each for a random vehicle, day and hour inside its drive,
 * over one connection:
 *   samples  SELECT * FROM vem_samples(vin, from, from + 1 h): every column of 3,600 samples,
 *            decoded, to the client
 *   some     the same rows, four columns (sample_time, speed_kmh, nox_down_ppm, invalid): only
 *            the columns asked for are decoded
 *   frames   the same hour's frame rows as stored (SELECT * FROM obd_frames with the frame-time
 *            bound vem_samples adds): what reading them costs without decoding
 *   agency   "samples" as an agency's login (role bench_agency in vem_agency, region 110105,
 *            which holds the even-numbered vehicles of the registry the bench fills), so
 *            row-level security applies as it does for an agency: an even vehicle's hour
 *            (3,600 samples), and an odd one's once (none)
 * With --no-load the rows a previous run loaded (same N, D, F, the same Beijing day) are queried
 * again: how two definitions of the decoding compare on one table, run alternately.
 * Figures: p50 and p99 of each, in ms (client side, result received); ratio = frames_p50 /
 * samples_p50 (the share of the time that is not decoding every column). */
#include "bench_util.h"
#include "pgrows.h"
#include "pgwrite.h"

#include <getopt.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Frame k of vehicle v in a drive from start: 10 samples, values varying per second. */
static void s_frame(vem_hj1239_frame_t *f, unsigned v, int64_t start, unsigned k)
{
    char vin[18];
    snprintf(vin, sizeof vin, "LQUERY%011u", v);
    vem_bench_frame(f, vin, start + (int64_t)k * 10, (uint16_t)(k + 1), k * 10, 30, 60);
}

/* The agency login the "agency" queries use, its region holding the even-numbered vehicles;
 * a connection as it. */
static PGconn *s_agency(PGconn *admin, const char *conninfo, unsigned vehicles)
{
    vem_bench_exec(admin, "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
                          "'bench_agency') THEN CREATE ROLE bench_agency LOGIN IN ROLE vem_agency; "
                          "END IF; END $$");
    vem_bench_exec(admin, "INSERT INTO agency_regions VALUES ('bench_agency', '110105') "
                          "ON CONFLICT DO NOTHING");
    char sql[400];
    snprintf(sql, sizeof sql,
             "INSERT INTO vehicles (vin, region_code) SELECT 'LQUERY' || lpad(v::text, 11, '0'), "
             "CASE WHEN v %% 2 = 0 THEN '110105' ELSE '310115' END "
             "FROM generate_series(0, %u) v ON CONFLICT (vin) DO NOTHING",
             vehicles - 1);
    vem_bench_exec(admin, sql);
    vem_bench_exec(admin, "ANALYZE vehicles");
    char as[600];
    snprintf(as, sizeof as, "%s user=bench_agency", conninfo);
    PGconn *conn = PQconnectdb(as);
    if (PQstatus(conn) != CONNECTION_OK)
        vem_bench_die("connect as bench_agency", PQerrorMessage(conn));
    return conn;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One query with the vehicle and range as parameters; its time in ms; *rows the rows. */
static double s_time_query(PGconn *conn, const char *sql, const char *vin, const char *from,
                           int *rows)
{
    const char *params[] = {vin, from};
    double a = vem_bench_now();
    PGresult *res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
    double ms = (vem_bench_now() - a) * 1000;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        vem_bench_die(sql, PQerrorMessage(conn));
    *rows = PQntuples(res);
    PQclear(res);
    return ms;
}

int main(int argc, char **argv)
{
    unsigned vehicles = 1000, days = 10, frames = 500, queries = 200;
    bool load = true;
    static const struct option options[] = {
        {"vehicles", required_argument, NULL, 'v'}, {"days", required_argument, NULL, 'd'},
        {"frames", required_argument, NULL, 'f'},   {"queries", required_argument, NULL, 'q'},
        {"no-load", no_argument, NULL, 'n'},        {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "v:d:f:q:n", options, NULL)) != -1) {
        unsigned long n = optarg ? strtoul(optarg, NULL, 10) : 0;
        if (opt == 'n')
            load = false;
        else if (opt == 'v')
            vehicles = (unsigned)n;
        else if (opt == 'd')
            days = (unsigned)n;
        else if (opt == 'f')
            frames = (unsigned)n;
        else if (opt == 'q')
            queries = (unsigned)n;
        else
            return 2;
    }
    if (vehicles == 0 || days == 0 || days > 100 || frames < 360 || frames > 8000 || queries == 0) {
        fprintf(stderr, "usage: bench-query [--vehicles N] [--days D<=100] [--frames 360..8000] "
                        "[--queries Q] [--no-load]\n");
        return 2;
    }
    const char *conninfo = vem_bench_conninfo(argv);

    /* days ending yesterday (Beijing), so every partition is an ordinary past day */
    int64_t today = vem_hj1239_beijing_day((int64_t)time(NULL));
    int64_t day0 = (today - days) * 86400 - 8 * 3600; /* Beijing midnight, epoch seconds */
    char err[512];
    vem_pgwriter_t *w = vem_pgwriter_new(conninfo);
    if (vem_pgwriter_connect(w, 1, err, sizeof err) != 0)
        vem_bench_die("connect", err);
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t rows = {0};
    uint64_t samples = 0;
    double load_s = 0;
    for (unsigned d = 0; load && d < days; d++) {
        for (unsigned v = 0; v < vehicles; v++) {
            /* the drive starts between 06:00 and 14:00 */
            int64_t start = day0 + (int64_t)d * 86400 + 6 * 3600 + (int64_t)((v * 7919u) % 28800);
            for (unsigned k = 0; k < frames; k++) {
                s_frame(f, v, start, k);
                vem_pgrows_frame(&rows, f, (start + (int64_t)k * 10 + 10) * 1000000);
            }
            if (rows.samples < 20000 && v + 1 < vehicles)
                continue;
            vem_pgbatch_t b = {.days = rows.days, .ndays = rows.ndays};
            if (vem_pgwriter_write(w, &b, NULL, err, sizeof err) != VEM_PGW_OK)
                vem_bench_die("partitions", err);
            double a = vem_bench_now();
            if (vem_pgwriter_copy_plain(w, vem_pgrows_copy_sql(VEM_PGROWS_SAMPLES),
                                        &rows.rows[VEM_PGROWS_SAMPLES], err,
                                        sizeof err) != VEM_PGW_OK)
                vem_bench_die("COPY", err);
            load_s += vem_bench_now() - a;
            samples += rows.samples;
            vem_pgrows_reset(&rows);
        }
    }
    vem_pgrows_free(&rows);
    free(f);
    vem_pgwriter_destroy(&w);

    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK)
        vem_bench_die("connect", PQerrorMessage(conn));
    vem_bench_exec(conn, "ANALYZE obd_frames");
    vem_bench_exec(conn, "CHECKPOINT");
    PGresult *res = PQexec(conn, "SELECT pg_size_pretty(sum(pg_total_relation_size(relid))) "
                                 "FROM pg_partition_tree('obd_frames')");
    printf("loaded %llu samples (%u vehicles x %u days x %u frames of 10) in %.1f s of COPY; "
           "obd_frames %s\n",
           (unsigned long long)samples, vehicles, days, frames, load_s, PQgetvalue(res, 0, 0));
    PQclear(res);

    static const char q_samples[] =
        "SELECT * FROM vem_samples($1, $2::timestamptz, $2::timestamptz + interval '1 hour')";
    static const char q_frames[] =
        "SELECT * FROM obd_frames WHERE vin = $1 "
        "AND frame_time >= $2::timestamptz - interval '3600 s' "
        "AND frame_time < $2::timestamptz + interval '1 hour' + interval '3600 s'";
    static const char q_some[] =
        "SELECT sample_time, speed_kmh, nox_down_ppm, invalid FROM vem_samples($1, "
        "$2::timestamptz, $2::timestamptz + interval '1 hour')";
    double *ts = malloc(queries * sizeof *ts), *tf = malloc(queries * sizeof *tf);
    double *to = malloc(queries * sizeof *to), *ta = malloc(queries * sizeof *ta);
    PGconn *agency = s_agency(conn, conninfo, vehicles);
    unsigned seed = 12345;
    long long got = 0;
    for (unsigned i = 0; i < queries; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned v = (seed >> 8) % vehicles, d = (seed >> 20) % days;
        int64_t start = day0 + (int64_t)d * 86400 + 6 * 3600 + (int64_t)((v * 7919u) % 28800);
        int64_t span = (int64_t)frames * 10 - 3600;
        int64_t from = start + (int64_t)((seed >> 4) % (unsigned)(span > 0 ? span : 1));
        char vin[18];
        snprintf(vin, sizeof vin, "LQUERY%011u", v);
        char ts_text[64];
        time_t tt = (time_t)from;
        strftime(ts_text, sizeof ts_text, "%Y-%m-%d %H:%M:%S+00", gmtime(&tt));
        int n;
        ts[i] = s_time_query(conn, q_samples, vin, ts_text, &n);
        if (n != 3600)
            vem_bench_die("vem_samples", "an hour inside a drive did not give 3600 samples");
        got += n;
        tf[i] = s_time_query(conn, q_frames, vin, ts_text, &n);
        to[i] = s_time_query(conn, q_some, vin, ts_text, &n);
        if (n != 3600)
            vem_bench_die("vem_samples", "an hour inside a drive did not give 3600 samples");
        /* the agency: the even vehicle of the pair, the same hour of its own drive */
        unsigned ve = v - v % 2;
        int64_t start_e = day0 + (int64_t)d * 86400 + 6 * 3600 + (int64_t)((ve * 7919u) % 28800);
        tt = (time_t)(start_e + (from - start));
        strftime(ts_text, sizeof ts_text, "%Y-%m-%d %H:%M:%S+00", gmtime(&tt));
        snprintf(vin, sizeof vin, "LQUERY%011u", ve);
        ta[i] = s_time_query(agency, q_samples, vin, ts_text, &n);
        if (n != 3600)
            vem_bench_die("agency",
                          "an hour inside a drive of its region did not give 3600 samples");
        if (i == 0) {
            int hidden;
            snprintf(vin, sizeof vin, "LQUERY%011u", ve + 1);
            s_time_query(agency, q_samples, vin, ts_text, &hidden);
            if (hidden != 0)
                vem_bench_die("agency", "a vehicle outside the agency's region showed");
        }
    }
    qsort(ts, queries, sizeof *ts, s_cmp);
    qsort(tf, queries, sizeof *tf, s_cmp);
    qsort(to, queries, sizeof *to, s_cmp);
    double o50 = to[queries / 2], o99 = to[queries * 99 / 100];
    double s50 = ts[queries / 2], s99 = ts[queries * 99 / 100];
    double f50 = tf[queries / 2], f99 = tf[queries * 99 / 100];
    qsort(ta, queries, sizeof *ta, s_cmp);
    double a50 = ta[queries / 2], a99 = ta[queries * 99 / 100];
    printf("one vehicle's hour (3,600 samples) over %u queries: every column p50 %.1f ms, p99 "
           "%.1f ms; four columns p50 %.1f ms, p99 %.1f ms; its frame rows undecoded: p50 %.1f "
           "ms, p99 %.1f ms; every column as an agency (row-level security) p50 %.1f ms, p99 "
           "%.1f ms\n",
           queries, s50, s99, o50, o99, f50, f99, a50, a99);
    printf("samples=%llu queries=%u samples_p50_ms=%.2f samples_p99_ms=%.2f some_p50_ms=%.2f "
           "some_p99_ms=%.2f frames_p50_ms=%.2f frames_p99_ms=%.2f agency_p50_ms=%.2f "
           "agency_p99_ms=%.2f ratio=%.3f\n",
           (unsigned long long)samples, queries, s50, s99, o50, o99, f50, f99, a50, a99, f50 / s50);
    free(ts);
    free(ta);
    PQfinish(agency);
    free(to);
    free(tf);
    PQfinish(conn);
    return got > 0 ? 0 : 1;
}
