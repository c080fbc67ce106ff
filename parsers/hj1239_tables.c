/* hj1239_tables — the protocol's tables: fields (width, scale, offset, range), block types and
 * their fields, command/encryption/dialect/status names; physical values of raw fields; the
 * BCC. See hj1239.h; the tables follow protocol/hj1239.md. */
#include "hj1239_int.h"

/* ---- tables -------------------------------------------------------------------------------- */

#define S_F(name, w, integer, dec, top, scale, off, max)                                           \
    {                                                                                              \
        name, w, integer, dec, top, scale, off, max                                                \
    }

const vem_hj1239_field_info_t vem_hj1239_fields[VEM_HJ1239_F_COUNT] = {
    [VEM_HJ1239_F_SPEED] = S_F("speed_kmh", 2, false, 8, 0xFF, 1.0 / 256, 0, 0xFAFF),
    [VEM_HJ1239_F_BARO] = S_F("baro_kpa", 1, false, 1, 0xFF, 0.5, 0, 250),
    [VEM_HJ1239_F_TORQUE] = S_F("torque_pct", 1, true, 0, 0xFF, 1, -125, 250),
    [VEM_HJ1239_F_FRICTION] = S_F("friction_pct", 1, true, 0, 0xFF, 1, -125, 250),
    [VEM_HJ1239_F_RPM] = S_F("engine_rpm", 2, false, 3, 0xFF, 0.125, 0, 0xFAFF),
    [VEM_HJ1239_F_FUEL_RATE] = S_F("fuel_rate_lph", 2, false, 2, 0xFF, 0.05, 0, 0xFAFF),
    [VEM_HJ1239_F_NOX_UP] = S_F("nox_up_ppm", 2, false, 2, 0xFF, 0.05, -200, 0xFAFF),
    [VEM_HJ1239_F_NOX_DOWN] = S_F("nox_down_ppm", 2, false, 2, 0xFF, 0.05, -200, 0xFAFF),
    [VEM_HJ1239_F_REAGENT] = S_F("reagent_pct", 1, false, 1, 0xFF, 0.4, 0, 250),
    [VEM_HJ1239_F_INTAKE] = S_F("intake_air_kgph", 2, false, 2, 0xFF, 0.05, 0, 0xFAFF),
    [VEM_HJ1239_F_SCR_IN] = S_F("scr_in_c", 2, false, 5, 0xFF, 0.03125, -273, 0xFAFF),
    [VEM_HJ1239_F_SCR_OUT] = S_F("scr_out_c", 2, false, 5, 0xFF, 0.03125, -273, 0xFAFF),
    [VEM_HJ1239_F_DPF_DP] = S_F("dpf_dp_kpa", 2, false, 1, 0xFF, 0.1, 0, 0xFAFF),
    [VEM_HJ1239_F_COOLANT] = S_F("coolant_c", 1, true, 0, 0xFF, 1, -40, 250),
    [VEM_HJ1239_F_FUEL_LEVEL] = S_F("fuel_level_pct", 1, false, 1, 0xFF, 0.4, 0, 250),
    [VEM_HJ1239_F_POS_STATUS] = S_F("pos_status", 1, true, 0, 0xFF, 1, 0, 0xFF),
    [VEM_HJ1239_F_LON] = S_F("lon", 4, false, 6, 0xFF, 1e-6, 0, 180000000),
    [VEM_HJ1239_F_LAT] = S_F("lat", 4, false, 6, 0xFF, 1e-6, 0, 90000000),
    /* The table allows up to 0xFFFFFFFE, but forwarded J1939 0xFE.. markers come first. */
    [VEM_HJ1239_F_ODOMETER] = S_F("odometer_km", 4, false, 1, 0xFF, 0.1, 0, 0xFDFFFFFF),
    /* 0..1.999 would need raw 65541: the J1939 marker bound 0xFAFF is the real limit. */
    [VEM_HJ1239_F_O2_UP] = S_F("o2_up", 2, false, 7, 0xFF, 0.0000305, 0, 0xFAFF),
    [VEM_HJ1239_F_O2_DOWN] = S_F("o2_down_v", 1, false, 2, 0xFF, 0.01, 0, 250),
    [VEM_HJ1239_F_CATALYST] = S_F("catalyst_c", 2, false, 5, 0xFF, 0.03125, -273, 0xFAFF),
    [VEM_HJ1239_F_MOTOR_RPM] = S_F("motor_rpm", 2, true, 0, 0xFF, 1, 0, 0xFAFF),
    [VEM_HJ1239_F_MOTOR_LOAD] = S_F("motor_load_pct", 1, true, 0, 0xFF, 1, 0, 250),
    [VEM_HJ1239_F_BATTERY_V] = S_F("battery_v", 2, false, 1, 0xFF, 0.1, 0, 0xFAFF),
    [VEM_HJ1239_F_BATTERY_A] = S_F("battery_a", 2, false, 1, 0xFF, 0.1, -1000, 0xFAFF),
    [VEM_HJ1239_F_SOC] = S_F("soc_pct", 1, true, 0, 0xFF, 1, 0, 100),
    [VEM_HJ1239_F_TORQUE_MODE] = S_F("torque_mode", 1, true, 0, 0xFF, 1, 0, 250),
    [VEM_HJ1239_F_PEDAL] = S_F("pedal_pct", 1, false, 1, 0xFF, 0.4, 0, 250),
    [VEM_HJ1239_F_FUEL_TOTAL] = S_F("fuel_total_l", 4, false, 1, 0xFF, 0.5, 0, 0xFAFFFFFF),
    [VEM_HJ1239_F_UREA_TANK] = S_F("urea_tank_c", 1, true, 0, 0xFF, 1, -40, 250),
    [VEM_HJ1239_F_UREA_DOSE] = S_F("urea_dose", 4, true, 0, 0xFF, 1, 0, 0xFAFFFFFF),
    [VEM_HJ1239_F_UREA_TOTAL] = S_F("urea_total", 4, true, 0, 0xFF, 1, 0, 0xFAFFFFFF),
    [VEM_HJ1239_F_DPF_EXHAUST] = S_F("dpf_exhaust_c", 2, false, 5, 0xFF, 0.03125, -273, 0xFAFF),
    [VEM_HJ1239_F_OBD_PROTOCOL] = S_F("obd_protocol", 1, true, 0, 0xFE, 1, 0, 2),
    [VEM_HJ1239_F_MIL] = S_F("mil", 1, true, 0, 0xFE, 1, 0, 1),
    [VEM_HJ1239_F_DIAG_SUPPORTED] = S_F("diag_supported", 2, true, 0, 0xFF, 1, 0, 0xFFFF),
    [VEM_HJ1239_F_DIAG_READY] = S_F("diag_ready", 2, true, 0, 0xFF, 1, 0, 0xFFFF),
    [VEM_HJ1239_F_DTC_COUNT] = S_F("dtc_count", 1, true, 0, 0xFF, 1, 0, 253),
};

