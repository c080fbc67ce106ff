/* rules — the China VI rules engine: per-vehicle rule state in, violations out.
 *
 * What it judges is /work/shared/protocol/rules.md: roadside remote sensing (rsd.*), remote
 * OBD of China VI heavy-duty vehicles (obd.*) and the two together (fusion.obd_mismatch).
 * Every threshold is a member of vem_rules_config_t with the rules.md default.
 *
 * Pure: no I/O, threads, sockets, databases or clocks. A vem_rules_vehicle_t holds one
 * vehicle's rule state and belongs to the worker thread that owns the vehicle; the
 * configuration is read-only and may be shared by every worker. Feeding a vehicle calls the
 * caller's emit function for each verdict, synchronously, before the feed returns.
 *
 * Time is the data's time: a sample's rule time is its HJ 1239 block time, or, in a GB 17691
 * frame (one time for the whole frame, which is its last sample's, as tools/sim_frames.h
 * writes it), the frame time minus the number of sample blocks after it. The wall clock
 * enters only through vem_rules_on_silence. So a re-sent backlog, a replay from the spool or
 * a back-fill from the database gives the verdicts live data gives, with the same ids.
 *
 * Verdicts are upserts. A violation's id is a hash of (rule, vehicle, start of its evidence),
 * so one episode keeps one id: when it grows (a notice that becomes a violation, a chain of
 * roadside readings that gets longer), the same id is emitted again with a later last_at,
 * the longer evidence and a severity that never goes down. Sinks keep the latest emission of
 * an id (schema/0001_core.sql lets vemd update last_at, measured, evidence, severity).
 *
 * Trips and out-of-order data: see the design comment at the top of rules.c. */
#ifndef VEM_RULES_H
#define VEM_RULES_H

#include "hj1239.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- rules -------------------------------------------------------------------------------- */

typedef enum {
    VEM_RULE_RSD_NO = 0,          /* rsd.no_exceed (diesel and gasoline NO) */
    VEM_RULE_RSD_OPACITY,         /* rsd.opacity_exceed */
    VEM_RULE_RSD_RINGELMANN,      /* rsd.ringelmann_exceed */
    VEM_RULE_RSD_CO,              /* rsd.co_exceed (gasoline) */
    VEM_RULE_RSD_HC,              /* rsd.hc_exceed (gasoline) */
    VEM_RULE_OBD_MIL_ON,          /* obd.mil_on */
    VEM_RULE_OBD_DTC,             /* obd.dtc */
    VEM_RULE_OBD_REAGENT_EMPTY,   /* obd.reagent_empty */
    VEM_RULE_OBD_NOX_WINDOW,      /* obd.nox_window */
    VEM_RULE_OBD_NOX_HIGH,        /* obd.nox_high */
    VEM_RULE_OBD_SCR_INEFFECTIVE, /* obd.scr_ineffective */
    VEM_RULE_OBD_TAMPER,          /* obd.tamper */
    VEM_RULE_OBD_OFFLINE,         /* obd.offline (silence and daily completeness) */
    VEM_RULE_FUSION_OBD_MISMATCH, /* fusion.obd_mismatch */
    VEM_RULE_COUNT
} vem_rule_t;

/* Rule name as FIELDS.md writes it ("rsd.no_exceed", ...); NULL out of range. Static. */
const char *vem_rules_name(vem_rule_t rule);

/* The standard and clause the rule applies; NULL out of range. Static. */
const char *vem_rules_clause(vem_rule_t rule);

/* The Beijing midnight that starts the date text ("YYYY-MM-DD", a date that exists), as epoch
 * microseconds; false when text is not such a date. */
bool vem_rules_date_us(const char *text, int64_t *us);

/* The rule called name; false when there is none. */
bool vem_rules_lookup(const char *name, vem_rule_t *rule);

/* ---- configuration ------------------------------------------------------------------------ */

