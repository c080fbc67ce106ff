/* fuzz_rules_ckpt — libFuzzer target for the rules engine's checkpoint loader
 * (vem_rules_vehicle_load, daemon/rules_ckpt.c).
 *
 * The input is S_STEER steering bytes, then the checkpoint: the loader sees exactly the bytes
 * after the steering ones. What must hold:
 *   - a refusal gives its reason ("rules checkpoint: ...");
 *   - an accepted checkpoint of the current version saves to exactly its own bytes (the format
 *     has one form per state), and one of an older version to a checkpoint that loads and saves
 *     to those same bytes again;
 *   - the loaded state can be driven: frames at seconds taken relative to what it holds (the
 *     live track's next second and a hole after it, re-sent seconds into the hole, copies and
 *     older seconds for the back-fill track, an OBD snapshot), then a checkpoint of what that
 *     made, which loads, holds the same memory (vem_rules_vehicle_bytes) and saves to the same
 *     bytes; then the original and the copy take the same registry figures, roadside history
 *     (what the worker may give a restored state), roadside reading, frame, logout, clock turn
 *     and flush and must give the same verdicts (rules.h: loading "gives a vehicle that judges
 *     what comes next exactly as self would"), and end in the same checkpoint.
 * The steering bytes choose the offsets, the values and one of two configurations (the
 * defaults, or a reload with short waits and gaps: a checkpoint outlives a configuration).
 * Frame and reading times stay within what the decoder and the roadside parser pass (years
 * 2000 to 2255): a state may hold any time the loader accepts, its inputs only real ones.
 * ASan with leak detection and UBSan run it (make fuzz-smoke).
 *
 * Seeds: VEM_FUZZ_SEEDS=DIR build/fuzz/fuzz_rules_ckpt writes the seed corpus into DIR (made
 * with the engine's own API: real checkpoints of varied states) and exits; run it with
 * DIR=tests/fuzz/corpus/rules_ckpt when the checkpoint version changes. The seeds are
 * host-endian (little-endian, x86-64) checkpoints of version 13. */
#include "rules.h"
#include "rules_int.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_STEER 8
#define S_US    INT64_C(1000000)
#define S_T0    INT64_C(1709596800) /* 2024-03-05T08:00:00+08:00 */
/* The seconds a decoded frame's times lie in: 2000-01-01 to the end of 2255 */
#define S_T_MIN INT64_C(946684800)
#define S_T_MAX INT64_C(9025516799)
#define S_VIN   "LZZFUZZCKPT000001"
#define S_PLATE                                                                                    \
    "\xe4\xba\xac"                                                                                 \
    "A12345" /* 京A12345 */

/* ---- verdicts: counted, and hashed as their JSON so two vehicles' can be compared ---------- */

typedef struct {
    unsigned n;
    uint64_t hash;
} s_log_t;

static uint64_t s_fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static void s_emit(void *arg, const vem_violation_t *v)
{
    s_log_t *log = arg;
    json_t *o = vem_rules_violation_json(v);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17)) : NULL;
    char *why = vem_rules_explain(v);
    if (!text || !why || strlen(v->id) != VEM_RULES_ID_LEN - 1 || !json_is_object(v->evidence))
        abort();
    log->hash = s_fnv(log->n ? log->hash : UINT64_C(0xcbf29ce484222325), text, strlen(text));
    log->n++;
    free(text);
    free(why);
    json_decref(o);
}

/* ---- frames ------------------------------------------------------------------------------- */

static vem_hj1239_frame_t *s_frame; /* one, reused: 12 KB is too much for a fuzzer's stack */

static int64_t s_real(int64_t t)
{
    return t < S_T_MIN ? S_T_MIN : t > S_T_MAX ? S_T_MAX : t;
}

static void s_field(vem_hj1239_block_t *b, vem_hj1239_field_t f, double v)
{
    const vem_hj1239_field_info_t *fi = vem_hj1239_field_info(f);
    if (isnan(v))
        b->raw[f] = fi->width == 1 ? 0xFF : fi->width == 2 ? 0xFFFF : 0xFFFFFFFF;
    else
        b->raw[f] = (uint32_t)llround((v - fi->offset) / fi->scale);
}

