/* check_rules_ckpt — a vehicle's rule state saved and loaded (daemon/rules_ckpt.c).
 *
 * The property: a scenario is a list of events (frames, roadside readings, clock turns, a
 * flush at the end). Fed to one vehicle it gives the reference verdicts. Fed again with a
 * checkpoint before event k (save the vehicle, load a copy, destroy the original, go on with
 * the copy), it must give the same verdicts, field by field, evidence included: the ones
 * before k trivially, the ones from k on because the copy judges as the original would.
 * Each scenario names the events where splitting matters (inside an open window, at a trip
 * boundary, between the two readings of a chain) and is split there, next to them and at
 * evenly spaced events. At every split the copy's own save must be byte-identical to the
 * original's, and it must hold the same bytes of memory.
 *
 * Then damage: every prefix of a real checkpoint is refused, as is one with a byte too many
 * or an unknown version; single-byte corruptions at every offset are refused or give a state
 * that can be fed, flushed, saved and loaded again (ASan with leak detection runs this). */
#include "rules.h"
#include "rules_int.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIN   "LZZCKPTVIN0000001"
#define PLATE "京B54321"
#define T0    1709596800LL /* 2024-03-05T08:00:00+08:00 */
#define DAY   86400LL
#define US(t) ((int64_t)(t)*1000000)

/* ---- verdicts ----------------------------------------------------------------------------- */

typedef struct {
    char id[VEM_RULES_ID_LEN];
    vem_rule_t rule;
    vem_severity_t severity;
    int64_t first_us, last_us;
    double measured, limit;
    char unit[16];
    char vin[18], plate[16], plate_color[16];
    uint64_t spool_seq;
    json_t *ev;
} s_got_t;

typedef struct {
    s_got_t *v;
    size_t n, cap;
} s_log_t;

static void s_collect(void *arg, const vem_violation_t *v)
{
    s_log_t *log = arg;
    if (log->n == log->cap) {
        log->cap = log->cap ? log->cap * 2 : 16;
        log->v = realloc(log->v, log->cap * sizeof *log->v);
        ck_assert_ptr_nonnull(log->v);
    }
    s_got_t *g = &log->v[log->n++];
    memset(g, 0, sizeof *g);
    memcpy(g->id, v->id, sizeof g->id);
    g->rule = v->rule;
    g->severity = v->severity;
    g->first_us = v->first_us;
    g->last_us = v->last_us;
    g->measured = v->measured;
    g->limit = v->limit;
    snprintf(g->unit, sizeof g->unit, "%s", v->unit);
    snprintf(g->vin, sizeof g->vin, "%s", v->vin);
    snprintf(g->plate, sizeof g->plate, "%s", v->plate);
    snprintf(g->plate_color, sizeof g->plate_color, "%s", v->plate_color);
    g->spool_seq = v->spool_seq;
    g->ev = json_incref(v->evidence);
}

static void s_log_free(s_log_t *log)
{
    for (size_t i = 0; i < log->n; i++)
        json_decref(log->v[i].ev);
    free(log->v);
    memset(log, 0, sizeof *log);
}

static bool s_same_real(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

/* Fails, naming the field, when the two verdicts differ in anything. */
static void s_same_verdict(const s_got_t *a, const s_got_t *b, size_t i, long split)
{
    const char *rule = vem_rules_name(a->rule);
    ck_assert_msg(strcmp(a->id, b->id) == 0, "split %ld, verdict %zu (%s): id %s, not %s", split, i,
                  rule, b->id, a->id);
    ck_assert_msg(a->rule == b->rule, "split %ld, verdict %zu: rule", split, i);
    ck_assert_msg(a->severity == b->severity, "split %ld, verdict %zu (%s): severity", split, i,
                  rule);
    ck_assert_msg(a->first_us == b->first_us && a->last_us == b->last_us,
                  "split %ld, verdict %zu (%s): first/last", split, i, rule);
    ck_assert_msg(s_same_real(a->measured, b->measured) && s_same_real(a->limit, b->limit),
                  "split %ld, verdict %zu (%s): measured %.17g / %.17g, limit %g / %g", split, i,
                  rule, a->measured, b->measured, a->limit, b->limit);
    ck_assert_msg(strcmp(a->unit, b->unit) == 0 && strcmp(a->vin, b->vin) == 0 &&
                      strcmp(a->plate, b->plate) == 0 &&
                      strcmp(a->plate_color, b->plate_color) == 0,
                  "split %ld, verdict %zu (%s): unit or vehicle", split, i, rule);
    ck_assert_msg(a->spool_seq == b->spool_seq, "split %ld, verdict %zu (%s): spool seq", split, i,
                  rule);
    if (!json_equal(a->ev, b->ev)) {
        char *x = json_dumps(a->ev, JSON_SORT_KEYS), *y = json_dumps(b->ev, JSON_SORT_KEYS);
        char msg[2048];
        snprintf(msg, sizeof msg, "split %ld, verdict %zu (%s): evidence\n%s\n%s", split, i, rule,
                 x, y);
        free(x);
        free(y);
        ck_abort_msg("%s", msg);
    }
}

/* ---- frames ------------------------------------------------------------------------------- */

typedef vem_test_phys_t s_phys_t;

static const s_phys_t s_cruise = {1400, 60, 8, 30, 800, 100, 50, 600, 300, 85};

static void s_envelope(vem_hj1239_frame_t *f, uint8_t cmd, int64_t t)
{
    vem_test_envelope(f, cmd, VIN, t);
    f->layout = VEM_HJ1239_LAYOUT_BLOCK_TIME;
}

/* ---- scenarios as events ------------------------------------------------------------------ */

typedef void (*s_gen_t)(long i, s_phys_t *p, const void *arg);

typedef struct {
    const vem_rules_config_t *cfg;
    vem_rules_vehicle_t *v;
    s_log_t log;
    vem_hj1239_frame_t *f;
    uint64_t seq;
    long event;   /* events begun */
    long split;   /* before this event the vehicle is checkpointed and replaced; -1: never */
    long capture; /* before this event the vehicle is saved into cap_buf; -1: never */
    uint8_t *cap_buf;
    size_t cap_len, cap_cap;
    long from;                  /* events before this one are skipped ... */
    vem_rules_vehicle_t *start; /* ... and this vehicle takes the rest (NULL: from 0, new) */
    bool gb17691;               /* GB 17691 frames: one time per frame, its last sample's */
    long marks[16];
    int nmarks;
    size_t saved; /* bytes of the checkpoint taken at the split */
    size_t held;  /* vem_rules_vehicle_bytes then */
} s_run_t;

/* Saves r->v, loads the copy, checks that the copy saves to the same bytes and holds the same
 * memory, destroys the original and goes on with the copy. */
static void s_checkpoint(s_run_t *r)
{
    uint8_t *buf = NULL, *again = NULL;
    size_t len = 0, cap = 0, len2 = 0, cap2 = 0;
    vem_rules_vehicle_save(r->v, &buf, &len, &cap);
    char err[256];
    vem_rules_vehicle_t *copy = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(copy != NULL, "split %ld: %s", r->split, err);
    ck_assert_uint_eq(vem_rules_vehicle_bytes(copy), vem_rules_vehicle_bytes(r->v));
    ck_assert_mem_eq(vem_rules_vehicle_counts(copy), vem_rules_vehicle_counts(r->v),
                     sizeof(vem_rules_counts_t));
    vem_rules_vehicle_save(copy, &again, &len2, &cap2);
    ck_assert_uint_eq(len2, len);
    ck_assert_msg(memcmp(buf, again, len) == 0, "split %ld: the copy saves other bytes", r->split);
    r->saved = len;
    r->held = vem_rules_vehicle_bytes(r->v);
    vem_rules_vehicle_destroy(&r->v);
    r->v = copy;
    free(buf);
    free(again);
}

/* Every event begins here; false when it is skipped. */
static bool s_begin(s_run_t *r)
{
    long e = r->event++;
    if (e < r->from)
        return false;
    if (e == r->from && r->start) {
        r->v = r->start;
        r->start = NULL;
    }
    if (e == r->split)
        s_checkpoint(r);
    if (e == r->capture)
        vem_rules_vehicle_save(r->v, &r->cap_buf, &r->cap_len, &r->cap_cap);
    return true;
}

/* The next event is one where a checkpoint matters. */
static void s_mark(s_run_t *r)
{
    ck_assert_int_lt(r->nmarks, 16);
    r->marks[r->nmarks++] = r->event;
}

static void s_send(s_run_t *r)
{
    if (s_begin(r))
        vem_rules_on_frame(r->v, r->cfg, r->f, US(r->f->time) + 1500000, 0, ++r->seq, s_collect,
                           &r->log);
}

/* n samples at t0, t0 + 1, ... in frames of ten (each frame an event); sample t has the
 * values gen gives for t - T0. */
static void s_samples(s_run_t *r, uint8_t cmd, int64_t t0, long n, s_gen_t gen, const void *arg)
{
    for (long i = 0; i < n; i += 10) {
        long k = n - i < 10 ? n - i : 10;
        s_envelope(r->f, cmd, t0 + i + k - 1);
        if (r->gb17691)
            r->f->layout = 0;
        for (long j = 0; j < k; j++) {
            s_phys_t p;
            gen((long)(t0 + i + j - T0), &p, arg);
            vem_test_stream_block(&r->f->blocks[r->f->nblocks++],
                                  r->gb17691 ? t0 + i + k - 1 : t0 + i + j, &p);
        }
        s_send(r);
    }
}

static void s_cmd(s_run_t *r, uint8_t cmd, int64_t t)
{
    s_envelope(r->f, cmd, t);
    s_send(r);
}

/* An OBD snapshot at t: MIL and DTCs. */
static void s_obd(s_run_t *r, int64_t t, unsigned mil, const uint32_t *dtcs, int ndtcs)
{
    vem_hj1239_frame_t *f = r->f;
    s_envelope(f, VEM_HJ1239_CMD_REALTIME, t);
    vem_hj1239_block_t *b = &f->blocks[f->nblocks++];
    memset(b, 0, sizeof *b);
    b->type = VEM_HJ1239_BLOCK_OBD;
    b->time = t;
    b->raw[VEM_HJ1239_F_OBD_PROTOCOL] = 2;
    b->raw[VEM_HJ1239_F_MIL] = mil;
    b->raw[VEM_HJ1239_F_DIAG_SUPPORTED] = 0x0C00;
    b->raw[VEM_HJ1239_F_DIAG_READY] = 0x0C00;
    b->raw[VEM_HJ1239_F_DTC_COUNT] = (uint32_t)ndtcs;
    vem_hj1239_obd_t *o = &f->obd[f->nobd++];
    memset(o, 0, sizeof *o);
    memcpy(o->vin, VIN, 17);
    o->dtc_n = (uint16_t)ndtcs;
    for (int i = 0; i < ndtcs; i++)
        f->dtcs[f->ndtcs++] = dtcs[i];
    b->novalue = vem_hj1239_novalue(b);
    s_send(r);
}

/* A valid roadside reading at t + 0.25 s, of the fuel given (unknown: the registry's). */
static void s_reading_of(s_run_t *r, int64_t t, const char *id, double no_ppm, double opacity,
                         vem_rules_fuel_t fuel)
{
    vem_rsd_reading_t rd;
    vem_rules_reading_init(&rd);
    snprintf(rd.station_id, sizeof rd.station_id, "SH-07");
    snprintf(rd.reading_id, sizeof rd.reading_id, "%s", id);
    snprintf(rd.plate, sizeof rd.plate, "%s", PLATE);
    snprintf(rd.plate_color, sizeof rd.plate_color, "yellow");
    rd.time_us = US(t) + 250000;
    rd.fuel = fuel;
    rd.valid = true;
    rd.speed_kmh = 45;
    rd.accel_ms2 = 0.1;
    rd.vsp_kw_t = 6;
    rd.wind_ms = 1;
    rd.slope_pct = 0.5;
    rd.no_ppm = no_ppm;
    rd.opacity_pct = opacity;
    if (s_begin(r))
        vem_rules_on_reading(r->v, r->cfg, &rd, ++r->seq, s_collect, &r->log);
}

static void s_reading(s_run_t *r, int64_t t, const char *id, double no_ppm, double opacity)
{
    s_reading_of(r, t, id, no_ppm, opacity, VEM_FUEL_DIESEL);
}

static void s_silence(s_run_t *r, int64_t now)
{
    if (s_begin(r))
        vem_rules_on_silence(r->v, r->cfg, US(now), 0, s_collect, &r->log);
}

/* ---- sample generators -------------------------------------------------------------------- */

static void s_const(long i, s_phys_t *p, const void *arg)
{
    (void)i;
    *p = *(const s_phys_t *)arg;
}

/* Small engine figures (W_ref 1 kWh, D_lim 143) so that windows end every minute or so, and
 * the day's troubles: reagent low from sample 200, NOx frozen from 1000 with the rpm varying,
 * NOx high enough for the windows to fail. */
static const vem_rules_engine_facts_t s_small = {1000, 200, 1, VEM_FUEL_DIESEL};
/* A heavy truck: D_lim 1603. */
static const vem_rules_engine_facts_t s_truck = {2000, 350, 30, VEM_FUEL_DIESEL};

static void s_trouble(long i, s_phys_t *p, const void *arg)
{
    (void)arg;
    *p = s_cruise;
    p->rpm = 1000 + (double)(i % 2) * 60;
    p->torque = 58 - (double)(i % 5);
    p->intake = 400;
    p->fuel = 2;
    p->nox_down = i < 1000 ? 100 + (double)(i % 13) * 10 : 123.45;
    p->reagent = i < 200 ? 40 : 1.2;
    if (i % 97 == 50)
        p->nox_down = NAN; /* a sentinel now and then: neither breaks nor extends */
}

/* A truck's day: power and NOx vary; from sample 2000 on the SCR converts less than half of
 * the upstream NOx (1 - 240 / 400 on average, against 1 - 240 / 800 before), so a 30-minute
 * window of whole minutes with fewer than about 360 samples before 2000 fails: the one of
 * 1680 .. 3479, after the split at 2700. */
static void s_drive(long i, s_phys_t *p, const void *arg)
{
    (void)arg;
    *p = s_cruise;
    p->nox_up = i >= 2000 ? 400 : 800;
    p->rpm = 1100 + (double)((i * 37) % 700);
    p->torque = 30 + (double)((i * 11) % 60);
    p->fuel = 20 + (double)(i % 17);
    p->nox_down = 40 + (double)((i * 29) % 400);
}

/* ---- the scenarios ------------------------------------------------------------------------ */

static void s_sc_window(s_run_t *r)
{
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0, 900, s_trouble, NULL);
    s_mark(r); /* inside an open window, mid-trip */
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 900, 1500, s_trouble, NULL);
    s_mark(r); /* the trip's last event */
    s_cmd(r, VEM_HJ1239_CMD_LOGOUT, T0 + 2400);
}

static void s_sc_mil(s_run_t *r)
{
    const uint32_t a[] = {0x0000A1B2, 0x0000C3D4}, b[] = {0x0000A1B2, 0x0000C3D4, 0x00E5F607};
    s_obd(r, T0, 1, a, 2);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 1, 30, s_const, &s_cruise);
    for (int d = 1; d <= 8; d++) {
        if (d == 4)
            s_mark(r); /* MIL on for 4 days, escalates after the split */
        s_obd(r, T0 + d * DAY, 1, d < 6 ? a : b, d < 6 ? 2 : 3);
    }
    s_mark(r);
    s_obd(r, T0 + 8 * DAY + 3600, 1, b, 3); /* escalated once: nothing new */
    s_obd(r, T0 + 9 * DAY, 0, NULL, 0);
    s_mark(r);
    s_obd(r, T0 + 9 * DAY + 60, 1, b, 3);        /* a new episode, the codes new again */
    s_silence(r, T0 + 9 * DAY + 60 + 73 * 3600); /* offline: once per silence */
    s_mark(r);
    s_silence(r, T0 + 9 * DAY + 60 + 74 * 3600);
}

/* More codes than the vehicle's set holds (64): 70 codes in ten snapshots a minute apart are
 * one notice, and the set stays full (each later snapshot leaves 6 codes not judged) across a
 * checkpoint; a snapshot without codes clears it, and the 70 again are one more notice; a 71st
 * code while it is full is none. */
static void s_sc_dtcs(s_run_t *r)
{
    uint32_t codes[71];
    for (int k = 0; k < 71; k++)
        codes[k] = 0x00020000u + (uint32_t)k;
    for (int m = 0; m < 10; m++) {
        if (m == 5)
            s_mark(r); /* the set full, 24 codes not judged so far */
        s_obd(r, T0 + 60 * m, 0, codes, 70);
    }
    s_obd(r, T0 + 600, 0, NULL, 0);
    s_mark(r); /* cleared */
    s_obd(r, T0 + 660, 0, codes, 70);
    s_mark(r);
    s_obd(r, T0 + 720, 0, codes, 71);
}

static void s_frozen(long i, s_phys_t *p, const void *arg)
{
    (void)arg;
    *p = s_cruise;
    p->nox_down = (i >= 300 && i < 310) ? NAN : 123.45;
    p->rpm = 1400 + (double)(i % 2) * 60;
}

static void s_sc_frozen(s_run_t *r)
{
    r->gb17691 = true; /* the evidence keeps the stored keys: sample_time and block_idx */
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0, 300, s_frozen, NULL);
    s_mark(r); /* just before the sentinels */
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 300, 320, s_frozen, NULL);
}