#undef S_F

/* Fields of each block type, in wire order. */
static const uint8_t s_obd_fields[] = {VEM_HJ1239_F_OBD_PROTOCOL, VEM_HJ1239_F_MIL,
                                       VEM_HJ1239_F_DIAG_SUPPORTED, VEM_HJ1239_F_DIAG_READY,
                                       VEM_HJ1239_F_DTC_COUNT};
static const uint8_t s_stream_fields[] = {
    VEM_HJ1239_F_SPEED,   VEM_HJ1239_F_BARO,      VEM_HJ1239_F_TORQUE,     VEM_HJ1239_F_FRICTION,
    VEM_HJ1239_F_RPM,     VEM_HJ1239_F_FUEL_RATE, VEM_HJ1239_F_NOX_UP,     VEM_HJ1239_F_NOX_DOWN,
    VEM_HJ1239_F_REAGENT, VEM_HJ1239_F_INTAKE,    VEM_HJ1239_F_SCR_IN,     VEM_HJ1239_F_SCR_OUT,
    VEM_HJ1239_F_DPF_DP,  VEM_HJ1239_F_COOLANT,   VEM_HJ1239_F_FUEL_LEVEL, VEM_HJ1239_F_POS_STATUS,
    VEM_HJ1239_F_LON,     VEM_HJ1239_F_LAT,       VEM_HJ1239_F_ODOMETER};
static const uint8_t s_twc_fields[] = {
    VEM_HJ1239_F_SPEED,  VEM_HJ1239_F_BARO,      VEM_HJ1239_F_TORQUE,   VEM_HJ1239_F_FRICTION,
    VEM_HJ1239_F_RPM,    VEM_HJ1239_F_FUEL_RATE, VEM_HJ1239_F_O2_UP,    VEM_HJ1239_F_O2_DOWN,
    VEM_HJ1239_F_INTAKE, VEM_HJ1239_F_COOLANT,   VEM_HJ1239_F_CATALYST, VEM_HJ1239_F_POS_STATUS,
    VEM_HJ1239_F_LON,    VEM_HJ1239_F_LAT,       VEM_HJ1239_F_ODOMETER};
