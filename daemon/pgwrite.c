/* pgwrite — idempotent batch writes over one libpq connection; see pgwrite.h.
 *
 * Design. Everything is one state machine driven by vem_pgwriter_step. Its lowest level is
 * the exchange: one statement string sent with PQsendQuery (or a COPY, whose rows are pushed
 * with PQputCopyData when the server asks for them, a bounded piece at a time and only while
 * PQflush keeps up, so libpq's buffer stays small), then results read with PQconsumeInput and
 * PQisBusy until PQgetResult says the statement is done. An exchange keeps its first error
 * (or else its first result). Above it, `phase` says what the finished exchange was, and
 * s_advance decides the next one from its result:
 *
 *   ENSURE* -> BEGIN -> per table, per range of rows: SAVEPOINT -> COPY -> RELEASE
 *                                                             \-> INSERT (via staging)
 *                    ... -> [QDAYS* -> the refused rows' quarantine rows, as a table] -> COMMIT
 *
 * A range that meets a duplicate or a refused row is undone (UNDO: rollback to and release
 * of its savepoint); after a duplicate the table goes through its staging table from then on
 * (STAGE creates the staging tables once per connection), after a refusal the range is split
 * in two (or, when it is one row, that row is quarantined). Any other failure ends the
 * transaction with ROLLBACK and reports the failure.
 *
 * Thread: the owner's. The only thing shared is the count of cancel requests under way, each
 * in a short-lived detached thread because PQcancel blocks (until the server answers). */
#include "pgwrite.h"

#include "clock.h"
#include "log.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_CHUNK       (256 * 1024)             /* bytes handed to PQputCopyData at once */
#define S_STEP_BYTES  (8 * 1024 * 1024)        /* COPY bytes one step sends before it yields */
#define S_CANCELS     4                        /* cancel requests under way, process-wide */
#define S_PG_EPOCH_US INT64_C(946684800000000) /* 2000-01-01 00:00 UTC in Unix microseconds */

typedef enum { S_OP_NONE, S_OP_CONNECT, S_OP_WRITE, S_OP_PLAIN } s_op_t;

/* What the exchange in flight is. */
typedef enum {
    S_ENSURE, /* vem_ensure_partitions before the transaction */
    S_BEGIN,
    S_SAVEPOINT, /* SAVEPOINT of a range */
    S_COPY,      /* the range into its table, or into the staging table */
    S_INSERT,    /* staging -> table ON CONFLICT DO NOTHING; TRUNCATE staging; RELEASE */
    S_RELEASE,   /* RELEASE of a range */
    S_UNDO,      /* ROLLBACK TO and RELEASE of a range */
    S_STAGE,     /* CREATE TEMP TABLE of the staging tables */
    S_QDAYS,     /* vem_ensure_partitions for the refused rows' quarantine rows */
    S_COMMIT,
    S_ROLLBACK,   /* after a failure */
    S_PLAIN_COPY, /* vem_pgwriter_copy_plain's COPY */
} s_phase_t;

/* The parts of a COPY's data, in order. */
enum { S_PART_HEAD, S_PART_ROWS, S_PART_TAIL, S_PART_END, S_PART_DONE };

typedef enum { S_X_PENDING, S_X_DONE, S_X_BROKEN } s_xstate_t;

/* How the server answered a statement. */
/* S_RLS: COPY into a table whose row-level security applies to our role (vem_ingest: only
 * owners and BYPASSRLS roles may COPY there); the rows go through the staging tables instead. */
typedef enum { S_OK, S_DUPLICATE, S_REFUSED, S_TRANSIENT, S_FATAL, S_RLS } s_class_t;

typedef struct {
    uint64_t lo, hi; /* rows [lo, hi) of the current table */
} s_range_t;

struct vem_pgwriter {
    char *conninfo;
    int deadline_ms, statement_ms, lock_ms, ahead_days;
    PGconn *conn;
    PostgresPollingStatusType polling; /* what PQconnectPoll waits for */
    int32_t *days;                     /* days whose partitions exist (this connection) */
    size_t ndays, days_cap;
    bool staged; /* staging tables exist on this connection (created in a committed txn) */
    char stage_copy[VEM_PGROWS_TABLES][1024];
    char stage_insert[VEM_PGROWS_TABLES][1024];

    /* the operation in progress */
    s_op_t op;
    bool finished;              /* outcome known, not reported yet */
    vem_pgw_result_t outcome;   /* when finished; or, during ROLLBACK, what to report after */
    char msg[1024];             /* why it failed */
    const vem_pgbatch_t *batch; /* write */
    const char *plain_sql;      /* copy_plain */
    const vem_pgrows_buf_t *plain_rows;
    vem_pgw_stats_t st;
    bool in_txn, stage_new;        /* a transaction is open; it created the staging tables */
    int32_t *todo;                 /* days whose partitions are to be created, ascending */
    size_t ntodo, itodo, todo_cap; /* ... and the next one */
    size_t todo_group;             /* days in the ensure exchange in flight */
    vem_pgrows_buf_t qrows;        /* quarantine rows of refused rows (s_qcopy's columns) */
    uint64_t nq;
    int32_t *qdays; /* their Beijing days */
    size_t nqdays, qdays_cap;
    bool final; /* writing those */

    /* the table being written */
    int t;
    const uint8_t *data;
    size_t len;
    uint64_t nrows;
    bool via_stage;    /* through the staging table (a duplicate was met) */
    bool stage_always; /* COPY is refused under row-level security on this connection */
    size_t *offs;      /* row i is data[offs[i] .. offs[i + 1]) once walked */
    size_t offs_cap;
    bool walked;
    s_range_t *stack; /* ranges still to write */
    size_t nstack, stack_cap;
    s_range_t cur; /* the range in flight */
    bool undo_dup; /* the UNDO in flight follows a duplicate (else a refusal) */
    char refusal[2048];

    /* the exchange in flight */
    s_phase_t phase;
    int64_t deadline; /* monotonic ms */
    PGresult *res;    /* first error, else first result */
    bool broken;      /* could not even send */
    bool copy, in_copy;
    int part;
    const uint8_t *xdata;
    size_t xlen, xsent;
};

/* Binary COPY file header (signature, flags, header extension length) and trailer. */
static const uint8_t s_copy_header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF, '\r', '\n', 0};
static const uint8_t s_copy_trailer[2] = {0xFF, 0xFF};

/* Columns of a row read when it is quarantined: its receipt time and VIN (in the order of
 * vem_pgrows_copy_sql). */
static const unsigned s_received_col[VEM_PGROWS_TABLES] = {4, 3, 4, 0, 5, 3};
static const unsigned s_vin_col[VEM_PGROWS_TABLES] = {2, 0, 0, 6, 3, 7};

