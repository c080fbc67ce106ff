/* check_simfleet — the simulator's trucks are deterministic, stay inside the protocol's
 * valid ranges (hj1239.md field tables), warm up, and misbehave as their scenario says. */
#include "sim_fleet.h"

#include <check.h>
#include <math.h>
#include <string.h>

#define LON0 118.796877
#define LAT0 32.060255

static void s_in_ranges(const vem_sim_sample_t *s)
{
    /* Valid ranges of the 0x02 diesel stream table. */
    ck_assert(s->speed_kmh >= 0 && s->speed_kmh <= 250.996);
    ck_assert(s->baro_kpa >= 0 && s->baro_kpa <= 125);
    ck_assert(s->torque_pct >= -125 && s->torque_pct <= 125);
    ck_assert(s->friction_pct >= -125 && s->friction_pct <= 125);
    ck_assert(s->engine_rpm >= 0 && s->engine_rpm <= 8031.875);
    ck_assert(s->fuel_rate_lph >= 0 && s->fuel_rate_lph <= 3212.75);
    ck_assert(s->nox_up_ppm >= -200 && s->nox_up_ppm <= 3012.75);
    ck_assert(s->nox_down_ppm >= -200 && s->nox_down_ppm <= 3012.75);
    ck_assert(s->reagent_pct >= 0 && s->reagent_pct <= 100);
    ck_assert(s->intake_air_kgph >= 0 && s->intake_air_kgph <= 3212.75);
    ck_assert(s->scr_in_c >= -273 && s->scr_in_c <= 1734.96875);
    ck_assert(s->scr_out_c >= -273 && s->scr_out_c <= 1734.96875);
    ck_assert(s->dpf_dp_kpa >= 0 && s->dpf_dp_kpa <= 6425.5);
    ck_assert(s->coolant_c >= -40 && s->coolant_c <= 210);
    ck_assert(s->fuel_level_pct >= 0 && s->fuel_level_pct <= 100);
    ck_assert(fabs(s->lon - LON0) < 0.5 && fabs(s->lat - LAT0) < 0.5);
}

START_TEST(same_seed_same_truck)
{
    vem_sim_truck_t a, b;
    vem_sim_truck_init(&a, 7, 3, LON0, LAT0, 0);
    vem_sim_truck_init(&b, 7, 3, LON0, LAT0, 0);
    ck_assert_str_eq(a.vin, "LVEMSIM0000000003");
    ck_assert_uint_eq(strlen(a.vin), 17);
    for (int i = 0; i < 600; i++)
        ck_assert_int_eq(
            memcmp(vem_sim_truck_step(&a), vem_sim_truck_step(&b), sizeof(vem_sim_sample_t)), 0);
    vem_sim_truck_t c;
    vem_sim_truck_init(&c, 8, 3, LON0, LAT0, 0);
    ck_assert(c.now.lon != a.now.lon || c.ref_torque_nm != a.ref_torque_nm);
}
END_TEST

START_TEST(an_hour_of_driving_is_plausible)
{
    vem_sim_truck_t t;
    vem_sim_truck_init(&t, 1, 0, LON0, LAT0, 0);
    double odo0 = t.now.odometer_km, moving = 0, warm_up = 0, warm_down = 0;
    for (int i = 0; i < 3600; i++) {
        const vem_sim_sample_t *s = vem_sim_truck_step(&t);
        s_in_ranges(s);
        moving += s->speed_kmh > 1;
        if (i > 1800 && s->scr_in_c >= 250) {
            warm_up += s->nox_up_ppm;
            warm_down += s->nox_down_ppm;
        }
    }
    ck_assert(moving > 1200);                            /* it drives, not only idles */
    ck_assert(t.now.odometer_km - odo0 > 10);            /* and covers ground */
    ck_assert(t.now.coolant_c > 70);                     /* warm after an hour */
    ck_assert(warm_up > 0 && warm_down < 0.2 * warm_up); /* a working SCR converts > 80 % */
}
END_TEST

START_TEST(misbehaving_trucks_show_it)
{
    vem_sim_truck_t removed, frozen, empty;
    vem_sim_truck_init(&removed, 1, 1, LON0, LAT0, VEM_SIM_SCR_REMOVED);
    vem_sim_truck_init(&frozen, 1, 2, LON0, LAT0, VEM_SIM_FROZEN_NOX);
    vem_sim_truck_init(&empty, 1, 4, LON0, LAT0, VEM_SIM_UREA_EMPTY);
    double up = 0, down = 0, rpm_min = 1e9, rpm_max = 0;
    for (int i = 0; i < 3600; i++) {
        const vem_sim_sample_t *r = vem_sim_truck_step(&removed);
        up += r->nox_up_ppm;
        down += r->nox_down_ppm;
        const vem_sim_sample_t *f = vem_sim_truck_step(&frozen);
        ck_assert(f->nox_down_ppm == 35.0);
        rpm_min = fmin(rpm_min, f->engine_rpm);
        rpm_max = fmax(rpm_max, f->engine_rpm);
        ck_assert(vem_sim_truck_step(&empty)->reagent_pct <= 2.0); /* rules.md reagent_min_pct */
    }
    ck_assert(down > 0.9 * up);         /* no conversion without an SCR */
    ck_assert(rpm_max - rpm_min > 500); /* the sensor is stuck while the engine varies */
}
END_TEST

START_TEST(power_formula)
{
    /* (50 - 10) / 100 * 2000 N·m * 1500 rpm * 2 pi / 60 / 1000 = 800 * 157.0796 / 1000 */
    vem_sim_truck_t t;
    vem_sim_truck_init(&t, 1, 0, LON0, LAT0, 0);
    t.ref_torque_nm = 2000;
    vem_sim_sample_t s = {.torque_pct = 50, .friction_pct = 10, .engine_rpm = 1500};
    ck_assert_double_eq_tol(vem_sim_power_kw(&t, &s), 125.6637, 1e-3);
}
END_TEST

Suite *vem_suite_simfleet(void);
Suite *vem_suite_simfleet(void)
{
    Suite *s = suite_create("simfleet");
    TCase *tc = tcase_create("simfleet");
    tcase_add_test(tc, same_seed_same_truck);
    tcase_add_test(tc, an_hour_of_driving_is_plausible);
    tcase_add_test(tc, misbehaving_trucks_show_it);
    tcase_add_test(tc, power_formula);
    suite_add_tcase(s, tc);
    return s;
}
