/* check_keys — the terminal key registry's rules (keys.h) on activation frames built here and
 * signed by the openssl command line (sm2cli.h): a chip filed by one VIN and refused to
 * another, a VIN with one chip, VIN mismatches and bad signatures refused, replays idempotent,
 * one public key filed for one chip only (in activations, and in rows a seed takes: the first
 * holder stays), the 0x08 codes of protocol/hj1239.md, and the bytes a signature covers.
 * Loading from PostgreSQL is covered by the sm2_e2e integration suite. */
#include "hj1239.h"
#include "keys.h"
#include "sm2.h"
#include "sm2cli.h"
#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char s_dir[256];
static uint8_t s_pub_a[64], s_pub_b[64], s_pub_c[64];

static void s_setup(void)
{
    vem_test_mkdtemp("keys", s_dir, sizeof s_dir);
    vem_sm2cli_keygen(s_dir, "a", s_pub_a);
    vem_sm2cli_keygen(s_dir, "b", s_pub_b);
    vem_sm2cli_keygen(s_dir, "c", s_pub_c);
}

/* The activation test vector with these fields, signed by signer over data-unit bytes 0..102
 * (time, chip id, key, VIN); decoded back into *f, its bytes in out. */
static size_t s_activation(const char *vin, const char *act_vin, const char *chip,
                           const uint8_t pub[64], const char *signer, vem_hj1239_frame_t *f,
                           uint8_t *out, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/hj1239/vectors.jsonl", vem_test_vectors_dir());
    FILE *in = fopen(path, "r");
    ck_assert_ptr_nonnull(in);
    json_error_t err;
    json_t *v;
    long len = -1;
    while (len < 0 && (v = json_loadf(in, JSON_DISABLE_EOF_CHECK, &err))) {
        if (strcmp(json_string_value(json_object_get(v, "name")), "activation") == 0)
            len = vem_test_unhex(json_string_value(json_object_get(v, "hex")), out, cap);
        json_decref(v);
    }
    fclose(in);
    ck_assert_int_gt(len, 0);
    ck_assert_int_eq(vem_hj1239_decode(out, (size_t)len, 0, f, NULL), VEM_HJ1239_OK);
    memcpy(f->vin, vin, 17);
    memcpy(f->act_vin, act_vin, 17);
    memcpy(f->chip_id, chip, 16);
    memcpy(f->pubkey, pub, 64);
    f->sig.rlen = f->sig.slen = 32;
    size_t n = 0;
    ck_assert_int_eq(vem_hj1239_encode(f, out, cap, &n), 0);
    vem_sm2cli_sign(s_dir, signer, VEM_SM2_DEFAULT_ID, out + 24, 103, f->sig.r, f->sig.s);
    ck_assert_int_eq(vem_hj1239_encode(f, out, cap, &n), 0);
    ck_assert_int_eq(vem_hj1239_decode(out, n, 0, f, NULL), VEM_HJ1239_OK);
    return n;
}

#define S_VIN1  "LKEYS000000000001"
#define S_VIN2  "LKEYS000000000002"
#define S_VIN3  "LKEYS000000000003"
#define S_CHIP1 "CHIP000000000001"
#define S_CHIP2 "CHIP000000000002"
#define S_CHIP3 "CHIP000000000003"
/* S_CHIP1's 16 ASCII bytes in hex, as a detail names a chip */
#define S_CHIP1_HEX "43484950303030303030303030303031"

