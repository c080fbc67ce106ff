/* it_frames — obd_frames (schema/0007_frames.sql, 0008): a frame's samples in one row.
 *
 * What the frame layout must keep: a re-sent frame (HJ 1239 0x03 repeats the frame as it was,
 * same frame time) is stored once; vem_samples(vin, from, to) finds every sample in its range,
 * also those of a "wide" frame whose samples lie far from its frame time; a query by VIN and
 * time range reads one or two daily partitions of obd_frames through the (vin, frame_time)
 * index (the plan, asked with EXPLAIN); the old row table still shows through the view; 0008's
 * cheaper decoding reads every record as 0007's did. Rows
 * are written by the sink's own writer (pgwrite), as vemd writes them. And vemd with three
 * connections (pg.connections) stores a store-and-forward fleet whole and once through two
 * kill -9s: its cursor never passes an input whose connection had not committed. */
#include "itutil.h"
#include "pgwrite.h"
#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PGconn *s_pg(void)
{
    PGconn *conn = PQconnectdb(vem_test_env("VEM_TEST_PG"));
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
    return conn;
}

static long long s_count(PGconn *conn, const char *sql, const char *param)
{
    PGresult *res = PQexecParams(conn, sql, param ? 1 : 0, NULL, &param, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    long long n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

static void s_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
                  PQerrorMessage(conn));
    PQclear(res);
}

/* A real-time frame of vehicle vin at t with n stream samples at t - n + 1 + k (the samples of
 * the seconds before the frame), speed k km/h; the sample times moved by shift seconds. */
static void s_frame(vem_hj1239_frame_t *f, const char *vin, int64_t t, unsigned n, int64_t shift)
{
    memset(f, 0, sizeof *f);
    f->cmd = VEM_HJ1239_CMD_REALTIME;
    f->layout = VEM_HJ1239_LAYOUT_BLOCK_TIME;
    f->has_time = true;
    memcpy(f->vin, vin, 17);
    f->time = t;
    f->seq = (uint16_t)(t % 65536); /* 1700600000: 6336 */
    f->nblocks = (uint16_t)n;
    for (unsigned k = 0; k < n; k++) {
        f->blocks[k].type = VEM_HJ1239_BLOCK_STREAM;
        f->blocks[k].time = t - (int64_t)n + 1 + k + shift;
        f->blocks[k].raw[VEM_HJ1239_F_SPEED] = 256 * k;
        f->blocks[k].novalue = vem_hj1239_novalue(&f->blocks[k]);
    }
}

static vem_pgbatch_t s_batch_of(const vem_pgrows_t *r)
{
    vem_pgbatch_t b = {0};
    for (unsigned t = 0; t < VEM_PGROWS_TABLES; t++) {
        if (r->rows[t].len)
            vem_pgrows_buf_put(&b.rows[t], r->rows[t].data, r->rows[t].len);
        b.nrows[t] = r->nrows[t];
    }
    vem_pgbatch_add_days(&b, (const uint8_t *)r->days, r->ndays);
    return b;
}

static vem_pgw_stats_t s_write(vem_pgwriter_t *w, const vem_pgrows_t *r)
{
    vem_pgbatch_t b = s_batch_of(r);
    vem_pgw_stats_t st;
    char err[512];
    ck_assert_msg(vem_pgwriter_write(w, &b, &st, err, sizeof err) == VEM_PGW_OK, "%s", err);
    vem_pgbatch_free(&b);
    return st;
}

static vem_pgwriter_t *s_writer(void)
{
    vem_pgwriter_t *w = vem_pgwriter_new(vem_test_env("VEM_TEST_PG"));
    char err[512];
    ck_assert_msg(vem_pgwriter_connect(w, 1, err, sizeof err) == 0, "%s", err);
    return w;
}

/* What a test opened: its connection, writer, frame scratch and rows. */
static void s_done(PGconn *conn, vem_pgwriter_t **w, vem_hj1239_frame_t *f, vem_pgrows_t *r)
{
    vem_pgrows_free(r);
    free(f);
    vem_pgwriter_destroy(w);
    PQfinish(conn);
}

/* The live frame, then its re-send (same frame time, cmd 0x03): one row, its samples once,
 * the flag of the copy that came first. */
START_TEST(resent_frame_stored_once)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = s_writer();
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t r = {0};
    int64_t t = 1700400000;
    s_frame(f, "LFRMRS00000000001", t, 10, 0);
    vem_pgrows_frame(&r, f, t * 1000000);
    vem_pgw_stats_t st = s_write(w, &r);
    ck_assert_uint_eq(st.inserted[VEM_PGROWS_SAMPLES], 10);
    vem_pgrows_reset(&r);
    f->cmd = VEM_HJ1239_CMD_RESEND;
    vem_pgrows_frame(&r, f, (t + 600) * 1000000);
    st = s_write(w, &r);
    ck_assert_uint_eq(st.inserted[VEM_PGROWS_SAMPLES], 0);
    ck_assert_uint_eq(st.duplicates[VEM_PGROWS_SAMPLES], 10);
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM obd_frames WHERE vin = $1", "LFRMRS00000000001"), 1);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM obd_samples WHERE vin = $1 AND NOT resent "
                             "AND block_type = 'stream'",
                             "LFRMRS00000000001"),
                     10);
    /* the samples are the seconds before the frame, speed 0..9 km/h */
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(DISTINCT sample_time) FROM obd_samples WHERE vin = $1 "
                             "AND speed_kmh = extract(epoch FROM sample_time) - 1700399991",
                             "LFRMRS00000000001"),
                     10);
    /* the latest three, newest first (what vemctl vehicle shows): speeds 9, 8, 7 */
    const char *vin[] = {"LFRMRS00000000001"};
    PGresult *res = PQexecParams(conn,
                                 "SELECT string_agg(speed_kmh::text, ',') FROM "
                                 "vem_recent_samples($1, 3)",
                                 1, NULL, vin, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(conn));
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "9,8,7");
    PQclear(res);
    s_done(conn, &w, f, &r);
}
END_TEST

