/* sink_pg — records to rows, batching, spill, retries, cursor; see sink_pg.h.
 *
 * The sink reads the workers' record messages whatever happens downstream. A message goes into
 * the open batch while the batch has room and no failed batch waits for its retry; otherwise
 * it goes to the end of the spill file, and while the spill holds anything every new message
 * goes there too, so rows keep the order they came in. After each commit the batch is refilled
 * from the front of the spill. Only a full spill stops the reading (and then the workers wait).
 *
 * With pg.connections > 1 the open batch is split into lanes, one per connection: a frame's
 * rows go to the lane of its VIN's hash (so one vehicle's rows keep their order), the other
 * records of the same input with it, records of no vehicle to lane 0. The lanes are written
 * at the same time, each in its own transaction; the inputs of the batch are settled once every
 * lane has committed, and the cursor moves over the contiguous mark of the ackwin, so it never
 * passes an input whose lane has not committed, nor a verdict of the clock that bears the seq
 * of an input before it (s_committed). A lane that fails is retried alone; new messages go to
 * the spill until every lane has written.
 *
 * Thread: one actor. Owns: its PULL and ack PUSH sockets, the lanes (each a writer with its
 * connection, its part of the open batch and the spool seqs it settles), a decode buffer, its
 * ackwin, spill and spool cursor. */
#include "sink_pg.h"

#include "ackwin.h"
#include "actor.h"
#include "clock.h"
#include "hj1239.h"
#include "ingest.h"
#include "log.h"
#include "pgrows.h"
#include "pgwrite.h"
#include "pipeline.h"
#include "records.h"
#include "sinkio.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_BACKOFF_MIN_MS 100
#define S_MAX_SEQ_RUNS   65536 /* settled runs per batch */
#define S_CURSOR_MS      100   /* longest a settled input waits for the cursor while lanes write */
#define S_RECV_BUDGET    4096  /* worker messages taken per turn, so the writes keep their pace */

typedef struct {
    uint64_t seq;
    uint32_t n;
} s_run_t;

/* Spool seqs, as runs of consecutive ones. */
typedef struct {
    s_run_t *runs;
    size_t nruns, cap;
} s_runs_t;

/* One connection and its part of the open batch. */
typedef struct {
    vem_pgwriter_t *writer;
    vem_pgbatch_t batch;
    s_runs_t seqs;      /* spool seqs its part settles */
    int64_t retry_at;   /* monotonic ms of the next attempt after a failure; 0 when none */
    int64_t backoff_ms; /* current wait between attempts */
    int wait_fd;        /* while an attempt is under way: the socket it waits on, or -1 */
    short wait_events;  /* and for what (POLLIN, POLLOUT) */
} s_lane_t;

typedef struct {
    vem_sink_pg_args_t *args;
    vem_sinkio_t io; /* inbox, spill, cursor */
    s_lane_t *lanes;
    unsigned nlanes;
    vem_pgrows_t rows;         /* rows of the record being added */
    vem_hj1239_frame_t *frame; /* decode buffer */
    uint64_t last_lo, last_hi; /* seqs of the last record added ... */
    unsigned last_lane;        /* ... and the lane it went to */
    int64_t opened_ms;         /* monotonic time the batch got its first message; 0 when empty */
    int64_t oldest_us;         /* receipt time of its oldest input */
    int64_t cursor_ms;         /* monotonic time of the last move */
    s_runs_t committed;        /* seqs of the lanes of the open batch that have committed */
    /* metrics */
    vem_counter_t *rows_total[VEM_PGROWS_TABLES], *dups[VEM_PGROWS_TABLES],
        *refused[VEM_PGROWS_TABLES];
    vem_counter_t *batches, *err_retry, *err_failed, *partitions;
    vem_gauge_t *up, *lag, *pending, *spilled;
    vem_histogram_t *latency;
} s_sink_t;

