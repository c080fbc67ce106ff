/* sink_pg — batching, retries, cursor and acknowledgements around pgwrite; see sink_pg.h.
 *
 * Thread: one actor. Owns: its PULL and ack PUSH sockets, the writer (connection), the open
 * batch with its spool seqs, its ackwin and its spool cursor. */
#include "sink_pg.h"

#include "clock.h"
#include "ackwin.h"
#include "actor.h"
#include "ingest.h"
#include "log.h"
#include "pgrows.h"
#include "pgwrite.h"
#include "spool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_BACKOFF_MIN_MS 100

typedef struct {
    vem_sink_pg_args_t *args;
    void *pull, *acks;
    vem_pgwriter_t *writer;
    vem_pgbatch_t batch;
    uint64_t *seqs; /* spool seqs the open batch settles */
    size_t nseqs, seqs_cap;
    int64_t opened_ms;  /* monotonic time the batch got its first message; 0 when empty */
    int64_t oldest_us;  /* receipt time of its oldest input */
    int64_t retry_at;   /* monotonic ms of the next attempt after a failure; 0 when none */
    int64_t backoff_ms; /* current wait between attempts */
    vem_ackwin_t *done;
    vem_spool_cursor_t *cursor;
    /* metrics */
    vem_counter_t *rows[VEM_PG_TABLES], *dups[VEM_PG_TABLES];
    vem_counter_t *batches, *err_retry, *err_failed, *partitions;
    vem_gauge_t *up, *lag, *pending;
    vem_histogram_t *latency;
} s_sink_t;

