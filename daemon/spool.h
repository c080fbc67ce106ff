/* spool — the on-disk input log that makes "nothing received is lost" true.
 *
 * Every input (a whole terminal frame, a gateway frame, a roadside reading, a quarantined
 * byte run) is appended here before it is processed, and gets a sequence number. Sinks move
 * a named cursor only when their output is durable; restart replays everything after the
 * lowest cursor, and the idempotent keys downstream make the replay harmless. A full spool
 * refuses appends, so the ingest thread stops reading its sockets: backpressure, not loss.
 *
 * Appends only copy into memory; a flush makes them durable, and only what is durable
 * (vem_spool_durable_seq) may be acknowledged to a sender or handed to a sink. A failed flush
 * loses nothing: the records stay pending and the next flush writes them with the same seqs.
 *
 * Ownership: a vem_spool_t belongs to one thread (ingest), which appends and trims. Each
 * sink owns its vem_spool_cursor_t. Readers (replay) open their own descriptors. */
#ifndef VEM_SPOOL_H
#define VEM_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vem_spool vem_spool_t;
typedef struct vem_spool_reader vem_spool_reader_t;
typedef struct vem_spool_cursor vem_spool_cursor_t;

/* One record. On append the spool sets seq; meta and data are copied (either may be NULL
 * when its length is 0). On read, meta and data point into the reader's buffer and stay valid
 * until the next read. */
typedef struct {
    uint64_t seq;        /* 1, 2, 3 ... in append order, never reused */
    int64_t received_us; /* receipt time, microseconds since the Unix epoch */
    uint16_t kind;       /* what the bytes are (VEM_SPOOL_KIND_*) */
    const uint8_t *meta; /* where it came from, e.g. "tcp 127.0.0.1:40122" */
    uint16_t meta_len;
    const uint8_t *data; /* the input bytes exactly as received */
    uint32_t data_len;
    uint32_t lost; /* VEM_SPOOL_READ_DAMAGED: seqs seq .. seq + lost - 1 are unreadable; else 0 */
} vem_spool_rec_t;

enum {
    VEM_SPOOL_KIND_OBD_FRAME = 1,   /* one whole HJ 1239 / GB 17691 frame */
    VEM_SPOOL_KIND_RSD_READING = 2, /* one roadside reading */
    VEM_SPOOL_KIND_QUARANTINE = 3,  /* bytes rejected before they became a frame */
};

typedef struct {
    uint64_t max_bytes;     /* appends beyond this total (on disk + pending) fail with ENOSPC */
    uint64_t segment_bytes; /* a record that would take a segment past this starts a new one */
    bool fsync;             /* vem_spool_flush() also fdatasyncs ("durable" means written when
                               false) */
} vem_spool_opts_t;

/* 0 when opts can work; -1 with a message in err otherwise (max_bytes below twice
 * segment_bytes: the active segment is never trimmed, so such a spool can stall for good). */
int vem_spool_opts_check(const vem_spool_opts_t *opts, char *err, size_t errlen);

/* Opens (creating) the spool in dir; recovers a torn tail. NULL with a message in err, also
 * when a segment's name is damaged: it starts 2^32 seqs or more after the one before it, or
 * its first record is intact and carries another seq (the message names the file and both
 * seqs, and the file is left as it is). */
vem_spool_t *vem_spool_open(const char *dir, const vem_spool_opts_t *opts, char *err,
                            size_t errlen);

/* Flushes (best effort), closes and frees the spool; accepts NULL; sets *self_p to NULL. */
void vem_spool_destroy(vem_spool_t **self_p);

/* Copies rec into memory as pending and sets rec->seq; does no I/O, so it works while the
 * disk fails: durability is decided by vem_spool_flush. -1 with errno: ENOSPC when the total
 * with pending bytes would pass max_bytes, EMSGSIZE when rec can never fit (data_len over
 * 16 MiB, or 28 + meta_len + data_len over max_bytes / 2). */
int vem_spool_append(vem_spool_t *self, vem_spool_rec_t *rec);

/* Writes every pending record and, when opts.fsync, fdatasyncs; rolls to a new segment first
 * (opened before the old one is closed) when a record would not fit. 0: every record appended
 * so far is durable. -1 with errno on any failure: what this flush wrote past the last durable
 * offset is cut off, a segment it created is removed, and the records not yet durable stay
 * pending with their seqs for the next call (those up to vem_spool_durable_seq() may have
 * become durable all the same). */
int vem_spool_flush(vem_spool_t *self);

/* True when a record with data_len + meta_len payload bytes fits under max_bytes, counting
 * pending bytes. */
bool vem_spool_has_room(const vem_spool_t *self, size_t payload_len);

/* Removes whole segments all of whose records have seq <= upto (durable in every sink). */
int vem_spool_trim(vem_spool_t *self, uint64_t upto);

/* Sequence number the next append will get. */
uint64_t vem_spool_next_seq(const vem_spool_t *self);

/* Last seq made durable (0 when none): the highest a consumer may be told about. */
uint64_t vem_spool_durable_seq(const vem_spool_t *self);

