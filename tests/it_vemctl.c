/* it_vemctl — `vemctl decode` as an operator runs it: the real binary, stdin to stdout.
 *
 * Hex mode on every shared vector: one JSON object per line, in order, with the vector's
 * cmd (or error class), exit 0 only when everything decoded and 1 when anything was rejected;
 * --raw on stream.bin: exactly stream.json's frames and its 11 skipped bytes as error records;
 * a usage error exits 2. Expected values come from the vectors. */
#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Runs `vemctl decode ARGS < input` and returns the parsed output lines (a JSON array). */
static json_t *s_decode(const char *args, const char *input_path, int *exit_code)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/vemctl decode %s < '%s'", vem_test_bin_dir(), args, input_path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    json_t *lines = json_array();
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, p) > 0) {
        json_error_t err;
        json_t *obj = json_loads(line, 0, &err);
        ck_assert_msg(obj != NULL, "not one JSON object per line: %s", line);
        json_array_append_new(lines, obj);
    }
    free(line);
    int status = pclose(p);
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return lines;
}

static json_t *s_vectors(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/hj1239/vectors.jsonl", vem_test_vectors_dir());
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    json_t *all = json_array();
    json_error_t err;
    json_t *v;
    while ((v = json_loadf(f, JSON_DISABLE_EOF_CHECK, &err)))
        json_array_append_new(all, v);
    fclose(f);
    ck_assert_uint_gt(json_array_size(all), 10);
    return all;
}

/* Writes the hex of the vectors selected by want_errors (or all) to a file, one per line. */
static void s_hex_file(json_t *vectors, const char *path, int which)
{
    FILE *f = fopen(path, "w");
    size_t i;
    json_t *v;
    json_array_foreach(vectors, i, v)
    {
        bool is_error = json_object_get(json_object_get(v, "expect"), "error") != NULL;
        if (which == 2 || (which == 1) == is_error)
            fprintf(f, "%s\n", json_string_value(json_object_get(v, "hex")));
    }
    fclose(f);
}

START_TEST(hex_lines_decode_in_order)
{
    json_t *vectors = s_vectors();
    char dir[256], good[300], all[300];
    vem_test_mkdtemp("it_vemctl", dir, sizeof dir);
    snprintf(good, sizeof good, "%s/good.hex", dir);
    snprintf(all, sizeof all, "%s/all.hex", dir);
    s_hex_file(vectors, good, 0);
    s_hex_file(vectors, all, 2);

    int rc;
    json_t *out = s_decode("", good, &rc);
    ck_assert_int_eq(rc, 0); /* every frame decoded */
    json_decref(out);

    out = s_decode("", all, &rc);
    ck_assert_int_eq(rc, 1); /* some were rejected, and decoding went on after them */
    ck_assert_uint_eq(json_array_size(out), json_array_size(vectors));
    size_t i;
    json_t *v;
    json_array_foreach(vectors, i, v)
    {
        json_t *expect = json_object_get(v, "expect"), *got = json_array_get(out, i);
        const char *name = json_string_value(json_object_get(v, "name"));
        json_t *error = json_object_get(expect, "error");
        if (error) {
            ck_assert_msg(json_equal(json_object_get(got, "error"), error), "%s: error class",
                          name);
            ck_assert_msg(json_is_integer(json_object_get(got, "offset")), "%s: offset", name);
            ck_assert_msg(json_is_string(json_object_get(got, "detail")), "%s: detail", name);
        } else {
            ck_assert_msg(json_equal(json_object_get(got, "cmd"), json_object_get(expect, "cmd")),
                          "%s: cmd", name);
            if (json_object_get(expect, "vin"))
                ck_assert_msg(
                    json_equal(json_object_get(got, "vin"), json_object_get(expect, "vin")),
                    "%s: vin", name);
        }
    }
    json_decref(out);
    json_decref(vectors);
    vem_test_rmtree(dir);
}
END_TEST

START_TEST(raw_stream_gives_the_frames_and_skipped_bytes)
{
    char bin[512], want[512];
    snprintf(bin, sizeof bin, "%s/hj1239/stream.bin", vem_test_vectors_dir());
    snprintf(want, sizeof want, "%s/hj1239/stream.json", vem_test_vectors_dir());
    json_error_t err;
    json_t *expect = json_load_file(want, 0, &err);
    ck_assert_ptr_nonnull(expect);
    int rc;
    json_t *out = s_decode("--raw", bin, &rc);
    ck_assert_int_eq(rc, 1); /* the garbage in the stream is reported */
    json_t *cmds = json_array();
    long skipped = 0;
    size_t i;
    json_t *o;
    json_array_foreach(out, i, o)
    {
        if (json_object_get(o, "error"))
            skipped += (long)json_integer_value(json_object_get(o, "skipped"));
        else
            json_array_append(cmds, json_object_get(o, "cmd"));
    }
    ck_assert(json_equal(cmds, json_object_get(expect, "cmds")));
    ck_assert_int_eq(skipped, json_integer_value(json_object_get(expect, "garbage_bytes")));
    json_decref(cmds);
    json_decref(out);
    json_decref(expect);
}
END_TEST

START_TEST(usage_error_exits_2)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/vemctl decode --bogus </dev/null 2>/dev/null",
             vem_test_bin_dir());
    int status = system(cmd);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 2);
}
END_TEST

Suite *vem_suite_vemctl(void);
Suite *vem_suite_vemctl(void)
{
    Suite *s = suite_create("vemctl");
    TCase *tc = tcase_create("decode");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, hex_lines_decode_in_order);
    tcase_add_test(tc, raw_stream_gives_the_frames_and_skipped_bytes);
    tcase_add_test(tc, usage_error_exits_2);
    suite_add_tcase(s, tc);
    return s;
}
