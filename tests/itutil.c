/* itutil — helpers of the end-to-end suites; see itutil.h. */
#include "itutil.h"

#include "testutil.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int vem_it_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

void vem_it_write_config(const vem_it_run_t *r, const char *log_level)
{
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", r->cfg);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    /* a key given twice is an error: r's pipeline settings may replace the drain timeout */
    const char *pipeline = r->pipeline_opts ? r->pipeline_opts : "";
    const char *drain = strstr(pipeline, "drain_timeout_s") ? "" : "drain_timeout_s = 20; ";
    const char *terminals = r->terminals_opts ? r->terminals_opts : "";
    const char *idle = strstr(terminals, "idle_timeout_s") ? "" : "idle_timeout_s = 3; ";
    const char *maxconn = strstr(terminals, "max_connections") ? "" : "max_connections = 2000; ";
    const char *reply = strstr(terminals, "reply_mode") ? "" : "reply_mode = \"hj1239\"; ";
    char metrics[128] = "enable = false;";
    if (r->metrics_port)
        snprintf(metrics, sizeof metrics, "address = \"127.0.0.1\"; port = %d;", r->metrics_port);
    fprintf(f,
            "terminals: { endpoint = \"tcp://127.0.0.1:%d\"; %s%s%s%s };\n"
            "gateways: { endpoint = \"ipc://%s/gateway.sock\"; %s };\n"
            "stations: { endpoint = \"ipc://%s/stations.sock\"; %s };\n"
            "control: { endpoint = \"%s\"; };\n"
            "metrics: { %s };\n"
            "pipeline: { workers = 2; %s%s };\n"
            "spool: { dir = \"%s/spool\"; fsync = true; %s };\n"
            "log: { level = \"%s\"; };\n"
            "pg: { conninfo = \"%s%s%s\"; %s };\n"
            "rules: { %s };\n",
            r->port, idle, maxconn, reply, terminals, r->dir,
            r->gateways_opts ? r->gateways_opts : "", r->dir,
            r->stations_opts ? r->stations_opts : "", r->control, metrics, drain, pipeline, r->dir,
            r->spool_opts ? r->spool_opts : "", log_level, vem_test_env("VEM_TEST_PG"),
            r->pg_user ? " user=" : "", r->pg_user ? r->pg_user : "", r->pg_opts ? r->pg_opts : "",
            r->rules_opts ? r->rules_opts : "enable = true;");
    if (r->kafka_opts)
        fprintf(f, "kafka: { enable = true; brokers = \"%s\"; %s };\n",
                vem_test_env("VEM_TEST_KAFKA"), r->kafka_opts);
    fclose(f);
    ck_assert_int_eq(rename(tmp, r->cfg), 0); /* vemd never reads a half-written file */
}

pid_t vem_it_spawn(char *const argv[], const char *out_path)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Appending keeps what earlier runs of the same vemd wrote (restarts in fault tests). */
        if (out_path && !freopen(out_path, "a", stdout))
            _exit(127);
        if (out_path && !freopen(out_path, "a", stderr))
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

int vem_it_wait(pid_t pid, int timeout_s)
{
    for (int i = 0; i < timeout_s * 10; i++) {
        int status;
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(100000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ck_abort_msg("process %d did not exit within %d s", (int)pid, timeout_s);
    return -1;
}

json_t *vem_it_status(const vem_it_run_t *r, const char *flags)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s/vemctl status --endpoint '%s' %s --timeout-ms 5000",
             vem_test_bin_dir(), r->control, flags);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    json_error_t err;
    json_t *j = json_loadf(p, 0, &err);
    int rc = pclose(p);
    if (rc != 0 || !j) {
        json_decref(j);
        return NULL;
    }
    return j;
}

double vem_it_metric(json_t *status, const char *series)
{
    json_t *v = json_object_get(json_object_get(status, "metrics"), series);
    return v ? json_number_value(v) : 0;
}

