/* testutil — small helpers shared by the Check suites.
 *
 * Integration suites reach the real components through the environment that
 * tests/harness.sh sets: VEM_TEST_PG (libpq conninfo of a throw-away cluster with the
 * schema applied) and VEM_TEST_KAFKA (bootstrap address of a vem-broker process). */
#ifndef VEM_TESTUTIL_H
#define VEM_TESTUTIL_H

#include "hj1239.h"

#include <stddef.h>
#include <stdint.h>

/* Directory holding the shared test vectors (tests/vectors unless VEM_TEST_VECTORS is set). */
const char *vem_test_vectors_dir(void);

/* Directory of the built binaries (build/bin unless VEM_TEST_BIN is set). */
const char *vem_test_bin_dir(void);

/* Value of an environment variable the harness must set; fails the current test if absent. */
const char *vem_test_env(const char *name);

/* Makes a fresh directory $TMPDIR/NAME.XXXXXX (TMPDIR defaults to /tmp) into out (cap bytes);
 * fails the current test if it cannot. make and the harness point TMPDIR at a directory they
 * remove, so nothing is left behind even when a test fails before its cleanup. */
void vem_test_mkdtemp(const char *name, char *out, size_t cap);

/* Removes dir and everything in it; fails the current test if it cannot. */
void vem_test_rmtree(const char *dir);

/* Writes text to path (created or truncated); fails the current test if it cannot. */
void vem_test_spit(const char *path, const char *text);

/* Reads a whole file into a malloc'd buffer (caller frees); NULL on error. */
uint8_t *vem_test_slurp(const char *path, size_t *len_out);

/* Decodes a hex string into out (at most cap bytes); returns the byte count or -1. */
long vem_test_unhex(const char *hex, uint8_t *out, size_t cap);

/* The bytes of the HJ 1239 test vector named name (../shared/vectors/hj1239/vectors.jsonl);
 * returns their length (the test fails when there is no such vector). */
long vem_test_vector_bytes(const char *name, uint8_t *out, size_t cap);

/* The named vector decoded into *f (the test fails unless it decodes). */
void vem_test_vector_frame(const char *name, vem_hj1239_frame_t *f);

/* Physical values of a diesel-stream sample, the fields the rules read; NaN writes the field's
 * invalid marker (0xFF..). */
typedef struct {
    double rpm, torque, friction, fuel, nox_up, nox_down, reagent, intake, scr_in, coolant;
} vem_test_phys_t;

/* Block field f set to the raw value of physical value v (NaN: its invalid marker). */
void vem_test_set_field(vem_hj1239_block_t *b, vem_hj1239_field_t f, double v);

/* *b made a diesel stream block (0x02) at t with p's values; the fields the rules do not read
 * get fixed plausible values (40 km/h, SCR outlet 280 C, ...). */
void vem_test_stream_block(vem_hj1239_block_t *b, int64_t t, const vem_test_phys_t *p);

/* *f's envelope cleared and set: a terminal's plain frame of cmd from vin (17 characters) at t,
 * no blocks yet. */
void vem_test_envelope(vem_hj1239_frame_t *f, uint8_t cmd, const char *vin, int64_t t);

#endif
