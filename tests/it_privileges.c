/* it_privileges — least privilege in the schema (schema/0005_privileges.sql), against the real
 * server, each role logging in as a deployment's login role would.
 *
 *   readings_scoped_by_plate_and_colour  two regions' trucks share a plate with different
 *                  colours: each agency sees its own truck's readings (by colour, or by the
 *                  registry's VIN even when the station misread the colour) and none of the
 *                  other's; a reading without a colour, or of an unregistered plate, is seen by
 *                  no agency (administrators see all)
 *   ambiguous_plate_leaves_region_empty  a violation known by a plate that two vehicles carry
 *                  gets no VIN and no region (only administrators see it); with the colour, or
 *                  for a plate one vehicle carries, it gets that vehicle's
 *   ingest_only_adds  vemd's role inserts, but cannot UPDATE, DELETE or TRUNCATE any table;
 *                  verdicts grow only through vem_merge_violations (last_at later, severity
 *                  never lower)
 *   merge_by_input  a verdict is what the latest input's emission says, even a notice after a
 *                  violation (a late compliant reading cut the run), and a turn of stored
 *                  history after an input comes after it; older inputs' emissions merged later
 *                  change nothing, nor does one whose receipt is not known; rows from before
 *                  0016 (no input) merge the old way
 *   admin_cannot_write_bookkeeping  vem_admin reads schema_migrations and partitioned_tables
 *                  but cannot insert, update or delete there
 *   public_schema_closed  no role but the owner creates tables or functions in public, and a
 *                  temporary table cannot stand in for one a SECURITY DEFINER function reads
 *   vemd_as_ingest  vemd itself, logged in as a vem_ingest role, stores roadside readings and
 *                  the violations they make, and merges a longer chain into its verdict; a
 *                  reading of a plate two trucks share goes to the truck of its colour
 *   plate_only_verdict_carries_colour  a roadside violation vemd knows only by plate is
 *                  stored with the readings' colour, so it gets the one truck of that plate and
 *                  colour and its region's agency sees it
 *
 * Expected rows follow from what each test inserts and from the policies' definitions. */
#include "itutil.h"
#include "testutil.h"

#include <check.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* The statement must be refused for want of privilege (SQLSTATE 42501). */
static void s_denied(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_FATAL_ERROR, "%s succeeded", sql);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    ck_assert_msg(state && strcmp(state, "42501") == 0, "%s: %s (%s)", sql, PQerrorMessage(conn),
                  state ? state : "?");
    PQclear(res);
}

/* The rows of a one-column query, joined by ',' (caller frees). */
static char *s_list(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    size_t cap = 16;
    for (int i = 0; i < PQntuples(res); i++)
        cap += strlen(PQgetvalue(res, i, 0)) + 1;
    char *out = calloc(1, cap);
    ck_assert_ptr_nonnull(out);
    for (int i = 0; i < PQntuples(res); i++) {
        if (i)
            strcat(out, ",");
        strcat(out, PQgetisnull(res, i, 0) ? "NULL" : PQgetvalue(res, i, 0));
    }
    PQclear(res);
    return out;
}

static void s_expect(PGconn *conn, const char *sql, const char *want)
{
    char *got = s_list(conn, sql);
    ck_assert_msg(strcmp(got, want) == 0, "%s: got [%s], want [%s]", sql, got, want);
    free(got);
}

/* A login role in group (created once). */
static void s_login(PGconn *admin, const char *name, const char *group)
{
    char sql[400];
    snprintf(sql, sizeof sql,
             "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN "
             "CREATE ROLE %s LOGIN IN ROLE %s; END IF; END $$",
             name, name, group);
    vem_it_sql(admin, sql);
}

