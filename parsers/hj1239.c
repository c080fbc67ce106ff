/* hj1239 — remote-OBD frame decoder and encoder; see hj1239.h.
 *
 * Design. Decoding is one pass over the frame into caller storage. The BCC is XORed eight bytes
 * at a time. Real-time data units come in several layouts (GB 17691, HJ 1239 and two field
 * deviations) that the bytes do not name; the right one is the one whose block lengths add up
 * exactly to the data-unit length. The decoder first tries each layout strictly, HJ 1239 first,
 * and fills blocks as it goes, so the common frame costs one walk. When no layout fits
 * strictly it walks each layout again skipping vendor text items (0x20, 32 non-NUL bytes, NUL:
 * what field terminals put before, between and after standard blocks); their length is in
 * their bytes, so this walk never chooses and never looks inside an item (a block type in the
 * text is no block). Only when that fails too does it look for vendor items of unknown length
 * (0x81..0xFE blocks, or bytes after a standard block): a backward pass over the data unit
 * finds, per position, the best reading of the rest; a forward pass follows it. Bounds: each
 * strict or text-item walk is one pass per layout (6 layouts), the search one backward and one
 * forward pass per layout over at most S_SEARCH_MAX bytes, so decoding is linear in the data
 * unit with no backtracking; vendor items per frame are capped at VEM_HJ1239_MAX_VENDOR.
 *
 * Block fields stay raw (wire values) so the encoder can write them back; a per-block mask says
 * which have no measurement. Block times share their day with the frame time almost always, so
 * the day number is cached within a frame. Pure: no allocation, no globals but const tables. */
#include "hj1239.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- tables -------------------------------------------------------------------------------- */

#define S_F(name, w, integer, dec, top, scale, off, max)                                           \
    {                                                                                              \
        name, w, integer, dec, top, scale, off, max                                                \
    }

static const vem_hj1239_field_info_t s_fields[VEM_HJ1239_F_COUNT] = {
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

/* Body length by type byte; 0 = not a standard block. OBD: without its DTCs. */
static const uint8_t s_body_len[256] = {
    [0x01] = 96, [0x02] = 37, [0x03] = 30, [0x04] = 8, [0x05] = 32, [0x80] = 17};

/* Offset of the DTC count inside an OBD body. */
#define S_OBD_DTC_COUNT_AT 95
#define S_OBD_MAX_DTCS     253

static const char *const s_status_names[VEM_HJ1239_STATUS_COUNT] = {
    "ok",        "bad_start",      "bad_checksum",
    "truncated", "bad_length",     "unknown_command",
    "bad_time",  "malformed_body", "unsupported_encryption"};

static const char *const s_cmd_names[9] = {
    NULL,        "login",         "realtime",   "resend",          "logout",
    "time_sync", "removal_alarm", "activation", "activation_reply"};

/* ---- small helpers ------------------------------------------------------------------------- */

static inline uint32_t s_be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static inline uint32_t s_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void s_put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void s_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint64_t s_load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline bool s_is_vendor_type(uint8_t t)
{
    return t >= 0x81 && t <= 0xFE;
}

/* Fills err (when given) and returns its status. */
static vem_hj1239_status_t s_fail(vem_hj1239_error_t *err, vem_hj1239_status_t st, size_t off,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static vem_hj1239_status_t s_fail(vem_hj1239_error_t *err, vem_hj1239_status_t st, size_t off,
                                  const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = st;
        err->offset = off;
        vsnprintf(err->detail, sizeof err->detail, fmt, ap);
        va_end(ap);
    }
    return st;
}

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
    return &s_fields[field];
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
    return s_body_len[type];
}

bool vem_hj1239_marker_invalid(vem_hj1239_field_t f, uint32_t raw)
{
    if ((unsigned)f >= VEM_HJ1239_F_COUNT)
        return false;
    const vem_hj1239_field_info_t *fi = &s_fields[f];
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
            mask |= (uint64_t)(b->raw[f] > s_fields[f].max_raw) << f;
    }
    return mask;
}

bool vem_hj1239_pos_valid(uint8_t pos_status)
{
    return (pos_status & 0x01) == 0;
}

bool vem_hj1239_position(uint8_t pos_status, uint32_t raw, bool is_lat, double *deg)
{
    const vem_hj1239_field_info_t *fi = &s_fields[is_lat ? VEM_HJ1239_F_LAT : VEM_HJ1239_F_LON];
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
    const vem_hj1239_field_info_t *fi = &s_fields[f];
    if (raw > fi->max_raw)
        return false;
    *out = raw * fi->scale + fi->offset;
    return true;
}

/* ---- BCC ------------------------------------------------------------------------------------ */

uint8_t vem_hj1239_bcc(const uint8_t *buf, size_t len)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        a ^= s_load64(buf + i);
        b ^= s_load64(buf + i + 8);
        c ^= s_load64(buf + i + 16);
        d ^= s_load64(buf + i + 24);
    }
    for (; i + 8 <= len; i += 8)
        a ^= s_load64(buf + i);
    a ^= b ^ c ^ d;
    a ^= a >> 32;
    a ^= a >> 16;
    a ^= a >> 8;
    uint8_t x = (uint8_t)a;
    for (; i < len; i++)
        x ^= buf[i];
    return x;
}

/* ---- time ----------------------------------------------------------------------------------- */

#define S_BEIJING_OFFSET (8 * 3600)

static int64_t s_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Wire years are 2000 + YY with YY 0..255: a year is leap when YY % 4 == 0 except 2100 and
 * 2200 (2000 is, as a multiple of 400). */
static inline bool s_wire_leap(unsigned yy)
{
    return (yy & 3) == 0 && yy != 100 && yy != 200;
}

/* Days since 1970-01-01 of 2000+yy-m-d (a checked date): days to 2000-01-01, 365 a year, one
 * more per leap year before this one, the days of the months before, the day. */
static inline int64_t s_wire_days(unsigned yy, unsigned m, unsigned d)
{
    static const uint16_t before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    unsigned leaps = (yy + 3) / 4 - (yy + 99) / 100 + (yy + 399) / 400;
    return 10957 + 365 * (int64_t)yy + leaps + before[m - 1] + (m > 2 && s_wire_leap(yy)) + d - 1;
}

/* Date from days since 1970-01-01 (proleptic Gregorian), written independently of
 * s_wire_days so that each checks the other in the tests. Counting years from March puts the
 * leap day last, so a 400-year era has a fixed day count and the month follows from the day
 * of the year by a linear formula (153 days per five months from March). */
static void s_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = s_floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static inline bool s_date_ok(const uint8_t *w)
{
    static const uint8_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (w[1] < 1 || w[1] > 12 || w[2] < 1)
        return false;
    return w[2] <= days[w[1] - 1] + (w[1] == 2 && s_wire_leap(w[0]));
}

static inline bool s_clock_ok(const uint8_t *w)
{
    return w[3] <= 23 && w[4] <= 59 && w[5] <= 59;
}

bool vem_hj1239_time_decode(const uint8_t wire[6], int64_t *epoch)
{
    if (!s_date_ok(wire) || !s_clock_ok(wire))
        return false;
    int64_t days = s_wire_days(wire[0], wire[1], wire[2]);
    *epoch = days * 86400 + wire[3] * 3600 + wire[4] * 60 + wire[5] - S_BEIJING_OFFSET;
    return true;
}

bool vem_hj1239_time_encode(int64_t epoch, uint8_t wire[6])
{
    int64_t local = epoch + S_BEIJING_OFFSET;
    int64_t days = s_floor_div(local, 86400);
    int64_t secs = local - days * 86400;
    int64_t y;
    unsigned m, d;
    s_civil_from_days(days, &y, &m, &d);
    if (y < 2000 || y > 2255)
        return false;
    wire[0] = (uint8_t)(y - 2000);
    wire[1] = (uint8_t)m;
    wire[2] = (uint8_t)d;
    wire[3] = (uint8_t)(secs / 3600);
    wire[4] = (uint8_t)(secs / 60 % 60);
    wire[5] = (uint8_t)(secs % 60);
    return true;
}

