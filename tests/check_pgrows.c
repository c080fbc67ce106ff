/* check_pgrows — binary COPY rows and worker -> sink messages.
 *
 * Byte expectations are worked from PostgreSQL's documented binary format (int16 column count;
 * int32 length, -1 for NULL; big-endian values; timestamptz as microseconds since 2000-01-01
 * UTC, which is Unix second 946684800) and from the shared vectors' expected decodes. */
#include "pgrows.h"
#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t s_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t s_be64(const uint8_t *p)
{
    return (uint64_t)s_be32(p) << 32 | s_be32(p + 4);
}

/* Decodes the named vector into f. */
static void s_vector(const char *name, vem_hj1239_frame_t *f)
{
    char path[512];
    snprintf(path, sizeof path, "%s/hj1239/vectors.jsonl", vem_test_vectors_dir());
    FILE *in = fopen(path, "r");
    ck_assert_ptr_nonnull(in);
    json_error_t err;
    json_t *v;
    bool found = false;
    while (!found && (v = json_loadf(in, JSON_DISABLE_EOF_CHECK, &err))) {
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0) {
            uint8_t frame[4096];
            long len =
                vem_test_unhex(json_string_value(json_object_get(v, "hex")), frame, sizeof frame);
            ck_assert_int_gt(len, 0);
            ck_assert_int_eq(vem_hj1239_decode(frame, (size_t)len, 0, f, NULL), VEM_HJ1239_OK);
            found = true;
        }
        json_decref(v);
    }
    fclose(in);
    ck_assert_msg(found, "vector %s", name);
}

START_TEST(beijing_day_boundaries)
{
    /* 2024-01-01 is day 19723 after 1970-01-01; 2024-03-05 is 31 + 29 + 4 days later. */
    ck_assert_int_eq(vem_pg_beijing_day(1709597350), 19787); /* 2024-03-05 08:09:10 +08 */
    /* 2024-03-04 23:30 UTC is already 07:30 on the 5th in Beijing */
    ck_assert_int_eq(vem_pg_beijing_day(1709595000), 19787);
    /* 2024-03-04 15:59:59 UTC is 23:59:59 on the 4th in Beijing; a second later the 5th */
    ck_assert_int_eq(vem_pg_beijing_day(1709567999), 19786);
    ck_assert_int_eq(vem_pg_beijing_day(1709568000), 19787);
    /* before 1970 in Beijing: 1969-12-31 15:00 UTC is 23:00 on the 31st, day -1 */
    ck_assert_int_eq(vem_pg_beijing_day(-32400), -1);
}
END_TEST

/* The login vector as a terminal_events row, byte by byte. */
START_TEST(login_row_bytes)
{
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    s_vector("login", f);
    vem_pgrows_t r = {0};
    int64_t received_us = INT64_C(1709597351) * 1000000 + 250000;
    ck_assert_uint_eq(vem_pgrows_frame(&r, f, received_us), 1);
    ck_assert_uint_eq(r.nrows[VEM_PG_EVENTS], 1);
    ck_assert_uint_eq(r.ndays, 1);
    ck_assert_int_eq(r.days[0], 19787);
    const uint8_t *p = r.rows[VEM_PG_EVENTS].data;
    ck_assert_uint_eq((unsigned)(p[0] << 8 | p[1]), 12); /* columns */
    p += 2;
    ck_assert_uint_eq(s_be32(p), 17); /* vin */
    ck_assert_int_eq(memcmp(p + 4, "LZZTESTVIN0000001", 17), 0);
    p += 4 + 17;
    ck_assert_uint_eq(s_be32(p), 8); /* event_time: 2024-03-05T08:09:10+08:00 */
    ck_assert_uint_eq(s_be64(p + 4), (uint64_t)(1709597350 - 946684800) * 1000000);
    p += 12;
    ck_assert_uint_eq(s_be32(p), 5); /* cmd */
    ck_assert_int_eq(memcmp(p + 4, "login", 5), 0);
    p += 9;
    ck_assert_uint_eq(s_be32(p), 4); /* seq 1 */
    ck_assert_uint_eq(s_be32(p + 4), 1);
    p += 8;
    ck_assert_uint_eq(s_be32(p), 8); /* received_at */
    ck_assert_uint_eq(s_be64(p + 4), (uint64_t)(1709597351 - 946684800) * 1000000 + 250000);
    p += 12;
    ck_assert_uint_eq(s_be32(p), 20); /* iccid */
    ck_assert_int_eq(memcmp(p + 4, "89860000000000000001", 20), 0);
    p += 24;
    for (int i = 0; i < 6; i++, p += 4) /* pos_valid lon lat chip_id pubkey act_vin: NULL */
        ck_assert_uint_eq(s_be32(p), 0xFFFFFFFFu);
    ck_assert_uint_eq((size_t)(p - r.rows[VEM_PG_EVENTS].data), r.rows[VEM_PG_EVENTS].len);
    vem_pgrows_free(&r);
    free(f);
}
END_TEST

