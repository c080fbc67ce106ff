/* ingest — network intake, spool append, replies, routing; see ingest.h.
 *
 * Loop: poll the control pipe, the acks socket and (when the spool has room) the terminal and
 * gateway sockets. Read a bounded batch of messages; for each input append it to the spool and
 * stage the worker message and any reply. Flush the spool once per batch (group commit), then
 * send the staged worker messages (blocking: a full worker queue is backpressure) and replies
 * (never blocking: NOTES.md saw one blocking send to a silent client freeze a STREAM socket).
 * Once a second, close idle connections.
 *
 * ZMQ_STREAM routing ids are 5 bytes (a zero byte and a 32-bit counter): packed into a u64
 * they key an open-addressing table of connections with tombstones for removal. Connections we
 * close get no disconnect event from libzmq, so their state is dropped at once. */
#include "ingest.h"

#include "clock.h"
#include "ackwin.h"
#include "actor.h"
#include "hj1239.h"
#include "log.h"
#include "pipeline.h"
#include "reasm.h"
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_BATCH     512 /* inputs per flush */
#define S_TOMBSTONE ((s_conn_t *)1)

typedef struct {
    uint64_t key;
    uint8_t id[8];
    size_t id_len;
    uint32_t conn_id;
    vem_reasm_t *reasm;
    int64_t last_us;
    char meta[64]; /* "tcp 127.0.0.1:40122", stored with every spool record */
    uint16_t meta_len;
} s_conn_t;

typedef struct {
    zmq_msg_t msg; /* header + bytes, ready for the worker */
    unsigned worker;
    bool reply; /* a reply to a terminal is staged for this input */
    s_conn_t *conn;
    uint8_t reply_buf[31]; /* header 24 + time 6 + BCC */
} s_staged_t;

typedef struct {
    vem_ingest_args_t *args;
    void *stream, *pull, *acks;
    void **push; /* one per worker */
    s_conn_t **slots;
    size_t capacity, count, used; /* used counts tombstones too */
    uint32_t next_conn_id;
    vem_ackwin_t *done[VEM_CONSUMERS];
    uint64_t trimmed; /* the spool was trimmed up to here */
    vem_spool_reader_t *replay;
    uint64_t replay_end; /* first seq appended by this run: replay stops before it */
    s_staged_t *staged;
    size_t nstaged;
    /* metrics */
    vem_counter_t *bytes_terminals, *bytes_gateways, *accepted, *closed_idle, *closed_limit,
        *closed_peer, *reply_dropped, *spool_errors, *inputs;
    vem_counter_t *drops[VEM_HJ1239_STATUS_COUNT];
    vem_gauge_t *conns, *spool_bytes, *spool_full, *backlog;
} s_ingest_t;

/* ---- connection table ---------------------------------------------------------------------- */

static uint64_t s_key(const uint8_t *id, size_t len)
{
    uint64_t key = 0;
    for (size_t i = 0; i < len && i < 8; i++)
        key = key << 8 | id[i];
    return key;
}

static size_t s_slot(const s_ingest_t *in, uint64_t key, bool for_insert)
{
    size_t mask = in->capacity - 1;
    size_t i = (size_t)(key * 0x9e3779b97f4a7c15ULL >> 20) & mask;
    size_t first_free = SIZE_MAX;
    for (;;) {
        s_conn_t *c = in->slots[i];
        if (!c)
            return for_insert && first_free != SIZE_MAX ? first_free : i;
        if (c == S_TOMBSTONE) {
            if (first_free == SIZE_MAX)
                first_free = i;
        } else if (c->key == key) {
            return i;
        }
        i = (i + 1) & mask;
    }
}

static s_conn_t *s_find(const s_ingest_t *in, uint64_t key)
{
    s_conn_t *c = in->slots[s_slot(in, key, false)];
    return c == S_TOMBSTONE ? NULL : c;
}

static void s_rehash(s_ingest_t *in, size_t capacity)
{
    s_conn_t **old = in->slots;
    size_t old_capacity = in->capacity;
    in->slots = calloc(capacity, sizeof *in->slots);
    if (!in->slots)
        abort();
    in->capacity = capacity;
    in->used = in->count;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i] && old[i] != S_TOMBSTONE)
            in->slots[s_slot(in, old[i]->key, true)] = old[i];
    free(old);
}

