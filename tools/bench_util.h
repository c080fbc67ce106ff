/* bench_util — what the benchmarks (tools/bench_*.c) share: a clock, dying with a message, the
 * run under tests/harness.sh, a PostgreSQL statement, a real-time frame of samples, and one
 * vemd child started on a configuration of the bench's own.
 *
 * Single-threaded helpers for a bench's main thread; errors end the process (exit 1) with
 * "bench-NAME: what: message" on stderr. Linked into every build/bin/bench-NAME. */
#ifndef VEM_BENCH_UTIL_H
#define VEM_BENCH_UTIL_H

#include "hj1239.h"

#include <libpq-fe.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Monotonic time in seconds. */
double vem_bench_now(void);

/* Sleeps s seconds (none when s <= 0), through signals. */
void vem_bench_sleep(double s);

/* Prints "bench-NAME: what: msg" to stderr and exits with 1. */
_Noreturn void vem_bench_die(const char *what, const char *msg);

/* The value of an environment variable the harness sets; dies when it is unset or empty. */
const char *vem_bench_env(const char *name);

/* Directory of this executable (build/bin) into out. */
void vem_bench_exe_dir(char *out, size_t cap);

/* VEM_TEST_PG when it is set; otherwise runs this executable again, with the same arguments,
 * under tests/harness.sh (which starts a throw-away cluster and sets it), and does not return. */
const char *vem_bench_conninfo(char **argv);

/* Runs sql (no parameters); dies unless it succeeds (with or without rows). */
void vem_bench_exec(PGconn *conn, const char *sql);

/* Fills f with a real-time frame (HJ 1239 layout, per-block times) of vin: 10 diesel stream
 * samples at seconds t .. t + 9, the frame timed at t + 9, sequence number seq. Values vary
 * with the sample's number s = s0 + i (i: the sample in the frame); the speed is
 * speed_lo + s % speed_span km/h. */
void vem_bench_frame(vem_hj1239_frame_t *f, const char *vin, int64_t t, uint16_t seq, unsigned s0,
                     unsigned speed_lo, unsigned speed_span);

/* A free TCP port on the loopback interface. */
int vem_bench_free_port(void);

/* A vemd child: its directory under the harness's scratch directory, its files, its pid. */
typedef struct {
    char dir[PATH_MAX];      /* $VEM_TEST_TMP/NAME */
    char cfg[PATH_MAX + 16]; /* dir/vemd.cfg */
    char log[PATH_MAX + 16]; /* dir/vemd.log: its stdout and stderr */
    pid_t pid;               /* -1 when not running */
} vem_bench_vemd_t;

/* Makes v's directory ($VEM_TEST_TMP/name) and names its files; nothing runs yet. */
void vem_bench_vemd_init(vem_bench_vemd_t *v, const char *name);

/* Writes the configuration (printf format) to v->cfg and starts $VEM_TEST_BIN/vemd on it. One
 * vemd at a time: it is killed at exit if still running. */
void vem_bench_vemd_start(vem_bench_vemd_t *v, const char *cfg_format, ...)
    __attribute__((format(printf, 2, 3)));

/* Waits up to max_s for up(arg) to be true, checking every 0.1 s; dies when vemd exits first or
 * the time runs out. up NULL: waits the whole max_s (a vemd with nothing to ask), still dying
 * if it exits. */
void vem_bench_vemd_wait(vem_bench_vemd_t *v, double max_s, bool (*up)(void *arg), void *arg);

/* SIGTERM, then up to 40 s to drain (pipeline.drain_timeout_s is 30), then SIGKILL; returns
 * its exit status (128 + signal when killed by one), -1 when it had to be killed. */
int vem_bench_vemd_stop(vem_bench_vemd_t *v);

/* SIGKILL and reap, when it runs. */
void vem_bench_vemd_kill(vem_bench_vemd_t *v);

#endif
