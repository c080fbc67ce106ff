/* check_rules — the China VI rules engine against rules.md, with verdicts worked by hand.
 *
 * Times: T0 = 1709596800 is 2024-03-05T08:00:00+08:00 (19787 days after 1970-01-01: 19723 to
 * 2024-01-01, + 31 + 29 + 4). Six natural months later, 2024-09-05T08:00:00+08:00, is
 * 1725494400 (Sep 5 is day 19723 + 244 + 4 = 19971).
 *
 * Raw values come from the hj1239.md table (physical = raw x scale + offset): reagent 2.0 % is
 * raw 5 (0.4 % steps), 2.4 % raw 6; NOx 500 ppm is raw (500 + 200) / 0.05 = 14000, 500.05 ppm
 * raw 14001. Samples are built with those scales and handed to the rules as decoded frames.
 *
 * The NOx-window figures of nox_window_matches_independent_computation come from
 * tests/data/rules/nox_window.py, which computes them with plain loops from the rules.md
 * formulas; regenerate with `python3 tests/data/rules/nox_window.py` and copy what it prints. */
#include "rules.h"
#include "rules_int.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIN   "LZZTESTVIN0000001"
#define PLATE "京A12345"
#define T0    1709596800LL
#define T6M   1725494400LL
#define US(t) ((int64_t)(t)*1000000)

/* ---- collecting verdicts ------------------------------------------------------------------ */

typedef struct {
    char id[VEM_RULES_ID_LEN];
    vem_rule_t rule;
    vem_severity_t severity;
    int64_t first_us, last_us;
    double measured, limit;
    char kind[32];
    char vin[18], plate[16], plate_color[16];
    uint64_t spool_seq;
    json_t *ev;
    json_t *json; /* vem_rules_violation_json of the verdict */
} s_got_t;

typedef struct {
    s_got_t v[256];
    int n;
} s_log_t;

static void s_collect(void *arg, const vem_violation_t *v)
{
    s_log_t *log = arg;
    ck_assert_int_lt(log->n, 256);
    s_got_t *g = &log->v[log->n++];
    memcpy(g->id, v->id, sizeof g->id);
    g->rule = v->rule;
    g->severity = v->severity;
    g->first_us = v->first_us;
    g->last_us = v->last_us;
    g->measured = v->measured;
    g->limit = v->limit;
    g->spool_seq = v->spool_seq;
    const char *kind = json_string_value(json_object_get(v->evidence, "kind"));
    snprintf(g->kind, sizeof g->kind, "%s", kind ? kind : "");
    g->ev = json_incref(v->evidence);
    snprintf(g->vin, sizeof g->vin, "%s", v->vin);
    snprintf(g->plate, sizeof g->plate, "%s", v->plate);
    snprintf(g->plate_color, sizeof g->plate_color, "%s", v->plate_color);
    g->json = vem_rules_violation_json(v);
    ck_assert_uint_eq(strlen(v->id), 32);
    ck_assert_str_eq(v->name, vem_rules_name(v->rule));
    ck_assert_int_le(v->first_us, v->last_us);
}

static void s_log_free(s_log_t *log)
{
    for (int i = 0; i < log->n; i++) {
        json_decref(log->v[i].ev);
        json_decref(log->v[i].json);
    }
    log->n = 0;
}

static int s_count(const s_log_t *log, vem_rule_t rule)
{
    int n = 0;
    for (int i = 0; i < log->n; i++)
        n += log->v[i].rule == rule;
    return n;
}

/* The k-th verdict of the rule (0 = first), failing when there is none. */
static const s_got_t *s_nth(const s_log_t *log, vem_rule_t rule, int k)
{
    for (int i = 0; i < log->n; i++)
        if (log->v[i].rule == rule && k-- == 0)
            return &log->v[i];
    ck_abort_msg("no verdict %d of %s", k, vem_rules_name(rule));
    return NULL;
}

static json_int_t s_int(json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *key = strtok(buf, "."); key; key = strtok(NULL, "."))
        o = json_object_get(o, key);
    ck_assert_msg(json_is_integer(o), "%s is not an integer", path);
    return json_integer_value(o);
}

static double s_real(json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *key = strtok(buf, "."); key; key = strtok(NULL, "."))
        o = json_object_get(o, key);
    ck_assert_msg(json_is_number(o), "%s is not a number", path);
    return json_number_value(o);
}

static const char *s_str(json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *key = strtok(buf, "."); key; key = strtok(NULL, "."))
        o = json_object_get(o, key);
    ck_assert_msg(json_is_string(o), "%s is not a string", path);
    return json_string_value(o);
}

static const char *s_iso(int64_t t)
{
    static char buf[4][VEM_RULES_ISO_LEN];
    static int k;
    k = (k + 1) % 4;
    vem_rules_iso(US(t), buf[k]);
    return buf[k];
}

/* ---- building samples and frames ---------------------------------------------------------- */

typedef vem_test_phys_t s_phys_t;

/* A warm truck cruising with a working SCR: nothing in it breaks a rule. */
static const s_phys_t s_cruise = {.rpm = 1400,
                                  .torque = 60,
                                  .friction = 8,
                                  .fuel = 30,
                                  .nox_up = 800,
                                  .nox_down = 100,
                                  .reagent = 50,
                                  .intake = 600,
                                  .scr_in = 300,
                                  .coolant = 85};

static void s_envelope(vem_hj1239_frame_t *f, uint8_t cmd, int64_t t)
{
    vem_test_envelope(f, cmd, VIN, t);
}

/* Sample i's values. */
typedef void (*s_gen_t)(long i, s_phys_t *p, const void *arg);

static void s_const(long i, s_phys_t *p, const void *arg)
{
    (void)i;
    *p = *(const s_phys_t *)arg;
}

typedef struct {
    vem_rules_vehicle_t *v;
    const vem_rules_config_t *cfg;
    s_log_t *log;
    vem_hj1239_frame_t *f;
    uint64_t seq;
    uint8_t cmd;       /* real-time unless set */
    bool gb17691;      /* GB 17691 frames: one time per frame, the last sample's */
    int64_t late_s;    /* frames are received this long after their time, plus 1.5 s */
    int64_t rx_us;     /* the last frame's receipt time: receipts never go back */
    int64_t paused_us; /* intake's paused total when the frames are read */
} s_feed_t;

static void s_feed_init(s_feed_t *fd, vem_rules_vehicle_t *v, const vem_rules_config_t *cfg,
                        s_log_t *log)
{
    memset(fd, 0, sizeof *fd);
    fd->v = v;
    fd->cfg = cfg;
    fd->log = log;
    fd->f = malloc(sizeof *fd->f);
    fd->cmd = VEM_HJ1239_CMD_REALTIME;
}

static void s_send(s_feed_t *fd)
{
    int64_t rx = US(fd->f->time + fd->late_s) + 1500000;
    if (rx > fd->rx_us) /* data older than the last frame's (a back-fill) is received now */
        fd->rx_us = rx;
    vem_rules_on_frame(fd->v, fd->cfg, fd->f, fd->rx_us, fd->paused_us, ++fd->seq, s_collect,
                       fd->log);
}

/* n samples at t[0..n), in frames of up to ten 1 Hz samples. */
static void s_feed_times(s_feed_t *fd, const int64_t *t, long n, s_gen_t gen, const void *arg)
{
    for (long i = 0; i < n;) {
        long k = 0;
        while (i + k < n && k < 10 && (k == 0 || t[i + k] == t[i + k - 1] + 1))
            k++;
        s_envelope(fd->f, fd->cmd, t[i + k - 1]);
        fd->f->layout = fd->gb17691 ? 0 : VEM_HJ1239_LAYOUT_BLOCK_TIME;
        for (long j = 0; j < k; j++) {
            s_phys_t p;
            gen(i + j, &p, arg);
            vem_test_stream_block(&fd->f->blocks[fd->f->nblocks++],
                                  fd->gb17691 ? t[i + k - 1] : t[i + j], &p);
        }
        s_send(fd);
        i += k;
    }
}

/* n samples at t0, t0 + 1, ... */
static void s_feed(s_feed_t *fd, int64_t t0, long n, s_gen_t gen, const void *arg)
{
    int64_t *t = malloc((size_t)n * sizeof *t);
    for (long i = 0; i < n; i++)
        t[i] = t0 + i;
    s_feed_times(fd, t, n, gen, arg);
    free(t);
}

static void s_cmd(s_feed_t *fd, uint8_t cmd, int64_t t)
{
    s_envelope(fd->f, cmd, t);
    s_send(fd);
}

static void s_feed_free(s_feed_t *fd)
{
    free(fd->f);
}

static vem_rules_config_t s_defaults(void)
{
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    return cfg;
}

/* Engine figures of a typical heavy truck: D_lim = (30 x 3600 + 2.5 x 2000 x 8031.875 x 2 pi
 * / 60000) / (0.2 x 350) = (108000 + 4205.5) / 70 = 1603 samples. */
static const vem_rules_engine_facts_t s_truck = {2000, 350, 30, VEM_FUEL_DIESEL};
/* Small figures for hand-worked windows: see window_arithmetic. */
static const vem_rules_engine_facts_t s_small = {1000, 200, 0.01, VEM_FUEL_DIESEL};

/* ---- configuration ------------------------------------------------------------------------ */

START_TEST(config_defaults_are_rules_md)
{
    vem_rules_config_t c = s_defaults();
    char err[160];
    ck_assert_int_eq(vem_rules_config_validate(&c, err, sizeof err), 0);
    ck_assert_double_eq(c.rsd_no_ppm[VEM_RSD_LIMIT_A], 1500);
    ck_assert_double_eq(c.rsd_no_ppm[VEM_RSD_LIMIT_B], 1000);
    ck_assert_double_eq(c.rsd_opacity_pct[0], 30);
    ck_assert_double_eq(c.rsd_ringelmann[0], 1);
    ck_assert(isnan(c.gas_co_pct) && isnan(c.gas_hc_ppm) && isnan(c.gas_no_ppm));
    ck_assert_uint_eq(c.rsd_chain_n, 2);
    ck_assert_uint_eq(c.rsd_cycle_months, 6);
    ck_assert_double_eq(c.rsd_speed_kmh.lo, 20);
    ck_assert_double_eq(c.rsd_accel_ms2.lo, -0.5);
    ck_assert_double_eq(c.rsd_slope_pct.hi, 5);
    ck_assert_uint_eq(c.mil_days, 7);
    ck_assert_double_eq(c.reagent_min_pct, 2.0);
    ck_assert_uint_eq(c.reagent_minutes, 30);
    ck_assert_double_eq(c.nox_ppm_max, 500);
    ck_assert_double_eq(c.scr_eff_min, 0.5);
    ck_assert_uint_eq(c.frozen_minutes, 10);
    ck_assert_double_eq(c.frozen_rpm_span, 50);
    ck_assert_uint_eq(c.offline_hours, 72);
    ck_assert_double_eq(c.completeness_min, 0.95);
    ck_assert_double_eq(c.fuel_density_kg_l, 0.835);
    ck_assert_double_eq(c.nox_u, 0.001586);
    ck_assert_double_eq(c.nox_window_mg_kwh, 690);
    ck_assert_uint_eq(c.nox_percentile, 90);
    ck_assert_uint_eq(c.trip_gap_min, 10);
    ck_assert_double_eq(c.fusion_low_ppm, 500);
    ck_assert_uint_eq(c.fusion_match_s, 2);
    for (unsigned r = 0; r < VEM_RULE_COUNT; r++) {
        ck_assert(c.enabled[r]);
        vem_rule_t back;
        ck_assert(vem_rules_lookup(vem_rules_name((vem_rule_t)r), &back));
        ck_assert_int_eq(back, r);
        ck_assert_ptr_nonnull(vem_rules_clause((vem_rule_t)r));
    }
    ck_assert_str_eq(vem_rules_name(VEM_RULE_OBD_NOX_WINDOW), "obd.nox_window");
    ck_assert(vem_rules_fields_match_decoder()); /* rules.c reads raw values with these */
    ck_assert_str_eq(vem_rules_name(VEM_RULE_FUSION_OBD_MISMATCH), "fusion.obd_mismatch");
}
END_TEST

static void s_bad_percentile(vem_rules_config_t *c)
{
    c->nox_percentile = 0;
}
static void s_bad_window(vem_rules_config_t *c)
{
    c->rsd_speed_kmh = (vem_rules_range_t){90, 80};
}
static void s_bad_gas(vem_rules_config_t *c)
{
    c->gas_co_pct = -1;
}
static void s_bad_column(vem_rules_config_t *c)
{
    c->rsd_column = (vem_rsd_column_t)2;
}
static void s_bad_b_from(vem_rules_config_t *c)
{
    c->rsd_b_from_us = 0; /* column a */
}
static void s_bad_horizon(vem_rules_config_t *c)
{
    c->fusion_match_s = 10;
    c->fusion_horizon_s = 20;
}
static void s_bad_eff(vem_rules_config_t *c)
{
    c->scr_eff_min = 1.5;
}
static void s_bad_minutes(vem_rules_config_t *c)
{
    c->reagent_minutes = 0;
}
static void s_bad_nan(vem_rules_config_t *c)
{
    c->nox_ppm_max = NAN;
}

static const struct {
    void (*bad)(vem_rules_config_t *c);
    const char *err;
} s_bad[] = {
    {s_bad_percentile, "nox_percentile: 0 is outside 1 .. 100"},
    {s_bad_window,
     "rsd_speed_kmh_min .. rsd_speed_kmh_max: 90 .. 80 is not a range (low above high?)"},
    {s_bad_gas, "gas_co_pct: -1 is outside 1e-09 .. 100 (or unset)"},
    {s_bad_column, "rsd_limit_column: 2 is neither a nor b"},
    {s_bad_b_from, "rsd_limit_b_from: a date from which column b applies, but the column is a "
                   "(set rsd_limit_column = \"b\")"},
    {s_bad_horizon, "fusion_horizon_s: 20 is shorter than the match window of 21 s "
                    "(2 x fusion_match_s + 1)"},
    {s_bad_eff, "scr_eff_min: 1.5 is outside 0 .. 1"},
    {s_bad_minutes, "reagent_minutes: 0 is outside 1 .. 1440"},
    {s_bad_nan, "nox_ppm_max: nan is outside 0 .. 100000"},
};

START_TEST(config_errors_name_the_key)
{
    vem_rules_config_t c = s_defaults();
    s_bad[_i].bad(&c);
    char err[200] = "";
    ck_assert_int_eq(vem_rules_config_validate(&c, err, sizeof err), -1);
    ck_assert_str_eq(err, s_bad[_i].err);
    /* gasoline limits set are fine */
    c = s_defaults();
    c.gas_co_pct = 4.5;
    ck_assert_int_eq(vem_rules_config_validate(&c, NULL, 0), 0);
}
END_TEST

/* ---- span rules: a constant condition held for a while ------------------------------------ */

/* Which value of the cruising sample a case changes. */
typedef enum { S_NONE, S_RPM, S_REAGENT, S_NOX_DOWN, S_COOLANT, S_SCR_IN, S_INTAKE } s_knob_t;

typedef struct {
    const char *name;
    s_knob_t knob, knob2;
    double value, value2;
    double wobble; /* every other sample's rpm is this much higher */
    const vem_rules_engine_facts_t *facts;
    long n; /* samples from T0, 1 Hz */
    vem_rule_t rule;
    const char *kind;
    int expect; /* verdicts of rule (and kind) */
    vem_severity_t severity;
    double measured;
    long last; /* index of the evidence's last sample */
} s_span_case_t;

static const s_span_case_t s_spans[] = {
    /* reagent raw 5 = 2.0 %: "at or below 2.0" holds; 30 min = 1800 samples */
    {"reagent at 2.0 for 30 min", S_REAGENT, S_NONE, 2.0, 0, 0, &s_truck, 1800,
     VEM_RULE_OBD_REAGENT_EMPTY, NULL, 1, VEM_SEVERITY_VIOLATION, 2.0, 1799},
    {"reagent one sample short", S_REAGENT, S_NONE, 2.0, 0, 0, &s_truck, 1799,
     VEM_RULE_OBD_REAGENT_EMPTY, NULL, 0, 0, 0, 0},
    {"reagent one step above (2.4)", S_REAGENT, S_NONE, 2.4, 0, 0, &s_truck, 1800,
     VEM_RULE_OBD_REAGENT_EMPTY, NULL, 0, 0, 0, 0},
    {"reagent empty, engine off", S_REAGENT, S_RPM, 0.4, 0, 0, &s_truck, 1800,
     VEM_RULE_OBD_REAGENT_EMPTY, NULL, 0, 0, 0, 0},
    /* without engine figures: NOx 500 ppm (raw 14000) is at the limit, not above */
    {"nox_high exactly at 500 ppm", S_NOX_DOWN, S_NONE, 500, 0, 0, NULL, 600, VEM_RULE_OBD_NOX_HIGH,
     NULL, 0, 0, 0, 0},
    {"nox_high 500.05 ppm for 10 min", S_NOX_DOWN, S_NONE, 500.05, 0, 0, NULL, 600,
     VEM_RULE_OBD_NOX_HIGH, NULL, 1, VEM_SEVERITY_NOTICE, 500.05, 599},
    {"nox_high not with engine figures", S_NOX_DOWN, S_NONE, 800, 0, 0, &s_truck, 600,
     VEM_RULE_OBD_NOX_HIGH, NULL, 0, 0, 0, 0},
    /* coolant 40 < 70 and at most 599 s after the start (< 20 min): not warm */
    {"nox_high cold engine", S_NOX_DOWN, S_COOLANT, 800, 40, 0, NULL, 600, VEM_RULE_OBD_NOX_HIGH,
     NULL, 0, 0, 0, 0},
    /* SCR: 1 - 500 / 800 = 0.375 < 0.5 over 30 min at 300 C, upstream 800 >= 100 */
    {"scr conversion 0.375", S_NOX_DOWN, S_NONE, 500, 0, 0, &s_truck, 1800,
     VEM_RULE_OBD_SCR_INEFFECTIVE, NULL, 1, VEM_SEVERITY_VIOLATION, 0.375, 1799},
    {"scr conversion exactly 0.5", S_NOX_DOWN, S_NONE, 400, 0, 0, &s_truck, 1800,
     VEM_RULE_OBD_SCR_INEFFECTIVE, NULL, 0, 0, 0, 0},
    {"scr inlet 249 C", S_NOX_DOWN, S_SCR_IN, 500, 249, 0, &s_truck, 3600,
     VEM_RULE_OBD_SCR_INEFFECTIVE, NULL, 0, 0, 0, 0},
    /* downstream 900 > upstream 800 while warm, 10 min = 600 samples */
    {"downstream above upstream", S_NOX_DOWN, S_NONE, 900, 0, 0, &s_truck, 600, VEM_RULE_OBD_TAMPER,
     "down_above_up", 1, VEM_SEVERITY_NOTICE, 10, 599},
    {"downstream equal to upstream", S_NOX_DOWN, S_NONE, 800, 0, 0, &s_truck, 1200,
     VEM_RULE_OBD_TAMPER, "down_above_up", 0, 0, 0, 0},
    /* NOx 123.45 ppm is raw 6469 in every sample; rpm 1400 / 1450: span 50, "at least" */
    {"frozen NOx, rpm span 50", S_NOX_DOWN, S_NONE, 123.45, 0, 50, &s_truck, 600,
     VEM_RULE_OBD_TAMPER, "frozen_nox", 1, VEM_SEVERITY_VIOLATION, 10, 599},
    {"frozen NOx, rpm span 49.875", S_NOX_DOWN, S_NONE, 123.45, 0, 49.875, &s_truck, 1200,
     VEM_RULE_OBD_TAMPER, "frozen_nox", 0, 0, 0, 0},
    {"frozen NOx one sample short", S_NOX_DOWN, S_NONE, 123.45, 0, 50, &s_truck, 599,
     VEM_RULE_OBD_TAMPER, "frozen_nox", 0, 0, 0, 0},
    /* downstream NOx 0xFFFF for 30 min while running */
    {"NOx invalid 30 min", S_NOX_DOWN, S_NONE, NAN, 0, 0, &s_truck, 1800, VEM_RULE_OBD_TAMPER,
     "invalid_signals", 1, VEM_SEVERITY_NOTICE, 30, 1799},
    {"intake invalid one sample short", S_INTAKE, S_NONE, NAN, 0, 0, &s_truck, 1799,
     VEM_RULE_OBD_TAMPER, "invalid_signals", 0, 0, 0, 0},
    {"NOx invalid, engine off", S_NOX_DOWN, S_RPM, NAN, 0, 0, &s_truck, 1800, VEM_RULE_OBD_TAMPER,
     "invalid_signals", 0, 0, 0, 0},
};

static void s_knob(s_phys_t *p, s_knob_t knob, double value)
{
    switch (knob) {
    case S_RPM:
        p->rpm = value;
        break;
    case S_REAGENT:
        p->reagent = value;
        break;
    case S_NOX_DOWN:
        p->nox_down = value;
        break;
    case S_COOLANT:
        p->coolant = value;
        break;
    case S_SCR_IN:
        p->scr_in = value;
        break;
    case S_INTAKE:
        p->intake = value;
        break;
    default:
        break;
    }
}

static void s_wobble(long i, s_phys_t *p, const void *arg)
{
    const s_span_case_t *c = arg;
    *p = s_cruise;
    s_knob(p, c->knob, c->value);
    s_knob(p, c->knob2, c->value2);
    if (i % 2)
        p->rpm += c->wobble;
}

static int s_count_kind(const s_log_t *log, vem_rule_t rule, const char *kind, int *at)
{
    int n = 0;
    for (int i = 0; i < log->n; i++) {
        if (log->v[i].rule == rule && (!kind || strcmp(log->v[i].kind, kind) == 0)) {
            if (n++ == 0)
                *at = i;
        }
    }
    return n;
}

START_TEST(span_rules)
{
    const s_span_case_t *c = &s_spans[_i];
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, c->facts);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_feed(&fd, T0, c->n, s_wobble, c);
    vem_rules_flush(v, &cfg, s_collect, &log);
    int at = -1;
    int got = s_count_kind(&log, c->rule, c->kind, &at);
    ck_assert_msg(got == c->expect, "%s: %d verdicts of %s, expected %d", c->name, got,
                  vem_rules_name(c->rule), c->expect);
    if (c->expect) {
        const s_got_t *g = &log.v[at];
        ck_assert_int_eq(g->severity, c->severity);
        ck_assert_double_eq_tol(g->measured, c->measured, 1e-9);
        ck_assert_int_eq(g->first_us, US(T0));
        ck_assert_int_eq(g->last_us, US(T0 + c->last));
        ck_assert_int_eq(s_int(g->ev, "samples.count"), c->last + 1);
        ck_assert_str_eq(s_str(g->ev, "samples.vin"), VIN);
        ck_assert_str_eq(s_str(g->ev, "samples.from.time"), s_iso(T0));
        ck_assert_str_eq(s_str(g->ev, "samples.to.time"), s_iso(T0 + c->last));
        ck_assert_uint_eq(g->spool_seq, (uint64_t)c->last / 10 + 1); /* the frame that did it */
    }
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
    ck_assert_ptr_null(v);
}
END_TEST

/* ---- obd.scr_ineffective: a window of scr_minutes that slides by whole minutes -------------- */

/* rules.md: "SCR conversion 1 - down/up below scr_eff_min (0.5) over scr_minutes (30) of
 * operation with SCR inlet >= 250 C and upstream NOx >= 100 ppm". The window is the last 30
 * minutes (1800 qualifying samples) of the trip's qualifying operation, judged each time a
 * minute (60 qualifying samples) is whole; conversion is 1 - sum(down) / sum(up) over it.
 * Upstream is 800 ppm throughout (raw 20000), so over a window of 1800 samples
 * sum(up) = 1800 x 800 = 1,440,000 and the conversion is below 0.5 when
 * sum(down) > 720,000. Good samples: downstream 100 ppm (1 - 100 / 800 = 0.875); bad ones
 * 560 ppm (1 - 560 / 800 = 0.30). With g good samples in a window,
 * sum(down) = 100 g + 560 (1800 - g) = 1,008,000 - 460 g: below 0.5 when g < 626.1. The first
 * window below 0.5 fires, once a trip. */

/* Sample i's downstream NOx: bad (560) in [from, to), good (100) elsewhere; non-qualifying
 * samples (SCR inlet 200 C, downstream 800: conversion 0 if they counted) after every
 * qualifying one when `every` is 2. */
typedef struct {
    long from, to;
    int every;
} s_scr_case_t;

static void s_scr_gen(long i, s_phys_t *p, const void *arg)
{
    const s_scr_case_t *c = arg;
    *p = s_cruise;
    if (c->every == 2 && i % 2) {
        p->scr_in = 200;
        p->nox_down = 800;
        return;
    }
    long q = c->every == 2 ? i / 2 : i; /* the qualifying sample's index */
    p->nox_down = q >= c->from && q < c->to ? 560 : 100;
}

/* The trip's SCR verdicts: exactly `expect`, the first from first to last (T0 + seconds) over
 * 1800 qualifying samples at the conversion given. */
static void s_scr_run(const s_scr_case_t *c, long n, int expect, long first, long last,
                      double conversion)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_feed(&fd, T0, n, s_scr_gen, c);
    vem_rules_flush(v, &cfg, s_collect, &log);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_SCR_INEFFECTIVE), expect);
    if (expect) {
        const s_got_t *g = s_nth(&log, VEM_RULE_OBD_SCR_INEFFECTIVE, 0);
        ck_assert_int_eq(g->severity, VEM_SEVERITY_VIOLATION);
        ck_assert_int_eq(g->first_us, US(T0 + first));
        ck_assert_int_eq(g->last_us, US(T0 + last));
        ck_assert_double_eq_tol(g->measured, conversion, 1e-9);
        ck_assert_double_eq_tol(g->limit, 0.5, 1e-12);
        ck_assert_double_eq_tol(s_real(g->ev, "conversion"), conversion, 1e-9);
        ck_assert_int_eq(s_int(g->ev, "samples.count"), 1800);
        ck_assert_int_eq(s_int(g->ev, "minutes"), 30);
        ck_assert_double_eq_tol(s_real(g->ev, "nox_up_ppm_mean"), 800, 1e-9);
        ck_assert_str_eq(s_str(g->ev, "samples.from.time"), s_iso(T0 + first));
        ck_assert_str_eq(s_str(g->ev, "samples.to.time"), s_iso(T0 + last));
    }
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}

/* 900 s good, 1800 s bad (900 .. 2699), 900 s good. Fixed blocks of 1800 (0 .. 1799,
 * 1800 .. 3599) each held 900 good and 900 bad: 1 - (90,000 + 504,000) / 1,440,000 = 0.5875,
 * no verdict, although a whole 30 minutes at 0.30 lies in the trip. Sliding by minutes, the
 * window of minutes 15 .. 44 (900 .. 2699) is all bad, 0.30; but the windows before it get
 * there first: minute j .. j + 29 (60 j .. 60 j + 1799) holds g = 900 - 60 j good samples,
 * below 626.1 from j = 5 on. So the verdict is the window 300 .. 2099, g = 600:
 * sum(down) = 60,000 + 672,000 = 732,000, 1 - 732,000 / 1,440,000 = 0.4916666..., at sample
 * 2099, and it is the trip's one (the all-bad window that follows is the same episode). */
START_TEST(scr_window_slides_onto_a_bad_stretch)
{
    s_scr_case_t c = {900, 2700, 1};
    s_scr_run(&c, 3600, 1, 300, 2099, 1 - 732000.0 / 1440000);
}
END_TEST

/* The bad stretch at a non-minute offset: 930 .. 2729. Windows start on minutes; the one of
 * 960 .. 2759 holds 1770 bad and 30 good: sum(down) = 3,000 + 991,200 = 994,200, conversion
 * 1 - 994,200 / 1,440,000 = 0.3095833..., below 0.5; but earlier windows come first: the window
 * from 60 j (j <= 15) holds 60 j + 870 bad samples (930 .. 60 j + 1799). j = 5 (300 .. 2099):
 * 1170 bad, 630 good, sum(down) = 63,000 + 655,200 = 718,200 <= 720,000: 0.50125, not below.
 * j = 6 (360 .. 2159): 1230 bad, 570 good, sum(down) = 57,000 + 688,800 = 745,800:
 * 1 - 745,800 / 1,440,000 = 0.4820833..., the verdict, at sample 2159. */
START_TEST(scr_window_finds_a_stretch_off_the_minute)
{
    s_scr_case_t c = {930, 2730, 1};
    s_scr_run(&c, 3600, 1, 360, 2159, 1 - 745800.0 / 1440000);
}
END_TEST

/* Exactly 0.5 is not below it (rules.md: "below"): 900 good (100 ppm, raw 6000), 900 at
 * 700 ppm (raw 18000; 1 - 700 / 800 = 0.125), 1800 good. Every window from minute j <= 15 holds
 * all 900 of the 700 ppm samples and 900 good ones: sum(down) = 90,000 + 630,000 = 720,000,
 * exactly half of sum(up) (raw sums 21,600,000 of 36,000,000, the same as 1800 samples at
 * 400 ppm); later windows hold more good ones. No verdict. */
static void s_scr_half(long i, s_phys_t *p, const void *arg)
{
    (void)arg;
    *p = s_cruise;
    p->nox_down = i >= 900 && i < 1800 ? 700 : 100;
}

START_TEST(scr_window_at_exactly_half)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_feed(&fd, T0, 3600, s_scr_half, NULL);
    vem_rules_flush(v, &cfg, s_collect, &log);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_SCR_INEFFECTIVE), 0);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* The first case with a sample at SCR inlet 200 C (below 250: not qualifying) after every
 * qualifying one, with downstream 800 ppm (conversion 0, were it counted): qualifying sample q
 * is at T0 + 2 q. They neither break nor extend the window, so the verdict is the same
 * window of qualifying samples, 300 .. 2099: from T0 + 600 to T0 + 4198, 1800 samples,
 * 0.4916666... */
START_TEST(scr_window_ignores_samples_that_do_not_qualify)
{
    s_scr_case_t c = {900, 2700, 2};
    s_scr_run(&c, 7200, 1, 600, 4198, 1 - 732000.0 / 1440000);
}
END_TEST

/* A gap longer than trip_gap_min (10 min) ends the trip and the window: 1200 s bad
 * (T0 .. T0 + 1199), 11 min of nothing, 1200 s bad (T0 + 1860 .. T0 + 3059): 2400 bad
 * samples, but no trip holds 1800: no verdict. 600 s more bad (T0 + 3060 .. T0 + 3659): the
 * second trip's window of 1800 from T0 + 1860 to T0 + 3659, conversion 0.30. */