static void s_insert(s_ingest_t *in, s_conn_t *c)
{
    if ((in->used + 1) * 10 > in->capacity * 7)
        s_rehash(in, in->count * 4 > in->capacity ? in->capacity * 2 : in->capacity);
    size_t i = s_slot(in, c->key, true);
    if (!in->slots[i])
        in->used++;
    in->slots[i] = c;
    in->count++;
}

static void s_remove(s_ingest_t *in, s_conn_t *c)
{
    size_t i = s_slot(in, c->key, false);
    if (in->slots[i] == c) {
        in->slots[i] = S_TOMBSTONE;
        in->count--;
    }
    vem_reasm_destroy(&c->reasm);
    free(c);
    vem_gauge_set(in->conns, (int64_t)in->count);
    atomic_store(&in->args->connections, in->count);
}

/* ---- staging inputs ------------------------------------------------------------------------ */

/* VIN of a whole frame: bytes 3..19 in the terminal header, 4..20 in the platform header
 * (whose byte 3 is a response flag, never a VIN character). */
static const uint8_t *s_vin(const uint8_t *frame)
{
    uint8_t b = frame[3];
    return (b == 0x01 || b == 0x02 || b == 0x03 || b == 0xFE) ? frame + 4 : frame + 3;
}

/* Builds the reply to a terminal frame in the GB/T 32960 response form: `##`, the command,
 * response flag 0x01 (ok), the VIN, encryption none, and a data unit of the frame's time (the
 * platform's Beijing time for a time calibration). Returns false when none is due. */
static bool s_reply(const s_ingest_t *in, const uint8_t *frame, size_t len, uint8_t out[31])
{
    uint8_t cmd = frame[2];
    bool always = cmd == VEM_HJ1239_CMD_LOGIN || cmd == VEM_HJ1239_CMD_TIME_SYNC;
    bool per_frame = atomic_load(&in->args->reply_mode) == VEM_REPLY_HJ1239 &&
                     (cmd == VEM_HJ1239_CMD_REALTIME || cmd == VEM_HJ1239_CMD_RESEND ||
                      cmd == VEM_HJ1239_CMD_LOGOUT || cmd == VEM_HJ1239_CMD_REMOVAL_ALARM);
    if (!always && !per_frame)
        return false;
    out[0] = out[1] = '#';
    out[2] = cmd;
    out[3] = 0x01;
    memcpy(out + 4, s_vin(frame), 17);
    out[21] = 0x01;
    out[22] = 0;
    out[23] = 6;
    if (cmd == VEM_HJ1239_CMD_TIME_SYNC || len < VEM_HJ1239_HEADER_LEN + 6 + 1) {
        if (!vem_hj1239_time_encode(vem_now_us() / 1000000, out + 24))
            return false;
    } else {
        memcpy(out + 24, frame + VEM_HJ1239_HEADER_LEN, 6);
    }
    out[30] = vem_hj1239_bcc(out + 2, 28);
    return true;
}

static void s_route(s_ingest_t *in, vem_source_t source, s_conn_t *conn, uint16_t kind,
                    uint64_t seq, int64_t received_us, const uint8_t *data, size_t len,
                    vem_hj1239_status_t error, uint64_t offset);

/* Appends one input to the spool and stages its worker message; false when the spool refused
 * (the input stays unread in the caller's hands only for gateways; see s_on_stream). */
