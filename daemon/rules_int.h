/* rules_int — what the parts of the rules engine share; not for other modules.
 *
 *   rules_config.c  configuration: defaults and validation
 *   rules.c         vehicles, frames, trips and the per-sample OBD rules
 *   rules_window.c  the work-based NOx window of one trip (obd.nox_window)
 *   rules_rsd.c     roadside chains (rsd.*) and the roadside/OBD match (fusion.obd_mismatch)
 *   rules_out.c     verdicts: ids, evidence helpers, JSON and text
 *   rules_ckpt.c    checkpoints: one vehicle's whole state to bytes and back
 *
 * The state structs are here, not in their .c files, so that rules_ckpt.c can save and load
 * them: a member added to any of them must be saved there too (and the version bumped).
 *
 * Everything here belongs to the thread that owns the vehicle. */
#ifndef VEM_RULES_INT_H
#define VEM_RULES_INT_H

#include "rules.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- verdicts (rules_out.c) --------------------------------------------------------------- */

/* Where verdicts go during one feed call. fn NULL: judge silently (seeding). */
typedef struct {
    vem_rules_emit_fn fn;
    void *arg;
    uint64_t spool_seq;
    unsigned emitted;
} vem_rules_out_t;

/* The vehicle a verdict is about. */
typedef struct {
    const char *vin;         /* "" when not known */
    const char *plate;       /* "" when not known */
    const char *plate_color; /* "" when not known */
} vem_rules_who_t;

/* A verdict before it gets its id. */
typedef struct {
    vem_rule_t rule;
    const char *anchor; /* see vem_rules_id */
    int64_t first_us, last_us;
    double measured, limit;
    const char *unit;
    vem_severity_t severity;
    json_t *evidence; /* stolen by vem_rules_emit */
} vem_rules_verdict_t;

/* Gives v its id and hands it to out (or drops it when out->fn is NULL); frees the evidence. */
void vem_rules_emit(vem_rules_out_t *out, const vem_rules_who_t *who, vem_rules_verdict_t *v);

#define VEM_RULES_ISO_LEN 40

/* ISO 8601 Beijing time of an instant in epoch microseconds, with a fraction only when the
 * instant has one: "2024-03-05T08:09:10+08:00", "2024-03-05T08:09:10.250+08:00". */
void vem_rules_iso(int64_t us, char out[VEM_RULES_ISO_LEN]);

/* The same as a new JSON string. */
json_t *vem_rules_iso_json(int64_t us);

/* A double as JSON: a number, or null for NaN. */
json_t *vem_rules_real_json(double v);

/* Civil time in Beijing (UTC+8). */
typedef struct {
    int64_t year;
    int month, day, hour, minute, second, micro;
} vem_rules_civil_t;

void vem_rules_civil(int64_t us, vem_rules_civil_t *c);
int64_t vem_rules_from_civil(const vem_rules_civil_t *c);

/* The instant `months` natural months after us in Beijing time; a day the later month lacks
 * becomes its last day (Aug 31 + 6 months = the last day of February). */
int64_t vem_rules_add_months(int64_t us, unsigned months);

/* True when the Beijing date of later_us is at most `months` natural months after the Beijing
 * date of earlier_us (as vem_rules_add_months moves a date), whatever the times of day: Jan 31
 * to Jul 31 is within 6, to Aug 1 is not; Aug 31 to Feb 28 (or 29) is within 6. */
bool vem_rules_within_months(int64_t earlier_us, int64_t later_us, unsigned months);

/* ---- samples (rules.c) -------------------------------------------------------------------- */

/* True when rules.c's copy of the scales of the fields it reads is the decoder's. */
bool vem_rules_fields_match_decoder(void);

/* ---- the work-based window (rules_window.c) ----------------------------------------------- */

/* Largest number of samples a window may need before it is certainly invalid; figures that
 * need more are not usable for the window (the vehicle falls back to obd.nox_high). */
#define VEM_RULES_WINDOW_RING_MAX 4096
/* Valid windows whose NOx a trip keeps (the largest): the percentile is exact while the
 * windows above it fit, i.e. up to about 10 x this many valid windows per trip. */