/* A frame whose samples lie two hours before its time (a terminal that sends a backlog in one
 * frame) is wide: the bounded read finds it through its own index, as it finds a narrow one;
 * the view and the fleet-wide bounded read (vem_samples_between) find both; samples inserted
 * through the view (old row table) are found too. The trigger noted its span in
 * obd_wide_frames. */
START_TEST(bounded_read_finds_wide_frames)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = s_writer();
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t r = {0};
    int64_t t = 1700500000;
    s_frame(f, "LFRMWD00000000001", t, 5, -7200); /* samples t - 7204 .. t - 7200 */
    vem_pgrows_frame(&r, f, t * 1000000);
    s_frame(f, "LFRMWD00000000001", t - 7000, 5, 0); /* samples t - 7004 .. t - 7000 */
    vem_pgrows_frame(&r, f, t * 1000000);
    s_write(w, &r);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM obd_wide_frames WHERE vin = $1 AND first_time "
                             "= to_timestamp(1700500000 - 7204) AND last_time = "
                             "to_timestamp(1700500000 - 7200) AND frame_time = "
                             "to_timestamp(1700500000)",
                             "LFRMWD00000000001"),
                     1);
    s_exec(conn, "INSERT INTO obd_samples (vin, sample_time, block_idx, received_at, frame_seq, "
                 "resent, block_type, speed_kmh) VALUES ('LFRMWD00000000001', "
                 "to_timestamp(1700500000 - 7100), 0, now(), 1, false, 'stream', 12.5)");
    /* [t - 7202, t - 7001): 3 of the wide frame, 1 row, 3 of the narrow frame */
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM vem_samples($1, to_timestamp(1700500000 - "
                             "7202), to_timestamp(1700500000 - 7001))",
                             "LFRMWD00000000001"),
                     3 + 1 + 3);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM vem_samples_between(to_timestamp(1700500000 - "
                             "7202), to_timestamp(1700500000 - 7001)) WHERE vin = $1",
                             "LFRMWD00000000001"),
                     3 + 1 + 3);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM obd_samples WHERE vin = $1 AND sample_time >= "
                             "to_timestamp(1700500000 - 7202) AND sample_time < "
                             "to_timestamp(1700500000 - 7001)",
                             "LFRMWD00000000001"),
                     3 + 1 + 3);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM vem_samples($1, to_timestamp(1700500000 - "
                             "7100), to_timestamp(1700500000 - 7099)) WHERE speed_kmh = 12.5",
                             "LFRMWD00000000001"),
                     1);
    s_done(conn, &w, f, &r);
}
END_TEST

/* A twc block with a hybrid and a supplementary block of the same instant (a 76-byte record),
 * then a twc_nox sample alone in the same frame: every field of the later groups through the
 * view, each expected value worked by hand from HJ 1239's scale and offset. */
