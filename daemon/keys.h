/* keys — the terminal key registry: VIN ↔ security chip id ↔ SM2 public key, with the first
 * and last activation, as HJ 1239 activation (0x07) files them.
 *
 * One registry per process, made by main and shared by ingest and the workers: ingest decides
 * an activation and answers it (0x08) right after the spool sync, with no database round trip,
 * so the decision must be in memory; the workers look up a VIN's key for every signed frame.
 * Both see the same table at once (a mutex guards it; a lookup holds it for a hash probe and a
 * reference count increment, never for a signature check).
 *
 * Persistence: an accepted activation goes on as a frame through the workers and the sinks like
 * any other (terminal_events row); migration 0006's trigger turns that row into the
 * terminal_keys row. So it is as durable as every other input: spooled before the answer,
 * replayed after a crash (the worker applies accepted activations again, which is idempotent).
 * Main loads terminal_keys at start and on SIGHUP; a load replaces the table, keeping only the
 * activations accepted in the last two minutes that it does not find (they may not be
 * committed yet): an operator's INSERT or DELETE of a row (a key filed by the manufacturer, a
 * terminal replaced) takes effect at the next SIGHUP.
 *
 * Rules: a chip belongs to one VIN, and a VIN has one chip. An activation of a chip that
 * another VIN holds is refused (0x08 info 0x01); an activation whose VIN differs from the
 * header's, or of a VIN that already holds another chip, is refused as a VIN error (0x02); so
 * is one whose signature does not verify with the key it files. Activating the same chip for
 * the same VIN again with the same key is accepted (last activation moves); with another key
 * it is refused as the chip already activated (0x01): the key pair is fixed in the chip, and
 * whoever read a chip id from an earlier activation could otherwise file a key of their own. A
 * replaced chip is filed by deleting its row. For the same reason a key belongs to one chip: an
 * activation filing a key that another chip holds (a cloned chip, an extracted private key) is
 * refused as the chip already activated (0x01, verdict key_reused). */
#ifndef VEM_KEYS_H
#define VEM_KEYS_H

#include "hj1239.h"
#include "sm2.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vem_keys vem_keys_t;

/* Outcome of an activation. */
typedef enum {
    VEM_KEYS_OK = 0,
    VEM_KEYS_CHIP_TAKEN,    /* the chip is activated for another VIN, or with another key */
    VEM_KEYS_VIN_ERROR,     /* data-unit VIN not the header's, or the VIN holds another chip */
    VEM_KEYS_BAD_SIGNATURE, /* no valid signature of the activation by the key it files */
    VEM_KEYS_KEY_REUSED,    /* the public key is filed for another chip */
} vem_keys_verdict_t;

#define VEM_KEYS_VERDICTS 5 /* how many verdicts there are */

/* An empty registry. */
vem_keys_t *vem_keys_new(void);

/* Frees the registry; accepts NULL and sets *self_p to NULL. */
void vem_keys_destroy(vem_keys_t **self_p);

/* Replaces the table with terminal_keys over a new connection to conninfo (see above for the
 * activations kept), read oldest first activation first (then by chip id): a row whose VIN,
 * chip or key an earlier row holds is left out (logged). 0, or -1 with the reason in err (the table
 * is left as it was). */
int vem_keys_load(vem_keys_t *self, const char *conninfo, char *err, size_t errlen);

/* True when the last vem_keys_load read terminal_keys; false before the first and after one
 * that failed (the table then holds the last good load, if any, and the activations filed
 * since): main then loads again. */
bool vem_keys_loaded(vem_keys_t *self);

/* One filed key: what a terminal_keys row holds for the registry. */
typedef struct {
    uint8_t vin[17], chip[16], pub[64];
} vem_keys_row_t;

/* Every key the registry holds now (loaded or filed since), in the order they came (a load's
 * order, then activations), as a malloc'd array in *rows (NULL when empty) that the caller
 * frees. Returns how many. */
size_t vem_keys_rows(vem_keys_t *self, vem_keys_row_t **rows);

/* Fills a registry that has loaded nothing yet with keys kept from an earlier run (the registry
 * cache, regcache.h), as a load would, except that vem_keys_loaded stays false: main still
 * loads terminal_keys, which then replaces them. A row whose key is not on the curve, or whose
 * VIN, chip or key came before in rows, is left out (logged). Returns the keys taken; 0 and nothing
 * changed when the registry has loaded already. */
size_t vem_keys_seed(vem_keys_t *self, const vem_keys_row_t *rows, size_t n);

/* Judges a decoded activation frame f whose raw bytes are frame[0..len): VIN, signature (over
 * the data unit before the signature: time, chip id, public key, VIN) and the rules above
 * against what the registry holds now, and changes nothing: ingest judges before the spool
 * append (the answer goes out right after the sync) and files only an activation the spool
 * took (vem_keys_file), so no key is held that was never stored. detail (may be NULL) gets
 * the reason. */
vem_keys_verdict_t vem_keys_judge(vem_keys_t *self, const vem_hj1239_frame_t *f,
                                  const uint8_t *frame, size_t len, char *detail,
                                  size_t detail_len);

/* Files an activation judged VEM_KEYS_OK (no signature check again) under the rules above;
 * idempotent. Another verdict when the registry changed since the judgement (a reload, a
 * replayed activation): it is then left out. detail (may be NULL) gets the reason. */
vem_keys_verdict_t vem_keys_file(vem_keys_t *self, const vem_hj1239_frame_t *f, char *detail,
                                 size_t detail_len);

/* vem_keys_judge, then vem_keys_file when it says VEM_KEYS_OK. */
vem_keys_verdict_t vem_keys_activate(vem_keys_t *self, const vem_hj1239_frame_t *f,
                                     const uint8_t *frame, size_t len, char *detail,
                                     size_t detail_len);

/* vem_keys_file of an activation already accepted (a replayed one); true when filed. */
bool vem_keys_restore(vem_keys_t *self, const vem_hj1239_frame_t *f);

/* The registered key of a VIN (17 bytes): a new reference the caller destroys, or NULL. */
vem_sm2_key_t *vem_keys_find(vem_keys_t *self, const uint8_t *vin);

/* Activated VINs in the registry. */
size_t vem_keys_size(vem_keys_t *self);

/* The 0x08 answer (status, info) to a verdict: 0x01 0x00 ok; 0x02 0x01 chip already activated
 * (a key another chip holds too); 0x02 0x02 VIN error (a bad signature too: the standard has no
 * other code). */
void vem_keys_reply_codes(vem_keys_verdict_t v, uint8_t *status, uint8_t *info);

/* Name of a verdict ("ok", "chip_activated", "vin_error", "bad_signature", "key_reused");
 * static string. */
const char *vem_keys_verdict_name(vem_keys_verdict_t v);

/* The bytes an HJ 1239 frame's signature covers, for a decoded real-time, re-send or
 * activation frame f with raw bytes frame[0..len): the data unit up to the signature (see
 * README "Signatures"). Sets *n; NULL when f carries no signature. */
const uint8_t *vem_keys_signed_bytes(const vem_hj1239_frame_t *f, const uint8_t *frame, size_t len,
                                     size_t *n);

#endif
