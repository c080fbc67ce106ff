/* pipeline — what travels between vemd's threads, and where.
 *
 * Thread model (DESIGN.md):
 *
 *   main      signals, sd_notify + watchdog, reload, drain; owns the actors below
 *   ingest    terminals (ZMQ_STREAM), gateways (ZMQ_PULL): reassembles, replies, appends every
 *             input to the spool, flushes it, then PUSHes each input to worker[hash(VIN) % N]
 *   worker×N  PULL: decode, per-vehicle session state, (rules); owns its vehicles' state;
 *             answers session queries on its own REP socket
 *   control   REP for vemctl; asks each worker's query socket for per-vehicle figures
 *   http      libmicrohttpd's thread: /metrics and /healthz
 *
 * Every hop is a PUSH/PULL pair over inproc with high-water marks: a slow stage blocks the
 * one before it, and ingest then stops reading its sockets, so TCP pushes back on terminals.
 * Nothing is dropped to make room. Messages are one ZeroMQ frame: a fixed header, then the
 * input bytes exactly as received. */
#ifndef VEM_PIPELINE_H
#define VEM_PIPELINE_H

#include <stdint.h>

/* Where an input came from. */
typedef enum {
    VEM_SOURCE_TERMINAL = 1, /* raw TCP through the ZMQ_STREAM socket */
    VEM_SOURCE_GATEWAY = 2,  /* whole frames through ZMQ_PULL */
    VEM_SOURCE_ROADSIDE = 3, /* roadside readings through ZMQ_ROUTER */
} vem_source_t;

/* Header of an ingest -> worker message; data_len bytes of input follow it. */
typedef struct {
    uint64_t seq;          /* spool sequence number */
    int64_t received_us;   /* receipt time, Unix microseconds */
    uint32_t conn_id;      /* terminal connection it came on; 0 for gateways */
    uint32_t data_len;     /* bytes after the header */
    uint16_t kind;         /* VEM_SPOOL_KIND_*: a whole frame, or quarantined bytes */
    uint8_t source;        /* vem_source_t */
    uint8_t error;         /* quarantine: vem_hj1239_status_t of the rejection */
    uint32_t error_offset; /* quarantine: byte offset of the problem in the stream */
} vem_input_hdr_t;

/* inproc endpoint of worker i's input (bound by the worker, ingest connects). */
#define VEM_WORKER_ENDPOINT "inproc://vem-worker-%u"

/* inproc endpoint of worker i's query socket (REP bound by the worker, control connects). */
#define VEM_WORKER_QUERY_ENDPOINT "inproc://vem-worker-query-%u"

#endif
