/* it_pgtools — the schema's access rules and the vemctl commands agencies and operators use,
 * against the real server.
 *
 * rls:        an agency role sees exactly its own region's violations, through the table, the
 *             open_violations view and `vemctl violations`, and none of another region's, even
 *             when it asks for that vehicle by VIN; it cannot write violations or read the
 *             quarantine. vemd's role (vem_ingest) writes violations, and the trigger fills in
 *             plate and region from the registry.
 * migrate:    a second run applies nothing; a fresh database gets every file; a file changed
 *             after it was applied is refused.
 * vehicles:   import inserts, re-import updates, one bad line rolls the whole file back.
 * violations: JSON and CSV carry what was stored; --rule and --since filter.
 *
 * Expected values are the rows the tests themselves insert. */
#include "itutil.h"
#include "testutil.h"

#include <check.h>
#include <glob.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* SQLSTATE of a statement that must fail. */
static char *s_sql_fails(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_FATAL_ERROR, "%s succeeded", sql);
    char *state = strdup(PQresultErrorField(res, PG_DIAG_SQLSTATE));
    PQclear(res);
    return state;
}

static char *s_value(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    ck_assert_int_eq(PQntuples(res), 1);
    char *v = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* Runs vemctl with args; its stdout into *out (caller frees); returns the exit code. */
static int s_vemctl(const char *args, char **out)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s/vemctl' %s", vem_test_bin_dir(), args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - 1 - len, p)) > 0)
        len += got;
    buf[len] = '\0';
    int status = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void s_seed_two_regions(PGconn *admin)
{
    vem_it_sql(admin,
               "INSERT INTO vehicles (vin, plate, plate_color, region_code) VALUES "
               "('LRLSBJ00000000001', '京A00001', 'yellow', '110105'), "
               "('LRLSSH00000000001', '沪A00001', 'yellow', '310115') ON CONFLICT DO NOTHING");
    vem_it_sql(
        admin,
        "INSERT INTO violations (violation_id, rule, clause, vin, first_at, last_at, measured, "
        "\"limit\", unit, evidence, severity) VALUES "
        "('rls-bj-1', 'obd.mil_on', 'GB 17691-2018 Q.5', 'LRLSBJ00000000001', "
        " '2026-11-01 08:00+08', '2026-11-01 09:00+08', 1, 0, NULL, '{\"frames\": [1]}', "
        " 'violation'), "
        "('rls-bj-2', 'obd.nox_window', 'HJ 1239.2', 'LRLSBJ00000000001', "
        " '2026-11-02 08:00+08', '2026-11-02 09:00+08', 700, 460, 'ppm', '{\"samples\": [2]}', "
        " 'violation'), "
        "('rls-sh-1', 'obd.mil_on', 'GB 17691-2018 Q.5', 'LRLSSH00000000001', "
        " '2026-11-01 10:00+08', '2026-11-01 11:00+08', 1, 0, NULL, '{\"frames\": [3]}', "
        " 'violation') ON CONFLICT DO NOTHING");
    vem_it_sql(admin,
               "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'agency_bj') "
               "THEN CREATE ROLE agency_bj LOGIN IN ROLE vem_agency; END IF; END $$");
    vem_it_sql(admin,
               "INSERT INTO agency_regions VALUES ('agency_bj', '110105') ON CONFLICT DO NOTHING");
}

START_TEST(agency_sees_only_its_region)
{
    PGconn *admin = vem_it_pg_as(NULL);
    s_seed_two_regions(admin);
    /* the trigger took plate and region from the registry */
    char *region = s_value(admin, "SELECT region_code || ' ' || plate FROM violations "
                                  "WHERE violation_id = 'rls-sh-1'");
    ck_assert_str_eq(region, "310115 沪A00001");
    free(region);

    PGconn *bj = vem_it_pg_as("agency_bj");
    char *ids = s_value(bj, "SELECT string_agg(violation_id, ',' ORDER BY violation_id) FROM "
                            "violations WHERE violation_id LIKE 'rls-%'");
    ck_assert_str_eq(ids, "rls-bj-1,rls-bj-2");
    free(ids);
    ids = s_value(bj, "SELECT string_agg(violation_id, ',' ORDER BY violation_id) FROM "
                      "open_violations WHERE violation_id LIKE 'rls-%'");
    ck_assert_str_eq(ids, "rls-bj-1,rls-bj-2");
    free(ids);
    char *n = s_value(bj, "SELECT count(*) FROM violations WHERE vin = 'LRLSSH00000000001'");
    ck_assert_str_eq(n, "0");
    free(n);
    n = s_value(bj, "SELECT count(*) FROM vehicles WHERE vin = 'LRLSSH00000000001'");
    ck_assert_str_eq(n, "0");
    free(n);
    /* no writing verdicts, no reading the raw quarantine */
    char *state = s_sql_fails(bj, "INSERT INTO violations (violation_id, rule, clause, vin, "
                                  "first_at, last_at, evidence, severity) VALUES ('x', 'r', "
                                  "'c', 'LRLSBJ00000000001', now(), now(), '{}', 'notice')");
    ck_assert_str_eq(state, "42501"); /* insufficient_privilege */
    free(state);
    state = s_sql_fails(bj, "SELECT count(*) FROM quarantine");
    ck_assert_str_eq(state, "42501");
    free(state);
    PQfinish(bj);

    /* the same through vemctl, as the agency's login */
    char args[1200], *out;
    snprintf(args, sizeof args, "violations --format json --db \"%s user=agency_bj\"",
             vem_test_env("VEM_TEST_PG"));
    ck_assert_int_eq(s_vemctl(args, &out), 0);
    json_error_t err;
    json_t *list = json_loads(out, 0, &err);
    free(out);
    ck_assert_ptr_nonnull(list);
    size_t i, bj_rows = 0;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        ck_assert_str_eq(json_string_value(json_object_get(v, "region_code")), "110105");
        bj_rows +=
            strncmp(json_string_value(json_object_get(v, "violation_id")), "rls-bj-", 7) == 0;
    }
    ck_assert_uint_eq(bj_rows, 2);
    json_decref(list);
    snprintf(args, sizeof args,
             "violations --vin LRLSSH00000000001 --format csv --db \"%s user=agency_bj\"",
             vem_test_env("VEM_TEST_PG"));
    ck_assert_int_eq(s_vemctl(args, &out), 0);
    ck_assert_msg(strchr(out, '\n') == out + strlen(out) - 1, "only the header: %s", out);
    free(out);

    /* vemd's role writes violations */
    vem_it_sql(admin,
               "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vemd_test') "
               "THEN CREATE ROLE vemd_test LOGIN IN ROLE vem_ingest; END IF; END $$");
    PGconn *ingest = vem_it_pg_as("vemd_test");
    vem_it_sql(ingest,
               "INSERT INTO violations (violation_id, rule, clause, vin, first_at, last_at, "
               "evidence, severity) VALUES ('rls-bj-3', 'obd.urea_empty', 'HJ 1239.2', "
               "'LRLSBJ00000000001', now(), now(), '{}', 'notice') ON CONFLICT DO NOTHING");
    PQfinish(ingest);
    region = s_value(admin, "SELECT region_code FROM violations WHERE violation_id = 'rls-bj-3'");
    ck_assert_str_eq(region, "110105");
    free(region);
    PQfinish(admin);
}
END_TEST

