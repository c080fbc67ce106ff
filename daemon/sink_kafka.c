/* sink_kafka — records to events, produce, delivery reports, retries, cursor; see sink_kafka.h.
 *
 * Order: events leave in the order their worker messages came in. A message is taken (made
 * into events and produced) only when the sink's FIFO of waiting events and the spill are both
 * empty; otherwise it goes to the end of the spill. An event librdkafka cannot queue (queue
 * full) goes to the end of the FIFO, and so does every later one until the FIFO is empty
 * again. An event that failed for good goes to the FIFO too, after the failed ones there and
 * before those never produced (made after it), with a time before which it is not produced
 * again; the FIFO is served strictly from its head, so later events never overtake it
 * in the sink (librdkafka's idempotent producer keeps per-partition order after that). Only
 * events already handed to librdkafka after the failed one can arrive before its second copy.
 * When a fatal error makes the sink replace its producer, every event the old one held whose
 * report was not served before it was destroyed fails the same way, in the order the events
 * were made, after the failures already in the FIFO and before the events never produced.
 *
 * Thread: one actor; librdkafka's callbacks (delivery reports, errors, statistics, logs) all
 * run on it, inside rd_kafka_poll (log.queue and the main queue's event descriptor). Owns: its
 * PULL and ack PUSH sockets, the producer and its topic handles, the open batches with the
 * pages of their events (each a record with its value, key and id after it, lent to librdkafka,
 * the record as the message's opaque, and to the FIFO until the batch settles), spare pages,
 * the FIFO, a decode buffer, its ackwin, spill and spool cursor. */
#include "sink_kafka.h"

#include "ackwin.h"
#include "actor.h"
#include "clock.h"
#include "hj1239.h"
#include "ingest.h"
#include "log.h"
#include "records.h"
#include "sinkio.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_BACKOFF_MIN_MS 1000
#define S_POLL_MAX       100000 /* events served per rd_kafka_poll round */
#define S_CURSOR_MS      100    /* least time between two cursor moves while events flow */
#define S_PAGE_BYTES     65536  /* a page of events: some 80 sample events */
#define S_PAGES_KEPT     64     /* free pages kept for the next batches (4 MiB) */
#define S_RECV_BUDGET    256    /* worker messages taken per turn, so deliveries are served */
#define S_BATCHES_MAX    65536  /* worker messages kept until delivered and settled in order */

typedef struct {
    uint64_t seq;
    uint32_t n;
} s_run_t;

/* A batch's events (s_event_t), one after the other, lent to librdkafka (neither F_COPY nor
 * F_FREE) until the batch settles, which is after the last of its delivery reports. */
typedef struct s_page {
    struct s_page *next;
    size_t used, cap;
    char data[];
} s_page_t;

struct s_event;

/* One worker message: the seqs it settles, and its events not yet delivered. */
typedef struct s_batch {
    struct s_batch *prev, *next;
    s_run_t *runs;
    size_t nruns, cap;
    uint64_t outstanding; /* events produced or waiting, not yet delivered */
    bool sealed;          /* every event of the message is made */
    bool delivered;       /* sealed and every event delivered: settles once the ones before do */
    int64_t oldest_us;    /* receipt of its oldest input */
    s_page_t *pages;      /* its events; the first is being filled */
    struct s_event *events, *events_last; /* in its pages, in the order they were made */
} s_batch_t;

/* One event, in its batch's pages with its value, key and id after it, until the batch is
 * delivered. It is its message's opaque while librdkafka holds it (handed), so a report finds
 * it, and a renewal of the producer finds what the old one held without a report. */
typedef struct s_event {
    struct s_event *next; /* the batch's next event */
    s_batch_t *batch;
    const char *type; /* static (kevents.h) */
    size_t len;       /* of the value */
    uint8_t topic;    /* vem_ktopic_t */
    uint8_t key_len, id_len;
    bool handed; /* in librdkafka, its report not yet served */
    char data[]; /* the value, the key and NUL, the id and NUL */
} s_event_t;

/* events are laid one after the other in a page's data */
_Static_assert(offsetof(s_page_t, data) % alignof(s_event_t) == 0, "page data misaligned");

/* An event waiting in the sink: librdkafka's queue was full, or it failed and waits to be
 * produced again. The event is in its batch's pages, which stay until it is delivered. */
typedef struct s_wait {
    struct s_wait *next;
    s_event_t *ev;
    int64_t not_before; /* monotonic ms; 0: at once */
    bool retry;         /* failed before: counts as retried when produced */
} s_wait_t;

