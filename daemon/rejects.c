/* rejects — runs of rejected bytes and their budget; see rejects.h. */
#include "rejects.h"

#include <stdlib.h>
#include <string.h>

struct vem_rejects {
    vem_rejects_budget_t budget;
    uint64_t received, given_up, kept;
    unsigned records;
    const char *spent;
    /* the run not yet taken */
    uint8_t *run;
    size_t run_len;
    unsigned run_drops;
    uint64_t run_off;
    vem_hj1239_status_t run_error;
    const char *run_detail;
};

vem_rejects_t *vem_rejects_new(const vem_rejects_budget_t *budget)
{
    vem_rejects_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->budget = *budget;
    if (self->budget.run_max == 0)
        self->budget.run_max = 1;
    return self;
}

void vem_rejects_destroy(vem_rejects_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->run);
    free(*self_p);
    *self_p = NULL;
}

void vem_rejects_received(vem_rejects_t *self, size_t n)
{
    self->received += n;
}

static size_t s_given_up(const vem_reasm_event_t *ev)
{
    return ev->skipped ? ev->skipped : 1;
}

bool vem_rejects_must_take(const vem_rejects_t *self, const vem_reasm_event_t *ev)
{
    return !self->spent && self->run_len > 0 &&
           self->run_len + s_given_up(ev) > self->budget.run_max;
}

void vem_rejects_add(vem_rejects_t *self, const vem_reasm_event_t *ev)
{
    size_t n = s_given_up(ev);
    self->given_up += n;
    if (!self->spent) {
        if (!self->run) {
            self->run = malloc(self->budget.run_max);
            if (!self->run)
                abort();
        }
        if (self->run_len == 0) {
            self->run_off = ev->offset;
            self->run_error = ev->error;
            self->run_detail = ev->detail;
        } else if (self->run_error == VEM_HJ1239_BAD_START && ev->error != VEM_HJ1239_BAD_START) {
            self->run_error = ev->error;
            self->run_detail = ev->detail;
        }
        /* the reassembler gives up at most run_max (max_frame) bytes in one event */
        size_t fit = self->budget.run_max - self->run_len;
        memcpy(self->run + self->run_len, ev->data, n < fit ? n : fit);
        self->run_len += n < fit ? n : fit;
        self->run_drops++;
    }
    if (!self->spent && self->given_up >= self->budget.run_max &&
        self->given_up * 100 > (uint64_t)self->budget.share_pct * self->received)
        self->spent = "share";
}

bool vem_rejects_take(vem_rejects_t *self, vem_rejects_run_t *run)
{
    if (self->run_len == 0)
        return false;
    uint64_t left = self->budget.max_bytes > self->kept ? self->budget.max_bytes - self->kept : 0;
    *run = (vem_rejects_run_t){.data = self->run,
                               .len = self->run_len < left ? self->run_len : (size_t)left,
                               .given_up = self->run_len,
                               .drops = self->run_drops,
                               .offset = self->run_off,
                               .error = self->run_error,
                               .detail = self->run_detail};
    self->kept += run->len;
    self->records++;
    self->run_len = 0;
    self->run_drops = 0;
    if (!self->spent && (run->len < run->given_up || self->kept >= self->budget.max_bytes))
        self->spent = "bytes";
    if (!self->spent && self->records >= self->budget.max_records)
        self->spent = "records";
    return true;
}

void vem_rejects_trim(vem_rejects_t *self)
{
    if (self->run_len == 0) {
        free(self->run);
        self->run = NULL;
    }
}

const char *vem_rejects_spent(const vem_rejects_t *self)
{
    return self->spent;
}

uint64_t vem_rejects_given_up(const vem_rejects_t *self)
{
    return self->given_up;
}

uint64_t vem_rejects_kept(const vem_rejects_t *self)
{
    return self->kept;
}

uint64_t vem_rejects_received_bytes(const vem_rejects_t *self)
{
    return self->received;
}

unsigned vem_rejects_records(const vem_rejects_t *self)
{
    return self->records;
}
