/* check_spool — the on-disk input log: order, recovery of a torn tail, segments, trimming,
 * backpressure when full, cursors. Every expectation follows from the records the test wrote. */
#include "fileio.h"
#include "spool.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char s_dir[256];

static void s_setup(void)
{
    vem_test_mkdtemp("check_spool", s_dir, sizeof s_dir);
}

static void s_teardown(void)
{
    vem_test_rmtree(s_dir);
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

/* Size on disk of record i as s_append writes it: 28-byte header + meta + data. */
static uint64_t s_size(unsigned i)
{
    char meta[32];
    return 28 + (uint64_t)snprintf(meta, sizeof meta, "tcp 127.0.0.1:%u", 40000 + i) + 1 + i % 300;
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
    vem_spool_read_t rc;
    while ((rc = vem_spool_reader_next(reader, UINT64_MAX, &rec)) == VEM_SPOOL_READ_RECORD)
        s_check(&rec, want++);
    ck_assert_int_eq(rc, VEM_SPOOL_READ_END);
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

/* First seqs of the segments holding records 1..last, found by name; returns their count. */
static size_t s_segments(unsigned last, uint64_t *firsts, size_t cap)
{
    size_t n = 0;
    for (unsigned seq = 1; seq <= last && n < cap; seq++)
        if (access(s_segment(seq), F_OK) == 0)
            firsts[n++] = seq;
    return n;
}

/* Offset of record seq in the segment starting at first (records written by s_append). */
static off_t s_offset(uint64_t first, unsigned seq)
{
    off_t offset = 0;
    for (unsigned i = (unsigned)first; i < seq; i++)
        offset += (off_t)s_size(i);
    return offset;
}

/* Overwrites len bytes at offset of segment first with byte (or flips them when xor). */
static void s_damage(uint64_t first, off_t offset, size_t len, uint8_t byte, bool xor)
{
    int fd = open(s_segment(first), O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t buf[4096];
    ck_assert_uint_le(len, sizeof buf);
    ck_assert_int_eq(pread(fd, buf, len, offset), (ssize_t)len);
    for (size_t k = 0; k < len; k++)
        buf[k] = xor? buf[k] ^ byte : byte;
    ck_assert_int_eq(pwrite(fd, buf, len, offset), (ssize_t)len);
    close(fd);
}

/* Checks a DAMAGED report: seqs seq .. seq + lost - 1, with the len bytes at offset of
 * segment first as its data. */
static void s_check_damaged(const vem_spool_rec_t *rec, uint64_t seq, uint32_t lost, uint64_t first,
                            off_t offset, size_t len)
{
    ck_assert_uint_eq(rec->seq, seq);
    ck_assert_uint_eq(rec->lost, lost);
    ck_assert_uint_eq(rec->kind, VEM_SPOOL_KIND_QUARANTINE);
    ck_assert_uint_eq(rec->meta_len, strlen(VEM_SPOOL_DAMAGED_META));
    ck_assert_int_eq(memcmp(rec->meta, VEM_SPOOL_DAMAGED_META, rec->meta_len), 0);
    ck_assert_uint_eq(rec->data_len, len);
    if (len == 0)
        return;
    uint8_t *want = malloc(len);
    int fd = open(s_segment(first), O_RDONLY);
    ck_assert_int_eq(pread(fd, want, len, offset), (ssize_t)len);
    close(fd);
    ck_assert_int_eq(memcmp(rec->data, want, len), 0);
    free(want);
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
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_RECORD);
    ck_assert_uint_le(rec.seq, 251);
    ck_assert_uint_gt(rec.seq, 1);
    ck_assert_uint_eq(rec.seq, vem_spool_first_seq(spool)); /* from 1 starts at the first kept */
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

/* A missing segment is reported once as DAMAGED (no bytes), then reading goes on; the old
 * reader stopped there for good. */
START_TEST(missing_middle_segment_is_reported)
{
    vem_spool_t *spool = s_open(1 << 30, 4096);
    for (unsigned i = 1; i <= 200; i++)
        s_append(spool, i);
    vem_spool_destroy(&spool);
    uint64_t firsts[64];
    ck_assert_uint_ge(s_segments(200, firsts, 64), 4);
    ck_assert_int_eq(unlink(s_segment(firsts[1])), 0); /* behind the spool's back */

    char err[256];
    vem_spool_reader_t *reader = vem_spool_reader_new(s_dir, 1, err, sizeof err);
    vem_spool_rec_t rec;
    unsigned want = 1;
    vem_spool_read_t rc;
    while ((rc = vem_spool_reader_next(reader, UINT64_MAX, &rec)) == VEM_SPOOL_READ_RECORD)
        s_check(&rec, want++);
    ck_assert_int_eq(rc, VEM_SPOOL_READ_DAMAGED);
    ck_assert_uint_eq(want, firsts[1]);
    s_check_damaged(&rec, firsts[1], (uint32_t)(firsts[2] - firsts[1]), 0, 0, 0);
    ck_assert_int_eq(rec.received_us, 1700000000000000LL + firsts[1] - 1);
    want = (unsigned)firsts[2];
    while ((rc = vem_spool_reader_next(reader, UINT64_MAX, &rec)) == VEM_SPOOL_READ_RECORD)
        s_check(&rec, want++);
    ck_assert_int_eq(rc, VEM_SPOOL_READ_END);
    ck_assert_uint_eq(want, 201);
    vem_spool_reader_destroy(&reader);
}
END_TEST

/* Defect 3b: the reader stopped for good at a damaged record (EBADMSG), so nothing after it
 * was ever replayed. Now each damaged stretch is one DAMAGED report with the right seqs and
 * bytes, then the next intact record follows. Damage worked by hand from the record sizes:
 *   A  one data bit of record a = seg2 + 3       -> a, lost 1, its s_size(a) bytes
 *   B  data_len of record b = seg3 + 2 set huge  -> b, lost 1, its s_size(b) bytes
 *   C  zeros from 10 bytes into c = seg4 + 1 to
 *      10 bytes into c + 2                       -> c, lost 3, the bytes of c .. c + 2
 *   D  the last byte of the last record d of
 *      seg5 (nothing intact after it there)      -> d, lost 1, its bytes to the segment end */
START_TEST(damaged_records_are_reported_then_skipped)
{
    vem_spool_t *spool = s_open(1 << 30, 4096);
    for (unsigned i = 1; i <= 200; i++)
        s_append(spool, i);
    vem_spool_destroy(&spool);
    uint64_t seg[64];
    ck_assert_uint_ge(s_segments(200, seg, 64), 7);

    unsigned a = (unsigned)seg[1] + 3, b = (unsigned)seg[2] + 2, c = (unsigned)seg[3] + 1,
             d = (unsigned)seg[5] - 1;
    s_damage(seg[1], s_offset(seg[1], a) + (off_t)s_size(a) - 1, 1, 0x04, true);
    s_damage(seg[2], s_offset(seg[2], b) + 4, 4, 0xff, false);
    off_t c_at = s_offset(seg[3], c);
    s_damage(seg[3], c_at + 10, (size_t)(s_offset(seg[3], c + 2) - c_at), 0, false);
    s_damage(seg[4], s_offset(seg[4], d) + (off_t)s_size(d) - 1, 1, 0x80, true);

    char err[256];
    vem_spool_reader_t *reader = vem_spool_reader_new(s_dir, 1, err, sizeof err);
    ck_assert_ptr_nonnull(reader);
    vem_spool_rec_t rec;
    unsigned want = 1, reports = 0;
    vem_spool_read_t rc;
    while ((rc = vem_spool_reader_next(reader, UINT64_MAX, &rec)) != VEM_SPOOL_READ_END) {
        if (rc == VEM_SPOOL_READ_RECORD) {
            s_check(&rec, want++);
            continue;
        }
        ck_assert_int_eq(rc, VEM_SPOOL_READ_DAMAGED);
        reports++;
        if (want == a)
            s_check_damaged(&rec, a, 1, seg[1], s_offset(seg[1], a), s_size(a));
        else if (want == b)
            s_check_damaged(&rec, b, 1, seg[2], s_offset(seg[2], b), s_size(b));
        else if (want == c)
            s_check_damaged(&rec, c, 3, seg[3], c_at, (size_t)(s_offset(seg[3], c + 3) - c_at));
        else if (want == d)
            s_check_damaged(&rec, d, 1, seg[4], s_offset(seg[4], d), s_size(d));
        else
            ck_abort_msg("unexpected DAMAGED at %u", want);
        want += rec.lost;
    }
    ck_assert_uint_eq(reports, 4);
    ck_assert_uint_eq(want, 201);
    vem_spool_reader_destroy(&reader);

    /* upto stops short of the damage: nothing is reported until the intact record after it
     * is within reach. */
    reader = vem_spool_reader_new(s_dir, a - 1, err, sizeof err);
    ck_assert_int_eq(vem_spool_reader_next(reader, a, &rec), VEM_SPOOL_READ_RECORD);
    ck_assert_uint_eq(rec.seq, a - 1);
    ck_assert_int_eq(vem_spool_reader_next(reader, a, &rec), VEM_SPOOL_READ_END);
    ck_assert_int_eq(vem_spool_reader_next(reader, a + 1, &rec), VEM_SPOOL_READ_DAMAGED);
    ck_assert_uint_eq(rec.seq, a);
    ck_assert_int_eq(vem_spool_reader_next(reader, a + 1, &rec), VEM_SPOOL_READ_RECORD);
    s_check(&rec, a + 1);
    vem_spool_reader_destroy(&reader);

    /* A reader starting inside a damaged stretch reports only the part at or above from. */
    reader = vem_spool_reader_new(s_dir, c + 1, err, sizeof err);
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_DAMAGED);
    ck_assert_uint_eq(rec.seq, c + 1);
    ck_assert_uint_eq(rec.lost, 2);
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_RECORD);
    s_check(&rec, c + 3);
    vem_spool_reader_destroy(&reader);

    spool = s_open(1 << 30, 4096); /* damage in older segments does not disturb the writer */
    ck_assert_uint_eq(vem_spool_next_seq(spool), 201);
    vem_spool_destroy(&spool);
}
END_TEST

/* Defect 3a: a crash right after a roll leaves an empty last segment, and the old reader
 * reopened it forever (seg-<expected> is that very file). Now it is END, END again, and once
 * the writer fills that segment the same reader goes on. */
START_TEST(empty_last_segment_is_stepped_over)
{
    vem_spool_t *spool = s_open(1 << 30, 1 << 20);
    for (unsigned i = 1; i <= 10; i++)
        s_append(spool, i);
    vem_spool_destroy(&spool);
    int fd = open(s_segment(11), O_CREAT | O_EXCL | O_WRONLY, 0640);
    ck_assert_int_ge(fd, 0);
    close(fd);

    char err[256];
    vem_spool_reader_t *reader = vem_spool_reader_new(s_dir, 1, err, sizeof err);
    vem_spool_rec_t rec;
    for (unsigned i = 1; i <= 10; i++) {
        ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_RECORD);
        s_check(&rec, i);
    }
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_END);
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_END);

    spool = s_open(1 << 30, 1 << 20);
    ck_assert_uint_eq(vem_spool_next_seq(spool), 11);
    ck_assert_uint_eq(vem_spool_durable_seq(spool), 10);
    for (unsigned i = 11; i <= 15; i++)
        s_append(spool, i);
    ck_assert_int_eq(vem_spool_flush(spool), 0);
    struct stat st;
    ck_assert_int_eq(stat(s_segment(11), &st), 0);
    ck_assert_int_eq(st.st_size, s_offset(11, 16));
    for (unsigned i = 11; i <= 15; i++) {
        ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_RECORD);
        s_check(&rec, i);
    }
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_END);
    vem_spool_reader_destroy(&reader);
    vem_spool_destroy(&spool);
    s_read_range(1, 1, 15);
}
END_TEST

