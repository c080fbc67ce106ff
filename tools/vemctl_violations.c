/* vemctl violations / vemctl vehicle — what enforcement agencies ask the database.
 *
 *   vemctl violations [--vin VIN] [--plate PLATE] [--region CODE] [--since TIME] [--rule NAME]
 *                     [--open] [--limit N] [--format table|json|csv] [--db CONNINFO]
 *   vemctl vehicle VIN [--samples N] [--format table|json] [--db CONNINFO]
 *
 * violations lists violations, newest first (default limit 100); --open only those nobody has
 * closed; --since takes an ISO 8601 time or a date (Beijing time when it has no offset). JSON
 * and CSV use FIELDS.md's keys; times are ISO 8601 in Beijing time. vehicle prints the
 * registry entry, the latest sample, terminal event and OBD snapshot, every violation with its
 * evidence, and the N most recent samples. Rows are what the connecting role may see: an
 * agency's role sees only its regions (row-level security).
 *
 * Filters travel as query parameters, never inside the SQL text. Exit 0 found (or an empty
 * list), 1 a database error or an unknown VIN, 2 usage. */
#include "vemctl.h"
#include "vemctl_fmt.h"

#include <getopt.h>
#include <stdbool.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { S_TABLE, S_JSON, S_CSV } s_format_t;

static bool s_format(const char *name, s_format_t *out, bool csv_ok)
{
    if (strcmp(name, "table") == 0)
        *out = S_TABLE;
    else if (strcmp(name, "json") == 0)
        *out = S_JSON;
    else if (csv_ok && strcmp(name, "csv") == 0)
        *out = S_CSV;
    else
        return false;
    return true;
}

static PGconn *s_connect(const char *db)
{
    PGconn *conn = vemctl_db_connect(db);
    if (conn)
        PQclear(PQexec(conn, "SET TimeZone = 'Asia/Shanghai'"));
    return conn;
}

/* One CSV field (RFC 4180): quoted when it holds a comma, a quote, CR or LF. */
static void s_csv_field(const char *s, bool last)
{
    if (strpbrk(s, ",\"\r\n")) {
        putchar('"');
        for (; *s; s++) {
            if (*s == '"')
                putchar('"');
            putchar(*s);
        }
        putchar('"');
    } else {
        fputs(s, stdout);
    }
    putchar(last ? '\n' : ',');
}

/* ---- violations --------------------------------------------------------------------------- */

static const char *const s_keys[] = {"violation_id", "rule",     "clause",   "vin",       "plate",
                                     "region_code",  "first_at", "last_at",  "measured",  "limit",
                                     "unit",         "evidence", "severity", "closed_at", NULL};

#define S_ISO(col) "to_char(" col ", 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+08:00'"

static const char s_query[] = "SELECT violation_id, rule, clause, vin, plate, region_code, " S_ISO(
    "first_at") ", " S_ISO("last_at") ", measured, \"limit\", unit, evidence::text, "
                                      "severity, " S_ISO("closed_at") " FROM violations WHERE "
                                                                      "($1::text IS NULL OR vin = "
                                                                      "$1) AND ($2::text IS NULL "
                                                                      "OR plate = $2) "
                                                                      "AND ($3::text IS NULL OR "
                                                                      "region_code = $3) AND "
                                                                      "($4::timestamptz IS NULL OR "
                                                                      "first_at >= $4) "
                                                                      "AND ($5::text IS NULL OR "
                                                                      "rule = $5) AND (NOT "
                                                                      "$6::boolean OR closed_at IS "
                                                                      "NULL) "
                                                                      "ORDER BY first_at DESC, "
                                                                      "violation_id LIMIT $7::int";

static json_t *s_violation_json(PGresult *res, int row)
{
    json_t *o = json_object();
    for (int c = 0; s_keys[c]; c++) {
        json_t *v;
        if (PQgetisnull(res, row, c)) {
            v = json_null();
        } else if (c == 8 || c == 9) {
            v = json_real(strtod(PQgetvalue(res, row, c), NULL));
        } else if (c == 11) {
            json_error_t err;
            v = json_loads(PQgetvalue(res, row, c), JSON_DECODE_ANY, &err);
            if (!v)
                v = json_string(PQgetvalue(res, row, c));
        } else {
            v = json_string(PQgetvalue(res, row, c));
        }
        json_object_set_new(o, s_keys[c], v);
    }
    return o;
}

