/* ingest_term — terminals: the ZMQ_STREAM socket, one state per connection, reassembly, the
 * rejects budget, closing; run by the ingest thread (ingest.c), which owns all of it.
 *
 * ZMQ_STREAM routing ids are 5 bytes (a zero byte and a 32-bit counter, never reused): packed
 * into a u64 they key an open-addressing table of connections with tombstones for removal.
 * Connections we close get no disconnect event from libzmq, so their state is dropped at once;
 * an empty message for the id of a connection we closed is a late notice of its end, not a new
 * connection (the last VEM_INGEST_CLOSED_KEYS closes are remembered).
 *
 * Closing: the close (the id, then an empty frame) is refused with EAGAIN while the pipe to
 * the peer is full, i.e. the peer does not read. Such a connection stays in the table, counted
 * against the limits, as "close pending": its data is discarded (counted), the close is tried
 * again at the sweep, and after S_FORCE_MS its TCP socket (known from ZMQ_SRCFD at the
 * connection's start) is shut down under libzmq, which then reports its end: only then does it
 * leave the table. terminals.send_timeout_s (TCP_USER_TIMEOUT) makes the kernel drop a silent
 * connection whose replies stay unread. A peer whose replies are refused the same way for
 * S_DEAF_MS (ingest_reply.c), none taken in between, is deaf: it gets no more replies and is
 * closed at the next sweep.
 *
 * Rejected bytes: the reassembler gives up bytes one event at a time (one byte per rejected
 * candidate); ingest gathers the bytes given up back to back into one run per connection and
 * quarantines each run once, when a frame, the end of a chunk or the close ends it, classed by
 * its first rejected candidate (bad_start when it had none). Each connection has a budget of
 * rejected bytes kept and of quarantine records; past either, or once its rejected bytes pass
 * terminals.reject_share_pct of what it sent, it is closed (reason rejects), and what it sends
 * until then is counted, not kept. */
#include "clock.h"
#include "hj1239.h"
#include "ingest_int.h"
#include "log.h"
#include "peers.h"
#include "reasm.h"
#include "records.h"
#include "rejects.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <zmq.h>

#define S_FORCE_MS 1000 /* a close refused this long: the TCP socket is shut down */
/* a batch's replies to one peer: 2 parts each */
#define S_STREAM_SNDHWM (2 * VEM_INGEST_BATCH + 64)

/* ---- connection table ---------------------------------------------------------------------- */

uint64_t vem_ingest_key(const uint8_t *id, size_t len)
{
    uint64_t key = 0;
    for (size_t i = 0; i < len && i < 8; i++)
        key = key << 8 | id[i];
    return key;
}

static size_t s_slot(const vem_ingest_t *in, uint64_t key, bool for_insert)
{
    size_t mask = in->capacity - 1;
    size_t i = (size_t)(key * 0x9e3779b97f4a7c15ULL >> 20) & mask;
    size_t first_free = SIZE_MAX;
    for (;;) {
        vem_ingest_conn_t *c = in->slots[i];
        if (!c)
            return for_insert && first_free != SIZE_MAX ? first_free : i;
        if (c == VEM_INGEST_TOMBSTONE) {
            if (first_free == SIZE_MAX)
                first_free = i;
        } else if (c->key == key) {
            return i;
        }
        i = (i + 1) & mask;
    }
}

vem_ingest_conn_t *vem_ingest_find(const vem_ingest_t *in, uint64_t key)
{
    vem_ingest_conn_t *c = in->slots[s_slot(in, key, false)];
    return c == VEM_INGEST_TOMBSTONE ? NULL : c;
}

static void s_rehash(vem_ingest_t *in, size_t capacity)
{
    vem_ingest_conn_t **old = in->slots;
    size_t old_capacity = in->capacity;
    in->slots = calloc(capacity, sizeof *in->slots);
    if (!in->slots)
        abort();
    in->capacity = capacity;
    in->used = in->count;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i] && old[i] != VEM_INGEST_TOMBSTONE)
            in->slots[s_slot(in, old[i]->key, true)] = old[i];
    free(old);
}