#define VEM_RULES_WINDOW_KEEP 2048
/* The kept windows collect in a buffer this much longer than VEM_RULES_WINDOW_KEEP, then the
 * largest KEEP are selected: appends are sequential, selection costs O(1) a window. */
#define VEM_RULES_KEPT_MAX (VEM_RULES_WINDOW_KEEP + 256)
/* Windows around the percentile that the evidence shows. */
#define VEM_RULES_WINDOW_AROUND 5

typedef struct {
    double ref_torque_nm, rated_power_kw, whtc_work_kwh;
    double fuel_density_kg_l, nox_u;
    double min_power_frac; /* window_min_power_pct / 100 */
    double limit_mg_kwh;
    unsigned percentile;
} vem_rules_window_params_t;

/* Bytes of a ring slot: a sample's work (kWh) and NOx (g) as floats, then its time. */
#define VEM_RULES_SLOT 12

/* Slot `slot` of a window's ring: its sample's work, NOx and rule time - base (rules_window.c;
 * rules_ckpt.c converts and checks rings with them). */
static inline float vem_rules_slot_work(const uint8_t *ring, uint32_t slot)
{
    float v;
    memcpy(&v, ring + (size_t)slot * VEM_RULES_SLOT, sizeof v);
    return v;
}

static inline float vem_rules_slot_nox(const uint8_t *ring, uint32_t slot)
{
    float v;
    memcpy(&v, ring + (size_t)slot * VEM_RULES_SLOT + 4, sizeof v);
    return v;
}

static inline int32_t vem_rules_slot_time(const uint8_t *ring, uint32_t slot)
{
    int32_t v;
    memcpy(&v, ring + (size_t)slot * VEM_RULES_SLOT + 8, sizeof v);
    return v;
}

static inline void vem_rules_slot_put(uint8_t *ring, uint32_t slot, float work, float nox,
                                      int32_t t)
{
    uint8_t *p = ring + (size_t)slot * VEM_RULES_SLOT;
    memcpy(p, &work, 4);
    memcpy(p + 4, &nox, 4);
    memcpy(p + 8, &t, 4);
}

/* Valid windows a trip's window state holds in its own lines before appending them to kept. */
#define VEM_RULES_KEPT_STAGE 16

/* A kept valid window (12 bytes). */
typedef struct {
    float nox;          /* mg/kWh */
    int32_t start, end; /* rule times, seconds after the trip's start */
} vem_rules_kept_t;

/* One trip's window state, embedded in the trip (no allocation while the ring and the kept
 * windows fit what they have). Zeroed: not active. */
typedef struct {
    /* what every sample touches first, so a frame needs as few of the trip's lines as it can */
    bool active;
    bool full;
    uint32_t cap, cap_max, head, count;
    uint8_t *ring;    /* VEM_RULES_SLOT-byte slots: the sample's work (kWh) and NOx (g), as two
                         floats, then its rule time - base (int32) */
    double work, nox; /* sums over the trip so far */
    double head_work, head_nox; /* sums of the samples before the ring's head (rules_window.c) */
    /* per-trip constants, so the per-sample path has no division */
    double work_per_pct_rpm;  /* kWh of one second per (torque % - friction %) x rpm */
    double mass_per_ppm_kgph; /* g of one second per ppm x kg/h of exhaust */
    double density;           /* kg/L */
    double whtc_work_kwh;
    double min_work_per_sample; /* min_power_frac x P_rated / 3600: kWh a second */
    int64_t base;               /* trip start, epoch s */
    uint32_t samples, windows, valid, over;
    /* the largest valid windows, in no order; once full, nothing below threshold enters */
    vem_rules_kept_t *kept;
    uint32_t nkept, kept_cap;
    vem_rules_kept_t threshold; /* the smallest of the largest VEM_RULES_WINDOW_KEEP */
    double limit_mg_kwh;
    /* valid windows not yet in kept: the kept windows are kept[0 .. nkept) then these. Only
     * plain appends are staged (room in kept, no selection due), so the kept array, in a page
     * of its own, is written once every few frames (vem_rules_window_settle) */
    uint32_t nstage;
    vem_rules_kept_t stage[VEM_RULES_KEPT_STAGE];
    /* rarely */
    double span_limit; /* D_lim */
    unsigned percentile;
    size_t *bytes;
} vem_rules_window_t;

