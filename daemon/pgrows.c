/* pgrows — rows in PostgreSQL's binary COPY format; see pgrows.h.
 *
 * Binary COPY (PostgreSQL manual, "COPY", binary format): each row is an int16 column count,
 * then per column an int32 byte length (-1 for NULL) and the value in the type's binary send
 * format, all big-endian: int2/int4/int8 as such, float8 as its IEEE bits, bool as one byte,
 * text and bytea as their bytes, timestamptz as int64 microseconds since 2000-01-01 UTC, and
 * text[] as ndim, has-null flag, element type oid, (size, lower bound) per dimension, then
 * the elements as length + bytes. The file header and trailer are the sink's business. */
#include "pgrows.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_PG_EPOCH_US INT64_C(946684800000000) /* 2000-01-01 00:00 UTC in Unix microseconds */
#define S_TEXT_OID    25

static const char *const s_names[VEM_PGROWS_TABLES] = {
    "obd_frames", "obd_info", "terminal_events", "quarantine", "violations", "rsd_readings"};

/* Columns in row order; must match schema/0001_core.sql. */
static const char *const s_copy[VEM_PGROWS_TABLES] = {
    "COPY obd_frames (nsamples, rec_len, vin, frame_time, received_at, frame_seq, resent, wide, "
    "samples, invalid, abnormal, meta, pos) FROM STDIN (FORMAT binary)",
    "COPY obd_info (vin, info_time, block_idx, received_at, frame_seq, resent, obd_protocol, mil, "
    "diag_supported, diag_ready, obd_vin, scin, cvn, iupr, dtc_count, dtcs, invalid, abnormal) "
    "FROM STDIN (FORMAT binary)",
    "COPY terminal_events (vin, event_time, cmd, seq, received_at, iccid, pos_valid, lon, lat, "
    "chip_id, pubkey, act_vin) FROM STDIN (FORMAT binary)",
    "COPY quarantine (received_at, spool_seq, source, error_class, detail, error_offset, vin, raw) "
    "FROM STDIN (FORMAT binary)",
    "COPY violations (violation_id, rule, clause, vin, plate, plate_color, first_at, last_at, "
    "measured, \"limit\", unit, evidence, severity, received_at, spool_seq, emission) FROM "
    "STDIN (FORMAT binary)",
    "COPY rsd_readings (station_id, reading_id, time, received_at, lane, plate, plate_color, vin, "
    "fuel, speed_kmh, accel_ms2, vsp_kw_t, opacity_pct, k_m1, ringelmann, no_ppm, co_pct, hc_ppm, "
    "co2_pct, wind_ms, temp_c, humidity_pct, pressure_kpa, slope_pct, image_ref, valid, counted, "
    "invalid_reason) FROM STDIN (FORMAT binary)",
};

/* The sample fields, in column order: every numeric field of the sample block types. */
#define S_SAMPLE_FIELDS (VEM_HJ1239_F_DPF_EXHAUST + 1)
#define S_NAMES_CAP     VEM_PGROWS_NAMES_CAP
static const unsigned s_columns[VEM_PGROWS_TABLES] = {13, 18, 12, 8, 16, 28};

const char *vem_pgrows_table_name(vem_pgrows_table_t t)
{
    return t < VEM_PGROWS_TABLES ? s_names[t] : NULL;
}

const char *vem_pgrows_copy_sql(vem_pgrows_table_t t)
{
    return t < VEM_PGROWS_TABLES ? s_copy[t] : NULL;
}

unsigned vem_pgrows_table_columns(vem_pgrows_table_t t)
{
    return t < VEM_PGROWS_TABLES ? s_columns[t] : 0;
}

/* ---- buffers and big-endian values --------------------------------------------------------- */

