/* ingest — the one thread that faces the network.
 *
 * Terminals connect over raw TCP to a ZMQ_STREAM socket; each connection gets its own
 * reassembler (bounded buffer), an idle deadline and a place in a bounded table. Gateways
 * push whole frames to a ZMQ_PULL socket, one frame per message part. Every whole frame, and
 * every run of bytes the reassembler rejects (as a quarantine record with its error class and
 * reason), is appended to the spool; after each batch the spool is flushed (fdatasync), then
 * at once terminals are answered (login and time calibration always, every frame in HJ 1239
 * reply mode), then the inputs go to worker[hash(VIN) % N] without waiting: a worker that
 * cannot take them is fed later from the spool (see ingest.c). A failed flush answers and
 * forwards nothing and keeps intake closed until a retry succeeds. Roadside stations send
 * readings to a ZMQ_ROUTER socket (stations.h): each is checked, spooled (or quarantined),
 * acknowledged after the same flush and routed to the worker of its vehicle.
 *
 * Consumers acknowledge cumulative marks on VEM_ACK_ENDPOINT; the spool is trimmed below the
 * lowest mark of the active consumers. Only a full spool (or a failing disk) stops the reading
 * of the sockets, so TCP pushes back on terminals; nothing is dropped to make room. Owns: the
 * sockets, the connection table, the spool (handed over by main at start). Shared: the
 * metrics registry and the atomics below, which main reads for health and the watchdog. */
#ifndef VEM_INGEST_H
#define VEM_INGEST_H

#include "metrics.h"
#include "spool.h"
#include "stations.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* inproc endpoint where consumers report processed spool sequence numbers (PULL in ingest). */
#define VEM_ACK_ENDPOINT "inproc://vem-acks"

/* Consumers of the spool: the spool is trimmed below what every active one has done. */
enum {
    VEM_CONSUMER_WORKERS = 0, /* processed by a worker (the only one when no sink runs) */
    VEM_CONSUMER_PG = 1,      /* committed to PostgreSQL */
    VEM_CONSUMER_KAFKA = 2,   /* delivered to Kafka */
    VEM_CONSUMER_RULES = 3,   /* in a worker's rule-state checkpoint (checkpoint.h) */
    VEM_CONSUMERS
};

typedef enum {
    VEM_REPLY_NONE = 0,   /* GB 17691 terminals expect no replies to data frames */
    VEM_REPLY_HJ1239 = 1, /* HJ 1239 (MEE) terminals wait ~3 s for a reply to every frame */
} vem_reply_mode_t;

