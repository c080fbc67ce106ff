/* rsd — one roadside remote-sensing reading (HJ 845-2017) as a station sends it: JSON bytes in,
 * a checked struct or a precise error (class, offending key, reason) out.
 *
 * The message is one JSON object with the keys of FIELDS.md (roadside section) and "version"
 * (1); schema/rsd_reading.schema.json describes it and tests/check_rsd.c keeps the two in step
 * with an independent validator. Required: version, station_id, reading_id, time, plate,
 * plate_color, valid. Every other key may be absent or null (not reported). Unknown keys,
 * wrong types, values outside their physical range, a malformed plate or VIN, an unknown
 * plate colour or fuel, a time before 2000 or more than the caller's tolerance after "now"
 * are errors; the first one found is reported.
 *
 * Pure: no I/O, no clock (the caller passes "now": ingest its receipt time, so a replay of the
 * spool decides as live intake did), no globals. jansson parses the bytes. */
#ifndef VEM_RSD_H
#define VEM_RSD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VEM_RSD_VERSION 1

typedef enum {
    VEM_RSD_OK = 0,
    VEM_RSD_BAD_JSON,     /* not one well-formed JSON object (or a key twice) */
    VEM_RSD_BAD_VERSION,  /* version missing or not one this parser knows */
    VEM_RSD_UNKNOWN_KEY,  /* a key FIELDS.md does not list */
    VEM_RSD_MISSING_KEY,  /* a required key absent or null */
    VEM_RSD_WRONG_TYPE,   /* a value of the wrong JSON type */
    VEM_RSD_OUT_OF_RANGE, /* a number outside its physical range, a string too long */
    VEM_RSD_BAD_VALUE,    /* not one of the allowed words, or not the required form */
    VEM_RSD_BAD_TIME,     /* not an ISO 8601 instant with offset, before 2000, or in the future */
    VEM_RSD_STATUS_COUNT
} vem_rsd_status_t;

/* Class name as quarantine rows and rejections show it ("unknown_key", ...); static. */
const char *vem_rsd_status_name(vem_rsd_status_t st);

/* Why a reading was refused. key is "" when no single key is at fault (bad_json). */
typedef struct {
    vem_rsd_status_t status;
    char key[32];
    char detail[200];
} vem_rsd_error_t;

/* A checked reading. Numbers not reported are NaN; lane and ringelmann -1 when not reported;
 * strings "" when not reported. */
typedef struct {
    char station_id[32];
    char reading_id[64];
    int32_t lane;
    int64_t time_us; /* epoch microseconds */
    char plate[16];  /* UTF-8, at most 14 bytes by its form */
    char plate_color[16];
    char vin[18];
    char fuel[12]; /* "unknown" when not reported */
    double speed_kmh, accel_ms2, vsp_kw_t;
    double opacity_pct, k_m1;
    int32_t ringelmann;
    double no_ppm, co_pct, hc_ppm, co2_pct;
    double wind_ms, temp_c, humidity_pct, pressure_kpa, slope_pct;
    char image_ref[1024]; /* at most 255 characters */
    bool valid;
} vem_rsd_t;

/* Checks len bytes of JSON as one reading, now_us being the receipt time and future_s the
 * tolerance for a time after it. VEM_RSD_OK with *out filled, or the error in *err (out is
 * then partly filled: station_id and reading_id when they were read, for the rejection). */
vem_rsd_status_t vem_rsd_parse(const uint8_t *data, size_t len, int64_t now_us, int64_t future_s,
                               vem_rsd_t *out, vem_rsd_error_t *err);

/* The deepest nesting of objects and arrays in len bytes of JSON text (strings skipped),
 * counted only up to limit + 1: a cheap bound to check before a parser recurses. */
unsigned vem_rsd_depth(const uint8_t *data, size_t len, unsigned limit);

/* The reading as an object with every FIELDS.md roadside key (null when not reported) and
 * time as ISO 8601 Beijing time; new reference, caller owns. */
json_t *vem_rsd_json(const vem_rsd_t *r);

/* Epoch microseconds as "YYYY-MM-DDTHH:MM:SS[.ffffff]+08:00" into out (at least 40 bytes). */
void vem_rsd_iso(int64_t us, char *out, size_t cap);

#endif
