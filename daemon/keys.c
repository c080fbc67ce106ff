/* keys — the terminal key registry; see keys.h.
 *
 * Three chained hash tables over the same entries, by VIN, by chip id and by public key.
 * Entries are immutable once in the table but for their activation time; a lookup copies what it
 * needs (a new reference to the key) under the mutex. A load builds a whole new table outside the
 * mutex (a key's curve check costs tens of microseconds; 100,000 vehicles take a few seconds on the
 * loader thread) and swaps it in under the mutex. */
#include "keys.h"

#include "clock.h"
#include "frame_json.h"
#include "log.h"
#include "pgload.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct s_entry {
    struct s_entry *next_vin, *next_chip, *next_pub;
    uint8_t vin[17], chip[16], pub[64];
    vem_sm2_key_t *key;
    int64_t added_ms; /* monotonic time of its activation here; 0: loaded from the table */
    uint64_t order;   /* place in the table: the first to hold a VIN, chip or key comes first */
} s_entry_t;

typedef struct {
    size_t nbuckets, n; /* nbuckets: a power of two */
    uint64_t next_order;
    s_entry_t **by_vin, **by_chip, **by_pub;
} s_table_t;

/* An activation accepted this long ago should be in terminal_keys (the sinks commit within
 * pg.batch_ms, a few seconds behind at worst); a load keeps younger ones it does not find. */
#define S_PENDING_MS 120000

struct vem_keys {
    pthread_mutex_t lock;
    s_table_t t;
    bool loaded; /* the last load read terminal_keys (false before the first) */
};

static uint64_t s_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static void s_table_init(s_table_t *t, size_t nbuckets)
{
    t->nbuckets = nbuckets;
    t->n = 0;
    t->by_vin = calloc(nbuckets, sizeof *t->by_vin);
    t->by_chip = calloc(nbuckets, sizeof *t->by_chip);
    t->by_pub = calloc(nbuckets, sizeof *t->by_pub);
    if (!t->by_vin || !t->by_chip || !t->by_pub)
        abort();
}

static void s_table_free(s_table_t *t)
{
    for (size_t i = 0; t->by_vin && i < t->nbuckets; i++) {
        s_entry_t *e = t->by_vin[i];
        while (e) {
            s_entry_t *next = e->next_vin;
            vem_sm2_key_destroy(&e->key);
            free(e);
            e = next;
        }
    }
    free(t->by_vin);
    free(t->by_chip);
    free(t->by_pub);
    memset(t, 0, sizeof *t);
}

static s_entry_t *s_by_vin(const s_table_t *t, const uint8_t *vin)
{
    s_entry_t *e = t->by_vin[s_hash(vin, 17) & (t->nbuckets - 1)];
    while (e && memcmp(e->vin, vin, 17) != 0)
        e = e->next_vin;
    return e;
}

static s_entry_t *s_by_chip(const s_table_t *t, const uint8_t *chip)
{
    s_entry_t *e = t->by_chip[s_hash(chip, 16) & (t->nbuckets - 1)];
    while (e && memcmp(e->chip, chip, 16) != 0)
        e = e->next_chip;
    return e;
}

static s_entry_t *s_by_pub(const s_table_t *t, const uint8_t *pub)
{
    s_entry_t *e = t->by_pub[s_hash(pub, 64) & (t->nbuckets - 1)];
    while (e && memcmp(e->pub, pub, 64) != 0)
        e = e->next_pub;
    return e;
}

static void s_link(s_table_t *t, s_entry_t *e)
{
    size_t v = s_hash(e->vin, 17) & (t->nbuckets - 1), c = s_hash(e->chip, 16) & (t->nbuckets - 1),
           p = s_hash(e->pub, 64) & (t->nbuckets - 1);
    e->next_vin = t->by_vin[v];
    t->by_vin[v] = e;
    e->next_chip = t->by_chip[c];
    t->by_chip[c] = e;
    e->next_pub = t->by_pub[p];
    t->by_pub[p] = e;
    t->n++;
}

