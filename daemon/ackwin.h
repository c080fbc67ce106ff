/* ackwin — turns out-of-order completions into a contiguous low-water mark.
 *
 * Workers finish spool records out of order (N workers, per-vehicle routing), but a sink may
 * move its spool cursor only to a point below which every record is durable. The window
 * remembers which sequence numbers above the mark are done and advances the mark over every
 * unbroken run. Owned by one sink thread. */
#ifndef VEM_ACKWIN_H
#define VEM_ACKWIN_H

#include <stdint.h>

typedef struct vem_ackwin vem_ackwin_t;

/* New window whose mark is `mark` (everything <= mark is already done). */
vem_ackwin_t *vem_ackwin_new(uint64_t mark);

/* Frees the window; accepts NULL; sets *self_p to NULL. */
void vem_ackwin_destroy(vem_ackwin_t **self_p);

/* Records seq as done (repeats and seqs <= mark are ignored); returns the new mark. */
uint64_t vem_ackwin_done(vem_ackwin_t *self, uint64_t seq);

/* The mark: every seq <= it is done. */
uint64_t vem_ackwin_mark(const vem_ackwin_t *self);

/* Number of seqs above the mark that are done but wait for a gap to fill. */
uint64_t vem_ackwin_pending(const vem_ackwin_t *self);

#endif
