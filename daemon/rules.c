/* rules — vehicles, frames, trips and the per-sample OBD rules; see rules.h.
 *
 * Thread: the worker that owns the vehicle; nothing here is shared but the read-only
 * configuration. Owns: each vehicle's tracks, window state, DTC set and roadside state.
 *
 * Samples. Each 1 Hz sample block (stream, twc, twc_nox) of a 0x02/0x03 frame is one sample.
 * Its rule time is the block's time (HJ 1239) or, in GB 17691 frames, the frame's time minus
 * the sample blocks after it; its evidence key is what daemon/pgrows.c stores, (sample_time =
 * the block's time, block_idx). Durations count samples: N minutes = 60 N qualifying samples,
 * so lost frames shorten a span (in the vehicle's favour) and engine-off pauses do not fill it.
 * A value the decoder marks as no measurement (invalid, abnormal, out of range) makes the
 * sample neutral for every rule that needs it: it neither extends nor breaks a span, and it
 * is left out of the NOx window series. Comparisons with limits allow 1e-9 relative, so a
 * value exactly at a limit is at it, whatever its binary rounding. A reload that makes the
 * reagent or nox_high limit more lenient restarts a span holding samples it no longer counts
 * (their lowest or highest value tells); a trip's NOx window keeps the limit and percentile it
 * started with, and its verdict says them.
 *
 * Trips and tracks. A trip is what lies between a login and a logout, or between gaps longer
 * than trip_gap_min in the samples' own times; a login that follows no logout (the terminal
 * reconnecting) does not end the trip. Spans and windows never cross a trip's end;
 * the NOx window is judged when the trip ends. Each vehicle has two tracks, each with its
 * own trip: the live track takes every sample newer than the newest it ever took, in time
 * order once it has a hole (the samples after a hole of backlog_hole_s seconds or more wait
 * for the hole's re-sent data, up to backlog_wait_min: s_hold, below); any other sample (a backlog
 * of what is older than the trip, or of a hole whose wait ended) goes to the back-fill track, which
 * starts a new trip whenever a sample is not newer than its last one, and a sample at a second
 * a track took already in its trip (it keeps the trip's gaps, s_gap) is a copy and not judged
 * again (s_copy). So a backlog that arrives in its own order forms trips by its own timestamps, as
 * live data would: what differs is only where it meets live data (there, the back-fill trip ends).
 * A logout ends the live trip; vem_rules_on_silence ends trips that received nothing for twice
 * trip_gap_min, measured on vemd's intake clock (receipt time less the time intake was paused: a
 * full spool stops vemd reading, and the trucks' data waits in their sockets meanwhile), and so
 * does the next sample of such a trip. A trip keeps the engine figures it started with.
 *
 * OBD snapshots. The MIL is judged by the snapshots' times, in whatever order they come (s_mil);
 * DTCs and the OBD VIN in their time order: a snapshot older than the newest seen is counted
 * (late_obd) and not used for them, since the DTC set is a state that only goes forward (and
 * a full set judges nothing until a clear, s_dtc).
 *
 * Memory per vehicle: this struct (about 1.9 KiB in a 2 KiB block, so it lies in one page: two
 * tracks with their window state inline);
 * while a trip is open with engine figures, the window ring (12 bytes a sample, at most
 * D_lim + 1 samples, rules_window.c) and the kept windows (12 bytes each, at most
 * VEM_RULES_WINDOW_KEEP + 256); the DTC set (4 bytes a code, at most VEM_RULES_DTC_MAX); the MIL
 * runs (40 bytes each, at most VEM_RULES_MIL_RUNS); while a trip is open with a whole minute of
 * SCR operation, its SCR window (24 bytes a minute of scr_minutes, at most
 * VEM_RULES_SCR_MINUTES_MAX); the fusion history (4 bytes per second of
 * fusion_horizon_s) and roadside chains (144 bytes a reading, at most VEM_RULES_CHAIN_HELD per
 * pollutant, rules_rsd.c); while a hole in the live trip waits, the samples held after it (32
 * bytes each, at most backlog_wait_min x 60 + 1: 19 KB at the default, on top of the 52 KiB);
 * from a track's first gap in a trip to its next trip's start, its gaps (8 bytes each, at most
 * VEM_RULES_GAPS_MAX: 4 KiB a track, for a terminal that skips seconds all day).
 * vem_rules_vehicle_bytes() sums what is allocated. The figures of a heavy truck (D_lim about
 * 1,700) make at most about 52 KiB in the middle of a long trip (2 KiB, a ring of 20 KiB, 27 KiB
 * of kept windows, the SCR window and the fusion history at their defaults); figures whose
 * window may span more (D_lim up to VEM_RULES_WINDOW_RING_MAX - 1) take up to 12 bytes more per
 * second of it.
 *
 * Cost. With thousands of vehicles a vehicle's state is rarely in the CPU caches when its
 * frame comes, and waiting for it costs more than judging the samples. So a frame is judged
 * in three steps: the vehicle's lines and the window ring and kept-window lines the frame
 * will touch are asked for first, and the samples' values and times are read from the frame
 * while they come (s_prepare); the per-sample rules run; then the frame's window inputs are
 * added (s_batch_t), last, so that the ring has had the longest to arrive. The fusion history
 * and the kept windows, each in pages of their own, are staged in the vehicle's lines and
 * written a few frames at a time (rules_rsd.c, rules_window.c). Each step sees
 * the samples in their order, so verdicts are those of a sample-by-sample pass (check_rules:
 * frames_of_any_size_give_the_same_verdicts). */
#include "rules_int.h"

#include "hj1239.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_US ((int64_t)1000000)

/* The per-sample rules, inlined where a sample is judged: in the frame's loop, for the live
 * track's next second (nearly every sample), and in s_sample_cold, for the rest. */
#define S_PER_SAMPLE static inline __attribute__((always_inline))

/* ---- state: the structs are in rules_int.h (rules_ckpt.c saves them) ---------------------- */

static void s_track_init(vem_rules_track_t *tr)
{
    memset(tr, 0, sizeof *tr);
    tr->newest = INT64_MIN;
}

vem_rules_vehicle_t *vem_rules_vehicle_alloc(void)
{
    size_t align = 64;
    while (align < sizeof(vem_rules_vehicle_t) && align < 4096)
        align *= 2;
    /* aligned_alloc wants a multiple of the alignment */
    size_t size = (sizeof(vem_rules_vehicle_t) + align - 1) / align * align;
    vem_rules_vehicle_t *self = aligned_alloc(align, size);
    if (!self)
        abort();
    memset(self, 0, size);
    self->bytes = size;
    return self;
}

vem_rules_vehicle_t *vem_rules_vehicle_new(const char *vin, const char *plate,
                                           const vem_rules_engine_facts_t *facts)
{
    if ((!vin || strlen(vin) != 17) && (!plate || !*plate))
        return NULL;
    vem_rules_vehicle_t *self = vem_rules_vehicle_alloc();
    vem_rules_vehicle_set_ids(self, vin, plate, NULL);
    vem_rules_vehicle_set_facts(self, facts);
    s_track_init(&self->live);
    s_track_init(&self->back);
    self->obd_newest = INT64_MIN;
    self->last_received_open_us = INT64_MIN;
    vem_rules_rsd_init(&self->rsd);
    return self;
}

void vem_rules_vehicle_destroy(vem_rules_vehicle_t **self_p)
{
    vem_rules_vehicle_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    vem_rules_window_stop(&self->live.win);
    vem_rules_window_stop(&self->back.win);
    free(self->live.scr_ring);
    free(self->back.scr_ring);
    free(self->live.gaps);
    free(self->back.gaps);
    free(self->dtcs);
    free(self->mil);
    free(self->held);
    vem_rules_rsd_free(&self->rsd, &self->bytes);
    free(self);
    *self_p = NULL;
}

void vem_rules_vehicle_set_facts(vem_rules_vehicle_t *self, const vem_rules_engine_facts_t *facts)
{
    if (facts)
        self->facts = *facts;
    else
        memset(&self->facts, 0, sizeof self->facts);
}

void vem_rules_vehicle_set_ids(vem_rules_vehicle_t *self, const char *vin, const char *plate,
                               const char *plate_color)
{
    if (vin && strlen(vin) == 17)
        memcpy(self->vin, vin, 18);
    if (plate)
        snprintf(self->plate, sizeof self->plate, "%s", plate);
    if (plate_color)
        snprintf(self->plate_color, sizeof self->plate_color, "%s", plate_color);
}

/* The plate and colour a roadside reading gives a vehicle that lacks them: the plate when it
 * has none (with the reading's colour), the colour when the plate is the reading's. The
 * colour tells apart vehicles that share a plate: a verdict known by plate must carry it. */
static void s_take_plate(vem_rules_vehicle_t *self, const vem_rsd_reading_t *r)
{
    if (!*r->plate)
        return;
    if (!*self->plate) {
        snprintf(self->plate, sizeof self->plate, "%s", r->plate);
        snprintf(self->plate_color, sizeof self->plate_color, "%s", r->plate_color);
    } else if (!*self->plate_color && strcmp(self->plate, r->plate) == 0) {
        snprintf(self->plate_color, sizeof self->plate_color, "%s", r->plate_color);
    }
}

const char *vem_rules_vehicle_plate_color(const vem_rules_vehicle_t *self)
{
    return self->plate_color;
}

size_t vem_rules_vehicle_bytes(const vem_rules_vehicle_t *self)
{
    return self->bytes;
}

const vem_rules_counts_t *vem_rules_vehicle_counts(const vem_rules_vehicle_t *self)
{
    return &self->counts;
}

void vem_rules_counts_add(vem_rules_counts_t *sum, const vem_rules_counts_t *was,
                          const vem_rules_counts_t *now)
{
    _Static_assert(sizeof *sum % sizeof(uint64_t) == 0, "the counts are u64s and nothing else");
    enum { N = sizeof *sum / sizeof(uint64_t) };
    uint64_t s[N], a[N], b[N];
    memcpy(s, sum, sizeof s);
    memcpy(a, was, sizeof a);
    memcpy(b, now, sizeof b);
    for (int i = 0; i < N; i++)
        s[i] += b[i] - a[i];
    memcpy(sum, s, sizeof s);
}

static vem_rules_who_t s_who(const vem_rules_vehicle_t *v)
{
    return (vem_rules_who_t){v->vin, v->plate, v->plate_color};
}

static vem_rules_rsd_ctx_t s_rsd_ctx(vem_rules_vehicle_t *v)
{
    return (vem_rules_rsd_ctx_t){s_who(v), v->facts.fuel, &v->counts, &v->bytes};
}

/* ---- comparisons and evidence ------------------------------------------------------------- */

static double s_tol(double limit)
{
    return 1e-9 * (fabs(limit) > 1 ? fabs(limit) : 1);
}

/* v strictly above limit */
static bool s_above(double v, double limit)
{
    return v > limit + s_tol(limit);
}

/* v strictly below limit */
static bool s_below(double v, double limit)
{
    return v < limit - s_tol(limit);
}

