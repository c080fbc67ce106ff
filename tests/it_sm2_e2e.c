/* it_sm2_e2e — SM2 signatures and "one connection, one vehicle" against the real vemd, over real
 * terminal sockets, into the harness's PostgreSQL.
 *
 * Keys are made in the test by `openssl genpkey -algorithm SM2`, and every signature by
 * `openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt distid:1234567812345678` (sm2cli.h), over
 * the bytes the test built: the data unit up to the signature (README "Signatures"). The
 * expected 0x08 reply bytes are written out here from protocol/hj1239.md, BCC included.
 *
 *   activation  a chip activated by VIN 1 (answer ok); the same chip filed by VIN 2 (answer
 *               0x02 0x01, chip already activated); a flipped byte in the signed part, a data
 *               unit VIN other than the header's, VIN 1 with a second chip (0x02 0x02 each);
 *               chip 1's key filed by VIN 4 under chip 4 (0x02 0x01, key_reused, the detail
 *               naming chip 1, counted); the registry row in terminal_keys, the refusals in
 *               quarantine by class; rows with a key another chip holds do not reach
 *               terminal_keys (the activation trigger leaves them out, the unique index refuses
 *               an INSERT)
 *   reused_key_rows  a database migrated up to 0014 holding two chips with one key: vemd's load
 *               keeps the one activated first; migration 0015 moves the other to
 *               terminal_keys_reused (naming the chip that keeps it), and the load after it
 *               holds the same
 *   activation_limit  twenty activations in one write at terminals.activations_per_s = 1: the
 *               ones over the budget quarantined (too_many_activations) and left unanswered
 *   enforce     the activated VIN's frames: signed by its chip (stored), a byte flipped after
 *               signing (BCC made good), signed by another key, unsigned; a VIN without a
 *               chip: only the first is stored, the rest quarantined by class
 *   flag        the same frames all stored, the unverified ones in unverified_frames
 *   kafka_flag  the same frames under flag with the Kafka sink on: each sample and OBD event
 *               read back by kcat says `verified`, `bad_signature`, `unsigned` or `no_key` as
 *               the test built its frame, every event valid against schema/kafka
 *               (python3-jsonschema); then vemd restarted without its Kafka cursor (a replay
 *               of the whole spool, activation first): every event again, with the same value
 *   kafka_off   the same frames under off: the same events, none with a "signature_check"
 *   kafka_enforce  the same frames under enforce: only the verified frame's events arrive,
 *               saying `verified`
 *   reload      a key filed in terminal_keys by an operator, then SIGHUP: the VIN's signed
 *               frames are stored under enforce; its row deleted, then SIGHUP: they are not
 *   keys_late   vemd started while PostgreSQL is down, which then comes back: without a
 *               SIGHUP the keys are loaded (vemd tries again), and a frame signed by a filed
 *               key is stored under enforce rather than quarantined as no_key
 *   restart_pg_down  vemd killed and started again while PostgreSQL is down: the frames it
 *               replays are checked with the keys of its registry cache, so a frame signed by
 *               a filed key is stored, not quarantined as no_key
 *   cached_keys_until_theirs_load  started from the cache while PostgreSQL is down, which then
 *               gives its vehicles but not terminal_keys: vem_registry_cached stays 1 until
 *               the keys load too
 *   fresh_keys_over_the_cache  started with PostgreSQL up but slow after a chip was replaced
 *               while vemd was down: the start waits for PostgreSQL's keys, so the new chip's
 *               first frame is stored, not quarantined by the cache's stale key
 *   binding     a second VIN on a connection, by a frame or by a second login: quarantined as
 *               vin_switch, the connection closed by vemd, counted
 *
 * Keys A and B are made anew for every test (a key belongs to one chip, and the tests file
 * theirs under chips of their own in the database they share). */
#include "hj1239.h"
#include "itutil.h"
#include "keys.h"
#include "sm2cli.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <glob.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char s_keys[256]; /* the test's openssl keys */
static uint8_t s_pub_a[64], s_pub_b[64];

static void s_setup(void)
{
    vem_test_mkdtemp("it_sm2", s_keys, sizeof s_keys);
    vem_sm2cli_keygen(s_keys, "a", s_pub_a);
    vem_sm2cli_keygen(s_keys, "b", s_pub_b);
}

/* Before each test (in its own process): keys A and B of its own. */
static void s_fresh_keys(void)
{
    vem_sm2cli_keygen(s_keys, "a", s_pub_a);
    vem_sm2cli_keygen(s_keys, "b", s_pub_b);
}

/* A VIN (17 characters) or chip id (16) no earlier run used, of `width` characters: the
 * registry lives in the database the harness's suites share. */
static void s_unique(char *out, size_t cap, const char *prefix, int n, int width)
{
    long long v = ((long long)(time(NULL) % 100000) * 100 + getpid() % 100) * 100 + n;
    char digits[32];
    snprintf(digits, sizeof digits, "%020lld", v);
    int need = width - (int)strlen(prefix);
    ck_assert(need > 0 && need <= 20 && (size_t)width < cap);
    snprintf(out, cap, "%s%s", prefix, digits + 20 - need);
}

/* f encoded with its signature made by key `signer` over the data unit up to the signature
 * (the signature's place is taken by 2 + 32 + 32 bytes, as the test writes it). */
static size_t s_signed(vem_hj1239_frame_t *f, const char *signer, uint8_t *out, size_t cap)
{
    f->has_sig = true;
    f->sig.rlen = f->sig.slen = 32;
    memset(f->sig.r, 0x11, 32);
    memset(f->sig.s, 0x22, 32);
    size_t len = 0;
    ck_assert_int_eq(vem_hj1239_encode(f, out, cap, &len), 0);
    /* data unit: offset 24, length at bytes 22..23; the signature is its last 66 bytes */
    size_t n = ((size_t)out[22] << 8 | out[23]) - 66;
    vem_sm2cli_sign(s_keys, signer, "1234567812345678", out + 24, n, f->sig.r, f->sig.s);
    ck_assert_int_eq(vem_hj1239_encode(f, out, cap, &len), 0);
    return len;
}

/* XOR of bytes 2 .. len-2: the BCC a frame of len bytes ends with. */
static uint8_t s_bcc(const uint8_t *p, size_t len)
{
    uint8_t x = 0;
    for (size_t i = 2; i + 1 < len; i++)
        x ^= p[i];
    return x;
}

/* A connection to 127.0.0.1:port from source address `from` (another loopback address is
 * another peer to vemd's per-address limits). */
static int s_connect_from(int port, const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in local = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &local.sin_addr);
    ck_assert_msg(bind(fd, (struct sockaddr *)&local, sizeof local) == 0, "bind %s: %s", from,
                  strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s",
                  strerror(errno));
    return fd;
}

static int s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s",
                  strerror(errno));
    return fd;
}