/* The quarantine rows made of refused rows, with columns of their own (vem_pgrows_quarantine
 * would cut the server's message short). */
#define S_QCOLS "(received_at, spool_seq, source, error_class, detail, vin, raw)"
static const char s_qcopy[] = "COPY quarantine " S_QCOLS " FROM STDIN (FORMAT binary)";
static const char s_qstage[] = "COPY vem_stage_quarantine " S_QCOLS " FROM STDIN (FORMAT binary)";

static atomic_int s_cancels;

/* ---- batches ----------------------------------------------------------------------------- */

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
    for (unsigned t = 0; t < VEM_PGROWS_TABLES; t++)
        n += b->nrows[t];
    return n;
}

void vem_pgbatch_reset(vem_pgbatch_t *b)
{
    for (unsigned t = 0; t < VEM_PGROWS_TABLES; t++) {
        b->rows[t].len = 0;
        b->nrows[t] = 0;
    }
    b->samples = 0;
    b->ndays = 0;
}

void vem_pgbatch_free(vem_pgbatch_t *b)
{
    for (unsigned t = 0; t < VEM_PGROWS_TABLES; t++)
        vem_pgrows_buf_free(&b->rows[t]);
    free(b->days);
    *b = (vem_pgbatch_t){0};
}

/* ---- binary COPY rows -------------------------------------------------------------------- */

/* End of the row at off (int16 field count, then per field an int32 length, -1 for NULL, and
 * the bytes), or 0 when it does not parse. */
static size_t s_row_end(const uint8_t *p, size_t len, size_t off)
{
    if (len - off < 2)
        return 0;
    int16_t nfields = (int16_t)(p[off] << 8 | p[off + 1]);
    if (nfields < 0)
        return 0;
    off += 2;
    for (int16_t f = 0; f < nfields; f++) {
        if (len - off < 4)
            return 0;
        int32_t flen = (int32_t)vem_hj1239_be32(p + off);
        off += 4;
        if (flen == -1)
            continue;
        if (flen < 0 || (size_t)flen > len - off)
            return 0;
        off += (size_t)flen;
    }
    return off;
}

/* Column col of a row: false when NULL or beyond the row. */
static bool s_field(const uint8_t *p, size_t len, unsigned col, const uint8_t **val, size_t *vlen)
{
    size_t off = 2;
    if (len < 2)
        return false;
    for (unsigned f = 0;; f++) {
        if (len - off < 4)
            return false;
        int32_t flen = (int32_t)vem_hj1239_be32(p + off);
        off += 4;
        if (flen >= 0 && (size_t)flen > len - off)
            return false;
        if (f == col) {
            *val = p + off;
            *vlen = flen < 0 ? 0 : (size_t)flen;
            return flen >= 0;
        }
        if (flen > 0)
            off += (size_t)flen;
    }
}

/* Finds where each row of the current table starts. A tail that does not parse (which would
 * be our bug) counts as one more row, so it is still written or quarantined, never lost. */
static void s_walk(vem_pgwriter_t *self)
{
    uint64_t n = 0;
    size_t off = 0;
    while (off < self->len) {
        if (n + 2 > self->offs_cap) {
            size_t cap = self->offs_cap ? self->offs_cap * 2 : 1024;
            size_t *o = realloc(self->offs, cap * sizeof *o);
            if (!o)
                abort();
            self->offs = o;
            self->offs_cap = cap;
        }
        self->offs[n++] = off;
        size_t end = s_row_end(self->data, self->len, off);
        off = end ? end : self->len;
    }
    if (!self->offs) {
        self->offs = malloc(sizeof *self->offs);
        if (!self->offs)
            abort();
        self->offs_cap = 1;
    }
    self->offs[n] = self->len;
    self->nrows = n;
    self->walked = true;
}

/* What rows [lo, hi) of the current table count for in the stats: obd_frames rows their
 * samples (the int2 each row starts with), other rows one each. */
static uint64_t s_weight(vem_pgwriter_t *self, s_range_t r)
{
    if (self->t != VEM_PGROWS_SAMPLES)
        return r.hi - r.lo;
    if (!self->walked)
        s_walk(self);
    uint64_t n = 0;
    for (uint64_t i = r.lo; i < r.hi && i < self->nrows; i++) {
        size_t at = self->offs[i] + VEM_PGROWS_NSAMPLES_AT;
        if (at + 2 <= self->offs[i + 1])
            n += (uint64_t)(self->data[at] << 8 | self->data[at + 1]);
    }
    return n;
}

/* Bytes of rows [lo, hi) of the current table. */
static void s_span(const vem_pgwriter_t *self, s_range_t r, const uint8_t **p, size_t *len)
{
    if (!self->walked) {
        *p = self->data;
        *len = self->len;
    } else {
        *p = self->data + self->offs[r.lo];
        *len = self->offs[r.hi] - self->offs[r.lo];
    }
}

static void s_put32(vem_pgrows_buf_t *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    vem_pgrows_buf_put(b, p, 4);
}

static void s_put_int8(vem_pgrows_buf_t *b, int64_t v)
{
    s_put32(b, 8);
    s_put32(b, (uint32_t)((uint64_t)v >> 32));
    s_put32(b, (uint32_t)v);
}

/* A field of n bytes; NULL when p is. */
static void s_put_field(vem_pgrows_buf_t *b, const void *p, size_t n)
{
    s_put32(b, p ? (uint32_t)n : UINT32_MAX);
    if (p)
        vem_pgrows_buf_put(b, p, n);
}

/* Length of the longest prefix of s that the server takes as UTF-8 text. */
static size_t s_utf8_valid(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t k = c < 0x80                 ? 1
                   : c >= 0xC2 && c <= 0xDF ? 2
                   : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4
                                            : 0;
        if (c == 0 || k == 0 || n - i < k)
            break;
        /* the second byte's range excludes overlong forms, surrogates and > U+10FFFF */
        uint8_t lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
        uint8_t hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
        bool ok = k == 1 || (p[i + 1] >= lo && p[i + 1] <= hi);
        for (size_t j = 2; ok && j < k; j++)
            ok = p[i + j] >= 0x80 && p[i + j] <= 0xBF;
        if (!ok)
            break;
        i += k;
    }
    return i;
}

/* ---- messages and classes ---------------------------------------------------------------- */

static void s_msg(vem_pgwriter_t *self, const char *what, const char *text)
{
    snprintf(self->msg, sizeof self->msg, "%s: %.*s", what, (int)strcspn(text, "\n"), text);
}

