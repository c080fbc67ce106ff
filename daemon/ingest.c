/* ingest — network intake, spool append, replies, routing; see ingest.h.
 *
 * Loop: poll the control pipe, the acks socket, the terminal and gateway sockets (while intake
 * is open) and, while a catch-up message waits for room, that worker's queue. Read a bounded
 * batch of inputs; append each to the spool (in memory) and stage its reply. Commit once per
 * batch: flush the spool (write + fdatasync, group commit), then at once answer the terminals
 * (never blocking: NOTES.md saw one blocking send to a silent client freeze a STREAM socket),
 * then forward the inputs to the workers. A failed flush answers nobody and forwards nothing;
 * intake stays closed and the same batch is flushed again after a pause until it succeeds.
 *
 * Forwarding never waits. While every worker takes what it is given, inputs go to the workers
 * from memory ("live"). When a worker's queue is full, ingest falls behind: it stops handing
 * over from memory and a catch-up reader feeds the workers from the spool, up to what is
 * durable, as their queues drain, until it reaches the live edge again. A restart starts
 * behind, at the lowest consumer's cursor, so replay after a crash is the same path.
 *
 * Intake closes only when the spool cannot take VEM_INGEST_ROOM_INPUTS more inputs of the
 * largest size (headroom for a run of rejected bytes and the frame that ends it: a chunk is
 * drained record by record and never consumed past what the spool can take; a connection whose
 * chunk is half drained keeps it until room returns), while a batch waits for its flush, or
 * while a flush fails.
 *
 * Consumers acknowledge cumulatively (vem_ack_t); the spool is trimmed below the lowest mark
 * of the active consumers. For the workers the mark is derived: every input up to the last one
 * forwarded, except those of a worker still busy past its own mark.
 *
 * The parts (ingest_int.h): terminals in ingest_term.c, replies and activations in
 * ingest_reply.c, gateways and stations in ingest_gw.c, reading the spool back and trimming it
 * in ingest_replay.c; this file holds the loop, staging and the commit. */
#include "ingest.h"

#include "actor.h"
#include "clock.h"
#include "hj1239.h"
#include "ingest_int.h"
#include "keys.h"
#include "log.h"
#include "peers.h"
#include "pipeline.h"
#include "fileio.h"
#include "records.h"
#include "session.h"
#include "stations.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_FLUSH_RETRY_MAX_MS 5000

/* ---- staging and committing ---------------------------------------------------------------- */

/* The route of a roadside reading in its spool meta text: "V:<vin>" or "P:<plate>" after " >"
 * (stations.h), or NULL. */
const char *vem_ingest_route(const char *meta)
{
    const char *r = strstr(meta, " >");
    return r && (r[2] == 'V' || r[2] == 'P') && r[3] == ':' ? r + 2 : NULL;
}

/* Worker that owns an input: by VIN for frames, so one worker holds each vehicle's state; by
 * the route for roadside readings (the VIN the registry gave, else the plate), so a truck's
 * readings meet its frames; by seq for everything else, which needs no state (the same on a
 * replay as live). */
unsigned vem_ingest_worker_of(const vem_ingest_t *in, uint16_t kind, uint64_t seq,
                              const uint8_t *data, size_t len, const char *route)
{
    uint64_t h = seq * 0x9e3779b97f4a7c15ULL;
    if (kind == VEM_SPOOL_KIND_OBD_FRAME && len >= VEM_HJ1239_MIN_FRAME)
        h = vem_vin_hash((const char *)vem_hj1239_header_vin(data));
    else if (kind == VEM_SPOOL_KIND_RSD_READING && route && route[0] == 'V' &&
             strlen(route) >= 2 + VEM_VIN_LEN)
        h = vem_vin_hash(route + 2);
    else if (kind == VEM_SPOOL_KIND_RSD_READING && route)
        h = vem_plate_hash(route + 2);
    return (unsigned)(h % in->args->workers);
}

/* Builds the worker message of an input. */
void vem_ingest_message(zmq_msg_t *msg, const vem_input_hdr_t *hdr, const char *detail,
                        const uint8_t *data)
{
    zmq_msg_init_size(msg, sizeof *hdr + hdr->detail_len + hdr->data_len);
    uint8_t *p = zmq_msg_data(msg);
    memcpy(p, hdr, sizeof *hdr);
    if (hdr->detail_len)
        memcpy(p + sizeof *hdr, detail, hdr->detail_len);
    if (hdr->data_len)
        memcpy(p + sizeof *hdr + hdr->detail_len, data, hdr->data_len);
}

/* True when n more inputs can be staged now. */
bool vem_ingest_can_stage_n(const vem_ingest_t *in, size_t n)
{
    return !in->flush_failed && in->nstaged + n <= VEM_INGEST_BATCH &&
           vem_spool_has_room(in->args->spool, n * in->headroom);
}

/* True when one more input can be staged now. */
bool vem_ingest_can_stage(const vem_ingest_t *in)
{
    return vem_ingest_can_stage_n(in, 1);
}