static bool s_stage(s_ingest_t *in, vem_source_t source, s_conn_t *conn, uint16_t kind,
                    const uint8_t *data, size_t len, vem_hj1239_status_t error, uint64_t offset)
{
    int64_t now = vem_now_us();
    /* Quarantined bytes keep their verdict in the meta text, so a replay knows it. */
    char meta[96];
    int meta_len = snprintf(meta, sizeof meta, "%s", conn ? conn->meta : "gateway");
    if (kind == VEM_SPOOL_KIND_QUARANTINE)
        meta_len = snprintf(meta, sizeof meta, "%s #%u@%llu", conn ? conn->meta : "gateway",
                            (unsigned)error, (unsigned long long)offset);
    vem_spool_rec_t rec = {.received_us = now,
                           .kind = kind,
                           .meta = (const uint8_t *)meta,
                           .meta_len = (uint16_t)meta_len,
                           .data = data,
                           .data_len = (uint32_t)len};
    if (vem_spool_append(in->args->spool, &rec) != 0) {
        vem_counter_add(in->spool_errors, 1);
        vem_log(VEM_LOG_ERR, "ingest", "spool append failed: %s", strerror(errno));
        return false;
    }
    s_route(in, source, conn, kind, rec.seq, now, data, len, error, offset);
    return true;
}

/* Stages the worker message of a spooled input (and the reply it is due). */
static void s_route(s_ingest_t *in, vem_source_t source, s_conn_t *conn, uint16_t kind,
                    uint64_t seq, int64_t received_us, const uint8_t *data, size_t len,
                    vem_hj1239_status_t error, uint64_t offset)
{
    s_staged_t *st = &in->staged[in->nstaged++];
    vem_input_hdr_t hdr = {.seq = seq,
                           .received_us = received_us,
                           .conn_id = conn ? conn->conn_id : 0,
                           .data_len = (uint32_t)len,
                           .kind = kind,
                           .source = (uint8_t)source,
                           .error = (uint8_t)error,
                           .error_offset = (uint32_t)offset};
    zmq_msg_init_size(&st->msg, sizeof hdr + len);
    memcpy(zmq_msg_data(&st->msg), &hdr, sizeof hdr);
    memcpy((uint8_t *)zmq_msg_data(&st->msg) + sizeof hdr, data, len);
    /* Route by VIN so one worker owns each vehicle; quarantined bytes by connection. */
    uint64_t h = kind == VEM_SPOOL_KIND_OBD_FRAME ? vem_vin_hash((const char *)s_vin(data))
                                                  : (uint64_t)hdr.conn_id * 0x9e3779b97f4a7c15ULL;
    st->worker = (unsigned)(h % in->args->workers);
    st->conn = conn;
    st->reply = conn && kind == VEM_SPOOL_KIND_OBD_FRAME && s_reply(in, data, len, st->reply_buf);
    vem_counter_add(in->inputs, 1);
}

/* Flushes the spool, then hands staged inputs to workers and answers terminals. */
static void s_flush(s_ingest_t *in)
{
    if (in->nstaged == 0)
        return;
    if (vem_spool_flush(in->args->spool) != 0) {
        vem_counter_add(in->spool_errors, 1);
        vem_log(VEM_LOG_ERR, "ingest", "spool flush failed: %s", strerror(errno));
    }
    for (size_t i = 0; i < in->nstaged; i++) {
        s_staged_t *st = &in->staged[i];
        vem_actor_send_wait(in->push[st->worker], &st->msg, &in->args->beats);
        if (st->reply && st->conn) {
            if (zmq_send(in->stream, st->conn->id, st->conn->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) <
                    0 ||
                zmq_send(in->stream, st->reply_buf, sizeof st->reply_buf, ZMQ_DONTWAIT) < 0)
                vem_counter_add(in->reply_dropped, 1);
        }
    }
    in->nstaged = 0;
    vem_gauge_set(in->spool_bytes, (int64_t)vem_spool_bytes(in->args->spool));
}

