/* bench_util — what the benchmarks share; see bench_util.h. */
#include "bench_util.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t s_running = -1; /* the vemd child, killed at exit */

double vem_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void vem_bench_sleep(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void vem_bench_die(const char *what, const char *msg)
{
    fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, msg);
    exit(1);
}

const char *vem_bench_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        vem_bench_die(name, "not set (run under tests/harness.sh)");
    return v;
}

/* The path of this executable. */
static void s_exe(char exe[PATH_MAX])
{
    ssize_t n = readlink("/proc/self/exe", exe, PATH_MAX - 1);
    if (n < 0)
        vem_bench_die("readlink /proc/self/exe", strerror(errno));
    exe[n] = '\0';
}

void vem_bench_exe_dir(char *out, size_t cap)
{
    char exe[PATH_MAX];
    s_exe(exe);
    snprintf(out, cap, "%s", dirname(exe));
}

const char *vem_bench_conninfo(char **argv)
{
    const char *conninfo = getenv("VEM_TEST_PG");
    if (conninfo && *conninfo)
        return conninfo;
    char exe[PATH_MAX], dir[PATH_MAX], harness[PATH_MAX + 64];
    s_exe(exe);
    vem_bench_exe_dir(dir, sizeof dir);
    snprintf(harness, sizeof harness, "%s/../../tests/harness.sh", dir);
    char *args[32] = {harness, exe};
    int i = 2;
    for (char **a = argv + 1; *a && i < 31; a++)
        args[i++] = *a;
    args[i] = NULL;
    execv(harness, args);
    vem_bench_die(harness, "cannot run the harness");
}

void vem_bench_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        vem_bench_die(sql, PQerrorMessage(conn));
    PQclear(res);
}

void vem_bench_frame(vem_hj1239_frame_t *f, const char *vin, int64_t t, uint16_t seq, unsigned s0,
                     unsigned speed_lo, unsigned speed_span)
{
    memset(f, 0, sizeof *f);
    f->cmd = VEM_HJ1239_CMD_REALTIME;
    f->layout = VEM_HJ1239_LAYOUT_BLOCK_TIME;
    f->has_time = true;
    memcpy(f->vin, vin, 17);
    f->time = t + 9;
    f->seq = seq;
    f->nblocks = 10;
    for (unsigned i = 0; i < 10; i++) {
        vem_hj1239_block_t *b = &f->blocks[i];
        unsigned s = s0 + i;
        b->type = VEM_HJ1239_BLOCK_STREAM;
        b->time = t + (int64_t)i;
        b->raw[VEM_HJ1239_F_SPEED] = 256 * (speed_lo + s % speed_span);
        b->raw[VEM_HJ1239_F_BARO] = 200;
        b->raw[VEM_HJ1239_F_TORQUE] = 125 + s % 100;
        b->raw[VEM_HJ1239_F_FRICTION] = 131;
        b->raw[VEM_HJ1239_F_RPM] = 8 * (900 + s % 900);
        b->raw[VEM_HJ1239_F_FUEL_RATE] = 600 + s % 300;
        b->raw[VEM_HJ1239_F_NOX_UP] = 4000 + 7 * (s % 2000);
        b->raw[VEM_HJ1239_F_NOX_DOWN] = 4000 + s % 1500;
        b->raw[VEM_HJ1239_F_REAGENT] = 150;
        b->raw[VEM_HJ1239_F_INTAKE] = 12000 + s % 4000;
        b->raw[VEM_HJ1239_F_SCR_IN] = 32 * (273 + 250 + s % 100);
        b->raw[VEM_HJ1239_F_SCR_OUT] = 32 * (273 + 230 + s % 100);
        b->raw[VEM_HJ1239_F_DPF_DP] = 50 + s % 30;
        b->raw[VEM_HJ1239_F_COOLANT] = 40 + 85;
        b->raw[VEM_HJ1239_F_FUEL_LEVEL] = 180;
        b->raw[VEM_HJ1239_F_LON] = 118796877 + s;
        b->raw[VEM_HJ1239_F_LAT] = 32060255 + s;
        b->raw[VEM_HJ1239_F_ODOMETER] = 1234567 + s;
        b->novalue = vem_hj1239_novalue(b);
    }
}

int vem_bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        vem_bench_die("free port", strerror(errno));
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

/* ---- vemd ------------------------------------------------------------------------------------ */

static void s_kill_at_exit(void)
{
    if (s_running > 0) {
        kill(s_running, SIGKILL);
        waitpid(s_running, NULL, 0);
    }
}

/* v's vemd has ended (and was reaped). */
static void s_ended(vem_bench_vemd_t *v)
{
    if (v->pid == s_running)
        s_running = -1;
    v->pid = -1;
}

void vem_bench_vemd_init(vem_bench_vemd_t *v, const char *name)
{
    snprintf(v->dir, sizeof v->dir, "%s/%s", vem_bench_env("VEM_TEST_TMP"), name);
    if (mkdir(v->dir, 0755) != 0 && errno != EEXIST)
        vem_bench_die(v->dir, strerror(errno));
    snprintf(v->cfg, sizeof v->cfg, "%s/vemd.cfg", v->dir);
    snprintf(v->log, sizeof v->log, "%s/vemd.log", v->dir);
    v->pid = -1;
}

void vem_bench_vemd_start(vem_bench_vemd_t *v, const char *cfg_format, ...)
{
    FILE *f = fopen(v->cfg, "w");
    if (!f)
        vem_bench_die(v->cfg, strerror(errno));
    va_list ap;
    va_start(ap, cfg_format);
    vfprintf(f, cfg_format, ap);
    va_end(ap);
    fclose(f);

    char vemd[PATH_MAX + 16];
    snprintf(vemd, sizeof vemd, "%s/vemd", vem_bench_env("VEM_TEST_BIN"));
    static bool registered;
    if (!registered)
        atexit(s_kill_at_exit);
    registered = true;
    v->pid = fork();
    if (v->pid < 0)
        vem_bench_die("fork", strerror(errno));
    if (v->pid == 0) {
        if (!freopen(v->log, "w", stdout) || !freopen(v->log, "a", stderr))
            _exit(127);
        execl(vemd, vemd, "--config", v->cfg, (char *)NULL);
        _exit(127);
    }
    s_running = v->pid;
}

void vem_bench_vemd_wait(vem_bench_vemd_t *v, double max_s, bool (*up)(void *arg), void *arg)
{
    double start = vem_bench_now();
    for (;;) {
        if (up && up(arg))
            return;
        if (waitpid(v->pid, NULL, WNOHANG) == v->pid) {
            s_ended(v);
            vem_bench_die("vemd exited at start, see", v->log);
        }
        if (vem_bench_now() - start >= max_s)
            break;
        vem_bench_sleep(0.1);
    }
    if (up)
        vem_bench_die("vemd did not come up in time, see", v->log);
}

int vem_bench_vemd_stop(vem_bench_vemd_t *v)
{
    kill(v->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 400; i++) {
        if (waitpid(v->pid, &status, WNOHANG) == v->pid) {
            s_ended(v);
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        vem_bench_sleep(0.1);
    }
    vem_bench_vemd_kill(v);
    return -1;
}

void vem_bench_vemd_kill(vem_bench_vemd_t *v)
{
    if (v->pid > 0) {
        kill(v->pid, SIGKILL);
        waitpid(v->pid, NULL, 0);
        s_ended(v);
    }
}
