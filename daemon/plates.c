/* plates — rule states by plate; see plates.h. Open addressing by plate hash, doubled at 70 %
 * load; no removal, so no tombstones. */
#include "plates.h"

#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char plate[16]; /* "" for a free slot */
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

static size_t s_find(const s_entry_t *slots, size_t cap, const char *plate)
{
    size_t i = (size_t)vem_plate_hash(plate) & (cap - 1);
    while (slots[i].plate[0] && strcmp(slots[i].plate, plate) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

static void s_grow(vem_plates_t *self)
{
    size_t cap = self->cap * 2;
    s_entry_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        abort();
    for (size_t i = 0; i < self->cap; i++)
        if (self->slots[i].plate[0])
            slots[s_find(slots, cap, self->slots[i].plate)] = self->slots[i];
    free(self->slots);
    self->slots = slots;
    self->cap = cap;
}

void **vem_plates_slot(vem_plates_t *self, const char *plate, bool create)
{
    if (!*plate || strlen(plate) >= sizeof self->slots[0].plate)
        return NULL;
    size_t i = s_find(self->slots, self->cap, plate);
    if (self->slots[i].plate[0])
        return &self->slots[i].state;
    if (!create || self->n >= self->max)
        return NULL;
    if ((self->n + 1) * 10 > self->cap * 7) {
        s_grow(self);
        i = s_find(self->slots, self->cap, plate);
    }
    snprintf(self->slots[i].plate, sizeof self->slots[i].plate, "%s", plate);
    self->slots[i].state = NULL;
    self->n++;
    return &self->slots[i].state;
}

size_t vem_plates_count(const vem_plates_t *self)
{
    return self->n;
}

void vem_plates_each(vem_plates_t *self, void (*fn)(void *arg, const char *plate, void **slot),
                     void *arg)
{
    for (size_t i = 0; i < self->cap; i++)
        if (self->slots[i].plate[0])
            fn(arg, self->slots[i].plate, &self->slots[i].state);
}
