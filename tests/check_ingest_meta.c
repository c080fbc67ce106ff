/* check_ingest_meta — what a spool record's meta text carries for the workers (daemon/ingest.c):
 * intake's paused total on a frame (" ~p<us>", written only once intake has been paused, so a
 * spool of an earlier version reads as never paused) and a roadside reading's route (" >V:" or
 * " >P:"). Expected values are the texts' own digits and ids, written out by hand. */
#include "ingest_int.h"

#include <check.h>
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
    tcase_add_test(tc, route_of_a_reading);
    suite_add_tcase(s, tc);
    return s;
}
