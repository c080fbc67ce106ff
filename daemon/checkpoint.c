/* checkpoint — writing and reading the workers' rule-state files; see checkpoint.h. */
#include "checkpoint.h"

#include "fileio.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define S_MAGIC   0x314b4356u /* "VCK1" */
#define S_VERSION 2u /* 2: an entry's key may be a plate ('#' + plate); 1 (VINs only) is read */
#define S_BUF     (1u << 20) /* bytes gathered before a write */

typedef struct {
    uint32_t magic, version, workers, index;
    uint64_t through, count;
} s_header_t;

typedef struct {
    char vin[17];
    uint64_t applied;
    uint32_t len;
} __attribute__((packed)) s_entry_hdr_t;

#define S_TRAILER (sizeof(uint64_t) + sizeof(uint32_t)) /* count, CRC-32 */

struct vem_ckpt_writer {
    int fd;
    char path[512], tmp[520], dir[512];
    uint8_t *buf;
    size_t used;
    uint64_t off; /* where the next write goes */
    uLong crc;
    uint64_t count;
    bool failed;
    int error; /* errno of the first failure */
};

static void s_flush(vem_ckpt_writer_t *w)
{
    if (!w->failed && w->used && vem_fileio_pwrite_all(w->fd, w->buf, w->used, w->off) != 0) {
        w->failed = true;
        w->error = errno;
    }
    w->off += w->used;
    w->used = 0;
}

static void s_put(vem_ckpt_writer_t *w, const void *p, size_t len)
{
    w->crc = crc32(w->crc, p, (uInt)len);
    const uint8_t *b = p;
    while (len) {
        if (w->used == S_BUF)
            s_flush(w);
        size_t n = S_BUF - w->used < len ? S_BUF - w->used : len;
        memcpy(w->buf + w->used, b, n);
        w->used += n;
        b += n;
        len -= n;
    }
}

vem_ckpt_writer_t *vem_ckpt_begin(const char *dir, unsigned index, unsigned workers,
                                  uint64_t through, char *err, size_t errlen)
{
    vem_ckpt_writer_t *w = calloc(1, sizeof *w);
    if (!w || !(w->buf = malloc(S_BUF)))
        abort();
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    snprintf(w->path, sizeof w->path, "%s/rules.%u.ckpt", dir, index);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp", w->path);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        snprintf(err, errlen, "rules checkpoint %s: %s", w->tmp, strerror(errno));
        free(w->buf);
        free(w);
        return NULL;
    }
    w->crc = crc32(0, NULL, 0);
    /* the count is not known yet: the header says 0 and the trailer has it */
    s_header_t h = {S_MAGIC, S_VERSION, workers, index, through, 0};
    s_put(w, &h, sizeof h);
    return w;
}

int vem_ckpt_add(vem_ckpt_writer_t *w, const char *vin, uint64_t applied, const uint8_t *state,
                 size_t len)
{
    s_entry_hdr_t e = {.applied = applied, .len = (uint32_t)len};
    memcpy(e.vin, vin, sizeof e.vin);
    s_put(w, &e, sizeof e);
    s_put(w, state, len);
    w->count++;
    return w->failed ? -1 : 0;
}

int vem_ckpt_add_plate(vem_ckpt_writer_t *w, const char *plate, uint64_t applied,
                       const uint8_t *state, size_t len)
{
    char key[17] = {'#'};
    size_t n = strlen(plate);
    if (n == 0 || n > sizeof key - 1) {
        errno = EINVAL;
        return -1;
    }
    memcpy(key + 1, plate, n);
    return vem_ckpt_add(w, key, applied, state, len);
}

static void s_free(vem_ckpt_writer_t *w)
{
    if (w->fd >= 0)
        close(w->fd);
    free(w->buf);
    free(w);
}

