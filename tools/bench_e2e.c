/* bench-e2e — vemd end to end: terminals over TCP, spool, workers, sink, rows in PostgreSQL.
 *
 *   bench-e2e [--seconds S] [--conns N] [--frames F] [--window W] [--outage S] [--outage-rate R]
 *             [--pg-connections N]
 *
 * Needs a server: with VEM_TEST_PG set it uses that cluster (migrations applied, VEM_TEST_PGDIR
 * to stop and start it); without, it runs itself again under tests/harness.sh.
 *
 * vemd runs as built (build/bin/vemd) with its defaults except what a test run must change:
 * the terminal endpoint (a free loopback port), the metrics port, the control socket and the
 * spool directory (in the scratch directory), pg.conninfo and pg.connections (--pg-connections,
 * default 1). So: spool on with fsync, reply_mode none, one worker per core, pg.batch_rows
 * 20000, pg.batch_ms 200.
 *
 * The load generator lives in this process, one thread, non-blocking sockets: it pre-encodes
 * with the simulator's encoder (tools/sim_frames.h) a login and F (default 2000) real-time
 * frames of ten 1 Hz samples (HJ 1239 layout, per-block times, signature, supplementary block,
 * no OBD block) per connection (default 200), one VIN per connection, increasing times, so
 * every row is new; the hot loop only writes bytes. A stream written to its end starts over
 * with the VINs of the next generation (patched in place, see s_set_gen). Frames count once
 * all their bytes were written.
 *
 * Samples are counted in obd_frames itself (each frame row its nsamples), and timed by their
 * frame's commit: the cluster runs with track_commit_timestamp = on (set here, then
 * restarted), so pg_xact_commit_timestamp(xmin) is when a row became visible, and received_at is
 * vemd's receipt time (before its spool append). vemd's vem_stage_seconds{stage="pg"} histogram is
 * not used: it takes one observation per batch, of its oldest input, so its quantiles are of the
 * worst row of each batch rather than of rows.
 *
 * Phase 1, throughput (S seconds, default 20): the connections write as fast as vemd reads,
 * as long as fewer than W samples (default 400000, 20 of the sink's batches) wait for their
 * commit. The loop is closed because vemd takes bytes far faster than it stores rows and holds
 * what it took in memory: open, it would measure how much it can hold. Then each stream stops
 * at a frame boundary and everything written must reach obd_frames.
 *   samples_per_s      rows after the first commit / (last commit - first commit): the first
 *                      commit's rows arrived before the clock could start
 *   sat_p50_ms ...     commit time - received_at over every row: mostly the wait behind the
 *                      window's rows
 *   CPU seconds per vemd thread (/proc/PID/task/TID/stat and comm), per server process and of
 *                      this process, from the start of the load until the last row
 * Phase 2, ceiling: the same frames vemd stored, in the order they were written to the
 * sockets, decoded and turned into rows by pgrows as the workers do, COPY BINARY in batches
 * of 20000 samples through vem_pgwriter_copy_plain into bench_plain_frames (obd_frames'
 * columns, daily partitions and unique key, as bench-pg), after a CHECKPOINT, vemd idle.
 *   copy_samples_per_s, and ratio = samples_per_s / copy_samples_per_s
 * Phase 3, paced: the connections send R samples/s in total (default 20000), frames due by
 * the clock; one that fell behind writes what it owes as fast as it can, the way terminals
 * send what they stored.
 *   p50_ms p99_ms      commit time - received_at of the rows of its first 5 s: the latency
 *                      when vemd keeps up
 * then, unless --outage 0, PostgreSQL is stopped for S seconds (default 60) and started again.
 *   catchup_samples_per_s  rows committed from the start of the restart until the rows reached
 *                      every sample due at the restart / that time, reconnection included
 *   outage_frames_written / _due  frames written while the server was down / due meanwhile:
 *                      a daemon that stops reading while its sink is down stalls the writes
 * rss_kb is vemd's VmHWM at the end. The last line is key=value figures; those of a phase that
 * did not run are nan or 0. */
#include "bench_util.h"
#include "hj1239.h"
#include "pgrows.h"
#include "pgwrite.h"
#include "sim_fleet.h"
#include "sim_frames.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    S_SAMPLES = 10,       /* samples per real-time frame */
    S_BATCH_ROWS = 20000, /* the ceiling's COPY size: pg.batch_rows' default */
    S_MAX_TASKS = 512,
};

#define S_WARM_S        5.0 /* paced load before the outage */
#define S_CATCHUP_MIN_S 60.0

/* ---- small helpers --------------------------------------------------------------------------- */

static double s_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *s_alloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        abort();
    return p;
}

static int s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Runs argv to completion within timeout_s (killed after); returns its exit status. */
static int s_run(char *const argv[], int timeout_s)
{
    pid_t pid = fork();
    if (pid < 0)
        vem_bench_die("fork", strerror(errno));
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    double deadline = vem_bench_now() + timeout_s;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (vem_bench_now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "bench-e2e: %s did not finish within %d s\n", argv[0], timeout_s);
            return -1;
        }
        vem_bench_sleep(0.05);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* tools/pgtmp.sh stop|start on the harness's cluster. */
static void s_pgtmp(const char *cmd)
{
    char dir[PATH_MAX], script[PATH_MAX + 64], pgdir[PATH_MAX];
    vem_bench_exe_dir(dir, sizeof dir);
    snprintf(script, sizeof script, "%s/../../tools/pgtmp.sh", dir);
    snprintf(pgdir, sizeof pgdir, "%s", vem_bench_env("VEM_TEST_PGDIR"));
    char *argv[] = {script, (char *)cmd, pgdir, NULL};
    if (s_run(argv, 90) != 0)
        vem_bench_die("pgtmp.sh", cmd);
}

/* ---- PostgreSQL ------------------------------------------------------------------------------ */

static PGconn *s_pg(void)
{
    PGconn *conn = PQconnectdb(vem_bench_env("VEM_TEST_PG"));
    if (PQstatus(conn) != CONNECTION_OK)
        vem_bench_die("connect", PQerrorMessage(conn));
    return conn;
}

static PGresult *s_query(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        vem_bench_die(sql, PQerrorMessage(conn));
    return res;
}

