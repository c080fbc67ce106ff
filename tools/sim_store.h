/* sim_store — what one simulated terminal keeps until the platform acknowledges it.
 *
 * Real HJ 1239 terminals store every real-time frame they collect and forget it only once the
 * platform's reply for it has arrived; what was never answered goes out again, as re-sends
 * (0x03), after the terminal has reconnected. The store holds copies of a truck's frames in the
 * order they were generated, each either waiting to be sent or in flight since a given moment.
 * A reply removes its frame; a broken connection puts everything in flight back to waiting.
 * Frames are keyed by their time (the last sample's), which is unique and ascending for one
 * truck, as a reply names the frame it answers by command, VIN and time.
 *
 * Pure: no I/O, no clock (callers pass the time). One store per truck, owned by vem-sim's one
 * thread. */
#ifndef VEM_SIM_STORE_H
#define VEM_SIM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vem_sim_store vem_sim_store_t;

/* New empty store; aborts when out of memory. */
vem_sim_store_t *vem_sim_store_new(void);

/* Frees the store and the copies it holds; accepts NULL; sets *self_p to NULL. */
void vem_sim_store_destroy(vem_sim_store_t **self_p);

/* Keeps a copy of frame, whose time is t, as waiting. 0, or -1 when t is not later than the
 * time of every frame added before (the key would not be unique). */
int vem_sim_store_add(vem_sim_store_t *self, int64_t t, const uint8_t *frame, size_t len);

/* The oldest frame waiting to be sent, NULL when none waits. The bytes belong to the store and
 * stay valid until the next add, ack or destroy; *t and *len get its time and length. */
const uint8_t *vem_sim_store_next(const vem_sim_store_t *self, int64_t *t, size_t *len);

/* The frame with time t was written to a connection at now (seconds, any monotonic scale): it
 * is in flight. false when no frame with time t is held. */
bool vem_sim_store_sent(vem_sim_store_t *self, int64_t t, double now);

/* A reply acknowledged the frame with time t: the store forgets it. false when none with time t
 * is held (a second reply for a frame already acknowledged). */
bool vem_sim_store_ack(vem_sim_store_t *self, int64_t t);

/* The connection is gone: every frame in flight waits to be sent again. */
void vem_sim_store_requeue(vem_sim_store_t *self);

/* When the frame longest in flight was sent; negative when nothing is in flight. */
double vem_sim_store_oldest_sent(const vem_sim_store_t *self);

/* Frames held (waiting or in flight). */
size_t vem_sim_store_held(const vem_sim_store_t *self);

/* Frames in flight. */
size_t vem_sim_store_in_flight(const vem_sim_store_t *self);

#endif
