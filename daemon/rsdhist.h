/* rsdhist — the roadside history the rsd.* chains look back on, loaded from PostgreSQL.
 *
 * rsd.* chains span rsd_cycle_months natural months per plate. The workers' checkpoints carry
 * the chains across restarts, but a vehicle without checkpoint state (a fresh install over
 * back-filled readings, a lost or refused checkpoint, a change of the worker count) would
 * start with an empty chain. So at start vemd loads, compactly, what the chains need from
 * rsd_readings: per plate, readings the station marked valid within the last cycle_months + 1
 * months and a day (the cycle counts Beijing dates; see rsdhist.c), and of those only the newest
 * VEM_RSDHIST_PER_POLLUTANT that report each pollutant (what a chain holds: its newest
 * VEM_RULES_CHAIN_HELD valid readings, rules_rsd.c), at most max_rows in all
 * (rules.rsd_history_readings; past it whole plates are left out, in plate order, and the load says
 * so: logged and counted). The workers seed them into the vehicles' rule state (vem_rules_history);
 * the validity window and limits are applied there, with the running configuration, exactly as for
 * live readings.
 *
 * The query runs on a detached thread (a slow database must not hold main or a worker); its
 * result comes back as a pointer written to a pipe, as the registry's and completeness's do.
 * Ownership: the result belongs to whoever reads the pointer; main hands each worker its part.
 *
 * A state made later has no history: a vehicle first seen after the start (or after its state
 * was let go idle, its chains ended compliant), a plate the start load left out. Its chains
 * would miss the stored readings around a late one, and a late exceedance could then chain
 * with a newer one across a compliant reading the state never saw: a false violation. So the
 * worker loads the state's history itself, with its first roadside reading, before judging it
 * (vem_rsdhist_load_plate): one VIN or plate by its index, on the worker's own connection,
 * bounded in time (a slow or absent database costs a worker a few seconds at most, then no
 * loads for a while, after which the states that judged without theirs load it), and only
 * readings received before that reading: those received later
 * are still on their way to the worker in spool order (a backlog's rest, what a catch-up after
 * a restart has yet to judge), and will be judged, with their verdicts, when they come. */
#ifndef VEM_RSDHIST_H
#define VEM_RSDHIST_H

#include "rules.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The help of vem_rsd_history_readings_total, which main and the workers add to. */
#define VEM_RSDHIST_READINGS_HELP                                                                  \
    "Stored roadside readings loaded to seed the rsd.* chains (at start, and for rule states "     \
    "made later)."

/* Readings per plate and pollutant loaded: what a chain holds (VEM_RULES_CHAIN_HELD, which
 * rules_int.h, not for this module, defines). */
#define VEM_RSDHIST_PER_POLLUTANT 64

/* Loaded readings, grouped by plate and colour, in time order within a group. */
typedef struct {
    size_t n;
    vem_rsd_reading_t *r;
    char (*vin)[18]; /* r[i]'s VIN as stored (the station's, else the registry's), or "" */
    bool truncated;  /* more rows were there than max_rows */
} vem_rsdhist_t;

/* Starts a detached thread that loads the history (cycle_months, at most max_rows readings)
 * and writes the vem_rsdhist_t pointer (NULL after an error, logged) to fd. -1 when the thread
 * cannot start. */
int vem_rsdhist_start(const char *conninfo, unsigned cycle_months, size_t max_rows, int fd);

/* What a state's first roadside reading asks for: the stored readings ingest routed to its
 * state, received in [since_us, before_us). A state held by VIN: those rsd_readings stores
 * under that VIN (the station's VIN, else the registry's), and for a registered VIN those of
 * its plate in its colour (or_blank: or none), which ingest routes to it whatever VIN the
 * station read; one held by plate (vin ""): the plate's in its colour stored without a VIN. */
typedef struct {
    char vin[18];
    char plate[16]; /* a VIN's: its registry plate, or "" */
    char color[16];
    bool or_blank;
    int64_t since_us, before_us;
} vem_rsdhist_ask_t;

/* The history of one ask (cycle_months), by plate, colour and time, on a connection of
 * vem_pgload_connect_short; NULL with the reason in err after an error (the caller drops the
 * connection). */
vem_rsdhist_t *vem_rsdhist_load_plate(PGconn *conn, unsigned cycle_months,
                                      const vem_rsdhist_ask_t *ask, char *err, size_t errlen);

/* A new empty result with room for cap readings (main's per-worker parts). */
vem_rsdhist_t *vem_rsdhist_new(size_t cap);

/* Frees the result; accepts NULL. */
void vem_rsdhist_free(vem_rsdhist_t *h);

#endif
