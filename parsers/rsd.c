/* rsd — roadside readings from JSON; see rsd.h.
 *
 * One table (s_keys) says every key's type, whether it is required, its bounds and where it
 * goes; schema/rsd_reading.schema.json says the same for other programs, and check_rsd runs
 * both over one set of cases. Checks run in a fixed order, so the error reported for a given
 * message is always the same: syntax, version, unknown keys (in message order), then each key
 * of the table in table order, then the time bounds. */
#include "rsd.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define S_US            INT64_C(1000000)
#define S_Y2000_US      INT64_C(946684800000000) /* 2000-01-01T00:00:00Z */
#define S_BEIJING_S     (8 * 3600)
#define S_ID_SHORT      31
#define S_ID_LONG       63
#define S_IMAGE_REF_MAX 255 /* characters */

typedef enum {
    S_VERSION, /* integer, must be VEM_RSD_VERSION */
    S_ID,      /* printable ASCII without spaces, 1..cap-1 bytes */
    S_TIME,    /* ISO 8601 instant with an offset */
    S_PLATE,   /* a Chinese licence plate by its form */
    S_VIN,     /* 17 characters of the VIN alphabet */
    S_WORD,    /* one of words[] */
    S_NUMBER,  /* a number in [lo, hi] */
    S_INT,     /* an integral number in [lo, hi] */
    S_BOOL,
    S_TEXT, /* any string of at most S_IMAGE_REF_MAX characters */
} s_type_t;

typedef struct {
    const char *key;
    s_type_t type;
    bool required;
    double lo, hi;
    size_t off, cap; /* where in vem_rsd_t, and the size there for strings */
    const char *const *words;
} s_key_t;

static const char *const s_colors[] = {"blue",  "yellow", "green", "yellow_green",
                                       "white", "black",  NULL};
static const char *const s_fuels[] = {"diesel", "gasoline", "gas", "unknown", NULL};

#define S_STR(field) offsetof(vem_rsd_t, field), sizeof(((vem_rsd_t *)0)->field)
#define S_VAL(field) offsetof(vem_rsd_t, field), 0

/* Every key of a reading. The bounds are physical ranges: what an instrument can report at
 * all, wider than any limit or validity window (those are the rules' business). */
static const s_key_t s_keys[] = {
    {"version", S_VERSION, true, 1, 1, 0, 0, NULL},
    {"station_id", S_ID, true, 0, 0, S_STR(station_id), NULL},
    {"reading_id", S_ID, true, 0, 0, S_STR(reading_id), NULL},
    {"lane", S_INT, false, 1, 16, S_VAL(lane), NULL},
    {"time", S_TIME, true, 0, 0, S_VAL(time_us), NULL},
    {"plate", S_PLATE, true, 0, 0, S_STR(plate), NULL},
    {"plate_color", S_WORD, true, 0, 0, S_STR(plate_color), s_colors},
    {"vin", S_VIN, false, 0, 0, S_STR(vin), NULL},
    {"fuel", S_WORD, false, 0, 0, S_STR(fuel), s_fuels},
    {"speed_kmh", S_NUMBER, false, 0, 200, S_VAL(speed_kmh), NULL},
    {"accel_ms2", S_NUMBER, false, -10, 10, S_VAL(accel_ms2), NULL},
    {"vsp_kw_t", S_NUMBER, false, -100, 100, S_VAL(vsp_kw_t), NULL},
    {"opacity_pct", S_NUMBER, false, 0, 100, S_VAL(opacity_pct), NULL},
    {"k_m1", S_NUMBER, false, 0, 30, S_VAL(k_m1), NULL},
    {"ringelmann", S_INT, false, 0, 5, S_VAL(ringelmann), NULL},
    {"no_ppm", S_NUMBER, false, 0, 20000, S_VAL(no_ppm), NULL},
    {"co_pct", S_NUMBER, false, 0, 20, S_VAL(co_pct), NULL},
    {"hc_ppm", S_NUMBER, false, 0, 50000, S_VAL(hc_ppm), NULL},
    {"co2_pct", S_NUMBER, false, 0, 25, S_VAL(co2_pct), NULL},
    {"wind_ms", S_NUMBER, false, 0, 60, S_VAL(wind_ms), NULL},
    {"temp_c", S_NUMBER, false, -50, 60, S_VAL(temp_c), NULL},
    {"humidity_pct", S_NUMBER, false, 0, 100, S_VAL(humidity_pct), NULL},
    {"pressure_kpa", S_NUMBER, false, 50, 110, S_VAL(pressure_kpa), NULL},
    {"slope_pct", S_NUMBER, false, -30, 30, S_VAL(slope_pct), NULL},
    {"image_ref", S_TEXT, false, 0, 0, S_STR(image_ref), NULL},
    {"valid", S_BOOL, true, 0, 0, S_VAL(valid), NULL},
};
#define S_NKEYS (sizeof s_keys / sizeof s_keys[0])

