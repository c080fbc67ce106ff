/* sim_fleet — driving-cycle and engine model of a simulated heavy diesel truck; see
 * sim_fleet.h.
 *
 * Road load: a 25 t truck, rolling resistance 0.007, CdA 6 m², air 1.2 kg/m³, driveline 90 %,
 * 5 kW of accessories. Engine speed follows a gear sawtooth; torque is what the power needs
 * at that speed. Fuel: 205 g/kWh plus idle flow, diesel 0.835 kg/L. Air: the air/fuel ratio
 * falls from 60 at idle to 22 at full load. Raw NOx rises with load; the SCR converts up to
 * 93 % once its inlet passes 250 °C, nothing below 180 °C. Temperatures follow first-order
 * lags (coolant 300 s, SCR 120 s). The numbers are plausible, not a certified engine map:
 * they exist to exercise decoder, rules and storage with data shaped like the field's. */
#include "sim_fleet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define S_PI       3.14159265358979323846
#define S_MASS_KG  25000.0
#define S_CRR      0.007
#define S_CDA_M2   6.0
#define S_RHO      1.2
#define S_G        9.81
#define S_TANK_L   600.0
#define S_DIESEL   0.835 /* kg/L */
#define S_IDLE_RPM 650.0

/* splitmix64: small, fast, good enough to draw a fleet. */
static uint64_t s_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double s_uniform(uint64_t *state, double lo, double hi)
{
    return lo + (hi - lo) * (double)(s_next(state) >> 11) / 9007199254740992.0;
}

static double s_clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void vem_sim_truck_init(vem_sim_truck_t *truck, uint64_t seed, unsigned index, double lon0,
                        double lat0, uint32_t misbehave)
{
    memset(truck, 0, sizeof *truck);
    truck->rng = seed * 1000003u + index + 1;
    snprintf(truck->vin, sizeof truck->vin, "LVEMSIM%010u", index);
    truck->misbehave = misbehave;
    truck->ref_torque_nm = s_uniform(&truck->rng, 1800, 2600);
    truck->rated_power_kw = s_uniform(&truck->rng, 260, 400);
    truck->phase = 0;
    truck->phase_left_s = s_uniform(&truck->rng, 5, 60);
    truck->heading_rad = s_uniform(&truck->rng, 0, 2 * S_PI);
    vem_sim_sample_t *n = &truck->now;
    n->baro_kpa = s_uniform(&truck->rng, 99.5, 101.5);
    /* Trucks are met on the road, already warm: a cold start (coolant from ambient, SCR below
     * light-off) puts a clean truck's first windows far above the NOx limit, and whether the
     * window method counts cold starts is still "to confirm" in rules.md. */
    n->coolant_c = s_uniform(&truck->rng, 75, 88);
    n->scr_in_c = s_uniform(&truck->rng, 240, 280);
    n->scr_out_c = n->scr_in_c - 8;
    n->reagent_pct = (misbehave & VEM_SIM_UREA_EMPTY) ? 1.2 : s_uniform(&truck->rng, 55, 95);
    n->fuel_level_pct = s_uniform(&truck->rng, 50, 95);
    n->lon = lon0 + s_uniform(&truck->rng, -0.15, 0.15);
    n->lat = lat0 + s_uniform(&truck->rng, -0.12, 0.12);
    n->odometer_km = s_uniform(&truck->rng, 20000, 400000);
    truck->home_lon = n->lon;
    truck->home_lat = n->lat;
    truck->frozen_nox = 35.0;
}

static void s_drive(vem_sim_truck_t *t)
{
    vem_sim_sample_t *n = &t->now;
    double v = n->speed_kmh, a = 0;
    t->phase_left_s -= 1;
    switch (t->phase) {
    case 0: /* idle */
        v = 0;
        if (t->phase_left_s <= 0) {
            t->phase = 1;
            t->target_kmh = s_uniform(&t->rng, 0, 1) < 0.3 ? s_uniform(&t->rng, 60, 85)
                                                           : s_uniform(&t->rng, 25, 60);
        }
        break;
    case 1: /* accelerate, harder at low speed */
        a = s_clamp((t->target_kmh - v) / 3.6 / 8 + 0.15, 0.15, 0.7);
        v += a * 3.6;
        if (v >= t->target_kmh) {
            v = t->target_kmh;
            t->phase = 2;
            t->phase_left_s = s_uniform(&t->rng, 60, 300);
        }
        break;
    case 2: /* cruise */
        a = s_uniform(&t->rng, -0.08, 0.08);
        v = s_clamp(v + a * 3.6, t->target_kmh - 4, t->target_kmh + 4);
        if (t->phase_left_s <= 0)
            t->phase = 3;
        break;
    default: /* brake to a stop */
        a = -0.8;
        v += a * 3.6;
        if (v <= 0) {
            v = 0;
            t->phase = 0;
            t->phase_left_s = s_uniform(&t->rng, 20, 90);
        }
        break;
    }
    n->accel_ms2 = (v - n->speed_kmh) / 3.6;
    n->speed_kmh = v;
}