/* Which column of the roadside diesel limits applies (limit b: key regions, once adopted). */
typedef enum {
    VEM_RSD_LIMIT_A = 0,
    VEM_RSD_LIMIT_B = 1,
} vem_rsd_column_t;

/* A closed interval [lo, hi]. */
typedef struct {
    double lo, hi;
} vem_rules_range_t;

/* Every threshold of rules.md; vem_rules_config_defaults() gives the documented defaults.
 * Durations in minutes, hours or days count 1 Hz samples: N minutes = 60 N qualifying
 * samples. A gasoline limit that is NaN is unset, and its rule is off. */
typedef struct {
    bool enabled[VEM_RULE_COUNT]; /* all true by default */
    /* roadside: validity window (HJ 845 measuring conditions, bounds inclusive) */
    vem_rules_range_t rsd_speed_kmh; /* 20 .. 80 */
    vem_rules_range_t rsd_accel_ms2; /* -0.5 .. 1.0 */
    vem_rules_range_t rsd_vsp_kw_t;  /* 0 .. 20 */
    vem_rules_range_t rsd_wind_ms;   /* 0 .. 5 */
    vem_rules_range_t rsd_slope_pct; /* -3 .. 5 */
    /* roadside: diesel limits (GB 3847-2018, to confirm), exceeded when strictly above */
    vem_rsd_column_t rsd_column; /* a */
    /* with column b: b judges the readings taken from this instant on (the Beijing midnight the
     * region adopted it, rules.rsd_limit_b_from), a those before; INT64_MIN: b judges all */
    int64_t rsd_b_from_us;
    double rsd_no_ppm[2];          /* [a] 1500, [b] 1000 */
    double rsd_opacity_pct[2];     /* 30, 30 */
    double rsd_ringelmann[2];      /* 1, 1: "above grade 1" */
    double gas_co_pct, gas_hc_ppm; /* gasoline (GB 18285-2018): unset */
    double gas_no_ppm;             /* unset */
    /* roadside: judgement */
    unsigned rsd_chain_n;      /* 2 consecutive valid exceedances ... */
    unsigned rsd_cycle_months; /* ... within 6 natural months */
    /* OBD */
    unsigned mil_days;              /* 7 */
    double reagent_min_pct;         /* 2.0, at or below */
    unsigned reagent_minutes;       /* 30 */
    double nox_ppm_max;             /* 500 */
    unsigned nox_minutes;           /* 10 */
    double scr_eff_min;             /* 0.5 */
    unsigned scr_minutes;           /* 30 */
    double scr_in_min_c;            /* 250 */
    double scr_up_min_ppm;          /* 100 */
    unsigned frozen_minutes;        /* 10 */
    double frozen_rpm_span;         /* 50 */
    unsigned down_above_up_minutes; /* 10 */
    unsigned invalid_minutes;       /* 30 */
    unsigned offline_hours;         /* 72 */
    double completeness_min;        /* 0.95 */
    double warm_coolant_c;          /* 70 */
    unsigned warm_after_start_min;  /* 20 */
    unsigned trip_gap_min;          /* 10: a longer gap ends a trip */
    unsigned backlog_wait_min;      /* 10: live data after a hole waits this long for a re-send */
    unsigned backlog_hole_s;        /* 5: the fewest missing seconds of a hole that is waited for */
    /* work-based window (GB 17691-2018 PEMS method, to confirm) */
    double fuel_density_kg_l;    /* 0.835 */
    double nox_u;                /* 0.001586 */
    double window_min_power_pct; /* 20: valid when average power >= this % of rated */
    double nox_window_mg_kwh;    /* 690 (460 x 1.5) */
    unsigned nox_percentile;     /* 90, nearest rank */
    /* fusion */
    double fusion_low_ppm;     /* 500 */
    unsigned fusion_match_s;   /* 2 */
    unsigned fusion_horizon_s; /* 600: OBD history kept per vehicle, by second (vemd's bound) */
} vem_rules_config_t;