/* "ERROR 23514: message; DETAIL: detail" of a failed result (or the connection's error). */
static void s_describe(const vem_pgwriter_t *self, const PGresult *res, char *out, size_t cap)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!state || !primary) {
        const char *text = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
                                                             : PQerrorMessage(self->conn);
        snprintf(out, cap, "%.*s", (int)strcspn(text, "\n"), text);
        return;
    }
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    snprintf(out, cap, "%s %s: %s%s%s", severity ? severity : "ERROR", state, primary,
             detail ? "; DETAIL: " : "", detail ? detail : "");
}

static void s_msg_res(vem_pgwriter_t *self, const char *what, const PGresult *res)
{
    char text[768];
    s_describe(self, res, text, sizeof text);
    snprintf(self->msg, sizeof self->msg, "%s: %s", what, text);
}

static bool s_result_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return res && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
}

/* Classifies a statement's result (NULL: the connection went away). */
static s_class_t s_class(const vem_pgwriter_t *self, const PGresult *res)
{
    if (s_result_ok(res))
        return S_OK;
    if (PQstatus(self->conn) != CONNECTION_OK)
        return S_TRANSIENT;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return S_TRANSIENT;
    if (strcmp(state, "23505") == 0)
        return S_DUPLICATE;
    if (strcmp(state, "0A000") == 0 && self->phase == S_COPY && !self->via_stage)
        return S_RLS;
    /* check_violation without a constraint: no partition for the row, i.e. one was dropped
     * under us (retention); the retry creates it again */
    if (strcmp(state, "23514") == 0 && !PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME))
        return S_TRANSIENT;
    /* 22 data exception, 23 integrity constraint violation: this row, not the batch */
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
        return S_REFUSED;
    /* 08 connection, 40 serialization/deadlock, 53 resources, 57 operator intervention (also
     * statement_timeout and shutdown), 58 system error, 55P03 lock_timeout, 55006 in use */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "40", 2) == 0 ||
        strncmp(state, "53", 2) == 0 || strncmp(state, "57", 2) == 0 ||
        strncmp(state, "58", 2) == 0 || strcmp(state, "55P03") == 0 || strcmp(state, "55006") == 0)
        return S_TRANSIENT;
    return S_FATAL;
}

/* libpq's notices (server NOTICE/WARNING messages and its own) go to the log. */
static void s_notice(void *arg, const PGresult *res)
{
    (void)arg;
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *text = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (!text)
        text = PQresultErrorMessage(res);
    vem_log_level_t level = VEM_LOG_DEBUG;
    if (!severity || strcmp(severity, "WARNING") == 0)
        level = VEM_LOG_WARNING;
    else if (strcmp(severity, "NOTICE") == 0)
        level = VEM_LOG_NOTICE;
    else if (strcmp(severity, "INFO") == 0 || strcmp(severity, "LOG") == 0)
        level = VEM_LOG_INFO;
    vem_log(level, "pg", "server %s%s%s: %.*s", severity ? severity : "notice", state ? " " : "",
            state ? state : "", (int)strcspn(text, "\n"), text);
}

/* ---- connection -------------------------------------------------------------------------- */

vem_pgwriter_t *vem_pgwriter_new(const char *conninfo)
{
    vem_pgwriter_t *self = calloc(1, sizeof *self);
    if (!self || !(self->conninfo = strdup(conninfo)))
        abort();
    self->deadline_ms = VEM_PGW_DEADLINE_MS;
    self->statement_ms = VEM_PGW_STATEMENT_MS;
    self->lock_ms = VEM_PGW_LOCK_MS;
    self->ahead_days = 1;
    for (unsigned t = 0; t < VEM_PGROWS_TABLES; t++) {
        const char *name = vem_pgrows_table_name(t), *copy = vem_pgrows_copy_sql(t);
        /* "COPY obd_frames (cols) ..." -> "COPY vem_stage_obd_frames (cols) ..." */
        snprintf(self->stage_copy[t], sizeof self->stage_copy[t], "COPY vem_stage_%s%s", name,
                 copy + strlen("COPY ") + strlen(name));
        /* the staging table is emptied at once: a table may pass through it several times in
         * one transaction (a range at a time) */
        snprintf(self->stage_insert[t], sizeof self->stage_insert[t],
                 "INSERT INTO %s SELECT * FROM vem_stage_%s ON CONFLICT DO NOTHING; "
                 "TRUNCATE vem_stage_%s; RELEASE SAVEPOINT vem_range",
                 name, name, name);
    }
    /* a frame counts for its samples */
    snprintf(self->stage_insert[VEM_PGROWS_SAMPLES], sizeof self->stage_insert[VEM_PGROWS_SAMPLES],
             "WITH i AS (INSERT INTO obd_frames SELECT * FROM vem_stage_obd_frames "
             "ON CONFLICT DO NOTHING RETURNING nsamples) SELECT coalesce(sum(nsamples), 0) FROM i; "
             "TRUNCATE vem_stage_obd_frames; RELEASE SAVEPOINT vem_range");
    /* A verdict is emitted again under its id as it changes (a notice that becomes a violation,
     * a longer chain, a run a late compliant reading cut): the latest emission of an id wins,
     * by the input that made it (schema/0016_merge_by_input.sql). vem_ingest may only add, so
     * the merge is the schema's (vem_merge_violations); its answer is the number of rows
     * inserted or merged. */
    snprintf(self->stage_insert[VEM_PGROWS_VIOLATIONS],
             sizeof self->stage_insert[VEM_PGROWS_VIOLATIONS],
             "SELECT vem_merge_violations(coalesce(jsonb_agg(s), '[]'::jsonb)) "
             "FROM vem_stage_violations s; "
             "TRUNCATE vem_stage_violations; RELEASE SAVEPOINT vem_range");
    return self;
}

void vem_pgwriter_destroy(vem_pgwriter_t **self_p)
{
    vem_pgwriter_t *self = *self_p;
    if (!self)
        return;
    vem_pgwriter_disconnect(self);
    vem_pgrows_buf_free(&self->qrows);
    free(self->qdays);
    free(self->days);
    free(self->todo);
    free(self->offs);
    free(self->stack);
    free(self->conninfo);
    free(self);
    *self_p = NULL;
}

void vem_pgwriter_set_timeouts(vem_pgwriter_t *self, int deadline_ms, int statement_ms, int lock_ms)
{
    self->deadline_ms = deadline_ms > 0 ? deadline_ms : VEM_PGW_DEADLINE_MS;
    self->statement_ms = statement_ms > 0 ? statement_ms : 0;
    self->lock_ms = lock_ms > 0 ? lock_ms : 0;
}