/* The bounds of the per-sample comparisons with a configured limit, tolerance included, worked
 * out once a frame: s_above(v, limit) is v > above, s_below(v, limit) is v < below. */
typedef struct {
    double reagent_above; /* reagent_min_pct */
    double nox_above;     /* nox_ppm_max */
    double scr_in_below;  /* scr_in_min_c */
    double scr_up_below;  /* scr_up_min_ppm */
    double coolant_below; /* warm_coolant_c */
} s_bounds_t;

static void s_bounds(const vem_rules_config_t *cfg, s_bounds_t *b)
{
    b->reagent_above = cfg->reagent_min_pct + s_tol(cfg->reagent_min_pct);
    b->nox_above = cfg->nox_ppm_max + s_tol(cfg->nox_ppm_max);
    b->scr_in_below = cfg->scr_in_min_c - s_tol(cfg->scr_in_min_c);
    b->scr_up_below = cfg->scr_up_min_ppm - s_tol(cfg->scr_up_min_ppm);
    b->coolant_below = cfg->warm_coolant_c - s_tol(cfg->warm_coolant_c);
}

/* The samples from first to last of the vehicle: what obd_samples holds for them. */
static json_t *s_samples_json(const vem_rules_vehicle_t *v, const vem_rules_at_t *first,
                              const vem_rules_at_t *last, uint32_t n)
{
    json_t *o = json_object();
    json_object_set_new(o, "vin", json_string(v->vin));
    json_object_set_new(o, "from", vem_rules_at_json(first));
    json_object_set_new(o, "to", vem_rules_at_json(last));
    json_object_set_new(o, "count", json_integer(n));
    return o;
}

static void s_anchor(char *buf, size_t len, int64_t sec, const char *kind)
{
    snprintf(buf, len, "t=%" PRId64 "%s%s", sec * S_US, kind ? "/" : "", kind ? kind : "");
}

/* Emits a verdict on the span's samples, the last of them at `at`. */
static void s_span_emit(vem_rules_vehicle_t *v, vem_rules_out_t *out, vem_rule_t rule,
                        const char *kind, const vem_rules_span_t *s, const vem_rules_at_t *at,
                        double measured, double limit, const char *unit, vem_severity_t severity,
                        json_t *ev)
{
    char anchor[64];
    s_anchor(anchor, sizeof anchor, s->first.sec, kind);
    if (kind)
        json_object_set_new(ev, "kind", json_string(kind));
    json_object_set_new(ev, "samples", s_samples_json(v, &s->first, at, s->n));
    vem_rules_verdict_t verdict = {
        rule, anchor, s->first.sec * S_US, at->sec * S_US, measured, limit, unit, severity, ev};
    vem_rules_who_t who = s_who(v);
    vem_rules_emit(out, &who, &verdict);
}

/* One step of a span: q extends it, brk ends it, neither leaves it as it is. Returns true
 * when the sample extended it. */
static bool s_step(vem_rules_span_t *s, bool q, bool brk, const vem_rules_at_t *at)
{
    if (q) {
        if (s->n == 0) {
            s->first = *at;
            s->fired = false;
        }
        s->n++;
        return true;
    }
    if (brk)
        s->n = 0;
    return false;
}

static void s_minmax(vem_rules_span_t *s, double x)
{
    if (s->n == 1 || x < s->lo)
        s->lo = x;
    if (s->n == 1 || x > s->hi)
        s->hi = x;
}

/* ---- trips -------------------------------------------------------------------------------- */

static vem_rules_window_params_t s_window_params(const vem_rules_config_t *cfg,
                                                 const vem_rules_engine_facts_t *facts)
{
    return (vem_rules_window_params_t){
        .ref_torque_nm = facts->ref_torque_nm,
        .rated_power_kw = facts->rated_power_kw,
        .whtc_work_kwh = facts->whtc_work_kwh,
        .fuel_density_kg_l = cfg->fuel_density_kg_l,
        .nox_u = cfg->nox_u,
        .min_power_frac = cfg->window_min_power_pct / 100,
        .limit_mg_kwh = cfg->nox_window_mg_kwh,
        .percentile = cfg->nox_percentile,
    };
}

/* Lets a track's gaps go (s_gap). */
static void s_gaps_free(vem_rules_vehicle_t *v, vem_rules_track_t *tr)
{
    free(tr->gaps);
    v->bytes -= (size_t)tr->gaps_cap * sizeof *tr->gaps;
    tr->gaps = NULL;
    tr->ngaps = tr->gaps_cap = tr->gaps_head = 0;
}

static void s_trip_start(vem_rules_vehicle_t *v, vem_rules_track_t *tr,
                         const vem_rules_config_t *cfg, const vem_rules_at_t *at)
{
    int64_t newest = tr->newest;
    s_gaps_free(v, tr); /* the trip before's (kept for s_copy while it was the track's last) */
    s_track_init(tr);
    tr->newest = newest;
    tr->open = true;
    tr->start = *at;
    tr->running = -1;
    tr->engine_start = at->sec;
    tr->figures = v->facts;
    vem_rules_window_params_t p = s_window_params(cfg, &v->facts);
    tr->fallback = !vem_rules_window_usable(&p);
    if (!tr->fallback && cfg->enabled[VEM_RULE_OBD_NOX_WINDOW])
        vem_rules_window_start(&tr->win, &p, at->sec, &v->bytes);
}

static void s_window_emit(vem_rules_vehicle_t *v, vem_rules_track_t *tr,
                          const vem_rules_window_result_t *r, vem_rules_out_t *out)
{
    json_t *trip = json_object();
    json_object_set_new(trip, "track", json_string(tr == &v->live ? "live" : "backfill"));
    json_object_set_new(trip, "start", vem_rules_iso_json(tr->start.sec * S_US));
    json_object_set_new(trip, "end", vem_rules_iso_json(tr->last.sec * S_US));
    json_object_set_new(trip, "samples", s_samples_json(v, &tr->start, &tr->last, tr->samples));
    json_t *fig = json_object();
    json_object_set_new(fig, "ref_torque_nm", json_real(tr->figures.ref_torque_nm));
    json_object_set_new(fig, "rated_power_kw", json_real(tr->figures.rated_power_kw));
    json_object_set_new(fig, "whtc_work_kwh", json_real(tr->figures.whtc_work_kwh));
    json_t *around = json_array();
    for (unsigned i = 0; i < r->naround; i++) {
        json_t *w = json_object();
        json_object_set_new(w, "rank", json_integer(r->around[i].rank));
        json_object_set_new(w, "start", vem_rules_iso_json(r->around[i].start * S_US));
        json_object_set_new(w, "end", vem_rules_iso_json(r->around[i].end * S_US));
        json_object_set_new(w, "nox_mg_kwh", json_real(r->around[i].nox_mg_kwh));
        json_array_append_new(around, w);
    }
    json_t *ev = json_object();
    json_object_set_new(ev, "trip", trip);
    json_object_set_new(ev, "figures", fig);
    json_object_set_new(ev, "window_samples", json_integer(r->samples));
    json_object_set_new(ev, "windows", json_integer(r->windows));
    json_object_set_new(ev, "valid_windows", json_integer(r->valid));
    json_object_set_new(ev, "over_limit_windows", json_integer(r->over));
    /* the figures the trip was judged by (a reload since its start does not change them) */
    json_object_set_new(ev, "percentile", json_integer(tr->win.percentile));
    json_object_set_new(ev, "rank", json_integer(r->rank));
    json_object_set_new(ev, "percentile_mg_kwh", vem_rules_real_json(r->percentile_mg_kwh));
    json_object_set_new(ev, "percentile_exact", json_boolean(r->exact));
    json_object_set_new(ev, "around", around);
    char anchor[64];
    s_anchor(anchor, sizeof anchor, tr->start.sec, NULL);
    vem_rules_verdict_t verdict = {VEM_RULE_OBD_NOX_WINDOW,
                                   anchor,
                                   tr->start.sec * S_US,
                                   tr->last.sec * S_US,
                                   r->percentile_mg_kwh,
                                   tr->win.limit_mg_kwh,
                                   "mg/kWh",
                                   VEM_SEVERITY_VIOLATION,
                                   ev};
    vem_rules_who_t who = s_who(v);
    vem_rules_emit(out, &who, &verdict);
}

static void s_trip_end(vem_rules_vehicle_t *v, vem_rules_track_t *tr, const vem_rules_config_t *cfg,
                       vem_rules_out_t *out)
{
    if (!tr->open)
        return;
    if (tr->win.active) {
        vem_rules_window_result_t r;
        vem_rules_window_result(&tr->win, &r);
        if (r.fails && cfg->enabled[VEM_RULE_OBD_NOX_WINDOW])
            s_window_emit(v, tr, &r, out);
        vem_rules_window_stop(&tr->win);
    }
    /* the SCR window does not cross the trip's end either */
    free(tr->scr_ring);
    v->bytes -= (size_t)tr->scr_cap * sizeof *tr->scr_ring;
    tr->scr_ring = NULL;
    tr->scr_cap = tr->scr_held = tr->scr_next = 0;
    tr->open = false;
}

/* A sample's values (read by s_values below). */
typedef struct {
    vem_rules_window_in_t win; /* rpm, torque, friction, intake, fuel, downstream NOx, time */
    double nox_up, reagent, scr_in, coolant;
    uint32_t nox_up_raw, nox_down_raw;
    uint32_t missing; /* NOx and intake fields the block has but without a value */
    bool stream;      /* a diesel stream block (the only kind the window takes) */
    bool window;      /* a stream block with every NOx-window input valid */
} s_values_t;

/* One sample of a frame, read before the vehicle's state is touched. */
typedef struct {
    s_values_t x;
    vem_rules_at_t at;
} s_prep_t;

/* The NOx-window inputs of a frame's samples are added after the frame's other rules have
 * run, so that the ring and kept-window lines prefetched when the frame starts arrive from
 * memory meanwhile. Only the order within a track matters to the window, so the batch is
 * added before a sample of the other track joins it and before its track's trip ends. */
typedef struct {
    vem_rules_track_t *tr; /* the track of the samples it holds */
    unsigned n;
    const vem_rules_window_in_t *in[VEM_HJ1239_MAX_BLOCKS];
} s_batch_t;

static void s_batch_flush(s_batch_t *bt)
{
    if (bt->n)
        vem_rules_window_add(&bt->tr->win, bt->in, bt->n);
    bt->n = 0;
}

/* Nothing received for this long ends a trip: twice the gap in the data that ends one, so that
 * frames carrying minutes of samples, or a link that drops for less and then re-sends what it
 * held (0x03), do not end a trip their data continues. */
static int64_t s_silence_us(const vem_rules_config_t *cfg)
{
    return (int64_t)cfg->trip_gap_min * 2 * 60 * S_US;
}

