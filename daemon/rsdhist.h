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
 * roadside reading such a state judges asks for its plate's history (vem_rsdhist_want); main
 * loads the plates asked for, at most one load at a time, in batches, with the same query
 * limited to them, and hands the readings to the workers as at start. The workers judge again
 * the chains it changes (vem_rules_history), as for a start load that came late.
 *
 * The query runs on a detached thread (a slow database must not hold main or a worker); its
 * result comes back as a pointer written to a pipe, as the registry's and completeness's do.
 * Ownership: the result belongs to whoever reads the pointer; main hands each worker its part. */
#ifndef VEM_RSDHIST_H
#define VEM_RSDHIST_H

#include "rules.h"

#include <stdbool.h>
#include <stddef.h>

/* Readings per plate and pollutant loaded: what a chain holds (VEM_RULES_CHAIN_HELD, which
 * rules_int.h, not for this module, defines). */
#define VEM_RSDHIST_PER_POLLUTANT 64

/* Loaded readings, grouped by plate and colour, in time order within a group. */
typedef struct {
    size_t n;
    vem_rsd_reading_t *r;
    bool truncated; /* more rows were there than max_rows */
    size_t plates;  /* plates asked for (vem_rsdhist_start_plates); 0: the load at start */
} vem_rsdhist_t;

/* Starts a detached thread that loads the history (cycle_months, at most max_rows readings)
 * and writes the vem_rsdhist_t pointer (NULL after an error, logged) to fd. -1 when the thread
 * cannot start. */
int vem_rsdhist_start(const char *conninfo, unsigned cycle_months, size_t max_rows, int fd);

/* The plates and colours workers asked the history of and main has not loaded yet: a bounded
 * set (a plate asked twice is there once), shared by the workers (which add) and main (which
 * takes), behind a lock. */
typedef struct vem_rsdhist_wants vem_rsdhist_wants_t;

/* Room for cap plates. */
vem_rsdhist_wants_t *vem_rsdhist_wants_new(size_t cap);

/* Frees the set; accepts NULL. */
void vem_rsdhist_wants_free(vem_rsdhist_wants_t *w);

/* Asks for the history of a plate and colour; false when the set is full (the caller counts it
 * and asks again with the plate's next reading). */
bool vem_rsdhist_want(vem_rsdhist_wants_t *w, const char *plate, const char *color);

/* Takes every plate asked for, as a JSON array of [plate, colour] pairs (NULL when none) and
 * their count in *n; the set is empty afterwards. */
char *vem_rsdhist_wants_take(vem_rsdhist_wants_t *w, size_t *n);

/* As vem_rsdhist_start, for the plates of wants (vem_rsdhist_wants_take's JSON, n of them;
 * the job owns it): the result's plates is n. */
int vem_rsdhist_start_plates(const char *conninfo, unsigned cycle_months, size_t max_rows,
                             char *wants, size_t n, int fd);

/* A new empty result with room for cap readings (main's per-worker parts). */
vem_rsdhist_t *vem_rsdhist_new(size_t cap);

/* Frees the result; accepts NULL. */
void vem_rsdhist_free(vem_rsdhist_t *h);

#endif