/* A new data (or login/logout) frame at t, of the vehicle's VIN. */
static void s_frame_start(const vem_rules_vehicle_t *v, uint8_t cmd, int64_t t, bool gb17691)
{
    vem_hj1239_frame_t *f = s_frame;
    memset(f, 0, offsetof(vem_hj1239_frame_t, vendor));
    f->cmd = cmd;
    f->header = VEM_HJ1239_HEADER_TERMINAL;
    f->encryption = VEM_HJ1239_ENC_NONE;
    memcpy(f->vin, *v->vin ? v->vin : S_VIN, 17);
    f->has_time = true;
    f->time = t;
    f->layout = gb17691 ? 0 : VEM_HJ1239_LAYOUT_BLOCK_TIME;
}

/* A sample at t; `kind` picks its values (and block type): cruising, a troubled one (reagent
 * low, NOx high and frozen, down above up), one with markers, and a petrol TWC block. */
static void s_sample(int64_t t, unsigned kind, unsigned wiggle)
{
    vem_hj1239_frame_t *f = s_frame;
    if (f->nblocks >= VEM_HJ1239_MAX_BLOCKS)
        return;
    vem_hj1239_block_t *b = &f->blocks[f->nblocks++];
    memset(b, 0, sizeof *b);
    b->type = kind % 4 == 3 ? (wiggle & 1 ? VEM_HJ1239_BLOCK_TWC_NOX : VEM_HJ1239_BLOCK_TWC)
                            : VEM_HJ1239_BLOCK_STREAM;
    b->time = t;
    bool trouble = kind % 4 == 1, markers = kind % 4 == 2;
    s_field(b, VEM_HJ1239_F_SPEED, 50);
    s_field(b, VEM_HJ1239_F_RPM, 1100 + 37.0 * (wiggle % 19));
    s_field(b, VEM_HJ1239_F_TORQUE, markers && wiggle % 3 == 0 ? NAN : 30 + (double)(wiggle % 60));
    s_field(b, VEM_HJ1239_F_FRICTION, 8);
    s_field(b, VEM_HJ1239_F_FUEL_RATE, 20 + (double)(wiggle % 17));
    s_field(b, VEM_HJ1239_F_INTAKE, markers && wiggle % 5 == 0 ? NAN : 600);
    s_field(b, VEM_HJ1239_F_COOLANT, 85);
    s_field(b, VEM_HJ1239_F_NOX_DOWN, trouble ? 900 : markers && wiggle % 4 == 1 ? NAN : 100);
    if (b->type == VEM_HJ1239_BLOCK_STREAM) {
        s_field(b, VEM_HJ1239_F_NOX_UP, trouble ? 400 : 800);
        s_field(b, VEM_HJ1239_F_REAGENT, trouble ? 1.2 : 50);
        s_field(b, VEM_HJ1239_F_SCR_IN, wiggle % 7 == 3 ? 200 : 300);
        s_field(b, VEM_HJ1239_F_SCR_OUT, 270);
    }
    b->novalue = vem_hj1239_novalue(b);
}

/* n samples from t on, one a second but for the ones whose bit is set in skip (of the first
 * eight); in a GB 17691 frame each sample's time is the frame's. */
static void s_run(int64_t t, unsigned n, uint8_t skip, unsigned kind)
{
    vem_hj1239_frame_t *f = s_frame;
    bool gb = !(f->layout & VEM_HJ1239_LAYOUT_BLOCK_TIME);
    int64_t last = t;
    for (unsigned i = 0; i < n; i++, t++) {
        if (i < 8 && (skip >> i & 1))
            continue;
        s_sample(t, kind, (unsigned)t);
        last = t;
    }
    f->time = last;
    if (gb)
        for (unsigned i = 0; i < f->nblocks; i++)
            f->blocks[i].time = last;
}