static void s_send(int fd, const uint8_t *p, size_t len)
{
    ck_assert_int_eq(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads exactly n bytes within 10 s; returns how many came before the end or the deadline. */
static size_t s_read(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    double end = vem_it_mono() + 10;
    while (got < n && vem_it_mono() < end) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t k = recv(fd, p + got, n - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

/* True when vemd closed the connection within 10 s (whatever it still sent is read away). */
static bool s_closed_by_peer(int fd)
{
    uint8_t buf[256];
    double end = vem_it_mono() + 10;
    while (vem_it_mono() < end) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k == 0 || (k < 0 && errno == ECONNRESET))
            return true;
    }
    return false;
}

static long long s_count(PGconn *conn, const char *sql, const char *param)
{
    const char *params[] = {param};
    PGresult *res = PQexecParams(conn, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

static long long s_count_until(PGconn *conn, const char *sql, const char *param, long long want)
{
    long long v = 0;
    for (int i = 0; i < 300 && (v = s_count(conn, sql, param)) != want; i++)
        vem_it_sleep(0.1);
    return v;
}

/* An activation frame: VIN (header and data unit may differ), chip, key, signed by signer. */
static size_t s_activation(const char *vin, const char *act_vin, const char *chip,
                           const uint8_t pub[64], const char *signer, uint8_t *out, size_t cap)
{
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    ck_assert_ptr_nonnull(f);
    vem_test_vector_frame("activation", f);
    memcpy(f->vin, vin, 17);
    memcpy(f->act_vin, act_vin, 17);
    memcpy(f->chip_id, chip, 16);
    memcpy(f->pubkey, pub, 64);
    f->time = time(NULL);
    size_t len = s_signed(f, signer, out, cap);
    free(f);
    return len;
}

/* Sends an activation on a new connection and checks the 0x08 answer byte for byte. */
static void s_activate_expect(const vem_it_run_t *r, const uint8_t *frame, size_t len,
                              uint8_t status, uint8_t info)
{
    int fd = s_connect(r->port);
    s_send(fd, frame, len);
    uint8_t want[27] = {'#', '#', 0x08};
    memcpy(want + 3, frame + 3, 17); /* the header VIN */
    want[20] = frame[20];            /* the terminal's software version */
    want[21] = 0x01;                 /* not encrypted */
    want[22] = 0x00;
    want[23] = 0x02; /* data unit: status, info */
    want[24] = status;
    want[25] = info;
    want[26] = s_bcc(want, sizeof want);
    uint8_t got[27];
    ck_assert_uint_eq(s_read(fd, got, sizeof got), sizeof got);
    ck_assert_msg(memcmp(got, want, sizeof want) == 0,
                  "0x08 answer: status %02x info %02x (bcc %02x), want %02x %02x (bcc %02x)",
                  got[24], got[25], got[26], status, info, want[26]);
    close(fd);
}

START_TEST(activation)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    vem_it_run_t r = {.terminals_opts = "activations_per_address_s = 100;"}; /* 8 in a row */
    vem_it_start(&r, "it_sm2");
    char vin1[32], vin2[32], vin3[32], vin4[32], chip1[32], chip2[32], chip3[32], chip4[32];
    s_unique(vin1, sizeof vin1, "LSM2A", 1, 17);
    s_unique(vin2, sizeof vin2, "LSM2A", 2, 17);
    s_unique(vin3, sizeof vin3, "LSM2A", 3, 17);
    s_unique(chip1, sizeof chip1, "CHIP", 1, 16); /* 16 ASCII bytes */
    s_unique(chip2, sizeof chip2, "CHIP", 2, 16);
    s_unique(chip3, sizeof chip3, "CHIP", 3, 16);
    s_unique(vin4, sizeof vin4, "LSM2A", 4, 17);
    s_unique(chip4, sizeof chip4, "CHIP", 4, 16);
    uint8_t frame[512];
    size_t len;

    len = s_activation(vin1, vin1, chip1, s_pub_a, "a", frame, sizeof frame);
    s_activate_expect(&r, frame, len, 0x01, 0x00);
    /* again: the same chip for the same VIN is fine */
    s_activate_expect(&r, frame, len, 0x01, 0x00);
    /* the chip re-activated by another VIN, with another key, correctly signed by that key */
    len = s_activation(vin2, vin2, chip1, s_pub_b, "b", frame, sizeof frame);
    s_activate_expect(&r, frame, len, 0x02, 0x01);
    /* one byte of the signed part flipped (the chip id), BCC made good */
    len = s_activation(vin3, vin3, chip3, s_pub_b, "b", frame, sizeof frame);
    frame[24 + 6] ^= 0x01;
    frame[len - 1] = s_bcc(frame, len);
    s_activate_expect(&r, frame, len, 0x02, 0x02);
    /* the data unit's VIN is not the header's */
    len = s_activation(vin3, vin2, chip3, s_pub_b, "b", frame, sizeof frame);
    s_activate_expect(&r, frame, len, 0x02, 0x02);
    /* VIN 1 with a second chip: a VIN has one chip until an operator removes it */
    len = s_activation(vin1, vin1, chip2, s_pub_b, "b", frame, sizeof frame);
    s_activate_expect(&r, frame, len, 0x02, 0x02);
    /* VIN 1 and chip 1 again with key B, correctly signed by B: the chip's key is fixed (whoever
     * read chip 1's id could otherwise file a key of their own) */
    len = s_activation(vin1, vin1, chip1, s_pub_b, "b", frame, sizeof frame);
    s_activate_expect(&r, frame, len, 0x02, 0x01);
    /* chip 1's key A under chip 4 for VIN 4, signed by A (a cloned chip): 0x02 0x01 */
    len = s_activation(vin4, vin4, chip4, s_pub_a, "a", frame, sizeof frame);
    s_activate_expect(&r, frame, len, 0x02, 0x01);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_activations_total{verdict=\"key_reused\"}"), 1);

    /* the registry row: VIN 1, chip 1, key A */
    ck_assert_int_eq(
        s_count_until(conn, "SELECT count(*) FROM terminal_keys WHERE vin = $1", vin1, 1), 1);
    /* an activation row with key B reaching the table by another way is left out too */
    char hex_b[129], sql[600];
    for (int i = 0; i < 64; i++)
        snprintf(hex_b + 2 * i, 3, "%02x", s_pub_b[i]);
    snprintf(sql, sizeof sql,
             "INSERT INTO terminal_events (vin, event_time, cmd, seq, received_at, chip_id, "
             "pubkey, act_vin) VALUES ('%s', now(), 'activation', 7, now(), "
             "convert_to('%s', 'SQL_ASCII'), decode('%s', 'hex'), '%s')",
             vin1, chip1, hex_b, vin1);
    vem_it_sql(conn, "SELECT vem_ensure_partitions(current_date - 1, current_date + 1)");
    vem_it_sql(conn, sql);
    const char *params[] = {vin1};
    PGresult *res = PQexecParams(conn,
                                 "SELECT encode(chip_id, 'escape'), encode(pubkey, 'hex'), "
                                 "first_activated_at <= last_activated_at FROM terminal_keys "
                                 "WHERE vin = $1",
                                 1, NULL, params, NULL, NULL, 0);
    ck_assert_int_eq(PQntuples(res), 1);
    char hex[129];
    for (int i = 0; i < 64; i++)
        snprintf(hex + 2 * i, 3, "%02x", s_pub_a[i]);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), chip1);
    ck_assert_str_eq(PQgetvalue(res, 0, 1), hex);
    ck_assert_str_eq(PQgetvalue(res, 0, 2), "t");
    PQclear(res);
    snprintf(sql, sizeof sql,
             "DELETE FROM terminal_events WHERE vin = '%s' AND cmd = 'activation' AND seq = 7",
             vin1);
    vem_it_sql(conn, sql); /* the counts below are of what vemd stored */
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM terminal_keys WHERE vin = $1", vin2), 0);
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM terminal_keys WHERE vin = $1", vin3), 0);
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM terminal_keys WHERE vin = $1", vin4), 0);
    /* key A reaching the table for chip 4 by other ways: the activation trigger leaves it out,
     * a direct INSERT meets the unique index (migration 0015) */
    char hex_a[129];
    for (int i = 0; i < 64; i++)
        snprintf(hex_a + 2 * i, 3, "%02x", s_pub_a[i]);
    snprintf(sql, sizeof sql,
             "INSERT INTO terminal_events (vin, event_time, cmd, seq, received_at, chip_id, "
             "pubkey, act_vin) VALUES ('%s', now(), 'activation', 8, now(), "
             "convert_to('%s', 'SQL_ASCII'), decode('%s', 'hex'), '%s')",
             vin4, chip4, hex_a, vin4);
    vem_it_sql(conn, sql);
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM terminal_keys WHERE vin = $1", vin4), 0);
    snprintf(sql, sizeof sql,
             "DELETE FROM terminal_events WHERE vin = '%s' AND cmd = 'activation' AND seq = 8",
             vin4);
    vem_it_sql(conn, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO terminal_keys VALUES ('%s', convert_to('%s', 'SQL_ASCII'), "
             "decode('%s', 'hex'), now(), now())",
             vin4, chip4, hex_a);
    res = PQexec(conn, sql);
    ck_assert_int_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
    ck_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23505"); /* unique_violation */
    PQclear(res);
    /* the refusal as key_reused, its detail naming chip 1 (in hex) and VIN 1 */
    const char *reuse[] = {vin4, chip1, vin1};
    long long quarantined = 0;
    for (int i = 0; i < 300 && quarantined == 0; i++) {
        if (i)
            vem_it_sleep(0.1);
        res = PQexecParams(conn,
                           "SELECT count(*) FROM quarantine WHERE error_class = 'key_reused' AND "
                           "position(convert_to($1, 'SQL_ASCII') in raw) = 4 AND "
                           "position(encode(convert_to($2, 'SQL_ASCII'), 'hex') in detail) > 0 "
                           "AND position($3 in detail) > 0",
                           3, NULL, reuse, NULL, NULL, 0);
        ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
        quarantined = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    ck_assert_int_eq(quarantined, 1);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_errors_total{class=\"key_reused\"}"), 1);
    /* the refusals, by class (VIN 2 by its header in the raw bytes) */
    ck_assert_int_eq(s_count_until(conn,
                                   "SELECT count(*) FROM quarantine WHERE error_class = "
                                   "'chip_activated' AND position(convert_to($1, 'SQL_ASCII') "
                                   "in raw) = 4",
                                   vin2, 1),
                     1);
    ck_assert_int_eq(s_count_until(conn,
                                   "SELECT count(*) FROM quarantine WHERE error_class IN "
                                   "('bad_signature', 'vin_error') AND "
                                   "position(convert_to($1, 'SQL_ASCII') in raw) = 4",
                                   vin3, 2),
                     2);
    ck_assert_int_eq(s_count_until(conn,
                                   "SELECT count(*) FROM quarantine WHERE error_class = "
                                   "'vin_error' AND position(convert_to($1, 'SQL_ASCII') "
                                   "in raw) = 4",
                                   vin1, 1),
                     1);
    ck_assert_int_eq(s_count_until(conn,
                                   "SELECT count(*) FROM quarantine WHERE error_class = "
                                   "'chip_activated' AND position(convert_to($1, 'SQL_ASCII') "
                                   "in raw) = 4",
                                   vin1, 1),
                     1);
    /* the accepted ones are activation events (twice: two different receipts, same row key) */
    ck_assert_int_eq(s_count_until(conn,
                                   "SELECT count(*) FROM terminal_events WHERE vin = $1 AND "
                                   "cmd = 'activation'",
                                   vin1, 1),
                     1);
    vem_it_stop(&r);
    PQfinish(conn);
}
END_TEST

/* `vemctl db migrate` of the migrations in dir into database db of the harness's server. */
static void s_migrate(const char *db, const char *dir)
{
    char vemctl[512], conninfo[600], log[300];
    snprintf(vemctl, sizeof vemctl, "%s/vemctl", vem_test_bin_dir());
    snprintf(conninfo, sizeof conninfo, "%s dbname=%s", vem_test_env("VEM_TEST_PG"), db);
    snprintf(log, sizeof log, "%s/migrate.log", s_keys);
    char *argv[] = {vemctl, "db", "migrate", "--db", conninfo, "--dir", (char *)dir, NULL};
    ck_assert_int_eq(vem_it_wait(vem_it_spawn(argv, log), 120), 0);
}

/* True when the registry's key of vin verifies what key `signer` signed. */
static bool s_key_is(vem_keys_t *keys, const char *vin, const char *signer)
{
    uint8_t msg[32] = "a frame's data unit, say", r[32], s[32];
    vem_sm2cli_sign(s_keys, signer, "1234567812345678", msg, sizeof msg, r, s);
    vem_sm2_key_t *k = vem_keys_find(keys, (const uint8_t *)vin);
    bool ok = k && vem_sm2_verify(k, r, 32, s, 32, msg, sizeof msg) == VEM_SM2_OK;
    vem_sm2_key_destroy(&k);
    return ok;
}

/* Files a terminal_keys row: VIN, chip (16 ASCII), key, first and last activation. */
static void s_key_row(PGconn *conn, const char *vin, const char *chip, const uint8_t pub[64],
                      const char *at)
{
    char hex[129];
    for (int i = 0; i < 64; i++)
        snprintf(hex + 2 * i, 3, "%02x", pub[i]);
    const char *params[] = {vin, chip, hex, at};
    PGresult *res = PQexecParams(conn,
                                 "INSERT INTO terminal_keys VALUES ($1, convert_to($2, "
                                 "'SQL_ASCII'), decode($3, 'hex'), $4, $4)",
                                 4, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(conn));
    PQclear(res);
}

/* A database as 0014 left it may hold one key under two chips. Chip X was filed first but
 * activated later than chip Y, both with key A; chip Z has key B. */
START_TEST(reused_key_rows)
{
    vem_it_pg_up();
    PGconn *admin = vem_it_pg_as(NULL);
    vem_it_sql(admin, "DROP DATABASE IF EXISTS vem_dupkey");
    vem_it_sql(admin, "CREATE DATABASE vem_dupkey");
    /* the migrations before 0015 */
    char dir[300], pattern[700], link_path[400];
    snprintf(dir, sizeof dir, "%s/schema14", s_keys);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(pattern, sizeof pattern, "%s/../../schema/[0-9][0-9][0-9][0-9]_*.sql",
             vem_test_bin_dir());
    glob_t files;
    ck_assert_int_eq(glob(pattern, 0, NULL, &files), 0);
    for (size_t i = 0; i < files.gl_pathc; i++) {
        const char *base = strrchr(files.gl_pathv[i], '/') + 1;
        if (strncmp(base, "0015", 4) >= 0)
            continue;
        char *full = realpath(files.gl_pathv[i], NULL);
        ck_assert_ptr_nonnull(full);
        snprintf(link_path, sizeof link_path, "%s/%s", dir, base);
        ck_assert_int_eq(symlink(full, link_path), 0);
        free(full);
    }
    globfree(&files);
    s_migrate("vem_dupkey", dir);

    char conninfo[600];
    snprintf(conninfo, sizeof conninfo, "%s dbname=vem_dupkey", vem_test_env("VEM_TEST_PG"));
    PGconn *conn = PQconnectdb(conninfo);
    ck_assert_int_eq(PQstatus(conn), CONNECTION_OK);
    s_key_row(conn, "LDUPKEY0000000001", "CHIPDUPKEY00000X", s_pub_a, "2026-01-02 08:00+08");
    s_key_row(conn, "LDUPKEY0000000002", "CHIPDUPKEY00000Y", s_pub_a, "2026-01-01 08:00+08");
    s_key_row(conn, "LDUPKEY0000000003", "CHIPDUPKEY00000Z", s_pub_b, "2026-01-03 08:00+08");

    /* vemd's load: chip Y, activated first, keeps key A */
    vem_keys_t *keys = vem_keys_new();
    char err[512] = "";
    ck_assert_msg(vem_keys_load(keys, conninfo, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(vem_keys_size(keys), 2);
    ck_assert(s_key_is(keys, "LDUPKEY0000000002", "a"));
    ck_assert_ptr_null(vem_keys_find(keys, (const uint8_t *)"LDUPKEY0000000001"));
    ck_assert(s_key_is(keys, "LDUPKEY0000000003", "b"));

    /* 0015 on top: chip X's row moves out, naming chip Y; the table is now as vemd loads it */
    snprintf(dir, sizeof dir, "%s/../../schema", vem_test_bin_dir());
    s_migrate("vem_dupkey", dir);
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM terminal_keys", NULL), 2);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM terminal_keys WHERE vin IN "
                             "('LDUPKEY0000000002', 'LDUPKEY0000000003')",
                             NULL),
                     2);
    ck_assert_int_eq(s_count(conn,
                             "SELECT count(*) FROM terminal_keys_reused WHERE vin = "
                             "'LDUPKEY0000000001' AND chip_id = 'CHIPDUPKEY00000X'::bytea AND "
                             "held_by_chip = 'CHIPDUPKEY00000Y'::bytea AND first_activated_at = "
                             "'2026-01-02 08:00+08'",
                             NULL),
                     1);
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM terminal_keys_reused", NULL), 1);
    ck_assert_int_eq(vem_keys_load(keys, conninfo, err, sizeof err), 0);
    ck_assert_uint_eq(vem_keys_size(keys), 2);
    ck_assert(s_key_is(keys, "LDUPKEY0000000002", "a"));
    vem_keys_destroy(&keys);
    PQfinish(conn);
    vem_it_sql(admin, "DROP DATABASE vem_dupkey");
    PQfinish(admin);
}
END_TEST

/* Activations over terminals.activations_per_s are quarantined unjudged, counted, unanswered. */
/* One address looping activations spends its own share (activations_per_address_s), not the
 * daemon's: an activation from another address right after is still judged and answered. */
START_TEST(activation_limit_per_address)
{
    vem_it_pg_up();
    vem_it_run_t r = {.terminals_opts = "activations_per_s = 1000; activations_per_address_s = 2;"};
    vem_it_start(&r, "it_sm2");
    char vin[32], chip[32], vin2[32], chip2[32];
    s_unique(vin, sizeof vin, "LSM2P", 1, 17);
    s_unique(chip, sizeof chip, "CHIP", 21, 16);
    s_unique(vin2, sizeof vin2, "LSM2P", 2, 17);
    s_unique(chip2, sizeof chip2, "CHIP", 22, 16);
    enum { N = 40 };
    uint8_t one[512], all[N * 512];
    size_t len = s_activation(vin, vin, chip, s_pub_a, "a", one, sizeof one);
    for (int i = 0; i < N; i++)
        memcpy(all + (size_t)i * len, one, len);
    int flood = s_connect_from(r.port, "127.0.0.2");
    s_send(flood, all, N * len); /* one write: judged within one drain, in one or two seconds */
    double over = 0, judged = 0;
    for (int i = 0; i < 100 && over + judged < N; i++) {
        vem_it_sleep(0.1);
        over = vem_it_metric_now(&r, "vem_activations_total{verdict=\"over_limit\"}");
        judged = vem_it_metric_now(&r, "vem_activations_total{verdict=\"ok\"}");
    }
    ck_assert_double_eq(over + judged, N);
    ck_assert_msg(judged <= 4, "%.0f of %d activations from one address judged at 2/s", judged, N);
    /* the other address (127.0.0.1) is judged and answered ok at once */
    len = s_activation(vin2, vin2, chip2, s_pub_b, "b", one, sizeof one);
    s_activate_expect(&r, one, len, 0x01, 0x00);
    close(flood);
    vem_it_stop(&r);
}
END_TEST

START_TEST(activation_limit)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    vem_it_run_t r = {.terminals_opts = "activations_per_s = 1;"};
    vem_it_start(&r, "it_sm2");
    char vin[32], chip[32];
    s_unique(vin, sizeof vin, "LSM2L", 1, 17);
    s_unique(chip, sizeof chip, "CHIP", 11, 16);
    enum { N = 20 };
    uint8_t one[512], all[N * 512];
    size_t len = s_activation(vin, vin, chip, s_pub_a, "a", one, sizeof one);
    for (int i = 0; i < N; i++)
        memcpy(all + (size_t)i * len, one, len);
    int fd = s_connect(r.port);
    s_send(fd, all, N * len); /* one write: judged within one drain, in microseconds */
    double over = 0, judged = 0;
    for (int i = 0; i < 100 && over + judged < N; i++) {
        vem_it_sleep(0.1);
        over = vem_it_metric_now(&r, "vem_activations_total{verdict=\"over_limit\"}");
        judged = vem_it_metric_now(&r, "vem_activations_total{verdict=\"ok\"}");
    }
    ck_assert_double_eq(over + judged, N);
    ck_assert_msg(over >= 1, "%.0f of %d activations in one write judged at 1/s", judged, N);
    /* each refusal quarantined with its class; the accepted answered ok, the rest not at all */
    ck_assert_int_eq(s_count_until(conn,
                                   "SELECT count(*) FROM quarantine WHERE error_class = "
                                   "'too_many_activations' AND position(convert_to($1, "
                                   "'SQL_ASCII') in raw) = 4",
                                   vin, (long long)over),
                     (long long)over);
    uint8_t replies[N * 27];
    ck_assert_uint_eq(s_read(fd, replies, (size_t)judged * 27), (size_t)judged * 27);
    for (int i = 0; i < (int)judged; i++)
        ck_assert_uint_eq(replies[i * 27 + 24], 0x01);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&pfd, 1, 500), 0); /* nothing more */
    close(fd);
    vem_it_stop(&r);
    PQfinish(conn);
}
END_TEST

