/* check_session — serial continuity, duplicates, re-sends, daily serial reset in Beijing
 * time, skew, and the table itself. Times are worked by hand: 2024-03-05T00:00:00Z is
 * 1709596800 (19723 days to 2024-01-01, plus 64). */
#include "session.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#define VIN   "LZZTESTVIN0000001"
#define T0    1709596800LL /* 2024-03-05 08:00:00 Beijing */
#define US(t) ((int64_t)(t)*1000000)

START_TEST(serial_gaps_are_counted)
{
    vem_sessions_t *t = vem_sessions_new(64);
    vem_session_verdict_t v;
    for (uint16_t seq = 1; seq <= 3; seq++) {
        v = vem_sessions_observe(t, VIN, VEM_FRAME_LIVE, T0 + 10 * seq, seq, US(T0 + 10 * seq + 1));
        ck_assert(!v.duplicate);
        ck_assert_uint_eq(v.gap, 0);
    }
    v = vem_sessions_observe(t, VIN, VEM_FRAME_LIVE, T0 + 60, 6, US(T0 + 61)); /* 4, 5 lost */
    ck_assert_uint_eq(v.gap, 2);
    v = vem_sessions_observe(t, VIN, VEM_FRAME_LIVE, T0 + 70, 7, US(T0 + 71));
    ck_assert_uint_eq(v.gap, 0);
    const vem_session_t *s = vem_sessions_find(t, VIN);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->live_frames, 5);
    ck_assert_uint_eq(s->missing, 2);
    ck_assert_uint_eq(s->last_live_seq, 7);
    ck_assert_int_eq(s->skew_s, 1);
    vem_sessions_destroy(&t);
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(resends_and_repeats_are_deduplicated)
{
    vem_sessions_t *t = vem_sessions_new(64);
    ck_assert(!vem_sessions_observe(t, VIN, VEM_FRAME_LIVE, T0, 3, US(T0)).duplicate);
    /* The terminal missed our reply and sends the same live frame again. */
    ck_assert(vem_sessions_observe(t, VIN, VEM_FRAME_LIVE, T0, 3, US(T0 + 3)).duplicate);
    /* After an outage it re-sends it as 0x03 as well: still the same data. */
    ck_assert(vem_sessions_observe(t, VIN, VEM_FRAME_RESENT, T0, 3, US(T0 + 300)).duplicate);
    /* Same serial at another time is another frame. */
    ck_assert(!vem_sessions_observe(t, VIN, VEM_FRAME_RESENT, T0 - 10, 2, US(T0 + 301)).duplicate);
    /* A live frame with the serial of a re-sent one but another time is new too. */
    ck_assert(!vem_sessions_observe(t, VIN, VEM_FRAME_LIVE, T0 + 10, 4, US(T0 + 302)).duplicate);
    const vem_session_t *s = vem_sessions_find(t, VIN);
    ck_assert_uint_eq(s->live_frames, 2);
    ck_assert_uint_eq(s->resent_frames, 1);
    ck_assert_uint_eq(s->duplicates, 2);
    ck_assert_uint_eq(s->missing, 0);      /* re-sends never count as gaps */
    ck_assert_uint_eq(s->by_cmd[0x02], 3); /* every copy is counted as received */
    ck_assert_uint_eq(s->by_cmd[0x03], 2);
    vem_sessions_destroy(&t);
}
END_TEST