/* Most power a usable engine's figures may let one sample report (kW): the largest engines
 * built make about 10^5, so figures beyond are damage; it keeps a sample's work (kWh, a float
 * in the window's ring) far from a float's range. */
#define VEM_RULES_POWER_MAX_KW 1e9
/* Most NOx one sample can carry (g) under the configuration's ranges (rules_config.c: nox_u at
 * most 1, fuel density at most 10 kg/L): about 3.2e4. */
#define VEM_RULES_SAMPLE_MASS_MAX_G 1e6

/* Samples a window may span and still be valid (D_lim of the design note in rules_window.c);
 * 0 when the figures are missing, not positive, or beyond VEM_RULES_POWER_MAX_KW. */
double vem_rules_window_span_limit(const vem_rules_window_params_t *p);

/* True when the figures are present, need at most VEM_RULES_WINDOW_RING_MAX samples and make
 * constants vem_rules_window_constants_ok accepts. */
bool vem_rules_window_usable(const vem_rules_window_params_t *p);

/* True when a window's per-trip constants are what vem_rules_window_start makes of usable
 * figures and a valid configuration: positive, and a sample's work and NOx within
 * VEM_RULES_POWER_MAX_KW and VEM_RULES_SAMPLE_MASS_MAX_G (the checkpoint loader's check). */
bool vem_rules_window_constants_ok(const vem_rules_window_t *w);

/* Starts a trip's window state at trip_start (epoch s); false (and w inactive) when the
 * figures are not usable. *bytes follows what it allocates, now and later. */
bool vem_rules_window_start(vem_rules_window_t *w, const vem_rules_window_params_t *p,
                            int64_t trip_start, size_t *bytes);

/* Appends the staged valid windows to kept (what appending them one by one would have made). */
void vem_rules_window_settle(vem_rules_window_t *w);

/* Frees what w allocated and makes it inactive. */
void vem_rules_window_stop(vem_rules_window_t *w);

/* One 1 Hz sample with every value valid, at rule time t (epoch s). */
typedef struct {
    double torque_pct, friction_pct, rpm, intake_kgph, fuel_lph, nox_ppm;
    int64_t t;
} vem_rules_window_in_t;

/* The samples in[0 .. n), in their order: the same as adding them one by one, with the
 * window's running figures held in registers across them. */
void vem_rules_window_add(vem_rules_window_t *w, const vem_rules_window_in_t *const *in, size_t n);

typedef struct {
    int64_t start, end; /* rule times of the window's first and last sample */
    double nox_mg_kwh;
    uint32_t rank; /* 1 = smallest valid window */
} vem_rules_window_at_t;

typedef struct {
    uint32_t samples;         /* valid samples in the trip */
    uint32_t windows;         /* complete, or already too long to be valid */
    uint32_t valid;           /* average power >= min_power_frac x rated power */
    uint32_t over;            /* valid windows above the limit */
    uint32_t rank;            /* nearest rank of the percentile, ceil(percentile x valid / 100) */
    bool fails;               /* the percentile is above the limit */
    bool exact;               /* the percentile is the exact value (else an upper bound) */
    double percentile_mg_kwh; /* NaN without valid windows */
    unsigned naround;
    vem_rules_window_at_t around[VEM_RULES_WINDOW_AROUND]; /* by rank, the percentile's inside */
} vem_rules_window_result_t;

/* Asks the memory for what the next n samples will touch (the call is a hint, no state change). */
void vem_rules_window_prefetch(const vem_rules_window_t *w, uint32_t n);

/* The trip's figures so far (call at the trip's end; reorders the kept windows). */
void vem_rules_window_result(vem_rules_window_t *w, vem_rules_window_result_t *out);

/* ---- roadside and fusion (rules_rsd.c) ---------------------------------------------------- */

enum { VEM_RULES_POLLUTANTS = 5 }; /* NO, opacity, Ringelmann, CO, HC */

#define VEM_RULES_CHAIN_MAX   32   /* exceedances a verdict rests on (the newest of its run) */
#define VEM_RULES_CHAIN_HELD  64   /* valid readings a chain holds per pollutant (the oldest go) */
#define VEM_RULES_PENDING     4    /* NO exceedances waiting for OBD data */
#define VEM_RULES_HORIZON_MAX 3600 /* largest fusion_horizon_s (rules_config.c) */

