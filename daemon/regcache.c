/* regcache — the registry and terminal keys on local disk; see regcache.h. */
#include "regcache.h"

#include "fileio.h"
#include "frame_json.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_FORMAT  "vemd-registry-cache"
#define S_VERSION 1
/* The longest line a cache holds: a vehicle's strings, escaped, and three figures. */
#define S_LINE_MAX 1024
/* saved_at beyond this (about 35,000 years from 1970) is damage: gmtime cannot take it. */
#define S_TIME_MAX_S ((json_int_t)1 << 40)

static json_t *s_figure(double v)
{
    return v > 0 ? json_real(v) : json_null();
}

/* A registry string as JSON: its longest prefix that is UTF-8. The registry keeps the first
 * bytes of a longer value wherever they end (a plate of 16 bytes or more can end inside a
 * character), and JSON holds no string that is not UTF-8: one such vehicle would otherwise
 * keep the whole fleet out of the cache. What is cut was not a whole character, and a plate
 * that long matches no reading (at most 14 bytes). */
static json_t *s_text_json(const char *s)
{
    size_t n = strlen(s);
    json_t *j;
    while (!(j = json_stringn(s, n)) && n > 0)
        n--;
    return j;
}

/* One line: the document, compact, and a newline; false when it could not be written. */
static bool s_line(FILE *f, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(17));
    json_decref(doc);
    bool ok = text && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    free(text);
    return ok;
}

