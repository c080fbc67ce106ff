/* check_vemctl_fmt — vemctl's numbers at their field's resolution and its padding by display
 * width. Expected texts are worked by hand from hj1239.md's resolutions (lat/lon 1e-6 degree,
 * speed 1/256 km/h, temperatures 0.03125 degree C from -273, NOx 0.05 ppm from -200) and from
 * the width of CJK characters on a terminal (two columns each). */
#include "vemctl_fmt.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(decimals_from_the_field_table)
{
    ck_assert_int_eq(vemctl_fmt_decimals("lat"), 6);
    ck_assert_int_eq(vemctl_fmt_decimals("lon"), 6);
    ck_assert_int_eq(vemctl_fmt_decimals("speed_kmh"), 8); /* 1/256 = 0.00390625 */
    ck_assert_int_eq(vemctl_fmt_decimals("scr_in_c"), 5);  /* 0.03125 */
    ck_assert_int_eq(vemctl_fmt_decimals("nox_up_ppm"), 2);
    ck_assert_int_eq(vemctl_fmt_decimals("torque_pct"), 0); /* integer field */
    ck_assert_int_eq(vemctl_fmt_decimals("no_ppm"), -1);    /* roadside: no fixed resolution */
    ck_assert_int_eq(vemctl_fmt_decimals("measured"), -1);
}
END_TEST

START_TEST(numbers_at_resolution)
{
    static const struct {
        const char *key;
        double v;
        const char *want;
    } cases[] = {
        {"lat", 32450000 * 1e-6, "32.45"}, /* the double is 32.450000000000003 */
        {"lon", 118689985 * 1e-6, "118.689985"},
        {"lat", 32.0, "32"},
        {"speed_kmh", 16001 / 256.0, "62.50390625"},
        {"speed_kmh", 62.5, "62.5"},
        {"scr_in_c", 8736 * 0.03125 - 273, "0"},
        {"scr_in_c", 8737 * 0.03125 - 273, "0.03125"},
        {"nox_up_ppm", 3 * 0.05 - 200, "-199.85"},
        {"nox_down_ppm", 4000 * 0.05 - 200, "0"}, /* zero point 0x0FA0 */
        {"coolant_c", -0.0, "0"},
        {"torque_pct", 12.0, "12"},
        {"odometer_km", 1234567 * 0.1, "123456.7"},
        {"measured", 0.1 + 0.2, "0.3"}, /* no resolution: 15 significant digits */
        {"no_ppm", 850.0, "850"},
        {NULL, 700.0000000000001, "700"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        vemctl_fmt_number(cases[i].key, cases[i].v, out, sizeof out);
        ck_assert_msg(strcmp(out, cases[i].want) == 0, "%s: got %s, want %s",
                      cases[i].key ? cases[i].key : "(none)", out, cases[i].want);
    }
}
END_TEST

/* Table columns of verdicts: worked by hand from the rule (whole from 1000, else 4 digits). */
START_TEST(brief_values)
{
    char out[64];
    vemctl_fmt_brief(0.0200883074164014, out, sizeof out);
    ck_assert_str_eq(out, "0.02009");
    vemctl_fmt_brief(2542, out, sizeof out);
    ck_assert_str_eq(out, "2542");
    vemctl_fmt_brief(269531.7, out, sizeof out);
    ck_assert_str_eq(out, "269532");
    vemctl_fmt_brief(3.91, out, sizeof out);
    ck_assert_str_eq(out, "3.91");
    vemctl_fmt_brief(0.1 + 0.2, out, sizeof out);
    ck_assert_str_eq(out, "0.3");
    vemctl_fmt_brief(999.96, out, sizeof out);
    ck_assert_str_eq(out, "1000");
}
END_TEST

START_TEST(json_rounded_by_key)
{
    json_error_t err;
    json_t *doc = json_loads("{\"lat\": 32.450000000000003, \"torque_pct\": 12.0, "
                             "\"recent\": [{\"lon\": 118.68998499999999, \"speed_kmh\": 62.5}], "
                             "\"dtcs\": [\"00123401\"], \"measured\": 0.30000000000000004, "
                             "\"seq\": 7, \"vin\": \"LVEM\"}",
                             0, &err);
    ck_assert_ptr_nonnull(doc);
    vemctl_fmt_json(doc);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    ck_assert_str_eq(text, "{\"dtcs\":[\"00123401\"],\"lat\":32.45,\"measured\":0.3,"
                           "\"recent\":[{\"lon\":118.689985,\"speed_kmh\":62.5}],\"seq\":7,"
                           "\"torque_pct\":12,\"vin\":\"LVEM\"}");
    free(text);
    json_decref(doc);
}
END_TEST

START_TEST(display_width)
{
    vemctl_fmt_init();
    ck_assert_int_eq(vemctl_fmt_width("LVEM"), 4);
    ck_assert_int_eq(vemctl_fmt_width("\xE4\xBA\xAC"
                                      "A12345"),
                     8); /* 京A12345: 2 + 6 */
    ck_assert_int_eq(vemctl_fmt_width("\xE6\xB2\xAA"
                                      "A00001D"),
                     9); /* 沪A00001D */
    ck_assert_int_eq(vemctl_fmt_width(""), 0);
    ck_assert_int_eq(vemctl_fmt_width("\xFF"
                                      "ab"),
                     3); /* not UTF-8: bytes */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vemctl_fmt_pad(f,
                   "\xE4\xBA\xAC"
                   "A12345",
                   10); /* two spaces after 8 columns */
    fputc('|', f);
    vemctl_fmt_pad(f, "LVEM", 6);
    fputc('|', f);
    vemctl_fmt_pad(f, "toolongvalue", 4); /* wider than the column: no spaces */
    fputc('|', f);
    fclose(f);
    ck_assert_str_eq(buf, "\xE4\xBA\xAC"
                          "A12345  |LVEM  |toolongvalue|");
    free(buf);
}
END_TEST

Suite *vem_suite_vemctl_fmt(void);
Suite *vem_suite_vemctl_fmt(void)
{
    Suite *s = suite_create("vemctl_fmt");
    TCase *tc = tcase_create("vemctl_fmt");
    tcase_add_test(tc, decimals_from_the_field_table);
    tcase_add_test(tc, numbers_at_resolution);
    tcase_add_test(tc, brief_values);
    tcase_add_test(tc, json_rounded_by_key);
    tcase_add_test(tc, display_width);
    suite_add_tcase(s, tc);
    return s;
}
