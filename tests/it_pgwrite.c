/* it_pgwrite — the sink's write path against the real server.
 *
 * values:      every shared vector that decodes is written as the workers would write it, and
 *              what PostgreSQL then holds equals the vector's expected decode (FIELDS.md names
 *              are the column names), field by field, markers as NULL and listed by name.
 * idempotent:  the same batch written twice stores its rows once; a batch mixing stored and
 *              new rows stores exactly the new ones.
 * partitions:  rows for a day without a partition get one on the way.
 * refused:     rows the server refuses (a CHECK added for the test, bytes that are not UTF-8)
 *              are quarantined with the server's message; the rest of the batch is stored, and
 *              writing it again stores nothing twice.
 * limits:      driven step by step as the sink's poll loop would, no step blocks: a table
 *              locked by another session ends the write with RETRY at lock_timeout (and the
 *              retry after the lock is gone stores the batch once); a server that stops
 *              answering, at the writer's deadline, with the stuck statement cancelled; a
 *              closed port, a missing socket and a silent listener while connecting.
 * notices:     the server's notices reach vemd's log. */
#include "clock.h"
#include "log.h"
#include "pgrows.h"
#include "pgwrite.h"
#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static PGconn *s_pg(void)
{
    PGconn *conn = PQconnectdb(vem_test_env("VEM_TEST_PG"));
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
    return conn;
}

/* One JSON value from the server: SELECT of a single jsonb/json/int column. */
static json_t *s_query_json(PGconn *conn, const char *sql, const char *param)
{
    const char *params[] = {param};
    PGresult *res = PQexecParams(conn, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    ck_assert_int_eq(PQntuples(res), 1);
    json_error_t err;
    json_t *j = json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, &err);
    ck_assert_msg(j != NULL, "%s", err.text);
    PQclear(res);
    return j;
}

static vem_pgbatch_t s_batch_of(const vem_pgrows_t *r)
{
    vem_pgbatch_t b = {0};
    for (unsigned t = 0; t < VEM_PGROWS_TABLES; t++) {
        if (r->rows[t].len) /* an empty table has no buffer: memcpy from NULL is undefined */
            vem_pgrows_buf_put(&b.rows[t], r->rows[t].data, r->rows[t].len);
        b.nrows[t] = r->nrows[t];
    }
    uint8_t days[VEM_PGROWS_MAX_DAYS * 4];
    memcpy(days, r->days, r->ndays * sizeof(int32_t));
    vem_pgbatch_add_days(&b, days, r->ndays);
    return b;
}

static vem_pgwriter_t *s_writer(void)
{
    char err[512];
    vem_pgwriter_t *w = vem_pgwriter_new(vem_test_env("VEM_TEST_PG"));
    ck_assert_msg(vem_pgwriter_connect(w, 1, err, sizeof err) == 0, "%s", err);
    return w;
}

/* Compares an expected JSON value (from the vector) with the stored one. */
static void s_same(const char *what, const char *key, json_t *want, json_t *got)
{
    if (json_is_null(want)) {
        ck_assert_msg(json_is_null(got), "%s.%s: want null", what, key);
    } else if (json_is_number(want)) {
        ck_assert_msg(json_is_number(got), "%s.%s: want a number", what, key);
        double w = json_number_value(want), g = json_number_value(got);
        ck_assert_msg(fabs(w - g) <= 1e-6 * (fabs(w) > 1 ? fabs(w) : 1), "%s.%s: want %g, got %g",
                      what, key, w, g);
    } else if (json_is_array(want) && json_array_size(want) == 0) {
        ck_assert_msg(json_is_null(got) || json_array_size(got) == 0, "%s.%s: want []", what, key);
    } else {
        ck_assert_msg(json_equal(want, got), "%s.%s: differs", what, key);
    }
}

/* Keys of a vector block that are not columns of the row (or are named differently). */
static bool s_skip(const char *key)
{
    static const char *const skip[] = {"type", "type_code", "time", "seq", NULL};
    for (int i = 0; skip[i]; i++)
        if (strcmp(key, skip[i]) == 0)
            return true;
    return false;
}

