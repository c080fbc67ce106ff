/* session — per-vehicle session table; see session.h.
 *
 * An open-addressing table (linear probing, power-of-two size, grown at 70 % load) maps a
 * VIN to its session. Every entry is also on a list in the order it was last seen (a frame
 * moves it to the tail), so the idle sweep and the cap's eviction read the least recently seen
 * first and stop early; removal shifts the following probe run back (no tombstones), so a
 * table under a flood of forged VINs stays as short as its cap. Each session keeps a ring of
 * its last `window` frame keys (time << 16 | serial) for duplicate checks, allocated with its
 * first real-time or re-sent frame: a short linear scan over contiguous integers, cheaper than
 * any index at the window sizes that matter (recent repeats). */
#include "session.h"

#include "hj1239.h"

#include <stdlib.h>
#include <string.h>

typedef struct s_entry {
    vem_session_t pub;
    uint64_t *ring; /* last keys, ring[next % window] is overwritten next; NULL until needed */
    size_t next;
    void *state;                 /* the owner's per-vehicle state (rules), freed by state_free */
    struct s_entry *prev, *succ; /* the seen-order list: head least recently seen */
} s_entry_t;

struct vem_sessions {
    s_entry_t **slots;
    size_t capacity; /* power of two */
    size_t count;
    size_t window;
    size_t max;      /* cap on count (0: none) */
    int64_t idle_us; /* sessions without state unseen this long are forgotten (0: never) */
    s_entry_t *head, *tail;
    void (*state_free)(void *state);
};

/* Entries with state skipped per eviction before a new VIN is refused: a table full of
 * vehicles with state costs a bounded look, not a walk of the whole list. */
#define S_EVICT_LOOK 64

uint64_t vem_vin_hash(const char *vin)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 offset basis */
    for (size_t i = 0; i < VEM_VIN_LEN; i++) {
        h ^= (uint8_t)vin[i];
        h *= 1099511628211ULL; /* FNV-1a 64 prime */
    }
    return h;
}

uint64_t vem_plate_hash(const char *plate)
{
    uint64_t h = 14695981039346656037ULL;
    for (const char *p = plate; *p; p++) {
        h ^= (uint8_t)*p;
        h *= 1099511628211ULL;
    }
    return h;
}

vem_sessions_t *vem_sessions_new(size_t window)
{
    vem_sessions_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->window = window ? window : 1;
    self->capacity = 1024;
    self->slots = calloc(self->capacity, sizeof *self->slots);
    if (!self->slots)
        abort();
    return self;
}

void vem_sessions_set_limits(vem_sessions_t *self, size_t max, int64_t idle_us)
{
    self->max = max;
    self->idle_us = idle_us;
}

static void s_unlink(vem_sessions_t *self, s_entry_t *e)
{
    if (e->prev)
        e->prev->succ = e->succ;
    else
        self->head = e->succ;
    if (e->succ)
        e->succ->prev = e->prev;
    else
        self->tail = e->prev;
    e->prev = e->succ = NULL;
}

static void s_append(vem_sessions_t *self, s_entry_t *e)
{
    e->prev = self->tail;
    e->succ = NULL;
    if (self->tail)
        self->tail->succ = e;
    else
        self->head = e;
    self->tail = e;
}

void vem_sessions_destroy(vem_sessions_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vem_sessions_t *self = *self_p;
    for (size_t i = 0; i < self->capacity; i++) {
        if (self->slots[i]) {
            if (self->slots[i]->state && self->state_free)
                self->state_free(self->slots[i]->state);
            free(self->slots[i]->ring);
            free(self->slots[i]);
        }
    }
    free(self->slots);
    free(self);
    *self_p = NULL;
}

static size_t s_probe(s_entry_t *const *slots, size_t capacity, const char *vin)
{
    size_t i = (size_t)vem_vin_hash(vin) & (capacity - 1);
    while (slots[i] && memcmp(slots[i]->pub.vin, vin, VEM_VIN_LEN) != 0)
        i = (i + 1) & (capacity - 1);
    return i;
}