/* Appends one input to the spool and stages its reply and (when live) its worker message;
 * returns its seq. The caller made sure it can (vem_ingest_can_stage): only a record over the
 * spool's size limit fails, and its size is quarantined instead. Quarantined bytes keep their
 * verdict and detail in the meta text (" !CLASS@OFFSET:DETAIL"), so a replay knows them; a roadside
 * reading keeps its route there (" >V:VIN"). origin: the meta of an input of no connection
 * (NULL: "gateway"). */
uint64_t vem_ingest_stage(vem_ingest_t *in, vem_source_t source, vem_ingest_conn_t *conn,
                          const char *origin, uint16_t kind, const uint8_t *data, size_t len,
                          unsigned error, uint64_t offset, const char *detail)
{
    if (in->nstaged == 0 && atomic_load(&in->args->staged_from_us) == 0)
        atomic_store(&in->args->staged_from_us, vem_now_us()); /* before the stamp below */
    int64_t now = vem_now_us();
    origin = conn ? conn->meta : origin ? origin : "gateway";
    char why[VEM_HJ1239_DETAIL_LEN];
    int activation = -1;
    vem_hj1239_frame_t *act = NULL; /* an activation that passed, filed once appended */
    const char *over = kind == VEM_SPOOL_KIND_OBD_FRAME && len >= VEM_HJ1239_MIN_FRAME &&
                               data[2] == VEM_HJ1239_CMD_ACTIVATION && in->args->keys
                           ? vem_ingest_activation_budget(in, conn)
                           : NULL;
    if (over) {
        vem_counter_add(in->activations_over, 1);
        vem_log(VEM_LOG_WARNING, "ingest", "activation from %s not judged: over %s", origin, over);
        snprintf(why, sizeof why, "over %s: not judged", over);
        kind = VEM_SPOOL_KIND_QUARANTINE;
        error = VEM_RECORD_CLASS_TOO_MANY_ACTIVATIONS;
        detail = why;
        offset = 0;
    } else if (kind == VEM_SPOOL_KIND_OBD_FRAME && len >= VEM_HJ1239_MIN_FRAME &&
               data[2] == VEM_HJ1239_CMD_ACTIVATION && in->args->keys) {
        activation = vem_ingest_activation(in, data, len, &act, &kind, &error, why, sizeof why);
        if (kind == VEM_SPOOL_KIND_QUARANTINE) {
            detail = why;
            offset = 0;
        }
    }
    char meta[VEM_INGEST_META_MAX];
    int64_t paused = kind == VEM_SPOOL_KIND_OBD_FRAME ? vem_ingest_paused_us(in) : 0;
    int meta_len = kind == VEM_SPOOL_KIND_QUARANTINE
                       ? snprintf(meta, sizeof meta, "%s !%u@%llu:%s", origin, error,
                                  (unsigned long long)offset, detail ? detail : "")
                   : paused > 0
                       ? snprintf(meta, sizeof meta, "%s ~p%lld", origin, (long long)paused)
                       : snprintf(meta, sizeof meta, "%s", origin);
    if (meta_len >= (int)sizeof meta)
        meta_len = (int)sizeof meta - 1;
    vem_spool_rec_t rec = {.received_us = now,
                           .kind = kind,
                           .meta = (const uint8_t *)meta,
                           .meta_len = (uint16_t)meta_len,
                           .data = data,
                           .data_len = (uint32_t)len};
    if (vem_spool_append(in->args->spool, &rec) != 0) {
        /* the record can never fit: keep its size and origin, not its bytes; an activation is
         * neither filed nor answered (the terminal sends it again) */
        free(act);
        vem_counter_add(in->oversize, 1);
        vem_log(VEM_LOG_WARNING, "ingest", "input of %zu bytes from %s refused by the spool: %s",
                len, origin, strerror(errno));
        char note[96];
        snprintf(note, sizeof note, "input of %zu bytes over the spool's record limit", len);
        return vem_ingest_stage(in, source, conn, origin, VEM_SPOOL_KIND_QUARANTINE, NULL, 0,
                                VEM_RECORD_CLASS_TOO_LARGE, 0, note);
    }
    if (activation == VEM_KEYS_OK)
        activation = vem_ingest_file_activation(in, act);
    free(act);
    vem_ingest_staged_t *st = &in->staged[in->nstaged++];
    st->seq = rec.seq;
    meta[meta_len] = '\0';
    const char *route = kind == VEM_SPOOL_KIND_RSD_READING ? vem_ingest_route(meta) : NULL;
    st->worker = vem_ingest_worker_of(in, kind, rec.seq, data, len, route);
    st->has_msg = in->live;
    if (st->has_msg) {
        const char *d = kind == VEM_SPOOL_KIND_QUARANTINE ? strstr(meta, " !") : NULL;
        d = d ? strchr(d, ':') : route ? route - 1 : NULL;
        vem_input_hdr_t hdr = {.seq = rec.seq,
                               .received_us = now,
                               .paused_us = paused,
                               .nseqs = 1,
                               .data_len = (uint32_t)len,
                               .kind = kind,
                               .source = (uint8_t)source,
                               .error = (uint8_t)error,
                               .error_offset = (uint32_t)offset,
                               .detail_len = d ? (uint16_t)strlen(d + 1) : 0};
        vem_ingest_message(&st->msg, &hdr, d ? d + 1 : NULL, data);
    }
    st->reply_len = sizeof st->reply_buf;
    bool can_reply = conn && !conn->deaf && !conn->gone;
    st->reply = can_reply && kind == VEM_SPOOL_KIND_OBD_FRAME &&
                vem_ingest_reply(in, data, len, st->reply_buf);
    if (can_reply && activation >= 0) {
        vem_ingest_activation_reply(data, (vem_keys_verdict_t)activation, st->reply_buf);
        st->reply_len = 27;
        st->reply = true;
    }
    if (st->reply) {
        st->id_len = conn->id_len;
        memcpy(st->id, conn->id, conn->id_len);
    }
    vem_counter_add(in->inputs, 1);
    return rec.seq;
}