/* Commit timestamps need the setting at server start: set it, restart, check. */
static void s_enable_commit_timestamps(void)
{
    PGconn *conn = s_pg();
    vem_bench_exec(conn, "ALTER SYSTEM SET track_commit_timestamp = on");
    PQfinish(conn);
    s_pgtmp("stop");
    s_pgtmp("start");
    conn = s_pg();
    PGresult *res = s_query(conn, "SHOW track_commit_timestamp", 0, NULL);
    if (strcmp(PQgetvalue(res, 0, 0), "on") != 0)
        vem_bench_die("track_commit_timestamp", "still off after a restart");
    PQclear(res);
    PQfinish(conn);
}

/* The commits that stored the rows of VINs starting with prefix, in time order. */
typedef struct {
    double *at; /* commit time, epoch seconds */
    uint64_t *rows;
    size_t n;
    uint64_t total;
} s_commits_t;

static s_commits_t s_commits(const char *prefix)
{
    PGconn *conn = s_pg();
    const char *params[] = {prefix};
    PGresult *res = s_query(conn,
                            "SELECT extract(epoch FROM ct)::float8, n FROM ("
                            " SELECT pg_xact_commit_timestamp(xmin) AS ct, sum(nsamples) AS n"
                            " FROM obd_frames WHERE vin LIKE $1 || '%' GROUP BY 1) c ORDER BY 1",
                            1, params);
    s_commits_t c = {.n = (size_t)PQntuples(res)};
    c.at = s_alloc((c.n + 1) * sizeof *c.at);
    c.rows = s_alloc((c.n + 1) * sizeof *c.rows);
    for (size_t i = 0; i < c.n; i++) {
        if (PQgetisnull(res, (int)i, 0))
            vem_bench_die("pg_xact_commit_timestamp", "rows without a commit timestamp");
        c.at[i] = strtod(PQgetvalue(res, (int)i, 0), NULL);
        c.rows[i] = strtoull(PQgetvalue(res, (int)i, 1), NULL, 10);
        c.total += c.rows[i];
    }
    PQclear(res);
    PQfinish(conn);
    return c;
}

static void s_commits_free(s_commits_t *c)
{
    free(c->at);
    free(c->rows);
}

/* p50 and p99 of commit time - received_at, in ms, for the prefix's rows received in
 * [from, to) (epoch seconds). */
static void s_latency(const char *prefix, double from, double to, double *p50, double *p99)
{
    PGconn *conn = s_pg();
    char a[32], b[32];
    snprintf(a, sizeof a, "%.6f", from);
    snprintf(b, sizeof b, "%.6f", to);
    const char *params[] = {prefix, a, b};
    PGresult *res =
        s_query(conn,
                "SELECT percentile_cont(ARRAY[0.5, 0.99]::float8[]) WITHIN GROUP (ORDER BY"
                " extract(epoch FROM pg_xact_commit_timestamp(f.xmin) - f.received_at))"
                " FROM obd_frames f CROSS JOIN generate_series(1, f.nsamples)"
                " WHERE f.vin LIKE $1 || '%' AND f.received_at >= to_timestamp($2::float8)"
                " AND f.received_at < to_timestamp($3::float8)",
                3, params);
    *p50 = *p99 = NAN;
    if (!PQgetisnull(res, 0, 0) && sscanf(PQgetvalue(res, 0, 0), "{%lf,%lf}", p50, p99) == 2) {
        *p50 *= 1000;
        *p99 *= 1000;
    }
    PQclear(res);
    PQfinish(conn);
}

/* ---- vemd ------------------------------------------------------------------------------------ */

typedef struct {
    vem_bench_vemd_t proc; /* its directory, files and pid */
    int port, metrics_port;
} s_vemd_t;

/* pg_connections: pg.connections (the sink's parallel COPY lanes). */
static void s_vemd_start(s_vemd_t *v, unsigned pg_connections)
{
    vem_bench_vemd_init(&v->proc, "bench-e2e");
    v->port = vem_bench_free_port();
    v->metrics_port = vem_bench_free_port();
    /* Only what a test run must change; everything else stays vemd's default (but the limits
     * per source address: every connection comes from 127.0.0.1, up to 5000 at once). */
    vem_bench_vemd_start(
        &v->proc,
        "terminals: { endpoint = \"tcp://127.0.0.1:%d\"; max_per_address = 1000000; "
        "new_per_address_s = 1000000; };\n"
        "gateways: { endpoint = \"\"; };\n"
        "stations: { endpoint = \"\"; };\n"
        "control: { endpoint = \"ipc://%s/control.sock\"; };\n"
        "metrics: { port = %d; };\n"
        "spool: { dir = \"%s/spool\"; };\n"
        "pg: { conninfo = \"%s\"; connections = %u; };\n",
        v->port, v->proc.dir, v->metrics_port, v->proc.dir, vem_bench_env("VEM_TEST_PG"),
        pg_connections);
}

/* GET path from vemd's metrics endpoint into a malloc'd string; NULL when it does not answer. */
static char *s_http_get(int port, const char *path)
{
    int fd = s_connect(port);
    if (fd < 0)
        return NULL;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return NULL;
    }
    size_t len = 0, cap = 65536;
    char *buf = s_alloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (cap - len < 4096)
            buf = realloc(buf, cap *= 2);
        if (!buf)
            abort();
    }
    close(fd);
    buf[len] = '\0';
    if (r < 0 || strncmp(buf, "HTTP/1.", 7) != 0 || !strstr(buf, " 200 ")) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Value of one series (`name{labels}` exactly as rendered), NAN when absent. */
static double s_series(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}

static double s_metric(const s_vemd_t *v, const char *series)
{
    char *text = s_http_get(v->metrics_port, "/metrics");
    double value = text ? s_series(text, series) : NAN;
    free(text);
    return value;
}

/* Prints the series whose names start with one of the prefixes, on one line. */
static void s_print_series(const s_vemd_t *v, const char *title, const char *a, const char *b,
                           const char *c)
{
    char *text = s_http_get(v->metrics_port, "/metrics");
    printf("vemd %s", title);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        size_t len = strcspn(p, "\n");
        if (strncmp(p, a, strlen(a)) == 0 || strncmp(p, b, strlen(b)) == 0 ||
            strncmp(p, c, strlen(c)) == 0)
            printf(" %.*s", (int)len, p);
    }
    printf("\n");
    free(text);
}

