/* check_rsd — the roadside-reading parser against its cases and against the JSON Schema.
 *
 * tests/data/rsd/cases.jsonl lists readings with the class and key each must be refused with
 * (or "ok"). Every case goes through vem_rsd_parse; every case the schema can judge also goes
 * through an independent validator (python3-jsonschema, tests/data/rsd/schema_check.py) over
 * schema/rsd_reading.schema.json, and both must agree with the expected verdict, so the schema
 * and the code cannot drift apart. "Now" is 2026-11-30T08:00:30+08:00 with a 300 s tolerance. */
#include "rsd.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_NOW_US   INT64_C(1795996830000000) /* 2026-11-30T00:00:30Z */
#define S_FUTURE_S 300

static const char *s_data(void)
{
    const char *dir = getenv("VEM_TEST_DATA");
    return dir ? dir : "tests/data";
}

/* The case's message bytes: the raw text for a string doc, else the object dumped. */
static char *s_bytes(const json_t *c)
{
    const json_t *doc = json_object_get(c, "doc");
    if (json_is_string(doc))
        return strdup(json_string_value(doc));
    return json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

START_TEST(cases_parser)
{
    char path[512];
    snprintf(path, sizeof path, "%s/rsd/cases.jsonl", s_data());
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char line[4096];
    unsigned n = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t jerr;
        json_t *c = json_loads(line, 0, &jerr);
        ck_assert_msg(c != NULL, "case %u: %s", n, jerr.text);
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *cls = json_string_value(json_object_get(c, "class"));
        const char *key = json_string_value(json_object_get(c, "key"));
        char *bytes = s_bytes(c);
        vem_rsd_t r;
        vem_rsd_error_t err;
        vem_rsd_status_t st =
            vem_rsd_parse((const uint8_t *)bytes, strlen(bytes), S_NOW_US, S_FUTURE_S, &r, &err);
        ck_assert_msg(strcmp(vem_rsd_status_name(st), cls) == 0, "%s: got %s (%s), want %s", name,
                      vem_rsd_status_name(st), err.detail, cls);
        if (st != VEM_RSD_OK) {
            ck_assert_msg(strcmp(err.key, key) == 0, "%s: key %s, want %s", name, err.key, key);
            ck_assert_msg(err.detail[0] != '\0', "%s: no detail", name);
        }
        free(bytes);
        json_decref(c);
        n++;
    }
    fclose(f);
    ck_assert_uint_ge(n, 40);
}
END_TEST

START_TEST(cases_schema)
{
    char cmd[1200], path[512];
    snprintf(path, sizeof path, "%s/rsd/cases.jsonl", s_data());
    snprintf(cmd, sizeof cmd,
             "python3 %s/rsd/schema_check.py schema/rsd_reading.schema.json %s 2>&1", s_data(),
             path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char line[4096], verdict[512];
    unsigned n = 0, judged = 0;
    while (fgets(line, sizeof line, f)) {
        ck_assert_msg(fgets(verdict, sizeof verdict, p) != NULL,
                      "the validator stopped at case %u (is python3-jsonschema installed?)", n);
        json_t *c = json_loads(line, 0, NULL);
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *cls = json_string_value(json_object_get(c, "class"));
        const char *key = json_string_value(json_object_get(c, "key"));
        unsigned idx;
        char word[8], keys[400] = "";
        int got = sscanf(verdict, "%u %7s %399[^\n]", &idx, word, keys);
        ck_assert_msg(got >= 2 && idx == n, "validator said \"%s\" for case %u", verdict, n);
        if (strcmp(word, "skip") != 0) {
            judged++;
            bool ok = strcmp(cls, "ok") == 0;
            ck_assert_msg(ok == (strcmp(word, "ok") == 0), "%s: the schema says %s, want %s", name,
                          word, cls);
            /* an error the schema places at a key names the key the parser names */
            if (!ok && keys[0])
                ck_assert_msg(strstr(keys, key) != NULL, "%s: the schema faults %s, want %s", name,
                              keys, key);
        }
        json_decref(c);
        n++;
    }
    fclose(f);
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_uint_ge(judged, 35);
}
END_TEST

START_TEST(normalized_form)
{
    const char *msg = "{\"version\":1,\"station_id\":\"S1\",\"reading_id\":\"R1\","
                      "\"time\":\"2026-11-30T00:00:00.5Z\",\"plate\":\"京A12345\","
                      "\"plate_color\":\"yellow\",\"no_ppm\":1600,\"valid\":true}";
    vem_rsd_t r;
    vem_rsd_error_t err;
    ck_assert_int_eq(vem_rsd_parse((const uint8_t *)msg, strlen(msg), S_NOW_US, 0, &r, &err),
                     VEM_RSD_OK);
    /* 2026-11-30T00:00:00Z is 1795996800 s */
    ck_assert_int_eq(r.time_us, INT64_C(1795996800500000));
    ck_assert(isnan(r.speed_kmh));
    ck_assert_int_eq(r.lane, -1);
    json_t *o = vem_rsd_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(o, "time")),
                     "2026-11-30T08:00:00.500000+08:00");
    ck_assert_str_eq(json_string_value(json_object_get(o, "fuel")), "unknown");
    ck_assert(json_is_null(json_object_get(o, "speed_kmh")));
    ck_assert(json_is_null(json_object_get(o, "vin")));
    ck_assert(json_real_value(json_object_get(o, "no_ppm")) == 1600);
    ck_assert(json_is_true(json_object_get(o, "valid")));
    /* the normalized form is itself a reading that parses to the same values */
    char *again = json_dumps(o, JSON_COMPACT);
    vem_rsd_t r2;
    ck_assert_int_eq(vem_rsd_parse((const uint8_t *)again, strlen(again), S_NOW_US, 0, &r2, &err),
                     VEM_RSD_OK);
    ck_assert_int_eq(r2.time_us, r.time_us);
    ck_assert_str_eq(r2.plate, "京A12345");
    free(again);
    json_decref(o);
}
END_TEST