/* Hands a message to worker w without waiting; false (message kept) when its queue is full. */
bool vem_ingest_forward(vem_ingest_t *in, zmq_msg_t *msg, unsigned w, uint64_t seq, uint32_t nseqs)
{
    if (zmq_msg_send(msg, in->push[w], ZMQ_DONTWAIT) < 0)
        return false;
    uint64_t last = seq + nseqs - 1; /* a replayed input lies below: marks never go back */
    if (last > in->sent_last[w])
        in->sent_last[w] = last;
    if (last > in->forwarded)
        in->forwarded = last;
    atomic_fetch_add_explicit(&in->args->forwarded[w], 1, memory_order_relaxed);
    return true;
}

/* Goes behind: from seq on, the workers are fed from the spool. */
static void s_fall_behind(vem_ingest_t *in, uint64_t seq)
{
    in->live = false;
    atomic_store(&in->args->behind, true);
    in->fwd_next = seq;
    vem_counter_add(in->behind, 1);
    vem_log(VEM_LOG_INFO, "ingest", "workers busy: forwarding from the spool from input %llu",
            (unsigned long long)seq);
}

/* Makes the staged batch durable, then answers the terminals, then forwards the inputs. True
 * when nothing is left staged. On a failed flush nothing is answered or forwarded: the batch
 * stays staged (and in the spool's memory) and is flushed again after a pause. */
bool vem_ingest_commit(vem_ingest_t *in)
{
    if (in->nstaged == 0)
        return true;
    if (in->flush_failed && vem_mono_ms() < in->flush_retry_ms)
        return false;
    if (vem_spool_flush(in->args->spool) != 0) {
        vem_counter_add(in->spool_errors, 1);
        if (!in->flush_failed)
            vem_log(VEM_LOG_ERR, "ingest",
                    "spool flush failed: %s; intake paused, %zu inputs unanswered until a retry "
                    "succeeds",
                    strerror(errno), in->nstaged);
        in->flush_backoff_ms = vem_backoff_doubled(in->flush_failed ? in->flush_backoff_ms : 0,
                                                   VEM_INGEST_FLUSH_RETRY_MS, S_FLUSH_RETRY_MAX_MS);
        in->flush_retry_ms = vem_mono_ms() + in->flush_backoff_ms;
        in->flush_failed = true;
        atomic_store(&in->args->spool_ok, false);
        return false;
    }
    if (in->flush_failed) {
        vem_log(VEM_LOG_NOTICE, "ingest", "spool flush succeeded again; intake resumed");
        in->flush_failed = false;
        atomic_store(&in->args->spool_ok, true);
    }
    atomic_store(&in->args->durable_seq, vem_spool_durable_seq(in->args->spool));
    vem_ingest_send_replies(in);
    if (in->stations)
        vem_stations_answer(in->stations, vem_spool_durable_seq(in->args->spool));
    for (size_t i = 0; i < in->nstaged; i++) {
        vem_ingest_staged_t *st = &in->staged[i];
        if (!st->has_msg)
            continue;
        if (in->live && !vem_ingest_forward(in, &st->msg, st->worker, st->seq, 1))
            s_fall_behind(in, st->seq);
        if (!in->live)
            zmq_msg_close(&st->msg);
    }
    in->nstaged = 0;
    atomic_store(&in->args->staged_from_us, 0); /* after the hand-over: vem_ingest_sweep_now */
    vem_gauge_set(in->spool_bytes, (int64_t)vem_spool_bytes(in->args->spool));
    return true;
}

/* A message from main on the pipe: a registry snapshot for the stations' routing, or $TERM.
 * True to stop. */
