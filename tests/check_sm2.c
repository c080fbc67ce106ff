/* check_sm2 — SM2 verification against signatures the openssl command line made (sm2cli.h)
 * with keys it generated in this test: a good signature verifies; a flipped message byte, a
 * flipped signature byte, another key or another distinguishing id do not; malformed R/S and
 * points off the curve are refused. */
#include "sm2.h"
#include "sm2cli.h"
#include "testutil.h"

#include <check.h>
#include <string.h>

static char s_dir[256];
static uint8_t s_pub_a[64], s_pub_b[64];

static void s_setup(void)
{
    vem_test_mkdtemp("sm2", s_dir, sizeof s_dir);
    vem_sm2cli_keygen(s_dir, "a", s_pub_a);
    vem_sm2cli_keygen(s_dir, "b", s_pub_b);
}

/* A data unit as a terminal would sign it: arbitrary bytes, zeros and 0xFF included. */
static void s_message(uint8_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        m[i] = (uint8_t)(i * 37 + 11);
}

START_TEST(good_signature_verifies)
{
    uint8_t msg[300], r[32], s[32];
    s_message(msg, sizeof msg);
    vem_sm2cli_sign(s_dir, "a", VEM_SM2_DEFAULT_ID, msg, sizeof msg, r, s);
    char err[200];
    vem_sm2_key_t *key = vem_sm2_key_new(s_pub_a, err, sizeof err);
    ck_assert_msg(key != NULL, "%s", err);
    ck_assert_int_eq(vem_sm2_verify(key, r, 32, s, 32, msg, sizeof msg), VEM_SM2_OK);
    /* 33 bytes with a leading zero is the same integer */
    uint8_t r33[33] = {0};
    memcpy(r33 + 1, r, 32);
    ck_assert_int_eq(vem_sm2_verify(key, r33, 33, s, 32, msg, sizeof msg), VEM_SM2_OK);
    /* a second reference works the same and outlives the first */
    vem_sm2_key_t *ref = vem_sm2_key_ref(key);
    vem_sm2_key_destroy(&key);
    ck_assert_ptr_null(key);
    ck_assert_int_eq(vem_sm2_verify(ref, r, 32, s, 32, msg, sizeof msg), VEM_SM2_OK);
    vem_sm2_key_destroy(&ref);
    vem_sm2_key_destroy(&ref); /* NULL is fine */
}
END_TEST

START_TEST(tampered_message_or_signature_fails)
{
    uint8_t msg[120], r[32], s[32];
    s_message(msg, sizeof msg);
    vem_sm2cli_sign(s_dir, "a", VEM_SM2_DEFAULT_ID, msg, sizeof msg, r, s);
    vem_sm2_key_t *key = vem_sm2_key_new(s_pub_a, NULL, 0);
    ck_assert_ptr_nonnull(key);
    for (size_t i = 0; i < sizeof msg; i += 17) {
        msg[i] ^= 0x01;
        ck_assert_int_eq(vem_sm2_verify(key, r, 32, s, 32, msg, sizeof msg), VEM_SM2_MISMATCH);
        msg[i] ^= 0x01;
    }
    ck_assert_int_eq(vem_sm2_verify(key, r, 32, s, 32, msg, sizeof msg - 1), VEM_SM2_MISMATCH);
    r[31] ^= 0x80;
    ck_assert_int_eq(vem_sm2_verify(key, r, 32, s, 32, msg, sizeof msg), VEM_SM2_MISMATCH);
    r[31] ^= 0x80;
    s[0] ^= 0x01;
    ck_assert_int_eq(vem_sm2_verify(key, r, 32, s, 32, msg, sizeof msg), VEM_SM2_MISMATCH);
    s[0] ^= 0x01;
    /* R and S swapped */
    ck_assert_int_eq(vem_sm2_verify(key, s, 32, r, 32, msg, sizeof msg), VEM_SM2_MISMATCH);
    ck_assert_int_eq(vem_sm2_verify(key, r, 32, s, 32, msg, sizeof msg), VEM_SM2_OK);
    vem_sm2_key_destroy(&key);
}
END_TEST

