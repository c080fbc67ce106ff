/* hj1239_int — what the parts of the frame decoder and encoder share; not for other modules.
 *
 *   hj1239_tables.c    field, block and name tables; physical values; the BCC
 *   hj1239_time.c      wire times, ISO 8601 text, the Beijing day
 *   hj1239_decode.c    frame decoding: envelope, commands, the strict layout walks
 *   hj1239_tolerant.c  the search for vendor items of unknown length (rare frames)
 *   hj1239_encode.c    the encoder and decode-equality
 *
 * Pure like the rest of the parser: const tables, no state. */
#ifndef VEM_HJ1239_INT_H
#define VEM_HJ1239_INT_H

#include "hj1239.h"

#include <string.h>

/* ---- bytes --------------------------------------------------------------------------------- */

static inline uint64_t vem_hj1239_load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ---- tables (hj1239_tables.c) -------------------------------------------------------------- */

/* Every field's wire width, scale and range, by vem_hj1239_field_t. */
extern const vem_hj1239_field_info_t vem_hj1239_fields[VEM_HJ1239_F_COUNT];

/* Body length by type byte; 0 = not a standard block. OBD: without its DTCs. */
extern const uint8_t vem_hj1239_body_lens[256];

/* Offset of the DTC count inside an OBD body, and the largest count that is one. */
#define VEM_HJ1239_OBD_DTC_COUNT_AT 95
#define VEM_HJ1239_OBD_MAX_DTCS     253

/* ---- wire dates (used by hj1239_time.c and the decoders) ----------------------------------- */

#define VEM_HJ1239_BEIJING_S (8 * 3600)

/* Wire years are 2000 + YY with YY 0..255: a year is leap when YY % 4 == 0 except 2100 and
 * 2200 (2000 is, as a multiple of 400). */
static inline bool vem_hj1239_wire_leap(unsigned yy)
{
    return (yy & 3) == 0 && yy != 100 && yy != 200;
}

/* Days since 1970-01-01 of 2000+yy-m-d (a checked date): days to 2000-01-01, 365 a year, one
 * more per leap year before this one, the days of the months before, the day. */
static inline int64_t vem_hj1239_wire_days(unsigned yy, unsigned m, unsigned d)
{
    static const uint16_t before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    unsigned leaps = (yy + 3) / 4 - (yy + 99) / 100 + (yy + 399) / 400;
    return 10957 + 365 * (int64_t)yy + leaps + before[m - 1] + (m > 2 && vem_hj1239_wire_leap(yy)) +
           d - 1;
}

static inline bool vem_hj1239_date_ok(const uint8_t *w)
{
    static const uint8_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (w[1] < 1 || w[1] > 12 || w[2] < 1)
        return false;
    return w[2] <= days[w[1] - 1] + (w[1] == 2 && vem_hj1239_wire_leap(w[0]));
}

static inline bool vem_hj1239_clock_ok(const uint8_t *w)
{
    return w[3] <= 23 && w[4] <= 59 && w[5] <= 59;
}

/* ---- decoding context (hj1239_decode.c, hj1239_tolerant.c) --------------------------------- */

/* What the block loops keep in registers: a copy that only inlined helpers see, so stores
 * into the frame (char stores alias everything) do not force reloads. */
typedef struct {
    const uint8_t *d; /* data unit */
    size_t n;         /* its length */
    uint32_t day_key; /* YYMMDD of the cached day, or UINT32_MAX */
    int64_t day_base; /* epoch seconds of that day's Beijing midnight */
    int64_t ftime;    /* the frame's time */
} vem_hj1239_hot_t;

typedef struct {
    vem_hj1239_frame_t *f;
    const uint8_t *d; /* data unit */
    size_t n;         /* its length */
    vem_hj1239_hot_t hot;
    /* first block time that failed, or SIZE_MAX */
    size_t bad_time_at;
    /* furthest strict failure, for the error report */
    size_t fail_at;
    char fail_detail[VEM_HJ1239_DETAIL_LEN];
} vem_hj1239_ctx_t;

#define VEM_HJ1239_DATA_AT 24 /* frame offset of the data unit */

