/* check_curve_keys — the CURVE key files and endpoint checks of daemon/curve.c (the handshakes
 * themselves are exercised against the real daemon in it_curve).
 *
 * Key pairs for the fixtures come from libzmq's zmq_curve_keypair; that a secret key belongs
 * to a public key is checked with zmq_curve_public, the library's own derivation. */
#include "curve.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static void s_write(const char *dir, const char *name, const char *text)
{
    char path[600];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert(n > 0 && (size_t)n < sizeof path);
    vem_test_spit(path, text);
}

START_TEST(generated_pair_reads_back)
{
    char dir[256], path[600], pub[VEM_CURVE_KEY_TEXT], sec[VEM_CURVE_KEY_TEXT], err[600];
    vem_test_mkdtemp("check_curve", dir, sizeof dir);
    ck_assert_int_eq(vem_curve_generate(dir, "station-1", err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/station-1.key", dir);
    ck_assert_int_eq(vem_curve_read_key(path, pub, sec, err, sizeof err), 0);
    char derived[VEM_CURVE_KEY_TEXT];
    ck_assert_int_eq(zmq_curve_public(derived, sec), 0);
    ck_assert_str_eq(derived, pub);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600); /* the secret is the owner's alone */
    char pub2[VEM_CURVE_KEY_TEXT];
    snprintf(path, sizeof path, "%s/station-1.pub", dir);
    ck_assert_int_eq(vem_curve_read_key(path, pub2, NULL, err, sizeof err), 0);
    ck_assert_str_eq(pub2, pub);
    /* a .pub file has no secret to give */
    ck_assert_int_eq(vem_curve_read_key(path, pub2, sec, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "secret_key"));
    /* never overwritten */
    ck_assert_int_eq(vem_curve_generate(dir, "station-1", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "File exists"));
    ck_assert_int_eq(vem_curve_generate(dir, "../escape", err, sizeof err), -1);
}
END_TEST

START_TEST(bad_key_files_refused)
{
    char dir[256], path[600], pub[VEM_CURVE_KEY_TEXT], sec[VEM_CURVE_KEY_TEXT], err[600];
    char p1[41], s1[41], p2[41], s2[41], text[300];
    vem_test_mkdtemp("check_curve", dir, sizeof dir);
    ck_assert_int_eq(zmq_curve_keypair(p1, s1), 0);
    ck_assert_int_eq(zmq_curve_keypair(p2, s2), 0);
    /* a secret of another pair */
    snprintf(text, sizeof text, "public_key = \"%s\";\nsecret_key = \"%s\";\n", p1, s2);
    s_write(dir, "mixed.key", text);
    snprintf(path, sizeof path, "%s/mixed.key", dir);
    ck_assert_int_eq(vem_curve_read_key(path, pub, sec, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "does not belong"));
    /* 39 characters; a character outside Z85 */
    snprintf(text, sizeof text, "public_key = \"%.39s\";\n", p1);
    s_write(dir, "short.pub", text);
    snprintf(path, sizeof path, "%s/short.pub", dir);
    ck_assert_int_eq(vem_curve_read_key(path, pub, NULL, err, sizeof err), -1);
    snprintf(text, sizeof text, "public_key = \"%.39s~\";\n", p1);
    s_write(dir, "tilde.pub", text);
    snprintf(path, sizeof path, "%s/tilde.pub", dir);
    ck_assert_int_eq(vem_curve_read_key(path, pub, NULL, err, sizeof err), -1);
    /* not libconfig text: the line is named */
    s_write(dir, "garbage.pub", "public_key = \n");
    snprintf(path, sizeof path, "%s/garbage.pub", dir);
    ck_assert_int_eq(vem_curve_read_key(path, pub, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "garbage.pub:") != NULL, "%s", err);
    snprintf(path, sizeof path, "%s/absent.pub", dir);
    ck_assert_int_eq(vem_curve_read_key(path, pub, NULL, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "cannot read"));
}
END_TEST

START_TEST(endpoint_needs_its_key_and_clients)
{
    char dir[256], err[600], path[600], clients[600];
    vem_test_mkdtemp("check_curve", dir, sizeof dir);
    ck_assert_int_eq(vem_curve_generate(dir, "server", err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/server.key", dir);
    snprintf(clients, sizeof clients, "%s/clients", dir);
    vem_metrics_t *m = vem_metrics_new();
    vem_curve_t *c = vem_curve_new(NULL, m);
    /* a server key file everyone may read is refused */
    ck_assert_int_eq(chmod(path, 0644), 0);
    ck_assert_int_eq(vem_curve_add(c, "stations", path, dir, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "readable by every user"));
    ck_assert_int_eq(chmod(path, 0640), 0);
    /* no clients directory yet */
    ck_assert_int_eq(vem_curve_add(c, "stations", path, clients, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "cannot read"));
    ck_assert_int_eq(mkdir(clients, 0700), 0);
    /* a .pub without a key refuses the whole directory; other names are ignored */
    s_write(clients, "broken.pub", "# nothing\n");
    s_write(clients, "README", "not a key\n");
    ck_assert_int_eq(vem_curve_add(c, "stations", path, clients, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "broken.pub"));
    char broken[700];
    snprintf(broken, sizeof broken, "%s/broken.pub", clients);
    ck_assert_int_eq(unlink(broken), 0);
    ck_assert_int_eq(vem_curve_add(c, "stations", path, clients, err, sizeof err), 0);
    ck_assert_ptr_nonnull(vem_curve_endpoint(c, "stations"));
    ck_assert_ptr_null(vem_curve_endpoint(c, "gateways"));
    ck_assert_int_eq(vem_curve_reload(c), 0);
    vem_curve_destroy(&c);
    ck_assert_ptr_null(c);
    vem_metrics_destroy(&m);
}
END_TEST

/* Station ids as vem_curve_admits_msg gives them: whole ids only, each ended by a newline. */
START_TEST(station_ids_match_whole)
{
    ck_assert(vem_curve_station_listed("RSD-1\nRSD-2\n", "RSD-2"));
    ck_assert(vem_curve_station_listed("RSD-1\nRSD-2\n", "RSD-1"));
    ck_assert(!vem_curve_station_listed("RSD-1\nRSD-2\n", "RSD-"));
    ck_assert(!vem_curve_station_listed("RSD-1\nRSD-2\n", "RSD-12"));
    ck_assert(!vem_curve_station_listed("RSD-12\n", "RSD-1"));
    ck_assert(!vem_curve_station_listed("", "RSD-1"));
    ck_assert(!vem_curve_station_listed("", ""));
}
END_TEST

START_TEST(local_endpoints)
{
    static const struct {
        const char *endpoint;
        bool local;
    } cases[] = {
        {"tcp://127.0.0.1:7613", true},
        {"tcp://127.1.2.3:7613", true},
        {"tcp://localhost:7613", true},
        {"tcp://[::1]:7613", true},
        {"ipc:///run/vemd/s.sock", true},
        {"inproc://x", true},
        {"tcp://0.0.0.0:7613", false},
        {"tcp://*:7613", false},
        {"tcp://10.0.0.5:7613", false},
        {"tcp://[::]:7613", false},
        {"tcp://localhost.example.org:1", false},
        {"tcp://1270.0.0.1:1", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(vem_curve_is_local(cases[i].endpoint) == cases[i].local, "%s",
                      cases[i].endpoint);
}
END_TEST

Suite *vem_suite_curve_keys(void);
Suite *vem_suite_curve_keys(void)
{
    Suite *s = suite_create("curve_keys");
    TCase *tc = tcase_create("keys");
    tcase_add_test(tc, generated_pair_reads_back);
    tcase_add_test(tc, bad_key_files_refused);
    tcase_add_test(tc, endpoint_needs_its_key_and_clients);
    tcase_add_test(tc, local_endpoints);
    tcase_add_test(tc, station_ids_match_whole);
    suite_add_tcase(s, tc);
    return s;
}
