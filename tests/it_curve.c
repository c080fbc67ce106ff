/* it_curve — CURVE on the station and gateway endpoints, against the real vemd and PostgreSQL.
 *
 *   station_keys   a station whose key is listed in stations.curve_clients_dir delivers; one
 *                  with an unknown key, and one without CURVE, cannot (no answer, nothing
 *                  stored, the refusal counted); a station connected with a listed key whose
 *                  file is then removed is cut off after SIGHUP while the others still deliver;
 *                  `vemctl rsd send --client-key` talks to the endpoint too
 *   gateway_keys   the same for the gateway endpoint, with login frames pushed by gateways,
 *                  and the revocation applied although the configuration file is broken
 *
 * The server's pair comes from `vemctl keys gen`; the clients' pairs are made here with
 * zmq_curve_keypair and written in the documented key file format, so the format is checked
 * from outside. What must arrive and what must not is decided by which key sent it. */
#include "itutil.h"
#include "sim_frames.h"
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

typedef struct {
    char pub[41], sec[41];
} s_pair_t;

/* A fresh pair, written as DIR/NAME.key (both keys) and, when listed, CLIENTS/NAME.pub. */
static s_pair_t s_client(const char *dir, const char *clients, const char *name, bool listed)
{
    s_pair_t p;
    ck_assert_int_eq(zmq_curve_keypair(p.pub, p.sec), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "public_key = \"%s\";\nsecret_key = \"%s\";\n", p.pub, p.sec);
    fclose(f);
    if (listed) {
        snprintf(path, sizeof path, "%s/%s.pub", clients, name);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        /* the station id every reading of this suite names (s_reading, the vemctl file) */
        fprintf(f, "# %s\npublic_key = \"%s\";\nstations = [\"CURVE-1\"];\n", name, p.pub);
        fclose(f);
    }
    return p;
}

/* The public key in DIR/keys/server.pub, as vemctl keys gen wrote it. */
static void s_server_pub(const vem_it_run_t *r, char out[41])
{
    char path[600], text[512] = "";
    snprintf(path, sizeof path, "%s/keys/server.pub", r->dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *q = strstr(text, "public_key = \"");
    ck_assert_ptr_nonnull(q);
    memcpy(out, q + 14, 40);
    out[40] = '\0';
}

/* vemd with endpoint ("stations" or "gateways") on CURVE: keys in DIR/keys, clients in
 * DIR/clients.d; the clients' files are made by the caller between prepare and launch. */
static void s_prepare(vem_it_run_t *r, const char *endpoint, char *opts, size_t cap)
{
    vem_it_prepare(r, "it_curve");
    char cmd[1200], keys[400], clients[400];
    snprintf(keys, sizeof keys, "%s/keys", r->dir);
    snprintf(clients, sizeof clients, "%s/clients.d", r->dir);
    ck_assert_int_eq(mkdir(keys, 0700), 0);
    ck_assert_int_eq(mkdir(clients, 0700), 0);
    snprintf(cmd, sizeof cmd, "'%s/vemctl' keys gen server --dir '%s' >/dev/null",
             vem_test_bin_dir(), keys);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(opts, cap, "curve_server_key = \"%s/server.key\"; curve_clients_dir = \"%s\";", keys,
             clients);
    if (strcmp(endpoint, "stations") == 0)
        r->stations_opts = opts;
    else
        r->gateways_opts = opts;
    vem_it_write_config(r, "info");
}

/* A client socket of type to r's endpoint, over CURVE with pair (NULL: plain). */
static void *s_socket(void *ctx, int type, const vem_it_run_t *r, const char *sock,
                      const s_pair_t *pair)
{
    void *s = zmq_socket(ctx, type);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (pair) {
        char server[41];
        s_server_pub(r, server);
        ck_assert_int_eq(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server, 40), 0);
        ck_assert_int_eq(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pair->pub, 40), 0);
        ck_assert_int_eq(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, pair->sec, 40), 0);
    }
    char endpoint[400];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/%s", r->dir, sock);
    ck_assert_int_eq(zmq_connect(s, endpoint), 0);
    return s;
}

/* ---- stations ------------------------------------------------------------------------------- */

/* Sends one valid reading (ten minutes old) from station CURVE-1 with the given id; false when
 * the socket could not take it within 5 s (a DEALER without a connection holds nothing). */
static bool s_reading_as(void *dealer, const char *station, const char *id);

/* Sends a reading of station CURVE-1 with reading id `id`. */
static bool s_reading(void *dealer, const char *id)
{
    return s_reading_as(dealer, "CURVE-1", id);
}

