/* vemctl db — the database's schema and partitions.
 *
 *   vemctl db migrate    [--db CONNINFO] [--dir DIR]   apply the pending migrations
 *   vemctl db status     [--db CONNINFO] [--dir DIR]   applied and pending migrations
 *   vemctl db prune      [--db CONNINFO] (--keep-days N | --config FILE)
 *                                                      drop daily partitions past retention
 *   vemctl db partitions [--db CONNINFO] [--days-ahead N]
 *                                                      create partitions up to N days ahead
 *
 * Migrations are DIR/NNNN_name.sql, applied in name order, each once, in a transaction of its
 * own together with its row in schema_migrations (version, name, sha256, applied_at). A file
 * whose text changed after it was applied is an error: migrations are append-only. DIR is
 * --dir, else $VEM_SCHEMA_DIR, else ../../schema beside the binary (the build tree), else
 * ../share/vemd/schema beside it (an installed vemctl). --db is a libpq connection string
 * (empty: libpq's environment, PGHOST etc.). With --config, prune keeps pg.retention_days
 * days and connects with pg.conninfo of that vemd configuration.
 *
 * Exit 0 done, 1 a database error or a changed/pending migration (status), 2 usage. */
#include "vemctl.h"

#include "config.h"

#include <dirent.h>
#include <getopt.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_FILES 1000

static int s_usage(void)
{
    fprintf(stderr, "usage: vemctl db migrate    [--db CONNINFO] [--dir DIR]\n"
                    "       vemctl db status     [--db CONNINFO] [--dir DIR]\n"
                    "       vemctl db prune      [--db CONNINFO] (--keep-days N | --config FILE)\n"
                    "       vemctl db partitions [--db CONNINFO] [--days-ahead N]\n");
    return 2;
}

static bool s_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The migrations directory, as the header comment says. */
static bool s_schema_dir(const char *given, char *out, size_t cap)
{
    if (given) {
        snprintf(out, cap, "%s", given);
        return true;
    }
    const char *env = getenv("VEM_SCHEMA_DIR");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return true;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0)
        return false;
    exe[n] = '\0';
    const char *dir = dirname(exe);
    snprintf(out, cap, "%s/../../schema", dir);
    if (s_is_dir(out))
        return true;
    snprintf(out, cap, "%s/../share/vemd/schema", dir);
    return s_is_dir(out);
}

static int s_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* NNNN_name.sql files of dir, sorted; returns the count or -1. */
static int s_list(const char *dir, char **names, int cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        size_t len = strlen(e->d_name);
        if (len > 9 && strspn(e->d_name, "0123456789") == 4 && e->d_name[4] == '_' &&
            strcmp(e->d_name + len - 4, ".sql") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], s_cmp);
    return n;
}

static char *s_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (text && fread(text, 1, (size_t)len, f) != (size_t)len) {
        free(text);
        text = NULL;
    }
    if (text)
        text[len] = '\0';
    fclose(f);
    return text;
}

static bool s_ok(PGconn *conn, PGresult *res, const char *what)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return true;
    fprintf(stderr, "vemctl db: %s: %s", what, PQerrorMessage(conn));
    return false;
}

static bool s_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    bool ok = s_ok(conn, res, sql);
    PQclear(res);
    return ok;
}