void vem_it_launch(vem_it_run_t *r)
{
    char vemd[300];
    snprintf(vemd, sizeof vemd, "%s/vemd", vem_test_bin_dir());
    char *argv[] = {vemd, "--config", r->cfg, NULL};
    r->vemd = vem_it_spawn(argv, r->log);
    for (int i = 0; i < 100; i++) { /* up to 10 s for READY */
        json_t *st = vem_it_status(r, "--json");
        if (st) {
            json_decref(st);
            return;
        }
        usleep(100000);
    }
    ck_abort_msg("vemd did not come up; see %s", r->log);
}

void vem_it_prepare(vem_it_run_t *r, const char *name)
{
    vem_test_mkdtemp(name, r->dir, sizeof r->dir);
    snprintf(r->cfg, sizeof r->cfg, "%s/vemd.cfg", r->dir);
    snprintf(r->control, sizeof r->control, "ipc://%s/control.sock", r->dir);
    snprintf(r->log, sizeof r->log, "%s/vemd.log", r->dir);
    r->port = vem_it_free_port();
    vem_it_write_config(r, "info");
}

void vem_it_start(vem_it_run_t *r, const char *name)
{
    vem_it_prepare(r, name);
    vem_it_launch(r);
}

json_t *vem_it_settled(const vem_it_run_t *r)
{
    double last = -1;
    for (int i = 0; i < 300; i++) {
        json_t *st = vem_it_status(r, "--json");
        ck_assert_ptr_nonnull(st);
        double inputs = vem_it_metric(st, "vem_inputs_total");
        double depth = vem_it_metric(st, "vem_queue_depth{stage=\"settle\"}");
        if (depth == 0 && inputs == last)
            return st;
        last = inputs;
        json_decref(st);
        usleep(200000);
    }
    ck_abort_msg("vemd did not settle");
    return NULL;
}

json_t *vem_it_sink_settled(const vem_it_run_t *r)
{
    double last = -1;
    for (int i = 0; i < 300; i++) {
        json_t *st = vem_it_settled(r);
        double pending = vem_it_metric(st, "vem_sink_pending_rows{sink=\"pg\"}");
        double dups =
            vem_it_metric(st, "vem_sink_duplicates_total{sink=\"pg\",table=\"obd_samples\"}");
        double rows = vem_it_metric(st, "vem_sink_rows_total{sink=\"pg\",table=\"obd_samples\"}");
        if (pending == 0 && dups + rows == last)
            return st;
        last = dups + rows;
        json_decref(st);
        usleep(300000);
    }
    ck_abort_msg("the sink did not settle");
    return NULL;
}

void vem_it_halt(vem_it_run_t *r)
{
    if (r->vemd == 0)
        return; /* halted already */
    ck_assert_int_eq(kill(r->vemd, SIGTERM), 0);
    int rc = vem_it_wait(r->vemd, 30);
    if (rc != 0)
        vem_it_show_log(r); /* a sanitizer's report, a drain that went wrong */
    ck_assert_int_eq(rc, 0);
    r->vemd = 0;
}

void vem_it_stop(vem_it_run_t *r)
{
    vem_it_halt(r);
    vem_test_rmtree(r->dir);
}

pid_t vem_it_run_sim_line(const vem_it_run_t *r, const char *args)
{
    char *buf = strdup(args);
    ck_assert_ptr_nonnull(buf);
    char *argv[32];
    int argc = 0;
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok && argc < 32;
         tok = strtok_r(NULL, " ", &save))
        argv[argc++] = tok;
    pid_t pid = vem_it_run_sim(r, argv, argc);
    free(buf);
    return pid;
}

pid_t vem_it_run_sim(const vem_it_run_t *r, char **extra, int n_extra)
{
    char sim[300], connect[64], truth[320];
    snprintf(sim, sizeof sim, "%s/vem-sim", vem_test_bin_dir());
    snprintf(connect, sizeof connect, "127.0.0.1:%d", r->port);
    snprintf(truth, sizeof truth, "%s/truth.json", r->dir);
    char *argv[40] = {sim, "--connect", connect, "--truth", truth, "--quiet"};
    int argc = 6;
    ck_assert_int_lt(n_extra, 40 - argc);
    for (int i = 0; i < n_extra; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    return vem_it_spawn(argv, NULL);
}

void vem_it_validate_events(const char *events_path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "python3 '%s/../../tests/kafka_validate.py' '%s/../../schema/kafka' '%s' >&2",
             vem_test_bin_dir(), vem_test_bin_dir(), events_path);
    ck_assert_msg(system(cmd) == 0, "events not valid against schema/kafka: %s", events_path);
}