static const uint8_t s_twc_nox_fields[] = {
    VEM_HJ1239_F_SPEED,      VEM_HJ1239_F_BARO,      VEM_HJ1239_F_TORQUE,  VEM_HJ1239_F_FRICTION,
    VEM_HJ1239_F_RPM,        VEM_HJ1239_F_FUEL_RATE, VEM_HJ1239_F_O2_UP,   VEM_HJ1239_F_O2_DOWN,
    VEM_HJ1239_F_NOX_DOWN,   VEM_HJ1239_F_INTAKE,    VEM_HJ1239_F_COOLANT, VEM_HJ1239_F_CATALYST,
    VEM_HJ1239_F_POS_STATUS, VEM_HJ1239_F_LON,       VEM_HJ1239_F_LAT,     VEM_HJ1239_F_ODOMETER};
static const uint8_t s_hybrid_fields[] = {VEM_HJ1239_F_MOTOR_RPM, VEM_HJ1239_F_MOTOR_LOAD,
                                          VEM_HJ1239_F_BATTERY_V, VEM_HJ1239_F_BATTERY_A,
                                          VEM_HJ1239_F_SOC};
static const uint8_t s_supp_fields[] = {VEM_HJ1239_F_TORQUE_MODE, VEM_HJ1239_F_PEDAL,
                                        VEM_HJ1239_F_FUEL_TOTAL,  VEM_HJ1239_F_UREA_TANK,
                                        VEM_HJ1239_F_UREA_DOSE,   VEM_HJ1239_F_UREA_TOTAL,
                                        VEM_HJ1239_F_DPF_EXHAUST};

const uint8_t vem_hj1239_body_lens[256] = {
    [0x01] = 96, [0x02] = 37, [0x03] = 30, [0x04] = 8, [0x05] = 32, [0x80] = 17};

static const char *const s_status_names[VEM_HJ1239_STATUS_COUNT] = {
    "ok",        "bad_start",      "bad_checksum",
    "truncated", "bad_length",     "unknown_command",
    "bad_time",  "malformed_body", "unsupported_encryption"};

static const char *const s_cmd_names[9] = {
    NULL,        "login",         "realtime",   "resend",          "logout",
    "time_sync", "removal_alarm", "activation", "activation_reply"};

/* ---- names and tables ---------------------------------------------------------------------- */

const char *vem_hj1239_status_name(vem_hj1239_status_t status)
{
    if ((unsigned)status >= VEM_HJ1239_STATUS_COUNT)
        return "unknown";
    return s_status_names[status];
}

bool vem_hj1239_cmd_known(uint8_t code)
{
    return code >= 0x01 && code <= 0x08;
}

const char *vem_hj1239_cmd_name(uint8_t code)
{
    return code <= 0x08 ? s_cmd_names[code] : NULL;
}

const char *vem_hj1239_encryption_name(uint8_t code)
{
    switch (code) {
    case VEM_HJ1239_ENC_NONE:
        return "none";
    case VEM_HJ1239_ENC_SM2:
        return "sm2";
    case VEM_HJ1239_ENC_SM4:
        return "sm4";
    case VEM_HJ1239_ENC_RSA:
        return "rsa";
    case VEM_HJ1239_ENC_AES128:
        return "aes128";
    case VEM_HJ1239_ENC_ABNORMAL:
        return "abnormal";
    case VEM_HJ1239_ENC_INVALID:
        return "invalid";
    default:
        return NULL;
    }
}

const char *vem_hj1239_dialect_name(uint8_t layout)
{
    if (layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK)
        return "serial_per_block";
    if (layout & VEM_HJ1239_LAYOUT_TYPE_FIRST)
        return "type_first";
    return (layout & VEM_HJ1239_LAYOUT_BLOCK_TIME) ? "hj1239" : "gb17691";
}

const char *vem_hj1239_block_name(uint8_t type)
{
    switch (type) {
    case VEM_HJ1239_BLOCK_OBD:
        return "obd";
    case VEM_HJ1239_BLOCK_STREAM:
        return "stream";
    case VEM_HJ1239_BLOCK_TWC:
        return "twc";
    case VEM_HJ1239_BLOCK_HYBRID:
        return "hybrid";
    case VEM_HJ1239_BLOCK_TWC_NOX:
        return "twc_nox";
    case VEM_HJ1239_BLOCK_SUPPLEMENTARY:
        return "supplementary";
    default:
        return NULL;
    }
}