/* One valid reading of a chain's pollutant. */
typedef struct {
    int64_t time_us;
    double value;
    bool over;       /* above the limit in force when it came (see rules_rsd.c) */
    bool loaded;     /* from the stored history, not yet come as an input here (rules_rsd.c) */
    uint8_t reach_n; /* with reach_us: the readings the latest verdict under its id rests on */
    char station_id[32];
    char reading_id[64];
    int64_t received_us; /* of a loaded one: when vemd received it (0: not known) */
    /* when a verdict was emitted under its id here: the time of the last reading the latest of
     * them rests on (rules_rsd.c, s_emit_cut), that reading's key (rules_rsd.c s_key: readings
     * of one instant), and their number (reach_n); 0: none */
    int64_t reach_us;
    uint64_t reach_key;
} vem_rules_link_t;

/* The valid readings of one pollutant, exceedances and compliant ones, by time (then station
 * and reading id); what the verdicts are a function of (rules_rsd.c). */
typedef struct vem_rules_chain {
    uint32_t n, cap;
    bool truncated; /* older readings were let go: a late one needs context (rules_rsd.c) */
    vem_rules_link_t *links; /* grows up to VEM_RULES_CHAIN_HELD */
} vem_rules_chain_t;

typedef struct vem_rules_pending {
    int64_t time_us;
    double no_ppm, limit;
    char station_id[32];
    char reading_id[64];
} vem_rules_pending_t;

/* One second of the fusion history: the sample's raw downstream NOx in bits 0..15
 * (VEM_RULES_NOX_NONE: no valid value that second), and the key it is stored under in
 * obd_samples (vem_rules_at_t: key_off in bits 16..23, key_idx in bits 24..31, both below
 * VEM_HJ1239_MAX_BLOCKS), so that a verdict names the stored row. VEM_RULES_KEY_UNKNOWN in bits
 * 24..31: a second restored from a checkpoint older than version 4, which kept the value only. */
typedef uint32_t vem_rules_nox_t;
#define VEM_RULES_NOX_NONE    0xFFFFu /* raw values stop at 0xFAFF */
#define VEM_RULES_KEY_UNKNOWN 0xFFu

/* One vehicle's roadside state: the chains of exceedances by pollutant, the OBD downstream NOx
 * of the last fusion_horizon_s seconds (vem_rules_nox_t, one a second) and the NO exceedances
 * still waiting for OBD data. Allocated on first use. */
/* Seconds of fusion history a vehicle holds in its own lines before writing them to the ring
 * (one cache line with its count): the ring is in a page of its own, and two frames in three
 * touch it instead of every frame. */
#define VEM_RULES_FUSION_STAGE 15

typedef struct {
    /* the seconds after obd_newest, one after the other, not yet in the ring: the history
     * is the ring followed by these (vem_rules_rsd_settle writes them to it) */
    vem_rules_nox_t stage[VEM_RULES_FUSION_STAGE];
    uint32_t nstage;
    vem_rules_nox_t *obd; /* ring by second */
    uint32_t obd_slots;   /* fusion_horizon_s when allocated */
    uint32_t obd_head;    /* the slot of obd_newest */
    int64_t obd_newest;   /* newest second written; INT64_MIN before any */
    unsigned npending;
    vem_rules_pending_t *pending;
    vem_rules_chain_t *chain[VEM_RULES_POLLUTANTS];
} vem_rules_rsd_t;

/* What the roadside part needs to know of its vehicle. */
typedef struct {
    vem_rules_who_t who;
    vem_rules_fuel_t fuel; /* from the registry */
    vem_rules_counts_t *counts;
    size_t *bytes;
} vem_rules_rsd_ctx_t;

void vem_rules_rsd_init(vem_rules_rsd_t *rsd);

/* Frees what rsd allocated. */
void vem_rules_rsd_free(vem_rules_rsd_t *rsd, size_t *bytes);

/* A roadside reading: an input (loaded false), or one of the stored history (loaded true, out->fn
 * NULL: no verdicts, no fusion). */