static void s_sc_roadside(s_run_t *r)
{
    s_reading(r, T0, "r1", 1600, 35); /* NO and opacity: notices */
    s_mark(r);
    s_reading(r, T0 + DAY, "r2", 1400, 36); /* NO compliant: its chain restarts */
    s_mark(r);
    s_reading(r, T0 + 2 * DAY, "r3", 1700, 40); /* opacity completes: violation */
    s_reading_of(r, T0 + 3 * DAY, "r4", 1800, NAN, VEM_FUEL_UNKNOWN); /* diesel by registry */
    s_mark(r);
    s_reading(r, T0 + 4 * DAY, "r5", 1900, 20); /* NO chain of two: violation */
    s_reading(r, T0 + 4 * DAY, "r5", 1900, 20); /* judged once */
    s_mark(r);
    s_reading(r, T0 - DAY, "r0", 1650, NAN); /* late: NO r0, r1 before r2's compliant: violation */
    s_reading(r, T0 + 3 * DAY + DAY / 2, "r6", 1000, NAN); /* late compliant: r5 alone again */
}

static void s_low_nox(long i, s_phys_t *p, const void *arg)
{
    (void)i;
    (void)arg;
    *p = s_cruise;
    p->nox_down = 80;
}

static void s_sc_fusion(s_run_t *r)
{
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0, 6, s_low_nox, NULL);
    s_reading(r, T0 + 10, "f1", 1800, NAN);  /* waits for OBD data up to T0 + 12.25 */
    s_reading(r, T0 + 400, "f2", 1900, NAN); /* waits, and no OBD data comes near it */
    s_mark(r);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 6, 14, s_low_nox, NULL);
    s_mark(r);
    s_silence(r, T0 + 400 + 601); /* f2 expires: unmatched */
    r->gb17691 = true;            /* one time a frame: a sample's key is not its second */
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 1100, 20, s_low_nox, NULL);
    s_mark(r);
    /* matched at once in the history (a checkpoint keeps it, keys and all): T0 + 1113, stored
     * as the frame of T0 + 1110 .. 1119, block 3 */
    s_reading(r, T0 + 1113, "f3", 1800, NAN);
}

/* Downstream NOx above upstream for 800 samples, then no intake air value. */
static void s_tamper(long i, s_phys_t *p, const void *arg)
{
    (void)arg;
    *p = s_cruise;
    if (i < 800)
        p->nox_down = 900 + (double)(i % 3);
    else
        p->intake = NAN;
}

static void s_sc_tamper(s_run_t *r)
{
    s_obd(r, T0 + 100, 1, NULL, 0);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0, 400, s_tamper, NULL);
    s_mark(r);                     /* inside the down-above-up span */
    s_obd(r, T0 + 50, 0, NULL, 0); /* older than the newest snapshot: not used */
    s_obd(r, T0 + 200, 1, NULL, 0);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 400, 1400, s_tamper, NULL);
    s_mark(r); /* inside the invalid-signal span */
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 1800, 1200, s_tamper, NULL);
}

static void s_nox_high(long i, s_phys_t *p, const void *arg)
{
    (void)arg;
    *p = s_cruise;
    p->nox_down = 600 + (double)(i % 7);
}

static void s_sc_fallback(s_run_t *r)
{
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0, 400, s_nox_high, NULL);
    s_mark(r);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 400, 400, s_nox_high, NULL);
}

/* Engine figures, but friction torque 0xFF save at sample 400: the window cannot use the
 * samples, obd.nox_high judges them, and 400 (which the window takes) ends the span that a
 * checkpoint just before it holds open; the next one, 401 .. 1000, makes the notice. */
static void s_no_friction(long i, s_phys_t *p, const void *arg)
{
    (void)arg;
    *p = s_cruise;
    p->nox_down = 1400;
    if (i != 400)
        p->friction = NAN;
}

static void s_sc_no_friction(s_run_t *r)
{
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0, 400, s_no_friction, NULL);
    s_mark(r); /* a nox_high span open on a track with figures */
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 400, 700, s_no_friction, NULL);
}

static void s_sc_trips(s_run_t *r)
{
    s_cmd(r, VEM_HJ1239_CMD_LOGIN, T0);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0, 700, s_trouble, NULL);
    s_mark(r);
    s_cmd(r, VEM_HJ1239_CMD_LOGOUT, T0 + 700);
    s_mark(r); /* right at the trip boundary: no trip open */
    s_cmd(r, VEM_HJ1239_CMD_LOGIN, T0 + 1000);
    s_mark(r);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 1000, 2000, s_trouble, NULL);
    s_mark(r);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 3000 + 700, 500, s_trouble, NULL); /* a gap */
}

static void s_sc_backfill(s_run_t *r)
{
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 5 * 3600, 300, s_drive, NULL); /* live, later */
    s_samples(r, VEM_HJ1239_CMD_RESEND, T0, 1200, s_trouble, NULL);           /* the backlog */
    s_mark(r); /* both tracks with a trip open */
    s_samples(r, VEM_HJ1239_CMD_RESEND, T0 + 1200, 1200, s_trouble, NULL);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 5 * 3600 + 300, 300, s_drive, NULL);
    s_mark(r);
    s_samples(r, VEM_HJ1239_CMD_RESEND, T0 - 3600, 50, s_drive, NULL); /* older: a new trip */
    s_samples(r, VEM_HJ1239_CMD_RESEND, T0 + 2400, 200, s_trouble, NULL);
}

static void s_sc_truck(s_run_t *r)
{
    s_cmd(r, VEM_HJ1239_CMD_LOGIN, T0);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0, 2700, s_drive, NULL);
    s_mark(r); /* inside the SCR window that fails */
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 2700, 900, s_drive, NULL);
    s_mark(r); /* an hour into the trip */
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 3600, 3600, s_drive, NULL);
}

/* Idling (650 rpm, torque 10 %, friction 6 %: 4 % of 2000 N m, 5.4 kW) never ends a window of
 * 30 kWh before it spans D_lim = (30 x 3600 + 4205) / 70 = 1603 s: from then on every sample
 * drops the oldest window as too long to be valid (rules_window.c). Split there, then where
 * the driving that follows ends windows that began while idling. */
static void s_idle_then_drive(long i, s_phys_t *p, const void *arg)
{
    if (i >= 2400) {
        s_drive(i, p, arg);
        return;
    }
    *p = s_cruise;
    p->rpm = 650;
    p->torque = 10;
    p->friction = 6;
}

static void s_sc_idle(s_run_t *r)
{
    s_cmd(r, VEM_HJ1239_CMD_LOGIN, T0);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0, 1800, s_idle_then_drive, NULL);
    s_mark(r); /* windows dropped as too long, one a sample */
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 1800, 1200, s_idle_then_drive, NULL);
    s_mark(r); /* driving: windows that began idling end */
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 3000, 1800, s_idle_then_drive, NULL);
}

/* The SCR window sliding by whole minutes: conversion 1 - 100 / 800 = 0.875 but for samples
 * 905 .. 2704, at 1 - 480 / 800 = 0.40; every seventh sample has its SCR inlet at 200 C (not
 * qualifying: it neither breaks nor extends the window). Split inside the window, and where a
 * minute and its ring are only part filled. */
static void s_scr_slide(long i, s_phys_t *p, const void *arg)
{
    (void)arg;
    *p = s_cruise;
    p->nox_down = i >= 905 && i < 2705 ? 480 : 100;
    if (i % 7 == 3)
        p->scr_in = 200;
}

static void s_sc_scr(s_run_t *r)
{
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0, 1200, s_scr_slide, NULL);
    s_mark(r); /* the window sliding into the bad stretch */
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 1200, 1000, s_scr_slide, NULL);
    s_mark(r);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 2200, 1600, s_scr_slide, NULL);
}

/* Everything at once, shorter: a state with every part filled. */
static void s_sc_all(s_run_t *r)
{
    const uint32_t codes[] = {0x00001234, 0x00005678, 0x00009ABC, 0x0000DEF0, 0x00000042};
    s_obd(r, T0 - 10, 1, codes, 5);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 3 * 3600, 40, s_low_nox, NULL);
    s_samples(r, VEM_HJ1239_CMD_RESEND, T0, 500, s_trouble, NULL);
    s_reading(r, T0 + 3 * 3600 + 30, "a1", 1800, 45);
    s_reading(r, T0 + 3 * 3600 + 300, "a2", 1700, 50);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 3 * 3600 + 40, 100, s_trouble, NULL);
    s_mark(r);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 3 * 3600 + 140, 60, s_trouble, NULL);
    s_reading(r, T0 + 3 * 3600 + 100, "a3", 1750, NAN);
    s_obd(r, T0 + 3 * 3600 + 200, 1, codes, 3);
    s_samples(r, VEM_HJ1239_CMD_RESEND, T0 + 500, 60, s_trouble, NULL);
}

/* A link drop of 900 s in a trip of trouble: live data goes on from T0 + 1800 while the hole is
 * re-sent, 100 samples after each 60 live ones (rules.c, s_hold), then an older copy. Marked
 * with samples held: 60 live ones with nothing re-sent yet, and 300 with 400 of the hole
 * re-sent. */
static void s_sc_hole(s_run_t *r)
{
    s_cmd(r, VEM_HJ1239_CMD_LOGIN, T0);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0, 900, s_trouble, NULL);
    for (int c = 0; c < 9; c++) {
        s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 1800 + 60 * c, 60, s_trouble, NULL);
        if (c == 0 || c == 4)
            s_mark(r);
        s_samples(r, VEM_HJ1239_CMD_RESEND, T0 + 900 + 100 * c, 100, s_trouble, NULL);
    }
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 2340, 660, s_trouble, NULL);
    s_samples(r, VEM_HJ1239_CMD_RESEND, T0 + 1000, 100, s_trouble, NULL); /* a copy */
}

/* A terminal that skips a second every 30 (never re-sent: gaps of the live trip, rules.c
 * s_gap), then a link drop of 20 s whose wait runs out (a gap too); then seconds 100 .. 139 re-sent
 * (0x03): copies but for T0 + 119, skipped then, which comes after all and is judged on the
 * back-fill track; then more live data. Marked with gaps known: after the skips, with samples
 * held after the drop, and after the re-send. */
static void s_sc_skips(s_run_t *r)
{
    s_cmd(r, VEM_HJ1239_CMD_LOGIN, T0);
    for (int c = 0; c < 40; c++) {
        s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 30 * c, 29, s_trouble, NULL);
        if (c == 20)
            s_mark(r);
    }
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 1220, 300, s_trouble, NULL);
    s_mark(r);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 1520, 400, s_trouble, NULL);
    s_samples(r, VEM_HJ1239_CMD_RESEND, T0 + 100, 40, s_trouble, NULL);
    s_mark(r);
    s_samples(r, VEM_HJ1239_CMD_REALTIME, T0 + 1920, 600, s_trouble, NULL);
}

typedef struct {
    const char *name;
    const vem_rules_engine_facts_t *facts;
    const char *vin, *plate;
    void (*fn)(s_run_t *r);
    vem_rule_t expect[4]; /* rules the scenario must produce (VEM_RULE_COUNT: none) */
} s_scenario_t;

#define S_NONE VEM_RULE_COUNT

static const s_scenario_t s_scenarios[] = {
    {"long trip whose windows fail",
     &s_small,
     VIN,
     NULL,
     s_sc_window,
     {VEM_RULE_OBD_NOX_WINDOW, VEM_RULE_OBD_REAGENT_EMPTY, VEM_RULE_OBD_TAMPER, S_NONE}},
    {"MIL run and DTCs across the checkpoint",
     &s_truck,
     VIN,
     NULL,
     s_sc_mil,
     {VEM_RULE_OBD_MIL_ON, VEM_RULE_OBD_DTC, VEM_RULE_OBD_OFFLINE, S_NONE}},
    {"frozen sensor span across the checkpoint",
     &s_truck,
     VIN,
     NULL,
     s_sc_frozen,
     {VEM_RULE_OBD_TAMPER, S_NONE, S_NONE, S_NONE}},
    {"more trouble codes than the set holds",
     &s_truck,
     VIN,
     NULL,
     s_sc_dtcs,
     {VEM_RULE_OBD_DTC, S_NONE, S_NONE, S_NONE}},
    {"roadside chains",
     &s_truck,
     NULL,
     PLATE,
     s_sc_roadside,
     {VEM_RULE_RSD_NO, VEM_RULE_RSD_OPACITY, S_NONE, S_NONE}},
    {"fusion with readings waiting for OBD data",
     &s_truck,
     VIN,
     PLATE,
     s_sc_fusion,
     {VEM_RULE_FUSION_OBD_MISMATCH, VEM_RULE_RSD_NO, S_NONE, S_NONE}},
    {"no registry figures: nox_high",
     NULL,
     VIN,
     NULL,
     s_sc_fallback,
     {VEM_RULE_OBD_NOX_HIGH, S_NONE, S_NONE, S_NONE}},
    {"figures, but friction not available: nox_high",
     &s_truck,
     VIN,
     NULL,
     s_sc_no_friction,
     {VEM_RULE_OBD_NOX_HIGH, S_NONE, S_NONE, S_NONE}},
    {"an ended trip and a new one",
     &s_small,
     VIN,
     NULL,
     s_sc_trips,
     {VEM_RULE_OBD_NOX_WINDOW, VEM_RULE_OBD_REAGENT_EMPTY, VEM_RULE_OBD_TAMPER, S_NONE}},
    {"back-fill track beside the live one",
     &s_small,
     VIN,
     NULL,
     s_sc_backfill,
     {VEM_RULE_OBD_NOX_WINDOW, VEM_RULE_OBD_REAGENT_EMPTY, S_NONE, S_NONE}},
    {"a link drop re-sent while live data goes on",
     &s_small,
     VIN,
     NULL,
     s_sc_hole,
     {VEM_RULE_OBD_NOX_WINDOW, VEM_RULE_OBD_REAGENT_EMPTY, S_NONE, S_NONE}},
    {"tamper spans and a late OBD snapshot",
     &s_truck,
     VIN,
     NULL,
     s_sc_tamper,
     {VEM_RULE_OBD_TAMPER, VEM_RULE_OBD_MIL_ON, S_NONE, S_NONE}},
    {"a truck two hours on the road",
     &s_truck,
     VIN,
     NULL,
     s_sc_truck,
     {VEM_RULE_OBD_SCR_INEFFECTIVE, S_NONE, S_NONE, S_NONE}},
    {"idling past the longest valid window, then driving",
     &s_truck,
     VIN,
     NULL,
     s_sc_idle,
     {S_NONE, S_NONE, S_NONE, S_NONE}},
    {"SCR window sliding across the checkpoint",
     NULL,
     VIN,
     NULL,
     s_sc_scr,
     {VEM_RULE_OBD_SCR_INEFFECTIVE, S_NONE, S_NONE, S_NONE}},
    {"a terminal that skips seconds, a drop not re-sent, copies",
     &s_small,
     VIN,
     NULL,
     s_sc_skips,
     {VEM_RULE_OBD_NOX_WINDOW, VEM_RULE_OBD_REAGENT_EMPTY, S_NONE, S_NONE}},
    {"everything at once",
     &s_small,
     VIN,
     PLATE,
     s_sc_all,
     {VEM_RULE_OBD_DTC, VEM_RULE_RSD_NO, VEM_RULE_FUSION_OBD_MISMATCH, S_NONE}},
};

typedef struct {
    long split, capture, from;
    vem_rules_vehicle_t *start; /* taken over */
} s_opts_t;

/* Runs the scenario (with a checkpoint before event o->split, a capture before o->capture,
 * from event o->from on with vehicle o->start), then a flush, itself an event. The caller
 * frees r->log and r->cap_buf. */
static void s_run(const s_scenario_t *sc, const vem_rules_config_t *cfg, const s_opts_t *o,
                  s_run_t *r)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->split = o->split;
    r->capture = o->capture;
    r->from = o->from;
    r->start = o->start;
    r->f = malloc(sizeof *r->f);
    ck_assert_ptr_nonnull(r->f);
    if (!r->start) {
        r->v = vem_rules_vehicle_new(sc->vin, sc->plate, sc->facts);
        ck_assert_ptr_nonnull(r->v);
    }
    sc->fn(r);
    if (s_begin(r))
        vem_rules_flush(r->v, cfg, s_collect, &r->log);
    vem_rules_vehicle_destroy(&r->v);
    vem_rules_vehicle_destroy(&r->start);
    free(r->f);
    r->f = NULL;
}

static const s_opts_t s_plain = {-1, -1, 0, NULL};

static vem_rules_config_t s_defaults(void)
{
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    return cfg;
}

static void s_add_split(long *splits, int *n, long k, long events)
{
    if (k < 0 || k >= events)
        return;
    for (int i = 0; i < *n; i++)
        if (splits[i] == k)
            return;
    splits[(*n)++] = k;
}