/* Runs the reassembler of conn over what it holds; stages frames and drops. */
static void s_drain_reasm(s_ingest_t *in, s_conn_t *conn)
{
    vem_reasm_event_t ev;
    while (vem_reasm_next(conn->reasm, &ev) != VEM_REASM_NEED_MORE) {
        if (in->nstaged == S_BATCH)
            s_flush(in);
        if (ev.kind == VEM_REASM_FRAME) {
            s_stage(in, VEM_SOURCE_TERMINAL, conn, VEM_SPOOL_KIND_OBD_FRAME, ev.data, ev.len, 0,
                    ev.offset);
        } else {
            if (ev.error > 0 && ev.error < VEM_HJ1239_STATUS_COUNT)
                vem_counter_add(in->drops[ev.error], 1);
            vem_log(VEM_LOG_DEBUG, "ingest", "%s at stream offset %llu: %s (%s)",
                    vem_hj1239_status_name(ev.error), (unsigned long long)ev.offset,
                    ev.detail ? ev.detail : "", conn->meta);
            s_stage(in, VEM_SOURCE_TERMINAL, conn, VEM_SPOOL_KIND_QUARANTINE, ev.data,
                    ev.len ? ev.len : ev.skipped, ev.error, ev.offset);
        }
    }
}

/* Closes a terminal connection from our side; what it had buffered is quarantined. */
static void s_close(s_ingest_t *in, s_conn_t *conn, vem_counter_t *reason)
{
    zmq_send(in->stream, conn->id, conn->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(in->stream, "", 0, ZMQ_DONTWAIT);
    vem_reasm_end(conn->reasm);
    s_drain_reasm(in, conn);
    s_flush(in); /* staged inputs point at conn: hand them over before it goes */
    vem_counter_add(reason, 1);
    s_remove(in, conn);
}

static void s_on_stream(s_ingest_t *in)
{
    zmq_msg_t id, data;
    zmq_msg_init(&id);
    zmq_msg_init(&data);
    if (zmq_msg_recv(&id, in->stream, ZMQ_DONTWAIT) < 0 ||
        zmq_msg_recv(&data, in->stream, ZMQ_DONTWAIT) < 0)
        goto done;
    uint64_t key = s_key(zmq_msg_data(&id), zmq_msg_size(&id));
    s_conn_t *conn = s_find(in, key);
    size_t len = zmq_msg_size(&data);
    if (len == 0) {
        if (!conn) { /* a new connection */
            conn = calloc(1, sizeof *conn);
            if (!conn)
                abort();
            conn->key = key;
            conn->id_len = zmq_msg_size(&id) < 8 ? zmq_msg_size(&id) : 8;
            memcpy(conn->id, zmq_msg_data(&id), conn->id_len);
            conn->conn_id = ++in->next_conn_id;
            conn->last_us = vem_now_us();
            const char *peer = zmq_msg_gets(&data, "Peer-Address");
            int n = snprintf(conn->meta, sizeof conn->meta, "tcp %s #%u", peer ? peer : "?",
                             conn->conn_id);
            conn->meta_len =
                (uint16_t)(n < (int)sizeof conn->meta ? n : (int)sizeof conn->meta - 1);
            conn->reasm = vem_reasm_new(in->args->max_frame);
            if (!conn->reasm)
                abort();
            s_insert(in, conn);
            vem_counter_add(in->accepted, 1);
            vem_gauge_set(in->conns, (int64_t)in->count);
            atomic_store(&in->args->connections, in->count);
            if (in->count > in->args->max_connections) {
                vem_log(VEM_LOG_WARNING, "ingest", "connection limit %u reached: closing %s",
                        in->args->max_connections, conn->meta);
                s_close(in, conn, in->closed_limit);
            }
        } else { /* the peer went away */
            vem_reasm_end(conn->reasm);
            s_drain_reasm(in, conn);
            s_flush(in);
            vem_counter_add(in->closed_peer, 1);
            s_remove(in, conn);
        }
        goto done;
    }
    if (!conn)
        goto done; /* data for a connection we already closed */
    vem_counter_add(in->bytes_terminals, len);
    conn->last_us = vem_now_us();
    vem_reasm_feed(conn->reasm, zmq_msg_data(&data), len);
    s_drain_reasm(in, conn); /* staging copies the bytes: the chunk may go */
done:
    zmq_msg_close(&id);
    zmq_msg_close(&data);
}

static void s_on_pull(s_ingest_t *in)
{
    zmq_msg_t part;
    zmq_msg_init(&part);
    while (zmq_msg_recv(&part, in->pull, ZMQ_DONTWAIT) >= 0) {
        const uint8_t *data = zmq_msg_data(&part);
        size_t len = zmq_msg_size(&part);
        vem_counter_add(in->bytes_gateways, len);
        /* A gateway sends whole frames: check them as the reassembler would. */
        vem_hj1239_frame_t *scratch = NULL;
        vem_hj1239_error_t err = {0};
        bool whole = len >= VEM_HJ1239_MIN_FRAME && data[0] == '#' && data[1] == '#' &&
                     vem_hj1239_cmd_known(data[2]) &&
                     (size_t)(data[22] << 8 | data[23]) + VEM_HJ1239_MIN_FRAME == len &&
                     vem_hj1239_bcc(data + 2, len - 3) == data[len - 1];
        if (!whole) {
            scratch = malloc(sizeof *scratch);
            if (!scratch)
                abort();
            vem_hj1239_decode(data, len, 0, scratch, &err);
            free(scratch);
            if (err.status == VEM_HJ1239_OK || err.status >= VEM_HJ1239_STATUS_COUNT)
                err.status = VEM_HJ1239_MALFORMED_BODY;
            vem_counter_add(in->drops[err.status], 1);
        }
        if (in->nstaged == S_BATCH)
            s_flush(in);
        s_stage(in, VEM_SOURCE_GATEWAY, NULL,
                whole ? VEM_SPOOL_KIND_OBD_FRAME : VEM_SPOOL_KIND_QUARANTINE, data, len,
                whole ? VEM_HJ1239_OK : err.status, err.offset);
        int more = 0;
        size_t more_len = sizeof more;
        zmq_getsockopt(in->pull, ZMQ_RCVMORE, &more, &more_len);
        if (!more && !vem_spool_has_room(in->args->spool, in->args->max_frame))
            break;
    }
    zmq_msg_close(&part);
}

/* The lowest mark of the active consumers: every record up to it is done everywhere. */
static uint64_t s_low_mark(const s_ingest_t *in)
{
    uint64_t low = UINT64_MAX;
    for (unsigned c = 0; c < VEM_CONSUMERS; c++)
        if (in->done[c] && vem_ackwin_mark(in->done[c]) < low)
            low = vem_ackwin_mark(in->done[c]);
    return low;
}

static void s_on_acks(s_ingest_t *in)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    while (zmq_msg_recv(&msg, in->acks, ZMQ_DONTWAIT) >= 0) {
        vem_ack_hdr_t hdr;
        size_t size = zmq_msg_size(&msg);
        if (size < sizeof hdr)
            continue;
        memcpy(&hdr, zmq_msg_data(&msg), sizeof hdr);
        if (size != sizeof hdr + hdr.count * sizeof(uint64_t) || hdr.consumer >= VEM_CONSUMERS ||
            !in->done[hdr.consumer])
            continue;
        const uint8_t *p = (const uint8_t *)zmq_msg_data(&msg) + sizeof hdr;
        for (uint32_t i = 0; i < hdr.count; i++) {
            uint64_t seq;
            memcpy(&seq, p + i * sizeof seq, sizeof seq);
            vem_ackwin_done(in->done[hdr.consumer], seq);
        }
    }
    zmq_msg_close(&msg);
    uint64_t low = s_low_mark(in);
    if (low > in->trimmed) {
        vem_spool_trim(in->args->spool, low);
        in->trimmed = low;
    }
    vem_gauge_set(in->backlog, (int64_t)(vem_spool_next_seq(in->args->spool) - 1 - low));
}