START_TEST(scr_window_ends_with_the_trip)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_scr_case_t bad = {0, 1L << 30, 1};
    s_feed(&fd, T0, 1200, s_scr_gen, &bad);
    s_feed(&fd, T0 + 1860, 1200, s_scr_gen, &bad);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_SCR_INEFFECTIVE), 0);
    s_feed(&fd, T0 + 3060, 600, s_scr_gen, &bad);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_SCR_INEFFECTIVE), 1);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_SCR_INEFFECTIVE, 0);
    ck_assert_int_eq(g->first_us, US(T0 + 1860));
    ck_assert_int_eq(g->last_us, US(T0 + 3659));
    ck_assert_double_eq_tol(g->measured, 1 - 560.0 / 800, 1e-9);
    vem_rules_flush(v, &cfg, s_collect, &log);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_SCR_INEFFECTIVE), 1);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A reload of scr_minutes keeps the newest minutes held: 1500 bad samples (25 minutes, 0 ..
 * 1499) under 30 minutes, no verdict; reloaded to 20, the next whole minute (1500 .. 1559)
 * makes a window of the newest 20: minutes 6 .. 25, samples 360 .. 1559, 1200 samples at
 * 0.30: the verdict at T0 + 1559, from T0 + 360. The ring then holds 20 minutes, not 30. */
START_TEST(scr_window_across_a_reload_of_its_length)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_scr_case_t bad = {0, 1L << 30, 1};
    s_feed(&fd, T0, 1500, s_scr_gen, &bad);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_SCR_INEFFECTIVE), 0);
    size_t before = vem_rules_vehicle_bytes(v);
    cfg.scr_minutes = 20; /* the reload */
    s_feed(&fd, T0 + 1500, 60, s_scr_gen, &bad);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_SCR_INEFFECTIVE), 1);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_SCR_INEFFECTIVE, 0);
    ck_assert_int_eq(g->first_us, US(T0 + 360));
    ck_assert_int_eq(g->last_us, US(T0 + 1559));
    ck_assert_int_eq(s_int(g->ev, "samples.count"), 1200);
    ck_assert_double_eq_tol(g->measured, 1 - 560.0 / 800, 1e-9);
    ck_assert_uint_eq(vem_rules_vehicle_bytes(v), before - 10 * sizeof(vem_rules_scr_minute_t));
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* NOx high while the coolant is cold: warm only from 20 min after the start (sample 1200);
 * 600 warm samples above 500 ppm end at sample 1799. */
START_TEST(nox_high_warm_after_twenty_minutes)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, NULL);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_phys_t p = s_cruise;
    p.coolant = 40;
    p.nox_down = 800;
    s_feed(&fd, T0, 1799, s_const, &p);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_HIGH), 0);
    s_feed(&fd, T0 + 1799, 1, s_const, &p);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_HIGH), 1);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_NOX_HIGH, 0);
    ck_assert_int_eq(g->first_us, US(T0 + 1200));
    ck_assert_int_eq(g->last_us, US(T0 + 1799));
    ck_assert_double_eq_tol(g->measured, 800, 1e-9);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A reload (SIGHUP) that makes a span's limit more lenient while the span is open: the samples
 * judged before it that the limit in force no longer counts must not make the verdict.
 *   obd.reagent_empty (rules.md: level "at or below reagent_min_pct ... violation after
 *   reagent_minutes"): 900 samples at 1.6 % (raw 4) are at or below 2.0; reload to 1.0;
 *   900 samples at 0.8 % (raw 2). At or below 1.0: only the last 900, < 1800: no verdict.
 *   900 more at 0.8 %: 1800 from T0 + 900 to T0 + 2699: the violation, from T0 + 900.
 *   obd.nox_high ("downstream NOx above nox_ppm_max for nox_minutes of warm operation"),
 *   no engine figures: 300 warm samples at 600 ppm are above 500; reload to 700; 300 at 800.
 *   Above 700: only the last 300, < 600: no verdict. 300 more at 800: 600 from T0 + 300 to
 *   T0 + 899: the notice, from T0 + 300, its lowest 800.
 * Then a second lenient reload while the judged span goes on: reagent to 0.5 with samples at
 * 0.4 % (raw 1), NOx to 850 with samples at 900 ppm, for two more spans' worth: still low (or
 * high) under the limit in force, so the same episode goes on and no second verdict comes,
 * although the span holds samples the new limit would not count (a judged span stays one). */
START_TEST(spans_across_a_reload_count_by_the_limit_in_force)
{
    for (int k = 0; k < 2; k++) {
        vem_rules_config_t cfg = s_defaults();
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, k == 0 ? &s_truck : NULL);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        vem_rule_t rule = k == 0 ? VEM_RULE_OBD_REAGENT_EMPTY : VEM_RULE_OBD_NOX_HIGH;
        long half = k == 0 ? 900 : 300;
        s_phys_t p = s_cruise;
        if (k == 0)
            p.reagent = 1.6;
        else
            p.nox_down = 600;
        s_feed(&fd, T0, half, s_const, &p);
        if (k == 0) {
            cfg.reagent_min_pct = 1.0; /* the reload */
            p.reagent = 0.8;
        } else {
            cfg.nox_ppm_max = 700;
            p.nox_down = 800;
        }
        s_feed(&fd, T0 + half, half, s_const, &p);
        ck_assert_msg(s_count(&log, rule) == 0, "%s fired on samples the reload set free",
                      vem_rules_name(rule));
        s_feed(&fd, T0 + 2 * half, half, s_const, &p);
        ck_assert_int_eq(s_count(&log, rule), 1);
        const s_got_t *g = s_nth(&log, rule, 0);
        ck_assert_int_eq(g->first_us, US(T0 + half));
        ck_assert_int_eq(g->last_us, US(T0 + 3 * half - 1));
        ck_assert_int_eq(s_int(g->ev, "samples.count"), 2 * half);
        if (k == 0)
            ck_assert_double_eq_tol(s_real(g->ev, "reagent_pct_max"), 0.8, 1e-9);
        else
            ck_assert_double_eq_tol(g->measured, 800, 1e-9);
        if (k == 0) {
            cfg.reagent_min_pct = 0.5;
            p.reagent = 0.4;
        } else {
            cfg.nox_ppm_max = 850;
            p.nox_down = 900;
        }
        s_feed(&fd, T0 + 3 * half, 4 * half, s_const, &p);
        ck_assert_msg(s_count(&log, rule) == 1, "%s judged one run twice", vem_rules_name(rule));
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* Frozen sensor: 300 samples at 123.45 ppm, 10 with a 0xFFFF marker, 300 more at 123.45 with
 * rpm 1400/1460 (span 60): the markers neither break nor extend the span, so its 600th
 * sample is t = T0 + 609. A different valid value in their place breaks it: 300 + 300. */
static void s_frozen_gen(long i, s_phys_t *p, const void *arg)
{
    *p = s_cruise;
    p->nox_down = 123.45;
    p->rpm = 1400 + (i % 2) * 60;
    if (i >= 300 && i < 310)
        p->nox_down = *(const double *)arg;
}

START_TEST(sentinels_inside_a_frozen_span)
{
    vem_rules_config_t cfg = s_defaults();
    const double middle[] = {NAN, 130};
    for (int k = 0; k < 2; k++) {
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_feed(&fd, T0, 620, s_frozen_gen, &middle[k]);
        int at = -1;
        int n = s_count_kind(&log, VEM_RULE_OBD_TAMPER, "frozen_nox", &at);
        if (k == 0) {
            ck_assert_int_eq(n, 1);
            ck_assert_int_eq(log.v[at].first_us, US(T0));
            ck_assert_int_eq(log.v[at].last_us, US(T0 + 609));
            ck_assert_int_eq(s_int(log.v[at].ev, "samples.count"), 600);
            ck_assert_double_eq_tol(s_real(log.v[at].ev, "rpm_max"), 1460, 1e-9);
            ck_assert_double_eq_tol(s_real(log.v[at].ev, "nox_down_ppm"), 123.45, 1e-9);
        } else {
            ck_assert_int_eq(n, 0);
        }
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* Reagent low for 900 samples, then the terminal logs in again (its link dropped; no logout),
 * then 900 more: one trip, so the span reaches 1800 and obd.reagent_empty fires from T0. With a
 * logout before the login the trip ends and neither half is long enough. */
START_TEST(relogin_without_logout_continues_the_trip)
{
    vem_rules_config_t cfg = s_defaults();
    s_phys_t p = s_cruise;
    p.reagent = 1.2;
    for (int k = 0; k < 2; k++) {
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_feed(&fd, T0, 900, s_const, &p);
        if (k == 1)
            s_cmd(&fd, VEM_HJ1239_CMD_LOGOUT, T0 + 900);
        s_cmd(&fd, VEM_HJ1239_CMD_LOGIN, T0 + 905);
        fd.cmd = VEM_HJ1239_CMD_REALTIME;
        s_feed(&fd, T0 + 905, 900, s_const, &p);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_REAGENT_EMPTY), k == 0 ? 1 : 0);
        if (k == 0) {
            const s_got_t *g = s_nth(&log, VEM_RULE_OBD_REAGENT_EMPTY, 0);
            ck_assert_int_eq(g->first_us, US(T0));
            ck_assert_int_eq(g->last_us, US(T0 + 905 + 899));
        }
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* Reagent low for 900 samples, a gap, 900 more: a gap of 601 s ends the trip and the span
 * with it (900 + 900 never makes 1800 in one trip); a gap of exactly 600 s does not. */
START_TEST(trip_split_by_a_ten_minute_gap)
{
    vem_rules_config_t cfg = s_defaults();
    s_phys_t p = s_cruise;
    p.reagent = 1.2;
    const int64_t gaps[] = {601, 600};
    for (int k = 0; k < 2; k++) {
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_feed(&fd, T0, 900, s_const, &p);
        s_feed(&fd, T0 + 899 + gaps[k], 900, s_const, &p);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_REAGENT_EMPTY), k);
        if (k == 1) {
            const s_got_t *g = s_nth(&log, VEM_RULE_OBD_REAGENT_EMPTY, 0);
            ck_assert_int_eq(g->first_us, US(T0));
            ck_assert_int_eq(g->last_us, US(T0 + 899 + 600 + 899));
        }
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* obd.reagent_empty verdicts of 900 + 900 samples of low reagent (1800 make one), the second
 * 900 received late_s after their time, with intake's paused total then paused_us (0 before).
 * Live, a sweep runs 1 us before they come, with the paused total then; replayed, none does.
 * With a pause, a sweep five hours into a pause of five hours less a minute must end nothing. */
static int s_reagent_across_gap(int64_t late_s, int64_t paused_us, bool live)
{
    vem_rules_config_t cfg = s_defaults();
    s_phys_t p = s_cruise;
    p.reagent = 1.2;
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_feed(&fd, T0, 900, s_const, &p); /* last receipt: T0 + 899 + 1.5 s, paused 0 */
    int64_t last_rx = US(T0 + 899) + 1500000;
    if (paused_us)
        ck_assert_int_eq(vem_rules_on_silence(v, &cfg, last_rx + US(5 * 3600), US(5 * 3600 - 60),
                                              s_collect, &log),
                         0);
    fd.late_s = late_s; /* the next frame holds T0 + 900 .. T0 + 909 */
    fd.paused_us = paused_us;
    if (live)
        vem_rules_on_silence(v, &cfg, US(T0 + 909 + late_s) + 1500000 - 1, paused_us, s_collect,
                             &log);
    s_feed(&fd, T0 + 900, 900, s_const, &p);
    int n = s_count(&log, VEM_RULE_OBD_REAGENT_EMPTY);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
    return n;
}

/* A link that drops for 21 minutes, then the terminal re-sends what it held (0x03): the data
 * has no gap, but nothing was received for 1270 s (the first re-sent frame holds T0 + 900 ..
 * T0 + 909 and arrives 1260 s late). Live, the silence sweep ends the trip once nothing was
 * received for twice trip_gap_min (1200 s); a replay of the spool has no sweep. Both must judge
 * the same trips: the pause in receipt (the spool keeps each input's receipt time) ends the
 * trip either way, so 900 + 900 samples of low reagent never make the 1800 of
 * obd.reagent_empty. A pause of exactly 1200 s does not end it: 1800 samples in one trip, one
 * verdict, in both runs. */
START_TEST(receipt_pause_ends_the_trip_in_a_replay_too)
{
    const int64_t late[] = {1260, 1190};
    for (int k = 0; k < 2; k++)
        for (int live = 0; live < 2; live++) {
            int n = s_reagent_across_gap(late[k], 0, live);
            ck_assert_msg(n == k, "pause %lld s, %s: %d verdicts", (long long)(late[k] + 10),
                          live ? "live" : "replay", n);
        }
}
END_TEST

/* The same 1270 s without a frame, but vemd's intake was paused for part of it (spool full:
 * nothing is read, and the trucks' frames wait in their sockets). Silence is measured on the
 * intake clock, receipt less the paused total: paused 70 s, the truck was silent 1200 s, which
 * ends no trip (1800 samples, one verdict); paused 69 s, 1201 s, which does (no verdict). Live
 * (a sweep 1 us before the frame comes, with the paused total then) and replayed alike. A sweep
 * five hours into a pause of five hours less a minute ends nothing either. */
START_TEST(intake_pause_is_no_silence)
{
    const int64_t paused_s[] = {70, 69};
    for (int k = 0; k < 2; k++)
        for (int live = 0; live < 2; live++) {
            int n = s_reagent_across_gap(1260, US(paused_s[k]), live);
            ck_assert_msg(n == 1 - k, "paused %lld of 1270 s, %s: %d verdicts",
                          (long long)paused_s[k], live ? "live" : "replay", n);
        }
}
END_TEST

/* GB 17691 frames carry one time, the last sample's: ten samples in a frame of time T0 + 9
 * are at T0 .. T0 + 9, and the evidence keeps the stored key (sample_time T0 + 9, block k). */
START_TEST(gb17691_sample_times)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    fd.gb17691 = true;
    s_phys_t p = s_cruise;
    p.reagent = 0.4;
    s_feed(&fd, T0, 1800, s_const, &p);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_REAGENT_EMPTY, 0);
    ck_assert_int_eq(g->first_us, US(T0));
    ck_assert_int_eq(g->last_us, US(T0 + 1799));
    ck_assert_str_eq(s_str(g->ev, "samples.from.time"), s_iso(T0));
    ck_assert_str_eq(s_str(g->ev, "samples.from.sample_time"), s_iso(T0 + 9));
    ck_assert_int_eq(s_int(g->ev, "samples.from.block_idx"), 0);
    ck_assert_str_eq(s_str(g->ev, "samples.to.sample_time"), s_iso(T0 + 1799));
    ck_assert_int_eq(s_int(g->ev, "samples.to.block_idx"), 9);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* ---- the work-based window, by hand ------------------------------------------------------- */

/* With T_ref 1000 N.m and 1000 rpm, 1 % of torque is 1000 x 1000 x 2 pi / 60000 / 100 =
 * 1.0471976 kW. Torque 58 % - friction 8 % = 50 %: P = 52.359878 kW, w = P / 3600 =
 * 0.014544410 kWh a sample. Intake 400 kg/h, no fuel: q = 400 kg/h, so a sample's NOx per
 * work is 1000 x 0.001586 x c x 400 / 52.359878 = 12.1161475 x c mg/kWh, whatever the window
 * length when every sample of it is alike. Torque 18 %: 10 %, P = 10.471976 kW,
 * w = 0.0029088821 kWh. */
#define S_MG_PER_PPM 12.1161475077

typedef struct {
    double torque[64], nox[64]; /* per sample; NaN NOx: a 0xFFFF marker */
} s_series_t;

/* n samples at torque % and NOx ppm each. */
static void s_series_fill(s_series_t *s, int n, double torque, double nox)
{
    for (int i = 0; i < n; i++) {
        s->torque[i] = torque;
        s->nox[i] = nox;
    }
}

static void s_series_gen(long i, s_phys_t *p, const void *arg)
{
    const s_series_t *s = arg;
    *p = s_cruise;
    p->rpm = 1000;
    p->friction = 8;
    p->torque = s->torque[i];
    p->nox_down = s->nox[i];
    p->intake = 400;
    p->fuel = 0;
}

/* One trip of n samples from T0 (ended by a logout), with the engine figures given. */
static void s_window_trip(const vem_rules_config_t *cfg, const vem_rules_engine_facts_t *facts,
                          const s_series_t *s, long n, s_log_t *log)
{
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, facts);
    s_feed_t fd;
    s_feed_init(&fd, v, cfg, log);
    s_feed(&fd, T0, n, s_series_gen, s);
    s_cmd(&fd, VEM_HJ1239_CMD_LOGOUT, T0 + n);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}

/* W_ref 0.01 kWh < w: every 50 % sample is a window of its own (D = 1, 52.36 kW >= 20 % of
 * 200 kW = 40 kW: valid). Sample 0 runs at 10 %: 0.0029089 < 0.01, so its window takes sample
 * 1 too: W = 0.0029089 + 0.0145444 = 0.0174533 kWh over D = 2 s, 31.4159 kW < 40: invalid.
 * Samples 1..10 have c = 10, 20, .. 100 ppm: windows 121.16 .. 1211.61 mg/kWh.
 * windows 11, valid 10; nearest rank ceil(0.9 x 10) = 9: 90 ppm, 12.1161475 x 90 =
 * 1090.4533 mg/kWh > 690: fails. Over 690: c > 690 / 12.116 = 56.95, c = 60 .. 100: 5.
 * D_lim = (0.01 x 3600 + 2102.74) / 40 = 53.5 samples: nothing is let go early. */
START_TEST(window_arithmetic)
{
    vem_rules_config_t cfg = s_defaults();
    s_series_t s;
    s.torque[0] = 18;
    s.nox[0] = 500;
    for (int k = 1; k <= 10; k++) {
        s.torque[k] = 58;
        s.nox[k] = 10 * k;
    }
    s_log_t log = {0};
    s_window_trip(&cfg, &s_small, &s, 11, &log);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_WINDOW), 1);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, 0);
    ck_assert_int_eq(g->severity, VEM_SEVERITY_VIOLATION);
    ck_assert_int_eq(g->first_us, US(T0));
    ck_assert_int_eq(g->last_us, US(T0 + 10));
    ck_assert_double_eq_tol(g->measured, S_MG_PER_PPM * 90, 1e-3);
    ck_assert_double_eq(g->limit, 690);
    ck_assert_int_eq(s_int(g->ev, "windows"), 11);
    ck_assert_int_eq(s_int(g->ev, "valid_windows"), 10);
    ck_assert_int_eq(s_int(g->ev, "over_limit_windows"), 5);
    ck_assert_int_eq(s_int(g->ev, "rank"), 9);
    ck_assert_int_eq(s_int(g->ev, "percentile"), 90);
    ck_assert(json_is_true(json_object_get(g->ev, "percentile_exact")));
    ck_assert_int_eq(s_int(g->ev, "trip.samples.count"), 11);
    /* around rank 9: ranks 7, 8, 9, 10 (there is no 11th), the windows of samples 7 .. 10 */
    json_t *around = json_object_get(g->ev, "around");
    ck_assert_uint_eq(json_array_size(around), 4);
    for (int k = 0; k < 4; k++) {
        json_t *w = json_array_get(around, k);
        ck_assert_int_eq(s_int(w, "rank"), 7 + k);
        ck_assert_str_eq(s_str(w, "start"), s_iso(T0 + 7 + k));
        ck_assert_str_eq(s_str(w, "end"), s_iso(T0 + 7 + k));
        ck_assert_double_eq_tol(s_real(w, "nox_mg_kwh"), S_MG_PER_PPM * 10 * (7 + k), 1e-3);
    }
    s_log_free(&log);

    /* every sample at 10 %: windows of 4 samples (3 x 0.0029089 = 0.0087266 < 0.01 <=
     * 0.0116355), 0.0116355 x 3600 / 4 = 10.47 kW: all 8 complete windows invalid, so no percentile
     * and no verdict */
    for (int k = 0; k <= 10; k++)
        s.torque[k] = 18;
    s_window_trip(&cfg, &s_small, &s, 11, &log);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_WINDOW), 0);
    s_log_free(&log);
}
END_TEST

/* The percentile just below and just above 690: c = 56.90 ppm (raw 5138) gives
 * 12.1161475 x 56.90 = 689.4088 mg/kWh in every window: no verdict; c = 56.95 (raw 5139)
 * gives 690.0146: above. */
START_TEST(window_at_the_limit)
{
    vem_rules_config_t cfg = s_defaults();
    const double c[] = {56.90, 56.95};
    for (int k = 0; k < 2; k++) {
        s_series_t s;
        s_series_fill(&s, 10, 58, c[k]);
        s_log_t log = {0};
        s_window_trip(&cfg, &s_small, &s, 10, &log);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_WINDOW), k);
        if (k == 1)
            ck_assert_double_eq_tol(s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, 0)->measured, 690.0146,
                                    1e-3);
        s_log_free(&log);
    }
}
END_TEST

/* A reload in the middle of a trip (rules.nox_window_mg_kwh 690 -> 700, rules.nox_percentile
 * 90 -> 50): the trip's windows were judged against the figures it started with (the window
 * state keeps them, rules_window.c), so its verdict must say those: c = 56.95 ppm gives
 * 690.0146 mg/kWh in each of the 10 windows (window_at_the_limit), above 690, and the verdict
 * reads measured 690.0146 against limit 690 at the 90th percentile (rank ceil(0.9 x 10) = 9).
 * Reporting the reloaded 700 would show a violation whose measured value is below its limit. */
START_TEST(window_verdict_says_the_limit_it_was_judged_by)
{
    vem_rules_config_t cfg = s_defaults();
    s_series_t s;
    s_series_fill(&s, 10, 58, 56.95);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_small);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_feed(&fd, T0, 5, s_series_gen, &s);
    cfg.nox_window_mg_kwh = 700; /* the reload */
    cfg.nox_percentile = 50;
    s_feed(&fd, T0 + 5, 5, s_series_gen, &s);
    s_cmd(&fd, VEM_HJ1239_CMD_LOGOUT, T0 + 10);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_WINDOW), 1);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, 0);
    ck_assert_double_eq_tol(g->measured, 690.0146, 1e-3);
    ck_assert_double_eq(g->limit, 690);
    ck_assert_int_eq(s_int(g->ev, "percentile"), 90);
    ck_assert_int_eq(s_int(g->ev, "rank"), 9);
    ck_assert_double_gt(g->measured, g->limit);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* W_ref 0.1 kWh: 6 samples make 0.0872665 < 0.1, 7 make 0.1018109: a window is 7 samples.
 * Two trips of 10 samples (gap 601 s): windows start at 0 .. 3 in each, 4 per trip, none
 * reaching into the other trip; a gap of 600 s makes one trip of 20: windows 0 .. 13 = 14.
 * c = 100 ppm: 1211.61 mg/kWh. D_lim = (360 + 2102.74) / 40 = 61.6: none let go early. */
START_TEST(windows_never_bridge_a_trip)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_engine_facts_t facts = s_small;
    facts.whtc_work_kwh = 0.1;
    s_series_t s;
    s_series_fill(&s, 20, 58, 100);
    const int64_t gaps[] = {601, 600};
    for (int k = 0; k < 2; k++) {
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &facts);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_feed(&fd, T0, 10, s_series_gen, &s);
        s_feed(&fd, T0 + 9 + gaps[k], 10, s_series_gen, &s);
        vem_rules_flush(v, &cfg, s_collect, &log);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_WINDOW), 2 - k);
        const s_got_t *g = s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, 0);
        ck_assert_int_eq(s_int(g->ev, "windows"), k == 0 ? 4 : 14);
        ck_assert_int_eq(s_int(g->ev, "valid_windows"), k == 0 ? 4 : 14);
        ck_assert_double_eq_tol(g->measured, S_MG_PER_PPM * 100, 1e-3);
        if (k == 0) {
            ck_assert_int_eq(g->last_us, US(T0 + 9));
            const s_got_t *h = s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, 1);
            ck_assert_int_eq(h->first_us, US(T0 + 9 + 601));
            ck_assert_int_eq(s_int(h->ev, "windows"), 4);
            ck_assert_str_ne(g->id, h->id);
        }
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* A 0xFFFF marker at sample 3 leaves it out of the series: 9 samples, windows of 7 start at
 * valid samples 0, 1, 2 (3 windows, not 4), and the first spans T0 .. T0 + 7. All alike
 * (c = 100): the equal values rank by start, the earliest highest. */
START_TEST(sentinel_inside_a_window)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_engine_facts_t facts = s_small;
    facts.whtc_work_kwh = 0.1;
    s_series_t s;
    for (int i = 0; i < 10; i++) {
        s.torque[i] = 58;
        s.nox[i] = i == 3 ? NAN : 100;
    }
    s_log_t log = {0};
    s_window_trip(&cfg, &facts, &s, 10, &log);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, 0);
    ck_assert_int_eq(s_int(g->ev, "window_samples"), 9);
    ck_assert_int_eq(s_int(g->ev, "windows"), 3);
    ck_assert_int_eq(s_int(g->ev, "valid_windows"), 3);
    ck_assert_int_eq(s_int(g->ev, "rank"), 3); /* ceil(0.9 x 3) */
    ck_assert_double_eq_tol(g->measured, S_MG_PER_PPM * 100, 1e-3);
    json_t *top = json_array_get(json_object_get(g->ev, "around"), 2);
    ck_assert_int_eq(s_int(top, "rank"), 3);
    ck_assert_str_eq(s_str(top, "start"), s_iso(T0));
    ck_assert_str_eq(s_str(top, "end"), s_iso(T0 + 7));
    s_log_free(&log);
}
END_TEST

/* Without the registry's figures there is no window: NOx 800 ppm in warm operation is an
 * obd.nox_high notice after 10 min and the trip ends without obd.nox_window. Figures beyond any
 * engine built are damage and count as none: a reference torque of 10^9 N m lets a sample
 * report 250 % x 10^9 x 8031.875 rpm x 2 pi / 60 / 1000 = 2.1 x 10^9 kW, above
 * VEM_RULES_POWER_MAX_KW (10^9), though its window would span (2.7e7 x 3600 + 2.1e9) / (0.2 x
 * 3e8) = 1655 s, within the ring's bound. */
START_TEST(no_figures_falls_back_to_nox_high)
{
    vem_rules_config_t cfg = s_defaults();
    const vem_rules_engine_facts_t partial = {2000, 350, 0, VEM_FUEL_DIESEL}; /* no WHTC work */
    const vem_rules_engine_facts_t absurd = {1e9, 3e8, 2.7e7, VEM_FUEL_DIESEL};
    const vem_rules_engine_facts_t *facts[] = {NULL, &partial, &absurd};
    for (int k = 0; k < 3; k++) {
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, facts[k]);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_phys_t p = s_cruise;
        p.nox_down = 800;
        s_feed(&fd, T0, 1200, s_const, &p);
        vem_rules_flush(v, &cfg, s_collect, &log);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_HIGH), 1);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_WINDOW), 0);
        s_log_free(&log);
        /* the registry learns the figures: the next trip has a window, and no fallback */
        vem_rules_vehicle_set_facts(v, &s_truck);
        s_feed(&fd, T0 + 7200, 3600, s_const, &p);
        vem_rules_flush(v, &cfg, s_collect, &log);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_HIGH), 0);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_WINDOW), 1);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* ---- obd.nox_high where the window cannot judge -------------------------------------------- */

/* The truck of s_truck with 1400 ppm downstream NOx (raw (1400 + 200) / 0.05 = 32000), every
 * other input as s_cruise: warm (coolant 85 >= 70) from the first sample. */
static s_phys_t s_dirty(void)
{
    s_phys_t p = s_cruise;
    p.nox_down = 1400;
    return p;
}

/* Sample i of s_gaps: friction 0xFF ("not available"), except that the samples i < 1800 with
 * i mod 600 = 599 have every input of the window. */
static void s_gaps(long i, s_phys_t *p, const void *arg)
{
    (void)arg;
    *p = s_dirty();
    if (!(i < 1800 && i % 600 == 599))
        p->friction = NAN;
}

/* rules.md: obd.nox_high is "downstream NOx above nox_ppm_max (500) for nox_minutes (10) of
 * warm operation"; the window judges the samples that have its inputs. A truck with registry
 * figures whose friction torque is 0xFF for a whole trip gives the window nothing, so its
 * 1400 ppm are judged by obd.nox_high: 600 qualifying samples T0 .. T0 + 599, the notice at
 * the 600th, measured = the span's lowest, 1400; the 300 samples after it are the same episode.
 * The window has no sample: no obd.nox_window. */
START_TEST(nox_high_when_the_window_lacks_inputs)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_phys_t p = s_dirty();
    p.friction = NAN;
    s_feed(&fd, T0, 599, s_const, &p);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_HIGH), 0);
    s_feed(&fd, T0 + 599, 301, s_const, &p);
    vem_rules_flush(v, &cfg, s_collect, &log);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_HIGH), 1);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_WINDOW), 0);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_NOX_HIGH, 0);
    ck_assert_int_eq(g->severity, VEM_SEVERITY_NOTICE);
    ck_assert_int_eq(g->first_us, US(T0));
    ck_assert_int_eq(g->last_us, US(T0 + 599));
    ck_assert_double_eq_tol(g->measured, 1400, 1e-9);
    ck_assert_double_eq_tol(g->limit, 500, 1e-9);
    ck_assert_int_eq(s_int(g->ev, "samples.count"), 600);
    ck_assert_str_eq(s_str(g->ev, "samples.from.time"), s_iso(T0));
    ck_assert_str_eq(s_str(g->ev, "samples.to.time"), s_iso(T0 + 599));
    ck_assert_str_eq(s_str(g->ev, "reason"), "samples without the window's inputs: friction_pct");
    /* the id is that of (obd.nox_high, VIN, the span's start), as without figures */
    char id[VEM_RULES_ID_LEN];
    vem_rules_id(VEM_RULE_OBD_NOX_HIGH, VIN, "t=1709596800000000", id);
    ck_assert_str_eq(g->id, id);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* The same truck at exactly 500 ppm (raw 14000) for 20 min: at the limit, not above it
 * (rules.md), nothing. At 500.05 ppm (raw 14001) for 600 samples: the notice, T0 .. T0 + 599. */