START_TEST(equivalence_at_every_split)
{
    const s_scenario_t *sc = &s_scenarios[_i];
    vem_rules_config_t cfg = s_defaults();
    s_run_t z;
    s_run(sc, &cfg, &s_plain, &z);
    for (int k = 0; k < 4 && sc->expect[k] != S_NONE; k++) {
        bool found = false;
        for (size_t i = 0; i < z.log.n && !found; i++)
            found = z.log.v[i].rule == sc->expect[k];
        ck_assert_msg(found, "%s: no %s verdict", sc->name, vem_rules_name(sc->expect[k]));
    }
    if (sc->fn == s_sc_fusion) {
        const s_got_t *f3 = NULL;
        for (size_t i = 0; i < z.log.n; i++)
            if (z.log.v[i].rule == VEM_RULE_FUSION_OBD_MISMATCH)
                f3 = &z.log.v[i];
        ck_assert_ptr_nonnull(f3);
        json_t *obd = json_object_get(f3->ev, "obd");
        char iso[VEM_RULES_ISO_LEN];
        vem_rules_iso(US(T0 + 1113), iso);
        ck_assert_str_eq(json_string_value(json_object_get(obd, "time")), iso);
        vem_rules_iso(US(T0 + 1119), iso);
        ck_assert_str_eq(json_string_value(json_object_get(obd, "sample_time")), iso);
        ck_assert_int_eq(json_integer_value(json_object_get(obd, "block_idx")), 3);
    }
    if (sc->fn == s_sc_dtcs) {
        int dtc = 0;
        for (size_t i = 0; i < z.log.n; i++)
            dtc += z.log.v[i].rule == VEM_RULE_OBD_DTC;
        ck_assert_int_eq(dtc, 2); /* at T0 and at T0 + 660 */
    }
    if (sc->fn == s_sc_no_friction) {
        const s_got_t *g = NULL;
        for (size_t i = 0; i < z.log.n; i++)
            if (z.log.v[i].rule == VEM_RULE_OBD_NOX_HIGH) {
                ck_assert_ptr_null(g); /* one */
                g = &z.log.v[i];
            }
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(g->first_us, US(T0 + 401));
        ck_assert_int_eq(g->last_us, US(T0 + 1000));
    }
    if (sc->fn == s_sc_tamper) {
        int tamper = 0;
        for (size_t i = 0; i < z.log.n; i++)
            tamper += z.log.v[i].rule == VEM_RULE_OBD_TAMPER;
        ck_assert_int_eq(tamper, 2); /* down_above_up and invalid_signals */
    }
    long events = z.event;
    long splits[64];
    int n = 0;
    for (int m = 0; m < z.nmarks; m++)
        for (long d = -1; d <= 1; d++)
            s_add_split(splits, &n, z.marks[m] + d, events);
    for (long k = 0; k <= 8; k++)
        s_add_split(splits, &n, k * (events - 1) / 8, events);
    for (int s = 0; s < n; s++) {
        s_run_t y;
        s_opts_t o = {splits[s], -1, 0, NULL};
        s_run(sc, &cfg, &o, &y);
        ck_assert_msg(y.saved > 0, "%s: split %ld not taken", sc->name, splits[s]);
        ck_assert_msg(y.log.n == z.log.n, "%s, split %ld of %ld: %zu verdicts, not %zu", sc->name,
                      splits[s], events, y.log.n, z.log.n);
        for (size_t i = 0; i < z.log.n; i++)
            s_same_verdict(&z.log.v[i], &y.log.v[i], i, splits[s]);
        s_log_free(&y.log);
    }
    s_log_free(&z.log);
}
END_TEST

/* ---- size ------------------------------------------------------------------------------- */

/* The scenario that runs fn. */
static const s_scenario_t *s_scenario(void (*fn)(s_run_t *r))
{
    for (size_t i = 0; i < sizeof s_scenarios / sizeof *s_scenarios; i++)
        if (s_scenarios[i].fn == fn)
            return &s_scenarios[i];
    ck_abort_msg("no such scenario");
    return NULL;
}

START_TEST(size_of_a_driving_truck)
{
    vem_rules_config_t cfg = s_defaults();
    const s_scenario_t *sc = s_scenario(s_sc_truck);
    s_run_t z;
    s_run(sc, &cfg, &s_plain, &z);
    s_log_free(&z.log);
    s_opts_t o = {z.marks[1], -1, 0, NULL};
    s_run_t y;
    s_run(sc, &cfg, &o, &y);
    s_log_free(&y.log);
    fprintf(stderr, "rules_ckpt: a truck an hour into its trip saves to %zu bytes (holds %zu)\n",
            y.saved, y.held);
    ck_assert_uint_le(y.saved, 65536);
    ck_assert_uint_le(y.saved, y.held + 1024);
}
END_TEST

/* ---- damage ------------------------------------------------------------------------------- */

/* The checkpoint of scenario sc before event `at` (malloc'd). */
static uint8_t *s_checkpoint_of(const s_scenario_t *sc, const vem_rules_config_t *cfg, long at,
                                size_t *len)
{
    s_opts_t o = {-1, at, 0, NULL};
    s_run_t r;
    s_run(sc, cfg, &o, &r);
    s_log_free(&r.log);
    ck_assert_ptr_nonnull(r.cap_buf);
    *len = r.cap_len;
    return r.cap_buf;
}

static long s_mark_of(const s_scenario_t *sc, const vem_rules_config_t *cfg, int k)
{
    s_run_t z;
    s_run(sc, cfg, &s_plain, &z);
    s_log_free(&z.log);
    ck_assert_int_gt(z.nmarks, k);
    return z.marks[k];
}

static bool s_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

START_TEST(every_truncation_is_refused)
{
    vem_rules_config_t cfg = s_defaults();
    void (*which[])(s_run_t *) = {s_sc_all, s_sc_truck, s_sc_hole};
    for (int k = 0; k < 3; k++) {
        const s_scenario_t *sc = s_scenario(which[k]);
        size_t len;
        uint8_t *buf = s_checkpoint_of(sc, &cfg, s_mark_of(sc, &cfg, 0), &len);
        ck_assert_uint_gt(len, 1000);
        char err[256];
        for (size_t n = 0; n < len; n++) {
            /* a copy of exactly n bytes, so ASan sees any read past them */
            uint8_t *cut = malloc(n ? n : 1);
            memcpy(cut, buf, n);
            err[0] = '\0';
            vem_rules_vehicle_t *v = vem_rules_vehicle_load(cut, n, err, sizeof err);
            ck_assert_msg(v == NULL, "%zu of %zu bytes loaded", n, len);
            ck_assert_msg(s_starts_with(err, "rules checkpoint: "), "%zu bytes: '%s'", n, err);
            free(cut);
        }
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, buf, len);
        longer[len] = 0;
        ck_assert_ptr_null(vem_rules_vehicle_load(longer, len + 1, err, sizeof err));
        ck_assert_str_eq(err, "rules checkpoint: 1 bytes after the state");
        ck_assert_ptr_null(vem_rules_vehicle_load(longer, len + 1, NULL, 0)); /* no err: fine */
        free(longer);
        free(buf);
    }
}
END_TEST

START_TEST(version_and_magic)
{
    vem_rules_config_t cfg = s_defaults();
    size_t len;
    uint8_t *buf = s_checkpoint_of(s_scenario(s_sc_all), &cfg, 3, &len);
    char err[256];
    vem_rules_vehicle_t *v = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_ptr_nonnull(v);
    vem_rules_vehicle_destroy(&v);
    uint32_t versions[] = {0, 14};
    for (int i = 0; i < 2; i++) {
        memcpy(buf + 4, &versions[i], 4);
        ck_assert_ptr_null(vem_rules_vehicle_load(buf, len, err, sizeof err));
        char want[80];
        snprintf(want, sizeof want,
                 "rules checkpoint: version %u, this build reads versions 1 to 13", versions[i]);
        ck_assert_str_eq(err, want);
    }
    uint32_t version = 13;
    memcpy(buf + 4, &version, 4);
    uint32_t swapped = 0x04030201;
    memcpy(buf + 8, &swapped, 4);
    ck_assert_ptr_null(vem_rules_vehicle_load(buf, len, err, sizeof err));
    ck_assert(s_starts_with(err, "rules checkpoint: written on a host of another byte order"));
    buf[0] = 'X';
    ck_assert_ptr_null(vem_rules_vehicle_load(buf, len, err, sizeof err));
    ck_assert(s_starts_with(err, "rules checkpoint: no \"VRCK\" magic"));
    free(buf);
}
END_TEST

/* ---- older versions, laid out by hand ------------------------------------------------------ */

typedef struct {
    uint8_t b[131072];
    size_t n;
} s_bytes_t;

