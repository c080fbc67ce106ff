/* plates — a worker's rule states of vehicles known only by their plate.
 *
 * A roadside reading whose plate the registry does not map to a VIN is routed by plate
 * (stations.h), and the worker keeps that vehicle's rule state here, beside the session table
 * (keyed by VIN) that holds every other vehicle's. A state is keyed by the plate and its
 * colour (FIELDS.md plate_color): two vehicles that share a plate, told apart by its colour,
 * must not share a roadside chain. The table is bounded: past max plates a new
 * plate gets no slot (its readings are stored all the same, but not judged; the worker counts
 * them), since plates come from the network. The owner's sweep (vem_plates_sweep) removes the
 * plates whose state it lets go, so the bound holds the vehicles that still matter.
 *
 * Ownership: one table per worker thread; the table owns the states in its slots and frees
 * them with the function given at creation. */
#ifndef VEM_PLATES_H
#define VEM_PLATES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct vem_plates vem_plates_t;

/* New table holding at most max plates; state_free frees a slot's state (NULL: nothing). */
vem_plates_t *vem_plates_new(size_t max, void (*state_free)(void *state));

/* Frees every state and the table; accepts NULL; sets *self_p to NULL. */
void vem_plates_destroy(vem_plates_t **self_p);

/* The slot of plate in color (NUL-terminated, at most 15 bytes each; color may be "" or NULL:
 * not known), created empty (NULL) when create is true and there is room; NULL when absent
 * (or the table is full). */
void **vem_plates_slot(vem_plates_t *self, const char *plate, const char *color, bool create);

/* Plates in the table. */
size_t vem_plates_count(const vem_plates_t *self);

/* Calls fn for every plate and colour with its slot (order unspecified). */
void vem_plates_each(vem_plates_t *self,
                     void (*fn)(void *arg, const char *plate, const char *color, void **slot),
                     void *arg);

/* Removes every plate whose slot is empty or for which gone(arg, state) is true, freeing that
 * state; returns how many went. The table is rebuilt when some went (no tombstones). */
size_t vem_plates_sweep(vem_plates_t *self, bool (*gone)(void *arg, void *state), void *arg);

#endif
