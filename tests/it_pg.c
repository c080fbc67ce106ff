/* it_pg — the harness hands integration suites a real PostgreSQL 15 server.
 *
 * Proves the ground the storage suites stand on: the conninfo reaches a live server of the
 * expected major version, over the private socket, and a stop/start through tools/pgtmp.sh
 * (what the outage tests do) keeps committed data. */
#include "testutil.h"

#include <check.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

static PGconn *s_connect(void)
{
    PGconn *conn = PQconnectdb(vem_test_env("VEM_TEST_PG"));
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
    return conn;
}

static void s_exec_ok(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
                  PQerrorMessage(conn));
    PQclear(res);
}

START_TEST(server_is_postgresql_15)
{
    PGconn *conn = s_connect();
    int version = PQserverVersion(conn);
    ck_assert_int_ge(version, 150000);
    ck_assert_int_lt(version, 160000);
    ck_assert_str_eq(PQdb(conn), "vem");
    PQfinish(conn);
}
END_TEST

START_TEST(survives_stop_and_start)
{
    PGconn *conn = s_connect();
    s_exec_ok(conn, "CREATE TABLE it_pg_probe (n int PRIMARY KEY)");
    s_exec_ok(conn, "INSERT INTO it_pg_probe SELECT generate_series(1, 1000)");
    PQfinish(conn);

    char cmd[512];
    const char *dir = vem_test_env("VEM_TEST_PGDIR");
    snprintf(cmd, sizeof cmd, "tools/pgtmp.sh stop '%s' && tools/pgtmp.sh start '%s' >/dev/null",
             dir, dir);
    ck_assert_int_eq(system(cmd), 0);

    conn = s_connect();
    PGresult *res = PQexec(conn, "SELECT count(*), sum(n) FROM it_pg_probe");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "1000");
    ck_assert_str_eq(PQgetvalue(res, 0, 1), "500500"); /* 1000 * 1001 / 2 */
    PQclear(res);
    s_exec_ok(conn, "DROP TABLE it_pg_probe");
    PQfinish(conn);
}
END_TEST

Suite *vem_suite_pg(void);
Suite *vem_suite_pg(void)
{
    Suite *s = suite_create("pg");
    TCase *tc = tcase_create("server");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, server_is_postgresql_15);
    tcase_add_test(tc, survives_stop_and_start);
    suite_add_tcase(s, tc);
    return s;
}
