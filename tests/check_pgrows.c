/* check_pgrows — binary COPY rows and worker -> sink messages.
 *
 * Byte expectations are worked from PostgreSQL's documented binary format (int16 column count;
 * int32 length, -1 for NULL; big-endian values; timestamptz as microseconds since 2000-01-01
 * UTC, which is Unix second 946684800) and from the shared vectors' expected decodes. */
#include "pgrows.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
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

/* The login vector as a terminal_events row, byte by byte. */
START_TEST(login_row_bytes)
{
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_test_vector_frame("login", f);
    vem_pgrows_t r = {0};
    int64_t received_us = INT64_C(1709597351) * 1000000 + 250000;
    ck_assert_uint_eq(vem_pgrows_frame(&r, f, received_us), 1);
    ck_assert_uint_eq(r.nrows[VEM_PGROWS_EVENTS], 1);
    ck_assert_uint_eq(r.ndays, 1);
    ck_assert_int_eq(r.days[0], 19787);
    const uint8_t *p = r.rows[VEM_PGROWS_EVENTS].data;
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
    ck_assert_uint_eq((size_t)(p - r.rows[VEM_PGROWS_EVENTS].data), r.rows[VEM_PGROWS_EVENTS].len);
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
    vem_test_vector_frame("realtime_gb17691", f);
    ck_assert_uint_eq(vem_pgrows_frame(&r, f, 0), 2);
    ck_assert_uint_eq(r.nrows[VEM_PGROWS_INFO], 1);
    ck_assert_uint_eq(r.nrows[VEM_PGROWS_SAMPLES], 1);
    ck_assert_uint_eq(r.samples, 1);
    vem_pgrows_reset(&r);
    vem_test_vector_frame("realtime_hj1239", f); /* three stream samples: one frame row */
    ck_assert_uint_eq(vem_pgrows_frame(&r, f, 0), 1);
    ck_assert_uint_eq(r.nrows[VEM_PGROWS_SAMPLES], 1);
    ck_assert_uint_eq(r.samples, 3);
    ck_assert_uint_eq(r.ndays, 1);
    vem_pgrows_reset(&r);
    vem_test_vector_frame("time_sync", f);
    ck_assert_uint_eq(vem_pgrows_frame(&r, f, 0), 0);
    ck_assert_uint_eq(r.rows[VEM_PGROWS_EVENTS].len + r.rows[VEM_PGROWS_SAMPLES].len, 0);
    vem_test_vector_frame("removal_alarm", f);
    ck_assert_uint_eq(vem_pgrows_frame(&r, f, 0), 1);
    ck_assert_uint_eq(r.nrows[VEM_PGROWS_EVENTS], 1);
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
    const uint8_t *p = r.rows[VEM_PGROWS_QUARANTINE].data;
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
        const uint8_t *p = r.rows[VEM_PGROWS_QUARANTINE].data + 2 + 12 + 12 + 4 + 8 + 4 + 14;
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
    vem_test_vector_frame("realtime_gb17691", f);
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
    const vem_pgrows_buf_t *b = &r.rows[VEM_PGROWS_SAMPLES];
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

/* Skips n columns of a COPY row at *p. */
static void s_skip_cols(const uint8_t **p, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint32_t len = s_be32(*p);
        *p += 4 + (len == 0xFFFFFFFFu ? 0 : len);
    }
}

/* The HJ 1239 real-time vector as one obd_frames row: its head, and the packed records of its
 * three samples at the offsets schema/0012_frames_packed.sql reads (raw values from the
 * vector's bytes: speed 0x3E80 = 62.5 km/h x 256, baro 0xC9 = 100.5 / 0.5, lon 118796877).
 * The samples are regular (08:09:10, 11, 12 in blocks 0, 1, 2 of a frame of 08:09:13 with
 * serial 3), so no meta; their longitudes (118.796877, 0, -70.123456) lie too far apart for
 * 16-bit differences, so pos holds them whole. */
