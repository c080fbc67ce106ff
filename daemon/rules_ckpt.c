/* rules_ckpt — one vehicle's whole rule state to bytes and back (vem_rules_vehicle_save/load).
 *
 * Pure; runs on the worker that owns the vehicle. Save appends to the caller's buffer (grown
 * geometrically, so a save costs one or no allocation); load allocates a new vehicle that the
 * caller owns. The state structs are in rules_int.h: every member of them is written here,
 * field by field (never a struct's bytes, whose padding would make two saves of one state
 * differ), and read back in the same order.
 *
 * Format, version 12, host-endian (a checkpoint is read back by the same build on the same
 * host; a byte-order probe says when it is not):
 *   "VRCK", u32 version, u32 0x01020304
 *   ids (vin, plate, plate colour: u8 length + bytes), facts, flags, receipt times (the last
 *     receipt, the last data time, and the last receipt on the intake clock), counts
 *   OBD snapshots: newest, VIN mismatch, the MIL runs (capacity, truncated, count, runs), the
 *     DTC set (capacity, count, codes)
 *   the live track, then the back-fill track: trip (its last receipt on the intake clock,
 *     receipt less intake's paused total: files written before that total existed hold the
 *     receipt time, which is the same while nothing was paused), spans, the SCR window (the
 *     minute being filled, then the ring's capacity and its whole minutes, oldest first, 22
 *     bytes each), figures, and its NOx window with the sums before the ring's head and
 *     the ring's samples from the oldest open window on (12-byte slots of increments, oldest
 *     first) and the kept windows in their order
 *   roadside: five chains (present, truncated, capacity, readings with a flags byte: bit 0
 *     "over", bit 1 "loaded" from the stored history and not yet come as an input, and then
 *     its receipt time follows the ids, bit 2 "anchor": a verdict was emitted under its id, and
 *     then the time of the last reading the latest of them rests on, that reading's key (u64,
 *     rules_rsd.c s_key) and their count (u8) follow), the
 *     fusion history (slots, head, newest, one u32 per slot: vem_rules_nox_t) and the pending
 *     NO exceedances
 *   re-sent data (rules.c, s_hold): each track's whole range (from which second on it took
 *     every second but its gaps', s_copy) with its gaps (room, count, and each: offset from the
 *     trip's start and length, u32), the copy and held counts, and the live track's held
 *     samples (room, count, whether the hole fills from its start, from its end, and each:
 *     time, key, block type, whether the gap before it may hold a hole's seconds, ten u16 raw
 *     values)
 *   u64 bytes of memory the state held
 * Older versions are still read, so an upgrade keeps the states of the previous build:
 * version 12 is version 13 without the gaps (its whole range started again at each gap), how
 * the hole fills and the held samples' hole marks: loaded, a track has no gaps (a copy of a
 * second before its newest gap is not known as one), how the hole fills is not known, and
 * every held sample is marked (what is held is not judged across a skip before its wait ends);
 * version 11 is version 12 without the re-sent data part: loaded, nothing is held, the counts
 * are 0, and a track's whole range starts at the second after its last (a copy of what it
 * took before the upgrade is not known as one);
 * version 10 is version 11 without the NOx window's sums before the head, and with a ring slot
 * of 20 bytes, the sums before the sample as doubles where version 11 has the sample's own
 * values as floats (rules_window.c): loaded, the head's sums are its first slot's (the trip's
 * sums when there is none), and a sample's values are the difference of its slot's sums and
 * the next slot's (the trip's sums for the newest) rounded to float. That rounding is the one
 * a sample taken by this build gets, but made on the difference of the sums, not on the
 * sample's own values: an open window of a trip that crosses the upgrade sums values that may
 * differ from what this build would have summed by a float's last digit (6e-8);
 * version 9 is version 10 without the readings' "anchor" bit and reach: loaded, no reading is
 * taken for one (a cut then corrects, of the verdicts across it, those under the ids of its
 * runs' oldest readings only, as that build did: rules_rsd.c s_emit_cut);
 * version 8 is version 9 with a span of SCR block sums where version 9 has the SCR window:
 * loaded, the span is read and dropped and the track's SCR window starts afresh (s_get_track);
 * version 7 is version 8 without the last count, dtcs_unjudged (loaded: 0, none counted yet);
 * version 6 is version 7 with the readings' flags byte only "over" (0 or 1): loaded, no reading
 * is taken for one from the stored history (as that build judged them);
 * version 5 is version 6 without the last receipt on the intake clock: loaded, it is not known
 * (INT64_MIN), and obd.offline measures the silence on the wall clock until the next receipt;
 * version 4 is version 5 with a track's last receipt as the receipt time, which is the intake
 * clock of a build that never counted intake pauses (the one that writes version 5 counts
 * them from 0), so it is read as it is; a build that reads version 4 at most refuses a
 * version 5 file rather than take its intake clock for receipt times;
 * version 3 kept a second of fusion history as its raw NOx alone (u16), without the key of
 * its sample: loaded, such a second's key is VEM_RULES_KEY_UNKNOWN (a verdict on it names the
 * sample by its rule time only), and its memory is what the new form holds;
 * version 2 held one MIL episode (on, escalated, since) where version 3 holds runs, roadside
 * chains of exceedances after one compliant time where version 3 holds the readings, and no
 * late_mil count; loading converts them (the episode becomes one run from its start to the
 * newest snapshot, the compliant time a compliant reading without ids, a chain of
 * VEM_RULES_CHAIN_MAX readings a truncated one), and their memory is then what the new form
 * holds. Version 1 is version 2 without the plate colour (then unknown, and the next roadside
 * reading of the plate gives it).
 * Capacities are saved so the loaded vehicle holds the memory the saved one did
 * (vem_rules_vehicle_bytes is the same, and checked; from a version 3 to 10 file, whose NOx
 * window ring had 20-byte slots, less 8 bytes a slot of the ring's capacity, and from a
 * version 3 file more for the fusion history's keys).
 *
 * No verdict is held in the state: pending roadside readings keep their figures, not JSON,
 * and every evidence object is built when its verdict is emitted.
 *
 * Load trusts nothing: every count and capacity is checked against the remaining bytes and
 * the module's own limits before anything is allocated, enums and booleans against their
 * ranges, times against +-2^40 s (so the engine's arithmetic on them cannot overflow), and
 * the invariants the per-sample code relies on (a ring with room for its next sample, kept
 * windows for every valid one) are checked as well. Any failure frees what was built and
 * says which field and why. */
#include "rules_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAGIC       "VRCK"
#define S_VERSION     13u
#define S_VERSION_MIN 1u /* the oldest version read */
#define S_V3          3u /* runs of MIL snapshots, chains of readings */
#define S_V4          4u /* the fusion history keeps each second's sample key */
/* version 5: a track's last receipt is on the intake clock (receipt less intake's paused
 * total); version 4's receipt time is the same value, since nothing paused the clock then */
#define S_V6  6u  /* the vehicle's last receipt on the intake clock too (obd.offline) */
#define S_V7  7u  /* a chain reading's flags byte says "loaded" too */
#define S_V8  8u  /* the count of trouble codes not judged (a full DTC set) */
#define S_V9  9u  /* a track's SCR window of whole minutes where the scr span was */
#define S_V10 10u /* a chain reading's flags byte says "anchor" too, with its reach */
#define S_V11 11u /* a NOx window's ring of increments, after the sums before its head */
#define S_V12 12u /* the tracks' whole ranges, two more counts, the held samples */
#define S_V13 13u /* the tracks' gaps, how a hole fills, held samples' hole marks */
/* Bytes of a NOx window's ring slot before version 11: work and NOx summed before the sample
 * (two doubles), then its time. */
#define S_SLOT_V10 20u
/* Bytes of a saved held sample: time, key (i32, u16), block type, (version 13 on) whether the gap
 * before it may hold a hole's seconds, ten u16 values. */
#define S_HELD_BYTES(version)                                                                      \
    (8u + 4u + 2u + 1u + ((version) >= S_V13) + 2u * VEM_RULES_HELD_FIELDS)
#define S_PROBE 0x01020304u
/* Times beyond this many seconds from 1970 (about 35,000 years) are damage. */
#define S_TIME_MAX_S ((int64_t)1 << 40)
#define S_US         ((int64_t)1000000)

/* A member added to a state struct must be saved and loaded here, and S_VERSION bumped: these
 * sizes (of x86-64 and other LP64 hosts) fail the build when a struct changes, as a reminder.
 * Update them once the new member is in the format. */