/* Adds e, doubling the buckets when the chains would grow past one entry on average. */
static void s_add(s_table_t *t, s_entry_t *e)
{
    if (t->n + 1 > t->nbuckets) {
        s_table_t bigger;
        s_table_init(&bigger, t->nbuckets * 2);
        bigger.next_order = t->next_order;
        for (size_t i = 0; i < t->nbuckets; i++) {
            s_entry_t *x = t->by_vin[i];
            while (x) {
                s_entry_t *next = x->next_vin;
                s_link(&bigger, x);
                x = next;
            }
        }
        free(t->by_vin);
        free(t->by_chip);
        free(t->by_pub);
        *t = bigger;
    }
    e->order = t->next_order++;
    s_link(t, e);
}

vem_keys_t *vem_keys_new(void)
{
    vem_keys_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    pthread_mutex_init(&self->lock, NULL);
    s_table_init(&self->t, 64);
    return self;
}

void vem_keys_destroy(vem_keys_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_table_free(&(*self_p)->t);
    pthread_mutex_destroy(&(*self_p)->lock);
    free(*self_p);
    *self_p = NULL;
}

static s_entry_t *s_entry(const uint8_t *vin, const uint8_t *chip, const uint8_t *pub,
                          vem_sm2_key_t *key, int64_t added_ms)
{
    s_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    memcpy(e->vin, vin, 17);
    memcpy(e->chip, chip, 16);
    memcpy(e->pub, pub, 64);
    e->key = key;
    e->added_ms = added_ms;
    return e;
}

/* Adds a row of terminal_keys (or of the cache) to a table being built, in the order the rows
 * come (the first to hold a VIN, chip or key keeps it): false, logged, when its key is not on
 * the curve, its VIN or chip is there already, or its key is another chip's (one key pair is
 * one chip: a second chip id with it is a cloned chip or an extracted private key). */
static bool s_add_row(s_table_t *t, const uint8_t *vin, const uint8_t *chip, const uint8_t *pub,
                      const char *from)
{
    char why[200];
    vem_sm2_key_t *key = vem_sm2_key_new(pub, why, sizeof why);
    const s_entry_t *held = key ? s_by_pub(t, pub) : NULL;
    if (key && (s_by_vin(t, vin) || s_by_chip(t, chip))) {
        snprintf(why, sizeof why, "VIN or chip twice");
    } else if (held) {
        char other[33];
        vem_frame_json_hex_text(other, held->chip, 16);
        snprintf(why, sizeof why,
                 "key_reused: its public key is chip %s's (VIN %.17s), filed before", other,
                 (const char *)held->vin);
    } else if (key) {
        s_add(t, s_entry(vin, chip, pub, key, 0));
        return true;
    }
    vem_log(VEM_LOG_WARNING, "keys", "%s row of %.17s left out: %s", from, (const char *)vin, why);
    vem_sm2_key_destroy(&key);
    return false;
}

static int s_by_order(const void *a, const void *b)
{
    uint64_t x = (*(s_entry_t *const *)a)->order, y = (*(s_entry_t *const *)b)->order;
    return x < y ? -1 : x > y;
}

size_t vem_keys_rows(vem_keys_t *self, vem_keys_row_t **rows)
{
    pthread_mutex_lock(&self->lock);
    size_t n = 0;
    *rows = self->t.n ? malloc(self->t.n * sizeof **rows) : NULL;
    s_entry_t **all = self->t.n ? malloc(self->t.n * sizeof *all) : NULL;
    if (self->t.n && (!*rows || !all))
        abort();
    for (size_t i = 0; i < self->t.nbuckets; i++)
        for (s_entry_t *e = self->t.by_vin[i]; e; e = e->next_vin)
            all[n++] = e;
    /* in table order, so that a seed from them keeps the same first holders */
    if (n)
        qsort(all, n, sizeof *all, s_by_order);
    for (size_t i = 0; i < n; i++) {
        memcpy((*rows)[i].vin, all[i]->vin, 17);
        memcpy((*rows)[i].chip, all[i]->chip, 16);
        memcpy((*rows)[i].pub, all[i]->pub, 64);
    }
    pthread_mutex_unlock(&self->lock);
    free(all);
    return n;
}

