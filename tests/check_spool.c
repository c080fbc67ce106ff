/* check_spool — the on-disk input log: order, recovery of a torn tail, segments, trimming,
 * backpressure when full, cursors. Every expectation follows from the records the test wrote. */
#include "spool.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char s_dir[256];

static void s_setup(void)
{
    vem_test_mkdtemp("check_spool", s_dir, sizeof s_dir);
}

static void s_teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static vem_spool_t *s_open(uint64_t max_bytes, uint64_t segment_bytes)
{
    char err[256] = "";
    vem_spool_opts_t opts = {.max_bytes = max_bytes, .segment_bytes = segment_bytes, .fsync = true};
    vem_spool_t *spool = vem_spool_open(s_dir, &opts, err, sizeof err);
    ck_assert_msg(spool != NULL, "open: %s", err);
    return spool;
}

/* Record i carries i in its kind, receipt time and bytes, so a reader can check each one. */
static void s_append(vem_spool_t *spool, unsigned i)
{
    uint8_t data[300];
    char meta[32];
    size_t len = 1 + i % sizeof data;
    for (size_t k = 0; k < len; k++)
        data[k] = (uint8_t)(i * 7 + k);
    int meta_len = snprintf(meta, sizeof meta, "tcp 127.0.0.1:%u", 40000 + i);
    vem_spool_rec_t rec = {.received_us = 1700000000000000LL + i,
                           .kind = (uint16_t)(i % 3 + 1),
                           .meta = (const uint8_t *)meta,
                           .meta_len = (uint16_t)meta_len,
                           .data = data,
                           .data_len = (uint32_t)len};
    ck_assert_int_eq(vem_spool_append(spool, &rec), 0);
    ck_assert_uint_eq(rec.seq, i);
}

static void s_check(const vem_spool_rec_t *rec, unsigned i)
{
    ck_assert_uint_eq(rec->seq, i);
    ck_assert_int_eq(rec->received_us, 1700000000000000LL + i);
    ck_assert_uint_eq(rec->kind, i % 3 + 1);
    char meta[32];
    int meta_len = snprintf(meta, sizeof meta, "tcp 127.0.0.1:%u", 40000 + i);
    ck_assert_uint_eq(rec->meta_len, (unsigned)meta_len);
    ck_assert_int_eq(memcmp(rec->meta, meta, (size_t)meta_len), 0);
    ck_assert_uint_eq(rec->data_len, 1 + i % 300);
    for (size_t k = 0; k < rec->data_len; k++)
        ck_assert_uint_eq(rec->data[k], (uint8_t)(i * 7 + k));
}

/* Reads from `from` to the end and checks that exactly from..last arrive, in order. */
static void s_read_range(uint64_t from, unsigned first, unsigned last)
{
    char err[256] = "";
    vem_spool_reader_t *reader = vem_spool_reader_new(s_dir, from, err, sizeof err);
    ck_assert_msg(reader != NULL, "reader: %s", err);
    vem_spool_rec_t rec;
    unsigned want = first;
    int rc;
    while ((rc = vem_spool_reader_next(reader, &rec)) == 1)
        s_check(&rec, want++);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(want, last + 1);
    vem_spool_reader_destroy(&reader);
    ck_assert_ptr_null(reader);
}

static char *s_segment(uint64_t first)
{
    static char path[320];
    snprintf(path, sizeof path, "%s/seg-%020" PRIu64 ".log", s_dir, first);
    return path;
}

START_TEST(appends_read_back_in_order)
{
    vem_spool_t *spool = s_open(1 << 30, 1 << 20);
    for (unsigned i = 1; i <= 1000; i++)
        s_append(spool, i);
    ck_assert_int_eq(vem_spool_flush(spool), 0);
    ck_assert_uint_eq(vem_spool_next_seq(spool), 1001);
    s_read_range(1, 1, 1000);
    s_read_range(777, 777, 1000);
    vem_spool_destroy(&spool);
    ck_assert_ptr_null(spool);
    vem_spool_destroy(&spool); /* NULL is accepted */

    spool = s_open(1 << 30, 1 << 20); /* reopen: numbering continues */
    ck_assert_uint_eq(vem_spool_next_seq(spool), 1001);
    s_append(spool, 1001);
    vem_spool_destroy(&spool);
    s_read_range(1, 1, 1001);
}
END_TEST