/* Two regions (120101 and 130101) with an agency each, and today's partitions. */
static PGconn *s_setup(void)
{
    PGconn *admin = vem_it_pg_as(NULL);
    s_login(admin, "priv_agency_a", "vem_agency");
    s_login(admin, "priv_agency_b", "vem_agency");
    s_login(admin, "priv_ingest", "vem_ingest");
    s_login(admin, "priv_admin", "vem_admin");
    vem_it_sql(admin, "INSERT INTO agency_regions VALUES ('priv_agency_a', '120101'), "
                      "('priv_agency_b', '130101') ON CONFLICT DO NOTHING");
    vem_it_sql(admin, "SELECT vem_ensure_partitions(current_date - 2, current_date + 1)");
    return admin;
}

START_TEST(readings_scoped_by_plate_and_colour)
{
    PGconn *admin = s_setup();
    /* one plate, two trucks: a yellow plate in region A, a blue one in region B */
    vem_it_sql(admin, "INSERT INTO vehicles (vin, plate, plate_color, region_code) VALUES "
                      "('LPRIVA00000000001', '津P00001', 'yellow', '120101'), "
                      "('LPRIVB00000000001', '津P00001', 'blue', '130101') ON CONFLICT DO NOTHING");
    vem_it_sql(admin, "INSERT INTO rsd_readings (station_id, reading_id, time, received_at, plate, "
                      "plate_color, vin) VALUES "
                      "('PRIV', 'yellow', now(), now(), '津P00001', 'yellow', NULL), "
                      "('PRIV', 'blue', now(), now(), '津P00001', 'blue', NULL), "
                      "('PRIV', 'no-colour', now(), now(), '津P00001', NULL, NULL), "
                      "('PRIV', 'vin-a-misread', now(), now(), '津P00001', 'blue', "
                      " 'LPRIVA00000000001'), "
                      "('PRIV', 'unregistered', now(), now(), '津P09999', 'yellow', NULL)");
    const char *q = "SELECT reading_id FROM rsd_readings WHERE station_id = 'PRIV' ORDER BY 1";
    PGconn *a = vem_it_pg_as("priv_agency_a"), *b = vem_it_pg_as("priv_agency_b"),
           *op = vem_it_pg_as("priv_admin");
    s_expect(a, q, "vin-a-misread,yellow");
    s_expect(b, q, "blue");
    s_expect(op, q, "blue,no-colour,unregistered,vin-a-misread,yellow");
    /* the scope tells an agency no other region's plate: the region lookup is not its to call,
     * and the count it may call says nothing of regions */
    PGresult *res = PQexec(a, "SELECT vem_plate_region('津P00001', 'blue')");
    ck_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42501");
    PQclear(res);
    s_expect(a, "SELECT vem_plate_count('津P00001', 'blue')", "1");
    PQfinish(a);
    PQfinish(b);
    PQfinish(op);
    PQfinish(admin);
}
END_TEST

