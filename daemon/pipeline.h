/* pipeline — what travels between vemd's threads, and where.
 *
 * Thread model (DESIGN.md):
 *
 *   main      signals, sd_notify + watchdog, reload, drain; owns the actors below
 *   ingest    terminals (ZMQ_STREAM), gateways (ZMQ_PULL): reassembles, appends every input
 *             to the spool, flushes it, replies, then PUSHes each input to worker[hash(VIN) % N]
 *             without ever waiting: when a worker's queue is full it falls behind and feeds the
 *             workers from the spool until it has caught up (catch-up reader)
 *   worker×N  PULL: decode, per-vehicle session state, (rules); owns its vehicles' state;
 *             emits sink-neutral records (records.h) to every sink; answers session queries
 *   sink×M    PULL: turns records into its own form, writes them, moves its spool cursor;
 *             what it cannot write yet goes to its spill file, so it never stops reading
 *   control   REP for vemctl; asks each worker's query socket for per-vehicle figures
 *   http      libmicrohttpd's thread: /metrics and /healthz
 *
 * Every hop is a PUSH/PULL pair over inproc with high-water marks. Intake never waits for the
 * stages after the spool: only a full spool stops ingest reading its sockets (TCP then pushes
 * back on terminals). Workers wait for a sink only when that sink's spill is full. Nothing is
 * dropped to make room. Messages are one ZeroMQ frame: a fixed header, then the input bytes
 * exactly as received. */
#ifndef VEM_PIPELINE_H
#define VEM_PIPELINE_H

#include <stdint.h>

/* Where an input came from. */
typedef enum {
    VEM_SOURCE_TERMINAL = 1, /* raw TCP through the ZMQ_STREAM socket */
    VEM_SOURCE_GATEWAY = 2,  /* whole frames through ZMQ_PULL */
    VEM_SOURCE_ROADSIDE = 3, /* roadside readings through ZMQ_ROUTER */
} vem_source_t;

/* Header of an ingest -> worker message; detail_len bytes of detail text, then data_len bytes
 * of input follow it. */
typedef struct {
    uint64_t seq;          /* spool sequence number */
    int64_t received_us;   /* receipt time, Unix microseconds */
    int64_t paused_us;     /* intake's paused total when it was read (vem_ingest_args_t) */
    uint32_t nseqs;        /* seqs this input settles: 1, or a run of unreadable spool records */
    uint32_t data_len;     /* input bytes after the detail */
    uint16_t kind;         /* VEM_SPOOL_KIND_*: a whole frame, or quarantined bytes */
    uint8_t source;        /* vem_source_t */
    uint8_t error;         /* quarantine: vem_hj1239_status_t of the rejection */
    uint32_t error_offset; /* quarantine: byte offset of the problem in the stream */
    uint16_t detail_len;   /* quarantine: why, in words ("" for the class's usual reason) */
    uint16_t flags;        /* VEM_INPUT_* */
} vem_input_hdr_t;

/* An input re-run on request (vemctl spool replay): seen before, so no session bookkeeping
 * (it is no duplicate and no gap); its records go to the sinks again, whose keys absorb them. */
#define VEM_INPUT_REPLAY 1u

/* Longest quarantine detail carried with an input. */
#define VEM_INPUT_DETAIL_MAX 512

/* inproc endpoint of worker i's input (bound by the worker, ingest connects). */
#define VEM_WORKER_ENDPOINT "inproc://vem-worker-%u"

/* inproc endpoint of ingest's control socket (REP bound by ingest, control connects):
 * "replay FROM TO" re-runs spool records FROM..TO through the workers. */
#define VEM_INGEST_CONTROL_ENDPOINT "inproc://vem-ingest-control"

/* inproc endpoint of worker i's query socket (REP bound by the worker, control connects). */
#define VEM_WORKER_QUERY_ENDPOINT "inproc://vem-worker-query-%u"

#endif