#define S_ROWS_SERIES "vem_sink_rows_total{sink=\"pg\",table=\"obd_samples\"}"

/* True once vemd's PostgreSQL sink is connected (arg: the s_vemd_t). */
static bool s_sink_up(void *arg)
{
    return s_metric(arg, "vem_sink_up{sink=\"pg\"}") == 1;
}

/* Waits until vemd's sink has committed at least rows sample rows, or progress stops for
 * stall_s, or max_s pass. Returns the last value read. */
static double s_wait_rows(const s_vemd_t *v, double rows, double stall_s, double max_s)
{
    double start = vem_bench_now(), last_change = start, last = -1, now;
    while ((now = vem_bench_now()) - start < max_s) {
        double got = s_metric(v, S_ROWS_SERIES);
        if (!isnan(got) && got >= rows)
            return got;
        if (got != last) {
            last = got;
            last_change = now;
        } else if (now - last_change > stall_s) {
            break;
        }
        vem_bench_sleep(0.1);
    }
    return last;
}

static long s_vmhwm_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* ---- CPU accounting from /proc --------------------------------------------------------------- */

typedef struct {
    int id;
    char name[96];
    double cpu_s; /* utime + stime */
} s_task_t;

typedef struct {
    s_task_t t[S_MAX_TASKS];
    size_t n;
} s_tasks_t;

/* comm and utime + stime of /proc/.../stat; false when unreadable. ppid may be NULL. */
static bool s_stat(const char *path, char *comm, size_t cap, double *cpu_s, int *ppid)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close || close < open)
        return false;
    snprintf(comm, cap, "%.*s", (int)(close - open - 1), open + 1);
    /* after ")": state(3) ppid(4) ... utime(14) stime(15) */
    char state;
    int parent;
    unsigned long long skip, utime, stime;
    if (sscanf(close + 2, "%c %d %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &state,
               &parent, &skip, &skip, &skip, &skip, &skip, &skip, &skip, &skip, &skip, &utime,
               &stime) != 13)
        return false;
    *cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    if (ppid)
        *ppid = parent;
    return true;
}

/* Threads of pid, named by comm. */
static void s_threads(pid_t pid, s_tasks_t *out)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    out->n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && out->n < S_MAX_TASKS) {
        int tid = atoi(e->d_name);
        char path[128];
        snprintf(path, sizeof path, "%s/%d/stat", dir, tid);
        s_task_t *t = &out->t[out->n];
        if (tid > 0 && s_stat(path, t->name, sizeof t->name, &t->cpu_s, NULL)) {
            t->id = tid;
            out->n++;
        }
    }
    if (d)
        closedir(d);
}

/* The PostgreSQL server's processes (postmaster and its children), named by their titles. */
static void s_server_procs(s_tasks_t *out)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/data/postmaster.pid", vem_bench_env("VEM_TEST_PGDIR"));
    out->n = 0;
    FILE *f = fopen(path, "r");
    int postmaster = 0;
    if (!f || fscanf(f, "%d", &postmaster) != 1) {
        if (f)
            fclose(f);
        return;
    }
    fclose(f);
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) && out->n < S_MAX_TASKS) {
        int pid = atoi(e->d_name), ppid = 0;
        if (pid <= 0)
            continue;
        s_task_t *t = &out->t[out->n];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        if (!s_stat(path, t->name, sizeof t->name, &t->cpu_s, &ppid) ||
            (pid != postmaster && ppid != postmaster))
            continue;
        /* the process title says what it is ("postgres: walwriter", "... vem [local] COPY") */
        snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
        FILE *c = fopen(path, "r");
        if (c) {
            size_t n = fread(t->name, 1, sizeof t->name - 1, c);
            t->name[n] = '\0';
            fclose(c);
        }
        t->id = pid;
        out->n++;
    }
    if (d)
        closedir(d);
}

/* Prints the CPU seconds each task used between the snapshots (tasks of the second one). */
static void s_print_cpu(const char *what, const s_tasks_t *before, const s_tasks_t *after,
                        double seconds)
{
    double total = 0;
    printf("cpu %s, seconds over %.1f s:", what, seconds);
    for (size_t i = 0; i < after->n; i++) {
        double prev = 0;
        for (size_t j = 0; j < before->n; j++)
            if (before->t[j].id == after->t[i].id)
                prev = before->t[j].cpu_s;
        double used = after->t[i].cpu_s - prev;
        total += used;
        if (used >= 0.05)
            printf(" [%s]=%.2f", after->t[i].name, used);
    }
    printf(" total=%.2f (%.2f of a core)\n", total, total / seconds);
}

/* ---- load generator -------------------------------------------------------------------------- */

typedef struct {
    uint8_t *bytes;
    size_t len, cap;
    size_t *ends; /* ends[i]: offset just past frame i; frame 0 is the login */
    size_t nframes;
    int fd;
    size_t off;       /* bytes written */
    size_t done;      /* frames all of whose bytes were written */
    size_t limit;     /* bytes the generator may write this round */
    unsigned gen;     /* generation of the VINs in bytes */
    uint64_t written; /* data frames written, all generations */
} s_conn_t;

/* Data frames [from, to) of connection conn (counted over all generations) were completed by
 * one write: the log of these is the order in which rows entered vemd. */
typedef struct {
    unsigned conn;
    uint64_t from, to;
} s_sent_t;

typedef struct {
    s_conn_t *conns;
    unsigned n;
    s_sent_t *log; /* written by the generator thread; read after s_gen_stop */
    size_t nlog, log_cap;
    double fps;      /* paced: data frames per second per connection; 0: as fast as possible */
    uint64_t window; /* unpaced: most samples written but not yet committed */
    atomic_uint_fast64_t committed; /* rows vemd committed since the start, set by main */
    double start;                   /* monotonic */
    pthread_t thread;
    atomic_bool stop;
    atomic_uint_fast64_t frames; /* data frames (logins not counted) fully written */
    atomic_uint_fast64_t closed; /* connections vemd closed or reset */
    atomic_bool exhausted;       /* paced: a connection wrote all its frames */
    double stopped_at;           /* monotonic, when the last partial frame was finished */
} s_gen_t;

