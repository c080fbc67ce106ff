/* rsdhist — loading the roadside history from PostgreSQL; see rsdhist.h.
 *
 * Thread: a detached loader thread per load; it owns its connection and the result until it
 * writes the pointer to the pipe. */
#include "rsdhist.h"

#include "log.h"
#include "pgload.h"

#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

vem_rsdhist_t *vem_rsdhist_new(size_t cap)
{
    vem_rsdhist_t *h = calloc(1, sizeof *h);
    if (!h || !(h->r = calloc(cap ? cap : 1, sizeof *h->r)) ||
        !(h->vin = calloc(cap ? cap : 1, sizeof *h->vin)))
        abort();
    return h;
}

void vem_rsdhist_free(vem_rsdhist_t *h)
{
    if (!h)
        return;
    free(h->r);
    free(h->vin);
    free(h);
}

/* Per plate, colour and pollutant, the newest $2 valid readings that report it ($1: cycle months;
 * one more month covers readings that arrive late); $3 rows at most; FILTER narrows it. The range
 * on time reads only the partitions of those months; rsd_readings_plate (0004) serves the
 * ordering, and the plate of a load of one. The start's load takes a day more than the months:
 * the cycle counts Beijing dates (rules_rsd.c), so a verdict at t rests on readings back to the
 * start of the day t - $1 months falls on, up to a day before that instant; without it the
 * month for late readings would be a day short. */
#define S_QUERY(SINCE, FILTER)                                                                     \
    "SELECT station_id, reading_id, (extract(epoch FROM time) * 1000000)::bigint, plate, "         \
    "       coalesce(plate_color, ''), coalesce(fuel, ''), speed_kmh, accel_ms2, vsp_kw_t, "       \
    "       wind_ms, slope_pct, opacity_pct, ringelmann, no_ppm, co_pct, hc_ppm, "                 \
    "       coalesce(vin, ''), (extract(epoch FROM received_at) * 1000000)::bigint "               \
    "FROM (SELECT *, "                                                                             \
    "      row_number() OVER (PARTITION BY plate, plate_color, no_ppm IS NULL ORDER BY time "      \
    "DESC) "                                                                                       \
    "AS r_no, "                                                                                    \
    "      row_number() OVER (PARTITION BY plate, plate_color, opacity_pct IS NULL ORDER BY time " \
    "DESC) AS r_op, "                                                                              \
    "      row_number() OVER (PARTITION BY plate, plate_color, ringelmann IS NULL ORDER BY time "  \
    "DESC) AS r_ri, "                                                                              \
    "      row_number() OVER (PARTITION BY plate, plate_color, co_pct IS NULL ORDER BY time "      \
    "DESC) "                                                                                       \
    "AS r_co, "                                                                                    \
    "      row_number() OVER (PARTITION BY plate, plate_color, hc_ppm IS NULL ORDER BY time "      \
    "DESC) "                                                                                       \
    "AS r_hc "                                                                                     \
    "      FROM rsd_readings "                                                                     \
    "      WHERE time >= " SINCE " AND valid "                                                     \
    "        AND plate IS NOT NULL AND plate <> '' AND octet_length(plate) < 16 " FILTER ") s "    \
    "WHERE (no_ppm IS NOT NULL AND r_no <= $2) OR (opacity_pct IS NOT NULL AND r_op <= $2) "       \
    "   OR (ringelmann IS NOT NULL AND r_ri <= $2) OR (co_pct IS NOT NULL AND r_co <= $2) "        \
    "   OR (hc_ppm IS NOT NULL AND r_hc <= $2) "                                                   \
    "ORDER BY plate, plate_color, time, station_id, reading_id LIMIT $3"

static const char s_query[] =
    S_QUERY("now() - make_interval(months => $1::int + 1, days => 1)", "");

/* An ask's readings: in [$1, $5) by time and receipt (timestamptz constants, so the planner
 * keeps to those days' partitions), of VIN $4 or, for a registered one, of its plate $6 in
 * colour $7 (or none too when $8), which ingest routes to it whatever VIN the station read ... */
static const char s_query_vin[] =
    S_QUERY("$1::timestamptz", "AND received_at < $5::timestamptz AND (vin = $4 OR (plate = $6 "
                               "AND (coalesce(plate_color, '') = $7 OR ($8::boolean AND "
                               "coalesce(plate_color, '') = ''))))");

/* ... or of plate $4 in colour $6 stored without a VIN (ingest routes those by plate) */
static const char s_query_plate[] =
    S_QUERY("$1::timestamptz", "AND received_at < $5::timestamptz AND plate = $4 AND "
                               "coalesce(plate_color, '') = $6 AND vin IS NULL");

static double s_real(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NAN : strtod(PQgetvalue(res, row, col), NULL);
}

static void s_text(char *out, size_t len, const PGresult *res, int row, int col)
{
    snprintf(out, len, "%s", PQgetvalue(res, row, col));
}

/* "YYYY-MM-DD HH:MM:SS.ffffff+00" of epoch microseconds. */
static void s_utc(int64_t us, char out[80])
{
    time_t t = (time_t)(us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000));
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 80, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)(us - (int64_t)t * 1000000));
}