/* Writes v as exactly `width` decimal digits. */
static void s_digits(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void vem_hj1239_time_format(int64_t epoch, char out[VEM_HJ1239_TIME_LEN])
{
    int64_t local = epoch + S_BEIJING_OFFSET;
    int64_t days = s_floor_div(local, 86400);
    unsigned secs = (unsigned)(local - days * 86400);
    int64_t y;
    unsigned m, d;
    s_civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        y = y < 0 ? 0 : 9999; /* not reachable from wire times (2000..2255) */
    memcpy(out, "0000-00-00T00:00:00+08:00", VEM_HJ1239_TIME_LEN);
    s_digits(out, (unsigned)y, 4);
    s_digits(out + 5, m, 2);
    s_digits(out + 8, d, 2);
    s_digits(out + 11, secs / 3600, 2);
    s_digits(out + 14, secs / 60 % 60, 2);
    s_digits(out + 17, secs % 60, 2);
}

/* ---- decoding: context ---------------------------------------------------------------------- */

/* What the block loops keep in registers: a copy that only inlined helpers see, so stores
 * into the frame (char stores alias everything) do not force reloads. */
typedef struct {
    const uint8_t *d; /* data unit */
    size_t n;         /* its length */
    uint32_t day_key; /* YYMMDD of the cached day, or UINT32_MAX */
    int64_t day_base; /* epoch seconds of that day's Beijing midnight */
    int64_t ftime;    /* the frame's time */
} s_hot_t;

typedef struct {
    vem_hj1239_frame_t *f;
    const uint8_t *d; /* data unit */
    size_t n;         /* its length */
    s_hot_t hot;
    /* first block time that failed, or SIZE_MAX */
    size_t bad_time_at;
    /* furthest strict failure, for the error report */
    size_t fail_at;
    char fail_detail[VEM_HJ1239_DETAIL_LEN];
} s_ctx_t;

#define S_DATA_AT 24 /* frame offset of the data unit */

/* Wire time to epoch with the day cached; false for an impossible date or time. */
static inline __attribute__((always_inline)) bool s_time(s_hot_t *h, const uint8_t *w, int64_t *out)
{
    uint32_t key = s_be16(w) << 8 | w[2]; /* YY MM DD as a cache key; never UINT32_MAX */
    if (key != h->day_key) {
        if (!s_date_ok(w))
            return false;
        h->day_key = key;
        h->day_base = s_wire_days(w[0], w[1], w[2]) * 86400 - S_BEIJING_OFFSET;
    }
    if (!s_clock_ok(w))
        return false;
    *out = h->day_base + w[3] * 3600 + w[4] * 60 + w[5];
    return true;
}

static void s_note_fail(s_ctx_t *c, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), cold, noinline));

static void s_note_fail(s_ctx_t *c, size_t at, const char *fmt, ...)
{
    if (at < c->fail_at && c->fail_at != SIZE_MAX)
        return;
    c->fail_at = at;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail_detail, sizeof c->fail_detail, fmt, ap);
    va_end(ap);
}

/* ---- decoding: blocks ----------------------------------------------------------------------- */

/* Length of the standard block at d[p] (type, prefix bytes, body), 0 when d[p] is not a
 * standard type or the block does not fit in the data unit. */
static inline size_t s_block_len(const uint8_t *d, size_t n, size_t p, size_t prefix)
{
    uint8_t t = d[p];
    if (t == VEM_HJ1239_BLOCK_STREAM) /* predicted: the next block's position is known early */
        return 1 + prefix + 37 <= n - p ? 1 + prefix + 37 : 0;
    size_t body = s_body_len[t];
    if (body == 0)
        return 0;
    size_t len = 1 + prefix + body;
    if (len > n - p)
        return 0;
    if (t == VEM_HJ1239_BLOCK_OBD) {
        uint8_t cnt = d[p + 1 + prefix + S_OBD_DTC_COUNT_AT];
        if (cnt <= S_OBD_MAX_DTCS)
            len += 4 * (size_t)cnt;
        if (len > n - p)
            return 0;
    }
    return len;
}

/* Marker bits: `bit` set when a byte is above 0xFA, or a word above 0xFAFF (the valid range of
 * most fields, see the table), by the carry out of adding the distance to the top. */
static inline uint64_t s_nv8(uint32_t v, unsigned bit)
{
    return (uint64_t)((v + 0x05) >> 8) << bit;
}

static inline uint64_t s_nv16(uint32_t v, unsigned bit)
{
    return (uint64_t)((v + 0x0500) >> 16) << bit;
}

static inline uint64_t s_nv32(uint32_t v, uint32_t max, unsigned bit)
{
    return (uint64_t)(v > max) << bit;
}

/* Body bytes of the diesel stream that are the top byte of a field whose valid range ends at
 * 0xFA / 0xFAFF: 0x80 there, as a byte image so the test works on either byte order. */
static const uint8_t s_stream_tops[24] = {0x80, 0,    0x80, 0x80, 0x80, 0x80, 0,    0x80,
                                          0,    0x80, 0,    0x80, 0,    0x80, 0x80, 0,
                                          0x80, 0,    0x80, 0,    0x80, 0,    0x80, 0x80};

/* Bit 7 of each byte of x set when that byte is >= 0xFB (other bits are noise): adding 5 to
 * the low seven bits carries into bit 7 exactly when they are >= 0x7B. */
static inline uint64_t s_bytes_ge_fb(uint64_t x)
{
    return x & ((x & 0x7F7F7F7F7F7F7F7FULL) + 0x0505050505050505ULL);
}

/* Marker mask of the 15 one- and two-byte stream fields, field by field (when some top byte is
 * >= 0xFB). */
static uint64_t s_stream_mask_slow(const uint32_t *r)
{
    return s_nv16(r[VEM_HJ1239_F_SPEED], VEM_HJ1239_F_SPEED) |
           s_nv8(r[VEM_HJ1239_F_BARO], VEM_HJ1239_F_BARO) |
           s_nv8(r[VEM_HJ1239_F_TORQUE], VEM_HJ1239_F_TORQUE) |
           s_nv8(r[VEM_HJ1239_F_FRICTION], VEM_HJ1239_F_FRICTION) |
           s_nv16(r[VEM_HJ1239_F_RPM], VEM_HJ1239_F_RPM) |
           s_nv16(r[VEM_HJ1239_F_FUEL_RATE], VEM_HJ1239_F_FUEL_RATE) |
           s_nv16(r[VEM_HJ1239_F_NOX_UP], VEM_HJ1239_F_NOX_UP) |
           s_nv16(r[VEM_HJ1239_F_NOX_DOWN], VEM_HJ1239_F_NOX_DOWN) |
           s_nv8(r[VEM_HJ1239_F_REAGENT], VEM_HJ1239_F_REAGENT) |
           s_nv16(r[VEM_HJ1239_F_INTAKE], VEM_HJ1239_F_INTAKE) |
           s_nv16(r[VEM_HJ1239_F_SCR_IN], VEM_HJ1239_F_SCR_IN) |
           s_nv16(r[VEM_HJ1239_F_SCR_OUT], VEM_HJ1239_F_SCR_OUT) |
           s_nv16(r[VEM_HJ1239_F_DPF_DP], VEM_HJ1239_F_DPF_DP) |
           s_nv8(r[VEM_HJ1239_F_COOLANT], VEM_HJ1239_F_COOLANT) |
           s_nv8(r[VEM_HJ1239_F_FUEL_LEVEL], VEM_HJ1239_F_FUEL_LEVEL);
}

/* The hot path: a diesel stream body without a table walk. The marker mask of the 15 short
 * fields is 0 in the common case, which three 8-byte tests of their top bytes establish; only
 * when one is set are the fields checked one by one. Must agree with s_fields (the tests
 * compare it with the table for every marker). */
