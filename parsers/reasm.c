/* reasm — stream to frames; see reasm.h.
 *
 * Two modes. In chunk mode (the buffer is empty) the scanner works directly on the fed chunk:
 * whole frames are handed out in place, and only when a candidate runs past the chunk's end is
 * its tail (fewer than max_frame bytes) copied into the buffer. In buffer mode the candidate at
 * the buffer's start is topped up from the next chunk with exactly the bytes it still needs
 * (2, 3, the 24-byte header, then the announced length), so the buffer never holds more than
 * max_frame bytes. A rejected candidate in buffer mode drops its first byte and the rest of the
 * buffer is scanned again before the chunk, so the byte stream is seen in order and in full
 * whatever the chunking: the events do not depend on where the chunks were cut (except that a
 * garbage run may be reported in several pieces).
 *
 * Candidate checks, in order: `##`, command 0x01..0x08, announced length within max_frame, BCC
 * over bytes 2 .. 23+N. Pure: no I/O; the one allocation is the object itself. */
#include "reasm.h"

#include <stdlib.h>
#include <string.h>

struct vem_reasm {
    size_t max_frame;
    /* current chunk */
    const uint8_t *chunk;
    size_t clen, cpos;
    uint64_t base; /* stream offset of chunk[0] */
    uint64_t fed;  /* bytes fed so far */
    bool eof;
    /* buffer: a candidate (and possibly bytes after it) carried across chunks */
    size_t blen;
    size_t bconsume; /* bytes of the buffer the last event used up, removed on the next call */
    uint64_t boff;   /* stream offset of buf[0] */
    uint8_t buf[];
};

typedef enum { S_NEED, S_GOOD, S_BAD } s_verdict_t;

vem_reasm_t *vem_reasm_new(size_t max_frame)
{
    if (max_frame == 0)
        max_frame = VEM_REASM_DEFAULT_MAX_FRAME;
    if (max_frame < VEM_HJ1239_MIN_FRAME)
        max_frame = VEM_HJ1239_MIN_FRAME;
    if (max_frame > VEM_HJ1239_MAX_FRAME)
        max_frame = VEM_HJ1239_MAX_FRAME;
    vem_reasm_t *self = malloc(sizeof *self + max_frame);
    if (!self)
        return NULL;
    self->max_frame = max_frame;
    vem_reasm_reset(self);
    return self;
}

