/* registry — the vehicle registry (table `vehicles`) as an immutable in-memory snapshot.
 *
 * Main loads a snapshot from PostgreSQL at start and on SIGHUP and hands one reference to each
 * worker over its pipe; a worker swaps its snapshot between inputs and releases the old one.
 * The last release frees it. A snapshot is never changed after loading, so workers read it
 * without locks. Rules (per-vehicle limits need the engine's reference torque, rated power and
 * WHTC work) and the enforcement data (plate, region) read it by VIN; ingest routes roadside
 * readings by plate through it. */
#ifndef VEM_REGISTRY_H
#define VEM_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

typedef struct vem_registry vem_registry_t;

typedef struct {
    char vin[18];
    char plate[16];
    char plate_color[16];
    char fuel[12];
    char region_code[8];
    double ref_torque_nm, rated_power_kw, whtc_work_kwh; /* 0 when not known */
} vem_vehicle_t;

/* Loads every vehicle over a new connection to conninfo. NULL with the reason in err. */
vem_registry_t *vem_registry_load(const char *conninfo, char *err, size_t errlen);

/* An empty snapshot (when PostgreSQL is not used or not reachable at start). */
vem_registry_t *vem_registry_empty(void);

/* A snapshot of the n vehicles v[0 .. n) (a VIN given twice: the last one), as a load from
 * PostgreSQL would make it (the registry cache, regcache.h). */
vem_registry_t *vem_registry_from(const vem_vehicle_t *v, size_t n);

/* The vehicles of a snapshot, one by one in no order: *pos 0 first; NULL after the last. */
const vem_vehicle_t *vem_registry_next(const vem_registry_t *self, size_t *pos);

/* Adds references (one per worker about to receive it). */
void vem_registry_retain(vem_registry_t *self, unsigned n);

/* Drops one reference; the last frees the snapshot. Accepts NULL. */
void vem_registry_release(vem_registry_t *self);

/* The vehicle with this VIN (17 bytes, not terminated), or NULL. */
const vem_vehicle_t *vem_registry_find(const vem_registry_t *self, const char *vin);

/* The one vehicle with this plate and colour (NUL-terminated; colour "" for the plate alone),
 * or NULL when none or more than one match: an ambiguous plate is no vehicle's. */
const vem_vehicle_t *vem_registry_find_plate(const vem_registry_t *self, const char *plate,
                                             const char *color);

/* Vehicles in the snapshot. */
size_t vem_registry_size(const vem_registry_t *self);

#endif
