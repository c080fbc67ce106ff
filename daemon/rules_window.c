/* rules_window — the work-based NOx window of one trip (obd.nox_window, rules.md).
 *
 * Per 1 Hz sample k of the trip whose torque, friction, engine speed, intake air, fuel flow
 * and downstream NOx are all valid (samples without are left out of the series: they add
 * neither work, nor NOx, nor duration):
 *   P_k = (torque % - friction %) / 100 x T_ref x rpm x 2 pi / 60 / 1000   kW, below 0 taken
 *         as 0 (a motoring engine does no work; it also keeps the work sums non-decreasing,
 *         which the two pointers need)
 *   w_k = P_k / 3600 kWh (one second)
 *   m_k = u x c_NOx x (intake + fuel x density) / 3600 g, c_NOx below 0 ppm taken as 0
 * The window that starts at sample i ends at the first j with w_i + ... + w_j >= W_ref. It has
 * D = j - i + 1 samples (seconds), work W, NOx m_i + ... + m_j; it is valid when its average
 * power W x 3600 / D is at least min_power_frac x P_rated; its NOx is 1000 x mass / W mg/kWh.
 * Windows whose end the trip does not reach do not exist. The trip fails when the percentile
 * of its valid windows, by nearest rank (sort ascending, take the value at rank
 * ceil(percentile x N / 100)), is above the limit.
 *
 * Two pointers over running sums: the ring holds, for every sample from the oldest window
 * not yet ended (the head) to the newest, its work and NOx as floats (12 bytes a slot with its
 * time); the trip keeps, as doubles, the sums of every sample so far and the sums of every
 * sample before the head. Each sample adds its float values to the first, each window ended
 * adds its first sample's to the second: the same additions in the same order, so the sums
 * before the head are bit for bit the sums the trip had when the head's sample came, and a
 * window's work and NOx are the difference of the two. Each new sample ends the windows it
 * completes, oldest first, in amortised O(1). A sample's work and NOx are rounded to float
 * (7 significant digits, relative 6e-8) once, before they are summed: what a window sums is
 * those rounded values, which no measurement the inputs carry (3 to 5 digits) can tell apart.
 * Keeping a sample's values rather than sums makes a slot 12 bytes where it was 20 (before
 * checkpoint version 11): 40 % less of the ring's memory and of the lines each frame touches.
 * The exactness rests on IEEE arithmetic done as written: a build that lets the compiler
 * reassociate floating point (-ffast-math) would break it, and the checkpoint loader, which
 * checks it, would refuse the states.
 *
 * Memory bound. A window still open after j has W(i..j) < W_ref, so when it ends at some
 * later j' it has W < W_ref + w_j' <= W_ref + P_max / 3600, with P_max the most power the
 * field ranges allow (250 % x T_ref x 8031.875 rpm). It can be valid only if
 * D < D_lim = (W_ref x 3600 + P_max) / (min_power_frac x P_rated). So a window open for
 * D_lim - 1 samples is certainly invalid: it is counted as an invalid window at once and
 * leaves the ring, which therefore never holds more than ceil(D_lim) + 1 samples (12 bytes
 * each). `windows` counts such windows too: windows = complete windows, plus windows that
 * have not ended but already span D_lim - 1 samples. Figures with D_lim above
 * VEM_RULES_WINDOW_RING_MAX are not usable here (rules.c then falls back to obd.nox_high).
 *
 * The percentile needs every valid window in principle. The trip keeps the
 * VEM_RULES_WINDOW_KEEP largest (12 bytes each; NOx as a float, 7 significant digits) and
 * counts the rest: valid windows collect in a buffer of VEM_RULES_KEPT_MAX; when it is full
 * a quickselect keeps the KEEP largest, and from then on a window below the smallest of them
 * is only counted. The buffer always holds the
 * largest windows seen (nothing dropped is above anything kept), and the value at nearest rank
 * r of N is the (N - r + 1)-th largest, so it is exact while N - r + 1 <= KEEP (about 20,000
 * valid windows, 5.7 hours of driving, for the 90th). Beyond, the verdict is still exact (it
 * needs only the count of windows at or below the limit) and the value reported is the
 * smallest kept, an upper bound, marked not exact. Appending, rather than a heap, keeps the
 * memory touched per sample sequential: a heap's sift touches lines all over its 24 KiB, and
 * with thousands of trucks each is a cache miss. */
