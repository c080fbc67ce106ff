/* bench-pg — rows per second through the PostgreSQL sink's write path, against the ceiling of
 * a plain COPY BINARY of the same rows into the same kind of table, measured in the same run.
 *
 *   bench-pg [--frames N] [--batch ROWS]
 *
 * Needs a server: with VEM_TEST_PG set it uses that database (migrations applied); without,
 * it runs itself again under tests/harness.sh, which starts a throw-away cluster.
 *
 * Rows are decoded real-time frames of 10 diesel stream samples each (HJ 1239 layout, one
 * vehicle per 1,000 frames, values varying per second), turned into binary COPY rows by
 * pgrows exactly as the workers do. Three figures, each over the same rows in batches of
 * --batch rows (the sink's default batch size):
 *   sink    vem_pgwriter_write into obd_samples (daily partitions, UNIQUE (vin, sample_time,
 *           block_idx)): savepoint, COPY, commit per batch, partitions ensured
 *   copy    one COPY BINARY per batch into bench_plain_samples: the same columns, the same
 *           daily partitioning and the same unique key, no savepoint: the ceiling
 *   replay  the same rows through the sink again: every row already there, so each batch takes
 *           the staging-table path and stores nothing (the cost of a replay after a crash)
 * The last line is key=value figures; ratio = sink / copy. */
#include "pgrows.h"
#include "pgwrite.h"

#include <getopt.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void s_die(const char *what, const char *msg)
{
    fprintf(stderr, "bench-pg: %s: %s\n", what, msg);
    exit(1);
}

static void s_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        s_die(sql, PQerrorMessage(conn));
    PQclear(res);
}

/* Frame i: vehicle i / 1000, 10 samples at consecutive seconds. */
static void s_frame(vem_hj1239_frame_t *f, unsigned run, unsigned i, int64_t t0)
{
    memset(f, 0, sizeof *f);
    f->cmd = VEM_HJ1239_CMD_REALTIME;
    f->layout = VEM_HJ1239_LAYOUT_BLOCK_TIME;
    f->has_time = true;
    char vin[18];
    snprintf(vin, sizeof vin, "LBENCH%02u%09u", run % 100, i / 1000);
    memcpy(f->vin, vin, 17);
    f->time = t0 + (int64_t)(i % 1000) * 10 + 9;
    f->seq = (uint16_t)(i % 1000 + 1);
    f->nblocks = 10;
    for (unsigned k = 0; k < 10; k++) {
        vem_hj1239_block_t *b = &f->blocks[k];
        b->type = VEM_HJ1239_BLOCK_STREAM;
        b->time = t0 + (int64_t)(i % 1000) * 10 + k;
        unsigned s = i * 10 + k;
        b->raw[VEM_HJ1239_F_SPEED] = 256 * (40 + s % 50);
        b->raw[VEM_HJ1239_F_BARO] = 200;
        b->raw[VEM_HJ1239_F_TORQUE] = 125 + s % 100;
        b->raw[VEM_HJ1239_F_FRICTION] = 131;
        b->raw[VEM_HJ1239_F_RPM] = 8 * (900 + s % 900);
        b->raw[VEM_HJ1239_F_FUEL_RATE] = 600 + s % 300;
        b->raw[VEM_HJ1239_F_NOX_UP] = 4000 + 7 * (s % 2000);
        b->raw[VEM_HJ1239_F_NOX_DOWN] = 4000 + s % 1500;
        b->raw[VEM_HJ1239_F_REAGENT] = 150;
        b->raw[VEM_HJ1239_F_INTAKE] = 12000 + s % 4000;
        b->raw[VEM_HJ1239_F_SCR_IN] = 32 * (273 + 250 + s % 100);
        b->raw[VEM_HJ1239_F_SCR_OUT] = 32 * (273 + 230 + s % 100);
        b->raw[VEM_HJ1239_F_DPF_DP] = 50 + s % 30;
        b->raw[VEM_HJ1239_F_COOLANT] = 40 + 85;
        b->raw[VEM_HJ1239_F_FUEL_LEVEL] = 180;
        b->raw[VEM_HJ1239_F_POS_STATUS] = 0;
        b->raw[VEM_HJ1239_F_LON] = 118796877 + s;
        b->raw[VEM_HJ1239_F_LAT] = 32060255 + s;
        b->raw[VEM_HJ1239_F_ODOMETER] = 1234567 + s;
        b->novalue = vem_hj1239_novalue(b);
    }
}

static void s_reexec_under_harness(char **argv)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0)
        s_die("readlink /proc/self/exe", "failed");
    exe[n] = '\0';
    char dir[PATH_MAX], harness[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s", exe);
    snprintf(harness, sizeof harness, "%s/../../tests/harness.sh", dirname(dir));
    char *args[16] = {harness, exe};
    int i = 2;
    for (char **a = argv + 1; *a && i < 15; a++)
        args[i++] = *a;
    args[i] = NULL;
    execv(harness, args);
    s_die(harness, "cannot run the harness");
}

