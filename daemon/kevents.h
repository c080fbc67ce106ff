/* kevents — the workers' records as Kafka events: JSON with the FIELDS.md keys, a topic, a key
 * and a deterministic id.
 *
 * Every event carries "event_type", "schema_version" and "event_id" beside its FIELDS.md keys
 * (one JSON Schema per event type in schema/kafka/). The key is the VIN, or the plate when no
 * VIN is known, so one vehicle's events stay in one partition and in order. The id is made of
 * what identifies the event in the data, so the same input gives the same id and consumers can
 * deduplicate after a replay:
 *
 *   type       topic       one per                                 event_id
 *   sample     samples     sample (stream/twc/twc_nox block with   sample/VIN/EPOCH/BLOCK_IDX
 *                          its joined hybrid/supplementary blocks:
 *                          the rows of obd_samples)
 *   obd        samples     OBD block of a real-time frame          obd/VIN/EPOCH/BLOCK_IDX
 *   terminal   terminal    login, logout, removal_alarm,           terminal/VIN/EPOCH/CMD
 *                          activation
 *   violation  violations  emission of a verdict (violation or     violation/ID/LAST_US/SEVERITY
 *                          notice); an episode that grows is
 *                          emitted again with a later last_at
 *
 * EPOCH is the sample's (or frame's) time in Unix seconds. Quarantined and settled-only records
 * make no events (quarantine is PostgreSQL evidence only). Sample and OBD events carry
 * "signature_check" (the FRAME record's status, vem_records_sig_name) when the worker checked
 * the frame's signature, and no such key when it did not.
 *
 * Pure: no I/O, no globals; the caller owns the frame buffer. */
#ifndef VEM_KEVENTS_H
#define VEM_KEVENTS_H

#include "hj1239.h"
#include "records.h"

#include <stddef.h>

/* The events' schema version (schema/kafka/, value and header). 2: violations carry
 * plate_color, samples and OBD blocks may carry signature_check; version 1 consumers' schemas
 * forbid both. */
#define VEM_KEVENTS_SCHEMA_VERSION     3
#define VEM_KEVENTS_SCHEMA_VERSION_TXT "3"

typedef enum {
    VEM_KTOPIC_VIOLATIONS = 0,
    VEM_KTOPIC_SAMPLES = 1,
    VEM_KTOPIC_TERMINAL = 2,
    VEM_KTOPIC_RSD = 3,
    VEM_KTOPICS
} vem_ktopic_t;

/* One event. value is JSON text, value_len bytes (NUL-terminated besides), lent to the
 * callback: valid only until it returns, so it copies what it keeps. */
typedef struct {
    vem_ktopic_t topic;
    const char *type; /* static: "sample", "obd", "terminal", "violation", "rsd" */
    char key[64];     /* VIN or plate, NUL-terminated */
    char id[192];     /* NUL-terminated */
    const char *value;
    size_t value_len;
} vem_kevent_t;

/* Receives one event (its value lent for the call). */
typedef void (*vem_kevents_fn)(void *arg, vem_kevent_t *ev);

/* Makes the events of one record, in order, and hands each to fn; frame is a decode buffer.
 * wanted is a bit set of topics (1u << vem_ktopic_t): no event is built for another topic.
 * Returns how many events it made. */
size_t vem_kevents_of(const vem_record_t *rec, vem_hj1239_frame_t *frame, unsigned wanted,
                      vem_kevents_fn fn, void *arg);

/* Name of a topic kind as in the configuration ("violations", "samples", ...); static. */
const char *vem_kevents_topic_kind(vem_ktopic_t t);

#endif