START_TEST(ambiguous_plate_leaves_region_empty)
{
    PGconn *admin = s_setup();
    vem_it_sql(admin,
               "INSERT INTO vehicles (vin, plate, plate_color, region_code) VALUES "
               "('LPRIVA00000000002', '津Q00001', 'yellow', '120101'), "
               "('LPRIVB00000000002', '津Q00001', 'blue', '130101'), "
               "('LPRIVA00000000003', '津Q00002', 'yellow', '120101') ON CONFLICT DO NOTHING");
    /* vemd's way in: verdicts merged by the schema's function, as vem_ingest */
    PGconn *ingest = vem_it_pg_as("priv_ingest");
    vem_it_sql(ingest,
               "SELECT vem_merge_violations('["
               "{\"violation_id\": \"priv-ambiguous\", \"rule\": \"rsd.no_exceed\", \"clause\": "
               "\"HJ 845\", \"plate\": \"津Q00001\", \"first_at\": \"2026-11-01T08:00:00+08:00\", "
               "\"last_at\": \"2026-11-02T08:00:00+08:00\", \"evidence\": {}, \"severity\": "
               "\"violation\"},"
               "{\"violation_id\": \"priv-coloured\", \"rule\": \"rsd.no_exceed\", \"clause\": "
               "\"HJ 845\", \"plate\": \"津Q00001\", \"plate_color\": \"blue\", \"first_at\": "
               "\"2026-11-01T08:00:00+08:00\", \"last_at\": \"2026-11-02T08:00:00+08:00\", "
               "\"evidence\": {}, \"severity\": \"violation\"},"
               "{\"violation_id\": \"priv-unique\", \"rule\": \"rsd.no_exceed\", \"clause\": "
               "\"HJ 845\", \"plate\": \"津Q00002\", \"first_at\": \"2026-11-01T08:00:00+08:00\", "
               "\"last_at\": \"2026-11-02T08:00:00+08:00\", \"evidence\": {}, \"severity\": "
               "\"violation\"}]'::jsonb)");
    PQfinish(ingest);
    s_expect(
        admin,
        "SELECT violation_id || ':' || coalesce(vin, '-') || ':' || coalesce(region_code, '-') "
        "FROM violations WHERE violation_id LIKE 'priv-%' ORDER BY 1",
        "priv-ambiguous:-:-,priv-coloured:LPRIVB00000000002:130101,"
        "priv-unique:LPRIVA00000000003:120101");
    const char *q =
        "SELECT violation_id FROM violations WHERE violation_id LIKE 'priv-%' ORDER BY 1";
    PGconn *a = vem_it_pg_as("priv_agency_a"), *b = vem_it_pg_as("priv_agency_b"),
           *op = vem_it_pg_as("priv_admin");
    s_expect(a, q, "priv-unique");
    s_expect(b, q, "priv-coloured");
    s_expect(op, q, "priv-ambiguous,priv-coloured,priv-unique");
    PQfinish(a);
    PQfinish(b);
    PQfinish(op);
    PQfinish(admin);
}
END_TEST

START_TEST(ingest_only_adds)
{
    PGconn *admin = s_setup();
    PGconn *ingest = vem_it_pg_as("priv_ingest");
    vem_it_sql(ingest,
               "INSERT INTO rsd_readings (station_id, reading_id, time, received_at, plate) "
               "VALUES ('PRIV-I', 'r1', now(), now(), '津I00001')");
    vem_it_sql(ingest,
               "INSERT INTO violations (violation_id, rule, clause, plate, first_at, last_at, "
               "evidence, severity) VALUES ('priv-grow', 'rsd.no_exceed', 'HJ 845', '津I00001', "
               "'2026-11-01 08:00+08', '2026-11-01 09:00+08', '{}', 'violation')");
    s_denied(ingest, "UPDATE violations SET severity = 'notice' WHERE violation_id = 'priv-grow'");
    s_denied(ingest, "UPDATE violations SET closed_at = now()");
    s_denied(ingest, "DELETE FROM violations");
    s_denied(ingest, "UPDATE rsd_readings SET no_ppm = 0");
    s_denied(ingest, "DELETE FROM rsd_readings");
    s_denied(ingest, "DELETE FROM obd_frames");
    s_denied(ingest, "DELETE FROM obd_samples_rows");
    s_denied(ingest, "UPDATE vehicles SET region_code = '120101'");
    s_denied(ingest, "TRUNCATE quarantine");
    s_denied(ingest, "DELETE FROM partitioned_tables");
    /* a later, lower emission of the verdict: last_at moves on, severity stays */
    vem_it_sql(ingest,
               "SELECT vem_merge_violations('[{\"violation_id\": \"priv-grow\", \"rule\": "
               "\"rsd.no_exceed\", \"clause\": \"HJ 845\", \"plate\": \"津I00001\", "
               "\"first_at\": \"2026-11-01T08:00:00+08:00\", \"last_at\": "
               "\"2026-11-03T08:00:00+08:00\", \"measured\": 2100, \"evidence\": {\"n\": 3}, "
               "\"severity\": \"notice\"}]'::jsonb)");
    s_expect(admin,
             "SELECT severity || ' ' || to_char(last_at AT TIME ZONE 'Asia/Shanghai', "
             "'YYYY-MM-DD HH24:MI') || ' ' || measured || ' ' || evidence::text || ' ' || "
             "to_char(first_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') "
             "FROM violations WHERE violation_id = 'priv-grow'",
             "violation 2026-11-03 08:00 2100 {\"n\": 3} 2026-11-01 08:00");
    /* an older emission merged after it (another sink lane, a replay) changes nothing */
    vem_it_sql(ingest,
               "SELECT vem_merge_violations('[{\"violation_id\": \"priv-grow\", \"rule\": "
               "\"rsd.no_exceed\", \"clause\": \"HJ 845\", \"plate\": \"津I00001\", "
               "\"first_at\": \"2026-11-01T08:00:00+08:00\", \"last_at\": "
               "\"2026-11-02T08:00:00+08:00\", \"measured\": 1900, \"evidence\": {\"n\": 2}, "
               "\"severity\": \"violation\"}]'::jsonb)");
    s_expect(admin,
             "SELECT severity || ' ' || to_char(last_at AT TIME ZONE 'Asia/Shanghai', "
             "'YYYY-MM-DD HH24:MI') || ' ' || measured || ' ' || evidence::text || ' ' || "
             "to_char(first_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') "
             "FROM violations WHERE violation_id = 'priv-grow'",
             "violation 2026-11-03 08:00 2100 {\"n\": 3} 2026-11-01 08:00");
    PQfinish(ingest);
    PQfinish(admin);
}
END_TEST

