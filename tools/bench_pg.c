/* bench-pg — samples per second through the PostgreSQL sink's write path, against the ceiling
 * of a plain COPY BINARY of the same frame rows into the same kind of table, measured in the
 * same run; and the row-per-sample layout the frames replaced, for disk and WAL.
 *
 *   bench-pg [--frames N] [--batch SAMPLES] [--connections N]
 *
 * Needs a server: with VEM_TEST_PG set it uses that database (migrations applied); without,
 * it runs itself again under tests/harness.sh, which starts a throw-away cluster (durable
 * commits: fsync on, synchronous_commit on).
 *
 * Rows are decoded real-time frames of 10 diesel stream samples each (HJ 1239 layout, one
 * vehicle per 1,000 frames, values varying per second), turned into binary COPY rows by
 * pgrows exactly as the workers do, in batches of --batch samples (20,000). Figures:
 *   sink    vem_pgwriter_write into obd_frames (daily partitions, UNIQUE (vin, frame_time)):
 *           savepoint, COPY, commit per batch, partitions ensured
 *   copy    one COPY BINARY per batch into bench_plain_frames: the same columns, the same
 *           daily partitioning and the same unique key, no savepoint: the ceiling
 *           (interleaved with the sink batch by batch, so both tables grow alike)
 *   replay  the same rows through the sink again: every frame already there, so each batch
 *           takes the staging-table path and stores nothing (a replay after a crash)
 *   rows    the same samples as rows of the old layout (one row per sample, obd_samples_rows'
 *           columns and UNIQUE (vin, sample_time, block_idx)), taken from the obd_samples view
 *           with COPY TO and written back with one COPY BINARY per batch
 *   parallel as many samples again, of other vehicles, through --connections (2) sink writers
 *           at once, each batch to the next idle writer, driven without blocking as the sink
 *           drives its lanes: samples/s over the wall clock
 * Disk is pg_total_relation_size (heap, TOAST, indexes) of the partitions of the plain frame
 * table and of the row table, per million samples; WAL is pg_current_wal_lsn() moved over each
 * write, per sample. The last line is key=value figures; ratio = sink / copy. */
#include "bench_util.h"
#include "pgrows.h"
#include "pgwrite.h"

#include <getopt.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Frame i: vehicle i / 1000, 10 samples at consecutive seconds. */
static void s_frame(vem_hj1239_frame_t *f, unsigned run, unsigned i, int64_t t0)
{
    char vin[18];
    snprintf(vin, sizeof vin, "LBENCH%02u%09u", run % 100, i / 1000);
    vem_bench_frame(f, vin, t0 + (int64_t)(i % 1000) * 10, (uint16_t)(i % 1000 + 1), i * 10, 40,
                    50);
}

/* The frames of a run as the sink would hold them: batches of batch_samples samples. */
static vem_pgbatch_t *s_batches(unsigned run, int64_t t0, unsigned frames, long batch_samples,
                                size_t *nb_out, uint64_t *total_out)
{
    size_t nbatches = (size_t)((uint64_t)frames * 10 / (uint64_t)batch_samples + 1), nb = 0;
    vem_pgbatch_t *batches = calloc(nbatches, sizeof *batches);
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t rows = {0};
    uint64_t total = 0;
    for (unsigned i = 0; i < frames; i++) {
        s_frame(f, run, i, t0 + (int64_t)(i / 1000) * 3600);
        vem_pgrows_frame(&rows, f, (t0 + 10 * 86400) * 1000000);
        if (rows.samples >= (uint64_t)batch_samples || i + 1 == frames) {
            vem_pgbatch_t *b = &batches[nb++];
            vem_pgrows_buf_put(&b->rows[VEM_PGROWS_SAMPLES], rows.rows[VEM_PGROWS_SAMPLES].data,
                               rows.rows[VEM_PGROWS_SAMPLES].len);
            b->nrows[VEM_PGROWS_SAMPLES] = rows.nrows[VEM_PGROWS_SAMPLES];
            b->samples = rows.samples;
            uint8_t days[VEM_PGROWS_MAX_DAYS * 4];
            memcpy(days, rows.days, rows.ndays * sizeof(int32_t));
            vem_pgbatch_add_days(b, days, rows.ndays);
            total += rows.samples;
            vem_pgrows_reset(&rows);
        }
    }
    vem_pgrows_free(&rows);
    free(f);
    *nb_out = nb;
    *total_out = total;
    return batches;
}

/* The batches written by n writers at once (a batch holds the frames of one or two vehicles,
 * so no two writers meet on a key), each driven without blocking as the sink drives its lanes;
 * returns the seconds from the first start to the last commit, *stored the samples stored. */