PGconn *vemctl_db_connect(const char *conninfo)
{
    const char *keys[] = {"dbname", "application_name", NULL};
    const char *values[] = {conninfo ? conninfo : "", "vemctl", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "vemctl: connecting to PostgreSQL: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PQclear(PQexec(conn, "SET client_min_messages = warning"));
    return conn;
}

/* sha256 of a file's text, computed by the server (no hashing code of ours). */
static bool s_sha256(PGconn *conn, const char *text, char out[65])
{
    const char *params[] = {text};
    PGresult *res = PQexecParams(conn, "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", 1,
                                 NULL, params, NULL, NULL, 0);
    bool ok = s_ok(conn, res, "sha256");
    if (ok)
        snprintf(out, 65, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return ok;
}

/* The recorded checksum of version into out ("" when not applied); false on error. */
static bool s_applied(PGconn *conn, const char *version, char out[65], char when[40])
{
    const char *params[] = {version};
    PGresult *res =
        PQexecParams(conn,
                     "SELECT sha256, to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS OF') FROM "
                     "schema_migrations WHERE version = $1",
                     1, NULL, params, NULL, NULL, 0);
    bool ok = s_ok(conn, res, "reading schema_migrations");
    out[0] = when[0] = '\0';
    if (ok && PQntuples(res) == 1) {
        snprintf(out, 65, "%s", PQgetvalue(res, 0, 0));
        snprintf(when, 40, "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return ok;
}

static int s_migrate(PGconn *conn, const char *dir, bool apply)
{
    if (!s_exec(conn, "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, "
                      "name text NOT NULL, sha256 text NOT NULL, applied_at timestamptz NOT NULL "
                      "DEFAULT now())"))
        return 1;
    char *names[S_MAX_FILES];
    int n = s_list(dir, names, S_MAX_FILES);
    if (n < 0) {
        fprintf(stderr, "vemctl db: cannot read the migrations directory %s\n", dir);
        return 1;
    }
    if (n == 0)
        fprintf(stderr, "vemctl db: no NNNN_name.sql files in %s\n", dir);
    int rc = 0, applied = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char path[PATH_MAX + 256], version[5], sum[65], recorded[65], when[40];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        memcpy(version, names[i], 4);
        version[4] = '\0';
        char *text = s_read(path);
        if (!text) {
            fprintf(stderr, "vemctl db: cannot read %s\n", path);
            rc = 1;
            break;
        }
        /* one migrator at a time; the lock goes with the transaction */
        if (!s_exec(conn, "BEGIN") ||
            !s_exec(conn, "SELECT pg_advisory_xact_lock(hashtext('vem schema_migrations'))") ||
            !s_sha256(conn, text, sum) || !s_applied(conn, version, recorded, when)) {
            rc = 1;
        } else if (recorded[0] && strcmp(recorded, sum) != 0) {
            fprintf(stderr,
                    "vemctl db: %s changed after it was applied on %s (recorded sha256 %.12s…, "
                    "file %.12s…): migrations are append-only, write a new one\n",
                    names[i], when, recorded, sum);
            rc = 1;
        } else if (recorded[0]) {
            if (!apply)
                printf("applied  %s  %s\n", when, names[i]);
        } else if (!apply) {
            printf("pending  %s\n", names[i]);
            rc = 1;
        } else {
            PGresult *res = PQexec(conn, text);
            if (!s_ok(conn, res, names[i])) {
                rc = 1;
            } else {
                const char *params[] = {version, names[i], sum};
                PGresult *ins = PQexecParams(
                    conn,
                    "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)", 3,
                    NULL, params, NULL, NULL, 0);
                rc = s_ok(conn, ins, "recording the migration") ? 0 : 1;
                PQclear(ins);
            }
            PQclear(res);
            if (rc == 0) {
                printf("applied  %s\n", names[i]);
                applied++;
            }
        }
        s_exec(conn, rc == 0 ? "COMMIT" : "ROLLBACK");
        free(text);
    }
    if (apply && rc == 0)
        printf("%d migration%s applied, schema up to date\n", applied, applied == 1 ? "" : "s");
    for (int i = 0; i < n; i++)
        free(names[i]);
    return rc;
}

static int s_prune(PGconn *conn, long keep)
{
    char days[24];
    snprintf(days, sizeof days, "%ld", keep);
    const char *params[] = {days};
    PGresult *res = PQexecParams(conn,
                                 "SELECT vem_drop_partitions((now() AT TIME ZONE "
                                 "'Asia/Shanghai')::date - $1::int)",
                                 1, NULL, params, NULL, NULL, 0);
    if (!s_ok(conn, res, "dropping partitions")) {
        PQclear(res);
        return 1;
    }
    for (int i = 0; i < PQntuples(res); i++)
        printf("dropped %s\n", PQgetvalue(res, i, 0));
    printf("%d partition%s dropped; keeping %ld days\n", PQntuples(res),
           PQntuples(res) == 1 ? "" : "s", keep);
    PQclear(res);
    return 0;
}

static int s_partitions(PGconn *conn, long ahead)
{
    char days[24];
    snprintf(days, sizeof days, "%ld", ahead);
    const char *params[] = {days};
    PGresult *res = PQexecParams(conn,
                                 "SELECT vem_ensure_partitions((now() AT TIME ZONE "
                                 "'Asia/Shanghai')::date - 1, (now() AT TIME ZONE "
                                 "'Asia/Shanghai')::date + $1::int)",
                                 1, NULL, params, NULL, NULL, 0);
    if (!s_ok(conn, res, "creating partitions")) {
        PQclear(res);
        return 1;
    }
    printf("%s partitions created\n", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

int vemctl_db_main(int argc, char **argv)
{
    if (argc < 2)
        return s_usage();
    const char *verb = argv[1];
    static const struct option options[] = {{"db", required_argument, NULL, 'd'},
                                            {"dir", required_argument, NULL, 's'},
                                            {"keep-days", required_argument, NULL, 'k'},
                                            {"config", required_argument, NULL, 'c'},
                                            {"days-ahead", required_argument, NULL, 'a'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *db = NULL, *dir = NULL, *config = NULL;
    long keep = -1, ahead = 3;
    int opt;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "d:s:k:c:a:h", options, NULL)) != -1) {
        switch (opt) {
        case 'd':
            db = optarg;
            break;
        case 's':
            dir = optarg;
            break;
        case 'k':
            keep = strtol(optarg, NULL, 10);
            break;
        case 'c':
            config = optarg;
            break;
        case 'a':
            ahead = strtol(optarg, NULL, 10);
            break;
        default:
            return s_usage();
        }
    }
    if (optind != argc || ahead < 0 || ahead > 366)
        return s_usage();
    vem_config_t *cfg = NULL;
    if (config) {
        char err[512];
        cfg = vem_config_load(config, err, sizeof err);
        if (!cfg) {
            fprintf(stderr, "vemctl db: %s\n", err);
            return 1;
        }
        if (keep < 0)
            keep = (long)cfg->pg.retention_days;
        if (!db)
            db = cfg->pg.conninfo;
    }
    int rc = 2;
    bool known = strcmp(verb, "migrate") == 0 || strcmp(verb, "status") == 0 ||
                 strcmp(verb, "prune") == 0 || strcmp(verb, "partitions") == 0;
    if (!known || (strcmp(verb, "prune") == 0 && keep < 1)) {
        vem_config_destroy(&cfg);
        return s_usage();
    }
    char schema[PATH_MAX];
    if ((strcmp(verb, "migrate") == 0 || strcmp(verb, "status") == 0) &&
        !s_schema_dir(dir, schema, sizeof schema)) {
        fprintf(stderr, "vemctl db: no migrations directory; give --dir\n");
        vem_config_destroy(&cfg);
        return 1;
    }
    PGconn *conn = vemctl_db_connect(db);
    if (!conn) {
        vem_config_destroy(&cfg);
        return 1;
    }
    if (strcmp(verb, "migrate") == 0)
        rc = s_migrate(conn, schema, true);
    else if (strcmp(verb, "status") == 0)
        rc = s_migrate(conn, schema, false);
    else if (strcmp(verb, "prune") == 0)
        rc = s_prune(conn, keep);
    else
        rc = s_partitions(conn, ahead);
    PQfinish(conn);
    vem_config_destroy(&cfg);
    return rc;
}