START_TEST(every_field_group_through_the_view)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = s_writer();
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t r = {0};
    int64_t t = 1700600000;
    s_frame(f, "LFRMGR00000000001", t, 2, 0);
    vem_hj1239_block_t *twc = &f->blocks[0], *nox = &f->blocks[1];
    twc->type = VEM_HJ1239_BLOCK_TWC;
    twc->raw[VEM_HJ1239_F_O2_UP] = 1000;                /* x 0.0000305 = 0.0305 */
    twc->raw[VEM_HJ1239_F_O2_DOWN] = 45;                /* x 0.01 V = 0.45 */
    twc->raw[VEM_HJ1239_F_CATALYST] = 32 * (273 + 400); /* / 32 - 273 = 400 C */
    twc->raw[VEM_HJ1239_F_POS_STATUS] = 0x06;           /* valid, south, west */
    twc->raw[VEM_HJ1239_F_LON] = 118796877;             /* -118.796877 */
    twc->raw[VEM_HJ1239_F_LAT] = 32060255;              /* -32.060255 */
    twc->novalue = vem_hj1239_novalue(twc);
    nox->type = VEM_HJ1239_BLOCK_TWC_NOX;
    nox->raw[VEM_HJ1239_F_NOX_DOWN] = 4000 + 20 * 50; /* x 0.05 - 200 = 50 ppm */
    nox->raw[VEM_HJ1239_F_O2_DOWN] = 0xFF;            /* invalid */
    nox->novalue = vem_hj1239_novalue(nox);
    vem_hj1239_block_t hyb = {.type = VEM_HJ1239_BLOCK_HYBRID, .time = twc->time};
    hyb.raw[VEM_HJ1239_F_MOTOR_RPM] = 1500;
    hyb.raw[VEM_HJ1239_F_MOTOR_LOAD] = 60;
    hyb.raw[VEM_HJ1239_F_BATTERY_V] = 3500;  /* x 0.1 = 350 V */
    hyb.raw[VEM_HJ1239_F_BATTERY_A] = 10125; /* x 0.1 - 1000 = 12.5 A */
    hyb.raw[VEM_HJ1239_F_SOC] = 80;
    hyb.novalue = vem_hj1239_novalue(&hyb);
    vem_hj1239_block_t sup = {.type = VEM_HJ1239_BLOCK_SUPPLEMENTARY, .time = twc->time};
    sup.raw[VEM_HJ1239_F_TORQUE_MODE] = 2;
    sup.raw[VEM_HJ1239_F_PEDAL] = 100;       /* x 0.4 = 40 % */
    sup.raw[VEM_HJ1239_F_FUEL_TOTAL] = 2001; /* x 0.5 = 1000.5 L */
    sup.raw[VEM_HJ1239_F_UREA_TANK] = 60;    /* - 40 = 20 C */
    sup.raw[VEM_HJ1239_F_UREA_DOSE] = 1234;
    sup.raw[VEM_HJ1239_F_UREA_TOTAL] = 567890;
    sup.raw[VEM_HJ1239_F_DPF_EXHAUST] = 32 * (273 + 300) + 16; /* 300.5 C */
    sup.novalue = vem_hj1239_novalue(&sup);
    f->blocks[f->nblocks++] = hyb;
    f->blocks[f->nblocks++] = sup;
    vem_pgrows_frame(&r, f, t * 1000000);
    s_write(w, &r);
    PGresult *res =
        PQexec(conn, "SELECT to_jsonb(s) - 'received_at' - 'sample_time' FROM "
                     "obd_samples s WHERE vin = 'LFRMGR00000000001' ORDER BY block_idx");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    ck_assert_int_eq(PQntuples(res), 2);
    static const char *const want[2] = {
        "{\"vin\": \"LFRMGR00000000001\", \"lat\": -32.060255, \"lon\": -118.796877, \"o2_up\": "
        "0.0305, \"resent\": false, \"soc_pct\": 80, \"invalid\": null, \"abnormal\": null, "
        "\"baro_kpa\": 0, \"block_idx\": 0, \"coolant_c\": -40, \"frame_seq\": 6336, "
        "\"motor_rpm\": 1500, \"o2_down_v\": 0.45, \"pedal_pct\": 40, \"pos_valid\": true, "
        "\"speed_kmh\": 0, \"urea_dose\": 1234, \"battery_a\": 12.5, \"battery_v\": 350, "
        "\"block_type\": \"twc\", \"catalyst_c\": 400, \"dpf_dp_kpa\": null, \"engine_rpm\": 0, "
        "\"nox_up_ppm\": null, \"torque_pct\": -125, \"urea_total\": 567890, \"odometer_km\": 0, "
        "\"reagent_pct\": null, \"scr_out_c\": null, \"scr_in_c\": null, \"torque_mode\": 2, "
        "\"urea_tank_c\": 20, \"friction_pct\": -125, \"fuel_total_l\": 1000.5, "
        "\"nox_down_ppm\": null, \"dpf_exhaust_c\": 300.5, \"fuel_rate_lph\": 0, "
        "\"fuel_level_pct\": null, \"motor_load_pct\": 60, \"intake_air_kgph\": 0}",
        "{\"vin\": \"LFRMGR00000000001\", \"lat\": 0, \"lon\": 0, \"o2_up\": 0, \"resent\": false, "
        "\"soc_pct\": null, \"invalid\": [\"o2_down_v\"], \"abnormal\": null, \"baro_kpa\": 0, "
        "\"block_idx\": 1, \"coolant_c\": -40, \"frame_seq\": 6336, \"motor_rpm\": null, "
        "\"o2_down_v\": null, \"pedal_pct\": null, \"pos_valid\": true, \"speed_kmh\": 1, "
        "\"urea_dose\": null, \"battery_a\": null, \"battery_v\": null, \"block_type\": "
        "\"twc_nox\", \"catalyst_c\": -273, \"dpf_dp_kpa\": null, \"engine_rpm\": 0, "
        "\"nox_up_ppm\": null, \"torque_pct\": -125, \"urea_total\": null, \"odometer_km\": 0, "
        "\"reagent_pct\": null, \"scr_out_c\": null, \"scr_in_c\": null, \"torque_mode\": null, "
        "\"urea_tank_c\": null, \"friction_pct\": -125, \"fuel_total_l\": null, "
        "\"nox_down_ppm\": 50, \"dpf_exhaust_c\": null, \"fuel_rate_lph\": 0, "
        "\"fuel_level_pct\": null, \"motor_load_pct\": null, \"intake_air_kgph\": 0}"};
    json_error_t jerr;
    for (int i = 0; i < 2; i++) {
        json_t *got = json_loads(PQgetvalue(res, i, 0), 0, &jerr);
        json_t *exp = json_loads(want[i], 0, &jerr);
        ck_assert_ptr_nonnull(exp);
        const char *key;
        json_t *v;
        json_object_foreach(exp, key, v)
        {
            json_t *g = json_object_get(got, key);
            ck_assert_msg(g != NULL, "sample %d: no %s", i, key);
            bool same = json_is_number(v) && json_is_number(g)
                            ? json_number_value(v) == json_number_value(g)
                            : json_equal(v, g);
            char *gs = json_dumps(g, JSON_ENCODE_ANY);
            ck_assert_msg(same, "sample %d %s: %s", i, key, gs);
            free(gs);
        }
        ck_assert_uint_eq(json_object_size(got), json_object_size(exp));
        json_decref(got);
        json_decref(exp);
    }
    PQclear(res);
    s_done(conn, &w, f, &r);
}
END_TEST