START_TEST(nox_high_without_window_inputs_at_the_limit)
{
    vem_rules_config_t cfg = s_defaults();
    const double ppm[] = {500, 500.05};
    const long n[] = {1200, 600};
    for (int k = 0; k < 2; k++) {
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_phys_t p = s_cruise;
        p.nox_down = ppm[k];
        p.friction = NAN;
        s_feed(&fd, T0, n[k], s_const, &p);
        vem_rules_flush(v, &cfg, s_collect, &log);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_HIGH), k);
        if (k) {
            const s_got_t *g = s_nth(&log, VEM_RULE_OBD_NOX_HIGH, 0);
            ck_assert_int_eq(g->first_us, US(T0));
            ck_assert_int_eq(g->last_us, US(T0 + 599));
            ck_assert_double_eq_tol(g->measured, 500.05, 1e-9);
        }
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* A sample the window can use is the window's, and ends a nox_high span: s_gaps gives spans of
 * 599 samples (T0 .. T0 + 598, T0 + 600 .. T0 + 1198, T0 + 1200 .. T0 + 1798), each ended one
 * short of 600 by a usable sample, so nothing (were the usable samples neutral, the 600th
 * qualifying sample would be T0 + 600). From T0 + 1800 on friction is 0xFF throughout: the
 * span T0 + 1800 .. T0 + 2399 makes the notice at its 600th sample. */
START_TEST(window_samples_break_the_nox_high_span)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_feed(&fd, T0, 2399, s_gaps, NULL);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_HIGH), 0);
    s_feed_times(&fd, (const int64_t[]){T0 + 2399}, 1, s_gaps, NULL);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_HIGH), 1);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_NOX_HIGH, 0);
    ck_assert_int_eq(g->first_us, US(T0 + 1800));
    ck_assert_int_eq(g->last_us, US(T0 + 2399));
    ck_assert_int_eq(s_int(g->ev, "samples.count"), 600);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A truck with figures and every input valid is judged by the window alone: an hour at 1400 ppm
 * gives no obd.nox_high, and the window's verdict. Every window has the same ratio:
 * P = (60 - 8) / 100 x 2000 x 1400 x 2 pi / 60000 = 152.4720 kW (>= 20 % of 350), q_exh =
 * 600 + 30 x 0.835 = 625.05 kg/h, NOx 0.001586 x 1400 x 625.05 = 1387.861 g/h: 1387.861 /
 * 152.4720 = 9.102401 g/kWh = 9102.40 mg/kWh > 690. */
START_TEST(window_truck_gets_no_nox_high)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_phys_t p = s_dirty();
    s_feed(&fd, T0, 3600, s_const, &p);
    vem_rules_flush(v, &cfg, s_collect, &log);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_HIGH), 0);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_WINDOW), 1);
    ck_assert_double_eq_tol(s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, 0)->measured, 9102.40, 0.01);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* Many single-sample windows (W_ref 0.01 kWh, as in window_arithmetic), sample k at
 * c = 10 + 0.05 x ((k x 7919) mod N) ppm: every value once, 12.1161475 x c mg/kWh each. The
 * trip keeps only the largest 2048 (+ 256) windows. N = 5000: rank ceil(0.9 x 5000) = 4500,
 * m = 4499, c = 234.95, 2846.6888 mg/kWh, the 501st largest: kept, exact; around it ranks
 * 4498 .. 4502. N = 25000: the percentile (rank 22500, c = 1134.95) is the 2501st largest, not
 * kept: the value reported is an upper bound, marked so, and the verdict still exact: over
 * 690 are c >= 56.95 (m >= 939), 25000 - 939 = 24061. */
static void s_perm_gen(long i, s_phys_t *p, const void *arg)
{
    long n = *(const long *)arg;
    *p = s_cruise;
    p->rpm = 1000;
    p->torque = 58;
    p->friction = 8;
    p->intake = 400;
    p->fuel = 0;
    p->nox_down = 10 + 0.05 * (double)((i * 7919) % n);
}

START_TEST(window_percentile_after_selection)
{
    vem_rules_config_t cfg = s_defaults();
    const long sizes[] = {5000, 25000};
    for (int k = 0; k < 2; k++) {
        long n = sizes[k];
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_small);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_feed(&fd, T0, n, s_perm_gen, &n);
        vem_rules_flush(v, &cfg, s_collect, &log);
        const s_got_t *g = s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, 0);
        ck_assert_int_eq(s_int(g->ev, "valid_windows"), n);
        ck_assert_int_eq(s_int(g->ev, "rank"), n * 9 / 10);
        if (k == 0) {
            ck_assert(json_is_true(json_object_get(g->ev, "percentile_exact")));
            ck_assert_double_eq_tol(g->measured, S_MG_PER_PPM * 234.95, 1e-3);
            json_t *around = json_object_get(g->ev, "around");
            ck_assert_uint_eq(json_array_size(around), 5);
            for (int j = 0; j < 5; j++) {
                json_t *w = json_array_get(around, j);
                ck_assert_int_eq(s_int(w, "rank"), 4498 + j);
                ck_assert_double_eq_tol(s_real(w, "nox_mg_kwh"),
                                        S_MG_PER_PPM * (10 + 0.05 * (4497 + j)), 1e-3);
            }
        } else {
            ck_assert(json_is_false(json_object_get(g->ev, "percentile_exact")));
            ck_assert_double_ge(g->measured, S_MG_PER_PPM * 1134.95 - 1e-3);
            ck_assert_int_eq(s_int(g->ev, "over_limit_windows"), 24061);
        }
        ck_assert_uint_le(vem_rules_vehicle_bytes(v), 65536);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* ---- the work-based window against an independent computation ----------------------------- */

typedef struct {
    int64_t t[4096];
    uint32_t raw[4096][7]; /* torque, friction, rpm, fuel, nox_up, nox_down, intake */
    long n;
} s_csv_t;

static void s_csv_gen(long i, s_phys_t *p, const void *arg)
{
    (void)i;
    (void)arg;
    *p = s_cruise; /* the raw values are set after vem_test_stream_block: see s_csv_feed */
}

/* Feeds the CSV series, its raw values exactly as written. */
static void s_csv_feed(s_feed_t *fd, const s_csv_t *csv)
{
    static const vem_hj1239_field_t fields[7] = {
        VEM_HJ1239_F_TORQUE, VEM_HJ1239_F_FRICTION, VEM_HJ1239_F_RPM,   VEM_HJ1239_F_FUEL_RATE,
        VEM_HJ1239_F_NOX_UP, VEM_HJ1239_F_NOX_DOWN, VEM_HJ1239_F_INTAKE};
    for (long i = 0; i < csv->n;) {
        long k = 0;
        while (i + k < csv->n && k < 10 && (k == 0 || csv->t[i + k] == csv->t[i + k - 1] + 1))
            k++;
        s_envelope(fd->f, VEM_HJ1239_CMD_REALTIME, T0 + csv->t[i + k - 1]);
        fd->f->layout = VEM_HJ1239_LAYOUT_BLOCK_TIME;
        for (long j = 0; j < k; j++) {
            s_phys_t p;
            s_csv_gen(i + j, &p, NULL);
            vem_hj1239_block_t *b = &fd->f->blocks[fd->f->nblocks++];
            vem_test_stream_block(b, T0 + csv->t[i + j], &p);
            for (int c = 0; c < 7; c++)
                b->raw[fields[c]] = csv->raw[i + j][c];
            b->novalue = vem_hj1239_novalue(b);
        }
        s_send(fd);
        i += k;
    }
}

static void s_csv_load(s_csv_t *csv)
{
    const char *dir = getenv("VEM_TEST_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/rules/nox_window.csv", dir ? dir : "tests/data");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char line[256];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "t,torque,friction,rpm,fuel,nox_up,nox_down,intake\n");
    csv->n = 0;
    while (fgets(line, sizeof line, f)) {
        ck_assert_int_lt(csv->n, 4096);
        long long t;
        uint32_t *r = csv->raw[csv->n];
        ck_assert_int_eq(sscanf(line, "%lld,%u,%u,%u,%u,%u,%u,%u", &t, &r[0], &r[1], &r[2], &r[3],
                                &r[4], &r[5], &r[6]),
                         8);
        csv->t[csv->n++] = t;
    }
    fclose(f);
    ck_assert_int_eq(csv->n, 3600);
}

typedef struct {
    int trip;
    long samples, valid_samples, first, last, windows, valid, over, rank, p_start, p_end;
    double p;
} s_trip_want_t;

/* What `python3 tests/data/rules/nox_window.py` printed (engine figures T_ref 1000 N.m,
 * P_rated 200 kW, W_ref 5 kWh):
 *   trip 1: samples 2400 (t 0..2998), valid samples 2348
 *     windows 2153, valid 1251, over 690: 993, rank 1126
 *     p90 = 933.1608 mg/kWh (window t 2530..2917), fails True
 *   trip 2: samples 1200 (t 3659..4858), valid samples 1185
 *     windows 684, valid 156, over 690: 0, rank 141
 *     p90 = 437.7444 mg/kWh (window t 3772..4147), fails False
 * Trip 2 passes at 690; with the limit at 1 mg/kWh it fails too and shows its figures. */
START_TEST(nox_window_matches_independent_computation)
{
    static s_csv_t csv;
    s_csv_load(&csv);
    const vem_rules_engine_facts_t facts = {1000, 200, 5, VEM_FUEL_DIESEL};
    const s_trip_want_t want[2] = {
        {1, 2400, 2348, 0, 2998, 2153, 1251, 993, 1126, 2530, 2917, 933.1608},
        {2, 1200, 1185, 3659, 4858, 684, 156, 156, 141, 3772, 4147, 437.7444},
    };
    for (int run = 0; run < 2; run++) {
        vem_rules_config_t cfg = s_defaults();
        if (run == 1)
            cfg.nox_window_mg_kwh = 1; /* every valid window over */
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &facts);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_csv_feed(&fd, &csv);
        vem_rules_flush(v, &cfg, s_collect, &log);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_WINDOW), run == 0 ? 1 : 2);
        const s_got_t *g = s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, run);
        const s_trip_want_t *w = &want[run];
        ck_assert_int_eq(g->first_us, US(T0 + w->first));
        ck_assert_int_eq(g->last_us, US(T0 + w->last));
        ck_assert_int_eq(s_int(g->ev, "trip.samples.count"), w->samples);
        ck_assert_int_eq(s_int(g->ev, "window_samples"), w->valid_samples);
        ck_assert_int_eq(s_int(g->ev, "windows"), w->windows);
        ck_assert_int_eq(s_int(g->ev, "valid_windows"), w->valid);
        ck_assert_int_eq(s_int(g->ev, "over_limit_windows"), run == 0 ? w->over : w->valid);
        ck_assert_int_eq(s_int(g->ev, "rank"), w->rank);
        ck_assert_double_eq_tol(g->measured, w->p, 1e-3);
        ck_assert(json_is_true(json_object_get(g->ev, "percentile_exact")));
        json_t *at = json_array_get(json_object_get(g->ev, "around"), 2);
        ck_assert_int_eq(s_int(at, "rank"), w->rank);
        ck_assert_str_eq(s_str(at, "start"), s_iso(T0 + w->p_start));
        ck_assert_str_eq(s_str(at, "end"), s_iso(T0 + w->p_end));
        ck_assert_double_eq_tol(s_real(at, "nox_mg_kwh"), w->p, 1e-3);
        /* judged when trip 2's data reached backlog_wait_min (10) after its first sample, the
         * hole before it not filled: trip 1 is 120 + 120 frames of 10, then 60 more */
        if (run == 0)
            ck_assert_int_eq(g->spool_seq, 241 + 60);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* ---- roadside chains ---------------------------------------------------------------------- */

#define DAY 86400LL

typedef struct {
    int64_t t; /* seconds */
    const char *id;
    double no, opacity, ringelmann;
    bool invalid; /* the station says not valid */
    double speed; /* 0: 40 km/h, inside the window */
    int expect;   /* verdicts on this reading */
    vem_severity_t severity;
    int readings; /* in the evidence of the (last) verdict */
    int same_as;  /* step whose verdict id this one repeats; -1: a new id */
} s_rsd_step_t;

typedef struct {
    const char *name;
    vem_rules_fuel_t fuel;
    bool column_b;
    int nsteps;
    s_rsd_step_t steps[5];
} s_rsd_case_t;

#define S_NO(t, id, no, expect, sev, readings, same)                                               \
    {                                                                                              \
        t, id, no, NAN, NAN, false, 0, expect, sev, readings, same                                 \
    }
#define V VEM_SEVERITY_VIOLATION
#define N VEM_SEVERITY_NOTICE

static const s_rsd_case_t s_rsd[] = {
    /* NO limit a = 1500 ppm: 1600 and 1700 exceed; the second completes the rule under the
     * first one's id; a third extends it */
    {"two exceedances a month apart",
     VEM_FUEL_DIESEL,
     false,
     3,
     {S_NO(T0, "r1", 1600, 1, N, 1, -1), S_NO(T0 + 30 * DAY, "r2", 1700, 1, V, 2, 0),
      S_NO(T0 + 31 * DAY, "r3", 1650, 1, V, 3, 0)}},
    /* 1500 is not above 1500: compliant, and it breaks the chain */
    {"a compliant reading at the limit breaks the chain",
     VEM_FUEL_DIESEL,
     false,
     4,
     {S_NO(T0, "r1", 1600, 1, N, 1, -1), S_NO(T0 + DAY, "r2", 1500, 0, N, 0, -1),
      S_NO(T0 + 2 * DAY, "r3", 1600, 1, N, 1, -1), S_NO(T0 + 3 * DAY, "r4", 1501, 1, V, 2, 2)}},
    /* 2024-03-05T08:00 + 6 natural months = 2024-09-05T08:00: still within */
    {"exactly six months apart",
     VEM_FUEL_DIESEL,
     false,
     2,
     {S_NO(T0, "r1", 1600, 1, N, 1, -1), S_NO(T6M, "r2", 1600, 1, V, 2, 0)}},
    {"six months and one day apart",
     VEM_FUEL_DIESEL,
     false,
     2,
     {S_NO(T0, "r1", 1600, 1, N, 1, -1), S_NO(T6M + DAY, "r2", 1600, 1, N, 1, -1)}},
    {"an exceedance the station marked invalid is ignored",
     VEM_FUEL_DIESEL,
     false,
     3,
     {S_NO(T0, "r1", 1600, 1, N, 1, -1),
      {T0 + DAY, "r2", 1600, NAN, NAN, true, 0, 0, N, 0, -1},
      S_NO(T0 + 2 * DAY, "r3", 1600, 1, V, 2, 0)}},
    /* 85 km/h is outside 20 .. 80: the compliant reading does not count, nor break */
    {"a reading outside the window is ignored",
     VEM_FUEL_DIESEL,
     false,
     3,
     {S_NO(T0, "r1", 1600, 1, N, 1, -1),
      {T0 + DAY, "r2", 1400, NAN, NAN, false, 85, 0, N, 0, -1},
      S_NO(T0 + 2 * DAY, "r3", 1600, 1, V, 2, 0)}},
    /* limit b = 1000 ppm */
    {"limit column b",
     VEM_FUEL_DIESEL,
     true,
     2,
     {S_NO(T0, "r1", 1200, 1, N, 1, -1), S_NO(T0 + DAY, "r2", 1000, 0, N, 0, -1)}},
    {"the same reading twice is judged once",
     VEM_FUEL_DIESEL,
     false,
     2,
     {S_NO(T0, "r1", 1600, 1, N, 1, -1), S_NO(T0, "r1", 1600, 0, N, 0, -1)}},
    /* opacity 30 % and Ringelmann 1 are at their limits; 30.5 % and grade 2 are above */
    {"opacity and Ringelmann at and above their limits",
     VEM_FUEL_DIESEL,
     false,
     2,
     {{T0, "r1", NAN, 30, 1, false, 0, 0, N, 0, -1},
      {T0 + DAY, "r2", NAN, 30.5, 2, false, 0, 2, N, 1, -1}}},
    {"gasoline without configured limits",
     VEM_FUEL_GASOLINE,
     false,
     1,
     {S_NO(T0, "r1", 5000, 0, N, 0, -1)}},
    {"fuel unknown here and in the registry",
     VEM_FUEL_UNKNOWN,
     false,
     1,
     {S_NO(T0, "r1", 5000, 0, N, 0, -1)}},
    /* an exceedance older than a compliant reading already seen is judged where its time puts
     * it: alone before the compliant reading, a notice, as in time order; the exceedance after
     * the compliant reading does not join it */
    {"a late exceedance before a compliant reading",
     VEM_FUEL_DIESEL,
     false,
     3,
     {S_NO(T0 + 2 * DAY, "r2", 1400, 0, N, 0, -1), S_NO(T0 + DAY, "r1", 1600, 1, N, 1, -1),
      S_NO(T0 + 3 * DAY, "r3", 1600, 1, N, 1, -1)}},
};

static void s_reading(vem_rsd_reading_t *r, int64_t t, const char *id, vem_rules_fuel_t fuel)
{
    vem_rules_reading_init(r);
    snprintf(r->station_id, sizeof r->station_id, "S01");
    snprintf(r->reading_id, sizeof r->reading_id, "%s", id);
    snprintf(r->plate, sizeof r->plate, "%s", PLATE);
    r->time_us = US(t) + 250000;
    r->fuel = fuel;
    r->valid = true;
    r->speed_kmh = 40;
    r->accel_ms2 = 0.2;
    r->vsp_kw_t = 5;
    r->wind_ms = 2;
    r->slope_pct = 1;
}

START_TEST(roadside_chains)
{
    const s_rsd_case_t *c = &s_rsd[_i];
    vem_rules_config_t cfg = s_defaults();
    cfg.rsd_column = c->column_b ? VEM_RSD_LIMIT_B : VEM_RSD_LIMIT_A;
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    char ids[5][VEM_RULES_ID_LEN] = {{0}};
    for (int k = 0; k < c->nsteps; k++) {
        const s_rsd_step_t *s = &c->steps[k];
        vem_rsd_reading_t r;
        s_reading(&r, s->t, s->id, c->fuel);
        r.no_ppm = s->no;
        r.opacity_pct = s->opacity;
        r.ringelmann = s->ringelmann;
        r.valid = !s->invalid;
        if (s->speed)
            r.speed_kmh = s->speed;
        int before = log.n;
        unsigned got = vem_rules_on_reading(v, &cfg, &r, 100 + k, s_collect, &log);
        ck_assert_msg((int)got == s->expect && log.n - before == s->expect,
                      "%s, step %d: %u verdicts, expected %d", c->name, k, got, s->expect);
        if (!s->expect)
            continue;
        const s_got_t *g = &log.v[log.n - 1];
        memcpy(ids[k], g->id, VEM_RULES_ID_LEN);
        ck_assert_int_eq(g->severity, s->severity);
        ck_assert_int_eq(g->last_us, r.time_us);
        ck_assert_uint_eq(json_array_size(json_object_get(g->ev, "readings")), s->readings);
        ck_assert_uint_eq(g->spool_seq, 100 + k);
        if (s->same_as >= 0)
            ck_assert_str_eq(g->id, ids[s->same_as]);
        for (int j = 0; j < k && s->same_as < 0; j++)
            ck_assert_str_ne(g->id, ids[j]);
    }
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* The evidence of a completed chain, the limit in force and the counters. */
START_TEST(roadside_evidence)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    vem_rsd_reading_t r;
    s_reading(&r, T0, "r1", VEM_FUEL_DIESEL);
    r.no_ppm = 1600;
    vem_rules_on_reading(v, &cfg, &r, 1, s_collect, &log);
    s_reading(&r, T0 + DAY, "r2", VEM_FUEL_DIESEL);
    r.no_ppm = 1700;
    r.wind_ms = NAN; /* a condition not reported cannot be checked: not valid */
    vem_rules_on_reading(v, &cfg, &r, 2, s_collect, &log);
    r.wind_ms = 2;
    vem_rules_on_reading(v, &cfg, &r, 3, s_collect, &log);
    ck_assert_int_eq(log.n, 2);
    const s_got_t *g = &log.v[1];
    ck_assert_int_eq(g->rule, VEM_RULE_RSD_NO);
    ck_assert_int_eq(g->first_us, US(T0) + 250000);
    ck_assert_double_eq(g->measured, 1700);
    ck_assert_double_eq(g->limit, 1500);
    ck_assert_str_eq(s_str(g->ev, "pollutant"), "no_ppm");
    ck_assert_str_eq(s_str(g->ev, "limit_column"), "a");
    json_t *first = json_array_get(json_object_get(g->ev, "readings"), 0);
    ck_assert_str_eq(s_str(first, "station_id"), "S01");
    ck_assert_str_eq(s_str(first, "reading_id"), "r1");
    ck_assert_str_eq(s_str(first, "time"), "2024-03-05T08:00:00.250+08:00");
    char id[VEM_RULES_ID_LEN];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/r1", id);
    ck_assert_str_eq(g->id, id);
    const vem_rules_counts_t *n = vem_rules_vehicle_counts(v);
    ck_assert_uint_eq(n->readings, 3);
    ck_assert_uint_eq(n->readings_invalid, 1);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* Two NO exceedances (1600 ppm > 1500, rules.md rsd.no_exceed) of the plate in colour, fed to
 * v: a notice, then a violation. */
static void s_two_exceedances(vem_rules_vehicle_t *v, const char *color, s_log_t *log)
{
    vem_rules_config_t cfg = s_defaults();
    for (int k = 0; k < 2; k++) {
        vem_rsd_reading_t r;
        s_reading(&r, T0 + k * DAY, k ? "c2" : "c1", VEM_FUEL_DIESEL);
        snprintf(r.plate_color, sizeof r.plate_color, "%s", color);
        r.no_ppm = 1600;
        vem_rules_on_reading(v, &cfg, &r, 1 + k, s_collect, log);
    }
    ck_assert_int_eq(log->n, 2);
}

/* A roadside verdict names the plate with its colour (FIELDS.md plate_color): the reading's
 * for a vehicle known only by plate, the registry's when it gave one (a station may misread
 * the colour); no colour read, none said. The verdict's JSON, which the sinks store and
 * publish, carries it. */
START_TEST(roadside_verdict_carries_plate_colour)
{
    s_log_t log = {0};
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_two_exceedances(v, "yellow", &log);
    for (int i = 0; i < 2; i++) {
        ck_assert_str_eq(log.v[i].plate, PLATE);
        ck_assert_str_eq(log.v[i].plate_color, "yellow");
        ck_assert_str_eq(log.v[i].vin, "");
        ck_assert_str_eq(s_str(log.v[i].json, "plate_color"), "yellow");
        ck_assert(json_is_null(json_object_get(log.v[i].json, "vin")));
    }
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);

    /* the registry's plate and colour win over the station's reading of them */
    v = vem_rules_vehicle_new(VIN, PLATE, NULL);
    vem_rules_vehicle_set_ids(v, NULL, NULL, "blue");
    s_two_exceedances(v, "yellow", &log);
    ck_assert_str_eq(log.v[1].vin, VIN);
    ck_assert_str_eq(log.v[1].plate_color, "blue");
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);

    /* a VIN the registry gave no plate: the reading's plate and colour */
    v = vem_rules_vehicle_new(VIN, NULL, NULL);
    s_two_exceedances(v, "green", &log);
    ck_assert_str_eq(log.v[1].plate, PLATE);
    ck_assert_str_eq(log.v[1].plate_color, "green");
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);

    /* no colour read: none said (JSON null), and a later reading's colour is taken */
    v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_two_exceedances(v, "", &log);
    ck_assert_str_eq(log.v[1].plate_color, "");
    ck_assert(json_is_null(json_object_get(log.v[1].json, "plate_color")));
    s_log_free(&log);
    vem_rules_config_t cfg = s_defaults();
    vem_rsd_reading_t r;
    s_reading(&r, T0 + 2 * DAY, "c3", VEM_FUEL_DIESEL);
    snprintf(r.plate_color, sizeof r.plate_color, "white");
    r.no_ppm = 1700;
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &r, 3, s_collect, &log), 1);
    ck_assert_str_eq(log.v[0].plate_color, "white");
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* Gasoline limits, when set, make their rules judge: CO 4.5 %, HC 600 ppm, NO 2000 ppm. */
START_TEST(roadside_gasoline)
{
    vem_rules_config_t cfg = s_defaults();
    cfg.gas_co_pct = 4.5;
    cfg.gas_hc_ppm = 600;
    cfg.gas_no_ppm = 2000;
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    vem_rules_engine_facts_t petrol = {0, 0, 0, VEM_FUEL_GASOLINE};
    vem_rules_vehicle_set_facts(v, &petrol); /* the registry says gasoline */
    s_log_t log = {0};
    vem_rsd_reading_t r;
    s_reading(&r, T0, "g1", VEM_FUEL_UNKNOWN);
    r.co_pct = 4.5;     /* at the limit */
    r.hc_ppm = 700;     /* above */
    r.no_ppm = 1600;    /* below the gasoline NO limit */
    r.opacity_pct = 90; /* no gasoline opacity rule */
    vem_rules_on_reading(v, &cfg, &r, 1, s_collect, &log);
    ck_assert_int_eq(log.n, 1);
    ck_assert_int_eq(log.v[0].rule, VEM_RULE_RSD_HC);
    ck_assert_str_eq(s_str(log.v[0].ev, "fuel"), "gasoline");
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* Stored readings rebuild the chain without verdicts: the next exceedance completes it. */
START_TEST(roadside_history_seeds_the_chain)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    vem_rsd_reading_t past[3];
    s_reading(&past[0], T0 + 2 * DAY, "h3", VEM_FUEL_DIESEL); /* any order */
    past[0].no_ppm = 1600;
    s_reading(&past[1], T0, "h1", VEM_FUEL_DIESEL);
    past[1].no_ppm = 1600;
    s_reading(&past[2], T0 + DAY, "h2", VEM_FUEL_DIESEL);
    past[2].no_ppm = 1400; /* compliant: h1 no longer counts */
    vem_rules_seed_readings(v, &cfg, past, 3);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->readings, 0);
    s_log_t log = {0};
    vem_rsd_reading_t r;
    s_reading(&r, T0 + 3 * DAY, "r4", VEM_FUEL_DIESEL);
    r.no_ppm = 1600;
    vem_rules_on_reading(v, &cfg, &r, 1, s_collect, &log);
    ck_assert_int_eq(log.n, 1);
    ck_assert_int_eq(log.v[0].severity, VEM_SEVERITY_VIOLATION);
    json_t *readings = json_object_get(log.v[0].ev, "readings");
    ck_assert_uint_eq(json_array_size(readings), 2);
    ck_assert_str_eq(s_str(json_array_get(readings, 0), "reading_id"), "h3");
    char id[VEM_RULES_ID_LEN];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/h3", id);
    ck_assert_str_eq(log.v[0].id, id);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* The history loaded after readings were judged live (vemd started and the database was slow):
 * the changed chain is emitted again as a vehicle that saw everything in time order emitted it
 * last (same id, evidence, severity); a history that adds nothing, or meets no live reading,
 * emits nothing. */
START_TEST(roadside_history_after_live_readings)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rsd_reading_t past[3], live;
    s_reading(&past[0], T0 + DAY, "h2", VEM_FUEL_DIESEL); /* any order */
    past[0].no_ppm = 1600;
    s_reading(&past[1], T0, "h1", VEM_FUEL_DIESEL);
    past[1].no_ppm = 1700;
    s_reading(&past[2], T0 - DAY, "h0", VEM_FUEL_DIESEL);
    past[2].no_ppm = 1000; /* compliant, before the chain */
    s_reading(&live, T0 + 2 * DAY, "r3", VEM_FUEL_DIESEL);
    live.no_ppm = 1650;

    /* everything in time order */
    vem_rules_vehicle_t *all = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t want = {0};
    vem_rules_on_reading(all, &cfg, &past[2], 1, s_collect, &want);
    vem_rules_on_reading(all, &cfg, &past[1], 2, s_collect, &want);
    vem_rules_on_reading(all, &cfg, &past[0], 3, s_collect, &want);
    vem_rules_on_reading(all, &cfg, &live, 4, s_collect, &want);
    ck_assert_int_eq(want.n, 3);
    const s_got_t *last = &want.v[want.n - 1];
    ck_assert_int_eq(last->severity, VEM_SEVERITY_VIOLATION);

    /* the live reading first, the history after */
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    vem_rules_on_reading(v, &cfg, &live, 4, s_collect, &log);
    ck_assert_int_eq(log.n, 1);
    ck_assert_int_eq(log.v[0].severity, VEM_SEVERITY_NOTICE);
    ck_assert_uint_eq(vem_rules_history(v, &cfg, past, 3, s_collect, &log), 1);
    ck_assert_int_eq(log.n, 2);
    ck_assert_str_eq(log.v[1].id, last->id);
    ck_assert_int_eq(log.v[1].severity, VEM_SEVERITY_VIOLATION);
    ck_assert_int_eq(log.v[1].first_us, last->first_us);
    ck_assert_int_eq(log.v[1].last_us, last->last_us);
    ck_assert_double_eq(log.v[1].measured, last->measured);
    ck_assert(json_equal(log.v[1].ev, last->ev));
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->readings, 1); /* history is not news */
    ck_assert_uint_eq(vem_rules_vehicle_rsd_links(v), 3);
    /* the same history again changes nothing: no verdict */
    ck_assert_uint_eq(vem_rules_history(v, &cfg, past, 3, s_collect, &log), 0);

    /* history alone: seeded silently */
    vem_rules_vehicle_t *h = vem_rules_vehicle_new(NULL, PLATE, NULL);
    ck_assert_uint_eq(vem_rules_history(h, &cfg, past, 3, s_collect, &log), 0);
    ck_assert_uint_eq(vem_rules_vehicle_rsd_links(h), 2);
    ck_assert_int_eq(log.n, 2);
    s_log_free(&want);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&all);
    vem_rules_vehicle_destroy(&v);
    vem_rules_vehicle_destroy(&h);
}
END_TEST

/* A stored reading that then comes as an input (a restart replays the spool from a sink cursor
 * lower than what PostgreSQL holds: the history loaded at start has the readings the replay
 * brings again) is judged as new, once, against the chain it met live: the sink that was behind
 * gets the verdicts live data gave. h2 (T0 + 1 d, 1600 ppm) came first; h1 (T0, 1700 ppm), a
 * station's backlog, a day later. By rules.md, both over 1500 and within 6 months: live, h2 was
 * a notice under its own id; h1 then a notice under its own, and h2's verdict became the
 * violation of h1 and h2 under h1's id. The replay gives the same, in the same order. */