static double s_parallel(const char *conninfo, const vem_pgbatch_t *b, size_t nb, unsigned n,
                         uint64_t *stored)
{
    vem_pgwriter_t *w[64];
    struct pollfd p[64];
    char err[512];
    for (unsigned k = 0; k < n; k++) {
        w[k] = vem_pgwriter_new(conninfo);
        if (vem_pgwriter_connect(w[k], 3, err, sizeof err) != 0)
            vem_bench_die("connect", err);
    }
    size_t next = 0, done = 0;
    *stored = 0;
    double a = vem_bench_now();
    while (done < nb) {
        nfds_t np = 0;
        for (unsigned k = 0; k < n; k++) {
            if (!vem_pgwriter_busy(w[k]) && next < nb &&
                vem_pgwriter_write_start(w[k], &b[next++], err, sizeof err) != 0)
                vem_bench_die("write", err);
            if (!vem_pgwriter_busy(w[k]))
                continue;
            int fd = -1;
            short events = 0;
            vem_pgw_stats_t st = {0};
            vem_pgw_result_t r = vem_pgwriter_step(w[k], &fd, &events, &st, err, sizeof err);
            if (r == VEM_PGW_PENDING) {
                p[np++] = (struct pollfd){.fd = fd, .events = events};
            } else if (r == VEM_PGW_OK) {
                done++;
                *stored += st.inserted[VEM_PGROWS_SAMPLES];
            } else {
                vem_bench_die("parallel write", err);
            }
        }
        if (np)
            poll(p, np, 100);
    }
    double s = vem_bench_now() - a;
    for (unsigned k = 0; k < n; k++)
        vem_pgwriter_destroy(&w[k]);
    return s;
}

/* Moves the WAL position into *lsn and returns the bytes since the previous one. */
static uint64_t s_wal(PGconn *conn, uint64_t *lsn)
{
    PGresult *res = PQexec(conn, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        vem_bench_die("pg_current_wal_lsn", PQerrorMessage(conn));
    uint64_t now = strtoull(PQgetvalue(res, 0, 0), NULL, 10), d = now - *lsn;
    PQclear(res);
    *lsn = now;
    return d;
}

static double s_value(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        vem_bench_die(sql, PQerrorMessage(conn));
    double v = strtod(PQgetvalue(res, 0, 0), NULL);
    PQclear(res);
    return v;
}

/* The bench's samples through the obd_samples view, as binary COPY rows of the old layout, cut
 * into batches of batch_rows rows. */
static size_t s_old_rows(PGconn *conn, unsigned run, long batch_rows, vem_pgrows_buf_t **out)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "COPY (SELECT * FROM obd_samples WHERE vin LIKE 'LBENCH%02u%%') TO STDOUT "
             "(FORMAT binary)",
             run % 100);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT)
        vem_bench_die("COPY TO", PQerrorMessage(conn));
    PQclear(res);
    vem_pgrows_buf_t all = {0};
    char *chunk;
    int n;
    while ((n = PQgetCopyData(conn, &chunk, 0)) > 0) {
        vem_pgrows_buf_put(&all, chunk, (size_t)n);
        PQfreemem(chunk);
    }
    while ((res = PQgetResult(conn)))
        PQclear(res);
    /* header: 11-byte signature, flags, extension length; trailer: int16 -1 */
    size_t off = 19, nb = 0, cap = 16;
    vem_pgrows_buf_t *batches = calloc(cap, sizeof *batches);
    long in_batch = 0;
    while (off + 2 <= all.len) {
        uint16_t ncols = (uint16_t)(all.data[off] << 8 | all.data[off + 1]);
        if (ncols == 0xFFFF)
            break;
        size_t start = off;
        off += 2;
        for (unsigned c = 0; c < ncols; c++) {
            uint32_t len = (uint32_t)all.data[off] << 24 | (uint32_t)all.data[off + 1] << 16 |
                           (uint32_t)all.data[off + 2] << 8 | all.data[off + 3];
            off += 4 + (len == UINT32_MAX ? 0 : len);
        }
        if (in_batch == 0) {
            if (nb == cap) {
                batches = realloc(batches, 2 * cap * sizeof *batches);
                memset(batches + cap, 0, cap * sizeof *batches);
                cap *= 2;
            }
            nb++;
        }
        vem_pgrows_buf_put(&batches[nb - 1], all.data + start, off - start);
        if (++in_batch == batch_rows)
            in_batch = 0;
    }
    vem_pgrows_buf_free(&all);
    *out = batches;
    return nb;
}