static bool s_reading_as(void *dealer, const char *station, const char *id)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    time_t t = tv.tv_sec - 600;
    struct tm tm;
    gmtime_r(&t, &tm);
    char when[32], text[600];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(text, sizeof text,
                     "{\"version\":1,\"station_id\":\"%s\",\"reading_id\":\"%s\",\"lane\":1,"
                     "\"time\":\"%s\",\"plate\":\"津C00001\",\"plate_color\":\"yellow\","
                     "\"fuel\":\"diesel\",\"speed_kmh\":40,\"no_ppm\":300,\"valid\":true}",
                     station, id, when);
    int timeout = 5000;
    zmq_setsockopt(dealer, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    return zmq_send(dealer, text, (size_t)n, 0) == n;
}

/* True when an answer with "status":"ack" came within seconds. */
static bool s_acked(void *dealer, double seconds)
{
    zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, (long)(seconds * 1000)) != 1)
        return false;
    char buf[1024];
    int n = zmq_recv(dealer, buf, sizeof buf - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n < (int)sizeof buf - 1 ? n : (int)sizeof buf - 1] = '\0';
    return strstr(buf, "\"status\":\"ack\"") != NULL;
}

static long long s_count(PGconn *conn, const char *sql, const char *param)
{
    const char *params[] = {param};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(conn));
    long long n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

static void s_await_count(PGconn *conn, const char *sql, const char *param, long long want)
{
    long long n = -1;
    for (int i = 0; i < 600 && (n = s_count(conn, sql, param)) != want; i++)
        vem_it_sleep(0.1);
    ck_assert_msg(n == want, "%s [%s]: %lld, want %lld", sql, param, n, want);
}

/* Waits up to 20 s for a metric series to reach at least want. */
static void s_await_metric(const vem_it_run_t *r, const char *series, double want)
{
    double v = 0;
    for (int i = 0; i < 200 && (v = vem_it_metric_now(r, series)) < want; i++)
        vem_it_sleep(0.1);
    if (v < want)
        vem_it_show_log(r);
    ck_assert_msg(v >= want, "%s = %g, want >= %g", series, v, want);
}

/* Removes DIR/clients.d/NAME.pub, sends SIGHUP and waits for the reload to say so. */
static void s_revoke(const vem_it_run_t *r, const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/clients.d/%s.pub", r->dir, name);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(kill(r->vemd, SIGHUP), 0);
    ck_assert_msg(vem_it_log_until(r, "(0 added, 1 removed)", 20),
                  "no reload of the clients directory in the log");
}

#define S_READING_SQL                                                                              \
    "SELECT count(*) FROM rsd_readings WHERE station_id = 'CURVE-1' AND reading_id = $1"
#define S_UNKNOWN_ST "vem_curve_refused_total{endpoint=\"stations\",reason=\"unknown_key\"}"
#define S_REVOKED_ST "vem_curve_refused_total{endpoint=\"stations\",reason=\"revoked\"}"

