/* check_rejects — runs of rejected bytes and the per-connection budget (daemon/rejects.c),
 * driven by the real reassembler the way ingest drives them: a run is taken at a frame, at the
 * end of a chunk, when the next bytes would not fit, and when the budget is spent (the
 * connection is then closed: nothing more is fed).
 *
 * Expected values are worked by hand from HJ 1239's frame checks:
 *  - `23 23 08 FD` repeated (the pattern): at every multiple of 4 a candidate `##`,
 *    command 0x08 (known), announced length 0x08FD = 2301, so 2326 bytes in all, within a
 *    max_frame of 4096. Its BCC is the XOR of bytes 2..2324: residues 2, 3, 0 occur 581 times
 *    (0x08, 0xFD, 0x23 each once in the XOR) and residue 1 580 times (cancels): 0x08 ^ 0xFD ^
 *    0x23 = 0xD6, while byte 2325 (residue 1) is 0x23: bad_checksum, and the candidate gives up
 *    its first byte. The next three bytes `23 08 FD` start no frame: bad_start, given up
 *    whole. So every 4 bytes are 2 events, 4 bytes given up, none kept twice.
 *  - A minimal frame is `##`, a command, 17 VIN bytes, software version, encryption, length 0
 *    and the BCC (XOR of bytes 2..23): 25 bytes. */
#include "rejects.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    vem_rejects_run_t runs[32];
    uint8_t first[32]; /* each run's first byte */
    size_t nruns, frames;
    size_t fed; /* bytes fed before the budget closed the connection */
} s_out_t;

static void s_take(vem_rejects_t *rj, s_out_t *out)
{
    vem_rejects_run_t run;
    if (vem_rejects_take(rj, &run)) {
        ck_assert_uint_lt(out->nruns, 32);
        out->first[out->nruns] = run.len ? run.data[0] : 0;
        out->runs[out->nruns++] = run;
    }
}

/* Feeds data in chunks of chunk bytes, as ingest does, until the budget is spent. */
static void s_drive(const vem_rejects_budget_t *b, const uint8_t *data, size_t len, size_t chunk,
                    s_out_t *out)
{
    memset(out, 0, sizeof *out);
    vem_reasm_t *ra = vem_reasm_new(b->run_max);
    vem_rejects_t *rj = vem_rejects_new(b);
    ck_assert(ra && rj);
    for (size_t off = 0; off < len && !vem_rejects_spent(rj); off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        vem_reasm_feed(ra, data + off, n);
        vem_rejects_received(rj, n);
        out->fed += n;
        vem_reasm_event_t ev;
        while (!vem_rejects_spent(rj)) {
            vem_reasm_kind_t k = vem_reasm_next(ra, &ev);
            if (k == VEM_REASM_NEED_MORE) {
                s_take(rj, out);
                break;
            }
            if (k == VEM_REASM_FRAME) {
                s_take(rj, out);
                out->frames++;
                continue;
            }
            if (vem_rejects_must_take(rj, &ev))
                s_take(rj, out);
            vem_rejects_add(rj, &ev);
        }
        if (vem_rejects_spent(rj))
            s_take(rj, out);  /* its last run, then the close */
        vem_rejects_trim(rj); /* as ingest does after each complete drain */
    }
    vem_rejects_destroy(&rj);
    ck_assert_ptr_null(rj);
    vem_reasm_destroy(&ra);
}

START_TEST(pattern_spends_the_share)
{
    enum { S_LEN = 1 << 20 };
    uint8_t *p = malloc(S_LEN);
    ck_assert_ptr_nonnull(p);
    static const uint8_t four[] = {0x23, 0x23, 0x08, 0xFD};
    for (size_t i = 0; i < S_LEN; i++)
        p[i] = four[i % 4];
    vem_rejects_budget_t b = {
        .run_max = 4096, .max_bytes = 16384, .max_records = 16, .share_pct = 50};
    s_out_t out;
    s_drive(&b, p, S_LEN, 8192, &out);
    /* 4096 bytes fill the first run (1024 candidates + 1024 garbage runs); the 4097th byte
     * given up is over 50 % of the 8192 received: the budget is spent in the first chunk */
    ck_assert_uint_eq(out.fed, 8192);
    ck_assert_uint_eq(out.frames, 0);
    ck_assert_uint_eq(out.nruns, 2);
    ck_assert_uint_eq(out.runs[0].offset, 0);
    ck_assert_uint_eq(out.runs[0].given_up, 4096);
    ck_assert_uint_eq(out.runs[0].len, 4096);
    ck_assert_uint_eq(out.runs[0].drops, 2048);
    ck_assert_int_eq(out.runs[0].error, VEM_HJ1239_BAD_CHECKSUM);
    ck_assert_uint_eq(out.first[0], 0x23);
    ck_assert_uint_eq(out.runs[1].offset, 4096);
    ck_assert_uint_eq(out.runs[1].given_up, 1);
    ck_assert_uint_eq(out.runs[1].len, 1);
    ck_assert_int_eq(out.runs[1].error, VEM_HJ1239_BAD_CHECKSUM);
    free(p);
}
END_TEST

