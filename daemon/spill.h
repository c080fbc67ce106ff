/* spill — a sink's overflow on disk: a FIFO of messages it took but cannot write yet.
 *
 * One sink's outage must stop neither intake nor another sink, so a sink keeps reading the
 * workers' messages whatever happens downstream: what it cannot write now goes to the end of
 * its spill file, and once it can write again it takes messages from the front of the file
 * before the queue, so the order it writes them in is the order it received them. The spool
 * and the sink's cursor stay the source of truth: the spill is never synced, and at start it
 * is emptied, since everything above the cursor is replayed from the spool anyway.
 *
 * The file holds records of a u32 length and the message bytes. When the reader catches up
 * with the writer the file is truncated to zero. Bounded: a push that would take the file past
 * max_bytes fails with ENOSPC and the sink stops reading (backpressure); vemd sizes it at
 * twice the spool, so the spool is full first and an outage alone never gets there.
 *
 * Owned by one sink thread. */
#ifndef VEM_SPILL_H
#define VEM_SPILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vem_spill vem_spill_t;

/* Opens path, emptying it (creating it if needed); NULL with the reason in err. */
vem_spill_t *vem_spill_open(const char *path, uint64_t max_bytes, char *err, size_t errlen);

/* Closes and removes the file; accepts NULL; sets *self_p to NULL. */
void vem_spill_destroy(vem_spill_t **self_p);

/* Appends one message: 0, or -1 with errno (ENOSPC past max_bytes, or the write's error). */
int vem_spill_push(vem_spill_t *self, const void *data, size_t len);

/* Length of the message at the front, 0 when the spill is empty. */
size_t vem_spill_peek(const vem_spill_t *self);

/* Reads the front message into buf (at least vem_spill_peek bytes) and removes it: 0, or -1
 * with errno on a read error (the message stays). */
int vem_spill_pop(vem_spill_t *self, void *buf);

/* Messages and bytes waiting. */
uint64_t vem_spill_count(const vem_spill_t *self);
uint64_t vem_spill_bytes(const vem_spill_t *self);

#endif