static bool s_on_pipe(vem_ingest_t *in, void *pipe)
{
    uint8_t msg[sizeof VEM_INGEST_REGISTRY_MSG + sizeof(void *)];
    int len = zmq_recv(pipe, msg, sizeof msg, 0);
    if (len < 0)
        return true;
    if ((size_t)len == sizeof msg &&
        memcmp(msg, VEM_INGEST_REGISTRY_MSG, sizeof VEM_INGEST_REGISTRY_MSG) == 0) {
        vem_registry_t *fresh;
        memcpy(&fresh, msg + sizeof VEM_INGEST_REGISTRY_MSG, sizeof fresh);
        if (in->stations)
            vem_stations_set_registry(in->stations, fresh);
        else
            vem_registry_release(fresh);
        return false;
    }
    return vem_actor_is_term(msg, (size_t)len);
}

static void s_register(vem_ingest_t *in, vem_metrics_t *m)
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
    const char *sw[] = {"reason", "vin_switch", NULL};
    in->closed_switch = vem_metrics_counter(m, "vem_connections_closed_total", closed_help, sw);
    for (unsigned v = 0; v < VEM_KEYS_VERDICTS; v++) {
        const char *l[] = {"verdict", vem_keys_verdict_name((vem_keys_verdict_t)v), NULL};
        in->activations[v] = vem_metrics_counter(
            m, "vem_activations_total", "Activations (0x07) judged by ingest, by verdict.", l);
    }
    const char *over[] = {"verdict", "over_limit", NULL};
    in->activations_over = vem_metrics_counter(
        m, "vem_activations_total", "Activations (0x07) judged by ingest, by verdict.", over);
    const char *rej[] = {"reason", "rejects", NULL}, *unread[] = {"reason", "unread", NULL},
               *alimit[] = {"reason", "address_limit", NULL},
               *arate[] = {"reason", "address_rate", NULL};
    in->closed_rejects = vem_metrics_counter(m, "vem_connections_closed_total", closed_help, rej);
    in->closed_unread = vem_metrics_counter(m, "vem_connections_closed_total", closed_help, unread);
    in->closed_addr_limit =
        vem_metrics_counter(m, "vem_connections_closed_total", closed_help, alimit);
    in->closed_addr_rate =
        vem_metrics_counter(m, "vem_connections_closed_total", closed_help, arate);
    in->discarded = vem_metrics_counter(
        m, "vem_bytes_discarded_total",
        "Bytes received on terminal connections vemd was closing or had closed (not kept).", NULL);
    in->gateway_drops = vem_metrics_counter(
        m, "vem_gateway_disconnects_total",
        "Gateway connections that ended (libzmq drops one sending a message over "
        "gateways.max_message_bytes); each leaves a quarantine row.",
        NULL);
    in->addresses =
        vem_metrics_gauge(m, "vem_peer_addresses",
                          "Source addresses with open terminal connections (or new ones).", NULL);
    in->conns = vem_metrics_gauge(m, "vem_connections", "Open terminal connections.", NULL);
    in->reply_dropped = vem_metrics_counter(
        m, "vem_replies_dropped_total", "Replies not sent: the terminal was not reading.", NULL);
    in->spool_errors = vem_metrics_counter(m, "vem_spool_errors_total",
                                           "Spool appends or flushes that failed.", NULL);
    in->spool_read_errors = vem_metrics_counter(
        m, "vem_spool_read_errors_total",
        "Reads of the spool for the workers that failed (tried again after a growing pause).",
        NULL);
    in->inputs = vem_metrics_counter(m, "vem_inputs_total",
                                     "Inputs appended to the spool (frames and quarantine).", NULL);
    in->behind = vem_metrics_counter(
        m, "vem_catchup_total",
        "Times the workers fell behind and were fed from the spool until they caught up.", NULL);
    in->late_notices = vem_metrics_counter(
        m, "vem_late_disconnects_total",
        "Disconnect notices for connections vemd had already closed (ignored).", NULL);
    in->oversize = vem_metrics_counter(
        m, "vem_oversize_inputs_total",
        "Inputs over their size limit: quarantined by size and origin, bytes not kept.", NULL);
    for (unsigned st = 1; st < VEM_HJ1239_STATUS_COUNT; st++) {
        const char *labels[] = {"class", vem_hj1239_status_name((vem_hj1239_status_t)st), NULL};
        in->drops[st] = vem_metrics_counter(
            m, "vem_stream_drops_total", "Byte runs the reassembler rejected, by class.", labels);
    }
    in->spool_bytes = vem_metrics_gauge(m, "vem_spool_bytes", "Bytes held in the spool.", NULL);
    in->spool_full = vem_metrics_gauge(m, "vem_spool_full",
                                       "1 while the spool is full and intake is paused.", NULL);
    in->paused_gauge = vem_metrics_gauge(
        m, "vem_intake_paused_seconds",
        "Seconds intake has been paused in all (spool full, a failing flush, a stalled drain, "
        "vemd stopped), since the spool began, up to the end of the last pause.",
        NULL);
    const char *q[] = {"stage", "settle", NULL}, *fw[] = {"stage", "forward", NULL},
               *ck[] = {"stage", "checkpoint", NULL};
    const char *depth_help = "Inputs in the spool by stage: settle = not yet durable in every "
                             "sink, forward = not yet handed to a worker, checkpoint = kept for "
                             "the rule state (not yet in every worker's checkpoint, or in a sink).";
    in->backlog = vem_metrics_gauge(m, "vem_queue_depth", depth_help, q);
    in->unjudged = vem_metrics_gauge(m, "vem_queue_depth", depth_help, ck);
    in->unforwarded = vem_metrics_gauge(m, "vem_queue_depth", depth_help, fw);
}