/* A reader at END goes on as the writer flushes more, across the segments it rolls to, and
 * with upto = durable_seq never sees a record that is only pending. */
START_TEST(reader_follows_the_writer)
{
    vem_spool_t *spool = s_open(1 << 30, 4096);
    char err[256];
    vem_spool_reader_t *reader = vem_spool_reader_new(s_dir, 1, err, sizeof err);
    ck_assert_ptr_nonnull(reader);
    vem_spool_rec_t rec;
    unsigned next = 1, want = 1;
    for (int round = 0; round < 8; round++) {
        for (int k = 0; k < 40; k++)
            s_append(spool, next++);
        ck_assert_int_eq(vem_spool_reader_next(reader, vem_spool_durable_seq(spool), &rec),
                         VEM_SPOOL_READ_END);
        ck_assert_int_eq(vem_spool_flush(spool), 0);
        vem_spool_read_t rc;
        while ((rc = vem_spool_reader_next(reader, vem_spool_durable_seq(spool), &rec)) ==
               VEM_SPOOL_READ_RECORD)
            s_check(&rec, want++);
        ck_assert_int_eq(rc, VEM_SPOOL_READ_END);
        ck_assert_uint_eq(want, next);
    }
    uint64_t firsts[64];
    ck_assert_uint_ge(s_segments(next - 1, firsts, 64), 8);
    vem_spool_reader_destroy(&reader);
    vem_spool_destroy(&spool);
}
END_TEST