/* The rules.md defaults. */
void vem_rules_config_defaults(vem_rules_config_t *cfg);

/* 0 when cfg is usable; -1 with the offending key, value and bound in err (may be NULL). */
int vem_rules_config_validate(const vem_rules_config_t *cfg, char *err, size_t errlen);

/* The bounds vem_rules_config_validate holds the threshold `name` (its key without "rules.")
 * to, as text for people ("range 1..32", "range above 0 up to 100, or unset"); NULL for a name
 * with no bounds of its own (a range's ends, the limit column, the column's start date). */
const char *vem_rules_config_bounds(const char *name, char *buf, size_t len);

/* ---- vehicles ----------------------------------------------------------------------------- */

typedef enum {
    VEM_FUEL_UNKNOWN = 0,
    VEM_FUEL_DIESEL,
    VEM_FUEL_GASOLINE,
    VEM_FUEL_GAS,
} vem_rules_fuel_t;

/* FIELDS.md fuel ("diesel", ...) to the enum; VEM_FUEL_UNKNOWN for anything else. */
vem_rules_fuel_t vem_rules_fuel(const char *name);

/* What the registry knows of the engine. The three figures are 0 when unknown; without all
 * three obd.nox_window falls back to obd.nox_high. */
typedef struct {
    double ref_torque_nm;
    double rated_power_kw;
    double whtc_work_kwh;
    vem_rules_fuel_t fuel;
} vem_rules_engine_facts_t;

typedef struct vem_rules_vehicle vem_rules_vehicle_t;

/* New state for one vehicle: vin (17 characters) and/or plate (NUL-terminated; either may be
 * NULL, not both), facts may be NULL (nothing known). Copies what it needs. */
vem_rules_vehicle_t *vem_rules_vehicle_new(const char *vin, const char *plate,
                                           const vem_rules_engine_facts_t *facts);

/* Frees the state; accepts NULL; sets *self_p to NULL. Open trips are dropped unjudged: call
 * vem_rules_flush first to judge them. */
void vem_rules_vehicle_destroy(vem_rules_vehicle_t **self_p);

/* New registry facts (NULL: none). A trip in progress keeps the figures it started with. */
void vem_rules_vehicle_set_facts(vem_rules_vehicle_t *self, const vem_rules_engine_facts_t *facts);

/* Whether the registry knows the vehicle: rules.md owes obd.offline (silence and daily
 * completeness) to registered vehicles only. A new state counts as registered; its owner says
 * otherwise, from the registry it has, before the clock's rules look at the state (it is not
 * checkpointed). */
void vem_rules_vehicle_set_registered(vem_rules_vehicle_t *self, bool registered);

/* Sets the VIN, the plate or the plate's colour (FIELDS.md plate_color) once the registry
 * links them (NULL leaves it as it is). A vehicle without a colour takes the colour of the
 * first roadside reading of its plate. */
void vem_rules_vehicle_set_ids(vem_rules_vehicle_t *self, const char *vin, const char *plate,
                               const char *plate_color);

/* The plate's colour the state knows ("" when none); owned by the vehicle. */
const char *vem_rules_vehicle_plate_color(const vem_rules_vehicle_t *self);

/* Bytes of memory the state holds now: the struct and everything it allocated. */
size_t vem_rules_vehicle_bytes(const vem_rules_vehicle_t *self);