START_TEST(chip_and_vin_rules)
{
    vem_keys_t *keys = vem_keys_new();
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    uint8_t frame[512];
    char detail[160];
    size_t len = s_activation(S_VIN1, S_VIN1, S_CHIP1, s_pub_a, "a", f, frame, sizeof frame);
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, detail, sizeof detail), VEM_KEYS_OK);
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, detail, sizeof detail), VEM_KEYS_OK);
    ck_assert_uint_eq(vem_keys_size(keys), 1);
    ck_assert(vem_keys_restore(keys, f)); /* a replay of the accepted one */

    /* the key found for VIN 1 is key A: it verifies what A signed */
    uint8_t msg[40] = "a frame's data unit, as it would be", r[32], s[32];
    vem_sm2cli_sign(s_dir, "a", VEM_SM2_DEFAULT_ID, msg, sizeof msg, r, s);
    vem_sm2_key_t *k = vem_keys_find(keys, (const uint8_t *)S_VIN1);
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(vem_sm2_verify(k, r, 32, s, 32, msg, sizeof msg), VEM_SM2_OK);
    vem_sm2_key_destroy(&k);
    ck_assert_ptr_null(vem_keys_find(keys, (const uint8_t *)S_VIN2));

    /* chip 1 for VIN 2, validly signed by B's own key: the chip is taken */
    len = s_activation(S_VIN2, S_VIN2, S_CHIP1, s_pub_b, "b", f, frame, sizeof frame);
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, detail, sizeof detail),
                     VEM_KEYS_CHIP_TAKEN);
    ck_assert_msg(strstr(detail, S_VIN1) != NULL, "%s", detail);
    ck_assert(!vem_keys_restore(keys, f));
    ck_assert_ptr_null(vem_keys_find(keys, (const uint8_t *)S_VIN2));
    /* a second chip for VIN 1 */
    len = s_activation(S_VIN1, S_VIN1, S_CHIP2, s_pub_b, "b", f, frame, sizeof frame);
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, detail, sizeof detail),
                     VEM_KEYS_VIN_ERROR);
    /* the data unit's VIN is not the header's */
    len = s_activation(S_VIN2, S_VIN1, S_CHIP2, s_pub_b, "b", f, frame, sizeof frame);
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, NULL, 0), VEM_KEYS_VIN_ERROR);
    /* signed by another key than the one filed */
    len = s_activation(S_VIN2, S_VIN2, S_CHIP2, s_pub_b, "a", f, frame, sizeof frame);
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, detail, sizeof detail),
                     VEM_KEYS_BAD_SIGNATURE);
    /* one signed byte flipped (the decoded frame as a worker would see it) */
    len = s_activation(S_VIN2, S_VIN2, S_CHIP2, s_pub_b, "b", f, frame, sizeof frame);
    frame[24 + 30] ^= 0x40;
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, detail, sizeof detail),
                     VEM_KEYS_BAD_SIGNATURE);
    frame[24 + 30] ^= 0x40;
    /* a key that is no point of the curve */
    f->pubkey[63] ^= 0x01;
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, detail, sizeof detail),
                     VEM_KEYS_BAD_SIGNATURE);
    f->pubkey[63] ^= 0x01;
    ck_assert_uint_eq(vem_keys_size(keys), 1);
    /* and now correctly: VIN 2 with chip 2 */
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, detail, sizeof detail), VEM_KEYS_OK);
    ck_assert_uint_eq(vem_keys_size(keys), 2);
    free(f);
    vem_keys_destroy(&keys);
    ck_assert_ptr_null(keys);
    vem_keys_destroy(&keys);
}
END_TEST

/* Judging holds nothing (ingest judges before the spool append and files only what the spool
 * took): an activation judged but never filed, as one whose append was refused, leaves no key
 * for its VIN and does not stand in the way of the next; filing puts it in; one judged before
 * a conflicting activation was filed is refused when filed itself, and left out. */
START_TEST(judged_is_not_filed)
{
    vem_keys_t *keys = vem_keys_new();
    vem_hj1239_frame_t *f = malloc(sizeof *f), *g = malloc(sizeof *g);
    uint8_t frame[512], other[512];
    char detail[160];
    size_t len = s_activation(S_VIN1, S_VIN1, S_CHIP1, s_pub_a, "a", f, frame, sizeof frame);
    ck_assert_int_eq(vem_keys_judge(keys, f, frame, len, detail, sizeof detail), VEM_KEYS_OK);
    ck_assert_uint_eq(vem_keys_size(keys), 0);
    ck_assert_ptr_null(vem_keys_find(keys, (const uint8_t *)S_VIN1));
    /* the refused append's terminal tries again: judged alike, then filed */
    ck_assert_int_eq(vem_keys_judge(keys, f, frame, len, detail, sizeof detail), VEM_KEYS_OK);
    ck_assert_int_eq(vem_keys_file(keys, f, detail, sizeof detail), VEM_KEYS_OK);
    ck_assert_uint_eq(vem_keys_size(keys), 1);
    vem_sm2_key_t *k = vem_keys_find(keys, (const uint8_t *)S_VIN1);
    ck_assert_ptr_nonnull(k);
    vem_sm2_key_destroy(&k);
    ck_assert_int_eq(vem_keys_file(keys, f, detail, sizeof detail), VEM_KEYS_OK); /* again */
    ck_assert_uint_eq(vem_keys_size(keys), 1);

    /* VIN 2 with chip 2 and key B judged; before it is filed, another activation files chip 2
     * for VIN 2 with key C: the one judged earlier is refused when filed (a chip's key is
     * fixed), and VIN 2 keeps key C */
    size_t glen = s_activation(S_VIN2, S_VIN2, S_CHIP2, s_pub_b, "b", g, other, sizeof other);
    ck_assert_int_eq(vem_keys_judge(keys, g, other, glen, detail, sizeof detail), VEM_KEYS_OK);
    len = s_activation(S_VIN2, S_VIN2, S_CHIP2, s_pub_c, "c", f, frame, sizeof frame);
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, detail, sizeof detail), VEM_KEYS_OK);
    ck_assert_int_eq(vem_keys_file(keys, g, detail, sizeof detail), VEM_KEYS_CHIP_TAKEN);
    ck_assert_uint_eq(vem_keys_size(keys), 2);
    uint8_t msg[24] = "signed by C, not B", r[32], sig_s[32];
    vem_sm2cli_sign(s_dir, "c", VEM_SM2_DEFAULT_ID, msg, sizeof msg, r, sig_s);
    k = vem_keys_find(keys, (const uint8_t *)S_VIN2);
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(vem_sm2_verify(k, r, 32, sig_s, 32, msg, sizeof msg), VEM_SM2_OK);
    vem_sm2_key_destroy(&k);
    free(f);
    free(g);
    vem_keys_destroy(&keys);
}
END_TEST