/* ---- frame signatures -------------------------------------------------------------------- */

/* A real-time frame (HJ 1239 layout) of vin with serial seq, stamped seq minutes ago. */
static void s_realtime(vem_hj1239_frame_t *f, const char *vin, uint16_t seq)
{
    vem_test_vector_frame("realtime_hj1239", f);
    memcpy(f->vin, vin, 17);
    f->seq = seq;
    f->time = time(NULL) - 60 * seq; /* samples are stored by (vin, time, block): keep apart */
    for (uint16_t b = 0; b < f->nblocks; b++)
        f->blocks[b].time = f->time - (f->nblocks - b);
}

typedef struct {
    char keyed[32], keyless[32]; /* an activated VIN, and one without a chip */
    int fd;                      /* the keyed VIN's connection */
    json_t *want; /* NULL, or gets {event_id: signature} of the Kafka events the frames make */
} s_fleet_t;

/* Adds to fl->want the sample and OBD events frame f makes, with the signature result the test
 * built it to have: one event per stream, twc or twc_nox block (hybrid and supplementary
 * blocks join a sample's event) and per OBD block, named TYPE/VIN/BLOCK_TIME/BLOCK_INDEX
 * (README "Kafka"). */
static void s_expect(const s_fleet_t *fl, const vem_hj1239_frame_t *f, const char *sig)
{
    if (!fl->want)
        return;
    for (uint16_t b = 0; b < f->nblocks; b++) {
        uint8_t t = f->blocks[b].type;
        const char *type = t == VEM_HJ1239_BLOCK_OBD ? "obd"
                           : t == VEM_HJ1239_BLOCK_STREAM || t == VEM_HJ1239_BLOCK_TWC ||
                                   t == VEM_HJ1239_BLOCK_TWC_NOX
                               ? "sample"
                               : NULL;
        if (!type)
            continue;
        char id[96];
        snprintf(id, sizeof id, "%s/%.17s/%lld/%u", type, (const char *)f->vin,
                 (long long)f->blocks[b].time, (unsigned)b);
        json_object_set_new(fl->want, id, json_string(sig));
    }
}

