/* rejects — the bytes a terminal connection's reassembler gives up, gathered into runs, and
 * the connection's budget for them (issue #13).
 *
 * The reassembler gives up bytes one event at a time: one byte per rejected candidate, a run
 * of garbage up to the next `##`. Quarantining each event with every byte it examined made 4
 * bytes of `23 23 08 FD` a 2,326-byte record. Here the bytes given up are put back to back into
 * one run (at most run_max bytes), which the caller quarantines once, when a frame, the end of
 * a chunk or the connection's end interrupts it; a run is classed by its first rejected
 * candidate (bad_start when it had none). A connection may have max_records runs and max_bytes
 * bytes kept; past either, or once its rejected bytes are over share_pct of what it sent
 * (judged from run_max rejected bytes on), the budget is spent: the caller closes it, and what
 * it gives up until then is counted, not kept.
 *
 * One allocation for the object; the run buffer is allocated at a rejected byte and freed by
 * vem_rejects_trim() once the run is taken. Not thread-safe: one per connection, owned by the
 * ingest thread. */
#ifndef VEM_REJECTS_H
#define VEM_REJECTS_H

#include "hj1239.h"
#include "reasm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vem_rejects vem_rejects_t;

typedef struct {
    size_t run_max;       /* bytes of one run (terminals.max_frame_bytes) */
    uint64_t max_bytes;   /* rejected bytes kept per connection (terminals.reject_bytes) */
    unsigned max_records; /* runs per connection (terminals.reject_records) */
    unsigned share_pct;   /* rejected share that spends the budget (reject_share_pct) */
} vem_rejects_budget_t;

/* A run taken for the quarantine. data stays valid until the next add. */
typedef struct {
    const uint8_t *data;
    size_t len;                /* bytes kept: len < given_up when the budget cut the run */
    size_t given_up;           /* bytes of the run */
    unsigned drops;            /* reassembler events in it */
    uint64_t offset;           /* stream offset of its first byte */
    vem_hj1239_status_t error; /* its first rejected candidate's class, or bad_start */
    const char *detail;        /* static text of that class's event */
} vem_rejects_run_t;

/* New, empty, with this budget (copied); NULL when out of memory. */
vem_rejects_t *vem_rejects_new(const vem_rejects_budget_t *budget);

/* Frees it; accepts NULL; sets *self_p to NULL. */
void vem_rejects_destroy(vem_rejects_t **self_p);

/* n more bytes were received on the connection (the base of the share). */
void vem_rejects_received(vem_rejects_t *self, size_t n);

/* True when the run must be taken before the bytes of drop event ev are added (they would not
 * fit). */
bool vem_rejects_must_take(const vem_rejects_t *self, const vem_reasm_event_t *ev);

/* Adds the bytes drop event ev gave up (data[0..skipped)) to the run; once the budget is
 * spent they are only counted. Call vem_rejects_must_take() first. */
void vem_rejects_add(vem_rejects_t *self, const vem_reasm_event_t *ev);

/* Takes the run into *run and counts it against the budget; false when there is none. */
bool vem_rejects_take(vem_rejects_t *self, vem_rejects_run_t *run);

/* Frees the run buffer when no run is pending (after a complete drain), so only connections
 * in the middle of a drain hold one. */
void vem_rejects_trim(vem_rejects_t *self);

/* Why the budget is spent ("records", "bytes" or "share"), or NULL while it is not. */
const char *vem_rejects_spent(const vem_rejects_t *self);

/* Bytes given up, kept in runs taken, received; runs taken. */
uint64_t vem_rejects_given_up(const vem_rejects_t *self);
uint64_t vem_rejects_kept(const vem_rejects_t *self);
uint64_t vem_rejects_received_bytes(const vem_rejects_t *self);
unsigned vem_rejects_records(const vem_rejects_t *self);

#endif