/* Closes the connection; the operation in progress, if any, is left to report its end. */
static void s_close(vem_pgwriter_t *self)
{
    PQclear(self->res);
    self->res = NULL;
    if (self->conn)
        PQfinish(self->conn);
    self->conn = NULL;
    self->ndays = 0;
    self->staged = self->stage_always = false;
    self->in_txn = false;
}

void vem_pgwriter_disconnect(vem_pgwriter_t *self)
{
    s_close(self);
    self->op = S_OP_NONE;
    self->finished = false;
}

bool vem_pgwriter_connected(const vem_pgwriter_t *self)
{
    return self->conn && self->op != S_OP_CONNECT && PQstatus(self->conn) == CONNECTION_OK;
}

void *vem_pgwriter_conn(vem_pgwriter_t *self)
{
    return vem_pgwriter_connected(self) && self->op == S_OP_NONE ? self->conn : NULL;
}

int vem_pgwriter_idle_fd(const vem_pgwriter_t *self)
{
    return vem_pgwriter_connected(self) && self->op == S_OP_NONE ? PQsocket(self->conn) : -1;
}

bool vem_pgwriter_idle_check(vem_pgwriter_t *self)
{
    if (!self->conn || self->op != S_OP_NONE)
        return vem_pgwriter_connected(self);
    PGresult *res;
    bool ok = PQconsumeInput(self->conn) == 1;
    while (ok && !PQisBusy(self->conn) && (res = PQgetResult(self->conn)))
        PQclear(res); /* nothing is asked while idle: an unsolicited error ends the session */
    if (ok && PQstatus(self->conn) == CONNECTION_OK)
        return true;
    vem_pgwriter_disconnect(self);
    return false;
}

bool vem_pgwriter_busy(const vem_pgwriter_t *self)
{
    return self->op != S_OP_NONE;
}

int vem_pgwriter_timeout_ms(const vem_pgwriter_t *self)
{
    if (self->op == S_OP_NONE)
        return -1;
    int64_t left = self->finished ? 0 : self->deadline - vem_mono_ms();
    return left < 0 ? 0 : left > 3600000 ? 3600000 : (int)left;
}

static void *s_cancel_main(void *arg)
{
    char why[256];
    if (!PQcancel(arg, why, sizeof why))
        vem_log(VEM_LOG_WARNING, "pg", "cancel request not delivered: %s", why);
    PQfreeCancel(arg);
    atomic_fetch_sub(&s_cancels, 1);
    return NULL;
}

/* Asks the server to cancel what the connection runs, so its backend lets go of its locks
 * even if our closing the socket goes unnoticed. PQcancel connects and waits for the server,
 * which may be what stopped answering: it runs in a thread of its own, a few at most. */
static void s_cancel(PGconn *conn)
{
    if (atomic_fetch_add(&s_cancels, 1) >= S_CANCELS) {
        atomic_fetch_sub(&s_cancels, 1);
        vem_log(VEM_LOG_WARNING, "pg", "no cancel request sent: %d still under way", S_CANCELS);
        return;
    }
    PGcancel *cancel = PQgetCancel(conn);
    pthread_attr_t attr;
    pthread_t thread;
    if (cancel && pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&thread, &attr, s_cancel_main, cancel);
        pthread_attr_destroy(&attr);
        if (rc == 0)
            return;
    }
    PQfreeCancel(cancel);
    atomic_fetch_sub(&s_cancels, 1);
    vem_log(VEM_LOG_WARNING, "pg", "no cancel request sent: cannot start its thread");
}

/* The session options: the conninfo's own (or PGOPTIONS), then our timeouts. */
static char *s_options(const vem_pgwriter_t *self)
{
    PQconninfoOption *opts = PQconninfoParse(self->conninfo, NULL);
    const char *theirs = NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "options") == 0)
            theirs = o->val;
    if (!theirs)
        theirs = getenv("PGOPTIONS");
    char mine[96];
    snprintf(mine, sizeof mine, "-c statement_timeout=%d -c lock_timeout=%d", self->statement_ms,
             self->lock_ms);
    size_t n = (theirs ? strlen(theirs) + 1 : 0) + strlen(mine) + 1;
    char *s = malloc(n);
    if (!s)
        abort();
    snprintf(s, n, "%s%s%s", theirs ? theirs : "", theirs ? " " : "", mine);
    PQconninfoFree(opts);
    return s;
}

int vem_pgwriter_connect_start(vem_pgwriter_t *self, int ahead_days, char *err, size_t errlen)
{
    if (self->op != S_OP_NONE) {
        snprintf(err, errlen, "connect: an operation is in progress");
        return -1;
    }
    vem_pgwriter_disconnect(self);
    self->ahead_days = ahead_days;
    char timeout[16], *options = s_options(self);
    snprintf(timeout, sizeof timeout, "%d", (self->deadline_ms + 999) / 1000 + 1);
    /* later keywords override what the expanded conninfo says */
    const char *keys[] = {"dbname",          "application_name", "connect_timeout",
                          "client_encoding", "options",          NULL};
    const char *values[] = {self->conninfo, "vemd", timeout, "UTF8", options, NULL};
    self->conn = PQconnectStartParams(keys, values, 1);
    free(options);
    if (!self->conn)
        abort();
    PQsetNoticeReceiver(self->conn, s_notice, NULL);
    self->polling = PGRES_POLLING_WRITING; /* as the manual says to start */
    self->op = S_OP_CONNECT;
    self->finished = false;
    self->msg[0] = '\0';
    self->deadline = vem_mono_ms() + self->deadline_ms;
    return 0;
}

/* ---- exchanges --------------------------------------------------------------------------- */

static void s_xreset(vem_pgwriter_t *self, s_phase_t phase)
{
    PQclear(self->res);
    self->res = NULL;
    self->phase = phase;
    self->broken = false;
    self->copy = self->in_copy = false;
    self->part = S_PART_HEAD;
    self->xdata = NULL;
    self->xlen = self->xsent = 0;
    self->deadline = vem_mono_ms() + self->deadline_ms;
}

static void s_send(vem_pgwriter_t *self, s_phase_t phase, const char *sql)
{
    s_xreset(self, phase);
    if (!PQsendQuery(self->conn, sql))
        self->broken = true;
}

/* A COPY ... FROM STDIN whose data is the binary header, rows p[0 .. len) and the trailer. */
static void s_send_copy(vem_pgwriter_t *self, s_phase_t phase, const char *sql, const uint8_t *p,
                        size_t len)
{
    s_send(self, phase, sql);
    self->copy = true;
    self->xdata = p;
    self->xlen = len;
}

