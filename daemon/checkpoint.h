/* checkpoint — a worker's rule state on disk, so a restart or a kill -9 does not change verdicts.
 *
 * A trip's NOx windows, a run of minutes towards obd.reagent_empty, a roadside chain: rule
 * state spans hours of data, far more than it would be reasonable to replay from the spool at
 * every start. So each worker writes the states of its vehicles now and then, and restart
 * replays only what came after: the workers acknowledge each checkpoint as consumer
 * VEM_CONSUMER_RULES, which holds the spool back to it.
 *
 * One file per worker, SPOOL_DIR/rules.<worker>.ckpt, replaced whole and atomically (temp file,
 * fdatasync, rename, directory fsync), so a crash leaves the previous checkpoint or the new
 * one, never a mix. Layout (host byte order: the file is read back on the host that wrote it):
 *   header   magic "VCK1", version, workers, index (u32 each), through (u64), count (u64)
 *   entries  count x { key (17 bytes), applied (u64), len (u32), len bytes of
 *                      vem_rules_vehicle_save }
 * key: the VIN, or for a vehicle known only by its plate (roadside readings the registry does
 * not map), '#' and the plate's bytes padded with NULs (version 2; version 1 files, VINs only,
 * are read as well).
 *   trailer  count again (u64), CRC-32 (zlib) of everything before it (u32)
 * `through`: every input routed to that worker with a seq up to it is in the states.
 * `applied`: the same for one vehicle (equal to through unless the worker count changed).
 *
 * Not thread-safe; a writer or a set belongs to one thread. */
#ifndef VEM_CHECKPOINT_H
#define VEM_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vem_ckpt_writer vem_ckpt_writer_t;

/* Starts the checkpoint of worker index (of workers) in dir, as a temp file. NULL with the
 * reason in err. */
vem_ckpt_writer_t *vem_ckpt_begin(const char *dir, unsigned index, unsigned workers,
                                  uint64_t through, char *err, size_t errlen);

/* Adds one vehicle's state. -1 on a write error (remembered: commit fails too). */
int vem_ckpt_add(vem_ckpt_writer_t *w, const char *vin, uint64_t applied, const uint8_t *state,
                 size_t len);

/* Finishes the file and puts it in place durably; frees *w_p and sets it to NULL. -1 with the
 * reason in err: the previous checkpoint stays. */
int vem_ckpt_commit(vem_ckpt_writer_t **w_p, char *err, size_t errlen);

/* Adds the state of a vehicle known only by its plate (1..16 bytes). -1 as vem_ckpt_add (and
 * EINVAL for a plate that does not fit). */
int vem_ckpt_add_plate(vem_ckpt_writer_t *w, const char *plate, uint64_t applied,
                       const uint8_t *state, size_t len);

/* Drops an unfinished checkpoint (removes the temp file); accepts NULL. */
void vem_ckpt_abort(vem_ckpt_writer_t **w_p);

/* One vehicle of a loaded checkpoint. */
typedef struct {
    char vin[18];   /* NUL-terminated; "" for a plate's state */
    char plate[17]; /* NUL-terminated; "" for a VIN's state */
    uint64_t applied;
    const uint8_t *state; /* into the set's memory */
    size_t len;
} vem_ckpt_entry_t;

/* Every checkpoint file of a directory. */
typedef struct {
    vem_ckpt_entry_t *entries;
    size_t count;
    unsigned files;       /* files read whole and sound */
    unsigned damaged;     /* files refused (logged with the reason) */
    unsigned workers;     /* worker count of the files (0: none, or they disagree) */
    uint64_t *through;    /* by index of the writing worker, for indexes < nthrough */
    unsigned nthrough;    /* highest index + 1 among sound files */
    uint64_t low_through; /* the lowest through of the sound files; 0 when a file was damaged */
    uint8_t **blobs;      /* file contents the entries point into */
    unsigned nblobs;
} vem_ckpt_set_t;

/* Reads every rules.<index>.ckpt of dir, the index written as vem_ckpt_begin writes it
 * (rules.01.ckpt is no checkpoint), into set (zeroed first). A damaged or unreadable file, or
 * one whose header is another worker's than its name's, is logged, counted in damaged and
 * left out; its vehicles start afresh and, as low_through is then 0, the whole spool is
 * replayed for them. -1 only when dir cannot be listed. */
int vem_ckpt_load(const char *dir, vem_ckpt_set_t *set, char *err, size_t errlen);

/* Frees what a set holds and zeroes it. */
void vem_ckpt_set_free(vem_ckpt_set_t *set);

/* Removes the checkpoint files of worker indexes >= workers (left by a run with more
 * workers), once the workers of this run have written their own. */
void vem_ckpt_remove_above(const char *dir, unsigned workers);

#endif