START_TEST(frame_row_bytes)
{
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_test_vector_frame("realtime_hj1239", f);
    vem_pgrows_t r = {0};
    ck_assert_uint_eq(vem_pgrows_frame(&r, f, INT64_C(1709597354) * 1000000), 1);
    const uint8_t *p = r.rows[VEM_PGROWS_SAMPLES].data;
    ck_assert_uint_eq((unsigned)(p[0] << 8 | p[1]), 13);
    p += 2;
    ck_assert_uint_eq(s_be32(p), 2); /* nsamples, at VEM_PGROWS_NSAMPLES_AT */
    ck_assert_uint_eq((unsigned)(p[4] << 8 | p[5]), 3);
    ck_assert_ptr_eq(p + 4, r.rows[VEM_PGROWS_SAMPLES].data + VEM_PGROWS_NSAMPLES_AT);
    p += 6;
    /* rec_len: stream blocks only, so the records stop after the stream group: 46 - 14 */
    ck_assert_uint_eq((unsigned)(p[4] << 8 | p[5]), 32);
    p += 6;
    ck_assert_int_eq(memcmp(p + 4, "LZZTESTVIN0000001", 17), 0);
    p += 4 + 17;
    ck_assert_uint_eq(s_be64(p + 4), (uint64_t)(1709597353 - 946684800) * 1000000); /* 08:09:13 */
    s_skip_cols(&p, 2);
    ck_assert_uint_eq(s_be32(p + 4), 3); /* frame_seq */
    p += 8;
    ck_assert_uint_eq(p[4], 0); /* resent */
    ck_assert_uint_eq(p[9], 0); /* wide */
    p += 10;
    ck_assert_uint_eq(s_be32(p), 16 + 3 * 32);
    const uint8_t *head = p + 4;
    ck_assert_uint_eq(s_be32(head), 0);     /* lon0: none, the positions are in pos */
    ck_assert_uint_eq(s_be32(head + 4), 0); /* lat0 */
    ck_assert_uint_eq(s_be32(head + 8), 0); /* odometer0 */
    ck_assert_uint_eq((unsigned)(head[12] << 8 | head[13]), 0xFFFD); /* dt0 -3 s */
    ck_assert_uint_eq(head[14], 0x80);                               /* idx0 0, step 1 s */
    ck_assert_uint_eq(head[15], 0x02);                               /* stream */
    const uint8_t *rec = head + 16;
    ck_assert_uint_eq((unsigned)(rec[0] << 8 | rec[1]), 0x3E80); /* speed */
    ck_assert_uint_eq(rec[2], 0xC9);                             /* baro */
    for (unsigned k = 0; k < 3; k++)
        for (unsigned d = 26; d < 32; d++)
            ck_assert_uint_eq(rec[32 * k + d], 0xFF); /* no differences */
    p += 4 + 16 + 3 * 32;
    ck_assert_uint_eq(s_be32(p), 0xFFFFFFFFu); /* invalid: none in the frame */
    ck_assert_uint_eq(s_be32(p + 4), 0xFFFFFFFFu);
    ck_assert_uint_eq(s_be32(p + 8), 0xFFFFFFFFu); /* meta: regular */
    p += 12;
    ck_assert_uint_eq(s_be32(p), 3 * 12);        /* pos: lon, lat, odometer of each sample */
    ck_assert_uint_eq(s_be32(p + 4), 118796877); /* east */
    ck_assert_uint_eq(s_be32(p + 8), 32060255);  /* north */
    ck_assert_uint_eq(s_be32(p + 12), 1234567);  /* 123456.7 km */
    ck_assert_uint_eq(s_be32(p + 16), 0);        /* lon 0 */
    ck_assert_uint_eq(s_be32(p + 28), UINT32_C(0x80000000) | 70123456); /* west */
    ck_assert_uint_eq(s_be32(p + 32), UINT32_C(0x80000000) | 33987654); /* south */
    ck_assert_uint_eq((size_t)(p + 4 + 36 - r.rows[VEM_PGROWS_SAMPLES].data),
                      r.rows[VEM_PGROWS_SAMPLES].len);
    vem_pgrows_free(&r);
    free(f);
}
END_TEST

/* The sentinels vector: no-value fields are all ones, their names the vector's lists, joined. */
START_TEST(frame_row_markers)
{
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_test_vector_frame("sentinels", f);
    vem_pgrows_t r = {0};
    ck_assert_uint_eq(vem_pgrows_frame(&r, f, INT64_C(1709597354) * 1000000), 1);
    const uint8_t *p = r.rows[VEM_PGROWS_SAMPLES].data + 2;
    s_skip_cols(&p, 8);
    const uint8_t *rec = p + 4 + 16; /* the packed record, after the frame's head */
    ck_assert_uint_eq((unsigned)(rec[0] << 8 | rec[1]), 0xFFFF); /* speed invalid */
    ck_assert_uint_eq(rec[22], 0xFF);                            /* coolant invalid */
    ck_assert_uint_eq(rec[13], 0xFF);                            /* reagent abnormal */
    ck_assert_uint_eq(rec[2], 0xC9);                             /* baro 100.5 */
    s_skip_cols(&p, 1);
    static const char *const want[2] = {"coolant_c,lat,lon,nox_down_ppm,speed_kmh",
                                        "dpf_dp_kpa,reagent_pct,scr_in_c,scr_out_c"};
    for (int a = 0; a < 2; a++) {
        /* text[]: ndim 1, no NULL element, oid 25, one element, lower bound 1 */
        const uint8_t *q = p + 4;
        ck_assert_uint_eq(s_be32(q), 1);
        ck_assert_uint_eq(s_be32(q + 4), 0);
        ck_assert_uint_eq(s_be32(q + 8), 25);
        ck_assert_uint_eq(s_be32(q + 12), 1);
        ck_assert_uint_eq(s_be32(q + 20), strlen(want[a]));
        ck_assert_int_eq(memcmp(q + 24, want[a], strlen(want[a])), 0);
        s_skip_cols(&p, 1);
    }
    vem_pgrows_free(&r);
    free(f);
}
END_TEST