typedef struct {
    vem_sink_kafka_args_t *args;
    vem_sinkio_t io; /* inbox, spill, cursor */
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    rd_kafka_topic_t *rkt[VEM_KTOPICS];
    unsigned wanted; /* topics switched on */
    int efd[2];      /* librdkafka writes to [1] when its main queue gets events */
    vem_hj1239_frame_t *frame;
    s_batch_t *first, *last; /* live batches, oldest first */
    size_t nbatches;         /* of them */
    s_batch_t *cur;          /* the batch being made */
    s_page_t *spare;         /* free pages, at most S_PAGES_KEPT */
    unsigned nspare;
    s_wait_t *whead, *wtail; /* the FIFO */
    s_wait_t *wfailed;       /* its last failed event: failed ones come first, in one run */
    uint64_t nwaiting;
    int64_t backoff_ms;      /* the wait of this round of failures (s_backoff) */
    int64_t backoff_next_ms; /* monotonic ms when the next round starts; 0: none since a success */
    uint64_t start_mark;     /* the cursor at start: records at or below it were delivered before */
    int64_t moved_ms;        /* monotonic time of the last cursor move */
    bool fatal;              /* the producer hit a fatal error: make a new one */
    int64_t renew_at_ms;     /* without a producer: monotonic ms of the next attempt at one */
    uint64_t fatal_after;    /* tests: events to produce before a fatal error is faked; 0: none */
    bool reports_late;       /* tests: that error's renewal serves no purged report */
    /* metrics; counts per event are added up here and flushed per round (s_flush_counts) */
    uint64_t n_produced, n_delivered, n_events[VEM_KTOPICS];
    bool delivered_since_stats; /* a report of success came since the last statistics */
    vem_counter_t *produced, *delivered, *failed, *retried, *events[VEM_KTOPICS];
    vem_gauge_t *up, *lag, *in_flight, *waiting, *spilled;
    vem_histogram_t *latency;
} s_sink_t;

/* ---- configuration -------------------------------------------------------------------------- */

static int s_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                 size_t errlen)
{
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(err, errlen, "kafka property %s=%s refused by librdkafka: %s", name, value, why);
    return -1;
}

