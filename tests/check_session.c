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

/* The cap forgets the least recently seen session without state; sessions with state are
 * passed over; a table of nothing but state refuses the new VIN. Every survivor is still
 * found after the removals (the probe runs were shifted back right). */
START_TEST(cap_evicts_least_recent_without_state)
{
    vem_sessions_t *t = vem_sessions_new(8);
    vem_sessions_set_limits(t, 100, 0);
    char vin[VEM_VIN_LEN + 1];
    int dummy;
    for (int i = 0; i < 100; i++) {
        snprintf(vin, sizeof vin, "LZZCAPTEST%07d", i);
        vem_session_verdict_t v =
            vem_sessions_observe(t, vin, VEM_FRAME_LOGIN, T0 + i, 1, US(T0 + i));
        ck_assert(!v.evicted && !v.refused);
        if (i % 10 == 0)
            *vem_sessions_state(t, vin) = &dummy; /* 10 vehicles hold state */
    }
    /* vehicle 1 is seen again, so 2 is now the least recently seen without state */
    vem_sessions_observe(t, "LZZCAPTEST0000001", VEM_FRAME_LOGIN, T0 + 200, 2, US(T0 + 200));
    vem_session_verdict_t v =
        vem_sessions_observe(t, "LZZCAPTEST9000000", VEM_FRAME_LOGIN, T0 + 201, 1, US(T0 + 201));
    ck_assert(v.evicted && !v.refused);
    ck_assert_uint_eq(vem_sessions_count(t), 100);
    ck_assert_ptr_null(vem_sessions_find(t, "LZZCAPTEST0000002"));
    ck_assert_ptr_nonnull(vem_sessions_find(t, "LZZCAPTEST0000001"));
    ck_assert_ptr_nonnull(vem_sessions_find(t, "LZZCAPTEST0000000")); /* state: kept */
    /* 10000 more new VINs: the table never grows past 100, the state holders all stay */
    for (int i = 0; i < 10000; i++) {
        snprintf(vin, sizeof vin, "LZZFORGED%08d", i);
        v = vem_sessions_observe(t, vin, VEM_FRAME_LOGIN, T0 + 300, 1, US(T0 + 300 + i));
        ck_assert(v.evicted && !v.refused);
        ck_assert_uint_le(vem_sessions_count(t), 100);
    }
    for (int i = 0; i < 100; i += 10) {
        snprintf(vin, sizeof vin, "LZZCAPTEST%07d", i);
        ck_assert_ptr_nonnull(vem_sessions_find(t, vin));
    }
    for (int i = 10000 - 90; i < 10000; i++) {
        snprintf(vin, sizeof vin, "LZZFORGED%08d", i);
        ck_assert_ptr_nonnull(vem_sessions_find(t, vin));
    }
    /* every session holds state: a new VIN is refused, the table stays as it is */
    for (int i = 10000 - 90; i < 10000; i++) {
        snprintf(vin, sizeof vin, "LZZFORGED%08d", i);
        *vem_sessions_state(t, vin) = &dummy;
    }
    v = vem_sessions_observe(t, "LZZREFUSED0000001", VEM_FRAME_LIVE, T0, 1, US(T0 + 400));
    ck_assert(v.refused && !v.evicted && !v.duplicate);
    ck_assert_ptr_null(vem_sessions_find(t, "LZZREFUSED0000001"));
    ck_assert_uint_eq(vem_sessions_count(t), 100);
    /* restored state always gets its session, past the cap */
    ck_assert_ptr_nonnull(vem_sessions_state_new(t, "LZZRESTORED000001"));
    ck_assert_uint_eq(vem_sessions_count(t), 101);
    vem_sessions_destroy(&t); /* no state_free: the dummies are not freed */
}
END_TEST