static void s_insert(vem_ingest_t *in, vem_ingest_conn_t *c)
{
    if ((in->used + 1) * 10 > in->capacity * 7)
        s_rehash(in, in->count * 4 > in->capacity ? in->capacity * 2 : in->capacity);
    size_t i = s_slot(in, c->key, true);
    if (!in->slots[i])
        in->used++;
    in->slots[i] = c;
    in->count++;
    vem_gauge_set(in->conns, (int64_t)in->count);
    atomic_store(&in->args->connections, in->count);
}

static void s_remove(vem_ingest_t *in, vem_ingest_conn_t *c)
{
    size_t i = s_slot(in, c->key, false);
    if (in->slots[i] == c) {
        in->slots[i] = VEM_INGEST_TOMBSTONE;
        in->count--;
    }
    if (c->admitted)
        vem_peers_release(in->peers, c->addr);
    if (c->refused_ms)
        in->nrefusing--;
    vem_reasm_destroy(&c->reasm);
    vem_rejects_destroy(&c->rejects);
    free(c);
    vem_gauge_set(in->conns, (int64_t)in->count);
    atomic_store(&in->args->connections, in->count);
}

/* ---- terminals ---------------------------------------------------------------------------- */

static void s_close_msg(vem_ingest_t *in, vem_ingest_conn_t *conn, vem_counter_t *reason);

/* Quarantines conn's run of rejected bytes (rejects.h) within its budget, and closes conn
 * once the budget is spent. The caller made room for one input. */
static void s_flush_run(vem_ingest_t *in, vem_ingest_conn_t *conn)
{
    vem_rejects_run_t run;
    if (vem_rejects_take(conn->rejects, &run)) {
        char detail[112];
        snprintf(detail, sizeof detail, "%zu bytes in %u rejections%s, first: %s", run.given_up,
                 run.drops, run.len < run.given_up ? " (over budget, not kept)" : "",
                 run.detail ? run.detail : "");
        vem_ingest_stage(in, VEM_SOURCE_TERMINAL, conn, NULL, VEM_SPOOL_KIND_QUARANTINE, run.data,
                         run.len, run.error, run.offset, detail);
    }
    const char *spent = vem_rejects_spent(conn->rejects);
    if (!spent || conn->gone)
        return;
    vem_log(VEM_LOG_WARNING, "ingest",
            "closing %s: reject budget spent (%s): %llu of %llu bytes rejected, %u quarantine "
            "records, %llu bytes kept",
            conn->meta, spent, (unsigned long long)vem_rejects_given_up(conn->rejects),
            (unsigned long long)vem_rejects_received_bytes(conn->rejects),
            vem_rejects_records(conn->rejects),
            (unsigned long long)vem_rejects_kept(conn->rejects));
    s_close_msg(in, conn, in->closed_rejects);
}

/* Adds the bytes a drop gave up to conn's run (the caller made room for two inputs). */
static void s_add_rejected(vem_ingest_t *in, vem_ingest_conn_t *conn, const vem_reasm_event_t *ev)
{
    if (vem_rejects_must_take(conn->rejects, ev))
        s_flush_run(in, conn);
    vem_rejects_add(conn->rejects, ev);
    if (vem_rejects_spent(conn->rejects) && !conn->gone)
        s_flush_run(in, conn); /* the share was passed: its last run, and the close */
}

/* One connection, one vehicle: true when a whole frame may go on as it is. The first frame
 * binds the connection to its VIN; a frame of another VIN (a second login switching VIN
 * included) is refused: quarantined as vin_switch, the connection closed, and what it still
 * holds quarantined the same way (gateways forwarding many vehicles use the gateway
 * endpoint). */