rd_kafka_conf_t *vem_sink_kafka_conf(const vem_sink_kafka_args_t *a, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char n[6][32];
    snprintf(n[0], sizeof n[0], "%lld", (long long)a->linger_ms);
    snprintf(n[1], sizeof n[1], "%lld", (long long)a->batch_bytes);
    snprintf(n[2], sizeof n[2], "%lld", (long long)a->batch_messages);
    snprintf(n[3], sizeof n[3], "%lld", (long long)a->queue_messages);
    snprintf(n[4], sizeof n[4], "%lld", (long long)a->queue_kbytes);
    snprintf(n[5], sizeof n[5], "%lld", (long long)a->message_timeout_ms);
    /* Delivery reports and statistics arrive through the main queue; one statistics event a
     * second tells whether a broker is up even when nothing is produced. */
    const char *fixed[][2] = {{"bootstrap.servers", a->brokers},
                              {"enable.idempotence", "true"},
                              {"acks", "all"},
                              {"compression.codec", a->compression},
                              {"linger.ms", n[0]},
                              {"batch.size", n[1]},
                              {"batch.num.messages", n[2]},
                              {"queue.buffering.max.messages", n[3]},
                              {"queue.buffering.max.kbytes", n[4]},
                              {"message.timeout.ms", n[5]},
                              {"statistics.interval.ms", "1000"},
                              {"log.queue", "true"},
                              {"client.id", "vemd"}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (fixed[i][1] && s_set(conf, fixed[i][0], fixed[i][1], err, errlen) != 0)
            goto refused;
    for (const char *p = a->properties; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[1024];
        if (len >= sizeof item) {
            snprintf(err, errlen, "kafka property too long: %.40s...", p);
            goto refused;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        char *eq = strchr(item, '=');
        if (!eq) {
            snprintf(err, errlen, "kafka property \"%s\" is not name=value", item);
            goto refused;
        }
        *eq = '\0';
        /* what the delivery guarantee and the sink's own loop rest on cannot be changed */
        static const char *const fixed_names[] = {
            "enable.idempotence",         "acks",      "request.required.acks",
            "delivery.report.only.error", "log.queue", "statistics.interval.ms"};
        for (size_t i = 0; i < sizeof fixed_names / sizeof fixed_names[0]; i++)
            if (strcmp(item, fixed_names[i]) == 0) {
                snprintf(err, errlen,
                         "kafka property %s is set by vemd (idempotent producer, acks=all, every "
                         "delivery reported) and cannot be changed",
                         item);
                goto refused;
            }
        if (s_set(conf, item, eq + 1, err, errlen) != 0)
            goto refused;
        p = end ? end + 1 : p + len;
    }
    return conf;
refused:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* ---- metrics and librdkafka's callbacks ------------------------------------------------------ */

static void s_register(s_sink_t *s, vem_metrics_t *m)
{
    s->produced = vem_metrics_counter(
        m, "vem_kafka_produced_total",
        "Events handed to librdkafka (queued, not yet delivered), retries included.", NULL);
    s->delivered = vem_metrics_counter(m, "vem_kafka_delivered_total",
                                       "Events the brokers acknowledged (delivery reports).", NULL);
    s->failed = vem_metrics_counter(
        m, "vem_kafka_failed_total",
        "Delivery reports of failure (timed out, refused): each event is produced again.", NULL);
    s->retried = vem_metrics_counter(m, "vem_kafka_retried_total",
                                     "Events produced again after a failed delivery.", NULL);
    for (unsigned t = 0; t < VEM_KTOPICS; t++) {
        const char *labels[] = {"topic", vem_kevents_topic_kind(t), NULL};
        s->events[t] =
            vem_metrics_counter(m, "vem_kafka_events_total",
                                "Events made from the workers' records, by topic.", labels);
    }
    s->in_flight = vem_metrics_gauge(m, "vem_kafka_in_flight",
                                     "Events in librdkafka awaiting their delivery report.", NULL);
    s->waiting = vem_metrics_gauge(
        m, "vem_kafka_waiting",
        "Events waiting in the sink (librdkafka's queue full, or a retry's backoff).", NULL);
    const char *sink[] = {"sink", "kafka", NULL};
    s->up = vem_metrics_gauge(m, "vem_sink_up",
                              "1 when the sink is connected and its last write succeeded.", sink);
    s->lag = vem_metrics_gauge(
        m, "vem_sink_lag_seconds",
        "Age of the oldest input waiting in the sink's open batch (0 when it is empty).", sink);
    s->spilled = vem_metrics_gauge(
        m, "vem_sink_spill_bytes",
        "Bytes a sink holds in its spill file because it cannot write them yet.", sink);
    s->io.spills = vem_metrics_counter(m, "vem_sink_spilled_total",
                                       "Worker messages a sink put in its spill file.", sink);
    s->io.cursor_errors = vem_metrics_counter(
        m, "vem_sink_cursor_errors_total",
        "Spool cursor moves that failed (retried; nothing acknowledged meanwhile).", sink);
    static const double bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 30};
    const char *labels[] = {"stage", "kafka", NULL};
    s->latency =
        vem_metrics_histogram(m, "vem_stage_seconds", "Time from receipt to the end of a stage.",
                              labels, bounds, sizeof bounds / sizeof bounds[0]);
}

/* Adds the counts kept since the last call to the metrics: one atomic add per counter and
 * round of the loop rather than three per event. */
static void s_flush_counts(s_sink_t *s)
{
    vem_counter_add(s->produced, s->n_produced);
    vem_counter_add(s->delivered, s->n_delivered);
    s->n_produced = s->n_delivered = 0;
    for (unsigned t = 0; t < VEM_KTOPICS; t++) {
        vem_counter_add(s->events[t], s->n_events[t]);
        s->n_events[t] = 0;
    }
}

static void s_set_up(s_sink_t *s, bool up)
{
    if (up != atomic_load(&s->args->up))
        vem_log(up ? VEM_LOG_NOTICE : VEM_LOG_ERR, "sink-kafka",
                up ? "a Kafka broker is up" : "no Kafka broker is up; events wait");
    atomic_store(&s->args->up, up);
    vem_gauge_set(s->up, up);
}

/* ---- event values ------------------------------------------------------------------------- */

/* Room for len bytes in b's pages, aligned for an s_event_t when len is a multiple of its
 * alignment. librdkafka copying every value (F_COPY) made a heap allocation of ~1 KiB per event
 * and its free after the report: with 5 small ones for the message and its headers, malloc and
 * free were a fifth of the sink's time. A page serves some 80 events and is reused. */
static void *s_room(s_sink_t *s, s_batch_t *b, size_t len)
{
    const size_t page_cap = S_PAGE_BYTES - sizeof(s_page_t);
    s_page_t *p = b->pages;
    if (!p || p->cap - p->used < len) {
        if (len <= page_cap && s->spare) {
            p = s->spare;
            s->spare = p->next;
            s->nspare--;
        } else {
            size_t cap = len > page_cap ? len : page_cap; /* a large value has a page of its own */
            p = malloc(sizeof *p + cap);
            if (!p)
                abort();
            p->cap = cap;
        }
        p->used = 0;
        p->next = b->pages;
        b->pages = p;
    }
    char *room = p->data + p->used;
    p->used += len;
    return room;
}

/* Event ev of the batch being made, copied into its pages and put last in its list. */
static s_event_t *s_event_new(s_sink_t *s, s_batch_t *b, const vem_kevent_t *ev)
{
    size_t key_len = strlen(ev->key), id_len = strlen(ev->id);
    size_t size = sizeof(s_event_t) + ev->value_len + key_len + 1 + id_len + 1;
    size = (size + alignof(s_event_t) - 1) / alignof(s_event_t) * alignof(s_event_t);
    s_event_t *e = s_room(s, b, size);
    e->next = NULL;
    e->batch = b;
    e->type = ev->type;
    e->len = ev->value_len;
    e->topic = (uint8_t)ev->topic;
    e->key_len = (uint8_t)key_len; /* below sizeof ev->key, and id_len below sizeof ev->id */
    e->id_len = (uint8_t)id_len;
    e->handed = false;
    memcpy(e->data, ev->value, ev->value_len);
    memcpy(e->data + e->len, ev->key, key_len + 1);
    memcpy(e->data + e->len + key_len + 1, ev->id, id_len + 1);
    if (b->events_last)
        b->events_last->next = e;
    else
        b->events = e;
    b->events_last = e;
    return e;
}

static const char *s_event_key(const s_event_t *e)
{
    return e->data + e->len;
}

static const char *s_event_id(const s_event_t *e)
{
    return e->data + e->len + e->key_len + 1;
}

/* Frees b's pages, keeping up to S_PAGES_KEPT of the standard size for later batches. */
static void s_pages_free(s_sink_t *s, s_batch_t *b)
{
    b->events = b->events_last = NULL;
    while (b->pages) {
        s_page_t *p = b->pages;
        b->pages = p->next;
        if (p->cap == S_PAGE_BYTES - sizeof(s_page_t) && s->nspare < S_PAGES_KEPT) {
            p->next = s->spare;
            s->spare = p;
            s->nspare++;
        } else {
            free(p);
        }
    }
}

/* The oldest batch, delivered whole: its seqs are done. */
static void s_batch_settle(s_sink_t *s, s_batch_t *b)
{
    for (size_t i = 0; i < b->nruns; i++)
        for (uint32_t k = 0; k < b->runs[i].n; k++)
            vem_ackwin_done(s->io.done, b->runs[i].seq + k);
    int64_t now = vem_now_us();
    if (now > b->oldest_us)
        vem_histogram_observe_ns(s->latency, (uint64_t)(now - b->oldest_us) * 1000);
    if (b->prev)
        b->prev->next = b->next;
    else
        s->first = b->next;
    if (b->next)
        b->next->prev = b->prev;
    else
        s->last = b->prev;
    s_pages_free(s, b);
    free(b->runs);
    free(b);
    s->nbatches--;
}

/* b is sealed and every event of it delivered. Batches settle in the order they were taken,
 * whatever order their events' partitions acknowledge them in: a verdict of the clock travels
 * in a later message than the input whose seq it bears, and the worker puts a checkpoint that
 * ended a trip in place once the next input's records are settled (worker.c, s_ckpt_settle),
 * which must then mean that the verdict's are too. */
static void s_batch_delivered(s_sink_t *s, s_batch_t *b)
{
    b->delivered = true;
    s_pages_free(s, b); /* no event of it needs its value any more */
    while (s->first && s->first->delivered)
        s_batch_settle(s, s->first);
}

/* How long a failed event waits before it is produced again: S_BACKOFF_MIN_MS after a
 * success, doubling up to retry_max_s with each round of failures that goes on without one. The
 * failures of one round (an outage fails every event in flight at once) wait alike. */
static int64_t s_backoff(s_sink_t *s, int64_t now)
{
    if (now >= s->backoff_next_ms) {
        if (s->backoff_next_ms)
            s->backoff_ms =
                vem_backoff_doubled(s->backoff_ms, S_BACKOFF_MIN_MS, s->args->retry_max_s * 1000);
        s->backoff_next_ms = now + s->backoff_ms;
    }
    return s->backoff_ms;
}

static void s_wait_push(s_sink_t *s, s_wait_t *w)
{
    w->next = NULL;
    if (s->wtail)
        s->wtail->next = w;
    else
        s->whead = w;
    s->wtail = w;
    s->nwaiting++;
}

/* Puts w in the FIFO at the link at (&s->whead or an entry's &next). */
static void s_wait_insert(s_sink_t *s, s_wait_t **at, s_wait_t *w)
{
    w->next = *at;
    *at = w;
    if (!w->next)
        s->wtail = w;
    s->nwaiting++;
}

/* e failed for good (a report said so, or its producer went away without reporting it): it
 * keeps its batch open, so the cursor waits, and is produced again after the backoff. Its FIFO
 * entry goes after the failed events already there and before the events never produced:
 * those were all made after e, which was handed to librdkafka before them (an event leaves
 * the FIFO only from its head), so at the end it would be overtaken by them. */
static void s_failed(s_sink_t *s, s_event_t *e, const char *why)
{
    vem_counter_add(s->failed, 1);
    e->handed = false;
    s_wait_t *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->ev = e;
    int64_t now = vem_mono_ms(), wait = s_backoff(s, now);
    w->not_before = now + wait;
    w->retry = true;
    vem_log(VEM_LOG_ERR, "sink-kafka", "event %s not delivered: %s; produced again in %lld ms",
            s_event_id(e), why, (long long)wait);
    s_wait_insert(s, s->wfailed ? &s->wfailed->next : &s->whead, w);
    s->wfailed = w;
}

static void s_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    s_sink_t *s = opaque;
    s_event_t *e = m->_private;
    if (m->err) {
        s_failed(s, e, rd_kafka_err2str(m->err));
        return;
    }
    e->handed = false;
    s->n_delivered++;
    s->delivered_since_stats = true;
    s->backoff_ms = S_BACKOFF_MIN_MS;
    s->backoff_next_ms = 0;
    if (!atomic_load(&s->args->up))
        s_set_up(s, true);
    s_batch_t *b = e->batch;
    if (--b->outstanding == 0 && b->sealed)
        s_batch_delivered(s, b); /* frees e */
}

static void s_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    s_sink_t *s = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        s_set_up(s, false);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        vem_log(VEM_LOG_ERR, "sink-kafka", "fatal producer error: %s; starting a new producer",
                why);
        s->fatal = true;
        return;
    }
    vem_log(VEM_LOG_WARNING, "sink-kafka", "%s: %s", rd_kafka_err2name(err), reason);
}

