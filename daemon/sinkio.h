/* sinkio — what every sink shares with the pipeline, whatever it writes to.
 *
 * A sink reads the workers' record messages from its PULL socket whatever happens downstream.
 * A message it can take now is taken; otherwise it goes to the end of the sink's spill file
 * (spill.h), and while the spill holds anything every new message goes there too, so the sink
 * takes messages in the order they came. When the sink has room again it takes them from the
 * front of the spill. Only a full spill stops the reading: the message that found it full is
 * held, the socket is not read, and the workers wait.
 *
 * The sink settles the spool seqs of what it wrote in its ackwin; vem_sinkio_move_cursor makes
 * the ackwin's contiguous mark durable in the sink's spool cursor and tells ingest, which trims
 * the spool below the lowest cursor. A lost acknowledgement is made good by the next.
 *
 * Thread: the sink's actor. The struct is part of the sink's state; the sink registers the two
 * counters. */
#ifndef VEM_SINKIO_H
#define VEM_SINKIO_H

#include "ackwin.h"
#include "metrics.h"
#include "spill.h"
#include "spool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* What the sink does with messages. */
typedef struct {
    bool (*room)(void *arg); /* a message may be taken now */
    void (*take)(void *arg, const uint8_t *p, size_t len);
    void *arg;
} vem_sinkio_fns_t;

typedef struct {
    const char *log; /* the sink's name in log lines ("sink-pg") */
    vem_sinkio_fns_t fns;
    uint32_t consumer; /* VEM_CONSUMER_* of its acknowledgements */
    void *pull, *acks;
    vem_spool_cursor_t *cursor;
    vem_ackwin_t *done; /* spool seqs settled */
    uint64_t committed; /* the cursor is durable here */
    uint64_t acked;     /* ingest was told this mark */
    vem_spill_t *spill;
    uint8_t *spill_buf;
    size_t spill_cap;
    zmq_msg_t held; /* a message neither the sink nor the full spill could take */
    bool holding;
    vem_counter_t *spills;        /* messages spilled */
    vem_counter_t *cursor_errors; /* cursor moves that failed */
} vem_sinkio_t;

typedef struct {
    void *zctx;
    const char *log;
    vem_sinkio_fns_t fns;
    uint32_t consumer;
    const char *name; /* of the spool cursor, and of the spill file spill.NAME */
    const char *spool_dir;
    uint64_t spool_first; /* first seq on disk at start: the cursor never waits below it */
    uint64_t spill_max_bytes;
    const char *endpoint; /* the PULL socket binds here */
    int queue_hwm;
} vem_sinkio_args_t;

/* Opens the cursor (starting after records the spool no longer has), the ackwin at its mark,
 * the emptied spill, the PULL socket and the acknowledgement socket to ingest: 0, or -1 with
 * the reason in err (vem_sinkio_close then frees what was opened). io must be zeroed. */
int vem_sinkio_open(vem_sinkio_t *io, const vem_sinkio_args_t *a, char *err, size_t errlen);

/* Closes and frees everything; the spill file is removed (the spool replays above the cursor). */
void vem_sinkio_close(vem_sinkio_t *io);

/* Takes or spills up to budget waiting messages, the held one first; stops at a full spill. */
void vem_sinkio_read(vem_sinkio_t *io, unsigned budget);

/* Takes messages from the front of the spill while the sink has room. */
void vem_sinkio_unspill(vem_sinkio_t *io);

/* Moves the cursor durably to the ackwin's mark, then acknowledges: 1 moved, 0 nothing to
 * move, -1 the move failed (counted, logged; nothing acknowledged, tried again next time). */
int vem_sinkio_move_cursor(vem_sinkio_t *io);

/* Something settled is not yet durable in the cursor, or not yet told to ingest. */
bool vem_sinkio_behind(const vem_sinkio_t *io);

#endif