/* Damage in the middle of the last segment is not a torn tail: the open keeps the intact
 * records after it (the old recovery cut them away and reused their seqs). */
START_TEST(recovery_keeps_records_after_damage)
{
    vem_spool_t *spool = s_open(1 << 30, 1 << 20);
    for (unsigned i = 1; i <= 20; i++)
        s_append(spool, i);
    vem_spool_destroy(&spool);
    s_damage(1, s_offset(1, 5) + 30, 1, 0x10, true);

    spool = s_open(1 << 30, 1 << 20);
    ck_assert_uint_eq(vem_spool_next_seq(spool), 21);
    s_append(spool, 21);
    vem_spool_destroy(&spool);
    char err[256];
    vem_spool_reader_t *reader = vem_spool_reader_new(s_dir, 1, err, sizeof err);
    vem_spool_rec_t rec;
    for (unsigned i = 1; i <= 21; i++) {
        vem_spool_read_t rc = vem_spool_reader_next(reader, UINT64_MAX, &rec);
        if (i == 5) {
            ck_assert_int_eq(rc, VEM_SPOOL_READ_DAMAGED);
            s_check_damaged(&rec, 5, 1, 1, s_offset(1, 5), s_size(5));
            continue;
        }
        ck_assert_int_eq(rc, VEM_SPOOL_READ_RECORD);
        s_check(&rec, i);
    }
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_END);
    vem_spool_reader_destroy(&reader);
}
END_TEST

/* Terminals choose the bytes of a record's data, so a later record can carry what looks like
 * an intact record of a seq the damage lost. A reader stopped at upto by the damage used to
 * skip the real next record (its seq above upto) and return that forgery as the lost seq:
 * a split read then disagreed with a full one. The first intact record after the damage is
 * where reading goes on, whatever upto is. */
START_TEST(forged_record_inside_data_is_not_read)
{
    uint8_t forged[28] = {0};
    forged[8] = 2;  /* seq 2, no meta, no data */
    forged[24] = 1; /* kind */
    uint32_t crc = (uint32_t)crc32_z(0, forged + 4, sizeof forged - 4);
    for (int k = 0; k < 4; k++)
        forged[k] = (uint8_t)(crc >> (8 * k));
    uint8_t data[64];
    memset(data, 0x55, sizeof data);
    memcpy(data + 10, forged, sizeof forged);

    vem_spool_t *spool = s_open(1 << 30, 1 << 20);
    s_append(spool, 1);
    s_append(spool, 2);
    vem_spool_rec_t rec = {
        .received_us = 1700000000000003LL, .kind = 1, .data = data, .data_len = sizeof data};
    ck_assert_int_eq(vem_spool_append(spool, &rec), 0);
    ck_assert_uint_eq(rec.seq, 3);
    vem_spool_destroy(&spool);
    s_damage(1, s_offset(1, 2) + 30, 1, 0x10, true);

    char err[256];
    vem_spool_reader_t *reader = vem_spool_reader_new(s_dir, 1, err, sizeof err);
    ck_assert_ptr_nonnull(reader);
    ck_assert_int_eq(vem_spool_reader_next(reader, 2, &rec), VEM_SPOOL_READ_RECORD);
    s_check(&rec, 1);
    ck_assert_int_eq(vem_spool_reader_next(reader, 2, &rec), VEM_SPOOL_READ_END);
    ck_assert_int_eq(vem_spool_reader_next(reader, 3, &rec), VEM_SPOOL_READ_DAMAGED);
    s_check_damaged(&rec, 2, 1, 1, s_offset(1, 2), s_size(2));
    ck_assert_int_eq(vem_spool_reader_next(reader, 3, &rec), VEM_SPOOL_READ_RECORD);
    ck_assert_uint_eq(rec.seq, 3);
    ck_assert_uint_eq(rec.data_len, sizeof data);
    ck_assert_int_eq(memcmp(rec.data, data, sizeof data), 0);
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_END);
    vem_spool_reader_destroy(&reader);
}
END_TEST

/* meta and data may be NULL when empty. The old append fed NULL to zlib's crc32_z, which then
 * returns 0 instead of continuing the CRC: such records failed their check when read, and the
 * next open cut them as a torn tail. */