/* An OBD snapshot at t: the MIL, and ndtcs codes. */
static void s_snapshot(const vem_rules_vehicle_t *v, int64_t t, unsigned mil, unsigned ndtcs)
{
    vem_hj1239_frame_t *f = s_frame;
    if (f->nblocks >= VEM_HJ1239_MAX_BLOCKS || f->nobd >= VEM_HJ1239_MAX_OBD)
        return;
    vem_hj1239_block_t *b = &f->blocks[f->nblocks++];
    memset(b, 0, sizeof *b);
    b->type = VEM_HJ1239_BLOCK_OBD;
    b->time = t;
    b->obd = f->nobd;
    b->raw[VEM_HJ1239_F_OBD_PROTOCOL] = 2;
    b->raw[VEM_HJ1239_F_MIL] = mil;
    b->raw[VEM_HJ1239_F_DIAG_SUPPORTED] = 0x0C00;
    b->raw[VEM_HJ1239_F_DIAG_READY] = 0x0C00;
    b->raw[VEM_HJ1239_F_DTC_COUNT] = ndtcs;
    vem_hj1239_obd_t *o = &f->obd[f->nobd++];
    memset(o, 0, sizeof *o);
    memcpy(o->vin, *v->vin ? v->vin : S_VIN, 17);
    o->dtc_first = f->ndtcs;
    o->dtc_n = (uint16_t)ndtcs;
    for (unsigned i = 0; i < ndtcs; i++)
        f->dtcs[f->ndtcs++] = 0x00A10000u + i * 0x101u;
    b->novalue = vem_hj1239_novalue(b);
}

/* A valid roadside reading of the vehicle's plate at t_us. */
static void s_reading(const vem_rules_vehicle_t *v, vem_rsd_reading_t *r, int64_t t_us,
                      double no_ppm, double opacity, unsigned id)
{
    vem_rules_reading_init(r);
    snprintf(r->station_id, sizeof r->station_id, "SH-%02u", id % 3);
    snprintf(r->reading_id, sizeof r->reading_id, "fz%u", id);
    snprintf(r->plate, sizeof r->plate, "%s", *v->plate ? v->plate : S_PLATE);
    snprintf(r->plate_color, sizeof r->plate_color, "%s", id & 4 ? "blue" : "yellow");
    r->time_us = t_us;
    r->fuel = id & 8 ? VEM_FUEL_UNKNOWN : VEM_FUEL_DIESEL;
    r->valid = true;
    r->speed_kmh = 45;
    r->accel_ms2 = 0.1;
    r->vsp_kw_t = 6;
    r->wind_ms = 1;
    r->slope_pct = 0.5;
    r->no_ppm = no_ppm;
    r->opacity_pct = opacity;
    r->received_us = t_us + 2 * S_US;
}

/* ---- checks ------------------------------------------------------------------------------- */

static void s_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_rules_ckpt: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static uint8_t *s_save(const vem_rules_vehicle_t *v, size_t *len)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    *len = 0;
    vem_rules_vehicle_save(v, &buf, len, &cap);
    return buf;
}

/* Where two checkpoints differ, for the report of a failure. */
static void s_diff(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t i = 0;
    while (i < alen && i < blen && a[i] == b[i])
        i++;
    fprintf(stderr, "fuzz_rules_ckpt: %zu and %zu bytes, first difference at byte %zu\n", alen,
            blen, i);
}

/* A copy of v through a checkpoint: it must load, hold what v holds and save to v's bytes. */
static vem_rules_vehicle_t *s_copy(const vem_rules_vehicle_t *v, const char *when)
{
    size_t len, len2;
    uint8_t *buf = s_save(v, &len);
    char err[512];
    vem_rules_vehicle_t *w = vem_rules_vehicle_load(buf, len, err, sizeof err);
    if (!w) {
        fprintf(stderr, "fuzz_rules_ckpt: %s\n", when);
        s_fail("a state the engine made does not load", err);
    }
    if (vem_rules_vehicle_bytes(w) != vem_rules_vehicle_bytes(v)) {
        fprintf(stderr, "fuzz_rules_ckpt: %s: %zu bytes, loaded %zu\n", when,
                vem_rules_vehicle_bytes(v), vem_rules_vehicle_bytes(w));
        s_fail("the loaded state holds other memory", NULL);
    }
    if (memcmp(vem_rules_vehicle_counts(w), vem_rules_vehicle_counts(v),
               sizeof(vem_rules_counts_t)) != 0)
        s_fail("the loaded state has other counts", when);
    uint8_t *again = s_save(w, &len2);
    if (len2 != len || memcmp(buf, again, len) != 0) {
        s_diff(buf, len, again, len2);
        s_fail("the loaded state saves other bytes", when);
    }
    free(buf);
    free(again);
    return w;
}

/* ---- driving ------------------------------------------------------------------------------ */

static vem_rules_config_t s_cfg[2];