/* Counts, in a JSON plan, the scans of obd_frames partitions: by the (vin, frame_time) key,
 * sequential, and other. */
static void s_scans(const json_t *node, int *by_key, int *seq, int *other)
{
    if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v) s_scans(v, by_key, seq, other);
        return;
    }
    if (!json_is_object(node))
        return;
    const char *rel = json_string_value(json_object_get(node, "Relation Name"));
    const char *type = json_string_value(json_object_get(node, "Node Type"));
    const char *index = json_string_value(json_object_get(node, "Index Name"));
    if (rel && strncmp(rel, "obd_frames_p", 12) == 0) {
        if (strcmp(type, "Seq Scan") == 0)
            (*seq)++;
        else if (index && strstr(index, "vin_frame_time_key"))
            (*by_key)++;
        else
            (*other)++;
    }
    if (index && strncmp(index, "obd_frames_p", 12) == 0 && !rel && strstr(index, "_key"))
        (*by_key)++; /* a Bitmap Index Scan names only the index */
    s_scans(json_object_get(node, "Plans"), by_key, seq, other);
    s_scans(json_object_get(node, "Plan"), by_key, seq, other);
}

/* 200 vehicles x 5 days x 60 frames of 10 samples; one vehicle's hour reads at most two
 * partitions of obd_frames, by the (vin, frame_time) key, and none sequentially (the wide
 * frames are found through obd_wide_frames, not by visiting every partition). */
START_TEST(query_by_vin_and_range_prunes_and_uses_the_index)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = s_writer();
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t r = {0};
    int64_t day0 = 1701360000; /* 2023-12-01 00:00 Beijing */
    for (int d = 0; d < 5; d++) {
        for (int v = 0; v < 200; v++) {
            char vin[18];
            snprintf(vin, sizeof vin, "LFRMPL%011d", v);
            for (int k = 0; k < 60; k++) {
                s_frame(f, vin, day0 + d * 86400 + 36000 + k * 600, 10, 0);
                vem_pgrows_frame(&r, f, (day0 + d * 86400) * 1000000);
            }
        }
        s_write(w, &r);
        vem_pgrows_reset(&r);
    }
    s_exec(conn, "ANALYZE obd_frames");
    const char *sql = "EXPLAIN (FORMAT JSON) SELECT * FROM vem_samples('LFRMPL00000000042', "
                      "'2023-12-03 10:00+08', '2023-12-03 11:00+08')";
    PGresult *res = PQexec(conn, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(conn));
    json_error_t jerr;
    json_t *plan = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
    PQclear(res);
    ck_assert_ptr_nonnull(plan);
    int by_key = 0, seq = 0, other = 0;
    s_scans(plan, &by_key, &seq, &other);
    if (!(by_key >= 1 && by_key <= 2 && seq == 0)) {
        char *text = json_dumps(plan, JSON_INDENT(1));
        fprintf(stderr, "it_frames plan: %s\n", text);
        free(text);
    }
    ck_assert_msg(by_key >= 1 && by_key <= 2 && seq == 0, "by key %d, seq %d, other %d", by_key,
                  seq, other);
    json_decref(plan);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM vem_samples($1, '2023-12-03 10:00+08', "
                             "'2023-12-03 11:00+08')",
                             "LFRMPL00000000042"),
                     60); /* the frames of 10:00 .. 10:50 each hold 10 samples up to then */
    s_done(conn, &w, f, &r);
}
END_TEST

/* The samples of the VINs starting with prefix through the view, as one JSON text in a fixed
 * order (the text compares every value, -0 and NULLs included). */
static char *s_samples_json(PGconn *conn, const char *prefix)
{
    const char *p[] = {prefix};
    PGresult *res = PQexecParams(conn,
                                 "SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY vin, sample_time, "
                                 "block_idx), '[]')::text FROM obd_samples s "
                                 "WHERE vin LIKE $1 || '%'",
                                 1, NULL, p, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(conn));
    char *text = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return text;
}

/* Old rows (the row-per-sample table) move into frames a day at a time: the view shows the same
 * samples, value for value, before and after; a second call finds nothing to do; a day whose
 * frames would collide is refused with its reason and left as it was, the days before it
 * stay moved. The old rows are made from frames of every field group, markers and a southern,
 * western position: written as frames, copied out through the view into obd_samples_rows, the
 * frames deleted. */