static void s_w(s_bytes_t *o, const void *p, size_t n)
{
    ck_assert_uint_le(o->n + n, sizeof o->b);
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void s_w8(s_bytes_t *o, uint8_t v)
{
    s_w(o, &v, 1);
}

static void s_w16(s_bytes_t *o, uint16_t v)
{
    s_w(o, &v, 2);
}

static void s_w32(s_bytes_t *o, uint32_t v)
{
    s_w(o, &v, 4);
}

static void s_w64(s_bytes_t *o, int64_t v)
{
    s_w(o, &v, 8);
}

static void s_wf64(s_bytes_t *o, double v)
{
    s_w(o, &v, 8);
}

static void s_wstr(s_bytes_t *o, const char *str)
{
    s_w8(o, (uint8_t)strlen(str));
    s_w(o, str, strlen(str));
}

/* v saves as the current version (13), and that loads to a state that saves the same bytes. */
static void s_resaves_as_current(const vem_rules_vehicle_t *v)
{
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, cap = 0, len2 = 0, cap2 = 0;
    vem_rules_vehicle_save(v, &buf, &len, &cap);
    ck_assert_uint_eq(buf[4], 13);
    char err[256];
    vem_rules_vehicle_t *again = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(again != NULL, "%s", err);
    vem_rules_vehicle_save(again, &buf2, &len2, &cap2);
    ck_assert_uint_eq(len2, len);
    ck_assert_mem_eq(buf2, buf, len);
    vem_rules_vehicle_destroy(&again);
    free(buf);
    free(buf2);
}

static void s_v10_of(const uint8_t *buf, size_t len, bool whole, s_bytes_t *o);

/* Version 9 is version 10 without the chain readings' "anchor" bit and reach: the first len
 * bytes of a version 11 checkpoint as version 9 are those a load of it saves with no reach
 * (17 bytes shorter for each: time, key, count), as version 10 (s_v10_of), under version 9.
 * Bytes that do not load as a whole end before the chains (the tests cut them there): they are
 * the same, as version 10. */
static void s_v9_of(const uint8_t *buf, size_t len, s_bytes_t *o)
{
    ck_assert_uint_eq(buf[4], 13);
    char err[256];
    vem_rules_vehicle_t *v = vem_rules_vehicle_load(buf, len, err, sizeof err);
    if (!v) {
        s_v10_of(buf, len, false, o);
        o->b[4] = 9;
        return;
    }
    for (unsigned p = 0; p < VEM_RULES_POLLUTANTS; p++)
        for (uint32_t i = 0; v->rsd.chain[p] && i < v->rsd.chain[p]->n; i++)
            v->rsd.chain[p]->links[i].reach_us = 0;
    uint8_t *again = NULL;
    size_t len2 = 0, cap = 0;
    vem_rules_vehicle_save(v, &again, &len2, &cap);
    ck_assert_uint_le(len2, len);
    s_v10_of(again, len2, true, o);
    o->b[4] = 9;
    vem_rules_vehicle_destroy(&v);
    free(again);
}

/* Where a checkpoint's last receipt on the intake clock is (version 6 on): after the header, the
 * three ids and 43 bytes of facts, flags, last receipt and last data time. */
static size_t s_open_receipt_at(const uint8_t *buf)
{
    size_t off = 12;
    for (int i = 0; i < 3; i++)
        off += 1 + buf[off];
    return off + 43;
}

/* Where each track's SCR window is in a version 9, 10 or 11 checkpoint (whose first len bytes
 * hold the tracks), its length there, and the ring's capacity: after the last receipt on the
 * intake clock, 9 counts, the newest snapshot, VIN mismatch, MIL runs (capacity, truncated,
 * count, 31 bytes a run), DTCs (capacity, count, codes); in a track, after 59 bytes of trip and
 * 5 spans of 39 bytes; the track goes on with the scr fired byte, 25 bytes of figures and the
 * NOx window (rules_ckpt.c's format), whose part after its active byte is at win (0: not
 * active): 112 bytes of constants, ring capacity (at 68) and count (at 76), sums and counts,
 * then in version 11 the sums before the head (16 bytes) and 12-byte slots, before it 20-byte
 * slots. */
typedef struct {
    size_t at[2], len[2];
    uint32_t cap[2];
    size_t win[2];
} s_scr_parts_t;

static uint32_t s_r32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint16_t s_r16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static void s_scr_parts(const uint8_t *buf, size_t len, s_scr_parts_t *sp)
{
    ck_assert_uint_ge(buf[4], 9);
    ck_assert_uint_le(buf[4], 13);
    size_t off = s_open_receipt_at(buf) + 8 + 9 * 8 + 8 + 1 + 4 + 1;
    off += 4 + 31 * (size_t)s_r32(buf + off);
    off += 4;
    off += 4 + 4 * (size_t)s_r32(buf + off);
    for (int t = 0; t < 2; t++) {
        off += 59 + 5 * 39;
        sp->at[t] = off;
        sp->cap[t] = s_r16(buf + off + 26);
        sp->len[t] = 30 + 22 * (size_t)s_r16(buf + off + 28);
        off += sp->len[t] + 1 + 25;
        ck_assert_uint_le(off + 1, len);
        sp->win[t] = 0;
        if (buf[off++]) { /* an active NOx window: its ring, kept windows */
            sp->win[t] = off;
            ck_assert_uint_le(off + 112, len);
            size_t count = s_r32(buf + off + 76);
            off += buf[4] >= 11 ? 128 + 12 * count : 112 + 20 * count;
            ck_assert_uint_le(off + 8, len);
            off += 8 + 12 * (size_t)s_r32(buf + off + 4) + 1 + 12;
        }
    }
    ck_assert_uint_le(off, len);
}

/* Bytes of version 13's part of a loaded state's checkpoint (after the roadside state, before
 * the memory held): each track's whole range (its first second, gap room and count, 8 bytes a
 * gap), the copy and held counts, the held samples' room and count, whether the hole fills
 * from its start and from its end (1 each), 36 bytes a held sample (its hole mark after its
 * block type). */
static size_t s_v13_part(const vem_rules_vehicle_t *v)
{
    return 2 * (8 + 4 + 4) + 8 * ((size_t)v->live.ngaps + v->back.ngaps) + 8 + 8 + 4 + 4 + 2 +
           (8 + 4 + 2 + 1 + 1 + 2 * 10) * (size_t)v->nheld;
}

/* Version 12 is version 13 without the tracks' gaps (a track's whole range started again after
 * each gap, at the second after its newest one: the sample that came after it) and without the
 * held samples' fill direction and hole marks. The first len bytes of a version 13 checkpoint as
 * version 12: when whole (it loads), each whole range that without its gap room and gaps, the
 * held part without those bytes, and the memory held less the gaps' room; else the same bytes
 * (they end before the chains). */
static void s_v12_of(const uint8_t *buf, size_t len, bool whole, s_bytes_t *o)
{
    ck_assert_uint_eq(buf[4], 13);
    o->n = 0;
    if (!whole) {
        s_w(o, buf, len);
        o->b[4] = 12;
        return;
    }
    char err[256];
    vem_rules_vehicle_t *v = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    size_t at = len - 8 - s_v13_part(v);
    s_w(o, buf, at);
    int64_t mem;
    memcpy(&mem, buf + len - 8, 8);
    const vem_rules_track_t *tracks[] = {&v->live, &v->back};
    for (int t = 0; t < 2; t++) {
        int64_t from;
        memcpy(&from, buf + at, 8);
        uint32_t n = s_r32(buf + at + 12);
        ck_assert_uint_eq(n, tracks[t]->ngaps);
        if (n) {
            const uint8_t *g = buf + at + 16 + 8 * (size_t)(n - 1);
            from = tracks[t]->start.sec + s_r32(g) + s_r32(g + 4);
        }
        s_w(o, &from, 8);
        mem -= (int64_t)s_r32(buf + at + 8) * (int64_t)sizeof(vem_rules_gap_t);
        at += 16 + 8 * (size_t)n;
    }
    s_w(o, buf + at, 8 + 8 + 4 + 4); /* counts, held room and count */
    at += 8 + 8 + 4 + 4 + 2;
    for (uint16_t i = 0; i < v->nheld; i++, at += 36) {
        s_w(o, buf + at, 15); /* a held sample without its hole mark */
        s_w(o, buf + at + 16, 20);
    }
    s_w(o, buf + at, len - 8 - at);
    s_w(o, &mem, 8);
    o->b[4] = 12;
    vem_rules_vehicle_destroy(&v);
}

/* Version 11 is version 12 without what comes after the roadside state: the tracks' whole
 * ranges, the copy and held counts, and the held samples (capacity, count, 35 bytes each). The
 * first len bytes of a version 12 checkpoint as version 11: when whole (it loads), without that
 * part, and the memory held (its last 8 bytes) less the held samples' room; else the same bytes
 * (they end before the chains). */
static void s_v11_of(const uint8_t *buf, size_t len, bool whole, s_bytes_t *o)
{
    static s_bytes_t twelve;
    if (buf[4] == 13) {
        s_v12_of(buf, len, whole, &twelve);
        buf = twelve.b;
        len = twelve.n;
    }
    ck_assert_uint_eq(buf[4], 12);
    o->n = 0;
    if (!whole) {
        s_w(o, buf, len);
        o->b[4] = 11;
        return;
    }
    char err[256];
    vem_rules_vehicle_t *v = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    size_t tail = 8 + 8 + 8 + 8 + 4 + 4 + (8 + 4 + 2 + 1 + 2 * 10) * (size_t)v->nheld;
    ck_assert_uint_ge(len, tail + 8);
    s_w(o, buf, len - 8 - tail);
    int64_t held;
    memcpy(&held, buf + len - 8, 8);
    held -= (int64_t)v->held_cap * (int64_t)sizeof(vem_rules_held_t);
    s_w(o, &held, 8);
    o->b[4] = 11;
    vem_rules_vehicle_destroy(&v);
}

/* A version 13 checkpoint (with nothing held and no gaps) with the tracks' whole ranges as a
 * load of an older version makes them (not known: from each track's next second on,
 * rules_ckpt.c s_get_whole). */
static void s_whole_not_known(uint8_t *buf, size_t len)
{
    char err[256];
    vem_rules_vehicle_t *v = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert_uint_eq(v->nheld, 0);
    ck_assert_uint_eq(v->live.gaps_cap + v->back.gaps_cap, 0);
    const vem_rules_track_t *tracks[] = {&v->live, &v->back};
    for (int t = 0; t < 2; t++) {
        int64_t from = tracks[t]->newest == INT64_MIN ? 0 : tracks[t]->last.sec + 1;
        memcpy(buf + len - 8 - 58 + 16 * t, &from, 8);
    }
    vem_rules_vehicle_destroy(&v);
}

/* Version 10 is version 11 without a NOx window's sums before the head, and with 20-byte ring
 * slots: the sums before the sample (two doubles) and its time, where version 11 has the
 * sample's own work and NOx (two floats) and its time. The first len bytes of a version 11
 * checkpoint as version 10: each ring's sums added up from the sums before its head, in the
 * ring's order, and when whole, the memory held (its last 8 bytes) that of the wider slots. */
static void s_v10_of(const uint8_t *buf, size_t len, bool whole, s_bytes_t *o)
{
    static s_bytes_t eleven;
    if (buf[4] == 12 || buf[4] == 13) {
        s_v11_of(buf, len, whole, &eleven);
        buf = eleven.b;
        len = eleven.n;
    }
    ck_assert_uint_eq(buf[4], 11);
    s_scr_parts_t sp;
    s_scr_parts(buf, len, &sp);
    o->n = 0;
    size_t from = 0;
    int64_t wider = 0;
    for (int t = 0; t < 2; t++) {
        if (!sp.win[t])
            continue;
        const uint8_t *w = buf + sp.win[t];
        uint32_t count = s_r32(w + 76);
        wider += (int64_t)s_r32(w + 68) * (20 - 12);
        s_w(o, buf + from, sp.win[t] + 112 - from);
        double work, nox;
        memcpy(&work, w + 112, 8);
        memcpy(&nox, w + 120, 8);
        for (uint32_t i = 0; i < count; i++) {
            const uint8_t *slot = w + 128 + 12 * (size_t)i;
            float dw, dn;
            memcpy(&dw, slot, 4);
            memcpy(&dn, slot + 4, 4);
            s_wf64(o, work);
            s_wf64(o, nox);
            s_w(o, slot + 8, 4);
            work += dw;
            nox += dn;
        }
        from = sp.win[t] + 128 + 12 * (size_t)count;
    }
    s_w(o, buf + from, len - from);
    if (whole) {
        int64_t held;
        memcpy(&held, o->b + o->n - 8, 8);
        held += wider;
        memcpy(o->b + o->n - 8, &held, 8);
    }
    o->b[4] = 10;
}

/* The first len bytes of a version 9 checkpoint with each track's SCR window replaced by what
 * scr gives for it (its bytes and ring capacity), and the memory held (the last 8 bytes, when
 * a ring was held: len is then the whole) made that of no ring. */
static void s_scr_replaced(const uint8_t *buf, size_t len, s_bytes_t *o,
                           void (*scr)(const uint8_t *part, s_bytes_t *o))
{
    s_scr_parts_t sp;
    s_scr_parts(buf, len, &sp);
    o->n = 0;
    s_w(o, buf, sp.at[0]);
    scr(buf + sp.at[0], o);
    size_t between = sp.at[0] + sp.len[0];
    s_w(o, buf + between, sp.at[1] - between);
    scr(buf + sp.at[1], o);
    size_t rest = sp.at[1] + sp.len[1];
    s_w(o, buf + rest, len - rest);
    uint32_t cap = sp.cap[0] + sp.cap[1];
    if (cap) {
        int64_t held;
        memcpy(&held, o->b + o->n - 8, 8);
        held -= (int64_t)cap * (int64_t)sizeof(vem_rules_scr_minute_t);
        memcpy(o->b + o->n - 8, &held, 8);
    }
}

/* Version 8's scr span for a version 9 SCR window: the qualifying samples held (n), value and
 * fired 0, the first sample held, and the sums of upstream (lo) and downstream (hi) NOx in ppm
 * (raw x 0.05 - 200 each). */
static void s_scr_as_span(const uint8_t *part, s_bytes_t *o)
{
    uint32_t n = s_r32(part), held = s_r16(part + 28);
    double up = s_r32(part + 4), down = s_r32(part + 8);
    const uint8_t *first = part + 12;
    for (uint32_t i = 0; i < held; i++) {
        const uint8_t *m = part + 30 + 22 * (size_t)i;
        up += s_r32(m);
        down += s_r32(m + 4);
        if (i == 0)
            first = m + 8;
    }
    n += 60 * held;
    s_w32(o, n);
    s_w32(o, 0);
    s_w8(o, 0);
    s_w(o, first, 14);
    s_wf64(o, 0.05 * up - 200.0 * n);
    s_wf64(o, 0.05 * down - 200.0 * n);
}

/* An SCR window started afresh: no minute, no ring. */
static void s_scr_empty(const uint8_t *part, s_bytes_t *o)
{
    (void)part;
    static const uint8_t zero[30];
    s_w(o, zero, sizeof zero);
}

/* The first len bytes of a version 9 checkpoint as version 8: the SCR windows as spans. */
static void s_v8_of_v9(const uint8_t *buf, size_t len, s_bytes_t *o)
{
    s_scr_replaced(buf, len, o, s_scr_as_span);
    o->b[4] = 8;
}

/* The same of a version 10 checkpoint. */
static void s_v8_of(const uint8_t *buf, size_t len, s_bytes_t *o)
{
    static s_bytes_t v9;
    s_v9_of(buf, len, &v9);
    s_v8_of_v9(v9.b, v9.n, o);
}

/* A version 9 checkpoint as a load of it from version 8 saves it: the SCR windows afresh. */
static void s_scr_afresh(const uint8_t *buf, size_t len, s_bytes_t *o)
{
    s_scr_replaced(buf, len, o, s_scr_empty);
}

/* The first len bytes of a version 9 checkpoint that holds no reading from the stored history
 * and no code not judged, as an older version: version 8 has a span where version 9 has each
 * track's SCR window (s_v8_of); versions 6 and 7 lack the last count (dtcs_unjudged, after the
 * last receipt on the intake clock and 8 counts); versions 1 to 5 the last receipt on the
 * intake clock too (the parts before it are the same from version 2 on). */
static void s_older(const uint8_t *buf10, size_t len10, uint8_t version, s_bytes_t *o)
{
    static s_bytes_t v9, v8;
    s_v9_of(buf10, len10, &v9);
    if (version == 9) {
        memcpy(o, &v9, sizeof v9);
        return;
    }
    s_v8_of_v9(v9.b, v9.n, &v8);
    const uint8_t *buf = v8.b;
    size_t len = v8.n;
    size_t at = s_open_receipt_at(buf), count = at + 8 + 8 * 8;
    ck_assert_uint_eq(buf[4], 8);
    if (version == 8) {
        memcpy(o, &v8, sizeof v8);
        return;
    }
    ck_assert_uint_le(count + 8, len);
    int64_t unjudged;
    memcpy(&unjudged, buf + count, 8);
    ck_assert_int_eq(unjudged, 0);
    o->n = 0;
    s_w(o, buf, version >= 6 ? count : at);
    if (version < 6)
        s_w(o, buf + at + 8, count - at - 8);
    s_w(o, buf + count + 8, len - count - 8);
    o->b[4] = version;
}

/* Version 8 is version 9 with a span of SCR block sums where version 9 has a track's SCR
 * window; version 7 is version 8 without the count of codes not judged (0 then), and version 6
 * is version 7 for a vehicle with no reading from the stored history; version 5 is version 6
 * without the vehicle's last receipt on the intake clock, and version 4 is version 5 with
 * receipt times where version 5 has the intake clock (the same values while nothing was
 * paused): a version 4 or 5 file of a mid-trip vehicle loads as it is, with that receipt not
 * known and its SCR window started afresh, and saves again as version 11 with every other byte
 * the same as version 9's (once the NOx window's ring is in version 10's form, s_v10_of); a
 * version 6, 7 or 8 file saves again as the same bytes under version 11 (so taken), save the
 * SCR window started afresh. (The checkpoint is taken 20 qualifying
 * samples into a trip, so the SCR window has a minute being filled that the load drops.) */
START_TEST(versions_4_to_8_load_as_they_are)
{
    vem_rules_config_t cfg = s_defaults();
    size_t len;
    uint8_t *buf11 = s_checkpoint_of(s_scenario(s_sc_all), &cfg, 3, &len);
    static s_bytes_t ten, nine, again10;
    size_t len11 = len;
    s_v10_of(buf11, len11, true, &ten);
    s_scr_parts_t sp;
    s_scr_parts(ten.b, ten.n, &sp);
    ck_assert_uint_ne(sp.win[0], 0);                     /* a NOx window, */
    ck_assert_uint_gt(s_r32(ten.b + sp.win[0] + 76), 0); /* with samples in its ring */
    ck_assert_uint_gt(ten.n, len11);
    s_v9_of(buf11, len11, &nine);
    const uint8_t *buf = nine.b;
    len = nine.n; /* the same as version 10 but for a reach: none here */
    ck_assert_uint_eq(len, ten.n);
    s_scr_parts(buf, len, &sp);
    ck_assert_uint_eq(s_r32(buf + sp.at[0]), 20); /* the live track's minute being filled */
    static s_bytes_t fresh;
    s_scr_afresh(buf, len, &fresh);
    ck_assert_uint_eq(fresh.n, len);
    ck_assert_int_ne(memcmp(fresh.b, buf, len), 0);
    fresh.b[4] = 10; /* what a load of an older version saves, as version 10 */
    size_t at = s_open_receipt_at(buf);
    int64_t known;
    memcpy(&known, buf + at, 8);
    ck_assert_int_ne(known, INT64_MIN);
    for (uint8_t version = 4; version <= 5; version++) {
        static s_bytes_t old;
        s_older(buf11, len11, version, &old);
        char err[256];
        vem_rules_vehicle_t *v = vem_rules_vehicle_load(old.b, old.n, err, sizeof err);
        ck_assert_msg(v != NULL, "version %u: %s", version, err);
        ck_assert_int_eq(v->last_received_open_us, INT64_MIN);
        ck_assert_uint_eq(v->live.scr_n, 0);
        uint8_t *again = NULL;
        size_t len2 = 0, cap = 0;
        vem_rules_vehicle_save(v, &again, &len2, &cap);
        ck_assert_uint_eq(again[4], 13);
        s_v10_of(again, len2, true, &again10);
        ck_assert_uint_eq(again10.n, len);
        ck_assert_mem_eq(again10.b + 5, fresh.b + 5, at - 5);
        int64_t unknown;
        memcpy(&unknown, again10.b + at, 8);
        ck_assert_int_eq(unknown, INT64_MIN);
        ck_assert_mem_eq(again10.b + at + 8, fresh.b + at + 8, len - at - 8);
        s_resaves_as_current(v);
        vem_rules_vehicle_destroy(&v);
        free(again);
    }
    for (uint8_t version = 6; version <= 8; version++) {
        static s_bytes_t old;
        s_older(buf11, len11, version, &old);
        /* version 8's span is 9 bytes longer than an SCR window with no whole minute */
        ck_assert_uint_eq(old.n, len + 2 * 9 - (version < 8 ? 8 : 0));
        char err[256];
        vem_rules_vehicle_t *v = vem_rules_vehicle_load(old.b, old.n, err, sizeof err);
        ck_assert_msg(v != NULL, "version %u: %s", version, err);
        ck_assert_uint_eq(vem_rules_vehicle_counts(v)->dtcs_unjudged, 0);
        uint8_t *again = NULL;
        size_t len2 = 0, cap = 0;
        vem_rules_vehicle_save(v, &again, &len2, &cap);
        ck_assert_uint_eq(again[4], 13);
        s_v10_of(again, len2, true, &again10);
        ck_assert_uint_eq(again10.n, len);
        ck_assert_mem_eq(again10.b, fresh.b, len);
        vem_rules_vehicle_destroy(&v);
        free(again);
    }
    free(buf11);
}
END_TEST

/* obd.offline measures silence on the intake clock (receipt less intake's paused total). A
 * vehicle last heard at rx, with 100 s paused before, and an hour more paused since: from a
 * version 6 checkpoint it is silent 72 h at rx + 73 h, not at rx + 72 h; from a version 5
 * one, whose intake clock of that receipt is not known, it is silent on the wall clock (72 h
 * at rx + 72 h) until its next frame, after which the intake clock counts again. */
START_TEST(version_5_offline_on_the_wall_clock)
{
    vem_rules_config_t cfg = s_defaults();
    s_log_t log = {0};
    vem_hj1239_frame_t *f = calloc(1, sizeof *f);
    ck_assert_ptr_nonnull(f);
    s_envelope(f, VEM_HJ1239_CMD_LOGIN, T0);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, NULL);
    int64_t rx = US(T0) + 1500000, h = US(3600), paused = US(3700);
    vem_rules_on_frame(v, &cfg, f, rx, US(100), 1, s_collect, &log);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    vem_rules_vehicle_save(v, &buf, &len, &cap);
    vem_rules_vehicle_destroy(&v);
    s_bytes_t old;
    s_older(buf, len, 5, &old);
    char err[256];
    vem_rules_vehicle_t *now = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(now != NULL, "%s", err);
    vem_rules_vehicle_t *was = vem_rules_vehicle_load(old.b, old.n, err, sizeof err);
    ck_assert_msg(was != NULL, "%s", err);
    ck_assert_int_eq(vem_rules_on_silence(now, &cfg, rx + 72 * h, paused, s_collect, &log), 0);
    ck_assert_int_eq(vem_rules_on_silence(was, &cfg, rx + 72 * h - 1, paused, s_collect, &log), 0);
    ck_assert_int_eq(vem_rules_on_silence(was, &cfg, rx + 72 * h, paused, s_collect, &log), 1);
    ck_assert_int_eq(vem_rules_on_silence(now, &cfg, rx + 73 * h, paused, s_collect, &log), 1);
    /* a frame at rx + 80 h, 3700 s paused before it, then an hour more paused: on the intake
     * clock 71 h at rx + 152 h, 72 h at rx + 153 h */
    s_envelope(f, VEM_HJ1239_CMD_LOGIN, T0 + 80 * 3600);
    vem_rules_on_frame(was, &cfg, f, rx + 80 * h, paused, 2, s_collect, &log);
    ck_assert_int_eq(vem_rules_on_silence(was, &cfg, rx + 152 * h, US(7300), s_collect, &log), 0);
    ck_assert_int_eq(vem_rules_on_silence(was, &cfg, rx + 153 * h, US(7300), s_collect, &log), 1);
    ck_assert_uint_eq(log.n, 3);
    vem_rules_vehicle_destroy(&now);
    vem_rules_vehicle_destroy(&was);
    s_log_free(&log);
    free(buf);
    free(f);
}
END_TEST

/* A diesel reading of PLATE from station S01, valid and inside every HJ 845 condition. */
static void s_valid_reading(vem_rsd_reading_t *rd, const char *id, int64_t time_us, double no_ppm)
{
    vem_rules_reading_init(rd);
    snprintf(rd->station_id, sizeof rd->station_id, "S01");
    snprintf(rd->reading_id, sizeof rd->reading_id, "%s", id);
    snprintf(rd->plate, sizeof rd->plate, "%s", PLATE);
    rd->time_us = time_us;
    rd->fuel = VEM_FUEL_DIESEL;
    rd->valid = true;
    rd->speed_kmh = 40;
    rd->accel_ms2 = 0.2;
    rd->vsp_kw_t = 5;
    rd->wind_ms = 2;
    rd->slope_pct = 1;
    rd->no_ppm = no_ppm;
}

/* Version 7 keeps which chain readings came from the stored history and not yet as an input
 * (rules_rsd.c), with their receipt times: a vehicle seeded from the history with r1 (T0, 1700 ppm)
 * and r2 (T0 + 1 d, 1600 ppm), saved and loaded, judges r2 as new when a replay brings it (by
 * rules.md the violation of r1 and r2, both over 1500 within 6 months, under r1's id), and only
 * once. Its flags byte (over | loaded << 1 = 3) is refused as version 6's "over" boolean, and a
 * flags byte of 4 is refused in versions 7 to 9, one of 8 in version 10 (4 is its "anchor"). */
START_TEST(version_7_keeps_readings_from_the_history)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    vem_rsd_reading_t past[2];
    s_valid_reading(&past[0], "r1", US(T0), 1700);
    s_valid_reading(&past[1], "r2", US(T0 + DAY), 1600);
    past[0].received_us = US(T0 + 60);
    past[1].received_us = US(T0 + DAY + 60);
    ck_assert_uint_eq(vem_rules_history(v, &cfg, past, 2, NULL, NULL), 0);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    vem_rules_vehicle_save(v, &buf, &len, &cap);
    vem_rules_vehicle_destroy(&v);
    char err[256];
    v = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    const vem_rules_chain_t *ch = v->rsd.chain[0];
    ck_assert_ptr_nonnull(ch);
    ck_assert_uint_eq(ch->n, 2);
    ck_assert(ch->links[0].over && ch->links[0].loaded && ch->links[1].over && ch->links[1].loaded);
    ck_assert_int_eq(ch->links[0].received_us, US(T0 + 60)); /* a stored reading's receipt */
    ck_assert_int_eq(ch->links[1].received_us, US(T0 + DAY + 60));
    s_resaves_as_current(v);
    s_log_t log = {0};
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &past[1], 5, s_collect, &log), 1);
    ck_assert_int_eq(log.v[0].rule, VEM_RULE_RSD_NO);
    ck_assert_int_eq(log.v[0].severity, VEM_SEVERITY_VIOLATION);
    char id[VEM_RULES_ID_LEN];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/r1", id);
    ck_assert_str_eq(log.v[0].id, id);
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &past[1], 6, s_collect, &log), 0);
    ck_assert(ch->links[0].loaded && !ch->links[1].loaded);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);

    /* every single-byte damage of it is refused with its reason, or loads to a state that
     * judges r2 and saves to a checkpoint that loads again (the receipt after a stored
     * reading's ids included) */
    uint8_t *bad = malloc(len);
    ck_assert_ptr_nonnull(bad);
    size_t refused = 0;
    for (size_t i = 0; i < len; i++) {
        const uint8_t ways[] = {(uint8_t)(buf[i] ^ 0x01), (uint8_t)(buf[i] ^ 0x80), 0xFF};
        for (int k = 0; k < 3; k++) {
            if (ways[k] == buf[i])
                continue;
            memcpy(bad, buf, len);
            bad[i] = ways[k];
            vem_rules_vehicle_t *d = vem_rules_vehicle_load(bad, len, err, sizeof err);
            if (!d) {
                ck_assert_msg(s_starts_with(err, "rules checkpoint: "), "'%s'", err);
                refused++;
                continue;
            }
            s_log_t dl = {0};
            vem_rules_on_reading(d, &cfg, &past[1], 5, s_collect, &dl);
            s_log_free(&dl);
            uint8_t *again = NULL;
            size_t alen = 0, acap = 0;
            vem_rules_vehicle_save(d, &again, &alen, &acap);
            vem_rules_vehicle_destroy(&d);
            d = vem_rules_vehicle_load(again, alen, err, sizeof err);
            ck_assert_msg(d != NULL, "byte %zu = %02x: the state it became does not load: %s", i,
                          ways[k], err);
            vem_rules_vehicle_destroy(&d);
            free(again);
        }
    }
    ck_assert_uint_gt(refused, 0);
    free(bad);

    /* r1's flags byte: just before its station and reading ids; versions 6 and 7 are version
     * 8 without the count of codes not judged, 8 is 9 with spans for the SCR windows, and 9 is
     * 10 without the "anchor" bit (none here: the history was judged silently), and 10 is 11
     * with the NOx window's ring of sums (none here) */
    static const uint8_t ids[] = {3, 'S', '0', '1', 2, 'r', '1'};
    for (uint8_t version = 6; version <= 11; version++) {
        static s_bytes_t old;
        if (version < 10) {
            s_older(buf, len, version, &old);
        } else if (version == 10) {
            s_v10_of(buf, len, true, &old);
        } else {
            memcpy(old.b, buf, len);
            old.n = len;
        }
        uint8_t *at = memmem(old.b, old.n, ids, sizeof ids);
        ck_assert_ptr_nonnull(at);
        ck_assert_uint_eq(at[-1], 3);
        v = vem_rules_vehicle_load(old.b, old.n, err, sizeof err);
        if (version == 6) {
            ck_assert_ptr_null(v);
            ck_assert_msg(strstr(err, "chain reading over is 3, not a boolean") != NULL, "%s", err);
        } else {
            ck_assert_msg(v != NULL, "version %u: %s", version, err);
            ck_assert(v->rsd.chain[0]->links[0].loaded);
            vem_rules_vehicle_destroy(&v);
        }
        if (version == 6)
            continue;
        at[-1] = version < 10 ? 4 : 8;
        ck_assert_ptr_null(vem_rules_vehicle_load(old.b, old.n, err, sizeof err));
        ck_assert_msg(strstr(err, version < 10 ? "chain reading flags 4 out of range"
                                               : "chain reading flags 8 out of range") != NULL,
                      "%s", err);
    }
    free(buf);
}
END_TEST