START_TEST(station_keys)
{
    vem_it_run_t r = {0};
    char opts[1200];
    s_prepare(&r, "stations", opts, sizeof opts);
    char keys[400], clients[400];
    snprintf(keys, sizeof keys, "%s/keys", r.dir);
    snprintf(clients, sizeof clients, "%s/clients.d", r.dir);
    s_pair_t good = s_client(keys, clients, "good", true);
    s_pair_t gone = s_client(keys, clients, "gone", true);
    s_pair_t stranger = s_client(keys, clients, "stranger", false);
    vem_it_launch(&r);
    PGconn *conn = vem_it_pg();
    void *ctx = zmq_ctx_new();
    void *d_good = s_socket(ctx, ZMQ_DEALER, &r, "stations.sock", &good);
    void *d_gone = s_socket(ctx, ZMQ_DEALER, &r, "stations.sock", &gone);
    void *d_stranger = s_socket(ctx, ZMQ_DEALER, &r, "stations.sock", &stranger);
    void *d_plain = s_socket(ctx, ZMQ_DEALER, &r, "stations.sock", NULL);

    /* listed keys deliver */
    ck_assert(s_reading(d_good, "g1"));
    ck_assert(s_acked(d_good, 20));
    ck_assert(s_reading(d_gone, "x1"));
    ck_assert(s_acked(d_gone, 20));
    /* an unknown key is refused at the handshake, counted and logged with its key */
    s_await_metric(&r, S_UNKNOWN_ST, 1);
    ck_assert(vem_it_log_has(&r, stranger.pub));
    ck_assert(!s_reading(d_stranger, "s1") || !s_acked(d_stranger, 2));
    /* a plain client cannot even complete the handshake */
    ck_assert(!s_reading(d_plain, "p1") || !s_acked(d_plain, 2));

    /* a listed key delivering under a station id its .pub does not list: refused, not stored */
    ck_assert(s_reading_as(d_good, "CURVE-2", "w1"));
    ck_assert(!s_acked(d_good, 5));
    s_await_metric(&r, "vem_rsd_rejections_total{class=\"station_key\"}", 1);

    /* the key of a connected station is removed: its next reading is dropped and counted */
    s_revoke(&r, "gone");
    ck_assert(s_reading(d_gone, "x2"));
    s_await_metric(&r, S_REVOKED_ST, 1);
    ck_assert(!s_acked(d_gone, 2));
    /* the listed station still delivers, on its old connection */
    ck_assert(s_reading(d_good, "g2"));
    ck_assert(s_acked(d_good, 20));

    /* vemctl rsd send as a CURVE client: listed and unknown */
    char path[600], cmd[2000];
    snprintf(path, sizeof path, "%s/one.jsonl", r.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"version\":1,\"station_id\":\"CURVE-1\",\"reading_id\":\"v1\",\"time\":"
               "\"2026-01-01T00:00:00Z\",\"plate\":\"津C00001\",\"plate_color\":\"yellow\","
               "\"valid\":true}\n");
    fclose(f);
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "'%s/vemctl' rsd send '%s' --endpoint 'ipc://%s/stations.sock' --json --quiet "
                 "--retries 1 --timeout-ms 1500 --client-key '%s/%s.key' --server-key "
                 "'%s/server.pub'",
                 vem_test_bin_dir(), path, r.dir, keys, k == 0 ? "good" : "stranger", keys);
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        json_error_t err;
        json_t *sum = json_loadf(p, JSON_DISABLE_EOF_CHECK, &err);
        pclose(p);
        ck_assert_msg(sum != NULL, "vemctl rsd send printed no summary: %s", err.text);
        ck_assert_int_eq(json_integer_value(json_object_get(sum, "acked")), k == 0 ? 1 : 0);
        ck_assert_int_eq(json_integer_value(json_object_get(sum, "failed")), k == 0 ? 0 : 1);
        json_decref(sum);
    }

    /* stored: exactly what the listed keys sent */
    s_await_count(conn, S_READING_SQL, "g2", 1);
    s_await_count(conn, S_READING_SQL, "v1", 1);
    ck_assert_int_eq(s_count(conn, S_READING_SQL, "g1"), 1);
    ck_assert_int_eq(s_count(conn, S_READING_SQL, "x1"), 1);
    ck_assert_int_eq(s_count(conn, S_READING_SQL, "s1"), 0);
    ck_assert_int_eq(s_count(conn, S_READING_SQL, "p1"), 0);
    ck_assert_int_eq(s_count(conn, S_READING_SQL, "x2"), 0);
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM rsd_readings WHERE reading_id = $1", "w1"),
                     0);
    zmq_close(d_good);
    zmq_close(d_gone);
    zmq_close(d_stranger);
    zmq_close(d_plain);
    zmq_ctx_term(ctx);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* ---- gateways ------------------------------------------------------------------------------- */

#define S_LOGIN_SQL  "SELECT count(*) FROM terminal_events WHERE vin = $1 AND cmd = 'login'"
#define S_UNKNOWN_GW "vem_curve_refused_total{endpoint=\"gateways\",reason=\"unknown_key\"}"
#define S_REVOKED_GW "vem_curve_refused_total{endpoint=\"gateways\",reason=\"revoked\"}"

/* Pushes a login frame of vin (now) through a gateway socket; false when the socket could not
 * take it within 5 s (a PUSH holds nothing before its first connection). */
