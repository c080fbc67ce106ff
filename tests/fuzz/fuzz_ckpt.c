/* fuzz_ckpt — libFuzzer target for loading the workers' rule checkpoints (daemon/checkpoint.c).
 *
 * The input describes the files of a spool directory: chunks split by S_SEP, each one byte of
 * header and a file's bytes.
 *   bits 0-2  the worker index in its name, rules.<index>.ckpt
 *   bits 3-4  0 or 1: that name; 2: rules.<index>.ckpt.tmp (not a checkpoint); 3: a directory
 *             of that name (unreadable)
 *   bits 5-7  0: the bytes as they are; 1 to 5: the trailer appended as the writer does (the
 *             count of the entries that fit, and the CRC-32), so that the parser behind the
 *             CRC is reached; 6: the same with the count one too high; 7: one too low
 *
 * Each file is loaded alone, then all together. Checked: a load of a directory succeeds; a
 * file is sound (files 1) or damaged (damaged 1), never both, never neither; a sound file has
 * the magic, a known version, a correct CRC, a worker index below its worker count and the
 * same as its name's (a file of another worker is refused), and its entries are the documented
 * layout walked from the header: keys, applied, lengths, and state pointers into the file's bytes
 * (the blob), through the whole file; a damaged file leaves no entry, no blob, no through. Loaded
 * together: files and damaged add up, entries are the sound files' in directory order, each
 * pointing into its own blob; low_through is the lowest through, or 0 when a file was damaged;
 * workers and nthrough follow the sound files; and vem_ckpt_set_free frees everything
 * (LeakSanitizer checks).
 *
 * VEM_FUZZ_SEEDS=dir fuzz_ckpt writes the seed corpus into dir with the real writer and exits
 * (tests/fuzz/corpus/ckpt/ holds its output). */
#include "checkpoint.h"
#include "fuzz_files.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_SEP       "\x1e\x1eVC"
#define S_SEP_LEN   4
#define S_MAX_FILES 12
#define S_HDR       32u /* magic, version, workers, index (u32), through, count (u64) */
#define S_ENTRY     29u /* key (17), applied (u64), len (u32) */
#define S_TRAILER   12u /* count (u64), CRC-32 */
#define S_MAGIC     0x314b4356u