#include "rules_int.h"

#include "hj1239.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_RING_START 64
#define S_KEPT_START 64

typedef vem_rules_kept_t s_kept_t;

/* The field's largest value. */
static double s_field_max(vem_hj1239_field_t f)
{
    const vem_hj1239_field_info_t *i = vem_hj1239_field_info(f);
    return i->max_raw * i->scale + i->offset;
}

/* The largest (torque % - friction %) x rpm a sample can report: widest torque minus friction
 * at the highest speed the field table allows. */
static double s_max_pct_rpm(void)
{
    const vem_hj1239_field_info_t *fr = vem_hj1239_field_info(VEM_HJ1239_F_FRICTION);
    return (s_field_max(VEM_HJ1239_F_TORQUE) - fr->offset) * s_field_max(VEM_HJ1239_F_RPM);
}

/* The most power one sample can report. */
static double s_max_power_kw(double ref_torque_nm)
{
    return s_max_pct_rpm() / 100 * ref_torque_nm * 2 * M_PI / 60 / 1000;
}

static bool s_positive(double v)
{
    return isfinite(v) && v > 0;
}

double vem_rules_window_span_limit(const vem_rules_window_params_t *p)
{
    double p_max = s_max_power_kw(p->ref_torque_nm);
    if (!s_positive(p->ref_torque_nm) || !s_positive(p->rated_power_kw) ||
        !s_positive(p->whtc_work_kwh) || !s_positive(p->min_power_frac) ||
        !(p_max <= VEM_RULES_POWER_MAX_KW))
        return 0;
    return (p->whtc_work_kwh * 3600 + p_max) / (p->min_power_frac * p->rated_power_kw);
}

/* The per-trip constants vem_rules_window_start makes of the figures. */
static void s_constants(vem_rules_window_t *w, const vem_rules_window_params_t *p)
{
    w->work_per_pct_rpm = p->ref_torque_nm * 2 * M_PI / 60 / 1000 / 100 / 3600;
    w->mass_per_ppm_kgph = p->nox_u / 3600;
    w->density = p->fuel_density_kg_l;
    w->whtc_work_kwh = p->whtc_work_kwh;
    w->min_work_per_sample = p->min_power_frac * p->rated_power_kw / 3600;
}

bool vem_rules_window_usable(const vem_rules_window_params_t *p)
{
    double d = vem_rules_window_span_limit(p);
    if (!(d > 0 && ceil(d) + 1 <= VEM_RULES_WINDOW_RING_MAX))
        return false;
    /* figures so small that a constant underflows to 0 (a torque of 1e-318 N m) are damage: the
     * window would be one the checkpoint loader refuses (vem_rules_window_constants_ok) */
    vem_rules_window_t w;
    s_constants(&w, p);
    return vem_rules_window_constants_ok(&w);
}

bool vem_rules_window_constants_ok(const vem_rules_window_t *w)
{
    const double c[] = {w->work_per_pct_rpm, w->mass_per_ppm_kgph, w->density, w->whtc_work_kwh,
                        w->min_work_per_sample};
    for (size_t i = 0; i < sizeof c / sizeof *c; i++)
        if (!s_positive(c[i]))
            return false;
    double work = s_max_pct_rpm() * w->work_per_pct_rpm;
    double mass =
        s_field_max(VEM_HJ1239_F_NOX_DOWN) *
        (s_field_max(VEM_HJ1239_F_INTAKE) + s_field_max(VEM_HJ1239_F_FUEL_RATE) * w->density) *
        w->mass_per_ppm_kgph;
    return work <= VEM_RULES_POWER_MAX_KW / 3600 && mass <= VEM_RULES_SAMPLE_MASS_MAX_G;
}

static void *s_alloc(size_t n, size_t *bytes)
{
    void *p = malloc(n);
    if (!p)
        abort();
    *bytes += n;
    return p;
}

