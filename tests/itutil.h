/* itutil — what the end-to-end suites (it_daemon, it_faults) share: a vemd of their own in a
 * scratch directory, vem-sim runs and their ground truth, vemctl status, PostgreSQL row counts
 * per vehicle, and stopping and starting the harness's PostgreSQL.
 *
 * Every helper fails the current Check test (ck_assert) on what it cannot do, so callers need
 * no error paths. Processes are started with fork/exec; Check kills a test's process group when
 * the test ends, so a failed test leaves no vemd or vem-sim behind. Expected numbers must come
 * from vem-sim's truth, never from vemd. */
#ifndef VEM_ITUTIL_H
#define VEM_ITUTIL_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <sys/types.h>

/* One vemd: its directory (config, control socket, log, spool), TCP port and process. */
typedef struct {
    char dir[256];
    char cfg[300];
    char control[320];
    char log[300];
    int port;
    pid_t vemd;
    /* set before vem_it_start, or NULL: settings added to the pipeline and pg groups, e.g.
     * "batch_rows = 200;" (a drain_timeout_s here replaces the default 20) */
    const char *pipeline_opts;
    const char *terminals_opts; /* added to the terminals group, e.g. "bind_vin = false;" (an
                                 * idle_timeout_s, max_connections or reply_mode here replaces
                                 * the default) */
    const char *pg_opts;
    const char *spool_opts;    /* added to the spool group, e.g. "segment_bytes = 65536;" */
    const char *rules_opts;    /* the rules group's settings, e.g. "checkpoint_interval_s = 5;" */
    const char *stations_opts; /* added to the stations group (endpoint ipc://DIR/stations.sock) */
    const char *gateways_opts; /* added to the gateways group (endpoint ipc://DIR/gateway.sock) */
    const char *pg_user;       /* non-NULL: vemd logs in to PostgreSQL as this role */
    int metrics_port;          /* 0: no HTTP endpoint; else /metrics and /healthz on 127.0.0.1 */
    const char *kafka_opts;    /* non-NULL: the Kafka sink on, to the harness's vem-broker, with
                                * these settings added to the kafka group */
} vem_it_run_t;

/* A loopback TCP port free right now. */
int vem_it_free_port(void);

/* Writes r's vemd configuration (reply_mode hj1239, PostgreSQL of the harness, spool in
 * r->dir/spool, fsync on, the HTTP endpoint only when r->metrics_port is set, r's extra
 * settings) with the given log level; replaces the file atomically. */
void vem_it_write_config(const vem_it_run_t *r, const char *log_level);

/* Starts argv[0] with argv; stdout and stderr go to out_path (appended) unless it is NULL. */
pid_t vem_it_spawn(char *const argv[], const char *out_path);

/* Waits up to timeout_s for pid to exit and returns its exit status (128 + signal when
 * killed); kills it and fails the test when it does not exit in time. */
int vem_it_wait(pid_t pid, int timeout_s);

/* Runs `vemctl status` against r with the given flags and returns its JSON (caller decrefs),
 * NULL when vemd did not answer. */
json_t *vem_it_status(const vem_it_run_t *r, const char *flags);

/* Value of one metric series in a status JSON, 0 when absent. */
double vem_it_metric(json_t *status, const char *series);

/* Starts vemd on r's configuration and waits (up to 10 s) until it answers. */
void vem_it_launch(vem_it_run_t *r);

/* Makes a scratch directory named after name, a free port and a configuration. */
void vem_it_prepare(vem_it_run_t *r, const char *name);

/* vem_it_prepare, then vem_it_launch. */
void vem_it_start(vem_it_run_t *r, const char *name);

/* Waits until every input vemd spooled is done in every consumer (the workers without sinks,
 * else every sink); returns the status. */
json_t *vem_it_settled(const vem_it_run_t *r);

/* Waits until the PostgreSQL sink has nothing pending and its counters stand still. */
json_t *vem_it_sink_settled(const vem_it_run_t *r);

/* SIGTERM: vemd must drain and exit 0 within 30 s (nothing when it was halted already). Its
 * directory stays. */