#if defined(__LP64__)
_Static_assert(sizeof(struct vem_rules_vehicle) == 2040, "vehicle changed: update rules_ckpt");
/* (its nox_high_held is not saved: it is nox_high.n > 0) */
_Static_assert(sizeof(vem_rules_track_t) == 808, "track changed: update rules_ckpt");
_Static_assert(sizeof(vem_rules_window_t) == 392, "window changed: update rules_ckpt");
/* (its staged kept windows are saved as kept ones, as vem_rules_window_settle appends them) */
_Static_assert(sizeof(vem_rules_span_t) == 48, "span changed: update rules_ckpt");
_Static_assert(sizeof(vem_rules_scr_minute_t) == 24, "scr minute changed: update rules_ckpt");
_Static_assert(sizeof(vem_rules_rsd_t) == 144, "roadside changed: update rules_ckpt");
/* (its fusion stage is saved as part of the ring, as vem_rules_rsd_settle writes it) */
_Static_assert(sizeof(vem_rules_chain_t) == 24, "chain changed: update rules_ckpt");
_Static_assert(sizeof(vem_rules_link_t) == 144, "link changed: update rules_ckpt");
_Static_assert(sizeof(vem_rules_pending_t) == 120, "pending changed: update rules_ckpt");
_Static_assert(sizeof(vem_rules_counts_t) == 88, "counts changed: update rules_ckpt");
_Static_assert(sizeof(vem_rules_engine_facts_t) == 32, "facts changed: update rules_ckpt");
#endif

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct {
    uint8_t **buf;
    size_t *len, *cap;
} s_wr_t;

static void s_reserve(s_wr_t *w, size_t n)
{
    if (*w->cap - *w->len >= n)
        return;
    size_t cap = *w->cap ? *w->cap * 2 : 256;
    if (cap < *w->len + n)
        cap = *w->len + n;
    uint8_t *b = realloc(*w->buf, cap);
    if (!b)
        abort();
    *w->buf = b;
    *w->cap = cap;
}

static void s_put(s_wr_t *w, const void *p, size_t n)
{
    if (n == 0)
        return; /* p may be NULL then (an array not allocated) */
    s_reserve(w, n);
    memcpy(*w->buf + *w->len, p, n);
    *w->len += n;
}

static void s_put_u8(s_wr_t *w, uint8_t v)
{
    s_put(w, &v, sizeof v);
}

static void s_put_u16(s_wr_t *w, uint16_t v)
{
    s_put(w, &v, sizeof v);
}

static void s_put_u32(s_wr_t *w, uint32_t v)
{
    s_put(w, &v, sizeof v);
}

static void s_put_i32(s_wr_t *w, int32_t v)
{
    s_put(w, &v, sizeof v);
}

static void s_put_u64(s_wr_t *w, uint64_t v)
{
    s_put(w, &v, sizeof v);
}

static void s_put_i64(s_wr_t *w, int64_t v)
{
    s_put(w, &v, sizeof v);
}

static void s_put_f64(s_wr_t *w, double v)
{
    s_put(w, &v, sizeof v);
}

static void s_put_f32(s_wr_t *w, float v)
{
    s_put(w, &v, sizeof v);
}

static void s_put_str(s_wr_t *w, const char *s)
{
    size_t n = strlen(s);
    s_put_u8(w, (uint8_t)n); /* every string of the state fits in 64 bytes */
    s_put(w, s, n);
}

/* ---- reading: the first failure sticks; later reads give zeros ----------------------------- */

typedef struct {
    const uint8_t *p;
    size_t left;
    const char *where; /* the part being read, for the messages */
    char *err;
    size_t errlen;
    bool failed;
    uint32_t version; /* of the checkpoint being read */
    size_t grown;     /* memory the loaded state holds beyond what the older form said */
    size_t shrunk;    /* ... and short of it */
} s_rd_t;

__attribute__((format(printf, 2, 3))) static void s_fail(s_rd_t *r, const char *fmt, ...)
{
    if (r->failed)
        return;
    r->failed = true;
    if (!r->err || r->errlen == 0)
        return;
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "rules checkpoint: %s%s%s", r->where ? r->where : "",
             r->where ? ": " : "", what);
}