/* First seq the spool still holds: the first segment's first seq (next_seq when empty). */
uint64_t vem_spool_first_seq(const vem_spool_t *self);

/* Bytes appended but not yet durable (held in memory). */
uint64_t vem_spool_pending_bytes(const vem_spool_t *self);

/* Bytes in all segments plus pending bytes. */
uint64_t vem_spool_bytes(const vem_spool_t *self);

/* Result of a read. */
typedef enum {
    VEM_SPOOL_READ_ERROR = -1,  /* I/O error (errno; EUCLEAN: a segment's name is damaged) */
    VEM_SPOOL_READ_END = 0,     /* nothing more with seq <= upto on disk (yet) */
    VEM_SPOOL_READ_RECORD = 1,  /* *rec is the next record */
    VEM_SPOOL_READ_DAMAGED = 2, /* seqs rec->seq .. rec->seq + rec->lost - 1 are unreadable */
} vem_spool_read_t;

/* Meta of a VEM_SPOOL_READ_DAMAGED report. */
#define VEM_SPOOL_DAMAGED_META "spool-damaged"

/* Opens a reader at the first record with seq >= from (1 = everything kept; a from below the
 * first seq on disk starts at the first record on disk). NULL with a message in err and the
 * cause in errno, EUCLEAN when the segment it starts in is misnamed (see vem_spool_open) or a
 * segment's name is out of step with the one before; entering a later misnamed one,
 * vem_spool_reader_next returns ERROR with EUCLEAN. */
vem_spool_reader_t *vem_spool_reader_new(const char *dir, uint64_t from, char *err, size_t errlen);

/* Reads the next record with seq <= upto (UINT64_MAX: all on disk; the daemon passes
 * vem_spool_durable_seq so it never reads what is not synced yet). After END, call again as
 * the spool grows: reading goes on where it stopped, across later segments. Empty segments
 * are stepped over. Where the next record is unreadable (bad CRC, impossible length, wrong
 * seq, missing segment) but an intact one follows, returns DAMAGED once: rec->seq and
 * rec->lost say which seqs are lost, kind is VEM_SPOOL_KIND_QUARANTINE, meta
 * VEM_SPOOL_DAMAGED_META, data the first 64 KiB at most of the damaged bytes (none for a
 * missing segment), received_us that of the record read before it (0 if none); the next call
 * returns the intact record. Damage with nothing intact after it is END. */
vem_spool_read_t vem_spool_reader_next(vem_spool_reader_t *self, uint64_t upto,
                                       vem_spool_rec_t *rec);

/* Frees the reader; accepts NULL; sets *self_p to NULL. */
void vem_spool_reader_destroy(vem_spool_reader_t **self_p);

/* Opens the named cursor of a consumer (e.g. "pg", "kafka") in dir; a new one is at 0. NULL
 * with a message in err when its file cannot be read or is not one decimal seq (damage). */
vem_spool_cursor_t *vem_spool_cursor_open(const char *dir, const char *name, char *err,
                                          size_t errlen);

/* Last committed position: every record with seq <= it is durable in that consumer. */
uint64_t vem_spool_cursor_get(const vem_spool_cursor_t *self);

/* Durably moves the cursor to seq (write, fdatasync, rename); never moves it backwards. On -1
 * (errno) the cursor is not moved (get still returns the old seq): do not acknowledge. */
int vem_spool_cursor_commit(vem_spool_cursor_t *self, uint64_t seq);

/* Frees the cursor; accepts NULL; sets *self_p to NULL. */
void vem_spool_cursor_destroy(vem_spool_cursor_t **self_p);

/* One segment file as vem_spool_inspect finds it. */
typedef struct {
    uint64_t first_seq; /* from its name: seg-<first_seq>.log */
    uint64_t bytes;
} vem_spool_segment_info_t;

/* One consumer's cursor file, cursor.<name>. */
typedef struct {
    char name[64];
    uint64_t seq; /* every record with seq <= it is durable in that consumer */
} vem_spool_consumer_info_t;

/* What a spool directory holds. */
typedef struct {
    vem_spool_segment_info_t *segments; /* ascending */
    size_t n_segments;
    vem_spool_consumer_info_t *consumers; /* by name */
    size_t n_consumers;
    uint64_t bytes;               /* in all segments */
    uint64_t first_seq, last_seq; /* first and last intact record; first = last + 1 if none */
    int64_t first_us, last_us;    /* their receipt times; 0 when there is no record */
} vem_spool_info_t;

/* Fills *out (caller frees with vem_spool_info_free) from the spool in dir, reading only: safe
 * while vemd runs. 0, or -1 with a message in err (a damaged segment name as vem_spool_open
 * words it). */
int vem_spool_inspect(const char *dir, vem_spool_info_t *out, char *err, size_t errlen);

/* Frees what vem_spool_inspect put in *info and zeroes it; accepts a zeroed one. */
void vem_spool_info_free(vem_spool_info_t *info);

/* Sets *us to the receipt time of the first intact record with seq >= seq in the spool in dir
 * (that record itself unless it is damaged). 0, or -1 with errno (ENOENT: none on disk). */
int vem_spool_received_us(const char *dir, uint64_t seq, int64_t *us);

#endif