static inline __attribute__((always_inline)) void s_read_stream(const uint8_t *p,
                                                                vem_hj1239_block_t *b)
{
    uint32_t *r = b->raw;
    r[VEM_HJ1239_F_SPEED] = s_be16(p);
    r[VEM_HJ1239_F_BARO] = p[2];
    r[VEM_HJ1239_F_TORQUE] = p[3];
    r[VEM_HJ1239_F_FRICTION] = p[4];
    r[VEM_HJ1239_F_RPM] = s_be16(p + 5);
    r[VEM_HJ1239_F_FUEL_RATE] = s_be16(p + 7);
    r[VEM_HJ1239_F_NOX_UP] = s_be16(p + 9);
    r[VEM_HJ1239_F_NOX_DOWN] = s_be16(p + 11);
    r[VEM_HJ1239_F_REAGENT] = p[13];
    r[VEM_HJ1239_F_INTAKE] = s_be16(p + 14);
    r[VEM_HJ1239_F_SCR_IN] = s_be16(p + 16);
    r[VEM_HJ1239_F_SCR_OUT] = s_be16(p + 18);
    r[VEM_HJ1239_F_DPF_DP] = s_be16(p + 20);
    r[VEM_HJ1239_F_COOLANT] = p[22];
    r[VEM_HJ1239_F_FUEL_LEVEL] = p[23];
    r[VEM_HJ1239_F_POS_STATUS] = p[24];
    uint32_t lon = s_be32(p + 25), lat = s_be32(p + 29), odo = s_be32(p + 33);
    r[VEM_HJ1239_F_LON] = lon;
    r[VEM_HJ1239_F_LAT] = lat;
    r[VEM_HJ1239_F_ODOMETER] = odo;
    uint64_t m = s_nv32(lon, 180000000, VEM_HJ1239_F_LON) |
                 s_nv32(lat, 90000000, VEM_HJ1239_F_LAT) |
                 s_nv32(odo, 0xFDFFFFFF, VEM_HJ1239_F_ODOMETER);
    uint64_t tops = (s_bytes_ge_fb(s_load64(p)) & s_load64(s_stream_tops)) |
                    (s_bytes_ge_fb(s_load64(p + 8)) & s_load64(s_stream_tops + 8)) |
                    (s_bytes_ge_fb(s_load64(p + 16)) & s_load64(s_stream_tops + 16));
    if (tops)
        m |= s_stream_mask_slow(r);
    b->novalue = m;
}

/* Any other non-OBD body, through the field table. */
static void s_read_generic(const uint8_t *p, vem_hj1239_block_t *b)
{
    size_t n;
    const uint8_t *list = vem_hj1239_block_fields(b->type, &n);
    for (size_t i = 0; i < n; i++) {
        uint8_t f = list[i];
        switch (s_fields[f].width) {
        case 1:
            b->raw[f] = p[0];
            break;
        case 2:
            b->raw[f] = s_be16(p);
            break;
        default:
            b->raw[f] = s_be32(p);
            break;
        }
        p += s_fields[f].width;
    }
    b->novalue = vem_hj1239_novalue(b);
}

/* OBD strings and DTCs of a block whose body starts at q and holds ndtc DTCs. */
static __attribute__((noinline)) bool s_read_obd(s_ctx_t *c, vem_hj1239_block_t *b,
                                                 const uint8_t *q, size_t ndtc, size_t at)
{
    vem_hj1239_frame_t *f = c->f;
    if (f->nobd >= VEM_HJ1239_MAX_OBD) {
        s_note_fail(c, at, "more than %d OBD blocks", VEM_HJ1239_MAX_OBD);
        return false;
    }
    if (f->ndtcs + ndtc > VEM_HJ1239_MAX_DTCS) {
        s_note_fail(c, at, "more than %d DTCs", VEM_HJ1239_MAX_DTCS);
        return false;
    }
    vem_hj1239_obd_t *o = &f->obd[f->nobd];
    b->obd = f->nobd++;
    b->raw[VEM_HJ1239_F_OBD_PROTOCOL] = q[0];
    b->raw[VEM_HJ1239_F_MIL] = q[1];
    b->raw[VEM_HJ1239_F_DIAG_SUPPORTED] = s_be16(q + 2);
    b->raw[VEM_HJ1239_F_DIAG_READY] = s_be16(q + 4);
    memcpy(o->vin, q + 6, 17);
    memcpy(o->scin, q + 23, 18);
    memcpy(o->cvn, q + 41, 18);
    memcpy(o->iupr, q + 59, 36);
    b->raw[VEM_HJ1239_F_DTC_COUNT] = q[95];
    o->dtc_first = f->ndtcs;
    o->dtc_n = (uint16_t)ndtc;
    for (size_t i = 0; i < ndtc; i++)
        f->dtcs[f->ndtcs++] = s_be32(q + 96 + 4 * i);
    b->novalue = vem_hj1239_novalue(b);
    return true;
}

/* Fills block b from the standard block at d[p] of length len. Returns false when the frame
 * holds more OBD blocks or DTCs than vem_hj1239_frame_t has room for (noted). */
static inline __attribute__((always_inline)) bool s_fill_block(s_ctx_t *c, s_hot_t *h,
                                                               vem_hj1239_block_t *b, size_t p,
                                                               size_t len, bool with_serial,
                                                               bool with_time)
{
    const uint8_t *q = h->d + p + 1;
    uint8_t type = q[-1];
    uint16_t seq = 0;
    int64_t t = h->ftime;
    if (with_serial) {
        seq = (uint16_t)s_be16(q);
        q += 2;
    }
    if (with_time) {
        if (!s_time(h, q, &t) && c->bad_time_at == SIZE_MAX)
            c->bad_time_at = S_DATA_AT + (size_t)(q - h->d);
        q += 6;
    }
    b->type = type;
    b->seq = seq;
    b->time = t;
    if (type == VEM_HJ1239_BLOCK_STREAM) {
        s_read_stream(q, b);
    } else if (type == VEM_HJ1239_BLOCK_OBD) {
        size_t head = (size_t)(q - (h->d + p));
        if (!s_read_obd(c, b, q, (len - head - 96) / 4, S_DATA_AT + p))
            return false;
    } else {
        s_read_generic(q, b);
    }
    return true;
}

/* Appends the block at d[p] to the frame; false when there is no room (noted). */
static inline __attribute__((always_inline)) bool s_add_block(s_ctx_t *c, s_hot_t *h, size_t *nb,
                                                              size_t p, size_t len,
                                                              bool with_serial, bool with_time)
{
    if (*nb >= VEM_HJ1239_MAX_BLOCKS) {
        s_note_fail(c, S_DATA_AT + p, "more than %d blocks", VEM_HJ1239_MAX_BLOCKS);
        return false;
    }
    if (!s_fill_block(c, h, &c->f->blocks[*nb], p, len, with_serial, with_time))
        return false;
    (*nb)++;
    return true;
}

/* Length of a signature (rlen, R, slen, S) that ends exactly at the data unit's end, or 0. */
static inline size_t s_sig_fits(const s_ctx_t *c, size_t p)
{
    size_t left = c->n - p;
    if (left < 4)
        return 0;
    size_t r = c->d[p];
    if (r == 0 || r > VEM_HJ1239_MAX_SIG_PART || 2 + r >= left)
        return 0;
    size_t s = c->d[p + 1 + r];
    if (s == 0 || s > VEM_HJ1239_MAX_SIG_PART || 2 + r + s != left)
        return 0;
    return left;
}

static void s_read_sig(const uint8_t *p, vem_hj1239_sig_t *sig)
{
    sig->rlen = p[0];
    memcpy(sig->r, p + 1, sig->rlen);
    sig->slen = p[1 + sig->rlen];
    memcpy(sig->s, p + 2 + sig->rlen, sig->slen);
}

static void s_reset_blocks(vem_hj1239_frame_t *f)
{
    f->nblocks = 0;
    f->nobd = 0;
    f->ndtcs = 0;
    f->vendor_blocks = 0;
    f->has_sig = false;
    f->sig.rlen = f->sig.slen = 0;
}

/* Start of the block sequence and the first block's prefix for a layout. */
static size_t s_prefix(unsigned layout)
{
    return ((layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK) ? 2 : 0) +
           ((layout & VEM_HJ1239_LAYOUT_BLOCK_TIME) ? 6 : 0);
}

