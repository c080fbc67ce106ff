/* rules_config — the rules engine's configuration: rules.md defaults and validation.
 *
 * One table per value type names each key with its bounds, so a key's check and its message
 * live in one place; the configuration-file loader (daemon/config.c) will map its keys onto
 * these members. Pure; any thread. */
#include "rules_int.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ---- configuration ------------------------------------------------------------------------ */

void vem_rules_config_defaults(vem_rules_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (unsigned r = 0; r < VEM_RULE_COUNT; r++)
        cfg->enabled[r] = true;
    cfg->rsd_speed_kmh = (vem_rules_range_t){20, 80};
    cfg->rsd_accel_ms2 = (vem_rules_range_t){-0.5, 1.0};
    cfg->rsd_vsp_kw_t = (vem_rules_range_t){0, 20};
    cfg->rsd_wind_ms = (vem_rules_range_t){0, 5};
    cfg->rsd_slope_pct = (vem_rules_range_t){-3, 5};
    cfg->rsd_column = VEM_RSD_LIMIT_A;
    cfg->rsd_b_from_us = INT64_MIN;
    cfg->rsd_no_ppm[0] = 1500;
    cfg->rsd_no_ppm[1] = 1000;
    cfg->rsd_opacity_pct[0] = cfg->rsd_opacity_pct[1] = 30;
    cfg->rsd_ringelmann[0] = cfg->rsd_ringelmann[1] = 1;
    cfg->gas_co_pct = cfg->gas_hc_ppm = cfg->gas_no_ppm = NAN;
    cfg->rsd_chain_n = 2;
    cfg->rsd_cycle_months = 6;
    cfg->mil_days = 7;
    cfg->reagent_min_pct = 2.0;
    cfg->reagent_minutes = 30;
    cfg->nox_ppm_max = 500;
    cfg->nox_minutes = 10;
    cfg->scr_eff_min = 0.5;
    cfg->scr_minutes = 30;
    cfg->scr_in_min_c = 250;
    cfg->scr_up_min_ppm = 100;
    cfg->frozen_minutes = 10;
    cfg->frozen_rpm_span = 50;
    cfg->down_above_up_minutes = 10;
    cfg->invalid_minutes = 30;
    cfg->offline_hours = 72;
    cfg->completeness_min = 0.95;
    cfg->warm_coolant_c = 70;
    cfg->warm_after_start_min = 20;
    cfg->trip_gap_min = 10;
    cfg->backlog_wait_min = 10;
    cfg->backlog_hole_s = 5;
    cfg->fuel_density_kg_l = 0.835;
    cfg->nox_u = 0.001586;
    cfg->window_min_power_pct = 20;
    cfg->nox_window_mg_kwh = 690;
    cfg->nox_percentile = 90;
    cfg->fusion_low_ppm = 500;
    cfg->fusion_match_s = 2;
    cfg->fusion_horizon_s = 600;
}

typedef struct {
    const char *key;
    size_t offset;
    double lo, hi; /* bounds, inclusive */
    bool unset_ok; /* NaN allowed: the rule is off */
} s_real_key_t;

typedef struct {
    const char *key;
    size_t offset;
    unsigned lo, hi;
} s_uint_key_t;

#define S_R(member) #member, offsetof(vem_rules_config_t, member)

static const s_real_key_t s_reals[] = {
    {"rsd_no_ppm_a", offsetof(vem_rules_config_t, rsd_no_ppm), 1e-9, 1e6, false},
    {"rsd_no_ppm_b", offsetof(vem_rules_config_t, rsd_no_ppm) + sizeof(double), 1e-9, 1e6, false},
    {"rsd_opacity_pct_a", offsetof(vem_rules_config_t, rsd_opacity_pct), 0, 100, false},
    {"rsd_opacity_pct_b", offsetof(vem_rules_config_t, rsd_opacity_pct) + sizeof(double), 0, 100,
     false},
    {"rsd_ringelmann_a", offsetof(vem_rules_config_t, rsd_ringelmann), 0, 5, false},
    {"rsd_ringelmann_b", offsetof(vem_rules_config_t, rsd_ringelmann) + sizeof(double), 0, 5,
     false},
    {S_R(gas_co_pct), 1e-9, 100, true},
    {S_R(gas_hc_ppm), 1e-9, 1e6, true},
    {S_R(gas_no_ppm), 1e-9, 1e6, true},
    {S_R(reagent_min_pct), 0, 100, false},
    {S_R(nox_ppm_max), 0, 1e5, false},
    {S_R(scr_eff_min), 0, 1, false},
    {S_R(scr_in_min_c), -273, 2000, false},
    {S_R(scr_up_min_ppm), 1e-9, 1e5, false},
    {S_R(frozen_rpm_span), 0, 1e4, false},
    {S_R(completeness_min), 0, 1, false},
    {S_R(warm_coolant_c), -40, 210, false},
    {S_R(fuel_density_kg_l), 1e-9, 10, false},
    {S_R(nox_u), 1e-9, 1, false},
    {S_R(window_min_power_pct), 1e-9, 100, false},
    {S_R(nox_window_mg_kwh), 1e-9, 1e6, false},
    {S_R(fusion_low_ppm), 0, 1e5, false},
};