START_TEST(null_meta_and_data_round_trip)
{
    vem_spool_t *spool = s_open(1 << 30, 1 << 20);
    uint8_t data[3] = {1, 2, 3};
    vem_spool_rec_t rec = {.received_us = 7, .kind = 2};
    ck_assert_int_eq(vem_spool_append(spool, &rec), 0);
    rec.data = data;
    rec.data_len = sizeof data;
    ck_assert_int_eq(vem_spool_append(spool, &rec), 0);
    vem_spool_destroy(&spool);
    spool = s_open(1 << 30, 1 << 20);
    ck_assert_uint_eq(vem_spool_next_seq(spool), 3);
    vem_spool_destroy(&spool);

    char err[256];
    vem_spool_reader_t *reader = vem_spool_reader_new(s_dir, 1, err, sizeof err);
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_RECORD);
    ck_assert_uint_eq(rec.seq, 1);
    ck_assert_uint_eq(rec.meta_len + rec.data_len, 0);
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_RECORD);
    ck_assert_uint_eq(rec.seq, 2);
    ck_assert_uint_eq(rec.data_len, 3);
    ck_assert_int_eq(memcmp(rec.data, data, 3), 0);
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_END);
    vem_spool_reader_destroy(&reader);
}
END_TEST

/* Sets the soft limit of resource to cur (the hard limit stays); RLIM_INFINITY goes back to the
 * hard limit. No assertion may run while a small RLIMIT_FSIZE is in force: Check reports
 * through a file of its own. */
static void s_limit(int resource, rlim_t cur)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(resource, &rl), 0);
    rl.rlim_cur = cur == RLIM_INFINITY ? rl.rlim_max : cur;
    ck_assert_int_eq(setrlimit(resource, &rl), 0);
}

/* The lowest descriptor number not in use: with RLIMIT_NOFILE at it, every open fails. */
static rlim_t s_lowest_free_fd(void)
{
    int fd = 0;
    while (fcntl(fd, F_GETFD) != -1)
        fd++;
    return (rlim_t)fd;
}

/* Defect 1: a failed segment open broke the spool until restart (the old segment was closed
 * before the new one was opened, then every append failed with EBADF). Now the roll happens
 * in flush, opens the new segment first and keeps the old one when that fails; a retry works,
 * and nothing appended is lost or renumbered. Both opens of a roll are made to fail: the
 * segment itself (limit = lowest free descriptor), then the directory for its fsync (one
 * more), which must also remove the segment just created. */
START_TEST(failed_roll_keeps_old_segment)
{
    vem_spool_t *spool = s_open(1 << 20, 4096);
    unsigned i = 1;
    uint64_t used = 0;
    for (; used + s_size(i) <= 4096; i++) {
        s_append(spool, i);
        used += s_size(i);
    }
    ck_assert_int_eq(vem_spool_flush(spool), 0);
    unsigned roll = i; /* the record that needs a new segment */
    for (rlim_t extra = 0; extra <= 1; extra++) {
        s_limit(RLIMIT_NOFILE, s_lowest_free_fd() + extra);
        if (extra == 0)
            s_append(spool, i++); /* accepted: appending does no I/O */
        errno = 0;
        int rc = vem_spool_flush(spool);
        int err = errno;
        s_limit(RLIMIT_NOFILE, RLIM_INFINITY);
        ck_assert_int_eq(rc, -1);
        ck_assert_int_eq(err, EMFILE);
        ck_assert_int_eq(access(s_segment(roll), F_OK), -1);
        ck_assert_int_eq(errno, ENOENT);
        s_append(spool, i++); /* still accepted while the spool cannot write */
    }
    ck_assert_int_eq(vem_spool_flush(spool), 0); /* the retry writes everything pending */
    ck_assert_int_eq(access(s_segment(roll), F_OK), 0);
    s_append(spool, i++);
    ck_assert_int_eq(vem_spool_flush(spool), 0);
    vem_spool_destroy(&spool);

    spool = s_open(1 << 20, 4096);
    ck_assert_uint_eq(vem_spool_next_seq(spool), i);
    vem_spool_destroy(&spool);
    s_read_range(1, 1, i - 1);
}
END_TEST

/* Defect 2: a flush that failed after a short write left a fragment mid-segment, and the
 * retry appended the whole buffer after it; on restart the recovery cut at the fragment and
 * the seqs after it were reused. RLIMIT_FSIZE makes the write stop 30 bytes into the batch,
 * then fail with EFBIG. Now the fragment is cut at once and the retry rewrites the same
 * records with the same seqs. */
START_TEST(failed_flush_leaves_no_fragment)
{
    signal(SIGXFSZ, SIG_IGN);
    vem_spool_t *spool = s_open(1 << 30, 1 << 20);
    for (unsigned i = 1; i <= 10; i++)
        s_append(spool, i);
    ck_assert_int_eq(vem_spool_flush(spool), 0);
    struct stat st;
    ck_assert_int_eq(stat(s_segment(1), &st), 0);
    off_t good = st.st_size;
    for (unsigned i = 11; i <= 20; i++)
        s_append(spool, i);
    ck_assert_uint_gt(s_size(11), 30); /* the limit falls inside record 11 */

    s_limit(RLIMIT_FSIZE, (rlim_t)good + 30);
    errno = 0;
    int rc = vem_spool_flush(spool);
    int err = errno;
    s_limit(RLIMIT_FSIZE, RLIM_INFINITY);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(err, EFBIG);
    ck_assert_int_eq(stat(s_segment(1), &st), 0);
    ck_assert_int_eq(st.st_size, good); /* no fragment left behind */

    ck_assert_int_eq(vem_spool_flush(spool), 0);
    for (unsigned i = 21; i <= 25; i++)
        s_append(spool, i);
    ck_assert_int_eq(vem_spool_flush(spool), 0);
    vem_spool_destroy(&spool);

    spool = s_open(1 << 30, 1 << 20);
    ck_assert_uint_eq(vem_spool_next_seq(spool), 26); /* no seq reused */
    vem_spool_destroy(&spool);
    s_read_range(1, 1, 25);
}
END_TEST

/* max_bytes below twice segment_bytes is refused: the active segment is never trimmed, so
 * such a spool could stop taking input for good. */