void vem_it_halt(vem_it_run_t *r);

/* vem_it_halt, then removes r's directory. */
void vem_it_stop(vem_it_run_t *r);

/* Starts vem-sim against r with --truth r->dir/truth.json --quiet and the extra arguments. */
pid_t vem_it_run_sim(const vem_it_run_t *r, char **extra, int n_extra);

/* The same with the extra arguments as one line, split at spaces (at most 32 of them). */
pid_t vem_it_run_sim_line(const vem_it_run_t *r, const char *args);

/* vem-sim's truth of the last run against r (caller decrefs). */
json_t *vem_it_truth(const vem_it_run_t *r);

/* Runs the independent validator (tests/kafka_validate.py, python3-jsonschema) over a file of
 * Kafka event values, one JSON per line, against schema/kafka; fails the test if one is not
 * valid. */
void vem_it_validate_events(const char *events_path);

/* A connection to the harness's PostgreSQL (VEM_TEST_PG). */
PGconn *vem_it_pg(void);

/* The same as role user (NULL: the harness's own). */
PGconn *vem_it_pg_as(const char *user);

/* Runs sql, which must succeed (a command, or a query whose rows are not looked at). */
void vem_it_sql(PGconn *conn, const char *sql);

/* tools/pgtmp.sh VERB on the harness's cluster (VEM_TEST_PGDIR): "stop" or "start". */
void vem_it_pgctl(const char *verb);

/* {vin: rows} of obd_samples or terminal_events for the VINs starting with prefix. */
json_t *vem_it_rows_by_vin(PGconn *conn, const char *table, const char *prefix);

/* Sum of the values of a {vin: rows} object. */
long long vem_it_total(json_t *by_vin);

/* What vem-sim's truth says the table must hold, as {vin: rows}: for obd_samples one row per
 * sample of every frame the trucks generated (--await-replies: they re-send until
 * acknowledged) or else of every real-time and re-sent frame written; for terminal_events one
 * row per login and logout written. */
json_t *vem_it_expected_rows(json_t *truth, const char *table);

/* Waits (up to 60 s) until the table holds as many rows for prefix as the truth says, then
 * checks vehicle by vehicle that it holds exactly that many. */
void vem_it_compare_rows(PGconn *conn, const char *table, const char *prefix, json_t *truth);

/* obd_samples of the VINs starting with prefix hold no two rows of one (vin, sample_time,
 * block_idx). */
void vem_it_no_duplicate_samples(PGconn *conn, const char *prefix);

/* Monotonic seconds, and a sleep of that many seconds (nothing when <= 0). */
double vem_it_mono(void);
void vem_it_sleep(double seconds);

/* The harness's PostgreSQL is up (a test that failed during an outage may have left it down). */
void vem_it_pg_up(void);

/* The last 20 lines of r's vemd log on stderr, for a check about to fail. */
void vem_it_show_log(const vem_it_run_t *r);

/* True when r's vemd log holds text. */
bool vem_it_log_has(const vem_it_run_t *r, const char *text);

/* How many times text occurs in r's vemd log (a line per occurrence, for a log line's text). */
int vem_it_log_count(const vem_it_run_t *r, const char *text);

/* True once r's vemd log holds text, looked for every 0.1 s for up to timeout_s. */
bool vem_it_log_until(const vem_it_run_t *r, const char *text, double timeout_s);

/* One metric series of r's vemd right now (0 when absent or when vemd does not answer). */
double vem_it_metric_now(const vem_it_run_t *r, const char *series);

/* The sum of a metric over its label sets ("name" and "name{...}") right now. */
double vem_it_metric_sum(const vem_it_run_t *r, const char *name);

/* GET path from 127.0.0.1:port over HTTP/1.0; returns the status code (-1 when there was no
 * answer) and the body (NUL-terminated, cut to cap). */
int vem_it_http_get(int port, const char *path, char *body, size_t cap);

/* Polls /healthz (every 200 ms, up to timeout_s) until it answers want; returns the last
 * status, with its body in body. */
int vem_it_health_until(int port, int want, double timeout_s, char *body, size_t cap);

#endif