void vem_rules_rsd_reading(vem_rules_rsd_t *rsd, const vem_rules_rsd_ctx_t *ctx,
                           const vem_rules_config_t *cfg, const vem_rsd_reading_t *r, bool loaded,
                           vem_rules_out_t *out);

/* A frame's OBD samples: downstream NOx with their keys (vem_rules_nox_pack) at rule times
 * sec[0 .. n); decides the pending readings they complete. */
void vem_rules_rsd_obd(vem_rules_rsd_t *rsd, const vem_rules_rsd_ctx_t *ctx,
                       const vem_rules_config_t *cfg, const int64_t *sec,
                       const vem_rules_nox_t *nox, size_t n, vem_rules_out_t *out);

/* Writes the staged seconds to the fusion ring: what recording them one by one would have
 * made. Everything that reads the ring calls it first. */
void vem_rules_rsd_settle(vem_rules_rsd_t *rsd);

/* Stored readings (any order) seeded into the chains without verdicts, except that the readings
 * judged before the history came whose verdicts it changes are emitted again, as they now
 * stand: what judging everything in time order emitted for them. Returns vem_rules_rsd_links
 * afterwards. */
size_t vem_rules_rsd_history(vem_rules_rsd_t *rsd, const vem_rules_rsd_ctx_t *ctx,
                             const vem_rules_config_t *cfg, const vem_rsd_reading_t *past, size_t n,
                             vem_rules_out_t *out);

/* Exceedances after each chain's newest compliant reading (what a new reading can complete). */
size_t vem_rules_rsd_links(const vem_rules_rsd_t *rsd);

/* A chain ends in an exceedance that a reading taken by now_us may still complete (its cycle
 * from that exceedance, by calendar months, plus two days for readings that come late). */
bool vem_rules_rsd_open(const vem_rules_rsd_t *rsd, const vem_rules_config_t *cfg, int64_t now_us);

/* Drops pending readings older than now_us - fusion_horizon_s: no OBD data came for them. */
void vem_rules_rsd_expire(vem_rules_rsd_t *rsd, const vem_rules_rsd_ctx_t *ctx,
                          const vem_rules_config_t *cfg, int64_t now_us);

/* ---- one vehicle's state (rules.c) ------------------------------------------------------- */

/* Codes a vehicle remembers as seen; once it holds this many, no obd.dtc notice comes until a
 * snapshot without codes clears them (rules.c, s_dtc). */
#define VEM_RULES_DTC_MAX 64

/* A sample's (or snapshot's) instant: rule time, and its key in obd_samples / obd_info. */
typedef struct {
    int64_t sec;      /* rule time, epoch s */
    int32_t key_off;  /* the block's time as stored (sample_time / info_time), minus sec */
    uint16_t key_idx; /* block_idx */
} vem_rules_at_t;

/* A second of fusion history (vem_rules_nox_t): a valid raw NOx value at `at`. */
static inline vem_rules_nox_t vem_rules_nox_pack(uint16_t raw, const vem_rules_at_t *at)
{
    return raw | (uint32_t)(uint8_t)at->key_off << 16 | (uint32_t)(uint8_t)at->key_idx << 24;
}

/* Its raw NOx value (VEM_RULES_NOX_NONE: none), and its sample's instant, at rule time sec. */
static inline uint16_t vem_rules_nox_raw(vem_rules_nox_t x)
{
    return (uint16_t)x;
}

static inline vem_rules_at_t vem_rules_nox_at(vem_rules_nox_t x, int64_t sec)
{
    return (vem_rules_at_t){sec, (int32_t)(x >> 16 & 0xFF), (uint16_t)(x >> 24)};
}

/* The evidence of a sample: its rule time, and its key in obd_samples (left out when the key is
 * VEM_RULES_KEY_UNKNOWN). */
json_t *vem_rules_at_json(const vem_rules_at_t *at);

/* A run of qualifying samples. */
typedef struct {
    uint32_t n;     /* qualifying samples */
    uint32_t value; /* frozen: the raw value; invalid: the fields without a value (bits) */
    bool fired;
    vem_rules_at_t first; /* the run's first sample (its last is the one being judged) */
    double lo, hi;        /* what the rule tracks over the run */
} vem_rules_span_t;

