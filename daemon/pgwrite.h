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
 * Before copying, the daily partitions of the batch's days are created (vem_ensure_partitions,
 * remembered per connection). Only COPY and fixed statements with parameters reach the server.
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
    vem_buf_t rows[VEM_PG_TABLES];
    uint64_t nrows[VEM_PG_TABLES];
    int32_t *days; /* distinct */
    size_t ndays, days_cap;
} vem_pgbatch_t;

/* Adds the days (unaligned int32 array) that are not there yet. */
void vem_pgbatch_add_days(vem_pgbatch_t *b, const uint8_t *days, size_t n);

/* Total rows. */
uint64_t vem_pgbatch_rows(const vem_pgbatch_t *b);

/* Empties the batch, keeping its memory; vem_pgbatch_free releases it. */
void vem_pgbatch_reset(vem_pgbatch_t *b);
void vem_pgbatch_free(vem_pgbatch_t *b);

/* Outcome of a write. */
typedef enum {
    VEM_PGW_OK = 0,
    VEM_PGW_RETRY = -1,  /* connection lost, server shutting down, or a transient error: the
                          * batch was not applied (or, if its commit was in flight, will be
                          * harmless to apply again); reconnect and retry */
    VEM_PGW_FAILED = -2, /* the server refused the batch itself (e.g. a value it rejects):
                          * retrying the same rows will fail again */
} vem_pgw_result_t;

typedef struct {
    uint64_t inserted[VEM_PG_TABLES];   /* new rows */
    uint64_t duplicates[VEM_PG_TABLES]; /* rows that were already there */
    unsigned partitions_created;
} vem_pgw_stats_t;

/* A writer for conninfo (libpq connection string); does not connect yet. */
vem_pgwriter_t *vem_pgwriter_new(const char *conninfo);

/* Frees the writer and closes its connection; accepts NULL; sets *self_p to NULL. */
void vem_pgwriter_destroy(vem_pgwriter_t **self_p);

/* (Re)connects and creates the partitions of yesterday .. today + ahead_days (Beijing days).
 * 0, or -1 with the server's message in err. */
int vem_pgwriter_connect(vem_pgwriter_t *self, int ahead_days, char *err, size_t errlen);

/* True while the connection is usable. */
bool vem_pgwriter_connected(const vem_pgwriter_t *self);

/* Closes the connection (the next write needs vem_pgwriter_connect). */
void vem_pgwriter_disconnect(vem_pgwriter_t *self);

/* The libpq connection, for callers that run their own statements (NULL when not connected). */
void *vem_pgwriter_conn(vem_pgwriter_t *self);

/* Writes the batch in one transaction; stats (may be NULL) gets the row figures. */
vem_pgw_result_t vem_pgwriter_write(vem_pgwriter_t *self, const vem_pgbatch_t *batch,
                                    vem_pgw_stats_t *stats, char *err, size_t errlen);

/* Plain COPY of one table's rows straight into `table` (no savepoint, no idempotence), in a
 * transaction of its own: the ceiling bench-pg compares the sink against. */
vem_pgw_result_t vem_pgwriter_copy_plain(vem_pgwriter_t *self, const char *copy_sql,
                                         const vem_buf_t *rows, char *err, size_t errlen);

#endif