/* True when a vendor text item (VEM_HJ1239_VENDOR_TEXT_LEN bytes: 0x20, 32 bytes none of them
 * NUL, NUL) starts at d[p]. Its length is in its bytes, so skipping it needs no search. */
static bool s_text_item(const uint8_t *d, size_t n, size_t p)
{
    if (n - p < VEM_HJ1239_VENDOR_TEXT_LEN || d[p] != 0x20 ||
        d[p + VEM_HJ1239_VENDOR_TEXT_LEN - 1] != 0x00)
        return false;
    return memchr(d + p + 1, 0x00, VEM_HJ1239_VENDOR_TEXT_LEN - 2) == NULL;
}

/* Records the vendor item d[p .. p+len) after nb standard blocks; false when there is no room
 * (noted). */
static bool s_add_vendor(s_ctx_t *c, size_t p, size_t len, size_t nb)
{
    vem_hj1239_frame_t *f = c->f;
    if (f->vendor_blocks >= VEM_HJ1239_MAX_VENDOR) {
        s_note_fail(c, S_DATA_AT + p, "more than %d vendor items", VEM_HJ1239_MAX_VENDOR);
        return false;
    }
    vem_hj1239_vendor_t *v = &f->vendor[f->vendor_blocks++];
    v->data = c->d + p;
    v->len = (uint16_t)len;
    v->after = (uint8_t)nb;
    return true;
}

/* Strict reading: standard blocks back to back, nothing skipped; with `items`, vendor text
 * items are skipped wherever they stand (before, between or after blocks, before the
 * signature). 1 = fits, 0 = does not. Always inlined so that each call with a constant layout
 * gets its own specialised loop (and the common calls, items false, no text-item test). */
static inline __attribute__((always_inline)) int s_rt_strict(s_ctx_t *c, unsigned layout,
                                                             bool items)
{
    vem_hj1239_frame_t *f = c->f;
    const char *name = vem_hj1239_dialect_name(layout);
    bool bt = layout & VEM_HJ1239_LAYOUT_BLOCK_TIME;
    bool spb = layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK;
    size_t prefix = s_prefix(layout);
    s_hot_t h = c->hot;
    size_t p, nb = 0;
    s_reset_blocks(f);
    c->bad_time_at = SIZE_MAX;
    if (layout & VEM_HJ1239_LAYOUT_TYPE_FIRST) {
        size_t len = s_block_len(h.d, h.n, 6, prefix + 2);
        if (len == 0) {
            s_note_fail(c, S_DATA_AT + 6, "%s: no standard first block", name);
            return 0;
        }
        if (!s_add_block(c, &h, &nb, 6, len, true, bt))
            return 0;
        f->seq = f->blocks[0].seq;
        p = 6 + len;
    } else if (spb) {
        p = 6;
    } else {
        f->seq = (uint16_t)s_be16(h.d + 6);
        p = 8;
    }
    bool sig = false;
    while (p < h.n) {
        size_t len = s_block_len(h.d, h.n, p, prefix);
        if (len) {
            if (!s_add_block(c, &h, &nb, p, len, spb, bt))
                goto fail;
            p += len;
            continue;
        }
        if (bt && s_sig_fits(c, p)) {
            s_read_sig(h.d + p, &f->sig);
            sig = true;
            break;
        }
        if (items && s_text_item(h.d, h.n, p)) {
            if (!s_add_vendor(c, p, VEM_HJ1239_VENDOR_TEXT_LEN, nb))
                goto fail;
            p += VEM_HJ1239_VENDOR_TEXT_LEN;
            continue;
        }
        uint8_t t = h.d[p];
        if (s_body_len[t])
            s_note_fail(c, S_DATA_AT + p,
                        "%s: block 0x%02X at offset %zu needs more bytes than the %zu left", name,
                        t, S_DATA_AT + p, h.n - p);
        else
            s_note_fail(c, S_DATA_AT + p, "%s: no standard block type at offset %zu (0x%02X)", name,
                        S_DATA_AT + p, t);
        goto fail;
    }
    f->nblocks = (uint16_t)nb;
    f->has_sig = sig;
    c->hot.day_key = h.day_key;
    c->hot.day_base = h.day_base;
    if (bt && !sig) {
        s_note_fail(c, S_DATA_AT + h.n, "%s: no signature after the last block", name);
        return 0;
    }
    if (spb) {
        if (nb == 0) {
            s_note_fail(c, S_DATA_AT + 6, "%s: no blocks", name);
            return 0;
        }
        f->seq = f->blocks[0].seq;
    }
    return 1;
fail:
    f->nblocks = (uint16_t)nb;
    return 0;
}

/* The rarer layouts share one copy of the strict loop. */
static int s_rt_strict_any(s_ctx_t *c, unsigned layout)
{
    return s_rt_strict(c, layout, false);
}

/* The strict loop that also skips vendor text items: tried only when no layout fits strictly.
 * Deterministic (a text item starts with 0x20, which is no standard type and no signature
 * here, see s_text_item), so it costs one walk per layout. */
static __attribute__((noinline)) int s_rt_items(s_ctx_t *c, unsigned layout)
{
    return s_rt_strict(c, layout, true);
}

/* Tolerant reading. A vendor item is a run of bytes of unknown length that starts with a
 * vendor type (0x81..0xFE) or right after a standard block, and ends where a standard block or
 * the end (GB 17691: the data unit's end; HJ 1239: a signature filling the rest) begins. Many
 * readings may fit; the one kept has the fewest vendor items, then the most standard blocks,
 * then the fewest vendor bytes, so a standard-looking run inside vendor bytes does not displace
 * a real block. Costs are found backwards in one pass (cost[p] = best reading of the rest when
 * p follows a standard block), the reading forwards. The table is on the stack (32 KiB), hence
 * a size limit. */
#define S_SEARCH_MAX 8192 /* data-unit bytes the tolerant reading accepts */
#define S_INF        UINT32_MAX

/* A cost packed in 32 bits: vendor items (bits 25..31), standard blocks (14..24), vendor bytes
 * (0..13). Compared as (items ascending, blocks descending, bytes ascending). */
typedef uint32_t s_cost_t;

static inline uint32_t s_items(s_cost_t c)
{
    return c >> 25;
}

static inline uint32_t s_blocks(s_cost_t c)
{
    return c >> 14 & 0x7FF;
}

static inline uint32_t s_bytes(s_cost_t c)
{
    return c & 0x3FFF;
}

/* True when a is a better reading than b (S_INF is worst). */
static bool s_better(s_cost_t a, s_cost_t b)
{
    if (a == S_INF || b == S_INF)
        return b == S_INF && a != S_INF;
    if (s_items(a) != s_items(b))
        return s_items(a) < s_items(b);
    if (s_blocks(a) != s_blocks(b))
        return s_blocks(a) > s_blocks(b);
    return s_bytes(a) < s_bytes(b);
}

typedef struct {
    bool bt, spb;
    size_t prefix, start;
    bool after; /* the start follows a standard block (TYPE_FIRST) */
    s_cost_t cost[S_SEARCH_MAX + 1];
} s_search_t;

/* A standard block at p whose block time (if any) is a possible time; its length or 0. */
static size_t s_search_block(const s_ctx_t *c, const s_search_t *s, size_t p, size_t prefix,
                             bool serial)
{
    size_t len = s_block_len(c->d, c->n, p, prefix);
    if (len && s->bt) {
        const uint8_t *w = c->d + p + 1 + (serial ? 2 : 0);
        if (!s_date_ok(w) || !s_clock_ok(w))
            return 0;
    }
    return len;
}

static bool s_at_end(const s_ctx_t *c, size_t p, bool bt)
{
    return bt ? s_sig_fits(c, p) != 0 : p == c->n;
}

/* Cost of finishing from p when p must start a standard block or be the end. */
static s_cost_t s_cost_here(const s_ctx_t *c, const s_search_t *s, size_t p)
{
    s_cost_t best = s_at_end(c, p, s->bt) ? 0 : S_INF;
    if (p < c->n) {
        size_t len = s_search_block(c, s, p, s->prefix, s->spb);
        s_cost_t rest = len ? s->cost[p + len] : S_INF;
        if (rest != S_INF && s_blocks(rest) < 0x7FF && s_better(rest + (1u << 14), best))
            best = rest + (1u << 14);
    }
    return best;
}

