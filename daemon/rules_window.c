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
 * Two pointers over prefix sums: the ring holds, for every sample from the oldest window not
 * yet ended (left) to the newest, the work and NOx summed before it; each new sample ends the
 * windows it completes, oldest first, in amortised O(1).
 *
 * Memory bound. A window still open after j has W(i..j) < W_ref, so when it ends at some
 * later j' it has W < W_ref + w_j' <= W_ref + P_max / 3600, with P_max the most power the
 * field ranges allow (250 % x T_ref x 8031.875 rpm). It can be valid only if
 * D < D_lim = (W_ref x 3600 + P_max) / (min_power_frac x P_rated). So a window open for
 * D_lim - 1 samples is certainly invalid: it is counted as an invalid window at once and
 * leaves the ring, which therefore never holds more than ceil(D_lim) + 1 samples (20 bytes
 * each). `windows` counts such windows too: windows = complete windows, plus windows that
 * have not ended but already span D_lim - 1 samples. Figures with D_lim above
 * VEM_RULES_WINDOW_RING_MAX are not usable here (rules.c then falls back to obd.nox_high).
 *
 * The percentile needs every valid window in principle. The trip keeps the
 * VEM_RULES_WINDOW_KEEP largest in a min-heap (12 bytes each) and counts the rest; the value
 * at nearest rank r of N is the (N - r + 1)-th largest, so it is exact while
 * N - r + 1 <= KEEP (about 20,000 valid windows, 5.7 hours of driving, for the 90th).
 * Beyond, the verdict is still exact (it needs only the count of windows at or below the
 * limit) and the value reported is the smallest kept, an upper bound, marked not exact. */
#include "rules_int.h"

#include "hj1239.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_RING_START 64
#define S_HEAP_START 64

typedef struct {
    float nox;          /* mg/kWh */
    int32_t start, end; /* rule times, seconds after the trip's start */
} s_kept_t;

struct vem_rules_window {
    vem_rules_window_params_t p;
    double span_limit;   /* D_lim */
    double min_power_kw; /* min_power_frac x P_rated */
    int64_t base;        /* trip start, epoch s */
    size_t *bytes;
    /* ring of samples from the oldest open window on */
    double *work_before, *nox_before; /* kWh, g summed over the trip before the sample */
    int32_t *t;                       /* rule time - base */
    uint32_t cap, cap_max, head, count;
    double work, nox; /* sums over the trip so far */
    uint32_t samples, windows, valid, over;
    /* largest valid windows: a min-heap by nox */
    s_kept_t *kept;
    uint32_t nkept, kept_cap;
};

/* The most power one sample can report: widest torque minus friction at the highest speed
 * the field table allows. */
static double s_max_power_kw(double ref_torque_nm)
{
    const vem_hj1239_field_info_t *tq = vem_hj1239_field_info(VEM_HJ1239_F_TORQUE);
    const vem_hj1239_field_info_t *fr = vem_hj1239_field_info(VEM_HJ1239_F_FRICTION);
    const vem_hj1239_field_info_t *rpm = vem_hj1239_field_info(VEM_HJ1239_F_RPM);
    double pct = (tq->max_raw * tq->scale + tq->offset) - fr->offset;
    double speed = rpm->max_raw * rpm->scale + rpm->offset;
    return pct / 100 * ref_torque_nm * speed * 2 * M_PI / 60 / 1000;
}

static bool s_positive(double v)
{
    return isfinite(v) && v > 0;
}

double vem_rules_window_span_limit(const vem_rules_window_params_t *p)
{
    if (!s_positive(p->ref_torque_nm) || !s_positive(p->rated_power_kw) ||
        !s_positive(p->whtc_work_kwh) || !s_positive(p->min_power_frac))
        return 0;
    return (p->whtc_work_kwh * 3600 + s_max_power_kw(p->ref_torque_nm)) /
           (p->min_power_frac * p->rated_power_kw);
}