static bool s_bound(vem_ingest_t *in, vem_ingest_conn_t *conn, const uint8_t *frame, size_t len,
                    char *detail, size_t detail_len)
{
    if (!in->args->bind_vin || len < VEM_HJ1239_MIN_FRAME)
        return true; /* the worker's decoder says what is wrong with a short one */
    const uint8_t *vin = vem_hj1239_header_vin(frame);
    if (!conn->bound) {
        memcpy(conn->vin, vin, 17);
        conn->bound = true;
        return true;
    }
    if (!conn->refused && memcmp(conn->vin, vin, 17) == 0)
        return true;
    snprintf(detail, detail_len, "%s on a connection bound to VIN %.17s",
             conn->refused ? "frame after the close" : "another VIN", (const char *)conn->vin);
    if (!conn->refused) {
        conn->refused = true;
        vem_log(VEM_LOG_WARNING, "ingest",
                "%s: frame for VIN %.17s on a connection bound to "
                "%.17s: quarantined, connection closed",
                conn->meta, (const char *)vin, (const char *)conn->vin);
        s_close_msg(in, conn, in->closed_switch); /* no draining from inside the drain */
    }
    return false;
}

/* Runs the reassembler of conn over what it holds while the spool can take its events; false
 * when it had to stop (the caller keeps the chunk). A pending run needs a second input's room
 * (it is quarantined before the frame that ends it). */
static bool s_drain_reasm(vem_ingest_t *in, vem_ingest_conn_t *conn)
{
    for (;;) {
        if (in->nstaged + VEM_INGEST_ROOM_INPUTS > VEM_INGEST_BATCH)
            vem_ingest_commit(in);
        if (!vem_ingest_can_stage_n(in, VEM_INGEST_ROOM_INPUTS))
            return false;
        vem_reasm_event_t ev;
        bool was_gone = conn->gone;
        if (vem_reasm_next(conn->reasm, &ev) == VEM_REASM_NEED_MORE) {
            s_flush_run(in, conn);
            if (conn->gone && !was_gone)
                continue; /* the budget closed it: what the reassembler holds comes out */
            return true;
        }
        char why[VEM_HJ1239_DETAIL_LEN];
        if (ev.kind == VEM_REASM_FRAME && !s_bound(in, conn, ev.data, ev.len, why, sizeof why)) {
            s_flush_run(in, conn);
            vem_ingest_stage(in, VEM_SOURCE_TERMINAL, conn, NULL, VEM_SPOOL_KIND_QUARANTINE,
                             ev.data, ev.len, VEM_RECORD_CLASS_VIN_SWITCH, 3, why);
        } else if (ev.kind == VEM_REASM_FRAME) {
            s_flush_run(in, conn);
            vem_ingest_stage(in, VEM_SOURCE_TERMINAL, conn, NULL, VEM_SPOOL_KIND_OBD_FRAME, ev.data,
                             ev.len, 0, ev.offset, NULL);
        } else {
            if (ev.error > 0 && ev.error < VEM_HJ1239_STATUS_COUNT)
                vem_counter_add(in->drops[ev.error], 1);
            vem_log(VEM_LOG_DEBUG, "ingest", "%s at stream offset %llu: %s (%s)",
                    vem_hj1239_status_name(ev.error), (unsigned long long)ev.offset,
                    ev.detail ? ev.detail : "", conn->meta);
            s_add_rejected(in, conn, &ev);
        }
    }
}

/* After a complete drain: a connection that is closed and whose close went through leaves. */
static void s_drained(vem_ingest_t *in, vem_ingest_conn_t *conn)
{
    vem_rejects_trim(conn->rejects); /* its run was taken at the end of the chunk */
    if (conn->gone && !conn->close_pending) {
        vem_counter_add(conn->closed_as, 1);
        s_remove(in, conn);
    }
}

/* Drains conn's reassembler; when it has to stop, conn keeps its chunk (moved from *chunk, or
 * NULL when the reassembler holds no borrowed bytes) and waits in the stalled list. */
static void s_drain_or_stall(vem_ingest_t *in, vem_ingest_conn_t *conn, zmq_msg_t *chunk)
{
    if (s_drain_reasm(in, conn)) {
        s_drained(in, conn);
        return;
    }
    zmq_msg_init(&conn->chunk);
    if (chunk)
        zmq_msg_move(&conn->chunk, chunk);
    conn->stalled = true;
    in->stalled[in->nstalled++] = conn;
}

