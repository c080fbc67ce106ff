/* hj1239_decode — the frame decoder: envelope, every command's data unit, and the strict walks
 * of the real-time layouts. See hj1239.h; hj1239_int.h lists the other parts.
 *
 * Design. Decoding is one pass over the frame into caller storage. Real-time data units come
 * in several layouts (GB 17691, HJ 1239 and two field deviations) that the bytes do not name;
 * the right one is the one whose block lengths add up exactly to the data-unit length. The
 * decoder first tries each layout strictly, HJ 1239 first, and fills blocks as it goes, so the
 * common frame costs one walk. When no layout fits strictly it walks each layout again skipping
 * vendor text items (0x20, 32 non-NUL bytes, NUL: what field terminals put before, between and
 * after standard blocks); their length is in their bytes, so this walk never chooses and never
 * looks inside an item (a block type in the text is no block). Only when that fails too does
 * hj1239_tolerant.c look for vendor items of unknown length. Bounds: each strict or text-item
 * walk is one pass per layout (6 layouts), the search one backward and one forward pass per
 * layout over at most VEM_HJ1239_SEARCH_MAX bytes, so decoding is linear in the data unit with
 * no backtracking; vendor items per frame are capped at VEM_HJ1239_MAX_VENDOR.
 *
 * Block fields stay raw (wire values) so the encoder can write them back; a per-block mask says
 * which have no measurement. Block times share their day with the frame time almost always, so
 * the day number is cached within a frame. */
#include "hj1239_int.h"

#include <stdarg.h>
#include <stdio.h>

/* ---- errors and times ---------------------------------------------------------------------- */

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

/* Wire time to epoch with the day cached; false for an impossible date or time. */
static inline __attribute__((always_inline)) bool s_time(vem_hj1239_hot_t *h, const uint8_t *w,
                                                         int64_t *out)
{
    uint32_t key = vem_hj1239_be16(w) << 8 | w[2]; /* YY MM DD as a cache key; never UINT32_MAX */
    if (key != h->day_key) {
        if (!vem_hj1239_date_ok(w))
            return false;
        h->day_key = key;
        h->day_base = vem_hj1239_wire_days(w[0], w[1], w[2]) * 86400 - VEM_HJ1239_BEIJING_S;
    }
    if (!vem_hj1239_clock_ok(w))
        return false;
    *out = h->day_base + w[3] * 3600 + w[4] * 60 + w[5];
    return true;
}

void vem_hj1239_note_fail(vem_hj1239_ctx_t *c, size_t at, const char *fmt, ...)
{
    if (at < c->fail_at && c->fail_at != SIZE_MAX)
        return;
    c->fail_at = at;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail_detail, sizeof c->fail_detail, fmt, ap);
    va_end(ap);
}

/* ---- decoding: blocks ---------------------------------------------------------------------- */

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
 * when one is set are the fields checked one by one. Must agree with vem_hj1239_fields (the tests
 * compare it with the table for every marker). */
