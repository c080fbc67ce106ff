/* fuzz_envelope — libFuzzer target for the station message envelope (daemon/stations.c).
 *
 * The input is one ROUTER message after its routing id: parts separated by the byte 0xFF
 * (which never occurs in UTF-8 JSON), as vemd receives them from a DEALER or a REQ. The
 * envelope picks at most one reading part; the checks then bound its size and nesting before
 * the parser sees it. Every part is a private heap copy of exactly its length, so ASan sees a
 * read past its end. Invariants: the reading part is the only part, or the only one after an
 * empty delimiter; a reading over the size limit is never parsed; one nested deeper than the
 * limit is refused with a detail; an accepted one names its station and reading. */
#include "stations.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_NOW_US    INT64_C(1795996830000000) /* 2026-11-30T08:00:30+08:00 */
#define S_MAX_PARTS 8
#define S_MAX_BYTES 1024
#define S_MAX_DEPTH 2

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t sizes[S_MAX_PARTS], starts[S_MAX_PARTS];
    int n = 0;
    size_t from = 0;
    for (size_t i = 0; i <= size && n < S_MAX_PARTS; i++) {
        if (i == size || data[i] == 0xFF) {
            starts[n] = from;
            sizes[n++] = i - from;
            from = i + 1;
        }
    }
    bool delim;
    int body = vem_stations_envelope(sizes, n, &delim);
    if (body >= 0 && (body != (delim ? 1 : 0) || n != body + 1))
        abort();
    if (delim && sizes[0] != 0)
        abort();
    if (body < 0)
        return 0;
    uint8_t *copy = malloc(sizes[body] ? sizes[body] : 1);
    if (!copy)
        abort();
    memcpy(copy, data + starts[body], sizes[body]);
    vem_rsd_t r;
    vem_rsd_error_t err;
    vem_stations_verdict_t v =
        vem_stations_check(copy, sizes[body], S_MAX_BYTES, S_MAX_DEPTH, S_NOW_US, 300, &r, &err);
    unsigned depth = vem_rsd_depth(copy, sizes[body], S_MAX_DEPTH);
    free(copy);
    if ((v == VEM_STATIONS_TOO_LARGE) != (sizes[body] > S_MAX_BYTES))
        abort();
    if (v == VEM_STATIONS_TOO_DEEP && (depth <= S_MAX_DEPTH || err.detail[0] == '\0'))
        abort();
    if (v == VEM_STATIONS_OK && (depth > S_MAX_DEPTH || !r.station_id[0] || !r.reading_id[0]))
        abort();
    if (v == VEM_STATIONS_INVALID && (err.status == VEM_RSD_OK || err.detail[0] == '\0'))
        abort();
    return 0;
}
