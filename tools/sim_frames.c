/* sim_frames — physical samples to HJ 1239 / GB 17691 frames; see sim_frames.h.
 *
 * Raw values follow the field table of parsers/hj1239 (vem_hj1239_field_info: scale, offset,
 * largest valid raw value), so the simulator can never write what the decoder would read
 * differently. Signatures are shaped like SM2 (R and S of 32 bytes) but not computed: the
 * simulated terminals have no keys. */
#include "sim_frames.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static uint32_t s_raw(vem_hj1239_field_t field, double value)
{
    const vem_hj1239_field_info_t *fi = vem_hj1239_field_info(field);
    double raw = nearbyint((value - fi->offset) / fi->scale);
    if (raw < 0)
        raw = 0;
    if (raw > fi->max_raw)
        raw = fi->max_raw;
    return (uint32_t)raw;
}

void vem_sim_stream_block(const vem_sim_sample_t *s, int64_t t, vem_hj1239_block_t *b)
{
    memset(b, 0, sizeof *b);
    b->type = VEM_HJ1239_BLOCK_STREAM;
    b->time = t;
    uint32_t *r = b->raw;
    r[VEM_HJ1239_F_SPEED] = s_raw(VEM_HJ1239_F_SPEED, s->speed_kmh);
    r[VEM_HJ1239_F_BARO] = s_raw(VEM_HJ1239_F_BARO, s->baro_kpa);
    r[VEM_HJ1239_F_TORQUE] = s_raw(VEM_HJ1239_F_TORQUE, s->torque_pct);
    r[VEM_HJ1239_F_FRICTION] = s_raw(VEM_HJ1239_F_FRICTION, s->friction_pct);
    r[VEM_HJ1239_F_RPM] = s_raw(VEM_HJ1239_F_RPM, s->engine_rpm);
    r[VEM_HJ1239_F_FUEL_RATE] = s_raw(VEM_HJ1239_F_FUEL_RATE, s->fuel_rate_lph);
    r[VEM_HJ1239_F_NOX_UP] = s_raw(VEM_HJ1239_F_NOX_UP, s->nox_up_ppm);
    r[VEM_HJ1239_F_NOX_DOWN] = s_raw(VEM_HJ1239_F_NOX_DOWN, s->nox_down_ppm);
    r[VEM_HJ1239_F_REAGENT] = s_raw(VEM_HJ1239_F_REAGENT, s->reagent_pct);
    r[VEM_HJ1239_F_INTAKE] = s_raw(VEM_HJ1239_F_INTAKE, s->intake_air_kgph);
    r[VEM_HJ1239_F_SCR_IN] = s_raw(VEM_HJ1239_F_SCR_IN, s->scr_in_c);
    r[VEM_HJ1239_F_SCR_OUT] = s_raw(VEM_HJ1239_F_SCR_OUT, s->scr_out_c);
    r[VEM_HJ1239_F_DPF_DP] = s_raw(VEM_HJ1239_F_DPF_DP, s->dpf_dp_kpa);
    r[VEM_HJ1239_F_COOLANT] = s_raw(VEM_HJ1239_F_COOLANT, s->coolant_c);
    r[VEM_HJ1239_F_FUEL_LEVEL] = s_raw(VEM_HJ1239_F_FUEL_LEVEL, s->fuel_level_pct);
    /* bit0 0 = fix valid, bit1 south, bit2 west; magnitudes in 1e-6 degree */
    r[VEM_HJ1239_F_POS_STATUS] = (s->lat < 0 ? 0x02u : 0) | (s->lon < 0 ? 0x04u : 0);
    r[VEM_HJ1239_F_LON] = s_raw(VEM_HJ1239_F_LON, fabs(s->lon));
    r[VEM_HJ1239_F_LAT] = s_raw(VEM_HJ1239_F_LAT, fabs(s->lat));
    r[VEM_HJ1239_F_ODOMETER] = s_raw(VEM_HJ1239_F_ODOMETER, s->odometer_km);
    b->novalue = vem_hj1239_novalue(b);
}

