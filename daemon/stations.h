/* stations — the endpoint of roadside remote-sensing stations (HJ 845-2017), inside ingest.
 *
 * Stations connect with ZMQ_DEALER to a ZMQ_ROUTER socket and send one reading per message
 * (JSON, parsers/rsd.h). Each reading is checked at once with the pure parser, so ingest can
 * spool it (a reading, or a quarantine record naming the class, the key and what is wrong) and
 * the station gets its answer right after the spool flush that made it durable: "ack" carrying
 * the reading_id, or "rejected" (do not send it again). The answer to a reading whose
 * (station_id, reading_id) was accepted recently is an "ack" with "duplicate": true, given once
 * the first copy is durable; the copy is not spooled again. "busy" (send it again later) is
 * the answer when a station has too many readings unanswered or too many stations are known.
 * README.md documents the message formats.
 *
 * Every peer-controlled quantity is bounded: message size (a bigger one is refused as
 * too_large; one over four times the limit makes libzmq drop the connection), readings queued
 * per station (the socket's receive high-water mark, and the unanswered count), stations known,
 * and recent reading ids (two generations of a fixed-size table).
 *
 * Routing: a reading goes to the worker of its vehicle, by VIN when the registry snapshot maps
 * its plate (or the station sent a VIN), by plate otherwise. The route is written into the
 * spool record's meta text (" >V:<vin>" or " >P:<plate>"), so a replay routes it the same way
 * whatever the registry says by then.
 *
 * Thread: ingest's; not thread-safe. Owns its socket, its tables and one registry reference. */
#ifndef VEM_STATIONS_H
#define VEM_STATIONS_H

#include "curve.h"
#include "metrics.h"
#include "registry.h"
#include "rsd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vem_stations vem_stations_t;

typedef struct {
    const char *endpoint;  /* ZMQ_ROUTER bind */
    size_t max_message;    /* stations.max_message_bytes */
    unsigned max_inflight; /* per station */
    unsigned max_stations;
    int64_t future_s;            /* tolerance for reading times after their receipt */
    size_t dedup;                /* recent reading ids remembered (per generation) */
    unsigned max_depth;          /* stations.max_json_depth */
    vem_curve_endpoint_t *curve; /* CURVE server and its keys (curve.h); NULL: plain */
    vem_metrics_t *metrics;
} vem_stations_opts_t;

/* Binds the endpoint. NULL with the reason in err. */
vem_stations_t *vem_stations_new(void *zctx, const vem_stations_opts_t *opts, char *err,
                                 size_t errlen);

/* Closes the socket (unanswered stations send again), frees everything; accepts NULL. */
void vem_stations_destroy(vem_stations_t **self_p);

/* The socket, for ingest's poll. */
void *vem_stations_socket(vem_stations_t *self);

/* Takes a new registry snapshot (the reference passes to the module; the old one is
 * released). */
void vem_stations_set_registry(vem_stations_t *self, vem_registry_t *registry);

/* What one message asks ingest to spool. */
typedef struct {
    uint16_t kind;       /* VEM_SPOOL_KIND_RSD_READING or _QUARANTINE; 0: nothing to spool */
    const uint8_t *data; /* the message bytes (valid until the next read) */
    size_t len;          /* 0 for a message over the size limit (only its size is kept) */
    uint8_t error;       /* QUARANTINE: class (VEM_RECORD_CLASS_*) */
    char origin[128];    /* spool meta: "station ID" and, for readings, " >V:VIN" / " >P:PLATE" */
    char detail[256];    /* QUARANTINE: "key: what is wrong" */
    int64_t received_us; /* the receipt time the parser judged the reading by */
} vem_station_input_t;

/* Reads one message without waiting and decides it; false when none was waiting. in->kind 0
 * means it was answered already (busy, or a duplicate whose first copy is durable) or is
 * waiting for an earlier input's flush (a duplicate). Otherwise the caller spools it and
 * calls vem_stations_staged with its seq. */
bool vem_stations_read(vem_stations_t *self, uint64_t durable_seq, vem_station_input_t *in);

/* The input just read is in the spool (not yet durable) under seq; its answer waits for it. */
void vem_stations_staged(vem_stations_t *self, uint64_t seq);

/* Sends every answer whose input is durable (seq <= durable_seq), never waiting: an answer a
 * station cannot take now is dropped and counted (it sends the reading again). */
void vem_stations_answer(vem_stations_t *self, uint64_t durable_seq);

/* The pure checks of one message, shared with the fuzzer (tests/fuzz/fuzz_envelope.c). */

/* Given the sizes of the n parts after the routing id, the index of the reading part, or -1
 * when there is not exactly one; *delim set when the first part is REQ's empty delimiter. */
int vem_stations_envelope(const size_t *sizes, int n, bool *delim);

/* How a reading's bytes fare before the rules: VEM_STATIONS_OK with *r filled, or why not. */
typedef enum {
    VEM_STATIONS_OK,
    VEM_STATIONS_TOO_LARGE, /* over max_message */
    VEM_STATIONS_TOO_DEEP,  /* objects and arrays nested deeper than max_depth (bad_json) */
    VEM_STATIONS_INVALID,   /* the parser's verdict is in *err */
} vem_stations_verdict_t;

/* Checks len bytes against the limits, then as a reading received at now_us. */
vem_stations_verdict_t vem_stations_check(const uint8_t *data, size_t len, size_t max_message,
                                          unsigned max_depth, int64_t now_us, int64_t future_s,
                                          vem_rsd_t *r, vem_rsd_error_t *err);

#endif