static void s_send_ensure(vem_pgwriter_t *self, s_phase_t phase, int32_t first, int32_t last)
{
    s_xreset(self, phase);
    char a[16], b[16];
    snprintf(a, sizeof a, "%d", (int)first);
    snprintf(b, sizeof b, "%d", (int)last);
    const char *params[2] = {a, b};
    if (!PQsendQueryParams(self->conn,
                           "SELECT vem_ensure_partitions(DATE '1970-01-01' + $1::int, "
                           "DATE '1970-01-01' + $2::int)",
                           2, NULL, params, NULL, NULL, 0))
        self->broken = true;
}

/* Keeps the first error of an exchange, else its first result. */
static void s_keep(vem_pgwriter_t *self, PGresult *res)
{
    if (!self->res) {
        self->res = res;
    } else if (s_result_ok(self->res) && !s_result_ok(res)) {
        PQclear(self->res);
        self->res = res;
    } else {
        PQclear(res);
    }
}

/* Hands COPY data to libpq while it can send it: 0 when all of it (and the end) is queued,
 * 1 to wait until the socket takes more, -1 when the connection failed. */
static int s_copy_push(vem_pgwriter_t *self, size_t *budget)
{
    while (self->part < S_PART_DONE) {
        int r = PQflush(self->conn);
        if (r != 0)
            return r;
        if (*budget == 0)
            return 1;
        if (self->part == S_PART_HEAD) {
            r = PQputCopyData(self->conn, (const char *)s_copy_header, sizeof s_copy_header);
        } else if (self->part == S_PART_ROWS) {
            size_t n = self->xlen - self->xsent < S_CHUNK ? self->xlen - self->xsent : S_CHUNK;
            r = n ? PQputCopyData(self->conn, (const char *)self->xdata + self->xsent, (int)n) : 1;
            if (r == 1) {
                self->xsent += n;
                *budget -= n < *budget ? n : *budget;
                if (self->xsent < self->xlen)
                    continue;
            }
        } else if (self->part == S_PART_TAIL) {
            r = PQputCopyData(self->conn, (const char *)s_copy_trailer, sizeof s_copy_trailer);
        } else {
            r = PQputCopyEnd(self->conn, self->copy ? NULL : "vemd sent no COPY");
            if (r == 1)
                self->in_copy = false;
        }
        if (r < 0)
            return -1;
        if (r == 0)
            return 1;
        self->part++;
    }
    return 0;
}

/* Advances the exchange in flight without waiting. */
static s_xstate_t s_xstep(vem_pgwriter_t *self, short *events)
{
    PGconn *conn = self->conn;
    size_t budget = S_STEP_BYTES;
    if (self->broken)
        return S_X_BROKEN;
    for (;;) {
        if (!PQconsumeInput(conn))
            return S_X_BROKEN;
        if (self->in_copy) {
            int r = s_copy_push(self, &budget);
            if (r < 0)
                return S_X_BROKEN;
            if (r > 0) {
                *events = POLLIN | POLLOUT;
                return S_X_PENDING;
            }
        }
        int r = PQflush(conn);
        if (r < 0)
            return S_X_BROKEN;
        if (r > 0) {
            *events = POLLIN | POLLOUT;
            return S_X_PENDING;
        }
        while (!self->in_copy && !PQisBusy(conn)) {
            PGresult *res = PQgetResult(conn);
            if (!res)
                return S_X_DONE;
            if (PQresultStatus(res) == PGRES_COPY_IN) {
                PQclear(res);
                self->in_copy = true; /* with copy false, s_copy_push only ends it */
                if (!self->copy)
                    self->part = S_PART_END;
            } else {
                s_keep(self, res);
            }
        }
        if (!self->in_copy) {
            *events = POLLIN;
            return S_X_PENDING;
        }
    }
}

/* ---- the operation's end ----------------------------------------------------------------- */

static bool s_finish(vem_pgwriter_t *self, vem_pgw_result_t r)
{
    self->finished = true;
    self->outcome = r;
    self->in_txn = false;
    if (r == VEM_PGW_RETRY)
        self->ndays = 0; /* a partition may have been dropped under us: check them all again */
    return true;
}

/* The current statement failed with class c (what: which statement): remember why, undo the
 * transaction if one is open, then report. True when finished now. */
static bool s_fail(vem_pgwriter_t *self, s_class_t c, const char *what)
{
    s_msg_res(self, what, self->res);
    vem_pgw_result_t r = c == S_TRANSIENT ? VEM_PGW_RETRY : VEM_PGW_FAILED;
    if (PQstatus(self->conn) != CONNECTION_OK) {
        s_close(self);
        return s_finish(self, VEM_PGW_RETRY);
    }
    if (self->in_txn) {
        self->outcome = r;
        s_send(self, S_ROLLBACK, "ROLLBACK");
        return false;
    }
    return s_finish(self, r);
}

/* ---- writing: partitions ----------------------------------------------------------------- */