START_TEST(roadside_history_then_the_input)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rsd_reading_t past[2];
    s_reading(&past[0], T0, "h1", VEM_FUEL_DIESEL);
    past[0].no_ppm = 1700;
    past[0].received_us = US(T0 + 2 * DAY);
    s_reading(&past[1], T0 + DAY, "h2", VEM_FUEL_DIESEL);
    past[1].no_ppm = 1600;
    past[1].received_us = US(T0 + DAY + 60);
    char id1[VEM_RULES_ID_LEN], id2[VEM_RULES_ID_LEN];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/h1", id1);
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/h2", id2);

    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    ck_assert_uint_eq(vem_rules_history(v, &cfg, past, 2, s_collect, &log), 0);
    /* the replay brings h2: it met no h1 live, a notice */
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &past[1], 7, s_collect, &log), 1);
    ck_assert_int_eq(log.v[0].rule, VEM_RULE_RSD_NO);
    ck_assert_int_eq(log.v[0].severity, VEM_SEVERITY_NOTICE);
    ck_assert_str_eq(log.v[0].id, id2);
    ck_assert_uint_eq(log.v[0].spool_seq, 7);
    /* then h1: its notice, and h2's verdict now the violation under h1's id */
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &past[0], 8, s_collect, &log), 2);
    ck_assert_int_eq(log.v[1].severity, VEM_SEVERITY_NOTICE);
    ck_assert_str_eq(log.v[1].id, id1);
    ck_assert_int_eq(log.v[1].last_us, US(T0) + 250000);
    ck_assert_int_eq(log.v[2].severity, VEM_SEVERITY_VIOLATION);
    ck_assert_str_eq(log.v[2].id, id1);
    ck_assert_int_eq(log.v[2].first_us, US(T0) + 250000);
    ck_assert_int_eq(log.v[2].last_us, US(T0 + DAY) + 250000);
    ck_assert_double_eq(log.v[2].measured, 1600);
    json_t *readings = json_object_get(log.v[2].ev, "readings");
    ck_assert_uint_eq(json_array_size(readings), 2);
    ck_assert_str_eq(s_str(json_array_get(readings, 0), "reading_id"), "h1");
    ck_assert_str_eq(s_str(json_array_get(readings, 1), "reading_id"), "h2");
    /* once: the same input again, or the history loaded again, emits nothing */
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &past[1], 9, s_collect, &log), 0);
    ck_assert_uint_eq(vem_rules_history(v, &cfg, past, 2, s_collect, &log), 0);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->readings, 3);

    /* a station's re-sent copy of h2, received after the stored one (the database keeps the
     * first): h2 was judged when it came, the copy emits nothing, nor h2 after it */
    vem_rules_vehicle_t *c = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t copies = {0};
    ck_assert_uint_eq(vem_rules_history(c, &cfg, past, 2, s_collect, &copies), 0);
    vem_rsd_reading_t copy = past[1];
    copy.received_us = US(T0 + 5 * DAY);
    ck_assert_uint_eq(vem_rules_on_reading(c, &cfg, &copy, 1, s_collect, &copies), 0);
    ck_assert_uint_eq(vem_rules_on_reading(c, &cfg, &past[1], 2, s_collect, &copies), 0);

    /* judged as inputs first, the history after: nothing more when they come again */
    vem_rules_vehicle_t *live = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t once = {0};
    vem_rules_on_reading(live, &cfg, &past[1], 1, s_collect, &once);
    vem_rules_on_reading(live, &cfg, &past[0], 2, s_collect, &once);
    ck_assert_int_eq(once.n, 3); /* h2's notice; h1's notice and the violation */
    ck_assert_uint_eq(vem_rules_history(live, &cfg, past, 2, s_collect, &once), 0);
    ck_assert_uint_eq(vem_rules_on_reading(live, &cfg, &past[1], 3, s_collect, &once), 0);
    ck_assert_uint_eq(vem_rules_on_reading(live, &cfg, &past[0], 4, s_collect, &once), 0);
    s_log_free(&log);
    s_log_free(&copies);
    s_log_free(&once);
    vem_rules_vehicle_destroy(&v);
    vem_rules_vehicle_destroy(&c);
    vem_rules_vehicle_destroy(&live);
}
END_TEST

/* An input the history does not hold (y, T0, received T0 + 1 d) before a stored reading received
 * after it (l, T0 + 1 d, received T0 + 2 d), as a replay brings them: y emits its notice only,
 * as live (l had not come); l then the violation of y and l under y's id, once. */
START_TEST(roadside_input_before_a_stored_one)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rsd_reading_t y, l;
    s_reading(&y, T0, "y", VEM_FUEL_DIESEL);
    y.no_ppm = 1700;
    y.received_us = US(T0 + DAY);
    s_reading(&l, T0 + DAY, "l", VEM_FUEL_DIESEL);
    l.no_ppm = 1600;
    l.received_us = US(T0 + 2 * DAY);
    char id[VEM_RULES_ID_LEN];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/y", id);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    ck_assert_uint_eq(vem_rules_history(v, &cfg, &l, 1, s_collect, &log), 0);
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &y, 1, s_collect, &log), 1);
    ck_assert_int_eq(log.v[0].severity, VEM_SEVERITY_NOTICE);
    ck_assert_str_eq(log.v[0].id, id);
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &l, 2, s_collect, &log), 1);
    ck_assert_int_eq(log.v[1].severity, VEM_SEVERITY_VIOLATION);
    ck_assert_str_eq(log.v[1].id, id);
    ck_assert_uint_eq(json_array_size(json_object_get(log.v[1].ev, "readings")), 2);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A replay after a restart brings, in spool order, readings the history loaded at start already
 * holds: each emits what it emitted live, once, and no more (rules.md: an exceedance after
 * others within 6 months completes a violation under the oldest one's id). Six stored
 * exceedances h0 .. h5, a day apart, each received an hour after its time, replayed in order:
 * h0 a notice, then h1 .. h5 the violation of h0 .. hk, one verdict each. A late one, a (T0,
 * received T0 + 3 d), replayed after the start while c (T0 + 2 d, received then, before the
 * replay began) is only in the history: a's notice and c's verdict, now the violation of a and
 * c under a's id, as when a came live. */
START_TEST(roadside_history_replayed_in_order)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rsd_reading_t h[6];
    char id[VEM_RULES_ID_LEN], rid[8];
    for (int k = 0; k < 6; k++) {
        snprintf(rid, sizeof rid, "h%d", k);
        s_reading(&h[k], T0 + k * DAY, rid, VEM_FUEL_DIESEL);
        h[k].no_ppm = 1600;
        h[k].received_us = US(T0 + k * DAY + 3600);
    }
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/h0", id);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    ck_assert_uint_eq(vem_rules_history(v, &cfg, h, 6, s_collect, &log), 0);
    for (int k = 0; k < 6; k++) {
        ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &h[k], (uint64_t)k + 1, s_collect, &log),
                          1);
        const s_got_t *g = &log.v[k];
        ck_assert_str_eq(g->id, id);
        ck_assert_int_eq(g->severity, k == 0 ? VEM_SEVERITY_NOTICE : VEM_SEVERITY_VIOLATION);
        ck_assert_uint_eq(json_array_size(json_object_get(g->ev, "readings")), (size_t)k + 1);
        ck_assert_int_eq(g->last_us, h[k].time_us);
    }
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);

    vem_rsd_reading_t late[2];
    s_reading(&late[0], T0, "a", VEM_FUEL_DIESEL);
    late[0].no_ppm = 1700;
    late[0].received_us = US(T0 + 3 * DAY);
    s_reading(&late[1], T0 + 2 * DAY, "c", VEM_FUEL_DIESEL);
    late[1].no_ppm = 1650;
    late[1].received_us = US(T0 + 2 * DAY);
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/a", id);
    v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    memset(&log, 0, sizeof log);
    ck_assert_uint_eq(vem_rules_history(v, &cfg, late, 2, s_collect, &log), 0);
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &late[0], 9, s_collect, &log), 2);
    ck_assert_str_eq(log.v[0].id, id);
    ck_assert_int_eq(log.v[0].severity, VEM_SEVERITY_NOTICE);
    ck_assert_int_eq(log.v[0].last_us, late[0].time_us);
    ck_assert_str_eq(log.v[1].id, id);
    ck_assert_int_eq(log.v[1].severity, VEM_SEVERITY_VIOLATION);
    ck_assert_int_eq(log.v[1].last_us, late[1].time_us);
    ck_assert_uint_eq(json_array_size(json_object_get(log.v[1].ev, "readings")), 2);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* Verdict k of the log is rsd.no_exceed under anchor's id (PLATE, station S01), of severity,
 * resting on n readings. */
static void s_expect_chain(const s_log_t *log, int k, const char *anchor, vem_severity_t severity,
                           size_t n)
{
    char id[VEM_RULES_ID_LEN], a[64];
    snprintf(a, sizeof a, "r=S01/%s", anchor);
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, a, id);
    ck_assert_int_gt(log->n, k);
    ck_assert_int_eq(log->v[k].rule, VEM_RULE_RSD_NO);
    ck_assert_str_eq(log->v[k].id, id);
    ck_assert_int_eq(log->v[k].severity, severity);
    ck_assert_uint_eq(json_array_size(json_object_get(log->v[k].ev, "readings")), n);
}

/* rules.md: "consecutive means no valid compliant reading of that pollutant in between". a (T0)
 * and b (T0 + 2 d), both over 1500 ppm, judged live: a's notice, then the violation of a and b
 * under a's id. The history then brings c (T0 + 1 d, 1200 ppm, compliant): the run is cut, a
 * and b are one-reading runs. a's id is emitted again as a notice on a alone, b's as a notice
 * on b alone under b's own id; no violation is left. */
START_TEST(roadside_history_cuts_a_run)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rsd_reading_t a, b, c;
    s_reading(&a, T0, "a", VEM_FUEL_DIESEL);
    a.no_ppm = 1700;
    s_reading(&b, T0 + 2 * DAY, "b", VEM_FUEL_DIESEL);
    b.no_ppm = 1600;
    s_reading(&c, T0 + DAY, "c", VEM_FUEL_DIESEL);
    c.no_ppm = 1200;
    c.received_us = US(T0 + DAY + 3600);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &a, 1, s_collect, &log), 1);
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &b, 2, s_collect, &log), 1);
    s_expect_chain(&log, 1, "a", VEM_SEVERITY_VIOLATION, 2);
    vem_rules_history(v, &cfg, &c, 1, s_collect, &log);
    ck_assert_int_eq(log.n, 4);
    s_expect_chain(&log, 2, "a", VEM_SEVERITY_NOTICE, 1);
    ck_assert_int_eq(log.v[2].last_us, a.time_us);
    s_expect_chain(&log, 3, "b", VEM_SEVERITY_NOTICE, 1);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A history that brings an exceedance and the compliant reading after it into a run judged live:
 * a (T0), b (T0 + 1 d), d (T0 + 4 d), e (T0 + 5 d) live, the violation of all four under a's
 * id; the history brings c (T0 + 2 d, over) and x (T0 + 3 d, compliant). The runs are a, b, c
 * and d, e: a's id holds a, b, c (still a violation, now on c too), d's the violation of d and
 * e, each emitted once, as it now stands. */
START_TEST(roadside_history_cuts_above_a_stored_one)
{
    vem_rules_config_t cfg = s_defaults();
    static const struct {
        const char *id;
        int64_t t;
        double no;
    } live[] = {{"a", T0, 1700},
                {"b", T0 + DAY, 1600},
                {"d", T0 + 4 * DAY, 1650},
                {"e", T0 + 5 * DAY, 1800}};
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    for (int k = 0; k < 4; k++) {
        vem_rsd_reading_t r;
        s_reading(&r, live[k].t, live[k].id, VEM_FUEL_DIESEL);
        r.no_ppm = live[k].no;
        ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &r, (uint64_t)k + 1, s_collect, &log), 1);
    }
    s_expect_chain(&log, 3, "a", VEM_SEVERITY_VIOLATION, 4);
    vem_rsd_reading_t past[2];
    s_reading(&past[0], T0 + 2 * DAY, "c", VEM_FUEL_DIESEL);
    past[0].no_ppm = 1900;
    past[0].received_us = US(T0 + 2 * DAY + 60);
    s_reading(&past[1], T0 + 3 * DAY, "x", VEM_FUEL_DIESEL);
    past[1].no_ppm = 1200;
    past[1].received_us = US(T0 + 3 * DAY + 60);
    vem_rules_history(v, &cfg, past, 2, s_collect, &log);
    ck_assert_int_eq(log.n, 6); /* one verdict a run: each id as it now stands */
    s_expect_chain(&log, 4, "a", VEM_SEVERITY_VIOLATION, 3);
    ck_assert_int_eq(log.v[4].last_us, past[0].time_us);
    s_expect_chain(&log, 5, "d", VEM_SEVERITY_VIOLATION, 2);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* The last emission under an id in the log; NULL when none. */
static const s_got_t *s_last_of(const s_log_t *log, const char *anchor)
{
    char id[VEM_RULES_ID_LEN], a[64];
    snprintf(a, sizeof a, "r=S01/%s", anchor);
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, a, id);
    const s_got_t *last = NULL;
    for (int k = 0; k < log->n; k++)
        if (strcmp(log->v[k].id, id) == 0)
            last = &log->v[k];
    return last;
}

/* A state that judged a compliant reading before its history came. The database holds a (T0)
 * and c (T0 + 2 d), both over, stored by a vemd that never had b, so a's id is the violation of a
 * and c there. This state judged b (T0 + 1 d, compliant) live, then loads the history: the runs
 * are a and c, each a notice (rules.md: no compliant reading in between), under a's and c's ids. */
START_TEST(roadside_history_around_a_judged_compliant)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rsd_reading_t b, past[2];
    s_reading(&b, T0 + DAY, "b", VEM_FUEL_DIESEL);
    b.no_ppm = 1200;
    s_reading(&past[0], T0, "a", VEM_FUEL_DIESEL);
    past[0].no_ppm = 1700;
    past[0].received_us = US(T0 + 60);
    s_reading(&past[1], T0 + 2 * DAY, "c", VEM_FUEL_DIESEL);
    past[1].no_ppm = 1600;
    past[1].received_us = US(T0 + 2 * DAY + 60);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &b, 1, s_collect, &log), 0);
    ck_assert_uint_eq(vem_rules_history(v, &cfg, past, 2, s_collect, &log), 2);
    const s_got_t *a = s_last_of(&log, "a"), *c = s_last_of(&log, "c");
    ck_assert(a && a->severity == VEM_SEVERITY_NOTICE && a->last_us == past[0].time_us);
    ck_assert(c && c->severity == VEM_SEVERITY_NOTICE && c->last_us == past[1].time_us);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A state that judged an exceedance the stored run lacks: with rsd_chain_n 3, the database holds
 * a (T0 + 12 h), d (T0 + 60 h) and b (T0 + 66 h), a's id the violation of the three; this state
 * judged c (T0 + 54 h, over) live, then loads the history. The run is a, c, d, b: the last
 * verdict under a's id is its violation on all four, not the notice of a and c that c's own
 * verdict now is. */
START_TEST(roadside_history_into_a_judged_exceedance)
{
    vem_rules_config_t cfg = s_defaults();
    cfg.rsd_chain_n = 3;
    vem_rsd_reading_t c, past[3];
    s_reading(&c, T0 + 54 * 3600, "c", VEM_FUEL_DIESEL);
    c.no_ppm = 1700;
    static const struct {
        const char *id;
        int64_t t;
    } stored[] = {{"a", T0 + 12 * 3600}, {"d", T0 + 60 * 3600}, {"b", T0 + 66 * 3600}};
    for (int k = 0; k < 3; k++) {
        s_reading(&past[k], stored[k].t, stored[k].id, VEM_FUEL_DIESEL);
        past[k].no_ppm = 1600;
        past[k].received_us = US(stored[k].t + 60);
    }
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &c, 1, s_collect, &log), 1);
    vem_rules_history(v, &cfg, past, 3, s_collect, &log);
    const s_got_t *a = s_last_of(&log, "a");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->severity, VEM_SEVERITY_VIOLATION);
    ck_assert_int_eq(a->last_us, past[2].time_us);
    ck_assert_uint_eq(json_array_size(json_object_get(a->ev, "readings")), 4);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A replay after a restart of three inputs the history loaded at start holds: a (T0, received
 * T0 + 1 h) and b (T0 + 2 d, received T0 + 2 d + 1 h), over the limit, then c (T0 + 1 d,
 * compliant) that reached vemd late (received T0 + 3 d). Each emits what it emitted live: a its
 * notice; b the violation of a and b under a's id (c had not come); c cuts the run: a's id a
 * notice on a alone, b's a notice on b alone. A sink behind (Kafka) so ends as time order. */
START_TEST(roadside_replayed_cut)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rsd_reading_t h[3];
    s_reading(&h[0], T0, "a", VEM_FUEL_DIESEL);
    h[0].no_ppm = 1700;
    h[0].received_us = US(T0 + 3600);
    s_reading(&h[1], T0 + 2 * DAY, "b", VEM_FUEL_DIESEL);
    h[1].no_ppm = 1600;
    h[1].received_us = US(T0 + 2 * DAY + 3600);
    s_reading(&h[2], T0 + DAY, "c", VEM_FUEL_DIESEL);
    h[2].no_ppm = 1200;
    h[2].received_us = US(T0 + 3 * DAY);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    ck_assert_uint_eq(vem_rules_history(v, &cfg, h, 3, s_collect, &log), 0);
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &h[0], 1, s_collect, &log), 1);
    s_expect_chain(&log, 0, "a", VEM_SEVERITY_NOTICE, 1);
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &h[1], 2, s_collect, &log), 1);
    s_expect_chain(&log, 1, "a", VEM_SEVERITY_VIOLATION, 2);
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &h[2], 3, s_collect, &log), 2);
    s_expect_chain(&log, 2, "a", VEM_SEVERITY_NOTICE, 1);
    s_expect_chain(&log, 3, "b", VEM_SEVERITY_NOTICE, 1);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* Two loads of history into one state (a VIN's readings under two plates or colours): the
 * second emits nothing for the first's readings, which were judged when they came. */
START_TEST(roadside_history_twice_emits_nothing)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rsd_reading_t a, b, live;
    s_reading(&a, T0, "x1", VEM_FUEL_DIESEL);
    a.no_ppm = 1600;
    s_reading(&b, T0 - DAY, "x0", VEM_FUEL_DIESEL);
    b.no_ppm = 1700;
    s_reading(&live, T0 + DAY, "x2", VEM_FUEL_DIESEL);
    live.no_ppm = 1000; /* compliant: a verdict-less input, so the history emits with records */
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    vem_rules_on_reading(v, &cfg, &live, 1, s_collect, &log);
    ck_assert_uint_eq(vem_rules_history(v, &cfg, &a, 1, s_collect, &log), 0);
    /* b before a changes a's verdict (the violation of b and a), but a came from the history */
    ck_assert_uint_eq(vem_rules_history(v, &cfg, &b, 1, s_collect, &log), 0);
    ck_assert_int_eq(log.n, 0);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A verdict rests on at most 32 exceedances, the newest: with 33 in a run (the oldest from the
 * history, or late), the oldest is left out, as in time order. */
START_TEST(full_chain_keeps_the_newest)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    vem_rsd_reading_t r;
    char id[16];
    for (int i = 1; i <= 32; i++) {
        snprintf(id, sizeof id, "f%d", i);
        s_reading(&r, T0 + i * 3600, id, VEM_FUEL_DIESEL);
        r.no_ppm = 1600;
        vem_rules_on_reading(v, &cfg, &r, (uint64_t)i, s_collect, &log);
        if (log.n == 256) {
            s_log_free(&log);
            memset(&log, 0, sizeof log);
        }
    }
    ck_assert_uint_eq(vem_rules_vehicle_rsd_links(v), 32);
    s_reading(&r, T0, "f0", VEM_FUEL_DIESEL);
    r.no_ppm = 1600;
    ck_assert_uint_eq(vem_rules_history(v, &cfg, &r, 1, NULL, NULL), 0);
    ck_assert_uint_eq(vem_rules_vehicle_rsd_links(v), 33);
    s_log_free(&log);
    memset(&log, 0, sizeof log);
    s_reading(&r, T0 + 33 * 3600, "f33", VEM_FUEL_DIESEL);
    r.no_ppm = 1600;
    vem_rules_on_reading(v, &cfg, &r, 33, s_collect, &log);
    ck_assert_int_eq(log.n, 1);
    json_t *readings = json_object_get(log.v[0].ev, "readings");
    ck_assert_uint_eq(json_array_size(readings), 32);
    ck_assert_str_eq(s_str(json_array_get(readings, 0), "reading_id"), "f2");
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A reload (SIGHUP) that changes a limit while a chain is open: the chain is judged by the
 * limit in force. rules.md: non-compliant when the same pollutant "exceeds its limit in two or
 * more consecutive valid readings"; consecutive means "no valid compliant reading of that
 * pollutant in between". Worked by hand:
 *   column b (NO limit 1000): r1 at T0, 1200 ppm > 1000: an exceedance, notice [r1].
 *   reload to column a (NO limit 1500).
 *   r2 at T0 + 1 day, 1600 ppm > 1500: an exceedance. Against the limit in force r1's
 *     1200 ppm is not above 1500: r1 is a compliant reading, not an exceedance, so r2 is the
 *     first of a new chain: a notice on [r2] alone, with its own id (anchored at r2), and
 *     compliant_before = r1's time. A violation on [r1, r2] would convict on 1200 ppm against
 *     a limit of 1500.
 *   r3 at T0 + 2 days, 1700 ppm > 1500: two consecutive exceedances, a violation on [r2, r3]
 *     under r2's id. */
/* rules.md: "limit b is for key regions after the date the region adopts it". With column b
 * from 2024-03-07 (Beijing), a reading is judged by the column of the day it was taken, live
 * and when loaded from the stored history alike. T0 is 2024-03-05 08:00 Beijing, so that
 * date's midnight is T0 + 40 h; every reading is at its second + 0.25 s. Worked by hand:
 *   r1 2024-03-06 08:00, 1200 ppm, column a (1500): compliant, nothing.
 *   r2 2024-03-06 23:59:59, 1600 ppm, column a: an exceedance after a compliant reading, a
 *     notice [r2], limit 1500, column a.
 *   r3 2024-03-07 00:00:00, 1100 ppm, column b (1000): an exceedance, the second in a row: a
 *     violation [r2, r3] under r2's id, measured 1100 against 1000, column b.
 * And a new state that loads only r1 from the history, then takes r6 (2024-03-08 08:00, 1200
 * ppm, column b): r1 stays compliant (1200 is not above column a's 1500), so r6 is a notice
 * alone with r1 as the compliant reading before it; judging r1 by column b (1200 > 1000) would
 * make it a violation [r1, r6]. */
START_TEST(roadside_limit_b_from_its_date)
{
    int64_t from;
    ck_assert(vem_rules_date_us("2024-03-07", &from));
    ck_assert_int_eq(from, US(T0 + 40 * 3600));
    ck_assert(vem_rules_date_us("2024-02-29", &from));    /* a leap day */
    ck_assert_int_eq(from, US(T0 - 6 * DAY + 16 * 3600)); /* 2024-02-28 16:00 UTC */
    const char *bad[] = {"2023-02-29", "2024-3-07",  "2024-03-07 ", "2024/03/07",
                         "",           "1969-12-31", "2024-00-10",  "2024-04-31"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!vem_rules_date_us(bad[i], &from), "'%s' taken as a date", bad[i]);

    vem_rules_config_t cfg = s_defaults();
    cfg.rsd_column = VEM_RSD_LIMIT_B;
    cfg.rsd_b_from_us = US(T0 + 40 * 3600);
    char err[256];
    ck_assert_int_eq(vem_rules_config_validate(&cfg, err, sizeof err), 0);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    vem_rsd_reading_t r1, r;
    s_reading(&r1, T0 + DAY, "r1", VEM_FUEL_DIESEL);
    r1.no_ppm = 1200;
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &r1, 1, s_collect, &log), 0);
    s_reading(&r, T0 + 40 * 3600 - 1, "r2", VEM_FUEL_DIESEL);
    r.no_ppm = 1600;
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &r, 2, s_collect, &log), 1);
    ck_assert_int_eq(log.v[0].severity, VEM_SEVERITY_NOTICE);
    ck_assert_double_eq(log.v[0].limit, 1500);
    ck_assert_str_eq(s_str(log.v[0].ev, "limit_column"), "a");
    s_reading(&r, T0 + 40 * 3600, "r3", VEM_FUEL_DIESEL);
    r.no_ppm = 1100;
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &r, 3, s_collect, &log), 1);
    const s_got_t *g = &log.v[1];
    ck_assert_int_eq(g->severity, VEM_SEVERITY_VIOLATION);
    ck_assert_double_eq(g->measured, 1100);
    ck_assert_double_eq(g->limit, 1000);
    ck_assert_str_eq(s_str(g->ev, "limit_column"), "b");
    ck_assert_uint_eq(json_array_size(json_object_get(g->ev, "readings")), 2);
    char id[VEM_RULES_ID_LEN];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/r2", id);
    ck_assert_str_eq(g->id, id);
    vem_rules_vehicle_destroy(&v);

    v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    vem_rules_seed_readings(v, &cfg, &r1, 1);
    s_reading(&r, T0 + 3 * DAY, "r6", VEM_FUEL_DIESEL);
    r.no_ppm = 1200;
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &r, 6, s_collect, &log), 1);
    g = &log.v[2];
    ck_assert_int_eq(g->severity, VEM_SEVERITY_NOTICE);
    ck_assert_uint_eq(json_array_size(json_object_get(g->ev, "readings")), 1);
    ck_assert_str_eq(s_str(g->ev, "compliant_before"), "2024-03-06T08:00:00.250+08:00");
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

START_TEST(roadside_reload_judges_the_chain_by_the_limit_in_force)
{
    vem_rules_config_t cfg = s_defaults();
    cfg.rsd_column = VEM_RSD_LIMIT_B;
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    vem_rsd_reading_t r;
    s_reading(&r, T0, "r1", VEM_FUEL_DIESEL);
    r.no_ppm = 1200;
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &r, 1, s_collect, &log), 1);
    ck_assert_int_eq(log.v[0].severity, VEM_SEVERITY_NOTICE);
    cfg.rsd_column = VEM_RSD_LIMIT_A; /* the reload */
    s_reading(&r, T0 + DAY, "r2", VEM_FUEL_DIESEL);
    r.no_ppm = 1600;
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &r, 2, s_collect, &log), 1);
    const s_got_t *g = &log.v[1];
    ck_assert_int_eq(g->severity, VEM_SEVERITY_NOTICE);
    ck_assert_double_eq(g->limit, 1500);
    ck_assert_int_eq(g->first_us, US(T0 + DAY) + 250000);
    ck_assert_uint_eq(json_array_size(json_object_get(g->ev, "readings")), 1);
    ck_assert_str_eq(s_str(g->ev, "compliant_before"), "2024-03-05T08:00:00.250+08:00");
    ck_assert_str_ne(g->id, log.v[0].id);
    s_reading(&r, T0 + 2 * DAY, "r3", VEM_FUEL_DIESEL);
    r.no_ppm = 1700;
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &r, 3, s_collect, &log), 1);
    g = &log.v[2];
    ck_assert_int_eq(g->severity, VEM_SEVERITY_VIOLATION);
    ck_assert_str_eq(g->id, log.v[1].id);
    json_t *readings = json_object_get(g->ev, "readings");
    ck_assert_uint_eq(json_array_size(readings), 2);
    ck_assert_str_eq(s_str(json_array_get(readings, 0), "reading_id"), "r2");
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* Natural months in Beijing time: a day the later month lacks becomes its last day. */
START_TEST(natural_months)
{
    ck_assert_int_eq(vem_rules_add_months(US(T0), 6), US(T6M));
    vem_rules_civil_t c = {2024, 8, 31, 10, 0, 0, 0};
    vem_rules_civil_t d;
    vem_rules_civil(vem_rules_add_months(vem_rules_from_civil(&c), 6), &d);
    ck_assert_int_eq(d.year, 2025);
    ck_assert_int_eq(d.month, 2);
    ck_assert_int_eq(d.day, 28);
    c.year = 2023;
    vem_rules_civil(vem_rules_add_months(vem_rules_from_civil(&c), 6), &d);
    ck_assert_int_eq(d.day, 29); /* 2024 is a leap year */
    /* Beijing midnight is 16:00 UTC the day before */
    vem_rules_civil(US(1709654400), &d);
    ck_assert_int_eq(d.day, 6);
    ck_assert_int_eq(d.hour, 0);
}
END_TEST

/* "Within the 6 natural months of one inspection cycle" counts calendar months of Beijing dates
 * (rules.md): an exceedance on date D1 chains with a later one on date D2 when D2 <= D1 + 6
 * months, a day the later month lacks being its last (natural_months), whatever the times of
 * day. Each pair of NO exceedances (1600 ppm > 1500) is fed at 07:30 then 23:30 and at 23:30
 * then 07:30 (07:30 in Beijing is 23:30 UTC the day before: UTC dates would judge otherwise).
 * r1 is a notice under its own id; r2 a violation on [r1, r2] under r1's id when within, else
 * a notice on [r2] under its own. Ids from tests/data/rules/rule_id.py:
 *   rule_id.py rsd.no_exceed 京A12345 r=S01/r1 -> 1005e61452f9ed377035891ddb5d48cc
 *   rule_id.py rsd.no_exceed 京A12345 r=S01/r2 -> 1005e71452f9eeea70358c1ddb5d4de5 */
typedef struct {
    const char *name;
    int64_t y1;
    int m1, d1;
    int64_t y2;
    int m2, d2;
    vem_severity_t second; /* r2's verdict */
} s_month_case_t;

static const s_month_case_t s_month_cases[] = {
    {"Jan 31 -> Jul 31: Jan 31 + 6 months = Jul 31", 2024, 1, 31, 2024, 7, 31, V},
    {"Jan 31 -> Aug 1", 2024, 1, 31, 2024, 8, 1, N},
    {"Aug 31 -> Feb 28 2023: Aug 31 + 6 months = the last of February", 2022, 8, 31, 2023, 2, 28,
     V},
    {"Aug 31 -> Mar 1 2023", 2022, 8, 31, 2023, 3, 1, N},
    {"Mar 1 -> Sep 1", 2024, 3, 1, 2024, 9, 1, V},
    {"Mar 1 -> Sep 2", 2024, 3, 1, 2024, 9, 2, N},
    {"Aug 31 2023 -> Feb 29 2024: a leap year's last of February", 2023, 8, 31, 2024, 2, 29, V},
};