/* A vendor item from p to q followed by a reading of cost rest; S_INF when out of range. */
static s_cost_t s_with_item(size_t p, size_t q, s_cost_t rest)
{
    if (rest == S_INF || s_items(rest) >= VEM_HJ1239_MAX_VENDOR || s_bytes(rest) + (q - p) > 0x3FFF)
        return S_INF;
    return rest + (1u << 25) + (uint32_t)(q - p);
}

/* Fills s->cost for a layout; returns the cost of the whole reading (S_INF: none). */
static s_cost_t s_search_cost(const s_ctx_t *c, s_search_t *s, unsigned layout)
{
    s->bt = layout & VEM_HJ1239_LAYOUT_BLOCK_TIME;
    s->spb = layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK;
    s->prefix = s_prefix(layout);
    if (c->n > S_SEARCH_MAX)
        return S_INF;
    if (layout & VEM_HJ1239_LAYOUT_TYPE_FIRST) {
        size_t len = s_search_block(c, s, 6, s->prefix + 2, true);
        if (len == 0)
            return S_INF;
        s->start = 6 + len, s->after = true;
    } else {
        s->start = s->spb ? 6 : 8, s->after = false;
    }
    /* best vendor item starting at p: the q > p minimising (items, -blocks, q + bytes) of the
     * reading from q; kept as that reading's cost with q added to its bytes */
    s_cost_t beyond = S_INF;
    size_t beyond_q = 0;
    s_cost_t here = S_INF;
    for (size_t p = c->n + 1; p-- > s->start;) {
        here = s_cost_here(c, s, p);
        s_cost_t best = here;
        if (beyond != S_INF) {
            s_cost_t item = s_with_item(p, beyond_q, beyond);
            if (s_better(item, best))
                best = item;
        }
        s->cost[p] = best;
        if (here != S_INF) {
            /* compare the reading from p against the one from beyond_q, both as seen from an
             * item that starts before p */
            if (beyond == S_INF ||
                s_better(s_with_item(0, p, here), s_with_item(0, beyond_q, beyond)))
                beyond = here, beyond_q = p;
        }
    }
    if (s->after) /* TYPE_FIRST: the first block counts too */
        return s->cost[s->start] == S_INF ? S_INF : s->cost[s->start] + (1u << 14);
    /* at the start a vendor item needs a vendor type byte */
    if (s->start < c->n && s_is_vendor_type(c->d[s->start]))
        return s->cost[s->start];
    return here;
}

/* Reads the frame along the best reading found by s_search_cost. 1 = done, 0 = no room. */
static int s_search_fill(s_ctx_t *c, s_search_t *s, unsigned layout, s_cost_t target)
{
    vem_hj1239_frame_t *f = c->f;
    s_hot_t h = c->hot;
    size_t nb = 0;
    s_reset_blocks(f);
    c->bad_time_at = SIZE_MAX;
    if (layout & VEM_HJ1239_LAYOUT_TYPE_FIRST) {
        if (!s_add_block(c, &h, &nb, 6, s->start - 6, true, s->bt))
            return 0;
        f->nblocks = (uint16_t)nb;
        f->seq = f->blocks[0].seq;
        target -= 1u << 14;
    } else if (!s->spb) {
        f->seq = (uint16_t)s_be16(c->d + 6);
    }
    size_t p = s->start;
    bool may_vendor = true; /* not right after a vendor item */
    for (;;) {
        if (p < c->n) {
            size_t len = s_search_block(c, s, p, s->prefix, s->spb);
            if (len && s->cost[p + len] != S_INF && s->cost[p + len] + (1u << 14) == target) {
                if (!s_add_block(c, &h, &nb, p, len, s->spb, s->bt))
                    return 0;
                f->nblocks = (uint16_t)nb;
                p += len;
                target = s->cost[p];
                may_vendor = true;
                continue;
            }
        }
        if (target == 0 && s_at_end(c, p, s->bt))
            break;
        if (!may_vendor || p >= c->n)
            return 0; /* not reached: the costs say a reading exists */
        size_t q = p + 1;
        s_cost_t rest = S_INF;
        for (; q <= c->n; q++) {
            rest = s_cost_here(c, s, q);
            if (rest != S_INF && s_with_item(p, q, rest) == target)
                break;
        }
        if (q > c->n)
            return 0;
        vem_hj1239_vendor_t *v = &f->vendor[f->vendor_blocks++];
        v->data = c->d + p;
        v->len = (uint16_t)(q - p);
        v->after = (uint8_t)nb;
        p = q;
        target = rest;
        may_vendor = false;
    }
    if (s->bt) {
        s_read_sig(c->d + p, &f->sig);
        f->has_sig = true;
    }
    if (s->spb) {
        if (nb == 0)
            return 0;
        f->seq = f->blocks[0].seq;
    }
    return 1;
}

/* The order in which layouts are tried: the common ones first. */
static const uint8_t s_layouts[] = {
    VEM_HJ1239_LAYOUT_BLOCK_TIME,
    0,
    VEM_HJ1239_LAYOUT_TYPE_FIRST,
    VEM_HJ1239_LAYOUT_TYPE_FIRST | VEM_HJ1239_LAYOUT_BLOCK_TIME,
    VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK,
    VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK | VEM_HJ1239_LAYOUT_BLOCK_TIME,
};

/* The tolerant pass: every layout's best reading; the one with the fewest vendor items, then
 * the most standard blocks wins, the first in `order` on a tie (vendor byte counts only rank
 * readings of one layout: a misaligned layout can skip fewer bytes by luck). 1 = read. */
static __attribute__((noinline)) int s_rt_tolerant(s_ctx_t *c)
{
    s_search_t search; /* 32 KiB, only on this rare path */
    s_search_t *s = &search;
    /* signed (HJ 1239) layouts first: a signature that fills the end is strong evidence */
    static const uint8_t order[] = {
        VEM_HJ1239_LAYOUT_BLOCK_TIME,
        VEM_HJ1239_LAYOUT_TYPE_FIRST | VEM_HJ1239_LAYOUT_BLOCK_TIME,
        VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK | VEM_HJ1239_LAYOUT_BLOCK_TIME,
        0,
        VEM_HJ1239_LAYOUT_TYPE_FIRST,
        VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK,
    };
    s_cost_t best = S_INF;
    unsigned best_layout = 0;
    for (size_t i = 0; i < sizeof order; i++) {
        s_cost_t cost = s_search_cost(c, s, order[i]);
        if (cost == S_INF ||
            ((order[i] & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK) && s_blocks(cost) == 0))
            continue; /* serial per block: the frame's serial comes from the first block */
        if (best == S_INF || s_items(cost) < s_items(best) ||
            (s_items(cost) == s_items(best) && s_blocks(cost) > s_blocks(best)))
            best = cost, best_layout = order[i];
    }
    if (best == S_INF)
        return 0;
    s_search_cost(c, s, best_layout);
    if (!s_search_fill(c, s, best_layout, best))
        return 0;
    c->f->layout = (uint8_t)best_layout;
    return 1;
}