START_TEST(opts_check_refuses_small_spool)
{
    static const struct {
        uint64_t max_bytes, segment_bytes;
        int rc;
    } cases[] = {
        {8192, 4096, 0},
        {8191, 4096, -1},
        {1 << 20, 65536, 0},
        {65536, 65536, -1},
        {UINT64_MAX, 1ULL << 63, -1},
        {4096, 0, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vem_spool_opts_t opts = {.max_bytes = cases[i].max_bytes,
                                 .segment_bytes = cases[i].segment_bytes};
        char err[256] = "";
        ck_assert_int_eq(vem_spool_opts_check(&opts, err, sizeof err), cases[i].rc);
        ck_assert(cases[i].rc == 0 ? err[0] == '\0' : err[0] != '\0');
    }
    vem_spool_opts_t opts = {.max_bytes = 8191, .segment_bytes = 4096, .fsync = true};
    char err[256] = "";
    ck_assert_ptr_null(vem_spool_open(s_dir, &opts, err, sizeof err));
    ck_assert_str_eq(err, "spool: max_bytes (8191) must be at least twice segment_bytes (4096): "
                          "the active segment is never trimmed, so a smaller spool can stall "
                          "intake for good");
}
END_TEST

/* Appending does no I/O: records are pending (counted in bytes and against max_bytes) until a
 * flush makes them durable. */
START_TEST(appends_pend_until_flush)
{
    vem_spool_t *spool = s_open(1 << 30, 1 << 20);
    ck_assert_uint_eq(vem_spool_durable_seq(spool), 0);
    ck_assert_uint_eq(vem_spool_first_seq(spool), 1);
    for (unsigned i = 1; i <= 3; i++)
        s_append(spool, i);
    uint64_t want = s_size(1) + s_size(2) + s_size(3);
    struct stat st;
    ck_assert_int_eq(stat(s_segment(1), &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    ck_assert_uint_eq(vem_spool_durable_seq(spool), 0);
    ck_assert_uint_eq(vem_spool_pending_bytes(spool), want);
    ck_assert_uint_eq(vem_spool_bytes(spool), want);

    ck_assert_int_eq(vem_spool_flush(spool), 0);
    ck_assert_int_eq(stat(s_segment(1), &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)want);
    ck_assert_uint_eq(vem_spool_durable_seq(spool), 3);
    ck_assert_uint_eq(vem_spool_pending_bytes(spool), 0);
    ck_assert_uint_eq(vem_spool_bytes(spool), want);
    ck_assert_uint_eq(vem_spool_first_seq(spool), 1);
    ck_assert_int_eq(vem_spool_flush(spool), 0); /* nothing pending: nothing to do */
    vem_spool_destroy(&spool);
    s_read_range(1, 1, 3);
}
END_TEST

/* Records larger than the old 256 KiB write buffer and than a segment are taken whole; one
 * alone in its segment. EMSGSIZE only for data over 16 MiB or a record over max_bytes / 2. */
START_TEST(large_records_fit_whole)
{
    vem_spool_t *spool = s_open(1 << 30, 4096);
    size_t big = 300 << 10;
    uint8_t *data = malloc((16u << 20) + 1);
    ck_assert_ptr_nonnull(data);
    for (size_t k = 0; k < big; k++)
        data[k] = (uint8_t)(k * 31 + k / 251);
    s_append(spool, 1);
    vem_spool_rec_t rec = {.received_us = 5, .kind = 1, .data = data, .data_len = (uint32_t)big};
    ck_assert_int_eq(vem_spool_append(spool, &rec), 0);
    ck_assert_uint_eq(rec.seq, 2);
    s_append(spool, 3);
    ck_assert_int_eq(vem_spool_flush(spool), 0);
    struct stat st;
    ck_assert_int_eq(stat(s_segment(1), &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)s_size(1));
    ck_assert_int_eq(stat(s_segment(2), &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)(28 + big));
    ck_assert_int_eq(stat(s_segment(3), &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)s_size(3));

    rec.data_len = (16u << 20) + 1;
    errno = 0;
    ck_assert_int_eq(vem_spool_append(spool, &rec), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    vem_spool_destroy(&spool);

    char err[256];
    vem_spool_reader_t *reader = vem_spool_reader_new(s_dir, 1, err, sizeof err);
    ck_assert_ptr_nonnull(reader);
    vem_spool_rec_t got;
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &got), VEM_SPOOL_READ_RECORD);
    s_check(&got, 1);
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &got), VEM_SPOOL_READ_RECORD);
    ck_assert_uint_eq(got.seq, 2);
    ck_assert_uint_eq(got.data_len, big);
    ck_assert_int_eq(memcmp(got.data, data, big), 0);
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &got), VEM_SPOOL_READ_RECORD);
    s_check(&got, 3);
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &got), VEM_SPOOL_READ_END);
    vem_spool_reader_destroy(&reader);

    /* max_bytes 16384: a record of 8192 bytes fits, one of 8193 never could. */
    char sub[300];
    snprintf(sub, sizeof sub, "%s/small", s_dir);
    vem_spool_opts_t opts = {.max_bytes = 16384, .segment_bytes = 4096, .fsync = true};
    spool = vem_spool_open(sub, &opts, err, sizeof err);
    ck_assert_ptr_nonnull(spool);
    rec.data_len = 8192 - 28;
    ck_assert_int_eq(vem_spool_append(spool, &rec), 0);
    rec.data_len = 8192 - 28 + 1;
    errno = 0;
    ck_assert_int_eq(vem_spool_append(spool, &rec), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    vem_spool_destroy(&spool);
    free(data);
}
END_TEST

/* Three records worked by hand, each 28 header bytes + meta + data:
 *   1: meta "a"   + 10 data = 39 bytes, received 1.0 s
 *   2: meta "bb"  + 20 data = 50 bytes, received 2.0 s    seg-1: 39 + 50 = 89 <= 100
 *   3: meta "ccc" + 30 data = 61 bytes, received 3.5 s    89 + 61 > 100: seg-3 holds 61
 * so 2 segments, 150 bytes, seqs 1..3; cursors pg at 1 (backlog 2) and kafka at 3. */