/* Versions 10 and 11 keep which readings a verdict was emitted under (the "anchor" bit). b (T0 + 1
 * d) and c (T0 + 3 d), 1700 and 1600 ppm, come first: b's notice, then the violation of b and c
 * under b's id; then a (T0), 1800 ppm: the run a, b, c, under a's id. Saved and loaded, the state
 * takes x (T0 + 2 d, 1200 ppm, compliant): the runs are a, b and c (rules.md: "consecutive means
 * no valid compliant reading in between"), so a's id holds the violation of a and b, c's id c's
 * notice, and b's id, which held the violation of b and c across x, holds b alone: a notice. A
 * version 9 file of the same state does not know b was an anchor: b's id is not emitted again. */
/* The readings of version_10_keeps_anchors (b, c, a, then x) in r; the state that took the first
 * three, saved (malloc'd). */
static uint8_t *s_b_c_then_a(const vem_rules_config_t *cfg, vem_rsd_reading_t r[4], size_t *len)
{
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_valid_reading(&r[0], "b", US(T0 + DAY), 1700);
    s_valid_reading(&r[1], "c", US(T0 + 3 * DAY), 1600);
    s_valid_reading(&r[2], "a", US(T0), 1800);
    s_valid_reading(&r[3], "x", US(T0 + 2 * DAY), 1200);
    s_log_t log = {0};
    for (int k = 0; k < 3; k++)
        vem_rules_on_reading(v, cfg, &r[k], (uint64_t)k + 1, s_collect, &log);
    s_log_free(&log);
    uint8_t *buf = NULL;
    size_t cap = 0;
    *len = 0;
    vem_rules_vehicle_save(v, &buf, len, &cap);
    vem_rules_vehicle_destroy(&v);
    return buf;
}

START_TEST(version_10_keeps_anchors)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rsd_reading_t r[4];
    size_t len;
    uint8_t *buf = s_b_c_then_a(&cfg, r, &len);
    vem_rules_vehicle_t *v;
    s_log_t log;
    char ida[VEM_RULES_ID_LEN], idb[VEM_RULES_ID_LEN], idc[VEM_RULES_ID_LEN], err[256];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/a", ida);
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/b", idb);
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/c", idc);
    for (int version = 11; version >= 9; version--) {
        static s_bytes_t older;
        const uint8_t *bytes = buf;
        size_t n_bytes = len;
        if (version == 10) {
            s_v10_of(buf, len, true, &older);
            bytes = older.b;
            n_bytes = older.n;
            ck_assert_uint_eq(n_bytes, len - 58); /* no NOx window, no version 12 or 13 part */
        }
        if (version == 9) {
            s_v9_of(buf, len, &older);
            bytes = older.b;
            n_bytes = older.n;
            ck_assert_uint_lt(n_bytes, len); /* a reach less */
        }
        v = vem_rules_vehicle_load(bytes, n_bytes, err, sizeof err);
        ck_assert_msg(v != NULL, "version %d: %s", version, err);
        memset(&log, 0, sizeof log);
        unsigned n = vem_rules_on_reading(v, &cfg, &r[3], 4, s_collect, &log);
        ck_assert_uint_eq(n, version >= 10 ? 3 : 2);
        ck_assert_str_eq(log.v[0].id, ida); /* the run below x, as it now stands */
        ck_assert_int_eq(log.v[0].severity, VEM_SEVERITY_VIOLATION);
        ck_assert_int_eq(log.v[0].last_us, US(T0 + DAY));
        if (version >= 10) {
            ck_assert_str_eq(log.v[1].id, idb); /* b up to x */
            ck_assert_int_eq(log.v[1].severity, VEM_SEVERITY_NOTICE);
            ck_assert_int_eq(log.v[1].last_us, US(T0 + DAY));
        }
        ck_assert_str_eq(log.v[n - 1].id, idc); /* the run above x */
        ck_assert_int_eq(log.v[n - 1].severity, VEM_SEVERITY_NOTICE);
        s_log_free(&log);
        vem_rules_vehicle_destroy(&v);
    }
    free(buf);
}
END_TEST

/* A chain reading's reach (the last reading and the count of the latest verdict under its id)
 * is checked on loading: b of version_10_keeps_anchors holds the violation of b and c, so its
 * reach is c's time (T0 + 3 d) and 2 readings. A count of 0 or above VEM_RULES_CHAIN_MAX, or a
 * reach before b's own time, is refused; the reach as saved loads. */
START_TEST(anchor_reach_checked)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rsd_reading_t r[4];
    size_t len;
    uint8_t *buf = s_b_c_then_a(&cfg, r, &len);
    vem_rules_vehicle_t *v;
    static const uint8_t ids[] = {3, 'S', '0', '1', 1, 'b'};
    uint8_t *at = memmem(buf, len, ids, sizeof ids);
    ck_assert_ptr_nonnull(at);
    ck_assert_uint_eq(at[-1], 1 | 4); /* over, anchor */
    uint8_t *reach = at + sizeof ids;
    int64_t reach_us, b_us = US(T0 + DAY);
    memcpy(&reach_us, reach, 8);
    ck_assert_int_eq(reach_us, US(T0 + 3 * DAY));
    ck_assert_uint_eq(reach[16], 2);
    char err[256];
    static const struct {
        uint8_t n;
        int64_t us;
        const char *why;
    } bad[] = {
        {0, US(T0 + 3 * DAY), "chain reading 1 reach count 0 outside 1..32"},
        {33, US(T0 + 3 * DAY), "chain reading 1 reach count 33 outside 1..32"},
        {2, US(T0 + DAY) - 1, "chain reading 1 reaches before itself"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        reach[16] = bad[i].n;
        memcpy(reach, &bad[i].us, 8);
        ck_assert_ptr_null(vem_rules_vehicle_load(buf, len, err, sizeof err));
        ck_assert_msg(strstr(err, bad[i].why) != NULL, "%s", err);
    }
    reach[16] = 1; /* b alone, reaching no further than itself: a state */
    memcpy(reach, &b_us, 8);
    v = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    vem_rules_vehicle_destroy(&v);
    free(buf);
}
END_TEST

/* The verdicts of two runs: the same but for measured values within relative tol. */
static void s_same_but_measured(const s_log_t *a, const s_log_t *b, double tol)
{
    ck_assert_uint_eq(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const s_got_t *x = &a->v[i], *y = &b->v[i];
        ck_assert_str_eq(x->id, y->id);
        ck_assert_int_eq(x->severity, y->severity);
        ck_assert_int_eq(x->first_us, y->first_us);
        ck_assert_int_eq(x->last_us, y->last_us);
        ck_assert_msg(fabs(x->measured - y->measured) <= tol * fabs(x->measured), "%.17g, %.17g",
                      x->measured, y->measured);
    }
}

/* Version 10's ring held the sums before each sample (doubles); version 11's holds the samples'
 * own values (floats) after the sums before the head. A version 10 file (s_v10_of) of a trip
 * with windows open, inside the windows that fail and two hours into a trip of full-size
 * windows, loads to the state it was made from (the same bytes saved, the same memory) and
 * judges the rest of the trip as that state does. A version 10 file written by the build before
 * this one holds sums whose differences are no float: each sum from the second on made larger
 * by 1e-9 of itself, the file loads, the trip's sums become what its values add up to (so it
 * saves to a file that loads), and the rest of the trip gives the same verdicts, their measured
 * values within 1e-6. A ring whose sums decrease is refused. */
START_TEST(version_10_window_ring_converts)
{
    vem_rules_config_t cfg = s_defaults();
    const s_scenario_t *scs[] = {s_scenario(s_sc_window), s_scenario(s_sc_truck)};
    static s_bytes_t ten;
    int converted = 0;
    for (size_t k = 0; k < sizeof scs / sizeof *scs; k++) {
        s_run_t z;
        s_run(scs[k], &cfg, &s_plain, &z);
        s_log_free(&z.log);
        for (int m = 0; m < z.nmarks; m++) {
            size_t len;
            uint8_t *buf = s_checkpoint_of(scs[k], &cfg, z.marks[m], &len);
            s_v10_of(buf, len, true, &ten);
            s_scr_parts_t sp;
            s_scr_parts(ten.b, ten.n, &sp);
            if (!sp.win[0] || s_r32(ten.b + sp.win[0] + 76) < 2) {
                free(buf);
                continue;
            }
            converted++;
            char err[256];
            vem_rules_vehicle_t *now = vem_rules_vehicle_load(buf, len, err, sizeof err);
            ck_assert_msg(now != NULL, "%s", err);
            vem_rules_vehicle_t *was = vem_rules_vehicle_load(ten.b, ten.n, err, sizeof err);
            ck_assert_msg(was != NULL, "%s", err);
            ck_assert_uint_eq(vem_rules_vehicle_bytes(was), vem_rules_vehicle_bytes(now));
            uint8_t *again = NULL;
            size_t len2 = 0, cap = 0;
            vem_rules_vehicle_save(was, &again, &len2, &cap);
            ck_assert_uint_eq(len2, len);
            s_whole_not_known(buf, len);
            ck_assert_mem_eq(again, buf, len);
            free(again);
            s_run_t a, b;
            s_run(scs[k], &cfg, &(s_opts_t){-1, -1, z.marks[m], now}, &a);
            s_run(scs[k], &cfg, &(s_opts_t){-1, -1, z.marks[m], was}, &b);
            for (size_t i = 0; i < a.log.n && i < b.log.n; i++)
                s_same_verdict(&a.log.v[i], &b.log.v[i], i, z.marks[m]);
            ck_assert_uint_eq(a.log.n, b.log.n);
            s_log_free(&b.log);

            /* sums of the build before: P_i (1 + 1e-9) from the second slot on */
            const uint8_t *w = ten.b + sp.win[0];
            uint32_t count = s_r32(w + 76);
            for (uint32_t i = 1; i < count; i++) {
                uint8_t *slot = ten.b + sp.win[0] + 112 + 20 * (size_t)i;
                double sum;
                memcpy(&sum, slot, 8);
                sum *= 1 + 1e-9;
                memcpy(slot, &sum, 8);
            }
            was = vem_rules_vehicle_load(ten.b, ten.n, err, sizeof err);
            ck_assert_msg(was != NULL, "%s", err);
            again = NULL;
            len2 = cap = 0;
            vem_rules_vehicle_save(was, &again, &len2, &cap);
            vem_rules_vehicle_t *back = vem_rules_vehicle_load(again, len2, err, sizeof err);
            ck_assert_msg(back != NULL, "%s", err);
            vem_rules_vehicle_destroy(&back);
            free(again);
            s_run(scs[k], &cfg, &(s_opts_t){-1, -1, z.marks[m], was}, &b);
            s_same_but_measured(&a.log, &b.log, 1e-6);
            s_log_free(&a.log);
            s_log_free(&b.log);

            /* the third sum below the second */
            double second;
            memcpy(&second, ten.b + sp.win[0] + 112 + 20, 8);
            second = second * 2 + 1;
            memcpy(ten.b + sp.win[0] + 112 + 20, &second, 8);
            ck_assert_ptr_null(vem_rules_vehicle_load(ten.b, ten.n, err, sizeof err));
            ck_assert_msg(strstr(err, "live track: window ring slot 1 holds -") != NULL, "%s", err);
            free(buf);
        }
    }
    ck_assert_int_ge(converted, 2);
}
END_TEST

/* Checkpoints that builds before wrote (the scenario's checkpoint before event at,
 * tests/data/rules_ckpt/vN_NAME_K_AT.bin; x86-64): version 10 by commit d649621, version 11 by
 * commit 5c3fecd; mid-trip in the windows that fail, with a back-fill trip beside the live one,
 * and two hours into a truck's trip (a ring of full size). Each loads, holds the memory this
 * build's checkpoint at the same event holds, saves to a file as long that loads, and the rest
 * of its scenario gives this build's verdicts, their measured values within 1e-6 (the build of
 * version 10 summed unrounded values). */
START_TEST(older_files_of_the_builds_before)
{
    static const struct {
        const char *file;
        void (*fn)(s_run_t *r);
        long at;
    } files[] = {
        {"v10_window_0_111.bin", s_sc_window, 111},
        {"v10_backfill_9_256.bin", s_sc_backfill, 256},
        {"v10_truck_11_545.bin", s_sc_truck, 545},
        {"v11_window_0_111.bin", s_sc_window, 111},
        {"v11_backfill_9_256.bin", s_sc_backfill, 256},
        {"v11_truck_11_545.bin", s_sc_truck, 545},
    };
    vem_rules_config_t cfg = s_defaults();
    const char *dir = getenv("VEM_TEST_DATA") ? getenv("VEM_TEST_DATA") : "tests/data";
    static s_bytes_t old;
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/rules_ckpt/%s", dir, files[k].file);
        FILE *f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "%s", path);
        old.n = fread(old.b, 1, sizeof old.b, f);
        ck_assert(feof(f));
        fclose(f);
        ck_assert_uint_eq(old.b[4], files[k].file[1] == '1' && files[k].file[2] == '0' ? 10 : 11);
        s_scr_parts_t sp;
        s_scr_parts(old.b, old.n, &sp);
        ck_assert_uint_ne(sp.win[0], 0);
        ck_assert_uint_gt(s_r32(old.b + sp.win[0] + 76), 0); /* samples in the ring */
        const s_scenario_t *sc = s_scenario(files[k].fn);
        char err[256];
        vem_rules_vehicle_t *was = vem_rules_vehicle_load(old.b, old.n, err, sizeof err);
        ck_assert_msg(was != NULL, "%s: %s", path, err);
        size_t len;
        uint8_t *buf = s_checkpoint_of(sc, &cfg, files[k].at, &len);
        vem_rules_vehicle_t *now = vem_rules_vehicle_load(buf, len, err, sizeof err);
        ck_assert_msg(now != NULL, "%s", err);
        ck_assert_uint_eq(vem_rules_vehicle_bytes(was), vem_rules_vehicle_bytes(now));
        uint8_t *again = NULL;
        size_t len2 = 0, cap = 0;
        vem_rules_vehicle_save(was, &again, &len2, &cap);
        ck_assert_uint_eq(len2, len);
        vem_rules_vehicle_t *back = vem_rules_vehicle_load(again, len2, err, sizeof err);
        ck_assert_msg(back != NULL, "%s saved again: %s", path, err);
        vem_rules_vehicle_destroy(&back);
        free(again);
        s_run_t a, b;
        s_run(sc, &cfg, &(s_opts_t){-1, -1, files[k].at, now}, &a);
        s_run(sc, &cfg, &(s_opts_t){-1, -1, files[k].at, was}, &b);
        ck_assert_uint_gt(a.log.n, 0);
        s_same_but_measured(&a.log, &b.log, 1e-6);
        s_log_free(&a.log);
        s_log_free(&b.log);
        free(buf);
    }
}
END_TEST

/* A version 8 file of a truck 1000 qualifying samples into a trip at conversion
 * 1 - 480 / 800 = 0.40 (no engine figures, so no NOx window; 1000 < 30 x 60: no verdict yet):
 * version 8 held the SCR block's sums, which cannot become the minutes of the window, so the
 * load starts the window afresh (nothing held, no ring, and the memory of the ring, 30 minutes
 * of 24 bytes, not held) and says so by judging on: the same samples again from T0 + 1000 make
 * the violation when 1800 qualifying samples after the load are held, at T0 + 2799, from
 * T0 + 1000, conversion 0.40. The version 9 file of the same state judges the window it holds:
 * at T0 + 1799, from T0. A version 8 file saves again as version 9. */