typedef struct {
    void *zctx;
    vem_metrics_t *metrics;
    vem_spool_t *spool;    /* owned by ingest once the actor runs */
    const char *spool_dir; /* for the replay reader */
    unsigned workers;
    const char *terminals_endpoint;       /* ZMQ_STREAM bind, e.g. tcp://127.0.0.1:7611 */
    const char *gateways_endpoint;        /* ZMQ_PULL bind; NULL or "" for none */
    vem_curve_endpoint_t *gateways_curve; /* CURVE server of the gateways (curve.h); NULL: plain */
    vem_stations_opts_t stations; /* roadside stations; endpoint NULL or "" for none (metrics
                                   * are filled in by ingest) */
    unsigned max_connections;
    size_t max_frame;   /* reassembler buffer per connection */
    int idle_timeout_s; /* close terminal connections silent this long */
    int backlog;        /* ZMQ_BACKLOG */
    int rcvhwm;         /* ZMQ_RCVHWM of the network sockets (small: TCP pushes back) */
    int worker_hwm;     /* ZMQ_SNDHWM towards each worker */
    int tcp_keepalive_idle_s;
    int send_timeout_ms;           /* ZMQ_TCP_MAXRT: unacknowledged replies drop a connection */
    uint64_t reject_bytes;         /* per connection: rejected bytes kept in the quarantine */
    unsigned reject_records;       /* ... and quarantine records made; past either: closed */
    unsigned reject_share_pct;     /* ... and the share of rejected bytes that closes it */
    unsigned max_per_address;      /* terminal connections of one IP address at once */
    unsigned new_per_address_s;    /* ... and new ones per second */
    int64_t gateway_max_message;   /* ZMQ_MAXMSGSIZE of the gateway socket */
    struct vem_registry *registry; /* the registry snapshot at start for the stations' routing
                                    * (one reference passes to ingest), or NULL */
    unsigned consumers;            /* bit per VEM_CONSUMER_* that acknowledges */
    uint64_t replay_from;          /* re-process spool records from this seq on (0: none), e.g. the
                                    * lowest sink cursor + 1 after a restart */
    _Atomic int reply_mode;        /* vem_reply_mode_t; reloadable */
    struct vem_keys *keys;         /* terminal keys (keys.h): activations are judged here */
    bool bind_vin;                 /* one connection, one vehicle (terminals.bind_vin) */
    unsigned activations_per_s;    /* activations judged per second, at most */
    unsigned activations_per_address_s; /* ... and from one source address */
    atomic_uint_fast64_t *forwarded;    /* per worker, inputs handed to it (main's watchdog) */
    /* published by ingest, read by main */
    atomic_uint_fast64_t beats;       /* loop iterations */
    atomic_uint_fast64_t connections; /* open terminal connections */
    atomic_uint_fast64_t durable_seq; /* every input up to it is in the spool, synced */
    atomic_uint_fast64_t settled_seq; /* every input up to it is done in every consumer */
    atomic_uint_fast64_t output_seq;  /* ... in every consumer but the rules' checkpoints: the
                                       * sinks hold its records (a checkpoint may cover no more,
                                       * or a crash could lose verdicts only it had made) */
    atomic_bool listening;            /* the endpoints are bound and read */
    atomic_bool behind;  /* the workers are fed from the spool (a replay, a catch-up), not live */
    uint64_t ckpt_bytes; /* spool bytes the rules may hold back before they must checkpoint */
    atomic_bool ckpt_wanted;    /* only the rules' checkpoints keep more than ckpt_bytes (or the
                                 * spool is full): the workers checkpoint now, not at their time */
    atomic_bool spool_ok;       /* the last spool flush succeeded */
    atomic_bool spool_readable; /* the last read of the spool for the workers succeeded */
    atomic_bool spool_full;     /* intake paused for want of spool room */
    /* Microseconds intake has been paused in all (spool full, a failing flush, a stalled
     * drain: nothing read while the trucks' data waits in their sockets; and vemd stopped,
     * counted at the next start), since the spool began, up to the end of the last pause. Kept in
     * the spool directory (intake-paused) across restarts, and with every frame in the spool (" ~p"
     * in its meta text): the rules measure a truck's silence less it (vem_rules_on_frame). */
    _Atomic int64_t paused_us;
    /* While intake is paused: the intake clock (wall microseconds less the paused total) when
     * the pause began, which stands still until it ends; 0 while intake reads. Set before, and
     * cleared after, paused_us takes the pause: vem_ingest_paused_now. */
    _Atomic int64_t closed_at_us;
    /* While inputs are stamped but not yet handed to the workers (staged until the spool's
     * sync): a wall time no later than the oldest one's receipt time, stored before that input
     * read the clock; 0 when none waits. vem_ingest_sweep_now. */
    _Atomic int64_t staged_from_us;
} vem_ingest_args_t;

/* The latest "now" a worker's silence rules may take, given wall_us, the wall clock it read
 * before this call: no input still on its way to the workers was received before it, so no
 * trip is ended as silent while the frame that breaks the silence waits in ingest (a replay
 * would judge that frame first, and keep the trip). A worker then also takes no later than
 * the newest receipt it judged while its own queue still holds inputs: ingest hands each
 * worker its inputs in the order they were stamped. */
int64_t vem_ingest_sweep_now(int64_t wall_us, const _Atomic int64_t *staged_from_us);

/* The paused total at now_us (wall clock), the pause in progress included, for a thread other
 * than ingest. Read at the moment a pause ends, it may still count that pause up to now: more
 * pause, never less, so what it ends as silence was silence. */
int64_t vem_ingest_paused_now(const _Atomic int64_t *paused_us, const _Atomic int64_t *closed_at_us,
                              int64_t now_us);

/* Largest paused total a record may carry: 2^50 us, 35 years (a larger one is damage). */
#define VEM_INGEST_PAUSED_MAX (INT64_C(1) << 50)

/* File in the spool directory holding intake's paused total, in microseconds, as text. */
#define VEM_INGEST_PAUSED_FILE "intake-paused"

/* The paused total a spool record's meta text carries (" ~p<us>"; 0 without, or when it is
 * not a number from 0 to VEM_INGEST_PAUSED_MAX). */
int64_t vem_ingest_meta_paused(const char *meta);

/* Pipe message from main: these bytes, then a vem_registry_t pointer whose reference passes to
 * ingest (the stations route readings by plate through it). */
#define VEM_INGEST_REGISTRY_MSG "REGISTRY"

/* Actor body: bind, report ready, serve until $TERM; then stop reading, flush the spool,
 * hand what it has to the workers and return. */
void vem_ingest_actor(void *pipe, void *args);

/* A consumer's acknowledgement, cumulative: every input up to mark is done for it, so a lost
 * acknowledgement is made good by the next. Sinks send theirs only once their spool cursor is
 * durable at mark; a worker's covers the inputs routed to it. */
typedef struct {
    uint32_t consumer; /* VEM_CONSUMER_* */
    uint32_t from;     /* VEM_CONSUMER_WORKERS, _RULES: the worker's index */
    uint64_t mark;
} vem_ack_t;

#endif