/* Activates `keyed` with key A over its own connection (kept for its frames), then sends:
 * seq 1 signed by A; seq 2 signed by A with a sample byte flipped after signing (BCC made
 * good); seq 3 signed by B; seq 4 without signature (GB 17691 layout); and, on a connection
 * of its own, the keyless VIN's frame signed by A. Replies are read as they come. */
static void s_send_frames(const vem_it_run_t *r, s_fleet_t *fl, const char *prefix)
{
    s_unique(fl->keyed, sizeof fl->keyed, prefix, 1, 17);
    s_unique(fl->keyless, sizeof fl->keyless, prefix, 2, 17);
    char chip[32];
    s_unique(chip, sizeof chip, "CHIP", 7, 16);
    uint8_t frame[1024], reply[64];
    size_t len = s_activation(fl->keyed, fl->keyed, chip, s_pub_a, "a", frame, sizeof frame);
    fl->fd = s_connect(r->port);
    s_send(fl->fd, frame, len);
    ck_assert_uint_eq(s_read(fl->fd, reply, 27), 27);
    ck_assert_uint_eq(reply[24], 0x01); /* activated */

    vem_hj1239_frame_t *f = malloc(sizeof *f);
    ck_assert_ptr_nonnull(f);
    s_realtime(f, fl->keyed, 1);
    len = s_signed(f, "a", frame, sizeof frame);
    s_expect(fl, f, "verified");
    s_send(fl->fd, frame, len);
    s_realtime(f, fl->keyed, 2);
    len = s_signed(f, "a", frame, sizeof frame);
    s_expect(fl, f, "bad_signature");
    frame[24 + 8 + 1 + 6 + 4] ^= 0x01; /* time, serial, type, block time: the first sample */
    frame[len - 1] = s_bcc(frame, len);
    s_send(fl->fd, frame, len);
    s_realtime(f, fl->keyed, 3);
    len = s_signed(f, "b", frame, sizeof frame);
    s_expect(fl, f, "bad_signature");
    s_send(fl->fd, frame, len);
    vem_test_vector_frame("realtime_gb17691", f);
    memcpy(f->vin, fl->keyed, 17);
    f->seq = 4;
    f->time = time(NULL) - 60 * 4;
    for (uint16_t b = 0; b < f->nblocks; b++)
        f->blocks[b].time = f->time;
    ck_assert_int_eq(vem_hj1239_encode(f, frame, sizeof frame, &len), 0);
    s_expect(fl, f, "unsigned");
    s_send(fl->fd, frame, len);
    for (int i = 0; i < 4; i++) /* one reply per frame (reply_mode hj1239) */
        ck_assert_uint_eq(s_read(fl->fd, reply, 31), 31);

    int other = s_connect(r->port);
    s_realtime(f, fl->keyless, 1);
    len = s_signed(f, "a", frame, sizeof frame);
    s_expect(fl, f, "no_key");
    s_send(other, frame, len);
    ck_assert_uint_eq(s_read(other, reply, 31), 31);
    close(other);
    free(f);
}