size_t vem_keys_seed(vem_keys_t *self, const vem_keys_row_t *rows, size_t n)
{
    s_table_t fresh;
    s_table_init(&fresh, 64);
    for (size_t i = 0; i < n; i++)
        s_add_row(&fresh, rows[i].vin, rows[i].chip, rows[i].pub, "cached terminal key");
    pthread_mutex_lock(&self->lock);
    bool take = !self->loaded && self->t.n == 0;
    if (take) {
        s_table_t old = self->t;
        self->t = fresh;
        fresh = old;
    }
    size_t taken = take ? self->t.n : 0;
    pthread_mutex_unlock(&self->lock);
    s_table_free(&fresh);
    return taken;
}

int vem_keys_load(vem_keys_t *self, const char *conninfo, char *err, size_t errlen)
{
    char cerr[400];
    PGconn *conn = vem_pgload_connect(conninfo, "vemd-keys", cerr, sizeof cerr);
    if (!conn) {
        snprintf(err, errlen, "loading the terminal keys: %s", cerr);
        goto failed;
    }
    /* oldest activation first (then by chip id), so that of rows sharing a key the one filed
     * first is kept, whatever order the server returns them in */
    PGresult *res = PQexecParams(conn,
                                 "SELECT vin::bytea, chip_id, pubkey FROM terminal_keys "
                                 "ORDER BY first_activated_at, chip_id",
                                 0, NULL, NULL, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "loading the terminal keys: %.*s",
                 (int)strcspn(PQerrorMessage(conn), "\n"), PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        goto failed;
    }
    s_table_t fresh;
    s_table_init(&fresh, 64);
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        const uint8_t *vin = (const uint8_t *)PQgetvalue(res, i, 0);
        const uint8_t *chip = (const uint8_t *)PQgetvalue(res, i, 1);
        const uint8_t *pub = (const uint8_t *)PQgetvalue(res, i, 2);
        if (PQgetlength(res, i, 0) != 17 || PQgetlength(res, i, 1) != 16 ||
            PQgetlength(res, i, 2) != 64)
            continue; /* the table's CHECKs make this impossible */
        s_add_row(&fresh, vin, chip, pub, "terminal_keys");
    }
    PQclear(res);
    PQfinish(conn);

    pthread_mutex_lock(&self->lock);
    /* activations accepted in the last S_PENDING_MS may not be committed yet */
    int64_t now = vem_mono_ms();
    for (size_t i = 0; i < self->t.nbuckets; i++)
        for (s_entry_t *e = self->t.by_vin[i]; e; e = e->next_vin)
            if (e->added_ms && now - e->added_ms < S_PENDING_MS && !s_by_vin(&fresh, e->vin) &&
                !s_by_chip(&fresh, e->chip) && !s_by_pub(&fresh, e->pub))
                s_add(&fresh,
                      s_entry(e->vin, e->chip, e->pub, vem_sm2_key_ref(e->key), e->added_ms));
    s_table_t old = self->t;
    self->t = fresh;
    self->loaded = true;
    pthread_mutex_unlock(&self->lock);
    s_table_free(&old);
    return 0;
failed:
    pthread_mutex_lock(&self->lock);
    self->loaded = false;
    pthread_mutex_unlock(&self->lock);
    return -1;
}

bool vem_keys_loaded(vem_keys_t *self)
{
    pthread_mutex_lock(&self->lock);
    bool loaded = self->loaded;
    pthread_mutex_unlock(&self->lock);
    return loaded;
}