static void s_free(void *p, size_t n, size_t *bytes)
{
    if (p) {
        free(p);
        *bytes -= n;
    }
}

bool vem_rules_window_start(vem_rules_window_t *w, const vem_rules_window_params_t *p,
                            int64_t trip_start, size_t *bytes)
{
    memset(w, 0, sizeof *w);
    if (!vem_rules_window_usable(p))
        return false;
    w->active = true;
    s_constants(w, p);
    w->span_limit = vem_rules_window_span_limit(p);
    w->limit_mg_kwh = p->limit_mg_kwh;
    w->percentile = p->percentile;
    w->base = trip_start;
    w->bytes = bytes;
    w->cap_max = (uint32_t)ceil(w->span_limit) + 1;
    return true;
}

void vem_rules_window_stop(vem_rules_window_t *w)
{
    if (w->active) {
        size_t *bytes = w->bytes;
        s_free(w->ring, (size_t)w->cap * VEM_RULES_SLOT, bytes);
        s_free(w->kept, w->kept_cap * sizeof(s_kept_t), bytes);
    }
    memset(w, 0, sizeof *w);
}

/* Makes room for one more sample in the ring, keeping the order from head. */
static void s_ring_grow(vem_rules_window_t *w)
{
    uint32_t cap = w->cap ? w->cap * 2 : S_RING_START;
    if (cap > w->cap_max)
        cap = w->cap_max;
    uint8_t *ring = s_alloc((size_t)cap * VEM_RULES_SLOT, w->bytes);
    uint32_t first = w->cap - w->head < w->count ? w->cap - w->head : w->count;
    if (w->count) {
        memcpy(ring, w->ring + (size_t)w->head * VEM_RULES_SLOT, (size_t)first * VEM_RULES_SLOT);
        memcpy(ring + (size_t)first * VEM_RULES_SLOT, w->ring,
               (size_t)(w->count - first) * VEM_RULES_SLOT);
    }
    s_free(w->ring, (size_t)w->cap * VEM_RULES_SLOT, w->bytes);
    w->ring = ring;
    w->cap = cap;
    w->head = 0;
}

/* a comes before b among the kept windows: more NOx first, then the earlier start */
static bool s_before(const s_kept_t *a, const s_kept_t *b)
{
    return a->nox > b->nox || (a->nox == b->nox && a->start < b->start);
}

static void s_swap(s_kept_t *a, s_kept_t *b)
{
    s_kept_t x = *a;
    *a = *b;
    *b = x;
}

/* Leaves the first VEM_RULES_WINDOW_KEEP kept windows (s_before) in kept[0 .. KEEP), the last
 * of them at KEEP - 1, and drops the others (quickselect, median-of-three pivots). */
static void s_compact(vem_rules_window_t *w)
{
    s_kept_t *a = w->kept;
    int32_t lo = 0, hi = (int32_t)w->nkept - 1, k = VEM_RULES_WINDOW_KEEP - 1;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (s_before(&a[mid], &a[lo]))
            s_swap(&a[mid], &a[lo]);
        if (s_before(&a[hi], &a[lo]))
            s_swap(&a[hi], &a[lo]);
        if (s_before(&a[hi], &a[mid]))
            s_swap(&a[hi], &a[mid]);
        s_kept_t pivot = a[mid];
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (s_before(&a[i], &pivot))
                i++;
            while (s_before(&pivot, &a[j]))
                j--;
            if (i <= j)
                s_swap(&a[i++], &a[j--]);
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    w->nkept = VEM_RULES_WINDOW_KEEP;
    w->threshold = a[k];
    w->full = true;
}

static void s_append(vem_rules_window_t *w, s_kept_t e);

/* A valid window with NOx mass (g) over work (kWh): counted, and kept while it may be among
 * the VEM_RULES_WINDOW_KEEP largest. */
