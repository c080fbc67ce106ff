/* ackwin — low-water mark over out-of-order completions; see ackwin.h.
 *
 * A ring of bits covers mark+1 .. mark+capacity: bit (seq % capacity) says seq is done. The
 * ring doubles when a seq lands beyond it, so memory is proportional to the largest gap in
 * flight (bounded in practice by the pipeline's high-water marks), not to the total count. */
#include "ackwin.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct vem_ackwin {
    uint64_t mark;
    uint64_t *bits;
    uint64_t capacity; /* power of two, in seqs */
    uint64_t pending;
};

static bool s_get(const vem_ackwin_t *self, uint64_t seq)
{
    uint64_t i = seq & (self->capacity - 1);
    return self->bits[i / 64] >> (i % 64) & 1;
}

static void s_set(vem_ackwin_t *self, uint64_t seq, bool on)
{
    uint64_t i = seq & (self->capacity - 1);
    if (on)
        self->bits[i / 64] |= (uint64_t)1 << (i % 64);
    else
        self->bits[i / 64] &= ~((uint64_t)1 << (i % 64));
}

vem_ackwin_t *vem_ackwin_new(uint64_t mark)
{
    vem_ackwin_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->mark = mark;
    self->capacity = 4096;
    self->bits = calloc(self->capacity / 64, sizeof *self->bits);
    if (!self->bits)
        abort();
    return self;
}

void vem_ackwin_destroy(vem_ackwin_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->bits);
    free(*self_p);
    *self_p = NULL;
}

/* Doubles the ring until seq fits, re-placing the done bits above the mark. */
static void s_grow(vem_ackwin_t *self, uint64_t seq)
{
    uint64_t capacity = self->capacity;
    while (seq - self->mark > capacity)
        capacity *= 2;
    uint64_t *bits = calloc(capacity / 64, sizeof *bits);
    if (!bits)
        abort();
    vem_ackwin_t grown = {.mark = self->mark, .bits = bits, .capacity = capacity};
    for (uint64_t s = self->mark + 1; s <= self->mark + self->capacity; s++)
        if (s_get(self, s))
            s_set(&grown, s, true);
    free(self->bits);
    self->bits = bits;
    self->capacity = capacity;
}

uint64_t vem_ackwin_done(vem_ackwin_t *self, uint64_t seq)
{
    if (seq <= self->mark)
        return self->mark;
    if (seq - self->mark > self->capacity)
        s_grow(self, seq);
    if (s_get(self, seq))
        return self->mark;
    s_set(self, seq, true);
    self->pending++;
    while (s_get(self, self->mark + 1)) {
        s_set(self, self->mark + 1, false);
        self->mark++;
        self->pending--;
    }
    return self->mark;
}

uint64_t vem_ackwin_mark(const vem_ackwin_t *self)
{
    return self->mark;
}

uint64_t vem_ackwin_pending(const vem_ackwin_t *self)
{
    return self->pending;
}