static void s_move(vem_sim_truck_t *t, double lon0, double lat0)
{
    vem_sim_sample_t *n = &t->now;
    double metres = n->speed_kmh / 3.6;
    t->heading_rad += s_uniform(&t->rng, -0.05, 0.05);
    /* Stay in town: past 0.25 degrees from the start area, turn back towards it. */
    if (fabs(n->lon - lon0) > 0.25 || fabs(n->lat - lat0) > 0.25)
        t->heading_rad = atan2(lat0 - n->lat, lon0 - n->lon);
    n->lon += metres * cos(t->heading_rad) / (111320.0 * cos(n->lat * S_PI / 180));
    n->lat += metres * sin(t->heading_rad) / 110540.0;
    n->odometer_km += metres / 1000;
}

static void s_engine(vem_sim_truck_t *t)
{
    vem_sim_sample_t *n = &t->now;
    double v = n->speed_kmh / 3.6;
    double wheel_kw =
        (S_MASS_KG * v * (n->accel_ms2 + S_G * S_CRR) + 0.5 * S_RHO * S_CDA_M2 * v * v * v) / 1000;
    double engine_kw = s_clamp(wheel_kw / 0.9, 0, t->rated_power_kw) + 5;
    /* Twelve gears: engine speed climbs 1000 -> 1700 rpm through each 8 km/h band. */
    double rpm = n->speed_kmh < 1
                     ? S_IDLE_RPM + s_uniform(&t->rng, -10, 10)
                     : 1000 + fmod(n->speed_kmh, 8.0) / 8.0 * 700 + (n->speed_kmh > 70 ? 150 : 0);
    n->engine_rpm = rpm;
    n->friction_pct = 5 + rpm / 1000;
    double torque_nm = engine_kw * 1000 / (rpm * 2 * S_PI / 60);
    n->torque_pct = s_clamp(torque_nm / t->ref_torque_nm * 100 + n->friction_pct, 0, 100);
    double load = s_clamp((n->torque_pct - n->friction_pct) / 100, 0, 1);
    double fuel_kgph = engine_kw * 0.205 + 1.2;
    n->fuel_rate_lph = fuel_kgph / S_DIESEL;
    n->intake_air_kgph = fuel_kgph * (60 - 38 * load);
    n->dpf_dp_kpa = 0.6 + n->intake_air_kgph / 500;

    t->engine_on_s += 1;
    n->coolant_c += (88 - n->coolant_c) / 300;
    /* China VI thermal management keeps a warm SCR above its light-off while idling */
    double scr_target = s_clamp(235 + 2.2 * engine_kw, 235, 450);
    n->scr_in_c += (scr_target - n->scr_in_c) / 120;
    n->scr_out_c += (n->scr_in_c - 8 - n->scr_out_c) / 60;

    n->nox_up_ppm = s_clamp(120 + 9 * n->torque_pct + s_uniform(&t->rng, -15, 15), 0, 2500);
    double eff = s_clamp((n->scr_in_c - 180) / 60, 0, 1) * 0.95;
    if (t->misbehave & VEM_SIM_SCR_REMOVED)
        eff = 0.02;
    if (t->misbehave & VEM_SIM_UREA_EMPTY)
        eff = fmin(eff, 0.1);
    n->nox_down_ppm = s_clamp(n->nox_up_ppm * (1 - eff) + s_uniform(&t->rng, -2, 2), 0, 2500);
    if (t->misbehave & VEM_SIM_FROZEN_NOX)
        n->nox_down_ppm = t->frozen_nox;

    if (!(t->misbehave & VEM_SIM_UREA_EMPTY))
        n->reagent_pct = s_clamp(n->reagent_pct - 0.05 * n->fuel_rate_lph / 3600, 3, 100);
    n->fuel_level_pct =
        s_clamp(n->fuel_level_pct - n->fuel_rate_lph / 3600 / S_TANK_L * 100, 5, 100);
}

const vem_sim_sample_t *vem_sim_truck_step(vem_sim_truck_t *truck)
{
    s_drive(truck);
    s_move(truck, truck->home_lon, truck->home_lat);
    s_engine(truck);
    return &truck->now;
}

double vem_sim_power_kw(const vem_sim_truck_t *truck, const vem_sim_sample_t *sample)
{
    return (sample->torque_pct - sample->friction_pct) / 100 * truck->ref_torque_nm *
           sample->engine_rpm * 2 * S_PI / 60 / 1000;
}
