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
 * Intake closes only when the spool cannot take S_ROOM_INPUTS more inputs of the largest size
 * (headroom for a run of rejected bytes and the frame that ends it: a chunk is drained record
 * by record and never consumed past what the spool
 * can take; a connection whose chunk is half drained keeps it until room returns), while a
 * batch waits for its flush, or while a flush fails.
 *
 * Consumers acknowledge cumulatively (vem_ack_t); the spool is trimmed below the lowest mark
 * of the active consumers. For the workers the mark is derived: every input up to the last one
 * forwarded, except those of a worker still busy past its own mark.
 *
 * ZMQ_STREAM routing ids are 5 bytes (a zero byte and a 32-bit counter, never reused): packed
 * into a u64 they key an open-addressing table of connections with tombstones for removal.
 * Connections we close get no disconnect event from libzmq, so their state is dropped at once;
 * an empty message for the id of a connection we closed is a late notice of its end, not a new
 * connection (the last S_CLOSED_KEYS closes are remembered).
 *
 * Closing: the close (the id, then an empty frame) is refused with EAGAIN while the pipe to
 * the peer is full, i.e. the peer does not read. Such a connection stays in the table, counted
 * against the limits, as "close pending": its data is discarded (counted), the close is tried
 * again at the sweep, and after S_FORCE_MS its TCP socket (known from ZMQ_SRCFD at the
 * connection's start) is shut down under libzmq, which then reports its end: only then does it
 * leave the table. terminals.send_timeout_s (TCP_USER_TIMEOUT) makes the kernel drop a silent
 * connection whose replies stay unread. A peer whose replies are refused the same way for
 * S_DEAF_MS, none taken in between, is deaf: it gets no more replies and is closed at the next
 * sweep.
 *
 * Rejected bytes: the reassembler gives up bytes one event at a time (one byte per rejected
 * candidate); ingest gathers the bytes given up back to back into one run per connection and
 * quarantines each run once, when a frame, the end of a chunk or the close ends it, classed by
 * its first rejected candidate (bad_start when it had none). Each connection has a budget of
 * rejected bytes kept and of quarantine records; past either, or once its rejected bytes pass
 * terminals.reject_share_pct of what it sent, it is closed (reason rejects), and what it sends
 * until then is counted, not kept. */
#include "ingest.h"

#include "actor.h"
#include "clock.h"
#include "hj1239.h"
#include "keys.h"
#include "log.h"
#include "peers.h"
#include "pipeline.h"
#include "reasm.h"
#include "records.h"
#include "rejects.h"
#include "session.h"
#include "stations.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <zmq.h>

#define S_BATCH              512 /* inputs per flush */
#define S_CATCHUP_BATCH      512 /* spool records forwarded per turn while behind */
#define S_META_MAX           160 /* meta text of a spool record: source, verdict, detail */
#define S_FLUSH_RETRY_MS     100 /* first pause after a failed flush, doubling */
#define S_FLUSH_RETRY_MAX_MS 5000
#define S_TOMBSTONE          ((s_conn_t *)1)
#define S_CLOSED_KEYS        1024 /* closes remembered, to tell a late notice from a new one */
#define S_GATEWAY_BUDGET     64   /* gateway messages read per turn: terminals and acks go on */
#define S_ROOM_INPUTS        2    /* inputs of headroom the drain needs, so "full" says it */
#define S_DEAF_MS            2000 /* replies refused this long without one taken: deaf */
#define S_FORCE_MS           1000 /* a close refused this long: the TCP socket is shut down */
#define S_STREAM_SNDHWM      (2 * S_BATCH + 64) /* a batch's replies to one peer: 2 parts each */
#define S_GATEWAY_MONITOR    "inproc://vem-ingest-gateway-monitor"
#define S_GATEWAY_ROWS_S     10 /* quarantine rows for gateway disconnections per second */

typedef struct {
    uint64_t key;
    uint8_t id[8];
    size_t id_len;
    uint32_t conn_id;
    vem_reasm_t *reasm;
    int64_t last_us;
    char meta[64]; /* "tcp 127.0.0.1:40122 #7", stored with every spool record */
    uint16_t meta_len;
    zmq_msg_t chunk;    /* the chunk the reassembler borrows, kept while the drain is stalled */
    bool stalled;       /* events wait in the reassembler for spool room */
    bool gone;          /* closed (by the peer or by us): remove once drained */
    bool close_pending; /* our close was refused (the peer's pipe is full): retried */
    bool deaf;          /* replies refused for S_DEAF_MS: no more replies, closed at the sweep */
    int64_t refused_ms; /* first reply refused since one was taken (monotonic ms; 0: none) */
    bool admitted;      /* counted in the per-address table under addr */
    vem_counter_t *closed_as; /* the close's reason, counted when the connection is removed */
    uint8_t vin[17];          /* one connection, one vehicle: the VIN of its first frame */
    bool bound;               /* vin is set */
    bool refused;             /* it sent a frame of another VIN: closed, the rest quarantined */
    char addr[64];            /* Peer-Address */
    vem_rejects_t *rejects;   /* its rejected bytes: the run to quarantine, the budget */
    int64_t pending_ms;       /* monotonic ms its close has waited since */
    int fd;                   /* libzmq's TCP socket (ZMQ_SRCFD), -1 when unknown */
    struct sockaddr_storage peer_sa, local_sa; /* ... and its two ends, to recognise it */
    socklen_t peer_len, local_len;
} s_conn_t;

typedef struct {
    zmq_msg_t msg; /* header + detail + bytes, ready for the worker (only when live) */
    bool has_msg;
    uint64_t seq;
    unsigned worker;
    bool reply; /* a reply to a terminal is staged for this input */
    uint8_t id[8];
    size_t id_len;
    uint8_t reply_buf[31]; /* header 24 + time 6 + BCC */
    uint8_t reply_len;     /* 31, or 27 for an activation reply (0x08) */
} s_staged_t;

typedef struct {
    vem_ingest_args_t *args;
    void *stream, *pull, *acks;
    vem_stations_t *stations; /* roadside stations (stations.h); NULL when not configured */
    void **push;              /* one per worker */
    s_conn_t **slots;
    size_t capacity, count, used;        /* used counts tombstones too */
    uint64_t closed_keys[S_CLOSED_KEYS]; /* ids of connections vemd closed itself, latest last */
    size_t nclosed;                      /* entries used (a ring once full) */
    uint32_t next_conn_id;
    s_conn_t **stalled; /* connections whose drain waits for spool room, in arrival order */
    size_t nstalled;
    s_staged_t *staged; /* appended, not yet durable */
    size_t nstaged;
    size_t headroom; /* spool bytes one more input may need */
    /* flush failures */
    bool flush_failed;
    int64_t flush_retry_ms, flush_backoff_ms;
    /* forwarding */
    bool live;         /* inputs go to the workers from memory */
    uint64_t fwd_next; /* behind: the next seq the catch-up reader forwards */
    vem_spool_reader_t *reader;
    int64_t reader_retry_ms; /* after a read error, the catch-up pauses until then */
    zmq_msg_t held;          /* behind: a message read from the spool waiting for room */
    bool holding;
    unsigned held_worker;
    uint64_t forwarded;            /* every input up to this seq has been handed to a worker */
    uint64_t *sent_last;           /* per worker: the last seq handed to it */
    uint64_t *done_last;           /* per worker: its acknowledged mark */
    uint64_t *ckpt_last;           /* per worker: the through of its last checkpoint */
    vem_gauge_t *unjudged;         /* vem_queue_depth{stage="checkpoint"} */
    uint64_t marks[VEM_CONSUMERS]; /* sinks' acknowledged marks */
    /* an operator's replay of a range (vemctl spool replay) */
    void *ctl; /* REP: requests from the control actor */
    vem_spool_reader_t *rreader;
    uint64_t rnext, rto;
    zmq_msg_t rheld;
    bool rholding;
    unsigned rworker;
    uint64_t trimmed;            /* the spool was trimmed up to here */
    bool full;                   /* intake is closed for want of spool room */
    double act_tokens;           /* activations that may be judged now (a bucket of one second) */
    int64_t act_fill_ms;         /* when it was last filled */
    vem_peers_t *peers;          /* open connections and arrivals per source address */
    size_t npending;             /* connections whose close waits */
    size_t nrefusing;            /* connections with a reply refused since one was taken */
    vem_hj1239_frame_t *scratch; /* decodes a malformed gateway message for its error */
    void *gwmon;                 /* PAIR: libzmq's events of the gateway socket */
    int64_t gw_second;           /* the second of the last gateway disconnection ... */
    unsigned gw_rows;            /* ... and the quarantine rows made for them in it */
    /* metrics */
    vem_counter_t *bytes_terminals, *bytes_gateways, *accepted, *closed_idle, *closed_limit,
        *closed_peer, *closed_switch, *activations[4], *activations_over, *reply_dropped,
        *spool_errors, *inputs, *behind, *late_notices, *oversize, *closed_rejects, *closed_unread,
        *closed_addr_limit, *closed_addr_rate, *discarded, *gateway_drops;
    vem_counter_t *drops[VEM_HJ1239_STATUS_COUNT];
    vem_gauge_t *conns, *spool_bytes, *spool_full, *backlog, *unforwarded, *addresses;
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
    vem_gauge_set(in->conns, (int64_t)in->count);
    atomic_store(&in->args->connections, in->count);
}

static void s_remove(s_ingest_t *in, s_conn_t *c)
{
    size_t i = s_slot(in, c->key, false);
    if (in->slots[i] == c) {
        in->slots[i] = S_TOMBSTONE;
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

/* ---- staging inputs ------------------------------------------------------------------------ */

/* VIN of a whole frame, in either header form. */
static const uint8_t *s_vin(const uint8_t *frame)
{
    return vem_hj1239_header_vin(frame);
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

/* The 0x08 answer to an activation, in the terminal header form the 0x07 came in: `##`, 0x08,
 * the VIN, its software version, encryption none, a data unit of status and info (keys.h). */
static void s_activation_reply(const uint8_t *frame, vem_keys_verdict_t v, uint8_t out[27])
{
    out[0] = out[1] = '#';
    out[2] = VEM_HJ1239_CMD_ACTIVATION_REPLY;
    memcpy(out + 3, frame + 3, 17);
    out[20] = frame[20];
    out[21] = VEM_HJ1239_ENC_NONE;
    out[22] = 0;
    out[23] = 2;
    vem_keys_reply_codes(v, &out[24], &out[25]);
    out[26] = vem_hj1239_bcc(out + 2, 24);
}

/* Judges an activation (0x07) before it is spooled, so its answer can go out right after the
 * sync (keys.h: in memory, no database round trip), without filing it: a refused one becomes a
 * quarantine record of its class (*kind, *error, detail set); one that passes goes on as a
 * frame and is filed in the registry only once the spool took it (s_file_activation), so an
 * append refused leaves no key behind. It reaches terminal_events, whose trigger files it in
 * terminal_keys. Returns the verdict with the decoded frame in *act (malloc'd, the caller
 * frees), or -1 when the frame does not decode (the worker quarantines it with the decoder's
 * class; no answer). */
static int s_activation(s_ingest_t *in, const uint8_t *data, size_t len, vem_hj1239_frame_t **act,
                        uint16_t *kind, unsigned *error, char *detail, size_t detail_len)
{
    vem_hj1239_frame_t *f = malloc(sizeof *f); /* rare: not worth a buffer per ingest */
    if (!f)
        abort();
    if (vem_hj1239_decode(data, len, VEM_HJ1239_TRUSTED_BCC, f, NULL) != VEM_HJ1239_OK ||
        f->cmd != VEM_HJ1239_CMD_ACTIVATION) {
        free(f);
        return -1;
    }
    int v = (int)vem_keys_judge(in->args->keys, f, data, len, detail, detail_len);
    if (v != VEM_KEYS_OK) {
        static const unsigned s_class[] = {0, VEM_RECORD_CLASS_CHIP_ACTIVATED,
                                           VEM_RECORD_CLASS_VIN_ERROR,
                                           VEM_RECORD_CLASS_BAD_SIGNATURE};
        *kind = VEM_SPOOL_KIND_QUARANTINE;
        *error = s_class[v];
        vem_counter_add(in->activations[v], 1);
        vem_log(VEM_LOG_WARNING, "ingest", "activation of %.17s refused: %s", (const char *)f->vin,
                detail);
    }
    *act = f;
    return v;
}

/* Files an activation that passed (s_activation) now that the spool holds it; the verdict for
 * its answer: another one only when the registry changed in between (a reload), and the
 * stored frame then meets the same refusal at the worker (key conflicts). */
static int s_file_activation(s_ingest_t *in, const vem_hj1239_frame_t *f)
{
    char detail[VEM_HJ1239_DETAIL_LEN];
    int v = (int)vem_keys_file(in->args->keys, f, detail, sizeof detail);
    vem_counter_add(in->activations[v], 1);
    vem_log(v == VEM_KEYS_OK ? VEM_LOG_INFO : VEM_LOG_WARNING, "ingest",
            "activation of %.17s %s: %s", (const char *)f->vin,
            v == VEM_KEYS_OK ? "accepted" : "refused when filed", detail);
    return v;
}

/* NULL when one more activation (of conn; NULL: a gateway's) may be judged now, else the key
 * whose budget is spent: every one costs an SM2 check in this thread, so a peer sending nothing
 * else could otherwise take ingest's time, and the others' activations, from the rest. */
static const char *s_activation_budget(s_ingest_t *in, const s_conn_t *conn)
{
    /* first the address's share, so one host looping activations spends only its own */
    unsigned per_address = in->args->activations_per_address_s;
    if (conn && per_address &&
        !vem_peers_take(in->peers, conn->addr, per_address, vem_mono_ms() * 1000))
        return "terminals.activations_per_address_s";
    double rate = in->args->activations_per_s ? in->args->activations_per_s : 1;
    int64_t now = vem_mono_ms();
    if (in->act_fill_ms == 0)
        in->act_tokens = rate;
    else
        in->act_tokens += (double)(now - in->act_fill_ms) * rate / 1000.0;
    if (in->act_tokens > rate)
        in->act_tokens = rate;
    in->act_fill_ms = now;
    if (in->act_tokens < 1)
        return "terminals.activations_per_s";
    in->act_tokens -= 1;
    return NULL;
}

/* ---- staging and committing ---------------------------------------------------------------- */

/* The route of a roadside reading in its spool meta text: "V:<vin>" or "P:<plate>" after " >"
 * (stations.h), or NULL. */
static const char *s_route(const char *meta)
{
    const char *r = strstr(meta, " >");
    return r && (r[2] == 'V' || r[2] == 'P') && r[3] == ':' ? r + 2 : NULL;
}

/* Worker that owns an input: by VIN for frames, so one worker holds each vehicle's state; by
 * the route for roadside readings (the VIN the registry gave, else the plate), so a truck's
 * readings meet its frames; by seq for everything else, which needs no state (the same on a
 * replay as live). */
static unsigned s_worker_of(const s_ingest_t *in, uint16_t kind, uint64_t seq, const uint8_t *data,
                            size_t len, const char *route)
{
    uint64_t h = seq * 0x9e3779b97f4a7c15ULL;
    if (kind == VEM_SPOOL_KIND_OBD_FRAME && len >= VEM_HJ1239_MIN_FRAME)
        h = vem_vin_hash((const char *)s_vin(data));
    else if (kind == VEM_SPOOL_KIND_RSD_READING && route && route[0] == 'V' &&
             strlen(route) >= 2 + VEM_VIN_LEN)
        h = vem_vin_hash(route + 2);
    else if (kind == VEM_SPOOL_KIND_RSD_READING && route)
        h = vem_plate_hash(route + 2);
    return (unsigned)(h % in->args->workers);
}

/* Builds the worker message of an input. */
static void s_message(zmq_msg_t *msg, const vem_input_hdr_t *hdr, const char *detail,
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
static bool s_can_stage_n(const s_ingest_t *in, size_t n)
{
    return !in->flush_failed && in->nstaged + n <= S_BATCH &&
           vem_spool_has_room(in->args->spool, n * in->headroom);
}

/* True when one more input can be staged now. */
static bool s_can_stage(const s_ingest_t *in)
{
    return s_can_stage_n(in, 1);
}

/* Appends one input to the spool and stages its reply and (when live) its worker message;
 * returns its seq. The caller made sure it can (s_can_stage): only a record over the spool's
 * size limit fails, and its size is quarantined instead. Quarantined bytes keep their verdict
 * and detail in the meta text (" !CLASS@OFFSET:DETAIL"), so a replay knows them; a roadside
 * reading keeps its route there (" >V:VIN"). origin: the meta of an input of no connection
 * (NULL: "gateway"). */
static uint64_t s_stage(s_ingest_t *in, vem_source_t source, s_conn_t *conn, const char *origin,
                        uint16_t kind, const uint8_t *data, size_t len, unsigned error,
                        uint64_t offset, const char *detail)
{
    int64_t now = vem_now_us();
    origin = conn ? conn->meta : origin ? origin : "gateway";
    char why[VEM_HJ1239_DETAIL_LEN];
    int activation = -1;
    vem_hj1239_frame_t *act = NULL; /* an activation that passed, filed once appended */
    const char *over = kind == VEM_SPOOL_KIND_OBD_FRAME && len >= VEM_HJ1239_MIN_FRAME &&
                               data[2] == VEM_HJ1239_CMD_ACTIVATION && in->args->keys
                           ? s_activation_budget(in, conn)
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
        activation = s_activation(in, data, len, &act, &kind, &error, why, sizeof why);
        if (kind == VEM_SPOOL_KIND_QUARANTINE) {
            detail = why;
            offset = 0;
        }
    }
    char meta[S_META_MAX];
    int meta_len = kind == VEM_SPOOL_KIND_QUARANTINE
                       ? snprintf(meta, sizeof meta, "%s !%u@%llu:%s", origin, error,
                                  (unsigned long long)offset, detail ? detail : "")
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
        return s_stage(in, source, conn, origin, VEM_SPOOL_KIND_QUARANTINE, NULL, 0,
                       VEM_RECORD_CLASS_TOO_LARGE, 0, note);
    }
    if (activation == VEM_KEYS_OK)
        activation = s_file_activation(in, act);
    free(act);
    s_staged_t *st = &in->staged[in->nstaged++];
    st->seq = rec.seq;
    meta[meta_len] = '\0';
    const char *route = kind == VEM_SPOOL_KIND_RSD_READING ? s_route(meta) : NULL;
    st->worker = s_worker_of(in, kind, rec.seq, data, len, route);
    st->has_msg = in->live;
    if (st->has_msg) {
        const char *d = kind == VEM_SPOOL_KIND_QUARANTINE ? strstr(meta, " !") : NULL;
        d = d ? strchr(d, ':') : route ? route - 1 : NULL;
        vem_input_hdr_t hdr = {.seq = rec.seq,
                               .received_us = now,
                               .nseqs = 1,
                               .data_len = (uint32_t)len,
                               .kind = kind,
                               .source = (uint8_t)source,
                               .error = (uint8_t)error,
                               .error_offset = (uint32_t)offset,
                               .detail_len = d ? (uint16_t)strlen(d + 1) : 0};
        s_message(&st->msg, &hdr, d ? d + 1 : NULL, data);
    }
    st->reply_len = sizeof st->reply_buf;
    bool can_reply = conn && !conn->deaf && !conn->gone;
    st->reply =
        can_reply && kind == VEM_SPOOL_KIND_OBD_FRAME && s_reply(in, data, len, st->reply_buf);
    if (can_reply && activation >= 0) {
        s_activation_reply(data, (vem_keys_verdict_t)activation, st->reply_buf);
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
static bool s_forward(s_ingest_t *in, zmq_msg_t *msg, unsigned w, uint64_t seq, uint32_t nseqs)
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
static void s_fall_behind(s_ingest_t *in, uint64_t seq)
{
    in->live = false;
    atomic_store(&in->args->behind, true);
    in->fwd_next = seq;
    vem_counter_add(in->behind, 1);
    vem_log(VEM_LOG_INFO, "ingest", "workers busy: forwarding from the spool from input %llu",
            (unsigned long long)seq);
}

/* Notes that a reply to conn (NULL: gone) was refused (its pipe is full) or taken. A peer
 * whose replies are refused for S_DEAF_MS without one taken does not read: it is deaf. */
static void s_refused(s_ingest_t *in, s_conn_t *conn, bool refused)
{
    if (!conn)
        return;
    int64_t now = vem_mono_ms() + 1; /* never 0 */
    if (!refused) {
        if (conn->refused_ms) {
            conn->refused_ms = 0;
            in->nrefusing--;
        }
    } else if (!conn->refused_ms) {
        conn->refused_ms = now;
        in->nrefusing++;
    } else if (now - conn->refused_ms >= S_DEAF_MS) {
        conn->deaf = true;
    }
}

/* Makes the staged batch durable, then answers the terminals, then forwards the inputs. True
 * when nothing is left staged. On a failed flush nothing is answered or forwarded: the batch
 * stays staged (and in the spool's memory) and is flushed again after a pause. */
static bool s_commit(s_ingest_t *in)
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
        in->flush_backoff_ms = in->flush_failed ? in->flush_backoff_ms * 2 : S_FLUSH_RETRY_MS;
        if (in->flush_backoff_ms > S_FLUSH_RETRY_MAX_MS)
            in->flush_backoff_ms = S_FLUSH_RETRY_MAX_MS;
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
    for (size_t i = 0; i < in->nstaged; i++) {
        s_staged_t *st = &in->staged[i];
        if (!st->reply)
            continue;
        if (zmq_send(in->stream, st->id, st->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            vem_counter_add(in->reply_dropped, 1);
            if (zmq_errno() == EAGAIN) /* its pipe is full */
                s_refused(in, s_find(in, s_key(st->id, st->id_len)), true);
            continue;
        }
        if (zmq_send(in->stream, st->reply_buf, st->reply_len, ZMQ_DONTWAIT) < 0)
            vem_counter_add(in->reply_dropped, 1);
        else if (in->nrefusing > 0)
            s_refused(in, s_find(in, s_key(st->id, st->id_len)), false);
    }
    if (in->stations)
        vem_stations_answer(in->stations, vem_spool_durable_seq(in->args->spool));
    for (size_t i = 0; i < in->nstaged; i++) {
        s_staged_t *st = &in->staged[i];
        if (!st->has_msg)
            continue;
        if (in->live && !s_forward(in, &st->msg, st->worker, st->seq, 1))
            s_fall_behind(in, st->seq);
        if (!in->live)
            zmq_msg_close(&st->msg);
    }
    in->nstaged = 0;
    vem_gauge_set(in->spool_bytes, (int64_t)vem_spool_bytes(in->args->spool));
    return true;
}

/* ---- catch-up: feeding the workers from the spool ---------------------------------------------
 */

/* Parses the verdict that a quarantine record's meta text carries. */
static void s_parse_verdict(const vem_spool_rec_t *rec, vem_input_hdr_t *hdr, char *detail,
                            size_t cap)
{
    char meta[S_META_MAX];
    size_t m = rec->meta_len < sizeof meta - 1 ? rec->meta_len : sizeof meta - 1;
    memcpy(meta, rec->meta, m);
    meta[m] = '\0';
    unsigned error = 0;
    unsigned long long offset = 0;
    const char *mark = strstr(meta, " !");
    mark = mark ? mark + 1 : NULL;
    int used = 0;
    detail[0] = '\0';
    if (mark && sscanf(mark, "!%u@%llu:%n", &error, &offset, &used) == 2 && used > 0)
        snprintf(detail, cap, "%s", mark + used);
    else if (!(mark = strrchr(meta, '#')) || sscanf(mark, "#%u@%llu", &error, &offset) != 2)
        error = VEM_HJ1239_MALFORMED_BODY; /* spools of earlier versions: "#CLASS@OFFSET" */
    bool rsd = error > VEM_RECORD_CLASS_RSD && error <= VEM_RECORD_CLASS_RSD_END;
    if (error == 0 ||
        (error >= VEM_HJ1239_STATUS_COUNT && error != VEM_RECORD_CLASS_TOO_LARGE && !rsd))
        error = VEM_HJ1239_MALFORMED_BODY;
    hdr->error = (uint8_t)error;
    hdr->error_offset = (uint32_t)offset;
    hdr->detail_len = (uint16_t)strlen(detail);
}

/* Builds the worker message of a record read back from the spool. */
static unsigned s_from_spool(s_ingest_t *in, int rc, const vem_spool_rec_t *rec, uint16_t flags,
                             zmq_msg_t *msg)
{
    vem_input_hdr_t hdr = {.seq = rec->seq,
                           .received_us = rec->received_us,
                           .nseqs = 1,
                           .data_len = rec->data_len,
                           .kind = rec->kind,
                           .flags = flags,
                           .source = rec->meta_len >= 7 && memcmp(rec->meta, "gateway", 7) == 0
                                         ? VEM_SOURCE_GATEWAY
                                     : rec->meta_len >= 8 && memcmp(rec->meta, "station ", 8) == 0
                                         ? VEM_SOURCE_ROADSIDE
                                         : VEM_SOURCE_TERMINAL};
    char detail[S_META_MAX];
    detail[0] = '\0';
    const char *route = NULL;
    if (rc == VEM_SPOOL_READ_DAMAGED) {
        hdr.kind = VEM_SPOOL_KIND_QUARANTINE;
        hdr.nseqs = rec->lost ? rec->lost : 1;
        hdr.error = VEM_RECORD_CLASS_SPOOL_DAMAGED;
        hdr.received_us = vem_now_us();
        hdr.detail_len = (uint16_t)snprintf(
            detail, sizeof detail, "spool records %llu..%llu unreadable on disk",
            (unsigned long long)rec->seq, (unsigned long long)(rec->seq + hdr.nseqs - 1));
        vem_log(VEM_LOG_ERR, "ingest", "%s: stepped over, their bytes quarantined", detail);
    } else if (rec->kind == VEM_SPOOL_KIND_QUARANTINE) {
        s_parse_verdict(rec, &hdr, detail, sizeof detail);
    } else if (rec->kind == VEM_SPOOL_KIND_RSD_READING) {
        char meta[S_META_MAX];
        size_t m = rec->meta_len < sizeof meta - 1 ? rec->meta_len : sizeof meta - 1;
        memcpy(meta, rec->meta, m);
        meta[m] = '\0';
        if ((route = s_route(meta)) != NULL)
            hdr.detail_len = (uint16_t)snprintf(detail, sizeof detail, "%s", route);
        route = detail;
    }
    s_message(msg, &hdr, detail, rec->data);
    return s_worker_of(in, hdr.kind, rec->seq, rec->data, rec->data_len, route);
}

/* While behind: forwards spool records to the workers up to what is durable, as long as their
 * queues take them; back to live once the reader reaches the live edge. True when it stopped
 * for want of room in a worker queue or reached its turn's budget. */
static bool s_catch_up(s_ingest_t *in)
{
    uint64_t durable = vem_spool_durable_seq(in->args->spool);
    for (unsigned n = 0; n < S_CATCHUP_BATCH; n++) {
        if (in->holding) {
            vem_input_hdr_t hdr;
            memcpy(&hdr, zmq_msg_data(&in->held), sizeof hdr);
            if (!s_forward(in, &in->held, in->held_worker, hdr.seq, hdr.nseqs))
                return true;
            in->holding = false;
            in->fwd_next = hdr.seq + hdr.nseqs;
        }
        if (in->fwd_next > durable) {
            vem_spool_reader_destroy(&in->reader);
            in->live = true;
            atomic_store(&in->args->behind, false);
            vem_log(VEM_LOG_INFO, "ingest", "workers caught up with the spool at input %llu",
                    (unsigned long long)durable);
            return false;
        }
        if (!in->reader) {
            char err[300];
            in->reader = vem_spool_reader_new(in->args->spool_dir, in->fwd_next, err, sizeof err);
            if (!in->reader) {
                vem_log(VEM_LOG_ERR, "ingest", "catch-up reader: %s", err);
                in->reader_retry_ms = vem_mono_ms() + S_FLUSH_RETRY_MS;
                return false;
            }
        }
        vem_spool_rec_t rec;
        int rc = vem_spool_reader_next(in->reader, durable, &rec);
        if (rc == VEM_SPOOL_READ_ERROR) {
            vem_log(VEM_LOG_ERR, "ingest", "reading the spool at input %llu: %s",
                    (unsigned long long)in->fwd_next, strerror(errno));
            vem_spool_reader_destroy(&in->reader); /* reopened after a pause */
            in->reader_retry_ms = vem_mono_ms() + S_FLUSH_RETRY_MS;
            return false;
        }
        if (rc == VEM_SPOOL_READ_END) {
            /* durable records the reader cannot find: settle them as damaged, never wait */
            rec = (vem_spool_rec_t){.seq = in->fwd_next,
                                    .lost = (uint32_t)(durable - in->fwd_next + 1)};
            rc = VEM_SPOOL_READ_DAMAGED;
        }
        if (rec.seq + (rc == VEM_SPOOL_READ_DAMAGED && rec.lost ? rec.lost : 1) <= in->fwd_next)
            continue; /* before where we are (a reader opened mid-segment) */
        in->held_worker = s_from_spool(in, rc, &rec, 0, &in->held);
        in->holding = true;
    }
    return true;
}

/* ---- replay on request ----------------------------------------------------------------------- */

/* Forwards a turn's share of the requested range, flagged as a replay; ends it at its end. */
static void s_replay_turn(s_ingest_t *in)
{
    uint64_t durable = vem_spool_durable_seq(in->args->spool);
    uint64_t to = in->rto < durable ? in->rto : durable;
    for (unsigned n = 0; n < S_CATCHUP_BATCH; n++) {
        if (in->rholding) {
            vem_input_hdr_t hdr;
            memcpy(&hdr, zmq_msg_data(&in->rheld), sizeof hdr);
            if (!s_forward(in, &in->rheld, in->rworker, hdr.seq, hdr.nseqs))
                return;
            in->rholding = false;
            in->rnext = hdr.seq + hdr.nseqs;
        }
        vem_spool_rec_t rec;
        int rc = in->rnext > to ? VEM_SPOOL_READ_END : vem_spool_reader_next(in->rreader, to, &rec);
        if (rc == VEM_SPOOL_READ_END || rc == VEM_SPOOL_READ_ERROR) {
            vem_log(rc == VEM_SPOOL_READ_END ? VEM_LOG_NOTICE : VEM_LOG_ERR, "ingest",
                    "replay on request ended at input %llu%s%s", (unsigned long long)in->rnext - 1,
                    rc == VEM_SPOOL_READ_END ? "" : ": ",
                    rc == VEM_SPOOL_READ_END ? "" : strerror(errno));
            vem_spool_reader_destroy(&in->rreader);
            return;
        }
        if (rec.seq < in->rnext)
            continue;
        if (rc == VEM_SPOOL_READ_DAMAGED) { /* already quarantined when it was first read */
            in->rnext = rec.seq + (rec.lost ? rec.lost : 1);
            continue;
        }
        in->rworker = s_from_spool(in, rc, &rec, VEM_INPUT_REPLAY, &in->rheld);
        in->rholding = true;
    }
}

/* Answers a control request: "replay FROM TO" starts a replay of that range. */
static void s_on_ctl(s_ingest_t *in)
{
    char request[96];
    int len = zmq_recv(in->ctl, request, sizeof request - 1, ZMQ_DONTWAIT);
    if (len < 0)
        return;
    request[(size_t)len < sizeof request ? (size_t)len : sizeof request - 1] = '\0';
    unsigned long long from, to;
    char answer[300];
    uint64_t durable = vem_spool_durable_seq(in->args->spool);
    uint64_t first = vem_spool_first_seq(in->args->spool);
    if (sscanf(request, "replay %llu %llu", &from, &to) != 2 || from == 0 || to < from) {
        snprintf(answer, sizeof answer, "{\"error\": \"expected: replay FROM TO\"}");
    } else if (in->rreader) {
        snprintf(answer, sizeof answer,
                 "{\"error\": \"a replay is under way (at input %llu of %llu)\"}",
                 (unsigned long long)in->rnext, (unsigned long long)in->rto);
    } else if (from < first || from > durable) {
        snprintf(answer, sizeof answer,
                 "{\"error\": \"input %llu is not in the spool, which holds %llu..%llu\"}", from,
                 (unsigned long long)first, (unsigned long long)durable);
    } else {
        char err[300];
        in->rreader = vem_spool_reader_new(in->args->spool_dir, from, err, sizeof err);
        if (!in->rreader) {
            snprintf(answer, sizeof answer, "{\"error\": \"cannot read the spool\"}");
            vem_log(VEM_LOG_ERR, "ingest", "replay on request: %s", err);
        } else {
            in->rnext = from;
            in->rto = to < durable ? to : durable;
            snprintf(answer, sizeof answer, "{\"replaying\": {\"from\": %llu, \"to\": %llu}}", from,
                     (unsigned long long)in->rto);
            vem_log(VEM_LOG_NOTICE, "ingest", "replay on request of inputs %llu..%llu", from,
                    (unsigned long long)in->rto);
        }
    }
    zmq_send(in->ctl, answer, strlen(answer), ZMQ_DONTWAIT);
}

/* ---- terminals ---------------------------------------------------------------------------- */

static void s_close_msg(s_ingest_t *in, s_conn_t *conn, vem_counter_t *reason);

/* Quarantines conn's run of rejected bytes (rejects.h) within its budget, and closes conn
 * once the budget is spent. The caller made room for one input. */
static void s_flush_run(s_ingest_t *in, s_conn_t *conn)
{
    vem_rejects_run_t run;
    if (vem_rejects_take(conn->rejects, &run)) {
        char detail[112];
        snprintf(detail, sizeof detail, "%zu bytes in %u rejections%s, first: %s", run.given_up,
                 run.drops, run.len < run.given_up ? " (over budget, not kept)" : "",
                 run.detail ? run.detail : "");
        s_stage(in, VEM_SOURCE_TERMINAL, conn, NULL, VEM_SPOOL_KIND_QUARANTINE, run.data, run.len,
                run.error, run.offset, detail);
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
static void s_add_rejected(s_ingest_t *in, s_conn_t *conn, const vem_reasm_event_t *ev)
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
static bool s_bound(s_ingest_t *in, s_conn_t *conn, const uint8_t *frame, size_t len, char *detail,
                    size_t detail_len)
{
    if (!in->args->bind_vin || len < VEM_HJ1239_MIN_FRAME)
        return true; /* the worker's decoder says what is wrong with a short one */
    const uint8_t *vin = s_vin(frame);
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
static bool s_drain_reasm(s_ingest_t *in, s_conn_t *conn)
{
    for (;;) {
        if (in->nstaged + S_ROOM_INPUTS > S_BATCH)
            s_commit(in);
        if (!s_can_stage_n(in, S_ROOM_INPUTS))
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
            s_stage(in, VEM_SOURCE_TERMINAL, conn, NULL, VEM_SPOOL_KIND_QUARANTINE, ev.data, ev.len,
                    VEM_RECORD_CLASS_VIN_SWITCH, 3, why);
        } else if (ev.kind == VEM_REASM_FRAME) {
            s_flush_run(in, conn);
            s_stage(in, VEM_SOURCE_TERMINAL, conn, NULL, VEM_SPOOL_KIND_OBD_FRAME, ev.data, ev.len,
                    0, ev.offset, NULL);
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
static void s_drained(s_ingest_t *in, s_conn_t *conn)
{
    vem_rejects_trim(conn->rejects); /* its run was taken at the end of the chunk */
    if (conn->gone && !conn->close_pending) {
        vem_counter_add(conn->closed_as, 1);
        s_remove(in, conn);
    }
}

/* Drains conn's reassembler; when it has to stop, conn keeps its chunk (moved from *chunk, or
 * NULL when the reassembler holds no borrowed bytes) and waits in the stalled list. */
static void s_drain_or_stall(s_ingest_t *in, s_conn_t *conn, zmq_msg_t *chunk)
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
static bool s_resume_stalled(s_ingest_t *in)
{
    size_t done = 0;
    while (done < in->nstalled) {
        s_conn_t *conn = in->stalled[done];
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
static bool s_closed_by_us(s_ingest_t *in, uint64_t key)
{
    size_t n = in->nclosed < S_CLOSED_KEYS ? in->nclosed : S_CLOSED_KEYS;
    for (size_t i = 0; i < n; i++)
        if (in->closed_keys[i] == key) {
            in->closed_keys[i] = 0; /* keys are never 0: a zero byte and a counter from 1 */
            return true;
        }
    return false;
}

/* Hands libzmq the close of conn; true when it took it (or the connection is gone already).
 * While the peer's pipe is full it refuses (EAGAIN): conn stays, close pending. */
static bool s_try_close(s_ingest_t *in, s_conn_t *conn)
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
    in->closed_keys[in->nclosed++ % S_CLOSED_KEYS] = conn->key;
    if (conn->close_pending) {
        conn->close_pending = false;
        in->npending--;
    }
    return true;
}

/* Closes conn from our side without draining it: no more data is taken from it. */
static void s_close_msg(s_ingest_t *in, s_conn_t *conn, vem_counter_t *reason)
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
static void s_force_close(s_conn_t *conn)
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
static void s_close(s_ingest_t *in, s_conn_t *conn, vem_counter_t *reason)
{
    s_close_msg(in, conn, reason);
    s_drain_or_stall(in, conn, NULL);
}

/* A new connection: its state, and the checks of the limits (closed at once past one). */
static void s_on_connect(s_ingest_t *in, uint64_t key, zmq_msg_t *id, zmq_msg_t *data)
{
    s_conn_t *conn = calloc(1, sizeof *conn);
    if (!conn)
        abort();
    conn->key = key;
    conn->id_len = zmq_msg_size(id) < 8 ? zmq_msg_size(id) : 8;
    memcpy(conn->id, zmq_msg_data(id), conn->id_len);
    conn->conn_id = ++in->next_conn_id;
    conn->last_us = vem_now_us();
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
    conn->last_us = vem_now_us();
    vem_rejects_received(conn->rejects, len);
    vem_reasm_feed(conn->reasm, zmq_msg_data(&data), len);
    s_drain_or_stall(in, conn, &data);
done:
    zmq_msg_close(&id);
    zmq_msg_close(&data);
}

/* ---- gateways ----------------------------------------------------------------------------- */

/* Reads up to S_GATEWAY_BUDGET gateway messages (whole frames). Messages over max_frame are
 * quarantined by size and origin; libzmq drops a gateway that sends one over
 * gateways.max_message_bytes before it is read (see s_on_gateway_event). */
static void s_on_pull(s_ingest_t *in)
{
    zmq_msg_t part;
    zmq_msg_init(&part);
    for (unsigned n = 0; n < S_GATEWAY_BUDGET; n++) {
        if (in->nstaged == S_BATCH)
            s_commit(in);
        if (!s_can_stage(in) || zmq_msg_recv(&part, in->pull, ZMQ_DONTWAIT) < 0)
            break;
        const uint8_t *data = zmq_msg_data(&part);
        size_t len = zmq_msg_size(&part);
        vem_counter_add(in->bytes_gateways, len);
        if (in->args->gateways_curve &&
            !vem_curve_admits_msg(in->args->gateways_curve, &part, NULL, 0))
            continue; /* its key was removed since the handshake: counted and logged there */
        if (len > in->args->max_frame) {
            char note[96];
            snprintf(note, sizeof note, "gateway message of %zu bytes over the limit of %zu", len,
                     in->args->max_frame);
            vem_counter_add(in->oversize, 1);
            s_stage(in, VEM_SOURCE_GATEWAY, NULL, NULL, VEM_SPOOL_KIND_QUARANTINE, NULL, 0,
                    VEM_RECORD_CLASS_TOO_LARGE, 0, note);
            continue;
        }
        /* A gateway sends whole frames: check them as the reassembler would. */
        vem_hj1239_error_t err = {0};
        bool whole = vem_hj1239_envelope_ok(data, len);
        if (!whole) {
            vem_hj1239_decode(data, len, 0, in->scratch, &err);
            if (err.status == VEM_HJ1239_OK || err.status >= VEM_HJ1239_STATUS_COUNT)
                err.status = VEM_HJ1239_MALFORMED_BODY;
            vem_counter_add(in->drops[err.status], 1);
        }
        s_stage(in, VEM_SOURCE_GATEWAY, NULL, NULL,
                whole ? VEM_SPOOL_KIND_OBD_FRAME : VEM_SPOOL_KIND_QUARANTINE, data, len,
                whole ? VEM_HJ1239_OK : err.status, err.offset, whole ? NULL : err.detail);
    }
    zmq_msg_close(&part);
}

/* An event of the gateway socket's monitor. libzmq drops a gateway connection whose message
 * is over ZMQ_MAXMSGSIZE without a word to the application; all it reports is the
 * disconnection, the same as for a gateway that went away. Each one is counted and leaves a
 * quarantine row (source gateway, class too_large), so a refused message is never silent; a
 * gateway that reconnects in a loop gets S_GATEWAY_ROWS_S rows a second, the rest counted. */
static void s_on_gateway_event(s_ingest_t *in)
{
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, in->gwmon, ZMQ_DONTWAIT) < 0)
        goto done;
    uint16_t event = 0;
    if (zmq_msg_size(&part) >= 6)
        memcpy(&event, zmq_msg_data(&part), sizeof event);
    char endpoint[128] = "";
    while (zmq_msg_more(&part) && zmq_msg_recv(&part, in->gwmon, ZMQ_DONTWAIT) >= 0) {
        size_t n =
            zmq_msg_size(&part) < sizeof endpoint - 1 ? zmq_msg_size(&part) : sizeof endpoint - 1;
        memcpy(endpoint, zmq_msg_data(&part), n);
        endpoint[n] = '\0';
    }
    if (event != ZMQ_EVENT_DISCONNECTED)
        goto done;
    vem_counter_add(in->gateway_drops, 1);
    int64_t second = vem_mono_ms() / 1000;
    if (second != in->gw_second) {
        in->gw_second = second;
        in->gw_rows = 0;
    }
    if (++in->gw_rows > S_GATEWAY_ROWS_S)
        goto done;
    char note[120];
    snprintf(note, sizeof note,
             "gateway connection dropped: a message over %lld bytes, or the gateway left",
             (long long)in->args->gateway_max_message);
    vem_log(VEM_LOG_WARNING, "ingest", "%s (%s)", note, endpoint);
    s_stage(in, VEM_SOURCE_GATEWAY, NULL, NULL, VEM_SPOOL_KIND_QUARANTINE, NULL, 0,
            VEM_RECORD_CLASS_TOO_LARGE, 0, note);
done:
    zmq_msg_close(&part);
}

/* ---- roadside stations ------------------------------------------------------------------- */

static void s_on_stations(s_ingest_t *in)
{
    for (unsigned n = 0; n < S_BATCH; n++) {
        if (in->nstaged == S_BATCH)
            s_commit(in);
        vem_station_input_t inp;
        if (!s_can_stage(in) ||
            !vem_stations_read(in->stations, vem_spool_durable_seq(in->args->spool), &inp))
            break;
        if (inp.kind == 0)
            continue; /* answered, or waiting for the first copy's flush */
        uint64_t seq = s_stage(in, VEM_SOURCE_ROADSIDE, NULL, inp.origin, inp.kind, inp.data,
                               inp.len, inp.error, 0, inp.detail);
        vem_stations_staged(in->stations, seq);
    }
}

/* A message from main on the pipe: a registry snapshot for the stations' routing, or $TERM.
 * True to stop. */
static bool s_on_pipe(s_ingest_t *in, void *pipe)
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

/* ---- acknowledgements and trimming ---------------------------------------------------------- */

/* The lowest mark of the active consumers (but the one left out, VEM_CONSUMERS for none):
 * every record up to it is done everywhere. */
static uint64_t s_low_mark(const s_ingest_t *in, unsigned except)
{
    uint64_t low = UINT64_MAX;
    for (unsigned c = 0; c < VEM_CONSUMERS; c++) {
        if (!(in->args->consumers & 1u << c) || c == except)
            continue;
        uint64_t mark = in->marks[c];
        if (c == VEM_CONSUMER_WORKERS || c == VEM_CONSUMER_RULES) {
            /* a worker handed nothing past its mark holds nothing back: what came since went
             * to the others */
            const uint64_t *last = c == VEM_CONSUMER_WORKERS ? in->done_last : in->ckpt_last;
            mark = in->forwarded;
            for (unsigned w = 0; w < in->args->workers; w++)
                if (last[w] < in->sent_last[w] && last[w] < mark)
                    mark = last[w];
        }
        if (mark < low)
            low = mark;
    }
    return low;
}

static void s_on_acks(s_ingest_t *in)
{
    vem_ack_t ack;
    int n;
    while ((n = zmq_recv(in->acks, &ack, sizeof ack, ZMQ_DONTWAIT)) >= 0) {
        if (n != (int)sizeof ack || ack.consumer >= VEM_CONSUMERS)
            continue;
        if (ack.consumer == VEM_CONSUMER_WORKERS) {
            if (ack.from < in->args->workers && ack.mark > in->done_last[ack.from])
                in->done_last[ack.from] = ack.mark;
        } else if (ack.consumer == VEM_CONSUMER_RULES) {
            if (ack.from < in->args->workers && ack.mark > in->ckpt_last[ack.from])
                in->ckpt_last[ack.from] = ack.mark;
        } else if (ack.mark > in->marks[ack.consumer]) {
            in->marks[ack.consumer] = ack.mark;
        }
    }
}

static void s_trim(s_ingest_t *in)
{
    uint64_t low = s_low_mark(in, VEM_CONSUMERS);
    uint64_t output = s_low_mark(in, VEM_CONSUMER_RULES);
    if (output != UINT64_MAX)
        atomic_store(&in->args->output_seq, output);
    if (in->args->consumers & 1u << VEM_CONSUMER_RULES) {
        uint64_t bytes = vem_spool_bytes(in->args->spool);
        bool full = !vem_spool_has_room(in->args->spool, S_ROOM_INPUTS * in->headroom);
        atomic_store(&in->args->ckpt_wanted,
                     low < output &&
                         (full || (in->args->ckpt_bytes && bytes > in->args->ckpt_bytes)));
    }
    if (in->rreader && in->rnext - 1 < low)
        low = in->rnext - 1; /* a replay on request reads below the marks: keep its segments */
    if (low != UINT64_MAX && low > in->trimmed) {
        if (vem_spool_trim(in->args->spool, low) == 0)
            in->trimmed = low;
        else
            vem_log(VEM_LOG_ERR, "ingest", "spool trim: %s", strerror(errno));
    }
    uint64_t durable = vem_spool_durable_seq(in->args->spool);
    vem_gauge_set(in->backlog,
                  (int64_t)(output != UINT64_MAX && durable > output ? durable - output : 0));
    vem_gauge_set(in->unjudged,
                  (int64_t)(in->args->consumers & 1u << VEM_CONSUMER_RULES && durable > low
                                ? durable - low
                                : 0));
    vem_gauge_set(in->unforwarded,
                  (int64_t)(durable > in->forwarded ? durable - in->forwarded : 0));
    vem_gauge_set(in->spool_bytes, (int64_t)vem_spool_bytes(in->args->spool));
    atomic_store(&in->args->settled_seq, low == UINT64_MAX ? durable : low);
}

/* Once a second: closes idle and deaf connections, tries pending closes again, forgets
 * addresses no longer needed. */
static void s_sweep_idle(s_ingest_t *in)
{
    int64_t deadline = vem_now_us() - (int64_t)in->args->idle_timeout_s * 1000000;
    bool room = true; /* closing a connection drains it: that needs spool room, a retry not */
    for (size_t i = 0; i < in->capacity; i++) {
        room = room && s_can_stage(in);
        if (!room && in->npending == 0)
            break;
        s_conn_t *c = in->slots[i];
        if (!c || c == S_TOMBSTONE || c->stalled)
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
        } else if (c->last_us < deadline) {
            vem_log(VEM_LOG_DEBUG, "ingest", "closing idle connection %s", c->meta);
            s_close(in, c, in->closed_idle);
        }
    }
    vem_peers_sweep(in->peers, vem_mono_ms() * 1000);
    vem_gauge_set(in->addresses, (int64_t)vem_peers_count(in->peers));
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
    const char *sw[] = {"reason", "vin_switch", NULL};
    in->closed_switch = vem_metrics_counter(m, "vem_connections_closed_total", closed_help, sw);
    for (unsigned v = 0; v < 4; v++) {
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
    const char *q[] = {"stage", "settle", NULL}, *fw[] = {"stage", "forward", NULL},
               *ck[] = {"stage", "checkpoint", NULL};
    const char *depth_help = "Inputs in the spool by stage: settle = not yet durable in every "
                             "sink, forward = not yet handed to a worker, checkpoint = kept for "
                             "the rule state (not yet in every worker's checkpoint, or in a sink).";
    in->backlog = vem_metrics_gauge(m, "vem_queue_depth", depth_help, q);
    in->unjudged = vem_metrics_gauge(m, "vem_queue_depth", depth_help, ck);
    in->unforwarded = vem_metrics_gauge(m, "vem_queue_depth", depth_help, fw);
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
    zmq_setsockopt(in->stream, ZMQ_TCP_MAXRT, &a->send_timeout_ms, sizeof a->send_timeout_ms);
    int sndhwm = S_STREAM_SNDHWM;
    zmq_setsockopt(in->stream, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    if (zmq_bind(in->stream, a->terminals_endpoint) != 0) {
        snprintf(err, errlen, "cannot bind terminals endpoint %s: %s", a->terminals_endpoint,
                 zmq_strerror(zmq_errno()));
        return -1;
    }
    if (a->gateways_endpoint && *a->gateways_endpoint) {
        in->pull = zmq_socket(ctx, ZMQ_PULL);
        zmq_setsockopt(in->pull, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(in->pull, ZMQ_RCVHWM, &a->rcvhwm, sizeof a->rcvhwm);
        if (a->gateways_curve && vem_curve_serve(a->gateways_curve, in->pull, err, errlen) != 0)
            return -1;
        zmq_setsockopt(in->pull, ZMQ_MAXMSGSIZE, &a->gateway_max_message,
                       sizeof a->gateway_max_message);
        if (zmq_socket_monitor(in->pull, S_GATEWAY_MONITOR, ZMQ_EVENT_DISCONNECTED) == 0) {
            in->gwmon = zmq_socket(ctx, ZMQ_PAIR);
            zmq_setsockopt(in->gwmon, ZMQ_LINGER, &zero, sizeof zero);
            zmq_connect(in->gwmon, S_GATEWAY_MONITOR);
        }
        if (zmq_bind(in->pull, a->gateways_endpoint) != 0) {
            snprintf(err, errlen, "cannot bind gateways endpoint %s: %s", a->gateways_endpoint,
                     zmq_strerror(zmq_errno()));
            return -1;
        }
    }
    if (a->stations.endpoint && *a->stations.endpoint) {
        a->stations.metrics = a->metrics;
        in->stations = vem_stations_new(ctx, &a->stations, err, errlen);
        if (!in->stations)
            return -1;
        if (a->registry) /* routing by the registry from the first reading on */
            vem_stations_set_registry(in->stations, a->registry);
        a->registry = NULL;
    }
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

static void s_teardown(s_ingest_t *in)
{
    for (size_t i = 0; i < in->capacity; i++)
        if (in->slots[i] && in->slots[i] != S_TOMBSTONE) {
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

/* Opens or closes intake for want of spool room, and says so once per change. */
static bool s_room(s_ingest_t *in)
{
    bool room = vem_spool_has_room(in->args->spool, S_ROOM_INPUTS * in->headroom);
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
    s_ingest_t in = {.args = args_};
    vem_ingest_args_t *a = in.args;
    in.capacity = 1024;
    in.slots = calloc(in.capacity, sizeof *in.slots);
    in.staged = calloc(S_BATCH, sizeof *in.staged);
    in.stalled = calloc(a->max_connections + 1, sizeof *in.stalled);
    in.sent_last = calloc(a->workers, sizeof *in.sent_last);
    in.done_last = calloc(a->workers, sizeof *in.done_last);
    in.ckpt_last = calloc(a->workers, sizeof *in.ckpt_last);
    in.peers = vem_peers_new(a->max_per_address, a->new_per_address_s);
    in.scratch = malloc(sizeof *in.scratch);
    if (!in.slots || !in.staged || !in.stalled || !in.sent_last || !in.done_last || !in.ckpt_last ||
        !in.peers || !in.scratch)
        abort();
    in.headroom = S_META_MAX +
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
    atomic_store(&a->behind, !in.live);
    in.fwd_next = from;
    atomic_store(&a->durable_seq, vem_spool_durable_seq(a->spool));
    atomic_store(&a->settled_seq, from - 1);
    atomic_store(&a->output_seq, from - 1);
    atomic_store(&a->spool_ok, true);
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
    atomic_store(&a->listening, true);
    vem_actor_ready(pipe, NULL);

    int64_t next_sweep = vem_now_us() + 1000000;
    for (;;) {
        atomic_fetch_add_explicit(&a->beats, 1, memory_order_relaxed);
        bool room = s_room(&in); /* first: a drain stalls exactly when room runs out */
        bool stalled = in.nstalled > 0 && !s_resume_stalled(&in);
        bool open = room && !stalled && !in.flush_failed;
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
        bool reading_back = !in.live && !in.holding && vem_mono_ms() >= in.reader_retry_ms;
        if (reading_back || (in.rreader && !in.rholding))
            timeout = 0; /* more to read back from the spool */
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
            s_on_acks(&in);
        if (items[2].revents & ZMQ_POLLIN)
            s_on_ctl(&in);
        if (i_stream >= 0 && (items[i_stream].revents & ZMQ_POLLIN))
            for (int i = 0; i < S_BATCH && in.nstalled == 0 && s_can_stage(&in); i++) {
                int events = 0;
                size_t sz = sizeof events;
                zmq_getsockopt(in.stream, ZMQ_EVENTS, &events, &sz);
                if (!(events & ZMQ_POLLIN))
                    break;
                s_on_stream(&in);
            }
        if (i_pull >= 0 && (items[i_pull].revents & ZMQ_POLLIN) && in.nstalled == 0)
            s_on_pull(&in);
        if (i_gwmon >= 0 && (items[i_gwmon].revents & ZMQ_POLLIN) && s_can_stage(&in))
            s_on_gateway_event(&in);
        if (i_stations >= 0 && (items[i_stations].revents & ZMQ_POLLIN) && in.nstalled == 0)
            s_on_stations(&in);
        s_commit(&in); /* one fdatasync for everything read in this round, then the replies */
        if (!in.live && vem_mono_ms() >= in.reader_retry_ms)
            s_catch_up(&in);
        if (in.rreader)
            s_replay_turn(&in);
        s_trim(&in);
        if (vem_now_us() >= next_sweep) {
            s_sweep_idle(&in); /* (closes only what needs no spool room while a flush fails) */
            next_sweep = vem_now_us() + 1000000;
        }
    }
    /* Drain: stop reading and make the spool durable. The workers get what they can take now;
     * anything else is in the spool and replayed at the next start. Buffered partial frames
     * stay in their reassemblers: the terminals send them again. */
    atomic_store(&a->listening, false);
    if (!s_commit(&in) && vem_spool_flush(a->spool) != 0)
        vem_log(VEM_LOG_ERR, "ingest",
                "spool flush failed at stop: %zu inputs never acknowledged are lost with the "
                "process (their terminals send them again)",
                in.nstaged);
    if (!in.live)
        s_catch_up(&in);
    s_teardown(&in);
}