/* vemctl output as people read it: a stored latitude of 32.45 (the double 32.450000000000003)
 * and longitude 118.689985 print at the field's resolution (1e-6 degree) in JSON and in the
 * table, a verdict's 0.1 + 0.2 as 0.3; a Chinese plate (two columns for its first character)
 * is padded to its column by display width, so the next column starts where it does for an
 * ASCII plate. Expected texts worked by hand. */
START_TEST(vemctl_output_resolution_and_width)
{
    PGconn *admin = vem_it_pg_as(NULL);
    vem_it_sql(admin,
               "INSERT INTO vehicles (vin, plate, plate_color, region_code) VALUES "
               "('LFMTBJ00000000001', '京B12345', 'yellow', '110105') ON CONFLICT DO NOTHING");
    vem_it_sql(admin, "SELECT vem_ensure_partitions('2026-11-30', '2026-11-30')");
    vem_it_sql(admin,
               "INSERT INTO obd_samples (vin, sample_time, block_idx, received_at, frame_seq, "
               "resent, block_type, lat, lon) VALUES ('LFMTBJ00000000001', "
               "'2026-11-30 08:00:05+08', 0, '2026-11-30 08:00:06+08', 7, false, 'stream', "
               "32450000 * 1e-6::float8, 118689985 * 1e-6::float8) ON CONFLICT DO NOTHING");
    vem_it_sql(admin,
               "INSERT INTO violations (violation_id, rule, clause, vin, first_at, last_at, "
               "measured, \"limit\", unit, evidence, severity) VALUES ('res-1', 'obd.nox_window', "
               "'HJ 1239.2', 'LFMTBJ00000000001', '2026-11-03 08:00+08', '2026-11-03 09:00+08', "
               "0.1::float8 + 0.2::float8, 460, 'ppm', '{}', 'violation') "
               "ON CONFLICT DO NOTHING");
    char *check = s_value(admin, "SELECT lat::text FROM obd_samples WHERE vin = "
                                 "'LFMTBJ00000000001'");
    ck_assert_str_ne(check, "32.45"); /* the binary noise is stored */
    free(check);
    const char *pg = vem_test_env("VEM_TEST_PG");
    char args[1200], *out;
    snprintf(args, sizeof args, "vehicle LFMTBJ00000000001 --format json --db \"%s\"", pg);
    ck_assert_int_eq(s_vemctl(args, &out), 0);
    ck_assert_msg(strstr(out, "\"lat\": 32.45,") && strstr(out, "\"lon\": 118.689985,"), "%s", out);
    ck_assert_msg(!strstr(out, "32.450000000000003") && !strstr(out, "118.68998499999999"), "%s",
                  out);
    ck_assert_msg(strstr(out, "\"measured\": 0.3,"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "vehicle LFMTBJ00000000001 --db \"%s\"", pg);
    ck_assert_int_eq(s_vemctl(args, &out), 0);
    ck_assert_msg(strstr(out, "  lat              32.45\n"), "%s", out);
    ck_assert_msg(strstr(out, "  lon              118.689985\n"), "%s", out);
    free(out);
    /* table: violation_id 24, rule 20, vin 17, plate 10 columns, one space between */
    snprintf(args, sizeof args, "violations --vin LFMTBJ00000000001 --db \"%s\"", pg);
    ck_assert_int_eq(s_vemctl(args, &out), 0);
    ck_assert_msg(strstr(out, "LFMTBJ00000000001 \xE4\xBA\xAC"
                              "B12345   110105 "),
                  "%s", out);
    free(out);
    snprintf(args, sizeof args, "vehicles list --db \"%s\"", pg);
    ck_assert_int_eq(s_vemctl(args, &out), 0);
    /* plate column 12 wide, two spaces after: 8 columns of plate, 4 + 2 spaces */
    ck_assert_msg(strstr(out, "LFMTBJ00000000001  \xE4\xBA\xAC"
                              "B12345      yellow"),
                  "%s", out);
    free(out);
    PQfinish(admin);
}
END_TEST

START_TEST(migrate_once_fresh_database_and_changed_file)
{
    char args[1200], *out;
    const char *pg = vem_test_env("VEM_TEST_PG");
    char dir[600];
    snprintf(dir, sizeof dir, "%s/../../schema", vem_test_bin_dir());
    snprintf(args, sizeof args, "db migrate --db \"%s\" --dir '%s'", pg, dir);
    ck_assert_int_eq(s_vemctl(args, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "0 migrations applied"));
    free(out);
    snprintf(args, sizeof args, "db status --db \"%s\" --dir '%s'", pg, dir);
    ck_assert_int_eq(s_vemctl(args, NULL), 0);

    PGconn *admin = vem_it_pg_as(NULL);
    vem_it_sql(admin, "DROP DATABASE IF EXISTS vem_fresh");
    vem_it_sql(admin, "CREATE DATABASE vem_fresh");
    /* every migration file of the tree, however many there are by now */
    char pattern[700], applied[64];
    snprintf(pattern, sizeof pattern, "%s/[0-9][0-9][0-9][0-9]_*.sql", dir);
    glob_t files;
    ck_assert_int_eq(glob(pattern, 0, NULL, &files), 0);
    size_t nfiles = files.gl_pathc;
    globfree(&files);
    ck_assert_uint_ge(nfiles, 5);
    snprintf(args, sizeof args, "db migrate --db \"%s dbname=vem_fresh\" --dir '%s'", pg, dir);
    ck_assert_int_eq(s_vemctl(args, &out), 0);
    snprintf(applied, sizeof applied, "%zu migrations applied", nfiles);
    ck_assert_msg(strstr(out, applied) != NULL, "want '%s': %s", applied, out);
    free(out);
    char conninfo[700];
    snprintf(conninfo, sizeof conninfo, "%s dbname=vem_fresh", pg);
    PGconn *fresh = PQconnectdb(conninfo);
    ck_assert_int_eq(PQstatus(fresh), CONNECTION_OK);
    char *n = s_value(fresh, "SELECT count(*) FROM schema_migrations");
    ck_assert_int_eq(atoi(n), (int)nfiles);
    free(n);
    /* a recorded file whose text no longer matches */
    vem_it_sql(fresh,
               "UPDATE schema_migrations SET sha256 = repeat('0', 64) WHERE version = '0001'");
    PQfinish(fresh);
    ck_assert_int_eq(s_vemctl(args, NULL), 1);
    snprintf(args, sizeof args, "db status --db \"%s dbname=vem_fresh\" --dir '%s'", pg, dir);
    ck_assert_int_eq(s_vemctl(args, NULL), 1);
    vem_it_sql(admin, "DROP DATABASE vem_fresh");
    PQfinish(admin);
}
END_TEST

START_TEST(vehicles_import_upserts_and_refuses_bad_files)
{
    char dir[256], csv[300], args[1200], *out;
    vem_test_mkdtemp("it_pgtools", dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/v.csv", dir);
    const char *pg = vem_test_env("VEM_TEST_PG");
    vem_test_spit(csv, "vin,plate,plate_color,fuel,region_code,ref_torque_nm,chip_id\n"
                       "LIMPRT00000000001,苏A11111,yellow,diesel,320102,2100,"
                       "000102030405060708090a0b0c0d0e0f\n"
                       "LIMPRT00000000002,苏A22222,yellow,,320102,,\n"
                       "LIMPRT00000000003,\"苏A3,3\",green,gas,320104,1800,\n");
    snprintf(args, sizeof args, "vehicles import '%s' --db \"%s\"", csv, pg);
    ck_assert_int_eq(s_vemctl(args, &out), 0);
    ck_assert_str_eq(out, "3 inserted, 0 updated\n");
    free(out);
    PGconn *admin = vem_it_pg_as(NULL);
    char *v = s_value(admin, "SELECT plate || '|' || fuel || '|' || ref_torque_nm || '|' || "
                             "encode(chip_id, 'hex') FROM vehicles WHERE vin = "
                             "'LIMPRT00000000001'");
    ck_assert_str_eq(v, "苏A11111|diesel|2100|000102030405060708090a0b0c0d0e0f");
    free(v);
    v = s_value(admin, "SELECT plate || '|' || fuel FROM vehicles WHERE vin = 'LIMPRT00000000003'");
    ck_assert_str_eq(v, "苏A3,3|gas");
    free(v);

    vem_test_spit(csv, "vin,plate,region_code\n"
                       "LIMPRT00000000001,苏A99999,320102\n"
                       "LIMPRT00000000002,苏A22222,320102\n"
                       "LIMPRT00000000003,苏A33333,320104\n");
    ck_assert_int_eq(s_vemctl(args, &out), 0);
    ck_assert_str_eq(out, "0 inserted, 3 updated\n");
    free(out);
    /* columns the file lacks keep their stored values */
    v = s_value(admin, "SELECT plate || '|' || ref_torque_nm FROM vehicles WHERE vin = "
                       "'LIMPRT00000000001'");
    ck_assert_str_eq(v, "苏A99999|2100");
    free(v);

    vem_test_spit(csv, "vin,plate,region_code\n"
                       "LIMPRT00000000004,苏A44444,320102\n"
                       "LIMPRT00000000001,苏A00000,abc\n");
    ck_assert_int_eq(s_vemctl(args, NULL), 1);
    v = s_value(admin, "SELECT count(*) || '|' || max(plate) FROM vehicles WHERE vin IN "
                       "('LIMPRT00000000004', 'LIMPRT00000000001')");
    ck_assert_str_eq(v, "1|苏A99999");
    free(v);
    vem_test_spit(csv, "vin,colour,region_code\nLIMPRT00000000005,red,320102\n");
    ck_assert_int_eq(s_vemctl(args, NULL), 1);
    PQfinish(admin);
}
END_TEST

START_TEST(violations_formats_and_filters)
{
    PGconn *admin = vem_it_pg_as(NULL);
    s_seed_two_regions(admin);
    vem_it_sql(admin, "INSERT INTO violations (violation_id, rule, clause, vin, plate, first_at, "
                      "last_at, measured, \"limit\", unit, evidence, severity) VALUES "
                      "('fmt-1', 'rsd.no_exceed', 'HJ 845-2017 5.2', NULL, '浙A,\"7\"', "
                      "'2026-10-05 12:00:00+08', '2026-10-05 12:00:00+08', 1450.5, 1200, 'ppm', "
                      "'{\"readings\": [\"r-1\"]}', 'violation') ON CONFLICT DO NOTHING");
    PQfinish(admin);
    const char *pg = vem_test_env("VEM_TEST_PG");
    char args[1200], *out;
    snprintf(args, sizeof args, "violations --rule rsd.no_exceed --format json --db \"%s\"", pg);
    ck_assert_int_eq(s_vemctl(args, &out), 0);
    json_error_t err;
    json_t *list = json_loads(out, 0, &err);
    free(out);
    ck_assert_ptr_nonnull(list);
    ck_assert_uint_eq(json_array_size(list), 1);
    json_t *v = json_array_get(list, 0);
    ck_assert_str_eq(json_string_value(json_object_get(v, "violation_id")), "fmt-1");
    ck_assert_str_eq(json_string_value(json_object_get(v, "plate")), "浙A,\"7\"");
    ck_assert_str_eq(json_string_value(json_object_get(v, "first_at")),
                     "2026-10-05T12:00:00+08:00");
    ck_assert_double_eq(json_number_value(json_object_get(v, "measured")), 1450.5);
    ck_assert_double_eq(json_number_value(json_object_get(v, "limit")), 1200);
    ck_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(json_object_get(v, "evidence"), "readings"), 0)),
                     "r-1");
    ck_assert(json_is_null(json_object_get(v, "closed_at")));
    json_decref(list);

    snprintf(args, sizeof args, "violations --rule rsd.no_exceed --format csv --db \"%s\"", pg);
    ck_assert_int_eq(s_vemctl(args, &out), 0);
    /* RFC 4180: a field with a comma or quote is quoted, quotes doubled */
    ck_assert_ptr_nonnull(strstr(out, ",\"浙A,\"\"7\"\"\","));
    ck_assert_ptr_nonnull(strstr(out, "violation_id,rule,clause,vin,plate,region_code,"));
    free(out);

    /* since 2026-11-02 (Beijing): only rls-bj-2 of the seeded ones */
    snprintf(args, sizeof args,
             "violations --since 2026-11-02 --vin LRLSBJ00000000001 --format json --db \"%s\"", pg);
    ck_assert_int_eq(s_vemctl(args, &out), 0);
    list = json_loads(out, 0, &err);
    free(out);
    size_t i;
    bool seen = false;
    json_array_foreach(list, i, v)
    {
        ck_assert_str_ne(json_string_value(json_object_get(v, "violation_id")), "rls-bj-1");
        seen =
            seen || strcmp(json_string_value(json_object_get(v, "violation_id")), "rls-bj-2") == 0;
    }
    ck_assert(seen);
    json_decref(list);
    snprintf(args, sizeof args, "violations --format yaml --db \"%s\"", pg);
    ck_assert_int_eq(s_vemctl(args, NULL), 2);
}
END_TEST

Suite *vem_suite_pgtools(void);
Suite *vem_suite_pgtools(void)
{
    Suite *s = suite_create("pgtools");
    TCase *tc = tcase_create("pgtools");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, agency_sees_only_its_region);
    tcase_add_test(tc, migrate_once_fresh_database_and_changed_file);
    tcase_add_test(tc, vehicles_import_upserts_and_refuses_bad_files);
    tcase_add_test(tc, vemctl_output_resolution_and_width);
    tcase_add_test(tc, violations_formats_and_filters);
    suite_add_tcase(s, tc);
    return s;
}