START_TEST(version_8_starts_the_scr_window_afresh)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, NULL);
    s_phys_t bad = s_cruise;
    bad.nox_down = 480; /* below nox_ppm_max (500): no obd.nox_high notice */
    vem_hj1239_frame_t *f = calloc(1, sizeof *f);
    ck_assert_ptr_nonnull(f);
    s_log_t log = {0};
    for (int64_t t = T0; t < T0 + 1000; t += 10) {
        s_envelope(f, VEM_HJ1239_CMD_REALTIME, t + 9);
        for (int j = 0; j < 10; j++)
            vem_test_stream_block(&f->blocks[f->nblocks++], t + j, &bad);
        vem_rules_on_frame(v, &cfg, f, US(t + 10), 0, 1, s_collect, &log);
    }
    ck_assert_uint_eq(log.n, 0);
    ck_assert_uint_eq(v->live.scr_held, 16); /* 1000 = 16 x 60 + 40 */
    ck_assert_uint_eq(v->live.scr_n, 40);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    vem_rules_vehicle_save(v, &buf, &len, &cap);
    size_t held = vem_rules_vehicle_bytes(v);
    vem_rules_vehicle_destroy(&v);
    static s_bytes_t old;
    s_v8_of(buf, len, &old);
    char err[256];
    vem_rules_vehicle_t *from[2];
    from[0] = vem_rules_vehicle_load(old.b, old.n, err, sizeof err);
    ck_assert_msg(from[0] != NULL, "version 8: %s", err);
    from[1] = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(from[1] != NULL, "version 9: %s", err);
    ck_assert_uint_eq(from[0]->live.scr_n, 0);
    ck_assert_uint_eq(from[0]->live.scr_held, 0);
    ck_assert_ptr_null(from[0]->live.scr_ring);
    ck_assert_uint_eq(vem_rules_vehicle_bytes(from[0]), held - 30 * 24);
    ck_assert_uint_eq(vem_rules_vehicle_bytes(from[1]), held);
    s_resaves_as_current(from[0]);
    const int64_t last[2] = {T0 + 2799, T0 + 1799}, first[2] = {T0 + 1000, T0};
    for (int k = 0; k < 2; k++) {
        s_log_t got = {0};
        for (int64_t t = T0 + 1000; t < T0 + 2800; t += 10) {
            s_envelope(f, VEM_HJ1239_CMD_REALTIME, t + 9);
            for (int j = 0; j < 10; j++)
                vem_test_stream_block(&f->blocks[f->nblocks++], t + j, &bad);
            vem_rules_on_frame(from[k], &cfg, f, US(t + 10), 0, 2, s_collect, &got);
        }
        ck_assert_uint_eq(got.n, 1);
        ck_assert_int_eq(got.v[0].rule, VEM_RULE_OBD_SCR_INEFFECTIVE);
        ck_assert_int_eq(got.v[0].first_us, US(first[k]));
        ck_assert_int_eq(got.v[0].last_us, US(last[k]));
        ck_assert_double_eq_tol(got.v[0].measured, 0.40, 1e-9);
        s_log_free(&got);
        vem_rules_vehicle_destroy(&from[k]);
    }
    s_log_free(&log);
    free(buf);
    free(f);
}
END_TEST

/* A version 2 checkpoint (version 1: without the colour) from the format of the previous build
 * (rules_ckpt.c's header, and its git history): a vehicle with VIN and plate whose MIL has been
 * on since T0 (snapshot block 5), newest snapshot T0 + 3 d, not escalated; counts 1 .. 7; and a
 * NO chain of r1 (T0, 1600 ppm) and r2 (T0 + 1 d, 1700 ppm) after a compliant reading at
 * T0 - 1 d. The parts version 3 did not change (facts to receipt times, the two tracks) are
 * copied from a save of a fresh vehicle (version 9 as version 8, which has the same bytes as
 * version 3 without fusion history, save the last receipt on the intake clock). */
static void s_v2_checkpoint_of(s_bytes_t *o, uint32_t version, bool tie);

static void s_v2_checkpoint(s_bytes_t *o, uint32_t version)
{
    s_v2_checkpoint_of(o, version, false);
}

/* The same, or with tie: r2 from station S00 at r1's time, held after r1 (version 2 kept
 * readings of one time in the order they came, station ids aside). */
static void s_v2_checkpoint_of(s_bytes_t *o, uint32_t version, bool tie)
{
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, NULL);
    vem_rules_vehicle_set_ids(v, NULL, NULL, "yellow");
    uint8_t *buf9 = NULL;
    size_t len9 = 0, cap = 0;
    vem_rules_vehicle_save(v, &buf9, &len9, &cap);
    vem_rules_vehicle_destroy(&v);
    static s_bytes_t v8;
    s_v8_of(buf9, len9, &v8);
    free(buf9);
    const uint8_t *buf = v8.b;
    size_t len = v8.n;
    /* version 8 of a fresh vehicle: header, ids, 43 bytes of facts to receipt times, the last
     * receipt on the intake clock (8), 9 counts, newest snapshot, VIN mismatch, MIL runs
     * (capacity 0, truncated, count 0), DTCs (0, 0), the tracks, then 26 bytes of empty roadside
     * state and the memory held */
    size_t facts = 12 + 1 + 17 + 1 + strlen(PLATE) + 1 + strlen("yellow");
    size_t tracks = facts + 43 + 8 + 9 * 8 + 8 + 1 + 4 + 1 + 4 + 4 + 4;
    size_t tracks_end = len - 8 - 26;
    ck_assert_uint_eq(buf[4], 8);
    ck_assert_uint_eq(s_open_receipt_at(buf), facts + 43);
    ck_assert_uint_lt(tracks, tracks_end);
    o->n = 0;
    s_w(o, "VRCK", 4);
    s_w32(o, version);
    s_w32(o, 0x01020304);
    s_wstr(o, VIN);
    s_wstr(o, PLATE);
    if (version >= 2)
        s_wstr(o, "yellow");
    s_w(o, buf + facts, 43);
    for (int i = 1; i <= 7; i++)
        s_w64(o, i);
    s_w64(o, T0 + 3 * DAY); /* newest snapshot */
    s_w8(o, 1);             /* MIL on */
    s_w8(o, 0);             /* escalated */
    s_w8(o, 0);             /* VIN mismatch */
    s_w64(o, T0);           /* on since: sec, key offset, block */
    s_w32(o, 0);
    s_w16(o, 5);
    s_w32(o, 0); /* DTC capacity, count */
    s_w32(o, 0);
    s_w(o, buf + tracks, tracks_end - tracks);
    s_w8(o, 1); /* NO chain: compliant time, capacity, count, links */
    s_w64(o, US(T0 - DAY));
    s_w32(o, 2);
    s_w32(o, 2);
    s_w64(o, US(T0));
    s_wf64(o, 1600);
    s_wstr(o, "S01");
    s_wstr(o, "r1");
    s_w64(o, tie ? US(T0) : US(T0 + DAY));
    s_wf64(o, 1700);
    s_wstr(o, tie ? "S00" : "S01");
    s_wstr(o, "r2");
    for (int p = 1; p < 5; p++)
        s_w8(o, 0);
    s_w32(o, 0); /* fusion history: slots, head, newest */
    s_w32(o, 0);
    s_w64(o, INT64_MIN);
    s_w8(o, 0); /* pending: allocated, count */
    s_w32(o, 0);
    s_w64(o, 12345); /* the memory the old form held: not the new form's */
}

/* Versions 1 and 2 load, converted: the MIL episode becomes one run from its start to the
 * newest snapshot with its notice emitted, the chain a compliant reading (no ids) and the two
 * exceedances; saved again it is version 6 and loads to the same bytes. Judged on, it is what
 * it was: the next NO exceedance completes a violation on r1, r2 and it, under r1's id, with
 * the compliant reading before them. */
START_TEST(versions_1_and_2_load_converted)
{
    for (uint32_t version = 1; version <= 2; version++) {
        s_bytes_t old;
        s_v2_checkpoint(&old, version);
        char err[256];
        vem_rules_vehicle_t *v = vem_rules_vehicle_load(old.b, old.n, err, sizeof err);
        ck_assert_msg(v != NULL, "version %u: %s", version, err);
        ck_assert_str_eq(v->plate_color, version >= 2 ? "yellow" : "");
        const vem_rules_counts_t *c = vem_rules_vehicle_counts(v);
        ck_assert_uint_eq(c->samples, 1);
        ck_assert_uint_eq(c->fusion_unmatched, 7);
        ck_assert_uint_eq(c->late_mil, 0);
        ck_assert_uint_eq(v->nmil, 1);
        const vem_rules_mil_run_t *m = &v->mil[0];
        ck_assert(m->on && m->announced && !m->escalated);
        ck_assert_int_eq(m->first.sec, T0);
        ck_assert_uint_eq(m->first.key_idx, 5);
        ck_assert_int_eq(m->last.sec, T0 + 3 * DAY);
        const vem_rules_chain_t *ch = v->rsd.chain[0];
        ck_assert_ptr_nonnull(ch);
        ck_assert_uint_eq(ch->n, 3);
        ck_assert_uint_eq(ch->cap, 4);
        ck_assert(!ch->truncated);
        ck_assert_int_eq(ch->links[0].time_us, US(T0 - DAY));
        ck_assert(!ch->links[0].over);
        ck_assert_str_eq(ch->links[1].reading_id, "r1");
        ck_assert(ch->links[1].over && ch->links[2].over);
        ck_assert_uint_eq(vem_rules_vehicle_rsd_links(v), 2);
        /* saved again: version 8, which loads to the same bytes */
        s_resaves_as_current(v);
        /* judged on */
        vem_rules_config_t cfg = s_defaults();
        s_log_t log = {0};
        vem_rsd_reading_t rd;
        s_valid_reading(&rd, "r3", US(T0 + 2 * DAY), 1650);
        ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &rd, 1, s_collect, &log), 1);
        ck_assert_int_eq(log.v[0].severity, VEM_SEVERITY_VIOLATION);
        ck_assert_uint_eq(json_array_size(json_object_get(log.v[0].ev, "readings")), 3);
        char id[VEM_RULES_ID_LEN];
        vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/r1", id);
        ck_assert_str_eq(log.v[0].id, id);
        char iso[VEM_RULES_ISO_LEN];
        vem_rules_iso(US(T0 - DAY), iso);
        ck_assert_str_eq(json_string_value(json_object_get(log.v[0].ev, "compliant_before")), iso);
        s_log_free(&log);
        vem_rules_vehicle_destroy(&v);
        /* a version 2 body under version 1 (or the reverse) is refused, not misread */
        old.b[4] = (uint8_t)(3 - version);
        ck_assert_ptr_null(vem_rules_vehicle_load(old.b, old.n, err, sizeof err));
    }
}
END_TEST

/* Version 3 kept a second of fusion history as its raw NOx (a u16) without the key of its
 * sample. A vehicle with ten seconds of it (T0 + 1 .. T0 + 10, 100 ppm: raw (100 + 200) / 0.05
 * = 6000, none at T0 + 4) loads with the keys unknown and the memory of the new form (4 bytes a
 * second); saved again it is version 6 and loads to the same bytes. A reading at T0 + 5.25 of
 * 1800 ppm NO is matched at T0 + 5: the notice names the sample by its time alone. A slot that
 * is no NOx value (0xFB00, above 0xFAFF) is refused, as is a memory held one byte off. */
START_TEST(version_3_fusion_history_loads_without_keys)
{
    vem_rules_vehicle_t *fresh = vem_rules_vehicle_new(VIN, PLATE, NULL);
    size_t empty = vem_rules_vehicle_bytes(fresh);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    vem_rules_vehicle_save(fresh, &buf, &len, &cap);
    vem_rules_vehicle_destroy(&fresh);
    for (int damaged = 0; damaged < 3; damaged++) {
        /* everything up to the empty roadside state (26 bytes), version 13's part (58) and the
         * memory held (8), without
         * version 6's last receipt on the intake clock */
        s_bytes_t old;
        s_older(buf, len - 26 - 58 - 8, 3, &old);
        for (int p = 0; p < 5; p++)
            s_w8(&old, 0); /* no chains */
        s_w32(&old, 10);   /* fusion history: slots, head, newest, the slots oldest first */
        s_w32(&old, 9);
        s_w64(&old, T0 + 10);
        for (int k = 1; k <= 10; k++)
            s_w16(&old, k == 4 ? 0xFFFF : damaged == 1 && k == 3 ? 0xFB00 : 6000);
        s_w8(&old, 0); /* pending: allocated, count */
        s_w32(&old, 0);
        s_w64(&old, (int64_t)(empty + 10 * 2 + (damaged == 2)));
        char err[256];
        vem_rules_vehicle_t *v = vem_rules_vehicle_load(old.b, old.n, err, sizeof err);
        if (damaged) {
            ck_assert_ptr_null(v);
            ck_assert_msg(strstr(err, damaged == 1 ? "fusion history slot 2: "
                                                   : "(and the fusion history's keys)") != NULL,
                          "%s", err);
            continue;
        }
        ck_assert_msg(v != NULL, "%s", err);
        ck_assert_uint_eq(vem_rules_vehicle_bytes(v), empty + 10 * 4);
        s_resaves_as_current(v);
        vem_rules_config_t cfg = s_defaults();
        s_log_t log = {0};
        vem_rsd_reading_t rd;
        s_valid_reading(&rd, "m1", US(T0 + 5) + 250000, 1800);
        vem_rules_on_reading(v, &cfg, &rd, 1, s_collect, &log);
        const s_got_t *g = NULL;
        for (size_t i = 0; i < log.n; i++)
            if (log.v[i].rule == VEM_RULE_FUSION_OBD_MISMATCH)
                g = &log.v[i];
        ck_assert_ptr_nonnull(g);
        json_t *obd = json_object_get(g->ev, "obd");
        char iso[VEM_RULES_ISO_LEN];
        vem_rules_iso(US(T0 + 5), iso);
        ck_assert_str_eq(json_string_value(json_object_get(obd, "time")), iso);
        ck_assert_ptr_null(json_object_get(obd, "sample_time"));
        ck_assert_ptr_null(json_object_get(obd, "block_idx"));
        ck_assert_double_eq_tol(json_real_value(json_object_get(obd, "nox_down_ppm")), 100, 1e-9);
        s_log_free(&log);
        vem_rules_vehicle_destroy(&v);
    }
    free(buf);
}
END_TEST

/* Version 2 held two exceedances of one time in the order they came; version 3 orders them
 * by station and reading id too. Such a chain loads (the vehicle's state is not lost at the
 * upgrade), in version 3's order, and a save of it loads again. */