/* True when the registry's key for vin verifies a message signed by key `signer`. */
static bool s_key_is(vem_keys_t *keys, const char *vin, const char *signer)
{
    uint8_t msg[32] = "a frame's data unit, say", r[32], s[32];
    vem_sm2cli_sign(s_dir, signer, VEM_SM2_DEFAULT_ID, msg, sizeof msg, r, s);
    vem_sm2_key_t *k = vem_keys_find(keys, (const uint8_t *)vin);
    bool ok = k && vem_sm2_verify(k, r, 32, s, 32, msg, sizeof msg) == VEM_SM2_OK;
    vem_sm2_key_destroy(&k);
    return ok;
}

/* Key A filed by chip 1 (VIN 1); chip 2 files key A for VIN 2, validly signed with it (as a
 * cloned chip, or one whose private key was read out, would): refused as key_reused, answered
 * as the chip already activated, the detail naming chip 1 and its VIN, and nothing filed, when
 * judged, filed or replayed. Chip 1 again with key A is still accepted. */
START_TEST(key_of_another_chip_refused)
{
    vem_keys_t *keys = vem_keys_new();
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    uint8_t frame[512];
    char detail[160];
    size_t len = s_activation(S_VIN1, S_VIN1, S_CHIP1, s_pub_a, "a", f, frame, sizeof frame);
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, detail, sizeof detail), VEM_KEYS_OK);

    len = s_activation(S_VIN2, S_VIN2, S_CHIP2, s_pub_a, "a", f, frame, sizeof frame);
    ck_assert_int_eq(vem_keys_judge(keys, f, frame, len, detail, sizeof detail),
                     VEM_KEYS_KEY_REUSED);
    ck_assert_msg(strstr(detail, S_CHIP1_HEX) != NULL && strstr(detail, S_VIN1) != NULL, "%s",
                  detail);
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, NULL, 0), VEM_KEYS_KEY_REUSED);
    ck_assert_int_eq(vem_keys_file(keys, f, NULL, 0), VEM_KEYS_KEY_REUSED);
    ck_assert(!vem_keys_restore(keys, f));
    ck_assert_ptr_null(vem_keys_find(keys, (const uint8_t *)S_VIN2));
    ck_assert_uint_eq(vem_keys_size(keys), 1);
    uint8_t status, info;
    vem_keys_reply_codes(VEM_KEYS_KEY_REUSED, &status, &info);
    ck_assert_uint_eq(status, 0x02);
    ck_assert_uint_eq(info, 0x01);

    /* the same chip, VIN and key again: accepted, still one entry */
    len = s_activation(S_VIN1, S_VIN1, S_CHIP1, s_pub_a, "a", f, frame, sizeof frame);
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, detail, sizeof detail), VEM_KEYS_OK);
    ck_assert_uint_eq(vem_keys_size(keys), 1);
    /* chip 2 with a key of its own is fine */
    len = s_activation(S_VIN2, S_VIN2, S_CHIP2, s_pub_b, "b", f, frame, sizeof frame);
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, detail, sizeof detail), VEM_KEYS_OK);
    ck_assert(s_key_is(keys, S_VIN2, "b"));

    /* judged while the key was free, filed after another chip took it: refused when filed */
    vem_hj1239_frame_t *g = malloc(sizeof *g);
    uint8_t other[512];
    size_t glen = s_activation(S_VIN3, S_VIN3, S_CHIP3, s_pub_c, "c", g, other, sizeof other);
    ck_assert_int_eq(vem_keys_judge(keys, g, other, glen, NULL, 0), VEM_KEYS_OK);
    len = s_activation("LKEYS000000000004", "LKEYS000000000004", "CHIP000000000004", s_pub_c, "c",
                       f, frame, sizeof frame);
    ck_assert_int_eq(vem_keys_activate(keys, f, frame, len, NULL, 0), VEM_KEYS_OK);
    ck_assert_int_eq(vem_keys_file(keys, g, detail, sizeof detail), VEM_KEYS_KEY_REUSED);
    ck_assert_ptr_null(vem_keys_find(keys, (const uint8_t *)S_VIN3));
    ck_assert_uint_eq(vem_keys_size(keys), 3);
    free(g);
    free(f);
    vem_keys_destroy(&keys);
}
END_TEST

