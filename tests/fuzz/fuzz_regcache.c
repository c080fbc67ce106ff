/* fuzz_regcache — libFuzzer target for the registry cache reader (daemon/regcache.c).
 *
 * The input is the text of a registry cache, read from memory (vem_regcache_read). A refusal
 * must name the file and the line it stopped at; an accepted cache must hold no more vehicles
 * than its header counts, exactly the keys it counts, and find each of its vehicles by VIN. */
#include "regcache.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen of no bytes is not a stream of none; check_regcache has that case */
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f)
        abort();
    vem_regcache_t c;
    char err[1024] = "";
    int rc = vem_regcache_read(f, "fuzz.cache", &c, err, sizeof err);
    fclose(f);
    if (rc != 0) {
        static const char says[] = "registry cache fuzz.cache: line ";
        if (strncmp(err, says, sizeof says - 1) != 0) {
            fprintf(stderr, "refused without its line: %s\n", err);
            abort();
        }
        return 0;
    }
    size_t pos = 0, n = 0;
    const vem_vehicle_t *v;
    while ((v = vem_registry_next(c.registry, &pos))) {
        if (vem_registry_find(c.registry, v->vin) != v || strlen(v->vin) != 17)
            abort();
        n++;
    }
    if (n != vem_registry_size(c.registry))
        abort();
    vem_regcache_free(&c);
    return 0;
}
