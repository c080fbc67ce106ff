/* watchdog — decides whether vemd made progress since the last tick, for WATCHDOG=1.
 *
 * A loop that turns is not a pipeline that moves: a worker waiting on a stuck sink still turns
 * its wait loop. So a worker counts as alive only when it processed something since the last
 * tick or has nothing waiting (everything ingest handed it is processed). Ingest and the sinks
 * never block past their own deadlines, so for them a turning loop is enough.
 *
 * Owned by main; pure (no clock, no I/O): main samples the actors' atomics once a tick. */
#ifndef VEM_WATCHDOG_H
#define VEM_WATCHDOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vem_watchdog vem_watchdog_t;

/* What main read from the actors at this tick. */
typedef struct {
    uint64_t ingest_beats;      /* ingest's loop turns */
    const uint64_t *sink_beats; /* each sink's loop turns */
    size_t nsinks;
    const uint64_t *done;      /* per worker: inputs processed */
    const uint64_t *forwarded; /* per worker: inputs ingest handed to it */
    size_t nworkers;
} vem_watchdog_tick_t;

/* A watchdog for nworkers workers and nsinks sinks; the first tick compares with zeros. */
vem_watchdog_t *vem_watchdog_new(size_t nworkers, size_t nsinks);

/* Frees it; accepts NULL; sets *self_p to NULL. */
void vem_watchdog_destroy(vem_watchdog_t **self_p);

/* True when everything made progress since the previous call (see above); remembers now. */
bool vem_watchdog_progress(vem_watchdog_t *self, const vem_watchdog_tick_t *now);

#endif