START_TEST(stored_values_match_the_vectors)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = s_writer();
    char path[512];
    snprintf(path, sizeof path, "%s/hj1239/vectors.jsonl", vem_test_vectors_dir());
    FILE *in = fopen(path, "r");
    ck_assert_ptr_nonnull(in);
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    json_error_t jerr;
    json_t *v;
    int checked_blocks = 0, checked_events = 0;
    while ((v = json_loadf(in, JSON_DISABLE_EOF_CHECK, &jerr))) {
        const char *name = json_string_value(json_object_get(v, "name"));
        json_t *expect = json_object_get(v, "expect");
        uint8_t frame[4096];
        long len =
            vem_test_unhex(json_string_value(json_object_get(v, "hex")), frame, sizeof frame);
        if (json_object_get(expect, "error") ||
            vem_hj1239_decode(frame, (size_t)len, 0, f, NULL) != VEM_HJ1239_OK) {
            json_decref(v);
            continue;
        }
        /* a VIN of its own per vector, so each vector's rows are found apart */
        char vin[18];
        snprintf(vin, sizeof vin, "LVECTR%011u", (unsigned)(checked_blocks * 100 + checked_events));
        memcpy(f->vin, vin, 17);
        vem_pgrows_t r = {0};
        vem_pgrows_frame(&r, f, INT64_C(1709597352) * 1000000);
        vem_pgbatch_t b = s_batch_of(&r);
        char err[512];
        ck_assert_msg(vem_pgwriter_write(w, &b, NULL, err, sizeof err) == VEM_PGW_OK, "%s: %s",
                      name, err);
        json_t *blocks = json_object_get(expect, "blocks");
        size_t i;
        json_t *blk;
        json_array_foreach(blocks, i, blk)
        {
            const char *type = json_string_value(json_object_get(blk, "type"));
            /* hybrid and supplementary fields are stored in the row of the sample they
             * accompany: in these vectors, the sample block just before them */
            bool aux = strcmp(type, "supplementary") == 0 || strcmp(type, "hybrid") == 0;
            char idx[8];
            snprintf(idx, sizeof idx, "%zu", aux ? i - 1 : i);
            const char *sql =
                strcmp(type, "obd") == 0
                    ? "SELECT to_jsonb(s) FROM obd_info s WHERE vin = $1 AND block_idx = $2"
                    : "SELECT to_jsonb(s) FROM obd_samples s WHERE vin = $1 AND block_idx = $2";
            const char *params[] = {vin, idx};
            PGresult *res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
            ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
            ck_assert_msg(PQntuples(res) == 1, "%s block %zu: %d rows", name, i, PQntuples(res));
            json_t *row = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
            PQclear(res);
            if (!aux && strcmp(type, "obd") != 0)
                ck_assert_str_eq(json_string_value(json_object_get(row, "block_type")), type);
            const char *key;
            json_t *want;
            json_object_foreach(blk, key, want)
            {
                if (s_skip(key))
                    continue;
                json_t *got = json_object_get(row, key);
                ck_assert_msg(got != NULL, "%s block %zu: no column %s", name, i, key);
                s_same(name, key, want, got);
            }
            json_decref(row);
            checked_blocks++;
        }
        const char *cmd = json_string_value(json_object_get(expect, "cmd"));
        if (cmd && (strcmp(cmd, "login") == 0 || strcmp(cmd, "removal_alarm") == 0 ||
                    strcmp(cmd, "logout") == 0 || strcmp(cmd, "activation") == 0)) {
            json_t *row = s_query_json(
                conn,
                "SELECT to_jsonb(e) || jsonb_build_object('chip_id', convert_from(chip_id, "
                "'UTF8'), 'pubkey', encode(pubkey, 'hex'), 'time', to_char(event_time AT TIME "
                "ZONE 'Asia/Shanghai', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+08:00\"')) "
                "FROM terminal_events e WHERE vin = $1",
                vin);
            ck_assert_str_eq(json_string_value(json_object_get(row, "cmd")), cmd);
            static const char *const keys[] = {"time", "seq",     "iccid",  "pos_valid", "lon",
                                               "lat",  "chip_id", "pubkey", "act_vin",   NULL};
            for (int k = 0; keys[k]; k++) {
                json_t *want = json_object_get(expect, keys[k]);
                if (want)
                    s_same(name, keys[k], want, json_object_get(row, keys[k]));
            }
            json_decref(row);
            checked_events++;
        }
        vem_pgbatch_free(&b);
        vem_pgrows_free(&r);
        json_decref(v);
    }
    fclose(in);
    free(f);
    /* gb17691 (3 blocks), hj1239 (3), resend (3), sentinels (1) */
    ck_assert_int_ge(checked_blocks, 10);
    /* login, logout, removal alarm, activation, platform login */
    ck_assert_int_ge(checked_events, 5);
    vem_pgwriter_destroy(&w);
    PQfinish(conn);
}
END_TEST

