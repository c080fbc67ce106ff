/* ingest_int — what the parts of the ingest thread share; not for other modules.
 *
 *   ingest.c         the actor: its loop, staging inputs into the spool, the commit (flush,
 *                    replies, hand-off to the workers), metrics, sockets, start and stop
 *   ingest_term.c    terminals: the ZMQ_STREAM socket, the connection table, reassembly, the
 *                    rejects budget, closing and the idle sweep
 *   ingest_reply.c   replies to terminals, activations (0x07) and their answers, deaf peers
 *   ingest_gw.c      gateways (their socket, its monitor, message size bounds) and roadside
 *                    stations
 *   ingest_replay.c  reading the spool back (catch-up, replay on request), acknowledgements
 *                    and trimming
 *
 * Everything here belongs to the ingest thread (see ingest.c for the design). */
#ifndef VEM_INGEST_INT_H
#define VEM_INGEST_INT_H

#include "hj1239.h"
#include "ingest.h"
#include "keys.h"
#include "peers.h"
#include "pipeline.h"
#include "reasm.h"
#include "rejects.h"
#include "stations.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <zmq.h>

#define VEM_INGEST_BATCH          512 /* inputs per flush */
#define VEM_INGEST_META_MAX       160 /* meta text of a spool record: source, verdict, detail */
#define VEM_INGEST_FLUSH_RETRY_MS 100 /* first pause after a failed flush, doubling */
#define VEM_INGEST_TOMBSTONE      ((vem_ingest_conn_t *)1)
#define VEM_INGEST_CLOSED_KEYS    1024 /* closes remembered, to tell a late notice from a new one */
#define VEM_INGEST_ROOM_INPUTS    2    /* inputs of headroom the drain needs, so "full" says it */

typedef struct {
    uint64_t key;
    uint8_t id[8];
    size_t id_len;
    uint32_t conn_id;
    vem_reasm_t *reasm;
    int64_t last_read_ms; /* the intake clock (vem_ingest_open_ms) when it last sent */
    char meta[64];        /* "tcp 127.0.0.1:40122 #7", stored with every spool record */
    uint16_t meta_len;
    zmq_msg_t chunk;    /* the chunk the reassembler borrows, kept while the drain is stalled */
    bool stalled;       /* events wait in the reassembler for spool room */
    bool gone;          /* closed (by the peer or by us): remove once drained */
    bool close_pending; /* our close was refused (the peer's pipe is full): retried */
    bool deaf;          /* replies refused too long (ingest_reply.c): closed at the sweep */
    int64_t refused_ms; /* first reply refused since one was taken (intake clock ms; 0: none) */
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
} vem_ingest_conn_t;

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
} vem_ingest_staged_t;

typedef struct {
    vem_ingest_args_t *args;
    void *stream, *pull, *acks;
    vem_stations_t *stations; /* roadside stations (stations.h); NULL when not configured */
    void **push;              /* one per worker */
    vem_ingest_conn_t **slots;
    size_t capacity, count, used;                 /* used counts tombstones too */
    uint64_t closed_keys[VEM_INGEST_CLOSED_KEYS]; /* ids of connections vemd closed itself, latest
                                                     last */
    size_t nclosed;                               /* entries used (a ring once full) */
    uint32_t next_conn_id;
    vem_ingest_conn_t *
        *stalled; /* connections whose drain waits for spool room, in arrival order */
    size_t nstalled;
    vem_ingest_staged_t *staged; /* appended, not yet durable */
    size_t nstaged;
    size_t headroom; /* spool bytes one more input may need */
    /* flush failures */
    bool flush_failed;
    int64_t flush_retry_ms, flush_backoff_ms;
    /* forwarding */
    bool live;         /* inputs go to the workers from memory */
    uint64_t fwd_next; /* behind: the next seq the catch-up reader forwards */
    vem_spool_reader_t *reader;
    int64_t reader_retry_ms;   /* after a read error, the catch-up pauses until then */
    int64_t reader_backoff_ms; /* that pause: doubles while the reads keep failing */
    uint64_t read_failures;    /* reads failed in a row (0: the last one succeeded) */
    int64_t read_logged_ms;    /* when the last of them was logged */
    int read_logged_errno;     /* and the cause it named */
    zmq_msg_t held;            /* behind: a message read from the spool waiting for room */
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
    int64_t open_ms;             /* ms intake was open before open_since_ms ... */
    int64_t open_since_ms;       /* ... and the monotonic ms it opened again; 0 while closed */
    int64_t paused_us;           /* intake's paused total before the pause in progress ... */
    int64_t closed_since_ms;     /* ... which began then (monotonic); 0: none */
    int64_t paused_saved_us;     /* the total intake-paused holds */
    int64_t paused_written_us;   /* when it was last written (wall clock), 0: not yet */
    vem_gauge_t *paused_gauge;   /* vem_intake_paused_seconds */
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
        *closed_peer, *closed_switch, *activations[VEM_KEYS_VERDICTS], *activations_over,
        *reply_dropped, *spool_errors, *spool_read_errors, *inputs, *behind, *late_notices,
        *oversize, *closed_rejects, *closed_unread, *closed_addr_limit, *closed_addr_rate,
        *discarded, *gateway_drops;
    vem_counter_t *drops[VEM_HJ1239_STATUS_COUNT];
    vem_gauge_t *conns, *spool_bytes, *spool_full, *backlog, *unforwarded, *addresses;
} vem_ingest_t;