static void s_put(s_conn_t *c, const uint8_t *p, size_t len)
{
    if (c->len + len > c->cap) {
        while (c->len + len > c->cap)
            c->cap = c->cap ? c->cap * 2 : 1 << 20;
        c->bytes = realloc(c->bytes, c->cap);
        if (!c->bytes)
            abort();
    }
    memcpy(c->bytes + c->len, p, len);
    c->len += len;
    c->ends[c->nframes++] = c->len;
}

/* VINs are a 5-letter prefix, a 3-digit generation and a 9-digit connection index. A stream
 * written to its end starts again as the next generation: the same bytes with other VINs, so
 * its rows are new again and the generator never runs dry. The VIN is at offset 3 of a frame,
 * inside the BCC's range: changing it changes the BCC by the XOR of the old and new bytes. */
enum { S_VIN_OFF = 3, S_GEN_OFF = S_VIN_OFF + 5 };

static void s_set_gen(uint8_t *frame, size_t len, unsigned gen)
{
    char digits[4];
    snprintf(digits, sizeof digits, "%03u", gen % 1000);
    for (int i = 0; i < 3; i++) {
        frame[len - 1] ^= (uint8_t)(frame[S_GEN_OFF + i] ^ (uint8_t)digits[i]);
        frame[S_GEN_OFF + i] = (uint8_t)digits[i];
    }
}

static void s_next_gen(s_conn_t *c)
{
    c->gen++;
    for (size_t k = 0; k < c->nframes; k++) {
        size_t start = k ? c->ends[k - 1] : 0;
        s_set_gen(c->bytes + start, c->ends[k] - start, c->gen);
    }
    c->off = 0;
    c->done = 0;
}

/* Connection index's stream: a login, then frames real-time frames of S_SAMPLES samples,
 * the first collected at t0, one truck of the simulator's fleet driving. */
static void s_encode(s_conn_t *c, const char *prefix, unsigned index, unsigned frames, int64_t t0,
                     vem_hj1239_frame_t *scratch)
{
    vem_sim_truck_t truck;
    vem_sim_truck_init(&truck, 1239, index, 118.796877, 32.060255, 0);
    snprintf(truck.vin, sizeof truck.vin, "%.5s000%09u", prefix, index % 1000000000u);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->ends = s_alloc((frames + 1) * sizeof *c->ends);
    uint8_t buf[4096];
    size_t len = vem_sim_login(scratch, truck.vin, t0, 1, buf, sizeof buf);
    if (len == 0)
        vem_bench_die("encode", "login frame does not fit");
    s_put(c, buf, len);
    vem_sim_sample_t samples[S_SAMPLES];
    for (unsigned k = 0; k < frames; k++) {
        for (int i = 0; i < S_SAMPLES; i++)
            samples[i] = *vem_sim_truck_step(&truck);
        len = vem_sim_data(scratch, &truck, samples, S_SAMPLES, t0 + (int64_t)k * S_SAMPLES,
                           (uint16_t)(k + 1), false, true, false, buf, sizeof buf);
        if (len == 0)
            vem_bench_die("encode", "data frame does not fit");
        s_put(c, buf, len);
    }
    if (memcmp(c->bytes + S_VIN_OFF, truck.vin, 17) != 0)
        vem_bench_die("encode", "the VIN is not where the generator patches it");
}

static void s_conns_free(s_conn_t *conns, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (conns[i].fd >= 0)
            close(conns[i].fd);
        free(conns[i].bytes);
        free(conns[i].ends);
    }
    free(conns);
}

/* Bytes the connection may have written by now: all of them, or the frames due by the clock;
 * when stopping, only the rest of a frame already begun. */
static size_t s_limit(const s_gen_t *g, const s_conn_t *c, double now, bool stopping)
{
    if (stopping)
        return c->done < c->nframes && c->off > (c->done ? c->ends[c->done - 1] : 0)
                   ? c->ends[c->done]
                   : c->off;
    if (g->fps <= 0)
        return c->len;
    double due = 1 + floor((now - g->start) * g->fps) + 1; /* the login and frames due */
    return due >= (double)c->nframes ? c->len : c->ends[(size_t)due - 1];
}

static void s_log_sent(s_gen_t *g, unsigned conn, uint64_t from, uint64_t to)
{
    s_sent_t *last = g->nlog ? &g->log[g->nlog - 1] : NULL;
    if (last && last->conn == conn && last->to == from) {
        last->to = to;
        return;
    }
    if (g->nlog == g->log_cap) {
        g->log_cap = g->log_cap ? g->log_cap * 2 : 4096;
        g->log = realloc(g->log, g->log_cap * sizeof *g->log);
        if (!g->log)
            abort();
    }
    g->log[g->nlog++] = (s_sent_t){.conn = conn, .from = from, .to = to};
}

static void *s_generate(void *arg)
{
    s_gen_t *g = arg;
    struct pollfd *pfd = s_alloc(g->n * sizeof *pfd);
    static uint8_t sink[65536];
    double stop_deadline = 0;
    for (;;) {
        bool stopping = atomic_load(&g->stop);
        double now = vem_bench_now();
        if (stopping && stop_deadline == 0)
            stop_deadline = now + 10; /* a stalled vemd must not hold the benchmark */
        bool pending = false;
        bool held = g->window &&
                    atomic_load(&g->frames) * S_SAMPLES >= atomic_load(&g->committed) + g->window;
        for (unsigned i = 0; i < g->n; i++) {
            s_conn_t *c = &g->conns[i];
            c->limit = c->fd >= 0 && (!held || stopping) ? s_limit(g, c, now, stopping) : c->off;
            pending |= c->off < c->limit;
            pfd[i] = (struct pollfd){.fd = c->fd,
                                     .events = (short)(POLLIN | (c->off < c->limit ? POLLOUT : 0))};
        }
        if (stopping && (!pending || now > stop_deadline))
            break;
        if (poll(pfd, g->n, 10) < 0 && errno != EINTR)
            break;
        for (unsigned i = 0; i < g->n; i++) {
            s_conn_t *c = &g->conns[i];
            short ev = pfd[i].revents;
            if (c->fd < 0 || !ev)
                continue;
            if (ev & (POLLIN | POLLERR | POLLHUP)) { /* replies (logins) are read and dropped */
                ssize_t r = read(c->fd, sink, sizeof sink);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    close(c->fd);
                    c->fd = -1;
                    atomic_fetch_add(&g->closed, 1);
                    continue;
                }
            }
            if (!(ev & POLLOUT))
                continue;
            size_t want = c->limit - c->off;
            ssize_t w = send(c->fd, c->bytes + c->off, want > (1u << 16) ? 1u << 16 : want,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w <= 0)
                continue; /* EAGAIN; a reset shows up as POLLERR next round */
            c->off += (size_t)w;
            uint64_t whole = 0;
            while (c->done < c->nframes && c->ends[c->done] <= c->off)
                whole += c->done++ > 0;
            if (whole > 0)
                s_log_sent(g, i, c->written, c->written + whole);
            c->written += whole;
            atomic_fetch_add(&g->frames, whole);
            if (c->done == c->nframes && g->fps > 0)
                atomic_store(&g->exhausted, true);
            else if (c->done == c->nframes && !stopping)
                s_next_gen(c);
        }
    }
    g->stopped_at = vem_bench_now();
    free(pfd);
    return NULL;
}