json_t *vem_it_truth(const vem_it_run_t *r)
{
    char path[320];
    snprintf(path, sizeof path, "%s/truth.json", r->dir);
    json_error_t err;
    json_t *truth = json_load_file(path, 0, &err);
    ck_assert_msg(truth != NULL, "truth: %s", err.text);
    return truth;
}

/* ---- PostgreSQL ------------------------------------------------------------------------------ */

PGconn *vem_it_pg(void)
{
    return vem_it_pg_as(NULL);
}

PGconn *vem_it_pg_as(const char *user)
{
    char conninfo[600];
    snprintf(conninfo, sizeof conninfo, "%s%s%s", vem_test_env("VEM_TEST_PG"), user ? " user=" : "",
             user ? user : "");
    PGconn *conn = PQconnectdb(conninfo);
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
    return conn;
}

void vem_it_sql(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK,
                  "%s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
}

void vem_it_pgctl(const char *verb)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "'%s/../../tools/pgtmp.sh' %s '%s' >/dev/null", vem_test_bin_dir(),
             verb, vem_test_env("VEM_TEST_PGDIR"));
    ck_assert_msg(system(cmd) == 0, "%s", cmd);
}

json_t *vem_it_rows_by_vin(PGconn *conn, const char *table, const char *prefix)
{
    static const char *const sql[] = {
        "SELECT vin, count(*) FROM obd_samples WHERE vin LIKE $1 || '%' GROUP BY vin",
        "SELECT vin, count(*) FROM terminal_events WHERE vin LIKE $1 || '%' GROUP BY vin",
    };
    const char *params[] = {prefix};
    PGresult *res = PQexecParams(conn, sql[strcmp(table, "obd_samples") == 0 ? 0 : 1], 1, NULL,
                                 params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(conn));
    json_t *by_vin = json_object();
    for (int i = 0; i < PQntuples(res); i++)
        json_object_set_new(by_vin, PQgetvalue(res, i, 0),
                            json_integer(strtoll(PQgetvalue(res, i, 1), NULL, 10)));
    PQclear(res);
    return by_vin;
}

long long vem_it_total(json_t *by_vin)
{
    long long n = 0;
    const char *vin;
    json_t *v;
    json_object_foreach(by_vin, vin, v) n += json_integer_value(v);
    return n;
}

json_t *vem_it_expected_rows(json_t *truth, const char *table)
{
    long long k = json_integer_value(json_object_get(truth, "samples_per_frame"));
    json_t *want = json_object();
    const char *vin;
    json_t *counts;
    json_object_foreach(json_object_get(truth, "by_vehicle"), vin, counts)
    {
        long long n;
        json_t *generated = json_object_get(counts, "generated_samples");
        if (strcmp(table, "obd_samples") != 0)
            n = json_integer_value(json_object_get(counts, "login")) +
                json_integer_value(json_object_get(counts, "logout"));
        else if (generated)
            n = json_integer_value(generated);
        else
            n = k * (json_integer_value(json_object_get(counts, "realtime")) +
                     json_integer_value(json_object_get(counts, "resend")));
        json_object_set_new(want, vin, json_integer(n));
    }
    return want;
}

void vem_it_compare_rows(PGconn *conn, const char *table, const char *prefix, json_t *truth)
{
    json_t *want = vem_it_expected_rows(truth, table), *got = NULL;
    for (int i = 0; i < 600; i++) {
        json_decref(got);
        got = vem_it_rows_by_vin(conn, table, prefix);
        if (vem_it_total(got) >= vem_it_total(want))
            break;
        usleep(100000);
    }
    ck_assert_int_gt(vem_it_total(want), 0);
    ck_assert_uint_eq(json_object_size(got), json_object_size(want));
    const char *vin;
    json_t *n;
    json_object_foreach(want, vin, n)
    {
        json_t *have = json_object_get(got, vin);
        ck_assert_msg(have && json_integer_value(have) == json_integer_value(n),
                      "%s %s: vem-sim sent %lld rows' worth, PostgreSQL has %lld", table, vin,
                      (long long)json_integer_value(n),
                      (long long)(have ? json_integer_value(have) : 0));
    }
    json_decref(want);
    json_decref(got);
}

