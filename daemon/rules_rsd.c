/* rules_rsd — roadside remote sensing (rsd.*) and its match with OBD (fusion.obd_mismatch).
 *
 * A reading counts when the station marks it valid and speed, acceleration, VSP, wind and
 * slope are all reported and inside the configured window (a missing condition cannot be
 * checked, so the reading does not count), and the fuel is known (the reading's, else the
 * registry's): diesel readings are judged against the GB 3847 column in use, gasoline ones
 * against the GB 18285 limits when set. A pollutant the reading lacks is neither for nor
 * against the vehicle.
 *
 * Chains, one per pollutant, and their verdicts are a function of the set of readings, not of
 * the order they came in (stations upload backlogs; the history from PostgreSQL comes in any
 * order). A chain holds the pollutant's valid readings, exceedances and compliant ones, by time
 * (ties by station and reading id). The verdict of an exceedance e rests on the exceedances
 * just before it with no compliant reading in between, those on a Beijing date at most
 * rsd_cycle_months natural months before e's date (calendar months count dates, not instants:
 * Jan 31 at 08:00 chains with Jul 31 at 23:00, not with Aug 1; Aug 31 with Feb 28, the last of
 * February), at most VEM_RULES_CHAIN_MAX of them (the newest): a
 * notice while they are fewer than rsd_chain_n, then a violation listing them all, under the
 * id of the oldest. Judging everything in time order emits each exceedance's verdict as it
 * comes; here a reading, wherever its time falls, emits the verdicts it changed, in time order,
 * as they now stand: its own and those of the later exceedances of its run. So every order
 * emits every verdict the time order emits, with the same ids, and the chain ends the same.
 * What cannot be the same is a verdict emitted before an older reading came, which is not
 * taken back: an exceedance that came before an older one of its run was a notice (or a
 * violation) under its own id, and the run's verdict now has the older one's id; a late
 * compliant reading that splits a run leaves the violation emitted for the whole run, and the
 * part after it is emitted afresh under its own id. The same reading twice is judged once, but
 * for a reading the chain holds from the stored history (loaded from PostgreSQL, so judged
 * before, though perhaps not for every sink): when it comes as an input (a replay from a lower
 * cursor or checkpoint than the database's rows), it is judged as new, once.
 *
 * Bounds: a chain holds VEM_RULES_CHAIN_HELD readings; with one more the oldest goes, and from
 * then on a late reading is judged only when what its verdict and the later ones rest on is
 * held, and stays held once the oldest goes to make room for it: for an exceedance, its run
 * below it and the reading that closes the run (a compliant one, one older than the cycle
 * allows, or the one below VEM_RULES_CHAIN_MAX exceedances), however few readings that is; for
 * a compliant reading, a place above the oldest held. Any other (a run reaching the oldest
 * held, a reading older than it) is counted (readings_late) and not judged, and verdicts
 * resting on the readings that went stand as they were emitted.
 *
 * A chain is judged by the limit in force: after a reload that raised a limit, a reading it no
 * longer calls an exceedance counts as compliant; a reading compliant when it came stays so.
 * With column b from a date (rules.rsd_limit_b_from) each reading is judged by the column of the
 * day it was taken, so the stored history loaded into a new state gives what live judging gave.
 *
 * fusion.obd_mismatch, whichever side arrives first. The vehicle keeps its OBD downstream NOx
 * by second for the last fusion_horizon_s seconds of OBD time (the raw value and the sample's
 * key in obd_samples, 4 bytes a second), and up to VEM_RULES_PENDING NO exceedances that wait
 * for OBD data to pass their time + fusion_match_s. The match is the valid sample nearest the
 * reading (the earlier on a tie) within fusion_match_s; below fusion_low_ppm it is a notice,
 * whose evidence names the sample by its rule time and by its key (sample_time, block_idx: for
 * a GB 17691 frame, the frame's time and the block, not the second the sample was taken). A
 * reading whose window the OBD data has passed without a valid sample in it keeps waiting while
 * the window is in the history: a re-sent backlog (0x03) often comes after the live data that
 * followed the link's return. A reading whose match window has left the history, or that waited
 * longer than fusion_horizon_s of wall clock (vem_rules_rsd_expire), is counted as unmatched. */
#include "rules_int.h"

#include "hj1239.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    vem_rule_t rule;
    const char *key; /* FIELDS.md name of the value */
    const char *unit;
} s_pollutant_t;

static const s_pollutant_t s_pollutants[VEM_RULES_POLLUTANTS] = {
    {VEM_RULE_RSD_NO, "no_ppm", "ppm"},
    {VEM_RULE_RSD_OPACITY, "opacity_pct", "%"},
    {VEM_RULE_RSD_RINGELMANN, "ringelmann", "grade"},
    {VEM_RULE_RSD_CO, "co_pct", "%"},
    {VEM_RULE_RSD_HC, "hc_ppm", "ppm"},
};

static const char *const s_fuels[] = {"unknown", "diesel", "gasoline", "gas"};

void vem_rules_rsd_init(vem_rules_rsd_t *rsd)
{
    memset(rsd, 0, sizeof *rsd);
    rsd->obd_newest = INT64_MIN;
}

static void *s_alloc(size_t n, size_t *bytes)
{
    void *p = calloc(1, n);
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

void vem_rules_rsd_free(vem_rules_rsd_t *rsd, size_t *bytes)
{
    for (unsigned p = 0; p < VEM_RULES_POLLUTANTS; p++) {
        if (rsd->chain[p])
            s_free(rsd->chain[p]->links, rsd->chain[p]->cap * sizeof(vem_rules_link_t), bytes);
        s_free(rsd->chain[p], sizeof *rsd->chain[p], bytes);
    }
    s_free(rsd->obd, rsd->obd_slots * sizeof *rsd->obd, bytes);
    s_free(rsd->pending, VEM_RULES_PENDING * sizeof *rsd->pending, bytes);
    vem_rules_rsd_init(rsd);
}

/* ---- roadside chains ---------------------------------------------------------------------- */

static bool s_in(const vem_rules_range_t *w, double v)
{
    return isfinite(v) && v >= w->lo && v <= w->hi;
}

static bool s_valid(const vem_rules_config_t *cfg, const vem_rsd_reading_t *r)
{
    return vem_rules_reading_valid(cfg, r, NULL, 0);
}

bool vem_rules_reading_valid(const vem_rules_config_t *cfg, const vem_rsd_reading_t *r, char *why,
                             size_t whylen)
{
    if (!r->valid) {
        if (why)
            snprintf(why, whylen, "the station marked it invalid");
        return false;
    }
    const struct {
        const char *key;
        const vem_rules_range_t *w;
        double v;
    } conds[] = {
        {"speed_kmh", &cfg->rsd_speed_kmh, r->speed_kmh},
        {"accel_ms2", &cfg->rsd_accel_ms2, r->accel_ms2},
        {"vsp_kw_t", &cfg->rsd_vsp_kw_t, r->vsp_kw_t},
        {"wind_ms", &cfg->rsd_wind_ms, r->wind_ms},
        {"slope_pct", &cfg->rsd_slope_pct, r->slope_pct},
    };
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++) {
        if (s_in(conds[i].w, conds[i].v))
            continue;
        if (why && isfinite(conds[i].v))
            snprintf(why, whylen, "%s %g outside the window %g..%g (rules.rsd_%s_min/max)",
                     conds[i].key, conds[i].v, conds[i].w->lo, conds[i].w->hi, conds[i].key);
        else if (why)
            snprintf(why, whylen, "%s not reported (the HJ 845 window cannot be checked)",
                     conds[i].key);
        return false;
    }
    return true;
}