static inline __attribute__((always_inline)) void s_read_stream(const uint8_t *p,
                                                                vem_hj1239_block_t *b)
{
    uint32_t *r = b->raw;
    r[VEM_HJ1239_F_SPEED] = vem_hj1239_be16(p);
    r[VEM_HJ1239_F_BARO] = p[2];
    r[VEM_HJ1239_F_TORQUE] = p[3];
    r[VEM_HJ1239_F_FRICTION] = p[4];
    r[VEM_HJ1239_F_RPM] = vem_hj1239_be16(p + 5);
    r[VEM_HJ1239_F_FUEL_RATE] = vem_hj1239_be16(p + 7);
    r[VEM_HJ1239_F_NOX_UP] = vem_hj1239_be16(p + 9);
    r[VEM_HJ1239_F_NOX_DOWN] = vem_hj1239_be16(p + 11);
    r[VEM_HJ1239_F_REAGENT] = p[13];
    r[VEM_HJ1239_F_INTAKE] = vem_hj1239_be16(p + 14);
    r[VEM_HJ1239_F_SCR_IN] = vem_hj1239_be16(p + 16);
    r[VEM_HJ1239_F_SCR_OUT] = vem_hj1239_be16(p + 18);
    r[VEM_HJ1239_F_DPF_DP] = vem_hj1239_be16(p + 20);
    r[VEM_HJ1239_F_COOLANT] = p[22];
    r[VEM_HJ1239_F_FUEL_LEVEL] = p[23];
    r[VEM_HJ1239_F_POS_STATUS] = p[24];
    uint32_t lon = vem_hj1239_be32(p + 25), lat = vem_hj1239_be32(p + 29),
             odo = vem_hj1239_be32(p + 33);
    r[VEM_HJ1239_F_LON] = lon;
    r[VEM_HJ1239_F_LAT] = lat;
    r[VEM_HJ1239_F_ODOMETER] = odo;
    uint64_t m = s_nv32(lon, 180000000, VEM_HJ1239_F_LON) |
                 s_nv32(lat, 90000000, VEM_HJ1239_F_LAT) |
                 s_nv32(odo, 0xFDFFFFFF, VEM_HJ1239_F_ODOMETER);
    uint64_t tops =
        (s_bytes_ge_fb(vem_hj1239_load64(p)) & vem_hj1239_load64(s_stream_tops)) |
        (s_bytes_ge_fb(vem_hj1239_load64(p + 8)) & vem_hj1239_load64(s_stream_tops + 8)) |
        (s_bytes_ge_fb(vem_hj1239_load64(p + 16)) & vem_hj1239_load64(s_stream_tops + 16));
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
        switch (vem_hj1239_fields[f].width) {
        case 1:
            b->raw[f] = p[0];
            break;
        case 2:
            b->raw[f] = vem_hj1239_be16(p);
            break;
        default:
            b->raw[f] = vem_hj1239_be32(p);
            break;
        }
        p += vem_hj1239_fields[f].width;
    }
    b->novalue = vem_hj1239_novalue(b);
}

/* OBD strings and DTCs of a block whose body starts at q and holds ndtc DTCs. */
static __attribute__((noinline)) bool s_read_obd(vem_hj1239_ctx_t *c, vem_hj1239_block_t *b,
                                                 const uint8_t *q, size_t ndtc, size_t at)
{
    vem_hj1239_frame_t *f = c->f;
    if (f->nobd >= VEM_HJ1239_MAX_OBD) {
        vem_hj1239_note_fail(c, at, "more than %d OBD blocks", VEM_HJ1239_MAX_OBD);
        return false;
    }
    if (f->ndtcs + ndtc > VEM_HJ1239_MAX_DTCS) {
        vem_hj1239_note_fail(c, at, "more than %d DTCs", VEM_HJ1239_MAX_DTCS);
        return false;
    }
    vem_hj1239_obd_t *o = &f->obd[f->nobd];
    b->obd = f->nobd++;
    b->raw[VEM_HJ1239_F_OBD_PROTOCOL] = q[0];
    b->raw[VEM_HJ1239_F_MIL] = q[1];
    b->raw[VEM_HJ1239_F_DIAG_SUPPORTED] = vem_hj1239_be16(q + 2);
    b->raw[VEM_HJ1239_F_DIAG_READY] = vem_hj1239_be16(q + 4);
    memcpy(o->vin, q + 6, 17);
    memcpy(o->scin, q + 23, 18);
    memcpy(o->cvn, q + 41, 18);
    memcpy(o->iupr, q + 59, 36);
    b->raw[VEM_HJ1239_F_DTC_COUNT] = q[95];
    o->dtc_first = f->ndtcs;
    o->dtc_n = (uint16_t)ndtc;
    for (size_t i = 0; i < ndtc; i++)
        f->dtcs[f->ndtcs++] = vem_hj1239_be32(q + 96 + 4 * i);
    b->novalue = vem_hj1239_novalue(b);
    return true;
}

/* Fills block b from the standard block at d[p] of length len. Returns false when the frame
 * holds more OBD blocks or DTCs than vem_hj1239_frame_t has room for (noted). */
