/* sim_rsd — simulated roadside stations; see sim_rsd.h. */
#include "sim_rsd.h"

#include "curve.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_CARS         200 /* gasoline plates passing the stations */
#define S_HIGH_EMITTER 4   /* of which the first few are high emitters */

struct vem_sim_stations {
    void *ctx, *dealer;
    unsigned n;
    uint64_t rng;
    uint64_t counter;
    double next_car;
    long sent, trucks, cars, acked, dups, rejected;
    json_t *by_station, *by_vehicle;
};

static double s_uniform(uint64_t *state, double lo, double hi)
{
    *state ^= *state << 13; /* xorshift64 */
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return lo + (hi - lo) * (double)(*state >> 11) / (double)(1ULL << 53);
}

static void s_iso(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void vem_sim_rsd_plate(unsigned index, char *out, size_t cap)
{
    snprintf(out, cap, "%sD%05u", index % 2 ? "沪" : "京", index % 100000);
}

double vem_sim_rsd_real_nox(const vem_sim_truck_t *truck, const vem_sim_sample_t *s)
{
    if (!(truck->misbehave & VEM_SIM_FROZEN_NOX))
        return s->nox_down_ppm;
    /* sim_fleet's conversion, without the sensor's noise */
    double eff = fmin(fmax((s->scr_in_c - 180) / 70, 0), 1) * 0.93;
    if (truck->misbehave & VEM_SIM_SCR_REMOVED)
        eff = 0.02;
    if (truck->misbehave & VEM_SIM_UREA_EMPTY)
        eff = fmin(eff, 0.1);
    return s->nox_up_ppm * (1 - eff);
}

json_t *vem_sim_rsd_truck_reading(const vem_sim_truck_t *truck, unsigned index,
                                  const vem_sim_sample_t *s, int64_t t, const char *station,
                                  const char *reading_id)
{
    char plate[32], when[32];
    vem_sim_rsd_plate(index, plate, sizeof plate);
    s_iso(t, when, sizeof when);
    double v = s->speed_kmh / 3.6, a = s->accel_ms2;
    double vsp = v * (1.1 * a + 0.132) + 0.000302 * v * v * v; /* kW/t, flat road */
    double load = fmin(fmax(s->torque_pct, 0), 100) / 100;
    double opacity = 2 + 8 * load * load;
    double no = 0.9 * vem_sim_rsd_real_nox(truck, s);
    return json_pack("{s:i, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:f, s:i, s:f, "
                     "s:f, s:f, s:f, s:f, s:b}",
                     "version", 1, "station_id", station, "reading_id", reading_id, "lane", 1,
                     "time", when, "plate", plate, "plate_color", "yellow", "fuel", "diesel",
                     "speed_kmh", round(s->speed_kmh * 10) / 10, "accel_ms2", round(a * 100) / 100,
                     "vsp_kw_t", round(vsp * 10) / 10, "opacity_pct", round(opacity * 10) / 10,
                     "ringelmann", opacity > 20 ? 1 : 0, "no_ppm", round(no), "co2_pct", 10.5,
                     "wind_ms", 1.5, "slope_pct", 0.0, "temp_c", 15.0, "valid", 1);
}

static void s_send(vem_sim_stations_t *self, json_t *reading, const char *station,
                   const char *vehicle)
{
    char *text = reading ? json_dumps(reading, JSON_COMPACT) : NULL;
    json_decref(reading);
    if (!text)
        abort(); /* a reading the model could not build: a bug here */
    if (zmq_send(self->dealer, text, strlen(text), ZMQ_DONTWAIT) >= 0) {
        self->sent++;
        json_t *c = json_object_get(self->by_station, station);
        json_object_set_new(self->by_station, station, json_integer(json_integer_value(c) + 1));
        if (vehicle) {
            c = json_object_get(self->by_vehicle, vehicle);
            json_object_set_new(self->by_vehicle, vehicle, json_integer(json_integer_value(c) + 1));
        }
    }
    free(text);
}

vem_sim_stations_t *vem_sim_stations_new(const char *endpoint, unsigned n, uint64_t seed,
                                         const char *client_key, const char *server_key)
{
    vem_sim_stations_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->n = n;
    self->rng = seed * 7919 + 17;
    self->ctx = zmq_ctx_new();
    self->dealer = zmq_socket(self->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(self->dealer, ZMQ_LINGER, &zero, sizeof zero);
    char err[600] = "";
    if ((client_key && server_key &&
         vem_curve_client(self->dealer, client_key, server_key, err, sizeof err) != 0) ||
        zmq_connect(self->dealer, endpoint) != 0) {
        fprintf(stderr, "vem-sim: stations cannot connect %s: %s\n", endpoint,
                *err ? err : zmq_strerror(zmq_errno()));
        zmq_close(self->dealer);
        zmq_ctx_term(self->ctx);
        free(self);
        return NULL;
    }
    self->by_station = json_object();
    self->by_vehicle = json_object();
    return self;
}

void vem_sim_stations_truck(vem_sim_stations_t *self, const vem_sim_truck_t *truck, unsigned index,
                            const vem_sim_sample_t *s, int64_t t)
{
    int64_t phase = (t + (int64_t)index * 7) % VEM_SIM_RSD_PASS_S;
    if (phase != 0 || self->n == 0)
        return;
    char station[16], id[48];
    snprintf(station, sizeof station, "RSD-%u",
             1 + (unsigned)((t / VEM_SIM_RSD_PASS_S + index) % self->n));
    snprintf(id, sizeof id, "%s-%llu", station, (unsigned long long)++self->counter);
    s_send(self, vem_sim_rsd_truck_reading(truck, index, s, t, station, id), station, truck->vin);
    self->trucks++;
}

static void s_car(vem_sim_stations_t *self, unsigned k, int64_t t)
{
    /* high emitters pass one time in five, the other cars share the rest */
    unsigned car =
        s_uniform(&self->rng, 0, 1) < 0.2
            ? (unsigned)s_uniform(&self->rng, 0, S_HIGH_EMITTER)
            : S_HIGH_EMITTER + (unsigned)s_uniform(&self->rng, 0, S_CARS - S_HIGH_EMITTER);
    bool high = car < S_HIGH_EMITTER;
    char station[16], id[48], plate[32], when[32];
    snprintf(station, sizeof station, "RSD-%u", k + 1);
    snprintf(id, sizeof id, "%s-%llu", station, (unsigned long long)++self->counter);
    snprintf(plate, sizeof plate, "津C%05u", car);
    s_iso(t, when, sizeof when);
    double speed = s_uniform(&self->rng, 25, 70), accel = s_uniform(&self->rng, -0.3, 0.8);
    double v = speed / 3.6, vsp = v * (1.1 * accel + 0.132) + 0.000302 * v * v * v;
    json_t *r = json_pack(
        "{s:i, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, "
        "s:f, s:b}",
        "version", 1, "station_id", station, "reading_id", id, "lane", 2, "time", when, "plate",
        plate, "plate_color", "blue", "fuel", "gasoline", "speed_kmh", round(speed * 10) / 10,
        "accel_ms2", round(accel * 100) / 100, "vsp_kw_t", round(vsp * 10) / 10, "no_ppm",
        round(high ? s_uniform(&self->rng, 1800, 2600) : s_uniform(&self->rng, 50, 400)), "co_pct",
        round((high ? s_uniform(&self->rng, 3.5, 6) : s_uniform(&self->rng, 0.05, 0.8)) * 100) /
            100,
        "hc_ppm", round(high ? s_uniform(&self->rng, 500, 900) : s_uniform(&self->rng, 20, 150)),
        "co2_pct", 13.5, "wind_ms", 1.5, "slope_pct", 0.0, "valid", 1);
    s_send(self, r, station, NULL);
    self->cars++;
}

static void s_answers(vem_sim_stations_t *self)
{
    char buf[4096];
    int n;
    while ((n = zmq_recv(self->dealer, buf, sizeof buf, ZMQ_DONTWAIT)) >= 0) {
        json_t *a = json_loadb(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf, 0, NULL);
        const char *status = json_string_value(json_object_get(a, "status"));
        if (status && strcmp(status, "ack") == 0) {
            self->acked++;
            self->dups += json_is_true(json_object_get(a, "duplicate"));
        } else if (status && strcmp(status, "rejected") == 0) {
            self->rejected++;
        }
        json_decref(a);
    }
}

void vem_sim_stations_poll(vem_sim_stations_t *self, double now_s, int64_t t)
{
    if (self->next_car == 0)
        self->next_car = now_s + 2;
    while (t > 0 && now_s >= self->next_car) {
        for (unsigned k = 0; k < self->n; k++)
            s_car(self, k, t);
        self->next_car += 2;
    }
    s_answers(self);
}

void vem_sim_stations_finish(vem_sim_stations_t *self, double timeout_s)
{
    for (double waited = 0; waited < timeout_s && self->acked + self->rejected < self->sent;
         waited += 0.05) {
        zmq_pollitem_t item = {self->dealer, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 50);
        s_answers(self);
    }
}

json_t *vem_sim_stations_truth(const vem_sim_stations_t *self)
{
    return json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:O, s:O}", "stations", (int)self->n,
                     "readings_sent", (json_int_t)self->sent, "truck_readings",
                     (json_int_t)self->trucks, "car_readings", (json_int_t)self->cars, "acked",
                     (json_int_t)self->acked, "duplicates", (json_int_t)self->dups, "rejected",
                     (json_int_t)self->rejected, "unanswered",
                     (json_int_t)(self->sent - self->acked - self->rejected), "by_station",
                     self->by_station, "by_vehicle", self->by_vehicle);
}

void vem_sim_stations_destroy(vem_sim_stations_t **self_p)
{
    vem_sim_stations_t *self = *self_p;
    if (!self)
        return;
    zmq_close(self->dealer);
    zmq_ctx_term(self->ctx);
    json_decref(self->by_station);
    json_decref(self->by_vehicle);
    free(self);
    *self_p = NULL;
}