/* Samples stored of vin's frame with serial seq. */
static long long s_samples(PGconn *conn, const char *vin, int seq)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM obd_samples WHERE vin = $1 AND frame_seq = %d",
             seq);
    return s_count(conn, sql, vin);
}

/* Sends vin's real-time frame with serial seq, signed by key A, over fd; reads its reply. */
static void s_send_signed_by(int fd, const char *vin, uint16_t seq, const char *signer)
{
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    ck_assert_ptr_nonnull(f);
    uint8_t frame[1024], reply[64];
    s_realtime(f, vin, seq);
    size_t len = s_signed(f, signer, frame, sizeof frame);
    s_send(fd, frame, len);
    ck_assert_uint_eq(s_read(fd, reply, 31), 31);
    free(f);
}

static void s_send_signed(int fd, const char *vin, uint16_t seq)
{
    s_send_signed_by(fd, vin, seq, "a");
}

/* Waits up to 30 s for vin's frame seq to be stored; true when it is. */
static bool s_stored(PGconn *conn, const char *vin, int seq)
{
    for (int i = 0; i < 300 && s_samples(conn, vin, seq) == 0; i++)
        vem_it_sleep(0.1);
    return s_samples(conn, vin, seq) > 0;
}

START_TEST(enforce)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    vem_it_run_t r = {.terminals_opts = "signatures = \"enforce\";"};
    vem_it_start(&r, "it_sm2");
    s_fleet_t fl = {0};
    s_send_frames(&r, &fl, "LSM2E");
    const char *by_class = "SELECT count(*) FROM quarantine WHERE vin = $1 AND error_class = ";
    char sql[200];
    snprintf(sql, sizeof sql, "%s'bad_signature'", by_class);
    ck_assert_int_eq(s_count_until(conn, sql, fl.keyed, 2), 2); /* flipped byte, key B */
    snprintf(sql, sizeof sql, "%s'unsigned'", by_class);
    ck_assert_int_eq(s_count_until(conn, sql, fl.keyed, 1), 1);
    snprintf(sql, sizeof sql, "%s'no_key'", by_class);
    ck_assert_int_eq(s_count_until(conn, sql, fl.keyless, 1), 1);
    json_decref(vem_it_sink_settled(&r));
    ck_assert_int_gt(s_samples(conn, fl.keyed, 1), 0); /* signed by its chip: stored */
    for (int seq = 2; seq <= 4; seq++)
        ck_assert_int_eq(s_samples(conn, fl.keyed, seq), 0);
    ck_assert_int_eq(s_samples(conn, fl.keyless, 1), 0);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_signature_checks_total{result=\"verified\"}"),
                        1);
    ck_assert_double_eq(
        vem_it_metric_now(&r, "vem_signature_checks_total{result=\"bad_signature\"}"), 2);
    close(fl.fd);
    vem_it_stop(&r);
    PQfinish(conn);
}
END_TEST

START_TEST(flag)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    vem_it_run_t r = {.terminals_opts = "signatures = \"flag\";"};
    vem_it_start(&r, "it_sm2");
    s_fleet_t fl = {0};
    s_send_frames(&r, &fl, "LSM2F");
    /* every frame stored */
    for (int seq = 1; seq <= 4; seq++)
        for (int i = 0; i < 300 && s_samples(conn, fl.keyed, seq) == 0; i++)
            vem_it_sleep(0.1);
    for (int seq = 1; seq <= 4; seq++)
        ck_assert_msg(s_samples(conn, fl.keyed, seq) > 0, "frame %d not stored", seq);
    for (int i = 0; i < 300 && s_samples(conn, fl.keyless, 1) == 0; i++)
        vem_it_sleep(0.1);
    ck_assert_int_gt(s_samples(conn, fl.keyless, 1), 0);
    /* marked: verified = false for all but the one signed by the VIN's chip, with the reason */
    const char *by_reason =
        "SELECT count(*) FROM unverified_frames WHERE vin = $1 AND NOT verified AND reason = ";
    char sql[200];
    snprintf(sql, sizeof sql, "%s'bad_signature'", by_reason);
    ck_assert_int_eq(s_count_until(conn, sql, fl.keyed, 2), 2);
    snprintf(sql, sizeof sql, "%s'unsigned'", by_reason);
    ck_assert_int_eq(s_count_until(conn, sql, fl.keyed, 1), 1);
    snprintf(sql, sizeof sql, "%s'no_key'", by_reason);
    ck_assert_int_eq(s_count_until(conn, sql, fl.keyless, 1), 1);
    json_decref(vem_it_sink_settled(&r));
    ck_assert_int_eq(
        s_count(conn, "SELECT count(*) FROM unverified_frames WHERE vin = $1", fl.keyed), 3);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_unverified_frames_total"), 4);
    close(fl.fd);
    vem_it_stop(&r);
    PQfinish(conn);
}
END_TEST

