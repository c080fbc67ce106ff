/* pgwrite — one PostgreSQL connection that writes batches of rows idempotently.
 *
 * A batch is the binary-COPY rows of several tables (pgrows.h). It is written in one
 * transaction; each table first by a direct COPY into the table, which is the fastest path and
 * the normal case, since workers already drop repeated frames. When that COPY meets a row that
 * is already there (unique_violation: a replay after a restart, or a commit whose outcome was
 * lost with the connection), the table's part is rolled back to a savepoint and written again
 * through a temporary staging table with INSERT ... ON CONFLICT DO NOTHING. Either way a batch
 * is applied once, however often it is retried.
 *
 * A row the server refuses (a data exception, class 22, or an integrity error other than a
 * duplicate, such as a CHECK or NOT NULL violation) must not hold back the rows around it: the
 * table's rows are split in halves, each half under a savepoint of its own, down to the single
 * rows that fail alone. Every other row is stored; each refused row becomes a quarantine row
 * (error_class "refused", the server's message as detail, the row's COPY bytes as raw) in the
 * same transaction, and the batch commits.
 *
 * Before copying, the daily partitions of the batch's days and of yesterday .. today + ahead
 * days are created (vem_ensure_partitions, remembered per connection). Only COPY and fixed
 * statements with parameters reach the server.
 *
 * Nothing here waits for the server unless asked to. An operation (connecting, or writing a
 * batch) is started with a _start function and advanced with vem_pgwriter_step whenever the
 * socket it names is ready, so a poll loop stays responsive; vem_pgwriter_connect, _write and
 * _copy_plain are the same operations driven to the end with poll(2). Limits: the server ends
 * a statement after statement_timeout and a lock wait after lock_timeout (both set at connect);
 * the writer gives up when connecting, or any one statement, takes longer than its deadline:
 * it asks the server to cancel, closes the connection and reports VEM_PGW_RETRY. (A deadline
 * per statement rather than per batch, so that isolating many refused rows, which takes many
 * statements, can finish.) Host names are resolved while connecting, which may block: give
 * hostaddr to avoid it. Server notices go to the log (component "pg").
 *
 * Used by the PostgreSQL sink actor and by bench-pg; owned by one thread. */
#ifndef VEM_PGWRITE_H
#define VEM_PGWRITE_H

#include "pgrows.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vem_pgwriter vem_pgwriter_t;

/* Rows of several tables waiting to be written, and the days they fall on. */
typedef struct {
    vem_pgrows_buf_t rows[VEM_PGROWS_TABLES];
    uint64_t nrows[VEM_PGROWS_TABLES];
    uint64_t samples; /* in the obd_frames rows (the sink's batch size counts them) */
    int32_t *days;    /* distinct */
    size_t ndays, days_cap;
} vem_pgbatch_t;

/* Adds the days (unaligned int32 array) that are not there yet. */
void vem_pgbatch_add_days(vem_pgbatch_t *b, const uint8_t *days, size_t n);

/* Total rows. */
uint64_t vem_pgbatch_rows(const vem_pgbatch_t *b);

/* Empties the batch, keeping its memory; vem_pgbatch_free releases it. */
void vem_pgbatch_reset(vem_pgbatch_t *b);
void vem_pgbatch_free(vem_pgbatch_t *b);

/* Outcome of an operation. */
typedef enum {
    VEM_PGW_PENDING = 1, /* not finished: wait for the socket vem_pgwriter_step names */
    VEM_PGW_OK = 0,
    VEM_PGW_RETRY = -1,  /* connection lost or refused, server shutting down, a timeout, or a
                          * transient error: the batch was not applied (or, if its commit was
                          * in flight, will be harmless to apply again); retry, reconnecting
                          * first when vem_pgwriter_connected says false */
    VEM_PGW_FAILED = -2, /* the server refused the batch as a whole (e.g. a table or column is
                          * missing): retrying the same rows fails until the database is fixed */
} vem_pgw_result_t;

/* Row figures per table; for VEM_PGROWS_SAMPLES (obd_frames) they count the frames' samples, so
 * they read as rows of obd_samples did. */
typedef struct {
    uint64_t
        inserted[VEM_PGROWS_TABLES]; /* new rows (quarantine: also those made of refused rows) */
    uint64_t duplicates[VEM_PGROWS_TABLES]; /* rows that were already there */
    uint64_t refused[VEM_PGROWS_TABLES];    /* rows the server refused, stored as quarantine rows */
    unsigned partitions_created;
} vem_pgw_stats_t;

