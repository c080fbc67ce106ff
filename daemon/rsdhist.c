/* rsdhist — loading the roadside history from PostgreSQL; see rsdhist.h.
 *
 * Thread: a detached loader thread per load; it owns its connection and the result until it
 * writes the pointer to the pipe. */
#include "rsdhist.h"

#include "log.h"
#include "pgload.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

vem_rsdhist_t *vem_rsdhist_new(size_t cap, bool with_vin)
{
    vem_rsdhist_t *h = calloc(1, sizeof *h);
    if (!h || !(h->r = calloc(cap ? cap : 1, sizeof *h->r)) ||
        (with_vin && !(h->vin = calloc(cap ? cap : 1, sizeof *h->vin))))
        abort();
    return h;
}

void vem_rsdhist_free(vem_rsdhist_t *h)
{
    if (!h)
        return;
    free(h->r);
    free(h->received);
    free(h->vin);
    free(h);
}

/* Per plate, colour and pollutant, the newest $2 valid readings that report it ($1: cycle months;
 * one more month covers readings that arrive late); $3 rows at most; FILTER limits the plates.
 * The range on time reads only the partitions of those months; rsd_readings_plate (0004) serves
 * the ordering and the plates asked for. */
#define S_QUERY(FILTER)                                                                            \
    "SELECT station_id, reading_id, (extract(epoch FROM time) * 1000000)::bigint, plate, "         \
    "       coalesce(plate_color, ''), coalesce(fuel, ''), speed_kmh, accel_ms2, vsp_kw_t, "       \
    "       wind_ms, slope_pct, opacity_pct, ringelmann, no_ppm, co_pct, hc_ppm, "                 \
    "       (extract(epoch FROM received_at) * 1000000)::bigint "                                  \
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
    "      WHERE time >= now() - make_interval(months => $1::int + 1) AND valid "                  \
    "        AND plate IS NOT NULL AND plate <> '' AND octet_length(plate) < 16 " FILTER ") s "    \
    "WHERE (no_ppm IS NOT NULL AND r_no <= $2) OR (opacity_pct IS NOT NULL AND r_op <= $2) "       \
    "   OR (ringelmann IS NOT NULL AND r_ri <= $2) OR (co_pct IS NOT NULL AND r_co <= $2) "        \
    "   OR (hc_ppm IS NOT NULL AND r_hc <= $2) "                                                   \
    "ORDER BY plate, plate_color, time, station_id, reading_id LIMIT $3"

static const char s_query[] = S_QUERY("");

/* $4: the asks, a JSON array of [plate, colour, or blank, received before (epoch us)] */
static const char s_query_asks[] = S_QUERY(
    "AND EXISTS (SELECT 1 FROM jsonb_array_elements($4::jsonb) p WHERE p->>0 = plate "
    "AND (coalesce(plate_color, '') = p->>1 OR ((p->>2)::boolean AND coalesce(plate_color, '') "
    "= '')) AND received_at < timestamptz 'epoch' + (p->>3)::bigint * interval '1 microsecond')");

static double s_real(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NAN : strtod(PQgetvalue(res, row, col), NULL);
}

static void s_text(char *out, size_t len, const PGresult *res, int row, int col)
{
    snprintf(out, len, "%s", PQgetvalue(res, row, col));
}

static vem_rsdhist_t *s_load(const char *conninfo, unsigned months, size_t max_rows,
                             const char *asks)
{
    char err[512];
    PGconn *conn = vem_pgload_connect(conninfo, "vemd-rsdhist", err, sizeof err);
    if (!conn) {
        vem_log(VEM_LOG_ERR, "rsdhist", "cannot connect: %s", err);
        return NULL;
    }
    char p1[16], p2[16], p3[32];
    snprintf(p1, sizeof p1, "%u", months);
    snprintf(p2, sizeof p2, "%d", VEM_RSDHIST_PER_POLLUTANT);
    snprintf(p3, sizeof p3, "%zu", max_rows + 1); /* one more tells that some were left out */
    const char *params[] = {p1, p2, p3, asks};
    PGresult *res = PQexecParams(conn, asks ? s_query_asks : s_query, asks ? 4 : 3, NULL, params,
                                 NULL, NULL, 0);
    vem_rsdhist_t *out = NULL;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        vem_log(VEM_LOG_ERR, "rsdhist", "roadside history: %s", PQerrorMessage(conn));
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
    out = vem_rsdhist_new(rows, false);
    out->truncated = truncated;
    if (asks && !(out->received = calloc(rows ? rows : 1, sizeof *out->received)))
        abort();
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
        r->valid = true; /* the query takes only what the station marked valid */
        if (out->received)
            out->received[i] = strtoll(PQgetvalue(res, row, 16), NULL, 10);
        out->n++;
    }
done:
    PQclear(res);
    PQfinish(conn);
    return out;
}

typedef struct {
    unsigned months;
    size_t max_rows;
    char *asks; /* JSON (s_query_asks); NULL: every plate */
    size_t nasks;
    uint64_t gen;
} s_job_t;

