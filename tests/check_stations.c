/* check_stations — the pure checks of a station message (daemon/stations.c): the envelope
 * (ROUTER parts after the routing id, from a DEALER or a REQ) and the bounds on size and
 * nesting applied before the parser. Expected verdicts are worked from the message shapes. */
#include "stations.h"

#include <check.h>
#include <string.h>

#define S_NOW_US INT64_C(1795996830000000) /* 2026-11-30T08:00:30+08:00 */

START_TEST(envelope_shapes)
{
    static const struct {
        size_t sizes[4];
        int n, body;
        bool delim;
    } cases[] = {
        {{120}, 1, 0, false},        /* DEALER: the reading alone */
        {{0, 120}, 2, 1, true},      /* REQ: empty delimiter, then the reading */
        {{0}, 1, 0, false},          /* one empty part: a (bad) empty reading, no delimiter */
        {{120, 120}, 2, -1, false},  /* two readings in one message */
        {{0, 120, 5}, 3, -1, true},  /* delimiter and two parts */
        {{0, 0}, 2, 1, true},        /* delimiter and an empty reading */
        {{0}, 0, -1, false},         /* nothing after the routing id */
        {{5, 0, 120}, 3, -1, false}, /* an empty part that is not first */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool delim = !cases[i].delim;
        int body = vem_stations_envelope(cases[i].sizes, cases[i].n, &delim);
        ck_assert_msg(body == cases[i].body, "case %zu: body %d", i, body);
        ck_assert_msg(delim == cases[i].delim, "case %zu: delimiter %d", i, delim);
    }
}
END_TEST

static vem_stations_verdict_t s_check(const char *text, size_t max, unsigned depth,
                                      vem_rsd_error_t *err)
{
    vem_rsd_t r;
    return vem_stations_check((const uint8_t *)text, strlen(text), max, depth, S_NOW_US, 300, &r,
                              err);
}

START_TEST(limits_before_the_parser)
{
    const char *ok = "{\"version\":1,\"station_id\":\"S1\",\"reading_id\":\"R1\","
                     "\"time\":\"2026-11-30T08:00:00+08:00\",\"plate\":\"京A12345\","
                     "\"plate_color\":\"yellow\",\"valid\":true}";
    vem_rsd_error_t err;
    ck_assert_int_eq(s_check(ok, 4096, 1, &err), VEM_STATIONS_OK);
    ck_assert_int_eq(s_check(ok, strlen(ok), 1, &err), VEM_STATIONS_OK);
    ck_assert_int_eq(s_check(ok, strlen(ok) - 1, 1, &err), VEM_STATIONS_TOO_LARGE);
    /* depth 3: the object, an array, an object in it */
    const char *deep = "{\"version\":1,\"x\":[{\"y\":1}]}";
    ck_assert_int_eq(s_check(deep, 4096, 2, &err), VEM_STATIONS_TOO_DEEP);
    ck_assert_int_eq(err.status, VEM_RSD_BAD_JSON);
    ck_assert_ptr_nonnull(strstr(err.detail, "stations.max_json_depth 2"));
    /* within the depth, the parser has its say: x is not a key of a reading */
    ck_assert_int_eq(s_check(deep, 4096, 3, &err), VEM_STATIONS_INVALID);
    ck_assert_int_eq(err.status, VEM_RSD_UNKNOWN_KEY);
    /* 100,000 opening brackets never reach jansson */
    static char brackets[100001];
    memset(brackets, '[', sizeof brackets - 1);
    ck_assert_int_eq(s_check(brackets, sizeof brackets, 2, &err), VEM_STATIONS_TOO_DEEP);
}
END_TEST

Suite *vem_suite_stations(void);
Suite *vem_suite_stations(void)
{
    Suite *s = suite_create("stations");
    TCase *tc = tcase_create("checks");
    tcase_add_test(tc, envelope_shapes);
    tcase_add_test(tc, limits_before_the_parser);
    suite_add_tcase(s, tc);
    return s;
}
