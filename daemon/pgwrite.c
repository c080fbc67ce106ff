/* pgwrite — idempotent batch writes over one libpq connection; see pgwrite.h. */
#include "pgwrite.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct vem_pgwriter {
    char *conninfo;
    PGconn *conn;
    int32_t *days; /* days whose partitions exist (this connection) */
    size_t ndays, days_cap;
    bool staged; /* staging tables created on this connection */
    char stage_copy[VEM_PG_TABLES][1024];
    char stage_insert[VEM_PG_TABLES][160];
};

/* Binary COPY file header (signature, flags, header extension length) and trailer. */
static const uint8_t s_copy_header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF, '\r', '\n', 0};
static const uint8_t s_copy_trailer[2] = {0xFF, 0xFF};

/* ---- batches -----------------------------------------------------------------------------------
 */

static bool s_has_day(const int32_t *days, size_t n, int32_t day)
{
    for (size_t i = 0; i < n; i++)
        if (days[i] == day)
            return true;
    return false;
}

static void s_push_day(int32_t **days, size_t *n, size_t *cap, int32_t day)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        int32_t *d = realloc(*days, c * sizeof *d);
        if (!d)
            abort();
        *days = d;
        *cap = c;
    }
    (*days)[(*n)++] = day;
}

void vem_pgbatch_add_days(vem_pgbatch_t *b, const uint8_t *days, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int32_t day;
        memcpy(&day, days + i * sizeof day, sizeof day);
        if (!s_has_day(b->days, b->ndays, day))
            s_push_day(&b->days, &b->ndays, &b->days_cap, day);
    }
}

uint64_t vem_pgbatch_rows(const vem_pgbatch_t *b)
{
    uint64_t n = 0;
    for (unsigned t = 0; t < VEM_PG_TABLES; t++)
        n += b->nrows[t];
    return n;
}

void vem_pgbatch_reset(vem_pgbatch_t *b)
{
    for (unsigned t = 0; t < VEM_PG_TABLES; t++) {
        b->rows[t].len = 0;
        b->nrows[t] = 0;
    }
    b->ndays = 0;
}

void vem_pgbatch_free(vem_pgbatch_t *b)
{
    for (unsigned t = 0; t < VEM_PG_TABLES; t++)
        vem_buf_free(&b->rows[t]);
    free(b->days);
    *b = (vem_pgbatch_t){0};
}

/* ---- connection ---------------------------------------------------------------------------------
 */

vem_pgwriter_t *vem_pgwriter_new(const char *conninfo)
{
    vem_pgwriter_t *self = calloc(1, sizeof *self);
    if (!self || !(self->conninfo = strdup(conninfo)))
        abort();
    for (unsigned t = 0; t < VEM_PG_TABLES; t++) {
        const char *name = vem_pg_table_name(t), *copy = vem_pg_copy_sql(t);
        /* "COPY obd_samples (cols) ..." -> "COPY vem_stage_obd_samples (cols) ..." */
        snprintf(self->stage_copy[t], sizeof self->stage_copy[t], "COPY vem_stage_%s%s", name,
                 copy + strlen("COPY ") + strlen(name));
        snprintf(self->stage_insert[t], sizeof self->stage_insert[t],
                 "INSERT INTO %s SELECT * FROM vem_stage_%s ON CONFLICT DO NOTHING", name, name);
    }
    return self;
}

void vem_pgwriter_destroy(vem_pgwriter_t **self_p)
{
    vem_pgwriter_t *self = *self_p;
    if (!self)
        return;
    vem_pgwriter_disconnect(self);
    free(self->days);
    free(self->conninfo);
    free(self);
    *self_p = NULL;
}

void vem_pgwriter_disconnect(vem_pgwriter_t *self)
{
    if (self->conn)
        PQfinish(self->conn);
    self->conn = NULL;
    self->ndays = 0;
    self->staged = false;
}

bool vem_pgwriter_connected(const vem_pgwriter_t *self)
{
    return self->conn && PQstatus(self->conn) == CONNECTION_OK;
}

void *vem_pgwriter_conn(vem_pgwriter_t *self)
{
    return vem_pgwriter_connected(self) ? self->conn : NULL;
}

static void s_err(char *err, size_t errlen, const char *what, const char *msg)
{
    snprintf(err, errlen, "%s: %.*s", what, (int)strcspn(msg, "\n"), msg);
}

/* Classifies a failed result (or a NULL one: the connection went away). */
static vem_pgw_result_t s_classify(vem_pgwriter_t *self, PGresult *res)
{
    if (PQstatus(self->conn) != CONNECTION_OK)
        return VEM_PGW_RETRY;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return VEM_PGW_RETRY;
    /* 08 connection, 40 serialization/deadlock, 53 resources, 57 operator intervention, 58
     * system error; 23514 a partition dropped under us (re-created on retry) */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "40", 2) == 0 ||
        strncmp(state, "53", 2) == 0 || strncmp(state, "57", 2) == 0 ||
        strncmp(state, "58", 2) == 0 || strcmp(state, "23514") == 0) {
        self->ndays = 0;
        return VEM_PGW_RETRY;
    }
    return VEM_PGW_FAILED;
}