/* What the vehicle's state set aside, for metrics. */
typedef struct {
    uint64_t samples;          /* 1 Hz samples judged */
    uint64_t late_samples;     /* samples older than the live trip, or in a hole whose wait ended:
                                  judged on the back-fill track */
    uint64_t copy_samples;     /* samples at a second a track took already (or held): not judged
                                  again */
    uint64_t held_samples;     /* samples held after a hole in the live trip (rules.c, s_hold) */
    uint64_t late_obd;         /* OBD snapshots older than the newest seen: not used for DTCs and
                                  the OBD VIN (the MIL uses them, rules.c) */
    uint64_t late_mil;         /* MIL snapshots that could not be placed (rules.c) */
    uint64_t readings;         /* roadside readings judged */
    uint64_t readings_invalid; /* not valid: station flag or outside the window, or fuel unknown */
    uint64_t readings_late;    /* readings too old for a chain that let readings go (rules_rsd.c) */
    uint64_t fusion_unmatched; /* NO exceedances with no OBD sample within fusion_match_s */
    uint64_t dtcs_unjudged;    /* trouble codes not judged: not in the vehicle's set of seen
                                  codes while it was full, once per snapshot (rules.c, s_dtc) */
} vem_rules_counts_t;

/* The vehicle's counters (owned by the vehicle). */
const vem_rules_counts_t *vem_rules_vehicle_counts(const vem_rules_vehicle_t *self);

/* Adds to *sum what the counts grew by from was to now (two readings of one vehicle's). */
void vem_rules_counts_add(vem_rules_counts_t *sum, const vem_rules_counts_t *was,
                          const vem_rules_counts_t *now);

/* ---- verdicts ----------------------------------------------------------------------------- */

typedef enum {
    VEM_SEVERITY_NOTICE = 0,
    VEM_SEVERITY_VIOLATION = 1,
} vem_severity_t;

/* "notice" or "violation". */
const char *vem_rules_severity_name(vem_severity_t severity);

#define VEM_RULES_ID_LEN 33 /* 32 hex digits + NUL */

/* One verdict; FIELDS.md's violation keys. Valid only during the emit call: copy what you
 * keep (json_incref the evidence to hold it). */
typedef struct {
    char id[VEM_RULES_ID_LEN]; /* hex of the 128-bit id hash, see vem_rules_id */
    vem_rule_t rule;
    const char *name;          /* vem_rules_name(rule) */
    const char *clause;        /* vem_rules_clause(rule) */
    const char *vin;           /* "" when not known */
    const char *plate;         /* "" when not known */
    const char *plate_color;   /* "" when not known: a plate without it names no one vehicle */
    int64_t first_us, last_us; /* span of the evidence, epoch microseconds */
    double measured, limit;    /* NaN when the rule has none */
    const char *unit;          /* static; "" when none */
    vem_severity_t severity;
    json_t *evidence;   /* object: what the verdict rests on (borrowed) */
    uint64_t spool_seq; /* the input whose feed produced it (0: vem_rules_on_silence/flush) */
} vem_violation_t;

/* Called once per verdict. */
typedef void (*vem_rules_emit_fn)(void *arg, const vem_violation_t *v);

/* The violation as a FIELDS.md JSON object (violation_id, rule, clause, vin, plate,
 * plate_color, first_at, last_at as ISO 8601 Beijing time, measured, limit, unit, severity,
 * evidence); new reference. */
json_t *vem_rules_violation_json(const vem_violation_t *v);

/* A few lines of text saying what the verdict rests on, for people; malloc'd, caller frees. */
char *vem_rules_explain(const vem_violation_t *v);

/* The id: two 64-bit FNV-1a hashes of the same bytes, with the FNV-64 offset basis and with
 * the high 64 bits of the FNV-128 offset basis, as 32 hex digits. The bytes are the rule name,
 * NUL, the vehicle key (the VIN for obd.* and fusion.*, the plate for rsd.*), NUL, and the
 * anchor: "t=<epoch us>" of the evidence's first sample or snapshot (obd.tamper and
 * obd.offline add "/<kind>") or "r=<station_id>/<reading_id>" of its first roadside reading. */
void vem_rules_id(vem_rule_t rule, const char *vehicle_key, const char *anchor,
                  char out[VEM_RULES_ID_LEN]);

/* ---- feeding ------------------------------------------------------------------------------ */