START_TEST(rejection_names_the_reading)
{
    const char *msg = "{\"version\":1,\"station_id\":\"S1\",\"reading_id\":\"R9\",\"wind\":3}";
    vem_rsd_t r;
    vem_rsd_error_t err;
    ck_assert_int_eq(vem_rsd_parse((const uint8_t *)msg, strlen(msg), S_NOW_US, 0, &r, &err),
                     VEM_RSD_UNKNOWN_KEY);
    ck_assert_str_eq(err.key, "wind");
    ck_assert_str_eq(r.station_id, "S1");
    ck_assert_str_eq(r.reading_id, "R9");
    /* time bounds are relative to the receipt, to the second */
    const char *at = "{\"version\":1,\"station_id\":\"S1\",\"reading_id\":\"R1\","
                     "\"time\":\"2026-11-30T08:05:30+08:00\",\"plate\":\"京A12345\","
                     "\"plate_color\":\"yellow\",\"valid\":true}";
    ck_assert_int_eq(vem_rsd_parse((const uint8_t *)at, strlen(at), S_NOW_US, 300, &r, &err),
                     VEM_RSD_OK);
    ck_assert_int_eq(vem_rsd_parse((const uint8_t *)at, strlen(at), S_NOW_US, 299, &r, &err),
                     VEM_RSD_BAD_TIME);
}
END_TEST

/* Nesting depths worked by hand: strings (with escaped quotes) hide their brackets, closers
 * without openers do not go below zero, and counting stops past the limit. */
START_TEST(depth_of_nesting)
{
    static const struct {
        const char *json;
        unsigned limit, depth;
    } cases[] = {
        {"", 8, 0},
        {"42", 8, 0},
        {"{}", 8, 1},
        {"{\"a\":[1,{\"b\":2}],\"c\":{}}", 8, 3},
        {"{\"a\":\"[[[{{{\"}", 8, 1},
        {"{\"a\":\"\\\"[[[\"}", 8, 1}, /* "\"[[[" is one string */
        {"]]]]{", 8, 1},
        {"[[[[[[[[[[", 2, 3}, /* stops at limit + 1 */
        {"[[]][[[]]]", 8, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *j = cases[i].json;
        unsigned d = vem_rsd_depth((const uint8_t *)j, strlen(j), cases[i].limit);
        ck_assert_msg(d == cases[i].depth, "%s: depth %u, want %u", j, d, cases[i].depth);
    }
}
END_TEST

Suite *vem_suite_rsd(void);
Suite *vem_suite_rsd(void)
{
    Suite *s = suite_create("rsd");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, cases_parser);
    tcase_add_test(tc, cases_schema);
    tcase_add_test(tc, normalized_form);
    tcase_add_test(tc, rejection_names_the_reading);
    tcase_add_test(tc, depth_of_nesting);
    suite_add_tcase(s, tc);
    return s;
}
