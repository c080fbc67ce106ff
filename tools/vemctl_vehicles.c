/* vemctl vehicles — the vehicle registry.
 *
 *   vemctl vehicles import FILE.csv [--db CONNINFO]
 *   vemctl vehicles list [--region CODE] [--db CONNINFO]
 *
 * import upserts the table `vehicles` from a CSV file whose header names its columns among
 * vin, plate, plate_color, fuel, ref_torque_nm, rated_power_kw, whtc_work_kwh, region_code,
 * chip_id (32 hex digits) and sm2_pubkey (128 hex digits); vin and region_code are required.
 * The file goes through COPY into a temporary table and one INSERT ... ON CONFLICT (vin) DO
 * UPDATE, in one transaction: a bad line (a value the table's checks refuse, bad hex, an
 * unknown column) rolls the whole import back, and PostgreSQL's message names the line.
 * Columns the file does not have keep their stored values on update. A running vemd picks the
 * registry up on SIGHUP. list prints vin, plate, colour, fuel and region.
 *
 * Exit 0 done, 1 the file or the database refused, 2 usage. */
#include "vemctl.h"
#include "vemctl_fmt.h"

#include <getopt.h>
#include <stdbool.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_columns[] = {"vin",
                                        "plate",
                                        "plate_color",
                                        "fuel",
                                        "ref_torque_nm",
                                        "rated_power_kw",
                                        "whtc_work_kwh",
                                        "region_code",
                                        "chip_id",
                                        "sm2_pubkey",
                                        NULL};

static int s_usage(void)
{
    fprintf(stderr, "usage: vemctl vehicles import FILE.csv [--db CONNINFO]\n"
                    "       vemctl vehicles list [--region CODE] [--db CONNINFO]\n");
    return 2;
}

static bool s_ok(PGconn *conn, PGresult *res, const char *what)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return true;
    fprintf(stderr, "vemctl vehicles: %s: %s", what, PQerrorMessage(conn));
    const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
    if (ctx)
        fprintf(stderr, "  (%s)\n", ctx);
    return false;
}

/* Index of a column name, -1 when it is not one. */
static int s_column(const char *name)
{
    for (int i = 0; s_columns[i]; i++)
        if (strcmp(s_columns[i], name) == 0)
            return i;
    return -1;
}

/* Reads the header line: which known columns, in what order. false with a message. */
static bool s_header(FILE *f, int *order, int *n)
{
    char line[1024];
    if (!fgets(line, sizeof line, f)) {
        fprintf(stderr, "vemctl vehicles: the file is empty\n");
        return false;
    }
    line[strcspn(line, "\r\n")] = '\0';
    *n = 0;
    bool seen[16] = {0};
    for (char *save = NULL, *tok = strtok_r(line, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '"')
            tok++;
        size_t len = strlen(tok);
        while (len && (tok[len - 1] == ' ' || tok[len - 1] == '"'))
            tok[--len] = '\0';
        int c = s_column(tok);
        if (c < 0 || seen[c]) {
            fprintf(stderr,
                    "vemctl vehicles: header: %s column '%s' (columns: vin, plate, "
                    "plate_color, fuel, ref_torque_nm, rated_power_kw, whtc_work_kwh, "
                    "region_code, chip_id, sm2_pubkey)\n",
                    c < 0 ? "unknown" : "repeated", tok);
            return false;
        }
        seen[c] = true;
        order[(*n)++] = c;
    }
    if (!seen[0] || !seen[7]) {
        fprintf(stderr, "vemctl vehicles: header: vin and region_code are required\n");
        return false;
    }
    return true;
}

