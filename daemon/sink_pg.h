/* sink_pg — the PostgreSQL sink: turns the workers' records into rows and writes them
 * idempotently.
 *
 * One actor with its own connections (pgwrite.h; pg.connections of them, each writing the
 * rows of the vehicles whose VIN hash falls to it, sink_pg.c). It binds VEM_SINK_PG_ENDPOINT
 * (PULL; every worker PUSHes its records there, records.h), turns each frame into COPY rows
 * (pgrows.h) and adds them to the open batch. A batch is written when it holds batch_rows rows or
 * its oldest message is batch_ms old. When the write fails the batch is kept and retried, after
 * reconnecting if needed, with a backoff doubling from 100 ms to retry_max_s; meanwhile the
 * sink keeps reading and puts what it reads in its spill file (spill.h), so a database outage
 * stops neither intake nor another sink: the spool grows instead. A batch is never dropped.
 *
 * After a commit the sink marks the batch's spool seqs done (ackwin), moves its spool cursor
 * "pg" durably to the contiguous mark, and only then tells ingest that mark as consumer
 * VEM_CONSUMER_PG, so the spool may be trimmed below what PostgreSQL holds.
 *
 * Metrics: vem_sink_rows_total{sink,table}, vem_sink_duplicates_total{sink,table},
 * vem_sink_batches_total{sink}, vem_sink_errors_total{sink,class}, vem_sink_up{sink},
 * vem_sink_lag_seconds{sink} (receipt of the oldest input of the batch being written, to now),
 * vem_sink_spill_bytes{sink}, vem_sink_spilled_total{sink}, vem_sink_cursor_errors_total{sink},
 * vem_stage_seconds{stage="pg"} (receipt to commit). */
#ifndef VEM_SINK_PG_H
#define VEM_SINK_PG_H

#include "metrics.h"

#include <stdatomic.h>
#include <stdint.h>

#define VEM_SINK_PG_ENDPOINT "inproc://vem-sink-pg"

typedef struct {
    void *zctx;
    vem_metrics_t *metrics;
    const char *conninfo;     /* libpq connection string */
    const char *spool_dir;    /* where the "pg" cursor and the spill file live */
    uint64_t spool_first;     /* first seq on disk at start: the cursor never waits below it */
    uint64_t spill_max_bytes; /* bound of the spill file */
    int64_t batch_rows;       /* rows that close a batch */
    int64_t batch_ms;         /* age that closes a batch */
    int queue_hwm;            /* worker messages queued before workers wait */
    int partitions_ahead;     /* days of partitions created ahead */
    int connections;          /* connections writing at once (lanes; rows split by VIN hash) */
    int64_t retry_max_s;      /* longest wait between retries */
    atomic_uint_fast64_t beats;
    atomic_bool up;       /* connected and the last write succeeded */
    atomic_bool stop_now; /* set by main when the drain time is up: give up writing */
    atomic_bool drained;  /* set at the end: everything handed to the sink was committed */
} vem_sink_pg_args_t;

/* Actor body: bind, try to connect (the daemon starts even when PostgreSQL is down; it keeps
 * trying), report ready, write batches until $TERM; then write everything still queued. */
void vem_sink_pg_actor(void *pipe, void *args);

#endif