static void s_register(s_sink_t *s, vem_metrics_t *m)
{
    for (unsigned t = 0; t < VEM_PGROWS_TABLES; t++) {
        /* obd_frames rows are counted as the samples they hold, the rows of obd_samples */
        const char *table = t == VEM_PGROWS_SAMPLES ? "obd_samples" : vem_pgrows_table_name(t);
        const char *labels[] = {"sink", "pg", "table", table, NULL};
        s->rows_total[t] = vem_metrics_counter(m, "vem_sink_rows_total",
                                               "Rows a sink made durable (new rows only).", labels);
        s->refused[t] = vem_metrics_counter(
            m, "vem_sink_refused_rows_total",
            "Rows the server refused (a value it rejects): kept as quarantine rows instead.",
            labels);
        s->dups[t] = vem_metrics_counter(
            m, "vem_sink_duplicates_total",
            "Rows a sink found already stored (replays, retried commits): not written twice.",
            labels);
    }
    const char *sink[] = {"sink", "pg", NULL};
    s->batches =
        vem_metrics_counter(m, "vem_sink_batches_total", "Batches a sink committed.", sink);
    const char *retry[] = {"sink", "pg", "class", "retry", NULL};
    s->err_retry = vem_metrics_counter(
        m, "vem_sink_errors_total",
        "Failed sink writes, by class (retry: connection or transient; refused: the server "
        "rejected the rows). Every failed batch is kept and written again.",
        retry);
    const char *failed[] = {"sink", "pg", "class", "refused", NULL};
    s->err_failed =
        vem_metrics_counter(m, "vem_sink_errors_total", "Failed sink writes, by class.", failed);
    s->partitions = vem_metrics_counter(m, "vem_pg_partitions_created_total",
                                        "Daily partitions the sink created for its rows.", NULL);
    s->up = vem_metrics_gauge(m, "vem_sink_up",
                              "1 when the sink is connected and its last write succeeded.", sink);
    s->lag = vem_metrics_gauge(
        m, "vem_sink_lag_seconds",
        "Age of the oldest input waiting in the sink's open batch (0 when it is empty).", sink);
    s->pending =
        vem_metrics_gauge(m, "vem_sink_pending_rows", "Rows in the sink's open batch.", sink);
    s->spilled = vem_metrics_gauge(
        m, "vem_sink_spill_bytes",
        "Bytes a sink holds in its spill file because it cannot write them yet.", sink);
    s->io.spills = vem_metrics_counter(m, "vem_sink_spilled_total",
                                       "Worker messages a sink put in its spill file.", sink);
    s->io.cursor_errors = vem_metrics_counter(
        m, "vem_sink_cursor_errors_total",
        "Spool cursor moves that failed (retried; nothing acknowledged meanwhile).", sink);
    static const double bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 30};
    const char *labels[] = {"stage", "pg", NULL};
    s->latency =
        vem_metrics_histogram(m, "vem_stage_seconds", "Time from receipt to the end of a stage.",
                              labels, bounds, sizeof bounds / sizeof bounds[0]);
}

static void s_set_up(s_sink_t *s, bool up)
{
    atomic_store(&s->args->up, up);
    vem_gauge_set(s->up, up);
}

static const char *s_source_name(uint8_t source)
{
    return source == VEM_SOURCE_GATEWAY    ? "gateway"
           : source == VEM_SOURCE_ROADSIDE ? "roadside"
                                           : "terminal";
}