/* Runs a fixed statement that returns no rows. */
static vem_pgw_result_t s_exec(vem_pgwriter_t *self, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(self->conn, sql);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        return VEM_PGW_OK;
    }
    vem_pgw_result_t r = s_classify(self, res);
    s_err(err, errlen, sql, PQerrorMessage(self->conn));
    PQclear(res);
    return r;
}

/* Creates the partitions of days first..last; adds the count to *created. */
static vem_pgw_result_t s_ensure(vem_pgwriter_t *self, int32_t first, int32_t last,
                                 unsigned *created, char *err, size_t errlen)
{
    char a[16], b[16];
    snprintf(a, sizeof a, "%d", (int)first);
    snprintf(b, sizeof b, "%d", (int)last);
    const char *params[2] = {a, b};
    PGresult *res = PQexecParams(self->conn,
                                 "SELECT vem_ensure_partitions(DATE '1970-01-01' + $1::int, "
                                 "DATE '1970-01-01' + $2::int)",
                                 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        vem_pgw_result_t r = s_classify(self, res);
        s_err(err, errlen, "creating daily partitions", PQerrorMessage(self->conn));
        PQclear(res);
        return r;
    }
    if (created && PQntuples(res) == 1)
        *created += (unsigned)atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    for (int32_t d = first; d <= last; d++)
        if (!s_has_day(self->days, self->ndays, d))
            s_push_day(&self->days, &self->ndays, &self->days_cap, d);
    return VEM_PGW_OK;
}

int vem_pgwriter_connect(vem_pgwriter_t *self, int ahead_days, char *err, size_t errlen)
{
    vem_pgwriter_disconnect(self);
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *values[] = {self->conninfo, "vemd", "10", NULL};
    self->conn = PQconnectdbParams(keys, values, 1);
    if (PQstatus(self->conn) != CONNECTION_OK) {
        s_err(err, errlen, "connecting to PostgreSQL", PQerrorMessage(self->conn));
        vem_pgwriter_disconnect(self);
        return -1;
    }
    int32_t today = vem_pg_beijing_day((int64_t)time(NULL));
    if (s_ensure(self, today - 1, today + ahead_days, NULL, err, errlen) != VEM_PGW_OK) {
        vem_pgwriter_disconnect(self);
        return -1;
    }
    return 0;
}

/* ---- writing ------------------------------------------------------------------------------------
 */

static vem_pgw_result_t s_stage_tables(vem_pgwriter_t *self, char *err, size_t errlen)
{
    if (self->staged)
        return VEM_PGW_OK;
    static const char *const create[VEM_PG_TABLES] = {
        "CREATE TEMP TABLE IF NOT EXISTS vem_stage_obd_samples (LIKE obd_samples) "
        "ON COMMIT DELETE ROWS",
        "CREATE TEMP TABLE IF NOT EXISTS vem_stage_obd_info (LIKE obd_info) ON COMMIT DELETE ROWS",
        "CREATE TEMP TABLE IF NOT EXISTS vem_stage_terminal_events (LIKE terminal_events) "
        "ON COMMIT DELETE ROWS",
        "CREATE TEMP TABLE IF NOT EXISTS vem_stage_quarantine (LIKE quarantine) "
        "ON COMMIT DELETE ROWS",
    };
    for (unsigned t = 0; t < VEM_PG_TABLES; t++) {
        vem_pgw_result_t r = s_exec(self, create[t], err, errlen);
        if (r != VEM_PGW_OK)
            return r;
    }
    self->staged = true;
    return VEM_PGW_OK;
}

/* COPY of rows with the given statement; *count gets the rows the server took. On failure the
 * result is kept in *fail (caller clears it) so the SQLSTATE can be read. */
static vem_pgw_result_t s_copy(vem_pgwriter_t *self, const char *sql, const vem_buf_t *rows,
                               uint64_t *count, PGresult **fail, char *err, size_t errlen)
{
    *fail = NULL;
    PGresult *res = PQexec(self->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        vem_pgw_result_t r = s_classify(self, res);
        s_err(err, errlen, "COPY", PQerrorMessage(self->conn));
        *fail = res;
        return r;
    }
    PQclear(res);
    bool sent = PQputCopyData(self->conn, (const char *)s_copy_header, sizeof s_copy_header) == 1;
    /* libpq copies what we give it into its output buffer: hand it bounded pieces */
    for (size_t off = 0; sent && off < rows->len; off += 1 << 20) {
        size_t n = rows->len - off < (1 << 20) ? rows->len - off : (size_t)1 << 20;
        sent = PQputCopyData(self->conn, (const char *)rows->data + off, (int)n) == 1;
    }
    sent = sent && PQputCopyData(self->conn, (const char *)s_copy_trailer, 2) == 1;
    if (PQputCopyEnd(self->conn, sent ? NULL : "client could not send the rows") != 1)
        sent = false;
    res = PQgetResult(self->conn);
    vem_pgw_result_t r = VEM_PGW_OK;
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        *count = strtoull(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    } else {
        r = sent ? s_classify(self, res) : VEM_PGW_RETRY;
        s_err(err, errlen, "COPY", PQerrorMessage(self->conn));
        *fail = res;
    }
    /* a COPY leaves exactly one result; drain in case of a protocol surprise */
    while ((res = PQgetResult(self->conn)) != NULL)
        PQclear(res);
    return r;
}