static void s_grow(vem_sessions_t *self)
{
    size_t capacity = self->capacity * 2;
    s_entry_t **slots = calloc(capacity, sizeof *slots);
    if (!slots)
        abort();
    for (size_t i = 0; i < self->capacity; i++)
        if (self->slots[i])
            slots[s_probe(slots, capacity, self->slots[i]->pub.vin)] = self->slots[i];
    free(self->slots);
    self->slots = slots;
    self->capacity = capacity;
}

/* Takes e out of the table (backward-shift deletion: every entry of the probe run after the
 * hole that may move into it does) and frees it; its state must be gone already. */
static void s_remove(vem_sessions_t *self, s_entry_t *e)
{
    size_t mask = self->capacity - 1;
    size_t hole = s_probe(self->slots, self->capacity, e->pub.vin);
    s_unlink(self, e);
    free(e->ring);
    free(e);
    self->slots[hole] = NULL;
    self->count--;
    for (size_t j = (hole + 1) & mask; self->slots[j]; j = (j + 1) & mask) {
        size_t home = (size_t)vem_vin_hash(self->slots[j]->pub.vin) & mask;
        /* j's entry may move to the hole when its home is not cyclically within (hole, j] */
        bool stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
        if (!stays) {
            self->slots[hole] = self->slots[j];
            self->slots[j] = NULL;
            hole = j;
        }
    }
}

/* Forgets the least recently seen session without state; sessions with state it passes go to
 * the tail (they are looked at again last). False when it found none within S_EVICT_LOOK. */
static bool s_evict(vem_sessions_t *self)
{
    for (size_t n = 0; n < S_EVICT_LOOK && self->head; n++) {
        s_entry_t *e = self->head;
        if (!e->state) {
            s_remove(self, e);
            return true;
        }
        s_unlink(self, e);
        s_append(self, e);
    }
    return false;
}

/* The entry of vin, made when missing; NULL when the table is at its cap and nothing could be
 * forgotten (unless force). *evicted tells whether a session was forgotten for it. */
static s_entry_t *s_get(vem_sessions_t *self, const char *vin, bool force, bool *evicted)
{
    size_t i = s_probe(self->slots, self->capacity, vin);
    if (self->slots[i])
        return self->slots[i];
    if (self->max && self->count >= self->max) {
        if (s_evict(self))
            *evicted = true;
        else if (!force)
            return NULL;
        i = s_probe(self->slots, self->capacity, vin);
    }
    if ((self->count + 1) * 10 > self->capacity * 7) {
        s_grow(self);
        i = s_probe(self->slots, self->capacity, vin);
    }
    s_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    memcpy(e->pub.vin, vin, VEM_VIN_LEN);
    self->slots[i] = e;
    self->count++;
    s_append(self, e);
    return e;
}

size_t vem_sessions_expire(vem_sessions_t *self, int64_t now_us)
{
    if (!self->idle_us)
        return 0;
    size_t n = 0;
    s_entry_t *e = self->head;
    while (e && e->pub.last_seen_us < now_us - self->idle_us) {
        s_entry_t *succ = e->succ;
        if (!e->state) {
            s_remove(self, e);
            n++;
        }
        e = succ;
    }
    return n;
}

size_t vem_sessions_recent(const vem_sessions_t *self, size_t limit,
                           void (*fn)(void *arg, const vem_session_t *session), void *arg)
{
    size_t n = 0;
    for (const s_entry_t *e = self->tail; e && n < limit; e = e->prev, n++)
        fn(arg, &e->pub);
    return n;
}

static bool s_seen(vem_sessions_t *self, s_entry_t *e, uint64_t key)
{
    if (!e->ring) {
        e->ring = calloc(self->window, sizeof *e->ring);
        if (!e->ring)
            abort();
    }
    size_t n = e->next < self->window ? e->next : self->window;
    for (size_t i = 0; i < n; i++)
        if (e->ring[i] == key)
            return true;
    e->ring[e->next % self->window] = key;
    e->next++;
    return false;
}

