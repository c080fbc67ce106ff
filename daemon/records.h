/* records — what workers hand to sinks: sink-neutral records, one message per worker batch.
 *
 * The workers know no sink. For every spool input they finish they emit exactly one record,
 * tagged with the spool seqs it settles, and every sink turns the records into its own form
 * (COPY rows, JSON events): adding a sink adds a module, not a change to the worker.
 *
 *   FRAME       a whole frame the worker decoded and accepted (not a duplicate): the frame's
 *               bytes exactly as received; a sink decodes them again with the pure parser. Its
 *               status is the worker's verdict on the frame's SM2 signature
 *               (vem_record_sig_t: 0 when not checked), so every sink can say whether the
 *               evidence is signed; under terminals.signatures = flag a frame that did not
 *               verify also has an `unverified` QUARANTINE record beside it (PostgreSQL's route)
 *   QUARANTINE  an input rejected with a class (vem_hj1239_status_t name), a detail, a stream
 *               offset and, when known, the VIN: the bytes to keep as evidence
 *   SETTLED     an input that yields nothing for the sinks (a duplicate, a time sync): only
 *               settles its seqs, so every sink's cursor can pass it
 *   VIOLATION   a verdict of the rules on this input: the violation as JSON with the keys of
 *               FIELDS.md plus first_us/last_us (Unix microseconds); it comes beside the
 *               input's own record and bears its seq, but settles nothing: a verdict of the
 *               clock (silence, a day's completeness, stored history) bears the seq of the last
 *               input judged, in a later message than that input's own record. A sink settles
 *               a message's seqs only once it and every message before it are stored, so that
 *               the next input's record being settled means the verdict is stored (the
 *               workers' checkpoints rely on it: worker.c, s_ckpt_settle)
 *   READING     a roadside reading the worker accepted: the data is the reading exactly as the
 *               station sent it (one JSON object with FIELDS.md keys, checked by parsers/rsd:
 *               vem_rsd_parse + vem_rsd_json give its normalized form); the detail is a JSON
 *               object of what vemd adds: "vin" (the registry's for the plate, or the
 *               station's; null when neither knows), "time_us" (the measurement instant, Unix
 *               microseconds), "counted" (valid for the rules: the station's flag, vemd's HJ 845
 *               window and a known fuel) and "invalid_reason" (null when counted)
 *
 * A record settles the seqs seq .. seq + nseqs - 1: one input normally, a run of unreadable
 * spool records when the spool stepped over damage. A message is a header, then the records,
 * each a fixed header followed by detail and data; everything little-endian host order (the
 * messages never leave the process, except through a sink's spill file, which is per host).
 *
 * Pure: no I/O. A vem_records_t belongs to one thread; parsing reads the message in place. */
#ifndef VEM_RECORDS_H
#define VEM_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    VEM_RECORD_FRAME = 1,
    VEM_RECORD_QUARANTINE = 2,
    VEM_RECORD_SETTLED = 3,
    VEM_RECORD_VIOLATION = 4,
    VEM_RECORD_READING = 5,
} vem_record_kind_t;

/* Quarantine classes of the daemon's own, beyond the frame decoder's (vem_hj1239_status_t). */
enum {
    VEM_RECORD_CLASS_SPOOL_DAMAGED = 100, /* spool records unreadable on disk, stepped over */
    VEM_RECORD_CLASS_TOO_LARGE = 101,     /* an input over its size limit: size noted, not kept */
    VEM_RECORD_CLASS_BAD_VIN = 102,       /* a header VIN that is not 17 printable ASCII */
    /* signatures and bindings (README "Signatures"); 103..109 */
    VEM_RECORD_CLASS_BAD_SIGNATURE = 103,  /* signature not of the frame by the VIN's key */
    VEM_RECORD_CLASS_UNSIGNED = 104,       /* a VIN with a key sent a frame without signature */
    VEM_RECORD_CLASS_NO_KEY = 105,         /* signatures enforced, the VIN has no activated chip */
    VEM_RECORD_CLASS_CHIP_ACTIVATED = 106, /* activation of a chip another VIN holds */
    VEM_RECORD_CLASS_VIN_ERROR = 107,  /* activation with a wrong VIN, or of a VIN with a chip */
    VEM_RECORD_CLASS_VIN_SWITCH = 108, /* a frame for another VIN on a bound connection */
    VEM_RECORD_CLASS_UNVERIFIED = 109, /* stored (signatures = flag) but not verified: a
                                        * QUARANTINE record beside the FRAME record */
    VEM_RECORD_CLASS_RSD = 110, /* 110 + vem_rsd_status_t: a roadside reading refused (rsd.h) */
    VEM_RECORD_CLASS_RSD_END = 119,
    VEM_RECORD_CLASS_TOO_MANY_ACTIVATIONS = 120, /* over terminals.activations_per_s: not judged */
    VEM_RECORD_CLASS_STATION_KEY = 121, /* a station id its CURVE key may not deliver for */
    VEM_RECORD_CLASS_KEY_REUSED = 122,  /* activation filing a key another chip holds */
};