static const char *const s_names[VEM_RSD_STATUS_COUNT] = {
    "ok",         "bad_json",     "bad_version", "unknown_key", "missing_key",
    "wrong_type", "out_of_range", "bad_value",   "bad_time",
};

const char *vem_rsd_status_name(vem_rsd_status_t st)
{
    return st < VEM_RSD_STATUS_COUNT ? s_names[st] : "unknown";
}

__attribute__((format(printf, 4, 5))) static vem_rsd_status_t
s_fail(vem_rsd_error_t *err, vem_rsd_status_t st, const char *key, const char *fmt, ...)
{
    err->status = st;
    snprintf(err->key, sizeof err->key, "%s", key);
    char text[180];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    snprintf(err->detail, sizeof err->detail, "%s%s%s", key, *key ? ": " : "", text);
    return st;
}

/* ---- forms ---------------------------------------------------------------------------------- */

/* Next code point of valid UTF-8 (jansson checked it) at *p; advances *p. */
static unsigned s_utf8(const unsigned char **p)
{
    const unsigned char *s = *p;
    unsigned c = s[0];
    int n = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    c &= n == 0 ? 0x7F : n == 1 ? 0x1F : n == 2 ? 0x0F : 0x07;
    for (int i = 1; i <= n; i++)
        c = c << 6 | (s[i] & 0x3F);
    *p = s + n + 1;
    return c;
}

static bool s_cjk(unsigned c)
{
    return c >= 0x4E00 && c <= 0x9FFF;
}

/* ^[\u4e00-\u9fff]?[A-Z0-9]{5,8}[\u4e00-\u9fff]?$ (GA 36 plates: province, then letters and
 * digits, then a class character such as 挂 or 学). */
static bool s_plate_form(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned c[16];
    size_t n = 0;
    while (*p && n < 16)
        c[n++] = s_utf8(&p);
    if (*p)
        return false;
    size_t i = 0, end = n;
    if (i < end && s_cjk(c[i]))
        i++;
    if (end > i && s_cjk(c[end - 1]))
        end--;
    if (end - i < 5 || end - i > 8)
        return false;
    for (; i < end; i++)
        if (!((c[i] >= 'A' && c[i] <= 'Z') || (c[i] >= '0' && c[i] <= '9')))
            return false;
    return true;
}