bool vem_rules_window_usable(const vem_rules_window_params_t *p)
{
    double d = vem_rules_window_span_limit(p);
    return d > 0 && ceil(d) + 1 <= VEM_RULES_WINDOW_RING_MAX;
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

vem_rules_window_t *vem_rules_window_new(const vem_rules_window_params_t *p, int64_t trip_start,
                                         size_t *bytes)
{
    if (!vem_rules_window_usable(p))
        return NULL;
    vem_rules_window_t *self = s_alloc(sizeof *self, bytes);
    memset(self, 0, sizeof *self);
    self->p = *p;
    self->span_limit = vem_rules_window_span_limit(p);
    self->min_power_kw = p->min_power_frac * p->rated_power_kw;
    self->base = trip_start;
    self->bytes = bytes;
    self->cap_max = (uint32_t)ceil(self->span_limit) + 1;
    return self;
}

void vem_rules_window_destroy(vem_rules_window_t **self_p)
{
    vem_rules_window_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    size_t *bytes = self->bytes;
    s_free(self->work_before, self->cap * sizeof(double), bytes);
    s_free(self->nox_before, self->cap * sizeof(double), bytes);
    s_free(self->t, self->cap * sizeof(int32_t), bytes);
    s_free(self->kept, self->kept_cap * sizeof(s_kept_t), bytes);
    s_free(self, sizeof *self, bytes);
    *self_p = NULL;
}

/* Makes room for one more sample in the ring, keeping the order from head. */
static void s_ring_grow(vem_rules_window_t *self)
{
    uint32_t cap = self->cap ? self->cap * 2 : S_RING_START;
    if (cap > self->cap_max)
        cap = self->cap_max;
    double *wb = s_alloc(cap * sizeof(double), self->bytes);
    double *nb = s_alloc(cap * sizeof(double), self->bytes);
    int32_t *t = s_alloc(cap * sizeof(int32_t), self->bytes);
    for (uint32_t i = 0, k = self->head; i < self->count; i++) {
        wb[i] = self->work_before[k];
        nb[i] = self->nox_before[k];
        t[i] = self->t[k];
        if (++k == self->cap)
            k = 0;
    }
    s_free(self->work_before, self->cap * sizeof(double), self->bytes);
    s_free(self->nox_before, self->cap * sizeof(double), self->bytes);
    s_free(self->t, self->cap * sizeof(int32_t), self->bytes);
    self->work_before = wb;
    self->nox_before = nb;
    self->t = t;
    self->cap = cap;
    self->head = 0;
}

static void s_sift_down(s_kept_t *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        if (l < n && h[l].nox < h[m].nox)
            m = l;
        if (l + 1 < n && h[l + 1].nox < h[m].nox)
            m = l + 1;
        if (m == i)
            return;
        s_kept_t x = h[i];
        h[i] = h[m];
        h[m] = x;
        i = m;
    }
}

/* A valid window: counted, and kept while it is among the largest. */
static void s_keep(vem_rules_window_t *self, double nox, int32_t start, int32_t end)
{
    self->valid++;
    if (nox > self->p.limit_mg_kwh)
        self->over++;
    s_kept_t e = {(float)nox, start, end};
    if (self->nkept == self->kept_cap && self->kept_cap < VEM_RULES_WINDOW_KEEP) {
        uint32_t cap = self->kept_cap ? self->kept_cap * 2 : S_HEAP_START;
        if (cap > VEM_RULES_WINDOW_KEEP)
            cap = VEM_RULES_WINDOW_KEEP;
        s_kept_t *k = s_alloc(cap * sizeof *k, self->bytes);
        if (self->nkept)
            memcpy(k, self->kept, self->nkept * sizeof *k);
        s_free(self->kept, self->kept_cap * sizeof *k, self->bytes);
        self->kept = k;
        self->kept_cap = cap;
    }
    if (self->nkept < self->kept_cap) {
        uint32_t i = self->nkept++;
        self->kept[i] = e;
        while (i > 0 && self->kept[(i - 1) / 2].nox > self->kept[i].nox) {
            s_kept_t x = self->kept[i];
            self->kept[i] = self->kept[(i - 1) / 2];
            self->kept[(i - 1) / 2] = x;
            i = (i - 1) / 2;
        }
    } else if (e.nox > self->kept[0].nox) {
        self->kept[0] = e;
        s_sift_down(self->kept, self->nkept, 0);
    }
}