/* Rows per vector, from the blocks its expected decode lists. */
START_TEST(rows_per_frame)
{
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t r = {0};
    /* obd + stream + supplementary: the supplementary fields join the stream sample's row */
    s_vector("realtime_gb17691", f);
    ck_assert_uint_eq(vem_pgrows_frame(&r, f, 0), 2);
    ck_assert_uint_eq(r.nrows[VEM_PG_INFO], 1);
    ck_assert_uint_eq(r.nrows[VEM_PG_SAMPLES], 1);
    vem_pgrows_reset(&r);
    s_vector("realtime_hj1239", f); /* three stream samples */
    ck_assert_uint_eq(vem_pgrows_frame(&r, f, 0), 3);
    ck_assert_uint_eq(r.nrows[VEM_PG_SAMPLES], 3);
    ck_assert_uint_eq(r.ndays, 1);
    vem_pgrows_reset(&r);
    s_vector("time_sync", f);
    ck_assert_uint_eq(vem_pgrows_frame(&r, f, 0), 0);
    ck_assert_uint_eq(r.rows[VEM_PG_EVENTS].len + r.rows[VEM_PG_SAMPLES].len, 0);
    s_vector("removal_alarm", f);
    ck_assert_uint_eq(vem_pgrows_frame(&r, f, 0), 1);
    ck_assert_uint_eq(r.nrows[VEM_PG_EVENTS], 1);
    vem_pgrows_free(&r);
    free(f);
}
END_TEST

START_TEST(quarantine_row_keeps_bytes)
{
    vem_pgrows_t r = {0};
    const uint8_t raw[] = {0x00, 0x23, 0xFF};
    vem_pgrows_quarantine(&r, INT64_C(946684800) * 1000000, 42, "terminal", "bad_start",
                          "bad\xFFtext", 7, NULL, raw, sizeof raw);
    const uint8_t *p = r.rows[VEM_PG_QUARANTINE].data;
    ck_assert_uint_eq((unsigned)(p[0] << 8 | p[1]), 8);
    p += 2;
    ck_assert_uint_eq(s_be32(p), 8); /* received_at: the PostgreSQL epoch itself */
    ck_assert_uint_eq(s_be64(p + 4), 0);
    p += 12;
    ck_assert_uint_eq(s_be64(p + 4), 42); /* spool_seq */
    p += 12;
    p += 4 + 8;                      /* source */
    p += 4 + 9;                      /* error_class */
    ck_assert_uint_eq(s_be32(p), 8); /* detail: the non-ASCII byte made '?' */
    ck_assert_int_eq(memcmp(p + 4, "bad?text", 8), 0);
    p += 12;
    ck_assert_uint_eq(s_be32(p + 4), 7); /* error_offset */
    p += 8;
    ck_assert_uint_eq(s_be32(p), 0xFFFFFFFFu); /* vin unknown */
    p += 4;
    ck_assert_uint_eq(s_be32(p), 3);
    ck_assert_int_eq(memcmp(p + 4, raw, 3), 0);
    ck_assert_int_eq(r.days[0], 10957); /* 2000-01-01 is 10957 days after 1970-01-01 */
    vem_pgrows_free(&r);
}
END_TEST