static int s_cmp_day(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Queues the days whose partitions this connection has not seen (known: checked already). */
static void s_todo_add(vem_pgwriter_t *self, int32_t day, bool check_known)
{
    if ((check_known && s_has_day(self->days, self->ndays, day)) ||
        s_has_day(self->todo, self->ntodo, day))
        return;
    s_push_day(&self->todo, &self->ntodo, &self->todo_cap, day);
}

/* Sends the next run of consecutive days to create; false when there is none. */
static bool s_ensure_next(vem_pgwriter_t *self, s_phase_t phase)
{
    if (self->itodo == self->ntodo)
        return false;
    size_t i = self->itodo, j = i + 1;
    while (j < self->ntodo && self->todo[j] == self->todo[j - 1] + 1)
        j++;
    self->todo_group = j - i;
    s_send_ensure(self, phase, self->todo[i], self->todo[j - 1]);
    return true;
}

/* ---- writing: tables and ranges ---------------------------------------------------------- */

static void s_push_range(vem_pgwriter_t *self, uint64_t lo, uint64_t hi)
{
    if (self->nstack == self->stack_cap) {
        size_t cap = self->stack_cap ? self->stack_cap * 2 : 64;
        s_range_t *s = realloc(self->stack, cap * sizeof *s);
        if (!s)
            abort();
        self->stack = s;
        self->stack_cap = cap;
    }
    self->stack[self->nstack++] = (s_range_t){lo, hi};
}

static bool s_next_range(vem_pgwriter_t *self);

/* Starts table t's rows: all of them as one range first. */
static bool s_table(vem_pgwriter_t *self, int t, const vem_pgrows_buf_t *rows, uint64_t nrows)
{
    self->t = t;
    self->data = rows->data;
    self->len = rows->len;
    self->nrows = nrows;
    /* under row-level security every table goes through staging, once it exists */
    self->via_stage = self->stage_always && (self->staged || self->stage_new);
    self->walked = false;
    self->nstack = 0;
    s_push_range(self, 0, nrows);
    return s_next_range(self);
}

/* Moves on to the next table with rows; then to the refused rows' quarantine rows; then to
 * COMMIT. */
static bool s_next_table(vem_pgwriter_t *self)
{
    const vem_pgbatch_t *b = self->batch;
    while (!self->final && ++self->t < VEM_PGROWS_TABLES)
        if (b->nrows[self->t] > 0 && b->rows[self->t].len > 0)
            return s_table(self, self->t, &b->rows[self->t], b->nrows[self->t]);
    if (self->final || self->nq == 0) {
        s_send(self, S_COMMIT, "COMMIT");
        return false;
    }
    /* their receipt days may differ from the batch's: create those partitions in the
     * transaction (not remembered: if it rolls back, so do they) */
    self->final = true;
    self->ntodo = self->itodo = 0;
    for (size_t i = 0; i < self->nqdays; i++)
        s_todo_add(self, self->qdays[i], true);
    qsort(self->todo, self->ntodo, sizeof *self->todo, s_cmp_day);
    if (s_ensure_next(self, S_QDAYS))
        return false;
    return s_table(self, VEM_PGROWS_QUARANTINE, &self->qrows, self->nq);
}

static bool s_next_range(vem_pgwriter_t *self)
{
    if (self->nstack == 0)
        return s_next_table(self);
    self->cur = self->stack[--self->nstack];
    s_send(self, S_SAVEPOINT, "SAVEPOINT vem_range");
    return false;
}

static void s_copy_range(vem_pgwriter_t *self)
{
    const uint8_t *p;
    size_t len;
    s_span(self, self->cur, &p, &len);
    const char *sql = self->via_stage ? self->stage_copy[self->t] : vem_pgrows_copy_sql(self->t);
    if (self->final)
        sql = self->via_stage ? s_qstage : s_qcopy;
    s_send_copy(self, S_COPY, sql, p, len);
}

/* A quarantine row for row i of the current table, which the server refused alone (the
 * reason is in self->refusal). Its key (received_at, spool_seq) must be the same every time
 * the batch is written, so that a retried batch stores it once: received_at is the row's own
 * (now, if the row has none), and since the spool seq of a row is not known here, spool_seq is
 * a negative number made from the row's bytes (FNV-1a), which no spool seq can be. source must
 * be one the schema allows: these rows came from terminals. */
static void s_refuse(vem_pgwriter_t *self, uint64_t i)
{
    const uint8_t *p, *val;
    size_t len, vlen;
    s_span(self, (s_range_t){i, i + 1}, &p, &len);
    int64_t received_us = vem_now_us();
    if (s_field(p, len, s_received_col[self->t], &val, &vlen) && vlen == 8)
        received_us = (int64_t)((uint64_t)vem_hj1239_be32(val) << 32 | vem_hj1239_be32(val + 4)) +
                      S_PG_EPOCH_US;
    const uint8_t *vin = NULL;
    if (s_field(p, len, s_vin_col[self->t], &val, &vlen) && vlen == 17) {
        vin = val;
        for (size_t k = 0; k < 17; k++)
            if (val[k] < 0x20 || val[k] >= 0x7F)
                vin = NULL;
    }
    uint64_t hash = UINT64_C(14695981039346656037);
    for (size_t k = 0; k < len; k++)
        hash = (hash ^ p[k]) * UINT64_C(1099511628211);
    vem_pgrows_buf_t *q = &self->qrows;
    uint8_t count[2] = {0, 7};
    vem_pgrows_buf_put(q, count, 2);
    s_put_int8(q, received_us - S_PG_EPOCH_US);
    s_put_int8(q, -1 - (int64_t)(hash >> 1));
    s_put_field(q, "sink", strlen("sink"));
    s_put_field(q, "refused", strlen("refused"));
    s_put_field(q, self->refusal, s_utf8_valid(self->refusal, strlen(self->refusal)));
    s_put_field(q, vin, 17);
    s_put_field(q, p, len);
    self->nq++;
    int64_t secs = received_us >= 0 ? received_us / 1000000 : (received_us - 999999) / 1000000;
    int32_t day = (int32_t)vem_hj1239_beijing_day(secs);
    if (!s_has_day(self->qdays, self->nqdays, day))
        s_push_day(&self->qdays, &self->nqdays, &self->qdays_cap, day);
    self->st.refused[self->t] += s_weight(self, (s_range_t){i, i + 1});
    vem_log(VEM_LOG_WARNING, "pg", "%s row%s%.*s refused by the server, quarantined: %s",
            vem_pgrows_table_name(self->t), vin ? " of " : "", vin ? 17 : 0,
            vin ? (const char *)vin : "", self->refusal);
}

/* The range in flight was undone after a refusal: split it, or quarantine its one row. */
static bool s_split(vem_pgwriter_t *self)
{
    if (!self->walked) {
        s_walk(self);
        self->cur = (s_range_t){0, self->nrows};
    }
    uint64_t lo = self->cur.lo, hi = self->cur.hi;
    if (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        s_push_range(self, mid, hi);
        s_push_range(self, lo, mid);
    } else if (hi - lo == 1) {
        if (self->final) {
            snprintf(self->msg, sizeof self->msg,
                     "the quarantine row of a refused row was refused too: %.900s", self->refusal);
            self->outcome = VEM_PGW_FAILED;
            s_send(self, S_ROLLBACK, "ROLLBACK");
            return false;
        }
        s_refuse(self, lo);
    }
    return s_next_range(self);
}

/* ---- writing: the state machine ---------------------------------------------------------- */

/* Rows a statement wrote: its command tag's count, or the one value a function returned. */
static uint64_t s_tuples(const PGresult *res)
{
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 1)
        return strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    return strtoull(PQcmdTuples((PGresult *)res), NULL, 10);
}

