/* watchdog — progress between two ticks; see watchdog.h. */
#include "watchdog.h"

#include <stdlib.h>

struct vem_watchdog {
    uint64_t ingest_beats;
    uint64_t *sink_beats, *done;
    size_t nworkers, nsinks;
};

vem_watchdog_t *vem_watchdog_new(size_t nworkers, size_t nsinks)
{
    vem_watchdog_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->sink_beats = calloc(nsinks ? nsinks : 1, sizeof *self->sink_beats);
    self->done = calloc(nworkers ? nworkers : 1, sizeof *self->done);
    if (!self->sink_beats || !self->done)
        abort();
    self->nworkers = nworkers;
    self->nsinks = nsinks;
    return self;
}

void vem_watchdog_destroy(vem_watchdog_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->sink_beats);
    free((*self_p)->done);
    free(*self_p);
    *self_p = NULL;
}

bool vem_watchdog_progress(vem_watchdog_t *self, const vem_watchdog_tick_t *now)
{
    bool all = now->ingest_beats != self->ingest_beats;
    self->ingest_beats = now->ingest_beats;
    for (size_t i = 0; i < self->nsinks && i < now->nsinks; i++) {
        all = all && now->sink_beats[i] != self->sink_beats[i];
        self->sink_beats[i] = now->sink_beats[i];
    }
    for (size_t i = 0; i < self->nworkers && i < now->nworkers; i++) {
        all = all && (now->done[i] != self->done[i] || now->done[i] >= now->forwarded[i]);
        self->done[i] = now->done[i];
    }
    return all;
}