const uint8_t *vem_keys_signed_bytes(const vem_hj1239_frame_t *f, const uint8_t *frame, size_t len,
                                     size_t *n)
{
    if (!f->has_sig)
        return NULL;
    size_t sig = 2 + (size_t)f->sig.rlen + f->sig.slen;
    if (f->length < sig || VEM_HJ1239_HEADER_LEN + (size_t)f->length > len)
        return NULL;
    *n = f->length - sig; /* both header forms are 24 bytes: the data unit starts there */
    return frame + VEM_HJ1239_HEADER_LEN;
}

/* Judges an activation by the rules of keys.h against the table and, when file is true and
 * it passes, puts it in; the caller holds the lock and, to file, hands over key (taken only
 * when a new entry is made). */
static vem_keys_verdict_t s_apply(vem_keys_t *self, const vem_hj1239_frame_t *f, bool file,
                                  vem_sm2_key_t **key, char *detail, size_t detail_len)
{
    char chip_hex[33];
    vem_frame_json_hex_text(chip_hex, f->chip_id, 16);
    s_entry_t *c = s_by_chip(&self->t, f->chip_id);
    if (c && memcmp(c->vin, f->vin, 17) != 0) {
        snprintf(detail, detail_len, "chip %s is activated for VIN %.17s", chip_hex,
                 (const char *)c->vin);
        return VEM_KEYS_CHIP_TAKEN;
    }
    s_entry_t *v = s_by_vin(&self->t, f->vin);
    if (v && v != c) {
        char other[33];
        vem_frame_json_hex_text(other, v->chip, 16);
        snprintf(detail, detail_len, "VIN holds chip %s (a terminal replaced: delete its row)",
                 other);
        return VEM_KEYS_VIN_ERROR;
    }
    if (c && memcmp(c->pub, f->pubkey, 64) != 0) {
        /* a chip's key pair is fixed in it: another key under its id is someone who read the id
         * from an earlier activation, or a replaced chip, which an operator files by deleting
         * the row */
        snprintf(detail, detail_len, "chip %s is activated with another public key", chip_hex);
        return VEM_KEYS_CHIP_TAKEN;
    }
    s_entry_t *k = c ? NULL : s_by_pub(&self->t, f->pubkey);
    if (k) {
        /* the key pair is fixed in the chip, so one key under two chip ids is a cloned chip or
         * an extracted private key: whoever holds it could file it for any VIN whose chip is
         * not activated yet and sign that VIN's frames. Answered as the chip already activated
         * (0x02 0x01), the only other code being a VIN error: the chip, known by its key pair,
         * is the one filed under chip k's id (its VIN need not be wrong at all) */
        char other[33];
        vem_frame_json_hex_text(other, k->chip, 16);
        snprintf(detail, detail_len,
                 "public key of chip %s is filed already for chip %s (VIN %.17s)", chip_hex, other,
                 (const char *)k->vin);
        return VEM_KEYS_KEY_REUSED;
    }
    if (!file) {
        /* judged only: the table is as it was */
    } else if (c) { /* the same chip, VIN and key again */
        c->added_ms = vem_mono_ms();
    } else {
        s_add(&self->t, s_entry(f->vin, f->chip_id, f->pubkey, *key, vem_mono_ms()));
        *key = NULL;
    }
    snprintf(detail, detail_len, "chip %s activated", chip_hex);
    return VEM_KEYS_OK;
}

