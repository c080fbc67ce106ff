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

/* Turns a whole real-time (0x02) frame in place into its re-send (0x03): the command byte and
 * the BCC change, nothing else (same time, serial, samples and signature). */
void vem_sim_as_resend(uint8_t *frame, size_t len);

/* A platform reply as vemd sends it in reply_mode "hj1239" (GB/T 32960 header): `##`, cmd,
 * response flag, VIN 17, encryption, length 6, the answered frame's time, BCC. */
typedef struct {
    uint8_t cmd;
    uint8_t flag; /* 0x01 ok, 0x02 error, 0x03 VIN duplicate, 0xFE command */
    char vin[18];
    int64_t time; /* the answered frame's time, epoch seconds */
} vem_sim_reply_t;

/* Reads one whole frame (as cut by parsers/reasm, BCC already checked) as a platform reply;
 * false when it is not one: wrong length or header form, or an impossible time. */
bool vem_sim_reply_parse(const uint8_t *frame, size_t len, vem_sim_reply_t *out);

#endif