static void s_keep(vem_rules_window_t *w, double mass, double work, int32_t start, int32_t end)
{
    w->valid++;
    if (mass * 1000 > w->limit_mg_kwh * work)
        w->over++;
    if (w->full && mass * 1000 < w->threshold.nox * (1 - 1e-6) * work)
        return; /* well below the smallest kept: never among the largest */
    s_kept_t e = {(float)(mass * 1000 / work), start, end};
    if (w->full && !s_before(&e, &w->threshold))
        return;
    if (!w->full && w->nkept + w->nstage + 1 < w->kept_cap) {
        /* a plain append, neither growth nor selection due: staged */
        w->stage[w->nstage++] = e;
        if (w->nstage == VEM_RULES_KEPT_STAGE)
            vem_rules_window_settle(w);
        return;
    }
    vem_rules_window_settle(w);
    s_append(w, e);
}

void vem_rules_window_settle(vem_rules_window_t *w)
{
    for (uint32_t i = 0; i < w->nstage; i++)
        w->kept[w->nkept++] = w->stage[i];
    w->nstage = 0;
}

/* Appends e to kept, growing it, and selects the largest when it is full. */
static void s_append(vem_rules_window_t *w, s_kept_t e)
{
    if (w->nkept == w->kept_cap) {
        uint32_t cap = w->kept_cap ? w->kept_cap * 2 : S_KEPT_START;
        if (cap > VEM_RULES_KEPT_MAX)
            cap = VEM_RULES_KEPT_MAX;
        s_kept_t *k = s_alloc(cap * sizeof *k, w->bytes);
        if (w->nkept)
            memcpy(k, w->kept, w->nkept * sizeof *k);
        s_free(w->kept, w->kept_cap * sizeof *k, w->bytes);
        w->kept = k;
        w->kept_cap = cap;
    }
    w->kept[w->nkept++] = e;
    if (w->nkept == VEM_RULES_KEPT_MAX)
        s_compact(w);
}

void vem_rules_window_add(vem_rules_window_t *w, const vem_rules_window_in_t *const *in, size_t n)
{
    /* the running figures in locals: the ring is bytes, which may alias anything, so the
     * compiler would otherwise reload them from w after every slot written */
    uint8_t *ring = w->ring;
    uint32_t cap = w->cap, cap_max = w->cap_max, head = w->head, count = w->count;
    double sum_work = w->work, sum_nox = w->nox;
    double head_work = w->head_work, head_nox = w->head_nox;
    const double per_rpm = w->work_per_pct_rpm, per_ppm = w->mass_per_ppm_kgph;
    const double density = w->density, whtc = w->whtc_work_kwh, min_work = w->min_work_per_sample;
    const int64_t base = w->base;
    uint32_t windows = w->windows;
    for (size_t i = 0; i < n; i++) {
        const vem_rules_window_in_t *x = in[i];
        double pct = x->torque_pct - x->friction_pct;
        float work = (float)(pct > 0 ? pct * x->rpm * per_rpm : 0);
        float mass =
            (float)(x->nox_ppm > 0 ? x->nox_ppm * (x->intake_kgph + x->fuel_lph * density) * per_ppm
                                   : 0);
        if (count == cap) {
            w->head = head;
            w->count = count;
            s_ring_grow(w);
            ring = w->ring;
            cap = w->cap;
            head = w->head;
        }
        uint32_t slot = head + count;
        if (slot >= cap)
            slot -= cap;
        vem_rules_slot_put(ring, slot, work, mass, (int32_t)(x->t - base));
        count++;
        sum_work += work;
        sum_nox += mass;

        /* windows this sample ends, oldest first */
        while (count > 0) {
            double done = sum_work - head_work;
            if (done < whtc)
                break;
            windows++;
            if (done >= count * min_work)
                s_keep(w, sum_nox - head_nox, done, vem_rules_slot_time(ring, head),
                       vem_rules_slot_time(ring, slot));
            head_work += vem_rules_slot_work(ring, head);
            head_nox += vem_rules_slot_nox(ring, head);
            head = head + 1 == cap ? 0 : head + 1;
            count--;
        }
        /* windows too long to be valid even if the next sample ends them: count + 1 >= D_lim,
         * and as count + 1 is a whole number, that is count + 1 >= ceil(D_lim) = cap_max - 1 */
        while (count > 0 && count + 2 >= cap_max) {
            windows++;
            head_work += vem_rules_slot_work(ring, head);
            head_nox += vem_rules_slot_nox(ring, head);
            head = head + 1 == cap ? 0 : head + 1;
            count--;
        }
    }
    w->head = head;
    w->count = count;
    w->work = sum_work;
    w->nox = sum_nox;
    w->head_work = head_work;
    w->head_nox = head_nox;
    w->windows = windows;
    w->samples += (uint32_t)n;
}