/* Statistics, once a second: up when any broker of the cluster (not a bootstrap entry) is
 * UP. A report of success since the last statistics already says so (and set it): then the
 * JSON, some kilobytes a broker and a partition, is not parsed. */
static int s_on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    s_sink_t *s = opaque;
    if (s->delivered_since_stats) {
        s->delivered_since_stats = false;
        return 0;
    }
    json_error_t jerr;
    json_t *st = json_loadb(json, len, 0, &jerr);
    bool up = false;
    const char *name;
    json_t *b;
    json_object_foreach(json_object_get(st, "brokers"), name, b)
    {
        const char *state = json_string_value(json_object_get(b, "state"));
        if (json_integer_value(json_object_get(b, "nodeid")) >= 0 && state &&
            strcmp(state, "UP") == 0)
            up = true;
    }
    json_decref(st);
    s_set_up(s, up);
    return 0; /* librdkafka frees json */
}

static void s_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    vem_log(level <= 2   ? VEM_LOG_ERR
            : level <= 4 ? VEM_LOG_WARNING
                         : VEM_LOG_INFO,
            "sink-kafka", "librdkafka %s: %s", fac, buf);
}

/* ---- producing ----------------------------------------------------------------------------- */

/* Hands one event to librdkafka; its value is lent (neither F_COPY nor F_FREE), and the event
 * is the message's opaque: both are in the batch's pages, which stay until the batch is
 * delivered, after the event's delivery report. */