vem_session_verdict_t vem_sessions_observe(vem_sessions_t *self, const char *vin, uint8_t cmd,
                                           int64_t frame_time, uint16_t seq, int64_t received_us)
{
    vem_frame_kind_t kind =
        cmd >= VEM_FRAME_LOGIN && cmd <= VEM_FRAME_LOGOUT ? (vem_frame_kind_t)cmd : VEM_FRAME_OTHER;
    vem_session_verdict_t verdict = {0};
    s_entry_t *e = s_get(self, vin, false, &verdict.evicted);
    if (!e) {
        verdict.refused = true;
        return verdict;
    }
    if (e != self->tail) {
        s_unlink(self, e);
        s_append(self, e);
    }
    vem_session_t *s = &e->pub;
    s->last_seen_us = received_us;
    if (cmd < VEM_SESSION_CMDS)
        s->by_cmd[cmd]++;
    s->skew_s = received_us / 1000000 - frame_time;

    switch (kind) {
    case VEM_FRAME_LOGIN:
        s->login_at = frame_time;
        s->login_seq = seq;
        s->logins++;
        break;
    case VEM_FRAME_LOGOUT:
        s->logouts++;
        break;
    case VEM_FRAME_OTHER:
        break;
    case VEM_FRAME_LIVE:
    case VEM_FRAME_RESENT:
        /* Key: (time, serial); the top bit keeps keys of day-0 times non-zero for the ring. */
        if (s_seen(self, e, (uint64_t)frame_time << 16 | seq | 1ULL << 63)) {
            verdict.duplicate = true;
            s->duplicates++;
            break;
        }
        if (kind == VEM_FRAME_RESENT) {
            s->resent_frames++;
            break;
        }
        s->live_frames++;
        if (s->live_frames > 1) {
            /* the daily serial restarts at Beijing midnight */
            if (vem_hj1239_beijing_day(frame_time) != vem_hj1239_beijing_day(s->last_live_time)) {
                verdict.serial_reset = true;
                verdict.gap = seq > 1 ? seq - 1u : 0; /* the new day's first serials */
            } else if (seq > s->last_live_seq + 1u)
                verdict.gap = (uint32_t)(seq - s->last_live_seq - 1u);
        }
        if (s->live_frames == 1 || verdict.serial_reset || seq > s->last_live_seq ||
            frame_time > s->last_live_time) {
            s->missing += verdict.gap;
            s->last_live_seq = seq;
            s->last_live_time = frame_time;
        }
        break;
    }
    return verdict;
}

const vem_session_t *vem_sessions_find(const vem_sessions_t *self, const char *vin)
{
    s_entry_t *e = self->slots[s_probe(self->slots, self->capacity, vin)];
    return e ? &e->pub : NULL;
}

void vem_sessions_set_state_free(vem_sessions_t *self, void (*state_free)(void *state))
{
    self->state_free = state_free;
}

void **vem_sessions_state(vem_sessions_t *self, const char *vin)
{
    s_entry_t *e = self->slots[s_probe(self->slots, self->capacity, vin)];
    return e ? &e->state : NULL;
}

void **vem_sessions_state_new(vem_sessions_t *self, const char *vin)
{
    bool evicted = false;
    return &s_get(self, vin, true, &evicted)->state;
}

void **vem_sessions_state_try(vem_sessions_t *self, const char *vin, bool *evicted)
{
    *evicted = false;
    s_entry_t *e = s_get(self, vin, false, evicted);
    return e ? &e->state : NULL;
}

size_t vem_sessions_count(const vem_sessions_t *self)
{
    return self->count;
}

void vem_sessions_each(const vem_sessions_t *self,
                       void (*fn)(void *arg, const vem_session_t *session), void *arg)
{
    for (size_t i = 0; i < self->capacity; i++)
        if (self->slots[i])
            fn(arg, &self->slots[i]->pub);
}