int vem_ckpt_commit(vem_ckpt_writer_t **w_p, char *err, size_t errlen)
{
    vem_ckpt_writer_t *w = *w_p;
    *w_p = NULL;
    /* the trailer: the count (under the CRC), then the CRC of everything before it */
    s_put(w, &w->count, sizeof w->count);
    uint32_t crc = (uint32_t)w->crc;
    if (w->used + sizeof crc > S_BUF)
        s_flush(w);
    memcpy(w->buf + w->used, &crc, sizeof crc);
    w->used += sizeof crc;
    s_flush(w);
    const char *step = "write";
    if (!w->failed && fdatasync(w->fd) != 0)
        step = "fdatasync", w->failed = true, w->error = errno;
    if (!w->failed && rename(w->tmp, w->path) != 0)
        step = "rename", w->failed = true, w->error = errno;
    if (!w->failed && vem_fileio_fsync_dir(w->dir) != 0)
        step = "directory fsync", w->failed = true, w->error = errno;
    if (w->failed) {
        snprintf(err, errlen, "rules checkpoint %s: %s: %s", w->path, step, strerror(w->error));
        unlink(w->tmp);
        s_free(w);
        return -1;
    }
    s_free(w);
    return 0;
}

void vem_ckpt_abort(vem_ckpt_writer_t **w_p)
{
    if (!w_p || !*w_p)
        return;
    unlink((*w_p)->tmp);
    s_free(*w_p);
    *w_p = NULL;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* Checks the bytes of the file named for worker `named` and appends its entries; false with
 * the reason. */
static bool s_parse(vem_ckpt_set_t *set, unsigned named, const uint8_t *p, size_t len, char *why,
                    size_t whylen)
{
    s_header_t h;
    if (len < sizeof h + S_TRAILER) {
        snprintf(why, whylen, "%zu bytes: shorter than a header and a trailer", len);
        return false;
    }
    memcpy(&h, p, sizeof h);
    if (h.magic != S_MAGIC || h.version < 1 || h.version > S_VERSION) {
        snprintf(why, whylen, "not a version %u checkpoint (magic %08x, version %u)", S_VERSION,
                 h.magic, h.version);
        return false;
    }
    uint64_t count;
    uint32_t crc;
    memcpy(&count, p + len - sizeof count - sizeof crc, sizeof count);
    memcpy(&crc, p + len - sizeof crc, sizeof crc);
    uint32_t actual = (uint32_t)crc32(crc32(0, NULL, 0), p, (uInt)(len - sizeof crc));
    if (crc != actual) {
        snprintf(why, whylen, "CRC %08x, the bytes give %08x (torn or damaged)", crc, actual);
        return false;
    }
    if (h.index >= 4096 || h.workers == 0 || h.workers > 4096 || h.index >= h.workers) {
        snprintf(why, whylen, "worker %u of %u is not a worker", h.index, h.workers);
        return false;
    }
    /* only a copy or a rename makes them differ (the writer names a file for its own index):
     * its vehicles would come twice, or the through of the worker it is named for from
     * another's, and that worker's vehicles would not be replayed from the spool's start */
    if (h.index != named) {
        snprintf(why, whylen, "written by worker %u of %u, named for worker %u", h.index, h.workers,
                 named);
        return false;
    }
    size_t off = sizeof h, end = len - sizeof count - sizeof crc;
    size_t first = set->count;
    for (uint64_t i = 0; i < count; i++) {
        s_entry_hdr_t e;
        if (end - off < sizeof e) {
            snprintf(why, whylen, "entry %llu of %llu cut short", (unsigned long long)i,
                     (unsigned long long)count);
            set->count = first;
            return false;
        }
        memcpy(&e, p + off, sizeof e);
        off += sizeof e;
        if (e.len > end - off) {
            snprintf(why, whylen, "entry %llu: %u bytes of state, %zu left", (unsigned long long)i,
                     e.len, end - off);
            set->count = first;
            return false;
        }
        vem_ckpt_entry_t *entries = realloc(set->entries, (set->count + 1) * sizeof *entries);
        if (!entries)
            abort();
        set->entries = entries;
        vem_ckpt_entry_t *x = &entries[set->count++];
        memset(x->plate, 0, sizeof x->plate);
        if (h.version >= 2 && e.vin[0] == '#') { /* a plate's state: '#', the plate, NULs */
            memcpy(x->plate, e.vin + 1, sizeof e.vin - 1);
            x->vin[0] = '\0';
        } else {
            memcpy(x->vin, e.vin, sizeof e.vin);
            x->vin[17] = '\0';
        }
        x->applied = e.applied;
        x->state = p + off;
        x->len = e.len;
        off += e.len;
    }
    if (off != end) {
        snprintf(why, whylen, "%zu bytes after the last entry", end - off);
        set->count = first;
        return false;
    }
    if (h.index >= set->nthrough) {
        uint64_t *through = realloc(set->through, (h.index + 1) * sizeof *through);
        if (!through)
            abort();
        for (unsigned k = set->nthrough; k <= h.index; k++)
            through[k] = 0;
        set->through = through;
        set->nthrough = h.index + 1;
    }
    set->through[h.index] = h.through;
    if (set->files == 0)
        set->workers = h.workers;
    else if (set->workers != h.workers)
        set->workers = 0;
    if (set->files == 0 || h.through < set->low_through)
        set->low_through = h.through;
    set->files++;
    return true;
}

/* Reads a whole file into memory; NULL with errno. */
static uint8_t *s_slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    uint8_t *p = NULL;
    if (fstat(fd, &st) == 0 && (p = malloc(st.st_size ? (size_t)st.st_size : 1))) {
        if (vem_fileio_pread_all(fd, p, (size_t)st.st_size, 0) != 0) {
            int e = errno;
            free(p);
            p = NULL;
            errno = e;
        }
        *len = (size_t)st.st_size;
    }
    int e = errno;
    close(fd);
    errno = e;
    return p;
}