void vem_reasm_destroy(vem_reasm_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

void vem_reasm_reset(vem_reasm_t *self)
{
    self->chunk = NULL;
    self->clen = self->cpos = 0;
    self->base = self->fed = 0;
    self->eof = false;
    self->blen = self->bconsume = 0;
    self->boff = 0;
}

void vem_reasm_feed(vem_reasm_t *self, const uint8_t *data, size_t len)
{
    self->chunk = data;
    self->clen = len;
    self->cpos = 0;
    self->base = self->fed;
    self->fed += len;
    self->eof = false;
}

void vem_reasm_end(vem_reasm_t *self)
{
    self->chunk = NULL;
    self->clen = self->cpos = 0;
    self->base = self->fed;
    self->eof = true;
}

size_t vem_reasm_buffered(const vem_reasm_t *self)
{
    return self->blen - self->bconsume;
}

size_t vem_reasm_max_frame(const vem_reasm_t *self)
{
    return self->max_frame;
}

/* True when p can start a frame: `##`, or a lone `#` at the end of what is there. */
static inline bool s_is_start(const uint8_t *p, size_t avail)
{
    return p[0] == '#' && (avail == 1 || p[1] == '#');
}

/* Length of the run from p[0] up to (not including) the next possible frame start after it. */
static size_t s_skip_len(const uint8_t *p, size_t avail)
{
    size_t k = 1;
    while (k < avail) {
        const uint8_t *h = memchr(p + k, '#', avail - k);
        if (!h)
            return avail;
        k = (size_t)(h - p);
        if (s_is_start(h, avail - k))
            return k;
        k++;
    }
    return avail;
}

/* Judges the candidate at p (which starts with `#`, and `##` when avail >= 2). *need: bytes
 * wanted (S_NEED), the frame length (S_GOOD), or the bytes examined (S_BAD). */
static s_verdict_t s_judge(const vem_reasm_t *self, const uint8_t *p, size_t avail, size_t *need,
                           vem_hj1239_status_t *err, const char **detail)
{
    if (avail < 3) {
        *need = 3;
        return S_NEED;
    }
    if (!vem_hj1239_cmd_known(p[2])) {
        *need = 3;
        *err = VEM_HJ1239_UNKNOWN_COMMAND;
        *detail = "`##` followed by an unknown command";
        return S_BAD;
    }
    if (avail < VEM_HJ1239_HEADER_LEN) {
        *need = VEM_HJ1239_HEADER_LEN;
        return S_NEED;
    }
    size_t total = vem_hj1239_frame_len(p);
    if (total > self->max_frame) {
        *need = VEM_HJ1239_HEADER_LEN;
        *err = VEM_HJ1239_BAD_LENGTH;
        *detail = "announced length exceeds the frame size bound";
        return S_BAD;
    }
    *need = total;
    if (avail < total)
        return S_NEED;
    if (vem_hj1239_bcc(p + 2, total - 3) != p[total - 1]) {
        *err = VEM_HJ1239_BAD_CHECKSUM;
        *detail = "BCC mismatch";
        return S_BAD;
    }
    return S_GOOD;
}

static vem_reasm_kind_t s_frame(vem_reasm_event_t *ev, uint64_t off, const uint8_t *p, size_t len,
                                bool copied)
{
    ev->kind = VEM_REASM_FRAME;
    ev->error = VEM_HJ1239_OK;
    ev->detail = NULL;
    ev->offset = off;
    ev->data = p;
    ev->len = len;
    ev->skipped = 0;
    ev->copied = copied;
    return VEM_REASM_FRAME;
}

static vem_reasm_kind_t s_drop(vem_reasm_event_t *ev, vem_hj1239_status_t err, const char *detail,
                               uint64_t off, const uint8_t *p, size_t len, size_t skipped)
{
    ev->kind = VEM_REASM_DROP;
    ev->error = err;
    ev->detail = detail;
    ev->offset = off;
    ev->data = p;
    ev->len = len;
    ev->skipped = skipped;
    ev->copied = false;
    return VEM_REASM_DROP;
}

static vem_reasm_kind_t s_need_more(vem_reasm_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = VEM_REASM_NEED_MORE;
    return VEM_REASM_NEED_MORE;
}

static const char s_garbage[] = "bytes outside any frame";

static vem_reasm_kind_t s_next_buffered(vem_reasm_t *self, vem_reasm_event_t *ev)
{
    for (;;) {
        const uint8_t *p = self->buf;
        size_t avail = self->blen;
        if (!s_is_start(p, avail)) {
            size_t k = s_skip_len(p, avail);
            self->bconsume = k;
            return s_drop(ev, VEM_HJ1239_BAD_START, s_garbage, self->boff, p, k, k);
        }
        size_t need = 0;
        vem_hj1239_status_t err = VEM_HJ1239_OK;
        const char *detail = NULL;
        switch (s_judge(self, p, avail, &need, &err, &detail)) {
        case S_GOOD:
            self->bconsume = need;
            return s_frame(ev, self->boff, p, need, true);
        case S_BAD:
            self->bconsume = 1;
            return s_drop(ev, err, detail, self->boff, p, need < avail ? need : avail, 1);
        case S_NEED:
            break;
        }
        size_t want = need - avail;
        size_t have = self->clen - self->cpos;
        size_t take = want < have ? want : have;
        if (take)
            memcpy(self->buf + self->blen, self->chunk + self->cpos, take);
        self->blen += take;
        self->cpos += take;
        if (take == want)
            continue;
        if (!self->eof)
            return s_need_more(ev);
        /* The stream ended inside this candidate. */
        if (avail < 2) {
            self->bconsume = avail;
            return s_drop(ev, VEM_HJ1239_BAD_START, s_garbage, self->boff, p, avail, avail);
        }
        size_t k = s_skip_len(p, avail);
        self->bconsume = k;
        return s_drop(ev, VEM_HJ1239_TRUNCATED, "stream ended inside a frame", self->boff, p, k, k);
    }
}

static vem_reasm_kind_t s_next_chunk(vem_reasm_t *self, vem_reasm_event_t *ev)
{
    size_t avail = self->clen - self->cpos;
    if (avail == 0)
        return s_need_more(ev);
    const uint8_t *p = self->chunk + self->cpos;
    uint64_t off = self->base + self->cpos;
    if (!s_is_start(p, avail)) {
        size_t k = s_skip_len(p, avail);
        if (k > self->max_frame)
            k = self->max_frame; /* a long run comes in pieces: no event is over max_frame */
        self->cpos += k;
        return s_drop(ev, VEM_HJ1239_BAD_START, s_garbage, off, p, k, k);
    }
    size_t need = 0;
    vem_hj1239_status_t err = VEM_HJ1239_OK;
    const char *detail = NULL;
    switch (s_judge(self, p, avail, &need, &err, &detail)) {
    case S_GOOD:
        self->cpos += need;
        return s_frame(ev, off, p, need, false);
    case S_BAD:
        self->cpos += 1;
        return s_drop(ev, err, detail, off, p, need < avail ? need : avail, 1);
    case S_NEED:
        break;
    }
    /* The candidate runs past the chunk: keep its tail (< need <= max_frame bytes). */
    memcpy(self->buf, p, avail);
    self->blen = avail;
    self->boff = off;
    self->cpos = self->clen;
    return s_need_more(ev);
}

vem_reasm_kind_t vem_reasm_next(vem_reasm_t *self, vem_reasm_event_t *ev)
{
    if (self->bconsume) {
        self->blen -= self->bconsume;
        memmove(self->buf, self->buf + self->bconsume, self->blen);
        self->boff += self->bconsume;
        self->bconsume = 0;
    }
    if (self->blen > 0)
        return s_next_buffered(self, ev);
    return s_next_chunk(self, ev);
}