START_TEST(old_rows_move_into_frames_a_day_at_a_time)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = s_writer();
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t r = {0};
    int64_t t = 1700900000; /* 2023-11-25, then a day later */
    for (int day = 0; day < 2; day++) {
        for (int k = 0; k < 30; k++) {
            s_frame(f, "LFRMMG00000000001", t + day * 86400 + k * 10, 10, 0);
            f->blocks[3].type = VEM_HJ1239_BLOCK_TWC;
            f->blocks[3].raw[VEM_HJ1239_F_POS_STATUS] = 0x06;
            f->blocks[3].raw[VEM_HJ1239_F_LON] = 0; /* -0.000000 */
            f->blocks[3].raw[VEM_HJ1239_F_LAT] = 1234567;
            f->blocks[3].raw[VEM_HJ1239_F_O2_DOWN] = 0xFE;    /* abnormal */
            f->blocks[3].raw[VEM_HJ1239_F_CATALYST] = 0xFFFF; /* invalid */
            f->blocks[3].novalue = vem_hj1239_novalue(&f->blocks[3]);
            vem_hj1239_block_t sup = {.type = VEM_HJ1239_BLOCK_SUPPLEMENTARY,
                                      .time = f->blocks[5].time};
            sup.raw[VEM_HJ1239_F_FUEL_TOTAL] = 3000001u + (unsigned)k;
            sup.raw[VEM_HJ1239_F_DPF_EXHAUST] = 32 * 600 + 7;
            sup.raw[VEM_HJ1239_F_UREA_DOSE] = 0xFFFFFFFFu;
            sup.novalue = vem_hj1239_novalue(&sup);
            vem_hj1239_block_t hyb = {.type = VEM_HJ1239_BLOCK_HYBRID, .time = f->blocks[7].time};
            hyb.raw[VEM_HJ1239_F_BATTERY_A] = 9000; /* -100 A */
            hyb.raw[VEM_HJ1239_F_SOC] = 101;        /* out of range: abnormal */
            hyb.novalue = vem_hj1239_novalue(&hyb);
            f->blocks[f->nblocks++] = sup;
            f->blocks[f->nblocks++] = hyb;
            for (unsigned b = 0; b < f->nblocks; b++)
                f->blocks[b].raw[VEM_HJ1239_F_NOX_DOWN] = 4000 + 13 * (unsigned)(k + b);
            vem_pgrows_frame(&r, f, (t + day * 86400 + k * 10) * 1000000);
        }
    }
    s_write(w, &r);
    char *before = s_samples_json(conn, "LFRMMG");
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM obd_samples WHERE vin = $1", "LFRMMG00000000001"),
        2 * 30 * 10);
    s_exec(conn, "INSERT INTO obd_samples_rows SELECT * FROM obd_samples WHERE vin LIKE 'LFRMMG%'");
    s_exec(conn, "DELETE FROM obd_frames WHERE vin LIKE 'LFRMMG%'");
    /* the same samples from the old table */
    char *rows = s_samples_json(conn, "LFRMMG");
    ck_assert_str_eq(rows, before);
    /* a later day where two frames of one vehicle end on the same second */
    s_exec(conn, "SELECT vem_ensure_partitions('2023-11-28', '2023-11-28')");
    s_exec(conn, "INSERT INTO obd_samples (vin, sample_time, block_idx, received_at, frame_seq, "
                 "resent, block_type) VALUES "
                 "('LFRMMX00000000001', '2023-11-28 10:00+08', 0, '2023-11-28 10:00:01+08', 1, "
                 "false, 'stream'), "
                 "('LFRMMX00000000001', '2023-11-28 10:00+08', 1, '2023-11-28 10:00:05+08', 2, "
                 "false, 'hybrid')");
    PGresult *res = PQexec(conn, "CALL vem_migrate_samples(1000)");
    ck_assert_int_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
    ck_assert_msg(strstr(PQerrorMessage(conn), "day 2023-11-28: 2 rows, but only 1 went into"),
                  "%s", PQerrorMessage(conn));
    PQclear(res);
    /* the days before it moved, and read the same through the view */
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM obd_samples_rows WHERE vin = $1", "LFRMMG00000000001"),
        0);
    ck_assert_int_eq(
        s_count(conn, "SELECT sum(nsamples) FROM obd_frames WHERE vin = $1", "LFRMMG00000000001"),
        600);
    char *after = s_samples_json(conn, "LFRMMG");
    ck_assert_str_eq(after, before);
    /* the refused day is as it was */
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM obd_samples_rows WHERE vin = $1", "LFRMMX00000000001"),
        2);
    /* once that day is dealt with, the call goes on from there, and then has nothing to do */
    s_exec(conn, "DELETE FROM obd_samples_rows WHERE vin = 'LFRMMX00000000001' AND "
                 "block_idx = 1");
    res = PQexec(conn, "CALL vem_migrate_samples(1000)");
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(conn));
    PQclear(res);
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM obd_samples_rows", NULL), 0);
    res = PQexec(conn, "CALL vem_migrate_samples(1000)");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "0");
    PQclear(res);
    free(before);
    free(rows);
    free(after);
    s_done(conn, &w, f, &r);
}
END_TEST

/* pg.connections = 3, small batches: the rows of a fleet of store-and-forward trucks are split
 * over three connections; vemd is killed twice while they write. Every sample is stored, once:
 * had the cursor passed an input one connection had not committed, the restart would not
 * replay it and its samples would be missing; the trucks re-send what was not acknowledged. */