/* Resumes stalled drains in arrival order; true when none is left. */
bool vem_ingest_resume_stalled(vem_ingest_t *in)
{
    size_t done = 0;
    while (done < in->nstalled) {
        vem_ingest_conn_t *conn = in->stalled[done];
        if (!s_drain_reasm(in, conn))
            break;
        zmq_msg_close(&conn->chunk);
        conn->stalled = false;
        done++;
        s_drained(in, conn);
    }
    memmove(in->stalled, in->stalled + done, (in->nstalled - done) * sizeof *in->stalled);
    in->nstalled -= done;
    return in->nstalled == 0;
}

/* True (and forgotten) when key is a connection vemd closed itself: libzmq may still report
 * its end. Routing ids are never reused, so an id seen here is never a new connection; ids of
 * new connections may arrive out of order, so "not above the highest seen" would not do. */
static bool s_closed_by_us(vem_ingest_t *in, uint64_t key)
{
    size_t n = in->nclosed < VEM_INGEST_CLOSED_KEYS ? in->nclosed : VEM_INGEST_CLOSED_KEYS;
    for (size_t i = 0; i < n; i++)
        if (in->closed_keys[i] == key) {
            in->closed_keys[i] = 0; /* keys are never 0: a zero byte and a counter from 1 */
            return true;
        }
    return false;
}

/* Hands libzmq the close of conn; true when it took it (or the connection is gone already).
 * While the peer's pipe is full it refuses (EAGAIN): conn stays, close pending. */