static int s_bind(vem_ingest_t *in, char *err, size_t errlen)
{
    vem_ingest_args_t *a = in->args;
    void *ctx = a->zctx;
    int zero = 0;
    if (vem_ingest_bind_terminals(in, err, errlen) != 0 ||
        vem_ingest_bind_gateways(in, err, errlen) != 0)
        return -1;
    in->acks = zmq_socket(ctx, ZMQ_PULL);
    zmq_setsockopt(in->acks, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(in->acks, VEM_ACK_ENDPOINT) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", VEM_ACK_ENDPOINT, zmq_strerror(zmq_errno()));
        return -1;
    }
    in->ctl = zmq_socket(ctx, ZMQ_REP);
    zmq_setsockopt(in->ctl, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(in->ctl, VEM_INGEST_CONTROL_ENDPOINT) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", VEM_INGEST_CONTROL_ENDPOINT,
                 zmq_strerror(zmq_errno()));
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

static void s_teardown(vem_ingest_t *in)
{
    for (size_t i = 0; i < in->capacity; i++)
        if (in->slots[i] && in->slots[i] != VEM_INGEST_TOMBSTONE) {
            if (in->slots[i]->stalled)
                zmq_msg_close(&in->slots[i]->chunk);
            vem_reasm_destroy(&in->slots[i]->reasm);
            vem_rejects_destroy(&in->slots[i]->rejects);
            free(in->slots[i]);
        }
    free(in->slots);
    free(in->stalled);
    for (size_t i = 0; i < in->nstaged; i++)
        if (in->staged[i].has_msg)
            zmq_msg_close(&in->staged[i].msg);
    free(in->staged);
    if (in->holding)
        zmq_msg_close(&in->held);
    if (in->rholding)
        zmq_msg_close(&in->rheld);
    vem_spool_reader_destroy(&in->rreader);
    if (in->ctl)
        zmq_close(in->ctl);
    vem_stations_destroy(&in->stations);
    if (in->pull)
        zmq_socket_monitor(in->pull, NULL, 0);
    if (in->gwmon)
        zmq_close(in->gwmon);
    vem_peers_destroy(&in->peers);
    free(in->scratch);
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
    free(in->sent_last);
    free(in->done_last);
    free(in->ckpt_last);
    vem_spool_reader_destroy(&in->reader);
}

int64_t vem_ingest_open_ms(const vem_ingest_t *in)
{
    return in->open_ms + (in->open_since_ms ? vem_mono_ms() - in->open_since_ms : 0);
}

/* total + us (both >= 0), at most VEM_INGEST_PAUSED_MAX, the largest a stamp may carry. */
static int64_t s_paused_plus(int64_t total, int64_t us)
{
    return us > VEM_INGEST_PAUSED_MAX - total ? VEM_INGEST_PAUSED_MAX : total + us;
}

int64_t vem_ingest_paused_us(const vem_ingest_t *in)
{
    return s_paused_plus(in->paused_us,
                         in->closed_since_ms ? (vem_mono_ms() - in->closed_since_ms) * 1000 : 0);
}

/* The number after mark in text, 0 without one or when it is not from 0 to max. */
static int64_t s_marked(const char *text, const char *mark, int64_t max)
{
    const char *p = strstr(text, mark);
    size_t n = strlen(mark);
    if (!p || p[n] < '0' || p[n] > '9')
        return 0;
    errno = 0;
    long long v = strtoll(p + n, NULL, 10);
    return errno == 0 && v <= max ? v : 0;
}

int64_t vem_ingest_meta_paused(const char *meta)
{
    return s_marked(meta, " ~p", VEM_INGEST_PAUSED_MAX);
}

int64_t vem_ingest_paused_now(const _Atomic int64_t *paused_us, const _Atomic int64_t *closed_at_us,
                              int64_t now_us)
{
    int64_t closed_at = atomic_load(closed_at_us);
    int64_t total = atomic_load(paused_us);
    return closed_at && now_us - closed_at > total ? now_us - closed_at : total;
}

int64_t vem_ingest_sweep_now(int64_t wall_us, const _Atomic int64_t *staged_from_us)
{
    int64_t from = atomic_load(staged_from_us);
    return from && from < wall_us ? from : wall_us;
}

void vem_ingest_paused_load(const char *dir, uint64_t first, uint64_t next,
                            vem_ingest_paused_t *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, VEM_INGEST_PAUSED_FILE);
    out->total_us = out->alive_us = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        char line[64] = ""; /* " ~p<us> ~a<us>"; a build before 2026-12 wrote " ~p<us>" */
        if (fgets(line, sizeof line, f)) {
            out->total_us = vem_ingest_meta_paused(line);
            out->alive_us = s_marked(line, " ~a", INT64_MAX);
        }
        fclose(f);
    }
    char err[300];
    uint64_t from = next > first + VEM_INGEST_PAUSED_TAIL ? next - VEM_INGEST_PAUSED_TAIL : first;
    vem_spool_reader_t *r = next > first ? vem_spool_reader_new(dir, from, err, sizeof err) : NULL;
    vem_spool_rec_t rec;
    while (r && vem_spool_reader_next(r, next - 1, &rec) > VEM_SPOOL_READ_END) {
        if (rec.kind != VEM_SPOOL_KIND_OBD_FRAME)
            continue; /* only a frame carries the total of its receipt's time */
        if (rec.received_us > out->alive_us)
            out->alive_us = rec.received_us;
        char meta[VEM_INGEST_META_MAX];
        vem_ingest_meta_text(&rec, meta);
        int64_t stamp = vem_ingest_meta_paused(meta);
        if (stamp > out->total_us)
            out->total_us = stamp;
    }
    vem_spool_reader_destroy(&r);
}

