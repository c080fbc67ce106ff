/* sim_fleet — the physics of vem-sim's virtual trucks, one 1 Hz sample at a time.
 *
 * Each truck follows a stop-and-go urban/highway driving cycle (idle, accelerate, cruise,
 * brake) on a route through a city, and derives from it what its engine and after-treatment
 * would report: engine speed and torque from the road load, fuel and intake air from power,
 * coolant and SCR temperatures warming with first-order lags, raw NOx from load and the SCR
 * converting it once hot, urea and fuel draining. Scenario switches make a truck misbehave
 * the way tampered or broken trucks do in the field.
 *
 * Pure and deterministic: the same seed gives the same fleet. No I/O. */
#ifndef VEM_SIM_FLEET_H
#define VEM_SIM_FLEET_H

#include <stdbool.h>
#include <stdint.h>

/* Misbehaviours, combinable as bits. */
enum {
    VEM_SIM_MIL_ON = 1 << 0,       /* malfunction lamp on, emission DTCs reported */
    VEM_SIM_UREA_EMPTY = 1 << 1,   /* reagent tank at ~1 % */
    VEM_SIM_SCR_REMOVED = 1 << 2,  /* no conversion: downstream NOx ~ upstream */
    VEM_SIM_FROZEN_NOX = 1 << 3,   /* downstream NOx sensor stuck at one value */
    VEM_SIM_REMOVAL_ALARM = 1 << 4 /* the terminal reports it was removed (0x06) */
};

/* One second of what a truck's OBD terminal would read, in physical units. */
typedef struct {
    double speed_kmh, accel_ms2;
    double baro_kpa;
    double torque_pct, friction_pct; /* actual engine % torque and friction % torque */
    double engine_rpm;
    double fuel_rate_lph;
    double nox_up_ppm, nox_down_ppm;
    double reagent_pct;
    double intake_air_kgph;
    double scr_in_c, scr_out_c;
    double dpf_dp_kpa;
    double coolant_c;
    double fuel_level_pct;
    double lon, lat; /* signed degrees */
    double odometer_km;
} vem_sim_sample_t;

typedef struct {
    char vin[18];
    uint32_t misbehave; /* VEM_SIM_* bits */
    double ref_torque_nm, rated_power_kw;
    /* driving state */
    int phase; /* 0 idle, 1 accelerate, 2 cruise, 3 brake */
    double phase_left_s, target_kmh;
    double heading_rad;
    double home_lon, home_lat; /* start point; the truck stays within 0.25 degrees of it */
    double engine_on_s;        /* seconds since engine start */
    vem_sim_sample_t now;
    double frozen_nox;
    uint64_t rng;
} vem_sim_truck_t;

/* Sets up truck number index of a fleet drawn from seed: VIN "LVEMSIM" + 10 digits, engine
 * data, a start point in the city around (lon0, lat0), cold engine, full tanks. */
void vem_sim_truck_init(vem_sim_truck_t *truck, uint64_t seed, unsigned index, double lon0,
                        double lat0, uint32_t misbehave);

/* Advances the truck by one second and returns the new sample (also in truck->now). */
const vem_sim_sample_t *vem_sim_truck_step(vem_sim_truck_t *truck);

/* Engine power in kW for a sample: (torque - friction) / 100 * reference torque * rpm * 2pi /
 * 60 / 1000, the formula of the work-based window (rules.md). */
double vem_sim_power_kw(const vem_sim_truck_t *truck, const vem_sim_sample_t *sample);

#endif