START_TEST(torn_tail_is_cut_on_open)
{
    vem_spool_t *spool = s_open(1 << 30, 1 << 20);
    for (unsigned i = 1; i <= 10; i++)
        s_append(spool, i);
    vem_spool_destroy(&spool);

    /* A crash in the middle of record 11: header and part of its body reach the disk. */
    struct stat st;
    ck_assert_int_eq(stat(s_segment(1), &st), 0);
    off_t good = st.st_size;
    spool = s_open(1 << 30, 1 << 20);
    s_append(spool, 11);
    vem_spool_destroy(&spool);
    ck_assert_int_eq(truncate(s_segment(1), good + 30), 0);

    spool = s_open(1 << 30, 1 << 20);
    ck_assert_uint_eq(vem_spool_next_seq(spool), 11);
    ck_assert_int_eq(stat(s_segment(1), &st), 0);
    ck_assert_int_eq(st.st_size, good);
    s_append(spool, 11); /* the terminal re-sends it; it gets the same number again */
    vem_spool_destroy(&spool);
    s_read_range(1, 1, 11);
}
END_TEST

START_TEST(bad_crc_in_tail_is_cut)
{
    vem_spool_t *spool = s_open(1 << 30, 1 << 20);
    for (unsigned i = 1; i <= 5; i++)
        s_append(spool, i);
    vem_spool_destroy(&spool);
    struct stat st;
    ck_assert_int_eq(stat(s_segment(1), &st), 0);
    int fd = open(s_segment(1), O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t byte;
    ck_assert_int_eq(pread(fd, &byte, 1, st.st_size - 1), 1);
    byte ^= 0x01; /* flip one bit of the last record's data */
    ck_assert_int_eq(pwrite(fd, &byte, 1, st.st_size - 1), 1);
    close(fd);

    spool = s_open(1 << 30, 1 << 20);
    ck_assert_uint_eq(vem_spool_next_seq(spool), 5);
    vem_spool_destroy(&spool);
    s_read_range(1, 1, 4);
}
END_TEST

START_TEST(segments_roll_and_trim)
{
    /* Records are 28 + ~16 + up to 300 bytes; 4 KiB segments hold a dozen or so. */
    vem_spool_t *spool = s_open(1 << 30, 4096);
    for (unsigned i = 1; i <= 500; i++)
        s_append(spool, i);
    ck_assert_int_eq(vem_spool_flush(spool), 0);
    uint64_t before = vem_spool_bytes(spool);
    s_read_range(1, 1, 500);
    s_read_range(250, 250, 500);

    ck_assert_int_eq(vem_spool_trim(spool, 250), 0);
    ck_assert_uint_lt(vem_spool_bytes(spool), before);
    /* Whatever remains starts at or before 251: nothing not yet delivered was removed. */
    char err[256];
    vem_spool_reader_t *reader = vem_spool_reader_new(s_dir, 1, err, sizeof err);
    ck_assert_ptr_nonnull(reader);
    vem_spool_rec_t rec;
    ck_assert_int_eq(vem_spool_reader_next(reader, &rec), 1);
    ck_assert_uint_le(rec.seq, 251);
    ck_assert_uint_gt(rec.seq, 1);
    vem_spool_reader_destroy(&reader);
    s_read_range(251, 251, 500);

    ck_assert_int_eq(vem_spool_trim(spool, 10000), 0); /* the active segment always stays */
    s_append(spool, 501);
    vem_spool_destroy(&spool);
    spool = s_open(1 << 30, 4096);
    ck_assert_uint_eq(vem_spool_next_seq(spool), 502);
    vem_spool_destroy(&spool);
}
END_TEST

START_TEST(full_spool_refuses_until_trimmed)
{
    vem_spool_t *spool = s_open(20000, 2000);
    unsigned i = 1;
    for (;; i++) {
        uint8_t data[200] = {0};
        vem_spool_rec_t rec = {.kind = 1, .data = data, .data_len = sizeof data};
        if (!vem_spool_has_room(spool, sizeof data)) {
            errno = 0;
            ck_assert_int_eq(vem_spool_append(spool, &rec), -1);
            ck_assert_int_eq(errno, ENOSPC);
            break;
        }
        ck_assert_int_eq(vem_spool_append(spool, &rec), 0);
    }
    ck_assert_uint_le(vem_spool_bytes(spool), 20000);
    ck_assert_uint_ge(i, 20000 / 228 - 1); /* 228-byte records fill about 87 slots */
    ck_assert_int_eq(vem_spool_flush(spool), 0);
    ck_assert_int_eq(vem_spool_trim(spool, i / 2), 0);
    ck_assert(vem_spool_has_room(spool, 200));
    vem_spool_destroy(&spool);
}
END_TEST

START_TEST(missing_middle_segment_is_an_error)
{
    vem_spool_t *spool = s_open(1 << 30, 4096);
    for (unsigned i = 1; i <= 200; i++)
        s_append(spool, i);
    vem_spool_destroy(&spool);
    /* Find the second segment and remove it behind the spool's back. */
    char err[256];
    vem_spool_reader_t *reader = vem_spool_reader_new(s_dir, 1, err, sizeof err);
    vem_spool_rec_t rec;
    uint64_t second = 0;
    while (vem_spool_reader_next(reader, &rec) == 1 && !second)
        if (access(s_segment(rec.seq), F_OK) == 0 && rec.seq > 1)
            second = rec.seq;
    vem_spool_reader_destroy(&reader);
    ck_assert_uint_gt(second, 1);
    ck_assert_int_eq(unlink(s_segment(second)), 0);

    reader = vem_spool_reader_new(s_dir, 1, err, sizeof err);
    int rc;
    while ((rc = vem_spool_reader_next(reader, &rec)) == 1)
        ck_assert_uint_lt(rec.seq, second);
    ck_assert_int_eq(rc, -1);
    vem_spool_reader_destroy(&reader);
}
END_TEST

START_TEST(cursor_moves_forward_durably)
{
    char err[256];
    vem_spool_cursor_t *cur = vem_spool_cursor_open(s_dir, "pg", err, sizeof err);
    ck_assert_ptr_nonnull(cur);
    ck_assert_uint_eq(vem_spool_cursor_get(cur), 0);
    ck_assert_int_eq(vem_spool_cursor_commit(cur, 10), 0);
    ck_assert_int_eq(vem_spool_cursor_commit(cur, 5), 0); /* never backwards */
    ck_assert_uint_eq(vem_spool_cursor_get(cur), 10);
    vem_spool_cursor_destroy(&cur);
    ck_assert_ptr_null(cur);

    cur = vem_spool_cursor_open(s_dir, "pg", err, sizeof err);
    ck_assert_uint_eq(vem_spool_cursor_get(cur), 10);
    vem_spool_cursor_destroy(&cur);
    cur = vem_spool_cursor_open(s_dir, "kafka", err, sizeof err); /* independent */
    ck_assert_uint_eq(vem_spool_cursor_get(cur), 0);
    vem_spool_cursor_destroy(&cur);
}
END_TEST

Suite *vem_suite_spool(void);
Suite *vem_suite_spool(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("spool");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, appends_read_back_in_order);
    tcase_add_test(tc, torn_tail_is_cut_on_open);
    tcase_add_test(tc, bad_crc_in_tail_is_cut);
    tcase_add_test(tc, segments_roll_and_trim);
    tcase_add_test(tc, full_spool_refuses_until_trimmed);
    tcase_add_test(tc, missing_middle_segment_is_an_error);
    tcase_add_test(tc, cursor_moves_forward_durably);
    suite_add_tcase(s, tc);
    return s;
}