/* Stages up to one batch of records from the spool that a sink had not made durable before the
 * last stop; they go through the workers again, and the sinks' unique keys drop what was
 * already stored. Returns false once the replay is over. */
static bool s_replay(s_ingest_t *in)
{
    for (size_t n = 0; n < S_BATCH / 2; n++) {
        vem_spool_rec_t rec;
        vem_spool_read_t rc = vem_spool_reader_next(in->replay, UINT64_MAX, &rec);
        if (rc == VEM_SPOOL_READ_DAMAGED && rec.seq < in->replay_end) {
            vem_log(VEM_LOG_ERR, "ingest", "replay skipped unreadable spool records %llu..%llu",
                    (unsigned long long)rec.seq, (unsigned long long)(rec.seq + rec.lost - 1));
            continue;
        }
        if (rc == VEM_SPOOL_READ_ERROR)
            vem_log(VEM_LOG_ERR, "ingest", "replay stopped: reading the spool: %s",
                    strerror(errno));
        if (rc != VEM_SPOOL_READ_RECORD || rec.seq >= in->replay_end) {
            vem_spool_reader_destroy(&in->replay);
            vem_log(VEM_LOG_INFO, "ingest", "replay of the spool done");
            return false;
        }
        vem_source_t source = rec.meta_len >= 7 && memcmp(rec.meta, "gateway", 7) == 0
                                  ? VEM_SOURCE_GATEWAY
                                  : VEM_SOURCE_TERMINAL;
        unsigned error = 0;
        unsigned long long offset = 0;
        if (rec.kind == VEM_SPOOL_KIND_QUARANTINE) {
            char meta[128];
            size_t m = rec.meta_len < sizeof meta - 1 ? rec.meta_len : sizeof meta - 1;
            memcpy(meta, rec.meta, m);
            meta[m] = '\0';
            const char *mark = strrchr(meta, '#');
            if (!mark || sscanf(mark, "#%u@%llu", &error, &offset) != 2 ||
                error >= VEM_HJ1239_STATUS_COUNT)
                error = VEM_HJ1239_MALFORMED_BODY;
        } else if (rec.kind != VEM_SPOOL_KIND_OBD_FRAME || rec.data_len < VEM_HJ1239_MIN_FRAME) {
            continue; /* roadside readings arrive with their own issue */
        }
        if (in->nstaged == S_BATCH)
            s_flush(in);
        /* s_route copies the bytes: the reader's buffer may change with the next read */
        s_route(in, source, NULL, rec.kind, rec.seq, rec.received_us, rec.data, rec.data_len,
                (vem_hj1239_status_t)error, offset);
    }
    return true;
}