static long long s_count(PGconn *conn, const char *prefix)
{
    json_t *n =
        s_query_json(conn, "SELECT count(*) FROM obd_samples WHERE vin LIKE $1 || '%'", prefix);
    long long v = json_integer_value(n);
    json_decref(n);
    return v;
}

/* Frame i of a small made-up fleet: 5 stream samples, vehicle i % 3. */
static void s_frame(vem_hj1239_frame_t *f, const char *prefix, unsigned i, int64_t t0)
{
    memset(f, 0, sizeof *f);
    f->cmd = VEM_HJ1239_CMD_REALTIME;
    f->layout = VEM_HJ1239_LAYOUT_BLOCK_TIME;
    f->has_time = true;
    char vin[18];
    snprintf(vin, sizeof vin, "%s%0*u", prefix, (int)(17 - strlen(prefix)), i % 3);
    memcpy(f->vin, vin, 17);
    f->time = t0 + i * 5 + 4;
    f->seq = (uint16_t)i;
    f->nblocks = 5;
    for (unsigned k = 0; k < 5; k++) {
        f->blocks[k].type = VEM_HJ1239_BLOCK_STREAM;
        f->blocks[k].time = t0 + i * 5 + k;
        f->blocks[k].raw[VEM_HJ1239_F_SPEED] = 256 * (i + k);
        f->blocks[k].novalue = vem_hj1239_novalue(&f->blocks[k]);
    }
}

/* The rows of frames from .. to - 1 of s_frame's fleet, received at t0. */
/* The rows of one frame, received at received_s. */
static vem_pgbatch_t s_frame_batch(const vem_hj1239_frame_t *f, int64_t received_s)
{
    vem_pgrows_t r = {0};
    vem_pgrows_frame(&r, f, received_s * 1000000);
    vem_pgbatch_t b = s_batch_of(&r);
    vem_pgrows_free(&r);
    return b;
}

static vem_pgbatch_t s_frames(const char *prefix, unsigned from, unsigned to, int64_t t0)
{
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t r = {0};
    for (unsigned i = from; i < to; i++) {
        s_frame(f, prefix, i, t0);
        vem_pgrows_frame(&r, f, t0 * 1000000);
    }
    vem_pgbatch_t b = s_batch_of(&r);
    vem_pgrows_free(&r);
    free(f);
    return b;
}

static vem_pgw_stats_t s_write_frames(vem_pgwriter_t *w, const char *prefix, unsigned from,
                                      unsigned to, int64_t t0)
{
    vem_pgbatch_t b = s_frames(prefix, from, to, t0);
    vem_pgw_stats_t st;
    char err[512];
    ck_assert_msg(vem_pgwriter_write(w, &b, &st, err, sizeof err) == VEM_PGW_OK, "%s", err);
    vem_pgbatch_free(&b);
    return st;
}

START_TEST(same_batch_twice_is_stored_once)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = s_writer();
    int64_t t0 = 1700000000; /* 2023-11-15: a day with no partition yet */
    vem_pgw_stats_t st = s_write_frames(w, "LDUPAB", 0, 40, t0);
    ck_assert_uint_eq(st.inserted[VEM_PGROWS_SAMPLES], 200);
    ck_assert_uint_gt(st.partitions_created, 0);
    ck_assert_int_eq(s_count(conn, "LDUPAB"), 200);
    st = s_write_frames(w, "LDUPAB", 0, 40, t0);
    ck_assert_uint_eq(st.inserted[VEM_PGROWS_SAMPLES], 0);
    ck_assert_uint_eq(st.duplicates[VEM_PGROWS_SAMPLES], 200);
    ck_assert_int_eq(s_count(conn, "LDUPAB"), 200);
    /* frames 30..59: 10 already stored, 20 new -> 100 new rows, 50 duplicates */
    st = s_write_frames(w, "LDUPAB", 30, 60, t0);
    ck_assert_uint_eq(st.inserted[VEM_PGROWS_SAMPLES], 100);
    ck_assert_uint_eq(st.duplicates[VEM_PGROWS_SAMPLES], 50);
    ck_assert_int_eq(s_count(conn, "LDUPAB"), 300);
    vem_pgwriter_destroy(&w);
    PQfinish(conn);
}
END_TEST