static vem_hj1239_status_t s_decode_realtime(s_ctx_t *c, vem_hj1239_error_t *err)
{
    vem_hj1239_frame_t *f = c->f;
    if (c->n < 8)
        return s_fail(err, VEM_HJ1239_MALFORMED_BODY, S_DATA_AT,
                      "real-time data unit of %zu bytes is shorter than time and serial", c->n);
    /* A layout whose lengths fit but whose block times are impossible is reported as bad_time
     * unless another layout fits cleanly (a misaligned reading can fit by chance). */
    size_t bad_time_at = SIZE_MAX;
    for (size_t i = 0; i < sizeof s_layouts; i++) {
        unsigned layout = s_layouts[i];
        int ok;
        if (layout == VEM_HJ1239_LAYOUT_BLOCK_TIME) /* the common case, specialised */
            ok = s_rt_strict(c, VEM_HJ1239_LAYOUT_BLOCK_TIME, false);
        else if (layout == 0)
            ok = s_rt_strict(c, 0, false);
        else
            ok = s_rt_strict_any(c, layout);
        if (!ok)
            continue;
        if (c->bad_time_at == SIZE_MAX) {
            f->layout = (uint8_t)layout;
            return VEM_HJ1239_OK;
        }
        if (bad_time_at == SIZE_MAX)
            bad_time_at = c->bad_time_at;
    }
    if (bad_time_at == SIZE_MAX) {
        /* Field terminals put vendor text items between blocks: the same walk, skipping them */
        for (size_t i = 0; i < sizeof s_layouts; i++) {
            if (!s_rt_items(c, s_layouts[i]))
                continue;
            if (c->bad_time_at == SIZE_MAX) {
                f->layout = s_layouts[i];
                return VEM_HJ1239_OK;
            }
            if (bad_time_at == SIZE_MAX)
                bad_time_at = c->bad_time_at;
        }
    }
    if (bad_time_at != SIZE_MAX) {
        s_reset_blocks(f);
        return s_fail(err, VEM_HJ1239_BAD_TIME, bad_time_at, "impossible block collection time");
    }
    if (s_rt_tolerant(c))
        return VEM_HJ1239_OK;
    s_reset_blocks(f);
    if (c->n > S_SEARCH_MAX)
        s_note_fail(c, SIZE_MAX - 1,
                    "no strict layout fits, and vendor items are looked for only "
                    "in data units up to %d bytes",
                    S_SEARCH_MAX);
    return s_fail(err, VEM_HJ1239_MALFORMED_BODY,
                  c->fail_at >= SIZE_MAX - 1 ? S_DATA_AT : c->fail_at,
                  "no layout fits the %zu-byte data unit; furthest: %s", c->n, c->fail_detail);
}

/* ---- decoding: frames ----------------------------------------------------------------------- */

static vem_hj1239_status_t s_need_len(const s_ctx_t *c, size_t want, const char *what,
                                      vem_hj1239_error_t *err)
{
    if (c->n == want)
        return VEM_HJ1239_OK;
    return s_fail(err, VEM_HJ1239_MALFORMED_BODY, S_DATA_AT,
                  "%s data unit is %zu bytes, expected %zu", what, c->n, want);
}

static inline vem_hj1239_status_t s_frame_time(s_ctx_t *c, vem_hj1239_error_t *err)
{
    if (!s_time(&c->hot, c->d, &c->f->time))
        return s_fail(err, VEM_HJ1239_BAD_TIME, S_DATA_AT,
                      "impossible time %02u-%02u-%02u %02u:%02u:%02u", c->d[0], c->d[1], c->d[2],
                      c->d[3], c->d[4], c->d[5]);
    c->f->has_time = true;
    c->hot.ftime = c->f->time;
    return VEM_HJ1239_OK;
}

vem_hj1239_status_t vem_hj1239_decode(const uint8_t *buf, size_t len, unsigned flags,
                                      vem_hj1239_frame_t *out, vem_hj1239_error_t *err)
{
    vem_hj1239_frame_t *f = out;
    if (err) {
        err->status = VEM_HJ1239_OK;
        err->offset = 0;
        err->detail[0] = '\0';
    }
    if ((len >= 1 && buf[0] != '#') || (len >= 2 && buf[1] != '#'))
        return s_fail(err, VEM_HJ1239_BAD_START, 0, "frame does not start with ##");
    if (len >= 3 && !vem_hj1239_cmd_known(buf[2]))
        return s_fail(err, VEM_HJ1239_UNKNOWN_COMMAND, 2, "unknown command 0x%02X", buf[2]);
    if (len < VEM_HJ1239_HEADER_LEN)
        return s_fail(err, VEM_HJ1239_TRUNCATED, len, "%zu bytes, shorter than the header", len);
    size_t n = s_be16(buf + 22);
    if (len < n + VEM_HJ1239_MIN_FRAME)
        return s_fail(err, VEM_HJ1239_TRUNCATED, len, "%zu bytes, the header announces %zu", len,
                      n + VEM_HJ1239_MIN_FRAME);
    if (len > n + VEM_HJ1239_MIN_FRAME)
        return s_fail(err, VEM_HJ1239_BAD_LENGTH, n + VEM_HJ1239_MIN_FRAME,
                      "%zu bytes after the frame", len - n - VEM_HJ1239_MIN_FRAME);
    if (!(flags & VEM_HJ1239_TRUSTED_BCC)) {
        uint8_t bcc = vem_hj1239_bcc(buf + 2, n + 22);
        if (bcc != buf[n + 24])
            return s_fail(err, VEM_HJ1239_BAD_CHECKSUM, n + 24, "BCC 0x%02X, computed 0x%02X",
                          buf[n + 24], bcc);
    }

    f->cmd = buf[2];
    if (buf[3] == 0x01 || buf[3] == 0x02 || buf[3] == 0x03 || buf[3] == 0xFE) {
        f->header = VEM_HJ1239_HEADER_PLATFORM;
        f->response = buf[3];
        f->sw_version = 0;
        memcpy(f->vin, buf + 4, 17);
    } else {
        f->header = VEM_HJ1239_HEADER_TERMINAL;
        f->response = 0;
        memcpy(f->vin, buf + 3, 17);
        f->sw_version = buf[20];
    }
    f->encryption = buf[21];
    f->length = (uint16_t)n;
    f->layout = 0;
    f->has_time = false;
    f->time = 0;
    f->seq = 0;
    s_reset_blocks(f);
    if (f->encryption != VEM_HJ1239_ENC_NONE && f->encryption != VEM_HJ1239_ENC_ABNORMAL &&
        f->encryption != VEM_HJ1239_ENC_INVALID) {
        const char *name = vem_hj1239_encryption_name(f->encryption);
        if (name)
            return s_fail(err, VEM_HJ1239_UNSUPPORTED_ENCRYPTION, 21, "data unit encrypted (%s)",
                          name);
        return s_fail(err, VEM_HJ1239_UNSUPPORTED_ENCRYPTION, 21, "unknown encryption byte 0x%02X",
                      f->encryption);
    }

    s_ctx_t c; /* not zero-filled: the detail buffer is written only on failure */
    c.f = f;
    c.d = buf + S_DATA_AT;
    c.n = n;
    c.hot.d = c.d;
    c.hot.n = n;
    c.hot.day_key = UINT32_MAX;
    c.hot.day_base = 0;
    c.hot.ftime = 0;
    c.bad_time_at = SIZE_MAX;
    c.fail_at = SIZE_MAX;
    c.fail_detail[0] = '\0';
    vem_hj1239_status_t st;
    switch (f->cmd) {
    case VEM_HJ1239_CMD_LOGIN:
        if ((st = s_need_len(&c, 28, "login", err)) || (st = s_frame_time(&c, err)))
            return st;
        f->seq = (uint16_t)s_be16(c.d + 6);
        memcpy(f->iccid, c.d + 8, 20);
        return VEM_HJ1239_OK;
    case VEM_HJ1239_CMD_LOGOUT:
        if ((st = s_need_len(&c, 8, "logout", err)) || (st = s_frame_time(&c, err)))
            return st;
        f->seq = (uint16_t)s_be16(c.d + 6);
        return VEM_HJ1239_OK;
    case VEM_HJ1239_CMD_TIME_SYNC:
        if (n == 0)
            return VEM_HJ1239_OK;
        if ((st = s_need_len(&c, 6, "time calibration", err)))
            return st;
        return s_frame_time(&c, err);
    case VEM_HJ1239_CMD_REMOVAL_ALARM:
        if ((st = s_need_len(&c, 17, "removal alarm", err)) || (st = s_frame_time(&c, err)))
            return st;
        f->seq = (uint16_t)s_be16(c.d + 6);
        f->pos_status = c.d[8];
        f->lon_raw = s_be32(c.d + 9);
        f->lat_raw = s_be32(c.d + 13);
        return VEM_HJ1239_OK;
    case VEM_HJ1239_CMD_ACTIVATION:
        if (n < 6 + 16 + 64 + 17)
            return s_fail(err, VEM_HJ1239_MALFORMED_BODY, S_DATA_AT,
                          "activation data unit of %zu bytes is too short", n);
        if (!s_sig_fits(&c, 103))
            return s_fail(err, VEM_HJ1239_MALFORMED_BODY, S_DATA_AT + 103,
                          "activation signature does not fill the data unit");
        if ((st = s_frame_time(&c, err)))
            return st;
        memcpy(f->chip_id, c.d + 6, 16);
        memcpy(f->pubkey, c.d + 22, 64);
        memcpy(f->act_vin, c.d + 86, 17);
        s_read_sig(c.d + 103, &f->sig);
        f->has_sig = true;
        return VEM_HJ1239_OK;
    case VEM_HJ1239_CMD_ACTIVATION_REPLY:
        if ((st = s_need_len(&c, 2, "activation reply", err)))
            return st;
        f->act_status = c.d[0];
        f->act_info = c.d[1];
        return VEM_HJ1239_OK;
    default:         /* real-time and re-send */
        if (c.n < 6) /* not even the collection time */
            return s_fail(err, VEM_HJ1239_MALFORMED_BODY, S_DATA_AT,
                          "%s data unit of %zu bytes has no time", s_cmd_names[f->cmd], c.n);
        if ((st = s_frame_time(&c, err)))
            return st;
        return s_decode_realtime(&c, err);
    }
}

