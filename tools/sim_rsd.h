/* sim_rsd — vem-sim's roadside remote-sensing stations (HJ 845): they measure the simulated
 * trucks as they pass, and passing gasoline cars, and send each reading to vemd's stations
 * endpoint as a station does (ZMQ_DEALER, one JSON reading per message), counting the answers.
 *
 * The plume follows the truck's own model: NO is 0.9 of the NOx actually leaving the tailpipe
 * (for a truck whose NOx sensor is frozen, what the SCR really lets through, not what the
 * sensor reports: that is what fusion.obd_mismatch looks for), opacity grows with engine load;
 * speed and acceleration are the sample's, VSP is computed from them (Jimenez's formula for
 * heavy vehicles, flat road). Each truck passes one station every VEM_SIM_RSD_PASS_S seconds
 * of its own time, the stations in turn. Gasoline cars come from a pool of plates, a few of
 * which are high emitters that pass more often.
 *
 * The reading model (vem_sim_rsd_truck_reading, vem_sim_rsd_plate) is pure; the stations
 * object owns one ZeroMQ context and socket and belongs to vem-sim's thread. */
#ifndef VEM_SIM_RSD_H
#define VEM_SIM_RSD_H

#include "sim_fleet.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define VEM_SIM_RSD_PASS_S 120 /* seconds of a truck's time between two stations */

/* The plate of truck number index, as tools/demo.sh registers it: 京D00000, 沪D00001, ... */
void vem_sim_rsd_plate(unsigned index, char *out, size_t cap);

/* The NOx (ppm) that leaves the truck's tailpipe in sample s: the sample's downstream NOx,
 * except for a frozen sensor, where it is what the SCR converts given its temperature. */
double vem_sim_rsd_real_nox(const vem_sim_truck_t *truck, const vem_sim_sample_t *s);

/* A station's reading of the truck (index) in sample s at epoch second t (FIELDS.md keys,
 * version 1); new reference. */
json_t *vem_sim_rsd_truck_reading(const vem_sim_truck_t *truck, unsigned index,
                                  const vem_sim_sample_t *s, int64_t t, const char *station,
                                  const char *reading_id);

typedef struct vem_sim_stations vem_sim_stations_t;

/* n stations (RSD-1 .. RSD-n) connected to endpoint, over CURVE with the key pair client_key
 * and the server's public key server_key when both are given (curve.h); NULL with a message
 * on stderr. */
vem_sim_stations_t *vem_sim_stations_new(const char *endpoint, unsigned n, uint64_t seed,
                                         const char *client_key, const char *server_key);

/* The truck (index) drove sample s at second t: it passes a station when its time comes. */
void vem_sim_stations_truck(vem_sim_stations_t *self, const vem_sim_truck_t *truck, unsigned index,
                            const vem_sim_sample_t *s, int64_t t);

/* The wall clock's turn (now_s monotonic, t the newest simulated second): passing gasoline
 * cars, one per station every 2 s; then reads the answers that arrived. */
void vem_sim_stations_poll(vem_sim_stations_t *self, double now_s, int64_t t);

/* Waits up to timeout_s for the answers still due. */
void vem_sim_stations_finish(vem_sim_stations_t *self, double timeout_s);

/* {"stations", "readings_sent", "truck_readings", "car_readings", "acked", "duplicates",
 *  "rejected", "unanswered", "by_station": {id: readings}, "by_vehicle": {vin: readings}};
 * new reference. */
json_t *vem_sim_stations_truth(const vem_sim_stations_t *self);

/* Closes the socket, frees everything; accepts NULL; sets *self_p to NULL. */
void vem_sim_stations_destroy(vem_sim_stations_t **self_p);

#endif