static void s_envelope(vem_hj1239_frame_t *f, uint8_t cmd, const char *vin, int64_t t, uint16_t seq)
{
    memset(f, 0, offsetof(vem_hj1239_frame_t, vendor));
    f->cmd = cmd;
    f->header = VEM_HJ1239_HEADER_TERMINAL;
    f->sw_version = 1;
    f->encryption = VEM_HJ1239_ENC_NONE;
    memcpy(f->vin, vin, 17);
    f->has_time = true;
    f->time = t;
    f->seq = seq;
}

static size_t s_encode(const vem_hj1239_frame_t *f, uint8_t *out, size_t cap)
{
    size_t len;
    return vem_hj1239_encode(f, out, cap, &len) == 0 ? len : 0;
}

size_t vem_sim_login(vem_hj1239_frame_t *f, const char *vin, int64_t t, uint16_t seq, uint8_t *out,
                     size_t cap)
{
    s_envelope(f, VEM_HJ1239_CMD_LOGIN, vin, t, seq);
    char iccid[21];
    snprintf(iccid, sizeof iccid, "8986%016u", (unsigned)seq);
    memcpy(f->iccid, iccid, 20);
    return s_encode(f, out, cap);
}

size_t vem_sim_logout(vem_hj1239_frame_t *f, const char *vin, int64_t t, uint16_t seq, uint8_t *out,
                      size_t cap)
{
    s_envelope(f, VEM_HJ1239_CMD_LOGOUT, vin, t, seq);
    return s_encode(f, out, cap);
}

size_t vem_sim_removal_alarm(vem_hj1239_frame_t *f, const vem_sim_truck_t *truck, int64_t t,
                             uint16_t seq, uint8_t *out, size_t cap)
{
    s_envelope(f, VEM_HJ1239_CMD_REMOVAL_ALARM, truck->vin, t, seq);
    f->pos_status = (uint8_t)((truck->now.lat < 0 ? 0x02 : 0) | (truck->now.lon < 0 ? 0x04 : 0));
    f->lon_raw = s_raw(VEM_HJ1239_F_LON, fabs(truck->now.lon));
    f->lat_raw = s_raw(VEM_HJ1239_F_LAT, fabs(truck->now.lat));
    return s_encode(f, out, cap);
}

static void s_obd_block(vem_hj1239_frame_t *f, const vem_sim_truck_t *truck, int64_t t)
{
    vem_hj1239_block_t *b = &f->blocks[f->nblocks++];
    memset(b, 0, sizeof *b);
    b->type = VEM_HJ1239_BLOCK_OBD;
    b->time = t;
    b->obd = f->nobd;
    bool mil = truck->misbehave & VEM_SIM_MIL_ON;
    b->raw[VEM_HJ1239_F_OBD_PROTOCOL] = 2; /* SAE J1939 */
    b->raw[VEM_HJ1239_F_MIL] = mil;
    b->raw[VEM_HJ1239_F_DIAG_SUPPORTED] = 0x0C00; /* DPF, SCR */
    b->raw[VEM_HJ1239_F_DIAG_READY] = mil ? 0x0400 : 0x0C00;
    vem_hj1239_obd_t *o = &f->obd[f->nobd++];
    memset(o, 0, sizeof *o);
    memcpy(o->vin, truck->vin, 17);
    memcpy(o->scin, "VEMSIM-CAL-01", 13);
    memcpy(o->cvn, "5A3C19E0", 8);
    for (int i = 0; i < 36; i++)
        o->iupr[i] = (uint8_t)(i * 7);
    o->dtc_first = f->ndtcs;
    if (mil) { /* SPN 4364 FMI 18 (SCR conversion efficiency low), SPN 3226 (NOx sensor) */
        f->dtcs[f->ndtcs++] = 0x110C1201;
        f->dtcs[f->ndtcs++] = 0x0C9A0201;
    }
    o->dtc_n = (uint16_t)(f->ndtcs - o->dtc_first);
    b->raw[VEM_HJ1239_F_DTC_COUNT] = o->dtc_n;
    b->novalue = vem_hj1239_novalue(b);
}