/* The exchange in flight is done: start the next one. True when the operation finished. */
static bool s_advance(vem_pgwriter_t *self)
{
    PGresult *res = self->res;
    s_class_t c = s_class(self, res);
    const char *table =
        self->t >= 0 && self->t < VEM_PGROWS_TABLES ? vem_pgrows_table_name(self->t) : "";
    char what[96];
    switch (self->phase) {
    case S_ENSURE:
    case S_QDAYS:
        /* a duplicate: another session created the same partition at the same time */
        if (c == S_DUPLICATE)
            c = S_TRANSIENT;
        if (c != S_OK)
            return s_fail(self, c == S_REFUSED ? S_FATAL : c, "creating daily partitions");
        if (self->phase == S_ENSURE) {
            if (PQntuples(res) == 1)
                self->st.partitions_created += (unsigned)atoi(PQgetvalue(res, 0, 0));
            for (size_t k = 0; k < self->todo_group; k++)
                s_push_day(&self->days, &self->ndays, &self->days_cap, self->todo[self->itodo + k]);
        }
        self->itodo += self->todo_group;
        if (s_ensure_next(self, self->phase))
            return false;
        if (self->phase == S_QDAYS)
            return s_table(self, VEM_PGROWS_QUARANTINE, &self->qrows, self->nq);
        if (vem_pgbatch_rows(self->batch) == 0)
            return s_finish(self, VEM_PGW_OK);
        s_send(self, S_BEGIN, "BEGIN");
        return false;
    case S_BEGIN:
        if (c != S_OK)
            return s_fail(self, c, "BEGIN");
        self->in_txn = true;
        if (self->op == S_OP_PLAIN) {
            s_send_copy(self, S_PLAIN_COPY, self->plain_sql, self->plain_rows->data,
                        self->plain_rows->len);
            return false;
        }
        self->t = -1;
        return s_next_table(self);
    case S_SAVEPOINT:
        if (c != S_OK)
            return s_fail(self, c, "SAVEPOINT");
        s_copy_range(self);
        return false;
    case S_COPY:
        if (c == S_OK && self->via_stage) {
            s_send(self, S_INSERT, self->stage_insert[self->t]);
            return false;
        }
        if (c == S_OK) {
            self->st.inserted[self->t] += s_weight(self, self->cur);
            s_send(self, S_RELEASE, "RELEASE SAVEPOINT vem_range");
            return false;
        }
        /* fall through - a COPY and an INSERT fail alike */
    case S_INSERT:
        if (c == S_OK) {
            /* obd_frames answers with the samples of the frames it took (stage_insert) */
            uint64_t n = self->t == VEM_PGROWS_SAMPLES && PQntuples(res) == 1
                             ? strtoull(PQgetvalue(res, 0, 0), NULL, 10)
                             : s_tuples(res);
            uint64_t copied = s_weight(self, self->cur);
            self->st.inserted[self->t] += n;
            self->st.duplicates[self->t] += copied > n ? copied - n : 0;
            return s_next_range(self);
        }
        if ((c == S_DUPLICATE && !self->via_stage) || c == S_REFUSED || c == S_RLS) {
            self->undo_dup = c != S_REFUSED;
            self->stage_always |= c == S_RLS;
            if (c == S_REFUSED) {
                int n = snprintf(self->refusal, sizeof self->refusal, "%s: ", table);
                s_describe(self, res, self->refusal + n, sizeof self->refusal - (size_t)n);
            }
            s_send(self, S_UNDO, "ROLLBACK TO SAVEPOINT vem_range; RELEASE SAVEPOINT vem_range");
            return false;
        }
        snprintf(what, sizeof what, "%s %s", self->phase == S_COPY ? "COPY" : "INSERT into", table);
        return s_fail(self, c == S_DUPLICATE ? S_TRANSIENT : c, what);
    case S_RELEASE:
        if (c != S_OK)
            return s_fail(self, c, "RELEASE SAVEPOINT");
        return s_next_range(self);
    case S_UNDO:
        if (c != S_OK)
            return s_fail(self, c, "ROLLBACK TO SAVEPOINT");
        if (!self->undo_dup)
            return s_split(self);
        self->via_stage = true;
        s_push_range(self, self->cur.lo, self->cur.hi);
        if (self->staged || self->stage_new)
            return s_next_range(self);
        s_send(self, S_STAGE,
               "CREATE TEMP TABLE IF NOT EXISTS vem_stage_obd_frames (LIKE obd_frames) "
               "ON COMMIT DELETE ROWS; "
               "CREATE TEMP TABLE IF NOT EXISTS vem_stage_obd_info (LIKE obd_info) "
               "ON COMMIT DELETE ROWS; "
               "CREATE TEMP TABLE IF NOT EXISTS vem_stage_terminal_events "
               "(LIKE terminal_events) ON COMMIT DELETE ROWS; "
               "CREATE TEMP TABLE IF NOT EXISTS vem_stage_quarantine (LIKE quarantine) "
               "ON COMMIT DELETE ROWS; "
               "CREATE TEMP TABLE IF NOT EXISTS vem_stage_violations "
               "(LIKE violations INCLUDING DEFAULTS) ON COMMIT DELETE ROWS; "
               "CREATE TEMP TABLE IF NOT EXISTS vem_stage_rsd_readings (LIKE rsd_readings) "
               "ON COMMIT DELETE ROWS");
        return false;
    case S_STAGE:
        if (c != S_OK)
            return s_fail(self, c, "creating the staging tables");
        self->stage_new = true;
        return s_next_range(self);
    case S_PLAIN_COPY:
        if (c != S_OK)
            return s_fail(self, c, "COPY");
        s_send(self, S_COMMIT, "COMMIT");
        return false;
    case S_COMMIT:
        self->in_txn = false; /* whatever the answer: a failed COMMIT ends it too */
        if (c != S_OK)
            return s_fail(self, c, "COMMIT");
        if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
            snprintf(self->msg, sizeof self->msg, "COMMIT: the server rolled back instead");
            return s_finish(self, VEM_PGW_RETRY);
        }
        if (self->stage_new)
            self->staged = true;
        return s_finish(self, VEM_PGW_OK);
    case S_ROLLBACK:
        if (c != S_OK)
            s_close(self); /* in an unknown state */
        return s_finish(self, self->outcome);
    }
    return s_finish(self, VEM_PGW_FAILED);
}

static void s_start_write(vem_pgwriter_t *self, s_op_t op)
{
    self->op = op;
    self->finished = false;
    self->msg[0] = '\0';
    memset(&self->st, 0, sizeof self->st);
    self->in_txn = self->stage_new = self->final = false;
    self->t = -1;
    self->qrows.len = 0;
    self->nq = self->nqdays = 0;
}

int vem_pgwriter_write_start(vem_pgwriter_t *self, const vem_pgbatch_t *b, char *err, size_t errlen)
{
    if (self->op != S_OP_NONE) {
        snprintf(err, errlen, "write: an operation is in progress");
        return -1;
    }
    if (!vem_pgwriter_connected(self)) {
        snprintf(err, errlen, "write: not connected");
        return -1;
    }
    s_start_write(self, S_OP_WRITE);
    self->batch = b;
    self->ntodo = self->itodo = 0;
    int32_t today = (int32_t)vem_hj1239_beijing_day((int64_t)time(NULL));
    for (int32_t d = today - 1; d <= today + self->ahead_days; d++)
        s_todo_add(self, d, true);
    for (size_t i = 0; i < b->ndays; i++)
        s_todo_add(self, b->days[i], true);
    qsort(self->todo, self->ntodo, sizeof *self->todo, s_cmp_day);
    if (s_ensure_next(self, S_ENSURE))
        return 0;
    if (vem_pgbatch_rows(b) == 0)
        s_finish(self, VEM_PGW_OK);
    else
        s_send(self, S_BEGIN, "BEGIN");
    return 0;
}