static bool s_unique_violation(const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return state && strcmp(state, "23505") == 0;
}

/* One table's rows: direct COPY, or through the staging table when some rows exist. */
static vem_pgw_result_t s_write_table(vem_pgwriter_t *self, unsigned t, const vem_pgbatch_t *b,
                                      vem_pgw_stats_t *st, char *err, size_t errlen)
{
    vem_pgw_result_t r = s_exec(self, "SAVEPOINT vem_table", err, errlen);
    if (r != VEM_PGW_OK)
        return r;
    uint64_t n = 0;
    PGresult *fail;
    r = s_copy(self, vem_pg_copy_sql(t), &b->rows[t], &n, &fail, err, errlen);
    bool duplicate = r == VEM_PGW_FAILED && s_unique_violation(fail);
    PQclear(fail);
    if (r == VEM_PGW_OK) {
        st->inserted[t] += n;
        return s_exec(self, "RELEASE SAVEPOINT vem_table", err, errlen);
    }
    if (!duplicate)
        return r;
    if ((r = s_exec(self, "ROLLBACK TO SAVEPOINT vem_table", err, errlen)) != VEM_PGW_OK ||
        (r = s_stage_tables(self, err, errlen)) != VEM_PGW_OK)
        return r;
    r = s_copy(self, self->stage_copy[t], &b->rows[t], &n, &fail, err, errlen);
    PQclear(fail);
    if (r != VEM_PGW_OK)
        return r;
    PGresult *res = PQexec(self->conn, self->stage_insert[t]);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        r = s_classify(self, res);
        s_err(err, errlen, "INSERT from staging", PQerrorMessage(self->conn));
        PQclear(res);
        return r;
    }
    uint64_t inserted = strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    st->inserted[t] += inserted;
    st->duplicates[t] += n - inserted;
    /* the staging rows go at commit (ON COMMIT DELETE ROWS); empty it now for the next table
     * of the same name in this transaction, which cannot happen, and for clarity of size */
    return s_exec(self, "RELEASE SAVEPOINT vem_table", err, errlen);
}

vem_pgw_result_t vem_pgwriter_write(vem_pgwriter_t *self, const vem_pgbatch_t *b,
                                    vem_pgw_stats_t *stats, char *err, size_t errlen)
{
    vem_pgw_stats_t local;
    vem_pgw_stats_t *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    if (!vem_pgwriter_connected(self)) {
        snprintf(err, errlen, "not connected");
        return VEM_PGW_RETRY;
    }
    vem_pgw_result_t r;
    for (size_t i = 0; i < b->ndays; i++) {
        if (s_has_day(self->days, self->ndays, b->days[i]))
            continue;
        if ((r = s_ensure(self, b->days[i], b->days[i], &st->partitions_created, err, errlen)) !=
            VEM_PGW_OK)
            return r;
    }
    if ((r = s_exec(self, "BEGIN", err, errlen)) != VEM_PGW_OK)
        return r;
    for (unsigned t = 0; t < VEM_PG_TABLES; t++) {
        if (b->nrows[t] == 0)
            continue;
        if ((r = s_write_table(self, t, b, st, err, errlen)) != VEM_PGW_OK) {
            char ignore[8];
            if (vem_pgwriter_connected(self))
                s_exec(self, "ROLLBACK", ignore, sizeof ignore);
            return r;
        }
    }
    return s_exec(self, "COMMIT", err, errlen);
}

vem_pgw_result_t vem_pgwriter_copy_plain(vem_pgwriter_t *self, const char *copy_sql,
                                         const vem_buf_t *rows, char *err, size_t errlen)
{
    vem_pgw_result_t r = s_exec(self, "BEGIN", err, errlen);
    if (r != VEM_PGW_OK)
        return r;
    uint64_t n;
    PGresult *fail;
    r = s_copy(self, copy_sql, rows, &n, &fail, err, errlen);
    PQclear(fail);
    if (r != VEM_PGW_OK) {
        char ignore[8];
        if (vem_pgwriter_connected(self))
            s_exec(self, "ROLLBACK", ignore, sizeof ignore);
        return r;
    }
    return s_exec(self, "COMMIT", err, errlen);
}