START_TEST(serial_restarts_at_beijing_midnight)
{
    vem_sessions_t *t = vem_sessions_new(64);
    int64_t before = 1709654390; /* 2024-03-05 23:59:50 +08:00 */
    int64_t after = 1709654400;  /* 2024-03-06 00:00:00 +08:00 */
    vem_sessions_observe(t, VIN, VEM_FRAME_LIVE, before, 8000, US(before));
    vem_session_verdict_t v = vem_sessions_observe(t, VIN, VEM_FRAME_LIVE, after, 1, US(after));
    ck_assert(v.serial_reset);
    ck_assert_uint_eq(v.gap, 0);
    /* 16:00 UTC is Beijing midnight, UTC midnight is not: no reset at 08:00 Beijing. */
    vem_sessions_observe(t, "LZZTESTVIN0000002", VEM_FRAME_LIVE, T0 - 10, 500, US(T0));
    v = vem_sessions_observe(t, "LZZTESTVIN0000002", VEM_FRAME_LIVE, T0 + 10, 503, US(T0));
    ck_assert(!v.serial_reset);
    ck_assert_uint_eq(v.gap, 2);
    /* A new day whose first frames were lost: serials 1..4 are missing. */
    v = vem_sessions_observe(t, VIN, VEM_FRAME_LIVE, after + 86400, 5, US(after + 86400));
    ck_assert(v.serial_reset);
    ck_assert_uint_eq(v.gap, 4);
    vem_sessions_destroy(&t);
}
END_TEST

START_TEST(window_forgets_old_keys)
{
    vem_sessions_t *t = vem_sessions_new(4);
    for (uint16_t seq = 1; seq <= 5; seq++)
        vem_sessions_observe(t, VIN, VEM_FRAME_LIVE, T0 + seq, seq, US(T0 + seq));
    /* Key 1 left the 4-frame window; 2..5 are remembered. */
    ck_assert(!vem_sessions_observe(t, VIN, VEM_FRAME_RESENT, T0 + 1, 1, US(T0 + 9)).duplicate);
    ck_assert(vem_sessions_observe(t, VIN, VEM_FRAME_RESENT, T0 + 5, 5, US(T0 + 9)).duplicate);
    vem_sessions_destroy(&t);
}
END_TEST

START_TEST(login_logout_and_many_vehicles)
{
    vem_sessions_t *t = vem_sessions_new(8);
    char vin[VEM_VIN_LEN + 1];
    for (int i = 0; i < 5000; i++) {
        snprintf(vin, sizeof vin, "LZZTESTVIN%07d", i);
        vem_sessions_observe(t, vin, VEM_FRAME_LOGIN, T0 + i, (uint16_t)(i % 7 + 1), US(T0 + i));
    }
    ck_assert_uint_eq(vem_sessions_count(t), 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(vin, sizeof vin, "LZZTESTVIN%07d", i);
        const vem_session_t *s = vem_sessions_find(t, vin);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s->vin, vin);
        ck_assert_int_eq(s->login_at, T0 + i);
        ck_assert_uint_eq(s->login_seq, i % 7 + 1);
        ck_assert_uint_eq(s->logins, 1);
    }
    ck_assert_ptr_null(vem_sessions_find(t, "LZZTESTVIN9999999"));
    vem_sessions_observe(t, "LZZTESTVIN0000042", VEM_FRAME_LOGOUT, T0, 1, US(T0));
    ck_assert_uint_eq(vem_sessions_find(t, "LZZTESTVIN0000042")->logouts, 1);
    vem_sessions_destroy(&t);
}
END_TEST

START_TEST(vin_hash_is_fnv1a_64)
{
    /* FNV-1a 64 of the 17 ASCII bytes, computed independently (offset basis
     * 0xcbf29ce484222325, prime 0x100000001b3). */
    ck_assert_uint_eq(vem_vin_hash(VIN), 0x8ce4f9013a3cfefbULL);
}
END_TEST

Suite *vem_suite_session(void);
Suite *vem_suite_session(void)
{
    Suite *s = suite_create("session");
    TCase *tc = tcase_create("session");
    tcase_add_test(tc, serial_gaps_are_counted);
    tcase_add_test(tc, resends_and_repeats_are_deduplicated);
    tcase_add_test(tc, serial_restarts_at_beijing_midnight);
    tcase_add_test(tc, window_forgets_old_keys);
    tcase_add_test(tc, login_logout_and_many_vehicles);
    tcase_add_test(tc, vin_hash_is_fnv1a_64);
    suite_add_tcase(s, tc);
    return s;
}
