/* check_ingest_meta — what ingest tells the workers (daemon/ingest.c): intake's paused total
 * on a frame's spool meta text (" ~p<us>", written only once intake has been paused, so a
 * spool of an earlier version reads as never paused), the paused total a worker's silence
 * sweep sees, the total a start goes on from (the spool directory's file against the spooled
 * frames' stamps, and the downtime since vemd last ran), and a roadside reading's route (" >V:" or
 * " >P:"), and the pause before a retry (clock.h, shared with the sinks). Expected values are the
 * texts' own digits and ids, and sums and schedules worked by hand. */
#include "clock.h"
#include "ingest_int.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* The "now" a worker's silence sweep may take. A frame stamped at 1,000 s (1,000,000,000 us)
 * waits for a slow spool sync while the worker reads the wall clock at 1,004 s: the sweep
 * takes 1,000 s, so a truck last heard at 882 s has been silent 118 s, not 122 s, and with trips
 * ending after 120 s of silence its trip goes on to the waiting frame, as in a replay, which
 * judges that frame first. Nothing staged: the wall clock. A mark stored after the worker read
 * the clock (its input is stamped later still): the wall clock too. */
START_TEST(sweep_waits_for_staged_inputs)
{
    _Atomic int64_t staged_from = 0;
    ck_assert_int_eq(vem_ingest_sweep_now(1004000000, &staged_from), 1004000000);
    atomic_store(&staged_from, 1000000000);
    ck_assert_int_eq(vem_ingest_sweep_now(1004000000, &staged_from), 1000000000);
    atomic_store(&staged_from, 1004000001);
    ck_assert_int_eq(vem_ingest_sweep_now(1004000000, &staged_from), 1004000000);
    atomic_store(&staged_from, 0);
    ck_assert_int_eq(vem_ingest_sweep_now(1004000000, &staged_from), 1004000000);
}
END_TEST

static char s_dir[256];

static void s_setup(void)
{
    vem_test_mkdtemp("check_ingest_meta", s_dir, sizeof s_dir);
}

static void s_teardown(void)
{
    vem_test_rmtree(s_dir);
}

/* A spool in s_dir with one record per meta text (kinds in turn from kinds), durable. */
static void s_spool(const char *const *metas, const uint16_t *kinds, size_t n)
{
    char err[256] = "";
    vem_spool_opts_t opts = {.max_bytes = 1 << 24, .segment_bytes = 1 << 20, .fsync = false};
    vem_spool_t *spool = vem_spool_open(s_dir, &opts, err, sizeof err);
    ck_assert_msg(spool != NULL, "open: %s", err);
    static const uint8_t frame[] = {0x23, 0x23, 0x02};
    for (size_t i = 0; i < n; i++) {
        vem_spool_rec_t rec = {.received_us = 1700000000000000LL + (int64_t)i,
                               .kind = kinds[i],
                               .meta = (const uint8_t *)metas[i],
                               .meta_len = (uint16_t)strlen(metas[i]),
                               .data = frame,
                               .data_len = sizeof frame};
        ck_assert_int_eq(vem_spool_append(spool, &rec), 0);
    }
    ck_assert_int_eq(vem_spool_flush(spool), 0);
    vem_spool_destroy(&spool);
}

/* The file's text as vemd wrote it. */
static void s_file(const char *text)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", s_dir, VEM_INGEST_PAUSED_FILE);
    vem_test_spit(path, text);
}

/* The paused total a start in s_dir reads, records first .. next - 1 in the spool. */
static int64_t s_total(uint64_t first, uint64_t next)
{
    vem_ingest_paused_t p = {-1, -1};
    vem_ingest_paused_load(s_dir, first, next, &p);
    return p.total_us;
}

/* ... and the time it takes vemd for last running. */
static int64_t s_alive(uint64_t first, uint64_t next)
{
    vem_ingest_paused_t p = {-1, -1};
    vem_ingest_paused_load(s_dir, first, next, &p);
    return p.alive_us;
}

static int s_write(const char *dir, int64_t total_us, int64_t alive_us)
{
    vem_ingest_paused_t p = {total_us, alive_us};
    return vem_ingest_paused_write(dir, &p);
}

/* A start goes on from the larger of the file's total and the newest stamp among the last
 * VEM_INGEST_PAUSED_TAIL records' OBD frames: a crash between two rewrites of the file leaves
 * frames spooled with more than it holds. */
