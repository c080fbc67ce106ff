/* check_regcache — the registry cache (regcache.h): what is saved comes back field for field,
 * keys taken from it verify but do not count as loaded, a start without the file is told
 * apart from a file that is not a registry cache, and each way a file can be wrong is refused
 * whole with its line and reason. */
#include "keys.h"
#include "regcache.h"
#include "registry.h"
#include "sm2cli.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char s_dir[256];
static uint8_t s_pub_a[64], s_pub_b[64];

static void s_setup(void)
{
    vem_test_mkdtemp("regcache", s_dir, sizeof s_dir);
    vem_sm2cli_keygen(s_dir, "a", s_pub_a);
    vem_sm2cli_keygen(s_dir, "b", s_pub_b);
}

#define S_VIN1 "LRCACHE0000000001"
#define S_VIN2 "LRCACHE0000000002"
#define S_VIN3 "LRCACHE0000000003"

static vem_keys_row_t s_row(const char *vin, const char *chip, const uint8_t pub[64])
{
    vem_keys_row_t r;
    memcpy(r.vin, vin, 17);
    memcpy(r.chip, chip, 16);
    memcpy(r.pub, pub, 64);
    return r;
}

static const vem_keys_row_t *s_find_row(const vem_regcache_t *c, const char *vin)
{
    for (size_t i = 0; i < c->nkeys; i++)
        if (memcmp(c->keys[i].vin, vin, 17) == 0)
            return &c->keys[i];
    return NULL;
}