int vem_regcache_save(const char *dir, const vem_registry_t *reg, vem_keys_t *keys,
                      int64_t saved_at, char *err, size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, VEM_REGCACHE_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        snprintf(err, errlen, "registry cache %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    vem_keys_row_t *rows;
    size_t nkeys = vem_keys_rows(keys, &rows);
    errno = 0; /* a line JSON cannot hold fails with no errno: not some earlier call's reason */
    bool ok = s_line(f, json_pack("{s:s, s:i, s:I, s:I, s:I}", "format", S_FORMAT, "version",
                                  S_VERSION, "saved_at", (json_int_t)saved_at, "vehicles",
                                  (json_int_t)vem_registry_size(reg), "terminal_keys",
                                  (json_int_t)nkeys));
    size_t pos = 0;
    const vem_vehicle_t *v;
    while (ok && (v = vem_registry_next(reg, &pos)))
        ok = s_line(f, json_pack("[s, o, o, o, o, o, o, o, o]", "V", s_text_json(v->vin),
                                 s_text_json(v->plate), s_text_json(v->plate_color),
                                 s_text_json(v->fuel), s_text_json(v->region_code),
                                 s_figure(v->ref_torque_nm), s_figure(v->rated_power_kw),
                                 s_figure(v->whtc_work_kwh)));
    for (size_t i = 0; ok && i < nkeys; i++) {
        char vin[18] = {0}, chip[33], pub[129];
        memcpy(vin, rows[i].vin, 17);
        vem_frame_json_hex_text(chip, rows[i].chip, 16);
        vem_frame_json_hex_text(pub, rows[i].pub, 64);
        ok = s_line(f, json_pack("[s, s, s, s]", "K", vin, chip, pub));
    }
    free(rows);
    const char *step = "write";
    if (ok && fflush(f) != 0)
        ok = false;
    if (ok && fdatasync(fd) != 0)
        step = "fdatasync", ok = false;
    int error = errno;
    if (fclose(f) != 0 && ok)
        ok = false, error = errno;
    if (ok && rename(tmp, path) != 0)
        step = "rename", ok = false, error = errno;
    if (ok && vem_fileio_fsync_dir(dir) != 0)
        step = "directory fsync", ok = false, error = errno;
    if (!ok) {
        snprintf(err, errlen, "registry cache %s: %s: %s", path, step,
                 error ? strerror(error) : "failed");
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct {
    FILE *f;
    char *line;
    size_t cap;
    unsigned lineno;
    char *err;
    size_t errlen;
    const char *path;
} s_reader_t;

static bool s_fail(s_reader_t *r, const char *what)
{
    snprintf(r->err, r->errlen, "registry cache %s: line %u: %s", r->path, r->lineno, what);
    return false;
}

/* The next line as a JSON document, or NULL (err set) at the end or on a bad line. */
static json_t *s_next(s_reader_t *r, bool *at_end)
{
    *at_end = false;
    errno = 0;
    ssize_t n = getline(&r->line, &r->cap, r->f);
    r->lineno++;
    if (n < 0) {
        *at_end = errno == 0;
        s_fail(r, errno ? strerror(errno) : "the file ends here");
        return NULL;
    }
    if ((size_t)n > S_LINE_MAX) {
        s_fail(r, "longer than any line of a registry cache");
        return NULL;
    }
    json_error_t je;
    json_t *doc = json_loadb(r->line, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        char what[240];
        snprintf(what, sizeof what, "not JSON: %s", je.text);
        s_fail(r, what);
    }
    return doc;
}

/* A string member of a line into out[cap], at most cap - 1 bytes; exact: exactly that many. */
static bool s_text(s_reader_t *r, json_t *doc, size_t i, const char *name, char *out, size_t cap,
                   size_t exact)
{
    const char *s = json_string_value(json_array_get(doc, i));
    char what[120];
    if (!s) {
        snprintf(what, sizeof what, "%s is not a string", name);
        return s_fail(r, what);
    }
    size_t n = strlen(s);
    if (exact ? n != exact : n >= cap) {
        if (exact)
            snprintf(what, sizeof what, "%s is not %zu characters long", name, exact);
        else
            snprintf(what, sizeof what, "%s is longer than %zu bytes", name, cap - 1);
        return s_fail(r, what);
    }
    memcpy(out, s, n + 1);
    return true;
}

/* A figure: null (not known: 0), or a positive finite number. */
static bool s_number(s_reader_t *r, json_t *doc, size_t i, const char *name, double *out)
{
    json_t *x = json_array_get(doc, i);
    *out = 0;
    if (json_is_null(x))
        return true;
    double v = json_number_value(x);
    if (!json_is_number(x) || !isfinite(v) || v <= 0) {
        char what[120];
        snprintf(what, sizeof what, "%s is neither null nor a positive number", name);
        return s_fail(r, what);
    }
    *out = v;
    return true;
}

static int s_nibble(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static bool s_unhex(s_reader_t *r, json_t *doc, size_t i, const char *name, uint8_t *out, size_t n)
{
    char text[2 * 64 + 1];
    if (!s_text(r, doc, i, name, text, sizeof text, 2 * n))
        return false;
    for (size_t k = 0; k < n; k++) {
        int hi = s_nibble(text[2 * k]), lo = s_nibble(text[2 * k + 1]);
        if (hi < 0 || lo < 0) {
            char what[120];
            snprintf(what, sizeof what, "%s is not lower-case hexadecimal", name);
            return s_fail(r, what);
        }
        out[k] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* A line of kind ("V" or "K") with n members. */
static bool s_shape(s_reader_t *r, json_t *doc, const char *kind, size_t n)
{
    const char *k = json_string_value(json_array_get(doc, 0));
    if (!json_is_array(doc) || !k || strcmp(k, kind) != 0 || json_array_size(doc) != n) {
        char what[120];
        snprintf(what, sizeof what, "not a %s line of %zu members",
                 kind[0] == 'V' ? "vehicle" : "terminal key", n);
        return s_fail(r, what);
    }
    return true;
}

static bool s_vehicle(s_reader_t *r, json_t *doc, vem_vehicle_t *v)
{
    memset(v, 0, sizeof *v);
    return s_shape(r, doc, "V", 9) && s_text(r, doc, 1, "vin", v->vin, sizeof v->vin, 17) &&
           s_text(r, doc, 2, "plate", v->plate, sizeof v->plate, 0) &&
           s_text(r, doc, 3, "plate_color", v->plate_color, sizeof v->plate_color, 0) &&
           s_text(r, doc, 4, "fuel", v->fuel, sizeof v->fuel, 0) &&
           s_text(r, doc, 5, "region_code", v->region_code, sizeof v->region_code, 0) &&
           s_number(r, doc, 6, "ref_torque_nm", &v->ref_torque_nm) &&
           s_number(r, doc, 7, "rated_power_kw", &v->rated_power_kw) &&
           s_number(r, doc, 8, "whtc_work_kwh", &v->whtc_work_kwh);
}

static bool s_key(s_reader_t *r, json_t *doc, vem_keys_row_t *k)
{
    char vin[18];
    if (!s_shape(r, doc, "K", 4) || !s_text(r, doc, 1, "vin", vin, sizeof vin, 17) ||
        !s_unhex(r, doc, 2, "chip_id", k->chip, 16) || !s_unhex(r, doc, 3, "pubkey", k->pub, 64))
        return false;
    memcpy(k->vin, vin, 17);
    return true;
}

/* The header: the counts of the lines that follow. */
static bool s_header(s_reader_t *r, int64_t *saved_at, size_t *nv, size_t *nk)
{
    bool end;
    json_t *doc = s_next(r, &end);
    if (!doc)
        return false;
    const char *format = json_string_value(json_object_get(doc, "format"));
    json_t *version = json_object_get(doc, "version");
    json_int_t at = json_integer_value(json_object_get(doc, "saved_at"));
    json_int_t v = json_integer_value(json_object_get(doc, "vehicles"));
    json_int_t k = json_integer_value(json_object_get(doc, "terminal_keys"));
    bool ok = false;
    if (!format || strcmp(format, S_FORMAT) != 0)
        s_fail(r, "not a registry cache (format)");
    else if (!json_is_integer(version) || json_integer_value(version) != S_VERSION)
        s_fail(r, "a version this vemd does not read");
    else if (!json_is_integer(json_object_get(doc, "saved_at")) || v < 0 || k < 0 ||
             !json_is_integer(json_object_get(doc, "vehicles")) ||
             !json_is_integer(json_object_get(doc, "terminal_keys")))
        s_fail(r, "saved_at, vehicles or terminal_keys missing or negative");
    else if (at < 0 || at > S_TIME_MAX_S)
        s_fail(r, "saved_at is not a time");
    else
        ok = true;
    *saved_at = at;
    *nv = (size_t)v;
    *nk = (size_t)k;
    json_decref(doc);
    return ok;
}

static bool s_read(s_reader_t *r, vem_regcache_t *c)
{
    size_t nv, nk;
    if (!s_header(r, &c->saved_at, &nv, &nk))
        return false;
    /* grown as lines come, so a header that lies about its counts costs nothing */
    vem_vehicle_t *vs = NULL;
    size_t have = 0, cap = 0, kcap = 0;
    bool ok = true, end;
    for (size_t i = 0; ok && i < nv + nk; i++) {
        json_t *doc = s_next(r, &end);
        if (!doc) {
            ok = false;
            break;
        }
        if (i < nv) {
            if (have == cap) {
                cap = cap ? 2 * cap : 256;
                vs = realloc(vs, cap * sizeof *vs);
                if (!vs)
                    abort();
            }
            ok = s_vehicle(r, doc, &vs[have++]);
        } else {
            if (c->nkeys == kcap) {
                kcap = kcap ? 2 * kcap : 64;
                c->keys = realloc(c->keys, kcap * sizeof *c->keys);
                if (!c->keys)
                    abort();
            }
            ok = s_key(r, doc, &c->keys[c->nkeys++]);
        }
        json_decref(doc);
    }
    if (ok && getline(&r->line, &r->cap, r->f) >= 0) {
        r->lineno++;
        ok = s_fail(r, "more lines than the header counts");
    }
    if (ok)
        c->registry = vem_registry_from(vs, have);
    free(vs);
    return ok;
}

int vem_regcache_read(FILE *f, const char *name, vem_regcache_t *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    s_reader_t r = {.f = f, .err = err, .errlen = errlen, .path = name};
    bool ok = s_read(&r, c);
    free(r.line);
    if (!ok) {
        vem_regcache_free(c);
        return -1;
    }
    return 0;
}

int vem_regcache_load(const char *dir, vem_regcache_t *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, VEM_REGCACHE_FILE);
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, errlen, "registry cache %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = vem_regcache_read(f, path, c, err, errlen);
    fclose(f);
    return rc;
}

void vem_regcache_free(vem_regcache_t *c)
{
    vem_registry_release(c->registry);
    free(c->keys);
    memset(c, 0, sizeof *c);
}
