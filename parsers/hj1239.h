/* hj1239 — decoder and encoder of remote-OBD frames (GB 17691-2018 Annex Q, HJ 1239.3-2021).
 *
 * Pure: bytes and a length in, a decoded struct and a status out; no I/O, no allocation, no
 * globals. The decoded struct is caller-provided and fixed-size (blocks inline, OBD strings and
 * DTCs in side arrays), so the daemon keeps one per worker thread and decodes millions of
 * frames a second into it. Block fields are kept as their raw wire values, so encoding a
 * decoded frame gives back the same bytes; vem_hj1239_value() turns a raw value into its
 * physical value (scale, offset, sign) or reports that it has none (marker or out of range).
 *
 * The map of the module (hj1239_int.h holds what the parts share):
 *   hj1239_tables.c    names, field and block tables, physical values, the BCC
 *   hj1239_time.c      wire times, ISO 8601 text
 *   hj1239_decode.c    vem_hj1239_decode: envelope, commands, strict layout walks, text items
 *   hj1239_tolerant.c  vendor items of unknown length (reached only from the decoder)
 *   hj1239_encode.c    vem_hj1239_encode, vem_hj1239_equal
 *
 * Protocol facts: /work/shared/protocol/hj1239.md; JSON names: /work/shared/FIELDS.md. */
#ifndef VEM_HJ1239_H
#define VEM_HJ1239_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Big-endian unsigned integers at p (the wire's byte order, and binary COPY's). */
static inline uint32_t vem_hj1239_be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static inline uint32_t vem_hj1239_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- limits ------------------------------------------------------------------------------- */

enum {
    VEM_HJ1239_HEADER_LEN = 24,      /* `##` .. data-unit length; the BCC follows the data */
    VEM_HJ1239_MIN_FRAME = 25,       /* header + BCC with an empty data unit */
    VEM_HJ1239_MAX_FRAME = 65560,    /* header + 65535 + BCC */
    VEM_HJ1239_MAX_BLOCKS = 64,      /* standard blocks per frame; more is malformed_body */
    VEM_HJ1239_MAX_OBD = 8,          /* OBD blocks per frame */
    VEM_HJ1239_MAX_DTCS = 2048,      /* DTCs per frame, over all OBD blocks */
    VEM_HJ1239_MAX_VENDOR = 16,      /* vendor items per frame */
    VEM_HJ1239_MAX_SIG_PART = 64,    /* longest R or S accepted (normally 32 or 33) */
    VEM_HJ1239_DETAIL_LEN = 160,     /* room for an error's detail text */
    VEM_HJ1239_VENDOR_TEXT_LEN = 34, /* a vendor text item: 0x20, 32 non-NUL bytes, NUL */
    VEM_HJ1239_TIME_LEN = 26,        /* "2024-03-05T08:09:10+08:00" + NUL */
};

/* ---- status (hj1239_tables.c) -------------------------------------------------------------- */

/* Outcome of decoding a frame; the names are FIELDS.md's error classes. */
typedef enum {
    VEM_HJ1239_OK = 0,
    VEM_HJ1239_BAD_START,              /* not `##` */
    VEM_HJ1239_BAD_CHECKSUM,           /* BCC mismatch */
    VEM_HJ1239_TRUNCATED,              /* fewer bytes than the header announces */
    VEM_HJ1239_BAD_LENGTH,             /* length beyond the bound, or bytes after the frame */
    VEM_HJ1239_UNKNOWN_COMMAND,        /* command byte not 0x01..0x08 */
    VEM_HJ1239_BAD_TIME,               /* impossible date or time of day */
    VEM_HJ1239_MALFORMED_BODY,         /* no layout fits the data unit, or a field is wrong */
    VEM_HJ1239_UNSUPPORTED_ENCRYPTION, /* encrypted data unit; the envelope is still decoded */
    VEM_HJ1239_STATUS_COUNT
} vem_hj1239_status_t;

/* Why a frame was rejected: class, a human-readable detail, and the byte offset in the frame. */
typedef struct {
    vem_hj1239_status_t status;
    size_t offset;
    char detail[VEM_HJ1239_DETAIL_LEN];
} vem_hj1239_error_t;

/* Error-class name ("bad_checksum", ...; "ok" for VEM_HJ1239_OK); static string. */
const char *vem_hj1239_status_name(vem_hj1239_status_t status);