/* ---- stepping ---------------------------------------------------------------------------- */

/* True when fd is ready for events now (or in error: PQconnectPoll will say). */
static bool s_ready(int fd, short events)
{
    if (fd < 0)
        return true;
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, 0) > 0;
}

static s_xstate_t s_connect_step(vem_pgwriter_t *self, short *events)
{
    for (;;) {
        if (PQstatus(self->conn) == CONNECTION_BAD)
            return S_X_BROKEN;
        short want = self->polling == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        /* PQconnectPoll must not be called before the socket is ready */
        if (!s_ready(PQsocket(self->conn), want)) {
            *events = want;
            return S_X_PENDING;
        }
        self->polling = PQconnectPoll(self->conn);
        if (self->polling == PGRES_POLLING_OK)
            return PQsetnonblocking(self->conn, 1) == 0 ? S_X_DONE : S_X_BROKEN;
        if (self->polling == PGRES_POLLING_FAILED)
            return S_X_BROKEN;
    }
}

static const char *s_phase_name(s_phase_t phase)
{
    static const char *const names[] = {
        [S_ENSURE] = "creating daily partitions",
        [S_BEGIN] = "BEGIN",
        [S_SAVEPOINT] = "SAVEPOINT",
        [S_COPY] = "COPY",
        [S_INSERT] = "INSERT from staging",
        [S_RELEASE] = "RELEASE SAVEPOINT",
        [S_UNDO] = "ROLLBACK TO SAVEPOINT",
        [S_STAGE] = "creating the staging tables",
        [S_QDAYS] = "creating daily partitions for quarantine rows",
        [S_COMMIT] = "COMMIT",
        [S_ROLLBACK] = "ROLLBACK",
        [S_PLAIN_COPY] = "COPY",
    };
    return names[phase];
}

vem_pgw_result_t vem_pgwriter_step(vem_pgwriter_t *self, int *fd, short *events,
                                   vem_pgw_stats_t *stats, char *err, size_t errlen)
{
    if (self->op == S_OP_NONE) {
        snprintf(err, errlen, "no operation in progress");
        return VEM_PGW_FAILED;
    }
    while (!self->finished) {
        short ev = POLLIN;
        bool connecting = self->op == S_OP_CONNECT;
        s_xstate_t x = connecting ? s_connect_step(self, &ev) : s_xstep(self, &ev);
        if (x == S_X_PENDING && vem_mono_ms() < self->deadline) {
            *fd = PQsocket(self->conn);
            *events = ev;
            return VEM_PGW_PENDING;
        }
        if (x == S_X_PENDING) {
            /* the deadline passed */
            vem_pgw_result_t r = VEM_PGW_RETRY;
            if (!connecting && self->phase == S_ROLLBACK) {
                r = self->outcome;
            } else {
                snprintf(self->msg, sizeof self->msg,
                         "no answer from PostgreSQL within %d ms while %s; connection closed",
                         self->deadline_ms, connecting ? "connecting" : s_phase_name(self->phase));
            }
            if (!connecting)
                s_cancel(self->conn);
            s_close(self);
            s_finish(self, r);
        } else if (x == S_X_BROKEN) {
            s_msg(self, connecting ? "connecting to PostgreSQL" : s_phase_name(self->phase),
                  PQerrorMessage(self->conn));
            s_close(self);
            s_finish(self, VEM_PGW_RETRY);
        } else if (connecting) {
            s_finish(self, VEM_PGW_OK);
        } else {
            s_advance(self);
        }
    }
    vem_pgw_result_t r = self->outcome;
    if (stats)
        *stats = self->st;
    snprintf(err, errlen, "%s", r == VEM_PGW_OK ? "" : self->msg);
    PQclear(self->res);
    self->res = NULL;
    self->op = S_OP_NONE;
    self->finished = false;
    return r;
}

/* ---- blocking wrappers ------------------------------------------------------------------- */

static vem_pgw_result_t s_drive(vem_pgwriter_t *self, vem_pgw_stats_t *stats, char *err,
                                size_t errlen)
{
    for (;;) {
        int fd;
        short events;
        vem_pgw_result_t r = vem_pgwriter_step(self, &fd, &events, stats, err, errlen);
        if (r != VEM_PGW_PENDING)
            return r;
        struct pollfd p = {.fd = fd, .events = events};
        poll(&p, 1, vem_pgwriter_timeout_ms(self)); /* EINTR or not: step looks again */
    }
}

int vem_pgwriter_connect(vem_pgwriter_t *self, int ahead_days, char *err, size_t errlen)
{
    if (vem_pgwriter_connect_start(self, ahead_days, err, errlen) != 0 ||
        s_drive(self, NULL, err, errlen) != VEM_PGW_OK)
        return -1;
    vem_pgbatch_t none = {0}; /* creates today's partitions and those ahead */
    if (vem_pgwriter_write_start(self, &none, err, errlen) != 0 ||
        s_drive(self, NULL, err, errlen) != VEM_PGW_OK) {
        vem_pgwriter_disconnect(self);
        return -1;
    }
    return 0;
}

vem_pgw_result_t vem_pgwriter_write(vem_pgwriter_t *self, const vem_pgbatch_t *b,
                                    vem_pgw_stats_t *stats, char *err, size_t errlen)
{
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (vem_pgwriter_write_start(self, b, err, errlen) != 0)
        return self->op == S_OP_NONE ? VEM_PGW_RETRY : VEM_PGW_FAILED;
    return s_drive(self, stats, err, errlen);
}

vem_pgw_result_t vem_pgwriter_copy_plain(vem_pgwriter_t *self, const char *copy_sql,
                                         const vem_pgrows_buf_t *rows, char *err, size_t errlen)
{
    if (self->op != S_OP_NONE) {
        snprintf(err, errlen, "copy: an operation is in progress");
        return VEM_PGW_FAILED;
    }
    if (!vem_pgwriter_connected(self)) {
        snprintf(err, errlen, "copy: not connected");
        return VEM_PGW_RETRY;
    }
    s_start_write(self, S_OP_PLAIN);
    self->plain_sql = copy_sql;
    self->plain_rows = rows;
    s_send(self, S_BEGIN, "BEGIN");
    return s_drive(self, NULL, err, errlen);
}
