/* completeness — loading a day's sample counts from PostgreSQL; see completeness.h. */
#include "completeness.h"

#include "hj1239.h"
#include "log.h"
#include "pgload.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_DAY_S 86400

static int64_t s_floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int32_t vem_completeness_day(int64_t us)
{
    return (int32_t)vem_hj1239_beijing_day(s_floor_div(us, 1000000));
}

int32_t vem_completeness_due(int64_t now_us, int delay_h)
{
    /* day D ends at (D + 1) x 86400 - 8 h; it is due once that is delay_h behind now */
    return vem_completeness_day(now_us - (int64_t)delay_h * 3600 * 1000000) - 1;
}

void vem_day_counts_free(vem_day_counts_t *counts)
{
    if (!counts)
        return;
    free(counts->v);
    free(counts);
}

/* "YYYY-MM-DD 00:00:00+08" of a Beijing day. */
static void s_midnight(int32_t day, char out[64])
{
    time_t t = (time_t)day * S_DAY_S; /* the same civil date in UTC */
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 64, "%04d-%02d-%02d 00:00:00+08", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* What the loader thread is given. */
typedef struct {
    int32_t day;
    int64_t gap_s;
} s_job_t;

/* Per VIN: the distinct samples of the day, and the engine-running seconds rules.md divides
 * them by. A sample is counted at its rule time (rules.c): its block time, or in a GB 17691
 * frame, whose samples all carry the frame's time (the last one's), that time minus the
 * samples after it in the frame (a frame: the rows of one time received together). Terminals
 * send nothing with the ignition off, so the running seconds are those of the day's trips:
 * runs of samples split where two follow each other by more than gap_s (rules.trip_gap_min,
 * rules.md's trip), each lasting from its first sample to its last. A gap inside a trip is
 * data the terminal owed; a parked truck owes none. A longer gap splits only where the odometer
 * shows the truck stood (known on both sides, not advanced): one that drove while its terminal
 * was silent, or whose odometer is not known, owes the gap (one that sends a sample every 11
 * minutes is not complete, with its odometer marked invalid or not). The rows keep no dialect,
 * so an HJ 1239 frame with two sample blocks of one instant counts one second more. */
static const char s_sql[] =
    "SELECT vin, sum(n), sum(span) FROM ("
    " SELECT vin, count(*) AS n, extract(epoch FROM max(t) - min(t))::bigint + 1 AS span FROM ("
    "  SELECT vin, t, sum(coalesce(brk, false)::int) OVER (PARTITION BY vin ORDER BY t) AS trip"
    "  FROM ("
    "   SELECT vin, t, t - lag(t) OVER w > $3::bigint * interval '1 s'"
    "          AND coalesce(odo <= lag(odo) OVER w, false) AS brk"
    "   FROM (SELECT DISTINCT ON (vin, t) vin, t, odo FROM ("
    "          SELECT vin, odometer_km AS odo,"
    "                 sample_time - (count(*) OVER f - row_number() OVER b) * interval '1 s' AS t"
    "            FROM vem_samples_between($1::timestamptz, $2::timestamptz)"
    "           WHERE block_type IN ('stream', 'twc', 'twc_nox')"
    "          WINDOW f AS (PARTITION BY vin, sample_time, received_at),"
    "                 b AS (f ORDER BY block_idx)) s"
    "         ORDER BY vin, t, odo) d"
    "   WINDOW w AS (PARTITION BY vin ORDER BY t)) g) k"
    " GROUP BY vin, trip) e "
    "GROUP BY vin";

static vem_day_counts_t *s_load(const char *conninfo, const s_job_t *job)
{
    int32_t day = job->day;
    char err[512];
    PGconn *conn = vem_pgload_connect(conninfo, "vemd-completeness", err, sizeof err);
    if (!conn) {
        vem_log(VEM_LOG_ERR, "completeness", "cannot connect: %s", err);
        return NULL;
    }
    char from[64], to[64];
    s_midnight(day, from);
    s_midnight(day + 1, to);
    char gap[24];
    snprintf(gap, sizeof gap, "%" PRId64, job->gap_s);
    const char *params[] = {from, to, gap};
    /* vem_samples_between bounds the frame time too, so only the day's partitions are read */
    PGresult *res = PQexecParams(conn, s_sql, 3, NULL, params, NULL, NULL, 0);
    vem_day_counts_t *out = NULL;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        vem_log(VEM_LOG_ERR, "completeness", "counts of %s: %s", from, PQerrorMessage(conn));
    } else {
        out = calloc(1, sizeof *out);
        size_t n = (size_t)PQntuples(res);
        out->v = calloc(n ? n : 1, sizeof *out->v);
        if (!out->v)
            abort();
        out->day = day;
        for (size_t i = 0; i < n; i++) {
            const char *vin = PQgetvalue(res, (int)i, 0);
            if (strlen(vin) != 17)
                continue; /* not a VIN the workers route */
            vem_day_count_t *c = &out->v[out->n++];
            memcpy(c->vin, vin, 18);
            c->received = strtoull(PQgetvalue(res, (int)i, 1), NULL, 10);
            c->running_s = strtoull(PQgetvalue(res, (int)i, 2), NULL, 10);
        }
    }
    PQclear(res);
    PQfinish(conn);
    return out;
}

static void *s_run(const char *conninfo, void *arg)
{
    return s_load(conninfo, arg);
}

static void s_drop(void *counts)
{
    vem_day_counts_free(counts);
}

int vem_completeness_start(const char *conninfo, int32_t day, int64_t gap_s, int fd)
{
    s_job_t *job = malloc(sizeof *job);
    if (!job)
        abort();
    job->day = day;
    job->gap_s = gap_s;
    return vem_pgload_start(conninfo, s_run, job, s_drop, fd);
}