/* ---- ingest.c ------------------------------------------------------------------------------ */

/* True when n more inputs can be staged now. */
bool vem_ingest_can_stage_n(const vem_ingest_t *in, size_t n);

/* True when one more input can be staged now. */
bool vem_ingest_can_stage(const vem_ingest_t *in);

/* Appends one input to the spool and stages its reply and (when live) its worker message;
 * returns its seq (see ingest.c). */
uint64_t vem_ingest_stage(vem_ingest_t *in, vem_source_t source, vem_ingest_conn_t *conn,
                          const char *origin, uint16_t kind, const uint8_t *data, size_t len,
                          unsigned error, uint64_t offset, const char *detail);

/* Makes the staged batch durable, then answers the terminals, then forwards the inputs. True
 * when nothing is left staged. */
bool vem_ingest_commit(vem_ingest_t *in);

/* The route of a roadside reading in its spool meta text ("V:<vin>" or "P:<plate>"), or NULL. */
const char *vem_ingest_route(const char *meta);

/* Worker that owns an input. */
unsigned vem_ingest_worker_of(const vem_ingest_t *in, uint16_t kind, uint64_t seq,
                              const uint8_t *data, size_t len, const char *route);

/* Builds the worker message of an input. */
void vem_ingest_message(zmq_msg_t *msg, const vem_input_hdr_t *hdr, const char *detail,
                        const uint8_t *data);

/* The intake clock: milliseconds intake has been open (reading its sockets) since the start.
 * It stands still while intake is paused, so silence measured on it is silence while read. */
int64_t vem_ingest_open_ms(const vem_ingest_t *in);

/* A spool record's meta text, NUL-terminated (cut at VEM_INGEST_META_MAX - 1 bytes). */
void vem_ingest_meta_text(const vem_spool_rec_t *rec, char meta[VEM_INGEST_META_MAX]);

/* Intake's paused total now, the pause in progress included (vem_ingest_args_t.paused_us). */
int64_t vem_ingest_paused_us(const vem_ingest_t *in);

/* Spool records whose stamps a start reads for the paused total (the newest ones). */
#define VEM_INGEST_PAUSED_TAIL 256

/* Seconds between rewrites of VEM_INGEST_PAUSED_FILE while the total stands still (10 to about
 * 11.25 in practice), and how far ahead of a rewrite the time it says vemd ran until lies (the
 * next rewrite, and as much again for a slow loop): a crash's downtime counts from there. */
#define VEM_INGEST_ALIVE_EVERY_S   10
#define VEM_INGEST_ALIVE_PROMISE_S 20
/* A longer downtime is not counted: a clock that was wrong, or a file long stale. */
#define VEM_INGEST_DOWNTIME_MAX_S (366LL * 86400)

/* What a start goes on from. */
typedef struct {
    int64_t total_us; /* the paused total */
    int64_t alive_us; /* wall clock when vemd stopped running (or, after a crash, a little later),
                         0: not known */
} vem_ingest_paused_t;

/* The paused state of the spool in dir holding records first .. next - 1. The total: the larger
 * of VEM_INGEST_PAUSED_FILE's (" ~p<us>") and the newest stamp an OBD frame among the last
 * VEM_INGEST_PAUSED_TAIL records carries (a file that is missing, damaged or behind, say after
 * a crash between its rewrites, gives way to the frames); never less than a spooled frame says,
 * or a replay and the live run after it would measure one silence two ways. Alive: the larger
 * of the file's (" ~a<us>": the stop's time, or while running VEM_INGEST_ALIVE_PROMISE_S after
 * the rewrite) and the newest receipt of an OBD frame among those records (a frame's stamp is
 * the total at its receipt; a reading has none). */
void vem_ingest_paused_load(const char *dir, uint64_t first, uint64_t next,
                            vem_ingest_paused_t *out);