static void s_sweep_idle(s_ingest_t *in)
{
    int64_t deadline = vem_now_us() - (int64_t)in->args->idle_timeout_s * 1000000;
    for (size_t i = 0; i < in->capacity; i++) {
        s_conn_t *c = in->slots[i];
        if (c && c != S_TOMBSTONE && c->last_us < deadline) {
            vem_log(VEM_LOG_DEBUG, "ingest", "closing idle connection %s", c->meta);
            s_close(in, c, in->closed_idle);
        }
    }
}

static void s_register(s_ingest_t *in, vem_metrics_t *m)
{
    const char *term[] = {"endpoint", "terminals", NULL}, *gw[] = {"endpoint", "gateways", NULL};
    const char *bytes_help = "Bytes received, by endpoint.";
    in->bytes_terminals = vem_metrics_counter(m, "vem_bytes_received_total", bytes_help, term);
    in->bytes_gateways = vem_metrics_counter(m, "vem_bytes_received_total", bytes_help, gw);
    in->accepted = vem_metrics_counter(m, "vem_connections_accepted_total",
                                       "Terminal connections accepted.", NULL);
    const char *closed_help = "Terminal connections closed, by reason.";
    const char *idle[] = {"reason", "idle", NULL}, *limit[] = {"reason", "limit", NULL},
               *peer[] = {"reason", "peer", NULL};
    in->closed_idle = vem_metrics_counter(m, "vem_connections_closed_total", closed_help, idle);
    in->closed_limit = vem_metrics_counter(m, "vem_connections_closed_total", closed_help, limit);
    in->closed_peer = vem_metrics_counter(m, "vem_connections_closed_total", closed_help, peer);
    in->conns = vem_metrics_gauge(m, "vem_connections", "Open terminal connections.", NULL);
    in->reply_dropped = vem_metrics_counter(
        m, "vem_replies_dropped_total", "Replies not sent: the terminal was not reading.", NULL);
    in->spool_errors = vem_metrics_counter(m, "vem_spool_errors_total",
                                           "Spool appends or flushes that failed.", NULL);
    in->inputs = vem_metrics_counter(m, "vem_inputs_total",
                                     "Inputs appended to the spool (frames and quarantine).", NULL);
    for (unsigned st = 1; st < VEM_HJ1239_STATUS_COUNT; st++) {
        const char *labels[] = {"class", vem_hj1239_status_name((vem_hj1239_status_t)st), NULL};
        in->drops[st] = vem_metrics_counter(
            m, "vem_stream_drops_total", "Byte runs the reassembler rejected, by class.", labels);
    }
    in->spool_bytes = vem_metrics_gauge(m, "vem_spool_bytes", "Bytes held in the spool.", NULL);
    in->spool_full = vem_metrics_gauge(m, "vem_spool_full",
                                       "1 while the spool is full and intake is paused.", NULL);
    const char *q[] = {"stage", "workers", NULL};
    in->backlog = vem_metrics_gauge(m, "vem_queue_depth",
                                    "Inputs spooled but not yet processed, by stage.", q);
}