/* Engine figures that end a window every minute or so (D_lim 143 s). */
static const vem_rules_engine_facts_t s_small = {1000, 200, 1, VEM_FUEL_DIESEL};

/* The receipt of an input at data time t, after the vehicle's last: never before it. */
static int64_t s_receipt(const vem_rules_vehicle_t *v, int64_t t, int64_t after_us)
{
    int64_t us = t * S_US + after_us;
    int64_t last = vem_rules_vehicle_last_received(v);
    if (last > S_T_MIN * S_US && last < S_T_MAX * S_US && last > us)
        us = last + after_us;
    return us;
}

/* The second the state's roadside history is at: its newest reading or OBD second. */
static int64_t s_rsd_at(const vem_rules_vehicle_t *v, int64_t fallback)
{
    int64_t t = INT64_MIN;
    for (unsigned p = 0; p < VEM_RULES_POLLUTANTS; p++) {
        const vem_rules_chain_t *c = v->rsd.chain[p];
        if (c && c->n && c->links[c->n - 1].time_us / S_US > t)
            t = c->links[c->n - 1].time_us / S_US;
    }
    /* the seconds staged after the ring's newest are the history's too (a copy has them in
     * its ring) */
    if (v->rsd.obd_newest != INT64_MIN && v->rsd.obd_newest + v->rsd.nstage > t)
        t = v->rsd.obd_newest + v->rsd.nstage;
    return t == INT64_MIN ? fallback : t;
}

/* What the state holds now, as seconds to put the next inputs at. */
typedef struct {
    int64_t next;       /* the live track's next second */
    int64_t held_first; /* the first held sample's second (next when none is held) */
    int64_t back;       /* the back-fill track's last second */
    int64_t start;      /* the live trip's start */
} s_at_t;

static void s_where(const vem_rules_vehicle_t *v, s_at_t *a)
{
    int64_t newest = v->live.newest != INT64_MIN ? v->live.newest : v->live.last.sec;
    if (newest == 0 && v->obd_newest != INT64_MIN)
        newest = v->obd_newest;
    if (newest < S_T_MIN || newest >= S_T_MAX)
        newest = S_T0;
    a->next = newest + 1;
    a->held_first = v->nheld ? s_real(v->held[v->held_off].sec) : a->next;
    a->back = v->back.newest != INT64_MIN ? s_real(v->back.last.sec) : a->next - 600;
    a->start = v->live.open ? s_real(v->live.start.sec) : a->next - 60;
}

/* Frames before the split: live data after a hole or not, re-sent seconds into it, copies and
 * older data, an OBD snapshot. */
static void s_drive_alone(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg, const uint8_t *k,
                          s_log_t *log)
{
    bool gb = k[7] & 1;
    unsigned kind = k[7] >> 3;
    s_at_t a;
    /* live: after a hole of k[0] & 15 seconds (a skip when short), with skips in it */
    s_where(v, &a);
    s_frame_start(v, VEM_HJ1239_CMD_REALTIME, a.next, gb);
    s_run(a.next + (k[0] & 15), 1 + (k[0] >> 4), k[1], kind);
    int64_t recv = s_receipt(v, s_frame->time, (int64_t)(k[6] & 3) * 900 * S_US + S_US);
    vem_rules_on_frame(v, cfg, s_frame, recv, 0, 1, s_emit, log);
    /* re-sent into the hole: from its start, or from its end (before the first held) */
    s_where(v, &a);
    s_frame_start(v, VEM_HJ1239_CMD_RESEND, a.next, gb);
    unsigned n = 1 + (k[2] >> 4);
    if (k[2] & 8)
        s_run(a.held_first - n - (k[2] & 7), n, k[1] >> 4, kind + 1);
    else
        s_run(a.next + (k[2] & 7), n, 0, kind + 1);
    vem_rules_on_frame(v, cfg, s_frame, s_receipt(v, s_frame->time, S_US), 0, 2, s_emit, log);
    /* older: at the back-fill track's last second on, or copies of the live trip's */
    s_where(v, &a);
    s_frame_start(v, VEM_HJ1239_CMD_RESEND, a.next, gb);
    if (k[3] & 1)
        s_run(a.start + (k[3] >> 1), 1 + (k[3] & 6), 0, kind);
    else
        s_run(a.back - (k[3] >> 4) + 1, 1 + ((k[3] >> 1) & 7), (uint8_t)(k[3] << 4), kind + 2);
    vem_rules_on_frame(v, cfg, s_frame, s_receipt(v, s_frame->time, S_US), 0, 3, s_emit, log);
    /* an OBD snapshot some minutes from the newest (or before it: late) */
    int64_t obd = v->obd_newest != INT64_MIN ? s_real(v->obd_newest) : a.next;
    obd = s_real(obd + (int64_t)(int8_t)k[4] * 60);
    s_frame_start(v, VEM_HJ1239_CMD_REALTIME, obd, gb);
    s_snapshot(v, obd, k[4] & 1, (k[4] >> 1) & 7);
    vem_rules_on_frame(v, cfg, s_frame, s_receipt(v, obd, S_US), 0, 4, s_emit, log);
}