static void s_supplementary(vem_hj1239_frame_t *f, const vem_sim_sample_t *s, int64_t t)
{
    vem_hj1239_block_t *b = &f->blocks[f->nblocks++];
    memset(b, 0, sizeof *b);
    b->type = VEM_HJ1239_BLOCK_SUPPLEMENTARY;
    b->time = t;
    b->raw[VEM_HJ1239_F_TORQUE_MODE] = s->speed_kmh > 1 ? 9 : 1;
    b->raw[VEM_HJ1239_F_PEDAL] = s_raw(VEM_HJ1239_F_PEDAL, s->torque_pct * 0.9);
    b->raw[VEM_HJ1239_F_FUEL_TOTAL] = s_raw(VEM_HJ1239_F_FUEL_TOTAL, s->odometer_km * 0.33);
    b->raw[VEM_HJ1239_F_UREA_TANK] = s_raw(VEM_HJ1239_F_UREA_TANK, 25);
    b->raw[VEM_HJ1239_F_UREA_DOSE] = (uint32_t)(s->fuel_rate_lph * 40);
    b->raw[VEM_HJ1239_F_UREA_TOTAL] = (uint32_t)(s->odometer_km * 2);
    b->raw[VEM_HJ1239_F_DPF_EXHAUST] = s_raw(VEM_HJ1239_F_DPF_EXHAUST, s->scr_in_c + 20);
    b->novalue = vem_hj1239_novalue(b);
}

size_t vem_sim_data(vem_hj1239_frame_t *f, const vem_sim_truck_t *truck,
                    const vem_sim_sample_t *samples, int n, int64_t first_time, uint16_t seq,
                    bool resend, bool hj1239, bool with_obd, uint8_t *out, size_t cap)
{
    if (n < 1 || n + 2 > VEM_HJ1239_MAX_BLOCKS)
        return 0;
    int64_t last = first_time + n - 1;
    s_envelope(f, resend ? VEM_HJ1239_CMD_RESEND : VEM_HJ1239_CMD_REALTIME, truck->vin, last, seq);
    f->layout = hj1239 ? VEM_HJ1239_LAYOUT_BLOCK_TIME : 0;
    if (with_obd)
        s_obd_block(f, truck, first_time);
    for (int i = 0; i < n; i++)
        vem_sim_stream_block(&samples[i], hj1239 ? first_time + i : last, &f->blocks[f->nblocks++]);
    s_supplementary(f, &samples[n - 1], last);
    if (!hj1239)
        for (uint16_t i = 0; i < f->nblocks; i++)
            f->blocks[i].time = last; /* GB 17691: the frame's time is every block's */
    if (hj1239) {
        f->has_sig = true;
        f->sig.rlen = f->sig.slen = 32;
        for (int i = 0; i < 32; i++) {
            f->sig.r[i] = (uint8_t)(seq * 31 + i);
            f->sig.s[i] = (uint8_t)(seq * 17 + 3 * i);
        }
    }
    return s_encode(f, out, cap);
}

void vem_sim_as_resend(uint8_t *frame, size_t len)
{
    if (len < VEM_HJ1239_MIN_FRAME || frame[2] != VEM_HJ1239_CMD_REALTIME)
        return;
    frame[2] = VEM_HJ1239_CMD_RESEND;
    frame[len - 1] ^= VEM_HJ1239_CMD_REALTIME ^ VEM_HJ1239_CMD_RESEND; /* the BCC covers byte 2 */
}

bool vem_sim_reply_parse(const uint8_t *frame, size_t len, vem_sim_reply_t *out)
{
    /* 24-byte header with the response flag where a terminal writes the VIN's first byte. */
    if (len != VEM_HJ1239_HEADER_LEN + 6 + 1 || frame[0] != '#' || frame[1] != '#')
        return false;
    uint8_t flag = frame[3];
    if (flag != 0x01 && flag != 0x02 && flag != 0x03 && flag != 0xFE)
        return false;
    if (frame[22] != 0 || frame[23] != 6)
        return false;
    int64_t t;
    if (!vem_hj1239_time_decode(frame + VEM_HJ1239_HEADER_LEN, &t))
        return false;
    out->cmd = frame[2];
    out->flag = flag;
    memcpy(out->vin, frame + 4, 17);
    out->vin[17] = '\0';
    out->time = t;
    return true;
}