void vem_rules_window_add(vem_rules_window_t *self, double torque_pct, double friction_pct,
                          double rpm, double intake_kgph, double fuel_lph, double nox_ppm,
                          int64_t t)
{
    const vem_rules_window_params_t *p = &self->p;
    double power =
        (torque_pct - friction_pct) / 100 * p->ref_torque_nm * rpm * 2 * M_PI / 60 / 1000;
    if (power < 0)
        power = 0;
    double exhaust = intake_kgph + fuel_lph * p->fuel_density_kg_l;
    double mass = p->nox_u * (nox_ppm > 0 ? nox_ppm : 0) * exhaust / 3600;

    if (self->count == self->cap)
        s_ring_grow(self);
    uint32_t slot = self->head + self->count;
    if (slot >= self->cap)
        slot -= self->cap;
    self->work_before[slot] = self->work;
    self->nox_before[slot] = self->nox;
    self->t[slot] = (int32_t)(t - self->base);
    self->count++;
    self->samples++;
    self->work += power / 3600;
    self->nox += mass;

    /* windows this sample ends, oldest first */
    while (self->count > 0) {
        uint32_t h = self->head;
        double work = self->work - self->work_before[h];
        if (work < p->whtc_work_kwh)
            break;
        self->windows++;
        if (work * 3600 / self->count >= self->min_power_kw)
            s_keep(self, (self->nox - self->nox_before[h]) * 1000 / work, self->t[h],
                   self->t[slot]);
        self->head = h + 1 == self->cap ? 0 : h + 1;
        self->count--;
    }
    /* windows too long to be valid even if the next sample ends them */
    while (self->count > 0 && (double)self->count + 1 >= self->span_limit) {
        self->windows++;
        self->head = self->head + 1 == self->cap ? 0 : self->head + 1;
        self->count--;
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

void vem_rules_window_result(vem_rules_window_t *self, vem_rules_window_result_t *out)
{
    memset(out, 0, sizeof *out);
    out->samples = self->samples;
    out->windows = self->windows;
    out->valid = self->valid;
    out->over = self->over;
    out->percentile_mg_kwh = NAN;
    uint32_t n = self->valid;
    if (n == 0)
        return;
    uint32_t rank = (uint32_t)(((uint64_t)self->p.percentile * n + 99) / 100);
    out->rank = rank;
    out->fails = n - self->over < rank;
    qsort(self->kept, self->nkept, sizeof *self->kept, s_by_nox_desc);
    /* the kept windows are now a sorted array, no longer a heap: rebuild it as one (a
     * descending array reversed is ascending, which is a min-heap) */
    uint32_t top = n - rank + 1; /* the percentile is the top-th largest */
    uint32_t at = top <= self->nkept ? top - 1 : self->nkept - 1;
    out->exact = top <= self->nkept;
    out->percentile_mg_kwh = self->kept[at].nox;
    uint32_t lo = at >= 2 ? at - 2 : 0, hi = at + 2 < self->nkept ? at + 2 : self->nkept - 1;
    for (uint32_t i = hi + 1; i-- > lo;) {
        vem_rules_window_at_t *a = &out->around[out->naround++];
        a->start = self->base + self->kept[i].start;
        a->end = self->base + self->kept[i].end;
        a->nox_mg_kwh = self->kept[i].nox;
        a->rank = n - i;
    }
    for (uint32_t i = 0, j = self->nkept - 1; i < j; i++, j--) {
        s_kept_t x = self->kept[i];
        self->kept[i] = self->kept[j];
        self->kept[j] = x;
    }
}
