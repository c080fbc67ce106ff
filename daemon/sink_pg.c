/* sink_pg — records to rows, batching, spill, retries, cursor; see sink_pg.h.
 *
 * The sink reads the workers' record messages whatever happens downstream. A message goes into
 * the open batch while the batch has room and no failed batch waits for its retry; otherwise
 * it goes to the end of the spill file, and while the spill holds anything every new message
 * goes there too, so rows keep the order they came in. After each commit the batch is refilled
 * from the front of the spill. Only a full spill stops the reading (and then the workers wait).
 *
 * Thread: one actor. Owns: its PULL and ack PUSH sockets, the writer (connection), the open
 * batch with the spool seqs it settles, a decode buffer, its ackwin, spill and spool cursor. */
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
#include "spill.h"
#include "spool.h"

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

typedef struct {
    uint64_t seq;
    uint32_t n;
} s_run_t;

typedef struct {
    vem_sink_pg_args_t *args;
    void *pull, *acks;
    vem_pgwriter_t *writer;
    vem_pgbatch_t batch;
    vem_pgrows_t rows;         /* rows of the message being added */
    vem_hj1239_frame_t *frame; /* decode buffer */
    s_run_t *runs;             /* spool seqs the open batch settles */
    size_t nruns, runs_cap;
    int64_t opened_ms;  /* monotonic time the batch got its first message; 0 when empty */
    int64_t oldest_us;  /* receipt time of its oldest input */
    int64_t retry_at;   /* monotonic ms of the next attempt after a failure; 0 when none */
    int64_t backoff_ms; /* current wait between attempts */
    int wait_fd;        /* while an attempt is under way: the socket it waits on, or -1 */
    short wait_events;  /* and for what (POLLIN, POLLOUT) */
    vem_ackwin_t *done;
    vem_spool_cursor_t *cursor;
    uint64_t committed; /* the cursor is durable here */
    uint64_t acked;     /* ingest was told this mark */
    vem_spill_t *spill;
    uint8_t *spill_buf;
    size_t spill_cap;
    zmq_msg_t held; /* a message neither the batch nor the full spill could take */
    bool holding;
    /* metrics */
    vem_counter_t *rows_total[VEM_PG_TABLES], *dups[VEM_PG_TABLES], *refused[VEM_PG_TABLES];
    vem_counter_t *batches, *err_retry, *err_failed, *partitions, *spills, *cursor_errors;
    vem_gauge_t *up, *lag, *pending, *spilled;
    vem_histogram_t *latency;
} s_sink_t;