int main(int argc, char **argv)
{
    unsigned frames = 100000, connections = 2;
    long batch_samples = 20000;
    static const struct option options[] = {{"frames", required_argument, NULL, 'f'},
                                            {"batch", required_argument, NULL, 'b'},
                                            {"connections", required_argument, NULL, 'c'},
                                            {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "f:b:c:", options, NULL)) != -1) {
        if (opt == 'f')
            frames = (unsigned)strtoul(optarg, NULL, 10);
        else if (opt == 'b')
            batch_samples = strtol(optarg, NULL, 10);
        else if (opt == 'c')
            connections = (unsigned)strtoul(optarg, NULL, 10);
        else
            return 2;
    }
    if (frames == 0 || batch_samples < 10 || connections == 0 || connections > 64) {
        fprintf(stderr, "usage: bench-pg [--frames N] [--batch SAMPLES] [--connections N<=64]\n");
        return 2;
    }
    const char *conninfo = vem_bench_conninfo(argv);

    /* frame rows, in batches, as the sink would hold them */
    unsigned run = (unsigned)time(NULL);
    int64_t t0 = (int64_t)time(NULL) - 3 * 86400; /* spans a few days of partitions */
    size_t nb;
    uint64_t total;
    vem_pgbatch_t *batches = s_batches(run, t0, frames, batch_samples, &nb, &total);

    /* the ceiling's table: obd_frames' columns, partitioning and unique key; the old layout's */
    PGconn *admin = PQconnectdb(conninfo);
    if (PQstatus(admin) != CONNECTION_OK)
        vem_bench_die("connect", PQerrorMessage(admin));
    vem_bench_exec(admin, "SET client_min_messages = warning");
    vem_bench_exec(admin, "DROP TABLE IF EXISTS bench_plain_frames, bench_rows");
    vem_bench_exec(admin, "CREATE TABLE bench_plain_frames (LIKE obd_frames INCLUDING DEFAULTS, "
                          "UNIQUE (vin, frame_time)) PARTITION BY RANGE (frame_time)");
    vem_bench_exec(admin, "CREATE TABLE bench_rows (LIKE obd_samples_rows INCLUDING DEFAULTS, "
                          "UNIQUE (vin, sample_time, block_idx)) PARTITION BY RANGE (sample_time)");
    vem_bench_exec(admin,
                   "INSERT INTO partitioned_tables VALUES ('bench_plain_frames'), ('bench_rows') "
                   "ON CONFLICT DO NOTHING");

    char err[512];
    vem_pgwriter_t *w = vem_pgwriter_new(conninfo);
    if (vem_pgwriter_connect(w, 3, err, sizeof err) != 0)
        vem_bench_die("connect", err);
    /* partitions for every day, for every table, before any clock starts */
    vem_pgw_stats_t st;
    for (size_t i = 0; i < nb; i++) {
        vem_pgbatch_t empty = {.days = batches[i].days, .ndays = batches[i].ndays};
        if (vem_pgwriter_write(w, &empty, &st, err, sizeof err) != VEM_PGW_OK)
            vem_bench_die("partitions", err);
    }
    char copy_plain[1024];
    const char *copy = vem_pgrows_copy_sql(VEM_PGROWS_SAMPLES);
    snprintf(copy_plain, sizeof copy_plain, "COPY bench_plain_frames%s",
             copy + strlen("COPY obd_frames"));

    /* Interleaved batch by batch, so both tables grow alike and share the server's state. */
    double copy_s = 0, sink_s = 0;
    uint64_t inserted = 0, dups = 0, lsn = 0, sink_wal = 0, copy_wal = 0;
    s_wal(admin, &lsn);
    for (size_t i = 0; i < nb; i++) {
        double a = vem_bench_now();
        if (vem_pgwriter_copy_plain(w, copy_plain, &batches[i].rows[VEM_PGROWS_SAMPLES], err,
                                    sizeof err) != VEM_PGW_OK)
            vem_bench_die("plain COPY", err);
        double b = vem_bench_now();
        copy_wal += s_wal(admin, &lsn);
        double c = vem_bench_now();
        if (vem_pgwriter_write(w, &batches[i], &st, err, sizeof err) != VEM_PGW_OK)
            vem_bench_die("sink write", err);
        sink_s += vem_bench_now() - c;
        copy_s += b - a;
        sink_wal += s_wal(admin, &lsn);
        inserted += st.inserted[VEM_PGROWS_SAMPLES];
    }

    double a = vem_bench_now();
    for (size_t i = 0; i < nb; i++) {
        if (vem_pgwriter_write(w, &batches[i], &st, err, sizeof err) != VEM_PGW_OK)
            vem_bench_die("replay write", err);
        dups += st.duplicates[VEM_PGROWS_SAMPLES];
        inserted += st.inserted[VEM_PGROWS_SAMPLES];
    }
    double replay_s = vem_bench_now() - a;
    if (inserted != total || dups != total) {
        fprintf(stderr, "bench-pg: %llu samples, %llu inserted, %llu duplicates on replay\n",
                (unsigned long long)total, (unsigned long long)inserted, (unsigned long long)dups);
        return 1;
    }

    /* the old layout: the same samples, one row each */
    vem_pgrows_buf_t *old;
    size_t nold = s_old_rows(admin, run, batch_samples, &old);
    double rows_s = 0;
    uint64_t rows_wal = 0;
    s_wal(admin, &lsn);
    for (size_t i = 0; i < nold; i++) {
        a = vem_bench_now();
        if (vem_pgwriter_copy_plain(w, "COPY bench_rows FROM STDIN (FORMAT binary)", &old[i], err,
                                    sizeof err) != VEM_PGW_OK)
            vem_bench_die("row COPY", err);
        rows_s += vem_bench_now() - a;
        rows_wal += s_wal(admin, &lsn);
        vem_pgrows_buf_free(&old[i]);
    }
    free(old);
    double rows_stored = s_value(admin, "SELECT count(*) FROM bench_rows");
    if (rows_stored != (double)total) {
        fprintf(stderr, "bench-pg: %llu samples, %.0f old-layout rows\n", (unsigned long long)total,
                rows_stored);
        return 1;
    }
    double frames_bytes = s_value(admin, "SELECT sum(pg_total_relation_size(relid)) "
                                         "FROM pg_partition_tree('bench_plain_frames')");

    /* as many samples again, of other vehicles, through `connections` writers at once */
    size_t nb2;
    uint64_t total2, stored2;
    vem_pgbatch_t *batches2 = s_batches(run + 1, t0, frames, batch_samples, &nb2, &total2);
    double par_s = s_parallel(conninfo, batches2, nb2, connections, &stored2);
    for (size_t i = 0; i < nb2; i++)
        vem_pgbatch_free(&batches2[i]);
    free(batches2);
    if (stored2 != total2) {
        fprintf(stderr, "bench-pg: %llu samples, %llu stored by %u writers\n",
                (unsigned long long)total2, (unsigned long long)stored2, connections);
        return 1;
    }
    double rows_bytes = s_value(admin, "SELECT sum(pg_total_relation_size(relid)) "
                                       "FROM pg_partition_tree('bench_rows')");

    vem_bench_exec(admin, "DELETE FROM partitioned_tables "
                          "WHERE table_name IN ('bench_plain_frames', 'bench_rows')");
    vem_bench_exec(admin, "DROP TABLE bench_plain_frames, bench_rows");
    PQfinish(admin);
    vem_pgwriter_destroy(&w);
    for (size_t i = 0; i < nb; i++)
        vem_pgbatch_free(&batches[i]);
    free(batches);

    double n = (double)total, sink_sps = n / sink_s, copy_sps = n / copy_s;
    printf("frames: %.0f samples/s through the sink, %.0f plain COPY, %.0f replay; "
           "%.1f MB and %.1f B of WAL per sample stored (sink)\n",
           sink_sps, copy_sps, n / replay_s, frames_bytes / n, (double)sink_wal / n);
    printf("rows (before): %.0f samples/s plain COPY; %.1f MB per million samples, %.1f B of "
           "WAL per sample\n",
           n / rows_s, rows_bytes / n, (double)rows_wal / n);
    printf("frames through %u sink writers at once: %.0f samples/s (wall clock)\n", connections,
           (double)total2 / par_s);
    printf("samples=%llu batch_samples=%ld sink_samples_per_s=%.0f copy_samples_per_s=%.0f "
           "replay_samples_per_s=%.0f rows_samples_per_s=%.0f frames_mb_per_m=%.1f "
           "rows_mb_per_m=%.1f sink_wal_b_per_sample=%.1f copy_wal_b_per_sample=%.1f "
           "rows_wal_b_per_sample=%.1f connections=%u parallel_samples_per_s=%.0f ratio=%.3f\n",
           (unsigned long long)total, batch_samples, sink_sps, copy_sps, n / replay_s, n / rows_s,
           frames_bytes / n, rows_bytes / n, (double)sink_wal / n, (double)copy_wal / n,
           (double)rows_wal / n, connections, (double)total2 / par_s, sink_sps / copy_sps);
    return 0;
}
