/* peers — connections per source address; see peers.h.
 *
 * Linear probing without tombstones: vem_peers_sweep() rebuilds the table from the entries
 * still needed, and removal happens only there, so a lookup stops at the first empty slot. The
 * rate is counted in whole seconds of the monotonic clock (a fixed window: a burst at a
 * second's boundary may reach twice the limit within one second, never more). */
#include "peers.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define S_ADDR_MAX 64

typedef struct {
    bool used;
    char addr[S_ADDR_MAX];
    unsigned open;      /* admitted and not yet released */
    int64_t second;     /* the second of the last arrival */
    unsigned recent;    /* arrivals in that second */
    int64_t act_second; /* the second of the last activation judged */
    unsigned acts;      /* activations judged in it */
} s_entry_t;

struct vem_peers {
    unsigned max_open, max_new;
    s_entry_t *slots;
    size_t capacity, count;
};

static uint64_t s_hash(const char *addr)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < S_ADDR_MAX - 1 && addr[i]; i++)
        h = (h ^ (uint8_t)addr[i]) * 1099511628211ULL;
    return h;
}

static s_entry_t *s_slot(s_entry_t *slots, size_t capacity, const char *addr)
{
    size_t i = (size_t)s_hash(addr) & (capacity - 1);
    while (slots[i].used && strncmp(slots[i].addr, addr, S_ADDR_MAX - 1) != 0)
        i = (i + 1) & (capacity - 1);
    return &slots[i];
}

/* Moves the entries kept (all, or those still needed at now_us) into a table of capacity. */
static void s_rebuild(vem_peers_t *self, size_t capacity, bool all, int64_t now_s)
{
    s_entry_t *slots = calloc(capacity, sizeof *slots);
    if (!slots)
        abort();
    size_t count = 0;
    for (size_t i = 0; i < self->capacity; i++) {
        s_entry_t *e = &self->slots[i];
        if (!e->used || (!all && e->open == 0 && e->second != now_s))
            continue;
        *s_slot(slots, capacity, e->addr) = *e;
        count++;
    }
    free(self->slots);
    self->slots = slots;
    self->capacity = capacity;
    self->count = count;
}

vem_peers_t *vem_peers_new(unsigned max_per_address, unsigned new_per_s)
{
    vem_peers_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->max_open = max_per_address;
    self->max_new = new_per_s;
    self->capacity = 64;
    self->slots = calloc(self->capacity, sizeof *self->slots);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    return self;
}

void vem_peers_destroy(vem_peers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

vem_peers_verdict_t vem_peers_admit(vem_peers_t *self, const char *address, int64_t now_us)
{
    if ((self->count + 1) * 10 > self->capacity * 7)
        s_rebuild(self, self->capacity * 2, true, 0);
    s_entry_t *e = s_slot(self->slots, self->capacity, address);
    if (!e->used) {
        memset(e, 0, sizeof *e);
        e->used = true;
        strncpy(e->addr, address, S_ADDR_MAX - 1);
        e->second = -1;
        self->count++;
    }
    int64_t second = now_us / 1000000;
    if (e->second != second) {
        e->second = second;
        e->recent = 0;
    }
    if (e->recent < UINT32_MAX)
        e->recent++;
    if (e->recent > self->max_new)
        return VEM_PEERS_TOO_FAST;
    if (e->open >= self->max_open)
        return VEM_PEERS_TOO_MANY;
    e->open++;
    return VEM_PEERS_OK;
}

void vem_peers_release(vem_peers_t *self, const char *address)
{
    s_entry_t *e = s_slot(self->slots, self->capacity, address);
    if (e->used && e->open > 0)
        e->open--;
}

unsigned vem_peers_open(const vem_peers_t *self, const char *address)
{
    const s_entry_t *e = s_slot(self->slots, self->capacity, address);
    return e->used ? e->open : 0;
}

void vem_peers_sweep(vem_peers_t *self, int64_t now_us)
{
    int64_t now_s = now_us / 1000000;
    size_t stale = 0;
    for (size_t i = 0; i < self->capacity; i++)
        stale += self->slots[i].used && self->slots[i].open == 0 && self->slots[i].second != now_s;
    if (stale == 0)
        return;
    size_t capacity = self->capacity;
    while (capacity > 64 && (self->count - stale) * 10 < capacity * 2)
        capacity /= 2; /* shrink after a burst of addresses */
    s_rebuild(self, capacity, false, now_s);
}

size_t vem_peers_count(const vem_peers_t *self)
{
    return self->count;
}

const char *vem_peers_verdict_name(vem_peers_verdict_t verdict)
{
    switch (verdict) {
    case VEM_PEERS_OK:
        return "ok";
    case VEM_PEERS_TOO_MANY:
        return "address_limit";
    case VEM_PEERS_TOO_FAST:
        return "address_rate";
    }
    return "?";
}

bool vem_peers_take(vem_peers_t *self, const char *address, unsigned per_s, int64_t now_us)
{
    s_entry_t *e = s_slot(self->slots, self->capacity, address);
    if (!e->used)
        return false; /* only a connection admitted here may ask */
    int64_t now_s = now_us / 1000000;
    if (e->act_second != now_s) {
        e->act_second = now_s;
        e->acts = 0;
    }
    if (e->acts >= per_s)
        return false;
    e->acts++;
    return true;
}