/* Notes a failure at frame offset `at` for the error report, when it is the furthest yet. */
void vem_hj1239_note_fail(vem_hj1239_ctx_t *c, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), cold, noinline));

/* Length of the standard block at d[p] (type, prefix bytes, body), 0 when d[p] is not a
 * standard type or the block does not fit in the data unit. */
static inline size_t vem_hj1239_block_len(const uint8_t *d, size_t n, size_t p, size_t prefix)
{
    uint8_t t = d[p];
    if (t == VEM_HJ1239_BLOCK_STREAM) /* predicted: the next block's position is known early */
        return 1 + prefix + 37 <= n - p ? 1 + prefix + 37 : 0;
    size_t body = vem_hj1239_body_lens[t];
    if (body == 0)
        return 0;
    size_t len = 1 + prefix + body;
    if (len > n - p)
        return 0;
    if (t == VEM_HJ1239_BLOCK_OBD) {
        uint8_t cnt = d[p + 1 + prefix + VEM_HJ1239_OBD_DTC_COUNT_AT];
        if (cnt <= VEM_HJ1239_OBD_MAX_DTCS)
            len += 4 * (size_t)cnt;
        if (len > n - p)
            return 0;
    }
    return len;
}

/* Length of a signature (rlen, R, slen, S) that ends exactly at the data unit's end, or 0. */
static inline size_t vem_hj1239_sig_fits(const vem_hj1239_ctx_t *c, size_t p)
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

static inline void vem_hj1239_read_sig(const uint8_t *p, vem_hj1239_sig_t *sig)
{
    sig->rlen = p[0];
    memcpy(sig->r, p + 1, sig->rlen);
    sig->slen = p[1 + sig->rlen];
    memcpy(sig->s, p + 2 + sig->rlen, sig->slen);
}

static inline void vem_hj1239_reset_blocks(vem_hj1239_frame_t *f)
{
    f->nblocks = 0;
    f->nobd = 0;
    f->ndtcs = 0;
    f->vendor_blocks = 0;
    f->has_sig = false;
    f->sig.rlen = f->sig.slen = 0;
}

/* Start of the block sequence and the first block's prefix for a layout. */
static inline size_t vem_hj1239_prefix(unsigned layout)
{
    return ((layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK) ? 2 : 0) +
           ((layout & VEM_HJ1239_LAYOUT_BLOCK_TIME) ? 6 : 0);
}

/* True when a vendor text item (VEM_HJ1239_VENDOR_TEXT_LEN bytes: 0x20, 32 bytes none of them
 * NUL, NUL) starts at d[p]. Its length is in its bytes, so skipping it needs no search. */
static inline bool vem_hj1239_text_item(const uint8_t *d, size_t n, size_t p)
{
    if (n - p < VEM_HJ1239_VENDOR_TEXT_LEN || d[p] != 0x20 ||
        d[p + VEM_HJ1239_VENDOR_TEXT_LEN - 1] != 0x00)
        return false;
    return memchr(d + p + 1, 0x00, VEM_HJ1239_VENDOR_TEXT_LEN - 2) == NULL;
}

/* Records the vendor item d[p .. p+len) after nb standard blocks; false when the frame already
 * holds VEM_HJ1239_MAX_VENDOR (noted). */
bool vem_hj1239_add_vendor(vem_hj1239_ctx_t *c, size_t p, size_t len, size_t nb);

/* Appends the block at d[p] of length len to the frame (a copy of s_add_block for the
 * tolerant reading); false when there is no room (noted). */
bool vem_hj1239_add_block(vem_hj1239_ctx_t *c, vem_hj1239_hot_t *h, size_t *nb, size_t p,
                          size_t len, bool with_serial, bool with_time);

/* ---- tolerant reading (hj1239_tolerant.c) -------------------------------------------------- */

#define VEM_HJ1239_SEARCH_MAX 8192 /* data-unit bytes the tolerant reading accepts */

/* Reads the real-time data unit with vendor items of unknown length: every layout's best
 * reading, the best of them kept. 1 = read into c->f (layout set), 0 = no reading fits. */
int vem_hj1239_tolerant(vem_hj1239_ctx_t *c);

#endif
