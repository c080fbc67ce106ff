/* hj1239_tolerant — reading a real-time data unit that holds vendor items of unknown length
 * (0x81..0xFE blocks, or vendor bytes after a standard block); the decoder comes here only when
 * no layout fits strictly, with or without vendor text items. Text items are skipped by their
 * length here too, so a frame that mixes them with vendor blocks keeps its standard blocks.
 * See hj1239_int.h. */
#include "hj1239_int.h"

static inline bool s_is_vendor_type(uint8_t t)
{
    return t >= 0x81 && t <= 0xFE;
}

/* Tolerant reading. A vendor item is a run of bytes of unknown length that starts with a
 * vendor type (0x81..0xFE) or right after a standard block, and ends where a standard block or
 * the end (GB 17691: the data unit's end; HJ 1239: a signature filling the rest) begins. Many
 * readings may fit; the one kept has the fewest vendor items, then the most standard blocks,
 * then the fewest vendor bytes, so a standard-looking run inside vendor bytes does not displace
 * a real block. Costs are found backwards in one pass (cost[p] = best reading of the rest when
 * p follows a standard block), the reading forwards. The table is on the stack (32 KiB), hence
 * a size limit. */
#define S_INF UINT32_MAX

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
    s_cost_t cost[VEM_HJ1239_SEARCH_MAX + 1];
} s_search_t;

/* A standard block at p whose block time (if any) is a possible time; its length or 0. */
static size_t s_search_block(const vem_hj1239_ctx_t *c, const s_search_t *s, size_t p,
                             size_t prefix, bool serial)
{
    size_t len = vem_hj1239_block_len(c->d, c->n, p, prefix);
    if (len && s->bt) {
        const uint8_t *w = c->d + p + 1 + (serial ? 2 : 0);
        if (!vem_hj1239_date_ok(w) || !vem_hj1239_clock_ok(w))
            return 0;
    }
    return len;
}

static bool s_at_end(const vem_hj1239_ctx_t *c, size_t p, bool bt)
{
    return bt ? vem_hj1239_sig_fits(c, p) != 0 : p == c->n;
}

/* Cost of finishing from p when p must start a standard block, a vendor text item or be the
 * end. A text item costs nothing (its length is known, nothing is guessed) and, like a
 * standard block, may be followed by a vendor item of unknown length. At most one of the
 * three can start at p (0x20 is no standard type, and no signature whose R is 32 bytes has a
 * NUL where a text item ends). */
static s_cost_t s_cost_here(const vem_hj1239_ctx_t *c, const s_search_t *s, size_t p)
{
    s_cost_t best = s_at_end(c, p, s->bt) ? 0 : S_INF;
    if (p < c->n) {
        size_t len = s_search_block(c, s, p, s->prefix, s->spb);
        s_cost_t rest = len ? s->cost[p + len] : S_INF;
        if (rest != S_INF && s_blocks(rest) < 0x7FF && s_better(rest + (1u << 14), best))
            best = rest + (1u << 14);
        if (vem_hj1239_text_item(c->d, c->n, p) &&
            s_better(s->cost[p + VEM_HJ1239_VENDOR_TEXT_LEN], best))
            best = s->cost[p + VEM_HJ1239_VENDOR_TEXT_LEN];
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
static s_cost_t s_search_cost(const vem_hj1239_ctx_t *c, s_search_t *s, unsigned layout)
{
    s->bt = layout & VEM_HJ1239_LAYOUT_BLOCK_TIME;
    s->spb = layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK;
    s->prefix = vem_hj1239_prefix(layout);
    if (c->n > VEM_HJ1239_SEARCH_MAX)
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
static int s_search_fill(vem_hj1239_ctx_t *c, s_search_t *s, unsigned layout, s_cost_t target)
{
    vem_hj1239_frame_t *f = c->f;
    vem_hj1239_hot_t h = c->hot;
    size_t nb = 0;
    vem_hj1239_reset_blocks(f);
    c->bad_time_at = SIZE_MAX;
    if (layout & VEM_HJ1239_LAYOUT_TYPE_FIRST) {
        if (!vem_hj1239_add_block(c, &h, &nb, 6, s->start - 6, true, s->bt))
            return 0;
        f->nblocks = (uint16_t)nb;
        f->seq = f->blocks[0].seq;
        target -= 1u << 14;
    } else if (!s->spb) {
        f->seq = (uint16_t)vem_hj1239_be16(c->d + 6);
    }
    size_t p = s->start;
    bool may_vendor = true; /* not right after a vendor item */
    for (;;) {
        if (p < c->n) {
            size_t len = s_search_block(c, s, p, s->prefix, s->spb);
            if (len && s->cost[p + len] != S_INF && s->cost[p + len] + (1u << 14) == target) {
                if (!vem_hj1239_add_block(c, &h, &nb, p, len, s->spb, s->bt))
                    return 0;
                f->nblocks = (uint16_t)nb;
                p += len;
                target = s->cost[p];
                may_vendor = true;
                continue;
            }
            if (vem_hj1239_text_item(c->d, c->n, p) &&
                s->cost[p + VEM_HJ1239_VENDOR_TEXT_LEN] == target) {
                if (!vem_hj1239_add_vendor(c, p, VEM_HJ1239_VENDOR_TEXT_LEN, nb))
                    return 0; /* text items and the others over VEM_HJ1239_MAX_VENDOR */
                p += VEM_HJ1239_VENDOR_TEXT_LEN;
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
        if (!vem_hj1239_add_vendor(c, p, q - p, nb))
            return 0;
        p = q;
        target = rest;
        may_vendor = false;
    }
    if (s->bt) {
        vem_hj1239_read_sig(c->d + p, &f->sig);
        f->has_sig = true;
    }
    if (s->spb) {
        if (nb == 0)
            return 0;
        f->seq = f->blocks[0].seq;
    }
    return 1;
}

/* The tolerant pass: every layout's best reading; the one with the fewest vendor items, then
 * the most standard blocks wins, the first in `order` on a tie (vendor byte counts only rank
 * readings of one layout: a misaligned layout can skip fewer bytes by luck). 1 = read. */
int vem_hj1239_tolerant(vem_hj1239_ctx_t *c)
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