/* A gap in the open trip of tr, before a sample at t: its seconds from the one after the last on,
 * which the track did not take (s_copy). Only the newest VEM_RULES_GAPS_MAX are known: with one
 * more, the oldest goes and whole_from moves past it (a copy of a second before it is judged
 * again, on the back-fill track). A whole range with nothing in it (a track loaded from a
 * checkpoint of version 11 or older starts it after its last second), a trip past what a gap's
 * offset holds (136 years of data, from a crafted checkpoint or clock), or a sample not after
 * the last (a damaged checkpoint's newest) forgets its gaps and starts its whole range here. */
static __attribute__((noinline)) void s_gap(vem_rules_vehicle_t *v, vem_rules_track_t *tr,
                                            int64_t t)
{
    int64_t from = tr->last.sec + 1;
    if (t <= from || t - tr->start.sec > (int64_t)UINT32_MAX || from < tr->start.sec ||
        from <= tr->whole_from) {
        s_gaps_free(v, tr);
        tr->whole_from = t;
        return;
    }
    if (tr->ngaps == VEM_RULES_GAPS_MAX) {
        const vem_rules_gap_t *old = vem_rules_gap_at(tr, 0);
        tr->whole_from = tr->start.sec + old->off + old->len;
        tr->gaps_head = (uint16_t)((tr->gaps_head + 1) & (tr->gaps_cap - 1));
        tr->ngaps--;
    }
    if (tr->ngaps == tr->gaps_cap) {
        /* doubled, oldest first from 0 */
        uint32_t cap = tr->gaps_cap ? tr->gaps_cap * 2u : 8;
        vem_rules_gap_t *grown = malloc(cap * sizeof *grown);
        if (!grown)
            abort();
        for (uint32_t i = 0; i < tr->ngaps; i++)
            grown[i] = *vem_rules_gap_at(tr, i);
        free(tr->gaps);
        v->bytes += (cap - tr->gaps_cap) * sizeof *tr->gaps;
        tr->gaps = grown;
        tr->gaps_cap = (uint16_t)cap;
        tr->gaps_head = 0;
    }
    *vem_rules_gap_at(tr, tr->ngaps) =
        (vem_rules_gap_t){(uint32_t)(from - tr->start.sec), (uint32_t)(t - from)};
    tr->ngaps++;
}

/* The track a sample at `at` belongs to, with its trip open. */
S_PER_SAMPLE vem_rules_track_t *s_route(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg,
                                        const vem_rules_at_t *at, int64_t open_us, s_batch_t *bt,
                                        vem_rules_out_t *out)
{
    int64_t gap = (int64_t)cfg->trip_gap_min * 60;
    vem_rules_track_t *tr;
    if (at->sec > v->live.newest) {
        tr = &v->live;
    } else {
        v->counts.late_samples++;
        tr = &v->back;
    }
    if (bt->n && bt->tr != tr)
        s_batch_flush(bt);
    /* A trip ends at a gap in its data, and at a pause in receipt that the silence sweep ends
     * it at live (vem_rules_on_silence): the spool keeps each input's receipt time and intake's
     * paused total, so a replay, which has no sweep, ends the same trips; and at its most
     * samples (VEM_RULES_TRIP_SAMPLES_MAX) */
    if (tr->open &&
        (at->sec - tr->last.sec > gap || open_us - tr->last_open_us > s_silence_us(cfg) ||
         (tr == &v->back && at->sec <= tr->last.sec) ||
         tr->samples == VEM_RULES_TRIP_SAMPLES_MAX)) {
        s_batch_flush(bt);
        s_trip_end(v, tr, cfg, out);
    }
    bt->tr = tr;
    if (!tr->open) {
        s_trip_start(v, tr, cfg, at);
        tr->whole_from = at->sec;
    } else if (at->sec != tr->last.sec + 1) {
        s_gap(v, tr, at->sec); /* a skip or a hole */
    }
    tr->newest = at->sec;
    tr->last = *at;
    tr->last_open_us = open_us;
    tr->samples++;
    return tr;
}

/* ---- samples ------------------------------------------------------------------------------ */

/* The fields the rules read, and how to read them: scale, offset and largest measurement
 * (hj1239.md). They are the decoder's (vem_hj1239_field_info), copied here so the per-sample
 * path reads constants; check_rules compares the two tables. */
enum {
    S_RPM,
    S_TORQUE,
    S_FRICTION,
    S_FUEL,
    S_INTAKE,
    S_COOLANT,
    S_NOX_UP,
    S_NOX_DOWN,
    S_REAGENT,
    S_SCR_IN,
    S_FIELDS
};

static const struct {
    vem_hj1239_field_t id;
    double scale, offset;
    uint32_t max_raw;
} s_fields[S_FIELDS] = {
    [S_RPM] = {VEM_HJ1239_F_RPM, 0.125, 0, 0xFAFF},
    [S_TORQUE] = {VEM_HJ1239_F_TORQUE, 1, -125, 250},
    [S_FRICTION] = {VEM_HJ1239_F_FRICTION, 1, -125, 250},
    [S_FUEL] = {VEM_HJ1239_F_FUEL_RATE, 0.05, 0, 0xFAFF},
    [S_INTAKE] = {VEM_HJ1239_F_INTAKE, 0.05, 0, 0xFAFF},
    [S_COOLANT] = {VEM_HJ1239_F_COOLANT, 1, -40, 250},
    [S_NOX_UP] = {VEM_HJ1239_F_NOX_UP, 0.05, -200, 0xFAFF},
    [S_NOX_DOWN] = {VEM_HJ1239_F_NOX_DOWN, 0.05, -200, 0xFAFF},
    [S_REAGENT] = {VEM_HJ1239_F_REAGENT, 0.4, 0, 250},
    [S_SCR_IN] = {VEM_HJ1239_F_SCR_IN, 0.03125, -273, 0xFAFF},
};

_Static_assert(S_FIELDS == VEM_RULES_HELD_FIELDS, "a held sample keeps each field s_fields has");

bool vem_rules_fields_match_decoder(void)
{
    for (int k = 0; k < S_FIELDS; k++) {
        const vem_hj1239_field_info_t *fi = vem_hj1239_field_info(s_fields[k].id);
        if (fi->scale != s_fields[k].scale || fi->offset != s_fields[k].offset ||
            fi->max_raw != s_fields[k].max_raw || fi->width > 2 /* a held sample's u16 */)
            return false;
    }
    return true;
}

/* The physical value, or NaN for a marker or a value out of range. */
static inline double s_get(const vem_hj1239_block_t *b, int k)
{
    uint32_t raw = b->raw[s_fields[k].id];
    return raw > s_fields[k].max_raw ? NAN : raw * s_fields[k].scale + s_fields[k].offset;
}

/* A sample's values; fields its block type lacks are NaN and not `missing`. */
S_PER_SAMPLE void s_values(const vem_hj1239_block_t *b, s_values_t *x)
{
    x->win.rpm = s_get(b, S_RPM);
    x->win.torque_pct = s_get(b, S_TORQUE);
    x->win.friction_pct = s_get(b, S_FRICTION);
    x->win.fuel_lph = s_get(b, S_FUEL);
    x->win.intake_kgph = s_get(b, S_INTAKE);
    x->coolant = s_get(b, S_COOLANT);
    x->win.nox_ppm = x->nox_up = x->reagent = x->scr_in = NAN;
    x->nox_up_raw = b->raw[VEM_HJ1239_F_NOX_UP];
    x->nox_down_raw = b->raw[VEM_HJ1239_F_NOX_DOWN];
    x->missing = isnan(x->win.intake_kgph) ? 1u << VEM_HJ1239_F_INTAKE : 0;
    if (b->type == VEM_HJ1239_BLOCK_STREAM) {
        x->nox_up = s_get(b, S_NOX_UP);
        x->reagent = s_get(b, S_REAGENT);
        x->scr_in = s_get(b, S_SCR_IN);
        if (isnan(x->nox_up))
            x->missing |= 1u << VEM_HJ1239_F_NOX_UP;
    }
    if (b->type == VEM_HJ1239_BLOCK_STREAM || b->type == VEM_HJ1239_BLOCK_TWC_NOX) {
        x->win.nox_ppm = s_get(b, S_NOX_DOWN);
        if (isnan(x->win.nox_ppm))
            x->missing |= 1u << VEM_HJ1239_F_NOX_DOWN;
    }
    x->stream = b->type == VEM_HJ1239_BLOCK_STREAM;
    x->window = x->stream && !isnan(x->win.torque_pct) && !isnan(x->win.friction_pct) &&
                !isnan(x->win.rpm) && !isnan(x->win.intake_kgph) && !isnan(x->win.fuel_lph) &&
                !isnan(x->win.nox_ppm);
}

S_PER_SAMPLE void s_reagent(vem_rules_vehicle_t *v, vem_rules_track_t *tr,
                            const vem_rules_config_t *cfg, const s_bounds_t *bd,
                            const s_values_t *x, bool running, const vem_rules_at_t *at,
                            vem_rules_out_t *out)
{
    vem_rules_span_t *s = &tr->reagent;
    bool valid = !isnan(x->reagent);
    bool low = valid && !(x->reagent > bd->reagent_above);
    if (!s_step(s, running && low, valid && !low, at))
        return;
    if (!s->fired && s->n > 1 && s->hi > bd->reagent_above)
        s->n = 0; /* a reload lowered the limit: what the span held is not empty now (a span
                   * already judged stays one episode) */
    if (s->n == 0)
        s_step(s, true, false, at);
    s_minmax(s, x->reagent);
    if (s->fired || s->n < cfg->reagent_minutes * 60)
        return;
    s->fired = true;
    json_t *ev = json_object();
    json_object_set_new(ev, "reagent_pct_max", json_real(s->hi));
    json_object_set_new(ev, "reagent_pct_min", json_real(s->lo));
    s_span_emit(v, out, VEM_RULE_OBD_REAGENT_EMPTY, NULL, s, at, s->hi, cfg->reagent_min_pct, "%",
                VEM_SEVERITY_VIOLATION, ev);
}

/* The nox_high span's value for a sample the window cannot use: its window inputs without a
 * value (bits by field), and S_NOT_STREAM when its block is not a diesel stream block. */
#define S_NOT_STREAM (1u << 31)

static uint32_t s_unusable(const s_values_t *x)
{
    uint32_t m = x->stream ? 0 : S_NOT_STREAM;
    m |= isnan(x->win.torque_pct) ? 1u << VEM_HJ1239_F_TORQUE : 0;
    m |= isnan(x->win.friction_pct) ? 1u << VEM_HJ1239_F_FRICTION : 0;
    m |= isnan(x->win.rpm) ? 1u << VEM_HJ1239_F_RPM : 0;
    m |= isnan(x->win.intake_kgph) ? 1u << VEM_HJ1239_F_INTAKE : 0;
    m |= isnan(x->win.fuel_lph) ? 1u << VEM_HJ1239_F_FUEL_RATE : 0;
    return m;
}

/* The evidence of why the window could not judge a nox_high span's samples on a track with
 * engine figures: the fields they lacked, as a list and in the reason. */
