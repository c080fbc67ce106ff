/* bench-curve — what CURVE costs the stations endpoint: readings acknowledged per second with
 * and without it, in the same run.
 *
 *   bench-curve [--readings N] [--rounds R]
 *
 * N readings (100,000) of 4 stations, one JSON line each, are sent by `vemctl rsd send` (one
 * DEALER socket, 500 unanswered at most) to a vemd on a loopback TCP stations endpoint, first
 * plain, then with CURVE (the key pairs made here, the client's listed in the clients
 * directory), R times (3) alternately, so a load that comes and goes on a shared machine hits
 * both. vemd runs without sinks, rules or fsync, so the endpoint and the spool append are what
 * is measured. Figures:
 *   plain_per_s, curve_per_s   median acknowledged readings per second of each
 *   ratio                      median over the rounds of curve / plain of the same round
 * The last line is key=value figures. */
#include "bench_util.h"
#include "curve.h"

#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_ROUNDS 15

static void s_write_readings(const char *path, unsigned n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        vem_bench_die(path, "cannot write");
    time_t t0 = time(NULL) - 3600;
    for (unsigned i = 0; i < n; i++) {
        time_t t = t0 + (time_t)(i % 3000);
        struct tm tm;
        gmtime_r(&t, &tm);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(f,
                "{\"version\":1,\"station_id\":\"BC-%u\",\"reading_id\":\"r%07u\",\"time\":\"%s\","
                "\"plate\":\"津B%05u\",\"plate_color\":\"yellow\",\"fuel\":\"diesel\","
                "\"speed_kmh\":40,\"no_ppm\":300,\"valid\":true}\n",
                i % 4, i, when, i % 90000);
    }
    fclose(f);
}

/* Starts vemd on a fresh spool with the stations endpoint at port, CURVE when curve. */
static pid_t s_vemd(const char *bin, const char *dir, int port, bool curve)
{
    char path[PATH_MAX], cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/spool' && mkdir '%s/spool'", dir, dir);
    if (system(cmd) != 0)
        vem_bench_die("spool", dir);
    snprintf(path, sizeof path, "%s/vemd.cfg", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        vem_bench_die(path, "cannot write");
    fprintf(f,
            "terminals: { endpoint = \"tcp://127.0.0.1:%d\"; };\ngateways: { endpoint = \"\"; };\n"
            "control: { endpoint = \"ipc://%s/control.sock\"; };\nmetrics: { enable = false; };\n"
            "pg: { enable = false; };\nrules: { enable = false; };\n"
            "spool: { dir = \"%s/spool\"; fsync = false; max_bytes = 4294967296L; };\n",
            vem_bench_free_port(), dir, dir);
    fprintf(f, "stations: { endpoint = \"tcp://127.0.0.1:%d\"; ", port);
    if (curve)
        fprintf(f, "curve_server_key = \"%s/server.key\"; curve_clients_dir = \"%s/clients\"; ",
                dir, dir);
    fprintf(f, "};\n");
    fclose(f);
    char exe[PATH_MAX + 16], log[PATH_MAX + 16];
    snprintf(exe, sizeof exe, "%s/vemd", bin);
    snprintf(log, sizeof log, "%s/vemd.log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "a", stdout) || !freopen(log, "a", stderr))
            _exit(127);
        execl(exe, exe, "--config", path, (char *)NULL);
        _exit(127);
    }
    /* ready once the stations port accepts */
    for (int i = 0; i < 200; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return pid;
        usleep(50000);
    }
    vem_bench_die("vemd", "did not listen within 10 s (see its log)");
    return -1;
}

/* Acknowledged readings per second of one vemctl rsd send run. */
static double s_send(const char *bin, const char *dir, int port, bool curve, unsigned n)
{
    char cmd[4 * PATH_MAX];
    int len = snprintf(cmd, sizeof cmd,
                       "'%s/vemctl' rsd send '%s/readings.jsonl' --endpoint tcp://127.0.0.1:%d "
                       "--json --quiet",
                       bin, dir, port);
    if (curve)
        snprintf(cmd + len, sizeof cmd - (size_t)len,
                 " --client-key '%s/station.key' --server-key '%s/server.pub'", dir, dir);
    FILE *p = popen(cmd, "r");
    json_t *o = p ? json_loadf(p, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    if (p)
        pclose(p);
    if (!o || json_integer_value(json_object_get(o, "acked")) != (json_int_t)n)
        vem_bench_die("vemctl rsd send", "not every reading was acknowledged");
    double rate = json_real_value(json_object_get(o, "readings_per_s"));
    json_decref(o);
    return rate;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_median(double *v, unsigned n)
{
    qsort(v, n, sizeof *v, s_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    unsigned n = 100000, rounds = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--readings") == 0 && i + 1 < argc)
            n = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = (unsigned)strtoul(argv[++i], NULL, 10);
        else
            vem_bench_die("usage", "bench-curve [--readings N] [--rounds R]");
    }
    if (n == 0 || rounds == 0 || rounds > S_MAX_ROUNDS)
        vem_bench_die("usage", "N > 0, 1 <= R <= 15");
    char bin[PATH_MAX], dir[] = "/tmp/bench-curve.XXXXXX", err[600];
    vem_bench_exe_dir(bin, sizeof bin);
    if (!mkdtemp(dir))
        vem_bench_die("mkdtemp", dir);
    char clients[PATH_MAX], cmd[3 * PATH_MAX];
    snprintf(clients, sizeof clients, "%s/clients", dir);
    if (mkdir(clients, 0700) != 0 || vem_curve_generate(dir, "server", err, sizeof err) != 0 ||
        vem_curve_generate(dir, "station", err, sizeof err) != 0)
        vem_bench_die("keys", err);
    /* the four station ids of the readings (s_write_readings) are this key's */
    snprintf(cmd, sizeof cmd,
             "cp '%s/station.pub' '%s/' && "
             "echo 'stations = [\"BC-0\", \"BC-1\", \"BC-2\", \"BC-3\"];' >> '%s/station.pub'",
             dir, clients, clients);
    if (system(cmd) != 0)
        vem_bench_die("keys", "cannot list the station's key");
    snprintf(cmd, sizeof cmd, "%s/readings.jsonl", dir);
    s_write_readings(cmd, n);
    double plain[S_MAX_ROUNDS], curve[S_MAX_ROUNDS], ratio[S_MAX_ROUNDS];
    for (unsigned r = 0; r < rounds; r++) {
        for (int c = 0; c < 2; c++) {
            int port = vem_bench_free_port();
            pid_t vemd = s_vemd(bin, dir, port, c == 1);
            double rate = s_send(bin, dir, port, c == 1, n);
            kill(vemd, SIGTERM);
            waitpid(vemd, NULL, 0);
            (c ? curve : plain)[r] = rate;
        }
        ratio[r] = curve[r] / plain[r];
        printf("round %u: plain %.0f/s, curve %.0f/s, ratio %.3f\n", r + 1, plain[r], curve[r],
               ratio[r]);
        fflush(stdout);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench-curve: could not remove %s\n", dir);
    double p = s_median(plain, rounds), q = s_median(curve, rounds), x = s_median(ratio, rounds);
    printf("readings=%u rounds=%u plain_per_s=%.0f curve_per_s=%.0f ratio=%.3f\n", n, rounds, p, q,
           x);
    return 0;
}