static void s_get(s_rd_t *r, void *out, size_t n, const char *what)
{
    if (n == 0)
        return; /* out may be NULL then */
    if (!r->failed && r->left < n)
        s_fail(r, "truncated in %s (%zu bytes needed, %zu left)", what, n, r->left);
    if (r->failed) {
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
}

static uint8_t s_u8(s_rd_t *r, const char *what)
{
    uint8_t v;
    s_get(r, &v, sizeof v, what);
    return v;
}

static uint16_t s_u16(s_rd_t *r, const char *what)
{
    uint16_t v;
    s_get(r, &v, sizeof v, what);
    return v;
}

static uint32_t s_u32(s_rd_t *r, const char *what)
{
    uint32_t v;
    s_get(r, &v, sizeof v, what);
    return v;
}

static int32_t s_i32(s_rd_t *r, const char *what)
{
    int32_t v;
    s_get(r, &v, sizeof v, what);
    return v;
}

static uint64_t s_u64(s_rd_t *r, const char *what)
{
    uint64_t v;
    s_get(r, &v, sizeof v, what);
    return v;
}

static int64_t s_i64(s_rd_t *r, const char *what)
{
    int64_t v;
    s_get(r, &v, sizeof v, what);
    return v;
}

static double s_f64(s_rd_t *r, const char *what)
{
    double v;
    s_get(r, &v, sizeof v, what);
    return v;
}

static float s_f32(s_rd_t *r, const char *what)
{
    float v;
    s_get(r, &v, sizeof v, what);
    return v;
}

/* A boolean is one byte, 0 or 1 (another value in a C bool would be undefined behaviour). */
static bool s_bool(s_rd_t *r, const char *what)
{
    uint8_t v = s_u8(r, what);
    if (v > 1)
        s_fail(r, "%s is %u, not a boolean", what, v);
    return v == 1;
}

/* A string into out[size]: shorter than size, without NUL bytes. */
static void s_str(s_rd_t *r, char *out, size_t size, const char *what)
{
    uint8_t n = s_u8(r, what);
    if (!r->failed && n >= size)
        s_fail(r, "%s of %u bytes, at most %zu", what, n, size - 1);
    if (r->failed) {
        out[0] = '\0';
        return;
    }
    s_get(r, out, n, what);
    out[r->failed ? 0 : n] = '\0';
    if (!r->failed && memchr(out, '\0', n))
        s_fail(r, "%s holds a NUL byte", what);
}

/* Epoch seconds (or microseconds when us) within +-2^40 s; or none when that is allowed. */
static int64_t s_time(s_rd_t *r, bool us, bool none_ok, int64_t none, const char *what)
{
    int64_t v = s_i64(r, what);
    int64_t max = us ? S_TIME_MAX_S * S_US : S_TIME_MAX_S;
    if (none_ok && v == none)
        return v;
    if (v > max || v < -max)
        s_fail(r, "%s %" PRId64 " outside +-2^40 s", what, v);
    return r->failed ? 0 : v;
}

static uint32_t s_at_most(s_rd_t *r, uint32_t v, uint32_t max, const char *what)
{
    if (v > max)
        s_fail(r, "%s %" PRIu32 " above %" PRIu32, what, v, max);
    return r->failed ? 0 : v;
}

/* 0 or a power of two from lo to hi: the capacities the engine grows through. */
static uint32_t s_capacity(s_rd_t *r, uint32_t v, uint32_t lo, uint32_t hi, const char *what)
{
    if (v != 0 && (v < lo || v > hi || (v & (v - 1)) != 0))
        s_fail(r, "%s %" PRIu32 " is not 0 or a power of two from %" PRIu32 " to %" PRIu32, what, v,
               lo, hi);
    return r->failed ? 0 : v;
}

static void *s_alloc(size_t n, size_t *bytes)
{
    void *p = calloc(1, n);
    if (!p)
        abort();
    *bytes += n;
    return p;
}

/* ---- instants, spans, facts --------------------------------------------------------------- */

static void s_put_at(s_wr_t *w, const vem_rules_at_t *a)
{
    s_put_i64(w, a->sec);
    s_put_i32(w, a->key_off);
    s_put_u16(w, a->key_idx);
}

static void s_get_at(s_rd_t *r, vem_rules_at_t *a, const char *what)
{
    a->sec = s_time(r, false, false, 0, what);
    a->key_off = s_i32(r, what);
    a->key_idx = s_u16(r, what);
}

static void s_put_span(s_wr_t *w, const vem_rules_span_t *s)
{
    s_put_u32(w, s->n);
    s_put_u32(w, s->value);
    s_put_u8(w, s->fired);
    s_put_at(w, &s->first);
    s_put_f64(w, s->lo);
    s_put_f64(w, s->hi);
}

static void s_get_span(s_rd_t *r, vem_rules_span_t *s, const char *what)
{
    s->n = s_u32(r, what);
    s->value = s_u32(r, what);
    s->fired = s_bool(r, what);
    s_get_at(r, &s->first, what);
    s->lo = s_f64(r, what);
    s->hi = s_f64(r, what);
}

static void s_put_facts(s_wr_t *w, const vem_rules_engine_facts_t *f)
{
    s_put_f64(w, f->ref_torque_nm);
    s_put_f64(w, f->rated_power_kw);
    s_put_f64(w, f->whtc_work_kwh);
    s_put_u8(w, (uint8_t)f->fuel);
}

static void s_get_facts(s_rd_t *r, vem_rules_engine_facts_t *f, const char *what)
{
    f->ref_torque_nm = s_f64(r, what);
    f->rated_power_kw = s_f64(r, what);
    f->whtc_work_kwh = s_f64(r, what);
    uint8_t fuel = s_u8(r, what);
    if (fuel > VEM_FUEL_GAS)
        s_fail(r, "%s fuel %u out of range", what, fuel);
    f->fuel = r->failed ? VEM_FUEL_UNKNOWN : (vem_rules_fuel_t)fuel;
}

/* ---- the NOx window ----------------------------------------------------------------------- */

static void s_put_kept(s_wr_t *w, const vem_rules_kept_t *k)
{
    s_put_f32(w, k->nox);
    s_put_i32(w, k->start);
    s_put_i32(w, k->end);
}

static void s_get_kept(s_rd_t *r, vem_rules_kept_t *k)
{
    k->nox = s_f32(r, "kept window");
    k->start = s_i32(r, "kept window");
    k->end = s_i32(r, "kept window");
}

static void s_put_window(s_wr_t *w, const vem_rules_window_t *win)
{
    s_put_u8(w, win->active);
    if (!win->active)
        return;
    s_put_f64(w, win->work_per_pct_rpm);
    s_put_f64(w, win->mass_per_ppm_kgph);
    s_put_f64(w, win->density);
    s_put_f64(w, win->whtc_work_kwh);
    s_put_f64(w, win->min_work_per_sample);
    s_put_f64(w, win->span_limit);
    s_put_f64(w, win->limit_mg_kwh);
    s_put_u32(w, win->percentile);
    s_put_i64(w, win->base);
    s_put_u32(w, win->cap);
    s_put_u32(w, win->cap_max);
    s_put_u32(w, win->count);
    s_put_f64(w, win->work);
    s_put_f64(w, win->nox);
    s_put_u32(w, win->samples);
    s_put_u32(w, win->windows);
    s_put_u32(w, win->valid);
    s_put_u32(w, win->over);
    s_put_f64(w, win->head_work);
    s_put_f64(w, win->head_nox);
    /* the ring from its head: at most two runs of whole slots; none before the window takes
     * the trip's first sample, and no ring either then (rules_window.c allocates it with that
     * sample: no arithmetic on its NULL) */
    if (win->count) {
        uint32_t first = win->cap - win->head < win->count ? win->cap - win->head : win->count;
        s_put(w, win->ring + (size_t)win->head * VEM_RULES_SLOT, (size_t)first * VEM_RULES_SLOT);
        s_put(w, win->ring, (size_t)(win->count - first) * VEM_RULES_SLOT);
    }
    /* the kept windows as vem_rules_window_settle leaves them: the staged ones appended */
    s_put_u32(w, win->kept_cap);
    s_put_u32(w, win->nkept + win->nstage);
    for (uint32_t i = 0; i < win->nkept; i++)
        s_put_kept(w, &win->kept[i]);
    for (uint32_t i = 0; i < win->nstage; i++)
        s_put_kept(w, &win->stage[i]);
    s_put_u8(w, win->full);
    s_put_kept(w, &win->threshold);
}

/* A version 10 ring of count slots into win->ring (room for them), with the sums before its
 * head: sums before each sample become the sample's own values (the format note above). */
static void s_get_ring_v10(s_rd_t *r, vem_rules_window_t *win, uint32_t count)
{
    double work = win->work, nox = win->nox; /* the sums after the newest: the trip's */
    for (uint32_t i = count; i-- > 0;) {
        const uint8_t *slot = r->p + (size_t)i * S_SLOT_V10;
        double before_work, before_nox;
        int32_t t;
        memcpy(&before_work, slot, 8);
        memcpy(&before_nox, slot + 8, 8);
        memcpy(&t, slot + 16, 4);
        vem_rules_slot_put(win->ring, i, (float)(work - before_work), (float)(nox - before_nox), t);
        work = before_work;
        nox = before_nox;
    }
    win->head_work = work;
    win->head_nox = nox;
    r->p += (size_t)count * S_SLOT_V10;
    r->left -= (size_t)count * S_SLOT_V10;
}

/* What the per-sample code relies on: sums that never decrease (rules_window.c), so every
 * value finite and not negative, and the trip's sums those before the head plus the ring's
 * values, added in their order (rules_window.c keeps this exactly). A version 10 ring's values
 * are rounded differences of its sums: the trip's sums become what they add up to. */
static void s_check_ring(s_rd_t *r, vem_rules_window_t *win)
{
    if (r->failed)
        return;
    double work = win->head_work, nox = win->head_nox;
    if (!(isfinite(work) && isfinite(nox) && work >= 0 && nox >= 0)) {
        s_fail(r, "window sums before the head %g kWh, %g g", work, nox);
        return;
    }
    for (uint32_t i = 0; i < win->count; i++) {
        float dw = vem_rules_slot_work(win->ring, i), dn = vem_rules_slot_nox(win->ring, i);
        if (!(isfinite(dw) && isfinite(dn) && dw >= 0 && dn >= 0)) {
            s_fail(r, "window ring slot %" PRIu32 " holds %g kWh, %g g", i, (double)dw, (double)dn);
            return;
        }
        work += dw;
        nox += dn;
    }
    if (r->version < S_V11) {
        win->work = work;
        win->nox = nox;
    } else if (work != win->work || nox != win->nox || !isfinite(work) || !isfinite(nox)) {
        s_fail(r, "window sums %.17g kWh, %.17g g are not those of the ring (%.17g, %.17g)",
               win->work, win->nox, work, nox);
    }
}

/* Reads a window into win (zeroed), its allocations counted in *bytes. On failure win may hold
 * allocations: vem_rules_window_stop frees them. */
static void s_get_window(s_rd_t *r, vem_rules_window_t *win, size_t *bytes)
{
    if (!s_bool(r, "window active"))
        return;
    win->active = true;
    win->bytes = bytes;
    win->work_per_pct_rpm = s_f64(r, "window constants");
    win->mass_per_ppm_kgph = s_f64(r, "window constants");
    win->density = s_f64(r, "window constants");
    win->whtc_work_kwh = s_f64(r, "window constants");
    win->min_work_per_sample = s_f64(r, "window constants");
    win->span_limit = s_f64(r, "window span limit");
    win->limit_mg_kwh = s_f64(r, "window limit");
    win->percentile = s_u32(r, "window percentile");
    win->base = s_time(r, false, false, 0, "window trip start");
    uint32_t cap = s_u32(r, "window ring capacity");
    uint32_t cap_max = s_u32(r, "window ring bound");
    uint32_t count = s_u32(r, "window ring count");
    win->work = s_f64(r, "window sums");
    win->nox = s_f64(r, "window sums");
    win->samples = s_u32(r, "window samples");
    win->windows = s_u32(r, "window count");
    win->valid = s_u32(r, "window valid count");
    win->over = s_u32(r, "window over-limit count");
    if (r->failed)
        return;
    if (win->percentile < 1 || win->percentile > 100) {
        s_fail(r, "window percentile %u outside 1 .. 100", win->percentile);
        return;
    }
    /* as the configuration and usable figures make them: a sample's work and NOx are then
     * never negative and within a float, and the sums never decrease */
    if (!vem_rules_window_constants_ok(win)) {
        s_fail(r, "window constants %g, %g, %g, %g, %g are not those of usable figures",
               win->work_per_pct_rpm, win->mass_per_ppm_kgph, win->density, win->whtc_work_kwh,
               win->min_work_per_sample);
        return;
    }
    double d = win->span_limit;
    if (!(isfinite(d) && d > 0 && ceil(d) + 1 <= VEM_RULES_WINDOW_RING_MAX)) {
        s_fail(r, "window span limit %g outside (0, %d]", d, VEM_RULES_WINDOW_RING_MAX - 1);
        return;
    }
    if (cap_max != (uint32_t)ceil(d) + 1) {
        s_fail(r, "window ring bound %" PRIu32 " is not that of its span limit %g", cap_max, d);
        return;
    }
    s_at_most(r, count, VEM_RULES_WINDOW_RING_MAX, "window ring count");
    s_at_most(r, cap, cap_max, "window ring capacity");
    s_at_most(r, count, cap, "window ring count");
    if (!r->failed && count > 0 && !((double)count + 1 < d))
        s_fail(r, "window ring count %" PRIu32 " leaves no room under the span limit %g", count, d);
    /* a window ends by letting its first sample go from the ring: every window and every
     * sample in the ring is one of the trip's window samples */
    if (!r->failed && (uint64_t)win->windows + count > win->samples)
        s_fail(r, "%" PRIu32 " windows and %" PRIu32 " samples in the ring of %" PRIu32 " samples",
               win->windows, count, win->samples);
    s_at_most(r, win->valid, win->windows, "window valid count");
    s_at_most(r, win->over, win->valid, "window over-limit count");
    if (r->failed)
        return;
    win->cap_max = cap_max;
    if (r->version >= S_V11) {
        win->head_work = s_f64(r, "window sums before the head");
        win->head_nox = s_f64(r, "window sums before the head");
    }
    if (!r->failed && r->left / (r->version >= S_V11 ? VEM_RULES_SLOT : S_SLOT_V10) < count)
        s_fail(r, "truncated in window ring (%" PRIu32 " slots, %zu bytes left)", count, r->left);
    if (r->failed)
        return;
    if (cap) {
        win->ring = s_alloc((size_t)cap * VEM_RULES_SLOT, bytes);
        win->cap = cap;
        if (r->version < S_V11)
            r->shrunk += (size_t)cap * (S_SLOT_V10 - VEM_RULES_SLOT);
    }
    if (r->version >= S_V11)
        s_get(r, win->ring, (size_t)count * VEM_RULES_SLOT, "window ring");
    else
        s_get_ring_v10(r, win, count);
    win->count = count;
    win->head = 0;
    s_check_ring(r, win);
    uint32_t kept_cap = s_u32(r, "kept window capacity");
    uint32_t nkept = s_u32(r, "kept window count");
    s_at_most(r, kept_cap, VEM_RULES_KEPT_MAX, "kept window capacity");
    s_at_most(r, nkept, kept_cap, "kept window count");
    s_at_most(r, nkept, VEM_RULES_KEPT_MAX - 1, "kept window count");
    s_at_most(r, nkept, win->valid, "kept window count");
    if (!r->failed && r->left / 12 < nkept)
        s_fail(r, "truncated in kept windows (%" PRIu32 " of 12 bytes, %zu bytes left)", nkept,
               r->left);
    if (r->failed)
        return;
    if (kept_cap) {
        win->kept = s_alloc((size_t)kept_cap * sizeof *win->kept, bytes);
        win->kept_cap = kept_cap;
    }
    for (uint32_t i = 0; i < nkept; i++)
        s_get_kept(r, &win->kept[i]);
    win->nkept = nkept;
    win->full = s_bool(r, "kept windows full");
    s_get_kept(r, &win->threshold);
    if (r->failed)
        return;
    /* what vem_rules_window_result reads: a kept window for every valid one until full */
    if (!win->full && nkept != win->valid)
        s_fail(r, "%" PRIu32 " kept windows for %" PRIu32 " valid ones", nkept, win->valid);
    if (win->full && nkept < VEM_RULES_WINDOW_KEEP)
        s_fail(r, "kept windows full with %" PRIu32 " below %d", nkept, VEM_RULES_WINDOW_KEEP);
}

/* ---- the SCR window ------------------------------------------------------------------------ */

static void s_put_scr_minute(s_wr_t *w, const vem_rules_scr_minute_t *m)
{
    s_put_u32(w, m->up);
    s_put_u32(w, m->down);
    s_put_at(w, &m->first);
}

static void s_get_scr_minute(s_rd_t *r, vem_rules_scr_minute_t *m, uint32_t n, const char *what)
{
    m->up = s_u32(r, what);
    m->down = s_u32(r, what);
    s_get_at(r, &m->first, what);
    /* raw values are at most 0xFAFF (a minute's sums fit in 32 bits because of it) */
    if (!r->failed && (m->up > n * 0xFAFFu || m->down > n * 0xFAFFu))
        s_fail(r, "%s: sums above %" PRIu32 " samples of 0xFAFF", what, n);
}

/* The minute being filled (count, sums, first sample), then the ring's capacity and the minutes
 * it holds, oldest first. */
static void s_put_scr(s_wr_t *w, const vem_rules_track_t *tr)
{
    s_put_u32(w, tr->scr_n);
    s_put_scr_minute(w, &tr->scr_fill);
    s_put_u16(w, tr->scr_cap);
    s_put_u16(w, tr->scr_held);
    for (uint32_t i = 0; i < tr->scr_held; i++)
        s_put_scr_minute(
            w, &tr->scr_ring[(tr->scr_next + tr->scr_cap - tr->scr_held + i) % tr->scr_cap]);
}

/* Reads it into tr (its SCR part zeroed), the ring counted in *bytes; on failure tr may hold
 * the ring, which vem_rules_vehicle_destroy frees. */
static void s_get_scr(s_rd_t *r, vem_rules_track_t *tr, size_t *bytes)
{
    tr->scr_n =
        s_at_most(r, s_u32(r, "scr minute count"), VEM_RULES_SCR_MINUTE - 1, "scr minute count");
    s_get_scr_minute(r, &tr->scr_fill, tr->scr_n, "scr minute being filled");
    uint32_t cap = s_at_most(r, s_u16(r, "scr window capacity"), VEM_RULES_SCR_MINUTES_MAX,
                             "scr window capacity");
    uint32_t held = s_at_most(r, s_u16(r, "scr window minutes"), cap, "scr window minutes");
    if (!r->failed && cap && !tr->open)
        s_fail(r, "an scr window in a closed trip");
    if (!r->failed && r->left / 22 < held)
        s_fail(r, "truncated in scr window (%" PRIu32 " minutes of 22 bytes, %zu bytes left)", held,
               r->left);
    if (r->failed || cap == 0)
        return;
    tr->scr_ring = s_alloc((size_t)cap * sizeof *tr->scr_ring, bytes);
    tr->scr_cap = (uint16_t)cap;
    for (uint32_t i = 0; i < held && !r->failed; i++)
        s_get_scr_minute(r, &tr->scr_ring[i], VEM_RULES_SCR_MINUTE, "scr window minute");
    tr->scr_held = r->failed ? 0 : (uint16_t)held;
    tr->scr_next = (uint16_t)(tr->scr_held % cap);
}

/* ---- tracks ------------------------------------------------------------------------------- */

static void s_put_track(s_wr_t *w, const vem_rules_track_t *tr)
{
    s_put_u8(w, tr->open);
    s_put_i64(w, tr->newest);
    s_put_at(w, &tr->start);
    s_put_at(w, &tr->last);
    s_put_i64(w, tr->last_open_us);
    s_put_u32(w, tr->samples);
    s_put_u8(w, (uint8_t)tr->running);
    s_put_i64(w, tr->engine_start);
    s_put_u8(w, tr->fallback);
    const vem_rules_span_t *spans[] = {&tr->reagent, &tr->nox_high, &tr->frozen, &tr->down_up,
                                       &tr->invalid};
    for (size_t i = 0; i < sizeof spans / sizeof *spans; i++)
        s_put_span(w, spans[i]);
    s_put_scr(w, tr);
    s_put_u8(w, tr->scr_fired);
    s_put_facts(w, &tr->figures);
    s_put_window(w, &tr->win);
}

static void s_get_track(s_rd_t *r, vem_rules_track_t *tr, size_t *bytes)
{
    tr->open = s_bool(r, "open");
    tr->newest = s_time(r, false, true, INT64_MIN, "newest sample");
    s_get_at(r, &tr->start, "trip start");
    s_get_at(r, &tr->last, "last sample");
    /* s_route makes the newest second the last sample's, and a trip starts with its first
     * sample and goes forward: a sample after a newest older than the trip's last (or start)
     * would be taken as the next of a trip it is not after */
    if (!r->failed && tr->newest == INT64_MIN && tr->open)
        s_fail(r, "a trip open on a track that took no sample");
    if (!r->failed && tr->newest != INT64_MIN && tr->newest != tr->last.sec)
        s_fail(r, "newest sample %" PRId64 " is not the last sample's second %" PRId64, tr->newest,
               tr->last.sec);
    if (!r->failed && tr->newest != INT64_MIN && tr->start.sec > tr->last.sec)
        s_fail(r, "trip start %" PRId64 " after its last sample %" PRId64, tr->start.sec,
               tr->last.sec);
    tr->last_open_us = s_time(r, true, false, 0, "last receipt (intake clock)");
    /* no more than a trip takes before it ends (s_route): its counts cannot wrap */
    tr->samples = s_at_most(r, s_u32(r, "samples"), VEM_RULES_TRIP_SAMPLES_MAX, "samples");
    uint8_t running = s_u8(r, "engine running");
    if (running != 0 && running != 1 && running != 0xFF)
        s_fail(r, "engine running %u is not -1, 0 or 1", running);
    tr->running = r->failed ? -1 : (int8_t)(running == 0xFF ? -1 : running);
    tr->engine_start = s_time(r, false, false, 0, "engine start");
    tr->fallback = s_bool(r, "fallback");
    vem_rules_span_t *spans[] = {&tr->reagent, &tr->nox_high, &tr->frozen, &tr->down_up,
                                 &tr->invalid};
    const char *names[] = {"reagent span", "nox_high span", "frozen span", "down_above_up span",
                           "invalid span"};
    /* a sample steps a span once at most, and a trip starts with its spans empty (rules.c
     * s_step, s_trip_start): a larger count would wrap, and the span would start again and
     * judge an episode already judged */
    for (size_t i = 0; i < sizeof spans / sizeof *spans; i++) {
        s_get_span(r, spans[i], names[i]);
        if (!r->failed && spans[i]->n > tr->samples)
            s_fail(r, "%s of %" PRIu32 " samples in a trip of %" PRIu32, names[i], spans[i]->n,
                   tr->samples);
    }
    tr->nox_high_held = tr->nox_high.n > 0;
    if (r->version >= S_V9) {
        s_get_scr(r, tr, bytes);
    } else {
        /* Versions 1 to 8 judged the SCR conversion over blocks of scr_minutes one after the
         * other and kept the block's sums, not its minutes: they cannot become the sliding
         * window's ring, so the track's SCR window starts afresh (empty) from the next
         * qualifying sample. A verdict already emitted in the trip (scr fired) still holds. */
        vem_rules_span_t old;
        s_get_span(r, &old, "scr span");
    }
    tr->scr_fired = s_bool(r, "scr fired");
    s_get_facts(r, &tr->figures, "trip figures");
    s_get_window(r, &tr->win, bytes);
    if (!r->failed && tr->win.active && (!tr->open || tr->fallback))
        s_fail(r, "a window in a trip that is %s", tr->open ? "on the fallback" : "closed");
    if (!r->failed && tr->win.samples > tr->samples)
        s_fail(r, "%" PRIu32 " window samples in a trip of %" PRIu32, tr->win.samples, tr->samples);
}

/* ---- roadside ----------------------------------------------------------------------------- */

static void s_put_rsd(s_wr_t *w, const vem_rules_rsd_t *rsd)
{
    for (unsigned p = 0; p < VEM_RULES_POLLUTANTS; p++) {
        const vem_rules_chain_t *c = rsd->chain[p];
        s_put_u8(w, c != NULL);
        if (!c)
            continue;
        s_put_u8(w, c->truncated);
        s_put_u32(w, c->cap);
        s_put_u32(w, c->n);
        for (uint32_t i = 0; i < c->n; i++) {
            s_put_i64(w, c->links[i].time_us);
            s_put_f64(w, c->links[i].value);
            s_put_u8(w, (uint8_t)(c->links[i].over | c->links[i].loaded << 1 |
                                  (c->links[i].reach_us != 0) << 2));
            s_put_str(w, c->links[i].station_id);
            s_put_str(w, c->links[i].reading_id);
            if (c->links[i].loaded)
                s_put_i64(w, c->links[i].received_us);
            if (c->links[i].reach_us) {
                s_put_i64(w, c->links[i].reach_us);
                s_put_u64(w, c->links[i].reach_key);
                s_put_u8(w, c->links[i].reach_n);
            }
        }
    }
    /* the history as vem_rules_rsd_settle would leave it: the staged seconds in the ring */
    uint32_t head = rsd->obd_head;
    vem_rules_nox_t *obd = NULL;
    if (rsd->nstage) {
        obd = malloc((size_t)rsd->obd_slots * sizeof *obd);
        if (!obd)
            abort();
        memcpy(obd, rsd->obd, (size_t)rsd->obd_slots * sizeof *obd);
        for (uint32_t i = 0; i < rsd->nstage; i++) {
            head = head + 1 == rsd->obd_slots ? 0 : head + 1;
            obd[head] = rsd->stage[i];
        }
    }
    s_put_u32(w, rsd->obd_slots);
    s_put_u32(w, head);
    s_put_i64(w, rsd->obd_newest + rsd->nstage);
    s_put(w, obd ? obd : rsd->obd, (size_t)rsd->obd_slots * sizeof *rsd->obd);
    free(obd);
    s_put_u8(w, rsd->pending != NULL);
    s_put_u32(w, rsd->npending);
    for (unsigned i = 0; i < rsd->npending; i++) {
        const vem_rules_pending_t *pr = &rsd->pending[i];
        s_put_i64(w, pr->time_us);
        s_put_f64(w, pr->no_ppm);
        s_put_f64(w, pr->limit);
        s_put_str(w, pr->station_id);
        s_put_str(w, pr->reading_id);
    }
}

/* True when a comes after b: by time, then station and reading id. */
static bool s_link_after(const vem_rules_link_t *a, const vem_rules_link_t *b)
{
    if (a->time_us != b->time_us)
        return a->time_us > b->time_us;
    int c = strcmp(a->station_id, b->station_id);
    return c ? c > 0 : strcmp(a->reading_id, b->reading_id) > 0;
}

/* Version 3: the readings, by time then station and reading id (rules_rsd.c relies on it). */
static void s_get_chain(s_rd_t *r, vem_rules_chain_t *c, size_t *bytes)
{
    c->truncated = s_bool(r, "chain truncated");
    uint32_t cap =
        s_capacity(r, s_u32(r, "chain capacity"), 2, VEM_RULES_CHAIN_HELD, "chain capacity");
    uint32_t n = s_at_most(r, s_u32(r, "chain length"), cap, "chain length");
    if (r->failed)
        return;
    if (cap) {
        c->links = s_alloc((size_t)cap * sizeof *c->links, bytes);
        c->cap = cap;
    }
    for (uint32_t i = 0; i < n && !r->failed; i++) {
        vem_rules_link_t *l = &c->links[i];
        bool anchor = false;
        l->time_us = s_time(r, true, false, 0, "chain reading time");
        l->value = s_f64(r, "chain reading value");
        if (r->version >= S_V7) {
            uint8_t flags = s_u8(r, "chain reading flags");
            if (!r->failed && flags > (r->version >= S_V10 ? 7 : 3))
                s_fail(r, "chain reading flags %u out of range", flags);
            l->over = flags & 1;
            l->loaded = flags >> 1 & 1;
            anchor = flags >> 2 & 1;
        } else {
            l->over = s_bool(r, "chain reading over");
        }
        s_str(r, l->station_id, sizeof l->station_id, "chain station id");
        s_str(r, l->reading_id, sizeof l->reading_id, "chain reading id");
        if (l->loaded)
            l->received_us = s_time(r, true, false, 0, "chain reading receipt");
        if (anchor) {
            l->reach_us = s_time(r, true, false, 0, "chain reading reach");
            l->reach_key = s_u64(r, "chain reading reach key");
            l->reach_n = s_u8(r, "chain reading reach count");
            /* rules_rsd.c reads a reach of 0 as none, and the save writes no anchor for it */
            if (!r->failed && l->reach_us == 0)
                s_fail(r, "chain reading %" PRIu32 " reach 0 with the anchor bit (0 is none)", i);
            if (!r->failed && l->reach_us < l->time_us)
                s_fail(r, "chain reading %" PRIu32 " reaches before itself", i);
            if (!r->failed && (l->reach_n < 1 || l->reach_n > VEM_RULES_CHAIN_MAX))
                s_fail(r, "chain reading %" PRIu32 " reach count %u outside 1..%d", i, l->reach_n,
                       VEM_RULES_CHAIN_MAX);
        }
        const vem_rules_link_t *p = i ? &c->links[i - 1] : NULL;
        if (!r->failed && p &&
            !(p->time_us < l->time_us ||
              (p->time_us == l->time_us && (strcmp(p->station_id, l->station_id) < 0 ||
                                            (strcmp(p->station_id, l->station_id) == 0 &&
                                             strcmp(p->reading_id, l->reading_id) < 0)))))
            s_fail(r, "chain reading %" PRIu32 " not after the one before it", i);
        c->n = r->failed ? c->n : i + 1;
    }
}

/* Versions 1 and 2: the exceedances after the newest compliant time. They become readings
 * over the limit after a compliant reading without ids at that time (a chain that was full may
 * have let older ones go: truncated). */
static void s_get_chain_v2(s_rd_t *r, vem_rules_chain_t *c, size_t *bytes)
{
    int64_t compliant = s_time(r, true, true, INT64_MIN, "chain compliant time");
    uint32_t cap =
        s_capacity(r, s_u32(r, "chain capacity"), 2, VEM_RULES_CHAIN_MAX, "chain capacity");
    uint32_t n = s_at_most(r, s_u32(r, "chain length"), cap, "chain length");
    if (r->failed)
        return;
    uint32_t k = compliant != INT64_MIN;
    uint32_t want = 2;
    while (want < n + k)
        want *= 2;
    c->links = s_alloc((size_t)want * sizeof *c->links, bytes);
    c->cap = want;
    c->truncated = n == VEM_RULES_CHAIN_MAX;
    if (k) {
        c->links[0].time_us = compliant;
        c->n = 1;
    }
    for (uint32_t i = 0; i < n && !r->failed; i++) {
        vem_rules_link_t *l = &c->links[k + i];
        l->time_us = s_time(r, true, false, 0, "chain reading time");
        l->value = s_f64(r, "chain reading value");
        l->over = true;
        s_str(r, l->station_id, sizeof l->station_id, "chain station id");
        s_str(r, l->reading_id, sizeof l->reading_id, "chain reading id");
        /* version 2 held readings of one time in the order they came (not before the
         * compliant time, which refused them) */
        if (!r->failed && k + i > 0 &&
            (c->links[k + i - 1].time_us > l->time_us || (i == 0 && compliant >= l->time_us)))
            s_fail(r, "chain reading %" PRIu32 " not after the one before it", i);
        c->n = r->failed ? c->n : k + i + 1;
    }
    /* version 3's order within a time: by station, then reading id (rules_rsd.c relies on it) */
    for (uint32_t i = k + 1; i < c->n && !r->failed; i++) {
        vem_rules_link_t l = c->links[i];
        uint32_t j = i;
        while (j > k && s_link_after(&c->links[j - 1], &l)) {
            c->links[j] = c->links[j - 1];
            j--;
        }
        c->links[j] = l;
    }
    for (uint32_t i = k + 1; i < c->n && !r->failed; i++)
        if (!s_link_after(&c->links[i], &c->links[i - 1]))
            s_fail(r, "chain readings %" PRIu32 " and %" PRIu32 " the same", i - k - 1, i - k);
}

/* The fusion history's slots: checked, and from a version 3 checkpoint (a u16 of raw NOx a
 * slot) widened with the key unknown. */
static void s_get_history(s_rd_t *r, vem_rules_nox_t *obd, uint32_t slots)
{
    if (r->version < S_V4) {
        const vem_rules_at_t unknown = {0, 0, VEM_RULES_KEY_UNKNOWN};
        for (uint32_t i = 0; i < slots && !r->failed; i++) {
            uint16_t raw;
            s_get(r, &raw, sizeof raw, "fusion history");
            obd[i] =
                raw == VEM_RULES_NOX_NONE ? VEM_RULES_NOX_NONE : vem_rules_nox_pack(raw, &unknown);
        }
        r->grown += (size_t)slots * (sizeof *obd - sizeof(uint16_t));
    } else {
        s_get(r, obd, (size_t)slots * sizeof *obd, "fusion history");
    }
    const vem_hj1239_field_info_t *fi = vem_hj1239_field_info(VEM_HJ1239_F_NOX_DOWN);
    for (uint32_t i = 0; i < slots && !r->failed; i++) {
        uint16_t raw = vem_rules_nox_raw(obd[i]);
        vem_rules_at_t at = vem_rules_nox_at(obd[i], 0);
        bool known = at.key_idx != VEM_RULES_KEY_UNKNOWN;
        if (raw == VEM_RULES_NOX_NONE
                ? obd[i] != VEM_RULES_NOX_NONE
                : raw > fi->max_raw || (known ? at.key_off >= VEM_HJ1239_MAX_BLOCKS ||
                                                    at.key_idx >= VEM_HJ1239_MAX_BLOCKS
                                              : at.key_off != 0))
            s_fail(r, "fusion history slot %" PRIu32 ": 0x%08" PRIx32 " is no NOx value and key", i,
                   obd[i]);
    }
}

static void s_get_rsd(s_rd_t *r, vem_rules_rsd_t *rsd, size_t *bytes)
{
    for (unsigned p = 0; p < VEM_RULES_POLLUTANTS && !r->failed; p++) {
        if (!s_bool(r, "chain present"))
            continue;
        vem_rules_chain_t *c = rsd->chain[p] = s_alloc(sizeof *c, bytes);
        if (r->version < S_V3)
            s_get_chain_v2(r, c, bytes);
        else
            s_get_chain(r, c, bytes);
    }
    uint32_t slots = s_at_most(r, s_u32(r, "fusion history slots"), VEM_RULES_HORIZON_MAX,
                               "fusion history slots");
    uint32_t head = s_u32(r, "fusion history head");
    int64_t newest = s_time(r, false, true, INT64_MIN, "fusion history newest second");
    if (!r->failed && (slots ? head >= slots : head != 0 || newest != INT64_MIN))
        s_fail(r, "fusion history head %" PRIu32 " (newest %" PRId64 ") for %" PRIu32 " slots",
               head, newest, slots);
    if (r->failed)
        return;
    if (slots) {
        rsd->obd = s_alloc((size_t)slots * sizeof *rsd->obd, bytes);
        rsd->obd_slots = slots;
    }
    rsd->obd_head = head;
    rsd->obd_newest = newest;
    s_get_history(r, rsd->obd, slots);
    bool allocated = s_bool(r, "pending allocated");
    uint32_t npending =
        s_at_most(r, s_u32(r, "pending count"), allocated ? VEM_RULES_PENDING : 0, "pending count");
    if (r->failed)
        return;
    if (allocated)
        rsd->pending = s_alloc(VEM_RULES_PENDING * sizeof *rsd->pending, bytes);
    for (uint32_t i = 0; i < npending && !r->failed; i++) {
        vem_rules_pending_t *pr = &rsd->pending[i];
        pr->time_us = s_time(r, true, false, 0, "pending reading time");
        pr->no_ppm = s_f64(r, "pending NO");
        pr->limit = s_f64(r, "pending limit");
        s_str(r, pr->station_id, sizeof pr->station_id, "pending station id");
        s_str(r, pr->reading_id, sizeof pr->reading_id, "pending reading id");
        rsd->npending = r->failed ? rsd->npending : i + 1;
    }
}

/* ---- re-sent data (version 12) ------------------------------------------------------------ */

/* A track's whole range: its first second, and its gaps (room, count, and each: offset from
 * the trip's start, length), oldest first. */
static void s_put_whole(s_wr_t *w, const vem_rules_track_t *tr)
{
    s_put_i64(w, tr->whole_from);
    s_put_u32(w, tr->gaps_cap);
    s_put_u32(w, tr->ngaps);
    for (uint32_t i = 0; i < tr->ngaps; i++) {
        const vem_rules_gap_t *g = vem_rules_gap_at(tr, i);
        s_put_u32(w, g->off);
        s_put_u32(w, g->len);
    }
}

static void s_put_held(s_wr_t *w, const vem_rules_vehicle_t *v)
{
    s_put_whole(w, &v->live);
    s_put_whole(w, &v->back);
    s_put_u64(w, v->counts.copy_samples);
    s_put_u64(w, v->counts.held_samples);
    s_put_u32(w, v->held_cap);
    s_put_u32(w, v->nheld);
    s_put_u8(w, v->held_from_start);
    s_put_u8(w, v->held_from_end);
    for (uint32_t i = 0; i < v->nheld; i++) {
        const vem_rules_held_t *h = &v->held[v->held_off + i];
        s_put_at(w, &(vem_rules_at_t){h->sec, h->key_off, h->key_idx});
        s_put_u8(w, h->type);
        s_put_u8(w, h->hole);
        for (int k = 0; k < VEM_RULES_HELD_FIELDS; k++)
            s_put_u16(w, h->raw[k]);
    }
}

/* A track's whole range: before version 12 not known, and so from its next second on; before
 * version 13 without gaps (version 12 started it again after each gap). */
static void s_get_whole(s_rd_t *r, vem_rules_track_t *tr, size_t *bytes, const char *what)
{
    if (r->version < S_V12) {
        tr->whole_from = tr->newest == INT64_MIN ? 0 : tr->last.sec + 1;
        return;
    }
    tr->whole_from = s_time(r, false, false, 0, what);
    /* a copy is a second the track took in its trip */
    if (!r->failed && tr->newest != INT64_MIN &&
        (tr->whole_from > tr->last.sec + 1 || tr->whole_from < tr->start.sec))
        s_fail(r,
               "%s %" PRId64 " outside the trip's start %" PRId64 " and the second after its last",
               what, tr->whole_from, tr->start.sec);
    if (r->version < S_V13 || r->failed)
        return;
    uint32_t cap = s_capacity(r, s_u32(r, "gap room"), 8, VEM_RULES_GAPS_MAX, "gap room");
    uint32_t n = s_at_most(r, s_u32(r, "gaps"), cap, "gaps");
    if (!r->failed && n > r->left / 8)
        s_fail(r, "%" PRIu32 " gaps in %zu bytes", n, r->left);
    if (!r->failed && cap && !n)
        s_fail(r, "room for %" PRIu32 " gaps and none (freed only with the trip)", cap);
    if (!r->failed && n && tr->newest == INT64_MIN)
        s_fail(r, "%" PRIu32 " gaps in a track that took no second", n);
    if (r->failed || !cap)
        return;
    tr->gaps = s_alloc((size_t)cap * sizeof *tr->gaps, bytes);
    tr->gaps_cap = (uint16_t)cap;
    /* s_copy relies on gaps by time, after whole_from, each followed by a second taken */
    int64_t taken = tr->whole_from; /* the first second that may start a gap, less one */
    for (uint32_t i = 0; i < n && !r->failed; i++) {
        vem_rules_gap_t g = {s_u32(r, "gap offset"), s_u32(r, "gap length")};
        if (r->failed)
            break;
        int64_t from = tr->start.sec + g.off;
        if (g.len == 0 || from <= taken || from + g.len > tr->last.sec) {
            s_fail(r,
                   "gap %" PRIu32 " of %" PRIu32 " s at %" PRId64 " not after the whole range's "
                   "start or a second taken, or not before the last",
                   i, g.len, from);
            break;
        }
        tr->gaps[i] = g;
        tr->ngaps = (uint16_t)(i + 1);
        taken = from + g.len;
    }
}

static void s_get_held(s_rd_t *r, vem_rules_vehicle_t *v)
{
    s_get_whole(r, &v->live, &v->bytes, "live whole range");
    s_get_whole(r, &v->back, &v->bytes, "back-fill whole range");
    if (r->version < S_V12)
        return;
    v->counts.copy_samples = s_u64(r, "copy count");
    v->counts.held_samples = s_u64(r, "held total");
    uint32_t cap = s_at_most(r, s_u32(r, "held capacity"), VEM_RULES_HELD_MAX, "held capacity");
    /* at rest (saved between inputs) no more than the longest wait's seconds */
    uint32_t most = cap < VEM_RULES_HELD_MAX ? cap : VEM_RULES_HELD_MAX - 1;
    uint32_t n = s_at_most(r, s_u32(r, "held samples"), most, "held samples");
    if (r->version >= S_V13) {
        v->held_from_start = s_bool(r, "held from the start");
        v->held_from_end = s_bool(r, "held from the end");
    }
    if (!r->failed && (v->held_from_start || v->held_from_end) && !n)
        s_fail(r, "held from the start or end with nothing held (it is cleared when empty)");
    if (!r->failed && v->held_from_start && v->held_from_end)
        s_fail(r, "held from the start and from the end");
    if (!r->failed && n > r->left / S_HELD_BYTES(r->version))
        s_fail(r, "%" PRIu32 " held samples in %zu bytes", n, r->left);
    if (!r->failed && cap && !n)
        s_fail(r, "room for %" PRIu32 " held samples and none held (it is freed when empty)", cap);
    if (!r->failed && n && !v->live.open)
        s_fail(r, "%" PRIu32 " samples held for a live trip that is closed", n);
    if (r->failed || !cap)
        return;
    v->held = s_alloc((size_t)cap * sizeof *v->held, &v->bytes);
    v->held_cap = (uint16_t)cap;
    for (uint32_t i = 0; i < n && !r->failed; i++) {
        vem_rules_held_t *h = &v->held[i];
        vem_rules_at_t at;
        s_get_at(r, &at, "held sample");
        h->sec = at.sec;
        h->key_off = (uint8_t)at.key_off;
        h->key_idx = (uint8_t)at.key_idx;
        h->type = s_u8(r, "held sample type");
        h->hole = r->version >= S_V13 ? s_bool(r, "held sample hole") : 1;
        for (int k = 0; k < VEM_RULES_HELD_FIELDS; k++)
            h->raw[k] = s_u16(r, "held sample values");
        if (r->failed)
            break;
        /* s_hold relies on held samples newer than the live track's, by time, one a second */
        if (at.key_off < 0 || at.key_off >= VEM_HJ1239_MAX_BLOCKS ||
            at.key_idx >= VEM_HJ1239_MAX_BLOCKS)
            s_fail(r, "held sample %" PRIu32 " of key %" PRId32 "/%u: beyond a frame's blocks", i,
                   at.key_off, at.key_idx);
        else if (h->type != VEM_HJ1239_BLOCK_STREAM && h->type != VEM_HJ1239_BLOCK_TWC &&
                 h->type != VEM_HJ1239_BLOCK_TWC_NOX)
            s_fail(r, "held sample %" PRIu32 " of block type 0x%02x, not a sample", i, h->type);
        else if (h->sec <= (i ? v->held[i - 1].sec : v->live.newest + 1))
            s_fail(r, "held sample %" PRIu32 " at %" PRId64 " not after the %s", i, h->sec,
                   i ? "one before it" : "live track's next second");
        v->nheld = r->failed ? v->nheld : (uint16_t)(i + 1);
    }
}

/* ---- the vehicle -------------------------------------------------------------------------- */

void vem_rules_vehicle_save(const vem_rules_vehicle_t *self, uint8_t **buf, size_t *len,
                            size_t *cap)
{
    s_wr_t w = {buf, len, cap};
    s_reserve(&w, self->bytes + 1024); /* the saved form is about the memory held */
    s_put(&w, S_MAGIC, 4);
    s_put_u32(&w, S_VERSION);
    s_put_u32(&w, S_PROBE);
    s_put_str(&w, self->vin);
    s_put_str(&w, self->plate);
    s_put_str(&w, self->plate_color);
    s_put_facts(&w, &self->facts);
    s_put_u8(&w, self->heard);
    s_put_u8(&w, self->offline_fired);
    s_put_i64(&w, self->last_received_us);
    s_put_i64(&w, self->last_data_us);
    s_put_i64(&w, self->last_received_open_us);
    const vem_rules_counts_t *c = &self->counts;
    const uint64_t counts[] = {c->samples,          c->late_samples,     c->late_obd,
                               c->readings,         c->readings_invalid, c->readings_late,
                               c->fusion_unmatched, c->late_mil,         c->dtcs_unjudged};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
        s_put_u64(&w, counts[i]);
    s_put_i64(&w, self->obd_newest);
    s_put_u8(&w, self->vin_mismatch);
    s_put_u32(&w, self->mil_cap);
    s_put_u8(&w, self->mil_truncated);
    s_put_u32(&w, self->nmil);
    for (uint32_t i = 0; i < self->nmil; i++) {
        const vem_rules_mil_run_t *m = &self->mil[i];
        s_put_at(&w, &m->first);
        s_put_at(&w, &m->last);
        s_put_u8(&w, m->on);
        s_put_u8(&w, m->announced);
        s_put_u8(&w, m->escalated);
    }
    s_put_u32(&w, self->dtc_cap);
    s_put_u32(&w, self->ndtcs);
    s_put(&w, self->dtcs, (size_t)self->ndtcs * sizeof *self->dtcs);
    s_put_track(&w, &self->live);
    s_put_track(&w, &self->back);
    s_put_rsd(&w, &self->rsd);
    s_put_held(&w, self);
    s_put_u64(&w, self->bytes);
}

/* The header; false when it is not a checkpoint of a version read here, of this host. */
static bool s_get_header(s_rd_t *r)
{
    char magic[4];
    s_get(r, magic, 4, "header");
    if (!r->failed && memcmp(magic, S_MAGIC, 4) != 0)
        s_fail(r, "no \"" S_MAGIC "\" magic: not a rules checkpoint");
    uint32_t version = s_u32(r, "header");
    if (!r->failed && (version < S_VERSION_MIN || version > S_VERSION))
        s_fail(r, "version %" PRIu32 ", this build reads versions %u to %u", version, S_VERSION_MIN,
               S_VERSION);
    r->version = version;
    uint32_t probe = s_u32(r, "header");
    if (!r->failed && probe != S_PROBE)
        s_fail(r, "written on a host of another byte order (probe %08" PRIx32 ")", probe);
    return !r->failed;
}

/* True for "" (not known) and the plate colours of FIELDS.md: what the sinks may be given. */
static bool s_color_ok(const char *c)
{
    static const char *const colors[] = {"",      "blue", "yellow", "green", "yellow_green",
                                         "white", "black"};
    for (size_t i = 0; i < sizeof colors / sizeof *colors; i++)
        if (strcmp(c, colors[i]) == 0)
            return true;
    return false;
}

static void s_mil_alloc(vem_rules_vehicle_t *v, uint32_t cap)
{
    v->mil = s_alloc(cap * sizeof *v->mil, &v->bytes);
    v->mil_cap = cap;
}

static void s_get_mil(s_rd_t *r, vem_rules_vehicle_t *v)
{
    v->vin_mismatch = s_bool(r, "vin mismatch");
    uint32_t cap =
        s_capacity(r, s_u32(r, "mil run capacity"), 2, VEM_RULES_MIL_RUNS, "mil run capacity");
    v->mil_truncated = s_bool(r, "mil runs truncated");
    uint32_t n = s_at_most(r, s_u32(r, "mil run count"), cap, "mil run count");
    if (r->failed)
        return;
    if (cap)
        s_mil_alloc(v, cap);
    for (uint32_t i = 0; i < n && !r->failed; i++) {
        vem_rules_mil_run_t *m = &v->mil[i];
        s_get_at(r, &m->first, "mil run");
        s_get_at(r, &m->last, "mil run");
        m->on = s_bool(r, "mil run state");
        m->announced = s_bool(r, "mil run announced");
        m->escalated = s_bool(r, "mil run escalated");
        /* s_mil relies on runs by time, apart, of alternating or gap-separated states */
        if (!r->failed &&
            (m->last.sec < m->first.sec || (i > 0 && m->first.sec <= v->mil[i - 1].last.sec)))
            s_fail(r, "mil run %" PRIu32 " not after the one before it, or ending before it starts",
                   i);
        v->nmil = r->failed ? v->nmil : i + 1;
    }
}

/* Versions 1 and 2: one MIL episode, converted to one run from its start to the newest snapshot
 * (the newest valid MIL byte was on), with its verdicts as emitted. */
static void s_get_mil_v2(s_rd_t *r, vem_rules_vehicle_t *v)
{
    bool on = s_bool(r, "mil on");
    bool escalated = s_bool(r, "mil escalated");
    v->vin_mismatch = s_bool(r, "vin mismatch");
    vem_rules_at_t since;
    s_get_at(r, &since, "mil on since");
    if (r->failed || !on)
        return;
    s_mil_alloc(v, 2);
    vem_rules_at_t last = since;
    if (v->obd_newest != INT64_MIN && v->obd_newest > since.sec)
        last = (vem_rules_at_t){v->obd_newest, 0, 0};
    v->mil[0] = (vem_rules_mil_run_t){since, last, true, true, escalated};
    v->nmil = 1;
}

static void s_get_vehicle(s_rd_t *r, vem_rules_vehicle_t *v)
{
    r->where = "vehicle";
    s_str(r, v->vin, sizeof v->vin, "vin");
    if (!r->failed && *v->vin && strlen(v->vin) != 17)
        s_fail(r, "vin of %zu characters, not 17", strlen(v->vin));
    s_str(r, v->plate, sizeof v->plate, "plate");
    if (r->version >= 2)
        s_str(r, v->plate_color, sizeof v->plate_color, "plate colour");
    if (!r->failed && !s_color_ok(v->plate_color))
        s_fail(r, "plate colour \"%s\" is none of FIELDS.md's", v->plate_color);
    if (!r->failed && !*v->vin && !*v->plate)
        s_fail(r, "neither vin nor plate");
    s_get_facts(r, &v->facts, "registry facts");
    v->heard = s_bool(r, "heard");
    v->offline_fired = s_bool(r, "offline fired");
    v->last_received_us = s_time(r, true, false, 0, "last receipt");
    v->last_data_us = s_time(r, true, false, 0, "last data time");
    v->last_received_open_us =
        r->version >= S_V6 ? s_time(r, true, true, INT64_MIN, "last receipt on the intake clock")
                           : INT64_MIN;
    vem_rules_counts_t *c = &v->counts;
    uint64_t *counts[] = {&c->samples,          &c->late_samples,     &c->late_obd,
                          &c->readings,         &c->readings_invalid, &c->readings_late,
                          &c->fusion_unmatched, &c->late_mil,         &c->dtcs_unjudged};
    /* v7 and older: no dtcs_unjudged; v2 and older: no late_mil either */
    size_t ncounts = sizeof counts / sizeof *counts - (r->version < S_V8) - (r->version < S_V3);
    for (size_t i = 0; i < ncounts; i++)
        *counts[i] = s_u64(r, "counts");
    v->obd_newest = s_time(r, false, true, INT64_MIN, "newest OBD snapshot");
    if (r->version < S_V3)
        s_get_mil_v2(r, v);
    else
        s_get_mil(r, v);
    uint32_t cap = s_capacity(r, s_u32(r, "dtc capacity"), 4, VEM_RULES_DTC_MAX, "dtc capacity");
    uint32_t n = s_at_most(r, s_u32(r, "dtc count"), cap, "dtc count");
    if (r->failed)
        return;
    if (cap) {
        v->dtcs = s_alloc((size_t)cap * sizeof *v->dtcs, &v->bytes);
        v->dtc_cap = cap;
    }
    s_get(r, v->dtcs, (size_t)n * sizeof *v->dtcs, "dtcs");
    v->ndtcs = r->failed ? 0 : n;
    r->where = "live track";
    s_get_track(r, &v->live, &v->bytes);
    r->where = "back-fill track";
    s_get_track(r, &v->back, &v->bytes);
    r->where = "roadside";
    s_get_rsd(r, &v->rsd, &v->bytes);
    r->where = "held samples";
    s_get_held(r, v);
    r->where = NULL;
    uint64_t saved = s_u64(r, "memory held");
    if (!r->failed && saved + r->grown != v->bytes + r->shrunk &&
        r->version >= S_V3) /* v1, v2: other sizes */
        s_fail(r, "the state holds %zu bytes, the checkpoint says %" PRIu64 "%s%s", v->bytes, saved,
               r->grown ? " (and the fusion history's keys)" : "",
               r->shrunk ? " (less the older window ring's wider slots)" : "");
    if (!r->failed && r->left)
        s_fail(r, "%zu bytes after the state", r->left);
}

vem_rules_vehicle_t *vem_rules_vehicle_load(const uint8_t *p, size_t len, char *err, size_t errlen)
{
    s_rd_t r = {.p = p, .left = len, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    if (!s_get_header(&r))
        return NULL;
    vem_rules_vehicle_t *v = vem_rules_vehicle_alloc();
    v->live.newest = v->back.newest = v->obd_newest = INT64_MIN;
    vem_rules_rsd_init(&v->rsd);
    s_get_vehicle(&r, v);
    if (r.failed)
        vem_rules_vehicle_destroy(&v);
    return v;
}