static void s_print_violations(PGresult *res, s_format_t format)
{
    int rows = PQntuples(res);
    if (format == S_JSON) {
        json_t *arr = json_array();
        for (int r = 0; r < rows; r++)
            json_array_append_new(arr, s_violation_json(res, r));
        vemctl_fmt_json(arr);
        json_dumpf(arr, stdout, VEMCTL_FMT_JSON_FLAGS);
        putchar('\n');
        json_decref(arr);
    } else if (format == S_CSV) {
        for (int c = 0; s_keys[c]; c++)
            s_csv_field(s_keys[c], s_keys[c + 1] == NULL);
        for (int r = 0; r < rows; r++)
            for (int c = 0; s_keys[c]; c++)
                s_csv_field(PQgetvalue(res, r, c), s_keys[c + 1] == NULL);
    } else {
        printf("%-32s %-20s %-17s %-10s %-6s %-25s %10s %10s %-6s %s\n", "violation_id", "rule",
               "vin", "plate", "region", "first_at", "measured", "limit", "unit", "severity");
        for (int r = 0; r < rows; r++) {
            char measured[64] = "", limit[64] = "";
            if (!PQgetisnull(res, r, 8))
                vemctl_fmt_brief(strtod(PQgetvalue(res, r, 8), NULL), measured, sizeof measured);
            if (!PQgetisnull(res, r, 9))
                vemctl_fmt_brief(strtod(PQgetvalue(res, r, 9), NULL), limit, sizeof limit);
            printf("%-32s %-20s %-17s ", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                   PQgetvalue(res, r, 3));
            vemctl_fmt_pad(stdout, PQgetvalue(res, r, 4), 10); /* plates: 京A12345 */
            printf(" %-6s %-25s %10s %10s %-6s %s\n", PQgetvalue(res, r, 5), PQgetvalue(res, r, 6),
                   measured, limit, PQgetvalue(res, r, 10), PQgetvalue(res, r, 12));
        }
        printf("(%d violation%s)\n", rows, rows == 1 ? "" : "s");
    }
}

int vemctl_violations_main(int argc, char **argv)
{
    static const struct option options[] = {
        {"vin", required_argument, NULL, 'v'},    {"plate", required_argument, NULL, 'p'},
        {"region", required_argument, NULL, 'r'}, {"since", required_argument, NULL, 's'},
        {"rule", required_argument, NULL, 'R'},   {"open", no_argument, NULL, 'o'},
        {"limit", required_argument, NULL, 'l'},  {"format", required_argument, NULL, 'f'},
        {"db", required_argument, NULL, 'd'},     {NULL, 0, NULL, 0}};
    const char *params[7] = {NULL, NULL, NULL, NULL, NULL, "false", "100"};
    const char *db = NULL;
    s_format_t format = S_TABLE;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "v:p:r:s:R:ol:f:d:", options, NULL)) != -1) {
        switch (opt) {
        case 'v':
            params[0] = optarg;
            break;
        case 'p':
            params[1] = optarg;
            break;
        case 'r':
            params[2] = optarg;
            break;
        case 's':
            params[3] = optarg;
            break;
        case 'R':
            params[4] = optarg;
            break;
        case 'o':
            params[5] = "true";
            break;
        case 'l':
            if (atol(optarg) < 1)
                goto usage;
            params[6] = optarg;
            break;
        case 'f':
            if (!s_format(optarg, &format, true))
                goto usage;
            break;
        case 'd':
            db = optarg;
            break;
        default:
            goto usage;
        }
    }
    if (optind != argc)
        goto usage;
    PGconn *conn = s_connect(db);
    if (!conn)
        return 1;
    PGresult *res = PQexecParams(conn, s_query, 7, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "vemctl violations: %s", PQerrorMessage(conn));
        rc = 1;
    } else {
        s_print_violations(res, format);
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
usage:
    fprintf(stderr, "usage: vemctl violations [--vin VIN] [--plate PLATE] [--region CODE] "
                    "[--since TIME] [--rule NAME]\n"
                    "                         [--open] [--limit N] [--format table|json|csv] "
                    "[--db CONNINFO]\n");
    return 2;
}