START_TEST(parallel_connections_store_everything_once)
{
    vem_it_run_t r = {.pg_opts = "connections = 3; batch_rows = 40;"};
    vem_it_start(&r, "it_frames");
    char *extra[] = {"--await-replies",
                     "--trucks",
                     "24",
                     "--rate",
                     "2",
                     "--duration",
                     "20",
                     "--settle",
                     "30",
                     "--seed",
                     "61",
                     "--offline",
                     "20",
                     "--vin-prefix",
                     "LFRMPC"};
    pid_t sim = vem_it_run_sim(&r, extra, 15);
    PGconn *conn = vem_it_pg();
    vem_it_sleep(4);
    /* three connections of vemd's sink (and ours) */
    ck_assert_int_ge(s_count(conn,
                             "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND backend_type = 'client backend' AND pid <> "
                             "pg_backend_pid()",
                             NULL),
                     3);
    for (int i = 0; i < 2; i++) {
        vem_it_sleep(3 + i);
        ck_assert_int_eq(kill(r.vemd, SIGKILL), 0);
        ck_assert_int_eq(vem_it_wait(r.vemd, 10), 128 + SIGKILL);
        vem_it_launch(&r);
    }
    ck_assert_int_eq(vem_it_wait(sim, 180), 0);
    json_t *truth = vem_it_truth(&r);
    vem_it_compare_rows(conn, "obd_samples", "LFRMPC", truth);
    vem_it_no_duplicate_samples(conn, "LFRMPC");
    vem_it_compare_rows(conn, "terminal_events", "LFRMPC", truth);
    json_decref(truth);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* The sink packs a frame's records (daemon/pgrows.c, schema/0012_frames_packed.sql): the heads
 * once per frame when the samples are regular, else every head (meta); positions as
 * differences from the frame's first when they fit, else whole (pos). Three frames, one for
 * each way out, read back through the view as the values they were built from: per-block
 * serials 500.. and a 40,000-unit step east (0.04 degrees in a second: no 16-bit difference
 * holds it); a regular frame crossing the meridian (west 0.000005, east 0.000003, then no
 * longitude); a western 0 (-0, which only the whole form keeps). */
START_TEST(packing_keeps_what_is_irregular)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = s_writer();
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t r = {0};
    int64_t t = 1700700000;
    s_frame(f, "LFRMPK00000000001", t, 3, 0);
    f->layout |= VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK;
    for (unsigned k = 0; k < 3; k++) {
        vem_hj1239_block_t *b = &f->blocks[k];
        b->seq = (uint16_t)(500 + k);
        b->raw[VEM_HJ1239_F_LON] = 116000000 + 40000 * k;
        b->raw[VEM_HJ1239_F_LAT] = 39900000;
        b->raw[VEM_HJ1239_F_ODOMETER] = 1000 + k;
        b->novalue = vem_hj1239_novalue(b);
    }
    vem_pgrows_frame(&r, f, t * 1000000);
    s_frame(f, "LFRMPK00000000002", t, 3, 0);
    for (unsigned k = 0; k < 3; k++) {
        vem_hj1239_block_t *b = &f->blocks[k];
        b->raw[VEM_HJ1239_F_POS_STATUS] = k == 0 ? 0x04 : 0x00; /* the first west */
        b->raw[VEM_HJ1239_F_LON] = k == 0 ? 5 : k == 1 ? 3 : UINT32_MAX;
        b->raw[VEM_HJ1239_F_LAT] = 39900000 + k;
        b->raw[VEM_HJ1239_F_ODOMETER] = 1234567 + 3 * k;
        b->novalue = vem_hj1239_novalue(b);
    }
    vem_pgrows_frame(&r, f, t * 1000000);
    s_frame(f, "LFRMPK00000000003", t, 2, 0);
    f->blocks[0].raw[VEM_HJ1239_F_POS_STATUS] = 0x04; /* west, 0 */
    f->blocks[1].raw[VEM_HJ1239_F_LON] = 10;
    for (unsigned k = 0; k < 2; k++)
        f->blocks[k].novalue = vem_hj1239_novalue(&f->blocks[k]);
    vem_pgrows_frame(&r, f, t * 1000000);
    s_write(w, &r);

    PGresult *res = PQexec(conn, "SELECT vin, meta IS NULL, pos IS NULL, (SELECT string_agg("
                                 "concat_ws(' ', block_idx, frame_seq, block_type, "
                                 "extract(epoch FROM sample_time)::bigint - 1700700000, lon, lat, "
                                 "odometer_km), ';' ORDER BY block_idx) FROM obd_samples s "
                                 "WHERE s.vin = f.vin) FROM obd_frames f "
                                 "WHERE vin LIKE 'LFRMPK%' ORDER BY vin");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    ck_assert_int_eq(PQntuples(res), 3);
    static const char *const want[3][3] = {
        {"f", "f",
         "0 500 stream -2 116 39.9 100;1 501 stream -1 116.04 39.9 100.1;"
         "2 502 stream 0 116.08 39.9 100.2"},
        {"t", "t",
         "0 40800 stream -2 -5e-06 39.9 123456.7;1 40800 stream -1 3e-06 39.900001 123457;"
         "2 40800 stream 0 39.900002 123457.3"},
        {"t", "f", "0 40800 stream -1 -0 0 0;1 40800 stream 0 1e-05 0 0"},
    };
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(PQgetvalue(res, i, 1), want[i][0]);
        ck_assert_str_eq(PQgetvalue(res, i, 2), want[i][1]);
        ck_assert_str_eq(PQgetvalue(res, i, 3), want[i][2]);
    }
    PQclear(res);
    s_done(conn, &w, f, &r);
}
END_TEST

