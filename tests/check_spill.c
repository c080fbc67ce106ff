/* check_spill — a sink's overflow file is a FIFO bounded in bytes (4-byte length prefix per
 * message), shrinks to nothing once drained, and starts empty. */
#include "spill.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static off_t s_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

/* A fresh directory, and the spill's path in it. */
static void s_paths(char *dir, size_t dir_cap, char *path, size_t path_cap)
{
    vem_test_mkdtemp("spill", dir, dir_cap);
    snprintf(path, path_cap, "%s/spill.pg", dir);
}

START_TEST(fifo_bounded_and_truncated)
{
    char dir[256], path[300], err[200];
    s_paths(dir, sizeof dir, path, sizeof path);
    vem_spill_t *sp = vem_spill_open(path, 100, err, sizeof err);
    ck_assert_ptr_nonnull(sp);
    uint8_t a[40], b[40], c[40], got[40];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    memset(c, 'c', sizeof c);
    ck_assert_int_eq(vem_spill_push(sp, a, sizeof a), 0); /* 44 bytes */
    ck_assert_int_eq(vem_spill_push(sp, b, sizeof b), 0); /* 88 */
    errno = 0;
    ck_assert_int_eq(vem_spill_push(sp, c, sizeof c), -1); /* 132 > 100 */
    ck_assert_int_eq(errno, ENOSPC);
    ck_assert_uint_eq(vem_spill_count(sp), 2);
    ck_assert_uint_eq(vem_spill_bytes(sp), 88);

    ck_assert_uint_eq(vem_spill_peek(sp), 40);
    ck_assert_int_eq(vem_spill_pop(sp, got), 0);
    ck_assert_int_eq(memcmp(got, a, 40), 0); /* first in, first out */
    ck_assert_uint_eq(vem_spill_bytes(sp), 44);
    ck_assert_int_eq(vem_spill_push(sp, c, sizeof c), 0); /* room again: 88 */
    ck_assert_int_eq(vem_spill_pop(sp, got), 0);
    ck_assert_int_eq(memcmp(got, b, 40), 0);
    ck_assert_int_eq(s_size(path), 132); /* not drained yet: the file keeps its bytes */
    ck_assert_int_eq(vem_spill_pop(sp, got), 0);
    ck_assert_int_eq(memcmp(got, c, 40), 0);
    ck_assert_uint_eq(vem_spill_count(sp), 0);
    ck_assert_int_eq(s_size(path), 0); /* drained: truncated */
    ck_assert_uint_eq(vem_spill_peek(sp), 0);
    ck_assert_int_eq(vem_spill_pop(sp, got), -1);
    ck_assert_int_eq(vem_spill_push(sp, a, 0), -1); /* an empty message means nothing */
    vem_spill_destroy(&sp);
    ck_assert_ptr_null(sp);
    struct stat st;
    ck_assert_int_ne(stat(path, &st), 0); /* removed */
}
END_TEST

START_TEST(open_empties_a_left_over_file)
{
    char dir[256], path[300], err[200];
    s_paths(dir, sizeof dir, path, sizeof path);
    FILE *f = fopen(path, "w");
    fputs("left over by a crash", f);
    fclose(f);
    vem_spill_t *sp = vem_spill_open(path, 1000, err, sizeof err);
    ck_assert_ptr_nonnull(sp);
    ck_assert_uint_eq(vem_spill_count(sp), 0);
    ck_assert_int_eq(s_size(path), 0);
    vem_spill_destroy(&sp);
    snprintf(path, sizeof path, "%s/no/such/dir/spill", dir);
    ck_assert_ptr_null(vem_spill_open(path, 1000, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
}
END_TEST

/* A spill file cut short behind the spill's back (a disk error, an operator): a pop that cannot
 * read its message fails with EIO and takes nothing off, so the message stays counted (the sink
 * logs the error and tries again; its spool cursor has not passed the message, so a restart
 * replays it). Cut inside the second message's bytes, then inside its length. */
START_TEST(read_error_takes_nothing_off)
{
    char dir[256], path[300], err[200];
    s_paths(dir, sizeof dir, path, sizeof path);
    vem_spill_t *sp = vem_spill_open(path, 1000, err, sizeof err);
    ck_assert_ptr_nonnull(sp);
    uint8_t a[40], b[40], got[40];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    ck_assert_int_eq(vem_spill_push(sp, a, sizeof a), 0); /* bytes 0 .. 44 */
    ck_assert_int_eq(vem_spill_push(sp, b, sizeof b), 0); /* bytes 44 .. 88 */
    ck_assert_int_eq(truncate(path, 44 + 4 + 10), 0);     /* b's length whole, 10 of its bytes */
    ck_assert_int_eq(vem_spill_pop(sp, got), 0);
    ck_assert_int_eq(memcmp(got, a, 40), 0);
    ck_assert_uint_eq(vem_spill_peek(sp), 40);
    errno = 0;
    ck_assert_int_eq(vem_spill_pop(sp, got), -1);
    ck_assert_int_eq(errno, EIO);
    ck_assert_uint_eq(vem_spill_count(sp), 1);
    ck_assert_uint_eq(vem_spill_bytes(sp), 44);
    ck_assert_int_eq(truncate(path, 44 + 2), 0); /* now b's length itself is cut */
    ck_assert_uint_eq(vem_spill_peek(sp), 0);
    errno = 0;
    ck_assert_int_eq(vem_spill_pop(sp, got), -1);
    ck_assert_int_eq(errno, EIO); /* not ENOENT: a message is counted, and unreadable */
    ck_assert_uint_eq(vem_spill_count(sp), 1);
    vem_spill_destroy(&sp);
}
END_TEST

Suite *vem_suite_spill(void);
Suite *vem_suite_spill(void)
{
    Suite *s = suite_create("spill");
    TCase *tc = tcase_create("spill");
    tcase_add_test(tc, fifo_bounded_and_truncated);
    tcase_add_test(tc, open_empties_a_left_over_file);
    tcase_add_test(tc, read_error_takes_nothing_off);
    suite_add_tcase(s, tc);
    return s;
}