/* ---- commands, headers, layouts (hj1239_tables.c) ------------------------------------------ */

typedef enum {
    VEM_HJ1239_CMD_LOGIN = 0x01,
    VEM_HJ1239_CMD_REALTIME = 0x02,
    VEM_HJ1239_CMD_RESEND = 0x03,
    VEM_HJ1239_CMD_LOGOUT = 0x04,
    VEM_HJ1239_CMD_TIME_SYNC = 0x05,
    VEM_HJ1239_CMD_REMOVAL_ALARM = 0x06,
    VEM_HJ1239_CMD_ACTIVATION = 0x07,
    VEM_HJ1239_CMD_ACTIVATION_REPLY = 0x08,
} vem_hj1239_cmd_t;

/* True for the command codes this protocol defines (0x01..0x08). */
bool vem_hj1239_cmd_known(uint8_t code);

/* FIELDS.md name of a command ("login", "realtime", ...), NULL for an unknown code. */
const char *vem_hj1239_cmd_name(uint8_t code);

typedef enum {
    VEM_HJ1239_HEADER_TERMINAL = 0, /* `##` cmd VIN sw_version encryption length */
    VEM_HJ1239_HEADER_PLATFORM = 1, /* `##` cmd response VIN encryption length (GB/T 32960) */
} vem_hj1239_header_t;

/* Encryption byte values (HJ 1239). */
enum {
    VEM_HJ1239_ENC_NONE = 0x01,
    VEM_HJ1239_ENC_SM2 = 0x02,
    VEM_HJ1239_ENC_SM4 = 0x03,
    VEM_HJ1239_ENC_RSA = 0x04,
    VEM_HJ1239_ENC_AES128 = 0x05,
    VEM_HJ1239_ENC_ABNORMAL = 0xFE,
    VEM_HJ1239_ENC_INVALID = 0xFF,
};

/* FIELDS.md name of an encryption byte ("none", "sm2", ...), NULL for an undefined value. */
const char *vem_hj1239_encryption_name(uint8_t code);

/* Layout of a real-time / re-send data unit: flags, found by which one makes lengths add up.
 *   0                     GB 17691: time, serial, { type, body }*
 *   BLOCK_TIME            HJ 1239:  time, serial, { type, time, body }*, signature
 *   TYPE_FIRST            time, type, serial, body, { type, body }*   (first type before serial)
 *   SERIAL_PER_BLOCK      time, { type, serial, body }*               (frame seq = first block's)
 * TYPE_FIRST and SERIAL_PER_BLOCK combine with BLOCK_TIME (the block time follows the serial). */
enum {
    VEM_HJ1239_LAYOUT_BLOCK_TIME = 0x01,
    VEM_HJ1239_LAYOUT_TYPE_FIRST = 0x02,
    VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK = 0x04,
};

/* FIELDS.md `dialect` of a layout: "type_first", "serial_per_block", "hj1239" or "gb17691". */
const char *vem_hj1239_dialect_name(uint8_t layout);

/* ---- blocks and fields (hj1239_tables.c) --------------------------------------------------- */

typedef enum {
    VEM_HJ1239_BLOCK_OBD = 0x01,
    VEM_HJ1239_BLOCK_STREAM = 0x02,
    VEM_HJ1239_BLOCK_TWC = 0x03,
    VEM_HJ1239_BLOCK_HYBRID = 0x04,
    VEM_HJ1239_BLOCK_TWC_NOX = 0x05,
    VEM_HJ1239_BLOCK_SUPPLEMENTARY = 0x80,
} vem_hj1239_block_type_t;

/* FIELDS.md name of a standard block type ("obd", "stream", ...), NULL for other codes. */
const char *vem_hj1239_block_name(uint8_t type);

/* Every numeric field of every block type, one id space, so a rule reads NOx the same way from
 * a diesel stream and a TWC+NOx block. The diesel stream's fields come first, in wire order. */