static void s_unusable_json(json_t *ev, uint32_t m)
{
    json_t *names = json_array();
    char reason[200] = "samples without the window's inputs: ";
    size_t len = strlen(reason);
    for (unsigned f = 0; f < 32; f++) {
        if (!(m >> f & 1))
            continue;
        const char *name =
            f == 31 ? "diesel stream block" : vem_hj1239_field_info((vem_hj1239_field_t)f)->name;
        json_array_append_new(names, json_string(name));
        int k = snprintf(reason + len, sizeof reason - len, "%s%s",
                         json_array_size(names) > 1 ? ", " : "", name);
        len += k > 0 && (size_t)k < sizeof reason - len ? (size_t)k : 0;
    }
    json_object_set_new(ev, "window_inputs_missing", names);
    json_object_set_new(ev, "reason", json_string(reason));
}

/* rules.md has obd.nox_high as the fallback when the engine's figures are unknown. A trip
 * with figures judges by it the warm samples the window cannot use (friction torque 0xFF,
 * "not available", is common): else a truck whose blocks lack one window input would escape
 * every NOx rule. There a sample the window takes ends the span: it is the window's to judge,
 * and nox_high stays a fallback for runs of samples the window gets none of. */
S_PER_SAMPLE void s_nox_high(vem_rules_vehicle_t *v, vem_rules_track_t *tr,
                             const vem_rules_config_t *cfg, const s_bounds_t *bd,
                             const s_values_t *x, bool warm, const vem_rules_at_t *at,
                             vem_rules_out_t *out)
{
    vem_rules_span_t *s = &tr->nox_high;
    bool valid = warm && !isnan(x->win.nox_ppm);
    bool high = valid && x->win.nox_ppm > bd->nox_above;
    bool brk = valid && !high;
    if (!tr->fallback && x->window) {
        high = false;
        brk = true;
    }
    bool step = s_step(s, high, brk, at);
    tr->nox_high_held = s->n > 0;
    if (!step)
        return;
    if (!s->fired && s->n > 1 && !(s->lo > bd->nox_above))
        s->n = 0; /* a reload raised the limit: what the span held is not high now (a span
                   * already judged stays one episode) */
    if (s->n == 0)
        s_step(s, true, false, at);
    s_minmax(s, x->win.nox_ppm);
    if (!tr->fallback)
        s->value = (s->n == 1 ? 0 : s->value) | s_unusable(x);
    if (s->fired || s->n < cfg->nox_minutes * 60)
        return;
    s->fired = true;
    json_t *ev = json_object();
    json_object_set_new(ev, "nox_down_ppm_min", json_real(s->lo));
    json_object_set_new(ev, "nox_down_ppm_max", json_real(s->hi));
    if (tr->fallback)
        json_object_set_new(ev, "reason", json_string("no usable engine figures in the registry"));
    else
        s_unusable_json(ev, s->value);
    s_span_emit(v, out, VEM_RULE_OBD_NOX_HIGH, NULL, s, at, s->lo, cfg->nox_ppm_max, "ppm",
                VEM_SEVERITY_NOTICE, ev);
}

/* obd.scr_ineffective: the conversion 1 - down/up (a ratio of sums) over a window of
 * scr_minutes of qualifying operation (running, SCR inlet and upstream NOx at or above their
 * minimums, downstream NOx valid) that slides by whole minutes of it, 60 qualifying samples
 * each. A sample adds its raw NOx to the minute being filled (a couple of additions); each time
 * a minute is whole it goes into the track's ring of the last scr_minutes (s_scr_minute), and
 * once the ring holds that many the window is judged. A sample that does not qualify neither
 * breaks nor extends the window; the trip's end ends it. The first window below scr_eff_min
 * fires, once a trip: that is the episode, and the windows after it would repeat it. */
static void s_scr_resize(vem_rules_vehicle_t *v, vem_rules_track_t *tr, unsigned cap)
{
    /* A reload that changes scr_minutes (and the trip's first whole minute, with no ring yet):
     * the ring gets room for the new length and keeps the newest minutes it held, up to that
     * many, so the window goes on as the last scr_minutes of the trip's qualifying operation. At
     * most VEM_RULES_SCR_MINUTES_MAX minutes (24 bytes each) a track. */
    vem_rules_scr_minute_t *ring = malloc((size_t)cap * sizeof *ring);
    if (!ring)
        abort();
    unsigned keep = tr->scr_held < cap ? tr->scr_held : cap;
    for (unsigned i = 0; i < keep; i++)
        ring[i] = tr->scr_ring[(tr->scr_next + tr->scr_cap - keep + i) % tr->scr_cap];
    free(tr->scr_ring);
    v->bytes += (size_t)cap * sizeof *ring;
    v->bytes -= (size_t)tr->scr_cap * sizeof *ring;
    tr->scr_ring = ring;
    tr->scr_cap = (uint16_t)cap;
    tr->scr_held = (uint16_t)keep;
    tr->scr_next = (uint16_t)(keep % cap);
}

/* The minute being filled is whole: into the ring, and the window judged when it is full. */
static void s_scr_minute(vem_rules_vehicle_t *v, vem_rules_track_t *tr,
                         const vem_rules_config_t *cfg, const vem_rules_at_t *at,
                         vem_rules_out_t *out)
{
    if (tr->scr_cap != cfg->scr_minutes)
        s_scr_resize(v, tr, cfg->scr_minutes);
    tr->scr_ring[tr->scr_next] = tr->scr_fill;
    tr->scr_next = (uint16_t)(tr->scr_next + 1 == tr->scr_cap ? 0 : tr->scr_next + 1);
    if (tr->scr_held < tr->scr_cap)
        tr->scr_held++;
    memset(&tr->scr_fill, 0, sizeof tr->scr_fill);
    tr->scr_n = 0;
    if (tr->scr_held < tr->scr_cap)
        return;
    /* full: the oldest minute is the next one to be overwritten */
    uint64_t up = 0, down = 0;
    for (unsigned i = 0; i < tr->scr_cap; i++) {
        up += tr->scr_ring[i].up;
        down += tr->scr_ring[i].down;
    }
    uint32_t n = (uint32_t)tr->scr_cap * VEM_RULES_SCR_MINUTE;
    double up_sum = s_fields[S_NOX_UP].scale * (double)up + s_fields[S_NOX_UP].offset * n;
    double down_sum = s_fields[S_NOX_DOWN].scale * (double)down + s_fields[S_NOX_DOWN].offset * n;
    double eff = 1 - down_sum / up_sum; /* up_sum > 0: every sample's upstream is */
    if (!s_below(eff, cfg->scr_eff_min))
        return;
    tr->scr_fired = true;
    vem_rules_span_t s = {.n = n, .first = tr->scr_ring[tr->scr_next].first};
    json_t *ev = json_object();
    json_object_set_new(ev, "minutes", json_integer(tr->scr_cap));
    json_object_set_new(ev, "nox_up_ppm_mean", json_real(up_sum / n));
    json_object_set_new(ev, "nox_down_ppm_mean", json_real(down_sum / n));
    json_object_set_new(ev, "conversion", json_real(eff));
    s_span_emit(v, out, VEM_RULE_OBD_SCR_INEFFECTIVE, NULL, &s, at, eff, cfg->scr_eff_min, "ratio",
                VEM_SEVERITY_VIOLATION, ev);
}

S_PER_SAMPLE void s_scr(vem_rules_vehicle_t *v, vem_rules_track_t *tr,
                        const vem_rules_config_t *cfg, const s_bounds_t *bd, const s_values_t *x,
                        bool running, const vem_rules_at_t *at, vem_rules_out_t *out)
{
    bool q = running && !isnan(x->scr_in) && !(x->scr_in < bd->scr_in_below) && !isnan(x->nox_up) &&
             !(x->nox_up < bd->scr_up_below) && !isnan(x->win.nox_ppm);
    if (!q || tr->scr_fired)
        return;
    if (tr->scr_n == 0)
        tr->scr_fill.first = *at;
    /* raw values: a valid one is at most 0xFAFF (s_get), so a minute's sum fits */
    tr->scr_fill.up += x->nox_up_raw;
    tr->scr_fill.down += x->nox_down_raw;
    if (++tr->scr_n == VEM_RULES_SCR_MINUTE)
        s_scr_minute(v, tr, cfg, at, out);
}

S_PER_SAMPLE void s_frozen(vem_rules_vehicle_t *v, vem_rules_track_t *tr,
                           const vem_rules_config_t *cfg, const s_values_t *x, bool running,
                           const vem_rules_at_t *at, vem_rules_out_t *out)
{
    vem_rules_span_t *s = &tr->frozen;
    if (isnan(x->win.nox_ppm))
        return; /* a sentinel neither breaks nor extends */
    bool same = s->n > 0 && x->nox_down_raw == s->value;
    if (!running) {
        if (!same)
            s->n = 0;
        return;
    }
    if (!same) {
        s->n = 0;
        s->value = x->nox_down_raw;
    }
    s_step(s, true, false, at);
    s_minmax(s, x->win.rpm);
    if (s->fired || s->n < cfg->frozen_minutes * 60 || s->hi - s->lo < cfg->frozen_rpm_span)
        return;
    s->fired = true;
    json_t *ev = json_object();
    json_object_set_new(ev, "nox_down_ppm", json_real(x->win.nox_ppm));
    json_object_set_new(ev, "rpm_min", json_real(s->lo));
    json_object_set_new(ev, "rpm_max", json_real(s->hi));
    s_span_emit(v, out, VEM_RULE_OBD_TAMPER, "frozen_nox", s, at, s->n / 60.0, cfg->frozen_minutes,
                "min", VEM_SEVERITY_VIOLATION, ev);
}

S_PER_SAMPLE void s_down_up(vem_rules_vehicle_t *v, vem_rules_track_t *tr,
                            const vem_rules_config_t *cfg, const s_values_t *x, bool warm,
                            const vem_rules_at_t *at, vem_rules_out_t *out)
{
    vem_rules_span_t *s = &tr->down_up;
    bool valid = warm && !isnan(x->win.nox_ppm) && !isnan(x->nox_up);
    bool above = valid && s_above(x->win.nox_ppm, x->nox_up);
    if (!s_step(s, above, valid && !above, at))
        return;
    s_minmax(s, x->win.nox_ppm - x->nox_up);
    if (s->fired || s->n < cfg->down_above_up_minutes * 60)
        return;
    s->fired = true;
    json_t *ev = json_object();
    json_object_set_new(ev, "excess_ppm_min", json_real(s->lo));
    json_object_set_new(ev, "excess_ppm_max", json_real(s->hi));
    s_span_emit(v, out, VEM_RULE_OBD_TAMPER, "down_above_up", s, at, s->n / 60.0,
                cfg->down_above_up_minutes, "min", VEM_SEVERITY_NOTICE, ev);
}

