/* rsdhist — the roadside history the rsd.* chains look back on, loaded from PostgreSQL.
 *
 * rsd.* chains span rsd_cycle_months natural months per plate. The workers' checkpoints carry
 * the chains across restarts, but a vehicle without checkpoint state (a fresh install over
 * back-filled readings, a lost or refused checkpoint, a change of the worker count) would
 * start with an empty chain. So at start vemd loads, compactly, what the chains need from
 * rsd_readings: per plate, readings the station marked valid within the last cycle_months + 1
 * months, and of those only the newest VEM_RSDHIST_PER_POLLUTANT that report each pollutant
 * (what a chain holds: its newest VEM_RULES_CHAIN_HELD valid readings, rules_rsd.c), at most
 * max_rows in all (rules.rsd_history_readings;
 * past it whole plates are left out, in plate order, and the load says so: logged and
 * counted). The workers seed them into the vehicles' rule state
 * (vem_rules_history); the validity window and limits are applied there, with the running
 * configuration, exactly as for live readings.
 *
 * A state made later has no history: a vehicle first seen after the start, a state let go when
 * idle (its chains ended compliant) and made again, a plate the load left out. Its chains would
 * miss the stored readings around a late one, and a late exceedance could then chain with a
 * newer one across a compliant reading the state forgot: a false violation. So the first
 * roadside reading such a state takes asks for its plate's history (vem_rsdhist_want), and the
 * state holds its readings, unjudged, until the history comes (worker.c). Main loads what was
 * asked, one load at a time (the asks of a busy second in one query), with the same query
 * limited to the asks' plates and to readings received before the asking one (what came later
 * is still on its way to the worker, in spool order), and hands each worker the readings of its
 * asks, to the state that asked, even none: then the held readings are judged.
 *
 * The query runs on a detached thread (a slow database must not hold main or a worker); its
 * result comes back as a pointer written to a pipe, as the registry's and completeness's do.
 * Ownership: the result belongs to whoever reads the pointer; main hands each worker its part. */
#ifndef VEM_RSDHIST_H
#define VEM_RSDHIST_H

#include "rules.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Readings per plate and pollutant loaded: what a chain holds (VEM_RULES_CHAIN_HELD, which
 * rules_int.h, not for this module, defines). */
#define VEM_RSDHIST_PER_POLLUTANT 64

/* Loaded readings, grouped by plate and colour, in time order within a group. */
typedef struct {
    size_t n;
    vem_rsd_reading_t *r;
    bool truncated; /* more rows were there than max_rows */
    /* a load of the plates workers asked for (vem_rsdhist_start_asks); 0 and NULL at start */
    size_t plates;     /* asks it answers */
    uint64_t gen;      /* which load (vem_rsdhist_wants_take) */
    int64_t *received; /* per reading: its receipt time (epoch us) */
    char (*vin)[18];   /* per reading in a worker's part: the state it goes to ("": by plate) */
} vem_rsdhist_t;

/* Starts a detached thread that loads the history (cycle_months, at most max_rows readings)
 * and writes the vem_rsdhist_t pointer (NULL after an error, logged) to fd. -1 when the thread
 * cannot start. */
int vem_rsdhist_start(const char *conninfo, unsigned cycle_months, size_t max_rows, int fd);

/* A worker's rule state asking for the history of its plate. */
typedef struct {
    unsigned worker;
    char vin[18];      /* the state's VIN, "" for a state held by plate */
    char plate[16];    /* the readings it takes: this plate, ... */
    char color[16];    /* ... this colour ... */
    bool or_blank;     /* ... or none (a registered plate: ingest routes both to its VIN) */
    int64_t before_us; /* readings received before it: those received later are still to come
                        * to the worker in spool order (its own reading and a backlog's rest) */
} vem_rsdhist_ask_t;

/* The asks main has not loaded yet: a bounded set (one state's ask is there once), shared by
 * the workers (which add) and main (which takes), behind a lock. */
typedef struct vem_rsdhist_wants vem_rsdhist_wants_t;

/* Room for cap asks. */
vem_rsdhist_wants_t *vem_rsdhist_wants_new(size_t cap);

/* Frees the set; accepts NULL. */
void vem_rsdhist_wants_free(vem_rsdhist_wants_t *w);

/* Adds an ask (the same state's again: the later bound); *gen is the load that will answer it.
 * False when the set is full: the caller judges without the history, and counts it. */
bool vem_rsdhist_want(vem_rsdhist_wants_t *w, const vem_rsdhist_ask_t *ask, uint64_t *gen);

/* Takes every ask (an array sorted by plate, NULL when none), their count in *n and the load's
 * number in *gen; the set is empty afterwards. */
vem_rsdhist_ask_t *vem_rsdhist_wants_take(vem_rsdhist_wants_t *w, size_t *n, uint64_t *gen);

/* As vem_rsdhist_start, for the readings the n asks take (each before its bound): the result
 * has plates n, gen and received set. */
int vem_rsdhist_start_asks(const char *conninfo, unsigned cycle_months, size_t max_rows,
                           const vem_rsdhist_ask_t *asks, size_t n, uint64_t gen, int fd);

/* True when the ask takes reading k of h (a load of asks: received set). */
bool vem_rsdhist_takes(const vem_rsdhist_ask_t *ask, const vem_rsdhist_t *h, size_t k);

/* A new empty result with room for cap readings (main's per-worker parts; with_vin: with room
 * for the states they go to). */
vem_rsdhist_t *vem_rsdhist_new(size_t cap, bool with_vin);

/* Frees the result; accepts NULL. */
void vem_rsdhist_free(vem_rsdhist_t *h);

#endif