/* A dropped connection is RETRY, and the next connect writes the batch. */
START_TEST(lost_connection_is_retry)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = s_writer();
    PGconn *mine = vem_pgwriter_conn(w);
    char spid[16];
    snprintf(spid, sizeof spid, "%d", PQbackendPID(mine));
    json_t *killed = s_query_json(conn, "SELECT to_jsonb(pg_terminate_backend($1::int))", spid);
    ck_assert(json_is_true(killed));
    json_decref(killed);
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    s_frame(f, "LRETRY", 0, 1700100000);
    vem_pgbatch_t b = s_frame_batch(f, 0);
    char err[512];
    ck_assert_int_eq(vem_pgwriter_write(w, &b, NULL, err, sizeof err), VEM_PGW_RETRY);
    ck_assert_int_eq(vem_pgwriter_connect(w, 1, err, sizeof err), 0);
    ck_assert_int_eq(vem_pgwriter_write(w, &b, NULL, err, sizeof err), VEM_PGW_OK);
    ck_assert_int_eq(s_count(conn, "LRETRY"), 5);
    vem_pgbatch_free(&b);
    free(f);
    vem_pgwriter_destroy(&w);
    PQfinish(conn);
}
END_TEST

/* The vin's daily_completeness row (day, received, expected, pct, resent; caller decrefs),
 * after checking its received and expected samples and its percentage. */
static json_t *s_completeness(PGconn *conn, const char *vin, long long received, long long expected,
                              double pct)
{
    json_t *row = s_query_json(
        conn,
        "SELECT jsonb_build_object('day', day, 'received', received_samples, 'expected', "
        "expected_samples, 'pct', completeness_pct, 'resent', resent_samples) FROM "
        "daily_completeness WHERE vin = $1",
        vin);
    ck_assert_int_eq(json_integer_value(json_object_get(row, "received")), received);
    ck_assert_int_eq(json_integer_value(json_object_get(row, "expected")), expected);
    ck_assert_double_eq(json_number_value(json_object_get(row, "pct")), pct);
    return row;
}

/* The completeness view, worked by hand: vehicle 0 of s_frame's fleet gets frames 0, 3, ..., 39
 * (14 frames of 5 one-second samples) spanning t0 .. t0 + 5 * 39 + 4: 70 of 200 seconds. */
START_TEST(daily_completeness_by_hand)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = s_writer();
    int64_t t0 = 1700000000; /* 2023-11-15 06:13:20 Beijing: the 200 s stay in that day */
    s_write_frames(w, "LCMPLT", 0, 40, t0);
    json_t *row = s_completeness(conn, "LCMPLT00000000000", 70, 200, 35.0);
    ck_assert_str_eq(json_string_value(json_object_get(row, "day")), "2023-11-15");
    ck_assert_int_eq(json_integer_value(json_object_get(row, "resent")), 0);
    json_decref(row);
    row = s_query_json(conn,
                       "SELECT jsonb_build_object('samples', samples, 'max_speed', max_speed_kmh) "
                       "FROM vehicle_history WHERE vin = $1",
                       "LCMPLT00000000000");
    ck_assert_int_eq(json_integer_value(json_object_get(row, "samples")), 70);
    /* speed raw 256 * (i + k): the fastest is frame 39, sample 4: 43 km/h */
    ck_assert_double_eq(json_number_value(json_object_get(row, "max_speed")), 43.0);
    json_decref(row);
    vem_pgwriter_destroy(&w);
    PQfinish(conn);
}
END_TEST

/* Completeness over engine-running seconds (0014): vehicle 0 drives the 200 s of
 * daily_completeness_by_hand twice, an hour apart, the odometer still (0 km) across the stop:
 * two trips of 200 s, 70 samples each, so 140 of 400 seconds (35 %), not 140 of the 3,800 s
 * from the first sample to the last. A GB 17691 frame of the same day, 5 samples stored under
 * its one time, counts 5 samples over 5 seconds (its rule times are that time minus the
 * samples after each), not one. */
START_TEST(daily_completeness_counts_running_seconds)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = s_writer();
    int64_t t0 = 1700000000; /* 2023-11-15 06:13:20 Beijing */
    s_write_frames(w, "LCMPLU", 0, 40, t0);
    s_write_frames(w, "LCMPLU", 0, 40, t0 + 3600);
    json_decref(s_completeness(conn, "LCMPLU00000000000", 140, 400, 35.0));

    vem_hj1239_frame_t *f = malloc(sizeof *f);
    s_frame(f, "LCMPLV", 0, t0);
    f->layout = 0; /* GB 17691: the blocks carry the frame's time */
    for (unsigned k = 0; k < 5; k++)
        f->blocks[k].time = f->time;
    vem_pgbatch_t b = s_frame_batch(f, t0);
    char err[512];
    ck_assert_int_eq(vem_pgwriter_write(w, &b, NULL, err, sizeof err), VEM_PGW_OK);
    json_decref(s_completeness(conn, "LCMPLV00000000000", 5, 5, 100.0));
    vem_pgbatch_free(&b);
    free(f);
    vem_pgwriter_destroy(&w);
    PQfinish(conn);
}
END_TEST