static void s_register(s_sink_t *s, vem_metrics_t *m)
{
    for (unsigned t = 0; t < VEM_PG_TABLES; t++) {
        /* obd_frames rows are counted as the samples they hold, the rows of obd_samples */
        const char *table = t == VEM_PG_SAMPLES ? "obd_samples" : vem_pg_table_name(t);
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
    s->spills = vem_metrics_counter(m, "vem_sink_spilled_total",
                                    "Worker messages a sink put in its spill file.", sink);
    s->cursor_errors = vem_metrics_counter(
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
                           .unit = s_json_str(o, "unit"),
                           .severity = s_json_str(o, "severity"),
                           .evidence = evidence,
                           .first_us = (int64_t)json_integer_value(json_object_get(o, "first_us")),
                           .last_us = (int64_t)json_integer_value(json_object_get(o, "last_us")),
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

/* Rows of one record into s->rows. */
static void s_rows_of(s_sink_t *s, const vem_record_t *rec)
{
    if (rec->kind == VEM_RECORD_FRAME) {
        vem_hj1239_error_t err;
        if (vem_hj1239_decode(rec->data, rec->data_len, VEM_HJ1239_TRUSTED_BCC, s->frame, &err) ==
            VEM_HJ1239_OK) {
            vem_pgrows_frame(&s->rows, s->frame, rec->received_us);
            return;
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
}

/* Moves s->rows into the open batch. */
static void s_merge_rows(s_sink_t *s)
{
    for (unsigned t = 0; t < VEM_PG_TABLES; t++) {
        vem_buf_put(&s->batch.rows[t], s->rows.rows[t].data, s->rows.rows[t].len);
        s->batch.nrows[t] += s->rows.nrows[t];
    }
    vem_pgbatch_add_days(&s->batch, (const uint8_t *)s->rows.days, s->rows.ndays);
    vem_pgrows_reset(&s->rows);
}

static void s_add_run(s_sink_t *s, uint64_t seq, uint32_t n)
{
    if (s->nruns && s->runs[s->nruns - 1].seq + s->runs[s->nruns - 1].n == seq) {
        s->runs[s->nruns - 1].n += n;
        return;
    }
    if (s->nruns == s->runs_cap) {
        s->runs_cap = s->runs_cap ? s->runs_cap * 2 : 1024;
        s->runs = realloc(s->runs, s->runs_cap * sizeof *s->runs);
        if (!s->runs)
            abort();
    }
    s->runs[s->nruns++] = (s_run_t){seq, n};
}

/* Adds one worker message to the open batch. */
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
        s_rows_of(s, &rec);
        s_add_run(s, rec.seq, rec.nseqs);
        if (vem_pgrows_full(&s->rows))
            s_merge_rows(s);
    }
    s_merge_rows(s);
    if (s->opened_ms == 0) {
        s->opened_ms = vem_mono_ms();
        s->oldest_us = hdr.oldest_us;
    } else if (hdr.oldest_us < s->oldest_us) {
        s->oldest_us = hdr.oldest_us;
    }
}

/* True when a message may go into the open batch now (rather than the spill). */
static bool s_accepting(const s_sink_t *s)
{
    return s->retry_at == 0 && !vem_pgwriter_busy(s->writer) && vem_spill_count(s->spill) == 0 &&
           vem_pgbatch_rows(&s->batch) < (uint64_t)s->args->batch_rows && s->nruns < S_MAX_SEQ_RUNS;
}

/* Tells ingest the cursor's position; a lost message is made good by the next. */
static void s_ack(s_sink_t *s)
{
    if (s->acked == s->committed)
        return;
    vem_ack_t ack = {.consumer = VEM_CONSUMER_PG, .mark = s->committed};
    if (zmq_send(s->acks, &ack, sizeof ack, ZMQ_DONTWAIT) == (int)sizeof ack)
        s->acked = s->committed;
}

/* Moves the cursor durably to the ackwin's mark, then acknowledges. A failed move acknowledges
 * nothing and is tried again on the next turn. */
static void s_move_cursor(s_sink_t *s)
{
    uint64_t mark = vem_ackwin_mark(s->done);
    if (mark > s->committed) {
        if (vem_spool_cursor_commit(s->cursor, mark) != 0) {
            vem_counter_add(s->cursor_errors, 1);
            vem_log(VEM_LOG_ERR, "sink-pg", "cannot move the spool cursor to %llu: %s",
                    (unsigned long long)mark, strerror(errno));
            return;
        }
        s->committed = mark;
    }
    s_ack(s);
}

/* Marks the committed seqs done and moves the cursor. */
static void s_settle(s_sink_t *s)
{
    for (size_t i = 0; i < s->nruns; i++)
        for (uint32_t k = 0; k < s->runs[i].n; k++)
            vem_ackwin_done(s->done, s->runs[i].seq + k);
    s_move_cursor(s);
}

/* A failed attempt (to connect or to write): keep the batch, wait, try again. */
static void s_failed(s_sink_t *s, vem_pgw_result_t r, const char *err)
{
    vem_counter_add(r == VEM_PGW_FAILED ? s->err_failed : s->err_retry, 1);
    vem_log(VEM_LOG_ERR, "sink-pg", "%s (%s); %llu rows kept for the next attempt", err,
            r == VEM_PGW_FAILED ? "refused by the server" : "will retry",
            (unsigned long long)vem_pgbatch_rows(&s->batch));
    s_set_up(s, false);
    s->retry_at = vem_mono_ms() + s->backoff_ms;
    s->backoff_ms *= 2;
    if (s->backoff_ms > s->args->retry_max_s * 1000)
        s->backoff_ms = s->args->retry_max_s * 1000;
}

/* The open batch is committed: count it, settle its seqs, empty it. */
static void s_committed(s_sink_t *s, const vem_pgw_stats_t *st)
{
    if (!atomic_load(&s->args->up))
        vem_log(VEM_LOG_NOTICE, "sink-pg", "PostgreSQL writes resumed");
    s_set_up(s, true);
    s->retry_at = 0;
    s->backoff_ms = S_BACKOFF_MIN_MS;
    vem_counter_add(s->partitions, st->partitions_created);
    for (unsigned t = 0; t < VEM_PG_TABLES; t++) {
        vem_counter_add(s->rows_total[t], st->inserted[t]);
        vem_counter_add(s->dups[t], st->duplicates[t]);
        vem_counter_add(s->refused[t], st->refused[t]);
    }
    vem_counter_add(s->batches, 1);
    int64_t now = vem_now_us();
    if (now > s->oldest_us)
        vem_histogram_observe_ns(s->latency, (uint64_t)(now - s->oldest_us) * 1000);
    s_settle(s);
    vem_pgbatch_reset(&s->batch);
    s->nruns = 0;
    s->opened_ms = 0;
}

/* Starts connecting or writing when the open batch is due (force: whatever its age) and no
 * attempt is under way or waiting for its retry time. Never blocks. */
static void s_maybe_flush(s_sink_t *s, bool force)
{
    int64_t now = vem_mono_ms();
    if (vem_pgwriter_busy(s->writer) || (s->retry_at && now < s->retry_at))
        return;
    char err[512];
    if (s->opened_ms == 0) {
        /* nothing to write: still reconnect, so health tells the truth on a quiet day */
        if (!vem_pgwriter_connected(s->writer) &&
            vem_pgwriter_connect_start(s->writer, s->args->partitions_ahead, err, sizeof err) != 0)
            s_failed(s, VEM_PGW_RETRY, err);
        return;
    }
    bool due = force || s->retry_at ||
               vem_pgbatch_rows(&s->batch) >= (uint64_t)s->args->batch_rows ||
               now - s->opened_ms >= s->args->batch_ms || s->nruns >= S_MAX_SEQ_RUNS;
    if (!due)
        return;
    int rc =
        vem_pgwriter_connected(s->writer)
            ? vem_pgwriter_write_start(s->writer, &s->batch, err, sizeof err)
            : vem_pgwriter_connect_start(s->writer, s->args->partitions_ahead, err, sizeof err);
    if (rc != 0)
        s_failed(s, VEM_PGW_RETRY, err);
}

/* Advances the attempt under way; on its outcome, goes on (connected: write) or settles. */
static void s_step(s_sink_t *s)
{
    if (!vem_pgwriter_busy(s->writer))
        return;
    bool writing = vem_pgwriter_connected(s->writer);
    vem_pgw_stats_t st = {0};
    char err[512];
    s->wait_fd = -1;
    s->wait_events = 0;
    vem_pgw_result_t r =
        vem_pgwriter_step(s->writer, &s->wait_fd, &s->wait_events, &st, err, sizeof err);
    if (r == VEM_PGW_PENDING)
        return;
    s->wait_fd = -1;
    if (r != VEM_PGW_OK) {
        s_failed(s, r, err);
        return;
    }
    if (writing) {
        s_committed(s, &st);
    } else {
        vem_log(VEM_LOG_INFO, "sink-pg", "connected to PostgreSQL");
        s_set_up(s, true);
        s->retry_at = 0;
        s_maybe_flush(s, true); /* the batch that was waiting for the connection */
        s_step(s);
    }
}

/* Takes one message: into the batch when it can, else to the spill; false when the spill is
 * full too (the caller keeps the message and stops reading). */
static bool s_place(s_sink_t *s, zmq_msg_t *msg)
{
    if (s_accepting(s)) {
        s_take(s, zmq_msg_data(msg), zmq_msg_size(msg));
        return true;
    }
    if (vem_spill_push(s->spill, zmq_msg_data(msg), zmq_msg_size(msg)) != 0) {
        if (errno != ENOSPC)
            vem_log(VEM_LOG_ERR, "sink-pg", "spill: %s; the workers wait", strerror(errno));
        return false;
    }
    vem_counter_add(s->spills, 1);
    return true;
}

/* Refills the open batch from the front of the spill while it accepts. */
static void s_unspill(s_sink_t *s)
{
    while (vem_spill_count(s->spill) && s->retry_at == 0 && !vem_pgwriter_busy(s->writer) &&
           vem_pgbatch_rows(&s->batch) < (uint64_t)s->args->batch_rows &&
           s->nruns < S_MAX_SEQ_RUNS) {
        size_t len = vem_spill_peek(s->spill);
        if (len > s->spill_cap) {
            s->spill_buf = realloc(s->spill_buf, len);
            if (!s->spill_buf)
                abort();
            s->spill_cap = len;
        }
        if (len == 0 || vem_spill_pop(s->spill, s->spill_buf) != 0) {
            vem_log(VEM_LOG_ERR, "sink-pg", "reading the spill: %s", strerror(errno));
            return;
        }
        s_take(s, s->spill_buf, len);
    }
}

/* Reads waiting worker messages: into the batch or the spill, until neither can take one. */
static void s_read(s_sink_t *s)
{
    if (s->holding) {
        if (!s_place(s, &s->held))
            return;
        zmq_msg_close(&s->held);
        s->holding = false;
    }
    for (unsigned n = 0; n < 4096; n++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, s->pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        if (!s_place(s, &msg)) {
            zmq_msg_init(&s->held); /* move closes its destination first */
            zmq_msg_move(&s->held, &msg);
            zmq_msg_close(&msg);
            s->holding = true;
            return;
        }
        zmq_msg_close(&msg);
    }
}

static void s_update_gauges(s_sink_t *s)
{
    vem_gauge_set(s->pending, (int64_t)vem_pgbatch_rows(&s->batch));
    vem_gauge_set(s->lag, s->opened_ms ? (vem_now_us() - s->oldest_us) / 1000000 : 0);
    vem_gauge_set(s->spilled, (int64_t)vem_spill_bytes(s->spill));
}

static void s_teardown(s_sink_t *s)
{
    if (s->pull)
        zmq_close(s->pull);
    if (s->acks)
        zmq_close(s->acks);
    if (s->holding)
        zmq_msg_close(&s->held);
    vem_pgwriter_destroy(&s->writer);
    vem_pgbatch_free(&s->batch);
    vem_pgrows_free(&s->rows);
    free(s->frame);
    free(s->runs);
    free(s->spill_buf);
    vem_spill_destroy(&s->spill);
    vem_ackwin_destroy(&s->done);
    vem_spool_cursor_destroy(&s->cursor);
}

void vem_sink_pg_actor(void *pipe, void *args_)
{
    vem_sink_pg_args_t *a = args_;
    s_sink_t s = {.args = a, .backoff_ms = S_BACKOFF_MIN_MS, .wait_fd = -1};
    char err[512];
    int zero = 0;
    s.cursor = vem_spool_cursor_open(a->spool_dir, "pg", err, sizeof err);
    if (!s.cursor) {
        vem_actor_ready(pipe, err);
        return;
    }
    /* Records below the spool's first are gone from it and will never come: start after them. */
    s.committed = vem_spool_cursor_get(s.cursor);
    if (a->spool_first > 0 && s.committed < a->spool_first - 1)
        s.committed = a->spool_first - 1;
    s.done = vem_ackwin_new(s.committed);
    char path[4200];
    snprintf(path, sizeof path, "%s/spill.pg", a->spool_dir);
    s.spill = vem_spill_open(path, a->spill_max_bytes, err, sizeof err);
    if (!s.spill) {
        s_teardown(&s);
        vem_actor_ready(pipe, err);
        return;
    }
    s.frame = malloc(sizeof *s.frame);
    if (!s.frame)
        abort();
    s.pull = zmq_socket(a->zctx, ZMQ_PULL);
    zmq_setsockopt(s.pull, ZMQ_RCVHWM, &a->queue_hwm, sizeof a->queue_hwm);
    zmq_setsockopt(s.pull, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(s.pull, VEM_SINK_PG_ENDPOINT) != 0) {
        snprintf(err, sizeof err, "cannot bind %s: %s", VEM_SINK_PG_ENDPOINT,
                 zmq_strerror(zmq_errno()));
        s_teardown(&s);
        vem_actor_ready(pipe, err);
        return;
    }
    s.acks = zmq_socket(a->zctx, ZMQ_PUSH);
    zmq_setsockopt(s.acks, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(s.acks, VEM_ACK_ENDPOINT);
    s_register(&s, a->metrics);
    s.writer = vem_pgwriter_new(a->conninfo);
    s_set_up(&s, false);
    if (vem_pgwriter_connect_start(s.writer, a->partitions_ahead, err, sizeof err) != 0)
        vem_log(VEM_LOG_ERR, "sink-pg", "%s; rows wait and the sink keeps trying", err);
    s_step(&s);
    vem_actor_ready(pipe, NULL);

    for (;;) {
        atomic_fetch_add_explicit(&a->beats, 1, memory_order_relaxed);
        s_step(&s);
        s_unspill(&s);
        if (!vem_pgwriter_busy(s.writer)) {
            s_maybe_flush(&s, false);
            s_step(&s);
        }
        if (s.committed > s.acked || vem_ackwin_mark(s.done) > s.committed)
            s_move_cursor(&s);
        s_update_gauges(&s);
        long timeout = 1000;
        /* While a message waits for room (spill full), the queue is not watched: it would
         * wake us at once, every turn. The next attempt (retry, batch due) comes by timeout. */
        zmq_pollitem_t items[3] = {{pipe, 0, ZMQ_POLLIN, 0},
                                   {s.pull, 0, s.holding ? 0 : ZMQ_POLLIN, 0}};
        int n = 2, idle_fd = vem_pgwriter_idle_fd(s.writer);
        if (idle_fd >= 0) /* a server that goes away while we have nothing to write */
            items[n++] = (zmq_pollitem_t){NULL, idle_fd, ZMQ_POLLIN, 0};
        if (vem_pgwriter_busy(s.writer)) {
            if (s.wait_fd >= 0)
                items[n++] = (zmq_pollitem_t){NULL, s.wait_fd,
                                              (short)((s.wait_events & POLLIN ? ZMQ_POLLIN : 0) |
                                                      (s.wait_events & POLLOUT ? ZMQ_POLLOUT : 0)),
                                              0};
            int left = vem_pgwriter_timeout_ms(s.writer);
            if (left >= 0 && left < timeout)
                timeout = left;
        } else if (s.opened_ms) {
            int64_t due = s.retry_at ? s.retry_at : s.opened_ms + a->batch_ms;
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
        if ((items[1].revents & ZMQ_POLLIN) || s.holding)
            s_read(&s);
        if (idle_fd >= 0 && (items[2].revents & ZMQ_POLLIN) && !vem_pgwriter_idle_check(s.writer)) {
            vem_log(VEM_LOG_ERR, "sink-pg", "PostgreSQL closed the connection; reconnecting");
            s_set_up(&s, false);
            s.retry_at = vem_mono_ms() + s.backoff_ms;
        }
    }
    /* Drain: the workers stopped before us, so what is queued and spilled is all there is.
     * Write it while we can; main's drain timeout bounds how long we may keep trying, and what
     * is not written is replayed from the spool at the next start. */
    while (!atomic_load(&a->stop_now)) {
        s_step(&s);
        if (vem_pgwriter_busy(s.writer)) {
            struct pollfd pfd = {.fd = s.wait_fd, .events = s.wait_events};
            int left = vem_pgwriter_timeout_ms(s.writer);
            poll(&pfd, s.wait_fd >= 0 ? 1 : 0, left >= 0 && left < 200 ? left : 200);
            continue;
        }
        if (s.retry_at && vem_mono_ms() < s.retry_at) {
            poll(NULL, 0, 50);
            continue;
        }
        s.retry_at = 0;
        s_unspill(&s);
        s_read(&s);
        if (s.opened_ms == 0 && vem_spill_count(s.spill) == 0 && !s.holding)
            break; /* everything written */
        s_maybe_flush(&s, true);
        s_step(&s);
    }
    if (s.committed > s.acked || vem_ackwin_mark(s.done) > s.committed)
        s_move_cursor(&s);
    s_teardown(&s);
}