/* Idle sessions without state are forgotten; those with state stay whatever their age. */
START_TEST(idle_sessions_without_state_expire)
{
    vem_sessions_t *t = vem_sessions_new(8);
    vem_sessions_set_limits(t, 0, US(3600));
    int dummy;
    vem_sessions_observe(t, "LZZIDLE0000000001", VEM_FRAME_LOGIN, T0, 1, US(T0));
    vem_sessions_observe(t, "LZZIDLE0000000002", VEM_FRAME_LIVE, T0, 1, US(T0 + 10));
    *vem_sessions_state(t, "LZZIDLE0000000002") = &dummy;
    vem_sessions_observe(t, "LZZIDLE0000000003", VEM_FRAME_LOGIN, T0, 1, US(T0 + 20));
    vem_sessions_observe(t, "LZZIDLE0000000004", VEM_FRAME_LOGIN, T0, 1, US(T0 + 4000));
    ck_assert_uint_eq(vem_sessions_expire(t, US(T0 + 3600 + 15)), 1); /* only 1 is 3600 s old */
    ck_assert_ptr_null(vem_sessions_find(t, "LZZIDLE0000000001"));
    ck_assert_uint_eq(vem_sessions_expire(t, US(T0 + 100000)), 2); /* 3 and 4; 2 has state */
    ck_assert_uint_eq(vem_sessions_count(t), 1);
    ck_assert_ptr_nonnull(vem_sessions_find(t, "LZZIDLE0000000002"));
    vem_sessions_destroy(&t);
}
END_TEST

/* State a peer asks for never grows the table past its cap: it takes the place of a session
 * without state, or none. */
START_TEST(state_try_keeps_the_cap)
{
    vem_sessions_t *t = vem_sessions_new(8);
    vem_sessions_set_limits(t, 2, 0);
    int dummy;
    bool evicted;
    vem_sessions_observe(t, "LZZTRY00000000001", VEM_FRAME_LOGIN, T0, 1, US(T0));
    void **slot = vem_sessions_state_try(t, "LZZTRY00000000002", &evicted);
    ck_assert_ptr_nonnull(slot);
    ck_assert(!evicted); /* room below the cap */
    *slot = &dummy;
    /* at the cap: session 1 has no state and goes for the new VIN */
    slot = vem_sessions_state_try(t, "LZZTRY00000000003", &evicted);
    ck_assert_ptr_nonnull(slot);
    ck_assert(evicted);
    ck_assert_ptr_null(vem_sessions_find(t, "LZZTRY00000000001"));
    *slot = &dummy;
    /* both hold state now: refused, and the table stays at 2 */
    ck_assert_ptr_null(vem_sessions_state_try(t, "LZZTRY00000000004", &evicted));
    ck_assert(!evicted);
    ck_assert_uint_eq(vem_sessions_count(t), 2);
    /* a VIN already in the table gets its slot whatever the cap */
    void **two = vem_sessions_state(t, "LZZTRY00000000002");
    ck_assert_ptr_nonnull(two);
    ck_assert_ptr_eq(vem_sessions_state_try(t, "LZZTRY00000000002", &evicted), two);
    /* while vem_sessions_state_new grows past the cap (state that must not be lost) */
    ck_assert_ptr_nonnull(vem_sessions_state_new(t, "LZZTRY00000000004"));
    ck_assert_uint_eq(vem_sessions_count(t), 3);
    vem_sessions_destroy(&t);
}
END_TEST

typedef struct {
    char vin[3][VEM_VIN_LEN + 1];
    size_t n;
} s_seen_t;

static void s_collect(void *arg, const vem_session_t *session)
{
    s_seen_t *seen = arg;
    ck_assert_uint_lt(seen->n, 3);
    memcpy(seen->vin[seen->n++], session->vin, VEM_VIN_LEN + 1);
}

/* The status answer: the most recently seen first, at most the limit. */
START_TEST(recent_lists_most_recent_first)
{
    vem_sessions_t *t = vem_sessions_new(8);
    vem_sessions_observe(t, "LZZRECENT00000001", VEM_FRAME_LOGIN, T0, 1, US(T0));
    vem_sessions_observe(t, "LZZRECENT00000002", VEM_FRAME_LOGIN, T0, 1, US(T0 + 1));
    vem_sessions_observe(t, "LZZRECENT00000003", VEM_FRAME_LOGIN, T0, 1, US(T0 + 2));
    vem_sessions_observe(t, "LZZRECENT00000001", VEM_FRAME_LOGOUT, T0, 1, US(T0 + 3));
    s_seen_t seen = {0};
    ck_assert_uint_eq(vem_sessions_recent(t, 2, s_collect, &seen), 2);
    ck_assert_str_eq(seen.vin[0], "LZZRECENT00000001");
    ck_assert_str_eq(seen.vin[1], "LZZRECENT00000003");
    vem_sessions_destroy(&t);
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
    tcase_add_test(tc, cap_evicts_least_recent_without_state);
    tcase_add_test(tc, idle_sessions_without_state_expire);
    tcase_add_test(tc, state_try_keeps_the_cap);
    tcase_add_test(tc, recent_lists_most_recent_first);
    suite_add_tcase(s, tc);
    return s;
}