static inline __attribute__((always_inline)) bool
s_fill_block(vem_hj1239_ctx_t *c, vem_hj1239_hot_t *h, vem_hj1239_block_t *b, size_t p, size_t len,
             bool with_serial, bool with_time)
{
    const uint8_t *q = h->d + p + 1;
    uint8_t type = q[-1];
    uint16_t seq = 0;
    int64_t t = h->ftime;
    if (with_serial) {
        seq = (uint16_t)vem_hj1239_be16(q);
        q += 2;
    }
    if (with_time) {
        if (!s_time(h, q, &t) && c->bad_time_at == SIZE_MAX)
            c->bad_time_at = VEM_HJ1239_DATA_AT + (size_t)(q - h->d);
        q += 6;
    }
    b->type = type;
    b->seq = seq;
    b->time = t;
    if (type == VEM_HJ1239_BLOCK_STREAM) {
        s_read_stream(q, b);
    } else if (type == VEM_HJ1239_BLOCK_OBD) {
        size_t head = (size_t)(q - (h->d + p));
        if (!s_read_obd(c, b, q, (len - head - 96) / 4, VEM_HJ1239_DATA_AT + p))
            return false;
    } else {
        s_read_generic(q, b);
    }
    return true;
}

/* Appends the block at d[p] to the frame; false when there is no room (noted). */
static inline __attribute__((always_inline)) bool s_add_block(vem_hj1239_ctx_t *c,
                                                              vem_hj1239_hot_t *h, size_t *nb,
                                                              size_t p, size_t len,
                                                              bool with_serial, bool with_time)
{
    if (*nb >= VEM_HJ1239_MAX_BLOCKS) {
        vem_hj1239_note_fail(c, VEM_HJ1239_DATA_AT + p, "more than %d blocks",
                             VEM_HJ1239_MAX_BLOCKS);
        return false;
    }
    if (!s_fill_block(c, h, &c->f->blocks[*nb], p, len, with_serial, with_time))
        return false;
    (*nb)++;
    return true;
}

bool vem_hj1239_add_block(vem_hj1239_ctx_t *c, vem_hj1239_hot_t *h, size_t *nb, size_t p,
                          size_t len, bool with_serial, bool with_time)
{
    return s_add_block(c, h, nb, p, len, with_serial, with_time);
}