/* ---- vehicle ------------------------------------------------------------------------------ */

static const char s_vehicle_query[] =
    "SELECT jsonb_build_object("
    "'vin', $1::text, "
    "'registry', (SELECT to_jsonb(v) - 'sm2_pubkey' - 'chip_id' || jsonb_build_object("
    "  'chip_id', encode(v.chip_id, 'hex')) FROM vehicles v WHERE v.vin = $1), "
    "'latest_sample', (SELECT to_jsonb(s) FROM vem_recent_samples($1, 1) s), "
    "'latest_event', (SELECT to_jsonb(e) - 'chip_id' - 'pubkey' FROM terminal_events e "
    "  WHERE e.vin = $1 ORDER BY event_time DESC LIMIT 1), "
    "'latest_obd', (SELECT to_jsonb(o) FROM obd_info o WHERE o.vin = $1 "
    "  ORDER BY info_time DESC LIMIT 1), "
    "'violations', (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.first_at DESC), '[]') "
    "  FROM violations x WHERE x.vin = $1), "
    "'recent_samples', (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.sample_time DESC, "
    "  r.block_idx DESC), '[]') FROM vem_recent_samples($1, $2::int) r), "
    /* roadside readings by VIN, or by the registry's plate (stored before the registry knew) */
    "'readings', (SELECT coalesce(jsonb_agg(to_jsonb(d) ORDER BY d.time DESC), '[]') FROM "
    "  (SELECT * FROM rsd_readings d WHERE d.vin = $1 OR d.plate = "
    "  (SELECT plate FROM vehicles WHERE vin = $1) ORDER BY time DESC LIMIT $2::int) d))::text";

static void s_print_object(const char *title, json_t *o, const char *const *keys)
{
    printf("%s:", title);
    if (!json_is_object(o)) {
        printf(" none\n");
        return;
    }
    putchar('\n');
    for (int k = 0; keys[k]; k++) {
        json_t *v = json_object_get(o, keys[k]);
        if (!v || json_is_null(v))
            continue;
        if (json_is_real(v)) {
            char num[64];
            vemctl_fmt_number(keys[k], json_real_value(v), num, sizeof num);
            printf("  %-16s %s\n", keys[k], num);
            continue;
        }
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        printf("  %-16s %s\n", keys[k], text);
        free(text);
    }
}