/* Connects every stream and starts writing: fps data frames per second on each, or as fast as
 * vemd reads while fewer than window samples wait for their commit. */
static void s_gen_start(s_gen_t *g, s_conn_t *conns, unsigned n, double fps, uint64_t window,
                        int port)
{
    memset(g, 0, sizeof *g);
    g->conns = conns;
    g->n = n;
    g->fps = fps;
    g->window = window;
    for (unsigned i = 0; i < n; i++)
        if ((conns[i].fd = s_connect(port)) < 0)
            vem_bench_die("connect to vemd", strerror(errno));
    g->start = vem_bench_now();
    if (pthread_create(&g->thread, NULL, s_generate, g) != 0)
        vem_bench_die("pthread_create", "generator");
}

/* Stops writing at frame boundaries; the connections stay open until s_conns_free, the send
 * log until s_gen_free. */
static void s_gen_stop(s_gen_t *g)
{
    atomic_store(&g->stop, true);
    pthread_join(g->thread, NULL);
}

static void s_gen_free(s_gen_t *g)
{
    free(g->log);
    g->log = NULL;
    g->nlog = g->log_cap = 0;
}

/* Data frames due by the clock at monotonic time t for a paced generator. */
static uint64_t s_gen_due(const s_gen_t *g, double t)
{
    uint64_t due = 0;
    for (unsigned i = 0; i < g->n; i++) {
        double d = floor((t - g->start) * g->fps) + 1;
        due += (uint64_t)fmin(d, (double)(g->conns[i].nframes - 1));
    }
    return due;
}

static double s_process_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the ceiling ----------------------------------------------------------------------------- */

/* Walks the data frames the connections wrote in the order they were written (the send
 * log), each with the VINs of its generation. Workers and the sink keep that order per
 * vehicle, and the unique index's cost depends on it: rows of one vehicle in a run touch the
 * same leaf pages, rows of vehicles taking turns frame by frame do not. */
typedef struct {
    const s_conn_t *conns;
    const s_sent_t *log;
    size_t nlog, at;
    uint64_t q;
    uint8_t frame[4096];
} s_walk_t;

static bool s_walk_next(s_walk_t *w, const uint8_t **frame, size_t *len)
{
    while (w->at < w->nlog && w->q >= w->log[w->at].to)
        if (++w->at < w->nlog)
            w->q = w->log[w->at].from;
    if (w->at == w->nlog)
        return false;
    const s_conn_t *c = &w->conns[w->log[w->at].conn];
    size_t per = c->nframes - 1, k = (size_t)(w->q % per) + 1;
    *len = c->ends[k] - c->ends[k - 1];
    if (*len > sizeof w->frame)
        vem_bench_die("ceiling", "frame larger than expected");
    memcpy(w->frame, c->bytes + c->ends[k - 1], *len);
    s_set_gen(w->frame, *len, (unsigned)(w->q / per));
    w->q++;
    *frame = w->frame;
    return true;
}

/* Up to max batches of S_BATCH_ROWS sample rows from the walk, as the workers make them. */
static size_t s_batches(s_walk_t *w, vem_pgbatch_t *batches, size_t max, vem_hj1239_frame_t *f,
                        vem_pgrows_t *rows)
{
    size_t nb = 0;
    int64_t now_us = (int64_t)(s_wall() * 1e6);
    const uint8_t *frame;
    size_t len;
    bool more = true;
    while (nb < max && more) {
        more = s_walk_next(w, &frame, &len);
        if (more) {
            vem_hj1239_error_t err;
            if (vem_hj1239_decode(frame, len, 0, f, &err) != VEM_HJ1239_OK)
                vem_bench_die("decode", err.detail);
            vem_pgrows_frame(rows, f, now_us);
            if (rows->samples < S_BATCH_ROWS && !vem_pgrows_full(rows))
                continue;
        }
        if (rows->nrows[VEM_PGROWS_SAMPLES] == 0)
            break;
        vem_pgbatch_t *b = memset(&batches[nb++], 0, sizeof *batches);
        vem_pgrows_buf_put(&b->rows[VEM_PGROWS_SAMPLES], rows->rows[VEM_PGROWS_SAMPLES].data,
                           rows->rows[VEM_PGROWS_SAMPLES].len);
        b->nrows[VEM_PGROWS_SAMPLES] = rows->nrows[VEM_PGROWS_SAMPLES];
        b->samples = rows->samples;
        uint8_t days[VEM_PGROWS_MAX_DAYS * 4];
        memcpy(days, rows->days, rows->ndays * sizeof(int32_t));
        vem_pgbatch_add_days(b, days, rows->ndays);
        vem_pgrows_reset(rows);
    }
    return nb;
}

/* COPY BINARY of the frames the connections wrote, as rows, into a table like obd_frames; the
 * samples' count goes to *rows_out, the COPY's rows per second is returned. Rows are made ahead of
 * the clock, S_CHUNK batches at a time, so memory stays bounded and only COPY is timed. */