S_PER_SAMPLE void s_invalid_signals(vem_rules_vehicle_t *v, vem_rules_track_t *tr,
                                    const vem_rules_config_t *cfg, const s_values_t *x,
                                    bool running, const vem_rules_at_t *at, vem_rules_out_t *out)
{
    vem_rules_span_t *s = &tr->invalid;
    if (!s_step(s, running && x->missing, running && !x->missing, at))
        return;
    s->value = s->n == 1 ? x->missing : s->value | x->missing;
    if (s->fired || s->n < cfg->invalid_minutes * 60)
        return;
    s->fired = true;
    json_t *fields = json_array();
    for (unsigned f = 0; f < 32; f++)
        if (s->value >> f & 1)
            json_array_append_new(fields,
                                  json_string(vem_hj1239_field_info((vem_hj1239_field_t)f)->name));
    json_t *ev = json_object();
    json_object_set_new(ev, "fields", fields);
    s_span_emit(v, out, VEM_RULE_OBD_TAMPER, "invalid_signals", s, at, s->n / 60.0,
                cfg->invalid_minutes, "min", VEM_SEVERITY_NOTICE, ev);
}

/* Inlined in the frame's loop, where a sample takes the live track's next second (nearly all);
 * the rest call s_sample_cold. */
S_PER_SAMPLE void s_sample(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg,
                           const s_bounds_t *bd, const s_prep_t *p, int64_t open_us, s_batch_t *bt,
                           vem_rules_out_t *out)
{
    const s_values_t *xp = &p->x;
    const vem_rules_at_t *at = &p->at;
    vem_rules_track_t *tr = s_route(v, cfg, at, open_us, bt, out);
    v->counts.samples++;
    bool running = !isnan(xp->win.rpm) && xp->win.rpm > 0;
    if (!isnan(xp->win.rpm)) {
        if (running && tr->running != 1)
            tr->engine_start = at->sec;
        tr->running = running;
    }
    bool warm = running && ((!isnan(xp->coolant) && !(xp->coolant < bd->coolant_below)) ||
                            at->sec - tr->engine_start >= cfg->warm_after_start_min * 60);
    const bool *on = cfg->enabled;
    if (on[VEM_RULE_OBD_REAGENT_EMPTY])
        s_reagent(v, tr, cfg, bd, xp, running, at, out);
    /* with figures: the samples the window cannot use, and those that end such a span */
    if (on[VEM_RULE_OBD_NOX_HIGH] && (tr->fallback || !xp->window || tr->nox_high_held))
        s_nox_high(v, tr, cfg, bd, xp, warm, at, out);
    if (on[VEM_RULE_OBD_SCR_INEFFECTIVE])
        s_scr(v, tr, cfg, bd, xp, running, at, out);
    if (on[VEM_RULE_OBD_TAMPER]) {
        s_frozen(v, tr, cfg, xp, running, at, out);
        s_down_up(v, tr, cfg, xp, warm, at, out);
        s_invalid_signals(v, tr, cfg, xp, running, at, out);
    }
    if (tr->win.active && xp->window)
        bt->in[bt->n++] = &xp->win;
}

static __attribute__((noinline)) void
s_sample_cold(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg, const s_bounds_t *bd,
              const s_prep_t *p, int64_t open_us, s_batch_t *bt, vem_rules_out_t *out)
{
    s_sample(v, cfg, bd, p, open_us, bt, out);
}

/* A vehicle's array of *cap elements of size bytes doubled (first when empty), its bytes
 * counted in *bytes; the caller bounds how far it grows. */
static void *s_grow(void *p, uint32_t *cap, uint32_t first, size_t size, size_t *bytes)
{
    uint32_t n = *cap ? *cap * 2 : first;
    void *grown = realloc(p, n * size);
    if (!grown)
        abort();
    *bytes += (n - *cap) * size;
    *cap = n;
    return grown;
}

/* ---- OBD snapshots ------------------------------------------------------------------------ */

static json_t *s_snapshot_json(const vem_rules_vehicle_t *v, const vem_rules_at_t *at)
{
    json_t *o = json_object();
    json_object_set_new(o, "vin", json_string(v->vin));
    json_object_set_new(o, "info_time", vem_rules_iso_json((at->sec + at->key_off) * S_US));
    json_object_set_new(o, "block_idx", json_integer(at->key_idx));
    return o;
}

static void s_snapshot_emit(vem_rules_vehicle_t *v, vem_rules_out_t *out, vem_rule_t rule,
                            const char *kind, const vem_rules_at_t *first,
                            const vem_rules_at_t *last, double measured, double limit,
                            const char *unit, vem_severity_t severity, json_t *ev)
{
    char anchor[64];
    s_anchor(anchor, sizeof anchor, first->sec, kind);
    if (kind)
        json_object_set_new(ev, "kind", json_string(kind));
    vem_rules_verdict_t verdict = {
        rule, anchor, first->sec * S_US, last->sec * S_US, measured, limit, unit, severity, ev};
    vem_rules_who_t who = s_who(v);
    vem_rules_emit(out, &who, &verdict);
}

/* The verdict of the MIL episode starting at first: the notice, or the violation at the
 * snapshot `at` that showed it on more than mil_days after. */
static void s_mil_emit(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg,
                       const vem_rules_at_t *first, const vem_rules_at_t *at, bool escalate,
                       vem_rules_out_t *out)
{
    int64_t on_s = at->sec - first->sec;
    json_t *ev = json_object();
    json_object_set_new(ev, "on_since", s_snapshot_json(v, first));
    json_object_set_new(ev, "on_at", s_snapshot_json(v, at));
    s_snapshot_emit(v, out, VEM_RULE_OBD_MIL_ON, NULL, first, at, on_s / 86400.0, cfg->mil_days,
                    "d", escalate ? VEM_SEVERITY_VIOLATION : VEM_SEVERITY_NOTICE, ev);
}

/* MIL episodes by the snapshots' times, whatever order they come in. The snapshots form runs
 * of one state, each snapshot within trip_gap_min of the next (data that came as it was
 * measured); an episode is a series of "on" runs with no "off" run between them, its start the
 * first of its first run, its end the last of its last. A snapshot joins the run it falls in or
 * is near with the same state (joining two when it bridges them), or starts a run of its own:
 * so a re-sent backlog of a stretch without data (a gap longer than trip_gap_min) can begin an
 * episode earlier, extend it, or end it and begin another. Verdicts, after every change, are
 * those time order emits: for each episode the notice at its start, and the violation once
 * its end is more than mil_days after its start (evidence: its last snapshot). A start that
 * moves earlier is a new episode id (the later start's notice stays emitted); an episode that
 * a late "off" splits is emitted again under its id as the part before the split now stands
 * (a notice again when that part is not more than mil_days long), and the part after it is
 * judged as an episode of its own. Not placed (late_mil): a snapshot that falls inside a run of the
 * other state (the snapshots around it are not held), or before the oldest run held once one went.
 */
static void s_mil(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg,
                  const vem_hj1239_block_t *b, const vem_rules_at_t *at, vem_rules_out_t *out)
{
    uint32_t mil = b->raw[VEM_HJ1239_F_MIL];
    if (b->novalue >> VEM_HJ1239_F_MIL & 1 || mil > 1)
        return;
    bool on = mil == 1;
    int64_t t = at->sec, gap = (int64_t)cfg->trip_gap_min * 60;
    if (v->nmil == v->mil_cap && v->mil_cap < VEM_RULES_MIL_RUNS)
        v->mil = s_grow(v->mil, &v->mil_cap, 2, sizeof *v->mil, &v->bytes);
    vem_rules_mil_run_t *m = v->mil;
    uint32_t i = 0; /* the first run that ends at or after t */
    while (i < v->nmil && m[i].last.sec < t)
        i++;
    bool before = i > 0 && m[i - 1].on == on && t - m[i - 1].last.sec <= gap;
    bool split = false; /* a new "off" run between two "on" runs */
    bool after = i < v->nmil && m[i].on == on && m[i].first.sec - t <= gap;
    if (i < v->nmil && m[i].first.sec <= t) { /* inside run i */
        if (m[i].on != on)
            v->counts.late_mil++;
        return;
    } else if (before && after) { /* it bridges runs i - 1 and i */
        m[i - 1].last = m[i].last;
        memmove(m + i, m + i + 1, (v->nmil - i - 1) * sizeof *m);
        v->nmil--;
    } else if (before) {
        m[i - 1].last = *at;
    } else if (after) { /* run i began earlier: its start is new */
        m[i].first = *at;
        m[i].announced = m[i].escalated = false;
    } else {
        if (i == 0 && v->mil_truncated) { /* older than what is held */
            v->counts.late_mil++;
            return;
        }
        if (v->nmil == VEM_RULES_MIL_RUNS) {
            /* the oldest two runs of one state (not around t) become one: a snapshot between
             * them will not be placed; else the oldest run goes */
            uint32_t j = 0;
            while (j + 1 < v->nmil && (m[j].on != m[j + 1].on || j + 1 == i))
                j++;
            if (j + 1 < v->nmil) {
                m[j].last = m[j + 1].last;
                memmove(m + j + 1, m + j + 2, (v->nmil - j - 2) * sizeof *m);
                i -= i > j + 1;
            } else if (i == 0) {
                v->mil_truncated = true;
                v->counts.late_mil++;
                return;
            } else {
                memmove(m, m + 1, (v->nmil - 1) * sizeof *m);
                v->mil_truncated = true;
                i--;
            }
            v->nmil--;
        }
        memmove(m + i + 1, m + i, (v->nmil - i) * sizeof *m);
        v->nmil++;
        m[i] = (vem_rules_mil_run_t){*at, *at, on, false, false};
        split = !on && i > 0 && i + 1 < v->nmil && m[i - 1].on && m[i + 1].on;
    }
    int64_t days = (int64_t)cfg->mil_days * 86400;
    if (split) {
        /* a new "off" run splits an episode: its id (its start's) says what the part before
         * the split now is. Escalated before, it is a notice again when that part is not more
         * than mil_days long (time order emitted only the notice), else a violation shown by
         * the part's last snapshot (the one that escalated it may lie after the split) */
        uint32_t k = i - 1;
        while (k > 0 && m[k - 1].on)
            k--;
        if (m[k].escalated) {
            bool still = m[i - 1].last.sec - m[k].first.sec > days;
            m[k].escalated = still;
            s_mil_emit(v, cfg, &m[k].first, still ? &m[i - 1].last : &m[k].first, still, out);
        }
    }
    for (uint32_t k = 0; k < v->nmil; k++) {
        if (!m[k].on || (k > 0 && m[k - 1].on))
            continue; /* not the first run of an episode */
        uint32_t e = k;
        while (e + 1 < v->nmil && m[e + 1].on)
            e++;
        vem_rules_mil_run_t *r = &m[k];
        if (!r->announced) {
            r->announced = true;
            r->escalated = false;
            s_mil_emit(v, cfg, &r->first, &r->first, false, out);
        }
        if (!r->escalated && m[e].last.sec - r->first.sec > days) {
            r->escalated = true;
            s_mil_emit(v, cfg, &r->first, &m[e].last, true, out);
        }
    }
}

static bool s_dtc_known(const vem_rules_vehicle_t *v, uint32_t code)
{
    for (uint32_t i = 0; i < v->ndtcs; i++)
        if (v->dtcs[i] == code)
            return true;
    return false;
}

