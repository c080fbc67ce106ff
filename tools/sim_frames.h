/* sim_frames — turns vem-sim's physical truck samples into protocol frames with the project's
 * encoder (parsers/hj1239). Pure: no I/O. The caller provides a scratch frame struct (large:
 * keep one) and the output buffer. */
#ifndef VEM_SIM_FRAMES_H
#define VEM_SIM_FRAMES_H

#include "hj1239.h"
#include "sim_fleet.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A diesel-stream block (0x02) with collection time t from a physical sample: each value is
 * scaled by its field's resolution and offset, rounded, and clamped into the valid range. */
void vem_sim_stream_block(const vem_sim_sample_t *s, int64_t t, vem_hj1239_block_t *b);

/* Login (0x01) of vin at t with login serial seq and ICCID "8986" + 16 digits of seq. Returns
 * the frame length written to out, 0 when it does not fit. */
size_t vem_sim_login(vem_hj1239_frame_t *f, const char *vin, int64_t t, uint16_t seq, uint8_t *out,
                     size_t cap);

/* Logout (0x04). */
size_t vem_sim_logout(vem_hj1239_frame_t *f, const char *vin, int64_t t, uint16_t seq, uint8_t *out,
                      size_t cap);

/* Removal alarm (0x06) at the truck's current position. */
size_t vem_sim_removal_alarm(vem_hj1239_frame_t *f, const vem_sim_truck_t *truck, int64_t t,
                             uint16_t seq, uint8_t *out, size_t cap);

/* A real-time (0x02) or re-send (0x03) frame of n samples collected at first_time, +1 s, ...
 * HJ 1239 mode writes per-block times and an SM2-shaped signature (two 32-byte parts);
 * GB 17691 mode writes neither. with_obd adds an OBD block (MIL and DTCs per the truck's
 * misbehaviour); every frame carries a supplementary block. Frame time = last sample's. */
size_t vem_sim_data(vem_hj1239_frame_t *f, const vem_sim_truck_t *truck,
                    const vem_sim_sample_t *samples, int n, int64_t first_time, uint16_t seq,
                    bool resend, bool hj1239, bool with_obd, uint8_t *out, size_t cap);

#endif