/* The query's rows: every plate's, or an ask's; NULL with the reason in err after an error. */
static vem_rsdhist_t *s_rows(PGconn *conn, unsigned months, size_t max_rows,
                             const vem_rsdhist_ask_t *ask, char *err, size_t errlen)
{
    char p1[80], p2[16], p3[32], p5[80];
    if (ask)
        s_utc(ask->since_us, p1);
    else
        snprintf(p1, sizeof p1, "%u", months);
    snprintf(p2, sizeof p2, "%d", VEM_RSDHIST_PER_POLLUTANT);
    snprintf(p3, sizeof p3, "%zu", max_rows + 1); /* one more tells that some were left out */
    s_utc(ask ? ask->before_us : 0, p5);
    const char *query = s_query;
    int n = 3;
    const char *params[8] = {p1, p2, p3};
    if (ask && *ask->vin) {
        query = s_query_vin;
        n = 8;
        params[3] = ask->vin;
        params[4] = p5;
        params[5] = ask->plate; /* "" for an unregistered VIN: no plate matches it */
        params[6] = ask->color;
        params[7] = ask->or_blank ? "true" : "false";
    } else if (ask) {
        query = s_query_plate;
        n = 6;
        params[3] = ask->plate;
        params[4] = p5;
        params[5] = ask->color;
    }
    PGresult *res = PQexecParams(conn, query, n, NULL, params, NULL, NULL, 0);
    vem_rsdhist_t *out = NULL;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        vem_pgload_error(conn, err, errlen);
        goto done;
    }
    size_t rows = (size_t)PQntuples(res);
    bool truncated = rows > max_rows;
    if (truncated) { /* leave out the last plate, which may be cut short, and all after it */
        rows = max_rows;
        while (rows > 0 &&
               strcmp(PQgetvalue(res, (int)rows - 1, 3), PQgetvalue(res, (int)max_rows, 3)) == 0)
            rows--;
    }
    out = vem_rsdhist_new(rows);
    out->truncated = truncated;
    for (size_t i = 0; i < rows; i++) {
        int row = (int)i;
        vem_rsd_reading_t *r = &out->r[out->n];
        vem_rules_reading_init(r);
        s_text(r->station_id, sizeof r->station_id, res, row, 0);
        s_text(r->reading_id, sizeof r->reading_id, res, row, 1);
        r->time_us = strtoll(PQgetvalue(res, row, 2), NULL, 10);
        s_text(r->plate, sizeof r->plate, res, row, 3);
        s_text(r->plate_color, sizeof r->plate_color, res, row, 4);
        r->fuel = vem_rules_fuel(PQgetvalue(res, row, 5));
        r->speed_kmh = s_real(res, row, 6);
        r->accel_ms2 = s_real(res, row, 7);
        r->vsp_kw_t = s_real(res, row, 8);
        r->wind_ms = s_real(res, row, 9);
        r->slope_pct = s_real(res, row, 10);
        r->opacity_pct = s_real(res, row, 11);
        r->ringelmann = s_real(res, row, 12);
        r->no_ppm = s_real(res, row, 13);
        r->co_pct = s_real(res, row, 14);
        r->hc_ppm = s_real(res, row, 15);
        s_text(out->vin[out->n], sizeof out->vin[out->n], res, row, 16);
        r->received_us = strtoll(PQgetvalue(res, row, 17), NULL, 10);
        r->valid = true; /* the query takes only what the station marked valid */
        out->n++;
    }
done:
    PQclear(res);
    return out;
}

static vem_rsdhist_t *s_load(const char *conninfo, unsigned months, size_t max_rows)
{
    char err[512];
    PGconn *conn = vem_pgload_connect(conninfo, "vemd-rsdhist", err, sizeof err);
    if (!conn) {
        vem_log(VEM_LOG_ERR, "rsdhist", "cannot connect: %s", err);
        return NULL;
    }
    vem_rsdhist_t *out = s_rows(conn, months, max_rows, NULL, err, sizeof err);
    if (!out)
        vem_log(VEM_LOG_ERR, "rsdhist", "roadside history: %s", err);
    PQfinish(conn);
    return out;
}

/* Rows an ask takes at most: far more than its chains hold (64 per pollutant of each plate and
 * colour a VIN's readings name), so none is left out, yet a bound. */
#define S_ASK_MAX_ROWS 100000

vem_rsdhist_t *vem_rsdhist_load_plate(PGconn *conn, unsigned cycle_months,
                                      const vem_rsdhist_ask_t *ask, char *err, size_t errlen)
{
    return s_rows(conn, cycle_months, S_ASK_MAX_ROWS, ask, err, errlen);
}

typedef struct {
    unsigned months;
    size_t max_rows;
} s_job_t;

static void *s_run(const char *conninfo, void *arg)
{
    const s_job_t *job = arg;
    return s_load(conninfo, job->months, job->max_rows);
}

static void s_drop(void *h)
{
    vem_rsdhist_free(h);
}

int vem_rsdhist_start(const char *conninfo, unsigned cycle_months, size_t max_rows, int fd)
{
    s_job_t *job = malloc(sizeof *job);
    if (!job)
        abort();
    job->months = cycle_months;
    job->max_rows = max_rows;
    return vem_pgload_start(conninfo, s_run, job, s_drop, fd);
}