/* ---- the signature in Kafka's events ------------------------------------------------------- */

/* The sample and OBD events of fl's two VINs on topic, read to its end by kcat (another
 * client than vemd's): {event_id: signature, or null without one}. Every payload is appended
 * to events_path for the schema check; an event seen twice (a replay) must say the same both
 * times, and *copies counts them all. */
static json_t *s_signatures(const char *topic, const s_fleet_t *fl, const char *events_path,
                            long *copies)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "kcat -b '%s' -C -t '%s' -e -q -f '%%s\\n'",
             vem_test_env("VEM_TEST_KAFKA"), topic);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    FILE *out = fopen(events_path, "a");
    ck_assert_ptr_nonnull(out);
    json_t *got = json_object();
    *copies = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, p)) > 0) {
        fputs(line, out);
        json_error_t err;
        json_t *ev = json_loads(line, 0, &err);
        ck_assert_msg(ev != NULL, "%s: an event that is not JSON: %s", topic, err.text);
        const char *vin = json_string_value(json_object_get(ev, "vin"));
        if (vin && (strcmp(vin, fl->keyed) == 0 || strcmp(vin, fl->keyless) == 0)) {
            const char *id = json_string_value(json_object_get(ev, "event_id"));
            ck_assert_ptr_nonnull(id);
            json_t *sig = json_object_get(ev, "signature_check");
            json_t *have = json_object_get(got, id);
            ck_assert_msg(!have || json_equal(have, sig ? sig : json_null()),
                          "%s: two copies with signatures %s and %s", id,
                          json_is_string(have) ? json_string_value(have) : "(none)",
                          json_is_string(sig) ? json_string_value(sig) : "(none)");
            json_object_set(got, id, sig ? sig : json_null());
            (*copies)++;
        }
        json_decref(ev);
    }
    free(line);
    fclose(out);
    ck_assert_int_eq(pclose(p), 0);
    return got;
}

/* got holds exactly want's events, each with want's signature (want_none: with none). */
static void s_check_signatures(json_t *got, json_t *want, bool want_none)
{
    ck_assert_int_gt(json_object_size(want), 0);
    const char *id;
    json_t *sig;
    json_object_foreach(want, id, sig)
    {
        json_t *have = json_object_get(got, id);
        ck_assert_msg(have != NULL, "event %s missing from Kafka", id);
        if (want_none)
            ck_assert_msg(json_is_null(have), "%s has a signature (%s) under off", id,
                          json_string_value(have));
        else
            ck_assert_msg(json_equal(have, sig), "%s: signature %s, the frame was built %s", id,
                          json_is_string(have) ? json_string_value(have) : "(none)",
                          json_string_value(sig));
    }
    ck_assert_uint_eq(json_object_size(got), json_object_size(want));
}

/* A vemd under terminals.signatures = policy with a Kafka sink of its own topics (the broker
 * lives for the whole harness), and s_send_frames' frames, VINs from prefix, stored. */
typedef struct {
    vem_it_run_t r;
    char terminals[64], opts[400], topic[96], events[400]; /* topic: the samples topic */
    s_fleet_t fl;
} s_kafka_run_t;

static void s_kafka_run(s_kafka_run_t *k, const char *policy, const char *prefix)
{
    snprintf(k->terminals, sizeof k->terminals, "signatures = \"%s\";", policy);
    snprintf(k->topic, sizeof k->topic, "sm2%s%ld.samples", policy, (long)getpid());
    snprintf(k->opts, sizeof k->opts,
             "topic_samples = \"%s\"; topic_terminal = \"sm2%s%ld.terminal\"; "
             "topic_violations = \"\"; topic_rsd = \"\"; linger_ms = 5;",
             k->topic, policy, (long)getpid());
    k->r.terminals_opts = k->terminals;
    k->r.kafka_opts = k->opts;
    vem_it_start(&k->r, "it_sm2");
    k->fl.want = json_object();
    s_send_frames(&k->r, &k->fl, prefix);
    close(k->fl.fd);
    json_decref(vem_it_settled(&k->r));
    snprintf(k->events, sizeof k->events, "%s/events.jsonl", k->r.dir);
}

START_TEST(kafka_flag)
{
    vem_it_pg_up();
    s_kafka_run_t k = {0};
    s_kafka_run(&k, "flag", "LSM2K");
    long copies;
    json_t *got = s_signatures(k.topic, &k.fl, k.events, &copies);
    s_check_signatures(got, k.fl.want, false);
    ck_assert_int_eq(copies, (long)json_object_size(k.fl.want)); /* no replay yet: one copy each */
    vem_it_validate_events(k.events);
    json_decref(got);

    /* A restart without the Kafka cursor replays the whole spool: the activation puts the key
     * back (it is in terminal_keys too) before the frames are checked again, so every event
     * comes a second time saying the same. */
    vem_it_halt(&k.r);
    char cursor[400];
    snprintf(cursor, sizeof cursor, "%s/spool/cursor.kafka", k.r.dir);
    ck_assert_msg(unlink(cursor) == 0, "%s: %s", cursor, strerror(errno));
    vem_it_launch(&k.r);
    json_decref(vem_it_settled(&k.r));
    got = s_signatures(k.topic, &k.fl, k.events, &copies);
    s_check_signatures(got, k.fl.want, false);
    ck_assert_int_eq(copies, 2 * (long)json_object_size(k.fl.want));
    vem_it_validate_events(k.events);
    fprintf(stderr, "it_sm2_e2e kafka_flag: %zu events, each twice, signatures as built\n",
            json_object_size(k.fl.want));
    json_decref(got);
    json_decref(k.fl.want);
    vem_it_stop(&k.r);
}
END_TEST

START_TEST(kafka_enforce)
{
    vem_it_pg_up();
    s_kafka_run_t k = {0};
    s_kafka_run(&k, "enforce", "LSM2N");
    /* the quarantined frames make no events */
    json_t *verified = json_object();
    const char *id;
    json_t *sig;
    json_object_foreach(k.fl.want, id, sig)
    {
        if (strcmp(json_string_value(sig), "verified") == 0)
            json_object_set(verified, id, sig);
    }
    long copies;
    json_t *got = s_signatures(k.topic, &k.fl, k.events, &copies);
    s_check_signatures(got, verified, false);
    vem_it_validate_events(k.events);
    json_decref(got);
    json_decref(verified);
    json_decref(k.fl.want);
    vem_it_stop(&k.r);
}
END_TEST

START_TEST(kafka_off)
{
    vem_it_pg_up();
    s_kafka_run_t k = {0};
    s_kafka_run(&k, "off", "LSM2O");
    long copies;
    json_t *got = s_signatures(k.topic, &k.fl, k.events, &copies);
    s_check_signatures(got, k.fl.want, true);
    vem_it_validate_events(k.events);
    json_decref(got);
    json_decref(k.fl.want);
    vem_it_stop(&k.r);
}
END_TEST

/* Rows of terminal_keys vemd's registry leaves out: other suites write activations straight
 * through the sink (it_pgwrite files the shared vector's, whose key lies on no curve). */
