/* vemctl explain — why a violation was raised, step by step, from what vemd stored with it.
 *
 *   vemctl explain VIOLATION_ID [--format text|json] [--db CONNINFO]
 *
 * Prints the rule, the clause it applies, the vehicle, the span of evidence, the measured value
 * against the limit, and then every item of the evidence the rules recorded, in the order they
 * recorded it (for obd.nox_window: the trip, the window count, the valid windows, the windows
 * around the percentile and the percentile against the limit; for roadside chains: each reading
 * by station and id). Reads through the caller's role, so row-level security applies. Exit 0
 * shown, 1 not found or no database, 2 usage. */
#include "vemctl.h"
#include "vemctl_fmt.h"

#include <getopt.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_query =
    "SELECT json_build_object('violation_id', violation_id, 'rule', rule, 'clause', clause, "
    "'vin', vin, 'plate', plate, 'region_code', region_code, 'first_at', first_at, 'last_at', "
    "last_at, 'measured', measured, 'limit', \"limit\", 'unit', unit, 'severity', severity, "
    "'closed_at', closed_at, 'evidence', evidence)::text FROM violations WHERE violation_id = $1";

/* One evidence item: scalars on one line, objects and arrays indented below their key. */
static void s_item(const char *key, json_t *value, int depth)
{
    printf("%*s%s", 2 + 2 * depth, "", key);
    if (json_is_object(value)) {
        putchar('\n');
        const char *k;
        json_t *v;
        json_object_foreach(value, k, v) s_item(k, v, depth + 1);
    } else if (json_is_array(value)) {
        printf(" (%zu)\n", json_array_size(value));
        size_t i;
        json_t *v;
        json_array_foreach(value, i, v)
        {
            char index[24];
            snprintf(index, sizeof index, "[%zu]", i);
            s_item(index, v, depth + 1);
        }
    } else if (json_is_real(value)) {
        char num[64];
        vemctl_fmt_number(key, json_real_value(value), num, sizeof num);
        printf("  %s\n", num);
    } else {
        char *text = json_dumps(value, JSON_ENCODE_ANY);
        printf("  %s\n", text ? text : "?");
        free(text);
    }
}

static const char *s_text(json_t *doc, const char *key)
{
    const char *s = json_string_value(json_object_get(doc, key));
    return s ? s : "";
}

static void s_print(json_t *doc)
{
    printf("%s %s of %s%s%s\n", s_text(doc, "rule"), s_text(doc, "severity"),
           *s_text(doc, "vin") ? s_text(doc, "vin") : s_text(doc, "plate"),
           *s_text(doc, "plate") && *s_text(doc, "vin") ? " / " : "",
           *s_text(doc, "vin") ? s_text(doc, "plate") : "");
    printf("  id        %s\n  clause    %s\n  region    %s\n  evidence  %s .. %s\n",
           s_text(doc, "violation_id"), s_text(doc, "clause"), s_text(doc, "region_code"),
           s_text(doc, "first_at"), s_text(doc, "last_at"));
    json_t *measured = json_object_get(doc, "measured"), *limit = json_object_get(doc, "limit");
    if (json_is_number(measured)) {
        char m[64], l[64];
        vemctl_fmt_number("measured", json_number_value(measured), m, sizeof m);
        vemctl_fmt_number("limit", json_number_value(limit), l, sizeof l);
        printf("  measured  %s %s against the limit %s %s\n", m, s_text(doc, "unit"), l,
               s_text(doc, "unit"));
    }
    if (*s_text(doc, "closed_at"))
        printf("  closed    %s\n", s_text(doc, "closed_at"));
    printf("  why, step by step:\n");
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(doc, "evidence"), key, value) s_item(key, value, 1);
}

int vemctl_explain_main(int argc, char **argv)
{
    static const struct option options[] = {{"format", required_argument, NULL, 'f'},
                                            {"db", required_argument, NULL, 'd'},
                                            {NULL, 0, NULL, 0}};
    const char *db = NULL;
    bool as_json = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "f:d:", options, NULL)) != -1) {
        if (opt == 'f' && (strcmp(optarg, "json") == 0 || strcmp(optarg, "text") == 0))
            as_json = strcmp(optarg, "json") == 0;
        else if (opt == 'd')
            db = optarg;
        else
            goto usage;
    }
    if (optind != argc - 1)
        goto usage;
    PGconn *conn = vemctl_db_connect(db);
    if (!conn)
        return 1;
    PQclear(PQexec(conn, "SET TimeZone = 'Asia/Shanghai'"));
    const char *params[] = {argv[optind]};
    PGresult *res = PQexecParams(conn, s_query, 1, NULL, params, NULL, NULL, 0);
    int rc = 1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "vemctl explain: %s", PQerrorMessage(conn));
    } else if (PQntuples(res) == 0) {
        fprintf(stderr, "vemctl explain: %s: no such violation (or not visible to this role)\n",
                argv[optind]);
    } else {
        json_t *doc = json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, NULL);
        if (as_json) {
            vemctl_fmt_json(doc);
            json_dumpf(doc, stdout, VEMCTL_FMT_JSON_FLAGS | JSON_PRESERVE_ORDER);
            putchar('\n');
        } else {
            s_print(doc);
        }
        json_decref(doc);
        rc = 0;
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
usage:
    fprintf(stderr, "usage: vemctl explain VIOLATION_ID [--format text|json] [--db CONNINFO]\n");
    return 2;
}
