/* check_checkpoint — rule-state checkpoint files: what is written is read back entry by entry
 * with each worker's `through`; a torn or damaged file is refused (and makes the lowest
 * through 0, so the spool is replayed for its vehicles); a failed write keeps the previous
 * file; files of workers a smaller run no longer has are removed; states of vehicles known
 * only by plate come back as plates (version 2), and version 1 files (VINs only) are read. */
#include "checkpoint.h"
#include "log.h"
#include "testutil.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char s_dir[256];

static void s_write(unsigned index, unsigned workers, uint64_t through, unsigned n,
                    size_t state_len)
{
    char err[300];
    vem_ckpt_writer_t *w = vem_ckpt_begin(s_dir, index, workers, through, err, sizeof err);
    ck_assert_msg(w != NULL, "%s", err);
    uint8_t *state = malloc(state_len ? state_len : 1);
    for (unsigned i = 0; i < n; i++) {
        char vin[18];
        snprintf(vin, sizeof vin, "LCKPT%03u%09u", index, i);
        for (size_t k = 0; k < state_len; k++)
            state[k] = (uint8_t)(i * 7 + k);
        ck_assert_int_eq(vem_ckpt_add(w, vin, through - i, state, state_len), 0);
    }
    free(state);
    ck_assert_msg(vem_ckpt_commit(&w, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_null(w);
}

static const vem_ckpt_entry_t *s_find(const vem_ckpt_set_t *set, const char *vin)
{
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->entries[i].vin, vin) == 0)
            return &set->entries[i];
    return NULL;
}

static char *s_path(unsigned index)
{
    static char path[300];
    snprintf(path, sizeof path, "%s/rules.%u.ckpt", s_dir, index);
    return path;
}

/* Puts len bytes of p in place as the file at path. */
static void s_put_file(const char *path, const uint8_t *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, p, len), (ssize_t)len);
    close(fd);
}

START_TEST(written_is_read_back)
{
    vem_test_mkdtemp("ckpt", s_dir, sizeof s_dir);
    /* a state bigger than the writer's 1 MiB buffer crosses its flushes */
    s_write(0, 2, 5000, 3, 1500000);
    s_write(1, 2, 4200, 50, 100);
    vem_ckpt_set_t set;
    char err[300];
    ck_assert_int_eq(vem_ckpt_load(s_dir, &set, err, sizeof err), 0);
    ck_assert_uint_eq(set.files, 2);
    ck_assert_uint_eq(set.damaged, 0);
    ck_assert_uint_eq(set.workers, 2);
    ck_assert_uint_eq(set.count, 53);
    ck_assert_uint_eq(set.nthrough, 2);
    ck_assert_uint_eq(set.through[0], 5000);
    ck_assert_uint_eq(set.through[1], 4200);
    ck_assert_uint_eq(set.low_through, 4200);
    const vem_ckpt_entry_t *e = s_find(&set, "LCKPT000000000002");
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->applied, 4998);
    ck_assert_uint_eq(e->len, 1500000);
    for (size_t k = 0; k < e->len; k++)
        ck_assert_uint_eq(e->state[k], (uint8_t)(2 * 7 + k));
    e = s_find(&set, "LCKPT001000000049");
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->applied, 4200 - 49);
    ck_assert_uint_eq(e->len, 100);
    ck_assert_uint_eq(e->state[99], (uint8_t)(49 * 7 + 99));
    vem_ckpt_set_free(&set);
}
END_TEST

START_TEST(torn_and_damaged_files_are_refused)
{
    vem_test_mkdtemp("ckpt", s_dir, sizeof s_dir);
    s_write(0, 2, 900, 4, 64);
    s_write(1, 2, 800, 4, 64);
    struct stat st;
    ck_assert_int_eq(stat(s_path(1), &st), 0);
    /* every cut of worker 1's file, and one flipped bit anywhere, is refused */
    size_t len;
    uint8_t *whole = vem_test_slurp(s_path(1), &len);
    ck_assert_uint_eq(len, (size_t)st.st_size);
    for (size_t cut = 0; cut < len; cut += cut < 64 ? 1 : 37) {
        s_put_file(s_path(1), whole, cut);
        vem_ckpt_set_t set;
        char err[300];
        ck_assert_int_eq(vem_ckpt_load(s_dir, &set, err, sizeof err), 0);
        ck_assert_uint_eq(set.files, 1);
        ck_assert_uint_eq(set.damaged, 1);
        ck_assert_uint_eq(set.count, 4);       /* worker 0's vehicles only */
        ck_assert_uint_eq(set.low_through, 0); /* worker 1's vehicles: the whole spool */
        vem_ckpt_set_free(&set);
    }
    for (size_t at = 0; at < len; at += 13) {
        whole[at] ^= 0x10;
        s_put_file(s_path(1), whole, len);
        whole[at] ^= 0x10;
        vem_ckpt_set_t set;
        char err[300];
        ck_assert_int_eq(vem_ckpt_load(s_dir, &set, err, sizeof err), 0);
        ck_assert_msg(set.damaged == 1, "flip at %zu accepted", at);
        ck_assert_uint_eq(set.count, 4);
        vem_ckpt_set_free(&set);
    }
    free(whole);
}
END_TEST

