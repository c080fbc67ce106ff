/* sm2cli — SM2 test keys and signatures from the openssl CLI; see sm2cli.h. */
#include "sm2cli.h"

#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_run(const char *cmd)
{
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "command failed (%d): %s", rc, cmd);
}

void vem_sm2cli_keygen(const char *dir, const char *name, uint8_t xy[64])
{
    char cmd[1024], der[512];
    snprintf(cmd, sizeof cmd,
             "openssl genpkey -algorithm SM2 -out %s/%s.pem 2>/dev/null && "
             "openssl pkey -in %s/%s.pem -pubout -outform DER -out %s/%s.pub.der",
             dir, name, dir, name, dir, name);
    s_run(cmd);
    snprintf(der, sizeof der, "%s/%s.pub.der", dir, name);
    size_t n = 0;
    uint8_t *spki = vem_test_slurp(der, &n);
    ck_assert_ptr_nonnull(spki);
    ck_assert_uint_ge(n, 65);
    ck_assert_uint_eq(spki[n - 65], 0x04); /* uncompressed point */
    memcpy(xy, spki + n - 64, 64);
    free(spki);
}

/* The hex of the INTEGER on the asn1parse line numbered `which` (0: R, 1: S), left-padded to
 * 32 bytes. */
static void s_integer(const char *text, int which, uint8_t out[32])
{
    const char *p = text;
    for (int i = 0; i <= which; i++) {
        p = strstr(p, "INTEGER");
        ck_assert_ptr_nonnull(p);
        p += 7;
    }
    p = strchr(p, ':');
    ck_assert_ptr_nonnull(p);
    p++;
    size_t n = strspn(p, "0123456789ABCDEFabcdef");
    ck_assert_uint_le(n, 64);
    char hex[65] = {0};
    memset(hex, '0', 64 - n); /* odd lengths too */
    memcpy(hex + 64 - n, p, n);
    ck_assert_int_eq(vem_test_unhex(hex, out, 32), 32);
}

void vem_sm2cli_sign(const char *dir, const char *name, const char *distid, const uint8_t *msg,
                     size_t len, uint8_t r[32], uint8_t s[32])
{
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/%s.msg", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(msg, 1, len, f), len);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "openssl pkeyutl -sign -rawin -digest sm3 -inkey %s/%s.pem -pkeyopt distid:%s "
             "-in %s -out %s/%s.sig && openssl asn1parse -inform DER -in %s/%s.sig > %s/%s.asn1",
             dir, name, distid, path, dir, name, dir, name, dir, name);
    s_run(cmd);
    snprintf(path, sizeof path, "%s/%s.asn1", dir, name);
    size_t n = 0;
    uint8_t *text = vem_test_slurp(path, &n);
    ck_assert_ptr_nonnull(text);
    char *t = realloc(text, n + 1);
    ck_assert_ptr_nonnull(t);
    t[n] = '\0';
    s_integer(t, 0, r);
    s_integer(t, 1, s);
    free(t);
}