static void s_print_vehicle(json_t *doc)
{
    static const char *const reg[] = {
        "plate",          "plate_color",   "fuel",    "region_code", "ref_torque_nm",
        "rated_power_kw", "whtc_work_kwh", "chip_id", "updated_at",  NULL};
    static const char *const sample[] = {"sample_time", "speed_kmh",    "engine_rpm",  "torque_pct",
                                         "nox_up_ppm",  "nox_down_ppm", "reagent_pct", "scr_in_c",
                                         "lon",         "lat",          "odometer_km", "resent",
                                         NULL};
    static const char *const event[] = {"event_time", "cmd", "seq", "lon", "lat", NULL};
    static const char *const obd[] = {"info_time", "mil",          "dtc_count",
                                      "dtcs",      "obd_protocol", NULL};
    printf("vehicle %s\n", json_string_value(json_object_get(doc, "vin")));
    s_print_object("registry", json_object_get(doc, "registry"), reg);
    s_print_object("latest sample", json_object_get(doc, "latest_sample"), sample);
    s_print_object("latest terminal event", json_object_get(doc, "latest_event"), event);
    s_print_object("latest OBD", json_object_get(doc, "latest_obd"), obd);
    json_t *viol = json_object_get(doc, "violations");
    printf("violations: %zu\n", json_array_size(viol));
    size_t i;
    json_t *v;
    json_array_foreach(viol, i, v)
    {
        char *evidence =
            json_dumps(json_object_get(v, "evidence"), JSON_COMPACT | JSON_REAL_PRECISION(15));
        char measured[64], limit[64];
        vemctl_fmt_number("measured", json_number_value(json_object_get(v, "measured")), measured,
                          sizeof measured);
        vemctl_fmt_number("limit", json_number_value(json_object_get(v, "limit")), limit,
                          sizeof limit);
        printf("  %s %s %s measured %s %s (limit %s) %s\n    evidence %s\n",
               json_string_value(json_object_get(v, "first_at")),
               json_string_value(json_object_get(v, "rule")),
               json_string_value(json_object_get(v, "clause")), measured,
               json_string_value(json_object_get(v, "unit"))
                   ? json_string_value(json_object_get(v, "unit"))
                   : "",
               limit, json_string_value(json_object_get(v, "severity")), evidence ? evidence : "");
        free(evidence);
    }
    json_t *readings = json_object_get(doc, "readings");
    printf("roadside readings: %zu\n", json_array_size(readings));
    json_array_foreach(readings, i, v)
    {
        const char *why = json_string_value(json_object_get(v, "invalid_reason"));
        char no[64], opacity[64];
        vemctl_fmt_number("no_ppm", json_number_value(json_object_get(v, "no_ppm")), no, sizeof no);
        vemctl_fmt_number("opacity_pct", json_number_value(json_object_get(v, "opacity_pct")),
                          opacity, sizeof opacity);
        printf("  %s %s/%s no %s ppm opacity %s %% %s%s\n",
               json_string_value(json_object_get(v, "time")),
               json_string_value(json_object_get(v, "station_id")),
               json_string_value(json_object_get(v, "reading_id")), no, opacity,
               json_is_true(json_object_get(v, "counted")) ? "counted" : "not counted: ",
               why ? why : "");
    }
    json_t *samples = json_object_get(doc, "recent_samples");
    static const char *const cols[] = {"speed_kmh", "engine_rpm", "nox_up_ppm", "nox_down_ppm"};
    printf("recent samples: %zu\n  %-25s %12s %12s %12s %12s\n", json_array_size(samples), "time",
           "speed", "rpm", "nox_up", "nox_down");
    json_array_foreach(samples, i, v)
    {
        printf("  %-25s", json_string_value(json_object_get(v, "sample_time")));
        for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
            json_t *x = json_object_get(v, cols[c]);
            char num[64] = "-"; /* no measurement */
            if (json_is_number(x))
                vemctl_fmt_number(cols[c], json_number_value(x), num, sizeof num);
            printf(" %12s", num);
        }
        putchar('\n');
    }
}

int vemctl_vehicle_main(int argc, char **argv)
{
    static const struct option options[] = {{"samples", required_argument, NULL, 'n'},
                                            {"format", required_argument, NULL, 'f'},
                                            {"db", required_argument, NULL, 'd'},
                                            {NULL, 0, NULL, 0}};
    const char *db = NULL, *samples = "10";
    s_format_t format = S_TABLE;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "n:f:d:", options, NULL)) != -1) {
        if (opt == 'n' && atol(optarg) >= 0)
            samples = optarg;
        else if (opt == 'f' && s_format(optarg, &format, false))
            continue;
        else if (opt == 'd')
            db = optarg;
        else
            goto usage;
    }
    if (optind != argc - 1)
        goto usage;
    PGconn *conn = s_connect(db);
    if (!conn)
        return 1;
    const char *params[] = {argv[optind], samples};
    PGresult *res = PQexecParams(conn, s_vehicle_query, 2, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "vemctl vehicle: %s", PQerrorMessage(conn));
        rc = 1;
    } else {
        json_error_t err;
        json_t *doc = json_loads(PQgetvalue(res, 0, 0), 0, &err);
        bool known = doc && (!json_is_null(json_object_get(doc, "registry")) ||
                             !json_is_null(json_object_get(doc, "latest_sample")) ||
                             !json_is_null(json_object_get(doc, "latest_event")) ||
                             json_array_size(json_object_get(doc, "violations")) > 0 ||
                             json_array_size(json_object_get(doc, "readings")) > 0);
        if (!known) {
            fprintf(stderr, "vemctl vehicle: %s: no such vehicle (or not visible to this role)\n",
                    argv[optind]);
            rc = 1;
        } else if (format == S_JSON) {
            vemctl_fmt_json(doc);
            json_dumpf(doc, stdout, VEMCTL_FMT_JSON_FLAGS);
            putchar('\n');
        } else {
            s_print_vehicle(doc);
        }
        json_decref(doc);
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
usage:
    fprintf(stderr, "usage: vemctl vehicle VIN [--samples N] [--format table|json] "
                    "[--db CONNINFO]\n");
    return 2;
}