static long long s_unloadable_keys(const vem_it_run_t *r, PGconn *conn)
{
    return s_count(conn, "SELECT count(*) FROM terminal_keys", NULL) -
           (long long)vem_it_metric_now(r, "vem_terminal_keys");
}

/* SIGHUP, then waits until vemd's key registry holds as many VINs as terminal_keys, less the
 * unloadable rows others left. */
static void s_reload_keys(const vem_it_run_t *r, PGconn *conn, long long unloadable)
{
    ck_assert_int_eq(kill(r->vemd, SIGHUP), 0);
    long long want = s_count(conn, "SELECT count(*) FROM terminal_keys", NULL) - unloadable,
              got = -1;
    for (int i = 0; i < 100 && (got = (long long)vem_it_metric_now(r, "vem_terminal_keys")) != want;
         i++)
        vem_it_sleep(0.1);
    ck_assert_int_eq(got, want);
}

/* Files key A (s_pub_a) in terminal_keys for a new VIN (prefix, n) and chip (number chip_n),
 * as an activation would; the VIN goes to vin. */
static void s_insert_key_a(PGconn *conn, char *vin, size_t cap, const char *prefix, int n,
                           int chip_n)
{
    char chip[32];
    s_unique(vin, cap, prefix, n, 17);
    s_unique(chip, sizeof chip, "CHIP", chip_n, 16);
    s_key_row(conn, vin, chip, s_pub_a, "now"); /* PostgreSQL's input for the current time */
}

START_TEST(reload)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    vem_it_run_t r = {.terminals_opts = "signatures = \"enforce\";"};
    vem_it_start(&r, "it_sm2");
    long long unloadable = s_unloadable_keys(&r, conn);
    char vin[32];
    s_insert_key_a(conn, vin, sizeof vin, "LSM2R", 1, 9);
    s_reload_keys(&r, conn, unloadable);

    int fd = s_connect(r.port);
    s_send_signed(fd, vin, 1);
    ck_assert_msg(s_stored(conn, vin, 1), "a frame signed by the filed key not stored");

    const char *params[] = {vin};
    PGresult *res = PQexecParams(conn, "DELETE FROM terminal_keys WHERE vin = $1", 1, NULL, params,
                                 NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    s_reload_keys(&r, conn, unloadable);
    s_send_signed(fd, vin, 2);
    ck_assert_int_eq(s_count_until(conn,
                                   "SELECT count(*) FROM quarantine WHERE vin = $1 AND "
                                   "error_class = 'no_key'",
                                   vin, 1),
                     1);
    json_decref(vem_it_sink_settled(&r));
    ck_assert_int_eq(s_samples(conn, vin, 2), 0);
    close(fd);
    vem_it_stop(&r);
    PQfinish(conn);
}
END_TEST

START_TEST(keys_late)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    char vin[32];
    s_insert_key_a(conn, vin, sizeof vin, "LSM2L", 5, 13);
    PQfinish(conn);

    vem_it_pgctl("stop");
    vem_it_run_t r = {.terminals_opts = "signatures = \"enforce\";"};
    vem_it_start(&r, "it_sm2");
    ck_assert_msg(vem_it_log_until(&r, "loading again", 10), "no second load after a failed one");
    vem_it_pgctl("start");
    /* the keys come without a SIGHUP (the retry is 10 s after the failure) */
    for (int i = 0; i < 300 && vem_it_metric_now(&r, "vem_terminal_keys") < 1; i++)
        vem_it_sleep(0.1);
    ck_assert_double_ge(vem_it_metric_now(&r, "vem_terminal_keys"), 1);

    conn = vem_it_pg();
    int fd = s_connect(r.port);
    s_send_signed(fd, vin, 1);
    ck_assert_msg(s_stored(conn, vin, 1), "a frame signed by the filed key not stored");
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM quarantine WHERE vin = $1", vin), 0);
    close(fd);
    vem_it_stop(&r);
    PQfinish(conn);
}
END_TEST

/* Starts vemd and waits until its first load has written the registry cache. */
static void s_start_until_cached(vem_it_run_t *r)
{
    vem_it_start(r, "it_sm2");
    char cache[400];
    snprintf(cache, sizeof cache, "%s/spool/registry.cache", r->dir);
    for (int i = 0; i < 300 && access(cache, F_OK) != 0; i++)
        vem_it_sleep(0.1);
    ck_assert_msg(access(cache, F_OK) == 0, "no registry cache after the first load");
}

/* Before: a vemd restarted while PostgreSQL was down replayed the spool before it could load
 * the keys, so a frame that had verified was quarantined as no_key and never stored. */
START_TEST(restart_pg_down)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    char vin[32];
    s_insert_key_a(conn, vin, sizeof vin, "LSM2D", 6, 17);
    PQfinish(conn);
    vem_it_run_t r = {.terminals_opts = "signatures = \"enforce\";"};
    s_start_until_cached(&r);

    /* a signed frame while PostgreSQL is down: spooled and answered, not stored yet */
    vem_it_pgctl("stop");
    int fd = s_connect(r.port);
    s_send_signed(fd, vin, 1);
    close(fd);

    /* killed and started again with PostgreSQL still down: the replay checks the frame with
     * the cached key */
    ck_assert_int_eq(kill(r.vemd, SIGKILL), 0);
    ck_assert_int_eq(vem_it_wait(r.vemd, 10), 128 + SIGKILL);
    vem_it_launch(&r);
    bool cached = vem_it_metric_now(&r, "vem_registry_cached") == 1;
    vem_it_sleep(1);
    vem_it_pgctl("start");
    conn = vem_it_pg();
    ck_assert_msg(s_stored(conn, vin, 1), "the replayed signed frame was not stored");
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM quarantine WHERE vin = $1", vin), 0);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_signature_checks_total{result=\"no_key\"}"), 0);
    ck_assert_msg(cached && vem_it_log_has(&r, "from the cache of"), "the cache was not used");
    /* PostgreSQL's registry replaces the cache's once it loads */
    for (int i = 0; i < 300 && vem_it_metric_now(&r, "vem_registry_cached") != 0; i++)
        vem_it_sleep(0.1);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_registry_cached"), 0);
    vem_it_stop(&r);
    PQfinish(conn);
}
END_TEST

/* Before: the load that replaced the cache's registry set vem_registry_cached to 0 even when it
 * failed on terminal_keys, while the keys in use were still the cache's. */
START_TEST(cached_keys_until_theirs_load)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    char vin[32];
    s_insert_key_a(conn, vin, sizeof vin, "LSM2K", 6, 17);
    vem_it_run_t r = {.terminals_opts = "signatures = \"enforce\";"};
    s_start_until_cached(&r);

    /* the keys' table out of reach, then a start from the cache with PostgreSQL down */
    vem_it_sql(conn, "ALTER TABLE terminal_keys RENAME TO terminal_keys_away");
    PQfinish(conn);
    vem_it_pgctl("stop");
    ck_assert_int_eq(kill(r.vemd, SIGKILL), 0);
    ck_assert_int_eq(vem_it_wait(r.vemd, 10), 128 + SIGKILL);
    char first[600];
    snprintf(first, sizeof first, "%s.first", r.log); /* the log below: the second run's alone */
    ck_assert_int_eq(rename(r.log, first), 0);
    vem_it_launch(&r);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_registry_cached"), 1);
    vem_it_pgctl("start");
    /* PostgreSQL's vehicles come, its keys do not: the keys in use are still the cache's */
    bool came = vem_it_log_until(&r, "main: vehicle registry: ", 60);
    /* (not the loads that failed while PostgreSQL was down: those could not connect) */
    bool keys_failed = vem_it_log_has(&r, "relation \"terminal_keys\" does not exist");
    double mid = vem_it_metric_now(&r, "vem_registry_cached");

    /* the table back (before any assertion: the other tests need it): the next load brings
     * the keys, and the gauge goes to 0 */
    conn = vem_it_pg();
    vem_it_sql(conn, "ALTER TABLE terminal_keys_away RENAME TO terminal_keys");
    ck_assert_msg(came, "PostgreSQL's registry never came");
    ck_assert_msg(keys_failed, "no load of the keys failed on the renamed table");
    ck_assert_double_eq(mid, 1);
    for (int i = 0; i < 900 && vem_it_metric_now(&r, "vem_registry_cached") != 0; i++)
        vem_it_sleep(0.1);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_registry_cached"), 0);
    vem_it_stop(&r);
    PQfinish(conn);
}
END_TEST

