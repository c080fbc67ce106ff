/* check_reasm — the stream reassembler: the shared stream yields exactly the frames and the
 * garbage count of stream.json however it is cut into chunks; false starts, bad BCCs, length
 * lies and truncation are classified and never swallow a good frame; whole frames come out in
 * place; the buffer stays within its bound. */
#include "reasm.h"
#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t nframes;
    uint64_t offsets[1024];
    size_t lens[1024];
    uint8_t cmds[1024];
    uint64_t dropped[VEM_HJ1239_STATUS_COUNT]; /* bytes given up, by class */
    size_t drops[VEM_HJ1239_STATUS_COUNT];     /* events, by class */
    size_t copied, in_place;
    size_t max_buffered;
} s_result_t;

static void s_drain(vem_reasm_t *ra, s_result_t *r, const uint8_t *chunk, size_t clen)
{
    vem_reasm_event_t ev;
    while (vem_reasm_next(ra, &ev) != VEM_REASM_NEED_MORE) {
        if (vem_reasm_buffered(ra) > r->max_buffered)
            r->max_buffered = vem_reasm_buffered(ra);
        if (ev.kind == VEM_REASM_FRAME) {
            ck_assert_uint_lt(r->nframes, 1024);
            ck_assert(ev.data[0] == '#' && ev.data[1] == '#');
            r->offsets[r->nframes] = ev.offset;
            r->lens[r->nframes] = ev.len;
            r->cmds[r->nframes] = ev.data[2];
            r->nframes++;
            if (ev.copied) {
                r->copied++;
            } else {
                r->in_place++;
                ck_assert(chunk && ev.data >= chunk && ev.data + ev.len <= chunk + clen);
            }
        } else {
            ck_assert_uint_ge(ev.skipped, 1);
            ck_assert_uint_ge(ev.len, 1);
            r->dropped[ev.error] += ev.skipped;
            r->drops[ev.error]++;
        }
    }
}

/* Feeds buf cut at the given chunk sizes (cycled), then ends the stream. */
static void s_run(const uint8_t *buf, size_t len, const size_t *cuts, size_t ncuts, size_t max,
                  s_result_t *r)
{
    memset(r, 0, sizeof *r);
    vem_reasm_t *ra = vem_reasm_new(max);
    ck_assert_ptr_nonnull(ra);
    size_t off = 0, k = 0;
    while (off < len) {
        size_t n = cuts[k++ % ncuts];
        if (n > len - off)
            n = len - off;
        /* a private copy, so in-place frames must point into this chunk */
        uint8_t *chunk = malloc(n ? n : 1);
        memcpy(chunk, buf + off, n);
        vem_reasm_feed(ra, chunk, n);
        s_drain(ra, r, chunk, n);
        free(chunk);
        off += n;
    }
    vem_reasm_end(ra);
    s_drain(ra, r, NULL, 0);
    ck_assert_uint_le(r->max_buffered, vem_reasm_max_frame(ra));
    vem_reasm_destroy(&ra);
    ck_assert_ptr_null(ra);
}

static uint64_t s_total_dropped(const s_result_t *r)
{
    uint64_t t = 0;
    for (int i = 0; i < VEM_HJ1239_STATUS_COUNT; i++)
        t += r->dropped[i];
    return t;
}

static void s_same_frames(const s_result_t *a, const s_result_t *b)
{
    ck_assert_uint_eq(a->nframes, b->nframes);
    for (size_t i = 0; i < a->nframes; i++) {
        ck_assert_uint_eq(a->offsets[i], b->offsets[i]);
        ck_assert_uint_eq(a->lens[i], b->lens[i]);
    }
    ck_assert_uint_eq(s_total_dropped(a), s_total_dropped(b));
}

static uint8_t *s_stream;
static size_t s_stream_len;
static json_t *s_expect;