static bool s_try_close(vem_ingest_t *in, vem_ingest_conn_t *conn)
{
    /* The empty frame only after the id was taken: a lone empty frame would be read as the
     * next message's id and put the socket's framing out of step for good. */
    if (zmq_send(in->stream, conn->id, conn->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 &&
        zmq_errno() == EAGAIN) {
        if (!conn->close_pending) {
            conn->close_pending = true;
            conn->pending_ms = vem_mono_ms();
            in->npending++;
            vem_log(VEM_LOG_NOTICE, "ingest",
                    "%s does not read: its close waits (retried, then its TCP socket is shut down; "
                    "after terminals.send_timeout_s)",
                    conn->meta);
        }
        return false;
    }
    zmq_send(in->stream, "", 0, ZMQ_DONTWAIT); /* (after EHOSTUNREACH: a no-op) */
    in->closed_keys[in->nclosed++ % VEM_INGEST_CLOSED_KEYS] = conn->key;
    if (conn->close_pending) {
        conn->close_pending = false;
        in->npending--;
    }
    return true;
}

/* Closes conn from our side without draining it: no more data is taken from it. */
static void s_close_msg(vem_ingest_t *in, vem_ingest_conn_t *conn, vem_counter_t *reason)
{
    vem_reasm_end(conn->reasm);
    conn->gone = true;
    conn->closed_as = reason;
    s_try_close(in, conn);
}

/* The close of conn has waited S_FORCE_MS: libzmq would keep the connection while the peer
 * sends and reads nothing. Its TCP socket is shut down under libzmq (which then sees the end
 * and reports it, so the state goes), once the descriptor is checked to be still the same
 * connection: the same two ends as at its start (a closed descriptor's number may be reused). */
static void s_force_close(vem_ingest_conn_t *conn)
{
    struct sockaddr_storage peer, local;
    socklen_t peer_len = sizeof peer, local_len = sizeof local;
    if (conn->fd < 0 || getpeername(conn->fd, (struct sockaddr *)&peer, &peer_len) != 0 ||
        getsockname(conn->fd, (struct sockaddr *)&local, &local_len) != 0 ||
        peer_len != conn->peer_len || local_len != conn->local_len ||
        memcmp(&peer, &conn->peer_sa, peer_len) != 0 ||
        memcmp(&local, &conn->local_sa, local_len) != 0)
        return; /* gone already: libzmq reports its end */
    vem_log(VEM_LOG_WARNING, "ingest", "%s: its close waited %d ms; shutting its TCP socket down",
            conn->meta, S_FORCE_MS);
    shutdown(conn->fd, SHUT_RDWR);
    conn->fd = -1;
}

/* Closes a terminal connection from our side; what it had buffered is quarantined. */
static void s_close(vem_ingest_t *in, vem_ingest_conn_t *conn, vem_counter_t *reason)
{
    s_close_msg(in, conn, reason);
    s_drain_or_stall(in, conn, NULL);
}

/* A new connection: its state, and the checks of the limits (closed at once past one). */
static void s_on_connect(vem_ingest_t *in, uint64_t key, zmq_msg_t *id, zmq_msg_t *data)
{
    vem_ingest_conn_t *conn = calloc(1, sizeof *conn);
    if (!conn)
        abort();
    conn->key = key;
    conn->id_len = zmq_msg_size(id) < 8 ? zmq_msg_size(id) : 8;
    memcpy(conn->id, zmq_msg_data(id), conn->id_len);
    conn->conn_id = ++in->next_conn_id;
    conn->last_read_ms = vem_ingest_open_ms(in);
    const char *peer = zmq_msg_gets(data, "Peer-Address");
    conn->fd = zmq_msg_get(data, ZMQ_SRCFD); /* deprecated in libzmq, but the only way to it */
    conn->peer_len = sizeof conn->peer_sa;
    conn->local_len = sizeof conn->local_sa;
    if (conn->fd >= 0 &&
        (getpeername(conn->fd, (struct sockaddr *)&conn->peer_sa, &conn->peer_len) != 0 ||
         getsockname(conn->fd, (struct sockaddr *)&conn->local_sa, &conn->local_len) != 0))
        conn->fd = -1;
    snprintf(conn->addr, sizeof conn->addr, "%s", peer ? peer : "?");
    int n = snprintf(conn->meta, sizeof conn->meta, "tcp %s #%u", conn->addr, conn->conn_id);
    conn->meta_len = (uint16_t)(n < (int)sizeof conn->meta ? n : (int)sizeof conn->meta - 1);
    conn->reasm = vem_reasm_new(in->args->max_frame);
    vem_rejects_budget_t budget = {.run_max = in->args->max_frame,
                                   .max_bytes = in->args->reject_bytes,
                                   .max_records = in->args->reject_records,
                                   .share_pct = in->args->reject_share_pct};
    conn->rejects = vem_rejects_new(&budget);
    if (!conn->reasm || !conn->rejects)
        abort();
    s_insert(in, conn);
    vem_counter_add(in->accepted, 1);
    if (in->count > in->args->max_connections) {
        vem_log(VEM_LOG_WARNING, "ingest", "connection limit %u reached: closing %s",
                in->args->max_connections, conn->meta);
        s_close(in, conn, in->closed_limit);
        return;
    }
    vem_peers_verdict_t v = vem_peers_admit(in->peers, conn->addr, vem_mono_ms() * 1000);
    vem_gauge_set(in->addresses, (int64_t)vem_peers_count(in->peers));
    if (v == VEM_PEERS_OK) {
        conn->admitted = true;
        return;
    }
    if (v == VEM_PEERS_TOO_MANY)
        vem_log(VEM_LOG_WARNING, "ingest", "%u connections from %s already: closing %s",
                in->args->max_per_address, conn->addr, conn->meta);
    else
        vem_log(VEM_LOG_WARNING, "ingest", "over %u new connections a second from %s: closing %s",
                in->args->new_per_address_s, conn->addr, conn->meta);
    s_close(in, conn, v == VEM_PEERS_TOO_MANY ? in->closed_addr_limit : in->closed_addr_rate);
}

void vem_ingest_on_stream(vem_ingest_t *in)
{
    zmq_msg_t id, data;
    zmq_msg_init(&id);
    zmq_msg_init(&data);
    if (zmq_msg_recv(&id, in->stream, ZMQ_DONTWAIT) < 0 ||
        zmq_msg_recv(&data, in->stream, ZMQ_DONTWAIT) < 0)
        goto done;
    uint64_t key = vem_ingest_key(zmq_msg_data(&id), zmq_msg_size(&id));
    vem_ingest_conn_t *conn = vem_ingest_find(in, key);
    size_t len = zmq_msg_size(&data);
    if (len == 0) {
        if (!conn && s_closed_by_us(in, key)) {
            vem_counter_add(in->late_notices, 1); /* a connection we closed ourselves */
        } else if (!conn) {                       /* a new connection */
            s_on_connect(in, key, &id, &data);
        } else if (!conn->gone) { /* the peer went away */
            vem_reasm_end(conn->reasm);
            conn->gone = true;
            conn->closed_as = in->closed_peer;
            s_drain_or_stall(in, conn, NULL);
        } else if (conn->close_pending) { /* its end, while our close waited: really gone */
            conn->close_pending = false;
            in->npending--;
            if (!conn->stalled)
                s_drained(in, conn);
        }
        goto done;
    }
    vem_counter_add(in->bytes_terminals, len);
    if (!conn || conn->gone) {
        vem_counter_add(in->discarded, len); /* a connection we are closing, or closed */
        goto done;
    }
    conn->last_read_ms = vem_ingest_open_ms(in);
    vem_rejects_received(conn->rejects, len);
    vem_reasm_feed(conn->reasm, zmq_msg_data(&data), len);
    s_drain_or_stall(in, conn, &data);
done:
    zmq_msg_close(&id);
    zmq_msg_close(&data);
}

/* Once a second: closes idle and deaf connections, tries pending closes again, forgets
 * addresses no longer needed. Idle is silent for idle_timeout_s on the intake clock: while
 * intake is paused (spool full, a flush failing, a drain stalled) nothing is read, and a truck
 * whose frames wait in its socket meanwhile is not silent; closed, what it wrote would be lost
 * (a reply-less terminal never sends it again). */
void vem_ingest_sweep_idle(vem_ingest_t *in)
{
    int64_t deadline = vem_ingest_open_ms(in) - (int64_t)in->args->idle_timeout_s * 1000;
    bool room = true; /* closing a connection drains it: that needs spool room, a retry not */
    unsigned idle = 0;
    for (size_t i = 0; i < in->capacity; i++) {
        room = room && vem_ingest_can_stage(in);
        if (!room && in->npending == 0)
            break;
        vem_ingest_conn_t *c = in->slots[i];
        if (!c || c == VEM_INGEST_TOMBSTONE || c->stalled)
            continue;
        if (c->gone) {
            if (c->close_pending && s_try_close(in, c))
                s_drained(in, c);
            else if (c->close_pending && vem_mono_ms() - c->pending_ms >= S_FORCE_MS)
                s_force_close(c);
        } else if (!room) {
            continue;
        } else if (c->deaf) {
            vem_log(VEM_LOG_WARNING, "ingest", "closing %s: it does not read its replies", c->meta);
            s_close(in, c, in->closed_unread);
        } else if (c->last_read_ms < deadline) {
            vem_log(VEM_LOG_DEBUG, "ingest", "closing idle connection %s", c->meta);
            s_close(in, c, in->closed_idle);
            idle++;
        }
    }
    if (idle) /* one line a sweep: many at once (after an outage of the network) must show */
        vem_log(VEM_LOG_NOTICE, "ingest", "closed %u idle connection%s (nothing read for %lld s)",
                idle, idle == 1 ? "" : "s", (long long)in->args->idle_timeout_s);
    vem_peers_sweep(in->peers, vem_mono_ms() * 1000);
    vem_gauge_set(in->addresses, (int64_t)vem_peers_count(in->peers));
}

int vem_ingest_bind_terminals(vem_ingest_t *in, char *err, size_t errlen)
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
    zmq_setsockopt(in->stream, ZMQ_TCP_MAXRT, &a->send_timeout_ms, sizeof a->send_timeout_ms);
    int sndhwm = S_STREAM_SNDHWM;
    zmq_setsockopt(in->stream, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    if (zmq_bind(in->stream, a->terminals_endpoint) != 0) {
        snprintf(err, errlen, "cannot bind terminals endpoint %s: %s", a->terminals_endpoint,
                 zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}