typedef enum {
    VEM_HJ1239_F_SPEED = 0,      /* speed_kmh */
    VEM_HJ1239_F_BARO,           /* baro_kpa */
    VEM_HJ1239_F_TORQUE,         /* torque_pct */
    VEM_HJ1239_F_FRICTION,       /* friction_pct */
    VEM_HJ1239_F_RPM,            /* engine_rpm */
    VEM_HJ1239_F_FUEL_RATE,      /* fuel_rate_lph */
    VEM_HJ1239_F_NOX_UP,         /* nox_up_ppm */
    VEM_HJ1239_F_NOX_DOWN,       /* nox_down_ppm */
    VEM_HJ1239_F_REAGENT,        /* reagent_pct */
    VEM_HJ1239_F_INTAKE,         /* intake_air_kgph */
    VEM_HJ1239_F_SCR_IN,         /* scr_in_c */
    VEM_HJ1239_F_SCR_OUT,        /* scr_out_c */
    VEM_HJ1239_F_DPF_DP,         /* dpf_dp_kpa */
    VEM_HJ1239_F_COOLANT,        /* coolant_c */
    VEM_HJ1239_F_FUEL_LEVEL,     /* fuel_level_pct */
    VEM_HJ1239_F_POS_STATUS,     /* position status bits (pos_valid in JSON) */
    VEM_HJ1239_F_LON,            /* lon */
    VEM_HJ1239_F_LAT,            /* lat */
    VEM_HJ1239_F_ODOMETER,       /* odometer_km */
    VEM_HJ1239_F_O2_UP,          /* o2_up */
    VEM_HJ1239_F_O2_DOWN,        /* o2_down_v */
    VEM_HJ1239_F_CATALYST,       /* catalyst_c */
    VEM_HJ1239_F_MOTOR_RPM,      /* motor_rpm */
    VEM_HJ1239_F_MOTOR_LOAD,     /* motor_load_pct */
    VEM_HJ1239_F_BATTERY_V,      /* battery_v */
    VEM_HJ1239_F_BATTERY_A,      /* battery_a */
    VEM_HJ1239_F_SOC,            /* soc_pct */
    VEM_HJ1239_F_TORQUE_MODE,    /* torque_mode */
    VEM_HJ1239_F_PEDAL,          /* pedal_pct */
    VEM_HJ1239_F_FUEL_TOTAL,     /* fuel_total_l */
    VEM_HJ1239_F_UREA_TANK,      /* urea_tank_c */
    VEM_HJ1239_F_UREA_DOSE,      /* urea_dose (unit unconfirmed: raw) */
    VEM_HJ1239_F_UREA_TOTAL,     /* urea_total (unit unconfirmed: raw) */
    VEM_HJ1239_F_DPF_EXHAUST,    /* dpf_exhaust_c */
    VEM_HJ1239_F_OBD_PROTOCOL,   /* obd_protocol */
    VEM_HJ1239_F_MIL,            /* mil */
    VEM_HJ1239_F_DIAG_SUPPORTED, /* diag_supported */
    VEM_HJ1239_F_DIAG_READY,     /* diag_ready */
    VEM_HJ1239_F_DTC_COUNT,      /* dtc_count */
    VEM_HJ1239_F_COUNT
} vem_hj1239_field_t;

/* How a field is carried and scaled: physical = raw * scale + offset, valid for raw <= max_raw.
 * Above max_raw there is no measurement: a raw value whose top byte is >= invalid_top (0xFF..,
 * for the OBD protocol and MIL bytes 0xFE) is `invalid`; anything else (0xFE.. markers and
 * out-of-range values) is `abnormal`. */
typedef struct {
    const char *name;    /* FIELDS.md key */
    uint8_t width;       /* bytes on the wire: 1, 2 or 4 */
    bool integer;        /* printed as a JSON integer */
    uint8_t decimals;    /* decimals of one resolution step, for printing */
    uint8_t invalid_top; /* see above */
    double scale;
    double offset;
    uint32_t max_raw; /* largest raw value that is a measurement */
} vem_hj1239_field_info_t;

/* Static description of a field; NULL for an id out of range. */
const vem_hj1239_field_info_t *vem_hj1239_field_info(vem_hj1239_field_t field);

/* Fields of a standard block type in wire order (static array, *n set); NULL for other types.
 * For OBD blocks only the numeric head (protocol, MIL, support, readiness) and the DTC count
 * are fields; the strings and DTCs are in vem_hj1239_obd_t. */
const uint8_t *vem_hj1239_block_fields(uint8_t type, size_t *n);

/* Body length of a standard block type (OBD: without DTCs); 0 for other types. */
size_t vem_hj1239_block_body_len(uint8_t type);