/* Inputs after the split, to both the original and its copy. */
static void s_drive_both(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg, const uint8_t *k,
                         s_log_t *log)
{
    bool gb = k[7] & 1;
    s_at_t a;
    s_where(v, &a);
    /* what the worker may do to a restored state: the registry's figures and whether it knows
     * the vehicle, then the roadside history from the database (two readings, one of them
     * maybe one the state has) */
    if (k[4] & 0x40)
        vem_rules_vehicle_set_facts(v, k[4] & 0x80 ? &s_small : NULL);
    vem_rules_vehicle_set_registered(v, !(k[3] & 0x80));
    int64_t at = s_real(s_rsd_at(v, a.next) + (int64_t)(int8_t)k[5] * (k[7] & 2 ? 86400 : 1));
    vem_rsd_reading_t r, past[2];
    if (k[2] & 0x80) {
        s_reading(v, &past[0], s_real(at - (k[2] & 0x3f) * 86400) * S_US + 250000, 1700, 35, k[1]);
        s_reading(v, &past[1], s_real(at - (k[1] & 0x3f)) * S_US + 250000, 1200, NAN, k[0]);
        vem_rules_history(v, cfg, past, 2, s_emit, log);
    }
    /* a roadside reading near the roadside history, by seconds or days */
    s_reading(v, &r, at * S_US + 250000, k[5] & 1 ? 1800 : 900, k[5] & 2 ? 40 : NAN, k[5]);
    vem_rules_on_reading(v, cfg, &r, 5, s_emit, log);
    /* live data again, after a gap of minutes when asked */
    s_frame_start(v, VEM_HJ1239_CMD_REALTIME, a.next, gb);
    s_run(a.next + (k[6] >> 4) * 90, 1 + (k[6] >> 2 & 3) * 3, 0, k[7] >> 3);
    vem_rules_on_frame(v, cfg, s_frame, s_receipt(v, s_frame->time, S_US), 0, 6, s_emit, log);
    if (k[7] & 4) {
        s_frame_start(v, VEM_HJ1239_CMD_LOGOUT, s_frame->time + 1, false);
        vem_rules_on_frame(v, cfg, s_frame, s_receipt(v, s_frame->time, S_US), 0, 7, s_emit, log);
    }
    /* the clock: a few minutes, or past the silence of obd.offline */
    int64_t now = s_receipt(v, 0, 0);
    if (now <= 0)
        now = s_frame->time * S_US;
    now += k[7] & 32 ? 73 * 3600 * S_US : (int64_t)(k[6] & 15) * 300 * S_US;
    vem_rules_on_silence(v, cfg, now, 0, s_emit, log);
    (void)vem_rules_vehicle_idle(v, cfg, now);
    (void)vem_rules_vehicle_rsd_links(v);
    vem_rules_flush(v, cfg, s_emit, log);
}