static const char *s_json_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static double s_json_real(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A violations row from a verdict the workers sent as JSON (records.h). */
static void s_violation_row(s_sink_t *s, const vem_record_t *rec)
{
    json_error_t jerr;
    json_t *o = json_loadb((const char *)rec->data, rec->data_len, 0, &jerr);
    char *evidence = o ? json_dumps(json_object_get(o, "evidence"), JSON_COMPACT) : NULL;
    vem_pgviolation_t v = {.violation_id = s_json_str(o, "violation_id"),
                           .rule = s_json_str(o, "rule"),
                           .clause = s_json_str(o, "clause"),
                           .vin = s_json_str(o, "vin"),
                           .plate = s_json_str(o, "plate"),
                           .plate_color = s_json_str(o, "plate_color"),
                           .unit = s_json_str(o, "unit"),
                           .severity = s_json_str(o, "severity"),
                           .evidence = evidence,
                           .first_us = (int64_t)json_integer_value(json_object_get(o, "first_us")),
                           .last_us = (int64_t)json_integer_value(json_object_get(o, "last_us")),
                           .received_us = rec->received_us,
                           .spool_seq = rec->seq,
                           .emission = json_integer_value(json_object_get(o, "emission")),
                           .measured = s_json_real(o, "measured"),
                           .limit = s_json_real(o, "limit")};
    if (v.violation_id && v.rule && v.clause && v.severity && evidence && (v.vin || v.plate))
        vem_pgrows_violation(&s->rows, &v);
    else /* cannot happen between our own threads; if it does, say so loudly */
        vem_log(VEM_LOG_ERR, "sink-pg", "malformed verdict of input %llu ignored",
                (unsigned long long)rec->seq);
    free(evidence);
    json_decref(o);
}

/* The lane of a vehicle: FNV-1a of its VIN. */
static unsigned s_lane_of_vin(const s_sink_t *s, const uint8_t *vin)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 17; i++)
        h = (h ^ vin[i]) * 16777619u;
    return h % s->nlanes;
}

/* Rows of one record into s->rows; returns the lane of its vehicle (0 when it names none). */
static unsigned s_rows_of(s_sink_t *s, const vem_record_t *rec)
{
    if (rec->kind == VEM_RECORD_FRAME) {
        vem_hj1239_error_t err;
        if (vem_hj1239_decode(rec->data, rec->data_len, VEM_HJ1239_TRUSTED_BCC, s->frame, &err) ==
            VEM_HJ1239_OK) {
            vem_pgrows_frame(&s->rows, s->frame, rec->received_us);
            return s_lane_of_vin(s, s->frame->vin);
        }
        /* the worker accepted it, so this cannot happen; keep the bytes all the same */
        vem_pgrows_quarantine(&s->rows, rec->received_us, rec->seq, s_source_name(rec->source),
                              vem_hj1239_status_name(err.status), err.detail, (int32_t)err.offset,
                              NULL, rec->data, rec->data_len);
    } else if (rec->kind == VEM_RECORD_VIOLATION) {
        s_violation_row(s, rec);
    } else if (rec->kind == VEM_RECORD_READING) {
        /* the reading as sent, with vemd's additions (records.h) laid over it */
        json_error_t jerr;
        json_t *o = json_loadb((const char *)rec->data, rec->data_len, 0, &jerr);
        json_t *adds = json_loadb(rec->detail, rec->detail_len, 0, &jerr);
        if (o && adds)
            json_object_update(o, adds);
        json_decref(adds);
        if (!o || !adds || !vem_pgrows_reading(&s->rows, o, rec->received_us))
            vem_log(VEM_LOG_ERR, "sink-pg", "malformed reading of input %llu ignored",
                    (unsigned long long)rec->seq);
        json_decref(o);
    } else if (rec->kind == VEM_RECORD_QUARANTINE) {
        char detail[VEM_INPUT_DETAIL_MAX + 1];
        size_t n = rec->detail_len < VEM_INPUT_DETAIL_MAX ? rec->detail_len : VEM_INPUT_DETAIL_MAX;
        if (n)
            memcpy(detail, rec->detail, n);
        detail[n] = '\0';
        vem_pgrows_quarantine(&s->rows, rec->received_us, rec->seq, s_source_name(rec->source),
                              vem_records_class_name(rec->status), detail, rec->offset,
                              rec->has_vin ? (const uint8_t *)rec->vin : NULL, rec->data,
                              rec->data_len);
    }
    return 0;
}