/* vem_drop_partitions drops a day's frames and, since 0013, their rows in obd_wide_frames
 * (not partitioned): two wide frames of 2001-01-10 and 2001-01-12 (Beijing), samples two hours
 * before each; dropping the days before 2001-01-11 leaves only the second's row, and the bounded
 * read still finds its samples. */
START_TEST(dropping_days_forgets_their_wide_frames)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = s_writer();
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t r = {0};
    int64_t day10 = 979084800; /* 2001-01-10 00:00 UTC: 08:00 in Beijing */
    s_frame(f, "LFRMDW00000000001", day10, 5, -7200);
    vem_pgrows_frame(&r, f, day10 * 1000000);
    s_frame(f, "LFRMDW00000000001", day10 + 2 * 86400, 5, -7200);
    vem_pgrows_frame(&r, f, day10 * 1000000);
    s_write(w, &r);
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM obd_wide_frames WHERE vin = $1", "LFRMDW00000000001"),
        2);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM vem_drop_partitions('2001-01-11') p "
                             "WHERE p = $1",
                             "obd_frames_p20010110"),
                     1);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM obd_wide_frames WHERE vin = $1 "
                             "AND frame_time = '2001-01-12 08:00+08'",
                             "LFRMDW00000000001"),
                     1);
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM obd_wide_frames WHERE vin = $1", "LFRMDW00000000001"),
        1);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM vem_samples($1, '2001-01-12 05:00+08', "
                             "'2001-01-12 07:00+08')",
                             "LFRMDW00000000001"),
                     5);
    s_done(conn, &w, f, &r);
}
END_TEST

/* schema/0008_frames_compact.sql replaced the decoding view by one with fewer executor steps
 * and claims the same values. The reference is 0007's definition itself, taken from the
 * migration file (its helpers are still there) as a temporary view, whose values the vector
 * and field-group tests prove. Records of random bytes (a fifth of them 0xff, the "no
 * measurement" marker) of every record length, with invalid and abnormal lists, must read the
 * same through both, compared as row text (-0 and NULLs included; every 7th frame's first
 * longitude is a western 0, which only the sign tells from 0). */