static rd_kafka_resp_err_t s_produce(s_sink_t *s, s_event_t *e)
{
    rd_kafka_resp_err_t err = rd_kafka_producev(
        s->rk, RD_KAFKA_V_RKT(s->rkt[e->topic]), RD_KAFKA_V_MSGFLAGS(0),
        RD_KAFKA_V_KEY(s_event_key(e), e->key_len), RD_KAFKA_V_VALUE(e->data, e->len),
        RD_KAFKA_V_HEADER("event_type", e->type, -1),
        RD_KAFKA_V_HEADER("schema_version", VEM_KEVENTS_SCHEMA_VERSION_TXT, -1),
        RD_KAFKA_V_HEADER("event_id", s_event_id(e), e->id_len), RD_KAFKA_V_OPAQUE(e),
        RD_KAFKA_V_END);
    if (err)
        return err;
    e->handed = true;
    s->n_produced++;
    if (s->fatal_after && --s->fatal_after == 0) {
        vem_log(VEM_LOG_ERR, "sink-kafka",
                "fatal producer error: VEM_TEST_KAFKA_FATAL_AFTER; starting a new producer");
        s->fatal = s->reports_late = true;
    }
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* An event of the message being taken: produced at once when nothing waits, else queued. */
static void s_on_event(void *arg, vem_kevent_t *ev)
{
    s_sink_t *s = arg;
    s_batch_t *b = s->cur;
    b->outstanding++;
    s->n_events[ev->topic]++;
    s_event_t *e = s_event_new(s, b, ev);
    if (!s->whead) {
        rd_kafka_resp_err_t err = s_produce(s, e);
        if (!err)
            return;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            vem_log(VEM_LOG_ERR, "sink-kafka", "cannot produce event %s: %s; it waits", ev->id,
                    rd_kafka_err2str(err));
    }
    s_wait_t *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->ev = e;
    s_wait_push(s, w);
}

/* Produces waiting events from the head of the FIFO while librdkafka takes them. */
static void s_serve_waiting(s_sink_t *s)
{
    int64_t now = vem_mono_ms();
    while (s->whead && s->whead->not_before <= now && !s->fatal) {
        s_wait_t *w = s->whead;
        rd_kafka_resp_err_t err = s_produce(s, w->ev);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return;
        if (err) {
            vem_log(VEM_LOG_ERR, "sink-kafka", "cannot produce event %s: %s; trying again",
                    s_event_id(w->ev), rd_kafka_err2str(err));
            w->not_before = now + s_backoff(s, now);
            return;
        }
        if (w->retry)
            vem_counter_add(s->retried, 1);
        s->whead = w->next;
        if (!s->whead)
            s->wtail = NULL;
        if (w == s->wfailed)
            s->wfailed = NULL; /* it was the last failed one */
        s->nwaiting--;
        free(w);
    }
}

static void s_add_run(s_batch_t *b, uint64_t seq, uint32_t n)
{
    if (b->nruns && b->runs[b->nruns - 1].seq + b->runs[b->nruns - 1].n == seq) {
        b->runs[b->nruns - 1].n += n;
        return;
    }
    if (b->nruns == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->runs = realloc(b->runs, b->cap * sizeof *b->runs);
        if (!b->runs)
            abort();
    }
    b->runs[b->nruns++] = (s_run_t){seq, n};
}

/* Serves librdkafka's main queue: delivery reports, errors, statistics, logs. */
static void s_serve_rk(s_sink_t *s)
{
    char buf[256];
    while (read(s->efd[0], buf, sizeof buf) > 0)
        ;
    for (int i = 0; s->rk && i < S_POLL_MAX && rd_kafka_poll(s->rk, 0) > 0; i++)
        ;
    s_flush_counts(s);
}

/* Makes the events of one worker message and produces them. */
static void s_take(s_sink_t *s, const uint8_t *p, size_t len)
{
    vem_records_hdr_t hdr;
    if (!vem_records_parse(p, len, &hdr)) {
        vem_log(VEM_LOG_ERR, "sink-kafka", "malformed worker message of %zu bytes ignored", len);
        return;
    }
    s_batch_t *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    s->nbatches++;
    b->oldest_us = hdr.oldest_us;
    b->prev = s->last;
    if (s->last)
        s->last->next = b;
    else
        s->first = b;
    s->last = b;
    s->cur = b;
    vem_record_t rec;
    size_t off = 0;
    while (vem_records_next(p, len, &off, &rec)) {
        /* A verdict settles nothing: its seq is its input's, which that input's own record
         * settles (records.h), perhaps in an earlier message whose events are not all
         * delivered yet (a verdict of the clock). */
        if (rec.kind != VEM_RECORD_VIOLATION)
            s_add_run(b, rec.seq, rec.nseqs);
        /* Replayed after a restart but delivered before it: not produced twice. Verdicts always
         * go: one of the clock's (silence, a day's completeness) comes as a record of an
         * input already delivered, and a repeated one has the same event id. */
        if (rec.kind != VEM_RECORD_VIOLATION && rec.seq + rec.nseqs - 1 <= s->start_mark)
            continue;
        vem_kevents_of(&rec, s->frame, s->wanted, s_on_event, s);
    }
    s->cur = NULL;
    b->sealed = true;
    if (b->outstanding == 0)
        s_batch_delivered(s, b);
    /* Reports after every message, not only once the loop comes round: a backlog of queued
     * messages is otherwise produced whole before one report is served, so everything it holds
     * is in librdkafka at once and the heap grows by that much, then shrinks (page faults,
     * mprotect, munmap: 40% of the sink's time in bench-kafka). Served here, the memory of
     * delivered events is reused by the next message's. */
    s_serve_rk(s);
}

/* The producer can take a worker message now: nothing waits in the FIFO, it is sound, and the
 * batches it keeps are below S_BATCHES_MAX (the spill being empty is sinkio's part). Batches
 * delivered behind an older one that is not (a partition down while others are up) are kept,
 * without their pages, until it settles: that bound keeps their memory in hand however long
 * the partition stays down, and what comes meanwhile waits in the spill. */
static bool s_room_fn(void *arg)
{
    const s_sink_t *s = arg;
    return !s->whead && !s->fatal && s->nbatches < S_BATCHES_MAX;
}

static void s_take_fn(void *arg, const uint8_t *p, size_t len)
{
    s_take(arg, p, len);
}

/* ---- cursor -------------------------------------------------------------------------------- */

/* A move costs two syncs (the file and its directory): while events flow, once per
 * S_CURSOR_MS is enough (reports come by the thousand a second); at once when all is
 * delivered. */
static bool s_cursor_due(const s_sink_t *s)
{
    return vem_ackwin_mark(s->io.done) > s->io.committed &&
           (!s->first || vem_mono_ms() - s->moved_ms >= S_CURSOR_MS);
}

static void s_move_cursor(s_sink_t *s)
{
    if (vem_ackwin_mark(s->io.done) > s->io.committed)
        s->moved_ms = vem_mono_ms();
    vem_sinkio_move_cursor(&s->io);
}

static void s_update_gauges(s_sink_t *s)
{
    s_flush_counts(s);
    vem_gauge_set(s->in_flight, s->rk ? rd_kafka_outq_len(s->rk) : 0);
    vem_gauge_set(s->waiting, (int64_t)s->nwaiting);
    vem_gauge_set(s->lag, s->first ? (vem_now_us() - s->first->oldest_us) / 1000000 : 0);
    vem_gauge_set(s->spilled, (int64_t)vem_spill_bytes(s->io.spill));
}

/* ---- the producer -------------------------------------------------------------------------- */

static void s_producer_destroy(s_sink_t *s)
{
    for (unsigned t = 0; t < VEM_KTOPICS; t++)
        if (s->rkt[t]) {
            rd_kafka_topic_destroy(s->rkt[t]);
            s->rkt[t] = NULL;
        }
    if (s->mainq) {
        rd_kafka_queue_io_event_enable(s->mainq, -1, NULL, 0);
        rd_kafka_queue_destroy(s->mainq);
        s->mainq = NULL;
    }
    if (s->rk) {
        rd_kafka_destroy(s->rk);
        s->rk = NULL;
    }
}

static int s_producer_new(s_sink_t *s, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = vem_sink_kafka_conf(s->args, err, errlen);
    if (!conf)
        return -1;
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_dr_msg_cb(conf, s_on_delivery);
    rd_kafka_conf_set_error_cb(conf, s_on_error);
    rd_kafka_conf_set_stats_cb(conf, s_on_stats);
    rd_kafka_conf_set_log_cb(conf, s_on_log);
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_set_log_queue(s->rk, NULL); /* logs come through the main queue, to our thread */
    s->mainq = rd_kafka_queue_get_main(s->rk);
    rd_kafka_queue_io_event_enable(s->mainq, s->efd[1], "1", 1);
    for (unsigned t = 0; t < VEM_KTOPICS; t++) {
        if (!(s->wanted & 1u << t))
            continue;
        s->rkt[t] = rd_kafka_topic_new(s->rk, s->args->topics[t], NULL);
        if (!s->rkt[t]) {
            snprintf(err, errlen, "kafka topic %s: %s", s->args->topics[t],
                     rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
    }
    s->fatal = false;
    return 0;
}

/* The old producer is gone: every event it held whose report was not served is failed as a
 * report of failure would fail it. They go in the order they were made, after the failures
 * already waiting and before the events never produced, which were all made after them. */
static void s_fail_unreported(s_sink_t *s)
{
    uint64_t n = 0;
    for (s_batch_t *b = s->first; b; b = b->next)
        for (s_event_t *e = b->events; e; e = e->next) /* none when b is delivered */
            if (e->handed) {
                s_failed(s, e, "its producer was replaced before reporting it");
                n++;
            }
    if (n)
        vem_log(VEM_LOG_WARNING, "sink-kafka",
                "%llu events the old producer held without a report are produced again",
                (unsigned long long)n);
}

/* After a fatal error (idempotence state lost): every event librdkafka holds is purged (its
 * report, a failure, puts it in the FIFO for a retry); what has no report once the old
 * producer is destroyed is failed alike (s_fail_unreported); then a new producer takes over.
 * When none can be made (a certificate being replaced, no file descriptors), the sink has no
 * producer and tries again at most once per backoff; intake and the other sinks go on. */
static void s_producer_renew(s_sink_t *s)
{
    int64_t now = vem_mono_ms();
    if (!s->rk && now < s->renew_at_ms)
        return;
    if (s->rk) {
        rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        /* the purged reports come at once; bounded all the same (s_test_knobs: none served) */
        if (!s->reports_late) {
            rd_kafka_poll(s->rk, 0);
            for (int i = 0; i < 100 && rd_kafka_outq_len(s->rk) > 0; i++)
                rd_kafka_poll(s->rk, 10);
        }
        s->reports_late = false;
        s_producer_destroy(s);
        s_fail_unreported(s);
    }
    char err[512];
    if (s_producer_new(s, err, sizeof err) != 0) {
        s_producer_destroy(s); /* what was made of it */
        s->fatal = true;
        s->renew_at_ms = now + s_backoff(s, now);
        vem_log(VEM_LOG_ERR, "sink-kafka", "%s; a new producer is tried again in %lld ms", err,
                (long long)(s->renew_at_ms - now));
    }
}

static void s_teardown(s_sink_t *s)
{
    s_producer_destroy(s);
    while (s->whead) {
        s_wait_t *w = s->whead;
        s->whead = w->next;
        free(w);
    }
    while (s->first) {
        s_batch_t *b = s->first;
        s->first = b->next;
        s_pages_free(s, b);
        free(b->runs);
        free(b);
    }
    while (s->spare) {
        s_page_t *p = s->spare;
        s->spare = p->next;
        free(p);
    }
    for (int i = 0; i < 2; i++)
        if (s->efd[i] >= 0)
            close(s->efd[i]);
    free(s->frame);
    vem_sinkio_close(&s->io);
}

/* Test knobs from the environment, for integration tests to reach what no broker can be made
 * to do. VEM_TEST_KAFKA_FATAL_AFTER=N: once N events are produced, the sink takes the path of a
 * fatal producer error (s_on_error), once a run, and the renewal does not serve the reports of
 * the events it purges, as if they came after its bounded wait. (rd_kafka_test_fatal_error
 * would not do: librdkafka then purges its queue itself, and 2.0.2 reported every purged event
 * before the renewal in the cases tried, events held by linger.ms and brokers down.) */
static void s_test_knobs(s_sink_t *s)
{
    const char *v = getenv("VEM_TEST_KAFKA_FATAL_AFTER");
    if (!v || !*v)
        return;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || n == 0) {
        vem_log(VEM_LOG_WARNING, "sink-kafka", "VEM_TEST_KAFKA_FATAL_AFTER=%s ignored: not a count",
                v);
        return;
    }
    s->fatal_after = n;
    vem_log(VEM_LOG_WARNING, "sink-kafka",
            "test knob VEM_TEST_KAFKA_FATAL_AFTER: a fatal producer error after %llu events", n);
}

/* True when everything taken has been delivered and nothing more waits. */
static bool s_idle(const s_sink_t *s)
{
    return !s->first && !s->whead && vem_spill_count(s->io.spill) == 0 && !s->io.holding;
}

void vem_sink_kafka_actor(void *pipe, void *args_)
{
    vem_sink_kafka_args_t *a = args_;
    s_sink_t s = {.args = a, .backoff_ms = S_BACKOFF_MIN_MS, .efd = {-1, -1}};
    char err[512];
    for (unsigned t = 0; t < VEM_KTOPICS; t++)
        if (a->topics[t] && *a->topics[t])
            s.wanted |= 1u << t;
    vem_sinkio_args_t io = {.zctx = a->zctx,
                            .log = "sink-kafka",
                            .fns = {s_room_fn, s_take_fn, &s},
                            .consumer = VEM_CONSUMER_KAFKA,
                            .name = "kafka",
                            .spool_dir = a->spool_dir,
                            .spool_first = a->spool_first,
                            .spill_max_bytes = a->spill_max_bytes,
                            .endpoint = VEM_SINK_KAFKA_ENDPOINT,
                            .queue_hwm = a->queue_hwm};
    if (vem_sinkio_open(&s.io, &io, err, sizeof err) != 0) {
        s_teardown(&s);
        vem_actor_ready(pipe, err);
        return;
    }
    s.start_mark = s.io.committed;
    s_test_knobs(&s);
    s.frame = malloc(sizeof *s.frame);
    if (!s.frame)
        abort();
    if (pipe2(s.efd, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, sizeof err, "kafka sink: pipe: %s", strerror(errno));
        s_teardown(&s);
        vem_actor_ready(pipe, err);
        return;
    }
    s_register(&s, a->metrics);
    s_set_up(&s, false);
    if (s_producer_new(&s, err, sizeof err) != 0) {
        s_teardown(&s);
        vem_actor_ready(pipe, err);
        return;
    }
    vem_actor_ready(pipe, NULL);

    for (;;) {
        atomic_fetch_add_explicit(&a->beats, 1, memory_order_relaxed);
        s_serve_rk(&s);
        if (s.fatal)
            s_producer_renew(&s);
        s_serve_waiting(&s);
        vem_sinkio_unspill(&s.io);
        if (s.io.committed > s.io.acked || s_cursor_due(&s))
            s_move_cursor(&s);
        s_update_gauges(&s);
        long timeout = 1000;
        if (vem_ackwin_mark(s.io.done) > s.io.committed) /* a move waits for S_CURSOR_MS */
            timeout = S_CURSOR_MS;
        if (s.whead && !s.fatal) {
            int64_t wait = s.whead->not_before - vem_mono_ms();
            /* a full queue frees up as reports come, which wake us; a backoff ends by time */
            if (s.whead->not_before && wait < timeout)
                timeout = wait < 0 ? 0 : (long)wait;
        }
        zmq_pollitem_t items[3] = {{pipe, 0, ZMQ_POLLIN, 0},
                                   {s.io.pull, 0, s.io.holding ? 0 : ZMQ_POLLIN, 0},
                                   {NULL, s.efd[0], ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 3, timeout) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if ((items[0].revents & ZMQ_POLLIN) && vem_actor_should_stop(pipe))
            break;
        if (items[2].revents & ZMQ_POLLIN)
            s_serve_rk(&s);
        if ((items[1].revents & ZMQ_POLLIN) || s.io.holding)
            vem_sinkio_read(&s.io, S_RECV_BUDGET);
    }
    /* Drain: the workers stopped before us, so what is queued and spilled is all there is.
     * Produce it and wait for its reports while main's drain timeout allows; what is not
     * delivered is replayed from the spool at the next start. */
    while (!atomic_load(&a->stop_now)) {
        s_serve_rk(&s);
        if (s.fatal)
            s_producer_renew(&s);
        s_serve_waiting(&s);
        vem_sinkio_unspill(&s.io);
        vem_sinkio_read(&s.io, S_RECV_BUDGET);
        if (s_idle(&s))
            break;
        zmq_pollitem_t item = {NULL, s.efd[0], ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 100);
    }
    if (vem_sinkio_behind(&s.io))
        s_move_cursor(&s);
    atomic_store(&a->drained, s_idle(&s));
    if (!s_idle(&s))
        vem_log(VEM_LOG_WARNING, "sink-kafka",
                "stopping with events undelivered; the spool replays them at the next start");
    if (s.rk)
        rd_kafka_purge(s.rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                                 RD_KAFKA_PURGE_F_NON_BLOCKING);
    s_teardown(&s);
}