START_TEST(start_takes_the_larger_total)
{
    const char *metas[] = {"tcp 127.0.0.1:40001 #1", "tcp 127.0.0.1:40001 #1 ~p500",
                           "station RSD-1 >P:X ~p99000000", /* a reading: never stamped */
                           "tcp 127.0.0.1:40002 #2 ~p900", "tcp 127.0.0.1:40001 #1 ~p700"};
    const uint16_t kinds[] = {VEM_SPOOL_KIND_OBD_FRAME, VEM_SPOOL_KIND_OBD_FRAME,
                              VEM_SPOOL_KIND_RSD_READING, VEM_SPOOL_KIND_OBD_FRAME,
                              VEM_SPOOL_KIND_OBD_FRAME};
    s_spool(metas, kinds, 5);
    /* no file: the frames' largest, 900 (not the last, 700; not the reading's) */
    ck_assert_int_eq(s_total(1, 6), 900);
    /* the newest receipt says when vemd last ran: record 5's */
    ck_assert_int_eq(s_alive(1, 6), 1700000000000004);
    s_file(" ~p700\n"); /* behind the frames (and written before the file had " ~a") */
    ck_assert_int_eq(s_total(1, 6), 900);
    ck_assert_int_eq(s_alive(1, 6), 1700000000000004);
    s_file(" ~p700 ~a1700000000000100\n"); /* running 96 us after the last input */
    ck_assert_int_eq(s_alive(1, 6), 1700000000000100);
    s_file(" ~p700 ~a1700000000000003\n"); /* an input came after the file's last rewrite */
    ck_assert_int_eq(s_alive(1, 6), 1700000000000004);
    /* a reading's receipt is not taken: it carries no total to go with it */
    ck_assert_int_eq(s_alive(3, 4), 1700000000000003);
    s_file(" ~p700\n");
    ck_assert_int_eq(s_alive(3, 4), 0);
    s_file(" ~p1000\n"); /* ahead of them: a pause after the last frame */
    ck_assert_int_eq(s_total(1, 6), 1000);
    s_file("garbage\n"); /* damaged: the frames still tell */
    ck_assert_int_eq(s_total(1, 6), 900);
    /* a trimmed spool: only records 4 and 5 are left */
    ck_assert_int_eq(s_total(4, 6), 900);
    ck_assert_int_eq(s_total(5, 6), 700);
    /* an empty spool (all of it trimmed): the file alone, or 0 without one */
    s_file(" ~p1000\n");
    ck_assert_int_eq(s_total(6, 6), 1000);
    char path[400];
    snprintf(path, sizeof path, "%s/%s", s_dir, VEM_INGEST_PAUSED_FILE);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(s_total(6, 6), 0);
    ck_assert_int_eq(s_alive(6, 6), 0); /* a first start: no downtime to count */
}
END_TEST

/* Only the newest VEM_INGEST_PAUSED_TAIL records are read: a stamp before them is not. */
START_TEST(start_reads_the_spool_tail_only)
{
    enum { N = VEM_INGEST_PAUSED_TAIL + 1 };
    static const char *metas[N];
    static uint16_t kinds[N];
    for (size_t i = 0; i < N; i++) {
        metas[i] = i == 0 ? "tcp 127.0.0.1:40001 #1 ~p5000" : "tcp 127.0.0.1:40001 #1 ~p10";
        kinds[i] = VEM_SPOOL_KIND_OBD_FRAME;
    }
    s_spool(metas, kinds, N);
    ck_assert_int_eq(s_total(1, N + 1), 10);
    ck_assert_int_eq(s_total(1, N), 5000); /* record 1 is in the last 256 */
}
END_TEST