/* A pollutant's limit by the time a reading was taken: `before` until from_us, `from` after
 * (diesel with column b from the date the region adopted it: column a before); NaN when none
 * applies. The time of the reading decides, not the day it is judged, so stored history and
 * replays keep the verdicts they had. */
typedef struct {
    double before, from;
    int64_t from_us;
} s_lim_t;

static double s_at(s_lim_t lim, int64_t time_us)
{
    return time_us >= lim.from_us ? lim.from : lim.before;
}

/* The column of the diesel limits that judges a reading taken at time_us. */
static bool s_column_b(const vem_rules_config_t *cfg, int64_t time_us)
{
    return cfg->rsd_column == VEM_RSD_LIMIT_B && time_us >= cfg->rsd_b_from_us;
}

static double s_diesel(const vem_rules_config_t *cfg, unsigned p, unsigned col)
{
    switch (s_pollutants[p].rule) {
    case VEM_RULE_RSD_NO:
        return cfg->rsd_no_ppm[col];
    case VEM_RULE_RSD_OPACITY:
        return cfg->rsd_opacity_pct[col];
    case VEM_RULE_RSD_RINGELMANN:
        return cfg->rsd_ringelmann[col];
    default:
        return NAN;
    }
}

/* The limit of pollutant p for the fuel. */
static s_lim_t s_limit(const vem_rules_config_t *cfg, vem_rules_fuel_t fuel, unsigned p)
{
    if (fuel == VEM_FUEL_DIESEL) {
        if (cfg->rsd_column != VEM_RSD_LIMIT_B)
            return (s_lim_t){s_diesel(cfg, p, 0), s_diesel(cfg, p, 0), INT64_MIN};
        return (s_lim_t){s_diesel(cfg, p, 0), s_diesel(cfg, p, 1), cfg->rsd_b_from_us};
    }
    double v = NAN;
    if (fuel == VEM_FUEL_GASOLINE) {
        switch (s_pollutants[p].rule) {
        case VEM_RULE_RSD_NO:
            v = cfg->gas_no_ppm;
            break;
        case VEM_RULE_RSD_CO:
            v = cfg->gas_co_pct;
            break;
        case VEM_RULE_RSD_HC:
            v = cfg->gas_hc_ppm;
            break;
        default:
            break;
        }
    }
    return (s_lim_t){v, v, INT64_MIN};
}

/* The reading's value of pollutant p; NaN when missing or outside what can be measured. */
static double s_value(const vem_rsd_reading_t *r, unsigned p)
{
    double v;
    double hi = INFINITY;
    switch (s_pollutants[p].rule) {
    case VEM_RULE_RSD_NO:
        v = r->no_ppm;
        break;
    case VEM_RULE_RSD_OPACITY:
        v = r->opacity_pct;
        hi = 100;
        break;
    case VEM_RULE_RSD_RINGELMANN:
        v = r->ringelmann;
        hi = 5;
        break;
    case VEM_RULE_RSD_CO:
        v = r->co_pct;
        hi = 100;
        break;
    default:
        v = r->hc_ppm;
        break;
    }
    return isfinite(v) && v >= 0 && v <= hi ? v : NAN;
}

static json_t *s_link_json(const vem_rules_link_t *l)
{
    json_t *o = json_object();
    json_object_set_new(o, "station_id", json_string(l->station_id));
    json_object_set_new(o, "reading_id", json_string(l->reading_id));
    json_object_set_new(o, "time", vem_rules_iso_json(l->time_us));
    json_object_set_new(o, "value", json_real(l->value));
    return o;
}

/* An exceedance by the limit in force: above it now, and when it came (a lowered limit does not
 * make a reading judged compliant an exceedance after the fact). */
static bool s_over(const vem_rules_link_t *l, s_lim_t lim)
{
    return l->over && l->value > s_at(lim, l->time_us);
}

/* Time order of readings, then station and reading id, so that ties have one order too. */
static int s_cmp(const vem_rules_link_t *l, int64_t t, const char *station, const char *reading)
{
    if (l->time_us != t)
        return l->time_us < t ? -1 : 1;
    int c = strcmp(l->station_id, station);
    return c ? c : strcmp(l->reading_id, reading);
}

/* What the verdict of the exceedance at links[i] rests on: links[first .. i], and the compliant
 * reading just before them (-1: none, the run goes on past the cycle, the bound or the first
 * reading held). */
typedef struct {
    int32_t first, compliant;
    uint32_t n;
} s_sig_t;

/* True when l, held before an exceedance at t, belongs to its run: an exceedance in the cycle. */
static bool s_joins(const vem_rules_link_t *l, const vem_rules_config_t *cfg, s_lim_t lim,
                    int64_t t)
{
    return s_over(l, lim) && vem_rules_within_months(l->time_us, t, cfg->rsd_cycle_months);
}

static s_sig_t s_sig(const vem_rules_chain_t *c, const vem_rules_config_t *cfg, s_lim_t lim,
                     uint32_t i)
{
    int64_t t = c->links[i].time_us;
    uint32_t n = 1;
    while (n < i + 1 && n < VEM_RULES_CHAIN_MAX && s_joins(&c->links[i - n], cfg, lim, t))
        n++;
    s_sig_t g = {(int32_t)(i + 1 - n), -1, n};
    if (g.first > 0 && !s_over(&c->links[g.first - 1], lim))
        g.compliant = g.first - 1;
    return g;
}