#define S_R1_ID "1005e61452f9ed377035891ddb5d48cc"
#define S_R2_ID "1005e71452f9eeea70358c1ddb5d4de5"

START_TEST(roadside_cycle_counts_dates)
{
    const s_month_case_t *c = &s_month_cases[_i / 2];
    bool morning_first = _i % 2 == 0;
    const char *when = morning_first ? "07:30 -> 23:30" : "23:30 -> 07:30";
    vem_rules_civil_t d1 = {c->y1, c->m1, c->d1, morning_first ? 7 : 23, 30, 0, 0};
    vem_rules_civil_t d2 = {c->y2, c->m2, c->d2, morning_first ? 23 : 7, 30, 0, 0};
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    vem_rsd_reading_t r;
    s_reading(&r, 0, "r1", VEM_FUEL_DIESEL);
    r.time_us = vem_rules_from_civil(&d1);
    r.no_ppm = 1600;
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &r, 1, s_collect, &log), 1);
    ck_assert_int_eq(log.v[0].severity, N);
    ck_assert_str_eq(log.v[0].id, S_R1_ID);
    s_reading(&r, 0, "r2", VEM_FUEL_DIESEL);
    r.time_us = vem_rules_from_civil(&d2);
    r.no_ppm = 1600;
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &r, 2, s_collect, &log), 1);
    const s_got_t *g = &log.v[1];
    ck_assert_msg(g->severity == c->second, "%s, %s: r2 is a %s, expected a %s", c->name, when,
                  vem_rules_severity_name(g->severity), vem_rules_severity_name(c->second));
    ck_assert_str_eq(g->id, c->second == V ? S_R1_ID : S_R2_ID);
    ck_assert_uint_eq(json_array_size(json_object_get(g->ev, "readings")), c->second == V ? 2 : 1);
    ck_assert_int_eq(g->last_us, r.time_us);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->readings_late, 0);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* ---- fusion ------------------------------------------------------------------------------- */

static void s_nox_gen(long i, s_phys_t *p, const void *arg)
{
    (void)i;
    *p = s_cruise;
    p->nox_down = *(const double *)arg;
}

/* A roadside NO of 1800 ppm at T0 + 10.25 s while the OBD says `obd_nox`; OBD samples cover
 * T0 .. T0 + 19. order 0: the OBD data first; 1: the reading after the samples up to T0 + 5. */
static void s_fusion_run(double obd_nox, int order, s_log_t *log)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, &s_truck);
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, log);
    vem_rsd_reading_t r;
    s_reading(&r, T0 + 10, "f1", VEM_FUEL_DIESEL);
    r.no_ppm = 1800;
    if (order == 0) {
        s_feed(&fd, T0, 20, s_nox_gen, &obd_nox);
        vem_rules_on_reading(v, &cfg, &r, 99, s_collect, log);
    } else {
        s_feed(&fd, T0, 6, s_nox_gen, &obd_nox);
        vem_rules_on_reading(v, &cfg, &r, 99, s_collect, log);
        ck_assert_int_eq(s_count(log, VEM_RULE_FUSION_OBD_MISMATCH), 0); /* waits for T0 + 13 */
        s_feed(&fd, T0 + 6, 14, s_nox_gen, &obd_nox);
    }
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}

/* The match is the sample nearest T0 + 10.25 within 2 s: T0 + 10. Below 500 ppm is a notice;
 * 500 itself is not below. Whichever side comes first, the verdict and its id are the same. */
START_TEST(fusion_either_order)
{
    char id[2][VEM_RULES_ID_LEN];
    for (int order = 0; order < 2; order++) {
        s_log_t log = {0};
        s_fusion_run(100, order, &log);
        ck_assert_int_eq(s_count(&log, VEM_RULE_RSD_NO), 1);
        ck_assert_int_eq(s_count(&log, VEM_RULE_FUSION_OBD_MISMATCH), 1);
        const s_got_t *g = s_nth(&log, VEM_RULE_FUSION_OBD_MISMATCH, 0);
        ck_assert_int_eq(g->severity, VEM_SEVERITY_NOTICE);
        ck_assert_double_eq_tol(g->measured, 100, 1e-3);
        ck_assert_double_eq(g->limit, 500);
        ck_assert_int_eq(g->first_us, US(T0 + 10));
        ck_assert_int_eq(g->last_us, US(T0 + 10) + 250000);
        /* HJ 1239 frames carry each block's time: the sample is stored under its own second,
         * block 0 of the frame T0 + 10 .. 19 (order 0), block 4 of T0 + 6 .. 15 (order 1) */
        ck_assert_str_eq(s_str(g->ev, "obd.time"), s_iso(T0 + 10));
        ck_assert_str_eq(s_str(g->ev, "obd.sample_time"), s_iso(T0 + 10));
        ck_assert_int_eq(s_int(g->ev, "obd.block_idx"), order == 0 ? 0 : 4);
        ck_assert_str_eq(s_str(g->ev, "reading.reading_id"), "f1");
        ck_assert_uint_eq(g->spool_seq, order == 0 ? 99 : 2); /* the frame of T0 + 6 .. 15 */
        memcpy(id[order], g->id, VEM_RULES_ID_LEN);
        s_log_free(&log);
    }
    ck_assert_str_eq(id[0], id[1]);
    const double agree[] = {500, 900};
    for (int k = 0; k < 2; k++) {
        for (int order = 0; order < 2; order++) {
            s_log_t log = {0};
            s_fusion_run(agree[k], order, &log);
            ck_assert_int_eq(s_count(&log, VEM_RULE_FUSION_OBD_MISMATCH), 0);
            s_log_free(&log);
        }
    }
}
END_TEST

/* A NO exceedance loaded from the stored history and then brought again by a replay is matched
 * with the OBD data as live (the history alone decides no fusion: the spool is its source):
 * the notice of fusion_either_order, with the same id. */
START_TEST(fusion_of_a_stored_reading)
{
    s_log_t want = {0};
    s_fusion_run(100, 0, &want);
    const s_got_t *w = s_nth(&want, VEM_RULE_FUSION_OBD_MISMATCH, 0);
    ck_assert_ptr_nonnull(w);

    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    double low = 100;
    s_feed(&fd, T0, 20, s_nox_gen, &low);
    vem_rsd_reading_t r;
    s_reading(&r, T0 + 10, "f1", VEM_FUEL_DIESEL);
    r.no_ppm = 1800;
    ck_assert_uint_eq(vem_rules_history(v, &cfg, &r, 1, s_collect, &log), 0);
    ck_assert_int_eq(s_count(&log, VEM_RULE_FUSION_OBD_MISMATCH), 0);
    vem_rules_on_reading(v, &cfg, &r, 99, s_collect, &log);
    ck_assert_int_eq(s_count(&log, VEM_RULE_RSD_NO), 1);
    ck_assert_int_eq(s_nth(&log, VEM_RULE_RSD_NO, 0)->severity, VEM_SEVERITY_NOTICE);
    ck_assert_int_eq(s_count(&log, VEM_RULE_FUSION_OBD_MISMATCH), 1);
    const s_got_t *g = s_nth(&log, VEM_RULE_FUSION_OBD_MISMATCH, 0);
    ck_assert_str_eq(g->id, w->id);
    ck_assert_int_eq(g->severity, VEM_SEVERITY_NOTICE);
    ck_assert_double_eq_tol(g->measured, 100, 1e-3);
    vem_rules_on_reading(v, &cfg, &r, 100, s_collect, &log); /* judged once */
    ck_assert_int_eq(s_count(&log, VEM_RULE_FUSION_OBD_MISMATCH), 1);
    s_feed_free(&fd);
    s_log_free(&log);
    s_log_free(&want);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* GB 17691 frames give one time, the last sample's (hj1239.md), and obd_samples keys each
 * sample by it and its block: of the ten samples T0 + 10 .. T0 + 19 in the second frame, the
 * one taken at T0 + 13 is stored as (T0 + 19, block 3). A reading at T0 + 13.25 matches it
 * (0.25 s away); the evidence names it by both, so an agency finds the row. Whichever side
 * comes first, the evidence is the same. */
START_TEST(fusion_names_the_stored_sample)
{
    for (int order = 0; order < 2; order++) {
        vem_rules_config_t cfg = s_defaults();
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, &s_truck);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        fd.gb17691 = true;
        double low = 100;
        vem_rsd_reading_t r;
        s_reading(&r, T0 + 13, "g1", VEM_FUEL_DIESEL);
        r.no_ppm = 1800;
        if (order == 1)
            vem_rules_on_reading(v, &cfg, &r, 99, s_collect, &log);
        s_feed(&fd, T0, 30, s_nox_gen, &low);
        if (order == 0)
            vem_rules_on_reading(v, &cfg, &r, 99, s_collect, &log);
        ck_assert_int_eq(s_count(&log, VEM_RULE_FUSION_OBD_MISMATCH), 1);
        const s_got_t *g = s_nth(&log, VEM_RULE_FUSION_OBD_MISMATCH, 0);
        ck_assert_str_eq(s_str(g->ev, "obd.time"), s_iso(T0 + 13));
        ck_assert_str_eq(s_str(g->ev, "obd.sample_time"), s_iso(T0 + 19));
        ck_assert_int_eq(s_int(g->ev, "obd.block_idx"), 3);
        ck_assert_str_eq(s_str(g->ev, "obd.vin"), VIN);
        ck_assert_int_eq(g->first_us, US(T0 + 13));
        ck_assert_int_eq(g->last_us, US(T0 + 13) + 250000);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* The terminal loses its link at T0 + 7 (a tunnel) while it passes the station at T0 + 10.25;
 * when the link comes back it sends live data from T0 + 30 and the stored T0 + 8 .. T0 + 29 as
 * re-sent (0x03) frames after it (hj1239.md: "stored data arrives as 0x03 frames, interleaved
 * with live 0x02 frames"). The OBD data of the reading's moment exists: downstream NOx 100 ppm
 * at T0 + 10, 0.25 s from the reading, below 500: rules.md's fusion.obd_mismatch notice, the
 * same verdict and id as when everything arrives in time order (fusion_either_order), whether
 * the reading comes before the live data resumes (order 0) or between it and the backlog
 * (order 1). */
START_TEST(fusion_after_a_backlog)
{
    s_log_t ref = {0};
    s_fusion_run(100, 0, &ref);
    const s_got_t *want = s_nth(&ref, VEM_RULE_FUSION_OBD_MISMATCH, 0);
    for (int order = 0; order < 2; order++) {
        vem_rules_config_t cfg = s_defaults();
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, &s_truck);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        double low = 100;
        vem_rsd_reading_t r;
        s_reading(&r, T0 + 10, "f1", VEM_FUEL_DIESEL);
        r.no_ppm = 1800;
        s_feed(&fd, T0, 8, s_nox_gen, &low);
        if (order == 0)
            vem_rules_on_reading(v, &cfg, &r, 99, s_collect, &log);
        s_feed(&fd, T0 + 30, 10, s_nox_gen, &low);
        if (order == 1)
            vem_rules_on_reading(v, &cfg, &r, 99, s_collect, &log);
        fd.cmd = VEM_HJ1239_CMD_RESEND;
        s_feed(&fd, T0 + 8, 22, s_nox_gen, &low);
        ck_assert_int_eq(s_count(&log, VEM_RULE_FUSION_OBD_MISMATCH), 1);
        const s_got_t *g = s_nth(&log, VEM_RULE_FUSION_OBD_MISMATCH, 0);
        ck_assert_str_eq(g->id, want->id);
        ck_assert_double_eq_tol(g->measured, 100, 1e-3);
        ck_assert_int_eq(g->first_us, US(T0 + 10));
        ck_assert_str_eq(s_str(g->ev, "obd.sample_time"), s_iso(T0 + 10));
        ck_assert_uint_eq(vem_rules_vehicle_counts(v)->fusion_unmatched, 0);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
    s_log_free(&ref);
}
END_TEST

/* No OBD sample within 2 s of the reading: unmatched, no verdict. While the match window
 * (T0 + 8.25 .. T0 + 12.25: the seconds T0 + 9 .. T0 + 12) is in the 600 s of history a
 * re-sent backlog may still fill it (fusion_after_a_backlog), so the reading waits: until the
 * history starts after T0 + 9 (newest second T0 + 609: the history is T0 + 10 .. T0 + 609), or
 * fusion_horizon_s of wall clock, whichever comes first. */
START_TEST(fusion_unmatched)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    double low = 100;
    s_feed(&fd, T0, 8, s_nox_gen, &low); /* up to T0 + 7, 3.25 s before the reading */
    vem_rsd_reading_t r;
    s_reading(&r, T0 + 10, "f1", VEM_FUEL_DIESEL);
    r.no_ppm = 1800;
    vem_rules_on_reading(v, &cfg, &r, 1, s_collect, &log);
    s_feed(&fd, T0 + 30, 10, s_nox_gen, &low); /* passes T0 + 12, nothing near: waits */
    s_feed(&fd, T0 + 608, 1, s_nox_gen, &low); /* history T0 + 9 .. T0 + 608: still waits */
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->fusion_unmatched, 0);
    s_feed(&fd, T0 + 609, 1, s_nox_gen, &low); /* T0 + 9 has left the history */
    ck_assert_int_eq(s_count(&log, VEM_RULE_FUSION_OBD_MISMATCH), 0);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->fusion_unmatched, 1);
    s_reading(&r, T0 + 100, "f2", VEM_FUEL_DIESEL);
    r.no_ppm = 1800;
    vem_rules_on_reading(v, &cfg, &r, 2, s_collect, &log);
    vem_rules_on_silence(v, &cfg, US(T0 + 100 + 599), 0, s_collect, &log);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->fusion_unmatched, 1);
    vem_rules_on_silence(v, &cfg, US(T0 + 100 + 601), 0, s_collect, &log);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->fusion_unmatched, 2);
    ck_assert_int_eq(s_count(&log, VEM_RULE_FUSION_OBD_MISMATCH), 0);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* ---- OBD snapshots ------------------------------------------------------------------------ */

/* A real-time frame at t with one OBD block: MIL (NaN: 0xFE, invalid), its DTCs, its VIN. */
static void s_obd_frame(s_feed_t *fd, int64_t t, double mil, const uint32_t *dtcs, int ndtcs,
                        const char *obd_vin)
{
    vem_hj1239_frame_t *f = fd->f;
    s_envelope(f, VEM_HJ1239_CMD_REALTIME, t);
    f->layout = VEM_HJ1239_LAYOUT_BLOCK_TIME;
    vem_hj1239_block_t *b = &f->blocks[f->nblocks++];
    memset(b, 0, sizeof *b);
    b->type = VEM_HJ1239_BLOCK_OBD;
    b->time = t;
    b->obd = 0;
    b->raw[VEM_HJ1239_F_OBD_PROTOCOL] = 2;
    b->raw[VEM_HJ1239_F_MIL] = isnan(mil) ? 0xFE : (uint32_t)mil;
    b->raw[VEM_HJ1239_F_DIAG_SUPPORTED] = 0x0C00;
    b->raw[VEM_HJ1239_F_DIAG_READY] = 0x0C00;
    b->raw[VEM_HJ1239_F_DTC_COUNT] = (uint32_t)ndtcs;
    vem_hj1239_obd_t *o = &f->obd[f->nobd++];
    memset(o, 0, sizeof *o);
    memcpy(o->vin, obd_vin ? obd_vin : VIN, 17);
    o->dtc_first = 0;
    o->dtc_n = (uint16_t)ndtcs;
    for (int i = 0; i < ndtcs; i++)
        f->dtcs[f->ndtcs++] = dtcs[i];
    b->novalue = vem_hj1239_novalue(b);
    s_send(fd);
}

/* What may be let go: nothing while a trip is open, the MIL is on or a chain holds a reading,
 * or obd.offline has yet to fire for the silence; then it may. */
START_TEST(idle_state)
{
    vem_rules_config_t cfg = s_defaults();
    int64_t now = US(T0 + 80 * 3600);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    ck_assert(vem_rules_vehicle_idle(v, &cfg, now)); /* never heard: nothing to judge */
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_feed(&fd, T0, 60, s_const, &s_cruise);
    ck_assert_int_eq(vem_rules_vehicle_last_received(v), US(T0 + 59) + 1500000);
    ck_assert(!vem_rules_vehicle_idle(v, &cfg, now)); /* a trip open */
    s_cmd(&fd, VEM_HJ1239_CMD_LOGOUT, T0 + 60);
    ck_assert(!vem_rules_vehicle_idle(v, &cfg, now)); /* obd.offline owed after the silence */
    cfg.enabled[VEM_RULE_OBD_OFFLINE] = false;
    ck_assert(vem_rules_vehicle_idle(v, &cfg, now));
    cfg.enabled[VEM_RULE_OBD_OFFLINE] = true;
    vem_rules_on_silence(v, &cfg, US(T0 + 62 + 72 * 3600), 0, s_collect, &log);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_OFFLINE), 1);
    ck_assert(vem_rules_vehicle_idle(v, &cfg, now));
    /* a roadside exceedance in a chain keeps it (smoke: no NO reading waits for OBD data) */
    vem_rsd_reading_t r;
    s_reading(&r, T0 + 100, "i1", VEM_FUEL_DIESEL);
    r.opacity_pct = 40;
    vem_rules_on_reading(v, &cfg, &r, 99, s_collect, &log);
    ck_assert(!vem_rules_vehicle_idle(v, &cfg, now));
    /* until no reading taken by now can complete it: 6 months after 2024-03-05 08:01:40
     * Beijing (and 0.25 s) is 2024-09-05 (31 + 30 + 31 + 30 + 31 + 31 = 184 days), and two
     * days more */
    int64_t free_us = US(T0 + 100 + 186 * 86400) + 250000;
    ck_assert(!vem_rules_vehicle_idle(v, &cfg, free_us - 1));
    ck_assert(vem_rules_vehicle_idle(v, &cfg, free_us));
    /* a compliant reading after it closes the chain: nothing to complete at all */
    s_reading(&r, T0 + 200, "i2", VEM_FUEL_DIESEL);
    r.opacity_pct = 10;
    vem_rules_on_reading(v, &cfg, &r, 100, s_collect, &log);
    ck_assert(vem_rules_vehicle_idle(v, &cfg, now));
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
    /* the MIL on keeps it */
    v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_feed_init(&fd, v, &cfg, &log);
    s_obd_frame(&fd, T0, 1, NULL, 0, NULL);
    cfg.enabled[VEM_RULE_OBD_OFFLINE] = false;
    ck_assert(!vem_rules_vehicle_idle(v, &cfg, now));
    s_obd_frame(&fd, T0 + 10, 0, NULL, 0, NULL);
    ck_assert(vem_rules_vehicle_idle(v, &cfg, now));
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* MIL on at T0: a notice at once. Still on at T0 + 7 d exactly: not yet "after 7 days"; at
 * T0 + 7 d + 1 s: the violation, under the notice's id. An invalid MIL byte changes nothing;
 * off ends the episode; on again is a new one. A snapshot older than the newest that the
 * episode already covers changes nothing (check_rules_order: snapshots in any order). The id of
 * (obd.mil_on, VIN, "t=1709596800000000") is the two FNV-1a 64 hashes worked out in Python:
 * 7bdff30a90a3ea3c 2645880102c4e3d9. */
START_TEST(mil_on)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_obd_frame(&fd, T0, 1, NULL, 0, NULL);
    ck_assert_int_eq(log.n, 1);
    ck_assert_int_eq(log.v[0].severity, VEM_SEVERITY_NOTICE);
    ck_assert_str_eq(log.v[0].id, "7bdff30a90a3ea3c2645880102c4e3d9");
    s_obd_frame(&fd, T0 + 3 * DAY, NAN, NULL, 0, NULL);
    s_obd_frame(&fd, T0 + 7 * DAY, 1, NULL, 0, NULL);
    ck_assert_int_eq(log.n, 1);
    s_obd_frame(&fd, T0 + 7 * DAY + 1, 1, NULL, 0, NULL);
    ck_assert_int_eq(log.n, 2);
    ck_assert_int_eq(log.v[1].severity, VEM_SEVERITY_VIOLATION);
    ck_assert_str_eq(log.v[1].id, log.v[0].id);
    ck_assert_int_eq(log.v[1].first_us, US(T0));
    ck_assert_int_eq(log.v[1].last_us, US(T0 + 7 * DAY + 1));
    ck_assert_double_eq_tol(log.v[1].measured, 7 + 1.0 / 86400, 1e-9);
    s_obd_frame(&fd, T0 + 8 * DAY, 1, NULL, 0, NULL);
    ck_assert_int_eq(log.n, 2);
    s_obd_frame(&fd, T0 + 9 * DAY, 0, NULL, 0, NULL);
    s_obd_frame(&fd, T0 + 8 * DAY, 1, NULL, 0, NULL); /* late */
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->late_obd, 1);
    s_obd_frame(&fd, T0 + 10 * DAY, 1, NULL, 0, NULL);
    ck_assert_int_eq(log.n, 3);
    ck_assert_int_eq(log.v[2].severity, VEM_SEVERITY_NOTICE);
    ck_assert_str_ne(log.v[2].id, log.v[0].id);
    ck_assert_str_eq(s_str(log.v[2].ev, "on_since.info_time"), s_iso(T0 + 10 * DAY));
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* DTCs: a notice when codes not reported since the last clear appear; the same set again is
 * nothing; a snapshot with none clears them. */
START_TEST(dtcs)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    const uint32_t ab[] = {0x110C1201, 0x0C9A0201}, abc[] = {0x110C1201, 0x0C9A0201, 0x00640003};
    s_obd_frame(&fd, T0, 0, ab, 2, NULL);
    s_obd_frame(&fd, T0 + 60, 0, ab, 2, NULL);
    s_obd_frame(&fd, T0 + 120, 0, abc, 3, NULL);
    s_obd_frame(&fd, T0 + 180, 0, NULL, 0, NULL);
    s_obd_frame(&fd, T0 + 240, 0, ab, 1, NULL);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_DTC), 3);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_DTC, 0);
    ck_assert_int_eq(g->severity, VEM_SEVERITY_NOTICE);
    ck_assert_double_eq(g->measured, 2);
    ck_assert_str_eq(s_str(json_array_get(json_object_get(g->ev, "dtcs"), 1), ""), "0C9A0201");
    g = s_nth(&log, VEM_RULE_OBD_DTC, 1);
    ck_assert_int_eq(g->first_us, US(T0 + 120));
    ck_assert_uint_eq(json_array_size(json_object_get(g->ev, "new_dtcs")), 1);
    ck_assert_str_eq(s_str(json_array_get(json_object_get(g->ev, "new_dtcs"), 0), ""), "00640003");
    g = s_nth(&log, VEM_RULE_OBD_DTC, 2);
    ck_assert_int_eq(g->first_us, US(T0 + 240));
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* More trouble codes than a vehicle remembers (VEM_RULES_DTC_MAX, 64): 70 codes reported in 10
 * snapshots a minute apart are one notice, the first (all 70 new), not one per snapshot; the
 * other nine each leave the 6 codes the full set lacks not judged: 54. A snapshot without codes
 * clears the set, and the 70 again are one more notice. Then a 71st code, while the set is
 * full, is not judged either: 6 + 1 more, 61. */
START_TEST(dtcs_beyond_the_set_are_one_notice)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    uint32_t codes[71];
    for (int k = 0; k < 71; k++)
        codes[k] = 0x00010000u + (uint32_t)k;
    for (int m = 0; m < 10; m++)
        s_obd_frame(&fd, T0 + 60 * m, 0, codes, 70, NULL);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_DTC), 1);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_DTC, 0);
    ck_assert_int_eq(g->first_us, US(T0));
    ck_assert_double_eq(g->measured, 70);
    ck_assert_uint_eq(json_array_size(json_object_get(g->ev, "dtcs")), 70);
    ck_assert_uint_eq(json_array_size(json_object_get(g->ev, "new_dtcs")), 70);
    ck_assert_str_eq(s_str(json_array_get(json_object_get(g->ev, "new_dtcs"), 69), ""), "00010045");
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->dtcs_unjudged, 54);
    s_obd_frame(&fd, T0 + 600, 0, NULL, 0, NULL);
    s_obd_frame(&fd, T0 + 660, 0, codes, 70, NULL);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_DTC), 2);
    g = s_nth(&log, VEM_RULE_OBD_DTC, 1);
    ck_assert_int_eq(g->first_us, US(T0 + 660));
    ck_assert_uint_eq(json_array_size(json_object_get(g->ev, "new_dtcs")), 70);
    ck_assert_str_ne(g->id, s_nth(&log, VEM_RULE_OBD_DTC, 0)->id);
    s_obd_frame(&fd, T0 + 720, 0, codes, 71, NULL);
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_DTC), 2);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->dtcs_unjudged, 61);
    /* the struct's 2 KiB block, the set's 64 codes (4 bytes each), two MIL runs (40 each) */
    ck_assert_uint_eq(vem_rules_vehicle_bytes(v), 2048 + 64 * 4 + 2 * 40);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* Header VIN and OBD VIN: a notice when they differ, once per episode; padding is no VIN. */
START_TEST(vin_mismatch_and_removal_alarm)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_obd_frame(&fd, T0, 0, NULL, 0, "LZZOTHERVIN000002");
    s_obd_frame(&fd, T0 + 60, 0, NULL, 0, "LZZOTHERVIN000002");
    s_obd_frame(&fd, T0 + 120, 0, NULL, 0, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    s_obd_frame(&fd, T0 + 180, 0, NULL, 0, VIN);
    s_obd_frame(&fd, T0 + 240, 0, NULL, 0, "LZZOTHERVIN000002");
    ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_TAMPER), 2);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_TAMPER, 0);
    ck_assert_str_eq(g->kind, "vin_mismatch");
    ck_assert_int_eq(g->severity, VEM_SEVERITY_NOTICE);
    ck_assert_str_eq(s_str(g->ev, "obd_vin"), "LZZOTHERVIN000002");
    ck_assert_int_eq(s_nth(&log, VEM_RULE_OBD_TAMPER, 1)->first_us, US(T0 + 240));
    s_log_free(&log);

    /* the removal alarm (0x06) is a violation at once; the same alarm again has the same id */
    fd.f->pos_status = 0;
    for (int k = 0; k < 2; k++) {
        s_envelope(fd.f, VEM_HJ1239_CMD_REMOVAL_ALARM, T0 + 600);
        fd.f->seq = 7;
        fd.f->lon_raw = 116400000;
        fd.f->lat_raw = 39900000;
        s_send(&fd);
    }
    ck_assert_int_eq(log.n, 2);
    ck_assert_str_eq(log.v[0].kind, "removal_alarm");
    ck_assert_int_eq(log.v[0].severity, VEM_SEVERITY_VIOLATION);
    ck_assert_double_eq_tol(s_real(log.v[0].ev, "lon"), 116.4, 1e-9);
    ck_assert_str_eq(log.v[0].id, log.v[1].id);
    ck_assert(isnan(log.v[0].measured));
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* ---- the clock: offline, trips ended by silence, completeness ----------------------------- */

START_TEST(offline_after_72_hours)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    ck_assert_int_eq(vem_rules_on_silence(v, &cfg, US(T0), 0, s_collect, &log),
                     0);                     /* never heard */
    s_feed(&fd, T0, 10, s_const, &s_cruise); /* received at T0 + 9 + 1.5 s */
    int64_t rx = US(T0 + 9) + 1500000, h72 = US(72 * 3600);
    ck_assert_int_eq(vem_rules_on_silence(v, &cfg, rx + h72 - 1, 0, s_collect, &log), 0);
    ck_assert_int_eq(vem_rules_on_silence(v, &cfg, rx + h72, 0, s_collect, &log), 1);
    ck_assert_int_eq(vem_rules_on_silence(v, &cfg, rx + h72 + 3600, 0, s_collect, &log), 0);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_OFFLINE, 0);
    ck_assert_str_eq(g->kind, "silence");
    ck_assert_double_eq_tol(g->measured, 72, 1e-9);
    ck_assert_int_eq(g->first_us, US(T0 + 9));
    s_feed(&fd, T0 + 100 * 3600, 10, s_const, &s_cruise);
    ck_assert_int_eq(vem_rules_on_silence(v, &cfg, rx + US(100 * 3600) + h72, 0, s_collect, &log),
                     1);
    ck_assert_str_ne(s_nth(&log, VEM_RULE_OBD_OFFLINE, 1)->id, g->id);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A vehicle that received ten cruising samples (T0 .. T0 + 9) at T0 + 9 + 1.5 s, with intake's
 * paused total then paused_us. */
static vem_rules_vehicle_t *s_heard_at_t0(const vem_rules_config_t *cfg, s_log_t *log,
                                          int64_t paused_us)
{
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
    s_feed_t fd;
    s_feed_init(&fd, v, cfg, log);
    fd.paused_us = paused_us;
    s_feed(&fd, T0, 10, s_const, &s_cruise);
    s_feed_free(&fd);
    return v;
}

/* obd.offline measures silence on the intake clock, as trips do: a full spool's pause is
 * vemd's. Frames received at rx with 100 s paused before them; then intake is paused for another
 * hour. Worked by hand: at rx + 73 h the paused total is 3700 s, so the truck was silent
 * (rx + 73 h - 3700 s) - (rx - 100 s) = 72 h exactly: the notice, measuring 72 h, with the hour
 * paused in its evidence; 1 us before, none. On the wall clock alone it would have come an hour
 * early, at rx + 72 h. */
