/* check_ingest_meta — what ingest tells the workers (daemon/ingest.c): intake's paused total
 * on a frame's spool meta text (" ~p<us>", written only once intake has been paused, so a
 * spool of an earlier version reads as never paused), the paused total a worker's silence
 * sweep sees, and a roadside reading's route (" >V:" or " >P:"). Expected values are the
 * texts' own digits and ids, and sums worked by hand. */
#include "ingest_int.h"

#include <check.h>
#include <stdatomic.h>
#include <string.h>

START_TEST(paused_total_of_a_frame)
{
    ck_assert_int_eq(vem_ingest_meta_paused("tcp 127.0.0.1:40122 #7 ~p140567000"), 140567000);
    ck_assert_int_eq(vem_ingest_meta_paused("gateway ~p1"), 1);
    /* never paused, or written before the total existed */
    ck_assert_int_eq(vem_ingest_meta_paused("tcp 127.0.0.1:40122 #7"), 0);
    ck_assert_int_eq(vem_ingest_meta_paused("gateway"), 0);
    ck_assert_int_eq(vem_ingest_meta_paused(""), 0);
    /* damaged: no number, or a negative one, counts as none */
    ck_assert_int_eq(vem_ingest_meta_paused("tcp 127.0.0.1:40122 #7 ~p"), 0);
    ck_assert_int_eq(vem_ingest_meta_paused("tcp 127.0.0.1:40122 #7 ~p-5"), 0);
    /* beyond 2^50 us (35 years), or beyond int64: damage, not a pause */
    ck_assert_int_eq(vem_ingest_meta_paused(" ~p1125899906842624"), 1125899906842624);
    ck_assert_int_eq(vem_ingest_meta_paused(" ~p1125899906842625"), 0);
    ck_assert_int_eq(vem_ingest_meta_paused(" ~p99999999999999999999"), 0);
}
END_TEST

/* What a worker takes for the paused total at a wall-clock time. Worked by hand: intake closed
 * when the wall clock read 10,000,000 us with 50 us paused before, so its clock stands at
 * 9,999,950; at 12,000,000 the pause has lasted 2,000,000 us more. */
START_TEST(paused_total_seen_by_a_worker)
{
    _Atomic int64_t total = 50, closed_at = 0;
    ck_assert_int_eq(vem_ingest_paused_now(&total, &closed_at, 12000000), 50); /* reading */
    atomic_store(&closed_at, 10000000 - 50);
    ck_assert_int_eq(vem_ingest_paused_now(&total, &closed_at, 12000000), 2000050);
    /* the pause ends at 12,000,000: read between the two stores, the larger (the total
     * already taken, the pause counted up to now) */
    atomic_store(&total, 2000050);
    ck_assert_int_eq(vem_ingest_paused_now(&total, &closed_at, 12000000), 2000050);
    ck_assert_int_eq(vem_ingest_paused_now(&total, &closed_at, 12000001), 2000051);
    atomic_store(&closed_at, 0);
    ck_assert_int_eq(vem_ingest_paused_now(&total, &closed_at, 15000000), 2000050);
}
END_TEST

START_TEST(route_of_a_reading)
{
    ck_assert_str_eq(vem_ingest_route("station RSD-1 >V:LVEMTEST000000001"), "V:LVEMTEST000000001");
    ck_assert_str_eq(vem_ingest_route("station RSD-1 >P:京A12345"), "P:京A12345");
    ck_assert_ptr_null(vem_ingest_route("station RSD-1"));
    ck_assert_ptr_null(vem_ingest_route("station RSD-1 >X:1"));
}
END_TEST

Suite *vem_suite_ingest_meta(void);
Suite *vem_suite_ingest_meta(void)
{
    Suite *s = suite_create("ingest_meta");
    TCase *tc = tcase_create("meta");
    tcase_add_test(tc, paused_total_of_a_frame);
    tcase_add_test(tc, paused_total_seen_by_a_worker);
    tcase_add_test(tc, route_of_a_reading);
    suite_add_tcase(s, tc);
    return s;
}
