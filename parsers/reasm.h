/* reasm — cuts a TCP byte stream of remote-OBD frames into whole frames.
 *
 * One reassembler per connection: one malloc'd object holding a buffer of max_frame bytes, so
 * memory per connection is bounded and known. Feed it each chunk as it arrives (any size,
 * frames split anywhere, several per chunk), then call vem_reasm_next() until it says
 * NEED_MORE. Each call yields one event: a frame whose start bytes, command, length bound and
 * BCC are good, or a drop with its class (FIELDS.md error names) and stream offset, so the
 * caller can count drops by class and quarantine the bytes.
 *
 * Frames that lie whole in a chunk are handed out in place (zero copy); only a frame split
 * across chunks is copied into the buffer. After garbage the reassembler resynchronises on the
 * next `##`; after a bad candidate it resumes one byte after that candidate's start, so no good
 * frame is swallowed; a `##` inside a good frame never starts a frame. Not thread-safe: owned
 * by the thread that reads the connection. */
#ifndef VEM_REASM_H
#define VEM_REASM_H

#include "hj1239.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vem_reasm vem_reasm_t;

enum {
    VEM_REASM_DEFAULT_MAX_FRAME = 4096, /* enough for 64 blocks with a few DTCs */
};

typedef enum {
    VEM_REASM_NEED_MORE = 0, /* the chunk is used up: feed the next one */
    VEM_REASM_FRAME,         /* data/len is one whole frame with a good BCC */
    VEM_REASM_DROP,          /* bytes given up; error says why */
} vem_reasm_kind_t;

/* One event. data points into the fed chunk or into the reassembler's buffer and stays valid
 * until the next call on the reassembler (and, for chunk data, while the chunk lives). */
typedef struct {
    vem_reasm_kind_t kind;
    vem_hj1239_status_t error; /* DROP: bad_start, bad_checksum, truncated, bad_length,
                                  unknown_command */
    const char *detail;        /* DROP: static text */
    uint64_t offset;           /* stream offset of data[0] (bytes fed since creation/reset) */
    const uint8_t *data;       /* FRAME: the frame; DROP: the bytes examined (data[0] on) */
    size_t len;
    size_t skipped; /* DROP: stream bytes given up, data[0..skipped), at most max_frame (1 for
                       a rejected candidate, whose other bytes are scanned again) */
    bool copied;    /* FRAME: assembled in the buffer (was split across chunks) */
} vem_reasm_event_t;

/* New reassembler accepting frames of at most max_frame bytes (clamped to 25..65560; 0 means
 * VEM_REASM_DEFAULT_MAX_FRAME). One allocation; NULL when out of memory. */
vem_reasm_t *vem_reasm_new(size_t max_frame);

/* Frees the reassembler; accepts NULL; sets *self_p to NULL. */
void vem_reasm_destroy(vem_reasm_t **self_p);

/* Forgets buffered bytes and offsets, for reuse on a new connection. */
void vem_reasm_reset(vem_reasm_t *self);

/* Hands over the next chunk (borrowed: keep it alive and unchanged until next() returns
 * NEED_MORE). Call only when next() has returned NEED_MORE. */
void vem_reasm_feed(vem_reasm_t *self, const uint8_t *data, size_t len);

/* The stream has ended: next() will report what is still buffered (truncated or garbage). */
void vem_reasm_end(vem_reasm_t *self);

/* Next event into *ev; returns ev->kind. */
vem_reasm_kind_t vem_reasm_next(vem_reasm_t *self, vem_reasm_event_t *ev);

/* Bytes held in the buffer (part of a frame waiting for its tail). */
size_t vem_reasm_buffered(const vem_reasm_t *self);

/* Largest frame accepted. */
size_t vem_reasm_max_frame(const vem_reasm_t *self);

#endif