static double s_ceiling(const s_gen_t *g, uint64_t *rows_out, size_t *batches_out)
{
    enum { S_CHUNK = 50 };
    /* the table, as bench-pg makes it: obd_frames' columns, partitioning and unique key */
    PGconn *admin = s_pg();
    vem_bench_exec(admin, "SET client_min_messages = warning");
    vem_bench_exec(admin, "DROP TABLE IF EXISTS bench_plain_frames");
    vem_bench_exec(admin, "CREATE TABLE bench_plain_frames (LIKE obd_frames INCLUDING DEFAULTS, "
                          "UNIQUE (vin, frame_time)) PARTITION BY RANGE (frame_time)");
    vem_bench_exec(admin, "INSERT INTO partitioned_tables VALUES ('bench_plain_frames') "
                          "ON CONFLICT DO NOTHING");
    /* vemd's run began on a clean buffer cache (the server had just restarted); without this
     * the COPYs would pay for writing out the pages vemd's rows dirtied */
    vem_bench_exec(admin, "CHECKPOINT");
    char err[512];
    vem_pgwriter_t *w = vem_pgwriter_new(vem_bench_env("VEM_TEST_PG"));
    if (vem_pgwriter_connect(w, 3, err, sizeof err) != 0)
        vem_bench_die("connect", err);
    char copy_plain[1024];
    const char *copy = vem_pgrows_copy_sql(VEM_PGROWS_SAMPLES);
    snprintf(copy_plain, sizeof copy_plain, "COPY bench_plain_frames%s",
             copy + strlen("COPY obd_frames"));

    s_walk_t *walk = calloc(1, sizeof *walk);
    if (!walk)
        abort();
    walk->conns = g->conns;
    walk->log = g->log;
    walk->nlog = g->nlog;
    walk->q = g->nlog ? g->log[0].from : 0;
    vem_pgbatch_t *batches = calloc(S_CHUNK, sizeof *batches);
    vem_hj1239_frame_t *f = s_alloc(sizeof *f);
    vem_pgrows_t rows = {0};
    uint64_t total = 0;
    size_t nb, all = 0;
    double copy_s = 0;
    while ((nb = s_batches(walk, batches, S_CHUNK, f, &rows)) > 0) {
        for (size_t i = 0; i < nb; i++) { /* partitions of every day, before the clock starts */
            vem_pgbatch_t empty = {.days = batches[i].days, .ndays = batches[i].ndays};
            if (vem_pgwriter_write(w, &empty, NULL, err, sizeof err) != VEM_PGW_OK)
                vem_bench_die("partitions", err);
        }
        for (size_t i = 0; i < nb; i++) {
            double a = vem_bench_now();
            if (vem_pgwriter_copy_plain(w, copy_plain, &batches[i].rows[VEM_PGROWS_SAMPLES], err,
                                        sizeof err) != VEM_PGW_OK)
                vem_bench_die("plain COPY", err);
            copy_s += vem_bench_now() - a;
            total += batches[i].samples;
            vem_pgbatch_free(&batches[i]);
        }
        all += nb;
    }
    vem_pgrows_free(&rows);
    free(walk);
    free(f);
    free(batches);
    vem_pgwriter_destroy(&w);
    vem_bench_exec(admin, "DELETE FROM partitioned_tables WHERE table_name = 'bench_plain_frames'");
    vem_bench_exec(admin, "DROP TABLE bench_plain_frames");
    PQfinish(admin);
    *rows_out = total;
    *batches_out = all;
    return copy_s > 0 ? (double)total / copy_s : 0;
}

/* ---- the phases ------------------------------------------------------------------------------ */

typedef struct {
    double seconds;
    unsigned conns, frames;
    uint64_t window;
    double outage, outage_rate;
    unsigned pg_connections;
} s_opts_t;

typedef struct {
    uint64_t frames_written;
    uint64_t rows;
    double samples_per_s, p50_ms, p99_ms;
    double copy_samples_per_s;
} s_load_t;

static s_conn_t *s_streams(const char *prefix, unsigned n, unsigned frames)
{
    s_conn_t *conns = s_alloc(n * sizeof *conns);
    vem_hj1239_frame_t *scratch = s_alloc(sizeof *scratch);
    /* the last frame's samples end about now */
    int64_t t0 = (int64_t)time(NULL) - (int64_t)frames * S_SAMPLES;
    for (unsigned i = 0; i < n; i++)
        s_encode(&conns[i], prefix, i, frames, t0, scratch);
    free(scratch);
    return conns;
}