/* One emission of verdict id, as the sink sends it: severity, last_at (a day of November 2026,
 * 08:00 Beijing time), evidence {"n": n}, and the input that made it (received on day rx at
 * 09:00, spool_seq seq; rx 0: receipt not known; seq < 0: no input, as a row stored before 0016)
 * and its place after it (emission). */
static void s_merge_after(PGconn *ingest, const char *id, const char *severity, int last_day, int n,
                          int rx, int seq, int emission)
{
    char received[64] = "null", spool[24] = "null";
    if (rx)
        snprintf(received, sizeof received, "\"2026-11-%02dT09:00:00+08:00\"", rx);
    if (seq >= 0)
        snprintf(spool, sizeof spool, "%d", seq);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT vem_merge_violations('[{\"violation_id\": \"%s\", \"rule\": "
             "\"rsd.no_exceed\", \"clause\": \"HJ 845\", \"plate\": \"津I00002\", "
             "\"first_at\": \"2026-11-01T08:00:00+08:00\", \"last_at\": "
             "\"2026-11-%02dT08:00:00+08:00\", \"evidence\": {\"n\": %d}, \"severity\": "
             "\"%s\", \"received_at\": %s, \"spool_seq\": %s, \"emission\": %d}]'::jsonb)",
             id, last_day, n, severity, received, spool, emission);
    vem_it_sql(ingest, sql);
}

/* The same, a verdict of the input itself. */
static void s_merge(PGconn *ingest, const char *id, const char *severity, int last_day, int n,
                    int rx, int seq)
{
    s_merge_after(ingest, id, severity, last_day, n, rx, seq, 0);
}

static const char s_merged[] =
    "SELECT severity || ' ' || to_char(last_at AT TIME ZONE 'Asia/Shanghai', 'DD') || ' ' || "
    "evidence::text || ' ' || coalesce(spool_seq::text, '-') || ' ' || "
    "coalesce(received_at IS NOT NULL, false) FROM violations "
    "WHERE violation_id = '%s'";

static void s_expect_merged(PGconn *admin, const char *id, const char *want)
{
    char sql[512];
    snprintf(sql, sizeof sql, s_merged, id);
    s_expect(admin, sql, want);
}

/* schema/0016_merge_by_input.sql: the emission of the latest input wins, even when it says less
 * (a late compliant reading cut the run: a notice on the reading below the cut, rules.md
 * "consecutive means no valid compliant reading in between"); an older input's emission merged
 * later (a replay, the other sink lane) changes nothing; within one input the later last_at
 * wins; a row stored before 0016 (no input) is merged the old way. */