/* vemd started with PostgreSQL up, after an operator replaced a chip while it was down (the
 * VIN's row now holds key B, the cache key A), with terminal_keys slow to read (locked for 2 s):
 * the start waits for PostgreSQL's keys as it did before there was a cache, so a frame signed
 * by the new chip right after the start is stored, not quarantined as bad_signature by the
 * cache's stale key. */
START_TEST(fresh_keys_over_the_cache)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    char vin[32], chip[32], hex[129];
    s_insert_key_a(conn, vin, sizeof vin, "LSM2F", 7, 18);
    vem_it_run_t r = {.terminals_opts = "signatures = \"enforce\";"};
    s_start_until_cached(&r);
    ck_assert_int_eq(kill(r.vemd, SIGKILL), 0);
    ck_assert_int_eq(vem_it_wait(r.vemd, 10), 128 + SIGKILL);

    /* the chip replaced: the VIN's row deleted and filed again with key B */
    s_unique(chip, sizeof chip, "CHIP", 19, 16);
    for (int i = 0; i < 64; i++)
        snprintf(hex + 2 * i, 3, "%02x", s_pub_b[i]);
    const char *params[] = {vin, chip, hex};
    PGresult *res = PQexecParams(conn, "DELETE FROM terminal_keys WHERE vin = $1", 1, NULL, params,
                                 NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(conn));
    PQclear(res);
    res = PQexecParams(conn,
                       "INSERT INTO terminal_keys VALUES ($1, convert_to($2, 'SQL_ASCII'), "
                       "decode($3, 'hex'), now(), now())",
                       3, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(conn));
    PQclear(res);

    /* terminal_keys slow to read: locked for 2 s by the server itself */
    PGconn *locker = vem_it_pg();
    ck_assert_int_eq(PQsendQuery(locker, "BEGIN; LOCK TABLE terminal_keys IN ACCESS EXCLUSIVE "
                                         "MODE; SELECT pg_sleep(2); COMMIT"),
                     1);
    vem_it_sleep(0.3);
    vem_it_launch(&r);
    int fd = s_connect(r.port);
    s_send_signed_by(fd, vin, 1, "b");
    close(fd);
    ck_assert_msg(s_stored(conn, vin, 1), "the frame signed by the VIN's filed key was not stored");
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM quarantine WHERE vin = $1", vin), 0);
    while ((res = PQgetResult(locker)))
        PQclear(res);
    PQfinish(locker);
    vem_it_stop(&r);
    PQfinish(conn);
}
END_TEST

/* ---- one connection, one vehicle --------------------------------------------------------- */

START_TEST(binding)
{
    vem_it_pg_up();
    PGconn *conn = vem_it_pg();
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_sm2");
    char vin1[32], vin2[32], vin3[32];
    s_unique(vin1, sizeof vin1, "LSM2B", 1, 17);
    s_unique(vin2, sizeof vin2, "LSM2B", 2, 17);
    s_unique(vin3, sizeof vin3, "LSM2B", 3, 17);
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    ck_assert_ptr_nonnull(f);
    uint8_t frame[1024], reply[64];
    size_t len;

    /* a login, then a real-time frame of another VIN */
    int fd = s_connect(r.port);
    vem_test_vector_frame("login", f);
    memcpy(f->vin, vin1, 17);
    f->time = time(NULL);
    ck_assert_int_eq(vem_hj1239_encode(f, frame, sizeof frame, &len), 0);
    s_send(fd, frame, len);
    ck_assert_uint_eq(s_read(fd, reply, 31), 31);
    vem_test_vector_frame("realtime_gb17691", f);
    memcpy(f->vin, vin2, 17);
    f->time = time(NULL);
    for (uint16_t b = 0; b < f->nblocks; b++)
        f->blocks[b].time = f->time;
    ck_assert_int_eq(vem_hj1239_encode(f, frame, sizeof frame, &len), 0);
    s_send(fd, frame, len);
    ck_assert_msg(s_closed_by_peer(fd), "vemd kept a connection that switched VIN");
    close(fd);

    /* a login, then a second login switching VIN */
    fd = s_connect(r.port);
    vem_test_vector_frame("login", f);
    memcpy(f->vin, vin1, 17);
    f->time = time(NULL);
    f->seq += 10; /* not the first connection's login again */
    ck_assert_int_eq(vem_hj1239_encode(f, frame, sizeof frame, &len), 0);
    s_send(fd, frame, len);
    ck_assert_uint_eq(s_read(fd, reply, 31), 31);
    memcpy(f->vin, vin3, 17);
    f->seq++;
    ck_assert_int_eq(vem_hj1239_encode(f, frame, sizeof frame, &len), 0);
    s_send(fd, frame, len);
    ck_assert_msg(s_closed_by_peer(fd), "vemd kept a connection whose second login switched VIN");
    close(fd);

    const char *q = "SELECT count(*) FROM quarantine WHERE error_class = 'vin_switch' AND "
                    "position(convert_to($1, 'SQL_ASCII') in raw) = 4";
    ck_assert_int_eq(s_count_until(conn, q, vin2, 1), 1);
    ck_assert_int_eq(s_count_until(conn, q, vin3, 1), 1);
    json_decref(vem_it_sink_settled(&r));
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM obd_samples WHERE vin = $1", vin2), 0);
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM terminal_events WHERE vin = $1", vin3), 0);
    ck_assert_int_eq(s_count(conn, "SELECT count(*) FROM terminal_events WHERE vin = $1", vin1), 2);
    ck_assert_double_eq(
        vem_it_metric_now(&r, "vem_connections_closed_total{reason=\"vin_switch\"}"), 2);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_errors_total{class=\"vin_switch\"}"), 2);
    free(f);
    vem_it_stop(&r);
    PQfinish(conn);
}
END_TEST

Suite *vem_suite_sm2_e2e(void);
Suite *vem_suite_sm2_e2e(void)
{
    Suite *s = suite_create("sm2_e2e");
    TCase *tc = tcase_create("daemon");
    tcase_add_unchecked_fixture(tc, s_setup, NULL);
    tcase_add_checked_fixture(tc, s_fresh_keys, NULL);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, activation);
    tcase_add_test(tc, reused_key_rows);
    tcase_add_test(tc, activation_limit);
    tcase_add_test(tc, activation_limit_per_address);
    tcase_add_test(tc, enforce);
    tcase_add_test(tc, flag);
    tcase_add_test(tc, kafka_flag);
    tcase_add_test(tc, kafka_enforce);
    tcase_add_test(tc, kafka_off);
    tcase_add_test(tc, reload);
    tcase_add_test(tc, keys_late);
    tcase_add_test(tc, restart_pg_down);
    tcase_add_test(tc, cached_keys_until_theirs_load);
    tcase_add_test(tc, fresh_keys_over_the_cache);
    tcase_add_test(tc, binding);
    suite_add_tcase(s, tc);
    return s;
}