/* A reading's station and reading ids as 64 bits (FNV-1a): which of the readings of one instant
 * a reach names. */
static uint64_t s_key(const vem_rules_link_t *l)
{
    uint64_t h = 14695981039346656037u;
    for (const char *s = l->station_id; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211u;
    h *= 1099511628211u; /* a NUL between them: ids may hold any other byte */
    for (const char *s = l->reading_id; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211u;
    return h;
}

/* Emits the verdict g of chain c, under the id of its first reading; in own (c itself, or the
 * chain c is a view of) that reading's reach becomes the verdict's last reading and count. */
static void s_chain_emit(const vem_rules_rsd_ctx_t *ctx, const vem_rules_config_t *cfg,
                         vem_rules_fuel_t fuel, unsigned p, const vem_rules_chain_t *c,
                         vem_rules_chain_t *own, const s_sig_t *g, s_lim_t lim,
                         vem_rules_out_t *out)
{
    const vem_rules_link_t *first = &c->links[g->first], *last = &c->links[g->first + g->n - 1];
    for (uint32_t i = 0; i < own->n; i++)
        if (s_cmp(&own->links[i], first->time_us, first->station_id, first->reading_id) == 0) {
            own->links[i].reach_us = last->time_us;
            own->links[i].reach_key = s_key(last);
            own->links[i].reach_n = (uint8_t)g->n;
        }
    json_t *ev = json_object();
    json_object_set_new(ev, "pollutant", json_string(s_pollutants[p].key));
    json_object_set_new(ev, "fuel", json_string(s_fuels[fuel]));
    if (fuel == VEM_FUEL_DIESEL)
        json_object_set_new(ev, "limit_column",
                            json_string(s_column_b(cfg, last->time_us) ? "b" : "a"));
    json_object_set_new(ev, "needed", json_integer(cfg->rsd_chain_n));
    json_object_set_new(ev, "cycle_months", json_integer(cfg->rsd_cycle_months));
    json_object_set_new(ev, "compliant_before",
                        g->compliant < 0 ? json_null()
                                         : vem_rules_iso_json(c->links[g->compliant].time_us));
    json_t *readings = json_array();
    for (uint32_t i = 0; i < g->n; i++)
        json_array_append_new(readings, s_link_json(&first[i]));
    json_object_set_new(ev, "readings", readings);
    char anchor[112];
    snprintf(anchor, sizeof anchor, "r=%s/%s", first->station_id, first->reading_id);
    vem_rules_verdict_t v = {
        .rule = s_pollutants[p].rule,
        .anchor = anchor,
        .first_us = first->time_us,
        .last_us = last->time_us,
        .measured = last->value,
        .limit = s_at(lim, last->time_us),
        .unit = s_pollutants[p].unit,
        .severity = g->n >= cfg->rsd_chain_n ? VEM_SEVERITY_VIOLATION : VEM_SEVERITY_NOTICE,
        .evidence = ev,
    };
    vem_rules_emit(out, &ctx->who, &v);
}

/* A chain as it was, to tell which verdicts a change moved: its readings, and from links[from]
 * on what each one's verdict rested on (first -1: not an exceedance). A change at from cannot
 * move the verdicts before it. */
typedef struct {
    uint32_t n;
    vem_rules_link_t links[VEM_RULES_CHAIN_HELD];
    s_sig_t sig[VEM_RULES_CHAIN_HELD];
} s_before_t;

static void s_remember(const vem_rules_chain_t *c, const vem_rules_config_t *cfg, s_lim_t lim,
                       uint32_t from, s_before_t *b)
{
    b->n = c ? c->n : 0;
    if (b->n)
        memcpy(b->links, c->links, b->n * sizeof *c->links);
    for (uint32_t i = from; i < b->n; i++)
        b->sig[i] = s_over(&c->links[i], lim) ? s_sig(c, cfg, lim, i) : (s_sig_t){-1, -1, 0};
}

static bool s_same_link(const vem_rules_link_t *a, const vem_rules_link_t *b)
{
    return s_cmp(a, b->time_us, b->station_id, b->reading_id) == 0;
}

/* True when the verdict of the exceedance held at b->links[j] (sig known), now at c's g, rests on
 * the same readings as before. */
static bool s_sig_kept(const s_before_t *b, uint32_t j, const vem_rules_chain_t *c,
                       const s_sig_t *g)
{
    const s_sig_t *o = &b->sig[j];
    return o->first >= 0 && o->n == g->n && s_same_link(&b->links[o->first], &c->links[g->first]) &&
           (o->compliant < 0) == (g->compliant < 0) &&
           (g->compliant < 0 || s_same_link(&b->links[o->compliant], &c->links[g->compliant]));
}

/* Emits, in time order, the verdict of every exceedance from links[from] on whose chain differs
 * from before (a reading it did not hold counts as changed only when fresh_too, and one from the
 * stored history only then too, and only when received by received_us, the input's receipt, or
 * that is 0: a later one is still to come as an input, and emits its own then): the chains as
 * they now stand, under the ids of their oldest readings. In a truncated chain a verdict whose
 * run reaches the oldest held reading rests on the reading before it, which is gone: those
 * verdicts stand as emitted. */
static void s_emit_changed(const vem_rules_rsd_ctx_t *ctx, const vem_rules_config_t *cfg,
                           vem_rules_fuel_t fuel, unsigned p, const vem_rules_chain_t *c,
                           vem_rules_chain_t *own, const s_before_t *b, uint32_t from, s_lim_t lim,
                           bool fresh_too, int64_t received_us, vem_rules_out_t *out)
{
    uint32_t j = 0;
    for (uint32_t i = from; i < c->n; i++) {
        const vem_rules_link_t *l = &c->links[i];
        while (j < b->n && s_cmp(&b->links[j], l->time_us, l->station_id, l->reading_id) < 0)
            j++;
        bool held = j < b->n && s_same_link(&b->links[j], l);
        /* (of the readings held, the stored ones emit only as inputs: with fresh_too) */
        if (!s_over(l, lim) || (!held && !fresh_too) ||
            (l->loaded && (!fresh_too || (received_us && l->received_us > received_us))))
            continue;
        s_sig_t g = s_sig(c, cfg, lim, i);
        if (c->truncated && g.first == 0)
            continue;
        if (held) {
            bool same = s_sig_kept(b, j, c, &g);
            if (same)
                continue;
        }
        s_chain_emit(ctx, cfg, fuel, p, c, own, &g, lim, out);
    }
}

/* True when, before, the run of the exceedance held at b->links[j] went on above it: the next
 * reading held was an exceedance whose verdict rested on it (b->sig known from bfrom on). */
static bool s_went_on(const s_before_t *b, uint32_t bfrom, uint32_t j)
{
    return j + 1 < b->n && j + 1 >= bfrom && b->sig[j + 1].first >= 0 &&
           (uint32_t)b->sig[j + 1].first <= j;
}

/* The reading l as b held it (its reach before the change), or NULL. */
static const vem_rules_link_t *s_held_before(const s_before_t *b, const vem_rules_link_t *l)
{
    for (uint32_t j = 0; j < b->n; j++)
        if (s_same_link(&b->links[j], l))
            return &b->links[j];
    return NULL;
}

/* True when o (a reading as b held it) had a verdict under its id that reached past c's reading
 * at end, which ends the n readings from o on: to a later reading, in time or, at end's
 * instant, in the order of own (the whole chain c is or is a view of: by station and reading
 * id); at that instant a reading own does not hold (let go) counts as past when that verdict
 * held more than n readings. */
static bool s_reaches_past(const vem_rules_link_t *o, const vem_rules_chain_t *c, uint32_t end,
                           uint32_t n, const vem_rules_chain_t *own)
{
    if (!o || !o->reach_us)
        return false;
    const vem_rules_link_t *l = &c->links[end];
    if (o->reach_us != l->time_us)
        return o->reach_us > l->time_us;
    for (uint32_t k = 0; k < own->n; k++) {
        const vem_rules_link_t *x = &own->links[k];
        if (x->time_us == l->time_us && s_key(x) == o->reach_key)
            return s_cmp(x, l->time_us, l->station_id, l->reading_id) > 0;
    }
    return o->reach_n > n;
}

/* True when l's id holds just the verdict g ending at c's reading end: its latest reached end
 * on as many readings. */
static bool s_holds(const vem_rules_link_t *l, const vem_rules_chain_t *c, uint32_t end,
                    const s_sig_t *g)
{
    return l && l->reach_us == c->links[end].time_us && l->reach_key == s_key(&c->links[end]) &&
           l->reach_n == g->n;
}

/* True when l was held before, and judged here (not a stored reading yet to come as an input). */
static bool s_judged(const s_before_t *b, const vem_rules_link_t *l)
{
    const vem_rules_link_t *o = s_held_before(b, l);
    return o && !o->loaded;
}

/* True when a history load must say what the verdict on links[first .. x] now is: this state
 * judged one of them (the stored verdicts were made without it, or it without them), or a
 * compliant reading in the block of compliant ones just above x or just below first, beyond
 * which lies an exceedance (the stored verdicts may run across the block, or lack this one). */
static bool s_touched(const vem_rules_chain_t *c, const s_before_t *b, s_lim_t lim, uint32_t first,
                      uint32_t x)
{
    for (uint32_t k = first; k <= x; k++)
        if (s_judged(b, &c->links[k]))
            return true;
    bool judged = false;
    uint32_t k = x + 1;
    for (; k < c->n && !s_over(&c->links[k], lim); k++)
        judged = judged || s_judged(b, &c->links[k]);
    if (judged && k < c->n)
        return true;
    judged = false;
    for (k = first; k > 0 && !s_over(&c->links[k - 1], lim); k--)
        judged = judged || s_judged(b, &c->links[k - 1]);
    return judged && k > 0;
}

/* After a history load, the verdict under each id as it now stands, where the stored one may
 * differ (s_touched): for every exceedance whose verdict is the last under its id (the next
 * exceedance's rests on a later oldest reading, or none follows in its run), that verdict,
 * unless the id holds just it already (emitted here before the load). The ids that only a
 * verdict of this state left across a cut follow (s_emit_cut). */
static void s_emit_history(const vem_rules_rsd_ctx_t *ctx, const vem_rules_config_t *cfg,
                           vem_rules_fuel_t fuel, unsigned p, vem_rules_chain_t *c,
                           const s_before_t *b, s_lim_t lim, vem_rules_out_t *out)
{
    for (uint32_t x = 0; x < c->n; x++) {
        if (!s_over(&c->links[x], lim))
            continue;
        s_sig_t g = s_sig(c, cfg, lim, x);
        if ((x + 1 < c->n && s_over(&c->links[x + 1], lim) &&
             s_sig(c, cfg, lim, x + 1).first == g.first) ||
            (c->truncated && g.first == 0))
            continue;
        if (s_touched(c, b, lim, (uint32_t)g.first, x) &&
            !s_holds(s_held_before(b, &c->links[g.first]), c, x, &g))
            s_chain_emit(ctx, cfg, fuel, p, c, c, &g, lim, out);
    }
}

/* A run that ends where it went on before (a compliant reading placed inside it) is cut: the
 * readings above start a run of their own (s_emit_changed emits their verdicts), and no verdict
 * may rest on readings on both sides of the cut: rules.md's "consecutive means no valid
 * compliant reading in between". For every exceedance at links[from .. to) that ends its run:
 *  - under the id of its run's oldest reading, which holds the verdict of the run's last
 *    exceedance, the run's verdict as it now stands (a notice again, say, when fewer than
 *    rsd_chain_n are left), when that id's latest verdict reached past it (reach) or, for a
 *    reading that was held before (bfrom on: b's verdicts known), its run went on past it then.
 *    Not on a history load (whole): s_emit_history emits those;
 *  - under the id of every other reading of the run whose latest verdict reached past it (an
 *    exceedance judged before an older one of its run came, or the oldest of the newest
 *    VEM_RULES_CHAIN_MAX of a longer run), the run from that reading on, up to it and no longer
 *    than that verdict (reach_n: readings that came between since do not make it more severe):
 *    consecutive exceedances, none across the cut.
 * The reach is as b held it: verdicts emitted since do not hide what the ids held before the
 * change. Skipped, as in s_emit_changed, when the run's end is a stored reading received after
 * the input (received_us; it emits these when it comes) and, for the first, when the run reaches
 * the oldest held reading of a truncated chain. own: the chain whose readings' reach is kept (c,
 * or the chain c is a view of). */
static void s_emit_cut(const vem_rules_rsd_ctx_t *ctx, const vem_rules_config_t *cfg,
                       vem_rules_fuel_t fuel, unsigned p, const vem_rules_chain_t *c,
                       vem_rules_chain_t *own, const s_before_t *b, uint32_t bfrom, uint32_t from,
                       uint32_t to, bool whole, s_lim_t lim, int64_t received_us,
                       vem_rules_out_t *out)
{
    for (uint32_t i = from; i < to && i < c->n; i++) {
        const vem_rules_link_t *l = &c->links[i];
        if (!s_over(l, lim))
            continue;
        if (i + 1 < c->n && s_over(&c->links[i + 1], lim) &&
            s_sig(c, cfg, lim, i + 1).first <= (int32_t)i)
            continue; /* its run goes on */
        if (l->loaded && received_us && l->received_us > received_us)
            continue;
        const vem_rules_link_t *was = s_held_before(b, l);
        bool held = was != NULL;
        uint32_t j = held ? (uint32_t)(was - b->links) : 0;
        s_sig_t g = s_sig(c, cfg, lim, i);
        const vem_rules_link_t *a = s_held_before(b, &c->links[g.first]);
        bool emit =
            !whole && (s_reaches_past(a, c, i, g.n, own) || (held && s_went_on(b, bfrom, j)));
        if (emit && !(c->truncated && g.first == 0))
            s_chain_emit(ctx, cfg, fuel, p, c, own, &g, lim, out);
        for (uint32_t k = (uint32_t)g.first + 1; k <= i; k++) {
            const vem_rules_link_t *o = s_held_before(b, &c->links[k]);
            uint32_t n = i - k + 1;
            if (s_reaches_past(o, c, i, n, own)) {
                s_sig_t part = {(int32_t)k, -1, n < o->reach_n ? n : o->reach_n};
                s_chain_emit(ctx, cfg, fuel, p, c, own, &part, lim, out);
            }
        }
    }
}

/* Where a reading goes in the chain: its index; *held when the chain holds it already (there). */
static uint32_t s_place(const vem_rules_chain_t *c, const vem_rsd_reading_t *r, bool *held)
{
    uint32_t at = c->n;
    *held = false;
    for (uint32_t i = 0; i < c->n; i++) {
        const vem_rules_link_t *l = &c->links[i];
        if (strcmp(l->station_id, r->station_id) == 0 &&
            strcmp(l->reading_id, r->reading_id) == 0) {
            *held = true;
            return i;
        }
        if (at == c->n && s_cmp(l, r->time_us, r->station_id, r->reading_id) > 0)
            at = i;
    }
    return at;
}

/* Adds the reading to the chain at its place (s_place); false when it is too old to be judged
 * (counted). *where is its index then. */
static bool s_insert(vem_rules_chain_t *c, const vem_rules_rsd_ctx_t *ctx,
                     const vem_rules_config_t *cfg, const vem_rsd_reading_t *r, double value,
                     s_lim_t lim, bool loaded, uint32_t at, uint32_t *where)
{
    bool full = c->n == VEM_RULES_CHAIN_HELD;
    if (full && at == 0) { /* older than everything held: it would go at once */
        c->truncated = true;
        ctx->counts->readings_late++;
        return false;
    }
    /* Once readings were let go (or links[0] goes now, for this one), a late reading is judged
     * only when what its verdict and the verdicts after it rest on stays held. An exceedance's
     * rests on its run below its place (as s_sig walks it) and the reading just below the run,
     * which closes it (compliant, older than the cycle allows, or below VEM_RULES_CHAIN_MAX):
     * that one must be held, and not be links[0] when links[0] goes. The later exceedances that
     * its run reaches rest on no more of it (their cycle starts no earlier than its own), and
     * those after a compliant one rest on it: a compliant reading needs only a place above the
     * oldest held. */
    if (c->truncated || full) {
        bool over = value > s_at(lim, r->time_us);
        uint32_t k = at, n = 1; /* links[k .. at) are the run below it */
        while (over && k > 0 && n < VEM_RULES_CHAIN_MAX &&
               s_joins(&c->links[k - 1], cfg, lim, r->time_us)) {
            k--;
            n++;
        }
        if (over ? k <= (uint32_t)full : at == 0) {
            ctx->counts->readings_late++;
            return false;
        }
    }
    if (full) { /* the oldest goes */
        memmove(c->links, c->links + 1, (c->n - 1) * sizeof *c->links);
        c->n--;
        c->truncated = true;
        at--;
    }
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 2;
        vem_rules_link_t *links = s_alloc(cap * sizeof *links, ctx->bytes);
        if (c->n)
            memcpy(links, c->links, c->n * sizeof *links);
        s_free(c->links, c->cap * sizeof *links, ctx->bytes);
        c->links = links;
        c->cap = cap;
    }
    memmove(c->links + at + 1, c->links + at, (c->n - at) * sizeof *c->links);
    vem_rules_link_t *l = &c->links[at];
    memset(l, 0, sizeof *l);
    l->time_us = r->time_us;
    l->value = value;
    l->over = value > s_at(lim, r->time_us);
    l->loaded = loaded;
    l->received_us = loaded ? r->received_us : 0;
    snprintf(l->station_id, sizeof l->station_id, "%s", r->station_id);
    snprintf(l->reading_id, sizeof l->reading_id, "%s", r->reading_id);
    c->n++;
    *where = at;
    return true;
}

/* A reading the chain holds from the stored history has come as an input, received at
 * received_us: the verdicts it moved when it came live are emitted again, as they now stand. The
 * chain it met then is every reading but the stored ones received after it (0: not known), which
 * a replay brings after it: they emit theirs when they come. */
static void s_emit_loaded(const vem_rules_rsd_ctx_t *ctx, const vem_rules_config_t *cfg,
                          vem_rules_fuel_t fuel, unsigned p, vem_rules_chain_t *c, uint32_t i,
                          int64_t received_us, s_lim_t lim, vem_rules_out_t *out)
{
    s_before_t *before = malloc(sizeof *before);
    vem_rules_link_t *then = malloc(2 * VEM_RULES_CHAIN_HELD * sizeof *then);
    if (!before || !then)
        abort();
    vem_rules_link_t *without = then + VEM_RULES_CHAIN_HELD;
    uint32_t n = 0, m = 0, at = 0;
    for (uint32_t k = 0; k < c->n; k++) {
        const vem_rules_link_t *l = &c->links[k];
        if (k != i && l->loaded && received_us && l->received_us > received_us)
            continue;
        if (k == i)
            at = n;
        else
            without[m++] = *l;
        then[n++] = *l;
    }
    vem_rules_chain_t met = *c, prior = *c;
    met.links = then;
    met.n = n;
    prior.links = without;
    prior.n = m;
    s_remember(&prior, cfg, lim, at, before);
    if (at > 0)
        s_emit_cut(ctx, cfg, fuel, p, &met, c, before, at, at - 1, at, false, lim, 0, out);
    s_emit_changed(ctx, cfg, fuel, p, &met, c, before, at, lim, true, 0, out);
    free(then);
    free(before);
}

/* False when the reading was in the chain already: a re-sent copy, or a stored reading again.
 * A stored reading (loaded) that then comes as an input is judged as new, once: the database
 * holds what a sink wrote before vemd stopped, and a replay from a lower cursor or checkpoint
 * brings the input again; the sink behind (Kafka, say) needs the verdicts it brings, and the
 * fusion with the OBD data needs judging again too (the spool is its only source). */
static bool s_judge(vem_rules_rsd_t *rsd, const vem_rules_rsd_ctx_t *ctx,
                    const vem_rules_config_t *cfg, vem_rules_fuel_t fuel, unsigned p,
                    const vem_rsd_reading_t *r, s_lim_t lim, double value, bool loaded,
                    vem_rules_out_t *out)
{
    vem_rules_chain_t *c = rsd->chain[p];
    if (!c)
        c = rsd->chain[p] = s_alloc(sizeof *c, ctx->bytes);
    bool held;
    uint32_t place = s_place(c, r, &held);
    if (held) {
        vem_rules_link_t *l = &c->links[place];
        if (loaded || !l->loaded)
            return false;
        /* received after the stored one (the database keeps the first copy): a re-sent copy of
         * a reading that came as an input before, and was judged then */
        bool copy = r->received_us && l->received_us && r->received_us > l->received_us;
        l->loaded = false;
        l->received_us = 0;
        if (copy)
            return false;
        if (out->fn)
            s_emit_loaded(ctx, cfg, fuel, p, c, place, r->received_us, lim, out);
        return true;
    }
    s_before_t before; /* about 8 KiB */
    if (out->fn)
        s_remember(c, cfg, lim, place, &before);
    uint32_t at;
    if (s_insert(c, ctx, cfg, r, value, lim, loaded, place, &at) && out->fn) {
        if (at > 0)
            s_emit_cut(ctx, cfg, fuel, p, c, c, &before, place, at - 1, at, false, lim,
                       r->received_us, out);
        s_emit_changed(ctx, cfg, fuel, p, c, c, &before, at, lim, true, r->received_us, out);
    }
    return true;
}

/* ---- fusion ------------------------------------------------------------------------------- */

/* The slot of second sec, which lies within the history (newest - slots, newest]. */
static uint32_t s_slot(const vem_rules_rsd_t *rsd, int64_t sec)
{
    uint32_t back = (uint32_t)(rsd->obd_newest - sec);
    return rsd->obd_head >= back ? rsd->obd_head - back : rsd->obd_head + rsd->obd_slots - back;
}

/* The seconds [*first, *last] that lie within fusion_match_s of the instant us. */
static void s_window(const vem_rules_config_t *cfg, int64_t us, int64_t *first, int64_t *last)
{
    int64_t m = (int64_t)cfg->fusion_match_s * 1000000;
    int64_t lo = us - m, hi = us + m;
    *first = lo >= 0 ? (lo + 999999) / 1000000 : -((-lo) / 1000000);
    *last = hi >= 0 ? hi / 1000000 : -((-hi + 999999) / 1000000);
}

/* True while the history covers the whole match window of us (a re-sent backlog may still
 * fill a second of it). */
static bool s_covered(const vem_rules_rsd_t *rsd, const vem_rules_config_t *cfg, int64_t us)
{
    int64_t first, last;
    s_window(cfg, us, &first, &last);
    return rsd->obd && rsd->obd_newest != INT64_MIN &&
           first > rsd->obd_newest - (int64_t)rsd->obd_slots;
}

/* The valid OBD sample nearest us within fusion_match_s (earlier on a tie), as its second of
 * history; false when the history has none, or no longer covers the whole match window. */
static bool s_match(const vem_rules_rsd_t *rsd, const vem_rules_config_t *cfg, int64_t us,
                    int64_t *sec, vem_rules_nox_t *slot)
{
    if (!s_covered(rsd, cfg, us))
        return false;
    int64_t first, last;
    s_window(cfg, us, &first, &last);
    bool found = false;
    int64_t best = 0;
    for (int64_t s = first; s <= last && s <= rsd->obd_newest; s++) {
        vem_rules_nox_t x = rsd->obd[s_slot(rsd, s)];
        if (vem_rules_nox_raw(x) == VEM_RULES_NOX_NONE)
            continue;
        int64_t d = s * 1000000 - us;
        if (d < 0)
            d = -d;
        if (!found || d < best) {
            found = true;
            best = d;
            *sec = s;
            *slot = x;
        }
    }
    return found;
}

/* Decides a reading whose match window the OBD data has passed: true when done (a verdict,
 * an agreeing sample, or unmatched for good, counted); false while the window holds no valid
 * sample but is still in the history, where a re-sent backlog that comes after newer live
 * data may put one: the reading waits for it (or for vem_rules_rsd_expire). */
static bool s_fusion_decide(const vem_rules_rsd_t *rsd, const vem_rules_rsd_ctx_t *ctx,
                            const vem_rules_config_t *cfg, const vem_rules_pending_t *pr,
                            vem_rules_out_t *out)
{
    int64_t sec;
    vem_rules_nox_t slot;
    if (!s_match(rsd, cfg, pr->time_us, &sec, &slot)) {
        if (s_covered(rsd, cfg, pr->time_us))
            return false;
        ctx->counts->fusion_unmatched++;
        return true;
    }
    const vem_hj1239_field_info_t *fi = vem_hj1239_field_info(VEM_HJ1239_F_NOX_DOWN);
    double nox = vem_rules_nox_raw(slot) * fi->scale + fi->offset;
    if (!(nox < cfg->fusion_low_ppm))
        return true; /* the OBD agrees: NOx is high at the tailpipe too */
    json_t *reading = json_object();
    json_object_set_new(reading, "station_id", json_string(pr->station_id));
    json_object_set_new(reading, "reading_id", json_string(pr->reading_id));
    json_object_set_new(reading, "time", vem_rules_iso_json(pr->time_us));
    json_object_set_new(reading, "no_ppm", json_real(pr->no_ppm));
    json_object_set_new(reading, "limit_ppm", json_real(pr->limit));
    /* the sample: its rule time, and the key it is stored under when the history kept it */
    vem_rules_at_t at = vem_rules_nox_at(slot, sec);
    json_t *obd = vem_rules_at_json(&at);
    json_object_set_new(obd, "vin", json_string(ctx->who.vin));
    json_object_set_new(obd, "nox_down_ppm", json_real(nox));
    json_t *ev = json_object();
    json_object_set_new(ev, "reading", reading);
    json_object_set_new(ev, "obd", obd);
    json_object_set_new(ev, "match_s", json_integer(cfg->fusion_match_s));
    char anchor[112];
    snprintf(anchor, sizeof anchor, "r=%s/%s", pr->station_id, pr->reading_id);
    int64_t at_us = sec * 1000000;
    vem_rules_verdict_t v = {
        .rule = VEM_RULE_FUSION_OBD_MISMATCH,
        .anchor = anchor,
        .first_us = at_us < pr->time_us ? at_us : pr->time_us,
        .last_us = at_us < pr->time_us ? pr->time_us : at_us,
        .measured = nox,
        .limit = cfg->fusion_low_ppm,
        .unit = "ppm",
        .severity = VEM_SEVERITY_NOTICE,
        .evidence = ev,
    };
    vem_rules_emit(out, &ctx->who, &v);
    return true;
}

/* True when the OBD history has passed the end of the reading's match window. */
static bool s_ready(const vem_rules_rsd_t *rsd, const vem_rules_config_t *cfg, int64_t us)
{
    return rsd->obd && rsd->obd_newest != INT64_MIN &&
           rsd->obd_newest * 1000000 >= us + (int64_t)cfg->fusion_match_s * 1000000;
}

static void s_fusion_reading(vem_rules_rsd_t *rsd, const vem_rules_rsd_ctx_t *ctx,
                             const vem_rules_config_t *cfg, const vem_rsd_reading_t *r,
                             double limit, vem_rules_out_t *out)
{
    vem_rules_pending_t pr = {.time_us = r->time_us, .no_ppm = r->no_ppm, .limit = limit};
    snprintf(pr.station_id, sizeof pr.station_id, "%s", r->station_id);
    snprintf(pr.reading_id, sizeof pr.reading_id, "%s", r->reading_id);
    if (s_ready(rsd, cfg, r->time_us) && s_fusion_decide(rsd, ctx, cfg, &pr, out))
        return;
    if (!rsd->pending)
        rsd->pending = s_alloc(VEM_RULES_PENDING * sizeof *rsd->pending, ctx->bytes);
    for (unsigned i = 0; i < rsd->npending; i++)
        if (strcmp(rsd->pending[i].station_id, pr.station_id) == 0 &&
            strcmp(rsd->pending[i].reading_id, pr.reading_id) == 0)
            return;                           /* waiting already */
    if (rsd->npending == VEM_RULES_PENDING) { /* the oldest waited longest */
        ctx->counts->fusion_unmatched++;
        memmove(rsd->pending, rsd->pending + 1, (VEM_RULES_PENDING - 1) * sizeof *rsd->pending);
        rsd->npending--;
    }
    rsd->pending[rsd->npending++] = pr;
}

/* Records one second's NOx and key (VEM_RULES_NOX_NONE: nothing valid). */
static void s_record(vem_rules_rsd_t *rsd, int64_t sec, vem_rules_nox_t x)
{
    if (rsd->obd_newest != INT64_MIN && sec > rsd->obd_newest && sec - rsd->obd_newest == 1) {
        /* the next second, as 1 Hz data nearly always is: what the general case does */
        if (++rsd->obd_head == rsd->obd_slots)
            rsd->obd_head = 0;
        rsd->obd[rsd->obd_head] = x;
        rsd->obd_newest = sec;
        return;
    }
    if (rsd->obd_newest == INT64_MIN) {
        rsd->obd_newest = sec;
        rsd->obd_head = 0;
    } else if (sec > rsd->obd_newest) { /* the seconds in between had nothing */
        int64_t gap = sec - rsd->obd_newest;
        if (gap >= rsd->obd_slots) {
            for (uint32_t i = 0; i < rsd->obd_slots; i++)
                rsd->obd[i] = VEM_RULES_NOX_NONE;
        } else {
            for (int64_t i = 0; i < gap; i++) {
                if (++rsd->obd_head == rsd->obd_slots)
                    rsd->obd_head = 0;
                rsd->obd[rsd->obd_head] = VEM_RULES_NOX_NONE;
            }
        }
        rsd->obd_newest = sec;
    } else if (sec <= rsd->obd_newest - (int64_t)rsd->obd_slots) {
        return; /* older than the history */
    }
    rsd->obd[s_slot(rsd, sec)] = x;
}

void vem_rules_rsd_settle(vem_rules_rsd_t *rsd)
{
    for (uint32_t i = 0; i < rsd->nstage; i++) {
        if (++rsd->obd_head == rsd->obd_slots)
            rsd->obd_head = 0;
        rsd->obd[rsd->obd_head] = rsd->stage[i];
    }
    rsd->obd_newest += rsd->nstage;
    rsd->nstage = 0;
}

void vem_rules_rsd_obd(vem_rules_rsd_t *rsd, const vem_rules_rsd_ctx_t *ctx,
                       const vem_rules_config_t *cfg, const int64_t *sec,
                       const vem_rules_nox_t *nox, size_t n, vem_rules_out_t *out)
{
    if (!cfg->enabled[VEM_RULE_FUSION_OBD_MISMATCH] || n == 0)
        return;
    if (rsd->obd_slots != cfg->fusion_horizon_s) { /* first use, or a new horizon */
        rsd->nstage = 0; /* the new ring starts empty: what was staged would be gone too */
        s_free(rsd->obd, rsd->obd_slots * sizeof *rsd->obd, ctx->bytes);
        rsd->obd_slots = cfg->fusion_horizon_s;
        rsd->obd = s_alloc(rsd->obd_slots * sizeof *rsd->obd, ctx->bytes);
        for (uint32_t i = 0; i < rsd->obd_slots; i++)
            rsd->obd[i] = VEM_RULES_NOX_NONE;
        rsd->obd_newest = INT64_MIN;
    }
    for (size_t i = 0; i < n; i++) {
        /* the next second, as 1 Hz data nearly always is: staged, as long as there is room */
        if (rsd->obd_newest != INT64_MIN && rsd->nstage < VEM_RULES_FUSION_STAGE &&
            sec[i] > rsd->obd_newest && sec[i] - rsd->obd_newest == (int64_t)rsd->nstage + 1) {
            rsd->stage[rsd->nstage++] = nox[i];
            continue;
        }
        vem_rules_rsd_settle(rsd);
        s_record(rsd, sec[i], nox[i]);
    }
    if (rsd->npending)
        vem_rules_rsd_settle(rsd);
    for (unsigned i = 0; i < rsd->npending;) {
        vem_rules_pending_t pr = rsd->pending[i];
        if (!s_ready(rsd, cfg, pr.time_us) || !s_fusion_decide(rsd, ctx, cfg, &pr, out)) {
            i++;
            continue;
        }
        memmove(rsd->pending + i, rsd->pending + i + 1,
                (rsd->npending - i - 1) * sizeof *rsd->pending);
        rsd->npending--;
    }
}

void vem_rules_rsd_expire(vem_rules_rsd_t *rsd, const vem_rules_rsd_ctx_t *ctx,
                          const vem_rules_config_t *cfg, int64_t now_us)
{
    int64_t before = now_us - (int64_t)cfg->fusion_horizon_s * 1000000;
    for (unsigned i = 0; i < rsd->npending;) {
        if (rsd->pending[i].time_us >= before) {
            i++;
            continue;
        }
        ctx->counts->fusion_unmatched++;
        memmove(rsd->pending + i, rsd->pending + i + 1,
                (rsd->npending - i - 1) * sizeof *rsd->pending);
        rsd->npending--;
    }
}

/* ---- readings ----------------------------------------------------------------------------- */

void vem_rules_rsd_reading(vem_rules_rsd_t *rsd, const vem_rules_rsd_ctx_t *ctx,
                           const vem_rules_config_t *cfg, const vem_rsd_reading_t *r, bool loaded,
                           vem_rules_out_t *out)
{
    vem_rules_rsd_settle(rsd);
    ctx->counts->readings++;
    vem_rules_fuel_t fuel = r->fuel != VEM_FUEL_UNKNOWN ? r->fuel : ctx->fuel;
    if (!s_valid(cfg, r) || fuel == VEM_FUEL_UNKNOWN) {
        ctx->counts->readings_invalid++;
        return;
    }
    for (unsigned p = 0; p < VEM_RULES_POLLUTANTS; p++) {
        s_lim_t lim = s_limit(cfg, fuel, p);
        double limit = s_at(lim, r->time_us);
        double value = s_value(r, p);
        if (!cfg->enabled[s_pollutants[p].rule] || isnan(limit) || isnan(value))
            continue;
        bool fresh = s_judge(rsd, ctx, cfg, fuel, p, r, lim, value, loaded, out);
        if (fresh && s_pollutants[p].rule == VEM_RULE_RSD_NO && value > limit && out->fn &&
            fuel == VEM_FUEL_DIESEL && *ctx->who.vin && cfg->enabled[VEM_RULE_FUSION_OBD_MISMATCH])
            s_fusion_reading(rsd, ctx, cfg, r, limit, out);
    }
}

/* ---- history ------------------------------------------------------------------------------ */

size_t vem_rules_rsd_links(const vem_rules_rsd_t *rsd)
{
    size_t n = 0;
    for (unsigned p = 0; p < VEM_RULES_POLLUTANTS; p++) {
        const vem_rules_chain_t *c = rsd->chain[p];
        for (uint32_t i = c ? c->n : 0; i > 0 && c->links[i - 1].over; i--)
            n++;
    }
    return n;
}

bool vem_rules_rsd_open(const vem_rules_rsd_t *rsd, const vem_rules_config_t *cfg, int64_t now_us)
{
    for (unsigned p = 0; p < VEM_RULES_POLLUTANTS; p++) {
        const vem_rules_chain_t *c = rsd->chain[p];
        if (c && c->n && c->links[c->n - 1].over &&
            now_us < vem_rules_add_months(c->links[c->n - 1].time_us, cfg->rsd_cycle_months) +
                         (int64_t)2 * 86400 * 1000000)
            return true;
    }
    return false;
}

size_t vem_rules_rsd_history(vem_rules_rsd_t *rsd, const vem_rules_rsd_ctx_t *ctx,
                             const vem_rules_config_t *cfg, const vem_rsd_reading_t *past, size_t n,
                             vem_rules_out_t *out)
{
    vem_rules_rsd_settle(rsd);
    vem_rules_fuel_t fuel = ctx->fuel;
    for (size_t i = 0; i < n && fuel == VEM_FUEL_UNKNOWN; i++)
        fuel = past[i].fuel;
    s_before_t *before = NULL;
    if (out->fn) {
        before = calloc(VEM_RULES_POLLUTANTS, sizeof *before);
        if (!before)
            abort();
        for (unsigned p = 0; p < VEM_RULES_POLLUTANTS; p++)
            s_remember(rsd->chain[p], cfg, s_limit(cfg, fuel, p), 0, &before[p]);
    }
    vem_rules_out_t silent = {NULL, NULL, 0, 0};
    for (size_t i = 0; i < n; i++)
        vem_rules_rsd_reading(rsd, ctx, cfg, &past[i], true, &silent);
    /* The readings judged before the history whose chains it changed: their verdicts as they
     * now stand, under the id of their chain's oldest reading. The history's own readings were
     * judged when they came (the database holds those verdicts). */
    for (unsigned p = 0; p < VEM_RULES_POLLUTANTS && before; p++) {
        s_lim_t lim = s_limit(cfg, fuel, p);
        if (rsd->chain[p] && !isnan(lim.before)) {
            s_emit_history(ctx, cfg, fuel, p, rsd->chain[p], &before[p], lim, out);
            s_emit_cut(ctx, cfg, fuel, p, rsd->chain[p], rsd->chain[p], &before[p], 0, 0,
                       rsd->chain[p]->n, true, lim, 0, out);
        }
    }
    free(before);
    return vem_rules_rsd_links(rsd);
}