static int s_bind(s_ingest_t *in, char *err, size_t errlen)
{
    vem_ingest_args_t *a = in->args;
    void *ctx = a->zctx;
    int zero = 0, one = 1;
    in->stream = zmq_socket(ctx, ZMQ_STREAM);
    zmq_setsockopt(in->stream, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(in->stream, ZMQ_BACKLOG, &a->backlog, sizeof a->backlog);
    zmq_setsockopt(in->stream, ZMQ_RCVHWM, &a->rcvhwm, sizeof a->rcvhwm);
    zmq_setsockopt(in->stream, ZMQ_TCP_KEEPALIVE, &one, sizeof one);
    zmq_setsockopt(in->stream, ZMQ_TCP_KEEPALIVE_IDLE, &a->tcp_keepalive_idle_s,
                   sizeof a->tcp_keepalive_idle_s);
    if (zmq_bind(in->stream, a->terminals_endpoint) != 0) {
        snprintf(err, errlen, "cannot bind terminals endpoint %s: %s", a->terminals_endpoint,
                 zmq_strerror(zmq_errno()));
        return -1;
    }
    if (a->gateways_endpoint && *a->gateways_endpoint) {
        in->pull = zmq_socket(ctx, ZMQ_PULL);
        zmq_setsockopt(in->pull, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(in->pull, ZMQ_RCVHWM, &a->rcvhwm, sizeof a->rcvhwm);
        if (zmq_bind(in->pull, a->gateways_endpoint) != 0) {
            snprintf(err, errlen, "cannot bind gateways endpoint %s: %s", a->gateways_endpoint,
                     zmq_strerror(zmq_errno()));
            return -1;
        }
    }
    in->acks = zmq_socket(ctx, ZMQ_PULL);
    zmq_setsockopt(in->acks, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(in->acks, VEM_ACK_ENDPOINT) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", VEM_ACK_ENDPOINT, zmq_strerror(zmq_errno()));
        return -1;
    }
    in->push = calloc(a->workers, sizeof *in->push);
    if (!in->push)
        abort();
    for (unsigned i = 0; i < a->workers; i++) {
        char endpoint[64];
        snprintf(endpoint, sizeof endpoint, VEM_WORKER_ENDPOINT, i);
        in->push[i] = zmq_socket(ctx, ZMQ_PUSH);
        zmq_setsockopt(in->push[i], ZMQ_SNDHWM, &a->worker_hwm, sizeof a->worker_hwm);
        /* Workers stop after us and read their queues empty: give them everything. */
        int forever = -1;
        zmq_setsockopt(in->push[i], ZMQ_LINGER, &forever, sizeof forever);
        if (zmq_connect(in->push[i], endpoint) != 0) {
            snprintf(err, errlen, "cannot connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
            return -1;
        }
    }
    return 0;
}

static void s_teardown(s_ingest_t *in)
{
    for (size_t i = 0; i < in->capacity; i++)
        if (in->slots[i] && in->slots[i] != S_TOMBSTONE) {
            vem_reasm_destroy(&in->slots[i]->reasm);
            free(in->slots[i]);
        }
    free(in->slots);
    if (in->stream)
        zmq_close(in->stream);
    if (in->pull)
        zmq_close(in->pull);
    if (in->acks)
        zmq_close(in->acks);
    for (unsigned i = 0; in->push && i < in->args->workers; i++)
        if (in->push[i])
            zmq_close(in->push[i]);
    free(in->push);
    free(in->staged);
    for (unsigned c = 0; c < VEM_CONSUMERS; c++)
        vem_ackwin_destroy(&in->done[c]);
    vem_spool_reader_destroy(&in->replay);
}

void vem_ingest_actor(void *pipe, void *args_)
{
    s_ingest_t in = {.args = args_};
    in.capacity = 1024;
    in.slots = calloc(in.capacity, sizeof *in.slots);
    in.staged = calloc(S_BATCH, sizeof *in.staged);
    if (!in.slots || !in.staged)
        abort();
    /* Everything before replay_from is done everywhere; replayed records are acknowledged
     * again by whoever processes them. */
    in.replay_end = vem_spool_next_seq(in.args->spool);
    uint64_t from = in.args->replay_from && in.args->replay_from < in.replay_end
                        ? in.args->replay_from
                        : in.replay_end;
    in.trimmed = from - 1;
    for (unsigned c = 0; c < VEM_CONSUMERS; c++)
        if (in.args->consumers & 1u << c)
            in.done[c] = vem_ackwin_new(from - 1);
    char err[300];
    if (from < in.replay_end) {
        in.replay = vem_spool_reader_new(in.args->spool_dir, from, err, sizeof err);
        if (!in.replay) {
            s_teardown(&in);
            vem_actor_ready(pipe, err);
            return;
        }
        vem_log(VEM_LOG_NOTICE, "ingest", "replaying spool records %llu..%llu",
                (unsigned long long)from, (unsigned long long)in.replay_end - 1);
    }
    if (s_bind(&in, err, sizeof err) != 0) {
        s_teardown(&in);
        vem_actor_ready(pipe, err);
        return;
    }
    s_register(&in, in.args->metrics);
    vem_actor_ready(pipe, NULL);

    int64_t next_sweep = vem_now_us() + 1000000;
    for (;;) {
        atomic_fetch_add_explicit(&in.args->beats, 1, memory_order_relaxed);
        bool room = vem_spool_has_room(in.args->spool, in.args->max_frame);
        vem_gauge_set(in.spool_full, !room);
        zmq_pollitem_t items[4] = {{pipe, 0, ZMQ_POLLIN, 0}, {in.acks, 0, ZMQ_POLLIN, 0}};
        int n = 2;
        if (room) {
            items[n++] = (zmq_pollitem_t){in.stream, 0, ZMQ_POLLIN, 0};
            if (in.pull)
                items[n++] = (zmq_pollitem_t){in.pull, 0, ZMQ_POLLIN, 0};
        }
        if (zmq_poll(items, n, in.replay ? 0 : 250) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if ((items[0].revents & ZMQ_POLLIN) && vem_actor_should_stop(pipe))
            break;
        if (items[1].revents & ZMQ_POLLIN)
            s_on_acks(&in);
        if (n > 2 && (items[2].revents & ZMQ_POLLIN))
            for (int i = 0; i < S_BATCH && vem_spool_has_room(in.args->spool, in.args->max_frame);
                 i++) {
                int events = 0;
                size_t sz = sizeof events;
                zmq_getsockopt(in.stream, ZMQ_EVENTS, &events, &sz);
                if (!(events & ZMQ_POLLIN))
                    break;
                s_on_stream(&in);
            }
        if (n > 3 && (items[3].revents & ZMQ_POLLIN))
            s_on_pull(&in);
        if (in.replay)
            s_replay(&in);
        s_flush(&in); /* one fdatasync for everything read in this round */
        if (vem_now_us() >= next_sweep) {
            s_sweep_idle(&in);
            next_sweep = vem_now_us() + 1000000;
        }
    }
    /* Drain: stop reading, make the spool durable, hand over what was staged. Buffered partial
     * frames stay in their reassemblers: the terminals will send them again. */
    s_flush(&in);
    vem_spool_flush(in.args->spool);
    s_teardown(&in);
}