vem_keys_verdict_t vem_keys_judge(vem_keys_t *self, const vem_hj1239_frame_t *f,
                                  const uint8_t *frame, size_t len, char *detail, size_t detail_len)
{
    char scratch[8];
    if (!detail) {
        detail = scratch;
        detail_len = sizeof scratch;
    }
    if (memcmp(f->act_vin, f->vin, 17) != 0) {
        snprintf(detail, detail_len, "activation VIN %.17s is not the header's",
                 (const char *)f->act_vin);
        return VEM_KEYS_VIN_ERROR;
    }
    char why[200];
    vem_sm2_key_t *key = vem_sm2_key_new(f->pubkey, why, sizeof why);
    if (!key) {
        snprintf(detail, detail_len, "%s", why);
        return VEM_KEYS_BAD_SIGNATURE;
    }
    size_t n = 0;
    const uint8_t *msg = vem_keys_signed_bytes(f, frame, len, &n);
    vem_sm2_status_t st =
        msg ? vem_sm2_verify(key, f->sig.r, f->sig.rlen, f->sig.s, f->sig.slen, msg, n)
            : VEM_SM2_BAD_ENCODING;
    vem_sm2_key_destroy(&key);
    if (st != VEM_SM2_OK) {
        snprintf(detail, detail_len, "signature by the filed key: %s", vem_sm2_status_name(st));
        return VEM_KEYS_BAD_SIGNATURE;
    }
    pthread_mutex_lock(&self->lock);
    vem_keys_verdict_t v = s_apply(self, f, false, NULL, detail, detail_len);
    pthread_mutex_unlock(&self->lock);
    return v;
}

vem_keys_verdict_t vem_keys_file(vem_keys_t *self, const vem_hj1239_frame_t *f, char *detail,
                                 size_t detail_len)
{
    char scratch[8];
    if (!detail) {
        detail = scratch;
        detail_len = sizeof scratch;
    }
    char why[200];
    vem_sm2_key_t *key = vem_sm2_key_new(f->pubkey, why, sizeof why);
    if (!key) {
        snprintf(detail, detail_len, "%s", why);
        return VEM_KEYS_BAD_SIGNATURE;
    }
    pthread_mutex_lock(&self->lock);
    vem_keys_verdict_t v = s_apply(self, f, true, &key, detail, detail_len);
    pthread_mutex_unlock(&self->lock);
    vem_sm2_key_destroy(&key); /* NULL when the table took it */
    return v;
}

vem_keys_verdict_t vem_keys_activate(vem_keys_t *self, const vem_hj1239_frame_t *f,
                                     const uint8_t *frame, size_t len, char *detail,
                                     size_t detail_len)
{
    vem_keys_verdict_t v = vem_keys_judge(self, f, frame, len, detail, detail_len);
    return v == VEM_KEYS_OK ? vem_keys_file(self, f, detail, detail_len) : v;
}

bool vem_keys_restore(vem_keys_t *self, const vem_hj1239_frame_t *f)
{
    return vem_keys_file(self, f, NULL, 0) == VEM_KEYS_OK;
}

vem_sm2_key_t *vem_keys_find(vem_keys_t *self, const uint8_t *vin)
{
    pthread_mutex_lock(&self->lock);
    s_entry_t *e = self->t.n ? s_by_vin(&self->t, vin) : NULL;
    vem_sm2_key_t *key = e ? vem_sm2_key_ref(e->key) : NULL;
    pthread_mutex_unlock(&self->lock);
    return key;
}

size_t vem_keys_size(vem_keys_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = self->t.n;
    pthread_mutex_unlock(&self->lock);
    return n;
}

void vem_keys_reply_codes(vem_keys_verdict_t v, uint8_t *status, uint8_t *info)
{
    *status = v == VEM_KEYS_OK ? 0x01 : 0x02;
    *info = v == VEM_KEYS_OK                                       ? 0x00
            : v == VEM_KEYS_CHIP_TAKEN || v == VEM_KEYS_KEY_REUSED ? 0x01
                                                                   : 0x02;
}

const char *vem_keys_verdict_name(vem_keys_verdict_t v)
{
    switch (v) {
    case VEM_KEYS_OK:
        return "ok";
    case VEM_KEYS_CHIP_TAKEN:
        return "chip_activated";
    case VEM_KEYS_VIN_ERROR:
        return "vin_error";
    case VEM_KEYS_BAD_SIGNATURE:
        return "bad_signature";
    case VEM_KEYS_KEY_REUSED:
        return "key_reused";
    }
    return "?";
}
