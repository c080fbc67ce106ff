/* registry — loading and looking up the vehicle registry; see registry.h. */
#include "registry.h"

#include "pgload.h"
#include "session.h"

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vem_registry {
    atomic_uint refs;
    size_t n, cap; /* cap: a power of two, open addressing by VIN hash */
    vem_vehicle_t *slots;
    size_t *plates; /* cap entries: slot index + 1 (0: empty), open addressing by plate hash */
};

static vem_registry_t *s_new(size_t n)
{
    vem_registry_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->cap = 16;
    while (self->cap < 2 * n)
        self->cap *= 2;
    self->slots = calloc(self->cap, sizeof *self->slots);
    self->plates = calloc(self->cap, sizeof *self->plates);
    if (!self->slots || !self->plates)
        abort();
    atomic_init(&self->refs, 1);
    return self;
}

vem_registry_t *vem_registry_empty(void)
{
    return s_new(0);
}

static void s_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static void s_put(vem_registry_t *self, const vem_vehicle_t *v)
{
    size_t i = (size_t)vem_vin_hash(v->vin) & (self->cap - 1);
    while (self->slots[i].vin[0] && memcmp(self->slots[i].vin, v->vin, 17) != 0)
        i = (i + 1) & (self->cap - 1);
    if (!self->slots[i].vin[0])
        self->n++;
    self->slots[i] = *v;
}

/* The plate index, once every vehicle is in place: every vehicle with a plate, since plates
 * are not unique (the colour tells them apart, and registries hold misreads). */
static void s_index_plates(vem_registry_t *self)
{
    for (size_t k = 0; k < self->cap; k++) {
        const char *plate = self->slots[k].plate;
        if (!self->slots[k].vin[0] || !plate[0])
            continue;
        size_t i = (size_t)vem_plate_hash(plate) & (self->cap - 1);
        while (self->plates[i])
            i = (i + 1) & (self->cap - 1);
        self->plates[i] = k + 1;
    }
}

vem_registry_t *vem_registry_from(const vem_vehicle_t *v, size_t n)
{
    vem_registry_t *self = s_new(n);
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i].vin) == 17)
            s_put(self, &v[i]);
    s_index_plates(self);
    return self;
}

const vem_vehicle_t *vem_registry_next(const vem_registry_t *self, size_t *pos)
{
    while (self && *pos < self->cap) {
        const vem_vehicle_t *v = &self->slots[(*pos)++];
        if (v->vin[0])
            return v;
    }
    return NULL;
}

vem_registry_t *vem_registry_load(const char *conninfo, char *err, size_t errlen)
{
    char why[400];
    PGconn *conn = vem_pgload_connect(conninfo, "vemd-registry", why, sizeof why);
    if (!conn) {
        snprintf(err, errlen, "loading the vehicle registry: %s", why);
        return NULL;
    }
    PGresult *res = PQexec(conn, "SELECT vin, plate, plate_color, fuel, region_code, "
                                 "ref_torque_nm, rated_power_kw, whtc_work_kwh FROM vehicles");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "loading the vehicle registry: %.*s",
                 (int)strcspn(PQerrorMessage(conn), "\n"), PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return NULL;
    }
    int rows = PQntuples(res);
    vem_registry_t *self = s_new((size_t)rows);
    for (int i = 0; i < rows; i++) {
        vem_vehicle_t v = {0};
        if (strlen(PQgetvalue(res, i, 0)) != 17)
            continue; /* the table's CHECK makes this impossible */
        s_copy(v.vin, sizeof v.vin, PQgetvalue(res, i, 0));
        s_copy(v.plate, sizeof v.plate, PQgetvalue(res, i, 1));
        s_copy(v.plate_color, sizeof v.plate_color, PQgetvalue(res, i, 2));
        s_copy(v.fuel, sizeof v.fuel, PQgetvalue(res, i, 3));
        s_copy(v.region_code, sizeof v.region_code, PQgetvalue(res, i, 4));
        v.ref_torque_nm = PQgetisnull(res, i, 5) ? 0 : strtod(PQgetvalue(res, i, 5), NULL);
        v.rated_power_kw = PQgetisnull(res, i, 6) ? 0 : strtod(PQgetvalue(res, i, 6), NULL);
        v.whtc_work_kwh = PQgetisnull(res, i, 7) ? 0 : strtod(PQgetvalue(res, i, 7), NULL);
        s_put(self, &v);
    }
    PQclear(res);
    PQfinish(conn);
    s_index_plates(self);
    return self;
}

void vem_registry_retain(vem_registry_t *self, unsigned n)
{
    atomic_fetch_add(&self->refs, n);
}

void vem_registry_release(vem_registry_t *self)
{
    if (self && atomic_fetch_sub(&self->refs, 1) == 1) {
        free(self->slots);
        free(self->plates);
        free(self);
    }
}

const vem_vehicle_t *vem_registry_find(const vem_registry_t *self, const char *vin)
{
    if (!self || self->n == 0)
        return NULL;
    char key[18];
    memcpy(key, vin, 17);
    key[17] = '\0';
    size_t i = (size_t)vem_vin_hash(key) & (self->cap - 1);
    while (self->slots[i].vin[0]) {
        if (memcmp(self->slots[i].vin, vin, 17) == 0)
            return &self->slots[i];
        i = (i + 1) & (self->cap - 1);
    }
    return NULL;
}

const vem_vehicle_t *vem_registry_find_plate(const vem_registry_t *self, const char *plate,
                                             const char *color)
{
    if (!self || self->n == 0 || !*plate)
        return NULL;
    const vem_vehicle_t *found = NULL;
    size_t i = (size_t)vem_plate_hash(plate) & (self->cap - 1);
    while (self->plates[i]) {
        const vem_vehicle_t *v = &self->slots[self->plates[i] - 1];
        if (strcmp(v->plate, plate) == 0 && (!*color || strcmp(v->plate_color, color) == 0)) {
            if (found)
                return NULL; /* two vehicles answer to it: neither is taken */
            found = v;
        }
        i = (i + 1) & (self->cap - 1);
    }
    return found;
}

size_t vem_registry_size(const vem_registry_t *self)
{
    return self ? self->n : 0;
}