static void s_drive(vem_rules_vehicle_t *v, const uint8_t *k)
{
    const vem_rules_config_t *cfg = &s_cfg[k[7] >> 7];
    s_log_t log = {0, 0}, mine = {0, 0}, its = {0, 0};
    s_drive_alone(v, cfg, k, &log);
    vem_rules_vehicle_t *w = s_copy(v, "after the frames");
    s_drive_both(v, cfg, k, &mine);
    s_drive_both(w, cfg, k, &its);
    if (mine.n != its.n || mine.hash != its.hash) {
        fprintf(stderr, "fuzz_rules_ckpt: %u verdicts, the copy %u\n", mine.n, its.n);
        s_fail("the copy judges otherwise than the original", NULL);
    }
    size_t len, len2;
    uint8_t *a = s_save(v, &len), *b = s_save(w, &len2);
    if (len != len2 || memcmp(a, b, len) != 0) {
        s_diff(a, len, b, len2);
        s_fail("the original and its copy end in other states", NULL);
    }
    free(a);
    free(b);
    vem_rules_vehicle_t *x = s_copy(v, "after the flush");
    vem_rules_vehicle_destroy(&x);
    vem_rules_vehicle_destroy(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < S_STEER)
        return 0;
    const uint8_t *k = data;
    size -= S_STEER;
    /* the checkpoint in a heap copy of exactly its length: ASan sees a read past the end */
    uint8_t *ckpt = malloc(size ? size : 1);
    if (!ckpt)
        abort();
    memcpy(ckpt, data + S_STEER, size);
    char err[512];
    memset(err, 0x5A, sizeof err);
    vem_rules_vehicle_t *v = vem_rules_vehicle_load(ckpt, size, err, sizeof err);
    if (!v) {
        static const char says[] = "rules checkpoint: ";
        if (!memchr(err, '\0', sizeof err) || strncmp(err, says, sizeof says - 1) != 0 ||
            strlen(err) <= sizeof says - 1)
            s_fail("refused without a reason", memchr(err, '\0', sizeof err) ? err : NULL);
        free(ckpt);
        return 0;
    }
    uint32_t version;
    memcpy(&version, ckpt + 4, sizeof version);
    size_t len;
    uint8_t *saved = s_save(v, &len);
    if (version == 13) {
        if (len != size || memcmp(saved, ckpt, size) != 0) {
            s_diff(ckpt, size, saved, len);
            s_fail("an accepted checkpoint saves to other bytes", NULL);
        }
    } else {
        vem_rules_vehicle_t *w = s_copy(v, "an older version's state");
        vem_rules_vehicle_destroy(&w);
    }
    free(saved);
    free(ckpt);
    s_drive(v, k);
    vem_rules_vehicle_destroy(&v);
    return 0;
}

/* ---- seeds -------------------------------------------------------------------------------- */

typedef struct {
    vem_rules_vehicle_t *v;
    const vem_rules_config_t *cfg;
    s_log_t log;
    int64_t recv_us;
} s_gen_t;

/* A frame of samples t .. t + n - 1 (skips by mask), received a second after its last. */
static void s_gen_frame(s_gen_t *g, uint8_t cmd, int64_t t, unsigned n, uint8_t skip, unsigned kind,
                        bool gb)
{
    s_frame_start(g->v, cmd, t, gb);
    s_run(t, n, skip, kind);
    int64_t us = (cmd == VEM_HJ1239_CMD_RESEND ? g->recv_us : s_frame->time * S_US) + S_US;
    g->recv_us = us > g->recv_us ? us : g->recv_us + S_US;
    vem_rules_on_frame(g->v, g->cfg, s_frame, g->recv_us, 0, 1, s_emit, &g->log);
}

/* Live samples from t for n seconds, ten a frame. */
static void s_gen_live(s_gen_t *g, int64_t t, unsigned n, unsigned kind, bool gb)
{
    for (unsigned i = 0; i < n; i += 10)
        s_gen_frame(g, VEM_HJ1239_CMD_REALTIME, t + i, n - i < 10 ? n - i : 10, 0, kind, gb);
}

static void s_gen_cmd(s_gen_t *g, uint8_t cmd, int64_t t)
{
    s_frame_start(g->v, cmd, t, false);
    g->recv_us = t * S_US > g->recv_us ? t * S_US : g->recv_us + S_US;
    vem_rules_on_frame(g->v, g->cfg, s_frame, g->recv_us, 0, 1, s_emit, &g->log);
}

static void s_gen_obd(s_gen_t *g, int64_t t, unsigned mil, unsigned ndtcs)
{
    s_frame_start(g->v, VEM_HJ1239_CMD_REALTIME, t, false);
    s_snapshot(g->v, t, mil, ndtcs);
    g->recv_us = t * S_US > g->recv_us ? t * S_US : g->recv_us + S_US;
    vem_rules_on_frame(g->v, g->cfg, s_frame, g->recv_us, 0, 1, s_emit, &g->log);
}