/* Moves s->rows into the lane's part of the open batch. */
static void s_merge_rows(s_sink_t *s, s_lane_t *l)
{
    for (unsigned t = 0; t < VEM_PGROWS_TABLES; t++) {
        vem_pgrows_buf_put(&l->batch.rows[t], s->rows.rows[t].data, s->rows.rows[t].len);
        l->batch.nrows[t] += s->rows.nrows[t];
    }
    l->batch.samples += s->rows.samples;
    vem_pgbatch_add_days(&l->batch, (const uint8_t *)s->rows.days, s->rows.ndays);
    vem_pgrows_reset(&s->rows);
}

static void s_add_run(s_runs_t *r, uint64_t seq, uint32_t n)
{
    if (r->nruns && r->runs[r->nruns - 1].seq + r->runs[r->nruns - 1].n == seq) {
        r->runs[r->nruns - 1].n += n;
        return;
    }
    if (r->nruns == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->runs = realloc(r->runs, r->cap * sizeof *r->runs);
        if (!r->runs)
            abort();
    }
    r->runs[r->nruns++] = (s_run_t){seq, n};
}

/* Rows of the whole open batch, a frame's row counting as its samples (the rows they were in
 * obd_samples: pg.batch_rows keeps its meaning and the memory budget its bound); and the runs
 * of seqs it settles. */
static uint64_t s_rows_open(const s_sink_t *s)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < s->nlanes; i++) {
        const vem_pgbatch_t *b = &s->lanes[i].batch;
        n += vem_pgbatch_rows(b) - b->nrows[VEM_PGROWS_SAMPLES] + b->samples;
    }
    return n;
}

static size_t s_runs_open(const s_sink_t *s)
{
    size_t n = 0;
    for (unsigned i = 0; i < s->nlanes; i++)
        n += s->lanes[i].seqs.nruns;
    return n;
}

/* Adds one worker message to the open batch, each record to its lane. The records of one
 * input (a frame and the verdicts beside it settle the same seq) go to one lane, so that the
 * seq is settled by one commit. */
static void s_take(s_sink_t *s, const uint8_t *p, size_t len)
{
    vem_records_hdr_t hdr;
    if (!vem_records_parse(p, len, &hdr)) {
        /* cannot happen between our own threads; if it does, say so loudly */
        vem_log(VEM_LOG_ERR, "sink-pg", "malformed worker message of %zu bytes ignored", len);
        return;
    }
    vem_record_t rec;
    size_t off = 0;
    while (vem_records_next(p, len, &off, &rec)) {
        unsigned lane = s_rows_of(s, &rec);
        uint64_t hi = rec.seq + rec.nseqs;
        if (rec.seq < s->last_hi && hi > s->last_lo)
            lane = s->last_lane; /* the same input as the record before */
        s->last_lo = rec.seq;
        s->last_hi = hi;
        s->last_lane = lane;
        s_merge_rows(s, &s->lanes[lane]);
        /* a verdict settles nothing: its seq is its input's, which that input's own record
         * settles (records.h), perhaps in an earlier message (a verdict of the clock) */
        if (rec.kind != VEM_RECORD_VIOLATION)
            s_add_run(&s->lanes[lane].seqs, rec.seq, rec.nseqs);
    }
    if (s->opened_ms == 0) {
        s->opened_ms = vem_mono_ms();
        s->oldest_us = hdr.oldest_us;
    } else if (hdr.oldest_us < s->oldest_us) {
        s->oldest_us = hdr.oldest_us;
    }
}

/* True when every lane is idle and none waits for a retry. */
static bool s_lanes_idle(const s_sink_t *s)
{
    for (unsigned i = 0; i < s->nlanes; i++)
        if (s->lanes[i].retry_at != 0 || vem_pgwriter_busy(s->lanes[i].writer))
            return false;
    return true;
}