/* One decoded block (a 1 Hz sample, or an OBD snapshot). */
typedef struct {
    uint8_t type;     /* vem_hj1239_block_type_t */
    uint8_t obd;      /* OBD blocks: index into frame->obd */
    uint16_t seq;     /* per-block serial (SERIAL_PER_BLOCK layout; first block: TYPE_FIRST) */
    int64_t time;     /* collection time, epoch seconds UTC (HJ 1239), else the frame's time */
    uint64_t novalue; /* bit f set: field f is a marker or out of range (no measurement) */
    uint32_t raw[VEM_HJ1239_F_COUNT]; /* raw wire values; only the block type's fields are set */
} vem_hj1239_block_t;

/* Strings and DTC list of an OBD block. The strings are the raw wire bytes (not terminated). */
typedef struct {
    uint8_t vin[17];
    uint8_t scin[18];
    uint8_t cvn[18];
    uint8_t iupr[36];
    uint16_t dtc_first; /* index of its first DTC in frame->dtcs; count is raw[F_DTC_COUNT] */
    uint16_t dtc_n;     /* DTCs present on the wire (0 when the count byte is a marker) */
} vem_hj1239_obd_t;

/* Bytes the decoder skipped inside a real-time data unit: a vendor text item (0x20, 32 non-NUL
 * bytes, NUL: seen before, between and after standard blocks), a vendor block (0x81..0xFE) or
 * vendor bytes after a standard block. `data` is borrowed from the decoded input. */
typedef struct {
    const uint8_t *data;
    uint16_t len;
    uint8_t after; /* number of standard blocks before it */
} vem_hj1239_vendor_t;

/* SM2 signature: R and S as written (32 bytes, or 33 with a leading zero). */
typedef struct {
    uint8_t rlen, slen;
    uint8_t r[VEM_HJ1239_MAX_SIG_PART];
    uint8_t s[VEM_HJ1239_MAX_SIG_PART];
} vem_hj1239_sig_t;

/* A decoded frame. Which members are meaningful depends on cmd (see FIELDS.md). */
typedef struct {
    /* envelope */
    uint8_t cmd;        /* vem_hj1239_cmd_t */
    uint8_t header;     /* vem_hj1239_header_t */
    uint8_t sw_version; /* terminal header */
    uint8_t response;   /* platform header: 0x01, 0x02, 0x03, 0xFE */
    uint8_t encryption; /* raw byte, see VEM_HJ1239_ENC_* */
    uint8_t layout;     /* realtime/resend: VEM_HJ1239_LAYOUT_* flags */
    uint16_t length;    /* data-unit length */
    uint8_t vin[17];    /* raw bytes */
    bool has_time;      /* all but activation_reply and an empty time_sync */
    bool has_sig;       /* HJ 1239 real-time and activation */
    int64_t time;       /* frame time, epoch seconds UTC */
    uint16_t seq;       /* login/logout/realtime/resend/removal serial */
    /* login */
    uint8_t iccid[20];
    /* removal alarm: position status, raw lon/lat (1e-6 degree) */
    uint8_t pos_status;
    uint32_t lon_raw, lat_raw;
    /* activation */
    uint8_t chip_id[16];
    uint8_t pubkey[64];
    uint8_t act_vin[17];
    /* activation reply */
    uint8_t act_status, act_info;
    /* realtime / resend */
    uint16_t nblocks;
    uint16_t vendor_blocks; /* vendor items skipped (== nvendor) */
    uint16_t ndtcs;
    uint8_t nobd;
    vem_hj1239_sig_t sig;
    vem_hj1239_vendor_t vendor[VEM_HJ1239_MAX_VENDOR];
    vem_hj1239_obd_t obd[VEM_HJ1239_MAX_OBD];
    vem_hj1239_block_t blocks[VEM_HJ1239_MAX_BLOCKS];
    uint32_t dtcs[VEM_HJ1239_MAX_DTCS];
} vem_hj1239_frame_t;

/* ---- decoding (hj1239_decode.c) ------------------------------------------------------------ */

/* Flags of vem_hj1239_decode. */
enum {
    VEM_HJ1239_TRUSTED_BCC = 0x01, /* the reassembler already checked the BCC: skip it */
};

/* Header form of a frame from its byte 3 (frame[0..3] must exist): PLATFORM when it is a
 * GB/T 32960 response flag (0x01, 0x02, 0x03, 0xFE: never a VIN character), else TERMINAL. */