static void s_setup(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/hj1239/stream.bin", vem_test_vectors_dir());
    s_stream = vem_test_slurp(path, &s_stream_len);
    ck_assert_msg(s_stream != NULL, "cannot read %s", path);
    snprintf(path, sizeof path, "%s/hj1239/stream.json", vem_test_vectors_dir());
    json_error_t jerr;
    s_expect = json_load_file(path, 0, &jerr);
    ck_assert_msg(s_expect != NULL, "%s: %s", path, jerr.text);
}

static void s_teardown(void)
{
    free(s_stream);
    json_decref(s_expect);
}

static void s_check_expected(const s_result_t *r)
{
    json_t *cmds = json_object_get(s_expect, "cmds");
    ck_assert_uint_eq(r->nframes, (size_t)json_integer_value(json_object_get(s_expect, "frames")));
    ck_assert_uint_eq(r->nframes, json_array_size(cmds));
    for (size_t i = 0; i < r->nframes; i++)
        ck_assert_str_eq(vem_hj1239_cmd_name(r->cmds[i]),
                         json_string_value(json_array_get(cmds, i)));
    ck_assert_uint_eq(s_total_dropped(r),
                      (uint64_t)json_integer_value(json_object_get(s_expect, "garbage_bytes")));
}

START_TEST(stream_whole)
{
    size_t cut = s_stream_len;
    s_result_t r;
    s_run(s_stream, s_stream_len, &cut, 1, 0, &r);
    s_check_expected(&r);
    ck_assert_uint_eq(r.in_place, r.nframes); /* one chunk: every frame in place */
    ck_assert_uint_eq(r.copied, 0);
    /* the garbage is "\0\x17" then a false start "##garbage" */
    ck_assert_uint_eq(r.drops[VEM_HJ1239_UNKNOWN_COMMAND], 1);
    ck_assert_uint_eq(r.dropped[VEM_HJ1239_BAD_START] + r.dropped[VEM_HJ1239_UNKNOWN_COMMAND], 11);
    /* every frame decodes */
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    for (size_t i = 0; i < r.nframes; i++)
        ck_assert_int_eq(
            vem_hj1239_decode(s_stream + r.offsets[i], r.lens[i], VEM_HJ1239_TRUSTED_BCC, f, NULL),
            VEM_HJ1239_OK);
    free(f);
}
END_TEST

START_TEST(stream_every_split)
{
    size_t whole = s_stream_len;
    s_result_t ref, r;
    s_run(s_stream, s_stream_len, &whole, 1, 0, &ref);
    for (size_t at = 0; at <= s_stream_len; at++) {
        size_t cuts[2] = {at, s_stream_len - at};
        s_run(s_stream, s_stream_len, cuts, 2, 0, &r);
        s_check_expected(&r);
        s_same_frames(&ref, &r);
    }
}
END_TEST

START_TEST(stream_small_chunks)
{
    size_t whole = s_stream_len;
    s_result_t ref, r;
    s_run(s_stream, s_stream_len, &whole, 1, 0, &ref);
    static const size_t sizes[][4] = {{1}, {2}, {3}, {7}, {24}, {25}, {1, 100, 3, 50}};
    static const size_t nsizes[] = {1, 1, 1, 1, 1, 1, 4};
    for (size_t i = 0; i < sizeof nsizes / sizeof nsizes[0]; i++) {
        s_run(s_stream, s_stream_len, sizes[i], nsizes[i], 0, &r);
        s_check_expected(&r);
        s_same_frames(&ref, &r);
    }
    /* random chunkings, fixed seed */
    srand(1239);
    for (int iter = 0; iter < 300; iter++) {
        size_t cuts[16];
        for (int k = 0; k < 16; k++)
            cuts[k] = (size_t)(rand() % 200);
        cuts[0] += 1;
        s_run(s_stream, s_stream_len, cuts, 16, 0, &r);
        s_check_expected(&r);
        s_same_frames(&ref, &r);
    }
}
END_TEST

/* The logout frame of the vectors (33 bytes). */
static const char s_logout_hex[] =
    "2323044C5A5A5445535456494E303030303030310101000818030511090A00073D";

static size_t s_logout(uint8_t *out)
{
    return (size_t)vem_test_unhex(s_logout_hex, out, 64);
}