/* True when a message may go into the open batch now (rather than the spill). */
static bool s_room(const s_sink_t *s)
{
    return s_lanes_idle(s) && s_rows_open(s) < (uint64_t)s->args->batch_rows &&
           s_runs_open(s) < S_MAX_SEQ_RUNS;
}

/* Moves the cursor durably to the ackwin's mark, then acknowledges. A failed move acknowledges
 * nothing and is tried again on the next turn. */
static void s_move_cursor(s_sink_t *s)
{
    if (vem_sinkio_move_cursor(&s->io) >= 0)
        s->cursor_ms = vem_mono_ms();
}

/* Up: every lane connected and none waiting for a retry. */
static void s_update_up(s_sink_t *s)
{
    bool up = true;
    for (unsigned i = 0; i < s->nlanes; i++)
        up = up && s->lanes[i].retry_at == 0 && vem_pgwriter_connected(s->lanes[i].writer);
    s_set_up(s, up);
}

/* A failed attempt (to connect or to write) of one lane: keep its rows, wait, try again. */
static void s_failed(s_sink_t *s, s_lane_t *l, vem_pgw_result_t r, const char *err)
{
    vem_counter_add(r == VEM_PGW_FAILED ? s->err_failed : s->err_retry, 1);
    vem_log(VEM_LOG_ERR, "sink-pg", "%s (%s); %llu rows kept for the next attempt", err,
            r == VEM_PGW_FAILED ? "refused by the server" : "will retry",
            (unsigned long long)(vem_pgbatch_rows(&l->batch) - l->batch.nrows[VEM_PGROWS_SAMPLES] +
                                 l->batch.samples));
    s_set_up(s, false);
    l->retry_at = vem_mono_ms() + l->backoff_ms;
    l->backoff_ms =
        vem_backoff_doubled(l->backoff_ms, S_BACKOFF_MIN_MS, s->args->retry_max_s * 1000);
}

/* A lane's part is committed: count it, settle its seqs, empty it. */
static void s_committed(s_sink_t *s, s_lane_t *l, const vem_pgw_stats_t *st)
{
    if (!atomic_load(&s->args->up))
        vem_log(VEM_LOG_NOTICE, "sink-pg", "PostgreSQL writes resumed");
    l->retry_at = 0;
    l->backoff_ms = S_BACKOFF_MIN_MS;
    s_update_up(s);
    vem_counter_add(s->partitions, st->partitions_created);
    for (unsigned t = 0; t < VEM_PGROWS_TABLES; t++) {
        vem_counter_add(s->rows_total[t], st->inserted[t]);
        vem_counter_add(s->dups[t], st->duplicates[t]);
        vem_counter_add(s->refused[t], st->refused[t]);
    }
    vem_counter_add(s->batches, 1);
    int64_t now = vem_now_us();
    if (now > s->oldest_us)
        vem_histogram_observe_ns(s->latency, (uint64_t)(now - s->oldest_us) * 1000);
    for (size_t i = 0; i < l->seqs.nruns; i++)
        s_add_run(&s->committed, l->seqs.runs[i].seq, l->seqs.runs[i].n);
    vem_pgbatch_reset(&l->batch);
    l->seqs.nruns = 0;
    if (s_rows_open(s) == 0 && s_runs_open(s) == 0) {
        /* The whole batch is committed: its seqs are done. Not lane by lane: a verdict of the
         * clock in one lane bears the seq of an input in an earlier message, and the worker puts
         * a checkpoint that ended a trip in place once the next input's records are settled
         * (worker.c, s_ckpt_settle), which must then mean that the verdict's are too, whatever
         * lane the next input went to. Batches are written one after the other (s_room). */
        for (size_t i = 0; i < s->committed.nruns; i++)
            for (uint32_t k = 0; k < s->committed.runs[i].n; k++)
                vem_ackwin_done(s->io.done, s->committed.runs[i].seq + k);
        s->committed.nruns = 0;
        s->opened_ms = 0;
        s_move_cursor(s);
    }
}

