/* sink_kafka — the Kafka sink: turns the workers' records into JSON events (kevents.h) and
 * produces them with librdkafka; the delivery report, not the queueing, is success.
 *
 * One actor with its own idempotent producer (enable.idempotence, acks=all: per-partition
 * order and no duplicates from librdkafka's own retries). It binds VEM_SINK_KAFKA_ENDPOINT
 * (PULL; every worker PUSHes its records there), makes the events of each worker message and
 * produces them, keyed by VIN (plate when no VIN is known), with the headers event_type,
 * schema_version and event_id. It waits in one zmq_poll on its pipe, its queue and
 * librdkafka's queue event descriptor (rd_kafka_queue_io_event_enable): delivery reports,
 * statistics and logs wake it, no extra thread polls and nothing sleeps.
 *
 * Settling: every worker message is a batch that knows the spool seqs it settles and how many
 * of its events await their delivery report. When the last one is delivered the seqs are done
 * (ackwin), the spool cursor "kafka" moves durably to the contiguous mark and only then is
 * ingest told that mark as consumer VEM_CONSUMER_KAFKA. An event whose report says it failed
 * for good (timed out, refused), or that a producer replaced after a fatal error held without
 * a report, keeps its batch open and is produced again, after a backoff
 * doubling from 1 s to retry_max_s, in the order the reports came (per partition, the order it
 * was produced in); it is counted as failed and as retried. So the cursor never passes an input
 * with an undelivered event, and a restart replays from it (events carry deterministic ids, so
 * consumers drop what they already have).
 *
 * A broker outage stops neither intake nor another sink: when librdkafka's queue is full
 * (queue_messages, queue_kbytes), events wait in the sink's own FIFO and worker messages go to
 * the spill file SPOOL_DIR/spill.kafka (spill.h), taken back in order once the queue drains.
 *
 * Test knob: VEM_TEST_KAFKA_FATAL_AFTER=N in the environment makes the sink, once N events are
 * produced (once a run), renew its producer as after a fatal error without serving the purged
 * delivery reports, as if they came too late; for integration tests (tests/it_kafka.c, renew),
 * never set in service. The sink logs a warning at start when it is set.
 *
 * Metrics: vem_kafka_produced_total, vem_kafka_delivered_total, vem_kafka_failed_total,
 * vem_kafka_retried_total, vem_kafka_events_total{topic}, vem_kafka_in_flight,
 * vem_kafka_waiting (events in the sink's FIFO), vem_sink_up{sink="kafka"} (a broker is up),
 * vem_sink_lag_seconds{sink="kafka"} (receipt of the oldest input not yet delivered, to now),
 * vem_sink_spill_bytes{sink="kafka"}, vem_sink_spilled_total{sink="kafka"},
 * vem_sink_cursor_errors_total{sink="kafka"}, vem_stage_seconds{stage="kafka"}. */
#ifndef VEM_SINK_KAFKA_H
#define VEM_SINK_KAFKA_H

#include "kevents.h"
#include "metrics.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define VEM_SINK_KAFKA_ENDPOINT "inproc://vem-sink-kafka"

typedef struct {
    void *zctx;
    vem_metrics_t *metrics;
    const char *brokers;             /* bootstrap.servers */
    const char *topics[VEM_KTOPICS]; /* topic names; NULL or "": that kind is off */
    const char *compression;         /* compression.codec */
    int64_t linger_ms, batch_bytes, batch_messages, queue_messages, queue_kbytes;
    int64_t message_timeout_ms;
    const char *properties; /* "name=value" lines passed verbatim; may be NULL */
    const char *spool_dir;  /* where the "kafka" cursor and the spill file live */
    uint64_t spool_first;   /* first seq on disk at start: the cursor never waits below it */
    uint64_t spill_max_bytes;
    int queue_hwm;       /* worker messages queued before workers wait */
    int64_t retry_max_s; /* longest wait before an event that failed is produced again */
    atomic_uint_fast64_t beats;
    atomic_bool up;       /* a broker is up */
    atomic_bool stop_now; /* set by main when the drain time is up: give up delivering */
    atomic_bool drained;  /* set at the end: everything handed to the sink was delivered */
} vem_sink_kafka_args_t;

/* A librdkafka configuration of a's settings: bootstrap.servers, idempotence, acks=all,
 * compression, batching and queue limits, then a's properties verbatim. NULL with librdkafka's
 * reason (naming the property) in err when it refuses one. Caller owns the result (pass it to
 * rd_kafka_new or rd_kafka_conf_destroy). Used by the sink, --check-config and bench-kafka. */
rd_kafka_conf_t *vem_sink_kafka_conf(const vem_sink_kafka_args_t *a, char *err, size_t errlen);

/* Actor body: open the cursor and spill, bind, create the producer (the daemon starts when no
 * broker is reachable; librdkafka keeps trying), report ready, produce until $TERM; then
 * produce what is queued and wait for its reports until done or stop_now. */
void vem_sink_kafka_actor(void *pipe, void *args);

#endif