START_TEST(merge_by_input)
{
    PGconn *admin = s_setup();
    PGconn *ingest = vem_it_pg_as("priv_ingest");
    /* exceedances on Nov 1 and Nov 2, judged on their days: a violation on both */
    s_merge(ingest, "priv-cut", "notice", 1, 1, 1, 10);
    s_merge(ingest, "priv-cut", "violation", 2, 2, 2, 20);
    s_expect_merged(admin, "priv-cut", "violation 02 {\"n\": 2} 20 true");
    /* a compliant reading of Nov 1 noon comes on Nov 5: the run is Nov 1 alone again */
    s_merge(ingest, "priv-cut", "notice", 1, 1, 5, 50);
    s_expect_merged(admin, "priv-cut", "notice 01 {\"n\": 1} 50 true");
    /* a replay of the Nov 2 input merged after it: no change */
    s_merge(ingest, "priv-cut", "violation", 2, 2, 2, 20);
    s_expect_merged(admin, "priv-cut", "notice 01 {\"n\": 1} 50 true");
    /* the same receipt time, a later input (two inputs stamped in one microsecond) */
    s_merge(ingest, "priv-cut", "violation", 3, 2, 5, 51);
    s_expect_merged(admin, "priv-cut", "violation 03 {\"n\": 2} 51 true");
    /* two emissions of one input in one batch: the later last_at */
    vem_it_sql(ingest,
               "SELECT vem_merge_violations('["
               "{\"violation_id\": \"priv-batch\", \"rule\": \"rsd.no_exceed\", \"clause\": "
               "\"HJ 845\", \"plate\": \"津I00002\", \"first_at\": "
               "\"2026-11-01T08:00:00+08:00\", \"last_at\": \"2026-11-06T08:00:00+08:00\", "
               "\"evidence\": {\"n\": 2}, \"severity\": \"violation\", \"received_at\": "
               "\"2026-11-06T09:00:00+08:00\", \"spool_seq\": 60},"
               "{\"violation_id\": \"priv-batch\", \"rule\": \"rsd.no_exceed\", \"clause\": "
               "\"HJ 845\", \"plate\": \"津I00002\", \"first_at\": "
               "\"2026-11-01T08:00:00+08:00\", \"last_at\": \"2026-11-01T08:00:00+08:00\", "
               "\"evidence\": {\"n\": 1}, \"severity\": \"notice\", \"received_at\": "
               "\"2026-11-06T09:00:00+08:00\", \"spool_seq\": 60}]'::jsonb)");
    s_expect_merged(admin, "priv-batch", "violation 06 {\"n\": 2} 60 true");
    /* a turn of stored history after an input (a resumed load brought the compliant reading):
     * after that input's own verdicts, whatever the last_at */
    s_merge(ingest, "priv-turn", "violation", 9, 2, 9, 90);
    s_merge_after(ingest, "priv-turn", "notice", 5, 1, 9, 90, 1);
    s_expect_merged(admin, "priv-turn", "notice 05 {\"n\": 1} 90 true");
    s_merge(ingest, "priv-turn", "violation", 9, 2, 9, 90); /* a replay of the input */
    s_expect_merged(admin, "priv-turn", "notice 05 {\"n\": 1} 90 true");
    /* an emission whose input is not known (before a restarted worker judged an input) never
     * replaces one whose input is, nor takes its input away */
    s_merge(ingest, "priv-turn", "violation", 12, 2, 0, 0);
    s_expect_merged(admin, "priv-turn", "notice 05 {\"n\": 1} 90 true");
    /* a row made by an emission whose receipt was not known is older than any known one */
    s_merge(ingest, "priv-unknown", "violation", 5, 2, 0, 5);
    s_merge(ingest, "priv-unknown", "notice", 4, 1, 7, 70);
    s_expect_merged(admin, "priv-unknown", "notice 04 {\"n\": 1} 70 true");
    /* a row without its input (stored before 0016): the old merge, severity never lower */
    s_merge(ingest, "priv-old", "violation", 3, 2, 0, -1);
    s_merge(ingest, "priv-old", "notice", 1, 1, 7, 70);
    s_expect_merged(admin, "priv-old", "violation 03 {\"n\": 2} - false");
    PQfinish(ingest);
    PQfinish(admin);
}
END_TEST

