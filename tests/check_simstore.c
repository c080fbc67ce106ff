/* check_simstore — a simulated terminal's store of unacknowledged frames: frames wait in the
 * order they were collected, go in flight when written, are forgotten when acknowledged (in
 * any order, once), come back to waiting when the link breaks, and keys must ascend. */
#include "sim_store.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static void s_add(vem_sim_store_t *st, int64_t t)
{
    char frame[32];
    int n = snprintf(frame, sizeof frame, "frame@%lld", (long long)t);
    ck_assert_int_eq(vem_sim_store_add(st, t, (const uint8_t *)frame, (size_t)n), 0);
}

/* The time of the next waiting frame, -1 when none waits; checks its bytes too. */
static int64_t s_next(const vem_sim_store_t *st)
{
    int64_t t = -1;
    size_t len = 0;
    const uint8_t *p = vem_sim_store_next(st, &t, &len);
    if (!p)
        return -1;
    char want[32];
    int n = snprintf(want, sizeof want, "frame@%lld", (long long)t);
    ck_assert_uint_eq(len, (size_t)n);
    ck_assert_int_eq(memcmp(p, want, len), 0);
    return t;
}

START_TEST(wait_send_ack_requeue)
{
    vem_sim_store_t *st = vem_sim_store_new();
    ck_assert_int_eq(s_next(st), -1);
    ck_assert(vem_sim_store_oldest_sent(st) < 0);
    s_add(st, 109);
    s_add(st, 119);
    s_add(st, 129);
    ck_assert_int_eq(vem_sim_store_add(st, 129, (const uint8_t *)"x", 1), -1);
    ck_assert_int_eq(vem_sim_store_add(st, 100, (const uint8_t *)"x", 1), -1);
    ck_assert_uint_eq(vem_sim_store_held(st), 3);
    ck_assert_int_eq(s_next(st), 109);

    /* the newest goes out live first, then the oldest */
    ck_assert(vem_sim_store_sent(st, 129, 5.0));
    ck_assert(vem_sim_store_sent(st, 109, 6.5));
    ck_assert(!vem_sim_store_sent(st, 110, 6.5));
    ck_assert_uint_eq(vem_sim_store_in_flight(st), 2);
    ck_assert_int_eq(s_next(st), 119);
    ck_assert_double_eq(vem_sim_store_oldest_sent(st), 5.0);

    ck_assert(vem_sim_store_ack(st, 129));
    ck_assert(!vem_sim_store_ack(st, 129)); /* a second reply for it */
    ck_assert(!vem_sim_store_ack(st, 119 + 1));
    ck_assert_uint_eq(vem_sim_store_held(st), 2);
    ck_assert_uint_eq(vem_sim_store_in_flight(st), 1);
    ck_assert_double_eq(vem_sim_store_oldest_sent(st), 6.5);

    vem_sim_store_requeue(st); /* the link broke with 109 unanswered */
    ck_assert_uint_eq(vem_sim_store_in_flight(st), 0);
    ck_assert(vem_sim_store_oldest_sent(st) < 0);
    ck_assert_int_eq(s_next(st), 109);
    ck_assert(vem_sim_store_sent(st, 109, 9.0));
    ck_assert_int_eq(s_next(st), 119);
    ck_assert(vem_sim_store_ack(st, 109));
    ck_assert(vem_sim_store_ack(st, 119)); /* acknowledged while waiting: also forgotten */
    ck_assert_uint_eq(vem_sim_store_held(st), 0);
    ck_assert_uint_eq(vem_sim_store_in_flight(st), 0);
    ck_assert_int_eq(s_next(st), -1);
    /* keys keep ascending even once the store is empty */
    ck_assert_int_eq(vem_sim_store_add(st, 129, (const uint8_t *)"x", 1), -1);
    s_add(st, 139);
    ck_assert_int_eq(s_next(st), 139);
    vem_sim_store_destroy(&st);
    ck_assert_ptr_null(st);
    vem_sim_store_destroy(&st);
}
END_TEST

/* Thousands of frames acknowledged mostly in order with stragglers, through the compactions:
 * every lookup still finds the right frame and the counts add up. */
START_TEST(long_run_with_stragglers)
{
    vem_sim_store_t *st = vem_sim_store_new();
    size_t acked = 0;
    for (int64_t i = 0; i < 5000; i++) {
        s_add(st, 10 * i);
        ck_assert(vem_sim_store_sent(st, 10 * i, (double)i));
        /* answered three frames later; from frame 2000 on, each 97th never is */
        if (i >= 3 && (i < 2003 || (i - 3) % 97 != 0)) {
            ck_assert(vem_sim_store_ack(st, 10 * (i - 3)));
            acked++;
        }
    }
    ck_assert_uint_eq(vem_sim_store_held(st), 5000 - acked);
    ck_assert_double_eq(vem_sim_store_oldest_sent(st), 2037.0); /* 2037 = 97 * 21 */
    vem_sim_store_requeue(st);
    size_t left = 0;
    int64_t t;
    while ((t = s_next(st)) >= 0) {
        ck_assert(vem_sim_store_ack(st, t));
        left++;
    }
    ck_assert_uint_eq(acked + left, 5000);
    ck_assert_uint_eq(vem_sim_store_held(st), 0);
    vem_sim_store_destroy(&st);
}
END_TEST

Suite *vem_suite_simstore(void);
Suite *vem_suite_simstore(void)
{
    Suite *s = suite_create("simstore");
    TCase *tc = tcase_create("simstore");
    tcase_add_test(tc, wait_send_ack_requeue);
    tcase_add_test(tc, long_run_with_stragglers);
    suite_add_tcase(s, tc);
    return s;
}