static vem_keys_row_t s_row(const char *vin, const char *chip, const uint8_t pub[64])
{
    vem_keys_row_t row;
    memcpy(row.vin, vin, 17);
    memcpy(row.chip, chip, 16);
    memcpy(row.pub, pub, 64);
    return row;
}

/* Rows kept from an earlier run (the registry cache) that share a key: the first of them keeps
 * it, the later one is left out; the rows read back come in the order they were taken, so a
 * cache written from them seeds the same registry again. */
START_TEST(seed_leaves_out_reused_key)
{
    vem_keys_row_t rows[] = {s_row(S_VIN1, S_CHIP1, s_pub_a), s_row(S_VIN2, S_CHIP2, s_pub_a),
                             s_row(S_VIN3, S_CHIP3, s_pub_b)};
    vem_keys_t *keys = vem_keys_new();
    ck_assert_uint_eq(vem_keys_seed(keys, rows, 3), 2);
    ck_assert(s_key_is(keys, S_VIN1, "a"));
    ck_assert_ptr_null(vem_keys_find(keys, (const uint8_t *)S_VIN2));
    ck_assert(s_key_is(keys, S_VIN3, "b"));
    vem_keys_row_t *back = NULL;
    ck_assert_uint_eq(vem_keys_rows(keys, &back), 2);
    ck_assert_mem_eq(back[0].vin, S_VIN1, 17);
    ck_assert_mem_eq(back[1].vin, S_VIN3, 17);
    free(back);
    vem_keys_destroy(&keys);

    /* the other way round: VIN 2's row comes first and keeps key A */
    vem_keys_row_t swapped[] = {rows[1], rows[0], rows[2]};
    keys = vem_keys_new();
    ck_assert_uint_eq(vem_keys_seed(keys, swapped, 3), 2);
    ck_assert(s_key_is(keys, S_VIN2, "a"));
    ck_assert_ptr_null(vem_keys_find(keys, (const uint8_t *)S_VIN1));
    vem_keys_destroy(&keys);
}
END_TEST

/* Rows read back come in the order they were taken (not the hash tables'): in one order and
 * in its reverse. */
START_TEST(rows_in_table_order)
{
    vem_keys_row_t rows[] = {s_row(S_VIN3, S_CHIP3, s_pub_b), s_row(S_VIN1, S_CHIP1, s_pub_a),
                             s_row(S_VIN2, S_CHIP2, s_pub_c)};
    for (int pass = 0; pass < 2; pass++) {
        vem_keys_row_t in[3];
        for (int i = 0; i < 3; i++)
            in[i] = rows[pass ? 2 - i : i];
        vem_keys_t *keys = vem_keys_new();
        ck_assert_uint_eq(vem_keys_seed(keys, in, 3), 3);
        vem_keys_row_t *back = NULL;
        ck_assert_uint_eq(vem_keys_rows(keys, &back), 3);
        for (int i = 0; i < 3; i++)
            ck_assert_mem_eq(back[i].vin, in[i].vin, 17);
        free(back);
        vem_keys_destroy(&keys);
    }
}
END_TEST