/* obd.dtc: a notice for a snapshot with codes not seen since the last snapshot without any.
 * The vehicle remembers at most VEM_RULES_DTC_MAX codes. Once it holds that many, no snapshot
 * makes a notice until a snapshot without codes clears them: a code it lacks then is counted
 * (dtcs_unjudged), not judged. Else a terminal that reports more codes than the set holds
 * would make every snapshot a notice with an id of its own (the snapshot's time): rows without
 * end, at the peer's will. The snapshot that fills the set still reports every code new to
 * it, those past the set included; a truck with more than 64 faults at once has had its notice,
 * and the next clear starts over. */
static void s_dtc(vem_rules_vehicle_t *v, const vem_hj1239_frame_t *f, const vem_hj1239_block_t *b,
                  const vem_rules_at_t *at, vem_rules_out_t *out)
{
    if (b->novalue >> VEM_HJ1239_F_DTC_COUNT & 1)
        return;
    const vem_hj1239_obd_t *ob = &f->obd[b->obd];
    if (b->raw[VEM_HJ1239_F_DTC_COUNT] == 0) {
        v->ndtcs = 0; /* cleared: codes that come back are new again */
        return;
    }
    if (v->ndtcs == VEM_RULES_DTC_MAX) {
        for (uint32_t i = 0; i < ob->dtc_n && ob->dtc_first + i < f->ndtcs; i++)
            v->counts.dtcs_unjudged += !s_dtc_known(v, f->dtcs[ob->dtc_first + i]);
        return;
    }
    json_t *all = json_array(), *fresh = json_array();
    for (uint32_t i = 0; i < ob->dtc_n && ob->dtc_first + i < f->ndtcs; i++) {
        uint32_t code = f->dtcs[ob->dtc_first + i];
        char hex[9];
        snprintf(hex, sizeof hex, "%08" PRIX32, code);
        json_array_append_new(all, json_string(hex));
        if (s_dtc_known(v, code))
            continue;
        json_array_append_new(fresh, json_string(hex));
        if (v->ndtcs == VEM_RULES_DTC_MAX)
            continue; /* reported, but not remembered: the set is full from now on */
        if (v->ndtcs == v->dtc_cap)
            v->dtcs = s_grow(v->dtcs, &v->dtc_cap, 4, sizeof *v->dtcs, &v->bytes);
        v->dtcs[v->ndtcs++] = code;
    }
    if (json_array_size(fresh) == 0) {
        json_decref(all);
        json_decref(fresh);
        return;
    }
    json_t *ev = json_object();
    json_object_set_new(ev, "snapshot", s_snapshot_json(v, at));
    json_object_set_new(ev, "dtc_count", json_integer(b->raw[VEM_HJ1239_F_DTC_COUNT]));
    json_object_set_new(ev, "dtcs", all);
    json_object_set_new(ev, "new_dtcs", fresh);
    s_snapshot_emit(v, out, VEM_RULE_OBD_DTC, NULL, at, at, (double)json_array_size(all), 0,
                    "codes", VEM_SEVERITY_NOTICE, ev);
}

/* A VIN the OBD block really reports: 17 digits and capitals (not padding or 0xFF). */
static bool s_vin_like(const uint8_t *s)
{
    for (int i = 0; i < 17; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
    return true;
}

static void s_obd_vin(vem_rules_vehicle_t *v, const vem_hj1239_frame_t *f,
                      const vem_hj1239_block_t *b, const vem_rules_at_t *at, vem_rules_out_t *out)
{
    const uint8_t *obd_vin = f->obd[b->obd].vin;
    if (!s_vin_like(obd_vin))
        return;
    if (memcmp(obd_vin, f->vin, 17) == 0) {
        v->vin_mismatch = false;
        return;
    }
    if (v->vin_mismatch)
        return;
    v->vin_mismatch = true;
    char header[18], obd[18];
    memcpy(header, f->vin, 17);
    memcpy(obd, obd_vin, 17);
    header[17] = obd[17] = '\0';
    json_t *ev = json_object();
    json_object_set_new(ev, "snapshot", s_snapshot_json(v, at));
    json_object_set_new(ev, "header_vin", json_string(header));
    json_object_set_new(ev, "obd_vin", json_string(obd));
    s_snapshot_emit(v, out, VEM_RULE_OBD_TAMPER, "vin_mismatch", at, at, NAN, NAN, "",
                    VEM_SEVERITY_NOTICE, ev);
}

static void s_obd(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg,
                  const vem_hj1239_frame_t *f, const vem_hj1239_block_t *b, size_t idx,
                  vem_rules_out_t *out)
{
    vem_rules_at_t at = {b->time, 0, (uint16_t)idx};
    if (cfg->enabled[VEM_RULE_OBD_MIL_ON])
        s_mil(v, cfg, b, &at, out);
    if (b->time < v->obd_newest) {
        v->counts.late_obd++;
        return;
    }
    v->obd_newest = b->time;
    if (cfg->enabled[VEM_RULE_OBD_DTC])
        s_dtc(v, f, b, &at, out);
    if (cfg->enabled[VEM_RULE_OBD_TAMPER])
        s_obd_vin(v, f, b, &at, out);
}

/* ---- frames ------------------------------------------------------------------------------- */

static bool s_is_sample(uint8_t type)
{
    return type == VEM_HJ1239_BLOCK_STREAM || type == VEM_HJ1239_BLOCK_TWC ||
           type == VEM_HJ1239_BLOCK_TWC_NOX;
}

/* The frame's samples: values, rule times and downstream NOx with their keys (fusion history),
 * in block order. A function of the frame alone: it runs while the vehicle's lines are on their
 * way. */
static size_t s_prepare(const vem_hj1239_frame_t *f, s_prep_t *p, int64_t *sec,
                        vem_rules_nox_t *nox)
{
    bool block_time = f->layout & VEM_HJ1239_LAYOUT_BLOCK_TIME;
    size_t m = 0, n = 0;
    if (!block_time)
        for (size_t i = 0; i < f->nblocks; i++)
            m += s_is_sample(f->blocks[i].type);
    for (size_t i = 0; i < f->nblocks; i++) {
        const vem_hj1239_block_t *b = &f->blocks[i];
        if (!s_is_sample(b->type))
            continue;
        vem_rules_at_t at = {b->time, 0, (uint16_t)i};
        if (!block_time) { /* GB 17691: the frame's time is its last sample's */
            at.key_off = (int32_t)(m - 1 - n);
            at.sec -= at.key_off;
        }
        p[n].at = at;
        s_values(b, &p[n].x);
        p[n].x.win.t = at.sec;
        sec[n] = at.sec;
        nox[n] = isnan(p[n].x.win.nox_ppm) ? VEM_RULES_NOX_NONE
                                           : vem_rules_nox_pack((uint16_t)p[n].x.nox_down_raw, &at);
        n++;
    }
    return n;
}

/* ---- re-sent data: holes and copies ------------------------------------------------------ */

/* A terminal that loses its link keeps its samples and re-sends them (0x03) once it is back,
 * while it sends live data again: the hole's samples come after live data newer than they
 * are. Judged as they came, they would form a trip of their own (the back-fill track) and the
 * live trip would see a gap: not what the data in time order gives. So once the live trip has
 * a hole (a sample that misses backlog_hole_s seconds or more after its last), the samples
 * after it are held, by time, with those that come into the hole, and a held sample is judged
 * once nothing before it is missing (the hole is filled) or once the newest held is
 * backlog_wait_min after it (the rest of the hole comes too late, or not at all: a sample of it
 * that comes later is judged on the back-fill track). A logout, the silence that ends the
 * trip, and a flush judge what is held first. Verdicts of the live track thus wait up to
 * backlog_wait_min after a hole; a replay of the spool brings the same inputs in the same
 * order, and so holds and judges the same. Memory: 32 bytes a held second, at most
 * backlog_wait_min x 60 + 1, while a hole is open.
 *
 * A shorter gap is a skip, not waited for: a link that drops loses at least a frame, ten
 * seconds of an HJ 1239 terminal's data, while a terminal that skips a sample now and then (or
 * samples below 1 Hz) sends the next frame on time and never re-sends what it skipped; waiting
 * would delay its every verdict by backlog_wait_min and hold its data meanwhile. So a sample
 * after a skip is judged at once when nothing is held; while samples are held, a re-sent one is
 * when its skip is the terminal's own (inside its frame, or with the hole known to fill from
 * its start), and judging what is held goes on across a skip to a held sample not marked as
 * having a hole's seconds possibly still to come before it (s_hold says which). What the data
 * cannot tell apart (a terminal's skip, or seconds of the hole still on their way) is waited
 * for. A skip's second that comes after all goes to the back-fill track, as any late data: the
 * track keeps its trip's gaps (s_gap), so it is not taken for a copy, while a copy of a second
 * before a gap still is.
 * The default, 5 s, keeps the lost frames of a terminal that uploads every 5 s or more waited
 * for. */

/* A sample at t, newer than the open live track's newest, misses only a skip after it: fewer
 * than backlog_hole_s seconds. (Written without newest + 1, which overflows for a track that
 * has no newest, INT64_MIN.) */
static bool s_skip(const vem_rules_track_t *live, const vem_rules_config_t *cfg, int64_t t)
{
    return t - (int64_t)cfg->backlog_hole_s <= live->newest;
}

static void s_held_put(vem_rules_held_t *h, const vem_hj1239_block_t *b, const vem_rules_at_t *at,
                       bool hole)
{
    h->sec = at->sec;
    h->hole = hole;
    h->key_off = (uint8_t)at->key_off; /* below VEM_HJ1239_MAX_BLOCKS, as the index */
    h->key_idx = (uint8_t)at->key_idx;
    h->type = b->type;
    for (int k = 0; k < S_FIELDS; k++)
        h->raw[k] = (uint16_t)b->raw[s_fields[k].id];
}

/* The sample a held one was: the block it came in (the fields the rules read) and its instant. */
static void s_held_prep(const vem_rules_held_t *h, s_prep_t *p)
{
    vem_hj1239_block_t b;
    memset(&b, 0, sizeof b);
    b.type = h->type;
    for (int k = 0; k < S_FIELDS; k++)
        b.raw[s_fields[k].id] = h->raw[k];
    p->at = (vem_rules_at_t){h->sec, h->key_off, h->key_idx};
    s_values(&b, &p->x);
    p->x.win.t = h->sec;
}

static void s_held_free(vem_rules_vehicle_t *v)
{
    free(v->held);
    v->bytes -= (size_t)v->held_cap * sizeof *v->held;
    v->held = NULL;
    v->held_cap = v->held_off = v->nheld = 0;
    v->held_from_start = v->held_from_end = false;
}

/* Judges the held samples whose wait is over (all: every one), in time order, on the live
 * track. The batch's samples (older) are added to the window first. */
static void s_held_judge(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg,
                         const s_bounds_t *bd, bool all, s_batch_t *bt, vem_rules_out_t *out)
{
    if (!v->nheld)
        return;
    s_batch_flush(bt);
    int64_t wait = (int64_t)cfg->backlog_wait_min * 60;
    /* the trip received what it holds: no silence within it */
    int64_t open_us = v->live.last_open_us;
    s_prep_t p[VEM_HJ1239_MAX_BLOCKS];
    bool more = true;
    bool after_held = false; /* the live track's newest is a held sample: a skip is no hole */
    while (more && v->nheld) {
        unsigned n = 0;
        while (n < VEM_HJ1239_MAX_BLOCKS && v->nheld) {
            const vem_rules_held_t *h = &v->held[v->held_off];
            int64_t newest = v->held[v->held_off + v->nheld - 1].sec;
            if (!all && h->sec != v->live.newest + 1 &&
                !(after_held && !h->hole && s_skip(&v->live, cfg, h->sec)) &&
                newest - h->sec < wait) {
                more = false;
                break;
            }
            s_held_prep(h, &p[n]);
            v->held_off++;
            v->nheld--;
            s_sample_cold(v, cfg, bd, &p[n++], open_us, bt, out);
            after_held = true;
        }
        s_batch_flush(bt);
    }
    if (!v->nheld)
        s_held_free(v);
    else if (after_held) /* the gap now in front is another: how it fills is not known yet */
        v->held_from_start = v->held_from_end = false;
}

/* Judges everything held: before the live trip ends. */
static void s_held_judge_all(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg,
                             vem_rules_out_t *out)
{
    if (!v->nheld)
        return;
    s_bounds_t bd;
    s_bounds(cfg, &bd);
    s_batch_t bt = {.tr = NULL, .n = 0};
    s_held_judge(v, cfg, &bd, true, &bt, out);
}

/* Room for one more held sample at the end. */
static void s_held_room(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg)
{
    if (v->held_off + v->nheld < v->held_cap)
        return;
    if (v->held_off) {
        memmove(v->held, v->held + v->held_off, (size_t)v->nheld * sizeof *v->held);
        v->held_off = 0;
        return;
    }
    /* doubled, but not beyond what the wait holds (and the one just come) */
    uint32_t most = (uint32_t)cfg->backlog_wait_min * 60 + 1;
    most = most > v->nheld + 1u ? most : v->nheld + 1u;
    uint32_t cap = v->held_cap ? v->held_cap * 2u : 64;
    cap = cap < most ? cap : most;
    vem_rules_held_t *grown = realloc(v->held, cap * sizeof *v->held);
    if (!grown)
        abort();
    v->bytes += (cap - v->held_cap) * sizeof *v->held;
    v->held = grown;
    v->held_cap = (uint16_t)cap;
}

/* A sample newer than the live track's newest, with a hole before it or samples held (prev: the
 * second of the sample before it in its frame, INT64_MIN for none). Judged when it is the live
 * track's next second; or when only a skip is before it, in front of what is held, and that
 * skip is one the terminal made: inside its frame (what the terminal stored has the skips its
 * live data had), or with the hole known to fill from its start (a re-sent sample took the
 * live track's next second since one last went in front of what is held: an older second
 * would have come before it). Else held, marked `hole` when the gap before it may hold seconds
 * still to come: a gap of backlog_hole_s or more, or a part of a gap so marked that it splits,
 * unless it is inside its frame or, the hole filling from its end, the gap after a sample put
 * in front of what is held (a newer second would have come before it). Then what may be judged
 * is. False when a sample at its second is held already (a copy). */
static bool s_hold(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg, const s_bounds_t *bd,
                   const vem_hj1239_block_t *b, const s_prep_t *p, int64_t prev, int64_t open_us,
                   s_batch_t *bt, vem_rules_out_t *out)
{
    const vem_rules_at_t *at = &p->at;
    bool next = at->sec == v->live.newest + 1;
    bool skip = s_skip(&v->live, cfg, at->sec) &&
                (!v->nheld || at->sec < v->held[v->held_off].sec) &&
                (prev == v->live.newest || v->held_from_start);
    if (next || skip) {
        if (next && v->nheld) {
            v->held_from_start = true;
            v->held_from_end = false;
        }
        s_sample_cold(v, cfg, bd, p, open_us, bt, out);
        s_held_judge(v, cfg, bd, false, bt, out);
        return true;
    }
    vem_rules_held_t *h = v->nheld ? v->held + v->held_off : NULL;
    uint32_t lo = 0, hi = v->nheld; /* the first held newer than at */
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (h[mid].sec <= at->sec)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0 && h[lo - 1].sec == at->sec)
        return false;
    int64_t before = lo ? h[lo - 1].sec : v->live.newest;
    bool hole = at->sec - (int64_t)cfg->backlog_hole_s > before ||
                (lo < v->nheld && h[lo].hole && before != prev);
    if (lo == 0 && v->nheld) {
        if (v->held_from_end)
            h[0].hole = 0; /* the gap after it: a newer second would have come first */
        v->held_from_end = true;
        v->held_from_start = false;
    }
    if (lo == 0 && v->held_off) {
        v->held_off--;
    } else {
        s_held_room(v, cfg);
        h = v->held + v->held_off;
        memmove(h + lo + 1, h + lo, (v->nheld - lo) * sizeof *h);
    }
    s_held_put(v->held + v->held_off + lo, b, at, hole);
    v->nheld++;
    v->counts.held_samples++;
    v->live.last_open_us = open_us;
    s_held_judge(v, cfg, bd, false, bt, out);
    return true;
}

