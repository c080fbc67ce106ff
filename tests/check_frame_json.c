/* check_frame_json — every key the shared vectors expect, in the JSON of the decoded frame.
 *
 * Expected values come from vectors.jsonl only. Numbers of block fields are compared within
 * half a resolution step of the field (from the field table), other numbers exactly. */
#include "frame_json.h"
#include "hj1239.h"
#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Half a resolution step of the field named key, or 0 (exact) for other keys. */
static double s_tolerance(const char *key)
{
    for (int f = 0; f < VEM_HJ1239_F_COUNT; f++) {
        const vem_hj1239_field_info_t *fi = vem_hj1239_field_info(f);
        if (strcmp(fi->name, key) == 0)
            return fi->scale / 2;
    }
    return 0;
}

/* Every key of want is in got with an equal value (recursively, arrays element-wise). */
static void s_match(const char *where, const char *key, json_t *want, json_t *got)
{
    ck_assert_msg(got != NULL, "%s: key %s missing", where, key);
    if (json_is_number(want)) {
        ck_assert_msg(json_is_number(got), "%s: %s is not a number", where, key);
        double tol = s_tolerance(key);
        double w = json_number_value(want), g = json_number_value(got);
        ck_assert_msg(fabs(w - g) <= tol, "%s: %s = %.9g, want %.9g", where, key, g, w);
        if (json_is_integer(want) && tol <= 0.5)
            ck_assert_msg(json_is_integer(got), "%s: %s should be an integer", where, key);
        return;
    }
    ck_assert_msg(json_typeof(want) == json_typeof(got) ||
                      (json_is_boolean(want) && json_is_boolean(got)),
                  "%s: %s has the wrong type", where, key);
    if (json_is_object(want)) {
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v)
        {
            s_match(where, k, v, json_object_get(got, k));
        }
    } else if (json_is_array(want)) {
        ck_assert_msg(json_array_size(want) == json_array_size(got),
                      "%s: %s has %zu items, want %zu", where, key, json_array_size(got),
                      json_array_size(want));
        for (size_t i = 0; i < json_array_size(want); i++)
            s_match(where, key, json_array_get(want, i), json_array_get(got, i));
    } else {
        ck_assert_msg(json_equal(want, got), "%s: %s differs", where, key);
    }
}

START_TEST(vectors_all_keys)
{
    char path[512];
    snprintf(path, sizeof path, "%s/hj1239/vectors.jsonl", vem_test_vectors_dir());
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    vem_hj1239_frame_t *frame = malloc(sizeof *frame);
    static uint8_t wire[70000];
    char line[16384];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *v = json_loads(line, 0, NULL);
        ck_assert_ptr_nonnull(v);
        const char *name = json_string_value(json_object_get(v, "name"));
        long n = vem_test_unhex(json_string_value(json_object_get(v, "hex")), wire, sizeof wire);
        ck_assert_int_gt(n, 0);
        vem_hj1239_error_t err;
        json_t *got;
        if (vem_hj1239_decode(wire, (size_t)n, 0, frame, &err) == VEM_HJ1239_OK)
            got = vem_frame_json_new(frame);
        else
            got = vem_frame_json_error(&err, frame);
        json_t *expect = json_object_get(v, "expect");
        s_match(name, "expect", expect, got);
        if (json_object_get(expect, "error")) {
            ck_assert(json_is_string(json_object_get(got, "detail")));
            ck_assert(json_is_integer(json_object_get(got, "offset")));
        }
        json_decref(got);
        json_decref(v);
        count++;
    }
    fclose(f);
    free(frame);
    ck_assert_int_ge(count, 15);
}
END_TEST