START_TEST(failed_write_keeps_the_previous_and_stale_files_go)
{
    vem_test_mkdtemp("ckpt", s_dir, sizeof s_dir);
    s_write(0, 4, 100, 2, 10);
    s_write(3, 4, 90, 2, 10);
    /* a checkpoint dropped half way leaves the previous one and no temp file */
    char err[300];
    vem_ckpt_writer_t *w = vem_ckpt_begin(s_dir, 0, 4, 200, err, sizeof err);
    ck_assert_ptr_nonnull(w);
    uint8_t x[8] = {0};
    ck_assert_int_eq(vem_ckpt_add(w, "LCKPT000000000009", 200, x, sizeof x), 0);
    vem_ckpt_abort(&w);
    ck_assert_ptr_null(w);
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", s_path(0));
    ck_assert_int_ne(access(tmp, F_OK), 0);
    vem_ckpt_set_t set;
    ck_assert_int_eq(vem_ckpt_load(s_dir, &set, err, sizeof err), 0);
    ck_assert_uint_eq(set.through[0], 100);
    ck_assert_uint_eq(set.count, 4);
    vem_ckpt_set_free(&set);
    /* a run with two workers removes the files of workers 2 and 3 */
    vem_ckpt_remove_above(s_dir, 2);
    ck_assert_int_eq(access(s_path(0), F_OK), 0);
    ck_assert_int_ne(access(s_path(3), F_OK), 0);
    /* a directory that cannot be listed is an error, not an empty set */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope", s_dir);
    ck_assert_int_eq(vem_ckpt_load(missing, &set, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
}
END_TEST

/* The disk refusing the checkpoint's bytes part way (a full disk, here a file size limit:
 * write() fails with EFBIG where a full disk gives ENOSPC, the same path) fails the commit with
 * the reason, leaves the previous checkpoint as it was and no temp file behind. */
START_TEST(disk_refusing_the_write_keeps_the_previous)
{
    vem_test_mkdtemp("ckpt", s_dir, sizeof s_dir);
    s_write(0, 4, 100, 2, 10);
    struct rlimit old;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = {.rlim_cur = 16384, .rlim_max = old.rlim_max};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    char err[300];
    vem_ckpt_writer_t *w = vem_ckpt_begin(s_dir, 0, 4, 200, err, sizeof err);
    ck_assert_ptr_nonnull(w);
    static uint8_t state[8192];
    memset(state, 0x5A, sizeof state);
    for (unsigned i = 0; i < 8; i++) { /* 64 KiB: the limit is met by an add or the commit */
        char vin[18];
        snprintf(vin, sizeof vin, "LCKPT%012u", i);
        vem_ckpt_add(w, vin, 200, state, sizeof state);
    }
    int rc = vem_ckpt_commit(&w, err, sizeof err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_null(w);
    ck_assert_msg(strstr(err, "too large") != NULL, "%s", err);
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", s_path(0));
    ck_assert_int_ne(access(tmp, F_OK), 0);
    vem_ckpt_set_t set;
    ck_assert_int_eq(vem_ckpt_load(s_dir, &set, err, sizeof err), 0);
    ck_assert_uint_eq(set.damaged, 0);
    ck_assert_uint_eq(set.through[0], 100);
    ck_assert_uint_eq(set.count, 2);
    vem_ckpt_set_free(&set);
}
END_TEST

START_TEST(plates_and_version_1)
{
    vem_test_mkdtemp("ckpt", s_dir, sizeof s_dir);
    char err[300];
    vem_ckpt_writer_t *w = vem_ckpt_begin(s_dir, 0, 1, 90, err, sizeof err);
    ck_assert_msg(w != NULL, "%s", err);
    const uint8_t a[3] = {1, 2, 3}, b[2] = {9, 8};
    ck_assert_int_eq(vem_ckpt_add(w, "LCKPT000000000001", 80, a, sizeof a), 0);
    /* 京 is 3 bytes in UTF-8: a 16-byte plate fills the key after its '#' */
    ck_assert_int_eq(vem_ckpt_add_plate(w, "京A12345", 90, b, sizeof b), 0);
    ck_assert_int_eq(vem_ckpt_add_plate(w, "京A123456789012", 91, b, 1), 0);
    ck_assert_int_eq(vem_ckpt_add_plate(w, "京A1234567890123", 92, b, 1), -1);
    ck_assert_int_eq(vem_ckpt_add_plate(w, "", 92, b, 1), -1);
    ck_assert_msg(vem_ckpt_commit(&w, err, sizeof err) == 0, "%s", err);
    vem_ckpt_set_t set;
    ck_assert_int_eq(vem_ckpt_load(s_dir, &set, err, sizeof err), 0);
    ck_assert_uint_eq(set.count, 3);
    ck_assert_str_eq(set.entries[0].vin, "LCKPT000000000001");
    ck_assert_str_eq(set.entries[0].plate, "");
    ck_assert_str_eq(set.entries[1].vin, "");
    ck_assert_str_eq(set.entries[1].plate, "京A12345");
    ck_assert_uint_eq(set.entries[1].applied, 90);
    ck_assert_uint_eq(set.entries[1].len, 2);
    ck_assert_uint_eq(set.entries[1].state[0], 9);
    ck_assert_str_eq(set.entries[2].plate, "京A123456789012");
    vem_ckpt_set_free(&set);
    /* the same bytes as a version 1 file (header: magic, version, ...): VINs only, so a key
     * starting with '#' is read as a VIN, and the file is accepted */
    size_t len;
    uint8_t *p = vem_test_slurp(s_path(0), &len);
    ck_assert_ptr_nonnull(p);
    uint32_t version = 1;
    memcpy(p + 4, &version, sizeof version);
    /* the CRC-32 covers the header: recompute it as the writer does (zlib) */
    uint32_t crc = (uint32_t)crc32(crc32(0, NULL, 0), p, (unsigned)(len - 4));
    memcpy(p + len - 4, &crc, sizeof crc);
    s_put_file(s_path(0), p, len);
    free(p);
    ck_assert_int_eq(vem_ckpt_load(s_dir, &set, err, sizeof err), 0);
    ck_assert_uint_eq(set.damaged, 0);
    ck_assert_uint_eq(set.count, 3);
    ck_assert_str_eq(set.entries[0].vin, "LCKPT000000000001");
    ck_assert_str_eq(set.entries[1].plate, "");
    ck_assert_uint_eq((uint8_t)set.entries[1].vin[0], '#');
    vem_ckpt_set_free(&set);
}
END_TEST

/* Loads s_dir with the log caught; the log's lines, which the caller frees. */
static char *s_load_logged(vem_ckpt_set_t *set)
{
    char *log = NULL, err[300];
    size_t loglen = 0;
    FILE *out = open_memstream(&log, &loglen);
    ck_assert_ptr_nonnull(out);
    vem_log_set_stream(out);
    int rc = vem_ckpt_load(s_dir, set, err, sizeof err);
    vem_log_set_stream(NULL);
    fclose(out);
    ck_assert_msg(rc == 0, "%s", err);
    return log;
}

/* A sound file whose header is another worker's than its name says (a file copied over
 * another, or two swapped) is refused like a damaged one, naming the file and both indexes:
 * else its vehicles came twice, and the worker of its name had no through of its own while
 * the lowest through was still one a file gave (so its vehicles, without their states, were
 * not replayed from the spool's beginning). */
START_TEST(file_of_another_worker_is_refused)
{
    vem_test_mkdtemp("ckpt", s_dir, sizeof s_dir);
    s_write(0, 2, 900, 4, 16);
    s_write(1, 2, 800, 3, 16);
    size_t len0, len1;
    uint8_t *p0 = vem_test_slurp(s_path(0), &len0), *p1 = vem_test_slurp(s_path(1), &len1);
    ck_assert_ptr_nonnull(p0);
    ck_assert_ptr_nonnull(p1);
    /* worker 0's file copied over worker 1's */
    s_put_file(s_path(1), p0, len0);
    vem_ckpt_set_t set;
    char *log = s_load_logged(&set);
    ck_assert_uint_eq(set.files, 1);
    ck_assert_uint_eq(set.damaged, 1);
    ck_assert_uint_eq(set.count, 4);       /* worker 0's vehicles, once */
    ck_assert_uint_eq(set.low_through, 0); /* worker 1's vehicles: the whole spool */
    ck_assert_ptr_nonnull(s_find(&set, "LCKPT000000000003"));
    char want[400];
    snprintf(want, sizeof want, "%s refused: written by worker 0 of 2, named for worker 1",
             s_path(1));
    ck_assert_msg(strstr(log, want) != NULL, "%s", log);
    vem_ckpt_set_free(&set);
    free(log);
    /* the two swapped: neither is taken */
    s_put_file(s_path(0), p1, len1);
    s_put_file(s_path(1), p0, len0);
    log = s_load_logged(&set);
    ck_assert_uint_eq(set.files, 0);
    ck_assert_uint_eq(set.damaged, 2);
    ck_assert_uint_eq(set.count, 0);
    ck_assert_uint_eq(set.low_through, 0);
    snprintf(want, sizeof want, "%s refused: written by worker 1 of 2, named for worker 0",
             s_path(0));
    ck_assert_msg(strstr(log, want) != NULL, "%s", log);
    vem_ckpt_set_free(&set);
    free(log);
    /* each in its place again: both are taken */
    s_put_file(s_path(0), p0, len0);
    s_put_file(s_path(1), p1, len1);
    log = s_load_logged(&set);
    ck_assert_uint_eq(set.files, 2);
    ck_assert_uint_eq(set.damaged, 0);
    ck_assert_uint_eq(set.count, 7);
    ck_assert_uint_eq(set.low_through, 800);
    ck_assert_str_eq(log, "");
    vem_ckpt_set_free(&set);
    free(log);
    free(p0);
    free(p1);
}
END_TEST

/* A checkpoint is rules.<index>.ckpt with the index as the writer prints it. The names used to
 * be parsed by sscanf's %u, so rules.01.ckpt (a copy an operator left, say), rules.+1.ckpt or
 * rules.4294967297.ckpt were worker 1's too: its vehicles came twice, and which file's through
 * the worker kept hung on the directory's order. Other names are not checkpoints: neither read
 * nor removed. */
START_TEST(only_the_writers_names_are_checkpoints)
{
    vem_test_mkdtemp("ckpt", s_dir, sizeof s_dir);
    s_write(0, 2, 900, 4, 16);
    s_write(1, 2, 800, 3, 16);
    size_t len;
    uint8_t *p1 = vem_test_slurp(s_path(1), &len);
    ck_assert_ptr_nonnull(p1);
    const char *others[] = {"rules.01.ckpt", "rules.+1.ckpt", "rules. 1.ckpt",
                            "rules.4294967297.ckpt"};
    char path[400];
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        snprintf(path, sizeof path, "%s/%s", s_dir, others[i]);
        s_put_file(path, p1, len);
    }
    vem_ckpt_set_t set;
    char *log = s_load_logged(&set);
    ck_assert_uint_eq(set.files, 2);
    ck_assert_uint_eq(set.damaged, 0);
    ck_assert_uint_eq(set.count, 7); /* each vehicle once */
    ck_assert_uint_eq(set.low_through, 800);
    ck_assert_str_eq(log, "");
    vem_ckpt_set_free(&set);
    free(log);
    /* one worker now: rules.1.ckpt goes, the other names stay as they are */
    vem_ckpt_remove_above(s_dir, 1);
    ck_assert_int_ne(access(s_path(1), F_OK), 0);
    ck_assert_int_eq(access(s_path(0), F_OK), 0);
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        snprintf(path, sizeof path, "%s/%s", s_dir, others[i]);
        ck_assert_msg(access(path, F_OK) == 0, "%s removed", others[i]);
    }
    free(p1);
}
END_TEST

Suite *vem_suite_checkpoint(void);

Suite *vem_suite_checkpoint(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, written_is_read_back);
    tcase_add_test(tc, torn_and_damaged_files_are_refused);
    tcase_add_test(tc, failed_write_keeps_the_previous_and_stale_files_go);
    tcase_add_test(tc, disk_refusing_the_write_keeps_the_previous);
    tcase_add_test(tc, plates_and_version_1);
    tcase_add_test(tc, file_of_another_worker_is_refused);
    tcase_add_test(tc, only_the_writers_names_are_checkpoints);
    suite_add_tcase(s, tc);
    return s;
}