int64_t vem_ingest_paused_after_downtime(const vem_ingest_paused_t *p, int64_t now_us)
{
    int64_t down = p->alive_us > 0 && now_us > p->alive_us ? now_us - p->alive_us : 0;
    if (down > VEM_INGEST_DOWNTIME_MAX_S * 1000000)
        down = 0; /* a clock that was wrong (a board that ran in 1970), or a file long stale */
    return s_paused_plus(p->total_us, down);
}

int vem_ingest_paused_write(const char *dir, const vem_ingest_paused_t *p)
{
    char path[4096], tmp[4100], text[64];
    snprintf(path, sizeof path, "%s/%s", dir, VEM_INGEST_PAUSED_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int len = snprintf(text, sizeof text, " ~p%lld ~a%lld\n", (long long)p->total_us,
                       (long long)p->alive_us);
    return vem_fileio_replace(dir, tmp, path, (const uint8_t *)text, (size_t)len);
}

/* Writes the paused total, and when vemd stopped running, to the spool directory's file: at
 * start (paused_written_us 0), once a second from the loop when the total changed (a pause in
 * progress counted up to now, so a crash loses at most a second of it) or VEM_INGEST_ALIVE_EVERY_S
 * went by, and at stop. While running, the time written is VEM_INGEST_ALIVE_PROMISE_S ahead, twice
 * the time to the next rewrite: after a crash the next start counts the downtime from there, up to
 * that much less than it was (silence, as before), not more, so the intake clock does not step back
 * across a restart (a trip a sweep ended just before the crash stays ended when the truck's next
 * frame comes) unless the loop stalled longer than that before the crash. At stop, the time is
 * exact, and intake is closed first so that the workers' clocks stop there too. Not while a spool
 * flush fails, when the disk would likely refuse it too. A failure is logged and tried again a
 * second later; a start still takes the spooled frames' stamps and receipts, never below what the
 * file held when they were read. */
static void s_paused_save(vem_ingest_t *in, bool at_stop)
{
    int64_t now = vem_now_us();
    vem_ingest_paused_t p = {vem_ingest_paused_us(in), now};
    if (!at_stop) {
        if (p.total_us == in->paused_saved_us && now >= in->paused_written_us &&
            now - in->paused_written_us < VEM_INGEST_ALIVE_EVERY_S * 1000000LL)
            return;
        /* running: alive until the next rewrite is due, as far as a crash can tell */
        p.alive_us = now + VEM_INGEST_ALIVE_PROMISE_S * 1000000LL;
    }
    if (vem_ingest_paused_write(in->args->spool_dir, &p) != 0) {
        vem_log(VEM_LOG_WARNING, "ingest", "cannot write %s/%s: %s", in->args->spool_dir,
                VEM_INGEST_PAUSED_FILE, strerror(errno));
    } else {
        in->paused_saved_us = p.total_us;
        in->paused_written_us = now;
    }
}

/* Runs or stops the intake clock (vem_ingest_open_ms) as intake opens or closes, and counts
 * the pauses: every time it is closed, from the start on (the downtime before it is counted at
 * start, vem_ingest_paused_after_downtime). */
static void s_set_open(vem_ingest_t *in, bool open)
{
    if (!open && in->open_since_ms) {
        in->open_ms += vem_mono_ms() - in->open_since_ms;
        in->open_since_ms = 0;
        in->closed_since_ms = vem_mono_ms();
        atomic_store(&in->args->closed_at_us, vem_now_us() - in->paused_us);
    } else if (open && !in->open_since_ms) {
        in->open_since_ms = vem_mono_ms();
        if (in->closed_since_ms) {
            in->paused_us = vem_ingest_paused_us(in);
            in->closed_since_ms = 0;
            atomic_store(&in->args->paused_us, in->paused_us);
            atomic_store(&in->args->closed_at_us, 0);
            vem_gauge_set(in->paused_gauge, in->paused_us / 1000000);
        }
    }
}

/* Opens or closes intake for want of spool room, and says so once per change. */
static bool s_room(vem_ingest_t *in)
{
    bool room = vem_spool_has_room(in->args->spool, VEM_INGEST_ROOM_INPUTS * in->headroom);
    if (room == in->full) {
        in->full = !room;
        vem_gauge_set(in->spool_full, in->full);
        atomic_store(&in->args->spool_full, in->full);
        if (in->full)
            vem_log(VEM_LOG_WARNING, "ingest",
                    "spool full (%llu bytes held): intake paused until the sinks catch up",
                    (unsigned long long)vem_spool_bytes(in->args->spool));
        else
            vem_log(VEM_LOG_NOTICE, "ingest", "spool has room again: intake resumed");
    }
    return room;
}

void vem_ingest_actor(void *pipe, void *args_)
{
    vem_ingest_t in = {.args = args_};
    vem_ingest_args_t *a = in.args;
    in.capacity = 1024;
    in.slots = calloc(in.capacity, sizeof *in.slots);
    in.staged = calloc(VEM_INGEST_BATCH, sizeof *in.staged);
    in.stalled = calloc(a->max_connections + 1, sizeof *in.stalled);
    in.sent_last = calloc(a->workers, sizeof *in.sent_last);
    in.done_last = calloc(a->workers, sizeof *in.done_last);
    in.ckpt_last = calloc(a->workers, sizeof *in.ckpt_last);
    in.peers = vem_peers_new(a->max_per_address, a->new_per_address_s);
    in.scratch = malloc(sizeof *in.scratch);
    if (!in.slots || !in.staged || !in.stalled || !in.sent_last || !in.done_last || !in.ckpt_last ||
        !in.peers || !in.scratch)
        abort();
    in.headroom = VEM_INGEST_META_MAX +
                  (a->max_frame > a->stations.max_message ? a->max_frame : a->stations.max_message);
    /* Start behind, at the lowest consumer's position: everything before it is done everywhere,
     * and what follows goes through the workers again (the sinks' keys drop what they have). */
    uint64_t next = vem_spool_next_seq(a->spool), first = vem_spool_first_seq(a->spool);
    uint64_t from = a->replay_from ? a->replay_from : next;
    if (from < first)
        from = first;
    if (from > next)
        from = next;
    in.forwarded = in.trimmed = from - 1;
    for (unsigned c = 0; c < VEM_CONSUMERS; c++)
        in.marks[c] = from - 1;
    for (unsigned w = 0; w < a->workers; w++)
        in.sent_last[w] = in.done_last[w] = in.ckpt_last[w] = from - 1;
    in.live = from == next;
    /* the paused total before anything says the workers may sweep (behind false) */
    int64_t started_us = vem_now_us();
    vem_ingest_paused_t saved;
    vem_ingest_paused_load(a->spool_dir, first, next, &saved);
    in.paused_us = vem_ingest_paused_after_downtime(&saved, started_us);
    in.paused_saved_us = saved.total_us;
    /* intake is closed until the loop opens it: that counts too (a start with the spool full) */
    in.closed_since_ms = vem_mono_ms();
    /* written now, not at the first second: a crash before it would count this run as
     * downtime, or lose the downtime just counted */
    s_paused_save(&in, false);
    atomic_store(&a->paused_us, in.paused_us);
    atomic_store(&a->closed_at_us, started_us - in.paused_us);
    atomic_store(&a->behind, !in.live);
    in.fwd_next = from;
    atomic_store(&a->durable_seq, vem_spool_durable_seq(a->spool));
    atomic_store(&a->settled_seq, from - 1);
    atomic_store(&a->output_seq, from - 1);
    atomic_store(&a->spool_ok, true);
    atomic_store(&a->spool_readable, true);
    if (!in.live)
        vem_log(VEM_LOG_NOTICE, "ingest", "replaying spool records %llu..%llu",
                (unsigned long long)from, (unsigned long long)next - 1);
    char err[300];
    if (s_bind(&in, err, sizeof err) != 0) {
        s_teardown(&in);
        vem_actor_ready(pipe, err);
        return;
    }
    s_register(&in, a->metrics);
    vem_gauge_set(in.paused_gauge, in.paused_us / 1000000);
    if (in.paused_us > saved.total_us)
        vem_log(VEM_LOG_NOTICE, "ingest",
                "vemd was stopped for %.0f s: counted as paused (no vehicle's silence)",
                (double)(in.paused_us - saved.total_us) / 1e6);
    atomic_store(&a->listening, true);
    vem_actor_ready(pipe, NULL);

    int64_t next_sweep = vem_now_us() + 1000000;
    for (;;) {
        atomic_fetch_add_explicit(&a->beats, 1, memory_order_relaxed);
        bool room = s_room(&in); /* first: a drain stalls exactly when room runs out */
        bool stalled = in.nstalled > 0 && !vem_ingest_resume_stalled(&in);
        bool open = room && !stalled && !in.flush_failed;
        s_set_open(&in, open);
        zmq_pollitem_t items[10] = {
            {pipe, 0, ZMQ_POLLIN, 0}, {in.acks, 0, ZMQ_POLLIN, 0}, {in.ctl, 0, ZMQ_POLLIN, 0}};
        int n = 3, i_stream = -1, i_pull = -1, i_stations = -1, i_gwmon = -1;
        if (open) {
            i_stream = n;
            items[n++] = (zmq_pollitem_t){in.stream, 0, ZMQ_POLLIN, 0};
            if (in.pull) {
                i_pull = n;
                items[n++] = (zmq_pollitem_t){in.pull, 0, ZMQ_POLLIN, 0};
            }
            if (in.gwmon) {
                i_gwmon = n;
                items[n++] = (zmq_pollitem_t){in.gwmon, 0, ZMQ_POLLIN, 0};
            }
            if (in.stations) {
                i_stations = n;
                items[n++] = (zmq_pollitem_t){vem_stations_socket(in.stations), 0, ZMQ_POLLIN, 0};
            }
        }
        if (in.holding)
            items[n++] = (zmq_pollitem_t){in.push[in.held_worker], 0, ZMQ_POLLOUT, 0};
        if (in.rholding)
            items[n++] = (zmq_pollitem_t){in.push[in.rworker], 0, ZMQ_POLLOUT, 0};
        long timeout = 250;
        int64_t now_ms = vem_mono_ms();
        bool reading_back = !in.live && !in.holding && now_ms >= in.reader_retry_ms;
        if (reading_back || (in.rreader && !in.rholding))
            timeout = 0; /* more to read back from the spool */
        else if (!in.live && !in.holding && in.reader_retry_ms - now_ms < timeout)
            timeout = (long)(in.reader_retry_ms - now_ms); /* a failed read's pause ends */
        if (in.flush_failed || stalled)
            timeout = 50;
        if (zmq_poll(items, n, timeout) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if ((items[0].revents & ZMQ_POLLIN) && s_on_pipe(&in, pipe))
            break;
        if (items[1].revents & ZMQ_POLLIN)
            vem_ingest_on_acks(&in);
        if (items[2].revents & ZMQ_POLLIN)
            vem_ingest_on_ctl(&in);
        if (i_stream >= 0 && (items[i_stream].revents & ZMQ_POLLIN))
            for (int i = 0; i < VEM_INGEST_BATCH && in.nstalled == 0 && vem_ingest_can_stage(&in);
                 i++) {
                int events = 0;
                size_t sz = sizeof events;
                zmq_getsockopt(in.stream, ZMQ_EVENTS, &events, &sz);
                if (!(events & ZMQ_POLLIN))
                    break;
                vem_ingest_on_stream(&in);
            }
        if (i_pull >= 0 && (items[i_pull].revents & ZMQ_POLLIN) && in.nstalled == 0)
            vem_ingest_on_pull(&in);
        if (i_gwmon >= 0 && (items[i_gwmon].revents & ZMQ_POLLIN) && vem_ingest_can_stage(&in))
            vem_ingest_on_gateway_event(&in);
        if (i_stations >= 0 && (items[i_stations].revents & ZMQ_POLLIN) && in.nstalled == 0)
            vem_ingest_on_stations(&in);
        vem_ingest_commit(
            &in); /* one fdatasync for everything read in this round, then the replies */
        if (!in.live && vem_mono_ms() >= in.reader_retry_ms)
            vem_ingest_catch_up(&in);
        if (in.rreader)
            vem_ingest_replay_turn(&in);
        vem_ingest_trim(&in);
        if (vem_now_us() >= next_sweep) {
            vem_ingest_sweep_idle(
                &in); /* (closes only what needs no spool room while a flush fails) */
            if (!in.flush_failed)
                s_paused_save(&in, false); /* at most one fsync a second, even at a spool
                                              hovering full */
            next_sweep = vem_now_us() + 1000000;
        }
    }
    /* Drain: stop reading and make the spool durable. The workers get what they can take now;
     * anything else is in the spool and replayed at the next start. Buffered partial frames
     * stay in their reassemblers: the terminals send them again. */
    atomic_store(&a->listening, false);
    if (!vem_ingest_commit(&in) && vem_spool_flush(a->spool) != 0)
        vem_log(VEM_LOG_ERR, "ingest",
                "spool flush failed at stop: %zu inputs never acknowledged are lost with the "
                "process (their terminals send them again)",
                in.nstaged);
    if (!in.live)
        vem_ingest_catch_up(&in);
    /* intake closes for good: the workers' clocks stand still from here (their last sweeps see
     * no silence the next start will not count as downtime) */
    s_set_open(&in, false);
    s_paused_save(&in, true); /* a pause in progress counts up to the stop, and the downtime
                                 the next start counts begins here */
    s_teardown(&in);
}