START_TEST(version_2_chain_with_readings_of_one_time)
{
    s_bytes_t old;
    s_v2_checkpoint_of(&old, 2, true);
    char err[256];
    vem_rules_vehicle_t *v = vem_rules_vehicle_load(old.b, old.n, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    const vem_rules_chain_t *ch = v->rsd.chain[0];
    ck_assert_uint_eq(ch->n, 3);
    ck_assert_str_eq(ch->links[1].station_id, "S00");
    ck_assert_str_eq(ch->links[1].reading_id, "r2");
    ck_assert_str_eq(ch->links[2].station_id, "S01");
    ck_assert_str_eq(ch->links[2].reading_id, "r1");
    ck_assert(ch->links[1].over && ch->links[2].over);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    vem_rules_vehicle_save(v, &buf, &len, &cap);
    vem_rules_vehicle_t *again = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(again != NULL, "%s", err);
    vem_rules_vehicle_destroy(&again);
    vem_rules_vehicle_destroy(&v);
    free(buf);
}
END_TEST

/* A colour none of FIELDS.md's is damage: the sinks would store it. */
START_TEST(unknown_colour_refused)
{
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    vem_rules_vehicle_set_ids(v, NULL, NULL, "purple");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    vem_rules_vehicle_save(v, &buf, &len, &cap);
    vem_rules_vehicle_destroy(&v);
    char err[256];
    ck_assert_ptr_null(vem_rules_vehicle_load(buf, len, err, sizeof err));
    ck_assert_str_eq(err, "rules checkpoint: vehicle: plate colour \"purple\" is none of "
                          "FIELDS.md's");
    free(buf);
}
END_TEST

/* Two vehicles saved one after the other into one buffer load from their own bytes. */
START_TEST(save_appends)
{
    vem_rules_config_t cfg = s_defaults();
    size_t one_len, two_len;
    uint8_t *one = s_checkpoint_of(s_scenario(s_sc_fusion), &cfg, 4, &one_len);
    uint8_t *two = s_checkpoint_of(s_scenario(s_sc_roadside), &cfg, 3, &two_len);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (int k = 0; k < 2; k++) {
        const uint8_t *p = k ? two : one;
        size_t n = k ? two_len : one_len;
        vem_rules_vehicle_t *v = vem_rules_vehicle_load(p, n, NULL, 0);
        ck_assert_ptr_nonnull(v);
        vem_rules_vehicle_save(v, &buf, &len, &cap);
        vem_rules_vehicle_destroy(&v);
    }
    ck_assert_uint_eq(len, one_len + two_len);
    ck_assert_uint_ge(cap, len);
    ck_assert_mem_eq(buf, one, one_len);
    ck_assert_mem_eq(buf + one_len, two, two_len);
    char err[256];
    ck_assert_ptr_null(vem_rules_vehicle_load(buf, len, err, sizeof err)); /* not one state */
    vem_rules_vehicle_t *v = vem_rules_vehicle_load(buf + one_len, two_len, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert_str_eq(v->plate, PLATE);
    vem_rules_vehicle_destroy(&v);
    free(buf);
    free(one);
    free(two);
}
END_TEST

/* Finds the n bytes at p in buf (the first time), failing when they are not there. */
static size_t s_find(const uint8_t *buf, size_t len, const void *p, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(buf + i, p, n) == 0)
            return i;
    ck_abort_msg("pattern not in the checkpoint");
    return 0;
}

/* The live track's trip in a saved state, found by its open flag (1) followed by its newest
 * sample and its start (8 each): the offset of the flag. */
static size_t s_live_trip(const uint8_t *buf, size_t len, int64_t newest, int64_t start)
{
    uint8_t live[17] = {1};
    memcpy(live + 1, &newest, 8);
    memcpy(live + 9, &start, 8);
    return s_find(buf, len, live, sizeof live);
}

/* The offset of the live trip's sample count: after its open flag, newest sample, start and
 * last sample (8 + 4 + 2 each) and last receipt (8). */
static size_t s_live_trip_samples(const uint8_t *buf, size_t len, int64_t newest, int64_t start)
{
    return s_live_trip(buf, len, newest, start) + 1 + 8 + 14 + 14 + 8;
}

/* Fields set out of bounds give a reason that names them. */
START_TEST(precise_reasons)
{
    vem_rules_config_t cfg = s_defaults();
    const s_scenario_t *sc = s_scenario(s_sc_truck);
    long at = s_mark_of(sc, &cfg, 0);
    size_t len;
    uint8_t *buf = s_checkpoint_of(sc, &cfg, at, &len);
    char err[256];
    vem_rules_vehicle_t *v = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_ptr_nonnull(v);
    const vem_rules_window_t *w = &v->live.win;
    ck_assert(w->active);
    uint32_t ring[3] = {w->cap, w->cap_max, w->count};
    size_t off = s_find(buf, len, ring, sizeof ring);
    uint32_t bad = 5000;
    memcpy(buf + off + 8, &bad, 4);
    ck_assert_ptr_null(vem_rules_vehicle_load(buf, len, err, sizeof err));
    ck_assert_str_eq(err, "rules checkpoint: live track: window ring count 5000 above 4096");
    memcpy(buf + off + 8, &ring[2], 4);
    bad = ring[1] + 1;
    memcpy(buf + off, &bad, 4);
    ck_assert_ptr_null(vem_rules_vehicle_load(buf, len, err, sizeof err));
    char want[200];
    snprintf(want, sizeof want, "rules checkpoint: live track: window ring capacity %u above %u",
             bad, ring[1]);
    ck_assert_str_eq(err, want);
    memcpy(buf + off, &ring[0], 4);
    uint32_t kept[2] = {w->kept_cap, w->nkept};
    size_t koff = s_find(buf + off, len - off, kept, sizeof kept) + off;
    bad = w->kept_cap + 1;
    memcpy(buf + koff + 4, &bad, 4);
    ck_assert_ptr_null(vem_rules_vehicle_load(buf, len, err, sizeof err));
    snprintf(want, sizeof want, "rules checkpoint: live track: kept window count %u above %u", bad,
             w->kept_cap);
    ck_assert_str_eq(err, want);
    memcpy(buf + koff + 4, &kept[1], 4);
    /* the plate: a length beyond its field */
    size_t poff = 12 + 1 + 17;
    ck_assert_uint_eq(buf[poff], 0);
    buf[poff] = 40;
    ck_assert_ptr_null(vem_rules_vehicle_load(buf, len, err, sizeof err));
    ck_assert_str_eq(err, "rules checkpoint: vehicle: plate of 40 bytes, at most 15");
    buf[poff] = 0;
    vem_rules_vehicle_t *again = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(again != NULL, "%s", err);
    vem_rules_vehicle_destroy(&again);
    vem_rules_vehicle_destroy(&v);
    free(buf);
}
END_TEST

/* buf with size bytes of val at `at` (little-endian host) does not load, for the reason why. */
static void s_refused_with(const uint8_t *buf, size_t len, size_t at, const void *val, size_t size,
                           const char *why)
{
    static s_bytes_t d;
    char err[256];
    d.n = 0;
    s_w(&d, buf, len);
    memcpy(d.b + at, val, size);
    ck_assert_msg(vem_rules_vehicle_load(d.b, d.n, err, sizeof err) == NULL, "%s: loaded", why);
    ck_assert_msg(strstr(err, why) != NULL, "%s: %s", why, err);
}

/* buf with the room (u32) at `at` raised from `was` to `now` items of `size` bytes, and the
 * memory held (its last 8 bytes) by as much: loads. */
static vem_rules_vehicle_t *s_with_room(const uint8_t *buf, size_t len, size_t at, uint32_t was,
                                        uint32_t now, size_t size)
{
    static s_bytes_t room;
    char err[256];
    room.n = 0;
    s_w(&room, buf, len);
    memcpy(room.b + at, &now, 4);
    int64_t mem;
    memcpy(&mem, room.b + len - 8, 8);
    mem += ((int64_t)now - (int64_t)was) * (int64_t)size;
    memcpy(room.b + len - 8, &mem, 8);
    vem_rules_vehicle_t *v = vem_rules_vehicle_load(room.b, room.n, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    return v;
}

/* The held samples of a checkpoint (s_sc_hole at its first mark: 60 held, the live track's
 * newest T0 + 899, its trip from T0) are what s_hold relies on, or the load is refused: each
 * newer than the live track's next second and than the one before it, its key within a
 * frame's 64 blocks, of a sample block type, no more than the room saved, the room no more than
 * the longest wait holds, and none without samples; the live track's whole range within its
 * trip. Version 13's part is the last 58 + 36 x held bytes before the memory held (whole
 * ranges with no gaps, counts, room, count, from the start and end); a held sample is its time (8),
 * key (4 + 2), type (1) and ten raw values (2 each). */
START_TEST(held_samples_checked)
{
    vem_rules_config_t cfg = s_defaults();
    const s_scenario_t *sc = s_scenario(s_sc_hole);
    size_t len;
    uint8_t *buf = s_checkpoint_of(sc, &cfg, s_mark_of(sc, &cfg, 0), &len);
    char err[256];
    vem_rules_vehicle_t *v = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert_uint_eq(v->nheld, 60);
    ck_assert_int_eq(v->live.newest, T0 + 899);
    ck_assert_int_eq(v->held[v->held_off].sec, T0 + 1800);
    vem_rules_vehicle_destroy(&v);
    size_t part = len - 8 - 58 - 36 * 60, held = part + 58;
    ck_assert_uint_eq(s_r32(buf + part + 48), 64); /* room */
    ck_assert_uint_eq(s_r32(buf + part + 52), 60);
    static const struct {
        size_t at, size; /* from the first held sample */
        int64_t val;
        const char *why;
    } bad[] = {
        {0, 8, T0 + 900, "held sample 0 at "},        /* the live track's next second */
        {0, 8, T0 + 899, "held sample 0 at "},        /* its newest */
        {36, 8, T0 + 1800, "held sample 1 at "},      /* the one before it's time */
        {8, 4, 64, "held sample 0 of key 64/"},       /* beyond a frame's blocks */
        {8, 4, -1, "held sample 0 of key -1/"},       /* before its frame's time */
        {12, 2, 64, "held sample 0 of key 0/64"},     /* no block of a frame */
        {14, 1, 0x01, "held sample 0 of block type"}, /* an OBD block */
        {14, 1, 0x80, "held sample 0 of block type"}, /* a platform type */
        {-58, 8, T0 - 1, "live whole range"},         /* before the trip's start */
        {-58, 8, T0 + 901, "live whole range"},
        {-1, 1, 2, "held from the end is 2"},
        {-2, 1, 2, "held from the start is 2"},
        {15, 1, 2, "held sample hole is 2"}, /* after its last's next */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        s_refused_with(buf, len, held + bad[i].at, &bad[i].val, bad[i].size, bad[i].why);
    /* room of any size that holds them loads (the memory held says it too) */
    v = s_with_room(buf, len, part + 48, 64, 100, sizeof(vem_rules_held_t));
    ck_assert_uint_eq(v->held_cap, 100);
    vem_rules_vehicle_destroy(&v);
    /* more held than the room saved, room beyond the most held, room with nothing held */
    static s_bytes_t d;
    uint32_t counts[][2] = {{64, 65}, {30 * 60 + 2, 60}, {64, 0}};
    const char *why[] = {"held samples", "held capacity", "none held"};
    for (size_t i = 0; i < 3; i++) {
        d.n = 0;
        s_w(&d, buf, len);
        memcpy(d.b + part + 48, counts[i], 8);
        ck_assert_ptr_null(vem_rules_vehicle_load(d.b, d.n, err, sizeof err));
        ck_assert_msg(strstr(err, why[i]) != NULL, "%s", err);
    }
    /* "from the end" with nothing held (it is cleared when what is held is judged) */
    const uint8_t none_from_end[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    s_refused_with(buf, len, part + 48, none_from_end, sizeof none_from_end,
                   "held from the start or end with nothing held");
    const uint8_t both[2] = {1, 1};
    s_refused_with(buf, len, part + 56, both, sizeof both, "held from the start and from the end");
    free(buf);
}
END_TEST

/* The gaps of a checkpoint (s_sc_skips: at its first mark 20 skips, T0 + 29, 59, .. 599, after
 * live data from T0) are what s_copy relies on, or the load is refused: room 0 or a power of two
 * up to 512 holding them, none without room, each after the whole range's start and after the
 * gap before it with a second taken between, of at least a second, and before the last second.
 * Then: a copy of a second before the skips is one, a skipped second is not; the state of the
 * build before (version 12, the whole range from the second after the newest gap, s_v12_of)
 * loads without gaps. A gap is its offset from the trip's start and its length (u32 each). */
START_TEST(gaps_checked)
{
    vem_rules_config_t cfg = s_defaults();
    const s_scenario_t *sc = s_scenario(s_sc_skips);
    size_t len;
    uint8_t *buf = s_checkpoint_of(sc, &cfg, s_mark_of(sc, &cfg, 0), &len);
    char err[256];
    vem_rules_vehicle_t *v = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert_uint_eq(v->live.ngaps, 20);
    ck_assert_uint_eq(v->live.gaps_cap, 32);
    ck_assert_int_eq(v->live.whole_from, T0);
    ck_assert_int_eq(v->live.start.sec, T0);
    ck_assert_int_eq(v->live.last.sec, T0 + 20 * 30 + 28);
    size_t part = len - 8 - s_v13_part(v);
    vem_rules_vehicle_destroy(&v);
    int64_t from;
    memcpy(&from, buf + part, 8);
    ck_assert_int_eq(from, T0);
    ck_assert_uint_eq(s_r32(buf + part + 8), 32);
    ck_assert_uint_eq(s_r32(buf + part + 12), 20);
    for (uint32_t i = 0; i < 20; i++) {
        ck_assert_uint_eq(s_r32(buf + part + 16 + 8 * i), 30 * i + 29);
        ck_assert_uint_eq(s_r32(buf + part + 20 + 8 * i), 1);
    }
    static const struct {
        size_t at; /* from the live whole range */
        uint32_t val;
        const char *why;
    } bad[] = {
        {8, 24, "gap room 24 is not 0 or a power of two"},
        {8, 1024, "gap room 1024 is not 0 or a power of two"},
        {12, 33, "gaps 33 above 32"},
        {12, 0, "room for 32 gaps and none"},
        {16, 0, "gap 0 of 1 s"},                  /* at the whole range's start */
        {20, 0, "gap 0 of 0 s"},                  /* empty */
        {24, 29, "gap 1 of 1 s"},                 /* where the one before it is */
        {24, 30, "gap 1 of 1 s"},                 /* right after it: no second taken between */
        {16 + 8 * 19 + 4, 30, "gap 19 of 30 s"},  /* to the last second */
        {16 + 8 * 19, 20 * 30 + 28, "gap 19 of"}, /* at the last second */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        s_refused_with(buf, len, part + bad[i].at, &bad[i].val, 4, bad[i].why);
    /* room of any size that holds them loads (the memory held says it too) */
    v = s_with_room(buf, len, part + 8, 32, 64, sizeof(vem_rules_gap_t));
    ck_assert_uint_eq(v->live.gaps_cap, 64);
    /* seconds re-sent: T0 + 28 .. 31 hold the skip T0 + 29 */
    s_log_t log = {0};
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    s_envelope(f, VEM_HJ1239_CMD_RESEND, T0 + 31);
    for (int64_t t = T0 + 28; t <= T0 + 31; t++) {
        s_phys_t p;
        s_trouble((long)(t - T0), &p, NULL);
        vem_test_stream_block(&f->blocks[f->nblocks++], t, &p);
    }
    const vem_rules_counts_t *c = vem_rules_vehicle_counts(v);
    uint64_t copies = c->copy_samples, late = c->late_samples;
    vem_rules_on_frame(v, &cfg, f, US(T0 + 700), 0, 1, s_collect, &log);
    ck_assert_uint_eq(c->copy_samples - copies, 3);
    ck_assert_uint_eq(c->late_samples - late, 1);
    vem_rules_vehicle_destroy(&v);
    s_log_free(&log);
    /* version 12: no gaps, the whole range from T0 + 600 */
    static s_bytes_t twelve;
    s_v12_of(buf, len, true, &twelve);
    ck_assert_uint_eq(twelve.n, len - 8 * 20 - 2 * 8 - 2); /* gaps, rooms, counts, how it fills */
    v = vem_rules_vehicle_load(twelve.b, twelve.n, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert_uint_eq(v->live.ngaps + v->live.gaps_cap, 0);
    ck_assert_int_eq(v->live.whole_from, T0 + 600);
    s_resaves_as_current(v);
    vem_rules_vehicle_destroy(&v);
    free(f);
    free(buf);
}
END_TEST

/* Corrupt byte i of the checkpoint of "everything at once" three ways. Refused: fine. Loaded:
 * it must judge the rest of the scenario, flush, and save to a checkpoint that loads. */
START_TEST(single_byte_corruptions)
{
    vem_rules_config_t cfg = s_defaults();
    const s_scenario_t *sc = s_scenario(s_sc_all);
    long at = s_mark_of(sc, &cfg, 0);
    size_t len;
    uint8_t *buf = s_checkpoint_of(sc, &cfg, at, &len);
    uint8_t *bad = malloc(len);
    size_t refused = 0, loaded = 0;
    for (size_t i = 0; i < len; i++) {
        const uint8_t ways[] = {(uint8_t)(buf[i] ^ 0x01), (uint8_t)(buf[i] ^ 0x80), 0xFF};
        for (int k = 0; k < 3; k++) {
            if (ways[k] == buf[i])
                continue;
            memcpy(bad, buf, len);
            bad[i] = ways[k];
            char err[256];
            vem_rules_vehicle_t *v = vem_rules_vehicle_load(bad, len, err, sizeof err);
            if (!v) {
                ck_assert_msg(s_starts_with(err, "rules checkpoint: "), "'%s'", err);
                refused++;
                continue;
            }
            loaded++;
            s_opts_t o = {-1, -1, at, v};
            s_run_t r;
            s_run(sc, &cfg, &o, &r);
            s_log_free(&r.log);
            /* what the damaged state became is still a state */
            o = (s_opts_t){-1, -1, at, vem_rules_vehicle_load(bad, len, err, sizeof err)};
            o.capture = at + 3;
            s_run(sc, &cfg, &o, &r);
            s_log_free(&r.log);
            v = vem_rules_vehicle_load(r.cap_buf, r.cap_len, err, sizeof err);
            ck_assert_msg(v != NULL, "byte %zu = %02x: the state it became does not load: %s", i,
                          ways[k], err);
            vem_rules_vehicle_destroy(&v);
            free(r.cap_buf);
        }
    }
    fprintf(stderr, "rules_ckpt: %zu-byte checkpoint, %zu corruptions refused, %zu loaded\n", len,
            refused, loaded);
    ck_assert_uint_gt(refused, 0);
    free(bad);
    free(buf);
}
END_TEST

/* ---- gaps across versions and stops ------------------------------------------------------ */

/* A frame (cmd) of the trouble trip's samples at secs[0..n), received at recv. */
static void s_trouble_frame(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg, uint8_t cmd,
                            const int64_t *secs, int n, int64_t recv, s_log_t *log)
{
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    s_envelope(f, cmd, secs[n - 1]);
    for (int i = 0; i < n; i++) {
        s_phys_t p;
        s_trouble((long)(secs[i] - T0), &p, NULL);
        vem_test_stream_block(&f->blocks[f->nblocks++], secs[i], &p);
    }
    vem_rules_on_frame(v, cfg, f, US(recv), 0, 1, s_collect, log);
    free(f);
}

/* The trouble trip's first `seconds` seconds, live, a frame of ten samples every ten seconds. */
static void s_trouble_drive(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg, int64_t seconds,
                            s_log_t *log)
{
    int64_t t[10];
    for (int64_t s = T0; s < T0 + seconds; s += 10) {
        for (int j = 0; j < 10; j++)
            t[j] = s + j;
        s_trouble_frame(v, cfg, VEM_HJ1239_CMD_REALTIME, t, 10, s + 10, log);
    }
}

/* A state loaded from a version 11 checkpoint (whole range from the live track's next second,
 * s_get_whole) whose open live trip then sees a skip must save a checkpoint that loads: else
 * the truck's rule state starts afresh at the next restart (worker.c s_ckpt_restore). */
START_TEST(v11_state_then_a_skip_resaves)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, &s_small);
    s_log_t log = {0};
    s_trouble_drive(v, &cfg, 100, &log);
    int64_t t[2];
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    vem_rules_vehicle_save(v, &buf, &len, &cap);
    vem_rules_vehicle_destroy(&v);
    static s_bytes_t eleven;
    s_v11_of(buf, len, true, &eleven);
    char err[256];
    v = vem_rules_vehicle_load(eleven.b, eleven.n, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert_int_eq(v->live.whole_from, T0 + 100); /* the second after its last */
    s_resaves_as_current(v);                        /* as loaded: fine */
    t[0] = T0 + 101;                                /* a skip of T0 + 100 (1 s), judged at once */
    s_trouble_frame(v, &cfg, VEM_HJ1239_CMD_REALTIME, t, 1, T0 + 102, &log);
    s_resaves_as_current(v); /* failed: "gap 0 of 1 s at ... not after the whole range's start" */
    /* and the skip is no copy, T0 + 101 is */
    const vem_rules_counts_t *c = vem_rules_vehicle_counts(v);
    uint64_t late = c->late_samples, copies = c->copy_samples;
    t[0] = T0 + 100;
    t[1] = T0 + 101;
    s_trouble_frame(v, &cfg, VEM_HJ1239_CMD_RESEND, t, 2, T0 + 103, &log);
    ck_assert_uint_eq(c->late_samples - late, 1);
    ck_assert_uint_eq(c->copy_samples - copies, 1);
    vem_rules_vehicle_destroy(&v);
    s_log_free(&log);
    free(buf);
}
END_TEST

/* 600 skips (more than the 512 gaps kept), a stop after every frame from the 500th skip on, then
 * copies and skipped seconds re-sent: the same counts, memory and checkpoint bytes as a
 * never-stopped run. The whole range starts after the oldest gap dropped, T0 + 3 x 87; of the
 * seconds re-sent, T0 + 3 (before it), T0 + 260 (the gap dropped), T0 + 263 and T0 + 1796
 * (gaps kept) are judged on the back-fill track, the other four are copies. */
START_TEST(evicted_gaps_across_stops)
{
    vem_rules_config_t cfg = s_defaults();
    uint8_t *fin[2] = {NULL, NULL};
    size_t flen[2] = {0, 0};
    vem_rules_counts_t cnt[2];
    size_t bytes[2];
    for (int k = 0; k < 2; k++) {
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, &s_small);
        s_log_t log = {0};
        int64_t t[3];
        for (int i = 0; i < 600; i++) {
            t[0] = T0 + 3 * i;
            t[1] = T0 + 3 * i + 1; /* T0 + 3 i + 2 skipped */
            s_trouble_frame(v, &cfg, VEM_HJ1239_CMD_REALTIME, t, 2, T0 + 3 * i + 2, &log);
            if (k == 1 && i >= 500) {
                uint8_t *b = NULL;
                size_t l = 0, c = 0;
                vem_rules_vehicle_save(v, &b, &l, &c);
                char err[256];
                vem_rules_vehicle_t *w = vem_rules_vehicle_load(b, l, err, sizeof err);
                ck_assert_msg(w != NULL, "%d: %s", i, err);
                ck_assert_uint_eq(vem_rules_vehicle_bytes(w), vem_rules_vehicle_bytes(v));
                vem_rules_vehicle_destroy(&v);
                v = w;
                free(b);
            }
        }
        ck_assert_uint_eq(v->live.ngaps, 512);
        ck_assert_int_eq(v->live.whole_from, T0 + 3 * 87);
        /* copies: before whole_from (judged again), in the kept range (copies); skipped seconds */
        int64_t again[] = {T0 + 3,           T0 + 3 * 87,     T0 + 3 * 87 + 1, T0 + 3 * 300,
                           T0 + 3 * 599 + 1, T0 + 3 * 86 + 2, T0 + 3 * 87 + 2, T0 + 3 * 598 + 2};
        for (size_t i = 0; i < sizeof again / sizeof *again; i++)
            s_trouble_frame(v, &cfg, VEM_HJ1239_CMD_RESEND, &again[i], 1, T0 + 1900, &log);
        cnt[k] = *vem_rules_vehicle_counts(v);
        bytes[k] = vem_rules_vehicle_bytes(v);
        size_t c = 0;
        vem_rules_vehicle_save(v, &fin[k], &flen[k], &c);
        vem_rules_vehicle_destroy(&v);
        s_log_free(&log);
    }
    ck_assert_uint_eq(cnt[0].copy_samples, 4);
    ck_assert_uint_eq(cnt[0].late_samples, 4);
    ck_assert_uint_eq(cnt[0].samples, 1204);
    ck_assert_mem_eq(&cnt[0], &cnt[1], sizeof cnt[0]);
    ck_assert_uint_eq(bytes[0], bytes[1]);
    ck_assert_uint_eq(flen[0], flen[1]);
    ck_assert_mem_eq(fin[0], fin[1], flen[0]);
    free(fin[0]);
    free(fin[1]);
}
END_TEST

/* ---- found by fuzz_rules_ckpt -------------------------------------------------------------- */

/* A trip whose NOx window has taken no sample yet (its samples so far lack a window input; the
 * ring comes with the first it takes) saves and loads. The save added the ring's head offset
 * to the ring's NULL: undefined behaviour, which clang's UBSan reports (gcc's does not). */
START_TEST(window_without_ring_saves)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, &s_small);
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    s_envelope(f, VEM_HJ1239_CMD_REALTIME, T0 + 1);
    s_phys_t p = s_cruise;
    p.friction = NAN;
    vem_test_stream_block(&f->blocks[f->nblocks++], T0, &p);
    vem_test_stream_block(&f->blocks[f->nblocks++], T0 + 1, &p);
    s_log_t log = {0};
    vem_rules_on_frame(v, &cfg, f, US(T0 + 2), 0, 1, s_collect, &log);
    ck_assert(v->live.open && v->live.win.active);
    ck_assert_ptr_null(v->live.win.ring);
    s_resaves_as_current(v);
    vem_rules_vehicle_destroy(&v);
    s_log_free(&log);
    free(f);
}
END_TEST

/* A track's seconds are what s_route makes them, or the load is refused: its newest second the
 * last sample's, a trip that starts no later than its last sample, and no trip open on a track
 * that took no sample. (A live newest before its trip's start loaded: the next live sample,
 * newer than that newest but before the trip's last, was judged as the trip's next and started
 * the whole range before the trip's start, so the state it became did not load again.) A track
 * begins with open (u8), newest (i64), then its start's second (i64). */
START_TEST(track_seconds_checked)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, &s_small);
    s_log_t log = {0};
    int64_t t[10];
    for (int j = 0; j < 10; j++)
        t[j] = T0 + j;
    s_trouble_frame(v, &cfg, VEM_HJ1239_CMD_REALTIME, t, 10, T0 + 10, &log);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    vem_rules_vehicle_save(v, &buf, &len, &cap);
    vem_rules_vehicle_destroy(&v);
    size_t at = s_live_trip(buf, len, T0 + 9, T0);
    const int64_t before = T0 - 1000, after = T0 + 10, none = INT64_MIN;
    s_refused_with(buf, len, at + 1, &before, 8,
                   "live track: newest sample 1709595800 is not the last sample's second "
                   "1709596809");
    s_refused_with(buf, len, at + 1, &after, 8, "live track: newest sample 1709596810 is not");
    s_refused_with(buf, len, at + 9, &after, 8,
                   "live track: trip start 1709596810 after its last sample 1709596809");
    s_refused_with(buf, len, at + 1, &none, 8,
                   "live track: a trip open on a track that took no sample");
    /* the state as it was loads, and takes a sample after a skip */
    char err[256];
    v = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    t[0] = T0 + 12;
    s_trouble_frame(v, &cfg, VEM_HJ1239_CMD_REALTIME, t, 1, T0 + 13, &log);
    s_resaves_as_current(v);
    vem_rules_vehicle_destroy(&v);
    s_log_free(&log);
    free(buf);
}
END_TEST