/* A sample at a second that track tr took already in its trip (in its whole range, in no gap):
 * a copy (a frame sent twice, or re-sent after pipeline.dedup_window), not judged again.
 * The store keeps one copy of a sample too (its key). */
static bool s_copy(const vem_rules_track_t *tr, int64_t sec)
{
    if (tr->newest == INT64_MIN || sec < tr->whole_from || sec > tr->last.sec)
        return false;
    /* not in a gap: the last gap from at or before sec ends before it */
    int64_t off = sec - tr->start.sec; /* whole_from is in the trip */
    uint32_t lo = 0, hi = tr->ngaps;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (vem_rules_gap_at(tr, mid)->off <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return true;
    const vem_rules_gap_t *g = vem_rules_gap_at(tr, lo - 1);
    return off >= (int64_t)g->off + g->len;
}

/* A sample of a data frame: judged on the live track (or held, s_hold), on the back-fill track
 * when it is older than the live track's newest, or not at all when it is a copy. prev: the
 * second of the sample before it in its frame (INT64_MIN for none). */
static __attribute__((noinline)) void s_take(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg,
                                             const s_bounds_t *bd, const vem_hj1239_block_t *b,
                                             const s_prep_t *p, int64_t prev, int64_t open_us,
                                             s_batch_t *bt, vem_rules_out_t *out)
{
    int64_t t = p->at.sec;
    vem_rules_track_t *live = &v->live;
    /* a live trip silent for long enough ended at live (vem_rules_on_silence) with what it held
     * judged first: so here, before the sample is placed, as a replay (which has no sweep)
     * must; and a reload to 0 holds nothing more */
    bool silent = live->open && open_us - live->last_open_us > s_silence_us(cfg);
    if (v->nheld && (silent || !cfg->backlog_wait_min))
        s_held_judge(v, cfg, bd, true, bt, out);
    if (t > live->newest) {
        if (!v->nheld &&
            (!live->open || silent || !cfg->backlog_wait_min || s_skip(live, cfg, t))) {
            s_sample_cold(v, cfg, bd, p, open_us, bt, out);
            return;
        }
        if (s_hold(v, cfg, bd, b, p, prev, open_us, bt, out))
            return;
    } else if (!s_copy(live, t) && !s_copy(&v->back, t)) {
        s_sample_cold(v, cfg, bd, p, open_us, bt, out);
        return;
    }
    v->counts.copy_samples++;
}

static void s_data(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg,
                   const vem_hj1239_frame_t *f, const s_prep_t *p, const int64_t *sec,
                   const vem_rules_nox_t *nox, size_t n, int64_t open_us, vem_rules_out_t *out)
{
    s_batch_t bt;
    bt.tr = NULL;
    bt.n = 0;
    s_bounds_t bd;
    s_bounds(cfg, &bd);
    size_t k = 0;
    for (size_t i = 0; i < f->nblocks; i++) {
        const vem_hj1239_block_t *b = &f->blocks[i];
        if (b->type == VEM_HJ1239_BLOCK_OBD)
            s_obd(v, cfg, f, b, i, out);
        else if (!s_is_sample(b->type))
            continue;
        else if (!v->nheld && p[k].at.sec == v->live.newest + 1) /* the live track's next */
            s_sample(v, cfg, &bd, &p[k++], open_us, &bt, out);
        else {
            s_take(v, cfg, &bd, b, &p[k], k ? p[k - 1].at.sec : INT64_MIN, open_us, &bt, out);
            k++;
        }
    }
    s_batch_flush(&bt);
    vem_rules_rsd_ctx_t ctx = s_rsd_ctx(v);
    vem_rules_rsd_obd(&v->rsd, &ctx, cfg, sec, nox, n, out);
}

static void s_removal(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg,
                      const vem_hj1239_frame_t *f, vem_rules_out_t *out)
{
    if (!cfg->enabled[VEM_RULE_OBD_TAMPER] || !f->has_time)
        return;
    vem_rules_at_t at = {f->time, 0, 0};
    double lon, lat;
    json_t *ev = json_object();
    json_object_set_new(ev, "event_time", vem_rules_iso_json(f->time * S_US));
    json_object_set_new(ev, "seq", json_integer(f->seq));
    json_object_set_new(ev, "pos_valid", json_boolean(vem_hj1239_pos_valid(f->pos_status)));
    json_object_set_new(ev, "lon",
                        vem_hj1239_position(f->pos_status, f->lon_raw, false, &lon) ? json_real(lon)
                                                                                    : json_null());
    json_object_set_new(ev, "lat",
                        vem_hj1239_position(f->pos_status, f->lat_raw, true, &lat) ? json_real(lat)
                                                                                   : json_null());
    s_snapshot_emit(v, out, VEM_RULE_OBD_TAMPER, "removal_alarm", &at, &at, NAN, NAN, "",
                    VEM_SEVERITY_VIOLATION, ev);
}

void vem_rules_prefetch_state(const vem_rules_vehicle_t *self)
{
    for (size_t o = 0; o < VEM_RULES_HOT_BYTES; o += 64)
        __builtin_prefetch((const char *)self + o, 1, 3);
}

void vem_rules_prefetch_frame(const vem_rules_vehicle_t *self, const vem_hj1239_frame_t *f)
{
    if (f->cmd == VEM_HJ1239_CMD_REALTIME || f->cmd == VEM_HJ1239_CMD_RESEND) {
        vem_rules_window_prefetch(&self->live.win, (uint32_t)f->nblocks);
    }
}

static inline __attribute__((always_inline)) unsigned
s_on_frame(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg, const vem_hj1239_frame_t *f,
           int64_t received_us, int64_t paused_us, uint64_t spool_seq, vem_rules_emit_fn emit,
           void *arg, vem_rules_counts_t *added)
{
    vem_rules_out_t out = {emit, arg, spool_seq, 0};
    /* With thousands of vehicles the state is rarely in the caches: ask for the lines the
     * frame will touch, and read the frame's samples while they come. */
    vem_rules_prefetch_state(self);
    vem_rules_prefetch_frame(self, f);
    bool data = f->cmd == VEM_HJ1239_CMD_REALTIME || f->cmd == VEM_HJ1239_CMD_RESEND;
    s_prep_t prep[VEM_HJ1239_MAX_BLOCKS];
    int64_t sec[VEM_HJ1239_MAX_BLOCKS];
    vem_rules_nox_t nox[VEM_HJ1239_MAX_BLOCKS];
    size_t n = data ? s_prepare(f, prep, sec, nox) : 0;
    vem_rules_counts_t was;
    if (added)
        was = self->counts;
    if (!self->heard || received_us > self->last_received_us) {
        self->last_received_us = received_us;
        self->last_received_open_us = received_us - paused_us;
    }
    if (f->has_time && (!self->heard || f->time * S_US > self->last_data_us))
        self->last_data_us = f->time * S_US;
    self->heard = true;
    self->offline_fired = false;
    switch (f->cmd) {
    case VEM_HJ1239_CMD_LOGOUT:
        s_held_judge_all(self, cfg, &out);
        s_trip_end(self, &self->live, cfg, &out);
        break;
    case VEM_HJ1239_CMD_LOGIN:
        /* A login with no logout before it is a terminal reconnecting after a dropped link
         * (a tunnel, a platform restart): the trip goes on. Ending it here would let a truck
         * reset every span towards obd.tamper or obd.scr_ineffective by dropping its link
         * every few minutes; a real pause still ends the trip by its gap. */
        break;
    case VEM_HJ1239_CMD_REMOVAL_ALARM:
        s_removal(self, cfg, f, &out);
        break;
    case VEM_HJ1239_CMD_REALTIME:
    case VEM_HJ1239_CMD_RESEND:
        s_data(self, cfg, f, prep, sec, nox, n, received_us - paused_us, &out);
        break;
    default:
        break;
    }
    if (added)
        vem_rules_counts_add(added, &was, &self->counts);
    return out.emitted;
}

unsigned vem_rules_on_frame(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                            const vem_hj1239_frame_t *f, int64_t received_us, int64_t paused_us,
                            uint64_t spool_seq, vem_rules_emit_fn emit, void *arg)
{
    return s_on_frame(self, cfg, f, received_us, paused_us, spool_seq, emit, arg, NULL);
}

unsigned vem_rules_on_frame_counted(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                                    const vem_hj1239_frame_t *f, int64_t received_us,
                                    int64_t paused_us, uint64_t spool_seq, vem_rules_emit_fn emit,
                                    void *arg, vem_rules_counts_t *added)
{
    return s_on_frame(self, cfg, f, received_us, paused_us, spool_seq, emit, arg, added);
}

/* ---- roadside, clock, days ---------------------------------------------------------------- */

void vem_rules_reading_init(vem_rsd_reading_t *r)
{
    memset(r, 0, sizeof *r);
    r->speed_kmh = r->accel_ms2 = r->vsp_kw_t = r->wind_ms = r->slope_pct = NAN;
    r->opacity_pct = r->ringelmann = r->no_ppm = r->co_pct = r->hc_ppm = NAN;
}

unsigned vem_rules_on_reading(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                              const vem_rsd_reading_t *r, uint64_t spool_seq,
                              vem_rules_emit_fn emit, void *arg)
{
    vem_rules_out_t out = {emit, arg, spool_seq, 0};
    s_take_plate(self, r);
    vem_rules_rsd_ctx_t ctx = s_rsd_ctx(self);
    vem_rules_rsd_reading(&self->rsd, &ctx, cfg, r, false, &out);
    return out.emitted;
}

void vem_rules_seed_readings(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                             const vem_rsd_reading_t *past, size_t n)
{
    vem_rules_out_t out = {NULL, NULL, 0, 0};
    vem_rules_rsd_ctx_t ctx = s_rsd_ctx(self);
    vem_rules_counts_t keep = self->counts;
    for (size_t i = 0; i < n; i++)
        vem_rules_rsd_reading(&self->rsd, &ctx, cfg, &past[i], true, &out);
    self->counts = keep; /* history is not news */
}

unsigned vem_rules_history(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                           const vem_rsd_reading_t *past, size_t n, vem_rules_emit_fn emit,
                           void *arg)
{
    vem_rules_out_t out = {emit, arg, 0, 0};
    if (n)
        s_take_plate(self, &past[0]);
    vem_rules_rsd_ctx_t ctx = s_rsd_ctx(self);
    vem_rules_counts_t keep = self->counts;
    vem_rules_rsd_history(&self->rsd, &ctx, cfg, past, n, &out);
    self->counts = keep; /* history is not news */
    return out.emitted;
}

size_t vem_rules_vehicle_rsd_links(const vem_rules_vehicle_t *self)
{
    return vem_rules_rsd_links(&self->rsd);
}

void vem_rules_vehicle_set_registered(vem_rules_vehicle_t *self, bool registered)
{
    self->unregistered = !registered;
}

/* rules.md: obd.offline is owed by a registered vehicle: a forged login's VIN is not offline
 * three days later, and a flood of them is not a flood of notices. */
static bool s_registered(const vem_rules_vehicle_t *v)
{
    return *v->vin && !v->unregistered;
}

bool vem_rules_vehicle_idle(const vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                            int64_t now_us)
{
    bool offline_done = self->offline_fired || !self->heard || !s_registered(self) ||
                        !cfg->enabled[VEM_RULE_OBD_OFFLINE];
    bool mil_on = self->nmil && self->mil[self->nmil - 1].on;
    return !self->live.open && !self->back.open && !mil_on && self->ndtcs == 0 &&
           self->rsd.npending == 0 && !vem_rules_rsd_open(&self->rsd, cfg, now_us) && offline_done;
}

int64_t vem_rules_vehicle_last_received(const vem_rules_vehicle_t *self)
{
    return self->last_received_us;
}

unsigned vem_rules_on_silence(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                              int64_t now_us, int64_t paused_us, vem_rules_emit_fn emit, void *arg)
{
    vem_rules_out_t out = {emit, arg, 0, 0};
    vem_rules_track_t *tracks[] = {&self->live, &self->back};
    for (int i = 0; i < 2; i++) {
        if (tracks[i]->open && now_us - paused_us - tracks[i]->last_open_us > s_silence_us(cfg)) {
            if (i == 0)
                s_held_judge_all(self, cfg, &out);
            s_trip_end(self, tracks[i], cfg, &out);
        }
    }
    vem_rules_rsd_ctx_t ctx = s_rsd_ctx(self);
    vem_rules_rsd_expire(&self->rsd, &ctx, cfg, now_us);
    /* on the intake clock, as a trip's silence: a full spool's pause is vemd's, not the
     * vehicle's (its frames wait in their socket); never more than the wall clock says (a
     * paused total that went back, its file lost, is no silence of the vehicle's) */
    int64_t silent_us = now_us - self->last_received_us;
    if (self->last_received_open_us != INT64_MIN) {
        int64_t open_us = now_us - paused_us - self->last_received_open_us;
        silent_us = open_us < silent_us ? open_us : silent_us;
    }
    if (!cfg->enabled[VEM_RULE_OBD_OFFLINE] || !self->heard || self->offline_fired ||
        silent_us < (int64_t)cfg->offline_hours * 3600 * S_US || !s_registered(self))
        return out.emitted;
    self->offline_fired = true;
    json_t *ev = json_object();
    json_object_set_new(ev, "kind", json_string("silence"));
    json_object_set_new(ev, "last_received_at", vem_rules_iso_json(self->last_received_us));
    json_object_set_new(ev, "last_data_at", vem_rules_iso_json(self->last_data_us));
    json_object_set_new(ev, "judged_at", vem_rules_iso_json(now_us));
    /* the time intake was paused since the last receipt, not counted as the vehicle's */
    json_object_set_new(
        ev, "intake_paused_s",
        vem_rules_real_json((double)(now_us - self->last_received_us - silent_us) / (double)S_US));
    char anchor[64];
    snprintf(anchor, sizeof anchor, "t=%" PRId64 "/silence", self->last_data_us);
    vem_rules_verdict_t v = {VEM_RULE_OBD_OFFLINE,
                             anchor,
                             self->last_data_us,
                             now_us > self->last_data_us ? now_us : self->last_data_us,
                             (double)silent_us / (3600.0 * S_US),
                             cfg->offline_hours,
                             "h",
                             VEM_SEVERITY_NOTICE,
                             ev};
    vem_rules_who_t who = s_who(self);
    vem_rules_emit(&out, &who, &v);
    return out.emitted;
}

unsigned vem_rules_flush(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                         vem_rules_emit_fn emit, void *arg)
{
    vem_rules_out_t out = {emit, arg, 0, 0};
    s_held_judge_all(self, cfg, &out);
    s_trip_end(self, &self->live, cfg, &out);
    s_trip_end(self, &self->back, cfg, &out);
    return out.emitted;
}

double vem_rules_completeness(uint64_t received, uint64_t running_s)
{
    return running_s == 0 ? 1.0 : (double)received / (double)running_s;
}

unsigned vem_rules_on_day(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg, int32_t day,
                          uint64_t received, uint64_t running_s, vem_rules_emit_fn emit, void *arg)
{
    vem_rules_out_t out = {emit, arg, 0, 0};
    double c = vem_rules_completeness(received, running_s);
    if (!cfg->enabled[VEM_RULE_OBD_OFFLINE] || !s_registered(self) ||
        !s_below(c, cfg->completeness_min))
        return 0;
    int64_t start = ((int64_t)day * 86400 - 8 * 3600) * S_US; /* Beijing midnight */
    vem_rules_civil_t civil;
    vem_rules_civil(start, &civil);
    char date[16];
    snprintf(date, sizeof date, "%04" PRId64 "-%02d-%02d", civil.year, civil.month, civil.day);
    json_t *ev = json_object();
    json_object_set_new(ev, "kind", json_string("completeness"));
    json_object_set_new(ev, "day", json_string(date));
    json_object_set_new(ev, "received_samples", json_integer((json_int_t)received));
    json_object_set_new(ev, "running_seconds", json_integer((json_int_t)running_s));
    char anchor[64];
    snprintf(anchor, sizeof anchor, "t=%" PRId64 "/completeness", start);
    vem_rules_verdict_t v = {VEM_RULE_OBD_OFFLINE,
                             anchor,
                             start,
                             start + 86400 * S_US - 1,
                             c,
                             cfg->completeness_min,
                             "ratio",
                             VEM_SEVERITY_NOTICE,
                             ev};
    vem_rules_who_t who = s_who(self);
    vem_rules_emit(&out, &who, &v);
    return out.emitted;
}