static int s_import(PGconn *conn, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 1;
    }
    int order[16], n;
    if (!s_header(f, order, &n)) {
        fclose(f);
        return 1;
    }
    /* Statements from the fixed column names only; the values travel by COPY. */
    char copy[512] = "COPY vem_import (", insert[2048], set[1024] = "";
    char select[1024] = "";
    for (int i = 0; i < n; i++) {
        const char *c = s_columns[order[i]];
        strcat(copy, c);
        strcat(copy, i + 1 < n ? ", " : ") FROM STDIN (FORMAT csv)");
        char expr[160];
        if (strcmp(c, "chip_id") == 0 || strcmp(c, "sm2_pubkey") == 0)
            snprintf(expr, sizeof expr, "decode(nullif(%s, ''), 'hex')", c);
        else if (strstr(c, "_nm") || strstr(c, "_kw") || strstr(c, "_kwh"))
            snprintf(expr, sizeof expr, "nullif(%s, '')::double precision", c);
        else if (strcmp(c, "fuel") == 0)
            snprintf(expr, sizeof expr, "coalesce(nullif(fuel, ''), 'diesel')");
        else
            snprintf(expr, sizeof expr, "nullif(%s, '')", c);
        strcat(select, expr);
        strcat(select, i + 1 < n ? ", " : "");
        if (order[i] != 0) {
            char one[96];
            snprintf(one, sizeof one, "%s%s = EXCLUDED.%s", set[0] ? ", " : "", c, c);
            strcat(set, one);
        }
    }
    char cols[512];
    snprintf(cols, sizeof cols, "%s", copy + strlen("COPY vem_import ("));
    cols[strcspn(cols, ")")] = '\0';
    snprintf(insert, sizeof insert,
             "INSERT INTO vehicles (%s) SELECT %s FROM vem_import ON CONFLICT (vin) DO UPDATE "
             "SET %s%supdated_at = now() RETURNING (xmax = 0)",
             cols, select, set, set[0] ? ", " : "");
    PGresult *res = PQexec(conn, "BEGIN");
    bool ok = s_ok(conn, res, "BEGIN");
    PQclear(res);
    if (ok) {
        res = PQexec(conn, "CREATE TEMP TABLE vem_import (vin text, plate text, plate_color text, "
                           "fuel text, ref_torque_nm text, rated_power_kw text, whtc_work_kwh "
                           "text, region_code text, chip_id text, sm2_pubkey text) ON COMMIT DROP");
        ok = s_ok(conn, res, "staging table");
        PQclear(res);
    }
    if (ok) {
        res = PQexec(conn, copy);
        ok = PQresultStatus(res) == PGRES_COPY_IN || s_ok(conn, res, "COPY");
        PQclear(res);
    }
    if (ok) {
        char buf[8192];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, f)) > 0)
            if (PQputCopyData(conn, buf, (int)got) != 1)
                break;
        PQputCopyEnd(conn, ferror(f) ? "read error" : NULL);
        res = PQgetResult(conn);
        /* the data lines start at line 2 of the file; COPY counts from 1 without the header */
        ok = s_ok(conn, res, "reading the CSV (COPY line N is file line N+1)");
        PQclear(res);
        while ((res = PQgetResult(conn)))
            PQclear(res);
    }
    long inserted = 0, updated = 0;
    if (ok) {
        res = PQexec(conn, insert);
        ok = s_ok(conn, res, "storing the vehicles");
        for (int i = 0; ok && i < PQntuples(res); i++)
            if (*PQgetvalue(res, i, 0) == 't')
                inserted++;
            else
                updated++;
        PQclear(res);
    }
    res = PQexec(conn, ok ? "COMMIT" : "ROLLBACK");
    ok = ok && s_ok(conn, res, "COMMIT");
    PQclear(res);
    fclose(f);
    if (!ok) {
        fprintf(stderr, "vemctl vehicles: nothing imported\n");
        return 1;
    }
    printf("%ld inserted, %ld updated\n", inserted, updated);
    return 0;
}

static int s_list(PGconn *conn, const char *region)
{
    const char *params[] = {region};
    PGresult *res = PQexecParams(conn,
                                 "SELECT vin, coalesce(plate, ''), coalesce(plate_color, ''), "
                                 "fuel, region_code FROM vehicles WHERE ($1::text IS NULL OR "
                                 "region_code = $1) ORDER BY vin",
                                 1, NULL, params, NULL, NULL, 0);
    if (!s_ok(conn, res, "listing")) {
        PQclear(res);
        return 1;
    }
    printf("%-17s  %-12s  %-12s  %-8s  %s\n", "vin", "plate", "plate_color", "fuel", "region");
    for (int i = 0; i < PQntuples(res); i++) {
        printf("%-17s  ", PQgetvalue(res, i, 0));
        vemctl_fmt_pad(stdout, PQgetvalue(res, i, 1), 12); /* plates: 京A12345 */
        printf("  %-12s  %-8s  %s\n", PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
               PQgetvalue(res, i, 4));
    }
    PQclear(res);
    return 0;
}

int vemctl_vehicles_main(int argc, char **argv)
{
    if (argc < 2)
        return s_usage();
    const char *verb = argv[1];
    static const struct option options[] = {{"db", required_argument, NULL, 'd'},
                                            {"region", required_argument, NULL, 'r'},
                                            {NULL, 0, NULL, 0}};
    const char *db = NULL, *region = NULL;
    int opt;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "d:r:", options, NULL)) != -1) {
        if (opt == 'd')
            db = optarg;
        else if (opt == 'r')
            region = optarg;
        else
            return s_usage();
    }
    bool import = strcmp(verb, "import") == 0, list = strcmp(verb, "list") == 0;
    if ((!import && !list) || (import && optind != argc - 1) || (list && optind != argc))
        return s_usage();
    PGconn *conn = vemctl_db_connect(db);
    if (!conn)
        return 1;
    int rc = import ? s_import(conn, argv[optind]) : s_list(conn, region);
    PQfinish(conn);
    return rc;
}