/* The file is replaced whole: what it held before a failed write stays. */
START_TEST(paused_file_written_or_left_as_it_was)
{
    ck_assert_int_eq(s_write(s_dir, 140567000, 1764547200000000), 0);
    ck_assert_int_eq(s_total(1, 1), 140567000);
    ck_assert_int_eq(s_alive(1, 1), 1764547200000000);
    size_t len;
    char path[400];
    snprintf(path, sizeof path, "%s/%s", s_dir, VEM_INGEST_PAUSED_FILE);
    char *text = (char *)vem_test_slurp(path, &len);
    ck_assert_ptr_nonnull(text);
    const char *want = " ~p140567000 ~a1764547200000000\n";
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_int_eq(memcmp(text, want, len), 0);
    free(text);
    /* the tmp file cannot be made (a directory stands in its name; root too is refused): -1
     * with the reason, and the file as it was */
    char tmp[420];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_eq(mkdir(tmp, 0700), 0);
    errno = 0;
    ck_assert_int_eq(s_write(s_dir, 200000000, 1764547201000000), -1);
    ck_assert_int_eq(errno, EISDIR);
    ck_assert_int_eq(s_total(1, 1), 140567000);
    ck_assert_int_eq(rmdir(tmp), 0);
    ck_assert_int_eq(s_write(s_dir, 200000000, 1764547201000000), 0);
    ck_assert_int_eq(s_total(1, 1), 200000000);
    ck_assert_int_eq(s_alive(1, 1), 1764547201000000);
    /* a directory that is gone: -1 */
    char gone[300];
    snprintf(gone, sizeof gone, "%s/none", s_dir);
    errno = 0;
    ck_assert_int_eq(s_write(gone, 1, 1), -1);
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

/* A stopped vemd read nothing, so its downtime is no vehicle's silence: a start counts it as
 * paused. Worked by hand: 500 us paused, last running at 1,000,000 us, started at 4,000,000 us:
 * 3,000,000 us of downtime, 3,000,500 in all. */
START_TEST(downtime_counts_as_paused)
{
    vem_ingest_paused_t p = {500, 1000000};
    ck_assert_int_eq(vem_ingest_paused_after_downtime(&p, 4000000), 3000500);
    ck_assert_int_eq(vem_ingest_paused_after_downtime(&p, 1000000), 500);
    ck_assert_int_eq(vem_ingest_paused_after_downtime(&p, 999999), 500); /* a clock set back */
    p.alive_us = 0; /* a first start, or a spool of a build that kept no time */
    ck_assert_int_eq(vem_ingest_paused_after_downtime(&p, 4000000), 500);
    /* a downtime of more than VEM_INGEST_DOWNTIME_MAX_S (366 days): a clock that was wrong */
    p = (vem_ingest_paused_t){500, 1000000};
    ck_assert_int_eq(vem_ingest_paused_after_downtime(&p, 1000000 + 366LL * 86400 * 1000000),
                     500 + 366LL * 86400 * 1000000);
    ck_assert_int_eq(vem_ingest_paused_after_downtime(&p, 1000001 + 366LL * 86400 * 1000000), 500);
    /* never past VEM_INGEST_PAUSED_MAX, which a stamp may carry */
    p = (vem_ingest_paused_t){VEM_INGEST_PAUSED_MAX - 10, 1000000};
    ck_assert_int_eq(vem_ingest_paused_after_downtime(&p, 1000009), VEM_INGEST_PAUSED_MAX - 1);
    ck_assert_int_eq(vem_ingest_paused_after_downtime(&p, 1000100), VEM_INGEST_PAUSED_MAX);
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

/* The spool's schedules, flush and read (100 ms doubling to 5 s): 100, 200, 400, 800, 1600, 3200,
 * then 5000 (6400 capped) for good; a first failure (no pause before: 0) starts it. */
START_TEST(retry_pause_doubles_within_bounds)
{
    static const int64_t want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000};
    int64_t ms = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ms = vem_backoff_doubled(ms, 100, 5000);
        ck_assert_int_eq(ms, want[i]);
    }
    /* the cap exactly: 2500 doubles to 5000; 2499 to 4998; an odd cap is reached, not passed */
    ck_assert_int_eq(vem_backoff_doubled(2500, 100, 5000), 5000);
    ck_assert_int_eq(vem_backoff_doubled(2499, 100, 5000), 4998);
    ck_assert_int_eq(vem_backoff_doubled(2500, 100, 5001), 5000);
    ck_assert_int_eq(vem_backoff_doubled(2501, 100, 5001), 5001);
    /* below the floor (a pause of 1 ms), and a value far past the cap (no overflow) */
    ck_assert_int_eq(vem_backoff_doubled(1, 1000, 30000), 1000);
    ck_assert_int_eq(vem_backoff_doubled(INT64_MAX, 1000, 30000), 30000);
}
END_TEST

Suite *vem_suite_ingest_meta(void);
Suite *vem_suite_ingest_meta(void)
{
    Suite *s = suite_create("ingest_meta");
    TCase *tc = tcase_create("meta");
    tcase_add_test(tc, paused_total_of_a_frame);
    tcase_add_test(tc, paused_total_seen_by_a_worker);
    tcase_add_test(tc, sweep_waits_for_staged_inputs);
    tcase_add_test(tc, route_of_a_reading);
    tcase_add_test(tc, downtime_counts_as_paused);
    tcase_add_test(tc, retry_pause_doubles_within_bounds);
    suite_add_tcase(s, tc);
    TCase *start = tcase_create("start");
    tcase_add_checked_fixture(start, s_setup, s_teardown);
    tcase_add_test(start, start_takes_the_larger_total);
    tcase_add_test(start, start_reads_the_spool_tail_only);
    tcase_add_test(start, paused_file_written_or_left_as_it_was);
    suite_add_tcase(s, start);
    return s;
}
