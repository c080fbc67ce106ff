/* check_simrsd — vem-sim's roadside stations: the readings they send are readings vemd accepts
 * (parsers/rsd), with the truck's plate as tools/demo.sh registers it, and a plume that follows
 * the truck's model: NO is 0.9 of the NOx leaving the tailpipe, which for a frozen NOx sensor
 * is what the SCR lets through, not what the sensor reports. */
#include "rsd.h"
#include "sim_fleet.h"
#include "sim_rsd.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void s_reading(const vem_sim_truck_t *truck, unsigned index, const vem_sim_sample_t *s,
                      vem_rsd_t *r)
{
    int64_t t = 1795996800; /* 2026-11-30T00:00:00Z */
    json_t *o = vem_sim_rsd_truck_reading(truck, index, s, t, "RSD-1", "RSD-1-1");
    ck_assert_ptr_nonnull(o);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    vem_rsd_error_t err;
    ck_assert_msg(vem_rsd_parse((const uint8_t *)text, strlen(text), t * 1000000, 0, r, &err) ==
                      VEM_RSD_OK,
                  "%s: %s", text, err.detail);
    ck_assert_int_eq(r->time_us, t * 1000000);
    free(text);
}

START_TEST(readings_follow_the_truck)
{
    vem_sim_truck_t normal, frozen;
    vem_sim_truck_init(&normal, 3, 4, 118.8, 32.06, 0);
    vem_sim_truck_init(&frozen, 3, 5, 118.8, 32.06, VEM_SIM_FROZEN_NOX);
    const vem_sim_sample_t *s = NULL;
    for (int i = 0; i < 900; i++) { /* warm, SCR converting */
        s = vem_sim_truck_step(&normal);
        vem_sim_truck_step(&frozen);
    }
    vem_rsd_t r;
    s_reading(&normal, 4, s, &r);
    ck_assert_str_eq(r.plate, "京D00004");
    ck_assert_str_eq(r.fuel, "diesel");
    ck_assert(fabs(r.no_ppm - round(0.9 * s->nox_down_ppm)) < 1e-9);
    ck_assert(fabs(r.speed_kmh - s->speed_kmh) <= 0.05);
    const vem_sim_sample_t *f = &frozen.now;
    s_reading(&frozen, 5, f, &r);
    ck_assert_str_eq(r.plate, "沪D00005");
    /* the sensor reports its stuck value; the plume carries what the SCR really lets out */
    double eff = fmin(fmax((f->scr_in_c - 180) / 70, 0), 1) * 0.93;
    ck_assert(fabs(r.no_ppm - round(0.9 * f->nox_up_ppm * (1 - eff))) < 1e-9);
    ck_assert(fabs(vem_sim_rsd_real_nox(&frozen, f) - f->nox_down_ppm) > 1e-6 ||
              f->nox_down_ppm == frozen.frozen_nox);
}
END_TEST

Suite *vem_suite_simrsd(void);
Suite *vem_suite_simrsd(void)
{
    Suite *s = suite_create("simrsd");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, readings_follow_the_truck);
    suite_add_tcase(s, tc);
    return s;
}
