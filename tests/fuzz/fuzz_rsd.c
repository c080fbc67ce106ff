/* fuzz_rsd — libFuzzer target for the roadside-reading parser.
 *
 * The input is one station message. A refusal must name a class and give a detail; an accepted
 * reading must give a normalized form that parses again to the same reading (the form a sink
 * stores is one vemd itself accepts). The bytes are parsed from a private heap copy of exactly
 * their length, so ASan sees any read past the end. */
#include "rsd.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_NOW_US INT64_C(1795996830000000) /* 2026-11-30T08:00:30+08:00 */

static bool s_same(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    vem_rsd_t r, r2;
    vem_rsd_error_t err;
    vem_rsd_status_t st = vem_rsd_parse(copy, size, S_NOW_US, 300, &r, &err);
    free(copy);
    if (st != VEM_RSD_OK) {
        if (st >= VEM_RSD_STATUS_COUNT || err.status != st || err.detail[0] == '\0')
            abort();
        return 0;
    }
    json_t *o = vem_rsd_json(&r);
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!text)
        abort();
    if (vem_rsd_parse((const uint8_t *)text, strlen(text), S_NOW_US, 300, &r2, &err) != VEM_RSD_OK)
        abort();
    if (r2.time_us != r.time_us || strcmp(r2.plate, r.plate) != 0 ||
        strcmp(r2.reading_id, r.reading_id) != 0 || !s_same(r2.no_ppm, r.no_ppm) ||
        !s_same(r2.speed_kmh, r.speed_kmh) || r2.valid != r.valid || r2.lane != r.lane)
        abort();
    free(text);
    return 0;
}