void vem_it_no_duplicate_samples(PGconn *conn, const char *prefix)
{
    const char *params[] = {prefix};
    PGresult *res = PQexecParams(conn,
                                 "SELECT count(*), count(DISTINCT (vin, sample_time, block_idx)) "
                                 "FROM obd_samples WHERE vin LIKE $1 || '%'",
                                 1, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(conn));
    long long rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    long long distinct = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    ck_assert_msg(rows == distinct, "obd_samples %s*: %lld rows but %lld distinct samples", prefix,
                  rows, distinct);
}

double vem_it_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void vem_it_sleep(double seconds)
{
    if (seconds <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)seconds,
                          .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

void vem_it_pg_up(void)
{
    if (PQping(vem_test_env("VEM_TEST_PG")) != PQPING_OK)
        vem_it_pgctl("start");
}

void vem_it_show_log(const vem_it_run_t *r)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "tail -n 20 '%s' | sed 's/^/  vemd: /' >&2", r->log);
    if (system(cmd) != 0)
        fprintf(stderr, "  (no vemd log at %s)\n", r->log);
}

bool vem_it_log_has(const vem_it_run_t *r, const char *text)
{
    size_t len;
    uint8_t *log = vem_test_slurp(r->log, &len);
    bool found = log && memmem(log, len, text, strlen(text)) != NULL;
    free(log);
    return found;
}

int vem_it_log_count(const vem_it_run_t *r, const char *text)
{
    size_t len;
    char *log = (char *)vem_test_slurp(r->log, &len);
    int n = 0;
    for (char *p = log; p && (p = memmem(p, len - (size_t)(p - log), text, strlen(text))); p++)
        n++;
    free(log);
    return n;
}

bool vem_it_log_until(const vem_it_run_t *r, const char *text, double timeout_s)
{
    double t0 = vem_it_mono();
    while (!vem_it_log_has(r, text)) {
        if (vem_it_mono() - t0 >= timeout_s)
            return false;
        vem_it_sleep(0.1);
    }
    return true;
}

double vem_it_metric_now(const vem_it_run_t *r, const char *series)
{
    json_t *st = vem_it_status(r, "--json");
    double v = st ? vem_it_metric(st, series) : 0;
    json_decref(st);
    return v;
}

double vem_it_metric_sum(const vem_it_run_t *r, const char *name)
{
    json_t *st = vem_it_status(r, "--json");
    ck_assert_ptr_nonnull(st);
    double sum = 0;
    const char *key;
    json_t *v;
    size_t len = strlen(name);
    json_object_foreach(json_object_get(st, "metrics"), key, v)
    {
        if (strncmp(key, name, len) == 0 && (key[len] == '\0' || key[len] == '{'))
            sum += json_number_value(v);
    }
    json_decref(st);
    return sum;
}

int vem_it_http_get(int port, const char *path, char *body, size_t cap)
{
    body[0] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    ck_assert_int_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    char resp[4096];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof resp - 1 && (got = recv(fd, resp + len, sizeof resp - 1 - len, 0)) > 0)
        len += (size_t)got;
    close(fd);
    resp[len] = '\0';
    int status = -1;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    const char *start = strstr(resp, "\r\n\r\n");
    if (start)
        snprintf(body, cap, "%s", start + 4);
    return status;
}

int vem_it_health_until(int port, int want, double timeout_s, char *body, size_t cap)
{
    double end = vem_it_mono() + timeout_s;
    int status;
    while ((status = vem_it_http_get(port, "/healthz", body, cap)) != want && vem_it_mono() < end)
        vem_it_sleep(0.2);
    return status;
}
