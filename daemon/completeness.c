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

static vem_day_counts_t *s_load(const char *conninfo, int32_t day)
{
    char err[512];
    PGconn *conn = vem_pgload_connect(conninfo, "vemd-completeness", err, sizeof err);
    if (!conn) {
        vem_log(VEM_LOG_ERR, "completeness", "cannot connect: %s", err);
        return NULL;
    }
    char from[64], to[64];
    s_midnight(day, from);
    s_midnight(day + 1, to);
    const char *params[] = {from, to};
    /* vem_samples_between bounds the frame time too, so only the day's partitions are read */
    PGresult *res =
        PQexecParams(conn,
                     "SELECT vin, count(DISTINCT sample_time), "
                     "extract(epoch FROM max(sample_time) - min(sample_time))::bigint + 1 "
                     "FROM vem_samples_between($1::timestamptz, $2::timestamptz) "
                     "WHERE block_type IN ('stream', 'twc', 'twc_nox') GROUP BY vin",
                     2, NULL, params, NULL, NULL, 0);
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
    return s_load(conninfo, *(const int32_t *)arg);
}

static void s_drop(void *counts)
{
    vem_day_counts_free(counts);
}

int vem_completeness_start(const char *conninfo, int32_t day, int fd)
{
    int32_t *arg = malloc(sizeof *arg);
    if (!arg)
        abort();
    *arg = day;
    return vem_pgload_start(conninfo, s_run, arg, s_drop, fd);
}