/* buf = prefix ++ logout frame; checks one good frame at the right offset. */
static void s_one_good_after(const uint8_t *prefix, size_t plen, vem_hj1239_status_t cls,
                             size_t max)
{
    uint8_t buf[512];
    memcpy(buf, prefix, plen);
    size_t n = plen + s_logout(buf + plen);
    for (size_t at = 0; at <= n; at++) {
        size_t cuts[2] = {at ? at : n, n - at};
        s_result_t r;
        s_run(buf, n, cuts, at ? 2 : 1, max, &r);
        ck_assert_uint_eq(r.nframes, 1);
        ck_assert_uint_eq(r.offsets[0], plen);
        ck_assert_uint_eq(r.cmds[0], 0x04);
        ck_assert_uint_eq(s_total_dropped(&r), plen);
        if (cls != VEM_HJ1239_OK)
            ck_assert_uint_ge(r.drops[cls], 1);
    }
}

START_TEST(false_starts)
{
    s_one_good_after((const uint8_t *)"xyz", 3, VEM_HJ1239_BAD_START, 0);
    s_one_good_after((const uint8_t *)"#", 1, VEM_HJ1239_UNKNOWN_COMMAND, 0); /* "###" */
    s_one_good_after((const uint8_t *)"#x#", 3, VEM_HJ1239_BAD_START, 0);
    s_one_good_after((const uint8_t *)"##", 2, VEM_HJ1239_UNKNOWN_COMMAND, 0);
    s_one_good_after((const uint8_t *)"###", 3, VEM_HJ1239_UNKNOWN_COMMAND, 0);
    s_one_good_after((const uint8_t *)"##\x09junk", 7, VEM_HJ1239_UNKNOWN_COMMAND, 0);
    /* a header that announces more than the bound */
    uint8_t big[24];
    memcpy(big, "##\x02LZZTESTVIN0000001\x01\x01\xFF\xF0", 24);
    s_one_good_after(big, 24, VEM_HJ1239_BAD_LENGTH, 0);
    /* a candidate that swallows the good frame: its announced length covers it, and its BCC is
     * wrong; the good frame is found by resuming one byte after the candidate's start */
    uint8_t liar[24];
    memcpy(liar, "##\x04LZZTESTVIN0000001\x01\x01\x00\x20", 24);
    s_one_good_after(liar, 24, VEM_HJ1239_BAD_CHECKSUM, 0);
}
END_TEST

START_TEST(hash_inside_frame)
{
    /* a login whose ICCID holds "##" and a frame header: one frame, no split */
    uint8_t frame[64] = "##\x01LZZTESTVIN0000001\x01\x01\x00\x1c"
                        "\x18\x03\x05\x08\x09\x0a\x00\x01"
                        "##\x04LZZTESTVIN0000";
    size_t n = 24 + 28;
    uint8_t x = 0;
    for (size_t i = 2; i < n; i++)
        x ^= frame[i];
    frame[n++] = x;
    uint8_t buf[256];
    memcpy(buf, frame, n);
    size_t m = n + s_logout(buf + n);
    for (size_t at = 0; at <= m; at++) {
        size_t cuts[2] = {at ? at : m, m - at};
        s_result_t r;
        s_run(buf, m, cuts, at ? 2 : 1, 0, &r);
        ck_assert_uint_eq(r.nframes, 2);
        ck_assert_uint_eq(r.offsets[0], 0);
        ck_assert_uint_eq(r.offsets[1], n);
        ck_assert_uint_eq(s_total_dropped(&r), 0);
    }
}
END_TEST

START_TEST(bad_bcc_then_good)
{
    uint8_t buf[128];
    size_t n = s_logout(buf);
    buf[n - 1] ^= 0xFF; /* bad BCC */
    size_t m = n + s_logout(buf + n);
    s_result_t r;
    size_t whole = m;
    s_run(buf, m, &whole, 1, 0, &r);
    ck_assert_uint_eq(r.nframes, 1);
    ck_assert_uint_eq(r.offsets[0], n);
    ck_assert_uint_eq(r.drops[VEM_HJ1239_BAD_CHECKSUM], 1);
    ck_assert_uint_eq(s_total_dropped(&r), n);
}
END_TEST