/* Largest scr_minutes (rules_config.c): the most minutes an SCR window holds. */
#define VEM_RULES_SCR_MINUTES_MAX 1440
/* Qualifying samples in one minute of an SCR window. */
#define VEM_RULES_SCR_MINUTE 60

/* A minute of operation that counts towards obd.scr_ineffective (VEM_RULES_SCR_MINUTE
 * qualifying samples): their raw upstream and downstream NOx summed (each raw value is at most
 * 0xFAFF, so 60 of them sum exactly in 32 bits, and a window's sums do not depend on the order
 * they are added in), and its first sample (rules.c, s_scr). */
typedef struct {
    uint32_t up, down;
    vem_rules_at_t first;
} vem_rules_scr_minute_t;

/* A gap in a track's trip: len seconds from start.sec + off on that it did not take, with a
 * second it took after them (rules.c, s_gap). The newest VEM_RULES_GAPS_MAX are known. */
typedef struct {
    uint32_t off, len;
} vem_rules_gap_t;
#define VEM_RULES_GAPS_MAX 512

/* MIL runs a vehicle holds (the oldest go). */
#define VEM_RULES_MIL_RUNS 16

/* A run of OBD snapshots with one valid MIL state, each within trip_gap_min of the next
 * (rules.c, s_mil). The flags matter in the first "on" run of an episode. */
typedef struct {
    vem_rules_at_t first, last;
    bool on;
    bool announced; /* the notice of an episode starting at first was emitted */
    bool escalated; /* ... and its violation */
} vem_rules_mil_run_t;

/* A trip ends at this many samples (68 years of 1 Hz samples), so that its counts, and its NOx
 * window's (at most its own), cannot wrap (rules.c, s_route; the checkpoint loader holds them
 * to it). */
#define VEM_RULES_TRIP_SAMPLES_MAX INT32_MAX

/* A track (live or back-fill) and its trip. */
typedef struct {
    /* what every sample touches, first */
    bool open;
    bool fallback; /* no usable engine figures: obd.nox_high instead of the window */
    bool scr_fired;
    int8_t running; /* -1 not known yet in this trip */
    /* nox_high.n > 0 (not saved: derived on load). Kept here so that a truck whose samples all
     * go to the window does not touch nox_high's line to end a span it does not have. */
    bool nox_high_held;
    uint32_t samples;
    int64_t newest;       /* newest sample time this track ever took; INT64_MIN: none */
    int64_t last_open_us; /* intake clock (receipt less intake pauses) of its last sample */
    int64_t engine_start; /* rule time of the engine's start (or of the trip's first running) */
    vem_rules_at_t last;
    vem_rules_span_t reagent, frozen, down_up, invalid;
    uint32_t scr_n; /* qualifying samples in scr_fill, below VEM_RULES_SCR_MINUTE */
    vem_rules_scr_minute_t scr_fill; /* the SCR window's minute being filled (zero when empty) */
    vem_rules_window_t win;
    /* rarely: at a trip's start and end, and with no usable engine figures (or samples the
     * window cannot use); with figures, its value holds the window inputs those samples lacked
     * (bits by field; rules.c, s_nox_high) */
    vem_rules_span_t nox_high;
    /* once a minute of SCR operation: the SCR window's last scr_held whole minutes, the oldest
     * at (scr_next - scr_held) mod scr_cap; allocated (scr_cap = scr_minutes) when the trip's
     * first minute is whole, freed when the trip ends (rules.c, s_scr_minute) */
    vem_rules_scr_minute_t *scr_ring;
    uint16_t scr_cap, scr_held, scr_next;
    vem_rules_at_t start;
    /* the track took every second from this one to last.sec (in its trip) but those of its
     * gaps: a sample at one of them is a copy (rules.c, s_copy); written at a trip's start and
     * when the oldest gap goes */
    int64_t whole_from;
    /* the gaps after whole_from, oldest first from gaps[gaps_head]: a ring of gaps_cap (0 or a
     * power of 2), allocated at the first gap and freed when the next trip starts */
    vem_rules_gap_t *gaps;
    uint16_t ngaps, gaps_cap, gaps_head;
    vem_rules_engine_facts_t figures; /* what the trip started with */
} vem_rules_track_t;