void vem_pgrows_buf_put(vem_pgrows_buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return; /* an empty buffer has no data pointer, and memcpy must not see NULL */
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *data = realloc(b->data, cap);
        if (!data)
            abort();
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void vem_pgrows_buf_free(vem_pgrows_buf_t *b)
{
    free(b->data);
    *b = (vem_pgrows_buf_t){0};
}

static void s_u16(vem_pgrows_buf_t *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    vem_pgrows_buf_put(b, x, 2);
}

static void s_u32(vem_pgrows_buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    vem_pgrows_buf_put(b, x, 4);
}

static void s_u64(vem_pgrows_buf_t *b, uint64_t v)
{
    s_u32(b, (uint32_t)(v >> 32));
    s_u32(b, (uint32_t)v);
}

/* ---- columns --------------------------------------------------------------------------------- */

static void s_null(vem_pgrows_buf_t *b)
{
    s_u32(b, UINT32_MAX); /* -1 */
}

static void s_int2(vem_pgrows_buf_t *b, int16_t v)
{
    s_u32(b, 2);
    s_u16(b, (uint16_t)v);
}

static void s_int4(vem_pgrows_buf_t *b, int32_t v)
{
    s_u32(b, 4);
    s_u32(b, (uint32_t)v);
}

static void s_int8(vem_pgrows_buf_t *b, int64_t v)
{
    s_u32(b, 8);
    s_u64(b, (uint64_t)v);
}

static void s_float8(vem_pgrows_buf_t *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    s_u32(b, 8);
    s_u64(b, bits);
}

static void s_bool(vem_pgrows_buf_t *b, bool v)
{
    s_u32(b, 1);
    uint8_t x = v;
    vem_pgrows_buf_put(b, &x, 1);
}

static void s_bytes(vem_pgrows_buf_t *b, const void *p, size_t n)
{
    s_u32(b, (uint32_t)n);
    vem_pgrows_buf_put(b, p, n);
}

static void s_str(vem_pgrows_buf_t *b, const char *s)
{
    s_bytes(b, s, strlen(s));
}

/* Wire text (VIN, ICCID, OBD strings, quarantine details) as FIELDS.md shows it: trailing NUL
 * and space padding cut, anything but printable ASCII as '?', so the server (UTF-8) never sees
 * invalid bytes; at most VEM_PGROWS_TEXT_MAX bytes. */
static void s_wire_text(vem_pgrows_buf_t *b, const uint8_t *p, size_t n)
{
    char s[VEM_PGROWS_TEXT_MAX];
    if (n > sizeof s)
        n = sizeof s;
    while (n > 0 && (p[n - 1] == 0 || p[n - 1] == ' '))
        n--;
    for (size_t i = 0; i < n; i++)
        s[i] = p[i] >= 0x20 && p[i] < 0x7F ? (char)p[i] : '?';
    s_bytes(b, s, n);
}

static void s_hex(vem_pgrows_buf_t *b, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char s[2 * 64];
    if (n > 64)
        n = 64;
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s_bytes(b, s, 2 * n);
}

static void s_time(vem_pgrows_buf_t *b, int64_t unix_us)
{
    s_int8(b, unix_us - S_PG_EPOCH_US);
}

/* text[] of n strings (NULL when n is 0 and null_if_empty). */
static void s_text_array(vem_pgrows_buf_t *b, const char *const *items, size_t n,
                         bool null_if_empty)
{
    if (n == 0 && null_if_empty) {
        s_null(b);
        return;
    }
    size_t len = 12 + (n ? 8 : 0);
    for (size_t i = 0; i < n; i++)
        len += 4 + strlen(items[i]);
    s_u32(b, (uint32_t)len);
    s_u32(b, n ? 1 : 0); /* dimensions */
    s_u32(b, 0);         /* no NULL elements */
    s_u32(b, S_TEXT_OID);
    if (n) {
        s_u32(b, (uint32_t)n);
        s_u32(b, 1); /* lower bound */
    }
    for (size_t i = 0; i < n; i++)
        s_str(b, items[i]);
}

static int s_cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A list of field names, sorted as `vemctl decode` prints them; NULL when empty. */
static void s_name_array(vem_pgrows_buf_t *b, const char **names, size_t n)
{
    qsort(names, n, sizeof names[0], s_cmp_names);
    s_text_array(b, names, n, true);
}

/* ---- rows ------------------------------------------------------------------------------------ */

static void s_day(vem_pgrows_t *r, int64_t epoch_s)
{
    int32_t day = (int32_t)vem_hj1239_beijing_day(epoch_s);
    for (uint32_t i = 0; i < r->ndays; i++)
        if (r->days[i] == day)
            return;
    if (r->ndays < VEM_PGROWS_MAX_DAYS)
        r->days[r->ndays++] = day;
}

void vem_pgrows_reset(vem_pgrows_t *r)
{
    for (unsigned t = 0; t < VEM_PGROWS_TABLES; t++) {
        r->rows[t].len = 0;
        r->nrows[t] = 0;
    }
    r->samples = 0;
    r->ndays = 0;
}

void vem_pgrows_free(vem_pgrows_t *r)
{
    for (unsigned t = 0; t < VEM_PGROWS_TABLES; t++)
        vem_pgrows_buf_free(&r->rows[t]);
    vem_pgrows_reset(r);
}

bool vem_pgrows_full(const vem_pgrows_t *r)
{
    /* one frame adds at most a day per block and one for the frame */
    return r->ndays + VEM_HJ1239_MAX_BLOCKS + 1 > VEM_PGROWS_MAX_DAYS;
}

/* Names of the fields without a value, split into invalid and abnormal: each field once, as
 * the block that gives the row its value (from[fid]) has it. At most VEM_HJ1239_F_COUNT each. */
static void s_novalue_names(const vem_hj1239_block_t *const *from, const char **invalid,
                            size_t *ninvalid, const char **abnormal, size_t *nabnormal)
{
    *ninvalid = *nabnormal = 0;
    for (unsigned fid = 0; fid < VEM_HJ1239_F_COUNT; fid++) {
        const vem_hj1239_block_t *blk = from[fid];
        if (!blk || !(blk->novalue >> fid & 1))
            continue;
        const char *name = vem_hj1239_field_info((vem_hj1239_field_t)fid)->name;
        if (vem_hj1239_marker_invalid((vem_hj1239_field_t)fid, blk->raw[fid]))
            invalid[(*ninvalid)++] = name;
        else
            abnormal[(*nabnormal)++] = name;
    }
}

static void s_row_head(vem_pgrows_buf_t *b, vem_pgrows_table_t t, const vem_hj1239_frame_t *f,
                       const vem_hj1239_block_t *blk, size_t idx, int64_t received_us)
{
    s_u16(b, (uint16_t)s_columns[t]);
    s_wire_text(b, f->vin, sizeof f->vin);
    s_time(b, blk->time * 1000000);
    s_int2(b, (int16_t)idx);
    s_time(b, received_us);
    s_int4(b, (f->layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK) ? blk->seq : f->seq);
    s_bool(b, f->cmd == VEM_HJ1239_CMD_RESEND);
}

static bool s_is_base(uint8_t type)
{
    return type == VEM_HJ1239_BLOCK_STREAM || type == VEM_HJ1239_BLOCK_TWC ||
           type == VEM_HJ1239_BLOCK_TWC_NOX;
}

static bool s_is_aux(uint8_t type)
{
    return type == VEM_HJ1239_BLOCK_HYBRID || type == VEM_HJ1239_BLOCK_SUPPLEMENTARY;
}

/* The sample block a hybrid or supplementary block belongs to: the one with the same time
 * (the nearest before it, else after it), else the nearest sample block before it, else after
 * it; SIZE_MAX when the frame has no sample block. */
static size_t s_base_of(const vem_hj1239_frame_t *f, size_t j)
{
    size_t same = SIZE_MAX, before = SIZE_MAX, after = SIZE_MAX;
    for (size_t i = 0; i < f->nblocks; i++) {
        if (!s_is_base(f->blocks[i].type))
            continue;
        if (f->blocks[i].time == f->blocks[j].time && (same == SIZE_MAX || i < j))
            same = i;
        if (i < j)
            before = i;
        else if (after == SIZE_MAX)
            after = i;
    }
    return same != SIZE_MAX ? same : before != SIZE_MAX ? before : after;
}

size_t vem_pgrows_sample_of(const vem_hj1239_frame_t *f, size_t j)
{
    uint8_t type = f->blocks[j].type;
    if (s_is_base(type))
        return j;
    if (!s_is_aux(type))
        return SIZE_MAX;
    size_t base = s_base_of(f, j);
    return base == SIZE_MAX ? j : base;
}

/* ---- frames: the samples of a frame in one row ------------------------------------------------
 *
 * One obd_frames row per real-time or re-sent frame with samples; schema/0012_frames_packed.sql
 * decodes it back into obd_samples' columns. Each sample is first laid out as a full record
 * (the layout of 0007, VEM_PGROWS_SAMPLE_BYTES at most, big-endian):
 *
 *   0  int32  sample time - frame time, seconds
 *   4  uint8  block_idx
 *   5  uint8  block type byte (0x02 stream, 0x03 twc, 0x05 twc_nox, 0x04 hybrid, 0x80 supp.)
 *   6  uint16 frame_seq (the block's own serial in the per-block layout, else the frame's)
 *   8  the sample fields at their wire widths (pos_status in 2 bytes), in four groups: those
 *      of a stream block (to 46), the supplementary block's (to 63), the two-way catalyst's
 *      own (to 68), the hybrid block's (to 76). Each holds the raw wire value when it is a
 *      measurement (raw <= max_raw), else all ones; lon and lat carry the hemisphere of their
 *      block's position status in bit 31.
 *
 * The full record's length is the end of the last group any sample of the frame uses (46 for
 * a diesel frame of stream blocks). What is stored packs those records, since a row of
 * fewer bytes is what lets more frames share a page:
 *
 *   samples  a 16-byte frame head, then per sample the full record without its 8-byte head
 *            and with lon, lat and odometer as 16-bit differences (rec_len = full - 14 bytes:
 *            32, 49, 54 or 62):
 *              head 0 int32 lon0, 4 int32 lat0 (signed: south and west below zero),
 *                   8 uint32 odometer0, 12 int16 dt0, 14 uint8 idx0 | step << 7,
 *                   15 uint8 the block type
 *              record 26 lon - lon0 + 32767, 28 lat - lat0 + 32767, 30 odometer - odometer0
 *                   + 32767, each uint16, all ones for no value
 *   meta     NULL when the samples are regular: sample k at frame time + dt0 + k * step
 *            (step 0 or 1 s), block idx0 + k, every block of the head's type, each with the
 *            frame's serial; else every sample's 8-byte head as in the full record
 *   pos      NULL when every difference fits; else every sample's lon, lat and odometer as in
 *            the full record (12 bytes), and the differences all ones
 *
 * Raw values rather than the computed ones keep the record as small as the wire's, and the
 * view gets 0007's float8 exactly: every field's value rounded to its decimals is
 * (raw * M + A) / 10^decimals for integers M, A (check_pgrows proves it for every raw value),
 * the same division the row-per-sample code did. invalid/abnormal are the sorted field names
 * as before, joined by commas, one text[] element per sample (NULL: none), the column NULL
 * when no sample of the frame has any. */

/* Where each sample field lies in a record; where each group ends. */
static const uint8_t s_slot_at[S_SAMPLE_FIELDS] = {
    [VEM_HJ1239_F_SPEED] = 8,       [VEM_HJ1239_F_BARO] = 10,        [VEM_HJ1239_F_TORQUE] = 11,
    [VEM_HJ1239_F_FRICTION] = 12,   [VEM_HJ1239_F_RPM] = 13,         [VEM_HJ1239_F_FUEL_RATE] = 15,
    [VEM_HJ1239_F_NOX_UP] = 17,     [VEM_HJ1239_F_NOX_DOWN] = 19,    [VEM_HJ1239_F_REAGENT] = 21,
    [VEM_HJ1239_F_INTAKE] = 22,     [VEM_HJ1239_F_SCR_IN] = 24,      [VEM_HJ1239_F_SCR_OUT] = 26,
    [VEM_HJ1239_F_DPF_DP] = 28,     [VEM_HJ1239_F_COOLANT] = 30,     [VEM_HJ1239_F_FUEL_LEVEL] = 31,
    [VEM_HJ1239_F_POS_STATUS] = 32, [VEM_HJ1239_F_LON] = 34,         [VEM_HJ1239_F_LAT] = 38,
    [VEM_HJ1239_F_ODOMETER] = 42,   [VEM_HJ1239_F_TORQUE_MODE] = 46, [VEM_HJ1239_F_PEDAL] = 47,
    [VEM_HJ1239_F_FUEL_TOTAL] = 48, [VEM_HJ1239_F_UREA_TANK] = 52,   [VEM_HJ1239_F_UREA_DOSE] = 53,
    [VEM_HJ1239_F_UREA_TOTAL] = 57, [VEM_HJ1239_F_DPF_EXHAUST] = 61, [VEM_HJ1239_F_O2_UP] = 63,
    [VEM_HJ1239_F_O2_DOWN] = 65,    [VEM_HJ1239_F_CATALYST] = 66,    [VEM_HJ1239_F_MOTOR_RPM] = 68,
    [VEM_HJ1239_F_MOTOR_LOAD] = 70, [VEM_HJ1239_F_BATTERY_V] = 71,   [VEM_HJ1239_F_BATTERY_A] = 73,
    [VEM_HJ1239_F_SOC] = 75,
};
static const uint8_t s_group_end[] = {46, 63, 68, VEM_PGROWS_SAMPLE_BYTES};

/* Bytes of a field in the record. */
static unsigned s_slot_width(unsigned fid)
{
    return fid == VEM_HJ1239_F_POS_STATUS ? 2 : vem_hj1239_field_info(fid)->width;
}

/* The end of the group a field's slot is in. */
static unsigned s_slot_end(unsigned fid)
{
    unsigned g = 0;
    while (s_slot_at[fid] >= s_group_end[g])
        g++;
    return s_group_end[g];
}

static void s_slot(uint8_t *rec, unsigned fid, uint32_t v)
{
    uint8_t *p = rec + s_slot_at[fid];
    unsigned width = s_slot_width(fid);
    for (unsigned k = 0; k < width; k++)
        p[k] = (uint8_t)(v >> (8 * (width - 1 - k)));
}

/* Appends the names (sorted) joined by commas, NUL-terminated, to s; false when none. */
static bool s_join_names(char *s, size_t cap, const char **names, size_t n)
{
    qsort(names, n, sizeof names[0], s_cmp_names);
    size_t len = 0;
    s[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(s + len, cap - len, "%s%s", i ? "," : "", names[i]);
        if (w < 0 || (size_t)w >= cap - len)
            break; /* cannot happen: cap holds every field name */
        len += (size_t)w;
    }
    return n > 0;
}

/* The whole record of one sample into rec (VEM_PGROWS_SAMPLE_BYTES): block idx (stream, twc or
 * twc_nox; or a hybrid/supplementary block with no sample to join) with the fields of its aux
 * blocks (aux[0..naux)); its invalid and abnormal names joined into inv/abn ("" for none).
 * Returns the end of the last group it uses. */
static unsigned s_pack_sample(uint8_t *rec, const vem_hj1239_frame_t *f, size_t idx,
                              const size_t *aux, size_t naux, char *inv, char *abn, size_t cap)
{
    const vem_hj1239_block_t *blk = &f->blocks[idx];
    const vem_hj1239_block_t *from[VEM_HJ1239_F_COUNT] = {0};
    for (size_t a = 0; a <= naux; a++) {
        const vem_hj1239_block_t *src = a == 0 ? blk : &f->blocks[aux[a - 1]];
        size_t nfields;
        const uint8_t *fields = vem_hj1239_block_fields(src->type, &nfields);
        for (size_t k = 0; k < nfields; k++)
            from[fields[k]] = src;
    }
    uint32_t dt = (uint32_t)(int32_t)(blk->time - f->time);
    uint16_t seq = (f->layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK) ? blk->seq : f->seq;
    uint8_t head[8] = {(uint8_t)(dt >> 24), (uint8_t)(dt >> 16), (uint8_t)(dt >> 8),  (uint8_t)dt,
                       (uint8_t)idx,        blk->type,           (uint8_t)(seq >> 8), (uint8_t)seq};
    memcpy(rec, head, sizeof head);
    unsigned end = s_group_end[0];
    for (unsigned fid = 0; fid < S_SAMPLE_FIELDS; fid++) {
        const vem_hj1239_field_info_t *fi = vem_hj1239_field_info(fid);
        const vem_hj1239_block_t *src = from[fid];
        if (src && s_slot_end(fid) > end)
            end = s_slot_end(fid);
        if (!src || src->raw[fid] > fi->max_raw) {
            s_slot(rec, fid, UINT32_MAX);
            continue;
        }
        uint32_t v = src->raw[fid];
        uint8_t pos = (uint8_t)src->raw[VEM_HJ1239_F_POS_STATUS];
        if ((fid == VEM_HJ1239_F_LON && (pos & 0x04)) || (fid == VEM_HJ1239_F_LAT && (pos & 0x02)))
            v |= UINT32_C(0x80000000);
        s_slot(rec, fid, v);
    }
    const char *invalid[VEM_HJ1239_F_COUNT], *abnormal[VEM_HJ1239_F_COUNT];
    size_t ninvalid, nabnormal;
    s_novalue_names(from, invalid, &ninvalid, abnormal, &nabnormal);
    s_join_names(inv, cap, invalid, ninvalid);
    s_join_names(abn, cap, abnormal, nabnormal);
    return end;
}

/* text[] of n elements, NULL where items[i] is empty; the whole value NULL when all are. */
static void s_sparse_text_array(vem_pgrows_buf_t *b, char (*items)[S_NAMES_CAP], size_t n)
{
    size_t len = 20, nnull = 0;
    for (size_t i = 0; i < n; i++) {
        nnull += items[i][0] == '\0';
        len += 4 + strlen(items[i]);
    }
    if (nnull == n) {
        s_null(b);
        return;
    }
    s_u32(b, (uint32_t)len);
    s_u32(b, 1);
    s_u32(b, nnull ? 1 : 0);
    s_u32(b, S_TEXT_OID);
    s_u32(b, (uint32_t)n);
    s_u32(b, 1);
    for (size_t i = 0; i < n; i++) {
        if (items[i][0] == '\0')
            s_null(b);
        else
            s_str(b, items[i]);
    }
}

/* A position in a full record (bit 31 the southern or western hemisphere) as a signed value
 * in *v; false for no value, and for a signed zero (-0 is kept only by the full form). */
static bool s_signed_pos(uint32_t raw, int64_t *v)
{
    if (raw == UINT32_MAX || raw == UINT32_C(0x80000000))
        return false;
    *v = raw & UINT32_C(0x80000000) ? -(int64_t)(raw & INT32_MAX) : (int64_t)raw;
    return true;
}

/* How a frame's full records pack (see above). */
typedef struct {
    bool regular;                             /* no meta column */
    bool fits;                                /* no pos column */
    int64_t base[3];                          /* lon0, lat0, odometer0 */
    uint16_t delta[VEM_HJ1239_MAX_BLOCKS][3]; /* each sample's, as stored (all ones: none) */
    int32_t dt0;
    uint8_t step, idx0, type;
} s_pack_t;

#define S_DELTA_MAX 32767 /* a difference is stored + S_DELTA_MAX in 16 bits; all ones: none */

/* The value of a position slot's raw bytes (0 lon, 1 lat, 2 odometer); false for none. */
static bool s_pos_value(uint32_t raw, unsigned which, int64_t *v)
{
    if (which < 2)
        return s_signed_pos(raw, v);
    *v = raw;
    return raw != UINT32_MAX;
}

static void s_plan(s_pack_t *pk, uint8_t (*recs)[VEM_PGROWS_SAMPLE_BYTES], size_t n, uint16_t seq)
{
    const uint8_t *r0 = recs[0];
    *pk = (s_pack_t){.regular = true, .fits = true};
    pk->dt0 = (int32_t)vem_hj1239_be32(r0);
    pk->idx0 = r0[4];
    pk->type = r0[5];
    int64_t step = n > 1 ? (int64_t)(int32_t)vem_hj1239_be32(recs[1]) - pk->dt0 : 0;
    pk->regular = pk->dt0 >= INT16_MIN && pk->idx0 < 128 && (step == 0 || step == 1) &&
                  pk->dt0 + step * (int64_t)(n - 1) <= INT16_MAX;
    pk->step = (uint8_t)(pk->regular ? step : 0);
    bool have[3] = {false, false, false};
    for (size_t k = 0; k < n; k++) {
        const uint8_t *rec = recs[k];
        pk->regular =
            pk->regular && (int32_t)vem_hj1239_be32(rec) == pk->dt0 + (int32_t)(k * pk->step) &&
            rec[4] == pk->idx0 + k && rec[5] == pk->type && vem_hj1239_be16(rec + 6) == seq;
        for (unsigned w = 0; w < 3; w++) {
            uint32_t raw = vem_hj1239_be32(rec + s_slot_at[VEM_HJ1239_F_LON] + 4 * w);
            int64_t v;
            pk->delta[k][w] = UINT16_MAX;
            if (!s_pos_value(raw, w, &v)) {
                pk->fits = pk->fits && raw == UINT32_MAX; /* -0 needs the full form */
                continue;
            }
            if (!have[w]) {
                have[w] = true;
                pk->base[w] = v;
            }
            int64_t d = v - pk->base[w];
            pk->fits = pk->fits && d >= -S_DELTA_MAX && d <= S_DELTA_MAX;
            pk->delta[k][w] = (uint16_t)(d + S_DELTA_MAX);
        }
    }
    if (!pk->regular)
        pk->dt0 = pk->idx0 = pk->type = pk->step = 0;
    if (!pk->fits)
        pk->base[0] = pk->base[1] = pk->base[2] = 0;
}

/* The packed samples column: head, then each record (see above). */
static void s_packed(vem_pgrows_buf_t *b, const s_pack_t *pk,
                     uint8_t (*recs)[VEM_PGROWS_SAMPLE_BYTES], size_t n, unsigned full_len)
{
    unsigned pos_at = s_slot_at[VEM_HJ1239_F_LON], pos_end = s_slot_at[VEM_HJ1239_F_ODOMETER] + 4;
    s_u32(b, (uint32_t)(VEM_PGROWS_PACK_HEAD + n * (full_len - VEM_PGROWS_PACK_SAVES)));
    s_u32(b, (uint32_t)pk->base[0]);
    s_u32(b, (uint32_t)pk->base[1]);
    s_u32(b, (uint32_t)pk->base[2]);
    s_u16(b, (uint16_t)(int16_t)pk->dt0);
    uint8_t tail[2] = {(uint8_t)(pk->idx0 | pk->step << 7), pk->type};
    vem_pgrows_buf_put(b, tail, sizeof tail);
    for (size_t k = 0; k < n; k++) {
        const uint8_t *rec = recs[k];
        vem_pgrows_buf_put(b, rec + 8, pos_at - 8);
        for (unsigned w = 0; w < 3; w++)
            s_u16(b, pk->fits ? pk->delta[k][w] : UINT16_MAX);
        vem_pgrows_buf_put(b, rec + pos_end, full_len - pos_end);
    }
}

/* Bytes [from, from + len) of every record, one after the other, as a bytea (meta, pos). */
static void s_slices(vem_pgrows_buf_t *b, uint8_t (*recs)[VEM_PGROWS_SAMPLE_BYTES], size_t n,
                     unsigned from, unsigned len)
{
    s_u32(b, (uint32_t)(n * len));
    for (size_t k = 0; k < n; k++)
        vem_pgrows_buf_put(b, recs[k] + from, len);
}

/* The frame's samples as one obd_frames row (none when it has no sample). */
static void s_samples(vem_pgrows_t *r, const vem_hj1239_frame_t *f, int64_t received_us)
{
    size_t base[VEM_HJ1239_MAX_BLOCKS];
    for (size_t j = 0; j < f->nblocks; j++)
        base[j] = s_is_aux(f->blocks[j].type) ? s_base_of(f, j) : SIZE_MAX;
    size_t n = 0;
    unsigned rec_len = s_group_end[0];
    bool wide = false;
    for (size_t i = 0; i < f->nblocks; i++) {
        uint8_t type = f->blocks[i].type;
        size_t aux[VEM_HJ1239_MAX_BLOCKS], naux = 0;
        if (s_is_base(type)) {
            for (size_t j = 0; j < f->nblocks; j++)
                if (base[j] == i)
                    aux[naux++] = j;
        } else if (!s_is_aux(type) || base[i] != SIZE_MAX) {
            continue; /* OBD, vendor, or joined to a sample */
        }
        unsigned end =
            s_pack_sample(r->recs[n], f, i, aux, naux, r->invalid[n], r->abnormal[n], S_NAMES_CAP);
        if (end > rec_len)
            rec_len = end;
        int64_t dt = f->blocks[i].time - f->time;
        wide |= dt < -VEM_PGROWS_FRAME_SPAN_S || dt > VEM_PGROWS_FRAME_SPAN_S;
        n++;
    }
    if (n == 0)
        return;
    s_pack_t pk;
    s_plan(&pk, r->recs, n, f->seq);
    vem_pgrows_buf_t *b = &r->rows[VEM_PGROWS_SAMPLES];
    s_u16(b, (uint16_t)s_columns[VEM_PGROWS_SAMPLES]);
    s_int2(b, (int16_t)n); /* first: pgwrite counts samples from it (VEM_PGROWS_NSAMPLES_AT) */
    s_int2(b, (int16_t)(rec_len - VEM_PGROWS_PACK_SAVES));
    s_wire_text(b, f->vin, sizeof f->vin);
    s_time(b, f->time * 1000000);
    s_time(b, received_us);
    s_int4(b, f->seq);
    s_bool(b, f->cmd == VEM_HJ1239_CMD_RESEND);
    s_bool(b, wide);
    s_packed(b, &pk, r->recs, n, rec_len);
    s_sparse_text_array(b, r->invalid, n);
    s_sparse_text_array(b, r->abnormal, n);
    if (pk.regular)
        s_null(b);
    else
        s_slices(b, r->recs, n, 0, 8);
    if (pk.fits)
        s_null(b);
    else
        s_slices(b, r->recs, n, s_slot_at[VEM_HJ1239_F_LON], 12);
    r->nrows[VEM_PGROWS_SAMPLES]++;
    r->samples += n;
    s_day(r, f->time);
}

static void s_obd(vem_pgrows_t *r, const vem_hj1239_frame_t *f, size_t idx, int64_t received_us)
{
    static const char *const protocols[] = {"iso15765", "iso27145", "sae_j1939"};
    const vem_hj1239_block_t *blk = &f->blocks[idx];
    const vem_hj1239_obd_t *ob = &f->obd[blk->obd];
    vem_pgrows_buf_t *b = &r->rows[VEM_PGROWS_INFO];
    s_row_head(b, VEM_PGROWS_INFO, f, blk, idx, received_us);
    uint32_t proto = blk->raw[VEM_HJ1239_F_OBD_PROTOCOL], mil = blk->raw[VEM_HJ1239_F_MIL];
    if (proto < 3)
        s_str(b, protocols[proto]);
    else
        s_null(b);
    if (mil <= 1)
        s_bool(b, mil);
    else
        s_null(b);
    static const vem_hj1239_field_t counts[] = {VEM_HJ1239_F_DIAG_SUPPORTED,
                                                VEM_HJ1239_F_DIAG_READY};
    for (size_t k = 0; k < 2; k++) {
        if (blk->novalue >> counts[k] & 1)
            s_null(b);
        else
            s_int4(b, (int32_t)blk->raw[counts[k]]);
    }
    s_wire_text(b, ob->vin, sizeof ob->vin);
    s_wire_text(b, ob->scin, sizeof ob->scin);
    s_wire_text(b, ob->cvn, sizeof ob->cvn);
    s_hex(b, ob->iupr, sizeof ob->iupr);
    if (blk->novalue >> VEM_HJ1239_F_DTC_COUNT & 1)
        s_null(b);
    else
        s_int4(b, (int32_t)blk->raw[VEM_HJ1239_F_DTC_COUNT]);
    char hex[VEM_HJ1239_MAX_DTCS][9];
    const char *dtcs[VEM_HJ1239_MAX_DTCS];
    size_t ndtcs = 0;
    for (size_t k = 0; k < ob->dtc_n && ob->dtc_first + k < VEM_HJ1239_MAX_DTCS; k++) {
        uint32_t dtc = f->dtcs[ob->dtc_first + k];
        static const char digits[] = "0123456789abcdef";
        for (int d = 0; d < 8; d++)
            hex[ndtcs][d] = digits[dtc >> (28 - 4 * d) & 15];
        hex[ndtcs][8] = '\0';
        dtcs[ndtcs] = hex[ndtcs];
        ndtcs++;
    }
    s_text_array(b, dtcs, ndtcs, false);
    size_t nfields;
    const uint8_t *fields = vem_hj1239_block_fields(blk->type, &nfields);
    const vem_hj1239_block_t *from[VEM_HJ1239_F_COUNT] = {0};
    for (size_t k = 0; k < nfields; k++)
        from[fields[k]] = blk;
    const char *invalid[VEM_HJ1239_F_COUNT], *abnormal[VEM_HJ1239_F_COUNT];
    size_t ninvalid, nabnormal;
    s_novalue_names(from, invalid, &ninvalid, abnormal, &nabnormal);
    s_name_array(b, invalid, ninvalid);
    s_name_array(b, abnormal, nabnormal);
    r->nrows[VEM_PGROWS_INFO]++;
}

static void s_event(vem_pgrows_t *r, const vem_hj1239_frame_t *f, int64_t received_us)
{
    vem_pgrows_buf_t *b = &r->rows[VEM_PGROWS_EVENTS];
    s_u16(b, (uint16_t)s_columns[VEM_PGROWS_EVENTS]);
    s_wire_text(b, f->vin, sizeof f->vin);
    s_time(b, f->time * 1000000);
    s_str(b, vem_hj1239_cmd_name(f->cmd));
    s_int4(b, f->cmd == VEM_HJ1239_CMD_ACTIVATION ? 0 : f->seq);
    s_time(b, received_us);
    if (f->cmd == VEM_HJ1239_CMD_LOGIN)
        s_wire_text(b, f->iccid, sizeof f->iccid);
    else
        s_null(b);
    double lon, lat;
    if (f->cmd == VEM_HJ1239_CMD_REMOVAL_ALARM) {
        s_bool(b, vem_hj1239_pos_valid(f->pos_status));
        if (vem_hj1239_position(f->pos_status, f->lon_raw, false, &lon))
            s_float8(b, lon);
        else
            s_null(b);
        if (vem_hj1239_position(f->pos_status, f->lat_raw, true, &lat))
            s_float8(b, lat);
        else
            s_null(b);
    } else {
        s_null(b);
        s_null(b);
        s_null(b);
    }
    if (f->cmd == VEM_HJ1239_CMD_ACTIVATION) {
        s_bytes(b, f->chip_id, sizeof f->chip_id);
        s_bytes(b, f->pubkey, sizeof f->pubkey);
        s_wire_text(b, f->act_vin, sizeof f->act_vin);
    } else {
        s_null(b);
        s_null(b);
        s_null(b);
    }
    r->nrows[VEM_PGROWS_EVENTS]++;
}

unsigned vem_pgrows_frame(vem_pgrows_t *r, const vem_hj1239_frame_t *f, int64_t received_us)
{
    unsigned before =
        r->nrows[VEM_PGROWS_SAMPLES] + r->nrows[VEM_PGROWS_INFO] + r->nrows[VEM_PGROWS_EVENTS];
    switch (f->cmd) {
    case VEM_HJ1239_CMD_REALTIME:
    case VEM_HJ1239_CMD_RESEND:
        for (size_t i = 0; i < f->nblocks; i++) {
            if (f->blocks[i].type == VEM_HJ1239_BLOCK_OBD) {
                s_obd(r, f, i, received_us);
                s_day(r, f->blocks[i].time);
            }
        }
        s_samples(r, f, received_us);
        break;
    case VEM_HJ1239_CMD_LOGIN:
    case VEM_HJ1239_CMD_LOGOUT:
    case VEM_HJ1239_CMD_REMOVAL_ALARM:
    case VEM_HJ1239_CMD_ACTIVATION:
        if (!f->has_time)
            break;
        s_event(r, f, received_us);
        s_day(r, f->time);
        break;
    default:
        break;
    }
    return r->nrows[VEM_PGROWS_SAMPLES] + r->nrows[VEM_PGROWS_INFO] + r->nrows[VEM_PGROWS_EVENTS] -
           before;
}

static void s_str_or_null(vem_pgrows_buf_t *b, const char *s)
{
    if (s && *s)
        s_str(b, s);
    else
        s_null(b);
}

void vem_pgrows_violation(vem_pgrows_t *r, const vem_pgviolation_t *v)
{
    vem_pgrows_buf_t *b = &r->rows[VEM_PGROWS_VIOLATIONS];
    s_u16(b, (uint16_t)s_columns[VEM_PGROWS_VIOLATIONS]);
    s_str(b, v->violation_id);
    s_str(b, v->rule);
    s_str(b, v->clause);
    s_str_or_null(b, v->vin);
    s_str_or_null(b, v->plate);
    s_str_or_null(b, v->plate_color);
    s_time(b, v->first_us);
    s_time(b, v->last_us);
    if (isfinite(v->measured))
        s_float8(b, v->measured);
    else
        s_null(b);
    if (isfinite(v->limit))
        s_float8(b, v->limit);
    else
        s_null(b);
    s_str_or_null(b, v->unit);
    /* jsonb in binary: a version byte (1), then the text */
    size_t n = strlen(v->evidence);
    s_u32(b, (uint32_t)(n + 1));
    uint8_t version = 1;
    vem_pgrows_buf_put(b, &version, 1);
    vem_pgrows_buf_put(b, v->evidence, n);
    s_str(b, v->severity);
    if (v->received_us) /* else not known: merged by last_at (schema/0016_merge_by_input.sql) */
        s_time(b, v->received_us);
    else
        s_null(b);
    s_int8(b, (int64_t)v->spool_seq);
    s_int8(b, v->emission);
    r->nrows[VEM_PGROWS_VIOLATIONS]++;
}

void vem_pgrows_quarantine(vem_pgrows_t *r, int64_t received_us, uint64_t spool_seq,
                           const char *source, const char *error_class, const char *detail,
                           int32_t offset, const uint8_t *vin, const uint8_t *raw, size_t len)
{
    vem_pgrows_buf_t *b = &r->rows[VEM_PGROWS_QUARANTINE];
    s_u16(b, (uint16_t)s_columns[VEM_PGROWS_QUARANTINE]);
    s_time(b, received_us);
    s_int8(b, (int64_t)spool_seq);
    s_str(b, source);
    s_str(b, error_class);
    if (detail) {
        /* details are our own ASCII text, but keep the server's UTF-8 check happy regardless */
        s_wire_text(b, (const uint8_t *)detail, strlen(detail));
    } else {
        s_null(b);
    }
    if (offset >= 0)
        s_int4(b, offset);
    else
        s_null(b);
    if (vin)
        s_wire_text(b, vin, 17);
    else
        s_null(b);
    s_bytes(b, raw, len);
    r->nrows[VEM_PGROWS_QUARANTINE]++;
    s_day(r, (received_us >= 0 ? received_us : received_us - 999999) / 1000000);
}

/* ---- roadside readings ---------------------------------------------------------------------- */

/* The columns of rsd_readings after received_at, in COPY order: 't' text, 'i' int4, 'f' float8,
 * 'b' bool; each from the reading's key of the same name (null or absent: NULL, but fuel
 * "unknown"). */
static const struct {
    const char *key;
    char type;
} s_reading_cols[] = {
    {"lane", 'i'},        {"plate", 't'},        {"plate_color", 't'},  {"vin", 't'},
    {"fuel", 't'},        {"speed_kmh", 'f'},    {"accel_ms2", 'f'},    {"vsp_kw_t", 'f'},
    {"opacity_pct", 'f'}, {"k_m1", 'f'},         {"ringelmann", 'i'},   {"no_ppm", 'f'},
    {"co_pct", 'f'},      {"hc_ppm", 'f'},       {"co2_pct", 'f'},      {"wind_ms", 'f'},
    {"temp_c", 'f'},      {"humidity_pct", 'f'}, {"pressure_kpa", 'f'}, {"slope_pct", 'f'},
    {"image_ref", 't'},   {"valid", 'b'},        {"counted", 'b'},      {"invalid_reason", 't'},
};

bool vem_pgrows_reading(vem_pgrows_t *r, const json_t *reading, int64_t received_us)
{
    const char *station = json_string_value(json_object_get(reading, "station_id"));
    const char *id = json_string_value(json_object_get(reading, "reading_id"));
    const json_t *t = json_object_get(reading, "time_us");
    if (!station || !id || !json_is_integer(t))
        return false;
    int64_t time_us = (int64_t)json_integer_value(t);
    vem_pgrows_buf_t *b = &r->rows[VEM_PGROWS_READINGS];
    s_u16(b, (uint16_t)s_columns[VEM_PGROWS_READINGS]);
    s_str(b, station);
    s_str(b, id);
    s_time(b, time_us);
    s_time(b, received_us);
    for (size_t i = 0; i < sizeof s_reading_cols / sizeof s_reading_cols[0]; i++) {
        const json_t *v = json_object_get(reading, s_reading_cols[i].key);
        switch (s_reading_cols[i].type) {
        case 't':
            if (json_is_string(v))
                s_bytes(b, json_string_value(v), json_string_length(v));
            else if (strcmp(s_reading_cols[i].key, "fuel") == 0)
                s_str(b, "unknown"); /* FIELDS.md: not reported is unknown */
            else
                s_null(b);
            break;
        case 'i': /* an integral number, as the parser accepts it (2 or 2.0) */
            if (json_is_number(v))
                s_int4(b, (int32_t)json_number_value(v));
            else
                s_null(b);
            break;
        case 'f':
            if (json_is_number(v))
                s_float8(b, json_number_value(v));
            else
                s_null(b);
            break;
        default:
            if (json_is_boolean(v))
                s_bool(b, json_is_true(v));
            else
                s_null(b);
            break;
        }
    }
    r->nrows[VEM_PGROWS_READINGS]++;
    s_day(r, (time_us >= 0 ? time_us : time_us - 999999) / 1000000);
    return true;
}