/* Starts connecting or writing, lane by lane, when the open batch is due (force: whatever its
 * age) and the lane has no attempt under way or waiting for its retry time. Never blocks. */
static void s_maybe_flush(s_sink_t *s, bool force)
{
    int64_t now = vem_mono_ms();
    bool retrying = false;
    for (unsigned i = 0; i < s->nlanes; i++)
        retrying |= s->lanes[i].retry_at != 0;
    bool due = s->opened_ms != 0 &&
               (force || retrying || s_rows_open(s) >= (uint64_t)s->args->batch_rows ||
                now - s->opened_ms >= s->args->batch_ms || s_runs_open(s) >= S_MAX_SEQ_RUNS);
    for (unsigned i = 0; i < s->nlanes; i++) {
        s_lane_t *l = &s->lanes[i];
        if (vem_pgwriter_busy(l->writer) || (l->retry_at && now < l->retry_at))
            continue;
        char err[512];
        int rc = 0;
        if ((l->seqs.nruns == 0 && vem_pgbatch_rows(&l->batch) == 0) || !due) {
            /* nothing to write: still reconnect, so health tells the truth on a quiet day */
            if (!vem_pgwriter_connected(l->writer))
                rc = vem_pgwriter_connect_start(l->writer, s->args->partitions_ahead, err,
                                                sizeof err);
        } else if (vem_pgwriter_connected(l->writer)) {
            rc = vem_pgwriter_write_start(l->writer, &l->batch, err, sizeof err);
        } else {
            rc = vem_pgwriter_connect_start(l->writer, s->args->partitions_ahead, err, sizeof err);
        }
        if (rc != 0)
            s_failed(s, l, VEM_PGW_RETRY, err);
    }
}

/* Advances the attempts under way; on an outcome, goes on (connected: write) or settles. */
static void s_step(s_sink_t *s)
{
    bool connected_now = false;
    for (unsigned i = 0; i < s->nlanes; i++) {
        s_lane_t *l = &s->lanes[i];
        if (!vem_pgwriter_busy(l->writer))
            continue;
        bool writing = vem_pgwriter_connected(l->writer);
        vem_pgw_stats_t st = {0};
        char err[512];
        l->wait_fd = -1;
        l->wait_events = 0;
        vem_pgw_result_t r =
            vem_pgwriter_step(l->writer, &l->wait_fd, &l->wait_events, &st, err, sizeof err);
        if (r == VEM_PGW_PENDING)
            continue;
        l->wait_fd = -1;
        if (r != VEM_PGW_OK) {
            s_failed(s, l, r, err);
        } else if (writing) {
            s_committed(s, l, &st);
        } else {
            vem_log(VEM_LOG_INFO, "sink-pg", "connected to PostgreSQL (connection %u of %u)", i + 1,
                    s->nlanes);
            l->retry_at = 0;
            s_update_up(s);
            connected_now = true;
        }
    }
    if (connected_now) { /* the rows that were waiting for the connection */
        s_maybe_flush(s, true);
        s_step(s);
    }
}

/* for sinkio, which adds that the spill must be empty for a new message */
static bool s_room_fn(void *arg)
{
    return s_room(arg);
}

static void s_take_fn(void *arg, const uint8_t *p, size_t len)
{
    s_take(arg, p, len);
}

static void s_update_gauges(s_sink_t *s)
{
    vem_gauge_set(s->pending, (int64_t)s_rows_open(s));
    vem_gauge_set(s->lag, s->opened_ms ? (vem_now_us() - s->oldest_us) / 1000000 : 0);
    vem_gauge_set(s->spilled, (int64_t)vem_spill_bytes(s->io.spill));
}