#define S_FAIL(...)                                                                                \
    do {                                                                                           \
        fprintf(stderr, "fuzz_ckpt: " __VA_ARGS__);                                                \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* ---- scratch directories ------------------------------------------------------------------ */

/* all/ holds every file of an input, one/ one at a time (fuzz_files.h). */
static char s_all[300], s_one[300];

static void s_make_root(void)
{
    fuzz_files_make_root("fuzz-ckpt");
    fuzz_files_subdir("all", s_all, sizeof s_all);
    fuzz_files_subdir("one", s_one, sizeof s_one);
}

/* ---- the files of an input ---------------------------------------------------------------- */

typedef struct {
    char name[64];
    unsigned index; /* the worker its name is for */
    bool ckpt;      /* a name the loader reads (file or directory) */
    bool dir;
    uint8_t *data;
    size_t len;
} s_file_t;

typedef struct {
    s_file_t files[S_MAX_FILES];
    size_t n;
} s_layout_t;

/* Entries of the layout that fit, walked from the header: how many. */
static uint64_t s_fitting_entries(const uint8_t *p, size_t len)
{
    uint64_t n = 0;
    size_t off = S_HDR;
    while (len >= off && len - off >= S_ENTRY) {
        uint32_t elen;
        memcpy(&elen, p + off + 17 + 8, sizeof elen);
        if (elen > len - off - S_ENTRY)
            break;
        off += S_ENTRY + elen;
        n++;
    }
    return n;
}

static void s_layout_parse(s_layout_t *l, const uint8_t *data, size_t size)
{
    memset(l, 0, sizeof *l);
    size_t at = 0;
    while (at <= size && l->n < S_MAX_FILES) {
        const uint8_t *sep = memmem(data + at, size - at, S_SEP, S_SEP_LEN);
        size_t end = sep ? (size_t)(sep - data) : size;
        const uint8_t *c = data + at;
        size_t clen = end - at;
        at = end + S_SEP_LEN;
        if (clen >= 1) {
            unsigned index = c[0] & 7, naming = (c[0] >> 3) & 3, trailer = c[0] >> 5;
            char name[64];
            snprintf(name, sizeof name, naming == 2 ? "rules.%u.ckpt.tmp" : "rules.%u.ckpt", index);
            size_t k = 0;
            while (k < l->n && strcmp(l->files[k].name, name) != 0)
                k++;
            if (k == l->n)
                l->n++;
            else
                free(l->files[k].data); /* a later chunk of the same name replaces it */
            s_file_t *f = &l->files[k];
            memset(f, 0, sizeof *f);
            snprintf(f->name, sizeof f->name, "%s", name);
            f->index = index;
            f->ckpt = naming != 2;
            f->dir = naming == 3;
            size_t body = clen - 1;
            f->data = malloc(body + S_TRAILER + 1);
            if (!f->data)
                abort();
            if (body)
                memcpy(f->data, c + 1, body);
            f->len = body;
            if (trailer) {
                uint64_t count = s_fitting_entries(f->data, body);
                if (trailer == 6)
                    count++;
                else if (trailer == 7)
                    count--;
                memcpy(f->data + body, &count, sizeof count);
                uint32_t crc = (uint32_t)crc32(crc32(0, NULL, 0), f->data, (uInt)(body + 8));
                memcpy(f->data + body + 8, &crc, sizeof crc);
                f->len = body + S_TRAILER;
            }
        }
        if (!sep)
            break;
    }
}

static void s_place(const char *dir, const s_file_t *f)
{
    if (f->dir) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, f->name);
        if (mkdir(path, 0700) != 0)
            S_FAIL("mkdir %s: %s", path, strerror(errno));
    } else {
        fuzz_files_write(dir, f->name, f->data, f->len);
    }
}

/* ---- the checks --------------------------------------------------------------------------- */

typedef struct {
    bool sound;
    uint32_t workers, index;
    uint64_t through, count;
} s_verdict_t;

static int s_load(const char *dir, vem_ckpt_set_t *set)
{
    char err[512] = "";
    memset(set, 0xa5, sizeof *set); /* load must zero it first */
    if (vem_ckpt_load(dir, set, err, sizeof err) != 0)
        S_FAIL("load of %s failed: %s", dir, err);
    if (set->count && !set->entries)
        S_FAIL("%zu entries without an array", set->count);
    return 0;
}

static void s_free_set(vem_ckpt_set_t *set)
{
    vem_ckpt_set_free(set);
    if (set->entries || set->count || set->blobs || set->nblobs || set->through || set->nthrough ||
        set->files || set->damaged)
        S_FAIL("set_free did not zero the set");
}

/* The entries of a sound file, entries[0 .. count) loaded from its bytes into blob: the
 * documented layout walked from the header. */