static void s_gen_reading(s_gen_t *g, int64_t t, double no_ppm, double opacity, unsigned id)
{
    vem_rsd_reading_t r;
    s_reading(g->v, &r, t * S_US + 250000, no_ppm, opacity, id);
    vem_rules_on_reading(g->v, g->cfg, &r, 1, s_emit, &g->log);
}

static void s_sc_window(s_gen_t *g)
{
    s_gen_cmd(g, VEM_HJ1239_CMD_LOGIN, S_T0);
    s_gen_live(g, S_T0, 170, 1, false); /* a window ring, kept windows, spans under way */
}

static void s_sc_hole(s_gen_t *g)
{
    s_gen_cmd(g, VEM_HJ1239_CMD_LOGIN, S_T0);
    s_gen_live(g, S_T0, 40, 0, false);
    s_gen_live(g, S_T0 + 70, 20, 0, false); /* held after a hole of 30 s */
    s_gen_frame(g, VEM_HJ1239_CMD_RESEND, S_T0 + 62, 8, 0x24, 0, false); /* its end, skips */
}

static void s_sc_hole_start(s_gen_t *g)
{
    s_gen_live(g, S_T0, 30, 2, false);
    s_gen_frame(g, VEM_HJ1239_CMD_REALTIME, S_T0 + 30, 8, 0x10, 2, false); /* a skip */
    s_gen_live(g, S_T0 + 60, 12, 2, false);
    s_gen_frame(g, VEM_HJ1239_CMD_RESEND, S_T0 + 38, 9, 0x02, 2, false); /* from its start */
}

static void s_sc_skips(s_gen_t *g)
{
    for (int c = 0; c < 12; c++)
        s_gen_frame(g, VEM_HJ1239_CMD_REALTIME, S_T0 + 10 * c, 10, 0x08, 0, c & 1);
}

static void s_sc_backfill(s_gen_t *g)
{
    s_gen_live(g, S_T0 + 3600, 30, 0, false);
    s_gen_frame(g, VEM_HJ1239_CMD_RESEND, S_T0, 10, 0, 1, false);
    s_gen_frame(g, VEM_HJ1239_CMD_RESEND, S_T0 + 10, 10, 0x11, 1, false);
    s_gen_frame(g, VEM_HJ1239_CMD_RESEND, S_T0 + 3, 4, 0, 1, false); /* copies */
}

static void s_sc_roadside(s_gen_t *g)
{
    s_gen_reading(g, S_T0, 1600, 35, 1);
    s_gen_reading(g, S_T0 + 86400, 1400, 36, 2);
    s_gen_reading(g, S_T0 + 2 * 86400, 1700, 40, 3);
    s_gen_reading(g, S_T0 + 3 * 86400, 1800, 45, 4); /* chains complete: anchors */
    s_gen_reading(g, S_T0 + 3 * 86400 + 7, 1750, NAN, 9);
}

static void s_sc_fusion(s_gen_t *g)
{
    s_gen_live(g, S_T0, 20, 0, true);
    s_gen_reading(g, S_T0 + 25, 1800, NAN, 1); /* waits for OBD data */
    s_gen_reading(g, S_T0 + 300, 1900, NAN, 2);
    s_gen_reading(g, S_T0 + 10, 1700, NAN, 3); /* matched at once */
}

static void s_sc_mil(s_gen_t *g)
{
    s_gen_obd(g, S_T0, 1, 2);
    for (int d = 1; d < 5; d++)
        s_gen_obd(g, S_T0 + d * 86400, d != 2, (unsigned)d);
    s_gen_obd(g, S_T0 + 4 * 86400 + 60, 1, 5);
}

static void s_sc_dtcs(s_gen_t *g)
{
    s_gen_obd(g, S_T0, 0, 7);
    s_gen_obd(g, S_T0 + 60, 0, 7);
    s_gen_obd(g, S_T0 - 60, 1, 3); /* late */
}

static void s_sc_scr(s_gen_t *g)
{
    s_gen_live(g, S_T0, 130, 0, false); /* two whole minutes in the SCR ring, on the fallback */
}

static void s_sc_closed(s_gen_t *g)
{
    s_gen_cmd(g, VEM_HJ1239_CMD_LOGIN, S_T0);
    s_gen_live(g, S_T0, 20, 2, false);
    s_gen_cmd(g, VEM_HJ1239_CMD_LOGOUT, S_T0 + 21);
    vem_rules_on_silence(g->v, g->cfg, g->recv_us + 73 * 3600 * S_US, 0, s_emit, &g->log);
}