static void s_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
}

static long long s_count_sql(PGconn *conn, const char *sql, const char *param)
{
    json_t *n = s_query_json(conn, sql, param);
    long long v = json_integer_value(n);
    json_decref(n);
    return v;
}

/* Drives the operation in progress as the sink's poll loop would: step, poll what it names,
 * step again. *slowest gets the longest single vem_pgwriter_step call (ms). */
static vem_pgw_result_t s_drive(vem_pgwriter_t *w, vem_pgw_stats_t *st, char *err, size_t errlen,
                                int64_t *slowest)
{
    *slowest = 0;
    ck_assert(vem_pgwriter_busy(w));
    for (;;) {
        int fd = -1;
        short events = 0;
        int64_t a = vem_mono_ms();
        vem_pgw_result_t r = vem_pgwriter_step(w, &fd, &events, st, err, errlen);
        int64_t took = vem_mono_ms() - a;
        if (took > *slowest)
            *slowest = took;
        if (r != VEM_PGW_PENDING) {
            ck_assert(!vem_pgwriter_busy(w));
            return r;
        }
        ck_assert_int_ge(fd, 0);
        ck_assert(events & (POLLIN | POLLOUT));
        struct pollfd p = {.fd = fd, .events = events};
        poll(&p, 1, vem_pgwriter_timeout_ms(w));
    }
}

/* Creates the partitions of the batch's days (an empty write), so a write meets what a test
 * sets up at its COPY rather than at partition creation. */
static void s_partitions_for(vem_pgwriter_t *w, const vem_pgbatch_t *b)
{
    vem_pgbatch_t days = {.days = b->days, .ndays = b->ndays};
    char err[512];
    ck_assert_msg(vem_pgwriter_write(w, &days, NULL, err, sizeof err) == VEM_PGW_OK, "%s", err);
}

/* A CHECK the rows of two frames violate: the 8 other frames (40 samples) are stored, the two
 * become quarantine rows with the server's message, and the batch commits. (Before, a
 * check_violation was "retry", so the sink retried such a batch for ever.) */
START_TEST(refused_rows_are_quarantined_and_the_rest_stored)
{
    PGconn *conn = s_pg();
    s_exec(conn, "ALTER TABLE obd_frames ADD CONSTRAINT it_refuse_seq "
                 "CHECK (vin NOT LIKE 'LREFUS%' OR frame_seq NOT IN (3, 7))");
    vem_pgwriter_t *w = s_writer();
    int64_t t0 = 1700200000;
    /* received three days after the samples: the quarantine rows need partitions of a day
     * the batch does not name, which the write creates in its transaction */
    int64_t received = t0 + 3 * 86400;
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t r = {0};
    for (unsigned i = 0; i < 10; i++) {
        s_frame(f, "LREFUS", i, t0);
        vem_pgrows_frame(&r, f, received * 1000000);
    }
    free(f);
    vem_pgbatch_t b = s_batch_of(&r);
    vem_pgrows_free(&r);
    ck_assert_uint_eq(b.nrows[VEM_PGROWS_SAMPLES], 10); /* frames of 5 samples */
    vem_pgw_stats_t st;
    char err[512];
    ck_assert_msg(vem_pgwriter_write(w, &b, &st, err, sizeof err) == VEM_PGW_OK, "%s", err);
    ck_assert_uint_eq(st.inserted[VEM_PGROWS_SAMPLES], 40);
    ck_assert_uint_eq(st.refused[VEM_PGROWS_SAMPLES], 10);
    ck_assert_uint_eq(st.inserted[VEM_PGROWS_QUARANTINE], 2);
    ck_assert_int_eq(s_count(conn, "LREFUS"), 40);
    /* the missing are frame 3's samples (vehicle 0) and frame 7's (vehicle 1) */
    char when[64];
    snprintf(when, sizeof when, "%lld", (long long)t0);
    ck_assert_int_eq(s_count_sql(conn,
                                 "SELECT count(*) FROM obd_samples WHERE (vin, sample_time) IN "
                                 "(('LREFUS00000000000', to_timestamp($1::bigint + 16)), "
                                 "('LREFUS00000000001', to_timestamp($1::bigint + 39)))",
                                 when),
                     0);
    snprintf(when, sizeof when, "%lld", (long long)received);
    ck_assert_int_eq(s_count_sql(conn,
                                 "SELECT count(*) FROM quarantine WHERE vin LIKE 'LREFUS%' "
                                 "AND error_class = 'refused' AND source = 'sink' "
                                 "AND detail LIKE 'obd_frames: ERROR 23514: %it_refuse_seq%' "
                                 "AND received_at = to_timestamp($1::bigint) AND spool_seq < 0 "
                                 /* raw is the row: field count (13), the sample count (int2 5),
                                  * the packed record length (int2 32), the length of the VIN, the
                                  * VIN */
                                 "AND substring(raw from 1 for 18) = "
                                 "'\\x000d00000002000500000002002000000011'::bytea "
                                 "AND substring(raw from 19 for 17) = convert_to(vin, 'UTF8')",
                                 when),
                     2);
    /* the same batch again (a replay): nothing new, not even quarantine rows */
    ck_assert_msg(vem_pgwriter_write(w, &b, &st, err, sizeof err) == VEM_PGW_OK, "%s", err);
    ck_assert_uint_eq(st.inserted[VEM_PGROWS_SAMPLES], 0);
    ck_assert_uint_eq(st.duplicates[VEM_PGROWS_SAMPLES], 40);
    ck_assert_uint_eq(st.refused[VEM_PGROWS_SAMPLES], 10);
    ck_assert_uint_eq(st.inserted[VEM_PGROWS_QUARANTINE], 0);
    ck_assert_uint_eq(st.duplicates[VEM_PGROWS_QUARANTINE], 2);
    ck_assert_int_eq(s_count(conn, "LREFUS"), 40);
    ck_assert_int_eq(
        s_count_sql(conn, "SELECT count(*) FROM quarantine WHERE vin LIKE $1 || '%'", "LREFUS"), 2);
    s_exec(conn, "ALTER TABLE obd_frames DROP CONSTRAINT it_refuse_seq");
    vem_pgbatch_free(&b);
    vem_pgwriter_destroy(&w);
    PQfinish(conn);
}
END_TEST