/* A track's gap i, 0 the oldest (rules.c, s_gap). */
static inline vem_rules_gap_t *vem_rules_gap_at(const vem_rules_track_t *tr, uint32_t i)
{
    return &tr->gaps[(tr->gaps_head + i) & (tr->gaps_cap - 1u)];
}

/* Most minutes live data waits after a hole (rules.backlog_wait_min), and the most samples a
 * vehicle holds: one a second of them, and the one just come. */
#define VEM_RULES_BACKLOG_WAIT_MAX 30
#define VEM_RULES_HELD_MAX         (VEM_RULES_BACKLOG_WAIT_MAX * 60 + 1)
/* Most seconds rules.backlog_hole_s may ask a hole to lack before it is waited for. */
#define VEM_RULES_BACKLOG_HOLE_MAX 600

/* A sample the live track holds while it waits for a hole before it to be filled (rules.c,
 * s_hold): its instant, block type and the raw values the rules read (hj1239.h; fields its
 * block type lacks, which the rules do not read, 0). */
#define VEM_RULES_HELD_FIELDS 10 /* the fields the rules read (rules.c, s_fields) */
typedef struct {
    int64_t sec;
    uint8_t key_off, key_idx; /* vem_rules_at_t's, each below VEM_HJ1239_MAX_BLOCKS */
    uint8_t type;
    /* 1: the gap before it may hold seconds of a hole still to come (rules.c, s_hold), so judging
     * what is held does not go on across it for being a skip (s_held_judge) */
    uint8_t hole;
    uint16_t raw[VEM_RULES_HELD_FIELDS]; /* in s_fields' order; each field is 1 or 2 bytes */
} vem_rules_held_t;

/* What every data frame touches comes first, up to live.win.stage (whose lines are asked for as
 * needed), so it fills as few cache lines as it can; the struct is allocated so that it does
 * not cross a page boundary (vem_rules_vehicle_alloc). */
struct vem_rules_vehicle {
    bool heard;
    bool offline_fired;
    uint16_t nheld; /* samples held (s_hold), at held[held_off ..) */
    int64_t last_received_us, last_data_us;
    /* the intake clock of the last receipt (receipt less intake's paused total), what the
     * silence of obd.offline is measured on; INT64_MIN: not known (a checkpoint of version 5 or
     * older), the wall clock then, until the next receipt */
    int64_t last_received_open_us;
    vem_rules_counts_t counts;
    vem_rules_rsd_t rsd;
    vem_rules_track_t live;
    /* OBD snapshots: once a minute */
    int64_t obd_newest;
    bool vin_mismatch;
    bool mil_truncated;     /* older runs went: a snapshot before the first held is not placed */
    uint32_t nmil, mil_cap; /* runs held, by time; room (grows up to VEM_RULES_MIL_RUNS) */
    vem_rules_mil_run_t *mil;
    uint32_t *dtcs; /* codes seen since the last snapshot without any */
    uint32_t ndtcs, dtc_cap;
    /* rarely */
    size_t bytes;
    bool unregistered; /* the registry does not know the VIN (vem_rules_vehicle_set_registered) */
    char vin[18];
    char plate[16];
    char plate_color[16];
    vem_rules_engine_facts_t facts;
    vem_rules_held_t *held; /* by time, each newer than live.newest; freed when empty */
    uint16_t held_cap, held_off;
    /* how the hole in front of what is held is being filled, as far as the re-sent data shows
     * (rules.c, s_hold): from its start (a sample took the live track's next second since one
     * last went in front of what is held), from its end (one went in front since), or neither
     * known yet */
    bool held_from_start, held_from_end;
    vem_rules_track_t back;
};

/* Bytes from the start of a vehicle that judging a data frame of its live track touches. */
#define VEM_RULES_HOT_BYTES offsetof(struct vem_rules_vehicle, live.win.stage)

/* A zeroed vehicle struct aligned to its size rounded up to a power of two (at most a page),
 * so it lies in one page, with bytes set to what it takes (free() frees it). */
vem_rules_vehicle_t *vem_rules_vehicle_alloc(void);

#endif
