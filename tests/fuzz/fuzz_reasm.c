/* fuzz_reasm — libFuzzer target for the stream reassembler.
 *
 * The input is a byte stream. It is fed whole, byte by byte, and in chunks whose sizes come
 * from the input itself; each run must give the same frames (offsets and lengths) and the same
 * number of dropped bytes, every frame must lie inside the stream with `##` and a good BCC,
 * frames and drops must account for every byte, and the buffer must stay within its bound. */
#include "hj1239.h"
#include "reasm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    size_t nframes;
    uint64_t hash; /* of frame offsets and lengths, in order */
    uint64_t dropped, framed;
} s_sum_t;

static void s_drain(vem_reasm_t *ra, const uint8_t *data, size_t size, s_sum_t *sum)
{
    vem_reasm_event_t ev;
    while (vem_reasm_next(ra, &ev) != VEM_REASM_NEED_MORE) {
        if (vem_reasm_buffered(ra) > vem_reasm_max_frame(ra))
            abort();
        if (ev.kind == VEM_REASM_FRAME) {
            if (ev.offset + ev.len > size || ev.len < VEM_HJ1239_MIN_FRAME ||
                memcmp(ev.data, data + ev.offset, ev.len) != 0 || ev.data[0] != '#' ||
                ev.data[1] != '#' || vem_hj1239_bcc(ev.data + 2, ev.len - 3) != ev.data[ev.len - 1])
                abort();
            sum->nframes++;
            sum->hash = (sum->hash * 1000003u) ^ (ev.offset * 65599u + ev.len);
            sum->framed += ev.len;
        } else {
            if (ev.skipped == 0 || ev.offset + ev.len > size ||
                memcmp(ev.data, data + ev.offset, ev.len) != 0)
                abort();
            sum->dropped += ev.skipped;
        }
    }
}

static void s_run(const uint8_t *data, size_t size, size_t max, const uint8_t *sizes, size_t nsizes,
                  s_sum_t *sum)
{
    memset(sum, 0, sizeof *sum);
    vem_reasm_t *ra = vem_reasm_new(max);
    if (!ra)
        abort();
    size_t off = 0, k = 0;
    while (off < size) {
        size_t n = nsizes ? (size_t)sizes[k++ % nsizes] + 1 : size;
        if (n > size - off)
            n = size - off;
        uint8_t *chunk = malloc(n); /* exact size: reads past it are caught */
        if (!chunk)
            abort();
        memcpy(chunk, data + off, n);
        vem_reasm_feed(ra, chunk, n);
        s_drain(ra, data, size, sum);
        free(chunk);
        off += n;
    }
    vem_reasm_end(ra);
    s_drain(ra, data, size, sum);
    if (sum->framed + sum->dropped != size)
        abort();
    vem_reasm_destroy(&ra);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a small bound too, so length lies and the buffer limit are reached often */
    size_t max = size > 0 && (data[0] & 1) ? 128 : 0;
    s_sum_t whole, bytes, mixed;
    static const uint8_t one[1] = {0};
    s_run(data, size, max, NULL, 0, &whole);
    s_run(data, size, max, one, 1, &bytes);
    s_run(data, size, max, data, size < 16 ? size : 16, &mixed);
    if (whole.nframes != bytes.nframes || whole.hash != bytes.hash ||
        whole.dropped != bytes.dropped || whole.nframes != mixed.nframes ||
        whole.hash != mixed.hash || whole.dropped != mixed.dropped)
        abort();
    return 0;
}