/* A row the server cannot read (a data exception, class 22: text that is not UTF-8) is
 * quarantined alike, next to a good row of the same table and rows of another table. */
START_TEST(unreadable_row_is_quarantined)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = s_writer();
    int64_t t0 = 1700400000;
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    vem_pgrows_t r = {0};
    for (unsigned v = 0; v < 2; v++) {
        memset(f, 0, sizeof *f);
        f->cmd = VEM_HJ1239_CMD_LOGIN;
        f->has_time = true;
        f->time = t0 + v;
        f->seq = 1;
        memcpy(f->vin, v ? "LBADTX00000000001" : "LBADTX00000000000", 17);
        memcpy(f->iccid, "89860000000000000042", 20);
        vem_pgrows_frame(&r, f, t0 * 1000000);
    }
    s_frame(f, "LBADTX", 0, t0);
    vem_pgrows_frame(&r, f, t0 * 1000000);
    free(f);
    vem_pgbatch_t b = s_batch_of(&r);
    vem_pgrows_free(&r);
    /* the second login's ICCID gets a byte that is not UTF-8 */
    vem_pgrows_buf_t *ev = &b.rows[VEM_PGROWS_EVENTS];
    uint8_t *second = memmem(ev->data + ev->len / 2, ev->len / 2, "8986", 4);
    ck_assert_ptr_nonnull(second);
    second[0] = 0xFF;
    vem_pgw_stats_t st;
    char err[512];
    ck_assert_msg(vem_pgwriter_write(w, &b, &st, err, sizeof err) == VEM_PGW_OK, "%s", err);
    ck_assert_uint_eq(st.inserted[VEM_PGROWS_SAMPLES], 5);
    ck_assert_uint_eq(st.inserted[VEM_PGROWS_EVENTS], 1);
    ck_assert_uint_eq(st.refused[VEM_PGROWS_EVENTS], 1);
    ck_assert_uint_eq(st.inserted[VEM_PGROWS_QUARANTINE], 1);
    ck_assert_int_eq(s_count_sql(conn, "SELECT count(*) FROM terminal_events WHERE vin = $1",
                                 "LBADTX00000000000"),
                     1);
    json_t *detail = s_query_json(
        conn, "SELECT to_jsonb(detail) FROM quarantine WHERE vin = $1 AND error_class = 'refused'",
        "LBADTX00000000001");
    const char *text = json_string_value(detail);
    ck_assert_msg(strncmp(text, "terminal_events: ERROR 22021: ", 30) == 0, "%s", text);
    json_decref(detail);
    vem_pgbatch_free(&b);
    vem_pgwriter_destroy(&w);
    PQfinish(conn);
}
END_TEST