/* Judges one decoded frame of the vehicle: samples and OBD snapshots of real-time (0x02) and
 * re-sent (0x03) frames, login/logout (trip boundaries), removal alarms (0x06); other
 * commands are ignored. received_us is the receipt time, spool_seq the input's spool seq.
 * paused_us is how long vemd's intake had been paused before it read the input (spool full, a
 * failing flush, vemd stopped: vem_ingest_args_t's paused_us, kept with each frame in the spool),
 * so that silence is measured on the intake clock, received_us - paused_us: a pause of vemd's own
 * making is no silence of the truck's, and ends no trip, live or in a replay. Returns the number of
 * verdicts emitted. */
unsigned vem_rules_on_frame(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                            const vem_hj1239_frame_t *f, int64_t received_us, int64_t paused_us,
                            uint64_t spool_seq, vem_rules_emit_fn emit, void *arg);

/* vem_rules_on_frame, adding to *added what the frame added to the vehicle's counts: read once
 * the state's lines were asked for and the frame's samples read, so that a caller that counts
 * does not wait for them first. */
unsigned vem_rules_on_frame_counted(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                                    const vem_hj1239_frame_t *f, int64_t received_us,
                                    int64_t paused_us, uint64_t spool_seq, vem_rules_emit_fn emit,
                                    void *arg, vem_rules_counts_t *added);

/* Hints, no state change: with thousands of vehicles a vehicle's state is rarely in the CPU
 * caches when its frame comes, so a caller that knows the next frames asks for their state
 * early, in two steps (the second reads what the first brought): the state's own lines, then
 * the window ring, kept-window and fusion lines judging f will touch. Call the first two
 * frames ahead and the second one frame ahead of vem_rules_on_frame. */
void vem_rules_prefetch_state(const vem_rules_vehicle_t *self);
void vem_rules_prefetch_frame(const vem_rules_vehicle_t *self, const vem_hj1239_frame_t *f);

/* A roadside remote-sensing reading, with the FIELDS.md keys the rules use. Values a station
 * did not report are NaN. */
typedef struct {
    char station_id[32];
    char reading_id[64];
    int64_t time_us; /* measurement instant */
    char plate[16];
    char plate_color[16];
    vem_rules_fuel_t fuel;
    double speed_kmh, accel_ms2, vsp_kw_t, wind_ms, slope_pct;
    double opacity_pct, ringelmann, no_ppm, co_pct, hc_ppm;
    bool valid;          /* the station's own verdict */
    int64_t received_us; /* when vemd received it (0: not known) */
} vem_rsd_reading_t;

/* A reading with every value NaN, valid false, fuel unknown and the strings empty. */
void vem_rules_reading_init(vem_rsd_reading_t *r);

/* True when the reading counts by the HJ 845 measuring conditions: the station marked it valid
 * and speed, acceleration, VSP, wind and slope are reported and inside cfg's window; else
 * false with the first reason in why (may be NULL). */
bool vem_rules_reading_valid(const vem_rules_config_t *cfg, const vem_rsd_reading_t *r, char *why,
                             size_t whylen);

/* Judges one roadside reading of the vehicle (and matches it with the vehicle's OBD data for
 * fusion.obd_mismatch). Returns the number of verdicts emitted. */
unsigned vem_rules_on_reading(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                              const vem_rsd_reading_t *r, uint64_t spool_seq,
                              vem_rules_emit_fn emit, void *arg);

/* Seeds the roadside chains from stored readings (any order; the last rsd_cycle_months and a
 * day are enough: the cycle counts calendar dates) without emitting: what was judged before a
 * restart is in the database already. */
void vem_rules_seed_readings(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                             const vem_rsd_reading_t *past, size_t n);

/* The roadside history of the vehicle from the database (vemd loads it at start: a fresh
 * install with back-filled readings, a lost checkpoint): stored readings in any order (the
 * last rsd_cycle_months and a day are enough) seeded into the chains without verdicts, as
 * vem_rules_seed_readings does; but each reading judged live before the history whose verdict
 * the history changes is emitted again as it now stands, under the id of its chain's oldest
 * reading: what a vehicle that had seen everything in time order emitted for it. Counts do not
 * change. Returns the number of verdicts emitted. */