START_TEST(offline_not_counted_while_intake_paused)
{
    vem_rules_config_t cfg = s_defaults();
    s_log_t log = {0};
    vem_rules_vehicle_t *v = s_heard_at_t0(&cfg, &log, US(100));
    int64_t rx = US(T0 + 9) + 1500000, h = US(3600), paused = US(3700);
    ck_assert_int_eq(vem_rules_on_silence(v, &cfg, rx + 72 * h, paused, s_collect, &log), 0);
    ck_assert_int_eq(vem_rules_on_silence(v, &cfg, rx + 73 * h - 1, paused, s_collect, &log), 0);
    ck_assert_int_eq(vem_rules_on_silence(v, &cfg, rx + 73 * h, paused, s_collect, &log), 1);
    const s_got_t *g = s_nth(&log, VEM_RULE_OBD_OFFLINE, 0);
    ck_assert_double_eq_tol(g->measured, 72, 1e-9);
    ck_assert_double_eq_tol(s_real(g->ev, "intake_paused_s"), 3600, 1e-9);
    ck_assert_str_eq(s_str(g->ev, "last_received_at"), "2024-03-05T08:00:10.500+08:00");
    vem_rules_vehicle_destroy(&v);
    /* a paused total that went back (3700 s when the frames came, 100 s at the sweep, its file
     * lost): the intake clock would say 73 h at rx + 72 h; the wall clock's 72 h counts, and
     * nothing paused */
    v = s_heard_at_t0(&cfg, &log, paused);
    ck_assert_int_eq(vem_rules_on_silence(v, &cfg, rx + 72 * h - 1, US(100), s_collect, &log), 0);
    ck_assert_int_eq(vem_rules_on_silence(v, &cfg, rx + 72 * h, US(100), s_collect, &log), 1);
    g = s_nth(&log, VEM_RULE_OBD_OFFLINE, 1);
    ck_assert_double_eq_tol(g->measured, 72, 1e-9);
    ck_assert_double_eq_tol(s_real(g->ev, "intake_paused_s"), 0, 1e-9);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* rules.md: obd.offline is owed by a registered vehicle. A VIN the registry does not know (a
 * terminal that logged in once with a made-up VIN) is not offline 72 hours later, nor below the
 * day's completeness, and its state may go once its trip is over; the same VIN registered is.
 * A registered truck without a plate yet (registered by VIN before it was plated) is owed. */
START_TEST(offline_only_for_registered)
{
    vem_rules_config_t cfg = s_defaults();
    s_log_t log = {0};
    for (int registered = 0; registered < 2; registered++) {
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
        vem_rules_vehicle_set_registered(v, registered);
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_feed(&fd, T0, 10, s_const, &s_cruise);
        s_cmd(&fd, VEM_HJ1239_CMD_LOGOUT, T0 + 10);
        ck_assert(vem_rules_vehicle_idle(v, &cfg, US(T0 + 11)) == !registered);
        int64_t rx = US(T0 + 10) + 1500000;
        ck_assert_int_eq(vem_rules_on_silence(v, &cfg, rx + US(100 * 3600), 0, s_collect, &log),
                         registered);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_OFFLINE), registered);
        ck_assert_int_eq(vem_rules_on_day(v, &cfg, 19787, 949, 1000, s_collect, &log), registered);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_OFFLINE), 2 * registered);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
    s_log_free(&log);
}
END_TEST

/* A trip that nothing follows is judged once nothing was received for 20 min (twice
 * trip_gap_min), and the verdict
 * is the one the next sample or a flush would give. */
START_TEST(silence_ends_a_trip)
{
    vem_rules_config_t cfg = s_defaults();
    s_series_t s;
    s_series_fill(&s, 10, 58, 100);
    char id[2][VEM_RULES_ID_LEN];
    for (int k = 0; k < 2; k++) {
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_small);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_feed(&fd, T0, 10, s_series_gen, &s);
        int64_t rx = US(T0 + 9) + 1500000;
        if (k == 0) {
            ck_assert_int_eq(vem_rules_on_silence(v, &cfg, rx + US(1200), 0, s_collect, &log), 0);
            ck_assert_int_eq(vem_rules_on_silence(v, &cfg, rx + US(1201), 0, s_collect, &log), 1);
        } else {
            ck_assert_int_eq(vem_rules_flush(v, &cfg, s_collect, &log), 1);
        }
        memcpy(id[k], s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, 0)->id, VEM_RULES_ID_LEN);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
    ck_assert_str_eq(id[0], id[1]);
}
END_TEST

/* 950 of 1000 running seconds is 0.95: at the minimum, fine; 949 is below: a notice. */
START_TEST(daily_completeness)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, NULL);
    s_log_t log = {0};
    ck_assert_double_eq(vem_rules_completeness(0, 0), 1);
    ck_assert_double_eq(vem_rules_completeness(950, 1000), 0.95);
    ck_assert_int_eq(vem_rules_on_day(v, &cfg, 19787, 950, 1000, s_collect, &log), 0);
    ck_assert_int_eq(vem_rules_on_day(v, &cfg, 19787, 949, 1000, s_collect, &log), 1);
    const s_got_t *g = &log.v[0];
    ck_assert_int_eq(g->rule, VEM_RULE_OBD_OFFLINE);
    ck_assert_str_eq(g->kind, "completeness");
    ck_assert_str_eq(s_str(g->ev, "day"), "2024-03-05");
    ck_assert_int_eq(g->first_us, US(T0 - 8 * 3600)); /* Beijing midnight */
    ck_assert_double_eq_tol(g->measured, 0.949, 1e-12);
    s_log_free(&log);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* ---- the same verdicts whatever the arrival ----------------------------------------------- */

/* A day of trouble: MIL on, urea empty for 30 min, a frozen sensor, NOx windows that fail. */
static void s_trouble_gen(long i, s_phys_t *p, const void *arg)
{
    (void)arg;
    *p = s_cruise;
    p->rpm = 1000 + (i % 2) * 60;
    p->torque = 58;
    p->friction = 8;
    p->intake = 400;
    p->fuel = 0;
    p->nox_down = i < 1000 ? 100 + i % 7 : 123.45;
    p->reagent = i < 200 ? 40 : 1.2;
}

static void s_trouble(s_feed_t *fd, int64_t t0)
{
    s_obd_frame(fd, t0, 1, NULL, 0, NULL);
    s_feed(fd, t0, 2400, s_trouble_gen, NULL);
}

static void s_rest_gen(long i, s_phys_t *p, const void *arg)
{
    *p = ((const s_phys_t *)arg)[i];
}

static int s_ids(const s_log_t *log, char ids[][VEM_RULES_ID_LEN])
{
    for (int i = 0; i < log->n; i++)
        memcpy(ids[i], log->v[i].id, VEM_RULES_ID_LEN);
    return log->n;
}

/* The same input twice gives the same verdicts with the same ids. */
START_TEST(same_input_same_ids)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_engine_facts_t facts = s_small;
    facts.whtc_work_kwh = 1;
    static char ids[2][64][VEM_RULES_ID_LEN];
    int n[2];
    for (int k = 0; k < 2; k++) {
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &facts);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_trouble(&fd, T0);
        vem_rules_flush(v, &cfg, s_collect, &log);
        n[k] = s_ids(&log, ids[k]);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_MIL_ON), 1);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_REAGENT_EMPTY), 1);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_WINDOW), 1);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_TAMPER), 1);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
    ck_assert_int_eq(n[0], n[1]);
    for (int i = 0; i < n[0]; i++)
        ck_assert_str_eq(ids[0][i], ids[1][i]);
}
END_TEST

/* The trouble trip's 2400 samples (s_trouble_gen), made once. */
static const s_phys_t *s_trouble_table(void)
{
    static s_phys_t all[2400];
    static bool made;
    for (int i = 0; !made && i < 2400; i++)
        s_trouble_gen(i, &all[i], NULL);
    made = true;
    return all;
}

/* Its samples T0 .. T0 + 599 live, then T0 + 700 .. T0 + 799 after a hole of 100 s (*before:
 * the vehicle's memory between the two, when asked for). */
static void s_hole_of_100(s_feed_t *fd, const s_phys_t *all, size_t *before)
{
    s_feed(fd, T0, 600, s_rest_gen, all);
    if (before)
        *before = vem_rules_vehicle_bytes(fd->v);
    s_feed(fd, T0 + 700, 100, s_rest_gen, all + 700);
}

/* Runs 1 .. runs - 1 gave run 0's verdicts: as many, with the same ids, and the same NOx
 * window (its windows, valid windows and percentile). */
static void s_same_as_first(char ids[][64][VEM_RULES_ID_LEN], const int *n, json_t *const *window,
                            int runs)
{
    for (int k = 1; k < runs; k++) {
        ck_assert_int_eq(n[k], n[0]);
        for (int i = 0; i < n[0]; i++)
            ck_assert_str_eq(ids[k][i], ids[0][i]);
        ck_assert_int_eq(s_int(window[k], "windows"), s_int(window[0], "windows"));
        ck_assert_int_eq(s_int(window[k], "valid_windows"), s_int(window[0], "valid_windows"));
        ck_assert_double_eq(s_real(window[k], "percentile_mg_kwh"),
                            s_real(window[0], "percentile_mg_kwh"));
    }
}

/* The same trip re-sent (0x03) after the terminal went on live again, and the same trip live
 * with an old re-sent frame in the middle of it: the trip's verdicts and ids are those of the
 * trip fed live and alone. */
START_TEST(backlog_and_late_frames_give_live_verdicts)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_engine_facts_t facts = s_small;
    facts.whtc_work_kwh = 1;
    static char ids[3][64][VEM_RULES_ID_LEN];
    int n[3];
    json_t *window[3];
    for (int k = 0; k < 3; k++) {
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &facts);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        if (k == 0) {
            s_trouble(&fd, T0);
        } else if (k == 1) {
            s_feed(&fd, T0 + 5 * 3600, 10, s_const, &s_cruise); /* live, later */
            fd.cmd = VEM_HJ1239_CMD_RESEND;
            s_trouble(&fd, T0);
        } else {
            s_obd_frame(&fd, T0, 1, NULL, 0, NULL);
            s_feed(&fd, T0, 1000, s_trouble_gen, NULL);
            fd.cmd = VEM_HJ1239_CMD_RESEND;
            s_phys_t odd = s_cruise;
            odd.reagent = 100;
            odd.nox_down = 3000;
            s_feed(&fd, T0 - 7200, 10, s_const, &odd);
            fd.cmd = VEM_HJ1239_CMD_REALTIME;
            int64_t t[1400];
            for (int i = 0; i < 1400; i++)
                t[i] = T0 + 1000 + i;
            static s_phys_t rest[1400];
            for (int i = 0; i < 1400; i++)
                s_trouble_gen(1000 + i, &rest[i], NULL);
            s_feed_times(&fd, t, 1400, s_rest_gen, rest);
            ck_assert_uint_eq(vem_rules_vehicle_counts(v)->late_samples, 10);
        }
        vem_rules_flush(v, &cfg, s_collect, &log);
        n[k] = s_ids(&log, ids[k]);
        window[k] = json_incref(s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, 0)->ev);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
    s_same_as_first(ids, n, window, 3);
    ck_assert_str_eq(s_str(window[1], "trip.track"), "backfill");
    ck_assert_str_eq(s_str(window[2], "trip.track"), "live");
    for (int k = 0; k < 3; k++)
        json_decref(window[k]);
}
END_TEST

/* The trouble trip of same_input_same_ids (samples 0 .. 2399 from T0; reagent 1.2 % from
 * sample 200 on) fed as a terminal whose link drops for 900 s: live data stops after sample
 * 899 and goes on from 1800, and the terminal re-sends the hole (0x03), 100 samples after each
 * 60 live ones, while it sends live data. rules.md: a trip is the data between login and
 * logout or gaps longer than 10 minutes, and a re-sent backlog gives the verdicts that live
 * data would have given. In time order, reagent at or below 2 % for 30 minutes (1800
 * qualifying samples) from sample 200 is a violation at sample 1999; judged as it came, the
 * live trip would split at the 900 s gap (700 + 600 samples) and the hole form its own trip of
 * 900: no reagent violation. So the trip fed this way gives the time-order verdicts with the
 * same ids, the NOx window the same windows; held are the 540 live samples sent before the
 * hole was filled (9 x 60). A copy of samples 0 .. 999 and 2000 .. 2099 re-sent after the trip
 * is not judged again (1100 copies, no new verdict). With backlog_wait_min 0 the hole is
 * judged as it comes, and there is no reagent violation: what this build did before. */
START_TEST(link_drop_backlog_gives_time_order_verdicts)
{
    vem_rules_engine_facts_t facts = s_small;
    facts.whtc_work_kwh = 1;
    const s_phys_t *all = s_trouble_table();
    static char ids[4][64][VEM_RULES_ID_LEN];
    int n[4];
    json_t *window[4] = {NULL};
    for (int k = 0; k < 4; k++) {
        vem_rules_config_t cfg = s_defaults();
        if (k == 3)
            cfg.backlog_wait_min = 0;
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &facts);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        if (k == 0) {
            s_trouble(&fd, T0);
        } else {
            s_obd_frame(&fd, T0, 1, NULL, 0, NULL);
            s_feed(&fd, T0, 900, s_rest_gen, all);
            for (int c = 0; c < 9; c++) {
                fd.cmd = VEM_HJ1239_CMD_REALTIME;
                s_feed(&fd, T0 + 1800 + 60 * c, 60, s_rest_gen, all + 1800 + 60 * c);
                fd.cmd = VEM_HJ1239_CMD_RESEND;
                s_feed(&fd, T0 + 900 + 100 * c, 100, s_rest_gen, all + 900 + 100 * c);
            }
            fd.cmd = VEM_HJ1239_CMD_REALTIME;
            s_feed(&fd, T0 + 2340, 60, s_rest_gen, all + 2340);
            const vem_rules_counts_t *c = vem_rules_vehicle_counts(v);
            ck_assert_uint_eq(c->held_samples, k == 3 ? 0 : 540);
            ck_assert_uint_eq(c->late_samples, k == 3 ? 900 : 0);
            if (k == 2) {
                fd.cmd = VEM_HJ1239_CMD_RESEND;
                s_feed(&fd, T0, 1000, s_rest_gen, all);
                s_feed(&fd, T0 + 2000, 100, s_rest_gen, all + 2000);
                ck_assert_uint_eq(c->copy_samples, 1100);
                ck_assert_uint_eq(c->late_samples, 0);
            }
        }
        vem_rules_flush(v, &cfg, s_collect, &log);
        n[k] = s_ids(&log, ids[k]);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_REAGENT_EMPTY), k == 3 ? 0 : 1);
        if (k < 3) {
            const s_got_t *g = s_nth(&log, VEM_RULE_OBD_REAGENT_EMPTY, 0);
            ck_assert_int_eq(g->first_us, US(T0 + 200));
            ck_assert_int_eq(g->last_us, US(T0 + 1999));
            ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_WINDOW), 1);
            window[k] = json_incref(s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, 0)->ev);
        }
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
    s_same_as_first(ids, n, window, 3);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(s_int(window[k], "trip.samples.count"), 2400);
    for (int k = 0; k < 3; k++)
        json_decref(window[k]);
}
END_TEST

/* Live data T0 .. T0 + 599, then from T0 + 700 on (a hole of 100 s): from T0 + 700 the samples
 * are held (judged: 600). What ends the wait, each worked from rules.c's definition:
 * 0: the logout at T0 + 800: the 100 held are judged first (700);
 * 1: the silence sweep, twice trip_gap_min (1200 s) after the last receipt and not before it:
 *    700, and the trip ended;
 * 2: a flush: 700;
 * 3: live data on to T0 + 1299 holds 600 (newest - first held = 599 < 600 s); the sample at
 *    T0 + 1300 makes it 600 s: all 601 are judged (1201), and the hole's samples re-sent
 *    after that go to the back-fill track (late_samples 100);
 * 4: the next frame received 1301 s after the last (a replay, with no sweep): the held are
 *    judged, the trip ends in that silence, and the frame's sample starts the next (701);
 * 5: the hole filled (its 100 samples re-sent): all 800 judged at once, none on the back-fill
 *    track. */
START_TEST(held_samples_judged_when_their_wait_ends)
{
    const s_phys_t *all = s_trouble_table();
    for (int k = 0; k < 6; k++) {
        vem_rules_config_t cfg = s_defaults();
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_small);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        size_t before;
        s_hole_of_100(&fd, all, &before);
        const vem_rules_counts_t *c = vem_rules_vehicle_counts(v);
        ck_assert_uint_eq(c->samples, 600);
        ck_assert_uint_eq(c->held_samples, 100);
        ck_assert_uint_eq(v->nheld, 100);
        /* room for 64, then 128 held samples of 32 bytes; nothing else grows while they wait */
        ck_assert_uint_eq(sizeof(vem_rules_held_t), 32);
        ck_assert_uint_eq(vem_rules_vehicle_bytes(v), before + 128 * 32);
        int64_t silent = fd.rx_us + US(2 * 10 * 60);
        switch (k) {
        case 0:
            s_cmd(&fd, VEM_HJ1239_CMD_LOGOUT, T0 + 800);
            ck_assert_uint_eq(c->samples, 700);
            break;
        case 1:
            vem_rules_on_silence(v, &cfg, silent, 0, s_collect, &log);
            ck_assert_uint_eq(c->samples, 600);
            vem_rules_on_silence(v, &cfg, silent + 1, 0, s_collect, &log);
            ck_assert_uint_eq(c->samples, 700);
            ck_assert(!v->live.open);
            break;
        case 2:
            vem_rules_flush(v, &cfg, s_collect, &log);
            ck_assert_uint_eq(c->samples, 700);
            break;
        case 3:
            s_feed(&fd, T0 + 800, 500, s_rest_gen, all + 800);
            ck_assert_uint_eq(c->samples, 600);
            ck_assert_uint_eq(v->nheld, 600);
            s_feed(&fd, T0 + 1300, 1, s_rest_gen, all + 1300);
            ck_assert_uint_eq(c->samples, 1201);
            ck_assert_uint_eq(v->nheld, 0);
            fd.cmd = VEM_HJ1239_CMD_RESEND;
            s_feed(&fd, T0 + 600, 100, s_rest_gen, all + 600);
            ck_assert_uint_eq(c->late_samples, 100);
            break;
        case 4:
            fd.late_s = 1300; /* T0 + 800 + 1300 + 1.5 s, against T0 + 799 + 1.5 s */
            s_feed(&fd, T0 + 800, 1, s_rest_gen, all + 800);
            ck_assert_uint_eq(c->samples, 701);
            ck_assert_int_eq(v->live.start.sec, T0 + 800);
            break;
        default:
            fd.cmd = VEM_HJ1239_CMD_RESEND;
            s_feed(&fd, T0 + 600, 100, s_rest_gen, all + 600);
            ck_assert_uint_eq(c->samples, 800);
            ck_assert_uint_eq(c->late_samples, 0);
            ck_assert_int_eq(v->live.start.sec, T0);
            break;
        }
        ck_assert_uint_eq(v->nheld, 0);
        ck_assert_ptr_null(v->held); /* freed once empty */
        ck_assert_uint_eq(v->held_cap, 0);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* What is held is judged before a sample is placed when the live trip has been silent (twice
 * trip_gap_min on the intake clock) or backlog_wait_min was reloaded to 0, as the sweep judges
 * it at live: so a copy of a held second is a copy whichever comes first, and a run with the
 * sweep and a replay without it count and judge the same. Live data T0 .. T0 + 599, then
 * T0 + 700 .. T0 + 799 held; then copies of T0 + 750 and T0 + 100 re-sent (0x03), received
 * 1300 s after the last frame, (a) after the sweep judged what was held and ended the trip,
 * (b) with no sweep (a replay): the same counts and the same verdicts, ids included. Both: 700
 * judged, the copy of T0 + 750 a copy; T0 + 100 lies before the hole whose wait ended, which
 * the live trip keeps as a gap (s_gap), so it is a copy too (copies 2, nothing late). The same
 * with the wait reloaded to 0 instead of the silence: T0 + 750 a copy. */
START_TEST(silence_and_reload_judge_held_first)
{
    const s_phys_t *all = s_trouble_table();
    vem_rules_counts_t got[2];
    static char ids[2][64][VEM_RULES_ID_LEN];
    int n[2];
    for (int k = 0; k < 3; k++) {
        vem_rules_config_t cfg = s_defaults();
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_small);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_hole_of_100(&fd, all, NULL);
        ck_assert_uint_eq(v->nheld, 100);
        if (k == 0) {
            vem_rules_on_silence(v, &cfg, fd.rx_us + US(1300), 0, s_collect, &log);
            ck_assert(!v->live.open);
        }
        if (k == 2)
            cfg.backlog_wait_min = 0;
        else
            fd.late_s = 1349; /* T0 + 750 + 1349 + 1.5 s, against T0 + 799 + 1.5 s */
        fd.cmd = VEM_HJ1239_CMD_RESEND;
        s_feed(&fd, T0 + 750, 1, s_rest_gen, all + 750);
        const vem_rules_counts_t *c = vem_rules_vehicle_counts(v);
        ck_assert_uint_eq(c->samples, 700);
        ck_assert_uint_eq(c->copy_samples, 1);
        ck_assert_uint_eq(v->nheld, 0);
        if (k < 2) {
            s_feed(&fd, T0 + 100, 1, s_rest_gen, all + 100);
            ck_assert_uint_eq(c->late_samples, 0);
            ck_assert_uint_eq(c->copy_samples, 2);
            ck_assert_uint_eq(c->samples, 700);
            vem_rules_flush(v, &cfg, s_collect, &log);
            got[k] = *c;
            n[k] = s_ids(&log, ids[k]);
        }
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
    ck_assert_mem_eq(&got[0], &got[1], sizeof got[0]);
    ck_assert_int_eq(n[0], n[1]);
    for (int i = 0; i < n[0]; i++)
        ck_assert_str_eq(ids[0][i], ids[1][i]);
}
END_TEST

/* What s_hold keeps true, after every frame: held samples by time, each after the live
 * track's next second; samples held only in an open live trip; no more than the room, nor
 * the most a wait holds. */
static void s_held_invariants(const vem_rules_vehicle_t *v, const vem_rules_config_t *cfg,
                              s_log_t *log)
{
    s_log_free(log);
    ck_assert_uint_le(v->nheld, cfg->backlog_wait_min * 60);
    ck_assert(!v->nheld || v->live.open);
    ck_assert_uint_le(v->held_off + v->nheld, v->held_cap);
    for (unsigned i = 0; i < v->nheld; i++) {
        int64_t t = v->held[v->held_off + i].sec;
        ck_assert_int_gt(t, v->live.newest + 1);
        if (i)
            ck_assert_int_gt(t, v->held[v->held_off + i - 1].sec);
    }
}

/* v saved and loaded: the same memory and held samples (its replacement is returned). */
static vem_rules_vehicle_t *s_reloaded(vem_rules_vehicle_t *v)
{
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    vem_rules_vehicle_save(v, &buf, &len, &cap);
    char err[256];
    vem_rules_vehicle_t *c = vem_rules_vehicle_load(buf, len, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_uint_eq(vem_rules_vehicle_bytes(c), vem_rules_vehicle_bytes(v));
    ck_assert_uint_eq(c->nheld, v->nheld);
    free(buf);
    vem_rules_vehicle_destroy(&v);
    return c;
}

/* 6,000 seconds of live data with random holes (2 to 2,501 s, one frame in 40), each hole
 * re-sent in random pieces at random times among the live data, the rest at the end in
 * reverse; 20 seeds, waits of 1, 2, 10 and 30 minutes, holes waited for from 1, 10 and 60
 * missing seconds on; a checkpoint saved and loaded every 97 frames. Each second is sent once, so
 * each is judged once, on one track or the other, and none is a copy; the invariants hold after
 * every frame, and nothing is held at the end. */
START_TEST(random_holes_each_second_judged_once)
{
    enum { S_HOLES_N = 6000 };
    static s_phys_t all[S_HOLES_N];
    for (int i = 0; i < S_HOLES_N; i++)
        all[i] = s_cruise;
    const unsigned waits[] = {1, 2, 10, 30}, skips[] = {1, 10, 60};
    for (unsigned seed = 1; seed <= 20; seed++) {
        srand(seed);
        vem_rules_config_t cfg = s_defaults();
        cfg.backlog_wait_min = waits[seed % 4];
        cfg.backlog_hole_s = skips[seed % 3];
        for (int r = 0; r < VEM_RULE_COUNT; r++) /* the verdicts are not what it looks at */
            cfg.enabled[r] = r == VEM_RULE_OBD_NOX_WINDOW;
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_small);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        static int64_t pend[S_HOLES_N];
        int npend = 0, frames = 0;
        int64_t t[10];
        for (int i = 0; i < S_HOLES_N;) {
            if (rand() % 40 == 0) { /* a hole */
                int len = 2 + rand() % 2500;
                for (int j = 0; j < len && i < S_HOLES_N; j++)
                    pend[npend++] = T0 + i++;
                continue;
            }
            int k = 1 + rand() % 10, m = 0;
            while (m < k && i < S_HOLES_N)
                t[m++] = T0 + i++;
            fd.cmd = VEM_HJ1239_CMD_REALTIME;
            s_feed_times(&fd, t, m, s_rest_gen, all + (t[0] - T0));
            s_held_invariants(fd.v, &cfg, &log);
            if (npend && rand() % 3 == 0) { /* a piece of what is missing re-sent */
                int at = rand() % npend, cnt = 1 + rand() % 100;
                cnt = at + cnt > npend ? npend - at : cnt;
                fd.cmd = VEM_HJ1239_CMD_RESEND;
                for (int j = 0; j < cnt; j++) {
                    s_feed_times(&fd, &pend[at + j], 1, s_rest_gen, all + (pend[at + j] - T0));
                    s_held_invariants(fd.v, &cfg, &log);
                }
                memmove(pend + at, pend + at + cnt, (size_t)(npend - at - cnt) * sizeof *pend);
                npend -= cnt;
            }
            if (++frames % 97 == 0)
                fd.v = s_reloaded(fd.v);
        }
        fd.cmd = VEM_HJ1239_CMD_RESEND;
        for (int j = npend - 1; j >= 0; j--) {
            s_feed_times(&fd, &pend[j], 1, s_rest_gen, all + (pend[j] - T0));
            s_held_invariants(fd.v, &cfg, &log);
        }
        v = fd.v;
        vem_rules_flush(v, &cfg, s_collect, &log);
        const vem_rules_counts_t *c = vem_rules_vehicle_counts(v);
        ck_assert_msg(c->samples == S_HOLES_N && c->copy_samples == 0,
                      "seed %u: %lu judged, %lu copies", seed, (unsigned long)c->samples,
                      (unsigned long)c->copy_samples);
        ck_assert_ptr_null(v->held);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* A terminal that skips single seconds, with no link drop: reagent 1.2 % (at or below 2 %)
 * while running, every second T0 + i but those with i % 30 == 29. The 1800 qualifying samples
 * of reagent_minutes (30) are those up to T0 + x with x + 1 - floor((x + 1) / 30) = 1800:
 * x = 1861 (1862 - 62), itself sent (1861 % 30 = 1). With backlog_hole_s at its default (5)
 * a skip of 1 s is not waited for: the violation (from T0 to T0 + 1861) comes with the frame
 * that holds T0 + 1861 and nothing is ever held. With backlog_hole_s = 1 every skip is a hole
 * to wait for: at T0 + 1861 nothing of it is judged yet (each held sample waits for the 600 s
 * of backlog_wait_min), and the flush judges it with the same id. */
START_TEST(skipped_seconds_judged_at_once)
{
    s_phys_t low = s_cruise;
    low.reagent = 1.2;
    static int64_t t[2400];
    long n = 0, upto = 0;
    for (int i = 0; i < 2400; i++) {
        if (i % 30 == 29)
            continue;
        if (i == 1861)
            upto = n + 1;
        t[n++] = T0 + i;
    }
    char id[2][VEM_RULES_ID_LEN];
    for (int k = 0; k < 2; k++) {
        vem_rules_config_t cfg = s_defaults();
        ck_assert_uint_eq(cfg.backlog_hole_s, 5);
        if (k == 1)
            cfg.backlog_hole_s = 1;
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, NULL);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_feed_times(&fd, t, upto, s_const, &low);
        const vem_rules_counts_t *c = vem_rules_vehicle_counts(v);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_REAGENT_EMPTY), k == 0 ? 1 : 0);
        ck_assert_uint_eq(c->held_samples, k == 0 ? 0 : 1800 - 29);
        s_feed_times(&fd, t + upto, n - upto, s_const, &low);
        vem_rules_flush(v, &cfg, s_collect, &log);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_REAGENT_EMPTY), 1);
        const s_got_t *g = s_nth(&log, VEM_RULE_OBD_REAGENT_EMPTY, 0);
        ck_assert_int_eq(g->first_us, US(T0));
        ck_assert_int_eq(g->last_us, US(T0 + 1861));
        snprintf(id[k], sizeof id[k], "%s", g->id);
        ck_assert_uint_eq(c->samples, (uint64_t)n);
        ck_assert_uint_eq(c->late_samples, 0);
        ck_assert_ptr_null(v->held);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
    ck_assert_str_eq(id[0], id[1]);
}
END_TEST

/* Where a skip (fewer than backlog_hole_s = 5 missing seconds) ends and a hole begins, live
 * data T0 .. T0 + 99 and then:
 *  - T0 + 104 (100 .. 103 missing: 4) is judged at once; T0 + 110 (105 .. 109: 5) is held;
 *    the hole re-sent in order without T0 + 107 (the terminal skipped it): T0 + 105 took the
 *    live track's next second, so the hole fills from its start and T0 + 108, with only that
 *    skip before it, is judged at once; with T0 + 109 the held T0 + 110 is next: nothing held,
 *    nothing late, 106 samples judged;
 *  - a hole of 100 (T0 + 100 .. 199; T0 + 200 .. 299 held) and live data T0 + 301 .. 399 after
 *    a skip of T0 + 300, all held; the hole re-sent in order, the last 3 s in a frame of their
 *    own: with T0 + 196 in, only 3 s (fewer than backlog_hole_s) are missing in front of what
 *    is held and it still waits (the rest of the hole is on its way, not a skip); with
 *    T0 + 199, all is judged, across the skip between two held samples: 399 samples, none
 *    late. */