static void s_check_entries(const s_file_t *f, const uint8_t *blob, const vem_ckpt_entry_t *e,
                            uint64_t count, uint32_t version)
{
    if (memcmp(blob, f->data, f->len) != 0)
        S_FAIL("%s: its blob is not its bytes", f->name);
    size_t off = S_HDR;
    for (uint64_t i = 0; i < count; i++, e++) {
        if (f->len - S_TRAILER - off < S_ENTRY)
            S_FAIL("%s: entry %llu past the end", f->name, (unsigned long long)i);
        const uint8_t *h = f->data + off;
        uint64_t applied;
        uint32_t len;
        memcpy(&applied, h + 17, sizeof applied);
        memcpy(&len, h + 25, sizeof len);
        off += S_ENTRY;
        if (e->applied != applied || e->len != len || len > f->len - S_TRAILER - off ||
            e->state != blob + off)
            S_FAIL("%s: entry %llu is not the file's (len %zu, want %u at %zu)", f->name,
                   (unsigned long long)i, e->len, len, off);
        if (memchr(e->vin, '\0', sizeof e->vin) == NULL ||
            memchr(e->plate, '\0', sizeof e->plate) == NULL)
            S_FAIL("%s: entry %llu: key not terminated", f->name, (unsigned long long)i);
        if (version >= 2 && h[0] == '#') {
            if (e->vin[0] || strncmp(e->plate, (const char *)h + 1, 16) != 0)
                S_FAIL("%s: entry %llu: plate key read wrong", f->name, (unsigned long long)i);
        } else if (e->plate[0] || strncmp(e->vin, (const char *)h, 17) != 0) {
            S_FAIL("%s: entry %llu: VIN key read wrong", f->name, (unsigned long long)i);
        }
        if (len && memcmp(e->state, f->data + off, len) != 0) /* reads the state: ASan */
            S_FAIL("%s: entry %llu: state bytes differ", f->name, (unsigned long long)i);
        off += len;
    }
    if (off != f->len - S_TRAILER)
        S_FAIL("%s: sound, yet %zu bytes after its entries", f->name, f->len - S_TRAILER - off);
}

/* Loads f alone and checks what it says of it. */
static s_verdict_t s_check_alone(const s_file_t *f)
{
    s_verdict_t v = {0};
    fuzz_files_empty(s_one);
    s_place(s_one, f);
    vem_ckpt_set_t set;
    s_load(s_one, &set);
    if (!f->ckpt) {
        if (set.files || set.damaged || set.count || set.nblobs)
            S_FAIL("%s is not a checkpoint, yet was read", f->name);
        s_free_set(&set);
        return v;
    }
    if (set.files + set.damaged != 1)
        S_FAIL("%s: %u sound, %u damaged", f->name, set.files, set.damaged);
    if (set.damaged) {
        if (set.count || set.nblobs || set.nthrough || set.low_through || set.workers)
            S_FAIL("%s: damaged, yet %zu entries, %u blobs, %u throughs, low %llu, workers %u",
                   f->name, set.count, set.nblobs, set.nthrough,
                   (unsigned long long)set.low_through, set.workers);
        s_free_set(&set);
        return v;
    }
    /* sound: what the header and trailer say must hold */
    if (f->dir || f->len < S_HDR + S_TRAILER)
        S_FAIL("%s: %zu bytes taken as sound", f->name, f->len);
    uint32_t magic, version, crc;
    memcpy(&magic, f->data, 4);
    memcpy(&version, f->data + 4, 4);
    memcpy(&v.workers, f->data + 8, 4);
    memcpy(&v.index, f->data + 12, 4);
    memcpy(&v.through, f->data + 16, 8);
    memcpy(&v.count, f->data + f->len - S_TRAILER, 8);
    memcpy(&crc, f->data + f->len - 4, 4);
    if (magic != S_MAGIC || version < 1 || version > 2)
        S_FAIL("%s: magic %08x version %u taken as sound", f->name, magic, version);
    if (crc != (uint32_t)crc32(crc32(0, NULL, 0), f->data, (uInt)(f->len - 4)))
        S_FAIL("%s: a wrong CRC taken as sound", f->name);
    if (v.workers == 0 || v.index >= v.workers)
        S_FAIL("%s: worker %u of %u taken as sound", f->name, v.index, v.workers);
    if (v.index != f->index)
        S_FAIL("%s: worker %u's file taken as sound under this name", f->name, v.index);
    if (set.count != v.count || set.nblobs != 1 || set.nthrough != v.index + 1 ||
        set.through[v.index] != v.through || set.low_through != v.through ||
        set.workers != v.workers)
        S_FAIL("%s: the set does not say what the file does", f->name);
    for (unsigned k = 0; k < v.index; k++)
        if (set.through[k] != 0)
            S_FAIL("%s: through of a worker without a file", f->name);
    s_check_entries(f, set.blobs[0], set.entries, set.count, version);
    s_free_set(&set);
    v.sound = true;
    return v;
}