START_TEST(admin_cannot_write_bookkeeping)
{
    PGconn *admin = s_setup();
    PGconn *op = vem_it_pg_as("priv_admin");
    s_expect(op, "SELECT count(*) > 0 FROM schema_migrations WHERE version = '0005'", "t");
    s_expect(op, "SELECT count(*) FROM partitioned_tables WHERE table_name = 'obd_frames'", "1");
    s_denied(op, "INSERT INTO schema_migrations (version, name, sha256) VALUES ('9999', 'x', 'y')");
    s_denied(op, "UPDATE schema_migrations SET sha256 = 'x'");
    s_denied(op, "DELETE FROM schema_migrations");
    s_denied(op, "INSERT INTO partitioned_tables VALUES ('vehicles')");
    s_denied(op, "UPDATE partitioned_tables SET table_name = 'vehicles'");
    s_denied(op, "DELETE FROM partitioned_tables");
    s_denied(op, "TRUNCATE schema_migrations");
    PQfinish(op);
    PQfinish(admin);
}
END_TEST

START_TEST(public_schema_closed)
{
    PGconn *admin = s_setup();
    const char *roles[] = {"priv_admin", "priv_ingest", "priv_agency_a"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        PGconn *c = vem_it_pg_as(roles[i]);
        s_denied(c, "CREATE TABLE public.priv_planted (a int)");
        s_denied(c, "CREATE FUNCTION public.vem_my_regions(int) RETURNS int LANGUAGE sql AS "
                    "'SELECT 1'");
        s_denied(c, "CREATE VIEW public.priv_view AS SELECT 1");
        PQfinish(c);
    }
    /* a temporary partitioned_tables naming the registry: the definer function reads the real
     * one, so no partition of vehicles is attempted */
    PGconn *ingest = vem_it_pg_as("priv_ingest");
    vem_it_sql(ingest, "CREATE TEMP TABLE partitioned_tables (table_name text)");
    vem_it_sql(ingest, "INSERT INTO pg_temp.partitioned_tables VALUES ('vehicles')");
    vem_it_sql(ingest, "SELECT vem_ensure_partitions(current_date, current_date)");
    s_expect(admin, "SELECT count(*) FROM pg_class WHERE relname ~ '^vehicles_p[0-9]{8}$'", "0");
    s_expect(admin,
             "SELECT string_agg(DISTINCT n.nspname, ',') FROM pg_class c JOIN pg_namespace n "
             "ON n.oid = c.relnamespace WHERE c.relname ~ '^obd_frames_p[0-9]{8}$'",
             "public");
    PQfinish(ingest);
    PQfinish(admin);
}
END_TEST

/* ---- vemd itself as vem_ingest -------------------------------------------------------------- */

/* A valid diesel reading (HJ 845 window: 40 km/h, 0.2 m/s2, VSP 4.5, wind 1.5, slope 0.5) of
 * plate in colour by station, at t (epoch s). */
static void s_reading_of(FILE *f, const char *station, const char *plate, const char *color,
                         const char *id, int64_t t, double no_ppm)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(f,
            "{\"version\":1,\"station_id\":\"%s\",\"reading_id\":\"%s\",\"lane\":1,"
            "\"time\":\"%s\",\"plate\":\"%s\",\"plate_color\":\"%s\",\"fuel\":\"diesel\","
            "\"speed_kmh\":40,\"accel_ms2\":0.2,\"vsp_kw_t\":4.5,\"opacity_pct\":8,"
            "\"no_ppm\":%g,\"co2_pct\":10.5,\"wind_ms\":1.5,\"slope_pct\":0.5,\"valid\":true}\n",
            station, id, when, plate, color, no_ppm);
}