/* Defaults of vem_pgwriter_set_timeouts. */
#define VEM_PGW_DEADLINE_MS  30000
#define VEM_PGW_STATEMENT_MS 30000
#define VEM_PGW_LOCK_MS      5000

/* A writer for conninfo (libpq connection string); does not connect yet. */
vem_pgwriter_t *vem_pgwriter_new(const char *conninfo);

/* Frees the writer and closes its connection; accepts NULL; sets *self_p to NULL. */
void vem_pgwriter_destroy(vem_pgwriter_t **self_p);

/* Limits in milliseconds (0 = none for the server's): deadline for connecting and for each
 * statement (client side, from the next operation on); statement_timeout and lock_timeout of
 * the server session (from the next connect). */
void vem_pgwriter_set_timeouts(vem_pgwriter_t *self, int deadline_ms, int statement_ms,
                               int lock_ms);

/* ---- non-blocking operations -------------------------------------------------------------- */

/* Starts (re)connecting, closing the current connection; the writes that follow create the
 * partitions of yesterday .. today + ahead_days (Beijing days). 0, or -1 with err when an
 * operation is in progress. Failures to connect are reported by vem_pgwriter_step. */
int vem_pgwriter_connect_start(vem_pgwriter_t *self, int ahead_days, char *err, size_t errlen);

/* Starts writing batch in one transaction. The writer reads the batch until the write ends:
 * the caller keeps it unchanged until then. 0, or -1 with err when not connected or busy. */
int vem_pgwriter_write_start(vem_pgwriter_t *self, const vem_pgbatch_t *batch, char *err,
                             size_t errlen);

/* Advances the operation in progress as far as it can without waiting. VEM_PGW_PENDING: poll
 * *fd for *events (POLLIN and/or POLLOUT; the descriptor may change between calls) and call
 * again when it is ready or vem_pgwriter_timeout_ms has passed; spurious calls are harmless.
 * Anything else is the operation's outcome, with err set unless OK and, for a write, stats
 * (may be NULL) filled; the writer is then idle. */
vem_pgw_result_t vem_pgwriter_step(vem_pgwriter_t *self, int *fd, short *events,
                                   vem_pgw_stats_t *stats, char *err, size_t errlen);

/* While connected and idle: the connection's socket, to poll for POLLIN (a server that goes
 * away says so, or closes it); -1 otherwise. */
int vem_pgwriter_idle_fd(const vem_pgwriter_t *self);

/* Reads what arrived on an idle connection (notices, a shutdown message, EOF); false, with
 * the connection closed, when it is no longer usable. */
bool vem_pgwriter_idle_check(vem_pgwriter_t *self);

/* True from a _start until vem_pgwriter_step reports the outcome. */
bool vem_pgwriter_busy(const vem_pgwriter_t *self);

/* Milliseconds until the operation in progress passes its deadline (0 when it has; -1 when
 * idle): the longest a poll loop should sleep before calling vem_pgwriter_step again. */
int vem_pgwriter_timeout_ms(const vem_pgwriter_t *self);

/* ---- blocking operations (the same, driven with poll(2)) ---------------------------------- */

/* (Re)connects and creates the partitions of yesterday .. today + ahead_days (Beijing days).
 * 0, or -1 with the reason in err. */
int vem_pgwriter_connect(vem_pgwriter_t *self, int ahead_days, char *err, size_t errlen);

/* Writes the batch in one transaction; stats (may be NULL) gets the row figures. */
vem_pgw_result_t vem_pgwriter_write(vem_pgwriter_t *self, const vem_pgbatch_t *batch,
                                    vem_pgw_stats_t *stats, char *err, size_t errlen);

/* Plain COPY of one table's rows straight into `table` (no savepoint, no idempotence), in a
 * transaction of its own: the ceiling bench-pg compares the sink against. */
vem_pgw_result_t vem_pgwriter_copy_plain(vem_pgwriter_t *self, const char *copy_sql,
                                         const vem_pgrows_buf_t *rows, char *err, size_t errlen);

/* ---- connection ----------------------------------------------------------------------------- */

/* True while the connection is usable (connected, no operation lost it). */
bool vem_pgwriter_connected(const vem_pgwriter_t *self);

/* Closes the connection, abandoning any operation in progress (its transaction is not
 * committed); the next write needs a connect. */
void vem_pgwriter_disconnect(vem_pgwriter_t *self);

/* The libpq connection, for callers that run their own statements while the writer is idle
 * (NULL when not connected). It is in non-blocking mode. */
void *vem_pgwriter_conn(vem_pgwriter_t *self);

#endif