START_TEST(other_key_or_id_fails)
{
    uint8_t msg[64], r[32], s[32];
    s_message(msg, sizeof msg);
    vem_sm2cli_sign(s_dir, "b", VEM_SM2_DEFAULT_ID, msg, sizeof msg, r, s);
    vem_sm2_key_t *a = vem_sm2_key_new(s_pub_a, NULL, 0);
    vem_sm2_key_t *b = vem_sm2_key_new(s_pub_b, NULL, 0);
    ck_assert_int_eq(vem_sm2_verify(a, r, 32, s, 32, msg, sizeof msg), VEM_SM2_MISMATCH);
    ck_assert_int_eq(vem_sm2_verify(b, r, 32, s, 32, msg, sizeof msg), VEM_SM2_OK);
    /* the same key with another distinguishing id: Z_A differs, so must the verdict */
    vem_sm2cli_sign(s_dir, "b", "ALICE123@YAHOO.COM", msg, sizeof msg, r, s);
    ck_assert_int_eq(vem_sm2_verify(b, r, 32, s, 32, msg, sizeof msg), VEM_SM2_MISMATCH);
    vem_sm2_key_destroy(&a);
    vem_sm2_key_destroy(&b);
}
END_TEST

START_TEST(malformed_parts_refused)
{
    uint8_t msg[8] = {1, 2, 3, 4, 5, 6, 7, 8}, r[32], s[32];
    vem_sm2cli_sign(s_dir, "a", VEM_SM2_DEFAULT_ID, msg, sizeof msg, r, s);
    vem_sm2_key_t *key = vem_sm2_key_new(s_pub_a, NULL, 0);
    uint8_t zero[32] = {0}, long33[33], long34[34] = {0};
    memset(long33, 0x11, sizeof long33); /* 33 bytes without the leading zero: over 256 bits */
    memcpy(long34 + 2, r, 32);
    ck_assert_int_eq(vem_sm2_verify(key, r, 0, s, 32, msg, 8), VEM_SM2_BAD_ENCODING);
    ck_assert_int_eq(vem_sm2_verify(key, r, 32, s, 0, msg, 8), VEM_SM2_BAD_ENCODING);
    ck_assert_int_eq(vem_sm2_verify(key, zero, 32, s, 32, msg, 8), VEM_SM2_BAD_ENCODING);
    ck_assert_int_eq(vem_sm2_verify(key, long33, 33, s, 32, msg, 8), VEM_SM2_BAD_ENCODING);
    ck_assert_int_eq(vem_sm2_verify(key, long34, 34, s, 32, msg, 8), VEM_SM2_BAD_ENCODING);
    ck_assert_str_eq(vem_sm2_status_name(VEM_SM2_BAD_ENCODING), "bad_encoding");
    ck_assert_str_eq(vem_sm2_status_name(VEM_SM2_MISMATCH), "mismatch");
    vem_sm2_key_destroy(&key);
}
END_TEST

START_TEST(points_off_the_curve_refused)
{
    char err[200] = "";
    uint8_t xy[64];
    memcpy(xy, s_pub_a, 64);
    xy[63] ^= 0x01; /* Y no longer matches X */
    ck_assert_ptr_null(vem_sm2_key_new(xy, err, sizeof err));
    ck_assert_msg(strstr(err, "SM2") != NULL, "%s", err);
    uint8_t zero[64] = {0};
    ck_assert_ptr_null(vem_sm2_key_new(zero, NULL, 0));
}
END_TEST

Suite *vem_suite_sm2(void);
Suite *vem_suite_sm2(void)
{
    Suite *s = suite_create("sm2");
    TCase *tc = tcase_create("verify");
    tcase_add_unchecked_fixture(tc, s_setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, good_signature_verifies);
    tcase_add_test(tc, tampered_message_or_signature_fails);
    tcase_add_test(tc, other_key_or_id_fails);
    tcase_add_test(tc, malformed_parts_refused);
    tcase_add_test(tc, points_off_the_curve_refused);
    suite_add_tcase(s, tc);
    return s;
}
