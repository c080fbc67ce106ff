/* plates — rule states by plate and colour; see plates.h. Open addressing by a hash of both,
 * doubled at 70 % load; a sweep that removes plates rebuilds the table, so no tombstones. */
#include "plates.h"

#include "session.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char plate[16]; /* "" for a free slot */
    char color[16]; /* "" when not known */
    void *state;
} s_entry_t;

struct vem_plates {
    s_entry_t *slots;
    size_t cap, n, max;
    void (*state_free)(void *state);
};

vem_plates_t *vem_plates_new(size_t max, void (*state_free)(void *state))
{
    vem_plates_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->cap = 64;
    self->max = max;
    self->state_free = state_free;
    self->slots = calloc(self->cap, sizeof *self->slots);
    if (!self->slots)
        abort();
    return self;
}

void vem_plates_destroy(vem_plates_t **self_p)
{
    vem_plates_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->cap; i++)
        if (self->slots[i].plate[0] && self->slots[i].state && self->state_free)
            self->state_free(self->slots[i].state);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

/* The plate's hash with the colour's bytes mixed in (FNV-1a steps). */
static uint64_t s_hash(const char *plate, const char *color)
{
    uint64_t h = vem_plate_hash(plate);
    for (const char *c = color; *c; c++)
        h = (h ^ (uint8_t)*c) * 0x00000100000001b3ULL;
    return h;
}

static size_t s_find(const s_entry_t *slots, size_t cap, const char *plate, const char *color)
{
    size_t i = (size_t)s_hash(plate, color) & (cap - 1);
    while (slots[i].plate[0] &&
           (strcmp(slots[i].plate, plate) != 0 || strcmp(slots[i].color, color) != 0))
        i = (i + 1) & (cap - 1);
    return i;
}

/* The table's entries moved into cap fresh slots (a power of two above the count). */
static void s_rehash(vem_plates_t *self, size_t cap)
{
    s_entry_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        abort();
    for (size_t i = 0; i < self->cap; i++)
        if (self->slots[i].plate[0])
            slots[s_find(slots, cap, self->slots[i].plate, self->slots[i].color)] = self->slots[i];
    free(self->slots);
    self->slots = slots;
    self->cap = cap;
}

static void s_grow(vem_plates_t *self)
{
    s_rehash(self, self->cap * 2);
}

void **vem_plates_slot(vem_plates_t *self, const char *plate, const char *color, bool create)
{
    if (!color)
        color = "";
    if (!*plate || strlen(plate) >= sizeof self->slots[0].plate ||
        strlen(color) >= sizeof self->slots[0].color)
        return NULL;
    size_t i = s_find(self->slots, self->cap, plate, color);
    if (self->slots[i].plate[0])
        return &self->slots[i].state;
    if (!create || self->n >= self->max)
        return NULL;
    if ((self->n + 1) * 10 > self->cap * 7) {
        s_grow(self);
        i = s_find(self->slots, self->cap, plate, color);
    }
    snprintf(self->slots[i].plate, sizeof self->slots[i].plate, "%s", plate);
    snprintf(self->slots[i].color, sizeof self->slots[i].color, "%s", color);
    self->slots[i].state = NULL;
    self->n++;
    return &self->slots[i].state;
}

size_t vem_plates_count(const vem_plates_t *self)
{
    return self->n;
}

void vem_plates_each(vem_plates_t *self,
                     void (*fn)(void *arg, const char *plate, const char *color, void **slot),
                     void *arg)
{
    for (size_t i = 0; i < self->cap; i++)
        if (self->slots[i].plate[0])
            fn(arg, self->slots[i].plate, self->slots[i].color, &self->slots[i].state);
}

size_t vem_plates_sweep(vem_plates_t *self, bool (*gone)(void *arg, void *state), void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < self->cap; i++) {
        s_entry_t *e = &self->slots[i];
        if (!e->plate[0] || (e->state && !gone(arg, e->state)))
            continue;
        if (e->state && self->state_free)
            self->state_free(e->state);
        e->plate[0] = '\0';
        e->state = NULL;
        n++;
    }
    if (n == 0)
        return 0;
    self->n -= n;
    size_t cap = self->cap;
    while (cap > 64 && self->n * 8 < cap)
        cap /= 2; /* less than an eighth full: half the slots */
    s_rehash(self, cap);
    return n;
}
