/* worker — decodes inputs and keeps the state of the vehicles hashed to it.
 *
 * One actor per worker. It binds VEM_WORKER_ENDPOINT (PULL, from ingest) and
 * VEM_WORKER_QUERY_ENDPOINT (REP, for control), decodes every frame (the reassembler already
 * checked its BCC), tracks each vehicle's session (duplicates, re-sends, serial gaps, skew),
 * counts frames by command and dialect and rejections by class, and records how long an input
 * took from receipt to decode. It owns its session table and its decode buffer; the metrics
 * registry is shared (atomics) and owned by main.
 *
 * Query socket: "sessions" answers a JSON array with one object per vehicle of this worker:
 * {"vin", "frames": {cmd name: count}, "live", "resent", "duplicates", "missing", "logins",
 *  "logouts", "last_seen_us", "skew_s"}, plus "plate" and "region_code" for vehicles in the
 * registry snapshot main last sent it. At most VEM_WORKER_SESSIONS_MAX vehicles, the most
 * recently seen first (the vem_sessions{worker} gauge has the whole count). */
#ifndef VEM_WORKER_H
#define VEM_WORKER_H

#include "checkpoint.h"
#include "metrics.h"
#include "rules.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    void *zctx;
    unsigned index;                  /* which worker: its endpoints carry this number */
    vem_metrics_t *metrics;          /* shared registry, owned by main */
    size_t dedup_window;             /* frame keys remembered per vehicle */
    int64_t sample_past_s;           /* frame and sample times accepted from receipt minus */
    int64_t sample_future_s;         /* this to receipt plus this, seconds */
    size_t max_sessions;             /* session table cap (session.h) */
    int64_t session_idle_s;          /* sessions without rule state unseen this long go */
    int rcvhwm;                      /* high-water mark of the input queue */
    const vem_rules_config_t *rules; /* the rules to judge vehicles by (copied at start); NULL:
                                      * none */
    struct vem_keys *keys;           /* terminal keys (keys.h), shared, owned by main */
    const _Atomic int *signatures;   /* vem_worker_signatures_t, main's, reloadable */
    const char *const *sinks;        /* inproc endpoints of the sinks that take the records */
    unsigned nsinks;
    int sink_hwm;      /* messages queued towards a sink before the worker waits */
    size_t max_plates; /* rule states of vehicles known only to the stations (roadside readings):
                        * by plate, and as many again by a VIN the registry does not know */
    const char *rsd_conninfo; /* where a rule state made after the start loads its plate's
                               * roadside history (rsdhist.h); NULL: none */
    /* rule-state checkpoints (checkpoint.h); ckpt_dir NULL: none */
    const char *ckpt_dir;
    unsigned workers;                    /* how many workers this run has */
    unsigned ckpt_interval_s;            /* wall-clock seconds between checkpoints */
    const vem_ckpt_entry_t *const *ckpt; /* the vehicles restored to this worker (read before
                                          * the worker reports ready) */
    size_t nckpt;
    uint64_t rules_floor;      /* inputs up to it are in the restored states: not judged again */
    int64_t rules_floor_rx_us; /* receipt of that input (the first kept after it, else the start):
                                  verdicts made before the first input judged travel with it */
    const atomic_uint_fast64_t *output_seq; /* ingest's: the sinks hold records up to it */
    const atomic_bool *ckpt_wanted;         /* ingest's: checkpoint now, the spool needs the room */
    const atomic_bool *behind;           /* ingest's: the inputs come from the spool, not live (the
                                          * silence rules wait); NULL: never */
    const _Atomic int64_t *paused_us;    /* ingest's paused total and ... */
    const _Atomic int64_t *closed_at_us; /* ... pause in progress (vem_ingest_paused_now: silence
                                          * is measured less them); NULL: none */
    const _Atomic int64_t *staged_from_us; /* ingest's: inputs stamped, not yet handed over
                                            * (vem_ingest_sweep_now); NULL: none */
    void *pending_ckpt; /* at return: a checkpoint written but not yet put in place
                         * (vem_ckpt_writer_t, through in pending_through): main commits it
                         * once the sinks' cursors reach pending_through ... */
    uint64_t pending_through;
    bool pending_swept; /* ... and, when set (it holds verdicts of the clock, which bear the seq
                         * of an input the cursors passed), once every sink stored everything
                         * handed to it */
    atomic_uint_fast64_t beats; /* loop iterations: main's watchdog reads it */
    atomic_uint_fast64_t done;  /* inputs fully processed */
} vem_worker_args_t;

/* What the workers do with SM2 signatures of real-time and re-sent frames (README
 * "Signatures"): nothing; store and mark the unverified; quarantine the unverified. */
typedef enum {
    VEM_SIGNATURES_OFF = 0,
    VEM_SIGNATURES_FLAG = 1,
    VEM_SIGNATURES_ENFORCE = 2,
} vem_worker_signatures_t;

/* The policy named by terminals.signatures ("off", "flag", "enforce"). */
int vem_worker_signatures(const char *name);

/* Sinks a worker can hand its records to. */
#define VEM_MAX_SINKS 4

/* Vehicles one worker puts in its answer to "sessions": the answer is built in the worker's
 * thread, so it must stay short whatever peers made the table hold. */
#define VEM_WORKER_SESSIONS_MAX 10000

/* Inputs per batch: one records message to each sink and one acknowledgement per batch. */
#define VEM_WORKER_BATCH 256

/* Pipe message from main: these bytes, then a vem_registry_t pointer whose reference passes to
 * the worker (it releases the snapshot it had). */
#define VEM_WORKER_REGISTRY_MSG "REGISTRY"

/* Pipe message from main: these bytes, then a vem_day_counts_t pointer (completeness.h) with
 * this worker's vehicles, whose ownership passes to the worker: judge the day's completeness. */
#define VEM_WORKER_DAY_MSG "DAY"

/* Pipe message from main: these bytes, then a malloc'd vem_rules_config_t pointer whose
 * ownership passes to the worker (SIGHUP: new thresholds and switches, from the next input). */
#define VEM_WORKER_RULES_MSG "RULES"

/* Main -> worker: "HISTORY" + a vem_rsdhist_t * (ownership moves): the stored roadside readings
 * of the worker's vehicles, to seed their rsd.* chains (rsdhist.h). */
#define VEM_WORKER_HISTORY_MSG "HISTORY"

/* Actor body: bind, report ready, process until $TERM, then drain what is queued. */
void vem_worker_actor(void *pipe, void *args);

#endif