unsigned vem_rules_history(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                           const vem_rsd_reading_t *past, size_t n, vem_rules_emit_fn emit,
                           void *arg);

/* True when the state holds nothing that later inputs or the clock still need, so the owner
 * may destroy it once the vehicle has been silent long enough (and make a new one if it comes
 * back): no open trip, no MIL episode or remembered DTC, no reading waiting for OBD data, no
 * roadside chain ending in an exceedance that a reading taken by now_us (the wall clock) could
 * still complete (within rsd_cycle_months, and two days for the calendar and a station's clock;
 * an older one a late reading might still complete is in PostgreSQL, which a new state loads),
 * and obd.offline fired for the silence (or cannot fire). */
bool vem_rules_vehicle_idle(const vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                            int64_t now_us);

/* Receipt time of the last input the vehicle took (epoch us; 0: none yet). */
int64_t vem_rules_vehicle_last_received(const vem_rules_vehicle_t *self);

/* Roadside exceedances after each chain's newest compliant reading, which a new reading can
 * still complete (0: nothing of the history worth keeping). */
size_t vem_rules_vehicle_rsd_links(const vem_rules_vehicle_t *self);

/* The clock's turn, now_us the wall clock and paused_us intake's paused total then (see
 * vem_rules_on_frame): ends trips with nothing received for twice trip_gap_min on the intake
 * clock (judging them as the next sample would), and emits obd.offline when nothing was
 * received for offline_hours on the intake clock too (never more than the wall clock says;
 * the wall clock alone for a vehicle whose last receipt came from a version 5 checkpoint), once
 * per silence. Returns the number of verdicts emitted. */
unsigned vem_rules_on_silence(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                              int64_t now_us, int64_t paused_us, vem_rules_emit_fn emit, void *arg);

/* Ends and judges every open trip now (shutdown, or before destroying the state). */
unsigned vem_rules_flush(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg,
                         vem_rules_emit_fn emit, void *arg);

/* Daily completeness: received 1 Hz samples / engine-running seconds; 1 when nothing ran. */
double vem_rules_completeness(uint64_t received, uint64_t running_s);

/* Judges the completeness of Beijing day `day` (days since 1970-01-01 in UTC+8) from the
 * counts the caller has (re-sent samples arrive late and in any order, so the counts come
 * from where every sample ends up, e.g. the database): obd.offline notice when below
 * completeness_min. Returns the number of verdicts emitted. */
unsigned vem_rules_on_day(vem_rules_vehicle_t *self, const vem_rules_config_t *cfg, int32_t day,
                          uint64_t received, uint64_t running_s, vem_rules_emit_fn emit, void *arg);

/* ---- checkpoints -------------------------------------------------------------------------- */

/* Appends the vehicle's whole rule state (ids, facts, counts, open trips and their windows,
 * runs, roadside chains, the fusion ring and pending readings) to the buffer *buf of *len
 * bytes used and *cap allocated (realloc'd as needed; *buf may start NULL). The bytes are
 * versioned and host-endian: a checkpoint is read back by the same build on the same host.
 * Loading them gives a vehicle that judges what comes next exactly as self would. */
void vem_rules_vehicle_save(const vem_rules_vehicle_t *self, uint8_t **buf, size_t *len,
                            size_t *cap);

/* Rebuilds a vehicle from exactly the len bytes one vem_rules_vehicle_save appended; NULL with
 * the reason in err (may be NULL) when they are not a whole, consistent state of this
 * version (bounds checked: a damaged checkpoint is refused, never trusted). */
vem_rules_vehicle_t *vem_rules_vehicle_load(const uint8_t *p, size_t len, char *err, size_t errlen);

#endif