/* schema/0007_frames.sql reads a non-integer field as (raw * M + A) / 10^decimals with
 * M = scale x 10^decimals and A = offset x 10^decimals, integers worked from HJ 1239's
 * resolutions. That is the value the row-per-sample sink stored, round(v * 10^d) / 10^d with
 * v = raw * scale + offset in doubles, for every raw value of the 1- and 2-byte fields and a
 * stride of the 4-byte ones. */
START_TEST(scaled_values_are_exact)
{
    static const struct {
        vem_hj1239_field_t f;
        int64_t m, a;
    } sql[] = {
        {VEM_HJ1239_F_SPEED, 390625, 0},
        {VEM_HJ1239_F_BARO, 5, 0},
        {VEM_HJ1239_F_RPM, 125, 0},
        {VEM_HJ1239_F_FUEL_RATE, 5, 0},
        {VEM_HJ1239_F_NOX_UP, 5, -20000},
        {VEM_HJ1239_F_NOX_DOWN, 5, -20000},
        {VEM_HJ1239_F_REAGENT, 4, 0},
        {VEM_HJ1239_F_INTAKE, 5, 0},
        {VEM_HJ1239_F_SCR_IN, 3125, -27300000},
        {VEM_HJ1239_F_SCR_OUT, 3125, -27300000},
        {VEM_HJ1239_F_DPF_DP, 1, 0},
        {VEM_HJ1239_F_FUEL_LEVEL, 4, 0},
        {VEM_HJ1239_F_ODOMETER, 1, 0},
        {VEM_HJ1239_F_O2_UP, 305, 0},
        {VEM_HJ1239_F_O2_DOWN, 1, 0},
        {VEM_HJ1239_F_CATALYST, 3125, -27300000},
        {VEM_HJ1239_F_BATTERY_V, 1, 0},
        {VEM_HJ1239_F_BATTERY_A, 1, -10000},
        {VEM_HJ1239_F_PEDAL, 4, 0},
        {VEM_HJ1239_F_FUEL_TOTAL, 5, 0},
        {VEM_HJ1239_F_DPF_EXHAUST, 3125, -27300000},
    };
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        const vem_hj1239_field_info_t *fi = vem_hj1239_field_info(sql[i].f);
        double p10 = 1;
        for (unsigned d = 0; d < fi->decimals; d++)
            p10 *= 10;
        uint64_t step = fi->width == 4 ? 9973 : 1;
        for (uint64_t raw = 0; raw <= fi->max_raw; raw += step) {
            double v = (double)raw * fi->scale + fi->offset;
            double old = round(v * p10) / p10;
            double now = (double)((int64_t)raw * sql[i].m + sql[i].a) / p10;
            ck_assert_msg(memcmp(&old, &now, sizeof old) == 0, "%s raw %llu: %.17g vs %.17g",
                          fi->name, (unsigned long long)raw, old, now);
        }
    }
}
END_TEST

/* Regression: an empty, never-allocated buffer took a zero-length put through memcpy with a
 * null destination, which UBSan aborts on (vemd died on its first batch when sanitized). */
START_TEST(empty_put_on_empty_buffer)
{
    vem_pgrows_buf_t b = {0};
    vem_pgrows_buf_put(&b, NULL, 0);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    vem_pgrows_buf_put(&b, "ab", 2);
    vem_pgrows_buf_put(&b, NULL, 0);
    ck_assert_uint_eq(b.len, 2);
    vem_pgrows_buf_free(&b);
}
END_TEST

Suite *vem_suite_pgrows(void);
Suite *vem_suite_pgrows(void)
{
    Suite *s = suite_create("pgrows");
    TCase *tc = tcase_create("pgrows");
    tcase_set_timeout(tc, 60); /* scaled_values_are_exact walks every raw value: seconds */
    tcase_add_test(tc, login_row_bytes);
    tcase_add_test(tc, rows_per_frame);
    tcase_add_test(tc, frame_row_bytes);
    tcase_add_test(tc, frame_row_markers);
    tcase_add_test(tc, scaled_values_are_exact);
    tcase_add_test(tc, quarantine_row_keeps_bytes);
    tcase_add_test(tc, quarantine_detail_kept_whole);
    tcase_add_test(tc, empty_put_on_empty_buffer);
    tcase_add_test(tc, many_aux_blocks_of_markers);
    suite_add_tcase(s, tc);
    return s;
}