START_TEST(round_trip)
{
    const vem_vehicle_t v[3] = {
        {S_VIN1,
         "\xe4\xba\xac"
         "A12345",
         "\xe9\xbb\x84", "diesel", "110105", 2300.5, 353, 0.1 * 353},
        {S_VIN2, "", "", "", "", 0, 0, 0},
        {S_VIN3,
         "\xe6\xb2\xaa"
         "B\"7\\8",
         "blue", "gasoline", "310000", 1e-3, 88.25, 7.5},
    };
    vem_registry_t *reg = vem_registry_from(v, 3);
    vem_keys_t *keys = vem_keys_new();
    const vem_keys_row_t rows[2] = {s_row(S_VIN1, "CHIP000000000001", s_pub_a),
                                    s_row(S_VIN3, "CHIP00000000000\xff", s_pub_b)};
    ck_assert_uint_eq(vem_keys_seed(keys, rows, 2), 2);
    char err[600] = "";
    ck_assert_msg(vem_regcache_save(s_dir, reg, keys, 1764500000, err, sizeof err) == 0, "%s", err);
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s/registry.cache.tmp", s_dir);
    ck_assert_int_ne(access(tmp, F_OK), 0); /* renamed into place */

    vem_regcache_t c;
    ck_assert_msg(vem_regcache_load(s_dir, &c, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.saved_at, 1764500000);
    ck_assert_uint_eq(vem_registry_size(c.registry), 3);
    for (int i = 0; i < 3; i++) {
        const vem_vehicle_t *got = vem_registry_find(c.registry, v[i].vin);
        ck_assert_ptr_nonnull(got);
        ck_assert_str_eq(got->plate, v[i].plate);
        ck_assert_str_eq(got->plate_color, v[i].plate_color);
        ck_assert_str_eq(got->fuel, v[i].fuel);
        ck_assert_str_eq(got->region_code, v[i].region_code);
        ck_assert(got->ref_torque_nm == v[i].ref_torque_nm); /* exact: 17 digits */
        ck_assert(got->rated_power_kw == v[i].rated_power_kw);
        ck_assert(got->whtc_work_kwh == v[i].whtc_work_kwh);
    }
    /* the plate index is built too: a roadside reading finds the vehicle */
    ck_assert_ptr_eq(vem_registry_find_plate(c.registry,
                                             "\xe4\xba\xac"
                                             "A12345",
                                             ""),
                     vem_registry_find(c.registry, S_VIN1));
    ck_assert_uint_eq(c.nkeys, 2);
    for (int i = 0; i < 2; i++) {
        const vem_keys_row_t *got = s_find_row(&c, (const char *)rows[i].vin);
        ck_assert_ptr_nonnull(got);
        ck_assert_mem_eq(got->chip, rows[i].chip, 16);
        ck_assert_mem_eq(got->pub, rows[i].pub, 64);
    }

    /* keys taken from the cache are found, but the registry still has to load */
    vem_keys_t *later = vem_keys_new();
    ck_assert_uint_eq(vem_keys_seed(later, c.keys, c.nkeys), 2);
    ck_assert(!vem_keys_loaded(later));
    vem_sm2_key_t *k = vem_keys_find(later, (const uint8_t *)S_VIN3);
    ck_assert_ptr_nonnull(k);
    vem_sm2_key_destroy(&k);
    ck_assert_ptr_null(vem_keys_find(later, (const uint8_t *)S_VIN2));
    /* a second seed changes nothing */
    ck_assert_uint_eq(vem_keys_seed(later, rows, 1), 0);
    ck_assert_uint_eq(vem_keys_size(later), 2);

    vem_keys_destroy(&later);
    vem_regcache_free(&c);
    vem_keys_destroy(&keys);
    vem_registry_release(reg);
}
END_TEST

/* The registry keeps at most 15 bytes of a plate, cut wherever the 16th byte fell, so a long
 * plate of Chinese characters can end in part of one. Such a vehicle must not stop the cache of
 * the whole fleet from being written (a string that is not UTF-8 cannot be JSON): it is kept
 * with the characters that are whole. No reading matches such a plate either way (a reading's
 * plate is at most 14 bytes). */
START_TEST(plate_cut_inside_a_character)
{
    vem_vehicle_t v[2] = {
        {S_VIN1, "", "yellow", "diesel", "110105", 2300, 353, 35},
        {S_VIN2, "B12345", "blue", "diesel", "110105", 0, 0, 0},
    };
    /* "京AF12345挂车" is 16 bytes; the registry keeps 15: the last character cut in two */
    memcpy(v[0].plate,
           "\xe4\xba\xac"
           "AF12345\xe6\x8c\x82\xe8\xbd",
           15);
    ck_assert_uint_eq(strlen(v[0].plate), 15);
    vem_registry_t *reg = vem_registry_from(v, 2);
    vem_keys_t *keys = vem_keys_new();
    char err[600] = "";
    ck_assert_msg(vem_regcache_save(s_dir, reg, keys, 1764500000, err, sizeof err) == 0, "%s", err);
    vem_regcache_t c;
    ck_assert_msg(vem_regcache_load(s_dir, &c, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(vem_registry_size(c.registry), 2);
    const vem_vehicle_t *got = vem_registry_find(c.registry, S_VIN1);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got->plate, "\xe4\xba\xac"
                                 "AF12345\xe6\x8c\x82");
    ck_assert_double_eq(got->ref_torque_nm, 2300);
    vem_regcache_free(&c);
    vem_keys_destroy(&keys);
    vem_registry_release(reg);
}
END_TEST

START_TEST(seed_leaves_out_bad_rows)
{
    uint8_t off_curve[64];
    memcpy(off_curve, s_pub_a, 64);
    off_curve[63] ^= 0x01;
    const vem_keys_row_t rows[4] = {
        s_row(S_VIN1, "CHIP000000000001", s_pub_a),
        s_row(S_VIN2, "CHIP000000000002", off_curve), /* not on the curve */
        s_row(S_VIN1, "CHIP000000000003", s_pub_b),   /* the VIN again */
        s_row(S_VIN3, "CHIP000000000001", s_pub_b),   /* the chip again */
    };
    vem_keys_t *keys = vem_keys_new();
    ck_assert_uint_eq(vem_keys_seed(keys, rows, 4), 1);
    vem_sm2_key_t *k = vem_keys_find(keys, (const uint8_t *)S_VIN1);
    ck_assert_ptr_nonnull(k);
    vem_sm2_key_destroy(&k);
    ck_assert_ptr_null(vem_keys_find(keys, (const uint8_t *)S_VIN2));
    ck_assert_ptr_null(vem_keys_find(keys, (const uint8_t *)S_VIN3));
    vem_keys_destroy(&keys);
}
END_TEST

START_TEST(no_file)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/empty", s_dir);
    mkdir(dir, 0700);
    vem_regcache_t c;
    char err[600] = "";
    ck_assert_int_eq(vem_regcache_load(dir, &c, err, sizeof err), 1);
    ck_assert_ptr_null(c.registry);
    /* a directory that cannot take the file: the save says where and why */
    snprintf(dir, sizeof dir, "%s/missing/dir", s_dir);
    vem_registry_t *reg = vem_registry_empty();
    vem_keys_t *keys = vem_keys_new();
    ck_assert_int_eq(vem_regcache_save(dir, reg, keys, 1, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "registry.cache.tmp") && strstr(err, "No such file"), "%s", err);
    vem_keys_destroy(&keys);
    vem_registry_release(reg);
}
END_TEST

/* A save that fails leaves the last good file in place and no temporary behind: a write that
 * fails (the temporary is a link to /dev/full: no space), and a rename that cannot replace the
 * file (a directory stands where it goes). Each error names its step and reason. */
START_TEST(failed_save_keeps_the_old_file)
{
    char dir[300], tmp[400], err[600] = "";
    snprintf(dir, sizeof dir, "%s/keep", s_dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    const vem_vehicle_t one = {S_VIN1, "", "", "diesel", "", 1000, 200, 18};
    const vem_vehicle_t two = {S_VIN2, "", "", "diesel", "", 1500, 300, 27};
    vem_registry_t *first = vem_registry_from(&one, 1), *second = vem_registry_from(&two, 1);
    vem_keys_t *keys = vem_keys_new();
    ck_assert_msg(vem_regcache_save(dir, first, keys, 10, err, sizeof err) == 0, "%s", err);

    snprintf(tmp, sizeof tmp, "%s/registry.cache.tmp", dir);
    ck_assert_int_eq(symlink("/dev/full", tmp), 0);
    ck_assert_int_eq(vem_regcache_save(dir, second, keys, 20, err, sizeof err), -1);
    ck_assert_msg(strstr(err, ": write: No space left on device"), "%s", err);
    struct stat st;
    ck_assert_int_ne(lstat(tmp, &st), 0); /* the temporary is gone */
    vem_regcache_t c;
    ck_assert_msg(vem_regcache_load(dir, &c, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.saved_at, 10);
    ck_assert_ptr_nonnull(vem_registry_find(c.registry, S_VIN1));
    ck_assert_ptr_null(vem_registry_find(c.registry, S_VIN2));
    vem_regcache_free(&c);

    char file[400], inside[500];
    snprintf(dir, sizeof dir, "%s/blocked", s_dir);
    snprintf(file, sizeof file, "%s/registry.cache", dir);
    snprintf(inside, sizeof inside, "%s/x", file);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(mkdir(file, 0700), 0);
    FILE *f = fopen(inside, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(vem_regcache_save(dir, second, keys, 30, err, sizeof err), -1);
    ck_assert_msg(strstr(err, ": rename: Is a directory"), "%s", err);
    snprintf(tmp, sizeof tmp, "%s/registry.cache.tmp", dir);
    ck_assert_int_ne(lstat(tmp, &st), 0);
    ck_assert_int_eq(access(inside, F_OK), 0); /* what stood there is untouched */

    vem_keys_destroy(&keys);
    vem_registry_release(first);
    vem_registry_release(second);
}
END_TEST

#define S_HEAD(v, k)                                                                               \
    "{\"format\":\"vemd-registry-cache\",\"version\":1,\"saved_at\":5,\"vehicles\":" #v            \
    ",\"terminal_keys\":" #k "}\n"
#define S_V1   "[\"V\",\"" S_VIN1 "\",\"A1\",\"\",\"diesel\",\"\",null,null,null]\n"
#define S_HEXK "0000000000000000000000000000000000000000000000000000000000000000"
#define S_K1   "[\"K\",\"" S_VIN1 "\",\"43484950303030303030303030303031\",\"" S_HEXK S_HEXK "\"]\n"

/* Files that are not a registry cache: each refused whole, with its line and reason. */
static const struct {
    const char *text, *says;
} s_bad[] = {
    {"", "line 1: the file ends here"},
    {"{\"format\":\"other\",\"version\":1}\n", "line 1: not a registry cache"},
    {"{\"format\":\"vemd-registry-cache\",\"version\":2,\"saved_at\":5,\"vehicles\":0,"
     "\"terminal_keys\":0}\n",
     "line 1: a version this vemd does not read"},
    {"{\"format\":\"vemd-registry-cache\",\"version\":1,\"vehicles\":0,\"terminal_keys\":0}\n",
     "line 1: saved_at, vehicles or terminal_keys missing"},
    {S_HEAD(-1, 0), "line 1: saved_at, vehicles or terminal_keys missing or negative"},
    /* a time gmtime cannot take: main formats it for its log line (a NULL struct tm) */
    {"{\"format\":\"vemd-registry-cache\",\"version\":1,\"saved_at\":9223372036854775807,"
     "\"vehicles\":0,\"terminal_keys\":0}\n",
     "line 1: saved_at is not a time"},
    {"{\"format\":\"vemd-registry-cache\",\"version\":1,\"saved_at\":-1,"
     "\"vehicles\":0,\"terminal_keys\":0}\n",
     "line 1: saved_at is not a time"},
    {"not json\n", "line 1: not JSON"},
    {S_HEAD(2, 0) S_V1, "line 3: the file ends here"},
    {S_HEAD(1, 0) S_V1 S_V1, "line 3: more lines than the header counts"},
    {S_HEAD(1, 0) "[\"V\",\"LRCACHE000000001\",\"\",\"\",\"\",\"\",null,null,null]\n",
     "line 2: vin is not 17 characters long"},
    {S_HEAD(1, 0) "[\"V\",\"" S_VIN1 "\",\"0123456789ABCDEF\",\"\",\"\",\"\",null,null,null]\n",
     "line 2: plate is longer than 15 bytes"},
    {S_HEAD(1, 0) "[\"V\",\"" S_VIN1 "\",\"\",\"\",\"\",\"\",-3,null,null]\n",
     "line 2: ref_torque_nm is neither null nor a positive number"},
    {S_HEAD(1, 0) "[\"V\",\"" S_VIN1 "\",\"\",\"\",\"\",\"\",null,\"1\",null]\n",
     "line 2: rated_power_kw is neither null nor a positive number"},
    {S_HEAD(1, 0) "[\"V\",\"" S_VIN1 "\",\"\",\"\",\"\",\"\",null,null]\n",
     "line 2: not a vehicle line of 9 members"},
    {S_HEAD(1, 0) S_K1, "line 2: not a vehicle line of 9 members"},
    {S_HEAD(1, 1) S_V1 S_V1, "line 3: not a terminal key line of 4 members"},
    {S_HEAD(0, 1) "[\"K\",\"" S_VIN1 "\",\"4348495030303030303030303030303A\",\"" S_HEXK S_HEXK
                  "\"]\n",
     "line 2: chip_id is not lower-case hexadecimal"},
    {S_HEAD(0, 1) "[\"K\",\"" S_VIN1 "\",\"4348\",\"" S_HEXK S_HEXK "\"]\n",
     "line 2: chip_id is not 32 characters long"},
    {S_HEAD(0, 1) "[\"K\",\"" S_VIN1 "\",\"43484950303030303030303030303031\",\"" S_HEXK "\"]\n",
     "line 2: pubkey is not 128 characters long"},
};

START_TEST(refused)
{
    char dir[300], path[340];
    snprintf(dir, sizeof dir, "%s/bad%d", s_dir, _i);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/registry.cache", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(s_bad[_i].text, f);
    fclose(f);
    vem_regcache_t c;
    char err[600] = "";
    ck_assert_int_eq(vem_regcache_load(dir, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, s_bad[_i].says) && strstr(err, path), "case %d: %s", _i, err);
    ck_assert_ptr_null(c.registry);
    ck_assert_ptr_null(c.keys);
}
END_TEST

/* The well-formed text the refused cases start from is read: the table tests what it says. */
START_TEST(hand_written)
{
    char dir[300], path[340];
    snprintf(dir, sizeof dir, "%s/good", s_dir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/registry.cache", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(S_HEAD(1, 1) S_V1 S_K1, f);
    fclose(f);
    vem_regcache_t c;
    char err[600] = "";
    ck_assert_msg(vem_regcache_load(dir, &c, err, sizeof err) == 0, "%s", err);
    const vem_vehicle_t *v = vem_registry_find(c.registry, S_VIN1);
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(v->plate, "A1");
    ck_assert_str_eq(v->fuel, "diesel");
    ck_assert(v->ref_torque_nm == 0 && v->rated_power_kw == 0 && v->whtc_work_kwh == 0);
    ck_assert_uint_eq(c.nkeys, 1);
    ck_assert_mem_eq(c.keys[0].chip, "CHIP000000000001", 16); /* 43 48 49 50 30 ... 31 */
    vem_regcache_free(&c);
}
END_TEST

Suite *vem_suite_regcache(void);
Suite *vem_suite_regcache(void)
{
    Suite *s = suite_create("regcache");
    TCase *tc = tcase_create("regcache");
    tcase_add_unchecked_fixture(tc, s_setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, plate_cut_inside_a_character);
    tcase_add_test(tc, seed_leaves_out_bad_rows);
    tcase_add_test(tc, no_file);
    tcase_add_test(tc, failed_save_keeps_the_old_file);
    tcase_add_loop_test(tc, refused, 0, (int)(sizeof s_bad / sizeof s_bad[0]));
    tcase_add_test(tc, hand_written);
    suite_add_tcase(s, tc);
    return s;
}