/* Registry figures so small that a window constant underflows to 0 (a reference torque of
 * 1e-318 N m, positive, with a span limit in bounds) are not usable: the trip judges by
 * obd.nox_high, and its state loads. (The window started, and the loader refused its
 * constants: the state did not survive a restart.) */
START_TEST(underflowing_figures_fall_back)
{
    vem_rules_config_t cfg = s_defaults();
    const vem_rules_engine_facts_t tiny = {1e-318, 200, 1, VEM_FUEL_DIESEL};
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, &tiny);
    s_log_t log = {0};
    int64_t t[10];
    for (int j = 0; j < 10; j++)
        t[j] = T0 + j;
    s_trouble_frame(v, &cfg, VEM_HJ1239_CMD_REALTIME, t, 10, T0 + 10, &log);
    ck_assert(v->live.open);
    ck_assert(v->live.fallback);
    ck_assert(!v->live.win.active);
    s_resaves_as_current(v);
    vem_rules_vehicle_destroy(&v);
    s_log_free(&log);
}
END_TEST

/* A NOx window's counts are what its samples can make, or the load is refused: every window and
 * every sample in the ring one of the window's samples, those of the trip's, which are fewer
 * than 2^31. (A window count of 2^32 - 1 with as many samples loaded: a few samples on, the
 * sample count wrapped, and the state it became did not load again.) The window's figures
 * follow its ring's capacity, bound and count (u32 each): sums (two f64), samples, windows. */
START_TEST(window_counts_checked)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, &s_small);
    s_log_t log = {0};
    s_trouble_drive(v, &cfg, 200, &log);
    const vem_rules_window_t *w = &v->live.win;
    ck_assert(w->active);
    ck_assert_uint_eq(w->samples, 198); /* two of the 200 without a NOx value */
    ck_assert_uint_gt(w->windows, 0);
    ck_assert_uint_eq(w->windows + w->count, w->samples);
    uint32_t ring[3] = {w->cap, w->cap_max, w->count};
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    vem_rules_vehicle_save(v, &buf, &len, &cap);
    vem_rules_vehicle_destroy(&v);
    size_t at = s_find(buf, len, ring, sizeof ring) + sizeof ring + 16;
    ck_assert_uint_eq(s_r32(buf + at), 198);
    const uint32_t most = UINT32_MAX, above = 198 - ring[2] + 1, more = 201;
    s_refused_with(buf, len, at + 4, &most, 4, "windows and");
    s_refused_with(buf, len, at + 4, &above, 4, " samples in the ring of 198 samples");
    s_refused_with(buf, len, at, &more, 4, "live track: 201 window samples in a trip of 200");
    /* the trip's own count */
    size_t trip = s_live_trip_samples(buf, len, T0 + 199, T0);
    ck_assert_uint_eq(s_r32(buf + trip), 200);
    const uint32_t wraps = (uint32_t)INT32_MAX + 1;
    s_refused_with(buf, len, trip, &wraps, 4, "live track: samples 2147483648 above 2147483647");
    s_log_free(&log);
    free(buf);
}
END_TEST

/* A trip ends at its most samples (VEM_RULES_TRIP_SAMPLES_MAX), the bound the loader holds it
 * to: a state loaded one sample short of it takes more and still loads. (It went past the bound,
 * and the state it became was refused at the next load.) */
START_TEST(trip_ends_at_its_most_samples)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, &s_small);
    s_log_t log = {0};
    int64_t t[10];
    for (int j = 0; j < 10; j++)
        t[j] = T0 + j;
    s_trouble_frame(v, &cfg, VEM_HJ1239_CMD_REALTIME, t, 10, T0 + 10, &log);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    vem_rules_vehicle_save(v, &buf, &len, &cap);
    vem_rules_vehicle_destroy(&v);
    size_t trip = s_live_trip_samples(buf, len, T0 + 9, T0);
    ck_assert_uint_eq(s_r32(buf + trip), 10);
    const uint32_t most = VEM_RULES_TRIP_SAMPLES_MAX - 1;
    memcpy(buf + trip, &most, 4);
    char err[256];
    v = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    for (int j = 0; j < 3; j++)
        t[j] = T0 + 10 + j;
    s_trouble_frame(v, &cfg, VEM_HJ1239_CMD_REALTIME, t, 3, T0 + 13, &log);
    ck_assert_int_eq(v->live.start.sec, T0 + 11); /* the sample past the most starts a trip */
    ck_assert_uint_eq(v->live.samples, 2);
    s_resaves_as_current(v);
    vem_rules_vehicle_destroy(&v);
    s_log_free(&log);
    free(buf);
}
END_TEST

/* A chain reading's reach of 0 is no reach (rules_rsd.c reads 0 as none, and the save writes no
 * anchor for it), so an anchor bit with a reach of 0 is refused: it loaded, from a reading at or
 * before 1970, and saved to other bytes than it was. Here n1 (-2 s) and n2 (-1 s) make a chain
 * whose verdict n1 anchors, reaching n2; its reach set to 0 is refused. */
START_TEST(anchor_reach_zero_refused)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    vem_rsd_reading_t r;
    s_log_t log = {0};
    s_valid_reading(&r, "n1", -2000000, 1700);
    vem_rules_on_reading(v, &cfg, &r, 1, s_collect, &log);
    s_valid_reading(&r, "n2", -1000000, 1800);
    vem_rules_on_reading(v, &cfg, &r, 2, s_collect, &log);
    ck_assert_uint_eq(log.n, 2); /* a notice, then the violation under n1's id */
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    vem_rules_vehicle_save(v, &buf, &len, &cap);
    vem_rules_vehicle_destroy(&v);
    static const uint8_t ids[] = {3, 'S', '0', '1', 2, 'n', '1'};
    uint8_t *at = memmem(buf, len, ids, sizeof ids);
    ck_assert_ptr_nonnull(at);
    ck_assert_uint_eq(at[-1], 1 | 4); /* over, anchor */
    int64_t reach_us;
    memcpy(&reach_us, at + sizeof ids, 8);
    ck_assert_int_eq(reach_us, -1000000);
    const int64_t zero = 0;
    s_refused_with(buf, len, (size_t)(at + sizeof ids - buf), &zero, 8,
                   "roadside: chain reading 0 reach 0 with the anchor bit (0 is none)");
    s_log_free(&log);
    free(buf);
}
END_TEST

/* A span's count (the samples behind a running episode) is at most the samples of its trip, or
 * the load is refused: a sample steps a span once at most, and a trip starts with its spans
 * empty (rules.c s_step, s_trip_start). (A count of 2^32 - 1 loaded: the next sample wrapped it
 * to 0, the span started again, and an episode already judged was judged a second time.) The
 * five spans follow the trip's samples (u32), whether the engine runs (1), its start (8) and
 * the fallback (1), 39 bytes each: count, value (u32 each), fired, first sample (8 + 4 + 2),
 * lo and hi (f64 each). */
START_TEST(span_counts_checked)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, &s_small);
    s_log_t log = {0};
    s_trouble_drive(v, &cfg, 300, &log);
    ck_assert_uint_eq(v->live.samples, 300);
    ck_assert_uint_eq(v->live.reagent.n, 100); /* reagent low from the 200th sample */
    ck_assert(!v->live.reagent.fired);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    vem_rules_vehicle_save(v, &buf, &len, &cap);
    vem_rules_vehicle_destroy(&v);
    size_t trip = s_live_trip_samples(buf, len, T0 + 299, T0);
    ck_assert_uint_eq(s_r32(buf + trip), 300);
    size_t spans = trip + 4 + 1 + 8 + 1;
    ck_assert_uint_eq(s_r32(buf + spans), 100);
    static const char *const names[] = {"reagent", "nox_high", "frozen", "down_above_up",
                                        "invalid"};
    char err[256], want[200];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t at = spans + 39 * i;
        const uint32_t above = 301, most = UINT32_MAX, all = 300;
        snprintf(want, sizeof want, "live track: %s span of 301 samples in a trip of 300",
                 names[i]);
        s_refused_with(buf, len, at, &above, 4, want);
        snprintf(want, sizeof want, "live track: %s span of 4294967295 samples in a trip of 300",
                 names[i]);
        s_refused_with(buf, len, at, &most, 4, want);
        /* every sample of the trip in the span: the writer's bound, so it loads */
        static s_bytes_t d;
        d.n = 0;
        s_w(&d, buf, len);
        memcpy(d.b + at, &all, 4);
        v = vem_rules_vehicle_load(d.b, d.n, err, sizeof err);
        ck_assert_msg(v != NULL, "%s: %s", names[i], err);
        vem_rules_vehicle_destroy(&v);
    }
    /* the state as it was loads */
    v = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert_uint_eq(v->live.reagent.n, 100);
    s_resaves_as_current(v);
    vem_rules_vehicle_destroy(&v);
    s_log_free(&log);
    free(buf);
}
END_TEST

Suite *vem_suite_rules_ckpt(void);
Suite *vem_suite_rules_ckpt(void)
{
    Suite *s = suite_create("rules_ckpt");
    TCase *tc = tcase_create("equivalence");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, equivalence_at_every_split, 0,
                        sizeof s_scenarios / sizeof *s_scenarios);
    tcase_add_test(tc, size_of_a_driving_truck);
    suite_add_tcase(s, tc);
    tc = tcase_create("damage");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, every_truncation_is_refused);
    tcase_add_test(tc, version_and_magic);
    tcase_add_test(tc, gaps_checked);
    tcase_add_test(tc, versions_4_to_8_load_as_they_are);
    tcase_add_test(tc, version_5_offline_on_the_wall_clock);
    tcase_add_test(tc, version_7_keeps_readings_from_the_history);
    tcase_add_test(tc, version_10_keeps_anchors);
    tcase_add_test(tc, version_10_window_ring_converts);
    tcase_add_test(tc, older_files_of_the_builds_before);
    tcase_add_test(tc, anchor_reach_checked);
    tcase_add_test(tc, version_8_starts_the_scr_window_afresh);
    tcase_add_test(tc, versions_1_and_2_load_converted);
    tcase_add_test(tc, version_2_chain_with_readings_of_one_time);
    tcase_add_test(tc, version_3_fusion_history_loads_without_keys);
    tcase_add_test(tc, unknown_colour_refused);
    tcase_add_test(tc, save_appends);
    tcase_add_test(tc, precise_reasons);
    tcase_add_test(tc, single_byte_corruptions);
    tcase_add_test(tc, held_samples_checked);
    tcase_add_test(tc, window_without_ring_saves);
    tcase_add_test(tc, track_seconds_checked);
    tcase_add_test(tc, underflowing_figures_fall_back);
    tcase_add_test(tc, window_counts_checked);
    tcase_add_test(tc, trip_ends_at_its_most_samples);
    tcase_add_test(tc, anchor_reach_zero_refused);
    tcase_add_test(tc, span_counts_checked);
    suite_add_tcase(s, tc);
    tc = tcase_create("gaps");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, v11_state_then_a_skip_resaves);
    tcase_add_test(tc, evicted_gaps_across_stops);
    suite_add_tcase(s, tc);
    return s;
}
