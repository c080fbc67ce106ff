/* fuzz_decode — libFuzzer target for the frame decoder, encoder and JSON conversion.
 *
 * The input is one frame. When it decodes, encoding the decoded struct must succeed and give
 * the same bytes (the decoder keeps everything it reads), and those bytes must decode to an
 * equal struct; the JSON conversion must not fail. The frame is also decoded from a private
 * heap copy of exactly its length, so ASan sees any read past its end. */
#include "frame_json.h"
#include "hj1239.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static vem_hj1239_frame_t s_a, s_b;
static uint8_t s_out[VEM_HJ1239_MAX_FRAME];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    vem_hj1239_error_t err;
    vem_hj1239_status_t st = vem_hj1239_decode(copy, size, 0, &s_a, &err);
    if (st != VEM_HJ1239_OK) {
        if (err.status != st || err.detail[0] == '\0')
            abort();
        json_decref(vem_frame_json_error(&err, &s_a));
        free(copy);
        return 0;
    }
    json_t *j = vem_frame_json_new(&s_a);
    if (!j)
        abort();
    char *text = json_dumps(j, VEM_FRAME_JSON_DUMP_FLAGS);
    if (!text)
        abort();
    free(text);
    json_decref(j);
    size_t n = 0;
    if (vem_hj1239_encode(&s_a, s_out, sizeof s_out, &n) != 0)
        abort(); /* a decoded frame can always be written back */
    if (n != size || memcmp(s_out, copy, size) != 0)
        abort(); /* ... and it is the same bytes */
    if (vem_hj1239_decode(s_out, n, 0, &s_b, NULL) != VEM_HJ1239_OK)
        abort();
    if (!vem_hj1239_equal(&s_a, &s_b))
        abort();
    /* the reassembler's trusted path gives the same frame */
    if (vem_hj1239_decode(copy, size, VEM_HJ1239_TRUSTED_BCC, &s_b, NULL) != VEM_HJ1239_OK ||
        !vem_hj1239_equal(&s_a, &s_b))
        abort();
    free(copy);
    return 0;
}