/* ---- encoding ------------------------------------------------------------------------------- */

static size_t s_block_wire_len(const vem_hj1239_block_t *b, size_t prefix)
{
    size_t body = s_body_len[b->type];
    if (b->type == VEM_HJ1239_BLOCK_OBD) {
        uint32_t cnt = b->raw[VEM_HJ1239_F_DTC_COUNT];
        if (cnt <= S_OBD_MAX_DTCS)
            body += 4 * cnt;
    }
    return 1 + prefix + body;
}

static size_t s_data_len(const vem_hj1239_frame_t *f)
{
    switch (f->cmd) {
    case VEM_HJ1239_CMD_LOGIN:
        return 28;
    case VEM_HJ1239_CMD_LOGOUT:
        return 8;
    case VEM_HJ1239_CMD_TIME_SYNC:
        return f->has_time ? 6 : 0;
    case VEM_HJ1239_CMD_REMOVAL_ALARM:
        return 17;
    case VEM_HJ1239_CMD_ACTIVATION:
        return 103 + 2 + (size_t)f->sig.rlen + f->sig.slen;
    case VEM_HJ1239_CMD_ACTIVATION_REPLY:
        return 2;
    default:
        break;
    }
    bool tf = f->layout & VEM_HJ1239_LAYOUT_TYPE_FIRST;
    bool spb = f->layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK;
    size_t prefix = s_prefix(f->layout);
    size_t n = (tf || spb) ? 6 : 8;
    for (size_t i = 0; i < f->nblocks && i < VEM_HJ1239_MAX_BLOCKS; i++)
        n += s_block_wire_len(&f->blocks[i], prefix + (tf && i == 0 ? 2 : 0));
    for (size_t i = 0; i < f->vendor_blocks && i < VEM_HJ1239_MAX_VENDOR; i++)
        n += f->vendor[i].len;
    if (f->layout & VEM_HJ1239_LAYOUT_BLOCK_TIME)
        n += 2 + (size_t)f->sig.rlen + f->sig.slen;
    return n;
}

size_t vem_hj1239_encoded_len(const vem_hj1239_frame_t *f)
{
    return VEM_HJ1239_MIN_FRAME + s_data_len(f);
}

static uint8_t *s_put_sig(uint8_t *p, const vem_hj1239_sig_t *sig)
{
    *p++ = sig->rlen;
    memcpy(p, sig->r, sig->rlen);
    p += sig->rlen;
    *p++ = sig->slen;
    memcpy(p, sig->s, sig->slen);
    return p + sig->slen;
}

static uint8_t *s_put_fields(uint8_t *p, const vem_hj1239_block_t *b)
{
    size_t n;
    const uint8_t *list = vem_hj1239_block_fields(b->type, &n);
    for (size_t i = 0; i < n; i++) {
        uint8_t fid = list[i];
        switch (s_fields[fid].width) {
        case 1:
            *p = (uint8_t)b->raw[fid];
            break;
        case 2:
            s_put16(p, b->raw[fid]);
            break;
        default:
            s_put32(p, b->raw[fid]);
            break;
        }
        p += s_fields[fid].width;
    }
    return p;
}

/* Writes one block; NULL when it cannot be written. */
static uint8_t *s_put_block(uint8_t *p, const vem_hj1239_frame_t *f, const vem_hj1239_block_t *b,
                            bool serial, bool bt)
{
    if (s_body_len[b->type] == 0)
        return NULL;
    *p++ = b->type;
    if (serial) {
        s_put16(p, b->seq);
        p += 2;
    }
    if (bt) {
        if (!vem_hj1239_time_encode(b->time, p))
            return NULL;
        p += 6;
    }
    if (b->type != VEM_HJ1239_BLOCK_OBD)
        return s_put_fields(p, b);
    if (b->obd >= VEM_HJ1239_MAX_OBD)
        return NULL;
    const vem_hj1239_obd_t *o = &f->obd[b->obd];
    uint32_t cnt = b->raw[VEM_HJ1239_F_DTC_COUNT];
    size_t ndtc = cnt <= S_OBD_MAX_DTCS ? cnt : 0;
    if ((size_t)o->dtc_first + ndtc > VEM_HJ1239_MAX_DTCS)
        return NULL;
    p[0] = (uint8_t)b->raw[VEM_HJ1239_F_OBD_PROTOCOL];
    p[1] = (uint8_t)b->raw[VEM_HJ1239_F_MIL];
    s_put16(p + 2, b->raw[VEM_HJ1239_F_DIAG_SUPPORTED]);
    s_put16(p + 4, b->raw[VEM_HJ1239_F_DIAG_READY]);
    memcpy(p + 6, o->vin, 17);
    memcpy(p + 23, o->scin, 18);
    memcpy(p + 41, o->cvn, 18);
    memcpy(p + 59, o->iupr, 36);
    p[95] = (uint8_t)cnt;
    for (size_t i = 0; i < ndtc; i++)
        s_put32(p + 96 + 4 * i, f->dtcs[o->dtc_first + i]);
    return p + 96 + 4 * ndtc;
}

static uint8_t *s_put_vendor(uint8_t *p, const vem_hj1239_frame_t *f, size_t after)
{
    for (size_t i = 0; i < f->vendor_blocks; i++) {
        if (f->vendor[i].after != after)
            continue;
        memcpy(p, f->vendor[i].data, f->vendor[i].len);
        p += f->vendor[i].len;
    }
    return p;
}

/* Writes the real-time data unit; NULL when f cannot be written. */
static uint8_t *s_put_realtime(uint8_t *p, const vem_hj1239_frame_t *f)
{
    bool tf = f->layout & VEM_HJ1239_LAYOUT_TYPE_FIRST;
    bool spb = f->layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK;
    bool bt = f->layout & VEM_HJ1239_LAYOUT_BLOCK_TIME;
    if (f->nblocks > VEM_HJ1239_MAX_BLOCKS || f->vendor_blocks > VEM_HJ1239_MAX_VENDOR ||
        (tf && spb) || ((tf || spb) && f->nblocks == 0))
        return NULL;
    for (size_t i = 0; i < f->vendor_blocks; i++)
        if (f->vendor[i].after > f->nblocks || (tf && f->vendor[i].after == 0) ||
            (f->vendor[i].len && !f->vendor[i].data))
            return NULL;
    if (!tf && !spb) {
        s_put16(p, f->seq);
        p += 2;
    }
    for (size_t i = 0; i < f->nblocks; i++) {
        p = s_put_vendor(p, f, i);
        const vem_hj1239_block_t *b = &f->blocks[i];
        if (tf && i == 0) {
            /* the first block's type, then the frame serial */
            vem_hj1239_block_t first = *b;
            first.seq = f->seq;
            p = s_put_block(p, f, &first, true, bt);
        } else {
            p = s_put_block(p, f, b, spb, bt);
        }
        if (!p)
            return NULL;
    }
    p = s_put_vendor(p, f, f->nblocks);
    if (bt)
        p = s_put_sig(p, &f->sig);
    return p;
}