int main(int argc, char **argv)
{
    unsigned frames = 50000;
    long batch_rows = 20000;
    static const struct option options[] = {{"frames", required_argument, NULL, 'f'},
                                            {"batch", required_argument, NULL, 'b'},
                                            {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "f:b:", options, NULL)) != -1) {
        if (opt == 'f')
            frames = (unsigned)strtoul(optarg, NULL, 10);
        else if (opt == 'b')
            batch_rows = strtol(optarg, NULL, 10);
        else
            return 2;
    }
    if (frames == 0 || batch_rows < 10) {
        fprintf(stderr, "usage: bench-pg [--frames N] [--batch ROWS]\n");
        return 2;
    }
    const char *conninfo = getenv("VEM_TEST_PG");
    if (!conninfo || !*conninfo)
        s_reexec_under_harness(argv);

    /* rows, in batches, as the sink would hold them */
    unsigned run = (unsigned)time(NULL);
    int64_t t0 = (int64_t)time(NULL) - 3 * 86400; /* spans a few days of partitions */
    size_t nbatches = (size_t)((uint64_t)frames * 10 / (uint64_t)batch_rows + 1);
    vem_pgbatch_t *batches = calloc(nbatches, sizeof *batches);
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t rows = {0};
    size_t nb = 0;
    uint64_t total = 0;
    for (unsigned i = 0; i < frames; i++) {
        s_frame(f, run, i, t0 + (int64_t)(i / 1000) * 3600);
        vem_pgrows_frame(&rows, f, (t0 + 10 * 86400) * 1000000);
        if (rows.nrows[VEM_PG_SAMPLES] >= (uint64_t)batch_rows || i + 1 == frames) {
            vem_pgbatch_t *b = &batches[nb++];
            vem_buf_put(&b->rows[VEM_PG_SAMPLES], rows.rows[VEM_PG_SAMPLES].data,
                        rows.rows[VEM_PG_SAMPLES].len);
            b->nrows[VEM_PG_SAMPLES] = rows.nrows[VEM_PG_SAMPLES];
            uint8_t days[VEM_PGROWS_MAX_DAYS * 4];
            memcpy(days, rows.days, rows.ndays * sizeof(int32_t));
            vem_pgbatch_add_days(b, days, rows.ndays);
            total += rows.nrows[VEM_PG_SAMPLES];
            vem_pgrows_reset(&rows);
        }
    }
    vem_pgrows_free(&rows);
    free(f);

    /* the ceiling's table: obd_samples' columns, partitioning and unique key */
    PGconn *admin = PQconnectdb(conninfo);
    if (PQstatus(admin) != CONNECTION_OK)
        s_die("connect", PQerrorMessage(admin));
    s_exec(admin, "SET client_min_messages = warning");
    s_exec(admin, "DROP TABLE IF EXISTS bench_plain_samples");
    s_exec(admin, "CREATE TABLE bench_plain_samples (LIKE obd_samples INCLUDING DEFAULTS, "
                  "UNIQUE (vin, sample_time, block_idx)) PARTITION BY RANGE (sample_time)");
    s_exec(admin, "INSERT INTO partitioned_tables VALUES ('bench_plain_samples') "
                  "ON CONFLICT DO NOTHING");

    char err[512];
    vem_pgwriter_t *w = vem_pgwriter_new(conninfo);
    if (vem_pgwriter_connect(w, 3, err, sizeof err) != 0)
        s_die("connect", err);
    /* partitions for every day, for both tables, before any clock starts */
    vem_pgw_stats_t st;
    for (size_t i = 0; i < nb; i++) {
        vem_pgbatch_t empty = {.days = batches[i].days, .ndays = batches[i].ndays};
        if (vem_pgwriter_write(w, &empty, &st, err, sizeof err) != VEM_PGW_OK)
            s_die("partitions", err);
    }
    char copy_plain[1024];
    const char *copy = vem_pg_copy_sql(VEM_PG_SAMPLES);
    snprintf(copy_plain, sizeof copy_plain, "COPY bench_plain_samples%s",
             copy + strlen("COPY obd_samples"));

    /* Interleaved batch by batch, so both tables grow alike and share the server's state. */
    double copy_s = 0, sink_s = 0;
    uint64_t inserted = 0, dups = 0;
    for (size_t i = 0; i < nb; i++) {
        double a = s_now();
        if (vem_pgwriter_copy_plain(w, copy_plain, &batches[i].rows[VEM_PG_SAMPLES], err,
                                    sizeof err) != VEM_PGW_OK)
            s_die("plain COPY", err);
        double b = s_now();
        if (vem_pgwriter_write(w, &batches[i], &st, err, sizeof err) != VEM_PGW_OK)
            s_die("sink write", err);
        sink_s += s_now() - b;
        copy_s += b - a;
        inserted += st.inserted[VEM_PG_SAMPLES];
    }

    double a = s_now();
    for (size_t i = 0; i < nb; i++) {
        if (vem_pgwriter_write(w, &batches[i], &st, err, sizeof err) != VEM_PGW_OK)
            s_die("replay write", err);
        dups += st.duplicates[VEM_PG_SAMPLES];
        inserted += st.inserted[VEM_PG_SAMPLES];
    }
    double replay_s = s_now() - a;
    if (inserted != total || dups != total) {
        fprintf(stderr, "bench-pg: %llu rows, %llu inserted, %llu duplicates on replay\n",
                (unsigned long long)total, (unsigned long long)inserted, (unsigned long long)dups);
        return 1;
    }

    s_exec(admin, "DELETE FROM partitioned_tables WHERE table_name = 'bench_plain_samples'");
    s_exec(admin, "DROP TABLE bench_plain_samples");
    PQfinish(admin);
    vem_pgwriter_destroy(&w);
    for (size_t i = 0; i < nb; i++)
        vem_pgbatch_free(&batches[i]);
    free(batches);

    double sink_rps = (double)total / sink_s, copy_rps = (double)total / copy_s;
    printf("rows=%llu batch_rows=%ld sink_rows_per_s=%.0f copy_rows_per_s=%.0f "
           "replay_rows_per_s=%.0f ratio=%.3f\n",
           (unsigned long long)total, batch_rows, sink_rps, copy_rps, (double)total / replay_s,
           sink_rps / copy_rps);
    return 0;
}