/* The worker index of a checkpoint's file name: only rules.<index>.ckpt as vem_ckpt_begin
 * prints it, so that no other name (rules.01.ckpt, rules.+1.ckpt, an index past 32 bits that
 * %u wraps) claims a worker's index beside its file. */
static bool s_name_index(const char *name, unsigned *index)
{
    char canonical[64];
    int n = 0;
    if (sscanf(name, "rules.%u.ckpt%n", index, &n) != 1 || name[n] != '\0')
        return false;
    snprintf(canonical, sizeof canonical, "rules.%u.ckpt", *index);
    return strcmp(name, canonical) == 0;
}

int vem_ckpt_load(const char *dir, vem_ckpt_set_t *set, char *err, size_t errlen)
{
    memset(set, 0, sizeof *set);
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "rules checkpoints in %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned index;
        if (!s_name_index(de->d_name, &index))
            continue;
        char path[768], why[256];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len = 0;
        uint8_t *p = s_slurp(path, &len);
        if (!p) {
            snprintf(why, sizeof why, "%s", strerror(errno));
        } else if (s_parse(set, index, p, len, why, sizeof why)) {
            uint8_t **blobs = realloc(set->blobs, (set->nblobs + 1) * sizeof *blobs);
            if (!blobs)
                abort();
            set->blobs = blobs;
            set->blobs[set->nblobs++] = p;
            continue;
        }
        free(p);
        set->damaged++;
        vem_log(VEM_LOG_ERR, "checkpoint",
                "%s refused: %s; its vehicles start afresh and the spool is replayed for them "
                "from its beginning",
                path, why);
    }
    closedir(d);
    if (set->damaged)
        set->low_through = 0;
    return 0;
}

void vem_ckpt_set_free(vem_ckpt_set_t *set)
{
    for (unsigned i = 0; i < set->nblobs; i++)
        free(set->blobs[i]);
    free(set->blobs);
    free(set->entries);
    free(set->through);
    memset(set, 0, sizeof *set);
}

void vem_ckpt_remove_above(const char *dir, unsigned workers)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned index;
        if (s_name_index(de->d_name, &index) && index >= workers) {
            char path[768];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            if (unlink(path) == 0)
                vem_log(VEM_LOG_INFO, "checkpoint",
                        "%s removed: its vehicles moved to the %u "
                        "workers of this run",
                        path, workers);
        }
    }
    closedir(d);
}