bool vem_hj1239_add_vendor(vem_hj1239_ctx_t *c, size_t p, size_t len, size_t nb)
{
    vem_hj1239_frame_t *f = c->f;
    if (f->vendor_blocks >= VEM_HJ1239_MAX_VENDOR) {
        vem_hj1239_note_fail(c, VEM_HJ1239_DATA_AT + p, "more than %d vendor items",
                             VEM_HJ1239_MAX_VENDOR);
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
static inline __attribute__((always_inline)) int s_rt_strict(vem_hj1239_ctx_t *c, unsigned layout,
                                                             bool items)
{
    vem_hj1239_frame_t *f = c->f;
    const char *name = vem_hj1239_dialect_name(layout);
    bool bt = layout & VEM_HJ1239_LAYOUT_BLOCK_TIME;
    bool spb = layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK;
    size_t prefix = vem_hj1239_prefix(layout);
    vem_hj1239_hot_t h = c->hot;
    size_t p, nb = 0;
    vem_hj1239_reset_blocks(f);
    c->bad_time_at = SIZE_MAX;
    if (layout & VEM_HJ1239_LAYOUT_TYPE_FIRST) {
        size_t len = vem_hj1239_block_len(h.d, h.n, 6, prefix + 2);
        if (len == 0) {
            vem_hj1239_note_fail(c, VEM_HJ1239_DATA_AT + 6, "%s: no standard first block", name);
            return 0;
        }
        if (!s_add_block(c, &h, &nb, 6, len, true, bt))
            return 0;
        f->seq = f->blocks[0].seq;
        p = 6 + len;
    } else if (spb) {
        p = 6;
    } else {
        f->seq = (uint16_t)vem_hj1239_be16(h.d + 6);
        p = 8;
    }
    bool sig = false;
    while (p < h.n) {
        size_t len = vem_hj1239_block_len(h.d, h.n, p, prefix);
        if (len) {
            if (!s_add_block(c, &h, &nb, p, len, spb, bt))
                goto fail;
            p += len;
            continue;
        }
        if (bt && vem_hj1239_sig_fits(c, p)) {
            vem_hj1239_read_sig(h.d + p, &f->sig);
            sig = true;
            break;
        }
        if (items && vem_hj1239_text_item(h.d, h.n, p)) {
            if (!vem_hj1239_add_vendor(c, p, VEM_HJ1239_VENDOR_TEXT_LEN, nb))
                goto fail;
            p += VEM_HJ1239_VENDOR_TEXT_LEN;
            continue;
        }
        uint8_t t = h.d[p];
        if (vem_hj1239_body_lens[t])
            vem_hj1239_note_fail(
                c, VEM_HJ1239_DATA_AT + p,
                "%s: block 0x%02X at offset %zu needs more bytes than the %zu left", name, t,
                VEM_HJ1239_DATA_AT + p, h.n - p);
        else
            vem_hj1239_note_fail(c, VEM_HJ1239_DATA_AT + p,
                                 "%s: no standard block type at offset %zu (0x%02X)", name,
                                 VEM_HJ1239_DATA_AT + p, t);
        goto fail;
    }
    f->nblocks = (uint16_t)nb;
    f->has_sig = sig;
    c->hot.day_key = h.day_key;
    c->hot.day_base = h.day_base;
    if (bt && !sig) {
        vem_hj1239_note_fail(c, VEM_HJ1239_DATA_AT + h.n, "%s: no signature after the last block",
                             name);
        return 0;
    }
    if (spb) {
        if (nb == 0) {
            vem_hj1239_note_fail(c, VEM_HJ1239_DATA_AT + 6, "%s: no blocks", name);
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
static int s_rt_strict_any(vem_hj1239_ctx_t *c, unsigned layout)
{
    return s_rt_strict(c, layout, false);
}

/* The strict loop that also skips vendor text items: tried only when no layout fits strictly.
 * Deterministic (a text item starts with 0x20, which is no standard type and no signature
 * here, see vem_hj1239_text_item), so it costs one walk per layout. */
static __attribute__((noinline)) int s_rt_items(vem_hj1239_ctx_t *c, unsigned layout)
{
    return s_rt_strict(c, layout, true);
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

static vem_hj1239_status_t s_decode_realtime(vem_hj1239_ctx_t *c, vem_hj1239_error_t *err)
{
    vem_hj1239_frame_t *f = c->f;
    if (c->n < 8)
        return s_fail(err, VEM_HJ1239_MALFORMED_BODY, VEM_HJ1239_DATA_AT,
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
        vem_hj1239_reset_blocks(f);
        return s_fail(err, VEM_HJ1239_BAD_TIME, bad_time_at, "impossible block collection time");
    }
    if (vem_hj1239_tolerant(c))
        return VEM_HJ1239_OK;
    vem_hj1239_reset_blocks(f);
    if (c->n > VEM_HJ1239_SEARCH_MAX)
        vem_hj1239_note_fail(c, SIZE_MAX - 1,
                             "no strict layout fits, and vendor items are looked for only "
                             "in data units up to %d bytes",
                             VEM_HJ1239_SEARCH_MAX);
    return s_fail(err, VEM_HJ1239_MALFORMED_BODY,
                  c->fail_at >= SIZE_MAX - 1 ? VEM_HJ1239_DATA_AT : c->fail_at,
                  "no layout fits the %zu-byte data unit; furthest: %s", c->n, c->fail_detail);
}

/* ---- decoding: frames ---------------------------------------------------------------------- */

static vem_hj1239_status_t s_need_len(const vem_hj1239_ctx_t *c, size_t want, const char *what,
                                      vem_hj1239_error_t *err)
{
    if (c->n == want)
        return VEM_HJ1239_OK;
    return s_fail(err, VEM_HJ1239_MALFORMED_BODY, VEM_HJ1239_DATA_AT,
                  "%s data unit is %zu bytes, expected %zu", what, c->n, want);
}

static inline vem_hj1239_status_t s_frame_time(vem_hj1239_ctx_t *c, vem_hj1239_error_t *err)
{
    if (!s_time(&c->hot, c->d, &c->f->time))
        return s_fail(err, VEM_HJ1239_BAD_TIME, VEM_HJ1239_DATA_AT,
                      "impossible time %02u-%02u-%02u %02u:%02u:%02u", c->d[0], c->d[1], c->d[2],
                      c->d[3], c->d[4], c->d[5]);
    c->f->has_time = true;
    c->hot.ftime = c->f->time;
    return VEM_HJ1239_OK;
}

vem_hj1239_header_t vem_hj1239_header_form(const uint8_t *frame)
{
    uint8_t b = frame[3];
    return (b == 0x01 || b == 0x02 || b == 0x03 || b == 0xFE) ? VEM_HJ1239_HEADER_PLATFORM
                                                              : VEM_HJ1239_HEADER_TERMINAL;
}

const uint8_t *vem_hj1239_header_vin(const uint8_t *frame)
{
    return frame + (vem_hj1239_header_form(frame) == VEM_HJ1239_HEADER_PLATFORM ? 4 : 3);
}

size_t vem_hj1239_frame_len(const uint8_t *header)
{
    return vem_hj1239_be16(header + 22) + (size_t)VEM_HJ1239_MIN_FRAME;
}

bool vem_hj1239_envelope_ok(const uint8_t *buf, size_t len)
{
    return len >= VEM_HJ1239_MIN_FRAME && buf[0] == '#' && buf[1] == '#' &&
           vem_hj1239_cmd_known(buf[2]) && vem_hj1239_frame_len(buf) == len &&
           vem_hj1239_bcc(buf + 2, len - 3) == buf[len - 1];
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
    size_t n = vem_hj1239_be16(buf + 22);
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
    if (vem_hj1239_header_form(buf) == VEM_HJ1239_HEADER_PLATFORM) {
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
    vem_hj1239_reset_blocks(f);
    if (f->encryption != VEM_HJ1239_ENC_NONE && f->encryption != VEM_HJ1239_ENC_ABNORMAL &&
        f->encryption != VEM_HJ1239_ENC_INVALID) {
        const char *name = vem_hj1239_encryption_name(f->encryption);
        if (name)
            return s_fail(err, VEM_HJ1239_UNSUPPORTED_ENCRYPTION, 21, "data unit encrypted (%s)",
                          name);
        return s_fail(err, VEM_HJ1239_UNSUPPORTED_ENCRYPTION, 21, "unknown encryption byte 0x%02X",
                      f->encryption);
    }

    vem_hj1239_ctx_t c; /* not zero-filled: the detail buffer is written only on failure */
    c.f = f;
    c.d = buf + VEM_HJ1239_DATA_AT;
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
        f->seq = (uint16_t)vem_hj1239_be16(c.d + 6);
        memcpy(f->iccid, c.d + 8, 20);
        return VEM_HJ1239_OK;
    case VEM_HJ1239_CMD_LOGOUT:
        if ((st = s_need_len(&c, 8, "logout", err)) || (st = s_frame_time(&c, err)))
            return st;
        f->seq = (uint16_t)vem_hj1239_be16(c.d + 6);
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
        f->seq = (uint16_t)vem_hj1239_be16(c.d + 6);
        f->pos_status = c.d[8];
        f->lon_raw = vem_hj1239_be32(c.d + 9);
        f->lat_raw = vem_hj1239_be32(c.d + 13);
        return VEM_HJ1239_OK;
    case VEM_HJ1239_CMD_ACTIVATION:
        if (n < 6 + 16 + 64 + 17)
            return s_fail(err, VEM_HJ1239_MALFORMED_BODY, VEM_HJ1239_DATA_AT,
                          "activation data unit of %zu bytes is too short", n);
        if (!vem_hj1239_sig_fits(&c, 103))
            return s_fail(err, VEM_HJ1239_MALFORMED_BODY, VEM_HJ1239_DATA_AT + 103,
                          "activation signature does not fill the data unit");
        if ((st = s_frame_time(&c, err)))
            return st;
        memcpy(f->chip_id, c.d + 6, 16);
        memcpy(f->pubkey, c.d + 22, 64);
        memcpy(f->act_vin, c.d + 86, 17);
        vem_hj1239_read_sig(c.d + 103, &f->sig);
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
            return s_fail(err, VEM_HJ1239_MALFORMED_BODY, VEM_HJ1239_DATA_AT,
                          "%s data unit of %zu bytes has no time", vem_hj1239_cmd_name(f->cmd),
                          c.n);
        if ((st = s_frame_time(&c, err)))
            return st;
        return s_decode_realtime(&c, err);
    }
}