/* The paused total a start at now_us goes on with: the downtime since p->alive_us counts as
 * paused (nothing could be read, so it is no vehicle's silence); none when alive is not known,
 * not before now (a clock set back, or a crash's restart within its promise) or more than
 * VEM_INGEST_DOWNTIME_MAX_S before it. Never above VEM_INGEST_PAUSED_MAX. */
int64_t vem_ingest_paused_after_downtime(const vem_ingest_paused_t *p, int64_t now_us);

/* Replaces VEM_INGEST_PAUSED_FILE in dir with p, durably (vem_fileio_replace): 0, or -1 with
 * errno and the old file as it was. */
int vem_ingest_paused_write(const char *dir, const vem_ingest_paused_t *p);

/* Hands a message to worker w without waiting; false (message kept) when its queue is full. */
bool vem_ingest_forward(vem_ingest_t *in, zmq_msg_t *msg, unsigned w, uint64_t seq, uint32_t nseqs);

/* ---- ingest_term.c ------------------------------------------------------------------------- */

/* The table key of a routing id. */
uint64_t vem_ingest_key(const uint8_t *id, size_t len);

/* The connection of key, or NULL. */
vem_ingest_conn_t *vem_ingest_find(const vem_ingest_t *in, uint64_t key);

/* Reads one message of the terminal socket: a connection's start or end, or its bytes. */
void vem_ingest_on_stream(vem_ingest_t *in);

/* Resumes stalled drains in arrival order; true when none is left. */
bool vem_ingest_resume_stalled(vem_ingest_t *in);

/* Once a second: closes idle and deaf connections, tries pending closes again. */
void vem_ingest_sweep_idle(vem_ingest_t *in);

/* Creates and binds the terminal socket; -1 with err set on failure. */
int vem_ingest_bind_terminals(vem_ingest_t *in, char *err, size_t errlen);

/* ---- ingest_reply.c ------------------------------------------------------------------------ */

/* Builds the reply to a terminal frame; false when none is due. */
bool vem_ingest_reply(const vem_ingest_t *in, const uint8_t *frame, size_t len, uint8_t out[31]);

/* The 0x08 answer to an activation. */
void vem_ingest_activation_reply(const uint8_t *frame, vem_keys_verdict_t v, uint8_t out[27]);

/* Judges an activation (0x07) before it is spooled; the verdict, or -1 when it does not decode. */
int vem_ingest_activation(vem_ingest_t *in, const uint8_t *data, size_t len,
                          vem_hj1239_frame_t **act, uint16_t *kind, unsigned *error, char *detail,
                          size_t detail_len);

/* Files an activation that passed, now that the spool holds it; the verdict for its answer. */
int vem_ingest_file_activation(vem_ingest_t *in, const vem_hj1239_frame_t *f);

/* NULL when one more activation (of conn; NULL: a gateway's) may be judged now, else the key
 * whose budget is spent. */
const char *vem_ingest_activation_budget(vem_ingest_t *in, const vem_ingest_conn_t *conn);

/* Sends the staged replies without blocking, noting peers that do not read them. */
void vem_ingest_send_replies(vem_ingest_t *in);

/* ---- ingest_gw.c --------------------------------------------------------------------------- */

/* Reads a bounded turn of gateway messages (whole frames). */
void vem_ingest_on_pull(vem_ingest_t *in);

/* An event of the gateway socket's monitor: a disconnection leaves a quarantine row. */
void vem_ingest_on_gateway_event(vem_ingest_t *in);

/* Reads a bounded turn of roadside readings. */
void vem_ingest_on_stations(vem_ingest_t *in);

/* Creates and binds the gateway socket (and its monitor) and the stations' socket, when
 * configured; -1 with err set on failure. */
int vem_ingest_bind_gateways(vem_ingest_t *in, char *err, size_t errlen);

/* ---- ingest_replay.c ----------------------------------------------------------------------- */

/* While behind: forwards spool records to the workers up to what is durable, and goes live
 * there unless inputs read meanwhile still wait for a failing sync; true when it stopped for
 * want of room or reached its turn's budget. */
bool vem_ingest_catch_up(vem_ingest_t *in);

/* Forwards a turn's share of the range an operator asked to replay. */
void vem_ingest_replay_turn(vem_ingest_t *in);

/* Answers a control request ("replay FROM TO"). */
void vem_ingest_on_ctl(vem_ingest_t *in);

/* Reads the consumers' acknowledgements. */
void vem_ingest_on_acks(vem_ingest_t *in);

/* Trims the spool below the lowest mark and publishes the marks and queue depths. */
void vem_ingest_trim(vem_ingest_t *in);

#endif