/* Name of a quarantine class: the decoder's (FIELDS.md), the roadside parser's or the daemon's
 * own; static string. */
const char *vem_records_class_name(uint8_t status);

/* A FRAME record's status: the worker's check of the frame's SM2 signature. NONE when nothing
 * was checked (terminals.signatures = off, or a command that is not signed); the others are
 * the results of vem_signature_checks_total and the Kafka events' "signature_check". */
typedef enum {
    VEM_RECORD_SIG_NONE = 0,
    VEM_RECORD_SIG_VERIFIED = 1,      /* signed by the key of the VIN's activated chip */
    VEM_RECORD_SIG_BAD_SIGNATURE = 2, /* a signature that does not verify with that key */
    VEM_RECORD_SIG_UNSIGNED = 3,      /* no signature, from a VIN with a key */
    VEM_RECORD_SIG_NO_KEY = 4,        /* the VIN has no activated chip */
    VEM_RECORD_SIGS
} vem_record_sig_t;

/* Name of a signature result ("verified", "bad_signature", "unsigned", "no_key"); NULL for
 * VEM_RECORD_SIG_NONE and anything unknown. Static string. */
const char *vem_records_sig_name(uint8_t sig);

/* One record; on parse, detail and data point into the message. */
typedef struct {
    uint64_t seq;        /* first spool seq settled */
    uint32_t nseqs;      /* seqs settled (>= 1) */
    uint16_t kind;       /* vem_record_kind_t */
    uint8_t source;      /* vem_source_t */
    uint8_t status;      /* QUARANTINE: vem_hj1239_status_t of the rejection; FRAME:
                          * vem_record_sig_t; other kinds: 0 */
    int64_t received_us; /* receipt time of the input */
    int32_t offset;      /* QUARANTINE: where the problem is (-1: nowhere in particular) */
    bool has_vin;
    char vin[18]; /* QUARANTINE: the VIN when the envelope got that far, NUL-terminated */
    const char *detail;
    uint16_t detail_len;
    const uint8_t *data;
    uint32_t data_len;
} vem_record_t;

/* A message under construction. */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
    uint32_t count;
    int64_t oldest_us;
} vem_records_t;

/* Header of a message. */
typedef struct {
    uint32_t magic; /* VEM_RECORDS_MAGIC */
    uint32_t count; /* records that follow */
    int64_t oldest_us;
    uint64_t first_seq, last_seq; /* lowest seq and highest seq settled */
} vem_records_hdr_t;

#define VEM_RECORDS_MAGIC 0x56524531u /* "VRE1" */

/* Appends one record (copies detail and data). */
void vem_records_add(vem_records_t *r, const vem_record_t *rec);

/* The message bytes (header filled in) and their length; valid until the next add/reset. */
const uint8_t *vem_records_message(vem_records_t *r, size_t *len);

/* Empties the message, keeping the memory. */
void vem_records_reset(vem_records_t *r);

/* Frees the memory and zeroes r. */
void vem_records_free(vem_records_t *r);

/* Checks a message's header and sizes; false when it is not a well-formed message. */
bool vem_records_parse(const uint8_t *p, size_t len, vem_records_hdr_t *hdr);

/* Reads the record at *off (start with 0) into rec and advances *off; false at the end. Call
 * only on a message vem_records_parse accepted. */
bool vem_records_next(const uint8_t *p, size_t len, size_t *off, vem_record_t *rec);

#endif