static void s_register(s_sink_t *s, vem_metrics_t *m)
{
    for (unsigned t = 0; t < VEM_PG_TABLES; t++) {
        const char *labels[] = {"sink", "pg", "table", vem_pg_table_name(t), NULL};
        s->rows[t] = vem_metrics_counter(m, "vem_sink_rows_total",
                                         "Rows a sink made durable (new rows only).", labels);
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

/* Adds one worker message to the open batch. */
static void s_take(s_sink_t *s, const uint8_t *p, size_t len)
{
    vem_pgmsg_t m;
    if (!vem_pgmsg_parse(p, len, &m)) {
        /* cannot happen between our own threads; if it does, say so loudly */
        vem_log(VEM_LOG_ERR, "sink-pg", "malformed worker message of %zu bytes ignored", len);
        return;
    }
    for (unsigned t = 0; t < VEM_PG_TABLES; t++) {
        vem_buf_put(&s->batch.rows[t], m.rows[t], m.hdr.nbytes[t]);
        s->batch.nrows[t] += m.hdr.nrows[t];
    }
    vem_pgbatch_add_days(&s->batch, m.days, m.hdr.ndays);
    if (s->nseqs + m.hdr.nseqs > s->seqs_cap) {
        size_t cap = s->seqs_cap ? s->seqs_cap : 1024;
        while (cap < s->nseqs + m.hdr.nseqs)
            cap *= 2;
        uint64_t *seqs = realloc(s->seqs, cap * sizeof *seqs);
        if (!seqs)
            abort();
        s->seqs = seqs;
        s->seqs_cap = cap;
    }
    memcpy(s->seqs + s->nseqs, m.seqs, m.hdr.nseqs * sizeof(uint64_t));
    s->nseqs += m.hdr.nseqs;
    if (s->opened_ms == 0) {
        s->opened_ms = vem_mono_ms();
        s->oldest_us = m.hdr.oldest_us;
    } else if (m.hdr.oldest_us < s->oldest_us) {
        s->oldest_us = m.hdr.oldest_us;
    }
}

/* Marks the committed seqs done, moves the cursor, tells ingest. */
static void s_settle(s_sink_t *s)
{
    for (size_t i = 0; i < s->nseqs; i++)
        vem_ackwin_done(s->done, s->seqs[i]);
    if (s->cursor && vem_spool_cursor_commit(s->cursor, vem_ackwin_mark(s->done)) != 0)
        vem_log(VEM_LOG_ERR, "sink-pg", "cannot move the spool cursor: %s", strerror(errno));
    for (size_t off = 0; off < s->nseqs;) {
        size_t n = s->nseqs - off < 4096 ? s->nseqs - off : 4096;
        vem_ack_hdr_t hdr = {.consumer = VEM_CONSUMER_PG, .count = (uint32_t)n};
        zmq_msg_t msg;
        zmq_msg_init_size(&msg, sizeof hdr + n * sizeof(uint64_t));
        memcpy(zmq_msg_data(&msg), &hdr, sizeof hdr);
        memcpy((uint8_t *)zmq_msg_data(&msg) + sizeof hdr, s->seqs + off, n * sizeof(uint64_t));
        /* never blocks: after a drain ingest is gone, and a lost ack only keeps spool
         * records a little longer */
        if (zmq_msg_send(&msg, s->acks, ZMQ_DONTWAIT) < 0)
            zmq_msg_close(&msg);
        off += n;
    }
}

/* Writes the open batch once; true when it is committed (or was empty). */
static bool s_flush(s_sink_t *s)
{
    if (s->opened_ms == 0)
        return true;
    char err[512];
    vem_sink_pg_args_t *a = s->args;
    if (!vem_pgwriter_connected(s->writer) &&
        vem_pgwriter_connect(s->writer, a->partitions_ahead, err, sizeof err) != 0) {
        vem_counter_add(s->err_retry, 1);
        vem_log(VEM_LOG_ERR, "sink-pg", "%s; %llu rows wait", err,
                (unsigned long long)vem_pgbatch_rows(&s->batch));
        s_set_up(s, false);
        return false;
    }
    vem_pgw_stats_t st;
    vem_pgw_result_t r = vem_pgwriter_write(s->writer, &s->batch, &st, err, sizeof err);
    vem_counter_add(s->partitions, st.partitions_created);
    if (r != VEM_PGW_OK) {
        vem_counter_add(r == VEM_PGW_RETRY ? s->err_retry : s->err_failed, 1);
        vem_log(VEM_LOG_ERR, "sink-pg", "%s (%s); %llu rows kept for the next attempt", err,
                r == VEM_PGW_RETRY ? "will reconnect" : "refused by the server",
                (unsigned long long)vem_pgbatch_rows(&s->batch));
        if (r == VEM_PGW_RETRY)
            vem_pgwriter_disconnect(s->writer);
        s_set_up(s, false);
        return false;
    }
    if (!atomic_load(&a->up))
        vem_log(VEM_LOG_NOTICE, "sink-pg", "PostgreSQL writes resumed");
    s_set_up(s, true);
    for (unsigned t = 0; t < VEM_PG_TABLES; t++) {
        vem_counter_add(s->rows[t], st.inserted[t]);
        vem_counter_add(s->dups[t], st.duplicates[t]);
    }
    vem_counter_add(s->batches, 1);
    int64_t now = vem_now_us();
    if (now > s->oldest_us)
        vem_histogram_observe_ns(s->latency, (uint64_t)(now - s->oldest_us) * 1000);
    s_settle(s);
    vem_pgbatch_reset(&s->batch);
    s->nseqs = 0;
    s->opened_ms = 0;
    return true;
}

/* Flushes if the batch is due; schedules a retry on failure. */
static void s_maybe_flush(s_sink_t *s, bool force)
{
    int64_t now = vem_mono_ms();
    if (s->opened_ms == 0)
        return;
    if (s->retry_at && now < s->retry_at)
        return;
    bool due = force || vem_pgbatch_rows(&s->batch) >= (uint64_t)s->args->batch_rows ||
               now - s->opened_ms >= s->args->batch_ms || s->nseqs >= 65536;
    if (!due)
        return;
    if (s_flush(s)) {
        s->retry_at = 0;
        s->backoff_ms = S_BACKOFF_MIN_MS;
    } else {
        s->retry_at = now + s->backoff_ms;
        s->backoff_ms *= 2;
        if (s->backoff_ms > s->args->retry_max_s * 1000)
            s->backoff_ms = s->args->retry_max_s * 1000;
    }
}

/* Reads waiting worker messages into the batch until it is full. */
static void s_read(s_sink_t *s)
{
    while (vem_pgbatch_rows(&s->batch) < (uint64_t)s->args->batch_rows && s->nseqs < 65536) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, s->pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        s_take(s, zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
    }
}

static void s_update_gauges(s_sink_t *s)
{
    vem_gauge_set(s->pending, (int64_t)vem_pgbatch_rows(&s->batch));
    vem_gauge_set(s->lag, s->opened_ms ? (vem_now_us() - s->oldest_us) / 1000000 : 0);
}

static void s_teardown(s_sink_t *s)
{
    if (s->pull)
        zmq_close(s->pull);
    if (s->acks)
        zmq_close(s->acks);
    vem_pgwriter_destroy(&s->writer);
    vem_pgbatch_free(&s->batch);
    free(s->seqs);
    vem_ackwin_destroy(&s->done);
    vem_spool_cursor_destroy(&s->cursor);
}

void vem_sink_pg_actor(void *pipe, void *args_)
{
    vem_sink_pg_args_t *a = args_;
    s_sink_t s = {.args = a, .backoff_ms = S_BACKOFF_MIN_MS};
    char err[512];
    int zero = 0;
    s.cursor = vem_spool_cursor_open(a->spool_dir, "pg", err, sizeof err);
    if (!s.cursor) {
        vem_actor_ready(pipe, err);
        return;
    }
    s.done = vem_ackwin_new(vem_spool_cursor_get(s.cursor));
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
    if (vem_pgwriter_connect(s.writer, a->partitions_ahead, err, sizeof err) == 0) {
        s_set_up(&s, true);
        vem_log(VEM_LOG_INFO, "sink-pg", "connected to PostgreSQL");
    } else {
        s_set_up(&s, false);
        vem_log(VEM_LOG_ERR, "sink-pg", "%s; rows wait and the sink keeps trying", err);
    }
    vem_actor_ready(pipe, NULL);

    int32_t day = vem_pg_beijing_day(time(NULL));
    for (;;) {
        atomic_fetch_add_explicit(&a->beats, 1, memory_order_relaxed);
        /* while a failed batch waits for its retry, stop reading: the queue is backpressure */
        bool reading = s.retry_at == 0 && vem_pgbatch_rows(&s.batch) < (uint64_t)a->batch_rows;
        long timeout = 1000;
        if (s.opened_ms) {
            int64_t due = s.retry_at ? s.retry_at : s.opened_ms + a->batch_ms;
            int64_t wait = due - vem_mono_ms();
            timeout = wait < 0 ? 0 : wait < 1000 ? (long)wait : 1000;
        }
        zmq_pollitem_t items[] = {{pipe, 0, ZMQ_POLLIN, 0}, {s.pull, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, reading ? 2 : 1, timeout) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if ((items[0].revents & ZMQ_POLLIN) && vem_actor_should_stop(pipe))
            break;
        if (reading && (items[1].revents & ZMQ_POLLIN))
            s_read(&s);
        s_maybe_flush(&s, false);
        s_update_gauges(&s);
        int32_t today = vem_pg_beijing_day(time(NULL));
        if (today != day && vem_pgwriter_connected(s.writer)) {
            /* a new Beijing day: create the partitions ahead again */
            if (vem_pgwriter_connect(s.writer, a->partitions_ahead, err, sizeof err) == 0)
                day = today;
        }
    }
    /* Drain: the workers stopped before us, so what is queued is all there is. Write it all;
     * main's drain timeout bounds how long we may keep trying. */
    for (;;) {
        s_read(&s);
        if (s.opened_ms == 0)
            break;
        s.retry_at = 0;
        if (!s_flush(&s)) {
            struct timespec pause = {.tv_sec = 0, .tv_nsec = 200 * 1000000L};
            nanosleep(&pause, NULL);
        }
    }
    s_teardown(&s);
}