vem_hj1239_header_t vem_hj1239_header_form(const uint8_t *frame);

/* The 17 VIN bytes of a frame of at least VEM_HJ1239_HEADER_LEN bytes, in either header form
 * (a pointer into frame). */
const uint8_t *vem_hj1239_header_vin(const uint8_t *frame);

/* Whole length (header, data unit, BCC) that a header of VEM_HJ1239_HEADER_LEN bytes
 * announces. */
size_t vem_hj1239_frame_len(const uint8_t *header);

/* True when buf[0..len) is exactly one frame by its envelope: `##`, a known command, the
 * announced length, a right BCC (what the reassembler checks; the body is not looked at). */
bool vem_hj1239_envelope_ok(const uint8_t *buf, size_t len);

/* Decodes the one frame in buf[0..len) into *out (caller-owned; nothing kept). Returns
 * VEM_HJ1239_OK or the error class; err (may be NULL) gets class, detail and frame offset. On
 * UNSUPPORTED_ENCRYPTION the envelope members of *out are valid. out->vendor[].data points
 * into buf. */
vem_hj1239_status_t vem_hj1239_decode(const uint8_t *buf, size_t len, unsigned flags,
                                      vem_hj1239_frame_t *out, vem_hj1239_error_t *err);

/* The BCC and the values of decoded fields (hj1239_tables.c). */

/* XOR of buf[0..len) (the BCC runs over frame bytes 2 .. 23+N). */
uint8_t vem_hj1239_bcc(const uint8_t *buf, size_t len);

/* Physical value of field f of block b into *out; false when the block has no such field or
 * the raw value is a marker or out of range. lon/lat carry the sign of the position bits. */
bool vem_hj1239_value(const vem_hj1239_block_t *b, vem_hj1239_field_t f, double *out);

/* For a raw value above the field's max_raw: true when it is `invalid`, false when `abnormal`. */
bool vem_hj1239_marker_invalid(vem_hj1239_field_t f, uint32_t raw);

/* novalue mask of a block from its raw values (what the decoder stores in b->novalue). */
uint64_t vem_hj1239_novalue(const vem_hj1239_block_t *b);

/* True when position status says the fix is valid (bit0 clear). */
bool vem_hj1239_pos_valid(uint8_t pos_status);

/* Signed degrees of a raw lon (is_lat false) or lat; false when raw is a marker or out of
 * range. */
bool vem_hj1239_position(uint8_t pos_status, uint32_t raw, bool is_lat, double *deg);

/* ---- time (hj1239_time.c) ------------------------------------------------------------------ */

/* Checks the 6-byte wire time (YY MM DD hh mm ss, Beijing) and converts it to epoch seconds
 * UTC; false for an impossible date or time. */
bool vem_hj1239_time_decode(const uint8_t wire[6], int64_t *epoch);

/* Writes epoch seconds UTC as wire time (Beijing); false when the year is outside 2000..2255. */
bool vem_hj1239_time_encode(int64_t epoch, uint8_t wire[6]);

/* Day number of an instant in Beijing time (UTC+8): days since 1970-01-01 of its Beijing date,
 * rounded down for instants before then. Daily partitions, serials and counts use it. */
int64_t vem_hj1239_beijing_day(int64_t epoch);

/* Formats epoch seconds as ISO 8601 Beijing time, "2024-03-05T08:09:10+08:00", into out. */
void vem_hj1239_time_format(int64_t epoch, char out[VEM_HJ1239_TIME_LEN]);

/* ---- encoding (hj1239_encode.c) ------------------------------------------------------------ */

/* Byte length that vem_hj1239_encode will write for f. */
size_t vem_hj1239_encoded_len(const vem_hj1239_frame_t *f);

/* Encodes f (header form, layout, blocks, vendor items, signature as in f) into out[0..cap);
 * sets *out_len. Returns 0, or -1 when cap is too small or f cannot be written (unknown
 * command, more than 65535 data bytes, a time outside 2000..2255, a block type without a
 * layout). The BCC is computed. */
int vem_hj1239_encode(const vem_hj1239_frame_t *f, uint8_t *out, size_t cap, size_t *out_len);

/* True when a and b decode-equal: every member the command uses (vendor bytes compared). */
bool vem_hj1239_equal(const vem_hj1239_frame_t *a, const vem_hj1239_frame_t *b);

#endif