START_TEST(truncated_at_end)
{
    uint8_t buf[128];
    size_t n = s_logout(buf);
    size_t m = n + s_logout(buf + n) - 5; /* second frame cut short */
    for (size_t at = 0; at <= m; at++) {
        size_t cuts[2] = {at ? at : m, m - at};
        s_result_t r;
        s_run(buf, m, cuts, at ? 2 : 1, 0, &r);
        ck_assert_uint_eq(r.nframes, 1);
        ck_assert_uint_eq(r.drops[VEM_HJ1239_TRUNCATED], 1);
        ck_assert_uint_eq(r.dropped[VEM_HJ1239_TRUNCATED], m - n);
    }
}
END_TEST

START_TEST(platform_header_and_bound)
{
    /* the platform login of the vectors, 53 bytes, through a reassembler bounded at 53 */
    static const char hex[] = "232301FE4C5A5A5445535456494E3030303030303101001C18030508090A00013839"
                              "383630303030303030303030303030303031C2";
    uint8_t buf[128];
    size_t n = (size_t)vem_test_unhex(hex, buf, sizeof buf);
    size_t m = n + s_logout(buf + n);
    size_t one = 1;
    s_result_t r;
    s_run(buf, m, &one, 1, 53, &r);
    ck_assert_uint_eq(r.nframes, 2);
    ck_assert_uint_eq(r.copied, 2);
    s_run(buf, m, &one, 1, 52, &r); /* the login no longer fits the bound */
    ck_assert_uint_eq(r.nframes, 1);
    ck_assert_uint_eq(r.offsets[0], n);
    ck_assert_uint_ge(r.drops[VEM_HJ1239_BAD_LENGTH], 1);
    ck_assert_uint_le(r.max_buffered, 52);
}
END_TEST

/* Random garbage mixed with good frames: whatever the chunking, the same frames, and every
 * good frame inserted is found (garbage contains no '#', so it cannot hide one). */
START_TEST(random_mix)
{
    static uint8_t buf[1 << 16];
    uint8_t frame[64];
    size_t flen = s_logout(frame);
    srand(32960);
    for (int iter = 0; iter < 50; iter++) {
        size_t n = 0, inserted = 0;
        while (n + 200 < sizeof buf / 4) {
            if (rand() % 3 == 0) {
                memcpy(buf + n, frame, flen);
                n += flen;
                inserted++;
            } else {
                size_t g = (size_t)(rand() % 40);
                for (size_t k = 0; k < g; k++) {
                    uint8_t c = (uint8_t)rand();
                    buf[n++] = c == '#' ? 0 : c;
                }
            }
        }
        s_result_t ref, r;
        size_t whole = n;
        s_run(buf, n, &whole, 1, 0, &ref);
        ck_assert_uint_eq(ref.nframes, inserted);
        size_t cuts[3] = {(size_t)(1 + rand() % 64), (size_t)(1 + rand() % 5),
                          (size_t)(1 + rand() % 300)};
        s_run(buf, n, cuts, 3, 0, &r);
        s_same_frames(&ref, &r);
        ck_assert_uint_eq(s_total_dropped(&r) + inserted * flen, n);
    }
}
END_TEST

Suite *vem_suite_reasm(void);
Suite *vem_suite_reasm(void)
{
    Suite *s = suite_create("reasm");
    TCase *tc = tcase_create("reasm");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, stream_whole);
    tcase_add_test(tc, stream_every_split);
    tcase_add_test(tc, stream_small_chunks);
    tcase_add_test(tc, false_starts);
    tcase_add_test(tc, hash_inside_frame);
    tcase_add_test(tc, bad_bcc_then_good);
    tcase_add_test(tc, truncated_at_end);
    tcase_add_test(tc, platform_header_and_bound);
    tcase_add_test(tc, random_mix);
    suite_add_tcase(s, tc);
    return s;
}