/* Loads them all and checks the set against the files alone, in directory order. */
static void s_check_together(const s_layout_t *l, const s_verdict_t *verdicts)
{
    vem_ckpt_set_t set;
    s_load(s_all, &set);
    unsigned sound = 0, damaged = 0, nthrough = 0;
    uint64_t count = 0, low = UINT64_MAX;
    uint32_t workers = 0;
    bool mixed = false;
    for (size_t i = 0; i < l->n; i++) {
        if (!l->files[i].ckpt)
            continue;
        if (!verdicts[i].sound) {
            damaged++;
            continue;
        }
        if (sound++ == 0)
            workers = verdicts[i].workers;
        else if (workers != verdicts[i].workers)
            mixed = true;
        count += verdicts[i].count;
        if (verdicts[i].through < low)
            low = verdicts[i].through;
        if (verdicts[i].index + 1 > nthrough)
            nthrough = verdicts[i].index + 1;
    }
    if (set.files != sound || set.damaged != damaged || set.count != count || set.nblobs != sound ||
        set.nthrough != nthrough)
        S_FAIL("together: %u sound %u damaged %zu entries %u blobs %u throughs; alone: %u %u "
               "%llu %u %u",
               set.files, set.damaged, set.count, set.nblobs, set.nthrough, sound, damaged,
               (unsigned long long)count, sound, nthrough);
    if (set.low_through != (damaged || !sound ? 0 : low))
        S_FAIL("together: low_through %llu", (unsigned long long)set.low_through);
    if (set.workers != (mixed ? 0 : workers))
        S_FAIL("together: workers %u, the files say %u%s", set.workers, workers,
               mixed ? " and others" : "");
    /* blobs and entries come in the order the directory lists the files */
    DIR *d = opendir(s_all);
    if (!d)
        S_FAIL("opendir %s: %s", s_all, strerror(errno));
    struct dirent *e;
    unsigned blob = 0;
    size_t entry = 0;
    while ((e = readdir(d))) {
        size_t i = 0;
        while (i < l->n && strcmp(l->files[i].name, e->d_name) != 0)
            i++;
        if (i == l->n || !l->files[i].ckpt || !verdicts[i].sound)
            continue;
        uint32_t version;
        memcpy(&version, l->files[i].data + 4, 4);
        s_check_entries(&l->files[i], set.blobs[blob++], set.entries ? set.entries + entry : NULL,
                        verdicts[i].count, version);
        entry += verdicts[i].count;
    }
    closedir(d);
    s_free_set(&set);
}

/* ---- the target --------------------------------------------------------------------------- */

static void s_make_seeds(const char *dir);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    vem_log_set_level(VEM_LOG_ERR - 1); /* refusals are expected: keep the output quiet */
    s_make_root();
    const char *seeds = getenv("VEM_FUZZ_SEEDS");
    if (seeds) {
        s_make_seeds(seeds);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_layout_t l;
    s_layout_parse(&l, data, size);
    s_verdict_t verdicts[S_MAX_FILES];
    for (size_t i = 0; i < l.n; i++)
        verdicts[i] = s_check_alone(&l.files[i]);
    fuzz_files_empty(s_all);
    for (size_t i = 0; i < l.n; i++)
        s_place(s_all, &l.files[i]);
    s_check_together(&l, verdicts);
    for (size_t i = 0; i < l.n; i++)
        free(l.files[i].data);
    return 0;
}

/* ---- seeds -------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len;
} s_buf_t;

static void s_buf_add(s_buf_t *b, const void *p, size_t len)
{
    b->p = realloc(b->p, b->len + len + 1);
    if (!b->p)
        abort();
    if (len)
        memcpy(b->p + b->len, p, len);
    b->len += len;
}

/* A chunk of file bytes; with a trailer mode, the bytes without their trailer. */
static void s_buf_chunk(s_buf_t *b, uint8_t flags, const uint8_t *p, size_t len)
{
    if (b->len)
        s_buf_add(b, S_SEP, S_SEP_LEN);
    s_buf_add(b, &flags, 1);
    s_buf_add(b, p, (flags >> 5) ? len - S_TRAILER : len);
}

