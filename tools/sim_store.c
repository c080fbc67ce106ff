/* sim_store — a terminal's unacknowledged frames; see sim_store.h.
 *
 * An array of entries in generation (= time) order. An acknowledged entry loses its bytes but
 * keeps its place and time, so lookups stay a binary search; the array is compacted once the
 * forgotten entries at its front outnumber the rest. A store holds what a truck collected
 * while its link was down: minutes at most in the simulator, so linear scans for the oldest
 * waiting or in-flight frame are cheap. */
#include "sim_store.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t t;
    uint8_t *frame; /* NULL once acknowledged */
    size_t len;
    double sent_at; /* negative while waiting */
} s_entry_t;

struct vem_sim_store {
    s_entry_t *entries;
    size_t head, n, cap; /* entries before head are all acknowledged */
    size_t held, in_flight;
    int64_t last; /* time of the latest frame added */
    bool any;
};

vem_sim_store_t *vem_sim_store_new(void)
{
    vem_sim_store_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    return self;
}

void vem_sim_store_destroy(vem_sim_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vem_sim_store_t *self = *self_p;
    for (size_t i = self->head; i < self->n; i++)
        free(self->entries[i].frame);
    free(self->entries);
    free(self);
    *self_p = NULL;
}

int vem_sim_store_add(vem_sim_store_t *self, int64_t t, const uint8_t *frame, size_t len)
{
    if (self->any && t <= self->last)
        return -1;
    if (self->head > 0 && self->head * 2 >= self->n) {
        memmove(self->entries, self->entries + self->head,
                (self->n - self->head) * sizeof *self->entries);
        self->n -= self->head;
        self->head = 0;
    }
    if (self->n == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 64;
        self->entries = realloc(self->entries, self->cap * sizeof *self->entries);
        if (!self->entries)
            abort();
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, frame, len);
    self->entries[self->n++] = (s_entry_t){.t = t, .frame = copy, .len = len, .sent_at = -1};
    self->held++;
    self->last = t;
    self->any = true;
    return 0;
}

/* The held entry with time t, NULL when there is none. */
static s_entry_t *s_find(const vem_sim_store_t *self, int64_t t)
{
    size_t lo = self->head, hi = self->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->entries[mid].t < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == self->n || self->entries[lo].t != t || !self->entries[lo].frame)
        return NULL;
    return &self->entries[lo];
}

const uint8_t *vem_sim_store_next(const vem_sim_store_t *self, int64_t *t, size_t *len)
{
    if (self->held == self->in_flight)
        return NULL;
    for (size_t i = self->head; i < self->n; i++) {
        const s_entry_t *e = &self->entries[i];
        if (e->frame && e->sent_at < 0) {
            *t = e->t;
            *len = e->len;
            return e->frame;
        }
    }
    return NULL;
}

bool vem_sim_store_sent(vem_sim_store_t *self, int64_t t, double now)
{
    s_entry_t *e = s_find(self, t);
    if (!e)
        return false;
    if (e->sent_at < 0)
        self->in_flight++;
    e->sent_at = now;
    return true;
}

bool vem_sim_store_ack(vem_sim_store_t *self, int64_t t)
{
    s_entry_t *e = s_find(self, t);
    if (!e)
        return false;
    if (e->sent_at >= 0)
        self->in_flight--;
    free(e->frame);
    e->frame = NULL;
    self->held--;
    while (self->head < self->n && !self->entries[self->head].frame)
        self->head++;
    if (self->head == self->n)
        self->head = self->n = 0;
    return true;
}

void vem_sim_store_requeue(vem_sim_store_t *self)
{
    for (size_t i = self->head; i < self->n; i++)
        self->entries[i].sent_at = -1;
    self->in_flight = 0;
}

double vem_sim_store_oldest_sent(const vem_sim_store_t *self)
{
    double oldest = -1;
    for (size_t i = self->head; i < self->n && self->in_flight > 0; i++) {
        const s_entry_t *e = &self->entries[i];
        if (e->frame && e->sent_at >= 0 && (oldest < 0 || e->sent_at < oldest))
            oldest = e->sent_at;
    }
    return oldest;
}

size_t vem_sim_store_held(const vem_sim_store_t *self)
{
    return self->held;
}

size_t vem_sim_store_in_flight(const vem_sim_store_t *self)
{
    return self->in_flight;
}