/* n times: a minimal frame (25 bytes), then the 8 garbage bytes 01..08. */
static size_t s_frames_and_garbage(uint8_t *out, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        uint8_t *f = out + len;
        f[0] = f[1] = '#';
        f[2] = 0x01;
        memcpy(f + 3, "LHSTRJ00000000001", 17); /* bytes 3..19 */
        f[20] = 0x01; /* software version; 21 encryption (none), 22..23 the length: 0 */
        f[21] = 0x01;
        f[22] = f[23] = 0;
        uint8_t bcc = 0;
        for (int k = 2; k < 24; k++)
            bcc ^= f[k];
        f[24] = bcc;
        len += 25;
        for (uint8_t g = 1; g <= 8; g++)
            out[len++] = g;
    }
    return len;
}

START_TEST(garbage_between_frames_spends_the_records)
{
    uint8_t s[33 * 10];
    size_t len = s_frames_and_garbage(s, 10);
    /* 8 of every 33 bytes rejected (24 %): the share is never passed */
    vem_rejects_budget_t b = {
        .run_max = 4096, .max_bytes = 16384, .max_records = 3, .share_pct = 50};
    s_out_t out;
    s_drive(&b, s, len, len, &out);
    /* frame, run, frame (run 1 taken), run, frame (2), run, frame (3: spent) */
    ck_assert_uint_eq(out.frames, 4);
    ck_assert_uint_eq(out.nruns, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_uint_eq(out.runs[i].offset, 25 + 33 * i);
        ck_assert_uint_eq(out.runs[i].given_up, 8);
        ck_assert_uint_eq(out.runs[i].len, 8);
        ck_assert_uint_eq(out.runs[i].drops, 1);
        ck_assert_int_eq(out.runs[i].error, VEM_HJ1239_BAD_START);
        ck_assert_uint_eq(out.first[i], 0x01);
    }
}
END_TEST

START_TEST(byte_budget_cuts_a_run)
{
    uint8_t s[33 * 10];
    size_t len = s_frames_and_garbage(s, 10);
    vem_rejects_budget_t b = {
        .run_max = 4096, .max_bytes = 12, .max_records = 100, .share_pct = 50};
    s_out_t out;
    s_drive(&b, s, len, len, &out);
    /* run 1 keeps 8 bytes, run 2 the 4 left of the 12: cut, spent */
    ck_assert_uint_eq(out.frames, 3);
    ck_assert_uint_eq(out.nruns, 2);
    ck_assert_uint_eq(out.runs[0].len, 8);
    ck_assert_uint_eq(out.runs[1].given_up, 8);
    ck_assert_uint_eq(out.runs[1].len, 4);
}
END_TEST

START_TEST(runs_end_at_chunk_edges)
{
    /* 100 garbage bytes (no '#') fed 10 at a time: a run per chunk, each whole */
    uint8_t g[100];
    for (int i = 0; i < 100; i++)
        g[i] = (uint8_t)(0x30 + i % 10);
    vem_rejects_budget_t b = {
        .run_max = 4096, .max_bytes = 16384, .max_records = 100, .share_pct = 100};
    s_out_t out;
    s_drive(&b, g, sizeof g, 10, &out);
    ck_assert_uint_eq(out.nruns, 10);
    for (size_t i = 0; i < 10; i++) {
        ck_assert_uint_eq(out.runs[i].offset, 10 * i);
        ck_assert_uint_eq(out.runs[i].len, 10);
        ck_assert_int_eq(out.runs[i].error, VEM_HJ1239_BAD_START);
    }
}
END_TEST

Suite *vem_suite_rejects(void);
Suite *vem_suite_rejects(void)
{
    Suite *s = suite_create("rejects");
    TCase *tc = tcase_create("runs");
    tcase_add_test(tc, pattern_spends_the_share);
    tcase_add_test(tc, garbage_between_frames_spends_the_records);
    tcase_add_test(tc, byte_budget_cuts_a_run);
    tcase_add_test(tc, runs_end_at_chunk_edges);
    suite_add_tcase(s, tc);
    return s;
}