START_TEST(inspect_reports_segments_seqs_and_cursors)
{
    char err[256] = "";
    vem_spool_info_t info;
    vem_spool_t *spool = s_open(1000, 100);
    ck_assert_int_eq(vem_spool_inspect(s_dir, &info, err, sizeof err), 0); /* a new spool */
    ck_assert_uint_eq(info.n_segments, 1);
    ck_assert_uint_eq(info.segments[0].first_seq, 1);
    ck_assert_uint_eq(info.segments[0].bytes, 0);
    ck_assert_uint_eq(info.bytes, 0);
    ck_assert_uint_eq(info.first_seq, 1);
    ck_assert_uint_eq(info.last_seq, 0);
    ck_assert_int_eq(info.first_us, 0);
    ck_assert_int_eq(info.last_us, 0);
    ck_assert_uint_eq(info.n_consumers, 0);
    vem_spool_info_free(&info);
    ck_assert_ptr_null(info.segments);

    static const char *metas[] = {"a", "bb", "ccc"};
    static const int64_t times[] = {1000000, 2000000, 3500000};
    uint8_t data[30] = {0};
    for (int i = 0; i < 3; i++) {
        vem_spool_rec_t rec = {.received_us = times[i],
                               .kind = 1,
                               .meta = (const uint8_t *)metas[i],
                               .meta_len = (uint16_t)(i + 1),
                               .data = data,
                               .data_len = (uint32_t)(10 * (i + 1))};
        ck_assert_int_eq(vem_spool_append(spool, &rec), 0);
    }
    ck_assert_int_eq(vem_spool_flush(spool), 0);
    vem_spool_cursor_t *cur = vem_spool_cursor_open(s_dir, "pg", err, sizeof err);
    ck_assert_int_eq(vem_spool_cursor_commit(cur, 1), 0);
    vem_spool_cursor_destroy(&cur);
    cur = vem_spool_cursor_open(s_dir, "kafka", err, sizeof err);
    ck_assert_int_eq(vem_spool_cursor_commit(cur, 3), 0);
    vem_spool_cursor_destroy(&cur);
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s/cursor.pg.tmp", s_dir);
    FILE *f = fopen(tmp, "w"); /* left by a commit that failed: not a consumer */
    ck_assert_ptr_nonnull(f);
    fputs("99\n", f);
    fclose(f);

    ck_assert_int_eq(vem_spool_inspect(s_dir, &info, err, sizeof err), 0);
    ck_assert_uint_eq(info.n_segments, 2);
    ck_assert_uint_eq(info.segments[0].first_seq, 1);
    ck_assert_uint_eq(info.segments[0].bytes, 89);
    ck_assert_uint_eq(info.segments[1].first_seq, 3);
    ck_assert_uint_eq(info.segments[1].bytes, 61);
    ck_assert_uint_eq(info.bytes, 150);
    ck_assert_uint_eq(info.first_seq, 1);
    ck_assert_uint_eq(info.last_seq, 3);
    ck_assert_int_eq(info.first_us, 1000000);
    ck_assert_int_eq(info.last_us, 3500000);
    ck_assert_uint_eq(info.n_consumers, 2);
    ck_assert_str_eq(info.consumers[0].name, "kafka");
    ck_assert_uint_eq(info.consumers[0].seq, 3);
    ck_assert_str_eq(info.consumers[1].name, "pg");
    ck_assert_uint_eq(info.consumers[1].seq, 1);
    vem_spool_info_free(&info);

    int64_t us = 0;
    ck_assert_int_eq(vem_spool_received_us(s_dir, 2, &us), 0); /* pg's next record */
    ck_assert_int_eq(us, 2000000);
    errno = 0;
    ck_assert_int_eq(vem_spool_received_us(s_dir, 4, &us), -1); /* kafka has none waiting */
    ck_assert_int_eq(errno, ENOENT);

    /* Trimmed up to 2: seg-1 goes, seg-3 stays; an empty segment after it changes nothing. */
    ck_assert_int_eq(vem_spool_trim(spool, 2), 0);
    vem_spool_destroy(&spool);
    int fd = open(s_segment(4), O_CREAT | O_EXCL | O_WRONLY, 0640);
    close(fd);
    ck_assert_int_eq(vem_spool_inspect(s_dir, &info, err, sizeof err), 0);
    ck_assert_uint_eq(info.n_segments, 2);
    ck_assert_uint_eq(info.bytes, 61);
    ck_assert_uint_eq(info.first_seq, 3);
    ck_assert_uint_eq(info.last_seq, 3);
    ck_assert_int_eq(info.first_us, 3500000);
    ck_assert_int_eq(info.last_us, 3500000);
    vem_spool_info_free(&info);

    char missing[300];
    snprintf(missing, sizeof missing, "%s/nowhere", s_dir);
    ck_assert_int_eq(vem_spool_inspect(missing, &info, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "nowhere: No such file or directory"));
    ck_assert_int_eq(mkdir(missing, 0750), 0);
    ck_assert_int_eq(vem_spool_inspect(missing, &info, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "nowhere: no segments"));
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

/* Only names the spool writes (seg-, 20 digits, .log) are segments. A stray seg-4.log (by hand,
 * by a tool) used to be listed as segment 4 and then opened under its padded name, which does
 * not exist: a reader took that for a segment trimmed meanwhile and listed again, for ever. */
START_TEST(stray_segment_names_are_not_segments)
{
    vem_spool_t *spool = s_open(1 << 30, 1 << 20);
    for (unsigned i = 1; i <= 3; i++)
        s_append(spool, i);
    vem_spool_destroy(&spool);
    static const char *const stray[] = {"seg-4.log", "seg-+5.log", "seg- 6.log",
                                        "seg-0000000000000000007.log",
                                        "seg-99999999999999999999.log"};
    char path[400];
    for (size_t i = 0; i < sizeof stray / sizeof *stray; i++) {
        snprintf(path, sizeof path, "%s/%s", s_dir, stray[i]);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
    }
    s_read_range(1, 1, 3);
    vem_spool_info_t info;
    char err[256];
    ck_assert_msg(vem_spool_inspect(s_dir, &info, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(info.n_segments, 1);
    ck_assert_uint_eq(info.last_seq, 3);
    vem_spool_info_free(&info);
    spool = s_open(1 << 30, 1 << 20);
    ck_assert_uint_eq(vem_spool_next_seq(spool), 4);
    s_append(spool, 4);
    vem_spool_destroy(&spool);
    s_read_range(1, 1, 4);
}
END_TEST

/* A segment named 2^32 seqs or more after the one before it cannot be the writer's (it names a
 * segment durable_seq + 1, and a missing one holds far fewer records): its name is damaged.
 * Reading across such a gap used to report it UINT32_MAX seqs at a time, for hours (2^32
 * reports towards seg-<near UINT64_MAX>); open, readers and inspection now refuse the spool
 * with the name, so that the operator moves the file away. */
START_TEST(segment_named_far_ahead_is_refused)
{
    vem_spool_t *spool = s_open(1 << 30, 1 << 20);
    for (unsigned i = 1; i <= 3; i++)
        s_append(spool, i);
    vem_spool_destroy(&spool);
    const uint64_t far[] = {UINT64_MAX - 1, (1ull << 32) + 3};
    for (size_t i = 0; i < sizeof far / sizeof *far; i++) {
        FILE *f = fopen(s_segment(far[i]), "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
        char name[64], err[512] = "";
        snprintf(name, sizeof name, "seg-%020" PRIu64 ".log", far[i]);
        vem_spool_info_t info;
        ck_assert_int_eq(vem_spool_inspect(s_dir, &info, err, sizeof err), -1);
        ck_assert_msg(strstr(err, name) != NULL, "inspect: %s", err);
        err[0] = '\0';
        errno = 0;
        ck_assert_ptr_null(vem_spool_reader_new(s_dir, 1, err, sizeof err));
        ck_assert_int_eq(errno, EUCLEAN);
        ck_assert_msg(strstr(err, name) != NULL, "reader: %s", err);
        vem_spool_opts_t opts = {.max_bytes = 1 << 30, .segment_bytes = 1 << 20};
        err[0] = '\0';
        ck_assert_ptr_null(vem_spool_open(s_dir, &opts, err, sizeof err));
        ck_assert_msg(strstr(err, name) != NULL, "open: %s", err);
        unlink(s_segment(far[i]));
    }
    /* a reader already open meets it as an error, not as 2^32 damage reports */
    char err[256];
    vem_spool_reader_t *reader = vem_spool_reader_new(s_dir, 1, err, sizeof err);
    ck_assert_ptr_nonnull(reader);
    vem_spool_rec_t rec;
    for (unsigned i = 1; i <= 3; i++)
        ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_RECORD);
    FILE *f = fopen(s_segment(UINT64_MAX - 1), "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(vem_spool_reader_next(reader, UINT64_MAX, &rec), VEM_SPOOL_READ_ERROR);
    vem_spool_reader_destroy(&reader);
}
END_TEST

/* Every way of looking at the spool refuses it with both seqs and the file's name. */
static void s_check_misnamed(uint64_t named, uint64_t holds, const uint8_t *bytes, size_t len)
{
    char name[64], seqs[96], err[512] = "";
    snprintf(name, sizeof name, "seg-%020" PRIu64 ".log", named);
    snprintf(seqs, sizeof seqs, "from seq %" PRIu64 " on, not from %" PRIu64, holds, named);
    vem_spool_opts_t opts = {.max_bytes = 1 << 30, .segment_bytes = 4096, .fsync = true};
    ck_assert_ptr_null(vem_spool_open(s_dir, &opts, err, sizeof err));
    ck_assert_msg(strstr(err, name) && strstr(err, seqs), "open: %s", err);
    vem_spool_info_t info;
    err[0] = '\0';
    ck_assert_int_eq(vem_spool_inspect(s_dir, &info, err, sizeof err), -1);
    ck_assert_msg(strstr(err, name) && strstr(err, seqs), "inspect: %s", err);
    ck_assert_ptr_null(info.segments);
    /* a reader meets it as an error where it enters that segment, not as a damaged range */
    err[0] = '\0';
    errno = 0;
    vem_spool_reader_t *reader = vem_spool_reader_new(s_dir, 1, err, sizeof err);
    if (reader) {
        vem_spool_rec_t rec;
        vem_spool_read_t rc;
        while ((rc = vem_spool_reader_next(reader, UINT64_MAX, &rec)) == VEM_SPOOL_READ_RECORD)
            ck_assert_uint_lt(rec.seq, holds);
        int saved = errno;
        ck_assert_int_eq(rc, VEM_SPOOL_READ_ERROR);
        ck_assert_int_eq(saved, EUCLEAN);
        vem_spool_reader_destroy(&reader);
    } else {
        ck_assert_int_eq(errno, EUCLEAN);
        ck_assert_msg(strstr(err, name) && strstr(err, seqs), "reader: %s", err);
    }
    size_t now_len;
    uint8_t *now = vem_test_slurp(s_segment(named), &now_len);
    ck_assert_ptr_nonnull(now);
    ck_assert_uint_eq(now_len, len);
    ck_assert_int_eq(memcmp(now, bytes, len), 0);
    free(now);
}

/* Renames segment `from` to `to`, checks that the spool is refused and the file left as it was,
 * renames it back and checks that records 1..last all read. */
static void s_misname(uint64_t from, uint64_t to, unsigned last)
{
    size_t len;
    uint8_t *bytes = vem_test_slurp(s_segment(from), &len);
    ck_assert_ptr_nonnull(bytes);
    ck_assert_uint_gt(len, 0);
    char path[320];
    snprintf(path, sizeof path, "%s", s_segment(from));
    ck_assert_int_eq(rename(path, s_segment(to)), 0);
    s_check_misnamed(to, from, bytes, len);
    ck_assert_int_eq(rename(s_segment(to), path), 0);
    free(bytes);
    vem_spool_t *spool = s_open(1 << 30, 4096);
    ck_assert_uint_eq(vem_spool_next_seq(spool), last + 1);
    vem_spool_destroy(&spool);
    s_read_range(1, 1, last);
}

/* A segment renamed (by hand, by damage) to another seq than its first record's used to be
 * read as if all its records were damaged: open cut the last segment at the first record whose
 * seq was not the one its name led to expect, so a lone renamed segment lost every
 * acknowledged record it held. Now open, inspection and readers refuse the spool, naming the
 * file and both seqs, and leave the file alone; renamed back, every record is there. */
START_TEST(segment_named_after_another_seq_is_refused)
{
    vem_spool_t *spool = s_open(1 << 30, 4096);
    for (unsigned i = 1; i <= 3; i++)
        s_append(spool, i);
    vem_spool_destroy(&spool);
    s_misname(1, 5, 3); /* the only segment, named after a seq beyond its records */

    spool = s_open(1 << 30, 4096);
    for (unsigned i = 4; i <= 200; i++)
        s_append(spool, i);
    vem_spool_destroy(&spool);
    uint64_t firsts[64];
    size_t n = s_segments(200, firsts, 64);
    ck_assert_uint_ge(n, 3);
    s_misname(firsts[n - 1], firsts[n - 1] + 3, 200); /* the last of several */
    s_misname(firsts[n - 1], firsts[n - 1] - 1, 200); /* the last, named into the one before */
    s_misname(firsts[1], firsts[1] + 1, 200);         /* one in the middle */
}
END_TEST

/* A cursor file holds one decimal seq and a newline, as the commit writes it. Anything else
 * is damage and is refused with its name: read as a number, "-1" or a seq past 64 bits would
 * put the cursor beyond every record (the consumer would skip them and the spool trim them),
 * and trailing bytes mean the file is not what was written. */
START_TEST(damaged_cursor_files_are_refused)
{
    static const char *const bad[] = {"",
                                      "\n",
                                      "x\n",
                                      "-1\n",
                                      "+5\n",
                                      "8\n\x1e\x1e",
                                      "12abc\n",
                                      "7 8\n",
                                      "18446744073709551616\n",
                                      "99999999999999999999999\n"};
    char err[512], path[300];
    snprintf(path, sizeof path, "%s/cursor.pg", s_dir);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(bad[i], f);
        fclose(f);
        err[0] = '\0';
        vem_spool_cursor_t *cur = vem_spool_cursor_open(s_dir, "pg", err, sizeof err);
        ck_assert_msg(cur == NULL, "cursor file \"%s\" accepted as %" PRIu64, bad[i],
                      cur ? vem_spool_cursor_get(cur) : 0);
        ck_assert_msg(strstr(err, path) != NULL, "refusal without the file: %s", err);
    }
    static const struct {
        const char *text;
        uint64_t seq;
    } good[] = {{"0\n", 0}, {"42\n", 42}, {"42", 42}, {"18446744073709551615\n", UINT64_MAX}};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(good[i].text, f);
        fclose(f);
        vem_spool_cursor_t *cur = vem_spool_cursor_open(s_dir, "pg", err, sizeof err);
        ck_assert_msg(cur != NULL, "cursor file \"%s\" refused: %s", good[i].text, err);
        ck_assert_uint_eq(vem_spool_cursor_get(cur), good[i].seq);
        vem_spool_cursor_destroy(&cur);
    }
}
END_TEST

/* vem_fileio_replace (the cursors' and intake-paused's writer): the new bytes replace the old
 * whole; when the new file cannot be made (its temporary name in a directory that does not
 * exist: ENOENT) it fails, and the old bytes stay. */
START_TEST(replace_is_whole_or_nothing)
{
    char dir[256], path[300], tmp[310], bad[340];
    vem_test_mkdtemp("fileio", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/f", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(bad, sizeof bad, "%s/missing/f.tmp", dir);
    ck_assert_int_eq(vem_fileio_replace(dir, tmp, path, (const uint8_t *)"old bytes\n", 10), 0);
    ck_assert_int_eq(vem_fileio_replace(dir, tmp, path, (const uint8_t *)"new\n", 4), 0);
    size_t len;
    uint8_t *got = vem_test_slurp(path, &len);
    ck_assert_uint_eq(len, 4);
    ck_assert_mem_eq(got, "new\n", 4);
    free(got);
    ck_assert_int_eq(access(tmp, F_OK), -1); /* renamed, not left behind */
    errno = 0;
    ck_assert_int_eq(vem_fileio_replace(dir, bad, path, (const uint8_t *)"lost\n", 5), -1);
    ck_assert_int_eq(errno, ENOENT);
    got = vem_test_slurp(path, &len);
    ck_assert_uint_eq(len, 4);
    ck_assert_mem_eq(got, "new\n", 4);
    free(got);
}
END_TEST

Suite *vem_suite_spool(void);
Suite *vem_suite_spool(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("spool");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, appends_read_back_in_order);
    tcase_add_test(tc, replace_is_whole_or_nothing);
    tcase_add_test(tc, torn_tail_is_cut_on_open);
    tcase_add_test(tc, bad_crc_in_tail_is_cut);
    tcase_add_test(tc, segments_roll_and_trim);
    tcase_add_test(tc, full_spool_refuses_until_trimmed);
    tcase_add_test(tc, missing_middle_segment_is_reported);
    tcase_add_test(tc, damaged_records_are_reported_then_skipped);
    tcase_add_test(tc, empty_last_segment_is_stepped_over);
    tcase_add_test(tc, reader_follows_the_writer);
    tcase_add_test(tc, recovery_keeps_records_after_damage);
    tcase_add_test(tc, forged_record_inside_data_is_not_read);
    tcase_add_test(tc, null_meta_and_data_round_trip);
    tcase_add_test(tc, opts_check_refuses_small_spool);
    tcase_add_test(tc, appends_pend_until_flush);
    tcase_add_test(tc, large_records_fit_whole);
    tcase_add_test(tc, failed_roll_keeps_old_segment);
    tcase_add_test(tc, failed_flush_leaves_no_fragment);
    tcase_add_test(tc, inspect_reports_segments_seqs_and_cursors);
    tcase_add_test(tc, cursor_moves_forward_durably);
    tcase_add_test(tc, damaged_cursor_files_are_refused);
    tcase_add_test(tc, stray_segment_names_are_not_segments);
    tcase_add_test(tc, segment_named_far_ahead_is_refused);
    tcase_add_test(tc, segment_named_after_another_seq_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
