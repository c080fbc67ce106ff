/* check_watchdog — WATCHDOG=1 follows progress, not loop turns. */
#include "watchdog.h"

#include <check.h>

/* Regression: the watchdog pinged while every loop turned, so a worker stuck waiting on a sink
 * (its wait loop turning, nothing processed, inputs waiting) kept vemd "alive" for good. */
START_TEST(stuck_worker_stops_the_pings)
{
    vem_watchdog_t *wd = vem_watchdog_new(2, 1);
    uint64_t sink[1] = {5}, done[2] = {10, 20}, fwd[2] = {10, 25};
    vem_watchdog_tick_t t = {.ingest_beats = 1,
                             .sink_beats = sink,
                             .nsinks = 1,
                             .done = done,
                             .forwarded = fwd,
                             .nworkers = 2};
    ck_assert(vem_watchdog_progress(wd, &t)); /* everything moved from zero */
    t.ingest_beats = 2;
    sink[0] = 6;
    done[1] = 22; /* worker 1 works through its backlog; worker 0 has nothing waiting */
    ck_assert(vem_watchdog_progress(wd, &t));
    t.ingest_beats = 3;
    sink[0] = 7; /* worker 1 processes nothing while 3 inputs wait: stuck */
    ck_assert(!vem_watchdog_progress(wd, &t));
    t.ingest_beats = 4;
    sink[0] = 8;
    done[1] = 25; /* it caught up */
    ck_assert(vem_watchdog_progress(wd, &t));
    t.ingest_beats = 5;
    sink[0] = 9; /* idle with nothing waiting is alive */
    ck_assert(vem_watchdog_progress(wd, &t));
    sink[0] = 10; /* ingest's loop stopped turning */
    ck_assert(!vem_watchdog_progress(wd, &t));
    t.ingest_beats = 6; /* the sink's loop stopped turning (stuck in a call) */
    ck_assert(!vem_watchdog_progress(wd, &t));
    vem_watchdog_destroy(&wd);
    ck_assert_ptr_null(wd);
    vem_watchdog_destroy(&wd);
}
END_TEST

Suite *vem_suite_watchdog(void);
Suite *vem_suite_watchdog(void)
{
    Suite *s = suite_create("watchdog");
    TCase *tc = tcase_create("watchdog");
    tcase_add_test(tc, stuck_worker_stops_the_pings);
    suite_add_tcase(s, tc);
    return s;
}