static void s_reading(FILE *f, const char *id, int64_t t, double no_ppm)
{
    s_reading_of(f, "PRIV-D", "津D00001", "yellow", id, t, no_ppm);
}

static void s_send(const vem_it_run_t *r, const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "'%s/vemctl' rsd send '%s' --endpoint 'ipc://%s/stations.sock' --quiet >/dev/null",
             vem_test_bin_dir(), path, r->dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void s_await(const vem_it_run_t *r, PGconn *conn, const char *sql, const char *want)
{
    char *got = NULL;
    for (int i = 0; i < 600; i++) {
        free(got);
        got = s_list(conn, sql);
        if (strcmp(got, want) == 0)
            break;
        vem_it_sleep(0.1);
    }
    if (strcmp(got, want) != 0)
        vem_it_show_log(r);
    ck_assert_msg(strcmp(got, want) == 0, "%s: got [%s], want [%s]", sql, got, want);
    free(got);
}

START_TEST(vemd_as_ingest)
{
    PGconn *admin = s_setup();
    /* two trucks share a plate, told apart by its colour */
    vem_it_sql(admin, "INSERT INTO vehicles (vin, plate, plate_color, region_code) VALUES "
                      "('LPRIVR00000000001', '津R00001', 'yellow', '120101'), "
                      "('LPRIVR00000000002', '津R00001', 'blue', '130101') ON CONFLICT DO NOTHING");
    vem_it_run_t r = {.pg_user = "priv_ingest"};
    vem_it_start(&r, "it_privileges");
    for (int i = 0; i < 100 && vem_it_metric_now(&r, "vem_registry_vehicles") < 2; i++)
        vem_it_sleep(0.1);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    int64_t t0 = tv.tv_sec - 2 * 86400;
    char path[600];
    snprintf(path, sizeof path, "%s/two.jsonl", r.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    s_reading(f, "d1", t0, 1800); /* twice over 1500 ppm: a violation (rules.md rsd.no_exceed) */
    s_reading(f, "d2", t0 + 3600, 1900);
    fclose(f);
    s_send(&r, path);
    const char *q = "SELECT count(*) || ' ' || max(severity) || ' ' || "
                    "max(jsonb_array_length(evidence->'readings')) FROM violations "
                    "WHERE plate = '津D00001' AND rule = 'rsd.no_exceed'";
    s_await(&r, admin, q, "1 violation 2");
    /* a third exceedance lengthens the chain: the same verdict, merged, not a second one */
    snprintf(path, sizeof path, "%s/third.jsonl", r.dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    s_reading(f, "d3", t0 + 7200, 2000);
    fclose(f);
    s_send(&r, path);
    s_await(&r, admin, "SELECT count(*) FROM rsd_readings WHERE station_id = 'PRIV-D'", "3");
    /* readings of the shared plate go to the truck of their colour, by its VIN */
    snprintf(path, sizeof path, "%s/shared.jsonl", r.dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    char when[32];
    time_t tt = (time_t)t0;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *colors[] = {"yellow", "blue"};
    for (int c = 0; c < 2; c++)
        fprintf(f,
                "{\"version\":1,\"station_id\":\"PRIV-R\",\"reading_id\":\"%s\",\"time\":\"%s\","
                "\"plate\":\"津R00001\",\"plate_color\":\"%s\",\"valid\":true}\n",
                colors[c], when, colors[c]);
    fclose(f);
    s_send(&r, path);
    s_await(&r, admin,
            "SELECT reading_id || ':' || coalesce(vin, '-') FROM rsd_readings "
            "WHERE station_id = 'PRIV-R' ORDER BY 1",
            "blue:LPRIVR00000000002,yellow:LPRIVR00000000001");
    json_t *st = vem_it_sink_settled(&r);
    json_decref(st);
    s_expect(admin,
             "SELECT count(*) FROM violations WHERE plate = '津D00001' AND rule = 'rsd.no_exceed'",
             "1");
    ck_assert(!vem_it_log_has(&r, "permission denied"));
    vem_it_stop(&r);
    PQfinish(admin);
}
END_TEST

/* A roadside violation vemd knows only by plate (the registry it loaded has no such plate: the
 * two trucks that share it are registered afterwards, as a registry update that vemd has not
 * reloaded yet) carries the readings' colour, so the schema gives it the one truck of that
 * plate and colour: its VIN and region, and that region's agency sees it; the other's does
 * not. Without the colour the plate alone matches two trucks: no region, seen by no agency. */
START_TEST(plate_only_verdict_carries_colour)
{
    PGconn *admin = s_setup();
    vem_it_sql(admin, "INSERT INTO vehicles (vin, plate, plate_color, region_code) VALUES "
                      "('LPRIVS00000000009', '津S00009', 'yellow', '120101') "
                      "ON CONFLICT DO NOTHING");
    char *known = s_list(admin, "SELECT count(*) FROM vehicles");
    double nknown = atof(known);
    free(known);
    vem_it_run_t r = {.pg_user = "priv_ingest"};
    vem_it_start(&r, "it_privileges");
    for (int i = 0; i < 100 && vem_it_metric_now(&r, "vem_registry_vehicles") < nknown; i++)
        vem_it_sleep(0.1);
    ck_assert_double_ge(vem_it_metric_now(&r, "vem_registry_vehicles"), nknown);
    vem_it_sql(admin, "INSERT INTO vehicles (vin, plate, plate_color, region_code) VALUES "
                      "('LPRIVS00000000001', '津S00001', 'yellow', '120101'), "
                      "('LPRIVS00000000002', '津S00001', 'blue', '130101') ON CONFLICT DO NOTHING");
    struct timeval tv;
    gettimeofday(&tv, NULL);
    int64_t t0 = tv.tv_sec - 2 * 86400;
    char path[600];
    snprintf(path, sizeof path, "%s/plate.jsonl", r.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    /* twice over 1500 ppm: rsd.no_exceed (rules.md), a notice and then a violation */
    s_reading_of(f, "PRIV-S", "津S00001", "yellow", "s1", t0, 1800);
    s_reading_of(f, "PRIV-S", "津S00001", "yellow", "s2", t0 + 3600, 1900);
    fclose(f);
    s_send(&r, path);
    s_await(&r, admin,
            "SELECT reading_id || ':' || coalesce(vin, '-') FROM rsd_readings "
            "WHERE station_id = 'PRIV-S' ORDER BY 1",
            "s1:-,s2:-"); /* routed by plate: vemd did not know it */
    s_await(&r, admin,
            "SELECT severity || ':' || coalesce(plate_color, '-') || ':' || coalesce(vin, '-') || "
            "':' || coalesce(region_code, '-') FROM violations "
            "WHERE plate = '津S00001' AND rule = 'rsd.no_exceed'",
            "violation:yellow:LPRIVS00000000001:120101");
    const char *q = "SELECT count(*) FROM violations WHERE plate = '津S00001'";
    PGconn *a = vem_it_pg_as("priv_agency_a"), *b = vem_it_pg_as("priv_agency_b");
    s_expect(a, q, "1");
    s_expect(b, q, "0");
    ck_assert(!vem_it_log_has(&r, "permission denied"));
    vem_it_stop(&r);
    PQfinish(a);
    PQfinish(b);
    PQfinish(admin);
}
END_TEST

Suite *vem_suite_privileges(void);
Suite *vem_suite_privileges(void)
{
    Suite *s = suite_create("privileges");
    TCase *tc = tcase_create("roles");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, readings_scoped_by_plate_and_colour);
    tcase_add_test(tc, ambiguous_plate_leaves_region_empty);
    tcase_add_test(tc, ingest_only_adds);
    tcase_add_test(tc, merge_by_input);
    tcase_add_test(tc, admin_cannot_write_bookkeeping);
    tcase_add_test(tc, public_schema_closed);
    tcase_add_test(tc, vemd_as_ingest);
    tcase_add_test(tc, plate_only_verdict_carries_colour);
    suite_add_tcase(s, tc);
    return s;
}