static void *s_run(const char *conninfo, void *arg)
{
    s_job_t *job = arg;
    vem_rsdhist_t *h = s_load(conninfo, job->months, job->max_rows, job->asks);
    free(job->asks);
    if (h) {
        h->plates = job->nasks;
        h->gen = job->gen;
    }
    return h;
}

static void s_drop(void *h)
{
    vem_rsdhist_free(h);
}

static int s_start(const char *conninfo, unsigned cycle_months, size_t max_rows, char *asks,
                   size_t n, uint64_t gen, int fd)
{
    s_job_t *job = malloc(sizeof *job);
    if (!job)
        abort();
    job->months = cycle_months;
    job->max_rows = max_rows;
    job->asks = asks;
    job->nasks = n;
    job->gen = gen;
    int rc = vem_pgload_start(conninfo, s_run, job, s_drop, fd);
    if (rc != 0)
        free(asks); /* the job went with the thread that did not start */
    return rc;
}

int vem_rsdhist_start(const char *conninfo, unsigned cycle_months, size_t max_rows, int fd)
{
    return s_start(conninfo, cycle_months, max_rows, NULL, 0, 0, fd);
}

int vem_rsdhist_start_asks(const char *conninfo, unsigned cycle_months, size_t max_rows,
                           const vem_rsdhist_ask_t *asks, size_t n, uint64_t gen, int fd)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        char before[24];
        snprintf(before, sizeof before, "%lld", (long long)asks[i].before_us);
        json_array_append_new(
            a, json_pack("[ssbs]", asks[i].plate, asks[i].color, asks[i].or_blank, before));
    }
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (!text)
        abort();
    return s_start(conninfo, cycle_months, max_rows, text, n, gen, fd);
}

bool vem_rsdhist_takes(const vem_rsdhist_ask_t *ask, const vem_rsdhist_t *h, size_t k)
{
    const vem_rsd_reading_t *r = &h->r[k];
    return strcmp(r->plate, ask->plate) == 0 &&
           (strcmp(r->plate_color, ask->color) == 0 || (ask->or_blank && !*r->plate_color)) &&
           h->received && h->received[k] < ask->before_us;
}

/* ---- asks --------------------------------------------------------------------------------- */

struct vem_rsdhist_wants {
    pthread_mutex_t lock;
    size_t n, cap;
    uint64_t taken; /* loads taken so far */
    vem_rsdhist_ask_t *a;
};

vem_rsdhist_wants_t *vem_rsdhist_wants_new(size_t cap)
{
    vem_rsdhist_wants_t *w = calloc(1, sizeof *w);
    if (!w || !(w->a = calloc(cap ? cap : 1, sizeof *w->a)))
        abort();
    pthread_mutex_init(&w->lock, NULL);
    w->cap = cap;
    return w;
}

void vem_rsdhist_wants_free(vem_rsdhist_wants_t *w)
{
    if (!w)
        return;
    pthread_mutex_destroy(&w->lock);
    free(w->a);
    free(w);
}

static bool s_same_state(const vem_rsdhist_ask_t *a, const vem_rsdhist_ask_t *b)
{
    return a->worker == b->worker && strcmp(a->vin, b->vin) == 0 &&
           strcmp(a->plate, b->plate) == 0 && strcmp(a->color, b->color) == 0 &&
           a->or_blank == b->or_blank;
}

bool vem_rsdhist_want(vem_rsdhist_wants_t *w, const vem_rsdhist_ask_t *ask, uint64_t *gen)
{
    pthread_mutex_lock(&w->lock);
    bool ok = true;
    size_t i = 0;
    while (i < w->n && !s_same_state(&w->a[i], ask))
        i++;
    if (i < w->n) {
        if (ask->before_us > w->a[i].before_us)
            w->a[i].before_us = ask->before_us;
    } else if (w->n < w->cap) {
        w->a[w->n++] = *ask;
    } else {
        ok = false;
    }
    *gen = w->taken + 1;
    pthread_mutex_unlock(&w->lock);
    return ok;
}

static int s_by_plate(const void *a, const void *b)
{
    return strcmp(((const vem_rsdhist_ask_t *)a)->plate, ((const vem_rsdhist_ask_t *)b)->plate);
}

vem_rsdhist_ask_t *vem_rsdhist_wants_take(vem_rsdhist_wants_t *w, size_t *n, uint64_t *gen)
{
    pthread_mutex_lock(&w->lock);
    *n = w->n;
    vem_rsdhist_ask_t *out = NULL;
    if (w->n) {
        out = malloc(w->n * sizeof *out);
        if (!out)
            abort();
        memcpy(out, w->a, w->n * sizeof *out);
        w->n = 0;
        w->taken++;
    }
    *gen = w->taken;
    pthread_mutex_unlock(&w->lock);
    if (out)
        qsort(out, *n, sizeof *out, s_by_plate);
    return out;
}