START_TEST(reply_codes)
{
    /* protocol/hj1239.md, 0x08: status 0x01 ok / 0x02 failed; info 0x00 ok, 0x01 chip already
     * activated, 0x02 VIN error */
    static const struct {
        vem_keys_verdict_t v;
        uint8_t status, info;
        const char *name;
    } cases[] = {{VEM_KEYS_OK, 0x01, 0x00, "ok"},
                 {VEM_KEYS_CHIP_TAKEN, 0x02, 0x01, "chip_activated"},
                 {VEM_KEYS_VIN_ERROR, 0x02, 0x02, "vin_error"},
                 {VEM_KEYS_BAD_SIGNATURE, 0x02, 0x02, "bad_signature"},
                 {VEM_KEYS_KEY_REUSED, 0x02, 0x01, "key_reused"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t status, info;
        vem_keys_reply_codes(cases[i].v, &status, &info);
        ck_assert_uint_eq(status, cases[i].status);
        ck_assert_uint_eq(info, cases[i].info);
        ck_assert_str_eq(vem_keys_verdict_name(cases[i].v), cases[i].name);
    }
}
END_TEST

/* A load that cannot reach PostgreSQL leaves the registry "not loaded" (main then loads again),
 * and keeps what it held. The socket directory does not exist: libpq fails at once. */
START_TEST(failed_load_is_not_loaded)
{
    vem_keys_t *keys = vem_keys_new();
    ck_assert(!vem_keys_loaded(keys)); /* before the first load */
    char err[512] = "";
    ck_assert_int_eq(vem_keys_load(keys, "host=/nonexistent/vem-keys-test port=5 connect_timeout=2",
                                   err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, "terminal keys") != NULL, "%s", err);
    ck_assert(!vem_keys_loaded(keys));
    ck_assert_uint_eq(vem_keys_size(keys), 0);
    vem_keys_destroy(&keys);
}
END_TEST

START_TEST(signed_bytes)
{
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    uint8_t frame[512];
    size_t len = s_activation(S_VIN1, S_VIN1, S_CHIP1, s_pub_a, "a", f, frame, sizeof frame);
    size_t n = 0;
    /* activation: time 6 + chip 16 + key 64 + VIN 17 from the data unit's start */
    ck_assert_ptr_eq(vem_keys_signed_bytes(f, frame, len, &n), frame + 24);
    ck_assert_uint_eq(n, 103);
    /* a real-time frame: everything of the data unit before rlen */
    char path[512];
    snprintf(path, sizeof path, "%s/hj1239/vectors.jsonl", vem_test_vectors_dir());
    FILE *in = fopen(path, "r");
    json_error_t err;
    json_t *v;
    long rt = -1, gb = -1;
    uint8_t rtb[512], gbb[512];
    while ((v = json_loadf(in, JSON_DISABLE_EOF_CHECK, &err))) {
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *hex = json_string_value(json_object_get(v, "hex"));
        if (strcmp(name, "realtime_hj1239") == 0)
            rt = vem_test_unhex(hex, rtb, sizeof rtb);
        else if (strcmp(name, "realtime_gb17691") == 0)
            gb = vem_test_unhex(hex, gbb, sizeof gbb);
        json_decref(v);
    }
    fclose(in);
    ck_assert(rt > 0 && gb > 0);
    ck_assert_int_eq(vem_hj1239_decode(rtb, (size_t)rt, 0, f, NULL), VEM_HJ1239_OK);
    size_t unit = (size_t)rtb[22] << 8 | rtb[23];
    ck_assert_ptr_eq(vem_keys_signed_bytes(f, rtb, (size_t)rt, &n), rtb + 24);
    ck_assert_uint_eq(n, unit - 2 - f->sig.rlen - f->sig.slen);
    ck_assert_uint_eq(rtb[24 + n], f->sig.rlen); /* the signature starts right after */
    ck_assert_int_eq(vem_hj1239_decode(gbb, (size_t)gb, 0, f, NULL), VEM_HJ1239_OK);
    ck_assert_ptr_null(vem_keys_signed_bytes(f, gbb, (size_t)gb, &n));
    free(f);
}
END_TEST

Suite *vem_suite_keys(void);
Suite *vem_suite_keys(void)
{
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("rules");
    tcase_add_unchecked_fixture(tc, s_setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, chip_and_vin_rules);
    tcase_add_test(tc, judged_is_not_filed);
    tcase_add_test(tc, key_of_another_chip_refused);
    tcase_add_test(tc, seed_leaves_out_reused_key);
    tcase_add_test(tc, rows_in_table_order);
    tcase_add_test(tc, reply_codes);
    tcase_add_test(tc, signed_bytes);
    tcase_add_test(tc, failed_load_is_not_loaded);
    suite_add_tcase(s, tc);
    return s;
}
