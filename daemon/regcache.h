/* regcache — the last vehicle registry and terminal keys read from PostgreSQL, kept on local disk.
 *
 * Main reads the registry and the keys from PostgreSQL at start and on SIGHUP. When PostgreSQL
 * is down at start, a vemd without them would judge every trip without engine figures
 * (obd.nox_high instead of the NOx window) and check every signed frame as `no_key`, the
 * frames it replays from the spool included, although they verified before the restart. So
 * each load that read both writes them to SPOOL_DIR/registry.cache, and a start that does not
 * get them from PostgreSQL in time takes what it lacks from that file until PostgreSQL answers
 * (keys.h: vem_keys_seed). The file is what PostgreSQL held
 * at the last load: an operator's change made while vemd was down counts from the next load.
 *
 * Format: JSON lines (one small document per line, so reading takes memory for one line).
 *   {"format":"vemd-registry-cache","version":1,"saved_at":EPOCH_S,"vehicles":N,"terminal_keys":M}
 *   ["V",vin,plate,plate_color,fuel,region_code,ref_torque_nm,rated_power_kw,whtc_work_kwh]  x N
 *   ["K",vin,chip_id_hex,pubkey_hex]                                                         x M
 * A figure not known is null. The file is written whole to registry.cache.tmp, synced and
 * renamed over the old one, so a crash leaves one or the other. Any line that is not as above,
 * or fewer or more lines than the header counts, makes the whole file refused. */
#ifndef VEM_REGCACHE_H
#define VEM_REGCACHE_H

#include "keys.h"
#include "registry.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define VEM_REGCACHE_FILE "registry.cache"

/* Writes reg and the keys keys holds now to DIR/registry.cache, saved at saved_at (epoch s).
 * 0, or -1 with the step and reason in err (the old file, if any, is left as it was). */
int vem_regcache_save(const char *dir, const vem_registry_t *reg, vem_keys_t *keys,
                      int64_t saved_at, char *err, size_t errlen);

typedef struct {
    vem_registry_t *registry; /* one reference */
    vem_keys_row_t *keys;     /* malloc'd */
    size_t nkeys;
    int64_t saved_at; /* epoch s */
} vem_regcache_t;

/* Reads DIR/registry.cache into c: 0; 1 when there is no such file; -1 with the file, line
 * and reason in err when it is not a registry cache as above (nothing is kept of it). */
int vem_regcache_load(const char *dir, vem_regcache_t *c, char *err, size_t errlen);

/* The same from an open stream named name (in err): for the fuzz target. */
int vem_regcache_read(FILE *f, const char *name, vem_regcache_t *c, char *err, size_t errlen);

/* Frees what vem_regcache_load filled (the registry reference too); accepts a zeroed c. */
void vem_regcache_free(vem_regcache_t *c);

#endif