void vem_rules_window_prefetch(const vem_rules_window_t *w, uint32_t n)
{
    if (!w->ring)
        return;
    /* the slots the head passes as windows end, and those the samples take at the tail */
    size_t size = (size_t)w->cap * VEM_RULES_SLOT;
    size_t span = ((size_t)n + 1) * VEM_RULES_SLOT;
    size_t head = (size_t)w->head * VEM_RULES_SLOT;
    size_t tail = head + (size_t)w->count * VEM_RULES_SLOT;
    if (span > size)
        span = size;
    if (tail >= size)
        tail -= size;
    for (size_t o = 0; o < span; o += 64) {
        size_t h = head + o, t = tail + o;
        __builtin_prefetch(w->ring + (h < size ? h : h - size), 0, 0);
        __builtin_prefetch(w->ring + (t < size ? t : t - size), 1, 0);
    }
    /* where the windows they end are staged, and kept when the stage will be appended */
    if (w->nstage < VEM_RULES_KEPT_STAGE) {
        const uint8_t *st = (const uint8_t *)(w->stage + w->nstage);
        size_t room = VEM_RULES_KEPT_STAGE - w->nstage;
        size_t bytes = (n < room ? n : room) * sizeof *w->stage;
        for (size_t o = 0; o < bytes + 63; o += 64)
            __builtin_prefetch(st + o, 1, 3);
    }
    if (w->kept && w->nkept < w->kept_cap && w->nstage + n >= VEM_RULES_KEPT_STAGE) {
        size_t room = w->kept_cap - w->nkept;
        const uint8_t *k = (const uint8_t *)(w->kept + w->nkept);
        size_t bytes = (n < room ? n : room) * sizeof *w->kept;
        for (size_t o = 0; o < bytes; o += 64)
            __builtin_prefetch(k + o, 1, 0);
    }
}

/* Largest first; equal values by start, so the order is the same on every run. */
static int s_by_nox_desc(const void *a, const void *b)
{
    const s_kept_t *x = a, *y = b;
    if (x->nox != y->nox)
        return x->nox > y->nox ? -1 : 1;
    return (x->start > y->start) - (x->start < y->start);
}

void vem_rules_window_result(vem_rules_window_t *w, vem_rules_window_result_t *out)
{
    memset(out, 0, sizeof *out);
    out->samples = w->samples;
    out->windows = w->windows;
    out->valid = w->valid;
    out->over = w->over;
    out->percentile_mg_kwh = NAN;
    vem_rules_window_settle(w);
    uint32_t n = w->valid;
    if (n == 0)
        return;
    uint32_t rank = (uint32_t)(((uint64_t)w->percentile * n + 99) / 100);
    out->rank = rank;
    out->fails = n - w->over < rank;
    qsort(w->kept, w->nkept, sizeof *w->kept, s_by_nox_desc);
    uint32_t top = n - rank + 1; /* the percentile is the top-th largest */
    uint32_t at = top <= w->nkept ? top - 1 : w->nkept - 1;
    out->exact = top <= w->nkept;
    out->percentile_mg_kwh = w->kept[at].nox;
    uint32_t lo = at >= 2 ? at - 2 : 0, hi = at + 2 < w->nkept ? at + 2 : w->nkept - 1;
    for (uint32_t i = hi + 1; i-- > lo;) {
        vem_rules_window_at_t *a = &out->around[out->naround++];
        a->start = w->base + w->kept[i].start;
        a->end = w->base + w->kept[i].end;
        a->nox_mg_kwh = w->kept[i].nox;
        a->rank = n - i;
    }
}
