/* pgrows — decoded frames as rows of PostgreSQL's binary COPY format, ready to stream.
 *
 * The PostgreSQL sink turns each record the workers hand it (records.h) into rows here
 * (obd_frames, obd_info, terminal_events, quarantine, violations, rsd_readings; columns and names
 * as schema/0001_core.sql, 0007_frames.sql and FIELDS.md) and streams them to the server as they
 * are. A batch also
 * remembers the Beijing days its rows fall on, so the sink can make sure their daily
 * partitions exist before it copies.
 *
 * Pure: no I/O. A vem_pgrows_t belongs to one thread. */
#ifndef VEM_PGROWS_H
#define VEM_PGROWS_H

#include "hj1239.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    VEM_PGROWS_SAMPLES = 0, /* obd_frames: a frame's samples in one row, read through obd_samples */
    VEM_PGROWS_INFO,        /* obd_info */
    VEM_PGROWS_EVENTS,      /* terminal_events */
    VEM_PGROWS_QUARANTINE,  /* quarantine */
    VEM_PGROWS_VIOLATIONS,  /* violations: upserted by violation_id (a verdict may grow) */
    VEM_PGROWS_READINGS,    /* rsd_readings */
    VEM_PGROWS_TABLES
} vem_pgrows_table_t;

/* Distinct days one batch may carry; a worker sends its message before it would overflow. */
#define VEM_PGROWS_MAX_DAYS 256

/* Longest text a row keeps (bytes): room for a quarantine detail in full, the decoder's
 * (VEM_HJ1239_DETAIL_LEN), a worker's (VEM_INPUT_DETAIL_MAX) or the server's error text
 * (pgwrite: at most 768); longer text is cut there. */
#define VEM_PGROWS_TEXT_MAX 1024
/* Bytes of one sample's full record at most (layout in pgrows.c); a frame's records may stop
 * earlier. obd_frames.samples holds them packed (schema/0012_frames_packed.sql): a head of
 * VEM_PGROWS_PACK_HEAD bytes, then records VEM_PGROWS_PACK_SAVES bytes shorter (rec_len). */
#define VEM_PGROWS_SAMPLE_BYTES 76
#define VEM_PGROWS_PACK_HEAD    16
#define VEM_PGROWS_PACK_SAVES   14

/* A frame is "wide" when a sample's time lies more than this from the frame's time; the
 * bounded read vem_samples() finds narrow frames by frame time within this span of its range,
 * wide ones through their own index. Must match schema/0007_frames.sql. */
#define VEM_PGROWS_FRAME_SPAN_S 3600

/* Where an obd_frames row's sample count (int2, its first column) starts in its COPY bytes. */
#define VEM_PGROWS_NSAMPLES_AT 6

/* Room for one sample's invalid (or abnormal) field names joined by commas. */
#define VEM_PGROWS_NAMES_CAP 640

/* A growable byte buffer. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
} vem_pgrows_buf_t;

/* Appends n bytes (aborts when out of memory, like every allocation in vemd). */
void vem_pgrows_buf_put(vem_pgrows_buf_t *b, const void *p, size_t n);

/* Frees the bytes and zeroes the buffer. */
void vem_pgrows_buf_free(vem_pgrows_buf_t *b);

typedef struct {
    vem_pgrows_buf_t rows[VEM_PGROWS_TABLES];
    uint32_t nrows[VEM_PGROWS_TABLES]; /* rows; VEM_PGROWS_SAMPLES: frames */
    uint64_t samples;                  /* samples in the obd_frames rows */
    int32_t days[VEM_PGROWS_MAX_DAYS]; /* Beijing days since 1970-01-01, unordered, distinct */
    uint32_t ndays;
    /* scratch of one frame */
    uint8_t recs[VEM_HJ1239_MAX_BLOCKS][VEM_PGROWS_SAMPLE_BYTES];
    char invalid[VEM_HJ1239_MAX_BLOCKS][VEM_PGROWS_NAMES_CAP];
    char abnormal[VEM_HJ1239_MAX_BLOCKS][VEM_PGROWS_NAMES_CAP];
} vem_pgrows_t;

/* Table name ("obd_frames", "obd_info", ...). */
const char *vem_pgrows_table_name(vem_pgrows_table_t t);

/* The COPY statement that takes the table's rows (FORMAT binary, explicit column list). */
const char *vem_pgrows_copy_sql(vem_pgrows_table_t t);

/* Columns per row of the table. */
unsigned vem_pgrows_table_columns(vem_pgrows_table_t t);

/* Empties the rows and days, keeping the memory. */
void vem_pgrows_reset(vem_pgrows_t *r);

/* Frees the buffers. */
void vem_pgrows_free(vem_pgrows_t *r);

/* True when the batch should be sent before another frame is added (days nearly full). */
bool vem_pgrows_full(const vem_pgrows_t *r);

/* Rows of a decoded frame: for real-time and re-sent frames one obd_frames row holding a
 * sample per 1 Hz sample block (stream, twc, twc_nox), each carrying also the fields of the
 * hybrid and supplementary blocks of the same instant (a hybrid or supplementary block without
 * one is a sample of its own), and an obd_info row per OBD block; an event row for login,
 * logout, removal alarm and activation. Time sync and activation replies make no row. Returns
 * the rows added (a frame's samples count as one row). */
unsigned vem_pgrows_frame(vem_pgrows_t *r, const vem_hj1239_frame_t *f, int64_t received_us);

/* Which sample block j of a real-time frame belongs to: j itself for a stream, twc or twc_nox
 * block (and for a hybrid or supplementary block with no such block to join), the block it is
 * joined to for a hybrid or supplementary block, SIZE_MAX for OBD and vendor blocks. One
 * definition of a sample for every sink: an obd_samples row, a Kafka sample event. */
size_t vem_pgrows_sample_of(const vem_hj1239_frame_t *f, size_t j);

/* A violation as the rules engine gives it (FIELDS.md keys); strings NUL-terminated, vin,
 * plate or plate_color may be NULL, measured/limit NaN when there is none, evidence a JSON
 * text. received_us and spool_seq: the input whose judgement made this emission (received_us 0: not
 * known), and emission its place among the verdicts the worker emitted since that input began
 * (its own first, then those of the clock and stored history after it), which order the
 * emissions of one id
 * (schema/0016_merge_by_input.sql). */
typedef struct {
    const char *violation_id, *rule, *clause, *vin, *plate, *plate_color, *unit, *severity,
        *evidence;
    int64_t first_us, last_us, received_us;
    uint64_t spool_seq;
    int64_t emission;
    double measured, limit;
} vem_pgviolation_t;

/* A violations row. */
void vem_pgrows_violation(vem_pgrows_t *r, const vem_pgviolation_t *v);

/* A quarantine row: the raw bytes, why they were rejected and where they came from. vin may
 * be NULL (not known); offset < 0 for none; detail kept up to VEM_PGROWS_TEXT_MAX bytes. */
void vem_pgrows_quarantine(vem_pgrows_t *r, int64_t received_us, uint64_t spool_seq,
                           const char *source, const char *error_class, const char *detail,
                           int32_t offset, const uint8_t *vin, const uint8_t *raw, size_t len);

/* An rsd_readings row from a reading (FIELDS.md keys) with vemd's additions laid over it
 * (records.h READING: vin, time_us, counted, invalid_reason). False (nothing added) when
 * station_id, reading_id or time_us is missing. */
bool vem_pgrows_reading(vem_pgrows_t *r, const json_t *reading, int64_t received_us);

#endif