static void s_throughput(const s_opts_t *o, const s_vemd_t *v, s_load_t *out)
{
    double enc = vem_bench_now();
    s_conn_t *conns = s_streams("LE2ES", o->conns, o->frames);
    size_t bytes = 0;
    for (unsigned i = 0; i < o->conns; i++)
        bytes += conns[i].len;
    printf("load: %u connections x %u frames of %d samples pre-encoded (%.0f bytes/frame) in "
           "%.1f s\n",
           o->conns, o->frames, S_SAMPLES, (double)bytes / ((double)o->conns * (o->frames + 1)),
           vem_bench_now() - enc);

    s_tasks_t *vemd0 = s_alloc(sizeof *vemd0), *vemd1 = s_alloc(sizeof *vemd1);
    s_tasks_t *pg0 = s_alloc(sizeof *pg0), *pg1 = s_alloc(sizeof *pg1);
    s_threads(v->proc.pid, vemd0);
    s_server_procs(pg0);
    double cpu0 = s_process_cpu(), t0 = vem_bench_now();

    /* The loop is closed on rows committed: vemd takes bytes far faster than it stores rows and
     * holds what it took in memory, so an open loop would only measure how much it can hold. */
    double rows0 = s_metric(v, S_ROWS_SERIES);
    s_gen_t g;
    s_gen_start(&g, conns, o->conns, 0, o->window, v->port);
    while (vem_bench_now() - g.start < o->seconds) {
        double rows = s_metric(v, S_ROWS_SERIES);
        if (!isnan(rows))
            atomic_store(&g.committed, (uint64_t)(rows - rows0));
        vem_bench_sleep(0.05);
    }
    s_print_series(v, "at the end of the load:", "vem_queue_depth", "vem_spool_bytes",
                   "vem_sink_pending_rows");
    long rss_peak = s_vmhwm_kb(v->proc.pid);
    s_gen_stop(&g);
    uint64_t frames = atomic_load(&g.frames);
    double gen_s = g.stopped_at - g.start;
    unsigned gens = 0;
    for (unsigned i = 0; i < o->conns; i++)
        gens = conns[i].gen > gens ? conns[i].gen : gens;
    printf("load: %llu frames (%llu samples) written in %.1f s, %.0f samples/s, at most %llu "
           "samples ahead of the commits (streams restarted with new VINs up to %u times); vemd "
           "VmHWM %ld kB%s\n",
           (unsigned long long)frames, (unsigned long long)frames * S_SAMPLES, gen_s,
           (double)frames * S_SAMPLES / gen_s, (unsigned long long)o->window, gens, rss_peak,
           atomic_load(&g.closed) ? "; vemd closed connections" : "");

    /* everything written must land; all of it counts */
    double got = s_wait_rows(v, (double)frames * S_SAMPLES, 20, 300);
    double t1 = vem_bench_now();
    s_threads(v->proc.pid, vemd1);
    s_server_procs(pg1);
    double gen_cpu = s_process_cpu() - cpu0;
    s_print_cpu("vemd threads", vemd0, vemd1, t1 - t0);
    s_print_cpu("PostgreSQL processes", pg0, pg1, t1 - t0);
    printf("cpu bench-e2e (the load generator), seconds over %.1f s: %.2f\n", t1 - t0, gen_cpu);
    free(vemd0);
    free(vemd1);
    free(pg0);
    free(pg1);

    s_commits_t c = s_commits("LE2ES");
    if ((double)c.total != (double)frames * S_SAMPLES)
        printf("WARNING: %llu samples written, %llu rows stored (metric says %.0f)\n",
               (unsigned long long)frames * S_SAMPLES, (unsigned long long)c.total, got);
    double span = c.n > 1 ? c.at[c.n - 1] - c.at[0] : 0;
    out->frames_written = frames;
    out->rows = c.total;
    out->samples_per_s = span > 0 ? (double)(c.total - c.rows[0]) / span : 0;
    printf("sink: %llu rows in %zu commits (samples counted in obd_frames by commit timestamp), "
           "first to "
           "last commit %.2f s: %.0f samples/s\n",
           (unsigned long long)c.total, c.n, span, out->samples_per_s);
    s_latency("LE2ES", 0, 1e12, &out->p50_ms, &out->p99_ms);
    printf("latency receipt to commit under saturation (received_at to "
           "pg_xact_commit_timestamp, every row; mostly the wait behind the window's rows): "
           "p50 %.0f ms, p99 %.0f ms\n",
           out->p50_ms, out->p99_ms);
    s_commits_free(&c);

    uint64_t rows;
    size_t nb;
    out->copy_samples_per_s = s_ceiling(&g, &rows, &nb);
    s_gen_free(&g);
    printf("ceiling: %llu rows, the same frames, COPY BINARY in %zu batches of <= %d rows into "
           "bench_plain_frames: %.0f samples/s\n",
           (unsigned long long)rows, nb, S_BATCH_ROWS, out->copy_samples_per_s);
    s_conns_free(conns, o->conns);
}

typedef struct {
    double p50_ms, p99_ms; /* at the paced rate, before any outage */
    double catchup_samples_per_s;
    double first_commit_s; /* restart to the first commit */
    double caught_up_s;    /* restart to the commit that reached what was due; NAN if never */
    uint64_t written_during, due_during;
} s_paced_t;

/* Commits after the restart at up_wall until the rows reached due: the catch-up figures. */
static void s_catchup(const s_commits_t *c, double up_wall, uint64_t due, s_paced_t *out)
{
    uint64_t cum = 0, after = 0;
    double first = NAN, reached = NAN, last = NAN;
    for (size_t i = 0; i < c->n && isnan(reached); i++) {
        cum += c->rows[i];
        if (c->at[i] <= up_wall)
            continue;
        after += c->rows[i];
        first = isnan(first) ? c->at[i] : first;
        last = c->at[i];
        if (cum >= due)
            reached = c->at[i];
    }
    out->first_commit_s = first - up_wall;
    out->caught_up_s = reached - up_wall;
    out->catchup_samples_per_s = last > up_wall ? (double)after / (last - up_wall) : 0;
    printf("outage: first commit %.1f s after the restart began; %s %.1f s after it: %llu rows, "
           "%.0f samples/s\n",
           out->first_commit_s, isnan(reached) ? "last commit (never caught up)" : "caught up",
           last - up_wall, (unsigned long long)after, out->catchup_samples_per_s);
}

