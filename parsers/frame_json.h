/* frame_json — a decoded remote-OBD frame as a jansson object with the FIELDS.md keys.
 *
 * Pure: returns new json_t references, no I/O. Shared by `vemctl decode` and the daemon's Kafka
 * events. Physical values are rounded to their resolution step; print them with
 * VEM_FRAME_JSON_DUMP_FLAGS so 31.35 stays "31.35" and 1450 stays "1450.0". */
#ifndef VEM_FRAME_JSON_H
#define VEM_FRAME_JSON_H

#include "hj1239.h"

#include <jansson.h>

/* json_dumps flags that print values as the vectors show them (15 significant digits). */
#define VEM_FRAME_JSON_DUMP_FLAGS JSON_REAL_PRECISION(15)

/* Object of a decoded frame (envelope, per-command keys, blocks); new reference, caller owns. */
json_t *vem_frame_json_new(const vem_hj1239_frame_t *f);

/* Block i of f as an object; new reference, caller owns. */
json_t *vem_frame_json_block(const vem_hj1239_frame_t *f, size_t i);

/* {"error": CLASS, "detail": TEXT, "offset": N}; with UNSUPPORTED_ENCRYPTION and a non-NULL f,
 * the envelope keys of f are added. New reference, caller owns. */
json_t *vem_frame_json_error(const vem_hj1239_error_t *err, const vem_hj1239_frame_t *f);

/* The lowercase hex text of n bytes into out, which holds 2 n + 1 characters (with its '\0'):
 * the one hex writer of the daemon (quarantine details, key files, the registry cache). */
void vem_frame_json_hex_text(char *out, const uint8_t *p, size_t n);

/* Lowercase hex string of n bytes; new reference. */
json_t *vem_frame_json_hex(const uint8_t *p, size_t n);

#endif