static void s_sc_twc(s_gen_t *g)
{
    s_gen_live(g, S_T0, 25, 3, false);
    s_gen_reading(g, S_T0 + 5, 1600, NAN, 12);
}

static const struct {
    const char *name;
    const vem_rules_engine_facts_t *facts;
    bool plate_only;
    uint8_t steer[S_STEER];
    void (*fn)(s_gen_t *g);
} s_seeds[] = {
    {"window", &s_small, false, {0x50, 0x00, 0x31, 0x12, 0x05, 0x01, 0x11, 0x08}, s_sc_window},
    {"hole_end", &s_small, false, {0x37, 0x05, 0x4a, 0x21, 0xfe, 0x03, 0x42, 0x04}, s_sc_hole},
    {"hole_start", NULL, false, {0x08, 0x02, 0x32, 0x07, 0x02, 0x80, 0x60, 0x91}, s_sc_hole_start},
    {"skips", &s_small, false, {0x21, 0x12, 0x13, 0x31, 0x00, 0x00, 0x05, 0x41}, s_sc_skips},
    {"backfill", &s_small, false, {0x20, 0x00, 0x20, 0x62, 0x03, 0x07, 0x09, 0x10}, s_sc_backfill},
    {"roadside", NULL, true, {0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x22}, s_sc_roadside},
    {"fusion", NULL, false, {0x10, 0x00, 0x10, 0x00, 0x00, 0x03, 0x04, 0x81}, s_sc_fusion},
    {"mil", NULL, false, {0x00, 0x00, 0x00, 0x00, 0x31, 0x00, 0x00, 0x20}, s_sc_mil},
    {"dtcs", NULL, false, {0x10, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00}, s_sc_dtcs},
    {"scr", NULL, false, {0x90, 0x00, 0x40, 0x05, 0x00, 0x00, 0x30, 0x18}, s_sc_scr},
    {"closed", &s_small, false, {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x24}, s_sc_closed},
    {"twc", NULL, false, {0x30, 0x01, 0x20, 0x01, 0x00, 0x01, 0x02, 0x1a}, s_sc_twc},
};

static void s_write_seeds(const char *dir)
{
    for (size_t i = 0; i < sizeof s_seeds / sizeof *s_seeds; i++) {
        s_gen_t g = {NULL, &s_cfg[0], {0, 0}, 0};
        g.v =
            vem_rules_vehicle_new(s_seeds[i].plate_only ? NULL : S_VIN, S_PLATE, s_seeds[i].facts);
        s_seeds[i].fn(&g);
        size_t len;
        uint8_t *buf = s_save(g.v, &len);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, s_seeds[i].name);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(s_seeds[i].steer, 1, S_STEER, f) != S_STEER ||
            fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
            fprintf(stderr, "fuzz_rules_ckpt: %s: %s\n", path, strerror(errno));
            exit(1);
        }
        fprintf(stderr, "fuzz_rules_ckpt: %s, %zu bytes, %u verdicts\n", path, len + S_STEER,
                g.log.n);
        free(buf);
        vem_rules_vehicle_destroy(&g.v);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    s_frame = malloc(sizeof *s_frame);
    if (!s_frame)
        abort();
    vem_rules_config_defaults(&s_cfg[0]);
    /* a reload: short waits, gaps and windows, a smaller fusion horizon */
    s_cfg[1] = s_cfg[0];
    s_cfg[1].backlog_wait_min = 1;
    s_cfg[1].backlog_hole_s = 2;
    s_cfg[1].trip_gap_min = 2;
    s_cfg[1].scr_minutes = 2;
    s_cfg[1].reagent_minutes = 1;
    s_cfg[1].nox_percentile = 50;
    s_cfg[1].rsd_chain_n = 3;
    s_cfg[1].fusion_horizon_s = 60;
    char err[256];
    for (int i = 0; i < 2; i++)
        if (vem_rules_config_validate(&s_cfg[i], err, sizeof err) != 0)
            s_fail("configuration", err);
    const char *dir = getenv("VEM_FUZZ_SEEDS");
    if (dir && *dir) {
        s_write_seeds(dir);
        exit(0);
    }
    return 0;
}
