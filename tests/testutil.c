/* testutil — helpers for the Check suites; see testutil.h. */
#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *vem_test_vectors_dir(void)
{
    const char *dir = getenv("VEM_TEST_VECTORS");
    return dir ? dir : "tests/vectors";
}

const char *vem_test_bin_dir(void)
{
    const char *dir = getenv("VEM_TEST_BIN");
    return dir ? dir : "build/bin";
}

const char *vem_test_env(const char *name)
{
    const char *value = getenv(name);
    ck_assert_msg(value && *value, "%s is not set: run integration suites through tests/harness.sh",
                  name);
    return value;
}

void vem_test_mkdtemp(const char *name, char *out, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(out, cap, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    ck_assert_msg(n > 0 && (size_t)n < cap, "temp path too long");
    ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp %s failed", out);
}

void vem_test_rmtree(const char *dir)
{
    char cmd[4200];
    int n = snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_msg(n > 0 && (size_t)n < sizeof cmd && !strchr(dir, '\''), "cannot remove %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

void vem_test_spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

uint8_t *vem_test_slurp(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            uint8_t *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                buf = NULL;
            }
            buf = grown;
        }
    }
    fclose(f);
    if (buf)
        *len_out = len;
    return buf;
}

static int s_nibble(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

long vem_test_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t len = strlen(hex);
    if (len % 2 || len / 2 > cap)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = s_nibble((unsigned char)hex[2 * i]), lo = s_nibble((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(len / 2);
}

long vem_test_vector_bytes(const char *name, uint8_t *out, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/hj1239/vectors.jsonl", vem_test_vectors_dir());
    FILE *in = fopen(path, "r");
    ck_assert_ptr_nonnull(in);
    json_error_t err;
    json_t *v;
    long len = -1;
    while (len < 0 && (v = json_loadf(in, JSON_DISABLE_EOF_CHECK, &err))) {
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            len = vem_test_unhex(json_string_value(json_object_get(v, "hex")), out, cap);
        json_decref(v);
    }
    fclose(in);
    ck_assert_msg(len > 0, "no vector named %s", name);
    return len;
}

void vem_test_vector_frame(const char *name, vem_hj1239_frame_t *f)
{
    uint8_t bytes[4096];
    long len = vem_test_vector_bytes(name, bytes, sizeof bytes);
    ck_assert_int_eq(vem_hj1239_decode(bytes, (size_t)len, 0, f, NULL), VEM_HJ1239_OK);
}

void vem_test_set_field(vem_hj1239_block_t *b, vem_hj1239_field_t f, double v)
{
    const vem_hj1239_field_info_t *fi = vem_hj1239_field_info(f);
    if (isnan(v))
        b->raw[f] = fi->width == 1 ? 0xFF : fi->width == 2 ? 0xFFFF : 0xFFFFFFFF;
    else
        b->raw[f] = (uint32_t)llround((v - fi->offset) / fi->scale);
}

void vem_test_stream_block(vem_hj1239_block_t *b, int64_t t, const vem_test_phys_t *p)
{
    memset(b, 0, sizeof *b);
    b->type = VEM_HJ1239_BLOCK_STREAM;
    b->time = t;
    vem_test_set_field(b, VEM_HJ1239_F_SPEED, 40);
    vem_test_set_field(b, VEM_HJ1239_F_BARO, 100);
    vem_test_set_field(b, VEM_HJ1239_F_TORQUE, p->torque);
    vem_test_set_field(b, VEM_HJ1239_F_FRICTION, p->friction);
    vem_test_set_field(b, VEM_HJ1239_F_RPM, p->rpm);
    vem_test_set_field(b, VEM_HJ1239_F_FUEL_RATE, p->fuel);
    vem_test_set_field(b, VEM_HJ1239_F_NOX_UP, p->nox_up);
    vem_test_set_field(b, VEM_HJ1239_F_NOX_DOWN, p->nox_down);
    vem_test_set_field(b, VEM_HJ1239_F_REAGENT, p->reagent);
    vem_test_set_field(b, VEM_HJ1239_F_INTAKE, p->intake);
    vem_test_set_field(b, VEM_HJ1239_F_SCR_IN, p->scr_in);
    vem_test_set_field(b, VEM_HJ1239_F_SCR_OUT, 280);
    vem_test_set_field(b, VEM_HJ1239_F_DPF_DP, 1);
    vem_test_set_field(b, VEM_HJ1239_F_COOLANT, p->coolant);
    vem_test_set_field(b, VEM_HJ1239_F_FUEL_LEVEL, 50);
    vem_test_set_field(b, VEM_HJ1239_F_LON, 116.4);
    vem_test_set_field(b, VEM_HJ1239_F_LAT, 39.9);
    vem_test_set_field(b, VEM_HJ1239_F_ODOMETER, 12345.6);
    b->novalue = vem_hj1239_novalue(b);
}

void vem_test_envelope(vem_hj1239_frame_t *f, uint8_t cmd, const char *vin, int64_t t)
{
    memset(f, 0, offsetof(vem_hj1239_frame_t, vendor));
    f->cmd = cmd;
    f->header = VEM_HJ1239_HEADER_TERMINAL;
    f->encryption = VEM_HJ1239_ENC_NONE;
    memcpy(f->vin, vin, 17);
    f->has_time = true;
    f->time = t;
}