static void s_teardown(s_sink_t *s)
{
    for (unsigned i = 0; s->lanes && i < s->nlanes; i++) {
        vem_pgwriter_destroy(&s->lanes[i].writer);
        vem_pgbatch_free(&s->lanes[i].batch);
        free(s->lanes[i].seqs.runs);
    }
    free(s->lanes);
    free(s->committed.runs);
    vem_pgrows_free(&s->rows);
    free(s->frame);
    vem_sinkio_close(&s->io);
}

/* When the next attempt is due (monotonic ms): the soonest retry of a lane, else the open
 * batch's age limit; -1 when nothing is open. */
static int64_t s_next_due(const s_sink_t *s)
{
    if (s->opened_ms == 0)
        return -1;
    int64_t retry = 0;
    for (unsigned i = 0; i < s->nlanes; i++)
        if (s->lanes[i].retry_at && (retry == 0 || s->lanes[i].retry_at < retry))
            retry = s->lanes[i].retry_at;
    return retry ? retry : s->opened_ms + s->args->batch_ms;
}

void vem_sink_pg_actor(void *pipe, void *args_)
{
    vem_sink_pg_args_t *a = args_;
    s_sink_t s = {.args = a, .nlanes = a->connections > 0 ? (unsigned)a->connections : 1};
    char err[512];
    vem_sinkio_args_t io = {.zctx = a->zctx,
                            .log = "sink-pg",
                            .fns = {s_room_fn, s_take_fn, &s},
                            .consumer = VEM_CONSUMER_PG,
                            .name = "pg",
                            .spool_dir = a->spool_dir,
                            .spool_first = a->spool_first,
                            .spill_max_bytes = a->spill_max_bytes,
                            .endpoint = VEM_SINK_PG_ENDPOINT,
                            .queue_hwm = a->queue_hwm};
    if (vem_sinkio_open(&s.io, &io, err, sizeof err) != 0) {
        s_teardown(&s);
        vem_actor_ready(pipe, err);
        return;
    }
    s.frame = malloc(sizeof *s.frame);
    s.lanes = calloc(s.nlanes, sizeof *s.lanes);
    if (!s.frame || !s.lanes)
        abort();
    s_register(&s, a->metrics);
    s_set_up(&s, false);
    for (unsigned i = 0; i < s.nlanes; i++) {
        s_lane_t *l = &s.lanes[i];
        l->writer = vem_pgwriter_new(a->conninfo);
        l->backoff_ms = S_BACKOFF_MIN_MS;
        l->wait_fd = -1;
        if (vem_pgwriter_connect_start(l->writer, a->partitions_ahead, err, sizeof err) != 0)
            vem_log(VEM_LOG_ERR, "sink-pg", "%s; rows wait and the sink keeps trying", err);
    }
    s_step(&s);
    vem_actor_ready(pipe, NULL);

    zmq_pollitem_t *items = calloc(2 + s.nlanes, sizeof *items);
    s_lane_t **idle = calloc(2 + s.nlanes, sizeof *idle); /* item -> lane of an idle socket */
    if (!items || !idle)
        abort();
    for (;;) {
        atomic_fetch_add_explicit(&a->beats, 1, memory_order_relaxed);
        s_step(&s);
        vem_sinkio_unspill(&s.io);
        s_maybe_flush(&s, false);
        s_step(&s);
        if (vem_sinkio_behind(&s.io) &&
            (s_lanes_idle(&s) || vem_mono_ms() - s.cursor_ms >= S_CURSOR_MS))
            s_move_cursor(&s);
        s_update_gauges(&s);
        long timeout = 1000;
        /* While a message waits for room (spill full), the queue is not watched: it would
         * wake us at once, every turn. The next attempt (retry, batch due) comes by timeout. */
        items[0] = (zmq_pollitem_t){pipe, 0, ZMQ_POLLIN, 0};
        items[1] = (zmq_pollitem_t){s.io.pull, 0, s.io.holding ? 0 : ZMQ_POLLIN, 0};
        int n = 2;
        bool busy = false;
        for (unsigned i = 0; i < s.nlanes; i++) {
            s_lane_t *l = &s.lanes[i];
            idle[n] = NULL;
            if (vem_pgwriter_busy(l->writer)) {
                busy = true;
                if (l->wait_fd >= 0)
                    items[n++] =
                        (zmq_pollitem_t){NULL, l->wait_fd,
                                         (short)((l->wait_events & POLLIN ? ZMQ_POLLIN : 0) |
                                                 (l->wait_events & POLLOUT ? ZMQ_POLLOUT : 0)),
                                         0};
                int left = vem_pgwriter_timeout_ms(l->writer);
                if (left >= 0 && left < timeout)
                    timeout = left;
            } else if (vem_pgwriter_idle_fd(l->writer) >= 0) {
                /* a server that goes away while we have nothing to write */
                idle[n] = l;
                items[n++] = (zmq_pollitem_t){NULL, vem_pgwriter_idle_fd(l->writer), ZMQ_POLLIN, 0};
            }
        }
        int64_t due = s_next_due(&s);
        if (!busy && due >= 0) {
            int64_t wait = due - vem_mono_ms();
            timeout = wait < 0 ? 0 : wait < 1000 ? (long)wait : 1000;
        }
        if (zmq_poll(items, n, timeout) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if ((items[0].revents & ZMQ_POLLIN) && vem_actor_should_stop(pipe))
            break;
        if ((items[1].revents & ZMQ_POLLIN) || s.io.holding)
            vem_sinkio_read(&s.io, S_RECV_BUDGET);
        for (int k = 2; k < n; k++) {
            s_lane_t *l = idle[k];
            if (l && (items[k].revents & ZMQ_POLLIN) && !vem_pgwriter_idle_check(l->writer)) {
                vem_log(VEM_LOG_ERR, "sink-pg", "PostgreSQL closed the connection; reconnecting");
                s_set_up(&s, false);
                l->retry_at = vem_mono_ms() + l->backoff_ms;
            }
        }
    }
    free(items);
    free(idle);
    /* Drain: the workers stopped before us, so what is queued and spilled is all there is.
     * Write it while we can; main's drain timeout bounds how long we may keep trying, and what
     * is not written is replayed from the spool at the next start. */
    struct pollfd *pfds = calloc(s.nlanes, sizeof *pfds);
    if (!pfds)
        abort();
    while (!atomic_load(&a->stop_now)) {
        s_step(&s);
        nfds_t np = 0;
        int left = 200;
        for (unsigned i = 0; i < s.nlanes; i++) {
            s_lane_t *l = &s.lanes[i];
            if (!vem_pgwriter_busy(l->writer))
                continue;
            if (l->wait_fd >= 0)
                pfds[np++] = (struct pollfd){.fd = l->wait_fd, .events = l->wait_events};
            int t = vem_pgwriter_timeout_ms(l->writer);
            if (t >= 0 && t < left)
                left = t;
        }
        if (!s_lanes_idle(&s)) {
            bool busy = false;
            for (unsigned i = 0; i < s.nlanes; i++)
                busy |= vem_pgwriter_busy(s.lanes[i].writer);
            if (busy || vem_mono_ms() < s_next_due(&s)) {
                poll(np ? pfds : NULL, np, busy ? left : 50);
                continue;
            }
        }
        for (unsigned i = 0; i < s.nlanes; i++)
            s.lanes[i].retry_at = 0;
        vem_sinkio_unspill(&s.io);
        vem_sinkio_read(&s.io, S_RECV_BUDGET);
        if (s.opened_ms == 0 && vem_spill_count(s.io.spill) == 0 && !s.io.holding) {
            atomic_store(&a->drained, true);
            break; /* everything written */
        }
        s_maybe_flush(&s, true);
        s_step(&s);
    }
    free(pfds);
    if (vem_sinkio_behind(&s.io))
        s_move_cursor(&s);
    s_teardown(&s);
}