int vem_hj1239_encode(const vem_hj1239_frame_t *f, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!vem_hj1239_cmd_known(f->cmd))
        return -1;
    if ((f->cmd == VEM_HJ1239_CMD_REALTIME || f->cmd == VEM_HJ1239_CMD_RESEND) &&
        (f->nblocks > VEM_HJ1239_MAX_BLOCKS || f->vendor_blocks > VEM_HJ1239_MAX_VENDOR))
        return -1;
    size_t n = s_data_len(f);
    if (n > 0xFFFF || cap < n + VEM_HJ1239_MIN_FRAME)
        return -1;
    uint8_t *p = out;
    p[0] = p[1] = '#';
    p[2] = f->cmd;
    if (f->header == VEM_HJ1239_HEADER_PLATFORM) {
        p[3] = f->response;
        memcpy(p + 4, f->vin, 17);
    } else {
        memcpy(p + 3, f->vin, 17);
        p[20] = f->sw_version;
    }
    p[21] = f->encryption;
    s_put16(p + 22, (uint32_t)n);
    uint8_t *d = p + S_DATA_AT;
    bool timed = f->cmd != VEM_HJ1239_CMD_ACTIVATION_REPLY &&
                 (f->cmd != VEM_HJ1239_CMD_TIME_SYNC || f->has_time);
    if (timed && !vem_hj1239_time_encode(f->time, d))
        return -1;
    uint8_t *e = d + (timed ? 6 : 0);
    switch (f->cmd) {
    case VEM_HJ1239_CMD_LOGIN:
        s_put16(e, f->seq);
        memcpy(e + 2, f->iccid, 20);
        e += 22;
        break;
    case VEM_HJ1239_CMD_LOGOUT:
        s_put16(e, f->seq);
        e += 2;
        break;
    case VEM_HJ1239_CMD_TIME_SYNC:
        break;
    case VEM_HJ1239_CMD_REMOVAL_ALARM:
        s_put16(e, f->seq);
        e[2] = f->pos_status;
        s_put32(e + 3, f->lon_raw);
        s_put32(e + 7, f->lat_raw);
        e += 11;
        break;
    case VEM_HJ1239_CMD_ACTIVATION:
        if (f->sig.rlen == 0 || f->sig.rlen > VEM_HJ1239_MAX_SIG_PART || f->sig.slen == 0 ||
            f->sig.slen > VEM_HJ1239_MAX_SIG_PART)
            return -1;
        memcpy(e, f->chip_id, 16);
        memcpy(e + 16, f->pubkey, 64);
        memcpy(e + 80, f->act_vin, 17);
        e = s_put_sig(e + 97, &f->sig);
        break;
    case VEM_HJ1239_CMD_ACTIVATION_REPLY:
        e[0] = f->act_status;
        e[1] = f->act_info;
        e += 2;
        break;
    default:
        if ((f->layout & VEM_HJ1239_LAYOUT_BLOCK_TIME) &&
            (f->sig.rlen == 0 || f->sig.rlen > VEM_HJ1239_MAX_SIG_PART || f->sig.slen == 0 ||
             f->sig.slen > VEM_HJ1239_MAX_SIG_PART))
            return -1;
        e = s_put_realtime(e, f);
        if (!e)
            return -1;
        break;
    }
    if ((size_t)(e - d) != n)
        return -1;
    e[0] = vem_hj1239_bcc(p + 2, n + 22);
    *out_len = n + VEM_HJ1239_MIN_FRAME;
    return 0;
}

/* ---- equality ------------------------------------------------------------------------------- */

static bool s_block_equal(const vem_hj1239_frame_t *fa, const vem_hj1239_block_t *a,
                          const vem_hj1239_frame_t *fb, const vem_hj1239_block_t *b, bool bt,
                          bool serial)
{
    if (a->type != b->type || a->novalue != b->novalue || (bt && a->time != b->time) ||
        (serial && a->seq != b->seq))
        return false;
    size_t n;
    const uint8_t *list = vem_hj1239_block_fields(a->type, &n);
    for (size_t i = 0; i < n; i++)
        if (a->raw[list[i]] != b->raw[list[i]])
            return false;
    if (a->type != VEM_HJ1239_BLOCK_OBD)
        return true;
    const vem_hj1239_obd_t *oa = &fa->obd[a->obd], *ob = &fb->obd[b->obd];
    if (memcmp(oa->vin, ob->vin, 17) || memcmp(oa->scin, ob->scin, 18) ||
        memcmp(oa->cvn, ob->cvn, 18) || memcmp(oa->iupr, ob->iupr, 36) || oa->dtc_n != ob->dtc_n)
        return false;
    return memcmp(&fa->dtcs[oa->dtc_first], &fb->dtcs[ob->dtc_first],
                  oa->dtc_n * sizeof fa->dtcs[0]) == 0;
}

static bool s_sig_equal(const vem_hj1239_sig_t *a, const vem_hj1239_sig_t *b)
{
    return a->rlen == b->rlen && a->slen == b->slen && memcmp(a->r, b->r, a->rlen) == 0 &&
           memcmp(a->s, b->s, a->slen) == 0;
}

bool vem_hj1239_equal(const vem_hj1239_frame_t *a, const vem_hj1239_frame_t *b)
{
    if (a->cmd != b->cmd || a->header != b->header || a->encryption != b->encryption ||
        a->length != b->length || memcmp(a->vin, b->vin, 17) || a->has_time != b->has_time ||
        (a->has_time && a->time != b->time) || a->has_sig != b->has_sig)
        return false;
    if (a->header == VEM_HJ1239_HEADER_TERMINAL ? a->sw_version != b->sw_version
                                                : a->response != b->response)
        return false;
    if (a->has_sig && !s_sig_equal(&a->sig, &b->sig))
        return false;
    switch (a->cmd) {
    case VEM_HJ1239_CMD_LOGIN:
        return a->seq == b->seq && memcmp(a->iccid, b->iccid, 20) == 0;
    case VEM_HJ1239_CMD_LOGOUT:
        return a->seq == b->seq;
    case VEM_HJ1239_CMD_TIME_SYNC:
        return true;
    case VEM_HJ1239_CMD_REMOVAL_ALARM:
        return a->seq == b->seq && a->pos_status == b->pos_status && a->lon_raw == b->lon_raw &&
               a->lat_raw == b->lat_raw;
    case VEM_HJ1239_CMD_ACTIVATION:
        return memcmp(a->chip_id, b->chip_id, 16) == 0 && memcmp(a->pubkey, b->pubkey, 64) == 0 &&
               memcmp(a->act_vin, b->act_vin, 17) == 0;
    case VEM_HJ1239_CMD_ACTIVATION_REPLY:
        return a->act_status == b->act_status && a->act_info == b->act_info;
    default:
        break;
    }
    if (a->layout != b->layout || a->seq != b->seq || a->nblocks != b->nblocks ||
        a->vendor_blocks != b->vendor_blocks || a->nblocks > VEM_HJ1239_MAX_BLOCKS ||
        a->vendor_blocks > VEM_HJ1239_MAX_VENDOR)
        return false;
    bool bt = a->layout & VEM_HJ1239_LAYOUT_BLOCK_TIME;
    bool spb = a->layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK;
    for (size_t i = 0; i < a->nblocks; i++)
        if (!s_block_equal(a, &a->blocks[i], b, &b->blocks[i], bt, spb))
            return false;
    for (size_t i = 0; i < a->vendor_blocks; i++) {
        const vem_hj1239_vendor_t *va = &a->vendor[i], *vb = &b->vendor[i];
        if (va->len != vb->len || va->after != vb->after ||
            (va->len && memcmp(va->data, vb->data, va->len)))
            return false;
    }
    return true;
}