/* Another session holds a lock on obd_samples. The write, driven step by step, never blocks
 * the caller; the server gives up at lock_timeout and the write reports RETRY on a connection
 * that stays usable. Once the lock is gone the retry stores the batch, once. */
START_TEST(lock_timeout_is_retry_without_blocking)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = vem_pgwriter_new(vem_test_env("VEM_TEST_PG"));
    vem_pgwriter_set_timeouts(w, 10000, 30000, 300);
    char err[512];
    ck_assert_msg(vem_pgwriter_connect(w, 1, err, sizeof err) == 0, "%s", err);
    vem_pgbatch_t b = s_frames("LLOCKT", 0, 10, 1700500000);
    s_partitions_for(w, &b);
    PGconn *locker = s_pg();
    s_exec(locker, "BEGIN");
    s_exec(locker, "LOCK TABLE obd_samples IN ACCESS EXCLUSIVE MODE");
    ck_assert_int_eq(vem_pgwriter_write_start(w, &b, err, sizeof err), 0);
    vem_pgw_stats_t st;
    int64_t slowest, began = vem_mono_ms();
    ck_assert_int_eq(s_drive(w, &st, err, sizeof err, &slowest), VEM_PGW_RETRY);
    int64_t took = vem_mono_ms() - began;
    ck_assert_msg(strstr(err, "55P03") && strstr(err, "lock timeout"), "%s", err);
    ck_assert_msg(slowest < 1000, "a step took %lld ms", (long long)slowest);
    ck_assert_msg(took >= 250 && took < 5000, "gave up after %lld ms", (long long)took);
    ck_assert(vem_pgwriter_connected(w));
    s_exec(locker, "ROLLBACK");
    ck_assert_int_eq(vem_pgwriter_write_start(w, &b, err, sizeof err), 0);
    ck_assert_msg(s_drive(w, &st, err, sizeof err, &slowest) == VEM_PGW_OK, "%s", err);
    ck_assert_uint_eq(st.inserted[VEM_PGROWS_SAMPLES], 50);
    ck_assert_int_eq(s_count(conn, "LLOCKT"), 50);
    ck_assert_int_eq(vem_pgwriter_write(w, &b, &st, err, sizeof err), VEM_PGW_OK);
    ck_assert_uint_eq(st.duplicates[VEM_PGROWS_SAMPLES], 50);
    ck_assert_int_eq(s_count(conn, "LLOCKT"), 50);
    vem_pgbatch_free(&b);
    vem_pgwriter_destroy(&w);
    PQfinish(locker);
    PQfinish(conn);
}
END_TEST

/* Without server-side limits, a statement that waits for ever meets the writer's deadline:
 * RETRY, the connection closed, and the statement cancelled on the server, so its backend
 * does not wait for the lock any more. */
START_TEST(deadline_cancels_a_stuck_statement)
{
    PGconn *conn = s_pg();
    vem_pgwriter_t *w = vem_pgwriter_new(vem_test_env("VEM_TEST_PG"));
    vem_pgwriter_set_timeouts(w, 500, 0, 0);
    char err[512];
    ck_assert_msg(vem_pgwriter_connect(w, 1, err, sizeof err) == 0, "%s", err);
    vem_pgbatch_t b = s_frames("LDEADL", 0, 10, 1700600000);
    s_partitions_for(w, &b);
    PGconn *locker = s_pg();
    s_exec(locker, "BEGIN");
    s_exec(locker, "LOCK TABLE obd_samples IN ACCESS EXCLUSIVE MODE");
    ck_assert_int_eq(vem_pgwriter_write_start(w, &b, err, sizeof err), 0);
    int64_t slowest, began = vem_mono_ms();
    ck_assert_int_eq(s_drive(w, NULL, err, sizeof err, &slowest), VEM_PGW_RETRY);
    int64_t took = vem_mono_ms() - began;
    ck_assert_msg(strstr(err, "no answer from PostgreSQL within 500 ms while COPY"), "%s", err);
    ck_assert_msg(slowest < 1000, "a step took %lld ms", (long long)slowest);
    ck_assert_msg(took >= 450 && took < 5000, "gave up after %lld ms", (long long)took);
    ck_assert(!vem_pgwriter_connected(w));
    long long waiting = -1;
    for (int i = 0; i < 50 && waiting != 0; i++) {
        waiting = s_count_sql(conn,
                              "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = "
                              "$1::regclass",
                              "obd_frames");
        if (waiting)
            usleep(100 * 1000);
    }
    ck_assert_int_eq(waiting, 0);
    s_exec(locker, "ROLLBACK");
    ck_assert_int_eq(s_count(conn, "LDEADL"), 0);
    vem_pgbatch_free(&b);
    vem_pgwriter_destroy(&w);
    PQfinish(locker);
    PQfinish(conn);
}
END_TEST