START_TEST(skip_or_hole_at_the_edge)
{
    for (int k = 0; k < 2; k++) {
        vem_rules_config_t cfg = s_defaults();
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, NULL);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        const vem_rules_counts_t *c = vem_rules_vehicle_counts(v);
        s_feed(&fd, T0, 100, s_const, &s_cruise);
        if (k == 0) {
            s_feed(&fd, T0 + 104, 1, s_const, &s_cruise);
            ck_assert_uint_eq(c->samples, 101);
            ck_assert_uint_eq(c->held_samples, 0);
            s_feed(&fd, T0 + 110, 1, s_const, &s_cruise);
            ck_assert_uint_eq(c->samples, 101);
            ck_assert_uint_eq(v->nheld, 1);
            fd.cmd = VEM_HJ1239_CMD_RESEND;
            s_feed(&fd, T0 + 105, 2, s_const, &s_cruise);
            ck_assert_uint_eq(c->samples, 103);
            s_feed(&fd, T0 + 108, 1, s_const, &s_cruise);
            ck_assert_uint_eq(c->samples, 104);
            ck_assert_uint_eq(v->nheld, 1);
            s_feed(&fd, T0 + 109, 1, s_const, &s_cruise);
            ck_assert_uint_eq(c->samples, 106);
        } else {
            s_feed(&fd, T0 + 200, 100, s_const, &s_cruise);
            s_feed(&fd, T0 + 301, 99, s_const, &s_cruise);
            ck_assert_uint_eq(v->nheld, 199);
            fd.cmd = VEM_HJ1239_CMD_RESEND;
            s_feed(&fd, T0 + 100, 97, s_const, &s_cruise);
            ck_assert_uint_eq(c->samples, 197);
            ck_assert_uint_eq(v->nheld, 199);
            s_feed(&fd, T0 + 197, 3, s_const, &s_cruise);
            ck_assert_uint_eq(c->samples, 399);
        }
        ck_assert_uint_eq(v->nheld, 0);
        ck_assert_uint_eq(c->late_samples, 0);
        ck_assert_uint_eq(c->copy_samples, 0);
        ck_assert_ptr_null(v->held);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* The trouble trip (samples 0 .. 2399 from T0) fed in time order (run 0), and as:
 * 1: a terminal whose link drops for 60 s (T0 + 900 .. 959) and that re-sends what it stored
 *    newest first, a second a frame (a GB 17691 terminal sends a frame a second): the hole
 *    fills from its end, and its last seconds, less than backlog_hole_s after the live newest,
 *    join what is held rather than pass for a skip;
 * 2: a terminal that uploads every 8 s and loses one frame (T0 + 1200 .. 1207), re-sent after
 *    the next: 8 missing seconds are a hole to wait for at the default (5);
 * 3: a link drop of 62 s (T0 + 900 .. 961) re-sent newest first in frames of 10 s, each in
 *    time order inside ([952 .. 961], [942 .. 951], ... [902 .. 911], then [900, 901]): T0 + 902
 *    is less than backlog_hole_s after the live newest, but its frame's run reaches what is
 *    held, so it joins it.
 * Each gives run 0's verdicts, ids and NOx window, with nothing on the back-fill track; held
 * are the live samples after the hole (10, 8 and 10) and the re-sent ones that joined them
 * (run 1: T0 + 959 .. 901, 59, as T0 + 900 is the live track's next; run 3: T0 + 902 .. 961,
 * 60). */
START_TEST(resent_newest_first_and_short_frames_give_time_order)
{
    vem_rules_engine_facts_t facts = s_small;
    facts.whtc_work_kwh = 1;
    const s_phys_t *all = s_trouble_table();
    static char ids[4][64][VEM_RULES_ID_LEN];
    int n[4];
    json_t *window[4];
    for (int k = 0; k < 4; k++) {
        vem_rules_config_t cfg = s_defaults();
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &facts);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_obd_frame(&fd, T0, 1, NULL, 0, NULL);
        if (k == 0) {
            s_feed(&fd, T0, 2400, s_rest_gen, all);
        } else if (k == 3) {
            s_feed(&fd, T0, 900, s_rest_gen, all);
            s_feed(&fd, T0 + 962, 10, s_rest_gen, all + 962);
            fd.cmd = VEM_HJ1239_CMD_RESEND;
            for (int64_t t = T0 + 952; t >= T0 + 902; t -= 10)
                s_feed(&fd, t, 10, s_rest_gen, all + (t - T0));
            s_feed(&fd, T0 + 900, 2, s_rest_gen, all + 900);
            fd.cmd = VEM_HJ1239_CMD_REALTIME;
            s_feed(&fd, T0 + 972, 1428, s_rest_gen, all + 972);
        } else if (k == 1) {
            s_feed(&fd, T0, 900, s_rest_gen, all);
            s_feed(&fd, T0 + 960, 10, s_rest_gen, all + 960);
            fd.cmd = VEM_HJ1239_CMD_RESEND;
            for (int64_t t = T0 + 959; t >= T0 + 900; t--)
                s_feed(&fd, t, 1, s_rest_gen, all + (t - T0));
            fd.cmd = VEM_HJ1239_CMD_REALTIME;
            s_feed(&fd, T0 + 970, 1430, s_rest_gen, all + 970);
        } else {
            for (long t = 0; t < 2400; t += 8) {
                if (t != 1200) {
                    fd.cmd = VEM_HJ1239_CMD_REALTIME;
                    s_feed(&fd, T0 + t, 8, s_rest_gen, all + t);
                }
                if (t == 1208) {
                    fd.cmd = VEM_HJ1239_CMD_RESEND;
                    s_feed(&fd, T0 + 1200, 8, s_rest_gen, all + 1200);
                }
            }
        }
        const vem_rules_counts_t *c = vem_rules_vehicle_counts(v);
        ck_assert_uint_eq(c->late_samples, 0);
        const uint64_t held[] = {0, 10 + 59, 8, 10 + 60};
        ck_assert_uint_eq(c->held_samples, held[k]);
        vem_rules_flush(v, &cfg, s_collect, &log);
        n[k] = s_ids(&log, ids[k]);
        ck_assert_int_eq(s_count(&log, VEM_RULE_OBD_NOX_WINDOW), 1);
        window[k] = json_incref(s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, 0)->ev);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
    s_same_as_first(ids, n, window, 4);
    for (int k = 0; k < 4; k++)
        json_decref(window[k]);
}
END_TEST

/* vem_rules_on_frame_counted adds what each frame changed in the vehicle's counts, worked from
 * s_take: ten samples from T0 (judged 10); ten from T0 + 20 after a hole of 10 s (held 10);
 * T0 + 5 .. 9 re-sent (copies 5); the hole T0 + 10 .. 19 re-sent (judged 10, and the 10 held:
 * 30 in all). Summed over a new vehicle's frames, the counts themselves. */
START_TEST(counted_frames_add_their_counts)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, NULL);
    vem_hj1239_frame_t *f = calloc(1, sizeof *f);
    ck_assert_ptr_nonnull(f);
    const struct {
        uint8_t cmd;
        int64_t from;
        int n;
        uint64_t samples, held, copies;
    } steps[] = {
        {VEM_HJ1239_CMD_REALTIME, T0, 10, 10, 0, 0},
        {VEM_HJ1239_CMD_REALTIME, T0 + 20, 10, 0, 10, 0},
        {VEM_HJ1239_CMD_RESEND, T0 + 5, 5, 0, 0, 5},
        {VEM_HJ1239_CMD_RESEND, T0 + 10, 10, 20, 0, 0},
    };
    vem_rules_counts_t sum = {0};
    for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
        s_envelope(f, steps[k].cmd, steps[k].from + steps[k].n - 1);
        f->layout = VEM_HJ1239_LAYOUT_BLOCK_TIME;
        for (int j = 0; j < steps[k].n; j++)
            vem_test_stream_block(&f->blocks[f->nblocks++], steps[k].from + j, &s_cruise);
        vem_rules_counts_t added = {0};
        vem_rules_on_frame_counted(v, &cfg, f, US(steps[k].from + 20), 0, k + 1, NULL, NULL,
                                   &added);
        ck_assert_uint_eq(added.samples, steps[k].samples);
        ck_assert_uint_eq(added.held_samples, steps[k].held);
        ck_assert_uint_eq(added.copy_samples, steps[k].copies);
        ck_assert_uint_eq(added.late_samples, 0);
        vem_rules_counts_t none = {0};
        vem_rules_counts_add(&sum, &none, &added);
    }
    ck_assert_mem_eq(&sum, vem_rules_vehicle_counts(v), sizeof sum);
    ck_assert_uint_eq(sum.samples, 30);
    free(f);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* The seconds t[0..n) of the trouble trip in one frame of block times (in that order,
 * skips and all), as a terminal that packs what it stored into frames of up to ten. */
static void s_frame_of(s_feed_t *fd, const int64_t *t, int n)
{
    s_envelope(fd->f, fd->cmd, t[n - 1]);
    fd->f->layout = VEM_HJ1239_LAYOUT_BLOCK_TIME;
    const s_phys_t *all = s_trouble_table();
    for (int j = 0; j < n; j++)
        vem_test_stream_block(&fd->f->blocks[fd->f->nblocks++], t[j], &all[t[j] - T0]);
    s_send(fd);
}

/* A terminal that skipped T0 + 902 (never sent, a skip of 1 s) and whose link then drops for
 * T0 + 900 .. 961; it re-sends the hole newest first. 0: time order; 1: a second a frame,
 * 961 .. 903, 901, 900; 2: frames of ten stored samples newest first, [952..961] .. [912..921],
 * [901, 903..911], [900]. T0 + 901 has only a skip before it, but its frame reaches what is held
 * (up to a skip): it may be the hole filled from its end, and T0 + 900 is still to come, so it
 * is held. Expected: run 0's verdicts and ids, nothing on the back-fill track (a review found
 * T0 + 901 judged at once and T0 + 900 on the back-fill track). */
START_TEST(resent_newest_first_with_a_skip_near_the_hole_start)
{
    vem_rules_engine_facts_t facts = s_small;
    facts.whtc_work_kwh = 1;
    static char ids[3][64][VEM_RULES_ID_LEN];
    int n[3];
    json_t *window[3];
    uint64_t late[3];
    for (int k = 0; k < 3; k++) {
        vem_rules_config_t cfg = s_defaults();
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &facts);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_obd_frame(&fd, T0, 1, NULL, 0, NULL);
        int64_t t[10];
        if (k == 0) {
            for (int64_t s = T0; s < T0 + 2400; s++) {
                if (s == T0 + 902)
                    continue;
                t[0] = s;
                s_frame_of(&fd, t, 1);
            }
        } else {
            for (int64_t s = T0; s < T0 + 900; s++) {
                t[0] = s;
                s_frame_of(&fd, t, 1);
            }
            for (int64_t s = T0 + 962; s < T0 + 972; s++) {
                t[0] = s;
                s_frame_of(&fd, t, 1);
            }
            fd.cmd = VEM_HJ1239_CMD_RESEND;
            if (k == 1) {
                for (int64_t s = T0 + 961; s >= T0 + 900; s--) {
                    if (s == T0 + 902)
                        continue;
                    t[0] = s;
                    s_frame_of(&fd, t, 1);
                }
            } else {
                for (int64_t s = T0 + 952; s >= T0 + 912; s -= 10) {
                    for (int j = 0; j < 10; j++)
                        t[j] = s + j;
                    s_frame_of(&fd, t, 10);
                }
                t[0] = T0 + 901;
                for (int j = 1; j < 10; j++)
                    t[j] = T0 + 902 + j;
                s_frame_of(&fd, t, 10);
                t[0] = T0 + 900;
                s_frame_of(&fd, t, 1);
            }
            fd.cmd = VEM_HJ1239_CMD_REALTIME;
            for (int64_t s = T0 + 972; s < T0 + 2400; s++) {
                t[0] = s;
                s_frame_of(&fd, t, 1);
            }
        }
        late[k] = vem_rules_vehicle_counts(v)->late_samples;
        vem_rules_flush(v, &cfg, s_collect, &log);
        n[k] = s_ids(&log, ids[k]);
        window[k] = json_incref(s_nth(&log, VEM_RULE_OBD_NOX_WINDOW, 0)->ev);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
    s_same_as_first(ids, n, window, 3);
    for (int k = 1; k < 3; k++)
        ck_assert_msg(late[k] == 0, "run %d: %lu samples on the back-fill track", k,
                      (unsigned long)late[k]);
    for (int k = 0; k < 3; k++)
        json_decref(window[k]);
}
END_TEST

/* A terminal that samples every 2 s (a skip each time) and loses its link for T0 + 100 .. 198;
 * live data goes on from T0 + 200 and the hole is re-sent newest first, a sample a frame
 * (T0 + 198, 196, .. 100). In time order every sample is judged on the live track; so here:
 * nothing on the back-fill track. Each re-sent sample reaches what is held up to a skip, so it
 * is held (the hole may still be filling from its end); the skip T0 + 99 in front of what is
 * held is then waited for (backlog_wait_min, here the flush): 50 judged, 60 held. */
START_TEST(half_hertz_hole_resent_newest_first)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, NULL);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    for (int64_t t = T0; t < T0 + 100; t += 2)
        s_feed(&fd, t, 1, s_const, &s_cruise);
    for (int64_t t = T0 + 200; t < T0 + 220; t += 2)
        s_feed(&fd, t, 1, s_const, &s_cruise);
    fd.cmd = VEM_HJ1239_CMD_RESEND;
    for (int64_t t = T0 + 198; t >= T0 + 100; t -= 2)
        s_feed(&fd, t, 1, s_const, &s_cruise);
    const vem_rules_counts_t *c = vem_rules_vehicle_counts(v);
    ck_assert_uint_eq(c->samples, 50);
    ck_assert_uint_eq(v->nheld, 60);
    uint64_t late = c->late_samples;
    vem_rules_flush(v, &cfg, s_collect, &log);
    ck_assert_uint_eq(c->samples, 110);
    ck_assert_msg(late == 0, "%lu samples on the back-fill track (T0 + 100 judged after T0 + 102)",
                  (unsigned long)late);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A terminal that skips every 30th second (as in skipped_seconds_judged_at_once, never held at
 * the default backlog_hole_s), T0 .. T0 + 599 live; then the frames of T0 .. T0 + 99 come again
 * (0x03 after pipeline.dedup_window forgot them). Those seconds were judged on the live track
 * already: counted as copies, not judged again, though skips came after them (the live trip
 * knows its gaps, s_gap; a review found them judged again on the back-fill track). */
START_TEST(copy_before_a_skip_not_judged_again)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, NULL);
    s_log_t log = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    static int64_t t[600];
    long n = 0, first100 = 0;
    for (int i = 0; i < 600; i++) {
        if (i % 30 == 29)
            continue;
        if (i < 100)
            first100 = n + 1;
        t[n++] = T0 + i;
    }
    s_feed_times(&fd, t, n, s_const, &s_cruise);
    const vem_rules_counts_t *c = vem_rules_vehicle_counts(v);
    ck_assert_uint_eq(c->samples, (uint64_t)n);
    ck_assert_uint_eq(c->held_samples, 0);
    fd.cmd = VEM_HJ1239_CMD_RESEND;
    s_feed_times(&fd, t, first100, s_const, &s_cruise);
    ck_assert_msg(c->copy_samples == (uint64_t)first100 && c->samples == (uint64_t)n,
                  "%lu copies of %ld; judged %lu (late %lu) for %ld samples",
                  (unsigned long)c->copy_samples, first100, (unsigned long)c->samples,
                  (unsigned long)c->late_samples, n);
    vem_rules_flush(v, &cfg, s_collect, &log);
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A link drop T0 + 900 .. 999 whose stored data has a hole of its own (T0 + 912 .. 939 not
 * sampled: 28 s, more than backlog_hole_s), re-sent newest first in frames of ten stored
 * samples: [990..999] .. [940..949], [902..911], [900, 901]. Time order (run 0): every sample
 * on the live track. Run 1: T0 + 902 has a skip (900, 901) before it and a hole (912 .. 939)
 * between its frame's reach and what is held, but samples went in front of what is held before
 * it (the hole fills from its end, held_from_end), so it is held too, and 900 and 901 find
 * their place: nothing on the back-fill track, the ids of time order (a review found 900 and
 * 901 on the back-fill track). */
START_TEST(resent_newest_first_with_a_hole_of_its_own)
{
    vem_rules_engine_facts_t facts = s_small;
    facts.whtc_work_kwh = 1;
    static char ids[2][64][VEM_RULES_ID_LEN];
    int n[2];
    uint64_t late[2];
    for (int k = 0; k < 2; k++) {
        vem_rules_config_t cfg = s_defaults();
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &facts);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        int64_t t[10];
        int64_t live_to = k == 0 ? T0 + 2400 : T0 + 900;
        for (int64_t s = T0; s < live_to; s++) {
            if (s >= T0 + 912 && s < T0 + 940)
                continue;
            t[0] = s;
            s_frame_of(&fd, t, 1);
        }
        if (k == 1) {
            for (int64_t s = T0 + 1000; s < T0 + 1010; s++) {
                t[0] = s;
                s_frame_of(&fd, t, 1);
            }
            fd.cmd = VEM_HJ1239_CMD_RESEND;
            for (int64_t s = T0 + 990; s >= T0 + 940; s -= 10) {
                for (int j = 0; j < 10; j++)
                    t[j] = s + j;
                s_frame_of(&fd, t, 10);
            }
            for (int j = 0; j < 10; j++)
                t[j] = T0 + 902 + j;
            s_frame_of(&fd, t, 10);
            t[0] = T0 + 900;
            t[1] = T0 + 901;
            s_frame_of(&fd, t, 2);
            fd.cmd = VEM_HJ1239_CMD_REALTIME;
            for (int64_t s = T0 + 1010; s < T0 + 2400; s++) {
                t[0] = s;
                s_frame_of(&fd, t, 1);
            }
        }
        late[k] = vem_rules_vehicle_counts(v)->late_samples;
        vem_rules_flush(v, &cfg, s_collect, &log);
        n[k] = s_ids(&log, ids[k]);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
    ck_assert_msg(late[0] == 0 && late[1] == 0,
                  "on the back-fill track: %lu in time order, %lu "
                  "re-sent newest first",
                  (unsigned long)late[0], (unsigned long)late[1]);
    ck_assert_int_eq(n[1], n[0]);
    for (int i = 0; i < n[0]; i++)
        ck_assert_str_eq(ids[1][i], ids[0][i]);
}
END_TEST

/* ---- a stop between any two inputs ------------------------------------------------------ */

/* Two states fed the same inputs, the second saved and loaded after every one (a stop and a
 * start between any two inputs): each input's verdicts folded into a digest (their JSON and
 * spool seq), per state. */
typedef struct {
    uint64_t digest;
    long n;
} s_digest_t;

typedef struct {
    vem_rules_vehicle_t *v[2];
    s_digest_t out[2];
    vem_rules_config_t cfg;
    vem_hj1239_frame_t f;
    uint64_t seq;
    int64_t rx_us, late_s;
    unsigned seed, step;
    unsigned long sent; /* samples sent */
} s_twin_t;

static void s_twin_emit(void *arg, const vem_violation_t *v)
{
    s_digest_t *d = arg;
    json_t *j = vem_rules_violation_json(v);
    char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    uint64_t h = d->digest;
    for (const char *c = text; *c; c++)
        h = (h ^ (uint8_t)*c) * 1099511628211ULL; /* FNV-1a */
    d->digest = (h ^ v->spool_seq) * 1099511628211ULL;
    d->n++;
    free(text);
    json_decref(j);
}

/* After an input: the two states save to the same bytes and gave the same verdicts; what s_hold
 * keeps true holds; then the second is saved and loaded. */
static void s_twin_check(s_twin_t *tw)
{
    uint8_t *b[2] = {NULL, NULL};
    size_t len[2] = {0, 0}, cap[2] = {0, 0};
    for (int k = 0; k < 2; k++)
        vem_rules_vehicle_save(tw->v[k], &b[k], &len[k], &cap[k]);
    ck_assert_msg(len[0] == len[1] && memcmp(b[0], b[1], len[0]) == 0,
                  "seed %u input %u: the states differ", tw->seed, tw->step);
    ck_assert_msg(tw->out[0].digest == tw->out[1].digest && tw->out[0].n == tw->out[1].n,
                  "seed %u input %u: the verdicts differ", tw->seed, tw->step);
    free(b[0]);
    free(b[1]);
    const vem_rules_vehicle_t *v = tw->v[0];
    ck_assert(!v->nheld || v->live.open);
    for (unsigned i = 0; i < v->nheld; i++) {
        int64_t t = v->held[v->held_off + i].sec;
        ck_assert_int_gt(t, v->live.newest + 1);
        if (i)
            ck_assert_int_gt(t, v->held[v->held_off + i - 1].sec);
    }
    tw->v[1] = s_reloaded(tw->v[1]);
    tw->step++;
}

static void s_twin_frame(s_twin_t *tw)
{
    int64_t rx = US(tw->f.time + tw->late_s) + 1500000;
    tw->rx_us = rx > tw->rx_us ? rx : tw->rx_us;
    tw->seq++;
    for (int k = 0; k < 2; k++)
        vem_rules_on_frame(tw->v[k], &tw->cfg, &tw->f, tw->rx_us, 0, tw->seq, s_twin_emit,
                           &tw->out[k]);
    s_twin_check(tw);
}

/* The trouble trip's seconds t .. t + n - 1 (n <= 10) in one frame, of either layout. */
static void s_twin_data(s_twin_t *tw, uint8_t cmd, int64_t t, int n, bool gb)
{
    s_envelope(&tw->f, cmd, t + n - 1);
    tw->f.layout = gb ? 0 : VEM_HJ1239_LAYOUT_BLOCK_TIME;
    for (int j = 0; j < n; j++) {
        s_phys_t p;
        s_trouble_gen((long)((t + j - T0) % 2400), &p, NULL);
        vem_test_stream_block(&tw->f.blocks[tw->f.nblocks++], gb ? t + n - 1 : t + j, &p);
    }
    tw->sent += (unsigned long)n;
    s_twin_frame(tw);
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One seed's run: live frames of 1 to 10 s with skips (1 to 12 s, some seconds of them kept
 * back) and holes (10 to 709 s kept back); what was kept back re-sent in order, in a random
 * piece, or its newest seconds newest first (a second a frame, or frames of up to 10 s); old
 * copies; silence sweeps; a
 * logout and login; reloads of backlog_hole_s and backlog_wait_min; receipts late by up to
 * 25 minutes more; GB 17691 and HJ 1239 layouts in turn. */
static void s_twin_run(unsigned seed, long steps)
{
    static s_twin_t tw;
    memset(&tw, 0, sizeof tw);
    tw.seed = seed;
    srand(seed);
    tw.cfg = s_defaults();
    const unsigned holes[] = {1, 2, 5, 10, 30, 600}, waits[] = {0, 1, 2, 10};
    tw.cfg.backlog_hole_s = holes[rand() % 6];
    tw.cfg.backlog_wait_min = waits[1 + rand() % 3];
    tw.cfg.trip_gap_min = 1 + (unsigned)rand() % 10;
    for (int k = 0; k < 2; k++)
        tw.v[k] = vem_rules_vehicle_new(VIN, NULL, &s_small);
    enum { S_PEND = 20000 };
    static int64_t pend[S_PEND];
    int npend = 0;
    int64_t cur = T0;
    bool gb = rand() % 2;
    for (long s = 0; s < steps; s++) {
        int c = rand() % 100;
        if (c < 55) { /* live data, after a skip or a hole now and then */
            if (rand() % 100 < 15) {
                for (int j = 0, k = 1 + rand() % 12; j < k; j++, cur++)
                    if (rand() % 100 < 30 && npend < S_PEND)
                        pend[npend++] = cur;
            } else if (rand() % 100 < 3) {
                for (int j = 0, k = 10 + rand() % 700; j < k; j++, cur++)
                    if (npend < S_PEND)
                        pend[npend++] = cur;
            }
            int n = 1 + rand() % 10;
            s_twin_data(&tw, VEM_HJ1239_CMD_REALTIME, cur, n, gb);
            cur += n;
        } else if (c < 80 && npend) { /* what was kept back */
            qsort(pend, (size_t)npend, sizeof *pend, s_cmp_i64);
            int mode = rand() % 4, at, cnt;
            if (mode == 0) { /* in order, from the first */
                at = 0;
                cnt = 1 + rand() % 30;
            } else if (mode == 1) { /* a random piece */
                at = rand() % npend;
                cnt = 1 + rand() % 30;
            } else if (mode == 2) { /* the newest few, newest first, a second a frame */
                cnt = 1 + rand() % 5;
                at = npend - cnt < 0 ? 0 : npend - cnt;
            } else { /* the newest, newest first, in frames of up to 10 s in time order */
                cnt = 1 + rand() % 30;
                at = npend - cnt < 0 ? 0 : npend - cnt;
            }
            cnt = at + cnt > npend ? npend - at : cnt;
            if (mode == 2) {
                for (int j = at + cnt - 1; j >= at; j--)
                    s_twin_data(&tw, VEM_HJ1239_CMD_RESEND, pend[j], 1, gb);
            } else if (mode == 3) {
                for (int j = at + cnt - 1, m; j >= at; j -= m) {
                    m = 1;
                    while (j - m >= at && m < 10 && pend[j - m] == pend[j - m + 1] - 1)
                        m++;
                    s_twin_data(&tw, VEM_HJ1239_CMD_RESEND, pend[j - m + 1], m, gb);
                }
            } else {
                for (int j = at, m; j < at + cnt; j += m) {
                    m = 1;
                    while (j + m < at + cnt && m < 10 && pend[j + m] == pend[j + m - 1] + 1)
                        m++;
                    s_twin_data(&tw, VEM_HJ1239_CMD_RESEND, pend[j], m, gb);
                }
            }
            memmove(pend + at, pend + at + cnt, (size_t)(npend - at - cnt) * sizeof *pend);
            npend -= cnt;
        } else if (c < 83) { /* a copy of a recent second */
            s_twin_data(&tw, VEM_HJ1239_CMD_RESEND, cur - 1 - rand() % 50, 1, gb);
        } else if (c < 87) { /* a silence sweep */
            int64_t now = tw.rx_us + US(rand() % 1500);
            for (int k = 0; k < 2; k++)
                vem_rules_on_silence(tw.v[k], &tw.cfg, now, 0, s_twin_emit, &tw.out[k]);
            tw.rx_us = now;
            s_twin_check(&tw);
        } else if (c < 89) {
            s_envelope(&tw.f, VEM_HJ1239_CMD_LOGOUT, cur);
            s_twin_frame(&tw);
            s_envelope(&tw.f, VEM_HJ1239_CMD_LOGIN, cur);
            s_twin_frame(&tw);
        } else if (c < 92) {
            tw.cfg.backlog_hole_s = holes[rand() % 6];
        } else if (c < 94) {
            tw.cfg.backlog_wait_min = waits[rand() % 4];
        } else if (c < 96) {
            tw.late_s += rand() % 1500;
        } else if (c < 97) {
            gb = !gb;
        }
    }
    for (int k = 0; k < 2; k++)
        vem_rules_flush(tw.v[k], &tw.cfg, s_twin_emit, &tw.out[k]);
    ck_assert_msg(tw.out[0].digest == tw.out[1].digest && tw.out[0].n == tw.out[1].n,
                  "seed %u: the flush's verdicts differ", seed);
    ck_assert_ptr_null(tw.v[0]->held);
    const vem_rules_counts_t *c = vem_rules_vehicle_counts(tw.v[0]);
    ck_assert_uint_eq(c->samples + c->copy_samples, tw.sent); /* each judged or a copy */
    for (int k = 0; k < 2; k++)
        vem_rules_vehicle_destroy(&tw.v[k]);
}

/* A stop and a start between any two inputs change nothing: the state saved after each input
 * is the same bytes as that of a run that never stopped, and so are the verdicts (their JSON,
 * in the same order); every sample sent is judged once or counted as a copy. 20 seeds of 3,000
 * inputs (see s_twin_run for what they hold). */
START_TEST(reload_between_any_inputs_changes_nothing)
{
    for (unsigned seed = 1; seed <= 20; seed++)
        s_twin_run(seed, 3000);
}
END_TEST

/* ---- memory ------------------------------------------------------------------------------- */

/* Two hours of driving with the figures of a typical truck keep the state within 64 KiB: the
 * ring holds at most D_lim + 1 = 1604 samples (12 bytes each), the trip keeps at most 2304
 * windows (12 bytes each), the SCR window 30 minutes (24 bytes each: idling at 650 rpm with the
 * SCR at 300 C qualifies). Two hours of idling never end a window: the ring stops at D_lim.
 * When the trip ends, its memory goes. */
START_TEST(memory_is_bounded)
{
    vem_rules_config_t cfg = s_defaults();
    s_phys_t idle = s_cruise;
    idle.rpm = 650;
    idle.torque = 10;
    idle.friction = 6;
    const s_phys_t *drive[] = {&s_cruise, &idle};
    for (int k = 0; k < 2; k++) {
        vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &s_truck);
        size_t empty = vem_rules_vehicle_bytes(v);
        s_log_t log = {0};
        s_feed_t fd;
        s_feed_init(&fd, v, &cfg, &log);
        s_feed(&fd, T0, 1, s_const, drive[k]);
        size_t fusion = vem_rules_vehicle_bytes(v) - empty; /* 600 s x 4 bytes, and the trip */
        size_t most = 0;
        for (int h = 0; h < 12; h++) {
            s_feed(&fd, T0 + 1 + h * 600, 600, s_const, drive[k]);
            size_t b = vem_rules_vehicle_bytes(v);
            most = b > most ? b : most;
        }
        ck_assert_uint_le(most, 65536);
        if (k == 1) /* ring of 1604 x 12 bytes, no valid window, the SCR window */
            ck_assert_uint_le(most, empty + 600 * 4 + 1604 * 12 + 256 + 30 * 24);
        vem_rules_flush(v, &cfg, s_collect, &log);
        ck_assert_uint_eq(vem_rules_vehicle_bytes(v), empty + 600 * 4);
        ck_assert_uint_ge(fusion, 600 * 4);
        s_log_free(&log);
        s_feed_free(&fd);
        vem_rules_vehicle_destroy(&v);
    }
}
END_TEST

/* ---- output ------------------------------------------------------------------------------- */