/* Phase 3: a fixed moderate rate; its latency, then, if asked, a sink outage and the catch-up. */
static void s_paced(const s_opts_t *o, const s_vemd_t *v, s_paced_t *out)
{
    double rows_before = s_metric(v, S_ROWS_SERIES);
    double fps = o->outage_rate / ((double)o->conns * S_SAMPLES);
    double catchup_max = fmax(S_CATCHUP_MIN_S, 2 * o->outage);
    double planned = S_WARM_S + (o->outage > 0 ? o->outage + catchup_max : 0) + 10;
    double frames = ceil(fps * planned) + 2;
    if (frames > 60000)
        vem_bench_die("--outage-rate", "too many frames per connection: raise --conns");
    s_conn_t *conns = s_streams("LE2EO", o->conns, (unsigned)frames);
    s_gen_t g;
    s_gen_start(&g, conns, o->conns, fps, 0, v->port);
    printf("paced: %u connections at %.0f samples/s in total (%.2f frames/s each)\n", o->conns,
           o->outage_rate, fps);
    vem_bench_sleep(S_WARM_S);
    double down_wall = s_wall(), up_wall = 0;
    uint64_t due_up = 0;
    if (o->outage > 0) {
        s_pgtmp("stop");
        double down = vem_bench_now();
        uint64_t at_down = atomic_load(&g.frames);
        vem_bench_sleep(o->outage - (vem_bench_now() - down));
        double spool = s_metric(v, "vem_spool_bytes");
        long rss = s_vmhwm_kb(v->proc.pid);
        uint64_t before_up = atomic_load(&g.frames);
        double up = vem_bench_now();
        up_wall = s_wall(); /* the restart begins */
        s_pgtmp("start");
        printf("outage: PostgreSQL took %.1f s to start\n", vem_bench_now() - up);
        uint64_t at_up = atomic_load(&g.frames);
        due_up = s_gen_due(&g, up);
        out->written_during = before_up - at_down;
        out->due_during = due_up - s_gen_due(&g, down);
        printf("outage: PostgreSQL down %.1f s; frames written meanwhile %llu of %llu due; at its "
               "end vemd spool %.0f bytes, VmHWM %ld kB; at restart %llu frames written, %llu "
               "due\n",
               up - down, (unsigned long long)out->written_during,
               (unsigned long long)out->due_during, spool, rss, (unsigned long long)at_up,
               (unsigned long long)due_up);
        double target = rows_before + (double)due_up * S_SAMPLES;
        double got = s_wait_rows(v, target, catchup_max, catchup_max);
        if (got < target)
            printf("outage: NOT caught up within %.0f s: %.0f of %.0f rows\n", catchup_max,
                   got - rows_before, target - rows_before);
    }
    s_gen_stop(&g);
    s_gen_free(&g);
    if (atomic_load(&g.exhausted))
        printf("paced: WARNING: a connection sent all its frames before the end\n");
    uint64_t written = atomic_load(&g.frames);
    s_wait_rows(v, rows_before + (double)written * S_SAMPLES, 20, 60);
    s_conns_free(conns, o->conns);

    s_commits_t c = s_commits("LE2EO");
    printf("paced: %llu of %llu written samples stored (vemd: %.0f inputs spooled, %.0f not yet "
           "settled, %.0f not yet forwarded, %.0f samples decoded, %.0f duplicate frames, %.0f "
           "quarantined inputs)\n",
           (unsigned long long)c.total, (unsigned long long)written * S_SAMPLES,
           s_metric(v, "vem_inputs_total"), s_metric(v, "vem_queue_depth{stage=\"settle\"}"),
           s_metric(v, "vem_queue_depth{stage=\"forward\"}"), s_metric(v, "vem_samples_total"),
           s_metric(v, "vem_duplicates_total"),
           s_metric(v, "vem_sink_rows_total{sink=\"pg\",table=\"quarantine\"}"));
    if (o->outage > 0)
        s_catchup(&c, up_wall, due_up * S_SAMPLES, out);
    s_commits_free(&c);
    /* rows received up to a second before the outage: none of them waited for it */
    s_latency("LE2EO", 0, o->outage > 0 ? down_wall - 1 : 1e12, &out->p50_ms, &out->p99_ms);
    printf("paced: latency receipt to commit at %.0f samples/s%s: p50 %.0f ms, p99 %.0f ms\n",
           o->outage_rate, o->outage > 0 ? ", before the outage" : "", out->p50_ms, out->p99_ms);
}

int main(int argc, char **argv)
{
    s_opts_t o = {.seconds = 20,
                  .conns = 200,
                  .frames = 2000,
                  .window = 400000,
                  .outage = 60,
                  .outage_rate = 20000,
                  .pg_connections = 1};
    static const struct option options[] = {{"seconds", required_argument, NULL, 's'},
                                            {"conns", required_argument, NULL, 'c'},
                                            {"frames", required_argument, NULL, 'f'},
                                            {"window", required_argument, NULL, 'w'},
                                            {"outage", required_argument, NULL, 'o'},
                                            {"outage-rate", required_argument, NULL, 'r'},
                                            {"pg-connections", required_argument, NULL, 'p'},
                                            {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "s:c:f:w:o:r:p:", options, NULL)) != -1) {
        if (opt == 's')
            o.seconds = strtod(optarg, NULL);
        else if (opt == 'c')
            o.conns = (unsigned)strtoul(optarg, NULL, 10);
        else if (opt == 'f')
            o.frames = (unsigned)strtoul(optarg, NULL, 10);
        else if (opt == 'w')
            o.window = strtoull(optarg, NULL, 10);
        else if (opt == 'o')
            o.outage = strtod(optarg, NULL);
        else if (opt == 'r')
            o.outage_rate = strtod(optarg, NULL);
        else if (opt == 'p')
            o.pg_connections = (unsigned)strtoul(optarg, NULL, 10);
        else
            return 2;
    }
    if (!(o.seconds > 0 && o.seconds <= 600) || o.conns == 0 || o.conns > 5000 || o.frames < 2 ||
        o.frames > 60000 || o.window < S_BATCH_ROWS || !(o.outage >= 0 && o.outage <= 600) ||
        !(o.outage_rate > 0) || o.pg_connections == 0 || o.pg_connections > 64) {
        fprintf(stderr, "usage: bench-e2e [--seconds S<=600] [--conns N<=5000] [--frames F<=60000] "
                        "[--window SAMPLES>=20000] [--outage S<=600, 0 skips] "
                        "[--outage-rate SAMPLES_PER_S] [--pg-connections N<=64]\n");
        return 2;
    }
    vem_bench_conninfo(argv); /* (or runs again under tests/harness.sh) */
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);

    s_enable_commit_timestamps();
    s_vemd_t v;
    s_vemd_start(&v, o.pg_connections);
    vem_bench_vemd_wait(&v.proc, 30, s_sink_up, &v);
    printf("vemd: pid %d, defaults (spool fsync on, reply_mode none, workers one per core, "
           "pg.batch_rows 20000, pg.batch_ms 200), pg.connections %u, log %s\n",
           (int)v.proc.pid, o.pg_connections, v.proc.log);

    s_load_t load = {0};
    s_throughput(&o, &v, &load);
    printf("vemd peak RSS after the load: %ld kB\n", s_vmhwm_kb(v.proc.pid));

    s_paced_t paced = {.catchup_samples_per_s = NAN, .first_commit_s = NAN};
    s_paced(&o, &v, &paced);

    long rss = s_vmhwm_kb(v.proc.pid);
    int rc = vem_bench_vemd_stop(&v.proc);
    if (rc != 0)
        printf("WARNING: vemd exited with %d on SIGTERM; see %s\n", rc, v.proc.log);

    double ratio = load.copy_samples_per_s > 0 ? load.samples_per_s / load.copy_samples_per_s : 0;
    printf("samples_per_s=%.0f copy_samples_per_s=%.0f p50_ms=%.0f p99_ms=%.0f sat_p50_ms=%.0f "
           "sat_p99_ms=%.0f rss_kb=%ld catchup_samples_per_s=%.0f outage_frames_written=%llu "
           "outage_frames_due=%llu ratio=%.3f\n",
           load.samples_per_s, load.copy_samples_per_s, paced.p50_ms, paced.p99_ms, load.p50_ms,
           load.p99_ms, rss, paced.catchup_samples_per_s, (unsigned long long)paced.written_during,
           (unsigned long long)paced.due_during, ratio);
    return 0;
}