static bool s_login(void *push, const char *vin)
{
    vem_hj1239_frame_t *fr = malloc(sizeof *fr);
    ck_assert_ptr_nonnull(fr);
    uint8_t out[512];
    size_t len = vem_sim_login(fr, vin, time(NULL), 1, out, sizeof out);
    ck_assert_uint_gt(len, 0);
    int timeout = 5000;
    zmq_setsockopt(push, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    bool sent = zmq_send(push, out, len, 0) == (int)len;
    free(fr);
    return sent;
}

START_TEST(gateway_keys)
{
    vem_it_run_t r = {0};
    char opts[1200];
    s_prepare(&r, "gateways", opts, sizeof opts);
    char keys[400], clients[400];
    snprintf(keys, sizeof keys, "%s/keys", r.dir);
    snprintf(clients, sizeof clients, "%s/clients.d", r.dir);
    s_pair_t good = s_client(keys, clients, "gw-good", true);
    s_pair_t gone = s_client(keys, clients, "gw-gone", true);
    s_pair_t stranger = s_client(keys, clients, "gw-stranger", false);
    vem_it_launch(&r);
    PGconn *conn = vem_it_pg();
    void *ctx = zmq_ctx_new();
    void *p_good = s_socket(ctx, ZMQ_PUSH, &r, "gateway.sock", &good);
    void *p_gone = s_socket(ctx, ZMQ_PUSH, &r, "gateway.sock", &gone);
    void *p_stranger = s_socket(ctx, ZMQ_PUSH, &r, "gateway.sock", &stranger);

    ck_assert(s_login(p_good, "LCURVEGW000000001"));
    s_await_count(conn, S_LOGIN_SQL, "LCURVEGW000000001", 1);
    ck_assert(s_login(p_gone, "LCURVEGW000000002"));
    s_await_count(conn, S_LOGIN_SQL, "LCURVEGW000000002", 1);
    /* PUSH queues until a handshake succeeds, which never happens for an unknown key */
    (void)s_login(p_stranger, "LCURVEGW000000003"); /* queued or not: never delivered */
    s_await_metric(&r, S_UNKNOWN_GW, 1);
    ck_assert(vem_it_log_has(&r, stranger.pub));

    /* the configuration file is broken meanwhile: the revocation does not wait for it */
    FILE *cfg = fopen(r.cfg, "a");
    ck_assert_ptr_nonnull(cfg);
    fputs("gateways: { endpoint = ; };\n", cfg);
    fclose(cfg);
    s_revoke(&r, "gw-gone");
    ck_assert_msg(vem_it_log_until(&r, "reload refused", 10), "the broken file was not refused");
    ck_assert(s_login(p_gone, "LCURVEGW000000004"));
    s_await_metric(&r, S_REVOKED_GW, 1);
    ck_assert(s_login(p_good, "LCURVEGW000000005"));
    s_await_count(conn, S_LOGIN_SQL, "LCURVEGW000000005", 1);
    vem_it_settled(&r);
    ck_assert_int_eq(s_count(conn, S_LOGIN_SQL, "LCURVEGW000000003"), 0);
    ck_assert_int_eq(s_count(conn, S_LOGIN_SQL, "LCURVEGW000000004"), 0);
    zmq_close(p_good);
    zmq_close(p_gone);
    zmq_close(p_stranger);
    zmq_ctx_term(ctx);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* --check-config: a plain endpoint other machines can reach is a warning (the file still
 * checks), a loopback or ipc one is not; a CURVE key file that does not load is an error. */
START_TEST(check_config_warns_plain)
{
    char dir[256], path[400], cmd[1200], out[4096];
    vem_test_mkdtemp("it_curve", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/c.cfg", dir);
    static const struct {
        const char *text, *warned;
        int rc;
    } cases[] = {
        {"stations: { endpoint = \"tcp://0.0.0.0:7613\"; };", "stations.endpoint", 0},
        {"gateways: { endpoint = \"tcp://192.0.2.7:7612\"; };", "gateways.endpoint", 0},
        {"stations: { endpoint = \"tcp://127.0.0.1:7613\"; };", NULL, 0},
        {"stations: { endpoint = \"ipc:///run/vemd/s.sock\"; };", NULL, 0},
        {"stations: { endpoint = \"tcp://0.0.0.0:7613\"; curve_server_key = \"/nonexistent.key\"; "
         "curve_clients_dir = \"/tmp\"; };",
         "stations.curve_server_key: /nonexistent.key: cannot read", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "%s\n", cases[i].text);
        fclose(f);
        snprintf(cmd, sizeof cmd, "'%s/vemd' --check-config '%s' 2>&1 >/dev/null",
                 vem_test_bin_dir(), path);
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = '\0';
        int status = pclose(p);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == cases[i].rc, "%s: %s",
                      cases[i].text, out);
        if (cases[i].warned)
            ck_assert_msg(strstr(out, cases[i].warned) != NULL, "%s: %s", cases[i].text, out);
        else
            ck_assert_msg(n == 0, "%s: %s", cases[i].text, out);
    }
}
END_TEST

Suite *vem_suite_curve(void);
Suite *vem_suite_curve(void)
{
    Suite *s = suite_create("curve");
    TCase *tc = tcase_create("keys");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, station_keys);
    tcase_add_test(tc, gateway_keys);
    tcase_add_test(tc, check_config_warns_plain);
    suite_add_tcase(s, tc);
    return s;
}