START_TEST(compact_decoding_reads_as_0007)
{
    PGconn *conn = s_pg();
    size_t len = 0;
    uint8_t *text = vem_test_slurp("schema/0007_frames.sql", &len);
    ck_assert_ptr_nonnull(text);
    char *sql = malloc(len + 1); /* the file's text, terminated */
    memcpy(sql, text, len);
    sql[len] = '\0';
    free(text);
    char *start = strstr(sql, "CREATE VIEW public.obd_frame_samples ");
    ck_assert_ptr_nonnull(start);
    char *end = strstr(start, "AS g(i)) s;");
    ck_assert_ptr_nonnull(end);
    end[strlen("AS g(i)) s")] = '\0';
    start += strlen("CREATE VIEW public.obd_frame_samples ");
    char *create = malloc(strlen(start) + 64);
    sprintf(create, "CREATE TEMP VIEW frame_samples_0007 %s", start);
    char *from = strstr(create, "FROM public.obd_frames f");
    ck_assert_ptr_nonnull(from);
    memcpy(from, "FROM frames_0007       f", strlen("FROM public.obd_frames f"));
    /* obd_frames as 0007 made it: the full records, unpacked */
    s_exec(conn, "CREATE TEMP TABLE frames_0007 (vin text, frame_time timestamptz, "
                 "received_at timestamptz, frame_seq integer, resent boolean, nsamples smallint, "
                 "rec_len smallint, wide boolean, samples bytea, invalid text[], abnormal text[])");
    s_exec(conn, create);
    free(create);
    free(sql);

    s_exec(conn, "SELECT vem_ensure_partitions('2023-11-10', '2023-11-10')");
    s_exec(conn, "SELECT setseed(0.16)");
    s_exec(conn,
           "INSERT INTO frames_0007 (vin, frame_time, received_at, frame_seq, resent, nsamples, "
           "rec_len, wide, samples, invalid, abnormal) "
           "SELECT 'LFRMCP' || lpad(g::text, 11, '0'), "
           "       timestamptz '2023-11-10 12:00+08' + g * interval '1 s', now(), g, g % 2 = 0, "
           "       10, r.len, false, "
           "       overlay((SELECT string_agg(CASE WHEN random() < 0.2 THEN '\\xff'::bytea "
           "                    ELSE set_byte('\\x00'::bytea, 0, (random() * 254)::int) "
           "                    END, ''::bytea) FROM generate_series(1, 10 * r.len) x WHERE g > 0) "
           "               placing CASE WHEN g % 7 = 0 THEN '\\x80000000'::bytea ELSE '' END "
           "               from 35), " /* every 7th frame: a western 0 (-0) first longitude */
           "       CASE WHEN g % 3 = 0 THEN "
           "            ARRAY['speed_kmh', NULL, 'lat,lon', '', 'a', 'b', 'c', 'd', 'e', 'f'] END, "
           "       CASE WHEN g % 5 = 0 THEN "
           "            ARRAY['nox_up_ppm', 'x', 'y', 'z', NULL, 'b', 'c', 'd', 'e', 'f'] END "
           "  FROM generate_series(1, 2000) g, "
           "       LATERAL (SELECT (ARRAY[46, 63, 68, 76])[1 + g % 4] AS len) r");
    /* every 11th frame regular: times one second apart, blocks in a row, the frame's serial
     * (random heads are not, so meta is kept); every 13th with positions close together */
    s_exec(conn, "UPDATE frames_0007 o SET samples = (SELECT string_agg(overlay(substr("
                 "o.samples, k * o.rec_len + 1, o.rec_len) placing int4send(k - 9) || "
                 "set_byte('\\x00'::bytea, 0, k + 1) || '\\x02'::bytea || "
                 "substr(int4send(o.frame_seq), 3) from 1), ''::bytea ORDER BY k) "
                 "FROM generate_series(0, 9) k) WHERE right(vin, 4)::int % 11 = 0");
    s_exec(conn, "UPDATE frames_0007 o SET samples = (SELECT string_agg(overlay(substr("
                 "o.samples, k * o.rec_len + 1, o.rec_len) placing int4send(116000000 + k * 300) "
                 "|| int4send((-2147483648 + 40000000 + k * 300)::int) || int4send(1234567 + k) "
                 "from 35), ''::bytea ORDER BY k) FROM generate_series(0, 9) k) "
                 "WHERE right(vin, 4)::int % 13 = 0");
    s_exec(conn, "INSERT INTO obd_frames (vin, frame_time, received_at, frame_seq, resent, "
                 "nsamples, rec_len, wide, samples, invalid, abnormal, meta, pos) "
                 "SELECT o.vin, o.frame_time, o.received_at, o.frame_seq, o.resent, o.nsamples, "
                 "p.rec_len, o.wide, p.samples, o.invalid, o.abnormal, p.meta, p.pos "
                 "FROM frames_0007 o, vem_pack_frame(o.samples, o.rec_len, o.nsamples, "
                 "o.frame_seq) p");
    const char *prefix = "LFRMCP%";
    /* both forms of each part are there: heads kept and not, positions whole and as
     * differences */
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM obd_frames WHERE vin LIKE $1 AND meta IS NULL", prefix),
        2000 / 11);
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM obd_frames WHERE vin LIKE $1 AND pos IS NULL", prefix),
        2000 / 13);
    /* a long frame (vem_migrate_samples may build one of any length): its checks are counted
     * in integers, not in rec_len x nsamples as smallint (62 x 600 overflowed it) */
    s_exec(conn, "INSERT INTO obd_frames (vin, frame_time, received_at, frame_seq, resent, "
                 "nsamples, rec_len, wide, samples, meta, pos) "
                 "SELECT 'LFRMBG00000000001', '2023-11-10 13:00+08', now(), 1, false, 600, "
                 "p.rec_len, false, p.samples, p.meta, p.pos "
                 "FROM vem_pack_frame(decode(repeat('00', 76 * 600), 'hex'), 76, 600, 1) p");
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM obd_frame_samples WHERE vin = $1", "LFRMBG00000000001"),
        600);
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM obd_frame_samples WHERE vin LIKE $1", prefix), 20000);
    /* the random records reach what needs care: both hemispheres, missing values, hybrid */
    ck_assert_int_gt(s_count(conn,
                             "SELECT count(*) FROM obd_frame_samples WHERE vin LIKE $1 "
                             "AND lon < 0",
                             prefix),
                     1000);
    ck_assert_int_gt(s_count(conn,
                             "SELECT count(*) FROM obd_frame_samples WHERE vin LIKE $1 "
                             "AND lon::text = '-0'",
                             prefix),
                     0);
    ck_assert_int_gt(s_count(conn,
                             "SELECT count(*) FROM obd_frame_samples WHERE vin LIKE $1 "
                             "AND lat IS NULL",
                             prefix),
                     0);
    ck_assert_int_gt(s_count(conn,
                             "SELECT count(*) FROM obd_frame_samples WHERE vin LIKE $1 "
                             "AND soc_pct IS NOT NULL AND invalid IS NOT NULL",
                             prefix),
                     0);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM ("
                             "(SELECT o::text FROM frame_samples_0007 o WHERE vin LIKE $1 "
                             " EXCEPT ALL "
                             " SELECT n::text FROM obd_frame_samples n WHERE vin LIKE $1) "
                             "UNION ALL "
                             "(SELECT n::text FROM obd_frame_samples n WHERE vin LIKE $1 "
                             " EXCEPT ALL "
                             " SELECT o::text FROM frame_samples_0007 o WHERE vin LIKE $1)) d",
                             prefix),
                     0);
    PQfinish(conn);
}
END_TEST

Suite *vem_suite_frames(void);
Suite *vem_suite_frames(void)
{
    Suite *s = suite_create("frames");
    TCase *tc = tcase_create("frames");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, resent_frame_stored_once);
    tcase_add_test(tc, bounded_read_finds_wide_frames);
    tcase_add_test(tc, every_field_group_through_the_view);
    tcase_add_test(tc, compact_decoding_reads_as_0007);
    tcase_add_test(tc, packing_keeps_what_is_irregular);
    tcase_add_test(tc, dropping_days_forgets_their_wide_frames);
    tcase_add_test(tc, query_by_vin_and_range_prunes_and_uses_the_index);
    tcase_add_test(tc, old_rows_move_into_frames_a_day_at_a_time);
    tcase_add_test(tc, parallel_connections_store_everything_once);
    suite_add_tcase(s, tc);
    return s;
}
