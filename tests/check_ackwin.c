/* check_ackwin — the low-water mark follows exactly the longest done prefix, whatever the
 * order of completions; checked against a plain array of flags. */
#include "ackwin.h"

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>

START_TEST(in_order_and_gaps)
{
    vem_ackwin_t *win = vem_ackwin_new(100);
    ck_assert_uint_eq(vem_ackwin_mark(win), 100);
    ck_assert_uint_eq(vem_ackwin_done(win, 101), 101);
    ck_assert_uint_eq(vem_ackwin_done(win, 103), 101); /* 102 missing */
    ck_assert_uint_eq(vem_ackwin_done(win, 104), 101);
    ck_assert_uint_eq(vem_ackwin_pending(win), 2);
    ck_assert_uint_eq(vem_ackwin_done(win, 104), 101); /* a repeat changes nothing */
    ck_assert_uint_eq(vem_ackwin_pending(win), 2);
    ck_assert_uint_eq(vem_ackwin_done(win, 50), 101); /* below the mark: already done */
    ck_assert_uint_eq(vem_ackwin_done(win, 102), 104);
    ck_assert_uint_eq(vem_ackwin_pending(win), 0);
    vem_ackwin_destroy(&win);
    ck_assert_ptr_null(win);
    vem_ackwin_destroy(&win);
}
END_TEST

START_TEST(far_ahead_grows)
{
    vem_ackwin_t *win = vem_ackwin_new(0);
    ck_assert_uint_eq(vem_ackwin_done(win, 100000), 0);
    ck_assert_uint_eq(vem_ackwin_done(win, 5), 0);
    for (uint64_t s = 1; s < 100000; s++)
        vem_ackwin_done(win, s);
    ck_assert_uint_eq(vem_ackwin_mark(win), 100000);
    ck_assert_uint_eq(vem_ackwin_pending(win), 0);
    vem_ackwin_destroy(&win);
}
END_TEST

START_TEST(random_order_matches_reference)
{
    enum { N = 20000 };
    static uint64_t order[N];
    static bool done[N + 1];
    srand(1239);
    for (uint64_t i = 0; i < N; i++)
        order[i] = i + 1;
    /* Local shuffles: completions arrive at most a few thousand places out of order. */
    for (uint64_t i = 0; i < N; i++) {
        uint64_t j = i + (uint64_t)rand() % 3000;
        if (j < N) {
            uint64_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
    vem_ackwin_t *win = vem_ackwin_new(0);
    uint64_t prefix = 0;
    for (uint64_t i = 0; i < N; i++) {
        done[order[i]] = true;
        while (prefix < N && done[prefix + 1])
            prefix++;
        ck_assert_uint_eq(vem_ackwin_done(win, order[i]), prefix);
    }
    ck_assert_uint_eq(prefix, N);
    vem_ackwin_destroy(&win);
}
END_TEST

Suite *vem_suite_ackwin(void);
Suite *vem_suite_ackwin(void)
{
    Suite *s = suite_create("ackwin");
    TCase *tc = tcase_create("ackwin");
    tcase_add_test(tc, in_order_and_gaps);
    tcase_add_test(tc, far_ahead_grows);
    tcase_add_test(tc, random_order_matches_reference);
    suite_add_tcase(s, tc);
    return s;
}