const vem_hj1239_field_info_t *vem_hj1239_field_info(vem_hj1239_field_t field)
{
    if ((unsigned)field >= VEM_HJ1239_F_COUNT)
        return NULL;
    return &vem_hj1239_fields[field];
}

const uint8_t *vem_hj1239_block_fields(uint8_t type, size_t *n)
{
    const uint8_t *list;
    size_t count;
    switch (type) {
    case VEM_HJ1239_BLOCK_OBD:
        list = s_obd_fields, count = sizeof s_obd_fields;
        break;
    case VEM_HJ1239_BLOCK_STREAM:
        list = s_stream_fields, count = sizeof s_stream_fields;
        break;
    case VEM_HJ1239_BLOCK_TWC:
        list = s_twc_fields, count = sizeof s_twc_fields;
        break;
    case VEM_HJ1239_BLOCK_HYBRID:
        list = s_hybrid_fields, count = sizeof s_hybrid_fields;
        break;
    case VEM_HJ1239_BLOCK_TWC_NOX:
        list = s_twc_nox_fields, count = sizeof s_twc_nox_fields;
        break;
    case VEM_HJ1239_BLOCK_SUPPLEMENTARY:
        list = s_supp_fields, count = sizeof s_supp_fields;
        break;
    default:
        list = NULL, count = 0;
        break;
    }
    if (n)
        *n = count;
    return list;
}

size_t vem_hj1239_block_body_len(uint8_t type)
{
    return vem_hj1239_body_lens[type];
}

bool vem_hj1239_marker_invalid(vem_hj1239_field_t f, uint32_t raw)
{
    if ((unsigned)f >= VEM_HJ1239_F_COUNT)
        return false;
    const vem_hj1239_field_info_t *fi = &vem_hj1239_fields[f];
    uint32_t top = raw >> (8 * (fi->width - 1));
    return top >= fi->invalid_top;
}

uint64_t vem_hj1239_novalue(const vem_hj1239_block_t *b)
{
    size_t n;
    const uint8_t *list = vem_hj1239_block_fields(b->type, &n);
    uint64_t mask = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned f = list[i];
        if (f < VEM_HJ1239_F_COUNT) /* always; tells the compiler the bound */
            mask |= (uint64_t)(b->raw[f] > vem_hj1239_fields[f].max_raw) << f;
    }
    return mask;
}

bool vem_hj1239_pos_valid(uint8_t pos_status)
{
    return (pos_status & 0x01) == 0;
}

bool vem_hj1239_position(uint8_t pos_status, uint32_t raw, bool is_lat, double *deg)
{
    const vem_hj1239_field_info_t *fi =
        &vem_hj1239_fields[is_lat ? VEM_HJ1239_F_LAT : VEM_HJ1239_F_LON];
    if (raw > fi->max_raw)
        return false;
    double v = raw * fi->scale;
    if (pos_status & (is_lat ? 0x02 : 0x04))
        v = -v;
    *deg = v;
    return true;
}

bool vem_hj1239_value(const vem_hj1239_block_t *b, vem_hj1239_field_t f, double *out)
{
    size_t n;
    const uint8_t *list = vem_hj1239_block_fields(b->type, &n);
    if (!list || (unsigned)f >= VEM_HJ1239_F_COUNT || !memchr(list, (int)f, n))
        return false;
    uint32_t raw = b->raw[f];
    if (f == VEM_HJ1239_F_LON || f == VEM_HJ1239_F_LAT)
        return vem_hj1239_position((uint8_t)b->raw[VEM_HJ1239_F_POS_STATUS], raw,
                                   f == VEM_HJ1239_F_LAT, out);
    const vem_hj1239_field_info_t *fi = &vem_hj1239_fields[f];
    if (raw > fi->max_raw)
        return false;
    *out = raw * fi->scale + fi->offset;
    return true;
}

/* ---- BCC ----------------------------------------------------------------------------------- */

uint8_t vem_hj1239_bcc(const uint8_t *buf, size_t len)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        a ^= vem_hj1239_load64(buf + i);
        b ^= vem_hj1239_load64(buf + i + 8);
        c ^= vem_hj1239_load64(buf + i + 16);
        d ^= vem_hj1239_load64(buf + i + 24);
    }
    for (; i + 8 <= len; i += 8)
        a ^= vem_hj1239_load64(buf + i);
    a ^= b ^ c ^ d;
    a ^= a >> 32;
    a ^= a >> 16;
    a ^= a >> 8;
    uint8_t x = (uint8_t)a;
    for (; i < len; i++)
        x ^= buf[i];
    return x;
}