/* ^[A-HJ-NPR-Z0-9]{17}$ (ISO 3779: no I, O, Q). */
static bool s_vin_form(const char *s)
{
    if (strlen(s) != 17)
        return false;
    for (size_t i = 0; i < 17; i++) {
        char c = s[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
        if (!ok || c == 'I' || c == 'O' || c == 'Q')
            return false;
    }
    return true;
}

static size_t s_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

/* Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t s_days(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool s_digits(const char *s, size_t n, unsigned *v)
{
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (unsigned)(s[i] - '0');
    }
    return true;
}

/* YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM), a real date and time, to epoch us. */
static bool s_time(const char *s, int64_t *us)
{
    unsigned y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0;
    size_t n = strlen(s);
    if (n < 20 || !s_digits(s, 4, &y) || s[4] != '-' || !s_digits(s + 5, 2, &mo) || s[7] != '-' ||
        !s_digits(s + 8, 2, &d) || s[10] != 'T' || !s_digits(s + 11, 2, &h) || s[13] != ':' ||
        !s_digits(s + 14, 2, &mi) || s[16] != ':' || !s_digits(s + 17, 2, &sec))
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        size_t k = 0;
        p++;
        while (p[k] >= '0' && p[k] <= '9')
            k++;
        if (k < 1 || k > 6 || !s_digits(p, k, &frac))
            return false;
        for (size_t z = k; z < 6; z++)
            frac *= 10;
        p += k;
    }
    int sign = 0;
    if (*p == 'Z' && p[1] == '\0') {
        sign = 1;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && s_digits(p + 1, 2, &oh) &&
               p[3] == ':' && s_digits(p + 4, 2, &om)) {
        sign = *p == '+' ? 1 : -1;
    } else {
        return false;
    }
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || sec > 59 || oh > 14 || om > 59)
        return false;
    int64_t t = ((s_days(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
    t -= sign * (int64_t)(oh * 3600 + om * 60);
    *us = t * S_US + frac;
    return true;
}

void vem_rsd_iso(int64_t us, char *out, size_t cap)
{
    int64_t s = (us >= 0 ? us / S_US : -((-us + S_US - 1) / S_US)) + S_BEIJING_S;
    int64_t frac = us - (s - S_BEIJING_S) * S_US;
    int64_t days = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    int64_t rem = s - days * 86400;
    /* civil_from_days (H. Hinnant) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (frac)
        snprintf(out, cap, "%04lld-%02u-%02uT%02u:%02u:%02u.%06lld+08:00", (long long)y, m, d,
                 (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60),
                 (long long)frac);
    else
        snprintf(out, cap, "%04lld-%02u-%02uT%02u:%02u:%02u+08:00", (long long)y, m, d,
                 (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60));
}

/* ---- parsing -------------------------------------------------------------------------------- */

static const s_key_t *s_lookup(const char *key)
{
    for (size_t i = 0; i < S_NKEYS; i++)
        if (strcmp(s_keys[i].key, key) == 0)
            return &s_keys[i];
    return NULL;
}

static void s_defaults(vem_rsd_t *r)
{
    memset(r, 0, sizeof *r);
    r->lane = r->ringelmann = -1;
    r->speed_kmh = r->accel_ms2 = r->vsp_kw_t = NAN;
    r->opacity_pct = r->k_m1 = NAN;
    r->no_ppm = r->co_pct = r->hc_ppm = r->co2_pct = NAN;
    r->wind_ms = r->temp_c = r->humidity_pct = r->pressure_kpa = r->slope_pct = NAN;
    snprintf(r->fuel, sizeof r->fuel, "unknown");
}

static const char *s_type_name(s_type_t t)
{
    switch (t) {
    case S_NUMBER:
        return "a number";
    case S_INT:
    case S_VERSION:
        return "an integer";
    case S_BOOL:
        return "true or false";
    default:
        return "a string";
    }
}

/* Checks one present, non-null value and stores it. */
static vem_rsd_status_t s_value(const s_key_t *k, const json_t *v, vem_rsd_t *r,
                                vem_rsd_error_t *err)
{
    char *field = (char *)r + k->off;
    bool is_string = k->type == S_ID || k->type == S_TIME || k->type == S_PLATE ||
                     k->type == S_VIN || k->type == S_WORD || k->type == S_TEXT;
    if ((is_string && !json_is_string(v)) ||
        ((k->type == S_NUMBER || k->type == S_INT || k->type == S_VERSION) && !json_is_number(v)) ||
        (k->type == S_BOOL && !json_is_boolean(v)))
        return s_fail(err, VEM_RSD_WRONG_TYPE, k->key, "expected %s", s_type_name(k->type));
    if (k->type == S_BOOL) {
        *(bool *)field = json_is_true(v);
        return VEM_RSD_OK;
    }
    if (!is_string) {
        double x = json_number_value(v);
        if ((k->type == S_INT || k->type == S_VERSION) && x != floor(x))
            return s_fail(err, VEM_RSD_WRONG_TYPE, k->key, "expected an integer, got %g", x);
        if (k->type == S_VERSION) {
            if (x != VEM_RSD_VERSION)
                return s_fail(err, VEM_RSD_BAD_VERSION, k->key,
                              "version %g is not supported (this is version %d)", x,
                              VEM_RSD_VERSION);
            return VEM_RSD_OK;
        }
        if (!(x >= k->lo && x <= k->hi))
            return s_fail(err, VEM_RSD_OUT_OF_RANGE, k->key, "%g is outside %g..%g", x, k->lo,
                          k->hi);
        if (k->type == S_INT)
            *(int32_t *)field = (int32_t)x;
        else
            *(double *)field = x;
        return VEM_RSD_OK;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strlen(s) != len)
        return s_fail(err, VEM_RSD_BAD_VALUE, k->key, "contains a NUL character");
    switch (k->type) {
    case S_ID: {
        size_t max = k->cap - 1;
        if (len < 1 || len > max)
            return s_fail(err, VEM_RSD_OUT_OF_RANGE, k->key, "%zu characters, expected 1..%zu", len,
                          max);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7E)
                return s_fail(err, VEM_RSD_BAD_VALUE, k->key,
                              "only printable ASCII without spaces is allowed");
        break;
    }
    case S_TIME: {
        int64_t us;
        if (!s_time(s, &us))
            return s_fail(err, VEM_RSD_BAD_TIME, k->key,
                          "\"%.60s\" is not an ISO 8601 instant with offset "
                          "(YYYY-MM-DDTHH:MM:SS[.ffffff]+HH:MM)",
                          s);
        r->time_us = us;
        return VEM_RSD_OK;
    }
    case S_PLATE:
        if (len == 0)
            return s_fail(err, VEM_RSD_MISSING_KEY, k->key, "empty (plate not read)");
        if (!s_plate_form(s))
            return s_fail(err, VEM_RSD_BAD_VALUE, k->key,
                          "\"%.40s\" is not a licence plate (province character, 5 to 8 "
                          "letters and digits, class character)",
                          s);
        break;
    case S_VIN:
        if (!s_vin_form(s))
            return s_fail(err, VEM_RSD_BAD_VALUE, k->key,
                          "\"%.40s\" is not a VIN (17 of 0-9 and A-Z without I, O, Q)", s);
        break;
    case S_WORD: {
        bool found = false;
        for (const char *const *w = k->words; *w && !found; w++)
            found = strcmp(*w, s) == 0;
        if (!found) {
            char list[120] = "";
            for (const char *const *w = k->words; *w; w++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         w == k->words ? "" : ", ", *w);
            char text[200];
            snprintf(text, sizeof text, "\"%.30s\" is not one of %s", s, list);
            return s_fail(err, VEM_RSD_BAD_VALUE, k->key, "%s", text);
        }
        break;
    }
    default: /* S_TEXT */
        if (s_chars(s) > S_IMAGE_REF_MAX)
            return s_fail(err, VEM_RSD_OUT_OF_RANGE, k->key, "%zu characters, at most %d",
                          s_chars(s), S_IMAGE_REF_MAX);
        break;
    }
    snprintf(field, k->cap, "%s", s);
    return VEM_RSD_OK;
}

vem_rsd_status_t vem_rsd_parse(const uint8_t *data, size_t len, int64_t now_us, int64_t future_s,
                               vem_rsd_t *out, vem_rsd_error_t *err)
{
    memset(err, 0, sizeof *err);
    s_defaults(out);
    json_error_t jerr;
    json_t *o = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o)
        return s_fail(err, VEM_RSD_BAD_JSON, "", "%s at character %d", jerr.text, jerr.position);
    vem_rsd_status_t st = VEM_RSD_OK;
    if (!json_is_object(o)) {
        st = s_fail(err, VEM_RSD_BAD_JSON, "", "expected one JSON object");
        goto done;
    }
    /* the ids first, so even a refusal can name the reading it refuses */
    const json_t *id = json_object_get(o, "station_id");
    if (json_is_string(id) && json_string_length(id) < sizeof out->station_id)
        snprintf(out->station_id, sizeof out->station_id, "%s", json_string_value(id));
    id = json_object_get(o, "reading_id");
    if (json_is_string(id) && json_string_length(id) < sizeof out->reading_id)
        snprintf(out->reading_id, sizeof out->reading_id, "%s", json_string_value(id));
    const json_t *version = json_object_get(o, "version");
    if (!version || json_is_null(version)) {
        st = s_fail(err, VEM_RSD_BAD_VERSION, "version", "missing (expected %d)", VEM_RSD_VERSION);
        goto done;
    }
    /* every key of the message is one of the table's unless it has more keys than the table
     * finds: only then look for the stranger (most messages take the cheap way) */
    const char *key;
    json_t *v, *found[S_NKEYS];
    size_t present = 0;
    for (size_t i = 0; i < S_NKEYS; i++)
        present += (found[i] = json_object_get(o, s_keys[i].key)) != NULL;
    json_object_foreach(o, key, v)
    {
        if (present == json_object_size(o))
            break;
        if (!s_lookup(key)) {
            char shown[32];
            snprintf(shown, sizeof shown, "%s", key);
            st = s_fail(err, VEM_RSD_UNKNOWN_KEY, shown, "not a key of a reading (FIELDS.md)");
            goto done;
        }
    }
    for (size_t i = 0; i < S_NKEYS; i++) {
        const s_key_t *k = &s_keys[i];
        v = found[i];
        if (!v || json_is_null(v)) {
            if (k->required) {
                st = s_fail(err, VEM_RSD_MISSING_KEY, k->key, "required");
                goto done;
            }
            continue;
        }
        if ((st = s_value(k, v, out, err)) != VEM_RSD_OK)
            goto done;
    }
    char when[48];
    if (out->time_us < S_Y2000_US || out->time_us > now_us + future_s * S_US)
        vem_rsd_iso(out->time_us, when, sizeof when);
    if (out->time_us < S_Y2000_US)
        st = s_fail(err, VEM_RSD_BAD_TIME, "time", "%s is before 2000", when);
    else if (out->time_us > now_us + future_s * S_US)
        st = s_fail(err, VEM_RSD_BAD_TIME, "time",
                    "%s is %lld s after its receipt (tolerance %lld s)", when,
                    (long long)((out->time_us - now_us) / S_US), (long long)future_s);
done:
    json_decref(o);
    return st;
}

unsigned vem_rsd_depth(const uint8_t *data, size_t len, unsigned limit)
{
    unsigned depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < len && deepest <= limit; i++) {
        uint8_t c = data[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character cannot end the string */
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > deepest)
                deepest = depth;
        } else if ((c == '}' || c == ']') && depth) {
            depth--;
        }
    }
    return deepest;
}

/* ---- normalized form ------------------------------------------------------------------------ */

json_t *vem_rsd_json(const vem_rsd_t *r)
{
    json_t *o = json_object();
    for (size_t i = 0; i < S_NKEYS; i++) {
        const s_key_t *k = &s_keys[i];
        const char *field = (const char *)r + k->off;
        json_t *v;
        switch (k->type) {
        case S_VERSION:
            v = json_integer(VEM_RSD_VERSION);
            break;
        case S_TIME: {
            char when[48];
            vem_rsd_iso(r->time_us, when, sizeof when);
            v = json_string(when);
            break;
        }
        case S_BOOL:
            v = json_boolean(*(const bool *)field);
            break;
        case S_INT: {
            int32_t x = *(const int32_t *)field;
            v = x >= 0 ? json_integer(x) : json_null();
            break;
        }
        case S_NUMBER: {
            double x = *(const double *)field;
            v = isnan(x) ? json_null() : json_real(x);
            break;
        }
        default:
            v = *field ? json_string(field) : json_null();
            break;
        }
        json_object_set_new(o, k->key, v);
    }
    return o;
}