static const s_uint_key_t s_uints[] = {
    {S_R(rsd_chain_n), 1, 32},
    {S_R(rsd_cycle_months), 1, 120},
    {S_R(mil_days), 1, 3650},
    {S_R(reagent_minutes), 1, 1440},
    {S_R(nox_minutes), 1, 1440},
    {S_R(scr_minutes), 1, VEM_RULES_SCR_MINUTES_MAX},
    {S_R(frozen_minutes), 1, 1440},
    {S_R(down_above_up_minutes), 1, 1440},
    {S_R(invalid_minutes), 1, 1440},
    {S_R(offline_hours), 1, 8760},
    {S_R(warm_after_start_min), 0, 1440},
    {S_R(trip_gap_min), 1, 1440},
    {S_R(backlog_wait_min), 0, VEM_RULES_BACKLOG_WAIT_MAX},
    {S_R(backlog_hole_s), 1, VEM_RULES_BACKLOG_HOLE_MAX},
    {S_R(nox_percentile), 1, 100},
    {S_R(fusion_match_s), 0, 60},
    {S_R(fusion_horizon_s), 10, VEM_RULES_HORIZON_MAX},
};

static const struct {
    const char *key;
    size_t offset;
} s_ranges[] = {
    {"rsd_speed_kmh_min .. rsd_speed_kmh_max", offsetof(vem_rules_config_t, rsd_speed_kmh)},
    {"rsd_accel_ms2_min .. rsd_accel_ms2_max", offsetof(vem_rules_config_t, rsd_accel_ms2)},
    {"rsd_vsp_kw_t_min .. rsd_vsp_kw_t_max", offsetof(vem_rules_config_t, rsd_vsp_kw_t)},
    {"rsd_wind_ms_min .. rsd_wind_ms_max", offsetof(vem_rules_config_t, rsd_wind_ms)},
    {"rsd_slope_pct_min .. rsd_slope_pct_max", offsetof(vem_rules_config_t, rsd_slope_pct)},
};

static int s_invalid(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_invalid(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int vem_rules_config_validate(const vem_rules_config_t *cfg, char *err, size_t errlen)
{
    const char *base = (const char *)cfg;
    for (size_t i = 0; i < sizeof s_reals / sizeof *s_reals; i++) {
        const s_real_key_t *k = &s_reals[i];
        double v;
        memcpy(&v, base + k->offset, sizeof v);
        if (isnan(v) && k->unset_ok)
            continue;
        if (!isfinite(v) || v < k->lo || v > k->hi)
            return s_invalid(err, errlen, "%s: %g is outside %g .. %g%s", k->key, v, k->lo, k->hi,
                             k->unset_ok ? " (or unset)" : "");
    }
    for (size_t i = 0; i < sizeof s_uints / sizeof *s_uints; i++) {
        const s_uint_key_t *k = &s_uints[i];
        unsigned v;
        memcpy(&v, base + k->offset, sizeof v);
        if (v < k->lo || v > k->hi)
            return s_invalid(err, errlen, "%s: %u is outside %u .. %u", k->key, v, k->lo, k->hi);
    }
    for (size_t i = 0; i < sizeof s_ranges / sizeof *s_ranges; i++) {
        vem_rules_range_t r;
        memcpy(&r, base + s_ranges[i].offset, sizeof r);
        if (!isfinite(r.lo) || !isfinite(r.hi) || r.lo > r.hi)
            return s_invalid(err, errlen, "%s: %g .. %g is not a range (low above high?)",
                             s_ranges[i].key, r.lo, r.hi);
    }
    if (cfg->rsd_column != VEM_RSD_LIMIT_A && cfg->rsd_column != VEM_RSD_LIMIT_B)
        return s_invalid(err, errlen, "rsd_limit_column: %d is neither a nor b",
                         (int)cfg->rsd_column);
    if (cfg->rsd_b_from_us != INT64_MIN && cfg->rsd_column != VEM_RSD_LIMIT_B)
        return s_invalid(err, errlen,
                         "rsd_limit_b_from: a date from which column b applies, but the column is "
                         "a (set rsd_limit_column = \"b\")");
    if (cfg->fusion_horizon_s < 2 * cfg->fusion_match_s + 1)
        return s_invalid(err, errlen,
                         "fusion_horizon_s: %u is shorter than the match window of %u s "
                         "(2 x fusion_match_s + 1)",
                         cfg->fusion_horizon_s, 2 * cfg->fusion_match_s + 1);
    return 0;
}

const char *vem_rules_config_bounds(const char *name, char *buf, size_t len)
{
    for (size_t i = 0; i < sizeof s_reals / sizeof *s_reals; i++) {
        const s_real_key_t *k = &s_reals[i];
        if (strcmp(k->key, name) != 0)
            continue;
        /* the smallest positive bound stands for "above 0" */
        if (k->lo == 1e-9)
            snprintf(buf, len, "range above 0 up to %.15g%s", k->hi,
                     k->unset_ok ? ", or unset" : "");
        else
            snprintf(buf, len, "range %.15g..%.15g%s", k->lo, k->hi,
                     k->unset_ok ? ", or unset" : "");
        return buf;
    }
    for (size_t i = 0; i < sizeof s_uints / sizeof *s_uints; i++)
        if (strcmp(s_uints[i].key, name) == 0) {
            snprintf(buf, len, "range %u..%u", s_uints[i].lo, s_uints[i].hi);
            return buf;
        }
    return NULL;
}

vem_rules_fuel_t vem_rules_fuel(const char *name)
{
    if (!name)
        return VEM_FUEL_UNKNOWN;
    if (strcmp(name, "diesel") == 0)
        return VEM_FUEL_DIESEL;
    if (strcmp(name, "gasoline") == 0)
        return VEM_FUEL_GASOLINE;
    if (strcmp(name, "gas") == 0)
        return VEM_FUEL_GAS;
    return VEM_FUEL_UNKNOWN;
}