/* The detail is kept whole (it used to be cut at 72 bytes), up to VEM_PGROWS_TEXT_MAX. */
START_TEST(quarantine_detail_kept_whole)
{
    static char detail[VEM_PGROWS_TEXT_MAX + 200];
    for (size_t i = 0; i < sizeof detail - 1; i++)
        detail[i] = (char)('a' + i % 26);
    const size_t lens[] = {73, 700, VEM_PGROWS_TEXT_MAX, VEM_PGROWS_TEXT_MAX + 199};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        detail[lens[k]] = '\0';
        vem_pgrows_t r = {0};
        vem_pgrows_quarantine(&r, 0, 1, "terminal", "malformed_body", detail, -1, NULL,
                              (const uint8_t *)"x", 1);
        const uint8_t *p = r.rows[VEM_PG_QUARANTINE].data + 2 + 12 + 12 + 4 + 8 + 4 + 14;
        size_t want = lens[k] < VEM_PGROWS_TEXT_MAX ? lens[k] : VEM_PGROWS_TEXT_MAX;
        ck_assert_uint_eq(s_be32(p), want);
        ck_assert_int_eq(memcmp(p + 4, detail, want), 0);
        vem_pgrows_free(&r);
        detail[lens[k]] = (char)('a' + lens[k] % 26);
    }
}
END_TEST

/* Regression: a stream block and four supplementary blocks of the same instant, every value a
 * marker, made the sample row's invalid[] list overflow its stack array (each aux block added
 * its names again). A terminal could send it; the row must name each field once. */
START_TEST(many_aux_blocks_of_markers)
{
    vem_hj1239_frame_t *f = malloc(sizeof *f), *g = malloc(sizeof *g);
    s_vector("realtime_gb17691", f);
    vem_hj1239_block_t base = f->blocks[0];
    for (unsigned i = 0; i < f->nblocks; i++)
        if (f->blocks[i].type == VEM_HJ1239_BLOCK_STREAM)
            base = f->blocks[i];
    for (unsigned k = 0; k < VEM_HJ1239_F_COUNT; k++)
        base.raw[k] = 0xFFFFFFFFu;
    f->nblocks = f->nobd = f->ndtcs = 0;
    f->blocks[f->nblocks++] = base;
    for (int i = 0; i < 4; i++) {
        vem_hj1239_block_t c = base;
        c.type = VEM_HJ1239_BLOCK_SUPPLEMENTARY;
        f->blocks[f->nblocks++] = c;
    }
    uint8_t buf[8192];
    size_t len;
    ck_assert_int_eq(vem_hj1239_encode(f, buf, sizeof buf, &len), 0);
    vem_hj1239_error_t err;
    ck_assert_int_eq(vem_hj1239_decode(buf, len, 0, g, &err), VEM_HJ1239_OK);
    vem_pgrows_t r = {0};
    ck_assert_uint_eq(vem_pgrows_frame(&r, g, 1709597351000000LL), 1); /* one joined sample */
    /* the row's text arrays: every field name appears at most once in the whole row */
    const vem_buf_t *b = &r.rows[VEM_PG_SAMPLES];
    const char *names[] = {"speed_kmh", "nox_down_ppm", "pedal_pct", "urea_tank_c"};
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        size_t hits = 0, nl = strlen(names[n]);
        for (size_t o = 0; o + nl <= b->len; o++)
            hits += memcmp(b->data + o, names[n], nl) == 0;
        ck_assert_msg(hits == 1, "%s named %zu times", names[n], hits);
    }
    vem_pgrows_free(&r);
    free(f);
    free(g);
}
END_TEST

/* Regression: an empty, never-allocated buffer took a zero-length put through memcpy with a
 * null destination, which UBSan aborts on (vemd died on its first batch when sanitized). */
START_TEST(empty_put_on_empty_buffer)
{
    vem_buf_t b = {0};
    vem_buf_put(&b, NULL, 0);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    vem_buf_put(&b, "ab", 2);
    vem_buf_put(&b, NULL, 0);
    ck_assert_uint_eq(b.len, 2);
    vem_buf_free(&b);
}
END_TEST

Suite *vem_suite_pgrows(void);
Suite *vem_suite_pgrows(void)
{
    Suite *s = suite_create("pgrows");
    TCase *tc = tcase_create("pgrows");
    tcase_add_test(tc, beijing_day_boundaries);
    tcase_add_test(tc, login_row_bytes);
    tcase_add_test(tc, rows_per_frame);
    tcase_add_test(tc, quarantine_row_keeps_bytes);
    tcase_add_test(tc, quarantine_detail_kept_whole);
    tcase_add_test(tc, empty_put_on_empty_buffer);
    tcase_add_test(tc, many_aux_blocks_of_markers);
    suite_add_tcase(s, tc);
    return s;
}