/* A loopback port nothing listens on; with listen_too, something listens there (backlog 1)
 * and never answers. */
static int s_port(bool listen_too, int *sock)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &alen), 0);
    if (listen_too) {
        ck_assert_int_eq(listen(s, 1), 0);
        *sock = s;
    } else {
        close(s);
    }
    return ntohs(a.sin_port);
}

/* Connects to conninfo step by step: the outcome is RETRY with a reason containing why, and no
 * step blocks. */
static void s_connect_fails(const char *conninfo, int deadline_ms, const char *why)
{
    vem_pgwriter_t *w = vem_pgwriter_new(conninfo);
    vem_pgwriter_set_timeouts(w, deadline_ms, 0, 0);
    char err[512];
    ck_assert_int_eq(vem_pgwriter_connect_start(w, 1, err, sizeof err), 0);
    int64_t slowest;
    ck_assert_int_eq(s_drive(w, NULL, err, sizeof err, &slowest), VEM_PGW_RETRY);
    ck_assert_msg(strstr(err, why), "%s: %s", conninfo, err);
    ck_assert_msg(slowest < 1000, "%s: a step took %lld ms", conninfo, (long long)slowest);
    ck_assert(!vem_pgwriter_connected(w));
    vem_pgbatch_t none = {0};
    ck_assert_int_eq(vem_pgwriter_write_start(w, &none, err, sizeof err), -1);
    ck_assert_int_eq(vem_pgwriter_connect(w, 1, err, sizeof err), -1);
    vem_pgwriter_destroy(&w);
}

START_TEST(connect_failures_are_retry_without_blocking)
{
    char conninfo[600];
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=postgres dbname=vem",
             s_port(false, NULL));
    s_connect_fails(conninfo, 5000, "Connection refused");
    /* a server stopped: its socket is gone */
    snprintf(conninfo, sizeof conninfo, "host=%s/no-server user=postgres dbname=vem",
             vem_test_env("VEM_TEST_TMP"));
    s_connect_fails(conninfo, 5000, "No such file or directory");
    /* a server that accepts and never answers: the writer's deadline ends it */
    int listener;
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=postgres dbname=vem",
             s_port(true, &listener));
    int64_t began = vem_mono_ms();
    s_connect_fails(conninfo, 500, "no answer from PostgreSQL within 500 ms while connecting");
    ck_assert_int_ge(vem_mono_ms() - began, 450);
    close(listener);
}
END_TEST

START_TEST(notices_go_to_the_log)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    vem_log_set_stream(out);
    vem_pgwriter_t *w = s_writer();
    PGresult *res =
        PQexec(vem_pgwriter_conn(w), "DO $$ BEGIN RAISE WARNING 'it_pgwrite says hello'; END $$");
    ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    vem_pgwriter_destroy(&w);
    vem_log_set_stream(NULL);
    fclose(out);
    ck_assert_msg(strstr(text, "<4>pg: server WARNING 01000: it_pgwrite says hello\n"), "%s", text);
    free(text);
}
END_TEST

Suite *vem_suite_pgwrite(void);
Suite *vem_suite_pgwrite(void)
{
    Suite *s = suite_create("pgwrite");
    TCase *tc = tcase_create("pgwrite");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, stored_values_match_the_vectors);
    tcase_add_test(tc, same_batch_twice_is_stored_once);
    tcase_add_test(tc, lost_connection_is_retry);
    tcase_add_test(tc, daily_completeness_by_hand);
    tcase_add_test(tc, daily_completeness_counts_running_seconds);
    tcase_add_test(tc, refused_rows_are_quarantined_and_the_rest_stored);
    tcase_add_test(tc, unreadable_row_is_quarantined);
    tcase_add_test(tc, lock_timeout_is_retry_without_blocking);
    tcase_add_test(tc, deadline_cancels_a_stuck_statement);
    tcase_add_test(tc, connect_failures_are_retry_without_blocking);
    tcase_add_test(tc, notices_go_to_the_log);
    suite_add_tcase(s, tc);
    return s;
}