static void s_seed_save(const char *dir, const char *name, s_buf_t *b)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->p, 1, b->len, f) != b->len || fclose(f) != 0)
        S_FAIL("writing %s: %s", path, strerror(errno));
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* The checkpoint of worker index of workers with n vehicles (every third known by plate),
 * written by the real writer into s_one; its bytes. */
static uint8_t *s_seed_file(unsigned index, unsigned workers, unsigned n, size_t *len)
{
    fuzz_files_empty(s_one);
    char err[512];
    vem_ckpt_writer_t *w = vem_ckpt_begin(s_one, index, workers, 1000 + index, err, sizeof err);
    if (!w)
        S_FAIL("seed: %s", err);
    for (unsigned i = 0; i < n; i++) {
        uint8_t state[24];
        size_t slen = 3 + i % 20;
        for (size_t k = 0; k < slen; k++)
            state[k] = (uint8_t)(i * 13 + k);
        char key[18];
        int rc;
        if (i % 3 == 2) {
            snprintf(key, sizeof key, "A%05u", i);
            rc = vem_ckpt_add_plate(w, key, 990 + i, state, slen);
        } else {
            snprintf(key, sizeof key, "LFUZZ%012u", i);
            rc = vem_ckpt_add(w, key, 990 + i, state, slen);
        }
        if (rc != 0)
            S_FAIL("seed add: %s", strerror(errno));
    }
    if (vem_ckpt_commit(&w, err, sizeof err) != 0)
        S_FAIL("seed commit: %s", err);
    char path[700];
    snprintf(path, sizeof path, "%s/rules.%u.ckpt", s_one, index);
    FILE *f = fopen(path, "rb");
    if (!f)
        S_FAIL("seed %s: %s", path, strerror(errno));
    uint8_t *p = malloc(4096);
    if (!p)
        abort();
    *len = fread(p, 1, 4096, f);
    fclose(f);
    return p;
}

/* Seeds: files of the real writer, with their trailer appended by the target or as they are;
 * several workers; plates; a version 1 file; a torn one; a stray .tmp. */
static void s_make_seeds(const char *dir)
{
    s_buf_t b = {0};
    size_t len, len1;
    uint8_t *p = s_seed_file(0, 1, 4, &len);
    s_buf_chunk(&b, 0x20, p, len);
    s_seed_save(dir, "one-worker", &b);
    s_buf_chunk(&b, 0x00, p, len);
    s_seed_save(dir, "one-worker-as-is", &b);
    s_buf_chunk(&b, 0x00, p, len - 7); /* torn: the writer died half way */
    s_seed_save(dir, "torn", &b);
    s_buf_chunk(&b, 0x20, p, S_HDR + S_TRAILER); /* no vehicles */
    s_seed_save(dir, "empty", &b);

    /* version 1: VINs only ('#' is part of a VIN then) */
    uint32_t one = 1;
    memcpy(p + 4, &one, sizeof one);
    s_buf_chunk(&b, 0x20, p, len);
    s_seed_save(dir, "version-1", &b);
    free(p);

    /* three workers, one of them damaged; a leftover temp file */
    for (unsigned i = 0; i < 3; i++) {
        p = s_seed_file(i, 3, 2 + i, &len1);
        if (i == 1)
            p[S_HDR + 3] ^= 0x40;
        s_buf_chunk(&b, (uint8_t)(i == 1 ? i : 0x20 | i), p, len1);
        free(p);
    }
    p = s_seed_file(3, 4, 1, &len1);
    s_buf_chunk(&b, 0x20 | 0x10 | 3, p, len1);
    free(p);
    s_seed_save(dir, "workers", &b);
    fuzz_files_empty(s_one);
}