/* How numbers print with the recommended flags: like the vectors, not 31.350000000000001. */
START_TEST(printing)
{
    static const char hex[] =
        "2323024C5A5A5445535456494E303030303030310101002E18030508090A000402FFFFC9AD832D5002733F77"
        "FFFFFE41D4FEFFFEFFFEFFFF8A01FFFFFFFFFFFFFFFF0012D687FB";
    uint8_t wire[128];
    long n = vem_test_unhex(hex, wire, sizeof wire);
    vem_hj1239_frame_t *frame = malloc(sizeof *frame);
    ck_assert_int_eq(vem_hj1239_decode(wire, (size_t)n, 0, frame, NULL), VEM_HJ1239_OK);
    json_t *j = vem_frame_json_new(frame);
    char *s = json_dumps(j, VEM_FRAME_JSON_DUMP_FLAGS | JSON_COMPACT);
    ck_assert_ptr_nonnull(strstr(s, "\"fuel_rate_lph\":31.35,"));
    ck_assert_ptr_nonnull(strstr(s, "\"engine_rpm\":1450.0,"));
    ck_assert_ptr_nonnull(strstr(s, "\"nox_up_ppm\":612.35,"));
    ck_assert_ptr_nonnull(strstr(s, "\"odometer_km\":123456.7,"));
    ck_assert_ptr_nonnull(strstr(s, "\"torque_pct\":48,"));
    ck_assert_ptr_nonnull(strstr(s, "\"speed_kmh\":null"));
    ck_assert_ptr_nonnull(
        strstr(s, "\"invalid\":[\"coolant_c\",\"lat\",\"lon\",\"nox_down_ppm\",\"speed_kmh\"]"));
    ck_assert_ptr_nonnull(
        strstr(s, "\"abnormal\":[\"dpf_dp_kpa\",\"reagent_pct\",\"scr_in_c\",\"scr_out_c\"]"));
    free(s);
    json_decref(j);
    free(frame);
}
END_TEST

/* An encrypted frame: the error record still carries the envelope. */
START_TEST(unsupported_encryption_envelope)
{
    static const char hex[] = "2323044C5A5A5445535456494E303030303030310103000818030511090A00073F";
    uint8_t wire[64];
    long n = vem_test_unhex(hex, wire, sizeof wire);
    vem_hj1239_frame_t *frame = malloc(sizeof *frame);
    vem_hj1239_error_t err;
    ck_assert_int_eq(vem_hj1239_decode(wire, (size_t)n, 0, frame, &err),
                     VEM_HJ1239_UNSUPPORTED_ENCRYPTION);
    json_t *j = vem_frame_json_error(&err, frame);
    ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "unsupported_encryption");
    ck_assert_str_eq(json_string_value(json_object_get(j, "encryption")), "sm4");
    ck_assert_str_eq(json_string_value(json_object_get(j, "vin")), "LZZTESTVIN0000001");
    ck_assert_str_eq(json_string_value(json_object_get(j, "cmd")), "logout");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "offset")), 21);
    json_decref(j);
    free(frame);
}
END_TEST

/* The one hex writer: two lowercase digits a byte, high nibble first, and the '\0'; the JSON
 * string and a buffer of 200 bytes (past the stack buffer) hold the same text. */
START_TEST(hex_text)
{
    static const uint8_t bytes[] = {0x00, 0x0f, 0xa5, 0xff, 0x10};
    char out[2 * sizeof bytes + 2];
    memset(out, '#', sizeof out);
    vem_frame_json_hex_text(out, bytes, sizeof bytes);
    ck_assert_str_eq(out, "000fa5ff10");
    ck_assert_int_eq(out[sizeof out - 1], '#');
    vem_frame_json_hex_text(out, bytes, 0);
    ck_assert_str_eq(out, "");
    uint8_t big[200];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    json_t *j = vem_frame_json_hex(big, sizeof big);
    const char *t = json_string_value(j);
    ck_assert_uint_eq(strlen(t), 400);
    ck_assert(strncmp(t, "00070e15", 8) == 0); /* 0, 7, 14, 21 */
    ck_assert(strncmp(t + 398, "71", 2) == 0); /* 199 x 7 = 1393 = 0x571, its low byte 0x71 */
    json_decref(j);
}
END_TEST

Suite *vem_suite_frame_json(void);
Suite *vem_suite_frame_json(void)
{
    Suite *s = suite_create("frame_json");
    TCase *tc = tcase_create("frame_json");
    tcase_add_test(tc, vectors_all_keys);
    tcase_add_test(tc, printing);
    tcase_add_test(tc, unsupported_encryption_envelope);
    tcase_add_test(tc, hex_text);
    suite_add_tcase(s, tc);
    return s;
}