static void s_json_check(void *arg, const vem_violation_t *v)
{
    int *calls = arg;
    (*calls)++;
    json_t *o = vem_rules_violation_json(v);
    static const char *const keys[] = {"violation_id", "rule",     "clause",   "vin",
                                       "plate",        "first_at", "last_at",  "measured",
                                       "limit",        "unit",     "severity", "evidence"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        ck_assert_msg(json_object_get(o, keys[i]) != NULL, "no %s", keys[i]);
    ck_assert_str_eq(json_string_value(json_object_get(o, "rule")), "obd.mil_on");
    ck_assert_str_eq(json_string_value(json_object_get(o, "first_at")),
                     "2024-03-05T08:00:00+08:00");
    ck_assert_str_eq(json_string_value(json_object_get(o, "plate")), PLATE);
    json_decref(o);
    char *text = vem_rules_explain(v);
    ck_assert_ptr_nonnull(strstr(text, "obd.mil_on notice of VIN " VIN ", plate " PLATE));
    ck_assert_ptr_nonnull(strstr(text, v->id));
    free(text);
}

/* The engine reads a frame's samples before it touches the vehicle's state and adds a frame's
 * NOx-window inputs after its other rules (rules.c): how samples are cut into frames must not
 * change a verdict. One truck's varied samples (markers, trips split by gaps, a back-fill of a
 * gap's time, gaps and both tracks inside one frame) are fed one sample a frame, which is the
 * plain sample-by-sample path, and in frames of 7, 10 and 64 blocks. Everything but the
 * frame-dependent evidence keys (block_idx in "samples") must be the same. */
typedef struct {
    int64_t t;
    s_phys_t p;
} s_any_t;

static uint32_t s_lcg(uint32_t *x)
{
    *x = *x * 1664525u + 1013904223u;
    return *x >> 8;
}

static long s_any_series(s_any_t *out, long cap)
{
    uint32_t x = 7;
    long n = 0;
    int64_t t = T0, gap_at = 0;
    for (int trip = 0; trip < 6; trip++) {
        long len = 400 + (long)(s_lcg(&x) % 900);
        for (long i = 0; i < len && n < cap; i++) {
            s_phys_t p = s_cruise;
            p.torque = 10 + s_lcg(&x) % 80;
            p.friction = 5 + s_lcg(&x) % 10;
            p.rpm = 600 + s_lcg(&x) % 1400;
            p.intake = 200 + s_lcg(&x) % 600;
            p.fuel = 5 + s_lcg(&x) % 35;
            p.nox_down = s_lcg(&x) % 400;
            p.nox_up = 100 + s_lcg(&x) % 800;
            if (s_lcg(&x) % 50 == 0)
                p.nox_down = NAN;
            if (s_lcg(&x) % 50 == 0)
                p.intake = NAN;
            out[n++] = (s_any_t){t++, p};
        }
        if (trip == 3 && n + 300 <= cap) /* the gap's time, re-sent: the back-fill track */
            for (long i = 0; i < 300; i++) {
                out[n] = out[n - 600];
                out[n++].t = gap_at + 10 + i;
            }
        gap_at = t;
        t += 11 * 60;
    }
    return n;
}

static void s_any_feed(const s_any_t *in, long n, long per_frame, s_log_t *log)
{
    vem_rules_config_t cfg = s_defaults();
    const vem_rules_engine_facts_t facts = {1000, 200, 0.5, VEM_FUEL_DIESEL};
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &facts);
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, log);
    for (long i = 0; i < n; i += per_frame) {
        long k = n - i < per_frame ? n - i : per_frame;
        s_envelope(fd.f, VEM_HJ1239_CMD_REALTIME, in[i + k - 1].t);
        fd.f->layout = VEM_HJ1239_LAYOUT_BLOCK_TIME;
        for (long j = 0; j < k; j++)
            vem_test_stream_block(&fd.f->blocks[fd.f->nblocks++], in[i + j].t, &in[i + j].p);
        s_send(&fd);
    }
    vem_rules_flush(v, &cfg, s_collect, log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}

/* The evidence without what depends on the framing. */
static json_t *s_unframed(json_t *ev)
{
    json_t *c = json_deep_copy(ev);
    json_object_del(c, "samples");
    json_t *trip = json_object_get(c, "trip");
    if (trip)
        json_object_del(trip, "samples");
    return c;
}

START_TEST(frames_of_any_size_give_the_same_verdicts)
{
    enum { CAP = 8000 };
    s_any_t *in = malloc(CAP * sizeof *in);
    long n = s_any_series(in, CAP);
    s_log_t one = {0};
    s_any_feed(in, n, 1, &one);
    ck_assert_int_ge(s_count(&one, VEM_RULE_OBD_NOX_WINDOW), 4);
    static const long sizes[] = {7, 10, VEM_HJ1239_MAX_BLOCKS};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        s_log_t log = {0};
        s_any_feed(in, n, sizes[k], &log);
        ck_assert_int_eq(log.n, one.n);
        for (int i = 0; i < one.n; i++) {
            const s_got_t *a = &one.v[i], *b = &log.v[i];
            ck_assert_str_eq(a->id, b->id);
            ck_assert_int_eq(a->rule, b->rule);
            ck_assert_int_eq(a->severity, b->severity);
            ck_assert_int_eq(a->first_us, b->first_us);
            ck_assert_int_eq(a->last_us, b->last_us);
            ck_assert(a->measured == b->measured || (isnan(a->measured) && isnan(b->measured)));
            json_t *ea = s_unframed(a->ev), *eb = s_unframed(b->ev);
            ck_assert_msg(json_equal(ea, eb), "verdict %d of %s differs in frames of %ld", i,
                          vem_rules_name(a->rule), sizes[k]);
            json_decref(ea);
            json_decref(eb);
        }
        s_log_free(&log);
    }
    s_log_free(&one);
    free(in);
}
END_TEST

START_TEST(violation_json_and_text)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, PLATE, NULL);
    vem_hj1239_frame_t *f = calloc(1, sizeof *f);
    s_log_t unused = {0};
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &unused);
    s_obd_frame(&fd, T0, 1, NULL, 0, NULL); /* into the log, then again into the checker */
    vem_rules_vehicle_destroy(&v);
    v = vem_rules_vehicle_new(VIN, PLATE, NULL);
    int calls = 0;
    vem_rules_on_frame(v, &cfg, fd.f, US(T0), 0, 1, s_json_check, &calls);
    ck_assert_int_eq(calls, 1);
    ck_assert_ptr_null(vem_rules_vehicle_new(NULL, NULL, NULL));
    ck_assert_ptr_null(vem_rules_vehicle_new("SHORT", NULL, NULL));
    s_log_free(&unused);
    s_feed_free(&fd);
    free(f);
    vem_rules_vehicle_destroy(&v);
    vem_rules_vehicle_destroy(&v); /* NULL is fine */
}
END_TEST

/* ---- link drops re-sent among live data, against time order ------------------------------- */

/* One input of s_ld_plan: a frame of the trouble trip's seconds (ascending). */
typedef struct {
    uint8_t cmd;
    int n;
    int64_t t[10];
} s_ld_frame_t;

enum { S_LD_N = 2400, S_LD_FRAMES = 4096 };

typedef struct {
    s_ld_frame_t f[S_LD_FRAMES];
    int n;
    char what[512]; /* the drops, for a failure's message */
} s_ld_plan_t;

static uint64_t s_ld_rand(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ULL;
}

/* lo .. hi, both in */
static int s_ld_int(uint64_t *x, int lo, int hi)
{
    return lo + (int)(s_ld_rand(x) % (uint64_t)(hi - lo + 1));
}

static void s_ld_add(s_ld_plan_t *pl, uint8_t cmd, const int64_t *t, int n)
{
    if (n == 0)
        return;
    ck_assert_int_lt(pl->n, S_LD_FRAMES);
    s_ld_frame_t *f = &pl->f[pl->n++];
    f->cmd = cmd;
    f->n = n;
    memcpy(f->t, t, (size_t)n * sizeof *t);
}

static int s_ld_cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* Seed's trip: the trouble table's 2400 seconds from T0, with terminal skips (1 to 4 s, one
 * start in 60 seconds, never re-sent) and 1 to 3 link drops of 10 to 300 s. While a drop lasts
 * nothing is sent; from its end on live data goes on, and once a live frame came, the drop's
 * stored seconds (its skips left out, and, one drop in two, a stored hole of 5 to 40 s of its
 * own that is never sent: anywhere, near its start, or at its end after its first 1 to 12 s)
 * are re-sent (0x03) in frames of 1 to 10 stored samples, oldest first or newest first (each
 * frame ascending), among the live frames of the next 0 to 250 s: all within 550 s of data
 * after the drop's start, inside backlog_wait_min. A drop after one with a stored hole is,
 * one time in two, placed so that the wait for that hole ends while it is re-sent. Live frames
 * hold 1 to 10 seconds; one in 20 is followed by a copy of 1 to 10 seconds sent already. */
static void s_ld_plan(unsigned seed, s_ld_plan_t *pl)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL * (seed + 1);
    static uint8_t st[S_LD_N]; /* 0 sent, 1 skipped, 2 a stored hole */
    static bool sent[S_LD_N];
    memset(st, 0, sizeof st);
    memset(sent, 0, sizeof sent);
    pl->n = 0;
    int da[3], db[3], dw[3], dh[3], dhl[3], nd = 0;
    int want = s_ld_int(&x, 1, 3);
    for (int pos = s_ld_int(&x, 30, 400); nd < want;) {
        int len = s_ld_int(&x, 10, 300), w = s_ld_int(&x, 0, 250), a = pos;
        if (nd && dh[nd - 1] >= 0 && s_ld_int(&x, 0, 1) == 0) {
            /* the wait for the stored hole before ends while this drop is re-sent */
            int lenb = s_ld_int(&x, 10, 40), wb = s_ld_int(&x, 30, 250);
            int ab = dh[nd - 1] + dhl[nd - 1] + 600 - s_ld_int(&x, 5, wb - 5) - lenb;
            if (ab >= pos) {
                a = ab;
                len = lenb;
                w = wb;
            }
        }
        int hl = 0, where = -1;
        if (s_ld_int(&x, 0, 1) == 0) { /* a stored hole: anywhere, at the end, near the start */
            where = s_ld_int(&x, 0, 3);
            if (where == 3) { /* at the end, after the drop's first 1 to 12 s */
                int k = s_ld_int(&x, 1, 12);
                len = s_ld_int(&x, 5, 40) + k;
                len = len < 10 ? 10 : len;
                hl = len - k;
            } else if (len >= 15) {
                hl = s_ld_int(&x, 5, len - 10 < 40 ? len - 10 : 40);
            }
        }
        if (a + len + w + 5 > S_LD_N)
            break;
        da[nd] = a;
        db[nd] = a + len;
        dw[nd] = w;
        dh[nd] = -1;
        dhl[nd] = 0;
        if (hl) {
            dhl[nd] = hl;
            dh[nd] = where == 0   ? s_ld_int(&x, a, a + len - hl)
                     : where == 2 ? a + s_ld_int(&x, 1, len - hl < 12 ? len - hl : 12)
                                  : a + len - hl;
        }
        nd++;
        pos = a + len + w + s_ld_int(&x, 5, 400);
    }
    for (int i = 1; i < S_LD_N - 6; i++)
        if (s_ld_int(&x, 0, 59) == 0) {
            int k = s_ld_int(&x, 1, 4);
            for (int j = 0; j < k; j++)
                st[i + j] = 1;
            i += k; /* the second after a skip is sent */
        }
    int off = snprintf(pl->what, sizeof pl->what, "seed %u:", seed);
    enum { S_LD_RS = 400 };
    static int64_t rs[3][S_LD_RS][10];
    int rsn[3][S_LD_RS], rel[3][S_LD_RS], nrs[3], next[3] = {0, 0, 0};
    for (int d = 0; d < nd; d++) {
        int h = dh[d], hl = dhl[d];
        for (int j = 0; j < hl; j++)
            st[h + j] = 2;
        bool newest_first = s_ld_int(&x, 0, 1);
        int64_t stored[300];
        int ns = 0;
        for (int i = da[d]; i < db[d]; i++)
            if (st[i] == 0)
                stored[ns++] = T0 + i;
        nrs[d] = 0;
        for (int i = 0; i < ns;) {
            int k = s_ld_int(&x, 1, 10);
            k = i + k > ns ? ns - i : k;
            rsn[d][nrs[d]] = k;
            memcpy(rs[d][nrs[d]++], stored + i, (size_t)k * sizeof *stored);
            i += k;
        }
        if (newest_first)
            for (int i = 0, j = nrs[d] - 1; i < j; i++, j--) {
                int64_t tmp[10];
                int kt = rsn[d][i];
                memcpy(tmp, rs[d][i], sizeof tmp);
                memcpy(rs[d][i], rs[d][j], sizeof tmp);
                memcpy(rs[d][j], tmp, sizeof tmp);
                rsn[d][i] = rsn[d][j];
                rsn[d][j] = kt;
            }
        for (int i = 0; i < nrs[d]; i++)
            rel[d][i] = s_ld_int(&x, db[d], db[d] + dw[d]);
        qsort(rel[d], (size_t)nrs[d], sizeof **rel, s_ld_cmp_int);
        off += snprintf(pl->what + off, sizeof pl->what - (size_t)off,
                        " drop %d..%d %s in %d frames by %d, stored hole %d..%d;", da[d], db[d] - 1,
                        newest_first ? "newest first" : "oldest first", nrs[d], db[d] + dw[d], h,
                        h + hl - 1);
    }
    int d = 0;
    bool back[3] = {false, false, false};
    for (int c = 0; c < S_LD_N;) {
        if (d < nd && c == da[d]) {
            c = db[d++];
            continue;
        }
        for (int e = 0; e < d; e++)
            for (; back[e] && next[e] < nrs[e] && rel[e][next[e]] <= c; next[e]++) {
                s_ld_add(pl, VEM_HJ1239_CMD_RESEND, rs[e][next[e]], rsn[e][next[e]]);
                for (int j = 0; j < rsn[e][next[e]]; j++)
                    sent[rs[e][next[e]][j] - T0] = true;
            }
        int k = s_ld_int(&x, 1, 10), m = 0;
        int64_t t[10];
        for (int j = 0; j < k && c < S_LD_N && !(d < nd && c == da[d]); j++, c++)
            if (st[c] == 0) {
                t[m++] = T0 + c;
                sent[c] = true;
            }
        s_ld_add(pl, VEM_HJ1239_CMD_REALTIME, t, m);
        if (d && m)
            back[d - 1] = true;         /* the link is back: the drop may be re-sent */
        if (s_ld_int(&x, 0, 19) == 0) { /* a copy of seconds sent already */
            int from = s_ld_int(&x, 0, c - 1), n = s_ld_int(&x, 1, 10);
            m = 0;
            for (int i = from; i < c && m < n; i++)
                if (sent[i])
                    t[m++] = T0 + i;
            s_ld_add(pl, VEM_HJ1239_CMD_RESEND, t, m);
        }
    }
    for (int e = 0; e < nd; e++)
        for (; next[e] < nrs[e]; next[e]++)
            s_ld_add(pl, VEM_HJ1239_CMD_RESEND, rs[e][next[e]], rsn[e][next[e]]);
}

/* What a run gave: its verdicts by id, their evidence without what depends on the framing,
 * and the NOx window's trip sample count. */
typedef struct {
    int n;
    char id[64][VEM_RULES_ID_LEN];
    json_t *ev[64];
    json_int_t window_count;
    vem_rules_counts_t c;
    bool held_left;
} s_ld_out_t;

static int s_ld_cmp_got(const void *a, const void *b)
{
    return strcmp(((const s_got_t *)a)->id, ((const s_got_t *)b)->id);
}

/* pl's frames as planned (time_order false), or the seconds they hold, each once, in time
 * order, a sample a frame (true); after an OBD frame with the MIL on, and then a flush. */
static void s_ld_run(const s_ld_plan_t *pl, bool time_order, s_ld_out_t *o)
{
    vem_rules_config_t cfg = s_defaults();
    vem_rules_engine_facts_t facts = s_small;
    facts.whtc_work_kwh = 1;
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, &facts);
    static s_log_t log;
    memset(&log, 0, sizeof log);
    s_feed_t fd;
    s_feed_init(&fd, v, &cfg, &log);
    s_obd_frame(&fd, T0, 1, NULL, 0, NULL);
    if (time_order) {
        static bool in[S_LD_N];
        memset(in, 0, sizeof in);
        for (int i = 0; i < pl->n; i++)
            for (int j = 0; j < pl->f[i].n; j++)
                in[pl->f[i].t[j] - T0] = true;
        for (int i = 0; i < S_LD_N; i++)
            if (in[i]) {
                int64_t t = T0 + i;
                fd.cmd = VEM_HJ1239_CMD_REALTIME;
                s_frame_of(&fd, &t, 1);
            }
    } else {
        for (int i = 0; i < pl->n; i++) {
            fd.cmd = pl->f[i].cmd;
            s_frame_of(&fd, pl->f[i].t, pl->f[i].n);
        }
    }
    vem_rules_flush(v, &cfg, s_collect, &log);
    o->c = *vem_rules_vehicle_counts(v);
    o->held_left = v->held != NULL;
    qsort(log.v, (size_t)log.n, sizeof *log.v, s_ld_cmp_got);
    ck_assert_int_le(log.n, 64);
    o->n = log.n;
    o->window_count = -1;
    for (int i = 0; i < log.n; i++) {
        memcpy(o->id[i], log.v[i].id, VEM_RULES_ID_LEN);
        o->ev[i] = s_unframed(log.v[i].ev);
        if (log.v[i].rule == VEM_RULE_OBD_NOX_WINDOW)
            o->window_count = s_int(log.v[i].ev, "trip.samples.count");
    }
    s_log_free(&log);
    s_feed_free(&fd);
    vem_rules_vehicle_destroy(&v);
}

static void s_ld_out_free(s_ld_out_t *o)
{
    for (int i = 0; i < o->n; i++)
        json_decref(o->ev[i]);
    o->n = 0;
}

/* Empty when pl fed as planned gives what its seconds in time order give; else what differs. */
static void s_ld_check(const s_ld_plan_t *pl, char *why, size_t len)
{
    static s_ld_out_t got, ref;
    s_ld_run(pl, false, &got);
    s_ld_run(pl, true, &ref);
    uint64_t sent = 0;
    for (int i = 0; i < pl->n; i++)
        sent += (uint64_t)pl->f[i].n;
    *why = 0;
    if (got.c.late_samples || got.c.samples != ref.c.samples ||
        got.c.samples + got.c.copy_samples != sent || got.held_left)
        snprintf(why, len,
                 "judged %lu (late %lu), copies %lu, of %lu sent; time order: judged %lu (late "
                 "%lu)%s",
                 (unsigned long)got.c.samples, (unsigned long)got.c.late_samples,
                 (unsigned long)got.c.copy_samples, (unsigned long)sent,
                 (unsigned long)ref.c.samples, (unsigned long)ref.c.late_samples,
                 got.held_left ? "; held left after the flush" : "");
    else if (got.n != ref.n)
        snprintf(why, len, "%d verdicts, %d in time order", got.n, ref.n);
    else if (got.window_count != ref.window_count)
        snprintf(why, len, "NOx window of %lld samples, %lld in time order",
                 (long long)got.window_count, (long long)ref.window_count);
    for (int i = 0; !*why && i < got.n; i++) {
        if (strcmp(got.id[i], ref.id[i]) != 0) {
            snprintf(why, len, "verdict ids differ (sorted, #%d: %s vs %s)", i, got.id[i],
                     ref.id[i]);
        } else if (!json_equal(got.ev[i], ref.ev[i])) {
            char *a = json_dumps(got.ev[i], JSON_SORT_KEYS | JSON_COMPACT);
            char *b = json_dumps(ref.ev[i], JSON_SORT_KEYS | JSON_COMPACT);
            snprintf(why, len, "evidence of %s differs: %s vs time order %s", got.id[i], a, b);
            free(a);
            free(b);
        }
    }
    if (!*why && ref.c.late_samples)
        snprintf(why, len, "time order: %lu late", (unsigned long)ref.c.late_samples);
    s_ld_out_free(&got);
    s_ld_out_free(&ref);
}

/* README, "Re-sent data that fills a hole in a live trip": a hole re-sent within
 * backlog_wait_min gives the verdicts and ids of the same data in time order, re-sent oldest
 * or newest first, in frames of 1 to 10 samples, with the terminal's own skips never re-sent;
 * copies are counted and not judged again; nothing is judged twice or lost. 1000 seeds of
 * s_ld_plan (a build before failed 30 of 5000 by a fill direction left from a hole before), each
 * against the seconds it sends fed once each in time order: the same verdict ids, the same evidence
 * (but for the frame-dependent sample keys) and NOx window, nothing on the back-fill track, every
 * second sent judged once and every other sample a copy. What the README lets differ is kept out of
 * the plans: a drop's re-sent frames come only once live data came after it (before that, the
 * seconds still missing when live data resumes are a drop shorter than backlog_hole_s), and all of
 * a drop comes within 550 s of data of its start. */
START_TEST(random_link_drops_give_time_order_verdicts)
{
    static s_ld_plan_t pl;
    char why[1024], first[2048] = "";
    int failed = 0;
    enum { S_LD_SEEDS = 1000 };
    for (unsigned seed = 1; seed <= S_LD_SEEDS; seed++) {
        s_ld_plan(seed, &pl);
        s_ld_check(&pl, why, sizeof why);
        if (*why && failed++ == 0)
            snprintf(first, sizeof first, "%s %s", pl.what, why);
    }
    ck_assert_msg(failed == 0, "%d of %d seeds differ from time order; the first: %s", failed,
                  S_LD_SEEDS, first);
}
END_TEST

/* A plan from (cmd, first, last) runs: a real-time run in frames of ten, a re-sent run in one
 * frame, or, cmd 0, in the frame of the run before it (at most ten seconds a frame). */
typedef struct {
    uint8_t cmd;
    int first, last;
} s_ld_run_t;

static void s_ld_plan_of(const s_ld_run_t *r, int n, s_ld_plan_t *pl)
{
    pl->n = 0;
    snprintf(pl->what, sizeof pl->what, "a fixed plan:");
    for (int i = 0; i < n; i++)
        for (int a = r[i].first; a <= r[i].last; a += 10) {
            s_ld_frame_t *f = &pl->f[pl->n];
            if (r[i].cmd == 0)
                f = &pl->f[pl->n - 1];
            else {
                f->cmd = r[i].cmd;
                f->n = 0;
                pl->n++;
            }
            for (int s = a; s <= r[i].last && s < a + 10; s++) {
                ck_assert_int_lt(f->n, 10);
                f->t[f->n++] = T0 + s;
            }
            ck_assert(r[i].cmd == VEM_HJ1239_CMD_REALTIME || a + 10 > r[i].last);
        }
}

/* The smallest inputs random_link_drops_give_time_order_verdicts found, each against time
 * order (seconds from T0; all of each drop re-sent within a minute of data):
 * 0: live 0 .. 9, a drop of 10 .. 24 whose stored data lacks 20 .. 24 (a hole of its own), live
 *    from 25; re-sent newest first [12 .. 19], then [10, 11]. T0 + 12 has only 10 and 11 (a
 *    "skip") before it and a hole between its frame's reach (19) and what is held (25): judged
 *    at once (s_hold), and 10, 11 go to the back-fill track.
 * 1: live 0 .. 9, a drop of 10 .. 28 whose stored data lacks 16 .. 21, live from 29; re-sent
 *    newest first in frames of ten stored samples: [13 .. 15, 22 .. 28], then [10 .. 12]. The
 *    frame's first run reaches 15, and its later run (22 .. 28), which reaches what is held, is
 *    past a hole: 13 .. 15 are judged at once, 10 .. 12 go to the back-fill track.
 * 2: a stored hole 100 .. 104 never re-sent (its wait ends when the newest held is 705); a drop
 *    670 .. 689, live from 690; [680 .. 689] and [672 .. 679] re-sent, then live 700 .. 709
 *    ends the wait of 105: s_held_judge judges on across 670 .. 671 (a "skip" between two held
 *    samples), and 670, 671, re-sent next, go to the back-fill track. */
START_TEST(link_drop_remnants_are_not_skips)
{
    const uint8_t L = VEM_HJ1239_CMD_REALTIME, R = VEM_HJ1239_CMD_RESEND;
    const s_ld_run_t c0[] = {{L, 0, 9}, {L, 25, 34}, {R, 12, 19}, {R, 10, 11}, {L, 35, 2399}};
    const s_ld_run_t c1[] = {{L, 0, 9},   {L, 29, 38}, {R, 13, 15},
                             {0, 22, 28}, {R, 10, 12}, {L, 39, 2399}};
    const s_ld_run_t c2[] = {{L, 0, 99},    {L, 105, 669}, {L, 690, 699}, {R, 680, 689},
                             {R, 672, 679}, {L, 700, 709}, {R, 670, 671}, {L, 710, 2399}};
    const struct {
        const s_ld_run_t *r;
        int n;
    } cases[] = {{c0, 5}, {c1, 6}, {c2, 8}};
    static s_ld_plan_t pl;
    char why[1024], all[3200] = "";
    for (int k = 0; k < 3; k++) {
        s_ld_plan_of(cases[k].r, cases[k].n, &pl);
        s_ld_check(&pl, why, sizeof why);
        if (*why)
            snprintf(all + strlen(all), sizeof all - strlen(all), " case %d: %s;", k, why);
    }
    ck_assert_msg(!*all, "%s", all);
}
END_TEST

Suite *vem_suite_rules(void);
Suite *vem_suite_rules(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, config_defaults_are_rules_md);
    tcase_add_loop_test(tc, config_errors_name_the_key, 0, sizeof s_bad / sizeof *s_bad);
    suite_add_tcase(s, tc);
    tc = tcase_create("obd");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, span_rules, 0, sizeof s_spans / sizeof *s_spans);
    tcase_add_test(tc, nox_high_warm_after_twenty_minutes);
    tcase_add_test(tc, scr_window_slides_onto_a_bad_stretch);
    tcase_add_test(tc, scr_window_finds_a_stretch_off_the_minute);
    tcase_add_test(tc, scr_window_at_exactly_half);
    tcase_add_test(tc, scr_window_ignores_samples_that_do_not_qualify);
    tcase_add_test(tc, scr_window_ends_with_the_trip);
    tcase_add_test(tc, scr_window_across_a_reload_of_its_length);
    tcase_add_test(tc, sentinels_inside_a_frozen_span);
    tcase_add_test(tc, spans_across_a_reload_count_by_the_limit_in_force);
    tcase_add_test(tc, relogin_without_logout_continues_the_trip);
    tcase_add_test(tc, trip_split_by_a_ten_minute_gap);
    tcase_add_test(tc, receipt_pause_ends_the_trip_in_a_replay_too);
    tcase_add_test(tc, intake_pause_is_no_silence);
    tcase_add_test(tc, gb17691_sample_times);
    tcase_add_test(tc, mil_on);
    tcase_add_test(tc, dtcs);
    tcase_add_test(tc, dtcs_beyond_the_set_are_one_notice);
    tcase_add_test(tc, vin_mismatch_and_removal_alarm);
    suite_add_tcase(s, tc);
    tc = tcase_create("window");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, window_arithmetic);
    tcase_add_test(tc, window_at_the_limit);
    tcase_add_test(tc, window_verdict_says_the_limit_it_was_judged_by);
    tcase_add_test(tc, windows_never_bridge_a_trip);
    tcase_add_test(tc, sentinel_inside_a_window);
    tcase_add_test(tc, no_figures_falls_back_to_nox_high);
    tcase_add_test(tc, nox_high_when_the_window_lacks_inputs);
    tcase_add_test(tc, nox_high_without_window_inputs_at_the_limit);
    tcase_add_test(tc, window_samples_break_the_nox_high_span);
    tcase_add_test(tc, window_truck_gets_no_nox_high);
    tcase_add_test(tc, window_percentile_after_selection);
    tcase_add_test(tc, nox_window_matches_independent_computation);
    suite_add_tcase(s, tc);
    tc = tcase_create("roadside");
    tcase_add_loop_test(tc, roadside_chains, 0, sizeof s_rsd / sizeof *s_rsd);
    tcase_add_test(tc, roadside_evidence);
    tcase_add_test(tc, roadside_gasoline);
    tcase_add_test(tc, roadside_verdict_carries_plate_colour);
    tcase_add_test(tc, roadside_history_seeds_the_chain);
    tcase_add_test(tc, roadside_history_after_live_readings);
    tcase_add_test(tc, roadside_history_then_the_input);
    tcase_add_test(tc, roadside_input_before_a_stored_one);
    tcase_add_test(tc, roadside_history_replayed_in_order);
    tcase_add_test(tc, roadside_history_cuts_a_run);
    tcase_add_test(tc, roadside_replayed_cut);
    tcase_add_test(tc, roadside_history_cuts_above_a_stored_one);
    tcase_add_test(tc, roadside_history_around_a_judged_compliant);
    tcase_add_test(tc, roadside_history_into_a_judged_exceedance);
    tcase_add_test(tc, roadside_history_twice_emits_nothing);
    tcase_add_test(tc, full_chain_keeps_the_newest);
    tcase_add_test(tc, roadside_reload_judges_the_chain_by_the_limit_in_force);
    tcase_add_test(tc, roadside_limit_b_from_its_date);
    tcase_add_test(tc, idle_state);
    tcase_add_test(tc, natural_months);
    tcase_add_loop_test(tc, roadside_cycle_counts_dates, 0,
                        2 * (int)(sizeof s_month_cases / sizeof *s_month_cases));
    tcase_add_test(tc, fusion_either_order);
    tcase_add_test(tc, fusion_of_a_stored_reading);
    tcase_add_test(tc, fusion_names_the_stored_sample);
    tcase_add_test(tc, fusion_after_a_backlog);
    tcase_add_test(tc, fusion_unmatched);
    suite_add_tcase(s, tc);
    tc = tcase_create("clock");
    tcase_add_test(tc, offline_after_72_hours);
    tcase_add_test(tc, offline_not_counted_while_intake_paused);
    tcase_add_test(tc, offline_only_for_registered);
    tcase_add_test(tc, silence_ends_a_trip);
    tcase_add_test(tc, daily_completeness);
    suite_add_tcase(s, tc);
    tc = tcase_create("determinism");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, same_input_same_ids);
    tcase_add_test(tc, backlog_and_late_frames_give_live_verdicts);
    tcase_add_test(tc, link_drop_backlog_gives_time_order_verdicts);
    tcase_add_test(tc, held_samples_judged_when_their_wait_ends);
    tcase_add_test(tc, silence_and_reload_judge_held_first);
    tcase_add_test(tc, random_holes_each_second_judged_once);
    tcase_add_test(tc, skipped_seconds_judged_at_once);
    tcase_add_test(tc, skip_or_hole_at_the_edge);
    tcase_add_test(tc, resent_newest_first_and_short_frames_give_time_order);
    tcase_add_test(tc, counted_frames_add_their_counts);
    tcase_add_test(tc, resent_newest_first_with_a_skip_near_the_hole_start);
    tcase_add_test(tc, half_hertz_hole_resent_newest_first);
    tcase_add_test(tc, copy_before_a_skip_not_judged_again);
    tcase_add_test(tc, resent_newest_first_with_a_hole_of_its_own);
    tcase_add_test(tc, link_drop_remnants_are_not_skips);
    tcase_add_test(tc, memory_is_bounded);
    tcase_add_test(tc, frames_of_any_size_give_the_same_verdicts);
    tcase_add_test(tc, violation_json_and_text);
    suite_add_tcase(s, tc);

    /* 120,000 inputs, each followed by two saves and a load: about 25 s under ASan */
    tc = tcase_create("stops");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, reload_between_any_inputs_changes_nothing);
    /* 1000 random trips, each twice: about 2 s, several times that under ASan */
    tcase_add_test(tc, random_link_drops_give_time_order_verdicts);
    suite_add_tcase(s, tc);
    return s;
}
